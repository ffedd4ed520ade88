//! A NAT or stateful firewall that forgets idle flows.
//!
//! It sits at the `a` end of its link (where a home router or a cloud NAT gateway sits,
//! next to the client): it inspects a→b segments as they enter the link and b→a segments as
//! they reach the `a` end. A pure SYN creates (or renews) a flow; every segment of a live
//! flow refreshes it; a segment of a flow idle for longer than the timeout, or of a flow it
//! never saw, is forgotten: dropped silently, or answered with an RST to its sender.
//! Addresses are not rewritten: the model is of the state table, which is what breaks
//! long-idle connections.

use crate::tcp::reset::reset_for;
use crate::tcp::segment::{Flags, Segment};
use crate::time::{Dur, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExpired {
    /// Silently drop segments of a forgotten flow (most NATs).
    #[default]
    Drop,
    /// Answer them with RST (some stateful firewalls).
    Rst,
}

/// A flow's two endpoints, smaller first, so both directions find the same entry.
type FlowKey = (SocketAddrV4, SocketAddrV4);

fn flow_key(seg: &Segment) -> FlowKey {
    let (s, d) = (seg.src, seg.dst);
    if (s.ip().to_bits(), s.port()) <= (d.ip().to_bits(), d.port()) {
        (s, d)
    } else {
        (d, s)
    }
}

/// What the middlebox does with a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Forgotten flow: drop silently.
    Drop,
    /// Forgotten flow: drop, and send this RST back to the segment's sender.
    Reset(Segment),
}

#[derive(Clone, Debug)]
pub struct Middlebox {
    pub name: String,
    pub link: usize,
    pub idle_timeout: Dur,
    pub on_expired: OnExpired,
    /// Last time each live flow was seen.
    flows: BTreeMap<FlowKey, SimTime>,
}

impl Middlebox {
    pub fn new(name: String, link: usize, idle_timeout: Dur, on_expired: OnExpired) -> Self {
        Middlebox { name, link, idle_timeout, on_expired, flows: BTreeMap::new() }
    }

    /// Number of flows in the table (including idle ones not yet noticed as expired).
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Inspects `seg` at `now`, updating the flow table.
    pub fn inspect(&mut self, now: SimTime, seg: &Segment) -> Verdict {
        let key = flow_key(seg);
        let pure_syn = seg.flags.contains(Flags::SYN) && !seg.flags.contains(Flags::ACK);
        if pure_syn {
            self.flows.insert(key, now);
            return Verdict::Pass;
        }
        match self.flows.get_mut(&key) {
            Some(last) if now.since(*last) <= self.idle_timeout => {
                *last = now;
                Verdict::Pass
            }
            _ => {
                self.flows.remove(&key);
                match (self.on_expired, reset_for(seg)) {
                    (OnExpired::Rst, Some(rst)) => Verdict::Reset(rst),
                    _ => Verdict::Drop,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Payload, TcpOptions};

    fn seg(flags: Flags, from_a: bool) -> Segment {
        let a: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let (src, dst) = if from_a { (a, b) } else { (b, a) };
        Segment {
            src,
            dst,
            seq: 100,
            ack: 200,
            flags,
            window: 10,
            options: TcpOptions::default(),
            payload: Payload::Derived { stream: 1, offset: 0, len: 5 },
        }
    }

    fn mb(on_expired: OnExpired) -> Middlebox {
        Middlebox::new("nat".into(), 0, Dur::from_secs(30), on_expired)
    }

    #[test]
    fn syn_creates_flow_and_traffic_refreshes_it_both_ways() {
        let mut m = mb(OnExpired::Drop);
        assert_eq!(m.inspect(SimTime(0), &seg(Flags::SYN, true)), Verdict::Pass);
        let t = |s: u64| SimTime(Dur::from_secs(s).0);
        assert_eq!(m.inspect(t(30), &seg(Flags::ACK, false)), Verdict::Pass); // exactly the timeout: alive
        assert_eq!(m.inspect(t(59), &seg(Flags::ACK, true)), Verdict::Pass);
        assert_eq!(m.flows(), 1);
    }

    #[test]
    fn idle_flow_is_forgotten_and_stays_forgotten() {
        let mut m = mb(OnExpired::Drop);
        m.inspect(SimTime(0), &seg(Flags::SYN, true));
        let late = SimTime(Dur::from_secs(30).0 + 1);
        assert_eq!(m.inspect(late, &seg(Flags::ACK, false)), Verdict::Drop);
        assert_eq!(m.flows(), 0);
        assert_eq!(m.inspect(late, &seg(Flags::ACK, true)), Verdict::Drop);
    }

    #[test]
    fn unknown_non_syn_is_dropped() {
        let mut m = mb(OnExpired::Drop);
        assert_eq!(m.inspect(SimTime(0), &seg(Flags::ACK, true)), Verdict::Drop);
        // A SYN-ACK does not create a flow either.
        assert_eq!(m.inspect(SimTime(0), &seg(Flags::SYN | Flags::ACK, false)), Verdict::Drop);
    }

    #[test]
    fn rst_mode_answers_per_rfc_9293() {
        let mut m = mb(OnExpired::Rst);
        let s = seg(Flags::ACK | Flags::PSH, true);
        match m.inspect(SimTime(0), &s) {
            Verdict::Reset(r) => {
                assert_eq!((r.src, r.dst), (s.dst, s.src));
                assert_eq!((r.seq, r.flags), (200, Flags::RST));
            }
            v => panic!("{v:?}"),
        }
        // Never an RST for an RST.
        assert_eq!(m.inspect(SimTime(0), &seg(Flags::RST, true)), Verdict::Drop);
    }
}
