//! Issue 15 items 1 and 5: the web page served at `/`, played in a real browser — Debian's
//! headless Chromium driven through Debian's `chromedriver` (WebDriver over loopback; see
//! `support/webdriver.rs`) against `orchestra broker` + `orchestra run --http` processes.
//!
//! One test, three acts on the same processes (one start-up, a modest wall time):
//! 1. a human plays a whole classic_1v3 match from the lobby: the page shows the seat, the
//!    prompt, the answers at voting in the match processor's order, the points after each
//!    round, the reveal naming the human seat and the robot voices, and the match in the
//!    history — each checked against the analyst API;
//! 2. two browser sessions (one at phone width) are the two humans of a duo_2v2: one sees
//!    the other's answer appear live, while still answering;
//! 3. the worker is killed mid-match and restarted on the same address: the open page
//!    says it is reconnecting, reconnects, catches up and plays to the reveal.
//!
//! Every wait polls the page (or the API) for a condition with a timeout. With
//! `UPDATE_SCREENSHOT=1` the screenshots are copied to `docs/web-*.png`.

#[path = "support/http.rs"]
mod http;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use http::{get, poll, wait_ready};
use procs::{Proc, START};
use webdriver::{Browser, Driver};

/// The longest a phase of a round may take on the page.
const STEP: Duration = Duration::from_secs(45);
const ENTER: &str = "\u{E007}";

