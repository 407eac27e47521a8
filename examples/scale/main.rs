//! Scale benchmark: what a deployment that grows meets — failover of a worker holding a
//! million store keys with and without standby replicas, the read view at a million
//! matches, and a player's latency under load.
//!
//! ```text
//! cargo run --release --example scale [-- --keys 2000000 --partitions 32 --matches 1000000
//!                                        --runs 5 --only with|without|view|latency]
//! ```
//!
//! Prints one figure per line (`name: value unit`), in that order; progress goes to stderr.
//!
//! **Read view** (`view_rss.rs`, also an example of its own): `view rss at N matches` and
//! `history p99 at N matches` of a process serving the `match-history` view from its
//! on-disk store, loaded directly with N documents (the embedded broker keeps only 5 MiB
//! per partition).
//!
//! **Latency** (`latency.rs`): accepted → match-event and accepted → robot-command at
//! 1,000 req/s, and the highest rate whose p99 stays under 100 ms.
//!
//! **Failover.** The embedded broker (librdkafka's mock cluster, the broker `orchestra
//! broker` runs) in this process; two worker *processes* (this binary re-run as `scale
//! worker …`) run the runtime's reference topology (one change-logged store, one output
//! per input) with sled stores, and the input holds one record for each of `--keys` keys
//! (2,000,000 by default), so each worker — the killed one too — holds about a million
//! store keys (the count is on stderr). Once everything is
//! processed (and, with standbys, the standbys have caught up), one worker is SIGKILLed;
//! the figure is the time from the kill until a probe record sent to every one of its
//! partitions has come out of the survivor — detection (the session timeout, printed
//! too), rebalance, restore and the first records. Short values keep the mock cluster
//! under its per-partition caps (5 MiB, 100,000 batches), and the run fails if the broker
//! dropped a record all the same (a log start offset above 0). A single kill's figure
//! varies with where the kill lands between two heartbeats and two session checks: each
//! figure is the median of `--runs` kills (each on a fresh cluster), and the runs are on
//! stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use topology::reference::{self, RefEvent};
use topology::{partition_for, testing, EmbeddedBroker, StreamWorker, StreamsConfig};

mod latency;
// The read view's memory and latency (also its own example; see its docs).
#[allow(dead_code)]
#[path = "../view_rss.rs"]
mod view_rss;

const APP: &str = "scale";
/// The workers' session timeout (`SCALE_SESSION_MS`, default 1100 ms): how long a SIGKILLed
/// worker stays in the group (the embedded broker checks sessions every 100 ms). The
/// survivors then rejoin at their next heartbeat, and the new generation forms as soon as
/// all have.
fn session() -> Duration {
    Duration::from_millis(env_ms("SCALE_SESSION_MS").unwrap_or(1_100))
}

