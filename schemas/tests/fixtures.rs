//! Fixtures under `schemas/fixtures/` against the committed JSON Schemas and the decoder.
//!
//! File names are `{schema name}--{case}.json` where the schema name is the stem of a
//! `schemas/json/{name}.v1.schema.json` file (an `eventType` or a document topic).
//! Valid fixtures must validate against the schema, decode with the Rust types, and
//! re-encode to JSON that still validates. Invalid fixtures must fail the schema.

use std::fs;
use std::path::{Path, PathBuf};

use schemas::{
    decode, decode_document, MatchEventData, MatchHistory, MatchRequestData, MatchState,
    MatchStats, OrchestrationEventData, Payload, RobotCommandData, RobotPoolState,
    RobotResponseData,
};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Value {
    let text = fs::read_to_string(path).expect("read fixture");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixtures(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("fixtures").join(kind)).expect("fixture dir") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        let schema = stem.split("--").next().expect("split").to_owned();
        out.push((schema, path));
    }
    out.sort();
    out
}

fn validator(schema_name: &str) -> jsonschema::Validator {
    let path = root()
        .join("json")
        .join(format!("{schema_name}.v1.schema.json"));
    jsonschema::validator_for(&load(&path)).expect("schema compiles")
}

/// Decodes with the Rust types and re-encodes; `None` when the name is unknown.
fn rust_round_trip(schema_name: &str, bytes: &[u8]) -> Option<Result<Value, String>> {
    fn ev<P: Payload>(bytes: &[u8]) -> Result<Value, String> {
        let env = decode::<P>(bytes).map_err(|e| e.to_string())?;
        serde_json::to_value(&env).map_err(|e| e.to_string())
    }
    fn doc<T: schemas::Document>(bytes: &[u8]) -> Result<Value, String> {
        let d = decode_document::<T>(bytes).map_err(|e| e.to_string())?;
        serde_json::to_value(&d).map_err(|e| e.to_string())
    }
    Some(match schema_name {
        n if MatchRequestData::is_known(n) => ev::<MatchRequestData>(bytes),
        n if RobotResponseData::is_known(n) => ev::<RobotResponseData>(bytes),
        n if OrchestrationEventData::is_known(n) => ev::<OrchestrationEventData>(bytes),
        n if MatchEventData::is_known(n) => ev::<MatchEventData>(bytes),
        n if RobotCommandData::is_known(n) => ev::<RobotCommandData>(bytes),
        "match-state" => doc::<MatchState>(bytes),
        "robot-pool-state" => doc::<RobotPoolState>(bytes),
        "match-history" => doc::<MatchHistory>(bytes),
        "match-stats" => doc::<MatchStats>(bytes),
        _ => return None,
    })
}

#[test]
fn valid_fixtures_pass_schema_and_decode_and_reencode_valid() {
    let all = fixtures("valid");
    assert!(all.len() >= 28, "expected fixtures for every message type");
    for (schema_name, path) in all {
        let v = validator(&schema_name);
        let instance = load(&path);
        let errors: Vec<String> = v.iter_errors(&instance).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        let bytes = fs::read(&path).expect("read");
        let reencoded = rust_round_trip(&schema_name, &bytes)
            .unwrap_or_else(|| panic!("{}: no Rust type for {schema_name}", path.display()))
            .unwrap_or_else(|e| panic!("{}: decode failed: {e}", path.display()));
        assert!(
            v.is_valid(&reencoded),
            "{}: re-encoded value fails its schema: {reencoded}",
            path.display()
        );
    }
}

#[test]
fn invalid_fixtures_fail_schema_validation() {
    let all = fixtures("invalid");
    assert!(all.len() >= 10);
    for (schema_name, path) in all {
        let instance = load(&path);
        assert!(
            !validator(&schema_name).is_valid(&instance),
            "{} unexpectedly validates",
            path.display()
        );
    }
}

#[test]
fn every_message_and_document_type_has_a_valid_fixture() {
    let names: std::collections::BTreeSet<String> =
        fixtures("valid").into_iter().map(|(n, _)| n).collect();
    let families: [&[&str]; 5] = [
        MatchRequestData::EVENT_TYPES,
        RobotResponseData::EVENT_TYPES,
        OrchestrationEventData::EVENT_TYPES,
        MatchEventData::EVENT_TYPES,
        RobotCommandData::EVENT_TYPES,
    ];
    for event_type in families.into_iter().flatten() {
        assert!(
            names.contains(*event_type),
            "no valid fixture for {event_type}"
        );
    }
}
