//! Punctuation schedules of one task: wall-clock and stream-time, aligned to the interval.
//!
//! A punctuator with interval `i` fires when its clock reaches the next multiple of `i`
//! after the time it was first observed; a clock that jumps several intervals fires it
//! once (as Kafka Streams does), at the time observed.

use crate::processor::PunctuationType;

#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub node: usize,
    pub name: String,
    pub interval_ms: i64,
    pub kind: PunctuationType,
    next: Option<i64>,
}

/// The schedules of one task.
#[derive(Debug, Default)]
pub(crate) struct Punctuators {
    schedules: Vec<Schedule>,
    /// Per kind (wall clock, stream time): no schedule of that kind is due before this
    /// time, so `due` needs no scan before it (stream time is checked per record).
    /// `None`: unknown, scan.
    quiet_until: [Option<i64>; 2],
}

fn slot(kind: PunctuationType) -> usize {
    match kind {
        PunctuationType::WallClock => 0,
        PunctuationType::StreamTime => 1,
    }
}

fn boundary_after(t: i64, interval: i64) -> i64 {
    t.div_euclid(interval) * interval + interval
}

impl Punctuators {
    pub fn add(&mut self, node: usize, name: String, interval_ms: i64, kind: PunctuationType) {
        self.schedules.push(Schedule {
            node,
            name,
            interval_ms: interval_ms.max(1),
            kind,
            next: None,
        });
        self.quiet_until[slot(kind)] = None;
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// Schedules of `kind` due at time `now`; advances them.
    pub fn due(&mut self, kind: PunctuationType, now: i64) -> Vec<Schedule> {
        let mut fired = Vec::new();
        if self.quiet_until[slot(kind)].is_some_and(|t| now < t) {
            return fired;
        }
        let mut quiet = i64::MAX;
        for s in self.schedules.iter_mut().filter(|s| s.kind == kind) {
            match s.next {
                None => s.next = Some(boundary_after(now, s.interval_ms)),
                Some(next) if now >= next => {
                    s.next = Some(boundary_after(now, s.interval_ms));
                    fired.push(s.clone());
                }
                Some(_) => {}
            }
            quiet = quiet.min(s.next.unwrap_or(i64::MIN));
        }
        self.quiet_until[slot(kind)] = Some(quiet);
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_on_aligned_boundaries_once_per_jump() {
        let mut p = Punctuators::default();
        p.add(0, "tick".into(), 1000, PunctuationType::StreamTime);
        assert!(p.due(PunctuationType::StreamTime, 1500).is_empty()); // first observation
        assert!(p.due(PunctuationType::StreamTime, 1999).is_empty());
        assert_eq!(p.due(PunctuationType::StreamTime, 2000).len(), 1);
        assert_eq!(p.due(PunctuationType::StreamTime, 7500).len(), 1); // jump: once
        assert!(p.due(PunctuationType::StreamTime, 7999).is_empty());
        assert!(p.due(PunctuationType::WallClock, 100_000).is_empty());
    }

    #[test]
    fn the_quiet_period_ends_at_the_earliest_schedule_and_a_new_schedule_is_seen() {
        let mut p = Punctuators::default();
        p.add(0, "slow".into(), 1000, PunctuationType::StreamTime);
        assert!(p.due(PunctuationType::StreamTime, 100).is_empty());
        p.add(1, "fast".into(), 100, PunctuationType::StreamTime);
        assert!(p.due(PunctuationType::StreamTime, 150).is_empty()); // fast first seen
        let fired: Vec<String> = p
            .due(PunctuationType::StreamTime, 200)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(fired, ["fast"]);
        assert!(p.due(PunctuationType::StreamTime, 299).is_empty());
        let fired: Vec<String> = p
            .due(PunctuationType::StreamTime, 1000)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(fired, ["slow", "fast"]);
    }
}
