//! JSON Schemas (draft 2020-12) of every message and document, generated with schemars.
//!
//! The committed files under `schemas/json/` are exactly [`all_schemas`] pretty-printed
//! (a test regenerates and compares them; run it with `UPDATE_SCHEMAS=1` to rewrite).
//!
//! ```
//! let schemas = schemas::all_schemas();
//! assert!(schemas.iter().any(|(name, _)| name == "match.create.v1"));
//! assert!(schemas.iter().any(|(name, _)| name == "match-state.v1"));
//! ```

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{json, Value};

use crate::commands::RobotCommandData;
use crate::documents::{Document, MatchHistory, MatchState, MatchStats, RobotPoolState};
use crate::envelope::SCHEMA_VERSION;
use crate::match_events::MatchEventData;
use crate::orchestration::OrchestrationEventData;
use crate::requests::MatchRequestData;
use crate::robot_responses::RobotResponseData;

/// The envelope shape, used only to generate schemas.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Envelope<T> {
    /// Unique message id (idempotency key for requests).
    event_id: String,
    /// Message type.
    event_type: String,
    /// Schema version (1).
    schema_version: u32,
    /// Match id (Kafka key); `""` for pool-wide orchestration events.
    match_id: String,
    /// Epoch milliseconds.
    timestamp: i64,
    /// Correlation id.
    correlation_id: String,
    /// Event id of the cause.
    causation_id: String,
    /// Position of the event in its match's log (1, 2, 3, …), on `match-events` only;
    /// absent on events written before it existed. A reader applies an event only when it
    /// is the next one of its match: a repeat is a duplicate, a jump is a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    sequence: Option<u64>,
    /// Payload.
    data: T,
}

fn generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

fn pin_version(schema: &mut Schema) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "schemaVersion".into(),
            json!({ "description": "Schema version.", "const": SCHEMA_VERSION }),
        );
    }
}

/// Schema of the full envelope whose `data` is `T` and whose `eventType` is `event_type`.
pub fn envelope_schema<T: JsonSchema>(event_type: &str, topic: &str) -> Schema {
    let mut schema = generator().into_root_schema_for::<Envelope<T>>();
    schema.insert("title".into(), json!(event_type));
    schema.insert(
        "description".into(),
        json!(format!(
            "`{event_type}` on topic `{topic}`, schemaVersion {SCHEMA_VERSION}. \
             Unknown properties are allowed and ignored by readers."
        )),
    );
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "eventType".into(),
            json!({ "description": "Message type.", "const": event_type }),
        );
    }
    pin_version(&mut schema);
    schema
}

fn document_schema<T: Document + JsonSchema>() -> Schema {
    let mut schema = generator().into_root_schema_for::<T>();
    schema.insert("title".into(), json!(T::TOPIC));
    schema.insert(
        "description".into(),
        json!(format!(
            "Value of compacted topic `{}`, schemaVersion {SCHEMA_VERSION}. \
             Unknown properties are allowed and ignored by readers.",
            T::TOPIC
        )),
    );
    pin_version(&mut schema);
    schema
}

/// Every schema as `(name, schema)`: events and commands are named `{eventType}.v1`,
/// documents `{topic}.v1`. The file of a schema is `schemas/json/{name}.schema.json`.
pub fn all_schemas() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let families = [
        MatchRequestData::json_schemas(),
        RobotResponseData::json_schemas(),
        OrchestrationEventData::json_schemas(),
        MatchEventData::json_schemas(),
        RobotCommandData::json_schemas(),
    ];
    for family in families {
        for (event_type, schema) in family {
            out.push((format!("{event_type}.v{SCHEMA_VERSION}"), schema.to_value()));
        }
    }
    let documents = [
        (MatchState::TOPIC, document_schema::<MatchState>()),
        (RobotPoolState::TOPIC, document_schema::<RobotPoolState>()),
        (MatchHistory::TOPIC, document_schema::<MatchHistory>()),
        (MatchStats::TOPIC, document_schema::<MatchStats>()),
    ];
    for (topic, schema) in documents {
        out.push((format!("{topic}.v{SCHEMA_VERSION}"), schema.to_value()));
    }
    out
}
