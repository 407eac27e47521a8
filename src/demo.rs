//! `orchestra demo`: the whole system on the embedded broker, in one process.
//!
//! Starts the embedded broker (its bootstrap address is printed so kcat or any Kafka
//! client can read the topics while it runs), creates every topic, starts `workers`
//! stream workers in one consumer group (so partitions really are shared), robot workers,
//! the read API and the match simulator; shows progress; and, with `exit_when_done`,
//! waits until every simulated match is in `match-history`, shuts everything down cleanly
//! and returns a summary.
//!
//! The embedded broker lives in memory: every run starts with empty topics. So every run
//! starts every store afresh too — with `state_dir`, the stores an earlier run left there
//! (`worker-N/`) are removed first (and the demo says so); the directory keeps the stores
//! of the last run for inspection. At the end the demo checks that the topics that must be
//! kept whole (`match-events`, `match-history`, the changelogs) lost no records to the
//! broker's per-partition cap, and fails saying so if they did (while it runs, an ERROR is
//! logged the moment it happens).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use processors::robots::{Personalities, RobotEngine, RobotEngineConfig, RobotLlmConfig};
use processors::streams::{game_topology, topics, GameSettings};
use rdkafka::ClientConfig;
use topology::{
    EmbeddedBroker, ProcessingGuarantee, StreamWorker, StreamsConfig, Topology, WorkerHandle,
};

use crate::api::{self, ApiState};
use crate::robot_worker::RobotWorker;
use crate::simulator::{Simulator, SimulatorConfig};
use crate::views::LatestView;

/// Options of the demo (mirrored by CLI flags).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub application_id: String,
    pub workers: usize,
    pub robot_workers: usize,
    /// Matches to play (`None`: until Ctrl-C).
    pub matches: Option<u64>,
    pub exit_when_done: bool,
    pub history_out: Option<PathBuf>,
    /// Write the analyst tables (`orchestra export`) to this directory in this format at
    /// the end.
    pub export: Option<(PathBuf, crate::export::ExportFormat)>,
    pub state_dir: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub replay_check: bool,
    pub partitions: i32,
    pub rounds: u32,
    pub concurrency: usize,
    pub think_time_scale: f64,
    pub response_window: Duration,
    pub voting_window: Duration,
    pub processing_guarantee: ProcessingGuarantee,
    pub llm: RobotLlmConfig,
    /// Progress bar on a terminal, log lines otherwise.
    pub progress: bool,
    /// Told `(bootstrap, api address)` once everything runs (tests, embedding).
    pub on_ready: Option<std::sync::mpsc::SyncSender<(String, Option<SocketAddr>)>>,
    /// Shuts the demo down cleanly when it becomes `true` (besides Ctrl-C).
    pub shutdown: Option<tokio::sync::watch::Receiver<bool>>,
    /// Sends the log to `orchestra.log` in the state dir (the console keeps the
    /// addresses, the progress bar and the summary).
    pub log: Option<crate::logging::LogTarget>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            application_id: "robotorchestra".into(),
            workers: 2,
            robot_workers: 1,
            matches: None,
            exit_when_done: false,
            history_out: None,
            export: None,
            state_dir: None,
            http: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            replay_check: false,
            partitions: 8,
            rounds: 3,
            concurrency: 16,
            think_time_scale: 0.0,
            response_window: Duration::from_secs(5),
            voting_window: Duration::from_secs(5),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            llm: RobotLlmConfig::default(),
            progress: std::io::stderr().is_terminal(),
            on_ready: None,
            shutdown: None,
            log: None,
        }
    }
}

/// What a finished demo reports.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub bootstrap: String,
    pub api: Option<SocketAddr>,
    pub matches: u64,
    pub match_events: i64,
    pub dlq_records: i64,
    pub elapsed: Duration,
    pub replay: Option<String>,
    pub replay_clean: bool,
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "matches: {}", self.matches)?;
        writeln!(f, "match events: {}", self.match_events)?;
        writeln!(f, "dlq records: {}", self.dlq_records)?;
        writeln!(f, "elapsed: {secs:.2} s")?;
        writeln!(f, "matches/s: {:.2}", self.matches as f64 / secs)?;
        writeln!(f, "events/s: {:.0}", self.match_events as f64 / secs)?;
        if let Some(r) = &self.replay {
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Sum of the high watermarks of a topic.
pub fn topic_size(client: &ClientConfig, topic: &str) -> Result<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = client.create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let mut total = 0;
    for t in md.topics() {
        for p in t.partitions() {
            total += c.fetch_watermarks(topic, p.id(), Duration::from_secs(5))?.1;
        }
    }
    Ok(total)
}

