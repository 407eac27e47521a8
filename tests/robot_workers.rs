//! Robot workers on the embedded broker: no command lost when a worker dies mid-batch,
//! and a duplicate answer has no second effect on the match.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use orchestra::robot_worker::RobotWorker;
use processors::robots::{Personalities, RobotEngine, RobotEngineConfig};
use processors::streams::{game_topology, topics, GameSettings};
use rdkafka::ClientConfig;
use serde_json::json;
use topology::{testing, EmbeddedBroker, StreamWorker, StreamsConfig, Topology};

const WAIT: Duration = Duration::from_secs(60);

fn client(broker: &EmbeddedBroker) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap_servers());
    c
}

fn engine(think_time_scale: f64, concurrency: usize) -> RobotEngine {
    RobotEngine::new(
        RobotEngineConfig {
            think_time_scale,
            max_concurrency: concurrency,
            ..RobotEngineConfig::default()
        },
        Personalities::builtin(),
    )
    .unwrap()
}

fn command(i: usize) -> (String, Vec<u8>) {
    let match_id = format!("m-{}", i % 10);
    let v = json!({
        "eventId": format!("cmd-{i}"), "eventType": "generate.response", "schemaVersion": 1,
        "matchId": match_id, "timestamp": 1_700_000_000_000i64 + i as i64,
        "correlationId": "c", "causationId": "c",
        "data": {"commandId": format!("cmd-{i}"), "robotId": "robot-s0-curious-student-1",
                 "personality": "curious-student", "identity": "B", "round": 1,
                 "prompt": "What's your favorite memory?", "context": {"totalRounds": 3}, "deadline": 0}
    });
    (match_id, serde_json::to_vec(&v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_robot_worker_killed_mid_batch_loses_no_command() {
    let broker = EmbeddedBroker::start().unwrap();
    for t in [
        topics::ROBOT_COMMANDS,
        topics::ROBOT_RESPONSES,
        "robotorchestra-dlq",
    ] {
        broker.create_topic(t, 2).unwrap();
    }
    let n = 300;
    let commands: Vec<(String, Vec<u8>)> = (0..n).map(command).collect();
    testing::produce(
        &broker.bootstrap_servers(),
        topics::ROBOT_COMMANDS,
        &commands,
        0,
    )
    .unwrap();

    // A answers slowly (think time), B quickly.
    let a = RobotWorker::start(
        &client(&broker),
        "robots",
        "robotorchestra-dlq",
        engine(0.05, 4),
    )
    .unwrap();
    let stats = a.stats.clone();
    let started = tokio::time::Instant::now();
    while stats.answered.load(Ordering::Relaxed) < 20 {
        assert!(started.elapsed() < WAIT, "worker A answered nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered_by_a = stats.answered.load(Ordering::Relaxed);
    assert!(
        answered_by_a < n as u64,
        "A must die mid-batch (answered {answered_by_a})"
    );
    a.kill();

    let b = RobotWorker::start(
        &client(&broker),
        "robots",
        "robotorchestra-dlq",
        engine(0.0, 32),
    )
    .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let (distinct, total) = tokio::task::spawn_blocking(move || {
        let mut distinct = HashSet::new();
        let mut total = 0;
        testing::wait_until(WAIT, || {
            let recs = testing::read_topic(
                &bootstrap,
                topics::ROBOT_RESPONSES,
                0,
                Duration::from_secs(5),
            )
            .unwrap();
            total = recs.len();
            distinct = recs
                .iter()
                .map(|r| {
                    serde_json::from_slice::<serde_json::Value>(
                        r.value.as_deref().unwrap_or_default(),
                    )
                    .unwrap()["data"]["commandId"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            distinct.len() == n
        });
        (distinct, total)
    })
    .await
    .unwrap();
    b.stop().await;
    assert_eq!(
        distinct.len(),
        n,
        "every command was answered by A or, after the rebalance, by B"
    );
    eprintln!(
        "answers: {total} for {n} commands ({} duplicates from the kill)",
        total - n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_robot_answer_has_no_second_effect() {
    let broker = EmbeddedBroker::start().unwrap();
    let partitions = 2;
    orchestra::topics::create_embedded(&broker, partitions).unwrap();
    let mut settings = GameSettings::default();
    settings.game = settings
        .game
        .with_response_window_ms(1_500)
        .with_voting_window_ms(1_500);
    settings.deadline_check = Duration::from_millis(100);
    let topo = game_topology(&settings);
    let app = "dup-app";
    broker
        .create_internal_topics(&topo, app, partitions)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let worker = StreamWorker::start(
        topo,
        StreamsConfig::new(app, &broker.bootstrap_servers())
            .state_dir(dir.path())
            .commit_interval(Duration::from_millis(100)),
    )
    .unwrap();
    let robots = RobotWorker::start(
        &client(&broker),
        "robots",
        &Topology::dlq_topic(app),
        engine(0.0, 16),
    )
    .unwrap();

    // One match whose human never answers: robots answer, deadlines move it on.
    // Deadlines are stamped from the request's timestamp and fire on the wall clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let create = json!({"eventId": "req-1", "eventType": "match.create", "schemaVersion": 1, "matchId": "dup-match",
        "timestamp": now, "correlationId": "req-1", "causationId": "req-1",
        "data": {"template": "classic_1v3", "totalRounds": 2, "humans": [{"playerId": "p1", "name": "P"}]}});
    testing::produce(
        &broker.bootstrap_servers(),
        topics::MATCH_REQUESTS,
        &[("dup-match".into(), serde_json::to_vec(&create).unwrap())],
        0,
    )
    .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let b2 = bootstrap.clone();
    let history = tokio::task::spawn_blocking(move || {
        testing::read_topic(&b2, topics::MATCH_HISTORY, 1, WAIT).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(history.len(), 1, "the match completed");
    robots.stop().await;

    let b3 = bootstrap.clone();
    let (events_before, dlq, answers) = tokio::task::spawn_blocking(move || {
        (
            testing::read_topic(&b3, topics::MATCH_EVENTS, 0, WAIT)
                .unwrap()
                .len(),
            testing::read_topic(&b3, &Topology::dlq_topic(app), 0, WAIT).unwrap(),
            testing::read_topic(&b3, topics::ROBOT_RESPONSES, 0, WAIT).unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(
        dlq.is_empty(),
        "every robot answer was accepted: {:?}",
        dlq.iter()
            .map(|r| r.headers["error"].clone())
            .collect::<Vec<_>>()
    );
    let dlq_before = dlq.len();
    assert!(!answers.is_empty());
    // Every answer again, then a marker on the same key that the match must reject: once
    // the marker is in the DLQ, every duplicate before it has been processed.
    let mut again: Vec<(String, Vec<u8>)> = answers
        .iter()
        .map(|r| (r.key_str(), r.value.clone().unwrap_or_default()))
        .collect();
    let marker = json!({"eventId": "marker", "eventType": "response.submitted", "schemaVersion": 1, "matchId": "dup-match",
        "timestamp": 1_700_000_000_000i64, "correlationId": "m", "causationId": "m",
        "data": {"commandId": "marker", "robotId": "robot-x", "identity": "B", "round": 1, "text": "late", "model": "offline", "latencyMs": 1, "tokens": 1}});
    again.push(("dup-match".into(), serde_json::to_vec(&marker).unwrap()));
    let b4 = bootstrap.clone();
    let (events_after, dlq_after) = tokio::task::spawn_blocking(move || {
        testing::produce(&b4, topics::ROBOT_RESPONSES, &again, 0).unwrap();
        let dlq =
            testing::read_topic(&b4, &Topology::dlq_topic(app), dlq_before + 1, WAIT).unwrap();
        (
            testing::read_topic(&b4, topics::MATCH_EVENTS, 0, WAIT)
                .unwrap()
                .len(),
            dlq,
        )
    })
    .await
    .unwrap();
    worker.shutdown().unwrap();
    assert_eq!(
        dlq_after.len(),
        dlq_before + 1,
        "only the marker was rejected: {:?}",
        dlq_after.last().map(|r| r.headers.clone())
    );
    assert_eq!(
        events_after, events_before,
        "duplicate answers produced no match event"
    );
}
