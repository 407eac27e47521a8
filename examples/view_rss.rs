//! Memory and latency of the `match-history` read view at N finished matches: the
//! bounded on-disk view (`LatestView` over a sled `ViewStore`, page cache capped by
//! `--cache-mb`) against the old in-memory view (every document in a `BTreeMap`, each
//! page a clone and a sort), each measured in a process of its own that serves the read
//! API over HTTP.
//!
//! ```text
//! cargo run --release --example view_rss -- 100000                 # both, one after the other
//! cargo run --release --example view_rss -- 1000000 --mode store   # the lines issue 17's scale bench prints
//! ```
//!
//! The embedded broker keeps at most 5 MiB per partition, so the N documents are **loaded
//! into the view's backing store directly** (identity and offsets of the running broker,
//! as if read from it); the serving process opens it as `orchestra run --http` would
//! (`<state-dir>/views/match-history`, resumes at the stored offsets) and serves
//! `GET /matches/history?limit=20&offset=o` (o uniform in the first 10,000) alternating
//! with `GET /matches/history/{id}` (id uniform over all N). The in-memory process builds
//! the old view's map directly and serves the old handlers. Each document is a real one
//! (`examples/data/match_history_sample.json`, a 3-round `classic_1v3` match written by
//! `orchestra demo`, 7.2 kB) with its own match id and times.
//!
//! Output, one figure per line:
//! `view rss before any request at N matches: X MB` (opened, caught up),
//! `view rss at N matches: X MB` (after the requests), `history p99 at N matches: X ms`,
//! `history deep-page p99 at N matches: X ms` (offset uniform over all N), and the same
//! prefixed `in-memory` for the old view.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use orchestra::api::{self, ApiState};
use orchestra::views::{self, Entry, LatestView, Order, Record, ViewConfig, ViewStore};
use processors::streams::{game_topology, topics, GameSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::Value;

/// The allocator of the `orchestra` binary (src/main.rs), so the RSS is the one
/// `orchestra run --http` would have.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLE: &str = include_str!("data/match_history_sample.json");
const PARTITIONS: i32 = 3;
/// Page requests pick their offset in the first this many matches.
const TOP: usize = 10_000;

struct Args {
    n: usize,
    mode: String,
    cache_mb: u64,
    requests: usize,
    serve: Option<String>,
    bootstrap: Option<String>,
    state_dir: Option<PathBuf>,
}

fn parse_args(args: Vec<String>) -> Result<Args> {
    let mut it = args.into_iter();
    let mut a = Args {
        n: 0,
        mode: "both".into(),
        cache_mb: 64,
        requests: 2000,
        serve: None,
        bootstrap: None,
        state_dir: None,
    };
    let mut n = None;
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--mode" => a.mode = val()?,
            "--cache-mb" => a.cache_mb = val()?.parse().context("--cache-mb")?,
            "--requests" => a.requests = val()?.parse().context("--requests")?,
            "--serve" => a.serve = Some(val()?),
            "--bootstrap" => a.bootstrap = Some(val()?),
            "--state-dir" => a.state_dir = Some(val()?.into()),
            other if n.is_none() => n = Some(other.parse().context("N (matches)")?),
            other => bail!("unexpected argument `{other}`"),
        }
    }
    a.n = n.ok_or_else(|| {
        anyhow!("usage: view_rss N [--mode both|store|memory] [--cache-mb 64] [--requests 2000]")
    })?;
    if !matches!(a.mode.as_str(), "both" | "store" | "memory") {
        bail!("--mode is both, store or memory");
    }
    Ok(a)
}

fn main() -> Result<()> {
    main_from(std::env::args().skip(1).collect())
}

/// Runs with `args` (without the program name): the parent, or a serving process (with
/// `--serve`; the parent re-runs its own binary, which may be the `scale` example's).
pub fn main_from(args: Vec<String>) -> Result<()> {
    let args = parse_args(args)?;
    match args.serve.as_deref() {
        Some("store") => serve_store(&args),
        Some("memory") => serve_memory(&args),
        Some(other) => bail!("unknown --serve {other}"),
        None => parent(&args),
    }
}

/// Document `i`: the sample with its own id; completed at `base + 1000 i`.
fn document(template: &Value, i: usize) -> (String, Vec<u8>) {
    let id = format!("m-bench-{i:08}");
    let mut v = template.clone();
    let created = 1_700_000_000_000 + 1000 * i as i64;
    v["matchId"] = Value::from(id.clone());
    v["createdAt"] = Value::from(created);
    v["completedAt"] = Value::from(created + 5_000);
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    (id, bytes)
}

