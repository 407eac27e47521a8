//! Metrics (Prometheus naming, via the `metrics` facade) and in-process counters.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `orchestra_robot_response_seconds` | histogram | `source` (`llm`/`offline`), `personality` |
//! | `orchestra_robot_errors_total` | counter | `kind`: a command that ended in a [`RobotFailure`](super::RobotFailure) counts once under its [`FailureKind`](super::FailureKind) label; `unknown_personality`, `unusable_reply`, `unparsable_vote` count problems that were absorbed (default voice / offline fallback) |
//! | `orchestra_robot_retries_total` | counter | – |
//! | `orchestra_robot_circuit_state` | gauge | – (0 closed, 1 open, 2 half-open) |
//! | `orchestra_robot_tokens_total` | counter | `model` |
//! | `orchestra_robot_cost_usd_total` | gauge (f64, only increases) | `model` |
//! | `orchestra_robot_commands_in_flight` | gauge | – |
//! | `orchestra_robot_offline_fallbacks_total` | counter | `reason` (`no_key`, `circuit_open`, `budget`, `unusable_reply`, `unparsable_vote`) |
//!
//! `orchestra_robot_cost_usd_total` is a gauge holding US dollars as `f64` (the
//! `metrics` counters are integers; micro-dollar counters read badly on dashboards). It
//! is only ever incremented, so `rate()`/`increase()` behave like on a counter while the
//! process lives; it restarts at 0 with the process.
//!
//! [`EngineStats`] mirrors the important counters in atomics so tests and a bench binary
//! can read them without a recorder.

use std::sync::atomic::{AtomicU64, Ordering};

/// Response latency histogram (seconds).
pub const RESPONSE_SECONDS: &str = "orchestra_robot_response_seconds";
/// Error counter, label `kind`.
pub const ERRORS_TOTAL: &str = "orchestra_robot_errors_total";
/// Retry counter.
pub const RETRIES_TOTAL: &str = "orchestra_robot_retries_total";
/// Circuit-breaker state gauge.
pub const CIRCUIT_STATE: &str = "orchestra_robot_circuit_state";
/// Token counter, label `model`.
pub const TOKENS_TOTAL: &str = "orchestra_robot_tokens_total";
/// Cost in USD (f64 gauge, monotonically increased), label `model`.
pub const COST_USD_TOTAL: &str = "orchestra_robot_cost_usd_total";
/// Commands currently being answered.
pub const COMMANDS_IN_FLIGHT: &str = "orchestra_robot_commands_in_flight";
/// Offline fallbacks, label `reason`.
pub const OFFLINE_FALLBACKS_TOTAL: &str = "orchestra_robot_offline_fallbacks_total";

/// Registers descriptions (call once after installing the recorder; optional).
pub fn describe_metrics() {
    metrics::describe_histogram!(
        RESPONSE_SECONDS,
        metrics::Unit::Seconds,
        "Robot answer latency, think time included"
    );
    metrics::describe_counter!(ERRORS_TOTAL, "Robot errors by kind");
    metrics::describe_counter!(RETRIES_TOTAL, "Model request retries");
    metrics::describe_gauge!(
        CIRCUIT_STATE,
        "Model circuit breaker: 0 closed, 1 open, 2 half-open"
    );
    metrics::describe_counter!(TOKENS_TOTAL, "Model tokens spent");
    metrics::describe_gauge!(
        COST_USD_TOTAL,
        "Model cost in USD since process start (monotonic)"
    );
    metrics::describe_gauge!(COMMANDS_IN_FLIGHT, "Robot commands being answered");
    metrics::describe_counter!(
        OFFLINE_FALLBACKS_TOTAL,
        "Answers produced by the offline engine, by reason"
    );
}

/// Why the offline engine answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfflineReason {
    /// No API key configured.
    NoKey,
    /// The circuit breaker is open.
    CircuitOpen,
    /// The match's token budget is exhausted.
    Budget,
    /// The model replied with nothing usable (only revealing sentences, empty).
    UnusableReply,
    /// The model's vote could not be parsed.
    UnparsableVote,
}

