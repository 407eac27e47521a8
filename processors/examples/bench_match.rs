//! Benchmark: events/s of full simulated matches through the topology test driver with
//! the sled store (8 partitions).
//!
//! Commits: the bench's clock advances one second per batch of matches, and the driver
//! commits at the end of every batch, as a worker with the default 1 s commit interval
//! would at that simulated pace (a real worker at the measured speed would commit far less
//! often: one batch takes a few tens of milliseconds). A second line commits every 1,000
//! processed records to show what a much shorter interval costs.
//!
//! Every match is a `classic_1v3` of 5 rounds created with its human seated; robots answer
//! every command at once with a scripted text (first candidate for votes) and the human
//! responds and votes as soon as the round's robot commands appear. Everything the
//! topology produces is drained between batches; every `match-events` record is counted.
//!
//! `match events` is events over the time spent inside the driver (piping, processing,
//! committing, reading outputs): the simulated clients' own JSON work runs in other
//! processes in a deployment. The wall-clock rate, clients included, is printed too. The
//! main figure is the median of 5 runs on fresh stores (the runs are printed: on a shared
//! VM they spread by ±15 %). `match events per CPU-second` divides the same events by the
//! CPU time the topology used: the driver thread's CPU inside the driver plus every other
//! thread's (sled's flusher and I/O threads, on the second core), which is the per-core
//! rate and is not lowered by moments the VM deschedules the bench. The driver thread's
//! CPU is read at the start and end of a run and split between the driver and the
//! simulated clients by their shares of the wall clock (reading the thread's CPU clock
//! around each of the ~80,000 driver calls took more than a tenth of the thread). Like the `orchestra` binary, the bench uses mimalloc (about a
//! quarter faster than the system allocator here).
//!
//! ```text
//! cargo run --release -p processors --example bench_match [-- <matches> [<in-flight> [--main-only]]]
//! ```
//!
//! Prints `name: value unit` lines, e.g. `match events: 123456 events/s`.

/// The allocator the `orchestra` binary uses (mimalloc without transparent huge pages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use processors::streams::{game_topology, topics, GameSettings};
use schemas::{
    Envelope, MatchCreate, MatchRequest, PlayerRef, ResponseSubmit, ResponseSubmitted,
    RobotCommand, RobotCommandData, RobotResponse, VoteSubmit, VoteSubmitted,
};
use topology::{DriverConfig, SledStoreConfig, StoreBackend, TopologyTestDriver};

const APP: &str = "orchestra-bench";
const T0: i64 = 1_700_000_000_000;
const PARTITIONS: i32 = 8;
const ROUNDS: u32 = 5;

struct Bench {
    driver: TopologyTestDriver,
    drain: Vec<String>,
    seq: u64,
    now: i64,
    /// `(match, round, phase)` the human already acted in.
    acted: HashSet<(String, u32, bool)>,
    events: u64,
    completed: u64,
    snapshots: u64,
    snapshot_bytes: u64,
    /// Time spent inside the driver (the topology's work; the simulated clients' encoding
    /// and decoding is outside).
    in_driver: Duration,
}

impl Bench {
    fn new(backend: StoreBackend, commit_every: u64) -> Self {
        let settings = GameSettings::default();
        let topology = game_topology(&settings);
        // Every topic but the robot commands, which the simulated robots read.
        let mut drain: Vec<String> = topics::ALL
            .iter()
            .filter(|t| **t != topics::ROBOT_COMMANDS)
            .map(|t| (*t).to_owned())
            .collect();
        drain.extend(
            topology::internal_topics(&topology, APP, |_| Some(PARTITIONS))
                .into_iter()
                .map(|t| t.name),
        );
        let config = DriverConfig {
            partitions: PARTITIONS,
            backend,
            commit_every,
            wall_clock_ms: T0,
            ..DriverConfig::default()
        };
        let driver = TopologyTestDriver::with_config(topology, APP, config).expect("driver");
        Bench {
            driver,
            drain,
            seq: 0,
            now: T0,
            acted: HashSet::new(),
            events: 0,
            completed: 0,
            snapshots: 0,
            snapshot_bytes: 0,
            in_driver: Duration::ZERO,
        }
    }

    /// Runs `f` on the driver, adding its time to `in_driver`.
    fn timed<T>(&mut self, f: impl FnOnce(&mut TopologyTestDriver) -> T) -> T {
        let started = Instant::now();
        let out = f(&mut self.driver);
        self.in_driver += started.elapsed();
        out
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{}", self.seq)
    }

    fn request(&mut self, match_id: &str, data: impl Into<schemas::MatchRequestData>) {
        let id = self.next_id("req");
        let env: MatchRequest = Envelope::new(id.clone(), match_id, self.now, id.clone(), id, data);
        let bytes = env.to_json_vec().expect("encode");
        let now = self.now;
        self.timed(|d| d.pipe(topics::MATCH_REQUESTS, match_id, &bytes, now))
            .expect("pipe");
    }

