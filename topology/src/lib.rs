//! RobotOrchestra Streams runtime: a Kafka Streams–style topology runtime in Rust.
//!
//! * Declare a [`Topology`] with [`TopologyBuilder`] and [`ProcessorDef`]s: typed inputs,
//!   change-logged stores, sinks. [`Topology::describe`] renders it as text or Mermaid.
//! * Run it with [`StreamWorker`] against any Kafka-protocol broker.
//!
//! Features (production builds need neither): `embedded` adds `EmbeddedBroker`, a broker
//! inside the process (`orchestra demo` and `orchestra broker` run it); `testkit` (implies
//! `embedded`) adds the test kit — `TopologyTestDriver` (a topology in memory, on the real
//! task and commit code), the `reference` topology, the `testing` helpers and
//! `await_deliveries`. Crates enable `testkit` in their dev-dependencies.
//!
//! Module map, by owner:
//! * the worker: `stream_worker` (the consumer loop), `task_manager` (the worker's tasks:
//!   assignment, revoke, commit bookkeeping), `queryable` (the store readers queries use
//!   without the stream thread's lock), `deadlines` (commit interval, punctuation
//!   checks, disk syncs, wall clock), `stats` (counters and state `/health` reads),
//!   `task_gauges` (the gauges derived from the tasks), `standby` (standby replicas:
//!   warm copies of the tasks the worker does not run),
//!   `health`, `kafka_io` (the commit's Kafka side), `output` (producer), `sender`;
//! * a task: `task` (one partition's processors; Kafka Streams' `commit_needed` /
//!   `prepare_commit` / `post_commit` contract), `state_manager` (its stores, changelog
//!   topics, checkpoints and input positions), `lifecycle`, `punctuate`, `catch_up`
//!   (wall-clock punctuation waits for the input that waited for the task), `recover`
//!   (folding a processor's own output published after its last commit), `restore`
//!   (changelog replay), `shared_decode`, `dlq`;
//! * the commit: `commit` (the sequence over the tasks, a `CommitProducer` and an
//!   `OffsetCommitter`, shared by the worker and the test driver);
//! * the topology: `builder` (with `builder::repartition`), `describe`, `admin` (internal
//!   topics), `node`, `processor`, `record`, `task_id`;
//! * around: `metrics`, `gauge_parts`, `watermarks`, `truncation`, `parallel`;
//! * behind features: `embedded` (feature `embedded`); the test kit `test_driver`,
//!   `testing`, `reference` (feature `testkit`).
//!
//! Words: *flush* means only a processor writing what it keeps in memory to its stores
//! before a commit ([`Processor::flush`]); a producer's records are *delivered*
//! (`await_deliveries`), stores *sync* to disk, a restore *applies* changelog batches.

mod admin;
mod builder;
mod catch_up;
mod commit;
mod config;
mod deadlines;
mod describe;
mod dlq;
#[cfg(feature = "embedded")]
mod embedded;
mod error;
mod gauge_parts;
mod health;
mod kafka_io;
mod lifecycle;
mod membership;
pub mod metrics;
mod node;
mod output;
mod parallel;
mod processor;
mod punctuate;
mod queryable;
mod record;
mod recover;
#[cfg(feature = "testkit")]
pub mod reference;
mod restore;
mod resume;
mod sender;
mod shared_decode;
mod standby;
mod state_manager;
mod stats;
mod stream_worker;
mod task;
mod task_gauges;
mod task_id;
mod task_manager;
#[cfg(feature = "testkit")]
mod test_driver;
#[cfg(feature = "testkit")]
pub mod testing;
pub mod truncation;
mod watermarks;

pub use admin::{internal_topics, InternalTopic, InternalTopicKind};
pub use builder::repartition::{RepartitionSpec, RepartitionTopic, APPLICATION_ID_PLACEHOLDER};
pub use builder::{ProcessorDef, ProcessorSpec, StoreSpec, SubTopology, Topology, TopologyBuilder};
pub use config::{ProcessingGuarantee, StreamsConfig};
pub use describe::{ProcessorDescription, SubTopologyDescription, TopologyDescription};
pub use dlq::ErrorHandling;
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedBroker;
pub use error::{DecodeError, ProcessError, TopologyError};
pub use lifecycle::TaskState;
#[cfg(feature = "testkit")]
pub use output::await_deliveries;
pub use processor::{Context, Processor, Punctuation, PunctuationType};
pub use record::{partition_for, InRecord, OutRecord};
pub use shared_decode::SharedDecoder;
pub use standby::StandbyStatus;
pub use state_manager::StoreBackend;
pub use state_stores::{KeyValueStore, SledStoreConfig, TypedStore};
pub use stats::TaskHealth;
pub use stats::{WorkerState, WorkerStats};
pub use stream_worker::{KeyLocation, StreamWorker, WorkerHandle};
pub use task_id::TaskId;
#[cfg(feature = "testkit")]
pub use test_driver::{DriverConfig, TopologyTestDriver};
