//! Topic `robot-responses` (key: match id): what robot workers answer to
//! [`robot-commands`](crate::commands).
//!
//! `identity` and `votedFor` are plain strings here: a worker's output is validated by the
//! match processor (a bad value is a rejection, not a decode error).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::{payload_family, Envelope};

/// Which command a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// A `generate.response` command.
    Response,
    /// A `generate.vote` command.
    Vote,
}

/// `response.submitted`: a robot's answer to `generate.response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseSubmitted {
    /// The command answered.
    pub command_id: String,
    /// The robot instance.
    pub robot_id: String,
    /// The seat the robot voices.
    pub identity: String,
    /// Round number.
    pub round: u32,
    /// The answer.
    pub text: String,
    /// Model (or `offline`) that produced the text.
    pub model: String,
    /// Time the worker spent, in milliseconds.
    pub latency_ms: u64,
    /// Tokens used.
    pub tokens: u32,
}

/// `vote.submitted`: a robot's answer to `generate.vote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoteSubmitted {
    /// The command answered.
    pub command_id: String,
    /// The robot instance.
    pub robot_id: String,
    /// The seat the robot voices (the voter).
    pub identity: String,
    /// Round number.
    pub round: u32,
    /// Identity voted for.
    pub voted_for: String,
}

/// `response.failed`: the worker could not answer a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseFailed {
    /// The command that failed.
    pub command_id: String,
    /// The robot instance.
    pub robot_id: String,
    /// The seat the robot voices.
    pub identity: String,
    /// Round number.
    pub round: u32,
    /// Whether a response or a vote failed.
    pub kind: CommandKind,
    /// Why (free text, for operators).
    pub reason: String,
}

payload_family! {
    /// Payloads of topic `robot-responses`.
    pub enum RobotResponseData for "robot-responses" {
        "response.submitted" => ResponseSubmitted(ResponseSubmitted),
        "vote.submitted" => VoteSubmitted(VoteSubmitted),
        "response.failed" => Failed(ResponseFailed),
    }
}

/// A message of topic `robot-responses`.
pub type RobotResponse = Envelope<RobotResponseData>;