    fn create(&mut self, match_id: &str) {
        self.request(
            match_id,
            MatchCreate {
                template: "classic_1v3".into(),
                total_rounds: ROUNDS,
                humans: vec![PlayerRef {
                    player_id: format!("{match_id}-human"),
                    name: "Human".into(),
                }],
                ..Default::default()
            },
        );
    }

    /// Answers a robot command (and lets the human act the first time a round's phase is
    /// seen).
    fn answer(&mut self, cmd: RobotCommand) {
        let m = cmd.match_id.clone();
        let player = format!("{m}-human");
        let data: schemas::RobotResponseData = match cmd.data {
            RobotCommandData::GenerateResponse(g) => {
                if self.acted.insert((m.clone(), g.round, false)) {
                    self.request(
                        &m,
                        ResponseSubmit {
                            player_id: player,
                            round: g.round,
                            text: "the sea, every time".into(),
                        },
                    );
                }
                ResponseSubmitted {
                    command_id: g.command_id,
                    robot_id: g.robot_id,
                    identity: g.identity.to_string(),
                    round: g.round,
                    text: format!("{} says: it depends on the weather", g.personality),
                    model: "scripted".into(),
                    latency_ms: 0,
                    tokens: 0,
                }
                .into()
            }
            RobotCommandData::GenerateVote(g) => {
                if self.acted.insert((m.clone(), g.round, true)) {
                    // A robot seat is never the human's seat: vote for this robot.
                    self.request(
                        &m,
                        VoteSubmit {
                            player_id: player,
                            round: g.round,
                            voted_for: g.identity.to_string(),
                        },
                    );
                }
                VoteSubmitted {
                    command_id: g.command_id,
                    robot_id: g.robot_id,
                    identity: g.identity.to_string(),
                    round: g.round,
                    voted_for: g
                        .candidates
                        .first()
                        .map(|c| c.identity.to_string())
                        .unwrap_or_default(),
                }
                .into()
            }
        };
        let id = self.next_id("rr");
        let env: RobotResponse = Envelope::new(
            id,
            m.clone(),
            self.now,
            cmd.correlation_id,
            cmd.event_id,
            data,
        );
        let bytes = env.to_json_vec().expect("encode");
        let now = self.now;
        self.timed(|d| d.pipe(topics::ROBOT_RESPONSES, &m, &bytes, now))
            .expect("pipe");
    }

    /// Runs robot commands until none are left; after each wave of answers counts and
    /// drains every output, as consumers reading the topics continuously would (outputs
    /// kept for a whole batch grew the heap past the CPU caches).
    fn settle(&mut self) {
        loop {
            self.drain_outputs();
            let commands = self.timed(|d| d.read_output(topics::ROBOT_COMMANDS));
            if commands.is_empty() {
                break;
            }
            for rec in commands {
                let cmd: RobotCommand =
                    schemas::decode(rec.value.as_deref().expect("command")).expect("command");
                self.answer(cmd);
            }
        }
    }

    /// Counts the `match-events` and `match-state` records, checks the DLQ is empty, and
    /// discards the other outputs (robot commands stay for [`Self::settle`]).
    fn drain_outputs(&mut self) {
        for rec in self.timed(|d| d.read_output(topics::MATCH_EVENTS)) {
            self.events += 1;
            let v = rec.value.as_deref().unwrap_or_default();
            if memfind(&v[..v.len().min(96)], br#""eventType":"match.completed""#) {
                self.completed += 1;
            }
        }
        for rec in self.timed(|d| d.read_output(topics::MATCH_STATE)) {
            self.snapshots += 1;
            self.snapshot_bytes += rec.value.map_or(0, |v| v.len() as u64);
        }
        let dlq = self.driver.dlq_topic();
        let dead = self.driver.read_output(&dlq);
        assert!(
            dead.is_empty(),
            "DLQ records: {:?}",
            dead.iter().map(|r| r.header("error")).collect::<Vec<_>>()
        );
        let drain = std::mem::take(&mut self.drain);
        self.timed(|d| {
            drain.iter().for_each(|t| {
                d.discard_output(t);
            })
        });
        self.drain = drain;
    }
}

/// A CPU clock's reading (`CLOCK_THREAD_CPUTIME_ID` or `CLOCK_PROCESS_CPUTIME_ID`).
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock ids are the two POSIX CPU clocks.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Figures {
    events: u64,
    matches: u64,
    snapshots: u64,
    snapshot_bytes: u64,
    /// Wall-clock time of the run.
    elapsed: Duration,
    /// Time inside the driver.
    in_driver: Duration,
    /// CPU time the topology's work took: the driver thread's share inside the driver plus
    /// every other thread's (sled's flusher and I/O threads; the bench starts no others).
    cpu: Duration,
    /// The part of `cpu` spent by threads other than the driver's.
    other_cpu: Duration,
}

