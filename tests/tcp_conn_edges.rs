//! Every state's answer to an acceptable RST and to a dead peer: the edges into CLOSE with
//! their causes and the errno each leaves (tcp_reset, tcp_write_err).

mod scenario_text;
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
            let c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
            (c, S1)
        }
        TcpState::SynRecv => {
            let mut c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
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

/// Every transition a drive takes, from the connection's birth on.
fn transitions_of(c: &mut Conn, into: &mut Vec<(TcpState, TcpState, Cause)>) {
    into.extend(c.take_transitions());
}

/// Fires `kind` at its deadline until the connection leaves `state` (at most 200 firings).
fn fire_until_leaves(c: &mut Conn, kind: TimerKind, state: TcpState) {
    let mut out = Vec::new();
    for _ in 0..200 {
        if c.state() != state {
            return;
        }
        let at = c.deadline(kind).unwrap_or_else(|| panic!("{state}: {kind:?} timer armed"));
        c.on_timer(at, kind, &mut out);
    }
    panic!("{state}: still there after 200 firings of {kind:?}");
}

/// The stimuli that move a connection out of a state, one drive each.
#[derive(Copy, Clone, Debug)]
enum Stimulus {
    /// close() with SO_LINGER {1, 0}.
    Abort,
    /// close() without linger.
    Close,
    /// The peer's next segment: the ACK of our SYN or FIN, or the FIN we wait for.
    Progress,
    /// A dead peer: keepalive (FIN_WAIT2) or retransmission of 10 bytes until timeout.
    DeadPeer,
    /// close() in FIN_WAIT2 (orphan timeout), or TIME_WAIT running out.
    Expire,
    /// A new SYN above `rcv_nxt` in TIME_WAIT (`TCP_TW_SYN`), as the host hands it over.
    NewSyn,
}

fn drive(state: TcpState, stimulus: Stimulus) -> Vec<(TcpState, TcpState, Cause)> {
    use tcpsim::scenario::types::{OptValue, SockOpt};
    let (mut c, next) = conn_in(state);
    let mut seen = Vec::new();
    transitions_of(&mut c, &mut seen);
    let mut out = Vec::new();
    let t = ms(10);
    match stimulus {
        Stimulus::Abort => {
            c.set_opt(t, SockOpt::SO_LINGER, &OptValue::Pair([1, 0]), &mut out).unwrap();
            c.close(t, &mut out);
        }
        Stimulus::Close => c.close(t, &mut out),
        Stimulus::Progress => {
            let seg = match state {
                // The ACK that completes a simultaneous open.
                TcpState::SynRecv => peer_seg(next, C1, Flags::ACK, 65535, Payload::Empty),
                // The ACK of our FIN (our FIN took C1).
                TcpState::LastAck | TcpState::Closing => peer_seg(next, C1 + 1, Flags::ACK, 65535, Payload::Empty),
                _ => panic!("no progress recipe for {state}"),
            };
            c.on_segment(t, &seg, &mut out);
        }
        Stimulus::DeadPeer if state == TcpState::FinWait2 => {
            for (opt, v) in [(SockOpt::SO_KEEPALIVE, 1), (SockOpt::TCP_KEEPIDLE, 1), (SockOpt::TCP_KEEPINTVL, 1), (SockOpt::TCP_KEEPCNT, 1)] {
                c.set_opt(t, opt, &OptValue::Int(v), &mut out).unwrap();
            }
            fire_until_leaves(&mut c, TimerKind::Keepalive, state);
        }
        Stimulus::DeadPeer => {
            c.send(t, tcpsim::tcp::conn::SendData::Derived(10), &mut out).unwrap();
            fire_until_leaves(&mut c, TimerKind::Retransmit, state);
        }
        Stimulus::NewSyn => {
            let syn = peer_seg(next.wrapping_add(1_000), 0, Flags::SYN, 65535, Payload::Empty);
            assert!(c.timewait_syn_isn(&syn).is_some(), "a SYN above rcv_nxt reincarnates");
            c.timewait_kill();
        }
        Stimulus::Expire => {
            if state == TcpState::FinWait2 {
                c.close(t, &mut out);
            }
            fire_until_leaves(&mut c, TimerKind::Keepalive, state);
        }
    }
    transitions_of(&mut c, &mut seen);
    seen
}

/// The listener's own edges need the host (listen, close and shutdown of a listener, a
/// child's birth): one scripted run through the whole stack.
fn listener_edges() -> tcpsim::tcp::graph::Coverage {
    let steps = r#"
[[script]]
op = "sleep"
dur = "10ms"
[[script]]
op = "close"
sock = "l"
[[script]]
op = "socket"
host = "server"
sock = "l2"
[[script]]
op = "listen"
sock = "l2"
backlog = 1
[[script]]
op = "shutdown"
sock = "l2"
how = "SHUT_RD"
"#;
    let text = scenario_text::client_server("listener-edges", "2s", false, steps);
    let sc = tcpsim::scenario::parse(&text, "listener-edges.toml").expect("valid scenario");
    let mut world = tcpsim::world::World::build(&sc, 1, tcpsim::trace::Trace::off()).unwrap();
    world.run(&sc);
    let mut cov = tcpsim::tcp::graph::Coverage::new();
    for h in 0..world.sim().host_count() {
        let host = world.sim().node(h);
        assert!(host.illegal_transitions().is_empty(), "{:?}", host.illegal_transitions());
        cov.merge(host.coverage());
    }
    cov
}

#[test]
fn per_state_drives_take_every_edge_of_the_state_graph() {
    use Stimulus::*;
    use TcpState as S;
    let drives: &[(TcpState, Stimulus)] = &[
        (S::SynSent, Abort),
        (S::SynSent, Close),
        (S::SynRecv, Progress),
        (S::SynRecv, Close),
        (S::SynRecv, Abort),
        (S::Established, Abort),
        (S::Established, Close),
        (S::FinWait1, Abort),
        (S::FinWait2, Abort),
        (S::FinWait2, DeadPeer),
        (S::FinWait2, Expire),
        (S::CloseWait, Abort),
        (S::CloseWait, Close),
        (S::CloseWait, DeadPeer),
        (S::Closing, Progress),
        (S::Closing, Abort),
        (S::LastAck, Progress),
        (S::LastAck, Abort),
        (S::TimeWait, Expire),
        (S::TimeWait, NewSyn),
    ];
    let graph = tcpsim::tcp::graph::tcp_graph();
    let mut cov = listener_edges();
    let mut record = |trs: Vec<(TcpState, TcpState, Cause)>, what: &str| {
        for (from, to, cause) in trs {
            assert!(cov.record(from, to, cause).is_ok(), "{what}: illegal {from} -> {to} ({})", cause.name());
        }
    };
    for &(state, stimulus) in drives {
        let trs = drive(state, stimulus);
        assert!(
            trs.iter().any(|(from, _, _)| *from == state),
            "{state} {stimulus:?}: the drive must leave the state, took {trs:?}"
        );
        record(trs, &format!("{state} {stimulus:?}"));
    }
    // The RST and dead-peer drives of the tests above, for every state.
    for state in STATES {
        let (mut c, next) = conn_in(state);
        let mut trs = c.take_transitions();
        let rst = if state == S::SynSent {
            peer_seg(0, C1, Flags::RST | Flags::ACK, 0, Payload::Empty)
        } else {
            peer_seg(next, 0, Flags::RST, 0, Payload::Empty)
        };
        c.on_segment(ms(10), &rst, &mut Vec::new());
        trs.extend(c.take_transitions());
        record(trs, &format!("{state} rst"));
    }
    for state in [S::SynSent, S::SynRecv, S::Established, S::FinWait1, S::Closing, S::LastAck] {
        record(drive_timeout(state), &format!("{state} timeout"));
    }
    let missing: Vec<String> = cov.missing().map(|e| format!("{} -> {} ({})", e.from, e.to, e.cause.name())).collect();
    assert!(missing.is_empty(), "edges no drive takes: {missing:#?}");
    assert_eq!(cov.covered().count(), graph.edges().count());
}

/// A dead peer in a state that retransmits: the timeout edge.
fn drive_timeout(state: TcpState) -> Vec<(TcpState, TcpState, Cause)> {
    let (mut c, _) = conn_in(state);
    let mut trs = c.take_transitions();
    if state == TcpState::Established {
        c.send(ms(5), tcpsim::tcp::conn::SendData::Derived(10), &mut Vec::new()).unwrap();
    }
    fire_until_leaves(&mut c, TimerKind::Retransmit, state);
    trs.extend(c.take_transitions());
    trs
}
