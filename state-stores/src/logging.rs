//! The change-logging store: a write buffer over any [`Storage`], in explicit phases
//! (in the spirit of Quix Streams' `PartitionTransaction` statuses):
//!
//! ```text
//!            put / delete                prepare()                commit(checkpoint)
//!   ┌──────▶ Open ───────────────────────▶ Prepared ──────────────────▶ Open (buffer applied)
//!   │          │                              │
//!   └──────────┘                              └── abort() ──────────────▶ Open (buffer dropped)
//! ```
//!
//! * **Open**: processors write into an in-memory buffer (latest value per key). Reads see
//!   the buffer over the backend.
//! * **Prepared**: [`ChangeLoggingStore::prepare`] freezes the buffer and returns its
//!   changes — what the runtime produces to the changelog. Writes are refused until the
//!   commit or abort, so what is applied is exactly what was logged.
//! * [`ChangeLoggingStore::commit`] applies the prepared changes to the backend together
//!   with the changelog offset they reached, in one atomic batch;
//!   [`ChangeLoggingStore::abort`] drops them, so an aborted transaction leaves no trace in
//!   local state.
//!
//! Because the buffer keeps only the latest value per key, a hot key written 1,000 times
//! between commits costs one changelog record and one backend write (the caching layer of
//! Kafka Streams).

use std::ops::Bound;
use std::sync::Arc;

use crate::write_buffer::lay_over;
use crate::{Batch, KeyValueStore, Storage, StoreError, StoreReader, WriteBuffer};

/// One buffered change: a new value, or `None` for a delete (a changelog tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub key: &'a str,
    pub value: Option<&'a [u8]>,
}

/// The phase of a [`ChangeLoggingStore`]; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Taking writes.
    Open,
    /// Frozen between `prepare` and `commit`/`abort`.
    Prepared,
}

/// A write buffer over a backend store; see the module docs.
pub struct ChangeLoggingStore {
    name: String,
    inner: Box<dyn Storage>,
    buffer: WriteBuffer,
    phase: Phase,
}

impl ChangeLoggingStore {
    /// Wraps `inner` under the store name `name`.
    pub fn new(name: &str, inner: Box<dyn Storage>) -> Self {
        Self {
            name: name.to_string(),
            inner,
            buffer: WriteBuffer::default(),
            phase: Phase::Open,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// A handle other threads may read the committed state through (see
    /// [`StoreReader`]); `None` when the backend offers none.
    pub fn reader(&self) -> Option<Arc<dyn StoreReader>> {
        self.inner.reader()
    }

    /// Number of keys changed since the last commit.
    pub fn pending_len(&self) -> usize {
        self.buffer.len()
    }

    /// Freezes the buffer and returns its changes in key order (latest value per key):
    /// the records to produce to the changelog. [`ChangeLoggingStore::commit`] then applies
    /// exactly these. Preparing again before the commit returns the same changes.
    pub fn prepare(&mut self) -> Result<Vec<Change<'_>>, StoreError> {
        self.phase = Phase::Prepared;
        Ok(self
            .buffer
            .iter()
            .map(|(k, v)| Change {
                key: k,
                value: v.as_deref(),
            })
            .collect())
    }

    /// Applies the prepared changes to the backend together with `checkpoint` (the next
    /// changelog offset after the records produced for them) in one atomic batch, and
    /// opens the store for writes again. Without a `prepare` there is nothing to apply but
    /// the checkpoint.
    pub fn commit(&mut self, checkpoint: Option<i64>) -> Result<(), StoreError> {
        let writes = match self.phase {
            Phase::Prepared => self.buffer.take(),
            Phase::Open if self.buffer.is_empty() => Vec::new(),
            Phase::Open => {
                return Err(StoreError::Phase {
                    store: self.name.clone(),
                    reason: "commit of changes that were never prepared (logged)".into(),
                })
            }
        };
        self.phase = Phase::Open;
        if writes.is_empty() && checkpoint.is_none() {
            return Ok(());
        }
        self.inner.apply_behind(Batch { writes, checkpoint })
    }

    /// Drops every buffered or prepared write (transaction abort) and opens the store.
    pub fn abort(&mut self) {
        self.buffer.clear();
        self.phase = Phase::Open;
    }

    /// Applies a batch of changelog records straight to the backend (restore). Only while
    /// nothing is buffered: restore runs before the task processes anything.
    pub fn restore(&mut self, batch: Batch) -> Result<(), StoreError> {
        if !self.buffer.is_empty() || self.phase != Phase::Open {
            return Err(StoreError::Phase {
                store: self.name.clone(),
                reason: "restore into a store with buffered writes".into(),
            });
        }
        self.inner.apply(batch)
    }

    /// The changelog checkpoint of the last applied batch.
    pub fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        self.inner.checkpoint()
    }

