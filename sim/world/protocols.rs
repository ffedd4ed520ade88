//! Application protocols over TCP, for the questions TCP alone does not answer: a heartbeat
//! that notices a vanished peer, and messages that survive reconnects (or, naively, do not).
//!
//! Like the other applications they act when a socket they own is woken, and on their own
//! timers (a heartbeat's tick, a message's production, a reconnect). The sink's log of
//! delivered messages is its durable state: it survives a crash of its host.

use crate::engine::{HostState, Sim};
use crate::errno::Errno;
use crate::host::{Fd, Host, RecvFlags, SendFlags};
use crate::scenario::{AppSpec, HeartbeatSpec, MessageSinkSpec, MessengerSpec, MsgProtocol, OptValue, SockOpt};
use crate::tcp::conn::SendData;
use crate::tcp::state::TcpState;
use crate::time::{Dur, SimTime};
use serde::Serialize;
use std::collections::BTreeMap;

/// One message on the wire: its number and a check word derived from it, so that an altered
/// byte is caught.
const FRAME: usize = 16;
/// A cumulative acknowledgement: the next message number the sink expects.
const ACK: usize = 8;
const READ_CHUNK: u32 = 64 * 1024;
/// How often a sink whose host came back looks for its listener.
const SINK_TICK: Dur = Dur::from_secs(1);

fn check_word(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6d73_6773
}

fn frame(id: u64) -> [u8; FRAME] {
    let mut f = [0u8; FRAME];
    f[..8].copy_from_slice(&id.to_be_bytes());
    f[8..].copy_from_slice(&check_word(id).to_be_bytes());
    f
}

