//! One full classic_1v3 match on the embedded broker: a stream worker runs the game
//! topology, the test plays the human and answers robot commands with the offline engine;
//! the match reaches `match-stats` through the application's stats repartition topic.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use processors::robots::Personalities;
use processors::streams::{game_topology, topics, GameSettings};
use schemas::{
    Envelope, HistoryStatus, MatchCreate, MatchHistory, MatchRequest, MatchRequestData, MatchState,
    MatchStats, MatchStatus, PlayerRef, ResponseSubmit, RobotCommand, RobotResponse, SeatKind,
    VoteSubmit,
};
use support::{assert_scores_follow_rule, human_pick, offline_answer};
use topology::{testing, EmbeddedBroker, StreamWorker, StreamsConfig, Topology, WorkerState};

const APP: &str = "orchestra-embedded";
const PARTITIONS: i32 = 4;
const WAIT: Duration = Duration::from_secs(120);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

struct Client {
    bootstrap: String,
    seq: u64,
}

impl Client {
    fn produce(&self, topic: &str, key: &str, value: Vec<u8>) {
        testing::produce(&self.bootstrap, topic, &[(key.to_owned(), value)], now_ms())
            .expect("produce");
    }

    fn request(&mut self, match_id: &str, data: impl Into<MatchRequestData>) {
        self.seq += 1;
        let id = format!("emb-req-{}", self.seq);
        let env: MatchRequest = Envelope::new(id.clone(), match_id, now_ms(), id.clone(), id, data);
        self.produce(
            topics::MATCH_REQUESTS,
            match_id,
            env.to_json_vec().expect("encode"),
        );
    }

    /// The records of `topic` (from the beginning) under `key`, values only.
    fn read(&self, topic: &str, key: &str) -> Vec<Vec<u8>> {
        testing::read_topic(&self.bootstrap, topic, 0, Duration::from_secs(10))
            .expect("read topic")
            .into_iter()
            .filter(|r| r.key_str() == key)
            .filter_map(|r| r.value)
            .collect()
    }
}

#[test]
fn a_classic_match_runs_from_creation_to_reveal_on_the_embedded_broker() {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    for t in topics::ALL {
        broker.create_topic(t, PARTITIONS).expect("topic");
    }
    let topology = game_topology(&GameSettings::default());
    broker
        .create_internal_topics(&topology, APP, PARTITIONS)
        .expect("internal topics");
    let bootstrap = broker.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StreamsConfig::new(APP, &bootstrap)
        .state_dir(dir.path())
        .commit_interval(Duration::from_millis(100));
    let worker = StreamWorker::start(topology, config).expect("worker");
    assert!(
        testing::wait_until(WAIT, || worker.stats().state() == WorkerState::Running
            && !worker.stats().tasks().is_empty()),
        "worker runs its tasks"
    );

    let m = "embedded-classic-1";
    let p = "embedded-player";
    let mut client = Client {
        bootstrap: bootstrap.clone(),
        seq: 0,
    };
    client.request(
        m,
        MatchCreate {
            template: "classic_1v3".into(),
            total_rounds: 3,
            humans: vec![PlayerRef {
                player_id: p.into(),
                name: "Emb".into(),
            }],
            ..Default::default()
        },
    );

    let book = Personalities::builtin();
    let mut answered: BTreeSet<String> = BTreeSet::new();
    let mut acted: BTreeSet<(u32, bool)> = BTreeSet::new();
    let mut history: Option<MatchHistory> = None;
    let done = testing::wait_until(WAIT, || {
        // Robots: answer every new command of the match.
        for bytes in client.read(topics::ROBOT_COMMANDS, m) {
            let cmd: RobotCommand = schemas::decode(&bytes).expect("command");
            if !answered.insert(cmd.event_id.clone()) {
                continue;
            }
            client.seq += 1;
            let reply: RobotResponse = Envelope::new(
                format!("emb-rr-{}", client.seq),
                m,
                now_ms(),
                cmd.correlation_id.clone(),
                cmd.event_id.clone(),
                offline_answer(&book, &cmd),
            );
            client.produce(
                topics::ROBOT_RESPONSES,
                m,
                reply.to_json_vec().expect("encode"),
            );
        }
        // The human: respond, then vote, once per round, from the latest match-state.
        if let Some(bytes) = client.read(topics::MATCH_STATE, m).pop() {
            let state: MatchState = serde_json::from_slice(&bytes).expect("state");
            let me = state
                .seats
                .iter()
                .find(|s| s.player_id.as_deref() == Some(p))
                .expect("seat")
                .identity;
            match state.status {
                MatchStatus::Responding if acted.insert((state.round, false)) => client.request(
                    m,
                    ResponseSubmit {
                        player_id: p.into(),
                        round: state.round,
                        text: "I'd say the sea, honestly".into(),
                    },
                ),
                MatchStatus::Voting if acted.insert((state.round, true)) => client.request(
                    m,
                    VoteSubmit {
                        player_id: p.into(),
                        round: state.round,
                        voted_for: human_pick(&state, me).to_string(),
                    },
                ),
                _ => {}
            }
            if state.status == MatchStatus::Completed {
                history = client
                    .read(topics::MATCH_HISTORY, m)
                    .pop()
                    .map(|b| serde_json::from_slice(&b).expect("history"));
            }
        }
        history.is_some()
    });
    assert!(done, "match-history has the match");
    let h = history.expect("history");
    assert_eq!(h.status, HistoryStatus::Completed);
    assert_eq!(h.rounds.len(), 3, "all rounds present");
    for r in &h.rounds {
        assert_eq!(
            r.responses.len(),
            4,
            "round {}: {:?}",
            r.round,
            r.timed_out_responses
        );
        assert_eq!(
            r.votes.len(),
            4,
            "round {}: {:?}",
            r.round,
            r.timed_out_votes
        );
        assert_eq!(r.robots.len(), 3);
    }
    assert_eq!(
        h.seats.iter().filter(|s| s.kind == SeatKind::Human).count(),
        1
    );
    assert_scores_follow_rule(&h);
    let types: Vec<String> = client
        .read(topics::MATCH_EVENTS, m)
        .iter()
        .map(|b| {
            schemas::decode::<schemas::MatchEventData>(b)
                .expect("event")
                .event_type()
                .to_owned()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("match.created"));
    assert_eq!(types.last().map(String::as_str), Some("match.completed"));
    // Stats: what the match contributes reaches the stats processor through this
    // application's repartition topic, and its window counts it.
    let counted = testing::wait_until(WAIT, || {
        testing::read_topic(&bootstrap, topics::MATCH_STATS, 1, Duration::from_secs(5))
            .expect("match-stats")
            .iter()
            .filter_map(|r| serde_json::from_slice::<MatchStats>(r.value.as_deref()?).ok())
            .any(|s| s.matches_completed == 1)
    });
    assert!(counted, "match-stats counts the match");
    let repartition = Topology::repartition_topic(APP, topics::STATS_REPARTITION);
    assert_eq!(repartition, "orchestra-embedded-match-stats-repartition");
    assert!(
        !testing::read_topic(&bootstrap, &repartition, 1, Duration::from_secs(10))
            .expect("repartition topic")
            .is_empty(),
        "the match's outcome went through {repartition}"
    );
    let dlq = testing::read_topic(
        &bootstrap,
        &format!("{APP}-dlq"),
        0,
        Duration::from_secs(10),
    )
    .expect("dlq");
    assert!(
        dlq.is_empty(),
        "no DLQ records: {:?}",
        dlq.iter().map(|r| r.headers.clone()).collect::<Vec<_>>()
    );
    worker.shutdown().expect("clean shutdown");
}
