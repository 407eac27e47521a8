//! A tiny in-memory world that wires the pure functions together the way the runtime
//! will: match processor ⇄ orchestration pool ⇄ scripted robots, plus history and stats.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use schemas::{
    Envelope, Identity, MatchEvent, MatchEventData, MatchHistory, MatchRequest, MatchRequestData,
    MatchState, MatchStatus, OrchestrationEventData, RobotCommand, RobotCommandData, RobotResponse,
    RobotResponseData, SeatKind,
};

use crate::history::evolve_history;
use crate::{
    decide, due_timeouts, evolve, handle_in_place, GameConfig, MatchInput, MatchStateExt, Pool,
    PoolConfig, PoolOutput, Rejection,
};

/// What a scripted robot does with a command.
pub type RobotScript = Box<dyn FnMut(&RobotCommand) -> Option<RobotResponseData>>;

/// Robots that answer everything: text for responses, the first candidate for votes.
pub fn diligent_robots() -> RobotScript {
    Box::new(|cmd| Some(diligent_answer(cmd)))
}

pub fn diligent_answer(cmd: &RobotCommand) -> RobotResponseData {
    match &cmd.data {
        RobotCommandData::GenerateResponse(g) => {
            RobotResponseData::ResponseSubmitted(schemas::ResponseSubmitted {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                identity: g.identity.to_string(),
                round: g.round,
                text: format!("{} thinks about '{}'", g.personality, g.prompt),
                model: "scripted".into(),
                latency_ms: 5,
                tokens: 12,
            })
        }
        RobotCommandData::GenerateVote(g) => {
            let target = g
                .candidates
                .first()
                .map(|c| c.identity.to_string())
                .unwrap_or_else(|| "A".into());
            RobotResponseData::VoteSubmitted(schemas::VoteSubmitted {
                command_id: g.command_id.clone(),
                robot_id: g.robot_id.clone(),
                identity: g.identity.to_string(),
                round: g.round,
                voted_for: target,
            })
        }
    }
}

pub struct World {
    pub cfg: GameConfig,
    pub pool_cfg: PoolConfig,
    pub pool: Pool,
    /// Each match's state as the match processor leaves it, stores it and publishes it to
    /// `match-state`: `handle_in_place` for inputs, `due_timeouts` + `evolve` for
    /// deadlines. Never a fold of [`World::log`], so that comparing it with one
    /// ([`World::replay`]) compares two different computations.
    pub matches: BTreeMap<String, MatchState>,
    pub histories: BTreeMap<String, MatchHistory>,
    pub log: Vec<MatchEvent>,
    pub commands: VecDeque<RobotCommand>,
    pub pool_outputs: Vec<PoolOutput>,
    pub rejections: Vec<Rejection>,
    pub now: i64,
    next_id: u64,
    /// Robot ids voicing an active round, for the "one robot, one seat" invariant.
    active_robots: BTreeMap<String, (String, Identity)>,
}

impl World {
    pub fn new() -> Self {
        World::with(GameConfig::default(), PoolConfig::default())
    }

    pub fn with(cfg: GameConfig, pool_cfg: PoolConfig) -> Self {
        World {
            cfg,
            pool_cfg,
            pool: Pool::new(),
            matches: BTreeMap::new(),
            histories: BTreeMap::new(),
            log: Vec::new(),
            commands: VecDeque::new(),
            pool_outputs: Vec::new(),
            rejections: Vec::new(),
            now: 1_700_000_000_000,
            next_id: 0,
            active_robots: BTreeMap::new(),
        }
    }

    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    pub fn request_envelope(
        &mut self,
        match_id: &str,
        data: impl Into<MatchRequestData>,
    ) -> MatchRequest {
        self.now += 10;
        let id = self.fresh_id("req");
        Envelope::new(id.clone(), match_id, self.now, id.clone(), id, data)
    }

    /// Sends a request; returns the events it caused directly (follow-ups included).
    pub fn request(
        &mut self,
        match_id: &str,
        data: impl Into<MatchRequestData>,
    ) -> Result<Vec<MatchEvent>, Rejection> {
        let env = self.request_envelope(match_id, data);
        self.send(MatchInput::Request(env))
    }

