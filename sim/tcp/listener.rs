//! A listening socket and its two queues, sans I/O (linux-tcp-facts §5).
//!
//! - The **SYN queue** holds request socks (Linux's `TCP_NEW_SYN_RECV` minisocks), one per
//!   client whose SYN got a SYN-ACK, each with its own retransmission timer
//!   (inet_connection_sock.c `reqsk_timer_handler`).
//! - The **accept queue** is a FIFO of completed children waiting for accept(); it holds
//!   backlog+1 (include/net/sock.h `sk_acceptq_is_full` is `>`).
//!
//! The listener never builds a connection itself: when a handshake completes it returns a
//! [`ChildParams`] ([`ListenerAction::Child`]); the caller builds its connection from it,
//! feeds it [`ChildParams::segment`](crate::tcp::conn::ChildParams::segment) (whose data must not be lost), and hands the
//! connection's handle back with [`Listener::enqueue`]. The handle type `C` is the
//! caller's, so the listener does not depend on the connection model.
//!
//! Not modelled: TCP Fast Open, TCP_DEFER_ACCEPT, PAWS on request socks, Accurate ECN,
//! SO_REUSEPORT migration, `tcp_peer_is_proven` (no peer is proven).

use super::conn::sockopt::tcp_mss_clamp;
use super::conn::{select_initial_window, ChildParams, ChildTimestamps};
use super::fastopen::{FastOpenKey, FoCookie, TFO_SERVER_COOKIE_NOT_REQD, TFO_SERVER_ENABLE};
use super::profile::KernelProfile;
use super::reset::reset_for;
use super::segment::{seq_gt, seq_lt, Ecn, Flags, Payload, Segment, TcpOptions};
use super::syncookie::{self, SYNCOOKIE_VALID};
use crate::time::{Dur, SimTime};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use crate::addr::SockAddr;
use std::rc::Rc;

/// include/net/tcp.h `TCP_MSS_DEFAULT`: the peer's MSS when its SYN carries none.
pub const TCP_MSS_DEFAULT: u16 = 536;
/// include/net/tcp.h `TCP_MAX_WSCALE`.
const TCP_MAX_WSCALE: u8 = 14;
/// `TCPOLEN_TSTAMP_ALIGNED`: the bytes a timestamp option takes from each segment.
const TCPOLEN_TSTAMP_ALIGNED: u32 = 12;
/// `sysctl_tcp_invalid_ratelimit` default (500 ms): out-of-window ACKs and SYN-ACKs for
/// retransmitted SYNs are sent at most this often per request (`tcp_oow_rate_limited`).
const TCP_INVALID_RATELIMIT: Dur = Dur::from_millis(500);

/// What a segment did to the listener. Any segments to send are in `out`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerAction {
    /// A new request sock and its SYN-ACK (`cookie`: a stateless cookie SYN-ACK instead).
    SynAckSent { cookie: bool },
    /// A retransmitted SYN for a pending request got the SYN-ACK again (`tcp_check_req`).
    SynAckResent,
    /// An out-of-window segment for a request was answered with an ACK (`tcp_check_req`).
    Acked,
    /// The segment was answered with an RST (`tcp_v4_send_reset`).
    Reset,
    /// The segment was dropped without reply.
    Dropped(DropReason),
    /// A handshake completed: build the connection from these parameters, feed it
    /// `segment`, and [`Listener::enqueue`] its handle before calling the listener again.
    Child(Box<ChildParams>),
}

/// Why a segment was dropped silently.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The accept queue is full: a SYN (`tcp_conn_request`) or the completing ACK
    /// (`tcp_check_req` listen_overflow, `tcp_abort_on_overflow` = 0).
    AcceptQueueFull,
    /// The SYN queue is full and syncookies are off (`TCPReqQFullDrop`).
    SynQueueFull,
    /// `tcp_max_syn_backlog` is nearly used up and syncookies are off (`tcp_conn_request`).
    SynBacklogFull,
    /// A peer's RST removed its request sock (`tcp_check_req` embryonic_reset).
    RequestReset,
    /// Nothing to do: an RST or a non-SYN segment without ACK for the listener, SYN+FIN,
    /// a segment without ACK for a request, or a reply suppressed by rate limiting.
    Ignored,
}

/// The listener's nstat counters (TcpExt names), §5.5.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListenerCounters {
    pub listen_overflows: u64,
    pub listen_drops: u64,
    #[serde(rename = "TCPReqQFullDoCookies")]
    pub tcp_req_q_full_do_cookies: u64,
    #[serde(rename = "TCPReqQFullDrop")]
    pub tcp_req_q_full_drop: u64,
    pub syncookies_sent: u64,
    pub syncookies_recv: u64,
    pub syncookies_failed: u64,
    pub embryonic_rsts: u64,
    #[serde(rename = "TCPTimeouts")]
    pub tcp_timeouts: u64,
    /// SYN-ACKs sent again, by the request's timer or for a retransmitted SYN: tcp_output.c
    /// `tcp_rtx_synack` counts `TCP_MIB_RETRANSSEGS` for each (the request sock has no
    /// connection of its own to count it).
    #[serde(rename = "TcpRetransSegs")]
    pub retrans_segs: u64,
}

