//! `robot-pool-state`: one document per robot instance.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{document, schema_version_v1};
use crate::identity::Identity;

/// Lifecycle of a robot instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RobotStatus {
    /// Available for assignment.
    Idle,
    /// Voicing a seat.
    Busy,
    /// Scaled down; the id is never reused.
    Retired,
}

/// Value of `robot-pool-state` (key: robot id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RobotPoolState {
    /// Document version (1).
    #[serde(default = "schema_version_v1")]
    pub schema_version: u32,
    /// Robot id, `robot-s{shard}-{personality}-{n}`.
    pub robot_id: String,
    /// Pool shard (partition of `match-events`) that owns it.
    pub shard: u32,
    /// Personality.
    pub personality: String,
    /// Idle, busy or retired.
    pub status: RobotStatus,
    /// Match it is busy with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_id: Option<String>,
    /// Seat it voices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Round it voices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Since when it is idle (epoch millis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<i64>,
    /// When it was instantiated.
    pub created_at: i64,
    /// When this document last changed.
    pub updated_at: i64,
    /// Rounds it has been assigned to.
    pub assignments_total: u64,
}

document!(RobotPoolState, "robot-pool-state");
