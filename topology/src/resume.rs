//! Whether a task suspended at a revocation may resume at the next assignment.
//!
//! Under the eager protocol a revocation commits and suspends every task, and the next
//! assignment resumes those it gives back, with their stores and processors as they were.
//! That is right only if nobody owned the task in between, and a member can miss a
//! generation and still get its partitions back afterwards: the group expelled it while it
//! was revoking (its session ran out, or the revocation outlasted the rebalance timeout)
//! — librdkafka does not report that as a lost assignment once the member holds no
//! partitions — and the generation without it gave the partitions to another worker,
//! which processed them. A task resumed then has a state older than its changelogs and
//! processes again from its own positions: it decides again what the other owner already
//! decided, perhaps differently (a second version of a moment in a recovered sink), and
//! its state misses the other owner's changes.
//!
//! So before resuming, the worker compares where each of the task's partitions ends with
//! where the task knows it ends: each changelog partition at its store's checkpoint, each
//! recovered sink partition at the end the task last saw (see [`Task::known_sink_end`]).
//! A partition that goes further holds another writer's records, and the task is closed
//! and opened again like a new one — restored from its changelogs, recovered from its
//! sinks. Under exactly_once one more offset is the task's own: the marker of its last
//! transaction. A task that cannot tell (a sink it never wrote to since it recovered it)
//! is reopened too: that costs a restore that reads nothing new, never a wrong state.

use std::collections::BTreeMap;

use crate::restore::Restorer;
use crate::task::Task;
use crate::task_id::TaskId;
use crate::TopologyError;

/// One partition a task writes, and where the task knows it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownEnd {
    pub topic: String,
    pub partition: i32,
    /// The next offset after the last record the task knows of.
    pub end: i64,
}

/// Every changelog and recovered sink partition of `task` with its known end.
pub(crate) fn known_ends(task: &Task) -> Result<Vec<KnownEnd>, TopologyError> {
    let partition = task.id.partition;
    let mut ends = Vec::new();
    for (_, topic, checkpoint) in task.restore_plan()? {
        ends.push(KnownEnd {
            topic,
            partition,
            end: checkpoint.unwrap_or(0),
        });
    }
    for topic in task.recovered_topics() {
        let end = task.known_sink_end(&topic)?;
        ends.push(KnownEnd {
            topic,
            partition,
            end,
        });
    }
    Ok(ends)
}

/// Whether a partition whose high watermark is `high` went on past `known` (see the
/// module docs: `eos` allows the marker of the task's last transaction).
pub(crate) fn went_on(known: &KnownEnd, high: i64, eos: bool) -> bool {
    high > known.end + i64::from(eos)
}

/// The tasks of `ids` (suspended ones) that must not resume: some partition of theirs went
/// on past what they know. One watermark request per partition, all at once.
pub(crate) fn moved_on(
    restorer: &Restorer,
    tasks: &BTreeMap<TaskId, Task>,
    ids: &[TaskId],
    eos: bool,
) -> Result<Vec<TaskId>, TopologyError> {
    let mut owned: Vec<(TaskId, KnownEnd)> = Vec::new();
    for id in ids {
        if let Some(task) = tasks.get(id) {
            owned.extend(known_ends(task)?.into_iter().map(|k| (*id, k)));
        }
    }
    let partitions: Vec<(&str, i32)> = owned
        .iter()
        .map(|(_, k)| (k.topic.as_str(), k.partition))
        .collect();
    let marks = restorer.watermarks(&partitions);
    let mut moved: Vec<TaskId> = Vec::new();
    for ((id, known), marks) in owned.iter().zip(marks) {
        let (_, high) = marks?;
        if went_on(known, high, eos) && !moved.contains(id) {
            tracing::warn!(
                task = %id,
                topic = %known.topic,
                partition = known.partition,
                known = known.end,
                high,
                "another worker wrote this suspended task's partition since its revocation \
                 here: reopening the task from its changelogs instead of resuming it"
            );
            moved.push(*id);
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(end: i64) -> KnownEnd {
        KnownEnd {
            topic: "t".into(),
            partition: 0,
            end,
        }
    }

    #[test]
    fn a_partition_that_ends_where_the_task_knows_it_did_not_move_on() {
        assert!(!went_on(&known(10), 10, false));
        assert!(!went_on(&known(10), 9, false), "a broker that answers low");
        assert!(went_on(&known(10), 11, false));
    }

    #[test]
    fn under_exactly_once_the_marker_of_the_last_transaction_is_the_tasks_own() {
        assert!(!went_on(&known(10), 11, true));
        assert!(went_on(&known(10), 12, true));
    }
}
