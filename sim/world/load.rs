//! Load: an `ab`-like load generator and a server of finite capacity (`[[app]]` kinds `ab`
//! and `http_server`), the two ends of the seed's "server under `ab -c 1000`" question.
//!
//! Both are event loops as the real programs are: they act when one of their sockets is
//! woken, and on their own timers (a request's timeout, the end of a request's service).
//! Neither keeps a per-connection record once the connection is done: what they learnt goes
//! into counters and the two latency samples ab prints, so a run of fifty thousand requests
//! costs no more memory than its open connections.

use crate::engine::{uniform_dur, Sim};
use crate::errno::Errno;
use crate::host::{Fd, Host, RecvFlags, SendFlags};
use crate::scenario::{AppSpec, OptValue, ServiceDist, SockOpt};
use crate::tcp::conn::SendData;
use crate::tcp::state::TcpState;
use crate::time::{Dur, SimTime};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use crate::addr::SockAddr;

/// How much one recv() asks for.
const READ_CHUNK: u32 = 64 * 1024;

/// Why a request failed: an errno's name, or [`PREMATURE_EOF`].
struct Failure(&'static str);

impl From<Errno> for Failure {
    fn from(e: Errno) -> Failure {
        Failure(e.name())
    }
}

/// The server closed the connection before any byte of the response (ab: "connection
/// closed prematurely"): no errno.
const PREMATURE_EOF: Failure = Failure("EOF");

/// Who owns a descriptor.
#[derive(Copy, Clone, Debug)]
enum Owner {
    /// Load generator `usize`'s connection.
    Ab(usize),
    /// Server `usize`'s listener.
    Listener(usize),
    /// A connection server `usize` accepted.
    Served(usize),
}

/// Something an application asked to be woken for.
#[derive(Copy, Clone, Debug)]
enum Timer {
    /// Generator `.0` starts (its first `concurrency` connections).
    AbStart(usize),
    /// The request on generator `.0`'s descriptor `.1`, started at `.2`, timed out.
    AbTimeout(usize, Fd, SimTime),
    /// Server `.0` starts listening.
    ServerStart(usize),
    /// Server `.0` finished serving the request on descriptor `.1`.
    Served(usize, Fd),
}

/// The load applications of one run.
#[derive(Default)]
pub(crate) struct Load {
    abs: Vec<Ab>,
    servers: Vec<Server>,
    owners: BTreeMap<(usize, Fd), Owner>,
    /// Pending timers by (time, order of arming): equal times fire in the order armed.
    timers: BTreeMap<(SimTime, u64), Timer>,
    armed: u64,
}

/// One `ab`.
struct Ab {
    app: usize,
    host: usize,
    to: Option<SockAddr>,
    requests: u32,
    concurrency: u32,
    request_bytes: u32,
    response_bytes: u32,
    keepalive: bool,
    timeout: Dur,
    start_interval: Dur,
    sockopts: BTreeMap<SockOpt, OptValue>,
    /// Requests started (a connection opened or a keep-alive request sent).
    started: u32,
    conns: BTreeMap<Fd, AbConn>,
    completed: u32,
    /// Failures by errno name ("EOF": the server closed before any response byte).
    failed: BTreeMap<&'static str, u32>,
    first_failure: Option<(SimTime, &'static str)>,
    connect_ns: Vec<u64>,
    latency_ns: Vec<u64>,
    last_done: SimTime,
}

/// One of ab's open connections.
struct AbConn {
    /// When the current request started (connect() for the first).
    started_at: SimTime,
    connected: bool,
    received: u32,
}

/// One finite-capacity server.
struct Server {
    app: usize,
    host: usize,
    port: u16,
    backlog: i32,
    listener: Option<Fd>,
    idle_workers: u32,
    service_time: Dur,
    service: ServiceDist,
    response_bytes: u32,
    accept_batch: Option<u32>,
    keepalive: bool,
    sockopts: BTreeMap<SockOpt, OptValue>,
    rng: ChaCha12Rng,
    /// Connections with a complete request, waiting for a worker (FIFO, as epoll reports).
    ready: VecDeque<Fd>,
    /// Accepted connections whose state is not known yet: read when a worker is free.
    woken: BTreeSet<Fd>,
    /// Accepted connections being served or waiting.
    busy: BTreeSet<Fd>,
    listener_woken: bool,
    accepted: u64,
    served: u64,
    errors: BTreeMap<Errno, u32>,
    setup_errors: Vec<Errno>,
}

impl Load {
    pub fn new(specs: &[AppSpec], sim: &Sim<Host>) -> Load {
        let mut load = Load::default();
        for (app, spec) in specs.iter().enumerate() {
            let Some(host) = sim.host_index(spec.host()) else { continue };
            match spec {
                AppSpec::Ab {
                    to, at, requests, concurrency, request_bytes, response_bytes, keepalive, timeout, start_interval, sockopts, ..
                } => {
                    let i = load.abs.len();
                    load.abs.push(Ab {
                        app,
                        host,
                        to: crate::script::resolve(to, |h| sim.host_index(h).map(|i| sim.host_addr(i))),
                        requests: *requests,
                        concurrency: *concurrency,
                        request_bytes: *request_bytes,
                        response_bytes: *response_bytes,
                        keepalive: *keepalive,
                        timeout: timeout.0,
                        start_interval: start_interval.map_or(Dur::ZERO, |d| d.0),
                        sockopts: sockopts.clone(),
                        started: 0,
                        conns: BTreeMap::new(),
                        completed: 0,
                        failed: BTreeMap::new(),
                        first_failure: None,
                        connect_ns: Vec::new(),
                        latency_ns: Vec::new(),
                        last_done: SimTime::ZERO,
                    });
                    load.arm(SimTime::ZERO + at.map_or(Dur::ZERO, |d| d.0), Timer::AbStart(i));
                }
                AppSpec::HttpServer {
                    port, backlog, workers, service_time, service, response_bytes, accept_batch, keepalive, sockopts, ..
                } => {
                    let i = load.servers.len();
                    load.servers.push(Server {
                        app,
                        host,
                        port: *port,
                        backlog: *backlog,
                        listener: None,
                        idle_workers: *workers,
                        service_time: service_time.map_or(Dur::ZERO, |d| d.0),
                        service: *service,
                        response_bytes: *response_bytes,
                        accept_batch: *accept_batch,
                        keepalive: *keepalive,
                        sockopts: sockopts.clone(),
                        rng: sim.rng_streams().stream(&format!("app/{app}")),
                        ready: VecDeque::new(),
                        woken: BTreeSet::new(),
                        busy: BTreeSet::new(),
                        listener_woken: false,
                        accepted: 0,
                        served: 0,
                        errors: BTreeMap::new(),
                        setup_errors: Vec::new(),
                    });
                    load.arm(SimTime::ZERO, Timer::ServerStart(i));
                }
                _ => {}
            }
        }
        load
    }

    fn arm(&mut self, at: SimTime, t: Timer) {
        self.timers.insert((at, self.armed), t);
        self.armed += 1;
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<SimTime> {
        self.timers.first_key_value().map(|((t, _), _)| *t)
    }

    /// Runs every timer due now.
    pub fn run_due(&mut self, sim: &mut Sim<Host>) {
        let now = sim.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            match timer {
                Timer::AbStart(i) => self.ab_ramp(i, sim),
                Timer::AbTimeout(i, fd, started) => {
                    if self.abs[i].conns.get(&fd).is_some_and(|c| c.started_at == started) {
                        self.ab_fail(i, fd, Errno::ETIMEDOUT, sim);
                    }
                }
                Timer::ServerStart(s) => self.server_start(s, sim),
                Timer::Served(s, fd) => self.served(s, fd, sim),
            }
        }
    }

    /// Acts on a wake-up of descriptor `fd` of host `h`; false if no load application owns it.
    pub fn on_wakeup(&mut self, h: usize, fd: Fd, sim: &mut Sim<Host>) -> bool {
        match self.owners.get(&(h, fd)).copied() {
            Some(Owner::Ab(i)) => self.ab_service(i, fd, sim),
            Some(Owner::Listener(s)) => {
                self.servers[s].listener_woken = true;
                self.server_pump(s, sim);
            }
            Some(Owner::Served(s)) => {
                self.servers[s].woken.insert(fd);
                self.server_pump(s, sim);
            }
            None => return false,
        }
        true
    }

    // --- ab ---

    /// Opens one connection and starts its first request (ab's `start_connect`).
    fn ab_open(&mut self, i: usize, sim: &mut Sim<Host>) {
        let ab = &mut self.abs[i];
        ab.started += 1;
        let (h, now) = (ab.host, sim.now());
        let Some(to) = ab.to else { return self.ab_count_failure(i, Errno::EADDRNOTAVAIL, now) };
        let fd = sim.node_mut(h).sys_socket(true);
        for (opt, v) in &ab.sockopts {
            let _ = sim.with_node(h, |n, ctx| n.sys_setsockopt(fd, *opt, v, ctx));
        }
        match sim.with_node(h, |n, ctx| n.sys_connect(fd, to, ctx)) {
            Err(Errno::EINPROGRESS) | Ok(()) => {}
            Err(e) => {
                let _ = sim.with_node(h, |n, ctx| n.sys_close(fd, ctx));
                self.ab_count_failure(i, e, now);
                return self.ab_next(i, sim);
            }
        }
        self.abs[i].conns.insert(fd, AbConn { started_at: now, connected: false, received: 0 });
        self.owners.insert((h, fd), Owner::Ab(i));
        let timeout = self.abs[i].timeout;
        self.arm(now + timeout, Timer::AbTimeout(i, fd, now));
        self.ab_service(i, fd, sim);
    }

    /// ab's first `concurrency` connections, opened in a loop: all at once, or one every
    /// `start_interval` (the time each connect() call takes; on loopback the handshake
    /// completes within the call, so the accept queue fills while later SYNs still come).
    fn ab_ramp(&mut self, i: usize, sim: &mut Sim<Host>) {
        let first = self.abs[i].concurrency.min(self.abs[i].requests);
        while self.abs[i].started < first {
            self.ab_open(i, sim);
            let interval = self.abs[i].start_interval;
            if interval > Dur::ZERO && self.abs[i].started < first {
                return self.arm(sim.now() + interval, Timer::AbStart(i));
            }
        }
    }

    /// Starts the next request if any is left.
    fn ab_next(&mut self, i: usize, sim: &mut Sim<Host>) {
        if self.abs[i].started < self.abs[i].requests {
            self.ab_open(i, sim);
        }
    }

    /// A connection of ab was woken: it connected (send the request), data arrived (count
    /// it; the whole response completes the request), or it failed.
    fn ab_service(&mut self, i: usize, fd: Fd, sim: &mut Sim<Host>) {
        let h = self.abs[i].host;
        let now = sim.now();
        let Some(c) = self.abs[i].conns.get_mut(&fd) else { return };
        if !c.connected && matches!(sim.node(h).state(fd), Some(TcpState::Established | TcpState::CloseWait)) {
            c.connected = true;
            let connect_ns = (now - c.started_at).as_nanos();
            self.abs[i].connect_ns.push(connect_ns);
            self.ab_send_request(i, fd, sim);
        }
        loop {
            match sim.with_node(h, |n, ctx| n.sys_recv_trunc(fd, READ_CHUNK, RecvFlags::default(), ctx)) {
                Ok(0) => {
                    // The server closed: the response is complete if any of it came.
                    let got = self.abs[i].conns.get(&fd).map_or(0, |c| c.received);
                    return if got > 0 { self.ab_done(i, fd, true, sim) } else { self.ab_fail(i, fd, PREMATURE_EOF, sim) };
                }
                Ok(n) => {
                    let ab = &mut self.abs[i];
                    let Some(c) = ab.conns.get_mut(&fd) else { return };
                    c.received += n;
                    // With keep-alive the Content-Length ends the response; without, ab
                    // reads until the server closes (so the server, not ab, has TIME_WAIT).
                    if ab.keepalive && c.received >= ab.response_bytes {
                        return self.ab_done(i, fd, false, sim);
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(e) => return self.ab_fail(i, fd, e, sim),
            }
        }
    }

    fn ab_send_request(&mut self, i: usize, fd: Fd, sim: &mut Sim<Host>) {
        let (h, len) = (self.abs[i].host, self.abs[i].request_bytes);
        let r = sim.with_node(h, |n, ctx| n.sys_send(fd, SendData::Derived(len), SendFlags { nosignal: true, ..SendFlags::default() }, ctx));
        if let Some(e) = r.errno {
            self.ab_fail(i, fd, e, sim);
        }
    }

    /// A response arrived whole: the request completed.
    fn ab_done(&mut self, i: usize, fd: Fd, closed_by_peer: bool, sim: &mut Sim<Host>) {
        let now = sim.now();
        let ab = &mut self.abs[i];
        let Some(c) = ab.conns.get_mut(&fd) else { return };
        ab.latency_ns.push((now - c.started_at).as_nanos());
        ab.completed += 1;
        ab.last_done = now;
        if ab.keepalive && !closed_by_peer && ab.started < ab.requests {
            ab.started += 1;
            c.started_at = now;
            c.received = 0;
            let timeout = ab.timeout;
            self.arm(now + timeout, Timer::AbTimeout(i, fd, now));
            return self.ab_send_request(i, fd, sim);
        }
        self.ab_close(i, fd, sim);
        self.ab_next(i, sim);
    }

    /// The request on `fd` failed with `e`: counted, the connection closed, the next begun.
    fn ab_fail(&mut self, i: usize, fd: Fd, e: impl Into<Failure>, sim: &mut Sim<Host>) {
        if !self.abs[i].conns.contains_key(&fd) {
            return;
        }
        self.ab_count_failure(i, e, sim.now());
        self.ab_close(i, fd, sim);
        self.ab_next(i, sim);
    }

    fn ab_count_failure(&mut self, i: usize, e: impl Into<Failure>, now: SimTime) {
        let e = e.into().0;
        let ab = &mut self.abs[i];
        *ab.failed.entry(e).or_default() += 1;
        ab.first_failure.get_or_insert((now, e));
        ab.last_done = now;
    }

    fn ab_close(&mut self, i: usize, fd: Fd, sim: &mut Sim<Host>) {
        let h = self.abs[i].host;
        self.abs[i].conns.remove(&fd);
        self.owners.remove(&(h, fd));
        let _ = sim.with_node(h, |n, ctx| n.sys_close(fd, ctx));
    }

    // --- the server ---

    fn server_start(&mut self, s: usize, sim: &mut Sim<Host>) {
        let srv = &mut self.servers[s];
        let h = srv.host;
        let fd = sim.node_mut(h).sys_socket(true);
        for (opt, v) in &srv.sockopts {
            if let Err(e) = sim.with_node(h, |n, ctx| n.sys_setsockopt(fd, *opt, v, ctx)) {
                srv.setup_errors.push(e);
            }
        }
        if let Err(e) = sim.node_mut(h).sys_bind(fd, srv.port) {
            srv.setup_errors.push(e);
        }
        let backlog = srv.backlog;
        if let Err(e) = sim.with_node(h, |n, ctx| n.sys_listen(fd, backlog, ctx)) {
            srv.setup_errors.push(e);
        }
        srv.listener = Some(fd);
        self.owners.insert((h, fd), Owner::Listener(s));
    }

    /// What an idle worker does: accept a batch, read the requests that arrived, and take
    /// the oldest waiting request. A server whose workers are all busy does nothing.
    fn server_pump(&mut self, s: usize, sim: &mut Sim<Host>) {
        if self.servers[s].idle_workers == 0 {
            return;
        }
        if std::mem::take(&mut self.servers[s].listener_woken) {
            self.server_accept(s, sim);
        }
        let woken = std::mem::take(&mut self.servers[s].woken);
        for fd in woken {
            self.server_read(s, fd, sim);
        }
        while self.servers[s].idle_workers > 0 {
            let Some(fd) = self.servers[s].ready.pop_front() else { break };
            let srv = &mut self.servers[s];
            srv.idle_workers -= 1;
            let t = match srv.service {
                ServiceDist::Fixed => srv.service_time,
                ServiceDist::Uniform => uniform_dur(&mut srv.rng, srv.service_time.saturating_mul(2)),
            };
            self.arm(sim.now() + t, Timer::Served(s, fd));
        }
    }

    /// accept4() until EAGAIN or a batch is full (`epoll` + `accept4` servers).
    fn server_accept(&mut self, s: usize, sim: &mut Sim<Host>) {
        let (h, Some(lfd)) = (self.servers[s].host, self.servers[s].listener) else { return };
        let batch = self.servers[s].accept_batch.unwrap_or(u32::MAX);
        let mut n = 0;
        while n < batch {
            match sim.node_mut(h).sys_accept(lfd, true) {
                Ok(fd) => {
                    n += 1;
                    self.servers[s].accepted += 1;
                    self.owners.insert((h, fd), Owner::Served(s));
                    self.servers[s].woken.insert(fd);
                }
                Err(_) => return,
            }
        }
        // The batch was full: more may wait; the next idle moment accepts them.
        self.servers[s].listener_woken = true;
    }

    /// Reads what arrived on an accepted connection: a request queues it for a worker; EOF
    /// or an error closes it.
    fn server_read(&mut self, s: usize, fd: Fd, sim: &mut Sim<Host>) {
        let h = self.servers[s].host;
        if self.servers[s].busy.contains(&fd) {
            return;
        }
        let mut got = 0u64;
        loop {
            match sim.with_node(h, |n, ctx| n.sys_recv_trunc(fd, READ_CHUNK, RecvFlags::default(), ctx)) {
                Ok(0) => return self.server_close(s, fd, sim),
                Ok(n) => got += u64::from(n),
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    *self.servers[s].errors.entry(e).or_default() += 1;
                    return self.server_close(s, fd, sim);
                }
            }
        }
        if got > 0 {
            self.servers[s].busy.insert(fd);
            self.servers[s].ready.push_back(fd);
        }
    }

    /// A worker finished a request: the response is written, the connection closed (or kept
    /// for the next request), and the worker looks for more work.
    fn served(&mut self, s: usize, fd: Fd, sim: &mut Sim<Host>) {
        let srv = &mut self.servers[s];
        let h = srv.host;
        srv.idle_workers += 1;
        srv.busy.remove(&fd);
        srv.served += 1;
        let len = srv.response_bytes;
        let r = sim.with_node(h, |n, ctx| n.sys_send(fd, SendData::Derived(len), SendFlags { nosignal: true, ..SendFlags::default() }, ctx));
        if let Some(e) = r.errno {
            *self.servers[s].errors.entry(e).or_default() += 1;
            self.server_close(s, fd, sim);
        } else if self.servers[s].keepalive {
            self.servers[s].woken.insert(fd);
        } else {
            self.server_close(s, fd, sim);
        }
        // The worker is back in epoll_wait: whatever became ready meanwhile is handled now.
        self.servers[s].listener_woken = true;
        self.server_pump(s, sim);
    }

    fn server_close(&mut self, s: usize, fd: Fd, sim: &mut Sim<Host>) {
        let h = self.servers[s].host;
        self.servers[s].busy.remove(&fd);
        self.owners.remove(&(h, fd));
        let _ = sim.with_node(h, |n, ctx| n.sys_close(fd, ctx));
    }

    /// ab's summaries and the servers' counts, for the run report.
    pub fn reports(&self, sim: &Sim<Host>) -> Vec<LoadReport> {
        let abs = self.abs.iter().map(|ab| LoadReport::Ab(ab.report(sim)));
        let servers = self.servers.iter().map(|s| {
            LoadReport::Server(ServerReport {
                app: s.app,
                host: sim.host_name(s.host).to_string(),
                accepted: s.accepted,
                served: s.served,
                errors: s.errors.iter().map(|(e, n)| (e.name().to_string(), *n)).collect(),
                setup_errors: s.setup_errors.clone(),
            })
        });
        abs.chain(servers).collect()
    }
}

impl Ab {
    fn report(&self, sim: &Sim<Host>) -> AbReport {
        AbReport {
            app: self.app,
            host: sim.host_name(self.host).to_string(),
            requests: self.requests,
            concurrency: self.concurrency,
            completed: self.completed,
            failed: self.failed.values().sum(),
            failed_by_errno: self.failed.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
            first_failure: self.first_failure.map(|(t, e)| FirstFailure { t_ns: t.as_nanos(), errno: e.to_string() }),
            not_finished: self.conns.len() as u32 + (self.requests - self.started),
            last_done_ns: self.last_done.as_nanos(),
            connect_ns: Percentiles::of(&self.connect_ns),
            latency_ns: Percentiles::of(&self.latency_ns),
        }
    }
}

/// What a load application reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoadReport {
    Ab(AbReport),
    Server(ServerReport),
}

/// ab's summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AbReport {
    pub app: usize,
    pub host: String,
    pub requests: u32,
    pub concurrency: u32,
    pub completed: u32,
    pub failed: u32,
    /// Failed requests by the errno the call returned (ECONNRESET, ETIMEDOUT…).
    pub failed_by_errno: BTreeMap<String, u32>,
    /// The first failure: where `ab` without `-r` stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<FirstFailure>,
    /// Requests neither completed nor failed when the run ended.
    pub not_finished: u32,
    /// When the last request completed or failed.
    pub last_done_ns: u64,
    /// From connect() to the connection established, per connection.
    pub connect_ns: Percentiles,
    /// From a request's start (connect() for a new connection) to its whole response.
    pub latency_ns: Percentiles,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FirstFailure {
    pub t_ns: u64,
    pub errno: String,
}

/// A server's counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerReport {
    pub app: usize,
    pub host: String,
    pub accepted: u64,
    pub served: u64,
    pub errors: BTreeMap<String, u32>,
    pub setup_errors: Vec<Errno>,
}

/// Nearest-rank percentiles of a sample, as ab's "Percentage of the requests served within".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(sample: &[u64]) -> Percentiles {
        if sample.is_empty() {
            return Percentiles::default();
        }
        let mut v = sample.to_vec();
        v.sort_unstable();
        let rank = |p: usize| v[(v.len() * p).div_ceil(100).max(1) - 1];
        Percentiles { count: v.len(), p50: rank(50), p90: rank(90), p99: rank(99), max: v[v.len() - 1] }
    }
}

