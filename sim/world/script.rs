//! The scripted form of a scenario: exact syscalls on named sockets, in order, each result
//! recorded as an [`Observation`] (the same record the real-kernel harness writes).
//!
//! A blocking call is modelled as what the kernel does for it: sleep on the socket until
//! it is ready (`sk_wait_event`), then make the call. A call that would still block when
//! the run ends is recorded as blocked.

use super::{resolve, World};
use crate::engine::Sim;
use crate::errno::Errno;
use crate::host::{Fd, Host, RecvFlags, SendFlags, SyscallResult};
use crate::rules;
use crate::scenario::{EpollOp, FaultSpec, KqFilter, MsgFlag, Observation, Step};
use crate::socket::epoll::{CtlOp, EPOLLET, EPOLLONESHOT};
use crate::socket::kqueue::{errno_from_freebsd, KEvent, KFilter};
use crate::socket::view::PollMask;
use crate::tcp::profile::Os;
use crate::tcp::conn::SendData;
use crate::tcp::state::TcpState;
use serde_json::json;
use std::collections::BTreeMap;

/// What became of one step, besides its observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// The call was still blocked when the run ended.
    Blocked,
}

/// Named sockets and epoll instances of a script.
#[derive(Default)]
struct Names {
    socks: BTreeMap<String, (usize, Fd)>,
    /// epoll name → (host, index on that host); bound to a host by its first epoll_ctl.
    eps: BTreeMap<String, Option<(usize, usize)>>,
}

/// Runs `steps` in order and returns one observation per step.
pub(super) fn run_script(world: &mut World, steps: &[Step]) -> Vec<Observation> {
    let mut names = Names::default();
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        if world.stopped() {
            break;
        }
        let mut obs = Observation { step: i, op: step.op().to_string(), ..Observation::default() };
        exec(world, &mut names, step, &mut obs);
        // What the call set in motion and is due now (a loopback peer's answer) is processed
        // before the call returns, as softirq work is on the way out of a syscall.
        let now = world.now();
        world.run_until(now);
        obs.t_ns = now.as_nanos();
        world.sim.trace_mut().record(now, "syscall", &obs);
        out.push(obs);
    }
    out
}

fn flags_has(flags: &[MsgFlag], f: MsgFlag) -> bool {
    flags.contains(&f)
}

fn set_result(obs: &mut Observation, r: Result<i64, Errno>) {
    match r {
        Ok(v) => obs.ret = Some(v),
        Err(e) => {
            obs.ret = Some(-1);
            obs.errno = Some(e);
        }
    }
}

fn mark_blocked(obs: &mut Observation) {
    obs.ret = None;
    obs.value = Some(json!({ "blocked": true }));
}


/// The poll mask of a socket, or NVAL if it does not exist.
fn mask_of(sim: &Sim<Host>, (h, fd): (usize, Fd)) -> PollMask {
    sim.node(h).poll_mask(fd)
}

