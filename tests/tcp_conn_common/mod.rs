//! A tiny two-host harness for the connection model: a client `Conn`, a scripted listener
//! that answers SYNs and creates the server child with `Conn::accept_child`, and a wire with
//! delay, seeded loss and reordering. Shared by the `tcp_conn_*` tests and the `tcp` bench.
#![allow(dead_code)]

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tcpsim::addr::SockAddr;
use std::rc::Rc;
use tcpsim::tcp::conn::{select_initial_window, ts_offset, ChildParams, ChildTimestamps, Conn, SockOpts, TimerKind};
use tcpsim::tcp::jiffies::Timers;
use tcpsim::tcp::profile::KernelProfile;
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::{Dur, SimTime};

pub const CLIENT: &str = "10.0.0.1:40000";
pub const SERVER: &str = "10.0.0.2:80";
pub const CLIENT_ISS: u32 = 1_000;
/// The MSS both ends advertise: a 1500-byte veth's (`ipv4_default_advmss`).
pub const VETH_ADVMSS: u16 = 1460;
pub const SERVER_ISS: u32 = 5_000_000;

pub fn client_addr() -> SockAddr {
    CLIENT.parse().unwrap()
}
pub fn server_addr() -> SockAddr {
    SERVER.parse().unwrap()
}
pub fn profile() -> Rc<KernelProfile> {
    Rc::new(KernelProfile::linux_6_18())
}

/// `p` with textbook timers: HZ = 1000 and each timer firing exactly its timeout after it is
/// armed (`Timers::Exact`), so an RTO is srtt + 200 ms to the millisecond. For tests that check
/// an algorithm's numbers (backoff doubling, the SYN and SYN-ACK schedules, retry budgets,
/// keepalive counts); how the timer wheel moves each firing is covered by the tests that stay
/// on the default jiffies profile (`tests/timers_jiffies.rs` and others).
pub fn textbook(p: KernelProfile) -> KernelProfile {
    KernelProfile { hz: 1000, timers: Timers::Exact, ..p }
}

/// `linux-6.18` with textbook timers (see `textbook`).
pub fn textbook_profile() -> KernelProfile {
    textbook(KernelProfile::linux_6_18())
}
pub fn ms(v: u64) -> SimTime {
    SimTime(v * 1_000_000)
}

/// A segment from the scripted peer (the server address) to the client.
pub fn peer_seg(seq: u32, ack: u32, flags: Flags, window: u16, payload: Payload) -> Segment {
    Segment { src: server_addr(), dst: client_addr(), seq, ack, flags, ecn: Ecn::NotEct, window, options: TcpOptions::default(), payload }
}

/// A client connected to a scripted peer that sent a SYN-ACK without options (so no
/// scaling, SACK or timestamps): returns the connection and what it sent.
pub fn established_plain(opts: SockOpts, now: SimTime) -> (Conn, Vec<Segment>) {
    let mut out = Vec::new();
    let mut c = Conn::connect(now, profile(), opts, client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
    let mut synack = peer_seg(SERVER_ISS, CLIENT_ISS + 1, Flags::SYN | Flags::ACK, 65535, Payload::Empty);
    synack.options.mss = Some(1460);
    c.on_segment(now, &synack, &mut out);
    (c, out)
}

/// Everything sent on the wire, in order.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: SimTime,
    pub from: usize,
    pub seg: Segment,
    pub dropped: bool,
}

/// Two endpoints: 0 = client, 1 = server (a child made by the scripted listener).
pub struct Sim {
    pub now: SimTime,
    pub conns: [Option<Conn>; 2],
    pub opts: [SockOpts; 2],
    pub profile: Rc<KernelProfile>,
    wire: BTreeMap<(SimTime, u64), (usize, Segment)>,
    order: u64,
    pub delay: Dur,
    /// Loss and reordering probabilities, per million segments.
    pub loss_ppm: u32,
    pub reorder_ppm: u32,
    /// Duplication probability, per million segments.
    pub dup_ppm: u32,
    /// Drop every segment that `blackhole` matches (side it comes from, segment).
    pub blackhole: Option<fn(usize, &Segment) -> bool>,
    /// Extra one-way delay for some segments (by sender, send time, segment): a path that
    /// delays without losing.
    pub delay_extra: Option<fn(usize, SimTime, &Segment) -> Option<Dur>>,
    rng: ChaCha8Rng,
    pub trace: Vec<Sent>,
    pub keep_trace: bool,
    pub segments_processed: u64,
    syn: Option<Segment>,
}

