//! The worker's producer: sends [`OutRecord`]s and tracks delivery (changelog offsets for
//! checkpoints, failures that must stop a commit).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::config::{ProcessingGuarantee, StreamsConfig, UserOverrides};
use crate::record::OutRecord;
use crate::TopologyError;

/// Delivery bookkeeping shared with librdkafka's callback thread.
#[derive(Default)]
pub(crate) struct DeliveryContext {
    changelog_offsets: Mutex<HashMap<(String, i32), i64>>,
    /// Topics whose last delivered offset per partition is tracked: the changelogs (their
    /// checkpoints) and the sinks processors recover their state from.
    tracked: std::collections::HashSet<String>,
    errors: Mutex<Vec<String>>,
    pub delivered: AtomicU64,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                if self.tracked.contains(m.topic()) {
                    if let Ok(mut map) = self.changelog_offsets.lock() {
                        let e = map
                            .entry((m.topic().to_string(), m.partition()))
                            .or_insert(-1);
                        *e = (*e).max(m.offset());
                    }
                }
            }
            Err((e, m)) => {
                if let Ok(mut errs) = self.errors.lock() {
                    errs.push(format!("{}[{}]: {e}", m.topic(), m.partition()));
                }
            }
        }
    }
}

impl DeliveryContext {
    /// Last delivered offset of a changelog partition or of a tracked sink partition.
    pub fn changelog_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.changelog_offsets
            .lock()
            .ok()?
            .get(&(topic.to_string(), partition))
            .copied()
    }

    /// Takes delivery failures seen since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

pub(crate) type OutProducer = ThreadedProducer<DeliveryContext>;

/// Creates the worker's producer (transactional under exactly_once).
pub(crate) fn create_producer(
    config: &StreamsConfig,
    tracked: impl IntoIterator<Item = String>,
) -> Result<OutProducer, TopologyError> {
    let mut c = config.client_config();
    // Batching is tuning: the user's settings win over it.
    c.set(
        "linger.ms",
        format!("{}", config.output_linger.as_secs_f64() * 1000.0),
    )
    .set("batch.num.messages", "10000")
    .set("queue.buffering.max.messages", "1000000")
    .set("queue.buffering.max.kbytes", "1048576")
    .set_user_overrides(config);
    // Co-partitioning and no duplicates from retries are correctness: always ours.
    c.set(
        "client.id",
        format!("{}-{}-producer", config.application_id, config.worker_id),
    )
    .set("partitioner", "murmur2_random")
    .set("enable.idempotence", "true");
    if config.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
        c.set(
            "transactional.id",
            format!("{}-{}", config.application_id, config.worker_id),
        )
        .set("transaction.timeout.ms", "60000");
    }
    let context = DeliveryContext {
        tracked: tracked.into_iter().collect(),
        ..DeliveryContext::default()
    };
    c.create_with_context(context)
        .map_err(|e| TopologyError::kafka("creating producer", e))
}

/// Sends one record, waiting (bounded) while the local queue is full.
pub(crate) fn send(producer: &OutProducer, rec: &OutRecord) -> Result<(), TopologyError> {
    let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&rec.topic)
        .key(&rec.key[..])
        .timestamp(rec.timestamp);
    if let Some(v) = &rec.value {
        record = record.payload(&v[..]);
    }
    if !rec.headers.is_empty() {
        let mut headers = OwnedHeaders::new_with_capacity(rec.headers.len());
        for (k, v) in &rec.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        record = record.headers(headers);
    }
    if let Some(p) = rec.partition {
        record = record.partition(p);
    }
    // Read the clock only once the queue is full (a clock read per record showed).
    let mut deadline = None;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(60));
                if Instant::now() > deadline {
                    return Err(TopologyError::Delivery(format!(
                        "producer queue full for 60 s writing {}",
                        rec.topic
                    )));
                }
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(TopologyError::Delivery(format!("{}: {e}", rec.topic))),
        }
    }
}

/// Drops every record `producer` holds that the broker has not acknowledged: those
/// queued and those in flight (an in-flight request the broker already took may still be
/// written; librdkafka forgets its answer). Used when the worker lost its assignment
/// (see `TaskManager::on_lost`); the purged records' delivery failures are consumed
/// here, so they fail no later commit.
pub(crate) fn purge_unacknowledged(producer: &OutProducer) {
    use rdkafka::producer::PurgeConfig;
    let queued = producer.in_flight_count();
    producer.purge(PurgeConfig::default().queue().inflight());
    let dropped = drop_failed_deliveries(producer);
    tracing::warn!(
        queued,
        dropped,
        "purged the producer's unacknowledged records"
    );
}

