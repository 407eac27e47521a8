//! Acceptance tests of the runtime on the embedded broker (real rdkafka clients, real
//! sled files in temp dirs).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use state_stores::{SledStore, SledStoreConfig, Storage};
use topology::reference;
use topology::{
    testing, DriverConfig, StreamWorker, TopologyTestDriver, WorkerHandle, WorkerState,
};

fn wait_processed(worker: &WorkerHandle, n: u64) {
    assert!(
        testing::wait_until(WAIT, || worker.stats().processed.load(Ordering::Relaxed)
            >= n),
        "worker processed {} of {n}",
        worker.stats().processed.load(Ordering::Relaxed)
    );
}

fn wait_committed(broker: &topology::EmbeddedBroker, total: i64, partitions: i32) {
    assert!(
        testing::wait_until(WAIT, || {
            testing::committed_offsets(
                &broker.bootstrap_servers(),
                APP,
                reference::INPUT,
                partitions,
            )
            .map(|m| m.values().sum::<i64>() >= total)
            .unwrap_or(false)
        }),
        "offsets of {total} records were not committed"
    );
}

fn wait_running(worker: &WorkerHandle, tasks: usize) {
    assert!(
        testing::wait_until(WAIT, || worker.stats().state() == WorkerState::Running
            && worker.stats().tasks().len() == tasks),
        "worker did not reach Running with {tasks} tasks: {:?} {:?}",
        worker.stats().state(),
        worker.stats().tasks()
    );
}

#[test]
fn reference_topology_gives_same_outputs_under_driver_and_embedded_broker() {
    let partitions = 4;
    let events = reference::events(2_000, 50, 0);
    let mut driver = TopologyTestDriver::with_config(
        topology(),
        APP,
        DriverConfig {
            partitions,
            ..Default::default()
        },
    )
    .unwrap();
    for (i, (k, e)) in events.iter().enumerate() {
        driver
            .pipe_json(reference::INPUT, k, e, 1_700_000_000_000 + i as i64)
            .unwrap();
    }
    let mut expected_out: Vec<(String, String)> = driver
        .read_output(reference::OUTPUT)
        .iter()
        .map(|r| (r.key_str(), r.value_str().unwrap()))
        .collect();
    let mut expected_summaries: Vec<(String, String)> = driver
        .read_output(reference::SUMMARIES)
        .iter()
        .map(|r| (r.key_str(), r.value_str().unwrap()))
        .collect();
    assert_eq!(expected_out.len(), events.len());
    assert!(
        !expected_summaries.is_empty(),
        "the punctuator fired under the driver"
    );

    let broker = broker(partitions);
    let dir = tempfile::tempdir().unwrap();
    produce(&broker, &events);
    let worker = StreamWorker::start(topology(), config(&broker, "w1", dir.path())).unwrap();
    wait_processed(&worker, events.len() as u64);
    worker.shutdown().unwrap();
    let mut got_out: Vec<(String, String)> = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        events.len(),
        WAIT,
    )
    .unwrap()
    .iter()
    .map(|r| (r.key_str(), r.value_str()))
    .collect();
    let mut got_summaries: Vec<(String, String)> = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::SUMMARIES,
        expected_summaries.len(),
        WAIT,
    )
    .unwrap()
    .iter()
    .map(|r| (r.key_str(), r.value_str()))
    .collect();
    // Per-key order is what Kafka guarantees; compare per key in order.
    expected_out.sort_by(|a, b| a.0.cmp(&b.0));
    got_out.sort_by(|a, b| a.0.cmp(&b.0));
    expected_summaries.sort();
    got_summaries.sort();
    assert_eq!(got_out, expected_out);
    assert_eq!(got_summaries, expected_summaries);
}

