//! The commit sequence, in the order that makes it safe. It runs over the tasks, a
//! [`CommitProducer`] and an [`OffsetCommitter`], so the stream worker (Kafka clients,
//! `kafka_io.rs`) and the test driver (in memory) run the same code.
//!
//! Each task takes part through Kafka Streams' `Task` contract:
//!
//! ```text
//!   commit_needed()? ──no──▶ nothing to do
//!        │ yes
//!        ▼
//!   prepare_commit()   records the input positions in the offsets store, freezes the
//!        │             stores and returns their changelog records (no other effect)
//!        ▼
//!   (records sent, delivered; input offsets committed — by the sequence below)
//!        │
//!        ├── success ──▶ post_commit(checkpoints)   the stores apply exactly what was
//!        │                                          prepared, with the changelog offsets
//!        └── failure ──▶ abort()                    prepared and buffered writes dropped
//! ```
//!
//! at_least_once:
//! 1. deliver the outputs (produced as records were processed): wait for every
//!    acknowledgement — a failure stops here, before anything is logged, and the records
//!    are processed again after restart (a changelog record logged now would outlive the
//!    failure: the input positions recorded in the task's state would make the restarted
//!    task skip the records whose outputs were lost). A processor that recovers its state
//!    from its own output (`ProcessorDef::recover_from`) relies on it too: no store change
//!    is logged whose event is not in the sink, and each task records how far its
//!    partition of that sink is covered;
//! 2. prepare each task and produce its changelog records, and wait for them;
//! 3. commit the input offsets;
//! 4. post-commit: each store applies its prepared changes to sled in one batch with the
//!    changelog checkpoint they reached. A crash between 3 and 4 leaves an older
//!    checkpoint: restore reads the changelog tail and catches up.
//!
//! exactly_once: one transaction per commit holds the buffered outputs, the changelog
//! records and the input offsets (`send_offsets_to_transaction`); stores apply their
//! prepared changes only after the transaction commits, and drop them on abort.
//!
//! On a real broker `read_committed` consumers (our restore consumers and any downstream
//! reader) also skip records of aborted transactions. The embedded broker does not filter
//! them, which is why outputs are buffered until the commit instead of produced eagerly:
//! a processor failure then leaves nothing in any topic, on any broker.

use std::collections::{BTreeMap, HashMap};

use crate::record::OutRecord;
use crate::task::Task;
use crate::task_id::TaskId;
use crate::TopologyError;

/// The next offset to read of one input partition: what a commit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputOffset {
    pub topic: String,
    pub partition: i32,
    pub next: i64,
}

/// Where a commit's records go.
pub(crate) trait CommitProducer {
    /// exactly_once: opens the commit's transaction.
    fn begin_transaction(&mut self) -> Result<(), TopologyError>;
    /// Sends one record (an output under exactly_once, or a changelog record).
    fn send(&mut self, rec: &OutRecord) -> Result<(), TopologyError>;
    /// Returns once every record sent so far — the outputs handed over while processing
    /// included — is acknowledged; fails if any was not delivered.
    fn deliver(&mut self) -> Result<(), TopologyError>;
    /// The last delivered offset of a changelog or recovered sink partition.
    fn last_delivered(&self, topic: &str, partition: i32) -> Option<i64>;
    /// exactly_once: adds the input offsets to the transaction and commits it.
    fn commit_transaction(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError>;
    /// exactly_once: aborts the transaction (its records are never read committed).
    fn abort_transaction(&mut self);
}

/// Where at_least_once input offsets go (the consumer group).
pub(crate) trait OffsetCommitter {
    /// Commits the input offsets.
    fn commit_offsets(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError>;
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// No task needed a commit.
    Nothing,
    /// Every task committed.
    Done,
}

/// Commits every task (see the module docs); `sync` makes the store batches durable.
/// On failure every task is aborted (and, under exactly_once, the transaction): the
/// caller stops, and the records since the last commit are processed again.
pub(crate) fn commit_tasks(
    tasks: &mut BTreeMap<TaskId, Task>,
    io: &mut (impl CommitProducer + OffsetCommitter),
    eos: bool,
    sync: bool,
) -> Result<Committed, TopologyError> {
    if !tasks.values().any(Task::commit_needed) {
        return Ok(Committed::Nothing);
    }
    let result = if eos {
        commit_transactional(tasks, io)
    } else {
        commit_at_least_once(tasks, io)
    };
    let logged = match result {
        Ok(logged) => logged,
        Err(e) => {
            if eos {
                tracing::error!(error = %e, "commit failed; aborting the transaction");
                io.abort_transaction();
            }
            for task in tasks.values_mut() {
                task.abort();
            }
            return Err(e);
        }
    };
    for (id, task) in tasks.iter_mut() {
        let mut checkpoints = HashMap::new();
        for (store, topic) in logged.get(id).into_iter().flatten() {
            if let Some(off) = io.last_delivered(topic, id.partition) {
                checkpoints.insert(store.clone(), off + 1);
            }
        }
        task.post_commit(&checkpoints, sync)?;
    }
    Ok(Committed::Done)
}

/// Per task, the (store, changelog topic) pairs this commit produced records for.
type Logged = HashMap<TaskId, Vec<(String, String)>>;

fn commit_at_least_once(
    tasks: &mut BTreeMap<TaskId, Task>,
    io: &mut (impl CommitProducer + OffsetCommitter),
) -> Result<Logged, TopologyError> {
    io.deliver()?;
    let logged = prepare_and_send(tasks, io, false)?;
    io.deliver()?;
    let offsets = input_offsets(tasks);
    if !offsets.is_empty() {
        io.commit_offsets(&offsets)?;
    }
    Ok(logged)
}

fn commit_transactional(
    tasks: &mut BTreeMap<TaskId, Task>,
    io: &mut (impl CommitProducer + OffsetCommitter),
) -> Result<Logged, TopologyError> {
    io.begin_transaction()?;
    let logged = prepare_and_send(tasks, io, true)?;
    io.commit_transaction(&input_offsets(tasks))?;
    io.deliver()?;
    Ok(logged)
}

/// Sends each task's buffered outputs (exactly_once), records its recovered sinks'
/// covered positions, prepares it and sends its changelog records.
fn prepare_and_send(
    tasks: &mut BTreeMap<TaskId, Task>,
    io: &mut impl CommitProducer,
    send_outputs: bool,
) -> Result<Logged, TopologyError> {
    let mut logged: Logged = HashMap::new();
    for (id, task) in tasks.iter_mut() {
        if send_outputs {
            for rec in task.out.drain(..) {
                io.send(&rec)?;
            }
        }
        task.record_sink_ends(|topic, partition| io.last_delivered(topic, partition))?;
        for (store, rec) in task.prepare_commit()? {
            let entry = logged.entry(*id).or_default();
            if !entry.iter().any(|(s, _)| *s == store) {
                entry.push((store, rec.topic.to_string()));
            }
            io.send(&rec)?;
        }
    }
    Ok(logged)
}

fn input_offsets(tasks: &BTreeMap<TaskId, Task>) -> Vec<InputOffset> {
    tasks
        .iter()
        .flat_map(|(id, task)| {
            task.next_offsets.iter().map(|(topic, next)| InputOffset {
                topic: topic.clone(),
                partition: id.partition,
                next: *next,
            })
        })
        .collect()
}
