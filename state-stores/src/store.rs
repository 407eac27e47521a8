//! The two faces of a store: [`KeyValueStore`], what a processor may do (read, write,
//! scan), and [`Storage`], what the runtime does with the storage underneath (apply
//! a batch with its changelog checkpoint, read the checkpoint, sync to disk, clear).
//! Processors are handed `&mut dyn KeyValueStore` and cannot reach the second.

use std::sync::Arc;

use crate::StoreError;

/// A batch of writes applied atomically together with a changelog checkpoint.
///
/// `None` values are deletes (tombstones in the changelog).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    /// Key → new value (`None` deletes the key).
    pub writes: Vec<(String, Option<Vec<u8>>)>,
    /// Next changelog offset to read after this batch, if the store is changelogged.
    pub checkpoint: Option<i64>,
}

/// A sorted map of UTF-8 keys to bytes, as a processor sees it.
pub trait KeyValueStore: Send {
    /// Store name (used in errors and metrics).
    fn name(&self) -> &str;
    /// Reads one key.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes one key.
    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StoreError>;
    /// Deletes one key.
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
    /// All entries with `from <= key < to` in key order (`to = None`: to the end).
    fn range(&self, from: &str, to: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// All entries whose key starts with `prefix`, in key order.
    fn prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Number of keys (may be approximate for large stores).
    fn len(&self) -> Result<usize, StoreError>;
    /// True when the store holds no key.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

/// The storage under a store, as the runtime drives it. Backends must apply [`Batch`]es
/// atomically: after a crash either all of a batch, including its checkpoint, is visible
/// or none of it is.
pub trait Storage: KeyValueStore {
    /// Applies writes and checkpoint atomically.
    fn apply(&mut self, batch: Batch) -> Result<(), StoreError>;
    /// Applies a committed batch, possibly after returning (sled: on a background thread,
    /// see `write_behind`): reads through this store see it at once, and so does every
    /// later `apply`, `checkpoint` and `sync`; a crash before it lands leaves the older
    /// checkpoint, from which a restore reads the changelog. Default: [`Storage::apply`].
    fn apply_behind(&mut self, batch: Batch) -> Result<(), StoreError> {
        self.apply(batch)
    }
    /// The changelog checkpoint recorded with the last batch.
    fn checkpoint(&self) -> Result<Option<i64>, StoreError>;
    /// Makes the batches applied so far durable (an fsync for sled; a no-op in memory).
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Removes every key and the checkpoint.
    fn clear(&mut self) -> Result<(), StoreError>;
    /// A handle other threads may read the applied state through while the owner goes on
    /// writing, where the backend allows it (sled); `None` otherwise (in memory).
    fn reader(&self) -> Option<Arc<dyn StoreReader>> {
        None
    }
}

/// A read-only view of a store's applied state — what the last commit applied, never a
/// write a crash could still take back — that another thread may hold (interactive
/// queries read through it without stopping the stream thread).
///
/// ```
/// # fn demo(store: &dyn state_stores::Storage) -> Result<(), state_stores::StoreError> {
/// if let Some(reader) = store.reader() {
///     let value = std::thread::spawn(move || reader.get("m1")).join().unwrap()?;
///     # let _ = value;
/// }
/// # Ok(()) }
/// ```
pub trait StoreReader: Send + Sync {
    /// Reads one key.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Number of keys (a scan for sled: call it off the stream thread).
    fn len(&self) -> Result<usize, StoreError>;
    /// True when the store holds no key.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}
