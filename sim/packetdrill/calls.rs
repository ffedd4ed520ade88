//! The host under test as a packetdrill script's program calls it: the project's one syscall
//! interface ([`Syscalls`]) over the model host, each call made once and never waiting. A
//! call that would block answers EAGAIN (connect: EINPROGRESS) and the runner keeps it
//! pending while later events run, as packetdrill's syscall thread blocks while its main
//! thread injects packets; `poll` and `epoll_wait` answer at once for the same reason.

use crate::engine::fault::FaultAction;
use crate::engine::{Ctx, Sim};
use crate::host::{Fd, Host, RecvFlags, SendFlags};
use crate::replay::driver::on_sut;
use crate::replay::puppet::Endpoint;
use crate::socket::epoll::CtlOp;
use crate::socket::kqueue::{KEvent, KFilter};
use crate::syscall::{Blocking, Sent, SysErr, Syscalls};
use crate::tcp::conn::SendData;
use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};
use crate::tcp::view::PollMask;
use crate::time::Dur;
use std::convert::Infallible;
use crate::addr::SockAddr;
use std::net::IpAddr;

/// The host under test (node 0 of the run's simulation).
pub(crate) struct HostCalls<'a> {
    pub sim: &'a mut Sim<Endpoint>,
}

impl HostCalls<'_> {
    fn on<R>(&mut self, f: impl FnOnce(&mut Host, &mut Ctx) -> R) -> R {
        on_sut(self.sim, 0, f).expect("node 0 is the host under test")
    }

    /// One send() or sendto() call.
    fn write(&mut self, fd: Fd, data: &SendData, flags: &[MsgFlag], to: Option<SockAddr>) -> Sent {
        let sf = SendFlags::of(flags);
        let r = self.on(|h, ctx| h.sys_sendto(fd, to, data.clone(), sf, ctx));
        Sent { result: r.errno.map_or(Ok(r.ret as u32), |e| Err(e.into())), sigpipe: r.sigpipe }
    }
}

impl Syscalls for HostCalls<'_> {
    type Sock = Fd;
    type Ep = usize;
    type Fatal = Infallible;

    fn host_addr(&self, host: &str) -> Option<IpAddr> {
        self.sim.host_index(host).map(|i| self.sim.host_addr(i))
    }

    fn socket(&mut self, _host: &str, nonblocking: bool) -> Result<Fd, SysErr> {
        Ok(self.on(|h, _| h.sys_socket(nonblocking)))
    }

    fn bind(&mut self, fd: Fd, port: u16) -> Result<(), SysErr> {
        self.on(|h, _| h.sys_bind(fd, port)).map_err(SysErr::Known)
    }

    fn listen(&mut self, fd: Fd, backlog: i32) -> Result<(), SysErr> {
        self.on(|h, ctx| h.sys_listen(fd, backlog, ctx)).map_err(SysErr::Known)
    }

    fn connect(&mut self, fd: Fd, to: SockAddr) -> Blocking<()> {
        Ok(self.on(|h, ctx| h.sys_connect(fd, to, ctx)).map_err(SysErr::Known))
    }

    fn accept(&mut self, fd: Fd) -> Blocking<Fd> {
        Ok(self.on(|h, _| h.sys_accept(fd, false)).map_err(SysErr::Known))
    }

    fn send(&mut self, fd: Fd, data: &SendData, flags: &[MsgFlag]) -> Result<Sent, crate::syscall::Blocked> {
        Ok(self.write(fd, data, flags, None))
    }

    /// A blocking Fast Open write answers EAGAIN while it waits for the handshake; the call
    /// made again once the socket is woken is its continuation (the host keeps the sleeper).
    fn sendto(&mut self, fd: Fd, data: &SendData, flags: &[MsgFlag], to: SockAddr) -> Result<Sent, crate::syscall::Blocked> {
        Ok(self.write(fd, data, flags, Some(to)))
    }

    fn recv(&mut self, fd: Fd, len: u32, buf: UserBuf, flags: &[MsgFlag]) -> Blocking<u32> {
        let rf = RecvFlags { peek: flags.contains(&MsgFlag::MSG_PEEK) };
        Ok(self.on(|h, ctx| h.sys_recv_to(fd, len, buf, rf, ctx)).map_err(SysErr::Known))
    }

    fn shutdown(&mut self, fd: Fd, how: ShutHow) -> Result<(), SysErr> {
        self.on(|h, ctx| h.sys_shutdown(fd, how, ctx)).map_err(SysErr::Known)
    }

    fn close(&mut self, fd: Fd) -> Result<(), SysErr> {
        self.on(|h, ctx| h.sys_close(fd, ctx)).map_err(SysErr::Known)
    }

    fn setsockopt(&mut self, fd: Fd, opt: SockOpt, value: &OptValue) -> Result<(), SysErr> {
        self.on(|h, ctx| h.sys_setsockopt(fd, opt, value, ctx)).map_err(SysErr::Known)
    }

    fn getsockopt(&mut self, fd: Fd, opt: SockOpt) -> Result<serde_json::Value, SysErr> {
        self.on(|h, ctx| h.sys_getsockopt(fd, opt, ctx.now())).map_err(SysErr::Known)
    }

    fn ioctl(&mut self, fd: Fd, req: IoctlReq) -> Result<i64, SysErr> {
        self.on(|h, _| h.sys_ioctl(fd, req)).map_err(SysErr::Known)
    }

    fn poll(&mut self, fd: Option<Fd>, events: PollMask, _timeout: Dur) -> Result<PollMask, SysErr> {
        Ok(self.on(|h, _| fd.map_or(PollMask::NVAL, |fd| h.poll_revents(fd, events))))
    }

    fn epoll_create(&mut self) -> Result<usize, SysErr> {
        self.on(|h, _| h.sys_epoll_create()).map_err(SysErr::Known)
    }

    fn epoll_ctl(&mut self, ep: usize, op: CtlOp, fd: Fd, events: u32) -> Result<(), SysErr> {
        self.on(|h, _| h.sys_epoll_ctl(ep, op, fd, events)).map_err(SysErr::Known)
    }

    fn epoll_wait(&mut self, ep: usize, max: u32, _timeout: Dur) -> Result<Vec<(Fd, PollMask)>, SysErr> {
        Ok(self.on(|h, _| h.sys_epoll_wait(ep, max as usize)))
    }

    fn kevent(&mut self, fd: Fd, filter: KFilter, lowat: Option<u32>) -> Result<Option<KEvent>, SysErr> {
        self.on(|h, _| h.sys_kevent(fd, filter, lowat)).map_err(SysErr::Known)
    }

    fn sleep(&mut self, d: Dur) {
        let t = self.sim.now() + d;
        self.sim.run_until(t);
    }

    /// Scripts inject their faults as packets; there is no fault step to apply.
    fn fault(&mut self, _f: &FaultAction) -> Result<(), String> {
        Err("packetdrill runs have no fault steps".into())
    }

    fn settle(&mut self) -> u64 {
        self.sim.now().as_nanos()
    }

    fn take_fatal(&mut self) -> Option<Infallible> {
        None
    }
}