impl ListenerCounters {
    /// The counters by nstat name, for reports and for summing over listeners.
    pub fn to_map(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("ListenOverflows", self.listen_overflows),
            ("ListenDrops", self.listen_drops),
            ("TCPReqQFullDoCookies", self.tcp_req_q_full_do_cookies),
            ("TCPReqQFullDrop", self.tcp_req_q_full_drop),
            ("SyncookiesSent", self.syncookies_sent),
            ("SyncookiesRecv", self.syncookies_recv),
            ("SyncookiesFailed", self.syncookies_failed),
            ("EmbryonicRsts", self.embryonic_rsts),
            ("TCPTimeouts", self.tcp_timeouts),
            ("TcpRetransSegs", self.retrans_segs),
        ])
    }
}

/// What the host chose for a segment that may be a new SYN: the ISS (`secure_tcp_seq`, or
/// a TIME_WAIT socket's) and the MSS of the route back to the client
/// (`tcp_openreq_init` → `dst_metric_advmss`, [`crate::tcp::route::ipv4_default_advmss`]).
#[derive(Copy, Clone, Debug)]
pub struct SynRoute {
    pub iss: u32,
    pub advmss: u16,
}

/// What the listener negotiated with one client: the request sock's options.
#[derive(Copy, Clone, Debug)]
struct Negotiated {
    peer_mss: u16,
    /// The MSS we advertise (`tcp_rsk(req)->advmss`, the route's `dst_metric_advmss`).
    adv_mss: u16,
    /// The client's shift, `Some` iff both sides do window scaling.
    peer_wscale: Option<u8>,
    sack_ok: bool,
    /// `inet_rsk(req)->ecn_ok`: ECN (RFC 3168) agreed.
    ecn_ok: bool,
    /// `(ts_recent, ts_off)` iff both sides do timestamps.
    ts: Option<(u32, u32)>,
    rcv_wnd: u32,
    rcv_wscale: u8,
    window_clamp: u32,
}

/// A request sock: a client whose SYN got a SYN-ACK (`struct tcp_request_sock`).
#[derive(Clone, Debug)]
struct Request {
    iss: u32,
    irs: u32,
    opts: Negotiated,
    /// Timer firings so far (`req->num_timeout`); 0 means "young".
    num_timeout: u32,
    num_retrans: u32,
    /// The client's ACK arrived while the accept queue was full (`inet_rsk(req)->acked`).
    acked: bool,
    expires: SimTime,
    synack_sent_at: Option<SimTime>,
    /// `tcp_rsk(req)->last_oow_ack_time`.
    last_oow_ack: Option<SimTime>,
}

/// A listening socket. `C` is the caller's handle for an accepted child.
#[derive(Debug)]
pub struct Listener<C> {
    local: SockAddr,
    /// `sk_max_ack_backlog`.
    backlog: u32,
    profile: Rc<KernelProfile>,
    /// `sk_rcvbuf`, from which the offered window is computed.
    rcvbuf: u32,
    rcvbuf_locked: bool,
    user_mss: u16,
    /// Keys the syncookie and timestamp-offset hashes (Linux: boot-time random secrets).
    secret: u64,
    /// The SYN queue, by client address (the local side is always `local`).
    requests: BTreeMap<SockAddr, Request>,
    /// Request timers, earliest first; ties broken by client address (deterministic).
    timers: BTreeSet<(SimTime, SockAddr)>,
    /// Requests that never timed out (`queue->young`).
    young: u32,
    accept_queue: VecDeque<C>,
    /// Children returned by [`ListenerAction::Child`] whose handle is not yet enqueued;
    /// they already count toward `sk_ack_backlog`.
    pending_children: u32,
    /// When a cookie was last sent (`tcp_synq_overflow`), for `tcp_synq_no_recent_overflow`.
    last_synq_overflow: Option<SimTime>,
    counters: ListenerCounters,
    closed: bool,
    /// The Fast Open queue (`icsk_accept_queue.fastopenq`): `max_qlen` (0: the listener
    /// takes no Fast Open), the key its cookies are made with (the namespace's,
    /// `tcp_fastopen_get_ctx`), and the children made at their SYN whose handshake the
    /// caller has not reported complete (`qlen`; [`Listener::retain_fastopen`]).
    fastopen_max_qlen: u32,
    fastopen_key: Option<FastOpenKey>,
    fastopenq: Vec<C>,
}

/// What `tcp_try_fastopen` makes of a SYN.
enum TryFastOpen {
    /// A child at once (`tcp_fastopen_create_child`), the SYN's data accepted.
    Child,
    /// The ordinary handshake; the SYN-ACK carries this cookie, if any (the client asked
    /// for one or sent an invalid one).
    No(Option<FoCookie>),
}

fn ms_clock(now: SimTime) -> u32 {
    (now.as_nanos() / 1_000_000) as u32
}

/// tcp_output.c `tcp_select_initial_window` for a child of this listener (via
/// `tcp_openreq_init_rwin`): the offered window, our window scale and the window clamp,
/// which is the full space when SO_RCVBUF locked the buffer and the largest scalable
/// window otherwise. With Linux 6.18's defaults (rcvbuf 131072, mss 1460-12): 65160, 10.
pub fn initial_window(profile: &KernelProfile, rcvbuf: u32, locked: bool, mss: u32, wscale_ok: bool) -> (u32, u8, u32) {
    let (window, wscale) = select_initial_window(profile, rcvbuf, locked, mss, wscale_ok);
    let max_clamp: u32 = 65535 << TCP_MAX_WSCALE;
    let clamp = if locked { window } else { (65535u32 << wscale).min(max_clamp) };
    (window, wscale, clamp)
}

