//! Robot orchestration: a pool of robot instances per shard, assigned per round.
//!
//! The pool consumes `match-events` (one pool per partition = shard; the shard is part of
//! every robot id, `robot-s{shard}-{personality}-{n}`) and produces
//! [`PoolOutput`]s: orchestration events, robot commands and robot documents.
//!
//! Rules (seed 002):
//! * `round.robots_needed` → pick one robot per robot seat, never one robot for two seats,
//!   honouring `excludeRobots` (relaxed only when no robot is busy, i.e. when waiting could
//!   never help). Personalities rotate per seat and round. If the pool cannot serve the
//!   request even after growing to `max_total`, the request waits in a FIFO queue (a new
//!   request never overtakes a queued one).
//! * `round.started` → `generate.response` for each assigned robot (and the round's
//!   request leaves the queue: a round that started without robots no longer waits).
//!   With a think time configured for the robot's personality
//!   ([`PoolConfig::think_time_ms`]) the command is held in the pool as a
//!   [`PendingAnswer`] instead, due `round.started` + think time (at most half the
//!   response window): every `response.recorded` of the round seen meanwhile is added to
//!   its `context.otherResponses` (never the robot's own seat), so the robot reads the room
//!   (issue 15 item 4). A held command is issued by the first match event (of any match of
//!   the shard) whose timestamp reaches the due time, before that event is applied, or by
//!   the wall-clock tick ([`Pool::on_tick`]) if no event comes. Its id and timestamp (the
//!   due time) derive from `round.started` alone and it is part of the pool's stored
//!   state, so replaying the log yields the same command; only which answers it carries
//!   depends on the events applied before it fired (all of them when an event fires it).
//!   `round.voting_started`, `round.completed`, `match.completed` or the robot's own
//!   recorded answer drop a held command (too late to matter).
//!   `round.voting_started` → `generate.vote` (candidates exclude the robot's own seat).
//! * `round.completed` / `match.completed` → `robot.released`, then the queue is served.
//! * Scaling: at least `min_idle_per_type` idle robots per personality, grow while
//!   ≥ `scale_up_busy_percent` of robots are busy, never more than `max_total`;
//!   [`Pool::on_tick`] retires robots idle for `idle_period_ms` (keeping the minimum).
//!
//! Timestamps of outputs are the causing event's (or the tick's `now`), ids derive from
//! the cause, so reprocessing yields identical outputs.
//!
//! ```
//! use game::orchestration::{Pool, PoolConfig, PoolOutput};
//! use schemas::{Envelope, MatchEvent, RobotsNeeded, Identity, OrchestrationEventData};
//! let cfg = PoolConfig::default();
//! let mut pool = Pool::new();
//! let needed: MatchEvent = Envelope::new("e1", "m1", 1_000, "c", "r1", RobotsNeeded {
//!     round: 1, count: 2, exclude_robots: vec![], identities: Identity::ALL[..2].to_vec(),
//!     deadline: None });
//! let out = pool.on_match_event(&cfg, &needed);
//! let assigned = out.iter().any(|o| matches!(o, PoolOutput::Event(e)
//!     if matches!(e.data, OrchestrationEventData::RobotsAssigned(_))));
//! assert!(assigned);
//! assert_eq!(pool.busy_count(), 2);
//! assert!(pool.take_dirty());
//! ```

use std::collections::{BTreeMap, VecDeque};

use schemas::{
    EarlierRound, Envelope, GenerateResponse, GenerateVote, Identity, MatchEvent, MatchEventData,
    OrchestrationEvent, OrchestrationEventData, PoolScaled, PresentedResponse, ResponseContext,
    RobotAssignment, RobotCommand, RobotCommandData, RobotInstantiated, RobotPoolState,
    RobotReleased, RobotStatus, RobotsAssigned, SCHEMA_VERSION,
};
use serde::{Deserialize, Serialize};

use super::ids::{derive_event_id, fingerprint};
pub use super::pool_config::{PoolConfig, DEFAULT_PERSONALITIES};
use super::sequence::{position, Position};

/// A `round.robots_needed` waiting for robots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedRequest {
    /// Match asking.
    pub match_id: String,
    /// Round to voice.
    pub round: u32,
    /// Robot seats.
    pub identities: Vec<Identity>,
    /// Robots to avoid.
    pub exclude_robots: Vec<String>,
    /// Correlation id of the request.
    pub correlation_id: String,
    /// When it was asked.
    pub requested_at: i64,
}

