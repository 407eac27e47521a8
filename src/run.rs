//! `orchestra run`: stream workers and/or robot workers against a real Kafka cluster.
//!
//! Start several processes with the same application id and they share the work: the
//! consumer group spreads partitions, and state follows partitions through the changelogs.
//!
//! The process runs until Ctrl-C or SIGTERM (then it commits, closes its stores and exits
//! 0), or until its stream worker dies: then it exits non-zero with the worker's error, so
//! that its supervisor (compose `restart:`, a Kubernetes Deployment) starts it again; the
//! new process resumes from the committed offsets and the changelogs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use processors::robots::{Personalities, RobotEngine, RobotEngineConfig, RobotLlmConfig};
use processors::streams::{game_topology, topics, GameSettings};
use topology::{ProcessingGuarantee, StreamWorker, StreamsConfig, Topology, WorkerHandle};

use crate::api::{self, ApiState};
use crate::instances;
use crate::kafka_config::KafkaSettings;
use crate::robot_worker::RobotWorker;
use crate::views::{LatestView, ViewConfig};

/// Which parts this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The stream processing topology (match, orchestration, history, stats).
    Topology,
    /// Robot workers answering `robot-commands`.
    Robots,
    /// Both.
    All,
}

/// Options of `orchestra run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bootstrap: String,
    /// librdkafka settings for every client (secrets are redacted when printed).
    pub kafka: KafkaSettings,
    pub application_id: String,
    pub worker_id: String,
    pub state_dir: PathBuf,
    pub processing_guarantee: ProcessingGuarantee,
    pub role: Role,
    pub http: Option<SocketAddr>,
    /// The address this instance advertises (`None`: the one `http` binds, unless that is
    /// a wildcard); see [`crate::instances`].
    pub application_server: Option<String>,
    pub llm: RobotLlmConfig,
    pub robot_concurrency: usize,
    pub think_time_scale: f64,
    /// Replication factor of the topics the runtime creates (-1: the broker's default).
    pub replication_factor: i32,
    /// `commit.interval.ms` (`None`: the guarantee's default).
    pub commit_interval: Option<Duration>,
    /// The stream worker's output producer's `linger.ms` (a `linger.ms` in `kafka`
    /// overrides it).
    pub output_linger: Duration,
    /// Restore consumers (`None`: the runtime's default).
    pub restore_consumers: Option<usize>,
    /// `num.standby.replicas` (0: none).
    pub num_standby_replicas: u32,
    /// Page cache of each read view's store, MiB (`<state_dir>/views/<topic>`).
    pub view_cache_mb: u64,
    /// How long a round waits for robots (`None`: forever).
    pub robots_window_ms: Option<u64>,
    /// Response phase length of new matches.
    pub response_window_ms: u64,
    /// Voting phase length of new matches.
    pub voting_window_ms: u64,
    /// How long after a phase's deadline its timeouts fire.
    pub deadline_grace_ms: u64,
}

/// The read view of `topic` in `<state_dir>/views/<topic>` (resumed from there after a
/// restart), with `--view-cache-mb` of page cache.
fn open_view(client: &rdkafka::ClientConfig, opts: &RunOptions, topic: &str) -> Result<LatestView> {
    let config = ViewConfig::in_state_dir(&opts.state_dir, topic, opts.view_cache_mb);
    LatestView::open(client, topic, &config)
}

/// How often the process checks that its stream workers still run.
const WORKER_CHECK: Duration = Duration::from_millis(200);

