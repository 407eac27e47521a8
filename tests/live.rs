//! Issue 15 items 2 and 3 over real HTTP and WebSocket, on `orchestra broker` and
//! `orchestra run` processes: `GET /matches/{id}/live` streams a match's events in order as
//! they happen, a reconnect with `?after=<sequence>` gets exactly the rest; what players see
//! (live events, `GET /matches/{id}/view`) shows no seat kinds, sources or robots before the
//! reveal, and everything after it.

#[path = "support/http.rs"]
mod http;
#[path = "support/procs.rs"]
mod procs;

use std::net::TcpStream;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use http::{get, play_human, poll, wait_ready, PLAY};

type Ws = tungstenite::WebSocket<TcpStream>;

fn connect(base: &str, path: &str) -> Ws {
    let host = base.trim_start_matches("http://");
    let stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let (ws, resp) =
        tungstenite::client(format!("ws://{host}{path}"), stream).expect("WebSocket handshake");
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// The next event of `ws` (text frames are JSON envelopes).
fn next_event(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a live event within 60 s") {
            tungstenite::Message::Text(t) => {
                return serde_json::from_str(t.as_str()).expect("JSON event")
            }
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Events until (and with) the first that satisfies `stop`.
fn events_until(ws: &mut Ws, mut stop: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let e = next_event(ws);
        let done = stop(&e);
        out.push(e);
        if done {
            return out;
        }
    }
}

fn seq(e: &Value) -> u64 {
    e["sequence"].as_u64().expect("sequence")
}

/// The keys a player must not see before the reveal, wherever they are in `v`.
fn secrets(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if ["kind", "source", "robots", "robotId", "model", "playerId"]
                    .contains(&k.as_str())
                {
                    out.push(format!("{path}.{k}"));
                }
                secrets(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                secrets(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn assert_no_secrets(v: &Value) {
    let mut found = Vec::new();
    secrets(v, "", &mut found);
    assert!(
        found.is_empty(),
        "a player sees {found:?} before the reveal: {v}"
    );
}

#[test]
fn live_events_stream_in_order_resume_after_a_reconnect_and_stay_fair_until_the_reveal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, bootstrap) = procs::broker(dir.path(), &["--partitions", "2"]);
    let (run, base) = procs::worker(
        dir.path(),
        &bootstrap,
        &["--response-window-ms", "4000", "--voting-window-ms", "4000"],
        &[],
    );
    let http = Client::new();
    wait_ready(&http, &base, &run);

    // Subscribe before the match exists (its id is the idempotency key), so the first
    // events come through the shared tail, live.
    let match_id = format!("live-{}", std::process::id());
    let mut ws1 = connect(&base, &format!("/matches/{match_id}/live"));
    let r = http
        .post(format!("{base}/matches"))
        .header("Idempotency-Key", &match_id)
        .json(&json!({"template": "classic_1v3", "totalRounds": 2,
                      "humans": [{"playerId": "p1", "name": "Ann"}]}))
        .send()
        .expect("POST /matches");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let created: Value = r.json().expect("json");
    let token = http::token_of(&created, "p1");

    // Until round 1 starts; then the client drops its connection.
    let first = events_until(&mut ws1, |e| e["eventType"] == "round.started");
    assert_eq!(first[0]["eventType"], "match.created", "{first:?}");
    drop(ws1);

    // Mid-match, the player's view keeps the secrets.
    let (s, view) = poll(PLAY, || {
        let (s, v) = http
            .get(format!("{base}/matches/{match_id}/view"))
            .bearer_auth(&token)
            .send()
            .ok()
            .map(|r| (r.status(), r.json::<Value>().unwrap_or(Value::Null)))?;
        (s == StatusCode::OK).then_some((s, v))
    })
    .expect("the player view");
    assert_eq!(s, StatusCode::OK);
    assert_ne!(view["status"], "completed", "{view}");
    assert_no_secrets(&view);
    assert_eq!(view["seats"].as_array().map(Vec::len), Some(4), "{view}");
    let you = view["you"]
        .as_str()
        .expect("the token holder's seat")
        .to_string();
    // The analyst's endpoint keeps everything.
    let (_, full) = get(&http, &format!("{base}/matches/{match_id}"));
    let seat_of_p1 = full["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .find(|s| s["playerId"] == "p1")
        .expect("p1 seated");
    assert_eq!(seat_of_p1["identity"], you.as_str());
    assert_eq!(seat_of_p1["kind"], "human");

    // The match is played while the client is away.
    let finale = play_human(&http, &base, &match_id, &token, &run);
    assert_eq!(finale["status"], "completed");

    // Reconnect after the last event seen: exactly the rest, through the reveal.
    let last = seq(first.last().expect("events"));
    let mut ws2 = connect(&base, &format!("/matches/{match_id}/live?after={last}"));
    let rest = events_until(&mut ws2, |e| e["eventType"] == "match.completed");
    drop(ws2);

    // A fresh client from the start sees the same events.
    let mut ws3 = connect(&base, &format!("/matches/{match_id}/live"));
    let all = events_until(&mut ws3, |e| e["eventType"] == "match.completed");
    drop(ws3);

    let resumed: Vec<Value> = first.iter().chain(&rest).cloned().collect();
    let seqs: Vec<u64> = resumed.iter().map(seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate: {seqs:?}"
    );
    assert_eq!(resumed, all, "the resumed stream has no gap");
    assert_eq!(
        seqs.last().copied(),
        finale["eventsApplied"].as_u64(),
        "match.completed is the last event of the match"
    );
    let types: Vec<&str> = all.iter().filter_map(|e| e["eventType"].as_str()).collect();
    for t in [
        "round.started",
        "response.recorded",
        "round.voting_started",
        "vote.recorded",
        "round.completed",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert!(!types.contains(&"round.robots_needed"), "{types:?}");

    // Fair play: no event before the reveal says who is a robot; the reveal does.
    for e in &all[..all.len() - 1] {
        assert_no_secrets(e);
    }
    let reveal = &all[all.len() - 1]["data"]["reveal"];
    let kinds: Vec<&str> = reveal
        .as_array()
        .expect("reveal")
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "robot").count(),
        3,
        "{reveal}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "human").count(),
        1,
        "{reveal}"
    );

    // After the reveal the player's view is the whole record.
    let (s, view) = get(&http, &format!("{base}/matches/{match_id}/view"));
    assert_eq!(s, StatusCode::OK);
    assert_eq!(view["status"], "completed");
    assert!(
        view["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .any(|s| s["kind"] == "robot"),
        "{view}"
    );

    // Wrong tokens change nothing: 401 / 403, and the match state stays as it was.
    let before = get(&http, &format!("{base}/matches/{match_id}")).1;
    let answer = json!({"playerId": "p1", "round": 2, "text": "late"});
    let url = format!("{base}/matches/{match_id}/responses");
    let r = http.post(&url).json(&answer).send().expect("POST");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .post(&url)
        .bearer_auth("not-a-token")
        .json(&answer)
        .send()
        .expect("POST");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let other =
        orchestra::api::PlayerTokens::new(procs::TEST_API_SECRET).token("another-match", "p1");
    let r = http
        .post(format!("{base}/matches/{match_id}/votes"))
        .bearer_auth(&other)
        .json(&json!({"playerId": "p1", "round": 2, "votedFor": "A"}))
        .send()
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    std::thread::sleep(Duration::from_millis(500));
    let after = get(&http, &format!("{base}/matches/{match_id}")).1;
    assert_eq!(before["eventsApplied"], after["eventsApplied"]);
    assert_eq!(
        before["recentInputs"], after["recentInputs"],
        "nothing reached the match"
    );
}
