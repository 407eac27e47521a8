//! `match-history`: one document per match, complete once the match is.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{document, schema_version_v1};
use crate::identity::Identity;
use crate::match_events::{ResponseSource, SeatPoints, SeatReveal, VoteSource};
use crate::orchestration::RobotAssignment;

/// Whether the history is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoryStatus {
    /// The match is still running (only in the processor's store).
    InProgress,
    /// `match.completed` was seen; the document is final.
    Completed,
}

/// A response as shown in the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResponse {
    /// Seat.
    pub identity: Identity,
    /// Answer.
    pub text: String,
    /// Human, robot or fallback.
    pub source: ResponseSource,
    /// The robot that answered (robot and fallback sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_id: Option<String>,
    /// The model behind a robot's answer (`offline`: the offline engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Time the robot worker spent on the answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Tokens the answer used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u32>,
}

/// A vote of the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryVote {
    /// Voter seat.
    pub voter: Identity,
    /// Seat named as human.
    pub voted_for: Identity,
    /// Human, robot or fallback.
    pub source: VoteSource,
}

/// One round of a match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRound {
    /// Round number.
    pub round: u32,
    /// Prompt text.
    pub prompt: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Robots voicing the robot seats.
    pub robots: Vec<RobotAssignment>,
    /// Timestamp of `round.started`.
    pub started_at: i64,
    /// Timestamp of `round.voting_started`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voting_started_at: Option<i64>,
    /// Timestamp of `round.completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// Round duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Responses in presentation order (arrival order until voting starts).
    pub responses: Vec<HistoryResponse>,
    /// Seats whose response timed out.
    pub timed_out_responses: Vec<Identity>,
    /// Votes in arrival order.
    pub votes: Vec<HistoryVote>,
    /// Voters who timed out.
    pub timed_out_votes: Vec<Identity>,
    /// Points of the round.
    pub points: SeatPoints,
    /// Cumulative scores after the round.
    pub scores: SeatPoints,
}

/// Value of `match-history` (key: match id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchHistory {
    /// Document version (1).
    #[serde(default = "schema_version_v1")]
    pub schema_version: u32,
    /// Match id.
    pub match_id: String,
    /// In progress or completed.
    pub status: HistoryStatus,
    /// Template name.
    pub template: String,
    /// Rounds planned.
    pub total_rounds: u32,
    /// Timestamp of `match.created`.
    pub created_at: i64,
    /// Timestamp of `match.completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// Match duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Seats with the reveal (kinds, players, robot voices per round).
    pub seats: Vec<SeatReveal>,
    /// Rounds in order.
    pub rounds: Vec<HistoryRound>,
    /// Final scores.
    pub final_scores: SeatPoints,
    /// Events of the match folded into this document (the `sequence` of the last one);
    /// 0 in documents written before it existed.
    #[serde(default)]
    pub events_applied: u64,
}

document!(MatchHistory, "match-history");
