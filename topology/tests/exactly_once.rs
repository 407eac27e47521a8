//! exactly_once on the embedded broker.
//!
//! The mock broker does not filter aborted records for `read_committed` readers, so these
//! tests verify through store state and by reading what the transactions committed: the
//! runtime buffers outputs and store writes until the transaction commits, so a failure
//! leaves nothing in any topic or store. On a real broker, `read_committed` readers
//! additionally skip records of transactions aborted after they were sent (a crash in
//! the middle of `commit_transaction`), and zombie workers are fenced by the
//! transactional id and consumer-group generation.

mod common;

use std::sync::atomic::Ordering;

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
        cfg("eos-2").commit_interval(std::time::Duration::from_secs(3_600)),
    )
    .unwrap();
    let err = w.wait().expect_err("the worker stops on the poison record");
    assert_eq!(
        w.stats().processed.load(Ordering::Relaxed),
        (poison_at - clean) as u64,
        "the good records before the poison were processed"
    );
    assert!(err.to_string().contains("poison"), "{err}");

    // Nothing of the failed transaction is visible: outputs only for the committed inputs.
    let outputs =
        testing::read_topic(&broker.bootstrap_servers(), reference::OUTPUT, 0, WAIT).unwrap();
    assert_eq!(
        outputs.len(),
        clean,
        "outputs exist exactly for the committed inputs"
    );

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
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        events.len(),
        WAIT,
    )
    .unwrap();
    assert_eq!(
        outputs.len(),
        events.len(),
        "no output lost, none duplicated"
    );
    let counts: u64 = {
        let (db, _) = SledStore::open_db(
            &dir.path().join(APP).join("0_0"),
            &SledStoreConfig::default(),
        )
        .unwrap();
        let store = SledStore::new(&db, reference::STORE).unwrap();
        store
            .range("", None)
            .unwrap()
            .iter()
            .map(|(_, v)| serde_json::from_slice::<Aggregate>(v).unwrap().count)
            .sum()
    };
    assert_eq!(
        counts,
        events.len() as u64,
        "each input counted exactly once"
    );
}
