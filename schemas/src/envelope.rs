//! The common envelope of every event and command, and the decode entry point.
//!
//! Every message on the event topics is a JSON object
//! `{eventId, eventType, schemaVersion, matchId, timestamp, correlationId, causationId, data}`.
//! [`Envelope<P>`] holds the header fields and a typed payload `P` (one enum per topic, see
//! [`Payload`]); `eventType` is not stored, it follows from the payload variant.
//!
//! [`decode`] parses bytes in one pass (the payload is deserialized straight into its type
//! when `eventType` and `schemaVersion` come before `data`, as this crate writes them;
//! otherwise `data` is buffered) and reports a typed [`DecodeError`]. Unknown fields are
//! ignored everywhere, so newer writers can add fields without breaking older readers.
//!
//! ```
//! use schemas::{decode, DecodeError, MatchRequest, MatchRequestData};
//! let bytes = br#"{"eventId":"r1","eventType":"match.join","schemaVersion":1,"matchId":"m1",
//!   "timestamp":1700000000000,"correlationId":"c1","causationId":"r1",
//!   "data":{"playerId":"p2","name":"Bo"}}"#;
//! let req: MatchRequest = decode(bytes).unwrap();
//! assert!(matches!(req.data, MatchRequestData::Join(_)));
//! assert_eq!(req.event_type(), "match.join");
//!
//! let err = decode::<MatchRequestData>(br#"{"eventType":"nope"#).unwrap_err();
//! assert!(matches!(err, DecodeError::MalformedJson(_)));
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The only schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One message: header fields plus a typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<P> {
    /// Unique id of this message; for requests it is the idempotency key.
    pub event_id: String,
    /// Always [`SCHEMA_VERSION`] for values decoded or built by this crate.
    pub schema_version: u32,
    /// The match this message is about (also the Kafka key). Pool-wide orchestration
    /// events that concern no match carry an empty string (see the README).
    pub match_id: String,
    /// Epoch milliseconds. Derived events copy the timestamp of their cause.
    pub timestamp: i64,
    /// Links all messages of one conversation (usually the match's creating request).
    pub correlation_id: String,
    /// The `eventId` of the message that caused this one (its own id for external input).
    pub causation_id: String,
    /// Position of this event in its match's log (`match-events`: 1, 2, 3, …), set by
    /// the match processor. Folds apply an event only when it is the next one of its
    /// match, so a redelivered duplicate is a no-op and a gap is visible. `None` on other
    /// topics and on match events written before the field existed.
    pub sequence: Option<u64>,
    /// Typed payload; its variant decides `eventType`.
    pub data: P,
}

/// A topic's family of payloads: one enum variant per `eventType`.
///
/// Implemented by the `*Data` enums of this crate (via an internal macro).
pub trait Payload: Sized {
    /// The topic the family belongs to.
    const TOPIC: &'static str;
    /// Every `eventType` of the family, in declaration order.
    const EVENT_TYPES: &'static [&'static str];
    /// The `eventType` of this value.
    fn event_type(&self) -> &'static str;
    /// Deserializes the `data` object of the given `eventType`.
    fn deserialize_data<'de, D: Deserializer<'de>>(
        event_type: &str,
        d: D,
    ) -> Result<Self, D::Error>;
    /// Serializes the `data` object (without the type tag).
    fn serialize_data<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// Whether `event_type` belongs to this family.
    fn is_known(event_type: &str) -> bool {
        Self::EVENT_TYPES.contains(&event_type)
    }
}

/// Why bytes could not be decoded into an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all (syntax error or truncated input).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// JSON, but the envelope is not an object or a header field is missing or mistyped.
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(String),
    /// `schemaVersion` is not one this reader supports.
    #[error("unsupported schemaVersion {found} (supported: {SCHEMA_VERSION})")]
    UnsupportedSchemaVersion {
        /// The version found in the message.
        found: u32,
    },
    /// `eventType` is not part of the topic's family.
    #[error("unknown eventType `{event_type}` for topic {topic}")]
    UnknownEventType {
        /// The type found.
        event_type: String,
        /// The topic family that was asked for.
        topic: &'static str,
    },
    /// `data` does not match the payload type of its `eventType`.
    #[error("invalid data for `{event_type}`: {message}")]
    InvalidData {
        /// The message's `eventType`.
        event_type: String,
        /// What was wrong.
        message: String,
    },
}

