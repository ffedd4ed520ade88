//! Congestion control on a connection: the algorithm a socket runs (`TCP_CONGESTION`, the
//! profile's default), the window after a loss, restart after idle, and what TCP_INFO says.

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::errno::Errno;
use tcpsim::tcp::uapi::{OptValue, SockOpt};
use tcpsim::tcp::cc::Algorithm;
use tcpsim::tcp::conn::{SendData, SockOpts};
use tcpsim::tcp::segment::Segment;
use tcpsim::time::Dur;

fn name(v: OptValue) -> String {
    match v {
        OptValue::Name(n) => n,
        other => panic!("TCP_CONGESTION reads back a name, not {other:?}"),
    }
}

#[test]
fn tcp_congestion_defaults_to_the_profiles_and_takes_known_names_only() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    assert_eq!(name(c.get_opt(SockOpt::TCP_CONGESTION)), "cubic");
    let mut out = Vec::new();
    c.set_opt(ms(1), SockOpt::TCP_CONGESTION, &OptValue::Name("reno".into()), &mut out).unwrap();
    assert_eq!(name(c.get_opt(SockOpt::TCP_CONGESTION)), "reno");
    // tcp_set_congestion_control: no such algorithm → ENOENT, and the old one stays.
    let err = c.set_opt(ms(2), SockOpt::TCP_CONGESTION, &OptValue::Name("vegas".into()), &mut out);
    assert_eq!(err, Err(Errno::ENOENT));
    assert_eq!(name(c.get_opt(SockOpt::TCP_CONGESTION)), "reno");
    assert_eq!(c.set_opt(ms(3), SockOpt::TCP_CONGESTION, &OptValue::Int(1), &mut out), Err(Errno::EINVAL));
}

/// Ten segments in flight, the third lost: the ssthresh recovery leaves.
fn ssthresh_after_one_loss(alg: Algorithm) -> u32 {
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.opts[0].congestion = Some(alg);
    let t0 = send_ten_losing_the_third(&mut sim);
    // The third duplicate ACK arrives at t0 + 20 ms; the retransmission's ACK at t0 + 40 ms.
    sim.run_until(t0 + Dur::from_millis(30));
    let info = sim.client().info();
    assert_eq!(info.ca_state, 3, "in recovery (TCP_CA_Recovery)");
    assert_eq!((info.lost, info.retrans), (1, 1), "the hole, retransmitted");
    sim.run_until(t0 + Dur::from_millis(500));
    assert_eq!(sim.server().inq(), 10 * 1448);
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.lost, info.retrans), (0, 0, 0));
    info.snd_ssthresh
}

#[test]
fn recovery_keeps_beta_of_the_window_for_cubic_and_half_for_reno() {
    // Two ACKs of slow start grew the window to 12 before the third duplicate ACK:
    // cubictcp_recalc_ssthresh 12·717/1024 = 8; tcp_reno_ssthresh 12/2 = 6.
    assert_eq!(ssthresh_after_one_loss(Algorithm::Cubic), 8);
    assert_eq!(ssthresh_after_one_loss(Algorithm::Reno), 6);
}

#[test]
fn an_rto_reports_loss_state_and_everything_outstanding_lost() {
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.connect();
    sim.run_until(ms(100));
    sim.blackhole = Some(|from, _s: &Segment| from == 0);
    let t0 = sim.now;
    sim.client_writes(4 * 1448);
    // The first RTO: 1 s at most (srtt 20 ms + rttvar floor 200 ms).
    sim.run_until(t0 + Dur::from_millis(1000));
    let info = sim.client().info();
    assert_eq!(info.ca_state, 4, "TCP_CA_Loss");
    assert_eq!((info.unacked, info.lost, info.retrans), (4, 4, 1));
    // cubic: max(10·717/1024, 2) = 7 (the initial window 10 never grew: nothing was acked).
    assert_eq!((info.snd_cwnd, info.snd_ssthresh), (1, 7));
    assert_eq!(info.reordering, 3);
}

