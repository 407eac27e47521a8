//! exactly_once on the embedded broker.
//!
//! These tests verify through store state and by reading what the transactions committed:
//! the runtime buffers outputs and store writes until the transaction commits, so a
//! failure leaves nothing in any topic or store. `read_committed` readers also skip
//! records of transactions aborted after they were sent (a crash in the middle of
//! `commit_transaction`), and zombie workers are fenced by the transactional id and the
//! consumer-group generation (`embedded_transactions.rs` shows the broker's side).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use state_stores::{KeyValueStore, SledStore, SledStoreConfig};
use topology::reference::{self, Aggregate, Options};
use topology::{testing, ErrorHandling, ProcessingGuarantee, StreamWorker};

#[test]
fn a_processor_failing_mid_transaction_leaves_no_outputs_and_no_store_changes() {
    let partitions = 1;
    let broker = broker(partitions);
    let dir = tempfile::tempdir().unwrap();
    let mut events = reference::events(3_000, 50, 0);
    let clean = 2_500;
    let poison_at = 2_600;
    events[poison_at].1.payload = "poison".into();
    produce(&broker, &events[..clean]);

    let failing = reference::topology(Options {
        fail_on_payload: Some("poison".into()),
        ..Options::default()
    });
    let cfg = |worker: &str| {
        config(&broker, worker, dir.path())
            .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
            .error_handling(ErrorHandling::Fail, ErrorHandling::Fail)
    };
    // The first records commit in the transactions of a worker that then stops cleanly.
    let w = StreamWorker::start(failing.clone(), cfg("eos-1")).unwrap();
    let first =
        testing::read_topic(&broker.bootstrap_servers(), reference::OUTPUT, clean, WAIT).unwrap();
    assert_eq!(first.len(), clean, "the first transactions committed");
    w.shutdown().unwrap();
    // Then a batch whose 101st record is poison, read by a worker whose commit interval
    // does not end before it fails: the 100 good records before the poison are
    // processed inside the transaction that fails, and only there.
    produce(&broker, &events[clean..]);
    let w = StreamWorker::start(
        failing,
        cfg("eos-2").commit_interval(Duration::from_secs(3_600)),
    )
    .unwrap();
    let err = w.wait().expect_err("the worker stops on the poison record");
    assert_eq!(
        w.stats().processed.load(Ordering::Relaxed),
        (poison_at - clean) as u64,
        "the good records before the poison were processed"
    );
    assert!(err.to_string().contains("poison"), "{err}");

    // Nothing of the failed transaction is visible: outputs only for the committed inputs,
    // one each, per key the fold so far.
    let outputs =
        testing::read_topic(&broker.bootstrap_servers(), reference::OUTPUT, 0, WAIT).unwrap();
    assert_outputs_exactly_once(&outputs, &events[..clean]);

    // The local store holds the fold of exactly the committed inputs, and the input
    // offset recorded with it is the end of the last committed transaction.
    {
        let (db, _) = SledStore::open_db(
            &dir.path().join(APP).join("0_0"),
            &SledStoreConfig::default(),
        )
        .unwrap();
        let store = SledStore::new(&db, reference::STORE).unwrap();
        let local: std::collections::BTreeMap<String, Aggregate> = store
            .range("", None)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
            .collect();
        assert_eq!(local, reference::fold(&events[..clean]));
        let offsets = SledStore::new(&db, &topology::Topology::offsets_store(0)).unwrap();
        assert_eq!(
            offsets.get(reference::INPUT).unwrap(),
            Some(clean.to_string().into_bytes())
        );
    }

    // A healthy worker resumes: every input has exactly one effect.
    let cfg =
        config(&broker, "eos-3", dir.path()).processing_guarantee(ProcessingGuarantee::ExactlyOnce);
    let w = StreamWorker::start(reference::topology(Options::default()), cfg).unwrap();
    assert!(testing::wait_until(WAIT, || w
        .stats()
        .processed
        .load(Ordering::Relaxed)
        >= (events.len() - clean) as u64));
    w.shutdown().unwrap();
    assert_eq!(
        w.stats().processed.load(Ordering::Relaxed),
        (events.len() - clean) as u64,
        "the inputs of the failed transaction, and only those, are processed again"
    );
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        events.len(),
        WAIT,
    )
    .unwrap();
    // Per key, against the reference fold: one lost and one duplicated record would
    // cancel out in a count, not here.
    assert_outputs_exactly_once(&outputs, &events);
    assert_eq!(
        local_store(dir.path()),
        reference::fold(&events),
        "each input counted exactly once, per key"
    );
}

