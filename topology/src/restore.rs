//! Restore before process: replay each new task's changelog partitions into its stores.
//!
//! A task's stores start from their checkpoint (next changelog offset, kept in the same
//! sled batch as the data). The tasks being restored are split between the worker's
//! restore consumers (`StreamsConfig::restore_consumers`, whole tasks each, balanced by
//! records), which read and apply on their own threads; each is assigned all of its
//! changelog partitions at once, so they are fetched in parallel too. One consumer's
//! poll loop, not the broker, is the limit of a restore (docs/benchmarks.md). Each batch keeps only the latest value per
//! key before it is written, with the offset it reaches, in one sled batch. A checkpoint
//! outside the changelog's offsets (the topic was recreated, or truncated by retention)
//! wipes the store and restores from the start.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;
use state_stores::Batch;

use crate::config::StreamsConfig;
use crate::gauge_parts::{GaugeParts, Series};
use crate::parallel::join_all;
use crate::task::Task;
use crate::task_id::TaskId;
use crate::watermarks;
use crate::{metrics as m, TopologyError};

/// Records per store buffered before a batch is written.
const BATCH: usize = 20_000;
/// A restore that makes no progress for this long fails.
const STALL: Duration = Duration::from_secs(60);

/// Owns the restore consumers of a worker.
pub(crate) struct Restorer {
    consumers: Vec<BaseConsumer>,
    /// This worker's part of the records-left-to-restore gauge.
    remaining: GaugeParts,
}

struct Target {
    topic: String,
    partition: i32,
    task: TaskId,
    store: String,
    end: i64,
    done: bool,
    pending: FxHashMap<Vec<u8>, Option<Vec<u8>>>,
    last_offset: i64,
}

/// The tasks one restore consumer restores, with their changelog partitions.
struct Group<'t> {
    tasks: BTreeMap<TaskId, &'t mut Task>,
    targets: Vec<Target>,
}

impl Restorer {
    pub fn new(config: &StreamsConfig) -> Result<Self, TopologyError> {
        let consumers = (0..config.restore_consumers.max(1))
            .map(|i| restore_consumer(config, i))
            .collect::<Result<_, _>>()?;
        let remaining = GaugeParts::new();
        // Stated at 0 from the start: "nothing to restore" reads 0, not "no data".
        remaining.publish([(Series::new(m::RESTORE_REMAINING), 0.0)]);
        // Registered without changing it (another worker of the process may have set it).
        metrics::gauge!(m::RESTORE_RATE).increment(0.0);
        Ok(Self {
            consumers,
            remaining,
        })
    }

    /// Connects to the cluster and learns the changelog topics' leaders now (every
    /// consumer at once), so the first restore does not pay for connection set-up.
    pub fn warm_up(&self, changelogs: &[String]) {
        std::thread::scope(|scope| {
            for c in &self.consumers {
                scope.spawn(move || {
                    for t in changelogs {
                        if let Err(e) = c.fetch_metadata(Some(t), Duration::from_secs(10)) {
                            tracing::debug!(topic = %t, error = %e, "restore consumer warm-up");
                        }
                    }
                });
            }
        });
    }

    /// Each partition's low and high watermarks, asked for all at once.
    pub fn watermarks(&self, partitions: &[(&str, i32)]) -> Vec<Result<(i64, i64), TopologyError>> {
        let consumer = &self.consumers[0];
        std::thread::scope(|scope| {
            let handles: Vec<_> = partitions
                .iter()
                .map(|&(topic, partition)| {
                    scope.spawn(move || {
                        consumer
                            .fetch_watermarks(topic, partition, Duration::from_secs(10))
                            .map_err(|e| {
                                TopologyError::kafka(
                                    format!("watermarks of {topic}[{partition}]"),
                                    e,
                                )
                            })
                    })
                })
                .collect();
            join_all(handles, "watermark")
        })
    }

