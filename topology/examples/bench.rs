//! The runtime benchmark: the reference job (≈200-byte JSON events, 1,000 keys, 8
//! partitions, count + last value per key in a change-logged sled store, one output per
//! input) measured five ways in one run, on one embedded broker, with the same data:
//!
//! ```text
//! cargo run --release -p topology --example bench [-- --records 150000] [--only PART]
//! ```
//!
//! `--only driver|passthrough|embedded|restore` runs just that part (restore includes its
//! raw reads), for profiling one of them with `perf record`; the ratios need both parts and
//! are then not printed.
//!
//! Output, one figure per line (`name: value unit`): `driver`, `embedded`, `passthrough`,
//! `restore` and `raw read` with 1 and with N consumers (N = the worker's default restore
//! consumers, the cores up to 4; only 1 on one core), and the ratios the targets are stated
//! in: `embedded vs passthrough`, and `restore vs raw read` for each consumer count, so
//! that restore is compared with a raw read of the same partitions by as many consumers.
//! Each figure is the median of rounds (5 for the driver; 9 alternating passthrough /
//! embedded rounds, which of the two goes first alternating too; 7 alternating raw read /
//! restore rounds per consumer count) so that one noisy round on a shared 2-core machine
//! does not decide a ratio, and neither part always runs on the warmer machine.

/// The allocator of the `orchestra` binary the workers run in (mimalloc, no transparent
/// huge pages); the passthrough runs on it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use state_stores::SledStoreConfig;
use topology::reference::{self, Aggregate, RefEvent};
use topology::{
    testing, DriverConfig, EmbeddedBroker, StoreBackend, StreamWorker, StreamsConfig, Topology,
    TopologyTestDriver, WorkerHandle, WorkerState,
};

const PARTITIONS: i32 = 8;
const KEYS: u64 = 1_000;
/// Alternating raw-read / restore rounds, per consumer count.
const RESTORE_ROUNDS: usize = 7;
/// Alternating passthrough / embedded rounds.
const E2E_ROUNDS: usize = 9;
/// Test driver runs.
const DRIVER_ROUNDS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let records: u64 = std::env::args()
        .skip_while(|a| a != "--records")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(150_000);
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    if let Some(o) = &only {
        if !["driver", "passthrough", "embedded", "restore"].contains(&o.as_str()) {
            return Err(
                format!("--only {o}: expected driver, passthrough, embedded or restore").into(),
            );
        }
    }
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let events = reference::events(records, KEYS, 0);
    let encoded: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|(k, e)| (k.clone(), serde_json::to_vec(e).unwrap()))
        .collect();
    let avg = encoded.iter().map(|(_, v)| v.len()).sum::<usize>() / encoded.len().max(1);
    eprintln!("# {records} records, {KEYS} keys, {PARTITIONS} partitions, {avg} bytes/value");

    if runs("driver") {
        driver(&encoded, records)?;
    }
    // Same broker, same data for the rest.
    let broker = EmbeddedBroker::start()?;
    let bootstrap = broker.bootstrap_servers();
    for t in [
        reference::INPUT,
        reference::OUTPUT,
        reference::SUMMARIES,
        "passthrough-out",
    ] {
        broker.create_topic(t, PARTITIONS)?;
    }
    let topo = reference::topology(Default::default());
    broker.create_internal_topics(&topo, "bench", PARTITIONS)?;
    testing::produce(&bootstrap, reference::INPUT, &encoded, 1_700_000_000_000)?;

    // 2./3. Raw passthrough (consume → decode/encode → produce, no state) and the stream
    // worker end to end (consume, process, store + changelog, produce, commit), nine
    // alternating rounds on the same input with fresh groups, the passthrough first in
    // even rounds and second in odd ones; medians reported.
    let (mut passes, mut e2es, mut teardowns) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pass_firsts, mut e2e_firsts) = (Vec::new(), Vec::new());
    for round in 0..E2E_ROUNDS {
        let order = if round % 2 == 0 {
            ["passthrough", "embedded"]
        } else {
            ["embedded", "passthrough"]
        };
        for part in order {
            if !runs(part) {
                continue;
            }
            if part == "passthrough" {
                let (rate, first) = passthrough(&bootstrap, records, round)?;
                passes.push(rate);
                pass_firsts.push(first);
            } else {
                let (rate, first, teardown) = embedded(&broker, &topo, &bootstrap, records, round)?;
                e2es.push(rate);
                e2e_firsts.push(first);
                teardowns.push(teardown);
            }
        }
    }
    if let Some(e2e_rate) = median(&mut e2es) {
        println!("embedded: {e2e_rate:.0} records/s");
    }
    if let Some(pass_rate) = median(&mut passes) {
        println!("passthrough: {pass_rate:.0} records/s");
    }
    if let (Some(e2e_rate), Some(pass_rate)) = (median(&mut e2es), median(&mut passes)) {
        println!("embedded vs passthrough: {:.2} ratio", e2e_rate / pass_rate);
    }
    if let Some(first) = median(&mut e2e_firsts) {
        println!("embedded first record after: {:.0} ms", first * 1000.0);
    }
    if let Some(first) = median(&mut pass_firsts) {
        println!("passthrough first record after: {:.0} ms", first * 1000.0);
    }
    if let Some(teardown) = median(&mut teardowns) {
        println!(
            "embedded shutdown after the last commit: {:.0} ms",
            teardown * 1000.0
        );
    }
    if runs("restore") {
        restore(&broker, &topo, &bootstrap, &events)?;
    }
    Ok(())
}

