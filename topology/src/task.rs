//! A task: the processors of one sub-topology for one partition, with their stores.
//!
//! The task is the unit both the stream worker and the test driver run: it decodes and
//! routes records to processors, applies the error handlers (DLQ or fail), keeps stream
//! time and punctuation, tracks the input offsets it has processed, and exposes its store
//! buffers to the commit sequence.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;
use state_stores::KeyValueStore;

use crate::builder::Topology;
use crate::dlq::{dlq_record, ErrorHandling};
use crate::lifecycle::{transition, TaskState};
use crate::node::Node;
use crate::processor::{Context, NodeIo, Punctuation, PunctuationType, ScheduleRequest};
use crate::punctuate::Punctuators;
use crate::record::{InRecord, OutRecord};
use crate::shared_decode::DecodeCache;
use crate::state_manager::{Prepared, StateManager, StoreBackend};
use crate::task_id::TaskId;
use crate::{metrics as m, ProcessError, TopologyError};

/// Error handlers and names a task needs.
#[derive(Debug, Clone)]
pub(crate) struct TaskSettings {
    pub application_id: String,
    pub backend: StoreBackend,
    pub deserialization_handler: ErrorHandling,
    pub processing_handler: ErrorHandling,
    pub measure_e2e: bool,
}

struct NodeSlot {
    name: String,
    node: Box<dyn Node>,
    stores: Vec<String>,
    sinks: FxHashMap<String, Arc<str>>,
    processed: metrics::Counter,
    latency: metrics::Histogram,
}

/// Key of a recovered sink's covered position in the offsets store.
fn sink_end_key(topic: &str) -> String {
    format!("sink-end:{topic}")
}

/// Raises the known end of `topic` in `ends` to `end` (never lowers it).
fn note_sink_end(ends: &mut FxHashMap<String, i64>, topic: &str, end: i64) {
    match ends.get_mut(topic) {
        Some(known) => *known = (*known).max(end),
        None => {
            ends.insert(topic.to_string(), end);
        }
    }
}

/// Every how many records a task measures processing latency.
const LATENCY_SAMPLE: u64 = 16;

/// See the module docs.
pub(crate) struct Task {
    pub id: TaskId,
    pub state: TaskState,
    nodes: Vec<NodeSlot>,
    routes: FxHashMap<String, Vec<usize>>,
    /// The current record's shared decodes (cleared per record).
    decoded: DecodeCache,
    /// The task's stores, their changelogs and checkpoints.
    pub stores: StateManager,
    punctuators: Punctuators,
    stream_time: i64,
    /// Records seen, for sampling the latency histogram.
    latency_tick: u64,
    /// Next offset to consume per source topic (what a commit records).
    pub next_offsets: BTreeMap<String, i64>,
    /// Offsets processed since the last commit (0: nothing to commit).
    pub uncommitted: u64,
    pub out: Vec<OutRecord>,
    settings: TaskSettings,
    dlq_topic: String,
    /// Sink topics processors recover their state from, with the processor's slot.
    recovered: Vec<(usize, String)>,
    /// Where this task's partition of each recovered sink ends as far as the task knows:
    /// the end its recovery read to, or past its last output a commit saw delivered.
    sink_ends: FxHashMap<String, i64>,
    /// Input this task must process before its wall-clock punctuators run (see
    /// `catch_up.rs`).
    pub backlog: crate::catch_up::Backlog,
    /// Values of process gauges set by the processors (see `Context::set_gauge`).
    gauges: FxHashMap<&'static str, f64>,
    e2e: metrics::Histogram,
}

