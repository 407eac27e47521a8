//! Robot workers: stateless consumers of `robot-commands` that answer through the robot
//! engine (async-openai, or the offline personality engine) and write `robot-responses`.
//!
//! They form their own consumer group and scale by adding workers. Many commands are in
//! flight at once (bounded by the engine's concurrency); a command's offset is stored for
//! commit only when every command before it on its partition has been answered **and the
//! answer delivered** (at-least-once). A worker that dies mid-batch leaves its unanswered
//! commands to the next owner of the partition; a second answer to the same command has
//! the same event id and the match processor ignores it.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use processors::robots::{Personalities, RobotEngine, RobotEngineConfig};
//! let engine = RobotEngine::new(RobotEngineConfig::default(), Personalities::builtin())?;
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "localhost:9092");
//! let worker = orchestra::robot_worker::RobotWorker::start(&client, "robotorchestra-robots", "robotorchestra-dlq", engine)?;
//! worker.stop().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use processors::robots::{Answer, Candidate, PastRound, RobotEngine, RobotTask, TaskKind};
use processors::streams::topics::{ROBOT_COMMANDS, ROBOT_RESPONSES};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use schemas::{
    CommandKind, Envelope, ResponseFailed, ResponseSubmitted, RobotCommand, RobotCommandData,
    RobotResponseData, VoteSubmitted,
};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::kafka_config::Tuning;

/// Counters of a robot worker.
#[derive(Debug, Default)]
pub struct RobotWorkerStats {
    pub answered: AtomicU64,
    pub failed: AtomicU64,
    pub invalid: AtomicU64,
    pub in_flight: AtomicU64,
}

/// Per-partition bookkeeping: the offset that is safe to commit.
#[derive(Default)]
struct Progress {
    in_flight: HashMap<i32, BTreeSet<i64>>,
    highest_done: HashMap<i32, i64>,
}

impl Progress {
    fn begin(&mut self, p: i32, o: i64) {
        self.in_flight.entry(p).or_default().insert(o);
    }

    /// Marks `o` done; returns the next offset safe to commit for `p`.
    fn finish(&mut self, p: i32, o: i64) -> i64 {
        let set = self.in_flight.entry(p).or_default();
        set.remove(&o);
        let hd = self.highest_done.entry(p).or_insert(o);
        *hd = (*hd).max(o);
        match set.first() {
            Some(first) => *first,
            None => *hd + 1,
        }
    }
}

/// A running robot worker.
pub struct RobotWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    pub stats: Arc<RobotWorkerStats>,
}

impl RobotWorker {
    /// Joins group `group` on `robot-commands` and starts answering.
    pub fn start(
        client: &ClientConfig,
        group: &str,
        dlq_topic: &str,
        engine: RobotEngine,
    ) -> Result<Self> {
        let consumer: StreamConsumer = client
            .clone()
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .tune("session.timeout.ms", "6000")
            .tune("heartbeat.interval.ms", "1500")
            .tune("fetch.wait.max.ms", "20")
            .create()
            .context("robot worker consumer")?;
        consumer
            .subscribe(&[ROBOT_COMMANDS])
            .context("subscribe robot-commands")?;
        let producer: FutureProducer = client
            .clone()
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .tune("linger.ms", "2")
            .create()
            .context("robot worker producer")?;
        // Registered at 0, so that a DLQ rate reads 0 rather than no data.
        count_dlq_record(0);
        let stats = Arc::new(RobotWorkerStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            consumer,
            producer,
            engine,
            stats.clone(),
            stop_rx,
            dlq_topic.to_string(),
        ));
        Ok(Self { stop, task, stats })
    }

    /// Stops taking commands, waits for those in flight, commits and leaves.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops at once: in-flight answers are dropped and their offsets not committed.
    pub fn kill(self) {
        self.task.abort();
    }
}

