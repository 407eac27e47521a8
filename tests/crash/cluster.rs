//! The worker processes of a suite run, what they serve, and the disruptions: kills and
//! broker faults.

use super::*;

pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) proc: Proc,
    pub(crate) url: String,
    pub(crate) state_dir: PathBuf,
}

pub(crate) struct Cluster {
    pub(crate) dir: PathBuf,
    pub(crate) bootstrap: String,
    pub(crate) guarantee: &'static str,
    pub(crate) workers: Vec<Worker>,
}

impl Cluster {
    pub(crate) fn args(&self, index: usize, state_dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--bootstrap-servers",
            &self.bootstrap,
            "--replication-factor",
            "1",
            "--application-id",
            APP,
            "--processing-guarantee",
            self.guarantee,
            "--http",
            "127.0.0.1:0",
            "--worker-id",
            &format!("w{index}"),
            "--response-window-ms",
            &WINDOW_MS.to_string(),
            "--voting-window-ms",
            &WINDOW_MS.to_string(),
            "--robots-window-ms",
            &(WINDOW_MS * 2).to_string(),
        ]
        .map(String::from)
        .to_vec();
        args.push("--state-dir".into());
        args.push(state_dir.to_string_lossy().into_owned());
        // A dead member is noticed after its session times out: short, as in any test of
        // failover (Kafka's default is 45 s).
        for kv in ["session.timeout.ms=6000", "heartbeat.interval.ms=1000"] {
            args.push("--kafka-config".into());
            args.push(kv.into());
        }
        args
    }

    pub(crate) fn start_worker(&self, index: usize, state_dir: PathBuf) -> Worker {
        let args = self.args(index, &state_dir);
        let proc = Proc::spawn(&format!("w{index}"), &args, &[], &self.dir);
        let url = proc.line_starting("read API: ", START);
        Worker {
            index,
            proc,
            url,
            state_dir,
        }
    }

    pub(crate) fn urls(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.url.clone()).collect()
    }
}

/// Every (task, state) the live workers report on `/health`.
pub(crate) fn served_tasks(http: &Client, urls: &[String]) -> BTreeSet<String> {
    let mut tasks = BTreeSet::new();
    for url in urls {
        let Ok(r) = http.get(format!("{url}/health")).send() else {
            continue;
        };
        let Ok(v) = r.json::<Value>() else { continue };
        for w in v["workers"].as_array().into_iter().flatten() {
            for t in w["tasks"].as_array().into_iter().flatten() {
                if t["state"] == "running" {
                    if let Some(id) = t["task"].as_str() {
                        tasks.insert(id.to_string());
                    }
                }
            }
        }
    }
    tasks
}

/// One disruption of the suite.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Disruption {
    /// SIGKILL a worker (and wipe its state directory) and restart it.
    Kill { wipe: bool },
    /// Send a fault command to `orchestra broker --faults-from-stdin`; then restart every
    /// worker that exited (a worker must carry on or exit non-zero, never stall).
    Fault(&'static str),
}

impl Suite {
    /// The disruptions, in order.
    pub(crate) fn plan(&self) -> Vec<Disruption> {
        if self.faults {
            let mut plan: Vec<Disruption> = [
                "errors Produce NOT_LEADER_FOR_PARTITION 20",
                "errors Fetch NOT_LEADER_FOR_PARTITION 20",
                "errors OffsetCommit COORDINATOR_LOAD_IN_PROGRESS 3",
                "errors OffsetCommit OFFSET_METADATA_TOO_LARGE 1",
                "errors EndTxn NOT_COORDINATOR 2",
                "errors Produce REQUEST_TIMED_OUT 5",
            ]
            .into_iter()
            .map(Disruption::Fault)
            .collect();
            // Group errors matter while a group rebalances: a kill makes it rebalance.
            plan.push(Disruption::Fault(
                "errors JoinGroup COORDINATOR_LOAD_IN_PROGRESS 3",
            ));
            plan.push(Disruption::Fault(
                "errors SyncGroup REBALANCE_IN_PROGRESS 3",
            ));
            plan.push(Disruption::Kill { wipe: false });
            plan.push(Disruption::Fault("down"));
            plan.push(Disruption::Fault("up"));
            return plan;
        }
        (0..self.kills)
            .map(|k| Disruption::Kill { wipe: k == 2 })
            .collect()
    }
}

/// Runs `plan` against the cluster: after each disruption, restarts what died and waits
/// until every task in `all` is served again; returns how long each took.
pub(crate) fn disrupt(
    cluster: &mut Cluster,
    plan: &[Disruption],
    broker: &Mutex<Proc>,
    http: &Client,
    urls: &Mutex<Vec<String>>,
    all: &BTreeSet<String>,
) -> Vec<Duration> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut failovers = Vec::new();
    for (k, d) in plan.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(2_000 + rng.below(3_000)));
        let at = Instant::now();
        match *d {
            Disruption::Kill { wipe } => {
                let i = rng.below(WORKERS as u64) as usize;
                let w = &mut cluster.workers[i];
                w.proc.kill();
                if wipe {
                    // The machine lost the disk too.
                    std::fs::remove_dir_all(&w.state_dir).expect("wipe state dir");
                }
                let (index, state_dir) = (w.index, w.state_dir.clone());
                cluster.workers[i] = cluster.start_worker(index, state_dir);
            }
            Disruption::Fault(command) => {
                broker
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .send(command);
                // Let the fault meet the workers' requests before looking at them.
                std::thread::sleep(Duration::from_secs(3));
                for i in 0..cluster.workers.len() {
                    let exited = cluster.workers[i].proc.child.try_wait().expect("try_wait");
                    if let Some(status) = exited {
                        assert!(!status.success(), "w{i} exited 0 after `{command}`");
                        let (index, state_dir) = (
                            cluster.workers[i].index,
                            cluster.workers[i].state_dir.clone(),
                        );
                        cluster.workers[i] = cluster.start_worker(index, state_dir);
                    }
                }
                if command == "down" {
                    continue;
                }
            }
        }
        *urls.lock().unwrap_or_else(|e| e.into_inner()) = cluster.urls();
        let served = wait_all_served(http, &cluster.urls(), Duration::from_secs(120), Some(all));
        assert!(
            served.is_some(),
            "after disruption {k} ({d:?}) some tasks were never served again"
        );
        failovers.push(at.elapsed());
    }
    failovers
}

/// Polls the workers' `/health` until the running tasks are `expected` (or, without
/// it, until the set is non-empty and the same twice in a row); the set.
pub(crate) fn wait_all_served(
    http: &Client,
    urls: &[String],
    timeout: Duration,
    expected: Option<&BTreeSet<String>>,
) -> Option<BTreeSet<String>> {
    let deadline = Instant::now() + timeout;
    let mut last = BTreeSet::new();
    while Instant::now() < deadline {
        let now = served_tasks(http, urls);
        match expected {
            Some(e) if now.is_superset(e) => return Some(now),
            None if !now.is_empty() && now == last => return Some(now),
            _ => {}
        }
        last = now;
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
