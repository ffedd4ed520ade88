//! The JSON Schema of scenario files, generated from the types so that it cannot drift from
//! what the loader accepts. Committed as `docs/scenario.schema.json` (editors use it to complete
//! and check `models/*.toml`); `tcpsim schema` prints it.

use super::types::Scenario;

/// The schema of [`Scenario`], as JSON.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Scenario)).expect("a schema is plain JSON")
}

/// The schema as committed: pretty-printed, with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a schema is plain JSON");
    text.push('\n');
    text
}
