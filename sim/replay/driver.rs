//! The application of the system under test: the scenario's script steps on the SUT's
//! sockets, each made at the time the real-kernel run recorded for it, or, without a
//! recorded run, a passive listener or connector inferred from the capture.
//!
//! Only what can change the wire is replayed: socket calls, and faults on links or on the
//! SUT's host. poll/epoll only look, and the peer's own calls are in the capture already.
//! Each call is made once, non-blocking: the recorded time is when the real call had
//! returned, so a blocking call's condition held by then (if the model agrees).

use super::puppet::Endpoint;
use crate::engine::{Ctx, Sim};
use crate::host::{Fd, Host, RecvFlags, SendFlags};
use crate::scenario::{FaultSpec, MsgFlag, Observation, Scenario, Step};
use crate::tcp::conn::SendData;
use crate::time::{Dur, SimTime};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddrV4;

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
    Connect { local: u16, remote: SocketAddrV4 },
}

/// The SUT's script, bound to one simulation.
pub struct Driver<'a> {
    sc: Option<&'a Scenario>,
    sut: usize,
    sut_name: String,
    /// Socket name → (host name, descriptor when on the SUT).
    socks: BTreeMap<String, (String, Option<Fd>)>,
    bound: BTreeSet<Fd>,
    /// Local ports of the SUT's client connections in the capture, in SYN order: a connect
    /// on an unbound socket takes the next, so that the model's 4-tuple is the capture's.
    client_ports: VecDeque<u16>,
}

impl<'a> Driver<'a> {
    pub fn new(sc: Option<&'a Scenario>, sut: usize, sut_name: &str, client_ports: Vec<u16>) -> Self {
        Driver {
            sc,
            sut,
            sut_name: sut_name.to_string(),
            socks: BTreeMap::new(),
            bound: BTreeSet::new(),
            client_ports: client_ports.into(),
        }
    }

