//! The nodes of a replay: the system under test is a real model [`Host`]; every other
//! endpoint is a [`Puppet`] that, instead of computing, sends the segments its endpoint sent
//! in the capture at their captured times.
//!
//! The model picks its own initial sequence number and timestamp clock, so a puppet rewrites
//! what in its segments refers to the system under test (the ack number, SACK blocks, the
//! echoed TSecr) from the capture's numbering into the model's: the same offset from the
//! SUT's first value in each (RFC 9293 §3.4: only relative sequence numbers mean anything;
//! RFC 7323 §5.4: TS clocks are per-host).

use super::compare::Timed;
use super::split::starts_incarnation;
use crate::engine::{Ctx, Node};
use crate::host::Host;
use crate::tcp::segment::{Flags, Segment};
use crate::time::SimTime;
use std::cell::RefCell;
use std::collections::BTreeMap;
use crate::addr::SockAddr;
use std::rc::Rc;

/// What the system under test put on the wire, in order (filled by the engine's tap).
pub type SutLog = Rc<RefCell<Vec<Timed>>>;

/// A node of the replay's simulation.
pub enum Endpoint {
    Sut(Box<Host>),
    Puppet(Puppet),
}

impl Node for Endpoint {
    fn on_segment(&mut self, now: SimTime, seg: Segment, ctx: &mut Ctx) {
        match self {
            Endpoint::Sut(h) => h.on_segment(now, seg, ctx),
            // What the SUT sent is read from the wire tap (a partition may keep it from here).
            Endpoint::Puppet(_) => {}
        }
    }

    fn on_timer(&mut self, now: SimTime, key: u64, ctx: &mut Ctx) {
        match self {
            Endpoint::Sut(h) => h.on_timer(now, key, ctx),
            Endpoint::Puppet(p) => p.emit(key as usize, ctx),
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        if let Endpoint::Sut(h) = self {
            h.on_crash(now);
        }
    }

    fn on_reboot(&mut self, now: SimTime, ctx: &mut Ctx) {
        if let Endpoint::Sut(h) = self {
            h.on_reboot(now, ctx);
        }
    }
}

/// How one connection's numbers map between the capture and the model.
#[derive(Clone, Debug)]
pub struct ConnMap {
    pub sut: SockAddr,
    pub peer: SockAddr,
    /// The SUT's ISN in the capture (its SYN's seq), if it sent a SYN there.
    pub captured_isn: Option<u32>,
    /// The SUT's first TSval in the capture.
    pub captured_ts0: Option<u32>,
}

/// One captured segment to send.
#[derive(Clone, Debug)]
pub struct Emission {
    pub at: SimTime,
    pub conn: usize,
    pub seg: Segment,
}

/// A peer that replays its side of the capture.
pub struct Puppet {
    pub emissions: Vec<Emission>,
    pub conns: Vec<ConnMap>,
    pub sut_log: SutLog,
    /// What the model's own segments said so far, per connection of `conns`.
    learned: Vec<Learned>,
    /// (SUT, peer) → its connections (incarnations) in order, and which of them the
    /// model's segments are on now; built with `learned`.
    index: BTreeMap<(SockAddr, SockAddr), (Vec<usize>, usize)>,
    /// How much of `sut_log` has been read into `learned`: each segment is read once, so a
    /// replay stays linear in its packets (re-reading the log for every emission was the
    /// quadratic step of a long connection without a SYN or timestamps to stop the search).
    scanned: usize,
}

/// The model's numbering of one connection, once its segments showed it.
#[derive(Copy, Clone, Debug, Default)]
struct Learned {
    /// The SUT's ISN in the model (its SYN's seq).
    isn: Option<u32>,
    /// The SUT's first TSval in the model.
    ts0: Option<u32>,
}

impl Puppet {
    pub fn new(emissions: Vec<Emission>, conns: Vec<ConnMap>, sut_log: SutLog) -> Puppet {
        Puppet { emissions, conns, sut_log, learned: Vec::new(), index: BTreeMap::new(), scanned: 0 }
    }

    /// Sends emission `i`, rewritten into the model's numbering.
    fn emit(&mut self, i: usize, ctx: &mut Ctx) {
        if i < self.emissions.len() {
            let seg = self.rewrite(i);
            ctx.send(seg);
        }
    }

    /// Reads what the SUT sent since the last call into `learned`.
    fn learn(&mut self) {
        let log = self.sut_log.borrow();
        if self.scanned >= log.len() {
            return;
        }
        if self.learned.len() != self.conns.len() {
            self.learned.resize(self.conns.len(), Learned::default());
            self.index.clear();
            for (i, c) in self.conns.iter().enumerate() {
                self.index.entry((c.sut, c.peer)).or_default().0.push(i);
            }
        }
        for t in &log[self.scanned..] {
            let Some((incarnations, now)) = self.index.get_mut(&(t.seg.src, t.seg.dst)) else { continue };
            if starts_incarnation(self.learned[incarnations[*now]].isn, &t.seg) && *now + 1 < incarnations.len() {
                *now += 1;
            }
            let l = &mut self.learned[incarnations[*now]];
            if l.isn.is_none() && t.seg.flags.contains(Flags::SYN) {
                l.isn = Some(t.seg.seq);
            }
            if l.ts0.is_none() {
                l.ts0 = t.seg.options.timestamps.map(|(v, _)| v);
            }
        }
        self.scanned = log.len();
    }