fn word(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// What a protocol application reports at the end of a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProtocolReport {
    Heartbeat {
        app: usize,
        /// When the application declared the peer dead (its own heartbeat).
        #[serde(skip_serializing_if = "Option::is_none")]
        declared_dead_ns: Option<u64>,
        /// When a call first failed, and how (keepalive, user timeout, RST).
        #[serde(skip_serializing_if = "Option::is_none")]
        error_ns: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Errno>,
        heartbeats_sent: u64,
        replies: u64,
    },
    Messenger {
        app: usize,
        protocol: MsgProtocol,
        produced: u64,
        /// Messages the sink acknowledged (resume) or send() accepted (naive).
        confirmed: u64,
        connections: u64,
        errors: Vec<Errno>,
    },
    Sink {
        app: usize,
        protocol: MsgProtocol,
        delivered: u64,
        /// Messages delivered more than once, out of order, or altered: each breaks
        /// exactly-once in-order delivery.
        disorder: Vec<Disorder>,
        /// Messages produced that never arrived, with when each was produced.
        lost: Vec<Lost>,
    },
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Disorder {
    pub t_ns: u64,
    pub id: u64,
    pub expected: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Lost {
    pub id: u64,
    pub produced_ns: u64,
}

struct Heartbeat {
    spec: HeartbeatSpec,
    host: usize,
    fd: Option<Fd>,
    next_tick: Option<SimTime>,
    unanswered: u32,
    sent: u64,
    replies: u64,
    dead_at: Option<SimTime>,
    error: Option<(SimTime, Errno)>,
}

/// The sender's side of one connection.
struct Link {
    fd: Fd,
    /// Bytes written by the protocol but not yet accepted by send().
    out: Vec<u8>,
    /// Resume: the sink's first acknowledgement arrived, so sending may start.
    resumed: bool,
    /// Partial acknowledgement bytes.
    inbuf: Vec<u8>,
}

struct Messenger {
    spec: MessengerSpec,
    host: usize,
    link: Option<Link>,
    /// Production times of the messages made so far (index = message number).
    produced: Vec<SimTime>,
    /// Next message number to put on the current connection.
    next_send: u64,
    /// Resume: the sink's acknowledged prefix; naive: what send() accepted.
    confirmed: u64,
    last_progress: SimTime,
    reconnect_at: Option<SimTime>,
    connections: u64,
    errors: Vec<Errno>,
}

struct SinkConn {
    fd: Fd,
    inbuf: Vec<u8>,
}

struct Sink {
    spec: MessageSinkSpec,
    host: usize,
    listener: Option<Fd>,
    conns: Vec<SinkConn>,
    /// Resume: the next message number expected.
    next: u64,
    delivered: Vec<u64>,
    disorder: Vec<Disorder>,
    next_tick: Option<SimTime>,
}

enum Proto {
    Heartbeat(Heartbeat),
    Messenger(Messenger),
    Sink(Sink),
}

/// The protocol applications of a run, by their index in the scenario's `[[app]]` list.
#[derive(Default)]
pub(super) struct Protocols {
    apps: Vec<(usize, Proto)>,
    /// Start times not reached yet.
    starts: Vec<(SimTime, usize)>,
}

impl Protocols {
    pub fn new(specs: &[AppSpec]) -> Protocols {
        let mut p = Protocols::default();
        for (i, spec) in specs.iter().enumerate() {
            let (at, proto) = match spec {
                AppSpec::Heartbeat(s) => (s.at, Proto::Heartbeat(Heartbeat::new(s.clone()))),
                AppSpec::Messenger(s) => (s.at, Proto::Messenger(Messenger::new(s.clone()))),
                AppSpec::MessageSink(s) => (None, Proto::Sink(Sink::new(s.clone()))),
                _ => continue,
            };
            p.starts.push((SimTime::ZERO + at.map_or(Dur::ZERO, |d| d.0), p.apps.len()));
            p.apps.push((i, proto));
        }
        p.starts.sort();
        p.starts.reverse();
        p
    }

    /// When one of them next wants to act.
    pub fn next_time(&self) -> Option<SimTime> {
        let timers = self.apps.iter().filter_map(|(_, a)| a.next_time());
        self.starts.last().map(|s| s.0).into_iter().chain(timers).min()
    }

    /// Starts and ticks everything due.
    pub fn run_due(&mut self, sim: &mut Sim<Host>) {
        let now = sim.now();
        while self.starts.last().is_some_and(|s| s.0 <= now) {
            let Some((_, k)) = self.starts.pop() else { break };
            self.apps[k].1.start(sim);
        }
        for (_, a) in &mut self.apps {
            if a.next_time().is_some_and(|t| t <= now) {
                a.tick(sim);
            }
        }
    }

    pub fn owns(&self, h: usize, fd: Fd) -> bool {
        self.apps.iter().any(|(_, a)| a.owns(h, fd))
    }

    /// Hands a woken descriptor to the application that owns it; false if none does.
    pub fn on_wakeup(&mut self, h: usize, fd: Fd, sim: &mut Sim<Host>) -> bool {
        for (_, a) in &mut self.apps {
            if a.owns(h, fd) {
                a.service(fd, sim);
                return true;
            }
        }
        false
    }

    pub fn reports(&self, now: SimTime) -> Vec<ProtocolReport> {
        self.apps.iter().map(|(i, a)| a.report(*i, &self.apps, now)).collect()
    }
}

impl Proto {
    fn next_time(&self) -> Option<SimTime> {
        match self {
            Proto::Heartbeat(h) => h.next_tick,
            Proto::Messenger(m) => m.next_time(),
            Proto::Sink(s) => s.next_tick,
        }
    }

    fn start(&mut self, sim: &mut Sim<Host>) {
        match self {
            Proto::Heartbeat(h) => h.start(sim),
            Proto::Messenger(m) => m.start(sim),
            Proto::Sink(s) => s.start(sim),
        }
    }

    fn tick(&mut self, sim: &mut Sim<Host>) {
        match self {
            Proto::Heartbeat(h) => h.tick(sim),
            Proto::Messenger(m) => m.tick(sim),
            Proto::Sink(s) => s.tick(sim),
        }
    }

    fn owns(&self, h: usize, fd: Fd) -> bool {
        match self {
            Proto::Heartbeat(x) => x.host == h && x.fd == Some(fd),
            Proto::Messenger(x) => x.host == h && x.link.as_ref().is_some_and(|l| l.fd == fd),
            Proto::Sink(x) => x.host == h && (x.listener == Some(fd) || x.conns.iter().any(|c| c.fd == fd)),
        }
    }

    fn service(&mut self, fd: Fd, sim: &mut Sim<Host>) {
        match self {
            Proto::Heartbeat(h) => h.service(sim),
            Proto::Messenger(m) => m.service(sim),
            Proto::Sink(s) => s.service(fd, sim),
        }
    }

    fn report(&self, app: usize, all: &[(usize, Proto)], now: SimTime) -> ProtocolReport {
        match self {
            Proto::Heartbeat(h) => ProtocolReport::Heartbeat {
                app,
                declared_dead_ns: h.dead_at.map(SimTime::as_nanos),
                error_ns: h.error.map(|e| e.0.as_nanos()),
                error: h.error.map(|e| e.1),
                heartbeats_sent: h.sent,
                replies: h.replies,
            },
            Proto::Messenger(m) => ProtocolReport::Messenger {
                app,
                protocol: m.spec.protocol,
                produced: m.produced.len() as u64,
                confirmed: m.confirmed,
                connections: m.connections,
                errors: m.errors.clone(),
            },
            Proto::Sink(s) => {
                // The messages produced for this sink: by every messenger sending to its port.
                let port = format!(":{}", s.spec.port);
                let produced: Vec<SimTime> = all
                    .iter()
                    .filter_map(|(_, p)| match p {
                        Proto::Messenger(m) if m.spec.to.ends_with(&port) => Some(m.produced.clone()),
                        _ => None,
                    })
                    .flatten()
                    .filter(|t| *t <= now)
                    .collect();
                let got: std::collections::BTreeSet<u64> = s.delivered.iter().copied().collect();
                let lost = (0..produced.len() as u64)
                    .filter(|id| !got.contains(id))
                    .map(|id| Lost { id, produced_ns: produced[id as usize].as_nanos() })
                    .collect();
                ProtocolReport::Sink {
                    app,
                    protocol: s.spec.protocol,
                    delivered: s.delivered.len() as u64,
                    disorder: s.disorder.clone(),
                    lost,
                }
            }
        }
    }
}

fn host_up(sim: &Sim<Host>, h: usize) -> bool {
    sim.host_state(h) == HostState::Up
}

fn set_opts(sim: &mut Sim<Host>, h: usize, fd: Fd, opts: &BTreeMap<SockOpt, OptValue>) {
    for (opt, v) in opts {
        let _ = sim.with_node(h, |n, ctx| n.sys_setsockopt(fd, *opt, v, ctx));
    }
}

/// Opens a non-blocking socket and starts connecting it to `to`.
fn connect(sim: &mut Sim<Host>, h: usize, to: &str, opts: &BTreeMap<SockOpt, OptValue>) -> Result<Fd, Errno> {
    let remote = crate::script::resolve(to, |h| sim.host_index(h).map(|i| sim.host_addr(i))).ok_or(Errno::EINVAL)?;
    let fd = sim.node_mut(h).sys_socket(true);
    set_opts(sim, h, fd, opts);
    match sim.with_node(h, |n, ctx| n.sys_connect(fd, remote, ctx)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(fd),
        Err(e) => {
            close(sim, h, fd);
            Err(e)
        }
    }
}

fn close(sim: &mut Sim<Host>, h: usize, fd: Fd) {
    let _ = sim.with_node(h, |n, ctx| n.sys_close(fd, ctx));
}

/// Reads everything readable: `Ok(true)` at EOF.
fn read_into(sim: &mut Sim<Host>, h: usize, fd: Fd, buf: &mut Vec<u8>) -> Result<bool, Errno> {
    loop {
        match sim.with_node(h, |n, ctx| n.sys_recv(fd, READ_CHUNK, RecvFlags::default(), ctx)) {
            Ok(d) if d.is_empty() => return Ok(true),
            Ok(d) => buf.extend_from_slice(&d),
            Err(Errno::EAGAIN) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Writes as much of `out` as send() takes; the error that stopped it, if any.
fn flush(sim: &mut Sim<Host>, h: usize, fd: Fd, out: &mut Vec<u8>) -> Result<(), Errno> {
    while !out.is_empty() {
        let r = sim.with_node(h, |n, ctx| n.sys_send(fd, SendData::Bytes(out.clone()), SendFlags { nosignal: true, ..SendFlags::default() }, ctx));
        match r.errno {
            None if r.ret > 0 => {
                out.drain(..r.ret as usize);
            }
            Some(Errno::EAGAIN) | None => return Ok(()),
            Some(e) => return Err(e),
        }
    }
    Ok(())
}

fn established(sim: &Sim<Host>, h: usize, fd: Fd) -> bool {
    matches!(sim.node(h).state(fd), Some(TcpState::Established | TcpState::CloseWait))
}

impl Heartbeat {
    fn new(spec: HeartbeatSpec) -> Heartbeat {
        Heartbeat { spec, host: 0, fd: None, next_tick: None, unanswered: 0, sent: 0, replies: 0, dead_at: None, error: None }
    }

    fn start(&mut self, sim: &mut Sim<Host>) {
        let Some(h) = sim.host_index(&self.spec.host) else { return };
        self.host = h;
        match connect(sim, h, &self.spec.to, &self.spec.sockopts) {
            Ok(fd) => self.fd = Some(fd),
            Err(e) => self.fail(sim.now(), e),
        }
        self.next_tick = self.spec.interval.map(|i| sim.now() + i.0);
    }

    fn done(&self) -> bool {
        self.dead_at.is_some() || self.error.is_some()
    }

    /// Sends a heartbeat, or declares the peer dead after `misses` unanswered ones.
    fn tick(&mut self, sim: &mut Sim<Host>) {
        let (Some(fd), Some(interval)) = (self.fd, self.spec.interval) else { return };
        self.next_tick = Some(sim.now() + interval.0);
        if !host_up(sim, self.host) {
            return;
        }
        if !established(sim, self.host, fd) {
            return;
        }
        if self.spec.misses > 0 && self.unanswered >= self.spec.misses {
            self.dead_at = Some(sim.now());
            self.finish(sim);
            return;
        }
        let r = sim.with_node(self.host, |n, ctx| n.sys_send(fd, SendData::Bytes(vec![b'h']), SendFlags { nosignal: true, ..SendFlags::default() }, ctx));
        match r.errno {
            None | Some(Errno::EAGAIN) => {
                self.sent += 1;
                self.unanswered += 1;
            }
            Some(e) => self.fail(sim.now(), e),
        }
        if self.done() {
            self.finish(sim);
        }
    }

    fn service(&mut self, sim: &mut Sim<Host>) {
        let Some(fd) = self.fd else { return };
        let mut buf = Vec::new();
        match read_into(sim, self.host, fd, &mut buf) {
            Ok(eof) => {
                if !buf.is_empty() {
                    self.replies += buf.len() as u64;
                    self.unanswered = 0;
                }
                if eof {
                    self.fail(sim.now(), Errno::EPIPE);
                }
            }
            Err(e) => self.fail(sim.now(), e),
        }
        if self.done() {
            self.finish(sim);
        }
    }

    fn fail(&mut self, now: SimTime, e: Errno) {
        self.error.get_or_insert((now, e));
    }

    fn finish(&mut self, sim: &mut Sim<Host>) {
        if let Some(fd) = self.fd.take() {
            close(sim, self.host, fd);
        }
        self.next_tick = None;
    }
}

impl Messenger {
    fn new(spec: MessengerSpec) -> Messenger {
        Messenger {
            spec,
            host: 0,
            link: None,
            produced: Vec::new(),
            next_send: 0,
            confirmed: 0,
            last_progress: SimTime::ZERO,
            reconnect_at: None,
            connections: 0,
            errors: Vec::new(),
        }
    }

    fn is_resume(&self) -> bool {
        self.spec.protocol == MsgProtocol::Resume
    }

    fn ack_timeout(&self) -> Dur {
        self.spec.ack_timeout.map_or(Dur::from_secs(5), |d| d.0)
    }

    /// When message `n` is produced: every `interval` from the start, shifted past the quiet
    /// period.
    fn production_time(&self, start: SimTime, n: u64) -> SimTime {
        let t = start + self.spec.interval.0.saturating_mul(n);
        match (self.spec.quiet_at, self.spec.quiet) {
            (Some(q), Some(len)) if t >= SimTime::ZERO + q.lo() => t + len.lo(),
            _ => t,
        }
    }

    fn start_time(&self) -> SimTime {
        SimTime::ZERO + self.spec.at.map_or(Dur::ZERO, |d| d.0)
    }

    fn next_production(&self) -> Option<SimTime> {
        let n = self.produced.len() as u64;
        (n < u64::from(self.spec.messages)).then(|| self.production_time(self.start_time(), n))
    }

    fn next_time(&self) -> Option<SimTime> {
        let watchdog = self
            .link
            .as_ref()
            .filter(|_| self.is_resume() && self.outstanding())
            .map(|_| self.last_progress + self.ack_timeout());
        [self.next_production(), self.reconnect_at, watchdog].into_iter().flatten().min()
    }

    fn outstanding(&self) -> bool {
        self.confirmed < self.produced.len() as u64
    }

    fn start(&mut self, sim: &mut Sim<Host>) {
        let Some(h) = sim.host_index(&self.spec.host) else { return };
        self.host = h;
        self.open(sim);
    }

    fn open(&mut self, sim: &mut Sim<Host>) {
        self.reconnect_at = None;
        match connect(sim, self.host, &self.spec.to, &BTreeMap::new()) {
            Ok(fd) => {
                self.connections += 1;
                self.link = Some(Link { fd, out: Vec::new(), resumed: false, inbuf: Vec::new() });
                self.last_progress = sim.now();
            }
            Err(e) => self.drop_link(sim, Some(e)),
        }
    }

    /// Abandons the connection (after `err`, if any) and plans the reconnect.
    fn drop_link(&mut self, sim: &mut Sim<Host>, err: Option<Errno>) {
        self.errors.extend(err);
        if let Some(l) = self.link.take() {
            close(sim, self.host, l.fd);
        }
        // Naive: what send() did not take yet is the application's; a reconnect sends it.
        if !self.is_resume() {
            self.next_send = self.confirmed;
        }
        let retry = self.spec.retry.map_or(Dur::from_secs(1), |d| d.0);
        self.reconnect_at = Some(sim.now() + retry);
    }

    fn tick(&mut self, sim: &mut Sim<Host>) {
        let now = sim.now();
        while let Some(t) = self.next_production().filter(|t| *t <= now) {
            self.produced.push(t);
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.open(sim);
        }
        let stalled = self.is_resume() && self.outstanding() && now >= self.last_progress + self.ack_timeout();
        if self.link.is_some() && stalled {
            self.drop_link(sim, None);
            return;
        }
        self.pump(sim);
    }

    fn service(&mut self, sim: &mut Sim<Host>) {
        let Some(link) = &mut self.link else { return };
        let fd = link.fd;
        let mut buf = std::mem::take(&mut link.inbuf);
        let read = read_into(sim, self.host, fd, &mut buf);
        let mut acks = Vec::new();
        while buf.len() >= ACK {
            acks.push(word(&buf[..ACK]));
            buf.drain(..ACK);
        }
        if let Some(l) = &mut self.link {
            l.inbuf = buf;
        }
        for a in acks {
            self.on_ack(a, sim.now());
        }
        match read {
            Ok(false) => self.pump(sim),
            Ok(true) => self.drop_link(sim, Some(Errno::EPIPE)),
            Err(e) => self.drop_link(sim, Some(e)),
        }
    }

    /// The sink's cumulative acknowledgement `next`: the first one on a connection says where
    /// to resume.
    fn on_ack(&mut self, next: u64, now: SimTime) {
        if next > self.confirmed {
            self.confirmed = next;
            self.last_progress = now;
        }
        if let Some(l) = &mut self.link {
            if !l.resumed {
                l.resumed = true;
                self.next_send = next;
                self.last_progress = now;
            }
        }
    }

    /// Queues every message the connection may carry, and writes what send() takes.
    fn pump(&mut self, sim: &mut Sim<Host>) {
        let resume = self.is_resume();
        let produced = self.produced.len() as u64;
        let Some(link) = &mut self.link else { return };
        if !established(sim, self.host, link.fd) || (resume && !link.resumed) {
            return;
        }
        while self.next_send < produced {
            link.out.extend_from_slice(&frame(self.next_send));
            self.next_send += 1;
        }
        let fd = link.fd;
        let res = flush(sim, self.host, fd, &mut link.out);
        if !resume {
            // Trusting send(): whatever it took counts as delivered.
            self.confirmed = self.next_send - (link.out.len() / FRAME) as u64;
        }
        if let Err(e) = res {
            self.drop_link(sim, Some(e));
        }
    }
}

impl Sink {
    fn new(spec: MessageSinkSpec) -> Sink {
        Sink { spec, host: 0, listener: None, conns: Vec::new(), next: 0, delivered: Vec::new(), disorder: Vec::new(), next_tick: None }
    }

    fn start(&mut self, sim: &mut Sim<Host>) {
        let Some(h) = sim.host_index(&self.spec.host) else { return };
        self.host = h;
        self.listen(sim);
        self.next_tick = Some(sim.now() + SINK_TICK);
    }

    fn listen(&mut self, sim: &mut Sim<Host>) {
        let h = self.host;
        let fd = sim.node_mut(h).sys_socket(true);
        let port = self.spec.port;
        let ok = sim.node_mut(h).sys_bind(fd, port).is_ok() && sim.with_node(h, |n, ctx| n.sys_listen(fd, 128, ctx)).is_ok();
        if ok {
            self.listener = Some(fd);
        } else {
            close(sim, h, fd);
        }
    }

    /// After a crash the host comes back with nothing: listen again (connections are gone).
    fn tick(&mut self, sim: &mut Sim<Host>) {
        self.next_tick = Some(sim.now() + SINK_TICK);
        if !host_up(sim, self.host) {
            return;
        }
        let lost_listener = self.listener.is_some_and(|fd| sim.node(self.host).view(fd).is_none());
        if lost_listener || self.listener.is_none() {
            self.conns.clear();
            self.listener = None;
            self.listen(sim);
        }
    }

    fn service(&mut self, fd: Fd, sim: &mut Sim<Host>) {
        if self.listener == Some(fd) {
            self.accept_all(fd, sim);
        } else if let Some(i) = self.conns.iter().position(|c| c.fd == fd) {
            self.read_conn(i, sim);
        }
    }

    fn accept_all(&mut self, l: Fd, sim: &mut Sim<Host>) {
        while let Ok(fd) = sim.node_mut(self.host).sys_accept(l, true) {
            // A new connection from the sender supersedes the old ones.
            for old in self.conns.drain(..) {
                close(sim, self.host, old.fd);
            }
            self.conns.push(SinkConn { fd, inbuf: Vec::new() });
            if self.spec.protocol == MsgProtocol::Resume {
                self.ack(fd, sim);
            }
            self.read_conn(self.conns.len() - 1, sim);
        }
    }

    fn ack(&self, fd: Fd, sim: &mut Sim<Host>) {
        let mut out = self.next.to_be_bytes().to_vec();
        let _ = flush(sim, self.host, fd, &mut out);
    }

    fn read_conn(&mut self, i: usize, sim: &mut Sim<Host>) {
        let fd = self.conns[i].fd;
        let mut buf = std::mem::take(&mut self.conns[i].inbuf);
        let r = read_into(sim, self.host, fd, &mut buf);
        let whole = buf.len() / FRAME * FRAME;
        let now = sim.now();
        let got = whole > 0;
        for f in buf[..whole].chunks(FRAME) {
            self.take(word(f), word(&f[8..]), now);
        }
        buf.drain(..whole);
        self.conns[i].inbuf = buf;
        if got && self.spec.protocol == MsgProtocol::Resume {
            self.ack(fd, sim);
        }
        if !matches!(r, Ok(false)) {
            close(sim, self.host, fd);
            self.conns.remove(i);
        }
    }

    /// One message arrived. Resume drops what it already has; anything else out of order
    /// (or altered) breaks exactly-once in-order delivery and is kept as such.
    fn take(&mut self, id: u64, check: u64, now: SimTime) {
        let resume = self.spec.protocol == MsgProtocol::Resume;
        if resume && id < self.next {
            return;
        }
        if check != check_word(id) || id != self.next {
            self.disorder.push(Disorder { t_ns: now.as_nanos(), id, expected: self.next });
        }
        self.delivered.push(id);
        self.next = self.next.max(id + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_number_and_a_check() {
        let f = frame(42);
        assert_eq!(word(&f), 42);
        assert_eq!(word(&f[8..]), check_word(42));
        assert_ne!(check_word(42), check_word(43));
    }
}
