//! [`LatestView`]: the latest value per key of a (compacted) topic, kept in a local
//! on-disk [`ViewStore`] by a background reader thread; [`read_latest`] reads one to the
//! end into memory (for one-shot commands).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use processors::streams::topics;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::reader::{assign, assign_consumer, high_watermarks, partitions_of, Reader};
use super::store::{Order, Record, ViewStore, ViewStoreError};
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

/// Where and how big a view's store is.
#[derive(Debug, Clone)]
pub struct ViewConfig {
    /// Directory of the view's sled database (`<state_dir>/views/<topic>`); `None`: a
    /// temporary directory removed when the view is dropped.
    pub dir: Option<PathBuf>,
    /// sled's page cache cap, bytes: the view's memory, whatever the topic's size.
    pub cache_bytes: u64,
}

/// Default page cache of a view ([`ViewConfig::cache_bytes`]): 64 MiB.
pub const DEFAULT_VIEW_CACHE_BYTES: u64 = 64 << 20;

/// Records applied per store batch at most.
const BATCH: usize = 1000;
/// How often the reader refreshes how far behind the partitions' ends it is.
const LAG_REFRESH: Duration = Duration::from_secs(1);
/// How long one watermark request of that refresh may take.
const LAG_TIMEOUT: Duration = Duration::from_millis(500);

impl ViewConfig {
    /// A view of `topic` under `state_dir` (`<state_dir>/views/<topic>`) with a cache of
    /// `cache_mb` MiB.
    pub fn in_state_dir(state_dir: &std::path::Path, topic: &str, cache_mb: u64) -> Self {
        Self {
            dir: Some(state_dir.join("views").join(topic)),
            cache_bytes: cache_mb.saturating_mul(1 << 20),
        }
    }
}

impl Default for ViewConfig {
    fn default() -> Self {
        Self {
            dir: None,
            cache_bytes: DEFAULT_VIEW_CACHE_BYTES,
        }
    }
}

#[derive(Default)]
struct Progress {
    /// Records applied so far.
    records: u64,
    /// Bumped at every applied batch and every partition EOF (the condition variable's
    /// generation).
    events: u64,
    /// Per partition, the offset the view has read up to: one past its last applied
    /// record, or at a partition EOF the consumer's position (which also counts the
    /// transaction markers no record carries).
    reached: BTreeMap<i32, i64>,
    /// Partitions that reached their end (partition EOF; empty ones from the start).
    done: BTreeSet<i32>,
    /// Records between the view's position and each partition's end (last refresh;
    /// zero at a partition EOF).
    behind: BTreeMap<i32, u64>,
    /// Set when the view could not keep reading (the thread ended with an error).
    failed: Option<String>,
}

struct Shared {
    topic: String,
    partitions: Vec<i32>,
    store: ViewStore,
    progress: Mutex<Progress>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn caught_up(&self, p: &Progress) -> bool {
        self.partitions.iter().all(|id| p.done.contains(id))
    }

    fn fail(&self, why: String) {
        tracing::error!(topic = %self.topic, error = %why, "the view stopped reading");
        self.progress().failed = Some(why);
        self.changed.notify_all();
    }
}

