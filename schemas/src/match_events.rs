//! Topic `match-events` (key: match id): the canonical, infinitely retained match log.
//!
//! Every input of every match decision is in these events, so `match-state` is a pure
//! fold of this topic: deadlines are values inside the events (`responseDeadline`,
//! `votingDeadline`), expired deadlines are events (`response.timed_out`,
//! `vote.timed_out`), robot answers become `response.recorded` / `vote.recorded`, and
//! configuration that later decisions need is frozen in `match.created`.
//!
//! Consumers that need context (orchestration, history) find it in the event itself:
//! `round.started` and `round.voting_started` repeat the prompt and `totalRounds`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::{payload_family, Envelope};
use crate::identity::Identity;
use crate::orchestration::RobotAssignment;

/// Points or scores per seat; every seat of the match has an entry.
pub type SeatPoints = BTreeMap<Identity, u32>;

/// Whether a seat is played by a human or voiced by robots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatKind {
    /// A human player.
    Human,
    /// A robot (possibly a different instance each round).
    Robot,
}

/// A seat as assigned at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Seat {
    /// Seat identity.
    pub identity: Identity,
    /// Human or robot.
    pub kind: SeatKind,
    /// The player, for a filled human seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    /// The player's display name, for a filled human seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `match.created`: a match exists, its seats are shuffled and its settings frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchCreated {
    /// Template name.
    pub template: String,
    /// Number of rounds.
    pub total_rounds: u32,
    /// All seats in identity order; human seats listed in the request are filled.
    pub seats: Vec<Seat>,
    /// Length of each response phase.
    pub response_window_ms: u64,
    /// Length of each voting phase.
    pub voting_window_ms: u64,
    /// How long a round waits for its robots before it starts without them (absent in
    /// matches created before this field: they wait as long as it takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robots_window_ms: Option<u64>,
}

/// `player.joined`: a human took a free human seat (from `match.join`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerJoined {
    /// The seat taken.
    pub identity: Identity,
    /// Player id.
    pub player_id: String,
    /// Display name.
    pub name: String,
}

/// `round.robots_needed`: the match asks orchestration to voice its robot seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RobotsNeeded {
    /// Round about to start.
    pub round: u32,
    /// Number of robots needed (= `identities.len()`).
    pub count: u32,
    /// Robots that should not be used (those that voiced the previous round).
    pub exclude_robots: Vec<String>,
    /// The robot seats that need a voice.
    pub identities: Vec<Identity>,
    /// When the match stops waiting: the round then starts without robots, and the
    /// robot seats time out (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<i64>,
}

/// `round.started`: robots are assigned, the prompt is out, responses are open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoundStarted {
    /// Round number (1-based).
    pub round: u32,
    /// Rounds in the match.
    pub total_rounds: u32,
    /// Prompt text.
    pub prompt: String,
    /// Prompt id in the prompt bank.
    pub prompt_id: String,
    /// All seats taking part (every seat of the match), in identity order.
    pub participants: Vec<Identity>,
    /// Which robot voices which robot seat this round.
    pub robots: Vec<RobotAssignment>,
    /// Epoch millis after which missing responses time out.
    pub response_deadline: i64,
}

/// Where a recorded response came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseSource {
    /// A human's `response.submit`.
    Human,
    /// A robot worker's `response.submitted`.
    Robot,
    /// Fallback text after a robot's `response.failed`.
    Fallback,
}

/// `response.recorded`: a seat's answer for the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseRecorded {
    /// Round number.
    pub round: u32,
    /// Answering seat.
    pub identity: Identity,
    /// The answer.
    pub text: String,
    /// Human, robot or fallback.
    pub source: ResponseSource,
    /// The robot that answered (robot and fallback sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robot_id: Option<String>,
    /// The model (or `offline`, the offline engine) that produced a robot's answer, from
    /// its `response.submitted` (absent for humans, failed robots and older events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Time the robot worker spent on the answer, in milliseconds (as for `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Tokens the answer used (as for `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u32>,
}

