//! The match state as a pure fold of `match-events`.
//!
//! [`evolve`] never reads a clock, a random source or configuration: every value it
//! stores comes from the event. Replaying `match-events` from empty therefore rebuilds a
//! byte-identical `match-state`.
//!
//! ```
//! use game::{evolve, MatchStateExt};
//! use schemas::{Envelope, MatchCreated, MatchEvent, MatchStatus, Seat, SeatKind, Identity};
//! let seats = Identity::ALL[..3].iter().map(|&identity| Seat {
//!     identity, kind: SeatKind::Robot, player_id: None, name: None }).collect();
//! let created: MatchEvent = Envelope::new("e1", "m1", 1_000, "c", "r1", MatchCreated {
//!     template: "duel_2v1".into(), total_rounds: 3, seats,
//!     response_window_ms: 60_000, voting_window_ms: 30_000, robots_window_ms: None });
//! let state = evolve(None, &created);
//! assert_eq!(state.status, MatchStatus::WaitingForPlayers);
//! assert!(state.has_seen("r1"));
//! assert_eq!(state.scores.len(), 3);
//! ```

use std::collections::VecDeque;

use schemas::{
    Identity, MatchEvent, MatchEventData, MatchState, MatchStatus, RecordedResponse, RecordedVote,
    RoundState, RoundVoice, SeatKind, SeatReveal, SCHEMA_VERSION,
};

use super::ids::fingerprint;

/// How many recent input ids a match remembers for duplicate detection. Older duplicates
/// are still caught by content: a second identical response or vote is a no-op.
pub const RECENT_INPUTS_CAP: usize = 64;

/// An empty state for `match_id` (what [`evolve`] starts from).
pub fn empty_state(match_id: &str) -> MatchState {
    MatchState {
        schema_version: SCHEMA_VERSION,
        match_id: match_id.to_owned(),
        template: String::new(),
        status: MatchStatus::WaitingForPlayers,
        total_rounds: 0,
        response_window_ms: 0,
        voting_window_ms: 0,
        robots_window_ms: None,
        robots_deadline: None,
        seats: Vec::new(),
        round: 0,
        current: None,
        scores: Default::default(),
        created_at: 0,
        updated_at: 0,
        completed_at: None,
        events_applied: 0,
        recent_inputs: VecDeque::new(),
    }
}

/// Folds one event into the state (`None` = the match does not exist yet).
pub fn evolve(state: Option<MatchState>, event: &MatchEvent) -> MatchState {
    let mut state = state.unwrap_or_else(|| empty_state(&event.match_id));
    apply(&mut state, event);
    state
}

/// [`evolve`] in place.
pub fn apply(state: &mut MatchState, event: &MatchEvent) {
    remember_input(&mut state.recent_inputs, &event.causation_id);
    state.events_applied += 1;
    state.updated_at = event.timestamp;
    match &event.data {
        MatchEventData::MatchCreated(e) => {
            state.template.clone_from(&e.template);
            state.total_rounds = e.total_rounds;
            state.response_window_ms = e.response_window_ms;
            state.voting_window_ms = e.voting_window_ms;
            state.robots_window_ms = e.robots_window_ms;
            state.seats = super::seats::reveals(&e.seats);
            state.scores = e.seats.iter().map(|s| (s.identity, 0)).collect();
            state.status = MatchStatus::WaitingForPlayers;
            state.round = 0;
            state.current = None;
            state.created_at = event.timestamp;
        }
        MatchEventData::PlayerJoined(e) => {
            if let Some(seat) = state.seats.iter_mut().find(|s| s.identity == e.identity) {
                seat.player_id = Some(e.player_id.clone());
                seat.name = Some(e.name.clone());
            }
        }
        MatchEventData::RobotsNeeded(e) => {
            state.round = e.round;
            state.status = MatchStatus::WaitingForRobots;
            state.current = None;
            state.robots_deadline = e.deadline;
        }
        MatchEventData::RoundStarted(e) => {
            state.robots_deadline = None;
            for robot in &e.robots {
                if let Some(seat) = state
                    .seats
                    .iter_mut()
                    .find(|s| s.identity == robot.identity)
                {
                    seat.voices.push(RoundVoice {
                        round: e.round,
                        robot_id: robot.robot_id.clone(),
                        personality: robot.personality.clone(),
                        model: None,
                    });
                }
            }
            state.round = e.round;
            state.status = MatchStatus::Responding;
            state.current = Some(RoundState {
                round: e.round,
                prompt: e.prompt.clone(),
                prompt_id: e.prompt_id.clone(),
                robots: e.robots.clone(),
                started_at: event.timestamp,
                response_deadline: e.response_deadline,
                responses: Vec::with_capacity(e.participants.len()),
                timed_out_responses: Vec::new(),
                voting_started_at: None,
                voting_deadline: None,
                presentation: Vec::new(),
                votes: Vec::new(),
                timed_out_votes: Vec::new(),
            });
        }
        MatchEventData::ResponseRecorded(e) => {
            if let Some(model) = &e.model {
                set_voice_model(&mut state.seats, e.identity, e.round, model);
            }
            if let Some(cur) = current_round(state, e.round) {
                cur.responses.push(RecordedResponse {
                    identity: e.identity,
                    text: e.text.clone(),
                    source: e.source,
                });
            }
        }
        MatchEventData::ResponseTimedOut(e) => {
            if let Some(cur) = current_round(state, e.round) {
                cur.timed_out_responses.push(e.identity);
            }
        }
        MatchEventData::VotingStarted(e) => {
            let seats = state.seats.len();
            if let Some(cur) = current_round(state, e.round) {
                cur.voting_started_at = Some(event.timestamp);
                cur.voting_deadline = Some(e.voting_deadline);
                cur.presentation = e.responses.iter().map(|r| r.identity).collect();
                cur.votes.reserve(seats);
                state.status = MatchStatus::Voting;
            }
        }
        MatchEventData::VoteRecorded(e) => {
            if let Some(cur) = current_round(state, e.round) {
                cur.votes.push(RecordedVote {
                    voter: e.voter,
                    voted_for: e.voted_for,
                    source: e.source,
                });
            }
        }
        MatchEventData::VoteTimedOut(e) => {
            if let Some(cur) = current_round(state, e.round) {
                cur.timed_out_votes.push(e.voter);
            }
        }
        MatchEventData::RoundCompleted(e) => {
            state.scores.clone_from(&e.scores);
            state.round = e.round;
            state.status = MatchStatus::RoundCompleted;
            state.current = None;
        }
        MatchEventData::MatchCompleted(e) => {
            state.scores.clone_from(&e.final_scores);
            state.status = MatchStatus::Completed;
            state.completed_at = Some(event.timestamp);
            state.current = None;
        }
    }
}

