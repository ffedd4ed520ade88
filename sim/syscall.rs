//! The socket syscalls as a program makes them: one interface, [`Syscalls`], over the systems a
//! program can run on, the model's hosts (`world`) and the real kernel (`capture`, Linux).
//!
//! Every caller that turns steps into calls (a scenario's script, the replayed program of a
//! trace, a packetdrill script) goes through the one step executor in [`crate::script`], which
//! calls this interface and writes the observation log. A new syscall is one method here, one
//! in each implementation, and one arm in the executor.
//!
//! Calls block as the system's calls do: the model sleeps in simulated time until the socket is
//! ready (`sk_wait_event`), the real kernel in real time. A call still blocked when a model run
//! ends answers [`Blocked`].

use crate::engine::fault::FaultAction;
use crate::errno::Errno;
use crate::socket::epoll::CtlOp;
use crate::socket::kqueue::{KEvent, KFilter};
use crate::tcp::conn::SendData;
use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};
use crate::tcp::view::PollMask;
use crate::time::Dur;
use crate::addr::SockAddr;
use std::net::IpAddr;

/// A failed call's error: by name when the model knows it, else the number the kernel returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SysErr {
    Known(Errno),
    Unknown(i32),
}

impl SysErr {
    /// The error of an errno value.
    pub fn from_code(code: i32) -> SysErr {
        Errno::from_code(code).map_or(SysErr::Unknown(code), SysErr::Known)
    }
}

impl From<Errno> for SysErr {
    fn from(e: Errno) -> SysErr {
        SysErr::Known(e)
    }
}

/// The call was still blocked when the run ended (the model only: a real call returns).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Blocked;

/// A blocking call's outcome: its result, or [`Blocked`].
pub type Blocking<T> = Result<Result<T, SysErr>, Blocked>;

/// What a send() returned, and whether it raised SIGPIPE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The bytes queued, or why none.
    pub result: Result<u32, SysErr>,
    pub sigpipe: bool,
}

/// The socket syscalls of one system, with sockets and epoll instances as that system names
/// them. Results are the calls' own (`Err` is the errno); a harness failure that makes the run
/// meaningless (a namespace that cannot be entered, a firewall command that failed) is kept
/// and answered by [`Syscalls::take_fatal`].
pub trait Syscalls {
    /// A socket (a host and descriptor in the model; a descriptor on the real kernel).
    type Sock: Copy + PartialEq;
    /// An epoll instance.
    type Ep: Copy;
    /// A harness failure.
    type Fatal;

    /// The address of a host by its scenario name.
    fn host_addr(&self, host: &str) -> Option<IpAddr>;
    /// socket(AF_INET, SOCK_STREAM, 0) on `host`, `O_NONBLOCK` if `nonblocking`.
    fn socket(&mut self, host: &str, nonblocking: bool) -> Result<Self::Sock, SysErr>;
    /// bind() to `port` of the socket's host address.
    fn bind(&mut self, s: Self::Sock, port: u16) -> Result<(), SysErr>;
    fn listen(&mut self, s: Self::Sock, backlog: i32) -> Result<(), SysErr>;
    /// connect(); a blocking socket waits for the handshake's outcome.
    fn connect(&mut self, s: Self::Sock, to: SockAddr) -> Blocking<()>;
    fn accept(&mut self, s: Self::Sock) -> Blocking<Self::Sock>;
    /// send() of `data` (derived bytes are the socket's own stream; `SendData::Null` is a
    /// NULL buffer, [`UserBuf`]).
    fn send(&mut self, s: Self::Sock, data: &SendData, flags: &[MsgFlag]) -> Result<Sent, Blocked>;
    /// sendto() of `data` to `to`: as send() on TCP but with `MSG_FASTOPEN`, where it is the
    /// connect as well (tcp.c `tcp_sendmsg_fastopen`); a blocking writer then waits for the
    /// handshake before the rest.
    fn sendto(&mut self, s: Self::Sock, data: &SendData, flags: &[MsgFlag], to: SockAddr) -> Result<Sent, Blocked>;
    /// recv() of up to `len` bytes into `buf`: how many were read.
    fn recv(&mut self, s: Self::Sock, len: u32, buf: UserBuf, flags: &[MsgFlag]) -> Blocking<u32>;
    fn shutdown(&mut self, s: Self::Sock, how: ShutHow) -> Result<(), SysErr>;
    fn close(&mut self, s: Self::Sock) -> Result<(), SysErr>;
    fn setsockopt(&mut self, s: Self::Sock, opt: SockOpt, value: &OptValue) -> Result<(), SysErr>;
    /// getsockopt(): a number, `[l_onoff, l_linger]` for SO_LINGER, an object for TCP_INFO;
    /// SO_ERROR as its errno value.
    fn getsockopt(&mut self, s: Self::Sock, opt: SockOpt) -> Result<serde_json::Value, SysErr>;
    /// ioctl() of a queue size: the count it writes.
    fn ioctl(&mut self, s: Self::Sock, req: IoctlReq) -> Result<i64, SysErr>;
    /// poll() on one socket (`None`: a descriptor that is not open), waiting up to `timeout`.
    fn poll(&mut self, s: Option<Self::Sock>, events: PollMask, timeout: Dur) -> Result<PollMask, SysErr>;
    fn epoll_create(&mut self) -> Result<Self::Ep, SysErr>;
    /// epoll_ctl(); `events` with the EPOLLET/EPOLLONESHOT bits.
    fn epoll_ctl(&mut self, ep: Self::Ep, op: CtlOp, s: Self::Sock, events: u32) -> Result<(), SysErr>;
    /// epoll_wait() for at most `max` events, waiting up to `timeout`.
    fn epoll_wait(&mut self, ep: Self::Ep, max: u32, timeout: Dur) -> Result<Vec<(Self::Sock, PollMask)>, SysErr>;
    /// kevent() with one `EV_ADD` of `filter` (`NOTE_LOWAT` = `lowat`) and a zero timeout.
    fn kevent(&mut self, s: Self::Sock, filter: KFilter, lowat: Option<u32>) -> Result<Option<KEvent>, SysErr>;
    /// Lets `d` pass.
    fn sleep(&mut self, d: Dur);
    /// Applies a fault now; the error says why it could not be.
    fn fault(&mut self, f: &FaultAction) -> Result<(), String>;
    /// Time since the start of the run, in nanoseconds, once what the last call set in motion
    /// and is due now has happened (softirq work on the way out of a syscall).
    fn settle(&mut self) -> u64;
    /// The script named a socket or epoll instance it never made (`what`, e.g. "socket `c`").
    /// The call then fails with EBADF, as one on a closed descriptor does; a harness that
    /// should not log a script's mistake as the kernel's answer keeps it as a failure.
    fn unknown_name(&mut self, _what: &str) {}
    /// A harness failure since the last call, if any.
    fn take_fatal(&mut self) -> Option<Self::Fatal>;
}
