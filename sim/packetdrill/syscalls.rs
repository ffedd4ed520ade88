//! A script's system calls, made on the host's syscall layer (`Host::sys_*`), each checked
//! as run_system_call.c `end_syscall` checks it, in its wording: the result (exactly, or
//! just non-negative for a new descriptor), then the errno, then what the call filled in
//! (`[value]` of getsockopt/ioctl, `revents`, the epoll event).
//!
//! The script's descriptor numbers are the script's: they map to the host's descriptors as
//! packetdrill maps script fds to live ones.

use super::ast::{Expr, SyscallSpec};
use super::runner::{Run, Stop};
use crate::errno::Errno;
use crate::host::Fd;
use crate::syscall::{self as sys, Blocking, Syscalls};
use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};
use crate::socket::epoll::{CtlOp, EPOLLET, EPOLLONESHOT};
use crate::socket::view::PollMask;
use crate::tcp::conn::SendData;

use crate::time::Dur;
use crate::addr::SockAddr;
use crate::tcp::state::TcpState;
use std::collections::BTreeMap;

/// What a script descriptor stands for on the host.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Handle {
    Sock(Fd),
    Epoll(usize),
}

/// Script descriptor → host handle.
#[derive(Default)]
pub struct Handles(BTreeMap<i64, Handle>);

/// Why a call could not be made.
pub(crate) enum CallErr {
    Unsupported(String),
    Fail(String),
}

impl CallErr {
    pub(crate) fn at(self, line: u32) -> Stop {
        match self {
            CallErr::Unsupported(f) => Stop::Unsupported(line, f),
            CallErr::Fail(m) => Stop::Fail(line, m),
        }
    }
}

/// One call, with its arguments evaluated and what the script expects of it.
pub(crate) struct Call {
    name: String,
    op: Op,
    expected: i64,
    errno: Option<String>,
    /// `CHECK_FD`: socket/accept/epoll_create only need a non-negative result.
    new_fd: bool,
}

enum Op {
    Socket { nonblocking: bool },
    Bind(Fd),
    Listen(Fd, i32),
    Accept(Fd),
    Connect { fd: Fd, started: bool },
    /// `inq`: the `TCP_CM_INQ` value a recvmsg's control buffer expects, if any.
    Recv { fd: Fd, len: u32, buf: UserBuf, peek: bool, dontwait: bool, inq: Option<i64> },
    /// `asleep`: the call blocked and waits to be woken (`sk_stream_wait_memory`, or a Fast
    /// Open write's `inet_wait_for_connect`); `to`: sendto()'s destination.
    Send { fd: Fd, len: u32, buf: UserBuf, sent: u32, flags: SendBits, asleep: bool, to: Option<SockAddr> },
    Close(i64),
    Shutdown(Fd, ShutHow),
    Setsockopt(Fd, SockOpt, OptValue),
    /// SO_REUSEADDR, which the model's sockets do not keep: remembered here, so that a bind
    /// it would have allowed is reported unsupported rather than failed.
    ReuseAddr(Fd),
    Getsockopt(Fd, SockOpt, Option<i64>),
    GetFl(Fd),
    SetFl(Fd, bool),
    Ioctl(Fd, IoctlReq, Option<i64>),
    Poll { fds: Vec<(Fd, PollMask, Option<u32>)>, deadline: Option<i64> },
    EpollCreate,
    EpollCtl { ep: usize, op: CtlOp, fd: Fd, events: u32 },
    EpollWait { ep: usize, max: usize, deadline: Option<i64>, want: Option<(u32, Option<i64>)> },
}

/// A call's outcome, and anything it filled in that differs from the script.
pub(crate) struct Ret {
    ret: i64,
    errno: Option<Errno>,
    mismatch: Option<String>,
}

impl Ret {
    fn of(r: Result<i64, Errno>) -> Ret {
        match r {
            Ok(v) => Ret { ret: v, errno: None, mismatch: None },
            Err(e) => Ret { ret: -1, errno: Some(e), mismatch: None },
        }
    }
}

pub(crate) enum Progress {
    Done(Ret),
    Blocked,
}

/// A model call's errno (the model only answers errnos it knows).
fn known<T>(r: Result<T, sys::SysErr>) -> Result<T, Errno> {
    r.map_err(|e| match e {
        sys::SysErr::Known(e) => e,
        sys::SysErr::Unknown(code) => Errno::from_code(code).unwrap_or(Errno::EINVAL),
    })
}

/// A call made once (the host's side never waits; see `calls.rs`).
fn once<T>(r: Blocking<T>) -> Result<T, Errno> {
    r.map_or(Err(Errno::EAGAIN), known)
}

