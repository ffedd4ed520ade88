//! The scenario's long-running applications (`[[app]]`): servers that accept and read
//! (optionally echo), and clients that connect, send a number of bytes and maybe close.
//!
//! They behave as a single-threaded epoll loop would: act when a socket they own is woken,
//! never poll in a loop. Every error a call returns is kept for the run report.

use crate::engine::Sim;
use crate::errno::Errno;
use crate::host::{Fd, Host, RecvFlags, SendFlags};
use crate::scenario::{AppSpec, OptValue, SockOpt};
use crate::tcp::conn::SendData;
use crate::tcp::state::TcpState;
use super::load::Load;
use super::protocols::Protocols;
use crate::rules::Checker;
use crate::time::{Dur, SimTime};
use std::collections::BTreeMap;

/// How much one send() offers at a time: large writes are what bulk senders do.
const WRITE_CHUNK: u32 = 64 * 1024;
/// How much one recv() asks for.
const READ_CHUNK: u32 = 64 * 1024;

/// One socket an application owns, and what it has seen.
#[derive(Clone, Debug)]
pub(crate) struct AppSock {
    pub app: usize,
    pub host: usize,
    pub fd: Fd,
    pub role: Role,
    /// Bytes still to send (clients).
    pub to_send: u64,
    pub sent: u64,
    pub received: u64,
    pub eof: bool,
    pub closed: bool,
    /// The last state seen (kept when the descriptor is closed).
    pub last_state: TcpState,
    /// When the application first saw the socket in `last_state`. Applications look at a
    /// socket whenever it is woken, and the kernel wakes it on every change that matters to
    /// a program (`sk_state_change`, `sk_error_report`), so this is when that change happened.
    pub state_since: SimTime,
    /// Whether the peer sends derived bytes (a client app), so that what arrives can be
    /// checked byte by byte; a client always can (it gets its own bytes echoed).
    pub derived_peer: bool,
    /// What most sockets never have (errors, a closed connection, a breach), boxed: a
    /// million idle sockets hold none (issue 14's memory per connection).
    rare: Option<Box<AppSockRare>>,
}

/// The part of an [`AppSock`] that most sockets leave at its default.
#[derive(Clone, Debug, Default)]
pub(crate) struct AppSockRare {
    /// Errors returned by calls on this socket, in order.
    pub errors: Vec<Errno>,
    /// When a call first returned an error: the moment the application learnt of it.
    pub first_error_at: Option<SimTime>,
    /// The connection when the application closed it: the kernel keeps an orphaned
    /// connection (FIN_WAIT, TIME_WAIT) that the report still finds.
    pub closed_conn: Option<crate::host::ConnHandle>,
    /// Its (local, remote) addresses then, to pair it with its peer's socket.
    pub closed_addrs: Option<(crate::addr::SockAddr, crate::addr::SockAddr)>,
    /// The first received byte that was not the next byte of what the peer sent: when, and
    /// at which offset of the stream.
    pub prefix_breach: Option<(SimTime, u64)>,
}

/// An [`AppSockRare`] at its defaults: what a socket without the box reads.
static NO_RARE: AppSockRare = AppSockRare { errors: Vec::new(), first_error_at: None, closed_conn: None, closed_addrs: None, prefix_breach: None };

/// Rising edges of `sk_err` on a descriptor no application owns (a script's socket), as
/// the wake-ups that report them show: the time the kernel raised each error, which a
/// script may only see much later.
#[derive(Clone, Debug, Default)]
pub(crate) struct ErrWatch {
    last: Option<Errno>,
    pub raised: Vec<(SimTime, Errno)>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Listener,
    Accepted,
    Client,
}

/// (host, descriptor) → index of the application socket, for open descriptors: per host a
/// vector indexed by descriptor (a host hands out the lowest free one, so they are dense).
/// A lookup among a million sockets is one memory access and 4 bytes a socket, where an
/// ordered map walked several nodes (cache misses) and held about 40 bytes a socket.
#[derive(Default)]
struct FdIndex {
    hosts: Vec<Vec<u32>>,
}

impl FdIndex {
    /// The empty entry.
    const NONE: u32 = u32::MAX;

    fn get(&self, host: usize, fd: Fd) -> Option<usize> {
        let i = *self.hosts.get(host)?.get(fd as usize)?;
        (i != Self::NONE).then_some(i as usize)
    }

    fn insert(&mut self, host: usize, fd: Fd, i: usize) {
        if self.hosts.len() <= host {
            self.hosts.resize_with(host + 1, Vec::new);
        }
        let fds = &mut self.hosts[host];
        if fds.len() <= fd as usize {
            fds.resize(fd as usize + 1, Self::NONE);
        }
        fds[fd as usize] = u32::try_from(i).expect("fewer than 2^32 application sockets");
    }

