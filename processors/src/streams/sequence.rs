//! What the topology's folds of `match-events` do with an event that is not the next one
//! of its match: count a duplicate and skip it, dead-letter a gap with its reason.
//!
//! Metrics: `orchestra_duplicate_events_total{fold}` and
//! `orchestra_sequence_gaps_total{fold}` (`fold`: `history`, `robot-orchestration`, `stats`;
//! see [`crate::metrics`]).

use topology::ProcessError;

use crate::game::Position;
use crate::metrics as m;

/// Counts a skipped duplicate of `fold`.
pub(crate) fn duplicate(fold: &'static str) {
    metrics::counter!(m::DUPLICATE_EVENTS, "fold" => fold).increment(1);
}

/// For an event at `at` (not [`Position::Next`]): `Ok` for a duplicate (counted), a
/// rejection naming the gap (dead-lettered by the runtime) for a gap.
pub(crate) fn skip(fold: &'static str, match_id: &str, at: Position) -> Result<(), ProcessError> {
    match at.gap_reason(match_id) {
        None => {
            duplicate(fold);
            Ok(())
        }
        Some(reason) => {
            metrics::counter!(m::SEQUENCE_GAPS, "fold" => fold).increment(1);
            tracing::error!(fold, %reason, "match-events fold refused an event");
            Err(ProcessError::rejected(reason))
        }
    }
}
