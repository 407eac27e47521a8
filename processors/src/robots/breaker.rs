//! Circuit breaker for the model endpoint: closed → open after N consecutive failures
//! → half-open after a cool-down → closed on a successful probe. While it is open the
//! engine answers with the offline personality engine.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use processors::robots::{Admission, BreakerConfig, CircuitBreaker, CircuitState};
//!
//! let breaker = CircuitBreaker::new(BreakerConfig { failure_threshold: 1, cool_down: Duration::from_secs(5) });
//! let t0 = Instant::now();
//! breaker.on_failure_at(t0);
//! assert_eq!(breaker.state(), CircuitState::Open);
//! assert!(breaker.is_rejecting_at(t0));
//! assert_eq!(breaker.admit_at(t0 + Duration::from_secs(5)), Admission::Probe);
//! ```

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::resilience::lock;
use crate::metrics as m;

/// Circuit-breaker state (gauge value in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through (0).
    Closed,
    /// Calls are refused; work goes to the offline engine (1).
    Open,
    /// One probe call is allowed to test recovery (2).
    HalfOpen,
}

impl CircuitState {
    /// Value of the `orchestra_robot_circuit_state` gauge.
    pub fn gauge_value(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::Open => 1.0,
            CircuitState::HalfOpen => 2.0,
        }
    }
}

/// Circuit-breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed attempts that open the circuit.
    pub failure_threshold: u32,
    /// Time in the open state before a probe is allowed.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// Result of asking the breaker for permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// Half-open: this call is the probe.
    Probe,
    /// Open (or a probe is running): use the fallback.
    Rejected,
}

#[derive(Debug)]
struct BreakerInner {
    state: CircuitState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
}

/// Closed → open after N consecutive failures → half-open after a cool-down →
/// closed on a successful probe (open again on a failed one).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Mutex<BreakerInner>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        metrics::gauge!(m::ROBOT_CIRCUIT_STATE).set(CircuitState::Closed.gauge_value());
        CircuitBreaker {
            config,
            inner: Mutex::new(BreakerInner {
                state: CircuitState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                probe_started: None,
            }),
        }
    }

    fn set_state(inner: &mut BreakerInner, state: CircuitState) {
        if inner.state != state {
            tracing::info!(from = ?inner.state, to = ?state, "robot model circuit breaker");
            inner.state = state;
            metrics::gauge!(m::ROBOT_CIRCUIT_STATE).set(state.gauge_value());
        }
    }

    /// Current state.
    pub fn state(&self) -> CircuitState {
        lock(&self.inner).state
    }

    /// Asks permission for a call now.
    pub fn admit(&self) -> Admission {
        self.admit_at(Instant::now())
    }

    /// Asks permission for a call at `now`.
    pub fn admit_at(&self, now: Instant) -> Admission {
        let mut inner = lock(&self.inner);
        match inner.state {
            CircuitState::Closed => Admission::Allowed,
            CircuitState::Open => {
                let cooled = inner
                    .opened_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= self.config.cool_down);
                if cooled {
                    Self::set_state(&mut inner, CircuitState::HalfOpen);
                    inner.probe_started = Some(now);
                    Admission::Probe
                } else {
                    Admission::Rejected
                }
            }
            CircuitState::HalfOpen => {
                // A probe whose caller vanished (cancelled future) must not wedge the
                // breaker: after another cool-down a new probe is allowed.
                let stale = inner
                    .probe_started
                    .is_none_or(|at| now.saturating_duration_since(at) >= self.config.cool_down);
                if stale {
                    inner.probe_started = Some(now);
                    Admission::Probe
                } else {
                    Admission::Rejected
                }
            }
        }
    }

    /// `true` when [`CircuitBreaker::admit`] would refuse now (without taking a probe).
    pub fn is_rejecting(&self) -> bool {
        self.is_rejecting_at(Instant::now())
    }

    /// `true` when [`CircuitBreaker::admit_at`] would refuse at `now`.
    pub fn is_rejecting_at(&self, now: Instant) -> bool {
        let inner = lock(&self.inner);
        let within = |at: Option<Instant>| {
            at.is_some_and(|at| now.saturating_duration_since(at) < self.config.cool_down)
        };
        match inner.state {
            CircuitState::Closed => false,
            CircuitState::Open => within(inner.opened_at),
            CircuitState::HalfOpen => within(inner.probe_started),
        }
    }

    /// Records a successful call: closes the circuit.
    pub fn on_success(&self) {
        let mut inner = lock(&self.inner);
        inner.consecutive_failures = 0;
        inner.opened_at = None;
        inner.probe_started = None;
        Self::set_state(&mut inner, CircuitState::Closed);
    }

    /// Records a failed call now.
    pub fn on_failure(&self) {
        self.on_failure_at(Instant::now());
    }

    /// Records a failed call at `now`.
    pub fn on_failure_at(&self, now: Instant) {
        let mut inner = lock(&self.inner);
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        let open = match inner.state {
            CircuitState::HalfOpen => true,
            CircuitState::Closed => {
                inner.consecutive_failures >= self.config.failure_threshold.max(1)
            }
            CircuitState::Open => false,
        };
        if open {
            inner.opened_at = Some(now);
            inner.probe_started = None;
            Self::set_state(&mut inner, CircuitState::Open);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn breaker_cycles_through_states() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            cool_down: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        assert_eq!(b.state(), CircuitState::Closed);
        b.on_success(); // resets the count
        b.on_failure_at(t0);
        b.on_failure_at(t0);
        assert_eq!(b.admit_at(t0), Admission::Allowed);
        b.on_failure_at(t0);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit_at(t0 + Duration::from_secs(9)), Admission::Rejected);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.admit_at(t1), Admission::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.admit_at(t1), Admission::Rejected, "one probe at a time");
        b.on_failure_at(t1);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit_at(t1 + Duration::from_secs(1)), Admission::Rejected);
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.admit_at(t2), Admission::Probe);
        // An abandoned probe does not wedge the breaker.
        assert_eq!(b.admit_at(t2 + Duration::from_secs(10)), Admission::Probe);
        b.on_success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit_at(t2), Admission::Allowed);
    }
}
