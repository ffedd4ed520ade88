//! The socket syscalls as a program on this host makes them, with Linux's errnos
//! (net/socket.c, net/ipv4/af_inet.c, net/ipv4/tcp.c).
//!
//! Every call here is non-blocking: it either completes now or fails with EAGAIN /
//! EINPROGRESS. Blocking is the caller's business (the script runner waits in simulated time
//! for the socket to become ready and calls again), which keeps the kernel model free of
//! threads of control. The one wait the socket itself remembers is a Fast Open write's for
//! the handshake (`tcp_sendmsg_fastopen` holds its request and `sk_write_pending` while it
//! sleeps): the call made again is that write going on ([`Host::sys_sendto`]).

use super::sockets::{ConnId, FreshSock, ListenerId, SockRef};
use super::local_port::{PortRange, Ports};
use super::{route_advmss, ConnSlot, Fd, Host, ListenerSlot};
use crate::engine::{Ctx, TimerSlot};
use crate::errno::Errno;
use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};
use crate::socket::epoll::Epoll;
use crate::socket::kqueue::{self, KEvent, KFilter};
use crate::tcp::profile::Os;
use crate::socket::view::{SockView, RCV_SHUTDOWN, SEND_SHUTDOWN};
use crate::tcp::conn::{Conn, RecvDest, SendData, SockOpts};
use crate::tcp::listener::Listener;
use crate::tcp::state::{Cause, TcpState};
use rand_core::RngCore;
use crate::addr::SockAddr;

/// `send()` flags the model distinguishes.
#[derive(Copy, Clone, Debug, Default)]
pub struct SendFlags {
    pub nosignal: bool,
    /// MSG_MORE: more data follows; this send's push is corked (`tcp_push`).
    pub more: bool,
    /// MSG_EOR: the write's last skb takes no later data (`TCP_SKB_CB(skb)->eor`).
    pub eor: bool,
    /// MSG_FASTOPEN: the write goes through `tcp_sendmsg_fastopen` (a new socket connects).
    pub fastopen: bool,
    /// MSG_DONTWAIT: the call does not wait, whatever the socket's O_NONBLOCK.
    pub dontwait: bool,
}

impl SendFlags {
    /// The flags of a send() call's flag list.
    pub fn of(flags: &[MsgFlag]) -> SendFlags {
        SendFlags {
            nosignal: flags.contains(&MsgFlag::MSG_NOSIGNAL),
            more: flags.contains(&MsgFlag::MSG_MORE),
            eor: flags.contains(&MsgFlag::MSG_EOR),
            fastopen: flags.contains(&MsgFlag::MSG_FASTOPEN),
            dontwait: flags.contains(&MsgFlag::MSG_DONTWAIT),
        }
    }
}

/// `recv()` flags the model distinguishes.
#[derive(Copy, Clone, Debug, Default)]
pub struct RecvFlags {
    pub peek: bool,
}

/// A call's outcome as a program sees it, plus what else it caused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyscallResult {
    pub ret: i64,
    pub errno: Option<Errno>,
    /// SIGPIPE was raised (`sk_stream_error` with EPIPE and no MSG_NOSIGNAL).
    pub sigpipe: bool,
}

/// The remote address of a socket that has none (a listener's), for traces.
const UNCONNECTED: SockAddr = SockAddr::v4(std::net::Ipv4Addr::UNSPECIFIED, 0);

impl Host {
    /// socket(AF_INET, SOCK_STREAM, 0).
    pub fn sys_socket(&mut self, nonblocking: bool) -> Fd {
        let opts = SockOpts::default();
        let i = self.table.new_fresh(FreshSock { opts, port: None, shutdown: 0 });
        self.table.alloc_fd(SockRef::Fresh(i), nonblocking)
    }

    pub fn is_nonblocking(&self, fd: Fd) -> bool {
        self.table.entry(fd).is_some_and(|e| e.nonblocking)
    }

    /// fcntl(F_SETFL) of O_NONBLOCK: a flag of the open file, not of the socket
    /// (fs/fcntl.c `setfl`), so it changes no TCP state.
    pub fn sys_set_nonblocking(&mut self, fd: Fd, nonblocking: bool) -> Result<(), Errno> {
        self.table.entry_mut(fd).ok_or(Errno::EBADF)?.nonblocking = nonblocking;
        Ok(())
    }

    /// Whether a listener or a connection uses `port` here.
    fn port_in_use(&self, port: u16) -> bool {
        self.lhash.contains_key(&port) || self.ehash.port_used(port)
    }