#[test]
fn crash_then_restore_from_changelog_and_kept_state_reads_only_the_tail() {
    let partitions = 4;
    let broker = broker(partitions);
    let dir_a = tempfile::tempdir().unwrap();
    let first = reference::events(1_000, 100, 0);
    produce(&broker, &first);

    // Worker A processes everything, commits, then dies without a clean shutdown.
    let a = StreamWorker::start(topology(), config(&broker, "a", dir_a.path())).unwrap();
    wait_processed(&a, first.len() as u64);
    wait_committed(&broker, first.len() as i64, partitions);
    a.kill();

    // Worker B starts with an EMPTY state directory: it restores from the changelog.
    let dir_b = tempfile::tempdir().unwrap();
    let b = StreamWorker::start(topology(), config(&broker, "b", dir_b.path())).unwrap();
    wait_running(&b, partitions as usize);
    assert!(
        b.stats().restored.load(Ordering::Relaxed) > 0,
        "B restored from the changelog"
    );
    assert_eq!(
        local_store(&b),
        reference::fold(&first),
        "restored store equals the reference fold"
    );

    // B processes more and stops cleanly; its changelog writes are the tail A never saw.
    let second = reference::events(500, 100, 1_000);
    produce(&broker, &second);
    wait_processed(&b, second.len() as u64);
    b.shutdown().unwrap();

    // Checkpoints A left in its kept directory, and the changelog ends now.
    // (the aggregates store and the internal input-offsets store both have changelogs)
    let mut expected_tail = 0;
    let mut total_changelog = 0;
    for (store, ends) in changelog_ends(&broker) {
        total_changelog += ends.values().sum::<i64>();
        for p in 0..partitions {
            let task_dir = dir_a.path().join(APP).join(format!("0_{p}"));
            let (db, _) = SledStore::open_db(&task_dir, &SledStoreConfig::default()).unwrap();
            let cp = SledStore::new(&db, &store)
                .unwrap()
                .checkpoint()
                .unwrap()
                .unwrap_or(0);
            expected_tail += ends[&p] - cp;
        }
    }
    assert!(
        expected_tail > 0 && expected_tail < total_changelog,
        "tail {expected_tail} of {total_changelog}"
    );

    // Worker C reuses A's directory: it reads only the tail after A's checkpoints.
    let c = StreamWorker::start(topology(), config(&broker, "c", dir_a.path())).unwrap();
    wait_running(&c, partitions as usize);
    assert_eq!(
        c.stats().restored.load(Ordering::Relaxed),
        expected_tail as u64
    );
    let all: Vec<_> = first.iter().chain(second.iter()).cloned().collect();
    assert_eq!(local_store(&c), reference::fold(&all));
    c.shutdown().unwrap();
}

/// Input offsets committed under [`APP`] for `partitions` partitions, by partition.
fn committed(broker: &topology::EmbeddedBroker, partitions: i32) -> BTreeMap<i32, i64> {
    testing::committed_offsets(
        &broker.bootstrap_servers(),
        APP,
        reference::INPUT,
        partitions,
    )
    .unwrap()
    .into_iter()
    .collect()
}

#[test]
fn a_kill_with_uncommitted_input_in_flight_is_processed_again_after_a_restart() {
    let partitions = 4;
    let broker = broker(partitions);
    let dir = tempfile::tempdir().unwrap();
    let first = reference::events(1_000, 100, 0);
    let second = reference::events(1_000, 100, 1_000);
    let all: Vec<_> = first.iter().chain(second.iter()).cloned().collect();
    produce(&broker, &first);
    let a = StreamWorker::start(topology(), config(&broker, "a", dir.path())).unwrap();
    wait_processed(&a, first.len() as u64);
    wait_committed(&broker, first.len() as i64, partitions);
    a.shutdown().unwrap();

    // B processes the second half but is killed before its first commit: outputs sent,
    // store writes buffered, input offsets not committed.
    produce(&broker, &second);
    let b = StreamWorker::start(
        topology(),
        config(&broker, "b", dir.path()).commit_interval(std::time::Duration::from_secs(3_600)),
    )
    .unwrap();
    wait_processed(&b, second.len() as u64);
    assert_eq!(
        committed(&broker, partitions).values().sum::<i64>(),
        first.len() as i64,
        "B's input is in flight, uncommitted"
    );
    b.kill();

    // C restarts on the same directory: every input B had not committed is processed
    // again, and counted once in the store.
    let c = StreamWorker::start(topology(), config(&broker, "c", dir.path())).unwrap();
    wait_committed(&broker, all.len() as i64, partitions);
    assert_eq!(local_store(&c), reference::fold(&all));
    c.shutdown().unwrap();
    assert_eq!(
        c.stats().processed.load(Ordering::Relaxed),
        second.len() as u64,
        "C processed B's uncommitted input again, and nothing committed before it"
    );
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        all.len(),
        WAIT,
    )
    .unwrap();
    assert_outputs_at_least_once(&outputs, &all);
}

