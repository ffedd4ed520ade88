//! The load applications on the real kernel: `[[app]]` kinds `ab` and `http_server`, each an
//! epoll loop on one thread in its host's namespace, acting as the simulator's
//! (`sim/world/load.rs`) does so that one scenario asks the same question of both: ab keeps at
//! most `concurrency` connections open, sends each request once connected and reads the
//! response to the server's close (or to its length with keep-alive); the server accepts in
//! batches, reads a request, spends `service_time` on it with a worker, writes the response and
//! closes, and a busy server (no idle worker) neither accepts nor reads. Their reports are the
//! simulator's ([`AbReport`], [`ServerReport`]), measured in real time from the capture's start.
//!
//! A worker's service is a deadline, not a sleep of the whole thread, so `workers` > 1 serve
//! at once as the simulator's do; with one worker the thread sleeps until the deadline, with a
//! timer slack of 1 ns (`PR_SET_TIMERSLACK`) so that a 1 ms service is not 1.05 ms.

use super::apps::{new_socket, AppHost, AppRun};
use super::CaptureError;
use crate::engine::uniform_dur;
use crate::errno::Errno;
use crate::scenario::types::{OptValue, ServiceDist, SockOpt};
use crate::tcp::segment::derived_byte;
use crate::time::Dur;
use crate::world::{AbReport, Percentiles, ServerReport};
use rand_chacha::ChaCha12Rng;
use socket2::{SockAddr, Socket};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The longest a loop waits before looking at the stop flag.
const SLICE: Duration = Duration::from_millis(10);
/// How much one recv() asks for (the simulator's `READ_CHUNK`).
const READ_CHUNK: usize = 64 * 1024;

/// What `ab` is asked to do (the scenario's `ab` entry).
pub struct AbPlan {
    pub app: usize,
    pub to: SocketAddr,
    pub at: Duration,
    pub requests: u32,
    pub concurrency: u32,
    pub request_bytes: u32,
    pub response_bytes: u32,
    pub keepalive: bool,
    pub timeout: Duration,
    pub start_interval: Duration,
}

/// What the server is asked to do (the scenario's `http_server` entry).
pub struct ServerPlan {
    pub app: usize,
    pub port: u16,
    pub backlog: i32,
    pub workers: u32,
    pub service_time: Dur,
    pub service: ServiceDist,
    pub response_bytes: u32,
    pub accept_batch: Option<u32>,
    pub keepalive: bool,
    /// The app's own stream of the scenario's seed, as the simulator draws service times.
    pub rng: ChaCha12Rng,
}

/// One epoll instance (level-triggered), its events' data the descriptor.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> Result<Epoll, CaptureError> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io_error("epoll_create1"));
        }
        Ok(Epoll(fd))
    }

    fn ctl(&self, op: i32, fd: RawFd, events: u32) {
        let mut ev = libc::epoll_event { events, u64: fd as u64 };
        // SAFETY: ev is valid; a failure (fd already closed) leaves nothing to undo.
        unsafe { libc::epoll_ctl(self.0, op, fd, &mut ev) };
    }

    /// The ready descriptors and their events, waiting at most `timeout`.
    fn wait(&self, timeout: Duration) -> Vec<(RawFd, u32)> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 256];
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: evs holds evs.len() events.
        let n = unsafe { libc::epoll_wait(self.0, evs.as_mut_ptr(), evs.len() as i32, ms) };
        evs[..n.max(0) as usize].iter().map(|e| (e.u64 as RawFd, e.events)).collect()
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the epoll fd is ours.
        unsafe { libc::close(self.0) };
    }
}

fn io_error(what: &str) -> CaptureError {
    CaptureError::Io { path: what.to_string(), msg: std::io::Error::last_os_error().to_string() }
}

/// The name of `e`'s errno, as the reports count failures.
fn errno_name(e: &std::io::Error) -> &'static str {
    e.raw_os_error().and_then(Errno::from_code).map_or("unknown errno", Errno::name)
}

