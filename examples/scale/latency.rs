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

mod driver;
mod tail;
mod worker;

use driver::drive;
pub use worker::worker;
use worker::WorkerProc;

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