    fn rewrite(&mut self, i: usize) -> Segment {
        self.learn();
        let e = &self.emissions[i];
        let mut seg = e.seg.clone();
        let Some(c) = self.conns.get(e.conn) else { return seg };
        let learned = self.learned.get(e.conn).copied().unwrap_or_default();
        if let (Some(cap), Some(model)) = (c.captured_isn, learned.isn) {
            let delta = model.wrapping_sub(cap);
            if seg.flags.contains(Flags::ACK) {
                seg.ack = seg.ack.wrapping_add(delta);
            }
            for b in &mut seg.options.sack {
                *b = (b.0.wrapping_add(delta), b.1.wrapping_add(delta));
            }
        }
        if let (Some((val, ecr)), Some(cap), Some(model)) = (seg.options.timestamps, c.captured_ts0, learned.ts0) {
            if ecr != 0 {
                seg.options.timestamps = Some((val, ecr.wrapping_sub(cap).wrapping_add(model)));
            }
        }
        seg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Ecn, Payload, TcpOptions};

    #[test]
    fn acks_sacks_and_echoed_timestamps_follow_the_models_numbering() {
        let sut: SockAddr = "10.0.0.2:80".parse().unwrap();
        let peer: SockAddr = "10.0.0.1:5000".parse().unwrap();
        let log: SutLog = Rc::default();
        let syn_ack = Segment {
            src: sut,
            dst: peer,
            seq: 500,
            ack: 11,
            flags: Flags::SYN | Flags::ACK,
            ecn: Ecn::NotEct,
            window: 100,
            options: TcpOptions { timestamps: Some((9000, 1)), ..TcpOptions::default() },
            payload: Payload::Empty,
        };
        log.borrow_mut().push(Timed { t: SimTime::ZERO, seg: syn_ack });
        let ack = Segment {
            src: peer,
            dst: sut,
            seq: 11,
            ack: 100_001,
            flags: Flags::ACK,
            ecn: Ecn::NotEct,
            window: 50,
            options: TcpOptions { timestamps: Some((2, 7005)), sack: vec![(100_010, 100_020)], ..TcpOptions::default() },
            payload: Payload::Empty,
        };
        let mut p = Puppet::new(
            vec![Emission { at: SimTime::ZERO, conn: 0, seg: ack }],
            vec![ConnMap { sut, peer, captured_isn: Some(100_000), captured_ts0: Some(7000) }],
            log,
        );
        let out = p.rewrite(0);
        assert_eq!((out.seq, out.ack), (11, 501), "own seq kept, ack moved to the model's ISN");
        assert_eq!(out.options.sack, [(510, 520)]);
        assert_eq!(out.options.timestamps, Some((2, 9005)));
    }

    /// The SUT's log is read once, however many emissions follow: a long connection whose
    /// model never sent a SYN or a timestamp had every emission re-read the whole log.
    #[test]
    fn each_logged_segment_is_read_once() {
        let sut: SockAddr = "10.0.0.2:80".parse().unwrap();
        let peer: SockAddr = "10.0.0.1:5000".parse().unwrap();
        let seg = |seq, flags| Segment { src: sut, dst: peer, seq, ack: 1, flags, ecn: Ecn::NotEct, window: 1, options: TcpOptions::default(), payload: Payload::Empty };
        let log: SutLog = Rc::default();
        let emissions = (0..3).map(|_| Emission { at: SimTime::ZERO, conn: 0, seg: seg(0, Flags::ACK) }).collect();
        let mut p = Puppet::new(emissions, vec![ConnMap { sut, peer, captured_isn: Some(0), captured_ts0: None }], log.clone());
        log.borrow_mut().extend((0..1000).map(|i| Timed { t: SimTime::ZERO, seg: seg(i, Flags::ACK) }));
        p.rewrite(0);
        assert_eq!(p.scanned, 1000);
        // What was read is not read again: a SYN slipped into the old part is not seen ...
        log.borrow_mut()[5].seg.flags = Flags::SYN;
        assert_eq!(p.rewrite(1).ack, 1);
        // ... while a new one is.
        log.borrow_mut().push(Timed { t: SimTime::ZERO, seg: seg(100, Flags::SYN) });
        assert_eq!(p.rewrite(2).ack, 101);
        assert_eq!(p.scanned, 1001);
    }
}