/// `response.timed_out`: a seat gave no response before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseTimedOut {
    /// Round number.
    pub round: u32,
    /// Silent seat.
    pub identity: Identity,
}

/// An anonymous response as shown to voters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresentedResponse {
    /// Seat that gave it.
    pub identity: Identity,
    /// The answer.
    pub text: String,
}

/// `round.voting_started`: responses are shown, votes are open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VotingStarted {
    /// Round number.
    pub round: u32,
    /// The round's prompt (repeated for consumers that keep no state).
    pub prompt: String,
    /// Recorded responses in their (deterministically shuffled) presentation order.
    pub responses: Vec<PresentedResponse>,
    /// Epoch millis after which missing votes time out.
    pub voting_deadline: i64,
}

/// Where a recorded vote came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteSource {
    /// A human's `vote.submit`.
    Human,
    /// A robot worker's `vote.submitted`.
    Robot,
    /// Deterministic fallback vote after a robot's failed vote command.
    Fallback,
}

/// `vote.recorded`: a seat named the identity it believes is human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoteRecorded {
    /// Round number.
    pub round: u32,
    /// Voting seat.
    pub voter: Identity,
    /// Seat named as human.
    pub voted_for: Identity,
    /// Human, robot or fallback.
    pub source: VoteSource,
}

/// `vote.timed_out`: a seat did not vote before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoteTimedOut {
    /// Round number.
    pub round: u32,
    /// Silent voter.
    pub voter: Identity,
}

/// `round.completed`: votes are scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoundCompleted {
    /// Round number.
    pub round: u32,
    /// Points earned this round, per seat.
    pub points: SeatPoints,
    /// Cumulative scores after this round, per seat.
    pub scores: SeatPoints,
    /// From `round.started` to this event.
    pub duration_ms: u64,
}

/// A robot that voiced a seat in one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoundVoice {
    /// Round number.
    pub round: u32,
    /// Robot instance.
    pub robot_id: String,
    /// Its personality.
    pub personality: String,
    /// The model behind its answer this round (`offline` for the offline engine), once its
    /// `response.recorded` carried one (absent: no robot answer, or an older event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// The truth about one seat, revealed at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatReveal {
    /// Seat identity.
    pub identity: Identity,
    /// Human or robot.
    pub kind: SeatKind,
    /// Player id of a human seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    /// Display name of a human seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For a robot seat: which robot voiced it in each round.
    #[serde(default)]
    pub voices: Vec<RoundVoice>,
}

/// `match.completed`: the last round is scored; the reveal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchCompleted {
    /// Every seat with its truth, in identity order.
    pub reveal: Vec<SeatReveal>,
    /// Final scores per seat.
    pub final_scores: SeatPoints,
    /// Rounds played.
    pub rounds_played: u32,
    /// From `match.created` to this event.
    pub duration_ms: u64,
}

payload_family! {
    /// Payloads of topic `match-events`.
    pub enum MatchEventData for "match-events" {
        "match.created" => MatchCreated(MatchCreated),
        "player.joined" => PlayerJoined(PlayerJoined),
        "round.robots_needed" => RobotsNeeded(RobotsNeeded),
        "round.started" => RoundStarted(RoundStarted),
        "response.recorded" => ResponseRecorded(ResponseRecorded),
        "response.timed_out" => ResponseTimedOut(ResponseTimedOut),
        "round.voting_started" => VotingStarted(VotingStarted),
        "vote.recorded" => VoteRecorded(VoteRecorded),
        "vote.timed_out" => VoteTimedOut(VoteTimedOut),
        "round.completed" => RoundCompleted(RoundCompleted),
        "match.completed" => MatchCompleted(MatchCompleted),
    }
}

/// A message of topic `match-events`.
pub type MatchEvent = Envelope<MatchEventData>;
