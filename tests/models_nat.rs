//! The seed question "keeping an FTP control connection alive": a NAT or firewall forgets an
//! idle flow. `models/nat-idle-timeout.toml` (silent drop), `models/nat-idle-reset.toml`
//! (answered with RSTs), `models/nat-idle-keepalive.toml` (keepalive keeps the flow alive).

mod models_support;
use models_support::*;
use tcpsim::errno::Errno;

/// The server's "226" send and the client's QUIT send.
fn sends(r: &Run) -> (u64, Option<u64>) {
    let s = r.calls("send", "s")[0];
    ok(s, 23);
    (s.t_ns, r.calls("send", "ctrl").first().map(|o| o.t_ns))
}

/// While the connection is idle nothing at all is sent: nobody can notice the NAT forgetting.
fn assert_silent_until(r: &Run, t_end: u64) {
    let accepted = r.calls("accept", "listener")[0].t_ns;
    let sent = r.events("seg_sent", |v| t(v) > accepted && t(v) < t_end);
    assert!(sent.is_empty(), "{sent:?}");
}

#[test]
fn nat_that_forgot_the_flow_drops_both_sides_until_each_times_out_at_the_retries2_budget() {
    let r = run_textbook("nat-idle-timeout.toml");
    let rtt = 2 * one_way(&r.sc);
    let (reply, quit) = sends(&r);
    let quit = quit.unwrap();
    assert_silent_until(&r, reply);
    // The reply never arrives: the client's minute-long epoll_wait sees nothing.
    let waits = r.ops("epoll_wait");
    ok(waits[0], 0);
    assert_eq!(waits[0].t_ns, reply + 60 * S);
    ok(r.calls("send", "ctrl")[0], 6); // the QUIT is only queued
    // Each side retransmits into the void (TLP, then RTO backoff) and gives up at the first
    // firing past the retries2 budget, with ETIMEDOUT and no RST.
    for (host, sock, sent) in [("server", "s", reply), ("client", "ctrl", quit)] {
        let p = profile(&r.sc, host);
        let (retrans, abort) = dead_path_schedule(&p, rtt, sent);
        let mut expected = vec![sent, sent + tlp_delay(&p, rtt)];
        expected.extend(&retrans);
        assert_eq!(r.data_times(host), expected, "{host}");
        assert_eq!(t(r.transitions(host, "CLOSE")[0]), abort, "{host}");
        let k = r.script_socket(sock);
        assert_eq!((k.error_raised, k.error_raised_ns), (Some(Errno::ETIMEDOUT), Some(abort)), "{host}");
        assert!(r.sent(host, "R.").is_empty() && r.sent(host, "R").is_empty(), "{host}: no RST");
    }
    let client_abort = dead_path_schedule(&profile(&r.sc, "client"), rtt, quit).1;
    assert_eq!(client_abort - quit, 955_520 * MS, "about 16 minutes after the QUIT");
    // Every data segment after the 5-minute idle was eaten by the NAT.
    let data_segments = r.events("seg_sent", |v| v["len"].as_u64().unwrap_or(0) > 0).len();
    let nat_drops = r.events("seg_drop", |v| v["reason"] == "nat_expired").len();
    assert_eq!(nat_drops, data_segments);
    assert_eq!(waits[1].t_ns, client_abort);
    assert_eq!(events(waits[1]), "POLLIN|POLLRDHUP|POLLERR|POLLHUP");
    fails(r.calls("recv", "ctrl")[0], Errno::ETIMEDOUT);
}

#[test]
fn firewall_that_forgot_the_flow_resets_each_side_at_its_first_segment() {
    let r = run_model("nat-idle-reset.toml");
    let ow = one_way(&r.sc);
    let (reply, quit) = sends(&r);
    let quit = quit.unwrap();
    assert_silent_until(&r, reply);
    // The reply reaches the firewall (at the client's end) one way later; its RST takes one
    // more way back: the server is reset although the client never sent anything.
    let s = r.script_socket("s");
    assert_eq!((s.error_raised, s.error_raised_ns), (Some(Errno::ECONNRESET), Some(reply + 2 * ow)));
    assert_eq!(r.data_times("server"), [reply], "no retransmission after the RST");
    let waits = r.ops("epoll_wait");
    ok(waits[0], 0);
    // The QUIT is reset at once by the firewall next to the client.
    let c = r.script_socket("ctrl");
    assert_eq!((c.error_raised, c.error_raised_ns), (Some(Errno::ECONNRESET), Some(quit)));
    assert_eq!(waits[1].t_ns, quit);
    assert_eq!(events(waits[1]), "POLLIN|POLLRDHUP|POLLERR|POLLHUP");
    fails(r.calls("recv", "ctrl")[0], Errno::ECONNRESET);
    assert_eq!(r.events("seg_drop", |v| v["reason"] == "nat_expired").len(), 2);
}

#[test]
fn keepalive_every_minute_keeps_the_nat_from_forgetting_and_the_reply_arrives() {
    let r = run_textbook("nat-idle-keepalive.toml");
    let ow = one_way(&r.sc);
    let (reply, _) = sends(&r);
    // TCP_KEEPIDLE 60 s: the first probe 60 s after the last segment the client received (the
    // SYN-ACK, when connect returned); each is answered (one round trip), and the next comes
    // a full idle time after that answer.
    let last_rx = r.calls("connect", "ctrl")[0].t_ns;
    let idle = 60 * S;
    let probes: Vec<u64> = r.sent("client", ".").iter().map(|v| t(v)).filter(|t| *t > last_rx && *t < reply).collect();
    let expected: Vec<u64> = (0..).map(|k| last_rx + idle + k * (idle + 2 * ow)).take_while(|t| *t < reply).collect();
    assert_eq!(probes, expected);
    assert_eq!(probes.len(), 9);
    let answers = r.sent("server", ".").iter().map(|v| t(v)).filter(|t| *t < reply).count();
    assert_eq!(answers, probes.len(), "every probe answered");
    assert!(r.events("seg_drop", |_| true).is_empty(), "the NAT never forgot the flow");
    // The reply arrives one way later: epoll reports EPOLLIN, recv returns the 23 bytes.
    let wait = r.ops("epoll_wait")[0];
    assert_eq!(wait.t_ns, reply + ow);
    assert_eq!(events(wait), "POLLIN");
    ok(r.calls("recv", "ctrl")[0], 23);
    assert!(r.report.script_sockets.iter().all(|k| k.errors.is_empty() && k.error_raised.is_none()));
}
