//! The tasks of one worker: created on assignment (and restored), suspended on revoke,
//! closed when their partitions move away. Shared by the worker loop and the rebalance
//! callbacks that librdkafka runs inside `poll`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;

use crate::builder::Topology;
use crate::commit::{self, Committed};
use crate::config::{ProcessingGuarantee, StreamsConfig};
use crate::deadlines::{now_ms, Deadlines};
use crate::kafka_io::KafkaCommitIo;
use crate::lifecycle::TaskState;
use crate::membership::PollClock;
use crate::output::OutProducer;
use crate::parallel::join_all;
use crate::queryable::Queryable;
use crate::record::InRecord;
use crate::restore::Restorer;
use crate::sender::Sender;
use crate::standby::{Standby, StandbyTasks};
use crate::state_manager::StateManager;
use crate::stats::{WorkerState, WorkerStats};
use crate::task::{Task, TaskSettings};
use crate::task_gauges::TaskGauges;
use crate::task_id::TaskId;
use crate::{metrics as m, TopologyError};

pub(crate) struct TaskManager {
    topology: Topology,
    config: StreamsConfig,
    settings: TaskSettings,
    tasks: BTreeMap<TaskId, Task>,
    producer: Arc<OutProducer>,
    /// Hands at_least_once outputs to the producer on its own thread (`None` under
    /// exactly_once, whose outputs go into the transaction at commit).
    sender: Option<Sender>,
    restorer: Restorer,
    topic_sub: rustc_hash::FxHashMap<String, u32>,
    sub_partitions: HashMap<u32, i32>,
    stats: Arc<WorkerStats>,
    /// The commit interval, punctuation checks, disk syncs and the wall clock.
    deadlines: Deadlines,
    buffered: usize,
    /// This worker's part of the gauges derived from its tasks.
    gauges: TaskGauges,
    /// The store readers interactive queries use (republished when the task set changes).
    queryable: Arc<Queryable>,
    /// Standby replicas of the tasks this worker does not run (`num.standby.replicas`).
    standby: Option<Standby>,
    /// When the stream thread must poll again to stay in the group.
    poll: PollClock,
}

/// Creates new tasks (opening their sled databases, about 5 ms each) on up to one thread
/// per core, so a worker taking over many partitions does not open them one by one.
fn open_tasks(
    topology: &Topology,
    ids: &[TaskId],
    settings: &TaskSettings,
    now: i64,
    mut handed: HashMap<TaskId, StateManager>,
) -> Result<Vec<Task>, TopologyError> {
    let mut work: Vec<(TaskId, Option<StateManager>)> =
        ids.iter().map(|id| (*id, handed.remove(id))).collect();
    let open = |(id, stores): (TaskId, Option<StateManager>)| {
        Task::new(topology, id, settings.clone(), now, stores)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len());
    if threads <= 1 {
        return work.into_iter().map(open).collect();
    }
    let per = work.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    while !work.is_empty() {
        chunks.push(work.split_off(work.len().saturating_sub(per)));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || chunk.into_iter().map(open).collect::<Result<Vec<_>, _>>())
            })
            .collect();
        let mut tasks = Vec::with_capacity(ids.len());
        for opened in join_all(handles, "task open") {
            tasks.extend(opened?);
        }
        Ok(tasks)
    })
}

/// Hands `task`'s outputs to the sender (at_least_once), or leaves them in the task for
/// the transaction and notes how many are buffered (exactly_once: no sender).
fn hand_outputs(
    task: &mut Task,
    sender: &mut Option<Sender>,
    buffered: &mut usize,
) -> Result<(), TopologyError> {
    let Some(sender) = sender.as_mut() else {
        *buffered = (*buffered).max(task.out.len());
        return Ok(());
    };
    for rec in task.out.drain(..) {
        sender.push(rec)?;
    }
    Ok(())
}