#[test]
fn restore_split_between_any_number_of_restore_consumers_equals_the_fold() {
    let partitions = 4;
    let broker = broker(partitions);
    let events = reference::events(1_200, 150, 0);
    produce(&broker, &events);
    let dir_a = tempfile::tempdir().unwrap();
    let a = StreamWorker::start(topology(), config(&broker, "a", dir_a.path())).unwrap();
    wait_processed(&a, events.len() as u64);
    wait_committed(&broker, events.len() as i64, partitions);
    a.shutdown().unwrap();
    let changelog_records: u64 = changelog_ends(&broker)
        .iter()
        .map(|(_, ends)| ends.values().sum::<i64>() as u64)
        .sum();
    // One consumer for all four tasks, three (tasks shared unevenly), more than tasks.
    for consumers in [1, 3, 6] {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            config(&broker, &format!("r{consumers}"), dir.path()).restore_consumers(consumers);
        let w = StreamWorker::start(topology(), cfg).unwrap();
        wait_running(&w, partitions as usize);
        assert_eq!(
            w.stats().restored.load(Ordering::Relaxed),
            changelog_records,
            "{consumers} restore consumers read every changelog record once"
        );
        assert_eq!(
            local_store(&w),
            reference::fold(&events),
            "{consumers} restore consumers"
        );
        w.shutdown().unwrap();
    }
}

#[test]
fn two_workers_split_partitions_and_failover_loses_nothing() {
    let partitions = 4;
    let broker = broker(partitions);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = StreamWorker::start(topology(), config(&broker, "w1", d1.path())).unwrap();
    let w2 = StreamWorker::start(topology(), config(&broker, "w2", d2.path())).unwrap();
    assert!(testing::wait_until(WAIT, || w1.stats().tasks().len()
        + w2.stats().tasks().len()
        == partitions as usize
        && !w1.stats().tasks().is_empty()
        && !w2.stats().tasks().is_empty()));
    let first = reference::events(1_000, 100, 0);
    produce(&broker, &first);
    assert!(testing::wait_until(WAIT, || w1
        .stats()
        .processed
        .load(Ordering::Relaxed)
        + w2.stats().processed.load(Ordering::Relaxed)
        >= first.len() as u64));
    assert!(
        w1.stats().processed.load(Ordering::Relaxed) > 0
            && w2.stats().processed.load(Ordering::Relaxed) > 0,
        "both workers processed records"
    );

    w1.shutdown().unwrap();
    wait_running(&w2, partitions as usize);
    let second = reference::events(1_000, 100, 1_000);
    produce(&broker, &second);
    let all: Vec<_> = first.iter().chain(second.iter()).cloned().collect();
    let expected = reference::fold(&all);
    assert!(
        testing::wait_until(WAIT, || local_store(&w2) == expected),
        "w2 holds every key with every record's effect"
    );
    assert!(
        w2.stats().restored.load(Ordering::Relaxed) > 0,
        "w2 restored w1's tasks"
    );
    w2.shutdown().unwrap();
}

#[test]
fn failover_after_a_kill_with_uncommitted_input_in_flight_loses_nothing() {
    let partitions = 4;
    let broker = broker(partitions);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let processed = |w: &WorkerHandle| w.stats().processed.load(Ordering::Relaxed);
    // w1 commits only when partitions are taken from it, never on its own.
    let w1 = StreamWorker::start(
        topology(),
        config(&broker, "w1", d1.path()).commit_interval(std::time::Duration::from_secs(3_600)),
    )
    .unwrap();
    wait_running(&w1, partitions as usize);
    let before = reference::events(400, 100, 0);
    produce(&broker, &before);
    wait_processed(&w1, before.len() as u64);
    // w2 joins: w1 commits (its stores and the input offsets recorded in them; the
    // embedded broker may refuse the group commit during the rebalance, and a restored
    // task starts from its recorded offsets then) and hands over half of its tasks, which
    // w2 restores from their changelogs.
    let w2 = StreamWorker::start(topology(), config(&broker, "w2", d2.path())).unwrap();
    assert!(testing::wait_until(WAIT, || w1.stats().tasks().len()
        + w2.stats().tasks().len()
        == partitions as usize
        && !w1.stats().tasks().is_empty()
        && w2.stats().state() == WorkerState::Running
        && !w2.stats().tasks().is_empty()));
    let w1_commits = w1.stats().commits.load(Ordering::Relaxed);
    let w2_restored = w2.stats().restored.load(Ordering::Relaxed);
    assert!(w2_restored > 0, "w2 restored the tasks w1 handed over");

    let in_flight = reference::events(1_000, 100, 400);
    produce(&broker, &in_flight);
    assert!(testing::wait_until(WAIT, || processed(&w1)
        + processed(&w2)
        >= (before.len() + in_flight.len()) as u64));
    let w1_share = processed(&w1) - before.len() as u64;
    assert!(w1_share > 0, "w1 processed some of the in-flight records");
    assert_eq!(
        w1.stats().commits.load(Ordering::Relaxed),
        w1_commits,
        "w1's share of the in-flight records is uncommitted"
    );

    // w1 dies without committing; w2 takes its tasks over and processes w1's input again.
    w1.kill();
    wait_running(&w2, partitions as usize);
    let after = reference::events(1_000, 100, 1_400);
    produce(&broker, &after);
    let all: Vec<_> = before
        .iter()
        .chain(in_flight.iter())
        .chain(after.iter())
        .cloned()
        .collect();
    let expected = reference::fold(&all);
    assert!(
        testing::wait_until(WAIT, || local_store(&w2) == expected),
        "w2 holds every key with every record's effect, once"
    );
    wait_committed(&broker, all.len() as i64, partitions);
    w2.shutdown().unwrap();
    assert_eq!(
        processed(&w2),
        (in_flight.len() + after.len()) as u64,
        "w2 processed its share of the in-flight records, w1's ({w1_share}) again, and the rest"
    );
    assert!(
        w2.stats().restored.load(Ordering::Relaxed) > w2_restored,
        "w2 restored w1's tasks"
    );
    let outputs = testing::read_topic(
        &broker.bootstrap_servers(),
        reference::OUTPUT,
        all.len(),
        WAIT,
    )
    .unwrap();
    assert_outputs_at_least_once(&outputs, &all);
}

