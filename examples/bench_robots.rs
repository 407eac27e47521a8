//! Robot worker benchmark: commands/s answered through the embedded broker by the offline
//! engine, and by an OpenAI-compatible stub with 50 ms latency at concurrency 1, 16 and 64
//! (concurrency hides model latency).
//!
//! ```text
//! cargo run --release --example bench_robots [-- --commands 400] [--runs 5]
//! ```
//!
//! Every setting answers the same number of commands (`--commands`) in each of `--runs`
//! runs, each on a fresh embedded broker; a figure is the median of its runs. A run's
//! clock starts once the worker has joined its group and answered a warm-up command (so
//! the group join is outside it) and stops when the last answer is delivered to
//! `robot-responses` (the worker's stop is outside it too). Each run then reads the
//! answers back: one per command, every one from the engine the figure names (the model
//! `stub` for the stub settings — an offline fallback or a failed command fails the run
//! rather than count as an answer — and `offline` for the offline one), and the stub must
//! have received a request for each.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use orchestra::robot_worker::{RobotWorker, RobotWorkerStats};
use processors::robots::{Personalities, RobotEngine, RobotEngineConfig, RobotLlmConfig};
use processors::streams::topics;
use rdkafka::ClientConfig;
use serde_json::json;
use topology::{testing, EmbeddedBroker};

/// The model name the stub answers with.
const STUB_MODEL: &str = "stub";
/// The offline engine's model name.
const OFFLINE_MODEL: &str = "offline";

/// `n` response commands, `first` numbering the first one.
fn commands(first: usize, n: usize) -> Vec<(String, Vec<u8>)> {
    (first..first + n)
        .map(|i| {
            let match_id = format!("m-{i}");
            let personality = ["curious-student", "skeptical-scientist", "creative-artist"][i % 3];
            let v = json!({
                "eventId": format!("cmd-{i}"), "eventType": "generate.response", "schemaVersion": 1,
                "matchId": match_id, "timestamp": 1_700_000_000_000i64, "correlationId": "c", "causationId": "c",
                "data": {"commandId": format!("cmd-{i}"), "robotId": format!("robot-s0-curious-student-{}", i % 7),
                         "personality": personality,
                         "identity": "B", "round": 1, "prompt": "What is the best meal you have ever had?",
                         "context": {"totalRounds": 3}, "deadline": 0}
            });
            (match_id, serde_json::to_vec(&v).unwrap())
        })
        .collect()
}

/// Answers handled (answered or failed) and none of them still being delivered.
fn settled(stats: &RobotWorkerStats, target: u64) -> bool {
    stats.answered.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed) >= target
        && stats.in_flight.load(Ordering::Relaxed) == 0
}

/// Waits, polling every millisecond, until `target` commands are settled.
async fn until_settled(stats: &RobotWorkerStats, target: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !settled(stats, target) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} answered, {} failed of {target}",
            stats.answered.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// One run: commands/s answered by `model`, the group join and the stop left out.
