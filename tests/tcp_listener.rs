//! The listener: SYN queue, accept queue, overflow, SYN-ACK schedule, syncookies
//! (linux-tcp-facts §5 and §3.5), all timings exact in simulated time. Tests of the SYN-ACK
//! schedule's numbers run on textbook timers (`textbook_profile`); the others on the default
//! jiffies profile (HZ = 250, the timer wheel), where a request's timer for `n` jiffies armed
//! at jiffy `j` runs at the bucket `(((j + n) >> shift) + 1) << shift` of its wheel level.

mod tcp_conn_common;
use tcpsim::addr::SockAddr;
use std::rc::Rc;
use tcpsim::tcp::conn::ChildParams;
use tcpsim::tcp::listener::{SynRoute, DropReason, Listener, ListenerAction};
use tcpsim::tcp::profile::KernelProfile;
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::{Dur, SimTime};
use tcp_conn_common::textbook_profile;

const SERVER: &str = "10.0.0.1:80";

fn server() -> SockAddr {
    SERVER.parse().unwrap()
}
fn client(n: u16) -> SockAddr {
    SockAddr::new("10.0.0.2".parse::<std::net::IpAddr>().unwrap(), 40000 + n)
}
fn ms(t: u64) -> SimTime {
    SimTime(t * 1_000_000)
}
fn secs(t: u64) -> SimTime {
    ms(t * 1000)
}
fn linux() -> KernelProfile {
    KernelProfile::linux_6_18()
}
fn listener(backlog: i32, p: KernelProfile) -> Listener<u32> {
    Listener::new(server(), backlog, Rc::new(p))
}
fn client_isn(n: u16) -> u32 {
    1_000_000 * u32::from(n) + 7
}
fn server_iss(n: u16) -> u32 {
    0x8000_0000 + u32::from(n)
}

/// A SYN as Linux sends it: MSS 1460, SACK_PERM, TS, WS 7.
fn syn(n: u16, tsval: u32) -> Segment {
    Segment {
        src: client(n),
        dst: server(),
        seq: client_isn(n),
        ack: 0,
        flags: Flags::SYN,
        ecn: Ecn::NotEct,
        window: 64240,
        options: TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some((tsval, 0)),
            ..TcpOptions::default()
        },
        payload: Payload::Empty,
    }
}

/// The client's segment after the handshake: an ACK of `synack` with `len` bytes of data
/// starting `offset` bytes into the stream.
fn ack_of(synack: &Segment, offset: u32, len: u32, tsval: u32) -> Segment {
    let tsecr = synack.options.timestamps.map_or(0, |t| t.0);
    Segment {
        src: synack.dst,
        dst: synack.src,
        seq: synack.ack.wrapping_add(offset),
        ack: synack.seq.wrapping_add(1),
        flags: if len > 0 { Flags::ACK | Flags::PSH } else { Flags::ACK },
        ecn: Ecn::NotEct,
        window: 502,
        options: TcpOptions { timestamps: synack.options.timestamps.map(|_| (tsval, tsecr)), ..TcpOptions::default() },
        payload: if len == 0 { Payload::Empty } else { Payload::Derived { stream: 9, offset: u64::from(offset), len } },
    }
}

