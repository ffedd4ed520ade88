//! Sending through `fq`: the departure times a paced socket stamps (tcp_output.c
//! `__tcp_transmit_skb`, `tcp_update_skb_after_send`), TCP Small Queues
//! (`tcp_small_queue_check`, `tcp_wfree` → `tcp_tsq_handler`) and the qdisc's release of
//! each flow at those times (sch_fq.c `fq_enqueue`, `fq_dequeue`). Every expected time is
//! worked out here from the kernel's formulas, not read from the model.

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::host::qdisc::{Fq, HeldSkb};
use tcpsim::scenario::types::{OptValue, SockOpt};
use tcpsim::tcp::conn::pacing::Departure;
use tcpsim::tcp::conn::{Conn, SendData, SockOpts, SKB_OVERHEAD};
use tcpsim::tcp::segment::{Flags, Payload, Segment};
use std::rc::Rc;
use tcpsim::tcp::profile::KernelProfile;
use tcpsim::time::{Dur, SimTime};

const MSS: u64 = 1460;
/// `tcp_min_tso_segs` 2 at these pacing rates (`tcp_tso_autosize`: rate >> 10 is below
/// one MSS), so every skb holds two segments.
const SKB: u64 = 2 * MSS;
/// `sk_wmem_alloc`'s charge for one skb held in the qdisc.
const TRUESIZE: u32 = SKB_OVERHEAD + SKB as u32;

/// `tcp_update_pacing_rate` in slow start (cwnd below ssthresh/2, `tcp_pacing_ss_ratio`
/// 200): `mss * (USEC_PER_SEC / 100 << 3) * 200 * cwnd / srtt_us` (srtt ×8).
fn ss_rate(cwnd: u64, srtt_us8: u64) -> u64 {
    MSS * ((1_000_000 / 100) << 3) * 200 * cwnd / srtt_us8
}

/// `len_ns = skb->len * NSEC_PER_SEC / rate`.
fn len_ns(rate: u64) -> u64 {
    SKB * 1_000_000_000 / rate
}

