//! What the match processor consumes: requests, robot answers and orchestration events.
//!
//! ```
//! use game::MatchInput;
//! use schemas::{Envelope, MatchJoin, MatchRequest};
//! let req: MatchRequest = Envelope::new("r1", "m1", 0, "c", "r1",
//!     MatchJoin { player_id: "p".into(), name: "P".into() });
//! let input = MatchInput::from(req);
//! assert_eq!(input.event_id(), "r1");
//! ```

use schemas::{MatchRequest, OrchestrationEvent, RobotResponse};

/// One input of the match processor (the three co-partitioned topics).
#[derive(Debug, Clone, PartialEq)]
pub enum MatchInput {
    /// From `match-requests`.
    Request(MatchRequest),
    /// From `robot-responses`.
    Robot(RobotResponse),
    /// From `robot-orchestration-events` (only `round.robots_assigned` matters).
    Orchestration(OrchestrationEvent),
}

macro_rules! header {
    ($self:ident . $field:ident) => {
        match $self {
            MatchInput::Request(e) => &e.$field,
            MatchInput::Robot(e) => &e.$field,
            MatchInput::Orchestration(e) => &e.$field,
        }
    };
}

impl MatchInput {
    /// The input's `eventId` (its idempotency key).
    pub fn event_id(&self) -> &str {
        header!(self.event_id)
    }

    /// The input's `matchId`.
    pub fn match_id(&self) -> &str {
        header!(self.match_id)
    }

    /// The input's `correlationId`.
    pub fn correlation_id(&self) -> &str {
        header!(self.correlation_id)
    }

    /// The input's `timestamp`; events derived from it carry the same one.
    pub fn timestamp(&self) -> i64 {
        *header!(self.timestamp)
    }

    /// The input's `eventType`.
    pub fn event_type(&self) -> &'static str {
        match self {
            MatchInput::Request(e) => e.event_type(),
            MatchInput::Robot(e) => e.event_type(),
            MatchInput::Orchestration(e) => e.event_type(),
        }
    }
}

impl From<MatchRequest> for MatchInput {
    fn from(e: MatchRequest) -> Self {
        MatchInput::Request(e)
    }
}

impl From<RobotResponse> for MatchInput {
    fn from(e: RobotResponse) -> Self {
        MatchInput::Robot(e)
    }
}

impl From<OrchestrationEvent> for MatchInput {
    fn from(e: OrchestrationEvent) -> Self {
        MatchInput::Orchestration(e)
    }
}
