//! Metric names (Prometheus style: base units, `_total` counters, bounded labels).
//!
//! The runtime records through the `metrics` facade; install any recorder (the
//! `orchestra` binary installs the Prometheus exporter) to export them.

/// Counter, label `processor`.
pub const RECORDS_PROCESSED: &str = "orchestra_records_processed_total";
/// Histogram (seconds), label `processor`.
pub const PROCESS_LATENCY: &str = "orchestra_process_latency_seconds";
/// Histogram (seconds): record timestamp to output.
pub const E2E_LATENCY: &str = "orchestra_e2e_latency_seconds";
/// Histogram (seconds).
pub const COMMIT_LATENCY: &str = "orchestra_commit_latency_seconds";
/// Gauge, label `store`.
pub const RESTORE_REMAINING: &str = "orchestra_restore_remaining_records";
/// Gauge (records/s) of the last restore.
pub const RESTORE_RATE: &str = "orchestra_restore_records_per_second";
/// Counter.
pub const RESTORED_RECORDS: &str = "orchestra_restored_records_total";
/// Gauge, labels `topic`, `partition`.
pub const CONSUMER_LAG: &str = "orchestra_consumer_lag_records";
/// Counter.
pub const DLQ_RECORDS: &str = "orchestra_dlq_records_total";
/// Gauge, label `store`.
pub const STORE_KEYS: &str = "orchestra_store_keys";
/// Counter.
pub const COMMITS: &str = "orchestra_commits_total";
/// Gauge: tasks running in this process.
pub const ACTIVE_TASKS: &str = "orchestra_active_tasks";

/// Registers descriptions for every runtime metric with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(RECORDS_PROCESSED, "Records processed per processor");
    describe_histogram!(
        PROCESS_LATENCY,
        Unit::Seconds,
        "Processing time per record and processor (one record in 16 is timed)"
    );
    describe_histogram!(E2E_LATENCY, Unit::Seconds, "Record timestamp to output");
    describe_histogram!(COMMIT_LATENCY, Unit::Seconds, "Duration of a commit");
    describe_gauge!(
        RESTORE_REMAINING,
        "Changelog records left to restore per store"
    );
    describe_gauge!(RESTORE_RATE, "Records per second of the last restore");
    describe_counter!(RESTORED_RECORDS, "Changelog records restored");
    describe_gauge!(
        CONSUMER_LAG,
        "High watermark minus position per input partition"
    );
    describe_counter!(DLQ_RECORDS, "Records written to the dead-letter topic");
    describe_gauge!(STORE_KEYS, "Keys per store in this process");
    describe_counter!(COMMITS, "Commits completed");
    describe_gauge!(ACTIVE_TASKS, "Tasks running in this process");
}