impl LoadReport {
    /// ab's summary as people read it.
    pub fn to_text(&self) -> String {
        let ms = |ns: u64| format!("{:.3}", ns as f64 / 1e6);
        match self {
            LoadReport::Ab(a) => {
                let failed = if a.failed_by_errno.is_empty() {
                    String::new()
                } else {
                    let by: Vec<String> = a.failed_by_errno.iter().map(|(e, n)| format!("{e} {n}")).collect();
                    format!(" ({})", by.join(", "))
                };
                let first = a.first_failure.as_ref().map_or(String::new(), |f| {
                    format!("\n    first failure at {} s: {} (where ab without -r stops)", ms(f.t_ns / 1000), f.errno)
                });
                let pct = |p: &Percentiles| format!("p50 {} p90 {} p99 {} max {} ms", ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max));
                format!(
                    "  ab (app {}) on {}: {} requests, concurrency {}\n    complete {}, failed {}{failed}, unfinished {}; last at {} s{first}\n    connect: {}\n    total:   {}\n",
                    a.app,
                    a.host,
                    a.requests,
                    a.concurrency,
                    a.completed,
                    a.failed,
                    a.not_finished,
                    ms(a.last_done_ns / 1000),
                    pct(&a.connect_ns),
                    pct(&a.latency_ns),
                )
            }
            LoadReport::Server(s) => {
                let errs: Vec<String> = s.errors.iter().map(|(e, n)| format!("{e} {n}")).collect();
                let errs = if errs.is_empty() { "no errors".to_string() } else { errs.join(", ") };
                format!("  server (app {}) on {}: accepted {}, served {}, {errs}\n", s.app, s.host, s.accepted, s.served)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Percentiles;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=200).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.count, p.p50, p.p90, p.p99, p.max), (200, 100, 180, 198, 200));
        assert_eq!(Percentiles::of(&[7]).p99, 7);
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }
}
