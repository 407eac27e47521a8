//! The embedded broker: librdkafka's mock cluster started inside the process.
//!
//! It speaks the Kafka protocol on a loopback port, so the stream workers, tests and any
//! outside client (kcat, a Python client) can use it while it runs. What it lacks, and
//! what the runtime does about it:
//!
//! * no admin API — topics are created with [`EmbeddedBroker::create_topic`]; the worker
//!   checks that internal topics exist (see `admin.rs`);
//! * `read_committed` is not honoured — aborted transactional records stay visible, which
//!   is why under exactly_once the runtime buffers outputs and store writes until commit;
//! * no compaction and a bounded log (about 5 MiB or 100,000 batches per partition);
//! * the first group join waits 3 s by default — set to 0 here.
//!
//! ```no_run
//! let broker = topology::EmbeddedBroker::start().unwrap();
//! broker.create_topic("events", 8).unwrap();
//! println!("bootstrap: {}", broker.bootstrap_servers());
//! ```

use std::ffi::{CStr, CString};

use rdkafka::client::Client;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use crate::TopologyError;

struct MockPtr(*mut rdkafka_sys::rd_kafka_mock_cluster_t);
// SAFETY: librdkafka's mock cluster API is thread-safe: every call is posted to the mock
// cluster's own thread and waited for.
unsafe impl Send for MockPtr {}
unsafe impl Sync for MockPtr {}

/// An in-process Kafka-protocol broker; see the module docs.
pub struct EmbeddedBroker {
    mock: MockPtr,
    bootstrap: String,
    // Owns the mock cluster; dropped last.
    _owner: BaseProducer,
}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster with the group join delay set to 0.
    pub fn start() -> Result<Self, TopologyError> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("log_level", "3")
            .create()
            .map_err(|e| TopologyError::kafka("starting embedded broker", e))?;
        let client: &Client<_> = owner.client();
        // SAFETY: the handle is valid while `owner` lives; the returned pointer is owned by it.
        let mock = unsafe { rdkafka_sys::rd_kafka_handle_mock_cluster(client.native_ptr()) };
        if mock.is_null() {
            return Err(TopologyError::Config(
                "librdkafka did not create a mock cluster".into(),
            ));
        }
        // SAFETY: mock is a live mock cluster.
        let bootstrap =
            unsafe { CStr::from_ptr(rdkafka_sys::rd_kafka_mock_cluster_bootstraps(mock)) }
                .to_string_lossy()
                .into_owned();
        unsafe { rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(mock, 0) };
        tracing::info!(%bootstrap, "embedded broker started");
        Ok(Self {
            mock: MockPtr(mock),
            bootstrap,
            _owner: owner,
        })
    }

    /// `host:port` to give any Kafka client.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap.clone()
    }

    /// Creates a topic (replication factor 1). Creating an existing topic is not an error.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), TopologyError> {
        let c = CString::new(name)
            .map_err(|_| TopologyError::Config(format!("bad topic name {name:?}")))?;
        // SAFETY: valid mock pointer and C string.
        let err = unsafe {
            rdkafka_sys::rd_kafka_mock_topic_create(self.mock.0, c.as_ptr(), partitions, 1)
        };
        if err != rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            && err != rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS
        {
            return Err(TopologyError::MissingTopic {
                topic: name.to_string(),
                reason: format!("embedded broker refused to create it: {err:?}"),
            });
        }
        Ok(())
    }

    /// Creates the internal topics (changelogs, DLQ) a topology needs under `application_id`.
    pub fn create_internal_topics(
        &self,
        topology: &crate::Topology,
        application_id: &str,
        partitions: i32,
    ) -> Result<(), TopologyError> {
        for spec in crate::admin::internal_topics(topology, application_id, |_| Some(partitions)) {
            self.create_topic(&spec.name, spec.partitions)?;
        }
        Ok(())
    }
}
