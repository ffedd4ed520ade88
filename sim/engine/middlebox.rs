//! Middleboxes: what stands on a link and judges the segments passing it, as a chain of
//! stages, each `on_segment → Verdict` (netfilter's hooks and verdicts, turmoil-net's packet
//! rules). A NAT's flow table and a firewall rule are two kinds of [`Stage`]; a link keeps
//! its stages in the order they were added, and a segment passes each that sits where it is
//! ([`Hook`]) until one drops it.
//!
//! Where they sit decides what they see and when:
//! - a NAT or stateful firewall is a box next to the link's `a` end (where a home router or a
//!   cloud NAT gateway sits, next to the client): it judges a→b segments as they leave `a`,
//!   before the link, and b→a segments as they reach `a`'s end, after it;
//! - a `filter` fault is a rule on one direction's entry, judged once the link is up (down
//!   and partitioned links drop first, for their own reasons).

use super::link::{Dir, DropReason};
use crate::tcp::reset::reset_for;
use crate::tcp::segment::{Flags, Segment};
use crate::time::{Dur, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use crate::addr::SockAddr;

/// What a stage does with a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Dropped here, for `reason`; `reset` is the RST the stage sends back to the segment's
    /// sender, if it answers with one.
    Drop { reason: DropReason, reset: Option<Segment> },
}

/// Where on its link a stage judges segments.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// In a box next to the `a` end: segments leaving `a`, and segments reaching it.
    EndA,
    /// At the entry of one direction, once the link is up.
    Entry(Dir),
}

/// A point on a segment's way across a link, in the order it passes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Leaving the sender's end, before the link state is looked at.
    Leave(Dir),
    /// Entering the link, which is up and not partitioned.
    Entry(Dir),
    /// Reaching the receiver's end, having crossed the link.
    Reach(Dir),
}

impl Hook {
    /// The direction the segment travels.
    pub fn dir(self) -> Dir {
        match self {
            Hook::Leave(d) | Hook::Entry(d) | Hook::Reach(d) => d,
        }
    }
}

impl Place {
    /// Whether a stage placed here judges segments at `hook`.
    pub fn sees(self, hook: Hook) -> bool {
        match (self, hook) {
            (Place::EndA, Hook::Leave(Dir::AToB) | Hook::Reach(Dir::BToA)) => true,
            (Place::Entry(d), Hook::Entry(e)) => d == e,
            _ => false,
        }
    }

    /// Whether a segment this stage sends travelling `dir` arrives without crossing the link
    /// (it sits at that direction's receiving end).
    pub fn beside_receiver(self, dir: Dir) -> bool {
        match self {
            Place::EndA => dir == Dir::BToA,
            Place::Entry(d) => dir == d.reverse(),
        }
    }
}

/// One stage of a link's chain: what it is, where it sits, and the name traces give it.
#[derive(Clone, Debug)]
pub struct Middlebox {
    /// The `[[middlebox]]`'s name; a filter has none.
    pub name: Option<String>,
    pub place: Place,
    pub stage: Stage,
}

/// The kinds of stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A NAT or stateful firewall that forgets idle flows.
    FlowTable(FlowTable),
    /// A firewall rule: drops what it matches.
    Filter(FilterMatch),
}

impl Stage {
    /// Judges `seg` at `now` (updating the stage's state).
    pub fn on_segment(&mut self, now: SimTime, seg: &Segment) -> Verdict {
        match self {
            Stage::FlowTable(t) => t.on_segment(now, seg),
            Stage::Filter(m) if m.matches(seg.flags) => Verdict::Drop { reason: DropReason::Filter, reset: None },
            Stage::Filter(_) => Verdict::Pass,
        }
    }
}

/// Which segments a `filter` fault drops.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterMatch {
    /// SYN without ACK (new connection attempts).
    Syn,
    /// Every segment that is not a SYN.
    NonSyn,
    All,
}

impl FilterMatch {
    pub fn matches(self, flags: Flags) -> bool {
        let syn = flags.contains(Flags::SYN);
        match self {
            FilterMatch::Syn => syn && !flags.contains(Flags::ACK),
            FilterMatch::NonSyn => !syn,
            FilterMatch::All => true,
        }
    }
}

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
type FlowKey = (SockAddr, SockAddr);

fn flow_key(seg: &Segment) -> FlowKey {
    let (s, d) = (seg.src, seg.dst);
    if s <= d {
        (s, d)
    } else {
        (d, s)
    }
}

/// A NAT's or stateful firewall's state table. A pure SYN creates (or renews) a flow; every
/// segment of a live flow refreshes it; a segment of a flow idle for longer than the timeout,
/// or of a flow it never saw, is forgotten: dropped silently, or answered with an RST to its
/// sender. Addresses are not rewritten: the model is of the state table, which is what breaks
/// long-idle connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowTable {
    pub idle_timeout: Dur,
    pub on_expired: OnExpired,
    /// Last time each live flow was seen.
    flows: BTreeMap<FlowKey, SimTime>,
}

impl FlowTable {
    pub fn new(idle_timeout: Dur, on_expired: OnExpired) -> Self {
        FlowTable { idle_timeout, on_expired, flows: BTreeMap::new() }
    }

