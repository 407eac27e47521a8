//! `orchestra replay` on a tiny hand-made log: the fold of `match-events` is compared
//! byte for byte with `match-state` and `match-history`, and every kind of difference is
//! reported.

mod support;

use orchestra::replay::{replay, MismatchKind};
use processors::game::evolve;
use processors::game::history::evolve_history;
use processors::streams::topics;
use rdkafka::ClientConfig;
use schemas::{Envelope, MatchCompleted, MatchEvent};
use topology::{testing, EmbeddedBroker};

use support::duel_created as created;

fn completed(match_id: &str, ts: i64) -> MatchEvent {
    Envelope::new(
        format!("{match_id}-completed"),
        match_id,
        ts,
        "corr",
        format!("{match_id}-created"),
        MatchCompleted {
            reveal: Vec::new(),
            final_scores: Default::default(),
            rounds_played: 1,
            duration_ms: (ts - 1_000) as u64,
        },
    )
}

fn encode(ev: &MatchEvent) -> (String, Vec<u8>) {
    (ev.match_id.clone(), ev.to_json_vec().expect("encode"))
}

fn setup() -> (EmbeddedBroker, ClientConfig) {
    let broker = EmbeddedBroker::start().expect("broker");
    orchestra::topics::create_embedded(&broker, 2).expect("topics");
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", broker.bootstrap_servers());
    (broker, client)
}

#[test]
fn a_faithful_log_replays_clean() {
    let (broker, client) = setup();
    let b = broker.bootstrap_servers();
    let (e1, e2, f1) = (
        created("m1", 1_000),
        completed("m1", 9_000),
        created("m2", 2_000),
    );
    testing::produce(
        &b,
        topics::MATCH_EVENTS,
        &[encode(&e1), encode(&e2), encode(&f1)],
        0,
    )
    .expect("events");
    let s1 = evolve(Some(evolve(None, &e1)), &e2);
    let s2 = evolve(None, &f1);
    let h1 = evolve_history(Some(evolve_history(None, &e1)), &e2);
    testing::produce(
        &b,
        topics::MATCH_STATE,
        &[
            (
                "m1".into(),
                serde_json::to_vec(&evolve(None, &e1)).expect("encode"),
            ),
            ("m1".into(), serde_json::to_vec(&s1).expect("encode")),
            ("m2".into(), serde_json::to_vec(&s2).expect("encode")),
        ],
        0,
    )
    .expect("state");
    testing::produce(
        &b,
        topics::MATCH_HISTORY,
        &[("m1".into(), serde_json::to_vec(&h1).expect("encode"))],
        0,
    )
    .expect("history");

    let report = replay(&client).expect("replay");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.events_read, 3);
    assert_eq!(report.matches_replayed, 2);
    assert_eq!((report.compared_state, report.compared_history), (2, 1));
    assert!(report.to_string().contains("replay: clean"));
}

#[test]
fn every_difference_is_reported() {
    let (broker, client) = setup();
    let b = broker.bootstrap_servers();
    let (e1, e2, f1) = (
        created("m1", 1_000),
        completed("m1", 9_000),
        created("m2", 2_000),
    );
    let mut events = vec![encode(&e1), encode(&e2), encode(&f1)];
    events.push(("m9".into(), b"{not json".to_vec()));
    testing::produce(&b, topics::MATCH_EVENTS, &events, 0).expect("events");

    let s1 = evolve(Some(evolve(None, &e1)), &e2);
    let mut s2_wrong = evolve(None, &f1);
    s2_wrong.total_rounds = 7;
    testing::produce(
        &b,
        topics::MATCH_STATE,
        &[
            ("m1".into(), serde_json::to_vec(&s1).expect("encode")),
            ("m2".into(), serde_json::to_vec(&s2_wrong).expect("encode")),
            (
                "m3".into(),
                serde_json::to_vec(&evolve(None, &created("m3", 3_000))).expect("encode"),
            ),
        ],
        0,
    )
    .expect("state");
    // m1's history is final in the replay but missing from the live topic.

    let report = replay(&client).expect("replay");
    assert!(!report.is_clean());
    assert_eq!(report.events_read, 4);
    assert_eq!(report.undecodable_events.len(), 1, "{report}");
    assert!(report.undecodable_events[0]
        .reason
        .contains("malformed_json"));
    assert_eq!((report.compared_state, report.compared_history), (3, 1));
    let found: Vec<(&str, &str, MismatchKind)> = report
        .mismatches
        .iter()
        .map(|m| (m.topic, m.key.as_str(), m.kind))
        .collect();
    assert_eq!(
        found,
        vec![
            (topics::MATCH_STATE, "m2", MismatchKind::BytesDiffer),
            (topics::MATCH_STATE, "m3", MismatchKind::MissingReplay),
            (topics::MATCH_HISTORY, "m1", MismatchKind::MissingLive),
        ]
    );
    let m2 = &report.mismatches[0];
    assert!(
        m2.detail.contains("totalRounds: live 7 vs replay 1"),
        "{}",
        m2.detail
    );
    let text = report.to_string();
    assert!(text.contains("MISMATCH match-state m2"), "{text}");
    assert!(text.contains("MISMATCHES FOUND"), "{text}");
}