/// Sends client n's SYN at `now`, returning the SYN-ACK.
fn open(l: &mut Listener<u32>, n: u16, now: SimTime) -> Segment {
    let mut out = Vec::new();
    let a = l.on_segment(now, &syn(n, 100), veth(server_iss(n)), &mut out);
    assert!(matches!(a, ListenerAction::SynAckSent { .. }), "client {n}: {a:?}");
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn expect_child(a: ListenerAction) -> Box<ChildParams> {
    match a {
        ListenerAction::Child(c) => c,
        other => panic!("expected a child, got {other:?}"),
    }
}

/// Full handshake for client n at `now`; the child's handle is n.
fn connect(l: &mut Listener<u32>, n: u16, now: SimTime) -> Box<ChildParams> {
    let sa = open(l, n, now);
    let mut out = Vec::new();
    let c = expect_child(l.on_segment(now, &ack_of(&sa, 0, 0, 101), veth(0), &mut out));
    assert!(out.is_empty());
    l.enqueue(u32::from(n));
    c
}

/// Runs the listener's timers up to `until`, returning (time, segment) for each output.
fn run_timers(l: &mut Listener<u32>, until: SimTime) -> Vec<(SimTime, Segment)> {
    let mut sent = Vec::new();
    while let Some(t) = l.deadline().filter(|&t| t <= until) {
        let mut out = Vec::new();
        l.on_timer(t, &mut out);
        sent.extend(out.into_iter().map(|s| (t, s)));
    }
    sent
}

#[test]
fn synack_has_linux_options_and_window() {
    let mut l = listener(128, linux());
    let sa = open(&mut l, 1, ms(5));
    assert_eq!((sa.src, sa.dst), (server(), client(1)));
    assert_eq!(sa.flags, Flags::SYN | Flags::ACK);
    assert_eq!((sa.seq, sa.ack), (server_iss(1), client_isn(1) + 1));
    // tcp_select_initial_window: half of tcp_rmem[1] rounded down to 1448-byte segments;
    // scale from max(tcp_rmem[2] = 32 MiB, rmem_max) = 2^25 -> 10.
    assert_eq!(sa.window, 65160);
    assert_eq!(sa.options.mss, Some(1460));
    assert_eq!(sa.options.wscale, Some(10));
    assert!(sa.options.sack_permitted);
    let (tsval, tsecr) = sa.options.timestamps.unwrap();
    assert_eq!(tsecr, 100);
    assert_eq!(l.syn_queue_len(), 1);

    // The same SYN-ACK an instant later carries a TSval 1 ms on.
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(6), &syn(1, 100), veth(0), &mut out), ListenerAction::SynAckResent);
    assert_eq!(out[0].options.timestamps.unwrap().0, tsval.wrapping_add(1));

    // Without the client's options: no WS/SACK/TS, window a multiple of 1460.
    let mut bare = syn(2, 0);
    bare.options = TcpOptions::default();
    let mut out = Vec::new();
    l.on_segment(ms(5), &bare, veth(9), &mut out);
    let o = &out[0].options;
    assert_eq!((o.mss, o.wscale, o.sack_permitted, o.timestamps), (Some(1460), None, false, None));
    assert_eq!(out[0].window, 64240);
}

/// The SYN-ACK schedule's numbers (textbook timers; the wheel is covered by
/// `deadline_steps_through_the_schedule`).
#[test]
fn synack_schedule_is_1_3_7_15_31_and_the_request_dies_at_63s() {
    let mut l = listener(128, textbook_profile());
    let sa = open(&mut l, 1, SimTime::ZERO);
    let sent = run_timers(&mut l, secs(200));
    let times: Vec<_> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [1, 3, 7, 15, 31].map(secs));
    for (_, s) in &sent {
        assert_eq!((s.flags, s.seq, s.ack), (sa.flags, sa.seq, sa.ack));
    }
    assert_eq!(l.syn_queue_len(), 0, "dropped at the sixth firing, 63 s");
    assert_eq!(l.deadline(), None);
    assert_eq!(l.counters().tcp_timeouts, 6);
    // Each SYN-ACK sent again is a retransmitted segment (tcp_rtx_synack).
    assert_eq!(l.counters().retrans_segs, sent.len() as u64);

    // The client's next segment finds only the listener: RST with seq = its ack.
    let mut out = Vec::new();
    let data = ack_of(&sa, 0, 6, 200);
    assert_eq!(l.on_segment(secs(64), &data, veth(0), &mut out), ListenerAction::Reset);
    assert_eq!((out[0].flags, out[0].seq), (Flags::RST, data.ack));
}

