//! MSG_EOR: a write that ends a record keeps its last skb to itself (`TCP_SKB_CB(skb)->eor`,
//! tcp.c `tcp_sendmsg_locked`; `tcp_skb_can_collapse_to`), so small writes that Nagle or a
//! cork hold back leave as one segment each instead of one coalesced segment.

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::scenario::types::{OptValue, SockOpt};
use tcpsim::tcp::conn::{Conn, SendData, SockOpts};
use tcpsim::tcp::segment::{Flags, Payload, Segment};
use tcpsim::pcap::{read_pcap_bytes, PcapWriter};
use tcpsim::scenario::parse;
use tcpsim::trace::Trace;
use tcpsim::world::World;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

const C1: u32 = CLIENT_ISS + 1;
const S1: u32 = SERVER_ISS + 1;

/// The data segments in `out`: (sequence offset from the first byte, length, PSH).
fn data(out: &[Segment]) -> Vec<(u32, u32, bool)> {
    out.iter()
        .filter(|s| !s.payload.is_empty())
        .map(|s| (s.seq - C1, s.payload.len(), s.flags.contains(Flags::PSH)))
        .collect()
}

fn ack(c: &mut Conn, at: u64, acked: u32, out: &mut Vec<Segment>) {
    out.clear();
    c.on_segment(ms(at), &peer_seg(S1, C1 + acked, Flags::ACK, 65535, Payload::Empty), out);
}

/// Nagle holds two 100-byte writes behind an unacknowledged small segment. Without EOR they
/// share the tail skb and leave together once it is acknowledged. With EOR the first is an
/// skb of its own and, once the second queues behind it, no longer the tail: `tcp_write_xmit`
/// tests it with `TCP_NAGLE_PUSH` (`tcp_nagle_test(…, tcp_skb_is_last(sk, skb) ? nonagle :
/// TCP_NAGLE_PUSH)`) and it leaves at once; Minshall's rule then holds the tail until that
/// small segment is acknowledged.
#[test]
fn writes_held_by_nagle_coalesce_unless_each_ends_a_record() {
    for eor in [false, true] {
        let (mut c, _) = established_plain(SockOpts::default(), ms(0));
        let mut out = Vec::new();
        c.sendmsg(ms(1), SendData::Derived(100), false, eor, &mut out).unwrap();
        assert_eq!(data(&out), [(0, 100, true)], "eor={eor}: nothing in flight, it goes");
        out.clear();
        c.sendmsg(ms(2), SendData::Derived(100), false, eor, &mut out).unwrap();
        assert_eq!(data(&out), [], "eor={eor}: held by Nagle");
        c.sendmsg(ms(2), SendData::Derived(100), false, eor, &mut out).unwrap();
        if eor {
            assert_eq!(data(&out), [(100, 100, true)], "no longer the tail");
            ack(&mut c, 3, 100, &mut out);
            assert_eq!(data(&out), [], "Minshall: a small segment is still unacknowledged");
            ack(&mut c, 4, 200, &mut out);
            assert_eq!(data(&out), [(200, 100, true)]);
        } else {
            assert_eq!(data(&out), [], "held by Nagle");
            ack(&mut c, 3, 100, &mut out);
            assert_eq!(data(&out), [(100, 200, true)], "one segment");
        }
    }
}

/// Under TCP_CORK (with TCP_NODELAY, so that only the cork holds data) two 100-byte writes
/// wait and leave as one segment when the cork is pulled. With EOR they are two skbs: the
/// first leaves once it is no longer the tail (`TCP_NAGLE_PUSH`, as above), the second when
/// the cork is pulled, each marked PSH by its own write's `tcp_push`.
#[test]
fn corked_writes_coalesce_unless_each_ends_a_record() {
    for eor in [false, true] {
        let (mut c, _) = established_plain(SockOpts::default(), ms(0));
        let mut out = Vec::new();
        c.set_opt(ms(1), SockOpt::TCP_NODELAY, &OptValue::Int(1), &mut out).unwrap();
        c.set_opt(ms(1), SockOpt::TCP_CORK, &OptValue::Int(1), &mut out).unwrap();
        c.sendmsg(ms(1), SendData::Derived(100), false, eor, &mut out).unwrap();
        assert_eq!(data(&out), [], "eor={eor}: corked");
        c.sendmsg(ms(1), SendData::Derived(100), false, eor, &mut out).unwrap();
        c.set_opt(ms(2), SockOpt::TCP_CORK, &OptValue::Int(0), &mut out).unwrap();
        let want: &[(u32, u32, bool)] = if eor { &[(0, 100, true), (100, 100, true)] } else { &[(0, 200, true)] };
        assert_eq!(data(&out), want, "eor={eor}");
    }
}