/// A client paced by fq (`SK_PACING_FQ`), connected at 0 with a SYN-ACK at 100 ms (the SYN's
/// RTT, 100 ms, is the first sample: srtt_us = 800 000 ×8), SO_SNDBUF room for the test,
/// over a device that takes GSO packets (packetdrill's tun: `gso_max_segs` 65535).
fn paced_client() -> (Conn, Vec<Segment>) {
    let mut o = SockOpts::default();
    o.set(SockOpt::SO_SNDBUF, &OptValue::Int(200_000)).unwrap();
    let mut out = Vec::new();
    let profile = Rc::new(KernelProfile { gso_max_segs: 65535, ..KernelProfile::linux_6_18() });
    let mut c = Conn::connect(SimTime::ZERO, profile, o, client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    c.set_qdisc_fq(true);
    let mut synack = peer_seg(SERVER_ISS, CLIENT_ISS + 1, Flags::SYN | Flags::ACK, 65535, Payload::Empty);
    synack.options.mss = Some(1460);
    c.on_segment(ms(100), &synack, &mut out);
    c.take_departures();
    (c, Vec::new())
}

fn ack(c: &mut Conn, at: SimTime, acked: u64, out: &mut Vec<Segment>) {
    let seg = peer_seg(SERVER_ISS + 1, CLIENT_ISS + 1 + acked as u32, Flags::ACK, 65535, Payload::Empty);
    c.on_segment(at, &seg, out);
}

fn ns(t: SimTime, plus: u64) -> SimTime {
    t + Dur::from_nanos(plus)
}

#[test]
fn paced_skbs_leave_at_their_stamps_and_tsq_holds_two_in_the_qdisc() {
    let (mut c, mut out) = paced_client();
    c.send(ms(100), SendData::Derived(60_000), &mut out).unwrap();
    // cwnd 10: five 2-segment skbs, all stamped now; only the fifth brings data_segs_out to
    // 10 and moves tcp_wstamp_ns on, and each leaves at once (nothing held before it).
    let d = c.take_departures();
    assert_eq!(out.len(), 10);
    assert_eq!(d, vec![Departure { segs: 2, tstamp: ms(100), truesize: 0 }; 5]);
    out.clear();

    // 200 ms: the ACK of the first skb (RTT 100 ms, srtt stays 100 ms), cwnd 12, rate
    // 2 × 12 × 1460 / 0.1 s. Quota 2 → two skbs. The first is due now: credit = now −
    // prior_wstamp (≥ 90 ms) takes half its length; the second is stamped then, held.
    ack(&mut c, ms(200), SKB, &mut out);
    let rate = ss_rate(12, 800_000);
    assert_eq!(rate, 350_400);
    let t7 = ns(ms(200), len_ns(rate) - len_ns(rate) / 2);
    let d = c.take_departures();
    assert_eq!(d, vec![Departure { segs: 2, tstamp: ms(200), truesize: 0 }, Departure { segs: 2, tstamp: t7, truesize: TRUESIZE }]);
    let wstamp = ns(t7, len_ns(rate));
    out.clear();

    // 201 ms: the ACK of the second skb (RTT 101 ms: srtt_us8 = 800 000 − 100 000 + 101 000),
    // cwnd 14, 10 in flight: room for two skbs. The first fits (sk_wmem_alloc 1 + one skb ≤
    // 2 × truesize); the second finds two skbs held and is throttled (TSQ_THROTTLED).
    ack(&mut c, ms(201), 2 * SKB, &mut out);
    let rate = ss_rate(14, 801_000);
    assert!(rate >> 10 < 2 * u64::from(TRUESIZE), "the limit is two skbs");
    assert_eq!(c.take_departures(), vec![Departure { segs: 2, tstamp: wstamp, truesize: TRUESIZE }]);
    let wstamp = ns(wstamp, len_ns(rate));
    out.clear();

    // The qdisc lets the first held skb go at its stamp (tcp_wfree → tcp_tsq_handler): the
    // throttled skb goes out, stamped where the last one left tcp_wstamp_ns.
    c.tsq_release(t7, TRUESIZE, &mut out);
    assert_eq!(c.take_departures(), vec![Departure { segs: 2, tstamp: wstamp, truesize: TRUESIZE }]);
    assert_eq!(out.len(), 2);
    // Not throttled again (cwnd is full): a further release sends nothing.
    out.clear();
    c.tsq_release(wstamp, TRUESIZE, &mut out);
    assert!(out.is_empty());
}

#[test]
fn an_unpaced_socket_stamps_nothing() {
    let (mut c, _) = established_plain(SockOpts::default(), ms(0));
    let mut out = Vec::new();
    c.send(ms(1), SendData::Derived(30_000), &mut out).unwrap();
    assert!(!out.is_empty());
    assert!(c.take_departures().is_empty());
}

fn held(tstamp: SimTime, seq: u32) -> HeldSkb {
    let seg = peer_seg(seq, 1, Flags::ACK, 100, Payload::Empty);
    HeldSkb { tstamp, segs: vec![seg], truesize: TRUESIZE }
}

#[test]
fn fq_releases_a_flow_at_its_stamps_in_order() {
    let mut fq = Fq::default();
    // Due now with nothing held: out within the enqueue (fq_enqueue, then fq_dequeue in the
    // same dev_queue_xmit).
    assert!(fq.enqueue(1, ms(10), held(ms(10), 1)).is_ok());
    // Stamped later: held, the watchdog queued for its stamp.
    assert_eq!(fq.enqueue(1, ms(10), held(ms(14), 2)).err(), Some(Some(ms(14))));
    // The same stamp (a socket's stamps never decrease): held too; the watchdog stays.
    assert_eq!(fq.enqueue(1, ms(11), held(ms(14), 3)).err(), Some(None));
    assert_eq!(fq.enqueue(1, ms(11), held(ms(20), 4)).err(), Some(None));
    // Another socket's flow is independent.
    assert!(fq.enqueue(2, ms(11), held(ms(11), 5)).is_ok());
    // At 14 ms the head and what is due behind it leave; the watchdog moves to 20 ms.
    let (due, next) = fq.dequeue(1, ms(14));
    assert_eq!(due.iter().map(|s| s.segs[0].seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(next, Some(ms(20)));
    let (due, next) = fq.dequeue(1, ms(20));
    assert_eq!(due.iter().map(|s| s.segs[0].seq).collect::<Vec<_>>(), vec![4]);
    assert_eq!(next, None);
    // The flow is empty: a stale watchdog pop releases nothing.
    assert!(fq.dequeue(1, ms(20)).0.is_empty());
}