    /// Restores the stores of `ids`; returns the number of changelog records read.
    pub fn restore(
        &self,
        tasks: &mut BTreeMap<TaskId, Task>,
        ids: &[TaskId],
    ) -> Result<u64, TopologyError> {
        let started = Instant::now();
        let mut total: i64 = 0;
        // Every changelog partition's offsets, fetched in parallel.
        let mut plan = Vec::new();
        for id in ids {
            let Some(task) = tasks.get(id) else { continue };
            for (store, topic, checkpoint) in task.restore_plan()? {
                plan.push((*id, store, topic, checkpoint));
            }
        }
        let consumer = &self.consumers[0];
        let partitions: Vec<(&str, i32)> = plan
            .iter()
            .map(|(id, _, topic, _)| (topic.as_str(), id.partition))
            .collect();
        let marks = self.watermarks(&partitions);
        let mut targets: Vec<Target> = Vec::new();
        for ((id, store, topic, checkpoint), marks) in plan.into_iter().zip(marks) {
            let (low, mut high) = marks?;
            if let Some(cp) = checkpoint.filter(|cp| *cp > high && *cp >= low) {
                // A checkpoint past the end ListOffsets gave: a fetch decides (see
                // `watermarks`: some brokers answer the end of a multi-record batch wrong).
                if let Some(end) = watermarks::probe_end(consumer, &topic, id.partition, cp - 1)? {
                    high = high.max(end);
                }
            }
            // A store must be rebuilt from the changelog record it is missing on: a log
            // that starts later lost them (retention, or the embedded broker's cap).
            let needed_from = match checkpoint {
                Some(cp) if cp <= high => cp,
                _ => 0,
            };
            crate::truncation::check_low_watermark(&topic, id.partition, needed_from, low)?;
            let Some(task) = tasks.get_mut(&id) else {
                continue;
            };
            let s = task
                .stores
                .get_mut(&store)
                .ok_or_else(|| TopologyError::Invalid(format!("no store {store}")))?;
            let (start, wipe) = restore_start(checkpoint, low, high);
            match (wipe, checkpoint) {
                (Wipe::Yes, Some(cp)) => {
                    tracing::warn!(task = %id, %store, checkpoint = cp, low, high, "checkpoint outside the changelog; wiping the store and restoring from the start");
                    s.wipe()?;
                }
                (Wipe::IfNotEmpty, _) if !s.backend_is_empty()? => s.wipe()?,
                _ => {}
            }
            tracing::debug!(task = %id, %topic, ?checkpoint, low, high, start, "restore plan");
            if start >= high {
                continue;
            }
            total += high - start;
            targets.push(Target {
                topic,
                partition: id.partition,
                task: id,
                store,
                end: high,
                done: false,
                pending: FxHashMap::default(),
                last_offset: start - 1,
            });
        }
        if targets.is_empty() {
            return Ok(0);
        }
        let groups = self.groups(tasks, targets);
        tracing::info!(
            partitions = groups.iter().map(|g| g.targets.len()).sum::<usize>(),
            records = total,
            consumers = groups.len(),
            planning_ms = started.elapsed().as_millis() as u64,
            "restoring"
        );
        let progress = AtomicU64::new(0);
        let results: Vec<Result<u64, TopologyError>> = std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel::<()>();
            let handles: Vec<_> = groups
                .into_iter()
                .zip(&self.consumers)
                .map(|(g, consumer)| {
                    let (tx, progress) = (tx.clone(), &progress);
                    scope.spawn(move || {
                        let read = g.run(consumer, progress);
                        let _ = tx.send(());
                        read
                    })
                })
                .collect();
            drop(tx);
            // Progress once a second until every consumer is done.
            let mut last_log = Instant::now();
            while let Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(1))
            {
                if last_log.elapsed() >= Duration::from_secs(1) {
                    last_log = Instant::now();
                    let done = progress.load(Ordering::Relaxed);
                    tracing::info!(done, total, "restore progress");
                    let left = (total - done as i64).max(0) as f64;
                    self.remaining
                        .publish([(Series::new(m::RESTORE_REMAINING), left)]);
                }
            }
            join_all(handles, "restore")
        });
        let mut read = 0;
        for r in results {
            read += r?;
        }
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        self.remaining
            .publish([(Series::new(m::RESTORE_REMAINING), 0.0)]);
        metrics::gauge!(m::RESTORE_RATE).set(read as f64 / secs);
        metrics::counter!(m::RESTORED_RECORDS).increment(read);
        tracing::info!(records = read, seconds = secs, "restore done");
        Ok(read)
    }

    /// Splits the targets between the consumers by task (a task's stores are written by
    /// one thread), balancing the records each reads: the largest task goes to the
    /// consumer with the fewest records so far.
    fn groups<'t>(
        &self,
        tasks: &'t mut BTreeMap<TaskId, Task>,
        targets: Vec<Target>,
    ) -> Vec<Group<'t>> {
        let mut per_task: BTreeMap<TaskId, (i64, Vec<Target>)> = BTreeMap::new();
        for t in targets {
            let e = per_task.entry(t.task).or_default();
            e.0 += t.end - (t.last_offset + 1);
            e.1.push(t);
        }
        let mut order: Vec<(TaskId, i64)> = per_task.iter().map(|(id, e)| (*id, e.0)).collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let k = self.consumers.len().min(order.len()).max(1);
        let mut groups: Vec<Group<'t>> = (0..k)
            .map(|_| Group {
                tasks: BTreeMap::new(),
                targets: Vec::new(),
            })
            .collect();
        // Records each consumer reads so far.
        let mut loads = vec![0i64; k];
        let mut group_of: BTreeMap<TaskId, usize> = BTreeMap::new();
        for (id, records) in order {
            let g = (0..k).min_by_key(|g| loads[*g]).unwrap_or(0);
            loads[g] += records;
            if let Some((_, ts)) = per_task.remove(&id) {
                groups[g].targets.extend(ts);
            }
            group_of.insert(id, g);
        }
        for (id, task) in tasks.iter_mut() {
            if let Some(g) = group_of.get(id) {
                groups[*g].tasks.insert(*id, task);
            }
        }
        groups
    }
}

