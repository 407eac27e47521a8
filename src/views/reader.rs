//! Consumers that read a topic by assignment (no group membership, no commits), shared by
//! [`LatestView`](super::LatestView) and `tail`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Context of the reading consumers: partition-EOF events are expected (they mark "read
/// to the end"), so they are not logged as client errors the way the default context does.
pub(super) struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::warn!(%error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for ReaderContext {}

pub(super) type Reader = BaseConsumer<ReaderContext>;

/// A consumer configured for reading by assignment: a private group id (never used for
/// commits), no auto commit, and partition-EOF events so "read to the end" is observable.
pub(super) fn assign_consumer(client: &ClientConfig, purpose: &str) -> Result<Reader> {
    let mut cfg = client.clone();
    cfg.set("group.id", format!("orchestra-{purpose}-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    cfg.create_with_context(ReaderContext)
        .with_context(|| format!("creating the {purpose} consumer"))
}

/// Partition ids of `topic`; an error if the topic does not exist.
pub(super) fn partitions_of(consumer: &Reader, topic: &str) -> Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("fetching metadata of topic `{topic}`"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("topic `{topic}` not found"))?;
    if let Some(err) = t.error() {
        bail!("topic `{topic}`: {:?}", RDKafkaErrorCode::from(err));
    }
    let ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if ids.is_empty() {
        bail!("topic `{topic}` has no partitions (does it exist?)");
    }
    Ok(ids)
}

pub(super) fn assign(
    consumer: &Reader,
    topic: &str,
    partitions: &[i32],
    offset: Offset,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, offset)
            .with_context(|| format!("assigning {topic}/{p}"))?;
    }
    consumer
        .assign(&tpl)
        .with_context(|| format!("assigning the partitions of `{topic}`"))
}

/// High watermark per partition.
pub(super) fn high_watermarks(
    consumer: &Reader,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>> {
    let mut out = BTreeMap::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .with_context(|| format!("fetching the watermarks of {topic}/{p}"))?;
        out.insert(*p, high);
    }
    Ok(out)
}
