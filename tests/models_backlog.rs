//! The seed question "Linux TCP weirdly unresponsive under heavy load": a listener's accept
//! queue overflows. `models/listen-backlog-overflow.toml` (SYNs dropped, connects time out)
//! and `models/listen-backlog-overflow-reset.toml` (linux-tcp-facts.md §5.4: a connect that
//! succeeded ends in ECONNRESET).

mod models_support;
use models_support::*;
use tcpsim::errno::Errno;
use tcpsim::scenario::{AppSpec, Step};
use tcpsim::tcp::profile::KernelProfile;

/// The SYN schedule of a connect that is never answered, as offsets from the first SYN, and
/// the offset of the ETIMEDOUT (tcp_timer.c `tcp_write_timeout` / `tcp_retransmit_timer`,
/// 6.5+: the first `tcp_syn_linear_timeouts` backoffs do not double; abort when retransmits
/// ≥ syn_retries + linear, or when the time since the SYN ≥ (2^(syn_retries+1) − 1)·init).
fn syn_schedule(p: &KernelProfile) -> (Vec<u64>, u64) {
    let init = p.tcp_timeout_init_ms * MS;
    let time_cap = ((1u64 << (p.tcp_syn_retries + 1)) - 1) * init;
    let (mut rto, mut t, mut retransmits) = (init, 0, 0);
    let mut syns = vec![0];
    loop {
        t += rto;
        if retransmits >= p.tcp_syn_retries + p.tcp_syn_linear_timeouts || t >= time_cap {
            return (syns, t);
        }
        syns.push(t);
        retransmits += 1;
        if retransmits > p.tcp_syn_linear_timeouts {
            rto = (2 * rto).min(p.tcp_rto_max_ms * MS);
        }
    }
}

#[test]
fn beyond_backlog_plus_one_syns_are_dropped_counted_and_connect_times_out_after_131_s() {
    let r = run_textbook("listen-backlog-overflow.toml");
    let server = profile(&r.sc, "server");
    let client = profile(&r.sc, "client");
    let ow = one_way(&r.sc);
    let (backlog, count, interval, bytes) = match (&r.sc.apps[0], &r.sc.apps[1]) {
        (AppSpec::Server { backlog, accept: false, .. }, AppSpec::Client { count, interval, bytes, .. }) => {
            (*backlog as u32, *count as usize, interval.unwrap().0 .0, *bytes)
        }
        other => panic!("unexpected apps {other:?}"),
    };
    // The accept queue holds min(backlog, somaxconn) + 1 (`sk_acceptq_is_full` is `>`).
    let capacity = backlog.min(server.somaxconn) as usize + 1;
    assert_eq!(capacity, 3);
    let clients: Vec<_> = r.report.sockets.iter().filter(|k| k.role == "client").collect();
    assert_eq!(clients.len(), count);
    let (syns, abort) = syn_schedule(&client);
    assert_eq!((syns.len(), abort), (11, 131 * S), "11 SYNs, ETIMEDOUT at 131 s");
    for (i, k) in clients.iter().enumerate() {
        let start = i as u64 * interval;
        if i < capacity {
            // Queued: handshake done one round trip after the start, data sent and acknowledged.
            assert_eq!((k.state, k.bytes_sent, k.errors.len()), ("ESTABLISHED", bytes, 0), "client {i}");
            assert_eq!(k.state_since_ns, start + 2 * ow, "client {i}");
        } else {
            assert_eq!((k.state, &k.errors[..]), ("CLOSE", &[Errno::ETIMEDOUT][..]), "client {i}");
            assert_eq!(k.first_error_ns, Some(start + abort), "client {i}");
            assert_eq!(k.state_since_ns, start + abort, "client {i}");
        }
    }
    // Every SYN of the three refused clients, retransmissions included, is dropped silently
    // (no SYN-ACK, no RST) and counted in both counters.
    let refused = (count - capacity) as u64;
    let syn_acks = r.sent("server", "S.").len();
    assert_eq!(syn_acks, capacity);
    assert!(r.sent("server", "R").is_empty());
    let starts = r.transitions("client", "SYN_SENT");
    for (i, st) in starts.iter().enumerate().skip(capacity) {
        let start = i as u64 * interval;
        assert_eq!(t(st), start);
        let times: Vec<u64> = r.events("seg_sent", |v| v["flags"] == "S" && v["src"] == st["local"]).iter().map(|v| t(v) - start).collect();
        assert_eq!(times, syns, "client {i}: SYNs at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s");
    }
    assert_eq!(r.counter("server", "ListenOverflows"), refused * syns.len() as u64);
    assert_eq!(r.counter("server", "ListenDrops"), refused * syns.len() as u64);
}

