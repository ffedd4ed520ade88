//! `docs/rules.md` is generated from the rule catalog. This test fails when the file is stale;
//! `UPDATE_DOCS=1 cargo test --test readiness_rules_doc` rewrites it.

use std::path::Path;

#[test]
fn docs_rules_md_is_generated_from_the_catalog() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let generated = tcpsim::rules::render_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/rules.md");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_DOCS=1 to generate it",
            path.display()
        )
    });
    assert!(
        on_disk == generated,
        "{} is stale: regenerate with `UPDATE_DOCS=1 cargo test --test readiness_rules_doc`",
        path.display()
    );
}

#[test]
fn every_rule_is_documented_with_scope_and_source() {
    let doc = tcpsim::rules::render_markdown();
    for r in tcpsim::rules::catalog::RULES {
        let heading = format!(
            "## `{}`\n\n- Scope: {}\n- Rule: {}\n- Source: {}\n",
            r.id,
            r.os.describe(),
            r.text,
            r.source
        );
        assert!(doc.contains(&heading), "{} missing from the document", r.id);
    }
}