/// The reference store of task 0_0 under `state_dir` (the worker must be stopped).
fn local_store(state_dir: &std::path::Path) -> BTreeMap<String, Aggregate> {
    let (db, _) = SledStore::open_db(
        &state_dir.join(APP).join("0_0"),
        &SledStoreConfig::default(),
    )
    .unwrap();
    let store = SledStore::new(&db, reference::STORE).unwrap();
    store
        .range("", None)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}

#[test]
fn a_worker_killed_with_uncommitted_input_in_flight_leaves_each_input_one_effect() {
    let partitions = 2;
    let broker = broker(partitions);
    let dir = tempfile::tempdir().unwrap();
    let events = reference::events(2_000, 60, 0);
    let (first, second) = events.split_at(1_200);
    let eos = |worker: &str| {
        config(&broker, worker, dir.path()).processing_guarantee(ProcessingGuarantee::ExactlyOnce)
    };
    // The first inputs are processed and committed (the embedded broker keeps no
    // transactional offset commits for the group: the offsets store has them).
    produce(&broker, first);
    let a = StreamWorker::start(topology(), eos("a")).unwrap();
    wait_processed(&a, first.len());
    a.shutdown().unwrap();
    // The rest are processed by a worker that does not commit before it is killed: its
    // outputs, store writes and offsets exist only in its buffers.
    produce(&broker, second);
    let b = StreamWorker::start(
        topology(),
        eos("b").commit_interval(Duration::from_secs(3_600)),
    )
    .unwrap();
    wait_processed(&b, second.len());
    assert_eq!(
        b.stats().commits.load(Ordering::Relaxed),
        0,
        "b committed nothing"
    );
    b.kill();

    // A worker restarted on the same state directory: its stores hold what was committed
    // (none of the killed worker's writes) and it processes the killed worker's inputs
    // again.
    let c = StreamWorker::start(topology(), eos("c")).unwrap();
    wait_processed(&c, second.len());
    let store: BTreeMap<String, Aggregate> = c
        .local_entries(reference::STORE)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect();
    assert_eq!(
        store,
        reference::fold(&events),
        "one effect per input, per key"
    );
    c.shutdown().unwrap();
    assert_eq!(
        c.stats().processed.load(Ordering::Relaxed),
        second.len() as u64,
        "the inputs the killed worker had not committed, and only those, are processed again"
    );
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        events.len(),
        WAIT,
    )
    .unwrap();
    assert_outputs_exactly_once(&outputs, &events);
}

fn wait_processed(worker: &topology::WorkerHandle, n: usize) {
    assert!(
        testing::wait_until(WAIT, || worker.stats().processed.load(Ordering::Relaxed)
            >= n as u64),
        "processed {} of {n}",
        worker.stats().processed.load(Ordering::Relaxed)
    );
}

/// Every transaction ends with a marker that takes an offset of each partition it wrote,
/// and no consumer ever receives it: a task recovering from its own output must know it
/// reached the end by its position, not by the offset of the last record it read.
#[test]
fn a_task_recovering_from_its_own_output_reads_past_the_last_transaction_marker() {
    let broker = broker(1);
    let events = reference::events(200, 20, 0);
    let (first, second) = events.split_at(150);
    produce(&broker, first);
    let topology = reference::topology(Options {
        recover_from_output: true,
        ..Options::default()
    });
    let cfg = |worker: &str, dir: &std::path::Path| {
        config(&broker, worker, dir).processing_guarantee(ProcessingGuarantee::ExactlyOnce)
    };
    let first_dir = tempfile::tempdir().unwrap();
    let w = StreamWorker::start(topology.clone(), cfg("recover-1", first_dir.path())).unwrap();
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        first.len(),
        WAIT,
    )
    .unwrap();
    assert_eq!(outputs.len(), first.len());
    w.shutdown().unwrap();

    // A new worker on an empty state dir restores, then reads its output partition from
    // the recorded position: the commit marker is all that is left there.
    produce(&broker, second);
    let second_dir = tempfile::tempdir().unwrap();
    let w = StreamWorker::start(topology, cfg("recover-2", second_dir.path())).unwrap();
    assert!(
        testing::wait_until(WAIT, || w.stats().processed.load(Ordering::Relaxed)
            >= second.len() as u64),
        "the new owner never processed: {:?}",
        w.stats().failure()
    );
    w.shutdown().unwrap();
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        events.len(),
        WAIT,
    )
    .unwrap();
    assert_outputs_exactly_once(&outputs, &events);
}