/// The value of a symbol the scripts use (Linux x86-64 numbering).
fn symbol(w: &str) -> Option<i64> {
    Some(match w {
        "AF_INET" => 2,
        "SOCK_STREAM" => 1,
        "SOCK_NONBLOCK" => 0o4000,
        "IPPROTO_TCP" | "SOL_TCP" => 6,
        "SOL_SOCKET" => 1,
        "IPPROTO_IP" | "SOL_IP" => 0,
        "O_RDWR" => 2,
        "O_NONBLOCK" => 0o4000,
        "F_GETFL" => 3,
        "F_SETFL" => 4,
        "SHUT_RD" => 0,
        "SHUT_WR" => 1,
        "SHUT_RDWR" => 2,
        "MSG_PEEK" => 0x2,
        "MSG_DONTWAIT" => 0x40,
        "MSG_EOR" => 0x80,
        "MSG_WAITALL" => 0x100,
        "MSG_NOSIGNAL" => 0x4000,
        "MSG_MORE" => 0x8000,
        "MSG_FASTOPEN" => 0x2000_0000,
        "MSG_ZEROCOPY" => 0x400_0000,
        "MSG_ERRQUEUE" => 0x2000,
        "EPOLL_CTL_ADD" => 1,
        "EPOLL_CTL_DEL" => 2,
        "EPOLL_CTL_MOD" => 3,
        "EPOLLET" => i64::from(EPOLLET),
        "EPOLLONESHOT" => i64::from(EPOLLONESHOT),
        "SIOCINQ" | "FIONREAD" => 0x541B,
        "SIOCOUTQ" => 0x5411,
        "SIOCOUTQNSD" => 0x894B,
        "TCP_CM_INQ" => 36,
        "NULL" => 0,
        "IP_PMTUDISC_DONT" => 0,
        "IP_PMTUDISC_WANT" => 1,
        "IP_PMTUDISC_DO" => 2,
        "IP_PMTUDISC_PROBE" => 3,
        w => return PollMask::from_name(w).map(|m| i64::from(m.0)),
    })
}

fn unsupported<T>(what: String) -> Result<T, CallErr> {
    Err(CallErr::Unsupported(what))
}

/// An integer argument: a number, a symbol, `a|b`, or `[n]`.
fn int(e: &Expr) -> Result<i64, CallErr> {
    match e {
        Expr::Int(v) => Ok(*v),
        Expr::Word(w) => symbol(w).ok_or_else(|| CallErr::Unsupported(format!("symbol {w}"))),
        Expr::Or(a, b) => Ok(int(a)? | int(b)?),
        Expr::List(v) if v.len() == 1 => int(&v[0]),
        other => Err(CallErr::Fail(format!("bad argument {other:?}: expected an integer"))),
    }
}

fn arg<'e>(args: &'e [Expr], i: usize, name: &str) -> Result<&'e Expr, CallErr> {
    args.get(i).ok_or_else(|| CallErr::Fail(format!("{name}: missing argument {}", i + 1)))
}

/// An expected out-value: `[n]` checks it, `...` does not.
fn out_value(e: Option<&Expr>) -> Result<Option<i64>, CallErr> {
    match e {
        None | Some(Expr::Ellipsis) => Ok(None),
        Some(e) => int(e).map(Some),
    }
}

fn sockopt(level: &Expr, name: &Expr) -> Result<Option<SockOpt>, CallErr> {
    let Expr::Word(n) = name else { return Err(CallErr::Fail(format!("bad socket option {name:?}"))) };
    let _ = int(level)?;
    Ok(Some(match n.as_str() {
        "SO_REUSEADDR" => return Ok(None),
        "SO_ERROR" => SockOpt::SO_ERROR,
        "SO_KEEPALIVE" => SockOpt::SO_KEEPALIVE,
        "SO_LINGER" => SockOpt::SO_LINGER,
        "SO_SNDBUF" => SockOpt::SO_SNDBUF,
        "SO_RCVBUF" => SockOpt::SO_RCVBUF,
        "SO_RCVLOWAT" => SockOpt::SO_RCVLOWAT,
        "TCP_KEEPIDLE" => SockOpt::TCP_KEEPIDLE,
        "TCP_KEEPINTVL" => SockOpt::TCP_KEEPINTVL,
        "TCP_KEEPCNT" => SockOpt::TCP_KEEPCNT,
        "TCP_USER_TIMEOUT" => SockOpt::TCP_USER_TIMEOUT,
        "TCP_SYNCNT" => SockOpt::TCP_SYNCNT,
        "TCP_NODELAY" => SockOpt::TCP_NODELAY,
        "TCP_NOTSENT_LOWAT" => SockOpt::TCP_NOTSENT_LOWAT,
        "TCP_INQ" => SockOpt::TCP_INQ,
        "TCP_MAXSEG" => SockOpt::TCP_MAXSEG,
        "TCP_CORK" => SockOpt::TCP_CORK,
        "TCP_FASTOPEN_CONNECT" => SockOpt::TCP_FASTOPEN_CONNECT,
        "TCP_FASTOPEN" => SockOpt::TCP_FASTOPEN,
        "SO_ZEROCOPY" => SockOpt::SO_ZEROCOPY,
        "IP_TOS" => SockOpt::IP_TOS,
        "IP_MTU_DISCOVER" => SockOpt::IP_MTU_DISCOVER,
        other => return unsupported(format!("socket option {other}")),
    }))
}