/// The SYN-ACK timer on the default jiffies profile: `reqsk_timer_handler` re-arms
/// `TCP_TIMEOUT_INIT << num_timeout` (250, 500, … jiffies at HZ = 250) from the jiffy it runs
/// at, and each lands in its wheel level's bucket. Armed at 250 ms (jiffy 62):
/// 62 + 250 = 312 (level 1, 8-jiffy buckets) → 320 (1280 ms); 320 + 500 = 820 → 824 (3296 ms);
/// 824 + 1000 = 1824 (level 2, 64-jiffy buckets) → 1856 (7424 ms); 1856 + 2000 = 3856 → 3904
/// (15616 ms); 3904 + 4000 = 7904 → 7936 (31744 ms); 7936 + 8000 = 15936 (level 3, 512-jiffy
/// buckets) → 16384 (65536 ms), where the request dies.
#[test]
fn deadline_steps_through_the_schedule() {
    let mut l = listener(128, linux());
    open(&mut l, 1, ms(250));
    let mut seen = Vec::new();
    while let Some(t) = l.deadline() {
        seen.push(t);
        l.on_timer(t, &mut Vec::new());
    }
    let want: Vec<_> = [1280, 3296, 7424, 15616, 31744, 65536].map(ms).to_vec();
    assert_eq!(seen, want);
}

/// The restart's arithmetic (textbook timers; the wheel is covered by
/// `deadline_steps_through_the_schedule`).
#[test]
fn retransmitted_syn_gets_the_synack_again_and_restarts_the_timer() {
    let mut l = listener(128, textbook_profile());
    open(&mut l, 1, SimTime::ZERO);
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(1500), &syn(1, 100), veth(0), &mut out), ListenerAction::SynAckResent);
    assert_eq!(out.len(), 1);
    // mod_timer_pending(now + reqsk_timeout): num_timeout still 0 -> 1 s.
    assert_eq!(l.deadline(), Some(ms(2500)));
    // tcp_oow_rate_limited: a second SYN within 500 ms gets nothing.
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(1900), &syn(1, 100), veth(0), &mut out), ListenerAction::Dropped(DropReason::Ignored));
    assert!(out.is_empty());
    assert_eq!(l.deadline(), Some(ms(2500)));
    let sent = run_timers(&mut l, secs(10));
    let times: Vec<_> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [ms(2500), ms(4500), ms(8500)]);
}

#[test]
fn accept_queue_holds_backlog_plus_one() {
    for backlog in [0, 1, 2, 5] {
        let mut l = listener(backlog, linux());
        let cap = backlog as u16 + 1;
        for n in 0..cap {
            connect(&mut l, n, ms(u64::from(n)));
        }
        assert_eq!(l.accept_queue_len(), usize::from(cap));
        // The next SYN is dropped before any SYN-ACK (tcp_conn_request).
        let mut out = Vec::new();
        let a = l.on_segment(secs(1), &syn(cap, 1), veth(1), &mut out);
        assert_eq!(a, ListenerAction::Dropped(DropReason::AcceptQueueFull), "listen({backlog})");
        assert!(out.is_empty());
        assert_eq!(l.counters().listen_overflows, 1);
        assert_eq!(l.counters().listen_drops, 1);
        assert_eq!(l.syn_queue_len(), 0);
        // One accept() makes room for exactly one more.
        assert_eq!(l.accept(), Some(0));
        connect(&mut l, cap, secs(2));
        assert_eq!(
            l.on_segment(secs(3), &syn(cap + 1, 1), veth(1), &mut out),
            ListenerAction::Dropped(DropReason::AcceptQueueFull)
        );
    }
}

#[test]
fn backlog_is_capped_at_somaxconn_and_negative_means_somaxconn() {
    assert_eq!(listener(100_000, linux()).backlog(), 4096);
    assert_eq!(listener(-1, linux()).backlog(), 4096);
    assert_eq!(listener(7, linux()).backlog(), 7);
}

#[test]
fn accept_is_fifo_in_completion_order() {
    let mut l = listener(10, linux());
    let sas: Vec<_> = (0..3).map(|n| open(&mut l, n, SimTime::ZERO)).collect();
    for &n in &[2usize, 0, 1] {
        let c = expect_child(l.on_segment(ms(10), &ack_of(&sas[n], 1, 0, 1), veth(0), &mut Vec::new()));
        assert_eq!(c.remote, client(n as u16));
        l.enqueue(n as u32);
    }
    assert_eq!((l.accept(), l.accept(), l.accept(), l.accept()), (Some(2), Some(0), Some(1), None));
}

