//! The committed `schemas/json/*.schema.json` files equal the generated schemas.
//! Run with `UPDATE_SCHEMAS=1` to rewrite them after changing a type.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

fn json_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json")
}

/// Sorts object keys recursively, so the files do not depend on serde_json's
/// `preserve_order` feature being on or off in a given build.
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(canonical).collect())
        }
        other => other.clone(),
    }
}

fn render(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(&canonical(value)).expect("schemas serialize");
    text.push('\n');
    text
}

#[test]
fn committed_json_schemas_match_generated_ones() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let dir = json_dir();
    let generated = schemas::all_schemas();
    let mut expected_files = BTreeSet::new();
    let mut stale = Vec::new();
    for (name, schema) in &generated {
        let file = format!("{name}.schema.json");
        let path = dir.join(&file);
        let text = render(schema);
        expected_files.insert(file.clone());
        if update {
            fs::create_dir_all(&dir).expect("create schemas/json");
            fs::write(&path, &text).expect("write schema");
        } else if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file);
        }
    }
    let mut extra = Vec::new();
    for entry in fs::read_dir(&dir).expect("read schemas/json") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".schema.json") && !expected_files.contains(&name) {
            if update {
                fs::remove_file(dir.join(&name)).expect("remove stale schema");
            } else {
                extra.push(name);
            }
        }
    }
    assert!(
        stale.is_empty() && extra.is_empty(),
        "schemas/json is out of date (rerun with UPDATE_SCHEMAS=1): changed {stale:?}, extra {extra:?}"
    );
}

#[test]
fn every_generated_schema_is_a_valid_draft_2020_12_schema() {
    for (name, schema) in schemas::all_schemas() {
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(e) = jsonschema::validator_for(&schema) {
            panic!("{name}: {e}");
        }
    }
}
