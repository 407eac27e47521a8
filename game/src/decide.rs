//! Decide: validate an input against the match state and return the events it causes.
//!
//! * `Ok(events)` — the events to append to `match-events` (apply each with
//!   [`evolve`](super::evolve)); ids derive from the input id, timestamps are the input's.
//! * `Ok(vec![])` — nothing to do: a duplicate input (same `eventId` seen recently, or the
//!   same response/vote/join again), a stale orchestration answer, or an orchestration
//!   event the match does not care about.
//! * `Err(Rejection)` — the input is refused with a reason code.
//!
//! Robot answers are lenient where humans are strict: an over-long robot text is
//! truncated, an empty one replaced by fallback text, a duplicate ignored. An answer or
//! vote stamped after its phase's deadline, or arriving after the phase ended, is
//! rejected with `round_over` (for robots, expected after a timeout; adapters may log it
//! instead of dead-lettering it). Lateness is judged by the input's own timestamp, so it
//! does not depend on when the deadline's timeouts ran (see
//! [`GameConfig::deadline_grace_ms`]).
//!
//! ```
//! use game::{decide, handle, GameConfig, MatchInput, RejectionCode};
//! use schemas::{Envelope, MatchCreate, MatchRequest, MatchEventData, VoteSubmit};
//! let cfg = GameConfig::default();
//! let create: MatchRequest = Envelope::new("req-1", "m1", 1_000, "req-1", "req-1",
//!     MatchCreate { template: "duel_2v1".into(), total_rounds: 3, humans: vec![], ..Default::default() });
//! let (state, events) = handle(None, &create.clone().into(), &cfg).unwrap();
//! assert!(matches!(events[0].data, MatchEventData::MatchCreated(_)));
//! // The same request again is a no-op.
//! assert!(decide(state.as_ref(), &create.into(), &cfg).unwrap().is_empty());
//! // A vote before voting opened is rejected with a reason.
//! let vote: MatchRequest = Envelope::new("req-2", "m1", 2_000, "c", "req-2",
//!     VoteSubmit { player_id: "p1".into(), round: 1, voted_for: "A".into() });
//! let err = decide(state.as_ref(), &vote.into(), &cfg).unwrap_err();
//! assert_eq!(err.code, RejectionCode::NotAParticipant);
//! ```

use std::collections::BTreeSet;

use schemas::{
    CommandKind, Identity, MatchCreate, MatchCreated, MatchEvent, MatchJoin, MatchRequest,
    MatchRequestData, MatchState, MatchStatus, OrchestrationEvent, OrchestrationEventData,
    PlayerJoined, PlayerRef, ResponseRecorded, ResponseSource, ResponseSubmit, RobotResponse,
    RobotResponseData, RobotsAssigned, RoundState, Seat, SeatKind, VoteRecorded, VoteSource,
    VoteSubmit,
};

use super::config::GameConfig;
use super::input::MatchInput;
use super::match_state::{has_response, has_vote, MatchStateExt};
use super::prompts::{fallback_choice, fallback_response};
use super::rejection::{reject, Rejection, RejectionCode as Code};
use super::seats::seat_kinds;
use super::sequence::number;
use super::templates::template;
use super::transitions::{round_started, Decided, Emitter};

/// Validates `input` against `state` (`None` = no such match) and returns the events it
/// causes. Pure: same state and input, same events.
pub fn decide(
    state: Option<&MatchState>,
    input: &MatchInput,
    cfg: &GameConfig,
) -> Result<Vec<MatchEvent>, Rejection> {
    let mut events = decide_direct(state, input, cfg)?.on_copy(state);
    number(&mut events, state.map_or(0, |s| s.events_applied));
    Ok(events)
}

/// [`decide`], then fold the events into the state: `(new state, events)`.
/// The state stays `None` only when nothing happened to a match that does not exist.
pub fn handle(
    state: Option<MatchState>,
    input: &MatchInput,
    cfg: &GameConfig,
) -> Result<(Option<MatchState>, Vec<MatchEvent>), Rejection> {
    let mut state = state;
    let events = handle_in_place(&mut state, input, cfg)?;
    Ok((state, events))
}