/// A `generate.response` held until its robot's think time has passed (see the module
/// docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingAnswer {
    /// Epoch millis at which the command is issued.
    pub due: i64,
    /// The command; its `otherResponses` grows as answers are recorded.
    pub command: RobotCommand,
}

impl PendingAnswer {
    fn response(&self) -> Option<&GenerateResponse> {
        match &self.command.data {
            RobotCommandData::GenerateResponse(g) => Some(g),
            RobotCommandData::GenerateVote(_) => None,
        }
    }
}

/// Something the pool wants written.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolOutput {
    /// To `robot-orchestration-events`, key = `matchId` (or `pool-s{shard}` when empty).
    Event(OrchestrationEvent),
    /// To `robot-commands`, key = `matchId`.
    Command(RobotCommand),
    /// To `robot-pool-state`, key = `robotId` (a `retired` robot may be tombstoned).
    Robot(RobotPoolState),
}

/// The state of one pool shard (store value of `robot-pool`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Live robots by id.
    pub robots: BTreeMap<String, RobotPoolState>,
    /// Requests waiting for robots, oldest first.
    pub queue: VecDeque<QueuedRequest>,
    /// Next instance number per personality (ids are never reused).
    pub next_index: BTreeMap<String, u32>,
    /// Per running match, the `sequence` of the last event the pool applied.
    #[serde(default)]
    pub positions: BTreeMap<String, u64>,
    /// Matches completed most recently, oldest first (at most [`FINISHED_CAP`]): every
    /// event of theirs that comes again is a redelivered duplicate.
    #[serde(default)]
    pub finished: VecDeque<String>,
    /// Answer commands waiting for their robot's think time, in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_answers: Vec<PendingAnswer>,
    /// Per running match, its latest [`EARLIER_ROUNDS`] rounds' answers as voters saw
    /// them, oldest first: the `earlierRounds` of the robots' answer commands. Dropped with
    /// the match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub earlier_rounds: BTreeMap<String, Vec<EarlierRound>>,
    #[serde(skip)]
    dirty: bool,
}

/// How many of a match's latest completed rounds an answer command carries (commands and
/// the pool's state stay small however long the match).
pub const EARLIER_ROUNDS: usize = 3;

/// How many completed matches a pool remembers to recognise their redelivered events
/// (redelivery after a crash reaches back one commit interval, a few matches at most).
pub const FINISHED_CAP: usize = 1024;

enum Pick {
    Existing(String),
    New(usize),
}

/// Collects outputs with deterministic ids.
struct Out<'a> {
    cause_id: &'a str,
    timestamp: i64,
    outputs: Vec<PoolOutput>,
}

impl Out<'_> {
    fn next_id(&self, match_id: &str) -> String {
        derive_event_id(match_id, self.cause_id, self.outputs.len())
    }

    fn event(
        &mut self,
        match_id: &str,
        correlation_id: &str,
        data: impl Into<OrchestrationEventData>,
    ) {
        let id = self.next_id(match_id);
        self.outputs.push(PoolOutput::Event(Envelope {
            event_id: id,
            schema_version: SCHEMA_VERSION,
            match_id: match_id.to_owned(),
            timestamp: self.timestamp,
            correlation_id: correlation_id.to_owned(),
            causation_id: self.cause_id.to_owned(),
            sequence: None,
            data: data.into(),
        }));
    }

    fn command(&mut self, ev: &MatchEvent, build: impl FnOnce(String) -> RobotCommandData) {
        let id = self.next_id(&ev.match_id);
        self.outputs.push(PoolOutput::Command(Envelope {
            event_id: id.clone(),
            schema_version: SCHEMA_VERSION,
            match_id: ev.match_id.clone(),
            timestamp: self.timestamp,
            correlation_id: ev.correlation_id.clone(),
            causation_id: self.cause_id.to_owned(),
            sequence: None,
            data: build(id),
        }));
    }
}

impl Pool {
    /// An empty pool (it fills itself to the idle minimum on the first event or tick).
    pub fn new() -> Self {
        Pool::default()
    }

    /// Whether the pool changed since the last call (then the store should be written).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Robots currently busy.
    pub fn busy_count(&self) -> usize {
        self.robots
            .values()
            .filter(|r| r.status == RobotStatus::Busy)
            .count()
    }

    /// Idle robots of a personality.
    pub fn idle_count(&self, personality: &str) -> usize {
        self.robots
            .values()
            .filter(|r| r.status == RobotStatus::Idle && r.personality == personality)
            .count()
    }

