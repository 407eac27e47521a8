//! The worker loop's clocks in one small type: when the commit interval ends, when
//! wall-clock punctuators are next checked, when committed store batches were last synced
//! to disk, and the wall-clock anchor records take their wall clock from. Deadlines are
//! instants, so the per-record checks are one comparison each.

use std::time::{Duration, Instant};

/// How often wall-clock punctuators are checked: their intervals are milliseconds to
/// seconds, so this keeps them on time without a clock read and scan per record.
const PUNCTUATION_CHECK: Duration = Duration::from_millis(10);
/// How often committed store batches are synced to disk.
const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines {
    commit_interval: Duration,
    next_commit: Instant,
    next_punctuation_check: Instant,
    /// A wall-clock reading (epoch ms) and the instant it was taken at.
    wall_anchor: (Instant, i64),
    last_sync: Instant,
}

impl Deadlines {
    /// Deadlines starting now, with commits every `commit_interval`.
    pub fn new(commit_interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            commit_interval,
            next_commit: after(now, commit_interval),
            next_punctuation_check: now,
            wall_anchor: (now, now_ms()),
            last_sync: now,
        }
    }

    /// Whether the commit interval has ended at `now`.
    pub fn commit_due(&self, now: Instant) -> bool {
        now >= self.next_commit
    }

    /// When the current commit interval ends (moves at every commit).
    pub fn next_commit(&self) -> Instant {
        self.next_commit
    }

    /// Starts the next commit interval (a commit just ended).
    pub fn committed(&mut self) {
        self.next_commit = after(Instant::now(), self.commit_interval);
    }

    /// At `now`, whether wall-clock punctuators are due a check; if so, re-anchors the
    /// wall clock and returns it (epoch ms).
    pub fn punctuation_check(&mut self, now: Instant) -> Option<i64> {
        if now < self.next_punctuation_check {
            return None;
        }
        self.next_punctuation_check = now + PUNCTUATION_CHECK;
        self.wall_anchor = (now, now_ms());
        Some(self.wall_anchor.1)
    }

    /// The wall clock (epoch ms) at `now`, from the last anchor: records get their wall
    /// clock from the loop's one monotonic reading per record.
    pub fn wall_ms(&self, now: Instant) -> i64 {
        let (at, ms) = self.wall_anchor;
        ms.saturating_add(now.saturating_duration_since(at).as_millis() as i64)
    }

    /// Whether committed store batches are due a sync to disk.
    pub fn sync_due(&self) -> bool {
        self.last_sync.elapsed() >= SYNC_INTERVAL
    }

    /// Notes a sync to disk.
    pub fn synced(&mut self) {
        self.last_sync = Instant::now();
    }
}

/// `at + interval`, or a year from `at` for an interval too long to add (a commit
/// interval of `u64::MAX` ms means "only when the buffer is full", not a panic).
pub(crate) fn after(at: Instant, interval: Duration) -> Instant {
    at.checked_add(interval)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(at)
}

/// The wall clock, epoch ms.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_interval_too_long_to_add_ends_a_year_later_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_millis(250)),
            now + Duration::from_millis(250)
        );
        let far = after(now, Duration::from_millis(u64::MAX));
        assert!(far > now + Duration::from_secs(364 * 24 * 3600));
        let d = Deadlines::new(Duration::from_millis(u64::MAX));
        assert!(!d.commit_due(now + Duration::from_secs(3600)));
    }

    #[test]
    fn punctuation_checks_come_at_most_every_ten_milliseconds_and_re_anchor_the_wall_clock() {
        let mut d = Deadlines::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let wall = d.punctuation_check(t0).expect("due at start");
        assert_eq!(d.punctuation_check(t0 + Duration::from_millis(5)), None);
        assert!(d.punctuation_check(t0 + PUNCTUATION_CHECK).is_some());
        let later = d.wall_ms(t0 + PUNCTUATION_CHECK + Duration::from_millis(500));
        assert!(later >= wall + 500, "{later} vs {wall}");
    }
}
