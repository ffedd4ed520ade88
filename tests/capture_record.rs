//! Re-records the committed real-kernel traces: the readiness traces (`traces/readiness/`)
//! and the seed scenarios' (`traces/seeds/`).
//!
//! Not a check: it rewrites files. It runs only when asked, as root
//! (`TCPSIM_RECORD_TRACES=1` for the readiness traces, about 7 s; `TCPSIM_RECORD_SEEDS=1` for
//! the seeds, about 70 s: `cargo test --test capture_record -- --nocapture`), and otherwise
//! says so and returns.
#![cfg(target_os = "linux")] // the real-kernel harness (`capture`) is Linux-only

#![cfg(target_os = "linux")]

mod capture_support;

use capture_support::{MAX_TRACE_PCAP_BYTES, SEED_TRACES};
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
    let rows = capture::run_all(&CONDITIONS, tcpsim::table::TableLink::Veth, &base).expect("capture all readiness recipes");
    std::fs::write(base.join("kernel.txt"), format!("{}\n", capture::kernel_release())).unwrap();
    for r in &rows {
        eprintln!("{}: {:?}", r.condition, r.cells());
    }
    assert_eq!(rows.len(), CONDITIONS.len());
}

/// Re-records `traces/seeds/<name>/` from `models/<name>.toml` for every seed scenario short
/// enough to run in real time. The capture keeps its own `scenario.toml`: replay uses that
/// copy, so later edits to `models/` do not change what a trace means.
#[test]
fn record_seed_traces() {
    if std::env::var("TCPSIM_RECORD_SEEDS").as_deref() != Ok("1") {
        eprintln!("skipped: set TCPSIM_RECORD_SEEDS=1 (as root) to re-record traces/seeds/");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in SEED_TRACES {
        let model = repo.join("models").join(format!("{name}.toml"));
        let sc = tcpsim::scenario::load(&model).unwrap_or_else(|e| panic!("{e}"));
        let out = repo.join("traces/seeds").join(name);
        let report = capture::capture(&sc, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
        eprint!("{report}");
        let pcap = std::fs::metadata(out.join("capture.pcap")).unwrap().len();
        assert!(pcap < MAX_TRACE_PCAP_BYTES, "{name}: capture.pcap is {pcap} bytes: too large to commit");
    }
}

/// Captures one scenario file (`TCPSIM_CAPTURE_FILE=path TCPSIM_CAPTURE_OUT=dir`), as
/// `tcpsim capture` does, and prints the report: for recording traces of other scenarios.
#[test]
fn capture_scenario_file() {
    let (Ok(file), Ok(out)) = (std::env::var("TCPSIM_CAPTURE_FILE"), std::env::var("TCPSIM_CAPTURE_OUT"))
    else {
        eprintln!("skipped: set TCPSIM_CAPTURE_FILE and TCPSIM_CAPTURE_OUT (as root) to capture a scenario");
        return;
    };
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let sc: tcpsim::scenario::types::Scenario =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let report = capture::capture(&sc, Path::new(&out)).unwrap_or_else(|e| panic!("{file}: {e}"));
    eprint!("{report}");
    for o in &report.observations {
        eprintln!("{}", serde_json::to_string(o).unwrap());
    }
}
