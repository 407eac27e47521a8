//! `GET /matches/{id}/live`: a WebSocket streaming one match's events as its players may
//! see them (issue 15 item 2).
//!
//! Each text frame is one `match-events` envelope (JSON, as on the topic) in `sequence`
//! order, redacted for fair play ([`super::auth::redact`]: no seat kinds, sources, robot
//! ids or models, player ids; `round.robots_needed` is not sent at all) except
//! `match.completed`, which is the reveal. A client that reconnects passes the last
//! `sequence` it saw as `?after=<sequence>` and gets exactly the events after it: no gap,
//! no duplicate. (Since robot-only events are not sent, the sequences a client sees may
//! skip numbers; `after` is still the last one it saw.)
//!
//! Design, per API instance:
//! - **One shared tail** ([`LiveEvents`]): a thread with one consumer assigned to every
//!   partition of `match-events` from its end (at start), publishing every event
//!   (key, sequence, JSON) on a `tokio::sync::broadcast` channel. Subscribers filter by
//!   match id; the tail costs one consumer however many sockets are open.
//! - **A catch-up read per connection**: the socket subscribes to the broadcast first,
//!   then reads the match's partition (`topology::partition_for(key, partitions)`) up to
//!   its high watermark with a short-lived consumer, keeping the match's events after
//!   `after`. It starts at the match's first offset when this instance has seen it
//!   (a small per-match cache of first offsets), else at the beginning of the partition.
//!   Everything past the watermark is also on the broadcast (the tail started before the
//!   subscription), so nothing falls between the two.
//! - **Order and duplicates**: the socket remembers the last sequence it sent and only
//!   sends the next ones; at-least-once copies (same sequence) are dropped. Should the
//!   broadcast overflow for a slow socket (`Lagged`) or a sequence be skipped, the socket
//!   catches up again from its last sequence by the same read.
//!
//! Records are read `read_committed`, so under exactly-once aborted copies are never sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use processors::streams::topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast;

use super::validation::valid_id;
use super::{ApiError, ApiState};
use crate::kafka_config::Tuning;

/// Capacity of the broadcast channel (events kept for slow sockets before `Lagged`).
const BROADCAST_CAPACITY: usize = 4096;
/// Longest a catch-up read may take.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// One event of the tail: match id, sequence, the envelope.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub match_id: String,
    pub sequence: u64,
    pub event: Arc<Value>,
}

/// The shared tail of `match-events` of one API instance (see the module docs).
pub struct LiveEvents {
    client: ClientConfig,
    partitions: i32,
    tx: broadcast::Sender<LiveEvent>,
    first_offsets: Mutex<HashMap<String, i64>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for LiveEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEvents")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl Drop for LiveEvents {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn consumer(client: &ClientConfig) -> Result<BaseConsumer> {
    let mut cfg = client.clone();
    cfg.set("group.id", "orchestra-live-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // A player waits on this hop: librdkafka's default long poll (500 ms) added up to
        // half a second to every event on the socket (measured by examples/load.rs).
        .tune("fetch.wait.max.ms", "10")
        .tune("fetch.queue.backoff.ms", "10");
    cfg.create()
        .context("creating the live match-events consumer")
}

fn partition_count(c: &BaseConsumer) -> Result<i32> {
    let md = c
        .fetch_metadata(Some(topics::MATCH_EVENTS), Duration::from_secs(10))
        .context("fetching the metadata of match-events")?;
    let n = md
        .topics()
        .iter()
        .find(|t| t.name() == topics::MATCH_EVENTS)
        .map_or(0, |t| t.partitions().len());
    anyhow::ensure!(
        n > 0,
        "topic match-events has no partitions (does it exist?)"
    );
    Ok(i32::try_from(n)?)
}

/// `(match id, sequence, envelope)` of a record, when it is a match event with a sequence.
fn decode(m: &impl Message) -> Option<LiveEvent> {
    let key = std::str::from_utf8(m.key()?).ok()?.to_string();
    let event: Value = serde_json::from_slice(m.payload()?).ok()?;
    let sequence = event.get("sequence")?.as_u64()?;
    Some(LiveEvent {
        match_id: key,
        sequence,
        event: Arc::new(event),
    })
}

impl LiveEvents {
    /// Starts the shared tail of `match-events` (from its end).
    pub fn start(client: &ClientConfig) -> Result<Arc<Self>> {
        let c = consumer(client)?;
        let partitions = partition_count(&c)?;
        // From each partition's current end (resolved now, so every event written after
        // `start` returns reaches the broadcast).
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (_, high) = c
                .fetch_watermarks(topics::MATCH_EVENTS, p, Duration::from_secs(10))
                .context("fetching the watermarks of match-events")?;
            tpl.add_partition_offset(topics::MATCH_EVENTS, p, Offset::Offset(high))?;
        }
        c.assign(&tpl).context("assigning match-events")?;
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Self {
            client: client.clone(),
            partitions,
            tx: tx.clone(),
            first_offsets: Mutex::new(HashMap::new()),
            stop: stop.clone(),
        });
        std::thread::Builder::new()
            .name("live-match-events".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match c.poll(Duration::from_millis(200)) {
                        Some(Ok(m)) => {
                            if let Some(e) = decode(&m) {
                                let _ = tx.send(e);
                            }
                        }
                        Some(Err(e)) => tracing::warn!(error = %e, "live match-events tail"),
                        None => {}
                    }
                }
            })
            .context("spawning the live tail thread")?;
        Ok(live)
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }

    /// Events of `match_id` with a sequence above `after`, read from its partition up to
    /// the high watermark (blocking), in sequence order without duplicates.
    pub fn catch_up(&self, match_id: &str, after: u64) -> Result<Vec<LiveEvent>> {
        let partition = topology::partition_for(match_id.as_bytes(), self.partitions);
        let c = consumer(&self.client)?;
        let (low, high) = c
            .fetch_watermarks(topics::MATCH_EVENTS, partition, Duration::from_secs(10))
            .context("fetching the watermarks of match-events")?;
        let cached = self
            .first_offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(match_id)
            .copied();
        let start = cached.unwrap_or(low).max(low);
        let mut found: BTreeMap<u64, LiveEvent> = BTreeMap::new();
        if start < high {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topics::MATCH_EVENTS, partition, Offset::Offset(start))?;
            c.assign(&tpl).context("assigning match-events")?;
            let deadline = Instant::now() + CATCH_UP_TIMEOUT;
            let mut first = None;
            loop {
                let pos = c
                    .position()
                    .ok()
                    .and_then(|t| {
                        t.find_partition(topics::MATCH_EVENTS, partition)
                            .map(|e| e.offset())
                    })
                    .and_then(|o| o.to_raw());
                if pos.is_some_and(|p| p >= high) {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "catching up match {match_id}: partition {partition} not read to {high} in time"
                );
                match c.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        if let Some(e) = decode(&m).filter(|e| e.match_id == match_id) {
                            first.get_or_insert(m.offset());
                            if e.sequence > after {
                                found.entry(e.sequence).or_insert(e);
                            }
                        }
                        if m.offset() + 1 >= high {
                            break;
                        }
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "live catch-up read"),
                    None => {}
                }
            }
            if let (None, Some(f)) = (cached, first) {
                self.first_offsets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(match_id.to_string(), f);
            }
        }
        Ok(found.into_values().collect())
    }
}

