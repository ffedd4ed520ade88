//! The Fast Open client on a connection: the deferred connect of TCP_FASTOPEN_CONNECT
//! (tcp_fastopen.c `tcp_fastopen_defer_connect`), the SYN that carries data or asks for a
//! cookie (tcp_output.c `tcp_connect`, `tcp_send_syn_data`), `tcp_sendmsg_fastopen` (tcp.c)
//! and the SYN-ACK's side (tcp_input.c `tcp_rcv_fastopen_synack`). The cookies themselves are
//! the host's ([`crate::tcp::fastopen::FastOpenCache`]): it passes what it has for the
//! destination in and takes what the SYN-ACK taught ([`Conn::take_fastopen_learnt`]).

use super::{ChildParams, Conn, RtxTimer, SendData, SockOpts};
use crate::tcp::profile::KernelProfile;
use crate::errno::Errno;
use crate::tcp::fastopen::{ActiveOpen, Cached, FoCookie, Learnt, MAX_TCP_OPTION_SPACE, TFO_CLIENT_NO_COOKIE};
use crate::tcp::segment::{seq_lt, Segment};
use crate::tcp::state::TcpState;
use crate::time::SimTime;
use std::rc::Rc;

impl Conn {
    /// connect() with TCP_FASTOPEN_CONNECT (`tcp_v4_connect` → `tcp_fastopen_defer_connect`):
    /// with a cookie for the destination (or `TFO_CLIENT_NO_COOKIE`) the socket is left in
    /// SYN_SENT with nothing sent (`DEFER_CONNECT`), for the first write to send the SYN with
    /// data; without one a Fast Open request is allocated, so the SYN asks for a cookie.
    /// Returns whether the connect was deferred.
    pub fn fastopen_connect(&mut self, now: SimTime, cached: Option<&Cached>, out: &mut Vec<Segment>) -> bool {
        if self.cookie_check(cached).is_some() {
            self.tfo = Some(Box::new(ActiveOpen { defer_connect: true, ..ActiveOpen::default() }));
            return true;
        }
        self.tfo = Some(Box::new(ActiveOpen { req: true, ..ActiveOpen::default() }));
        self.tcp_connect_fastopen(now, cached, None, out);
        false
    }

    /// sendto(MSG_FASTOPEN) on a new socket, after `tcp_v4_connect` made it this SYN_SENT
    /// connection (`tcp_sendmsg_fastopen` → `__inet_stream_connect`): the request carries the
    /// write, so `tcp_connect` sends it in the SYN where it can. The bytes the SYN took; the
    /// request stays allocated until [`Conn::end_fastopen_write`].
    pub fn fastopen_sendto(&mut self, now: SimTime, data: &SendData, cached: Option<&Cached>, out: &mut Vec<Segment>) -> u32 {
        self.tfo = Some(Box::new(ActiveOpen { req: true, req_data: true, ..ActiveOpen::default() }));
        self.tcp_connect_fastopen(now, cached, Some(data), out)
    }

    /// `tcp_sendmsg_fastopen`'s start on an existing socket (a write with MSG_FASTOPEN, or any
    /// write after a deferred connect): EALREADY while a request is allocated ("Another Fast
    /// Open is in progress"); else the request is allocated with the write and, after a
    /// deferred connect, `tcp_connect` sends the SYN with what of it fits. The bytes the SYN
    /// took; `__inet_stream_connect`'s answer is [`Conn::stream_connect_err`]'s.
    pub fn sendmsg_fastopen(&mut self, now: SimTime, data: &SendData, cached: Option<&Cached>, out: &mut Vec<Segment>) -> Result<u32, Errno> {
        let fo = self.tfo.get_or_insert_with(Box::default);
        if fo.req {
            return Err(Errno::EALREADY);
        }
        fo.req = true;
        fo.req_data = true;
        if !fo.defer_connect {
            return Ok(0);
        }
        Ok(self.tcp_connect_fastopen(now, cached, Some(data), out))
    }