/// The value of a setsockopt: `[n]`, `n`, or `{onoff=…, linger=…}`.
fn opt_value(e: &Expr) -> Result<OptValue, CallErr> {
    if let (Some(on), Some(l)) = (e.field("onoff"), e.field("linger")) {
        return Ok(OptValue::Pair([int(on)?, int(l)?]));
    }
    Ok(OptValue::Int(int(e)?))
}

/// The send flags the model takes.
#[derive(Clone, Copy, Debug)]
pub(super) struct SendBits {
    nosignal: bool,
    dontwait: bool,
    more: bool,
    eor: bool,
    zerocopy: bool,
    fastopen: bool,
}

/// Send flags the model takes; any other is unsupported by name.
fn send_flags(bits: i64) -> Result<SendBits, CallErr> {
    Ok(SendBits {
        fastopen: bits & 0x2000_0000 != 0,
        nosignal: bits & 0x4000 != 0,
        dontwait: bits & 0x40 != 0,
        more: bits & 0x8000 != 0,
        eor: bits & 0x80 != 0,
        zerocopy: bits & 0x400_0000 != 0,
    })
}

/// The byte count of a msghdr's or an iovec array's buffers (`{..., n}` each).
fn iov_len(iov: &Expr) -> Result<u32, CallErr> {
    let Expr::List(items) = iov else { return Err(CallErr::Fail("bad iovec array".into())) };
    let mut total = 0;
    for it in items {
        let Expr::Struct(parts) = it else { return Err(CallErr::Fail("bad iovec".into())) };
        total += int(parts.last().ok_or_else(|| CallErr::Fail("empty iovec".into()))?)? as u32;
    }
    Ok(total)
}

fn msghdr_len(m: &Expr) -> Result<u32, CallErr> {
    iov_len(m.field("msg_iov").ok_or_else(|| CallErr::Fail("msghdr without msg_iov".into()))?)
}

/// The control messages a recvmsg expects back: none, or the one the model writes,
/// `{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=N}` (TCP_INQ); any other kind is
/// unsupported by name.
fn expected_inq(m: &Expr) -> Result<Option<i64>, CallErr> {
    let Some(Expr::List(cmsgs)) = m.field("msg_control") else { return Ok(None) };
    match cmsgs.as_slice() {
        [] => Ok(None),
        [c] => {
            let level = c.field("cmsg_level").map(int).transpose()?;
            let kind = c.field("cmsg_type").map(int).transpose()?;
            if (level, kind) != (Some(6), Some(36)) {
                return unsupported(format!("control message {c:?}"));
            }
            c.field("cmsg_data").map(int).transpose()
        }
        _ => unsupported("more than one control message".into()),
    }
}

/// The buffer of read/write/send/recv: `...` is the program's memory, `NULL` a NULL pointer
/// ([`UserBuf`]); another literal address is unsupported. The other calls take iovecs.
fn buffer_arg(name: &str, a: &[Expr]) -> Result<UserBuf, CallErr> {
    match (name, a.get(1)) {
        ("read" | "recv" | "recvfrom" | "write" | "send" | "sendto", Some(e)) if *e != Expr::Ellipsis => match int(e) {
            Ok(0) => Ok(UserBuf::Null),
            _ => unsupported(format!("{name} with a literal buffer address {e:?}")),
        },
        _ => Ok(UserBuf::Mapped),
    }
}

