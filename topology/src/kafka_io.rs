//! The stream worker's side of a commit: [`CommitProducer`] and [`OffsetCommitter`] over
//! the worker's Kafka producer (and its sender thread) and its consumer.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::commit::{CommitProducer, InputOffset, OffsetCommitter};
use crate::membership::PollClock;
use crate::output::{self, OutProducer};
use crate::record::OutRecord;
use crate::sender::Sender;
use crate::TopologyError;

/// How long a commit waits for the broker at each step.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How often a commit waiting for acknowledgements looks at the group membership. The
/// wait returns as soon as the last acknowledgement arrives, so a slice costs nothing.
const SLICE: Duration = Duration::from_millis(100);

/// The worker's clients, lent to one commit.
pub(crate) struct KafkaCommitIo<'a, C: ConsumerContext> {
    pub producer: &'a OutProducer,
    /// at_least_once: the thread that hands outputs to the producer.
    pub sender: Option<&'a mut Sender>,
    pub consumer: &'a BaseConsumer<C>,
    /// When the stream thread's poll interval runs out (see `membership.rs`).
    pub poll: &'a PollClock,
}

impl<C: ConsumerContext> KafkaCommitIo<'_, C> {
    /// Fails with [`TopologyError::AssignmentLost`] once this worker can no longer count
    /// on its membership (see `membership.rs`).
    fn check_member(&self) -> Result<(), TopologyError> {
        if self.poll.membership_lost(self.consumer, Instant::now()) {
            return Err(TopologyError::AssignmentLost);
        }
        Ok(())
    }

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

    /// Waits for every output's acknowledgement, checking between short waits that the
    /// worker still belongs to the group: once its assignment is lost, outputs still in
    /// the producer must not reach the topics (the partitions' new owner may have read
    /// them to their end already), so the wait stops and the caller purges them.
    fn deliver(&mut self) -> Result<(), TopologyError> {
        self.check_member()?;
        if let Some(sender) = self.sender.as_mut() {
            sender.drain()?;
        }
        let started = Instant::now();
        loop {
            self.check_member()?;
            match output::await_deliveries(self.producer, SLICE) {
                Ok(()) => break,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if started.elapsed() < TIMEOUT => {}
                Err(e) => return Err(TopologyError::kafka("await deliveries", e)),
            }
        }
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
        output::commit_transaction(self.producer, TIMEOUT)
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