    /// Where `ev` stands for the pool: only [`Position::Next`] events are applied by
    /// [`Pool::on_match_event`].
    pub fn position_of(&self, ev: &MatchEvent) -> Position {
        if self.finished.iter().any(|m| *m == ev.match_id) {
            return Position::Duplicate;
        }
        position(
            self.positions.get(&ev.match_id).copied().unwrap_or(0),
            ev.sequence,
        )
    }

    /// Reacts to one `match-events` record (every event of a match, in order: the pool
    /// remembers each match's position). An event that is not the next one of its match
    /// ([`Pool::position_of`]) has no effect.
    pub fn on_match_event(&mut self, cfg: &PoolConfig, ev: &MatchEvent) -> Vec<PoolOutput> {
        if self.position_of(ev) != Position::Next {
            return Vec::new();
        }
        if let Some(seq) = ev.sequence {
            self.positions.insert(ev.match_id.clone(), seq);
            self.dirty = true;
        }
        if matches!(ev.data, MatchEventData::MatchCompleted(_)) {
            self.positions.remove(&ev.match_id);
            self.earlier_rounds.remove(&ev.match_id);
            if self.finished.len() >= FINISHED_CAP {
                self.finished.pop_front();
            }
            self.finished.push_back(ev.match_id.clone());
            self.dirty = true;
        }
        let mut out = Out {
            cause_id: &ev.event_id,
            timestamp: ev.timestamp,
            outputs: Vec::new(),
        };
        self.fire_due(&mut out, ev.timestamp);
        match &ev.data {
            MatchEventData::RobotsNeeded(r) => {
                let known = self
                    .queue
                    .iter()
                    .any(|q| q.match_id == ev.match_id && q.round == r.round)
                    || self.robots.values().any(|x| {
                        x.match_id.as_deref() == Some(ev.match_id.as_str())
                            && x.round == Some(r.round)
                    });
                if !known {
                    self.ensure_min_idle(cfg, &mut out, &ev.match_id);
                    self.queue.push_back(QueuedRequest {
                        match_id: ev.match_id.clone(),
                        round: r.round,
                        identities: r.identities.clone(),
                        exclude_robots: r.exclude_robots.clone(),
                        correlation_id: ev.correlation_id.clone(),
                        requested_at: ev.timestamp,
                    });
                    self.dirty = true;
                    self.serve_queue(cfg, &mut out);
                    self.scale_up(cfg, &mut out, &ev.match_id);
                }
            }
            MatchEventData::RoundStarted(r) => {
                // A round that started (without robots, past its robots deadline) no
                // longer waits for them.
                self.unqueue(|q| q.match_id == ev.match_id && q.round == r.round);
                let earlier = self
                    .earlier_rounds
                    .get(&ev.match_id)
                    .cloned()
                    .unwrap_or_default();
                for (k, a) in r.robots.iter().enumerate() {
                    let build = |command_id: String, others| {
                        GenerateResponse {
                            command_id,
                            robot_id: a.robot_id.clone(),
                            personality: a.personality.clone(),
                            identity: a.identity,
                            round: r.round,
                            prompt: r.prompt.clone(),
                            context: ResponseContext {
                                other_responses_so_far: others,
                                earlier_rounds: earlier.clone(),
                                total_rounds: r.total_rounds,
                            },
                            deadline: r.response_deadline,
                        }
                        .into()
                    };
                    // Held commands get ids of their own (not the output index), so
                    // issuing them later never shifts other outputs' ids.
                    let held_id =
                        derive_event_id(&ev.match_id, &format!("{}:think:{k}", ev.event_id), 0);
                    let delay = cfg.think_delay_ms(&a.personality, &held_id);
                    if delay <= 0 {
                        out.command(ev, |command_id| build(command_id, None));
                        continue;
                    }
                    let window = (r.response_deadline - ev.timestamp).max(0);
                    let due = ev.timestamp + delay.min(window / 2);
                    self.pending_answers.push(PendingAnswer {
                        due,
                        command: Envelope {
                            event_id: held_id.clone(),
                            schema_version: SCHEMA_VERSION,
                            match_id: ev.match_id.clone(),
                            timestamp: due,
                            correlation_id: ev.correlation_id.clone(),
                            causation_id: ev.event_id.clone(),
                            sequence: None,
                            data: build(held_id, Some(Vec::new())),
                        },
                    });
                    self.dirty = true;
                }
            }
            MatchEventData::ResponseRecorded(rec) => {
                let before = self.pending_answers.len();
                self.pending_answers.retain(|p| {
                    !p.response().is_some_and(|g| {
                        p.command.match_id == ev.match_id
                            && g.round == rec.round
                            && g.identity == rec.identity
                    })
                });
                self.dirty |= before != self.pending_answers.len();
                for p in &mut self.pending_answers {
                    if p.command.match_id != ev.match_id {
                        continue;
                    }
                    if let RobotCommandData::GenerateResponse(g) = &mut p.command.data {
                        if g.round == rec.round {
                            g.context
                                .other_responses_so_far
                                .get_or_insert_with(Vec::new)
                                .push(PresentedResponse {
                                    identity: rec.identity,
                                    text: rec.text.clone(),
                                });
                            self.dirty = true;
                        }
                    }
                }
            }
            MatchEventData::VotingStarted(v) => {
                self.drop_pending(&ev.match_id, Some(v.round));
                let rounds = self.earlier_rounds.entry(ev.match_id.clone()).or_default();
                if !rounds.iter().any(|e| e.round == v.round) {
                    rounds.push(EarlierRound {
                        round: v.round,
                        prompt: v.prompt.clone(),
                        responses: v.responses.clone(),
                    });
                    if rounds.len() > EARLIER_ROUNDS {
                        rounds.remove(0);
                    }
                    self.dirty = true;
                }
                let mut voters: Vec<(Identity, String, String)> = self
                    .robots
                    .values()
                    .filter(|x| {
                        x.match_id.as_deref() == Some(ev.match_id.as_str())
                            && x.round == Some(v.round)
                    })
                    .filter_map(|x| {
                        x.identity
                            .map(|i| (i, x.robot_id.clone(), x.personality.clone()))
                    })
                    .collect();
                voters.sort();
                for (identity, robot_id, personality) in voters {
                    out.command(ev, |command_id| {
                        GenerateVote {
                            command_id,
                            robot_id,
                            personality,
                            identity,
                            round: v.round,
                            prompt: v.prompt.clone(),
                            candidates: v
                                .responses
                                .iter()
                                .filter(|c| c.identity != identity)
                                .cloned()
                                .collect(),
                            deadline: v.voting_deadline,
                        }
                        .into()
                    });
                }
            }
            MatchEventData::RoundCompleted(r) => {
                self.drop_pending(&ev.match_id, Some(r.round));
                self.release(&mut out, ev, Some(r.round));
                self.serve_queue(cfg, &mut out);
                self.scale_up(cfg, &mut out, &ev.match_id);
            }
            MatchEventData::MatchCompleted(_) => {
                self.drop_pending(&ev.match_id, None);
                self.release(&mut out, ev, None);
                self.unqueue(|q| q.match_id == ev.match_id);
                self.serve_queue(cfg, &mut out);
                self.scale_up(cfg, &mut out, &ev.match_id);
            }
            _ => {}
        }
        out.outputs
    }