impl Task {
    /// Opens the task's stores (or takes `stores`, already open: a standby replica's,
    /// handed over without closing its database) and initialises its processors.
    pub fn new(
        topology: &Topology,
        id: TaskId,
        settings: TaskSettings,
        wall_clock: i64,
        stores: Option<StateManager>,
    ) -> Result<Self, TopologyError> {
        let sub = topology
            .subtopologies
            .iter()
            .find(|s| s.id == id.subtopology)
            .ok_or_else(|| TopologyError::Invalid(format!("no sub-topology {}", id.subtopology)))?;
        let stores = match stores {
            Some(open) => open,
            None => StateManager::open(topology, id, &settings.application_id, &settings.backend)?,
        };
        let mut nodes = Vec::new();
        let mut routes: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        for (slot, &pi) in sub.processors.iter().enumerate() {
            let spec = &topology.processors[pi];
            for t in &spec.inputs {
                routes.entry(t.clone()).or_default().push(slot);
            }
            nodes.push(NodeSlot {
                name: spec.name.clone(),
                node: (spec.factory)(&id, &spec.inputs),
                stores: spec.stores.iter().map(|s| s.name.clone()).collect(),
                sinks: spec
                    .sinks
                    .iter()
                    .map(|(name, topic)| (name.clone(), Arc::from(topic.as_str())))
                    .collect(),
                processed: metrics::counter!(m::RECORDS_PROCESSED, "processor" => spec.name.clone()),
                latency: metrics::histogram!(m::PROCESS_LATENCY, "processor" => spec.name.clone()),
            });
            // Registered at 0, so that a DLQ rate reads 0 rather than no data.
            for kind in m::DLQ_KINDS {
                metrics::counter!(m::DLQ_RECORDS, "kind" => *kind, "processor" => spec.name.clone())
                    .increment(0);
            }
        }
        let dlq_topic = Topology::dlq_topic(&settings.application_id);
        let mut task = Task {
            id,
            state: TaskState::Created,
            nodes,
            routes,
            decoded: DecodeCache::default(),
            stores,
            punctuators: Punctuators::default(),
            stream_time: i64::MIN,
            latency_tick: 0,
            next_offsets: BTreeMap::new(),
            uncommitted: 0,
            out: Vec::new(),
            settings,
            dlq_topic,
            recovered: topology.recovered_sinks(id.subtopology),
            sink_ends: FxHashMap::default(),
            backlog: Default::default(),
            gauges: FxHashMap::default(),
            e2e: metrics::histogram!(m::E2E_LATENCY),
        };
        task.init_nodes(wall_clock)?;
        Ok(task)
    }

    fn init_nodes(&mut self, wall_clock: i64) -> Result<(), TopologyError> {
        for i in 0..self.nodes.len() {
            let mut schedules: Vec<ScheduleRequest> = Vec::new();
            let slot = &mut self.nodes[i];
            let mut ctx = Context::for_node(
                self.id,
                &slot.name,
                &slot.stores,
                &slot.sinks,
                NodeIo {
                    stores: self.stores.for_processors(),
                    out: &mut self.out,
                    schedules: &mut schedules,
                    gauges: &mut self.gauges,
                },
                (wall_clock, wall_clock),
            );
            slot.node
                .init(&mut ctx)
                .map_err(|e| TopologyError::Invalid(format!("init of `{}`: {e}", slot.name)))?;
            for s in schedules {
                self.punctuators
                    .add(i, s.name, s.interval.as_millis() as i64, s.kind);
            }
        }
        Ok(())
    }

    /// Moves to a new lifecycle state.
    pub fn set_state(&mut self, to: TaskState) -> Result<(), TopologyError> {
        transition(self.id, &mut self.state, to).map_err(TopologyError::Invalid)
    }

    /// The changelog topic of each logged store with its checkpoint.
    pub fn restore_plan(&self) -> Result<Vec<(String, String, Option<i64>)>, TopologyError> {
        self.stores.restore_plan()
    }

