//! Automatic phase transitions and the event builder shared by decide and deadlines.
//!
//! After the events an input causes directly, the match may move on by itself: all
//! humans seated → robots needed; everyone answered → voting; everyone voted → round
//! scored → next round or the end. [`advance`] emits those follow-ups on a scratch state.

use schemas::{
    Envelope, Identity, MatchCompleted, MatchEvent, MatchEventData, MatchState, MatchStatus,
    PresentedResponse, RobotAssignment, RobotsNeeded, RoundCompleted, RoundStarted, SeatKind,
    VotingStarted,
};

use super::ids::derive_event_id;
use super::match_state::{apply, empty_state, has_response, has_vote, MatchStateExt};
use super::prompts::prompt_for;
use super::scoring::{add_points, round_points};
use super::seats::presentation_order;

/// Builds the events caused by one input: deterministic ids, the cause's timestamp.
pub(crate) struct Emitter<'a> {
    pub(crate) match_id: &'a str,
    pub(crate) cause_id: &'a str,
    pub(crate) correlation_id: &'a str,
    pub(crate) timestamp: i64,
    pub(crate) events: Vec<MatchEvent>,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(
        match_id: &'a str,
        cause_id: &'a str,
        correlation_id: &'a str,
        timestamp: i64,
    ) -> Self {
        Emitter {
            match_id,
            cause_id,
            correlation_id,
            timestamp,
            events: Vec::with_capacity(2),
        }
    }

    pub(crate) fn emit(&mut self, data: impl Into<MatchEventData>) {
        let id = derive_event_id(self.match_id, self.cause_id, self.events.len());
        self.events.push(Envelope {
            event_id: id,
            schema_version: schemas::SCHEMA_VERSION,
            match_id: self.match_id.to_owned(),
            timestamp: self.timestamp,
            correlation_id: self.correlation_id.to_owned(),
            causation_id: self.cause_id.to_owned(),
            sequence: None,
            data: data.into(),
        });
    }
}

/// What an input causes directly. `may_advance`: the events may complete a phase, so the
/// automatic follow-ups ([`advance`]) are computed on the state they leave.
pub(crate) struct Decided {
    events: Vec<MatchEvent>,
    may_advance: bool,
}

impl Decided {
    /// No events.
    pub(crate) fn nothing() -> Self {
        Self {
            events: Vec::new(),
            may_advance: false,
        }
    }

    /// The events of `em`.
    pub(crate) fn direct(em: Emitter<'_>, may_advance: bool) -> Self {
        Self {
            events: em.events,
            may_advance,
        }
    }

    /// The events and their follow-ups, computed on a copy of `state` (for the pure
    /// `decide`; only inputs that may finish a phase pay for the copy).
    pub(crate) fn on_copy(self, state: Option<&MatchState>) -> Vec<MatchEvent> {
        if !self.may_advance || self.events.is_empty() {
            return self.events;
        }
        let mut scratch = match state {
            Some(s) => s.clone(),
            None => empty_state(&self.events[0].match_id),
        };
        self.continue_on(&mut scratch)
    }

    /// The events and their follow-ups, each applied to `state` (created by the first
    /// event when `None`, as [`super::evolve`] does).
    pub(crate) fn apply_to(self, state: &mut Option<MatchState>) -> Vec<MatchEvent> {
        let Some(first) = self.events.first() else {
            return self.events;
        };
        let s = state.get_or_insert_with(|| empty_state(&first.match_id));
        if !self.may_advance {
            for e in &self.events {
                apply(s, e);
            }
            return self.events;
        }
        self.continue_on(s)
    }

    /// Applies the events to `s` and emits (and applies) the follow-ups, with the ids
    /// and cause the same emitter would have given them.
    fn continue_on(self, s: &mut MatchState) -> Vec<MatchEvent> {
        for e in &self.events {
            apply(s, e);
        }
        let first = &self.events[0];
        let (match_id, cause_id, correlation_id) = (
            first.match_id.clone(),
            first.causation_id.clone(),
            first.correlation_id.clone(),
        );
        let mut em = Emitter::new(&match_id, &cause_id, &correlation_id, first.timestamp);
        em.events = self.events;
        advance(s, &mut em);
        em.events
    }
}