/// The byte count and flags of a read or write call, whichever of its forms:
/// `read(fd, ..., len)`, `readv(fd, iov, n)`, `recvmsg(fd, msg, flags)`, `recv(fd, ..., len, flags)`.
fn len_and_flags(name: &str, a: &[Expr]) -> Result<(u32, i64), CallErr> {
    Ok(match name {
        "read" | "write" => (int(arg(a, 2, name)?)? as u32, 0),
        "readv" | "writev" => (iov_len(arg(a, 1, name)?)?, 0),
        "recvmsg" | "sendmsg" => (msghdr_len(arg(a, 1, name)?)?, int(arg(a, 2, name)?)?),
        _ => (int(arg(a, 2, name)?)? as u32, int(arg(a, 3, name)?)?),
    })
}

/// How the control message recvmsg wrote differs from the script's expectation.
fn cmsg_mismatch(want: Option<i64>, got: Option<u32>) -> Option<String> {
    match (want, got) {
        (Some(w), Some(g)) if w != i64::from(g) => Some(format!("Bad TCP_CM_INQ cmsg_data: expected: {w} actual: {g}")),
        (Some(_), None) => Some("Bad msg_controllen: expected a TCP_CM_INQ control message, got none".into()),
        // No control buffer in the call: the kernel has nowhere to write one.
        _ => None,
    }
}

fn ms_deadline(run: &Run, timeout_ms: i64) -> Option<i64> {
    (timeout_ms >= 0).then(|| run_now(run) + timeout_ms * 1000)
}

fn run_now(run: &Run) -> i64 {
    run.now_us()
}

