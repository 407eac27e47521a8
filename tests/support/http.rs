//! The read API over real HTTP for end-to-end tests: requests, polling with a deadline, and a
//! human player that plays a seat to the end of its match.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::procs::{Proc, START};

pub const PLAY: Duration = Duration::from_secs(120);
pub const POLL: Duration = Duration::from_millis(100);

pub fn get(http: &Client, url: &str) -> (StatusCode, Value) {
    match http.get(url).send() {
        Ok(r) => {
            let status = r.status();
            let text = r.text().unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Value::String(e.to_string())),
    }
}

pub fn post(http: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let r = http.post(url).json(&body).send().expect("POST");
    let status = r.status();
    (status, r.json().unwrap_or(Value::Null))
}

/// [`post`] as a player: with `Authorization: Bearer <token>`.
pub fn post_as(http: &Client, url: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("POST");
    let status = r.status();
    (status, r.json().unwrap_or(Value::Null))
}

/// The token `POST /matches` answered for `player` (`playerTokens`).
pub fn token_of(created: &Value, player: &str) -> String {
    created["playerTokens"][player]
        .as_str()
        .unwrap_or_else(|| panic!("no token for {player} in {created}"))
        .to_string()
}

/// Polls `f` until it returns `Some`, at most `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

pub fn wait_ready(http: &Client, base: &str, run: &Proc) -> Value {
    poll(START, || {
        let (s, body) = get(http, &format!("{base}/health"));
        (s == StatusCode::OK).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "never ready: {:?}\nrun stderr:\n{}",
            get(http, &format!("{base}/health")),
            run.tail()
        )
    })
}

/// Plays the human seat of `match_id` (player `p1`, whose token is `token`): answers and
/// votes each round until the match completes; returns the final state.
pub fn play_human(http: &Client, base: &str, match_id: &str, token: &str, run: &Proc) -> Value {
    let mut answered = 0u64;
    let mut voted = 0u64;
    poll(PLAY, || {
        let (s, state) = get(http, &format!("{base}/matches/{match_id}"));
        if s != StatusCode::OK {
            return None;
        }
        let me = state["seats"]
            .as_array()?
            .iter()
            .find(|seat| seat["playerId"] == "p1")?["identity"]
            .as_str()?
            .to_string();
        let round = state["round"].as_u64().unwrap_or(0);
        match state["status"].as_str()? {
            "completed" => return Some(state),
            "responding" if answered < round => {
                let (s, body) = post_as(
                    http,
                    &format!("{base}/matches/{match_id}/responses"),
                    token,
                    json!({"playerId": "p1", "round": round, "text": "Tea, always tea."}),
                );
                assert_eq!(s, StatusCode::ACCEPTED, "{body}");
                answered = round;
            }
            "voting" if voted < round => {
                let other = state["seats"]
                    .as_array()?
                    .iter()
                    .filter_map(|seat| seat["identity"].as_str())
                    .find(|id| *id != me)?
                    .to_string();
                let (s, body) = post_as(
                    http,
                    &format!("{base}/matches/{match_id}/votes"),
                    token,
                    json!({"playerId": "p1", "round": round, "votedFor": other}),
                );
                assert_eq!(s, StatusCode::ACCEPTED, "{body}");
                voted = round;
            }
            _ => {}
        }
        None
    })
    .unwrap_or_else(|| {
        panic!(
            "match {match_id} never completed: {:?}\nrun stderr:\n{}",
            get(http, &format!("{base}/matches/{match_id}")),
            run.tail()
        )
    })
}
