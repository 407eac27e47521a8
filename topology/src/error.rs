//! Error types of the runtime.

use state_stores::StoreError;
use thiserror::Error;

/// Why a record could not be decoded into a processor's input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl DecodeError {
    /// A decode error with a message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// What a processor returns when it cannot process a record.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The input is valid but the domain refuses it (a game rule). Goes to the DLQ under
    /// the default processing handler, with `reason` in the `error` header.
    #[error("rejected: {reason}")]
    Rejected { reason: String },
    /// The input could not be decoded (treated like a deserialization error).
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// A state store failed; always fatal for the task.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Any other processor failure; handled by the processing handler.
    #[error("{0}")]
    Failed(String),
}

impl ProcessError {
    /// A rejection with a reason.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }
}

/// Errors of building or running a topology.
#[derive(Debug, Error)]
pub enum TopologyError {
    /// The topology declaration is inconsistent.
    #[error("invalid topology: {0}")]
    Invalid(String),
    /// Co-partitioned source topics have different partition counts.
    #[error("co-partitioning violated in sub-topology {subtopology}: {details} (co-partitioned topics must have equal partition counts)")]
    CoPartitioning { subtopology: u32, details: String },
    /// A topic the topology needs does not exist and cannot be created.
    #[error("topic `{topic}`: {reason}")]
    MissingTopic { topic: String, reason: String },
    /// Kafka client error.
    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// State store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A processor failed and the configured handler is `fail`.
    #[error(
        "task {task}: processor `{processor}` failed on {topic}[{partition}]@{offset}: {message}"
    )]
    ProcessingFailed {
        task: String,
        processor: String,
        topic: String,
        partition: i32,
        offset: i64,
        message: String,
    },
    /// Restore could not finish.
    #[error("restore of {topic}[{partition}] failed: {reason}")]
    Restore {
        topic: String,
        partition: i32,
        reason: String,
    },
    /// Output records could not be delivered; input offsets were not committed.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The consumer group took this worker's partitions away without a revocation (its
    /// session expired, or it did not poll within `max.poll.interval.ms`): another worker
    /// may own them now. Not fatal: the worker drops its uncommitted work and rejoins
    /// (see `TaskManager::on_lost`).
    #[error("assignment lost: the group expired this worker's membership; its uncommitted work is dropped")]
    AssignmentLost,
    /// Configuration error.
    #[error("config: {0}")]
    Config(String),
    /// A topic that must be kept whole (a changelog, an event log) no longer holds the
    /// records a reader needs: its log starts after the offset the reader starts from.
    /// See [`crate::truncation`].
    #[error("{topic}[{partition}] is truncated: its log starts at offset {log_start}, but it is needed from offset {needed_from}: {advice}")]
    Truncated {
        topic: String,
        partition: i32,
        /// The partition's log start offset (low watermark).
        log_start: i64,
        /// The offset the reader needed the log from.
        needed_from: i64,
        /// What to do about it.
        advice: &'static str,
    },
}

impl TopologyError {
    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Self::Kafka {
            context: context.into(),
            source,
        }
    }
}
