//! The application of the system under test: the scenario's script steps on the SUT's
//! sockets, each made at the time the real-kernel run recorded for it, or, without a
//! recorded run, a listener or connector making the calls inferred from the capture
//! ([`super::infer`]).
//!
//! Only what can change the wire is replayed: socket calls, and faults on links or on the
//! SUT's host. poll/epoll only look, and the peer's own calls are in the capture already.
//! Each call is made once, non-blocking: the recorded time is when the real call had
//! returned, so a blocking call's condition held by then (if the model agrees). The steps are
//! interpreted by the one executor ([`crate::script`]); this module is the SUT's side of
//! [`Syscalls`] for it.

use super::infer::{Call, Inferred};
use super::puppet::Endpoint;
use super::settings::Settings;
use crate::engine::fault::FaultAction;
use crate::engine::{Ctx, Sim};
use crate::host::{Fd, Host, RecvFlags, SendFlags};
use crate::limits::{Governor, Limits};
use crate::scenario::{Observation, Scenario, Step};
use crate::script::{self, Names};
use crate::socket::epoll::CtlOp;
use crate::socket::kqueue::{KEvent, KFilter};
use crate::syscall::{Blocking, Sent, SysErr, Syscalls};
use crate::tcp::conn::SendData;
use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};
use crate::tcp::view::PollMask;
use crate::time::{Dur, SimTime};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use crate::addr::SockAddr;
use std::net::IpAddr;

/// Calls into the SUT host (always the `Sut` variant by construction).
pub fn on_sut<R>(sim: &mut Sim<Endpoint>, h: usize, f: impl FnOnce(&mut Host, &mut Ctx) -> R) -> Option<R> {
    sim.with_node(h, |n, ctx| match n {
        Endpoint::Sut(host) => Some(f(host, ctx)),
        Endpoint::Puppet(_) => None,
    })
}

/// One action of the SUT's application, at its time.
#[derive(Clone, Debug)]
pub enum Action<'a> {
    Step(&'a Step),
    /// Passive server: listen on a port.
    Listen(u16),
    /// Passive client: connect from `local` to `remote`.
    Connect { local: u16, remote: SockAddr },
    /// A call inferred from the trace ([`super::infer`]).
    Inferred(Inferred),
}

/// The SUT's script, bound to one simulation.
pub struct Driver {
    /// The script's sockets: a descriptor on the SUT, or `None` for one on the puppet's host.
    names: Names<Option<Fd>, ()>,
    sut: Sut,
    /// The passive application's listeners, by port.
    listeners: BTreeMap<u16, Fd>,
    /// The passive application's connections, by (SUT port, peer).
    conns: BTreeMap<(u16, SockAddr), Fd>,
}

/// What the SUT's side of the calls keeps between steps.
struct Sut {
    h: usize,
    name: String,
    bound: BTreeSet<Fd>,
    /// Local ports of the SUT's client connections in the capture, in SYN order: a connect
    /// on an unbound socket takes the next, so that the model's 4-tuple is the capture's.
    client_ports: VecDeque<u16>,
    /// Socket options set on each new socket (`--set`, or shown by the trace).
    sockopts: Vec<(SockOpt, OptValue)>,
    /// The listeners' backlog, if set: it overrides the script's (128 for a passive one).
    backlog: Option<i32>,
    /// The model's answers to `getsockopt(TCP_INFO)`, with the time of each call
    /// ([`super::info`] holds them against the kernel's).
    tcp_info: Vec<(SimTime, serde_json::Value)>,
}

impl Sut {
    /// socket(), then the settings' options on it, as the application would set them
    /// before `listen` or `connect`.
    fn socket(&self, host: &mut Host, nonblocking: bool, ctx: &mut Ctx) -> Fd {
        let fd = host.sys_socket(nonblocking);
        for (opt, value) in &self.sockopts {
            let _ = host.sys_setsockopt(fd, *opt, value, ctx);
        }
        fd
    }
}

impl Driver {
    pub fn new(sut: usize, sut_name: &str, client_ports: Vec<u16>, settings: &Settings) -> Self {
        let sut = Sut {
            h: sut,
            name: sut_name.to_string(),
            bound: BTreeSet::new(),
            client_ports: client_ports.into(),
            sockopts: settings.sockopts(),
            backlog: settings.backlog(),
            tcp_info: Vec::new(),
        };
        Driver {
            names: Names::default(),
            sut,
            listeners: BTreeMap::new(),
            conns: BTreeMap::new(),
        }
    }

