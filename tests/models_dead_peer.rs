//! The seed questions about a peer that vanishes without a word: the hibernated VM (with and
//! without keepalive), and the unplugged cable (send succeeds; ETIMEDOUT much later, or
//! everything arrives in order if the cable comes back). `models/peer-hibernated*.toml`,
//! `models/cable-*.toml`, held to linux-tcp-facts.md §3.3, §3.4, §4 and §6. The schedules
//! are the algorithms' own, on textbook timers ([`textbook`]): the timer wheel moves each
//! firing later by up to its level's granularity, which `docs/questions.md` shows.

mod models_support;
use models_support::*;
use tcpsim::errno::Errno;
use tcpsim::scenario::{OptValue, SockOpt, Step};
use tcpsim::time::Dur;

/// The value a script step sets for `opt`.
fn sockopt(r: &Run, opt: SockOpt) -> Option<u64> {
    r.sc.script.iter().find_map(|s| match s {
        Step::Setsockopt { opt: o, value: OptValue::Int(v), .. } if *o == opt => Some(*v as u64),
        _ => None,
    })
}

#[test]
fn hibernated_peer_without_keepalive_is_never_noticed() {
    let r = run_model("peer-hibernated.toml");
    let accepted = r.calls("accept", "listener")[0].t_ns;
    let wait = r.ops("epoll_wait")[0];
    ok(wait, 0);
    assert_eq!(wait.t_ns, accepted + 600 * S, "the 10-minute epoll_wait times out with no events");
    // The MSG_PEEK liveness check says what it says of a healthy idle connection.
    fails(r.calls("recv", "s")[0], Errno::EAGAIN);
    let info = r.calls("getsockopt", "s")[0].value.clone().expect("TCP_INFO");
    assert_eq!(info["state"], "ESTABLISHED");
    assert_eq!((info["retransmits"].as_u64(), info["probes"].as_u64()), (Some(0), Some(0)));
    // To the end of the run (15 minutes): no segment from the server after the handshake, no
    // error, still ESTABLISHED. Keepalive is off by default (RFC 1122 §4.2.3.6).
    let server_segments_after = r.events("seg_sent", |v| v["host"] == "server" && t(v) > accepted);
    assert!(server_segments_after.is_empty(), "{server_segments_after:?}");
    let s = r.script_socket("s");
    assert_eq!((s.state, s.error_raised, s.errors.len()), (Some("ESTABLISHED"), None, 0));
}

/// Probes at last_rx + idle + k·intvl (k < cnt), each a bare ACK with seq = snd_una − 1;
/// at last_rx + idle + cnt·intvl an RST and ETIMEDOUT (tcp_timer.c `tcp_keepalive_timer`).
fn assert_keepalive_death(r: &Run, idle: u64, intvl: u64, cnt: u64) -> u64 {
    // The last segment the server received is the handshake's ACK, which accept() waited for.
    let last_rx = r.calls("accept", "listener")[0].t_ns;
    let probes = r.sent("server", ".");
    let probe_times: Vec<u64> = probes.iter().map(|v| t(v)).collect();
    let expected: Vec<u64> = (0..cnt).map(|k| last_rx + idle + k * intvl).collect();
    assert_eq!(probe_times, expected);
    let syn_ack = r.sent("server", "S.")[0]["seq"].as_u64().unwrap();
    for p in &probes {
        assert_eq!((p["seq"].as_u64(), p["len"].as_u64()), (Some(syn_ack), Some(0)), "probe seq = snd_una - 1");
    }
    let death = last_rx + idle + cnt * intvl;
    let rst = r.sent("server", "R.");
    assert_eq!(rst.iter().map(|v| t(v)).collect::<Vec<_>>(), [death], "an RST is sent at the death");
    assert_eq!(t(r.transitions("server", "CLOSE")[0]), death);
    let s = r.script_socket("s");
    assert_eq!((s.error_raised, s.error_raised_ns), (Some(Errno::ETIMEDOUT), Some(death)));
    death
}

