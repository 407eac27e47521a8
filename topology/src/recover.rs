//! Recovery from a processor's own output, after restore and before processing (see
//! [`crate::ProcessorDef::recover_from`]).
//!
//! Under at_least_once a crash can come after a task sent events and before the commit
//! that covers them: the restored stores then lack events that consumers have already
//! seen. Re-processing the inputs would decide them again — perhaps differently, since
//! inputs of several topics may interleave differently and wall-clock deadlines may have
//! passed — and the log would hold two versions of the same moment. Instead, the task
//! reads its partition of the sink from the position its last commit recorded to the end
//! and hands every record to [`crate::Processor::recover`], which folds the events its
//! state lacks. Re-processed inputs are then duplicates the processor already applied.
//!
//! The sink is read like any consumer reads it: `read_committed` under exactly_once (on a
//! real broker the events of an aborted transaction are not there for anyone), and
//! whatever the broker returns otherwise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::StreamsConfig;
use crate::task::Task;
use crate::task_id::TaskId;
use crate::TopologyError;

/// How long reading one sink partition to its end may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Recovers every task of `ids` that has recovered sinks; returns the records read.
pub(crate) fn recover_tasks(
    config: &StreamsConfig,
    tasks: &mut BTreeMap<TaskId, Task>,
    ids: &[TaskId],
) -> Result<u64, TopologyError> {
    let mut consumer: Option<BaseConsumer> = None;
    let mut total = 0;
    for id in ids {
        let Some(task) = tasks.get_mut(id) else {
            continue;
        };
        for topic in task.recovered_topics() {
            let c = match consumer.as_ref() {
                Some(c) => c,
                None => consumer.insert(recovery_consumer(config)?),
            };
            total += recover_partition(c, task, &topic)?;
        }
    }
    Ok(total)
}

fn recovery_consumer(config: &StreamsConfig) -> Result<BaseConsumer, TopologyError> {
    crate::restore::own_topics_reader(config, "recover")
        .create()
        .map_err(|e| TopologyError::kafka("creating recovery consumer", e))
}

/// Reads `topic`'s partition of the task from its recorded position to the end.
fn recover_partition(
    consumer: &BaseConsumer,
    task: &mut Task,
    topic: &str,
) -> Result<u64, TopologyError> {
    let partition = task.id.partition;
    let recorded = task.recovery_start(topic)?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka("recovery watermarks", e))?;
    if recorded > 0 {
        // Events from `recorded` on are needed: dropped ones would be lost to the state.
        crate::truncation::check_low_watermark(topic, partition, recorded, low)?;
    }
    let start = recorded.max(low);
    tracing::debug!(task = %task.id, %topic, partition, recorded, low, high, "recovery plan");
    if start >= high {
        task.saw_sink_end(topic, start.max(high));
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(|e| TopologyError::kafka("recovery assignment", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| TopologyError::kafka("recovery assignment", e))?;
    let started = Instant::now();
    let wall = crate::deadlines::now_ms();
    let mut read = 0u64;
    let mut next = start;
    let mut high = high;
    while next < high {
        if started.elapsed() > READ_TIMEOUT {
            return Err(TopologyError::Config(format!(
                "recovery of task {} read {topic}[{partition}] only to offset {next} of {high} \
                 in {} s; is the broker reachable?",
                task.id,
                READ_TIMEOUT.as_secs()
            )));
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            // A transaction marker (exactly_once) takes an offset no message reports, and
            // often the last one: the consumer's position passes it.
            if let Some(at) = position(consumer, topic, partition)? {
                next = next.max(at);
                if next >= high {
                    high = crate::watermarks::end_after_read(consumer, topic, partition, high);
                }
            }
            continue;
        };
        let msg = msg.map_err(|e| TopologyError::kafka("recovery read", e))?;
        next = msg.offset() + 1;
        read += 1;
        if next >= high {
            high = crate::watermarks::end_after_read(consumer, topic, partition, high);
        }
        let (Some(key), Some(value)) = (msg.key(), msg.payload()) else {
            continue;
        };
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        let ts = msg.timestamp().to_millis().unwrap_or(wall);
        task.recover(topic, key, value, ts, wall)?;
    }
    task.saw_sink_end(topic, next.max(high));
    tracing::info!(task = %task.id, %topic, partition, from = start, to = high, records = read, "recovered from own output");
    Ok(read)
}

/// The consumer's position in `topic[partition]`, if it has one.
fn position(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, TopologyError> {
    let positions = consumer
        .position()
        .map_err(|e| TopologyError::kafka("recovery position", e))?;
    Ok(crate::watermarks::offset_in(&positions, topic, partition))
}