    fn remove(&mut self, host: usize, fd: Fd) {
        if let Some(e) = self.hosts.get_mut(host).and_then(|f| f.get_mut(fd as usize)) {
            *e = Self::NONE;
        }
    }
}

/// A client connection not started yet.
struct PendingStart {
    at: SimTime,
    app: usize,
}

pub(super) struct Apps {
    specs: Vec<AppSpec>,
    /// The load generators and finite-capacity servers (their own module).
    pub(crate) load: Load,
    starts: Vec<PendingStart>,
    pub(crate) socks: Vec<AppSock>,
    /// (host, fd) → index in `socks`, for open descriptors.
    by_fd: FdIndex,
    /// Errors raised on descriptors no application owns, by (host, fd), over the whole run
    /// (a descriptor number may be reused: the report picks by lifetime).
    pub(crate) watched: BTreeMap<(usize, Fd), ErrWatch>,
    /// The applications that speak a protocol of their own (heartbeat, messages).
    pub(crate) protocols: Protocols,
}

impl Apps {
    pub fn new(specs: &[AppSpec], sim: &Sim<Host>) -> Apps {
        let mut starts = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            match spec {
                AppSpec::Server { .. } => starts.push(PendingStart { at: SimTime::ZERO, app: i }),
                AppSpec::Client { at, count, interval, .. } => {
                    let first = SimTime::ZERO + at.map_or(Dur::ZERO, |d| d.0);
                    let step = interval.map_or(Dur::ZERO, |d| d.0);
                    for k in 0..*count {
                        starts.push(PendingStart { at: first + step.saturating_mul(u64::from(k)), app: i });
                    }
                }
                _ => {}
            }
        }
        // Stable: equal start times keep file order.
        starts.sort_by_key(|s| s.at);
        starts.reverse();
        let load = Load::new(specs, sim);
        Apps {
            specs: specs.to_vec(),
            load,
            starts,
            socks: Vec::new(),
            by_fd: FdIndex::default(),
            watched: BTreeMap::new(),
            protocols: Protocols::new(specs),
        }
    }

    /// When the next application start (or a load application's timer) is due.
    pub fn next_start(&self) -> Option<SimTime> {
        self.starts.last().map(|s| s.at).into_iter().chain(self.load.next_due()).chain(self.protocols.next_time()).min()
    }

    /// Starts every application due now.
    pub fn start_due(&mut self, sim: &mut Sim<Host>) {
        let now = sim.now();
        while self.starts.last().is_some_and(|s| s.at <= now) {
            let Some(s) = self.starts.pop() else { break };
            self.start(s.app, sim);
        }
        self.load.run_due(sim);
        self.protocols.run_due(sim);
    }

    fn start(&mut self, app: usize, sim: &mut Sim<Host>) {
        match self.specs[app].clone() {
            AppSpec::Server { host, port, backlog, sockopts, .. } => {
                let Some(h) = sim.host_index(&host) else { return };
                let fd = sim.node_mut(h).sys_socket(true);
                let mut errors = apply_opts(sim, h, fd, &sockopts);
                if let Err(e) = sim.node_mut(h).sys_bind(fd, port) {
                    errors.push(e);
                }
                if let Err(e) = sim.with_node(h, |n, ctx| n.sys_listen(fd, backlog, ctx)) {
                    errors.push(e);
                }
                let now = sim.now();
                self.add(AppSock::new(app, h, fd, Role::Listener, 0, errors, now));
            }
            AppSpec::Ab { .. } | AppSpec::HttpServer { .. } => {}
            AppSpec::Client { host, to, bytes, sockopts, .. } => {
                let Some(h) = sim.host_index(&host) else { return };
                let Some(remote) = crate::script::resolve(&to, |h| sim.host_index(h).map(|i| sim.host_addr(i))) else { return };
                let fd = sim.node_mut(h).sys_socket(true);
                let mut errors = apply_opts(sim, h, fd, &sockopts);
                match sim.with_node(h, |n, ctx| n.sys_connect(fd, remote, ctx)) {
                    Err(Errno::EINPROGRESS) | Ok(()) => {}
                    Err(e) => errors.push(e),
                }
                let i = self.add(AppSock::new(app, h, fd, Role::Client, bytes, errors, sim.now()));
                self.service(i, sim);
            }
            _ => {}
        }
    }

    fn add(&mut self, s: AppSock) -> usize {
        self.by_fd.insert(s.host, s.fd, self.socks.len());
        self.socks.push(s);
        self.socks.len() - 1
    }

    /// Lets every application whose socket was woken act on it; the readiness its event
    /// loop is answered with is held against the rules first.
    pub fn on_wakeups(&mut self, sim: &mut Sim<Host>, checker: &mut Checker) {
        for h in 0..sim.host_count() {
            let woken = sim.node_mut(h).take_woken();
            for fd in woken {
                let owned = self.by_fd.get(h, fd).is_some() || self.protocols.owns(h, fd);
                if owned {
                    super::event_loop::check_answer(sim, checker, h, fd);
                }
                match self.by_fd.get(h, fd) {
                    Some(i) => self.service(i, sim),
                    None if self.load.on_wakeup(h, fd, sim) => {}
                    None if self.protocols.on_wakeup(h, fd, sim) => {}
                    None => self.watch(h, fd, sim),
                }
            }
        }
    }

    /// Notes an error newly raised on a woken descriptor no application owns.
    fn watch(&mut self, h: usize, fd: Fd, sim: &Sim<Host>) {
        let err = sim.node(h).view(fd).and_then(|v| v.err);
        let w = self.watched.entry((h, fd)).or_default();
        if let Some(e) = err.filter(|e| w.last != Some(*e)) {
            w.raised.push((sim.now(), e));
        }
        w.last = err;
    }

    /// Does what the application would do with a ready socket.
    fn service(&mut self, i: usize, sim: &mut Sim<Host>) {
        if self.socks[i].closed {
            return;
        }
        let (h, fd) = (self.socks[i].host, self.socks[i].fd);
        if let Some(st) = sim.node(h).state(fd) {
            if st != self.socks[i].last_state {
                self.socks[i].last_state = st;
                self.socks[i].state_since = sim.now();
            }
        }
        match self.socks[i].role {
            Role::Listener => self.accept_all(i, sim),
            Role::Accepted | Role::Client => {
                self.write_some(i, sim);
                self.read_all(i, sim);
                self.maybe_close(i, sim);
            }
        }
    }

    fn accept_all(&mut self, i: usize, sim: &mut Sim<Host>) {
        let app = self.socks[i].app;
        let AppSpec::Server { accept, .. } = &self.specs[app] else { return };
        if !*accept {
            return;
        }
        let (h, fd) = (self.socks[i].host, self.socks[i].fd);
        while let Ok(child) = sim.node_mut(h).sys_accept(fd, true) {
            let mut sock = AppSock::new(app, h, child, Role::Accepted, 0, Vec::new(), sim.now());
            sock.derived_peer = self.client_behind(sim, h, child);
            let j = self.add(sock);
            self.service(j, sim);
        }
    }

    fn write_some(&mut self, i: usize, sim: &mut Sim<Host>) {
        let (h, fd) = (self.socks[i].host, self.socks[i].fd);
        while self.socks[i].to_send > 0 {
            let chunk = self.socks[i].to_send.min(u64::from(WRITE_CHUNK)) as u32;
            let r = sim.with_node(h, |n, ctx| n.sys_send(fd, SendData::Derived(chunk), SendFlags { nosignal: true, ..SendFlags::default() }, ctx));
            match r.errno {
                None if r.ret > 0 => {
                    self.socks[i].to_send -= r.ret as u64;
                    self.socks[i].sent += r.ret as u64;
                }
                Some(Errno::EAGAIN) | None => return,
                Some(e) => {
                    self.socks[i].note_error(e, sim.now());
                    self.socks[i].to_send = 0;
                    return;
                }
            }
        }
    }

    fn read_all(&mut self, i: usize, sim: &mut Sim<Host>) {
        let (h, fd) = (self.socks[i].host, self.socks[i].fd);
        let echo = matches!(self.specs[self.socks[i].app], AppSpec::Server { echo: true, .. });
        loop {
            // An echo server needs the bytes, and so does the prefix invariant on a stream of
            // derived bytes; everyone else only counts them (MSG_TRUNC: no byte is generated).
            let wants_bytes = echo || (self.socks[i].derived_peer && self.socks[i].rare().prefix_breach.is_none());
            let r = if wants_bytes {
                sim.with_node(h, |n, ctx| n.sys_recv(fd, READ_CHUNK, RecvFlags::default(), ctx)).map(|d| (d.len() as u32, Some(d)))
            } else {
                sim.with_node(h, |n, ctx| n.sys_recv_trunc(fd, READ_CHUNK, RecvFlags::default(), ctx)).map(|n| (n, None))
            };
            match r {
                Ok((0, _)) => {
                    self.socks[i].eof = true;
                    return;
                }
                Ok((n, data)) => {
                    if let Some(data) = &data {
                        self.check_prefix(i, data, sim);
                    }
                    self.socks[i].received += u64::from(n);
                    if let (true, Some(data)) = (echo, data) {
                        let r = sim.with_node(h, |n, ctx| n.sys_send(fd, SendData::Bytes(data), SendFlags { nosignal: true, ..SendFlags::default() }, ctx));
                        if let Some(e) = r.errno {
                            self.socks[i].note_error(e, sim.now());
                        }
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    self.socks[i].note_error(e, sim.now());
                    self.socks[i].eof = true;
                    return;
                }
            }
        }
    }

    /// Whether the connection behind `fd` on host `h` comes from one of the client apps: the
    /// peer's host has it in its established hash, under a descriptor a client app holds.
    fn client_behind(&self, sim: &Sim<Host>, h: usize, fd: Fd) -> bool {
        let Some((local, remote)) = sim.node(h).conn_addrs(fd) else { return false };
        let Some(peer) = sim.host_by_addr(remote.ip()) else { return false };
        let Some(peer_fd) = sim.node(peer).fd_of_conn(remote, local) else { return false };
        self.by_fd.get(peer, peer_fd).is_some_and(|i| self.socks[i].role == Role::Client && !self.socks[i].closed)
    }

    /// Holds received bytes against what the peer sent: clients send derived bytes, which a
    /// server receives from the client's stream and a client gets back (echoed) from its own.
    fn check_prefix(&mut self, i: usize, data: &[u8], sim: &Sim<Host>) {
        let s = &self.socks[i];
        if s.rare().prefix_breach.is_some() || !s.derived_peer {
            return;
        }
        let Some((tx, rx)) = sim.node(s.host).conn_streams(s.fd) else { return };
        let stream = if s.role == Role::Client { tx } else { rx };
        let start = s.received;
        let bad = data.iter().zip(start..).find(|(b, off)| **b != crate::tcp::segment::derived_byte(stream, *off));
        if let Some((_, off)) = bad {
            self.socks[i].rare_mut().prefix_breach = Some((sim.now(), off));
        }
    }

    /// Clients with `close = true` close once everything is queued; every application
    /// closes a connection the peer finished (EOF) or that failed, as an event loop does.
    fn maybe_close(&mut self, i: usize, sim: &mut Sim<Host>) {
        let s = &self.socks[i];
        let (h, fd) = (s.host, s.fd);
        let connecting = matches!(sim.node(h).state(fd), Some(TcpState::SynSent | TcpState::SynRecv));
        let finished = s.eof || !s.rare().errors.is_empty();
        let wants_close = match (&self.specs[s.app], s.role) {
            (_, Role::Listener) => false,
            (AppSpec::Client { close, .. }, _) => finished || (*close && s.to_send == 0 && !connecting),
            _ => finished,
        };
        if wants_close {
            if let Some(conn) = sim.node(h).conn_handle(fd) {
                let rare = self.socks[i].rare_mut();
                rare.closed_conn = Some(conn);
                rare.closed_addrs = sim.node(h).conn_addrs(fd);
            }
            let _ = sim.with_node(h, |n, ctx| n.sys_close(fd, ctx));
            self.socks[i].closed = true;
            self.by_fd.remove(h, fd);
        }
    }
}

