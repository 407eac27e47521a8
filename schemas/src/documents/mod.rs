//! Materialized documents: the values of the compacted topics.
//!
//! | topic | key | document |
//! |---|---|---|
//! | `match-state` | match id | [`MatchState`] |
//! | `robot-pool-state` | robot id | [`RobotPoolState`] |
//! | `match-history` | match id | [`MatchHistory`] |
//! | `match-stats` | stat key | [`MatchStats`] |
//!
//! Documents carry their own `schemaVersion` (1) and are plain JSON; decode them with
//! [`decode_document`].

mod history;
mod match_state;
mod pool;
mod stats;

pub use history::{HistoryResponse, HistoryRound, HistoryStatus, HistoryVote, MatchHistory};
pub use match_state::{MatchState, MatchStatus, RecordedResponse, RecordedVote, RoundState};
pub use pool::{RobotPoolState, RobotStatus};
pub use stats::{MatchStats, PersonalityStats};

use serde::de::DeserializeOwned;

use crate::envelope::{DecodeError, SCHEMA_VERSION};

/// A materialized document type.
pub trait Document: DeserializeOwned + serde::Serialize {
    /// The compacted topic it is written to.
    const TOPIC: &'static str;
    /// The document's `schemaVersion` field.
    fn schema_version(&self) -> u32;
}

/// Decodes a document, checking its `schemaVersion`.
///
/// ```
/// use schemas::{decode_document, DecodeError, MatchStats};
/// let err = decode_document::<MatchStats>(b"{").unwrap_err();
/// assert!(matches!(err, DecodeError::MalformedJson(_)));
/// ```
pub fn decode_document<T: Document>(bytes: &[u8]) -> Result<T, DecodeError> {
    let doc: T = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() || e.is_io() {
            DecodeError::MalformedJson(e.to_string())
        } else {
            DecodeError::InvalidData {
                event_type: T::TOPIC.to_owned(),
                message: e.to_string(),
            }
        }
    })?;
    if doc.schema_version() != SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedSchemaVersion {
            found: doc.schema_version(),
        });
    }
    Ok(doc)
}

pub(crate) fn schema_version_v1() -> u32 {
    SCHEMA_VERSION
}

macro_rules! document {
    ($ty:ty, $topic:literal) => {
        impl $crate::documents::Document for $ty {
            const TOPIC: &'static str = $topic;
            fn schema_version(&self) -> u32 {
                self.schema_version
            }
        }
    };
}
pub(crate) use document;
