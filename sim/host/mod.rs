//! A simulated host's kernel: the TCP stack that demultiplexes segments to connections and
//! listeners (tcp_ipv4.c `tcp_v4_rcv`), and the descriptor table programs call through.
//!
//! The TCP model itself is sans-I/O ([`Conn`], [`Listener`]); this module is the glue that
//! gives it a clock and a wire: it forwards segments, keeps each timer's [`TimerSlot`] in
//! step with the model's deadlines, records every state transition against the state graph,
//! and turns wake-ups into epoll events.

mod ehash;
mod local_port;
pub mod qdisc;
mod sockets;
mod syscalls;

pub use sockets::{ConnHandle, Fd, SockRef};
pub use syscalls::{RecvFlags, SendFlags, SyscallResult};

use crate::engine::{Ctx, Node, TimerSlot, ETH_DATA_LEN};
use crate::errno::Errno;
use crate::socket::epoll::{CtlOp, Epoll};
use crate::socket::poll::{poll_revents, tcp_poll, POLL_REVENTS_CLOSED_FD};
use crate::tcp::view::{PollMask, SockView, Wakeup};
use crate::tcp::state::{Cause, TcpState};
use crate::tcp::conn::{Conn, TimerKind};
use crate::tcp::graph::Coverage;
use crate::tcp::listener::{Listener, ListenerAction, SynRoute};
use crate::socket::kqueue::freebsd_poll;
use crate::tcp::profile::{KernelProfile, Os};
use crate::tcp::reset::reset_for;
use crate::tcp::route::{ip6_default_advmss, ipv4_default_advmss};
use crate::tcp::segment::Segment;
use crate::time::SimTime;
use serde::Serialize;
use sockets::{ConnId, ListenerId, SockTable};
use std::collections::BTreeMap;
use crate::addr::SockAddr;
use std::net::IpAddr;
use std::rc::Rc;

/// Timer keys: the low two bits name the timer (the connection's three, or [`KEY_FQ_FLOW`]),
/// the rest the connection or listener.
const KEY_LISTENER_BIT: u64 = 1 << 63;
/// The fourth timer of a connection: the `fq` watchdog of its flow ([`qdisc::Fq`]).
const KEY_FQ_FLOW: usize = 3;
const TIMER_KINDS: [TimerKind; 3] = [TimerKind::Retransmit, TimerKind::DelAck, TimerKind::Keepalive];

/// A connection in the host's table, with the engine-side state of its three timers.
pub(crate) struct ConnSlot {
    pub conn: Conn,
    pub timers: [TimerSlot; 3],
    /// The descriptor a program holds, if any (none: a child not yet accepted, or an orphan).
    pub fd: Option<Fd>,
}

pub(crate) struct ListenerSlot {
    pub listener: Listener<ConnId>,
    /// Options set on the listening socket, inherited by its children (`sk_clone_lock`).
    pub opts: crate::tcp::conn::SockOpts,
    pub timer: TimerSlot,
    pub fd: Fd,
    pub seen_accept_len: u32,
}

/// One state transition, as the trace records it.
#[derive(Serialize)]
struct TransitionRecord<'a> {
    local: SockAddr,
    remote: SockAddr,
    from: &'a str,
    to: &'a str,
    cause: &'a str,
    legal: bool,
}

/// A timer that expired, as the trace records it: which one (see `Conn::timer_name`;
/// `SYN-ACK` for a listener's request sockets), whose, and for the retransmission timer the
/// backoff count after this expiry (`icsk_backoff`).
#[derive(Serialize)]
struct TimerRecord {
    timer: &'static str,
    local: SockAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<SockAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backoff: Option<u32>,
}

/// Up to this many woken descriptors are deduplicated by a scan, more through a set.
const WOKEN_SCAN_MAX: usize = 16;

