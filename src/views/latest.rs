//! [`LatestView`]: the latest value per key of a (compacted) topic, kept in memory by a
//! background reader thread; [`read_latest`] reads one to the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use processors::streams::topics;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset};

use super::reader::{assign, assign_consumer, high_watermarks, partitions_of, Reader};

/// The latest value of one key, with where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's value (never a tombstone: tombstones remove the key).
    pub value: Vec<u8>,
    /// Record timestamp (epoch ms; -1 when the broker gave none).
    pub timestamp: i64,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

#[derive(Default)]
struct Progress {
    /// Records applied so far (the condition variable's generation).
    records: u64,
    /// Partitions that reached their end (partition EOF; empty ones from the start).
    done: BTreeSet<i32>,
    /// Set when the view could not keep reading (the thread ended with an error).
    failed: Option<String>,
}

struct Shared {
    topic: String,
    partitions: Vec<i32>,
    entries: RwLock<BTreeMap<String, Entry>>,
    progress: Mutex<Progress>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn caught_up(&self, p: &Progress) -> bool {
        self.partitions.iter().all(|id| p.done.contains(id))
    }
}

/// The latest value per key of one topic, kept up to date by a background thread.
/// See the module docs. Stops its thread on [`LatestView::stop`] or drop.
pub struct LatestView {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LatestView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatestView")
            .field("topic", &self.shared.topic)
            .field("entries", &self.len())
            .field("caught_up", &self.caught_up())
            .finish()
    }
}

impl LatestView {
    /// Starts reading every partition of `topic` from the beginning. Fails when the
    /// consumer cannot be created or the topic's metadata cannot be read (unknown topic,
    /// unreachable cluster); afterwards read errors are logged and retried by librdkafka.
    pub fn start(client: &ClientConfig, topic: &str) -> Result<Self> {
        let consumer = assign_consumer(client, &format!("view-{topic}"))?;
        let partitions = partitions_of(&consumer, topic)?;
        let highs = high_watermarks(&consumer, topic, &partitions)?;
        assign(&consumer, topic, &partitions, Offset::Beginning)?;
        let mut progress = Progress::default();
        for (p, high) in &highs {
            if *high <= 0 {
                progress.done.insert(*p);
            }
        }
        let shared = Arc::new(Shared {
            topic: topic.to_string(),
            partitions,
            entries: RwLock::new(BTreeMap::new()),
            progress: Mutex::new(progress),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("view-{topic}"))
            .spawn(move || run_view(consumer, s))
            .context("spawning the view thread")?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The topic this view reads.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The latest value of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.shared.read().get(key).cloned()
    }

    /// A copy of every entry, sorted by key.
    pub fn snapshot(&self) -> BTreeMap<String, Entry> {
        self.shared.read().clone()
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.shared.read().len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records applied so far (values and tombstones).
    pub fn records_applied(&self) -> u64 {
        self.shared.progress().records
    }

    /// Whether every partition has reached its end once (the consumer's partition EOF).
    pub fn caught_up(&self) -> bool {
        let p = self.shared.progress();
        self.shared.caught_up(&p)
    }

    /// Why the view stopped reading, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.progress().failed.clone()
    }

    /// Waits until `cond(entries)` holds, woken by every applied record (no polling);
    /// returns whether it held before `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&BTreeMap<String, Entry>) -> bool,
    ) -> bool {
        self.wait_progress(timeout, |_| cond(&self.shared.read()))
    }

    /// Waits until the view holds at least `n` keys; returns whether it did in time.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |m| m.len() >= n)
    }

    /// Waits until [`LatestView::caught_up`]; returns whether it did in time.
    pub fn wait_caught_up(&self, timeout: Duration) -> bool {
        self.wait_progress(timeout, |g| self.shared.caught_up(g))
    }

    /// Waits, woken by every applied record (no polling), until `cond` holds on the
    /// reader's progress; gives up at `timeout` or when the reader failed.
    fn wait_progress(&self, timeout: Duration, mut cond: impl FnMut(&Progress) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.progress();
        loop {
            if cond(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || g.failed.is_some() {
                return false;
            }
            g = self
                .shared
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Stops the reading thread (the entries stay readable). Idempotent.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::warn!(topic = %self.shared.topic, "view thread panicked");
            }
        }
    }
}

impl Drop for LatestView {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_view(consumer: Reader, shared: Arc<Shared>) {
    let mut last_error: Option<String> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let (partition, offset) = (m.partition(), m.offset());
                if let Some(key) = m.key() {
                    let key = String::from_utf8_lossy(key).into_owned();
                    let mut entries = shared.write();
                    match m.payload() {
                        Some(v) => {
                            entries.insert(
                                key,
                                Entry {
                                    value: v.to_vec(),
                                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                                    partition,
                                    offset,
                                },
                            );
                        }
                        None => {
                            entries.remove(&key);
                        }
                    }
                }
                // A partition is at its end when the consumer says so (partition EOF,
                // from the fetch's high watermark), not when a record reaches the end
                // ListOffsets gave at start: some brokers (Tansu 0.6) answer that short.
                shared.progress().records += 1;
                shared.changed.notify_all();
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                let mut p = shared.progress();
                if p.done.insert(partition) {
                    drop(p);
                    shared.changed.notify_all();
                }
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(topic = %shared.topic, error = %msg, "view read error (retrying)");
                    last_error = Some(msg);
                }
            }
        }
    }
}

/// Reads `topic` to the end and returns the latest value per key.
pub fn read_latest(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, Entry>> {
    let view = LatestView::start(client, topic)?;
    if !view.wait_caught_up(timeout) {
        let why = view
            .failure()
            .unwrap_or_else(|| format!("not at the end after {timeout:?}"));
        bail!("reading `{topic}`: {why}");
    }
    view.stop();
    Ok(view.snapshot())
}

/// Whether `topic` is a compacted table (latest value per key) rather than a stream.
pub fn is_compacted(topic: &str) -> bool {
    matches!(
        topic,
        topics::MATCH_STATE
            | topics::ROBOT_POOL_STATE
            | topics::MATCH_HISTORY
            | topics::MATCH_STATS
    ) || topic.ends_with("-changelog")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_topics_are_known() {
        assert!(is_compacted("match-state"));
        assert!(is_compacted("app-matches-changelog"));
        assert!(!is_compacted("match-events"));
    }
}
