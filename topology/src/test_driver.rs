//! `TopologyTestDriver`: run a topology in memory, no broker.
//!
//! Input and output topics are values; the wall clock is manual. Records written to a
//! topic that the topology also reads are fed back (breadth-first), as Kafka Streams'
//! driver does, so multi-stage topologies run end to end. Topics have `partitions`
//! partitions (default 1) and keys are placed with Kafka's murmur2 partitioner, so the
//! tasks — and per-task punctuation — are those a real cluster would run. Repartition
//! topics have their running names (`<application_id>-<name>-repartition`).
//!
//! ```
//! use topology::{Context, ProcessError, Processor, ProcessorDef, TopologyBuilder, TopologyTestDriver};
//!
//! struct Count;
//! impl Processor for Count {
//!     type Input = serde_json::Value;
//!     fn process(&mut self, ctx: &mut Context<'_>, key: &str, _v: Self::Input) -> Result<(), ProcessError> {
//!         let mut s = ctx.store::<u64>("counts")?;
//!         let n = s.get(key)?.unwrap_or(0) + 1;
//!         s.put(key, &n)?;
//!         ctx.forward("out", key, &n)
//!     }
//! }
//! let mut b = TopologyBuilder::new();
//! b.add_processor(ProcessorDef::new("count", |_| Count).input_json("in", |v| v).store("counts").sink("out", "counts-out"));
//! let mut driver = TopologyTestDriver::new(b.build().unwrap(), "app").unwrap();
//! driver.pipe("in", "k", br#"{"x":1}"#, 1000).unwrap();
//! driver.pipe("in", "k", br#"{"x":2}"#, 1001).unwrap();
//! let out = driver.read_output("counts-out");
//! assert_eq!(out.last().unwrap().value_str().unwrap(), "2");
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use state_stores::KeyValueStore;

use crate::builder::Topology;
use crate::commit::{self, CommitProducer, InputOffset, OffsetCommitter};
use crate::dlq::ErrorHandling;
use crate::lifecycle::TaskState;
use crate::processor::PunctuationType;
use crate::record::{partition_for, InRecord, OutRecord};
use crate::state_manager::StoreBackend;
use crate::task::{Task, TaskSettings};
use crate::task_id::TaskId;
use crate::TopologyError;

/// An output record waiting to be fed back: its topic and its position in that topic's
/// output queue (the record itself stays there; nothing is copied).
type Pending = (Arc<str>, usize);

/// In-memory runner of a topology; see the module docs.
pub struct TopologyTestDriver {
    application_id: String,
    partitions: i32,
    tasks: BTreeMap<TaskId, Task>,
    outputs: FxHashMap<String, VecDeque<OutRecord>>,
    /// Next offset per topic and partition.
    offsets: FxHashMap<String, Vec<i64>>,
    /// Sub-topology reading each topic.
    topic_sub: FxHashMap<String, u32>,
    wall_clock: i64,
    commit_every: u64,
    since_commit: u64,
    /// Last offset written by a commit per topic and partition (changelogs).
    delivered: HashMap<(String, i32), i64>,
    /// Committed input offsets per topic and partition.
    committed: BTreeMap<(String, i32), i64>,
}

/// Options of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Partitions of every topic (default 1).
    pub partitions: i32,
    /// Store backend (default in memory).
    pub backend: StoreBackend,
    /// Commit (apply store buffers to the backend and emit changelog records) every N
    /// input records (default 1).
    pub commit_every: u64,
    /// Initial wall clock, epoch ms (default 0).
    pub wall_clock_ms: i64,
    /// Handlers (default continue → DLQ).
    pub deserialization_handler: ErrorHandling,
    pub processing_handler: ErrorHandling,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            backend: StoreBackend::Memory,
            commit_every: 1,
            wall_clock_ms: 0,
            deserialization_handler: ErrorHandling::Continue,
            processing_handler: ErrorHandling::Continue,
        }
    }
}

impl TopologyTestDriver {
    /// A driver with default options.
    pub fn new(topology: Topology, application_id: &str) -> Result<Self, TopologyError> {
        Self::with_config(topology, application_id, DriverConfig::default())
    }