#[test]
fn child_params_carry_the_negotiation_and_the_completing_data() {
    let mut l = listener(10, linux());
    let sa = open(&mut l, 1, SimTime::ZERO);
    let data = ack_of(&sa, 0, 6, 555);
    let c = expect_child(l.on_segment(ms(30), &data, veth(0), &mut Vec::new()));
    assert_eq!((c.local, c.remote), (server(), client(1)));
    assert_eq!((c.iss, c.irs), (server_iss(1), client_isn(1)));
    assert_eq!((c.peer_mss, c.adv_mss), (1460, 1460));
    assert_eq!((c.snd_wscale, c.rcv_wscale), (Some(7), 10));
    assert!(c.sack_ok && !c.cookie);
    assert_eq!(c.timestamps.unwrap().ts_recent, 555, "ts_recent from the completing segment");
    assert_eq!(c.snd_wnd, 502 << 7);
    assert_eq!(c.rcv_wnd, 65160);
    assert_eq!((c.synack_sent_at, c.synack_retransmits), (Some(SimTime::ZERO), 0));
    assert_eq!(c.segment, data, "the data must reach the child");
    assert_eq!(l.syn_queue_len(), 0);
    assert_eq!(l.accept_queue_len(), 1, "counted before the handle is enqueued");
    assert_eq!(l.deadline(), None);
}

/// linux-tcp-facts §5.4 on the model: listen(2), no accept(), tcp_synack_retries=2. A and B
/// fill the queue to 2; C's and D's final ACKs were lost; then each sends 6 bytes.
#[test]
fn seed_scenario_c_completes_d_overflows_and_is_reset_after_its_request_expires() {
    let mut p = linux();
    p.tcp_synack_retries = 2;
    let mut l = listener(2, p);
    connect(&mut l, 0, SimTime::ZERO); // A
    connect(&mut l, 1, SimTime::ZERO); // B
    let sa_c = open(&mut l, 2, SimTime::ZERO);
    let sa_d = open(&mut l, 3, SimTime::ZERO);
    assert_eq!((l.accept_queue_len(), l.syn_queue_len()), (2, 2));

    // C's data completes C's handshake: the queue reaches backlog+1 = 3.
    let c = expect_child(l.on_segment(ms(273), &ack_of(&sa_c, 0, 6, 1), veth(0), &mut Vec::new()));
    assert_eq!(c.segment.payload.len(), 6);
    l.enqueue(2);
    assert_eq!(l.accept_queue_len(), 3);

    // D's data hits listen_overflow: dropped silently, request kept ("acked").
    let mut out = Vec::new();
    let d_data = ack_of(&sa_d, 0, 6, 1);
    assert_eq!(l.on_segment(ms(273), &d_data, veth(0), &mut out), ListenerAction::Dropped(DropReason::AcceptQueueFull));
    assert!(out.is_empty());
    assert_eq!((l.counters().listen_overflows, l.counters().listen_drops), (1, 1));
    assert!(l.has_request(client(3)));

    // D's client retransmits its data (TLP, then RTO doubling) and ACKs each SYN-ACK
    // retransmission; the server retransmits the SYN-ACK at 1 and 3 s and the request
    // expires at 7 s (1 + 2 + 4), each on the timer wheel at HZ = 250: 250 jiffies from
    // jiffy 0 → level-1 bucket 256 (1024 ms); 256 + 500 = 756 → 760 (3040 ms);
    // 760 + 1000 = 1760 → level-2 (64-jiffy) bucket 1792 (7168 ms).
    let client_data = [478, 686, 1110, 1942, 3610, 7030, 13686];
    let mut events: Vec<(SimTime, Option<Segment>)> =
        client_data.iter().map(|&t| (ms(t), Some(d_data.clone()))).collect();
    events.sort_by_key(|e| e.0);
    let mut synacks = Vec::new();
    let mut first_rst = None;
    for (t, seg) in events {
        for (ts, sa) in run_timers(&mut l, t) {
            assert_eq!(sa.dst, client(3));
            synacks.push(ts);
            // The client answers the duplicate SYN-ACK with an ACK: also dropped.
            let a = l.on_segment(ts, &ack_of(&sa, 6, 0, 2), veth(0), &mut Vec::new());
            assert_eq!(a, ListenerAction::Dropped(DropReason::AcceptQueueFull));
        }
        let mut out = Vec::new();
        let a = l.on_segment(t, seg.as_ref().unwrap(), veth(0), &mut out);
        if a == ListenerAction::Reset && first_rst.is_none() {
            assert_eq!((out[0].flags, out[0].seq, out[0].dst), (Flags::RST, d_data.ack, client(3)));
            first_rst = Some(t);
        }
    }
    assert_eq!(synacks, [ms(1024), ms(3040)]);
    assert!(!l.has_request(client(3)));
    // As the measurement saw: the request still lives at 7.03 s (it expires at 7.168 s), so
    // that retransmission is dropped too and the one at 13.686 s draws the RST;
    // ListenOverflows 9 (7 data segments + 2 ACKs of SYN-ACK retransmissions). (With exact
    // timers the request expired at 7.000 s, the RST came at 7.03 s and the count stopped
    // at 8.)
    assert_eq!(first_rst, Some(ms(13686)));
    assert_eq!(l.counters().listen_overflows, 9);
    assert_eq!(l.counters().listen_drops, 9);
    assert_eq!(l.counters().tcp_timeouts, 3);
}

