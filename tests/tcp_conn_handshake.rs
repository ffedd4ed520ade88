//! Handshake and data transfer, per transition: feed segments, expect exact segments back.

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::errno::Errno;
use tcpsim::tcp::conn::{Conn, SendData, SockOpts};
use tcpsim::tcp::segment::{derived_byte, Flags, Payload};
use tcpsim::tcp::state::{Cause, TcpState};
use tcpsim::time::{Dur, SimTime};

#[test]
fn syn_carries_linux_options_and_window() {
    let mut out = Vec::new();
    let c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    assert_eq!(out.len(), 1);
    let syn = &out[0];
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(syn.seq, CLIENT_ISS);
    assert_eq!(syn.window, 64240);
    assert_eq!(syn.options.mss, Some(1460));
    assert!(syn.options.sack_permitted);
    assert_eq!(syn.options.wscale, Some(10), "ilog2(32 MB tcp_rmem[2]) - 15");
    let (tsval, tsecr) = syn.options.timestamps.unwrap();
    assert_eq!(tsecr, 0);
    assert_eq!(tsval, tcpsim::tcp::conn::ts_offset(client_addr(), server_addr()));
    assert_eq!(c.state(), TcpState::SynSent);
    // The SYN timer on the default jiffies profile: TCP_TIMEOUT_INIT (1 s = 250 jiffies at
    // HZ = 250) armed at jiffy 0 is on wheel level 1 (8-jiffy buckets): ((250 >> 3) + 1) << 3
    // = jiffy 256, 1024 ms.
    assert_eq!(c.deadline(tcpsim::tcp::conn::TimerKind::Retransmit), Some(ms(1024)));
    // A connect in progress: not readable, not writable (tcp_poll mask 0), EAGAIN both ways.
    let v = c.view();
    assert_eq!(v.state, Some(TcpState::SynSent));
}

#[test]
fn synack_establishes_and_is_acked_at_once() {
    let (mut c, out) = established_plain(SockOpts::default(), ms(0));
    assert_eq!(c.state(), TcpState::Established);
    let ack = out.last().unwrap();
    assert_eq!(ack.flags, Flags::ACK);
    assert_eq!((ack.seq, ack.ack), (CLIENT_ISS + 1, SERVER_ISS + 1));
    // The peer sent no window scale: ours is off too, and the window is unscaled.
    assert_eq!(ack.window, 64240);
    assert!(ack.options.timestamps.is_none());
    assert_eq!(
        c.take_transitions(),
        vec![(TcpState::Close, TcpState::SynSent, Cause::Connect), (TcpState::SynSent, TcpState::Established, Cause::RcvSynAck)]
    );
    assert_eq!(c.info().snd_mss, 1460);
    assert_eq!(c.deadline(tcpsim::tcp::conn::TimerKind::Retransmit), None);
}