/// The latest value per key of one topic, kept up to date by a background thread in an
/// on-disk [`ViewStore`] (memory capped by [`ViewConfig::cache_bytes`]), serving while it
/// catches up. See the module docs. Stops its thread on [`LatestView::stop`] or drop.
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
    /// Starts reading every partition of `topic` from the beginning into a temporary
    /// store with the default cache ([`ViewConfig::default`]).
    pub fn start(client: &ClientConfig, topic: &str) -> Result<Self> {
        Self::open(client, topic, &ViewConfig::default())
    }

    /// Opens the view's store as `config` says and starts reading `topic` where the store
    /// stopped (from the beginning for a new store). A store of another topic or cluster,
    /// a corrupt one, or one whose position is past a partition's end is wiped and rebuilt
    /// (with a warning); a store another process holds falls back to a temporary one.
    /// Fails when the consumer cannot be created or the topic's metadata cannot be read
    /// (unknown topic, unreachable cluster); afterwards read errors are logged and retried
    /// by librdkafka, and a store that cannot be written stops the view ([`failure`]).
    ///
    /// [`failure`]: LatestView::failure
    pub fn open(client: &ClientConfig, topic: &str, config: &ViewConfig) -> Result<Self> {
        let consumer = assign_consumer(client, &format!("view-{topic}"))?;
        let partitions = partitions_of(&consumer, topic)?;
        let highs = high_watermarks(&consumer, topic, &partitions)?;
        let cluster = consumer.client().fetch_cluster_id(Duration::from_secs(10));
        let order = order_of(topic);
        let store = match &config.dir {
            None => ViewStore::temporary(topic, config.cache_bytes, order)?,
            Some(dir) => {
                match ViewStore::open(dir, topic, cluster.as_deref(), config.cache_bytes, order) {
                    Ok(s) => s,
                    Err(e @ ViewStoreError::Locked(_)) => {
                        tracing::warn!(error = %e, topic, "using a temporary view store instead");
                        ViewStore::temporary(topic, config.cache_bytes, order)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let mut stored = store.offsets()?;
        let ahead = stored
            .iter()
            .find(|(p, o)| highs.get(p).is_none_or(|high| *o > high));
        if let Some((p, o)) = ahead {
            tracing::warn!(
                topic, partition = p, stored_offset = o, end = ?highs.get(p),
                path = %store.path().display(),
                "the view store is ahead of the topic (another cluster, or the topic was recreated); wiping it and reading the topic from the beginning"
            );
            store.clear()?;
            stored.clear();
        }
        let mut tpl = TopicPartitionList::new();
        let mut progress = Progress::default();
        for p in &partitions {
            let from = stored.get(p).copied();
            let offset = from.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(topic, *p, offset)
                .with_context(|| format!("assigning {topic}/{p}"))?;
            let high = highs.get(p).copied().unwrap_or(0);
            if high <= from.unwrap_or(0) {
                progress.done.insert(*p);
            }
            progress.reached.insert(*p, from.unwrap_or(0));
            progress
                .behind
                .insert(*p, (high - from.unwrap_or(0)).max(0) as u64);
        }
        consumer
            .assign(&tpl)
            .with_context(|| format!("assigning the partitions of `{topic}`"))?;
        if !stored.is_empty() {
            tracing::info!(topic, entries = store.len(), behind = progress.behind.values().sum::<u64>(), path = %store.path().display(), "view resumes from its store");
        }
        let shared = Arc::new(Shared {
            topic: topic.to_string(),
            partitions,
            store,
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

    /// The store the view reads into (for paging, iteration, its cache cap).
    pub fn store(&self) -> &ViewStore {
        &self.shared.store
    }

    /// The latest value of `key`, if it has one (a store read error is logged and
    /// answers `None`; use [`ViewStore::get`] to see it).
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.shared.store.get(key).unwrap_or_else(|e| {
            tracing::warn!(error = %e, key, "view read failed");
            None
        })
    }

    /// Up to `limit` entries, newest first (see [`Order`]), after skipping `offset`.
    pub fn page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, ViewStoreError> {
        self.shared.store.page(offset, limit)
    }

    /// Every entry by key, read from disk as the iterator advances.
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, Entry), ViewStoreError>> + '_ {
        self.shared.store.iter()
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.shared.store.len() as usize
    }

    /// Number of entries [`LatestView::page`] pages over.
    pub fn indexed(&self) -> usize {
        self.shared.store.indexed() as usize
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records applied so far (values and tombstones).
    pub fn records_applied(&self) -> u64 {
        self.shared.progress().records
    }

    /// Records between the view's position and the ends of its partitions (refreshed
    /// about every second while reading).
    pub fn behind(&self) -> u64 {
        self.shared.progress().behind.values().sum()
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

    /// Waits until `cond(self)` holds, re-checked after every applied batch (no polling);
    /// returns whether it held before `timeout`.
    pub fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.shared.progress().events;
            if cond(self) {
                return true;
            }
            let mut g = self.shared.progress();
            while g.events == seen {
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
    }

    /// Waits until the view holds at least `n` keys; returns whether it did in time.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |v| v.len() >= n)
    }

    /// Waits until [`LatestView::caught_up`]; returns whether it did in time.
    pub fn wait_caught_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.progress();
        loop {
            if self.shared.caught_up(&g) {
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

    /// Waits until the view has read every record the topic held when this was called
    /// (the partitions' end offsets, asked of the broker now); returns whether it did in
    /// time. Unlike [`LatestView::wait_caught_up`] (which holds once the view reached the
    /// end at some moment), this makes the view at least as fresh as any other reader that
    /// saw those records: a summary built after it counts them all.
    ///
    /// ```no_run
    /// # fn f(view: &orchestra::views::LatestView, client: &rdkafka::ClientConfig) -> anyhow::Result<()> {
    /// if view.wait_read_to_end(client, std::time::Duration::from_secs(10))? {
    ///     println!("{} matches", view.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait_read_to_end(&self, client: &ClientConfig, timeout: Duration) -> Result<bool> {
        let consumer = assign_consumer(client, &format!("view-{}-end", self.shared.topic))?;
        let ends = high_watermarks(&consumer, &self.shared.topic, &self.shared.partitions)?;
        Ok(self.wait_until(timeout, |v| {
            let p = v.shared.progress();
            ends.iter()
                .all(|(part, end)| p.reached.get(part).copied().unwrap_or(0) >= *end)
        }))
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
        if let Err(e) = self.shared.store.flush() {
            tracing::warn!(topic = %self.shared.topic, error = %e, "flushing the view store");
        }
    }
}

impl Drop for LatestView {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The index a topic's view keeps: completion order for `match-history`, record time
/// otherwise.
fn order_of(topic: &str) -> Order {
    if topic == topics::MATCH_HISTORY {
        Order::HistoryCompletion
    } else {
        Order::RecordTime
    }
}

/// One record read, owned until its batch is applied.
struct Owned {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    partition: i32,
    offset: i64,
}

fn run_view(consumer: Reader, shared: Arc<Shared>) {
    let mut last_error: Option<String> = None;
    let mut batch: Vec<Owned> = Vec::with_capacity(BATCH);
    let mut next: BTreeMap<i32, i64> = shared.store.offsets().unwrap_or_default();
    let mut lag_at = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        // Block for the first record, then drain what is buffered into one batch.
        let wait = if batch.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        let polled = consumer.poll(wait);
        let mut eof = None;
        match polled {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                // Keyless records cannot be a table's rows: they only advance the position.
                batch.push(Owned {
                    key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                    value: m.key().and(m.payload()).map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                    partition: m.partition(),
                    offset: m.offset(),
                });
                if batch.len() < BATCH {
                    continue;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => eof = Some(partition),
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(topic = %shared.topic, error = %msg, "view read error (retrying)");
                    last_error = Some(msg);
                }
            }
            None => {}
        }
        if !batch.is_empty() {
            let records: Vec<Record<'_>> = batch
                .iter()
                .filter(|r| !r.key.is_empty() || r.value.is_some())
                .map(|r| Record {
                    key: &r.key,
                    value: r.value.as_deref(),
                    timestamp: r.timestamp,
                    partition: r.partition,
                    offset: r.offset,
                })
                .collect();
            if let Err(e) = shared.store.apply(&records) {
                shared.fail(format!("writing the view store: {e}"));
                return;
            }
            let n = batch.len() as u64;
            batch.clear();
            let mut p = shared.progress();
            p.records += n;
            p.events += 1;
            for (part, at) in &next {
                let r = p.reached.entry(*part).or_insert(0);
                *r = (*r).max(*at);
            }
            drop(p);
            shared.changed.notify_all();
        }
        if let Some(partition) = eof {
            // A partition is at its end when the consumer says so (partition EOF, from
            // the fetch's high watermark), not when a record reaches the end ListOffsets
            // gave at start: some brokers (Tansu 0.6) answer that short.
            let position = consumer.position().ok().and_then(|tpl| {
                tpl.find_partition(&shared.topic, partition)
                    .and_then(|e| e.offset().to_raw())
            });
            let mut p = shared.progress();
            p.behind.insert(partition, 0);
            p.done.insert(partition);
            if let Some(at) = position.filter(|at| *at >= 0) {
                let r = p.reached.entry(partition).or_insert(0);
                *r = (*r).max(at);
                // Past a transaction marker no record reports (exactly_once): the lag
                // below counts from here.
                let n = next.entry(partition).or_insert(0);
                *n = (*n).max(at);
            }
            p.events += 1;
            drop(p);
            shared.changed.notify_all();
        }
        if lag_at.elapsed() >= LAG_REFRESH {
            lag_at = Instant::now();
            let behind = lag(&consumer, &shared, &next);
            shared.progress().behind.extend(behind);
        }
    }
}

/// Records between `next` and each partition's end (asks the broker; a partition whose
/// watermarks cannot be read keeps its last figure).
fn lag(consumer: &Reader, shared: &Shared, next: &BTreeMap<i32, i64>) -> Vec<(i32, u64)> {
    let mut behind = Vec::new();
    for p in &shared.partitions {
        if let Ok((low, high)) = consumer.fetch_watermarks(&shared.topic, *p, LAG_TIMEOUT) {
            let at = next.get(p).copied().unwrap_or(low).max(low);
            behind.push((*p, (high - at).max(0) as u64));
        }
    }
    behind
}

/// Reads `topic` to the end and returns the latest value per key, in memory: for
/// one-shot commands (`orchestra history`, `export`, `replay`), not for long-lived views.
pub fn read_latest(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, Entry>> {
    let consumer = assign_consumer(client, &format!("read-{topic}"))?;
    let partitions = partitions_of(&consumer, topic)?;
    let highs = high_watermarks(&consumer, topic, &partitions)?;
    assign(&consumer, topic, &partitions, Offset::Beginning)?;
    let mut done: BTreeSet<i32> = highs
        .iter()
        .filter(|(_, h)| **h <= 0)
        .map(|(p, _)| *p)
        .collect();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    while done.len() < partitions.len() {
        if Instant::now() >= deadline {
            let why = last_error.unwrap_or_else(|| format!("not at the end after {timeout:?}"));
            bail!("reading `{topic}`: {why}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                if let Some(key) = m.key() {
                    let key = String::from_utf8_lossy(key).into_owned();
                    match m.payload() {
                        Some(v) => {
                            out.insert(
                                key,
                                Entry {
                                    value: v.to_vec(),
                                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                                    partition: m.partition(),
                                    offset: m.offset(),
                                },
                            );
                        }
                        None => {
                            out.remove(&key);
                        }
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                done.insert(p);
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(topic, error = %msg, "read error (retrying)");
                }
                last_error = Some(msg);
            }
        }
    }
    Ok(out)
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
