//! Runs a scenario's script with real syscalls, one step after the other, on the calling thread,
//! and logs every step's result as an [`Observation`].
//!
//! Sockets are created inside their host's namespace (the thread `setns`es in, creates the
//! socket, and moves back: a socket keeps the namespace it was made in). SIGPIPE is blocked on
//! this thread, so a send that raises it leaves it pending; the runner takes it with
//! `sigtimedwait` after each send and logs `sigpipe: true` (a blocked signal is kept pending even
//! though Rust programs ignore SIGPIPE: kernel/signal.c `sig_ignored` never ignores a blocked
//! signal).

use super::netns::{self, Lab};
use super::observe::{errno_of, event_names};
use super::CaptureError;
use crate::scenario::types::{
    EpollOp, FaultKind, IoctlReq, MsgFlag, Observation, OptValue, Scenario, ShutHow, SockOpt, Step,
};
use crate::scenario::units::DurSpec;
use crate::socket::view::PollMask;
use crate::tcp::segment::derived_byte;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Instant;

/// `TCP_RTO_MAX_MS` (include/uapi/linux/tcp.h, 6.15+); not in libc yet.
const TCP_RTO_MAX_MS: libc::c_int = 44;
/// `SIOCOUTQNSD` (include/uapi/linux/sockios.h).
const SIOCOUTQNSD: libc::c_ulong = 0x894B;
/// An `until_error` send stops after this many bytes even if the call never fails (a safety
/// bound for a receiver that keeps draining).
const UNTIL_ERROR_MAX_BYTES: u64 = 256 << 20;

/// A socket of the script, on its host.
struct SockEntry {
    host: usize,
    sock: Socket,
    /// Bytes sent so far: the offset of the next derived byte.
    sent: u64,
    /// The derived-payload stream of this socket (its position among the script's sockets).
    stream: u64,
}

/// The fds of the script's open sockets and the host of each, shared with the caller's
/// watchdog (which shuts them down to free a call blocked past the scenario's duration) and its
/// timed faults (a crash aborts the host's sockets). A socket leaves the map (under the lock)
/// before its fd is closed, so neither ever touches a reused fd.
pub type LiveFds = Mutex<BTreeMap<RawFd, usize>>;

/// The script's live objects and the run's clock.
struct Runner<'a> {
    lab: &'a Mutex<Lab>,
    live: &'a LiveFds,
    home: File,
    socks: BTreeMap<String, SockEntry>,
    /// Names of sockets closed (or lost in a crash): later calls on them fail with EBADF, as
    /// they would on a closed fd.
    closed: BTreeSet<String>,
    /// Epoll instances, with the socket name of each registered fd (for reporting).
    eps: BTreeMap<String, (OwnedFd, BTreeMap<RawFd, String>)>,
    start: Instant,
    next_stream: u64,
}

/// The sockets and epoll instances still open when the script ends. The caller drops them
/// (closing them) only after stopping the capture, so that the pcap shows the scenario and not
/// the harness's teardown (FINs and RSTs of the closing sockets).
pub struct OpenAtEnd {
    _socks: BTreeMap<String, SockEntry>,
    _eps: BTreeMap<String, (OwnedFd, BTreeMap<RawFd, String>)>,
}

/// Runs `sc.script`; returns one observation per step. Stops at the first step that cannot be
/// carried out at all (an unknown socket, a failed fault command); a syscall that fails is
/// not such a step: its errno is the observation.
pub fn run_script(
    sc: &Scenario,
    lab: &Mutex<Lab>,
    live: &LiveFds,
    start: Instant,
) -> Result<(Vec<Observation>, OpenAtEnd), CaptureError> {
    block_sigpipe();
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(|e| CaptureError::Io { path: "/proc/thread-self/ns/net".into(), msg: e.to_string() })?;
    let mut r = Runner {
        lab,
        live,
        home,
        socks: BTreeMap::new(),
        closed: BTreeSet::new(),
        eps: BTreeMap::new(),
        start,
        next_stream: 0,
    };
    let mut obs = Vec::with_capacity(sc.script.len());
    for (i, step) in sc.script.iter().enumerate() {
        let mut o = r.closed_sock(step).map_or_else(|| r.step(step), Ok).map_err(|e| match e {
            CaptureError::Scenario(msg) => {
                CaptureError::Scenario(format!("script step {i} (`{}`): {msg}", step.op()))
            }
            other => other,
        })?;
        o.step = i;
        o.op = step.op().to_string();
        o.t_ns = r.start.elapsed().as_nanos() as u64;
        obs.push(o);
    }
    Ok((obs, OpenAtEnd { _socks: r.socks, _eps: r.eps }))
}