/// A write after an EOR write starts a new skb, even one without EOR; a MSG_MORE write with
/// no EOR is appended to as before.
#[test]
fn a_write_after_a_record_starts_a_new_segment() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.set_opt(ms(1), SockOpt::TCP_NODELAY, &OptValue::Int(1), &mut out).unwrap();
    c.set_opt(ms(1), SockOpt::TCP_CORK, &OptValue::Int(1), &mut out).unwrap();
    c.sendmsg(ms(1), SendData::Derived(300), false, true, &mut out).unwrap();
    c.sendmsg(ms(1), SendData::Derived(200), true, false, &mut out).unwrap();
    c.sendmsg(ms(1), SendData::Derived(200), false, false, &mut out).unwrap();
    c.set_opt(ms(2), SockOpt::TCP_CORK, &OptValue::Int(0), &mut out).unwrap();
    assert_eq!(data(&out), [(0, 300, true), (300, 400, true)]);
}

/// What a [`World`] run puts on the wire, kept in memory.
#[derive(Clone, Default)]
struct Wire(Rc<RefCell<Vec<u8>>>);

impl Write for Wire {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A scenario's client writes 100 bytes twice under TCP_CORK (and TCP_NODELAY) with `flags`,
/// then pulls the cork: the lengths of the data segments it sends.
fn scenario_segments(flags: &str) -> Vec<u32> {
    let send = format!("[[script]]\nop = \"send\"\nsock = \"c\"\nlen = 100\nflags = {flags}\n");
    let opt = |name: &str, v: u8| format!("[[script]]\nop = \"setsockopt\"\nsock = \"c\"\nopt = \"{name}\"\nvalue = {v}\n");
    let text = format!(
        "name = \"eor\"\nduration = \"1s\"\n\
         [[host]]\nname = \"client\"\naddr = \"10.0.0.1\"\n[[host]]\nname = \"server\"\naddr = \"10.0.0.2\"\n\
         [[link]]\nname = \"wire\"\na = \"client\"\nb = \"server\"\ndelay = \"5ms\"\n\
         [[script]]\nop = \"socket\"\nhost = \"server\"\nsock = \"l\"\n\
         [[script]]\nop = \"bind\"\nsock = \"l\"\nport = 8080\n\
         [[script]]\nop = \"listen\"\nsock = \"l\"\nbacklog = 4\n\
         [[script]]\nop = \"socket\"\nhost = \"client\"\nsock = \"c\"\n\
         [[script]]\nop = \"connect\"\nsock = \"c\"\nto = \"server:8080\"\n\
         [[script]]\nop = \"accept\"\nsock = \"l\"\nnew = \"s\"\n\
         {}{}{send}{send}{}",
        opt("TCP_NODELAY", 1),
        opt("TCP_CORK", 1),
        opt("TCP_CORK", 0)
    );
    let sc = parse(&text, "eor.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut world = World::build(&sc, sc.seed, Trace::off()).unwrap();
    let wire = Wire::default();
    world.set_pcap(PcapWriter::new(wire.clone()).unwrap());
    world.run(&sc);
    world.finish().unwrap();
    let capture = read_pcap_bytes(&wire.0.borrow(), "eor.pcap").unwrap();
    let client = std::net::Ipv4Addr::new(10, 0, 0, 1);
    capture.packets.iter().filter(|p| p.seg.src.ip() == client && !p.seg.payload.is_empty()).map(|p| p.seg.payload.len()).collect()
}

/// The scenario's `flags = ["MSG_EOR"]` reaches the connection through the syscall layer
/// (`SendFlags`), as packetdrill's `send(…, MSG_EOR)` does.
#[test]
fn a_scenario_send_with_msg_eor_keeps_its_record() {
    assert_eq!(scenario_segments("[]"), [200]);
    assert_eq!(scenario_segments("[\"MSG_EOR\"]"), [100, 100]);
}
