//! A worker whose assignment the group takes away without a revocation (here: it did
//! not poll within `max.poll.interval.ms`, the same loss as a session that expires during
//! a broker outage) delivers none of the work it did not commit: the partition's new
//! owner processes those records again, and the old owner's outputs of them never reach
//! the topic, where they could land after the new owner had read it to its end. The
//! old owner stays up and rejoins.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use topology::{
    testing, Context, ProcessError, ProcessingGuarantee, Processor, ProcessorDef, StreamWorker,
    Topology, TopologyBuilder,
};

const INPUT: &str = "work";
const OUTPUT: &str = "done";
const SLOW_KEY: &str = "k2";
/// Longer than the stalled worker's `max.poll.interval.ms` below.
const STALL: Duration = Duration::from_secs(6);

/// Forwards each record's key with the name of the processor instance that processed it
/// (`w1#1`: worker w1's first task). The stalling worker's first instance sleeps once, on
/// [`SLOW_KEY`], before forwarding it, and records its name in `stalled`.
struct Stamp {
    name: String,
    stalled: Option<Arc<Mutex<Option<String>>>>,
}

impl Processor for Stamp {
    type Input = serde_json::Value;

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        _: serde_json::Value,
    ) -> Result<(), ProcessError> {
        if let Some(stalled) = &self.stalled {
            let first = key == SLOW_KEY && {
                let mut s = stalled.lock().unwrap();
                s.is_none() && s.replace(self.name.clone()).is_none()
            };
            if first {
                std::thread::sleep(STALL);
            }
        }
        ctx.forward_raw("out", key, Some(self.name.as_bytes().to_vec()))
    }
}

fn stamping(worker: &'static str, stalled: Option<Arc<Mutex<Option<String>>>>) -> Topology {
    let instances = Arc::new(AtomicUsize::new(0));
    let mut b = TopologyBuilder::new();
    b.add_processor(
        ProcessorDef::new("stamp", move |_| Stamp {
            name: format!("{worker}#{}", instances.fetch_add(1, Ordering::SeqCst) + 1),
            stalled: stalled.clone(),
        })
        .input_json(INPUT, |v: serde_json::Value| v)
        .sink("out", OUTPUT),
    );
    b.build().unwrap()
}

fn produce(broker: &topology::EmbeddedBroker, keys: &[&str]) {
    let recs: Vec<(String, Vec<u8>)> = keys
        .iter()
        .map(|k| (k.to_string(), b"{}".to_vec()))
        .collect();
    testing::produce(&broker.bootstrap_servers(), INPUT, &recs, 1_700_000_000_000).unwrap();
}

/// (key, worker) of every output so far.
fn outputs(broker: &topology::EmbeddedBroker, at_least: usize) -> Vec<(String, String)> {
    testing::read_topic(&broker.bootstrap_servers(), OUTPUT, at_least, WAIT)
        .unwrap()
        .iter()
        .map(|r| {
            let by = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            (r.key_str(), by)
        })
        .collect()
}

#[test]
fn a_worker_that_lost_its_assignment_delivers_none_of_its_uncommitted_work() {
    lost_assignment(ProcessingGuarantee::AtLeastOnce);
}

/// Under exactly_once the lost work is an open transaction, aborted; the worker carries on
/// and commits again once it owns the partition again. (When the aborted transaction's
/// records were already in the producer, their failed deliveries belong to the dropped
/// work and fail no later commit: the exactly_once fault suite meets that with the broker
/// down.)
#[test]
fn under_exactly_once_a_worker_that_lost_its_assignment_aborts_it_and_carries_on() {
    lost_assignment(ProcessingGuarantee::ExactlyOnce);
}

fn lost_assignment(guarantee: ProcessingGuarantee) {
    let broker = common::broker(1);
    for t in [INPUT, OUTPUT] {
        broker.create_topic(t, 1).unwrap();
    }
    let stalled = Arc::new(Mutex::new(None));
    let slow = stamping("w1", Some(stalled.clone()));
    broker.create_internal_topics(&slow, APP, 1).unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // librdkafka needs max.poll.interval.ms >= session.timeout.ms (in every consumer the
    // worker creates, so both go through the user's settings).
    let w1 = StreamWorker::start(
        slow,
        config(&broker, "w1", d1.path())
            .processing_guarantee(guarantee)
            .kafka("session.timeout.ms", "3000")
            .kafka("max.poll.interval.ms", "3000"),
    )
    .unwrap();

    // w1 owns the partition and commits its first outputs.
    produce(&broker, &["k0", "k1"]);
    assert!(
        testing::wait_until(WAIT, || {
            testing::committed_offsets(&broker.bootstrap_servers(), APP, INPUT, 1)
                .is_ok_and(|c| c.get(&0) == Some(&2))
        }),
        "w1 never committed its first two records"
    );

    // w1 stalls on k2 past its poll interval while w2 joins: the rebalance goes on without
    // w1, which wakes up with k2's output in hand.
    produce(&broker, &[SLOW_KEY]);
    assert!(testing::wait_until(WAIT, || stalled
        .lock()
        .unwrap()
        .is_some()));
    let staller = stalled.lock().unwrap().clone().unwrap();
    let w2 = StreamWorker::start(
        stamping("w2", None),
        config(&broker, "w2", d2.path()).processing_guarantee(guarantee),
    )
    .unwrap();
    assert!(
        testing::wait_until(WAIT, || w1.stats().assignments_lost.load(Ordering::Relaxed)
            >= 1),
        "w1 never noticed that its assignment was lost"
    );
    assert!(
        w1.is_running(),
        "a lost assignment is not fatal: {:?}",
        w1.stats().failure()
    );

    // The partition's next owner (w2, or w1 again with a fresh task) processes k2 again.
    assert!(
        testing::wait_until(WAIT, || outputs(&broker, 0)
            .iter()
            .any(|(k, by)| k == SLOW_KEY && *by != staller)),
        "{SLOW_KEY} was never processed again after {staller} lost the partition: {:?}",
        outputs(&broker, 0)
    );
    // Once k3 is out too, whatever the stalled instance could have sent of k2 would be
    // in the topic before it.
    produce(&broker, &["k3"]);
    assert!(
        testing::wait_until(WAIT, || outputs(&broker, 0).iter().any(|(k, _)| k == "k3")),
        "k3 was never processed after the rebalance"
    );
    let all = outputs(&broker, 0);
    assert!(
        !all.iter().any(|(k, by)| k == SLOW_KEY && *by == staller),
        "{staller} delivered its output of {SLOW_KEY} after losing the partition: {all:?}"
    );
    for k in ["k0", "k1"] {
        assert!(
            all.iter().any(|(key, by)| key == k && *by == staller),
            "{k}: {all:?}"
        );
    }
    // w2 leaves: w1 owns the partition again and carries on (under exactly_once k4's
    // output is read only once its transaction committed).
    w2.shutdown().unwrap();
    produce(&broker, &["k4"]);
    assert!(
        testing::wait_until(WAIT, || outputs(&broker, 0)
            .iter()
            .any(|(k, by)| k == "k4" && by.starts_with("w1#"))),
        "w1 never processed k4 after it got the partition back: {:?}",
        w1.stats().failure()
    );
    assert!(w1.is_running(), "{:?}", w1.stats().failure());
    w1.shutdown().unwrap();
}
