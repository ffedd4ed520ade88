//! Timers asserted exactly in simulated time: the SYN schedule, TLP and RTO backoff, the
//! retries2 budget, TCP_USER_TIMEOUT, keepalive and zero-window probing.
//!
//! Most tests check an algorithm's numbers and run on `textbook_profile()` (HZ = 1000, exact
//! timers); the timer wheel's rounding of each firing is covered by `tests/timers_jiffies.rs`,
//! by `answered_keepalive_restarts_the_idle_period` here, and by the close, handshake and
//! listener tests that stay on the default jiffies profile.

mod tcp_conn_common;
use std::collections::BTreeMap;
use std::rc::Rc;
use tcp_conn_common::*;
use tcpsim::errno::Errno;
use tcpsim::scenario::types::{OptValue, SockOpt};
use tcpsim::tcp::conn::{Conn, SendData, SockOpts, TimerKind};
use tcpsim::tcp::profile::KernelProfile;
use tcpsim::tcp::segment::{seq_ge, Flags, Segment};
use tcpsim::tcp::state::{Cause, TcpState};
use tcpsim::time::{Dur, SimTime};

/// Drives a lone connecting socket through its SYN timer: (SYN times, death time).
fn syn_schedule(profile: KernelProfile, opts: SockOpts) -> (Vec<u64>, u64, Conn) {
    let mut out = Vec::new();
    let mut c = Conn::connect(SimTime::ZERO, Rc::new(profile), opts, client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    let mut syns = vec![0u64];
    let mut now = SimTime::ZERO;
    while c.state() == TcpState::SynSent {
        now = c.deadline(TimerKind::Retransmit).expect("SYN timer armed");
        out.clear();
        c.on_timer(now, TimerKind::Retransmit, &mut out);
        for s in &out {
            assert_eq!(s.flags, Flags::SYN);
            assert_eq!(s.seq, CLIENT_ISS);
            syns.push(now.as_nanos() / 1_000_000);
        }
    }
    (syns, now.as_nanos() / 1_000_000, c)
}

/// The algorithm's schedule (textbook timers); the first SYN retransmission on the wheel is in
/// `tcp_conn_handshake.rs` (`syn_carries_linux_options_and_window`).
#[test]
fn syn_schedule_6_18_linear_then_exponential_131_s() {
    let (syns, death, mut c) = syn_schedule(textbook_profile(), SockOpts::default());
    let secs: Vec<u64> = syns.iter().map(|t| t / 1000).collect();
    assert_eq!(secs, vec![0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]);
    assert!(syns.iter().all(|t| t % 1000 == 0));
    assert_eq!(death, 131_000);
    assert_eq!(c.take_error(), Some(Errno::ETIMEDOUT));
    assert_eq!(c.take_transitions().last(), Some(&(TcpState::SynSent, TcpState::Close, Cause::Timeout)));
}

/// The 6.1 SYN schedule's numbers (textbook timers; the wheel is covered elsewhere).
#[test]
fn syn_schedule_6_1_exponential_127_s() {
    let (syns, death, _) = syn_schedule(textbook(KernelProfile::builtin("linux-6.1").unwrap()), SockOpts::default());
    assert_eq!(syns, vec![0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000]);
    assert_eq!(death, 127_000);
}

/// TCP_SYNCNT's retry counts (textbook timers; the wheel is covered elsewhere).
#[test]
fn syncnt_limits_match_measurements() {
    for (n, want_syns, want_death) in [(1, 3, 3_000), (2, 6, 7_000), (3, 8, 19_000)] {
        let mut o = SockOpts::default();
        o.set(SockOpt::TCP_SYNCNT, &OptValue::Int(n)).unwrap();
        let (syns, death, _) = syn_schedule(textbook_profile(), o);
        assert_eq!((syns.len(), death), (want_syns, want_death), "TCP_SYNCNT={n}");
    }
}

/// TCP_USER_TIMEOUT's clamp of the SYN timer (textbook timers; the wheel is covered elsewhere).
#[test]
fn user_timeout_bounds_connect_on_6_x() {
    let mut o = SockOpts::default();
    o.set(SockOpt::TCP_USER_TIMEOUT, &OptValue::Int(2500)).unwrap();
    let (syns, death, mut c) = syn_schedule(textbook_profile(), o);
    assert_eq!(syns, vec![0, 1_000, 2_000]);
    assert_eq!(death, 2_500);
    assert_eq!(c.take_error(), Some(Errno::ETIMEDOUT));
}

/// An established pair on a 10 µs link whose client→server data is then black-holed. Its
/// users check the RTO algorithm's numbers (backoff, budgets, caps), so it runs on textbook
/// timers; the RTO and TLP on the wheel are in `tests/timers_jiffies.rs`.
fn blackholed_sender(opts: SockOpts) -> (Sim, SimTime) {
    let mut sim = Sim::new(7, Dur::from_micros(10));
    sim.profile = Rc::new(textbook_profile());
    sim.opts[0] = opts;
    sim.connect();
    sim.run_until(ms(100));
    assert_eq!(sim.client().state(), TcpState::Established);
    sim.blackhole = Some(|from, s: &Segment| from == 0 && !s.payload.is_empty());
    let t0 = sim.now;
    let mut out = Vec::new();
    sim.client().send(t0, SendData::Derived(100), &mut out).unwrap();
    sim.transmit(0, out);
    (sim, t0)
}

fn data_times(sim: &Sim, t0: SimTime) -> Vec<u64> {
    sim.sent_by(0, |s| !s.payload.is_empty()).iter().map(|s| (s.at - t0).as_millis()).collect()
}

/// The RTO's exponential backoff (textbook timers; the wheel is covered elsewhere).
#[test]
fn tlp_then_rto_backoff_on_a_near_zero_rtt_link() {
    let (mut sim, t0) = blackholed_sender(SockOpts::default());
    sim.run_until(t0 + Dur::from_millis(7_000));
    // RTO = SRTT (20 µs) + 200 ms, in whole jiffies: 201 ms. PTO = 2·SRTT (1 jiffy) + 200 ms.
    assert_eq!(data_times(&sim, t0), vec![0, 201, 402, 804, 1608, 3216, 6432]);
    let info = sim.client().info();
    assert_eq!(info.backoff, 5);
    assert_eq!(info.rto_us, 201_000 * 32);
    assert_eq!(info.retransmits, 5);
}

/// The tcp_retries2 budget (textbook timers; the wheel is covered elsewhere).
#[test]
fn retries2_budget_kills_at_the_first_firing_past_924_6_s() {
    let (mut sim, t0) = blackholed_sender(SockOpts::default());
    let done = sim.run_while_not(t0 + Dur::from_secs(2_000), |s| s.client().state() == TcpState::Close);
    assert!(done);
    // Expected: RTO retransmissions from t0 + 402 ms with the RTO doubling from 402 ms up to
    // 120 s; death at the first firing at least 924.6 s after the first of them.
    let first = 402u64;
    let (mut t, mut rto, mut fired) = (first, 402u64, vec![first]);
    let death = loop {
        t += rto;
        rto = (rto * 2).min(120_000);
        if t - first >= 924_600 {
            break t;
        }
        fired.push(t);
    };
    let times = data_times(&sim, t0);
    assert_eq!(times[0], 0);
    assert_eq!(times[1], 201, "the TLP");
    assert_eq!(&times[2..], &fired[..]);
    assert_eq!((sim.now - t0).as_millis(), death);
    assert_eq!(sim.client().take_error(), Some(Errno::ETIMEDOUT));
    assert!(sim.sent_by(0, |s| s.flags.contains(Flags::RST)).is_empty(), "no RST on a retransmission timeout");
}

/// TCP_USER_TIMEOUT's budget (textbook timers; the wheel is covered elsewhere).
#[test]
fn user_timeout_kills_data_3_s_after_the_first_rto() {
    let mut o = SockOpts::default();
    o.set(SockOpt::TCP_USER_TIMEOUT, &OptValue::Int(3000)).unwrap();
    let (mut sim, t0) = blackholed_sender(o);
    assert!(sim.run_while_not(t0 + Dur::from_secs(10), |s| s.client().state() == TcpState::Close));
    assert_eq!((sim.now - t0).as_millis(), 402 + 3000);
    // 3216 ms is still 2.814 s after the first RTO: one more retransmission, then the timer is
    // clamped to fire exactly at the user timeout.
    assert_eq!(data_times(&sim, t0), vec![0, 201, 402, 804, 1608, 3216]);
    assert_eq!(sim.client().take_error(), Some(Errno::ETIMEDOUT));
}

fn keepalive_pair(profile: KernelProfile, idle: Option<i64>, intvl: Option<i64>, cnt: Option<i64>) -> Sim {
    let mut sim = Sim::new(9, Dur::from_millis(1));
    sim.profile = Rc::new(profile);
    let mut o = SockOpts::default();
    o.set(SockOpt::SO_KEEPALIVE, &OptValue::Int(1)).unwrap();
    if let Some(v) = idle {
        o.set(SockOpt::TCP_KEEPIDLE, &OptValue::Int(v)).unwrap();
    }
    if let Some(v) = intvl {
        o.set(SockOpt::TCP_KEEPINTVL, &OptValue::Int(v)).unwrap();
    }
    if let Some(v) = cnt {
        o.set(SockOpt::TCP_KEEPCNT, &OptValue::Int(v)).unwrap();
    }
    sim.opts[0] = o;
    sim.connect();
    sim.run_until(ms(10));
    sim
}

/// The keepalive algorithm's count and interval (textbook timers).
#[test]
fn keepalive_death_at_7875_s_then_rst() {
    let mut sim = keepalive_pair(textbook_profile(), None, None, None);
    // The SYN-ACK reached the client at 2 ms: the last segment it will ever receive.
    sim.blackhole = Some(|from, _| from == 1);
    assert!(sim.run_while_not(SimTime(0) + Dur::from_secs(9_000), |s| s.client().state() == TcpState::Close));
    let last_rx = 2u64;
    assert_eq!(sim.now.as_nanos() / 1_000_000, last_rx + 7_875_000);
    let probes = sim.sent_by(0, |s| s.payload.is_empty() && s.flags == Flags::ACK && s.seq == CLIENT_ISS);
    let times: Vec<u64> = probes.iter().map(|p| p.at.as_nanos() / 1_000_000 - last_rx).collect();
    assert_eq!(times, (0..9).map(|k| 7_200_000 + k * 75_000).collect::<Vec<_>>());
    let rst = sim.sent_by(0, |s| s.flags.contains(Flags::RST));
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].at, sim.now);
    assert_eq!(sim.client().take_error(), Some(Errno::ETIMEDOUT));
}

