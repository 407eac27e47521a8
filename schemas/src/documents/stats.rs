//! `match-stats`: tumbling-window aggregates over finished matches.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{document, schema_version_v1};

/// How one robot personality fared with human voters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonalityStats {
    /// Seat-rounds it voiced.
    pub rounds_voiced: u64,
    /// For every seat-round it voiced, the human votes cast in that round (each one a
    /// chance to be taken for human).
    pub human_votes_seen: u64,
    /// Human votes that named a seat it voiced (it was taken for human).
    pub taken_for_human: u64,
    /// `takenForHuman / humanVotesSeen` (0 when none).
    pub taken_for_human_rate: f64,
}

/// Value of `match-stats` (key: `statKey`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchStats {
    /// Document version (1).
    #[serde(default = "schema_version_v1")]
    pub schema_version: u32,
    /// Key, `window-{windowMs}-{windowStart}`.
    pub stat_key: String,
    /// Window length.
    pub window_ms: u64,
    /// Inclusive window start (epoch millis).
    pub window_start: i64,
    /// Exclusive window end (epoch millis).
    pub window_end: i64,
    /// Matches completed in the window.
    pub matches_completed: u64,
    /// Rounds of those matches.
    pub rounds_completed: u64,
    /// Sum of those rounds' durations.
    pub total_round_duration_ms: u64,
    /// Mean round duration (0 when none).
    pub mean_round_duration_ms: f64,
    /// Votes cast by humans.
    pub human_votes: u64,
    /// Human votes that named a human.
    pub human_votes_correct: u64,
    /// `humanVotesCorrect / humanVotes` (0 when none).
    pub human_detection_accuracy: f64,
    /// Votes cast by robots (including fallback votes).
    pub robot_votes: u64,
    /// Robot votes that named a human.
    pub robot_votes_correct: u64,
    /// Per robot personality.
    pub personalities: BTreeMap<String, PersonalityStats>,
    /// Timestamp of the last match folded in.
    pub updated_at: i64,
    /// Sorted 64-bit fingerprints of the match ids folded in; a match delivered twice
    /// counts once.
    pub counted_matches: Vec<u64>,
}

document!(MatchStats, "match-stats");
