//! A typed (serde JSON) view over a byte store.

use std::marker::PhantomData;

use serde::{de::DeserializeOwned, Serialize};

use crate::{KeyValueStore, StoreError};

/// Typed access to a store: values are JSON-encoded `V`.
///
/// ```
/// use state_stores::{MemoryStore, TypedStore};
/// let mut backend = MemoryStore::new();
/// let mut counts: TypedStore<'_, u64> = TypedStore::new(&mut backend);
/// counts.put("k", &3).unwrap();
/// assert_eq!(counts.get("k").unwrap(), Some(3));
/// ```
pub struct TypedStore<'a, V> {
    inner: &'a mut dyn KeyValueStore,
    _v: PhantomData<fn() -> V>,
}

impl<'a, V: Serialize + DeserializeOwned> TypedStore<'a, V> {
    /// Wraps a byte store.
    pub fn new(inner: &'a mut dyn KeyValueStore) -> Self {
        Self {
            inner,
            _v: PhantomData,
        }
    }

    fn decode(&self, key: &str, raw: &[u8]) -> Result<V, StoreError> {
        serde_json::from_slice(raw).map_err(|source| StoreError::Codec {
            store: self.inner.name().to_string(),
            key: key.to_string(),
            source,
        })
    }

    /// Reads and decodes one key.
    pub fn get(&self, key: &str) -> Result<Option<V>, StoreError> {
        match self.inner.get(key)? {
            Some(raw) => Ok(Some(self.decode(key, &raw)?)),
            None => Ok(None),
        }
    }

    /// Encodes and writes one key.
    pub fn put(&mut self, key: &str, value: &V) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(value).map_err(|source| StoreError::Codec {
            store: self.inner.name().to_string(),
            key: key.to_string(),
            source,
        })?;
        self.inner.put(key, raw)
    }

    /// Writes already-encoded JSON bytes (avoids a second encode when the caller has them).
    pub fn put_raw(&mut self, key: &str, raw: Vec<u8>) -> Result<(), StoreError> {
        self.inner.put(key, raw)
    }

    /// Deletes one key.
    pub fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key)
    }

    /// Decoded entries whose key starts with `prefix`.
    pub fn prefix(&self, prefix: &str) -> Result<Vec<(String, V)>, StoreError> {
        self.inner
            .prefix(prefix)?
            .into_iter()
            .map(|(k, raw)| {
                let v = self.decode(&k, &raw)?;
                Ok((k, v))
            })
            .collect()
    }

    /// Decoded entries with `from <= key < to`.
    pub fn range(&self, from: &str, to: Option<&str>) -> Result<Vec<(String, V)>, StoreError> {
        self.inner
            .range(from, to)?
            .into_iter()
            .map(|(k, raw)| {
                let v = self.decode(&k, &raw)?;
                Ok((k, v))
            })
            .collect()
    }

    /// Number of keys.
    pub fn len(&self) -> Result<usize, StoreError> {
        self.inner.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.inner.is_empty()
    }
}
