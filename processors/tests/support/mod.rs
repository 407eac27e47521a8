//! Shared harness of the game acceptance tests: plays matches through the topology test
//! driver. Requests and robot answers are piped in as JSON envelopes; the topology feeds
//! `match-events` → orchestration → `robot-orchestration-events` → match processor by
//! itself. Robots answer `robot-commands` with the offline personality engine; humans are
//! played by the test (or by [`Humans`], a small policy). Record timestamps and envelope
//! timestamps are the driver's wall clock, so deadlines and pool idleness line up.
#![allow(dead_code)]

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use processors::game::templates::template;
use processors::game::MatchStateExt;
use processors::robots::Personalities;
use processors::streams::{game_topology, stores, topics, GameSettings};
use schemas::{
    Envelope, MatchCreate, MatchEvent, MatchHistory, MatchJoin, MatchRequestData, MatchState,
    MatchStatus, Payload, PlayerRef, ResponseSubmit, RobotCommand, RobotResponse,
    RobotResponseData, SeatKind, VoteSubmit,
};
use topology::{
    partition_for, DriverConfig, OutRecord, SledStoreConfig, StoreBackend, TopologyTestDriver,
};

mod checks;
mod players;

// Each test binary uses its own subset.
#[allow(unused_imports)]
pub use checks::{assert_no_robot_in_two_seats, assert_scores_follow_rule};
#[allow(unused_imports)]
pub use players::{human_pick, offline_answer, player, seat_of};

/// Application id of the driver (the DLQ is `<APP>-dlq`).
pub const APP: &str = "orchestra-test";
/// Initial wall clock and first record timestamp.
pub const T0: i64 = 1_700_000_000_000;
/// Partitions of every topic.
pub const PARTITIONS: i32 = 4;

/// Which phase a human acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Respond,
    Vote,
}

/// How the automatic humans behave: who stays silent when, and whom they vote for.
#[derive(Default)]
pub struct Humans {
    /// `(player id, round, phase)` in which the player never acts.
    pub silent: BTreeSet<(String, u32, Phase)>,
}

impl Humans {
    /// Silences `player` in `round` for `phase`.
    pub fn silence(&mut self, player: &str, round: u32, phase: Phase) {
        self.silent.insert((player.to_owned(), round, phase));
    }

    fn acts(&self, player: &str, round: u32, phase: Phase) -> bool {
        !self.silent.contains(&(player.to_owned(), round, phase))
    }
}

/// Whether a robot answers a command (`false` = it never answers).
pub type RobotPolicy = Box<dyn FnMut(&RobotCommand) -> bool>;

/// A topology test driver running the game topology, plus players.
pub struct Game {
    pub driver: TopologyTestDriver,
    pub settings: GameSettings,
    pub humans: Humans,
    pub robots: RobotPolicy,
    /// Pipe every envelope twice (a producer retry): must change nothing.
    pub echo: bool,
    /// Every robot command read so far, in order.
    pub commands: Vec<RobotCommand>,
    pending: VecDeque<RobotCommand>,
    book: Personalities,
    seq: u64,
    _dir: Option<tempfile::TempDir>,
}

/// Settings with short deadline checks and pool ticks.
pub fn settings() -> GameSettings {
    GameSettings {
        deadline_check: Duration::from_millis(500),
        pool_tick: Duration::from_secs(1),
        ..GameSettings::default()
    }
}

impl Game {
    /// In-memory stores.
    pub fn new(settings: GameSettings) -> Self {
        Self::with_backend(settings, StoreBackend::Memory, None)
    }

    /// In-memory stores, committing every `n` records (and whenever the clock advances)
    /// instead of after every record.
    pub fn committing_every(settings: GameSettings, n: u64) -> Self {
        Self::with_backend_at(settings, StoreBackend::Memory, None, T0, n)
    }

