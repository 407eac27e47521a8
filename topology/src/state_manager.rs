//! A task's state manager: the one owner of the task's stores and of what is known about
//! them — each store's name, its changelog topic (from the topology's declaration, never
//! worked out from a topic name), its checkpoint, and the offsets store where the task
//! records its input positions (Kafka Streams' `ProcessorStateManager`).
//!
//! At a commit it [`prepare`](StateManager::prepare)s the changelog records — without side
//! effects beyond freezing the stores' buffers — and then
//! [`commit`](StateManager::commit)s exactly those changes with the checkpoints the producer
//! reported, or [`abort`](StateManager::abort)s them. Input positions are written into the
//! offsets store by [`record_offsets`](StateManager::record_offsets), a separate, explicit
//! step whose errors are returned.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use state_stores::{
    ChangeLoggingStore, KeyValueStore, MemoryStore, OpenOutcome, SledDb, SledStore,
    SledStoreConfig, Storage,
};

use crate::builder::Topology;
use crate::record::OutRecord;
use crate::task_id::TaskId;
use crate::TopologyError;

/// Where task stores live.
#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// In memory: nothing survives the process; every assignment restores fully.
    Memory,
    /// sled databases under `<state_dir>/<application.id>/<task>/`.
    Sled {
        state_dir: PathBuf,
        config: SledStoreConfig,
    },
}

/// See the module docs.
pub(crate) struct StateManager {
    task: TaskId,
    stores: FxHashMap<String, ChangeLoggingStore>,
    /// Logged stores and their changelog topics, as declared.
    changelogs: Vec<(String, Arc<str>)>,
    offsets_store: String,
    /// How the sled database opened (`None` in memory).
    pub open_outcome: Option<OpenOutcome>,
    _db: Option<SledDb>,
}

/// The changelog records of one commit, `(store, record)` pairs in two parts.
///
/// `positions` are the offsets store's records: the input positions and the recovered
/// sinks' covered positions the commit reaches. A restored task starts reading its inputs
/// and recovering its sinks there, so they must never be in a changelog without the
/// `state` records of the same commit: the commit sends them only once every `state`
/// record is acknowledged (see `commit.rs`).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The records of every other logged store.
    pub state: Vec<(String, OutRecord)>,
    /// The offsets store's records.
    pub positions: Vec<(String, OutRecord)>,
}

impl StateManager {
    /// Opens the stores `topology` declares for `task` on `backend`.
    pub fn open(
        topology: &Topology,
        task: TaskId,
        application_id: &str,
        backend: &StoreBackend,
    ) -> Result<Self, TopologyError> {
        let specs = topology.stores_of(task.subtopology);
        let (db, open_outcome) = match backend {
            StoreBackend::Memory => (None, None),
            StoreBackend::Sled { state_dir, config } => {
                let dir = state_dir.join(application_id).join(task.to_string());
                let (db, outcome) = SledStore::open_db(&dir, config)?;
                (Some(db), Some(outcome))
            }
        };
        let mut stores = FxHashMap::default();
        let mut changelogs = Vec::new();
        for spec in &specs {
            let inner: Box<dyn Storage> = match &db {
                None => Box::new(MemoryStore::named(&spec.name)),
                Some(db) => Box::new(SledStore::new(db, &spec.name)?),
            };
            stores.insert(
                spec.name.clone(),
                ChangeLoggingStore::new(&spec.name, inner),
            );
            if spec.changelog {
                let topic = Topology::changelog_topic(application_id, &spec.name);
                changelogs.push((spec.name.clone(), Arc::from(topic)));
            }
        }
        Ok(Self {
            task,
            stores,
            changelogs,
            offsets_store: Topology::offsets_store(task.subtopology),
            open_outcome,
            _db: db,
        })
    }

    /// The store `name`, if the task has it.
    pub fn get(&self, name: &str) -> Option<&ChangeLoggingStore> {
        self.stores.get(name)
    }