impl TaskManager {
    /// The task manager of a worker that starts with no task (and its standby replicas,
    /// when the configuration asks for them).
    pub fn new(
        topology: Topology,
        config: StreamsConfig,
        restorer: Restorer,
        producer: Arc<OutProducer>,
        sender: Option<Sender>,
        sub_partitions: HashMap<u32, i32>,
        stats: Arc<WorkerStats>,
    ) -> Result<Self, TopologyError> {
        let standby = Standby::start(&topology, &config, &sub_partitions)?;
        let poll = PollClock::new(crate::membership::max_poll_interval(&config));
        let settings = TaskSettings {
            application_id: config.application_id.clone(),
            backend: config.backend.clone(),
            deserialization_handler: config.deserialization_handler,
            processing_handler: config.processing_handler,
            measure_e2e: true,
        };
        Ok(Self {
            topic_sub: topology.topic_index(),
            deadlines: Deadlines::new(config.commit_interval),
            topology,
            settings,
            config,
            tasks: BTreeMap::new(),
            producer,
            sender,
            restorer,
            sub_partitions,
            stats,
            buffered: 0,
            gauges: TaskGauges::new(),
            queryable: Arc::default(),
            standby,
            poll,
        })
    }

    /// The tasks this worker keeps standby replicas of.
    pub(crate) fn standby_tasks(&self) -> StandbyTasks {
        self.standby
            .as_ref()
            .map(Standby::tasks)
            .unwrap_or_default()
    }

    /// The store readers interactive queries use; see [`Queryable`].
    pub(crate) fn queryable(&self) -> Arc<Queryable> {
        self.queryable.clone()
    }

    /// The worker's tasks.
    pub fn tasks(&self) -> &BTreeMap<TaskId, Task> {
        &self.tasks
    }

    /// The worker's deadlines (commit interval, punctuation, syncs).
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// Input topic → sub-topology.
    pub fn topic_sub(&self) -> &rustc_hash::FxHashMap<String, u32> {
        &self.topic_sub
    }

    /// The worker's statistics.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Partitions of each sub-topology.
    pub fn partitions_of(&self, subtopology: u32) -> i32 {
        self.sub_partitions.get(&subtopology).copied().unwrap_or(1)
    }

    /// at_least_once: hands the outputs processed so far to the producer (the loop calls
    /// it when a poll returns nothing).
    pub fn hand_over_outputs(&mut self) -> Result<(), TopologyError> {
        match self.sender.as_mut() {
            Some(sender) => sender.hand_over(),
            None => Ok(()),
        }
    }

    /// Whether outputs wait to be handed to the producer.
    pub fn outputs_pending(&self) -> bool {
        self.sender.as_ref().is_some_and(Sender::has_pending)
    }

    /// The worker failed: drops every uncommitted effect (and, under exactly_once, the
    /// open transaction).
    pub fn fail(&mut self) {
        self.abort_all();
        if self.eos() {
            use rdkafka::producer::Producer as _;
            let _ = self
                .producer
                .abort_transaction(std::time::Duration::from_secs(10));
        }
    }

    /// Clean shutdown's last step: waits (bounded) for the producer's last records.
    pub fn close(self) {
        let _ = crate::output::await_deliveries(&self.producer, std::time::Duration::from_secs(10));
    }