    /// Issues the held answer commands due at `now` (in due order, then creation order).
    fn fire_due(&mut self, out: &mut Out<'_>, now: i64) {
        if !self.pending_answers.iter().any(|p| p.due <= now) {
            return;
        }
        let (mut due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_answers)
            .into_iter()
            .partition(|p| p.due <= now);
        self.pending_answers = rest;
        due.sort_by_key(|p| p.due);
        for p in due {
            out.outputs.push(PoolOutput::Command(p.command));
        }
        self.dirty = true;
    }

    /// Drops held answer commands of `match_id` (and `round`, when given).
    fn drop_pending(&mut self, match_id: &str, round: Option<u32>) {
        let before = self.pending_answers.len();
        self.pending_answers.retain(|p| {
            p.command.match_id != match_id
                || round.is_some_and(|r| p.response().is_some_and(|g| g.round != r))
        });
        self.dirty |= before != self.pending_answers.len();
    }

    /// Wall-clock punctuation: issues held answer commands that are due, fills the idle
    /// minimum and retires robots idle for at least
    /// `idle_period_ms` at `now_ms` (never below the minimum). Outputs carry `now_ms` as
    /// their timestamp and `matchId: ""`.
    pub fn on_tick(&mut self, cfg: &PoolConfig, now_ms: i64) -> Vec<PoolOutput> {
        let cause = format!("pool-tick:{}:{now_ms}", cfg.shard);
        let mut out = Out {
            cause_id: &cause,
            timestamp: now_ms,
            outputs: Vec::new(),
        };
        self.fire_due(&mut out, now_ms);
        let mut expired: Vec<(i64, String)> = self
            .robots
            .values()
            .filter(|r| r.status == RobotStatus::Idle)
            .filter_map(|r| r.idle_since.map(|t| (t, r.robot_id.clone())))
            .filter(|(t, _)| now_ms.saturating_sub(*t) >= cfg.idle_period_ms)
            .collect();
        expired.sort();
        for (_, id) in expired {
            let Some(p) = self.robots.get(&id).map(|r| r.personality.clone()) else {
                continue;
            };
            if self.idle_count(&p) <= cfg.min_idle_per_type as usize {
                continue;
            }
            let from = self.count_of(&p);
            if let Some(mut robot) = self.robots.remove(&id) {
                robot.status = RobotStatus::Retired;
                robot.idle_since = None;
                robot.updated_at = now_ms;
                out.outputs.push(PoolOutput::Robot(robot));
                out.event("", "", pool_scaled(cfg, &p, from, from - 1, "idle_timeout"));
                self.dirty = true;
            }
        }
        self.ensure_min_idle(cfg, &mut out, "");
        out.outputs
    }

