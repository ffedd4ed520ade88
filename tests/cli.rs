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

/// The trace's records, each as JSON.
fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A time as the timeline prints it.
fn secs(v: &serde_json::Value) -> String {
    format!("{:.6} s", v["t"].as_u64().unwrap() as f64 / 1e9)
}

/// The report's timeline section: its lines, without their indent.
fn timeline_of(report: &str) -> Vec<String> {
    let mut lines = report.lines().skip_while(|l| !l.starts_with("timeline of the first connection")).skip(1);
    lines.by_ref().take_while(|l| !l.is_empty()).map(|l| l.trim().to_string()).collect()
}

#[test]
fn default_run_tells_its_connection_in_a_dozen_lines_read_from_its_trace() {
    let dir = scratch("timeline");
    let trace = dir.join("run.jsonl");
    let out = tcpsim(&["run", "--trace", trace.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let lines = timeline_of(&String::from_utf8(out.stdout).unwrap());
    assert!((8..=14).contains(&lines.len()), "{lines:#?}");
    // Without --trace the run keeps its trace in memory and tells the same story.
    let plain = tcpsim(&["run"]);
    assert_eq!(timeline_of(&String::from_utf8(plain.stdout).unwrap()), lines);

    let recs = records(&trace);
    let find = |f: &dyn Fn(&serde_json::Value) -> bool| recs.iter().find(|v| f(v)).unwrap_or_else(|| panic!("no such record"));
    let syn = find(&|v| v["ev"] == "seg_sent" && v["flags"] == "S");
    let synack = find(&|v| v["ev"] == "seg_recv" && v["host"] == "client" && v["flags"] == "S.");
    let line = |what: &str| lines.iter().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what:?} in {lines:#?}"));
    assert!(line("sends SYN").starts_with(&secs(syn)), "{lines:#?}");
    // The handshake: at the SYN-ACK's arrival, one round trip after the SYN.
    let handshake = line("SYN-ACK arrives");
    assert!(handshake.starts_with(&secs(synack)), "{handshake}");
    let rtt_ms = (synack["t"].as_u64().unwrap() - syn["t"].as_u64().unwrap()) as f64 / 1e6;
    assert!(handshake.contains(&format!("connected {rtt_ms:.3} ms after the SYN")), "{handshake}");
    // Slow start: the first round trip is the first flight, sent at the SYN-ACK; the flight
    // grows from each round trip to the next.
    let first_flight = recs.iter().filter(|v| v["ev"] == "seg_sent" && v["host"] == "client" && v["t"] == synack["t"] && v["len"].as_u64() > Some(0)).count();
    assert!(line("round trip 1:").ends_with(&format!(": {first_flight} segments in flight")), "{lines:#?}");
    let flights: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.split_once("round trip ")?.1.split_once(": ")?.1.split(' ').next()?.parse().ok())
        .collect();
    assert!(flights.len() >= 3 && flights.windows(2).all(|w| w[1] > w[0]), "{flights:?}");
    // Nothing lost on this link; the close as the state records have it.
    assert!(recs.iter().all(|v| v["ev"] != "seg_drop"));
    assert_eq!(lines.last().unwrap(), "no data segment lost");
    let tw = find(&|v| v["ev"] == "state" && v["host"] == "client" && v["to"] == "TIME_WAIT");
    assert!(line("client in TIME_WAIT (rcv_fin)").starts_with(&secs(tw)), "{lines:#?}");
    let closed = find(&|v| v["ev"] == "state" && v["host"] == "server" && v["to"] == "CLOSE" && v["from"] == "LAST_ACK");
    assert!(line("server in CLOSE (rcv_ack_of_fin)").starts_with(&secs(closed)), "{lines:#?}");
}

#[test]
fn timeline_names_the_first_loss_its_retransmission_and_the_recovery() {
    // The default scenario behind a 20-packet queue: slow start overflows it.
    let dir = scratch("timeline-loss");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.toml")).unwrap();
    let text = text.replace("bandwidth = \"10Mbit\"\n", "bandwidth = \"10Mbit\"\nqueue = 20\n");
    let (scenario, trace) = (dir.join("queue.toml"), dir.join("run.jsonl"));
    std::fs::write(&scenario, text).unwrap();
    let out = tcpsim(&["run", scenario.to_str().unwrap(), "--trace", trace.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let lines = tcpsim::world::timeline::timeline(&std::fs::read_to_string(&trace).unwrap());
    let lines: Vec<&str> = lines.iter().map(|l| l.trim()).collect();

    let recs = records(&trace);
    let isn = recs.iter().find(|v| v["ev"] == "seg_sent" && v["flags"] == "S").unwrap()["seq"].as_u64().unwrap();
    let client_data = |v: &serde_json::Value| v["src"] == "10.0.0.1:40964" && v["len"].as_u64() > Some(0);
    let (at, drop) = recs.iter().enumerate().find(|(_, v)| v["ev"] == "seg_drop" && client_data(v)).expect("the queue overflows");
    let rel = (drop["seq"].as_u64().unwrap() + (1 << 32) - isn) % (1 << 32);
    let line = |what: &str| *lines.iter().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what:?} in {lines:#?}"));
    let loss = line("first loss");
    assert!(loss.starts_with(&secs(drop)), "{loss}");
    assert!(loss.contains(&format!("seq {rel} (1448 B) dropped on wire a_to_b (queue_full)")), "{loss}");
    // The retransmission of that very segment, when the trace has it.
    let rtx = recs[at..].iter().find(|v| v["ev"] == "seg_sent" && client_data(v) && v["seq"] == drop["seq"]).unwrap();
    let again = line("retransmitted");
    assert!(again.starts_with(&format!("{}  seq {rel} retransmitted", secs(rtx))), "{again}");
    // Recovered when the last byte sent before the retransmission is acknowledged.
    let recovered = line("recovered");
    let dropped = recs.iter().filter(|v| v["ev"] == "seg_drop" && client_data(v)).count();
    assert!(dropped > 1 && recovered.contains(&format!("({dropped} segments lost, ")), "{recovered}");
    assert!(lines.iter().all(|l| *l != "no data segment lost"));
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

/// Runs `tcpsim ARGS` (in a scratch directory `name` of its own) with standard error on a pseudo-terminal (util-linux `script`), its
/// standard output discarded; what the terminal showed, or None without `script`.
fn on_a_terminal(name: &str, args: &str) -> Option<String> {
    let dir = scratch(name);
    let log = dir.join("tty.log");
    let cmd = format!("{} {args} > /dev/null", env!("CARGO_BIN_EXE_tcpsim"));
    let out = Command::new("script").args(["-qfec", &cmd]).arg(&log).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&std::fs::read(log).unwrap()).replace('\r', "\n"))
}

#[test]
fn replay_shows_its_progress_on_a_terminal_and_nothing_in_a_pipe() {
    let capture = "traces/seeds/peer-resets/capture.pcap";
    let piped = tcpsim(&["replay", capture]);
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    assert!(piped.stderr.is_empty(), "{}", String::from_utf8_lossy(&piped.stderr));
    let Some(screen) = on_a_terminal("tty-replay", &format!("replay {capture}")) else {
        eprintln!("skipped: no `script` to give the replay a terminal");
        return;
    };
    assert!(screen.lines().any(|l| l.contains("replay") && l.contains("simulated") && l.contains(" ms")), "{screen}");
}

#[test]
fn run_and_sweep_show_their_progress_on_a_terminal_and_nothing_in_a_pipe() {
    let piped = tcpsim(&["run", "models/lossy-partition.toml"]);
    assert!(piped.status.success() && piped.stderr.is_empty(), "{}", String::from_utf8_lossy(&piped.stderr));
    let Some(screen) = on_a_terminal("tty-run", "run models/lossy-partition.toml") else {
        eprintln!("skipped: no `script` to give the run a terminal");
        return;
    };
    assert!(screen.lines().any(|l| l.starts_with("lossy-partition") && l.contains("simulated") && l.contains("of 60000 ms")), "{screen}");
    let sweep = on_a_terminal("tty-sweep", "sweep models/resume-after-reconnect.toml --seeds 0..3").unwrap();
    assert!(sweep.lines().any(|l| l.contains("/3 seeds")), "{sweep}");
}