    /// Processes one input record; failures go through the handlers.
    pub fn process(&mut self, rec: &InRecord<'_>, wall_clock: i64) -> Result<(), TopologyError> {
        match self.next_offsets.get_mut(rec.topic) {
            Some(o) => *o = rec.offset + 1,
            None => {
                self.next_offsets
                    .insert(rec.topic.to_string(), rec.offset + 1);
            }
        }
        self.uncommitted += 1;
        let key = match rec.key.map(std::str::from_utf8) {
            Some(Ok(k)) => k,
            Some(Err(_)) => {
                return self.handle_error(
                    rec,
                    "",
                    ProcessError::Decode(crate::DecodeError::new("record key is not UTF-8")),
                )
            }
            None => {
                return self.handle_error(
                    rec,
                    "",
                    ProcessError::Decode(crate::DecodeError::new("record has no key")),
                )
            }
        };
        let Some(value) = rec.value else {
            return self.handle_error(
                rec,
                "",
                ProcessError::Decode(crate::DecodeError::new("record has no value (tombstone)")),
            );
        };
        if rec.timestamp > self.stream_time {
            self.stream_time = rec.timestamp;
        }
        let n_routes = self.routes.get(rec.topic).map_or(0, Vec::len);
        self.decoded.clear();
        // The latency histogram gets one record in LATENCY_SAMPLE: clock reads were a
        // tenth of a worker thread's time, two of them per record and processor here.
        self.latency_tick = self.latency_tick.wrapping_add(1);
        let timed = self.latency_tick % LATENCY_SAMPLE == 0;
        for r in 0..n_routes {
            let i = self.routes[rec.topic][r];
            let started = timed.then(Instant::now);
            let slot = &mut self.nodes[i];
            let mut schedules = Vec::new();
            let mut ctx = Context::for_node(
                self.id,
                &slot.name,
                &slot.stores,
                &slot.sinks,
                NodeIo {
                    stores: self.stores.for_processors(),
                    out: &mut self.out,
                    schedules: &mut schedules,
                    gauges: &mut self.gauges,
                },
                (rec.timestamp, wall_clock),
            );
            let result = slot
                .node
                .process(&mut ctx, rec.topic, key, value, &mut self.decoded);
            slot.processed.increment(1);
            if let Some(started) = started {
                slot.latency.record(started.elapsed().as_secs_f64());
            }
            if let Err(e) = result {
                let name = slot.name.clone();
                self.handle_error(rec, &name, e)?;
            }
        }
        if self.settings.measure_e2e && rec.timestamp > 0 {
            self.e2e
                .record(((wall_clock - rec.timestamp).max(0) as f64) / 1000.0);
        }
        if !self.punctuators.is_empty() {
            self.punctuate(PunctuationType::StreamTime, self.stream_time, wall_clock)?;
        }
        Ok(())
    }

    fn handle_error(
        &mut self,
        rec: &InRecord<'_>,
        processor: &str,
        err: ProcessError,
    ) -> Result<(), TopologyError> {
        let (kind, handler) = match &err {
            ProcessError::Decode(_) => ("deserialization", self.settings.deserialization_handler),
            ProcessError::Rejected { .. } => ("rejected", self.settings.processing_handler),
            ProcessError::Failed(_) => ("processing", self.settings.processing_handler),
            ProcessError::Store(_) => ("store", ErrorHandling::Fail),
        };
        let message = match &err {
            ProcessError::Rejected { reason } => reason.clone(),
            ProcessError::Decode(d) => d.0.clone(),
            other => other.to_string(),
        };
        match handler {
            ErrorHandling::Continue => {
                tracing::debug!(task = %self.id, processor, topic = rec.topic, partition = rec.partition, offset = rec.offset, error = %message, "record sent to DLQ");
                metrics::counter!(m::DLQ_RECORDS, "kind" => kind, "processor" => processor.to_string())
                    .increment(1);
                self.out
                    .push(dlq_record(&self.dlq_topic, rec, kind, processor, &message));
                Ok(())
            }
            ErrorHandling::Fail => Err(TopologyError::ProcessingFailed {
                task: self.id.to_string(),
                processor: processor.to_string(),
                topic: rec.topic.to_string(),
                partition: rec.partition,
                offset: rec.offset,
                message,
            }),
        }
    }