/// Part 4: restore vs a plain read of the same changelog partitions by as many
/// consumers, with one consumer and with the worker's default number of restore consumers.
fn restore(
    broker: &EmbeddedBroker,
    topo: &Topology,
    bootstrap: &str,
    events: &[(String, RefEvent)],
) -> Result<(), Box<dyn std::error::Error>> {
    // The store's changelog over the input (the mock broker keeps at most 5 MB per
    // partition, so it cannot be longer); alternating rounds each read it raw and restore
    // it into an empty state directory, which of the two goes first alternating too;
    // medians reported.
    let mut agg = std::collections::HashMap::<String, Aggregate>::new();
    let mut log: Vec<(String, Vec<u8>)> = Vec::with_capacity(events.len());
    for (k, e) in events {
        let a = agg.entry(k.clone()).or_default();
        a.count += 1;
        a.last_seq = e.seq;
        a.last = e.payload.clone();
        log.push((k.clone(), serde_json::to_vec(a)?));
    }
    let default_consumers = StreamsConfig::new("bench", bootstrap).restore_consumers;
    let mut counts = vec![1];
    if default_consumers > 1 {
        counts.push(default_consumers);
    }
    for consumers in counts {
        let (mut restores, mut raws) = (Vec::new(), Vec::new());
        let mut restored = 0;
        let mut secs = 0.0;
        for round in 0..RESTORE_ROUNDS {
            // A fresh application (and changelog) per round: a worker that joins a group
            // whose last member was killed waits out that member's session.
            let restore_app = format!("bench-restore-{consumers}-{round}");
            let changelog = Topology::changelog_topic(&restore_app, reference::STORE);
            broker.create_internal_topics(topo, &restore_app, PARTITIONS)?;
            testing::produce(bootstrap, &changelog, &log, 1_700_000_000_000)?;
            let raw_first = round % 2 == 0;
            if raw_first {
                raws.push(raw_read(bootstrap, &changelog, consumers, round)?);
            }
            let state = tempfile::tempdir()?;
            let cfg = StreamsConfig::new(&restore_app, bootstrap)
                .worker_id("bench-restore")
                .state_dir(state.path())
                .restore_consumers(consumers);
            let worker = StreamWorker::start(topo.clone(), cfg)?;
            if !testing::wait_until(Duration::from_secs(600), || {
                worker.stats().state() == WorkerState::Running && !worker.stats().tasks().is_empty()
            }) {
                return Err("restore did not finish".into());
            }
            restored = worker.stats().restored.load(Ordering::Relaxed);
            secs = worker.stats().restore_micros.load(Ordering::Relaxed) as f64 / 1e6;
            worker.kill();
            if restored != log.len() as u64 {
                return Err(format!("restored {restored} of {} records", log.len()).into());
            }
            restores.push(restored as f64 / secs.max(1e-9));
            if !raw_first {
                raws.push(raw_read(bootstrap, &changelog, consumers, round)?);
            }
        }
        let (Some(restore_rate), Some(raw_rate)) = (median(&mut restores), median(&mut raws))
        else {
            return Err("no restore rounds".into());
        };
        let n = if consumers == 1 {
            "1 consumer".to_string()
        } else {
            format!("{consumers} consumers")
        };
        println!("restore, {n}: {restore_rate:.0} records/s");
        println!("raw read, {n}: {raw_rate:.0} records/s");
        println!(
            "restore vs raw read, {n}: {:.2} ratio",
            restore_rate / raw_rate
        );
        eprintln!("# {n}: restored {restored} changelog records in {secs:.3} s (last round)");
    }
    Ok(())
}