    /// What `__inet_stream_connect` answers a Fast Open write (`is_sendmsg`) on a socket that
    /// has a connection, before any wait: EINPROGRESS after a deferred connect (SS_CONNECTING
    /// with DEFER_CONNECT), EALREADY while connecting, once closed the socket's error
    /// (`sock_error`, ECONNABORTED if none), else EISCONN (SS_CONNECTED).
    pub fn stream_connect_err(&mut self, deferred: bool) -> Errno {
        match self.state {
            _ if deferred => Errno::EINPROGRESS,
            TcpState::SynSent | TcpState::SynRecv => Errno::EALREADY,
            TcpState::Close => self.take_error().unwrap_or(Errno::ECONNABORTED),
            _ => Errno::EISCONN,
        }
    }

    /// Whether connect() was deferred and the SYN not sent yet (`DEFER_CONNECT`): a write
    /// goes through [`Conn::sendmsg_fastopen`].
    pub fn defer_connect(&self) -> bool {
        self.tfo.as_deref().is_some_and(|f| f.defer_connect)
    }

    /// A blocking Fast Open write goes to sleep in `inet_wait_for_connect`, its SYN having
    /// taken `copied` bytes. It counts in `sk_write_pending` while the request still holds
    /// data (`__inet_stream_connect`'s `writebias`).
    pub fn fastopen_sleep(&mut self, copied: u32) {
        if let Some(f) = self.tfo.as_deref_mut() {
            f.sleeping = Some(copied);
            f.write_pending = f.req_data;
        }
    }

    /// Whether a blocking Fast Open write sleeps until the handshake ends
    /// ([`Conn::fastopen_sleep`]).
    pub fn fastopen_sleeping(&self) -> bool {
        self.tfo.as_deref().is_some_and(|f| f.sleeping.is_some())
    }

    /// `tcp_sendmsg_fastopen`'s end, once `__inet_stream_connect` returned: the request is
    /// freed and DEFER_CONNECT cleared; a writer that slept no longer counts in
    /// `sk_write_pending`. The bytes its SYN took (`fastopen_req->copied`), if it slept.
    pub fn end_fastopen_write(&mut self) -> Option<u32> {
        let f = self.tfo.as_deref_mut()?;
        f.req = false;
        f.req_data = false;
        f.defer_connect = false;
        f.write_pending = false;
        f.sleeping.take()
    }

    /// Whether a writer waits for the handshake: `tcp_rcv_synsent_state_process` then saves
    /// the ACK of the SYN-ACK for the data to carry.
    pub(super) fn write_pending(&self) -> bool {
        self.tfo.as_deref().is_some_and(|f| f.write_pending)
    }

    /// The child `tcp_fastopen_create_child` makes at the SYN (tcp_fastopen.c): in SYN_RECV
    /// with `snd_una` past the SYN-ACK as any child's (`tcp_create_openreq_child`: the SYN-ACK
    /// is the request's to send again, not in the child's queue), the retransmission timer
    /// armed for it (`TCP_TIMEOUT_INIT`), the peer's window unscaled ("The window in SYN &
    /// SYN/ACK segments is never scaled"), the transfer initialised (`tcp_init_transfer`),
    /// and the SYN's data in the receive queue, acknowledged by the SYN-ACK
    /// (`syn_data_acked`, `rcv_nxt` = the SYN's `end_seq`). `tp->fastopen_rsk` stays until
    /// the handshake completes ([`Conn::passive_fastopen`]).
    pub fn fastopen_child(now: SimTime, profile: Rc<KernelProfile>, opts: impl Into<Rc<SockOpts>>, params: &ChildParams) -> Conn {
        let syn = &params.segment;
        let mut c = Conn::openreq_child(now, profile, opts.into(), params);
        c.snd_wnd = u32::from(syn.window);
        c.max_window = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c.init_transfer(now);
        let data = !syn.payload.is_empty();
        if data {
            c.rcvq.push_inorder(syn.payload.clone());
            c.rcv_nxt = c.rcv_nxt.wrapping_add(syn.payload.len());
            c.rcv_wup = c.rcv_nxt;
        }
        c.tfo = Some(Box::new(ActiveOpen { passive: true, syn_data_acked: data, ..ActiveOpen::default() }));
        c.arm_rtx(now, RtxTimer::Rto, c.rto);
        c
    }