/// Returns the emitted events plus, when `may_advance`, the automatic follow-ups
/// (computed on a clone of `state`, so only inputs that can finish a phase pay for it).
pub(crate) fn finish(
    state: &MatchState,
    mut em: Emitter<'_>,
    may_advance: bool,
) -> Vec<MatchEvent> {
    if may_advance {
        let mut scratch = state.clone();
        for e in &em.events {
            apply(&mut scratch, e);
        }
        advance(&mut scratch, &mut em);
    }
    em.events
}

/// Emits follow-up events while the scratch state allows, applying each to it.
pub(crate) fn advance(scratch: &mut MatchState, em: &mut Emitter<'_>) {
    loop {
        let before = em.events.len();
        step(scratch, em);
        if em.events.len() == before {
            return;
        }
        for e in &em.events[before..] {
            apply(scratch, e);
        }
    }
}

fn step(s: &MatchState, em: &mut Emitter<'_>) {
    match s.status {
        MatchStatus::WaitingForPlayers => {
            if s.total_rounds > 0 && !s.seats.is_empty() && s.free_human_seats() == 0 {
                em.emit(robots_needed(s, 1, em.timestamp));
            }
        }
        MatchStatus::Responding => {
            let Some(cur) = s.current.as_ref() else {
                return;
            };
            if s.seats.iter().all(|seat| has_response(cur, seat.identity)) {
                let mut order: Vec<Identity> = cur.responses.iter().map(|r| r.identity).collect();
                presentation_order(&s.match_id, cur.round, &mut order);
                let responses = order
                    .into_iter()
                    .filter_map(|id| {
                        cur.responses
                            .iter()
                            .find(|r| r.identity == id)
                            .map(|r| PresentedResponse {
                                identity: id,
                                text: r.text.clone(),
                            })
                    })
                    .collect();
                em.emit(VotingStarted {
                    round: cur.round,
                    prompt: cur.prompt.clone(),
                    responses,
                    voting_deadline: em.timestamp.saturating_add(window(s.voting_window_ms)),
                });
            }
        }
        MatchStatus::Voting => {
            let Some(cur) = s.current.as_ref() else {
                return;
            };
            if s.seats.iter().all(|seat| has_vote(cur, seat.identity)) {
                let points = round_points(s.seats.iter().map(|x| (x.identity, x.kind)), &cur.votes);
                let scores = add_points(&s.scores, &points);
                em.emit(RoundCompleted {
                    round: cur.round,
                    points,
                    scores,
                    duration_ms: elapsed(cur.started_at, em.timestamp),
                });
            }
        }
        MatchStatus::RoundCompleted => {
            if s.round < s.total_rounds {
                em.emit(robots_needed(s, s.round + 1, em.timestamp));
            } else {
                em.emit(MatchCompleted {
                    reveal: s.seats.clone(),
                    final_scores: s.scores.clone(),
                    rounds_played: s.round,
                    duration_ms: elapsed(s.created_at, em.timestamp),
                });
            }
        }
        MatchStatus::WaitingForRobots | MatchStatus::Completed => {}
    }
}

fn robots_needed(s: &MatchState, round: u32, now: i64) -> RobotsNeeded {
    let identities: Vec<Identity> = s
        .seats
        .iter()
        .filter(|x| x.kind == SeatKind::Robot)
        .map(|x| x.identity)
        .collect();
    let previous = round.saturating_sub(1);
    let exclude_robots = s
        .seats
        .iter()
        .flat_map(|x| x.voices.iter())
        .filter(|v| v.round == previous)
        .map(|v| v.robot_id.clone())
        .collect();
    RobotsNeeded {
        round,
        count: identities.len() as u32,
        exclude_robots,
        identities,
        deadline: s.robots_window_ms.map(|w| now.saturating_add(window(w))),
    }
}

/// `round.started` for the match's current round at `at`, voiced by `robots` (sorted by
/// seat; empty when the robots did not come before the round's robots deadline).
pub(crate) fn round_started(
    s: &MatchState,
    mut robots: Vec<RobotAssignment>,
    at: i64,
) -> RoundStarted {
    robots.sort_by_key(|r| r.identity);
    let prompt = prompt_for(&s.match_id, s.round);
    RoundStarted {
        round: s.round,
        total_rounds: s.total_rounds,
        prompt: prompt.text.to_owned(),
        prompt_id: prompt.id.to_owned(),
        participants: s.seats.iter().map(|x| x.identity).collect(),
        robots,
        response_deadline: at.saturating_add(window(s.response_window_ms)),
    }
}

pub(crate) fn window(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn elapsed(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}
