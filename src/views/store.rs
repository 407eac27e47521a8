//! [`ViewStore`]: the on-disk table behind a [`LatestView`](super::LatestView) — the
//! latest value per key of one topic in a sled database, an index for newest-first
//! paging, and the read position (next offset per partition) written in the same atomic
//! batch as the data it covers, so a reopened store resumes where it stopped.
//!
//! Memory is sled's page cache (`cache_bytes`) plus what one batch touches: nothing here
//! holds every entry. A page at `offset` skips whole buckets of the index by their counts
//! (a bucket is about a minute of the primary sort time) and walks only the last one, so a
//! deep page neither takes time nor pulls pages in proportion to its offset. Layout of the one sled tree (first byte = what the key is):
//!
//! | key | value |
//! |---|---|
//! | `e` + record key | [`Entry`] (timestamp, partition, offset, index position, value) |
//! | `o` + descending sort position + record key | empty (the newest-first index) |
//! | `b` + the first [`BUCKET_BYTES`] bytes of an `o` key's position | number of index keys starting so (u64) |
//! | `m` `identity` | `{"format","topic","cluster","order"}` |
//! | `m` `count` / `m` `indexed` | number of keys / of indexed keys (u64) |
//! | `m` `offset` + partition | next offset to read (i64) |
//!
//! ```
//! use orchestra::views::{Order, Record, ViewStore};
//! let dir = tempfile::tempdir().unwrap();
//! let store = ViewStore::open(dir.path(), "robot-pool-state", None, 8 << 20, Order::RecordTime).unwrap();
//! store.apply(&[Record { key: b"r1", value: Some(b"{}"), timestamp: 5, partition: 0, offset: 0 }]).unwrap();
//! assert_eq!(store.len(), 1);
//! assert_eq!(store.page(0, 10).unwrap()[0].0, "r1");
//! assert_eq!(store.offsets().unwrap()[&0], 1);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use schemas::MatchHistory;
use serde::{Deserialize, Serialize};

use super::latest::Entry;

/// Version of the layout above; a store written by another version is rebuilt.
const FORMAT: u32 = 2;
const ENTRY: u8 = b'e';
const ORDER: u8 = b'o';
const BUCKET: u8 = b'b';
/// Bytes of the descending primary position that name an index bucket: 6 of 8, so a
/// bucket spans 65,536 ms of the primary sort time.
pub const BUCKET_BYTES: usize = 6;
const IDENTITY: &[u8] = b"midentity";
const COUNT: &[u8] = b"mcount";
const INDEXED: &[u8] = b"mindexed";
const OFFSET: &[u8] = b"moffset";
/// Bytes of an encoded entry before its value.
const ENTRY_HEADER: usize = 8 + 4 + 8 + 1 + 16;

/// Errors of the view store.
#[derive(Debug, thiserror::Error)]
pub enum ViewStoreError {
    /// sled failed (I/O, or a corrupt database found while reading).
    #[error("view store {path}: {source}")]
    Sled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// Another process (or view) holds the database open.
    #[error("view store {0} is in use by another process (sled lock)")]
    Locked(PathBuf),
    /// A stored record is not in the expected layout.
    #[error("view store {path}: corrupt {what}")]
    Corrupt { path: PathBuf, what: String },
    /// The directory could not be created, removed or made temporary.
    #[error("view store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The order of the newest-first index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// `match-history`: by completion time (creation time while not completed), then
    /// creation time, newest first, then match id; values that do not decode as a
    /// `MatchHistory` are kept (readable by key) but not indexed — as `orchestra history`.
    HistoryCompletion,
    /// By record timestamp, newest first, then key.
    RecordTime,
}

impl Order {
    /// The sort position of a value, `None` when it is not indexed.
    fn position(self, value: &[u8], timestamp: i64) -> Option<(i64, i64)> {
        match self {
            Order::HistoryCompletion => schemas::decode_document::<MatchHistory>(value)
                .ok()
                .map(|h| (h.completed_at.unwrap_or(h.created_at), h.created_at)),
            Order::RecordTime => Some((timestamp, 0)),
        }
    }
}

