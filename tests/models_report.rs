//! The run report shows a scenario's answer: for each socket the errors its program saw,
//! when it first saw one and when the kernel raised it; the script's results; the counters.

mod scenario_text;
mod models_support;
use models_support::*;
use std::process::Command;
use tcpsim::errno::Errno;
use tcpsim::scenario::parse;

fn tcpsim_run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpsim"))
        .arg("run")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("tcpsim runs");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

// The times these reports show are the models' on Linux's timer wheel (HZ = 250), as
// `docs/questions.md` gives and explains them; `models_dead_peer.rs`, `models_backlog.rs` and
// `models_nat.rs` hold the same runs to their algorithms on textbook timers.

#[test]
fn text_report_says_when_the_error_was_raised_and_when_the_program_saw_it() {
    let text = tcpsim_run(&["models/cable-unplugged-send.toml"]);
    let line = text.lines().find(|l| l.trim_start().starts_with("client   c ")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("CLOSE") && line.contains("ETIMEDOUT (raised by the kernel at 946.176 s, first seen at 1020.015 s)"),
        "{line}"
    );
    // The script's results, as a C programmer would print them.
    assert!(text.contains("1020.015 s  15 recv         c        -1 ETIMEDOUT"), "{text}");
    assert!(text.contains("[POLLIN|POLLOUT|POLLRDHUP|POLLERR|POLLHUP]"), "{text}");
    assert!(text.contains("state=ESTABLISHED retransmits=8"), "{text}");
}

#[test]
fn text_report_shows_an_error_the_program_never_read_and_the_counters() {
    let text = tcpsim_run(&["models/nat-idle-timeout.toml"]);
    assert!(text.contains("no errors seen (ETIMEDOUT raised by the kernel at 1568.768 s, never read)"), "{text}");
    let text = tcpsim_run(&["models/listen-backlog-overflow-reset.toml"]);
    assert!(text.contains("ListenDrops=9 ListenOverflows=9 TCPTimeouts=3"), "{text}");
}

#[test]
fn text_report_shows_when_application_sockets_reached_their_state_and_their_orphans_state() {
    let text = tcpsim_run(&["models/listen-backlog-overflow.toml"]);
    assert!(text.lines().any(|l| l.contains("CLOSE (closed)") && l.contains("since 135.168 s")), "{text}");
    assert!(text.contains("ETIMEDOUT (first at 135.168 s)"), "{text}");
    let text = tcpsim_run(&["models/default.toml"]);
    assert!(text.contains("ESTABLISHED (closed; now TIME_WAIT)"), "{text}");
}