/// Each descriptor once, in the order first woken.
fn dedup_woken(mut w: Vec<Fd>) -> Vec<Fd> {
    if w.len() <= WOKEN_SCAN_MAX {
        // The usual few: a scan of what is kept beats building a set.
        let mut kept = 0;
        for i in 0..w.len() {
            if !w[..kept].contains(&w[i]) {
                w[kept] = w[i];
                kept += 1;
            }
        }
        w.truncate(kept);
    } else {
        let mut seen = std::collections::BTreeSet::new();
        w.retain(|fd| seen.insert(*fd));
    }
    w
}

/// A host's kernel.
pub struct Host {
    name: String,
    addr: IpAddr,
    profile: Rc<KernelProfile>,
    table: SockTable,
    /// (local, remote) → connection: the established hash (`inet_ehash`).
    ehash: ehash::EHash,
    /// Port → listener: the listening hash (`inet_lhash2`).
    lhash: BTreeMap<u16, ListenerId>,
    /// connect()'s per-destination port perturbation (`table_perturb`).
    ports: local_port::Ports,
    epolls: Vec<Epoll>,
    coverage: Coverage,
    /// Transitions the graph does not allow: model bugs, reported by the run.
    illegal: Vec<String>,
    /// `nstat`-named counters of segments this host answered on its own.
    counters: BTreeMap<&'static str, u64>,
    /// Descriptors woken since the applications last looked (see [`Host::take_woken`]).
    woken: Vec<Fd>,
    /// The ISN key (`net_secret`), drawn from the run's seeded stream at first use.
    isn_key: Option<u64>,
    /// The egress queue refuses every packet (`tc qdisc add … pfifo limit 0`): see
    /// [`Host::set_qdisc_refuses`].
    qdisc_refuses: bool,
    /// The root qdisc new sockets send through ([`Host::set_qdisc`]).
    qdisc: qdisc::Qdisc,
    /// What `fq` holds (nothing unless a socket sent through it).
    fq: qdisc::Fq,
    /// The Fast Open cookies learnt per destination (the TCP metrics' Fast Open part).
    tfo_cache: crate::tcp::fastopen::FastOpenCache,
    /// The key this host's listeners make Fast Open cookies with (`net->ipv4.tcp_fastopen_ctx`):
    /// `net.ipv4.tcp_fastopen_key`, else drawn from the run's seeded stream at first use.
    tfo_key: Option<crate::tcp::fastopen::FastOpenKey>,
    /// The options of the last connection made or accepted, shared by the next one whose
    /// options are equal (a server's children, one client application's connections): a
    /// million connections hold a few copies, not a million ([`Host::share_opts`]).
    last_opts: Rc<crate::tcp::conn::SockOpts>,
}

impl Host {
    pub fn new(name: &str, addr: IpAddr, profile: Rc<KernelProfile>) -> Host {
        let ip_local_port_range = profile.ip_local_port_range;
        Host {
            name: name.to_string(),
            addr,
            profile,
            table: SockTable::default(),
            ehash: ehash::EHash::new(ip_local_port_range),
            lhash: BTreeMap::new(),
            ports: local_port::Ports::default(),
            epolls: Vec::new(),
            coverage: Coverage::default(),
            illegal: Vec::new(),
            counters: BTreeMap::new(),
            woken: Vec::new(),
            isn_key: None,
            qdisc_refuses: false,
            qdisc: qdisc::Qdisc::Pfifo,
            fq: qdisc::Fq::default(),
            tfo_cache: Default::default(),
            tfo_key: None,
            last_opts: Rc::default(),
        }
    }

    /// `net.ipv4.tcp_fastopen_key` written (sysctl_net_ipv4.c `proc_tcp_fastopen_key`).
    pub fn set_fastopen_key(&mut self, key: crate::tcp::fastopen::FastOpenKey) {
        self.tfo_key = Some(key);
    }

    /// The Fast Open key, made at first need (`tcp_fastopen_init_key_once`: random bytes).
    pub(crate) fn fastopen_key(&mut self, ctx: &mut Ctx) -> crate::tcp::fastopen::FastOpenKey {
        use rand_core::RngCore;
        *self.tfo_key.get_or_insert_with(|| {
            let mut b = [0u8; 16];
            ctx.rng().fill_bytes(&mut b);
            crate::tcp::fastopen::FastOpenKey::from_bytes(b)
        })
    }