    /// Runs one input through the match processor (`handle_in_place`, as the processor
    /// does) and everything downstream. The processor's state becomes the match's state.
    ///
    /// Every input is also run through `decide` and `evolve`, which must give the same
    /// events and the same state.
    pub fn send(&mut self, input: MatchInput) -> Result<Vec<MatchEvent>, Rejection> {
        let match_id = input.match_id().to_owned();
        let result = decide(self.matches.get(&match_id), &input, &self.cfg);
        let mut in_place = self.matches.get(&match_id).cloned();
        let in_place_result = handle_in_place(&mut in_place, &input, &self.cfg);
        assert_eq!(in_place_result, result, "handle_in_place vs decide");
        let mut folded = self.matches.get(&match_id).cloned();
        for e in result.iter().flatten() {
            folded = Some(evolve(folded, e));
        }
        assert_eq!(in_place, folded, "handle_in_place state vs decide + evolve");
        if let Some(state) = in_place {
            self.matches.insert(match_id, state);
        }
        match result {
            Ok(events) => {
                self.publish(&events);
                Ok(events)
            }
            Err(r) => {
                self.rejections.push(r.clone());
                Err(r)
            }
        }
    }

    /// Appends events the match processor published to the log and runs them through the
    /// history view and the pool (whose assignments go back to the match processor).
    fn publish(&mut self, events: &[MatchEvent]) {
        let mut feedback = Vec::new();
        for ev in events {
            let h = self.histories.remove(&ev.match_id);
            self.histories
                .insert(ev.match_id.clone(), evolve_history(h, ev));
            self.log.push(ev.clone());
            self.track_robots(ev);
            for out in self.pool.on_match_event(&self.pool_cfg, ev) {
                match &out {
                    PoolOutput::Event(e)
                        if matches!(e.data, OrchestrationEventData::RobotsAssigned(_)) =>
                    {
                        feedback.push(e.clone());
                    }
                    PoolOutput::Command(c) => self.commands.push_back(c.clone()),
                    _ => {}
                }
                self.pool_outputs.push(out);
            }
        }
        for e in feedback {
            let _ = self.send(MatchInput::Orchestration(e));
        }
    }

    fn track_robots(&mut self, ev: &MatchEvent) {
        match &ev.data {
            MatchEventData::RoundStarted(r) => {
                for a in &r.robots {
                    let prev = self
                        .active_robots
                        .insert(a.robot_id.clone(), (ev.match_id.clone(), a.identity));
                    assert!(
                        prev.is_none(),
                        "robot {} voices two seats: {prev:?} and {}/{}",
                        a.robot_id,
                        ev.match_id,
                        a.identity
                    );
                }
            }
            MatchEventData::RoundCompleted(_) | MatchEventData::MatchCompleted(_) => {
                self.active_robots.retain(|_, (m, _)| m != &ev.match_id);
            }
            _ => {}
        }
    }

    /// Delivers queued robot commands through `script` until none are left.
    pub fn run_robots(&mut self, script: &mut RobotScript) {
        while let Some(cmd) = self.commands.pop_front() {
            if let Some(answer) = script(&cmd) {
                self.now += 1;
                let id = self.fresh_id("rr");
                let env: RobotResponse = Envelope::new(
                    id,
                    cmd.match_id.clone(),
                    self.now,
                    cmd.correlation_id.clone(),
                    cmd.event_id.clone(),
                    answer,
                );
                let _ = self.send(MatchInput::Robot(env));
            }
        }
    }

    /// Fires every deadline of every match (jumping the clock to it).
    pub fn fire_next_deadline(&mut self) -> bool {
        let next = self
            .matches
            .values()
            .filter_map(|s| s.next_deadline())
            .min();
        let Some(deadline) = next else { return false };
        self.now = self.now.max(deadline);
        // As the match processor's punctuator: each match's due timeouts, evolved into its
        // state, then published.
        let mut due: Vec<MatchEvent> = Vec::new();
        for state in self.matches.values_mut() {
            let events = due_timeouts(state, self.now);
            for e in &events {
                *state = evolve(Some(state.clone()), e);
            }
            due.extend(events);
        }
        self.publish(&due);
        true
    }

    /// Humans respond and vote whenever they can (vote target chosen by `pick`).
    pub fn humans_act(&mut self, match_id: &str, pick: &dyn Fn(&MatchState, Identity) -> Identity) {
        let Some(state) = self.matches.get(match_id).cloned() else {
            return;
        };
        let Some(cur) = state.current.clone() else {
            return;
        };
        for seat in state.seats.iter().filter(|s| s.kind == SeatKind::Human) {
            let Some(player) = seat.player_id.clone() else {
                continue;
            };
            let res = match state.status {
                MatchStatus::Responding
                    if !cur.responses.iter().any(|r| r.identity == seat.identity) =>
                {
                    self.request(
                        match_id,
                        schemas::ResponseSubmit {
                            player_id: player,
                            round: cur.round,
                            text: format!("human {} answer r{}", seat.identity, cur.round),
                        },
                    )
                }
                MatchStatus::Voting if !cur.votes.iter().any(|v| v.voter == seat.identity) => {
                    let target = pick(&state, seat.identity);
                    self.request(
                        match_id,
                        schemas::VoteSubmit {
                            player_id: player,
                            round: cur.round,
                            voted_for: target.to_string(),
                        },
                    )
                }
                _ => continue,
            };
            if let Err(e) = res {
                // The phase may have moved on within this loop (last response/vote).
                assert!(
                    matches!(
                        e.code,
                        crate::RejectionCode::RoundOver | crate::RejectionCode::VotingNotOpen
                    ),
                    "{e}"
                );
            }
        }
    }

