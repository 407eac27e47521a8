//! The change-logging store's buffer: the latest value per key since the last commit,
//! found by hash and iterated in key order.
//!
//! A processor updates the same keys over and over between two commits, so the hot path
//! is the update of a key already buffered: one hash lookup, no key comparison walk. The
//! ordered key index is touched only when a key enters or leaves the buffer, and serves
//! the scans (`range`, `prefix`) and the changelog records, which go out in key order.
//!
//! ```
//! use state_stores::WriteBuffer;
//! let mut b = WriteBuffer::default();
//! b.put("b", Some(b"2".to_vec()));
//! b.put("a", Some(b"1".to_vec()));
//! b.put("b", None); // a tombstone replaces the value
//! let keys: Vec<&str> = b.iter().map(|(k, _)| k).collect();
//! assert_eq!(keys, ["a", "b"]);
//! assert_eq!(b.get("b"), Some(&None));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// `base` (a scan of the storage below, in key order) with `changes` laid over it in their
/// order: a value adds or replaces its key, `None` removes it. Shared by the write buffer
/// over its backend and the write-behind's pending batches over their tree.
pub(crate) fn lay_over<'a>(
    base: Vec<(String, Vec<u8>)>,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Vec<(String, Vec<u8>)> {
    let mut changes = changes.into_iter().peekable();
    if changes.peek().is_none() {
        return base;
    }
    let mut merged: BTreeMap<String, Vec<u8>> = base.into_iter().collect();
    for (k, v) in changes {
        match v {
            Some(v) => {
                merged.insert(k.to_string(), v.to_vec());
            }
            None => {
                merged.remove(k);
            }
        }
    }
    merged.into_iter().collect()
}

/// See the module docs. `None` values are buffered deletes.
#[derive(Default)]
pub struct WriteBuffer {
    values: FxHashMap<Arc<str>, Option<Vec<u8>>>,
    order: BTreeSet<Arc<str>>,
}

impl WriteBuffer {
    /// The buffered change of `key`, if any (`Some(None)`: a buffered delete).
    pub fn get(&self, key: &str) -> Option<&Option<Vec<u8>>> {
        self.values.get(key)
    }

    /// Buffers `value` (`None`: a delete) as the latest change of `key`.
    pub fn put(&mut self, key: &str, value: Option<Vec<u8>>) {
        if let Some(slot) = self.values.get_mut(key) {
            *slot = value;
            return;
        }
        let key: Arc<str> = Arc::from(key);
        self.order.insert(key.clone());
        self.values.insert(key, value);
    }

    /// Forgets `key`'s buffered change.
    pub fn remove(&mut self, key: &str) {
        if self.values.remove(key).is_some() {
            self.order.remove(key);
        }
    }

    /// Number of keys with a buffered change.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Drops every buffered change.
    pub fn clear(&mut self) {
        self.values.clear();
        self.order.clear();
    }

    /// Every buffered change in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Option<Vec<u8>>)> {
        self.order.iter().map(|k| (&**k, &self.values[k]))
    }

    /// The buffered changes with keys in `(lo, hi)`, in key order.
    pub fn range<'a>(
        &'a self,
        lo: Bound<&'a str>,
        hi: Bound<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a Option<Vec<u8>>)> {
        self.order
            .range::<str, _>((lo, hi))
            .map(|k| (&**k, &self.values[k]))
    }

    /// Empties the buffer, returning its changes in key order.
    pub fn take(&mut self) -> Vec<(String, Option<Vec<u8>>)> {
        let mut values = std::mem::take(&mut self.values);
        std::mem::take(&mut self.order)
            .into_iter()
            .map(|k| {
                let v = values.remove(&k).flatten();
                (String::from(&*k), v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_keep_one_entry_and_the_order_follows_the_keys() {
        let mut b = WriteBuffer::default();
        for i in 0..10u8 {
            b.put(&format!("k{}", 9 - i), Some(vec![i]));
        }
        b.put("k3", Some(vec![42]));
        b.put("k5", None);
        b.remove("k0");
        b.remove("absent");
        assert_eq!(b.len(), 9);
        let keys: Vec<&str> = b.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"]);
        assert_eq!(b.get("k3"), Some(&Some(vec![42])));
        assert_eq!(b.get("k5"), Some(&None));
        let mid: Vec<&str> = b
            .range(Bound::Included("k4"), Bound::Excluded("k6"))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(mid, ["k4", "k5"]);
        let taken = b.take();
        assert_eq!(taken.len(), 9);
        assert_eq!(taken[2], ("k3".to_string(), Some(vec![42])));
        assert_eq!(taken[4], ("k5".to_string(), None));
        assert!(b.is_empty());
        assert_eq!(b.iter().count(), 0);
    }
}