async fn run(
    n: usize,
    llm: RobotLlmConfig,
    concurrency: usize,
    model: &str,
    stub_requests: Option<&AtomicU64>,
) -> anyhow::Result<f64> {
    let broker = EmbeddedBroker::start()?;
    for t in [topics::ROBOT_COMMANDS, topics::ROBOT_RESPONSES, "bench-dlq"] {
        broker.create_topic(t, 8)?;
    }
    let bootstrap = broker.bootstrap_servers();
    let engine = RobotEngine::new(
        RobotEngineConfig {
            llm,
            max_concurrency: concurrency,
            think_time_scale: 0.0,
            acquire_timeout: Duration::from_secs(600),
            ..RobotEngineConfig::default()
        },
        Personalities::builtin(),
    )?;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &bootstrap);
    let worker = RobotWorker::start(&client, "bench-robots", "bench-dlq", engine)?;
    let stats = worker.stats.clone();
    // Warm-up: the worker has joined the group (it is the only member, so it holds every
    // partition) and reached the engine once.
    let produce = |recs: Vec<(String, Vec<u8>)>| {
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || testing::produce(&b, topics::ROBOT_COMMANDS, &recs, 0))
    };
    produce(commands(n, 1)).await??;
    until_settled(&stats, 1).await?;
    let stub_before = stub_requests.map(|r| r.load(Ordering::Relaxed));

    let started = Instant::now();
    produce(commands(0, n)).await??;
    until_settled(&stats, n as u64 + 1).await?;
    let secs = started.elapsed().as_secs_f64();
    worker.stop().await;

    anyhow::ensure!(
        stats.failed.load(Ordering::Relaxed) == 0,
        "{} commands failed",
        stats.failed.load(Ordering::Relaxed)
    );
    let b = bootstrap.clone();
    let delivered = tokio::task::spawn_blocking(move || {
        testing::read_topic(&b, topics::ROBOT_RESPONSES, n + 1, Duration::from_secs(60))
    })
    .await??;
    let mut answered = std::collections::BTreeSet::new();
    let mut other_models = std::collections::BTreeMap::<String, usize>::new();
    for r in &delivered {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap_or_default())?;
        let command = v["data"]["commandId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let got = v["data"]["model"].as_str().unwrap_or("none");
        if v["eventType"] != "response.submitted" || got != model {
            *other_models
                .entry(format!("{} {got}", v["eventType"]))
                .or_default() += 1;
        }
        answered.insert(command);
    }
    anyhow::ensure!(
        other_models.is_empty(),
        "answers not from `{model}`: {other_models:?}"
    );
    anyhow::ensure!(
        answered.len() == n + 1,
        "{} of {} commands answered",
        answered.len(),
        n + 1
    );
    if let (Some(requests), Some(before)) = (stub_requests, stub_before) {
        let during = requests.load(Ordering::Relaxed) - before;
        anyhow::ensure!(
            during >= n as u64,
            "the stub received {during} requests for {n} commands"
        );
    }
    Ok(n as f64 / secs)
}

/// The median of `runs` runs of one setting.
async fn measure(
    runs: usize,
    n: usize,
    llm: RobotLlmConfig,
    concurrency: usize,
    model: &str,
    stub_requests: Option<&AtomicU64>,
) -> anyhow::Result<f64> {
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        rates.push(run(n, llm.clone(), concurrency, model, stub_requests).await?);
    }
    rates.sort_by(f64::total_cmp);
    eprintln!("# {model}, concurrency {concurrency}: {rates:.1?} commands/s");
    Ok(rates[rates.len() / 2])
}

/// An OpenAI-compatible chat endpoint answering after `latency`; counts its requests.
async fn stub(latency: Duration, requests: Arc<AtomicU64>) -> anyhow::Result<SocketAddr> {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(_body): Json<serde_json::Value>| async move {
            requests.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(latency).await;
            Json(json!({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": STUB_MODEL,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Probably the ramen I had after a long hike, honestly."}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn flag(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::args().skip_while(|a| a != name).nth(1) {
        Some(v) => Ok(v.parse::<usize>()?.max(1)),
        None => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = flag("--commands", 400)?;
    let runs = flag("--runs", 5)?;
    eprintln!("# {n} commands per run, median of {runs} runs");
    let offline = measure(runs, n, RobotLlmConfig::default(), 64, OFFLINE_MODEL, None).await?;
    println!("robots offline embedded: {offline:.0} commands/s");
    let requests = Arc::new(AtomicU64::new(0));
    let addr = stub(Duration::from_millis(50), requests.clone()).await?;
    for c in [1usize, 16, 64] {
        let llm = RobotLlmConfig {
            base_url: format!("http://{addr}/v1"),
            api_key: Some("bench-key".into()),
            model: STUB_MODEL.into(),
            timeout: Duration::from_secs(10),
            ..RobotLlmConfig::default()
        };
        let rate = measure(runs, n, llm, c, STUB_MODEL, Some(&requests)).await?;
        println!("robots stub 50ms concurrency {c}: {rate:.1} commands/s");
    }
    Ok(())
}
