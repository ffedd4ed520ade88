//! The `tcpsim` binary as a newcomer and a script use it: the README's commands, exit
//! statuses, errors that name the place, nothing written half-way, byte-identical reruns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpsim")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("tcpsim runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcpsim-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn default_run_prints_a_summary() {
    let out = tcpsim(&["run"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("scenario default"), "{text}");
    assert!(text.contains("state graph:"), "{text}");
}

#[test]
fn json_report_names_what_tools_rely_on() {
    let out = tcpsim(&["run", "models/default.toml", "--format", "json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["scenario", "seed", "end_ns", "sockets", "hosts"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let sockets = v["sockets"].as_array().unwrap();
    assert!(!sockets.is_empty());
    assert!(sockets.iter().all(|s| s.get("state").is_some() && s.get("errors").is_some()));
    assert!(v["hosts"][0].get("counters").is_some());
    // Which state-graph edges the run took: the handshake's, at least.
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(edges.len() as u64, v["edges_covered"].as_u64().unwrap());
    assert!(edges.iter().any(|e| e["from"] == "SYN_SENT" && e["to"] == "ESTABLISHED" && e["cause"] == "rcv_syn_ack"));
}

#[test]
fn same_seed_same_trace_bytes_other_seed_differs() {
    let dir = scratch("determinism");
    let run = |seed: &str, name: &str| {
        let p = dir.join(name);
        let out = tcpsim(&["run", "models/lossy-partition.toml", "--seed", seed, "--trace", p.to_str().unwrap()]);
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(p).unwrap()
    };
    let a = run("7", "a.jsonl");
    let b = run("7", "b.jsonl");
    let c = run("8", "c.jsonl");
    assert!(!a.is_empty());
    assert_eq!(a, b, "same seed must give byte-identical traces");
    assert_ne!(a, c, "another seed must give another trace");
    let text = String::from_utf8(a).unwrap();
    assert!(text.contains("\"reason\":\"loss\""), "the lossy link's drops are traced with their reason");
    assert!(text.contains("\"reason\":\"partition\""), "the partition's drops are traced with their reason");
}

fn assert_bad_input(fixture: &str, line: usize, field: &str) {
    let dir = scratch(fixture.trim_end_matches(".toml"));
    let trace = dir.join("out.jsonl");
    let pcap = dir.join("out.pcap");
    let path = Path::new("tests/fixtures/scenarios/bad").join(fixture);
    let out = tcpsim(&["run", path.to_str().unwrap(), "--trace", trace.to_str().unwrap(), "--pcap", pcap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "exit status for {fixture}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("{}:{line}:", path.display())), "{fixture}: error names file and line: {err}");
    assert!(err.contains(field), "{fixture}: error names the field {field}: {err}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{fixture}: nothing may be written: {left:?}");
}

#[test]
fn malformed_scenarios_exit_2_name_the_place_and_write_nothing() {
    for (fixture, field) in [
        ("duration-unit.toml", "link[0].delay"),
        ("negative-delay.toml", "link[0].delay"),
        ("fault-missing-link.toml", "fault[0].link"),
        ("unknown-field.toml", "link[0].dealy"),
        ("unknown-host.toml", "link[0].b"),
        ("app-unknown-host.toml", "app[0].host"),
    ] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/bad").join(fixture))
            .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let line = text.lines().position(|l| l.contains("# error:") && !l.starts_with('#')).expect("fixture marks its error line") + 1;
        assert_bad_input(fixture, line, field);
    }
}

#[test]
fn graph_is_dot_and_schema_is_json() {
    let out = tcpsim(&["graph"]);
    assert!(out.status.success());
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("SYN_SENT") && dot.contains("TIME_WAIT"));
    let out = tcpsim(&["schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["properties"]["duration"].is_object(), "{v}");
}

#[test]
fn packetdrill_exit_status_says_pass_fail_or_bad_input() {
    let dir = scratch("packetdrill");
    let ok = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n";
    std::fs::write(dir.join("ok.pkt"), ok).unwrap();
    std::fs::write(dir.join("bad.pkt"), ok.replace("listen(3, 1) = 0", "listen(3, 1) = -1 EINVAL (Invalid argument)")).unwrap();
    let out = tcpsim(&["packetdrill", dir.join("ok.pkt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = tcpsim(&["packetdrill", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["totals"]["pass"].as_u64(), v["totals"]["fail"].as_u64()), (Some(1), Some(1)), "{v}");
    let bad = v["scripts"].as_array().unwrap().iter().find(|s| s["result"] == "fail").unwrap();
    assert_eq!(bad["line"], 3);
    assert_eq!(bad["error"], "runtime error in listen call: Expected result -1 but got 0");
    std::fs::write(dir.join("syntax.pkt"), "0 socket(..., SOCK_STREAM\n").unwrap();
    let out = tcpsim(&["packetdrill", dir.join("syntax.pkt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax.pkt"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tcpsim(&["packetdrill", dir.join("missing.pkt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
