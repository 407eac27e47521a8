//! The commit sequence, in the order that makes it safe.
//!
//! at_least_once ([`commit`]):
//! 0. let processors flush what they keep in memory (latest value per key);
//! 1. deliver the outputs (produced as records were processed): flush the producer and
//!    check every delivery — a failure stops here, before anything is logged, and the
//!    records are processed again after restart (a changelog record logged now would
//!    outlive the failure: the input offsets recorded in the task's state would make the
//!    restarted task skip the records whose outputs were lost). A processor that recovers
//!    its state from its own output (`ProcessorDef::recover_from`) relies on it too: no
//!    store change is logged whose event is not in the sink, and each task records how far
//!    its partition of that sink is covered;
//! 2. produce each store's buffered changes to its changelog, flush the producer and
//!    check every delivery — a failure stops here, offsets stay uncommitted;
//! 3. commit the input offsets;
//! 4. apply each store buffer to sled in one batch with the changelog checkpoint it
//!    reached, and flush sled. A crash between 3 and 4 leaves an older checkpoint: restore
//!    reads the changelog tail and catches up.
//!
//! exactly_once: one transaction per commit holds the buffered outputs, the changelog
//! records and the input offsets (`send_offsets_to_transaction`); store buffers are applied
//! only after `commit_transaction` succeeds and dropped on abort.
//!
//! On a real broker `read_committed` consumers (our restore consumers and any downstream
//! reader) also skip records of aborted transactions. The embedded broker does not filter
//! them, which is why outputs are buffered until the commit instead of produced eagerly:
//! a processor failure then leaves nothing in any topic, on any broker.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::gauge_parts::Series;
use crate::lifecycle::TaskState;
use crate::output;
use crate::task_id::TaskId;
use crate::task_manager::TaskManager;
use crate::{metrics as m, TopologyError};

const TIMEOUT: Duration = Duration::from_secs(30);
/// How often committed store batches are fsynced to disk.
const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Commits every task of the worker (see the module docs).
pub(crate) fn commit<C: ConsumerContext>(
    tm: &mut TaskManager,
    consumer: &BaseConsumer<C>,
) -> Result<(), TopologyError> {
    tm.flush_processors()?;
    let dirty = tm.tasks.values().any(|t| t.commit_needed());
    if !dirty {
        tm.committed();
        publish_gauges(tm, consumer);
        return Ok(());
    }
    let started = Instant::now();
    let eos = tm.eos();
    if eos {
        tm.producer
            .begin_transaction()
            .map_err(|e| TopologyError::kafka("begin transaction", e))?;
    }
    let result = produce_and_commit(tm, consumer, eos);
    if let Err(e) = &result {
        if eos {
            tracing::error!(error = %e, "commit failed; aborting transaction");
            let _ = tm.producer.abort_transaction(TIMEOUT);
            tm.abort_all();
        }
        return result.map(|_| ());
    }
    let logged = result?;
    // Stores: buffered writes + checkpoint in one sled batch per store. Batches are atomic
    // (data and checkpoint together); making them durable with an fsync is only needed
    // now and then: after a crash sled recovers a consistent prefix of batches, and
    // restore reads the changelog from that older checkpoint.
    let flush = tm.last_flush.elapsed() >= FLUSH_INTERVAL;
    if flush {
        tm.last_flush = Instant::now();
        report_store_sizes(tm);
    }
    for (id, task) in tm.tasks.iter_mut() {
        let mut checkpoints = HashMap::new();
        if let Some(stores) = logged.get(id) {
            for (store, topic) in stores {
                if let Some(off) = tm.producer.context().changelog_offset(topic, id.partition) {
                    checkpoints.insert(store.clone(), off + 1);
                }
            }
        }
        task.post_commit(&checkpoints, flush)?;
    }
    tm.buffered = 0;
    tm.committed();
    tm.stats.commits.fetch_add(1, Ordering::Relaxed);
    metrics::counter!(m::COMMITS).increment(1);
    metrics::histogram!(m::COMMIT_LATENCY).record(started.elapsed().as_secs_f64());
    publish_gauges(tm, consumer);
    Ok(())
}

/// Per task, the (store, changelog topic) pairs this commit produced records for.
type Logged = HashMap<TaskId, HashSet<(String, Arc<str>)>>;

