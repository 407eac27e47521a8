//! The stream worker: a consumer-group member that runs the tasks of its partitions.
//!
//! The consumer group is the application id; partitions are assigned with the `range`
//! assignor so that co-partitioned topics land on the same worker (one task per
//! partition of each sub-topology). On revoke the worker commits and suspends its tasks;
//! on assign it closes the tasks that moved away and creates and restores the new ones
//! before any of their records are processed. The loop runs on its own thread.
//!
//! ```no_run
//! # fn topology() -> topology::Topology { unimplemented!() }
//! use topology::{StreamWorker, StreamsConfig};
//! let cfg = StreamsConfig::new("my-app", "localhost:9092").state_dir("/var/lib/orchestra");
//! let worker = StreamWorker::start(topology(), cfg).unwrap();
//! // ... later
//! worker.shutdown().unwrap();
//! ```

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use state_stores::KeyValueStore;

use crate::builder::Topology;
use crate::config::{ProcessingGuarantee, StreamsConfig, UserOverrides};
use crate::health::HealthTracker;
use crate::queryable::Queryable;
use crate::record::{partition_for, InRecord};
use crate::restore::Restorer;
use crate::sender::Sender;
use crate::standby::{StandbyStatus, StandbyTasks};
use crate::stats::{WorkerState, WorkerStats};
use crate::task_id::TaskId;
use crate::task_manager::TaskManager;
use crate::{admin, output, TopologyError};

/// The consumer context: owns the tasks so rebalance callbacks can commit and restore.
pub(crate) struct WorkerContext {
    tm: Mutex<Option<TaskManager>>,
    fatal: Mutex<Option<TopologyError>>,
}

impl WorkerContext {
    fn lock(&self) -> MutexGuard<'_, Option<TaskManager>> {
        self.tm.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_fatal(&self, e: TopologyError) {
        tracing::error!(error = %e, "worker failed in a rebalance callback");
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(e);
        }
    }
}

impl ClientContext for WorkerContext {}

impl ConsumerContext for WorkerContext {
    /// The eager rebalance, with the task manager between the group's answer and the
    /// consumer's assignment: a revocation commits and suspends the tasks before the
    /// partitions go; an assignment opens and restores the tasks first and then assigns
    /// the partitions once, at each task's own next offsets.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let positions = {
                    let mut g = self.lock();
                    let positions = match g.as_mut().map(|tm| tm.on_assign(consumer, tpl)) {
                        Some(Ok(positions)) => Some(positions),
                        Some(Err(e)) => {
                            self.set_fatal(e);
                            None
                        }
                        None => None,
                    };
                    // A callback runs inside a poll: the time it took (a restore) does
                    // not count against the poll interval.
                    if let Some(tm) = g.as_mut() {
                        tm.polled(Instant::now());
                    }
                    positions
                };
                let assigned = positions.as_ref().unwrap_or(tpl);
                let result = if cooperative {
                    consumer.incremental_assign(assigned).map(|_| ())
                } else {
                    consumer.assign(assigned)
                };
                if let Err(e) = result {
                    self.set_fatal(TopologyError::kafka("assigning the partitions", e));
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Some(tm) = self.lock().as_mut() {
                    // A lost assignment is not a revocation: nothing may be committed.
                    let revoked = if tm.membership_lost(consumer, Instant::now()) {
                        Err(TopologyError::AssignmentLost)
                    } else {
                        tm.on_revoke(consumer, tpl)
                    };
                    match revoked {
                        Ok(()) => {}
                        // The rebalance under way takes the partitions either way.
                        Err(TopologyError::AssignmentLost) => {
                            tm.on_lost();
                        }
                        Err(e) => self.set_fatal(e),
                    }
                    tm.polled(Instant::now());
                }
                let result = if cooperative {
                    consumer.incremental_unassign(tpl).map(|_| ())
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "unassigning the revoked partitions");
                }
            }
            other => {
                let code: rdkafka::types::RDKafkaErrorCode = other.into();
                tracing::warn!(error = %code, "rebalance error");
                // As librdkafka's default handler does: drop the assignment.
                let _ = consumer.unassign();
            }
        }
    }
}

const RUN: u8 = 0;
const STOP: u8 = 1;
const KILL: u8 = 2;

/// Where a key of a store lives, for interactive queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// This worker owns the key's task; the value (if any) is attached.
    Local(Option<Vec<u8>>),
    /// Another worker owns the task for this partition.
    Remote { task: TaskId },
}

/// A running worker.
pub struct WorkerHandle {
    signal: Arc<AtomicU8>,
    thread: Mutex<Option<JoinHandle<Result<(), TopologyError>>>>,
    stats: Arc<WorkerStats>,
    ctx: Arc<WorkerContext>,
    /// The store readers queries use without the stream thread's lock.
    queryable: Arc<Queryable>,
    standby_tasks: StandbyTasks,
    topology: Topology,
}