fn template() -> Result<Value> {
    serde_json::from_str(SAMPLE).context("the sample document")
}

fn cluster_id(bootstrap: &str) -> Result<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("consumer")?;
    consumer
        .client()
        .fetch_cluster_id(Duration::from_secs(10))
        .ok_or_else(|| anyhow!("the broker gave no cluster id"))
}

fn parent(args: &Args) -> Result<()> {
    let broker = topology::EmbeddedBroker::start()?;
    orchestra::topics::create_embedded(&broker, PARTITIONS)?;
    let bootstrap = broker.bootstrap_servers();
    let modes: &[&str] = match args.mode.as_str() {
        "both" => &["store", "memory"],
        "store" => &["store"],
        _ => &["memory"],
    };
    for mode in modes {
        let dir = tempfile::tempdir()?;
        if *mode == "store" {
            let t = Instant::now();
            load_store(dir.path(), &bootstrap, args.n, args.cache_mb)?;
            eprintln!(
                "loaded {} documents into the view store in {:.1} s",
                args.n,
                t.elapsed().as_secs_f64()
            );
        }
        let mut child = Command::new(std::env::current_exe()?)
            .arg(args.n.to_string())
            .args(["--serve", mode, "--bootstrap", &bootstrap])
            .args(["--cache-mb", &args.cache_mb.to_string()])
            .args(["--requests", &args.requests.to_string()])
            .arg("--state-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the serving process")?;
        let out = child.stdout.take().context("child stdout")?;
        for line in BufReader::new(out).lines() {
            println!("{}", line?);
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("the {mode} process failed: {status}");
        }
    }
    Ok(())
}

/// Writes `n` documents into the view store under `state_dir` as the view would have
/// read them from this broker (its identity; offsets at the partitions' current ends).
fn load_store(state_dir: &Path, bootstrap: &str, n: usize, cache_mb: u64) -> Result<()> {
    let cluster = cluster_id(bootstrap)?;
    let cfg = ViewConfig::in_state_dir(state_dir, topics::MATCH_HISTORY, cache_mb);
    let dir = cfg.dir.context("dir")?;
    let store = ViewStore::open(
        &dir,
        topics::MATCH_HISTORY,
        Some(&cluster),
        cfg.cache_bytes,
        Order::HistoryCompletion,
    )?;
    let template = template()?;
    let mut i = 0;
    while i < n {
        let docs: Vec<(String, Vec<u8>)> = (i..(i + 1000).min(n))
            .map(|j| document(&template, j))
            .collect();
        let records: Vec<Record<'_>> = docs
            .iter()
            .enumerate()
            .map(|(j, (k, v))| Record {
                key: k.as_bytes(),
                value: Some(v),
                timestamp: 0,
                partition: ((i + j) % PARTITIONS as usize) as i32,
                // Not from this (empty) topic: the stored position stays at its start.
                offset: -1,
            })
            .collect();
        store.apply(&records)?;
        i += docs.len();
    }
    store.flush()?;
    Ok(())
}

/// Resident and peak resident memory of this process, MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A small deterministic generator (xorshift), so both processes ask the same things.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