    /// sled stores in a temporary directory.
    pub fn sled(settings: GameSettings) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = StoreBackend::Sled {
            state_dir: dir.path().to_path_buf(),
            config: SledStoreConfig::default(),
        };
        Self::with_backend(settings, backend, Some(dir))
    }

    /// Stops this driver and starts a new one on the same sled state, with the same
    /// clock, ids and pending robot commands: the processors start from their stores
    /// (nothing in memory survives), as after a restart. Outputs start empty.
    pub fn restart(mut self) -> Self {
        self.collect_commands();
        let dir = self._dir.take().expect("restart needs the sled backend");
        let backend = StoreBackend::Sled {
            state_dir: dir.path().to_path_buf(),
            config: SledStoreConfig::default(),
        };
        let now = self.now();
        let Game {
            driver,
            settings,
            humans,
            robots,
            echo,
            commands,
            pending,
            seq,
            ..
        } = self;
        drop(driver);
        let mut g = Self::with_backend_at(settings, backend, Some(dir), now, 1);
        g.humans = humans;
        g.robots = robots;
        g.echo = echo;
        g.commands = commands;
        g.pending = pending;
        g.seq = seq;
        g
    }

    fn with_backend(
        settings: GameSettings,
        backend: StoreBackend,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        Self::with_backend_at(settings, backend, dir, T0, 1)
    }

    fn with_backend_at(
        settings: GameSettings,
        backend: StoreBackend,
        dir: Option<tempfile::TempDir>,
        wall_clock_ms: i64,
        commit_every: u64,
    ) -> Self {
        let config = DriverConfig {
            partitions: PARTITIONS,
            backend,
            commit_every,
            wall_clock_ms,
            ..DriverConfig::default()
        };
        let mut driver =
            TopologyTestDriver::with_config(game_topology(&settings), APP, config).expect("driver");
        // Wall-clock punctuators start counting at the first observation of the clock.
        driver
            .advance_wall_clock(Duration::ZERO)
            .expect("arm punctuators");
        Game {
            driver,
            settings,
            humans: Humans::default(),
            robots: Box::new(|_| true),
            echo: false,
            commands: Vec::new(),
            pending: VecDeque::new(),
            book: Personalities::builtin(),
            seq: 0,
            _dir: dir,
        }
    }

    /// The driver's wall clock (also the timestamp of everything piped in).
    pub fn now(&self) -> i64 {
        self.driver.wall_clock_ms()
    }

    /// Advances the wall clock (firing due punctuators).
    pub fn advance(&mut self, ms: i64) {
        self.driver
            .advance_wall_clock(Duration::from_millis(ms.max(0) as u64))
            .expect("advance wall clock");
    }

    /// A fresh id with `prefix`.
    pub fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{}", self.seq)
    }

    // ----- input -------------------------------------------------------------------------

    /// Pipes raw bytes into `topic` under `key` at the current time.
    pub fn pipe_raw(&mut self, topic: &str, key: &str, value: &[u8]) {
        let now = self.now();
        self.driver.pipe(topic, key, value, now).expect("pipe");
    }

    /// Pipes an envelope.
    pub fn pipe_envelope<P: Payload>(&mut self, topic: &str, key: &str, env: &Envelope<P>) {
        let bytes = env.to_json_vec().expect("encode");
        self.pipe_raw(topic, key, &bytes);
        if self.echo {
            self.pipe_raw(topic, key, &bytes);
        }
    }

    /// A request envelope for `match_id` with a fresh id, at the current time.
    pub fn request_envelope(
        &mut self,
        match_id: &str,
        data: impl Into<MatchRequestData>,
    ) -> Envelope<MatchRequestData> {
        let id = self.next_id("req");
        Envelope::new(id.clone(), match_id, self.now(), id.clone(), id, data)
    }

    /// Pipes a request into `match-requests`; returns its event id.
    pub fn request(&mut self, match_id: &str, data: impl Into<MatchRequestData>) -> String {
        let env = self.request_envelope(match_id, data);
        self.pipe_envelope(topics::MATCH_REQUESTS, match_id, &env);
        env.event_id
    }

    /// Creates a match with no humans seated yet.
    pub fn create(&mut self, match_id: &str, template: &str, rounds: u32) -> String {
        self.request(
            match_id,
            MatchCreate {
                template: template.into(),
                total_rounds: rounds,
                humans: vec![],
                ..Default::default()
            },
        )
    }

    /// Creates a match with every human seat taken at creation (`{match}-p{i}`).
    pub fn create_seated(&mut self, match_id: &str, template_name: &str, rounds: u32) {
        let humans = (0..template(template_name).expect("template").humans)
            .map(|i| PlayerRef {
                player_id: player(match_id, i),
                name: format!("Player {i}"),
            })
            .collect();
        self.request(
            match_id,
            MatchCreate {
                template: template_name.into(),
                total_rounds: rounds,
                humans,
                ..Default::default()
            },
        );
    }

    /// Creates a match and lets its humans (`{match}-p{i}`) join one by one.
    pub fn create_and_join(&mut self, match_id: &str, template_name: &str, rounds: u32) {
        self.create(match_id, template_name, rounds);
        for i in 0..template(template_name).expect("template").humans {
            self.request(
                match_id,
                MatchJoin {
                    player_id: player(match_id, i),
                    name: format!("Player {i}"),
                },
            );
        }
    }

    /// A human's response.
    pub fn respond(&mut self, match_id: &str, player_id: &str, round: u32, text: &str) -> String {
        self.request(
            match_id,
            ResponseSubmit {
                player_id: player_id.into(),
                round,
                text: text.into(),
            },
        )
    }

    /// A human's vote.
    pub fn vote(&mut self, match_id: &str, player_id: &str, round: u32, voted_for: &str) -> String {
        self.request(
            match_id,
            VoteSubmit {
                player_id: player_id.into(),
                round,
                voted_for: voted_for.into(),
            },
        )
    }

    /// Pipes a robot answer into `robot-responses`.
    pub fn robot_answer(&mut self, match_id: &str, cause: &str, data: RobotResponseData) {
        let id = self.next_id("rr");
        let env: RobotResponse = Envelope::new(
            id,
            match_id,
            self.now(),
            format!("corr-{match_id}"),
            cause,
            data,
        );
        self.pipe_envelope(topics::ROBOT_RESPONSES, match_id, &env);
    }

    // ----- robots ------------------------------------------------------------------------

    fn collect_commands(&mut self) {
        for rec in self.driver.read_output(topics::ROBOT_COMMANDS) {
            let cmd: RobotCommand =
                schemas::decode(rec.value.as_deref().expect("command value")).expect("command");
            assert_eq!(
                rec.key_str(),
                cmd.match_id,
                "robot commands are keyed by match"
            );
            self.commands.push(cmd.clone());
            self.pending.push_back(cmd);
        }
    }

    /// The offline engine's answer to a command.
    pub fn offline_answer(&self, cmd: &RobotCommand) -> RobotResponseData {
        offline_answer(&self.book, cmd)
    }

    /// Answers every pending robot command (and those they cause) that the robot policy
    /// lets through; returns how many answers were piped.
    pub fn answer_robots(&mut self) -> usize {
        let mut answered = 0;
        loop {
            self.collect_commands();
            let Some(cmd) = self.pending.pop_front() else {
                return answered;
            };
            if !(self.robots)(&cmd) {
                continue;
            }
            let data = self.offline_answer(&cmd);
            self.robot_answer(&cmd.match_id.clone(), &cmd.event_id.clone(), data);
            answered += 1;
        }
    }

    /// Drops pending robot commands without answering them.
    pub fn drop_pending_commands(&mut self) -> Vec<RobotCommand> {
        self.collect_commands();
        self.pending.drain(..).collect()
    }

    // ----- humans ------------------------------------------------------------------------

    /// Humans of `match_id` act once where the policy lets them; returns how many acted.
    pub fn humans_act(&mut self, match_id: &str) -> usize {
        let Some(state) = self.state(match_id) else {
            return 0;
        };
        let Some(cur) = state.current.clone() else {
            return 0;
        };
        let mut acted = 0;
        for seat in &state.seats {
            let (SeatKind::Human, Some(player)) = (seat.kind, seat.player_id.clone()) else {
                continue;
            };
            match state.status {
                MatchStatus::Responding
                    if !cur.responses.iter().any(|r| r.identity == seat.identity)
                        && !cur.timed_out_responses.contains(&seat.identity)
                        && self.humans.acts(&player, cur.round, Phase::Respond) =>
                {
                    let text = format!(
                        "honestly, {} would say something about round {}",
                        player, cur.round
                    );
                    self.respond(match_id, &player, cur.round, &text);
                    acted += 1;
                }
                MatchStatus::Voting
                    if !cur.votes.iter().any(|v| v.voter == seat.identity)
                        && !cur.timed_out_votes.contains(&seat.identity)
                        && self.humans.acts(&player, cur.round, Phase::Vote) =>
                {
                    let target = human_pick(&state, seat.identity);
                    self.vote(match_id, &player, cur.round, target.as_str());
                    acted += 1;
                }
                _ => {}
            }
        }
        acted
    }

    /// Plays `match_ids` until each is completed: robots answer, humans act, think time
    /// passes, and when nothing moves the clock jumps to the next deadline.
    pub fn play(&mut self, match_ids: &[&str]) {
        for _ in 0..10_000 {
            let mut moved = self.answer_robots();
            for m in match_ids {
                moved += self.humans_act(m);
            }
            if moved > 0 {
                self.advance(250); // think time; far below any deadline
                continue;
            }
            let active: Vec<MatchState> = match_ids
                .iter()
                .filter_map(|m| self.state(m))
                .filter(|s| !s.is_completed())
                .collect();
            if active.is_empty() && match_ids.iter().all(|m| self.state(m).is_some()) {
                return;
            }
            let next = active.iter().filter_map(|s| s.next_deadline()).min();
            match next {
                Some(d) => {
                    // Timeouts fire a grace period after the deadline. At most 5 s at a
                    // time, so that robots of other matches (ones not played here) answer
                    // their commands in time, as they would in real time.
                    let grace = self.settings.game.deadline_grace_ms as i64;
                    let by = ((d - self.now()).max(0) + grace + 1_000).min(5_000);
                    self.advance(by);
                }
                None => panic!(
                    "matches are stuck: {:?}",
                    active
                        .iter()
                        .map(|s| (&s.match_id, s.status, s.round))
                        .collect::<Vec<_>>()
                ),
            }
        }
        panic!("matches did not finish");
    }

    // ----- reading -----------------------------------------------------------------------

    /// The match state in the `matches` store.
    pub fn state(&self, match_id: &str) -> Option<MatchState> {
        self.driver
            .store_get(stores::MATCHES, match_id)
            .expect("store")
            .map(|b| serde_json::from_slice(&b).expect("state"))
    }

    /// Every `match-events` record so far, decoded, in output order.
    pub fn events(&self) -> Vec<MatchEvent> {
        self.driver
            .peek_output(topics::MATCH_EVENTS)
            .iter()
            .map(|r| {
                let ev: MatchEvent =
                    schemas::decode(r.value.as_deref().expect("event")).expect("event");
                assert_eq!(r.key_str(), ev.match_id, "match events are keyed by match");
                ev
            })
            .collect()
    }

    /// The events of one match.
    pub fn events_of(&self, match_id: &str) -> Vec<MatchEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.match_id == match_id)
            .collect()
    }

    /// `eventType`s of one match.
    pub fn event_types(&self, match_id: &str) -> Vec<&'static str> {
        self.events_of(match_id)
            .iter()
            .map(|e| e.event_type())
            .collect()
    }

    /// The last value written under `key` to `topic` (`Some(None)` = tombstone).
    pub fn last_value(&self, topic: &str, key: &str) -> Option<Option<Vec<u8>>> {
        self.driver
            .peek_output(topic)
            .into_iter()
            .rev()
            .find(|r| r.key_str() == key)
            .map(|r| r.value)
    }

    /// The last `match-state` snapshot of a match.
    pub fn state_snapshot(&self, match_id: &str) -> Option<MatchState> {
        self.last_value(topics::MATCH_STATE, match_id)
            .flatten()
            .map(|b| serde_json::from_slice(&b).expect("state snapshot"))
    }

    /// The `match-history` document of a match.
    pub fn history(&self, match_id: &str) -> Option<MatchHistory> {
        self.last_value(topics::MATCH_HISTORY, match_id)
            .flatten()
            .map(|b| serde_json::from_slice(&b).expect("history"))
    }

    /// DLQ records so far.
    pub fn dlq(&self) -> Vec<OutRecord> {
        self.driver.peek_output(&self.driver.dlq_topic())
    }

    /// Orchestration events so far.
    pub fn orchestration_events(&self) -> Vec<schemas::OrchestrationEvent> {
        self.driver
            .peek_output(topics::ROBOT_ORCHESTRATION_EVENTS)
            .iter()
            .map(|r| {
                schemas::decode(r.value.as_deref().expect("value")).expect("orchestration event")
            })
            .collect()
    }
}

/// `n` match ids with `prefix` whose key lands on `partition`.
pub fn ids_on_partition(prefix: &str, partition: i32, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|id| partition_for(id.as_bytes(), PARTITIONS) == partition)
        .take(n)
        .collect()
}