impl DecodeError {
    /// A short stable code, e.g. for a DLQ header: `malformed_json`, `invalid_envelope`,
    /// `unsupported_schema_version`, `unknown_event_type`, `invalid_data`.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::MalformedJson(_) => "malformed_json",
            DecodeError::InvalidEnvelope(_) => "invalid_envelope",
            DecodeError::UnsupportedSchemaVersion { .. } => "unsupported_schema_version",
            DecodeError::UnknownEventType { .. } => "unknown_event_type",
            DecodeError::InvalidData { .. } => "invalid_data",
        }
    }
}

impl<P: Payload> Envelope<P> {
    /// Builds a version-1 envelope.
    pub fn new(
        event_id: impl Into<String>,
        match_id: impl Into<String>,
        timestamp: i64,
        correlation_id: impl Into<String>,
        causation_id: impl Into<String>,
        data: impl Into<P>,
    ) -> Self {
        Envelope {
            event_id: event_id.into(),
            schema_version: SCHEMA_VERSION,
            match_id: match_id.into(),
            timestamp,
            correlation_id: correlation_id.into(),
            causation_id: causation_id.into(),
            sequence: None,
            data: data.into(),
        }
    }

    /// The same envelope at position `sequence` of its match's log.
    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.sequence = Some(sequence);
        self
    }

    /// The `eventType` of the payload.
    pub fn event_type(&self) -> &'static str {
        self.data.event_type()
    }

    /// Serializes to JSON bytes (header fields first, then `data`).
    ///
    /// The buffer starts at 512 bytes, the size of most events (`serde_json::to_vec`
    /// starts at 128 and copies the message on each of its doublings).
    pub fn to_json_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }
}

/// Decodes one message of the payload family `P` from JSON bytes.
///
/// Errors, in order of precedence: [`DecodeError::MalformedJson`],
/// [`DecodeError::InvalidEnvelope`], [`DecodeError::UnsupportedSchemaVersion`],
/// [`DecodeError::UnknownEventType`], [`DecodeError::InvalidData`].
pub fn decode<P: Payload>(bytes: &[u8]) -> Result<Envelope<P>, DecodeError> {
    let mut data_error: Option<DecodeError> = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = EnvelopeSeed::<P> {
        data_error: &mut data_error,
        _payload: PhantomData,
    };
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    let failure = match result {
        Ok(Ok(envelope)) => return Ok(envelope),
        Ok(Err(e)) => e,
        Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => {
            return Err(DecodeError::MalformedJson(e.to_string()))
        }
        Err(e) => data_error.unwrap_or_else(|| DecodeError::InvalidEnvelope(e.to_string())),
    };
    // Error path only: malformed JSON anywhere (e.g. after an early semantic failure)
    // takes precedence over every other error.
    match serde_json::from_slice::<IgnoredAny>(bytes) {
        Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => {
            Err(DecodeError::MalformedJson(e.to_string()))
        }
        _ => Err(failure),
    }
}

/// Decodes one message from a `str` (see [`decode`]).
pub fn decode_str<P: Payload>(json: &str) -> Result<Envelope<P>, DecodeError> {
    decode(json.as_bytes())
}