#[test]
fn connect_that_succeeded_against_a_full_queue_ends_in_the_listeners_rst_and_econnreset() {
    let r = run_textbook("listen-backlog-overflow-reset.toml");
    let server = profile(&r.sc, "server");
    let client = profile(&r.sc, "client");
    let ow = one_way(&r.sc);
    let rtt = 2 * ow;
    let init = server.tcp_timeout_init_ms * MS;
    let backlog = r.sc.script.iter().find_map(|s| match s {
        Step::Listen { backlog, .. } => Some(*backlog as u32),
        _ => None,
    });
    assert_eq!(backlog, Some(2));
    assert_eq!(server.tcp_synack_retries, 2, "the scenario lowers it as the measurement did");
    // Every connect succeeded: the client side completes on the SYN-ACK.
    for s in ["a", "b", "c", "d"] {
        ok(r.calls("connect", s)[0], 0);
    }
    // d's request: SYN at the server one way after d's connect began; SYN-ACK retransmitted
    // at 1 s, 3 s, … (init << k) while d's ACKs are dropped; dropped silently at
    // (2^(n+1) − 1)·init (reqsk_timer_handler).
    let connect_d = r.calls("connect", "d")[0].t_ns;
    let syn_rx = connect_d - ow;
    let n = server.tcp_synack_retries;
    let synack_rtx: Vec<u64> = (1..=n).map(|k| syn_rx + ((1u64 << k) - 1) * init).collect();
    let expiry = syn_rx + ((1u64 << (n + 1)) - 1) * init;
    let d_port = r.sent("client", "S").last().unwrap()["src"].clone();
    let synacks_to_d: Vec<u64> =
        r.events("seg_sent", |v| v["host"] == "server" && v["flags"] == "S." && v["dst"] == d_port).iter().map(|v| t(v)).collect();
    assert_eq!(synacks_to_d[1..], synack_rtx[..]);
    // d's request: sent, then TLP and RTO retransmissions, the RTO doubling from srtt + rto_min.
    let send_d = r.calls("send", "d")[0];
    ok(send_d, 6);
    let mut data = vec![send_d.t_ns, send_d.t_ns + tlp_delay(&client, rtt)];
    let mut rto = rto_after_handshake(&client, rtt);
    while *data.last().unwrap() + ow <= expiry {
        data.push(data.last().unwrap() + rto);
        rto *= 2;
    }
    let d_data: Vec<u64> = r.events("seg_sent", |v| v["src"] == d_port && v["len"] == 6).iter().map(|v| t(v)).collect();
    assert_eq!(d_data[..data.len()], data[..]);
    // The first one to arrive after the expiry meets only the listener: an RST with seq = the
    // segment's ack and no ACK flag (tcp_v4_send_reset), back one way later.
    let reaches = data.last().unwrap() + ow;
    let rst = r.sent("server", "R");
    assert_eq!(rst.iter().map(|v| t(v)).collect::<Vec<_>>(), [reaches]);
    let d = r.script_socket("d");
    assert_eq!((d.error_raised, d.error_raised_ns), (Some(Errno::ECONNRESET), Some(reaches + ow)));
    assert_eq!(reaches + ow - send_d.t_ns, 12_930 * MS, "64 RTOs of 202 ms, plus the round trip");
    // What d's application sees.
    let wait = r.ops("epoll_wait")[0];
    assert_eq!(events(wait), "POLLIN|POLLOUT|POLLRDHUP|POLLERR|POLLHUP");
    fails(r.calls("recv", "d")[0], Errno::ECONNRESET);
    // c's request completed c's handshake: the queue holds backlog + 1 = 3; a, b, c are fine.
    for s in ["a", "b", "c"] {
        let k = r.script_socket(s);
        assert_eq!((k.state, k.error_raised), (Some("ESTABLISHED"), None), "{s}");
    }
    // Counters: each of d's segments that reached the full queue before the expiry (its data
    // and retransmissions, and its ACK of each SYN-ACK retransmission) is one overflow; each
    // firing of the request timer, the expiring one included, is one TCPTimeouts.
    let overflows = data.iter().filter(|t| **t + ow < expiry).count() as u64 + u64::from(n);
    assert_eq!(overflows, 9, "as measured on 6.18 (facts §5.4)");
    assert_eq!(r.counter("server", "ListenOverflows"), overflows);
    assert_eq!(r.counter("server", "ListenDrops"), overflows);
    assert_eq!(r.counter("server", "TCPTimeouts"), u64::from(n) + 1);
}