    /// Commits every task (see `commit.rs`), after letting the processors flush what they
    /// keep in memory; then starts the next commit interval and states the gauges.
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), TopologyError> {
        self.flush_processors()?;
        let started = Instant::now();
        // Store batches are atomic (data and checkpoint together); making them durable is
        // only needed now and then: after a crash sled recovers a consistent prefix of
        // batches, and restore reads the changelog from that older checkpoint.
        let sync = self.deadlines.sync_due();
        let eos = self.eos();
        let mut io = KafkaCommitIo {
            producer: &self.producer,
            sender: self.sender.as_mut(),
            consumer,
            poll: &self.poll,
        };
        let outcome = commit::commit_tasks(&mut self.tasks, &mut io, eos, sync);
        if outcome.is_err() {
            self.buffered = 0;
        }
        if outcome? == Committed::Done {
            if sync {
                self.deadlines.synced();
                self.gauges.report_store_sizes(&self.tasks);
            }
            self.buffered = 0;
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(m::COMMITS).increment(1);
            metrics::histogram!(m::COMMIT_LATENCY).record(started.elapsed().as_secs_f64());
        }
        self.deadlines.committed();
        self.gauges.publish(&self.tasks, consumer);
        Ok(())
    }

    pub fn eos(&self) -> bool {
        self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnce
    }

    /// Wall clock (epoch ms) at `now`.
    fn wall_ms(&self, now: Instant) -> i64 {
        self.deadlines.wall_ms(now)
    }

    /// Routes one consumed record (polled at `now`) to its task and handles the outputs.
    pub fn process(&mut self, rec: &InRecord<'_>, now: Instant) -> Result<(), TopologyError> {
        let wall = self.wall_ms(now);
        let Some(&sub) = self.topic_sub.get(rec.topic) else {
            return Ok(());
        };
        let id = TaskId {
            subtopology: sub,
            partition: rec.partition,
        };
        let Some(task) = self.tasks.get_mut(&id) else {
            tracing::warn!(task = %id, "record for a task this worker does not own; skipped (offset not committed)");
            return Ok(());
        };
        task.process(rec, wall)?;
        self.stats.processed.fetch_add(1, Ordering::Relaxed);
        hand_outputs(task, &mut self.sender, &mut self.buffered)
    }

    /// Sends a task's outputs now (at_least_once) or keeps them for the transaction.
    fn drain_outputs(&mut self, id: TaskId) -> Result<(), TopologyError> {
        match self.tasks.get_mut(&id) {
            Some(task) => hand_outputs(task, &mut self.sender, &mut self.buffered),
            None => Ok(()),
        }
    }

    /// Runs every task's processor flush and sends (or buffers) what it forwards.
    pub fn flush_processors(&mut self) -> Result<(), TopologyError> {
        let now = now_ms();
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            if let Some(task) = self.tasks.get_mut(&id) {
                task.flush_processors(now)?;
            }
            self.drain_outputs(id)?;
        }
        Ok(())
    }

    /// Fires due wall-clock punctuators of every running task (`now`: the loop's clock).
    pub fn punctuate_wall_clock<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        now: Instant,
    ) -> Result<(), TopologyError> {
        let Some(now) = self.deadlines.punctuation_check(now) else {
            return Ok(());
        };
        let ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.state == TaskState::Running)
            .map(|(id, _)| *id)
            .collect();
        let mut positions: Option<TopicPartitionList> = None;
        for id in ids {
            if let Some(task) = self.tasks.get_mut(&id) {
                let positions = &mut positions;
                let held = task.backlog.holds(
                    &id.to_string(),
                    |topic| {
                        let list = positions
                            .get_or_insert_with(|| consumer.position().unwrap_or_default());
                        crate::watermarks::offset_in(list, topic, id.partition)
                    },
                    |topic| crate::watermarks::cached_high(consumer, topic, id.partition),
                );
                if !held {
                    task.punctuate(crate::PunctuationType::WallClock, now, now)?;
                }
            }
            self.drain_outputs(id)?;
        }
        Ok(())
    }

    /// Commits when the interval has passed or the transaction buffer is large.
    pub fn maybe_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        now: Instant,
    ) -> Result<(), TopologyError> {
        if self.deadlines.commit_due(now) || self.buffered >= self.config.max_buffered_records {
            self.commit(consumer)?;
        }
        Ok(())
    }

    /// Revocation (eager protocol: everything): commit, then suspend the tasks.
    pub fn on_revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<(), TopologyError> {
        tracing::info!(worker = %self.config.worker_id, partitions = tpl.count(), "partitions revoked; committing");
        let started = Instant::now();
        self.queryable.stale();
        self.commit(consumer)?;
        self.sync_all()?;
        for task in self.tasks.values_mut() {
            if task.state == TaskState::Running {
                task.set_state(TaskState::Suspended)?;
            }
        }
        // A revocation that takes long can outlast the group's patience (see `resume.rs`).
        tracing::info!(
            worker = %self.config.worker_id,
            tasks = self.tasks.len(),
            ms = started.elapsed().as_millis() as u64,
            "revocation committed; tasks suspended"
        );
        self.gauges.publish(&self.tasks, consumer);
        self.queryable.publish(&self.tasks, &self.sub_partitions);
        Ok(())
    }

    /// The stream thread's poll returned at `at`.
    pub fn polled(&mut self, at: Instant) {
        self.poll.polled(at);
    }

    /// Whether this worker can no longer count on its assignment at `now` (see
    /// `membership.rs`).
    pub fn membership_lost<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        now: Instant,
    ) -> bool {
        self.poll.membership_lost(consumer, now)
    }

    /// The group took the assignment away without a revocation: this worker's session
    /// expired (a broker outage, a network partition) or it did not poll within
    /// `max.poll.interval.ms`, and the partitions may have a new owner already, which
    /// restores them and reads their sinks to the end. Nothing of this worker's
    /// uncommitted work may reach a topic after that: outputs not handed to the producer
    /// are dropped, and those in the producer but not yet acknowledged are purged
    /// (at_least_once; under exactly_once the open transaction is aborted). No offset,
    /// changelog record or store write is committed, and the tasks are closed: their
    /// processors' memory holds the dropped work. Their inputs since the last commit are
    /// processed again by whichever worker owns them next (this one again, after a
    /// restore, if the group gives them back). Idempotent: the loop calls it as soon as
    /// it sees the loss, and the revoke callback that follows finds nothing left.
    ///
    /// Returns whether there was anything to drop.
    pub fn on_lost(&mut self) -> bool {
        if self.tasks.is_empty() {
            return false;
        }
        tracing::warn!(
            worker = %self.config.worker_id,
            tasks = self.tasks.len(),
            "assignment lost (session expired or poll interval exceeded): dropping the \
             uncommitted work of every task and closing them without a commit"
        );
        metrics::counter!(m::ASSIGNMENTS_LOST).increment(1);
        self.stats.assignments_lost.fetch_add(1, Ordering::Relaxed);
        self.queryable.stale();
        if let Some(sender) = self.sender.as_mut() {
            sender.discard_pending();
            // Every batch the sender holds reaches the producer, so the purge sees it.
            let _ = sender.drain();
        }
        if self.eos() {
            crate::output::abort_for_lost_assignment(&self.producer);
        } else {
            crate::output::purge_unacknowledged(&self.producer);
        }
        for (id, mut task) in std::mem::take(&mut self.tasks) {
            task.abort();
            if let Err(e) = task.set_state(TaskState::Closed) {
                tracing::warn!(task = %id, error = %e, "closing a task of the lost assignment");
            }
        }
        self.buffered = 0;
        self.queryable.publish(&self.tasks, &self.sub_partitions);
        true
    }

    /// fsyncs every task's stores (clean shutdown, revoke).
    pub fn sync_all(&mut self) -> Result<(), TopologyError> {
        // Each task has its own database: their fsyncs run in parallel.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut tasks: Vec<&mut Task> = self.tasks.values_mut().collect();
        let chunk = tasks.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = tasks
                .chunks_mut(chunk)
                .map(|chunk| {
                    scope.spawn(move || chunk.iter_mut().try_for_each(|t| t.sync_stores()))
                })
                .collect();
            join_all(handles, "store sync")
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
        })?;
        self.deadlines.synced();
        Ok(())
    }

    /// Assignment, before the consumer takes the partitions: close tasks that moved away,
    /// resume kept ones, create and restore new ones. Returns the assignment with each
    /// task's own next offsets, for the one `assign` of this rebalance: the input is not
    /// fetched while the tasks restore (as Kafka Streams pauses restoring tasks' inputs),
    /// and no fetch started at the group's offsets has to be stopped and restarted.
    pub fn on_assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<TopicPartitionList, TopologyError> {
        // Queries wait for the assignment (through the task manager's lock) while tasks
        // open and restore, instead of being told another instance owns a key.
        self.queryable.stale();
        let result = self.assign_tasks(consumer, tpl);
        if result.is_ok() {
            self.queryable.publish(&self.tasks, &self.sub_partitions);
        }
        result
    }

    fn assign_tasks<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<TopicPartitionList, TopologyError> {
        let mut wanted = BTreeSet::new();
        for e in tpl.elements() {
            if let Some(&sub) = self.topic_sub.get(e.topic()) {
                wanted.insert(TaskId {
                    subtopology: sub,
                    partition: e.partition(),
                });
            }
        }
        let gone: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|id| !wanted.contains(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(mut task) = self.tasks.remove(&id) {
                task.set_state(TaskState::Closed)?;
                tracing::info!(task = %id, "task closed (partition moved away)");
            }
        }
        let mut fresh = Vec::new();
        let mut suspended = Vec::new();
        for id in &wanted {
            match self.tasks.get(id) {
                Some(task) if task.state == TaskState::Suspended => suspended.push(*id),
                Some(_) => {}
                None => fresh.push(*id),
            }
        }
        // A suspended task resumes only if nobody wrote its partitions since its
        // revocation here (see `resume.rs`); otherwise it is opened again like a new one.
        let moved = crate::resume::moved_on(&self.restorer, &self.tasks, &suspended, self.eos())?;
        let mut resumed = Vec::new();
        for id in suspended {
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            if moved.contains(&id) {
                task.set_state(TaskState::Closed)?;
                self.tasks.remove(&id);
                self.stats.reopened_tasks.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::TASKS_REOPENED).increment(1);
                fresh.push(id);
            } else {
                // Continues from its own next offsets (see `positions` below).
                task.set_state(TaskState::Running)?;
                resumed.push(id);
            }
        }
        // A database is open in one place at a time: the standby hands over the ones it
        // holds (still open) before the others are opened.
        let handed = match &self.standby {
            Some(standby) => standby.claim(&fresh),
            None => HashMap::new(),
        };
        for mut task in open_tasks(&self.topology, &fresh, &self.settings, now_ms(), handed)? {
            if let Some(state_stores::OpenOutcome::Rebuilt { reason }) = &task.stores.open_outcome {
                tracing::warn!(task = %task.id, %reason, "local store was corrupt; rebuilding from the changelog");
                self.stats.rebuilt_stores.fetch_add(1, Ordering::Relaxed);
            }
            task.set_state(TaskState::Restoring)?;
            self.tasks.insert(task.id, task);
        }
        if !fresh.is_empty() {
            self.stats.set_state(WorkerState::Restoring);
            let started = Instant::now();
            let restored = self.restorer.restore(&mut self.tasks, &fresh)?;
            crate::recover::recover_tasks(&self.config, &mut self.tasks, &fresh)?;
            self.stats
                .restore_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            self.stats.restored.fetch_add(restored, Ordering::Relaxed);
            for id in &fresh {
                if let Some(task) = self.tasks.get_mut(id) {
                    task.set_state(TaskState::Running)?;
                    position_from_state(consumer, task)?;
                }
            }
        }
        // A task kept through the rebalance waited too: input arrived while the group was
        // rebalancing (seconds on some brokers). Like a new task, it processes that input
        // before its wall-clock punctuators run again.
        for id in fresh.iter().chain(&resumed) {
            let topics = self
                .topology
                .subtopologies()
                .iter()
                .find(|s| s.id == id.subtopology)
                .map(|s| s.topics.clone())
                .unwrap_or_default();
            if let Some(task) = self.tasks.get_mut(id) {
                task.backlog = crate::catch_up::Backlog::at_assignment(
                    consumer,
                    &topics,
                    id.partition,
                    &task.next_offsets,
                )?;
            }
        }
        let positions = self.positions(tpl)?;
        if let Some(standby) = &self.standby {
            standby.set_active(self.tasks.keys().copied());
        }
        self.stats.set_tasks(self.tasks.keys().copied().collect());
        self.stats.set_state(WorkerState::Running);
        self.gauges.publish(&self.tasks, consumer);
        // The stores just restored, and without those that moved away.
        self.gauges.report_store_sizes(&self.tasks);
        tracing::info!(worker = %self.config.worker_id, tasks = ?self.tasks.keys().map(|t| t.to_string()).collect::<Vec<_>>(), "assignment done");
        Ok(positions)
    }

    /// The assignment with each task's own next offsets, so that a kept task continues
    /// exactly where it stopped (even if the offset commit during the rebalance was
    /// refused) and a restored task starts where its state ends. Partitions without a
    /// known offset start from the group's committed offset.
    fn positions(
        &self,
        assigned: &TopicPartitionList,
    ) -> Result<TopicPartitionList, TopologyError> {
        let mut tpl = TopicPartitionList::new();
        for e in assigned.elements() {
            let offset = self
                .topic_sub
                .get(e.topic())
                .and_then(|&sub| {
                    self.tasks.get(&TaskId {
                        subtopology: sub,
                        partition: e.partition(),
                    })
                })
                .and_then(|t| t.next_offsets.get(e.topic()).copied())
                .map_or(rdkafka::Offset::Invalid, rdkafka::Offset::Offset);
            tpl.add_partition_offset(e.topic(), e.partition(), offset)
                .map_err(|e| TopologyError::kafka("assignment offsets", e))?;
        }
        tracing::debug!(positions = %crate::watermarks::describe(&tpl), "input positions of the assignment");
        Ok(tpl)
    }

    /// Drops every buffered effect (used when the worker fails).
    pub fn abort_all(&mut self) {
        self.queryable.stale();
        for task in self.tasks.values_mut() {
            task.abort();
        }
        if let Some(sender) = self.sender.as_mut() {
            sender.discard_pending();
        }
        self.buffered = 0;
    }
}

