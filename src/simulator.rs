//! The match simulator: plays the humans of many matches, as the seeds' sample generator
//! planned. It creates matches across every template, answers prompts and votes as the
//! human seats, and — like real players — sometimes goes silent (the match times the seat
//! out) or sends bad input (malformed JSON, a vote for oneself), which the topology sends
//! to the DLQ.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "localhost:9092");
//! let sim = orchestra::simulator::Simulator::start(&client, orchestra::simulator::SimulatorConfig::default())?;
//! sim.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use processors::game::templates::TEMPLATES;
use processors::robots::{offline, Personalities, RobotTask, TaskKind};
use processors::streams::topics::{MATCH_EVENTS, MATCH_REQUESTS};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schemas::{
    Envelope, Identity, MatchCreate, MatchEventData, MatchRequestData, PlayerRef, ResponseSubmit,
    SeatKind, VoteSubmit,
};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the simulator plays.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Matches to create in total (`None`: forever).
    pub matches: Option<u64>,
    /// Matches running at once.
    pub concurrency: usize,
    /// Rounds per match.
    pub total_rounds: u32,
    /// Chance that a human stays silent in a phase (the match times the seat out).
    pub silence_rate: f64,
    /// Chance per match of sending bad input (malformed JSON, a vote for oneself).
    pub bad_input_rate: f64,
    /// Distinguishes this run's match ids and consumer group.
    pub run_id: String,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            matches: Some(20),
            concurrency: 16,
            total_rounds: 3,
            silence_rate: 0.03,
            bad_input_rate: 0.1,
            run_id: format!("{:x}", now_ms()),
        }
    }
}

/// Live counters of the simulator.
#[derive(Debug, Default)]
pub struct SimulatorStats {
    pub created: AtomicU64,
    pub completed: AtomicU64,
    pub requests: AtomicU64,
    pub bad_inputs: AtomicU64,
    pub silences: AtomicU64,
    pub events_seen: AtomicU64,
}

/// A running simulator.
pub struct Simulator {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
    pub stats: Arc<SimulatorStats>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A deterministic chance in [0, 1) from a string.
fn chance(seed: &str) -> f64 {
    let d = Sha256::digest(seed.as_bytes());
    let n = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    (n >> 11) as f64 / (1u64 << 53) as f64
}

struct SimMatch {
    humans: HashMap<Identity, String>,
}

struct Player {
    client: FutureProducer,
    cfg: SimulatorConfig,
    stats: Arc<SimulatorStats>,
    personalities: Personalities,
    matches: HashMap<String, SimMatch>,
    next: u64,
}

impl Simulator {
    /// Starts playing against the cluster of `client`.
    pub fn start(client: &ClientConfig, cfg: SimulatorConfig) -> Result<Self> {
        let consumer: StreamConsumer = client
            .clone()
            .set("group.id", format!("orchestra-simulator-{}", cfg.run_id))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "20")
            .create()
            .context("simulator consumer")?;
        consumer
            .subscribe(&[MATCH_EVENTS])
            .context("subscribe match-events")?;
        let producer: FutureProducer = client
            .clone()
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .create()
            .context("simulator producer")?;
        let stats = Arc::new(SimulatorStats::default());
        let (stop, rx) = watch::channel(false);
        let player = Player {
            client: producer,
            cfg,
            stats: stats.clone(),
            personalities: Personalities::builtin(),
            matches: HashMap::new(),
            next: 0,
        };
        let task = tokio::spawn(player.run(consumer, rx));
        Ok(Self { stop, task, stats })
    }

