//! Scoring: the documented, deterministic rule.
//!
//! * A voter earns 1 point for naming a human seat.
//! * A robot seat earns 1 point for each **human** voter who named it as human.
//!
//! Timed-out votes score nothing. Scores are cumulative per seat.
//!
//! ```
//! use game::scoring::round_points;
//! use schemas::{Identity, RecordedVote, SeatKind, VoteSource};
//! let [a, b, c] = [Identity::ALL[0], Identity::ALL[1], Identity::ALL[2]];
//! let kinds = [(a, SeatKind::Human), (b, SeatKind::Robot), (c, SeatKind::Human)];
//! let votes = [
//!     RecordedVote { voter: a, voted_for: b, source: VoteSource::Human }, // fooled by B
//!     RecordedVote { voter: b, voted_for: c, source: VoteSource::Robot }, // B spots C
//!     RecordedVote { voter: c, voted_for: a, source: VoteSource::Human }, // C spots A
//! ];
//! let points = round_points(kinds, &votes);
//! assert_eq!(points[&a], 0);
//! assert_eq!(points[&b], 2); // 1 for fooling A, 1 for naming C
//! assert_eq!(points[&c], 1);
//! ```

use schemas::{Identity, RecordedVote, SeatKind, SeatPoints, MAX_SEATS};

/// Points of one round for every seat (seats with no points get 0).
pub fn round_points(
    seats: impl IntoIterator<Item = (Identity, SeatKind)>,
    votes: &[RecordedVote],
) -> SeatPoints {
    let mut kinds: [Option<SeatKind>; MAX_SEATS] = [None; MAX_SEATS];
    let mut points = [0u32; MAX_SEATS];
    for (identity, kind) in seats {
        kinds[identity.index()] = Some(kind);
    }
    for v in votes {
        let voter = kinds[v.voter.index()];
        match kinds[v.voted_for.index()] {
            Some(SeatKind::Human) => points[v.voter.index()] += 1,
            Some(SeatKind::Robot) if voter == Some(SeatKind::Human) => {
                points[v.voted_for.index()] += 1;
            }
            _ => {}
        }
    }
    Identity::ALL
        .iter()
        .filter(|id| kinds[id.index()].is_some())
        .map(|id| (*id, points[id.index()]))
        .collect()
}

/// `scores + points`, seat by seat.
pub fn add_points(scores: &SeatPoints, points: &SeatPoints) -> SeatPoints {
    let mut out = scores.clone();
    for (id, p) in points {
        *out.entry(*id).or_insert(0) += p;
    }
    out
}