#[test]
fn an_accept_in_time_lets_a_retransmission_complete_the_handshake() {
    // listen(0) on 6.14+: one request fits the SYN queue (qlen 0 is not > 0); client 0
    // then completes through a syncookie and fills the accept queue.
    let mut l = listener(0, linux());
    let sa = open(&mut l, 1, SimTime::ZERO);
    connect(&mut l, 0, SimTime::ZERO);
    assert_eq!(
        l.on_segment(ms(10), &ack_of(&sa, 0, 3, 1), veth(0), &mut Vec::new()),
        ListenerAction::Dropped(DropReason::AcceptQueueFull)
    );
    // The SYN-ACK retransmission: 250 jiffies from jiffy 0 at HZ = 250, level-1 bucket 256,
    // 1024 ms.
    let resent = run_timers(&mut l, ms(1200));
    assert_eq!(resent.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [ms(1024)]);
    assert_eq!(l.accept(), Some(0));
    let c = expect_child(l.on_segment(ms(1200), &ack_of(&sa, 0, 3, 2), veth(0), &mut Vec::new()));
    assert_eq!(c.synack_retransmits, 1);
    assert_eq!(c.segment.payload.len(), 3);
}

#[test]
fn abort_on_overflow_resets_the_completing_segment() {
    let mut p = linux();
    p.tcp_abort_on_overflow = true;
    let mut l = listener(0, p);
    let sa = open(&mut l, 1, SimTime::ZERO);
    connect(&mut l, 0, SimTime::ZERO);
    let mut out = Vec::new();
    let data = ack_of(&sa, 0, 6, 1);
    assert_eq!(l.on_segment(ms(5), &data, veth(0), &mut out), ListenerAction::Reset);
    assert_eq!((out[0].flags, out[0].seq), (Flags::RST, data.ack));
    assert_eq!(l.counters().embryonic_rsts, 1);
    assert_eq!(l.counters().listen_overflows, 1);
    assert_eq!(l.syn_queue_len(), 0);
}

#[test]
fn rst_from_the_client_drops_its_request_and_oow_segments_get_an_ack() {
    let mut l = listener(10, linux());
    let sa = open(&mut l, 1, SimTime::ZERO);
    // Far out of window: answered with an ACK of the SYN, request kept.
    let mut far = ack_of(&sa, 1_000_000, 10, 1);
    far.flags = Flags::ACK;
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(1), &far, veth(0), &mut out), ListenerAction::Acked);
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (Flags::ACK, sa.seq + 1, sa.ack));
    // An ACK of the wrong sequence: the listener answers with an RST.
    let mut wrong = ack_of(&sa, 0, 0, 1);
    wrong.ack = wrong.ack.wrapping_add(5);
    out.clear();
    assert_eq!(l.on_segment(ms(2), &wrong, veth(0), &mut out), ListenerAction::Reset);
    assert_eq!(out[0].seq, wrong.ack);
    assert!(l.has_request(client(1)));
    // An in-window RST removes the request quietly.
    let mut rst = ack_of(&sa, 0, 0, 1);
    rst.flags = Flags::RST;
    out.clear();
    assert_eq!(l.on_segment(ms(3), &rst, veth(0), &mut out), ListenerAction::Dropped(DropReason::RequestReset));
    assert!(out.is_empty());
    assert_eq!(l.counters().embryonic_rsts, 1);
    assert_eq!((l.syn_queue_len(), l.deadline()), (0, None));
}