fn exec(world: &mut World, names: &mut Names, step: &Step, obs: &mut Observation) {
    let end = world.end;
    let sock = |names: &Names, s: &str| names.socks.get(s).copied();
    match step {
        Step::Socket { host, sock: name, nonblocking } => {
            obs.sock = Some(name.clone());
            let Some(h) = world.sim.host_index(host) else { return set_result(obs, Err(Errno::EINVAL)) };
            let fd = world.sim.node_mut(h).sys_socket(*nonblocking);
            names.socks.insert(name.clone(), (h, fd));
            // Descriptor numbers are the process's business, not the kernel's: the log
            // records success as 0 so that it compares with a real program's.
            set_result(obs, Ok(0));
        }
        Step::Bind { sock: name, port } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let r = world.sim.node_mut(h).sys_bind(fd, *port);
            set_result(obs, r.map(|_| 0));
        }
        Step::Listen { sock: name, backlog } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let r = world.sim.with_node(h, |n, ctx| n.sys_listen(fd, *backlog, ctx));
            set_result(obs, r.map(|_| 0));
        }
        Step::Connect { sock: name, to } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let Some(remote) = resolve(&world.sim, to) else { return set_result(obs, Err(Errno::EINVAL)) };
            let r = world.sim.with_node(h, |n, ctx| n.sys_connect(fd, remote, ctx));
            if r == Err(Errno::EINPROGRESS) && !world.sim.node(h).is_nonblocking(fd) {
                // inet_wait_for_connect: sleep while SYN_SENT/SYN_RECV, then report sock_error.
                let connecting = |sim: &Sim<Host>| {
                    matches!(sim.node(h).state(fd), Some(TcpState::SynSent | TcpState::SynRecv))
                };
                if !world.wait_for(end, |sim| !connecting(sim)) {
                    return mark_blocked(obs);
                }
                let err = world.sim.node_mut(h).sys_getsockopt(fd, crate::scenario::SockOpt::SO_ERROR);
                let code = err.ok().and_then(|v| v.as_i64()).unwrap_or(0);
                let r = match Errno::from_code(code as i32) {
                    Some(e) => Err(e),
                    None => Ok(0),
                };
                return set_result(obs, r);
            }
            set_result(obs, r.map(|_| 0));
        }
        Step::Accept { sock: name, new } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let blocking = !world.sim.node(h).is_nonblocking(fd);
            let readable = |sim: &Sim<Host>| mask_of(sim, (h, fd)).intersects(PollMask::IN | PollMask::ERR);
            if blocking && !world.wait_for(end, readable) {
                return mark_blocked(obs);
            }
            let r = world.sim.node_mut(h).sys_accept(fd, false);
            if let Ok(new_fd) = r {
                names.socks.insert(new.clone(), (h, new_fd));
            }
            set_result(obs, r.map(|_| 0));
        }
        Step::Send { sock: name, len, data, flags, until_error } => {
            obs.sock = Some(name.clone());
            let Some(target) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let payload = SendData::of_step(*len, data.as_deref());
            let flags_nb = flags_has(flags, MsgFlag::MSG_DONTWAIT);
            let sf = SendFlags { nosignal: flags_has(flags, MsgFlag::MSG_NOSIGNAL) };
            if *until_error {
                send_until_error(world, target, &payload, sf, obs);
            } else {
                let r = send_once(world, target, payload, sf, flags_nb);
                match r {
                    Some(r) => record_send(obs, r),
                    None => mark_blocked(obs),
                }
            }
        }
        Step::Recv { sock: name, len, flags } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let rf = RecvFlags { peek: flags_has(flags, MsgFlag::MSG_PEEK) };
            let nonblocking = flags_has(flags, MsgFlag::MSG_DONTWAIT) || world.sim.node(h).is_nonblocking(fd);
            loop {
                match world.sim.with_node(h, |n, ctx| n.sys_recv(fd, *len, rf, ctx)) {
                    Err(Errno::EAGAIN) if !nonblocking => {
                        if !sleep_on(world, (h, fd), PollMask::IN | PollMask::ERR | PollMask::HUP | PollMask::RDHUP) {
                            return mark_blocked(obs);
                        }
                    }
                    other => return set_result(obs, other.map(|d| d.len() as i64)),
                }
            }
        }
        Step::Shutdown { sock: name, how } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let r = world.sim.with_node(h, |n, ctx| n.sys_shutdown(fd, *how, ctx));
            set_result(obs, r.map(|_| 0));
        }
        Step::Close { sock: name } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = names.socks.remove(name) else { return set_result(obs, Err(Errno::EBADF)) };
            let r = world.sim.with_node(h, |n, ctx| n.sys_close(fd, ctx));
            set_result(obs, r.map(|_| 0));
        }
        Step::Setsockopt { sock: name, opt, value } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let r = world.sim.with_node(h, |n, ctx| n.sys_setsockopt(fd, *opt, value, ctx));
            set_result(obs, r.map(|_| 0));
        }
        Step::Getsockopt { sock: name, opt } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            match world.sim.node_mut(h).sys_getsockopt(fd, *opt) {
                Ok(v) => {
                    obs.ret = Some(0);
                    // SO_ERROR reads as 0 or the errno name, as the harness logs it.
                    let v = match (opt, v.as_i64()) {
                        (crate::scenario::SockOpt::SO_ERROR, Some(c)) => {
                            Errno::from_code(c as i32).map_or(json!(0), |e| json!(e.name()))
                        }
                        _ => v,
                    };
                    obs.value = Some(v);
                }
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::Ioctl { sock: name, req } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            // ioctl() returns 0 and writes the count through its argument.
            match world.sim.node_mut(h).sys_ioctl(fd, *req) {
                Ok(n) => {
                    obs.ret = Some(0);
                    obs.value = Some(json!(n));
                }
                Err(e) => set_result(obs, Err(e)),
            }
        }
        Step::Poll { sock: name, events, timeout } => {
            obs.sock = Some(name.clone());
            let target = sock(names, name);
            let requested = events.iter().filter_map(|e| PollMask::from_name(e)).fold(PollMask::EMPTY, |a, b| a | b);
            let deadline = world.now() + timeout.map_or(crate::time::Dur::ZERO, |d| d.0);
            let revents = |sim: &Sim<Host>| match target {
                Some((h, fd)) => sim.node(h).poll_revents(fd, requested),
                None => PollMask::NVAL,
            };
            world.wait_for(deadline.min(end), |sim| !revents(sim).is_empty());
            let got = revents(&world.sim);
            if let Some((h, fd)) = target {
                check_answer(world, h, fd, Answer::Poll { requested, revents: got });
            }
            obs.ret = Some(i64::from(!got.is_empty()));
            obs.events = Some(got.names().into_iter().map(String::from).collect());
        }
        Step::EpollCreate { ep } => {
            // The instance is bound to a host by its first epoll_ctl; with no Linux host in
            // the run there is no kernel that has epoll to create it.
            let any_linux = (0..world.sim.host_count()).any(|h| world.sim.node(h).os() == Os::Linux);
            if !any_linux {
                return set_result(obs, Err(Errno::ENOSYS));
            }
            names.eps.insert(ep.clone(), None);
            obs.ret = Some(0);
        }
        Step::EpollCtl { ep, sock: name, action, events } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let Some(binding) = names.eps.get_mut(ep) else { return set_result(obs, Err(Errno::EBADF)) };
            let (eh, idx) = match *binding {
                Some(b) => b,
                None => match world.sim.node_mut(h).sys_epoll_create() {
                    Ok(idx) => *binding.insert((h, idx)),
                    Err(e) => return set_result(obs, Err(e)),
                },
            };
            if eh != h {
                // One epoll per host here: a script mixing hosts in one epoll is not modelled.
                return set_result(obs, Err(Errno::EINVAL));
            }
            let bits = epoll_bits(events);
            let current = mask_of(&world.sim, (h, fd));
            let op = match action {
                EpollOp::Add => CtlOp::Add,
                EpollOp::Mod => CtlOp::Mod,
                EpollOp::Del => CtlOp::Del,
            };
            let r = world.sim.node_mut(h).epolls[idx].ctl(op, fd, bits, current);
            set_result(obs, r.map(|_| 0));
        }
        Step::EpollWait { ep, timeout, max } => {
            let Some(Some((h, idx))) = names.eps.get(ep).copied() else {
                return set_result(obs, Err(Errno::EINVAL));
            };
            let deadline = world.now() + timeout.map_or(crate::time::Dur::ZERO, |d| d.0);
            world.wait_for(deadline.min(end), |sim| sim.node(h).epolls[idx].has_ready());
            let ready = world.sim.node_mut(h).epoll_wait(idx, *max as usize);
            let by_fd: BTreeMap<Fd, &str> = names
                .socks
                .iter()
                .filter(|(_, (hh, _))| *hh == h)
                .map(|(n, (_, fd))| (*fd, n.as_str()))
                .collect();
            for (fd, mask) in &ready {
                let events = world.sim.node(h).epolls[idx].events_of(*fd).unwrap_or(0);
                check_answer(world, h, *fd, Answer::Epoll { events, reported: *mask });
            }
            // As the real-kernel harness logs it: the count, and the first ready socket's
            // events; every ready socket by name only when there are several.
            obs.ret = Some(ready.len() as i64);
            let first = ready.first().map_or(PollMask::EMPTY, |(_, m)| *m);
            obs.events = Some(first.names().into_iter().map(String::from).collect());
            if ready.len() > 1 {
                obs.value = Some(json!(ready
                    .iter()
                    .map(|(fd, m)| json!({ "sock": by_fd.get(fd), "events": m.names() }))
                    .collect::<Vec<_>>()));
            }
        }
        Step::Kevent { sock: name, filter, lowat } => {
            obs.sock = Some(name.clone());
            let Some((h, fd)) = sock(names, name) else { return set_result(obs, Err(Errno::EBADF)) };
            let filter = kfilter(*filter);
            let event = match world.sim.node(h).sys_kevent(fd, filter, *lowat) {
                Ok(event) => event,
                Err(e) => return set_result(obs, Err(e)),
            };
            check_answer(world, h, fd, Answer::Kevent { filter, lowat: *lowat, event });
            record_kevent(obs, filter, event);
        }
        Step::Sleep { dur } => {
            let t = (world.now() + dur.0).min(end);
            world.run_until(t);
            obs.ret = Some(0);
        }
        Step::Fault { kind, link, host, drop, direction } => {
            let spec = FaultSpec { at: None, kind: *kind, link: link.clone(), host: host.clone(), drop: *drop, direction: *direction };
            match world.sim.apply_fault(&spec) {
                Ok(()) => obs.ret = Some(0),
                Err(e) => {
                    obs.ret = Some(-1);
                    obs.value = Some(json!(e.to_string()));
                }
            }
        }
    }
}

