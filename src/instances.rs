//! Which instance runs which tasks, and where to reach it (Kafka Streams'
//! `application.server`).
//!
//! librdkafka's built-in assignors put no user data into the group's member metadata, so
//! each `orchestra run` process publishes its own: an [`InstancePublisher`] writes an
//! [`InstanceRecord`] — the address it advertises (`--application-server`), its worker
//! ids, the tasks it runs (`active`) and the standby replicas it keeps (`standby`) — to
//! the compacted topic `<application.id>-instances` (see [`topic`]), keyed by worker id,
//! whenever its task set changes and every [`HEARTBEAT`] otherwise; a clean stop writes a
//! tombstone. Every instance with `--http` keeps an [`InstancesView`] of that topic.
//!
//! Two records may claim one task for a moment (during a rebalance, or after a worker
//! crashed without its tombstone): the claim with the newest `assignedAt` (when that
//! instance's task set last changed) wins, so a dead worker's stale entry never beats the
//! new owner's; records not refreshed for [`STALE_AFTER`] claim nothing. Times are the
//! publishers' wall clocks: instances are assumed to keep them within a second or so.
//!
//! ```no_run
//! # fn example(client: &rdkafka::ClientConfig) -> anyhow::Result<()> {
//! use orchestra::instances::{topic, InstancesView};
//! let view = InstancesView::start(client, &topic("robotorchestra"))?;
//! let owner = view.owner(topology::TaskId { subtopology: 0, partition: 3 });
//! println!("task 0_3 runs on {owner:?}");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use topology::{TaskId, WorkerHandle};

/// How often an instance republishes an unchanged record.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A record older than this claims no task (its instance is presumed gone).
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// How often the publisher looks at its workers' task sets.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// The instances topic of `application_id`: `<application_id>-instances` (one partition,
/// compacted).
///
/// ```
/// assert_eq!(orchestra::instances::topic("app"), "app-instances");
/// ```
pub fn topic(application_id: &str) -> String {
    format!("{application_id}-instances")
}

/// Topic settings of [`topic`]: compacted, one partition.
pub fn topic_config() -> Vec<(&'static str, &'static str)> {
    vec![
        ("cleanup.policy", "compact"),
        ("min.compaction.lag.ms", "0"),
        ("segment.ms", "3600000"),
    ]
}