/// Keepalive on the default jiffies profile (HZ = 250, the timer wheel): tcp_timer.c
/// `tcp_keepalive_timer` probes once `keepalive_time_elapsed` (jiffies since the last receipt,
/// `rcv_tstamp`) reaches the idle time, else re-arms for the rest of it.
#[test]
fn answered_keepalive_restarts_the_idle_period() {
    let mut sim = keepalive_pair(KernelProfile::linux_6_18(), Some(2), Some(1), Some(3));
    sim.run_until(ms(10_000));
    assert_eq!(sim.client().state(), TcpState::Established);
    let probes = sim.sent_by(0, |s| s.payload.is_empty() && s.flags == Flags::ACK && s.seq == CLIENT_ISS);
    // The SYN-ACK arrives at 2 ms (jiffy 0): `tcp_finish_connect` arms 2 s = 500 jiffies,
    // level 1 (8-jiffy buckets): ((500 >> 3) + 1) << 3 = jiffy 504, 2016 ms: probe. The reply
    // at 2018 ms sets rcv_tstamp = 504; the keepalive interval (250 jiffies) fires at
    // ((754 >> 3) + 1) << 3 = 760, elapsed 256 < 500, re-armed for 244: ((1004 >> 3) + 1) << 3
    // = 1008, elapsed 504: probe at 4032 ms. Each answered probe restarts the same 504-jiffy
    // (2016 ms) cycle.
    let times: Vec<u64> = probes.iter().map(|p| p.at.as_nanos() / 1_000_000).collect();
    assert_eq!(times, vec![2_016, 4_032, 6_048, 8_064]);
    // The peer answers each with a pure ACK at snd_una.
    let replies = sim.sent_by(1, |s| s.payload.is_empty() && s.ack == CLIENT_ISS + 1);
    assert!(replies.len() >= 4);
}

