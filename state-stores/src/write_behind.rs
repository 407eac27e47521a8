//! Write-behind: a committed batch is applied to its sled tree by a background thread,
//! so that the stream thread goes back to processing instead of waiting for sled.
//!
//! A commit has already logged the batch to the changelog (and committed the input
//! offsets) before it reaches the store, so applying it locally is only a cache update:
//! after a crash the tree holds an older checkpoint and restore reads the changelog's
//! tail, exactly as after a crash between a commit and its apply. What must hold while a
//! batch waits:
//!
//! * **Reads see it at once.** [`Pending`] keeps the batches not yet applied, oldest first;
//!   a read looks at them (newest first) before the tree, and scans lay them over the
//!   tree's entries. The applier removes a batch only after `apply_batch` returned, so a
//!   key is always either in a pending batch or already in the tree.
//! * **Batches land in order, whole.** One applier thread takes the batches of every store
//!   in the order they were handed over; each is one atomic `apply_batch` with its
//!   checkpoint.
//! * **A failed apply stops the store.** The first failure is kept and every later
//!   operation on the store returns it (the worker stops and restores from the changelog);
//!   the batches after it are dropped, so the tree stays a prefix of the commits.
//! * **Nothing outlives its store.** A synchronous operation (a restore's batch, a direct
//!   write, sync, clear, len) and dropping the store wait until its batches are applied,
//!   so a task's database is never reopened while the applier still holds it.
//!
//! ```
//! use state_stores::{Batch, KeyValueStore, SledStore, SledStoreConfig, Storage};
//! let dir = tempfile::tempdir().unwrap();
//! let (db, _) = SledStore::open_db(dir.path(), &SledStoreConfig::default()).unwrap();
//! let mut store = SledStore::new(&db, "counts").unwrap();
//! store
//!     .apply_behind(Batch { writes: vec![("k".into(), Some(b"1".to_vec()))], checkpoint: Some(1) })
//!     .unwrap();
//! // Visible at once, applied or not.
//! assert_eq!(store.get("k").unwrap(), Some(b"1".to_vec()));
//! assert_eq!(store.checkpoint().unwrap(), Some(1));
//! store.sync().unwrap(); // waits for the apply, then fsyncs
//! ```

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::sled_store::sled_batch;
use crate::write_buffer::lay_over;
use crate::{Batch, StoreError};

/// Batches one store may have waiting; handing over one more waits for the oldest. One:
/// a commit's apply overlaps the next interval's processing, and no more than that is
/// ever behind (a backlog would hold memory, and a worker taking over partitions would
/// restore them while its applier still caught up).
const MAX_PENDING: usize = 1;

/// A batch waiting to be applied; its writes are in key order.
pub(crate) struct PendingBatch {
    writes: Vec<(String, Option<Vec<u8>>)>,
    checkpoint: Option<i64>,
}

impl PendingBatch {
    fn new(mut batch: Batch) -> Self {
        if !batch.writes.is_sorted_by(|a, b| a.0 <= b.0) {
            batch.writes.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Self {
            writes: batch.writes,
            checkpoint: batch.checkpoint,
        }
    }

    fn lookup(&self, key: &str) -> Option<&Option<Vec<u8>>> {
        self.writes
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.writes[i].1)
    }
}

#[derive(Default)]
struct State {
    batches: VecDeque<Arc<PendingBatch>>,
    failed: Option<String>,
}

/// The batches of one store not yet applied (shared by the store, its readers and the
/// applier); see the module docs.
#[derive(Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
    changed: Condvar,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(name: &str, reason: &str) -> StoreError {
        StoreError::ApplyFailed {
            store: name.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The newest pending change of `key`: `Some(None)` a pending delete, `None` when no
    /// pending batch touches it (read the tree).
    pub fn lookup(&self, name: &str, key: &str) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let state = self.lock();
        if let Some(reason) = &state.failed {
            return Err(Self::failure(name, reason));
        }
        Ok(state
            .batches
            .iter()
            .rev()
            .find_map(|b| b.lookup(key).cloned()))
    }

    /// The pending batches, oldest first, to lay over a scan of the tree. Taken before the
    /// scan: a batch applied meanwhile is laid over its own writes, which changes nothing.
    pub fn snapshot(&self, name: &str) -> Result<Vec<Arc<PendingBatch>>, StoreError> {
        let state = self.lock();
        if let Some(reason) = &state.failed {
            return Err(Self::failure(name, reason));
        }
        Ok(state.batches.iter().cloned().collect())
    }

    /// The checkpoint of the newest pending batch that has one.
    pub fn checkpoint(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let state = self.lock();
        if let Some(reason) = &state.failed {
            return Err(Self::failure(name, reason));
        }
        Ok(state.batches.iter().rev().find_map(|b| b.checkpoint))
    }

    /// Waits until every pending batch is applied; the failure if one was not.
    pub fn drain(&self, name: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        while state.failed.is_none() && !state.batches.is_empty() {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match &state.failed {
            Some(reason) => Err(Self::failure(name, reason)),
            None => Ok(()),
        }
    }

    /// Hands `batch` to the applier for `tree` (waiting while [`MAX_PENDING`] batches of
    /// this store are already waiting).
    pub fn push(
        self: &Arc<Self>,
        name: &str,
        tree: &sled::Tree,
        batch: Batch,
    ) -> Result<(), StoreError> {
        let batch = Arc::new(PendingBatch::new(batch));
        {
            let mut state = self.lock();
            while state.failed.is_none() && state.batches.len() >= MAX_PENDING {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if let Some(reason) = &state.failed {
                return Err(Self::failure(name, reason));
            }
            state.batches.push_back(batch.clone());
        }
        let job = Job {
            tree: tree.clone(),
            pending: self.clone(),
            batch,
        };
        if let Err(unsent) = applier().send(job) {
            // The applier thread is gone (it never exits while the process runs); apply
            // here rather than lose the batch.
            unsent.0.run();
        }
        Ok(())
    }
}

/// Lays `batches` (oldest first) over `base` (a scan of the tree, in key order), keeping
/// the keys `keep` accepts.
pub(crate) fn overlay(
    base: Vec<(String, Vec<u8>)>,
    batches: &[Arc<PendingBatch>],
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let changes = batches
        .iter()
        .flat_map(|b| b.writes.iter())
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.as_str(), v.as_deref()));
    lay_over(base, changes)
}