impl<C> Listener<C> {
    /// listen(): `backlog` is capped at `somaxconn`; a negative backlog, cast to unsigned
    /// as socket.c `__sys_listen` does, is above any cap and so becomes `somaxconn`.
    pub fn new(local: SockAddr, backlog: i32, profile: Rc<KernelProfile>) -> Listener<C> {
        let secret = u64::from(local.ip_word()) << 16 | u64::from(local.port());
        let rcvbuf = profile.tcp_rmem[1];
        let mut l = Listener {
            local,
            backlog: 0,
            profile,
            rcvbuf,
            rcvbuf_locked: false,
            user_mss: 0,
            secret: secret ^ 0x5CC0_0C1E_D15E_A5E5,
            requests: BTreeMap::new(),
            timers: BTreeSet::new(),
            young: 0,
            accept_queue: VecDeque::new(),
            pending_children: 0,
            last_synq_overflow: None,
            counters: ListenerCounters::default(),
            closed: false,
            fastopen_max_qlen: 0,
            fastopen_key: None,
            fastopenq: Vec::new(),
        };
        l.set_backlog(backlog);
        l
    }

    /// Keys the syncookie and timestamp-offset hashes from the run's seeded randomness.
    pub fn with_secret(mut self, secret: u64) -> Listener<C> {
        self.secret = secret;
        self
    }

    /// listen() again on a listening socket only updates the backlog (af_inet.c `inet_listen`).
    pub fn set_backlog(&mut self, backlog: i32) {
        self.backlog = (backlog as u32).min(self.profile.somaxconn);
    }

    /// The effective `sk_rcvbuf` (after SO_RCVBUF's doubling), which sizes the window
    /// offered in SYN-ACKs; defaults to `tcp_rmem[1]`. `locked`: set by SO_RCVBUF
    /// (`SOCK_RCVBUF_LOCK`), which also fixes the window clamp and so the scale.
    /// TCP_MAXSEG of the listening socket (`tp->rx_opt.user_mss`; 0 unset): it lowers the
    /// MSS a SYN-ACK advertises (`tcp_make_synack` → `tcp_mss_clamp`) and the client's
    /// (`tcp_v4_conn_request` copies it into the options `tcp_parse_options` clamps).
    pub fn set_user_mss(&mut self, user_mss: u16) {
        self.user_mss = user_mss;
    }

    pub fn set_rcvbuf(&mut self, sk_rcvbuf: u32, locked: bool) {
        self.rcvbuf = sk_rcvbuf;
        self.rcvbuf_locked = locked;
    }

    pub fn local(&self) -> SockAddr {
        self.local
    }

    /// `fastopen_queue_tune`: a Fast Open queue of at most `qlen` children in their
    /// handshake (capped at `somaxconn`), cookies made with `key`.
    pub fn set_fastopen(&mut self, qlen: u32, key: FastOpenKey) {
        self.fastopen_max_qlen = qlen.min(self.profile.somaxconn);
        self.fastopen_key = Some(key);
    }

    /// `fastopenq.max_qlen` (what getsockopt(TCP_FASTOPEN) reads).
    pub fn fastopen_max_qlen(&self) -> u32 {
        self.fastopen_max_qlen
    }

    /// Keeps in the Fast Open queue the children `in_handshake` says still are:
    /// `reqsk_fastopen_remove` takes one out when its handshake completes or it closes. (A
    /// reset child's request lingers there for a while in Linux, `rskq_rst_head`; not here.)
    pub fn retain_fastopen(&mut self, in_handshake: impl FnMut(&C) -> bool) {
        self.fastopenq.retain(in_handshake);
    }

    /// The children in the Fast Open queue.
    pub fn fastopen_children(&self) -> &[C] {
        &self.fastopenq
    }
    /// `sk_max_ack_backlog` (what `ss` shows as Send-Q).
    pub fn backlog(&self) -> u32 {
        self.backlog
    }
    /// `sk_ack_backlog` (what `ss` shows as Recv-Q).
    pub fn accept_queue_len(&self) -> usize {
        self.accept_queue.len() + self.pending_children as usize
    }
    /// Request socks (`inet_csk_reqsk_queue_len`).
    pub fn syn_queue_len(&self) -> usize {
        self.requests.len()
    }
    pub fn counters(&self) -> &ListenerCounters {
        &self.counters
    }
    /// Whether a request sock exists for this client (for the host's demux and tests).
    pub fn has_request(&self, remote: SockAddr) -> bool {
        self.requests.contains_key(&remote)
    }

    /// include/net/sock.h `sk_acceptq_is_full`: strictly greater, so backlog+1 fit.
    fn accept_queue_full(&self) -> bool {
        self.accept_queue_len() as u64 > u64::from(self.backlog)
    }

    /// include/net/inet_connection_sock.h `inet_csk_reqsk_queue_is_full`.
    fn syn_queue_full(&self) -> bool {
        let qlen = self.requests.len() as u64;
        let backlog = u64::from(self.backlog);
        if self.profile.reqsk_queue_full_strict {
            qlen > backlog
        } else {
            qlen >= backlog
        }
    }