    /// `ip tcp_metrics flush`: every destination's Fast Open cookie and MSS forgotten.
    pub fn flush_tcp_metrics(&mut self) {
        self.tfo_cache.flush();
    }

    /// Makes the egress queueing discipline drop every packet, or stop doing so. A qdisc
    /// that drops (`qdisc_drop` → `NET_XMIT_DROP`) does so before the wire, so nothing this
    /// host sends leaves it; and the sender learns it at once: `__tcp_transmit_skb` returns
    /// the code, so new data stays unsent and probes retry on `TCP_RESOURCE_PROBE_INTERVAL`
    /// (each connection is told, [`Conn::set_dev_refuses`]).
    pub fn set_qdisc_refuses(&mut self, on: bool) {
        self.qdisc_refuses = on;
        for slot in self.table.conns_mut() {
            slot.conn.set_dev_refuses(on);
        }
    }

    /// Sets the root qdisc (`tc qdisc replace dev … root fq`). Sockets made from then on
    /// send through it, as `fq_classify` marks a socket `SK_PACING_FQ` at its first packet;
    /// what `fq` holds when it is replaced still leaves at its time.
    pub fn set_qdisc(&mut self, qdisc: qdisc::Qdisc) {
        self.qdisc = qdisc;
    }

    /// The root qdisc.
    pub fn qdisc(&self) -> qdisc::Qdisc {
        self.qdisc
    }

    /// Sends at once what `fq` holds of connection `id` (its flow is gone).
    fn fq_flush(&mut self, id: ConnId, ctx: &mut Ctx) {
        for skb in self.fq.forget(id.0) {
            for seg in skb.segs {
                self.transmit(seg, ctx);
            }
        }
    }

    /// The ISN of a connection from `local` to `remote` starting now (`secure_tcp_seq`).
    pub(crate) fn isn(&mut self, local: SockAddr, remote: SockAddr, ctx: &mut Ctx) -> u32 {
        let key = *self.isn_key.get_or_insert_with(|| rand_core::RngCore::next_u64(ctx.rng()));
        crate::tcp::isn::secure_tcp_seq(key, local, remote, ctx.now())
    }

    /// Descriptors whose socket was woken (data, state change, write space, error, a new
    /// connection to accept) since the last call, in order, each once.
    /// Called for every host after every event: the usual answer, nothing, is inlined.
    #[inline]
    pub fn take_woken(&mut self) -> Vec<Fd> {
        if self.woken.is_empty() {
            return Vec::new();
        }
        dedup_woken(std::mem::take(&mut self.woken))
    }

    /// epoll_ctl(2) on this host's epoll `idx`: the socket's current readiness decides whether
    /// an added or modified item is ready at once (fs/eventpoll.c `ep_insert`/`ep_modify`).
    pub fn sys_epoll_ctl(&mut self, idx: usize, op: CtlOp, fd: Fd, events: u32) -> Result<(), Errno> {
        let current = self.poll_mask(fd);
        self.epolls.get_mut(idx).ok_or(Errno::EBADF)?.ctl(op, fd, events, current)
    }

    /// epoll_wait(2) on this host's epoll `idx`, with no timeout: re-polls each ready
    /// descriptor (fs/eventpoll.c `ep_send_events`). A blocking wait is the caller's: it runs
    /// the world until [`Host::epoll_has_ready`].
    pub fn sys_epoll_wait(&mut self, idx: usize, max: usize) -> Vec<(Fd, PollMask)> {
        let mut ep = std::mem::replace(&mut self.epolls[idx], Epoll::new());
        let ready = ep.wait(max, |fd| self.poll_mask(fd));
        self.epolls[idx] = ep;
        ready
    }

    /// Whether epoll `idx` has an item on its ready list (what a sleeping epoll_wait waits for).
    pub fn epoll_has_ready(&self, idx: usize) -> bool {
        self.epolls.get(idx).is_some_and(Epoll::has_ready)
    }