/// Plays `matches` matches, `in_flight` at a time; commits every `commit_every` processed
/// records, or at the end of every batch (one simulated second) when `None`.
fn run(backend: StoreBackend, matches: u64, in_flight: u64, commit_every: Option<u64>) -> Figures {
    let process_cpu = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    let thread_cpu = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID);
    let mut b = Bench::new(backend, commit_every.unwrap_or(u64::MAX));
    let started = Instant::now();
    let mut created = 0;
    while created < matches {
        let batch = in_flight.min(matches - created);
        for i in created..created + batch {
            b.create(&format!("bench-{i:06}"));
        }
        created += batch;
        b.settle();
        if commit_every.is_none() {
            b.timed(|d| d.commit()).expect("commit");
        }
        b.now += 1_000;
    }
    b.timed(|d| d.commit()).expect("commit");
    let elapsed = started.elapsed();
    // Stores are closed (sled's threads finish their last writes) before CPU is read.
    drop(b.driver);
    let thread = cpu_time(libc::CLOCK_THREAD_CPUTIME_ID).saturating_sub(thread_cpu);
    let other_threads = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID)
        .saturating_sub(process_cpu)
        .saturating_sub(thread);
    // The driver's share of this thread's CPU: its share of the wall clock (reading the
    // thread's CPU clock around every driver call would cost more than a tenth of it).
    let share = b.in_driver.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
    let cpu_in_driver = thread.mul_f64(share.min(1.0));
    assert_eq!(b.completed, matches, "every match completed");
    Figures {
        events: b.events,
        matches: b.completed,
        snapshots: b.snapshots,
        snapshot_bytes: b.snapshot_bytes,
        elapsed,
        in_driver: b.in_driver,
        cpu: cpu_in_driver + other_threads,
        other_cpu: other_threads,
    }
}

/// Events/s of a run: events over the time spent inside the driver.
fn rate(f: &Figures) -> f64 {
    f.events as f64 / f.in_driver.as_secs_f64()
}

/// Events per CPU-second of the topology's work (all threads): the per-core rate, which a
/// descheduled moment on a shared VM does not lower.
fn cpu_rate(f: &Figures) -> f64 {
    f.events as f64 / f.cpu.as_secs_f64().max(1e-9)
}

/// Runs `rounds` times on fresh stores; returns the run with the median rate, every rate,
/// and the median CPU rate.
fn median_of(rounds: usize, mut one: impl FnMut() -> Figures) -> (Figures, Vec<f64>, f64) {
    let mut runs: Vec<Figures> = (0..rounds.max(1)).map(|_| one()).collect();
    let rates: Vec<f64> = runs.iter().map(rate).collect();
    let mut cpu: Vec<f64> = runs.iter().map(cpu_rate).collect();
    cpu.sort_by(f64::total_cmp);
    runs.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let mid = runs.len() / 2;
    (runs.swap_remove(mid), rates, cpu[mid])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let matches: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let in_flight: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    // `--main-only`: one run of the main figure (for profiling).
    let main_only = args.next().is_some_and(|a| a == "--main-only");
    let rounds = if main_only { 1 } else { 5 };

    let sled = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = StoreBackend::Sled {
            state_dir: dir.path().to_path_buf(),
            config: SledStoreConfig::default(),
        };
        (dir, backend)
    };
    let (f, rates, cpu) = median_of(rounds, || {
        let (_dir, backend) = sled();
        run(backend, matches, in_flight, None)
    });
    let secs = f.elapsed.as_secs_f64();
    println!("store: sled, commit every simulated second, median of {rounds} runs");
    println!(
        "runs: {} events/s",
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("matches played: {} matches", f.matches);
    println!("match events total: {} events", f.events);
    println!("elapsed: {secs:.3} s");
    println!("inside the driver: {:.3} s", f.in_driver.as_secs_f64());
    println!(
        "CPU time of the topology (all threads): {:.3} s, of which sled's threads: {:.3} s",
        f.cpu.as_secs_f64(),
        f.other_cpu.as_secs_f64()
    );
    println!("match-state snapshots: {} records", f.snapshots);
    println!(
        "match-state snapshot size: {} bytes",
        f.snapshot_bytes / f.snapshots.max(1)
    );
    println!("match events: {:.0} events/s", rate(&f));
    println!("match events per CPU-second (all threads, median): {cpu:.0} events/s");
    println!(
        "match events (wall clock, with the simulated clients): {:.0} events/s",
        f.events as f64 / secs
    );
    println!(
        "matches: {:.0} matches/s",
        f.matches as f64 / f.in_driver.as_secs_f64()
    );
    if main_only {
        return;
    }
    // One run: the heaviest sled churn, where sled 0.34's rare log-writer deadlock
    // (upstream issue 1412) has been seen.
    let (c, _, _) = median_of(1, || {
        let (_dir, backend) = sled();
        run(backend, matches, in_flight, Some(1_000))
    });
    println!(
        "match events (sled, commit every 1000 records): {:.0} events/s",
        rate(&c)
    );
    let (m, _, _) = median_of(rounds, || {
        run(StoreBackend::Memory, matches, in_flight, None)
    });
    println!("match events (memory store): {:.0} events/s", rate(&m));
}
