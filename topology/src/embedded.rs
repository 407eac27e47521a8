//! The embedded broker: librdkafka's mock cluster started inside the process.
//!
//! It speaks the Kafka protocol on a loopback port, so the stream workers, tests and any
//! outside client (kcat, a Python client) can use it while it runs. Transactions work as
//! on Apache Kafka (markers, the last stable offset, aborted records hidden from
//! `read_committed` readers, fencing by transactional id and by group generation, offsets
//! stored on commit, the transaction timeout; a patch of ours, vendor/README.md). What it lacks, and what the runtime does about it:
//!
//! * no admin API — topics are created with [`EmbeddedBroker::create_topic`]; the worker
//!   checks that internal topics exist (see `admin.rs`);
//! * no compaction and a bounded log (about 5 MiB or 100,000 batches per partition,
//!   dropping the oldest batches beyond that without a word — see [`crate::truncation`]);
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
use rdkafka::types::RDKafkaRespErr;
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

    /// Creates the internal topics (changelogs, repartition topics, DLQ) a topology needs
    /// under `application_id`, `partitions` each.
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

    /// Makes the broker tell clients (in metadata and coordinator answers) to connect to
    /// `host:port` instead of its own loopback listener — for a forwarder that listens
    /// elsewhere (`orchestra broker --listen`). The bootstrap address stays the listener's.
    pub fn advertise(&self, host: &str, port: u16) -> Result<(), TopologyError> {
        let h = CString::new(host)
            .map_err(|_| TopologyError::Config(format!("bad host name {host:?}")))?;
        // SAFETY: valid mock pointer and C string; librdkafka copies the host.
        unsafe {
            rdkafka_sys::rd_kafka_mock_broker_set_host_port(
                self.mock.0,
                BROKER_ID,
                h.as_ptr(),
                i32::from(port),
            )
        };
        Ok(())
    }

    /// Fault injection: the broker answers the next `errors.len()` requests of Kafka API
    /// `api_key` (0 Produce, 1 Fetch, 8 OffsetCommit, 11 JoinGroup, 26 EndTxn, ...) with
    /// these errors, one each, in order.
    pub fn push_request_errors(&self, api_key: i16, errors: &[RDKafkaRespErr]) {
        // SAFETY: valid mock pointer; librdkafka copies `errors.len()` codes.
        unsafe {
            rdkafka_sys::rd_kafka_mock_push_request_errors_array(
                self.mock.0,
                api_key,
                errors.len(),
                errors.as_ptr(),
            )
        };
    }

    /// Fault injection: forgets the errors still queued for Kafka API `api_key`.
    pub fn clear_request_errors(&self, api_key: i16) {
        // SAFETY: valid mock pointer.
        unsafe { rdkafka_sys::rd_kafka_mock_clear_request_errors(self.mock.0, api_key) };
    }

    /// Fault injection: takes the broker down (`false`: it closes every connection and
    /// refuses new ones) or brings it back up (`true`). Its data is kept.
    pub fn set_up(&self, up: bool) -> Result<(), TopologyError> {
        // SAFETY: valid mock pointer.
        let err = unsafe {
            if up {
                rdkafka_sys::rd_kafka_mock_broker_set_up(self.mock.0, BROKER_ID)
            } else {
                rdkafka_sys::rd_kafka_mock_broker_set_down(self.mock.0, BROKER_ID)
            }
        };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(TopologyError::Config(format!(
                "embedded broker refused to go {}: {err:?}",
                if up { "up" } else { "down" }
            )));
        }
        Ok(())
    }

    /// A Kafka error code by librdkafka's name for it (`OFFSET_METADATA_TOO_LARGE`,
    /// `NOT_COORDINATOR`, ...; case-insensitive, an `RD_KAFKA_RESP_ERR_` prefix allowed).
    pub fn error_code(name: &str) -> Option<RDKafkaRespErr> {
        let wanted = name.trim().to_ascii_uppercase();
        let wanted = wanted.strip_prefix("RD_KAFKA_RESP_ERR_").unwrap_or(&wanted);
        let mut descs: *const rdkafka_sys::rd_kafka_err_desc = std::ptr::null();
        let mut n: usize = 0;
        // SAFETY: librdkafka points `descs` at its static table of `n` entries; entries
        // without a code have a null name (and code 0, a valid value).
        unsafe { rdkafka_sys::rd_kafka_get_err_descs(&mut descs, &mut n) };
        if descs.is_null() {
            return None;
        }
        // SAFETY: see above; the table is static and never freed.
        let table = unsafe { std::slice::from_raw_parts(descs, n) };
        table.iter().find_map(|d| {
            if d.name.is_null() {
                return None;
            }
            // SAFETY: a non-null name is a static NUL-terminated string.
            let n = unsafe { CStr::from_ptr(d.name) }.to_string_lossy();
            (n.eq_ignore_ascii_case(wanted)).then_some(d.code)
        })
    }
}

/// The id of the mock cluster's one broker.
const BROKER_ID: i32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_found_by_name() {
        assert_eq!(
            EmbeddedBroker::error_code("offset_metadata_too_large"),
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE)
        );
        assert_eq!(
            EmbeddedBroker::error_code("RD_KAFKA_RESP_ERR_NOT_COORDINATOR"),
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
        );
        assert_eq!(EmbeddedBroker::error_code("NO_SUCH_ERROR"), None);
    }
}