/// The keepalive algorithm's probe count (textbook timers).
#[test]
fn unanswered_keepalive_with_small_settings() {
    let mut sim = keepalive_pair(textbook_profile(), Some(2), Some(1), Some(3));
    sim.blackhole = Some(|from, _| from == 1);
    assert!(sim.run_while_not(ms(20_000), |s| s.client().state() == TcpState::Close));
    assert_eq!(sim.now, ms(2 + 2_000 + 3 * 1_000));
}

/// An idle keepalive connection holds no cold state (issue 14's memory per connection):
/// while a probe is unanswered `icsk_probes_out` is 1 and the box is held; the peer's reply
/// clears it (`tcp_ack`: `icsk_probes_out = 0`) and the box is freed.
#[test]
fn idle_keepalive_connection_frees_its_cold_state() {
    /// What the host does after each entry: collect the transitions and counters, shrink.
    fn holds_cold_state(c: &mut Conn) -> bool {
        c.take_transitions();
        c.take_mib();
        c.shrink();
        c.holds_cold_state()
    }
    let mut sim = keepalive_pair(textbook_profile(), Some(2), Some(1), Some(3));
    assert!(!holds_cold_state(sim.client()), "after the handshake");
    assert!(!holds_cold_state(sim.server()), "the accepted child after the handshake");
    // Textbook timers: the SYN-ACK arrived at 2 ms, the first probe leaves at 2002 ms and
    // its answer is back at 2004 ms.
    sim.run_until(ms(2_003));
    assert_eq!(sim.client().info().probes, 1);
    assert!(holds_cold_state(sim.client()), "a probe is outstanding");
    sim.run_until(ms(2_005));
    assert_eq!(sim.client().info().probes, 0);
    assert!(!holds_cold_state(sim.client()), "the probe was answered");
}