impl<P: Payload> Serialize for Envelope<P> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields = if self.sequence.is_some() { 9 } else { 8 };
        let mut st = s.serialize_struct("Envelope", fields)?;
        st.serialize_field("eventId", &self.event_id)?;
        st.serialize_field("eventType", self.event_type())?;
        st.serialize_field("schemaVersion", &self.schema_version)?;
        st.serialize_field("matchId", &self.match_id)?;
        st.serialize_field("timestamp", &self.timestamp)?;
        st.serialize_field("correlationId", &self.correlation_id)?;
        st.serialize_field("causationId", &self.causation_id)?;
        if let Some(seq) = self.sequence {
            st.serialize_field("sequence", &seq)?;
        }
        st.serialize_field("data", &DataRef(&self.data))?;
        st.end()
    }
}

impl<'de, P: Payload> Deserialize<'de> for Envelope<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut data_error = None;
        let seed = EnvelopeSeed::<P> {
            data_error: &mut data_error,
            _payload: PhantomData,
        };
        match seed.deserialize(d)? {
            Ok(env) => Ok(env),
            Err(e) => Err(de::Error::custom(e)),
        }
    }
}

struct DataRef<'a, P>(&'a P);

impl<P: Payload> Serialize for DataRef<'_, P> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_data(s)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    EventId,
    EventType,
    SchemaVersion,
    MatchId,
    Timestamp,
    CorrelationId,
    CausationId,
    Sequence,
    Data,
    #[serde(other)]
    Other,
}

struct EnvelopeSeed<'a, P> {
    data_error: &'a mut Option<DecodeError>,
    _payload: PhantomData<P>,
}

impl<'de, P: Payload> DeserializeSeed<'de> for EnvelopeSeed<'_, P> {
    type Value = Result<Envelope<P>, DecodeError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EnvelopeVisitor::<P> {
            data_error: self.data_error,
            _payload: PhantomData,
        })
    }
}

struct EnvelopeVisitor<'a, P> {
    data_error: &'a mut Option<DecodeError>,
    _payload: PhantomData<P>,
}

enum DataSlot<P> {
    Missing,
    Typed(P),
    Buffered(serde_json::Value),
    Skipped,
}

struct DataSeed<'a, P> {
    event_type: &'a str,
    _payload: PhantomData<P>,
}

impl<'de, P: Payload> DeserializeSeed<'de> for DataSeed<'_, P> {
    type Value = P;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<P, D::Error> {
        P::deserialize_data(self.event_type, d)
    }
}

