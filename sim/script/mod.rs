//! The one interpreter of scenario scripts: each [`Step`] becomes calls on a [`Syscalls`]
//! system (the model or the real kernel), and its result one [`Observation`], written here
//! and only here, so that a model run and a real one log the same record the same way.
//!
//! Names are the script's: sockets and epoll instances are named in the file and mapped to the
//! system's handles as they are made. A call on a name that is not (or no longer) open fails
//! with EBADF, as a call on a closed descriptor does.

pub mod observe;

use crate::errno::Errno;
use observe::event_names;
use crate::scenario::{EpollOp, KqFilter, MsgFlag, Observation, Step};
use crate::socket::epoll::{CtlOp, EPOLLET, EPOLLONESHOT};
use crate::socket::kqueue::{errno_from_freebsd, KEvent, KFilter};
use crate::syscall::{Blocked, Sent, SysErr, Syscalls};
use crate::tcp::conn::SendData;
use crate::tcp::uapi::SockOpt;
use crate::tcp::view::PollMask;
use crate::time::Dur;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use crate::addr::SockAddr;
use std::net::IpAddr;

/// An `until_error` send stops after this many bytes even if no call fails (a safety bound
/// for a receiver that keeps draining).
pub const UNTIL_ERROR_MAX_BYTES: u64 = 256 << 20;

/// The script's names for a system's sockets (`K`) and epoll instances (`E`).
pub struct Names<K, E> {
    socks: BTreeMap<String, K>,
    /// Sockets the script closed: a call on one fails with EBADF, as on a closed descriptor.
    closed: BTreeSet<String>,
    eps: BTreeMap<String, E>,
}

impl<K, E> Default for Names<K, E> {
    fn default() -> Self {
        Names { socks: BTreeMap::new(), closed: BTreeSet::new(), eps: BTreeMap::new() }
    }
}

impl<K: Copy + PartialEq, E> Names<K, E> {
    /// The name of a socket (the last one given to it).
    fn name_of(&self, s: K) -> Option<&str> {
        self.socks.iter().filter(|(_, v)| **v == s).map(|(n, _)| n.as_str()).last()
    }

    fn open(&mut self, name: &str, s: K) {
        self.closed.remove(name);
        self.socks.insert(name.to_string(), s);
    }
}

/// A harness failure at one step of a script.
#[derive(Debug)]
pub struct StepFailed<F> {
    pub step: usize,
    pub op: &'static str,
    pub fatal: F,
}

/// Runs `steps` in order on `sys`; one observation per step, each also passed to `log` as it
/// is made. Stops at the first harness failure.
pub fn run<S: Syscalls>(
    sys: &mut S,
    steps: &[Step],
    mut log: impl FnMut(&mut S, &Observation),
) -> Result<Vec<Observation>, StepFailed<S::Fatal>> {
    let mut names = Names::default();
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let mut obs = exec(sys, &mut names, step);
        obs.step = i;
        obs.t_ns = sys.settle();
        if let Some(fatal) = sys.take_fatal() {
            return Err(StepFailed { step: i, op: step.op(), fatal });
        }
        log(sys, &obs);
        out.push(obs);
    }
    Ok(out)
}

/// Makes the calls of one step; its observation (`step` and `t_ns` are the caller's).
pub fn exec<S: Syscalls>(sys: &mut S, names: &mut Names<S::Sock, S::Ep>, step: &Step) -> Observation {
    let mut obs = Observation { op: step.op().to_string(), ..Observation::default() };
    obs.sock = step_sock(step).map(str::to_string);
    call(sys, names, step, &mut obs);
    obs
}