    /// Makes the applied batches durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.inner.sync()
    }

    /// Wipes the backend and the buffer (before a full restore).
    pub fn wipe(&mut self) -> Result<(), StoreError> {
        self.abort();
        self.inner.clear()
    }

    /// Whether the backend holds no key (buffered writes not counted).
    pub fn backend_is_empty(&self) -> Result<bool, StoreError> {
        self.inner.is_empty()
    }

    fn writable(&self) -> Result<(), StoreError> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Prepared => Err(StoreError::Phase {
                store: self.name.clone(),
                reason: "write between prepare and commit".into(),
            }),
        }
    }

    fn merged(
        &self,
        base: Vec<(String, Vec<u8>)>,
        lo: Bound<&str>,
        hi: Bound<&str>,
        prefix: Option<&str>,
    ) -> Vec<(String, Vec<u8>)> {
        let changes = self
            .buffer
            .range(lo, hi)
            .take_while(|(k, _)| prefix.is_none_or(|p| k.starts_with(p)))
            .map(|(k, v)| (k, v.as_deref()));
        lay_over(base, changes)
    }
}

impl KeyValueStore for ChangeLoggingStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.buffer.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.inner.get(key),
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.writable()?;
        self.buffer.put(key, Some(value));
        Ok(())
    }

    /// Buffers a tombstone, unless the key was first written since the last commit (the
    /// buffer holds a value and the backend has none): neither the backend nor the
    /// changelog has seen it, so the put is simply dropped. A key that lives only
    /// between two commits (a deadline index entry, a round's history chunk) then costs
    /// no changelog record and no backend write at all.
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.writable()?;
        match self.buffer.get(key) {
            Some(Some(_)) => {
                if self.inner.get(key)?.is_none() {
                    self.buffer.remove(key);
                } else {
                    self.buffer.put(key, None);
                }
            }
            Some(None) => {}
            None => self.buffer.put(key, None),
        }
        Ok(())
    }

    fn range(&self, from: &str, to: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let base = self.inner.range(from, to)?;
        let hi = to.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self.merged(base, Bound::Included(from), hi, None))
    }

    fn prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let base = self.inner.prefix(prefix)?;
        Ok(self.merged(
            base,
            Bound::Included(prefix),
            Bound::Unbounded,
            Some(prefix),
        ))
    }

    fn len(&self) -> Result<usize, StoreError> {
        let mut n = self.inner.len()? as i64;
        for (k, v) in self.buffer.iter() {
            let existed = self.inner.get(k)?.is_some();
            match (existed, v.is_some()) {
                (false, true) => n += 1,
                (true, false) => n -= 1,
                _ => {}
            }
        }
        Ok(n.max(0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn aborted_writes_leave_no_trace_in_the_backend() {
        let mut s = ChangeLoggingStore::new("s", Box::new(MemoryStore::new()));
        s.put("a", b"1".to_vec()).unwrap();
        s.prepare().unwrap();
        s.commit(Some(1)).unwrap();
        s.put("a", b"2".to_vec()).unwrap();
        s.put("b", b"3".to_vec()).unwrap();
        assert_eq!(s.get("a").unwrap(), Some(b"2".to_vec()));
        s.abort();
        assert_eq!(s.get("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get("b").unwrap(), None);
        assert_eq!(s.checkpoint().unwrap(), Some(1));
    }

    #[test]
    fn buffer_keeps_latest_value_per_key_and_tombstones() {
        let mut s = ChangeLoggingStore::new("s", Box::new(MemoryStore::new()));
        s.put("gone", b"x".to_vec()).unwrap();
        s.prepare().unwrap();
        s.commit(Some(1)).unwrap();
        for i in 0..100 {
            s.put("hot", format!("{i}").into_bytes()).unwrap();
        }
        s.put("gone", b"y".to_vec()).unwrap();
        s.delete("gone").unwrap();
        // Written and deleted between two commits: never reaches the changelog.
        s.put("brief", b"z".to_vec()).unwrap();
        s.delete("brief").unwrap();
        assert_eq!(s.get("brief").unwrap(), None);
        let changes = s.prepare().unwrap();
        assert_eq!(
            changes,
            vec![
                Change {
                    key: "gone",
                    value: None
                },
                Change {
                    key: "hot",
                    value: Some(b"99")
                }
            ]
        );
    }

    #[test]
    fn scans_merge_buffer_over_backend() {
        let mut s = ChangeLoggingStore::new("s", Box::new(MemoryStore::new()));
        s.put("a1", b"1".to_vec()).unwrap();
        s.put("a2", b"2".to_vec()).unwrap();
        s.put("b1", b"3".to_vec()).unwrap();
        s.prepare().unwrap();
        s.commit(None).unwrap();
        s.delete("a1").unwrap();
        s.put("a3", b"4".to_vec()).unwrap();
        let keys: Vec<String> = s.prefix("a").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["a2", "a3"]);
        let keys: Vec<String> = s
            .range("a2", Some("b1"))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["a2", "a3"]);
        assert_eq!(s.len().unwrap(), 3);
    }

    #[test]
    fn commit_applies_exactly_what_was_prepared_and_refuses_writes_in_between() {
        let mut s = ChangeLoggingStore::new("s", Box::new(MemoryStore::new()));
        s.put("a", b"1".to_vec()).unwrap();
        let logged: Vec<(String, Option<Vec<u8>>)> = s
            .prepare()
            .unwrap()
            .iter()
            .map(|c| (c.key.to_string(), c.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(logged, vec![("a".to_string(), Some(b"1".to_vec()))]);
        assert_eq!(s.phase(), Phase::Prepared);
        assert!(matches!(
            s.put("b", b"2".to_vec()),
            Err(StoreError::Phase { .. })
        ));
        assert!(matches!(s.delete("a"), Err(StoreError::Phase { .. })));
        s.commit(Some(7)).unwrap();
        assert_eq!(s.phase(), Phase::Open);
        assert_eq!(s.pending_len(), 0);
        assert_eq!(s.checkpoint().unwrap(), Some(7));
        assert_eq!(s.get("b").unwrap(), None, "the refused write left no trace");
        s.put("b", b"2".to_vec()).unwrap();
    }

    #[test]
    fn a_commit_of_unprepared_writes_is_refused_and_restore_needs_an_empty_buffer() {
        let mut s = ChangeLoggingStore::new("s", Box::new(MemoryStore::new()));
        s.commit(Some(3)).unwrap(); // nothing buffered: just the checkpoint
        assert_eq!(s.checkpoint().unwrap(), Some(3));
        s.put("a", b"1".to_vec()).unwrap();
        assert!(matches!(s.commit(Some(4)), Err(StoreError::Phase { .. })));
        assert!(matches!(
            s.restore(Batch::default()),
            Err(StoreError::Phase { .. })
        ));
        s.abort();
        s.restore(Batch {
            writes: vec![("r".into(), Some(b"x".to_vec()))],
            checkpoint: Some(9),
        })
        .unwrap();
        assert_eq!(s.get("r").unwrap(), Some(b"x".to_vec()));
        assert_eq!(s.checkpoint().unwrap(), Some(9));
    }
}