/// Starts a restored task at the later of the group's committed offset and the offset
/// recorded in its state (see [`Topology::offsets_store`]).
fn position_from_state<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    task: &mut Task,
) -> Result<(), TopologyError> {
    let stored = task.stored_offsets()?;
    if stored.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, _) in &stored {
        tpl.add_partition(topic, task.id.partition);
    }
    let committed = consumer
        .committed_offsets(tpl, std::time::Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka("committed offsets", e))?;
    for (topic, offset) in stored {
        let group =
            crate::watermarks::offset_in(&committed, &topic, task.id.partition).unwrap_or(-1);
        tracing::debug!(task = %task.id, %topic, group, state = offset, "restored task's input offsets");
        if offset > group {
            tracing::info!(task = %task.id, %topic, group, state = offset, "starting from the offset recorded in state");
        }
        task.next_offsets.insert(topic, offset.max(group));
    }
    Ok(())
}

impl Drop for TaskManager {
    /// Queries stop reading this worker's stores once it has no tasks.
    fn drop(&mut self) {
        self.queryable.stale();
    }
}

#[cfg(test)]
mod tests {
    //! Two task managers taking one task in turns, driven as the rebalance callbacks drive
    //! them, on the embedded broker.

    use super::*;
    use crate::reference::{self, Aggregate, RefEvent};
    use crate::EmbeddedBroker;
    use state_stores::KeyValueStore;

