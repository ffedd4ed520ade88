//! Closing paths, resets and the errnos Linux sets, per transition.

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::errno::Errno;
use tcpsim::scenario::types::{OptValue, ShutHow, SockOpt};
use tcpsim::socket::view::{RCV_SHUTDOWN, SHUTDOWN_MASK};
use tcpsim::tcp::conn::{SendData, SockOpts, TimerKind};
use tcpsim::tcp::segment::{Flags, Payload};
use tcpsim::tcp::state::{Cause, TcpState};

const C1: u32 = CLIENT_ISS + 1;
const S1: u32 = SERVER_ISS + 1;

#[test]
fn active_close_fin_wait_to_time_wait_for_60_s() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    c.take_transitions();
    let mut out = Vec::new();
    c.close(ms(10), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, Flags::FIN | Flags::ACK);
    assert_eq!((out[0].seq, out[0].ack), (C1, S1));
    assert_eq!(c.state(), TcpState::FinWait1);
    out.clear();
    c.on_segment(ms(20), &peer_seg(S1, C1 + 1, Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::FinWait2);
    // Orphaned FIN_WAIT2: tcp_fin_time = max(60 s, 3.5 RTO) = 15000 jiffies at HZ = 250, armed
    // at 20 ms (jiffy 5): expires 15005, on wheel level 3 (512-jiffy buckets):
    // ((15005 >> 9) + 1) << 9 = jiffy 15360, 61.44 s.
    assert_eq!(c.deadline(TimerKind::Keepalive), Some(ms(61_440)));
    c.on_segment(ms(30), &peer_seg(S1, C1 + 1, Flags::FIN | Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (Flags::ACK, C1 + 1, S1 + 1));
    assert_eq!(c.state(), TcpState::TimeWait);
    assert_eq!(c.view().state, Some(TcpState::Close), "the fd's socket is CLOSE after tcp_time_wait");
    // TCP_TIMEWAIT_LEN armed at 30 ms (jiffy 7): expires 15007, the same bucket, 61.44 s.
    assert_eq!(c.deadline(TimerKind::Keepalive), Some(ms(61_440)));
    // A retransmitted FIN is re-ACKed and restarts the 2MSL timer (`inet_twsk_reschedule`):
    // at 3 s (jiffy 750) it expires at 15750, bucket ((15750 >> 9) + 1) << 9 = 15872, 63.488 s.
    // (A restart before 1.44 s, jiffy 360, would land in the same bucket and not move it.)
    out.clear();
    c.on_segment(ms(3000), &peer_seg(S1, C1 + 1, Flags::FIN | Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(c.deadline(TimerKind::Keepalive), Some(ms(63_488)));
    assert!(!c.is_finished());
    c.on_timer(ms(63_488), TimerKind::Keepalive, &mut out);
    assert_eq!(c.state(), TcpState::Close);
    assert!(c.is_finished());
    assert_eq!(
        c.take_transitions(),
        vec![
            (TcpState::Established, TcpState::FinWait1, Cause::Close),
            (TcpState::FinWait1, TcpState::FinWait2, Cause::RcvAckOfFin),
            (TcpState::FinWait2, TcpState::TimeWait, Cause::RcvFin),
            (TcpState::TimeWait, TcpState::Close, Cause::TimewaitExpired)
        ]
    );
}

#[test]
fn orphaned_fin_wait2_times_out() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.close(ms(0), &mut out);
    c.on_segment(ms(5), &peer_seg(S1, C1 + 1, Flags::ACK, 1000, Payload::Empty), &mut out);
    // tcp_fin_time (60 s = 15000 jiffies at HZ = 250) from jiffy 1: expires 15001, wheel
    // level 3: ((15001 >> 9) + 1) << 9 = jiffy 15360, 61.44 s.
    assert_eq!(c.deadline(TimerKind::Keepalive), Some(ms(61_440)));
    c.on_timer(ms(61_440), TimerKind::Keepalive, &mut out);
    assert_eq!(c.state(), TcpState::Close);
    assert!(c.is_finished());
}

#[test]
fn shut_wr_fin_wait2_has_no_timeout_and_data_still_arrives() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.shutdown(ms(0), ShutHow::SHUT_WR, &mut out).unwrap();
    c.on_segment(ms(5), &peer_seg(S1, C1 + 1, Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::FinWait2);
    assert_eq!(c.deadline(TimerKind::Keepalive), None);
    c.on_segment(ms(6), &peer_seg(S1, C1 + 1, Flags::ACK | Flags::PSH, 1000, Payload::Bytes(b"late".to_vec().into())), &mut out);
    assert_eq!(c.recv(ms(7), 10, false, &mut out), Ok(b"late".to_vec()));
    assert_eq!(c.send(ms(7), SendData::Derived(1), &mut out), Err(Errno::EPIPE));
}

#[test]
fn passive_close_close_wait_then_last_ack() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    c.take_transitions();
    let mut out = Vec::new();
    c.on_segment(ms(10), &peer_seg(S1, C1, Flags::FIN | Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::CloseWait);
    // No data was ever received (ato = 0): the delayed ACK is armed for jiffies + 0. At
    // 10 ms (jiffy 2) that is wheel level 0's next bucket, jiffy 3: 12 ms.
    assert!(out.is_empty());
    assert_eq!(c.deadline(TimerKind::DelAck), Some(ms(12)));
    c.on_timer(ms(12), TimerKind::DelAck, &mut out);
    assert_eq!((out[0].flags, out[0].ack), (Flags::ACK, S1 + 1));
    let v = c.view();
    assert_eq!(v.shutdown, RCV_SHUTDOWN);
    assert!(v.done);
    assert_eq!(c.recv(ms(11), 10, false, &mut out), Ok(vec![]));
    out.clear();
    c.close(ms(20), &mut out);
    assert_eq!(c.state(), TcpState::LastAck);
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (Flags::FIN | Flags::ACK, C1, S1 + 1));
    c.on_segment(ms(30), &peer_seg(S1 + 1, C1 + 1, Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::Close);
    assert!(c.is_finished());
    assert_eq!(
        c.take_transitions(),
        vec![
            (TcpState::Established, TcpState::CloseWait, Cause::RcvFin),
            (TcpState::CloseWait, TcpState::LastAck, Cause::Close),
            (TcpState::LastAck, TcpState::Close, Cause::RcvAckOfFin)
        ]
    );
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    c.take_transitions();
    let mut out = Vec::new();
    c.close(ms(10), &mut out);
    out.clear();
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    c.on_segment(ms(11), &peer_seg(S1, C1, Flags::FIN | Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::Closing);
    assert_eq!((out[0].flags, out[0].ack), (Flags::ACK, S1 + 1));
    c.on_segment(ms(12), &peer_seg(S1 + 1, C1 + 1, Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::TimeWait);
    assert_eq!(
        c.take_transitions(),
        vec![
            (TcpState::Established, TcpState::FinWait1, Cause::Close),
            (TcpState::FinWait1, TcpState::Closing, Cause::RcvFin),
            (TcpState::Closing, TcpState::TimeWait, Cause::RcvAckOfFin)
        ]
    );
}

#[test]
fn close_with_unread_data_sends_rst() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.on_segment(ms(1), &peer_seg(S1, C1, Flags::ACK | Flags::PSH, 1000, Payload::Bytes(b"unread".to_vec().into())), &mut out);
    out.clear();
    c.close(ms(2), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, Flags::RST | Flags::ACK);
    assert_eq!((out[0].seq, out[0].ack), (C1, S1 + 6));
    assert_eq!(c.state(), TcpState::Close);
    assert!(c.is_finished());
}

#[test]
fn linger_zero_aborts_with_rst() {
    let mut opts = SockOpts::default();
    opts.set(SockOpt::SO_LINGER, &OptValue::Pair([1, 0])).unwrap();
    let (mut c, _) = established_plain(opts, ms(0));
    let mut out = Vec::new();
    c.send(ms(1), SendData::Derived(100), &mut out).unwrap();
    out.clear();
    c.close(ms(2), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, Flags::RST | Flags::ACK);
    assert_eq!(out[0].seq, C1 + 100, "tcp_acceptable_seq = snd_nxt");
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.take_transitions().last(), Some(&(TcpState::Established, TcpState::Close, Cause::Abort)));
}

#[test]
fn rst_in_established_resets_but_keeps_received_data() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.send(ms(1), SendData::Derived(3000), &mut out).unwrap();
    c.on_segment(ms(2), &peer_seg(S1, C1, Flags::ACK, 1000, Payload::Bytes(b"abcd".to_vec().into())), &mut out);
    c.on_segment(ms(3), &peer_seg(S1 + 4, C1, Flags::ACK, 1000, Payload::Bytes(b"efghij".to_vec().into())), &mut out);
    c.take_wakeup();
    c.on_segment(ms(4), &peer_seg(S1 + 10, 0, Flags::RST, 0, Payload::Empty), &mut out);
    assert_eq!(c.take_wakeup(), Some(tcpsim::socket::view::PollMask::EMPTY), "an RST wakes every waiter");
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.outq(), 0, "write queue purged");
    let v = c.view();
    assert_eq!((v.err, v.shutdown, v.done), (Some(Errno::ECONNRESET), SHUTDOWN_MASK, false));
    assert_eq!(c.recv(ms(5), 4, false, &mut out), Ok(b"abcd".to_vec()));
    assert_eq!(c.recv(ms(5), 100, false, &mut out), Ok(b"efghij".to_vec()));
    assert_eq!(c.recv(ms(5), 100, true, &mut out), Err(Errno::ECONNRESET));
    assert_eq!(c.recv(ms(5), 100, false, &mut out), Ok(vec![]));
    assert_eq!(c.send(ms(5), SendData::Derived(1), &mut out), Err(Errno::EPIPE));
}

