//! RobotOrchestra Streams runtime: a Kafka Streams–style topology runtime in Rust.
//!
//! * Declare a [`Topology`] with [`TopologyBuilder`] and [`ProcessorDef`]s: typed inputs,
//!   change-logged stores, sinks. [`Topology::describe`] renders it as text or Mermaid.
//! * Run it with [`StreamWorker`] against any Kafka-protocol broker, or in memory with
//!   [`TopologyTestDriver`]. [`EmbeddedBroker`] starts a broker inside the process.
//!
//! Module map: `task` (one partition's processors and stores), `task_manager`
//! (assignment, revoke), `stream_worker` (the loop), `commit` (the commit sequence and
//! transactions), `restore` (changelog replay), `recover` (folding a processor's own
//! output published after its last commit), `catch_up` (wall-clock punctuation waits for a
//! restored task's backlog), `shared_decode` (one decode per record for processors
//! sharing a source), `punctuate`, `dlq`, `admin` (topics), `repartition` (internal topics
//! between sub-topologies, named for the application id), `output` (producer),
//! `watermarks` (where a partition really ends), `parallel` (joining fanned-out threads),
//! `embedded`, `health`, `test_driver`, `metrics` (names, descriptions, buckets),
//! `gauge_parts` (process gauges summed over the workers' tasks), `truncation` (logs that
//! must be kept whole).

mod admin;
mod builder;
mod catch_up;
mod commit;
mod config;
mod deadlines;
mod describe;
mod dlq;
mod embedded;
mod error;
mod gauge_parts;
mod health;
mod kafka_io;
mod lifecycle;
pub mod metrics;
mod node;
mod output;
mod parallel;
mod processor;
mod punctuate;
mod record;
mod recover;
pub mod reference;
mod restore;
mod sender;
mod shared_decode;
mod state_manager;
mod stats;
mod stream_worker;
mod task;
mod task_id;
mod task_manager;
mod test_driver;
pub mod testing;
pub mod truncation;
mod watermarks;

pub use admin::{internal_topics, InternalTopic, InternalTopicKind};
pub use builder::{ProcessorDef, ProcessorSpec, StoreSpec, SubTopology, Topology, TopologyBuilder};
pub use config::{ProcessingGuarantee, StreamsConfig};
pub use describe::{ProcessorDescription, SubTopologyDescription, TopologyDescription};
pub use dlq::{dlq_record, ErrorHandling};
pub use embedded::EmbeddedBroker;
pub use error::{DecodeError, ProcessError, TopologyError};
pub use stats::TaskHealth;
pub use lifecycle::TaskState;
pub use output::flush_producer;
pub use processor::{Context, Processor, Punctuation, PunctuationType};
pub use record::{murmur2, partition_for, InRecord, OutRecord};
pub use builder::repartition::{RepartitionSpec, RepartitionTopic, APPLICATION_ID_PLACEHOLDER};
pub use shared_decode::SharedDecoder;
pub use state_stores::{KeyValueStore, SledStoreConfig, TypedStore};
pub use stats::{WorkerState, WorkerStats};
pub use stream_worker::{KeyLocation, StreamWorker, WorkerHandle};
pub use state_manager::StoreBackend;
pub use task_id::TaskId;
pub use test_driver::{DriverConfig, TopologyTestDriver};