    /// Whether this is a Fast Open child still in its handshake (`tcp_passive_fastopen`:
    /// SYN_RECV with `fastopen_rsk`): it reads and writes as if connected.
    pub fn passive_fastopen(&self) -> bool {
        self.state == TcpState::SynRecv && self.tfo.as_deref().is_some_and(|f| f.passive)
    }

    /// tcp_input.c `tcp_rcv_synrecv_state_fastopen`, when the ACK of its SYN-ACK completes a
    /// Fast Open child's handshake: the request goes (`reqsk_fastopen_remove`), the SYN-ACK
    /// retransmissions are forgotten (`icsk_retransmits`, `retrans_stamp`) and the timer
    /// re-armed for data sent meanwhile (`tcp_rearm_rto`). Its transfer was initialised at
    /// the SYN. False for any other SYN_RECV socket.
    pub(super) fn rcv_synrecv_state_fastopen(&mut self, now: SimTime) -> bool {
        let Some(f) = self.tfo.as_deref_mut().filter(|f| f.passive) else { return false };
        f.passive = false;
        self.rare.set(|r| &mut r.retransmits, 0);
        self.rare.set(|r| &mut r.retrans_stamp, None);
        self.rearm_rto(now);
        true
    }

    /// What the SYN-ACK taught for the host's cookie cache, once.
    pub fn take_fastopen_learnt(&mut self) -> Option<Learnt> {
        self.tfo.as_deref_mut()?.learnt.take()
    }

    /// `tcp_fastopen_cookie_check`: `Some(cookie)` when Fast Open may send data in the SYN —
    /// the cached cookie, or none at all under `TFO_CLIENT_NO_COOKIE`; `None` when the SYN
    /// can only ask for a cookie.
    fn cookie_check(&self, cached: Option<&Cached>) -> Option<Option<FoCookie>> {
        if self.profile.tcp_fastopen & TFO_CLIENT_NO_COOKIE != 0 {
            return Some(None);
        }
        cached.and_then(|m| m.cookie).map(Some)
    }

    /// The cookie request a fallback SYN carries (`tcp_send_syn_data`'s `fallback:` with the
    /// cookie `tcp_fastopen_cache_get` read): empty, in the experimental option when the
    /// cached cookie was one or when a request in the RFC option drew none (`try_exp` 1); no
    /// option at all under `TFO_CLIENT_NO_COOKIE` (`cookie.len = -1`).
    fn cookie_request(&self, cached: Option<&Cached>) -> Option<FoCookie> {
        if self.profile.tcp_fastopen & TFO_CLIENT_NO_COOKIE != 0 {
            return None;
        }
        let exp = cached.is_some_and(|m| m.cookie.map_or(m.try_exp == 1, |c| c.exp));
        Some(FoCookie::REQUEST.with_exp(exp))
    }

    /// `tcp_connect` with a Fast Open request (`tcp_send_syn_data`): with a cookie (or under
    /// `TFO_CLIENT_NO_COOKIE`) and a buffer that copies, the SYN carries the cookie and as
    /// much of the write as fits `min(PMTU MSS, cached MSS, TCP_MAXSEG) − MAX_TCP_OPTION_SPACE`,
    /// queued as its own skb behind the SYN (flags ACK|PSH) for retransmission; otherwise a
    /// plain SYN that asks for a cookie (a NULL buffer faults in `copy_page_from_iter` and
    /// falls back so: the caller sees no bytes taken, not EFAULT). Then `snd_nxt` moves to
    /// `write_seq` and the SYN timer starts. The bytes the SYN took.
    fn tcp_connect_fastopen(&mut self, now: SimTime, cached: Option<&Cached>, data: Option<&SendData>, out: &mut Vec<Segment>) -> u32 {
        let cookie = self.cookie_check(cached);
        let fault = matches!(data, Some(SendData::Null(n)) if *n > 0);
        let mut syn = self.syn_segment(now, false);
        let mut copied = 0;
        match (cookie, data) {
            (Some(cookie), Some(data)) if !fault => {
                // tp->rx_opt.mss_clamp: the cached MSS if any, bounded by TCP_MAXSEG.
                let cached_mss = cached.map_or(0, |m| m.mss);
                let mss_clamp = self.opts.mss_clamp(if cached_mss != 0 { cached_mss } else { self.advmss });
                let space = u32::from(self.advmss.min(mss_clamp)).saturating_sub(MAX_TCP_OPTION_SPACE);
                copied = data.count().min(space);
                if copied > 0 {
                    self.queue_syn_data(now, data, copied);
                    syn.payload = self.sndq.payload(self.tx_stream, self.sndq.head_off(), copied);
                }
                syn.options.fastopen = cookie;
                // "No more data pending in inet_wait_for_connect()".
                if copied == data.count() {
                    if let Some(f) = self.tfo.as_deref_mut() {
                        f.req_data = false;
                    }
                }
            }
            _ => syn.options.fastopen = self.cookie_request(cached),
        }
        if let Some(f) = self.tfo.as_deref_mut() {
            f.syn_fastopen = syn.options.fastopen.is_some();
            f.syn_fastopen_exp = syn.options.fastopen.is_some_and(|c| c.exp);
            f.syn_data = copied > 0;
        }
        out.push(syn);
        self.snd_nxt = self.write_seq;
        self.pushed_seq = self.write_seq;
        self.arm_rtx(now, RtxTimer::Rto, self.rto);
        copied
    }