impl Sim {
    pub fn new(seed: u64, delay: Dur) -> Sim {
        Sim {
            now: SimTime::ZERO,
            conns: [None, None],
            opts: [SockOpts::default(), SockOpts::default()],
            profile: profile(),
            wire: BTreeMap::new(),
            order: 0,
            delay,
            loss_ppm: 0,
            reorder_ppm: 0,
            dup_ppm: 0,
            blackhole: None,
            delay_extra: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            trace: Vec::new(),
            keep_trace: true,
            segments_processed: 0,
            syn: None,
        }
    }

    pub fn client(&mut self) -> &mut Conn {
        self.conns[0].as_mut().expect("client")
    }
    pub fn server(&mut self) -> &mut Conn {
        self.conns[1].as_mut().expect("server child")
    }

    pub fn connect(&mut self) {
        let mut out = Vec::new();
        let c = Conn::connect(self.now, self.profile.clone(), self.opts[0].clone(), client_addr(), server_addr(), CLIENT_ISS, VETH_ADVMSS, &mut out);
        self.conns[0] = Some(c);
        self.transmit(0, out);
    }

    /// The client writes `len` bytes now and what it sends goes on the wire; returns what
    /// `send` accepted.
    pub fn client_writes(&mut self, len: u32) -> u32 {
        let (now, mut out) = (self.now, Vec::new());
        let sent = self.client().send(now, tcpsim::tcp::conn::SendData::Derived(len), &mut out).unwrap();
        self.transmit(0, out);
        sent
    }

    /// Puts segments sent by `from` on the wire.
    pub fn transmit(&mut self, from: usize, out: Vec<Segment>) {
        for seg in out {
            let mut dropped = self.blackhole.is_some_and(|f| f(from, &seg));
            if !dropped && self.loss_ppm > 0 && self.rng.next_u32() % 1_000_000 < self.loss_ppm {
                dropped = true;
            }
            let mut delay = self.delay;
            if let Some(extra) = self.delay_extra.and_then(|f| f(from, self.now, &seg)) {
                delay = delay + extra;
            }
            if self.reorder_ppm > 0 && self.rng.next_u32() % 1_000_000 < self.reorder_ppm {
                delay = delay + self.delay + Dur::from_micros(self.rng.next_u32() as u64 % 5_000);
            }
            if self.keep_trace {
                self.trace.push(Sent { at: self.now, from, seg: seg.clone(), dropped });
            }
            if !dropped {
                if self.dup_ppm > 0 && self.rng.next_u32() % 1_000_000 < self.dup_ppm {
                    self.order += 1;
                    let later = self.now + delay + Dur::from_micros(self.rng.next_u32() as u64 % 3_000);
                    self.wire.insert((later, self.order), (1 - from, seg.clone()));
                }
                self.order += 1;
                self.wire.insert((self.now + delay, self.order), (1 - from, seg));
            }
        }
    }