    const APP: &str = "resume-test";
    const ID: TaskId = TaskId {
        subtopology: 0,
        partition: 0,
    };

    struct Worker {
        tm: TaskManager,
        consumer: BaseConsumer,
    }

    impl Worker {
        fn start(
            broker: &EmbeddedBroker,
            topology: &Topology,
            name: &str,
            dir: &std::path::Path,
        ) -> Self {
            let config = StreamsConfig::new(APP, &broker.bootstrap_servers())
                .worker_id(name)
                .state_dir(dir);
            let changelogs: Vec<String> = crate::admin::internal_topics(topology, APP, |_| Some(1))
                .into_iter()
                .filter(|t| t.kind == crate::admin::InternalTopicKind::Changelog)
                .map(|t| t.name)
                .collect();
            let producer = Arc::new(crate::output::create_producer(&config, changelogs).unwrap());
            let sender = Sender::start(producer.clone(), name).unwrap();
            let consumer: BaseConsumer = config
                .client_config()
                .set("group.id", APP)
                .create()
                .unwrap();
            let tm = TaskManager::new(
                topology.clone(),
                config.clone(),
                Restorer::new(&config).unwrap(),
                producer,
                Some(sender),
                HashMap::from([(0, 1)]),
                Arc::new(WorkerStats::new()),
            )
            .unwrap();
            Worker { tm, consumer }
        }

