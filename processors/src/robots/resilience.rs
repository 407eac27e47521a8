//! Per-request timeout and retries with exponential backoff + jitter (honouring a
//! retry-after hint) around model calls, gated by the [`CircuitBreaker`]. The breaker and
//! the per-match token budget live in [`breaker`](super::breaker) and
//! [`budget`](super::budget).
//!
//! ```
//! use std::time::Duration;
//! use processors::robots::{RetryPolicy, SeededRng};
//!
//! let policy = RetryPolicy { max_retries: 3, backoff_base: Duration::from_millis(100), backoff_max: Duration::from_secs(1) };
//! let mut rng = SeededRng::from_parts(&["cmd-1"]);
//! let first = policy.delay(0, None, &mut rng).expect("retry");
//! assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
//! // A server hint wins; a hint beyond `backoff_max` ends the retries.
//! assert_eq!(policy.delay(0, Some(Duration::from_millis(300)), &mut rng), Some(Duration::from_millis(300)));
//! assert_eq!(policy.delay(0, Some(Duration::from_secs(30)), &mut rng), None);
//! assert_eq!(policy.delay(3, None, &mut rng), None);
//! ```
//!
//! ## async-openai's own retries
//!
//! async-openai 0.43 always wraps its HTTP transport in `OpenAIRetryLayer` (3 retries
//! on 429 / 5xx / connect errors, honouring `Retry-After` in seconds, 100 ms·2ⁿ backoff
//! up to 8 s); only the crate's `middleware` feature (`Client::with_http_service`) can
//! replace it, and its errors carry the HTTP status but no headers. With the features
//! this workspace enables, [`call_with_resilience`] therefore runs *around* that inner
//! layer: the per-request timeout bounds the whole inner sequence (so an inner
//! `Retry-After: 3600` can never stall a robot), our retries/backoff/breaker apply to
//! what is left, and the retry-after hint comes from the error message ("try again in
//! 1.5s") when the server provides one.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::breaker::{Admission, CircuitBreaker};
use super::seed::SeededRng;

/// Locks a mutex, recovering from poisoning (the protected data stays consistent:
/// every critical section is a few plain assignments).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Base delay (first retry waits `base/2 ..= base`).
    pub backoff_base: Duration,
    /// Upper bound of one delay; a retry-after hint above it ends the retries.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0-based): `retry_after` when given (and not
    /// above `backoff_max`), otherwise "equal jitter" over `base·2^retry` capped at
    /// `backoff_max`. `None` means: do not retry.
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut SeededRng,
    ) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        if let Some(after) = retry_after {
            return (after <= self.backoff_max).then_some(after);
        }
        let exp = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.backoff_max);
        let half = exp / 2;
        let jitter_ms = rng.between(0, half.as_millis().min(u128::from(u64::MAX)) as u64);
        Some(half + Duration::from_millis(jitter_ms))
    }
}

/// What an error tells the retry loop.
pub trait RetryClass {
    /// Worth another attempt (429, 5xx, timeout, connection error).
    fn is_retryable(&self) -> bool;
    /// Server-provided delay before the next attempt.
    fn retry_after(&self) -> Option<Duration>;
    /// Counts as a failure for the circuit breaker.
    fn counts_for_breaker(&self) -> bool;
    /// The error for an attempt that exceeded the per-request timeout.
    fn timed_out(after: Duration) -> Self;
    /// `true` for the error built by [`RetryClass::timed_out`].
    fn is_timeout(&self) -> bool;
}

/// Result of [`call_with_resilience`].
#[derive(Debug)]
pub enum CallOutcome<T, E> {
    /// An attempt succeeded.
    Success(T),
    /// Attempts exhausted, or a non-retryable error.
    Failed(E),
    /// The breaker refused an attempt (before the first one, or between retries after
    /// it opened); carries the last error if there was one.
    CircuitOpen(Option<E>),
}

/// Observer of retries and timeouts (metrics / stats).
pub trait RetryObserver {
    /// A retry is about to wait `delay` after `error`.
    fn on_retry(&self, retry: u32, delay: Duration);
    /// An attempt hit the per-request timeout.
    fn on_timeout(&self);
    /// An attempt starts.
    fn on_attempt(&self);
}