async fn run(
    consumer: StreamConsumer,
    producer: FutureProducer,
    engine: RobotEngine,
    stats: Arc<RobotWorkerStats>,
    mut stop: watch::Receiver<bool>,
    dlq: String,
) {
    let consumer = Arc::new(consumer);
    let progress = Arc::new(Mutex::new(Progress::default()));
    let limit = Arc::new(Semaphore::new(1024));
    // In-flight answers live in this set: if the worker is killed (this future dropped),
    // they are aborted with it and their offsets are never stored.
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        let msg = tokio::select! {
            _ = stop.changed() => break,
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "robot worker consumer error");
                continue;
            }
        };
        let (partition, offset) = (msg.partition(), msg.offset());
        let key = msg.key().map(<[u8]>::to_vec).unwrap_or_default();
        let payload = msg.payload().map(<[u8]>::to_vec).unwrap_or_default();
        drop(msg);
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        if let Ok(mut p) = progress.lock() {
            p.begin(partition, offset);
        }
        // `orchestra_robot_commands_in_flight` is the engine's (one count per command).
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let (engine, producer, consumer, progress, stats, dlq) = (
            engine.clone(),
            producer.clone(),
            Arc::downgrade(&consumer),
            progress.clone(),
            stats.clone(),
            dlq.clone(),
        );
        in_flight.spawn(async move {
            let delivered = answer_one(&engine, &producer, &key, &payload, partition, offset, &stats, &dlq).await;
            stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            if delivered {
                let next = progress.lock().map(|mut p| p.finish(partition, offset)).ok();
                if let (Some(next), Some(consumer)) = (next, consumer.upgrade()) {
                    let mut tpl = TopicPartitionList::new();
                    if tpl.add_partition_offset(ROBOT_COMMANDS, partition, Offset::Offset(next)).is_ok() {
                        if let Err(e) = consumer.store_offsets(&tpl) {
                            tracing::debug!(error = %e, "offset store refused (partition revoked?)");
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    // Wait for in-flight answers, then commit what is stored.
    while in_flight.join_next().await.is_some() {}
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %e, "final robot offset commit");
    }
}

/// Counts `n` undecodable commands sent to the DLQ (the runtime's DLQ counter, with this
/// consumer as the processor).
fn count_dlq_record(n: u64) {
    metrics::counter!(
        topology::metrics::DLQ_RECORDS,
        "kind" => "deserialization",
        "processor" => "robot-worker"
    )
    .increment(n);
}

/// Answers one command; returns whether its result was delivered (so its offset may commit).
#[allow(clippy::too_many_arguments)]
async fn answer_one(
    engine: &RobotEngine,
    producer: &FutureProducer,
    key: &[u8],
    payload: &[u8],
    partition: i32,
    offset: i64,
    stats: &RobotWorkerStats,
    dlq: &str,
) -> bool {
    let cmd: RobotCommand = match schemas::decode::<RobotCommandData>(payload) {
        Ok(c) => c,
        Err(e) => {
            stats.invalid.fetch_add(1, Ordering::Relaxed);
            count_dlq_record(1);
            tracing::warn!(partition, offset, error = %e, "undecodable robot command sent to the DLQ");
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "error",
                    value: Some(e.to_string().as_bytes()),
                })
                .insert(Header {
                    key: "source.topic",
                    value: Some(ROBOT_COMMANDS.as_bytes()),
                })
                .insert(Header {
                    key: "source.partition",
                    value: Some(partition.to_string().as_bytes()),
                })
                .insert(Header {
                    key: "source.offset",
                    value: Some(offset.to_string().as_bytes()),
                });
            let rec = FutureRecord::to(dlq)
                .key(key)
                .payload(payload)
                .headers(headers);
            return producer.send(rec, Duration::from_secs(30)).await.is_ok();
        }
    };
    let (task, kind) = to_task(&cmd);
    let data: RobotResponseData = match engine.answer(task.clone()).await {
        Ok(a) => {
            stats.answered.fetch_add(1, Ordering::Relaxed);
            match a.text_or_vote {
                Answer::Text(text) => ResponseSubmitted {
                    command_id: task.command_id.clone(),
                    robot_id: task.robot_id.clone(),
                    identity: task.identity.clone(),
                    round: task.round,
                    text,
                    model: a.model,
                    latency_ms: a.latency_ms,
                    tokens: a.tokens,
                }
                .into(),
                Answer::Vote(voted_for) => VoteSubmitted {
                    command_id: task.command_id.clone(),
                    robot_id: task.robot_id.clone(),
                    identity: task.identity.clone(),
                    round: task.round,
                    voted_for,
                }
                .into(),
            }
        }
        Err(f) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            ResponseFailed {
                command_id: task.command_id.clone(),
                robot_id: task.robot_id.clone(),
                identity: task.identity.clone(),
                round: task.round,
                kind,
                reason: f.reason,
            }
            .into()
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    // Deterministic id: a second answer to the same command is a duplicate by id.
    let response: Envelope<RobotResponseData> = Envelope::new(
        format!("{}-answer", cmd.event_id),
        &cmd.match_id,
        now,
        &cmd.correlation_id,
        &cmd.event_id,
        data,
    );
    let Ok(bytes) = response.to_json_vec() else {
        return false;
    };
    let rec = FutureRecord::to(ROBOT_RESPONSES)
        .key(cmd.match_id.as_bytes())
        .payload(&bytes);
    match producer.send(rec, Duration::from_secs(30)).await {
        Ok(_) => true,
        Err((e, _)) => {
            tracing::warn!(error = %e, "robot answer not delivered; the command will be answered again");
            false
        }
    }
}

/// Maps a command to the engine's task.
pub fn to_task(cmd: &RobotCommand) -> (RobotTask, CommandKind) {
    match &cmd.data {
        RobotCommandData::GenerateResponse(g) => (
            RobotTask {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                personality: g.personality.clone(),
                match_id: cmd.match_id.clone(),
                round: g.round,
                identity: g.identity.as_str().to_string(),
                prompt: g.prompt.clone(),
                // Issue 15 item 4: a command the orchestration held for the robot's
                // think time carries the answers recorded meanwhile (possibly none), and
                // the robot reads the room (without thinking a second time).
                // The match's earlier rounds come with every answer command after the
                // first round; a robot reads them even when its command was not held.
                kind: match (&g.context.other_responses_so_far, &g.context.earlier_rounds) {
                    (None, earlier) if earlier.is_empty() => TaskKind::Respond,
                    (others, earlier) => TaskKind::RespondToRoom {
                        others: others.iter().flatten().map(candidate).collect(),
                        earlier: earlier
                            .iter()
                            .map(|r| PastRound {
                                round: r.round,
                                prompt: r.prompt.clone(),
                                answers: r.responses.iter().map(candidate).collect(),
                            })
                            .collect(),
                    },
                },
            },
            CommandKind::Response,
        ),
        RobotCommandData::GenerateVote(v) => (
            RobotTask {
                command_id: v.command_id.clone(),
                robot_id: v.robot_id.clone(),
                personality: v.personality.clone(),
                match_id: cmd.match_id.clone(),
                round: v.round,
                identity: v.identity.as_str().to_string(),
                prompt: v.prompt.clone(),
                kind: TaskKind::Vote {
                    candidates: v.candidates.iter().map(candidate).collect(),
                },
            },
            CommandKind::Vote,
        ),
    }
}

/// An anonymous answer as the robot engine reads it.
fn candidate(r: &schemas::PresentedResponse) -> Candidate {
    Candidate {
        identity: r.identity.as_str().to_string(),
        text: r.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn commit_offset_waits_for_the_oldest_unanswered_command() {
        let mut p = Progress::default();
        for o in 10..15 {
            p.begin(0, o);
        }
        assert_eq!(p.finish(0, 12), 10);
        assert_eq!(p.finish(0, 10), 11);
        assert_eq!(p.finish(0, 11), 13);
        assert_eq!(p.finish(0, 14), 13);
        assert_eq!(p.finish(0, 13), 15);
    }
}