/// [`handle`] on a state in place: the events, each already applied to `state`; `state`
/// is unchanged when the input is rejected. Equal to [`decide`] followed by a fold with
/// [`evolve`](super::evolve), without copying the state to compute a phase's follow-ups on.
pub fn handle_in_place(
    state: &mut Option<MatchState>,
    input: &MatchInput,
    cfg: &GameConfig,
) -> Result<Vec<MatchEvent>, Rejection> {
    let applied = state.as_ref().map_or(0, |s| s.events_applied);
    let mut events = decide_direct(state.as_ref(), input, cfg)?.apply_to(state);
    number(&mut events, applied);
    Ok(events)
}

/// The events `input` causes directly, and whether they may complete a phase.
fn decide_direct(
    state: Option<&MatchState>,
    input: &MatchInput,
    cfg: &GameConfig,
) -> Result<Decided, Rejection> {
    if let MatchInput::Orchestration(o) = input {
        if !matches!(o.data, OrchestrationEventData::RobotsAssigned(_)) {
            return Ok(Decided::nothing());
        }
    }
    if state.is_some_and(|s| s.has_seen(input.event_id())) {
        return Ok(Decided::nothing());
    }
    match input {
        MatchInput::Request(req) => match &req.data {
            MatchRequestData::Create(c) => create(state, req, c, cfg),
            MatchRequestData::Join(j) => join(existing(state, input)?, req, j, cfg),
            MatchRequestData::Respond(r) => respond(existing(state, input)?, req, r, cfg),
            MatchRequestData::Vote(v) => vote(existing(state, input)?, req, v),
        },
        MatchInput::Robot(r) => robot_answer(existing(state, input)?, r, cfg),
        MatchInput::Orchestration(o) => match &o.data {
            OrchestrationEventData::RobotsAssigned(a) => assigned(existing(state, input)?, o, a),
            _ => Ok(Decided::nothing()),
        },
    }
}

fn existing<'a>(
    state: Option<&'a MatchState>,
    input: &MatchInput,
) -> Result<&'a MatchState, Rejection> {
    state.ok_or_else(|| {
        Rejection::new(
            Code::UnknownMatch,
            format!("no match `{}` for {}", input.match_id(), input.event_type()),
        )
    })
}

fn not_over(s: &MatchState) -> Result<(), Rejection> {
    if s.is_completed() {
        return reject(
            Code::MatchOver,
            format!("match `{}` is completed", s.match_id),
        );
    }
    Ok(())
}

fn emitter<'a, P>(s: &'a MatchState, e: &'a schemas::Envelope<P>) -> Emitter<'a> {
    Emitter::new(&s.match_id, &e.event_id, &e.correlation_id, e.timestamp)
}

fn check_player(p: &PlayerRef, cfg: &GameConfig) -> Result<(), Rejection> {
    if p.player_id.is_empty() || p.player_id.chars().count() > cfg.max_player_id_chars {
        return reject(Code::InvalidPlayer, "player id must be 1..=128 characters");
    }
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > cfg.max_name_chars {
        return reject(
            Code::InvalidPlayer,
            format!("player name must be 1..={} characters", cfg.max_name_chars),
        );
    }
    Ok(())
}

fn create(
    state: Option<&MatchState>,
    req: &MatchRequest,
    c: &MatchCreate,
    cfg: &GameConfig,
) -> Result<Decided, Rejection> {
    if state.is_some() {
        return reject(
            Code::MatchAlreadyExists,
            format!("match `{}` exists", req.match_id),
        );
    }
    if req.match_id.is_empty() {
        return reject(Code::InvalidMatchId, "matchId must not be empty");
    }
    let Some(t) = template(&c.template) else {
        return reject(
            Code::UnknownTemplate,
            format!("unknown template `{}`", c.template),
        );
    };
    if !(cfg.min_rounds..=cfg.max_rounds).contains(&c.total_rounds) {
        return reject(
            Code::TotalRoundsOutOfRange,
            format!(
                "totalRounds {} outside {}..={}",
                c.total_rounds, cfg.min_rounds, cfg.max_rounds
            ),
        );
    }
    let (response_window_ms, voting_window_ms) =
        match cfg.match_windows(c.response_window_ms, c.voting_window_ms) {
            Ok(w) => w,
            Err((field, ms)) => {
                return reject(
                    Code::WindowOutOfRange,
                    format!(
                        "{field} {ms} outside {}..={}",
                        cfg.min_window_ms, cfg.max_window_ms
                    ),
                )
            }
        };
    if c.humans.len() > t.humans as usize {
        return reject(
            Code::TooManyHumans,
            format!("{} humans for {} human seats", c.humans.len(), t.humans),
        );
    }
    let mut ids = BTreeSet::new();
    for p in &c.humans {
        check_player(p, cfg)?;
        if !ids.insert(p.player_id.as_str()) {
            return reject(
                Code::InvalidPlayer,
                format!("player `{}` listed twice", p.player_id),
            );
        }
    }
    let mut humans = c.humans.iter();
    let seats = seat_kinds(&req.match_id, t)
        .into_iter()
        .zip(Identity::ALL)
        .map(|(kind, identity)| {
            let player = (kind == SeatKind::Human).then(|| humans.next()).flatten();
            Seat {
                identity,
                kind,
                player_id: player.map(|p| p.player_id.clone()),
                name: player.map(|p| p.name.trim().to_owned()),
            }
        })
        .collect();
    let mut em = Emitter::new(
        &req.match_id,
        &req.event_id,
        &req.correlation_id,
        req.timestamp,
    );
    em.emit(MatchCreated {
        template: t.name.to_owned(),
        total_rounds: c.total_rounds,
        seats,
        response_window_ms,
        voting_window_ms,
        robots_window_ms: cfg.robots_window_ms,
    });
    Ok(Decided::direct(em, true))
}