    /// A driver with explicit options.
    pub fn with_config(
        topology: Topology,
        application_id: &str,
        config: DriverConfig,
    ) -> Result<Self, TopologyError> {
        let settings = TaskSettings {
            application_id: application_id.to_string(),
            backend: config.backend.clone(),
            deserialization_handler: config.deserialization_handler,
            processing_handler: config.processing_handler,
            measure_e2e: false,
        };
        // Repartition topics take their running names, `<application_id>-<name>-repartition`,
        // and are fed back like any topic the topology both writes and reads.
        let topology = topology.resolve(application_id)?;
        let mut tasks = BTreeMap::new();
        for sub in topology.subtopologies() {
            for p in 0..config.partitions.max(1) {
                let id = TaskId {
                    subtopology: sub.id,
                    partition: p,
                };
                let mut task =
                    Task::new(&topology, id, settings.clone(), config.wall_clock_ms, None)?;
                task.set_state(TaskState::Restoring)?;
                task.set_state(TaskState::Running)?;
                tasks.insert(id, task);
            }
        }
        let topic_sub = topology.topic_index();
        Ok(Self {
            application_id: application_id.to_string(),
            partitions: config.partitions.max(1),
            tasks,
            outputs: FxHashMap::default(),
            offsets: FxHashMap::default(),
            topic_sub,
            wall_clock: config.wall_clock_ms,
            commit_every: config.commit_every.max(1),
            since_commit: 0,
            delivered: HashMap::new(),
            committed: BTreeMap::new(),
        })
    }

    /// Pipes one record into `topic` (and everything it causes downstream).
    pub fn pipe(
        &mut self,
        topic: &str,
        key: &str,
        value: &[u8],
        timestamp: i64,
    ) -> Result<(), TopologyError> {
        self.pipe_record(topic, Some(key.as_bytes()), Some(value), timestamp)
    }

    /// Pipes a JSON value.
    pub fn pipe_json<V: serde::Serialize>(
        &mut self,
        topic: &str,
        key: &str,
        value: &V,
        timestamp: i64,
    ) -> Result<(), TopologyError> {
        let bytes = serde_json::to_vec(value).map_err(|e| TopologyError::Config(e.to_string()))?;
        self.pipe(topic, key, &bytes, timestamp)
    }

    /// Pipes a record with optional key/value (to test malformed input).
    pub fn pipe_record(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), TopologyError> {
        let mut queue: VecDeque<Pending> = VecDeque::new();
        self.process_one(topic, key, value, timestamp, &mut queue)?;
        self.count_for_commit()?;
        while let Some(pending) = queue.pop_front() {
            self.feed_back(pending, &mut queue)?;
            self.count_for_commit()?;
        }
        Ok(())
    }

    /// Counts a processed record; commits every `commit_every` records.
    fn count_for_commit(&mut self) -> Result<(), TopologyError> {
        self.since_commit += 1;
        if self.since_commit >= self.commit_every {
            self.commit()?;
        }
        Ok(())
    }

    /// Processes an output record the topology also reads. Its key and value are lent to
    /// the task and put back: output queues only grow while records are processed (they
    /// are read between pipes), so the position stays valid.
    fn feed_back(
        &mut self,
        (topic, index): Pending,
        queue: &mut VecDeque<Pending>,
    ) -> Result<(), TopologyError> {
        let lost = || TopologyError::Invalid(format!("output {index} of `{topic}` vanished"));
        let slot = self
            .outputs
            .get_mut(&*topic)
            .and_then(|q| q.get_mut(index))
            .ok_or_else(lost)?;
        let (key, value, ts) = (
            std::mem::take(&mut slot.key),
            slot.value.take(),
            slot.timestamp,
        );
        let result = self.process_one(&topic, Some(&key), value.as_deref(), ts, queue);
        let slot = self
            .outputs
            .get_mut(&*topic)
            .and_then(|q| q.get_mut(index))
            .ok_or_else(lost)?;
        slot.key = key;
        slot.value = value;
        result
    }

