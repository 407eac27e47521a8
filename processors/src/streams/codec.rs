//! JSON decoding of topic values into schema types, with schema errors as decode errors.

use schemas::{Envelope, Payload};
use topology::DecodeError;

/// Decodes an event envelope; the error names the schema problem (malformed JSON, unknown
/// event type, unsupported schema version, invalid data).
pub(crate) fn decode<P: Payload>(bytes: &[u8]) -> Result<Envelope<P>, DecodeError> {
    schemas::decode::<P>(bytes).map_err(|e| DecodeError::new(format!("{}: {e}", e.code())))
}

/// Decodes a plain JSON document.
pub(crate) fn decode_document<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::new(format!("malformed_json: {e}")))
}
