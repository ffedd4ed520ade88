//! The real kernel's side of [`Syscalls`]: a scenario's script, interpreted by
//! [`crate::script`] as on the model, made as real syscalls on the calling thread.
//!
//! Sockets are created inside their host's namespace (the thread `setns`es in, creates the
//! socket, and moves back: a socket keeps the namespace it was made in). SIGPIPE is blocked on
//! this thread, so a send that raises it leaves it pending; the harness takes it with
//! `sigtimedwait` after each send and logs `sigpipe: true` (a blocked signal is kept pending even
//! though Rust programs ignore SIGPIPE: kernel/signal.c `sig_ignored` never ignores a blocked
//! signal).

use super::netns::{self, Lab};
use super::CaptureError;
use crate::engine::fault::{FaultAction, FaultKind};
use crate::scenario::{Observation, Scenario};
use crate::socket::epoll::CtlOp;
use crate::socket::kqueue::{KEvent, KFilter};
use crate::syscall::{Blocking, Sent, SysErr, Syscalls};
use crate::tcp::conn::SendData;
use crate::tcp::segment::derived_byte;
use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};
use crate::tcp::view::PollMask;
use crate::time::Dur;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Instant;

/// `TCP_RTO_MAX_MS` (include/uapi/linux/tcp.h, 6.15+); not in libc yet.
const TCP_RTO_MAX_MS: libc::c_int = 44;
/// `SIOCOUTQNSD` (include/uapi/linux/sockios.h).
const SIOCOUTQNSD: libc::c_ulong = 0x894B;

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

/// The real kernel as a system the script makes calls on: the sockets it made, the epoll
/// instances, and the run's clock. Sockets are named by the order they were made, never by fd
/// number (a closed fd's number is reused by the next socket).
struct Kernel<'a> {
    lab: &'a Mutex<Lab>,
    live: &'a LiveFds,
    home: File,
    socks: BTreeMap<u64, SockEntry>,
    eps: Vec<OwnedFd>,
    start: Instant,
    next_sock: u64,
    /// A harness failure of the last call (see [`Syscalls::take_fatal`]).
    fatal: Option<CaptureError>,
}

/// The sockets and epoll instances still open when the script ends. The caller drops them
/// (closing them) only after stopping the capture, so that the pcap shows the scenario and not
/// the harness's teardown (FINs and RSTs of the closing sockets).
pub struct OpenAtEnd {
    _socks: BTreeMap<u64, SockEntry>,
    _eps: Vec<OwnedFd>,
}