    /// The handle of a connection built from a [`ListenerAction::Child`], appended to the
    /// accept queue (FIFO).
    pub fn enqueue(&mut self, child: C) {
        self.pending_children = self.pending_children.saturating_sub(1);
        self.accept_queue.push_back(child);
    }

    /// A Fast Open child ([`ChildParams::fastopen`]) counts in the Fast Open queue
    /// (`tcp_fastopen_create_child`: `fastopenq.qlen++`).
    pub fn enqueue_fastopen(&mut self, child: C) {
        self.fastopenq.push(child);
    }

    /// accept(): the oldest completed child, if any.
    pub fn accept(&mut self) -> Option<C> {
        self.accept_queue.pop_front()
    }

    /// The earliest request timer.
    pub fn deadline(&self) -> Option<SimTime> {
        self.timers.first().map(|&(t, _)| t)
    }

    /// close() of the listener (tcp.c `__tcp_close` -> inet_connection_sock.c
    /// `inet_csk_listen_stop`): returns the children never accepted, which the caller must
    /// `tcp_disconnect` (an RST each for established ones). Request socks vanish without a
    /// word (`reqsk_timer_handler` drops them once the listener is not LISTEN, and
    /// `tcp_v4_rcv` drops one found by a segment); the client's next segment then finds no
    /// socket and gets the host's RST ([`reset_for`]).
    pub fn close(&mut self) -> Vec<C> {
        self.closed = true;
        self.requests.clear();
        self.timers.clear();
        self.young = 0;
        self.pending_children = 0;
        self.fastopenq.clear();
        self.accept_queue.drain(..).collect()
    }

    /// A segment addressed to this listener's port and not to an established connection.
    /// `route` is the caller's (seeded) choice of ISS and the route's MSS, should this be a
    /// new SYN.
    pub fn on_segment(&mut self, now: SimTime, seg: &Segment, route: SynRoute, out: &mut Vec<Segment>) -> ListenerAction {
        if self.closed {
            return self.reply_reset(seg, out);
        }
        if self.requests.contains_key(&seg.src) {
            self.check_req(now, seg, route, out)
        } else {
            self.listen_rcv(now, seg, route, out)
        }
    }

    /// Fires every request timer due at `now` (`reqsk_timer_handler`), in deadline order,
    /// and returns the clients whose request timer fired: each firing is one
    /// `tcp_syn_ack_timeout` (TCPTimeouts), which the caller traces one by one.
    pub fn on_timer(&mut self, now: SimTime, out: &mut Vec<Segment>) -> Vec<SockAddr> {
        let mut fired = Vec::new();
        while let Some(&(t, remote)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            self.request_timer(now, remote, out);
            fired.push(remote);
        }
        fired
    }

    fn reply_reset(&self, seg: &Segment, out: &mut Vec<Segment>) -> ListenerAction {
        match reset_for(seg) {
            Some(rst) => {
                out.push(rst);
                ListenerAction::Reset
            }
            None => ListenerAction::Dropped(DropReason::Ignored),
        }
    }

    /// tcp_input.c `tcp_rcv_state_process`, case TCP_LISTEN, preceded by tcp_ipv4.c
    /// `tcp_v4_do_rcv`'s syncookie check.
    fn listen_rcv(&mut self, now: SimTime, seg: &Segment, route: SynRoute, out: &mut Vec<Segment>) -> ListenerAction {
        let f = seg.flags;
        if !f.contains(Flags::SYN) {
            if let Some(action) = self.cookie_check(now, seg, tcp_mss_clamp(self.user_mss, route.advmss)) {
                return action;
            }
        }
        if f.contains(Flags::ACK) {
            // "if (th->ack) return 1;": the caller sends tcp_v4_send_reset.
            return self.reply_reset(seg, out);
        }
        if f.contains(Flags::RST) || !f.contains(Flags::SYN) || f.contains(Flags::FIN) {
            return ListenerAction::Dropped(DropReason::Ignored);
        }
        self.conn_request(now, seg, route, out)
    }

