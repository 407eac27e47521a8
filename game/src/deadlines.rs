//! Deadlines: which timeouts are due at `now`, as events.
//!
//! The runtime's wall-clock punctuator calls [`due_timeouts`] for active matches (use
//! [`MatchStateExt::next_deadline`](super::MatchStateExt::next_deadline) to know when).
//! The events carry the **deadline** (plus the grace, with [`due_timeouts_with_grace`]) as
//! their timestamp and ids derived from `deadline:{round}:{phase}`, so they are the same
//! whenever the punctuator fires. One call handles one phase: a response timeout opens
//! voting (with its own deadline, counted from that timestamp: the moment the phase
//! opens); call again once that one is due. A round whose
//! robots have not come by its robots deadline starts without them.
//!
//! ```
//! use game::{due_timeouts, MatchStateExt};
//! # fn demo(state: &schemas::MatchState) {
//! if let Some(deadline) = state.next_deadline() {
//!     let events = due_timeouts(state, deadline);
//!     assert!(!events.is_empty());
//!     assert!(due_timeouts(state, deadline - 1).is_empty());
//! }
//! # }
//! ```

use schemas::{MatchEvent, MatchState, MatchStatus, ResponseTimedOut, VoteTimedOut};

use super::match_state::{has_response, has_vote};
use super::sequence::number;
use super::transitions::{finish, round_started, window, Emitter};

/// The timeout events due at `now_ms` (and the phase transitions they cause); empty when
/// nothing is due. The same as [`due_timeouts_with_grace`] with no grace.
pub fn due_timeouts(state: &MatchState, now_ms: i64) -> Vec<MatchEvent> {
    due_timeouts_with_grace(state, now_ms, 0)
}

/// The timeout events due at `now_ms` when a phase ends `grace_ms` after its deadline
/// ([`GameConfig::deadline_grace_ms`](super::GameConfig::deadline_grace_ms)): a request
/// stamped in time but still in flight at the deadline is decided before the phase ends.
/// The events are stamped `deadline + grace`, so the phase they open gets its whole window
/// from the moment it opens, and they are the same whenever the punctuator fires.
///
/// ```
/// use game::{due_timeouts_with_grace, MatchStateExt};
/// # fn demo(state: &schemas::MatchState) {
/// if let Some(deadline) = state.next_deadline() {
///     assert!(due_timeouts_with_grace(state, deadline + 1_999, 2_000).is_empty());
///     let events = due_timeouts_with_grace(state, deadline + 2_000, 2_000);
///     assert!(events.iter().all(|e| e.timestamp == deadline + 2_000));
/// }
/// # }
/// ```
pub fn due_timeouts_with_grace(state: &MatchState, now_ms: i64, grace_ms: u64) -> Vec<MatchEvent> {
    let mut events = timeouts(state, now_ms, window(grace_ms));
    number(&mut events, state.events_applied);
    events
}

fn timeouts(state: &MatchState, now_ms: i64, grace: i64) -> Vec<MatchEvent> {
    if state.status == MatchStatus::WaitingForRobots {
        return robots_timeout(state, now_ms, grace);
    }
    let Some(cur) = state.current.as_ref() else {
        return Vec::new();
    };
    let (deadline, phase) = match state.status {
        MatchStatus::Responding => (cur.response_deadline, "response"),
        MatchStatus::Voting => match cur.voting_deadline {
            Some(d) => (d, "vote"),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let ends = deadline.saturating_add(grace);
    if now_ms < ends {
        return Vec::new();
    }
    let cause = format!("deadline:{}:{phase}", cur.round);
    let mut em = Emitter::new(&state.match_id, &cause, &state.match_id, ends);
    for seat in &state.seats {
        if phase == "response" && !has_response(cur, seat.identity) {
            em.emit(ResponseTimedOut {
                round: cur.round,
                identity: seat.identity,
            });
        } else if phase == "vote" && !has_vote(cur, seat.identity) {
            em.emit(VoteTimedOut {
                round: cur.round,
                voter: seat.identity,
            });
        }
    }
    finish(state, em, true)
}

/// The round starts without robots once its robots deadline has passed: the robot seats
/// then time out like silent players, and the match moves on. Robots the pool assigns
/// later are a stale answer (no effect); the pool releases them when the round completes.
fn robots_timeout(state: &MatchState, now_ms: i64, grace: i64) -> Vec<MatchEvent> {
    let Some(deadline) = state.robots_deadline else {
        return Vec::new();
    };
    let ends = deadline.saturating_add(grace);
    if now_ms < ends {
        return Vec::new();
    }
    let cause = format!("deadline:{}:robots", state.round);
    let mut em = Emitter::new(&state.match_id, &cause, &state.match_id, ends);
    em.emit(round_started(state, Vec::new(), ends));
    finish(state, em, true)
}
