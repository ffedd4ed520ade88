//! The model's side of [`Syscalls`]: calls on the simulated hosts, in simulated time. The
//! script itself is interpreted by [`crate::script`], as on the real kernel.
//!
//! A blocking call is modelled as what the kernel does for it: sleep on the socket until
//! it is ready (`sk_wait_event`), then make the call. A call that would still block when
//! the run ends answers [`Blocked`].

use super::World;
use crate::engine::fault::FaultAction;
use crate::engine::Sim;
use crate::errno::Errno;
use crate::host::{Fd, Host, RecvFlags, SendFlags, SyscallResult};
use crate::rules;
use crate::scenario::{MsgFlag, Observation, Step};
use crate::socket::epoll::CtlOp;
use crate::socket::kqueue::{KEvent, KFilter};
use crate::syscall::{Blocked, Blocking, Sent, SysErr, Syscalls};
use crate::tcp::conn::SendData;
use crate::tcp::profile::Os;
use crate::tcp::state::TcpState;
use crate::tcp::uapi::{IoctlReq, OptValue, ShutHow, SockOpt, UserBuf};
use crate::tcp::view::PollMask;
use crate::time::{Dur, SimTime};
use std::convert::Infallible;
use crate::addr::SockAddr;
use std::net::IpAddr;

/// Runs `steps` in order and returns one observation per step, each traced as a `syscall`.
/// Once a limit stopped the run (`World::stopped`), time stands still: the steps left run at
/// once and are left out, all but the one the limit interrupted.
pub(super) fn run_script(world: &mut World, steps: &[Step]) -> Vec<Observation> {
    let mut sys = ModelSys { world, eps: Vec::new() };
    let mut kept = steps.len();
    let log = |sys: &mut ModelSys, obs: &Observation| {
        if obs.step < kept {
            sys.world.sim.trace_mut().record(SimTime(obs.t_ns), "syscall", obs);
        }
        if sys.world.stopped() && kept == steps.len() {
            kept = obs.step + 1;
        }
    };
    let mut observations = match crate::script::run(&mut sys, steps, log) {
        Ok(observations) => observations,
        Err(failed) => match failed.fatal {},
    };
    observations.truncate(kept);
    observations
}

/// The simulated world as a system programs make calls on.
pub(crate) struct ModelSys<'w> {
    world: &'w mut World,
    /// Epoll instances: each is bound to a host by its first epoll_ctl (host, index there).
    eps: Vec<Option<(usize, usize)>>,
}

/// A socket of the model: a host and a descriptor there.
type Sock = (usize, Fd);

impl ModelSys<'_> {
    fn host(&self, h: usize) -> &Host {
        self.world.sim.node(h)
    }

    fn nonblocking(&self, (h, fd): Sock, flags: &[MsgFlag]) -> bool {
        flags.contains(&MsgFlag::MSG_DONTWAIT) || self.host(h).is_nonblocking(fd)
    }

    /// A blocking call's sleep (`sk_wait_event`): until the socket shows one of `wanted`. If it
    /// already does and the call still could not proceed (readable below SO_RCVLOWAT, writable
    /// but short of memory), until the next thing happens. False when the run ends first.
    fn sleep_on(&mut self, (h, fd): Sock, wanted: PollMask) -> bool {
        if self.host(h).poll_mask(fd).intersects(wanted) {
            return self.world.step_once();
        }
        let end = self.world.end;
        self.world.wait_for(end, |sim| sim.node(h).poll_mask(fd).intersects(wanted))
    }

    /// The deadline of a call that waits up to `timeout` (never past the end of the run).
    fn deadline(&self, timeout: Dur) -> SimTime {
        (self.world.now() + timeout).min(self.world.end)
    }

    /// Holds a poll, epoll or kevent answer against the documented rules of the host's
    /// system, and notes which rules applied (the readiness table lists them).
    fn check_answer(&mut self, (h, fd): Sock, answer: Answer) {
        let Some(view) = self.host(h).view(fd) else { return };
        let os = self.host(h).os();
        let observed = match answer {
            Answer::Poll { requested, revents } => rules::Observed::poll(os, &view, requested, revents),
            Answer::Epoll { events, reported } => rules::Observed::epoll(&view, events, reported),
            Answer::Kevent { filter, lowat, event } => rules::Observed::kevent(&view, filter, lowat, event),
        };
        let now = self.world.now();
        self.world.checker.observe(now, &observed);
        self.world.applied_rules.extend(rules::rules_for(&observed));
    }
}