#[test]
fn corrupted_sled_directory_is_wiped_and_rebuilt_from_the_changelog() {
    let partitions = 2;
    let broker = broker(partitions);
    let dir = tempfile::tempdir().unwrap();
    let events = reference::events(600, 40, 0);
    produce(&broker, &events);
    let w = StreamWorker::start(topology(), config(&broker, "w", dir.path())).unwrap();
    wait_processed(&w, events.len() as u64);
    w.shutdown().unwrap();

    // Overwrite every file of every task database with garbage.
    let mut corrupted = 0;
    for task in std::fs::read_dir(dir.path().join(APP)).unwrap() {
        for f in walk(&task.unwrap().path()) {
            std::fs::write(&f, b"garbage, not a sled file").unwrap();
            corrupted += 1;
        }
    }
    assert!(corrupted > 0);
    let w = StreamWorker::start(topology(), config(&broker, "w", dir.path())).unwrap();
    wait_running(&w, partitions as usize);
    assert_eq!(
        w.stats().rebuilt_stores.load(Ordering::Relaxed),
        partitions as u64,
        "every task store detected as corrupt"
    );
    assert_eq!(local_store(&w), reference::fold(&events));
    w.shutdown().unwrap();
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    } else {
        out.push(p.to_path_buf());
    }
    out
}

#[test]
fn malformed_input_goes_to_the_dlq_with_headers_and_processing_continues() {
    let partitions = 1;
    let broker = broker(partitions);
    let dir = tempfile::tempdir().unwrap();
    let good = reference::events(10, 5, 0);
    produce(&broker, &good[..5]);
    testing::produce_raw(
        &broker.bootstrap_servers(),
        reference::INPUT,
        &[
            (Some(b"k".to_vec()), Some(b"{not json".to_vec())),
            (None, Some(br#"{"seq":1,"payload":"no key"}"#.to_vec())),
            (Some(b"k".to_vec()), None),
        ],
    )
    .unwrap();
    produce(&broker, &good[5..]);
    let w = StreamWorker::start(topology(), config(&broker, "w", dir.path())).unwrap();
    wait_processed(&w, 13);
    w.shutdown().unwrap();
    let dlq = testing::read_topic(
        &broker.bootstrap_servers(),
        &topology::Topology::dlq_topic(APP),
        3,
        WAIT,
    )
    .unwrap();
    assert_eq!(dlq.len(), 3, "{dlq:?}");
    assert!(
        dlq[0].headers["error"].contains("invalid JSON"),
        "{:?}",
        dlq[0].headers
    );
    assert_eq!(dlq[0].value_str(), "{not json");
    assert_eq!(dlq[1].headers["error"], "record has no key");
    assert!(dlq[2].headers["error"].contains("no value"));
    for (i, r) in dlq.iter().enumerate() {
        assert_eq!(r.headers["source.topic"], reference::INPUT);
        assert_eq!(r.headers["source.partition"], "0");
        assert_eq!(r.headers["source.offset"], (5 + i).to_string());
    }
    let out =
        testing::read_topic(&broker.bootstrap_servers(), reference::OUTPUT, 10, WAIT).unwrap();
    assert_eq!(
        out.len(),
        10,
        "the valid records around the bad ones were processed"
    );
}