/// Evaluates the arguments of `spec` into a call.
pub(crate) fn prepare(run: &mut Run, spec: &SyscallSpec) -> Result<Call, CallErr> {
    let a = &spec.args;
    let name = spec.name.as_str();
    let sock = |run: &Run, i: usize| -> Result<Fd, CallErr> {
        let fd = int(arg(a, i, name)?)?;
        match run.handles.0.get(&fd) {
            Some(Handle::Sock(f)) => Ok(*f),
            _ => Err(CallErr::Fail(format!("unable to find socket with script fd {fd}"))),
        }
    };
    let epoll = |run: &Run, i: usize| -> Result<usize, CallErr> {
        let fd = int(arg(a, i, name)?)?;
        match run.handles.0.get(&fd) {
            Some(Handle::Epoll(e)) => Ok(*e),
            _ => Err(CallErr::Fail(format!("unable to find epoll with script fd {fd}"))),
        }
    };
    let op = match name {
        "socket" => {
            if int(arg(a, 2, name)?)? != 6 && int(arg(a, 2, name)?)? != 0 {
                return unsupported("sockets other than TCP".into());
            }
            Op::Socket { nonblocking: int(arg(a, 1, name)?)? & 0o4000 != 0 }
        }
        "bind" => Op::Bind(sock(run, 0)?),
        "listen" => Op::Listen(sock(run, 0)?, int(arg(a, 1, name)?)? as i32),
        "accept" => Op::Accept(sock(run, 0)?),
        "connect" => Op::Connect { fd: sock(run, 0)?, started: false },
        "read" | "recv" | "recvfrom" | "readv" | "recvmsg" => {
            let fd = sock(run, 0)?;
            let buf = buffer_arg(name, a)?;
            let (len, flags) = len_and_flags(name, a)?;
            if flags & 0x2000 != 0 {
                return unsupported(format!("{name} flag MSG_ERRQUEUE (zerocopy and timestamping notices)"));
            }
            if flags & !(0x2 | 0x40) != 0 {
                return unsupported(format!("{name} flags {flags:#x}"));
            }
            let inq = if name == "recvmsg" { expected_inq(arg(a, 1, name)?)? } else { None };
            Op::Recv { fd, len, buf, peek: flags & 0x2 != 0, dontwait: flags & 0x40 != 0, inq }
        }
        "write" | "send" | "sendto" | "writev" | "sendmsg" => {
            let fd = sock(run, 0)?;
            let buf = buffer_arg(name, a)?;
            let (len, flags) = len_and_flags(name, a)?;
            let flags = send_flags(flags)?;
            let to = if name == "sendto" {
                if *arg(a, 4, name)? != Expr::Ellipsis {
                    return unsupported("sendto with a literal address".into());
                }
                run.start_active_open(fd);
                Some(run.remote_addr())
            } else {
                None
            };
            if flags.fastopen && name != "sendto" {
                return unsupported(format!("{name} with MSG_FASTOPEN"));
            }
            Op::Send { fd, len, buf, sent: 0, flags, asleep: false, to }
        }
        "close" => {
            let fd = int(arg(a, 0, name)?)?;
            if !run.handles.0.contains_key(&fd) {
                return Err(CallErr::Fail(format!("unable to find socket with script fd {fd}")));
            }
            Op::Close(fd)
        }
        "shutdown" => {
            let how = match int(arg(a, 1, name)?)? {
                0 => ShutHow::SHUT_RD,
                1 => ShutHow::SHUT_WR,
                _ => ShutHow::SHUT_RDWR,
            };
            Op::Shutdown(sock(run, 0)?, how)
        }
        "setsockopt" => match sockopt(arg(a, 1, name)?, arg(a, 2, name)?)? {
            None => Op::ReuseAddr(sock(run, 0)?),
            Some(opt) => Op::Setsockopt(sock(run, 0)?, opt, opt_value(arg(a, 3, name)?)?),
        },
        "getsockopt" => match sockopt(arg(a, 1, name)?, arg(a, 2, name)?)? {
            None => return unsupported("getsockopt(SO_REUSEADDR)".into()),
            Some(opt) => Op::Getsockopt(sock(run, 0)?, opt, out_value(a.get(3))?),
        },
        "fcntl" => {
            let fd = sock(run, 0)?;
            match int(arg(a, 1, name)?)? {
                3 => Op::GetFl(fd),
                4 => Op::SetFl(fd, int(arg(a, 2, name)?)? & 0o4000 != 0),
                other => return unsupported(format!("fcntl command {other}")),
            }
        }
        "ioctl" => {
            let req = match int(arg(a, 1, name)?)? {
                0x541B => IoctlReq::FIONREAD,
                0x5411 => IoctlReq::SIOCOUTQ,
                0x894B => IoctlReq::SIOCOUTQNSD,
                other => return unsupported(format!("ioctl {other:#x}")),
            };
            Op::Ioctl(sock(run, 0)?, req, out_value(a.get(2))?)
        }
        "poll" => {
            let Expr::List(items) = arg(a, 0, name)? else { return Err(CallErr::Fail("poll: bad pollfd array".into())) };
            let mut fds = Vec::new();
            for it in items {
                let fd_expr = it.field("fd").ok_or_else(|| CallErr::Fail("pollfd without fd".into()))?;
                let fd = match run.handles.0.get(&int(fd_expr)?) {
                    Some(Handle::Sock(f)) => *f,
                    _ => return Err(CallErr::Fail(format!("unable to find socket with script fd {}", int(fd_expr)?))),
                };
                let events = PollMask(int(it.field("events").ok_or_else(|| CallErr::Fail("pollfd without events".into()))?)? as u32);
                let revents = it.field("revents").map(int).transpose()?.map(|v| v as u32);
                fds.push((fd, events, revents));
            }
            Op::Poll { fds, deadline: ms_deadline(run, int(arg(a, 2, name)?)?) }
        }
        "epoll_create" | "epoll_create1" => Op::EpollCreate,
        "epoll_ctl" => {
            let op = match int(arg(a, 1, name)?)? {
                1 => CtlOp::Add,
                2 => CtlOp::Del,
                _ => CtlOp::Mod,
            };
            let ev = arg(a, 3, name)?;
            let events = ev.field("events").map(int).transpose()?.unwrap_or(0) as u32;
            Op::EpollCtl { ep: epoll(run, 0)?, op, fd: sock(run, 2)?, events }
        }
        "epoll_wait" => {
            let ev = arg(a, 1, name)?;
            let want = match ev.field("events") {
                Some(e) => Some((int(e)? as u32, ev.field("fd").map(int).transpose()?)),
                None => None,
            };
            Op::EpollWait {
                ep: epoll(run, 0)?,
                max: int(arg(a, 2, name)?)?.max(1) as usize,
                deadline: ms_deadline(run, int(arg(a, 3, name)?)?),
                want,
            }
        }
        other => return unsupported(format!("system call {other}")),
    };
    let expected = int(&spec.result)?;
    let new_fd = matches!(op, Op::Socket { .. } | Op::Accept(_) | Op::EpollCreate);
    Ok(Call { name: spec.name.clone(), op, expected, errno: spec.errno.clone(), new_fd })
}