impl Drop for Restorer {
    /// Closes the consumers in parallel (each close waits on the cluster).
    fn drop(&mut self) {
        std::thread::scope(|scope| {
            for c in self.consumers.drain(..) {
                scope.spawn(move || drop(c));
            }
        });
    }
}

/// Settings of a consumer that reads the worker's own topics by assignment (restore,
/// recovery): no group membership or commits, and what the worker itself wrote under
/// its guarantee (transactions only under exactly_once).
pub(crate) fn own_topics_reader(config: &StreamsConfig, name: &str) -> rdkafka::ClientConfig {
    let mut c = config.client_config();
    c.set("group.id", format!("{}-{name}", config.application_id))
        .set(
            "client.id",
            format!("{}-{}-{name}", config.application_id, config.worker_id),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "isolation.level",
            match config.processing_guarantee {
                crate::ProcessingGuarantee::ExactlyOnce => "read_committed",
                crate::ProcessingGuarantee::AtLeastOnce => "read_uncommitted",
            },
        )
        // librdkafka's default of 1 s would postpone a fetch that follows a full queue.
        .set("fetch.queue.backoff.ms", "10");
    c
}

fn restore_consumer(config: &StreamsConfig, i: usize) -> Result<BaseConsumer, TopologyError> {
    own_topics_reader(config, &format!("restore-{i}"))
        .set("group.id", format!("{}-restore", config.application_id))
        .set("fetch.max.bytes", "104857600")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "200000")
        .create()
        .map_err(|e| TopologyError::kafka("creating restore consumer", e))
}