#[test]
fn an_idle_sender_restarts_from_the_initial_window() {
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.connect();
    sim.run_until(ms(100));
    let t0 = sim.now;
    sim.client_writes(100 * 1448);
    sim.run_until(t0 + Dur::from_millis(500));
    assert_eq!(sim.client().outq(), 0);
    let grown = sim.client().info().snd_cwnd;
    assert!(grown >= 40, "slow start grew the window: {grown}");
    // Idle for 3 s, more than ten RTOs (rto ≈ 220 ms): tcp_cwnd_restart halves once per RTO
    // down to the initial window; ssthresh keeps ¾ of the old window.
    let t1 = t0 + Dur::from_secs(3);
    sim.run_until(t1);
    let before = sim.client().info();
    let mut out = Vec::new();
    sim.client().send(t1, SendData::Derived(100 * 1448), &mut out).unwrap();
    let after = sim.client().info();
    assert_eq!(after.snd_cwnd, 10);
    assert_eq!(after.snd_ssthresh, before.snd_ssthresh.max((grown >> 1) + (grown >> 2)));
    assert_eq!(out.len(), 10, "one initial window goes out");
}

/// `TCP_INFINITE_SSTHRESH`, what ssthresh is before any loss.
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// The undo counters the client's connection moved (`TCPFullUndo`, `TCPPartialUndo`,
/// `TCPLossUndo`, `TCPDSACKUndo`).
fn client_undos(sim: &mut Sim) -> [u64; 4] {
    client_mib(sim, ["TCPFullUndo", "TCPPartialUndo", "TCPLossUndo", "TCPDSACKUndo"])
}

/// The client connection's counters by `nstat` name (collected: each call starts afresh).
fn client_mib<const N: usize>(sim: &mut Sim, names: [&str; N]) -> [u64; N] {
    let mib = sim.client().take_mib();
    names.map(|name| mib.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| v))
}

#[test]
fn a_fast_retransmit_of_a_delayed_segment_is_undone_by_its_timestamp() {
    // Ten segments at 100 ms; the third takes 15 ms longer (it is not lost). The SACKs of
    // the others start recovery at about 122 ms and retransmit it; the original arrives
    // first (125 ms), so the cumulative ACK echoes the original's TSval (100 ms), older than
    // the retransmission: tcp_try_undo_recovery undoes the reduction (TCPFullUndo).
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.delay_extra = Some(|from, at, s: &Segment| (from == 0 && at == ms(100) && s.seq == CLIENT_ISS + 1 + 2 * 1448).then(|| Dur::from_millis(15)));
    sim.connect();
    sim.run_until(ms(100));
    sim.client_writes(10 * 1448);
    sim.run_until(ms(130));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.retrans), (3, 1), "in recovery, the third retransmitted");
    // Two ACKs of slow start grew the window to 12 before recovery (as in the lost case,
    // where cubic leaves ssthresh 8).
    assert_eq!(info.snd_ssthresh, 8);
    sim.run_until(ms(138));
    let info = sim.client().info();
    assert_eq!(info.ca_state, 0, "back to Open");
    assert_eq!(info.snd_ssthresh, INFINITE_SSTHRESH, "prior_ssthresh restored");
    assert!(info.snd_cwnd >= 12, "tcp_reno_undo_cwnd: at least prior_cwnd 12, got {}", info.snd_cwnd);
    assert_eq!(client_undos(&mut sim), [1, 0, 0, 0]);
    sim.run_until(ms(500));
    assert_eq!(sim.server().inq(), 10 * 1448);
}

#[test]
fn a_spurious_rto_is_undone_when_the_delayed_acks_echo_the_originals() {
    // One segment at 100 ms; the server's ACK of it is delayed by 600 ms, and all the client
    // sends later (the loss probe, the RTO retransmission) by 1 s. The delayed ACK echoes
    // the original TSval (100 ms), older than retrans_stamp: tcp_process_loss →
    // tcp_try_undo_loss (TCPLossUndo). (With more segments in flight, RACK would then find
    // those sent before the RTO retransmission lost and start a recovery, as Linux does.)
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.delay_extra = Some(|from, at, _s: &Segment| match from {
        1 if at >= ms(105) && at < ms(115) => Some(Dur::from_millis(600)),
        0 if at > ms(100) => Some(Dur::from_secs(1)),
        _ => None,
    });
    sim.connect();
    sim.run_until(ms(100));
    let before = sim.client().info();
    sim.client_writes(1448);
    sim.run_until(ms(700));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.snd_cwnd, info.snd_ssthresh), (4, 1, 7), "the RTO: TCP_CA_Loss");
    sim.run_until(ms(730));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.lost, info.unacked), (0, 0, 0), "undone and all acknowledged");
    assert_eq!(info.snd_ssthresh, INFINITE_SSTHRESH);
    assert_eq!(info.snd_cwnd, before.snd_cwnd, "cwnd back to prior_cwnd (no growth: not cwnd-limited)");
    assert_eq!(client_undos(&mut sim), [0, 0, 1, 0]);
}