    /// syncookies.c `cookie_v4_check`: `None` when the segment is not to be treated as a
    /// cookie ACK (the listener then answers it), else what became of it.
    fn cookie_check(&mut self, now: SimTime, seg: &Segment, adv_mss: u16) -> Option<ListenerAction> {
        if self.profile.tcp_syncookies == 0 || !seg.flags.contains(Flags::ACK) || seg.flags.contains(Flags::RST) {
            return None;
        }
        // tcp_synq_no_recent_overflow: cookies are checked only for a while after one was sent.
        let recent = self.last_synq_overflow.is_some_and(|t| now.since(t) <= SYNCOOKIE_VALID);
        if !recent {
            return None;
        }
        let Some(mss) = syncookie::check_cookie(self.secret, self.local, seg.src, seg.seq, seg.ack, now) else {
            self.counters.syncookies_failed += 1;
            return None;
        };
        self.counters.syncookies_recv += 1;
        let ts_off = self.ts_off(seg.src);
        // cookie_timestamp_decode: without timestamps the cookie carries no WS, SACK or
        // ECN (cookie_ecn_ok: the bit, and tcp_ecn not 0).
        let (peer_wscale, sack_ok, ecn_ok, ts) = match seg.options.timestamps {
            Some((tsval, tsecr)) if self.profile.tcp_timestamps => {
                let o = syncookie::decode_cookie_tsecr(tsecr.wrapping_sub(ts_off));
                let ws = o.wscale.filter(|_| self.profile.tcp_window_scaling);
                let ecn_ok = o.ecn_ok && self.profile.tcp_ecn.accept();
                (ws, o.sack_ok && self.profile.tcp_sack, ecn_ok, Some((tsval, ts_off)))
            }
            _ => (None, false, false, None),
        };
        // cookie_v4_check sizes the window with the peer's (table) MSS, not ours.
        let (rcv_wnd, rcv_wscale, window_clamp) =
            initial_window(&self.profile, self.rcvbuf, self.rcvbuf_locked, u32::from(mss), peer_wscale.is_some());
        let opts = Negotiated { peer_mss: mss, adv_mss, peer_wscale, sack_ok, ecn_ok, ts, rcv_wnd, rcv_wscale, window_clamp };
        if self.accept_queue_full() {
            // tcp_v4_syn_recv_sock exit_overflow; cookie_v4_check returns NULL: dropped.
            self.count_overflow();
            return Some(ListenerAction::Dropped(DropReason::AcceptQueueFull));
        }
        let req = Request {
            iss: seg.ack.wrapping_sub(1),
            irs: seg.seq.wrapping_sub(1),
            opts,
            num_timeout: 0,
            num_retrans: 0,
            acked: false,
            expires: now,
            synack_sent_at: None,
            last_oow_ack: None,
        };
        Some(self.make_child(seg, &req, true, false))
    }

    /// tcp_input.c `tcp_conn_request`.
    fn conn_request(&mut self, now: SimTime, seg: &Segment, route: SynRoute, out: &mut Vec<Segment>) -> ListenerAction {
        let syncookies = self.profile.tcp_syncookies;
        let mut want_cookie = false;
        if syncookies == 2 || self.syn_queue_full() {
            // tcp_syn_flood_action
            if syncookies != 0 {
                self.counters.tcp_req_q_full_do_cookies += 1;
                want_cookie = true;
            } else {
                self.counters.tcp_req_q_full_drop += 1;
                self.counters.listen_drops += 1;
                return ListenerAction::Dropped(DropReason::SynQueueFull);
            }
        }
        // Checked after the cookie decision: cookies do not help a full accept queue.
        if self.accept_queue_full() {
            self.count_overflow();
            return ListenerAction::Dropped(DropReason::AcceptQueueFull);
        }
        let max_syn_backlog = self.profile.tcp_max_syn_backlog as usize;
        if !want_cookie && syncookies == 0 && max_syn_backlog.saturating_sub(self.requests.len()) < max_syn_backlog >> 2
        {
            self.counters.listen_drops += 1;
            return ListenerAction::Dropped(DropReason::SynBacklogFull);
        }
        let p = &self.profile;
        let ts_seen = seg.options.timestamps.filter(|_| p.tcp_timestamps);
        let mut peer_wscale = seg.options.wscale.filter(|_| p.tcp_window_scaling).map(|w| w.min(TCP_MAX_WSCALE));
        let mut sack_ok = seg.options.sack_permitted && p.tcp_sack;
        if want_cookie && ts_seen.is_none() {
            // tcp_clear_options: no timestamp to hide the options in.
            peer_wscale = None;
            sack_ok = false;
        }
        let mut peer_mss = seg.options.mss.filter(|&m| m > 0).map_or(TCP_MSS_DEFAULT, |m| tcp_mss_clamp(self.user_mss, m));
        let ts_off = self.ts_off(seg.src);
        let iss = if want_cookie {
            let (cookie, mss) = syncookie::cookie_isn(self.secret, self.local, seg.src, seg.seq, peer_mss, now);
            peer_mss = mss;
            self.counters.syncookies_sent += 1;
            // tcp_synq_overflow: the stamp moves at most once a second.
            if self.last_synq_overflow.is_none_or(|t| now.since(t) > Dur::from_secs(1)) {
                self.last_synq_overflow = Some(now);
            }
            cookie
        } else {
            route.iss
        };
        // tcp_openreq_init_rwin: the window is a multiple of the payload per segment.
        let adv_mss = tcp_mss_clamp(self.user_mss, route.advmss);
        let payload = u32::from(adv_mss) - if ts_seen.is_some() { TCPOLEN_TSTAMP_ALIGNED } else { 0 };
        let (rcv_wnd, rcv_wscale, window_clamp) = initial_window(p, self.rcvbuf, self.rcvbuf_locked, payload, peer_wscale.is_some());
        // tcp_ecn_create_request; a cookie without timestamps has nowhere to keep it
        // (tcp_conn_request: "if (!tmp_opt.tstamp_ok) inet_rsk(req)->ecn_ok = 0").
        let ecn_ok = ecn_create_request(seg, p) && !(want_cookie && ts_seen.is_none());
        let opts = Negotiated {
            peer_mss,
            adv_mss,
            peer_wscale,
            sack_ok,
            ecn_ok,
            ts: ts_seen.map(|(tsval, _)| (tsval, ts_off)),
            rcv_wnd,
            rcv_wscale,
            window_clamp,
        };
        let timeout = Dur::from_millis(p.tcp_timeout_init_ms);
        let req = Request {
            iss,
            irs: seg.seq,
            opts,
            num_timeout: 0,
            num_retrans: 0,
            acked: false,
            expires: self.timer_at(now, timeout),
            synack_sent_at: Some(now),
            last_oow_ack: None,
        };
        // tcp_conn_request: Fast Open only for a SYN the listener keeps state for.
        let foc = match if want_cookie { TryFastOpen::No(None) } else { self.try_fastopen(seg) } {
            TryFastOpen::Child => {
                // send_synack(fastopen_sk, …): the SYN-ACK acknowledges the SYN's data
                // (`tcp_rsk(req)->rcv_nxt` = end_seq); the request goes straight to the
                // accept queue, in no SYN table.
                let mut synack = self.synack(now, seg.src, &req, false, None);
                synack.ack = seg.seq.wrapping_add(1).wrapping_add(seg.payload.len());
                out.push(synack);
                return self.make_child(seg, &req, false, true);
            }
            TryFastOpen::No(foc) => foc,
        };
        out.push(self.synack(now, seg.src, &req, want_cookie, foc));
        if !want_cookie {
            // inet_csk_reqsk_queue_hash_add: hashed, timer armed at tcp_timeout_init.
            self.timers.insert((req.expires, seg.src));
            self.requests.insert(seg.src, req);
            self.young += 1;
        }
        ListenerAction::SynAckSent { cookie: want_cookie }
    }

