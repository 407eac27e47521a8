//! Assertions on finished matches: the reveal, every round, and the scoring rule.

use std::collections::{BTreeMap, BTreeSet};

use schemas::{
    HistoryRound, HistoryStatus, Identity, MatchEvent, MatchEventData, MatchHistory, MatchStatus,
    SeatKind, SeatPoints,
};

use super::Game;

impl Game {
    /// Asserts the match ran from creation to reveal: `match.completed`, a complete
    /// history with every round, a completed final snapshot, scores by the rule, and
    /// every seat answered or timed out in every round.
    pub fn assert_completed(&self, match_id: &str) -> MatchHistory {
        self.assert_completed_with(match_id, &self.events())
    }

    /// [`Game::assert_completed`] with the match's log given (e.g. across a restart).
    pub fn assert_completed_with(&self, match_id: &str, log: &[MatchEvent]) -> MatchHistory {
        let types: Vec<&str> = log
            .iter()
            .filter(|e| e.match_id == match_id)
            .map(|e| e.event_type())
            .collect();
        assert_eq!(
            types.first(),
            Some(&"match.created"),
            "{match_id}: {types:?}"
        );
        assert_eq!(
            types.last(),
            Some(&"match.completed"),
            "{match_id}: {types:?}"
        );
        assert_eq!(types.iter().filter(|t| **t == "match.completed").count(), 1);
        let state = self.state_snapshot(match_id).expect("match-state snapshot");
        assert_eq!(state.status, MatchStatus::Completed, "{match_id}");
        assert!(state.completed_at.is_some());
        let h = self.history(match_id).expect("match-history document");
        assert_eq!(h.status, HistoryStatus::Completed);
        assert_eq!(
            h.rounds.len(),
            h.total_rounds as usize,
            "{match_id}: all rounds present"
        );
        assert_eq!(state.total_rounds, h.total_rounds);
        let seats = h.seats.len();
        for (i, r) in h.rounds.iter().enumerate() {
            assert_eq!(r.round as usize, i + 1);
            assert!(!r.prompt.is_empty());
            assert_eq!(
                r.responses.len() + r.timed_out_responses.len(),
                seats,
                "round {}",
                r.round
            );
            assert_eq!(
                r.votes.len() + r.timed_out_votes.len(),
                seats,
                "round {}",
                r.round
            );
            assert!(r.completed_at.is_some());
            let robots: BTreeSet<&str> = r.robots.iter().map(|a| a.robot_id.as_str()).collect();
            assert_eq!(robots.len(), r.robots.len(), "no robot voices two seats");
            for v in &r.votes {
                assert_ne!(v.voter, v.voted_for, "nobody votes for themselves");
            }
        }
        // Reveal: every robot seat lists who voiced it in every round that had robots (a
        // round the pool could not voice in time started without them).
        for s in &h.seats {
            let voiced = h
                .rounds
                .iter()
                .filter(|r| r.robots.iter().any(|a| a.identity == s.identity))
                .count();
            match s.kind {
                SeatKind::Robot => assert_eq!(s.voices.len(), voiced),
                SeatKind::Human => assert!(s.player_id.is_some() && s.voices.is_empty()),
            }
        }
        assert_scores_follow_rule(&h);
        assert_eq!(state.scores, h.final_scores);
        h
    }
}

/// The scoring rule (DESIGN §3), applied independently to the recorded votes.
fn expected_points(h: &MatchHistory, round: &HistoryRound) -> SeatPoints {
    let kind = |id: Identity| h.seats.iter().find(|s| s.identity == id).map(|s| s.kind);
    let mut points: SeatPoints = h.seats.iter().map(|s| (s.identity, 0)).collect();
    for v in &round.votes {
        match kind(v.voted_for) {
            Some(SeatKind::Human) => *points.get_mut(&v.voter).expect("voter seat") += 1,
            Some(SeatKind::Robot) if kind(v.voter) == Some(SeatKind::Human) => {
                *points.get_mut(&v.voted_for).expect("seat") += 1;
            }
            _ => {}
        }
    }
    points
}

/// Round points and cumulative scores of a history equal the rule applied to its votes.
pub fn assert_scores_follow_rule(h: &MatchHistory) {
    let mut total: SeatPoints = h.seats.iter().map(|s| (s.identity, 0)).collect();
    for r in &h.rounds {
        let points = expected_points(h, r);
        assert_eq!(r.points, points, "{} round {} points", h.match_id, r.round);
        for (id, p) in &points {
            *total.get_mut(id).expect("seat") += p;
        }
        assert_eq!(r.scores, total, "{} round {} scores", h.match_id, r.round);
    }
    assert_eq!(h.final_scores, total, "{} final scores", h.match_id);
}

/// Robots voicing seats per round, checked across matches: a robot never voices two
/// seats at the same time (between `round.started` and that round's end).
pub fn assert_no_robot_in_two_seats(events: &[MatchEvent]) {
    let mut active: BTreeMap<String, (String, Identity)> = BTreeMap::new();
    for ev in events {
        match &ev.data {
            MatchEventData::RoundStarted(r) => {
                for a in &r.robots {
                    let prev = active.insert(a.robot_id.clone(), (ev.match_id.clone(), a.identity));
                    assert!(
                        prev.is_none(),
                        "robot {} in two seats: {prev:?} and {}",
                        a.robot_id,
                        ev.match_id
                    );
                }
            }
            MatchEventData::RoundCompleted(_) | MatchEventData::MatchCompleted(_) => {
                active.retain(|_, (m, _)| m != &ev.match_id);
            }
            _ => {}
        }
    }
}
