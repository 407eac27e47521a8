//! The stores interactive queries read without the stream thread's lock (a local
//! counterpart of Kafka Streams' store providers).
//!
//! The task manager [`publish`](Queryable::publish)es a [`Snapshot`] — a reader for each
//! store of each of its tasks, and each sub-topology's partition count — whenever its
//! task set changes, and marks it [`stale`](Queryable::stale) while a rebalance moves
//! tasks and once it is gone. A query reads through the current snapshot: it never takes
//! a lock the stream thread holds while it processes records or commits, and it reads
//! what the last commit applied (what `match-state` shows), never a write a crash could
//! still take back. Without a snapshot (a rebalance in progress, or a backend that offers
//! no reader, as in memory) queries go the slow way, through the task manager.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use state_stores::StoreReader;

use crate::task::Task;
use crate::task_id::TaskId;

/// The readers of a worker's tasks at one moment.
pub(crate) struct Snapshot {
    /// Partitions of each sub-topology.
    pub partitions: HashMap<u32, i32>,
    /// `(task, store)` → its reader, for every store of every task of the worker.
    pub readers: HashMap<(TaskId, String), Arc<dyn StoreReader>>,
}

/// See the module docs. Owned by the task manager, shared with the worker's handle.
#[derive(Default)]
pub(crate) struct Queryable {
    current: RwLock<Option<Arc<Snapshot>>>,
}

impl Queryable {
    /// The current snapshot, if there is one.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// No snapshot until the next [`Queryable::publish`]: the task set is changing.
    pub fn stale(&self) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Publishes the readers of `tasks`; no snapshot when some store offers none.
    pub fn publish(&self, tasks: &BTreeMap<TaskId, Task>, partitions: &HashMap<u32, i32>) {
        let mut readers = HashMap::new();
        for (id, task) in tasks {
            for (store, reader) in task.stores.readers() {
                let Some(reader) = reader else {
                    self.stale();
                    return;
                };
                readers.insert((*id, store.to_string()), reader);
            }
        }
        let snapshot = Snapshot {
            partitions: partitions.clone(),
            readers,
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(snapshot));
    }
}