fn p99(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms.get(((ms.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

/// Times `requests` GETs alternating a page near the top and one match by id, then
/// `deep` pages anywhere; checks every answer is 200. Returns (p99, deep p99) in ms.
async fn measure(base: &str, n: usize, requests: usize, deep: usize) -> Result<(f64, f64)> {
    let http = reqwest::Client::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let get = |url: String| {
        let http = http.clone();
        async move {
            let t = Instant::now();
            let r = http.get(&url).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            if status != reqwest::StatusCode::OK || body.len() < 2 {
                bail!("{url}: {status}");
            }
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let mut times = Vec::with_capacity(requests);
    for i in 0..requests {
        let url = if i % 2 == 0 {
            let o = rng.below(n.min(TOP));
            format!("{base}/matches/history?limit=20&offset={o}")
        } else {
            format!("{base}/matches/history/m-bench-{:08}", rng.below(n))
        };
        times.push(get(url).await?);
    }
    let mut deep_times = Vec::with_capacity(deep);
    for _ in 0..deep {
        let o = rng.below(n);
        deep_times.push(get(format!("{base}/matches/history?limit=20&offset={o}")).await?);
    }
    Ok((p99(times), p99(deep_times)))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn report(prefix: &str, n: usize, p: f64, deep: f64) {
    let (rss, peak) = rss_mb();
    println!("{prefix}view rss at {n} matches: {rss:.0} MB");
    println!("{prefix}history p99 at {n} matches: {p:.2} ms");
    println!("{prefix}history deep-page p99 at {n} matches: {deep:.2} ms");
    eprintln!("{prefix}view peak rss at {n} matches: {peak:.0} MB");
}

/// RSS once the view is open (loaded) and before any request.
fn idle_rss(prefix: &str, n: usize) {
    println!(
        "{prefix}view rss before any request at {n} matches: {:.0} MB",
        rss_mb().0
    );
}

fn serve_store(args: &Args) -> Result<()> {
    let bootstrap = args.bootstrap.as_deref().context("--bootstrap")?;
    let state_dir = args.state_dir.as_deref().context("--state-dir")?;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap);
    let rt = runtime()?;
    let view = |topic: &str| {
        LatestView::open(
            &client,
            topic,
            &ViewConfig::in_state_dir(state_dir, topic, args.cache_mb),
        )
    };
    let state = Arc::new(ApiState {
        application_id: "view-rss".into(),
        workers: Vec::new(),
        topology: game_topology(&GameSettings::default()),
        requests: rt.block_on(async { api::request_producer(&client, Duration::from_secs(5)) })?,
        history: view(topics::MATCH_HISTORY)?,
        pool: view(topics::ROBOT_POOL_STATE)?,
        metrics: None,
        tokens: api::PlayerTokens::new("view-rss"),
        live: None,
        routing: None,
        latency: None,
    });
    if !state.history.wait_caught_up(Duration::from_secs(60)) {
        bail!("the view did not catch up: {:?}", state.history);
    }
    if state.history.len() != args.n {
        bail!(
            "the view resumed with {} documents, not {} (was the store wiped?)",
            state.history.len(),
            args.n
        );
    }
    idle_rss("", args.n);
    let (p, deep) = rt.block_on(async {
        let (addr, _server) = api::serve("127.0.0.1:0".parse()?, state.clone()).await?;
        measure(
            &format!("http://{addr}"),
            args.n,
            args.requests,
            (args.requests / 10).max(20),
        )
        .await
    })?;
    report("", args.n, p, deep);
    Ok(())
}

type OldView = Arc<BTreeMap<String, Entry>>;

#[derive(serde::Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// The old `GET /matches/history`: a copy of the whole map, decoded and sorted per page.
async fn old_history(State(view): State<OldView>, Query(q): Query<PageQuery>) -> Response {
    let snapshot: BTreeMap<String, Entry> = (*view).clone();
    let docs = views::sorted_histories(&snapshot);
    let total = docs.len();
    let mut body = b"[".to_vec();
    for (i, (_, e)) in docs
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(q.limit.unwrap_or(20).min(500))
        .enumerate()
    {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&e.value);
    }
    body.push(b']');
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    r
}

async fn old_record(State(view): State<OldView>, UrlPath(id): UrlPath<String>) -> Response {
    match view.get(&id) {
        Some(e) => (StatusCode::OK, e.value.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn serve_memory(args: &Args) -> Result<()> {
    let template = template()?;
    // What the old view held after reading the topic: every document in one map.
    let map: BTreeMap<String, Entry> = (0..args.n)
        .map(|i| {
            let (k, value) = document(&template, i);
            let e = Entry {
                value,
                timestamp: 0,
                partition: (i % PARTITIONS as usize) as i32,
                offset: (i / PARTITIONS as usize) as i64,
            };
            (k, e)
        })
        .collect();
    let view: OldView = Arc::new(map);
    idle_rss("in-memory ", args.n);
    let rt = runtime()?;
    // Every page copies and sorts the map: far fewer requests than the store's.
    let requests = (args.requests / 50).max(10);
    let (p, deep) = rt.block_on(async {
        let app = Router::new()
            .route("/matches/history", get(old_history))
            .route("/matches/history/{id}", get(old_record))
            .with_state(view.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        measure(&format!("http://{addr}"), args.n, requests, 10).await
    })?;
    report("in-memory ", args.n, p, deep);
    Ok(())
}