fn join(
    s: &MatchState,
    req: &MatchRequest,
    j: &MatchJoin,
    cfg: &GameConfig,
) -> Result<Decided, Rejection> {
    not_over(s)?;
    if s.seat_of_player(&j.player_id).is_some() {
        return Ok(Decided::nothing());
    }
    check_player(
        &PlayerRef {
            player_id: j.player_id.clone(),
            name: j.name.clone(),
        },
        cfg,
    )?;
    let free = s
        .seats
        .iter()
        .find(|x| x.kind == SeatKind::Human && x.player_id.is_none());
    let (Some(seat), MatchStatus::WaitingForPlayers) = (free, s.status) else {
        return reject(
            Code::MatchFull,
            format!("match `{}` has no free human seat", s.match_id),
        );
    };
    let mut em = emitter(s, req);
    em.emit(PlayerJoined {
        identity: seat.identity,
        player_id: j.player_id.clone(),
        name: j.name.trim().to_owned(),
    });
    Ok(Decided::direct(em, s.free_human_seats() == 1))
}

/// The current round if `round` may receive a response stamped `at`: its response phase
/// is open and `at` is not past its deadline.
fn response_phase(s: &MatchState, round: u32, at: i64) -> Result<&RoundState, Rejection> {
    not_over(s)?;
    let over = || {
        reject(
            Code::RoundOver,
            format!("responses for round {round} are closed"),
        )
    };
    let not_started = || {
        reject(
            Code::RoundNotStarted,
            format!("round {round} has not started"),
        )
    };
    if round < s.round {
        return over();
    }
    if round > s.round {
        return not_started();
    }
    match (s.status, s.current.as_ref()) {
        (MatchStatus::Responding, Some(cur)) if at > cur.response_deadline => reject(
            Code::RoundOver,
            format!(
                "responses for round {round} closed at {}; this one is stamped {at}",
                cur.response_deadline
            ),
        ),
        (MatchStatus::Responding, Some(cur)) => Ok(cur),
        (MatchStatus::Voting | MatchStatus::RoundCompleted, _) => over(),
        _ => not_started(),
    }
}

/// The current round if `round` may receive a vote stamped `at`: its voting phase is
/// open and `at` is not past its deadline.
fn vote_phase(s: &MatchState, round: u32, at: i64) -> Result<&RoundState, Rejection> {
    not_over(s)?;
    let over = || {
        reject(
            Code::RoundOver,
            format!("voting for round {round} is closed"),
        )
    };
    let not_open = || {
        reject(
            Code::VotingNotOpen,
            format!("voting for round {round} is not open"),
        )
    };
    if round < s.round {
        return over();
    }
    if round > s.round {
        return not_open();
    }
    match (s.status, s.current.as_ref()) {
        (MatchStatus::Voting, Some(cur)) if cur.voting_deadline.is_some_and(|d| at > d) => reject(
            Code::RoundOver,
            format!(
                "voting for round {round} closed at {}; this vote is stamped {at}",
                cur.voting_deadline.unwrap_or_default()
            ),
        ),
        (MatchStatus::Voting, Some(cur)) => Ok(cur),
        (MatchStatus::RoundCompleted, _) => over(),
        _ => not_open(),
    }
}