    /// The local address for an unconnected socket about to connect to `remote` (None: to
    /// listen): its bound port, or one chosen as Linux chooses ([`super::local_port`]), with one
    /// draw of the host's seeded stream. EADDRNOTAVAIL when the range is exhausted.
    fn local_addr_for(&mut self, i: u32, remote: Option<SockAddr>, ctx: &mut Ctx) -> Result<SockAddr, Errno> {
        if let Some(p) = self.table.fresh(i).and_then(|s| s.port).filter(|p| *p != 0) {
            return Ok(SockAddr::new(self.addr, p));
        }
        let range = PortRange::new(self.profile.ip_local_port_range);
        let random = ctx.rng().next_u32();
        let addr = self.addr;
        let port = match remote {
            Some(remote) => {
                let (lhash, ehash) = (&self.lhash, &self.ehash);
                let first_free = |start, count| ehash.first_free_port(addr, remote, start, count, |p| !lhash.contains_key(&p));
                let exhausted = ehash.ephemeral_exhausted(addr, remote);
                self.ports.connect_port(range, addr, remote, random, exhausted, first_free)
            }
            None => Ports::bind_port(range, random, |p| !self.port_in_use(p)),
        };
        port.map(|p| SockAddr::new(addr, p)).ok_or(Errno::EADDRNOTAVAIL)
    }

    /// Takes an unconnected socket out of the table for connect()/listen(), with its local
    /// address (`inet_hash_connect`, `inet_autobind`).
    fn take_fresh_bound(&mut self, i: u32, remote: Option<SockAddr>, ctx: &mut Ctx) -> Result<(FreshSock, SockAddr), Errno> {
        let local = self.local_addr_for(i, remote, ctx)?;
        let fresh = self.table.take_fresh(i).ok_or(Errno::EBADF)?;
        Ok((fresh, local))
    }

    /// bind() to a port of this host's address (af_inet.c `__inet_bind`).
    pub fn sys_bind(&mut self, fd: Fd, port: u16) -> Result<(), Errno> {
        let Some(SockRef::Fresh(i)) = self.table.get(fd) else {
            return Err(if self.table.get(fd).is_none() { Errno::EBADF } else { Errno::EINVAL });
        };
        if port != 0 && self.port_in_use(port) {
            return Err(Errno::EADDRINUSE);
        }
        let sock = self.table.fresh_mut(i).ok_or(Errno::EBADF)?;
        if sock.port.is_some() {
            return Err(Errno::EINVAL);
        }
        sock.port = Some(port);
        Ok(())
    }