    /// The script's steps at the times the real run made them. The log records when each
    /// call *returned*; a call that sends (connect, send, shutdown, close) sent during the
    /// call, so it is made when the harness started it, at the previous step's return:
    /// otherwise the peer's answer, captured a few microseconds after the segment, would
    /// reach the model before the call that causes it. A call that waits for something
    /// (accept, recv) and a fault (in force once its firewall rules are loaded, when the step
    /// returns) are made at their return. Steps the real run never reached are left out.
    pub fn scripted<'a>(sc: &'a Scenario, obs: &[Observation]) -> Vec<(SimTime, Action<'a>)> {
        let mut started = 0;
        let mut out = Vec::with_capacity(obs.len());
        for o in obs {
            let Some(step) = sc.script.get(o.step) else { continue };
            let at = match step {
                Step::Accept { .. } | Step::Recv { .. } | Step::Fault { .. } => o.t_ns,
                _ => started,
            };
            out.push((SimTime(at), Action::Step(step)));
            started = o.t_ns;
        }
        out
    }

    /// The model's `TCP_INFO` answers, with the time of each call.
    pub fn tcp_info_samples(&self) -> &[(SimTime, serde_json::Value)] {
        &self.sut.tcp_info
    }

    /// Runs `action` now. What a step returns, the program ignores (the observation log, not
    /// the replay, holds results against the kernel's), but for `TCP_INFO`, kept for
    /// [`super::info`].
    pub fn act(&mut self, sim: &mut Sim<Endpoint>, action: &Action) {
        match action {
            Action::Step(step) => {
                script::exec(&mut SutCalls { sim, sut: &mut self.sut }, &mut self.names, step);
            }
            Action::Listen(port) => {
                let sut = &self.sut;
                let fd = on_sut(sim, sut.h, |host, ctx| {
                    let fd = sut.socket(host, false, ctx);
                    let _ = host.sys_bind(fd, *port);
                    let _ = host.sys_listen(fd, sut.backlog.unwrap_or(128), ctx);
                    fd
                });
                self.listeners.extend(fd.map(|fd| (*port, fd)));
            }
            Action::Connect { local, remote } => {
                let sut = &self.sut;
                let fd = on_sut(sim, sut.h, |host, ctx| {
                    let fd = sut.socket(host, true, ctx);
                    let _ = host.sys_bind(fd, *local);
                    let _ = host.sys_connect(fd, *remote, ctx);
                    fd
                });
                self.conns.extend(fd.map(|fd| ((*local, *remote), fd)));
            }
            Action::Inferred(call) => self.inferred(sim, call),
        }
    }

    /// Makes an inferred call on its connection's socket, accepting it first if it is a
    /// listener's child not accepted yet.
    fn inferred(&mut self, sim: &mut Sim<Endpoint>, i: &Inferred) {
        let key = (i.sut.port(), i.peer);
        if !self.conns.contains_key(&key) {
            let Some(&listener) = self.listeners.get(&i.sut.port()) else { return };
            let accepted = on_sut(sim, self.sut.h, |host, _| {
                let mut got = Vec::new();
                while let Ok(fd) = host.sys_accept(listener, true) {
                    got.extend(host.conn_addrs(fd).map(|(l, r)| ((l.port(), r), fd)));
                }
                got
            });
            self.conns.extend(accepted.into_iter().flatten());
        }
        let Some(&fd) = self.conns.get(&key) else { return };
        on_sut(sim, self.sut.h, |host, ctx| match i.call {
            Call::Write { len } => {
                let _ = host.sys_send(fd, SendData::Derived(len), SendFlags::default(), ctx);
            }
            Call::Read => while host.sys_recv_trunc(fd, u32::MAX, RecvFlags::default(), ctx).is_ok_and(|n| n > 0) {},
            Call::ShutdownWr => {
                let _ = host.sys_shutdown(fd, ShutHow::SHUT_WR, ctx);
            }
            Call::Close => {
                let _ = host.sys_close(fd, ctx);
            }
        });
        // A later call on the 4-tuple is on its next incarnation: a new child to accept, or
        // the next connect's socket.
        if i.call == Call::Close {
            self.conns.remove(&key);
        }
    }
}

/// The SUT as a system the replayed program calls: only the wire matters, so each call is made
/// once and never waits; calls on the puppet's sockets and queries that change nothing on the
/// wire (poll, epoll, kqueue, ioctl, sleep) are not made at all.
struct SutCalls<'a> {
    sim: &'a mut Sim<Endpoint>,
    sut: &'a mut Sut,
}

/// A call on the puppet's socket: not made (the peer's own calls are in the capture already).
const NOT_MADE: Result<(), SysErr> = Ok(());

