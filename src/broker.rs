//! `orchestra broker`: the embedded broker (librdkafka's mock cluster) as a process of its
//! own, so that any number of `orchestra run` workers, kcat and tests can share it.
//!
//! It creates every topic of `deploy/topics.json` and the topology's internal topics
//! (changelogs, the stats repartition topic, DLQ) for one application id, all with the
//! same partition count, prints `bootstrap: HOST:PORT` as the first line on stdout, and
//! serves until Ctrl-C or SIGTERM. Workers then start with
//! `orchestra run --bootstrap-servers HOST:PORT --replication-factor 1`: the topics exist,
//! so the missing admin API does not matter.
//!
//! What it is not: durable (everything lives in memory and is gone when the process
//! ends), compacting, or unbounded — each partition keeps at most about 5 MiB or 100,000
//! batches and drops its oldest batches beyond that. The broker checks the topics that must
//! be kept whole (`match-events`, `match-history`, the changelogs) every few seconds and
//! logs an ERROR the moment one loses records; the workers' restore and `orchestra replay`
//! refuse to read a truncated log. See the README for how many matches fit.
//!
//! By default the broker listens on a loopback port the system picks. `--listen ADDR`
//! serves it on a fixed address instead (e.g. `0.0.0.0:9092` in a container) through a
//! forwarder, and the broker advertises `--advertise HOST[:PORT]` (default: the listen
//! address, or `127.0.0.1` for an unspecified one) to clients.
//!
//! With `--faults-from-stdin` it reads fault-injection commands on stdin, one per line, and
//! answers each on stdout with `ok: <command>` or `error: <why>`:
//!
//! * `errors <API> <ERROR> [COUNT]` — answer the next COUNT (default 1) requests of Kafka
//!   API `<API>` (`Produce`, `Fetch`, `OffsetCommit`, `JoinGroup`, `SyncGroup`, `EndTxn`, ...
//!   or its number) with error `<ERROR>` (librdkafka's name, e.g. `NOT_COORDINATOR`);
//! * `clear <API>` — forget the errors still queued for `<API>`;
//! * `down` / `up` — take the broker down (connections closed and refused; data kept) and
//!   back up.

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use processors::streams::{game_topology, topics, GameSettings};
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use topology::{EmbeddedBroker, Topology};

/// Options of `orchestra broker`.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// The application id whose internal topics are created.
    pub application_id: String,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Serve on this address through a forwarder (`None`: the mock's own loopback port).
    pub listen: Option<SocketAddr>,
    /// `host` or `host:port` advertised to clients when `listen` is set.
    pub advertise: Option<String>,
    /// Read fault-injection commands on stdin.
    pub faults_from_stdin: bool,
    /// How often the topics that must be kept whole are checked for truncation.
    pub truncation_check: Duration,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            application_id: "robotorchestra".into(),
            partitions: 8,
            listen: None,
            advertise: None,
            faults_from_stdin: false,
            truncation_check: Duration::from_secs(5),
        }
    }
}

/// The topics of an application that must be kept whole: the canonical event log, the
/// history view and the store changelogs.
pub fn kept_whole_topics(topology: &Topology, application_id: &str) -> Vec<String> {
    let mut out = vec![
        topics::MATCH_EVENTS.to_string(),
        topics::MATCH_HISTORY.to_string(),
    ];
    out.extend(
        topology::internal_topics(topology, application_id, |_| Some(1))
            .into_iter()
            .map(|t| t.name)
            .filter(|n| n.ends_with("-changelog")),
    );
    out
}