fn kfilter(f: KqFilter) -> KFilter {
    match f {
        KqFilter::EVFILT_READ => KFilter::Read,
        KqFilter::EVFILT_WRITE => KFilter::Write,
        KqFilter::EVFILT_EMPTY => KFilter::Empty,
    }
}

/// A kevent's result as the observation log writes it: `ret` the number of events (0 or 1),
/// `events` the filter's name when it fired, and `value` `{data, flags, fflags}` with the
/// flags by name and `fflags` as the errno's name (0 when none), as the readiness table shows.
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

/// EPOLL* names to bits, with EPOLLET and EPOLLONESHOT.
fn epoll_bits(events: &[String]) -> u32 {
    events
        .iter()
        .map(|e| match e.as_str() {
            "EPOLLET" => EPOLLET,
            "EPOLLONESHOT" => EPOLLONESHOT,
            other => PollMask::from_name(other).map_or(0, |m| m.0),
        })
        .fold(0, |a, b| a | b)
}

/// A readiness call's request and answer, for the rules.
enum Answer {
    Poll { requested: PollMask, revents: PollMask },
    Epoll { events: u32, reported: PollMask },
    /// `event`: none when the filter did not fire.
    Kevent { filter: KFilter, lowat: Option<u32>, event: Option<KEvent> },
}

