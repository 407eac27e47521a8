//! Standby replicas (`num.standby.replicas`; Kafka Streams' standby tasks, Goka's hot
//! standby): warm copies of the stores of tasks this worker does not run, kept by tailing
//! their changelogs into the same sled databases an active task of this worker would
//! open. When a rebalance hands the worker one of those tasks (its owner died or left),
//! the task opens the standby's database and restores only the changelog after the
//! standby's checkpoint, not the whole of it.
//!
//! Which tasks: librdkafka's assignors cannot prefer the worker that holds a standby, so a
//! worker with standbys enabled keeps one of every logged task it does not run — with W
//! workers, each task has W-1 standbys. `num.standby.replicas` is the switch (0: none).
//!
//! Hand-over, the one rule: a task's database is open in at most one place. The task
//! manager [`claim`](Standby::claim)s tasks before it opens them: the standby thread
//! applies what it has read and hands the claimed replicas' stores over, database still
//! open (closing and reopening a sled database costs a sync and a recovery scan, on the
//! failover's critical path); only then does the claim return, with those stores.
//! [`Standby::set_active`] states the tasks the task manager holds after a rebalance; the
//! others become standbys again once their database is free.
//!
//! A standby's checkpoint is the next changelog offset after the last batch it applied,
//! written in the same sled batch as the data, exactly as a restore writes it, so an
//! active task cannot tell a standby's database from its own after a clean stop.
//!
//! ```no_run
//! # use topology::StreamsConfig;
//! let config = StreamsConfig::new("app", "localhost:9092").num_standby_replicas(1);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use state_stores::{Batch, StoreError};

use crate::builder::Topology;
use crate::config::StreamsConfig;
use crate::restore::{own_topics_reader, restore_start, Wipe};
use crate::state_manager::{StateManager, StoreBackend};
use crate::task_id::TaskId;
use crate::{metrics as m, TopologyError};

/// How long a claim waits for the standby thread to close a database.
const CLAIM_WAIT: Duration = Duration::from_secs(30);
/// How often the thread looks for tasks to take and applies what it has read.
const TICK: Duration = Duration::from_millis(500);
/// Keys per store buffered before a batch is written.
const BATCH: usize = 20_000;

/// See the module docs. Dropping it stops the thread (after applying what it read).
pub(crate) struct Standby {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    control: Mutex<Control>,
    changed: Condvar,
    stop: AtomicBool,
}

#[derive(Default)]
struct Control {
    /// Tasks the task manager holds or is about to open: never standbys.
    claimed: BTreeSet<TaskId>,
    /// Tasks whose databases the standby thread has open.
    open: BTreeSet<TaskId>,
    /// Each open standby's changelog checkpoints, as of the last batch applied.
    checkpoints: BTreeMap<TaskId, Vec<(String, i64)>>,
    /// Claimed replicas' stores, open, waiting for the claim to take them.
    handed: HashMap<TaskId, StateManager>,
}