#[test]
fn listener_answers_acks_with_rst_and_ignores_rsts_and_syn_fin() {
    let mut l = listener(10, linux());
    let mut out = Vec::new();
    let mut stray = syn(1, 1);
    stray.flags = Flags::ACK;
    stray.ack = 4242;
    assert_eq!(l.on_segment(ms(1), &stray, veth(0), &mut out), ListenerAction::Reset);
    assert_eq!((out[0].seq, out[0].flags), (4242, Flags::RST));
    assert_eq!(l.counters().syncookies_failed, 0, "no cookie check without a recent overflow");
    out.clear();
    stray.flags = Flags::RST;
    assert_eq!(l.on_segment(ms(1), &stray, veth(0), &mut out), ListenerAction::Dropped(DropReason::Ignored));
    stray.flags = Flags::SYN | Flags::FIN;
    assert_eq!(l.on_segment(ms(1), &stray, veth(0), &mut out), ListenerAction::Dropped(DropReason::Ignored));
    assert!(out.is_empty());
    assert_eq!(l.syn_queue_len(), 0);
}

#[test]
fn syncookies_when_the_syn_queue_is_full() {
    // listen(0) on 6.18: the first SYN gets a request, the second concurrent one a cookie.
    let mut l = listener(0, linux());
    open(&mut l, 1, SimTime::ZERO);
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(10), &syn(2, 100), veth(0), &mut out), ListenerAction::SynAckSent { cookie: true });
    let cookie_sa = out.pop().unwrap();
    assert_eq!(l.syn_queue_len(), 1, "a cookie keeps no state");
    // Client 1's request timer: 250 jiffies from jiffy 0, level-1 bucket 256, 1024 ms.
    assert_eq!(l.deadline(), Some(ms(1024)), "and has no timer");
    let c = l.counters();
    assert_eq!((c.tcp_req_q_full_do_cookies, c.syncookies_sent), (1, 1));
    assert_eq!(cookie_sa.options.wscale, Some(10));
    assert!(cookie_sa.options.sack_permitted);

    // Never retransmitted: only client 1's SYN-ACK comes out of the timers.
    assert!(run_timers(&mut l, secs(2)).iter().all(|(_, s)| s.dst == client(1)));

    // The client's ACK, with data, is validated and becomes a child with its options.
    let data = ack_of(&cookie_sa, 0, 6, 300);
    let ch = expect_child(l.on_segment(secs(2), &data, veth(0), &mut Vec::new()));
    assert!(ch.cookie);
    assert_eq!(ch.synack_sent_at, None, "no RTT sample from a cookie");
    assert_eq!((ch.iss, ch.irs), (cookie_sa.seq, client_isn(2)));
    assert_eq!((ch.peer_mss, ch.snd_wscale, ch.sack_ok), (1460, Some(7), true));
    assert_eq!(ch.timestamps.unwrap().ts_recent, 300);
    assert_eq!(ch.segment, data);
    assert_eq!(l.counters().syncookies_recv, 1);
    l.enqueue(2);

    // A forged cookie fails and is answered with an RST.
    let mut forged = ack_of(&cookie_sa, 0, 0, 1);
    forged.src = client(3);
    let mut out = Vec::new();
    assert_eq!(l.on_segment(secs(3), &forged, veth(0), &mut out), ListenerAction::Reset);
    assert_eq!(l.counters().syncookies_failed, 1);

    // A valid cookie ACK while the accept queue is full is dropped (no RST).
    let mut out = Vec::new();
    assert_eq!(l.on_segment(secs(3), &syn(4, 1), veth(0), &mut out), ListenerAction::Dropped(DropReason::AcceptQueueFull));
    assert!(out.is_empty(), "a full accept queue drops SYNs even when cookies are on");
}

