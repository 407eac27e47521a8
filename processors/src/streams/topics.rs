//! Topic names (DESIGN §4). Partition counts and retention live in `deploy/topics.json`.

pub const MATCH_REQUESTS: &str = "match-requests";
pub const ROBOT_RESPONSES: &str = "robot-responses";
pub const ROBOT_ORCHESTRATION_EVENTS: &str = "robot-orchestration-events";
pub const MATCH_EVENTS: &str = "match-events";
pub const ROBOT_COMMANDS: &str = "robot-commands";
pub const MATCH_STATE: &str = "match-state";
pub const ROBOT_POOL_STATE: &str = "robot-pool-state";
pub const MATCH_HISTORY: &str = "match-history";
pub const MATCH_STATS: &str = "match-stats";
/// Name of the repartition topic carrying final histories re-keyed by stats window, so one
/// task owns each window. It is internal to the topology: the runtime names it
/// `<application.id>-match-stats-repartition` and creates it (not in [`ALL`]).
pub const STATS_REPARTITION: &str = "match-stats";

/// Every topic of the game the user creates (`deploy/topics.json`).
pub const ALL: [&str; 9] = [
    MATCH_REQUESTS,
    ROBOT_RESPONSES,
    ROBOT_ORCHESTRATION_EVENTS,
    MATCH_EVENTS,
    ROBOT_COMMANDS,
    MATCH_STATE,
    ROBOT_POOL_STATE,
    MATCH_HISTORY,
    MATCH_STATS,
];
