//! A [`KeyValueStore`] backed by a sled tree.
//!
//! One sled database lives in each task's directory; each store of the task is a tree in
//! it. The changelog checkpoint is kept **in the same tree** under a reserved key that no
//! UTF-8 key can collide with (it starts with byte `0xFF`), so a data batch and the
//! checkpoint it reaches are applied by one atomic `apply_batch`.
//!
//! sled 0.34 has known crash-consistency bugs; the runtime treats the local store as a
//! cache of the changelog. [`SledStore::open_db`] detects a database that cannot be opened
//! or fails validation, wipes the directory and reports [`OpenOutcome::Rebuilt`] so that the
//! caller restores it from the changelog.
//!
//! ```
//! use state_stores::{KeyValueStore, SledStore, SledStoreConfig};
//! let dir = tempfile::tempdir().unwrap();
//! let (db, _outcome) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
//! let mut store = SledStore::new(&db, "counts").unwrap();
//! store.put("k", b"v".to_vec()).unwrap();
//! assert_eq!(store.get("k").unwrap(), Some(b"v".to_vec()));
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::write_behind::{overlay, Pending};
use crate::{Batch, KeyValueStore, Storage, StoreError, StoreReader};

/// Reserved key of the checkpoint inside each tree (not valid UTF-8, so never a user key).
const CHECKPOINT_KEY: &[u8] = b"\xff\x00checkpoint";
/// First byte of reserved keys; scans stop before it.
const RESERVED_PREFIX: u8 = 0xff;
/// Marker written in the default tree of every database this crate creates.
const FORMAT_KEY: &[u8] = b"\xff\x00orchestra-format";
const FORMAT_VERSION: &[u8] = b"1";

/// Settings for opening task databases.
#[derive(Debug, Clone)]
pub struct SledStoreConfig {
    /// sled page cache size in bytes (per task database).
    pub cache_capacity: u64,
    /// Interval of sled's background sync to disk (its `flush_every_ms`), ms.
    pub sync_every_ms: u64,
    /// How long opening waits for a lock another handle holds before it fails with
    /// [`StoreError::Locked`], ms. sled lets go of its file lock only once its background
    /// threads have released a closed database, a few milliseconds after the last handle
    /// is dropped (a task closed and reopened by a rebalance in one process meets that).
    pub lock_wait_ms: u64,
}

impl Default for SledStoreConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 16 * 1024 * 1024,
            sync_every_ms: 1000,
            lock_wait_ms: 5000,
        }
    }
}

/// What happened when a task database was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// No database existed; a new one was created.
    Created,
    /// An existing, valid database was opened.
    Opened,
    /// The database was corrupt or unreadable; it was wiped and recreated empty.
    Rebuilt { reason: String },
}

/// A store over one sled tree.
pub struct SledStore {
    name: String,
    db: sled::Db,
    tree: sled::Tree,
    /// Committed batches not yet applied to `tree` (see `write_behind`).
    pending: Arc<Pending>,
}