    /// The events (with flag bits) `fd` is registered for on epoll `idx`.
    pub fn epoll_events_of(&self, idx: usize, fd: Fd) -> Option<u32> {
        self.epolls.get(idx)?.events_of(fd)
    }

    /// Wakes every epoll watching `fd` with `key` (the empty key reaches every watcher),
    /// and tells the applications.
    fn wake(&mut self, fd: Fd, key: PollMask) {
        self.woken.push(fd);
        for ep in &mut self.epolls {
            ep.on_wakeup(fd, key);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the kernel configuration (sysctls changed while running): sockets made from now
    /// on read it, as Linux's read the sysctls when they are created.
    pub fn set_profile(&mut self, profile: Rc<KernelProfile>) {
        self.profile = profile;
    }

    pub fn profile(&self) -> &KernelProfile {
        &self.profile
    }

    /// Edges of the state graph this host's connections took.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// Transitions the state graph forbids (each one is a bug in the model).
    pub fn illegal_transitions(&self) -> &[String] {
        &self.illegal
    }

    /// The host's kernel counters, listeners' included, by `nstat` name.
    pub fn counters(&self) -> BTreeMap<&'static str, u64> {
        let mut all = self.counters.clone();
        for l in self.table.listeners() {
            for (k, v) in l.listener.counters().to_map() {
                *all.entry(k).or_default() += v;
            }
        }
        all
    }

    /// `opts` as a shared copy: the last connection's when equal (see `last_opts`).
    pub(crate) fn share_opts(&mut self, opts: crate::tcp::conn::SockOpts) -> Rc<crate::tcp::conn::SockOpts> {
        if *self.last_opts != opts {
            self.last_opts = Rc::new(opts);
        }
        self.last_opts.clone()
    }

    fn bump(&mut self, counter: &'static str) {
        *self.counters.entry(counter).or_default() += 1;
    }

    /// Sends a segment of this host's stack. Every RST counts in TCP_MIB_OUTRSTS: those of
    /// `tcp_v4_send_reset` (no socket, a listener's or a request's reset) and of
    /// `tcp_send_active_reset` (abort, close with unread data) alike.
    fn transmit(&mut self, seg: Segment, ctx: &mut Ctx) {
        if seg.flags.contains(crate::tcp::segment::Flags::RST) {
            self.bump("TcpOutRsts");
        }
        if !self.qdisc_refuses {
            ctx.send(seg);
        }
    }

    /// Hands connection `id`'s output to `fq`: its stamped skbs are held until their
    /// departure time unless due now with nothing before them; the rest leaves in order.
    fn fq_enqueue(&mut self, id: ConnId, out: &mut Vec<Segment>, ctx: &mut Ctx) {
        let Some(slot) = self.table.conn_mut(id) else { return };
        let departures = slot.conn.take_departures();
        if departures.is_empty() {
            return;
        }
        let now = ctx.now();
        for (departure, segs) in qdisc::group(std::mem::take(out), departures) {
            let Some(d) = departure else {
                segs.into_iter().for_each(|seg| self.transmit(seg, ctx));
                continue;
            };
            let skb = qdisc::HeldSkb { tstamp: d.tstamp, segs, truesize: d.truesize };
            match self.fq.enqueue(id.0, now, skb) {
                Ok(skb) => skb.segs.into_iter().for_each(|seg| self.transmit(seg, ctx)),
                Err(Some(at)) => ctx.schedule(at, conn_key(id, KEY_FQ_FLOW)),
                Err(None) => {}
            }
        }
    }

    /// The `fq` watchdog of connection `id`'s flow: its due skbs leave, and each frees its
    /// memory in the socket (`tcp_wfree`), which may send more (TCP Small Queues).
    fn fq_watchdog(&mut self, id: ConnId, now: SimTime, ctx: &mut Ctx) {
        let (due, next) = self.fq.dequeue(id.0, now);
        if let Some(at) = next {
            ctx.schedule(at, conn_key(id, KEY_FQ_FLOW));
        }
        let mut out = Vec::new();
        for skb in due {
            skb.segs.into_iter().for_each(|seg| self.transmit(seg, ctx));
            if let Some(slot) = self.table.conn_mut(id) {
                slot.conn.tsq_release(now, skb.truesize, &mut out);
            }
        }
        if self.table.conn(id).is_some() {
            self.after_conn(id, &mut out, ctx);
        }
    }

    /// Sends `out`, re-arms timers, records transitions and raises wake-ups after the model
    /// of connection `id` ran. Every path into a `Conn` ends here, so nothing is missed.
    pub(crate) fn after_conn(&mut self, id: ConnId, out: &mut Vec<Segment>, ctx: &mut Ctx) {
        if self.qdisc == qdisc::Qdisc::Fq {
            self.fq_enqueue(id, out, ctx);
        }
        for seg in out.drain(..) {
            self.transmit(seg, ctx);
        }
        let Some(slot) = self.table.conn_mut(id) else { return };
        let mib = slot.conn.take_mib();
        if mib != crate::tcp::mib::MibCounts::ZERO {
            for (name, n) in mib.iter() {
                *self.counters.entry(name).or_default() += n;
            }
        }
        for (i, kind) in TIMER_KINDS.iter().enumerate() {
            let due = slot.conn.deadline(*kind);
            let requeue = match due {
                Some(at) => slot.timers[i].arm(at),
                None => {
                    slot.timers[i].cancel();
                    None
                }
            };
            if let Some(at) = requeue {
                ctx.schedule(at, conn_key(id, i));
            }
        }
        let (local, remote) = (slot.conn.local(), slot.conn.remote());
        if let Some(l) = slot.conn.take_fastopen_learnt() {
            // tcp_rcv_fastopen_synack → tcp_fastopen_cache_set.
            self.tfo_cache.set(remote.ip(), l.mss, l.cookie, l.syn_lost, l.try_exp);
        }
        let Some(slot) = self.table.conn_mut(id) else { return };
        let transitions = slot.conn.take_transitions();
        slot.conn.shrink();
        for transition in transitions {
            self.record_transition(ctx, local, remote, transition);
        }
        self.raise_wakeup(id);
        let finished = self.table.conn(id).is_some_and(|s| s.fd.is_none() && s.conn.is_finished());
        if finished && !self.table.is_pending_child(id) {
            self.forget_conn(id, ctx);
        }
    }

    /// Holds one transition against the state graph (an illegal one is kept as a model bug)
    /// and traces it.
    pub(crate) fn record_transition(
        &mut self,
        ctx: &mut Ctx,
        local: SockAddr,
        remote: SockAddr,
        (from, to, cause): (TcpState, TcpState, Cause),
    ) {
        if let Some(counter) = crate::tcp::mib::transition_counter(from, to, cause) {
            self.bump(counter);
        }
        let legal = self.coverage.record(from, to, cause).is_ok();
        if !legal {
            self.illegal.push(format!("{local} > {remote}: {from} -> {to} ({})", cause.name()));
        }
        ctx.trace("state", &TransitionRecord { local, remote, from: from.name(), to: to.name(), cause: cause.name(), legal });
    }

    /// Turns the connection's wake-ups into epoll events on every epoll watching its
    /// descriptor (fs/eventpoll.c `ep_poll_callback`, with the wake-up's key).
    fn raise_wakeup(&mut self, id: ConnId) {
        let Some(slot) = self.table.conn_mut(id) else { return };
        let Some(key) = slot.conn.take_wakeup() else { return };
        if let Some(fd) = slot.fd {
            self.wake(fd, key);
        }
    }

    /// The listener's accept queue grew: wake its pollers.
    pub(crate) fn after_listener(&mut self, id: ListenerId, out: &mut Vec<Segment>, ctx: &mut Ctx) {
        for seg in out.drain(..) {
            self.transmit(seg, ctx);
        }
        let Some(slot) = self.table.listener_mut(id) else { return };
        if let Some(at) = slot.listener.deadline() {
            if let Some(at) = slot.timer.arm(at) {
                ctx.schedule(at, KEY_LISTENER_BIT | id.0 as u64);
            }
        } else {
            slot.timer.cancel();
        }
        let len = slot.listener.accept_queue_len() as u32;
        let grew = len > slot.seen_accept_len;
        slot.seen_accept_len = len;
        if grew {
            // inet_csk_complete_hashdance → sk_data_ready on the listener.
            let fd = slot.fd;
            self.wake(fd, Wakeup::DataReady.key());
        }
    }

    /// Removes a connection the program no longer holds and the kernel is done with.
    fn forget_conn(&mut self, id: ConnId, ctx: &mut Ctx) {
        self.fq_flush(id, ctx);
        if let Some(slot) = self.table.remove_conn(id) {
            self.ehash.remove(&(slot.conn.local(), slot.conn.remote()));
        }
    }

    /// The mask `tcp_poll` computes for descriptor `fd`; POLLNVAL for a closed one.
    pub fn poll_mask(&self, fd: Fd) -> PollMask {
        match self.table.get(fd) {
            Some(SockRef::Conn(id)) => self.table.conn(id).map_or(PollMask::NVAL, |s| tcp_poll(&s.conn.view())),
            Some(SockRef::Listener(id)) => tcp_poll(&self.listener_view(id)),
            Some(SockRef::Fresh(i)) => tcp_poll(&self.fresh_sock_view(i)),
            None => PollMask::NVAL,
        }
    }

    /// The (local, remote) addresses of the connection behind `fd`, if it has one.
    pub fn conn_addrs(&self, fd: Fd) -> Option<(SockAddr, SockAddr)> {
        match self.table.get(fd)? {
            SockRef::Conn(id) => self.table.conn(id).map(|s| (s.conn.local(), s.conn.remote())),
            _ => None,
        }
    }

    /// The descriptor a program holds on the connection from `local` to `remote`, found in
    /// the established hash (no scan).
    pub fn fd_of_conn(&self, local: SockAddr, remote: SockAddr) -> Option<Fd> {
        self.table.conn(self.ehash.get(&(local, remote))?)?.fd
    }

    /// The connection behind `fd`, if it has one, as itself: not its 4-tuple, which a later
    /// connection may reuse once this one is gone.
    pub fn conn_handle(&self, fd: Fd) -> Option<ConnHandle> {
        match self.table.get(fd)? {
            SockRef::Conn(id) => self.table.handle(id),
            _ => None,
        }
    }

    /// The derived-payload streams of the connection behind `fd`: (what it sends, what its
    /// peer sends), for checking received bytes against what was sent.
    pub fn conn_streams(&self, fd: Fd) -> Option<(u64, u64)> {
        match self.table.get(fd)? {
            SockRef::Conn(id) => self.table.conn(id).map(|s| (s.conn.tx_stream(), s.conn.rx_stream())),
            _ => None,
        }
    }

    /// The state of connection `c`, if it still lives (its 4-tuple may belong to a later
    /// connection by now: that one's state is not `c`'s).
    pub fn conn_state(&self, c: ConnHandle) -> Option<TcpState> {
        self.table.conn_by_handle(c).map(|s| s.conn.state())
    }

    /// The system whose socket API answers this host's programs: the one place that decides
    /// whether poll is Linux's `tcp_poll` or FreeBSD's `sopoll_generic`, and whether epoll or
    /// kqueue exists.
    pub fn os(&self) -> Os {
        self.profile.os
    }

    /// poll(2)'s revents for `fd` asked for `requested`, as this host's system computes them.
    /// Linux: `tcp_poll` masked with `events | POLLERR | POLLHUP` (fs/select.c `do_pollfd`);
    /// FreeBSD: `sopoll_generic` then `pollscan` (sys/kern/sys_generic.c). POLLNVAL for an fd
    /// that is not open, on both.
    pub fn poll_revents(&self, fd: Fd, requested: PollMask) -> PollMask {
        match self.os() {
            Os::Linux => self.view(fd).map_or(POLL_REVENTS_CLOSED_FD, |v| poll_revents(&v, requested)),
            Os::FreeBsd => self.view(fd).map_or(POLL_REVENTS_CLOSED_FD, |v| freebsd_poll(&v, requested)),
        }
    }

    /// A listener as `tcp_poll` sees it: LISTEN and its accept queue.
    pub(crate) fn listener_view(&self, id: ListenerId) -> SockView {
        let len = self.table.listener(id).map_or(0, |l| l.listener.accept_queue_len() as u32);
        SockView { state: Some(TcpState::Listen), accept_queue_len: len, rcvlowat: 1, ..SockView::default() }
    }

    /// A socket that has neither connected nor listened.
    pub(crate) fn fresh_sock_view(&self, i: u32) -> SockView {
        let shutdown = self.table.fresh(i).map_or(0, |f| f.shutdown);
        SockView { shutdown, ..sockets::fresh_view(&self.profile) }
    }

    /// A segment for a port nobody listens on and no connection owns: RST
    /// (tcp_ipv4.c `tcp_v4_send_reset`; RFC 9293 §3.10.7.1).
    fn no_socket(&mut self, seg: &Segment, ctx: &mut Ctx) {
        if let Some(rst) = reset_for(seg) {
            self.transmit(rst, ctx);
        }
    }

    /// Takes out of listener `id`'s Fast Open queue the children whose handshake completed or
    /// that closed (`reqsk_fastopen_remove`).
    fn prune_fastopen_queue(&mut self, id: ListenerId) {
        let Some(slot) = self.table.listener(id) else { return };
        let done: Vec<ConnId> = slot
            .listener
            .fastopen_children()
            .iter()
            .filter(|c| !self.table.conn(**c).is_some_and(|s| s.conn.passive_fastopen()))
            .copied()
            .collect();
        if let Some(slot) = self.table.listener_mut(id).filter(|_| !done.is_empty()) {
            slot.listener.retain_fastopen(|c| !done.contains(c));
        }
    }

    /// A segment for listener `id`; `tw_isn` is the ISN a TIME_WAIT socket chose for the SYN
    /// that reincarnates it (`tcp_tw_isn`), else the ISN is `secure_tcp_seq`'s.
    fn deliver_to_listener(&mut self, id: ListenerId, now: SimTime, seg: &Segment, tw_isn: Option<u32>, ctx: &mut Ctx) {
        let mut out = Vec::new();
        let iss = match tw_isn {
            Some(isn) => isn,
            None => self.isn(seg.dst, seg.src, ctx),
        };
        let route = SynRoute { iss, advmss: route_advmss(ctx, seg.src.ip()) };
        self.prune_fastopen_queue(id);
        let Some(slot) = self.table.listener_mut(id) else { return };
        let action = slot.listener.on_segment(now, seg, route, &mut out);
        self.after_listener(id, &mut out, ctx);
        if let ListenerAction::Child(params) = action {
            self.spawn_child(id, now, params, ctx);
        }
    }
}

/// The MSS a connection to `remote` advertises: its route's (`dst_metric_advmss`), from the
/// MTU of the link that reaches it and the IP header (`ipv4_default_advmss`,
/// `ip6_default_advmss`); a 1500-byte Ethernet's where none does (the segments are then
/// dropped as `no_route`).
pub(crate) fn route_advmss(ctx: &Ctx, remote: IpAddr) -> u16 {
    let mtu = ctx.route_mtu(remote).unwrap_or(ETH_DATA_LEN);
    if remote.is_ipv6() {
        ip6_default_advmss(mtu)
    } else {
        ipv4_default_advmss(mtu)
    }
}

fn conn_key(id: ConnId, timer: usize) -> u64 {
    (id.0 as u64) << 2 | timer as u64
}

impl Node for Host {
    /// `tcp_v4_rcv`: the established hash, then the listener, else a RST. A connection in
    /// CLOSE is not in the hash (`tcp_done` → `tcp_set_state(TCP_CLOSE)` unhashes it even
    /// while its descriptor is open), so the peer's next segment draws a RST
    /// (`tcp_v4_send_reset`). A SYN that reincarnates a TIME_WAIT socket goes to the
    /// listener with the ISN the timewait socket chose (`TCP_TW_SYN`).
    fn on_segment(&mut self, now: SimTime, seg: Segment, ctx: &mut Ctx) {
        let listener = self.lhash.get(&seg.dst.port()).copied();
        let hashed = self.ehash.get(&(seg.dst, seg.src)).filter(|&id| {
            self.table.conn(id).is_some_and(|s| s.conn.state() != crate::tcp::state::TcpState::Close)
        });
        if let Some(id) = hashed {
            let mut out = Vec::new();
            let Some(slot) = self.table.conn_mut(id) else { return };
            if let (Some(lid), Some(isn)) = (listener, slot.conn.timewait_syn_isn(&seg)) {
                slot.conn.timewait_kill();
                self.after_conn(id, &mut out, ctx);
                self.deliver_to_listener(lid, now, &seg, Some(isn), ctx);
                return;
            }
            slot.conn.on_segment(now, &seg, &mut out);
            self.after_conn(id, &mut out, ctx);
        } else if let Some(id) = listener {
            self.deliver_to_listener(id, now, &seg, None, ctx);
        } else {
            self.no_socket(&seg, ctx);
        }
    }

