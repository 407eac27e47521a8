//! Where a partition ends, as the broker last said.
//!
//! Readers that must reach a partition's end (restore, recovery) ask the broker with
//! ListOffsets before they start, then read. Some Kafka-protocol brokers answer
//! ListOffsets "latest" wrongly: Tansu 0.6 answers the first offset of the last record
//! batch + 1, so a reader stopping there misses the rest of that batch. Fetch responses
//! carry the partition's high watermark too, and librdkafka keeps the latest one;
//! [`end_after_read`] takes the larger of the two, so a reader that reached the end it was
//! told goes on when a fetch says there is more. On Apache Kafka both always agree and
//! the check is a local call.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;

/// The high watermark librdkafka last saw in a fetch response (no network round trip).
pub(crate) fn cached_high<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: valid client handle and C string; librdkafka writes two i64 values.
    let err = unsafe {
        rdkafka_sys::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// The end to read `topic[partition]` to, once a reader reached `end` (the end it was
/// given before reading): the larger of `end` and the high watermark of the last fetch.
pub(crate) fn end_after_read<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    end: i64,
) -> i64 {
    cached_high(consumer, topic, partition).map_or(end, |h| h.max(end))
}

/// The end of `topic[partition]` as a fetch from offset `at` reports it (at least `at`
/// when a record is there): for a reader told an end below a position it knows was
/// written (a checkpoint past ListOffsets' answer), one fetch settles who is right. Takes
/// over `consumer`'s assignment; a time-out answers `None`.
pub(crate) fn probe_end<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    at: i64,
) -> Result<Option<i64>, crate::TopologyError> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(at))
        .map_err(|e| crate::TopologyError::kafka("probe assignment", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| crate::TopologyError::kafka("probe assignment", e))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = None;
    while std::time::Instant::now() < deadline && seen.is_none() {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(m)) => seen = Some(m.offset() + 1),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => seen = Some(at),
            _ => {}
        }
    }
    consumer
        .assign(&rdkafka::TopicPartitionList::new())
        .map_err(|e| crate::TopologyError::kafka("probe unassignment", e))?;
    Ok(seen.map(|s| end_after_read(consumer, topic, partition, s)))
}

/// The offset `list` holds for `topic[partition]`, if it is an offset (not a logical one
/// such as "invalid" or "beginning").
pub(crate) fn offset_in(
    list: &rdkafka::TopicPartitionList,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    match list.find_partition(topic, partition)?.offset() {
        rdkafka::Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// `topic[partition]=offset, …` of a partition list (for logs).
pub(crate) fn describe(list: &rdkafka::TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| format!("{}[{}]={:?}", e.topic(), e.partition(), e.offset()))
        .collect::<Vec<_>>()
        .join(", ")
}
