//! JSON decoding of topic values into schema types, with schema errors as decode errors,
//! and the encode-once write of a table value to its store and its topic.

use schemas::{Envelope, Payload};
use topology::{Context, DecodeError, ProcessError};

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

/// Encodes `value` once, writes it to `store` under `key` and forwards it to `sink` (a
/// table's value: its local copy and its compacted topic hold the same bytes).
pub(crate) fn store_and_forward<V: serde::Serialize>(
    ctx: &mut Context<'_>,
    store: &str,
    sink: &str,
    key: &str,
    value: &V,
) -> Result<(), ProcessError> {
    let raw = serde_json::to_vec(value)
        .map_err(|e| ProcessError::Failed(format!("encoding `{store}` value: {e}")))?;
    ctx.raw_store(store)?.put(key, raw.clone())?;
    ctx.forward_raw(sink, key, Some(raw))
}