/// Starts stream workers; see the module docs.
pub struct StreamWorker;

impl StreamWorker {
    /// Checks topics, creates internal topics (changelogs, repartition topics, DLQ), joins
    /// the group and starts the loop thread.
    pub fn start(topology: Topology, config: StreamsConfig) -> Result<WorkerHandle, TopologyError> {
        // From here on the repartition topics have their names under this application id.
        let topology = topology.resolve(&config.application_id)?;
        // Internal topic names (their partition counts are known after the source check).
        let declared = admin::internal_topics(&topology, &config.application_id, |_| Some(1));
        let internal_names: Vec<String> = declared.iter().map(|t| t.name.clone()).collect();
        // Changelogs as the topology declares them, never recognised by a name suffix.
        let changelogs: Vec<String> = declared
            .iter()
            .filter(|t| t.kind == admin::InternalTopicKind::Changelog)
            .map(|t| t.name.clone())
            .collect();
        // The restore consumers connect and learn their changelogs' leaders while the main
        // consumer checks the topics: each client's first request to the cluster's broker
        // waits for a new connection (about 50 ms on the embedded broker).
        let restorer = {
            let config = config.clone();
            let changelogs = changelogs.clone();
            std::thread::Builder::new()
                .name("restore-warm-up".into())
                .spawn(move || {
                    let r = Restorer::new(&config)?;
                    r.warm_up(&changelogs);
                    Ok::<_, TopologyError>(r)
                })
                .map_err(|e| TopologyError::Config(format!("spawning the restore warm-up: {e}")))?
        };
        let consumer: BaseConsumer<WorkerContext> = config
            .client_config()
            .set("group.id", &config.application_id)
            .set(
                "client.id",
                format!("{}-{}", config.application_id, config.worker_id),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .set("isolation.level", "read_committed")
            .set(
                "session.timeout.ms",
                config.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (config.session_timeout.as_millis() / 4)
                    .max(100)
                    .to_string(),
            )
            .set(
                "max.poll.interval.ms",
                crate::membership::DEFAULT_MAX_POLL_INTERVAL
                    .as_millis()
                    .to_string(),
            )
            // A game waits on every hop: fetch as soon as data is there.
            .set("fetch.wait.max.ms", "20")
            // Once a partition's prefetched records pass `queued.min.messages`, librdkafka
            // postpones its next fetch by this much (default 1 s): a worker that drains
            // its queue sooner would sit idle for the rest of that second.
            .set("fetch.queue.backoff.ms", "10")
            .set_user_overrides(&config)
            .create_with_context(WorkerContext {
                tm: Mutex::new(None),
                fatal: Mutex::new(None),
            })
            .map_err(|e| TopologyError::kafka("creating consumer", e))?;
        // One metadata request for the source and internal topics.
        let recovered: Vec<String> = topology
            .processors()
            .iter()
            .filter_map(|p| p.recover_from.clone())
            .collect();
        let mut wanted = topology.source_topics();
        wanted.extend(internal_names);
        wanted.extend(recovered.iter().cloned());
        let counts = admin::partition_counts_at_once(consumer.client(), &wanted)?;
        let sub_partitions = admin::check_sources(&counts, &topology)?;
        let internal = admin::internal_topics(&topology, &config.application_id, |s| {
            sub_partitions.get(&s).copied()
        });
        admin::ensure_internal(consumer.client(), &config, &internal, &counts)?;
        // The producer tracks the delivered offsets of the changelogs (checkpoints) and of
        // the recovered sinks (their covered positions).
        let tracked = changelogs.iter().cloned().chain(recovered);
        let producer = Arc::new(output::create_producer(&config, tracked)?);
        let sender = if config.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
            producer
                .init_transactions(Duration::from_secs(30))
                .map_err(|e| TopologyError::kafka("init transactions", e))?;
            None
        } else {
            Some(Sender::start(producer.clone(), &config.worker_id)?)
        };
        let stats = Arc::new(WorkerStats::new());
        let restorer = restorer
            .join()
            .map_err(|_| TopologyError::Config("the restore warm-up thread panicked".into()))??;
        let tm = TaskManager::new(
            topology.clone(),
            config.clone(),
            restorer,
            producer,
            sender,
            sub_partitions,
            stats.clone(),
        )?;
        let queryable = tm.queryable();
        let standby_tasks = tm.standby_tasks();
        *consumer.context().lock() = Some(tm);
        let topics: Vec<String> = topology.source_topics();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| TopologyError::kafka("subscribe", e))?;
        let ctx = consumer.context().clone();
        let signal = Arc::new(AtomicU8::new(RUN));
        let sig = signal.clone();
        let st = stats.clone();
        let name = format!("stream-worker-{}", config.worker_id);
        // The session timeout in force (a `session.timeout.ms` of the user's wins).
        let session = config
            .kafka
            .get("session.timeout.ms")
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(config.session_timeout);
        let tracker = HealthTracker::new(
            &config.application_id,
            &config.bootstrap_servers,
            topics.clone(),
            session,
        );
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let r = run_loop(&consumer, &sig, tracker, &st);
                if let Err(e) = &r {
                    st.set_failure(e);
                    tracing::error!(error = %e, "stream worker stopped with an error");
                }
                st.set_state(if r.is_ok() {
                    WorkerState::Stopped
                } else {
                    WorkerState::Failed
                });
                r
            })
            .map_err(|e| TopologyError::Config(format!("spawning worker thread: {e}")))?;
        Ok(WorkerHandle {
            signal,
            thread: Mutex::new(Some(thread)),
            stats,
            ctx,
            queryable,
            standby_tasks,
            topology,
        })
    }
}

