//! Acceptance tests of the RobotOrchestra topology through the topology test driver:
//! full matches for every template, deadlines, hostile input, replay, pool scaling.

#[path = "../support/mod.rs"]
mod support;

mod active_matches;
mod deadlines;
mod full_matches;
mod hostile;
mod idempotent_folds;
mod pool;
mod read_the_room;
mod replay;

use schemas::{Identity, MatchState, SeatKind};

pub(crate) fn robot_seats(state: &MatchState) -> Vec<Identity> {
    state
        .seats
        .iter()
        .filter(|s| s.kind == SeatKind::Robot)
        .map(|s| s.identity)
        .collect()
}

pub(crate) fn count(types: &[&str], ty: &str) -> usize {
    types.iter().filter(|t| **t == ty).count()
}
