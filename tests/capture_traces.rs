//! The committed real-kernel traces: the readiness traces (`traces/readiness/<id>/`), complete,
//! recorded from the current recipes, and in agreement with the measured table of the facts
//! file (`shared/reference/linux-tcp-facts.md` §2.2, §1.3, §7); the seed scenarios' traces
//! (`traces/seeds/<name>/`), complete and recorded from `models/<name>.toml`. No root needed.
#![cfg(target_os = "linux")] // the real-kernel harness (`capture`) is Linux-only

mod capture_support;

use capture_support::{read_pcap, tcp_of, LONG_SEED_TRACES, MAX_TRACE_PCAP_BYTES, SEED_TRACES};
use std::path::Path;
use tcpsim::scenario::readiness::{self, CONDITIONS, OBSERVATION_STEP_COUNT};
use tcpsim::scenario::types::Scenario;

fn trace_dir(id: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/readiness").join(id)
}

#[cfg(target_os = "linux")]
#[test]
fn committed_traces_give_22_complete_rows() {
    let rows = tcpsim::table::recorded_table();
    assert_eq!(rows.len(), 22);
    for (row, id) in rows.iter().zip(CONDITIONS) {
        assert_eq!(row.condition, id);
        let cells = row.cells();
        let names: Vec<_> = cells.iter().map(|(n, _)| *n).take(7).collect();
        assert_eq!(
            names,
            ["poll", "epoll", "peek", "poll_after_peek", "so_error_after_peek", "send", "poll_after_send"]
        );
        for (name, v) in &cells {
            assert!(!v.is_empty() && !v.contains('?'), "{id} {name}: `{v}`");
        }
        assert_eq!(row.first_send.is_some(), id == "send-during-partition", "{id}");
    }
    assert!(
        tcpsim::table::RECORDED_KERNEL.starts_with("6.18"),
        "recorded on {}",
        tcpsim::table::RECORDED_KERNEL
    );
}

/// Each trace was recorded from the recipe as it is now (re-record with
/// `TCPSIM_RECORD_TRACES=1 cargo test --test capture_record` after changing a recipe), and its
/// files are whole: a log with one line per step, the kernel version, a complete pcap.
#[test]
fn every_trace_matches_its_recipe_and_is_complete() {
    for id in CONDITIONS {
        let dir = trace_dir(id);
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{id}/{n}: {e}"));
        let expected = readiness::observed_recipe(id).unwrap();
        let recorded: Scenario =
            toml::from_str(&read("scenario.toml")).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            toml::to_string(&recorded).unwrap(),
            toml::to_string(&expected).unwrap(),
            "{id}: trace recorded from a different recipe; re-record it"
        );
        let log = read("observations.jsonl");
        let lines: Vec<tcpsim::scenario::types::Observation> =
            log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{id}: {e}"))).collect();
        assert_eq!(lines.len(), expected.script.len(), "{id}: one observation per step");
        assert!(lines.len() > OBSERVATION_STEP_COUNT);
        for (i, (o, step)) in lines.iter().zip(&expected.script).enumerate() {
            assert_eq!((o.step, o.op.as_str()), (i, step.op()), "{id}");
        }
        assert!(read("kernel.txt").starts_with("6.18"), "{id}");

        let pcap = std::fs::read(dir.join("capture.pcap")).unwrap();
        let pcap = read_pcap(&pcap).unwrap_or_else(|e| panic!("{id}/capture.pcap: {e}"));
        assert_eq!(pcap.linktype, 1, "{id}: Ethernet");
        let tcp: Vec<_> = pcap.packets.iter().filter_map(|(_, f)| tcp_of(f)).collect();
        // Every recipe but the bare listener makes a connection attempt: its SYN is on the wire.
        if id != "listen-empty" {
            assert!(tcp.iter().any(|t| t.2 && t.1 == 8080), "{id}: no SYN to the server in the capture");
        }
    }
}