    /// Stops playing.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Player {
    async fn run(
        mut self,
        consumer: StreamConsumer,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        for _ in 0..self.cfg.concurrency {
            self.create_next();
        }
        loop {
            let msg = tokio::select! {
                _ = stop.changed() => return Ok(()),
                m = consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "simulator consumer error");
                    continue;
                }
            };
            let Some(payload) = msg.payload() else {
                continue;
            };
            let Ok(ev) = schemas::decode::<MatchEventData>(payload) else {
                continue;
            };
            if !self.matches.contains_key(&ev.match_id) {
                continue;
            }
            self.stats.events_seen.fetch_add(1, Ordering::Relaxed);
            self.on_event(&ev.match_id, &ev.data);
        }
    }

    fn create_next(&mut self) {
        if self.cfg.matches.is_some_and(|n| self.next >= n) {
            return;
        }
        let n = self.next;
        self.next += 1;
        let template = TEMPLATES[(n as usize) % TEMPLATES.len()];
        let match_id = format!("m-{}-{n:05}", self.cfg.run_id);
        let humans = (0..template.humans)
            .map(|i| PlayerRef {
                player_id: format!("{match_id}-p{i}"),
                name: format!("Player {}", i + 1),
            })
            .collect();
        self.matches.insert(
            match_id.clone(),
            SimMatch {
                humans: HashMap::new(),
            },
        );
        if chance(&format!("{match_id}/malformed")) < self.cfg.bad_input_rate {
            self.stats.bad_inputs.fetch_add(1, Ordering::Relaxed);
            self.send_raw(
                &match_id,
                b"{\"eventType\": \"match.create\", oops".to_vec(),
            );
        }
        self.send(
            &match_id,
            format!("{match_id}-create"),
            MatchCreate {
                template: template.name.to_string(),
                total_rounds: self.cfg.total_rounds,
                humans,
                ..Default::default()
            }
            .into(),
        );
        self.stats.created.fetch_add(1, Ordering::Relaxed);
    }

    fn on_event(&mut self, match_id: &str, data: &MatchEventData) {
        match data {
            MatchEventData::MatchCreated(c) => {
                if let Some(m) = self.matches.get_mut(match_id) {
                    for s in &c.seats {
                        if let (SeatKind::Human, Some(p)) = (s.kind, &s.player_id) {
                            m.humans.insert(s.identity, p.clone());
                        }
                    }
                }
            }
            MatchEventData::RoundStarted(r) => {
                let humans = self.humans_of(match_id);
                for (identity, player) in humans {
                    let seed = format!("{match_id}/{}/{}/respond", r.round, identity.as_str());
                    if self.stays_silent(&seed) {
                        continue;
                    }
                    let text = self.human_text(match_id, r.round, identity, &r.prompt);
                    self.send(
                        match_id,
                        format!("{match_id}-{}-{}-response", r.round, identity.as_str()),
                        ResponseSubmit {
                            player_id: player,
                            round: r.round,
                            text,
                        }
                        .into(),
                    );
                }
            }
            MatchEventData::VotingStarted(v) => {
                let humans = self.humans_of(match_id);
                for (identity, player) in humans {
                    let seed = format!("{match_id}/{}/{}/vote", v.round, identity.as_str());
                    if self.stays_silent(&seed) {
                        continue;
                    }
                    let others: Vec<Identity> = v
                        .responses
                        .iter()
                        .map(|r| r.identity)
                        .filter(|i| *i != identity)
                        .collect();
                    if others.is_empty() {
                        continue;
                    }
                    if chance(&format!("{seed}/self")) < self.cfg.bad_input_rate / 3.0 {
                        self.stats.bad_inputs.fetch_add(1, Ordering::Relaxed);
                        self.send(
                            match_id,
                            format!("{match_id}-{}-{}-selfvote", v.round, identity.as_str()),
                            VoteSubmit {
                                player_id: player.clone(),
                                round: v.round,
                                voted_for: identity.as_str().to_string(),
                            }
                            .into(),
                        );
                    }
                    let pick = others[(chance(&format!("{seed}/pick")) * others.len() as f64)
                        as usize
                        % others.len()];
                    self.send(
                        match_id,
                        format!("{match_id}-{}-{}-vote", v.round, identity.as_str()),
                        VoteSubmit {
                            player_id: player,
                            round: v.round,
                            voted_for: pick.as_str().to_string(),
                        }
                        .into(),
                    );
                }
            }
            MatchEventData::MatchCompleted(_) => {
                self.matches.remove(match_id);
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
                self.create_next();
            }
            _ => {}
        }
    }

    /// The human seats of a match this simulator plays, with their player ids.
    fn humans_of(&self, match_id: &str) -> Vec<(Identity, String)> {
        self.matches
            .get(match_id)
            .map(|m| m.humans.iter().map(|(i, p)| (*i, p.clone())).collect())
            .unwrap_or_default()
    }

    /// Whether the player behind `seed` stays silent in this phase (counted when so).
    fn stays_silent(&self, seed: &str) -> bool {
        let silent = chance(seed) < self.cfg.silence_rate;
        if silent {
            self.stats.silences.fetch_add(1, Ordering::Relaxed);
        }
        silent
    }

    fn human_text(&self, match_id: &str, round: u32, identity: Identity, prompt: &str) -> String {
        let names: Vec<&str> = self.personalities.iter().map(|p| p.name.as_str()).collect();
        let name = names[(chance(&format!("{match_id}/{round}/{}", identity.as_str()))
            * names.len() as f64) as usize
            % names.len().max(1)];
        let task = RobotTask {
            command_id: format!("{match_id}-{round}-{}", identity.as_str()),
            robot_id: format!("human-{}", identity.as_str()),
            personality: name.to_string(),
            match_id: match_id.to_string(),
            round,
            identity: identity.as_str().to_string(),
            prompt: prompt.to_string(),
            kind: TaskKind::Respond,
        };
        offline::respond(self.personalities.resolve(name), &task)
    }

    fn send(&self, match_id: &str, request_id: String, data: MatchRequestData) {
        let env: Envelope<MatchRequestData> = Envelope::new(
            request_id.clone(),
            match_id,
            now_ms(),
            &request_id,
            &request_id,
            data,
        );
        match env.to_json_vec() {
            Ok(bytes) => self.send_raw(match_id, bytes),
            Err(e) => tracing::error!(error = %e, "encoding a simulated request"),
        }
    }

    fn send_raw(&self, match_id: &str, bytes: Vec<u8>) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let producer = self.client.clone();
        let key = match_id.to_string();
        tokio::spawn(async move {
            let rec = FutureRecord::to(MATCH_REQUESTS).key(&key).payload(&bytes);
            if let Err((e, _)) = producer.send(rec, Duration::from_secs(30)).await {
                tracing::warn!(error = %e, "simulated request not delivered");
            }
        });
    }
}
