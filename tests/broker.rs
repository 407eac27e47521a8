//! `orchestra broker` and `orchestra run` as real processes: a worker process plays a match
//! through the HTTP API on a broker process; `run` exits non-zero when its stream worker
//! dies; a worker that gets no assignment warns and `/health` says why; `replay` refuses a
//! truncated `match-events` log with one clear message (no backtrace, even with
//! `RUST_BACKTRACE=1`).
//!
//! Every wait polls for an observable event with a deadline; child processes are killed
//! when the test ends, whatever happens.

#[path = "support/procs.rs"]
mod procs;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use procs::{Proc, START};

const PLAY: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

/// `orchestra broker --partitions PARTITIONS EXTRA…`, and its bootstrap address.
fn broker(dir: &Path, partitions: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["--partitions", partitions];
    args.extend_from_slice(extra);
    procs::broker(dir, &args)
}

/// `orchestra run` against `bootstrap` with the read API on a free port; and its base URL.
fn worker(dir: &Path, bootstrap: &str, extra: &[&str], envs: &[(&str, &str)]) -> (Proc, String) {
    let state = dir.join("state");
    let state = state.to_str().expect("utf-8 path");
    let mut args = vec![
        "run",
        "--bootstrap-servers",
        bootstrap,
        "--replication-factor",
        "1",
        "--http",
        "127.0.0.1:0",
        "--state-dir",
        state,
        "--worker-id",
        "test-worker",
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn("run", &args, envs, dir);
    let base = p.line_starting("read API: ", START);
    (p, base)
}

fn get(http: &Client, url: &str) -> (StatusCode, Value) {
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

fn post(http: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let r = http.post(url).json(&body).send().expect("POST");
    let status = r.status();
    (status, r.json().unwrap_or(Value::Null))
}

/// Polls `f` until it returns `Some`, at most `timeout`.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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

fn wait_ready(http: &Client, base: &str, run: &Proc) -> Value {
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

/// Plays the human seat of `match_id` (player `p1`): answers and votes each round until
/// the match completes; returns the final state.
fn play_human(http: &Client, base: &str, match_id: &str, run: &Proc) -> Value {
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
                let (s, body) = post(
                    http,
                    &format!("{base}/matches/{match_id}/responses"),
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
                let (s, body) = post(
                    http,
                    &format!("{base}/matches/{match_id}/votes"),
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

#[test]
fn a_worker_process_plays_a_match_on_a_broker_process_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, bootstrap) = broker(dir.path(), "2", &[]);
    let (mut run, base) = worker(dir.path(), &bootstrap, &[], &[]);
    let http = Client::new();

    let health = wait_ready(&http, &base, &run);
    assert_eq!(health["reasons"], json!([]), "{health}");
    let w = &health["workers"][0];
    assert_eq!(w["state"], "running", "{health}");
    let tasks = w["tasks"].as_array().expect("tasks");
    assert!(!tasks.is_empty(), "{health}");
    for t in tasks {
        assert!(t["task"].is_string(), "{t}");
        assert_eq!(t["state"], "running", "{t}");
        assert!(
            t.get("lag").is_some() && t.get("lastCommitAgeMs").is_some(),
            "{t}"
        );
    }

    let (s, body) = post(
        &http,
        &format!("{base}/matches"),
        json!({"template": "classic_1v3", "totalRounds": 2, "humans": [{"playerId": "p1", "name": "Ann"}]}),
    );
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let match_id = body["matchId"].as_str().expect("matchId").to_string();
    let state = play_human(&http, &base, &match_id, &run);
    assert_eq!(state["round"], 2, "{state}");

    // The history view (from the match-history topic) has it, with both rounds.
    let history = poll(PLAY, || {
        let (_, list) = get(&http, &format!("{base}/matches/history"));
        list.as_array()?
            .iter()
            .find(|h| h["matchId"] == match_id.as_str())
            .cloned()
    })
    .unwrap_or_else(|| panic!("{match_id} never reached match-history"));
    assert_eq!(
        history["rounds"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );

    // Commits are seen per task, and recent.
    let health = wait_ready(&http, &base, &run);
    let ages: Vec<u64> = health["workers"][0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["lastCommitAgeMs"].as_u64())
        .collect();
    assert!(!ages.is_empty(), "no task reports a commit: {health}");
    assert!(ages.iter().all(|a| *a < 60_000), "{health}");
    assert!(
        health["workers"][0]["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .any(|t| t["lag"].is_i64()),
        "no task knows its lag: {health}"
    );

    run.terminate();
    let status = run
        .wait_exit(START)
        .unwrap_or_else(|| panic!("run ignored SIGTERM:\n{}", run.tail()));
    assert!(status.success(), "{status}:\n{}", run.tail());
    assert!(
        run.stderr().contains("worker shut down cleanly"),
        "{}",
        run.tail()
    );
}

#[test]
fn run_exits_non_zero_with_one_message_when_its_stream_worker_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut broker, bootstrap) = broker(dir.path(), "2", &["--faults-from-stdin"]);
    let (mut run, base) = worker(
        dir.path(),
        &bootstrap,
        &["--role", "topology"],
        &[("RUST_BACKTRACE", "1")],
    );
    let http = Client::new();
    wait_ready(&http, &base, &run);

    // The broker refuses every offset commit from now on (a permanent error): the
    // worker's next commit fails, and with it the worker.
    broker.send("errors OffsetCommit OFFSET_METADATA_TOO_LARGE 1000");
    let (s, body) = post(&http, &format!("{base}/matches"), json!({}));
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");

    let status = run
        .wait_exit(START)
        .unwrap_or_else(|| panic!("run kept running with a dead worker:\n{}", run.tail()));
    assert!(!status.success(), "exit status {status}");
    assert_eq!(status.code(), Some(1), "{status}");
    let stderr = run.stderr();
    let message: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("error: "))
        .collect();
    assert!(
        message
            .first()
            .is_some_and(|l| l.contains("stream worker `test-worker` died")
                && l.contains("restarts this process")),
        "{stderr}"
    );
    assert!(
        message
            .iter()
            .any(|l| l.starts_with("  caused by: ") && l.contains("commit offsets")),
        "{stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains("backtrace"),
        "no backtrace, even with RUST_BACKTRACE=1:\n{stderr}"
    );
}

#[test]
fn a_worker_without_an_assignment_warns_and_health_says_what_it_waits_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut broker, bootstrap) = broker(dir.path(), "2", &["--faults-from-stdin"]);
    // The group coordinator answers every JoinGroup with a retriable error.
    broker.send("errors JoinGroup COORDINATOR_LOAD_IN_PROGRESS 100000");
    let (_run, base) = worker(
        dir.path(),
        &bootstrap,
        &[
            "--role",
            "topology",
            "--kafka-config",
            "session.timeout.ms=1000",
            "--kafka-config",
            "heartbeat.interval.ms=250",
        ],
        &[],
    );
    let http = Client::new();
    let health = poll(START, || {
        let (s, body) = get(&http, &format!("{base}/health"));
        let waiting = body["reasons"].as_array()?.iter().any(|r| {
            r.as_str()
                .is_some_and(|r| r.contains("waiting for consumer group"))
        });
        (s == StatusCode::SERVICE_UNAVAILABLE && waiting).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "health never said why: {:?}",
            get(&http, &format!("{base}/health"))
        )
    });
    let reason = health["reasons"][0].as_str().expect("reason");
    assert!(reason.starts_with("worker 0 is starting"), "{reason}");
    assert!(
        reason.contains("`robotorchestra`"),
        "names the group: {reason}"
    );
    assert!(reason.contains(&bootstrap), "names the bootstrap: {reason}");
    assert!(
        reason.contains("match-requests"),
        "names the topics: {reason}"
    );
    assert_eq!(health["workers"][0]["state"], "starting", "{health}");
    assert!(health["workers"][0]["waitingFor"].is_string(), "{health}");
    let run = &_run;
    let warned = poll(START, || {
        let s = run.stderr();
        s.lines()
            .find(|l| l.contains("WARN") && l.contains("no partitions assigned"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no WARN:\n{}", run.tail()));
    assert!(warned.contains("`robotorchestra`"), "{warned}");

    // Once the coordinator answers, the worker gets its partitions and is ready.
    broker.send("clear JoinGroup");
    let health = wait_ready(&http, &base, run);
    assert!(health["workers"][0]["waitingFor"].is_null(), "{health}");
}

#[test]
fn replay_refuses_a_truncated_match_events_log_with_one_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, bootstrap) = broker(dir.path(), "1", &[]);
    // 6 MiB into partition 0: the broker keeps at most 5 MiB and drops the oldest batches.
    let value = vec![b'x'; 100 * 1024];
    let records: Vec<(String, Vec<u8>)> =
        (0..60).map(|i| (format!("m-{i}"), value.clone())).collect();
    topology::testing::produce(&bootstrap, "match-events", &records, 0).expect("produce");

    let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["replay", "--bootstrap-servers", &bootstrap])
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("orchestra replay");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("match-events[0] is truncated"), "{stderr}");
    assert!(stderr.contains("real Kafka"), "says what to do: {stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).trim().is_empty(),
        "no report from a partial log"
    );

    // The broker said so too, when it happened.
    let said = poll(START, || {
        broker
            .stderr()
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("records lost: match-events[0]"))
            .map(str::to_string)
    });
    assert!(said.is_some(), "broker stderr:\n{}", broker.tail());
}

#[test]
fn a_broker_on_a_fixed_address_advertises_it_and_serves_through_it() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, bootstrap) = broker(dir.path(), "1", &["--listen", "127.0.0.1:0"]);
    let port: u16 = bootstrap
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("a port");
    assert_ne!(port, 0, "{bootstrap}");
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some("match-events"), Duration::from_secs(10))
        .expect("metadata through the forwarder");
    let brokers: Vec<(String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.host().to_string(), b.port()))
        .collect();
    assert_eq!(brokers, [("127.0.0.1".to_string(), i32::from(port))]);
    // Produce and read back: every connection goes through the advertised address.
    topology::testing::produce(
        &bootstrap,
        "match-requests",
        &[("m1".into(), b"{}".to_vec())],
        0,
    )
    .expect("produce");
    let read =
        topology::testing::read_topic(&bootstrap, "match-requests", 1, START).expect("read back");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].key_str(), "m1");
}