    fn on_segment(&mut self, now: SimTime, seg: &Segment) -> Verdict {
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
                let reset = match self.on_expired {
                    OnExpired::Rst => reset_for(seg),
                    OnExpired::Drop => None,
                };
                Verdict::Drop { reason: DropReason::NatExpired, reset }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Ecn, Payload, TcpOptions};

    fn seg(flags: Flags, from_a: bool) -> Segment {
        let a: SockAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SockAddr = "10.0.0.2:80".parse().unwrap();
        let (src, dst) = if from_a { (a, b) } else { (b, a) };
        Segment {
            src,
            dst,
            seq: 100,
            ack: 200,
            flags,
            ecn: Ecn::NotEct,
            window: 10,
            options: TcpOptions::default(),
            payload: Payload::Derived { stream: 1, offset: 0, len: 5 },
        }
    }

    fn table(on_expired: OnExpired) -> Stage {
        Stage::FlowTable(FlowTable::new(Dur::from_secs(30), on_expired))
    }

    fn flows(s: &Stage) -> usize {
        match s {
            Stage::FlowTable(t) => t.flows.len(),
            Stage::Filter(_) => 0,
        }
    }

    const EXPIRED: Verdict = Verdict::Drop { reason: DropReason::NatExpired, reset: None };

    #[test]
    fn syn_creates_flow_and_traffic_refreshes_it_both_ways() {
        let mut m = table(OnExpired::Drop);
        assert_eq!(m.on_segment(SimTime(0), &seg(Flags::SYN, true)), Verdict::Pass);
        let t = |s: u64| SimTime(Dur::from_secs(s).0);
        assert_eq!(m.on_segment(t(30), &seg(Flags::ACK, false)), Verdict::Pass); // exactly the timeout: alive
        assert_eq!(m.on_segment(t(59), &seg(Flags::ACK, true)), Verdict::Pass);
        assert_eq!(flows(&m), 1);
    }

    #[test]
    fn idle_flow_is_forgotten_and_stays_forgotten() {
        let mut m = table(OnExpired::Drop);
        m.on_segment(SimTime(0), &seg(Flags::SYN, true));
        let late = SimTime(Dur::from_secs(30).0 + 1);
        assert_eq!(m.on_segment(late, &seg(Flags::ACK, false)), EXPIRED);
        assert_eq!(flows(&m), 0);
        assert_eq!(m.on_segment(late, &seg(Flags::ACK, true)), EXPIRED);
    }

    #[test]
    fn unknown_non_syn_is_dropped() {
        let mut m = table(OnExpired::Drop);
        assert_eq!(m.on_segment(SimTime(0), &seg(Flags::ACK, true)), EXPIRED);
        // A SYN-ACK does not create a flow either.
        assert_eq!(m.on_segment(SimTime(0), &seg(Flags::SYN | Flags::ACK, false)), EXPIRED);
    }

    #[test]
    fn rst_mode_answers_per_rfc_9293() {
        let mut m = table(OnExpired::Rst);
        let s = seg(Flags::ACK | Flags::PSH, true);
        match m.on_segment(SimTime(0), &s) {
            Verdict::Drop { reason: DropReason::NatExpired, reset: Some(r) } => {
                assert_eq!((r.src, r.dst), (s.dst, s.src));
                assert_eq!((r.seq, r.flags), (200, Flags::RST));
            }
            v => panic!("{v:?}"),
        }
        // Never an RST for an RST.
        assert_eq!(m.on_segment(SimTime(0), &seg(Flags::RST, true)), EXPIRED);
    }

    #[test]
    fn filters_match_what_they_say() {
        let judge = |m: FilterMatch, flags: Flags| Stage::Filter(m).on_segment(SimTime(0), &seg(flags, true));
        let filtered = Verdict::Drop { reason: DropReason::Filter, reset: None };
        let cases = [
            (FilterMatch::Syn, [true, false, false, false]),
            (FilterMatch::NonSyn, [false, false, true, true]),
            (FilterMatch::All, [true, true, true, true]),
        ];
        for (m, drops) in cases {
            for (flags, drop) in [Flags::SYN, Flags::SYN | Flags::ACK, Flags::ACK, Flags::RST].into_iter().zip(drops) {
                let want = if drop { filtered.clone() } else { Verdict::Pass };
                assert_eq!(judge(m, flags), want, "{m:?} on {flags:?}");
            }
        }
    }

    #[test]
    fn a_box_at_a_sees_both_directions_at_a_and_a_rule_one_entry() {
        use Hook::*;
        let all = [Leave(Dir::AToB), Entry(Dir::AToB), Reach(Dir::AToB), Leave(Dir::BToA), Entry(Dir::BToA), Reach(Dir::BToA)];
        let seen = |p: Place| all.iter().map(|&h| p.sees(h)).collect::<Vec<_>>();
        assert_eq!(seen(Place::EndA), [true, false, false, false, false, true]);
        assert_eq!(seen(Place::Entry(Dir::BToA)), [false, false, false, false, true, false]);
        // Its answers: towards `a` from the box at `a`, back to the sender from an entry rule.
        assert!(Place::EndA.beside_receiver(Dir::BToA) && !Place::EndA.beside_receiver(Dir::AToB));
        assert!(Place::Entry(Dir::BToA).beside_receiver(Dir::AToB));
    }
}