/// Runs the broker until Ctrl-C or SIGTERM; see the module docs.
pub async fn run(opts: BrokerOptions) -> Result<()> {
    if opts.partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    let broker = Arc::new(EmbeddedBroker::start().context("starting the embedded broker")?);
    crate::topics::create_embedded(&broker, opts.partitions).context("creating the topics")?;
    let topology = game_topology(&GameSettings::default());
    broker
        .create_internal_topics(&topology, &opts.application_id, opts.partitions)
        .context("creating the internal topics")?;
    // Which instance runs which tasks (`orchestra run` creates it through the admin API
    // elsewhere; this broker has none).
    broker
        .create_topic(&crate::instances::topic(&opts.application_id), 1)
        .context("creating the instances topic")?;
    let own = broker.bootstrap_servers();
    let bootstrap = match opts.listen {
        None => own.clone(),
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr} (--listen)"))?;
            let bound = listener.local_addr().context("reading the bound address")?;
            let (host, port) = advertised(opts.advertise.as_deref(), bound)?;
            broker.advertise(&host, port)?;
            tokio::spawn(forward(listener, own.clone()));
            format!("{host}:{port}")
        }
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "bootstrap: {bootstrap}")?;
        writeln!(
            out,
            "topics: {} of deploy/topics.json and the internal topics of application `{}`, {} partitions each",
            crate::topics::specs()?.len(),
            opts.application_id,
            opts.partitions
        )?;
        out.flush()?;
    }
    tracing::info!(%bootstrap, application_id = %opts.application_id, partitions = opts.partitions, "broker ready");
    let watch = TruncationWatch::start(
        &own,
        kept_whole_topics(&topology, &opts.application_id),
        opts.truncation_check,
    )?;
    if opts.faults_from_stdin {
        let broker = broker.clone();
        std::thread::Builder::new()
            .name("fault-commands".into())
            .spawn(move || read_fault_commands(&broker))
            .context("starting the fault command reader")?;
    }
    crate::run::wait_for_shutdown_signal().await;
    tracing::info!("broker shutting down; its topics are gone with it");
    let _ = tokio::task::spawn_blocking(move || drop(watch)).await;
    Ok(())
}

/// A thread that checks, every `every`, that the topics that must be kept whole still
/// start at offset 0, and logs an ERROR once per partition that does not (the moment the
/// embedded broker drops records). Stops when dropped.
pub struct TruncationWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TruncationWatch {
    /// Starts watching `topics` on `bootstrap`.
    pub fn start(bootstrap: &str, topics: Vec<String>, every: Duration) -> Result<Self> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (stop, bootstrap) = (stop.clone(), bootstrap.to_string());
            std::thread::Builder::new()
                .name("truncation-watch".into())
                .spawn(move || watch_truncation(&bootstrap, &topics, every, &stop))
                .context("starting the truncation watch")?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for TruncationWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The host and port to advertise for a forwarder bound to `bound`.
fn advertised(advertise: Option<&str>, bound: SocketAddr) -> Result<(String, u16)> {
    let default_host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    match advertise {
        None => Ok((default_host, bound.port())),
        Some(a) => match a.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') => {
                let port = p
                    .parse()
                    .with_context(|| format!("--advertise {a}: bad port"))?;
                Ok((h.to_string(), port))
            }
            _ => Ok((a.to_string(), bound.port())),
        },
    }
}

/// Forwards every connection accepted on `listener` to the mock broker at `target`.
async fn forward(listener: tokio::net::TcpListener, target: String) {
    loop {
        let (mut inbound, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection");
                continue;
            }
        };
        let target = target.clone();
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            match tokio::net::TcpStream::connect(&target).await {
                Ok(mut outbound) => {
                    let _ = outbound.set_nodelay(true);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
                    {
                        tracing::debug!(%peer, error = %e, "forwarded connection ended");
                    }
                }
                Err(e) => tracing::warn!(%peer, error = %e, "connecting to the embedded broker"),
            }
        });
    }
}

/// Logs an ERROR once per partition of `topics` whose log no longer starts at 0.
fn watch_truncation(
    bootstrap: &str,
    topics: &[String],
    every: Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "truncation watch could not start: truncated topics will not be reported");
            return;
        }
    };
    let mut reported = std::collections::BTreeSet::new();
    let tick = Duration::from_millis(100);
    let mut waited = every;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if waited < every {
            std::thread::sleep(tick);
            waited += tick;
            continue;
        }
        waited = Duration::ZERO;
        for t in topics {
            match topology::truncation::check_topic_whole(&consumer, t) {
                Ok(()) => {}
                Err(e @ topology::TopologyError::Truncated { .. }) => {
                    if let topology::TopologyError::Truncated {
                        topic, partition, ..
                    } = &e
                    {
                        if reported.insert((topic.clone(), *partition)) {
                            tracing::error!("records lost: {e}");
                        }
                    }
                }
                Err(e) => tracing::debug!(topic = %t, error = %e, "truncation check"),
            }
        }
    }
}