#[test]
fn rst_to_syn_is_connection_refused() {
    let mut out = Vec::new();
    let mut c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    // An RST without an acceptable ACK is ignored in SYN_SENT.
    c.on_segment(ms(1), &peer_seg(0, 0, Flags::RST, 0, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::SynSent);
    c.on_segment(ms(1), &peer_seg(0, CLIENT_ISS + 1, Flags::RST | Flags::ACK, 0, Payload::Empty), &mut out);
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(c.view().err, Some(Errno::ECONNREFUSED));
    assert_eq!(c.recv(ms(2), 10, true, &mut out), Err(Errno::ECONNREFUSED));
    assert_eq!(c.recv(ms(2), 10, false, &mut out), Ok(vec![]));
    assert_eq!(c.send(ms(2), SendData::Derived(1), &mut out), Err(Errno::EPIPE));
}

#[test]
fn unacceptable_ack_in_syn_sent_draws_rst_at_its_ack() {
    let mut out = Vec::new();
    let mut c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    out.clear();
    c.on_segment(ms(1), &peer_seg(77, 12345, Flags::SYN | Flags::ACK, 1000, Payload::Empty), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, Flags::RST);
    assert_eq!(out[0].seq, 12345);
    assert_eq!(c.state(), TcpState::SynSent);
}

#[test]
fn simultaneous_open_goes_through_syn_recv() {
    let mut oa = Vec::new();
    let mut ob = Vec::new();
    let p = profile();
    let mut a = Conn::connect(ms(0), p.clone(), SockOpts::default(), client_addr(), server_addr(), 100, VETH_ADVMSS, &mut oa);
    let mut b = Conn::connect(ms(0), p, SockOpts::default(), server_addr(), client_addr(), 900, VETH_ADVMSS, &mut ob);
    let (syn_a, syn_b) = (oa.pop().unwrap(), ob.pop().unwrap());
    a.on_segment(ms(1), &syn_b, &mut oa);
    b.on_segment(ms(1), &syn_a, &mut ob);
    assert_eq!((a.state(), b.state()), (TcpState::SynRecv, TcpState::SynRecv));
    let (sa, sb) = (oa.pop().unwrap(), ob.pop().unwrap());
    assert_eq!(sa.flags, Flags::SYN | Flags::ACK);
    assert_eq!((sa.seq, sa.ack), (100, 901));
    a.on_segment(ms(2), &sb, &mut oa);
    b.on_segment(ms(2), &sa, &mut ob);
    assert_eq!((a.state(), b.state()), (TcpState::Established, TcpState::Established));
    assert_eq!(
        a.take_transitions(),
        vec![
            (TcpState::Close, TcpState::SynSent, Cause::Connect),
            (TcpState::SynSent, TcpState::SynRecv, Cause::RcvSyn),
            (TcpState::SynRecv, TcpState::Established, Cause::RcvAckOfSyn)
        ]
    );
}

#[test]
fn child_records_both_listener_transitions() {
    let mut sim = Sim::new(1, Dur::from_millis(1));
    sim.connect();
    sim.run_until(ms(10));
    let s = sim.server();
    assert_eq!(s.state(), TcpState::Established);
    assert_eq!(
        s.take_transitions(),
        vec![(TcpState::Listen, TcpState::SynRecv, Cause::RcvSyn), (TcpState::SynRecv, TcpState::Established, Cause::RcvAckOfSyn)]
    );
    assert_eq!(sim.client().info().rcv_wscale, 10);
    assert_eq!(sim.server().info().snd_mss, 1448, "1460 less 12 bytes of timestamps");
}

#[test]
fn data_both_ways_is_delivered_exactly() {
    let mut sim = Sim::new(2, Dur::from_millis(5));
    sim.connect();
    sim.run_until(ms(20));
    let now = sim.now;
    let mut out = Vec::new();
    assert_eq!(sim.client().send(now, SendData::Derived(5000), &mut out), Ok(5000));
    assert_eq!(out.len(), 4, "5000 bytes in 1448-byte segments, all within IW10");
    assert!(out.iter().take(3).all(|s| s.payload.len() == 1448));
    assert_eq!(out[3].payload.len(), 5000 - 3 * 1448);
    assert!(out[3].flags.contains(Flags::PSH));
    sim.transmit(0, out);
    let mut out = Vec::new();
    assert_eq!(sim.server().send(now, SendData::Bytes(b"hello".to_vec()), &mut out), Ok(5));
    sim.transmit(1, out);
    sim.run_until(ms(400));
    let now = sim.now;
    let mut out = Vec::new();
    let got = sim.server().recv(now, 10_000, false, &mut out).unwrap();
    let stream = sim.client().tx_stream();
    assert_eq!(got, (0..5000).map(|i| derived_byte(stream, i)).collect::<Vec<_>>());
    assert_eq!(sim.client().recv(now, 100, false, &mut out), Ok(b"hello".to_vec()));
    assert_eq!(sim.client().recv(now, 100, false, &mut out), Err(Errno::EAGAIN));
    assert_eq!(sim.client().outq(), 0);
    assert!(sim.client().info().rtt_us >= 10_000);
}

#[test]
fn quickacks_then_delayed_acks() {
    // The receiver ACKs every segment at first (quick-ACK mode), then every second full one.
    let mut sim = Sim::new(3, Dur::from_millis(10));
    sim.connect();
    sim.run_until(ms(30));
    let t0 = sim.now;
    let mut out = Vec::new();
    sim.client().send(t0, SendData::Derived(1448), &mut out).unwrap();
    sim.transmit(0, out);
    sim.run_until(t0 + Dur::from_millis(15));
    let acks = sim.sent_by(1, |s| s.payload.is_empty() && s.flags == Flags::ACK);
    assert_eq!(acks.len(), 1, "first data segment ACKed at once");
    assert_eq!(acks[0].at, t0 + Dur::from_millis(10));
}

#[test]
fn send_before_connect_completes_is_eagain_and_fresh_close_is_epipe() {
    let mut out = Vec::new();
    let mut c = Conn::connect(ms(0), profile(), SockOpts::default(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    assert_eq!(c.send(ms(1), SendData::Derived(10), &mut out), Err(Errno::EAGAIN));
    assert_eq!(c.recv(ms(1), 10, false, &mut out), Err(Errno::EAGAIN));
    let _ = SimTime::ZERO;
}

#[test]
fn after_the_quick_acks_a_lone_segment_is_acked_after_40_ms() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    let mut seq = SERVER_ISS + 1;
    let mut t = 100;
    for _ in 0..16 {
        out.clear();
        c.on_segment(ms(t), &peer_seg(seq, CLIENT_ISS + 1, Flags::ACK, 65535, Payload::Derived { stream: 1, offset: 0, len: 100 }), &mut out);
        assert_eq!(out.len(), 1, "quick ACK at {t} ms");
        seq += 100;
        t += 100;
    }
    out.clear();
    c.on_segment(ms(t), &peer_seg(seq, CLIENT_ISS + 1, Flags::ACK, 65535, Payload::Derived { stream: 1, offset: 0, len: 100 }), &mut out);
    assert!(out.is_empty());
    // ato = TCP_ATO_MIN (10 jiffies, 40 ms at HZ = 250) armed at 1700 ms (jiffy 425): expires
    // 435, wheel level 0: the bucket one jiffy past it, 436, at 1744 ms.
    assert_eq!(t, 1700);
    assert_eq!(c.deadline(tcpsim::tcp::conn::TimerKind::DelAck), Some(ms(1744)));
    c.on_timer(ms(1744), tcpsim::tcp::conn::TimerKind::DelAck, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, seq + 100);
}