/// A key's state as a batch sees it: absent (`None`), or present with its index position
/// (`Some(None)`: not indexed).
type Seen = Option<Option<(i64, i64)>>;

/// One record to apply: a value, or a tombstone (`value: None`) that removes the key.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Identity {
    format: u32,
    topic: String,
    cluster: Option<String>,
    order: Order,
}

/// The on-disk latest-value table of one topic. See the module docs.
pub struct ViewStore {
    db: sled::Db,
    path: PathBuf,
    order: Order,
    cache_bytes: u64,
    count: AtomicU64,
    indexed: AtomicU64,
    /// Removes a temporary store's directory on drop (after `db`).
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for ViewStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewStore")
            .field("path", &self.path)
            .field("entries", &self.len())
            .finish()
    }
}

/// Descending byte order of an i64: larger values sort first.
fn desc(v: i64) -> [u8; 8] {
    (!((v as u64) ^ (1 << 63))).to_be_bytes()
}

fn order_key(pos: (i64, i64), key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + key.len());
    k.push(ORDER);
    k.extend_from_slice(&desc(pos.0));
    k.extend_from_slice(&desc(pos.1));
    k.extend_from_slice(key);
    k
}

/// The bucket count key of the index key at `pos`.
fn bucket_key(pos: (i64, i64)) -> [u8; 1 + BUCKET_BYTES] {
    let mut k = [BUCKET; 1 + BUCKET_BYTES];
    k[1..].copy_from_slice(&desc(pos.0)[..BUCKET_BYTES]);
    k
}

fn entry_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(ENTRY);
    k.extend_from_slice(key);
    k
}

