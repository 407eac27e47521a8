//! Latency under load (issue 17 item 5): how long a player waits from `POST` to the event
//! it caused, and to the robot command it led to, at an offered request rate; and the
//! highest rate the system sustains with p99 under 100 ms.
//!
//! **Setup.** The embedded broker (librdkafka's mock cluster, what `orchestra broker` runs)
//! in this process, with every topic of the game ([`orchestra::topics::create_embedded`],
//! [`PARTITIONS`] partitions) and the topology's internal topics; one worker *process*
//! (this binary re-run as `scale latency-worker …`) running what `orchestra run --role all
//! --http 127.0.0.1:0` runs ([`orchestra::run::run`]: stream worker, robot workers, the
//! HTTP API), robots answering at once (think-time scale 0, canned answers: no LLM key),
//! 60 s response and voting windows so that nothing times out, and the product's default
//! librdkafka settings (see [`kafka_settings`] for the knobs to try others).
//!
//! **Load.** Open loop, in this process (async `reqwest` on tokio): a set of concurrent
//! `duel_2v1` matches of [`ROUNDS`] rounds (two humans, one robot) is played through the
//! API; every human answers as soon as its round's `round.started` is seen and votes as soon
//! as `round.voting_started` is seen; these ready actions wait in a queue and a token bucket
//! releases them at the offered rate R (a token not used within [`BURST`] is lost, so a
//! shortage of ready actions shows as an achieved rate below R). A finished match
//! (`match.completed`) is replaced by a new `POST /matches`. The number of concurrent
//! matches grows with R, enough to keep actions ready: R / 12 under at_least_once, R / 3
//! under exactly_once (whose phases take longer: a record is seen once its transaction
//! commits), at least 16, at most 400. The robot pool holds at most 20 robots per shard
//! (partition), a duel takes one, and a round whose robot is not free waits for one (FIFO):
//! that slows those matches down but not the figures, which are per request.
//!
//! **Measuring point.** "Accepted" is the instant just before the `POST` is sent (so the
//! figure includes the HTTP round trip into the API, its produce to `match-requests`, the
//! stream worker, the broker and one fetch). Every request carries an `Idempotency-Key`,
//! which becomes its request id; the driver's own consumer tails `match-events` and
//! `robot-commands` (from their ends, `fetch.wait.max.ms` 10, `read_committed`) and stamps
//! - accepted → match-event: the first `match-events` event whose `causationId` is the
//!   request id (`match.created`, `response.recorded`, `vote.recorded`);
//! - accepted → robot-command: the first `robot-commands` command whose `correlationId` is
//!   the request id (a create's first `generate.response`; the `generate.vote`s after a
//!   human response that completed a phase).
//!
//! Exact per-request latencies, one clock (monotonic). A request whose event never came
//! (within the step and its drain) counts as infinitely late in the percentiles.
//!
//! **Ramp.** [`RAMP`] req/s, [`STEP`] each after [`WARM`] of warm-up (excluded), a
//! [`DRAIN`] pause between steps; it stops once p99 accepted → match-event exceeds 100 ms
//! or the achieved rate is under 90 % of the offered one. Per-step figures go to stderr
//! (with the `POST` → `202` round trips, for comparison).
//! Then, if asked for, the 1000 req/s step again on a fresh broker and worker under
//! exactly_once with a [`EOS_COMMIT`] commit interval.
//!
//! **Where the time goes.** The driver's tail also reads `match-requests`, so each step's
//! stderr line splits accepted → match-event into `POST` → the request on
//! `match-requests` (the HTTP hop and the API's produce) and `match-requests` →
//! `match-events` (the stream worker's hop); the two ends of each part are read by the same
//! consumer. Knobs for looking closer: `SCALE_RATES=1000` (comma-separated) plays only
//! those steps, `SCALE_COMMIT_MS` sets the at_least_once worker's commit interval,
//! `SCALE_FETCH_WAIT_MS` / `SCALE_LINGER_MS` the clients' settings (see
//! [`kafka_settings`]), `SCALE_LOG` the worker's log filter.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use processors::streams::{game_topology, topics, GameSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use topology::{EmbeddedBroker, ProcessingGuarantee};

use super::env_ms;

