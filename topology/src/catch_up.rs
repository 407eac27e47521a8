//! A restored task runs its wall-clock punctuators only once it has caught up with the
//! input that was waiting for it.
//!
//! Wall-clock punctuators act on what the task has seen: a deadline punctuator times out
//! the answers it has not received. When a worker dies, its partitions wait for a new
//! owner, and input keeps arriving; the new owner must process what was sent before it
//! took over before it lets the clock decide anything, or a player who answered in time
//! would be timed out because a worker crashed. At assignment each new task — and each
//! task kept through the rebalance, whose input waited too — notes the end of each of its
//! input partitions; its wall-clock punctuators are held until its
//! consumer's position passes those ends (or [`MAX_HOLD`] passes: a backlog that large
//! is logged, and the clock runs again).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;

use crate::TopologyError;

/// The longest a task's wall-clock punctuators wait for it to catch up.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(60);

/// The input ends a new task must reach before its wall-clock punctuators run.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Per input topic of the task's partition: the end offset at assignment.
    ends: BTreeMap<String, i64>,
    /// Topics whose end was checked once against the last fetch's high watermark.
    rechecked: std::collections::BTreeSet<String>,
    since: Option<Instant>,
}

impl Backlog {
    /// The backlog of a task on `partition` of `topics` that starts at `next` (its own
    /// next offsets, when it has any; else the group's committed offsets).
    pub(crate) fn at_assignment<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topics: &[String],
        partition: i32,
        next: &BTreeMap<String, i64>,
    ) -> Result<Self, TopologyError> {
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            tpl.add_partition(t, partition);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .map_err(|e| TopologyError::kafka("committed offsets", e))?;
        let mut ends = BTreeMap::new();
        for t in topics {
            let (low, high) = consumer
                .fetch_watermarks(t, partition, Duration::from_secs(10))
                .map_err(|e| TopologyError::kafka(format!("watermarks of {t}[{partition}]"), e))?;
            let group = crate::watermarks::offset_in(&committed, t, partition);
            let start = next.get(t).copied().or(group).unwrap_or(low).max(low);
            if start < high {
                ends.insert(t.clone(), high);
            }
        }
        Ok(Backlog {
            since: (!ends.is_empty()).then(Instant::now),
            ends,
            rechecked: Default::default(),
        })
    }

    /// Whether wall-clock punctuation must still wait: drops the partitions whose
    /// `position` (the consumer's next offset) reached their end. The first time a
    /// partition reaches the end it was given at assignment, that end is checked once
    /// against `fetched_end` (the high watermark the last fetch reported): a broker whose
    /// ListOffsets answer falls short of its log (Tansu, see `watermarks.rs`) would
    /// otherwise release the hold inside the backlog's last batch.
    pub(crate) fn holds(
        &mut self,
        task: &str,
        mut position: impl FnMut(&str) -> Option<i64>,
        mut fetched_end: impl FnMut(&str) -> Option<i64>,
    ) -> bool {
        if self.ends.is_empty() {
            return false;
        }
        let rechecked = &mut self.rechecked;
        self.ends.retain(|topic, end| {
            let Some(p) = position(topic) else {
                return true;
            };
            if p < *end {
                return true;
            }
            if rechecked.insert(topic.clone()) {
                if let Some(h) = fetched_end(topic).filter(|h| *h > *end) {
                    *end = h;
                    return p < h;
                }
            }
            false
        });
        if self.ends.is_empty() {
            tracing::info!(
                task,
                "caught up with the input that waited for it; wall-clock punctuation runs"
            );
            return false;
        }
        if self.since.is_some_and(|s| s.elapsed() >= MAX_HOLD) {
            tracing::warn!(task, waiting = ?self.ends, "still behind its input after {} s; wall-clock punctuation runs anyway", MAX_HOLD.as_secs());
            self.ends.clear();
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_holds_until_every_partition_reaches_its_end() {
        let mut b = Backlog {
            ends: [("a".to_string(), 10), ("b".to_string(), 5)].into(),
            since: Some(Instant::now()),
            ..Backlog::default()
        };
        assert!(b.holds("0_1", |t| Some(if t == "a" { 10 } else { 4 }), |_| None));
        assert!(b.holds("0_1", |_| None, |_| None));
        assert!(!b.holds("0_1", |_| Some(5), |_| None));
        assert!(!Backlog::default().holds("0_1", |_| None, |_| None));
    }

    #[test]
    fn a_backlog_stops_holding_after_the_longest_hold() {
        let mut b = Backlog {
            ends: [("a".to_string(), 10)].into(),
            since: Instant::now().checked_sub(MAX_HOLD),
            ..Backlog::default()
        };
        assert!(!b.holds("0_1", |_| Some(0), |_| None));
    }

    #[test]
    fn an_end_that_falls_short_of_the_fetched_log_is_extended_once() {
        // ListOffsets said 26, the log really ends at 29 (a batch of four from 25).
        let mut b = Backlog {
            ends: [("in".to_string(), 26)].into(),
            since: Some(Instant::now()),
            ..Backlog::default()
        };
        assert!(
            b.holds("0_1", |_| Some(26), |_| Some(29)),
            "not caught up at 26"
        );
        assert!(b.holds("0_1", |_| Some(28), |_| Some(40)));
        // Extended once only: records that arrived after the assignment do not hold it.
        assert!(!b.holds("0_1", |_| Some(29), |_| Some(40)));
    }
}