fn run_loop(
    consumer: &BaseConsumer<WorkerContext>,
    signal: &AtomicU8,
    mut health: HealthTracker,
    stats: &WorkerStats,
) -> Result<(), TopologyError> {
    let ctx = consumer.context().clone();
    // Outputs wait in the sender's batch: poll without waiting, and hand them over
    // before waiting for input.
    let mut pending = false;
    loop {
        match signal.load(Ordering::Relaxed) {
            KILL => {
                tracing::warn!("worker killed: no commit, no store sync");
                // Drop the task manager (and its producer) without committing anything.
                ctx.lock().take();
                return Ok(());
            }
            STOP => return shutdown(consumer),
            _ => {}
        }
        if let Some(e) = ctx.fatal.lock().ok().and_then(|mut f| f.take()) {
            fail(&ctx);
            return Err(e);
        }
        let polled = consumer.poll(if pending {
            Duration::ZERO
        } else {
            Duration::from_millis(20)
        });
        // The loop's one clock reading for this record: its wall clock, the punctuation
        // and commit checks.
        let now = Instant::now();
        let mut guard = ctx.lock();
        let Some(tm) = guard.as_mut() else {
            return Ok(());
        };
        // The group expired this member (librdkafka found it out on its own thread): what
        // was fetched for the lost partitions is not ours to process any more, and what
        // was processed and not committed must not be delivered.
        if tm.membership_lost(consumer, now) {
            lost(consumer, guard, now);
            pending = false;
            continue;
        }
        tm.polled(now);
        let step = (|| {
            match polled {
                Some(Ok(msg)) => {
                    let ts = match msg.timestamp() {
                        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
                        Timestamp::NotAvailable => 0,
                    };
                    let rec = InRecord {
                        topic: msg.topic(),
                        partition: msg.partition(),
                        offset: msg.offset(),
                        timestamp: ts,
                        key: msg.key(),
                        value: msg.payload(),
                    };
                    tm.process(&rec, now)?;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                None => tm.hand_over_outputs()?,
            }
            tm.punctuate_wall_clock(consumer, now)?;
            tm.maybe_commit(consumer, now)?;
            pending = tm.outputs_pending();
            health.observe(tm, consumer, now);
            Ok(())
        })();
        match step {
            Ok(()) => drop(guard),
            // Found by a commit waiting on the broker: drop the work and rejoin.
            Err(TopologyError::AssignmentLost) => {
                lost(consumer, guard, Instant::now());
                pending = false;
            }
            Err(e) => {
                drop(guard);
                fail(&ctx);
                return Err(e);
            }
        }
        health.check_waiting(stats, consumer, now);
    }
}

/// The loop found its membership lost (see `membership.rs`): drops the tasks' uncommitted
/// work. When only the poll clock knows (librdkafka's timer has not fired yet, or the
/// coordinator has not evicted this member), the consumer still holds the partitions with
/// no task behind them: it leaves and rejoins the group, so that the next assignment
/// opens the tasks again from their last commit.
/// The rejoin runs after the task manager's lock is released.
fn lost(
    consumer: &BaseConsumer<WorkerContext>,
    mut guard: MutexGuard<'_, Option<TaskManager>>,
    now: Instant,
) {
    let dropped = guard.as_mut().is_some_and(|tm| {
        let dropped = tm.on_lost();
        tm.polled(now);
        dropped
    });
    drop(guard);
    if dropped && !consumer.assignment_lost() {
        crate::membership::rejoin_group(consumer);
    }
}

/// Drops every uncommitted effect and removes the tasks, so that the revoke callback run
/// when the consumer closes finds nothing to commit.
fn fail(ctx: &WorkerContext) {
    if let Some(mut tm) = ctx.lock().take() {
        tm.fail();
    }
}

fn shutdown(consumer: &BaseConsumer<WorkerContext>) -> Result<(), TopologyError> {
    let ctx = consumer.context().clone();
    {
        let mut guard = ctx.lock();
        if let Some(tm) = guard.as_mut() {
            tm.commit(consumer)?;
            tm.sync_all()?;
        }
    }
    consumer.unsubscribe();
    // Let librdkafka run the revoke callback (which finds nothing left to commit).
    let _ = consumer.poll(Duration::from_millis(10));
    if let Some(tm) = ctx.lock().take() {
        tm.close();
    }
    tracing::info!("worker shut down cleanly");
    Ok(())
}

impl WorkerHandle {
    /// Live counters and state.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Shared stats handle (for an HTTP server).
    pub fn stats_arc(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// True while the loop thread runs.
    pub fn is_running(&self) -> bool {
        self.thread
            .lock()
            .map(|t| t.as_ref().is_some_and(|t| !t.is_finished()))
            .unwrap_or(false)
    }

    /// Commits, closes stores and leaves the group. Later calls return `Ok`.
    pub fn shutdown(&self) -> Result<(), TopologyError> {
        self.signal.store(STOP, Ordering::Relaxed);
        self.join()
    }

    /// Stops without committing or syncing anything (a crash, for tests).
    pub fn kill(&self) {
        self.signal.store(KILL, Ordering::Relaxed);
        let _ = self.join();
    }

    /// Waits for the loop to end by itself (after a failure) and returns its result.
    pub fn wait(&self) -> Result<(), TopologyError> {
        self.join()
    }

    fn join(&self) -> Result<(), TopologyError> {
        let handle = self
            .thread
            .lock()
            .map_err(|_| TopologyError::Config("worker handle poisoned".into()))?
            .take();
        match handle {
            Some(t) => t
                .join()
                .map_err(|_| TopologyError::Config("worker thread panicked".into()))?,
            None => Ok(()),
        }
    }

    /// Interactive query: where `key` of `store` lives, and its value if it is local —
    /// the value the last commit applied. Between rebalances it reads the task's store
    /// directly (see `queryable`) and never waits for the stream thread; during one, or
    /// on a backend without readers, it waits for the task manager. Blocking: call it from
    /// a blocking context (`tokio::task::spawn_blocking`).
    pub fn query(&self, store: &str, key: &str) -> Result<KeyLocation, TopologyError> {
        let sub = self
            .topology
            .subtopologies()
            .iter()
            .find(|s| {
                self.topology
                    .stores_of(s.id)
                    .iter()
                    .any(|st| st.name == store)
            })
            .ok_or_else(|| TopologyError::Invalid(format!("no store `{store}`")))?;
        let task_of = |partitions: i32| TaskId {
            subtopology: sub.id,
            partition: partition_for(key.as_bytes(), partitions),
        };
        // The usual way: through the published readers, without the stream thread's lock.
        if let Some(snapshot) = self.queryable.current() {
            let id = task_of(snapshot.partitions.get(&sub.id).copied().unwrap_or(1));
            return match snapshot.readers.get(&(id, store.to_string())) {
                Some(reader) => Ok(KeyLocation::Local(reader.get(key)?)),
                None => Ok(KeyLocation::Remote { task: id }),
            };
        }
        // During a rebalance, or on a backend without readers: through the task manager.
        let guard = self.ctx.lock();
        let tm = guard
            .as_ref()
            .ok_or_else(|| TopologyError::Config("worker is not running".into()))?;
        let id = task_of(tm.partitions_of(sub.id));
        match tm.tasks().get(&id) {
            Some(task) => Ok(KeyLocation::Local(task.stores[store].get(key)?)),
            None => Ok(KeyLocation::Remote { task: id }),
        }
    }

    /// The standby replicas this worker keeps (`num.standby.replicas`), with what each
    /// has applied of its changelogs.
    pub fn standby_tasks(&self) -> Vec<StandbyStatus> {
        self.standby_tasks.now()
    }

    /// Every entry of `store` held by this worker's tasks, sorted by key.
    pub fn local_entries(&self, store: &str) -> Result<Vec<(String, Vec<u8>)>, TopologyError> {
        let guard = self.ctx.lock();
        let Some(tm) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for task in tm.tasks().values() {
            if let Some(s) = task.stores.get(store) {
                out.extend(s.range("", None)?);
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if self.thread.lock().map(|t| t.is_some()).unwrap_or(false) {
            self.signal.store(STOP, Ordering::Relaxed);
            let _ = self.join();
        }
    }
}