#[test]
fn rst_in_close_wait_is_epipe_and_recv_still_eof() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.on_segment(ms(1), &peer_seg(S1, C1, Flags::FIN | Flags::ACK, 1000, Payload::Empty), &mut out);
    // seq = rcv_nxt - 1 is also accepted in CLOSE_WAIT (tcp_reset_check).
    c.on_segment(ms(2), &peer_seg(S1, 0, Flags::RST, 0, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.view().err, Some(Errno::EPIPE));
    assert_eq!(c.recv(ms(3), 10, false, &mut out), Ok(vec![]), "SOCK_DONE wins over sk_err");
    assert_eq!(c.send(ms(3), SendData::Derived(1), &mut out), Err(Errno::EPIPE));
    assert_eq!(c.take_error(), None, "send consumed it");
}

#[test]
fn inexact_rst_in_window_draws_challenge_ack() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.on_segment(ms(1), &peer_seg(S1 + 100, 0, Flags::RST, 0, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::Established);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq, out[0].ack), (Flags::ACK, C1, S1));
    out.clear();
    // Out of window: silently dropped.
    c.on_segment(ms(1), &peer_seg(S1.wrapping_add(10_000_000), 0, Flags::RST, 0, Payload::Empty), &mut out);
    assert!(out.is_empty());
    assert_eq!(c.state(), TcpState::Established);
}

