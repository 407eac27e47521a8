//! The command line of `orchestra`: every command, flag and environment variable. It is
//! part of the library so that tests parse the command lines of `deploy/` (compose,
//! Kubernetes, README snippets) with the very definition the binary uses.
//!
//! ```
//! use clap::Parser as _;
//! use orchestra::cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["orchestra", "run", "--role", "topology", "--commit-interval-ms", "500"]).unwrap();
//! assert!(matches!(cli.command, Command::Run(_)));
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use processors::robots::RobotLlmConfig;
use rdkafka::ClientConfig;
use topology::ProcessingGuarantee;

use crate::export::ExportFormat;
use crate::kafka_config::KafkaSettings;
use crate::logging::LogFormat;
use crate::run::Role;
use crate::time_range::TimeRange;

#[derive(Parser, Debug)]
#[command(
    name = "orchestra",
    version,
    about = "RobotOrchestra Streams: a Kafka Streams-style stream processor for the RobotOrchestra game"
)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "ORCHESTRA_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// More log output: `-v` shows the demo's worker log on the console (it goes to a
    /// file in the state dir otherwise); `-vv` logs at debug. `RUST_LOG` overrides both.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole system on an embedded broker: workers, robots, simulated players, read API.
    Demo(DemoArgs),
    /// A stream worker and/or robot worker against a real Kafka cluster.
    Run(RunArgs),
    /// The embedded broker as a process of its own, with every topic created; prints
    /// `bootstrap: HOST:PORT` first. In memory only, and each partition keeps at most about
    /// 5 MiB (see the README): for development and tests, not for data you want to keep.
    Broker(BrokerArgs),
    /// Create or list the topics of the topic spec (deploy/topics.json).
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
    /// Finished matches, newest first: JSON lines (one document per line, nothing else on
    /// stdout, so it pipes into `jq`) or a table.
    History {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        table: bool,
        #[command(flatten)]
        range: TimeRangeArgs,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// match-history and match-stats as flat tables for analysts (matches, seats, rounds,
    /// responses, votes, robot_voices, stats), one Parquet or CSV file each.
    Export(ExportArgs),
    /// A self-contained HTML report with plots (detection accuracy, fooled rate per
    /// personality, round durations, robot latency and cost per model, match volume).
    Report(ReportArgs),
    /// Windowed match statistics.
    Stats {
        #[arg(long)]
        table: bool,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

/// `--since`/`--until` of the analysts' commands: on completion time, as epoch
/// milliseconds, `YYYY-MM-DD[THH:MM[:SS]]Z` (UTC) or a span back from now (`30m`, `12h`,
/// `7d`). See [`crate::time_range`].
#[derive(Args, Clone, Debug, Default)]
pub struct TimeRangeArgs {
    /// Only matches completed at or after this time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only matches completed before this time.
    #[arg(long)]
    pub until: Option<String>,
}

impl TimeRangeArgs {
    /// The parsed range (relative spans counted back from now).
    pub fn range(&self) -> Result<TimeRange> {
        Ok(TimeRange::parse(
            self.since.as_deref(),
            self.until.as_deref(),
            crate::time_range::now_ms(),
        )?)
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Directory the tables are written to (created if missing).
    #[arg(long, default_value = "export")]
    pub out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: ExportFormat,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The HTML file written.
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
    /// Read match-history from a JSON-lines file (`demo --history-out`, `orchestra
    /// history`) instead of the cluster.
    #[arg(long, value_name = "FILE")]
    pub history_file: Option<PathBuf>,
    /// Price of a model's tokens for the cost plot, USD per 1,000 tokens (repeatable;
    /// models without a price cost 0).
    #[arg(long = "price", value_name = "MODEL=USD_PER_1K", value_parser = parse_price)]
    pub prices: Vec<(String, f64)>,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

fn parse_price(s: &str) -> Result<(String, f64), String> {
    let (model, price) = parse_kv(s)?;
    let price: f64 = price
        .trim()
        .parse()
        .map_err(|_| format!("`{price}` is not a price in USD per 1,000 tokens"))?;
    if !price.is_finite() || price < 0.0 {
        return Err(format!("`{price}` is not a price"));
    }
    Ok((model, price))
}

#[derive(Clone, Copy, ValueEnum, Debug)]
pub enum DescribeFormat {
    Text,
    Mermaid,
}

#[derive(Subcommand, Debug)]
pub enum TopicsAction {
    /// Create every topic of the spec (idempotent: existing topics are left alone).
    Create {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// The topic spec (JSON, the format of deploy/topics.json; default: the spec
        /// compiled into the binary).
        #[arg(long, env = "ORCHESTRA_TOPICS_FILE")]
        file: Option<PathBuf>,
        /// Replication factor of every topic whose spec names none (-1: the broker's
        /// `default.replication.factor`).
        #[arg(
            long,
            env = "ORCHESTRA_REPLICATION_FACTOR",
            default_value_t = -1,
            allow_negative_numbers = true
        )]
        replication_factor: i32,
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

/// How to reach the cluster: `--bootstrap-servers` and librdkafka settings from a
/// properties file, `ORCHESTRA_KAFKA_*` variables and `--kafka-config` flags (see
/// [`crate::kafka_config`]).
#[derive(Args, Clone, Debug)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// librdkafka setting passed to every client (repeatable): TLS, SASL, ... Secrets are
    /// better passed as ORCHESTRA_KAFKA_* variables or in --kafka-config-file.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub kafka_config: Vec<(String, String)>,
    /// librdkafka settings in a properties file (`key=value` lines).
    #[arg(long, env = "ORCHESTRA_KAFKA_CONFIG_FILE", value_name = "PATH")]
    pub kafka_config_file: Option<PathBuf>,
}

impl KafkaArgs {
    /// The librdkafka settings from the file, the environment and the flags.
    pub fn settings(&self) -> Result<KafkaSettings> {
        KafkaSettings::resolve(self.kafka_config_file.as_deref(), &self.kafka_config)
    }

    /// A client config for the bootstrap servers with [`KafkaArgs::settings`].
    pub fn client(&self) -> Result<ClientConfig> {
        Ok(self.settings()?.client(&self.bootstrap_servers))
    }
}

/// `HOST:PORT` with a non-empty host and a port in 1..=65535.
fn parse_host_port(s: &str) -> Result<String, String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` is not HOST:PORT"))?;
    let host_ok = !host.is_empty() && !host.contains('/') && !host.contains(' ');
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(s.to_string()),
        _ => Err(format!(
            "`{s}` is not HOST:PORT (a host name or IP address and a port 1-65535)"
        )),
    }
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

#[derive(Args, Clone, Debug)]
pub struct LlmArgs {
    /// OpenAI-compatible API key; without one robots use the offline personality engine.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    /// OpenAI-compatible base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,
    /// Model robots use.
    #[arg(long, env = "ORCHESTRA_ROBOT_MODEL", default_value = "gpt-4o-mini")]
    pub robot_model: String,
    /// Multiplier of personality think-time delays (0 = answer at once).
    #[arg(long, env = "ORCHESTRA_THINK_TIME_SCALE", default_value_t = 0.0)]
    pub think_time_scale: f64,
}

impl LlmArgs {
    /// The robot engine's model settings.
    pub fn config(&self) -> RobotLlmConfig {
        RobotLlmConfig {
            base_url: self.openai_base_url.clone(),
            api_key: self.openai_api_key.clone().filter(|k| !k.is_empty()),
            model: self.robot_model.clone(),
            ..RobotLlmConfig::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Stream workers (one consumer group).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Robot workers.
    #[arg(long, default_value_t = 1)]
    pub robot_workers: usize,
    /// Matches to play (default: until Ctrl-C).
    #[arg(long)]
    pub matches: Option<u64>,
    /// Exit once every match is in match-history, printing a summary.
    #[arg(long, requires = "matches")]
    pub exit_when_done: bool,
    /// Write every match-history value as one JSON line.
    #[arg(long)]
    pub history_out: Option<PathBuf>,
    /// Write the analyst tables (as `orchestra export` does) to this directory at the end.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// File format of --export.
    #[arg(long, value_enum, default_value = "parquet", requires = "export")]
    pub format: ExportFormat,
    /// Keep stores and the log here between runs (default: a temp dir, removed at the end
    /// unless the demo fails).
    #[arg(long, env = "ORCHESTRA_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Read API address ("off" to disable).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Run `replay` at the end and fail on any mismatch.
    #[arg(long)]
    pub replay_check: bool,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Rounds per match.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Matches played at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Response window per round, ms.
    #[arg(long, default_value_t = 5000)]
    pub response_window_ms: u64,
    /// Voting window per round, ms.
    #[arg(long, default_value_t = 5000)]
    pub voting_window_ms: u64,
    #[arg(long, default_value = "at_least_once")]
    pub processing_guarantee: ProcessingGuarantee,
    #[command(flatten)]
    pub llm: LlmArgs,
}

#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// The application id whose internal topics (changelogs, stats repartition topic, DLQ)
    /// are created.
    #[arg(
        long,
        env = "ORCHESTRA_APPLICATION_ID",
        default_value = "robotorchestra"
    )]
    pub application_id: String,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Serve on this address (e.g. 0.0.0.0:9092) through a forwarder, instead of a
    /// loopback port the system picks.
    #[arg(long, env = "ORCHESTRA_BROKER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// With --listen: the HOST or HOST:PORT clients are told to connect to (default: the
    /// listen address; 127.0.0.1 for 0.0.0.0).
    #[arg(long, requires = "listen", env = "ORCHESTRA_BROKER_ADVERTISE")]
    pub advertise: Option<String>,
    /// Read fault-injection commands on stdin (`errors <API> <ERROR> [COUNT]`, `clear <API>`,
    /// `down`, `up`), answering `ok: ...` or `error: ...` on stdout.
    #[arg(long)]
    pub faults_from_stdin: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Consumer group id and prefix of the internal topics (Kafka Streams' `application.id`).
    #[arg(
        long,
        env = "ORCHESTRA_APPLICATION_ID",
        default_value = "robotorchestra"
    )]
    pub application_id: String,
    /// Unique per process (default: hostname-pid).
    #[arg(long, env = "ORCHESTRA_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Where the task stores live (one sled database per task).
    #[arg(long, env = "ORCHESTRA_STATE_DIR", default_value = "state")]
    pub state_dir: PathBuf,
    /// `at_least_once` or `exactly_once`.
    #[arg(
        long,
        env = "ORCHESTRA_PROCESSING_GUARANTEE",
        default_value = "at_least_once"
    )]
    pub processing_guarantee: ProcessingGuarantee,
    /// What this process runs: the stream topology, the robot workers, or both.
    #[arg(long, value_enum, env = "ORCHESTRA_ROLE", default_value = "all")]
    pub role: Role,
    /// Read API address (health, metrics, history, matches).
    #[arg(long, env = "ORCHESTRA_HTTP")]
    pub http: Option<SocketAddr>,
    /// The `HOST:PORT` other instances reach this one's read API at (Kafka Streams'
    /// `application.server`): published with the tasks this instance runs, so any
    /// instance answers `GET /matches/{id}` by forwarding to the owner. Default: the
    /// address `--http` binds, unless that is a wildcard (0.0.0.0, ::).
    #[arg(long, env = "ORCHESTRA_APPLICATION_SERVER", value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub application_server: Option<String>,
    /// Concurrent robot commands per worker.
    #[arg(long, env = "ORCHESTRA_ROBOT_CONCURRENCY", default_value_t = 32)]
    pub robot_concurrency: usize,
    /// Replication factor of the topics the runtime creates (changelogs, DLQ, repartition);
    /// -1: the broker's `default.replication.factor` (Kafka Streams' `replication.factor`).
    #[arg(
        long,
        env = "ORCHESTRA_REPLICATION_FACTOR",
        default_value_t = -1,
        allow_negative_numbers = true
    )]
    pub replication_factor: i32,
    /// How often tasks commit, ms (Kafka Streams' `commit.interval.ms`; default 1000
    /// under at_least_once, 100 under exactly_once).
    #[arg(long, env = "ORCHESTRA_COMMIT_INTERVAL_MS")]
    pub commit_interval_ms: Option<u64>,
    /// How long the stream worker's producer waits to batch outputs, ms (librdkafka's
    /// `linger.ms` for that producer). 0: a player's action reaches `match-events` one
    /// round trip after the worker reads it; higher values trade that latency for fewer,
    /// larger requests when a worker works through a backlog.
    #[arg(long, env = "ORCHESTRA_OUTPUT_LINGER_MS", default_value_t = 0)]
    pub output_linger_ms: u64,
    /// Restore consumers (changelogs are read and applied in parallel by this many;
    /// default: the machine's cores, at most 4).
    #[arg(long, env = "ORCHESTRA_RESTORE_CONSUMERS")]
    pub restore_consumers: Option<usize>,
    /// Standby replicas (Kafka Streams' `num.standby.replicas`): above 0, each worker
    /// keeps warm copies of the tasks it does not run, so a failover restores only the
    /// changelog's tail.
    #[arg(long, env = "ORCHESTRA_NUM_STANDBY_REPLICAS", default_value_t = 0)]
    pub num_standby_replicas: u32,
    /// Page cache of each read view (match-history, robot-pool-state), MiB: the views live
    /// on disk under `<state-dir>/views/`, so their memory is this, whatever their size.
    #[arg(long, env = "ORCHESTRA_VIEW_CACHE_MB", default_value_t = 64)]
    pub view_cache_mb: u64,
    /// How long a round waits for its robots before it starts without them, ms
    /// (0: wait forever).
    #[arg(long, env = "ORCHESTRA_ROBOTS_WINDOW_MS", default_value_t = 30_000)]
    pub robots_window_ms: u64,
    /// How long a round's response phase lasts, ms (new matches).
    #[arg(long, env = "ORCHESTRA_RESPONSE_WINDOW_MS", default_value_t = 60_000)]
    pub response_window_ms: u64,
    /// How long a round's voting phase lasts, ms (new matches).
    #[arg(long, env = "ORCHESTRA_VOTING_WINDOW_MS", default_value_t = 30_000)]
    pub voting_window_ms: u64,
    /// How long after a phase's deadline its timeouts fire, ms. An answer or vote is in
    /// time when its own timestamp (when the API took it) is not past the deadline; the
    /// grace lets one still in flight at the deadline arrive.
    #[arg(long, env = "ORCHESTRA_DEADLINE_GRACE_MS", default_value_t = 2_000)]
    pub deadline_grace_ms: u64,
    #[command(flatten)]
    pub llm: LlmArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_server_takes_host_port_and_refuses_anything_else() {
        assert_eq!(
            parse_host_port("10.0.0.7:8080").as_deref(),
            Ok("10.0.0.7:8080")
        );
        assert_eq!(
            parse_host_port("worker-1:8080").as_deref(),
            Ok("worker-1:8080")
        );
        for bad in ["worker-1", ":8080", "h:0", "h:99999", "h:x", "http://h/:80"] {
            let e = parse_host_port(bad).unwrap_err();
            assert!(e.contains("HOST:PORT"), "{bad}: {e}");
        }
        let e =
            Cli::try_parse_from(["orchestra", "run", "--application-server", "nope"]).unwrap_err();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
    }
}