/// Runs `sc.script`; returns one observation per step. Stops at the first step the harness
/// cannot carry out (a namespace it cannot enter, a failed fault command); a syscall that
/// fails is not such a step: its errno is the observation.
pub fn run_script(
    sc: &Scenario,
    lab: &Mutex<Lab>,
    live: &LiveFds,
    start: Instant,
) -> Result<(Vec<Observation>, OpenAtEnd), CaptureError> {
    block_sigpipe();
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(|e| CaptureError::Io { path: "/proc/thread-self/ns/net".into(), msg: e.to_string() })?;
    let mut k =
        Kernel { lab, live, home, socks: BTreeMap::new(), eps: Vec::new(), start, next_sock: 0, fatal: None };
    let obs = crate::script::run(&mut k, &sc.script, |_, _| {}).map_err(|f| match f.fatal {
        CaptureError::Scenario(msg) => CaptureError::Scenario(format!("script step {} (`{}`): {msg}", f.step, f.op)),
        other => other,
    })?;
    Ok((obs, OpenAtEnd { _socks: k.socks, _eps: k.eps }))
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

/// The error of the last failed call.
fn last_err() -> SysErr {
    SysErr::from_code(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// A call that returned `r` (negative: failed, with errno set).
fn check(r: libc::c_int) -> Result<libc::c_int, SysErr> {
    if r < 0 {
        Err(last_err())
    } else {
        Ok(r)
    }
}

fn io_err(e: std::io::Error) -> SysErr {
    SysErr::from_code(e.raw_os_error().unwrap_or(0))
}

/// send(2) of `len` bytes at `buf`, or sendto(2) to `to` when given. A NULL `buf` is the
/// script's NULL buffer: the kernel's copy faults.
fn send_raw(fd: RawFd, buf: *const u8, len: usize, flags: &[MsgFlag], to: Option<&SockAddr>) -> isize {
    let flags = msg_flags(flags);
    match to {
        // SAFETY: buf is NULL or valid for len bytes (the callers' buffers).
        None => unsafe { libc::send(fd, buf.cast(), len, flags) },
        // SAFETY: as above; the address is valid for its length.
        Some(a) => unsafe { libc::sendto(fd, buf.cast(), len, flags, a.as_ptr().cast(), a.len()) },
    }
}

fn msg_flags(flags: &[MsgFlag]) -> libc::c_int {
    flags.iter().fold(0, |acc, f| {
        acc | match f {
            MsgFlag::MSG_PEEK => libc::MSG_PEEK,
            MsgFlag::MSG_DONTWAIT => libc::MSG_DONTWAIT,
            MsgFlag::MSG_NOSIGNAL => libc::MSG_NOSIGNAL,
            MsgFlag::MSG_WAITALL => libc::MSG_WAITALL,
            MsgFlag::MSG_MORE => libc::MSG_MORE,
            MsgFlag::MSG_EOR => libc::MSG_EOR,
            MsgFlag::MSG_ZEROCOPY => libc::MSG_ZEROCOPY,
            MsgFlag::MSG_FASTOPEN => libc::MSG_FASTOPEN,
        }
    })
}

/// A poll/epoll timeout in ms, rounded up.
fn timeout_ms(t: Dur) -> libc::c_int {
    t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u64) as libc::c_int
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
        TCP_INQ => (libc::IPPROTO_TCP, libc::TCP_INQ),
        TCP_MAXSEG => (libc::IPPROTO_TCP, libc::TCP_MAXSEG),
        TCP_CORK => (libc::IPPROTO_TCP, libc::TCP_CORK),
        SO_ZEROCOPY => (libc::SOL_SOCKET, libc::SO_ZEROCOPY),
        IP_TOS => (libc::IPPROTO_IP, libc::IP_TOS),
        IP_MTU_DISCOVER => (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
        TCP_FASTOPEN_CONNECT => (libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT),
        TCP_FASTOPEN => (libc::IPPROTO_TCP, libc::TCP_FASTOPEN),
    }
}

/// The TCP_INFO fields a comparison with the model can use (include/uapi/linux/tcp.h).
fn tcp_info_json(i: &libc::tcp_info) -> serde_json::Value {
    serde_json::json!({
        "state": i.tcpi_state, "ca_state": i.tcpi_ca_state, "retransmits": i.tcpi_retransmits,
        "probes": i.tcpi_probes, "backoff": i.tcpi_backoff, "rto_us": i.tcpi_rto, "ato_us": i.tcpi_ato,
        "snd_mss": i.tcpi_snd_mss, "rcv_mss": i.tcpi_rcv_mss, "advmss": i.tcpi_advmss, "unacked": i.tcpi_unacked,
        "lost": i.tcpi_lost, "retrans": i.tcpi_retrans, "reordering": i.tcpi_reordering, "rtt_us": i.tcpi_rtt, "rttvar_us": i.tcpi_rttvar,
        "snd_cwnd": i.tcpi_snd_cwnd, "snd_ssthresh": i.tcpi_snd_ssthresh, "total_retrans": i.tcpi_total_retrans,
        "last_data_sent_ms": i.tcpi_last_data_sent, "last_data_recv_ms": i.tcpi_last_data_recv,
        "last_ack_recv_ms": i.tcpi_last_ack_recv,
    })
}

impl Kernel<'_> {
    /// The lab, locked (the timed-fault thread shares it).
    fn lab(&self) -> std::sync::MutexGuard<'_, Lab> {
        self.lab.lock().expect("no thread panics holding the lab")
    }

    /// The fd of a socket still open: EBADF for one closed (or lost in a crash).
    fn fd(&self, s: u64) -> Result<RawFd, SysErr> {
        self.socks.get(&s).map(|e| e.sock.as_raw_fd()).ok_or(SysErr::Known(crate::errno::Errno::EBADF))
    }

    fn add_sock(&mut self, host: usize, sock: Socket) -> u64 {
        let id = self.next_sock;
        self.next_sock += 1;
        self.live.lock().expect("watchdog never panics holding it").insert(sock.as_raw_fd(), host);
        self.socks.insert(id, SockEntry { host, sock, sent: 0, stream: id });
        id
    }

    /// Takes a socket out of the script (close or crash): it leaves the watchdog's set first.
    fn take_sock(&mut self, s: u64) -> Option<SockEntry> {
        let e = self.socks.remove(&s)?;
        self.live.lock().expect("watchdog never panics holding it").remove(&e.sock.as_raw_fd());
        Some(e)
    }

    /// Keeps a harness failure for [`Syscalls::take_fatal`]; the call answers EINVAL.
    fn fail(&mut self, e: CaptureError) -> SysErr {
        self.fatal.get_or_insert(e);
        SysErr::Known(crate::errno::Errno::EINVAL)
    }

    /// A socket made inside the host's namespace (a socket keeps the namespace it was made in).
    fn socket_in(&mut self, h: usize) -> Result<std::io::Result<Socket>, CaptureError> {
        netns::enter(&self.lab().hosts[h].fd)?;
        let made = Socket::new(Domain::for_address(std::net::SocketAddr::new(self.lab().hosts[h].addr, 0)), Type::STREAM, Some(Protocol::TCP));
        netns::enter(&self.home)?;
        Ok(made)
    }

    /// One send(2) or sendto(2) (to `to`) of `data`: derived bytes continue the socket's
    /// stream.
    fn write(&mut self, s: u64, data: &SendData, flags: &[MsgFlag], to: Option<crate::addr::SockAddr>) -> Sent {
        let fd = match self.fd(s) {
            Ok(fd) => fd,
            Err(e) => return Sent { result: Err(e), sigpipe: false },
        };
        let to = to.map(|a| SockAddr::from(std::net::SocketAddr::from(a)));
        let e = &self.socks[&s];
        let n = match data {
            SendData::Null(len) => send_raw(fd, std::ptr::null(), *len as usize, flags, to.as_ref()),
            SendData::Bytes(b) => send_raw(fd, b.as_ptr(), b.len(), flags, to.as_ref()),
            SendData::Derived(len) => {
                let buf: Vec<u8> = (0..u64::from(*len)).map(|i| derived_byte(e.stream, e.sent + i)).collect();
                send_raw(fd, buf.as_ptr(), buf.len(), flags, to.as_ref())
            }
        };
        let result = if n < 0 { Err(last_err()) } else { Ok(n as u32) };
        let sigpipe = take_sigpipe();
        if n > 0 {
            self.socks.get_mut(&s).expect("checked above").sent += n as u64;
        }
        Sent { result, sigpipe }
    }

    /// A crashed host loses every socket: each is aborted with SO_LINGER {1,0} and closed (tcp.c
    /// `__tcp_close` → `tcp_disconnect`, an RST that the crash's drop rules swallow).
    fn crash(&mut self, host: &str) {
        let Some(h) = self.lab().host_index(host) else { return };
        let ids: Vec<u64> = self.socks.iter().filter(|(_, e)| e.host == h).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(e) = self.take_sock(id) {
                let _ = e.sock.set_linger(Some(std::time::Duration::ZERO));
                drop(e);
            }
        }
    }
}

