//! A user's own capture replayed: a plain-socket program (`tests/replay_programs/echo.py`)
//! run in two network namespaces this test makes, captured with plain `tcpdump -w` (a large
//! `-B`), no observation log beside it. Root and `ip netns` needed: skipped with the reason
//! otherwise, and failed instead when `TCPSIM_REQUIRE_CAPTURE=1` (as CI sets it).
#![cfg(target_os = "linux")]

mod capture_support;

use capture_support::live_or_skip;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tcpsim::replay::{replay_file, ReplayOptions};

/// Two namespaces joined by a veth pair, removed when dropped.
struct Netns {
    names: [String; 2],
}

const CLIENT_ADDR: &str = "10.77.0.1";
const SERVER_ADDR: &str = "10.77.0.2";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let id = std::process::id();
        let names = [format!("tsrl-{tag}-c-{id}"), format!("tsrl-{tag}-s-{id}")];
        let ns = Netns { names };
        let [c, s] = &ns.names;
        ip(&["netns", "add", c]);
        ip(&["netns", "add", s]);
        ip(&["link", "add", "vc", "netns", c, "type", "veth", "peer", "name", "vs", "netns", s]);
        for (n, dev, addr) in [(c, "vc", CLIENT_ADDR), (s, "vs", SERVER_ADDR)] {
            ip(&["-n", n, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", n, "link", "set", dev, "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        ns
    }

    fn exec(&self, which: usize, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[which]]).args(cmd);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Reads `child`'s stream line by line until one contains `what`.
fn wait_for(lines: &mut impl BufRead, what: &str, who: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines.read_line(&mut line).unwrap_or(0);
        assert!(n > 0, "{who} ended before printing `{what}`");
        if line.contains(what) {
            return;
        }
    }
}

/// Runs echo.py's server and client in the namespaces with tcpdump on the server's side;
/// returns the capture's path, alone in its directory.
fn capture_echo(ns: &Netns, dir: &Path) -> PathBuf {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay_programs/echo.py");
    let program = program.to_str().unwrap();
    let pcap = dir.join("capture.pcap");
    let mut dump = ns
        .exec(1, &["tcpdump", "-i", "vs", "-B", "65536", "--immediate-mode", "-w", pcap.to_str().unwrap(), "tcp"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump runs");
    let mut dump_err = BufReader::new(dump.stderr.take().unwrap());
    wait_for(&mut dump_err, "listening on", "tcpdump");
    let mut server = ns.exec(1, &["python3", program, "server", SERVER_ADDR, "8080"]).stdout(Stdio::piped()).spawn().expect("python3 runs");
    wait_for(&mut BufReader::new(server.stdout.take().unwrap()), "ready", "echo.py server");
    let client = ns.exec(0, &["python3", program, "client", SERVER_ADDR, "8080"]).status().expect("python3 runs");
    assert!(client.success(), "echo.py client");
    assert!(server.wait().expect("server ends").success(), "echo.py server");
    // The close's last ACK left within the call; give tcpdump a moment, then stop it as a
    // user would (SIGINT: it flushes and reports its drops).
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = Command::new("kill").args(["-INT", &dump.id().to_string()]).status();
    let mut report = String::new();
    let _ = dump_err.read_to_string(&mut report);
    let _ = dump.wait();
    assert!(report.lines().any(|l| l.trim() == "0 packets dropped by kernel"), "tcpdump lost packets: {report}");
    pcap
}

#[test]
fn a_plain_tcpdump_of_an_echo_program_replays_with_every_segment_compared() {
    if !live_or_skip("replay_live") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay_live_echo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ns = Netns::new("echo");
    let pcap = capture_echo(&ns, &dir);
    drop(ns);
    let report = replay_file(&pcap, &ReplayOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let text = report.to_text();
    println!("{text}");
    assert!(report.observations.is_none());
    assert_eq!(report.connections.len(), 2, "one connection, each side under test in turn: {text}");
    // Every segment each side sent was compared.
    for c in &report.connections {
        assert!(c.segments_captured >= 6, "a SYN, three data segments, a FIN and more: {text}");
        assert_eq!(c.segments_compared, c.segments_captured, "{text}");
    }
    assert!(report.complete, "{text}");
    // Each side's three 100-byte writes, half-close / close were inferred ...
    let calls = |side: &str| report.inferred.iter().filter(|i| i.side.name() == side).map(|i| i.call.as_str()).filter(|c| *c != "read").collect::<Vec<_>>();
    assert_eq!(calls("client"), ["write(100)", "write(100)", "write(100)", "close"], "{text}");
    assert_eq!(calls("server"), ["write(100)", "write(100)", "write(100)", "close"], "{text}");
    // ... and the model sent the same segments: no data or FIN missing, extra or elsewhere.
    let structural: Vec<_> = report.divergences.iter().filter(|d| d.divergence.class.stops_first()).collect();
    assert!(structural.is_empty(), "{text}");
}
