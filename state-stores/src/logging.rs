//! The change-logging write buffer that wraps any [`KeyValueStore`].
//!
//! Processors write into an in-memory buffer (latest value per key). At a commit the
//! runtime reads [`ChangeLoggingStore::pending_changes`], produces them to the store's
//! changelog topic, and calls [`ChangeLoggingStore::commit`] with the changelog offset they
//! reached: the buffered writes and that checkpoint go to the backend in one atomic batch.
//! [`ChangeLoggingStore::abort`] drops the buffer, so an aborted transaction leaves no
//! trace in local state. Because the buffer keeps only the latest value per key, a hot key
//! written 1,000 times between commits costs one changelog record and one backend write
//! (the caching layer of Kafka Streams).

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{Batch, KeyValueStore, StoreError, WriteBuffer};

/// One buffered change: a new value, or `None` for a delete (a changelog tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub key: &'a str,
    pub value: Option<&'a [u8]>,
}

/// A write buffer over a backend store; see the module docs.
pub struct ChangeLoggingStore {
    name: String,
    inner: Box<dyn KeyValueStore>,
    buffer: WriteBuffer,
}

impl ChangeLoggingStore {
    /// Wraps `inner` under the store name `name`.
    pub fn new(name: &str, inner: Box<dyn KeyValueStore>) -> Self {
        Self {
            name: name.to_string(),
            inner,
            buffer: WriteBuffer::default(),
        }
    }

    /// Changes written since the last commit, in key order (latest value per key).
    pub fn pending_changes(&self) -> Vec<Change<'_>> {
        self.buffer
            .iter()
            .map(|(k, v)| Change {
                key: k,
                value: v.as_deref(),
            })
            .collect()
    }

    /// Number of keys changed since the last commit.
    pub fn pending_len(&self) -> usize {
        self.buffer.len()
    }

    /// Applies the buffer to the backend together with `checkpoint` (the next changelog
    /// offset after the records produced for it) in one atomic batch.
    pub fn commit(&mut self, checkpoint: Option<i64>) -> Result<(), StoreError> {
        if self.buffer.is_empty() && checkpoint.is_none() {
            return Ok(());
        }
        let writes = self.buffer.take();
        self.inner.apply(Batch { writes, checkpoint })
    }

    /// Drops every buffered write (transaction abort).
    pub fn abort(&mut self) {
        self.buffer.clear();
    }

    /// Wipes the backend and the buffer (before a full restore).
    pub fn wipe(&mut self) -> Result<(), StoreError> {
        self.buffer.clear();
        self.inner.clear()
    }

    /// The backend store.
    pub fn inner(&self) -> &dyn KeyValueStore {
        self.inner.as_ref()
    }

    fn merged(
        &self,
        base: Vec<(String, Vec<u8>)>,
        lo: Bound<&str>,
        hi: Bound<&str>,
        prefix: Option<&str>,
    ) -> Vec<(String, Vec<u8>)> {
        let overlay = self
            .buffer
            .range(lo, hi)
            .take_while(|(k, _)| prefix.is_none_or(|p| k.starts_with(p)));
        let mut merged: BTreeMap<String, Vec<u8>> = base.into_iter().collect();
        for (k, v) in overlay {
            match v {
                Some(v) => {
                    merged.insert(k.to_string(), v.clone());
                }
                None => {
                    merged.remove(k);
                }
            }
        }
        merged.into_iter().collect()
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
        self.buffer.put(key, Some(value));
        Ok(())
    }

    /// Buffers a tombstone, unless the key was first written since the last commit (the
    /// buffer holds a value and the backend has none): neither the backend nor the
    /// changelog has seen it, so the put is simply dropped. A key that lives only
    /// between two commits (a deadline index entry, a round's history chunk) then costs
    /// no changelog record and no backend write at all.
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
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

    /// Applies a batch straight to the backend (used by restore).
    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        self.inner.apply(batch)
    }

    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        self.inner.checkpoint()
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.wipe()
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
        let changes = s.pending_changes();
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
}