fn set_once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de, P: Payload> Visitor<'de> for EnvelopeVisitor<'_, P> {
    type Value = Result<Envelope<P>, DecodeError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event_id: Option<String> = None;
        let mut event_type: Option<String> = None;
        let mut schema_version: Option<u32> = None;
        let mut match_id: Option<String> = None;
        let mut timestamp: Option<i64> = None;
        let mut correlation_id: Option<String> = None;
        let mut causation_id: Option<String> = None;
        let mut sequence: Option<u64> = None;
        let mut data: DataSlot<P> = DataSlot::Missing;

        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::EventId => set_once(&mut event_id, &mut map, "eventId")?,
                Field::EventType => set_once(&mut event_type, &mut map, "eventType")?,
                Field::SchemaVersion => set_once(&mut schema_version, &mut map, "schemaVersion")?,
                Field::MatchId => set_once(&mut match_id, &mut map, "matchId")?,
                Field::Timestamp => set_once(&mut timestamp, &mut map, "timestamp")?,
                Field::CorrelationId => set_once(&mut correlation_id, &mut map, "correlationId")?,
                Field::CausationId => set_once(&mut causation_id, &mut map, "causationId")?,
                Field::Sequence => set_once(&mut sequence, &mut map, "sequence")?,
                Field::Data => {
                    if !matches!(data, DataSlot::Missing) {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    let version_ok = schema_version.map(|v| v == SCHEMA_VERSION);
                    let type_known = event_type.as_deref().map(P::is_known);
                    data = match (version_ok, type_known, event_type.as_deref()) {
                        (Some(true), Some(true), Some(et)) => {
                            let seed = DataSeed::<P> {
                                event_type: et,
                                _payload: PhantomData,
                            };
                            match map.next_value_seed(seed) {
                                Ok(p) => DataSlot::Typed(p),
                                Err(e) => {
                                    *self.data_error = Some(DecodeError::InvalidData {
                                        event_type: et.to_owned(),
                                        message: e.to_string(),
                                    });
                                    return Err(e);
                                }
                            }
                        }
                        (Some(false), _, _) | (_, Some(false), _) => {
                            map.next_value::<IgnoredAny>()?;
                            DataSlot::Skipped
                        }
                        _ => DataSlot::Buffered(map.next_value()?),
                    };
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }

        let event_id = event_id.ok_or_else(|| de::Error::missing_field("eventId"))?;
        let event_type = event_type.ok_or_else(|| de::Error::missing_field("eventType"))?;
        let schema_version =
            schema_version.ok_or_else(|| de::Error::missing_field("schemaVersion"))?;
        let match_id = match_id.ok_or_else(|| de::Error::missing_field("matchId"))?;
        let timestamp = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        let correlation_id =
            correlation_id.ok_or_else(|| de::Error::missing_field("correlationId"))?;
        let causation_id = causation_id.ok_or_else(|| de::Error::missing_field("causationId"))?;

        if schema_version != SCHEMA_VERSION {
            return Ok(Err(DecodeError::UnsupportedSchemaVersion {
                found: schema_version,
            }));
        }
        if !P::is_known(&event_type) {
            return Ok(Err(DecodeError::UnknownEventType {
                event_type,
                topic: P::TOPIC,
            }));
        }
        let payload = match data {
            DataSlot::Typed(p) => p,
            DataSlot::Buffered(value) => match P::deserialize_data(&event_type, value) {
                Ok(p) => p,
                Err(e) => {
                    return Ok(Err(DecodeError::InvalidData {
                        event_type,
                        message: e.to_string(),
                    }))
                }
            },
            DataSlot::Missing | DataSlot::Skipped => return Err(de::Error::missing_field("data")),
        };
        Ok(Ok(Envelope {
            event_id,
            schema_version,
            match_id,
            timestamp,
            correlation_id,
            causation_id,
            sequence,
            data: payload,
        }))
    }
}

/// Declares a payload family: the enum, its [`Payload`] impl, `From` impls and its
/// JSON Schemas.
macro_rules! payload_family {
    (
        $(#[$meta:meta])*
        pub enum $name:ident for $topic:literal {
            $( $(#[$vmeta:meta])* $event:literal => $variant:ident($ty:ty), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", $event, "`")] $variant($ty), )+
        }

        impl $crate::envelope::Payload for $name {
            const TOPIC: &'static str = $topic;
            const EVENT_TYPES: &'static [&'static str] = &[$($event),+];
            fn event_type(&self) -> &'static str {
                match self { $( Self::$variant(_) => $event, )+ }
            }
            fn deserialize_data<'de, D: serde::Deserializer<'de>>(
                event_type: &str,
                d: D,
            ) -> Result<Self, D::Error> {
                match event_type {
                    $( $event => <$ty as serde::Deserialize>::deserialize(d).map(Self::$variant), )+
                    other => Err(<D::Error as serde::de::Error>::custom(
                        format_args!("unknown eventType `{other}`"),
                    )),
                }
            }
            fn serialize_data<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $( Self::$variant(v) => serde::Serialize::serialize(v, s), )+ }
            }
        }

        $( impl From<$ty> for $name {
            fn from(v: $ty) -> Self { Self::$variant(v) }
        }

        impl $ty {
            #[doc = concat!("Its `eventType`: `", $event, "`.")]
            pub const EVENT_TYPE: &'static str = $event;
        } )+

        impl $name {
            /// JSON Schema (draft 2020-12) of the full envelope of every `eventType` of
            /// the family, as `(eventType, schema)`.
            pub fn json_schemas() -> Vec<(&'static str, schemars::Schema)> {
                vec![ $( ($event, $crate::json_schema::envelope_schema::<$ty>($event, $topic)), )+ ]
            }
        }
    };
}
pub(crate) use payload_family;