fn current_round(state: &mut MatchState, round: u32) -> Option<&mut RoundState> {
    state.current.as_mut().filter(|c| c.round == round)
}

fn remember_input(recent: &mut VecDeque<u64>, id: &str) {
    let fp = fingerprint(id);
    if recent.back() == Some(&fp) {
        return;
    }
    if recent.len() >= RECENT_INPUTS_CAP {
        recent.pop_front();
    }
    recent.push_back(fp);
}

/// Read-only queries on a [`MatchState`].
pub trait MatchStateExt {
    /// Whether an input with this id was already applied (bounded memory, see
    /// [`RECENT_INPUTS_CAP`]).
    fn has_seen(&self, input_id: &str) -> bool;
    /// The seat of a human player.
    fn seat_of_player(&self, player_id: &str) -> Option<&SeatReveal>;
    /// The seat with this identity.
    fn seat(&self, identity: Identity) -> Option<&SeatReveal>;
    /// Whether the seat is a human seat.
    fn is_human(&self, identity: Identity) -> bool;
    /// Human seats without a player.
    fn free_human_seats(&self) -> usize;
    /// Whether `match.completed` was applied.
    fn is_completed(&self) -> bool;
    /// The next deadline that [`due_timeouts`](super::due_timeouts) would act on.
    fn next_deadline(&self) -> Option<i64>;
}

impl MatchStateExt for MatchState {
    fn has_seen(&self, input_id: &str) -> bool {
        let fp = fingerprint(input_id);
        self.recent_inputs.iter().any(|&x| x == fp)
    }

    fn seat_of_player(&self, player_id: &str) -> Option<&SeatReveal> {
        self.seats
            .iter()
            .find(|s| s.player_id.as_deref() == Some(player_id))
    }

    fn seat(&self, identity: Identity) -> Option<&SeatReveal> {
        self.seats.iter().find(|s| s.identity == identity)
    }

    fn is_human(&self, identity: Identity) -> bool {
        self.seat(identity)
            .is_some_and(|s| s.kind == SeatKind::Human)
    }

    fn free_human_seats(&self) -> usize {
        self.seats
            .iter()
            .filter(|s| s.kind == SeatKind::Human && s.player_id.is_none())
            .count()
    }

    fn is_completed(&self) -> bool {
        self.status == MatchStatus::Completed
    }

    fn next_deadline(&self) -> Option<i64> {
        if self.status == MatchStatus::WaitingForRobots {
            return self.robots_deadline;
        }
        let cur = self.current.as_ref()?;
        match self.status {
            MatchStatus::Responding => Some(cur.response_deadline),
            MatchStatus::Voting => cur.voting_deadline,
            _ => None,
        }
    }
}

/// Whether `identity` has responded or timed out in the round.
pub(crate) fn has_response(cur: &RoundState, identity: Identity) -> bool {
    cur.responses.iter().any(|r| r.identity == identity)
        || cur.timed_out_responses.contains(&identity)
}

/// Whether `identity` has voted or timed out in the round.
pub(crate) fn has_vote(cur: &RoundState, identity: Identity) -> bool {
    cur.votes.iter().any(|v| v.voter == identity) || cur.timed_out_votes.contains(&identity)
}

/// Records the model behind a robot seat's answer on its voice of `round` (the reveal
/// shows which model played each robot).
pub(crate) fn set_voice_model(
    seats: &mut [SeatReveal],
    identity: Identity,
    round: u32,
    model: &str,
) {
    if let Some(voice) = seats
        .iter_mut()
        .find(|s| s.identity == identity)
        .and_then(|s| s.voices.iter_mut().rev().find(|v| v.round == round))
    {
        voice.model = Some(model.to_owned());
    }
}