/// Creates [`topic`] through the admin API when the cluster lacks it. Brokers without
/// CreateTopics (the embedded one: `orchestra broker` creates it) are tolerated; the
/// publisher's writes then fail visibly in the log if the topic really is missing.
pub fn ensure_topic(client: &ClientConfig, application_id: &str, replication_factor: i32) {
    let name = topic(application_id);
    let exists = client
        .create::<BaseConsumer>()
        .ok()
        .and_then(|c| {
            c.fetch_metadata(Some(&name), Duration::from_secs(5))
                .ok()
                .map(|md| {
                    md.topics().iter().any(|t| {
                        t.name() == name && t.error().is_none() && !t.partitions().is_empty()
                    })
                })
        })
        .unwrap_or(false);
    if exists {
        return;
    }
    let spec = crate::topics::TopicSpec {
        name: name.clone(),
        partitions: 1,
        replication_factor: None,
        config: topic_config()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        description: "which instance runs which tasks".into(),
    };
    match crate::topics::create(client, &[spec], replication_factor, None) {
        Ok(_) => tracing::info!(topic = %name, "instances topic ready"),
        Err(e) => {
            tracing::warn!(topic = %name, error = %format!("{e:#}"), "could not create the instances topic")
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One task, as the instances topic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskRef {
    pub subtopology: u32,
    pub partition: i32,
}

impl From<TaskId> for TaskRef {
    fn from(t: TaskId) -> Self {
        Self {
            subtopology: t.subtopology,
            partition: t.partition,
        }
    }
}

impl TaskRef {
    /// The task id (`0_3`).
    pub fn id(self) -> TaskId {
        TaskId {
            subtopology: self.subtopology,
            partition: self.partition,
        }
    }
}

/// What one instance publishes (the value of its key in the instances topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    /// `host:port` of its read API (`--application-server`); `None`: not reachable.
    pub server: Option<String>,
    pub worker_ids: Vec<String>,
    /// Tasks it runs.
    pub active: Vec<TaskRef>,
    /// Standby replicas it keeps.
    #[serde(default)]
    pub standby: Vec<TaskRef>,
    /// When its active task set last changed (ms since the epoch).
    pub assigned_at: i64,
    /// When this record was written (ms since the epoch).
    pub ts: i64,
}

impl InstanceRecord {
    fn fresh(&self, now: i64) -> bool {
        now - self.ts <= STALE_AFTER.as_millis() as i64
    }
}

/// Publishes this instance's [`InstanceRecord`]; see the module docs.
pub struct InstancePublisher {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl InstancePublisher {
    /// Starts publishing under `key` (the worker id) to `topic`. Call inside a tokio
    /// runtime.
    pub fn start(
        client: &ClientConfig,
        topic: String,
        key: String,
        server: Option<String>,
        workers: Vec<Arc<WorkerHandle>>,
    ) -> Result<Self> {
        let producer: FutureProducer = client
            .clone()
            .set("message.timeout.ms", "10000")
            .create()
            .context("creating the instances producer")?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let worker_ids = vec![key.clone()];
            let current = |workers: &[Arc<WorkerHandle>]| {
                let mut active = BTreeSet::new();
                let mut standby = BTreeSet::new();
                for w in workers {
                    active.extend(w.stats().tasks().into_iter().map(TaskRef::from));
                    standby.extend(w.standby_tasks().into_iter().map(|s| TaskRef::from(s.task)));
                }
                (active, standby)
            };
            let mut last: Option<(BTreeSet<TaskRef>, BTreeSet<TaskRef>)> = None;
            let mut assigned_at = now_ms();
            let mut published_at = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(CHECK_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let now = current(&workers);
                let changed = last.as_ref() != Some(&now);
                if !changed && published_at.elapsed() < HEARTBEAT {
                    continue;
                }
                if last.as_ref().map(|l| &l.0) != Some(&now.0) {
                    assigned_at = now_ms();
                }
                let record = InstanceRecord {
                    server: server.clone(),
                    worker_ids: worker_ids.clone(),
                    active: now.0.iter().copied().collect(),
                    standby: now.1.iter().copied().collect(),
                    assigned_at,
                    ts: now_ms(),
                };
                let Ok(value) = serde_json::to_vec(&record) else {
                    continue;
                };
                let sent = producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&value),
                        Duration::from_secs(5),
                    )
                    .await;
                match sent {
                    Ok(_) => {
                        if changed {
                            tracing::info!(tasks = record.active.len(), standby = record.standby.len(), server = ?record.server, "published this instance's tasks");
                        }
                        last = Some(now);
                        published_at = tokio::time::Instant::now();
                    }
                    Err((e, _)) => {
                        tracing::warn!(topic = %topic, error = %e, "could not publish this instance's tasks (retrying)")
                    }
                }
            }
            // A clean stop: the tombstone says this instance runs nothing any more.
            let _ = producer
                .send(
                    FutureRecord::<_, [u8]>::to(&topic).key(&key),
                    Duration::from_secs(2),
                )
                .await;
        });
        Ok(Self { stop, task })
    }

    /// Stops publishing and writes the tombstone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// One instance as [`InstancesView::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// Its key (the worker id).
    pub instance: String,
    pub server: Option<String>,
    pub worker_ids: Vec<String>,
    /// The tasks it owns (its claims that win; see the module docs).
    pub active: Vec<TaskRef>,
    /// Standby replicas it keeps (`num.standby.replicas`).
    pub standby: Vec<TaskRef>,
    pub assigned_at: i64,
    /// Milliseconds since it last published.
    pub age_ms: i64,
    /// Whether it published within [`STALE_AFTER`].
    pub alive: bool,
}

type Records = BTreeMap<String, InstanceRecord>;

