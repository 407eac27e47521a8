//! Latest-value views of compacted topics, and the analysts' commands built on them
//! (`orchestra tail`, `orchestra history`, `orchestra stats`).
//!
//! A [`LatestView`] is a background thread with its own consumer that **assigns** every
//! partition of one topic from the beginning (no consumer group, no offset commits, so
//! any number of views can read the same topic) and keeps the latest value per key in
//! memory; a tombstone (null value) deletes the key. It is how the read API serves
//! `match-history` and `robot-pool-state` without a store of its own: the compacted topic
//! is the table.
//!
//! ```no_run
//! use std::time::Duration;
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "127.0.0.1:9092");
//! let view = orchestra::views::LatestView::start(&client, "match-history").unwrap();
//! view.wait_caught_up(Duration::from_secs(30));
//! println!("{} finished matches", view.len());
//!
//! // The analysts' commands write to any `impl Write`:
//! orchestra::views::history(&client, 10, true, &mut std::io::stdout()).unwrap();
//! ```
//!
//! Output formats: JSON lines by default — for `tail` one object per record,
//! `{"key":..,"partition":..,"offset":..,"timestamp":..,"value":..}` (the value inline as
//! JSON when it is JSON, else as a string, `null` for a tombstone); for `history` and
//! `stats` the documents themselves. `table = true` prints an aligned text table instead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use processors::streams::topics;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use schemas::{MatchHistory, MatchStats, SeatKind};

/// How long the analysts' commands wait to read a compacted topic to its end.
pub const READ_TO_END_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Partitions that reached the high watermark seen at start.
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

/// Context of the reading consumers: partition-EOF events are expected (they mark "read
/// to the end"), so they are not logged as client errors the way the default context does.
struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for ReaderContext {}

type Reader = BaseConsumer<ReaderContext>;

/// A consumer configured for reading by assignment: a private group id (never used for
/// commits), no auto commit, and partition-EOF events so "read to the end" is observable.
fn assign_consumer(client: &ClientConfig, purpose: &str) -> Result<Reader> {
    let mut cfg = client.clone();
    cfg.set("group.id", format!("orchestra-{purpose}-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    cfg.create_with_context(ReaderContext)
        .with_context(|| format!("creating the {purpose} consumer"))
}

/// Partition ids of `topic`; an error if the topic does not exist.
fn partitions_of(consumer: &Reader, topic: &str) -> Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("fetching metadata of topic `{topic}`"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("topic `{topic}` not found"))?;
    if let Some(err) = t.error() {
        bail!("topic `{topic}`: {:?}", RDKafkaErrorCode::from(err));
    }
    let ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if ids.is_empty() {
        bail!("topic `{topic}` has no partitions (does it exist?)");
    }
    Ok(ids)
}

fn assign(consumer: &Reader, topic: &str, partitions: &[i32], offset: Offset) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, offset)
            .with_context(|| format!("assigning {topic}/{p}"))?;
    }
    consumer
        .assign(&tpl)
        .with_context(|| format!("assigning the partitions of `{topic}`"))
}

