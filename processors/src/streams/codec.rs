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

/// Decodes an event envelope when its `eventType` is one of `wanted`; `Ok(None)` (without
/// parsing the rest) when [`schemas::peek_event_type`] finds another type. Records it
/// cannot peek at are decoded in full, so bad input still gets its decode error.
pub(crate) fn decode_if<P: Payload>(
    bytes: &[u8],
    wanted: &[&str],
) -> Result<Option<Envelope<P>>, DecodeError> {
    match schemas::peek_event_type(bytes) {
        Some(t) if !wanted.contains(&t) => Ok(None),
        _ => decode(bytes).map(Some),
    }
}