    /// tcp_minisocks.c `tcp_check_req`: a segment for a pending request.
    fn check_req(&mut self, now: SimTime, seg: &Segment, route: SynRoute, out: &mut Vec<Segment>) -> ListenerAction {
        let remote = seg.src;
        let req = self.requests.get(&remote).expect("caller checked").clone();
        let f = seg.flags;

        // A pure retransmitted SYN: the SYN-ACK again, timer restarted.
        if seg.seq == req.irs && f == Flags::SYN {
            if self.oow_rate_limited(now, remote, seg) {
                return ListenerAction::Dropped(DropReason::Ignored);
            }
            out.push(self.synack(now, remote, &req, false, None));
            let expires = self.timer_at(now, self.reqsk_timeout(req.num_timeout));
            self.retime(remote, expires);
            let r = self.requests.get_mut(&remote).expect("present");
            r.num_retrans += 1;
            self.counters.retrans_segs += 1; // inet_rtx_syn_ack → tcp_rtx_synack
            return ListenerAction::SynAckResent;
        }
        // An ACK of something else is the listener's business (it answers with an RST).
        if f.contains(Flags::ACK) && seg.ack != req.iss.wrapping_add(1) {
            return self.listen_rcv(now, seg, route, out);
        }
        // "first check sequence number" (tcp_in_window against tcp_synack_window).
        let rcv_nxt = req.irs.wrapping_add(1);
        let wnd = req.opts.rcv_wnd.min(65535);
        if !in_window(seg.seq, seg.seq.wrapping_add(seg.seq_len()), rcv_nxt, rcv_nxt.wrapping_add(wnd)) {
            if !f.contains(Flags::RST) && !self.oow_rate_limited(now, remote, seg) {
                out.push(self.request_ack(now, remote, &req));
                return ListenerAction::Acked;
            }
            return ListenerAction::Dropped(DropReason::Ignored);
        }
        if let (Some((tsval, _)), Some(r)) = (seg.options.timestamps, self.requests.get_mut(&remote)) {
            if r.opts.ts.is_some() && !seq_gt(seg.seq, rcv_nxt) {
                r.opts.ts = r.opts.ts.map(|(_, off)| (tsval, off));
            }
        }
        let mut f = f;
        if seg.seq == req.irs {
            // The SYN bit of a segment starting at the client's ISN is the old SYN.
            f = Flags(f.0 & !Flags::SYN.0);
        }
        if f.intersects(Flags::RST | Flags::SYN) {
            return self.embryonic_reset(seg, f, out);
        }
        if !f.contains(Flags::ACK) {
            return ListenerAction::Dropped(DropReason::Ignored);
        }
        if self.accept_queue_full() {
            // tcp_v4_syn_recv_sock exit_overflow, then tcp_check_req listen_overflow.
            self.count_overflow();
            if !self.profile.tcp_abort_on_overflow {
                self.requests.get_mut(&remote).expect("present").acked = true;
                return ListenerAction::Dropped(DropReason::AcceptQueueFull);
            }
            return self.embryonic_reset(seg, f, out);
        }
        let req = self.remove_request(remote).expect("present");
        self.make_child(seg, &req, false, false)
    }

    /// tcp_check_req `embryonic_reset`: an RST for the segment (unless it is one), the
    /// request dropped.
    fn embryonic_reset(&mut self, seg: &Segment, flags: Flags, out: &mut Vec<Segment>) -> ListenerAction {
        let reset = !flags.contains(Flags::RST);
        if reset {
            out.extend(reset_for(seg));
        }
        self.remove_request(seg.src);
        self.counters.embryonic_rsts += 1;
        if reset {
            ListenerAction::Reset
        } else {
            ListenerAction::Dropped(DropReason::RequestReset)
        }
    }