impl OfflineReason {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::NoKey => "no_key",
            OfflineReason::CircuitOpen => "circuit_open",
            OfflineReason::Budget => "budget",
            OfflineReason::UnusableReply => "unusable_reply",
            OfflineReason::UnparsableVote => "unparsable_vote",
        }
    }
}

/// In-process counters of a [`RobotEngine`](super::RobotEngine).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub(crate) llm_answers: AtomicU64,
    pub(crate) offline_answers: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) llm_requests: AtomicU64,
    pub(crate) tokens: AtomicU64,
    pub(crate) offline_no_key: AtomicU64,
    pub(crate) offline_circuit_open: AtomicU64,
    pub(crate) offline_budget: AtomicU64,
    pub(crate) offline_unusable: AtomicU64,
}

/// A point-in-time copy of [`EngineStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Answers produced by the model.
    pub llm_answers: u64,
    /// Answers produced by the offline engine (any reason).
    pub offline_answers: u64,
    /// Commands that ended in a [`RobotFailure`](super::RobotFailure).
    pub failures: u64,
    /// Retries performed by our policy.
    pub retries: u64,
    /// Model attempts that hit the per-request timeout.
    pub timeouts: u64,
    /// Model attempts started (each may contain async-openai's internal retries).
    pub llm_requests: u64,
    /// Tokens spent.
    pub tokens: u64,
    /// Offline because no key is configured.
    pub offline_no_key: u64,
    /// Offline because the circuit breaker was open.
    pub offline_circuit_open: u64,
    /// Offline because the match token budget was exhausted.
    pub offline_budget: u64,
    /// Offline because the model reply was unusable / unparsable.
    pub offline_unusable: u64,
}

impl EngineStats {
    /// Copies the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            llm_answers: get(&self.llm_answers),
            offline_answers: get(&self.offline_answers),
            failures: get(&self.failures),
            retries: get(&self.retries),
            timeouts: get(&self.timeouts),
            llm_requests: get(&self.llm_requests),
            tokens: get(&self.tokens),
            offline_no_key: get(&self.offline_no_key),
            offline_circuit_open: get(&self.offline_circuit_open),
            offline_budget: get(&self.offline_budget),
            offline_unusable: get(&self.offline_unusable),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn offline(&self, reason: OfflineReason) {
        Self::bump(&self.offline_answers, 1);
        let c = match reason {
            OfflineReason::NoKey => &self.offline_no_key,
            OfflineReason::CircuitOpen => &self.offline_circuit_open,
            OfflineReason::Budget => &self.offline_budget,
            OfflineReason::UnusableReply | OfflineReason::UnparsableVote => &self.offline_unusable,
        };
        Self::bump(c, 1);
        metrics::counter!(OFFLINE_FALLBACKS_TOTAL, "reason" => reason.as_str()).increment(1);
    }
}

/// Counts one error of `kind`.
pub fn record_error(kind: &'static str) {
    metrics::counter!(ERRORS_TOTAL, "kind" => kind).increment(1);
}

/// Records tokens and their cost for `model`.
pub fn record_tokens(model: &str, tokens: u32, price_per_1k_tokens: f64) {
    if tokens == 0 {
        return;
    }
    metrics::counter!(TOKENS_TOTAL, "model" => model.to_string()).increment(u64::from(tokens));
    let cost = f64::from(tokens) / 1000.0 * price_per_1k_tokens;
    if cost > 0.0 {
        metrics::gauge!(COST_USD_TOTAL, "model" => model.to_string()).increment(cost);
    }
}

/// Increments the in-flight gauge; decrements when dropped.
#[derive(Debug)]
pub struct InFlightGuard(());

impl InFlightGuard {
    /// Enters.
    pub fn enter() -> Self {
        metrics::gauge!(COMMANDS_IN_FLIGHT).increment(1.0);
        InFlightGuard(())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        metrics::gauge!(COMMANDS_IN_FLIGHT).decrement(1.0);
    }
}