    /// Runs the punctuators of `kind` due at `now`.
    pub fn punctuate(
        &mut self,
        kind: PunctuationType,
        now: i64,
        wall_clock: i64,
    ) -> Result<(), TopologyError> {
        if now == i64::MIN {
            return Ok(());
        }
        for s in self.punctuators.due(kind, now) {
            let slot = &mut self.nodes[s.node];
            let mut schedules = Vec::new();
            let mut ctx = Context::for_node(
                self.id,
                &slot.name,
                &slot.stores,
                &slot.sinks,
                NodeIo {
                    stores: self.stores.for_processors(),
                    out: &mut self.out,
                    schedules: &mut schedules,
                    gauges: &mut self.gauges,
                },
                (now, wall_clock),
            );
            let p = Punctuation {
                name: &s.name,
                kind,
                timestamp: now,
            };
            if let Err(e) = slot.node.punctuate(&mut ctx, &p) {
                match e {
                    ProcessError::Store(e) => return Err(e.into()),
                    other if self.settings.processing_handler == ErrorHandling::Fail => {
                        return Err(TopologyError::ProcessingFailed {
                            task: self.id.to_string(),
                            processor: slot.name.clone(),
                            topic: format!("punctuator {}", s.name),
                            partition: self.id.partition,
                            offset: -1,
                            message: other.to_string(),
                        })
                    }
                    other => {
                        tracing::warn!(task = %self.id, processor = %slot.name, error = %other, "punctuator failed; continuing")
                    }
                }
            }
        }
        Ok(())
    }

    /// Input offsets recorded in the task's offsets store (after restore).
    pub fn stored_offsets(&self) -> Result<Vec<(String, i64)>, TopologyError> {
        // Sink positions share the store under `sink-end:` (no topic name has a `:`).
        Ok(self
            .stores
            .stored_positions(|key| !key.contains(':'))?
            .into_iter()
            .collect())
    }

    /// The sink topics this task's processors recover their state from.
    pub fn recovered_topics(&self) -> Vec<String> {
        self.recovered.iter().map(|(_, t)| t.clone()).collect()
    }

