//! Truncation checks: a topic that must be kept whole (a store's changelog, a canonical
//! event log) whose log no longer starts where a reader needs it has lost records.
//!
//! A real Kafka cluster only moves a partition's log start offset when retention deletes
//! segments or someone calls DeleteRecords; compaction keeps the log's first offset. The
//! changelogs are `cleanup.policy=compact` and `match-events` keeps everything, so there a
//! log start offset above the offset a reader starts from means records were deleted. The
//! embedded broker (librdkafka's mock cluster) does it on its own: it keeps at most
//! [`EMBEDDED_MAX_PARTITION_BYTES`] or [`EMBEDDED_MAX_PARTITION_BATCHES`] per partition and
//! drops the oldest batches beyond that, without a word. Reading such a log from its new
//! start would rebuild a store without the keys of the dropped records (or fold a partial
//! event log) as if nothing were missing; these checks turn that into an error saying what
//! happened and what to do.
//!
//! ```
//! use topology::truncation::check_low_watermark;
//! // A store checkpointed at 120 restores from 120: a log that starts at 100 still has it.
//! assert!(check_low_watermark("app-matches-changelog", 3, 120, 100).is_ok());
//! // A fresh store restores from 0: a log that starts at 100 lost records 0..100.
//! let err = check_low_watermark("app-matches-changelog", 3, 0, 100).unwrap_err();
//! assert!(err.to_string().contains("app-matches-changelog[3]"));
//! ```

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::TopologyError;

/// The embedded broker keeps at most this many bytes of record batches per partition
/// (librdkafka `rdkafka_mock.c`, `max_size`).
pub const EMBEDDED_MAX_PARTITION_BYTES: u64 = 5 * 1024 * 1024;
/// The embedded broker keeps at most this many record batches per partition
/// (librdkafka `rdkafka_mock.c`, `max_cnt`).
pub const EMBEDDED_MAX_PARTITION_BATCHES: u64 = 100_000;

/// What to do about a truncated log (part of the error's message).
pub const ADVICE: &str = "the broker dropped the oldest records (the embedded broker keeps at most about 5 MiB or 100,000 batches per partition and drops older ones without a word); run on a broker that keeps data (a real Kafka cluster, see the README) or play fewer matches per broker run, then start over with fresh state (empty stores: a new state directory)";

/// Whether a reader that needs `topic[partition]` from `from_offset` on can read it whole,
/// given the partition's log start offset (`low`, its low watermark).
///
/// `from_offset`: where the reader starts (a store's changelog checkpoint; 0 for an empty
/// store or a fold from the beginning). A log that starts at or before it is fine.
pub fn check_low_watermark(
    topic: &str,
    partition: i32,
    from_offset: i64,
    low: i64,
) -> Result<(), TopologyError> {
    if low > from_offset.max(0) {
        return Err(TopologyError::Truncated {
            topic: topic.to_string(),
            partition,
            log_start: low,
            needed_from: from_offset.max(0),
            advice: ADVICE,
        });
    }
    Ok(())
}

/// Reads `topic[partition]`'s watermarks with `consumer` and checks the log still starts
/// at or before `from_offset` (see [`check_low_watermark`]).
pub fn check_whole<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    from_offset: i64,
) -> Result<(), TopologyError> {
    let (low, _high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka(format!("watermarks of {topic}[{partition}]"), e))?;
    check_low_watermark(topic, partition, from_offset, low)
}

/// Checks every partition of `topic` still starts at offset 0 (a fold from the beginning,
/// like `orchestra replay`, needs the whole log). A topic the broker does not know is not
/// truncated.
pub fn check_topic_whole<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<(), TopologyError> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka(format!("metadata of {topic}"), e))?;
    let Some(t) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    else {
        return Ok(());
    };
    for p in t.partitions() {
        check_whole(consumer, topic, p.id(), 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_that_starts_at_or_before_the_reader_is_whole() {
        assert!(check_low_watermark("t", 0, 0, 0).is_ok());
        assert!(check_low_watermark("t", 0, 50, 50).is_ok());
        assert!(check_low_watermark("t", 0, 50, 10).is_ok());
        // A checkpoint above the log's end is the restore's business (topic recreated).
        assert!(check_low_watermark("t", 0, 500, 0).is_ok());
    }

    #[test]
    fn a_log_that_starts_after_the_reader_names_topic_partition_offsets_and_what_to_do() {
        let e = check_low_watermark("app-matches-changelog", 5, 10, 40).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("app-matches-changelog[5]"), "{msg}");
        assert!(msg.contains("starts at offset 40"), "{msg}");
        assert!(msg.contains("from offset 10"), "{msg}");
        assert!(msg.contains("real Kafka"), "{msg}");
        assert!(matches!(
            e,
            TopologyError::Truncated {
                log_start: 40,
                needed_from: 10,
                ..
            }
        ));
        // A negative "from" (no checkpoint) means the beginning.
        assert!(check_low_watermark("t", 0, -1, 1).is_err());
    }

    /// On the embedded broker: a partition that received more than its cap has lost its
    /// oldest records; a reader from 0 is refused, a reader from the end is fine.
    #[test]
    fn a_partition_the_embedded_broker_truncated_is_refused_from_the_beginning() {
        let broker = crate::EmbeddedBroker::start().expect("broker");
        let bootstrap = broker.bootstrap_servers();
        broker.create_topic("whole", 1).expect("topic");
        broker.create_topic("cut", 1).expect("topic");
        let value = vec![b'x'; 100 * 1024];
        let big: Vec<(String, Vec<u8>)> =
            (0..60).map(|i| (format!("k{i}"), value.clone())).collect();
        crate::testing::produce(&bootstrap, "cut", &big, 0).expect("produce");
        crate::testing::produce(&bootstrap, "whole", &big[..10], 0).expect("produce");
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("consumer");
        let (low, high) = consumer
            .fetch_watermarks("cut", 0, Duration::from_secs(10))
            .expect("watermarks");
        assert!(low > 0 && high == 60, "low {low} high {high}");
        match check_whole(&consumer, "cut", 0, 0) {
            Err(TopologyError::Truncated {
                log_start,
                needed_from: 0,
                ..
            }) => assert_eq!(log_start, low),
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert!(check_whole(&consumer, "cut", 0, low).is_ok());
        assert!(check_whole(&consumer, "cut", 0, high).is_ok());
        assert!(check_topic_whole(&consumer, "cut").is_err());
        assert!(check_topic_whole(&consumer, "whole").is_ok());
        assert!(check_topic_whole(&consumer, "no-such-topic").is_ok());
    }
}