/// `e`'s errno; one the model does not know is a harness failure.
fn known_errno(e: &std::io::Error, what: &str) -> Result<Errno, CaptureError> {
    e.raw_os_error().and_then(Errno::from_code).ok_or_else(|| CaptureError::Io { path: what.to_string(), msg: e.to_string() })
}

/// Nanoseconds since the capture's start.
fn since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// Asks the kernel to wake this thread's sleeps on time (the default slack is 50 µs).
fn tight_timer_slack() {
    // SAFETY: plain prctl on the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
}

/// `len` bytes of the derived stream `stream`, sent at once (a request or response fits the
/// send buffer); the errno if the send failed.
fn send_derived(fd: RawFd, stream: u64, len: u32) -> Result<(), &'static str> {
    let data: Vec<u8> = (0..u64::from(len)).map(|o| derived_byte(stream, o)).collect();
    // SAFETY: data is valid for its length.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(errno_name(&std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What one recv() loop found on a connection.
enum Drained {
    /// Bytes read, more may come.
    More(u64),
    /// Bytes read, then the peer's FIN.
    Eof(u64),
    Error(&'static str),
}

/// Reads what `fd` holds until EAGAIN, EOF or an error.
fn drain(fd: RawFd, buf: &mut [u8]) -> Drained {
    let mut got = 0u64;
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            0 => return Drained::Eof(got),
            n if n > 0 => got += n as u64,
            _ => {
                let e = std::io::Error::last_os_error();
                return if e.kind() == std::io::ErrorKind::WouldBlock { Drained::More(got) } else { Drained::Error(errno_name(&e)) };
            }
        }
    }
}

/// One of ab's open connections.
struct AbConn {
    sock: Socket,
    started_at: Instant,
    connected: bool,
    received: u64,
}

/// ab's run: its connections and what it counted.
struct Ab<'a> {
    plan: &'a AbPlan,
    opts: &'a BTreeMap<SockOpt, OptValue>,
    start: Instant,
    ep: Epoll,
    conns: BTreeMap<RawFd, AbConn>,
    started: u32,
    completed: u32,
    failed: BTreeMap<&'static str, u32>,
    first_failure: Option<(u64, &'static str)>,
    connect_ns: Vec<u64>,
    latency_ns: Vec<u64>,
    last_done: u64,
}

