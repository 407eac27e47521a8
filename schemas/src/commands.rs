//! Topic `robot-commands` (key: match id): what a robot must do next.
//!
//! `commandId` equals the command's `eventId`; workers echo it in `robot-responses`.
//! Candidates of a vote are anonymous (identity and text only) and exclude the robot's
//! own seat.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::{payload_family, Envelope};
use crate::identity::Identity;
use crate::match_events::PresentedResponse;

/// Context of a response command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseContext {
    /// Responses already recorded this round when the command was issued (seed 003's
    /// `otherResponses`; never the robot's own seat). Absent: issued at round start,
    /// before any answer (older commands, or no think time configured).
    #[serde(
        default,
        rename = "otherResponses",
        alias = "otherResponsesSoFar",
        skip_serializing_if = "Option::is_none"
    )]
    pub other_responses_so_far: Option<Vec<PresentedResponse>>,
    /// The match's latest earlier rounds (up to three), oldest first: each round's prompt
    /// and its answers as voters saw them. Absent in the first round and in older
    /// commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_rounds: Vec<EarlierRound>,
    /// Rounds in the match.
    pub total_rounds: u32,
}

/// One earlier round of a match, as a robot may read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EarlierRound {
    /// Round number.
    pub round: u32,
    /// Its prompt.
    pub prompt: String,
    /// Its answers in their presentation order (anonymous: identity and text).
    pub responses: Vec<PresentedResponse>,
}

/// `generate.response`: answer the prompt as seat `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse {
    /// Equals the command's `eventId`.
    pub command_id: String,
    /// Robot that must answer.
    pub robot_id: String,
    /// Its personality.
    pub personality: String,
    /// Seat it voices.
    pub identity: Identity,
    /// Round number.
    pub round: u32,
    /// The prompt.
    pub prompt: String,
    /// Extra context.
    pub context: ResponseContext,
    /// Epoch millis after which an answer is useless.
    pub deadline: i64,
}

/// `generate.vote`: name the candidate believed to be human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateVote {
    /// Equals the command's `eventId`.
    pub command_id: String,
    /// Robot that must vote.
    pub robot_id: String,
    /// Its personality.
    pub personality: String,
    /// Seat it voices (the voter).
    pub identity: Identity,
    /// Round number.
    pub round: u32,
    /// The round's prompt.
    pub prompt: String,
    /// Anonymous responses to choose from (never the robot's own seat).
    pub candidates: Vec<PresentedResponse>,
    /// Epoch millis after which a vote is useless.
    pub deadline: i64,
}

payload_family! {
    /// Payloads of topic `robot-commands`.
    pub enum RobotCommandData for "robot-commands" {
        "generate.response" => GenerateResponse(GenerateResponse),
        "generate.vote" => GenerateVote(GenerateVote),
    }
}

/// A message of topic `robot-commands`.
pub type RobotCommand = Envelope<RobotCommandData>;