fn offset_key(partition: i32) -> Vec<u8> {
    let mut k = OFFSET.to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn encode_entry(r: &Record<'_>, value: &[u8], pos: Option<(i64, i64)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_HEADER + value.len());
    out.extend_from_slice(&r.timestamp.to_be_bytes());
    out.extend_from_slice(&r.partition.to_be_bytes());
    out.extend_from_slice(&r.offset.to_be_bytes());
    let (flag, (a, b)) = match pos {
        Some(p) => (1u8, p),
        None => (0u8, (0, 0)),
    };
    out.push(flag);
    out.extend_from_slice(&a.to_be_bytes());
    out.extend_from_slice(&b.to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// The index position stored in an encoded entry; `None` when too short to be one.
fn entry_position(raw: &[u8]) -> Option<Option<(i64, i64)>> {
    if raw.len() < ENTRY_HEADER {
        return None;
    }
    Some((raw[20] == 1).then(|| (be_i64(&raw[21..29]), be_i64(&raw[29..37]))))
}

fn decode_entry(raw: &[u8]) -> Option<Entry> {
    if raw.len() < ENTRY_HEADER {
        return None;
    }
    let mut p = [0u8; 4];
    p.copy_from_slice(&raw[8..12]);
    Some(Entry {
        timestamp: be_i64(&raw[0..8]),
        partition: i32::from_be_bytes(p),
        offset: be_i64(&raw[12..20]),
        value: raw[ENTRY_HEADER..].to_vec(),
    })
}

fn read_u64(db: &sled::Db, key: &[u8]) -> Result<Option<u64>, sled::Error> {
    Ok(db.get(key)?.and_then(|v| {
        let b: [u8; 8] = v.as_ref().try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }))
}

impl ViewStore {
    /// Opens (or creates) the store in `dir` for `topic` of the cluster `cluster` (its id,
    /// when known) with a page cache of at most `cache_bytes`. A database that cannot be
    /// opened, or was written for another topic, cluster, order or layout, is wiped and
    /// rebuilt (with a warning): the topic is the truth, the store a cache of it.
    pub fn open(
        dir: &Path,
        topic: &str,
        cluster: Option<&str>,
        cache_bytes: u64,
        order: Order,
    ) -> Result<Self, ViewStoreError> {
        let io = |source| ViewStoreError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = match Self::open_db(dir, cache_bytes) {
            Ok(db) => db,
            Err(e @ ViewStoreError::Locked(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "the view store cannot be opened (corrupt?); wiping it and rebuilding from the topic");
                std::fs::remove_dir_all(dir).map_err(io)?;
                std::fs::create_dir_all(dir).map_err(io)?;
                Self::open_db(dir, cache_bytes)?
            }
        };
        let store = Self {
            db,
            path: dir.to_path_buf(),
            order,
            cache_bytes,
            count: AtomicU64::new(0),
            indexed: AtomicU64::new(0),
            _temp: None,
        };
        let want = Identity {
            format: FORMAT,
            topic: topic.to_string(),
            cluster: cluster.map(str::to_string),
            order,
        };
        match store.check(&want) {
            Ok(true) => {}
            Ok(false) => store.reset(&want)?,
            Err(why) => {
                tracing::warn!(path = %dir.display(), topic, reason = %why, "wiping the view store and rebuilding it from the topic");
                store.reset(&want)?;
            }
        }
        Ok(store)
    }

    /// A store in a new temporary directory (removed on drop), for processes without a
    /// state directory.
    pub fn temporary(topic: &str, cache_bytes: u64, order: Order) -> Result<Self, ViewStoreError> {
        let tmp = tempfile::Builder::new()
            .prefix("orchestra-view-")
            .tempdir()
            .map_err(|source| ViewStoreError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut store = Self::open(tmp.path(), topic, None, cache_bytes, order)?;
        store._temp = Some(tmp);
        Ok(store)
    }

    fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, ViewStoreError> {
        sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|source| match &source {
                sled::Error::Io(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("lock") =>
                {
                    ViewStoreError::Locked(dir.to_path_buf())
                }
                _ => ViewStoreError::Sled {
                    path: dir.to_path_buf(),
                    source,
                },
            })
    }

    /// `Ok(true)`: the store is `want`'s and loaded its counters; `Ok(false)`: a new,
    /// empty database; `Err(why)`: it must be rebuilt.
    fn check(&self, want: &Identity) -> Result<bool, String> {
        let stored = self.db.get(IDENTITY).map_err(|e| e.to_string())?;
        let Some(raw): Option<sled::IVec> = stored else {
            return match self.db.is_empty() {
                true => Ok(false),
                false => Err("it has data but no identity".into()),
            };
        };
        let have: Identity = serde_json::from_slice(&raw)
            .map_err(|e| format!("its identity is unreadable ({e})"))?;
        if have != *want {
            return Err(format!(
                "it was written for {have:?}, this view is {want:?}"
            ));
        }
        let count = read_u64(&self.db, COUNT).map_err(|e| e.to_string())?;
        let indexed = read_u64(&self.db, INDEXED).map_err(|e| e.to_string())?;
        let (Some(count), Some(indexed)) = (count, indexed) else {
            return Err("its counters are missing".into());
        };
        self.count.store(count, AtomicOrdering::Relaxed);
        self.indexed.store(indexed, AtomicOrdering::Relaxed);
        Ok(true)
    }

    /// Empties the store and writes `identity` with zero counters.
    fn reset(&self, identity: &Identity) -> Result<(), ViewStoreError> {
        self.db.clear().map_err(|e| self.sled_err(e))?;
        let mut b = sled::Batch::default();
        b.insert(IDENTITY, serde_json::to_vec(identity).unwrap_or_default());
        b.insert(COUNT, &0u64.to_be_bytes());
        b.insert(INDEXED, &0u64.to_be_bytes());
        self.db.apply_batch(b).map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        self.count.store(0, AtomicOrdering::Relaxed);
        self.indexed.store(0, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// Empties the store (keeping its identity): the caller found it does not match the
    /// topic (e.g. an offset past the partition's end).
    pub fn clear(&self) -> Result<(), ViewStoreError> {
        let raw = self
            .db
            .get(IDENTITY)
            .map_err(|e| self.sled_err(e))?
            .ok_or_else(|| self.corrupt("identity"))?;
        let id: Identity = serde_json::from_slice(&raw).map_err(|_| self.corrupt("identity"))?;
        self.reset(&id)
    }

    fn sled_err(&self, source: sled::Error) -> ViewStoreError {
        ViewStoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, what: impl Into<String>) -> ViewStoreError {
        ViewStoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `records` (in order) and advances the stored read position past each, all
    /// in one atomic sled batch.
    pub fn apply(&self, records: &[Record<'_>]) -> Result<(), ViewStoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Index position of each key this batch touched (bounded by the batch).
        let mut touched: HashMap<&[u8], Seen> = HashMap::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let (mut count, mut indexed) = (
            self.count.load(AtomicOrdering::Relaxed) as i64,
            self.indexed.load(AtomicOrdering::Relaxed) as i64,
        );
        let mut batch = sled::Batch::default();
        // Change of each index bucket's count in this batch.
        let mut buckets: BTreeMap<[u8; 1 + BUCKET_BYTES], i64> = BTreeMap::new();
        for r in records {
            let ek = entry_key(r.key);
            let old: Seen = match touched.get(r.key) {
                Some(p) => *p,
                None => match self.db.get(&ek).map_err(|e| self.sled_err(e))? {
                    Some(raw) => {
                        Some(entry_position(&raw).ok_or_else(|| self.corrupt("entry header"))?)
                    }
                    None => None,
                },
            };
            if let Some(old_pos) = old {
                count -= 1;
                if let Some(p) = old_pos {
                    indexed -= 1;
                    batch.remove(order_key(p, r.key));
                    *buckets.entry(bucket_key(p)).or_default() -= 1;
                }
            }
            match r.value {
                Some(v) => {
                    let pos = self.order.position(v, r.timestamp);
                    batch.insert(ek, encode_entry(r, v, pos));
                    count += 1;
                    if let Some(p) = pos {
                        indexed += 1;
                        batch.insert(order_key(p, r.key), &[][..]);
                        *buckets.entry(bucket_key(p)).or_default() += 1;
                    }
                    touched.insert(r.key, Some(pos));
                }
                None => {
                    batch.remove(ek);
                    touched.insert(r.key, None);
                }
            }
            let n = next.entry(r.partition).or_insert(r.offset + 1);
            *n = (*n).max(r.offset + 1);
        }
        for (p, o) in &next {
            batch.insert(offset_key(*p), &o.to_be_bytes());
        }
        for (bk, delta) in buckets.into_iter().filter(|(_, d)| *d != 0) {
            let before = read_u64(&self.db, &bk).map_err(|e| self.sled_err(e))?;
            match (before.unwrap_or(0) as i64 + delta).max(0) {
                0 => batch.remove(&bk[..]),
                n => batch.insert(&bk[..], &(n as u64).to_be_bytes()),
            }
        }
        let (count, indexed) = (count.max(0) as u64, indexed.max(0) as u64);
        batch.insert(COUNT, &count.to_be_bytes());
        batch.insert(INDEXED, &indexed.to_be_bytes());
        self.db.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.count.store(count, AtomicOrdering::Relaxed);
        self.indexed.store(indexed, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// The next offset to read per partition (partitions never read are absent).
    pub fn offsets(&self) -> Result<BTreeMap<i32, i64>, ViewStoreError> {
        let mut out = BTreeMap::new();
        for kv in self.db.scan_prefix(OFFSET) {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let p: [u8; 4] = k[OFFSET.len()..]
                .try_into()
                .map_err(|_| self.corrupt("offset key"))?;
            let o: [u8; 8] = v.as_ref().try_into().map_err(|_| self.corrupt("offset"))?;
            out.insert(i32::from_be_bytes(p), i64::from_be_bytes(o));
        }
        Ok(out)
    }

    /// The latest value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, ViewStoreError> {
        match self
            .db
            .get(entry_key(key.as_bytes()))
            .map_err(|e| self.sled_err(e))?
        {
            Some(raw) => Ok(Some(
                decode_entry(&raw).ok_or_else(|| self.corrupt(format!("entry of {key}")))?,
            )),
            None => Ok(None),
        }
    }

    /// Number of keys with a value.
    pub fn len(&self) -> u64 {
        self.count.load(AtomicOrdering::Relaxed)
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys in the newest-first index (what [`ViewStore::page`] pages over).
    pub fn indexed(&self) -> u64 {
        self.indexed.load(AtomicOrdering::Relaxed)
    }

    /// Up to `limit` entries of the newest-first index after skipping `offset` of them.
    /// Walks the index on disk: memory is the page, whatever the table's size.
    pub fn page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, ViewStoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        // Whole buckets before the one holding `offset` are skipped by their counts.
        let mut skipped = 0usize;
        let mut from = None;
        for kv in self.db.scan_prefix([BUCKET]) {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let n: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| self.corrupt("index bucket count"))?;
            let n = u64::from_be_bytes(n) as usize;
            if skipped + n > offset {
                let mut start = vec![ORDER];
                start.extend_from_slice(&k[1..]);
                from = Some(start);
                break;
            }
            skipped += n;
        }
        let Some(from) = from else {
            return Ok(out); // past the last indexed key
        };
        let keys = self
            .db
            .range(from..)
            .keys()
            .take_while(|k| k.as_ref().map_or(true, |k| k.first() == Some(&ORDER)));
        for kv in keys.skip(offset - skipped).take(limit) {
            let k = kv.map_err(|e| self.sled_err(e))?;
            let key = k.get(17..).ok_or_else(|| self.corrupt("index key"))?;
            let key = String::from_utf8_lossy(key).into_owned();
            // Index and entry are written in one batch; a miss means a corrupt store.
            let e = self
                .get(&key)?
                .ok_or_else(|| self.corrupt(format!("index names {key} without an entry")))?;
            out.push((key, e));
        }
        Ok(out)
    }

    /// Every entry, by key, read from disk as the iterator advances.
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, Entry), ViewStoreError>> + '_ {
        self.db.scan_prefix([ENTRY]).map(move |kv| {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let key = String::from_utf8_lossy(&k[1..]).into_owned();
            let e = decode_entry(&v).ok_or_else(|| self.corrupt(format!("entry of {key}")))?;
            Ok((key, e))
        })
    }

    /// The page cache cap sled was opened with (bytes): what bounds the store's memory.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, ViewStoreError> {
        self.db.size_on_disk().map_err(|e| self.sled_err(e))
    }

    /// Writes everything applied so far to disk.
    pub fn flush(&self) -> Result<(), ViewStoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.sled_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(id: &str, created: i64, completed: Option<i64>) -> Vec<u8> {
        use schemas::{Envelope, Identity, MatchCreated, Seat, SeatKind};
        let seats = Identity::ALL[..3]
            .iter()
            .map(|&identity| Seat {
                identity,
                kind: SeatKind::Robot,
                player_id: None,
                name: None,
            })
            .collect();
        let data = MatchCreated {
            template: "duel_2v1".into(),
            total_rounds: 1,
            seats,
            response_window_ms: 60_000,
            voting_window_ms: 30_000,
            robots_window_ms: None,
        };
        let created_ev: schemas::MatchEvent =
            Envelope::new(format!("{id}-created"), id, created, "corr", "req", data);
        let mut h = processors::game::history::evolve_history(None, &created_ev);
        if let Some(c) = completed {
            h.status = schemas::HistoryStatus::Completed;
            h.completed_at = Some(c);
        }
        serde_json::to_vec(&h).unwrap()
    }

    fn rec<'a>(key: &'a str, value: Option<&'a [u8]>, partition: i32, offset: i64) -> Record<'a> {
        Record {
            key: key.as_bytes(),
            value,
            timestamp: offset,
            partition,
            offset,
        }
    }

    fn open(dir: &Path, topic: &str) -> ViewStore {
        open_as(dir, topic, "c1")
    }

    /// Opens the store, waiting for a store just dropped in this process to let go of its
    /// file lock: sled releases it when its flusher thread, which holds the database too,
    /// has noticed the drop.
    fn open_as(dir: &Path, topic: &str, cluster: &str) -> ViewStore {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match ViewStore::open(dir, topic, Some(cluster), 1 << 20, Order::HistoryCompletion) {
                Err(ViewStoreError::Locked(_)) if std::time::Instant::now() < give_up => {
                    std::thread::yield_now()
                }
                other => return other.unwrap(),
            }
        }
    }

    fn ids(s: &ViewStore, offset: usize, limit: usize) -> Vec<String> {
        s.page(offset, limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn pages_newest_first_and_updates_move_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), "match-history");
        let (old, new, mid) = (
            history("m-old", 1_000, Some(5_000)),
            history("m-new", 2_000, Some(9_000)),
            history("m-mid", 3_000, Some(7_000)),
        );
        let running = history("m-run", 8_000, None);
        s.apply(&[
            rec("m-old", Some(&old), 0, 0),
            rec("m-new", Some(&new), 1, 0),
            rec("m-mid", Some(&mid), 0, 1),
            rec("m-run", Some(&running), 1, 1),
            rec("junk", Some(b"not json"), 0, 2),
        ])
        .unwrap();
        assert_eq!(ids(&s, 0, 10), ["m-new", "m-run", "m-mid", "m-old"]);
        assert_eq!(ids(&s, 1, 2), ["m-run", "m-mid"]);
        assert_eq!(ids(&s, 4, 2), Vec::<String>::new());
        assert_eq!((s.len(), s.indexed()), (5, 4), "junk is kept, not indexed");
        assert_eq!(s.get("junk").unwrap().unwrap().value, b"not json");
        // The running match completes later: it moves to the top, once.
        let done = history("m-run", 8_000, Some(10_000));
        s.apply(&[rec("m-run", Some(&done), 1, 2)]).unwrap();
        assert_eq!(ids(&s, 0, 10), ["m-run", "m-new", "m-mid", "m-old"]);
        assert_eq!(s.indexed(), 4);
        assert_eq!(s.get("m-run").unwrap().unwrap().value, done);
    }

    #[test]
    fn a_page_at_any_offset_matches_a_walk_of_the_whole_index() {
        let dir = tempfile::tempdir().unwrap();
        let s = ViewStore::open(dir.path(), "t", None, 1 << 20, Order::RecordTime).unwrap();
        // 300 keys, 20 s apart: several per bucket and many buckets; some share a time.
        let keys: Vec<String> = (0..300).map(|i| format!("k{i:03}")).collect();
        let record = |i: usize, ts: i64| Record {
            key: keys[i].as_bytes(),
            value: Some(b"{}"),
            timestamp: ts,
            partition: 0,
            offset: i as i64,
        };
        let first: Vec<Record<'_>> = (0..300)
            .map(|i| record(i, (i as i64 / 2) * 20_000))
            .collect();
        s.apply(&first).unwrap();
        // Updates move keys into other buckets; tombstones empty some.
        let mut later: Vec<Record<'_>> = (0..300)
            .step_by(7)
            .map(|i| record(i, 9_000_000 - i as i64))
            .collect();
        for i in (1..300).step_by(11) {
            later.push(Record {
                value: None,
                ..record(i, 0)
            });
        }
        s.apply(&later).unwrap();
        let walk: Vec<String> =
            s.db.scan_prefix([ORDER])
                .keys()
                .map(|k| String::from_utf8_lossy(&k.unwrap()[17..]).into_owned())
                .collect();
        assert_eq!(walk.len() as u64, s.indexed());
        for offset in 0..=walk.len() + 2 {
            for limit in [1, 7, 20] {
                let want: Vec<String> = walk.iter().skip(offset).take(limit).cloned().collect();
                assert_eq!(
                    ids(&s, offset, limit),
                    want,
                    "offset {offset} limit {limit}"
                );
            }
        }
        // The bucket counts add up to the index, and no bucket is kept empty.
        let counts: Vec<u64> =
            s.db.scan_prefix([BUCKET])
                .values()
                .map(|v| u64::from_be_bytes(v.unwrap().as_ref().try_into().unwrap()))
                .collect();
        assert_eq!(counts.iter().sum::<u64>(), s.indexed());
        assert!(counts.iter().all(|n| *n > 0));
        assert!(counts.len() > 20, "{} buckets", counts.len());
    }

    #[test]
    fn tombstones_remove_keys_and_their_index_entries() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), "match-history");
        let a = history("a", 1, Some(2));
        let b = history("b", 1, Some(3));
        // Value, tombstone and value again for one key within one batch.
        s.apply(&[
            rec("a", Some(&a), 0, 0),
            rec("b", Some(&b), 0, 1),
            rec("a", None, 0, 2),
            rec("b", None, 0, 3),
            rec("b", Some(&b), 0, 4),
            rec("never", None, 0, 5),
        ])
        .unwrap();
        assert_eq!(ids(&s, 0, 10), ["b"]);
        assert_eq!((s.len(), s.indexed()), (1, 1));
        assert!(s.get("a").unwrap().is_none());
        s.apply(&[rec("b", None, 0, 6)]).unwrap();
        assert_eq!((s.len(), s.indexed()), (0, 0));
        assert!(s.page(0, 10).unwrap().is_empty());
        assert_eq!(s.iter().count(), 0);
    }

    #[test]
    fn a_reopened_store_resumes_from_its_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let a = history("a", 1, Some(2));
        {
            let s = open(dir.path(), "match-history");
            assert!(s.offsets().unwrap().is_empty());
            s.apply(&[rec("a", Some(&a), 0, 7), rec("x", None, 3, 41)])
                .unwrap();
            s.flush().unwrap();
        }
        let s = open(dir.path(), "match-history");
        assert_eq!(s.offsets().unwrap(), BTreeMap::from([(0, 8), (3, 42)]));
        assert_eq!((s.len(), s.indexed()), (1, 1));
        assert_eq!(ids(&s, 0, 10), ["a"]);
        let all: Vec<String> = s.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(all, ["a"]);
    }

    #[test]
    fn a_store_of_another_topic_or_cluster_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let a = history("a", 1, Some(2));
        {
            let s = open(dir.path(), "match-history");
            s.apply(&[rec("a", Some(&a), 0, 0)]).unwrap();
            s.flush().unwrap();
        }
        let other = open_as(dir.path(), "match-history", "c2");
        assert_eq!(other.len(), 0, "another cluster: rebuilt");
        assert!(other.offsets().unwrap().is_empty());
        drop(other);
        let s = open(dir.path(), "robot-pool-state");
        assert_eq!(s.len(), 0, "another topic: rebuilt");
    }

    #[test]
    fn a_corrupt_store_is_wiped_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path(), "match-history");
            let a = history("a", 1, Some(2));
            s.apply(&[rec("a", Some(&a), 0, 0)]).unwrap();
            s.flush().unwrap();
        }
        // Garbage over every file sled wrote.
        for f in walk(dir.path()) {
            std::fs::write(&f, vec![0xAB; 4096]).unwrap();
        }
        let s = open(dir.path(), "match-history");
        assert_eq!(s.len(), 0);
        assert!(s.offsets().unwrap().is_empty());
        let b = history("b", 1, Some(2));
        s.apply(&[rec("b", Some(&b), 0, 0)]).unwrap();
        assert_eq!(ids(&s, 0, 10), ["b"]);
    }

    #[test]
    fn a_store_with_an_unreadable_identity_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path(), "match-history");
            s.db.insert(IDENTITY, &b"{broken"[..]).unwrap();
            s.db.insert(b"e-stray", &b"x"[..]).unwrap();
            s.flush().unwrap();
        }
        let s = open(dir.path(), "match-history");
        assert_eq!(s.len(), 0);
        assert_eq!(s.iter().count(), 0, "the stray entry is gone");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