fn pending_responses(s: &MatchState, cur: &RoundState) -> usize {
    s.seats.len() - cur.responses.len() - cur.timed_out_responses.len()
}

fn pending_votes(s: &MatchState, cur: &RoundState) -> usize {
    s.seats.len() - cur.votes.len() - cur.timed_out_votes.len()
}

fn vote_target(s: &MatchState, voter: Identity, voted_for: &str) -> Result<Identity, Rejection> {
    let Some(target) = Identity::parse(voted_for).filter(|id| s.seat(*id).is_some()) else {
        return reject(
            Code::InvalidIdentity,
            format!("`{voted_for}` is not a seat of match `{}`", s.match_id),
        );
    };
    if target == voter {
        return reject(Code::SelfVote, format!("{voter} cannot vote for itself"));
    }
    Ok(target)
}

fn respond(
    s: &MatchState,
    req: &MatchRequest,
    r: &ResponseSubmit,
    cfg: &GameConfig,
) -> Result<Decided, Rejection> {
    not_over(s)?;
    let Some(seat) = s.seat_of_player(&r.player_id) else {
        return reject(
            Code::NotAParticipant,
            format!("player `{}` is not in the match", r.player_id),
        );
    };
    let cur = response_phase(s, r.round, req.timestamp)?;
    if r.text.trim().is_empty() {
        return reject(Code::EmptyText, "response text is empty");
    }
    if r.text.len() > cfg.max_text_chars && r.text.chars().count() > cfg.max_text_chars {
        return reject(
            Code::TextTooLong,
            format!("response longer than {} characters", cfg.max_text_chars),
        );
    }
    if let Some(prev) = cur.responses.iter().find(|x| x.identity == seat.identity) {
        if prev.text == r.text {
            return Ok(Decided::nothing());
        }
        return reject(
            Code::AlreadyResponded,
            format!("{} already responded", seat.identity),
        );
    }
    let mut em = emitter(s, req);
    em.emit(ResponseRecorded {
        round: r.round,
        identity: seat.identity,
        text: r.text.clone(),
        source: ResponseSource::Human,
        robot_id: None,
        model: None,
        latency_ms: None,
        tokens: None,
    });
    Ok(Decided::direct(em, pending_responses(s, cur) == 1))
}

fn vote(s: &MatchState, req: &MatchRequest, v: &VoteSubmit) -> Result<Decided, Rejection> {
    not_over(s)?;
    let Some(seat) = s.seat_of_player(&v.player_id) else {
        return reject(
            Code::NotAParticipant,
            format!("player `{}` is not in the match", v.player_id),
        );
    };
    let cur = vote_phase(s, v.round, req.timestamp)?;
    let target = vote_target(s, seat.identity, &v.voted_for)?;
    if let Some(prev) = cur.votes.iter().find(|x| x.voter == seat.identity) {
        if prev.voted_for == target {
            return Ok(Decided::nothing());
        }
        return reject(
            Code::AlreadyVoted,
            format!("{} already voted", seat.identity),
        );
    }
    let mut em = emitter(s, req);
    em.emit(VoteRecorded {
        round: v.round,
        voter: seat.identity,
        voted_for: target,
        source: VoteSource::Human,
    });
    Ok(Decided::direct(em, pending_votes(s, cur) == 1))
}