        fn assignment() -> TopicPartitionList {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(reference::INPUT, 0);
            tpl
        }

        /// The rebalance callback's assignment; returns the offset input resumes at
        /// (`None`: the group's committed offset, as nothing else is known).
        fn assign(&mut self) -> Option<i64> {
            let positions = self
                .tm
                .on_assign(&self.consumer, &Self::assignment())
                .unwrap();
            match positions.elements()[0].offset() {
                rdkafka::Offset::Offset(o) => Some(o),
                _ => None,
            }
        }

        fn revoke(&mut self) {
            self.tm
                .on_revoke(&self.consumer, &Self::assignment())
                .unwrap();
        }

        /// Processes the input records at `offsets` (key `k`).
        fn process(&mut self, offsets: std::ops::Range<i64>) {
            for offset in offsets {
                let value = serde_json::to_vec(&RefEvent::new(offset as u64, "x")).unwrap();
                let rec = InRecord {
                    topic: reference::INPUT,
                    partition: 0,
                    offset,
                    timestamp: 1_000 + offset,
                    key: Some(b"k"),
                    value: Some(&value),
                };
                self.tm.process(&rec, Instant::now()).unwrap();
            }
        }

        /// The task's aggregate of key `k`.
        fn count(&self) -> u64 {
            let store = self.tm.tasks()[&ID].stores.get(reference::STORE).unwrap();
            let v = store.get("k").unwrap().expect("an aggregate of k");
            serde_json::from_slice::<Aggregate>(&v).unwrap().count
        }