    fn on_timer(&mut self, now: SimTime, key: u64, ctx: &mut Ctx) {
        use crate::engine::Pop;
        if key & KEY_LISTENER_BIT != 0 {
            let id = ListenerId((key & !KEY_LISTENER_BIT) as u32);
            let mut out = Vec::new();
            let Some(slot) = self.table.listener_mut(id) else { return };
            match slot.timer.on_pop(now) {
                Pop::Fire => {
                    let local = slot.listener.local();
                    for remote in slot.listener.on_timer(now, &mut out) {
                        ctx.trace("timer", &TimerRecord { timer: "SYN-ACK", local, remote: Some(remote), backoff: None });
                    }
                }
                Pop::Requeue(at) => return ctx.schedule(at, key),
                Pop::Stale => return,
            }
            self.after_listener(id, &mut out, ctx);
            return;
        }
        let id = ConnId((key >> 2) as u32);
        let i = (key & 3) as usize;
        if i == KEY_FQ_FLOW {
            return self.fq_watchdog(id, now, ctx);
        }
        let kind = TIMER_KINDS[i];
        let mut out = Vec::new();
        let Some(slot) = self.table.conn_mut(id) else { return };
        match slot.timers[i].on_pop(now) {
            Pop::Fire => {
                let due = slot.conn.deadline(kind).is_some_and(|at| at <= now);
                let timer = slot.conn.timer_name(kind);
                slot.conn.on_timer(now, kind, &mut out);
                if due && ctx.trace_enabled() {
                    let backoff = (kind == TimerKind::Retransmit).then(|| slot.conn.info().backoff);
                    let (local, remote) = (slot.conn.local(), Some(slot.conn.remote()));
                    ctx.trace("timer", &TimerRecord { timer, local, remote, backoff });
                }
            }
            Pop::Requeue(at) => return ctx.schedule(at, key),
            Pop::Stale => return,
        }
        self.after_conn(id, &mut out, ctx);
    }

    /// Everything the kernel held is gone; what the model learned about itself (graph
    /// coverage, illegal transitions) is kept for the report.
    fn on_crash(&mut self, _now: SimTime) {
        let mut fresh = Host::new(&self.name, self.addr, self.profile.clone());
        fresh.qdisc = self.qdisc;
        fresh.coverage = std::mem::take(&mut self.coverage);
        fresh.illegal = std::mem::take(&mut self.illegal);
        *self = fresh;
    }

    fn on_reboot(&mut self, _now: SimTime, _ctx: &mut Ctx) {}
}
