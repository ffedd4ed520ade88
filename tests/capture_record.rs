//! Re-records the committed real-kernel readiness traces (`traces/readiness/`).
//!
//! Not a check: it rewrites files. It runs only when asked
//! (`TCPSIM_RECORD_TRACES=1 cargo test --test capture_record -- --nocapture`, as root), and
//! otherwise says so and returns.

#![cfg(target_os = "linux")]

use std::path::Path;
use tcpsim::capture;
use tcpsim::scenario::readiness::CONDITIONS;

#[test]
fn record_readiness_traces() {
    if std::env::var("TCPSIM_RECORD_TRACES").as_deref() != Ok("1") {
        eprintln!("skipped: set TCPSIM_RECORD_TRACES=1 (as root) to re-record traces/readiness/");
        return;
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/readiness");
    let rows = capture::run_all(&CONDITIONS, &base).expect("capture all readiness recipes");
    std::fs::write(base.join("kernel.txt"), format!("{}\n", capture::kernel_release())).unwrap();
    for r in &rows {
        eprintln!("{}: {:?}", r.condition, r.cells());
    }
    assert_eq!(rows.len(), CONDITIONS.len());
}
