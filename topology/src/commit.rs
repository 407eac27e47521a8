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
//!        │             stores and returns their changelog records (no other effect):
//!        │             the state's, and the offsets store's apart
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
//! 2. prepare each task and produce its state's changelog records, and wait for them;
//! 3. produce the offsets stores' changelog records (input positions, recovered sinks'
//!    covered positions), and wait for them. Records of different partitions travel in
//!    different requests, so a crash can land some of a commit's records and not others;
//!    this order makes the positions the last to land. A restored task starts at the
//!    positions its changelog holds: were they to land without the state of their commit,
//!    it would skip inputs, and its recovery would skip events, that its state never saw;
//! 4. commit the input offsets;
//! 5. post-commit: each store applies its prepared changes to sled in one batch with the
//!    changelog checkpoint they reached. A crash between 4 and 5 leaves an older
//!    checkpoint: restore reads the changelog tail and catches up. The batch lands behind
//!    the stream thread (`state_stores`' write-behind): reads see it at once, and a crash
//!    before it lands is the same crash between 4 and 5.
//!
//! exactly_once: one transaction per commit holds the buffered outputs, the changelog
//! records and the input offsets (`send_offsets_to_transaction`); stores apply their
//! prepared changes only after the transaction commits, and drop them on abort. The
//! offsets stores' records are sent once the rest is acknowledged here too: a reader that
//! sees an aborted transaction's records (a `read_uncommitted` one) then never sees its
//! positions without its state.
//!
//! `read_committed` consumers (our restore consumers and any downstream reader) skip
//! records of aborted transactions, on Apache Kafka and on the embedded broker alike.
//! Outputs are still buffered until the commit instead of produced eagerly: a processor
//! failure then leaves nothing in any topic, not even for a `read_uncommitted` reader.

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
    fn send(&mut self, rec: OutRecord) -> Result<(), TopologyError>;
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
        task.saw_delivered_sink_ends(|topic, partition| io.last_delivered(topic, partition));
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
/// covered positions, prepares it and sends its state's changelog records; once every
/// record sent so far is acknowledged, sends the offsets stores' records (steps 2 and 3
/// of the module docs). The caller waits for those: the at_least_once sequence before it
/// commits offsets, the transaction's commit by flushing.
fn prepare_and_send(
    tasks: &mut BTreeMap<TaskId, Task>,
    io: &mut impl CommitProducer,
    send_outputs: bool,
) -> Result<Logged, TopologyError> {
    let mut logged: Logged = HashMap::new();
    let mut positions = Vec::new();
    for (id, task) in tasks.iter_mut() {
        if send_outputs {
            for rec in task.out.drain(..) {
                io.send(rec)?;
            }
        }
        task.record_sink_ends(|topic, partition| io.last_delivered(topic, partition))?;
        let prepared = task.prepare_commit()?;
        for (store, rec) in prepared.state {
            log_store(&mut logged, *id, store, &rec);
            io.send(rec)?;
        }
        positions.extend(prepared.positions.into_iter().map(|p| (*id, p)));
    }
    io.deliver()?;
    for (id, (store, rec)) in positions {
        log_store(&mut logged, id, store, &rec);
        io.send(rec)?;
    }
    Ok(logged)
}