    /// The store `name` for writing, if the task has it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut ChangeLoggingStore> {
        self.stores.get_mut(name)
    }

    /// Every store, for the processors' context (which hands each processor only the
    /// stores it declared, as `KeyValueStore`s).
    pub fn for_processors(&mut self) -> &mut FxHashMap<String, ChangeLoggingStore> {
        &mut self.stores
    }

    /// Each store's reader for other threads (`None` where the backend offers none).
    pub fn readers(
        &self,
    ) -> impl Iterator<Item = (&str, Option<Arc<dyn state_stores::StoreReader>>)> + '_ {
        self.stores
            .iter()
            .map(|(name, s)| (name.as_str(), s.reader()))
    }

    /// The offsets store (input positions and recovered sinks' covered positions).
    pub fn offsets(&self) -> Option<&ChangeLoggingStore> {
        self.stores.get(&self.offsets_store)
    }

    /// `(store, changelog topic, checkpoint)` of each logged store: where restore starts.
    pub fn restore_plan(&self) -> Result<Vec<(String, String, Option<i64>)>, TopologyError> {
        let mut plan = Vec::new();
        for (store, topic) in &self.changelogs {
            plan.push((
                store.clone(),
                topic.to_string(),
                self.stores[store].checkpoint()?,
            ));
        }
        Ok(plan)
    }

    /// Whether any store has writes a commit has not applied yet.
    pub fn has_pending(&self) -> bool {
        self.stores.values().any(|s| s.pending_len() > 0)
    }

    /// Writes `(key, value)` pairs into the offsets store (input positions, recovered
    /// sinks' covered positions); they are logged and committed with everything else.
    pub fn record_offsets<'a>(
        &mut self,
        positions: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<(), TopologyError> {
        let Some(store) = self.stores.get_mut(&self.offsets_store) else {
            return Ok(());
        };
        for (key, next) in positions {
            store.put(key, next.to_string().into_bytes())?;
        }
        Ok(())
    }

    /// Freezes every store's buffer and returns its changes as changelog records on the
    /// task's partition, stamped `timestamp`. Nothing else changes: the stores apply them
    /// at [`StateManager::commit`], or drop them at [`StateManager::abort`].
    pub fn prepare(&mut self, timestamp: i64) -> Result<Prepared, TopologyError> {
        let mut out = Prepared::default();
        for (store, topic) in &self.changelogs {
            let Some(s) = self.stores.get_mut(store) else {
                continue;
            };
            let part = if *store == self.offsets_store {
                &mut out.positions
            } else {
                &mut out.state
            };
            for c in s.prepare()? {
                part.push((
                    store.clone(),
                    OutRecord {
                        topic: topic.clone(),
                        partition: Some(self.task.partition),
                        key: c.key.as_bytes().to_vec(),
                        value: c.value.map(<[u8]>::to_vec),
                        timestamp,
                        headers: Vec::new(),
                    },
                ));
            }
        }
        // Stores without a changelog (none today) commit their buffers too.
        for (name, s) in self.stores.iter_mut() {
            if !self.changelogs.iter().any(|(c, _)| c == name) {
                s.prepare()?;
            }
        }
        Ok(out)
    }

    /// Applies what [`StateManager::prepare`] returned, each store with its checkpoint
    /// (the next changelog offset after its records, as the producer reported), and syncs
    /// to disk when `sync`.
    pub fn commit(
        &mut self,
        checkpoints: &HashMap<String, i64>,
        sync: bool,
    ) -> Result<(), TopologyError> {
        for (name, store) in self.stores.iter_mut() {
            store.commit(checkpoints.get(name).copied())?;
            if sync {
                store.sync()?;
            }
        }
        Ok(())
    }

    /// Makes every committed batch durable (clean shutdown, revoke).
    pub fn sync(&mut self) -> Result<(), TopologyError> {
        for store in self.stores.values_mut() {
            store.sync()?;
        }
        Ok(())
    }

    /// Drops every buffered or prepared write (transaction abort).
    pub fn abort(&mut self) {
        for store in self.stores.values_mut() {
            store.abort();
        }
    }

    /// Number of keys per store.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        self.stores
            .iter()
            .map(|(n, s)| (n.clone(), s.len().unwrap_or(0)))
            .collect()
    }

    /// Every entry of the offsets store whose key satisfies `keep`, parsed as an offset.
    pub fn stored_positions(
        &self,
        keep: impl Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, i64>, TopologyError> {
        let Some(store) = self.offsets() else {
            return Ok(BTreeMap::new());
        };
        Ok(store
            .range("", None)?
            .into_iter()
            .filter(|(key, _)| keep(key))
            .filter_map(|(key, v)| {
                std::str::from_utf8(&v)
                    .ok()?
                    .parse::<i64>()
                    .ok()
                    .map(|o| (key, o))
            })
            .collect())
    }
}

