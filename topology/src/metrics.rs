//! The runtime's metrics: every name, its kind, labels, description and (for histograms)
//! buckets, in [`DEFINITIONS`]; [`MetricDef`] is the shape every crate of the project
//! uses for its own table.
//!
//! Prometheus conventions: base units (seconds), `_total` only on counters, bounded label
//! values (a processor, a store, a topic and partition — never a key or a match id).
//!
//! The runtime records through the `metrics` facade; install any recorder (the
//! `orchestra` binary installs the Prometheus exporter with each histogram's buckets
//! from these tables) and call [`describe`] to export the descriptions.
//!
//! Gauges that describe the tasks a process runs (consumer lag, active tasks, store keys,
//! restore remaining, and the gauges processors set with
//! [`Context::set_gauge`](crate::Context::set_gauge)) are sums over the workers of the
//! process, derived from their tasks at every commit; a task's part leaves with it when it
//! is revoked or closed (a series nobody in the process owns any more reads 0).

use metrics::Unit;

/// What kind of metric a [`MetricDef`] is; a histogram carries its bucket upper bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// Monotonic count (`_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution over the given bucket upper bounds (strictly increasing).
    Histogram {
        /// Upper bounds of the buckets (`le`), in the metric's unit.
        buckets: &'static [f64],
    },
}

/// One metric: its name, kind, unit, label names and description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram (with buckets).
    pub kind: MetricKind,
    /// Unit of the values, when there is one.
    pub unit: Option<Unit>,
    /// Names of the labels every series of the metric carries.
    pub labels: &'static [&'static str],
    /// Description (Prometheus `# HELP`).
    pub help: &'static str,
}

impl MetricDef {
    /// A counter.
    pub const fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Counter,
            unit: Some(Unit::Count),
            labels,
            help,
        }
    }

    /// A gauge.
    pub const fn gauge(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Gauge,
            unit: None,
            labels,
            help,
        }
    }

    /// A histogram of seconds over `buckets`.
    pub const fn seconds(
        name: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Histogram { buckets },
            unit: Some(Unit::Seconds),
            labels,
            help,
        }
    }

    /// The bucket upper bounds of a histogram, `None` for other kinds.
    pub fn buckets(&self) -> Option<&'static [f64]> {
        match self.kind {
            MetricKind::Histogram { buckets } => Some(buckets),
            _ => None,
        }
    }

    /// Registers the description with the installed recorder.
    pub fn describe(&self) {
        match (self.kind, self.unit) {
            (MetricKind::Counter, Some(u)) => metrics::describe_counter!(self.name, u, self.help),
            (MetricKind::Counter, None) => metrics::describe_counter!(self.name, self.help),
            (MetricKind::Gauge, Some(u)) => metrics::describe_gauge!(self.name, u, self.help),
            (MetricKind::Gauge, None) => metrics::describe_gauge!(self.name, self.help),
            (MetricKind::Histogram { .. }, Some(u)) => {
                metrics::describe_histogram!(self.name, u, self.help)
            }
            (MetricKind::Histogram { .. }, None) => {
                metrics::describe_histogram!(self.name, self.help)
            }
        }
    }
}

/// Describes every metric of `defs` to the installed recorder.
pub fn describe_all(defs: &[MetricDef]) {
    for def in defs {
        def.describe();
    }
}

/// The ways `defs` break the Prometheus conventions this project follows: a histogram
/// without strictly increasing buckets, `_total` on anything but a counter or a counter
/// without it. Each crate's metric table is checked with it in a unit test.
///
/// ```
/// use topology::metrics::{convention_violations, MetricDef};
/// let bad = [MetricDef::gauge("orchestra_cost_total", &[], "A gauge named like a counter")];
/// assert_eq!(convention_violations(&bad).len(), 1);
/// ```
pub fn convention_violations(defs: &[MetricDef]) -> Vec<String> {
    let mut found = Vec::new();
    for def in defs {
        if let Some(b) = def.buckets() {
            if b.is_empty() || !b.windows(2).all(|w| w[0] < w[1]) {
                found.push(format!(
                    "{}: buckets must be non-empty and increasing",
                    def.name
                ));
            }
        }
        if def.name.ends_with("_total") != (def.kind == MetricKind::Counter) {
            found.push(format!(
                "{}: `_total` is for counters, and counters only",
                def.name
            ));
        }
    }
    found
}

