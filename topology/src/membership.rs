//! Whether this worker may still act for its assignment.
//!
//! A consumer-group member loses its partitions without a revocation when the group
//! expires it: its session timed out (no heartbeat reached the coordinator, as in a broker
//! outage or a network partition), or it did not poll within `max.poll.interval.ms`
//! (the rebalance it missed went on without it). Another worker may then own those
//! partitions, restore their state and read their sinks to the end; anything this worker
//! delivers afterwards lands behind that reading. So before each step that lets work out
//! (handing outputs to the producer, waiting for their acknowledgements, committing) the
//! worker asks whether it is still a member, two ways:
//!
//! * librdkafka's own verdict (`rd_kafka_assignment_lost`, an atomic read), set once its
//!   session check or its poll-interval timer fires;
//! * the poll clock below, which knows at once that the stream thread has not polled
//!   within `max.poll.interval.ms` — librdkafka's timer can notice later than the
//!   coordinator, which evicts the member at the rebalance it missed.
//!
//! When it is not, the worker drops its uncommitted work (`TaskManager::on_lost`).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::config::StreamsConfig;

/// The stream consumer's `max.poll.interval.ms` unless the user sets it: long, since a
/// commit may wait on the broker, and a restore runs inside the rebalance callback.
pub(crate) const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(600);

/// The `max.poll.interval.ms` in force for the stream consumer.
pub(crate) fn max_poll_interval(config: &StreamsConfig) -> Duration {
    config
        .kafka
        .get("max.poll.interval.ms")
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_MAX_POLL_INTERVAL)
}

/// When the stream thread must poll again to stay in the group; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct PollClock {
    max: Duration,
    deadline: Instant,
}

impl PollClock {
    /// A clock for `max_poll_interval`, started now.
    pub fn new(max_poll_interval: Duration) -> Self {
        Self {
            max: max_poll_interval,
            deadline: Instant::now() + max_poll_interval,
        }
    }

    /// A poll returned at `at`.
    pub fn polled(&mut self, at: Instant) {
        self.deadline = at + self.max;
    }

    /// Whether the group has evicted (or may evict) this member by `now` for not polling.
    pub fn overdue(&self, now: Instant) -> bool {
        now > self.deadline
    }

    /// Whether this worker can no longer count on its assignment at `now`, either way of
    /// the module docs.
    pub fn membership_lost<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        now: Instant,
    ) -> bool {
        consumer.assignment_lost() || self.overdue(now)
    }
}

/// Leaves the group and joins it again; the revoke callback finds no task to commit.
pub(crate) fn rejoin_group<C: ConsumerContext>(consumer: &BaseConsumer<C>) {
    let topics: Vec<String> = match consumer.subscription() {
        Ok(tpl) => tpl
            .elements()
            .iter()
            .map(|e| e.topic().to_string())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the subscription to rejoin the group");
            return;
        }
    };
    tracing::warn!("rejoining the consumer group after dropping the tasks");
    consumer.unsubscribe();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&refs) {
        tracing::error!(error = %e, "resubscribing after a lost assignment");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_overdue_once_the_interval_since_its_last_poll_has_passed() {
        let mut clock = PollClock::new(Duration::from_secs(300));
        let polled = Instant::now() + Duration::from_secs(1000);
        clock.polled(polled);
        assert!(!clock.overdue(polled + Duration::from_secs(299)));
        assert!(clock.overdue(polled + Duration::from_secs(301)));
        clock.polled(polled + Duration::from_secs(301));
        assert!(!clock.overdue(polled + Duration::from_secs(302)));
    }

    #[test]
    fn the_users_max_poll_interval_wins_over_the_default() {
        let cfg = StreamsConfig::new("app", "localhost:9092");
        assert_eq!(max_poll_interval(&cfg), DEFAULT_MAX_POLL_INTERVAL);
        let cfg = cfg.kafka("max.poll.interval.ms", "3000");
        assert_eq!(max_poll_interval(&cfg), Duration::from_secs(3));
    }
}