/// Blocks SIGPIPE on this thread only.
fn block_sigpipe() {
    // SAFETY: plain sigset manipulation on a local set; pthread_sigmask affects this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Takes a pending SIGPIPE, if the last call raised one.
fn take_sigpipe() -> bool {
    // SAFETY: as above; a zero timeout makes sigtimedwait a non-blocking poll of the pending set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGPIPE
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The observation of a call that returned `ret` (-1 meaning failure with `errno`).
fn result(ret: i64) -> Observation {
    if ret < 0 {
        let (errno, value) = errno_of(last_errno());
        Observation { ret: Some(-1), errno, value, ..Default::default() }
    } else {
        Observation { ret: Some(ret), ..Default::default() }
    }
}

fn io_result(r: std::io::Result<()>) -> Observation {
    match r {
        Ok(()) => Observation { ret: Some(0), ..Default::default() },
        Err(e) => {
            let (errno, value) = errno_of(e.raw_os_error().unwrap_or(0));
            Observation { ret: Some(-1), errno, value, ..Default::default() }
        }
    }
}

fn msg_flags(flags: &[MsgFlag]) -> libc::c_int {
    flags.iter().fold(0, |acc, f| {
        acc | match f {
            MsgFlag::MSG_PEEK => libc::MSG_PEEK,
            MsgFlag::MSG_DONTWAIT => libc::MSG_DONTWAIT,
            MsgFlag::MSG_NOSIGNAL => libc::MSG_NOSIGNAL,
            MsgFlag::MSG_WAITALL => libc::MSG_WAITALL,
        }
    })
}

/// A poll/epoll timeout in ms: absent means 0 (an observation, never an unbounded wait).
fn timeout_ms(t: &Option<DurSpec>) -> libc::c_int {
    t.map_or(0, |d| d.0.as_nanos().div_ceil(1_000_000).min(i32::MAX as u64) as libc::c_int)
}

/// An event-name list as a mask; `EPOLLET`/`EPOLLONESHOT`/`EPOLLEXCLUSIVE`/`EPOLLWAKEUP` included.
fn event_mask(names: &[String]) -> Result<u32, CaptureError> {
    names.iter().try_fold(0u32, |acc, n| {
        let bit = match n.as_str() {
            "EPOLLET" => libc::EPOLLET as u32,
            "EPOLLONESHOT" => libc::EPOLLONESHOT as u32,
            "EPOLLEXCLUSIVE" => libc::EPOLLEXCLUSIVE as u32,
            "EPOLLWAKEUP" => libc::EPOLLWAKEUP as u32,
            _ => PollMask::from_name(n)
                .map(|m| m.0)
                .ok_or_else(|| CaptureError::Scenario(format!("unknown event `{n}`")))?,
        };
        Ok(acc | bit)
    })
}

fn sockopt_name(opt: SockOpt) -> (libc::c_int, libc::c_int) {
    use SockOpt::*;
    match opt {
        SO_ERROR => (libc::SOL_SOCKET, libc::SO_ERROR),
        SO_KEEPALIVE => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        SO_LINGER => (libc::SOL_SOCKET, libc::SO_LINGER),
        SO_SNDBUF => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        SO_RCVBUF => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        SO_RCVLOWAT => (libc::SOL_SOCKET, libc::SO_RCVLOWAT),
        TCP_KEEPIDLE => (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
        TCP_KEEPINTVL => (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
        TCP_KEEPCNT => (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
        TCP_USER_TIMEOUT => (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
        TCP_SYNCNT => (libc::IPPROTO_TCP, libc::TCP_SYNCNT),
        TCP_NODELAY => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        TCP_NOTSENT_LOWAT => (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT),
        TCP_RTO_MAX_MS => (libc::IPPROTO_TCP, self::TCP_RTO_MAX_MS),
        TCP_CONGESTION => (libc::IPPROTO_TCP, libc::TCP_CONGESTION),
        TCP_INFO => (libc::IPPROTO_TCP, libc::TCP_INFO),
    }
}

/// The TCP_INFO fields a comparison with the model can use (include/uapi/linux/tcp.h).
fn tcp_info_json(i: &libc::tcp_info) -> serde_json::Value {
    serde_json::json!({
        "state": i.tcpi_state, "ca_state": i.tcpi_ca_state, "retransmits": i.tcpi_retransmits,
        "probes": i.tcpi_probes, "backoff": i.tcpi_backoff, "rto_us": i.tcpi_rto, "ato_us": i.tcpi_ato,
        "snd_mss": i.tcpi_snd_mss, "rcv_mss": i.tcpi_rcv_mss, "unacked": i.tcpi_unacked,
        "lost": i.tcpi_lost, "retrans": i.tcpi_retrans, "rtt_us": i.tcpi_rtt, "rttvar_us": i.tcpi_rttvar,
        "snd_cwnd": i.tcpi_snd_cwnd, "snd_ssthresh": i.tcpi_snd_ssthresh, "total_retrans": i.tcpi_total_retrans,
        "last_data_sent_ms": i.tcpi_last_data_sent, "last_data_recv_ms": i.tcpi_last_data_recv,
        "last_ack_recv_ms": i.tcpi_last_ack_recv,
    })
}

/// The socket a step operates on, if any.
fn step_sock(step: &Step) -> Option<&str> {
    match step {
        Step::Bind { sock, .. }
        | Step::Listen { sock, .. }
        | Step::Connect { sock, .. }
        | Step::Accept { sock, .. }
        | Step::Send { sock, .. }
        | Step::Recv { sock, .. }
        | Step::Shutdown { sock, .. }
        | Step::Close { sock }
        | Step::Setsockopt { sock, .. }
        | Step::Getsockopt { sock, .. }
        | Step::Ioctl { sock, .. }
        | Step::Poll { sock, .. }
        | Step::EpollCtl { sock, .. } => Some(sock),
        _ => None,
    }
}

impl Runner<'_> {
    /// A call on a closed socket: `-1 EBADF` without a syscall (its fd number may be reused).
    fn closed_sock(&self, step: &Step) -> Option<Observation> {
        let sock = step_sock(step).filter(|s| self.closed.contains(*s) && !self.socks.contains_key(*s))?;
        let (errno, _) = errno_of(libc::EBADF);
        Some(Observation { sock: Some(sock.to_string()), ret: Some(-1), errno, ..Default::default() })
    }

    fn add_sock(&mut self, name: &str, host: usize, sock: Socket) {
        let stream = self.next_stream;
        self.next_stream += 1;
        self.live.lock().expect("watchdog never panics holding it").insert(sock.as_raw_fd(), host);
        self.closed.remove(name);
        // A name reused for a new socket closes the old one.
        if let Some(old) = self.socks.insert(name.to_string(), SockEntry { host, sock, sent: 0, stream }) {
            self.forget_fd(old.sock.as_raw_fd());
        }
    }

    /// Takes a socket out of the script (close or crash): it leaves the watchdog's set first.
    fn take_sock(&mut self, name: &str) -> Option<SockEntry> {
        let e = self.socks.remove(name)?;
        self.forget_fd(e.sock.as_raw_fd());
        self.closed.insert(name.to_string());
        Some(e)
    }

    fn forget_fd(&mut self, fd: RawFd) {
        self.live.lock().expect("watchdog never panics holding it").remove(&fd);
        for (_, names) in self.eps.values_mut() {
            names.remove(&fd);
        }
    }

    /// The lab, locked (the timed-fault thread shares it).
    fn lab(&self) -> std::sync::MutexGuard<'_, Lab> {
        self.lab.lock().expect("no thread panics holding the lab")
    }

    fn host_index(&self, name: &str) -> Option<usize> {
        self.lab().host_index(name)
    }

    fn fd(&self, name: &str) -> Result<RawFd, CaptureError> {
        self.socks
            .get(name)
            .map(|e| e.sock.as_raw_fd())
            .ok_or_else(|| CaptureError::Scenario(format!("no open socket `{name}`")))
    }

    fn entry(&mut self, name: &str) -> Result<&mut SockEntry, CaptureError> {
        self.socks.get_mut(name).ok_or_else(|| CaptureError::Scenario(format!("no open socket `{name}`")))
    }

    /// `host:port` with a scenario host name or a literal address.
    fn resolve(&self, to: &str) -> Result<SocketAddrV4, CaptureError> {
        let lab = self.lab();
        let addrs: Vec<_> = lab.hosts.iter().map(|h| (h.name.clone(), h.addr)).collect();
        resolve(&addrs, to)
    }

    fn step(&mut self, step: &Step) -> Result<Observation, CaptureError> {
        let sock_of = |s: &str| Some(s.to_string());
        Ok(match step {
            Step::Socket { host, sock, nonblocking } => {
                let h = self
                    .host_index(host)
                    .ok_or_else(|| CaptureError::Scenario(format!("unknown host `{host}`")))?;
                netns::enter(&self.lab().hosts[h].fd)?;
                let made = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP));
                netns::enter(&self.home)?;
                let s = made.map_err(|e| CaptureError::Io { path: "socket()".into(), msg: e.to_string() })?;
                if *nonblocking {
                    s.set_nonblocking(true)
                        .map_err(|e| CaptureError::Io { path: "O_NONBLOCK".into(), msg: e.to_string() })?;
                }
                self.add_sock(sock, h, s);
                Observation { sock: sock_of(sock), ret: Some(0), ..Default::default() }
            }
            Step::Bind { sock, port } => {
                let e = self.entry(sock)?;
                let host = e.host;
                let addr = SocketAddrV4::new(self.lab().hosts[host].addr, *port);
                let r = self.socks[sock].sock.bind(&SockAddr::from(addr));
                Observation { sock: sock_of(sock), ..io_result(r) }
            }
            Step::Listen { sock, backlog } => {
                let r = self.entry(sock)?.sock.listen(*backlog);
                Observation { sock: sock_of(sock), ..io_result(r) }
            }
            Step::Connect { sock, to } => {
                let addr = self.resolve(to)?;
                let r = self.entry(sock)?.sock.connect(&SockAddr::from(addr));
                Observation { sock: sock_of(sock), ..io_result(r) }
            }
            Step::Accept { sock, new } => {
                let host = self.entry(sock)?.host;
                match self.socks[sock].sock.accept() {
                    // ret 0, not the fd: fd numbers are not comparable with the model's.
                    Ok((s, _)) => {
                        self.add_sock(new, host, s);
                        Observation { sock: sock_of(sock), ret: Some(0), ..Default::default() }
                    }
                    Err(e) => Observation { sock: sock_of(sock), ..io_result(Err(e)) },
                }
            }
            Step::Send { sock, len, data, flags, until_error } => {
                self.send(sock, *len, data.as_deref(), flags, *until_error)?
            }
            Step::Recv { sock, len, flags } => {
                let fd = self.fd(sock)?;
                let mut buf = vec![0u8; *len as usize];
                // SAFETY: buf is valid for len bytes.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), msg_flags(flags)) };
                Observation { sock: sock_of(sock), ..result(n as i64) }
            }
            Step::Shutdown { sock, how } => {
                let fd = self.fd(sock)?;
                let how = match how {
                    ShutHow::SHUT_RD => libc::SHUT_RD,
                    ShutHow::SHUT_WR => libc::SHUT_WR,
                    ShutHow::SHUT_RDWR => libc::SHUT_RDWR,
                };
                // SAFETY: shutdown(2) on an open fd.
                let r = unsafe { libc::shutdown(fd, how) };
                Observation { sock: sock_of(sock), ..result(r as i64) }
            }
            Step::Close { sock } => {
                let e = self
                    .take_sock(sock)
                    .ok_or_else(|| CaptureError::Scenario(format!("no open socket `{sock}`")))?;
                let fd = std::os::fd::IntoRawFd::into_raw_fd(e.sock);
                // SAFETY: we own fd (taken out of the Socket) and close it exactly once.
                let r = unsafe { libc::close(fd) };
                Observation { sock: sock_of(sock), ..result(r as i64) }
            }
            Step::Setsockopt { sock, opt, value } => self.setsockopt(sock, *opt, value)?,
            Step::Getsockopt { sock, opt } => self.getsockopt(sock, *opt)?,
            Step::Ioctl { sock, req } => {
                let fd = self.fd(sock)?;
                let code = match req {
                    IoctlReq::FIONREAD => libc::FIONREAD,
                    IoctlReq::SIOCOUTQ => libc::TIOCOUTQ,
                    IoctlReq::SIOCOUTQNSD => SIOCOUTQNSD,
                };
                let mut v: libc::c_int = 0;
                // SAFETY: these requests write one int.
                let r = unsafe { libc::ioctl(fd, code as _, &mut v) };
                let mut o = result(r as i64);
                if r == 0 {
                    o.value = Some(v.into());
                }
                Observation { sock: sock_of(sock), ..o }
            }
            Step::Poll { sock, events, timeout } => {
                let fd = self.fd(sock)?;
                let mut p = libc::pollfd { fd, events: event_mask(events)? as i16, revents: 0 };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, timeout_ms(timeout)) };
                let mut o = result(r as i64);
                if r >= 0 {
                    o.events = Some(event_names(p.revents as u16 as u32));
                }
                Observation { sock: sock_of(sock), ..o }
            }
            Step::EpollCreate { ep } => {
                // SAFETY: epoll_create1 has no pointer arguments.
                let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
                if fd >= 0 {
                    // SAFETY: fd was just returned to us and is owned from here on.
                    self.eps.insert(ep.clone(), (unsafe { OwnedFd::from_raw_fd(fd) }, BTreeMap::new()));
                }
                result(if fd >= 0 { 0 } else { -1 })
            }
            Step::EpollCtl { ep, sock, action, events } => {
                let fd = self.fd(sock)?;
                let mask = event_mask(events)?;
                let (epfd, names) =
                    self.eps.get_mut(ep).ok_or_else(|| CaptureError::Scenario(format!("no epoll `{ep}`")))?;
                let op = match action {
                    EpollOp::Add => libc::EPOLL_CTL_ADD,
                    EpollOp::Mod => libc::EPOLL_CTL_MOD,
                    EpollOp::Del => libc::EPOLL_CTL_DEL,
                };
                let mut ev = libc::epoll_event { events: mask, u64: fd as u64 };
                // SAFETY: valid epoll fd, socket fd and event.
                let r = unsafe { libc::epoll_ctl(epfd.as_raw_fd(), op, fd, &mut ev) };
                if r == 0 {
                    match action {
                        EpollOp::Del => names.remove(&fd),
                        _ => names.insert(fd, sock.clone()),
                    };
                }
                Observation { sock: sock_of(sock), ..result(r as i64) }
            }
            Step::EpollWait { ep, timeout, max } => {
                let (epfd, names) =
                    self.eps.get(ep).ok_or_else(|| CaptureError::Scenario(format!("no epoll `{ep}`")))?;
                let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; (*max).max(1) as usize];
                // SAFETY: evs holds max entries.
                let n = unsafe {
                    libc::epoll_wait(
                        epfd.as_raw_fd(),
                        evs.as_mut_ptr(),
                        evs.len() as i32,
                        timeout_ms(timeout),
                    )
                };
                let mut o = result(n as i64);
                if n >= 0 {
                    let ready: Vec<_> =
                        evs[..n as usize].iter().map(|e| (e.u64 as RawFd, e.events)).collect();
                    // The first ready socket's events (a one-socket wait, as in the table); all of
                    // them by socket in `value` when more than one is ready.
                    o.events = Some(ready.first().map_or_else(Vec::new, |&(_, m)| event_names(m)));
                    if ready.len() > 1 {
                        o.value = Some(serde_json::json!(ready
                            .iter()
                            .map(|(fd, m)| serde_json::json!({
                                "sock": names.get(fd).cloned().unwrap_or_default(),
                                "events": event_names(*m),
                            }))
                            .collect::<Vec<_>>()));
                    }
                }
                o
            }
            // Linux has no kqueue: the call a FreeBSD program would make fails as an unknown
            // syscall does.
            Step::Kevent { sock, .. } => Observation {
                sock: sock_of(sock),
                ret: Some(-1),
                errno: Some(crate::errno::Errno::ENOSYS),
                ..Default::default()
            },
            Step::Sleep { dur } => {
                std::thread::sleep(std::time::Duration::from_nanos(dur.0.as_nanos()));
                Observation { ret: Some(0), ..Default::default() }
            }
            Step::Fault { kind, link, host, drop, direction } => {
                self.lab().apply_fault(*kind, link.as_deref(), host.as_deref(), *drop, *direction)?;
                if *kind == FaultKind::Crash {
                    self.crash(host.as_deref().unwrap_or_default());
                }
                Observation { ret: Some(0), ..Default::default() }
            }
        })
    }

    /// A crashed host loses every socket: each is aborted with SO_LINGER {1,0} and closed (tcp.c
    /// `__tcp_close` → `tcp_disconnect`, an RST that the crash's drop rules swallow).
    fn crash(&mut self, host: &str) {
        let Some(h) = self.host_index(host) else { return };
        let names: Vec<String> =
            self.socks.iter().filter(|(_, e)| e.host == h).map(|(n, _)| n.clone()).collect();
        for n in names {
            if let Some(e) = self.take_sock(&n) {
                let _ = e.sock.set_linger(Some(std::time::Duration::ZERO));
                drop(e);
            }
        }
    }

    fn send(
        &mut self,
        sock: &str,
        len: Option<u32>,
        data: Option<&str>,
        flags: &[MsgFlag],
        until_error: bool,
    ) -> Result<Observation, CaptureError> {
        let fd = self.fd(sock)?;
        let flags = msg_flags(flags);
        let (mut total, mut calls, mut sigpipe) = (0u64, 0u64, false);
        loop {
            let e = self.entry(sock)?;
            let buf: Vec<u8> = match data {
                Some(d) => d.as_bytes().to_vec(),
                None => {
                    (0..u64::from(len.unwrap_or(0))).map(|i| derived_byte(e.stream, e.sent + i)).collect()
                }
            };
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
            let o = result(n as i64);
            sigpipe |= take_sigpipe();
            calls += 1;
            if n > 0 {
                total += n as u64;
                self.entry(sock)?.sent += n as u64;
            }
            if !until_error || n < 0 || total >= UNTIL_ERROR_MAX_BYTES {
                let value = until_error.then(|| serde_json::json!({ "bytes": total, "calls": calls }));
                return Ok(Observation {
                    sock: Some(sock.to_string()),
                    sigpipe,
                    value: o.value.clone().or(value),
                    ..o
                });
            }
        }
    }

    fn setsockopt(
        &mut self,
        sock: &str,
        opt: SockOpt,
        value: &OptValue,
    ) -> Result<Observation, CaptureError> {
        let fd = self.fd(sock)?;
        let r = match set_option(fd, opt, value) {
            Ok(()) => result(0),
            Err(OptionError::Kernel(_)) => result(-1),
            Err(OptionError::Value(msg)) => return Err(CaptureError::Scenario(msg)),
        };
        Ok(Observation { sock: Some(sock.to_string()), ..r })
    }

    fn getsockopt(&mut self, sock: &str, opt: SockOpt) -> Result<Observation, CaptureError> {
        let fd = self.fd(sock)?;
        let (level, name) = sockopt_name(opt);
        let mut buf = [0u8; 256];
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: buf is valid for len bytes and large enough for tcp_info.
        let r = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) };
        let mut o = result(r as i64);
        if r == 0 {
            let int = || i32::from_ne_bytes(buf[..4].try_into().expect("4 bytes"));
            o.value = Some(match opt {
                SockOpt::SO_ERROR => match int() {
                    0 => 0.into(),
                    c => crate::errno::Errno::from_code(c).map_or_else(|| c.into(), |e| e.name().into()),
                },
                SockOpt::SO_LINGER => {
                    let on = int();
                    let secs = i32::from_ne_bytes(buf[4..8].try_into().expect("4 bytes"));
                    serde_json::json!([on, secs])
                }
                SockOpt::TCP_INFO => {
                    // SAFETY: the kernel wrote up to len bytes of a tcp_info; buf is zero-padded and
                    // larger than the struct; read_unaligned avoids alignment assumptions.
                    let info: libc::tcp_info = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
                    tcp_info_json(&info)
                }
                _ => int().into(),
            });
        }
        Ok(Observation { sock: Some(sock.to_string()), ..o })
    }
}