/// Runs `ab` until `stop` is set; its summary, as the simulator reports it.
pub fn run_ab(plan: &AbPlan, opts: &BTreeMap<SockOpt, OptValue>, host: &AppHost, run: &AppRun<'_>) -> Result<AbReport, CaptureError> {
    tight_timer_slack();
    let start = run.start;
    let mut ab = Ab {
        plan,
        opts,
        start,
        ep: Epoll::new()?,
        conns: BTreeMap::new(),
        started: 0,
        completed: 0,
        failed: BTreeMap::new(),
        first_failure: None,
        connect_ns: Vec::new(),
        latency_ns: Vec::new(),
        last_done: 0,
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let first = plan.concurrency.min(plan.requests);
    let mut next_open = start + plan.at;
    while !run.stop.load(Ordering::Relaxed) && Instant::now() < run.end {
        // The ramp: the first `concurrency` connections, one every `start_interval`.
        while ab.started < first && Instant::now() >= next_open {
            ab.open()?;
            next_open += plan.start_interval;
        }
        ab.expire_timeouts();
        let until_open = if ab.started < first { next_open.saturating_duration_since(Instant::now()) } else { SLICE };
        let until_end = run.end.saturating_duration_since(Instant::now());
        for (fd, _) in ab.ep.wait(until_open.min(ab.until_timeout()).min(until_end).min(SLICE)) {
            if Instant::now() >= run.end {
                break;
            }
            ab.service(fd, &mut buf)?;
        }
    }
    Ok(ab.report(&host.name))
}

impl Ab<'_> {
    /// Opens one connection and starts its request (ab's `start_connect`).
    fn open(&mut self) -> Result<(), CaptureError> {
        self.started += 1;
        let now = Instant::now();
        let sock = new_socket(self.plan.to, self.opts)?;
        match sock.connect(&SockAddr::from(self.plan.to)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => {
                self.count_failure(errno_name(&e));
                return self.next();
            }
        }
        let fd = sock.as_raw_fd();
        self.ep.ctl(libc::EPOLL_CTL_ADD, fd, (libc::EPOLLIN | libc::EPOLLOUT) as u32);
        self.conns.insert(fd, AbConn { sock, started_at: now, connected: false, received: 0 });
        Ok(())
    }

    /// Starts the next request if any is left.
    fn next(&mut self) -> Result<(), CaptureError> {
        if self.started < self.plan.requests {
            self.open()?;
        }
        Ok(())
    }

    /// A connection was woken: it connected (send the request), data arrived (the whole
    /// response completes the request), or it failed.
    fn service(&mut self, fd: RawFd, buf: &mut [u8]) -> Result<(), CaptureError> {
        let Some(c) = self.conns.get_mut(&fd) else { return Ok(()) };
        if !c.connected {
            match c.sock.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(fd, errno_name(&e)),
            }
            // No error yet and no peer: still connecting.
            if c.sock.peer_addr().is_err() {
                return Ok(());
            }
            c.connected = true;
            self.connect_ns.push(c.started_at.elapsed().as_nanos() as u64);
            self.ep.ctl(libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32);
            if let Err(e) = send_derived(fd, u64::from(self.started), self.plan.request_bytes) {
                return self.fail(fd, e);
            }
        }
        match drain(fd, buf) {
            Drained::More(n) => {
                let c = self.conns.get_mut(&fd).expect("looked up above");
                c.received += n;
                if self.plan.keepalive && n > 0 && c.received >= u64::from(self.plan.response_bytes) {
                    return self.done(fd, false);
                }
                Ok(())
            }
            Drained::Eof(n) => {
                let c = self.conns.get_mut(&fd).expect("looked up above");
                c.received += n;
                if c.received > 0 { self.done(fd, true) } else { self.fail(fd, "EOF") }
            }
            Drained::Error(e) => self.fail(fd, e),
        }
    }

    /// A response arrived whole: the request completed.
    fn done(&mut self, fd: RawFd, closed_by_peer: bool) -> Result<(), CaptureError> {
        let now = Instant::now();
        let (keepalive, more) = (self.plan.keepalive, self.started < self.plan.requests);
        let Some(c) = self.conns.get_mut(&fd) else { return Ok(()) };
        self.latency_ns.push(now.duration_since(c.started_at).as_nanos() as u64);
        self.completed += 1;
        self.last_done = since(self.start);
        if keepalive && !closed_by_peer && more {
            self.started += 1;
            c.started_at = now;
            c.received = 0;
            if let Err(e) = send_derived(fd, u64::from(self.started), self.plan.request_bytes) {
                return self.fail(fd, e);
            }
            return Ok(());
        }
        self.close(fd);
        self.next()
    }

    /// The request on `fd` failed with `e`: counted, the connection closed, the next begun.
    fn fail(&mut self, fd: RawFd, e: &'static str) -> Result<(), CaptureError> {
        if !self.conns.contains_key(&fd) {
            return Ok(());
        }
        self.count_failure(e);
        self.close(fd);
        self.next()
    }

    fn count_failure(&mut self, e: &'static str) {
        let t = since(self.start);
        *self.failed.entry(e).or_default() += 1;
        self.first_failure.get_or_insert((t, e));
        self.last_done = t;
    }

    fn close(&mut self, fd: RawFd) {
        self.ep.ctl(libc::EPOLL_CTL_DEL, fd, 0);
        self.conns.remove(&fd); // dropping the Socket closes it
    }

    /// Fails the requests not answered within the timeout (ab's `-s`) with ETIMEDOUT.
    fn expire_timeouts(&mut self) {
        let timeout = self.plan.timeout;
        let late: Vec<RawFd> = self.conns.iter().filter(|(_, c)| c.started_at.elapsed() >= timeout).map(|(fd, _)| *fd).collect();
        for fd in late {
            let _ = self.fail(fd, Errno::ETIMEDOUT.name());
        }
    }

    /// How long until the oldest request times out.
    fn until_timeout(&self) -> Duration {
        let oldest = self.conns.values().map(|c| c.started_at).min();
        oldest.map_or(SLICE, |t| (t + self.plan.timeout).saturating_duration_since(Instant::now()))
    }

    fn report(&self, host: &str) -> AbReport {
        AbReport {
            app: self.plan.app,
            host: host.to_string(),
            requests: self.plan.requests,
            concurrency: self.plan.concurrency,
            completed: self.completed,
            failed: self.failed.values().sum(),
            failed_by_errno: self.failed.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
            first_failure: self.first_failure.map(|(t_ns, e)| crate::world::FirstFailure { t_ns, errno: e.to_string() }),
            not_finished: self.conns.len() as u32 + (self.plan.requests - self.started),
            last_done_ns: self.last_done,
            connect_ns: Percentiles::of(&self.connect_ns),
            latency_ns: Percentiles::of(&self.latency_ns),
        }
    }
}