/// A duration knob of the benchmark, in ms, from the environment.
fn env_ms(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return worker(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("latency-worker") {
        return latency::worker(&args[1..]);
    }
    if args.iter().any(|a| a == "--serve") {
        // The read view's serving process (view_rss re-runs this binary).
        return view_rss::main_from(args);
    }
    let keys: u64 = flag(&args, "--keys").unwrap_or(2_000_000);
    let partitions: i32 = flag(&args, "--partitions").unwrap_or(32);
    let only: Option<String> = flag(&args, "--only");
    let runs: usize = flag(&args, "--runs").unwrap_or(5).max(1);
    for standby in [0u32, 1] {
        let name = if standby == 0 { "without" } else { "with" };
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        if standby == 0 || only.is_some() {
            println!("session timeout: {} ms", session().as_millis());
        }
        // One kill is a draw of where it lands between heartbeats and session checks: the
        // figure is the median of `--runs` kills.
        let mut runs = (0..runs)
            .map(|_| failover(keys, partitions, standby))
            .collect::<Result<Vec<u128>>>()?;
        runs.sort_unstable();
        let all: Vec<String> = runs.iter().map(u128::to_string).collect();
        eprintln!(
            "scale: failover {name} standby, each run: {} ms",
            all.join(", ")
        );
        println!("failover {name} standby: {} ms", runs[runs.len() / 2]);
    }
    if only.as_deref().is_none_or(|o| o == "view") {
        let matches: u64 = flag(&args, "--matches").unwrap_or(1_000_000);
        view_rss::main_from(vec![matches.to_string(), "--mode".into(), "store".into()])?;
    }
    if only.as_deref().is_none_or(|o| o == "latency") {
        latency::run(true)?;
    }
    Ok(())
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// One failover run; returns kill → probes processed, in ms.
fn failover(keys: u64, partitions: i32, standby: u32) -> Result<u128> {
    let broker = EmbeddedBroker::start()?;
    let bootstrap = broker.bootstrap_servers();
    for t in [reference::INPUT, reference::OUTPUT, reference::SUMMARIES] {
        broker.create_topic(t, partitions)?;
    }
    broker.create_internal_topics(&reference::topology(Default::default()), APP, partitions)?;
    let input: Vec<(String, Vec<u8>)> = (0..keys)
        .map(|i| {
            let ev = RefEvent::new(i, "v");
            (format!("k{i}"), serde_json::to_vec(&ev).expect("json"))
        })
        .collect();
    let started = Instant::now();
    testing::produce(&bootstrap, reference::INPUT, &input, 0)?;
    eprintln!(
        "scale: {keys} input records produced in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut workers: Vec<Worker> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| Worker::spawn(&bootstrap, d.path(), &format!("w{i}"), standby))
        .collect::<Result<_>>()?;
    // Everything processed: one output per input.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out: i64 = testing::end_offsets(&bootstrap, reference::OUTPUT)?
            .values()
            .sum();
        if out >= keys as i64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {out} of {keys} records processed in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "scale: processed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let victim_tasks = loop {
        let status = workers[0].status();
        if let Some(s) = status.filter(|s| !s.tasks.is_empty()) {
            break s.tasks;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if standby > 0 {
        // The survivor's standbys hold everything of the victim's tasks.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let s = workers[1].status();
            let ready = s.as_ref().is_some_and(|s| {
                victim_tasks.iter().all(|t| s.standbys.contains(t)) && s.standby_lag == 0
            });
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("standbys did not catch up: {s:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let held = input
        .iter()
        .filter(|(k, _)| victim_tasks.contains(&partition_for(k.as_bytes(), partitions)))
        .count();
    eprintln!("scale: the worker to kill holds {held} store keys");
    nothing_dropped(&bootstrap, &broker_topics())?;
    let ends = testing::end_offsets(&bootstrap, reference::OUTPUT)?;
    let probes: Vec<(String, Vec<u8>)> = victim_tasks
        .iter()
        .map(|p| {
            let key = (0u64..)
                .map(|i| format!("probe-{p}-{i}"))
                .find(|k| partition_for(k.as_bytes(), partitions) == *p)
                .expect("a key for every partition");
            let ev = RefEvent::new(keys + *p as u64, "probe");
            (key, serde_json::to_vec(&ev).expect("json"))
        })
        .collect();
    let want: BTreeSet<String> = probes.iter().map(|(k, _)| k.clone()).collect();
    let killed = Instant::now();
    workers[0].child.kill().context("SIGKILL the worker")?;
    eprintln!(
        "scale: SIGKILL at {} ms since the epoch",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    testing::produce(&bootstrap, reference::INPUT, &probes, 0)?;
    wait_for_keys(&bootstrap, &ends, want, Duration::from_secs(300))?;
    let ms = killed.elapsed().as_millis();
    for w in &mut workers {
        let _ = w.child.kill();
        let _ = w.child.wait();
    }
    Ok(ms)
}

/// The topics a failover run fills: what the mock cluster must keep whole.
fn broker_topics() -> Vec<String> {
    vec![
        reference::INPUT.to_string(),
        reference::OUTPUT.to_string(),
        topology::Topology::changelog_topic(APP, reference::STORE),
        topology::Topology::changelog_topic(APP, &topology::Topology::offsets_store(0)),
    ]
}

/// Fails if the embedded broker dropped the head of any partition of `topics` (it keeps at
/// most 5 MiB and 100,000 batches per partition): a restore would then be shorter than
/// the store it stands for, and the figure would flatter it.
fn nothing_dropped(bootstrap: &str, topics: &[String]) -> Result<()> {
    for topic in topics {
        for (partition, (low, _)) in testing::watermarks(bootstrap, topic)? {
            if low > 0 {
                bail!(
                    "the embedded broker dropped the first {low} records of {topic} \
                     partition {partition}: use fewer --keys or more --partitions"
                );
            }
        }
    }
    Ok(())
}

/// Waits until every key of `want` has an output after `ends`.
fn wait_for_keys(
    bootstrap: &str,
    ends: &std::collections::HashMap<i32, i64>,
    mut want: BTreeSet<String>,
    timeout: Duration,
) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "scale-probe")
        .set("enable.auto.commit", "false")
        // A short wait, so that a fetch that returns empty (its partitions had nothing) is
        // followed by the next one soon after.
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for (p, end) in ends {
        tpl.add_partition_offset(reference::OUTPUT, *p, Offset::Offset(*end))?;
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    while !want.is_empty() {
        if Instant::now() > deadline {
            bail!("probes never processed: {want:?}");
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            if let Some(k) = m.key() {
                want.remove(String::from_utf8_lossy(k).as_ref());
            }
        }
    }
    Ok(())
}

/// What a worker process reported last.
#[derive(Debug, Clone, Default)]
struct Status {
    tasks: Vec<i32>,
    standbys: Vec<i32>,
    /// Changelog records its standbys have not applied yet.
    standby_lag: i64,
}

struct Worker {
    child: Child,
    statuses: mpsc::Receiver<Status>,
    last: Option<Status>,
}

impl Worker {
    fn spawn(bootstrap: &str, dir: &Path, id: &str, standby: u32) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["worker", bootstrap, &dir.display().to_string(), id])
            .arg(standby.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a worker process")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, statuses) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(s) = parse_status(&line) {
                    if tx.send(s).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Self {
            child,
            statuses,
            last: None,
        })
    }

    fn status(&mut self) -> Option<Status> {
        while let Ok(s) = self.statuses.try_recv() {
            self.last = Some(s);
        }
        self.last.clone()
    }
}

fn parse_status(line: &str) -> Option<Status> {
    let mut s = Status::default();
    let list = |v: &str| -> Vec<i32> { v.split(',').filter_map(|p| p.parse().ok()).collect() };
    for field in line.strip_prefix("status ")?.split(' ') {
        match field.split_once('=')? {
            ("tasks", v) => s.tasks = list(v),
            ("standbys", v) => s.standbys = list(v),
            ("standby_lag", v) => s.standby_lag = v.parse().ok()?,
            _ => {}
        }
    }
    Some(s)
}

/// `scale worker BOOTSTRAP STATE_DIR ID STANDBYS`: runs the reference topology and
/// prints `status tasks=… standbys=… standby_lag=…` every 100 ms.
fn worker(args: &[String]) -> Result<()> {
    let [bootstrap, dir, id, standby] = args else {
        bail!("usage: scale worker BOOTSTRAP STATE_DIR ID STANDBYS");
    };
    if let Ok(filter) = std::env::var("SCALE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let mut config = StreamsConfig::new(APP, bootstrap)
        .worker_id(id)
        .state_dir(dir)
        .commit_interval(Duration::from_millis(100))
        .session_timeout(session())
        .num_standby_replicas(standby.parse()?);
    if let Ok(debug) = std::env::var("SCALE_RDKAFKA_DEBUG") {
        config = config.kafka("debug", &debug);
    }
    let handle = StreamWorker::start(reference::topology(Default::default()), config)?;
    let changelogs = [
        topology::Topology::changelog_topic(APP, reference::STORE),
        topology::Topology::changelog_topic(APP, &topology::Topology::offsets_store(0)),
    ];
    let mut out = std::io::stdout();
    let mut ends: BTreeMap<String, std::collections::HashMap<i32, i64>> = BTreeMap::new();
    let mut last_ends = Instant::now() - Duration::from_secs(1);
    while handle.is_running() {
        let tasks: Vec<String> = handle
            .stats()
            .tasks()
            .iter()
            .map(|t| t.partition.to_string())
            .collect();
        let standbys = handle.standby_tasks();
        if !standbys.is_empty() && last_ends.elapsed() >= Duration::from_millis(500) {
            last_ends = Instant::now();
            for c in &changelogs {
                ends.insert(c.clone(), testing::end_offsets(bootstrap, c)?);
            }
        }
        let lag: i64 = standbys
            .iter()
            .flat_map(|s| {
                s.checkpoints.iter().map(|(topic, applied)| {
                    let end = ends
                        .get(topic)
                        .and_then(|e| e.get(&s.task.partition))
                        .copied()
                        // Not known yet: not caught up.
                        .unwrap_or(applied + 1);
                    (end - applied).max(0)
                })
            })
            .sum();
        let standbys: Vec<String> = standbys
            .iter()
            .map(|s| s.task.partition.to_string())
            .collect();
        writeln!(
            out,
            "status tasks={} standbys={} standby_lag={lag}",
            tasks.join(","),
            standbys.join(",")
        )?;
        out.flush()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    handle.wait()?;
    Ok(())
}