#[test]
fn hibernated_peer_with_keepalive_dies_at_last_receipt_plus_idle_plus_cnt_intervals() {
    let r = run_textbook("peer-hibernated-keepalive.toml");
    let idle = sockopt(&r, SockOpt::TCP_KEEPIDLE).unwrap() * S;
    let intvl = sockopt(&r, SockOpt::TCP_KEEPINTVL).unwrap() * S;
    let cnt = sockopt(&r, SockOpt::TCP_KEEPCNT).unwrap();
    let death = assert_keepalive_death(&r, idle, intvl, cnt);
    assert_eq!(death, 3 * one_way(&r.sc) + 10 * S + 3 * 5 * S, "25.015 s, as the header says");
    let wait = r.ops("epoll_wait")[0];
    assert_eq!(wait.t_ns, death);
    assert_eq!(events(wait), "POLLIN|POLLRDHUP|POLLERR|POLLHUP");
    let recvs = r.calls("recv", "s");
    fails(recvs[0], Errno::ETIMEDOUT);
    ok(recvs[1], 0);
    assert_eq!(r.script_socket("s").first_error_ns, Some(death));
}

#[test]
fn hibernated_peer_with_default_keepalive_dies_after_7875_seconds() {
    // The same scenario with only SO_KEEPALIVE: the profile's 7200 s, 75 s, 9 probes apply.
    let mut sc = textbook(model("peer-hibernated-keepalive.toml"));
    sc.script.retain(|s| !matches!(s, Step::Setsockopt { opt, .. } if *opt != SockOpt::SO_KEEPALIVE));
    sc.duration.0 = Dur(3 * 3600 * S);
    let p = profile(&sc, "server");
    let r = run_scenario(sc);
    let (idle, intvl, cnt) = (p.tcp_keepalive_time_s * S, p.tcp_keepalive_intvl_s * S, u64::from(p.tcp_keepalive_probes));
    assert_eq!((idle, intvl, cnt), (7200 * S, 75 * S, 9), "Linux defaults");
    let death = assert_keepalive_death(&r, idle, intvl, cnt);
    // The one-minute epoll_wait times out; the blocking recv then waits until the death.
    ok(r.ops("epoll_wait")[0], 0);
    let recvs = r.calls("recv", "s");
    fails(recvs[0], Errno::ETIMEDOUT);
    assert_eq!(recvs[0].t_ns, death);
    assert_eq!(death, 3 * one_way(&r.sc) + (7200 + 9 * 75) * S);
}

#[test]
fn send_with_the_cable_unplugged_succeeds_and_etimedout_comes_at_the_retries2_budget() {
    let r = run_textbook("cable-unplugged-send.toml");
    let p = profile(&r.sc, "client");
    let rtt = 2 * one_way(&r.sc);
    let send = r.calls("send", "c")[0];
    ok(send, 1000); // only queued
    assert_eq!(ioctl_count(r.calls("ioctl", "c")[0]), 1000); // SIOCOUTQ: all unacknowledged
    let (retrans, abort) = dead_path_schedule(&p, rtt, send.t_ns);
    // The original, the TLP, then the RTO retransmissions.
    let mut expected = vec![send.t_ns, send.t_ns + tlp_delay(&p, rtt)];
    expected.extend(&retrans);
    assert_eq!(r.data_times("client"), expected);
    assert_eq!(retries2_budget(&p), 924_600 * MS, "tcp_retries2 = 15 is 924.6 s");
    // A minute in: still ESTABLISHED, with the RTO retransmissions so far counted.
    let info = r.calls("getsockopt", "c")[0];
    let v = info.value.clone().unwrap();
    assert_eq!(v["state"], "ESTABLISHED");
    assert_eq!(v["retransmits"].as_u64(), Some(retrans.iter().filter(|t| **t <= info.t_ns).count() as u64));
    // The abort: ETIMEDOUT, no RST (tcp_write_err), at the first firing past the budget.
    assert_eq!(t(r.transitions("client", "CLOSE")[0]), abort);
    assert_eq!(abort, 935_055 * MS, "15.6 minutes");
    let c = r.script_socket("c");
    assert_eq!((c.error_raised, c.error_raised_ns), (Some(Errno::ETIMEDOUT), Some(abort)));
    assert!(r.sent("client", "R.").is_empty() && r.sent("client", "R").is_empty(), "no RST on a retransmission timeout");
    let wait = r.ops("epoll_wait")[0];
    assert_eq!(events(wait), "POLLIN|POLLOUT|POLLRDHUP|POLLERR|POLLHUP");
    fails(r.calls("recv", "c")[0], Errno::ETIMEDOUT);
}