    fn count_of(&self, personality: &str) -> u32 {
        self.robots
            .values()
            .filter(|r| r.personality == personality)
            .count() as u32
    }

    fn instantiate(
        &mut self,
        cfg: &PoolConfig,
        out: &mut Out<'_>,
        p: usize,
        reason: &str,
        match_id: &str,
    ) -> String {
        let personality = cfg.personalities[p].clone();
        let n = self.next_index.entry(personality.clone()).or_insert(0);
        *n += 1;
        let robot_id = format!("robot-s{}-{personality}-{n}", cfg.shard);
        let from = self.count_of(&personality);
        let robot = RobotPoolState {
            schema_version: SCHEMA_VERSION,
            robot_id: robot_id.clone(),
            shard: cfg.shard,
            personality: personality.clone(),
            status: RobotStatus::Idle,
            match_id: None,
            identity: None,
            round: None,
            idle_since: Some(out.timestamp),
            created_at: out.timestamp,
            updated_at: out.timestamp,
            assignments_total: 0,
        };
        self.robots.insert(robot_id.clone(), robot.clone());
        out.event(
            match_id,
            "",
            RobotInstantiated {
                robot_id: robot_id.clone(),
                personality: personality.clone(),
                shard: cfg.shard,
            },
        );
        out.event(
            match_id,
            "",
            pool_scaled(cfg, &personality, from, from + 1, reason),
        );
        out.outputs.push(PoolOutput::Robot(robot));
        self.dirty = true;
        robot_id
    }

    fn ensure_min_idle(&mut self, cfg: &PoolConfig, out: &mut Out<'_>, match_id: &str) {
        for p in 0..cfg.personalities.len() {
            while self.idle_count(&cfg.personalities[p]) < cfg.min_idle_per_type as usize
                && (self.robots.len() as u32) < cfg.max_total
            {
                self.instantiate(cfg, out, p, "min_idle", match_id);
            }
        }
    }

    fn scale_up(&mut self, cfg: &PoolConfig, out: &mut Out<'_>, match_id: &str) {
        self.ensure_min_idle(cfg, out, match_id);
        while (self.robots.len() as u32) < cfg.max_total
            && !self.robots.is_empty()
            && self.busy_count() * 100 >= self.robots.len() * cfg.scale_up_busy_percent as usize
        {
            let Some(p) = (0..cfg.personalities.len())
                .min_by_key(|p| (self.count_of(&cfg.personalities[*p]), *p))
            else {
                return;
            };
            self.instantiate(cfg, out, p, "busy_threshold", match_id);
        }
    }

    /// Serves queued requests in order until the head cannot be served.
    fn serve_queue(&mut self, cfg: &PoolConfig, out: &mut Out<'_>) {
        while let Some(req) = self.queue.front() {
            let plan = self.plan(cfg, req, true).or_else(|| {
                if self.busy_count() == 0 {
                    self.plan(cfg, req, false)
                } else {
                    None
                }
            });
            let Some(plan) = plan else { return };
            let Some(req) = self.queue.pop_front() else {
                return;
            };
            self.assign(cfg, out, &req, plan);
        }
    }

