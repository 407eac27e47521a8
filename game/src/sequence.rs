//! Positions in a match's log: what makes every fold of `match-events` idempotent.
//!
//! The match processor numbers the events of each match 1, 2, 3, … ([`number`]; the
//! number is the match state's `eventsApplied` after the event). Under at-least-once a
//! crash makes the runtime send events again with the same ids and numbers; a fold
//! remembers the last number it applied per match and asks [`position`] where the next
//! event stands: the next one is applied, an earlier one is a duplicate (skipped and
//! counted), a later one is a gap (an error the runtime dead-letters: never a silently
//! wrong document).
//!
//! ```
//! use game::sequence::{position, Position};
//! assert_eq!(position(4, Some(5)), Position::Next);
//! assert_eq!(position(4, Some(4)), Position::Duplicate);
//! assert_eq!(position(4, Some(7)), Position::Gap { expected: 5, found: 7 });
//! // Events written before numbering existed are applied as they come.
//! assert_eq!(position(4, None), Position::Next);
//! ```

use schemas::MatchEvent;

/// Where an event stands relative to the last one a fold applied for its match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The next event of the match (or an unnumbered one): apply it.
    Next,
    /// Already applied: skip it.
    Duplicate,
    /// Events are missing before this one.
    Gap {
        /// The number the fold waits for.
        expected: u64,
        /// The number that came.
        found: u64,
    },
}

/// Where an event numbered `sequence` stands for a fold that applied `applied` events of
/// its match.
pub fn position(applied: u64, sequence: Option<u64>) -> Position {
    match sequence {
        None => Position::Next,
        Some(s) if s == applied + 1 => Position::Next,
        Some(s) if s <= applied => Position::Duplicate,
        Some(s) => Position::Gap {
            expected: applied + 1,
            found: s,
        },
    }
}

impl Position {
    /// The reason of a gap, for a dead-letter record: `sequence_gap: …`.
    pub fn gap_reason(&self, match_id: &str) -> Option<String> {
        match self {
            Position::Gap { expected, found } => Some(format!(
                "sequence_gap: match `{match_id}` expected event {expected}, got {found} \
                 (events {expected}..{found} are missing from match-events)"
            )),
            _ => None,
        }
    }
}

/// Numbers `events` of one match, which follow `applied` events already in its log.
pub fn number(events: &mut [MatchEvent], applied: u64) {
    for (i, e) in events.iter_mut().enumerate() {
        e.sequence = Some(applied + i as u64 + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_after_nothing_applied() {
        assert_eq!(position(0, Some(1)), Position::Next);
        assert_eq!(
            position(0, Some(2)),
            Position::Gap {
                expected: 1,
                found: 2
            }
        );
        assert_eq!(position(0, Some(0)), Position::Duplicate);
    }

    #[test]
    fn gap_reason_names_the_missing_range() {
        let r = position(2, Some(6)).gap_reason("m1").unwrap();
        assert!(r.starts_with("sequence_gap:"), "{r}");
        assert!(r.contains("expected event 3, got 6"), "{r}");
        assert_eq!(position(2, Some(3)).gap_reason("m1"), None);
    }
}