/// Part 1: the test driver with sled stores, the median of [`DRIVER_ROUNDS`] runs, each on
/// a fresh driver and state directory.
fn driver(encoded: &[(String, Vec<u8>)], records: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut rates = Vec::with_capacity(DRIVER_ROUNDS);
    for _ in 0..DRIVER_ROUNDS {
        rates.push(driver_run(encoded, records)?);
    }
    if let Some(rate) = median(&mut rates) {
        println!("driver: {rate:.0} records/s");
    }
    Ok(())
}

/// One test driver run over the whole input; records/s.
fn driver_run(
    encoded: &[(String, Vec<u8>)],
    records: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut driver = TopologyTestDriver::with_config(
        reference::topology(Default::default()),
        "bench-driver",
        DriverConfig {
            partitions: PARTITIONS,
            backend: StoreBackend::Sled {
                state_dir: dir.path().to_path_buf(),
                config: SledStoreConfig::default(),
            },
            commit_every: 10_000,
            ..Default::default()
        },
    )?;
    let started = Instant::now();
    for (i, (k, v)) in encoded.iter().enumerate() {
        driver.pipe(reference::INPUT, k, v, 1_700_000_000_000 + i as i64)?;
        if i % 10_000 == 0 {
            driver.read_output(reference::OUTPUT);
        }
    }
    driver.commit()?;
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// One embedded round: a fresh application's worker over the whole input; records/s to
/// its last commit, seconds to its first record, and the rest of its shutdown.
fn embedded(
    broker: &EmbeddedBroker,
    topo: &Topology,
    bootstrap: &str,
    records: u64,
    round: usize,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    let app = format!("bench-{round}");
    broker.create_internal_topics(topo, &app, PARTITIONS)?;
    let state = tempfile::tempdir()?;
    let cfg = StreamsConfig::new(&app, bootstrap)
        .worker_id("bench-1")
        .state_dir(state.path());
    let started = Instant::now();
    let worker = StreamWorker::start(topo.clone(), cfg)?;
    // Checked every millisecond: the passthrough's clock stops the moment it is done.
    // A round takes about a second; a worker that stops receiving records fails the
    // bench with its state instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first = None;
    loop {
        let n = worker.stats().processed.load(Ordering::Relaxed);
        if n > 0 && first.is_none() {
            first = Some(started.elapsed().as_secs_f64());
        }
        if n >= records {
            if std::env::var("BENCH_PHASES").is_ok() {
                eprintln!(
                    "# embedded round {round}: first {:.0} ms, last {:.0} ms",
                    first.unwrap_or_default() * 1000.0,
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            break;
        }
        if Instant::now() > deadline {
            let s = worker.stats();
            return Err(format!(
                "embedded worker (round {round}) processed {n} of {records} records; state {:?}, tasks {:?}, commits {}",
                s.state(),
                s.tasks(),
                s.commits.load(Ordering::Relaxed)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (secs, teardown) = stop_after_commit(&worker, started)?;
    if std::env::var("BENCH_PHASES").is_ok() {
        eprintln!(
            "# embedded round {round}: committed {:.0} ms",
            secs * 1000.0
        );
    }
    Ok((records as f64 / secs, first.unwrap_or_default(), teardown))
}

/// Stops `worker` and returns the seconds from `started` to the end of its last commit
/// (every output and changelog record acknowledged, input offsets committed: where the
/// passthrough's clock stops too), and the seconds the rest of the shutdown took (leaving
/// the group, closing the clients and stores).
fn stop_after_commit(
    worker: &WorkerHandle,
    started: Instant,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let commits = worker.stats().commits.load(Ordering::Relaxed);
    std::thread::scope(|s| {
        let stopping = s.spawn(|| worker.shutdown());
        // A commit that found nothing left to do is not counted: the end is then the end
        // of the shutdown (an overestimate, never an underestimate).
        while worker.stats().commits.load(Ordering::Relaxed) == commits && !stopping.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let committed = started.elapsed();
        stopping.join().map_err(|_| "worker shutdown panicked")??;
        let secs = committed.as_secs_f64();
        Ok((secs, started.elapsed().as_secs_f64() - secs))
    })
}

/// The median of `v` (`None` when the part did not run).
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

/// Records/s of a plain consume → decode/encode → produce loop, and the seconds to its
/// first record.
fn passthrough(
    bootstrap: &str,
    records: u64,
    round: usize,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-passthrough-{round}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // As the stream worker's consumer: without it the read stalls for a second
        // whenever its prefetch queue passes 100,000 records, in some processes and not
        // others (passthrough figures of 105k or 235k records/s on the same machine).
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let started = Instant::now();
    consumer.subscribe(&[reference::INPUT])?;
    let mut n = 0u64;
    let mut first = 0.0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while n < records {
        before(deadline, "passthrough", n, records)?;
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            let ev: RefEvent = serde_json::from_slice(m.payload().unwrap_or_default())?;
            let out = serde_json::to_vec(&ev)?;
            let mut rec = BaseRecord::<[u8], [u8]>::to("passthrough-out")
                .key(m.key().unwrap_or_default())
                .payload(&out[..]);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            n += 1;
            if n == 1 {
                first = started.elapsed().as_secs_f64();
            }
        }
    }
    // The worker's flush (rust-rdkafka's own `flush` waits in 100 ms steps here).
    topology::await_deliveries(&producer, Duration::from_secs(60))?;
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    Ok((records as f64 / started.elapsed().as_secs_f64(), first))
}

/// An error once `deadline` has passed with `n` of `records` read (a broker that lost
/// records would otherwise make a read loop spin forever).
fn before(
    deadline: Instant,
    what: &str,
    n: u64,
    records: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    if Instant::now() > deadline {
        return Err(format!("{what} got {n} of {records} records").into());
    }
    Ok(())
}

/// Records/s of a plain read of every partition of `topic` by `consumers` consumers on
/// their own threads, the partitions split between them as restore splits its tasks (the
/// most records to the consumer with the fewest so far); timed from the moment they are
/// assigned to the moment the last one has read its share.
fn raw_read(
    bootstrap: &str,
    topic: &str,
    consumers: usize,
    round: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let ends = testing::end_offsets(bootstrap, topic)?;
    let mut by_size: Vec<(i32, i64)> = ends.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut shares: Vec<(Vec<i32>, u64)> = vec![(Vec::new(), 0); consumers.max(1)];
    for (p, n) in by_size {
        if let Some(s) = shares.iter_mut().min_by_key(|s| s.1) {
            s.0.push(p);
            s.1 += n as u64;
        }
    }
    let readers = shares
        .iter()
        .enumerate()
        .map(
            |(i, _)| -> Result<BaseConsumer, Box<dyn std::error::Error>> {
                let c: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", bootstrap)
                    .set("group.id", format!("bench-raw-read-{round}-{i}"))
                    .set("enable.auto.commit", "false")
                    .set("fetch.max.bytes", "104857600")
                    .set("max.partition.fetch.bytes", "10485760")
                    .set("queued.min.messages", "200000")
                    .set("fetch.queue.backoff.ms", "10")
                    .create()?;
                // Warm the connection (the restore consumers are connected when restore
                // starts). The read knows how many records to expect, so it needs no end
                // offsets: a pure read.
                for p in 0..PARTITIONS {
                    c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
                }
                Ok(c)
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    let start = std::sync::Barrier::new(readers.len());
    let started = Instant::now();
    let results: Vec<Result<Duration, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .iter()
            .zip(&shares)
            .map(|(consumer, (partitions, records))| {
                let start = &start;
                s.spawn(move || -> Result<Duration, String> {
                    start.wait();
                    let mut tpl = TopicPartitionList::new();
                    for p in partitions {
                        tpl.add_partition_offset(topic, *p, Offset::Beginning)
                            .map_err(|e| e.to_string())?;
                    }
                    consumer.assign(&tpl).map_err(|e| e.to_string())?;
                    let mut n = 0u64;
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while n < *records {
                        before(deadline, "raw read", n, *records).map_err(|e| e.to_string())?;
                        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                            let _ = m.map_err(|e| e.to_string())?.payload().map(<[u8]>::len);
                            n += 1;
                        }
                    }
                    Ok(started.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("raw read panicked".into())))
            .collect()
    });
    let mut slowest = Duration::ZERO;
    for r in results {
        slowest = slowest.max(r?);
    }
    let total: u64 = shares.iter().map(|s| s.1).sum();
    Ok(total as f64 / slowest.as_secs_f64())
}