    /// The scripted listener (tcp_conn_request / tcp_check_req, as far as a test needs).
    fn listener(&mut self, seg: &Segment) -> Vec<Segment> {
        let p = self.profile.clone();
        if seg.flags.contains(Flags::SYN) && !seg.flags.contains(Flags::ACK) {
            self.syn = Some(seg.clone());
            let ts = seg.options.timestamps.is_some();
            let mss = if ts { 1448 } else { 1460 };
            let rcvbuf = self.opts[1].effective_rcvbuf(&p);
            let (wnd, ws) = select_initial_window(&p, rcvbuf, self.opts[1].rcvbuf.is_some(), mss, seg.options.wscale.is_some());
            let options = TcpOptions {
                mss: Some(VETH_ADVMSS),
                sack_permitted: seg.options.sack_permitted,
                timestamps: seg.options.timestamps.map(|(v, _)| (self.tsval(), v)),
                wscale: seg.options.wscale.map(|_| ws),
                ..TcpOptions::default()
            };
            return vec![Segment {
                src: seg.dst,
                dst: seg.src,
                seq: SERVER_ISS,
                ack: seg.seq.wrapping_add(1),
                flags: Flags::SYN | Flags::ACK,
                ecn: Ecn::NotEct,
                window: wnd.min(65535) as u16,
                options,
                payload: Payload::Empty,
            }];
        }
        let Some(syn) = self.syn.clone() else { return vec![] };
        if !seg.flags.contains(Flags::ACK) || seg.ack != SERVER_ISS + 1 || seg.flags.contains(Flags::RST) {
            return vec![];
        }
        let ts = syn.options.timestamps.is_some();
        let rcvbuf = self.opts[1].effective_rcvbuf(&p);
        let (wnd, ws) = select_initial_window(&p, rcvbuf, self.opts[1].rcvbuf.is_some(), if ts { 1448 } else { 1460 }, syn.options.wscale.is_some());
        let peer_wscale = syn.options.wscale.filter(|_| p.tcp_window_scaling).map(|w| w.min(14));
        let params = ChildParams {
            local: seg.dst,
            remote: seg.src,
            iss: SERVER_ISS,
            irs: syn.seq,
            peer_mss: syn.options.mss.unwrap_or(536),
            adv_mss: VETH_ADVMSS,
            snd_wscale: peer_wscale,
            rcv_wscale: ws,
            sack_ok: syn.options.sack_permitted,
            // The clients here never ask for ECN (tcp_ecn = 2 answers only an asking SYN).
            ecn_ok: false,
            timestamps: seg.options.timestamps.map(|t| ChildTimestamps { ts_recent: t.0, ts_off: ts_offset(seg.dst, seg.src) }),
            snd_wnd: u32::from(seg.window) << peer_wscale.unwrap_or(0),
            rcv_wnd: wnd,
            window_clamp: wnd,
            // An RTT sample of exactly two one-way delays: the SYN-ACK "went out" one clean
            // round trip before the completing ACK, once.
            synack_sent_at: Some(SimTime::ZERO + Dur::from_nanos(self.now.as_nanos().saturating_sub(2 * self.delay.as_nanos()))),
            synack_retransmits: 0,
            cookie: false,
            fastopen: false,
            segment: seg.clone(),
        };
        let mut out = Vec::new();
        let mut child = Conn::accept_child(self.now, p, self.opts[1].clone(), &params, &mut out);
        if !seg.payload.is_empty() || seg.flags.contains(Flags::FIN) {
            child.on_segment(self.now, seg, &mut out);
        }
        self.conns[1] = Some(child);
        out
    }

    fn tsval(&self) -> u32 {
        (self.now.as_nanos() / 1_000_000) as u32 + ts_offset(server_addr(), client_addr())
    }