/// The server's run.
struct Server<'a> {
    plan: &'a mut ServerPlan,
    ep: Epoll,
    listener: Option<Socket>,
    conns: BTreeMap<RawFd, Socket>,
    idle_workers: u32,
    /// Connections with a complete request, waiting for a worker (FIFO, as epoll reports).
    ready: VecDeque<RawFd>,
    /// Connections epoll reported, not read yet (read when a worker is free).
    woken: BTreeSet<RawFd>,
    /// Connections being served or waiting.
    busy: BTreeSet<RawFd>,
    /// Services in progress: (end, order) → connection.
    serving: BTreeMap<(Instant, u64), RawFd>,
    armed: u64,
    listener_woken: bool,
    accepted: u64,
    served: u64,
    errors: BTreeMap<&'static str, u32>,
    setup_errors: Vec<Errno>,
}

/// Runs the server until `stop` is set; its counts, as the simulator reports them.
pub fn run_http_server(
    plan: &mut ServerPlan,
    opts: &BTreeMap<SockOpt, OptValue>,
    host: &AppHost,
    run: &AppRun<'_>,
) -> Result<ServerReport, CaptureError> {
    tight_timer_slack();
    let idle_workers = plan.workers;
    let mut srv = Server {
        plan,
        ep: Epoll::new()?,
        listener: None,
        conns: BTreeMap::new(),
        idle_workers,
        ready: VecDeque::new(),
        woken: BTreeSet::new(),
        busy: BTreeSet::new(),
        serving: BTreeMap::new(),
        armed: 0,
        listener_woken: false,
        accepted: 0,
        served: 0,
        errors: BTreeMap::new(),
        setup_errors: Vec::new(),
    };
    srv.listen(opts, host)?;
    run.listening.fetch_add(1, Ordering::Release);
    let mut buf = vec![0u8; READ_CHUNK];
    while !run.stop.load(Ordering::Relaxed) {
        srv.finish_due();
        if srv.idle_workers == 0 {
            // Every worker is busy: nothing is accepted or read until one is done.
            let until = srv.serving.first_key_value().map_or(SLICE, |((t, _), _)| t.saturating_duration_since(Instant::now()));
            std::thread::sleep(until.min(SLICE));
            continue;
        }
        let pending = srv.listener_woken || !srv.woken.is_empty();
        let until = srv.serving.first_key_value().map_or(SLICE, |((t, _), _)| t.saturating_duration_since(Instant::now()));
        let wait = if pending { Duration::ZERO } else { until.min(SLICE) };
        let lfd = srv.listener.as_ref().map(|l| l.as_raw_fd());
        for (fd, _) in srv.ep.wait(wait) {
            if Some(fd) == lfd {
                srv.listener_woken = true;
            } else {
                srv.woken.insert(fd);
            }
        }
        srv.pump(&mut buf);
    }
    Ok(ServerReport {
        app: srv.plan.app,
        host: host.name.clone(),
        accepted: srv.accepted,
        served: srv.served,
        errors: srv.errors.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
        setup_errors: srv.setup_errors.clone(),
    })
}