/// Removes the worker stores (`worker-N` directories) an earlier demo left in `dir`;
/// returns their names. Nothing else in `dir` is touched.
pub fn wipe_stores(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_store = name
            .strip_prefix("worker-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_store && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path()).with_context(|| {
                format!(
                    "removing the old stores in {} (remove the directory by hand or pick another --state-dir)",
                    entry.path().display()
                )
            })?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Runs the demo; see the module docs. A failed demo keeps its temp state dir (stores and
/// log) and names it in the error.
pub async fn run(
    opts: DemoOptions,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<DemoSummary> {
    let (tmp, state_root) = match &opts.state_dir {
        Some(d) => {
            let removed = wipe_stores(d)?;
            if !removed.is_empty() {
                println!(
                    "state dir {}: removed the stores of an earlier run ({}): the embedded broker starts empty, so every store starts afresh",
                    d.display(),
                    removed.join(", ")
                );
            }
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("orchestra-demo-")
                .tempdir()
                .context("temp state dir")?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    if let Some(log) = &opts.log {
        let path = state_root.join("orchestra.log");
        log.to_file(&path)
            .with_context(|| format!("opening the log file {}", path.display()))?;
        println!("log: {}   (-v shows it here)", path.display());
    }
    let result = run_in(opts, metrics, &state_root).await;
    match (result, tmp) {
        (Err(e), Some(t)) => {
            let kept = t.keep();
            Err(e.context(format!(
                "the demo failed; its stores and log are kept in {}",
                kept.display()
            )))
        }
        (result, _) => result,
    }
}

async fn run_in(
    opts: DemoOptions,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    state_root: &std::path::Path,
) -> Result<DemoSummary> {
    let started = Instant::now();
    let broker = EmbeddedBroker::start()?;
    let bootstrap = broker.bootstrap_servers();
    println!("embedded broker: {bootstrap}   (e.g. kcat -b {bootstrap} -C -t match-history)");
    crate::topics::create_embedded(&broker, opts.partitions)?;
    let mut settings = GameSettings::default();
    settings.game = settings
        .game
        .with_response_window_ms(opts.response_window.as_millis() as u64)
        .with_voting_window_ms(opts.voting_window.as_millis() as u64);
    // Issue 15 item 4: robots answer after their (scaled) think time, reading the room
    // (scale 0: at once, as before).
    let max_think_ms = RobotEngineConfig::default().max_think_time.as_millis() as u64;
    let settings = settings.with_think_times(
        Personalities::builtin().think_times_ms(opts.think_time_scale, max_think_ms),
    );
    let topology = game_topology(&settings);
    broker.create_internal_topics(&topology, &opts.application_id, opts.partitions)?;
    // Says so the moment the broker drops records of a topic that must be kept whole.
    let watch = crate::broker::TruncationWatch::start(
        &bootstrap,
        crate::broker::kept_whole_topics(&topology, &opts.application_id),
        Duration::from_secs(5),
    )?;

    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &bootstrap);

    let mut workers: Vec<Arc<WorkerHandle>> = Vec::new();
    for i in 0..opts.workers.max(1) {
        let cfg = StreamsConfig::new(&opts.application_id, &bootstrap)
            .worker_id(&format!("demo-{i}"))
            .processing_guarantee(opts.processing_guarantee)
            .state_dir(state_root.join(format!("worker-{i}")))
            .session_timeout(Duration::from_secs(6))
            // As `orchestra run` (`--output-linger-ms`): players wait on every hop.
            .output_linger(Duration::ZERO);
        workers.push(Arc::new(StreamWorker::start(topology.clone(), cfg)?));
    }
    let engine_cfg = RobotEngineConfig {
        llm: opts.llm.clone(),
        think_time_scale: opts.think_time_scale,
        ..RobotEngineConfig::default()
    };
    let mut robots = Vec::new();
    for _ in 0..opts.robot_workers.max(1) {
        let engine = RobotEngine::new(engine_cfg.clone(), Personalities::builtin())?;
        robots.push(RobotWorker::start(
            &client,
            &format!("{}-robots", opts.application_id),
            &Topology::dlq_topic(&opts.application_id),
            engine,
        )?);
    }
    let history = LatestView::start(&client, topics::MATCH_HISTORY)?;
    let mut api_addr = None;
    let mut api_task = None;
    if let Some(addr) = opts.http {
        let requests = crate::api::request_producer(&client, std::time::Duration::from_secs(5))?;
        let state = Arc::new(ApiState {
            application_id: opts.application_id.clone(),
            workers: workers.clone(),
            topology: topology.clone(),
            requests,
            history: LatestView::start(&client, topics::MATCH_HISTORY)?,
            pool: LatestView::start(&client, topics::ROBOT_POOL_STATE)?,
            metrics: metrics.clone(),
            tokens: crate::api::PlayerTokens::from_env(),
            live: Some(crate::api::live::LiveEvents::start(&client)?),
            routing: None,
            latency: Some(crate::api::RequestLatency::start(&client)?),
        });
        let (bound, task) = api::serve(addr, state).await?;
        println!("play: http://{bound}/   (the game in a browser: lobby, play now, history)");
        println!("read API: http://{bound}  (GET /matches/history, /matches/{{id}}, /matches/{{id}}/view, /matches/{{id}}/live (WebSocket), /robots/pool, /topology, /metrics, /health)");
        api_addr = Some(bound);
        api_task = Some(task);
    }
    let sim = Simulator::start(
        &client,
        SimulatorConfig {
            matches: opts.matches,
            concurrency: opts.concurrency,
            total_rounds: opts.rounds,
            ..SimulatorConfig::default()
        },
    )?;

    if let Some(tx) = &opts.on_ready {
        let _ = tx.try_send((bootstrap.clone(), api_addr));
    }
    let mut shutdown = opts.shutdown.clone();
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(opts.matches.unwrap_or(0));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} matches {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut last_log = Instant::now();
    let mut last_events = (Instant::now(), 0i64);
    let mut last_line = String::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let done = history.len() as u64;
        if opts.exit_when_done && opts.matches.is_some_and(|n| done >= n) {
            break;
        }
        if workers.iter().any(|w| !w.is_running()) {
            anyhow::bail!("a stream worker stopped unexpectedly; see the log");
        }
        let stop_requested = async {
            match shutdown.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|v| *v).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = &mut ctrl_c => { println!("\nCtrl-C: shutting down cleanly"); break; }
            _ = stop_requested => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Some(b) = &bar {
            let events = topic_size(&client, topics::MATCH_EVENTS).unwrap_or(0);
            let rate =
                (events - last_events.1) as f64 / last_events.0.elapsed().as_secs_f64().max(1e-3);
            last_events = (Instant::now(), events);
            b.set_position(done);
            b.set_message(format!(
                "running {} | events {events} ({rate:.0}/s)",
                sim.stats
                    .created
                    .load(Ordering::Relaxed)
                    .saturating_sub(done)
            ));
        } else if last_log.elapsed() >= Duration::from_secs(5) {
            last_log = Instant::now();
            let events = topic_size(&client, topics::MATCH_EVENTS).unwrap_or(0);
            tracing::info!(
                created = sim.stats.created.load(Ordering::Relaxed),
                completed = done,
                events,
                "demo progress"
            );
            let line = format!(
                "progress: {} created, {done} completed, {events} match events",
                sim.stats.created.load(Ordering::Relaxed)
            );
            // Only news: once the simulated matches are done the demo keeps serving the
            // page and the API quietly.
            if line != last_line {
                println!("{line}");
                if opts.matches.is_some_and(|n| done >= n) {
                    println!("the simulated matches are done; still serving (Ctrl-C stops)");
                }
                last_line = line;
            }
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    sim.stop().await;
    for r in robots {
        r.stop().await;
    }
    for w in &workers {
        w.shutdown()?;
    }
    // The summary counts what `match-history` holds now that the workers are down, not
    // what this view had read when the loop ended: another reader (the read API's view)
    // may already have seen more.
    if !history.wait_read_to_end(&client, Duration::from_secs(30))? {
        tracing::warn!("the demo's history view did not reach the end of match-history in 30 s; the summary may undercount");
    }
    if let Some(t) = api_task {
        t.abort();
    }
    drop(watch);
    crate::topics::check_kept_whole(
        &client,
        &crate::broker::kept_whole_topics(&topology, &opts.application_id),
    )
    .context("the embedded broker lost records of this run")?;
    let match_events = topic_size(&client, topics::MATCH_EVENTS)?;
    let dlq_records = topic_size(&client, &Topology::dlq_topic(&opts.application_id))?;
    if let Some(path) = &opts.history_out {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        // Streamed from the view's store, by match id.
        for item in history.iter() {
            let (_, entry) = item?;
            f.write_all(&entry.value)?;
            f.write_all(b"\n")?;
        }
        f.flush()?;
    }
    if let Some((dir, format)) = &opts.export {
        let export = crate::export::ExportOptions {
            out: dir.clone(),
            format: *format,
            range: Default::default(),
            progress: true,
        };
        let client = client.clone();
        tokio::task::spawn_blocking(move || crate::export::export(&client, &export))
            .await?
            .context("exporting the analyst tables")?;
    }
    let (mut replay, mut replay_clean) = (None, true);
    if opts.replay_check {
        let report = tokio::task::spawn_blocking({
            let client = client.clone();
            move || crate::replay::replay(&client)
        })
        .await??;
        replay_clean = report.is_clean();
        replay = Some(report.to_string());
    }
    Ok(DemoSummary {
        bootstrap,
        api: api_addr,
        matches: history.len() as u64,
        match_events,
        dlq_records,
        elapsed,
        replay,
        replay_clean,
    })
}