/// Tries the call once; a blocking socket that cannot proceed yet is `Blocked`.
pub(crate) fn attempt(run: &mut Run, call: &mut Call) -> Result<Progress, CallErr> {
    let done = |r: Ret| Ok(Progress::Done(r));
    match &mut call.op {
        Op::Socket { nonblocking } => {
            let nb = *nonblocking;
            done(Ret::of(known(run.calls().socket("sut", nb)).map(i64::from)))
        }
        Op::Bind(fd) => {
            let fd = *fd;
            match known(run.calls().bind(fd, super::runner::PORT)) {
                // inet_csk_bind_conflict lets SO_REUSEADDR sockets share a port no one listens on.
                Err(Errno::EADDRINUSE) if run.reuseaddr.contains(&fd) => {
                    unsupported("SO_REUSEADDR bind to a port a connection still uses".into())
                }
                r => done(Ret::of(r.map(|_| 0))),
            }
        }
        Op::Listen(fd, backlog) => {
            let (fd, b) = (*fd, *backlog);
            done(Ret::of(known(run.calls().listen(fd, b)).map(|_| 0)))
        }
        Op::Accept(fd) => {
            let fd = *fd;
            match once(run.calls().accept(fd)) {
                Err(Errno::EAGAIN) if !run.host().is_nonblocking(fd) => Ok(Progress::Blocked),
                r => done(Ret::of(r.map(i64::from))),
            }
        }
        Op::Connect { fd, started } => {
            let fd = *fd;
            if !*started {
                *started = true;
                run.start_active_open(fd);
                let remote = run.remote_addr();
                let r = once(run.calls().connect(fd, remote));
                if r != Err(Errno::EINPROGRESS) || run.host().is_nonblocking(fd) {
                    return done(Ret::of(r.map(|_| 0)));
                }
            }
            // inet_wait_for_connect: sleep while SYN_SENT/SYN_RECV, then report sock_error.
            if matches!(run.host().state(fd), Some(TcpState::SynSent | TcpState::SynRecv)) {
                return Ok(Progress::Blocked);
            }
            let err = run.calls().getsockopt(fd, SockOpt::SO_ERROR).ok().and_then(|v| v.as_i64()).unwrap_or(0);
            done(Ret::of(Errno::from_code(err as i32).map_or(Ok(0), Err)))
        }
        Op::Recv { fd, len, buf, peek, dontwait, inq } => {
            let (fd, len, buf, dontwait, inq) = (*fd, *len, *buf, *dontwait, *inq);
            let flags: &[MsgFlag] = if *peek { &[MsgFlag::MSG_PEEK] } else { &[] };
            match once(run.calls().recv(fd, len, buf, flags)) {
                Err(Errno::EAGAIN) if !dontwait && !run.host().is_nonblocking(fd) => Ok(Progress::Blocked),
                r => {
                    let ok = r.is_ok();
                    let mut ret = Ret::of(r.map(i64::from));
                    // tcp_recvmsg: the control message follows a call that did not fail.
                    if ok {
                        ret.mismatch = cmsg_mismatch(inq, run.host().recvmsg_inq(fd));
                    }
                    done(ret)
                }
            }
        }
        Op::Send { fd, len, buf, sent, flags, asleep, to } => {
            let fd = *fd;
            let blocking = !flags.dontwait && !run.host().is_nonblocking(fd);
            // net/core/stream.c `sk_stream_wait_memory`: a writer that found no room sleeps
            // (`sk_wait_event`) until something wakes the socket's wait queue — the write
            // space `tcp_check_space` announces once the socket is writeable
            // (`sk_stream_write_space`), or data, or a state change — and only then looks
            // at `sk_stream_memory_free` again. Freed memory alone does not wake it. A Fast
            // Open writer waiting for the handshake is woken by the state change.
            let woken = run.host().take_woken().contains(&fd);
            if *asleep && !woken {
                return Ok(Progress::Blocked);
            }
            *asleep = false;
            // MSG_FASTOPEN acts once, before `tcp_sendmsg_locked`'s copy loop: the rest of a
            // write that has queued bytes is the loop's.
            let fastopen = flags.fastopen && *sent == 0;
            let flags: Vec<MsgFlag> = [
                (flags.nosignal, MsgFlag::MSG_NOSIGNAL),
                (flags.more, MsgFlag::MSG_MORE),
                (flags.eor, MsgFlag::MSG_EOR),
                (flags.zerocopy, MsgFlag::MSG_ZEROCOPY),
                (flags.dontwait, MsgFlag::MSG_DONTWAIT),
                (fastopen, MsgFlag::MSG_FASTOPEN),
            ]
                .into_iter()
                .filter_map(|(on, f)| on.then_some(f))
                .collect();
            let rest = SendData::of_step(Some(*len - *sent), None, *buf);
            let r = match *to {
                Some(to) if *sent == 0 => run.calls().sendto(fd, &rest, &flags, to),
                _ => run.calls().send(fd, &rest, &flags),
            };
            let r = r.map_or(Err(Errno::EAGAIN), |s| known(s.result));
            match r.err() {
                None => {
                    *sent += r.unwrap_or(0);
                    if *sent >= *len || !blocking {
                        return done(Ret::of(Ok(i64::from(*sent))));
                    }
                    *asleep = true;
                    Ok(Progress::Blocked)
                }
                // sk_stream_wait_memory: a blocking send waits for room.
                Some(Errno::EAGAIN) if blocking => {
                    *asleep = true;
                    Ok(Progress::Blocked)
                }
                Some(_) if *sent > 0 => done(Ret::of(Ok(i64::from(*sent)))),
                Some(e) => done(Ret::of(Err(e))),
            }
        }
        Op::Close(script_fd) => {
            let h = run.handles.0.get(script_fd).copied();
            let r = match h {
                Some(Handle::Sock(fd)) => known(run.calls().close(fd)).map(|_| 0),
                _ => Ok(0),
            };
            done(Ret::of(r))
        }
        Op::Shutdown(fd, how) => {
            let (fd, how) = (*fd, *how);
            done(Ret::of(known(run.calls().shutdown(fd, how)).map(|_| 0)))
        }
        Op::Setsockopt(fd, opt, v) => {
            let (fd, opt, v) = (*fd, *opt, v.clone());
            done(Ret::of(known(run.calls().setsockopt(fd, opt, &v)).map(|_| 0)))
        }
        Op::ReuseAddr(fd) => {
            run.reuseaddr.insert(*fd);
            done(Ret::of(Ok(0)))
        }
        Op::Getsockopt(fd, opt, want) => {
            let (fd, opt, want) = (*fd, *opt, *want);
            let r = known(run.calls().getsockopt(fd, opt));
            let mut ret = Ret::of(r.as_ref().map(|_| 0).map_err(|e| *e));
            if let (Ok(v), Some(w)) = (&r, want) {
                let got = v.as_i64().or_else(|| v.get(0).and_then(|x| x.as_i64())).unwrap_or(-1);
                if got != w {
                    ret.mismatch = Some(format!("Bad getsockopt optval: expected: {w} actual: {got}"));
                }
            }
            done(ret)
        }
        Op::GetFl(fd) => {
            let fd = *fd;
            let flags = 2 | if run.host().is_nonblocking(fd) { 0o4000 } else { 0 };
            done(Ret::of(Ok(flags)))
        }
        Op::SetFl(fd, nb) => {
            let (fd, nb) = (*fd, *nb);
            done(Ret::of(run.host().sys_set_nonblocking(fd, nb).map(|_| 0)))
        }
        Op::Ioctl(fd, req, want) => {
            let (fd, req, want) = (*fd, *req, *want);
            let r = known(run.calls().ioctl(fd, req));
            let mut ret = Ret::of(r.map(|_| 0));
            if let (Ok(got), Some(w)) = (r, want) {
                if got != w {
                    ret.mismatch = Some(format!("Bad ioctl optval: expected: {w} actual: {got}"));
                }
            }
            done(ret)
        }
        Op::Poll { fds, deadline } => {
            let ready: Vec<u32> = fds.iter().map(|(fd, ev, _)| run.calls().poll(Some(*fd), *ev, Dur::ZERO).map_or(0, |m| m.0)).collect();
            let n = ready.iter().filter(|r| **r != 0).count() as i64;
            if n == 0 && deadline.is_some_and(|d| run_now(run) < d) {
                return Ok(Progress::Blocked);
            }
            let mut ret = Ret::of(Ok(n));
            for ((_, _, want), got) in fds.iter().zip(&ready) {
                if let Some(w) = want {
                    if w != got {
                        ret.mismatch = Some(format!("Expected revents {} but got {}", names(*w), names(*got)));
                    }
                }
            }
            done(ret)
        }
        Op::EpollCreate => done(Ret::of(known(run.calls().epoll_create()).map(|i| i as i64))),
        Op::EpollCtl { ep, op, fd, events } => {
            let (ep, op, fd, events) = (*ep, *op, *fd, *events);
            done(Ret::of(known(run.calls().epoll_ctl(ep, op, fd, events)).map(|_| 0)))
        }
        Op::EpollWait { ep, max, deadline, want } => {
            let (ep, max) = (*ep, *max);
            if !run.host().epoll_has_ready(ep) && deadline.is_some_and(|d| run_now(run) < d) {
                return Ok(Progress::Blocked);
            }
            let ready = known(run.calls().epoll_wait(ep, max as u32, Dur::ZERO)).unwrap_or_default();
            if ready.is_empty() && deadline.is_some_and(|d| run_now(run) < d) {
                return Ok(Progress::Blocked);
            }
            let mut ret = Ret::of(Ok(ready.len() as i64));
            if let (Some((w_events, w_fd)), Some((fd, mask))) = (*want, ready.first()) {
                let script_fd = run.handles.script_fd(Handle::Sock(*fd));
                if mask.0 != w_events || w_fd.is_some_and(|w| Some(w) != script_fd) {
                    ret.mismatch = Some(format!(
                        "epoll_event->events: expected: {} (fd {}) actual: {} (fd {})",
                        names(w_events),
                        w_fd.map_or("-".into(), |f| f.to_string()),
                        names(mask.0),
                        script_fd.map_or("?".into(), |f| f.to_string())
                    ));
                }
            }
            done(ret)
        }
    }
}