    fn next_event(&self) -> Option<SimTime> {
        let wire = self.wire.keys().next().map(|(t, _)| *t);
        let timers = self.conns.iter().flatten().filter_map(|c| c.next_deadline()).min();
        match (wire, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs one event (a delivery or the timers due); false when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_event() else { return false };
        self.now = self.now.max(t);
        if let Some(((at, _), _)) = self.wire.first_key_value() {
            if *at <= self.now {
                let (_, (to, seg)) = self.wire.pop_first().unwrap();
                self.segments_processed += 1;
                let now = self.now;
                let out = match self.conns[to].as_mut() {
                    Some(c) => {
                        let mut out = Vec::new();
                        c.on_segment(now, &seg, &mut out);
                        out
                    }
                    None if to == 1 => self.listener(&seg),
                    None => vec![],
                };
                self.transmit(to, out);
                return true;
            }
        }
        for side in 0..2 {
            for kind in [TimerKind::Retransmit, TimerKind::DelAck, TimerKind::Keepalive] {
                let now = self.now;
                let Some(c) = self.conns[side].as_mut() else { continue };
                if c.deadline(kind).is_some_and(|d| d <= now) {
                    let mut out = Vec::new();
                    c.on_timer(now, kind, &mut out);
                    self.transmit(side, out);
                }
            }
        }
        true
    }

    /// Runs events up to and including time `until`.
    pub fn run_until(&mut self, until: SimTime) {
        while self.next_event().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds or `limit` is reached; true if `done` held.
    pub fn run_while_not(&mut self, limit: SimTime, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            match self.next_event() {
                Some(t) if t <= limit => {
                    self.step();
                }
                _ => return done(self),
            }
        }
    }

    /// Segments sent by `from` (not dropped or dropped) matching `f`.
    pub fn sent_by(&self, from: usize, f: impl Fn(&Segment) -> bool) -> Vec<Sent> {
        self.trace.iter().filter(|s| s.from == from && f(&s.seg)).cloned().collect()
    }
}

/// The result of [`bulk_transfer`].
pub struct Bulk {
    pub received: Vec<u8>,
    pub finished_at: SimTime,
}

/// A bulk transfer: the client writes `total` derived bytes as fast as the socket accepts
/// them, then closes; the server reads everything until EOF, then closes. Returns what the
/// server read (only counted, not kept, when `keep` is false).
pub fn bulk_transfer(sim: &mut Sim, total: u64, keep: bool, limit: SimTime) -> Bulk {
    use tcpsim::tcp::conn::SendData;
    sim.connect();
    let mut sent = 0u64;
    let mut received = Vec::new();
    let mut count = 0u64;
    let mut client_closed = false;
    let mut server_closed = false;
    loop {
        let now = sim.now;
        if let Some(c) = sim.conns[0].as_mut() {
            let mut out = Vec::new();
            if c.state() == tcpsim::tcp::state::TcpState::Established && sent < total {
                let want = (total - sent).min(1 << 20) as u32;
                if let Ok(n) = c.send(now, SendData::Derived(want), &mut out) {
                    sent += n as u64;
                }
            }
            if sent == total && !client_closed && c.state() == tcpsim::tcp::state::TcpState::Established {
                c.close(now, &mut out);
                client_closed = true;
            }
            sim.transmit(0, out);
        }
        if let Some(s) = sim.conns[1].as_mut() {
            let mut out = Vec::new();
            loop {
                match s.recv(now, 1 << 16, false, &mut out) {
                    Ok(v) if !v.is_empty() => {
                        count += v.len() as u64;
                        if keep {
                            received.extend_from_slice(&v);
                        }
                    }
                    Ok(_) => {
                        if !server_closed {
                            s.close(now, &mut out);
                            server_closed = true;
                        }
                        break;
                    }
                    Err(_) => break,
                }
            }
            sim.transmit(1, out);
        }
        let finished = server_closed
            && sim.conns.iter().flatten().all(|c| matches!(c.state(), tcpsim::tcp::state::TcpState::Close | tcpsim::tcp::state::TcpState::TimeWait));
        if finished || sim.now > limit || !sim.step() {
            break;
        }
    }
    assert!(keep || received.is_empty());
    let _ = count;
    Bulk { received, finished_at: sim.now }
}

/// Connects, then at 100 ms writes ten segments of which the third is lost once (seq =
/// ISS + 1 + 2·1448); returns the time of the write.
pub fn send_ten_losing_the_third(sim: &mut Sim) -> SimTime {
    thread_local!(static DROPPED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    sim.connect();
    sim.run_until(ms(100));
    DROPPED.set(false);
    sim.blackhole = Some(|from, s: &Segment| {
        let hit = from == 0 && s.seq == CLIENT_ISS + 1 + 2 * 1448 && !DROPPED.get();
        if hit {
            DROPPED.set(true);
        }
        hit
    });
    let t0 = sim.now;
    sim.client_writes(10 * 1448);
    t0
}