impl AppSock {
    fn new(app: usize, host: usize, fd: Fd, role: Role, to_send: u64, errors: Vec<Errno>, now: SimTime) -> AppSock {
        let last_state = if role == Role::Listener { TcpState::Listen } else { TcpState::Close };
        let rare = (!errors.is_empty()).then(|| Box::new(AppSockRare { errors, first_error_at: Some(now), ..AppSockRare::default() }));
        AppSock {
            app,
            host,
            fd,
            role,
            to_send,
            sent: 0,
            received: 0,
            eof: false,
            closed: false,
            last_state,
            state_since: now,
            derived_peer: role == Role::Client,
            rare,
        }
    }

    /// The errors, the closed connection and the breach (defaults when none was met).
    pub fn rare(&self) -> &AppSockRare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    fn rare_mut(&mut self) -> &mut AppSockRare {
        self.rare.get_or_insert_with(Default::default)
    }

    fn note_error(&mut self, e: Errno, now: SimTime) {
        let rare = self.rare_mut();
        rare.errors.push(e);
        rare.first_error_at.get_or_insert(now);
    }
}

fn apply_opts(sim: &mut Sim<Host>, h: usize, fd: Fd, opts: &BTreeMap<SockOpt, OptValue>) -> Vec<Errno> {
    opts.iter()
        .filter_map(|(opt, v)| sim.with_node(h, |n, ctx| n.sys_setsockopt(fd, *opt, v, ctx)).err())
        .collect()
}