/// The rules' name for the system a host runs.
fn rules_os(os: Os) -> rules::Os {
    match os {
        Os::Linux => rules::Os::Linux,
        Os::Freebsd => rules::Os::FreeBsd,
    }
}

/// Holds a poll, epoll or kevent answer against the documented rules of the host's system,
/// and notes which rules applied (the readiness table lists them).
fn check_answer(world: &mut World, h: usize, fd: Fd, answer: Answer) {
    let Some(view) = world.sim.node(h).view(fd) else { return };
    let os = rules_os(world.sim.node(h).os());
    let observed = match answer {
        Answer::Poll { requested, revents } => rules::Observed::poll(os, &view, requested, revents),
        Answer::Epoll { events, reported } => rules::Observed::epoll(&view, events, reported),
        Answer::Kevent { filter, lowat, event } => rules::Observed::kevent(&view, filter, lowat, event),
    };
    let now = world.now();
    world.checker.observe(now, &observed);
    world.applied_rules.extend(rules::rules_for(&observed));
}

/// One send, blocking until everything is queued when the socket blocks
/// (`sk_stream_wait_memory`). `None`: still blocked when the run ended.
fn send_once(world: &mut World, (h, fd): (usize, Fd), data: SendData, flags: SendFlags, dontwait: bool) -> Option<SyscallResult> {
    let nonblocking = dontwait || world.sim.node(h).is_nonblocking(fd);
    let total = match &data {
        SendData::Derived(n) => *n,
        SendData::Bytes(b) => b.len() as u32,
    };
    let mut sent = 0u32;
    loop {
        let rest = match &data {
            SendData::Derived(_) => SendData::Derived(total - sent),
            SendData::Bytes(b) => SendData::Bytes(b[sent as usize..].to_vec()),
        };
        let r = world.sim.with_node(h, |n, ctx| n.sys_send(fd, rest, flags, ctx));
        match r.errno {
            None => {
                sent += r.ret as u32;
                if sent >= total || nonblocking {
                    return Some(SyscallResult { ret: i64::from(sent), ..r });
                }
            }
            Some(Errno::EAGAIN) if !nonblocking => {}
            Some(_) if sent > 0 => return Some(SyscallResult { ret: i64::from(sent), errno: None, sigpipe: false }),
            Some(_) => return Some(r),
        }
        if !sleep_on(world, (h, fd), PollMask::OUT | PollMask::ERR | PollMask::HUP) {
            return None;
        }
    }
}