/// Partitions of every topic.
const PARTITIONS: i32 = 8;
/// Rounds of each match.
const ROUNDS: u64 = 3;
/// The offered rates of the ramp, req/s.
const RAMP: [f64; 7] = [250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0];
/// The rate of the headline figures.
const HEADLINE: f64 = 1000.0;
/// Measured part of each step.
const STEP: Duration = Duration::from_secs(10);
/// Warm-up before each step's measured part.
const WARM: Duration = Duration::from_secs(2);
/// Pause after each step for late events.
const DRAIN: Duration = Duration::from_millis(1500);
/// Unused tokens kept at most.
const BURST: Duration = Duration::from_millis(20);
/// The p99 a sustained rate stays under, ms.
const P99_LIMIT_MS: f64 = 100.0;
/// Commit interval of the exactly_once run.
const EOS_COMMIT: Duration = Duration::from_millis(100);
/// A match without progress for this long is abandoned and replaced.
const STALLED: Duration = Duration::from_secs(15);
/// Concurrent matches at least and at most.
const MIN_MATCHES: usize = 16;
const MAX_MATCHES: usize = 400;
const APP: &str = "scale-latency";

/// Prints the latency lines (and the ramp to stderr); `exactly_once` adds the
/// exactly_once lines.
pub fn run(exactly_once: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let steps = rt.block_on(bench(ProcessingGuarantee::AtLeastOnce, &ramp(), true, 12.0))?;
    let head = steps
        .iter()
        .find(|s| s.offered == HEADLINE)
        .ok_or_else(|| anyhow!("the {HEADLINE} req/s step did not run"))?;
    println!(
        "p50 accepted to match-event at 1000 req/s{}: {} ms",
        short(head),
        ms(head.event_p50)
    );
    println!(
        "p99 accepted to match-event at 1000 req/s{}: {} ms",
        short(head),
        ms(head.event_p99)
    );
    println!(
        "p50 accepted to robot-command at 1000 req/s{}: {} ms",
        short(head),
        ms(head.command_p50)
    );
    println!(
        "p99 accepted to robot-command at 1000 req/s{}: {} ms",
        short(head),
        ms(head.command_p99)
    );
    // The highest offered rate that held (a lower step may miss on a noisy machine).
    let sustained = steps
        .iter()
        .filter(|s| s.sustained())
        .map(|s| s.offered)
        .fold(0.0, f64::max);
    println!("max sustained req/s: {sustained}");
    if exactly_once {
        let steps = rt.block_on(bench(
            ProcessingGuarantee::ExactlyOnce,
            &[HEADLINE],
            false,
            3.0,
        ))?;
        let s = steps
            .first()
            .ok_or_else(|| anyhow!("the exactly_once step did not run"))?;
        let c = EOS_COMMIT.as_millis();
        println!(
            "p50 accepted to match-event at 1000 req/s (exactly_once, commit {c} ms{}): {} ms",
            achieved(s),
            ms(s.event_p50)
        );
        println!(
            "p99 accepted to match-event at 1000 req/s (exactly_once, commit {c} ms{}): {} ms",
            achieved(s),
            ms(s.event_p99)
        );
    }
    Ok(())
}

/// The ramp's rates: `SCALE_RATES` (comma-separated req/s, to look at a few steps), else
/// [`RAMP`]. The headline figures need the 1000 req/s step.
fn ramp() -> Vec<f64> {
    std::env::var("SCALE_RATES")
        .ok()
        .map(|v| v.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|| RAMP.to_vec())
}

/// `" (achieved N req/s)"` when a step's achieved rate is under 90 % of the offered one.
fn short(s: &StepResult) -> String {
    if s.achieved >= 0.9 * s.offered {
        String::new()
    } else {
        format!(" (achieved {:.0} req/s)", s.achieved)
    }
}

/// `"; achieved N req/s"` under the same condition (inside parentheses).
fn achieved(s: &StepResult) -> String {
    if s.achieved >= 0.9 * s.offered {
        String::new()
    } else {
        format!("; achieved {:.0} req/s", s.achieved)
    }
}

fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "∞ (events missing)".into()
    }
}

/// One step's figures.
#[derive(Debug, Clone)]
struct StepResult {
    offered: f64,
    achieved: f64,
    sent: usize,
    missing: usize,
    errors: usize,
    event_p50: f64,
    event_p99: f64,
    command_p50: f64,
    command_p99: f64,
    commands: usize,
    ack_p50: f64,
    ack_p99: f64,
    /// `POST` → the request read from `match-requests`.
    written_p50: f64,
    written_p99: f64,
    /// The request read from `match-requests` → its event read from `match-events` (the
    /// stream worker's hop, both ends read by the same consumer).
    hop_p50: f64,
    hop_p99: f64,
}

