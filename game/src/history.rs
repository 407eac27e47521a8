//! History view: folds `match-events` into one [`MatchHistory`] per match.
//!
//! The document is kept (status `in_progress`) in the history processor's store while the
//! match runs; on `match.completed` it is final and written to `match-history`
//! ([`is_final`]). Responses are listed in presentation order once voting starts.
//!
//! ```
//! use game::history::{evolve_history, is_final};
//! use schemas::{Envelope, MatchCreated, MatchEvent};
//! let created: MatchEvent = Envelope::new("e1", "m1", 5, "c", "r1", MatchCreated {
//!     template: "duel_2v1".into(), total_rounds: 1, seats: vec![],
//!     response_window_ms: 1, voting_window_ms: 1, robots_window_ms: None });
//! let h = evolve_history(None, &created);
//! assert_eq!(h.match_id, "m1");
//! assert!(!is_final(&h));
//! ```

use super::sequence::{position, Position};
use schemas::{
    HistoryResponse, HistoryRound, HistoryStatus, HistoryVote, MatchEvent, MatchEventData,
    MatchHistory, RoundVoice, SCHEMA_VERSION,
};

fn empty_history(match_id: &str) -> MatchHistory {
    MatchHistory {
        schema_version: SCHEMA_VERSION,
        match_id: match_id.to_owned(),
        status: HistoryStatus::InProgress,
        template: String::new(),
        total_rounds: 0,
        created_at: 0,
        completed_at: None,
        duration_ms: None,
        seats: Vec::new(),
        rounds: Vec::new(),
        final_scores: Default::default(),
        events_applied: 0,
    }
}

/// Whether the history is complete (write it to `match-history`).
pub fn is_final(h: &MatchHistory) -> bool {
    h.status == HistoryStatus::Completed
}

/// Where `ev` stands for the history `h` (`None`: nothing folded yet): apply it only when
/// it is [`Position::Next`].
pub fn history_position(h: Option<&MatchHistory>, ev: &MatchEvent) -> Position {
    position(h.map_or(0, |h| h.events_applied), ev.sequence)
}

/// Folds one event into the history (`None` = first event of the match). An event that is
/// not the next one of the match ([`history_position`]) leaves the history unchanged: a
/// redelivered duplicate is a no-op, and a caller that must report gaps checks first.
pub fn evolve_history(history: Option<MatchHistory>, ev: &MatchEvent) -> MatchHistory {
    let next = history_position(history.as_ref(), ev) == Position::Next;
    let mut h = history.unwrap_or_else(|| empty_history(&ev.match_id));
    if !next {
        return h;
    }
    h.events_applied += 1;
    match &ev.data {
        MatchEventData::MatchCreated(e) => {
            h.template.clone_from(&e.template);
            h.total_rounds = e.total_rounds;
            h.created_at = ev.timestamp;
            h.seats = super::seats::reveals(&e.seats);
            h.final_scores = e.seats.iter().map(|s| (s.identity, 0)).collect();
        }
        MatchEventData::PlayerJoined(e) => {
            if let Some(seat) = h.seats.iter_mut().find(|s| s.identity == e.identity) {
                seat.player_id = Some(e.player_id.clone());
                seat.name = Some(e.name.clone());
            }
        }
        MatchEventData::RobotsNeeded(_) => {}
        MatchEventData::RoundStarted(e) => {
            if h.rounds.iter().any(|r| r.round == e.round) {
                return h;
            }
            for a in &e.robots {
                if let Some(seat) = h.seats.iter_mut().find(|s| s.identity == a.identity) {
                    seat.voices.push(RoundVoice {
                        round: e.round,
                        robot_id: a.robot_id.clone(),
                        personality: a.personality.clone(),
                        model: None,
                    });
                }
            }
            h.rounds.push(HistoryRound {
                round: e.round,
                prompt: e.prompt.clone(),
                prompt_id: e.prompt_id.clone(),
                robots: e.robots.clone(),
                started_at: ev.timestamp,
                voting_started_at: None,
                completed_at: None,
                duration_ms: None,
                responses: Vec::new(),
                timed_out_responses: Vec::new(),
                votes: Vec::new(),
                timed_out_votes: Vec::new(),
                points: Default::default(),
                scores: Default::default(),
            });
        }
        MatchEventData::ResponseRecorded(e) => {
            if let Some(model) = &e.model {
                crate::match_state::set_voice_model(&mut h.seats, e.identity, e.round, model);
            }
            if let Some(r) = round_mut(&mut h, e.round) {
                r.responses.push(HistoryResponse {
                    identity: e.identity,
                    text: e.text.clone(),
                    source: e.source,
                    robot_id: e.robot_id.clone(),
                    model: e.model.clone(),
                    latency_ms: e.latency_ms,
                    tokens: e.tokens,
                });
            }
        }
        MatchEventData::ResponseTimedOut(e) => {
            if let Some(r) = round_mut(&mut h, e.round) {
                r.timed_out_responses.push(e.identity);
            }
        }
        MatchEventData::VotingStarted(e) => {
            if let Some(r) = round_mut(&mut h, e.round) {
                r.voting_started_at = Some(ev.timestamp);
                let position = |id| e.responses.iter().position(|p| p.identity == id);
                r.responses
                    .sort_by_key(|x| position(x.identity).unwrap_or(usize::MAX));
            }
        }
        MatchEventData::VoteRecorded(e) => {
            if let Some(r) = round_mut(&mut h, e.round) {
                r.votes.push(HistoryVote {
                    voter: e.voter,
                    voted_for: e.voted_for,
                    source: e.source,
                });
            }
        }
        MatchEventData::VoteTimedOut(e) => {
            if let Some(r) = round_mut(&mut h, e.round) {
                r.timed_out_votes.push(e.voter);
            }
        }
        MatchEventData::RoundCompleted(e) => {
            if let Some(r) = round_mut(&mut h, e.round) {
                r.points.clone_from(&e.points);
                r.scores.clone_from(&e.scores);
                r.completed_at = Some(ev.timestamp);
                r.duration_ms = Some(e.duration_ms);
            }
            h.final_scores.clone_from(&e.scores);
        }
        MatchEventData::MatchCompleted(e) => {
            h.status = HistoryStatus::Completed;
            h.completed_at = Some(ev.timestamp);
            h.duration_ms = Some(e.duration_ms);
            h.seats.clone_from(&e.reveal);
            h.final_scores.clone_from(&e.final_scores);
        }
    }
    h
}

fn round_mut(h: &mut MatchHistory, round: u32) -> Option<&mut HistoryRound> {
    h.rounds.iter_mut().rev().find(|r| r.round == round)
}
