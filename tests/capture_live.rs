//! Live real-kernel captures (root and `ip netns` needed; skipped with the reason otherwise, and
//! failed instead when `TCPSIM_REQUIRE_CAPTURE=1`, as CI sets it).
#![cfg(target_os = "linux")] // the real-kernel harness (`capture`) is Linux-only

#![cfg(target_os = "linux")]

mod capture_support;

use capture_support::{live_or_skip, read_pcap, tcp_of};
use tcpsim::capture;
use tcpsim::errno::Errno;
use tcpsim::scenario::readiness::{differing_cells, ReadinessRow};
use tcpsim::scenario::types::{Observation, Scenario};
use tcpsim::table::TableLink;
use tcpsim::tcp::profile::Os;

/// A short scenario touching each harness feature: namespaces and addresses, a listener and a
/// non-blocking connect, a partition (nft), an ioctl, SIGPIPE detection, TCP_INFO.
const SCENARIO: &str = r#"
name = "capture-smoke"
duration = "2s"

[[host]]
name = "client"
addr = "10.0.0.1"
sysctl = { tcp_keepalive_time_s = 77, tcp_no_such_knob = 1 }

[[host]]
name = "server"
addr = "10.0.0.2"

[[link]]
name = "wire"
a = "client"
b = "server"

[[script]]
op = "socket"
host = "server"
sock = "l"

[[script]]
op = "bind"
sock = "l"
port = 9000

[[script]]
op = "listen"
sock = "l"
backlog = 4

[[script]]
op = "socket"
host = "client"
sock = "c"
nonblocking = true

[[script]]
op = "connect"
sock = "c"
to = "server:9000"

[[script]]
op = "poll"
sock = "c"
events = ["POLLOUT"]
timeout = "1s"

[[script]]
op = "accept"
sock = "l"
new = "s"

[[script]]
op = "send"
sock = "c"
data = "hello"

[[script]]
op = "sleep"
dur = "50ms"

[[script]]
op = "recv"
sock = "s"
len = 16

[[script]]
op = "fault"
kind = "partition"
link = "wire"

[[script]]
op = "send"
sock = "c"
len = 100

[[script]]
op = "sleep"
dur = "50ms"

[[script]]
op = "ioctl"
sock = "c"
req = "SIOCOUTQ"

[[script]]
op = "shutdown"
sock = "c"
how = "SHUT_WR"

[[script]]
op = "send"
sock = "c"
data = "x"

[[script]]
op = "send"
sock = "c"
data = "x"
flags = ["MSG_NOSIGNAL"]

[[script]]
op = "getsockopt"
sock = "c"
opt = "TCP_INFO"

[[script]]
op = "close"
sock = "s"

[[script]]
op = "recv"
sock = "s"
len = 1

[[script]]
op = "getsockopt"
sock = "c"
opt = "TCP_KEEPIDLE"
"#;

fn ret_errno(o: &Observation) -> (Option<i64>, Option<Errno>) {
    (o.ret, o.errno)
}