impl Group<'_> {
    /// Reads the group's changelog partitions to their ends with `consumer` and applies
    /// them; returns the records read. `progress` counts records across all groups.
    fn run(self, consumer: &BaseConsumer, progress: &AtomicU64) -> Result<u64, TopologyError> {
        let Group {
            mut tasks,
            mut targets,
        } = self;
        let mut tpl = TopicPartitionList::new();
        for t in &targets {
            tpl.add_partition_offset(&t.topic, t.partition, Offset::Offset(t.last_offset + 1))
                .map_err(|e| TopologyError::kafka("restore assignment", e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| TopologyError::kafka("assign restore consumer", e))?;
        let mut read: u64 = 0;
        let mut reported: u64 = 0;
        // The clock is read when the consumer idles, not per record.
        let mut last_progress = Instant::now();
        let mut polled: u64 = 0;
        let mut polled_at_idle: u64 = 0;
        let mut remaining = targets.len();
        // With one changelog topic (one store per task) a partition names its target, and
        // the topic name need not be read from every message.
        let one_topic = targets.iter().all(|t| t.topic == targets[0].topic);
        while remaining > 0 {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(msg)) => {
                    polled += 1;
                    let partition = msg.partition();
                    let Some(t) = targets.iter_mut().find(|t| {
                        t.partition == partition && (one_topic || t.topic == msg.topic())
                    }) else {
                        continue;
                    };
                    if t.done {
                        continue;
                    }
                    read += 1;
                    if let Some(k) = msg.key() {
                        // Latest value per key: reuse the buffers of a key seen before in
                        // this batch instead of allocating per record.
                        match (t.pending.get_mut(k), msg.payload()) {
                            (Some(Some(buf)), Some(v)) => {
                                buf.clear();
                                buf.extend_from_slice(v);
                            }
                            (Some(slot), v) => *slot = v.map(<[u8]>::to_vec),
                            (None, v) => {
                                t.pending.insert(k.to_vec(), v.map(<[u8]>::to_vec));
                            }
                        }
                    }
                    t.last_offset = msg.offset();
                    if t.pending.len() >= BATCH {
                        apply_restored(&mut tasks, t)?;
                    }
                    if msg.offset() + 1 >= t.end {
                        t.end = watermarks::end_after_read(consumer, &t.topic, t.partition, t.end);
                    }
                    if msg.offset() + 1 >= t.end {
                        // Its last batch is applied with the others, in parallel, below.
                        t.done = true;
                        remaining -= 1;
                    }
                    if read - reported >= 4_096 {
                        progress.fetch_add(read - reported, Ordering::Relaxed);
                        reported = read;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {
                    if polled != polled_at_idle {
                        polled_at_idle = polled;
                        last_progress = Instant::now();
                    }
                    // Transaction markers occupy offsets no message reports: compare positions.
                    let positions = consumer
                        .position()
                        .map_err(|e| TopologyError::kafka("restore position", e))?;
                    for e in positions.elements() {
                        let t = targets
                            .iter_mut()
                            .find(|t| t.partition == e.partition() && t.topic == e.topic());
                        if let (Some(t), Offset::Offset(pos)) = (t, e.offset()) {
                            if !t.done && pos >= t.end {
                                t.last_offset = pos - 1;
                                t.done = true;
                                remaining -= 1;
                            }
                        }
                    }
                    if remaining > 0 && last_progress.elapsed() > STALL {
                        let (topic, partition) = targets
                            .iter()
                            .find(|t| !t.done)
                            .map(|t| (t.topic.clone(), t.partition))
                            .unwrap_or_default();
                        return Err(TopologyError::Restore {
                            topic,
                            partition,
                            reason: format!("no progress for {} s", STALL.as_secs()),
                        });
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "restore consumer error"),
            }
        }
        progress.fetch_add(read - reported, Ordering::Relaxed);
        consumer
            .assign(&TopicPartitionList::new())
            .map_err(|e| TopologyError::kafka("unassign restore consumer", e))?;
        apply_last_batches(tasks, &mut targets)?;
        Ok(read)
    }
}

/// Whether a store is wiped before its restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wipe {
    No,
    /// The checkpoint is not in the changelog's offsets: the topic was recreated or
    /// truncated by retention, and the store's contents cannot be trusted.
    Yes,
    /// No checkpoint: anything in the store was never checkpointed against this log.
    IfNotEmpty,
}

/// Where a store's restore starts, given its checkpoint (next changelog offset) and the
/// changelog partition's `low`..`high` offsets, and whether the store is wiped first.
pub(crate) fn restore_start(checkpoint: Option<i64>, low: i64, high: i64) -> (i64, Wipe) {
    match checkpoint {
        Some(cp) if cp >= low && cp <= high => (cp, Wipe::No),
        Some(_) => (low, Wipe::Yes),
        None => (low, Wipe::IfNotEmpty),
    }
}

/// Applies every target's last batch and checkpoint, the tasks in parallel (each task has
/// its own database, so their writes do not contend; sled inserts of distinct keys are
/// the slow part of a restore's tail).
fn apply_last_batches(
    mut tasks: BTreeMap<TaskId, &mut Task>,
    targets: &mut [Target],
) -> Result<(), TopologyError> {
    let mut by_task: BTreeMap<TaskId, Vec<&mut Target>> = BTreeMap::new();
    for t in targets.iter_mut() {
        by_task.entry(t.task).or_default().push(t);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = tasks
            .iter_mut()
            .filter_map(|(id, task)| by_task.remove(id).map(|ts| (task, ts)))
            .map(|(task, ts)| {
                scope.spawn(move || ts.into_iter().try_for_each(|t| apply_target(task, t)))
            })
            .collect();
        join_all(handles, "restore apply")
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
    })?;
    match by_task.into_keys().next() {
        Some(id) => Err(TopologyError::Invalid(format!(
            "task {id} vanished during restore"
        ))),
        None => Ok(()),
    }
}