#[test]
fn syn_ack_retransmissions_count_in_tcp_retrans_segs() {
    // tcp_output.c `tcp_rtx_synack` counts TCP_MIB_RETRANSSEGS for every SYN-ACK sent again,
    // by the request timer or for a retransmitted SYN.
    let r = run_model("listen-backlog-overflow-reset.toml");
    let synacks = r.sent("server", "S.");
    let mut firsts: Vec<(&serde_json::Value, &serde_json::Value)> = Vec::new();
    let again = synacks.iter().filter(|v| {
        let key = (&v["dst"], &v["seq"]);
        let seen = firsts.contains(&key);
        firsts.push(key);
        seen
    });
    let again = again.count() as u64;
    assert!(again > 0, "the scenario resends SYN-ACKs");
    assert_eq!(r.counter("server", "TcpRetransSegs"), again);
}

/// The seed's trace on loopback (`models/ab-loopback-reset.toml`): one of the second ab's
/// clients sees its SYN dropped and retransmitted, the SYN-ACK, its request dropped and
/// retransmitted, the server's SYN-ACK retransmissions, and an RST once its request sock
/// has expired; ab counts ECONNRESET for it.
#[test]
fn ab_on_loopback_syn_retransmitted_then_syn_ack_then_request_retransmitted_then_rst() {
    use tcpsim::world::LoadReport;
    // On textbook timers: the schedule is the algorithms' (the timer wheel moves each firing
    // later by up to its bucket, as docs/questions.md's run shows).
    let r = run_textbook("ab-loopback-reset.toml");
    let p = profile(&r.sc, "box");
    let init = p.tcp_timeout_init_ms * MS;
    let (backlog, second_at, second_n) = match (&r.sc.apps[0], &r.sc.apps[2]) {
        (AppSpec::HttpServer { backlog, .. }, AppSpec::Ab { at, concurrency, .. }) => {
            (*backlog as u64, at.expect("the second ab starts later").0.as_nanos(), u64::from(*concurrency))
        }
        other => panic!("unexpected apps {other:?}"),
    };
    // Segments of one client port, in order: (time, flags, payload length).
    let segs = |port: &serde_json::Value, to_server: bool| -> Vec<(u64, String, u64)> {
        let key = if to_server { "src" } else { "dst" };
        r.events("seg_sent", |v| &v[key] == port)
            .iter()
            .map(|v| (t(v), v["flags"].as_str().unwrap().to_string(), v["len"].as_u64().unwrap()))
            .collect()
    };
    // The client that got the first RST.
    let rsts = r.sent("box", "R");
    assert!(!rsts.is_empty(), "some client is reset");
    let port = rsts[0]["dst"].clone();
    let from = segs(&port, true);
    let to = segs(&port, false);
    let times = |v: &[(u64, String, u64)], flags: &str| -> Vec<u64> {
        v.iter().filter(|s| s.1 == flags).map(|s| s.0).collect()
    };
    // 1. The SYN at the second ab's start meets a full accept queue and is dropped; it is
    //    sent again one tcp_timeout_init later, and that one is answered.
    assert_eq!(times(&from, "S"), [second_at, second_at + init]);
    let syn_rtx = second_at + init;
    // 2. The SYN-ACK, at once (loopback), then the server's SYN-ACK retransmissions at 1 s and
    //    3 s; the request sock expires at 7 s: tcp_synack_retries cut to 2 by reqsk_timer_handler.
    assert_eq!(times(&to, "S."), [syn_rtx, syn_rtx + init, syn_rtx + 3 * init]);
    let expiry = syn_rtx + 7 * init;
    // 3. The request, sent on connect, dropped by the full queue (listen_overflow) and
    //    retransmitted: the TLP, then the RTO doubling. The handshake's RTT sample on
    //    loopback is the smallest, 1 µs: the RTO is srtt + rto_min rounded up to a jiffy
    //    (201 ms), and the TLP 2·srtt (one jiffy) + rto_min (`tcp_schedule_loss_probe`).
    let mut est = tcpsim::tcp::rtt::RttEstimator::default();
    est.sample(1, p.tcp_rto_min_us as u32, 1, 1);
    let mut rto = est.rto(tcpsim::time::Dur::from_millis(p.tcp_rto_max_ms), tcpsim::tcp::jiffies::Jiffies::of(&p)).as_nanos();
    let tlp = (2 * u64::from(est.srtt_us())).div_ceil(1000) * MS + rto_min(&p);
    let data: Vec<u64> = from.iter().filter(|s| s.2 == 100).map(|s| s.0).collect();
    assert_eq!(data[0], syn_rtx, "ab sends the request as soon as connect() succeeds");
    let mut want = vec![syn_rtx, syn_rtx + tlp.min(rto)];
    while *want.last().unwrap() <= expiry {
        want.push(want.last().unwrap() + rto);
        rto *= 2;
    }
    assert!(want.len() >= 5, "the request is retransmitted several times: {want:?}");
    assert_eq!(data, want, "every retransmission up to and including the one that is reset");
    // Each SYN-ACK retransmission is answered by the client's ACK (also dropped).
    assert_eq!(times(&from, ".").len(), 3, "the handshake's ACK and one per SYN-ACK retransmission");
    // 4. The first retransmission after the expiry meets only the listener: an RST at once.
    let rst_at = *want.last().unwrap();
    assert_eq!(times(&to, "R"), [rst_at]);
    assert!(rst_at > expiry && want[want.len() - 2] < expiry);
    // 5. ab reports it as ECONNRESET, first failure at the RST.
    let ab = r
        .report
        .load
        .iter()
        .filter_map(|l| if let LoadReport::Ab(a) = l { Some(a) } else { None })
        .find(|a| a.app == 2)
        .expect("the second ab's summary");
    let resets = rsts.len() as u32;
    assert_eq!(ab.failed_by_errno.get("ECONNRESET"), Some(&resets));
    let first = ab.first_failure.as_ref().expect("a failure");
    assert_eq!((first.t_ns, first.errno.as_str()), (rst_at, "ECONNRESET"));
    assert_eq!(r.counter("box", "TcpEstabResets"), u64::from(resets));
    // Syncookies did not help: the burst's first backlog + 1 SYNs got request socks, the rest
    // cookies (inet_csk_reqsk_queue_is_full, strict on 6.18), and every reset client held a
    // request sock (a cookie has nothing to expire).
    assert_eq!(r.counter("box", "SyncookiesSent"), second_n - (backlog + 1));
}
