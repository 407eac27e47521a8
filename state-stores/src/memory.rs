//! An in-memory [`KeyValueStore`] over a `BTreeMap`, for tests and the test driver.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{Batch, KeyValueStore, Storage, StoreError};

/// In-memory store with the same semantics as the sled store.
///
/// ```
/// use state_stores::{KeyValueStore, MemoryStore};
/// let mut s = MemoryStore::new();
/// s.put("a", b"1".to_vec()).unwrap();
/// assert_eq!(s.prefix("a").unwrap().len(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    name: String,
    map: BTreeMap<String, Vec<u8>>,
    checkpoint: Option<i64>,
}

impl MemoryStore {
    /// An empty store named `memory`.
    pub fn new() -> Self {
        Self::named("memory")
    }

    /// An empty store with a name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }
}

impl KeyValueStore for MemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.map.insert(key.to_string(), value);
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.map.remove(key);
        Ok(())
    }

    fn range(&self, from: &str, to: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let upper = match to {
            Some(t) => Bound::Excluded(t.to_string()),
            None => Bound::Unbounded,
        };
        Ok(self
            .map
            .range((Bound::Included(from.to_string()), upper))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.map.len())
    }
}

impl Storage for MemoryStore {
    fn apply(&mut self, batch: Batch) -> Result<(), StoreError> {
        for (k, v) in batch.writes {
            match v {
                Some(v) => {
                    self.map.insert(k, v);
                }
                None => {
                    self.map.remove(&k);
                }
            }
        }
        if batch.checkpoint.is_some() {
            self.checkpoint = batch.checkpoint;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.checkpoint)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.map.clear();
        self.checkpoint = None;
        Ok(())
    }
}