impl Drop for SledStore {
    /// Waits for the store's batches to land: the applier must let go of the tree before
    /// the database can be opened again.
    fn drop(&mut self) {
        let _ = self.pending.drain(&self.name);
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir`, wiping it when it is corrupt.
    pub fn open_db(
        dir: &Path,
        config: &SledStoreConfig,
    ) -> Result<(sled::Db, OpenOutcome), StoreError> {
        let existed = dir.join("conf").exists() || dir.join("db").exists();
        match open_waiting_for_lock(dir, config)? {
            Ok(db) => {
                let outcome = if existed {
                    OpenOutcome::Opened
                } else {
                    OpenOutcome::Created
                };
                Ok((db, outcome))
            }
            Err(reason) => {
                tracing::warn!(path = %dir.display(), %reason, "local store is corrupt; wiping it to rebuild from the changelog");
                wipe(dir)?;
                let db = try_open(dir, config).map_err(|reason| StoreError::Corrupt {
                    path: dir.display().to_string(),
                    reason,
                })?;
                Ok((db, OpenOutcome::Rebuilt { reason }))
            }
        }
    }

    /// The store `name` in database `db` (one tree per store).
    pub fn new(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        let tree = db.open_tree(name).map_err(|e| backend(name, e))?;
        if let Some(raw) = tree.get(CHECKPOINT_KEY).map_err(|e| backend(name, e))? {
            if raw.len() != 8 {
                return Err(StoreError::Corrupt {
                    path: name.to_string(),
                    reason: format!("checkpoint has {} bytes, expected 8", raw.len()),
                });
            }
        }
        Ok(Self {
            name: name.to_string(),
            db: db.clone(),
            tree,
            pending: Arc::default(),
        })
    }

    fn collect(&self, iter: sled::Iter) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| backend(&self.name, e))?;
            if k.first() == Some(&RESERVED_PREFIX) {
                break;
            }
            let key = String::from_utf8(k.to_vec()).map_err(|_| StoreError::Corrupt {
                path: self.name.clone(),
                reason: "non UTF-8 key".into(),
            })?;
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }
}

fn backend(store: &str, source: sled::Error) -> StoreError {
    StoreError::Backend {
        store: store.to_string(),
        source,
    }
}

fn wipe(dir: &Path) -> Result<(), StoreError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// [`try_open`], retried while the directory's lock is held elsewhere: a held lock is not
/// corruption, and wiping a store another handle uses would destroy its state. `Err` when
/// the lock stays held; `Ok(Err(reason))` for a store that cannot be opened.
fn open_waiting_for_lock(
    dir: &Path,
    config: &SledStoreConfig,
) -> Result<Result<sled::Db, String>, StoreError> {
    let started = Instant::now();
    loop {
        match try_open(dir, config) {
            Err(reason) if is_lock_error(&reason) => {
                if started.elapsed() >= Duration::from_millis(config.lock_wait_ms) {
                    return Err(StoreError::Locked {
                        path: dir.display().to_string(),
                        waited_ms: started.elapsed().as_millis() as u64,
                        reason,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return Ok(other),
        }
    }
}

/// sled (pinned at 0.34.7) reports a held file lock as an I/O error of kind `Other` with
/// this text; nothing else in it tells the case apart.
fn is_lock_error(reason: &str) -> bool {
    reason.contains("could not acquire lock")
}

/// Opens and validates; any error or panic inside sled is reported as a reason.
fn try_open(dir: &Path, config: &SledStoreConfig) -> Result<sled::Db, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let cfg = sled::Config::new()
        .path(dir)
        .cache_capacity(config.cache_capacity)
        // sled's own background flusher stays on (its default configuration, the one
        // exercised upstream); commits additionally fsync every few seconds.
        .flush_every_ms(Some(config.sync_every_ms));
    let opened = catch_unwind(AssertUnwindSafe(|| -> Result<sled::Db, String> {
        let db = cfg.open().map_err(|e| e.to_string())?;
        match db.get(FORMAT_KEY).map_err(|e| e.to_string())? {
            Some(v) if v.as_ref() == FORMAT_VERSION => {}
            Some(v) => {
                return Err(format!(
                    "unknown store format {:?}",
                    String::from_utf8_lossy(&v)
                ))
            }
            None if db.was_recovered() && !db.tree_names().is_empty() && !db.is_empty() => {
                return Err("format marker missing from a recovered database".into())
            }
            None => {
                db.insert(FORMAT_KEY, FORMAT_VERSION)
                    .map_err(|e| e.to_string())?;
                db.flush().map_err(|e| e.to_string())?;
            }
        }
        // Touch every tree's checkpoint so unreadable pages surface now, not mid-processing.
        for name in db.tree_names() {
            let tree = db.open_tree(&name).map_err(|e| e.to_string())?;
            if let Some(raw) = tree.get(CHECKPOINT_KEY).map_err(|e| e.to_string())? {
                if raw.len() != 8 {
                    return Err("checkpoint record is malformed".into());
                }
            }
        }
        Ok(db)
    }));
    match opened {
        Ok(r) => r,
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "sled panicked while opening".into())),
    }
}

impl KeyValueStore for SledStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read(&self.tree, &self.pending, &self.name, key)
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.pending.drain(&self.name)?;
        self.tree
            .insert(key.as_bytes(), value)
            .map_err(|e| backend(&self.name, e))?;
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.pending.drain(&self.name)?;
        self.tree
            .remove(key.as_bytes())
            .map_err(|e| backend(&self.name, e))?;
        Ok(())
    }

    fn range(&self, from: &str, to: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let pending = self.pending.snapshot(&self.name)?;
        let iter = match to {
            Some(to) => self.tree.range(from.as_bytes()..to.as_bytes()),
            None => self.tree.range(from.as_bytes()..),
        };
        let base = self.collect(iter)?;
        Ok(overlay(base, &pending, |k| {
            k >= from && to.is_none_or(|to| k < to)
        }))
    }

    fn prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let pending = self.pending.snapshot(&self.name)?;
        let base = self.collect(self.tree.scan_prefix(prefix.as_bytes()))?;
        Ok(overlay(base, &pending, |k| k.starts_with(prefix)))
    }

    fn len(&self) -> Result<usize, StoreError> {
        self.pending.drain(&self.name)?;
        tree_len(&self.tree, &self.name)
    }
}

impl Storage for SledStore {
    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        self.pending.drain(&self.name)?;
        self.tree
            .apply_batch(sled_batch(&batch.writes, batch.checkpoint))
            .map_err(|e| backend(&self.name, e))
    }

    fn apply_behind(&mut self, batch: Batch) -> Result<(), StoreError> {
        self.pending.push(&self.name, &self.tree, batch)
    }

    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        if let Some(cp) = self.pending.checkpoint(&self.name)? {
            return Ok(Some(cp));
        }
        let Some(raw) = self
            .tree
            .get(CHECKPOINT_KEY)
            .map_err(|e| backend(&self.name, e))?
        else {
            return Ok(None);
        };
        let bytes: [u8; 8] = raw.as_ref().try_into().map_err(|_| StoreError::Corrupt {
            path: self.name.clone(),
            reason: "checkpoint record is malformed".into(),
        })?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.pending.drain(&self.name)?;
        self.db.flush().map_err(|e| backend(&self.name, e))?;
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.pending.drain(&self.name)?;
        self.tree.clear().map_err(|e| backend(&self.name, e))
    }

    fn reader(&self) -> Option<Arc<dyn StoreReader>> {
        Some(Arc::new(SledReader {
            name: self.name.clone(),
            tree: self.tree.clone(),
            pending: self.pending.clone(),
        }))
    }
}

/// The sled batch of `writes` (`None`: a delete) and, when set, the checkpoint under its
/// reserved key: what one commit or restore batch applies atomically.
pub(crate) fn sled_batch(
    writes: &[(String, Option<Vec<u8>>)],
    checkpoint: Option<i64>,
) -> sled::Batch {
    let mut b = sled::Batch::default();
    for (k, v) in writes {
        match v {
            Some(v) => b.insert(k.as_bytes(), v.as_slice()),
            None => b.remove(k.as_bytes()),
        }
    }
    if let Some(cp) = checkpoint {
        b.insert(CHECKPOINT_KEY, &cp.to_be_bytes());
    }
    b
}

/// One key of a store: its pending change if a batch not yet applied has one, else the
/// tree's (shared by the store and its readers).
fn read(
    tree: &sled::Tree,
    pending: &Pending,
    name: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    match pending.lookup(name, key)? {
        Some(change) => Ok(change),
        None => tree_get(tree, name, key),
    }
}

/// One key of a store's tree.
fn tree_get(tree: &sled::Tree, name: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(tree
        .get(key.as_bytes())
        .map_err(|e| backend(name, e))?
        .map(|v| v.to_vec()))
}

/// The keys of a store's tree, without its checkpoint record (a scan).
fn tree_len(tree: &sled::Tree, name: &str) -> Result<usize, StoreError> {
    let has_checkpoint = tree
        .contains_key(CHECKPOINT_KEY)
        .map_err(|e| backend(name, e))?;
    Ok(tree.len() - usize::from(has_checkpoint))
}

/// A handle on a sled tree for other threads: sled trees are shared and thread-safe, and
/// the owner's batches are atomic, so a reader sees each commit whole or not at all (a
/// committed batch not yet applied is read from the store's pending batches).
struct SledReader {
    name: String,
    tree: sled::Tree,
    pending: Arc<Pending>,
}

impl StoreReader for SledReader {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read(&self.tree, &self.pending, &self.name, key)
    }

    fn len(&self) -> Result<usize, StoreError> {
        tree_len(&self.tree, &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_is_written_with_its_batch_and_hidden_from_scans() {
        let dir = tempfile::tempdir().unwrap();
        let (db, outcome) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
        assert_eq!(outcome, OpenOutcome::Created);
        let mut s = SledStore::new(&db, "t").unwrap();
        s.apply(Batch {
            writes: vec![
                ("a".into(), Some(b"1".to_vec())),
                ("b".into(), Some(b"2".to_vec())),
            ],
            checkpoint: Some(7),
        })
        .unwrap();
        assert_eq!(s.checkpoint().unwrap(), Some(7));
        assert_eq!(s.len().unwrap(), 2);
        assert_eq!(s.range("", None).unwrap().len(), 2);
        assert_eq!(
            s.prefix("a").unwrap(),
            vec![("a".to_string(), b"1".to_vec())]
        );
    }

    #[test]
    fn a_reader_on_another_thread_sees_committed_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
        let mut store =
            crate::ChangeLoggingStore::new("t", Box::new(SledStore::new(&db, "t").unwrap()));
        let reader = store.reader().expect("sled offers a reader");
        let read = |reader: &Arc<dyn StoreReader>| {
            let reader = reader.clone();
            std::thread::spawn(move || reader.get("a").unwrap())
                .join()
                .unwrap()
        };
        store.put("a", b"1".to_vec()).unwrap();
        assert_eq!(read(&reader), None, "a buffered write is not committed");
        store.prepare().unwrap();
        assert_eq!(read(&reader), None, "nor a prepared one");
        store.commit(Some(1)).unwrap();
        assert_eq!(read(&reader), Some(b"1".to_vec()));
        store.delete("a").unwrap();
        store.prepare().unwrap();
        store.abort();
        assert_eq!(
            read(&reader),
            Some(b"1".to_vec()),
            "an abort takes nothing back"
        );
    }

    #[test]
    fn batches_applied_behind_are_read_at_once_and_all_land_before_the_store_closes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, _) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
            let mut s = SledStore::new(&db, "t").unwrap();
            let reader = s.reader().unwrap();
            for i in 0..50i64 {
                s.apply_behind(Batch {
                    writes: vec![
                        (format!("k{:02}", i), Some(i.to_string().into_bytes())),
                        ("last".into(), Some(i.to_string().into_bytes())),
                        // Each batch deletes the key the one before wrote.
                        (format!("k{:02}", i - 1), None),
                    ],
                    checkpoint: Some(i + 1),
                })
                .unwrap();
                // Whether or not the applier got to it yet.
                assert_eq!(s.get("last").unwrap(), Some(i.to_string().into_bytes()));
                assert_eq!(s.get(&format!("k{:02}", i - 1)).unwrap(), None);
                assert_eq!(s.checkpoint().unwrap(), Some(i + 1));
                let keys: Vec<String> = s
                    .range("", None)
                    .unwrap()
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(keys, vec![format!("k{:02}", i), "last".to_string()]);
                assert_eq!(s.prefix("k").unwrap().len(), 1);
                assert_eq!(
                    reader.get("last").unwrap(),
                    Some(i.to_string().into_bytes())
                );
            }
            assert_eq!(s.len().unwrap(), 2);
        }
        // Dropping the store waited for every batch: the reopened tree has the last one.
        let (db, _) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
        let s = SledStore::new(&db, "t").unwrap();
        assert_eq!(s.checkpoint().unwrap(), Some(50));
        assert_eq!(s.get("last").unwrap(), Some(b"49".to_vec()));
        assert_eq!(s.get("k49").unwrap(), Some(b"49".to_vec()));
        assert_eq!(s.get("k48").unwrap(), None);
    }

    #[test]
    fn reopening_keeps_data_and_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, _) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
            let mut s = SledStore::new(&db, "t").unwrap();
            s.apply(Batch {
                writes: vec![("a".into(), Some(b"1".to_vec()))],
                checkpoint: Some(3),
            })
            .unwrap();
            s.sync().unwrap();
        }
        let (db, outcome) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
        assert_eq!(outcome, OpenOutcome::Opened);
        let s = SledStore::new(&db, "t").unwrap();
        assert_eq!(s.checkpoint().unwrap(), Some(3));
        assert_eq!(s.get("a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn a_store_locked_by_another_handle_is_an_error_and_is_not_wiped() {
        let dir = tempfile::tempdir().unwrap();
        let config = SledStoreConfig {
            lock_wait_ms: 200,
            ..SledStoreConfig::default()
        };
        let (db, _) = SledStore::open_db(dir.path(), &config).unwrap();
        let mut s = SledStore::new(&db, "t").unwrap();
        s.put("kept", b"1".to_vec()).unwrap();
        s.sync().unwrap();
        match SledStore::open_db(dir.path(), &config) {
            Err(StoreError::Locked { waited_ms, .. }) => assert!(waited_ms >= 200),
            Err(e) => panic!("expected Locked, got {e}"),
            Ok((_, outcome)) => panic!("opened a locked store: {outcome:?}"),
        }
        assert_eq!(s.get("kept").unwrap(), Some(b"1".to_vec()), "not wiped");
        drop((s, db));
        // Once the first handle is gone the store opens, with its data.
        let (db, outcome) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
        assert_eq!(outcome, OpenOutcome::Opened);
        let s = SledStore::new(&db, "t").unwrap();
        assert_eq!(s.get("kept").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn garbage_directory_is_detected_and_wiped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, _) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
            let mut s = SledStore::new(&db, "t").unwrap();
            s.put("a", b"1".to_vec()).unwrap();
            s.sync().unwrap();
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                std::fs::write(&p, b"this is not a sled file at all").unwrap();
            }
        }
        let (db, outcome) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
        assert!(
            matches!(outcome, OpenOutcome::Rebuilt { .. }),
            "{outcome:?}"
        );
        let s = SledStore::new(&db, "t").unwrap();
        assert_eq!(s.get("a").unwrap(), None);
        assert_eq!(s.checkpoint().unwrap(), None);
    }
}
