//! The processors' metrics: every name, its kind, labels, description and (for
//! histograms) buckets, in [`DEFINITIONS`] (the runtime's [`MetricDef`] shape).
//!
//! Game (the topology's processors):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `orchestra_active_matches` | gauge | – (matches not completed in the stores of this process's running tasks) |
//! | `orchestra_round_duration_seconds` | histogram | – |
//! | `orchestra_assignment_latency_seconds` | histogram | – |
//! | `orchestra_pool_robots`, `orchestra_pool_busy_robots` | gauge | – (robots of the pool shards of this process's running tasks) |
//! | `orchestra_duplicate_events_total` | counter | `fold` (`history`, `robot-orchestration`, `stats`) |
//! | `orchestra_sequence_gaps_total` | counter | `fold` (the same, and `match-recovery`) |
//!
//! Robots (the robot engine):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `orchestra_robot_response_seconds` | histogram | `source` (`llm`/`offline`), `personality` |
//! | `orchestra_robot_errors_total` | counter | `kind`: a command that ended in a [`RobotFailure`](crate::robots::RobotFailure) counts once under its [`FailureKind`](crate::robots::FailureKind) label; `unknown_personality`, `unusable_reply`, `unparsable_vote` count problems that were absorbed (default voice / offline fallback) |
//! | `orchestra_robot_retries_total` | counter | – |
//! | `orchestra_robot_circuit_state` | gauge | – (0 closed, 1 open, 2 half-open) |
//! | `orchestra_robot_tokens_total` | counter | `model` |
//! | `orchestra_robot_cost_usd` | gauge | `model` |
//! | `orchestra_robot_commands_in_flight` | gauge | – |
//! | `orchestra_robot_offline_fallbacks_total` | counter | `reason` (`no_key`, `circuit_open`, `budget`, `unusable_reply`, `unparsable_vote`) |
//!
//! `orchestra_robot_cost_usd` holds US dollars spent since the process started as an
//! `f64` gauge (the `metrics` counters are integers; micro-dollar counters read badly). It
//! is only ever incremented, so `increase()`/`rate()` treat it like a counter (a restart
//! reads as a reset); it is not named `_total` because it is exported as a gauge.
//!
//! Error and token counters are registered at 0 when an engine starts (every error kind,
//! the configured model), so that rates read 0 rather than no data.

use topology::metrics::{describe_all, MetricDef};

/// Gauge: matches not completed, summed over this process's running tasks.
pub const ACTIVE_MATCHES: &str = "orchestra_active_matches";
/// Histogram (seconds): a round from its start to `round.completed`.
pub const ROUND_DURATION: &str = "orchestra_round_duration_seconds";
/// Histogram (seconds): a match asking for robots to their assignment.
pub const ASSIGNMENT_LATENCY: &str = "orchestra_assignment_latency_seconds";
/// Gauge: robots in the pool shards of this process's running tasks.
pub const POOL_ROBOTS: &str = "orchestra_pool_robots";
/// Gauge: busy robots in the pool shards of this process's running tasks.
pub const POOL_BUSY_ROBOTS: &str = "orchestra_pool_busy_robots";
/// Counter of redelivered events a fold skipped, label `fold`.
pub const DUPLICATE_EVENTS: &str = "orchestra_duplicate_events_total";
/// Counter of events a fold refused because events before them are missing, label `fold`.
pub const SEQUENCE_GAPS: &str = "orchestra_sequence_gaps_total";