/// Aborts `producer`'s open transaction for a lost assignment (exactly_once): its records
/// never become visible to `read_committed` readers. librdkafka purges what the
/// transaction still held; those records come back as failed deliveries, consumed here
/// with the others of the dropped work, so they fail no later commit.
pub(crate) fn abort_for_lost_assignment(producer: &OutProducer) {
    use rdkafka::producer::Producer as _;
    let queued = producer.in_flight_count();
    if let Err(e) = producer.abort_transaction(Duration::from_secs(10)) {
        // The next commit's `begin_transaction` fails too, and the worker exits for its
        // supervisor to restart it.
        tracing::warn!(error = %e, "aborting the transaction of the lost assignment");
    }
    let dropped = drop_failed_deliveries(producer);
    tracing::warn!(
        queued,
        dropped,
        "aborted the transaction of the lost assignment"
    );
}

/// Waits for the failed deliveries of purged or aborted records (they come back through
/// the producer's polling thread) and drops them; returns how many there were.
fn drop_failed_deliveries(producer: &OutProducer) -> usize {
    if let Err(e) = await_deliveries(producer, Duration::from_secs(10)) {
        tracing::warn!(error = %e, "dropped records still pending after 10 s");
    }
    producer.context().take_errors().len()
}

/// Commits `producer`'s open transaction (librdkafka's `rd_kafka_commit_transaction`,
/// which waits for the transaction's records itself).
///
/// rust-rdkafka's `commit_transaction` first runs its own `flush`, which with a
/// [`ThreadedProducer`] lasts at least 100 ms whenever a record was in flight (see
/// [`await_deliveries`]): every exactly_once commit took that long, longer than the
/// default 100 ms commit interval. On failure the error names librdkafka's code and message;
/// whether the transaction must be aborted or the producer is fenced does not matter to the
/// caller, which aborts and stops either way.
pub(crate) fn commit_transaction<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    timeout: Duration,
) -> Result<(), TopologyError> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: a live producer handle; the returned error object is ours to read and free.
    unsafe {
        let err = rdkafka_sys::rd_kafka_commit_transaction(producer.client().native_ptr(), ms);
        if err.is_null() {
            return Ok(());
        }
        let code = RDKafkaErrorCode::from(rdkafka_sys::rd_kafka_error_code(err));
        let text = std::ffi::CStr::from_ptr(rdkafka_sys::rd_kafka_error_string(err))
            .to_string_lossy()
            .into_owned();
        rdkafka_sys::rd_kafka_error_destroy(err);
        Err(TopologyError::kafka(
            format!("commit transaction: {text}"),
            KafkaError::Global(code),
        ))
    }
}

/// Waits until every record `producer` has sent is acknowledged (or failed), at most
/// `timeout`.
///
/// rust-rdkafka's `Producer::flush` checks once and then polls the event queue for up to
/// 100 ms at a time; a [`ThreadedProducer`]'s own polling thread takes the delivery events
/// first, so every flush with records in flight lasted at least 100 ms (a tenth of the
/// worker's time at the default 1 s commit interval). librdkafka's `rd_kafka_flush` waits
/// on the in-flight count instead and returns as soon as it reaches zero.
///
/// ```no_run
/// use rdkafka::producer::{DefaultProducerContext, ThreadedProducer};
/// use rdkafka::ClientConfig;
/// let producer: ThreadedProducer<DefaultProducerContext> =
///     ClientConfig::new().set("bootstrap.servers", "localhost:9092").create().unwrap();
/// topology::await_deliveries(&producer, std::time::Duration::from_secs(10)).unwrap();
/// ```
pub fn await_deliveries<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: a live producer handle; librdkafka only reads it.
    let err = unsafe { rdkafka_sys::rd_kafka_flush(producer.client().native_ptr(), ms) };
    match RDKafkaErrorCode::from(err) {
        RDKafkaErrorCode::NoError => Ok(()),
        code => Err(KafkaError::Flush(code)),
    }
}
