//! Standby replicas on the embedded broker (real rdkafka clients, real sled files):
//! with `num_standby_replicas(1)` each worker keeps warm copies of the other's tasks, a
//! worker that takes over a killed worker's tasks restores only what its standbys had not
//! read yet, and the stores it continues from are right — through a failover and through
//! the hand-back when the killed worker returns.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use topology::reference;
use topology::{testing, StreamWorker, TaskId, WorkerHandle, WorkerState};

fn both_running(a: &WorkerHandle, b: &WorkerHandle, partitions: usize) -> bool {
    a.stats().state() == WorkerState::Running
        && b.stats().state() == WorkerState::Running
        && a.stats().tasks().len() + b.stats().tasks().len() == partitions
        && !a.stats().tasks().is_empty()
        && !b.stats().tasks().is_empty()
}

/// Whether `standby` holds a replica of every task in `tasks` that has applied each of
/// its changelog partitions to its end.
fn caught_up(broker: &topology::EmbeddedBroker, standby: &WorkerHandle, tasks: &[TaskId]) -> bool {
    let ends: BTreeMap<String, std::collections::HashMap<i32, i64>> = changelog_ends(broker)
        .into_iter()
        .map(|(store, ends)| (topology::Topology::changelog_topic(APP, &store), ends))
        .collect();
    let replicas = standby.standby_tasks();
    tasks.iter().all(|task| {
        replicas.iter().any(|r| {
            r.task == *task
                && !r.checkpoints.is_empty()
                && r.checkpoints.iter().all(|(topic, applied)| {
                    let end = ends
                        .get(topic)
                        .and_then(|e| e.get(&task.partition))
                        .copied()
                        .unwrap_or(0);
                    *applied >= end
                })
        })
    })
}

#[test]
fn a_failover_onto_a_standby_restores_only_the_tail_and_continues_right() {
    let partitions = 4;
    let broker = broker(partitions);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |name: &str, dir: &std::path::Path| {
        StreamWorker::start(
            topology(),
            config(&broker, name, dir).num_standby_replicas(1),
        )
        .unwrap()
    };
    let w1 = start("w1", d1.path());
    let w2 = start("w2", d2.path());
    assert!(testing::wait_until(WAIT, || both_running(
        &w1,
        &w2,
        partitions as usize
    )));

    let first = reference::events(20_000, 2_000, 0);
    produce(&broker, &first);
    let processed = |w: &WorkerHandle| w.stats().processed.load(Ordering::Relaxed);
    assert!(testing::wait_until(WAIT, || processed(&w1)
        + processed(&w2)
        >= first.len() as u64));

    // Each worker keeps a replica of each of the other's tasks, caught up with its
    // changelogs.
    let w1_tasks = w1.stats().tasks();
    let w2_tasks = w2.stats().tasks();
    assert!(
        testing::wait_until(WAIT, || caught_up(&broker, &w2, &w1_tasks)
            && caught_up(&broker, &w1, &w2_tasks)),
        "standbys: w2 {:?} of w1's {w1_tasks:?}; w1 {:?} of w2's {w2_tasks:?}",
        w2.standby_tasks(),
        w1.standby_tasks()
    );
    let w1_changelog_records: i64 = changelog_ends(&broker)
        .iter()
        .flat_map(|(_, ends)| {
            w1_tasks
                .iter()
                .map(|t| ends.get(&t.partition).copied().unwrap_or(0))
        })
        .sum();
    assert!(w1_changelog_records > 1_000, "{w1_changelog_records}");

    // w1 dies; w2 takes its tasks over from its standbys.
    let restored_before = w2.stats().restored.load(Ordering::Relaxed);
    w1.kill();
    assert!(testing::wait_until(WAIT, || w2.stats().state()
        == WorkerState::Running
        && w2.stats().tasks().len() == partitions as usize));
    let restored = w2.stats().restored.load(Ordering::Relaxed) - restored_before;
    assert!(
        restored * 20 <= w1_changelog_records as u64,
        "w2 restored {restored} of the {w1_changelog_records} changelog records of w1's tasks"
    );
    assert!(
        w2.standby_tasks().is_empty(),
        "w2 runs every task; it keeps no standby"
    );

    let second = reference::events(5_000, 2_000, 20_000);
    produce(&broker, &second);
    let all: Vec<_> = first.iter().chain(second.iter()).cloned().collect();
    let expected = reference::fold(&all);
    assert!(
        testing::wait_until(WAIT, || local_store(&w2) == expected),
        "w2 continues from the standby stores with every record's effect"
    );

    // w1 comes back on its old state dir: its standby thread and its tasks share the
    // databases, and w2's standbys take the tasks w2 hands back.
    drop(w1);
    let w1 = start("w1", d1.path());
    assert!(testing::wait_until(WAIT, || both_running(
        &w1,
        &w2,
        partitions as usize
    )));
    let third = reference::events(5_000, 2_000, 25_000);
    produce(&broker, &third);
    let all: Vec<_> = all.iter().chain(third.iter()).cloned().collect();
    let expected = reference::fold(&all);
    assert!(
        testing::wait_until(WAIT, || {
            let mut both = local_store(&w1);
            both.extend(local_store(&w2));
            both == expected
        }),
        "after the hand-back the two workers' stores hold every record's effect"
    );
    let (w1_tasks, w2_tasks) = (w1.stats().tasks(), w2.stats().tasks());
    assert!(
        testing::wait_until(WAIT, || caught_up(&broker, &w2, &w1_tasks)
            && caught_up(&broker, &w1, &w2_tasks)),
        "standbys again on both sides"
    );
    w1.shutdown().unwrap();
    w2.shutdown().unwrap();
}