impl ModelSys<'_> {
    /// One send or sendto, blocking until everything is queued when the socket blocks
    /// (`sk_stream_wait_memory`), or while a Fast Open write waits for the handshake (the
    /// host answers EAGAIN until it ended). MSG_FASTOPEN acts once, before
    /// `tcp_sendmsg_locked`'s copy loop: what remains after bytes were queued is the loop's.
    fn write(&mut self, (h, fd): Sock, data: &SendData, flags: &[MsgFlag], to: Option<SockAddr>) -> Result<Sent, Blocked> {
        let nonblocking = self.nonblocking((h, fd), flags);
        let mut sf = SendFlags::of(flags);
        let total = data.count();
        let mut sent = 0u32;
        loop {
            let rest = data.after(sent);
            let r = self.world.sim.with_node(h, |n, ctx| n.sys_sendto(fd, to, rest, sf, ctx));
            match r.errno {
                None => {
                    sent += r.ret as u32;
                    if sent >= total || nonblocking {
                        return Ok(Sent { result: Ok(sent), sigpipe: r.sigpipe });
                    }
                    sf.fastopen = false;
                }
                Some(Errno::EAGAIN) if !nonblocking => {}
                Some(_) if sent > 0 => return Ok(Sent { result: Ok(sent), sigpipe: false }),
                Some(_) => return Ok(sent_of(r)),
            }
            if !self.sleep_on((h, fd), PollMask::OUT | PollMask::ERR | PollMask::HUP) {
                return Err(Blocked);
            }
        }
    }
}

/// A readiness call's request and answer, for the rules.
enum Answer {
    Poll { requested: PollMask, revents: PollMask },
    Epoll { events: u32, reported: PollMask },
    /// `event`: none when the filter did not fire.
    Kevent { filter: KFilter, lowat: Option<u32>, event: Option<KEvent> },
}

fn sys_err<T>(r: Result<T, Errno>) -> Result<T, SysErr> {
    r.map_err(SysErr::Known)
}

