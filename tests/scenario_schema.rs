//! The committed JSON Schema (`docs/scenario.schema.json`) is what the types generate.
//! Regenerate it with `UPDATE_SCHEMA=1 cargo test --test scenario_schema`.

use std::path::Path;
use tcpsim::scenario::schema::{json_schema, json_schema_text};

#[test]
fn committed_schema_is_what_the_types_generate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenario.schema.json");
    let generated = json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write docs/scenario.schema.json");
    }
    let committed = std::fs::read_to_string(&path).expect("docs/scenario.schema.json is committed");
    assert!(
        committed == generated,
        "docs/scenario.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test scenario_schema`"
    );
}

#[test]
fn schema_spells_fields_as_the_file_does() {
    let schema = json_schema();
    let props = schema["properties"].as_object().expect("top-level properties");
    for key in ["name", "duration", "seed", "host", "link", "fault", "middlebox", "app", "script", "observe"]
    {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
    assert!(!props.contains_key("hosts"), "Rust field names must not leak into the schema");
    let required: Vec<&str> =
        schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(required, ["name", "duration"]);
    assert_eq!(schema["additionalProperties"], serde_json::Value::Bool(false));
    // Durations are strings with a unit, as the loader parses them.
    let dur = &schema["$defs"]["DurSpec"];
    assert_eq!(dur["type"], "string");
    assert!(dur["pattern"].as_str().unwrap().contains("ms"));
}
