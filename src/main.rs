//! `orchestra` — RobotOrchestra Streams. `orchestra --help` lists the commands.

/// mimalloc: the match benchmark runs about a quarter faster with it than with the system
/// allocator (`cargo run --release -p processors --example bench_match`). It is built with
/// `no_thp`: mimalloc otherwise asks the kernel for transparent huge pages, and every fresh
/// 2 MiB page is then zeroed on its first touch; in the match benchmark that zeroing took a
/// quarter of the time (new sled I/O threads touch fresh pages at every commit).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use orchestra::broker::{self, BrokerOptions};
use orchestra::demo::{self, DemoOptions};
use orchestra::run::{self, Role, RunOptions};
use processors::robots::RobotLlmConfig;
use processors::streams::{game_topology, topics, GameSettings};
use rdkafka::ClientConfig;
use topology::ProcessingGuarantee;

#[derive(Parser)]
#[command(
    name = "orchestra",
    version,
    about = "RobotOrchestra Streams: a Kafka Streams-style stream processor for the RobotOrchestra game"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole system on an embedded broker: workers, robots, simulated players, read API.
    Demo(DemoArgs),
    /// A stream worker and/or robot worker against a real Kafka cluster.
    Run(RunArgs),
    /// The embedded broker as a process of its own, with every topic created; prints
    /// `bootstrap: HOST:PORT` first. In memory only, and each partition keeps at most about
    /// 5 MiB (see the README): for development and tests, not for data you want to keep.
    Broker(BrokerArgs),
    /// Create or list the topics of deploy/topics.json.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Print the topology.
    Describe {
        #[arg(long, value_enum, default_value = "text")]
        format: DescribeFormat,
        #[arg(
            long,
            env = "ORCHESTRA_APPLICATION_ID",
            default_value = "robotorchestra"
        )]
        application_id: String,
    },
    /// Rebuild match-state and match-history from match-events and compare with the live topics.
    Replay(KafkaArgs),
    /// Print a topic: latest value per key for compacted topics, records otherwise.
    Tail {
        topic: String,
        #[arg(long)]
        from_beginning: bool,
        #[arg(long)]
        table: bool,
        /// Stop after this many records.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Finished matches, newest first.
    History {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        table: bool,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Windowed match statistics.
    Stats {
        #[arg(long)]
        table: bool,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DescribeFormat {
    Text,
    Mermaid,
}

#[derive(Subcommand)]
enum TopicsAction {
    /// Create every topic (idempotent: existing topics are left alone).
    Create {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Override the replication factor of every topic (e.g. 1 on a one-broker cluster).
        #[arg(long)]
        replication_factor: Option<i32>,
        /// Override the partition count of every topic.
        #[arg(long)]
        partitions: Option<i32>,
    },
    /// List the cluster's topics.
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

#[derive(Args, Clone)]
struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    bootstrap_servers: String,
    /// librdkafka setting passed to every client (repeatable): TLS, SASL, ...
    #[arg(long = "kafka-config", value_name = "KEY=VALUE", value_parser = parse_kv)]
    kafka_config: Vec<(String, String)>,
}

impl KafkaArgs {
    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.kafka_config {
            c.set(k, v);
        }
        c
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

#[derive(Args, Clone)]
struct LlmArgs {
    /// OpenAI-compatible API key; without one robots use the offline personality engine.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    openai_api_key: Option<String>,
    /// OpenAI-compatible base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    openai_base_url: String,
    /// Model robots use.
    #[arg(long, env = "ORCHESTRA_ROBOT_MODEL", default_value = "gpt-4o-mini")]
    robot_model: String,
    /// Multiplier of personality think-time delays (0 = answer at once).
    #[arg(long, default_value_t = 0.0)]
    think_time_scale: f64,
}

impl LlmArgs {
    fn config(&self) -> RobotLlmConfig {
        RobotLlmConfig {
            base_url: self.openai_base_url.clone(),
            api_key: self.openai_api_key.clone().filter(|k| !k.is_empty()),
            model: self.robot_model.clone(),
            ..RobotLlmConfig::default()
        }
    }
}

#[derive(Args)]
struct DemoArgs {
    /// Stream workers (one consumer group).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Robot workers.
    #[arg(long, default_value_t = 1)]
    robot_workers: usize,
    /// Matches to play (default: until Ctrl-C).
    #[arg(long)]
    matches: Option<u64>,
    /// Exit once every match is in match-history, printing a summary.
    #[arg(long, requires = "matches")]
    exit_when_done: bool,
    /// Write every match-history value as one JSON line.
    #[arg(long)]
    history_out: Option<PathBuf>,
    /// Keep stores here between runs (default: a temp dir).
    #[arg(long, env = "ORCHESTRA_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Read API address ("off" to disable).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
    /// Run `replay` at the end and fail on any mismatch.
    #[arg(long)]
    replay_check: bool,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Rounds per match.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Matches played at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Response window per round, ms.
    #[arg(long, default_value_t = 5000)]
    response_window_ms: u64,
    /// Voting window per round, ms.
    #[arg(long, default_value_t = 5000)]
    voting_window_ms: u64,
    #[arg(long, default_value = "at_least_once")]
    processing_guarantee: ProcessingGuarantee,
    #[command(flatten)]
    llm: LlmArgs,
}

#[derive(Args)]
struct BrokerArgs {
    /// The application id whose internal topics (changelogs, DLQ) are created.
    #[arg(
        long,
        env = "ORCHESTRA_APPLICATION_ID",
        default_value = "robotorchestra"
    )]
    application_id: String,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Serve on this address (e.g. 0.0.0.0:9092) through a forwarder, instead of a
    /// loopback port the system picks.
    #[arg(long, env = "ORCHESTRA_BROKER_LISTEN")]
    listen: Option<SocketAddr>,
    /// With --listen: the HOST or HOST:PORT clients are told to connect to (default: the
    /// listen address; 127.0.0.1 for 0.0.0.0).
    #[arg(long, requires = "listen", env = "ORCHESTRA_BROKER_ADVERTISE")]
    advertise: Option<String>,
    /// Read fault-injection commands on stdin (`errors <API> <ERROR> [COUNT]`, `clear <API>`,
    /// `down`, `up`), answering `ok: ...` or `error: ...` on stdout.
    #[arg(long)]
    faults_from_stdin: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[arg(
        long,
        env = "ORCHESTRA_APPLICATION_ID",
        default_value = "robotorchestra"
    )]
    application_id: String,
    /// Unique per process (default: hostname-pid).
    #[arg(long, env = "ORCHESTRA_WORKER_ID")]
    worker_id: Option<String>,
    #[arg(long, env = "ORCHESTRA_STATE_DIR", default_value = "state")]
    state_dir: PathBuf,
    #[arg(
        long,
        env = "ORCHESTRA_PROCESSING_GUARANTEE",
        default_value = "at_least_once"
    )]
    processing_guarantee: ProcessingGuarantee,
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
    /// Read API address (health, metrics, history, matches).
    #[arg(long, env = "ORCHESTRA_HTTP")]
    http: Option<SocketAddr>,
    /// Concurrent robot commands per worker.
    #[arg(long, default_value_t = 32)]
    robot_concurrency: usize,
    /// Replication factor of internal topics the runtime creates.
    #[arg(long, default_value_t = 3)]
    replication_factor: i32,
    /// Restore consumers (changelogs are read and applied in parallel by this many;
    /// default: the machine's cores, at most 4).
    #[arg(long, env = "ORCHESTRA_RESTORE_CONSUMERS")]
    restore_consumers: Option<usize>,
    /// How long a round waits for its robots before it starts without them, ms
    /// (0: wait forever).
    #[arg(long, env = "ORCHESTRA_ROBOTS_WINDOW_MS", default_value_t = 30_000)]
    robots_window_ms: u64,
    /// How long a round's response phase lasts, ms (new matches).
    #[arg(long, env = "ORCHESTRA_RESPONSE_WINDOW_MS", default_value_t = 60_000)]
    response_window_ms: u64,
    /// How long a round's voting phase lasts, ms (new matches).
    #[arg(long, env = "ORCHESTRA_VOTING_WINDOW_MS", default_value_t = 30_000)]
    voting_window_ms: u64,
    #[command(flatten)]
    llm: LlmArgs,
}

fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
        ])
        .ok()?
        .install_recorder()
        .ok()?;
    topology::metrics::describe();
    processors::robots::describe_metrics();
    Some(handle)
}

/// Runs the command; a failure ends with one message on stderr — the error and its causes,
/// which say what went wrong and what to do — and exit code 1. No backtrace, even with
/// `RUST_BACKTRACE=1`: the message is for the person running the command.
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info,rdkafka=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            let r = rt.block_on(async_main(cli));
            // Threads still blocked on a broker must not hold the exit.
            rt.shutdown_timeout(Duration::from_secs(5));
            r
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// `error: <what>` and one `  caused by: <why>` line per cause (a cause whose text the
/// message already shows — many errors print their source — is left out).
fn error_message(e: &anyhow::Error) -> String {
    let mut out = format!("error: {e}");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(&format!("\n  caused by: {text}"));
        }
    }
    out
}

async fn async_main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(a) => {
            let http = match a.http.as_str() {
                "off" | "none" => None,
                s => Some(s.parse().with_context(|| format!("--http {s}"))?),
            };
            let opts = DemoOptions {
                workers: a.workers,
                robot_workers: a.robot_workers,
                matches: a.matches,
                exit_when_done: a.exit_when_done,
                history_out: a.history_out,
                state_dir: a.state_dir,
                http,
                replay_check: a.replay_check,
                partitions: a.partitions,
                rounds: a.rounds,
                concurrency: a.concurrency,
                think_time_scale: a.llm.think_time_scale,
                response_window: Duration::from_millis(a.response_window_ms),
                voting_window: Duration::from_millis(a.voting_window_ms),
                processing_guarantee: a.processing_guarantee,
                llm: a.llm.config(),
                ..DemoOptions::default()
            };
            let summary = demo::run(opts, install_metrics()).await?;
            println!("{summary}");
            if !summary.replay_clean {
                bail!("replay found mismatches");
            }
            Ok(())
        }
        Command::Run(a) => {
            let worker_id = a.worker_id.unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
                format!("{host}-{}", std::process::id())
            });
            let opts = RunOptions {
                client: a.kafka.client(),
                bootstrap: a.kafka.bootstrap_servers.clone(),
                kafka: a.kafka.kafka_config.clone(),
                application_id: a.application_id,
                worker_id,
                state_dir: a.state_dir,
                processing_guarantee: a.processing_guarantee,
                role: a.role,
                http: a.http,
                llm: a.llm.config(),
                robot_concurrency: a.robot_concurrency,
                think_time_scale: a.llm.think_time_scale,
                replication_factor: a.replication_factor,
                restore_consumers: a.restore_consumers,
                robots_window_ms: (a.robots_window_ms > 0).then_some(a.robots_window_ms),
                response_window_ms: a.response_window_ms,
                voting_window_ms: a.voting_window_ms,
            };
            run::run(opts, install_metrics()).await
        }
        Command::Broker(a) => {
            broker::run(BrokerOptions {
                application_id: a.application_id,
                partitions: a.partitions,
                listen: a.listen,
                advertise: a.advertise,
                faults_from_stdin: a.faults_from_stdin,
                ..BrokerOptions::default()
            })
            .await
        }
        Command::Topics { action } => match action {
            TopicsAction::Create {
                kafka,
                replication_factor,
                partitions,
            } => {
                let (created, existing) = tokio::task::spawn_blocking(move || {
                    orchestra::topics::create(&kafka.client(), replication_factor, partitions)
                })
                .await??;
                for t in &created {
                    println!("created {t}");
                }
                for t in &existing {
                    println!("exists  {t}");
                }
                Ok(())
            }
            TopicsAction::List { kafka } => {
                for (name, partitions) in
                    tokio::task::spawn_blocking(move || orchestra::topics::list(&kafka.client()))
                        .await??
                {
                    println!("{name}\t{partitions}");
                }
                Ok(())
            }
        },
        Command::Describe {
            format,
            application_id,
        } => {
            let d = game_topology(&GameSettings::default()).describe(Some(&application_id));
            match format {
                DescribeFormat::Text => print!("{}", d.to_text()),
                DescribeFormat::Mermaid => print!("{}", d.to_mermaid()),
            }
            Ok(())
        }
        Command::Replay(kafka) => {
            let report = tokio::task::spawn_blocking(move || {
                let client = kafka.client();
                // A fold of a partial log would look like a whole one: refuse it.
                let whole: Vec<String> = [
                    topics::MATCH_EVENTS,
                    topics::MATCH_STATE,
                    topics::MATCH_HISTORY,
                ]
                .map(String::from)
                .to_vec();
                orchestra::topics::check_kept_whole(&client, &whole)?;
                orchestra::replay::replay(&client)
            })
            .await??;
            println!("{report}");
            if !report.is_clean() {
                bail!("replay found mismatches (listed above): the live topics differ from a fresh fold of match-events");
            }
            Ok(())
        }
        Command::Tail {
            topic,
            from_beginning,
            table,
            limit,
            kafka,
        } => {
            tokio::task::spawn_blocking(move || {
                orchestra::views::tail(
                    &kafka.client(),
                    &topic,
                    from_beginning,
                    table,
                    limit,
                    &mut std::io::stdout().lock(),
                )
            })
            .await?
        }
        Command::History {
            limit,
            table,
            kafka,
        } => {
            tokio::task::spawn_blocking(move || {
                orchestra::views::history(
                    &kafka.client(),
                    limit,
                    table,
                    &mut std::io::stdout().lock(),
                )
            })
            .await?
        }
        Command::Stats { table, kafka } => {
            tokio::task::spawn_blocking(move || {
                orchestra::views::stats(&kafka.client(), table, &mut std::io::stdout().lock())
            })
            .await?
        }
    }
}