/// A sender whose peer (receive buffer 8 KB, never read) closes its window.
fn zero_window_pair(profile: KernelProfile) -> Sim {
    let mut sim = Sim::new(11, Dur::from_millis(1));
    sim.profile = Rc::new(profile);
    sim.opts[1].set(SockOpt::SO_RCVBUF, &OptValue::Int(4096)).unwrap();
    sim.connect();
    sim.run_until(ms(10));
    let now = sim.now;
    let mut out = Vec::new();
    sim.client().send(now, SendData::Derived(50_000), &mut out).unwrap();
    sim.transmit(0, out);
    sim
}

/// The persist timer's backoff and the probes' rate limit (textbook timers).
#[test]
fn persist_probes_back_off_and_never_time_out_while_answered() {
    let mut sim = zero_window_pair(textbook_profile());
    sim.run_until(ms(3_600_000));
    assert_eq!(sim.client().state(), TcpState::Established);
    // Window probes: zero-length ACKs at snd_una - 1 (tcp_xmit_probe_skb).
    let una = first_unacked(&sim);
    let zw: Vec<Sent> = sim.sent_by(0, |s| s.payload.is_empty() && s.flags == Flags::ACK && s.seq == una.wrapping_sub(1));
    assert!(zw.len() > 20, "probes continue: {}", zw.len());
    let gaps: Vec<u64> = zw.windows(2).map(|w| (w[1].at - w[0].at).as_millis()).collect();
    // Doubling from the RTO, capped at 120 s; each answer (one RTT later) re-arms the timer
    // from its arrival (tcp_ack_probe). The RTO is 208 ms, from three RTT samples. The
    // 2896-byte window of the 4096-byte SO_RCVBUF gives one quick ACK (`tcp_incr_quickack`:
    // 2896 / (2·1448) = 1): a 2 ms sample. The next two segments leave tcp_space =
    // (8192 − 5176)·162/256 = 1908 (the receive memory of three 1448-byte segments, one skb head,
    // at the measured scaling_ratio 162), a window of one MSS, below the one offered, so their
    // ACK waits (__tcp_ack_snd_check) until the sender's loss probe re-sends the last and the
    // duplicate draws it at once (ack 4345, window 1448); its timestamp echoes the segment at
    // rcv_wup, sent 10 ms before (tcp_replace_ts_recent takes no later one): a 10 ms sample.
    // The sender fills the 1448 bytes; the ACK of them offers 0 (tcp_space 992 < MSS) and
    // waits for the 40 ms delayed-ACK timer: a 42 ms sample. srtt 2 → 3 → 7.875 ms
    // (tcp_rtt_estimator, 1/8 gain) and the RTO is srtt + the 200 ms rttvar floor, rounded
    // up to the millisecond. A probe sits below rcv_wup, so the receiver answers it through
    // tcp_oow_rate_limited (tcp_validate_incoming): the second probe comes 418 ms after the
    // first answer, inside the 500 ms limit, and goes unanswered, so its gap is the bare timer
    // (208 << 2), from the probe's own sending.
    assert_eq!(&gaps[..4], &[2 + 416, 832, 2 + 1664, 2 + 3328]);
    let answers = sim.sent_by(1, |s| s.flags == Flags::ACK && s.ack == una).iter().filter(|s| s.at > zw[0].at).count();
    assert_eq!(answers, zw.len() - 1, "every probe but the second is answered");
    assert!(gaps.iter().all(|g| *g <= 120_002));
    assert_eq!(*gaps.last().unwrap(), 120_002);
    assert_eq!(sim.client().info().probes, 0, "every probe was answered");
    // Reading opens the window and the transfer completes.
    let now = sim.now;
    let mut got = 0;
    let mut out = Vec::new();
    for _ in 0..100 {
        let now2 = sim.now;
        if let Ok(v) = sim.server().recv(now2, 100_000, false, &mut out) {
            got += v.len();
        }
        let o = std::mem::take(&mut out);
        sim.transmit(1, o);
        sim.run_until(sim.now + Dur::from_secs(200));
    }
    assert_eq!(got, 50_000, "after {}", (sim.now - now).as_millis());
}