/// What a player may see of `e`: `None` for robot-only events; redacted before the reveal.
pub fn player_event(e: &Value) -> Option<Value> {
    match e.get("eventType").and_then(Value::as_str) {
        Some("round.robots_needed") => None,
        Some("match.completed") => Some(e.clone()),
        _ => {
            let mut v = e.clone();
            super::auth::redact(&mut v);
            Some(v)
        }
    }
}

/// Query of `/matches/{id}/live`.
#[derive(Debug, Deserialize)]
pub(super) struct LiveQuery {
    after: Option<u64>,
}

pub(super) async fn live(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(e) = valid_id("match id", &id) {
        return e.into_response();
    }
    let after = match q {
        Ok(Query(q)) => q.after.unwrap_or(0),
        Err(e) => {
            return ApiError::bad_request(format!("invalid query: {}", e.body_text()))
                .into_response()
        }
    };
    let Some(live) = st.live.clone() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this instance streams no live events",
        )
        .into_response();
    };
    ws.on_upgrade(move |socket| stream(socket, live, id, after))
}

async fn send(socket: &mut WebSocket, e: &LiveEvent) -> bool {
    match player_event(&e.event) {
        None => true,
        Some(v) => socket
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .is_ok(),
    }
}

async fn catch_up(live: &Arc<LiveEvents>, id: &str, after: u64) -> Result<Vec<LiveEvent>> {
    let (live, id) = (live.clone(), id.to_string());
    tokio::task::spawn_blocking(move || live.catch_up(&id, after))
        .await
        .context("the catch-up task failed")?
}

async fn stream(mut socket: WebSocket, live: Arc<LiveEvents>, id: String, after: u64) {
    let mut last = after;
    let mut rx = live.subscribe();
    let mut need_catch_up = true;
    loop {
        if need_catch_up {
            need_catch_up = false;
            match catch_up(&live, &id, last).await {
                Ok(events) => {
                    for e in &events {
                        if e.sequence <= last {
                            continue;
                        }
                        if !send(&mut socket, e).await {
                            return;
                        }
                        last = e.sequence;
                    }
                }
                Err(e) => {
                    tracing::warn!(match_id = %id, error = %e, "live catch-up failed");
                    let _ = socket
                        .send(WsMessage::Close(Some(axum::extract::ws::CloseFrame {
                            code: 1011,
                            reason: "catch-up failed; reconnect with ?after=".into(),
                        })))
                        .await;
                    return;
                }
            }
        }
        tokio::select! {
            got = rx.recv() => match got {
                Ok(e) if e.match_id == id && e.sequence == last + 1 => {
                    if !send(&mut socket, &e).await {
                        return;
                    }
                    last = e.sequence;
                }
                Ok(e) if e.match_id == id && e.sequence > last + 1 => need_catch_up = true,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    rx = live.subscribe();
                    need_catch_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