/// A crash at a scheduled time (a `[[fault]]` entry), from outside the script's thread, which
/// owns the sockets: each socket of the host is aborted in place by `SO_LINGER {1,0}` and
/// `connect(AF_UNSPEC)` (af_inet.c `inet_stream_connect` → `tcp_disconnect`: RST, state CLOSE, a
/// listener stops listening). Unlike a script `crash`, the fds stay open, so the script's later
/// calls on them see a closed socket where a crashed process would have none.
pub fn abort_host_sockets(live: &LiveFds, host: usize) -> usize {
    let fds = live.lock().expect("no thread panics holding it");
    let mut n = 0;
    for (&fd, _) in fds.iter().filter(|(_, &h)| h == host) {
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: fd is open while in the map (it leaves the map, under this lock, before its
        // close); the option and address buffers are valid for the lengths passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                size_of::<libc::linger>() as u32,
            );
            let mut unspec: libc::sockaddr = std::mem::zeroed();
            unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
            libc::connect(fd, &unspec, size_of::<libc::sockaddr>() as u32);
        }
        n += 1;
    }
    n
}

/// Why an option could not be set.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// The value does not fit the option (a scenario error).
    #[error("{0}")]
    Value(String),
    /// The kernel refused it (`errno` is set).
    #[error("setsockopt: {0}")]
    Kernel(std::io::Error),
}

