//! The stream worker's side of a commit: [`CommitProducer`] and [`OffsetCommitter`] over
//! the worker's Kafka producer (and its sender thread) and its consumer.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::commit::{CommitProducer, InputOffset, OffsetCommitter};
use crate::output::{self, OutProducer};
use crate::record::OutRecord;
use crate::sender::Sender;
use crate::TopologyError;

/// How long a commit waits for the broker at each step.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The worker's clients, lent to one commit.
pub(crate) struct KafkaCommitIo<'a, C: ConsumerContext> {
    pub producer: &'a OutProducer,
    /// at_least_once: the thread that hands outputs to the producer.
    pub sender: Option<&'a mut Sender>,
    pub consumer: &'a BaseConsumer<C>,
}

impl<C: ConsumerContext> KafkaCommitIo<'_, C> {
    fn partition_list(offsets: &[InputOffset]) -> Result<TopicPartitionList, TopologyError> {
        let mut tpl = TopicPartitionList::new();
        for o in offsets {
            tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.next))
                .map_err(|e| TopologyError::kafka("offset list", e))?;
        }
        Ok(tpl)
    }
}

impl<C: ConsumerContext> CommitProducer for KafkaCommitIo<'_, C> {
    fn begin_transaction(&mut self) -> Result<(), TopologyError> {
        self.producer
            .begin_transaction()
            .map_err(|e| TopologyError::kafka("begin transaction", e))
    }

    fn send(&mut self, rec: OutRecord) -> Result<(), TopologyError> {
        output::send(self.producer, &rec)
    }

    fn deliver(&mut self) -> Result<(), TopologyError> {
        if let Some(sender) = self.sender.as_mut() {
            sender.drain()?;
        }
        output::await_deliveries(self.producer, TIMEOUT)
            .map_err(|e| TopologyError::kafka("await deliveries", e))?;
        let errors = self.producer.context().take_errors();
        if !errors.is_empty() {
            return Err(TopologyError::Delivery(errors.join("; ")));
        }
        Ok(())
    }

    fn last_delivered(&self, topic: &str, partition: i32) -> Option<i64> {
        self.producer.context().changelog_offset(topic, partition)
    }

    fn commit_transaction(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
        if !offsets.is_empty() {
            let tpl = Self::partition_list(offsets)?;
            let meta = self
                .consumer
                .group_metadata()
                .ok_or_else(|| TopologyError::Config("consumer has no group metadata".into()))?;
            self.producer
                .send_offsets_to_transaction(&tpl, &meta, TIMEOUT)
                .map_err(|e| TopologyError::kafka("send offsets to transaction", e))?;
        }
        self.producer
            .commit_transaction(TIMEOUT)
            .map_err(|e| TopologyError::kafka("commit transaction", e))
    }

    fn abort_transaction(&mut self) {
        let _ = self.producer.abort_transaction(TIMEOUT);
    }
}

impl<C: ConsumerContext> OffsetCommitter for KafkaCommitIo<'_, C> {
    fn commit_offsets(&mut self, offsets: &[InputOffset]) -> Result<(), TopologyError> {
        let tpl = Self::partition_list(offsets)?;
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                tracing::debug!(offsets = %crate::watermarks::describe(&tpl), "offsets committed");
                Ok(())
            }
            Err(e) if is_rebalancing(&e) => {
                // The group is rebalancing: the offsets are committed again at the next
                // commit (kept tasks are re-positioned at their own offsets on assign), or
                // the partition's new owner re-processes them (at-least-once).
                tracing::warn!(error = %e, "offset commit refused during a rebalance; will retry");
                Ok(())
            }
            Err(e) => Err(TopologyError::kafka("commit offsets", e)),
        }
    }
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