/// The calls of one step, their result written into `obs`.
fn call<S: Syscalls>(sys: &mut S, names: &mut Names<S::Sock, S::Ep>, step: &Step, obs: &mut Observation) {
    let sock_name = step_sock(step);
    let sock = sock_name.and_then(|n| names.socks.get(n).copied());
    if let Some(n) = sock_name.filter(|n| sock.is_none() && !names.closed.contains(*n)) {
        if !matches!(step, Step::Socket { .. }) {
            sys.unknown_name(&format!("socket `{n}`"));
        }
    }
    let ep = step_ep(step).map(|n| (n, names.eps.get(n).copied()));
    if let Some((n, None)) = ep.filter(|_| !matches!(step, Step::EpollCreate { .. })) {
        sys.unknown_name(&format!("epoll `{n}`"));
    }
    let bad = || Err::<(), SysErr>(Errno::EBADF.into());
    match step {
        Step::Socket { host, sock: name, nonblocking } => {
            let r = sys.socket(host, *nonblocking).map(|s| names.open(name, s));
            // Descriptor numbers are the process's business, not the kernel's: the log
            // records success as 0 so that it compares with a real program's.
            set_result(obs, r.map(|_| 0));
        }
        Step::Bind { port, .. } => set_unit(obs, sock.map_or_else(bad, |s| sys.bind(s, *port))),
        Step::Listen { backlog, .. } => set_unit(obs, sock.map_or_else(bad, |s| sys.listen(s, *backlog))),
        Step::Connect { to, .. } => {
            let Some(s) = sock else { return set_unit(obs, bad()) };
            let Some(remote) = resolve(to, |h| sys.host_addr(h)) else { return set_unit(obs, Err(Errno::EINVAL.into())) };
            match sys.connect(s, remote) {
                Ok(r) => set_unit(obs, r),
                Err(Blocked) => mark_blocked(obs),
            }
        }
        Step::Accept { new, .. } => {
            let Some(s) = sock else { return set_unit(obs, bad()) };
            match sys.accept(s) {
                Ok(r) => {
                    let r = r.map(|child| names.open(new, child));
                    set_unit(obs, r);
                }
                Err(Blocked) => mark_blocked(obs),
            }
        }
        Step::Send { len, data, buf, flags, until_error, .. } => {
            let Some(s) = sock else { return set_unit(obs, bad()) };
            let payload = SendData::of_step(*len, data.as_deref(), *buf);
            if *until_error {
                send_until_error(sys, s, &payload, flags, obs);
            } else {
                match sys.send(s, &payload, flags) {
                    Ok(sent) => record_send(obs, &sent),
                    Err(Blocked) => mark_blocked(obs),
                }
            }
        }
        Step::Sendto { to, len, data, buf, flags, .. } => {
            let Some(s) = sock else { return set_unit(obs, bad()) };
            let Some(remote) = resolve(to, |h| sys.host_addr(h)) else { return set_unit(obs, Err(Errno::EINVAL.into())) };
            let payload = SendData::of_step(*len, data.as_deref(), *buf);
            match sys.sendto(s, &payload, flags, remote) {
                Ok(sent) => record_send(obs, &sent),
                Err(Blocked) => mark_blocked(obs),
            }
        }
        Step::Recv { len, buf, flags, .. } => {
            let Some(s) = sock else { return set_unit(obs, bad()) };
            match sys.recv(s, *len, *buf, flags) {
                Ok(r) => set_result(obs, r.map(i64::from)),
                Err(Blocked) => mark_blocked(obs),
            }
        }
        Step::Shutdown { how, .. } => set_unit(obs, sock.map_or_else(bad, |s| sys.shutdown(s, *how))),
        Step::Close { sock: name } => {
            if names.socks.remove(name).is_some() {
                names.closed.insert(name.clone());
            }
            set_unit(obs, sock.map_or_else(bad, |s| sys.close(s)));
        }
        Step::Setsockopt { opt, value, .. } => {
            set_unit(obs, sock.map_or_else(bad, |s| sys.setsockopt(s, *opt, value)))
        }
        Step::Getsockopt { opt, .. } => {
            match sock.map_or(Err(Errno::EBADF.into()), |s| sys.getsockopt(s, *opt)) {
                Ok(v) => {
                    obs.ret = Some(0);
                    obs.value = Some(opt_value(*opt, v));
                }
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::Ioctl { req, .. } => {
            // ioctl() returns 0 and writes the count through its argument.
            match sock.map_or(Err(Errno::EBADF.into()), |s| sys.ioctl(s, *req)) {
                Ok(n) => {
                    obs.ret = Some(0);
                    obs.value = Some(json!(n));
                }
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::Poll { events, timeout, .. } => {
            let Some(requested) = event_bits(events) else { return set_unit(obs, Err(Errno::EINVAL.into())) };
            match sys.poll(sock, PollMask(requested), timeout.map_or(Dur::ZERO, |d| d.0)) {
                Ok(got) => {
                    obs.ret = Some(i64::from(!got.is_empty()));
                    obs.events = Some(event_names(got.0));
                }
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::EpollCreate { ep } => {
            let r = sys.epoll_create().map(|e| {
                names.eps.insert(ep.clone(), e);
            });
            set_unit(obs, r);
        }
        Step::EpollCtl { ep, action, events, .. } => {
            let Some(s) = sock else { return set_unit(obs, bad()) };
            let Some(&e) = names.eps.get(ep) else { return set_unit(obs, bad()) };
            let Some(bits) = event_bits(events) else { return set_unit(obs, Err(Errno::EINVAL.into())) };
            let op = match action {
                EpollOp::Add => CtlOp::Add,
                EpollOp::Mod => CtlOp::Mod,
                EpollOp::Del => CtlOp::Del,
            };
            set_unit(obs, sys.epoll_ctl(e, op, s, bits));
        }
        Step::EpollWait { ep, timeout, max } => {
            let Some(&e) = names.eps.get(ep) else { return set_unit(obs, Err(Errno::EINVAL.into())) };
            match sys.epoll_wait(e, *max, timeout.map_or(Dur::ZERO, |d| d.0)) {
                Ok(ready) => record_epoll_wait(obs, names, &ready),
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::Kevent { filter, lowat, .. } => {
            let filter = kfilter(*filter);
            match sock.map_or(Err(Errno::EBADF.into()), |s| sys.kevent(s, filter, *lowat)) {
                Ok(event) => record_kevent(obs, filter, event),
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::Sleep { dur } => {
            sys.sleep(dur.0);
            obs.ret = Some(0);
        }
        Step::Fault { .. } => match sys.fault(&step.fault_action().expect("a fault step")) {
            Ok(()) => obs.ret = Some(0),
            Err(e) => {
                obs.ret = Some(-1);
                obs.value = Some(json!(e));
            }
        },
    }
}

/// The socket a step names, if any.
fn step_sock(step: &Step) -> Option<&str> {
    match step {
        Step::Socket { sock, .. }
        | Step::Bind { sock, .. }
        | Step::Listen { sock, .. }
        | Step::Connect { sock, .. }
        | Step::Accept { sock, .. }
        | Step::Send { sock, .. }
        | Step::Sendto { sock, .. }
        | Step::Recv { sock, .. }
        | Step::Shutdown { sock, .. }
        | Step::Close { sock }
        | Step::Setsockopt { sock, .. }
        | Step::Getsockopt { sock, .. }
        | Step::Ioctl { sock, .. }
        | Step::Poll { sock, .. }
        | Step::EpollCtl { sock, .. }
        | Step::Kevent { sock, .. } => Some(sock),
        Step::EpollCreate { .. } | Step::EpollWait { .. } | Step::Sleep { .. } | Step::Fault { .. } => None,
    }
}

/// The epoll instance a step names, if any.
fn step_ep(step: &Step) -> Option<&str> {
    match step {
        Step::EpollCreate { ep } | Step::EpollCtl { ep, .. } | Step::EpollWait { ep, .. } => Some(ep),
        _ => None,
    }
}

/// `HOST:PORT` (a host name, looked up by `addr_of`), `A.B.C.D:PORT` or `[IPv6]:PORT` to an
/// address.
pub fn resolve(to: &str, addr_of: impl Fn(&str) -> Option<IpAddr>) -> Option<SockAddr> {
    let (host, port) = to.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip = match addr_of(host) {
        Some(ip) => ip,
        None => crate::addr::parse_host_ip(host)?,
    };
    Some(SockAddr::new(ip, port))
}

/// Event names (`POLLIN`, `EPOLLIN`, …, and the `EPOLLET`/`EPOLLONESHOT` flags) to bits; `None`
/// for an unknown name.
fn event_bits(events: &[String]) -> Option<u32> {
    events.iter().try_fold(0, |acc, e| {
        let bit = match e.as_str() {
            "EPOLLET" => EPOLLET,
            "EPOLLONESHOT" => EPOLLONESHOT,
            other => PollMask::from_name(other)?.0,
        };
        Some(acc | bit)
    })
}

fn set_result(obs: &mut Observation, r: Result<i64, SysErr>) {
    match r {
        Ok(v) => obs.ret = Some(v),
        Err(e) => {
            obs.ret = Some(-1);
            match e {
                SysErr::Known(e) => obs.errno = Some(e),
                // An errno the model has no name for: its number.
                SysErr::Unknown(code) => obs.value = Some(json!({ "errno": code })),
            }
        }
    }
}

fn set_unit(obs: &mut Observation, r: Result<(), SysErr>) {
    set_result(obs, r.map(|()| 0));
}

fn mark_blocked(obs: &mut Observation) {
    obs.ret = None;
    obs.value = Some(json!({ "blocked": true }));
}

fn record_send(obs: &mut Observation, sent: &Sent) {
    set_result(obs, sent.result.map(i64::from));
    obs.sigpipe = sent.sigpipe;
}

/// Sends `data` again and again, never waiting, until a call fails: the readiness recipes'
/// "sends until EAGAIN". Records the last call, and the bytes queued and calls made.
fn send_until_error<S: Syscalls>(sys: &mut S, s: S::Sock, data: &SendData, flags: &[MsgFlag], obs: &mut Observation) {
    let mut flags = flags.to_vec();
    if !flags.contains(&MsgFlag::MSG_DONTWAIT) {
        flags.push(MsgFlag::MSG_DONTWAIT);
    }
    let (mut total, mut calls, mut sigpipe) = (0u64, 0u64, false);
    loop {
        calls += 1;
        let Ok(sent) = sys.send(s, data, &flags) else { return mark_blocked(obs) };
        sigpipe |= sent.sigpipe;
        let n = sent.result.map_or(0, u64::from);
        total += n;
        if n == 0 || total >= UNTIL_ERROR_MAX_BYTES {
            record_send(obs, &Sent { sigpipe, ..sent });
            // The errno's number, if the model has no name for it, wins the `value` field.
            obs.value = obs.value.take().or(Some(json!({ "bytes": total, "calls": calls })));
            return;
        }
    }
}

/// An option's value as the log writes it: SO_ERROR as 0 or the errno's name.
fn opt_value(opt: SockOpt, v: serde_json::Value) -> serde_json::Value {
    match (opt, v.as_i64()) {
        (SockOpt::SO_ERROR, Some(0)) => json!(0),
        (SockOpt::SO_ERROR, Some(c)) => Errno::from_code(c as i32).map_or(v, |e| json!(e.name())),
        _ => v,
    }
}

/// An epoll_wait() as the log writes it: the count, and the first ready socket's events; every
/// ready socket by name only when there are several.
fn record_epoll_wait<K: Copy + PartialEq, E>(obs: &mut Observation, names: &Names<K, E>, ready: &[(K, PollMask)]) {
    obs.ret = Some(ready.len() as i64);
    let first = ready.first().map_or(PollMask::EMPTY, |(_, m)| *m);
    obs.events = Some(event_names(first.0));
    if ready.len() > 1 {
        obs.value = Some(json!(ready
            .iter()
            .map(|(s, m)| json!({ "sock": names.name_of(*s), "events": m.names() }))
            .collect::<Vec<_>>()));
    }
}

fn kfilter(f: KqFilter) -> KFilter {
    match f {
        KqFilter::EVFILT_READ => KFilter::Read,
        KqFilter::EVFILT_WRITE => KFilter::Write,
        KqFilter::EVFILT_EMPTY => KFilter::Empty,
    }
}

/// A kevent's result as the log writes it: `ret` the number of events (0 or 1), `events` the
/// filter's name when it fired, and `value` `{data, flags, fflags}` with the flags by name and
/// `fflags` as the errno's name (0 when none), as the readiness table shows.
fn record_kevent(obs: &mut Observation, filter: KFilter, event: Option<KEvent>) {
    obs.ret = Some(i64::from(event.is_some()));
    obs.events = Some(event.iter().map(|_| filter.name().to_string()).collect());
    obs.value = event.map(|ev| {
        let flags: Vec<&str> = if ev.eof() { vec!["EV_EOF"] } else { Vec::new() };
        let fflags = match errno_from_freebsd(ev.fflags) {
            Some(e) if ev.fflags != 0 => json!(e.name()),
            _ => json!(ev.fflags),
        };
        json!({ "data": ev.data, "flags": flags, "fflags": fflags })
    });
}