#[test]
fn shut_rd_returns_eof_but_later_data_is_readable() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.shutdown(ms(1), ShutHow::SHUT_RD, &mut out).unwrap();
    assert!(out.is_empty(), "SHUT_RD sends nothing");
    assert_eq!(c.recv(ms(1), 10, false, &mut out), Ok(vec![]));
    c.on_segment(ms(2), &peer_seg(S1, C1, Flags::ACK, 1000, Payload::Bytes(b"more".to_vec().into())), &mut out);
    assert_eq!(c.recv(ms(3), 10, false, &mut out), Ok(b"more".to_vec()));
    assert_eq!(c.recv(ms(3), 10, false, &mut out), Ok(vec![]));
}

#[test]
fn data_after_close_is_answered_with_rst() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.close(ms(1), &mut out);
    out.clear();
    c.on_segment(ms(2), &peer_seg(S1, C1 + 1, Flags::ACK, 1000, Payload::Bytes(b"x".to_vec().into())), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq), (Flags::RST, C1 + 1));
    assert_eq!(c.state(), TcpState::Close);
}

#[test]
fn shutdown_in_syn_sent_disconnects_with_econnreset() {
    let mut out = Vec::new();
    let mut c = tcpsim::tcp::conn::Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    out.clear();
    c.shutdown(ms(1), ShutHow::SHUT_WR, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.take_error(), Some(Errno::ECONNRESET));
    assert_eq!(c.shutdown(ms(1), ShutHow::SHUT_RD, &mut out), Err(Errno::ENOTCONN));
}

#[test]
fn close_in_syn_sent_just_closes() {
    let mut out = Vec::new();
    let mut c = tcpsim::tcp::conn::Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    out.clear();
    c.close(ms(1), &mut out);
    assert!(out.is_empty());
    assert!(c.is_finished());
    assert_eq!(c.deadline(TimerKind::Retransmit), None);
}

/// `tcp_cwnd_test` (tcp_output.c): "Don't be strict about the congestion window for the final
/// FIN". With the initial window of 10 segments all in flight, a FIN queued alone goes out at
/// once; data queued behind the full window waits, and so does a FIN behind it.
#[test]
fn lone_fin_is_not_held_by_a_full_congestion_window() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    assert_eq!(c.send(ms(1), SendData::Derived(10 * 1460), &mut out), Ok(10 * 1460));
    assert_eq!(out.len(), 10, "the initial window is 10 segments");
    out.clear();
    c.shutdown(ms(2), ShutHow::SHUT_WR, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq, out[0].payload.len()), (Flags::FIN | Flags::ACK, C1 + 10 * 1460, 0));

    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    out.clear();
    assert_eq!(c.send(ms(1), SendData::Derived(12 * 1460), &mut out), Ok(12 * 1460));
    assert_eq!(out.len(), 10);
    out.clear();
    c.shutdown(ms(2), ShutHow::SHUT_WR, &mut out).unwrap();
    assert!(out.is_empty(), "two segments and the FIN wait for the window: {out:?}");
}