    /// The script's steps at the times the real run made them. The log records when each
    /// call *returned*; a call that sends (connect, send, shutdown, close) sent during the
    /// call, so it is made when the harness started it, at the previous step's return:
    /// otherwise the peer's answer, captured a few microseconds after the segment, would
    /// reach the model before the call that causes it. A call that waits for something
    /// (accept, recv) and a fault (in force once its firewall rules are loaded, when the step
    /// returns) are made at their return. Steps the real run never reached are left out.
    pub fn scripted(sc: &'a Scenario, obs: &[Observation]) -> Vec<(SimTime, Action<'a>)> {
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

    /// Runs `action` now.
    pub fn act(&mut self, sim: &mut Sim<Endpoint>, action: &Action) {
        match action {
            Action::Step(step) => self.step(sim, step),
            Action::Listen(port) => {
                let h = self.sut;
                on_sut(sim, h, |host, ctx| {
                    let fd = host.sys_socket(false);
                    let _ = host.sys_bind(fd, *port);
                    let _ = host.sys_listen(fd, 128, ctx);
                });
            }
            Action::Connect { local, remote } => {
                on_sut(sim, self.sut, |host, ctx| {
                    let fd = host.sys_socket(true);
                    let _ = host.sys_bind(fd, *local);
                    let _ = host.sys_connect(fd, *remote, ctx);
                });
            }
        }
    }

    /// The SUT's descriptor for socket `name`, if the socket lives on the SUT.
    fn fd(&self, name: &str) -> Option<Fd> {
        self.socks.get(name).filter(|(h, _)| *h == self.sut_name).and_then(|(_, fd)| *fd)
    }

    fn step(&mut self, sim: &mut Sim<Endpoint>, step: &Step) {
        let h = self.sut;
        match step {
            Step::Socket { host, sock, nonblocking } => {
                let fd = if *host == self.sut_name { on_sut(sim, h, |n, _| n.sys_socket(*nonblocking)) } else { None };
                self.socks.insert(sock.clone(), (host.clone(), fd));
            }
            Step::Accept { sock, new } => {
                let owner = self.socks.get(sock).map(|(host, _)| host.clone()).unwrap_or_default();
                let fd = self.fd(sock).and_then(|fd| on_sut(sim, h, |n, _| n.sys_accept(fd, false).ok()).flatten());
                self.socks.insert(new.clone(), (owner, fd));
            }
            Step::Bind { sock, port } => {
                if let Some(fd) = self.fd(sock) {
                    if on_sut(sim, h, |n, _| n.sys_bind(fd, *port)).is_some_and(|r| r.is_ok()) {
                        self.bound.insert(fd);
                    }
                }
            }
            Step::Listen { sock, backlog } => self.with_fd(sim, sock, |n, fd, ctx| n.sys_listen(fd, *backlog, ctx)),
            Step::Connect { sock, to } => {
                let Some(fd) = self.fd(sock) else { return };
                let Some(remote) = self.sc.and_then(|sc| crate::scenario::resolve_to(sc, to).ok()) else { return };
                if !self.bound.contains(&fd) {
                    if let Some(port) = self.client_ports.pop_front() {
                        on_sut(sim, h, |n, _| n.sys_bind(fd, port));
                    }
                    self.bound.insert(fd);
                }
                on_sut(sim, h, |n, ctx| n.sys_connect(fd, remote, ctx));
            }
            Step::Send { sock, len, data, flags, until_error } => {
                let payload = SendData::of_step(*len, data.as_deref());
                let sf = SendFlags { nosignal: flags.contains(&MsgFlag::MSG_NOSIGNAL) };
                // "Send until EAGAIN" (bounded as the script runner bounds it).
                let calls = if *until_error { 1_000_000 } else { 1 };
                self.with_fd(sim, sock, |n, fd, ctx| {
                    for _ in 0..calls {
                        let r = n.sys_send(fd, payload.clone(), sf, ctx);
                        if r.errno.is_some() || r.ret == 0 {
                            break;
                        }
                    }
                });
            }
            Step::Recv { sock, len, flags } => {
                let rf = RecvFlags { peek: flags.contains(&MsgFlag::MSG_PEEK) };
                self.with_fd(sim, sock, |n, fd, ctx| n.sys_recv(fd, *len, rf, ctx));
            }
            Step::Shutdown { sock, how } => self.with_fd(sim, sock, |n, fd, ctx| n.sys_shutdown(fd, *how, ctx)),
            Step::Close { sock } => {
                self.with_fd(sim, sock, |n, fd, ctx| n.sys_close(fd, ctx));
                self.socks.remove(sock);
            }
            Step::Setsockopt { sock, opt, value } => {
                self.with_fd(sim, sock, |n, fd, ctx| n.sys_setsockopt(fd, *opt, value, ctx))
            }
            // SO_ERROR is cleared by reading it; that changes later calls, not the wire, but
            // it is made so the SUT's state stays the kernel's.
            Step::Getsockopt { sock, opt } => self.with_fd(sim, sock, |n, fd, _| n.sys_getsockopt(fd, *opt)),
            Step::Fault { kind, link, host, drop, direction } => {
                // Faults on the puppet's host are not replayed: the puppet *is* the capture.
                if host.as_ref().is_none_or(|name| *name == self.sut_name) {
                    let spec = FaultSpec { at: None, kind: *kind, link: link.clone(), host: host.clone(), drop: *drop, direction: *direction, lasts: None, repeat: None };
                    let _ = sim.apply_fault(&spec);
                }
            }
            // Queries that change nothing on the wire.
            Step::Ioctl { .. }
            | Step::Poll { .. }
            | Step::EpollCreate { .. }
            | Step::EpollCtl { .. }
            | Step::EpollWait { .. }
            | Step::Kevent { .. }
            | Step::Sleep { .. } => {}
        }
    }

    /// Calls `f` on the SUT's descriptor for `sock`; what it returns, the program ignores
    /// (the observation log, not the replay, holds results against the kernel's).
    fn with_fd<R>(&self, sim: &mut Sim<Endpoint>, sock: &str, f: impl FnOnce(&mut Host, Fd, &mut Ctx) -> R) {
        if let Some(fd) = self.fd(sock) {
            on_sut(sim, self.sut, |n, ctx| f(n, fd, ctx));
        }
    }
}

/// Runs `actions` (sorted by time) in `sim`, then everything up to `end`.
pub fn run(sim: &mut Sim<Endpoint>, driver: &mut Driver, actions: &[(SimTime, Action)], end: SimTime) {
    for (t, a) in actions {
        sim.run_until(*t);
        driver.act(sim, a);
    }
    sim.run_until(end);
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