impl Server<'_> {
    /// socket, options, bind and listen; a failed call is a setup error, as in the simulator.
    fn listen(&mut self, opts: &BTreeMap<SockOpt, OptValue>, host: &AppHost) -> Result<(), CaptureError> {
        let local = SocketAddr::new(host.addr, self.plan.port);
        let l = new_socket(local, opts)?;
        if let Err(e) = l.bind(&SockAddr::from(local)) {
            self.setup_errors.push(known_errno(&e, "bind")?);
        }
        if let Err(e) = l.listen(self.plan.backlog) {
            self.setup_errors.push(known_errno(&e, "listen")?);
        }
        self.ep.ctl(libc::EPOLL_CTL_ADD, l.as_raw_fd(), libc::EPOLLIN as u32);
        self.listener = Some(l);
        Ok(())
    }

    /// What an idle worker does: accept a batch, read the requests that arrived, and take the
    /// oldest waiting request.
    fn pump(&mut self, buf: &mut [u8]) {
        if std::mem::take(&mut self.listener_woken) {
            self.accept_batch();
        }
        for fd in std::mem::take(&mut self.woken) {
            self.read(fd, buf);
        }
        while self.idle_workers > 0 {
            let Some(fd) = self.ready.pop_front() else { break };
            self.idle_workers -= 1;
            let t = match self.plan.service {
                ServiceDist::Fixed => self.plan.service_time,
                ServiceDist::Uniform => uniform_dur(&mut self.plan.rng, self.plan.service_time.saturating_mul(2)),
            };
            let end = Instant::now() + Duration::from_nanos(t.as_nanos());
            self.serving.insert((end, self.armed), fd);
            self.armed += 1;
        }
    }

    /// accept4() until EAGAIN or a batch is full.
    fn accept_batch(&mut self) {
        let Some(l) = &self.listener else { return };
        let batch = self.plan.accept_batch.unwrap_or(u32::MAX);
        let mut n = 0;
        while n < batch {
            let Ok((s, _)) = l.accept() else { return };
            let _ = s.set_nonblocking(true);
            n += 1;
            self.accepted += 1;
            let fd = s.as_raw_fd();
            self.ep.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32);
            self.conns.insert(fd, s);
            self.woken.insert(fd);
        }
        // The batch was full: more may wait; the next idle moment accepts them.
        self.listener_woken = true;
    }

    /// Reads what arrived on a connection: a request queues it for a worker; EOF or an error
    /// closes it.
    fn read(&mut self, fd: RawFd, buf: &mut [u8]) {
        if self.busy.contains(&fd) || !self.conns.contains_key(&fd) {
            return;
        }
        match drain(fd, buf) {
            Drained::More(0) => {}
            Drained::More(_) => {
                self.busy.insert(fd);
                self.ready.push_back(fd);
            }
            Drained::Eof(_) => self.close(fd),
            Drained::Error(e) => {
                *self.errors.entry(e).or_default() += 1;
                self.close(fd);
            }
        }
    }

    /// Services whose time is up: the response written, the connection closed (or kept), the
    /// worker free again.
    fn finish_due(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.serving.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let fd = entry.remove();
            self.idle_workers += 1;
            self.busy.remove(&fd);
            self.served += 1;
            match send_derived(fd, self.served, self.plan.response_bytes) {
                Err(e) => {
                    *self.errors.entry(e).or_default() += 1;
                    self.close(fd);
                }
                Ok(()) if self.plan.keepalive => {
                    self.woken.insert(fd);
                }
                Ok(()) => self.close(fd),
            }
            // The worker is back in epoll_wait: whatever became ready meanwhile is handled.
            self.listener_woken = true;
        }
    }

    fn close(&mut self, fd: RawFd) {
        self.busy.remove(&fd);
        self.ep.ctl(libc::EPOLL_CTL_DEL, fd, 0);
        self.conns.remove(&fd);
    }
}
