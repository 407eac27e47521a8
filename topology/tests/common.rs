//! Shared set-up of the runtime acceptance tests.
#![allow(dead_code)]

use std::time::Duration;

use topology::reference::{self, RefEvent};
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
