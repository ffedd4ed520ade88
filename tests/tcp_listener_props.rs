//! Listener invariants under arbitrary sequences of SYNs, ACKs, RSTs, accepts and timer
//! expiries (proptest).

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tcpsim::addr::SockAddr;
use std::rc::Rc;
use tcpsim::tcp::listener::{SynRoute, Listener, ListenerAction};
use tcpsim::tcp::profile::KernelProfile;
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::{Dur, SimTime};

#[derive(Clone, Debug)]
enum Op {
    Syn(u16),
    /// ACK of the last SYN-ACK the client saw, with this many data bytes.
    Ack(u16, u32),
    Rst(u16),
    Accept,
    /// Let this many milliseconds pass, firing due timers.
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u16..6).prop_map(Op::Syn),
        (0u16..6, 0u32..3).prop_map(|(c, n)| Op::Ack(c, n)),
        (0u16..6).prop_map(Op::Rst),
        Just(Op::Accept),
        (1u64..20_000).prop_map(Op::Wait),
    ]
}

fn client(n: u16) -> SockAddr {
    SockAddr::new("10.0.0.2".parse::<std::net::IpAddr>().unwrap(), 40000 + n)
}

fn seg(n: u16, seq: u32, ack: u32, flags: Flags, len: u32) -> Segment {
    Segment {
        src: client(n),
        dst: "10.0.0.1:80".parse().unwrap(),
        seq,
        ack,
        flags,
        ecn: Ecn::NotEct,
        window: 1000,
        options: TcpOptions { timestamps: Some((1, 0)), ..TcpOptions::default() },
        payload: if len == 0 { Payload::Empty } else { Payload::Derived { stream: 0, offset: 0, len } },
    }
}

proptest! {
    #[test]
    fn queues_stay_within_bounds(
        backlog in 0i32..4,
        syncookies in 0u32..3,
        abort_on_overflow: bool,
        strict: bool,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut p = KernelProfile::linux_6_18();
        p.tcp_syncookies = syncookies;
        p.tcp_abort_on_overflow = abort_on_overflow;
        p.reqsk_queue_full_strict = strict;
        p.tcp_synack_retries = 2;
        let mut l: Listener<u16> = Listener::new("10.0.0.1:80".parse().unwrap(), backlog, Rc::new(p));
        let cap = backlog as usize + 1;
        let mut now = SimTime::ZERO;
        let mut last_synack: BTreeMap<u16, Segment> = BTreeMap::new();
        let mut iss = 1u32;
        // The host's demux: segments of a client with a child go to the child, not here.
        let mut established: BTreeSet<u16> = BTreeSet::new();
        for op in ops {
            if let Op::Syn(c) | Op::Ack(c, _) | Op::Rst(c) = op {
                if established.contains(&c) {
                    continue;
                }
            }
            let mut out = Vec::new();
            let action = match op {
                Op::Syn(c) => {
                    iss = iss.wrapping_mul(69069).wrapping_add(1);
                    Some(l.on_segment(now, &seg(c, 1000 * u32::from(c), 0, Flags::SYN, 0), veth(iss), &mut out))
                }
                Op::Ack(c, n) => last_synack.get(&c).cloned().map(|sa| {
                    l.on_segment(now, &seg(c, sa.ack, sa.seq.wrapping_add(1), Flags::ACK, n), veth(0), &mut out)
                }),
                Op::Rst(c) => last_synack.get(&c).cloned().map(|sa| {
                    l.on_segment(now, &seg(c, sa.ack, 0, Flags::RST, 0), veth(0), &mut out)
                }),
                Op::Accept => {
                    l.accept();
                    None
                }
                Op::Wait(ms) => {
                    now += Dur::from_millis(ms);
                    l.on_timer(now, &mut out);
                    None
                }
            };
            if let Some(ListenerAction::Child(c)) = action {
                prop_assert!(last_synack.contains_key(&c.segment.src.port().wrapping_sub(40000)),
                    "a child for a client that never got a SYN-ACK");
                prop_assert!(established.insert(c.remote.port() - 40000), "two children for one client");
                l.enqueue(c.remote.port());
            }
            for s in &out {
                if s.flags.contains(Flags::SYN) {
                    last_synack.insert(s.dst.port() - 40000, s.clone());
                }
                if s.flags.contains(Flags::RST) {
                    prop_assert_eq!(s.window, 0);
                    prop_assert!(s.options.is_empty());
                }
            }
            prop_assert!(l.accept_queue_len() <= cap, "accept queue {} > backlog+1", l.accept_queue_len());
            prop_assert!(l.syn_queue_len() <= cap, "SYN queue {} > backlog+1", l.syn_queue_len());
            prop_assert_eq!(l.deadline().is_some(), l.syn_queue_len() > 0);
            prop_assert!(l.deadline().is_none_or(|d| d > now), "a due timer was not fired");
            let c = l.counters();
            prop_assert!(c.listen_drops >= c.listen_overflows);
        }
    }
}

/// A SYN's ISS over a 1500-byte veth (advertised MSS 1460, `ipv4_default_advmss`).
fn veth(iss: u32) -> SynRoute {
    SynRoute { iss, advmss: 1460 }
}
