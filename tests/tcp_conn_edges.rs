//! Every state's answer to an acceptable RST and to a dead peer: the edges into CLOSE with
//! their causes and the errno each leaves (tcp_reset, tcp_write_err).

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::errno::Errno;
use tcpsim::scenario::types::ShutHow;
use tcpsim::tcp::conn::{Conn, SockOpts, TimerKind};
use tcpsim::tcp::segment::{Flags, Payload, Segment};
use tcpsim::tcp::state::{Cause, TcpState};
use tcpsim::time::SimTime;

const C1: u32 = CLIENT_ISS + 1;
const S1: u32 = SERVER_ISS + 1;

/// A connection driven into `state` against a scripted peer; returns it with the peer's
/// next sequence number (what an exact RST must carry).
fn conn_in(state: TcpState) -> (Conn, u32) {
    let mut out = Vec::new();
    let fin = |seq| peer_seg(seq, C1, Flags::FIN | Flags::ACK, 65535, Payload::Empty);
    let ack_fin = |seq| peer_seg(seq, C1 + 1, Flags::ACK, 65535, Payload::Empty);
    match state {
        TcpState::SynSent => {
            let c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, &mut out);
            (c, S1)
        }
        TcpState::SynRecv => {
            let mut c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, &mut out);
            c.on_segment(ms(1), &peer_seg(SERVER_ISS, 0, Flags::SYN, 65535, Payload::Empty), &mut out);
            (c, S1)
        }
        _ => {
            let (mut c, _) = established_plain(SockOpts::default(), ms(0));
            let next = match state {
                TcpState::Established => S1,
                TcpState::FinWait1 => {
                    c.shutdown(ms(1), ShutHow::SHUT_WR, &mut out).unwrap();
                    S1
                }
                TcpState::FinWait2 => {
                    c.shutdown(ms(1), ShutHow::SHUT_WR, &mut out).unwrap();
                    c.on_segment(ms(2), &ack_fin(S1), &mut out);
                    S1
                }
                TcpState::CloseWait => {
                    c.on_segment(ms(1), &fin(S1), &mut out);
                    S1 + 1
                }
                TcpState::Closing => {
                    c.shutdown(ms(1), ShutHow::SHUT_WR, &mut out).unwrap();
                    c.on_segment(ms(2), &fin(S1), &mut out);
                    S1 + 1
                }
                TcpState::LastAck => {
                    c.on_segment(ms(1), &fin(S1), &mut out);
                    c.shutdown(ms(2), ShutHow::SHUT_WR, &mut out).unwrap();
                    S1 + 1
                }
                TcpState::TimeWait => {
                    c.shutdown(ms(1), ShutHow::SHUT_WR, &mut out).unwrap();
                    c.on_segment(ms(2), &ack_fin(S1), &mut out);
                    let f = peer_seg(S1, C1 + 1, Flags::FIN | Flags::ACK, 65535, Payload::Empty);
                    c.on_segment(ms(3), &f, &mut out);
                    S1 + 1
                }
                s => panic!("no recipe for {s}"),
            };
            (c, next)
        }
    }
}

const STATES: [TcpState; 9] = [
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::Established,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::CloseWait,
    TcpState::Closing,
    TcpState::LastAck,
    TcpState::TimeWait,
];

#[test]
fn an_exact_rst_closes_every_state_with_linux_errno() {
    for state in STATES {
        let (mut c, next) = conn_in(state);
        assert_eq!(c.state(), state);
        c.take_transitions();
        let mut out = Vec::new();
        let rst = if state == TcpState::SynSent {
            peer_seg(0, C1, Flags::RST | Flags::ACK, 0, Payload::Empty)
        } else {
            peer_seg(next, 0, Flags::RST, 0, Payload::Empty)
        };
        c.on_segment(ms(10), &rst, &mut out);
        assert!(out.is_empty(), "{state}: no answer to an RST");
        assert_eq!(c.take_transitions(), vec![(state, TcpState::Close, Cause::RcvRst)], "{state}");
        let want = match state {
            TcpState::SynSent => Some(Errno::ECONNREFUSED),
            TcpState::CloseWait => Some(Errno::EPIPE),
            TcpState::TimeWait => None, // the fd's socket was already done
            _ => Some(Errno::ECONNRESET),
        };
        assert_eq!(c.take_error(), want, "{state}");
        assert_eq!(c.deadline(TimerKind::Retransmit), None, "{state}");
    }
}

#[test]
fn a_dead_peer_times_out_every_state_that_retransmits() {
    for state in [TcpState::SynSent, TcpState::SynRecv, TcpState::Established, TcpState::FinWait1, TcpState::Closing, TcpState::LastAck] {
        let (mut c, _) = conn_in(state);
        let mut out = Vec::new();
        if state == TcpState::Established {
            c.send(ms(5), tcpsim::tcp::conn::SendData::Derived(10), &mut out).unwrap();
        }
        c.take_transitions();
        let mut now = SimTime::ZERO;
        let mut firings = 0;
        while c.state() == state {
            now = c.deadline(TimerKind::Retransmit).unwrap_or_else(|| panic!("{state}: retransmit timer armed"));
            c.on_timer(now, TimerKind::Retransmit, &mut out);
            firings += 1;
            assert!(firings < 100);
        }
        assert!(out.iter().all(|s: &Segment| !s.flags.contains(Flags::RST)), "{state}: no RST on timeout");
        assert_eq!(c.take_transitions(), vec![(state, TcpState::Close, Cause::Timeout)], "{state}");
        assert_eq!(c.take_error(), Some(Errno::ETIMEDOUT), "{state}");
        assert!(now > ms(0));
    }
}

#[test]
fn data_after_shut_rdwr_aborts_with_rst() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.shutdown(ms(1), ShutHow::SHUT_RDWR, &mut out).unwrap();
    c.take_transitions();
    out.clear();
    c.on_segment(ms(2), &peer_seg(S1, C1, Flags::ACK, 65535, Payload::Bytes(b"x".to_vec().into())), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq), (Flags::RST, C1));
    assert_eq!(c.take_transitions(), vec![(TcpState::FinWait1, TcpState::Close, Cause::Abort)]);
    assert_eq!(c.take_error(), Some(Errno::ECONNRESET));
}