impl Syscalls for ModelSys<'_> {
    type Sock = Sock;
    type Ep = usize;
    type Fatal = Infallible;

    fn host_addr(&self, host: &str) -> Option<IpAddr> {
        self.world.sim.host_index(host).map(|i| self.world.sim.host_addr(i))
    }

    fn socket(&mut self, host: &str, nonblocking: bool) -> Result<Sock, SysErr> {
        let h = self.world.sim.host_index(host).ok_or(SysErr::Known(Errno::EINVAL))?;
        Ok((h, self.world.sim.node_mut(h).sys_socket(nonblocking)))
    }

    fn bind(&mut self, (h, fd): Sock, port: u16) -> Result<(), SysErr> {
        sys_err(self.world.sim.node_mut(h).sys_bind(fd, port))
    }

    fn listen(&mut self, (h, fd): Sock, backlog: i32) -> Result<(), SysErr> {
        sys_err(self.world.sim.with_node(h, |n, ctx| n.sys_listen(fd, backlog, ctx)))
    }

    fn connect(&mut self, (h, fd): Sock, remote: SockAddr) -> Blocking<()> {
        let r = self.world.sim.with_node(h, |n, ctx| n.sys_connect(fd, remote, ctx));
        if r != Err(Errno::EINPROGRESS) || self.host(h).is_nonblocking(fd) {
            return Ok(sys_err(r));
        }
        // inet_wait_for_connect: sleep while SYN_SENT/SYN_RECV, then report sock_error.
        let end = self.world.end;
        let connecting = |sim: &Sim<Host>| matches!(sim.node(h).state(fd), Some(TcpState::SynSent | TcpState::SynRecv));
        if !self.world.wait_for(end, |sim| !connecting(sim)) {
            return Err(Blocked);
        }
        let now = self.world.sim.now();
        let err = self.world.sim.node_mut(h).sys_getsockopt(fd, SockOpt::SO_ERROR, now);
        let code = err.ok().and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(match Errno::from_code(code as i32) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        })
    }

    fn accept(&mut self, (h, fd): Sock) -> Blocking<Sock> {
        let blocking = !self.host(h).is_nonblocking(fd);
        let end = self.world.end;
        let readable = |sim: &Sim<Host>| sim.node(h).poll_mask(fd).intersects(PollMask::IN | PollMask::ERR);
        if blocking && !self.world.wait_for(end, readable) {
            return Err(Blocked);
        }
        Ok(sys_err(self.world.sim.node_mut(h).sys_accept(fd, false).map(|child| (h, child))))
    }

    fn send(&mut self, s: Sock, data: &SendData, flags: &[MsgFlag]) -> Result<Sent, Blocked> {
        self.write(s, data, flags, None)
    }

    fn sendto(&mut self, s: Sock, data: &SendData, flags: &[MsgFlag], to: SockAddr) -> Result<Sent, Blocked> {
        self.write(s, data, flags, Some(to))
    }

    fn recv(&mut self, (h, fd): Sock, len: u32, buf: UserBuf, flags: &[MsgFlag]) -> Blocking<u32> {
        let rf = RecvFlags { peek: flags.contains(&MsgFlag::MSG_PEEK) };
        let nonblocking = self.nonblocking((h, fd), flags);
        loop {
            match self.world.sim.with_node(h, |n, ctx| n.sys_recv_to(fd, len, buf, rf, ctx)) {
                Err(Errno::EAGAIN) if !nonblocking => {
                    if !self.sleep_on((h, fd), PollMask::IN | PollMask::ERR | PollMask::HUP | PollMask::RDHUP) {
                        return Err(Blocked);
                    }
                }
                other => return Ok(sys_err(other)),
            }
        }
    }

    fn shutdown(&mut self, (h, fd): Sock, how: ShutHow) -> Result<(), SysErr> {
        sys_err(self.world.sim.with_node(h, |n, ctx| n.sys_shutdown(fd, how, ctx)))
    }

    fn close(&mut self, (h, fd): Sock) -> Result<(), SysErr> {
        sys_err(self.world.sim.with_node(h, |n, ctx| n.sys_close(fd, ctx)))
    }

    fn setsockopt(&mut self, (h, fd): Sock, opt: SockOpt, value: &OptValue) -> Result<(), SysErr> {
        sys_err(self.world.sim.with_node(h, |n, ctx| n.sys_setsockopt(fd, opt, value, ctx)))
    }

    fn getsockopt(&mut self, (h, fd): Sock, opt: SockOpt) -> Result<serde_json::Value, SysErr> {
        let now = self.world.sim.now();
        sys_err(self.world.sim.node_mut(h).sys_getsockopt(fd, opt, now))
    }

    fn ioctl(&mut self, (h, fd): Sock, req: IoctlReq) -> Result<i64, SysErr> {
        sys_err(self.world.sim.node_mut(h).sys_ioctl(fd, req))
    }

    fn poll(&mut self, s: Option<Sock>, requested: PollMask, timeout: Dur) -> Result<PollMask, SysErr> {
        let revents = |sim: &Sim<Host>| match s {
            Some((h, fd)) => sim.node(h).poll_revents(fd, requested),
            None => PollMask::NVAL,
        };
        let deadline = self.deadline(timeout);
        self.world.wait_for(deadline, |sim| !revents(sim).is_empty());
        let got = revents(&self.world.sim);
        if let Some(s) = s {
            self.check_answer(s, Answer::Poll { requested, revents: got });
        }
        Ok(got)
    }

    /// The instance is bound to a host by its first epoll_ctl; with no Linux host in the run
    /// there is no kernel that has epoll to create it.
    fn epoll_create(&mut self) -> Result<usize, SysErr> {
        let sim = &self.world.sim;
        if !(0..sim.host_count()).any(|h| sim.node(h).os() == Os::Linux) {
            return Err(Errno::ENOSYS.into());
        }
        self.eps.push(None);
        Ok(self.eps.len() - 1)
    }

    fn epoll_ctl(&mut self, ep: usize, op: CtlOp, (h, fd): Sock, events: u32) -> Result<(), SysErr> {
        let (eh, idx) = match self.eps[ep] {
            Some(b) => b,
            None => {
                let idx = sys_err(self.world.sim.node_mut(h).sys_epoll_create())?;
                *self.eps[ep].insert((h, idx))
            }
        };
        if eh != h {
            // One epoll per host here: a script mixing hosts in one epoll is not modelled.
            return Err(Errno::EINVAL.into());
        }
        sys_err(self.world.sim.node_mut(h).sys_epoll_ctl(idx, op, fd, events))
    }

    fn epoll_wait(&mut self, ep: usize, max: u32, timeout: Dur) -> Result<Vec<(Sock, PollMask)>, SysErr> {
        let Some((h, idx)) = self.eps[ep] else { return Err(Errno::EINVAL.into()) };
        let deadline = self.deadline(timeout);
        self.world.wait_for(deadline, |sim| sim.node(h).epoll_has_ready(idx));
        let ready = self.world.sim.node_mut(h).sys_epoll_wait(idx, max as usize);
        for (fd, mask) in &ready {
            let events = self.host(h).epoll_events_of(idx, *fd).unwrap_or(0);
            self.check_answer((h, *fd), Answer::Epoll { events, reported: *mask });
        }
        Ok(ready.into_iter().map(|(fd, m)| ((h, fd), m)).collect())
    }

    fn kevent(&mut self, (h, fd): Sock, filter: KFilter, lowat: Option<u32>) -> Result<Option<KEvent>, SysErr> {
        let event = sys_err(self.host(h).sys_kevent(fd, filter, lowat))?;
        self.check_answer((h, fd), Answer::Kevent { filter, lowat, event });
        Ok(event)
    }

    fn sleep(&mut self, d: Dur) {
        let t = self.deadline(d);
        self.world.run_until(t);
    }

    fn fault(&mut self, f: &FaultAction) -> Result<(), String> {
        self.world.sim.apply_fault(f).map_err(|e| e.to_string())
    }

    fn settle(&mut self) -> u64 {
        let now = self.world.now();
        self.world.run_until(now);
        now.as_nanos()
    }

    fn take_fatal(&mut self) -> Option<Infallible> {
        None
    }
}

fn sent_of(r: SyscallResult) -> Sent {
    Sent { result: r.errno.map_or(Ok(r.ret as u32), |e| Err(e.into())), sigpipe: r.sigpipe }
}

impl World {
    /// Runs exactly one thing that happens before the end of the run.
    pub(crate) fn step_once(&mut self) -> bool {
        let end = self.end;
        self.step_before(end)
    }
}