#[test]
fn cookie_ack_when_the_accept_queue_fills_meanwhile_is_dropped() {
    let mut l = listener(1, linux());
    open(&mut l, 1, SimTime::ZERO);
    open(&mut l, 2, SimTime::ZERO); // qlen 1 is not > 1
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(1), &syn(3, 1), veth(0), &mut out), ListenerAction::SynAckSent { cookie: true });
    let cookie_sa = out.pop().unwrap();
    for n in [1u16, 2] {
        let sa = syn(n, 0);
        let ack = Segment {
            src: client(n),
            seq: sa.seq + 1,
            ack: server_iss(n) + 1,
            flags: Flags::ACK,
            options: TcpOptions::default(),
            ..sa
        };
        expect_child(l.on_segment(ms(2), &ack, veth(0), &mut Vec::new()));
        l.enqueue(u32::from(n));
    }
    let mut out = Vec::new();
    assert_eq!(
        l.on_segment(ms(3), &ack_of(&cookie_sa, 0, 0, 1), veth(0), &mut out),
        ListenerAction::Dropped(DropReason::AcceptQueueFull)
    );
    assert!(out.is_empty());
    assert_eq!((l.counters().syncookies_recv, l.counters().listen_overflows), (1, 1));
}

#[test]
fn cookie_without_timestamps_carries_no_window_scale_or_sack() {
    let mut l = listener(0, linux());
    open(&mut l, 1, SimTime::ZERO);
    let mut bare = syn(2, 0);
    bare.options = TcpOptions { mss: Some(1400), ..TcpOptions::default() };
    let mut out = Vec::new();
    l.on_segment(ms(1), &bare, veth(0), &mut out);
    let sa = out.pop().unwrap();
    assert_eq!((sa.options.wscale, sa.options.sack_permitted, sa.options.timestamps), (None, false, None));
    let ch = expect_child(l.on_segment(ms(2), &ack_of(&sa, 0, 0, 0), veth(0), &mut Vec::new()));
    assert_eq!((ch.peer_mss, ch.snd_wscale, ch.sack_ok, ch.timestamps), (1300, None, false, None));
}

#[test]
fn older_kernels_send_cookies_one_request_earlier() {
    // linux-6.1: inet_csk_reqsk_queue_is_full is qlen >= backlog, so listen(0) cookies at once.
    let mut l = listener(0, KernelProfile::builtin("linux-6.1").unwrap());
    let mut out = Vec::new();
    assert_eq!(l.on_segment(SimTime::ZERO, &syn(1, 1), veth(0), &mut out), ListenerAction::SynAckSent { cookie: true });
    assert_eq!(l.syn_queue_len(), 0);
}

#[test]
fn without_syncookies_a_full_syn_queue_drops_syns() {
    let mut p = linux();
    p.tcp_syncookies = 0;
    let mut l = listener(1, p);
    open(&mut l, 1, SimTime::ZERO);
    open(&mut l, 2, SimTime::ZERO);
    let mut out = Vec::new();
    assert_eq!(l.on_segment(ms(1), &syn(3, 1), veth(0), &mut out), ListenerAction::Dropped(DropReason::SynQueueFull));
    assert!(out.is_empty());
    let c = l.counters();
    assert_eq!((c.tcp_req_q_full_drop, c.listen_drops, c.listen_overflows), (1, 1, 0));
}

#[test]
fn cookies_expire_and_are_checked_only_after_a_recent_overflow() {
    let mut l = listener(0, linux());
    open(&mut l, 1, SimTime::ZERO);
    let mut out = Vec::new();
    l.on_segment(SimTime::ZERO, &syn(2, 100), veth(0), &mut out);
    let sa = out.pop().unwrap();
    // Two cookie periods later the cookie is stale (MAX_SYNCOOKIE_AGE) -> failed, RST.
    let a = l.on_segment(secs(120), &ack_of(&sa, 0, 0, 1), veth(0), &mut out);
    assert_eq!(a, ListenerAction::Reset);
    assert_eq!(l.counters().syncookies_failed, 1);
    // Past TCP_SYNCOOKIE_VALID since the last overflow, ACKs are not checked at all.
    l.on_segment(secs(121), &ack_of(&sa, 0, 0, 1), veth(0), &mut out);
    assert_eq!(l.counters().syncookies_failed, 1);
}

