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
use crate::engine::{Ctx, Node};
use crate::host::Host;
use crate::tcp::segment::{Flags, Segment};
use crate::time::SimTime;
use std::cell::RefCell;
use std::net::SocketAddrV4;
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
    pub sut: SocketAddrV4,
    pub peer: SocketAddrV4,
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
}

impl Puppet {
    /// Sends emission `i`, rewritten into the model's numbering.
    fn emit(&mut self, i: usize, ctx: &mut Ctx) {
        if let Some(e) = self.emissions.get(i) {
            let seg = self.rewrite(e);
            ctx.send(seg);
        }
    }

    fn rewrite(&self, e: &Emission) -> Segment {
        let mut seg = e.seg.clone();
        let Some(c) = self.conns.get(e.conn) else { return seg };
        let log = self.sut_log.borrow();
        let mine = || log.iter().map(|t| &t.seg).filter(|s| s.src == c.sut && s.dst == c.peer);
        let model_isn = mine().find(|s| s.flags.contains(Flags::SYN)).map(|s| s.seq);
        let model_ts0 = mine().find_map(|s| s.options.timestamps).map(|(v, _)| v);
        if let (Some(cap), Some(model)) = (c.captured_isn, model_isn) {
            let delta = model.wrapping_sub(cap);
            if seg.flags.contains(Flags::ACK) {
                seg.ack = seg.ack.wrapping_add(delta);
            }
            for b in &mut seg.options.sack {
                *b = (b.0.wrapping_add(delta), b.1.wrapping_add(delta));
            }
        }
        if let (Some((val, ecr)), Some(cap), Some(model)) = (seg.options.timestamps, c.captured_ts0, model_ts0) {
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
    use crate::tcp::segment::{Payload, TcpOptions};

    #[test]
    fn acks_sacks_and_echoed_timestamps_follow_the_models_numbering() {
        let sut: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
        let peer: SocketAddrV4 = "10.0.0.1:5000".parse().unwrap();
        let log: SutLog = Rc::default();
        let syn_ack = Segment {
            src: sut,
            dst: peer,
            seq: 500,
            ack: 11,
            flags: Flags::SYN | Flags::ACK,
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
            window: 50,
            options: TcpOptions { timestamps: Some((2, 7005)), sack: vec![(100_010, 100_020)], ..TcpOptions::default() },
            payload: Payload::Empty,
        };
        let p = Puppet {
            emissions: vec![Emission { at: SimTime::ZERO, conn: 0, seg: ack }],
            conns: vec![ConnMap { sut, peer, captured_isn: Some(100_000), captured_ts0: Some(7000) }],
            sut_log: log,
        };
        let out = p.rewrite(&p.emissions[0]);
        assert_eq!((out.seq, out.ack), (11, 501), "own seq kept, ack moved to the model's ISN");
        assert_eq!(out.options.sack, [(510, 520)]);
        assert_eq!(out.options.timestamps, Some((2, 9005)));
    }
}