    /// One robot per seat: an idle one (preferred personality first), else a new one.
    fn plan(
        &self,
        cfg: &PoolConfig,
        req: &QueuedRequest,
        honour_exclude: bool,
    ) -> Option<Vec<Pick>> {
        let n = cfg.personalities.len();
        if n == 0 {
            return None;
        }
        let room = (cfg.max_total as usize).saturating_sub(self.robots.len());
        let seed = fingerprint(&req.match_id) as usize;
        let mut taken: Vec<&str> = Vec::with_capacity(req.identities.len());
        let mut picks = Vec::with_capacity(req.identities.len());
        let mut new_robots = 0;
        for k in 0..req.identities.len() {
            let start = seed.wrapping_add(req.round as usize).wrapping_add(k) % n;
            let idle = (0..n).find_map(|i| {
                let p = &cfg.personalities[(start + i) % n];
                self.robots
                    .values()
                    .filter(|r| r.status == RobotStatus::Idle && &r.personality == p)
                    .filter(|r| !taken.contains(&r.robot_id.as_str()))
                    .filter(|r| !honour_exclude || !req.exclude_robots.contains(&r.robot_id))
                    .min_by_key(|r| (r.idle_since, &r.robot_id))
            });
            match idle {
                Some(r) => {
                    taken.push(&r.robot_id);
                    picks.push(Pick::Existing(r.robot_id.clone()));
                }
                None if new_robots < room => {
                    new_robots += 1;
                    picks.push(Pick::New(start));
                }
                None => return None,
            }
        }
        Some(picks)
    }

    fn assign(
        &mut self,
        cfg: &PoolConfig,
        out: &mut Out<'_>,
        req: &QueuedRequest,
        plan: Vec<Pick>,
    ) {
        let mut robots = Vec::with_capacity(plan.len());
        for (pick, identity) in plan.into_iter().zip(&req.identities) {
            let robot_id = match pick {
                Pick::Existing(id) => id,
                Pick::New(p) => self.instantiate(cfg, out, p, "demand", &req.match_id),
            };
            let Some(robot) = self.robots.get_mut(&robot_id) else {
                continue;
            };
            robot.status = RobotStatus::Busy;
            robot.match_id = Some(req.match_id.clone());
            robot.identity = Some(*identity);
            robot.round = Some(req.round);
            robot.idle_since = None;
            robot.updated_at = out.timestamp;
            robot.assignments_total += 1;
            robots.push(RobotAssignment {
                robot_id: robot_id.clone(),
                identity: *identity,
                personality: robot.personality.clone(),
            });
            out.outputs.push(PoolOutput::Robot(robot.clone()));
        }
        robots.sort_by_key(|r| r.identity);
        out.event(
            &req.match_id,
            &req.correlation_id,
            RobotsAssigned {
                round: req.round,
                robots,
            },
        );
        self.dirty = true;
    }

    /// Removes the queued requests `gone` selects (the pool is dirty if any was queued).
    fn unqueue(&mut self, gone: impl Fn(&QueuedRequest) -> bool) {
        let before = self.queue.len();
        self.queue.retain(|q| !gone(q));
        self.dirty |= before != self.queue.len();
    }

    /// Releases the robots busy with the event's match (and `round`, when given).
    fn release(&mut self, out: &mut Out<'_>, ev: &MatchEvent, round: Option<u32>) {
        let ids: Vec<String> = self
            .robots
            .values()
            .filter(|r| r.match_id.as_deref() == Some(ev.match_id.as_str()))
            .filter(|r| round.is_none() || r.round == round)
            .map(|r| r.robot_id.clone())
            .collect();
        for id in ids {
            let Some(robot) = self.robots.get_mut(&id) else {
                continue;
            };
            let was_round = robot.round;
            robot.status = RobotStatus::Idle;
            robot.match_id = None;
            robot.identity = None;
            robot.round = None;
            robot.idle_since = Some(out.timestamp);
            robot.updated_at = out.timestamp;
            let doc = robot.clone();
            out.event(
                &ev.match_id,
                &ev.correlation_id,
                RobotReleased {
                    robot_id: id,
                    round: was_round,
                },
            );
            out.outputs.push(PoolOutput::Robot(doc));
            self.dirty = true;
        }
    }
}

fn pool_scaled(
    cfg: &PoolConfig,
    personality: &str,
    from: u32,
    to: u32,
    reason: &str,
) -> PoolScaled {
    PoolScaled {
        personality: personality.to_owned(),
        from,
        to,
        reason: reason.to_owned(),
        shard: cfg.shard,
    }
}