impl StepResult {
    fn sustained(&self) -> bool {
        self.event_p99 < P99_LIMIT_MS && self.achieved >= 0.9 * self.offered
    }
}

/// Starts a broker and a worker under `guarantee`, plays the `rates` (stopping early after
/// the headline once a step is not sustained when `stop_early`) with one concurrent match
/// per `rps_per_match` req/s offered.
async fn bench(
    guarantee: ProcessingGuarantee,
    rates: &[f64],
    stop_early: bool,
    rps_per_match: f64,
) -> Result<Vec<StepResult>> {
    let started = Instant::now();
    let broker = EmbeddedBroker::start()?;
    let bootstrap = broker.bootstrap_servers();
    orchestra::topics::create_embedded(&broker, PARTITIONS)?;
    broker.create_internal_topics(&game_topology(&GameSettings::default()), APP, PARTITIONS)?;
    // The instances topic too (the worker would create it through the admin API, which the
    // mock cluster does not answer).
    broker.create_topic(&orchestra::instances::topic(APP), 1)?;
    let state = tempfile::tempdir()?;
    let mut worker = WorkerProc::spawn(&bootstrap, state.path().into(), guarantee)?;
    let result = drive(
        &bootstrap,
        worker.addr,
        guarantee,
        rates,
        (stop_early, rps_per_match),
        started,
    )
    .await;
    worker.stop();
    result
}

/// The worker child process.
struct WorkerProc {
    child: Child,
    addr: SocketAddr,
}