#[test]
fn a_real_loss_is_not_undone() {
    // The third segment lost: the ACK that ends recovery echoes the retransmission's TSval.
    let mut sim = Sim::new(5, Dur::from_millis(10));
    let t0 = send_ten_losing_the_third(&mut sim);
    sim.run_until(t0 + Dur::from_millis(500));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.snd_ssthresh), (0, 8));
    assert_eq!(client_undos(&mut sim), [0, 0, 0, 0]);
}

#[test]
fn without_timestamps_a_d_sack_of_the_only_retransmission_undoes_the_recovery() {
    // As the timestamp case, but without timestamps and with more data behind: the ACK of
    // the delayed original proves nothing, but the server's D-SACK of the retransmission
    // (a duplicate: the original came first) brings undo_retrans to 0 while recovery still
    // runs, and tcp_try_undo_dsack restores ssthresh (TCPDSACKUndo).
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.profile = std::rc::Rc::new(tcpsim::tcp::profile::KernelProfile { tcp_timestamps: false, ..(*profile()).clone() });
    sim.delay_extra = Some(|from, at, s: &Segment| (from == 0 && at == ms(100) && s.seq == CLIENT_ISS + 1 + 2 * 1460).then(|| Dur::from_millis(15)));
    sim.connect();
    sim.run_until(ms(100));
    let sent = sim.client_writes(40 * 1460);
    sim.run_until(ms(130));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.retrans, info.snd_ssthresh), (3, 1, 8), "in recovery, the third retransmitted");
    sim.run_until(ms(500));
    let info = sim.client().info();
    assert_eq!(sim.server().inq() as u64, sent as u64);
    assert_eq!((info.ca_state, info.snd_ssthresh), (0, INFINITE_SSTHRESH), "undone by the D-SACK");
    assert_eq!(info.total_retrans, 1);
    assert_eq!(client_undos(&mut sim), [0, 0, 0, 1]);
}

#[test]
fn without_timestamps_f_rto_finds_an_rto_spurious_when_an_original_is_acked() {
    // Ten segments at 100 ms (twenty written); the server's ACKs of them are delayed by
    // 400 ms (they arrive at 520 ms), everything the client sends later by 1 s. The RTO
    // fires; then the delayed ACKs come: the first acknowledges the retransmitted head (F-RTO 2.b: new data goes out,
    // high_seq = snd_nxt), the second a segment never retransmitted (3.b): the RTO was
    // spurious, tcp_try_undo_loss(frto_undo) (TCPLossUndo, TCPSpuriousRTOs).
    let mut sim = Sim::new(5, Dur::from_millis(10));
    sim.profile = std::rc::Rc::new(tcpsim::tcp::profile::KernelProfile { tcp_timestamps: false, ..(*profile()).clone() });
    sim.delay_extra = Some(|from, at, _s: &Segment| match from {
        1 if at >= ms(105) && at < ms(115) => Some(Dur::from_millis(400)),
        0 if at > ms(100) => Some(Dur::from_secs(1)),
        _ => None,
    });
    sim.connect();
    sim.run_until(ms(100));
    sim.client_writes(20 * 1460);
    // The loss probe (142 ms) sent the eleventh segment; the RTO (362 ms) resent the first.
    sim.run_until(ms(515));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.snd_cwnd, info.snd_ssthresh, info.unacked), (4, 1, 7, 11), "the RTO: TCP_CA_Loss");
    let high = sim.client().info();
    sim.run_until(ms(525));
    let info = sim.client().info();
    assert_eq!((info.ca_state, info.lost, info.snd_ssthresh), (0, 0, INFINITE_SSTHRESH), "undone");
    assert!(info.snd_cwnd >= 10, "cwnd back to prior_cwnd 10: {}", info.snd_cwnd);
    assert!(high.unacked > info.unacked);
    assert_eq!(client_mib(&mut sim, ["TCPLossUndo", "TCPSpuriousRTOs", "TCPFullUndo", "TCPDSACKUndo"]), [1, 1, 0, 0]);
}