/// Response latency histogram (seconds), labels `source`, `personality`.
pub const ROBOT_RESPONSE: &str = "orchestra_robot_response_seconds";
/// Error counter, label `kind`.
pub const ROBOT_ERRORS: &str = "orchestra_robot_errors_total";
/// Retry counter.
pub const ROBOT_RETRIES: &str = "orchestra_robot_retries_total";
/// Circuit-breaker state gauge.
pub const ROBOT_CIRCUIT_STATE: &str = "orchestra_robot_circuit_state";
/// Token counter, label `model`.
pub const ROBOT_TOKENS: &str = "orchestra_robot_tokens_total";
/// Cost in USD since the process started (f64 gauge, only incremented), label `model`.
pub const ROBOT_COST_USD: &str = "orchestra_robot_cost_usd";
/// Commands currently being answered.
pub const ROBOT_COMMANDS_IN_FLIGHT: &str = "orchestra_robot_commands_in_flight";
/// Offline fallbacks, label `reason`.
pub const ROBOT_OFFLINE_FALLBACKS: &str = "orchestra_robot_offline_fallbacks_total";

/// A round: its windows (robots, response, voting) add up to seconds in a short demo and
/// about two minutes with the defaults.
pub const ROUND_DURATION_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 75.0, 90.0, 105.0, 120.0, 150.0, 180.0, 300.0,
    600.0,
];
/// Robots assigned from a free pool take milliseconds; waiting for the pool to scale up
/// takes seconds.
pub const ASSIGNMENT_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// An answer: milliseconds offline without think time, seconds with think time or a model
/// (up to its timeout and retries).
pub const ROBOT_RESPONSE_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0,
    30.0, 60.0,
];

/// Every metric of the processors.
pub const DEFINITIONS: &[MetricDef] = &[
    MetricDef::gauge(
        ACTIVE_MATCHES,
        &[],
        "Matches not completed in the stores of this process's running tasks",
    ),
    MetricDef::seconds(
        ROUND_DURATION,
        &[],
        ROUND_DURATION_BUCKETS,
        "Duration of a round, from its start to round.completed",
    ),
    MetricDef::seconds(
        ASSIGNMENT_LATENCY,
        &[],
        ASSIGNMENT_LATENCY_BUCKETS,
        "Wall-clock time from a match asking for robots to their assignment",
    ),
    MetricDef::gauge(
        POOL_ROBOTS,
        &[],
        "Robots in the pool shards of this process's running tasks",
    ),
    MetricDef::gauge(
        POOL_BUSY_ROBOTS,
        &[],
        "Busy robots in the pool shards of this process's running tasks",
    ),
    MetricDef::counter(
        DUPLICATE_EVENTS,
        &["fold"],
        "Redelivered match events a fold skipped",
    ),
    MetricDef::counter(
        SEQUENCE_GAPS,
        &["fold"],
        "Match events a fold refused because events before them are missing",
    ),
    MetricDef::seconds(
        ROBOT_RESPONSE,
        &["source", "personality"],
        ROBOT_RESPONSE_BUCKETS,
        "Robot answer latency, think time included",
    ),
    MetricDef::counter(ROBOT_ERRORS, &["kind"], "Robot errors by kind"),
    MetricDef::counter(ROBOT_RETRIES, &[], "Model request retries"),
    MetricDef::gauge(
        ROBOT_CIRCUIT_STATE,
        &[],
        "Model circuit breaker: 0 closed, 1 open, 2 half-open",
    ),
    MetricDef::counter(ROBOT_TOKENS, &["model"], "Model tokens spent"),
    MetricDef::gauge(
        ROBOT_COST_USD,
        &["model"],
        "Model cost in USD since the process started (only increases)",
    ),
    MetricDef::gauge(
        ROBOT_COMMANDS_IN_FLIGHT,
        &[],
        "Robot commands being answered",
    ),
    MetricDef::counter(
        ROBOT_OFFLINE_FALLBACKS,
        &["reason"],
        "Answers produced by the offline engine, by reason",
    ),
];

/// Registers descriptions for every processors metric with the installed recorder.
pub fn describe() {
    describe_all(DEFINITIONS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_histogram_has_increasing_buckets_and_names_follow_the_conventions() {
        let found = topology::metrics::convention_violations(DEFINITIONS);
        assert!(found.is_empty(), "{found:?}");
    }
}
