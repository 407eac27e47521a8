//! Robot worker benchmark: commands/s answered through the embedded broker by the offline
//! engine, and through an OpenAI-compatible stub with 50 ms latency at concurrency 1, 16
//! and 64 (concurrency hides model latency).
//!
//! ```text
//! cargo run --release --example bench_robots
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use orchestra::robot_worker::RobotWorker;
use processors::robots::{Personalities, RobotEngine, RobotEngineConfig, RobotLlmConfig};
use processors::streams::topics;
use rdkafka::ClientConfig;
use serde_json::json;
use topology::{testing, EmbeddedBroker};

fn commands(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
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

async fn measure(n: usize, llm: RobotLlmConfig, concurrency: usize) -> anyhow::Result<f64> {
    let broker = EmbeddedBroker::start()?;
    for t in [topics::ROBOT_COMMANDS, topics::ROBOT_RESPONSES, "bench-dlq"] {
        broker.create_topic(t, 8)?;
    }
    let bootstrap = broker.bootstrap_servers();
    testing::produce(&bootstrap, topics::ROBOT_COMMANDS, &commands(n), 0)?;
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
    let started = Instant::now();
    let worker = RobotWorker::start(&client, "bench-robots", "bench-dlq", engine)?;
    let stats = worker.stats.clone();
    while stats.answered.load(std::sync::atomic::Ordering::Relaxed)
        + stats.failed.load(std::sync::atomic::Ordering::Relaxed)
        < n as u64
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.stop().await;
    let b = bootstrap.clone();
    let delivered = tokio::task::spawn_blocking(move || {
        testing::read_topic(&b, topics::ROBOT_RESPONSES, n, Duration::from_secs(60))
    })
    .await??;
    anyhow::ensure!(
        delivered.len() >= n,
        "only {} answers delivered",
        delivered.len()
    );
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn stub(latency: Duration) -> anyhow::Result<SocketAddr> {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(_body): Json<serde_json::Value>| async move {
            tokio::time::sleep(latency).await;
            Json(json!({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "stub",
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let offline = measure(5_000, RobotLlmConfig::default(), 64).await?;
    println!("robots offline embedded: {offline:.0} commands/s");
    let addr = stub(Duration::from_millis(50)).await?;
    for (c, n) in [(1usize, 60usize), (16, 600), (64, 2_000)] {
        let llm = RobotLlmConfig {
            base_url: format!("http://{addr}/v1"),
            api_key: Some("bench-key".into()),
            model: "stub".into(),
            timeout: Duration::from_secs(10),
            ..RobotLlmConfig::default()
        };
        let rate = measure(n, llm, c).await?;
        println!("robots stub 50ms concurrency {c}: {rate:.1} commands/s");
    }
    Ok(())
}