fn check_assigned(cur: &RoundState, identity: Identity, robot_id: &str) -> Result<(), Rejection> {
    if cur
        .robots
        .iter()
        .any(|a| a.identity == identity && a.robot_id == robot_id)
    {
        return Ok(());
    }
    reject(
        Code::RobotNotAssigned,
        format!(
            "robot `{robot_id}` does not voice {identity} in round {}",
            cur.round
        ),
    )
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

fn robot_answer(
    s: &MatchState,
    input: &RobotResponse,
    cfg: &GameConfig,
) -> Result<Decided, Rejection> {
    not_over(s)?;
    let (robot_id, identity, round) = match &input.data {
        RobotResponseData::ResponseSubmitted(r) => (&r.robot_id, &r.identity, r.round),
        RobotResponseData::VoteSubmitted(v) => (&v.robot_id, &v.identity, v.round),
        RobotResponseData::Failed(f) => (&f.robot_id, &f.identity, f.round),
    };
    let Some(identity) = Identity::parse(identity) else {
        return reject(
            Code::InvalidIdentity,
            format!("`{identity}` is not an identity"),
        );
    };
    if s.seat(identity).is_none_or(|x| x.kind != SeatKind::Robot) {
        return reject(
            Code::NotAParticipant,
            format!("{identity} is not a robot seat"),
        );
    }
    let is_vote = match &input.data {
        RobotResponseData::VoteSubmitted(_) => true,
        RobotResponseData::Failed(f) => f.kind == CommandKind::Vote,
        RobotResponseData::ResponseSubmitted(_) => false,
    };
    let mut em = emitter(s, input);
    if is_vote {
        let cur = vote_phase(s, round, input.timestamp)?;
        check_assigned(cur, identity, robot_id)?;
        if has_vote(cur, identity) {
            return Ok(Decided::nothing());
        }
        let (voted_for, source) = match &input.data {
            RobotResponseData::VoteSubmitted(v) => {
                (vote_target(s, identity, &v.voted_for)?, VoteSource::Robot)
            }
            _ => {
                let mut candidates: Vec<Identity> = cur
                    .presentation
                    .iter()
                    .copied()
                    .filter(|c| *c != identity)
                    .collect();
                if candidates.is_empty() {
                    candidates = s
                        .seats
                        .iter()
                        .map(|x| x.identity)
                        .filter(|c| *c != identity)
                        .collect();
                }
                let Some(pick) = fallback_choice(&s.match_id, round, identity, &candidates) else {
                    return Ok(Decided::nothing());
                };
                (pick, VoteSource::Fallback)
            }
        };
        em.emit(VoteRecorded {
            round,
            voter: identity,
            voted_for,
            source,
        });
        return Ok(Decided::direct(em, pending_votes(s, cur) == 1));
    }
    let cur = response_phase(s, round, input.timestamp)?;
    check_assigned(cur, identity, robot_id)?;
    if has_response(cur, identity) {
        return Ok(Decided::nothing());
    }
    let (text, source) = match &input.data {
        RobotResponseData::ResponseSubmitted(r) if !r.text.trim().is_empty() => (
            truncate_chars(&r.text, cfg.max_text_chars).to_owned(),
            ResponseSource::Robot,
        ),
        RobotResponseData::ResponseSubmitted(_) => (
            fallback_response(&s.match_id, round, identity).to_owned(),
            ResponseSource::Fallback,
        ),
        _ => (
            fallback_response(&s.match_id, round, identity).to_owned(),
            ResponseSource::Fallback,
        ),
    };
    // The model, latency and tokens come in as event data (never read here), so a
    // replay records the same values.
    let (model, latency_ms, tokens) = match &input.data {
        RobotResponseData::ResponseSubmitted(r) => {
            (Some(r.model.clone()), Some(r.latency_ms), Some(r.tokens))
        }
        _ => (None, None, None),
    };
    em.emit(ResponseRecorded {
        round,
        identity,
        text,
        source,
        robot_id: Some(robot_id.clone()),
        model,
        latency_ms,
        tokens,
    });
    Ok(Decided::direct(em, pending_responses(s, cur) == 1))
}

fn assigned(
    s: &MatchState,
    o: &OrchestrationEvent,
    a: &RobotsAssigned,
) -> Result<Decided, Rejection> {
    if a.round > s.round && !s.is_completed() {
        return reject(
            Code::InvalidAssignment,
            format!("round {} was not requested", a.round),
        );
    }
    if s.status != MatchStatus::WaitingForRobots || a.round != s.round {
        return Ok(Decided::nothing()); // duplicate or stale answer
    }
    let robot_seats: BTreeSet<Identity> = s
        .seats
        .iter()
        .filter(|x| x.kind == SeatKind::Robot)
        .map(|x| x.identity)
        .collect();
    let assigned_seats: BTreeSet<Identity> = a.robots.iter().map(|r| r.identity).collect();
    let robot_ids: BTreeSet<&str> = a.robots.iter().map(|r| r.robot_id.as_str()).collect();
    if assigned_seats != robot_seats
        || a.robots.len() != robot_seats.len()
        || robot_ids.len() != a.robots.len()
        || robot_ids.contains("")
    {
        return reject(
            Code::InvalidAssignment,
            format!("assignment must give each robot seat {robot_seats:?} its own robot"),
        );
    }
    let mut em = emitter(s, o);
    em.emit(round_started(s, a.robots.clone(), o.timestamp));
    Ok(Decided::direct(em, false))
}