/// Counter, label `processor`.
pub const RECORDS_PROCESSED: &str = "orchestra_records_processed_total";
/// Histogram (seconds), label `processor`.
pub const PROCESS_LATENCY: &str = "orchestra_process_latency_seconds";
/// Histogram (seconds): record timestamp to its processing.
pub const E2E_LATENCY: &str = "orchestra_e2e_latency_seconds";
/// Histogram (seconds).
pub const COMMIT_LATENCY: &str = "orchestra_commit_latency_seconds";
/// Gauge: changelog records still to restore in this process.
pub const RESTORE_REMAINING: &str = "orchestra_restore_remaining_records";
/// Gauge (records/s) of the last restore.
pub const RESTORE_RATE: &str = "orchestra_restore_records_per_second";
/// Counter.
pub const RESTORED_RECORDS: &str = "orchestra_restored_records_total";
/// Gauge: tasks this process keeps standby replicas of.
pub const STANDBY_TASKS: &str = "orchestra_standby_tasks";
/// Counter: changelog records standby replicas read.
pub const STANDBY_RECORDS: &str = "orchestra_standby_records_total";
/// Gauge, labels `topic`, `partition`.
pub const CONSUMER_LAG: &str = "orchestra_consumer_lag_records";
/// Counter, labels `kind` (`deserialization`, `rejected`, `processing`) and `processor`.
pub const DLQ_RECORDS: &str = "orchestra_dlq_records_total";
/// Gauge, label `store`.
pub const STORE_KEYS: &str = "orchestra_store_keys";
/// Counter.
pub const COMMITS: &str = "orchestra_commits_total";
/// Gauge: tasks running in this process.
pub const ACTIVE_TASKS: &str = "orchestra_active_tasks";
/// Counter: assignments the group took away without a revocation.
pub const ASSIGNMENTS_LOST: &str = "orchestra_assignments_lost_total";
/// Counter: suspended tasks reopened from their changelogs instead of resumed, because
/// another worker wrote their partitions in between.
pub const TASKS_REOPENED: &str = "orchestra_tasks_reopened_total";

/// The `kind` label values of [`DLQ_RECORDS`] (the `error.kind` header of a DLQ record).
pub const DLQ_KINDS: &[&str] = &["deserialization", "rejected", "processing"];

/// One record through one processor: microseconds, up to a slow store read.
pub const PROCESS_LATENCY_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
];
/// A record's age when processed: milliseconds when caught up, minutes when far behind.
pub const E2E_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0,
];
/// A commit: flush, produce, offsets — milliseconds, up to its 30 s timeout.
pub const COMMIT_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric of the runtime.
pub const DEFINITIONS: &[MetricDef] = &[
    MetricDef::counter(
        RECORDS_PROCESSED,
        &["processor"],
        "Records processed per processor",
    ),
    MetricDef::seconds(
        PROCESS_LATENCY,
        &["processor"],
        PROCESS_LATENCY_BUCKETS,
        "Processing time per record and processor (one record in 16 is timed)",
    ),
    MetricDef::seconds(
        E2E_LATENCY,
        &[],
        E2E_LATENCY_BUCKETS,
        "Record timestamp to its processing",
    ),
    MetricDef::seconds(
        COMMIT_LATENCY,
        &[],
        COMMIT_LATENCY_BUCKETS,
        "Duration of a commit",
    ),
    MetricDef::gauge(
        RESTORE_REMAINING,
        &[],
        "Changelog records left to restore in this process",
    ),
    MetricDef::gauge(
        RESTORE_RATE,
        &[],
        "Records per second of the last restore in this process",
    ),
    MetricDef::counter(RESTORED_RECORDS, &[], "Changelog records restored"),
    MetricDef::gauge(
        STANDBY_TASKS,
        &[],
        "Tasks this process keeps standby replicas of (num.standby.replicas)",
    ),
    MetricDef::counter(
        STANDBY_RECORDS,
        &[],
        "Changelog records read into standby replicas",
    ),
    MetricDef::gauge(
        CONSUMER_LAG,
        &["topic", "partition"],
        "High watermark minus position per input partition of a running task (0 once the partition left this process)",
    ),
    MetricDef::counter(
        DLQ_RECORDS,
        &["kind", "processor"],
        "Records written to the dead-letter topic, by error kind and processor",
    ),
    MetricDef::gauge(STORE_KEYS, &["store"], "Keys per store in this process"),
    MetricDef::counter(COMMITS, &[], "Commits completed"),
    MetricDef::gauge(ACTIVE_TASKS, &[], "Tasks running in this process"),
    MetricDef::counter(
        ASSIGNMENTS_LOST,
        &[],
        "Assignments lost without a revocation (session expired or poll interval exceeded); their uncommitted work was dropped",
    ),
    MetricDef::counter(
        TASKS_REOPENED,
        &[],
        "Suspended tasks reopened from their changelogs instead of resumed: another worker wrote their partitions while this one was out of the group",
    ),
];

/// Registers descriptions for every runtime metric with the installed recorder.
pub fn describe() {
    describe_all(DEFINITIONS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_histogram_has_increasing_buckets_and_names_follow_the_conventions() {
        let found = convention_violations(DEFINITIONS);
        assert!(found.is_empty(), "{found:?}");
    }
}
