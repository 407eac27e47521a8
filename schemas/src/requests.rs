//! Topic `match-requests` (key: match id): players' actions.
//!
//! The request's `eventId` is its idempotency key: the match processor applies a request
//! id at most once. Values are validated by the match processor, not by decoding:
//! an out-of-range `totalRounds` or an unknown `template` decodes fine and is rejected
//! with a reason.
//!
//! ```
//! use schemas::{Envelope, MatchCreate, MatchRequest};
//! let req: MatchRequest = Envelope::new("req-1", "m1", 0, "req-1", "req-1",
//!     MatchCreate { template: "duel_2v1".into(), total_rounds: 3, ..Default::default() });
//! assert_eq!(req.event_type(), "match.create");
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::envelope::{payload_family, Envelope};

/// Default template of `match.create`.
pub const DEFAULT_TEMPLATE: &str = "classic_1v3";
/// Default `totalRounds` of `match.create`.
pub const DEFAULT_TOTAL_ROUNDS: u32 = 5;

fn default_template() -> String {
    DEFAULT_TEMPLATE.to_owned()
}

fn default_total_rounds() -> u32 {
    DEFAULT_TOTAL_ROUNDS
}

/// A human player: stable id and display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerRef {
    /// Stable player id.
    #[schemars(length(min = 1, max = 128))]
    pub player_id: String,
    /// Display name.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
}

/// `match.create`: create a match from a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchCreate {
    /// Template name: `classic_1v3` (default), `duel_2v1`, `duo_2v2`, `trio_3v3`,
    /// `solo_1v5`, `mega_4v4`.
    #[serde(default = "default_template")]
    pub template: String,
    /// Number of rounds, 1..=20 (default 5).
    #[serde(default = "default_total_rounds")]
    #[schemars(range(min = 1, max = 20))]
    pub total_rounds: u32,
    /// Humans who take seats right away (at most the template's human count); the
    /// remaining human seats wait for `match.join`.
    #[serde(default)]
    pub humans: Vec<PlayerRef>,
    /// Length of each response phase of this match, in milliseconds (absent: the match
    /// processor's configured window). Bounds are the processor's (default 1 s..=10 min).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 600000))]
    pub response_window_ms: Option<u64>,
    /// Length of each voting phase of this match, in milliseconds (absent: the match
    /// processor's configured window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 600000))]
    pub voting_window_ms: Option<u64>,
}

impl Default for MatchCreate {
    /// The default template and rounds, no humans, the processor's windows.
    fn default() -> Self {
        MatchCreate {
            template: default_template(),
            total_rounds: default_total_rounds(),
            humans: Vec::new(),
            response_window_ms: None,
            voting_window_ms: None,
        }
    }
}

/// `match.join`: a human takes a free human seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchJoin {
    /// Stable player id.
    #[schemars(length(min = 1, max = 128))]
    pub player_id: String,
    /// Display name.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
}

/// `response.submit`: a human answers the round's prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseSubmit {
    /// The answering player.
    pub player_id: String,
    /// Round number (1-based).
    #[schemars(range(min = 1))]
    pub round: u32,
    /// The answer (at most 2000 characters by default).
    #[schemars(length(min = 1, max = 2000))]
    pub text: String,
}

/// `vote.submit`: a human names the identity they believe is human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoteSubmit {
    /// The voting player.
    pub player_id: String,
    /// Round number (1-based).
    #[schemars(range(min = 1))]
    pub round: u32,
    /// Identity letter voted for (validated by the match processor).
    #[schemars(regex(pattern = r"^[A-H]$"))]
    pub voted_for: String,
}

payload_family! {
    /// Payloads of topic `match-requests`.
    pub enum MatchRequestData for "match-requests" {
        "match.create" => Create(MatchCreate),
        "match.join" => Join(MatchJoin),
        "response.submit" => Respond(ResponseSubmit),
        "vote.submit" => Vote(VoteSubmit),
    }
}

/// A message of topic `match-requests`.
pub type MatchRequest = Envelope<MatchRequestData>;