/// High watermark per partition.
fn high_watermarks(
    consumer: &Reader,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>> {
    let mut out = BTreeMap::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .with_context(|| format!("fetching the watermarks of {topic}/{p}"))?;
        out.insert(*p, high);
    }
    Ok(out)
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
            .spawn(move || run_view(consumer, s, highs))
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

    /// Whether every partition reached the high watermark it had when the view started.
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
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.progress();
        loop {
            if cond(&self.shared.read()) {
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

    /// Waits until the view holds at least `n` keys; returns whether it did in time.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |m| m.len() >= n)
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

fn run_view(consumer: Reader, shared: Arc<Shared>, highs: BTreeMap<i32, i64>) {
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
                let mut p = shared.progress();
                p.records += 1;
                if highs.get(&partition).is_some_and(|h| offset + 1 >= *h) {
                    p.done.insert(partition);
                }
                drop(p);
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

/// A record as `tail` prints it (and as [`read_to_end`] hands it out).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) key: Option<String>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) value: Option<Vec<u8>>,
}

impl Row {
    fn from_message(m: &BorrowedMessage<'_>) -> Self {
        Row {
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
            value: m.payload().map(<[u8]>::to_vec),
        }
    }

    fn json_line(&self) -> String {
        let key = serde_json::to_string(&self.key).unwrap_or_else(|_| "null".into());
        let value = match &self.value {
            None => "null".to_string(),
            Some(v) => inline_json(v),
        };
        format!(
            r#"{{"key":{key},"partition":{},"offset":{},"timestamp":{},"value":{value}}}"#,
            self.partition, self.offset, self.timestamp
        )
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.key.clone().unwrap_or_else(|| "(none)".into()),
            self.partition.to_string(),
            self.offset.to_string(),
            format_ts(self.timestamp),
            match &self.value {
                None => "(tombstone)".into(),
                Some(v) => truncate(&inline_json(v), 120),
            },
        ]
    }
}

const ROW_HEADER: [&str; 5] = ["KEY", "PARTITION", "OFFSET", "TIMESTAMP", "VALUE"];

/// `bytes` as one line of JSON: kept verbatim when it is compact JSON (so documents keep
/// their field order), re-encoded when it spans lines, quoted as a string otherwise.
fn inline_json(bytes: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => {
            if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
                v.to_string()
            } else {
                String::from_utf8_lossy(bytes).trim().to_string()
            }
        }
        Err(_) => {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC); `-` when unknown.
pub fn format_ts(ms: i64) -> String {
    if ms < 0 {
        return "-".into();
    }
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Writes rows as an aligned text table (columns padded to their widest cell).
fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            s.push_str(c);
            if i + 1 < n {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count());
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// `orchestra tail TOPIC`.
///
/// * Compacted topics (`match-state`, `robot-pool-state`, `match-history`, `match-stats`,
///   changelogs): reads to the end and prints the latest value per key, sorted by key
///   (`from_beginning` is implied).
/// * Other topics: prints records as they come. With `from_beginning` it reads from the
///   start; it stops at the end when `limit` is set or stdout is not a terminal, and
///   otherwise keeps following until Ctrl-C. Without `from_beginning` it starts at the end
///   and follows until Ctrl-C (or until `limit` records were printed).
///
/// `limit` caps the number of records printed.
pub fn tail(
    client: &ClientConfig,
    topic: &str,
    from_beginning: bool,
    table: bool,
    limit: Option<usize>,
    out: &mut impl Write,
) -> Result<()> {
    if is_compacted(topic) {
        let latest = read_latest(client, topic, READ_TO_END_TIMEOUT)?;
        let rows: Vec<Row> = latest
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(k, e)| Row {
                key: Some(k),
                partition: e.partition,
                offset: e.offset,
                timestamp: e.timestamp,
                value: Some(e.value),
            })
            .collect();
        return print_rows(&rows, table, out);
    }
    let follow = if from_beginning {
        limit.is_none() && std::io::stdout().is_terminal()
    } else {
        true
    };
    let start = if from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    if follow {
        if table {
            writeln!(
                out,
                "{:<24}  {:>9}  {:>8}  {:<24}  VALUE",
                ROW_HEADER[0], ROW_HEADER[1], ROW_HEADER[2], ROW_HEADER[3]
            )?;
        }
        let mut printed = 0usize;
        stream_records(client, topic, start, false, None, |row| {
            if table {
                let c = row.cells();
                writeln!(
                    out,
                    "{:<24}  {:>9}  {:>8}  {:<24}  {}",
                    c[0], c[1], c[2], c[3], c[4]
                )?;
            } else {
                writeln!(out, "{}", row.json_line())?;
            }
            out.flush()?;
            printed += 1;
            Ok(limit.is_none_or(|l| printed < l))
        })
    } else {
        let mut rows = Vec::new();
        let cap = limit.unwrap_or(usize::MAX);
        if cap > 0 {
            stream_records(
                client,
                topic,
                start,
                true,
                Some(Instant::now() + READ_TO_END_TIMEOUT),
                |row| {
                    rows.push(row);
                    Ok(rows.len() < cap)
                },
            )?;
        }
        print_rows(&rows, table, out)
    }
}

fn print_rows(rows: &[Row], table: bool, out: &mut impl Write) -> Result<()> {
    if table {
        let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
        write_table(out, &ROW_HEADER, &cells)?;
    } else {
        for r in rows {
            writeln!(out, "{}", r.json_line())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Reads every partition of `topic` from the beginning to its end (the ends as of when
/// reading reached them), in offset order per partition, calling `f` per record. Fails
/// after `timeout`.
pub(crate) fn read_to_end(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
    mut f: impl FnMut(Row),
) -> Result<()> {
    stream_records(
        client,
        topic,
        Offset::Beginning,
        true,
        Some(Instant::now() + timeout),
        |row| {
            f(row);
            Ok(true)
        },
    )
}

/// Reads `topic` from `start`, calling `f` per record until it returns `false`, or (when
/// `stop_at_end`) every partition reached its end; fails when `deadline` passes first.
fn stream_records(
    client: &ClientConfig,
    topic: &str,
    start: Offset,
    stop_at_end: bool,
    deadline: Option<Instant>,
    mut f: impl FnMut(Row) -> Result<bool>,
) -> Result<()> {
    let consumer = assign_consumer(client, "tail")?;
    let partitions = partitions_of(&consumer, topic)?;
    let highs = high_watermarks(&consumer, topic, &partitions)?;
    assign(&consumer, topic, &partitions, start)?;
    let mut done: BTreeSet<i32> = if start == Offset::Beginning {
        highs
            .iter()
            .filter(|(_, h)| **h <= 0)
            .map(|(p, _)| *p)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut last_error: Option<String> = None;
    loop {
        if stop_at_end && partitions.iter().all(|p| done.contains(p)) {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!(
                "reading `{topic}`: not at the end in time ({} of {} partitions done{})",
                done.len(),
                partitions.len(),
                last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                if highs
                    .get(&m.partition())
                    .is_some_and(|h| m.offset() + 1 >= *h)
                {
                    done.insert(m.partition());
                }
                if !f(Row::from_message(&m))? {
                    return Ok(());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                done.insert(p);
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(%topic, error = %msg, "read error (retrying)");
                    last_error = Some(msg);
                }
            }
        }
    }
}

/// Decoded `match-history` documents, newest first (by completion time, then creation
/// time, then match id). Undecodable values are skipped with a warning.
pub fn sorted_histories(entries: &BTreeMap<String, Entry>) -> Vec<(MatchHistory, &Entry)> {
    let mut docs: Vec<(MatchHistory, &Entry)> = entries
        .iter()
        .filter_map(|(k, e)| match schemas::decode_document::<MatchHistory>(&e.value) {
            Ok(h) => Some((h, e)),
            Err(err) => {
                tracing::warn!(key = %k, error = %err, "skipping an undecodable match-history value");
                None
            }
        })
        .collect();
    docs.sort_by(|(a, _), (b, _)| {
        let ka = (a.completed_at.unwrap_or(a.created_at), a.created_at);
        let kb = (b.completed_at.unwrap_or(b.created_at), b.created_at);
        kb.cmp(&ka).then_with(|| a.match_id.cmp(&b.match_id))
    });
    docs
}

/// `orchestra history`: the `limit` most recently finished matches from `match-history`,
/// newest first. JSON lines (the documents as stored) or, with `table`, one row per match.
pub fn history(
    client: &ClientConfig,
    limit: usize,
    table: bool,
    out: &mut impl Write,
) -> Result<()> {
    let latest = read_latest(client, topics::MATCH_HISTORY, READ_TO_END_TIMEOUT)?;
    let docs = sorted_histories(&latest);
    let docs = &docs[..docs.len().min(limit)];
    if table {
        let rows: Vec<Vec<String>> = docs
            .iter()
            .map(|(h, _)| {
                let humans: Vec<String> = h
                    .seats
                    .iter()
                    .filter(|s| s.kind == SeatKind::Human)
                    .map(|s| match &s.name {
                        Some(n) => format!("{}={n}", s.identity),
                        None => s.identity.to_string(),
                    })
                    .collect();
                let scores: Vec<String> = h
                    .final_scores
                    .iter()
                    .map(|(id, p)| format!("{id}:{p}"))
                    .collect();
                vec![
                    h.match_id.clone(),
                    h.template.clone(),
                    format!("{}/{}", h.rounds.len(), h.total_rounds),
                    format_ts(h.completed_at.unwrap_or(-1)),
                    h.duration_ms
                        .map(|d| format!("{:.1}s", d as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into()),
                    humans.join(" "),
                    scores.join(" "),
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "MATCH",
                "TEMPLATE",
                "ROUNDS",
                "COMPLETED",
                "DURATION",
                "HUMANS",
                "SCORES",
            ],
            &rows,
        )?;
    } else {
        for (_, e) in docs {
            writeln!(out, "{}", inline_json(&e.value))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `orchestra stats`: the `match-stats` windows, oldest first. JSON lines (the documents
/// as stored) or, with `table`, one row per window.
pub fn stats(client: &ClientConfig, table: bool, out: &mut impl Write) -> Result<()> {
    let latest = read_latest(client, topics::MATCH_STATS, READ_TO_END_TIMEOUT)?;
    let mut docs: Vec<(MatchStats, Entry)> = latest
        .into_iter()
        .filter_map(|(k, e)| match serde_json::from_slice::<MatchStats>(&e.value) {
            Ok(s) => Some((s, e)),
            Err(err) => {
                tracing::warn!(key = %k, error = %err, "skipping an undecodable match-stats value");
                None
            }
        })
        .collect();
    docs.sort_by(|(a, _), (b, _)| {
        (a.window_start, &a.stat_key).cmp(&(b.window_start, &b.stat_key))
    });
    if table {
        let rows: Vec<Vec<String>> = docs
            .iter()
            .map(|(s, _)| {
                let most_human = s
                    .personalities
                    .iter()
                    .filter(|(_, p)| p.human_votes_seen > 0)
                    .max_by(|a, b| {
                        a.1.taken_for_human_rate
                            .total_cmp(&b.1.taken_for_human_rate)
                    })
                    .map(|(name, p)| format!("{name} ({:.0}%)", p.taken_for_human_rate * 100.0))
                    .unwrap_or_else(|| "-".into());
                vec![
                    format_ts(s.window_start),
                    format_ts(s.window_end),
                    s.matches_completed.to_string(),
                    s.rounds_completed.to_string(),
                    format!("{:.1}s", s.mean_round_duration_ms / 1000.0),
                    format!("{:.0}%", s.human_detection_accuracy * 100.0),
                    most_human,
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "WINDOW START",
                "WINDOW END",
                "MATCHES",
                "ROUNDS",
                "MEAN ROUND",
                "HUMAN DETECTION",
                "MOST TAKEN FOR HUMAN",
            ],
            &rows,
        )?;
    } else {
        for (_, e) in &docs {
            writeln!(out, "{}", inline_json(&e.value))?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ts(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_ts(-1), "-");
    }

    #[test]
    fn values_inline_as_json_or_string() {
        assert_eq!(inline_json(br#"{"b":1,"a":2}"#), r#"{"b":1,"a":2}"#);
        assert_eq!(inline_json(b"{\n \"a\": 1\n}"), r#"{"a":1}"#);
        assert_eq!(inline_json(b"not json"), r#""not json""#);
        let row = Row {
            key: Some("m\"1".into()),
            partition: 2,
            offset: 7,
            timestamp: 5,
            value: None,
        };
        let v: serde_json::Value = serde_json::from_str(&row.json_line()).unwrap();
        assert_eq!(v["key"], "m\"1");
        assert_eq!(v["partition"], 2);
        assert!(v["value"].is_null());
    }

    #[test]
    fn tables_are_aligned() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "A    BB\nxxx  y\nz    w\n");
    }

    #[test]
    fn compacted_topics_are_known() {
        assert!(is_compacted("match-state"));
        assert!(is_compacted("app-matches-changelog"));
        assert!(!is_compacted("match-events"));
    }
}
