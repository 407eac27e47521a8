//! Why an input was refused.
//!
//! A rejection is a normal outcome of [`decide`](super::decide()): the runtime sends the
//! input to the DLQ with [`Rejection::code`] as the error header and goes on.
//!
//! ```
//! use game::{Rejection, RejectionCode};
//! let r = Rejection::new(RejectionCode::SelfVote, "A cannot vote for itself");
//! assert_eq!(r.code.as_str(), "self_vote");
//! assert_eq!(r.to_string(), "self_vote: A cannot vote for itself");
//! ```

use std::fmt;

use serde::Serialize;

/// Stable reason codes (snake_case in logs, DLQ headers and JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// No match with this id exists.
    UnknownMatch,
    /// `match.create` for an id that exists.
    MatchAlreadyExists,
    /// `match.create` with an empty match id.
    InvalidMatchId,
    /// `match.create` with a template that does not exist.
    UnknownTemplate,
    /// `totalRounds` outside 1..=20 (configurable).
    TotalRoundsOutOfRange,
    /// `responseWindowMs` or `votingWindowMs` outside 1 s..=10 min (configurable).
    WindowOutOfRange,
    /// More humans listed than the template has human seats.
    TooManyHumans,
    /// Player id or name empty, too long, or listed twice.
    InvalidPlayer,
    /// `match.join` when every human seat is taken.
    MatchFull,
    /// The match is completed.
    MatchOver,
    /// The player or seat does not take part in the match.
    NotAParticipant,
    /// The round has not started yet.
    RoundNotStarted,
    /// The round (or its response phase) is over.
    RoundOver,
    /// A vote before the voting phase opened.
    VotingNotOpen,
    /// A vote for one's own seat.
    SelfVote,
    /// An identity that is not a seat of the match (or not a letter A–H).
    InvalidIdentity,
    /// Response text longer than the configured cap.
    TextTooLong,
    /// Empty (or blank) response text.
    EmptyText,
    /// A second, different response for the same round.
    AlreadyResponded,
    /// A second, different vote for the same round.
    AlreadyVoted,
    /// A robot answered for a seat it does not voice this round.
    RobotNotAssigned,
    /// `round.robots_assigned` does not match the robot seats.
    InvalidAssignment,
}

impl RejectionCode {
    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::UnknownMatch => "unknown_match",
            RejectionCode::MatchAlreadyExists => "match_already_exists",
            RejectionCode::InvalidMatchId => "invalid_match_id",
            RejectionCode::UnknownTemplate => "unknown_template",
            RejectionCode::TotalRoundsOutOfRange => "total_rounds_out_of_range",
            RejectionCode::WindowOutOfRange => "window_out_of_range",
            RejectionCode::TooManyHumans => "too_many_humans",
            RejectionCode::InvalidPlayer => "invalid_player",
            RejectionCode::MatchFull => "match_full",
            RejectionCode::MatchOver => "match_over",
            RejectionCode::NotAParticipant => "not_a_participant",
            RejectionCode::RoundNotStarted => "round_not_started",
            RejectionCode::RoundOver => "round_over",
            RejectionCode::VotingNotOpen => "voting_not_open",
            RejectionCode::SelfVote => "self_vote",
            RejectionCode::InvalidIdentity => "invalid_identity",
            RejectionCode::TextTooLong => "text_too_long",
            RejectionCode::EmptyText => "empty_text",
            RejectionCode::AlreadyResponded => "already_responded",
            RejectionCode::AlreadyVoted => "already_voted",
            RejectionCode::RobotNotAssigned => "robot_not_assigned",
            RejectionCode::InvalidAssignment => "invalid_assignment",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused input: a reason code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// Stable reason.
    pub code: RejectionCode,
    /// Details for people.
    pub message: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

pub(crate) fn reject<T>(code: RejectionCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}