    /// `tcp_connect_queue_skb` of the SYN-data's skb: `n` bytes of `data` as one skb after
    /// the SYN, marked PSH (`TCPHDR_ACK | TCPHDR_PSH`), in flight.
    fn queue_syn_data(&mut self, now: SimTime, data: &SendData, n: u32) {
        self.sndq.entail();
        match data {
            SendData::Bytes(b) => self.sndq.push_bytes(Rc::from(&b[..]), 0, n),
            SendData::Derived(_) | SendData::Null(_) => self.sndq.push_derived(n),
        }
        self.sndq.set_tail_push(true);
        self.write_seq = self.write_seq.wrapping_add(n);
        self.rtx_skbs.push(self.write_seq, now, true);
    }

    /// `tcp_rcv_fastopen_synack`, after the SYN-ACK made the connection ESTABLISHED: what
    /// the host's cache learns (the SYN-ACK's MSS and cookie — ignored unless the SYN carried
    /// the option —, a SYN-data lost when the SYN had to be retransmitted and the SYN-ACK
    /// brings no cookie, `try_exp` when a plain request drew no cookie), and SYN data the
    /// SYN-ACK did not acknowledge marked lost and sent again at once
    /// (`tcp_non_congestion_loss_retransmit`). True when it retransmitted: the caller then
    /// sends no ACK of its own.
    pub(super) fn rcv_fastopen_synack(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) -> bool {
        let Some(fo) = self.tfo.as_deref() else { return false };
        if !fo.syn_fastopen && !fo.syn_data {
            return false;
        }
        // tcp_parse_fastopen_option: an empty option is a request, a cookie of a bad length none.
        let foc = seg.options.fastopen.filter(|c| c.is_request() || c.valid());
        let data_unacked = fo.syn_data && seq_lt(self.snd_una, self.snd_nxt);
        let (cookie, syn_lost, try_exp) = if !fo.syn_fastopen {
            (None, false, 0)
        } else if self.rare.get().total_retrans > 0 {
            (foc, foc.is_none() && data_unacked, 0)
        } else if foc.is_none() && !fo.syn_data {
            (foc, false, if fo.syn_fastopen_exp { 2 } else { 1 })
        } else {
            (foc, false, 0)
        };
        let mss = self.opts.mss_clamp(seg.options.mss.unwrap_or(0));
        let mss = if mss == self.opts.user_mss { seg.options.mss.unwrap_or(0) } else { mss };
        if let Some(f) = self.tfo.as_deref_mut() {
            f.learnt = Some(Learnt { mss, cookie, syn_lost, try_exp });
        }
        if data_unacked {
            self.non_congestion_loss_retransmit(now, out);
        } else if let Some(f) = self.tfo.as_deref_mut() {
            f.syn_data_acked = f.syn_data;
        }
        data_unacked
    }

    /// `tp->syn_data_acked` (TCPI_OPT_SYN_DATA).
    pub(super) fn syn_data_acked(&self) -> bool {
        self.tfo.as_deref().is_some_and(|f| f.syn_data_acked)
    }
}
