//! Recording the robot engine's metrics (names, descriptions and buckets are in
//! [`crate::metrics`]) and in-process counters.
//!
//! [`EngineStats`] mirrors the important counters in atomics so tests and a bench binary
//! can read them without a recorder.

use std::sync::atomic::{AtomicU64, Ordering};

use super::FailureKind;
use crate::metrics as m;

/// The `kind` values of absorbed problems counted in `orchestra_robot_errors_total`
/// besides the [`FailureKind`]s.
const ABSORBED_ERRORS: &[&str] = &["unknown_personality", "unusable_reply", "unparsable_vote"];

/// Registers the engine's counters at 0 (every error kind and offline reason, tokens and
/// cost of `model`), so that rates read 0 rather than no data until something happens.
pub(crate) fn register(model: &str) {
    for kind in FailureKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(ABSORBED_ERRORS.iter().copied())
    {
        metrics::counter!(m::ROBOT_ERRORS, "kind" => kind).increment(0);
    }
    for reason in OfflineReason::ALL {
        metrics::counter!(m::ROBOT_OFFLINE_FALLBACKS, "reason" => reason.as_str()).increment(0);
    }
    metrics::counter!(m::ROBOT_RETRIES).increment(0);
    metrics::counter!(m::ROBOT_TOKENS, "model" => model.to_string()).increment(0);
    metrics::gauge!(m::ROBOT_COST_USD, "model" => model.to_string()).increment(0.0);
    metrics::gauge!(m::ROBOT_COMMANDS_IN_FLIGHT).increment(0.0);
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
    /// Every reason.
    pub const ALL: [OfflineReason; 5] = [
        OfflineReason::NoKey,
        OfflineReason::CircuitOpen,
        OfflineReason::Budget,
        OfflineReason::UnusableReply,
        OfflineReason::UnparsableVote,
    ];

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
        metrics::counter!(m::ROBOT_OFFLINE_FALLBACKS, "reason" => reason.as_str()).increment(1);
    }
}

/// Counts one error of `kind`.
pub fn record_error(kind: &'static str) {
    metrics::counter!(m::ROBOT_ERRORS, "kind" => kind).increment(1);
}

/// Records tokens and their cost for `model`.
pub fn record_tokens(model: &str, tokens: u32, price_per_1k_tokens: f64) {
    if tokens == 0 {
        return;
    }
    metrics::counter!(m::ROBOT_TOKENS, "model" => model.to_string()).increment(u64::from(tokens));
    let cost = f64::from(tokens) / 1000.0 * price_per_1k_tokens;
    if cost > 0.0 {
        metrics::gauge!(m::ROBOT_COST_USD, "model" => model.to_string()).increment(cost);
    }
}

/// Increments the in-flight gauge; decrements when dropped.
#[derive(Debug)]
pub struct InFlightGuard(());

impl InFlightGuard {
    /// Enters.
    pub fn enter() -> Self {
        metrics::gauge!(m::ROBOT_COMMANDS_IN_FLIGHT).increment(1.0);
        InFlightGuard(())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        metrics::gauge!(m::ROBOT_COMMANDS_IN_FLIGHT).decrement(1.0);
    }
}