impl SutCalls<'_> {
    /// Calls `f` on the SUT's descriptor `fd`; `None` (the puppet's socket): not made.
    fn on_fd<R>(&mut self, fd: Option<Fd>, f: impl FnOnce(&mut Host, Fd, &mut Ctx) -> R) -> Option<R> {
        let fd = fd?;
        on_sut(self.sim, self.sut.h, |n, ctx| f(n, fd, ctx))
    }

    /// One send() or sendto() call on the SUT's socket.
    fn write(&mut self, fd: Option<Fd>, data: &SendData, flags: &[MsgFlag], to: Option<SockAddr>) -> Sent {
        let sf = SendFlags::of(flags);
        match self.on_fd(fd, |n, fd, ctx| n.sys_sendto(fd, to, data.clone(), sf, ctx)) {
            Some(r) => Sent { result: r.errno.map_or(Ok(r.ret as u32), |e| Err(e.into())), sigpipe: r.sigpipe },
            None => Sent { result: Ok(0), sigpipe: false },
        }
    }

    fn unit(&mut self, fd: Option<Fd>, f: impl FnOnce(&mut Host, Fd, &mut Ctx) -> Result<(), crate::errno::Errno>) -> Result<(), SysErr> {
        self.on_fd(fd, |n, fd, ctx| f(n, fd, ctx).map_err(SysErr::Known)).unwrap_or(NOT_MADE)
    }
}

impl Syscalls for SutCalls<'_> {
    type Sock = Option<Fd>;
    type Ep = ();
    type Fatal = Infallible;

    fn host_addr(&self, host: &str) -> Option<IpAddr> {
        self.sim.host_index(host).map(|i| self.sim.host_addr(i))
    }

    fn socket(&mut self, host: &str, nonblocking: bool) -> Result<Option<Fd>, SysErr> {
        if host != self.sut.name {
            return Ok(None);
        }
        let sut = &*self.sut;
        Ok(on_sut(self.sim, sut.h, |n, ctx| sut.socket(n, nonblocking, ctx)))
    }

    fn bind(&mut self, fd: Option<Fd>, port: u16) -> Result<(), SysErr> {
        let r = self.unit(fd, |n, fd, _| n.sys_bind(fd, port));
        if let (Some(fd), Ok(())) = (fd, r) {
            self.sut.bound.insert(fd);
        }
        r
    }

    fn listen(&mut self, fd: Option<Fd>, backlog: i32) -> Result<(), SysErr> {
        let backlog = self.sut.backlog.unwrap_or(backlog);
        self.unit(fd, |n, fd, ctx| n.sys_listen(fd, backlog, ctx))
    }

    /// An unbound socket is first bound to the port its connection had in the capture.
    fn connect(&mut self, fd: Option<Fd>, remote: SockAddr) -> Blocking<()> {
        if let Some(fd) = fd.filter(|fd| !self.sut.bound.contains(fd)) {
            if let Some(port) = self.sut.client_ports.pop_front() {
                self.on_fd(Some(fd), |n, fd, _| n.sys_bind(fd, port));
            }
            self.sut.bound.insert(fd);
        }
        Ok(self.unit(fd, |n, fd, ctx| n.sys_connect(fd, remote, ctx)))
    }

    fn accept(&mut self, fd: Option<Fd>) -> Blocking<Option<Fd>> {
        Ok(match self.on_fd(fd, |n, fd, _| n.sys_accept(fd, false)) {
            Some(r) => r.map(Some).map_err(SysErr::Known),
            None => Ok(None),
        })
    }

    fn send(&mut self, fd: Option<Fd>, data: &SendData, flags: &[MsgFlag]) -> Result<Sent, crate::syscall::Blocked> {
        Ok(self.write(fd, data, flags, None))
    }

    fn sendto(&mut self, fd: Option<Fd>, data: &SendData, flags: &[MsgFlag], to: SockAddr) -> Result<Sent, crate::syscall::Blocked> {
        Ok(self.write(fd, data, flags, Some(to)))
    }

    fn recv(&mut self, fd: Option<Fd>, len: u32, buf: UserBuf, flags: &[MsgFlag]) -> Blocking<u32> {
        let rf = RecvFlags { peek: flags.contains(&MsgFlag::MSG_PEEK) };
        let r = self.on_fd(fd, |n, fd, ctx| n.sys_recv_to(fd, len, buf, rf, ctx));
        Ok(r.map_or(Ok(0), |r| r.map_err(SysErr::Known)))
    }

    fn shutdown(&mut self, fd: Option<Fd>, how: ShutHow) -> Result<(), SysErr> {
        self.unit(fd, |n, fd, ctx| n.sys_shutdown(fd, how, ctx))
    }

    fn close(&mut self, fd: Option<Fd>) -> Result<(), SysErr> {
        self.unit(fd, |n, fd, ctx| n.sys_close(fd, ctx))
    }

    fn setsockopt(&mut self, fd: Option<Fd>, opt: SockOpt, value: &OptValue) -> Result<(), SysErr> {
        self.unit(fd, |n, fd, ctx| n.sys_setsockopt(fd, opt, value, ctx))
    }

    /// SO_ERROR is cleared by reading it; that changes later calls, not the wire, but it is
    /// made so the SUT's state stays the kernel's. TCP_INFO's answer is kept.
    fn getsockopt(&mut self, fd: Option<Fd>, opt: SockOpt) -> Result<serde_json::Value, SysErr> {
        let r = self.on_fd(fd, |n, fd, ctx| n.sys_getsockopt(fd, opt, ctx.now()));
        if let (SockOpt::TCP_INFO, Some(Ok(info))) = (opt, &r) {
            self.sut.tcp_info.push((self.sim.now(), info.clone()));
        }
        r.map_or(Ok(serde_json::Value::Null), |r| r.map_err(SysErr::Known))
    }

    fn ioctl(&mut self, _: Option<Fd>, _: IoctlReq) -> Result<i64, SysErr> {
        Ok(0)
    }

    fn poll(&mut self, _: Option<Option<Fd>>, _: PollMask, _: Dur) -> Result<PollMask, SysErr> {
        Ok(PollMask::EMPTY)
    }

    fn epoll_create(&mut self) -> Result<(), SysErr> {
        Ok(())
    }

    fn epoll_ctl(&mut self, _: (), _: CtlOp, _: Option<Fd>, _: u32) -> Result<(), SysErr> {
        Ok(())
    }

    fn epoll_wait(&mut self, _: (), _: u32, _: Dur) -> Result<Vec<(Option<Fd>, PollMask)>, SysErr> {
        Ok(Vec::new())
    }

    fn kevent(&mut self, _: Option<Fd>, _: KFilter, _: Option<u32>) -> Result<Option<KEvent>, SysErr> {
        Ok(None)
    }

    fn sleep(&mut self, _: Dur) {}

    /// Faults on the puppet's host are not replayed: the puppet *is* the capture.
    fn fault(&mut self, f: &FaultAction) -> Result<(), String> {
        if f.host.is_none_or(|name| name == self.sut.name) {
            let _ = self.sim.apply_fault(f);
        }
        Ok(())
    }

    fn settle(&mut self) -> u64 {
        self.sim.now().as_nanos()
    }

    fn take_fatal(&mut self) -> Option<Infallible> {
        None
    }
}

