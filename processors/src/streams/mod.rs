//! The RobotOrchestra topology: the game domain plugged into the runtime.
//!
//! [`game_topology`] declares everything in one place (sources, processors, stores,
//! sinks), the way Goka's `DefineGroup` does; `orchestra describe` prints it.
//!
//! ```
//! let t = processors::streams::game_topology(&processors::streams::GameSettings::default());
//! let text = t.describe(Some("robotorchestra")).to_text();
//! assert!(text.contains("Processor: match"));
//! assert!(text.contains("robotorchestra-matches-changelog"));
//! assert!(text.contains("-> sink by-window: robotorchestra-match-stats-repartition"));
//! ```

mod codec;
mod history_processor;
mod match_processor;
mod orchestration_processor;
pub mod sequence;
mod stats_processor;
pub mod topics;

use std::time::Duration;

use schemas::MatchEventData;
use topology::{ProcessorDef, SharedDecoder, Topology, TopologyBuilder};

use crate::game::stats::StatsConfig;
use crate::game::{GameConfig, MatchInput, PoolConfig};
pub use history_processor::{HistoryInput, HistoryProcessor};
pub use match_processor::MatchProcessor;
pub use orchestration_processor::OrchestrationProcessor;
pub use stats_processor::StatsProcessor;

/// Store names.
pub mod stores {
    /// Match state per match id (match processor).
    pub const MATCHES: &str = "matches";
    /// Deadline index `"{deadline:020}|{matchId}"` (match processor).
    pub const DEADLINES: &str = "match-deadlines";
    /// The robot pool shard of the task (orchestration), key `pool`.
    pub const ROBOT_POOL: &str = "robot-pool";
    /// History documents being built (history view).
    pub const HISTORY: &str = "match-history-view";
    /// Stats windows (stats).
    pub const STATS: &str = "match-stats-windows";
}

/// Settings of the game topology.
#[derive(Debug, Clone)]
pub struct GameSettings {
    pub game: GameConfig,
    pub pool: PoolConfig,
    pub stats: StatsConfig,
    /// How often deadlines are checked (wall clock).
    pub deadline_check: Duration,
    /// How often the pool's idle scale-down runs (wall clock).
    pub pool_tick: Duration,
}

impl Default for GameSettings {
    fn default() -> Self {
        Self {
            game: GameConfig::default(),
            pool: PoolConfig::for_shard(0),
            stats: StatsConfig::default(),
            deadline_check: Duration::from_millis(500),
            pool_tick: Duration::from_secs(5),
        }
    }
}

impl GameSettings {
    /// Robots answer after their think time, having read the answers given meanwhile
    /// (issue 15 item 4): `think_time_ms` per personality (e.g.
    /// [`Personalities::think_times_ms`](crate::robots::Personalities::think_times_ms))
    /// goes to the pool, whose tick then runs at least every 250 ms so that held answer
    /// commands are issued close to their due time. Empty: no change.
    pub fn with_think_times(
        mut self,
        think_time_ms: std::collections::BTreeMap<String, (i64, i64)>,
    ) -> Self {
        if !think_time_ms.is_empty() {
            self.pool_tick = self.pool_tick.min(Duration::from_millis(250));
        }
        self.pool.think_time_ms = think_time_ms;
        self
    }
}

/// The whole RobotOrchestra topology.
pub fn game_topology(settings: &GameSettings) -> Topology {
    use topics::*;
    let mut b = TopologyBuilder::new();
    // History → stats, re-keyed by stats window: `<application.id>-match-stats-repartition`.
    let by_window = b.repartition(STATS_REPARTITION);
    let s = settings.clone();
    b.add_processor(
        ProcessorDef::new("match", move |_| {
            MatchProcessor::new(s.game.clone(), s.deadline_check)
        })
        .input(MATCH_REQUESTS, |b| {
            codec::decode(b).map(|r| Some(MatchInput::Request(r)))
        })
        .input(ROBOT_RESPONSES, |b| {
            codec::decode(b).map(|r| Some(MatchInput::Robot(r)))
        })
        // Only `round.robots_assigned` concerns a match; pool events are skipped undecoded.
        .input(ROBOT_ORCHESTRATION_EVENTS, |b| {
            codec::decode_if(b, &[schemas::RobotsAssigned::EVENT_TYPE])
                .map(|o| o.map(MatchInput::Orchestration))
        })
        .store(stores::MATCHES)
        .store(stores::DEADLINES)
        .sink("events", MATCH_EVENTS)
        .sink("state", MATCH_STATE)
        // Its state is the fold of its events: after a crash it folds the events it had
        // published beyond its last commit instead of deciding their inputs again.
        .recover_from("events"),
    );
    // The pool and the history view read every `match-events` record: decoded once for both.
    let match_events = SharedDecoder::new(codec::decode::<MatchEventData>);
    let s = settings.clone();
    b.add_processor(
        ProcessorDef::new("robot-orchestration", move |task| {
            OrchestrationProcessor::new(s.pool.clone(), task.partition as u32, s.pool_tick)
        })
        .input_shared(MATCH_EVENTS, &match_events, |ev, _| Ok(ev))
        .store(stores::ROBOT_POOL)
        .sink("events", ROBOT_ORCHESTRATION_EVENTS)
        .sink("commands", ROBOT_COMMANDS)
        .sink("pool", ROBOT_POOL_STATE),
    );
    let s = settings.clone();
    b.add_processor(
        ProcessorDef::new("history", move |_| HistoryProcessor::new(s.stats.clone()))
            .input_shared(MATCH_EVENTS, &match_events, |event, raw| {
                Ok(history_processor::HistoryInput {
                    event,
                    raw: raw.to_vec(),
                })
            })
            .store(stores::HISTORY)
            .sink("history", MATCH_HISTORY)
            .sink("by-window", &by_window),
    );
    let s = settings.clone();
    b.add_processor(
        ProcessorDef::new("stats", move |_| StatsProcessor::new(s.stats.clone()))
            .input(&by_window, codec::decode_document)
            .store(stores::STATS)
            .sink("stats", MATCH_STATS),
    );
    b.build().expect("the game topology is valid")
}