    /// `reqsk_timer_handler` for the request from `remote`.
    fn request_timer(&mut self, now: SimTime, remote: SockAddr, out: &mut Vec<Segment>) {
        let max_retries = self.max_syn_ack_retries();
        self.counters.tcp_timeouts += 1; // tcp_syn_ack_timeout
        let Some(req) = self.requests.get(&remote) else { return };
        // syn_ack_recalc without TCP_DEFER_ACCEPT: expire at the limit, else always resend,
        // "acked" requests included.
        if req.num_timeout >= max_retries {
            self.remove_request(remote);
            return;
        }
        out.push(self.synack(now, remote, req, false, None));
        if req.num_timeout == 0 {
            self.young -= 1;
        }
        self.counters.retrans_segs += 1; // tcp_rtx_synack
        let r = self.requests.get_mut(&remote).expect("present");
        r.num_retrans += 1;
        r.num_timeout += 1;
        let n = r.num_timeout;
        let expires = self.timer_at(now, self.reqsk_timeout(n));
        self.retime(remote, expires);
    }

    /// The SYN-ACK retry limit for this firing: `tcp_synack_retries`, lowered (to no less
    /// than 2) while old requests clog a SYN queue more than half full (`reqsk_timer_handler`:
    /// one less per halving of the share of young requests).
    fn max_syn_ack_retries(&self) -> u32 {
        let mut max = self.profile.tcp_synack_retries;
        let qlen = self.requests.len() as u64;
        if qlen << 1 > u64::from(self.backlog.max(8)) {
            let mut young = u64::from(self.young) << 1;
            while max > 2 {
                if qlen < young {
                    break;
                }
                max -= 1;
                young <<= 1;
            }
        }
        max
    }

    /// include/net/inet_connection_sock.h `reqsk_timeout`: `timeout << num_timeout`, at
    /// most rto_max.
    fn reqsk_timeout(&self, num_timeout: u32) -> Dur {
        Dur::from_millis(self.profile.tcp_timeout_init_ms)
            .saturating_shl(num_timeout)
            .min(Dur::from_millis(self.profile.tcp_rto_max_ms))
    }

    /// When a request timer armed at `now` for `timeout` fires (`reqsk_queue_hash_req`,
    /// `reqsk_timer_handler`: `mod_timer(&req->rsk_timer, jiffies + timeout)`).
    fn timer_at(&self, now: SimTime, timeout: Dur) -> SimTime {
        crate::tcp::jiffies::Jiffies::of(&self.profile).expiry(now, timeout)
    }

    fn retime(&mut self, remote: SockAddr, expires: SimTime) {
        if let Some(r) = self.requests.get_mut(&remote) {
            self.timers.remove(&(r.expires, remote));
            r.expires = expires;
            self.timers.insert((expires, remote));
        }
    }

    /// `inet_csk_reqsk_queue_drop`: unhash, stop the timer, fix the young count.
    fn remove_request(&mut self, remote: SockAddr) -> Option<Request> {
        let r = self.requests.remove(&remote)?;
        self.timers.remove(&(r.expires, remote));
        if r.num_timeout == 0 {
            self.young -= 1;
        }
        Some(r)
    }

    fn count_overflow(&mut self) {
        self.counters.listen_overflows += 1;
        self.counters.listen_drops += 1;
    }

    /// tcp_input.c `tcp_oow_rate_limited`: data segments without SYN are never limited.
    fn oow_rate_limited(&mut self, now: SimTime, remote: SockAddr, seg: &Segment) -> bool {
        if !seg.payload.is_empty() && !seg.flags.contains(Flags::SYN) {
            return false;
        }
        let r = self.requests.get_mut(&remote).expect("present");
        if r.last_oow_ack.is_some_and(|t| now.since(t) < TCP_INVALID_RATELIMIT) {
            return true;
        }
        r.last_oow_ack = Some(now);
        false
    }

    /// tcp_fastopen.c `tcp_try_fastopen`, with `tcp_fastopen_queue_check` (a Fast Open queue
    /// that is not full) and `tcp_fastopen_cookie_gen_check` (the cookie is the one
    /// [`FastOpenKey::cookie`] makes for the SYN's addresses): a SYN with data or an FO option
    /// makes a child at once under `TFO_SERVER_COOKIE_NOT_REQD` or with a valid cookie; a
    /// request or an invalid cookie is answered with the valid one, in the option form the
    /// SYN used. A cookie of a bad length is none (`tcp_parse_fastopen_option`).
    fn try_fastopen(&self, seg: &Segment) -> TryFastOpen {
        let syn_data = !seg.payload.is_empty();
        let foc = seg.options.fastopen.filter(|c| c.is_request() || c.valid());
        let tfo = self.profile.tcp_fastopen;
        let queue_ok = self.fastopen_max_qlen > 0 && (self.fastopenq.len() as u32) < self.fastopen_max_qlen;
        let (Some(key), true) = (self.fastopen_key, tfo & TFO_SERVER_ENABLE != 0 && (syn_data || foc.is_some()) && queue_ok) else {
            return TryFastOpen::No(None);
        };
        if tfo & TFO_SERVER_COOKIE_NOT_REQD != 0 {
            return TryFastOpen::Child;
        }
        let Some(foc) = foc else { return TryFastOpen::No(None) };
        let valid = key.cookie(seg.src.ip(), seg.dst.ip());
        if !foc.is_request() && foc.bytes() == valid.bytes() {
            return TryFastOpen::Child;
        }
        TryFastOpen::No(Some(valid.with_exp(foc.exp)))
    }