/// A blocking call's sleep (`sk_wait_event`): until the socket shows one of `wanted`. If it
/// already does and the call still could not proceed (readable below SO_RCVLOWAT, writable
/// but short of memory), until the next thing happens. False when the run ends first.
fn sleep_on(world: &mut World, (h, fd): (usize, Fd), wanted: PollMask) -> bool {
    if mask_of(&world.sim, (h, fd)).intersects(wanted) {
        return world.step_once();
    }
    let end = world.end;
    world.wait_for(end, |sim| mask_of(sim, (h, fd)).intersects(wanted))
}

fn record_send(obs: &mut Observation, r: SyscallResult) {
    obs.ret = Some(r.ret);
    obs.errno = r.errno;
    obs.sigpipe = r.sigpipe;
}

/// Sends `data` again and again until a call fails: the readiness recipes' "sends until
/// EAGAIN". Records the failing call, and the bytes queued and calls made before it.
fn send_until_error(world: &mut World, (h, fd): (usize, Fd), data: &SendData, flags: SendFlags, obs: &mut Observation) {
    let mut total = 0i64;
    let mut calls = 0u32;
    loop {
        calls += 1;
        let r = world.sim.with_node(h, |n, ctx| n.sys_send(fd, data.clone(), flags, ctx));
        match r.errno {
            None if r.ret > 0 && calls < 1_000_000 => total += r.ret,
            _ => {
                // The last call's result, with what the calls before it queued.
                record_send(obs, r);
                obs.value = Some(json!({ "bytes": total, "calls": calls }));
                return;
            }
        }
    }
}

impl World {
    /// Runs exactly one thing that happens before the end of the run.
    pub(crate) fn step_once(&mut self) -> bool {
        let end = self.end;
        self.step_before(end)
    }
}