/// `reqsk_timer_handler`'s pruning arithmetic (textbook timers; the wheel is covered by
/// `deadline_steps_through_the_schedule`).
#[test]
fn old_requests_are_pruned_while_the_syn_queue_is_clogged() {
    // 16 requests in listen(16): 2*qlen > max(8, 16). Once none is young, each firing's
    // retry limit falls to 2 (reqsk_timer_handler), so at 7 s requests expire until the
    // queue is down to half the backlog; the rest keep the normal schedule to 63 s.
    let mut l = listener(16, textbook_profile());
    for n in 0..16 {
        open(&mut l, n, SimTime::ZERO);
    }
    let sent = run_timers(&mut l, secs(7));
    let at = |t: SimTime| sent.iter().filter(|(x, _)| *x == t).map(|(_, s)| s.dst).collect::<Vec<_>>();
    assert_eq!(at(secs(1)).len(), 16);
    assert_eq!(at(secs(3)).len(), 16);
    // Timers due together fire in client-address order: clients 0..8 expire, 8..16 resend.
    assert_eq!(at(secs(7)), (8..16).map(client).collect::<Vec<_>>());
    assert_eq!(l.syn_queue_len(), 8);
    assert!(!l.has_request(client(7)) && l.has_request(client(8)));
    let later: Vec<_> = run_timers(&mut l, secs(100)).iter().map(|(t, _)| *t).collect();
    assert_eq!(later, [15, 31].iter().flat_map(|&t| [secs(t); 8]).collect::<Vec<_>>());
    assert_eq!(l.syn_queue_len(), 0);
    assert_eq!(l.counters().tcp_timeouts, 16 * 3 + 8 * 3);

    // 4 requests (2*4 is not > 16) keep the full schedule.
    let mut l = listener(16, textbook_profile());
    for n in 0..4 {
        open(&mut l, n, SimTime::ZERO);
    }
    run_timers(&mut l, secs(62));
    assert_eq!(l.syn_queue_len(), 4);
}

#[test]
fn close_returns_unaccepted_children_and_forgets_requests() {
    let mut l = listener(5, linux());
    connect(&mut l, 0, SimTime::ZERO);
    connect(&mut l, 1, SimTime::ZERO);
    let sa = open(&mut l, 2, SimTime::ZERO);
    assert_eq!(l.accept(), Some(0));
    assert_eq!(l.close(), vec![1], "the caller resets each (tcp_disconnect)");
    assert_eq!((l.syn_queue_len(), l.accept_queue_len(), l.deadline()), (0, 0, None));
    // The half-open client's ACK now finds no socket: RST.
    let mut out = Vec::new();
    let ack = ack_of(&sa, 0, 0, 1);
    assert_eq!(l.on_segment(ms(5), &ack, veth(0), &mut out), ListenerAction::Reset);
    assert_eq!(out[0].seq, ack.ack);
    assert!(run_timers(&mut l, secs(100)).is_empty());
}

#[test]
fn counters_have_nstat_names() {
    let mut l = listener(0, linux());
    connect(&mut l, 0, SimTime::ZERO);
    l.on_segment(ms(1), &syn(1, 1), veth(0), &mut Vec::new());
    let m = l.counters().to_map();
    assert_eq!(m["ListenOverflows"], 1);
    assert_eq!(m["ListenDrops"], 1);
    assert_eq!(m.len(), 10);
    let json = serde_json::to_value(l.counters()).unwrap();
    assert_eq!(json["ListenOverflows"], 1);
    assert_eq!(json["TcpRetransSegs"], 0);
    assert_eq!(json["TCPReqQFullDoCookies"], 0);
    assert_eq!(json["EmbryonicRsts"], 0);
    let _ = Dur::ZERO;
}

/// A SYN's ISS over a 1500-byte veth (advertised MSS 1460, `ipv4_default_advmss`).
fn veth(iss: u32) -> SynRoute {
    SynRoute { iss, advmss: 1460 }
}
