//! The two scenarios about a plain stream: `models/default.toml` (one connection from connect
//! to close) and `models/lossy-partition.toml` (loss, jitter, then a 10-second partition);
//! `models/cable-unplugged-send.toml` for the loss probe's counter.

mod models_support;
use models_support::*;
use tcpsim::scenario::{AppSpec, FaultKind};

fn client_bytes(r: &Run) -> u64 {
    r.sc.apps
        .iter()
        .find_map(|a| match a {
            AppSpec::Client { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .expect("a client app")
}

/// Both applications finished without an error: every byte read, end of stream, the client
/// (first to close) in TIME_WAIT at the end of the run (60 s, TCP_TIMEWAIT_LEN), the
/// server's connection gone (CLOSE).
fn assert_clean_transfer(r: &Run) {
    let bytes = client_bytes(r);
    let client = r.report.sockets.iter().find(|k| k.role == "client").unwrap();
    let accepted = r.report.sockets.iter().find(|k| k.role == "accepted").unwrap();
    assert_eq!((client.bytes_sent, accepted.bytes_received), (bytes, bytes));
    assert!(client.errors.is_empty() && accepted.errors.is_empty());
    assert!(client.closed_by_app && accepted.closed_by_app);
    assert_eq!(client.connection_state, Some("TIME_WAIT"));
    assert_eq!(accepted.connection_state, Some("CLOSE"));
    let tw = t(r.transitions("client", "TIME_WAIT")[0]);
    let p = profile(&r.sc, "client");
    assert!(tw + p.tcp_timewait_len_s * S > r.report.end_ns, "TIME_WAIT outlasts the run");
}

#[test]
fn default_connection_handshakes_in_one_round_trip_sends_a_first_flight_of_initial_cwnd_and_closes() {
    let r = run_model("default.toml");
    let p = profile(&r.sc, "client");
    let ow = one_way(&r.sc);
    let start = match &r.sc.apps[1] {
        AppSpec::Client { at, .. } => at.unwrap().0 .0,
        other => panic!("{other:?}"),
    };
    // connect: the SYN at the start, ESTABLISHED when the SYN-ACK arrives: one round trip
    // plus the two segments' serialization at 10 Mbit/s (74 bytes each with Ethernet framing).
    let syn = r.sent("client", "S");
    assert_eq!(t(syn[0]), start);
    let established = t(r.transitions("client", "ESTABLISHED")[0]);
    let serialization = 2 * 74 * 8 * S / 10_000_000;
    assert_eq!(established, start + 2 * ow + serialization);
    // Slow start's first flight: initial_cwnd full-sized segments (MSS 1460 less 12 bytes of
    // timestamps), all at once, before any ACK is back.
    let first_flight = r.events("seg_sent", |v| v["host"] == "client" && t(v) == established && v["len"].as_u64() > Some(0));
    assert_eq!(first_flight.len() as u32, p.initial_cwnd);
    assert!(first_flight.iter().all(|v| v["len"].as_u64() == Some(1460 - 12)));
    assert_clean_transfer(&r);
}

#[test]
fn partition_backs_off_the_rto_and_recovery_waits_for_the_next_retransmission() {
    let r = run_textbook("lossy-partition.toml");
    let at = |k: FaultKind| r.sc.faults.iter().find(|f| f.kind == k).unwrap().at.unwrap().lo().as_nanos();
    let (cut, heal) = (at(FaultKind::Partition), at(FaultKind::Heal));
    // During the partition the client sends one loss probe (new data, tcp_send_loss_probe),
    // then nothing but retransmissions of one segment, the gaps doubling
    // (tcp_retransmit_timer).
    let probes: Vec<u64> =
        r.events("timer", |v| v["host"] == "client" && v["timer"] == "TLP" && t(v) > cut && t(v) < heal).iter().map(|v| t(v)).collect();
    assert!(probes.len() <= 1, "one loss probe at most: {probes:?}");
    let during: Vec<&serde_json::Value> = r.events("seg_sent", |v| {
        v["host"] == "client" && t(v) > cut && t(v) < heal && v["len"].as_u64() > Some(0) && !probes.contains(&t(v))
    });
    assert!(during.len() >= 4, "{during:?}");
    assert!(during.iter().all(|v| v["seq"] == during[0]["seq"]), "the same head segment each time");
    let times: Vec<u64> = during.iter().map(|v| t(v)).collect();
    for w in times.windows(3) {
        assert_eq!(w[2] - w[1], 2 * (w[1] - w[0]), "exponential backoff: {times:?}");
    }
    // After the heal nothing moves until the next backed-off firing: one more doubling.
    let after = r.events("seg_sent", |v| v["host"] == "client" && t(v) >= heal);
    let last_gap = times[times.len() - 1] - times[times.len() - 2];
    assert_eq!(t(after[0]), times[times.len() - 1] + 2 * last_gap);
    assert!(t(after[0]) > heal + S, "recovery waits for the timer, not for the link");
    assert_eq!(after[0]["seq"], during[0]["seq"]);
    // The link lost segments at random, yet the stream survived and completed. The client's
    // TIME_WAIT ends early here: a reordered duplicate ACK reached it after the server had
    // closed, its re-ACK drew the server's RST, and Linux lets an RST end TIME_WAIT
    // (tcp_timewait_state_process with tcp_rfc1337 = 0).
    assert!(r.events("seg_drop", |v| v["reason"] == "loss").len() > 50);
    let killed = r.events("state", |v| v["host"] == "client" && v["from"] == "TIME_WAIT" && v["cause"] == "rcv_rst");
    if killed.is_empty() {
        assert_clean_transfer(&r);
    } else {
        let bytes = client_bytes(&r);
        let accepted = r.report.sockets.iter().find(|k| k.role == "accepted").unwrap();
        assert_eq!(accepted.bytes_received, bytes);
        assert_eq!(r.events("seg_recv", |v| v["host"] == "client" && v["flags"] == "R").len(), 1);
    }
}

/// The segments `host` sent again, from the trace: each that carries no sequence space beyond
/// what its connection had already sent (data, SYN or FIN; pure ACKs carry none).
fn retransmissions_in_trace(r: &Run, host: &str) -> u64 {
    let mut sent_up_to: std::collections::BTreeMap<(String, String), (u64, u64)> = Default::default();
    let mut again = 0;
    for v in r.events("seg_sent", |v| v["host"] == host) {
        let flags = v["flags"].as_str().unwrap();
        let span = v["len"].as_u64().unwrap() + u64::from(flags.contains('S')) + u64::from(flags.contains('F'));
        if span == 0 {
            continue;
        }
        let seq = v["seq"].as_u64().unwrap();
        let (isn, end) = sent_up_to.entry((v["src"].to_string(), v["dst"].to_string())).or_insert((seq, 0));
        let this_end = (seq + (1 << 32) - *isn) % (1 << 32) + span;
        again += u64::from(this_end <= *end);
        *end = (*end).max(this_end);
    }
    again
}

/// Every retransmission counts TcpRetransSegs (__tcp_retransmit_skb), the loss probe's
/// included; every expiry of the retransmission timer TCPTimeouts (tcp_retransmit_timer);
/// every probe sent TCPLossProbes (tcp_send_loss_probe).
fn assert_loss_counters_match_the_trace(r: &Run, host: &str) {
    let timers = |name: &str| r.events("timer", |v| v["host"] == host && v["timer"] == name).len() as u64;
    assert_eq!(r.counter(host, "TcpRetransSegs"), retransmissions_in_trace(r, host));
    assert_eq!(r.counter(host, "TCPTimeouts"), timers("retransmit"));
    assert_eq!(r.counter(host, "TCPLossProbes"), timers("TLP"));
}

#[test]
fn after_a_10_s_partition_the_clients_counters_are_its_retransmissions_timeouts_and_probes() {
    let r = run_model("lossy-partition.toml");
    let at = |k: FaultKind| r.sc.faults.iter().find(|f| f.kind == k).unwrap().at.unwrap().lo().as_nanos();
    assert_eq!(at(FaultKind::Heal) - at(FaultKind::Partition), 10 * S);
    let rtos = r.events("timer", |v| v["host"] == "client" && v["timer"] == "retransmit").len();
    assert!(retransmissions_in_trace(&r, "client") > 0 && rtos >= 4);
    assert_loss_counters_match_the_trace(&r, "client");
    // The server's resends (with this seed's loss, possibly none) count alike.
    assert_loss_counters_match_the_trace(&r, "server");
}

/// Whether lossy-partition's client sends a loss probe depends on its random loss (the probe is
/// armed in Open or CWR only, `tcp_schedule_loss_probe`, and the partition may begin during a
/// recovery); a write into an unplugged cable is probed once before the RTOs, and the probe counts.
#[test]
fn a_loss_probe_into_an_unplugged_cable_counts_tcplossprobes() {
    let r = run_model("cable-unplugged-send.toml");
    assert_eq!(r.events("timer", |v| v["host"] == "client" && v["timer"] == "TLP").len(), 1);
    assert_loss_counters_match_the_trace(&r, "client");
}

#[test]
fn trace_timer_events_name_the_timer_and_a_retransmissions_backoff() {
    let r = run_textbook("lossy-partition.toml");
    let at = |k: FaultKind| r.sc.faults.iter().find(|f| f.kind == k).unwrap().at.unwrap().lo().as_nanos();
    let (cut, heal) = (at(FaultKind::Partition), at(FaultKind::Heal));
    // Every expired timer is named, with the connection it belongs to.
    let names = ["retransmit", "TLP", "RACK-reo", "probe0", "delack", "keepalive", "fin-wait2", "time-wait", "SYN-ACK"];
    let timers = r.events("timer", |_| true);
    assert!(timers.iter().all(|v| names.contains(&v["timer"].as_str().unwrap()) && v["local"].is_string()), "{timers:?}");
    assert!(timers.iter().any(|v| v["host"] == "server" && v["timer"] == "delack"));
    // During the partition the retransmission timer fires again and again: each firing is one
    // more backoff (icsk_backoff after tcp_retransmit_timer), re-sends the head segment at
    // that instant, and waits twice as long as the one before for the next.
    let rtos = r.events("timer", |v| v["host"] == "client" && v["timer"] == "retransmit" && t(v) > cut && t(v) < heal);
    assert!(rtos.len() >= 4, "{rtos:?}");
    let backoffs: Vec<u64> = rtos.iter().map(|v| v["backoff"].as_u64().unwrap()).collect();
    let first = backoffs[0];
    assert_eq!(backoffs, (first..first + rtos.len() as u64).collect::<Vec<_>>());
    for v in &rtos {
        let resent = r.events("seg_sent", |s| s["host"] == "client" && t(s) == t(v) && s["len"].as_u64() > Some(0));
        assert_eq!(resent.len(), 1, "one retransmission per expiry at {}", t(v));
    }
    let times: Vec<u64> = rtos.iter().map(|v| t(v)).collect();
    for w in times.windows(3) {
        assert_eq!(w[2] - w[1], 2 * (w[1] - w[0]), "{times:?}");
    }
    // Only the timers that share the retransmission timer (`icsk_retransmit_timer`: RTO, loss
    // probe, RACK's reordering timeout) carry its backoff.
    let rtx_kinds = ["retransmit", "TLP", "RACK-reo"];
    assert!(timers.iter().filter(|v| !rtx_kinds.contains(&v["timer"].as_str().unwrap())).all(|v| v.get("backoff").is_none()));
}
