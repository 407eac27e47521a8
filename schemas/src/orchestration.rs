//! Topic `robot-orchestration-events` (key: match id): what robot orchestration decides.
//!
//! Events about a match (`round.robots_assigned`, and `robot.released`/`robot.instantiated`
//! caused by one) carry that match's id. Pool-wide events not caused by a match (scale-down
//! after idling) carry `matchId: ""`; the runtime keys them with the pool shard key
//! `pool-s{shard}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::{payload_family, Envelope};
use crate::identity::Identity;

/// One robot voicing one seat for one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RobotAssignment {
    /// Robot instance id, e.g. `robot-s0-curious-student-3`.
    pub robot_id: String,
    /// The seat it voices.
    pub identity: Identity,
    /// Its personality, e.g. `curious-student`.
    pub personality: String,
}

/// `round.robots_assigned`: answer to `round.robots_needed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RobotsAssigned {
    /// Round number.
    pub round: u32,
    /// One entry per robot seat.
    pub robots: Vec<RobotAssignment>,
}

/// `robot.instantiated`: the pool grew by one robot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RobotInstantiated {
    /// New robot id.
    pub robot_id: String,
    /// Its personality.
    pub personality: String,
    /// The pool shard (partition of `match-events`) that owns it.
    pub shard: u32,
}

/// `robot.released`: a robot went back to idle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RobotReleased {
    /// Robot id.
    pub robot_id: String,
    /// The round it had voiced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

/// `robot.pool_scaled`: the number of robots of one personality changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolScaled {
    /// Personality scaled.
    pub personality: String,
    /// Robots of that personality before.
    pub from: u32,
    /// Robots of that personality after.
    pub to: u32,
    /// Why: `min_idle`, `busy_threshold`, `demand`, `idle_timeout`.
    pub reason: String,
    /// The pool shard.
    pub shard: u32,
}

payload_family! {
    /// Payloads of topic `robot-orchestration-events`.
    pub enum OrchestrationEventData for "robot-orchestration-events" {
        "round.robots_assigned" => RobotsAssigned(RobotsAssigned),
        "robot.instantiated" => RobotInstantiated(RobotInstantiated),
        "robot.released" => RobotReleased(RobotReleased),
        "robot.pool_scaled" => PoolScaled(PoolScaled),
    }
}

/// A message of topic `robot-orchestration-events`.
pub type OrchestrationEvent = Envelope<OrchestrationEventData>;