#[test]
fn json_report_keeps_its_fields_and_adds_the_times() {
    let out = tcpsim_run(&["models/listen-backlog-overflow-reset.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["scenario", "seed", "end_ns", "sockets", "hosts", "links", "script_sockets", "script"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let d = v["script_sockets"].as_array().unwrap().iter().find(|k| k["name"] == "d").unwrap();
    assert_eq!(d["errors"], serde_json::json!(["ECONNRESET"]));
    assert_eq!(d["error_raised"], "ECONNRESET");
    assert_eq!(d["error_raised_ns"], 13_570_000_000u64);
    assert_eq!(d["first_error_ns"], 20_208_000_000u64);
    assert_eq!(v["script"][20]["errno"], "ECONNRESET");
}

fn script(steps: &str) -> Run {
    let text = format!("{}{steps}", scenario_text::two_hosts("t", "10s", "5ms"));
    let sc = parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    run_scenario(sc)
}

#[test]
fn a_reused_descriptor_number_does_not_carry_the_old_sockets_error_to_the_new_one() {
    // `a` is refused (nothing listens on 9), closed, and `b` gets the same descriptor number
    // and connects to a listener: a's ECONNREFUSED stays a's.
    let r = script(
        r#"
[[script]]
op = "socket"
host = "server"
sock = "l"
[[script]]
op = "bind"
sock = "l"
port = 80
[[script]]
op = "listen"
sock = "l"
backlog = 4
[[script]]
op = "socket"
host = "client"
sock = "a"
[[script]]
op = "connect"
sock = "a"
to = "server:9"
[[script]]
op = "close"
sock = "a"
[[script]]
op = "socket"
host = "client"
sock = "b"
[[script]]
op = "connect"
sock = "b"
to = "server:80"
"#,
    );
    let a = r.script_socket("a");
    assert_eq!((a.errors.as_slice(), a.closed_by_script, a.state), (&[Errno::ECONNREFUSED][..], true, None));
    assert_eq!((a.error_raised, a.error_raised_ns), (Some(Errno::ECONNREFUSED), Some(2 * 5 * MS)));
    assert_eq!(a.first_error_ns, Some(2 * 5 * MS));
    let b = r.script_socket("b");
    assert_eq!((b.state, b.errors.len(), b.error_raised), (Some("ESTABLISHED"), 0, None));
}

#[test]
fn a_script_socket_on_a_host_where_applications_open_sockets_has_no_guessed_state() {
    let r = script(
        r#"
[[app]]
kind = "server"
host = "server"
port = 80

[[script]]
op = "socket"
host = "server"
sock = "mine"
"#,
    );
    let k = r.script_socket("mine");
    assert_eq!((k.host.as_str(), k.state), ("server", None), "descriptor numbers are shared with the application");
}

/// A client host whose `ip_local_port_range` is `range`, 1 ms from a server on port 80
/// (`server_extra`: more lines of the server app), and `count` clients `interval` apart, each
/// sending `bytes` and closing.
fn clients_of_one_port_range(name: &str, duration: &str, range: [u16; 2], count: u32, interval: &str, bytes: u32, server_extra: &str) -> String {
    let sysctl = format!("sysctl = {{ ip_local_port_range = [{}, {}] }}\n", range[0], range[1]);
    let hosts = scenario_text::two_hosts_with_client(name, duration, "1ms", &sysctl);
    format!(
        r#"{hosts}[[app]]
kind = "server"
host = "server"
port = 80
{server_extra}[[app]]
kind = "client"
host = "client"
to = "server:80"
count = {count}
interval = "{interval}"
bytes = {bytes}
close = true
"#
    )
}

#[test]
fn a_closed_connections_state_is_its_own_after_a_new_connection_takes_its_4_tuple() {
    // One ephemeral port: the second connection, made after the first one's TIME_WAIT
    // (60 s, which the timer wheel's 2.048 s buckets at HZ = 250 end at 61.44 s) ended, has the same 4-tuple. The report follows each socket's own connection,
    // not whichever now holds the addresses.
    let text = clients_of_one_port_range("reuse", "100s", [40000, 40000], 2, "63s", 1000, "");
    let r = run_scenario(parse(&text, "reuse.toml").unwrap_or_else(|e| panic!("{e}")));
    let connects = r.events("state", |v| v["host"] == "client" && v["to"] == "SYN_SENT");
    assert_eq!(connects.len(), 2);
    assert_eq!((&connects[0]["local"], &connects[0]["remote"]), (&connects[1]["local"], &connects[1]["remote"]), "one 4-tuple");
    let expired = r.events("state", |v| v["host"] == "client" && v["from"] == "TIME_WAIT" && v["to"] == "CLOSE");
    assert!(t(expired[0]) < t(connects[1]), "the first connection was gone before the second began");
    let clients: Vec<_> = r.report.sockets.iter().filter(|k| k.role == "client").collect();
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[0].connection_state, Some("CLOSE"), "the first connection's own end, not the second's TIME_WAIT");
    assert_eq!(clients[1].connection_state, Some("TIME_WAIT"));
}

#[test]
fn clients_1_us_apart_beyond_the_ephemeral_range_fail_with_eaddrnotavail() {
    // benches/scenarios/clients-40000.toml in small: 150 connects 1 µs apart into a range of
    // 100 ports. Each connection holds its 4-tuple (TIME_WAIT outlasts the run), so the first
    // 100 get a port each and every later connect() finds none (__inet_hash_connect).
    let text = clients_of_one_port_range("ports", "1s", [40000, 40099], 150, "1us", 100, "backlog = 1000\n");
    let r = run_scenario(parse(&text, "ports.toml").unwrap_or_else(|e| panic!("{e}")));
    let clients: Vec<_> = r.report.sockets.iter().filter(|k| k.role == "client").collect();
    assert_eq!(clients.len(), 150);
    let refused = |k: &&tcpsim::world::SocketReport| k.errors.first() == Some(&Errno::EADDRNOTAVAIL);
    assert_eq!(clients.iter().filter(|k| refused(k)).count(), 50);
    assert!(clients[..100].iter().all(|k| k.errors.is_empty() && k.bytes_sent == 100), "the first 100 connect and send");
    let ports: std::collections::BTreeSet<_> =
        r.events("state", |v| v["host"] == "client" && v["to"] == "SYN_SENT").iter().map(|v| v["local"].to_string()).collect();
    assert_eq!(ports.len(), 100, "every port of the range, each once");
}