#[test]
fn replugged_cable_delivers_both_messages_in_order_at_the_next_retransmission() {
    let r = run_textbook("cable-replugged.toml");
    let p = profile(&r.sc, "client");
    let ow = one_way(&r.sc);
    let rtt = 2 * ow;
    let sends = r.calls("send", "c");
    ok(sends[0], 6);
    ok(sends[1], 7);
    let t0 = sends[0].t_ns;
    let replug = r.ops("fault")[1].t_ns;
    assert_eq!(replug, t0 + 5 * S);
    // "first;" at once; "second;" held by Nagle until the TLP sends it as new data; then
    // RTO retransmissions of both (collapsed), the RTO doubling from srtt + rto_min.
    let segs = r.events("seg_sent", |v| v["host"] == "client" && v["len"].as_u64().unwrap_or(0) > 0);
    let iss = r.sent("client", "S")[0]["seq"].as_u64().unwrap();
    // (time, stream offset, length); sequence numbers wrap at 2^32.
    let offset = |v: &serde_json::Value| (v["seq"].as_u64().unwrap() + (1 << 32) - iss - 1) % (1 << 32);
    let shape: Vec<(u64, u64, u64)> = segs.iter().map(|v| (t(v), offset(v), v["len"].as_u64().unwrap())).collect();
    let tlp = t0 + tlp_delay(&p, rtt);
    let mut expected = vec![(t0, 0, 6), (tlp, 6, 7)];
    let mut rto = rto_after_handshake(&p, rtt);
    let mut at = tlp + rto;
    while at < replug {
        expected.push((at, 0, 13));
        rto *= 2;
        at += rto;
    }
    expected.push((at, 0, 13)); // the first after the replug gets through
    assert_eq!(shape, expected);
    // The server reads the 13 bytes, from stream offset 0, one way later: in order, whole.
    let recv = r.calls("recv", "s")[0];
    ok(recv, 13);
    assert_eq!(recv.t_ns, at + ow);
    let acks = r.events("seg_sent", |v| v["host"] == "server" && t(v) > replug);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["ack"].as_u64().unwrap(), (iss + 1 + 13) % (1 << 32), "everything acknowledged at once");
    assert_eq!(ioctl_count(r.calls("ioctl", "c")[0]), 0);
    // Nobody noticed anything.
    assert!(r.report.script_sockets.iter().all(|k| k.errors.is_empty() && k.error_raised.is_none()));
    assert_eq!(r.script_socket("c").state, Some("ESTABLISHED"));
}

#[test]
fn user_timeout_not_keepalive_lets_a_connection_outlive_a_long_outage() {
    let r = run_textbook("cable-long-outage-user-timeout.toml");
    let p = profile(&r.sc, "client");
    let ow = one_way(&r.sc);
    let user_timeout = sockopt(&r, SockOpt::TCP_USER_TIMEOUT).unwrap() * MS;
    let send = r.calls("send", "c")[0];
    ok(send, 12);
    let replug = r.ops("fault")[1].t_ns;
    let outage = replug - send.t_ns;
    // The outage outlasts the retries2 budget (the default would have aborted) but not the
    // user timeout, which replaces it.
    let (_, default_abort) = dead_path_schedule(&p, 2 * ow, send.t_ns);
    assert!(default_abort < replug && outage < user_timeout);
    // Retransmissions go on, every rto_max once backed off, until one after the replug.
    let firings = rto_firings_until(&p, 2 * ow, send.t_ns, replug + p.tcp_rto_max_ms * MS);
    let through = *firings.iter().find(|t| **t > replug).unwrap();
    let mut expected = vec![send.t_ns, send.t_ns + tlp_delay(&p, 2 * ow)];
    expected.extend(firings.iter().filter(|t| **t <= through));
    assert_eq!(r.data_times("client"), expected);
    assert_eq!(through, 1_295_055 * MS);
    let info = r.calls("getsockopt", "c")[0].value.clone().unwrap();
    assert_eq!(info["state"], "ESTABLISHED");
    assert_eq!(info["retransmits"].as_u64(), Some(firings.iter().filter(|t| **t < replug).count() as u64));
    let recv = r.calls("recv", "s")[0];
    ok(recv, 12);
    assert_eq!(recv.t_ns, through + ow);
    assert_eq!(ioctl_count(r.calls("ioctl", "c")[0]), 0);
    assert!(r.report.script_sockets.iter().all(|k| k.errors.is_empty() && k.error_raised.is_none()));
}
