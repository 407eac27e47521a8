//! The binary's metrics and the Prometheus exporter.
//!
//! Each crate keeps its metrics in one table of [`MetricDef`]s — names, kinds, labels,
//! descriptions and histogram buckets: [`topology::metrics::DEFINITIONS`] (the runtime),
//! [`processors::metrics::DEFINITIONS`] (the game and the robots) and [`DEFINITIONS`]
//! here (the read API, the robot workers' consumer). [`install`] builds the exporter with
//! every histogram's own buckets and describes every metric; `GET /metrics` renders it.

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use topology::metrics::{describe_all, MetricDef};

/// Counter, labels `action` (`create`, `join`, `respond`, `vote`) and `outcome`
/// (`accepted`, `invalid`, `unavailable`, `error`).
pub const API_PLAYER_REQUESTS: &str = "orchestra_api_player_requests_total";

/// Histogram (seconds), label `action`: a player's request taken by the API → the first
/// `match-events` event it caused, read by the same API process (see `api::latency`).
pub const REQUEST_TO_MATCH_EVENT: &str = "orchestra_request_to_match_event_seconds";
/// Histogram (seconds), label `action`: a player's request taken by the API → the first
/// `robot-commands` command it led to, read by the same API process.
pub const REQUEST_TO_ROBOT_COMMAND: &str = "orchestra_request_to_robot_command_seconds";

/// Request latencies: a few milliseconds on one host (the target is p99 < 20 ms) up to
/// seconds (commit intervals, rebalances, a slow broker).
const REQUEST_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Every metric of the binary's own code.
pub const DEFINITIONS: &[MetricDef] = &[
    MetricDef::counter(
        API_PLAYER_REQUESTS,
        &["action", "outcome"],
        "Player requests received by the read API, by action and outcome",
    ),
    MetricDef::seconds(
        REQUEST_TO_MATCH_EVENT,
        &["action"],
        REQUEST_LATENCY_BUCKETS,
        "Player request taken by the API to the first match-events event it caused, as the same API process reads it",
    ),
    MetricDef::seconds(
        REQUEST_TO_ROBOT_COMMAND,
        &["action"],
        REQUEST_LATENCY_BUCKETS,
        "Player request taken by the API to the first robot-commands command it led to, as the same API process reads it",
    ),
];

/// Every metric of the project: the runtime's, the processors' and the binary's.
pub fn all() -> impl Iterator<Item = &'static MetricDef> {
    topology::metrics::DEFINITIONS
        .iter()
        .chain(processors::metrics::DEFINITIONS)
        .chain(DEFINITIONS)
}

/// Registers every metric's description with the installed recorder.
pub fn describe() {
    topology::metrics::describe();
    processors::metrics::describe();
    describe_all(DEFINITIONS);
}

/// The exporter's builder with each histogram's buckets (no default set: every histogram
/// has buckets fitted to what it measures).
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new();
    for def in all() {
        if let Some(buckets) = def.buckets() {
            builder =
                builder.set_buckets_for_metric(Matcher::Full(def.name.to_string()), buckets)?;
        }
    }
    Ok(builder)
}

/// Installs the Prometheus recorder as the process's recorder and describes every metric;
/// the handle renders `GET /metrics`.
pub fn try_install() -> Result<PrometheusHandle, BuildError> {
    let handle = builder()?.install_recorder()?;
    describe();
    Ok(handle)
}

/// [`try_install`], or `None` (said in the log) when it fails: the process then runs
/// without metrics, e.g. when a recorder is already installed.
pub fn install() -> Option<PrometheusHandle> {
    try_install()
        .map_err(|e| tracing::warn!(error = %e, "metrics are off: the Prometheus recorder could not be installed"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_every_histogram_gets_its_buckets() {
        let mut names = BTreeSet::new();
        for def in all() {
            assert!(names.insert(def.name), "{} is defined twice", def.name);
            assert!(def.name.starts_with("orchestra_"), "{}", def.name);
            assert!(!def.help.is_empty(), "{}", def.name);
        }
        builder().expect("every bucket list is valid");
    }
}