fn names(bits: u32) -> String {
    let n = PollMask(bits).names();
    if n.is_empty() {
        "0".into()
    } else {
        n.join("|")
    }
}

/// `strerror()` for the errnos the model reports.
fn strerror(e: Errno) -> &'static str {
    use Errno::*;
    match e {
        EAGAIN => "Resource temporarily unavailable",
        EPIPE => "Broken pipe",
        ECONNRESET => "Connection reset by peer",
        ECONNREFUSED => "Connection refused",
        ECONNABORTED => "Software caused connection abort",
        ETIMEDOUT => "Connection timed out",
        ENOTCONN => "Transport endpoint is not connected",
        EISCONN => "Transport endpoint is already connected",
        EALREADY => "Operation already in progress",
        EINPROGRESS => "Operation now in progress",
        EINVAL => "Invalid argument",
        EBADF => "Bad file descriptor",
        EADDRINUSE => "Address already in use",
        EADDRNOTAVAIL => "Cannot assign requested address",
        EHOSTUNREACH => "No route to host",
        ENETUNREACH => "Network is unreachable",
        EOPNOTSUPP => "Operation not supported",
        ENOPROTOOPT => "Protocol not available",
        EMFILE => "Too many open files",
        ENOBUFS => "No buffer space available",
        EINTR => "Interrupted system call",
        EEXIST => "File exists",
        ENOENT => "No such file or directory",
        ENOSYS => "Function not implemented",
        EFAULT => "Bad address",
    }
}

