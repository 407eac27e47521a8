//! The reference stateful topology used by the acceptance tests and the benchmark.
//!
//! Per key it keeps `{count, lastSeq, last}` in the change-logged store `aggregates`,
//! emits one `ref-aggregates` record per input, and a stream-time punctuator emits one
//! `ref-summaries` record per task every second of stream time with the number of
//! updates since the previous summary.
//!
//! ```
//! use topology::reference::{self, RefEvent};
//! use topology::TopologyTestDriver;
//! let mut d = TopologyTestDriver::new(reference::topology(reference::Options::default()), "ref").unwrap();
//! d.pipe_json(reference::INPUT, "k1", &RefEvent::new(1, "x"), 1_000).unwrap();
//! assert_eq!(d.read_output(reference::OUTPUT).len(), 1);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::{
    Context, ProcessError, Processor, ProcessorDef, Punctuation, PunctuationType, Topology,
    TopologyBuilder,
};

/// Input topic.
pub const INPUT: &str = "ref-events";
/// One output per input.
pub const OUTPUT: &str = "ref-aggregates";
/// Punctuator output.
pub const SUMMARIES: &str = "ref-summaries";
/// The store.
pub const STORE: &str = "aggregates";

/// An input event (about 200 bytes as JSON with the default payload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefEvent {
    pub seq: u64,
    pub payload: String,
}

impl RefEvent {
    /// An event with a sequence number and payload.
    pub fn new(seq: u64, payload: &str) -> Self {
        Self {
            seq,
            payload: payload.to_string(),
        }
    }
}

/// The per-key aggregate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Aggregate {
    pub count: u64,
    pub last_seq: u64,
    pub last: String,
}

/// Options of the reference topology.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Fail (a processing error) on an event whose payload equals this text.
    pub fail_on_payload: Option<String>,
    /// Declare the aggregates sink as the processor's own output to recover from
    /// ([`ProcessorDef::recover_from`]; the aggregate's `recover` folds nothing).
    pub recover_from_output: bool,
}

/// Most aggregates [`AggregateProcessor`] keeps decoded (emptied when full).
const RECENT_CAP: usize = 10_000;

struct AggregateProcessor {
    options: Options,
    updates: u64,
    /// The latest aggregate of recently updated keys, so that an update needs no decode of
    /// the stored value. Every update is still written to the store; the map only saves
    /// reads. The processor is the store's only writer, so the map cannot go stale, and a
    /// new processor (assignment, restore) starts with it empty.
    recent: FxHashMap<String, Aggregate>,
}

impl Processor for AggregateProcessor {
    type Input = RefEvent;

    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        ctx.schedule(
            "summary",
            Duration::from_secs(1),
            PunctuationType::StreamTime,
        );
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        ev: RefEvent,
    ) -> Result<(), ProcessError> {
        if self.options.fail_on_payload.as_deref() == Some(ev.payload.as_str()) {
            return Err(ProcessError::Failed(format!("poison event seq {}", ev.seq)));
        }
        if !self.recent.contains_key(key) {
            let stored = ctx.store::<Aggregate>(STORE)?.get(key)?.unwrap_or_default();
            if self.recent.len() >= RECENT_CAP {
                self.recent.clear();
            }
            self.recent.insert(key.to_owned(), stored);
        }
        // Updated in place: no key copy per record for a key seen before.
        let agg = self
            .recent
            .get_mut(key)
            .ok_or_else(|| ProcessError::Failed(format!("aggregate of `{key}` not cached")))?;
        agg.count += 1;
        agg.last_seq = ev.seq;
        agg.last = ev.payload;
        ctx.put_and_forward(STORE, "aggregates", key, agg)?;
        self.updates += 1;
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut Context<'_>,
        p: &Punctuation<'_>,
    ) -> Result<(), ProcessError> {
        let key = format!("task-{}", ctx.task_id());
        let summary = serde_json::json!({ "windowEnd": p.timestamp, "updates": self.updates });
        self.updates = 0;
        ctx.forward("summaries", &key, &summary)
    }
}

/// Builds the reference topology.
pub fn topology(options: Options) -> Topology {
    let mut b = TopologyBuilder::new();
    let recover = options.recover_from_output;
    let def = ProcessorDef::new("aggregate", move |_| AggregateProcessor {
        options: options.clone(),
        updates: 0,
        recent: FxHashMap::default(),
    })
    .input_json(INPUT, |e: RefEvent| e)
    .store(STORE)
    .sink("aggregates", OUTPUT)
    .sink("summaries", SUMMARIES);
    b.add_processor(if recover {
        def.recover_from("aggregates")
    } else {
        def
    });
    b.build().expect("the reference topology is valid")
}

/// The expected store after `events` (key, event) in order: the reference fold.
pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a (String, RefEvent)>,
) -> BTreeMap<String, Aggregate> {
    let mut out: BTreeMap<String, Aggregate> = BTreeMap::new();
    for (k, e) in events {
        let a = out.entry(k.clone()).or_default();
        a.count += 1;
        a.last_seq = e.seq;
        a.last = e.payload.clone();
    }
    out
}

/// `n` events over `keys` keys with ~200-byte JSON values, deterministic.
pub fn events(n: u64, keys: u64, first_seq: u64) -> Vec<(String, RefEvent)> {
    (0..n)
        .map(|i| {
            let seq = first_seq + i;
            let key = format!("key-{:04}", (seq * 7919) % keys.max(1));
            let payload = format!("payload-{seq:010}-{}", "x".repeat(150));
            (key, RefEvent::new(seq, &payload))
        })
        .collect()
}