/// Runs until Ctrl-C (or SIGTERM), then commits and leaves the group; returns an error as
/// soon as a stream worker dies.
pub async fn run(
    opts: RunOptions,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<()> {
    let mut settings = GameSettings::default();
    settings.game = settings
        .game
        .with_robots_window_ms(opts.robots_window_ms)
        .with_response_window_ms(opts.response_window_ms)
        .with_voting_window_ms(opts.voting_window_ms)
        .with_deadline_grace_ms(opts.deadline_grace_ms);
    // Issue 15 item 4: robots answer after their (scaled) think time, reading the room
    // (scale 0: at once, as before).
    let max_think_ms = RobotEngineConfig::default().max_think_time.as_millis() as u64;
    let settings = settings.with_think_times(
        Personalities::builtin().think_times_ms(opts.think_time_scale, max_think_ms),
    );
    let topology = game_topology(&settings);
    let client = opts.kafka.client(&opts.bootstrap);
    tracing::info!(
        bootstrap = %opts.bootstrap,
        application_id = %opts.application_id,
        worker_id = %opts.worker_id,
        role = ?opts.role,
        guarantee = ?opts.processing_guarantee,
        kafka = %opts.kafka,
        "starting"
    );
    let mut workers: Vec<Arc<WorkerHandle>> = Vec::new();
    if matches!(opts.role, Role::Topology | Role::All) {
        let mut cfg = StreamsConfig::new(&opts.application_id, &opts.bootstrap)
            .worker_id(&opts.worker_id)
            .processing_guarantee(opts.processing_guarantee)
            .state_dir(&opts.state_dir);
        cfg.replication_factor = opts.replication_factor;
        if let Some(d) = opts.commit_interval {
            cfg = cfg.commit_interval(d);
        }
        if let Some(n) = opts.restore_consumers {
            cfg = cfg.restore_consumers(n);
        }
        cfg = cfg
            .num_standby_replicas(opts.num_standby_replicas)
            .output_linger(opts.output_linger);
        for (k, v) in opts.kafka.pairs() {
            cfg = cfg.kafka(k, v);
        }
        let topo = topology.clone();
        let handle = tokio::task::spawn_blocking(move || StreamWorker::start(topo, cfg))
            .await?
            .with_context(|| {
                format!(
                    "starting the stream worker on {} (is the broker running and reachable? for the embedded one, start `orchestra broker` and pass the address it prints)",
                    opts.bootstrap
                )
            })?;
        workers.push(Arc::new(handle));
    }
    let mut robots = Vec::new();
    if matches!(opts.role, Role::Robots | Role::All) {
        let engine = RobotEngine::new(
            RobotEngineConfig {
                llm: opts.llm.clone(),
                max_concurrency: opts.robot_concurrency,
                think_time_scale: opts.think_time_scale,
                ..RobotEngineConfig::default()
            },
            Personalities::builtin(),
        )?;
        robots.push(RobotWorker::start(
            &client,
            &format!("{}-robots", opts.application_id),
            &Topology::dlq_topic(&opts.application_id),
            engine,
        )?);
    }
    let mut api_task = None;
    let mut server = opts.application_server.clone();
    if let Some(addr) = opts.http {
        let routing = {
            let (c, app, rf) = (
                client.clone(),
                opts.application_id.clone(),
                opts.replication_factor,
            );
            tokio::task::spawn_blocking(move || instances::ensure_topic(&c, &app, rf)).await?;
            instances::InstancesView::start(&client, &instances::topic(&opts.application_id))?
        };
        let routing = Arc::new(routing);
        let requests = crate::api::request_producer(&client, std::time::Duration::from_secs(10))?;
        let state = Arc::new(ApiState {
            application_id: opts.application_id.clone(),
            workers: workers.clone(),
            topology: topology.clone(),
            requests,
            history: open_view(&client, &opts, topics::MATCH_HISTORY)?,
            pool: open_view(&client, &opts, topics::ROBOT_POOL_STATE)?,
            metrics,
            tokens: api::PlayerTokens::from_env(),
            live: Some(api::live::LiveEvents::start(&client)?),
            routing: Some(api::Routing::new(routing, server.clone())?),
            latency: Some(api::RequestLatency::start(&client)?),
        });
        let (bound, task) = api::serve(addr, state.clone()).await?;
        if server.is_none() && !bound.ip().is_unspecified() {
            // The address --http bound (port 0 picked one).
            server = Some(bound.to_string());
            if let Some(r) = &state.routing {
                r.advertise(bound.to_string());
            }
        }
        println!("play: http://{bound}/");
        println!("read API: http://{bound}");
        {
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        }
        api_task = Some(task);
    }
    let publisher = if workers.is_empty() {
        None
    } else {
        tracing::info!(application_server = ?server, "advertising this instance");
        Some(instances::InstancePublisher::start(
            &client,
            instances::topic(&opts.application_id),
            opts.worker_id.clone(),
            server,
            workers.clone(),
        )?)
    };
    let died = tokio::select! {
        _ = wait_for_shutdown_signal() => None,
        died = first_dead_worker(&workers) => Some(died),
    };
    if let Some(i) = died {
        // The worker already dropped its uncommitted effects; stop the rest and report.
        let w = workers[i].clone();
        let result = tokio::task::spawn_blocking(move || w.wait()).await?;
        for r in robots {
            r.stop().await;
        }
        if let Some(t) = api_task {
            t.abort();
        }
        let why = match result {
            Err(e) => anyhow::Error::new(e),
            Ok(()) => anyhow!("it stopped without an error"),
        };
        return Err(why.context(format!(
            "stream worker `{}` died; exiting non-zero so that the supervisor restarts this process (it resumes from the committed offsets and the changelogs)",
            opts.worker_id
        )));
    }
    tracing::info!("shutting down: committing and closing stores");
    if let Some(p) = publisher {
        p.stop().await;
    }
    for r in robots {
        r.stop().await;
    }
    for w in &workers {
        let w = w.clone();
        tokio::task::spawn_blocking(move || w.shutdown()).await??;
    }
    if let Some(t) = api_task {
        t.abort();
    }
    Ok(())
}

/// Resolves with the index of the first worker whose loop has ended (never, without
/// workers).
async fn first_dead_worker(workers: &[Arc<WorkerHandle>]) -> usize {
    if workers.is_empty() {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(WORKER_CHECK);
    loop {
        tick.tick().await;
        if let Some(i) = workers.iter().position(|w| !w.is_running()) {
            return i;
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