/// `end_syscall`'s checks, in its wording.
pub(crate) fn check_result(call: &Call, r: &Ret) -> Result<(), String> {
    let prefix = format!("runtime error in {} call: ", call.name);
    let errno_text = |e: Option<Errno>| e.map_or("0 (Success)".to_string(), |e| format!("{} ({})", e.code(), strerror(e)));
    if call.new_fd && call.expected >= 0 {
        if r.ret < 0 {
            return Err(format!("{prefix}Expected non-negative result but got {} with errno {}", r.ret, errno_text(r.errno)));
        }
    } else if r.ret != call.expected {
        return Err(if r.ret < 0 {
            format!("{prefix}Expected result {} but got {} with errno {}", call.expected, r.ret, errno_text(r.errno))
        } else {
            format!("{prefix}Expected result {} but got {}", call.expected, r.ret)
        });
    }
    if let Some(want) = &call.errno {
        let got = r.errno.map_or("", |e| e.name());
        if want != got {
            let code = Errno::all().iter().find(|e| e.name() == want).map_or(want.clone(), |e| format!("{} ({})", e.code(), strerror(*e)));
            return Err(format!("{prefix}Expected errno {code} but got {}", errno_text(r.errno)));
        }
    }
    match &r.mismatch {
        Some(m) => Err(format!("{prefix}{m}")),
        None => Ok(()),
    }
}

/// What a successful call changes in the run: new descriptors, the socket under test.
pub(crate) fn after(run: &mut Run, call: &Call, r: &Ret) {
    if r.ret < 0 {
        return;
    }
    match call.op {
        Op::Socket { .. } | Op::Accept(_) => {
            let fd = r.ret as Fd;
            run.handles.0.insert(call.expected, Handle::Sock(fd));
            run.set_under_test(fd);
            run.set_new_socket(fd, matches!(call.op, Op::Socket { .. }));
        }
        Op::EpollCreate => {
            run.handles.0.insert(call.expected, Handle::Epoll(r.ret as usize));
        }
        Op::Close(script_fd) => {
            if let Some(Handle::Sock(fd)) = run.handles.0.remove(&script_fd) {
                run.set_new_socket(fd, false);
            }
        }
        Op::Listen(fd, _) => run.set_new_socket(fd, false),
        _ => {}
    }
}

impl Handles {
    /// The script's number for a host handle.
    fn script_fd(&self, h: Handle) -> Option<i64> {
        self.0.iter().find(|(_, v)| **v == h).map(|(k, _)| *k)
    }
}
