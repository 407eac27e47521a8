//! The processor API: what a domain processor implements and the context it receives.
//!
//! A processor never sees partitions, offsets or producers. It gets typed input, the
//! stores it declared, `forward` to its declared sinks, and `schedule` for punctuation.
//!
//! ```
//! use topology::{Context, ProcessError, Processor};
//!
//! /// Counts records per key and forwards the running count.
//! struct Counter;
//! impl Processor for Counter {
//!     type Input = serde_json::Value;
//!     fn process(&mut self, ctx: &mut Context<'_>, key: &str, _v: Self::Input) -> Result<(), ProcessError> {
//!         let mut counts = ctx.store::<u64>("counts")?;
//!         let n = counts.get(key)?.unwrap_or(0) + 1;
//!         counts.put(key, &n)?;
//!         ctx.forward("out", key, &n)
//!     }
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{de::DeserializeOwned, Serialize};
use state_stores::{ChangeLoggingStore, KeyValueStore, TypedStore};

use crate::task_id::TaskId;
use crate::{OutRecord, ProcessError};

/// Kind of clock a punctuator follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Fires on the task's wall clock (system time, or the test driver's manual clock).
    WallClock,
    /// Fires when the task's stream time (max record timestamp seen) crosses a boundary.
    StreamTime,
}

/// A punctuation being delivered to a processor.
#[derive(Debug, Clone)]
pub struct Punctuation<'a> {
    /// The name given to [`Context::schedule`].
    pub name: &'a str,
    /// Which clock fired.
    pub kind: PunctuationType,
    /// The time (epoch ms) at which it fired.
    pub timestamp: i64,
}

/// A stateful stream processor over typed input.
pub trait Processor: Send + 'static {
    /// The decoded input type (an enum when several topics feed the processor).
    type Input: 'static;

    /// Called once per task before any record; schedule punctuators here.
    fn init(&mut self, _ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        input: Self::Input,
    ) -> Result<(), ProcessError>;

    /// Called before every commit: write state kept in memory to the stores and forward
    /// what was deferred. A processor that emits only the latest value per key per commit
    /// (as Kafka Streams' record cache does for tables) does it here.
    fn flush(&mut self, _ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Called after restore, before any record, for each record the task's partition of
    /// a sink declared with [`crate::ProcessorDef::recover_from`] holds beyond what the
    /// restored stores cover: outputs sent before a crash whose commit never happened.
    /// A processor whose state is a fold of its own output (decide → events → evolve)
    /// folds them here, so it never contradicts what it already published. Records that
    /// the stores already cover may come too: the fold must skip them.
    fn recover(
        &mut self,
        _ctx: &mut Context<'_>,
        _key: &str,
        _value: &[u8],
    ) -> Result<(), ProcessError> {
        Ok(())
    }

    /// Called when a scheduled punctuator fires.
    fn punctuate(
        &mut self,
        _ctx: &mut Context<'_>,
        _punctuation: &Punctuation<'_>,
    ) -> Result<(), ProcessError> {
        Ok(())
    }
}

/// A schedule request made through [`Context::schedule`].
#[derive(Debug, Clone)]
pub(crate) struct ScheduleRequest {
    pub name: String,
    pub interval: Duration,
    pub kind: PunctuationType,
}

/// What a processor can do while processing: read/write its stores, forward, schedule.
pub struct Context<'a> {
    pub(crate) task: TaskId,
    pub(crate) processor: &'a str,
    pub(crate) stores: &'a mut FxHashMap<String, ChangeLoggingStore>,
    pub(crate) allowed_stores: &'a [String],
    pub(crate) sinks: &'a FxHashMap<String, Arc<str>>,
    pub(crate) out: &'a mut Vec<OutRecord>,
    pub(crate) schedules: &'a mut Vec<ScheduleRequest>,
    pub(crate) gauges: &'a mut FxHashMap<&'static str, f64>,
    pub(crate) timestamp: i64,
    pub(crate) wall_clock: i64,
}

/// The mutable parts of a task a context borrows.
pub(crate) struct NodeIo<'a> {
    pub stores: &'a mut FxHashMap<String, ChangeLoggingStore>,
    pub out: &'a mut Vec<OutRecord>,
    pub schedules: &'a mut Vec<ScheduleRequest>,
    /// The task's values of process gauges (see [`Context::set_gauge`]).
    pub gauges: &'a mut FxHashMap<&'static str, f64>,
}