/// Runs `op` with a per-attempt `timeout`, retries per `policy` and the `breaker`.
///
/// Every path is bounded: at most `max_retries + 1` attempts of at most `timeout`
/// each, separated by delays of at most `backoff_max`.
pub async fn call_with_resilience<T, E, F, Fut>(
    policy: &RetryPolicy,
    timeout: Duration,
    breaker: &CircuitBreaker,
    jitter_seed: &str,
    observer: &(dyn RetryObserver + Sync),
    mut op: F,
) -> CallOutcome<T, E>
where
    E: RetryClass,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut rng = SeededRng::from_parts(&["retry-jitter", jitter_seed]);
    let mut last: Option<E> = None;
    let mut attempt: u32 = 0;
    loop {
        if breaker.admit() == Admission::Rejected {
            return CallOutcome::CircuitOpen(last);
        }
        observer.on_attempt();
        let result = match tokio::time::timeout(timeout, op(attempt)).await {
            Ok(r) => r,
            Err(_) => {
                observer.on_timeout();
                Err(E::timed_out(timeout))
            }
        };
        let error = match result {
            Ok(value) => {
                breaker.on_success();
                return CallOutcome::Success(value);
            }
            Err(e) => e,
        };
        if error.counts_for_breaker() {
            breaker.on_failure();
        }
        if !error.is_retryable() {
            return CallOutcome::Failed(error);
        }
        let Some(delay) = policy.delay(attempt, error.retry_after(), &mut rng) else {
            return CallOutcome::Failed(error);
        };
        observer.on_retry(attempt + 1, delay);
        tokio::time::sleep(delay).await;
        last = Some(error);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::breaker::{BreakerConfig, CircuitState};
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq)]
    enum TestError {
        Retryable(Option<Duration>),
        Fatal,
        Timeout,
    }

    impl RetryClass for TestError {
        fn is_retryable(&self) -> bool {
            !matches!(self, TestError::Fatal)
        }
        fn retry_after(&self) -> Option<Duration> {
            match self {
                TestError::Retryable(d) => *d,
                _ => None,
            }
        }
        fn counts_for_breaker(&self) -> bool {
            true
        }
        fn timed_out(_: Duration) -> Self {
            TestError::Timeout
        }
        fn is_timeout(&self) -> bool {
            matches!(self, TestError::Timeout)
        }
    }

    #[derive(Default)]
    struct Counting {
        retries: AtomicU32,
        timeouts: AtomicU32,
        attempts: AtomicU32,
    }

    impl RetryObserver for Counting {
        fn on_retry(&self, _: u32, _: Duration) {
            self.retries.fetch_add(1, Ordering::SeqCst);
        }
        fn on_timeout(&self) {
            self.timeouts.fetch_add(1, Ordering::SeqCst);
        }
        fn on_attempt(&self) {
            self.attempts.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy {
            max_retries: 10,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        let mut rng = SeededRng::from_parts(&["t"]);
        for retry in 0..10 {
            let d = p.delay(retry, None, &mut rng).expect("retry allowed");
            let exp = Duration::from_millis(100 * 2u64.pow(retry)).min(Duration::from_secs(1));
            assert!(d >= exp / 2 && d <= exp, "retry {retry}: {d:?}");
        }
        assert_eq!(p.delay(10, None, &mut rng), None);
        assert_eq!(
            p.delay(0, Some(Duration::from_millis(700)), &mut rng),
            Some(Duration::from_millis(700))
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(60)), &mut rng), None);
    }

    #[tokio::test]
    async fn retries_until_success() {
        let breaker = CircuitBreaker::new(BreakerConfig::default());
        let obs = Counting::default();
        let calls = AtomicU32::new(0);
        let out: CallOutcome<u32, TestError> = call_with_resilience(
            &policy(3),
            Duration::from_secs(5),
            &breaker,
            "s",
            &obs,
            |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(TestError::Retryable(Some(Duration::ZERO)))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert!(matches!(out, CallOutcome::Success(2)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(obs.retries.load(Ordering::SeqCst), 2);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_and_timeouts_are_bounded() {
        let breaker = CircuitBreaker::new(BreakerConfig::default());
        let obs = Counting::default();
        let out: CallOutcome<(), TestError> = call_with_resilience(
            &policy(3),
            Duration::from_secs(5),
            &breaker,
            "s",
            &obs,
            |_| async { Err(TestError::Fatal) },
        )
        .await;
        assert!(matches!(out, CallOutcome::Failed(TestError::Fatal)));
        assert_eq!(obs.attempts.load(Ordering::SeqCst), 1);

        let obs = Counting::default();
        let out: CallOutcome<(), TestError> = call_with_resilience(
            &policy(1),
            Duration::from_millis(50),
            &breaker,
            "s",
            &obs,
            |_| std::future::pending(),
        )
        .await;
        assert!(matches!(out, CallOutcome::Failed(TestError::Timeout)));
        assert_eq!(obs.timeouts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn open_breaker_stops_retries() {
        let breaker = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_secs(60),
        });
        let obs = Counting::default();
        let out: CallOutcome<(), TestError> = call_with_resilience(
            &policy(5),
            Duration::from_secs(5),
            &breaker,
            "s",
            &obs,
            |_| async { Err(TestError::Retryable(Some(Duration::ZERO))) },
        )
        .await;
        assert!(matches!(out, CallOutcome::CircuitOpen(Some(_))));
        assert_eq!(obs.attempts.load(Ordering::SeqCst), 2);
        let out: CallOutcome<(), TestError> = call_with_resilience(
            &policy(5),
            Duration::from_secs(5),
            &breaker,
            "s",
            &obs,
            |_| async { Ok(()) },
        )
        .await;
        assert!(matches!(out, CallOutcome::CircuitOpen(None)));
    }
}
