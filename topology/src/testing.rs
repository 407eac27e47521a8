//! Helpers for tests and tools that talk to a broker: produce, read a topic, await a
//! condition. Used by the acceptance tests of every crate.
//!
//! ```no_run
//! use topology::{testing, EmbeddedBroker};
//! let broker = EmbeddedBroker::start().unwrap();
//! broker.create_topic("t", 1).unwrap();
//! testing::produce(&broker.bootstrap_servers(), "t", &[("k".into(), b"v".to_vec())], 0).unwrap();
//! let recs = testing::read_topic(&broker.bootstrap_servers(), "t", 1, std::time::Duration::from_secs(10)).unwrap();
//! assert_eq!(recs.len(), 1);
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::TopologyError;

/// A record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
}

impl ReadRecord {
    /// Key as text.
    pub fn key_str(&self) -> String {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    }
    /// Value as text.
    pub fn value_str(&self) -> String {
        self.value
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    }
}

/// Produces `(key, value)` records with the murmur2 partitioner and waits for delivery.
/// `timestamp` 0 means "now"; otherwise records get `timestamp + index` ms.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    records: &[(String, Vec<u8>)],
    timestamp: i64,
) -> Result<(), TopologyError> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| TopologyError::kafka("test producer", e))?;
    for (i, (k, v)) in records.iter().enumerate() {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic)
            .key(k.as_bytes())
            .payload(&v[..]);
        if timestamp > 0 {
            rec = rec.timestamp(timestamp + i as i64);
        }
        let mut rec = rec;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    crate::await_deliveries(&producer, Duration::from_secs(30))
        .map_err(|e| TopologyError::kafka("test producer delivery", e))
}

/// A raw record: optional key, optional value.
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Produces raw records with optional key and value (for malformed-input tests).
pub fn produce_raw(
    bootstrap: &str,
    topic: &str,
    records: &[RawRecord],
) -> Result<(), TopologyError> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .map_err(|e| TopologyError::kafka("test producer", e))?;
    for (k, v) in records {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic);
        if let Some(k) = k {
            rec = rec.key(&k[..]);
        }
        if let Some(v) = v {
            rec = rec.payload(&v[..]);
        }
        producer
            .send(rec)
            .map_err(|(e, _)| TopologyError::kafka("test produce", e))?;
    }
    crate::await_deliveries(&producer, Duration::from_secs(30))
        .map_err(|e| TopologyError::kafka("test producer delivery", e))
}

/// Reads every partition of `topic` from the beginning until the high watermarks seen at
/// the start are reached and at least `min_records` were read, or `timeout` passes.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    min_records: usize,
    timeout: Duration,
) -> Result<Vec<ReadRecord>, TopologyError> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "orchestra-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|e| TopologyError::kafka("test consumer", e))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka("metadata", e))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| TopologyError::kafka("assign", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| TopologyError::kafka("assign", e))?;
    let mut out = Vec::new();
    loop {
        while let Some(m) = consumer.poll(Duration::from_millis(50)) {
            let m = m.map_err(|e| TopologyError::kafka("test read", e))?;
            let mut headers = HashMap::new();
            if let Some(h) = m.headers() {
                for hd in h.iter() {
                    headers.insert(
                        hd.key.to_string(),
                        hd.value
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default(),
                    );
                }
            }
            out.push(ReadRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
            });
        }
        let positions = consumer
            .position()
            .map_err(|e| TopologyError::kafka("position", e))?;
        let mut consumed_to_end = true;
        for p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, *p, Duration::from_secs(5))
                .map_err(|e| TopologyError::kafka("watermarks", e))?;
            let at = crate::watermarks::offset_in(&positions, topic, *p).unwrap_or(low);
            // An empty partition (low == high) has no position to report: it is at its end.
            if at < high {
                consumed_to_end = false;
            }
        }
        if out.len() >= min_records && consumed_to_end {
            return Ok(out);
        }
        if Instant::now() > deadline {
            return Ok(out);
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
/// This awaits an observable event (a counter, a state) — not a fixed sleep.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// High watermark of every partition of `topic` (partition → end offset).
pub fn end_offsets(bootstrap: &str, topic: &str) -> Result<HashMap<i32, i64>, TopologyError> {
    Ok(watermarks(bootstrap, topic)?
        .into_iter()
        .map(|(p, (_, high))| (p, high))
        .collect())
}

/// Low and high watermarks of every partition of `topic` (partition → (start, end)).
pub fn watermarks(bootstrap: &str, topic: &str) -> Result<HashMap<i32, (i64, i64)>, TopologyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "orchestra-test-offsets")
        .create()
        .map_err(|e| TopologyError::kafka("test consumer", e))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka("metadata", e))?;
    let mut out = HashMap::new();
    for t in md.topics() {
        for p in t.partitions() {
            let marks = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(5))
                .map_err(|e| TopologyError::kafka("watermarks", e))?;
            out.insert(p.id(), marks);
        }
    }
    Ok(out)
}

/// Committed offsets of `group` for `topic` (partition → next offset).
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<HashMap<i32, i64>, TopologyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| TopologyError::kafka("test consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka("committed offsets", e))?;
    Ok(got
        .elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                },
            )
        })
        .collect())
}