    /// Where recovery reads a recovered sink from: the position the last commit recorded
    /// (0 when none was: the whole partition is read, and the processor skips what its
    /// restored state covers).
    pub fn recovery_start(&self, topic: &str) -> Result<i64, TopologyError> {
        let Some(store) = self.stores.offsets() else {
            return Ok(0);
        };
        Ok(store
            .get(&sink_end_key(topic))?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok())
            .unwrap_or(0))
    }

    /// Notes that this task's partition of the recovered sink `topic` reaches `end` (its
    /// recovery read to there, or its outputs were delivered up to there).
    pub fn saw_sink_end(&mut self, topic: &str, end: i64) {
        note_sink_end(&mut self.sink_ends, topic, end);
    }

    /// After a commit, when every output is acknowledged (under exactly_once too, whose
    /// outputs were still on their way when [`Task::record_sink_ends`] ran): notes each
    /// recovered sink's end past this task's last delivered record (`delivered`).
    pub fn saw_delivered_sink_ends(&mut self, delivered: impl Fn(&str, i32) -> Option<i64>) {
        for (_, topic) in &self.recovered {
            if let Some(last) = delivered(topic, self.id.partition) {
                note_sink_end(&mut self.sink_ends, topic, last + 1);
            }
        }
    }

    /// Where this task knows its partition of the recovered sink `topic` ends: the
    /// furthest of its recorded covered position and what it saw itself (see
    /// [`Task::saw_sink_end`]).
    pub fn known_sink_end(&self, topic: &str) -> Result<i64, TopologyError> {
        let seen = self.sink_ends.get(topic).copied().unwrap_or(0);
        Ok(self.recovery_start(topic)?.max(seen))
    }

    /// Records, for each recovered sink, the next offset after the last record of this
    /// task's partition known delivered (`delivered(topic, partition)`: the last
    /// delivered offset). Called at a commit before the changelog records are made: the
    /// stores at that commit cover at least every event up to that position.
    pub fn record_sink_ends(
        &mut self,
        delivered: impl Fn(&str, i32) -> Option<i64>,
    ) -> Result<(), TopologyError> {
        let ends: Vec<(String, i64)> = self
            .recovered
            .iter()
            .filter_map(|(_, topic)| {
                let last = delivered(topic, self.id.partition)?;
                Some((sink_end_key(topic), last + 1))
            })
            .collect();
        self.stores
            .record_offsets(ends.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Feeds one record of a recovered sink (read after restore) to the processors that
    /// recover from `topic` (see [`crate::Processor::recover`]).
    pub fn recover(
        &mut self,
        topic: &str,
        key: &str,
        value: &[u8],
        timestamp: i64,
        wall_clock: i64,
    ) -> Result<(), TopologyError> {
        for r in 0..self.recovered.len() {
            let (i, ref t) = self.recovered[r];
            if t == topic {
                let what = format!("recovery from {topic}");
                self.call_node(i, (timestamp, wall_clock), &what, |node, ctx| {
                    node.recover(ctx, key, value)
                })?;
            }
        }
        Ok(())
    }

    /// Lets every processor flush what it keeps in memory (see [`crate::Processor::flush`]).
    pub fn flush_processors(&mut self, wall_clock: i64) -> Result<(), TopologyError> {
        let ts = if self.stream_time == i64::MIN {
            wall_clock
        } else {
            self.stream_time
        };
        for i in 0..self.nodes.len() {
            self.call_node(i, (ts, wall_clock), "flush", |node, ctx| node.flush(ctx))?;
        }
        Ok(())
    }

    /// Calls node `i` outside record processing (a flush, a recovery) with its context at
    /// `times` (record time, wall clock); a failure names `what` in its error.
    fn call_node(
        &mut self,
        i: usize,
        times: (i64, i64),
        what: &str,
        f: impl FnOnce(&mut dyn Node, &mut Context<'_>) -> Result<(), ProcessError>,
    ) -> Result<(), TopologyError> {
        let slot = &mut self.nodes[i];
        let mut schedules = Vec::new();
        let mut ctx = Context::for_node(
            self.id,
            &slot.name,
            &slot.stores,
            &slot.sinks,
            NodeIo {
                stores: self.stores.for_processors(),
                out: &mut self.out,
                schedules: &mut schedules,
                gauges: &mut self.gauges,
            },
            times,
        );
        f(slot.node.as_mut(), &mut ctx).map_err(|e| match e {
            ProcessError::Store(e) => TopologyError::Store(e),
            other => TopologyError::ProcessingFailed {
                task: self.id.to_string(),
                processor: slot.name.clone(),
                topic: what.to_string(),
                partition: self.id.partition,
                offset: -1,
                message: other.to_string(),
            },
        })
    }

    /// The first half of a commit: records the processed input offsets in the offsets
    /// store, then freezes every store and returns the changelog records of its changes
    /// (see [`StateManager::prepare`]).
    pub fn prepare_commit(&mut self) -> Result<Prepared, TopologyError> {
        if self.uncommitted > 0 {
            let positions: Vec<(String, i64)> = self
                .next_offsets
                .iter()
                .map(|(t, o)| (t.clone(), *o))
                .collect();
            self.stores
                .record_offsets(positions.iter().map(|(t, o)| (t.as_str(), *o)))?;
        }
        self.stores.prepare(self.stream_time.max(0))
    }

    /// The second half of a commit: applies the prepared store changes with their
    /// checkpoints (next changelog offsets), syncing to disk when `sync`.
    pub fn post_commit(
        &mut self,
        checkpoints: &HashMap<String, i64>,
        sync: bool,
    ) -> Result<(), TopologyError> {
        self.stores.commit(checkpoints, sync)?;
        self.uncommitted = 0;
        Ok(())
    }

    /// Whether a commit has anything to do for this task (Kafka Streams' `commitNeeded`).
    pub fn commit_needed(&self) -> bool {
        self.uncommitted > 0 || !self.out.is_empty() || self.stores.has_pending()
    }

    /// Makes every committed store batch durable (sled fsync).
    pub fn sync_stores(&mut self) -> Result<(), TopologyError> {
        self.stores.sync()
    }

    /// Drops buffered store writes and outputs (transaction abort).
    pub fn abort(&mut self) {
        self.stores.abort();
        self.out.clear();
    }

    /// The values of process gauges this task's processors set (`Context::set_gauge`).
    pub fn gauges(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.gauges.iter().map(|(name, value)| (*name, *value))
    }

    /// Number of keys per store (for metrics and tests).
    pub fn store_sizes(&self) -> Vec<(String, usize)> {
        self.stores.sizes()
    }
}