fn produce_and_commit<C: ConsumerContext>(
    tm: &mut TaskManager,
    consumer: &BaseConsumer<C>,
    eos: bool,
) -> Result<Logged, TopologyError> {
    let mut logged: Logged = HashMap::new();
    let mut offsets = TopicPartitionList::new();
    if !eos {
        // No store change (the input offsets included) is logged before the outputs of
        // the records it covers are delivered: see the module docs, step 1.
        deliver_outputs(tm)?;
    }
    for (id, task) in tm.tasks.iter_mut() {
        if eos {
            for rec in task.out.drain(..) {
                output::send(&tm.producer, &rec)?;
            }
        }
        let delivered = tm.producer.context();
        task.record_sink_ends(|topic, partition| delivered.changelog_offset(topic, partition))?;
        for (store, rec) in task.prepare_commit()? {
            logged
                .entry(*id)
                .or_default()
                .insert((store, rec.topic.clone()));
            output::send(&tm.producer, &rec)?;
        }
        for (topic, next) in &task.next_offsets {
            offsets
                .add_partition_offset(topic, id.partition, Offset::Offset(*next))
                .map_err(|e| TopologyError::kafka("offset list", e))?;
        }
    }
    if eos {
        if offsets.count() > 0 {
            let meta = consumer
                .group_metadata()
                .ok_or_else(|| TopologyError::Config("consumer has no group metadata".into()))?;
            tm.producer
                .send_offsets_to_transaction(&offsets, &meta, TIMEOUT)
                .map_err(|e| TopologyError::kafka("send offsets to transaction", e))?;
        }
        tm.producer
            .commit_transaction(TIMEOUT)
            .map_err(|e| TopologyError::kafka("commit transaction", e))?;
    } else {
        deliver_outputs(tm)?;
    }
    check_deliveries(tm)?;
    if !eos && offsets.count() > 0 {
        match consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => {
                tracing::debug!(offsets = %crate::watermarks::describe(&offsets), "offsets committed")
            }
            Err(e) if is_rebalancing(&e) => {
                // The group is rebalancing: the offsets are committed again at the next
                // commit (kept tasks are re-positioned at their own offsets on assign), or
                // the partition's new owner re-processes them (at-least-once).
                tracing::warn!(error = %e, "offset commit refused during a rebalance; will retry");
            }
            Err(e) => return Err(TopologyError::kafka("commit offsets", e)),
        }
    }
    Ok(logged)
}

/// at_least_once: hands the sender's pending outputs to the producer and waits until
/// every record sent so far is acknowledged (or failed).
fn deliver_outputs(tm: &mut TaskManager) -> Result<(), TopologyError> {
    if let Some(sender) = tm.sender.as_mut() {
        sender.drain()?;
    }
    output::flush_producer(&tm.producer, TIMEOUT)
        .map_err(|e| TopologyError::kafka("flush producer", e))?;
    check_deliveries(tm)
}

/// Fails the commit when any record sent since the last check was not delivered.
fn check_deliveries(tm: &TaskManager) -> Result<(), TopologyError> {
    let errors = tm.producer.context().take_errors();
    if !errors.is_empty() {
        return Err(TopologyError::Delivery(errors.join("; ")));
    }
    Ok(())
}

/// Keys per store across this worker's tasks (an O(keys) scan, so only every flush and
/// after a rebalance).
pub(crate) fn report_store_sizes(tm: &TaskManager) {
    let mut parts = Vec::new();
    for task in tm.tasks.values() {
        for (store, n) in task.store_sizes() {
            parts.push((Series::new(m::STORE_KEYS).label("store", store), n as f64));
        }
    }
    tm.store_gauges.publish(parts);
}

fn is_rebalancing(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::RebalanceInProgress
                | C::IllegalGeneration
                | C::UnknownMemberId
                | C::NotCoordinator
                | C::CoordinatorLoadInProgress
        )
    )
}

/// States this worker's part of the process gauges, derived from its running tasks: the
/// lag of each input partition, the number of tasks, and what the processors set with
/// `Context::set_gauge`. A suspended or closed task contributes nothing.
pub(crate) fn publish_gauges<C: ConsumerContext>(tm: &TaskManager, consumer: &BaseConsumer<C>) {
    let mut parts = Vec::new();
    let mut running = 0;
    for (id, task) in &tm.tasks {
        if task.state != TaskState::Running {
            continue;
        }
        running += 1;
        for (topic, next) in &task.next_offsets {
            if let Some(high) = crate::watermarks::cached_high(consumer, topic, id.partition) {
                let series = Series::new(m::CONSUMER_LAG)
                    .label("topic", topic.as_str())
                    .label("partition", id.partition.to_string());
                parts.push((series, (high - next).max(0) as f64));
            }
        }
        for (name, value) in task.gauges() {
            parts.push((Series::new(name), value));
        }
    }
    parts.push((Series::new(m::ACTIVE_TASKS), f64::from(running)));
    tm.task_gauges.publish(parts);
}
