//! Shared set-up of the runtime acceptance tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use topology::reference::{self, Aggregate, RefEvent};
use topology::testing::ReadRecord;
use topology::{testing, EmbeddedBroker, StreamsConfig, Topology};

pub const APP: &str = "ref-app";
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// A broker with the reference topics, `partitions` each, and the internal topics.
pub fn broker(partitions: i32) -> EmbeddedBroker {
    init_tracing();
    let b = EmbeddedBroker::start().expect("embedded broker");
    for t in [reference::INPUT, reference::OUTPUT, reference::SUMMARIES] {
        b.create_topic(t, partitions).unwrap();
    }
    b.create_internal_topics(&reference::topology(Default::default()), APP, partitions)
        .unwrap();
    b
}

pub fn config(broker: &EmbeddedBroker, worker: &str, state_dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(APP, &broker.bootstrap_servers())
        .worker_id(worker)
        .state_dir(state_dir)
        .commit_interval(Duration::from_millis(100))
        .session_timeout(Duration::from_secs(6))
}

pub fn produce(broker: &EmbeddedBroker, events: &[(String, RefEvent)]) {
    let recs: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|(k, e)| (k.clone(), serde_json::to_vec(e).unwrap()))
        .collect();
    testing::produce(
        &broker.bootstrap_servers(),
        reference::INPUT,
        &recs,
        1_700_000_000_000 + events.first().map_or(0, |e| e.1.seq as i64 * 10),
    )
    .unwrap();
}

pub fn topology() -> Topology {
    reference::topology(Default::default())
}

/// End offsets (partition → offset) of each changelog the reference topology writes under
/// [`APP`], by store: the aggregates store and sub-topology 0's input-offsets store.
pub fn changelog_ends(
    broker: &EmbeddedBroker,
) -> Vec<(String, std::collections::HashMap<i32, i64>)> {
    [reference::STORE.to_string(), Topology::offsets_store(0)]
        .into_iter()
        .map(|store| {
            let changelog = Topology::changelog_topic(APP, &store);
            let ends = testing::end_offsets(&broker.bootstrap_servers(), &changelog).unwrap();
            (store, ends)
        })
        .collect()
}

/// Per key, the aggregates the reference topology publishes for `events` in order: the
/// fold after each of the key's events.
pub fn expected_outputs(events: &[(String, RefEvent)]) -> BTreeMap<String, Vec<Aggregate>> {
    let mut running: BTreeMap<String, Aggregate> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<Aggregate>> = BTreeMap::new();
    for (k, e) in events {
        let a = running.entry(k.clone()).or_default();
        a.count += 1;
        a.last_seq = e.seq;
        a.last = e.payload.clone();
        out.entry(k.clone()).or_default().push(a.clone());
    }
    out
}

/// `ref-aggregates` records by key, in the order they were read (a key lives on one
/// partition, so that is the order they were written in).
pub fn outputs_by_key(records: &[ReadRecord]) -> BTreeMap<String, Vec<Aggregate>> {
    let mut out: BTreeMap<String, Vec<Aggregate>> = BTreeMap::new();
    for r in records {
        let a: Aggregate = serde_json::from_slice(r.value.as_deref().expect("an output value"))
            .expect("an aggregate");
        out.entry(r.key_str()).or_default().push(a);
    }
    out
}

/// Asserts that `outputs` hold exactly one record per input of `events`, per key in input
/// order, each the fold of the key's inputs so far: a lost output and a duplicated one
/// both fail it, even when they cancel out in a count.
pub fn assert_outputs_exactly_once(outputs: &[ReadRecord], events: &[(String, RefEvent)]) {
    let got = outputs_by_key(outputs);
    let want = expected_outputs(events);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the keys with outputs"
    );
    for (k, w) in &want {
        let g = &got[k];
        assert!(
            g == w,
            "outputs of {k}: {} records with counts {:?}, expected {} with counts 1..={}",
            g.len(),
            g.iter().map(|a| a.count).collect::<Vec<_>>(),
            w.len(),
            w.len()
        );
    }
}

/// Asserts that `outputs` hold every output of `events` (the fold of each key's inputs so
/// far, first seen in input order) and nothing else; records processed again after a
/// crash may repeat outputs already sent (at_least_once), with the same values.
pub fn assert_outputs_at_least_once(outputs: &[ReadRecord], events: &[(String, RefEvent)]) {
    let got = outputs_by_key(outputs);
    let want = expected_outputs(events);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the keys with outputs"
    );
    for (k, w) in &want {
        let mut first_seen: Vec<&Aggregate> = Vec::new();
        for a in &got[k] {
            if !first_seen.contains(&a) {
                first_seen.push(a);
            }
        }
        assert!(
            first_seen.iter().copied().eq(w.iter()),
            "outputs of {k}: distinct counts {:?} in the order first seen, expected 1..={}",
            first_seen.iter().map(|a| a.count).collect::<Vec<_>>(),
            w.len()
        );
    }
}

/// The reference store's entries held by `worker`'s tasks.
pub fn local_store(worker: &topology::WorkerHandle) -> BTreeMap<String, Aggregate> {
    worker
        .local_entries(reference::STORE)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}