impl<'a> Context<'a> {
    /// The context of processor `processor` of task `task` at `(timestamp, wall_clock)`.
    pub(crate) fn for_node(
        task: TaskId,
        processor: &'a str,
        allowed_stores: &'a [String],
        sinks: &'a FxHashMap<String, Arc<str>>,
        io: NodeIo<'a>,
        (timestamp, wall_clock): (i64, i64),
    ) -> Self {
        Self {
            task,
            processor,
            stores: io.stores,
            allowed_stores,
            sinks,
            out: io.out,
            schedules: io.schedules,
            gauges: io.gauges,
            timestamp,
            wall_clock,
        }
    }

    /// The task this processor instance belongs to (`<sub-topology>_<partition>`).
    pub fn task_id(&self) -> TaskId {
        self.task
    }

    /// Timestamp (epoch ms) of the record being processed, or of the punctuation.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The task's wall clock (epoch ms); manual under the test driver.
    pub fn wall_clock_ms(&self) -> i64 {
        self.wall_clock
    }

    /// Raw byte access to a declared store.
    pub fn raw_store(&mut self, name: &str) -> Result<&mut dyn KeyValueStore, ProcessError> {
        if !self.allowed_stores.iter().any(|s| s == name) {
            return Err(ProcessError::Failed(format!(
                "processor `{}` did not declare store `{name}`",
                self.processor
            )));
        }
        self.stores
            .get_mut(name)
            .map(|s| s as &mut dyn KeyValueStore)
            .ok_or_else(|| ProcessError::Failed(format!("store `{name}` is not open")))
    }

    /// Typed (JSON) access to a declared store.
    pub fn store<V: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> Result<TypedStore<'_, V>, ProcessError> {
        Ok(TypedStore::new(self.raw_store(name)?))
    }

    /// Forwards a JSON-encoded record to the sink named `sink`.
    pub fn forward<V: Serialize + ?Sized>(
        &mut self,
        sink: &str,
        key: &str,
        value: &V,
    ) -> Result<(), ProcessError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ProcessError::Failed(format!("encoding output for sink `{sink}`: {e}")))?;
        self.forward_raw(sink, key, Some(bytes))
    }

    /// Encodes `value` once as JSON, writes it to `store` under `key` and forwards it to
    /// `sink`: a table's value, whose local copy and compacted topic hold the same bytes.
    pub fn put_and_forward<V: Serialize + ?Sized>(
        &mut self,
        store: &str,
        sink: &str,
        key: &str,
        value: &V,
    ) -> Result<(), ProcessError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ProcessError::Failed(format!("encoding `{store}` value: {e}")))?;
        self.raw_store(store)?.put(key, bytes.clone())?;
        self.forward_raw(sink, key, Some(bytes))
    }

    /// Forwards raw bytes (`None` is a tombstone) to the sink named `sink`.
    pub fn forward_raw(
        &mut self,
        sink: &str,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), ProcessError> {
        let topic = self.sinks.get(sink).ok_or_else(|| {
            ProcessError::Failed(format!(
                "processor `{}` has no sink `{sink}`",
                self.processor
            ))
        })?;
        self.out.push(OutRecord {
            topic: topic.clone(),
            partition: None,
            key: key.as_bytes().to_vec(),
            value,
            timestamp: self.timestamp,
            headers: Vec::new(),
        });
        Ok(())
    }

    /// Schedules a punctuator (call from [`Processor::init`]).
    pub fn schedule(&mut self, name: &str, interval: Duration, kind: PunctuationType) {
        self.schedules.push(ScheduleRequest {
            name: name.to_string(),
            interval,
            kind,
        });
    }

    /// Sets this task's value of the process gauge `name` (a name without labels, e.g.
    /// the number of open sessions in the task's stores). The process exports the sum
    /// over its running tasks, stated at every commit; a task's value leaves the sum when
    /// the task is revoked or closed, so derive it from the task's state (its stores),
    /// never from counting events, which rebalances and reprocessing repeat.
    pub fn set_gauge(&mut self, name: &'static str, value: f64) {
        self.gauges.insert(name, value);
    }
}