    /// Processes one record and queues its outputs (no commit).
    fn process_one(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        ts: i64,
        queue: &mut VecDeque<Pending>,
    ) -> Result<(), TopologyError> {
        let Some(&sub) = self.topic_sub.get(topic) else {
            return Ok(());
        };
        let partition = key.map_or(0, |k| partition_for(k, self.partitions));
        let offset = next_offset(&mut self.offsets, topic, partition, self.partitions);
        let id = TaskId {
            subtopology: sub,
            partition,
        };
        let task = self
            .tasks
            .get_mut(&id)
            .ok_or_else(|| TopologyError::Invalid(format!("no task {id}")))?;
        let rec = InRecord {
            topic,
            partition,
            offset,
            timestamp: ts,
            key,
            value,
        };
        task.process(&rec, self.wall_clock)?;
        // Only this task has new outputs.
        route(&self.topic_sub, &mut self.outputs, &mut task.out, queue);
        Ok(())
    }

    fn collect(&mut self, queue: &mut VecDeque<Pending>) {
        for task in self.tasks.values_mut() {
            route(&self.topic_sub, &mut self.outputs, &mut task.out, queue);
        }
    }

    /// Commits every task: changelog records become readable outputs, buffers go to the stores.
    pub fn commit(&mut self) -> Result<(), TopologyError> {
        // Processor flushes first; what they forward is processed like any output.
        let mut queue = VecDeque::new();
        for task in self.tasks.values_mut() {
            task.flush_processors(self.wall_clock)?;
        }
        self.collect(&mut queue);
        while let Some(pending) = queue.pop_front() {
            self.feed_back(pending, &mut queue)?;
        }
        // The runtime's own commit sequence, on in-memory topics and offsets.
        let mut io = MemoryCommitIo {
            outputs: &mut self.outputs,
            offsets: &mut self.offsets,
            partitions: self.partitions,
            delivered: &mut self.delivered,
            committed: &mut self.committed,
        };
        commit::commit_tasks(&mut self.tasks, &mut io, false, false)?;
        self.since_commit = 0;
        Ok(())
    }

    /// Advances the manual wall clock and fires due wall-clock punctuators.
    pub fn advance_wall_clock(&mut self, by: Duration) -> Result<(), TopologyError> {
        self.wall_clock += by.as_millis() as i64;
        let now = self.wall_clock;
        let mut queue = VecDeque::new();
        for task in self.tasks.values_mut() {
            task.punctuate(PunctuationType::WallClock, now, now)?;
        }
        self.collect(&mut queue);
        while let Some(pending) = queue.pop_front() {
            self.feed_back(pending, &mut queue)?;
            self.count_for_commit()?;
        }
        self.commit()
    }

    /// The manual wall clock (epoch ms).
    pub fn wall_clock_ms(&self) -> i64 {
        self.wall_clock
    }

    /// Takes every record written to `topic` so far.
    pub fn read_output(&mut self, topic: &str) -> Vec<OutRecord> {
        self.outputs
            .get_mut(topic)
            .map(|q| Vec::from(std::mem::take(q)))
            .unwrap_or_default()
    }

    /// Drops every record written to `topic` so far and says how many there were (cheaper
    /// than [`Self::read_output`] when only the count matters: the buffer is kept).
    pub fn discard_output(&mut self, topic: &str) -> usize {
        self.outputs.get_mut(topic).map_or(0, |q| {
            let n = q.len();
            q.clear();
            n
        })
    }

