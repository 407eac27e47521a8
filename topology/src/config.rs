//! Stream worker configuration: one struct with defaults and builder methods.
//!
//! ```
//! use topology::{ProcessingGuarantee, StreamsConfig};
//! let cfg = StreamsConfig::new("my-app", "localhost:9092")
//!     .processing_guarantee(ProcessingGuarantee::ExactlyOnce)
//!     .kafka("security.protocol", "SASL_SSL");
//! assert_eq!(cfg.commit_interval.as_millis(), 100); // exactly_once default
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use state_stores::SledStoreConfig;

use crate::dlq::ErrorHandling;
use crate::state_manager::StoreBackend;

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// Outputs are produced as records are processed; offsets are committed after the
    /// producer has delivered them. A crash may repeat the effects of records since the last commit.
    #[default]
    AtLeastOnce,
    /// One transactional producer per worker: outputs, changelog records and input offsets
    /// commit atomically; store writes are buffered until the transaction commits.
    ExactlyOnce,
}

impl std::str::FromStr for ProcessingGuarantee {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "at_least_once" => Ok(Self::AtLeastOnce),
            "exactly_once" | "exactly_once_v2" => Ok(Self::ExactlyOnce),
            other => Err(format!(
                "unknown processing guarantee `{other}` (at_least_once | exactly_once)"
            )),
        }
    }
}

/// Configuration of a stream worker.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// Consumer group id and prefix of internal topics.
    pub application_id: String,
    pub bootstrap_servers: String,
    /// Unique per worker process; used in client ids and the transactional id.
    pub worker_id: String,
    pub processing_guarantee: ProcessingGuarantee,
    /// How often tasks commit (default 1 s; 100 ms under exactly_once).
    pub commit_interval: Duration,
    /// Where task stores live (default: sled under `./state`).
    pub backend: StoreBackend,
    pub deserialization_handler: ErrorHandling,
    pub processing_handler: ErrorHandling,
    /// Commit early when this many output records are buffered (exactly_once).
    pub max_buffered_records: usize,
    /// Consumer session timeout (how fast a dead worker's partitions move).
    pub session_timeout: Duration,
    /// Extra librdkafka settings for every client (TLS, SASL, ...).
    pub kafka: BTreeMap<String, String>,
    /// Create missing internal topics (changelogs, DLQ) with the admin API.
    pub create_internal_topics: bool,
    /// Replication factor for internal topics created by the runtime.
    pub replication_factor: i32,
    /// Restore consumers per worker: the changelog partitions being restored are split
    /// between them (whole tasks each), read and applied in parallel. Default: the
    /// machine's cores, at most 4.
    pub restore_consumers: usize,
    /// Standby replicas (Kafka Streams' `num.standby.replicas`; default 0): above 0, the
    /// worker keeps warm copies of the stores of the tasks it does not run, so that a
    /// failover restores only the changelog's tail (see `standby`). Needs sled stores.
    pub num_standby_replicas: u32,
    /// How long the output producer waits to fill a batch (librdkafka's `linger.ms`;
    /// default 5 ms, for throughput). An interactive application sets 0: every hop
    /// through the worker then costs a round trip instead of up to the linger, and a
    /// worker working through a backlog sends more, smaller requests. A
    /// `kafka("linger.ms", …)` setting overrides it.
    pub output_linger: Duration,
}

impl StreamsConfig {
    /// Defaults for `application_id` on `bootstrap_servers`.
    pub fn new(application_id: &str, bootstrap_servers: &str) -> Self {
        Self {
            application_id: application_id.to_string(),
            bootstrap_servers: bootstrap_servers.to_string(),
            worker_id: format!("worker-{}", std::process::id()),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval: Duration::from_millis(1000),
            backend: StoreBackend::Sled {
                state_dir: PathBuf::from("state"),
                config: SledStoreConfig::default(),
            },
            deserialization_handler: ErrorHandling::Continue,
            processing_handler: ErrorHandling::Continue,
            max_buffered_records: 50_000,
            session_timeout: Duration::from_secs(10),
            kafka: BTreeMap::new(),
            create_internal_topics: true,
            replication_factor: 1,
            restore_consumers: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 4),
            num_standby_replicas: 0,
            output_linger: Duration::from_millis(5),
        }
    }

    /// Sets the processing guarantee (and its default commit interval).
    pub fn processing_guarantee(mut self, g: ProcessingGuarantee) -> Self {
        self.processing_guarantee = g;
        self.commit_interval = match g {
            ProcessingGuarantee::AtLeastOnce => Duration::from_millis(1000),
            ProcessingGuarantee::ExactlyOnce => Duration::from_millis(100),
        };
        self
    }

    /// Sets the output producer's linger (see [`StreamsConfig::output_linger`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let cfg = topology::StreamsConfig::new("app", "localhost:9092").output_linger(Duration::ZERO);
    /// assert_eq!(cfg.output_linger, Duration::ZERO);
    /// ```
    pub fn output_linger(mut self, d: Duration) -> Self {
        self.output_linger = d;
        self
    }

    /// Sets the commit interval.
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = d;
        self
    }

    /// Keeps stores in sled under `dir`.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.backend = StoreBackend::Sled {
            state_dir: dir.into(),
            config: SledStoreConfig::default(),
        };
        self
    }

    /// Keeps stores in memory (restored fully on every assignment).
    pub fn in_memory_stores(mut self) -> Self {
        self.backend = StoreBackend::Memory;
        self
    }

    /// Sets the worker id.
    pub fn worker_id(mut self, id: &str) -> Self {
        self.worker_id = id.to_string();
        self
    }

    /// Adds a librdkafka setting.
    pub fn kafka(mut self, key: &str, value: &str) -> Self {
        self.kafka.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets both error handlers.
    pub fn error_handling(
        mut self,
        deserialization: ErrorHandling,
        processing: ErrorHandling,
    ) -> Self {
        self.deserialization_handler = deserialization;
        self.processing_handler = processing;
        self
    }

    /// Sets `num.standby.replicas` (0: no standby replicas).
    pub fn num_standby_replicas(mut self, n: u32) -> Self {
        self.num_standby_replicas = n;
        self
    }

    /// Sets the number of restore consumers (at least 1).
    pub fn restore_consumers(mut self, n: usize) -> Self {
        self.restore_consumers = n.max(1);
        self
    }

    /// Sets the consumer session timeout.
    pub fn session_timeout(mut self, d: Duration) -> Self {
        self.session_timeout = d;
        self
    }

    pub(crate) fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set_user_overrides(self);
        c
    }
}

/// Re-applies the user's `--kafka-config` settings after the runtime's defaults, so that a
/// tuning value the runtime chose gives way to the user's.
pub(crate) trait UserOverrides {
    fn set_user_overrides(&mut self, config: &StreamsConfig) -> &mut Self;
}

impl UserOverrides for rdkafka::ClientConfig {
    fn set_user_overrides(&mut self, config: &StreamsConfig) -> &mut Self {
        for (k, v) in &config.kafka {
            self.set(k, v);
        }
        self
    }
}