    /// The child's parameters, counted in the accept queue until [`Self::enqueue`];
    /// `fastopen`: made at the SYN by Fast Open.
    fn make_child(&mut self, seg: &Segment, req: &Request, cookie: bool, fastopen: bool) -> ListenerAction {
        self.pending_children += 1;
        let o = &req.opts;
        ListenerAction::Child(Box::new(ChildParams {
            local: self.local,
            remote: seg.src,
            iss: req.iss,
            irs: req.irs,
            peer_mss: o.peer_mss,
            adv_mss: o.adv_mss,
            snd_wscale: o.peer_wscale,
            rcv_wscale: o.rcv_wscale,
            sack_ok: o.sack_ok,
            ecn_ok: o.ecn_ok,
            timestamps: o.ts.map(|(ts_recent, ts_off)| ChildTimestamps { ts_recent, ts_off }),
            // tcp_create_openreq_child: the window of the completing segment, scaled.
            snd_wnd: u32::from(seg.window) << o.peer_wscale.unwrap_or(0),
            rcv_wnd: o.rcv_wnd,
            window_clamp: o.window_clamp,
            synack_sent_at: req.synack_sent_at,
            synack_retransmits: req.num_retrans,
            cookie,
            fastopen,
            segment: seg.clone(),
        }))
    }

    /// secure_tcp_ts_off: a per-address-pair offset for our TSvals (0 unless
    /// `tcp_timestamps` = 1, which the profile's boolean stands for).
    fn ts_off(&self, remote: SockAddr) -> u32 {
        let l = SockAddr::new(self.local.ip(), 0);
        let r = SockAddr::new(remote.ip(), 0);
        syncookie::mix(self.secret, r, l, 0x7473)
    }

    /// tcp_output.c `tcp_make_synack`: options MSS, SACK_PERM, TS, WS (Linux writes them in
    /// that order, `tcp_options_write`); the window is never scaled in a SYN-ACK; ECE when
    /// ECN was agreed (`tcp_ecn_make_synack`), the segment itself Not-ECT.
    /// `fastopen`: the Fast Open cookie the SYN-ACK gives (`tcp_synack_options`), only
    /// in the first (`tcp_rtx_synack` passes none).
    fn synack(&self, now: SimTime, remote: SockAddr, req: &Request, cookie: bool, fastopen: Option<FoCookie>) -> Segment {
        let o = &req.opts;
        let timestamps = o.ts.map(|(recent, off)| {
            let clock = ms_clock(now);
            let hidden = syncookie::CookieOptions { wscale: o.peer_wscale, sack_ok: o.sack_ok, ecn_ok: o.ecn_ok };
            let clock = if cookie { syncookie::cookie_tsval(clock, hidden) } else { clock };
            (clock.wrapping_add(off), recent)
        });
        let ece = if o.ecn_ok { Flags::ECE } else { Flags::NONE };
        Segment {
            src: self.local,
            dst: remote,
            seq: req.iss,
            ack: req.irs.wrapping_add(1),
            flags: Flags::SYN | Flags::ACK | ece,
            ecn: Ecn::NotEct,
            window: o.rcv_wnd.min(65535) as u16,
            options: TcpOptions {
                mss: Some(o.adv_mss),
                wscale: o.peer_wscale.map(|_| o.rcv_wscale),
                sack_permitted: o.sack_ok,
                timestamps,
                fastopen,
                ..TcpOptions::default()
            },
            payload: Payload::Empty,
        }
    }

    /// tcp_ipv4.c `tcp_v4_reqsk_send_ack`: the ACK for an out-of-window segment.
    fn request_ack(&self, now: SimTime, remote: SockAddr, req: &Request) -> Segment {
        let o = &req.opts;
        Segment {
            src: self.local,
            dst: remote,
            seq: req.iss.wrapping_add(1),
            ack: req.irs.wrapping_add(1),
            flags: Flags::ACK,
            ecn: Ecn::NotEct,
            window: (o.rcv_wnd >> o.rcv_wscale).min(65535) as u16,
            options: TcpOptions {
                timestamps: o.ts.map(|(recent, off)| (ms_clock(now).wrapping_add(off), recent)),
                ..TcpOptions::default()
            },
            payload: Payload::Empty,
        }
    }
}

/// tcp_input.c `tcp_ecn_create_request`: a SYN that asks for ECN (ECE and CWR) gets it if
/// `tcp_ecn` is not 0 and the SYN itself is Not-ECT (RFC 3168 §6.1.1: an ECT SYN is
/// suspect; 6.18 also takes one with a reserved bit or AE set, which the model's segments
/// cannot carry).
fn ecn_create_request(syn: &Segment, p: &KernelProfile) -> bool {
    syn.flags.contains(Flags::ECE | Flags::CWR) && syn.ecn == Ecn::NotEct && p.tcp_ecn.accept()
}

/// tcp_minisocks.c `tcp_in_window`: the segment starts at the window's left edge, overlaps
/// the window, or is empty at its right edge.
fn in_window(seq: u32, end_seq: u32, s_win: u32, e_win: u32) -> bool {
    if seq == s_win {
        return true;
    }
    if seq_gt(end_seq, s_win) && seq_lt(seq, e_win) {
        return true;
    }
    seq == e_win && seq == end_seq
}