fn first_unacked(sim: &Sim) -> u32 {
    // The persist probes sit at snd_una - 1; snd_una is where the receiver's ACKs point.
    sim.sent_by(1, |s| s.flags.contains(Flags::ACK)).last().map(|s| s.seg.ack).unwrap()
}

#[test]
fn unanswered_persist_probes_time_out_after_retries2() {
    let mut sim = zero_window_pair(KernelProfile::linux_6_18());
    sim.run_until(ms(2_000));
    sim.blackhole = Some(|from, _| from == 1);
    assert!(sim.run_while_not(ms(10_000_000), |s| s.client().state() == TcpState::Close));
    assert_eq!(sim.client().take_error(), Some(Errno::ETIMEDOUT));
}

/// TCP_RTO_MAX_MS's cap (textbook timers; the wheel is covered elsewhere).
#[test]
fn rto_max_ms_caps_backoff_and_shrinks_the_budget() {
    let mut o = SockOpts::default();
    o.set(SockOpt::TCP_RTO_MAX_MS, &OptValue::Int(1000)).unwrap();
    let (mut sim, t0) = blackholed_sender(o);
    assert!(sim.run_while_not(t0 + Dur::from_secs(100), |s| s.client().state() == TcpState::Close));
    let times = data_times(&sim, t0);
    assert_eq!(&times[..6], &[0, 201, 402, 804, 1608, 2608]);
    // Budget with rto_max 1 s: 7 × 0.2 + 13 × 1 = 14.4 s after the first RTO (402 ms).
    let death = (sim.now - t0).as_millis();
    assert!((402 + 14_400..402 + 15_400).contains(&death), "{death}");
    assert_eq!(*times.last().unwrap() + 1_000, death);
}