/// `setsockopt` of a scenario option: an int, `[l_onoff, l_linger]` for SO_LINGER, a name for
/// TCP_CONGESTION.
pub fn set_option(fd: RawFd, opt: SockOpt, value: &OptValue) -> Result<(), OptionError> {
    let (level, name) = sockopt_name(opt);
    // SAFETY: the option buffers below are valid for the lengths passed.
    let r = unsafe {
        match (opt, value) {
            (SockOpt::SO_LINGER, OptValue::Pair([on, secs])) => {
                let l = libc::linger { l_onoff: *on as i32, l_linger: *secs as i32 };
                libc::setsockopt(
                    fd,
                    level,
                    name,
                    (&l as *const libc::linger).cast(),
                    size_of::<libc::linger>() as u32,
                )
            }
            (_, OptValue::Int(v)) => {
                let v = i32::try_from(*v)
                    .map_err(|_| OptionError::Value(format!("{opt:?} = {v}: out of range")))?;
                libc::setsockopt(fd, level, name, (&v as *const i32).cast(), size_of::<i32>() as u32)
            }
            (SockOpt::TCP_CONGESTION, OptValue::Name(n)) => {
                libc::setsockopt(fd, level, name, n.as_ptr().cast(), n.len() as u32)
            }
            (_, OptValue::Pair(_) | OptValue::Name(_)) => {
                return Err(OptionError::Value(format!("{opt:?} takes an integer")))
            }
        }
    };
    if r != 0 {
        return Err(OptionError::Kernel(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `host:port`, with a host name among `hosts` or a literal IPv4 address.
pub fn resolve(hosts: &[(String, Ipv4Addr)], to: &str) -> Result<SocketAddrV4, CaptureError> {
    let (h, p) =
        to.rsplit_once(':').ok_or_else(|| CaptureError::Scenario(format!("`{to}` is not host:port")))?;
    let port: u16 = p.parse().map_err(|_| CaptureError::Scenario(format!("`{to}`: bad port")))?;
    let addr = match hosts.iter().find(|(n, _)| n == h) {
        Some((_, a)) => *a,
        None => h
            .parse::<Ipv4Addr>()
            .map_err(|_| CaptureError::Scenario(format!("`{to}`: unknown host `{h}`")))?,
    };
    Ok(SocketAddrV4::new(addr, port))
}