/// Kafka API keys by name (the ones fault injection is useful for).
const API_KEYS: &[(&str, i16)] = &[
    ("Produce", 0),
    ("Fetch", 1),
    ("ListOffsets", 2),
    ("Metadata", 3),
    ("OffsetCommit", 8),
    ("OffsetFetch", 9),
    ("FindCoordinator", 10),
    ("JoinGroup", 11),
    ("Heartbeat", 12),
    ("LeaveGroup", 13),
    ("SyncGroup", 14),
    ("InitProducerId", 22),
    ("AddPartitionsToTxn", 24),
    ("AddOffsetsToTxn", 25),
    ("EndTxn", 26),
    ("TxnOffsetCommit", 28),
];

/// One fault-injection command (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCommand {
    /// Answer the next `count` requests of `api_key` with `error`.
    Errors {
        api_key: i16,
        error: rdkafka::types::RDKafkaRespErr,
        count: usize,
    },
    /// Forget the errors still queued for `api_key`.
    Clear { api_key: i16 },
    /// Take the broker down or bring it up.
    Up(bool),
}

fn api_key(api: &str) -> Result<i16> {
    match API_KEYS.iter().find(|(n, _)| n.eq_ignore_ascii_case(api)) {
        Some((_, k)) => Ok(*k),
        None => api.parse().with_context(|| {
            format!(
                "unknown API `{api}` (one of {}, or a number)",
                API_KEYS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    }
}

/// Parses a fault-injection command line.
pub fn parse_fault_command(line: &str) -> Result<FaultCommand> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["down"] => Ok(FaultCommand::Up(false)),
        ["up"] => Ok(FaultCommand::Up(true)),
        ["clear", api] => Ok(FaultCommand::Clear {
            api_key: api_key(api)?,
        }),
        ["errors", api, error, rest @ ..] => {
            let api_key = api_key(api)?;
            let error = EmbeddedBroker::error_code(error).with_context(|| {
                format!("unknown error `{error}` (librdkafka's names, e.g. NOT_COORDINATOR)")
            })?;
            let count = match rest {
                [] => 1,
                [n] => n.parse().with_context(|| format!("bad count `{n}`"))?,
                _ => bail!("usage: errors <API> <ERROR> [COUNT]"),
            };
            Ok(FaultCommand::Errors {
                api_key,
                error,
                count,
            })
        }
        _ => bail!("unknown command (errors <API> <ERROR> [COUNT] | clear <API> | down | up)"),
    }
}

fn read_fault_commands(broker: &EmbeddedBroker) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let result = parse_fault_command(line).and_then(|cmd| {
            match cmd {
                FaultCommand::Errors {
                    api_key,
                    error,
                    count,
                } => broker.push_request_errors(api_key, &vec![error; count]),
                FaultCommand::Clear { api_key } => broker.clear_request_errors(api_key),
                FaultCommand::Up(up) => broker.set_up(up)?,
            }
            Ok(())
        });
        let mut out = std::io::stdout().lock();
        let _ = match result {
            Ok(()) => {
                tracing::warn!(command = %line, "fault injected");
                writeln!(out, "ok: {line}")
            }
            Err(e) => writeln!(out, "error: {e:#}"),
        };
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaRespErr;

    #[test]
    fn fault_commands_parse() {
        assert_eq!(
            parse_fault_command("errors OffsetCommit OFFSET_METADATA_TOO_LARGE 5").unwrap(),
            FaultCommand::Errors {
                api_key: 8,
                error: RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE,
                count: 5
            }
        );
        assert_eq!(
            parse_fault_command("errors 0 not_leader_for_partition").unwrap(),
            FaultCommand::Errors {
                api_key: 0,
                error: RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                count: 1
            }
        );
        assert_eq!(
            parse_fault_command("down").unwrap(),
            FaultCommand::Up(false)
        );
        assert_eq!(
            parse_fault_command("clear JoinGroup").unwrap(),
            FaultCommand::Clear { api_key: 11 }
        );
        assert!(parse_fault_command("errors Nope NOT_COORDINATOR").is_err());
        assert!(parse_fault_command("errors Produce NO_SUCH").is_err());
        assert!(parse_fault_command("reboot").is_err());
    }

    #[test]
    fn the_advertised_address_defaults_to_the_listen_address() {
        let any: SocketAddr = "0.0.0.0:9092".parse().unwrap();
        assert_eq!(advertised(None, any).unwrap(), ("127.0.0.1".into(), 9092));
        assert_eq!(
            advertised(Some("broker"), any).unwrap(),
            ("broker".into(), 9092)
        );
        assert_eq!(
            advertised(Some("broker:19092"), any).unwrap(),
            ("broker".into(), 19092)
        );
    }
}