/// The instances topic, kept in memory by a background thread; see the module docs.
pub struct InstancesView {
    records: Arc<RwLock<Records>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl InstancesView {
    /// Starts reading `topic` from the beginning.
    pub fn start(client: &ClientConfig, topic: &str) -> Result<Self> {
        let mut cfg = client.clone();
        cfg.set("group.id", "orchestra-instances-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        let consumer: BaseConsumer = cfg.create().context("creating the instances consumer")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .context("assigning the instances topic")?;
        consumer
            .assign(&tpl)
            .context("assigning the instances topic")?;
        let records = Arc::new(RwLock::new(Records::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, t) = (records.clone(), stop.clone(), topic.to_string());
        let thread = std::thread::Builder::new()
            .name("view-instances".into())
            .spawn(move || read(consumer, r, s, t))
            .context("spawning the instances view thread")?;
        Ok(Self {
            records,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn records(&self) -> Records {
        self.records
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The server of the instance that owns `task`, if one is known and advertises one.
    pub fn owner(&self, task: TaskId) -> Option<String> {
        let records = self.records();
        owners(&records, now_ms())
            .remove(&TaskRef::from(task))
            .and_then(|key| records.get(&key).and_then(|r| r.server.clone()))
    }

    /// Every instance with the tasks it owns, by key.
    pub fn list(&self) -> Vec<InstanceInfo> {
        let records = self.records();
        let now = now_ms();
        let owners = owners(&records, now);
        records
            .iter()
            .map(|(key, r)| InstanceInfo {
                instance: key.clone(),
                server: r.server.clone(),
                worker_ids: r.worker_ids.clone(),
                active: r
                    .active
                    .iter()
                    .copied()
                    .filter(|t| owners.get(t) == Some(key))
                    .collect(),
                standby: r.standby.clone(),
                assigned_at: r.assigned_at,
                age_ms: now - r.ts,
                alive: r.fresh(now),
            })
            .collect()
    }

    /// Stops the reading thread. Idempotent.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for InstancesView {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Task → the key of the instance that owns it: among fresh records claiming it, the
/// newest `assignedAt` (ties: the newest `ts`, then the key).
fn owners(records: &Records, now: i64) -> BTreeMap<TaskRef, String> {
    let mut best: BTreeMap<TaskRef, (i64, i64, &str)> = BTreeMap::new();
    for (key, r) in records.iter().filter(|(_, r)| r.fresh(now)) {
        let rank = (r.assigned_at, r.ts, key.as_str());
        for t in &r.active {
            let e = best.entry(*t).or_insert(rank);
            if rank > *e {
                *e = rank;
            }
        }
    }
    best.into_iter()
        .map(|(t, (_, _, k))| (t, k.to_string()))
        .collect()
}

fn read(
    consumer: BaseConsumer,
    records: Arc<RwLock<Records>>,
    stop: Arc<AtomicBool>,
    topic: String,
) {
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let Some(key) = m.key() else { continue };
                let key = String::from_utf8_lossy(key).into_owned();
                let mut g = records.write().unwrap_or_else(|p| p.into_inner());
                match m.payload().map(serde_json::from_slice::<InstanceRecord>) {
                    None => {
                        g.remove(&key);
                    }
                    Some(Ok(r)) => {
                        g.insert(key, r);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(topic = %topic, %key, error = %e, "skipping a malformed instance record")
                    }
                }
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(topic = %topic, error = %msg, "instances view read error (retrying)");
                    last_error = Some(msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(active: &[i32], assigned_at: i64, ts: i64) -> InstanceRecord {
        InstanceRecord {
            server: Some(format!("h:{assigned_at}")),
            worker_ids: vec![],
            active: active
                .iter()
                .map(|p| TaskRef {
                    subtopology: 0,
                    partition: *p,
                })
                .collect(),
            standby: vec![],
            assigned_at,
            ts,
        }
    }

    #[test]
    fn the_newest_assignment_wins_and_stale_records_claim_nothing() {
        let now = 100_000;
        let mut r = Records::new();
        // `a` crashed holding 0 and 1 (still fresh); `b` took everything later.
        r.insert("a".into(), rec(&[0, 1], 90_000, 95_000));
        r.insert("b".into(), rec(&[0, 1, 2], 96_000, 99_000));
        // `c` is long gone.
        r.insert("c".into(), rec(&[3], 99_500, now - 31_000));
        let o = owners(&r, now);
        assert_eq!(o.len(), 3);
        assert!(o.values().all(|k| k == "b"));
    }

    #[test]
    fn records_round_trip_with_camel_case_fields() {
        let r = rec(&[2], 1, 2);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["assignedAt"], 1);
        assert_eq!(v["active"][0]["partition"], 2);
        let back: InstanceRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
