//! `orchestra broker` and `orchestra run` as real processes: a worker process plays a match
//! through the HTTP API on a broker process; `run` exits non-zero when its stream worker
//! dies; a worker that gets no assignment warns and `/health` says why; `replay` refuses a
//! truncated `match-events` log with one clear message (no backtrace, even with
//! `RUST_BACKTRACE=1`).
//!
//! Every wait polls for an observable event with a deadline; child processes are killed
//! when the test ends, whatever happens.

#[path = "support/http.rs"]
mod http;
#[path = "support/procs.rs"]
mod procs;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use http::{get, play_human, poll, post, token_of, wait_ready, PLAY};
use procs::{worker, Proc, START};

/// `orchestra broker --partitions PARTITIONS EXTRA…`, and its bootstrap address.
fn broker(dir: &Path, partitions: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["--partitions", partitions];
    args.extend_from_slice(extra);
    procs::broker(dir, &args)
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
    let state = play_human(&http, &base, &match_id, &token_of(&body, "p1"), &run);
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

#[test]
fn secrets_stay_out_of_the_log_and_json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, bootstrap) = broker(dir.path(), "2", &[]);
    let props = dir.path().join("client.properties");
    std::fs::write(
        &props,
        "# librdkafka settings\nssl.key.password=file-secret-4711\nclient.rack=rack-a\n",
    )
    .expect("properties file");
    let props = props.to_str().expect("utf-8 path");
    let (mut run, base) = worker(
        dir.path(),
        &bootstrap,
        &[
            "--role",
            "topology",
            "--log-format",
            "json",
            "--kafka-config-file",
            props,
            "--kafka-config",
            "ssl.keystore.password=flag-secret-4712",
        ],
        &[
            ("ORCHESTRA_KAFKA_SASL_PASSWORD", "env-secret-4713"),
            ("RUST_LOG", "debug"),
        ],
    );
    let http = Client::new();
    wait_ready(&http, &base, &run);
    run.terminate();
    let status = run.wait_exit(START).expect("exits on SIGTERM");
    assert!(status.success(), "{status}\n{}", run.tail());

    let log = run.stderr();
    for secret in ["file-secret-4711", "flag-secret-4712", "env-secret-4713"] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
    // The settings did arrive, from all three sources: the start line names them.
    let starting = log
        .lines()
        .find(|l| l.contains("\"starting\""))
        .unwrap_or_else(|| panic!("no `starting` line:\n{}", run.tail()));
    for shown in [
        "client.rack=rack-a",
        "ssl.key.password=[redacted]",
        "sasl.password=[redacted]",
        "ssl.keystore.password=[redacted]",
    ] {
        assert!(starting.contains(shown), "{shown} not in {starting}");
    }
    // JSON format: every line is one object with a level, and no terminal colour codes.
    let mut lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        lines += 1;
    }
    assert!(lines > 5, "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal"
    );
}

#[test]
fn a_client_error_quoting_a_secret_setting_prints_it_redacted() {
    // librdkafka refuses this setting in this build and quotes its value in the error.
    let out = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["topics", "list", "--bootstrap-servers", "127.0.0.1:1"])
        .env(
            "ORCHESTRA_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
            "env-secret-4714",
        )
        .output()
        .expect("orchestra topics list");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sasl.oauthbearer.client.secret"),
        "{stderr}"
    );
    assert!(!stderr.contains("env-secret-4714"), "{stderr}");
    assert!(stderr.contains("[redacted]"), "{stderr}");
}
