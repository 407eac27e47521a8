//! How long a player waits (issue 17 item 4): request → `match-events` and request →
//! `robot-commands`, measured by the API instance that took the request.
//!
//! Measuring point: the clock starts when the API wraps the player's request in its
//! envelope (the envelope's `timestamp`; before it is written to `match-requests`) and
//! stops when this process's own tail of the output topic reads
//! - the first `match-events` event the request caused (`causationId` = the request id:
//!   `match.created`, `player.joined`, `response.recorded`, `vote.recorded`) →
//!   [`REQUEST_TO_MATCH_EVENT`](crate::metrics::REQUEST_TO_MATCH_EVENT);
//! - the first `robot-commands` command it led to (`correlationId` = the request id: a
//!   created match's first `generate.response`, the `generate.vote`s after the response
//!   that completes a phase) → [`REQUEST_TO_ROBOT_COMMAND`](crate::metrics::REQUEST_TO_ROBOT_COMMAND).
//!
//! So a figure includes the producer, the broker, the stream worker's processing and
//! commit (under exactly-once the tail reads `read_committed`: a record counts once its
//! transaction committed, as any consumer sees it) and one fetch by the tail (its
//! `fetch.wait.max.ms` is 10 ms, as the WebSocket's tail) — what a player watching the match's WebSocket waits, all
//! on one clock (monotonic, no cross-host skew). Requests this process did not take are
//! not measured; requests that cause no event (rejected, see the DLQ) or no command
//! expire after [`PENDING_FOR`].
//!
//! ```no_run
//! # fn example(client: &rdkafka::ClientConfig) -> anyhow::Result<()> {
//! let latency = orchestra::api::RequestLatency::start(client)?;
//! latency.taken("request-1", "create", std::time::Instant::now());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use processors::streams::topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;

use crate::kafka_config::Tuning;
use crate::metrics::{REQUEST_TO_MATCH_EVENT, REQUEST_TO_ROBOT_COMMAND};

/// How long a request waits for its event and command before it is forgotten.
pub const PENDING_FOR: Duration = Duration::from_secs(120);
/// Most requests remembered at once (beyond: new ones are not measured).
const MAX_PENDING: usize = 200_000;

struct Pending {
    action: &'static str,
    at: Instant,
    event_seen: bool,
    command_seen: bool,
}

/// The ids of a record's envelope this module reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ids {
    #[serde(default)]
    causation_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}

/// See the module docs.
pub struct RequestLatency {
    pending: Mutex<HashMap<String, Pending>>,
    stop: AtomicBool,
}

impl RequestLatency {
    /// Starts a tail of `match-events` and `robot-commands` (from their ends) on a thread
    /// of its own, which stops when the returned value is dropped.
    pub fn start(client: &ClientConfig) -> Result<Arc<Self>> {
        let mut cfg = client.clone();
        cfg.set("group.id", "orchestra-latency-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .tune("fetch.wait.max.ms", "10")
            .tune("fetch.queue.backoff.ms", "10");
        let consumer: BaseConsumer = cfg.create().context("creating the latency consumer")?;
        let mut tpl = TopicPartitionList::new();
        for topic in [topics::MATCH_EVENTS, topics::ROBOT_COMMANDS] {
            let md = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("fetching metadata of `{topic}`"))?;
            let t = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .ok_or_else(|| anyhow!("topic `{topic}` not found"))?;
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::End)?;
            }
        }
        consumer
            .assign(&tpl)
            .context("assigning the latency consumer")?;
        let this = Arc::new(Self {
            pending: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&this);
        std::thread::Builder::new()
            .name("request-latency".into())
            .spawn(move || tail(consumer, weak))
            .context("spawning the latency thread")?;
        Ok(this)
    }

    /// Request `request_id` (`action`: `create`, `join`, `respond`, `vote`) was taken at
    /// `at`: measure it.
    pub fn taken(&self, request_id: &str, action: &'static str, at: Instant) {
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() < MAX_PENDING {
            g.insert(
                request_id.to_string(),
                Pending {
                    action,
                    at,
                    event_seen: false,
                    command_seen: false,
                },
            );
        }
    }

    /// Request `request_id` was not written: forget it.
    pub fn dropped(&self, request_id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(request_id);
    }

    /// Requests waiting for their event or command.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn observe(&self, topic: &str, ids: Ids) {
        let (id, is_event) = if topic == topics::MATCH_EVENTS {
            (ids.causation_id, true)
        } else {
            (ids.correlation_id, false)
        };
        let Some(id) = id else { return };
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = g.get_mut(&id) else { return };
        let seen = if is_event {
            &mut p.event_seen
        } else {
            &mut p.command_seen
        };
        if *seen {
            return;
        }
        *seen = true;
        let secs = p.at.elapsed().as_secs_f64();
        let name = if is_event {
            REQUEST_TO_MATCH_EVENT
        } else {
            REQUEST_TO_ROBOT_COMMAND
        };
        metrics::histogram!(name, "action" => p.action).record(secs);
    }

    fn expire(&self) {
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|_, p| p.at.elapsed() < PENDING_FOR && !(p.event_seen && p.command_seen));
    }
}

impl Drop for RequestLatency {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn tail(consumer: BaseConsumer, this: std::sync::Weak<RequestLatency>) {
    let mut swept = Instant::now();
    let mut last_error: Option<String> = None;
    loop {
        let Some(me) = this.upgrade() else { return };
        if me.stop.load(Ordering::Relaxed) {
            return;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                if let Some(ids) = m.payload().and_then(|v| serde_json::from_slice(v).ok()) {
                    me.observe(m.topic(), ids);
                }
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "latency tail read error (retrying)");
                    last_error = Some(msg);
                }
            }
        }
        if swept.elapsed() > Duration::from_secs(1) {
            me.expire();
            swept = Instant::now();
        }
    }
}