    /// listen() (af_inet.c `inet_listen`): a second listen() only changes the backlog.
    pub fn sys_listen(&mut self, fd: Fd, backlog: i32, ctx: &mut Ctx) -> Result<(), Errno> {
        match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Listener(id) => {
                let slot = self.table.listener_mut(id).ok_or(Errno::EBADF)?;
                slot.listener.set_backlog(backlog);
                Ok(())
            }
            SockRef::Conn(_) => Err(Errno::EINVAL),
            SockRef::Fresh(i) => {
                let (fresh, local) = self.take_fresh_bound(i, None, ctx)?;
                let port = local.port();
                let secret = ctx.rng().next_u64();
                let mut listener = Listener::new(local, backlog, self.profile.clone()).with_secret(secret);
                listener.set_rcvbuf(fresh.opts.effective_rcvbuf(&self.profile), fresh.opts.rcvbuf.is_some());
                listener.set_user_mss(fresh.opts.user_mss);
                if let Some(qlen) = self.listen_fastopen_qlen(fresh.opts.fastopen_qlen, backlog) {
                    listener.set_fastopen(qlen, self.fastopen_key(ctx));
                }
                let id = self.table.add_listener(ListenerSlot {
                    listener,
                    opts: fresh.opts,
                    timer: TimerSlot::default(),
                    fd,
                    seen_accept_len: 0,
                });
                self.lhash.insert(port, id);
                self.table.entry_mut(fd).ok_or(Errno::EBADF)?.sock = SockRef::Listener(id);
                self.record_transition(ctx, local, UNCONNECTED, (TcpState::Close, TcpState::Listen, Cause::Listen));
                Ok(())
            }
        }
    }

    /// The Fast Open queue a new listener gets (af_inet.c `inet_listen`): TCP_FASTOPEN's, else
    /// one as long as the backlog when `net.ipv4.tcp_fastopen` has both
    /// `TFO_SERVER_WO_SOCKOPT1` and `TFO_SERVER_ENABLE`; `None`: no Fast Open.
    fn listen_fastopen_qlen(&self, sockopt: u32, backlog: i32) -> Option<u32> {
        use crate::tcp::fastopen::{TFO_SERVER_ENABLE, TFO_SERVER_WO_SOCKOPT1};
        let all = TFO_SERVER_ENABLE | TFO_SERVER_WO_SOCKOPT1;
        match sockopt {
            0 if self.profile.tcp_fastopen & all == all => Some(backlog.max(0) as u32),
            0 => None,
            q => Some(q),
        }
    }

    /// connect() (af_inet.c `__inet_stream_connect`, tcp_ipv4.c `tcp_v4_connect`). Always
    /// answers EINPROGRESS for a new attempt; a blocking caller waits for the outcome.
    pub fn sys_connect(&mut self, fd: Fd, remote: SockAddr, ctx: &mut Ctx) -> Result<(), Errno> {
        match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Listener(_) => Err(Errno::EISCONN),
            SockRef::Conn(id) => {
                let slot = self.table.conn_mut(id).ok_or(Errno::EBADF)?;
                match slot.conn.state() {
                    // __inet_stream_connect, SS_CONNECTING with DEFER_CONNECT: connect() again
                    // is EISCONN (a write is what sends the SYN).
                    TcpState::SynSent if slot.conn.defer_connect() => Err(Errno::EISCONN),
                    TcpState::SynSent | TcpState::SynRecv => Err(Errno::EALREADY),
                    TcpState::Close => Err(slot.conn.take_error().unwrap_or(Errno::ECONNABORTED)),
                    _ => Err(Errno::EISCONN),
                }
            }
            SockRef::Fresh(i) => {
                let fastopen = self.table.fresh_mut(i).ok_or(Errno::EBADF)?.opts.fastopen_connect;
                let deferred = self.connect_fresh(fd, i, remote, ctx, |conn, cached, now, out| {
                    if fastopen {
                        conn.fastopen_connect(now, cached, out)
                    } else {
                        conn.send_syn(now, out);
                        false
                    }
                })?;
                if deferred {
                    Ok(())
                } else {
                    Err(Errno::EINPROGRESS)
                }
            }
        }
    }

    /// `tcp_v4_connect` on a new socket: a port, the ISN, the route's MSS, a SYN_SENT
    /// connection in the established hash; `open` sends its SYN (or defers it: Fast Open),
    /// given the host's Fast Open cache entry for the destination, and returns what it
    /// returns.
    fn connect_fresh<R>(
        &mut self,
        fd: Fd,
        i: u32,
        remote: SockAddr,
        ctx: &mut Ctx,
        open: impl FnOnce(&mut Conn, Option<&crate::tcp::fastopen::Cached>, crate::time::SimTime, &mut Vec<crate::tcp::segment::Segment>) -> R,
    ) -> Result<R, Errno> {
        let (fresh, local) = self.take_fresh_bound(i, Some(remote), ctx)?;
        let iss = self.isn(local, remote, ctx);
        let advmss = route_advmss(ctx, remote.ip());
        let mut out = Vec::new();
        let opts = self.share_opts(fresh.opts);
        let mut conn = Conn::connect_init(ctx.now(), self.profile.clone(), opts, local, remote, iss, advmss);
        conn.set_dev_refuses(self.qdisc_refuses);
        conn.set_qdisc_fq(self.qdisc == super::qdisc::Qdisc::Fq);
        let r = open(&mut conn, self.tfo_cache.get(remote.ip()), ctx.now(), &mut out);
        let id = self.table.add_conn(ConnSlot::new(conn, Some(fd)));
        self.ehash.insert((local, remote), id);
        self.table.entry_mut(fd).ok_or(Errno::EBADF)?.sock = SockRef::Conn(id);
        self.after_conn(id, &mut out, ctx);
        Ok(r)
    }

    /// A write through `tcp_sendmsg_fastopen` (tcp.c; `tcp_sendmsg_locked` takes this path for
    /// MSG_FASTOPEN and after a deferred connect): EOPNOTSUPP unless `net.ipv4.tcp_fastopen`
    /// has `TFO_CLIENT_ENABLE`; on a new socket the connect to `to` (EINVAL without one:
    /// `tcp_v4_connect`'s address length), its SYN carrying what of the write fits when a
    /// cookie is cached; on a connection, [`Conn::sendmsg_fastopen`]. Then
    /// `__inet_stream_connect`: a blocking writer whose connection is still in the handshake
    /// sleeps ([`Conn::fastopen_sleep`]) and the call answers EAGAIN until
    /// [`Host::fastopen_wake`] ends the wait; any other gets the bytes the SYN took, or the
    /// connect's error when it took none (`tcp_sendmsg_locked`: EINPROGRESS with
    /// `copied_syn > 0` goes to `out`).
    fn sendmsg_fastopen(&mut self, fd: Fd, to: Option<SockAddr>, data: &SendData, flags: SendFlags, ctx: &mut Ctx) -> Result<u32, Errno> {
        if self.profile.tcp_fastopen & crate::tcp::fastopen::TFO_CLIENT_ENABLE == 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let blocking = !flags.dontwait && !self.is_nonblocking(fd);
        let (id, copied, err) = match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Listener(_) => return Err(Errno::EISCONN),
            SockRef::Fresh(i) => {
                let to = to.ok_or(Errno::EINVAL)?;
                let copied = self.connect_fresh(fd, i, to, ctx, |conn, cached, now, out| conn.fastopen_sendto(now, data, cached, out))?;
                let Some(SockRef::Conn(id)) = self.table.get(fd) else { return Err(Errno::EBADF) };
                (id, copied, Errno::EINPROGRESS)
            }
            SockRef::Conn(id) => {
                let mut out = Vec::new();
                let slot = self.table.conn_mut(id).ok_or(Errno::EBADF)?;
                let cached = self.tfo_cache.get(slot.conn.remote().ip());
                let deferred = slot.conn.defer_connect();
                let r = slot.conn.sendmsg_fastopen(ctx.now(), data, cached, &mut out);
                let err = slot.conn.stream_connect_err(deferred);
                self.after_conn(id, &mut out, ctx);
                (id, r?, err)
            }
        };
        let slot = self.table.conn_mut(id).ok_or(Errno::EBADF)?;
        if blocking && matches!(slot.conn.state(), TcpState::SynSent | TcpState::SynRecv) {
            slot.conn.fastopen_sleep(copied);
            return Err(Errno::EAGAIN);
        }
        slot.conn.end_fastopen_write();
        match err {
            Errno::EINPROGRESS if copied > 0 => Ok(copied),
            e => Err(e),
        }
    }

    /// The call again of a Fast Open write asleep in `inet_wait_for_connect` on connection
    /// `id` (the model's callers make one call at a time on a socket, so a call there is the
    /// sleeper's): EAGAIN while the handshake goes on; once it ended, `tcp_sendmsg_fastopen`
    /// returns — the socket's error if the connection closed (`sock_error`, ECONNABORTED if
    /// none), else 0 — and `tcp_sendmsg_locked` copies the rest of the write after the bytes
    /// the SYN took, answering their sum.
    fn fastopen_wake(&mut self, id: ConnId, data: &SendData, flags: SendFlags, ctx: &mut Ctx) -> Result<u32, Errno> {
        let slot = self.table.conn_mut(id).ok_or(Errno::EBADF)?;
        match slot.conn.state() {
            TcpState::SynSent | TcpState::SynRecv => return Err(Errno::EAGAIN),
            TcpState::Close => {
                slot.conn.end_fastopen_write();
                return Err(slot.conn.take_error().unwrap_or(Errno::ECONNABORTED));
            }
            _ => {}
        }
        let copied = slot.conn.end_fastopen_write().unwrap_or(0);
        match self.conn_sendmsg(id, data.after(copied), flags, ctx) {
            Ok(n) => Ok(copied + n),
            Err(_) if copied > 0 => Ok(copied),
            Err(e) => Err(e),
        }
    }

    /// `tcp_sendmsg_locked`'s copy loop on connection `id`.
    fn conn_sendmsg(&mut self, id: ConnId, data: SendData, flags: SendFlags, ctx: &mut Ctx) -> Result<u32, Errno> {
        let mut out = Vec::new();
        let r = match self.table.conn_mut(id) {
            Some(slot) => slot.conn.sendmsg(ctx.now(), data, flags.more, flags.eor, &mut out),
            None => Err(Errno::EBADF),
        };
        self.after_conn(id, &mut out, ctx);
        r
    }

    /// accept(): the oldest child of the accept queue, on a new descriptor.
    pub fn sys_accept(&mut self, fd: Fd, nonblocking: bool) -> Result<Fd, Errno> {
        let SockRef::Listener(lid) = self.table.get(fd).ok_or(Errno::EBADF)? else {
            return Err(Errno::EINVAL);
        };
        let slot = self.table.listener_mut(lid).ok_or(Errno::EBADF)?;
        let child = slot.listener.accept().ok_or(Errno::EAGAIN)?;
        slot.seen_accept_len = slot.listener.accept_queue_len() as u32;
        self.table.unmark_pending_child(child);
        let new_fd = self.table.alloc_fd(SockRef::Conn(child), nonblocking);
        if let Some(c) = self.table.conn_mut(child) {
            c.fd = Some(new_fd);
        }
        Ok(new_fd)
    }

    /// A handshake completed on listener `lid`: the child connection is built, fed the
    /// segment that completed it, and queued for accept() (tcp_minisocks.c `tcp_check_req`,
    /// `inet_csk_complete_hashdance`).
    pub(crate) fn spawn_child(
        &mut self,
        lid: ListenerId,
        now: crate::time::SimTime,
        params: Box<crate::tcp::conn::ChildParams>,
        ctx: &mut Ctx,
    ) {
        let Some(slot) = self.table.listener(lid) else { return };
        let opts = slot.opts.clone();
        let opts = self.share_opts(opts);
        let mut out = Vec::new();
        let mut conn = if params.fastopen {
            Conn::fastopen_child(now, self.profile.clone(), opts, &params)
        } else {
            Conn::accept_child(now, self.profile.clone(), opts, &params, &mut out)
        };
        conn.set_dev_refuses(self.qdisc_refuses);
        conn.set_qdisc_fq(self.qdisc == super::qdisc::Qdisc::Fq);
        // The completing segment's data and FIN belong to the child (`tcp_child_process`).
        let rest = !params.segment.payload.is_empty() || params.segment.flags.contains(crate::tcp::segment::Flags::FIN);
        if rest && !params.fastopen {
            conn.on_segment(now, &params.segment, &mut out);
        }
        let (local, remote) = (conn.local(), conn.remote());
        let id = self.table.add_conn(ConnSlot::new(conn, None));
        self.ehash.insert((local, remote), id);
        self.table.mark_pending_child(id);
        if let Some(slot) = self.table.listener_mut(lid) {
            slot.listener.enqueue(id);
            if params.fastopen {
                slot.listener.enqueue_fastopen(id);
            }
        }
        self.after_conn(id, &mut out, ctx);
        let mut none = Vec::new();
        self.after_listener(lid, &mut none, ctx);
    }

    /// send() (tcp.c `tcp_sendmsg_locked`): sendto() with no address.
    pub fn sys_send(&mut self, fd: Fd, data: SendData, flags: SendFlags, ctx: &mut Ctx) -> SyscallResult {
        self.sys_sendto(fd, None, data, flags, ctx)
    }

    /// sendto() (tcp.c `tcp_sendmsg_locked`): TCP reads the address `to` only for Fast Open.
    /// MSG_FASTOPEN, a deferred connect, or a Fast Open writer asleep on the socket take
    /// `tcp_sendmsg_fastopen`'s path. SIGPIPE is raised only when the final error is EPIPE
    /// and MSG_NOSIGNAL is not set (`sk_stream_error`).
    pub fn sys_sendto(&mut self, fd: Fd, to: Option<SockAddr>, data: SendData, flags: SendFlags, ctx: &mut Ctx) -> SyscallResult {
        let conn = |id: ConnId, f: fn(&Conn) -> bool| self.table.conn(id).is_some_and(|s| f(&s.conn));
        let r = match self.table.get(fd) {
            None => Err(Errno::EBADF),
            Some(SockRef::Conn(id)) if conn(id, Conn::fastopen_sleeping) => self.fastopen_wake(id, &data, flags, ctx),
            Some(SockRef::Conn(id)) if flags.fastopen || conn(id, Conn::defer_connect) => {
                self.sendmsg_fastopen(fd, to, &data, flags, ctx)
            }
            Some(_) if flags.fastopen => self.sendmsg_fastopen(fd, to, &data, flags, ctx),
            // A never-connected or listening socket fails `sk_stream_wait_connect` with EPIPE.
            Some(SockRef::Fresh(_) | SockRef::Listener(_)) => Err(Errno::EPIPE),
            Some(SockRef::Conn(id)) => self.conn_sendmsg(id, data, flags, ctx),
        };
        SyscallResult::from_result(r.map(i64::from), !flags.nosignal)
    }

    /// recv() (tcp.c `tcp_recvmsg_locked`): the bytes read, or why none.
    pub fn sys_recv(&mut self, fd: Fd, len: u32, flags: RecvFlags, ctx: &mut Ctx) -> Result<Vec<u8>, Errno> {
        let mut data = Vec::new();
        self.recv_into(fd, len, flags, RecvDest::Copy(&mut data), ctx)?;
        Ok(data)
    }

    /// recv() with `MSG_TRUNC`: Linux's TCP discards the bytes instead of copying them and
    /// returns their count (`tcp_recvmsg_locked` skips `skb_copy_datagram_msg`); 0 at EOF.
    pub fn sys_recv_trunc(&mut self, fd: Fd, len: u32, flags: RecvFlags, ctx: &mut Ctx) -> Result<u32, Errno> {
        self.recv_into(fd, len, flags, RecvDest::Discard, ctx)
    }

    /// recv() into a program's buffer `buf`: the count read. A NULL buffer fails with EFAULT
    /// where there are bytes to copy, else answers what any recv() does (an error, EOF,
    /// EAGAIN, 0 for a zero length).
    pub fn sys_recv_to(&mut self, fd: Fd, len: u32, buf: UserBuf, flags: RecvFlags, ctx: &mut Ctx) -> Result<u32, Errno> {
        match buf {
            UserBuf::Mapped => self.sys_recv(fd, len, flags, ctx).map(|d| d.len() as u32),
            UserBuf::Null => self.recv_into(fd, len, flags, RecvDest::Fault, ctx),
        }
    }

    fn recv_into(&mut self, fd: Fd, len: u32, flags: RecvFlags, copy: RecvDest, ctx: &mut Ctx) -> Result<u32, Errno> {
        match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Fresh(i) => {
                // A shut-down unconnected socket reads EOF (RCV_SHUTDOWN before the CLOSE test).
                let shut = self.table.fresh_mut(i).map_or(0, |s| s.shutdown);
                if shut & RCV_SHUTDOWN != 0 {
                    Ok(0)
                } else {
                    Err(Errno::ENOTCONN)
                }
            }
            SockRef::Listener(_) => Err(Errno::ENOTCONN),
            SockRef::Conn(id) => {
                let mut out = Vec::new();
                let r = match self.table.conn_mut(id) {
                    Some(slot) => slot.conn.recv_into(ctx.now(), len, flags.peek, copy, &mut out),
                    None => Err(Errno::EBADF),
                };
                self.after_conn(id, &mut out, ctx);
                r
            }
        }
    }

    /// shutdown() (af_inet.c `inet_shutdown`).
    pub fn sys_shutdown(&mut self, fd: Fd, how: ShutHow, ctx: &mut Ctx) -> Result<(), Errno> {
        let bits = match how {
            ShutHow::SHUT_RD => RCV_SHUTDOWN,
            ShutHow::SHUT_WR => SEND_SHUTDOWN,
            ShutHow::SHUT_RDWR => RCV_SHUTDOWN | SEND_SHUTDOWN,
        };
        match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Fresh(i) => {
                // CLOSE: ENOTCONN, yet the bits are set and pollers woken.
                if let Some(s) = self.table.fresh_mut(i) {
                    s.shutdown |= bits;
                }
                Err(Errno::ENOTCONN)
            }
            SockRef::Listener(lid) => {
                // Only RCV_SHUTDOWN acts on a listener: it disconnects (stops listening).
                if bits & RCV_SHUTDOWN != 0 {
                    self.stop_listening(fd, lid, Cause::Abort, ctx);
                }
                Ok(())
            }
            SockRef::Conn(id) => {
                let mut out = Vec::new();
                let r = match self.table.conn_mut(id) {
                    Some(slot) => slot.conn.shutdown(ctx.now(), how, &mut out),
                    None => Err(Errno::EBADF),
                };
                self.after_conn(id, &mut out, ctx);
                r
            }
        }
    }

    /// Stops a listener: unaccepted children are reset (`inet_csk_listen_stop`), and the
    /// descriptor is left as an unconnected socket.
    fn stop_listening(&mut self, fd: Fd, lid: ListenerId, cause: Cause, ctx: &mut Ctx) {
        let Some(mut slot) = self.table.remove_listener(lid) else { return };
        let local = slot.listener.local();
        self.lhash.remove(&local.port());
        for child in slot.listener.close() {
            self.table.unmark_pending_child(child);
            self.abort_conn(child, ctx);
        }
        self.record_transition(ctx, local, UNCONNECTED, (TcpState::Listen, TcpState::Close, cause));
        let i = self.table.new_fresh(FreshSock { opts: slot.opts, port: None, shutdown: 0 });
        if let Some(e) = self.table.entry_mut(fd) {
            e.sock = SockRef::Fresh(i);
        }
    }

    /// `tcp_disconnect` of a child never accepted: an abortive close, RST if synchronized
    /// (the same path as close() with SO_LINGER {1, 0}).
    fn abort_conn(&mut self, id: ConnId, ctx: &mut Ctx) {
        let mut out = Vec::new();
        if let Some(slot) = self.table.conn_mut(id) {
            let now = ctx.now();
            let _ = slot.conn.set_opt(now, SockOpt::SO_LINGER, &OptValue::Pair([1, 0]), &mut out);
            slot.conn.close(now, &mut out);
        }
        self.after_conn(id, &mut out, ctx);
    }

    /// close() (tcp.c `__tcp_close`): the connection lives on as an orphan until it is done.
    pub fn sys_close(&mut self, fd: Fd, ctx: &mut Ctx) -> Result<(), Errno> {
        let entry = self.table.free_fd(fd).ok_or(Errno::EBADF)?;
        for ep in &mut self.epolls {
            ep.forget(fd);
        }
        match entry.sock {
            SockRef::Fresh(i) => {
                self.table.take_fresh(i);
            }
            SockRef::Listener(lid) => {
                // Re-point a placeholder so stop_listening can rewrite it, then drop it.
                let tmp = self.table.alloc_fd(SockRef::Listener(lid), false);
                self.stop_listening(tmp, lid, Cause::CloseUnconnected, ctx);
                if let Some(SockRef::Fresh(i)) = self.table.free_fd(tmp).map(|e| e.sock) {
                    self.table.take_fresh(i);
                }
            }
            SockRef::Conn(id) => {
                let mut out = Vec::new();
                if let Some(slot) = self.table.conn_mut(id) {
                    slot.fd = None;
                    slot.conn.close(ctx.now(), &mut out);
                }
                self.after_conn(id, &mut out, ctx);
            }
        }
        Ok(())
    }

    /// setsockopt() on any kind of socket; options set before connect()/listen() are kept
    /// and inherited by accepted children, as Linux copies them in `sk_clone_lock`.
    pub fn sys_setsockopt(&mut self, fd: Fd, opt: SockOpt, value: &OptValue, ctx: &mut Ctx) -> Result<(), Errno> {
        let sock = self.table.get(fd).ok_or(Errno::EBADF)?;
        if opt == SockOpt::TCP_FASTOPEN {
            // do_tcp_setsockopt: a value >= 0 on a socket in CLOSE or LISTEN, which gets a
            // Fast Open queue (`fastopen_queue_tune`) and the namespace its key
            // (`tcp_fastopen_init_key_once`).
            crate::tcp::conn::SockOpts::default().set(opt, value)?;
            if matches!(sock, SockRef::Conn(id) if self.table.conn(id).is_some_and(|s| s.conn.state() != TcpState::Close)) {
                return Err(Errno::EINVAL);
            }
            let key = self.fastopen_key(ctx);
            if let SockRef::Listener(lid) = sock {
                let slot = self.table.listener_mut(lid).ok_or(Errno::EBADF)?;
                slot.opts.set(opt, value)?;
                slot.listener.set_fastopen(slot.opts.fastopen_qlen, key);
                return Ok(());
            }
        }
        if opt == SockOpt::TCP_FASTOPEN_CONNECT {
            // do_tcp_setsockopt: the value's range first, then the sysctl, then the state.
            crate::tcp::conn::SockOpts::default().set(opt, value)?;
            if self.profile.tcp_fastopen & crate::tcp::fastopen::TFO_CLIENT_ENABLE == 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            let closed = match sock {
                SockRef::Fresh(_) => true,
                SockRef::Listener(_) => false,
                SockRef::Conn(id) => self.table.conn_mut(id).is_some_and(|s| s.conn.state() == TcpState::Close),
            };
            if !closed {
                return Err(Errno::EINVAL);
            }
        }
        match sock {
            SockRef::Fresh(i) => self.table.fresh_mut(i).ok_or(Errno::EBADF)?.opts.set(opt, value),
            SockRef::Listener(lid) => {
                let slot = self.table.listener_mut(lid).ok_or(Errno::EBADF)?;
                slot.opts.set(opt, value)?;
                let rcvbuf = slot.opts.effective_rcvbuf(&self.profile);
                slot.listener.set_rcvbuf(rcvbuf, slot.opts.rcvbuf.is_some());
                slot.listener.set_user_mss(slot.opts.user_mss);
                Ok(())
            }
            SockRef::Conn(id) => {
                let mut out = Vec::new();
                let r = match self.table.conn_mut(id) {
                    Some(slot) => slot.conn.set_opt(ctx.now(), opt, value, &mut out),
                    None => Err(Errno::EBADF),
                };
                self.after_conn(id, &mut out, ctx);
                r
            }
        }
    }

    /// getsockopt(): SO_ERROR consumes the pending error (`sock_error`), TCP_INFO is a
    /// JSON object of the `tcp_info` fields the model keeps, its times counted to `now`.
    pub fn sys_getsockopt(&mut self, fd: Fd, opt: SockOpt, now: crate::time::SimTime) -> Result<serde_json::Value, Errno> {
        use serde_json::json;
        match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Fresh(i) => {
                let s = self.table.fresh_mut(i).ok_or(Errno::EBADF)?;
                match opt {
                    SockOpt::SO_ERROR => Ok(json!(0)),
                    SockOpt::TCP_INFO => Ok(json!({ "state": TcpState::Close.name() })),
                    _ => Ok(opt_json(s.opts.get(opt, &self.profile))),
                }
            }
            SockRef::Listener(lid) => {
                let s = self.table.listener(lid).ok_or(Errno::EBADF)?;
                match opt {
                    SockOpt::SO_ERROR => Ok(json!(0)),
                    SockOpt::TCP_INFO => Ok(json!({
                        "state": TcpState::Listen.name(),
                        "unacked": s.listener.accept_queue_len(),
                        "sacked": s.listener.backlog(),
                    })),
                    _ => Ok(opt_json(s.opts.get(opt, &self.profile))),
                }
            }
            SockRef::Conn(id) => {
                let slot = self.table.conn_mut(id).ok_or(Errno::EBADF)?;
                match opt {
                    SockOpt::SO_ERROR => Ok(json!(slot.conn.take_error().map_or(0, |e| e.code()))),
                    SockOpt::TCP_INFO => serde_json::to_value(slot.conn.info_at(now)).map_err(|_| Errno::EINVAL),
                    _ => Ok(opt_json(slot.conn.get_opt(opt))),
                }
            }
        }
    }

    /// ioctl() queue sizes (tcp.c `tcp_ioctl`).
    pub fn sys_ioctl(&mut self, fd: Fd, req: IoctlReq) -> Result<i64, Errno> {
        match self.table.get(fd).ok_or(Errno::EBADF)? {
            SockRef::Listener(_) => Err(Errno::EINVAL),
            SockRef::Fresh(_) => Ok(0),
            SockRef::Conn(id) => {
                let c = &self.table.conn(id).ok_or(Errno::EBADF)?.conn;
                Ok(i64::from(match req {
                    IoctlReq::FIONREAD => c.inq(),
                    IoctlReq::SIOCOUTQ => c.outq(),
                    IoctlReq::SIOCOUTQNSD => c.outq_notsent(),
                }))
            }
        }
    }

    /// epoll_create1(): an epoll instance on this host, by index.
    /// epoll_create(2): the new instance's index. ENOSYS on FreeBSD, which has no epoll.
    pub fn sys_epoll_create(&mut self) -> Result<usize, Errno> {
        if self.os() != Os::Linux {
            return Err(Errno::ENOSYS);
        }
        self.epolls.push(Epoll::new());
        Ok(self.epolls.len() - 1)
    }

    /// kevent(2) with one `EV_ADD` change for `filter` on `fd` and a zero timeout: the event if
    /// the filter fired (sys/kern/uipc_socket.c `filt_soread`/`filt_sowrite`/`filt_soempty`).
    /// `note_lowat` is `NOTE_LOWAT`'s threshold. ENOSYS on Linux, which has no kqueue; EBADF
    /// for an fd that is not open (`kqueue_register` → `fget`).
    pub fn sys_kevent(&self, fd: Fd, filter: KFilter, note_lowat: Option<u32>) -> Result<Option<KEvent>, Errno> {
        if self.os() != Os::FreeBsd {
            return Err(Errno::ENOSYS);
        }
        let view = self.view(fd).ok_or(Errno::EBADF)?;
        Ok(kqueue::kevent(&view, filter, note_lowat))
    }

    /// The [`SockView`] of a descriptor (for the rules checker and kqueue views).
    pub fn view(&self, fd: Fd) -> Option<SockView> {
        match self.table.get(fd)? {
            SockRef::Conn(id) => Some(self.table.conn(id)?.conn.view()),
            SockRef::Listener(lid) => Some(self.listener_view(lid)),
            SockRef::Fresh(i) => Some(self.fresh_sock_view(i)),
        }
    }

    /// `tcpi_options` of the connection on `fd` ([`crate::tcp::conn::TcpInfo::options`]).
    pub fn tcpi_options(&self, fd: Fd) -> Option<u8> {
        match self.table.get(fd)? {
            SockRef::Conn(id) => Some(self.table.conn(id)?.conn.info().options),
            SockRef::Listener(_) | SockRef::Fresh(_) => Some(0),
        }
    }

    /// The TCP state a descriptor reports (`tcpi_state`), if it is a socket.
    pub fn state(&self, fd: Fd) -> Option<TcpState> {
        self.view(fd).and_then(|v| v.state)
    }

    /// The `TCP_CM_INQ` control message a recvmsg() on `fd` would carry now: `None` unless
    /// the socket is a connection with TCP_INQ on (`Conn::inq_hint`).
    pub fn recvmsg_inq(&self, fd: Fd) -> Option<u32> {
        match self.table.get(fd)? {
            SockRef::Conn(id) => self.table.conn(id)?.conn.inq_hint(),
            SockRef::Listener(_) | SockRef::Fresh(_) => None,
        }
    }
}

/// An option's value as the observation log writes it: a number, `[l_onoff, l_linger]`, or a
/// name.
fn opt_json(v: OptValue) -> serde_json::Value {
    match v {
        OptValue::Int(i) => serde_json::json!(i),
        OptValue::Pair(p) => serde_json::json!(p),
        OptValue::Name(n) => serde_json::json!(n),
    }
}

impl SyscallResult {
    fn from_result(r: Result<i64, Errno>, signals: bool) -> SyscallResult {
        match r {
            Ok(n) => SyscallResult { ret: n, errno: None, sigpipe: false },
            Err(e) => SyscallResult { ret: -1, errno: Some(e), sigpipe: signals && e == Errno::EPIPE },
        }
    }
}

impl ConnSlot {
    pub(crate) fn new(conn: Conn, fd: Option<Fd>) -> ConnSlot {
        ConnSlot { conn, timers: [TimerSlot::default(); 3], fd }
    }
}