impl WorkerProc {
    fn spawn(bootstrap: &str, dir: PathBuf, guarantee: ProcessingGuarantee) -> Result<Self> {
        let g = match guarantee {
            ProcessingGuarantee::ExactlyOnce => "exactly_once",
            _ => "at_least_once",
        };
        let mut child = Command::new(std::env::current_exe()?)
            .args(["latency-worker", bootstrap, &dir.display().to_string(), g])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the latency worker process")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("read API: http://") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the latency worker did not report its HTTP address within 60 s");
            }
        };
        let addr = addr
            .parse()
            .with_context(|| format!("the worker's address {addr:?}"))?;
        Ok(Self { child, addr })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `scale latency-worker BOOTSTRAP STATE_DIR GUARANTEE`: `orchestra run --role all --http
/// 127.0.0.1:0` with long windows and robots answering at once; prints `read API: …`.
pub fn worker(args: &[String]) -> Result<()> {
    let [bootstrap, dir, guarantee] = args else {
        bail!("usage: scale latency-worker BOOTSTRAP STATE_DIR at_least_once|exactly_once");
    };
    if let Ok(filter) = std::env::var("SCALE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let processing_guarantee: ProcessingGuarantee = guarantee
        .parse()
        .map_err(|e| anyhow!("processing guarantee {guarantee:?}: {e}"))?;
    // `SCALE_COMMIT_MS` sets the at_least_once worker's commit interval (to compare).
    let commit_interval = if processing_guarantee == ProcessingGuarantee::ExactlyOnce {
        Some(EOS_COMMIT)
    } else {
        env_ms("SCALE_COMMIT_MS").map(Duration::from_millis)
    };
    let opts = orchestra::run::RunOptions {
        bootstrap: bootstrap.clone(),
        kafka: kafka_settings(),
        application_id: APP.into(),
        worker_id: "latency-0".into(),
        state_dir: dir.into(),
        processing_guarantee,
        role: orchestra::run::Role::All,
        http: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        application_server: None,
        llm: Default::default(),
        robot_concurrency: 32,
        think_time_scale: 0.0,
        replication_factor: -1,
        commit_interval,
        // `orchestra run`'s default (`--output-linger-ms 0`).
        output_linger: Duration::ZERO,
        restore_consumers: None,
        num_standby_replicas: 0,
        view_cache_mb: 64,
        robots_window_ms: None,
        response_window_ms: 60_000,
        voting_window_ms: 60_000,
        deadline_grace_ms: 2_000,
    };
    // The recorder as the binary installs it: the worker's cost includes its metrics, and
    // its `/metrics` shows the server-side latency histograms next to the driver's figures.
    let metrics = orchestra::metrics::install();
    tokio::runtime::Runtime::new()?.block_on(orchestra::run::run(opts, metrics))
}

/// The worker's librdkafka settings (its `--kafka-config`): the product's defaults unless
/// `SCALE_FETCH_WAIT_MS` / `SCALE_LINGER_MS` set `fetch.wait.max.ms` / `linger.ms`. The
/// embedded broker answers a waiting fetch as soon as records arrive (vendor/README.md), so
/// the fetch wait bounds only how often an idle consumer asks; `linger.ms` still adds to
/// each produce.
fn kafka_settings() -> orchestra::kafka_config::KafkaSettings {
    let mut s = orchestra::kafka_config::KafkaSettings::default();
    if let Some(ms) = env_ms("SCALE_FETCH_WAIT_MS") {
        s.set("fetch.wait.max.ms", ms.to_string());
    }
    if let Some(ms) = env_ms("SCALE_LINGER_MS") {
        s.set("linger.ms", ms.to_string());
    }
    s
}

/// The tail's `fetch.wait.max.ms`: `SCALE_FETCH_WAIT_MS`, else 10 (as the API's tails).
fn tail_fetch_wait_ms() -> u64 {
    env_ms("SCALE_FETCH_WAIT_MS").unwrap_or(10)
}

/// What the tail saw.
enum Seen {
    Event {
        at: Instant,
        match_id: String,
        kind: String,
        causation: String,
        round: u64,
        /// `match.created`: playerId → seat identity, and all identities.
        seats: Vec<(Option<String>, String)>,
    },
    Command {
        at: Instant,
        correlation: String,
    },
    /// A player's request on `match-requests` (its `eventId` is the request id).
    Request {
        at: Instant,
        id: String,
    },
}

/// Tails `match-events`, `robot-commands` and `match-requests` from their current ends
/// until `stop`.
fn tail(bootstrap: &str, tx: mpsc::UnboundedSender<Seen>, stop: Arc<AtomicBool>) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "scale-latency-tail")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", tail_fetch_wait_ms().to_string())
        .set("fetch.min.bytes", "1")
        .create()
        .context("tail consumer")?;
    let mut tpl = TopicPartitionList::new();
    for t in [
        topics::MATCH_EVENTS,
        topics::ROBOT_COMMANDS,
        topics::MATCH_REQUESTS,
    ] {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(t, p, Offset::End)?;
        }
    }
    consumer.assign(&tpl)?;
    while !stop.load(Ordering::Relaxed) {
        let Some(m) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let at = Instant::now();
        let Ok(m) = m else { continue };
        let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<Value>) else {
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let seen = if m.topic() == topics::MATCH_REQUESTS {
            Seen::Request {
                at,
                id: s("eventId"),
            }
        } else if m.topic() == topics::ROBOT_COMMANDS {
            Seen::Command {
                at,
                correlation: s("correlationId"),
            }
        } else {
            let seats = v["data"]["seats"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (
                                s["playerId"].as_str().map(String::from),
                                s["identity"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Seen::Event {
                at,
                match_id: s("matchId"),
                kind: s("eventType"),
                causation: s("causationId"),
                round: v["data"]["round"].as_u64().unwrap_or(0),
                seats,
            }
        };
        if tx.send(seen).is_err() {
            break;
        }
    }
    Ok(())
}

/// A request ready to be sent.
#[derive(Debug, Clone)]
enum Action {
    Create {
        match_id: String,
    },
    Respond {
        match_id: String,
        player: String,
        round: u64,
    },
    Vote {
        match_id: String,
        player: String,
        round: u64,
    },
}

/// The answer to a `POST`.
struct Answer {
    request_id: String,
    match_id: String,
    create: bool,
    /// `playerTokens` of a create's `202`.
    tokens: Option<HashMap<String, String>>,
    error: Option<String>,
    /// `POST` → its answer, ms.
    rtt: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Respond(u64),
    Vote(u64),
}

#[derive(Default)]
struct Match {
    tokens: Option<HashMap<String, String>>,
    /// playerId → identity.
    seats: HashMap<String, String>,
    identities: Vec<String>,
    phase: Option<Phase>,
    enqueued: Option<Phase>,
    progress: Option<Instant>,
}

/// A request sent.
struct Sent {
    at: Instant,
    step: usize,
    event: Option<f64>,
    command: Option<f64>,
    /// `POST` → `202`, ms.
    acked: Option<f64>,
    /// `POST` → the request read from `match-requests`, ms.
    written: Option<f64>,
}

const PLAYERS: [&str; 2] = ["p1", "p2"];

struct Driver {
    api: String,
    http: reqwest::Client,
    answers: mpsc::UnboundedSender<Answer>,
    matches: HashMap<String, Match>,
    ready: VecDeque<Action>,
    sent: HashMap<String, Sent>,
    next_id: u64,
    run: String,
    errors: Vec<usize>,
}

impl Driver {
    fn new_match(&mut self) {
        self.next_id += 1;
        let match_id = format!("{}-m{}", self.run, self.next_id);
        self.matches.insert(
            match_id.clone(),
            Match {
                progress: Some(Instant::now()),
                ..Match::default()
            },
        );
        self.ready.push_back(Action::Create { match_id });
    }

    /// Enqueues the humans' actions of `m`'s current phase, once.
    fn maybe_enqueue(&mut self, match_id: &str) {
        let Some(m) = self.matches.get_mut(match_id) else {
            return;
        };
        let (Some(phase), Some(_)) = (m.phase, &m.tokens) else {
            return;
        };
        if m.enqueued == Some(phase) {
            return;
        }
        if matches!(phase, Phase::Vote(_)) && m.seats.len() < PLAYERS.len() {
            return;
        }
        m.enqueued = Some(phase);
        for p in PLAYERS {
            let (match_id, player) = (match_id.to_string(), p.to_string());
            self.ready.push_back(match phase {
                Phase::Respond(round) => Action::Respond {
                    match_id,
                    player,
                    round,
                },
                Phase::Vote(round) => Action::Vote {
                    match_id,
                    player,
                    round,
                },
            });
        }
    }

    /// Sends `action` (on a task of its own), tagged with `step`.
    fn send(&mut self, action: Action, step: usize) {
        let (match_id, request_id, url, token, body, create) = match &action {
            Action::Create { match_id } => (
                match_id.clone(),
                match_id.clone(),
                format!("{}/matches", self.api),
                None,
                json!({"template": "duel_2v1", "totalRounds": ROUNDS,
                       "humans": [{"playerId": "p1", "name": "One"},
                                  {"playerId": "p2", "name": "Two"}]}),
                true,
            ),
            Action::Respond {
                match_id,
                player,
                round,
            } => {
                let Some(token) = self.token(match_id, player) else {
                    return;
                };
                (
                    match_id.clone(),
                    format!("{match_id}-{player}-r{round}"),
                    format!("{}/matches/{match_id}/responses", self.api),
                    Some(token),
                    json!({"playerId": player, "round": round, "text": "Tea, always tea."}),
                    false,
                )
            }
            Action::Vote {
                match_id,
                player,
                round,
            } => {
                let Some(token) = self.token(match_id, player) else {
                    return;
                };
                let m = &self.matches[match_id];
                let own = m.seats.get(player).cloned().unwrap_or_default();
                let Some(target) = m.identities.iter().find(|i| **i != own).cloned() else {
                    return;
                };
                (
                    match_id.clone(),
                    format!("{match_id}-{player}-v{round}"),
                    format!("{}/matches/{match_id}/votes", self.api),
                    Some(token),
                    json!({"playerId": player, "round": round, "votedFor": target}),
                    false,
                )
            }
        };
        let at = Instant::now();
        self.sent.insert(
            request_id.clone(),
            Sent {
                at,
                step,
                event: None,
                command: None,
                acked: None,
                written: None,
            },
        );
        let (http, answers) = (self.http.clone(), self.answers.clone());
        tokio::spawn(async move {
            let mut req = http
                .post(&url)
                .header("Idempotency-Key", &request_id)
                .json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let mut answer = Answer {
                request_id,
                match_id,
                create,
                tokens: None,
                error: None,
                rtt: 0.0,
            };
            let t0 = Instant::now();
            let result = req.send().await;
            answer.rtt = t0.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(r) if r.status().as_u16() == 202 => {
                    if create {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        answer.tokens = v["playerTokens"].as_object().map(|o| {
                            o.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        });
                        if answer.tokens.is_none() {
                            answer.error = Some(format!("no playerTokens in {v}"));
                        }
                    }
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    answer.error = Some(format!("{url}: {status} {text}"));
                }
                Err(e) => answer.error = Some(format!("{url}: {e}")),
            }
            let _ = answers.send(answer);
        });
    }

    fn token(&self, match_id: &str, player: &str) -> Option<String> {
        self.matches
            .get(match_id)?
            .tokens
            .as_ref()?
            .get(player)
            .cloned()
    }

    fn on_seen(&mut self, seen: Seen) {
        match seen {
            Seen::Request { at, id } => {
                if let Some(s) = self.sent.get_mut(&id) {
                    s.written.get_or_insert((at - s.at).as_secs_f64() * 1000.0);
                }
            }
            Seen::Command { at, correlation } => {
                if let Some(s) = self.sent.get_mut(&correlation) {
                    if s.command.is_none() {
                        s.command = Some((at - s.at).as_secs_f64() * 1000.0);
                    }
                }
            }
            Seen::Event {
                at,
                match_id,
                kind,
                causation,
                round,
                seats,
            } => {
                if let Some(s) = self.sent.get_mut(&causation) {
                    if s.event.is_none() {
                        s.event = Some((at - s.at).as_secs_f64() * 1000.0);
                    }
                }
                let Some(m) = self.matches.get_mut(&match_id) else {
                    return;
                };
                m.progress = Some(at);
                match kind.as_str() {
                    "match.created" => {
                        m.identities = seats.iter().map(|(_, i)| i.clone()).collect();
                        m.seats = seats
                            .into_iter()
                            .filter_map(|(p, i)| Some((p?, i)))
                            .collect();
                    }
                    "round.started" => m.phase = Some(Phase::Respond(round)),
                    "round.voting_started" => m.phase = Some(Phase::Vote(round)),
                    "match.completed" => {
                        self.matches.remove(&match_id);
                        self.new_match();
                        return;
                    }
                    _ => return,
                }
                self.maybe_enqueue(&match_id);
            }
        }
    }

    fn on_answer(&mut self, a: Answer, step: usize) {
        if let Some(s) = self.sent.get_mut(&a.request_id) {
            if a.error.is_none() {
                s.acked = Some(a.rtt);
            }
        }
        if let Some(e) = a.error {
            if self.errors.len() <= step {
                self.errors.resize(step + 1, 0);
            }
            self.errors[step] += 1;
            if self.errors.iter().sum::<usize>() <= 5 {
                eprintln!("scale latency: request {} failed: {e}", a.request_id);
            }
            // The match cannot go on: replace it.
            if self.matches.remove(&a.match_id).is_some() {
                self.new_match();
            }
            return;
        }
        if a.create {
            if let Some(m) = self.matches.get_mut(&a.match_id) {
                m.tokens = a.tokens;
            }
            self.maybe_enqueue(&a.match_id);
        }
    }

    /// Replaces matches without progress for [`STALLED`].
    fn replace_stalled(&mut self) {
        let stalled: Vec<String> = self
            .matches
            .iter()
            .filter(|(_, m)| m.progress.is_some_and(|p| p.elapsed() > STALLED))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stalled {
            self.matches.remove(&id);
            self.ready.retain(|a| match a {
                Action::Create { match_id }
                | Action::Respond { match_id, .. }
                | Action::Vote { match_id, .. } => *match_id != id,
            });
            self.new_match();
        }
    }

    fn step_result(&self, step: usize, offered: f64, measured: Duration) -> StepResult {
        let mut events = Vec::new();
        let mut commands = Vec::new();
        let mut acks = Vec::new();
        let mut written = Vec::new();
        let mut hops = Vec::new();
        let mut sent = 0;
        for s in self.sent.values().filter(|s| s.step == step) {
            sent += 1;
            events.push(s.event.unwrap_or(f64::INFINITY));
            if let Some(c) = s.command {
                commands.push(c);
            }
            acks.push(s.acked.unwrap_or(f64::INFINITY));
            written.push(s.written.unwrap_or(f64::INFINITY));
            if let (Some(w), Some(e)) = (s.written, s.event) {
                hops.push(e - w);
            }
        }
        acks.sort_by(f64::total_cmp);
        written.sort_by(f64::total_cmp);
        hops.sort_by(f64::total_cmp);
        events.sort_by(f64::total_cmp);
        commands.sort_by(f64::total_cmp);
        StepResult {
            offered,
            achieved: sent as f64 / measured.as_secs_f64(),
            sent,
            missing: events.iter().filter(|e| e.is_infinite()).count(),
            errors: self.errors.get(step).copied().unwrap_or(0),
            event_p50: percentile(&events, 0.50),
            event_p99: percentile(&events, 0.99),
            command_p50: percentile(&commands, 0.50),
            command_p99: percentile(&commands, 0.99),
            commands: commands.len(),
            ack_p50: percentile(&acks, 0.50),
            ack_p99: percentile(&acks, 0.99),
            written_p50: percentile(&written, 0.50),
            written_p99: percentile(&written, 0.99),
            hop_p50: percentile(&hops, 0.50),
            hop_p99: percentile(&hops, 0.99),
        }
    }
}

/// Nearest-rank percentile of sorted values (∞ when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::INFINITY;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Plays the ramp against the API at `addr`.
async fn drive(
    bootstrap: &str,
    addr: SocketAddr,
    guarantee: ProcessingGuarantee,
    rates: &[f64],
    (stop_early, rps_per_match): (bool, f64),
    started: Instant,
) -> Result<Vec<StepResult>> {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let tail_thread = {
        let (b, stop) = (bootstrap.to_string(), stop.clone());
        std::thread::spawn(move || tail(&b, seen_tx, stop))
    };
    // Give the tail its assignment before any request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answers, mut answer_rx) = mpsc::unbounded_channel();
    let mut d = Driver {
        api: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?,
        answers,
        matches: HashMap::new(),
        ready: VecDeque::new(),
        sent: HashMap::new(),
        next_id: 0,
        run: format!("lat{}", std::process::id()),
        errors: Vec::new(),
    };
    eprintln!(
        "scale latency ({guarantee:?}): worker up at {addr} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut results = Vec::new();
    for (step, &rate) in rates.iter().enumerate() {
        let want = ((rate / rps_per_match) as usize).clamp(MIN_MATCHES, MAX_MATCHES);
        while d.matches.len() < want {
            d.new_match();
        }
        // Warm-up (step tag usize::MAX: not measured), then the measured part.
        for (tag, length) in [(usize::MAX, WARM), (step, STEP)] {
            let begin = tokio::time::Instant::now();
            let mut released = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_check = Instant::now();
            while begin.elapsed() < length {
                tokio::select! {
                    Some(s) = seen_rx.recv() => d.on_seen(s),
                    Some(a) = answer_rx.recv() => d.on_answer(a, step),
                    _ = tick.tick() => {
                        let due = (begin.elapsed().as_secs_f64() * rate) as u64;
                        // Tokens older than BURST are lost.
                        let floor = due.saturating_sub((BURST.as_secs_f64() * rate) as u64);
                        released = released.max(floor);
                        while released < due {
                            let Some(a) = d.ready.pop_front() else { break };
                            d.send(a, tag);
                            released += 1;
                        }
                        if last_check.elapsed() > Duration::from_secs(1) {
                            last_check = Instant::now();
                            d.replace_stalled();
                        }
                    }
                }
            }
        }
        // Drain: late events still count for this step.
        let end = tokio::time::Instant::now() + DRAIN;
        loop {
            tokio::select! {
                Some(s) = seen_rx.recv() => d.on_seen(s),
                Some(a) = answer_rx.recv() => d.on_answer(a, step),
                _ = tokio::time::sleep_until(end) => break,
            }
        }
        let r = d.step_result(step, rate, STEP);
        eprintln!(
            "scale latency ({guarantee:?}): offered {rate} req/s, achieved {:.0} req/s ({} requests, {} errors, {} without event, {} matches); accepted → match-event p50 {} / p99 {} ms; accepted → robot-command p50 {} / p99 {} ms (n={}); POST → 202 p50 {} / p99 {} ms; POST → on match-requests p50 {} / p99 {} ms; match-requests → match-events p50 {} / p99 {} ms",
            r.achieved,
            r.sent,
            r.errors,
            r.missing,
            want,
            ms(r.event_p50),
            ms(r.event_p99),
            ms(r.command_p50),
            ms(r.command_p99),
            r.commands,
            ms(r.ack_p50),
            ms(r.ack_p99),
            ms(r.written_p50),
            ms(r.written_p99),
            ms(r.hop_p50),
            ms(r.hop_p99)
        );
        let ok = r.sustained();
        results.push(r);
        if stop_early && !ok && rate >= HEADLINE {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(seen_rx);
    match tail_thread.join() {
        Ok(r) => r?,
        Err(_) => bail!("the tail thread panicked"),
    }
    Ok(results)
}