    /// Records written to `topic` so far, without taking them.
    pub fn peek_output(&self, topic: &str) -> Vec<OutRecord> {
        self.outputs
            .get(topic)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Reads one key of a store (merging every task's copy: keys live in one task).
    pub fn store_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, TopologyError> {
        for task in self.tasks.values() {
            if let Some(s) = task.stores.get(store) {
                if let Some(v) = s.get(key)? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    /// Deletes one key of a store in every task that holds it, as a write of a processor
    /// would (applied and logged at the next commit): for a test that sets up a state no
    /// processing leads to, such as the one a crash leaves when only some of a commit's
    /// changelog records landed. Returns whether any task held the key.
    pub fn store_delete(&mut self, store: &str, key: &str) -> Result<bool, TopologyError> {
        let mut held = false;
        for task in self.tasks.values_mut() {
            if let Some(s) = task.stores.get_mut(store) {
                if s.get(key)?.is_some() {
                    s.delete(key)?;
                    held = true;
                }
            }
        }
        Ok(held)
    }

    /// Every entry of a store across tasks, sorted by key.
    pub fn store_entries(&self, store: &str) -> Result<Vec<(String, Vec<u8>)>, TopologyError> {
        let mut all = Vec::new();
        for task in self.tasks.values() {
            if let Some(s) = task.stores.get(store) {
                all.extend(s.range("", None)?);
            }
        }
        all.sort();
        Ok(all)
    }

    /// The sum over the tasks of the values processors set for gauge `name` with
    /// [`Context::set_gauge`](crate::Context::set_gauge) (what a process running every
    /// task exports at a commit), `None` when no task set it.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.tasks
            .values()
            .flat_map(|t| t.gauges())
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .reduce(|a, b| a + b)
    }

    /// The dead-letter topic name.
    pub fn dlq_topic(&self) -> String {
        Topology::dlq_topic(&self.application_id)
    }

    /// The input offset the last commit recorded for `topic`'s `partition` (the next
    /// offset to read), as a consumer group would hold it.
    pub fn committed_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.committed.get(&(topic.to_string(), partition)).copied()
    }
}

/// The driver's side of a commit: records go to the in-memory topics, each taking the
/// next offset of its partition; input offsets go to a map. Nothing fails, and
/// everything is delivered as soon as it is sent.
struct MemoryCommitIo<'a> {
    outputs: &'a mut FxHashMap<String, VecDeque<OutRecord>>,
    offsets: &'a mut FxHashMap<String, Vec<i64>>,
    partitions: i32,
    delivered: &'a mut HashMap<(String, i32), i64>,
    committed: &'a mut BTreeMap<(String, i32), i64>,
}

impl CommitProducer for MemoryCommitIo<'_> {
    fn begin_transaction(&mut self) -> Result<(), TopologyError> {
        Ok(())
    }

    fn send(&mut self, rec: OutRecord) -> Result<(), TopologyError> {
        let partition = rec.partition.unwrap_or(0);
        let offset = next_offset(self.offsets, &rec.topic, partition, self.partitions);
        self.delivered
            .insert((rec.topic.to_string(), partition), offset);
        push_output(self.outputs, rec);
        Ok(())
    }

    fn deliver(&mut self) -> Result<(), TopologyError> {
        Ok(())
    }

    fn last_delivered(&self, topic: &str, partition: i32) -> Option<i64> {
        self.delivered.get(&(topic.to_string(), partition)).copied()
    }

    fn commit_transaction(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
        self.commit_offsets(offsets)
    }

    fn abort_transaction(&mut self) {}
}

impl OffsetCommitter for MemoryCommitIo<'_> {
    fn commit_offsets(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
        for o in offsets {
            self.committed
                .insert((o.topic.clone(), o.partition), o.next);
        }
        Ok(())
    }
}

/// Moves a task's outputs to the output topics, queueing those the topology reads (fed
/// back like a broker would).
fn route(
    topic_sub: &FxHashMap<String, u32>,
    outputs: &mut FxHashMap<String, VecDeque<OutRecord>>,
    out: &mut Vec<OutRecord>,
    queue: &mut VecDeque<Pending>,
) {
    for rec in out.drain(..) {
        if topic_sub.contains_key(&*rec.topic) {
            let index = outputs.get(&*rec.topic).map_or(0, VecDeque::len);
            queue.push_back((rec.topic.clone(), index));
        }
        push_output(outputs, rec);
    }
}

/// Appends `rec` to its output topic (the topic name is copied only for a new topic).
fn push_output(outputs: &mut FxHashMap<String, VecDeque<OutRecord>>, rec: OutRecord) {
    match outputs.get_mut(&*rec.topic) {
        Some(q) => q.push_back(rec),
        None => {
            outputs.insert(rec.topic.to_string(), VecDeque::from([rec]));
        }
    }
}

/// Takes the next offset of `topic`'s `partition` (slots for `partitions` made at once).
fn next_offset(
    offsets: &mut FxHashMap<String, Vec<i64>>,
    topic: &str,
    partition: i32,
    partitions: i32,
) -> i64 {
    let slots = match offsets.get_mut(topic) {
        Some(slots) => slots,
        None => offsets
            .entry(topic.to_owned())
            .or_insert_with(|| vec![0; partitions.max(1) as usize]),
    };
    let slot = partition.max(0) as usize;
    if slot >= slots.len() {
        slots.resize(slot + 1, 0);
    }
    slots[slot] += 1;
    slots[slot] - 1
}
