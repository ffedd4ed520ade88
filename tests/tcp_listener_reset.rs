//! `reset_for`: the RST for a segment no socket wants (RFC 9293 §3.10.7.1,
//! tcp_ipv4.c `tcp_v4_send_reset`).

use tcpsim::tcp::reset::reset_for;
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};

fn seg(flags: Flags, seq: u32, ack: u32, len: u32) -> Segment {
    Segment {
        src: "10.0.0.2:40000".parse().unwrap(),
        dst: "10.0.0.1:80".parse().unwrap(),
        seq,
        ack,
        flags,
        ecn: Ecn::NotEct,
        window: 1000,
        options: TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some((5, 6)),
            ..TcpOptions::default()
        },
        payload: if len == 0 { Payload::Empty } else { Payload::Derived { stream: 1, offset: 0, len } },
    }
}

#[test]
fn an_rst_is_never_answered() {
    assert_eq!(reset_for(&seg(Flags::RST, 1, 0, 0)), None);
    assert_eq!(reset_for(&seg(Flags::RST | Flags::ACK, 1, 2, 0)), None);
}

#[test]
fn a_segment_with_ack_gets_seq_equal_to_its_ack() {
    let s = seg(Flags::ACK | Flags::PSH, 1000, 777, 6);
    let r = reset_for(&s).unwrap();
    assert_eq!((r.src, r.dst), (s.dst, s.src));
    assert_eq!((r.seq, r.ack, r.flags), (777, 0, Flags::RST));
    assert_eq!(r.window, 0);
    assert!(r.options.is_empty());
    assert!(r.payload.is_empty());
}

#[test]
fn a_syn_gets_rst_ack_acknowledging_the_syn() {
    let r = reset_for(&seg(Flags::SYN, 1000, 0, 0)).unwrap();
    assert_eq!((r.seq, r.ack, r.flags), (0, 1001, Flags::RST | Flags::ACK));
    assert_eq!(r.window, 0);
    assert!(r.options.is_empty(), "no options even though the SYN had some");
}

#[test]
fn seg_len_counts_data_syn_and_fin_and_wraps() {
    let r = reset_for(&seg(Flags::FIN, 100, 0, 10)).unwrap();
    assert_eq!((r.seq, r.ack, r.flags), (0, 111, Flags::RST | Flags::ACK));
    let r = reset_for(&seg(Flags::NONE, 100, 0, 5)).unwrap();
    assert_eq!(r.ack, 105);
    let r = reset_for(&seg(Flags::SYN | Flags::FIN, u32::MAX, 0, 0)).unwrap();
    assert_eq!(r.ack, 1);
}