        fn reopened(&self) -> u64 {
            self.tm.stats().reopened_tasks.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn a_suspended_task_resumes_unless_another_worker_wrote_its_partitions_meanwhile() {
        let broker = EmbeddedBroker::start().unwrap();
        let topology = reference::topology(reference::Options::default())
            .resolve(APP)
            .unwrap();
        for t in [reference::INPUT, reference::OUTPUT, reference::SUMMARIES] {
            broker.create_topic(t, 1).unwrap();
        }
        broker.create_internal_topics(&topology, APP, 1).unwrap();
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut w1 = Worker::start(&broker, &topology, "w1", d1.path());
        let mut w2 = Worker::start(&broker, &topology, "w2", d2.path());

        // A revocation and the next assignment with nobody in between: w1 resumes.
        assert_eq!(w1.assign(), None);
        w1.process(0..2);
        w1.revoke();
        assert_eq!(w1.assign(), Some(2));
        assert_eq!(w1.reopened(), 0, "nobody else wrote: the task resumes");
        assert_eq!(w1.count(), 2);
        w1.revoke();

        // A generation w1 missed: w2 owns the task and processes two more records.
        assert_eq!(w2.assign(), Some(2));
        assert_eq!(w2.count(), 2, "w2 restored w1's commit");
        w2.process(2..4);
        w2.revoke();

        // w1 gets the task back: it must start from w2's commit, not from its own.
        assert_eq!(w1.assign(), Some(4), "input resumes after w2's records");
        assert_eq!(w1.reopened(), 1);
        assert_eq!(w1.count(), 4, "the store holds w2's changes");
        w1.process(4..5);
        assert_eq!(w1.count(), 5);
    }
}