/// Runs `actions` (sorted by time) in `sim`, then everything up to `end`.
pub fn run(sim: &mut Sim<Endpoint>, driver: &mut Driver, actions: &[(SimTime, Action)], end: SimTime) {
    // A long capture takes a while: its progress in simulated time shows on a terminal (the
    // governor bounds nothing here).
    let mut meter = Governor::new(Limits::none(), end, "replay");
    for (t, a) in actions {
        run_until(sim, *t, &mut meter);
        driver.act(sim, a);
    }
    run_until(sim, end, &mut meter);
}

/// `Sim::run_until`, one event at a time through the progress meter.
fn run_until(sim: &mut Sim<Endpoint>, t: SimTime, meter: &mut Governor) {
    while sim.peek_time().is_some_and(|at| at <= t) {
        sim.step();
        meter.tick(sim.now(), 0);
    }
    sim.run_until(t);
}

/// How long after the capture stopped the model keeps running, so that a segment it sends a
/// little late is still there to be compared (and found late) rather than missing.
pub const RUN_PAST_CAPTURE: Dur = Dur::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_calls_start_at_the_previous_return_waits_and_faults_at_their_own() {
        let text = r#"
            name = "t"
            duration = "1s"
            [[host]]
            name = "a"
            addr = "10.0.0.1"
            [[host]]
            name = "b"
            addr = "10.0.0.2"
            [[link]]
            name = "wire"
            a = "a"
            b = "b"
            [[script]]
            op = "socket"
            host = "a"
            sock = "c"
            [[script]]
            op = "connect"
            sock = "c"
            to = "b:80"
            [[script]]
            op = "fault"
            kind = "partition"
            link = "wire"
            [[script]]
            op = "send"
            sock = "c"
            len = 1
            [[script]]
            op = "recv"
            sock = "c"
            len = 1
        "#;
        let sc = crate::scenario::parse(text, "t.toml").unwrap();
        // Step 1's observation is missing (as when a real run stops early): step 2 starts
        // at step 0's return.
        let obs: Vec<Observation> = [(0, 10), (2, 300), (3, 310), (4, 900)]
            .iter()
            .map(|&(step, t_ns)| Observation { step, t_ns, ..Observation::default() })
            .collect();
        let times: Vec<(u64, &str)> =
            Driver::scripted(&sc, &obs).iter().map(|(t, a)| (t.as_nanos(), match a { Action::Step(s) => s.op(), _ => "" })).collect();
        assert_eq!(times, [(0, "socket"), (300, "fault"), (300, "send"), (900, "recv")]);
    }
}