fn apply_restored(
    tasks: &mut BTreeMap<TaskId, &mut Task>,
    t: &mut Target,
) -> Result<(), TopologyError> {
    let task = tasks.get_mut(&t.task).ok_or_else(|| {
        TopologyError::Invalid(format!("task {} vanished during restore", t.task))
    })?;
    apply_target(task, t)
}

fn apply_target(task: &mut Task, t: &mut Target) -> Result<(), TopologyError> {
    let store = task
        .stores
        .get_mut(&t.store)
        .ok_or_else(|| TopologyError::Invalid(format!("no store {}", t.store)))?;
    let mut writes = Vec::with_capacity(t.pending.len());
    for (k, v) in t.pending.drain() {
        match String::from_utf8(k) {
            Ok(k) => writes.push((k, v)),
            Err(_) => {
                tracing::warn!(store = %t.store, "changelog record with a non UTF-8 key skipped")
            }
        }
    }
    store.restore(Batch {
        writes,
        checkpoint: Some(t.last_offset + 1),
    })?;
    // No fsync here: the next commit's periodic flush makes it durable, and a crash
    // before that only means restoring from the older checkpoint again.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_inside_the_changelog_restores_from_it() {
        assert_eq!(restore_start(Some(40), 10, 100), (40, Wipe::No));
        assert_eq!(restore_start(Some(10), 10, 100), (10, Wipe::No));
        // At the end: nothing to read.
        assert_eq!(restore_start(Some(100), 10, 100), (100, Wipe::No));
    }

    #[test]
    fn a_checkpoint_outside_the_changelog_wipes_the_store_and_restores_from_the_start() {
        // Past the end: the topic was recreated (shorter than the store remembers).
        assert_eq!(restore_start(Some(120), 10, 100), (10, Wipe::Yes));
        // Before the start: retention dropped records the store never saw.
        assert_eq!(restore_start(Some(5), 10, 100), (10, Wipe::Yes));
    }

    #[test]
    fn a_store_without_a_checkpoint_restores_everything_into_an_empty_store() {
        assert_eq!(restore_start(None, 0, 100), (0, Wipe::IfNotEmpty));
    }
}