/// Notes that this commit produced records of `store` (for its checkpoint).
fn log_store(logged: &mut Logged, id: TaskId, store: String, rec: &OutRecord) {
    let entry = logged.entry(id).or_default();
    if !entry.iter().any(|(s, _)| *s == store) {
        entry.push((store, rec.topic.to_string()));
    }
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

#[cfg(test)]
mod tests {
    //! The commit sequence on a real task (the reference topology, memory stores) with a
    //! recording producer and committer: order, failures and aborts, checkpoints.

    use super::*;
    use crate::builder::Topology;
    use crate::dlq::ErrorHandling;
    use crate::lifecycle::TaskState;
    use crate::record::InRecord;
    use crate::reference::{self, RefEvent};
    use crate::state_manager::StoreBackend;
    use crate::task::TaskSettings;
    use state_stores::KeyValueStore;

    /// Records every call; fails the call named `fail` (once).
    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
        fail: Option<&'static str>,
        next: HashMap<(String, i32), i64>,
        delivered: HashMap<(String, i32), i64>,
    }

    impl Recorder {
        fn call(&mut self, what: &str) -> Result<(), TopologyError> {
            self.log.push(what.to_string());
            if self.fail.is_some_and(|f| what.starts_with(f)) {
                self.fail = None;
                return Err(TopologyError::Delivery(format!("{what} failed (test)")));
            }
            Ok(())
        }
    }

    impl CommitProducer for Recorder {
        fn begin_transaction(&mut self) -> Result<(), TopologyError> {
            self.call("begin")
        }
        fn send(&mut self, rec: OutRecord) -> Result<(), TopologyError> {
            self.call(&format!("send {}", rec.topic))?;
            let key = (rec.topic.to_string(), rec.partition.unwrap_or(0));
            let next = self.next.entry(key.clone()).or_insert(0);
            self.delivered.insert(key, *next);
            *next += 1;
            Ok(())
        }
        fn deliver(&mut self) -> Result<(), TopologyError> {
            self.call("deliver")
        }
        fn last_delivered(&self, topic: &str, partition: i32) -> Option<i64> {
            self.delivered.get(&(topic.to_string(), partition)).copied()
        }
        fn commit_transaction(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
            self.call(&format!("commit_transaction {}", offsets.len()))
        }
        fn abort_transaction(&mut self) {
            self.log.push("abort".into());
        }
    }

    impl OffsetCommitter for Recorder {
        fn commit_offsets(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
            self.call(&format!("commit_offsets {}", offsets.len()))
        }
    }

    const APP: &str = "app";

    fn tasks_with_one_record() -> BTreeMap<TaskId, Task> {
        let topology = reference::topology(reference::Options::default());
        let id = TaskId {
            subtopology: 0,
            partition: 0,
        };
        let settings = TaskSettings {
            application_id: APP.into(),
            backend: StoreBackend::Memory,
            deserialization_handler: ErrorHandling::Continue,
            processing_handler: ErrorHandling::Continue,
            measure_e2e: false,
        };
        let mut task = Task::new(&topology, id, settings, 0, None).unwrap();
        task.set_state(TaskState::Restoring).unwrap();
        task.set_state(TaskState::Running).unwrap();
        let value = serde_json::to_vec(&RefEvent::new(1, "x")).unwrap();
        let rec = InRecord {
            topic: reference::INPUT,
            partition: 0,
            offset: 7,
            timestamp: 1_000,
            key: Some(b"k"),
            value: Some(&value),
        };
        task.process(&rec, 1_000).unwrap();
        assert!(
            !task.out.is_empty(),
            "the reference job forwards every input"
        );
        BTreeMap::from([(id, task)])
    }

    fn changelog() -> String {
        Topology::changelog_topic(APP, reference::STORE)
    }

    fn stored(tasks: &BTreeMap<TaskId, Task>) -> (Option<Vec<u8>>, Option<i64>) {
        let task = tasks.values().next().unwrap();
        let store = &task.stores[reference::STORE];
        (store.get("k").unwrap(), store.checkpoint().unwrap())
    }

    /// The log with consecutive sends of the state's changelogs counted as one
    /// ("send changelogs"), and the same for the offsets store's ("send positions").
    fn steps(log: &[String]) -> Vec<String> {
        let positions = format!(
            "send {}",
            Topology::changelog_topic(APP, &Topology::offsets_store(0))
        );
        let mut out: Vec<String> = Vec::new();
        for line in log {
            let kind = if *line == positions {
                "send positions".to_string()
            } else if line.starts_with("send ") && line.ends_with("-changelog") {
                "send changelogs".to_string()
            } else {
                line.clone()
            };
            if out.last() != Some(&kind) {
                out.push(kind);
            }
        }
        out
    }

    #[test]
    fn nothing_to_commit_touches_nothing() {
        let mut tasks = tasks_with_one_record();
        tasks.values_mut().for_each(|t| t.out.clear());
        let mut io = Recorder::default();
        commit_tasks(&mut tasks, &mut io, false, false).unwrap();
        io.log.clear();
        assert_eq!(
            commit_tasks(&mut tasks, &mut io, false, false).unwrap(),
            Committed::Nothing
        );
        assert!(io.log.is_empty(), "{:?}", io.log);
    }

    #[test]
    fn at_least_once_delivers_outputs_then_logs_then_commits_offsets_then_applies_stores() {
        let mut tasks = tasks_with_one_record();
        // Under at_least_once the worker hands outputs over while processing.
        tasks.values_mut().for_each(|t| t.out.clear());
        let mut io = Recorder::default();
        assert_eq!(
            commit_tasks(&mut tasks, &mut io, false, false).unwrap(),
            Committed::Done
        );
        assert_eq!(
            steps(&io.log),
            [
                "deliver",
                "send changelogs",
                "deliver",
                "send positions",
                "deliver",
                "commit_offsets 1"
            ]
        );
        let (value, checkpoint) = stored(&tasks);
        assert!(value.is_some());
        let last = io.last_delivered(&changelog(), 0).unwrap();
        assert_eq!(
            checkpoint,
            Some(last + 1),
            "checkpoint: next changelog offset"
        );
    }

    #[test]
    fn an_output_delivery_failure_logs_nothing_commits_nothing_and_applies_nothing() {
        let mut tasks = tasks_with_one_record();
        tasks.values_mut().for_each(|t| t.out.clear());
        let mut io = Recorder {
            fail: Some("deliver"),
            ..Recorder::default()
        };
        assert!(commit_tasks(&mut tasks, &mut io, false, false).is_err());
        assert_eq!(io.log, ["deliver"]);
        assert_eq!(
            stored(&tasks),
            (None, None),
            "the buffered write was dropped"
        );
    }

    #[test]
    fn a_changelog_delivery_failure_sends_no_positions_commits_no_offsets_and_applies_nothing() {
        for eos in [false, true] {
            let mut tasks = tasks_with_one_record();
            if !eos {
                tasks.values_mut().for_each(|t| t.out.clear());
            }
            // The state's changelog records are not all acknowledged (the second deliver
            // of at_least_once, after the outputs'; the first of exactly_once): the input
            // positions are never sent, whatever lands of the rest.
            let mut io = FailNth(Recorder::default(), 0, if eos { 1 } else { 2 });
            assert!(commit_tasks(&mut tasks, &mut io, eos, false).is_err());
            let log = steps(&io.0.log);
            assert!(log.contains(&"send changelogs".to_string()), "{log:?}");
            assert!(!log.contains(&"send positions".to_string()), "{log:?}");
            assert!(!log.iter().any(|l| l.starts_with("commit_")), "{log:?}");
            assert_eq!(stored(&tasks), (None, None));
        }
    }

    #[test]
    fn exactly_once_puts_outputs_changelogs_and_offsets_in_one_transaction() {
        let mut tasks = tasks_with_one_record();
        let mut io = Recorder::default();
        commit_tasks(&mut tasks, &mut io, true, false).unwrap();
        let outputs = format!("send {}", reference::OUTPUT);
        let log = steps(&io.log);
        assert_eq!(log.first().map(String::as_str), Some("begin"));
        let pos = |s: &str| log.iter().position(|l| l == s).unwrap_or(usize::MAX);
        assert!(pos(&outputs) < pos("send changelogs"), "{log:?}");
        // The positions go once outputs and state are acknowledged.
        assert_eq!(
            log[pos("send changelogs")..pos("commit_transaction 1")],
            ["send changelogs", "deliver", "send positions"],
            "{log:?}"
        );
        assert_eq!(log.last().map(String::as_str), Some("deliver"));
        assert!(tasks.values().all(|t| t.out.is_empty()));
        assert!(stored(&tasks).0.is_some());
    }

    #[test]
    fn a_failed_transaction_is_aborted_and_leaves_no_store_change_and_no_output() {
        let mut tasks = tasks_with_one_record();
        let mut io = Recorder {
            fail: Some("commit_transaction"),
            ..Recorder::default()
        };
        assert!(commit_tasks(&mut tasks, &mut io, true, false).is_err());
        assert_eq!(io.log.last().map(String::as_str), Some("abort"));
        assert_eq!(stored(&tasks), (None, None));
        assert!(tasks.values().all(|t| t.out.is_empty()), "outputs dropped");
    }

    /// A recorder whose `deliver` number `.2` (counted from 1) fails.
    struct FailNth(Recorder, u32, u32);

    impl CommitProducer for FailNth {
        fn begin_transaction(&mut self) -> Result<(), TopologyError> {
            self.0.begin_transaction()
        }
        fn send(&mut self, rec: OutRecord) -> Result<(), TopologyError> {
            self.0.send(rec)
        }
        fn deliver(&mut self) -> Result<(), TopologyError> {
            self.1 += 1;
            if self.1 == self.2 {
                self.0.fail = Some("deliver");
            }
            self.0.deliver()
        }
        fn last_delivered(&self, topic: &str, partition: i32) -> Option<i64> {
            self.0.last_delivered(topic, partition)
        }
        fn commit_transaction(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
            self.0.commit_transaction(offsets)
        }
        fn abort_transaction(&mut self) {
            self.0.abort_transaction()
        }
    }

    impl OffsetCommitter for FailNth {
        fn commit_offsets(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
            self.0.commit_offsets(offsets)
        }
    }
}