/// One batch for the applier.
struct Job {
    tree: sled::Tree,
    pending: Arc<Pending>,
    batch: Arc<PendingBatch>,
}

impl Job {
    /// Applies the batch (unless its store already failed) and retires it.
    fn run(self) {
        let Job {
            tree,
            pending,
            batch,
        } = self;
        if pending.lock().failed.is_some() {
            return;
        }
        let sled_batch = sled_batch(&batch.writes, batch.checkpoint);
        let applied = catch_unwind(AssertUnwindSafe(|| tree.apply_batch(sled_batch)));
        // Let go of the tree before anyone waiting is woken: a store that was waiting to
        // close may reopen its database right after, and sled's file lock is held while
        // any handle lives.
        drop(tree);
        let mut state = pending.lock();
        match applied {
            Ok(Ok(())) => {
                if state
                    .batches
                    .front()
                    .is_some_and(|b| Arc::ptr_eq(b, &batch))
                {
                    state.batches.pop_front();
                }
            }
            Ok(Err(e)) => {
                state.failed = Some(e.to_string());
                state.batches.clear();
            }
            Err(_) => {
                state.failed = Some("sled panicked".into());
                state.batches.clear();
            }
        }
        drop(state);
        pending.changed.notify_all();
    }
}

/// The process's applier thread, started on first use.
fn applier() -> &'static Sender<Job> {
    static APPLIER: OnceLock<Sender<Job>> = OnceLock::new();
    APPLIER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("store-write-behind".into())
            .spawn(move || {
                for job in rx {
                    job.run();
                }
            })
            .expect("spawning the store write-behind thread");
        tx
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_see_the_newest_pending_change_and_scans_lay_batches_over_the_base() {
        let older = Arc::new(PendingBatch::new(Batch {
            writes: vec![
                ("b".into(), Some(b"old".to_vec())),
                ("a".into(), Some(b"1".to_vec())),
            ],
            checkpoint: Some(3),
        }));
        let newer = Arc::new(PendingBatch::new(Batch {
            writes: vec![("a".into(), None), ("b".into(), Some(b"new".to_vec()))],
            checkpoint: None,
        }));
        let pending = Pending::default();
        pending
            .lock()
            .batches
            .extend([older.clone(), newer.clone()]);
        assert_eq!(pending.lookup("s", "a").unwrap(), Some(None));
        assert_eq!(
            pending.lookup("s", "b").unwrap(),
            Some(Some(b"new".to_vec()))
        );
        assert_eq!(pending.lookup("s", "c").unwrap(), None);
        assert_eq!(pending.checkpoint("s").unwrap(), Some(3));
        let base = vec![
            ("a".to_string(), b"0".to_vec()),
            ("c".to_string(), b"2".to_vec()),
        ];
        let merged = overlay(base, &[older, newer], |_| true);
        assert_eq!(
            merged,
            vec![
                ("b".to_string(), b"new".to_vec()),
                ("c".to_string(), b"2".to_vec())
            ]
        );
    }

    #[test]
    fn a_failed_store_reports_its_failure_to_every_later_operation() {
        let pending = Pending::default();
        pending.lock().failed = Some("disk full".into());
        for err in [
            pending.lookup("s", "a").err(),
            pending.checkpoint("s").err(),
            pending.drain("s").err(),
            pending.snapshot("s").err(),
        ] {
            let err = err.expect("an error").to_string();
            assert!(err.contains("disk full"), "{err}");
        }
    }
}
