//! Test data shared by the root package's integration tests.
#![allow(dead_code)]

use schemas::{Envelope, Identity, MatchCreated, MatchEvent, Seat, SeatKind};

/// `match.created` of a three-seat `duel_2v1` match (seat A human, B and C robots).
pub fn duel_created(match_id: &str, ts: i64) -> MatchEvent {
    let seats = Identity::ALL[..3]
        .iter()
        .map(|&identity| Seat {
            identity,
            kind: if identity == Identity::ALL[0] {
                SeatKind::Human
            } else {
                SeatKind::Robot
            },
            player_id: None,
            name: None,
        })
        .collect();
    Envelope::new(
        format!("{match_id}-created"),
        match_id,
        ts,
        "corr",
        "req-1",
        MatchCreated {
            template: "duel_2v1".into(),
            total_rounds: 1,
            seats,
            response_window_ms: 60_000,
            voting_window_ms: 30_000,
            robots_window_ms: None,
        },
    )
}