/// `orchestra run` on `port` (the same address after a restart), state in `DIR/state`.
fn worker(dir: &Path, bootstrap: &str, port: u16) -> (Proc, String) {
    let state = dir.join("state");
    let http = format!("127.0.0.1:{port}");
    let args = [
        "run",
        "--bootstrap-servers",
        bootstrap,
        "--replication-factor",
        "1",
        "--http",
        &http,
        "--state-dir",
        state.to_str().expect("utf-8 path"),
        "--worker-id",
        "web-worker",
    ];
    let p = Proc::spawn("run", &args, &[], dir);
    let play = p.line_starting("play: ", START);
    let base = p.line_starting("read API: ", START);
    assert_eq!(play, format!("{base}/"), "the page is listed first");
    (p, base)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The analyst's view of a match (seat kinds, player ids, sources).
fn analyst(http: &Client, base: &str, id: &str) -> Value {
    poll(START, || {
        let (s, v) = get(http, &format!("{base}/matches/{id}"));
        (s == StatusCode::OK).then_some(v)
    })
    .unwrap_or_else(|| panic!("match {id} not readable"))
}

fn status_is(b: &Browser, statuses: &[&str], timeout: Duration) -> String {
    b.wait(
        &format!("match status in {statuses:?}"),
        timeout,
        "const m = document.querySelector('#match');
         return m && arguments[0].includes(m.dataset.status) ? m.dataset.status : null;",
        json!(statuses),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The match id of the page (`#/match/{id}`), once the page shows a match.
fn match_id_of(b: &Browser) -> String {
    b.wait(
        "a match page",
        STEP,
        "const m = location.hash.match(/^#\\/match\\/(.+)$/);
         return m ? decodeURIComponent(m[1]) : null;",
        json!([]),
    )
    .as_str()
    .expect("match id")
    .to_string()
}

/// `[(identity, text)]` of `#answers` in page order.
fn answers(b: &Browser) -> Vec<(String, String)> {
    let v = b.js(
        "return Array.from(document.querySelectorAll('#answers li')).map(li =>
           [li.dataset.identity, li.querySelector('.answer-text').firstChild.textContent]);",
        json!([]),
    );
    v.as_array()
        .expect("answers")
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap_or_default().to_string(),
                p[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn shot(b: &Browser, dir: &Path, name: &str) {
    let path = dir.join(format!("web-{name}.png"));
    b.screenshot(&path);
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/web-{name}.png"));
        std::fs::copy(&path, dest).expect("copy screenshot");
    }
}

/// From the lobby: create a match of `template` with `rounds` rounds as `name`.
fn create_from_lobby(b: &Browser, base: &str, name: &str, template: &str, rounds: u32) -> String {
    b.goto(&format!("{base}/#/"));
    b.wait_for(&format!("#template option[value={template}]"), STEP);
    b.clear("#name");
    b.type_into("#name", name);
    b.js(
        "document.querySelector('#template').value = arguments[0];",
        json!([template]),
    );
    b.clear("#rounds");
    b.type_into("#rounds", &rounds.to_string());
    b.clear("#response-secs");
    b.type_into("#response-secs", "30");
    b.clear("#voting-secs");
    b.type_into("#voting-secs", "20");
    b.click("#create");
    match_id_of(b)
}

/// Answers (Enter submits) and votes for the first other seat until the match completes.
fn play_to_the_end(b: &Browser, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let state = b.js(
            "const m = document.querySelector('#match');
             return [m ? m.dataset.status : null, !!document.querySelector('#answer'),
                     !!document.querySelector('#vote-form')];",
            json!([]),
        );
        match (state[0].as_str(), state[1] == true, state[2] == true) {
            (Some("completed"), _, _) => return,
            (Some("responding"), true, _) => {
                b.type_into("#answer", &format!("Tea, always.{ENTER}"))
            }
            (Some("voting"), _, true) => {
                b.click("#vote-form input[name=vote]");
                b.click("#submit-vote");
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the match never completed on the page: {}",
            b.js("return document.body.innerText;", json!([]))
        );
        // Wait for the page to change rather than acting twice on the same form.
        let _ = poll(Duration::from_secs(2), || {
            let now = b.js(
                "const m = document.querySelector('#match');
                 return [m ? m.dataset.status : null, !!document.querySelector('#answer'),
                         !!document.querySelector('#vote-form')];",
                json!([]),
            );
            (now != state).then_some(())
        });
    }
}

#[test]
fn a_person_plays_in_the_browser_two_see_each_other_live_and_the_page_survives_a_restart() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let shots = dir.path();
    let (_broker, bootstrap) = procs::broker(dir.path(), &["--partitions", "2"]);
    let port = free_port();
    let (mut run, base) = worker(dir.path(), &bootstrap, port);
    let http = Client::new();
    wait_ready(&http, &base, &run);
    // The page and its assets are served by the worker; bad windows are refused.
    for (path, kind) in [
        ("/", "text/html"),
        ("/web/app.js", "text/javascript"),
        ("/web/style.css", "text/css"),
        ("/web/templates", "application/json"),
    ] {
        let r = http.get(format!("{base}{path}")).send().expect("GET");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap_or_default();
        assert!(ct.starts_with(kind), "{path}: {ct}");
    }
    let (s, body) = http::post(
        &http,
        &format!("{base}/matches"),
        json!({"template": "classic_1v3", "votingWindowMs": 10}),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("votingWindowMs"));
    let (s, _) = get(&http, &format!("{base}/matches/history/no-such-match"));
    assert_eq!(s, StatusCode::NOT_FOUND);
    let driver = Driver::start(&dir.path().join("chromedriver.log"));
    let ada = driver.session(1000, 1150);

    // ---- Act 1: a whole classic_1v3 match as the human.
    ada.goto(&format!("{base}/"));
    ada.wait_for("#play-now", STEP);
    ada.wait_for("#template option[value=duo_2v2]", STEP);
    ada.type_into("#name", "Ada");
    shot(&ada, shots, "lobby");
    let id = create_from_lobby(&ada, &base, "Ada", "classic_1v3", 2);
    let player_id = ada
        .js(
            "return localStorage.getItem('orchestra.playerId');",
            json!([]),
        )
        .as_str()
        .expect("the page's player id")
        .to_string();
    for round in 1..=2u64 {
        status_is(&ada, &["responding"], STEP);
        ada.wait(
            &format!("round {round}"),
            STEP,
            "const r = document.querySelector('#round');
             return r && r.textContent === arguments[0];",
            json!([format!("Round {round} of 2")]),
        );
        let state = analyst(&http, &base, &id);
        let me = state["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .find(|s| s["playerId"] == player_id.as_str())
            .expect("Ada has a seat")["identity"]
            .as_str()
            .expect("identity")
            .to_string();
        assert_eq!(ada.wait_for("#seat", STEP), me, "the page shows Ada's seat");
        let prompt = ada.wait_for("#prompt", STEP);
        assert_eq!(
            prompt,
            state["current"]["prompt"].as_str().expect("prompt"),
            "the round's prompt"
        );
        assert!(ada.text("#countdown").unwrap_or_default().contains("left"));
        let answer = format!("Round {round}: tea with my grandmother, then a long walk");
        ada.type_into("#answer", &answer);
        if round == 1 {
            shot(&ada, shots, "round");
        }
        ada.type_into("#answer", ENTER); // Enter sends

        status_is(&ada, &["voting"], STEP);
        let state = analyst(&http, &base, &id);
        let presentation: Vec<String> = state["current"]["presentation"]
            .as_array()
            .expect("presentation")
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect();
        ada.wait(
            "every answer listed",
            STEP,
            "return document.querySelectorAll('#answers li').length === arguments[0];",
            json!([presentation.len()]),
        );
        let shown = answers(&ada);
        let order: Vec<String> = shown.iter().map(|(i, _)| i.clone()).collect();
        assert_eq!(order, presentation, "the processor's presentation order");
        for (identity, text) in &shown {
            let recorded = state["current"]["responses"]
                .as_array()
                .expect("responses")
                .iter()
                .find(|r| r["identity"] == identity.as_str())
                .map(|r| r["text"].as_str().unwrap_or_default().to_string());
            if let Some(recorded) = recorded {
                assert_eq!(text, &recorded, "seat {identity}'s answer");
            }
        }
        assert!(shown.contains(&(me.clone(), answer.clone())), "{shown:?}");
        assert!(
            ada.js(
                "return !!document.querySelector('#vote-' + arguments[0]);",
                json!([me])
            ) == false,
            "no vote for oneself"
        );
        if round == 1 {
            shot(&ada, shots, "voting");
        }
        let pick = presentation
            .iter()
            .find(|x| **x != me)
            .expect("another seat");
        ada.click(&format!("#vote-{pick}"));
        ada.click("#submit-vote");
        // The points of the round.
        ada.wait_for(&format!("#round-points tr[data-round='{round}']"), STEP);
    }
    status_is(&ada, &["completed"], STEP);
    ada.wait(
        "the reveal",
        STEP,
        "return document.querySelectorAll('#reveal-list > li').length === 4;",
        json!([]),
    );
    let record = poll(START, || {
        let (s, v) = get(&http, &format!("{base}/matches/history/{id}"));
        (s == StatusCode::OK).then_some(v)
    })
    .expect("the match in the history view");
    let seats = record["seats"].as_array().expect("seats");
    for seat in seats {
        let identity = seat["identity"].as_str().expect("identity");
        let li = ada.js(
            "const li = document.querySelector(`#reveal-list > li[data-identity='${arguments[0]}']`);
             return li ? [li.dataset.kind, li.textContent] : null;",
            json!([identity]),
        );
        let (kind, text) = (li[0].as_str().unwrap_or(""), li[1].as_str().unwrap_or(""));
        assert_eq!(kind, seat["kind"].as_str().unwrap(), "seat {identity}");
        if kind == "human" {
            assert!(
                text.contains("Human") && text.contains("Ada") && text.contains("(you)"),
                "{text}"
            );
        } else {
            let voices = seat["voices"].as_array().expect("voices");
            assert_eq!(voices.len(), 2, "a voice per round: {seat}");
            for v in voices {
                let (p, r) = (
                    v["personality"].as_str().unwrap(),
                    v["robotId"].as_str().unwrap(),
                );
                assert!(
                    text.contains("Robot") && text.contains(p) && text.contains(r),
                    "seat {identity} names its robot voices ({p}, {r}): {text}"
                );
            }
        }
    }
    shot(&ada, shots, "reveal");
    // One match's full record, then the history list.
    ada.click("#history-link");
    ada.wait(
        "the match's record",
        STEP,
        "return document.querySelectorAll('#history-record .round').length === 2;",
        json!([]),
    );
    let page = ada.text("#history-record").unwrap_or_default();
    for r in record["rounds"].as_array().expect("rounds") {
        assert!(page.contains(r["prompt"].as_str().unwrap()), "{page}");
    }
    assert!(page.contains("tea with my grandmother"), "{page}");
    ada.click("#nav-history");
    ada.wait_for(&format!("#history-list tr[data-match-id='{id}']"), STEP);
    eprintln!("act 1 (classic_1v3) done at {:?}", started.elapsed());

    // ---- Act 2: two humans of a duo_2v2 see each other's answers live.
    let duo = create_from_lobby(&ada, &base, "Ada", "duo_2v2", 1);
    status_is(&ada, &["waiting_for_players"], STEP);
    let link = ada
        .js(
            "return document.querySelector('#share-link').value;",
            json!([]),
        )
        .as_str()
        .expect("share link")
        .to_string();
    assert!(link.ends_with(&format!("#/match/{duo}")), "{link}");
    let bo = driver.phone(390, 844);
    bo.goto(&link);
    bo.wait_for("#join-name", STEP);
    bo.type_into("#join-name", &format!("Bo{ENTER}"));
    status_is(&ada, &["responding"], STEP);
    status_is(&bo, &["responding"], STEP);
    let ada_seat = ada.wait_for("#seat", STEP);
    let bo_seat = bo.wait_for("#seat", STEP);
    assert_ne!(ada_seat, bo_seat);
    ada.type_into("#answer", &format!("Ada says: pancakes on Sunday{ENTER}"));
    bo.wait(
        "Ada's answer on Bo's page",
        STEP,
        "return Array.from(document.querySelectorAll('#answers li'))
           .some(li => li.dataset.identity === arguments[0]
                       && li.textContent.includes('pancakes on Sunday'));",
        json!([ada_seat]),
    );
    assert_eq!(
        status_is(&bo, &["responding"], STEP),
        "responding",
        "Bo sees it live, before answering himself"
    );
    assert!(bo.text("#answer-form").is_some(), "Bo can still answer");
    assert_eq!(
        bo.js("return [window.innerWidth, document.documentElement.scrollWidth <= window.innerWidth];", json!([])),
        json!([390, true]),
        "phone width, nothing wider than the screen"
    );
    shot(&bo, shots, "phone");
    bo.type_into("#answer", &format!("Bo says: waffles, obviously{ENTER}"));
    ada.wait(
        "Bo's answer on Ada's page",
        STEP,
        "return Array.from(document.querySelectorAll('#answers li'))
           .some(li => li.dataset.identity === arguments[0] && li.textContent.includes('waffles'));",
        json!([bo_seat]),
    );
    for b in [&ada, &bo] {
        status_is(b, &["voting"], STEP);
        b.click("#vote-form input[name=vote]");
        b.click("#submit-vote");
    }
    for b in [&ada, &bo] {
        status_is(b, &["completed"], STEP);
        let reveal = b.wait_for("#reveal-list", STEP);
        assert!(
            reveal.contains("Ada") && reveal.contains("Bo"),
            "both humans revealed: {reveal}"
        );
    }
    drop(bo);
    eprintln!(
        "act 2 (duo_2v2, two browsers) done at {:?}",
        started.elapsed()
    );

    // ---- Act 3: the worker dies mid-match and comes back; the open page catches up.
    // "Play now": classic_1v3, 3 rounds, windows a person can play in.
    ada.goto(&format!("{base}/#/"));
    ada.wait_for("#play-now", STEP);
    ada.click("#play-now");
    let crash = match_id_of(&ada);
    status_is(&ada, &["responding"], STEP);
    let state = analyst(&http, &base, &crash);
    assert_eq!(
        (
            &state["template"],
            &state["totalRounds"],
            &state["responseWindowMs"],
            &state["votingWindowMs"]
        ),
        (
            &json!("classic_1v3"),
            &json!(3),
            &json!(30_000),
            &json!(20_000)
        )
    );
    ada.wait(
        "a live socket",
        STEP,
        "return document.querySelector('#connection').dataset.state === 'live';",
        json!([]),
    );
    let reconnects_before = ada.js("return window.orchestra.reconnects;", json!([]));
    run.kill();
    ada.wait(
        "the page noticing the dropped socket",
        STEP,
        "return document.querySelector('#connection').dataset.state !== 'live';",
        json!([]),
    );
    let (run2, base2) = worker(dir.path(), &bootstrap, port);
    assert_eq!(base2, base);
    wait_ready(&http, &base, &run2);
    ada.wait(
        "the page reconnected",
        Duration::from_secs(60),
        "return document.querySelector('#connection').dataset.state === 'live'
                && window.orchestra.reconnects > arguments[0];",
        json!([reconnects_before]),
    );
    play_to_the_end(&ada, Duration::from_secs(120));
    ada.wait(
        "the reveal after the restart",
        STEP,
        "return document.querySelectorAll('#reveal-list > li').length === 4;",
        json!([]),
    );
    let done = analyst(&http, &base, &crash);
    assert_eq!(done["status"], "completed");
    let seen = ada.js("return window.orchestra.lastSequence;", json!([]));
    assert_eq!(
        seen.as_u64(),
        done["eventsApplied"].as_u64(),
        "the page saw every event up to the end"
    );
    eprintln!(
        "act 3 (restart) done at {:?}; run stderr tail:\n{}",
        started.elapsed(),
        run2.tail()
    );
}
