//! The worker process the latency run drives: `orchestra run --role all` re-run from this
//! binary, with the knobs of its librdkafka settings.

use super::*;

/// The worker child process.
pub(super) struct WorkerProc {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl WorkerProc {
    pub(super) fn spawn(
        bootstrap: &str,
        dir: PathBuf,
        guarantee: ProcessingGuarantee,
    ) -> Result<Self> {
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

    pub(super) fn stop(&mut self) {
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