impl Syscalls for Kernel<'_> {
    type Sock = u64;
    type Ep = usize;
    type Fatal = CaptureError;

    fn host_addr(&self, host: &str) -> Option<IpAddr> {
        let lab = self.lab();
        lab.host_index(host).map(|h| lab.hosts[h].addr)
    }

    fn socket(&mut self, host: &str, nonblocking: bool) -> Result<u64, SysErr> {
        let h = self.lab().host_index(host).ok_or(SysErr::Known(crate::errno::Errno::EINVAL))?;
        let s = match self.socket_in(h) {
            Ok(made) => made.map_err(io_err)?,
            Err(e) => return Err(self.fail(e)),
        };
        if nonblocking {
            s.set_nonblocking(true).map_err(io_err)?;
        }
        if let Some(cc) = self.lab().hosts[h].congestion {
            let name = OptValue::Name(cc.to_string());
            if let Err(OptionError::Kernel(e)) = set_option(s.as_raw_fd(), SockOpt::TCP_CONGESTION, &name) {
                return Err(io_err(e));
            }
        }
        Ok(self.add_sock(h, s))
    }

    fn bind(&mut self, s: u64, port: u16) -> Result<(), SysErr> {
        self.fd(s)?;
        let addr = std::net::SocketAddr::new(self.lab().hosts[self.socks[&s].host].addr, port);
        self.socks[&s].sock.bind(&SockAddr::from(addr)).map_err(io_err)
    }

    fn listen(&mut self, s: u64, backlog: i32) -> Result<(), SysErr> {
        self.fd(s)?;
        self.socks[&s].sock.listen(backlog).map_err(io_err)
    }

    fn connect(&mut self, s: u64, to: crate::addr::SockAddr) -> Blocking<()> {
        Ok(self.fd(s).and_then(|_| self.socks[&s].sock.connect(&SockAddr::from(std::net::SocketAddr::from(to))).map_err(io_err)))
    }

    fn accept(&mut self, s: u64) -> Blocking<u64> {
        if let Err(e) = self.fd(s) {
            return Ok(Err(e));
        }
        let host = self.socks[&s].host;
        Ok(match self.socks[&s].sock.accept() {
            Ok((child, _)) => Ok(self.add_sock(host, child)),
            Err(e) => Err(io_err(e)),
        })
    }

    fn send(&mut self, s: u64, data: &SendData, flags: &[MsgFlag]) -> Result<Sent, crate::syscall::Blocked> {
        Ok(self.write(s, data, flags, None))
    }

    fn sendto(&mut self, s: u64, data: &SendData, flags: &[MsgFlag], to: crate::addr::SockAddr) -> Result<Sent, crate::syscall::Blocked> {
        Ok(self.write(s, data, flags, Some(to)))
    }

    fn recv(&mut self, s: u64, len: u32, buf: UserBuf, flags: &[MsgFlag]) -> Blocking<u32> {
        let fd = match self.fd(s) {
            Ok(fd) => fd,
            Err(e) => return Ok(Err(e)),
        };
        let n = match buf {
            // SAFETY: recv(2) with a NULL buffer writes no user memory (the copy faults).
            UserBuf::Null => unsafe { libc::recv(fd, std::ptr::null_mut(), len as usize, msg_flags(flags)) },
            UserBuf::Mapped => {
                let mut buf = vec![0u8; len as usize];
                // SAFETY: buf is valid for len bytes.
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), msg_flags(flags)) }
            }
        };
        Ok(if n < 0 { Err(last_err()) } else { Ok(n as u32) })
    }

    fn shutdown(&mut self, s: u64, how: ShutHow) -> Result<(), SysErr> {
        let fd = self.fd(s)?;
        let how = match how {
            ShutHow::SHUT_RD => libc::SHUT_RD,
            ShutHow::SHUT_WR => libc::SHUT_WR,
            ShutHow::SHUT_RDWR => libc::SHUT_RDWR,
        };
        // SAFETY: shutdown(2) on an open fd.
        check(unsafe { libc::shutdown(fd, how) }).map(drop)
    }

    fn close(&mut self, s: u64) -> Result<(), SysErr> {
        let e = self.take_sock(s).ok_or(SysErr::Known(crate::errno::Errno::EBADF))?;
        let fd = std::os::fd::IntoRawFd::into_raw_fd(e.sock);
        // SAFETY: we own fd (taken out of the Socket) and close it exactly once.
        check(unsafe { libc::close(fd) }).map(drop)
    }

    fn setsockopt(&mut self, s: u64, opt: SockOpt, value: &OptValue) -> Result<(), SysErr> {
        let fd = self.fd(s)?;
        match set_option(fd, opt, value) {
            Ok(()) => Ok(()),
            Err(OptionError::Kernel(e)) => Err(io_err(e)),
            Err(OptionError::Value(msg)) => Err(self.fail(CaptureError::Scenario(msg))),
        }
    }

    fn getsockopt(&mut self, s: u64, opt: SockOpt) -> Result<serde_json::Value, SysErr> {
        let fd = self.fd(s)?;
        let (level, name) = sockopt_name(opt);
        let mut buf = [0u8; 256];
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: buf is valid for len bytes and large enough for tcp_info.
        check(unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) })?;
        let int = |at: usize| i32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        Ok(match opt {
            SockOpt::SO_LINGER => serde_json::json!([int(0), int(4)]),
            // The algorithm's name, NUL-padded (tcp.c do_tcp_getsockopt).
            SockOpt::TCP_CONGESTION => {
                let name = &buf[..(len as usize).min(buf.len())];
                let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
                String::from_utf8_lossy(&name[..end]).into()
            }
            SockOpt::TCP_INFO => {
                // SAFETY: the kernel wrote up to len bytes of a tcp_info; buf is zero-padded and
                // larger than the struct; read_unaligned avoids alignment assumptions.
                let info: libc::tcp_info = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
                tcp_info_json(&info)
            }
            _ => int(0).into(),
        })
    }

    fn ioctl(&mut self, s: u64, req: IoctlReq) -> Result<i64, SysErr> {
        let fd = self.fd(s)?;
        let code = match req {
            IoctlReq::FIONREAD => libc::FIONREAD,
            IoctlReq::SIOCOUTQ => libc::TIOCOUTQ,
            IoctlReq::SIOCOUTQNSD => SIOCOUTQNSD,
        };
        let mut v: libc::c_int = 0;
        // SAFETY: these requests write one int.
        check(unsafe { libc::ioctl(fd, code as _, &mut v) })?;
        Ok(v.into())
    }

    /// A socket not open answers POLLNVAL, as poll(2) does for a closed descriptor.
    fn poll(&mut self, s: Option<u64>, events: PollMask, timeout: Dur) -> Result<PollMask, SysErr> {
        let Some(Ok(fd)) = s.map(|s| self.fd(s)) else { return Ok(PollMask::NVAL) };
        let mut p = libc::pollfd { fd, events: events.0 as i16, revents: 0 };
        // SAFETY: one valid pollfd.
        check(unsafe { libc::poll(&mut p, 1, timeout_ms(timeout)) })?;
        Ok(PollMask(p.revents as u16 as u32))
    }

    fn epoll_create(&mut self) -> Result<usize, SysErr> {
        // SAFETY: epoll_create1 has no pointer arguments.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just returned to us and is owned from here on.
        self.eps.push(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(self.eps.len() - 1)
    }

    /// The item's user data is the script's socket, which `epoll_wait` reports back.
    fn epoll_ctl(&mut self, ep: usize, op: CtlOp, s: u64, events: u32) -> Result<(), SysErr> {
        let fd = self.fd(s)?;
        let op = match op {
            CtlOp::Add => libc::EPOLL_CTL_ADD,
            CtlOp::Mod => libc::EPOLL_CTL_MOD,
            CtlOp::Del => libc::EPOLL_CTL_DEL,
        };
        let mut ev = libc::epoll_event { events, u64: s };
        // SAFETY: valid epoll fd, socket fd and event.
        check(unsafe { libc::epoll_ctl(self.eps[ep].as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    fn epoll_wait(&mut self, ep: usize, max: u32, timeout: Dur) -> Result<Vec<(u64, PollMask)>, SysErr> {
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; max.max(1) as usize];
        // SAFETY: evs holds evs.len() entries.
        let n = check(unsafe {
            libc::epoll_wait(self.eps[ep].as_raw_fd(), evs.as_mut_ptr(), evs.len() as i32, timeout_ms(timeout))
        })?;
        Ok(evs[..n as usize].iter().map(|e| (e.u64, PollMask(e.events))).collect())
    }

    /// Linux has no kqueue: the call a FreeBSD program would make fails as an unknown syscall.
    fn kevent(&mut self, _: u64, _: KFilter, _: Option<u32>) -> Result<Option<KEvent>, SysErr> {
        Err(SysErr::Known(crate::errno::Errno::ENOSYS))
    }

    fn sleep(&mut self, d: Dur) {
        std::thread::sleep(std::time::Duration::from_nanos(d.as_nanos()));
    }

    fn fault(&mut self, f: &FaultAction) -> Result<(), String> {
        let r = self.lab().apply_fault(f);
        if let Err(e) = r {
            let msg = e.to_string();
            self.fatal.get_or_insert(e);
            return Err(msg);
        }
        if f.kind == FaultKind::Crash {
            self.crash(f.host.unwrap_or_default());
        }
        Ok(())
    }

    fn settle(&mut self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn unknown_name(&mut self, what: &str) {
        self.fail(CaptureError::Scenario(format!("no open {what}")));
    }

    fn take_fatal(&mut self) -> Option<CaptureError> {
        self.fatal.take()
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