impl std::ops::Index<&str> for StateManager {
    type Output = ChangeLoggingStore;

    fn index(&self, name: &str) -> &ChangeLoggingStore {
        &self.stores[name]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    fn topology() -> Topology {
        reference::topology(reference::Options::default())
    }

    fn changelog() -> String {
        Topology::changelog_topic("app", reference::STORE)
    }

    #[test]
    fn prepare_has_no_effect_until_commit_and_abort_drops_it() {
        let t = topology();
        let id = TaskId {
            subtopology: 0,
            partition: 3,
        };
        let mut sm = StateManager::open(&t, id, "app", &StoreBackend::Memory).unwrap();
        let plan = sm.restore_plan().unwrap();
        assert!(
            plan.contains(&(reference::STORE.to_string(), changelog(), None)),
            "{plan:?}"
        );
        let store = reference::STORE;
        sm.get_mut(store).unwrap().put("k", b"1".to_vec()).unwrap();
        let prepared = sm.prepare(42).unwrap();
        assert!(prepared.positions.is_empty(), "no input position recorded");
        assert_eq!(prepared.state.len(), 1);
        let (name, rec) = &prepared.state[0];
        assert_eq!(name, store);
        assert_eq!(*rec.topic, *changelog());
        assert_eq!(rec.partition, Some(3));
        assert_eq!(rec.timestamp, 42);
        assert_eq!(sm[store].checkpoint().unwrap(), None, "nothing applied yet");
        sm.abort();
        assert_eq!(sm[store].get("k").unwrap(), None);

        sm.get_mut(store).unwrap().put("k", b"2".to_vec()).unwrap();
        sm.prepare(43).unwrap();
        sm.commit(&HashMap::from([(store.to_string(), 8)]), false)
            .unwrap();
        assert_eq!(sm[store].checkpoint().unwrap(), Some(8));
        assert_eq!(sm[store].get("k").unwrap(), Some(b"2".to_vec()));
        assert!(!sm.has_pending());
    }

    #[test]
    fn input_positions_are_recorded_explicitly_and_read_back() {
        let t = topology();
        let id = TaskId {
            subtopology: 0,
            partition: 0,
        };
        let mut sm = StateManager::open(&t, id, "app", &StoreBackend::Memory).unwrap();
        sm.record_offsets([(reference::INPUT, 17), ("sink-end:out", 5)])
            .unwrap();
        let inputs = sm.stored_positions(|k| !k.contains(':')).unwrap();
        assert_eq!(inputs, BTreeMap::from([(reference::INPUT.to_string(), 17)]));
    }

    #[test]
    fn the_offsets_store_records_are_prepared_apart_from_the_state() {
        let t = topology();
        let id = TaskId {
            subtopology: 0,
            partition: 1,
        };
        let mut sm = StateManager::open(&t, id, "app", &StoreBackend::Memory).unwrap();
        sm.get_mut(reference::STORE)
            .unwrap()
            .put("k", b"1".to_vec())
            .unwrap();
        sm.record_offsets([(reference::INPUT, 4)]).unwrap();
        let prepared = sm.prepare(1).unwrap();
        let stores = |part: &[(String, OutRecord)]| -> Vec<String> {
            part.iter().map(|(s, _)| s.clone()).collect()
        };
        assert_eq!(stores(&prepared.state), [reference::STORE]);
        assert_eq!(stores(&prepared.positions), [Topology::offsets_store(0)]);
        assert_eq!(
            *prepared.positions[0].1.topic,
            *Topology::changelog_topic("app", &Topology::offsets_store(0))
        );
    }
}
