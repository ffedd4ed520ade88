//! A toy node and trace helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test crate uses a different subset

use serde_json::Value;
use tcpsim::addr::SockAddr;
use tcpsim::engine::{Ctx, Node};
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::{Dur, SimTime};

/// The timer key of the pinger's periodic send.
pub const TICK: u64 = 1;

/// Sends a numbered segment to `peer` every `interval` once started, logs what it receives
/// and which timers fire. The logs are test instrumentation, kept across crashes; the
/// "socket state" a crash loses is `next_seq` and `ticking`.
pub struct Pinger {
    pub me: SockAddr,
    pub peer: Option<SockAddr>,
    pub interval: Dur,
    pub next_seq: u32,
    pub ticking: bool,
    /// (arrival time, seq, flags) of every segment received.
    pub got: Vec<(SimTime, u32, Flags)>,
    /// (time, key) of every timer delivered.
    pub fired: Vec<(SimTime, u64)>,
    pub crashes: Vec<SimTime>,
    pub reboots: Vec<SimTime>,
    /// Timers (at, key) to schedule on reboot.
    pub on_reboot_schedule: Vec<(SimTime, u64)>,
}

impl Pinger {
    pub fn new(me: &str, peer: Option<&str>, interval: Dur) -> Self {
        Pinger {
            me: me.parse().unwrap(),
            peer: peer.map(|p| p.parse().unwrap()),
            interval,
            next_seq: 1000,
            ticking: false,
            got: Vec::new(),
            fired: Vec::new(),
            crashes: Vec::new(),
            reboots: Vec::new(),
            on_reboot_schedule: Vec::new(),
        }
    }

    /// Starts the periodic send: the first one `interval` from now.
    pub fn start(&mut self, ctx: &mut Ctx) {
        self.ticking = true;
        ctx.schedule(ctx.now() + self.interval, TICK);
    }
}

impl Node for Pinger {
    fn on_segment(&mut self, now: SimTime, seg: Segment, _ctx: &mut Ctx) {
        self.got.push((now, seg.seq, seg.flags));
    }

    fn on_timer(&mut self, now: SimTime, key: u64, ctx: &mut Ctx) {
        self.fired.push((now, key));
        if key == TICK && self.ticking {
            if let Some(peer) = self.peer {
                ctx.send(data(self.me, peer, self.next_seq, 100));
                self.next_seq += 1;
            }
            ctx.schedule(now + self.interval, TICK);
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        self.crashes.push(now);
        self.ticking = false;
        self.next_seq = 1000;
    }

    fn on_reboot(&mut self, now: SimTime, ctx: &mut Ctx) {
        self.reboots.push(now);
        for &(at, key) in &self.on_reboot_schedule {
            ctx.schedule(at, key);
        }
    }
}

pub fn addr(s: &str) -> SockAddr {
    s.parse().unwrap()
}

/// A segment with `len` derived payload bytes and flags `P.`.
pub fn data(src: SockAddr, dst: SockAddr, seq: u32, len: u32) -> Segment {
    seg(src, dst, seq, Flags::PSH | Flags::ACK, len)
}

pub fn seg(src: SockAddr, dst: SockAddr, seq: u32, flags: Flags, len: u32) -> Segment {
    Segment {
        src,
        dst,
        seq,
        ack: 555,
        flags,
        ecn: Ecn::NotEct,
        window: 1000,
        options: TcpOptions::default(),
        payload: if len == 0 { Payload::Empty } else { Payload::Derived { stream: 1, offset: 0, len } },
    }
}

pub fn ms(n: u64) -> SimTime {
    SimTime(Dur::from_millis(n).0)
}

/// The trace's records.
pub fn records(bytes: &[u8]) -> Vec<Value> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect()
}

/// Records of kind `ev`.
pub fn of_kind<'a>(recs: &'a [Value], ev: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["ev"] == ev).collect()
}

pub fn t(r: &Value) -> u64 {
    r["t"].as_u64().unwrap()
}
