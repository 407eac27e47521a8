//! `orchestra` — RobotOrchestra Streams. `orchestra --help` lists the commands.

/// mimalloc: the processors allocate a small JSON value per event, which it serves faster
/// than the system allocator (compare with `cargo run --release -p processors --example
/// bench_match`). It is built with `no_thp`: mimalloc otherwise asks the kernel for
/// transparent huge pages, and every fresh 2 MiB page is then zeroed on its first touch
/// (new sled I/O threads touch fresh pages at every commit). Figures: docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Parser as _;
use orchestra::broker::{self, BrokerOptions};
use orchestra::cli::{Cli, Command, DescribeFormat, TopicsAction};
use orchestra::demo::{self, DemoOptions};
use orchestra::export::ExportOptions;
use orchestra::logging::{self, LogTarget};
use orchestra::run::{self, RunOptions};
use processors::streams::{game_topology, topics, GameSettings};

fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    orchestra::metrics::install()
}

/// Runs the command; a failure ends with one message on stderr — the error and its causes,
/// which say what went wrong and what to do — and exit code 1. No backtrace, even with
/// `RUST_BACKTRACE=1`: the message is for the person running the command.
fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo keeps its console for the progress bar: its log goes to a file (no colours)
    // unless -v asks for it on the console.
    let demo_log_to_file = matches!(cli.command, Command::Demo(_)) && cli.verbose == 0;
    let log = logging::init(
        cli.log_format,
        logging::default_filter(cli.verbose),
        !demo_log_to_file,
    );
    let log = demo_log_to_file.then_some(log);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            let r = rt.block_on(async_main(cli, log));
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
/// Kafka secrets a cause may quote are blanked out.
fn error_message(e: &anyhow::Error) -> String {
    let mut out = format!("error: {e}");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(&format!("\n  caused by: {text}"));
        }
    }
    orchestra::kafka_config::redact(&out).into_owned()
}

async fn async_main(cli: Cli, log: Option<LogTarget>) -> Result<()> {
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
                log,
                export: a.export.map(|out| (out, a.format)),
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
                bootstrap: a.kafka.bootstrap_servers.clone(),
                kafka: a.kafka.settings()?,
                application_id: a.application_id,
                worker_id,
                state_dir: a.state_dir,
                processing_guarantee: a.processing_guarantee,
                role: a.role,
                http: a.http,
                application_server: a.application_server,
                llm: a.llm.config(),
                robot_concurrency: a.robot_concurrency,
                think_time_scale: a.llm.think_time_scale,
                replication_factor: a.replication_factor,
                commit_interval: a.commit_interval_ms.map(Duration::from_millis),
                output_linger: Duration::from_millis(a.output_linger_ms),
                restore_consumers: a.restore_consumers,
                num_standby_replicas: a.num_standby_replicas,
                view_cache_mb: a.view_cache_mb,
                robots_window_ms: (a.robots_window_ms > 0).then_some(a.robots_window_ms),
                response_window_ms: a.response_window_ms,
                voting_window_ms: a.voting_window_ms,
                deadline_grace_ms: a.deadline_grace_ms,
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
                file,
                replication_factor,
                partitions,
            } => {
                let specs = match &file {
                    Some(path) => orchestra::topics::specs_from_file(path)?,
                    None => orchestra::topics::specs()?,
                };
                let client = kafka.client()?;
                let (created, existing) = tokio::task::spawn_blocking(move || {
                    orchestra::topics::create(&client, &specs, replication_factor, partitions)
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
                let client = kafka.client()?;
                for (name, partitions) in
                    tokio::task::spawn_blocking(move || orchestra::topics::list(&client)).await??
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
            let client = kafka.client()?;
            let report = tokio::task::spawn_blocking(move || {
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
            let client = kafka.client()?;
            tokio::task::spawn_blocking(move || {
                orchestra::views::tail(
                    &client,
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
            range,
            kafka,
        } => {
            let range = range.range()?;
            let client = kafka.client()?;
            tokio::task::spawn_blocking(move || {
                orchestra::views::history(
                    &client,
                    limit,
                    table,
                    range,
                    &mut std::io::stdout().lock(),
                )
            })
            .await?
        }
        Command::Export(a) => {
            let opts = ExportOptions {
                out: a.out,
                format: a.format,
                range: a.range.range()?,
                progress: true,
            };
            let client = a.kafka.client()?;
            let summary =
                tokio::task::spawn_blocking(move || orchestra::export::export(&client, &opts))
                    .await??;
            print!("{summary}");
            Ok(())
        }
        Command::Report(a) => {
            let range = a.range.range()?;
            let docs = match &a.history_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    orchestra::export::Documents::from_json_lines(&text, range)
                }
                None => {
                    let client = a.kafka.client()?;
                    tokio::task::spawn_blocking(move || {
                        orchestra::export::read_documents(&client, range, true)
                    })
                    .await??
                }
            };
            if docs.skipped > 0 {
                eprintln!("report: skipped {} undecodable documents", docs.skipped);
            }
            let prices = a.prices.into_iter().collect();
            let html = orchestra::report::render_html(&docs, &prices);
            std::fs::write(&a.out, html).with_context(|| format!("writing {}", a.out.display()))?;
            println!(
                "{}: report of {} matches",
                a.out.display(),
                docs.histories.len()
            );
            Ok(())
        }
        Command::Stats { table, kafka } => {
            let client = kafka.client()?;
            tokio::task::spawn_blocking(move || {
                orchestra::views::stats(&client, table, &mut std::io::stdout().lock())
            })
            .await?
        }
    }
}