/// One standby replica as the worker's handle reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyStatus {
    pub task: TaskId,
    /// `(changelog topic, next offset)`: what the replica has applied of each changelog
    /// partition (the task's partition); a failover restores from there.
    pub checkpoints: Vec<(String, i64)>,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Standby {
    /// Starts the standby thread when `config` asks for standby replicas and keeps stores
    /// in sled; `None` otherwise.
    pub fn start(
        topology: &Topology,
        config: &StreamsConfig,
        sub_partitions: &HashMap<u32, i32>,
    ) -> Result<Option<Self>, TopologyError> {
        if config.num_standby_replicas == 0 {
            return Ok(None);
        }
        let StoreBackend::Sled {
            state_dir,
            config: sled,
        } = &config.backend
        else {
            tracing::warn!("num.standby.replicas needs sled stores (a state dir); no standby replicas in memory");
            return Ok(None);
        };
        // A database the task manager still holds is skipped and tried again later, not
        // waited for.
        let mut sled = sled.clone();
        sled.lock_wait_ms = 0;
        let backend = StoreBackend::Sled {
            state_dir: state_dir.clone(),
            config: sled,
        };
        let all: Vec<TaskId> = topology
            .subtopologies()
            .iter()
            .filter(|s| topology.stores_of(s.id).iter().any(|st| st.changelog))
            .flat_map(|s| {
                let n = sub_partitions.get(&s.id).copied().unwrap_or(1);
                (0..n).map(move |partition| TaskId {
                    subtopology: s.id,
                    partition,
                })
            })
            .collect();
        let consumer: BaseConsumer = own_topics_reader(config, "standby")
            .create()
            .map_err(|e| TopologyError::kafka("creating the standby consumer", e))?;
        let shared = Arc::new(Shared {
            control: Mutex::new(Control::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            let worker = Worker {
                topology: topology.clone(),
                application_id: config.application_id.clone(),
                backend,
                all,
                consumer,
                replicas: BTreeMap::new(),
                retry_at: HashMap::new(),
                assignment_changed: false,
            };
            std::thread::Builder::new()
                .name(format!("standby-{}", config.worker_id))
                .spawn(move || worker.run(&shared))
                .map_err(|e| TopologyError::Config(format!("starting the standby thread: {e}")))?
        };
        Ok(Some(Self {
            shared,
            thread: Some(thread),
        }))
    }

    /// Takes `ids` away from the standbys before the task manager opens them: returns once
    /// none of their databases is open here, with the stores of those that were standbys
    /// (open; the task uses them as they are). After a bounded wait it returns what it
    /// has: the task's own open then waits for the database lock and fails loudly if it
    /// never comes.
    pub fn claim(&self, ids: &[TaskId]) -> HashMap<TaskId, StateManager> {
        let mut c = self.shared.control();
        c.claimed.extend(ids.iter().copied());
        self.shared.changed.notify_all();
        let deadline = Instant::now() + CLAIM_WAIT;
        while ids.iter().any(|id| c.open.contains(id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(tasks = ?ids, "standby replicas did not let go of a task in time");
                break;
            }
            c = self
                .shared
                .changed
                .wait_timeout(c, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        ids.iter()
            .filter_map(|id| c.handed.remove(id).map(|stores| (*id, stores)))
            .collect()
    }

    /// States the tasks the task manager holds; every other logged task may be a standby.
    /// Stores handed over after their claim gave up waiting are closed here, so that their
    /// databases are free again.
    pub fn set_active(&self, ids: impl IntoIterator<Item = TaskId>) {
        let stale = {
            let mut c = self.shared.control();
            c.claimed = ids.into_iter().collect();
            std::mem::take(&mut c.handed)
        };
        if !stale.is_empty() {
            tracing::warn!(tasks = ?stale.keys().collect::<Vec<_>>(), "closing standby stores handed over after their claim gave up");
        }
        drop(stale);
    }

    /// A handle that lists this worker's standby tasks (for the worker's handle).
    pub fn tasks(&self) -> StandbyTasks {
        StandbyTasks(Some(self.shared.clone()))
    }
}

/// Lists the tasks a worker holds standby replicas of (empty without standbys).
#[derive(Clone, Default)]
pub(crate) struct StandbyTasks(Option<Arc<Shared>>);

impl StandbyTasks {
    /// The standby replicas open now, with what they have applied.
    pub fn now(&self) -> Vec<StandbyStatus> {
        let Some(shared) = &self.0 else {
            return Vec::new();
        };
        let c = shared.control();
        c.open
            .iter()
            .map(|task| StandbyStatus {
                task: *task,
                checkpoints: c.checkpoints.get(task).cloned().unwrap_or_default(),
            })
            .collect()
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One standby task: its stores and the changelog partitions it tails.
struct Replica {
    stores: StateManager,
    /// `(topic, partition)` → what is read of it and not yet applied.
    targets: Vec<Target>,
}

struct Target {
    topic: String,
    partition: i32,
    store: String,
    /// Next offset to read.
    next: i64,
    /// Next offset after what is applied (the store's checkpoint).
    applied: i64,
    pending: FxHashMap<Vec<u8>, Option<Vec<u8>>>,
}

/// The standby thread's state.
struct Worker {
    topology: Topology,
    application_id: String,
    backend: StoreBackend,
    /// Every task with a changelogged store.
    all: Vec<TaskId>,
    consumer: BaseConsumer,
    replicas: BTreeMap<TaskId, Replica>,
    /// When a task whose database was busy may be tried again.
    retry_at: HashMap<TaskId, Instant>,
    assignment_changed: bool,
}

impl Worker {
    fn run(mut self, shared: &Shared) {
        let mut last_tick = Instant::now() - TICK;
        while !shared.stop.load(Ordering::Relaxed) {
            self.give_up_claimed(shared);
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.take_free(shared);
                if let Err(e) = self.apply_all() {
                    tracing::warn!(error = %e, "standby: applying what was read");
                }
                self.report(shared);
                metrics::gauge!(m::STANDBY_TASKS).set(self.replicas.len() as f64);
            }
            if self.assignment_changed {
                self.assignment_changed = false;
                self.reassign();
            }
            if self.replicas.is_empty() {
                let c = shared.control();
                let _ = shared.changed.wait_timeout(c, TICK);
                continue;
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(msg)) => read(&mut self.replicas, &msg),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => tracing::debug!(error = %e, "standby consumer"),
            }
        }
        // Stopping: what was read is applied, the databases closed.
        if let Err(e) = self.apply_all() {
            tracing::warn!(error = %e, "standby: applying what was read at stop");
        }
        self.replicas.clear();
        shared.control().open.clear();
        metrics::gauge!(m::STANDBY_TASKS).set(0.0);
    }

    /// Hands the stores of the tasks the task manager claimed over, open, after applying
    /// what was read for them.
    fn give_up_claimed(&mut self, shared: &Shared) {
        let claimed: Vec<TaskId> = {
            let c = shared.control();
            self.replicas
                .keys()
                .filter(|id| c.claimed.contains(id))
                .copied()
                .collect()
        };
        if claimed.is_empty() {
            return;
        }
        let mut leaving = Vec::new();
        for id in &claimed {
            if let Some(mut r) = self.replicas.remove(id) {
                if let Err(e) = r.apply() {
                    // The task's restore reads again from the last checkpoint applied.
                    tracing::warn!(task = %id, error = %e, "standby: applying before the hand-over");
                }
                leaving.push((*id, r.stores));
            }
        }
        tracing::info!(tasks = ?claimed, "standbys handed over to the active tasks");
        self.assignment_changed = true;
        let mut c = shared.control();
        c.handed.extend(leaving);
        c.open = self.replicas.keys().copied().collect();
        shared.changed.notify_all();
    }

    /// Opens standbys of the tasks nobody holds here.
    fn take_free(&mut self, shared: &Shared) {
        let free: Vec<TaskId> = {
            let c = shared.control();
            self.all
                .iter()
                .filter(|id| !c.claimed.contains(id) && !self.replicas.contains_key(id))
                .copied()
                .collect()
        };
        let now = Instant::now();
        for id in free {
            if self.retry_at.get(&id).is_some_and(|at| *at > now) {
                continue;
            }
            // Registered as open before the database is, under the lock a claim takes: a
            // claim that came after `free` was read wins (the task opens the database),
            // and one arriving from here on waits for the hand-over.
            {
                let mut c = shared.control();
                if c.claimed.contains(&id) {
                    continue;
                }
                c.open.insert(id);
            }
            match self.open(id) {
                Ok(replica) => {
                    tracing::info!(task = %id, "standby replica started");
                    self.replicas.insert(id, replica);
                    self.retry_at.remove(&id);
                    self.assignment_changed = true;
                }
                Err(e) => {
                    let locked = matches!(e, TopologyError::Store(StoreError::Locked { .. }));
                    if !locked {
                        tracing::warn!(task = %id, error = %e, "standby replica could not start; retrying later");
                    }
                    let wait = if locked { 2 } else { 10 };
                    self.retry_at.insert(id, now + Duration::from_secs(wait));
                    shared.control().open.remove(&id);
                    shared.changed.notify_all();
                }
            }
        }
    }

    fn open(&self, id: TaskId) -> Result<Replica, TopologyError> {
        let mut stores =
            StateManager::open(&self.topology, id, &self.application_id, &self.backend)?;
        let mut targets = Vec::new();
        for (store, topic, checkpoint) in stores.restore_plan()? {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&topic, id.partition, Duration::from_secs(10))
                .map_err(|e| {
                    TopologyError::kafka(format!("watermarks of {topic}[{}]", id.partition), e)
                })?;
            let (start, wipe) = restore_start(checkpoint, low, high);
            let s = stores
                .get_mut(&store)
                .ok_or_else(|| TopologyError::Invalid(format!("no store {store}")))?;
            match wipe {
                Wipe::Yes => s.wipe()?,
                Wipe::IfNotEmpty if !s.backend_is_empty()? => s.wipe()?,
                _ => {}
            }
            targets.push(Target {
                topic,
                partition: id.partition,
                store,
                next: start,
                applied: start,
                pending: FxHashMap::default(),
            });
        }
        Ok(Replica { stores, targets })
    }

    /// Assigns the consumer every standby's changelog partitions at their next offsets.
    fn reassign(&mut self) {
        let mut tpl = TopicPartitionList::new();
        for r in self.replicas.values() {
            for t in &r.targets {
                if let Err(e) =
                    tpl.add_partition_offset(&t.topic, t.partition, Offset::Offset(t.next))
                {
                    tracing::warn!(error = %e, "standby assignment");
                }
            }
        }
        if let Err(e) = self.consumer.assign(&tpl) {
            tracing::warn!(error = %e, "standby: assigning changelog partitions");
        }
    }

    /// States each replica's applied checkpoints for [`StandbyTasks::now`].
    fn report(&self, shared: &Shared) {
        let checkpoints = self
            .replicas
            .iter()
            .map(|(id, r)| {
                let cps = r
                    .targets
                    .iter()
                    .map(|t| (t.topic.clone(), t.applied))
                    .collect();
                (*id, cps)
            })
            .collect();
        shared.control().checkpoints = checkpoints;
    }

    fn apply_all(&mut self) -> Result<(), TopologyError> {
        for r in self.replicas.values_mut() {
            r.apply()?;
        }
        Ok(())
    }
}

/// Buffers one changelog record for its standby (applied in batches).
fn read(replicas: &mut BTreeMap<TaskId, Replica>, msg: &rdkafka::message::BorrowedMessage<'_>) {
    let (topic, partition) = (msg.topic(), msg.partition());
    let Some((_, r)) = replicas
        .iter_mut()
        .find(|(id, r)| id.partition == partition && r.targets.iter().any(|t| t.topic == topic))
    else {
        return;
    };
    let Some(t) = r.targets.iter_mut().find(|t| t.topic == topic) else {
        return;
    };
    if msg.offset() < t.next {
        return;
    }
    if let Some(k) = msg.key() {
        t.pending
            .insert(k.to_vec(), msg.payload().map(<[u8]>::to_vec));
    }
    t.next = msg.offset() + 1;
    metrics::counter!(m::STANDBY_RECORDS).increment(1);
    if t.pending.len() >= BATCH {
        if let Err(e) = r.apply() {
            tracing::warn!(error = %e, "standby: applying a batch");
        }
    }
}

impl Replica {
    /// Writes what was read, with each store's checkpoint, one sled batch per store.
    fn apply(&mut self) -> Result<(), TopologyError> {
        for t in &mut self.targets {
            if t.pending.is_empty() {
                continue;
            }
            let writes = t
                .pending
                .drain()
                .filter_map(|(k, v)| String::from_utf8(k).ok().map(|k| (k, v)))
                .collect();
            let store = self
                .stores
                .get_mut(&t.store)
                .ok_or_else(|| TopologyError::Invalid(format!("no store {}", t.store)))?;
            store.restore(Batch {
                writes,
                checkpoint: Some(t.next),
            })?;
            t.applied = t.next;
        }
        Ok(())
    }
}