/// The recorded rows against the facts file's measured table (§2.2; §1.3 and §7 for the peek
/// and SO_ERROR after an error; the masks restricted to the requested IN|PRI|OUT|RDHUP plus
/// ERR|HUP). `peer-closed`'s `poll_after_send` is not in the facts file: on a veth (as on
/// loopback) the peer's RST is back before `send` returns, so the poll after it sees the error.
#[cfg(target_os = "linux")]
#[test]
fn recorded_rows_agree_with_the_measured_facts() {
    const DEAD: &str = "IN OUT RDHUP ERR HUP";
    const DEAD_READ: &str = "IN OUT RDHUP HUP";
    // (id, poll, peek, poll_after_peek, so_error, send, poll_after_send)
    let expected: [(&str, &str, &str, &str, &str, &str, &str); 22] = [
        ("listen-empty", "", "-1 ENOTCONN", "", "0", "-1 EPIPE", ""),
        ("listen-pending", "IN", "-1 ENOTCONN", "IN", "0", "-1 EPIPE", "IN"),
        ("connect-in-progress", "", "-1 EAGAIN", "", "0", "-1 EAGAIN", ""),
        ("connect-refused", DEAD, "-1 ECONNREFUSED", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        ("connect-timeout", DEAD, "-1 ETIMEDOUT", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        ("established-idle", "OUT", "-1 EAGAIN", "OUT", "0", "1", "OUT"),
        ("established-data", "IN OUT", "1 (data)", "IN OUT", "0", "1", "IN OUT"),
        ("sndbuf-full", "", "-1 EAGAIN", "", "0", "-1 EAGAIN", ""),
        ("peer-fin", "IN OUT RDHUP", "0 (eof)", "IN OUT RDHUP", "0", "1", "IN OUT RDHUP"),
        ("peer-fin-with-data", "IN OUT RDHUP", "1 (data)", "IN OUT RDHUP", "0", "1", "IN OUT RDHUP"),
        ("peer-closed", "IN OUT RDHUP", "0 (eof)", "IN OUT RDHUP", "0", "1", DEAD),
        ("local-shut-wr", "OUT", "-1 EAGAIN", "OUT", "0", "-1 EPIPE", "OUT"),
        ("both-shut-wr", DEAD_READ, "0 (eof)", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        ("local-shut-rd", "IN OUT RDHUP", "0 (eof)", "IN OUT RDHUP", "0", "1", "IN OUT RDHUP"),
        ("rst-received", DEAD, "-1 ECONNRESET", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        ("rst-unread-close", DEAD, "-1 ECONNRESET", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        // RST in CLOSE_WAIT: sk_err = EPIPE; the peek returns 0 (SOCK_DONE wins) and leaves it.
        ("write-after-peer-close", DEAD, "0 (eof)", DEAD, "EPIPE", "-1 EPIPE", DEAD_READ),
        ("retrans-timeout", DEAD, "-1 ETIMEDOUT", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        ("keepalive-timeout", DEAD, "-1 ETIMEDOUT", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
        ("idle-partition-no-keepalive", "OUT", "-1 EAGAIN", "OUT", "0", "1", "OUT"),
        ("send-during-partition", "OUT", "-1 EAGAIN", "OUT", "0", "1", "OUT"),
        ("peer-reboot", DEAD, "-1 ECONNRESET", DEAD_READ, "0", "-1 EPIPE", DEAD_READ),
    ];
    let mask = |s: &str| s.split_whitespace().map(|f| format!("POLL{f}")).collect::<Vec<_>>();
    let rows = tcpsim::table::recorded_table();
    for (row, (id, poll, peek, pap, soe, send, pas)) in rows.iter().zip(expected) {
        assert_eq!(row.condition, id);
        assert_eq!(row.poll, mask(poll), "{id} poll");
        assert_eq!(row.epoll, row.poll, "{id}: poll and epoll agree");
        assert_eq!(row.peek, peek, "{id} peek");
        assert_eq!(row.poll_after_peek, mask(pap), "{id} poll_after_peek");
        assert_eq!(row.so_error_after_peek, soe, "{id} so_error_after_peek");
        assert_eq!(row.send, send, "{id} send");
        assert_eq!(row.poll_after_send, mask(pas), "{id} poll_after_send");
    }
    assert_eq!(rows[20].first_send.as_deref(), Some("100"), "a send during a partition is only queued");
}

/// `traces/seeds/` holds exactly the listed seed captures, each recorded from its model as it
/// is now (re-record with `TCPSIM_RECORD_SEEDS=1 cargo test --test capture_record` after
/// changing one; only the prose `description` may differ), each short enough to have run in
/// real time, and whole: one observation per script step, the kernel version, a pcap under
/// 1 MB holding the connection.
#[test]
fn seed_traces_are_complete_and_recorded_from_their_models() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<String> = std::fs::read_dir(repo.join("traces/seeds"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut listed: Vec<&str> = SEED_TRACES.iter().chain(LONG_SEED_TRACES.iter()).copied().collect();
    listed.sort();
    assert_eq!(dirs, listed, "traces/seeds/ holds the listed captures");
    let without_prose = |mut sc: Scenario| {
        sc.description.clear();
        toml::to_string(&sc).unwrap()
    };
    for name in listed {
        let dir = repo.join("traces/seeds").join(name);
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{name}/{n}: {e}"));
        let recorded = tcpsim::scenario::load(&dir.join("scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
        let model = tcpsim::scenario::load(&repo.join("models").join(format!("{name}.toml"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(recorded.name, name);
        assert_eq!(without_prose(recorded.clone()), without_prose(model), "{name}: recorded from a different model; re-record it");
        let short = recorded.duration.0 <= tcpsim::time::Dur::from_secs(120);
        assert_eq!(short, SEED_TRACES.contains(&name), "{name}: a seed over 2 minutes of real time is listed as long");

        let lines: Vec<tcpsim::scenario::types::Observation> =
            read("observations.jsonl").lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}"))).collect();
        assert_eq!(lines.len(), recorded.script.len(), "{name}: one observation per step");
        for (i, (o, step)) in lines.iter().zip(&recorded.script).enumerate() {
            assert_eq!((o.step, o.op.as_str()), (i, step.op()), "{name}");
        }
        assert!(read("kernel.txt").starts_with("6.18"), "{name}");
        let report: serde_json::Value = serde_json::from_str(&read("report.json")).unwrap();
        assert_eq!(report["scenario"], name, "{name}/report.json");

        let bytes = std::fs::read(dir.join("capture.pcap")).unwrap();
        assert!((bytes.len() as u64) < MAX_TRACE_PCAP_BYTES, "{name}: capture.pcap too large to commit");
        let pcap = read_pcap(&bytes).unwrap_or_else(|e| panic!("{name}/capture.pcap: {e}"));
        assert_eq!(pcap.linktype, 1, "{name}: Ethernet");
        let tcp: Vec<_> = pcap.packets.iter().filter_map(|(_, f)| tcp_of(f)).collect();
        assert!(tcp.iter().any(|t| t.2), "{name}: no SYN in the capture");
    }
}