#[test]
fn a_short_scenario_runs_on_the_real_kernel() {
    if !live_or_skip("a_short_scenario_runs_on_the_real_kernel") {
        return;
    }
    let sc: Scenario = toml::from_str(SCENARIO).unwrap();
    let dir = std::env::temp_dir().join(format!("tcpsim-capture-test-{}", std::process::id()));
    let report = capture::capture(&sc, &dir).unwrap_or_else(|e| panic!("{e}"));
    let obs = &report.observations;
    let summary = report.to_string();
    assert!(summary.contains("capture-smoke") && summary.contains("tcpdump on server/wire"), "{summary}");
    // A capture that lost packets fails; one that returns says so in tcpdump's own words.
    assert_eq!(capture::netns::dropped_by_kernel(&report.tcpdump), Some(0), "{:?}", report.tcpdump);

    // One observation per step, in order, with the run's clock moving forward.
    assert_eq!(obs.len(), sc.script.len());
    for (i, (o, s)) in obs.iter().zip(&sc.script).enumerate() {
        assert_eq!((o.step, o.op.as_str()), (i, s.op()));
    }
    assert!(obs.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
    assert!(obs[8].t_ns - obs[7].t_ns >= 50_000_000, "the sleep is a real 50 ms");

    assert_eq!(ret_errno(&obs[4]), (Some(-1), Some(Errno::EINPROGRESS)), "non-blocking connect");
    assert_eq!(obs[5].events.as_deref(), Some(&["POLLOUT".to_string()][..]), "connected");
    assert_eq!(obs[6].ret, Some(0), "accept");
    assert_eq!(obs[9].ret, Some(5), "the server read `hello`");
    assert_eq!(obs[11].ret, Some(100), "send during a partition is only queued");
    assert_eq!(obs[13].value, Some(serde_json::json!(100)), "SIOCOUTQ: the 100 bytes are unacknowledged");
    assert_eq!(ret_errno(&obs[15]), (Some(-1), Some(Errno::EPIPE)));
    assert!(obs[15].sigpipe, "send after SHUT_WR raises SIGPIPE");
    assert_eq!(ret_errno(&obs[16]), (Some(-1), Some(Errno::EPIPE)));
    assert!(!obs[16].sigpipe, "MSG_NOSIGNAL suppresses it");
    // TCP_INFO: FIN_WAIT1 (4), the FIN being lost in the partition.
    assert_eq!(obs[17].value.as_ref().and_then(|v| v["state"].as_u64()), Some(4));
    assert_eq!(ret_errno(&obs[18]), (Some(0), None), "close");
    assert_eq!(ret_errno(&obs[19]), (Some(-1), Some(Errno::EBADF)), "a closed socket's calls fail");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(obs[20].value, Some(serde_json::json!(77)), "the host's sysctl reached its namespace");
    assert!(
        report.unreproduced.iter().any(|u| u.contains("tcp_no_such_knob")),
        "an unknown sysctl is reported: {:?}",
        report.unreproduced
    );

    // The files, and a complete pcap from the server's veth.
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    let logged = tcpsim::script::observe::from_jsonl(
        "observations.jsonl",
        &String::from_utf8(read("observations.jsonl")).unwrap(),
    );
    assert_eq!(&logged.unwrap(), obs);
    assert_eq!(String::from_utf8(read("kernel.txt")).unwrap().trim(), capture::kernel_release());
    let copy: Scenario = toml::from_str(&String::from_utf8(read("scenario.toml")).unwrap()).unwrap();
    assert_eq!(copy.script.len(), sc.script.len());
    let pcap = read_pcap(&read("capture.pcap")).unwrap();
    assert_eq!((pcap.linktype, pcap.nanos), (1, true), "Ethernet, nanosecond timestamps");
    let tcp: Vec<_> = pcap.packets.iter().filter_map(|(_, f)| tcp_of(f)).collect();
    assert!(tcp.iter().any(|t| t.1 == 9000 && t.2), "the SYN was captured");
    assert!(tcp.iter().any(|t| t.1 == 9000 && t.4 == b"hello"), "the data was captured");
    // Partition drops happen at the receiver's input hook, so the server-side capture still
    // sees the lost segment arrive (as a tap on the wire would).
    assert!(tcp.iter().any(|t| t.1 == 9000 && t.4.len() == 100), "the lost segment is on the wire");
    assert!(pcap.packets.windows(2).all(|w| w[0].0 <= w[1].0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_readiness_table_matches_the_committed_traces() {
    if !live_or_skip("live_readiness_table_matches_the_committed_traces") {
        return;
    }
    let live = capture::kernel_table(TableLink::Veth).unwrap_or_else(|e| panic!("{e}"));
    let recorded = tcpsim::table::recorded_table();
    assert_eq!(live.len(), 22);
    let mut diffs = Vec::new();
    for (l, r) in live.iter().zip(&recorded) {
        assert_eq!(l.condition, r.condition);
        if differing_cells(l, r).is_empty() {
            continue;
        }
        // A few cells race real timers or softirq delivery (e.g. whether the peer's RST is back
        // before the poll after a send); a machine under load may lose such a race once. A
        // systematic difference shows on every attempt.
        let dir =
            std::env::temp_dir().join(format!("tcpsim-capture-retry-{}-{}", std::process::id(), l.condition));
        let again = capture::observe_readiness(&l.condition, TableLink::Veth, &dir).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&dir);
        for name in differing_cells(&again, r) {
            let cell = |row: &ReadinessRow| row.cells().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v);
            diffs.push(format!(
                "{} {name}: live {:?} (twice), recorded {:?}",
                l.condition,
                cell(&again),
                cell(r)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "kernel {} vs recorded {}:\n{}",
        capture::kernel_release(),
        tcpsim::table::RECORDED_KERNEL.trim(),
        diffs.join("\n")
    );
}

/// `tcpsim table --kernel --link loopback`: every recipe, moved onto one host's `lo` by
/// `on_loopback`, run live in one namespace, gives the simulated loopback table's answer in
/// every cell. As for the veth table, a cell that differs is measured once more before it
/// counts (a race with softirq delivery may go the other way once on a loaded machine).
#[test]
fn live_loopback_readiness_table_matches_the_simulation() {
    if !live_or_skip("live_loopback_readiness_table_matches_the_simulation") {
        return;
    }
    let live = capture::kernel_table(TableLink::Loopback).unwrap_or_else(|e| panic!("{e}"));
    let sim = tcpsim::table::simulate_on(Os::Linux, TableLink::Loopback).expect("every recipe simulates");
    assert_eq!(live.len(), 22);
    let mut diffs = Vec::new();
    for (l, m) in live.iter().zip(&sim.rows) {
        assert_eq!(l.condition, m.condition);
        if differing_cells(l, m).is_empty() {
            continue;
        }
        let dir = std::env::temp_dir().join(format!("tcpsim-lo-retry-{}-{}", std::process::id(), l.condition));
        let again =
            capture::observe_readiness(&l.condition, TableLink::Loopback, &dir).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&dir);
        for name in differing_cells(&again, m) {
            let cell = |row: &ReadinessRow| row.cells().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v);
            diffs.push(format!("{} {name}: kernel {:?} (twice), model {:?}", l.condition, cell(&again), cell(m)));
        }
    }
    assert!(diffs.is_empty(), "kernel {} on loopback:\n{}", capture::kernel_release(), diffs.join("\n"));
}

/// A `lo` link is its host namespace's own loopback: the host's address (not loopback's) is
/// put on it, and its MTU set; a partition drops the scenario's traffic (its listener's port)
/// and nothing else crossing that `lo`.
#[test]
fn a_loopback_partition_drops_only_the_scenarios_ports() {
    if !live_or_skip("a_loopback_partition_drops_only_the_scenarios_ports") {
        return;
    }
    let sc: Scenario = toml::from_str(
        r#"
        name = "lo-lab"
        duration = "1s"
        [[host]]
        name = "box"
        addr = "10.9.0.1"
        [[link]]
        name = "lo0"
        kind = "lo"
        a = "box"
        b = "box"
        mtu = 9000
        [[script]]
        op = "socket"
        host = "box"
        sock = "l"
        [[script]]
        op = "bind"
        sock = "l"
        port = 8080
        "#,
    )
    .unwrap();
    let mut lab = capture::netns::Lab::build(&sc).unwrap_or_else(|e| panic!("{e}"));
    let ns = lab.hosts[0].netns.clone();
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip").args(["netns", "exec", &ns, "ip"]).args(args).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(ip(&["-o", "addr", "show", "dev", "lo"]).contains("inet 10.9.0.1/32"), "the host's address is on lo");
    assert!(ip(&["-o", "link", "show", "dev", "lo"]).contains("mtu 9000"), "the link's MTU is lo's");
    let partition = tcpsim::engine::fault::FaultAction {
        kind: tcpsim::scenario::types::FaultKind::Partition,
        link: Some("lo0"),
        host: None,
        drop: None,
        direction: tcpsim::scenario::types::Direction::Both,
    };
    lab.apply_fault(&partition).unwrap_or_else(|e| panic!("{e}"));
    // A thread of its own enters the namespace (setns moves only the calling thread) and ends there.
    let netns = lab.hosts[0].fd.try_clone().unwrap();
    let connects = std::thread::spawn(move || {
        capture::netns::enter(&netns).unwrap();
        let try_port = |port: u16| {
            let _l = std::net::TcpListener::bind(("10.9.0.1", port)).unwrap();
            let to = std::net::SocketAddr::from(([10, 9, 0, 1], port));
            std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_millis(300)).is_ok()
        };
        (try_port(8080), try_port(9090))
    })
    .join()
    .unwrap();
    assert_eq!(connects, (false, true), "8080 (the scenario's) partitioned, 9090 (not the scenario's) through");
}

/// A blocking call that never returns on the real kernel (a recv on an idle connection) is
/// freed once the script overruns its duration, and the report says so.
#[test]
fn a_blocked_script_is_cut_after_its_duration() {
    if !live_or_skip("a_blocked_script_is_cut_after_its_duration") {
        return;
    }
    let mut sc: Scenario = toml::from_str(SCENARIO).unwrap();
    sc.duration = "100ms".parse().unwrap();
    sc.script.truncate(7); // listener, connect, poll, accept
    let block: Scenario =
        toml::from_str("name='x'\nduration='1s'\n[[script]]\nop='recv'\nsock='s'\nlen=1\n").unwrap();
    sc.script.extend(block.script);
    let dir = std::env::temp_dir().join(format!("tcpsim-capture-cut-{}", std::process::id()));
    let t0 = std::time::Instant::now();
    let report = capture::capture(&sc, &dir).unwrap_or_else(|e| panic!("{e}"));
    let took = t0.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let last = report.observations.last().unwrap();
    assert_eq!((last.op.as_str(), last.ret), ("recv", Some(0)), "SHUT_RDWR ends the blocked recv with 0");
    assert!(last.t_ns >= 2_000_000_000, "cut only after duration + 2 s grace, at {} ns", last.t_ns);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[[fault]]` entries take effect at their time while the script runs; those due after it
/// ends are not applied.
#[test]
fn timed_faults_apply_on_schedule() {
    if !live_or_skip("timed_faults_apply_on_schedule") {
        return;
    }
    let mut sc: Scenario = toml::from_str(SCENARIO).unwrap();
    sc.script.truncate(7); // listener, connect, poll, accept
    let extra: Scenario = toml::from_str(
        r#"
        name = "x"
        duration = "1s"
        [[fault]]
        at = "100ms"
        kind = "partition"
        link = "wire"
        [[fault]]
        at = "10s"
        kind = "heal"
        link = "wire"
        [[script]]
        op = "sleep"
        dur = "500ms"
        [[script]]
        op = "send"
        sock = "c"
        len = 100
        [[script]]
        op = "sleep"
        dur = "50ms"
        [[script]]
        op = "ioctl"
        sock = "c"
        req = "SIOCOUTQ"
        "#,
    )
    .unwrap();
    sc.faults = extra.faults;
    sc.script.extend(extra.script);
    let dir = std::env::temp_dir().join(format!("tcpsim-capture-timed-{}", std::process::id()));
    let report = capture::capture(&sc, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.timed_faults.len(),
        1,
        "the heal at 10 s comes after the script: {:?}",
        report.timed_faults
    );
    let f = &report.timed_faults[0];
    // Due at 100 ms; in force before the send at 500 ms even on a loaded machine (loading an nft
    // rule set waits for an RCU grace period).
    let send_t = report.observations[8].t_ns;
    assert!(
        f.at_ns == 100_000_000 && f.applied_ns >= f.at_ns && f.applied_ns < send_t,
        "{f:?}, send at {send_t}"
    );
    let last = report.observations.last().unwrap();
    assert_eq!(
        last.value,
        Some(serde_json::json!(100)),
        "sent after the partition began: never acknowledged"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A timed crash loses the host's connections without a word (its RSTs are dropped); after the
/// reboot the host answers the client's next segment with RST.
#[test]
fn a_timed_crash_and_reboot_reset_the_connection() {
    if !live_or_skip("a_timed_crash_and_reboot_reset_the_connection") {
        return;
    }
    let mut sc: Scenario = toml::from_str(SCENARIO).unwrap();
    sc.script.truncate(7); // listener, connect, poll, accept
    let extra: Scenario = toml::from_str(
        r#"
        name = "x"
        duration = "1s"
        [[fault]]
        at = "100ms"
        kind = "crash"
        host = "server"
        [[fault]]
        at = "300ms"
        kind = "reboot"
        host = "server"
        [[script]]
        op = "sleep"
        dur = "700ms"
        [[script]]
        op = "poll"
        sock = "c"
        events = ["POLLIN", "POLLOUT"]
        [[script]]
        op = "send"
        sock = "c"
        data = "x"
        flags = ["MSG_NOSIGNAL"]
        [[script]]
        op = "sleep"
        dur = "50ms"
        [[script]]
        op = "recv"
        sock = "c"
        len = 1
        "#,
    )
    .unwrap();
    sc.faults = extra.faults;
    sc.script.extend(extra.script);
    let dir = std::env::temp_dir().join(format!("tcpsim-capture-crash-{}", std::process::id()));
    let report = capture::capture(&sc, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.timed_faults.len(), 2);
    // Both in force before the script looks again at 700 ms, even on a loaded machine.
    assert!(
        report.timed_faults.iter().all(|f| f.applied_ns < report.observations[7].t_ns),
        "{:?}",
        report.timed_faults
    );
    let obs = &report.observations;
    assert_eq!(obs[8].events.as_deref(), Some(&["POLLOUT".to_string()][..]), "the crash went unseen");
    assert_eq!(obs[9].ret, Some(1));
    assert_eq!(ret_errno(&obs[11]), (Some(-1), Some(Errno::ECONNRESET)), "the rebooted host's RST");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[[app]]` entries: a server that accepts and reads, and clients on a schedule; then the same
/// against a backlog-1 listener that never accepts, which completes backlog + 1 = 2 handshakes
/// and drops the other SYNs (facts §5: `sk_acceptq_is_full` is `>`).
#[test]
fn apps_run_for_the_scenario_duration() {
    if !live_or_skip("apps_run_for_the_scenario_duration") {
        return;
    }
    let text = |accept: bool, backlog: u32| {
        format!(
            r#"
            name = "apps"
            duration = "400ms"
            [[host]]
            name = "client"
            addr = "10.0.0.1"
            [[host]]
            name = "server"
            addr = "10.0.0.2"
            [[link]]
            name = "wire"
            a = "client"
            b = "server"
            [[app]]
            kind = "server"
            host = "server"
            port = 8080
            backlog = {backlog}
            accept = {accept}
            [[app]]
            kind = "client"
            host = "client"
            to = "server:8080"
            at = "50ms"
            count = 4
            interval = "20ms"
            bytes = 3000
            close = true
            "#
        )
    };
    let count = |r: &capture::CaptureReport, app: usize, ev: &str| {
        r.app_events.iter().filter(|e| e.app == app && e.event == ev).count()
    };
    let dir = std::env::temp_dir().join(format!("tcpsim-capture-apps-{}", std::process::id()));
    let t0 = std::time::Instant::now();
    let r =
        capture::capture(&toml::from_str(&text(true, 16)).unwrap(), &dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(t0.elapsed() >= std::time::Duration::from_millis(400), "apps run for the duration");
    assert_eq!(
        (count(&r, 1, "connected"), count(&r, 1, "sent"), count(&r, 1, "closed")),
        (4, 4, 4),
        "{:#?}",
        r.app_events
    );
    assert_eq!((count(&r, 0, "accepted"), count(&r, 0, "eof")), (4, 4), "{:#?}", r.app_events);
    assert!(r.app_events.iter().filter(|e| e.event == "eof").all(|e| e.bytes == Some(3000)));
    let first = r.app_events.iter().find(|e| e.event == "connected").unwrap();
    assert!(first.t_ns >= 50_000_000, "the first client starts at 50 ms: {first:?}");

    let r =
        capture::capture(&toml::from_str(&text(false, 1)).unwrap(), &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&r, 1, "connected"), 2, "{:#?}", r.app_events);
    assert_eq!(count(&r, 0, "accepted"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_names_in_a_script_are_errors_not_panics() {
    if !live_or_skip("unknown_names_in_a_script_are_errors_not_panics") {
        return;
    }
    let mut sc: Scenario = toml::from_str(SCENARIO).unwrap();
    sc.script.truncate(4);
    sc.script.push(
        toml::from_str::<Scenario>("name='x'\nduration='1s'\n[[script]]\nop='close'\nsock='nope'\n")
            .unwrap()
            .script
            .remove(0),
    );
    let dir = std::env::temp_dir().join(format!("tcpsim-capture-bad-{}", std::process::id()));
    let err = capture::capture(&sc, &dir).unwrap_err().to_string();
    assert!(err.contains("step 4") && err.contains("nope"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
