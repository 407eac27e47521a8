//! `match-state`: the current state of one match, a pure fold of `match-events`.

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{document, schema_version_v1};
use crate::identity::Identity;
use crate::match_events::{ResponseSource, SeatPoints, SeatReveal, VoteSource};
use crate::orchestration::RobotAssignment;

/// Phase of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Human seats are still free (`match.join` expected).
    WaitingForPlayers,
    /// `round.robots_needed` was sent for `round`; waiting for `round.robots_assigned`.
    WaitingForRobots,
    /// `round.started`: collecting responses.
    Responding,
    /// `round.voting_started`: collecting votes.
    Voting,
    /// `round.completed` for `round`; the next round or the end follows.
    RoundCompleted,
    /// `match.completed`.
    Completed,
}

/// A response recorded in the current round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResponse {
    /// Answering seat.
    pub identity: Identity,
    /// The answer.
    pub text: String,
    /// Human, robot or fallback.
    pub source: ResponseSource,
}

/// A vote recorded in the current round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedVote {
    /// Voting seat.
    pub voter: Identity,
    /// Seat named as human.
    pub voted_for: Identity,
    /// Human, robot or fallback.
    pub source: VoteSource,
}

/// The round in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoundState {
    /// Round number.
    pub round: u32,
    /// Prompt text.
    pub prompt: String,
    /// Prompt id.
    pub prompt_id: String,
    /// Robots voicing the robot seats this round.
    pub robots: Vec<RobotAssignment>,
    /// Timestamp of `round.started`.
    pub started_at: i64,
    /// Response deadline (epoch millis).
    pub response_deadline: i64,
    /// Responses in arrival order.
    pub responses: Vec<RecordedResponse>,
    /// Seats whose response timed out.
    pub timed_out_responses: Vec<Identity>,
    /// Timestamp of `round.voting_started`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voting_started_at: Option<i64>,
    /// Voting deadline (epoch millis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voting_deadline: Option<i64>,
    /// Presentation order of the responses.
    pub presentation: Vec<Identity>,
    /// Votes in arrival order.
    pub votes: Vec<RecordedVote>,
    /// Voters whose vote timed out.
    pub timed_out_votes: Vec<Identity>,
}

/// Value of `match-state` (key: match id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchState {
    /// Document version (1).
    #[serde(default = "schema_version_v1")]
    pub schema_version: u32,
    /// Match id.
    pub match_id: String,
    /// Template name.
    pub template: String,
    /// Phase.
    pub status: MatchStatus,
    /// Rounds in the match.
    pub total_rounds: u32,
    /// Length of each response phase.
    pub response_window_ms: u64,
    /// Length of each voting phase.
    pub voting_window_ms: u64,
    /// How long a round waits for its robots (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots_window_ms: Option<u64>,
    /// While waiting for robots: when the round starts without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots_deadline: Option<i64>,
    /// Seats in identity order, with the robots that voiced them so far.
    pub seats: Vec<SeatReveal>,
    /// Current round number (0 before the first round is requested).
    pub round: u32,
    /// The round in progress (from `round.started` to `round.completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<RoundState>,
    /// Cumulative scores per seat.
    pub scores: SeatPoints,
    /// Timestamp of `match.created`.
    pub created_at: i64,
    /// Timestamp of the last event applied.
    pub updated_at: i64,
    /// Timestamp of `match.completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// Number of events folded into this state.
    pub events_applied: u64,
    /// 64-bit fingerprints of the most recent input ids (causation ids), oldest first;
    /// bounded, used to make duplicate inputs no-ops.
    pub recent_inputs: VecDeque<u64>,
}

document!(MatchState, "match-state");
