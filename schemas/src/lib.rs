//! RobotOrchestra message types and their versioned JSON Schemas.
//!
//! Five event topics, each with one payload family wrapped in the common [`Envelope`]:
//!
//! | topic | family | alias |
//! |---|---|---|
//! | `match-requests` | [`MatchRequestData`] | [`MatchRequest`] |
//! | `robot-responses` | [`RobotResponseData`] | [`RobotResponse`] |
//! | `robot-orchestration-events` | [`OrchestrationEventData`] | [`OrchestrationEvent`] |
//! | `match-events` | [`MatchEventData`] | [`MatchEvent`] |
//! | `robot-commands` | [`RobotCommandData`] | [`RobotCommand`] |
//!
//! and four document types for the compacted topics ([`MatchState`], [`RobotPoolState`],
//! [`MatchHistory`], [`MatchStats`]). All JSON is camelCase. [`decode`] and
//! [`decode_document`] return typed [`DecodeError`]s; unknown fields are ignored.
//!
//! ```
//! use schemas::{decode, Envelope, MatchEvent, MatchEventData, VoteTimedOut, Identity};
//! let ev: MatchEvent = Envelope::new("e1", "m1", 5, "c1", "r1",
//!     VoteTimedOut { round: 1, voter: Identity::ALL[0] });
//! let bytes = ev.to_json_vec().unwrap();
//! let back: MatchEvent = decode(&bytes).unwrap();
//! assert_eq!(back, ev);
//! ```

pub mod commands;
pub mod documents;
pub mod envelope;
pub mod identity;
pub mod json_schema;
pub mod match_events;
pub mod orchestration;
pub mod peek;
pub mod requests;
pub mod robot_responses;

pub use commands::{
    EarlierRound, GenerateResponse, GenerateVote, ResponseContext, RobotCommand, RobotCommandData,
};
pub use documents::{
    decode_document, Document, HistoryResponse, HistoryRound, HistoryStatus, HistoryVote,
    MatchHistory, MatchState, MatchStats, MatchStatus, PersonalityStats, RecordedResponse,
    RecordedVote, RobotPoolState, RobotStatus, RoundState,
};
pub use envelope::{decode, decode_str, DecodeError, Envelope, Payload, SCHEMA_VERSION};
pub use identity::{Identity, InvalidIdentity, MAX_SEATS};
pub use json_schema::all_schemas;
pub use match_events::{
    MatchCompleted, MatchCreated, MatchEvent, MatchEventData, PlayerJoined, PresentedResponse,
    ResponseRecorded, ResponseSource, ResponseTimedOut, RobotsNeeded, RoundCompleted, RoundStarted,
    RoundVoice, Seat, SeatKind, SeatPoints, SeatReveal, VoteRecorded, VoteSource, VoteTimedOut,
    VotingStarted,
};
pub use orchestration::{
    OrchestrationEvent, OrchestrationEventData, PoolScaled, RobotAssignment, RobotInstantiated,
    RobotReleased, RobotsAssigned,
};
pub use peek::peek_event_type;
pub use requests::{
    MatchCreate, MatchJoin, MatchRequest, MatchRequestData, PlayerRef, ResponseSubmit, VoteSubmit,
    DEFAULT_TEMPLATE, DEFAULT_TOTAL_ROUNDS,
};
pub use robot_responses::{
    CommandKind, ResponseFailed, ResponseSubmitted, RobotResponse, RobotResponseData, VoteSubmitted,
};