    /// Plays `match_id` to the end: humans act, robots follow `script`, deadlines fire
    /// when nothing else moves.
    pub fn play(
        &mut self,
        match_id: &str,
        script: &mut RobotScript,
        pick: &dyn Fn(&MatchState, Identity) -> Identity,
    ) {
        for _ in 0..1000 {
            let Some(before) = self.matches.get(match_id).map(|s| s.events_applied) else {
                return;
            };
            if self.matches.get(match_id).is_some_and(|s| s.is_completed()) {
                return;
            }
            self.humans_act(match_id, pick);
            self.run_robots(script);
            let after = self.matches.get(match_id).map(|s| s.events_applied);
            if after == Some(before) && !self.fire_next_deadline() {
                panic!(
                    "match {match_id} is stuck: {:?}",
                    self.matches.get(match_id).map(|s| s.status)
                );
            }
        }
        panic!("match {match_id} did not finish");
    }

    /// Folds the published log of `match_id` from empty (what `orchestra replay` does).
    pub fn replay(&self, match_id: &str) -> Option<MatchState> {
        self.log
            .iter()
            .filter(|e| e.match_id == match_id)
            .fold(None, |s, e| Some(evolve(s, e)))
    }

    pub fn events_of(&self, match_id: &str) -> Vec<&MatchEvent> {
        self.log.iter().filter(|e| e.match_id == match_id).collect()
    }

    pub fn event_types(&self, match_id: &str) -> Vec<&'static str> {
        self.events_of(match_id)
            .iter()
            .map(|e| e.event_type())
            .collect()
    }
}

/// A human's vote: the first other seat in identity order.
pub fn first_other(state: &MatchState, me: Identity) -> Identity {
    state
        .seats
        .iter()
        .map(|s| s.identity)
        .find(|i| *i != me)
        .unwrap_or(me)
}

/// Checks the invariants every finished (or running) match must satisfy.
pub fn check_invariants(world: &World, match_id: &str) {
    let state = world.matches.get(match_id).expect("match exists");
    // The fold of the published log is byte for byte the state the processor published.
    let replayed = world.replay(match_id).expect("replay");
    assert_eq!(
        serde_json::to_vec(&replayed).expect("json"),
        serde_json::to_vec(state).expect("json"),
        "replay of {match_id} differs from the state the match processor published"
    );
    // Scores are the scoring rule applied to the recorded votes.
    let kinds: BTreeMap<Identity, SeatKind> =
        state.seats.iter().map(|s| (s.identity, s.kind)).collect();
    let mut expected: BTreeMap<Identity, u32> = kinds.keys().map(|k| (*k, 0)).collect();
    let mut started = BTreeSet::new();
    let mut completed = BTreeSet::new();
    for ev in world.events_of(match_id) {
        match &ev.data {
            MatchEventData::VoteRecorded(v) => {
                assert_ne!(v.voter, v.voted_for, "self vote recorded");
                match kinds.get(&v.voted_for) {
                    Some(SeatKind::Human) => *expected.entry(v.voter).or_default() += 1,
                    Some(SeatKind::Robot) if kinds.get(&v.voter) == Some(&SeatKind::Human) => {
                        *expected.entry(v.voted_for).or_default() += 1;
                    }
                    _ => {}
                }
            }
            MatchEventData::RoundStarted(r) => {
                assert!(started.insert(r.round), "round {} started twice", r.round);
                let ids: BTreeSet<&str> = r.robots.iter().map(|a| a.robot_id.as_str()).collect();
                assert_eq!(ids.len(), r.robots.len(), "one robot voices two seats");
            }
            MatchEventData::RoundCompleted(r) => {
                assert!(
                    completed.insert(r.round),
                    "round {} completed twice",
                    r.round
                );
                assert_eq!(r.scores, expected, "scores after round {}", r.round);
            }
            MatchEventData::MatchCompleted(m) => assert_eq!(m.final_scores, expected),
            _ => {}
        }
    }
    assert_eq!(state.scores, expected);
    if state.is_completed() {
        assert_eq!(started, completed, "every started round completes");
        assert_eq!(started.len() as u32, state.total_rounds);
    }
    // Event ids are unique.
    let ids: BTreeSet<&str> = world
        .events_of(match_id)
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(
        ids.len(),
        world.events_of(match_id).len(),
        "duplicate event ids"
    );
}
