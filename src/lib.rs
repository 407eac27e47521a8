//! `orchestra`: the RobotOrchestra Streams binary as a library, so the end-to-end tests
//! drive the same code the CLI runs.
//!
//! * [`broker`] — the embedded broker as a process of its own (`orchestra broker`).
//! * [`demo`] — the main job on the embedded broker (workers, robots, simulator, API).
//! * [`run`] — a stream worker / robot worker against a real cluster.
//! * [`cli`] — the command line (every command, flag and environment variable).
//! * [`kafka_config`] — librdkafka settings from a file, the environment and flags.
//! * [`logging`] — text or JSON logs, to stderr or a file.
//! * [`metrics`] — the Prometheus exporter and the binary's metrics (each crate's in its `metrics`).
//! * [`topics`] — the topic specs of `deploy/topics.json`, create and list.
//! * [`robot_worker`] — consumers of `robot-commands` answering through the robot engine.
//! * [`simulator`] — plays the humans of many matches.
//! * [`api`] — the read API (axum).
//! * [`instances`] — which instance runs which tasks, and its address (`application.server`).
//! * [`views`] — latest-value views of compacted topics, `tail`, `history`, `stats`.
//! * [`replay`] — rebuilds `match-state` and `match-history` from `match-events` and compares.
//! * [`export`] — `match-history`/`match-stats` as Parquet or CSV tables for analysts.
//! * [`report`] — the HTML report with SVG plots (`orchestra report`, `GET /report`).
//! * [`time_range`] — `--since`/`--until` values.

pub mod api;
pub mod broker;
pub mod cli;
pub mod demo;
pub mod export;
pub mod instances;
pub mod kafka_config;
pub mod logging;
pub mod metrics;
pub mod replay;
pub mod report;
pub mod robot_worker;
pub mod run;
pub mod simulator;
pub mod time_range;
pub mod topics;
pub mod views;