/// The tcp_orphan_retries budget (textbook timers; the wheel is covered elsewhere).
#[test]
fn orphan_gives_up_after_tcp_orphan_retries_without_error_or_rst() {
    let (mut sim, t0) = blackholed_sender(SockOpts::default());
    let now = sim.now;
    let mut out = Vec::new();
    sim.client().close(now, &mut out);
    sim.transmit(0, out);
    assert!(sim.run_while_not(t0 + Dur::from_secs(2_000), |s| s.client().state() == TcpState::Close));
    // The FIN leaves on its own skb: two packets out, so the loss probe (the FIN) comes
    // usecs_to_jiffies(2·srtt + TCP_TIMEOUT_MIN_US) after it (srtt 20 µs: ⌈2.04 ms⌉ = 3 ms),
    // and the first RTO one RTO (201 ms) later. tcp_orphan_retries 0 → 8: 511 × 0.2 s = 102.2 s after that.
    let death = (sim.now - t0).as_millis();
    let first = 3 + 201;
    let (mut t, mut rto) = (first, 402u64);
    let expect = loop {
        t += rto;
        rto = (rto * 2).min(120_000);
        if t - first >= 102_200 {
            break t;
        }
    };
    assert_eq!(death, expect);
    assert!(sim.client().is_finished());
    assert_eq!(sim.client().take_error(), None, "a closed socket reports nothing");
    assert!(sim.sent_by(0, |s| s.flags.contains(Flags::RST)).is_empty());
}

#[test]
fn no_keepalive_probe_while_data_is_outstanding() {
    let mut sim = keepalive_pair(KernelProfile::linux_6_18(), Some(2), Some(1), Some(3));
    sim.blackhole = Some(|from, _| from == 1);
    let now = sim.now;
    let mut out = Vec::new();
    sim.client().send(now, SendData::Derived(10), &mut out).unwrap();
    sim.transmit(0, out);
    sim.run_until(ms(6_000));
    let probes = sim.sent_by(0, |s| s.payload.is_empty() && s.flags == Flags::ACK && s.seq == CLIENT_ISS);
    assert!(probes.is_empty());
    assert_eq!(sim.client().state(), TcpState::Established);
}

#[test]
fn after_an_rto_only_the_skbs_lost_then_are_resent() {
    let mut sim = Sim::new(7, Dur::from_millis(1));
    sim.connect();
    sim.run_until(ms(100));
    let t0 = sim.now;
    sim.blackhole = Some(|from, s: &Segment| from == 0 && !s.payload.is_empty());
    let mut out = Vec::new();
    sim.client().send(t0, SendData::Derived(200_000), &mut out).unwrap();
    sim.transmit(0, out);
    // The first flight, its loss probe and the first RTO all vanish; then the path heals.
    sim.run_until(t0 + Dur::from_millis(500));
    let lost_end = sim.sent_by(0, |s| !s.payload.is_empty()).iter().map(|s| s.seg.seq.wrapping_add(s.seg.payload.len())).max().unwrap();
    assert!(sim.client().info().backoff > 0, "an RTO fired");
    sim.blackhole = None;
    sim.run_until(t0 + Dur::from_secs(30));
    // tcp_enter_loss marks the skbs below high_seq lost and tcp_xmit_retransmit_queue resends
    // only those: data first sent after the RTO is not resent by the same ACK that sent it
    // (a loss probe may resend the last skb later, when the closed window stalls the flow).
    let mut first: BTreeMap<u32, SimTime> = BTreeMap::new();
    let mut resent = Vec::new();
    for s in sim.sent_by(0, |s| !s.payload.is_empty()) {
        match first.get(&s.seg.seq) {
            Some(&at) if seq_ge(s.seg.seq, lost_end) && s.at - at < Dur::from_millis(1) => resent.push(s.seg.seq),
            Some(_) => {}
            None => {
                first.insert(s.seg.seq, s.at);
            }
        }
    }
    assert!(first.keys().filter(|&&seq| seq_ge(seq, lost_end)).count() > 20, "the transfer went on");
    assert!(resent.is_empty(), "new data resent after the RTO: {resent:?}");
}
