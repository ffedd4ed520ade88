//! Building and sending segments (net/ipv4/tcp_output.c): `tcp_transmit_skb`'s header and
//! options, `tcp_select_window`, `tcp_write_xmit` with the congestion window, the receive
//! window and Nagle, `tcp_send_fin`, `tcp_send_ack`, resets and probes.

use super::{Conn, Deadline, RtxTimer};
use crate::tcp::cc::CaState;
use crate::tcp::chrono::ChronoKind;
use crate::tcp::segment::{seq_gt, seq_le, seq_lt, Ecn, Flags, Payload, Segment, TcpOptions};
use crate::tcp::state::TcpState;
use crate::tcp::timeouts;
use crate::time::{Dur, SimTime};

impl Conn {
    /// TSval: the millisecond clock (`tcp_time_stamp_ms`) plus the connection's offset.
    pub(super) fn tsval(&self, now: SimTime) -> u32 {
        ((now.as_nanos() / 1_000_000) as u32).wrapping_add(self.ts_offset)
    }

    /// `tcp_receive_window`: what is left of the window last advertised.
    pub(super) fn receive_window(&self) -> u32 {
        let w = self.rcv_wup.wrapping_add(self.rcv_wnd).wrapping_sub(self.rcv_nxt) as i32;
        w.max(0) as u32
    }

    /// `__tcp_select_window`: the window the free receive space allows now.
    pub(super) fn compute_window(&self) -> u32 {
        let allowed = self.full_space();
        let full = self.window_clamp.min(allowed);
        let mut mss = self.rcv_mss;
        if mss > full {
            mss = full;
            if mss == 0 {
                return 0;
            }
        }
        let mut free = self.tcp_space();
        if free < full / 2 {
            free &= !((1u32 << self.rcv_wscale) - 1);
            if free < allowed / 16 || free < mss {
                return 0;
            }
        }
        free = free.min(self.rcv_ssthresh);
        if self.rcv_wscale != 0 {
            let unit = 1u32 << self.rcv_wscale;
            free.div_ceil(unit) * unit
        } else {
            let window = self.rcv_wnd;
            if window + mss <= free || window > free {
                free - free % mss.max(1)
            } else if mss == full && free > window + full / 2 {
                free
            } else {
                window
            }
        }
    }

    /// `tcp_select_window`: never shrink what was offered; record it; scale it.
    fn select_window(&mut self) -> u16 {
        if self.ack_nomem {
            self.ack_nomem = false;
            self.rcv_wnd = 0;
            self.rcv_wup = self.rcv_nxt;
            return 0;
        }
        let cur = self.receive_window();
        let mut new = self.compute_window();
        if self.tcp_space() < self.window_clamp.min(self.full_space()) / 2 {
            // The buffer is more than half full: stop quick-acking.
            self.quick = 0;
        }
        if new < cur {
            let unit = 1u32 << self.rcv_wscale;
            new = cur.div_ceil(unit) * unit;
        }
        self.rcv_wnd = new;
        self.rcv_wup = self.rcv_nxt;
        (new.min(65535u32 << self.rcv_wscale) >> self.rcv_wscale) as u16
    }

    /// `tcp_acceptable_seq`: the sequence number of a segment without data.
    fn acceptable_seq(&self) -> u32 {
        let wnd_end = self.snd_una.wrapping_add(self.snd_wnd);
        if seq_le(self.snd_nxt, wnd_end) || self.snd_nxt.wrapping_sub(wnd_end) < (1 << self.rcv_wscale) {
            self.snd_nxt
        } else {
            wnd_end
        }
    }

    /// A segment of an established connection (`tcp_transmit_skb`): ack, window, options.
    pub(super) fn build(&mut self, now: SimTime, seq: u32, flags: Flags, payload: Payload) -> Segment {
        let window = self.select_window();
        let mut options = TcpOptions::default();
        if self.ts_ok {
            options.timestamps = Some((self.tsval(now), self.ts_recent));
        }
        if self.sack_ok {
            options.sack = self.sack_blocks();
        }
        let has_ack = flags.contains(Flags::ACK);
        if has_ack {
            self.ack_sent();
        }
        // The host's queue drops what is built here too (an ACK, a probe, a FIN or RST).
        self.refused_locally(now);
        let (flags, ecn) = self.ecn_send(seq, !payload.is_empty(), flags);
        Segment {
            src: self.local,
            dst: self.remote,
            seq,
            ack: if has_ack { self.rcv_nxt } else { 0 },
            flags,
            ecn,
            window,
            options,
            payload,
        }
    }

    /// The SACK blocks of the next segment (`tcp_established_options`, `tcp_options_write`):
    /// a pending D-SACK block first (RFC 2883 §4), then the out-of-order ranges, newest
    /// first, as many as the option space takes (3 beside timestamps, else 4). The D-SACK is
    /// reported once (`tp->rx_opt.dsack = 0` once written).
    fn sack_blocks(&mut self) -> Vec<(u32, u32)> {
        let max = if self.ts_ok { 3 } else { 4 };
        let dsack = Some(self.rare.take(|r| &mut r.dsack)).filter(|(s, e)| s != e);
        if dsack.is_none() && !self.rcvq.has_ooo() {
            return Vec::new();
        }
        dsack.into_iter().chain(self.rcvq.ooo_ranges().into_iter().rev()).take(max).collect()
    }

    /// `tcp_event_ack_sent`: the pending ACK is done; one quick ACK used.
    fn ack_sent(&mut self) {
        if self.quick > 0 && self.ack_pending {
            self.quick -= 1;
            if self.quick == 0 {
                self.ato = Dur::from_millis(self.profile.tcp_delack_min_ms);
            }
        }
        self.ack_pending = false;
        self.ack_now = false;
        self.delack_at = Deadline::NONE;
    }

    /// The SYN (`tcp_connect`) or, in a simultaneous open, the SYN-ACK (`tcp_send_synack`),
    /// options in Linux's order: MSS, SACK_PERM, TS, NOP, WS.
    pub(super) fn syn_segment(&mut self, now: SimTime, synack: bool) -> Segment {
        let p = &self.profile;
        let mut options = TcpOptions { mss: Some(self.advmss), ..TcpOptions::default() };
        let (sack, ts, ws) = if synack {
            (self.sack_ok, self.ts_ok, self.rcv_wscale != 0 || self.snd_wscale != 0)
        } else {
            (p.tcp_sack, p.tcp_timestamps, p.tcp_window_scaling)
        };
        options.sack_permitted = sack;
        if ts {
            options.timestamps = Some((self.tsval(now), if synack { self.ts_recent } else { 0 }));
        }
        if ws {
            options.wscale = Some(self.rcv_wscale);
        }
        if synack {
            self.ack_sent();
        }
        Segment {
            src: self.local,
            dst: self.remote,
            seq: self.iss,
            ack: if synack { self.rcv_nxt } else { 0 },
            flags: (if synack { Flags::SYN | Flags::ACK } else { Flags::SYN }) | self.ecn_syn_flags(synack),
            ecn: Ecn::NotEct,
            window: self.rcv_wnd.min(65535) as u16,
            options,
            payload: Payload::Empty,
        }
    }

    /// `tcp_send_ack`.
    pub(super) fn send_ack(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let seq = self.acceptable_seq();
        let seg = self.build(now, seq, Flags::ACK, Payload::Empty);
        out.push(seg);
    }

    /// `tcp_send_active_reset`: RST|ACK at the acceptable sequence.
    pub(super) fn active_reset(&mut self, now: SimTime) -> Segment {
        let seq = self.acceptable_seq();
        self.build(now, seq, Flags::RST | Flags::ACK, Payload::Empty)
    }

    /// `tcp_v4_send_reset`: the stateless answer to `seg` (no options, window 0).
    pub(super) fn reset_reply(seg: &Segment) -> Segment {
        let (seq, ack, flags) = if seg.flags.contains(Flags::ACK) {
            (seg.ack, 0, Flags::RST)
        } else {
            (0, seg.seq.wrapping_add(seg.seq_len()), Flags::RST | Flags::ACK)
        };
        Segment { src: seg.dst, dst: seg.src, seq, ack, flags, ecn: Ecn::NotEct, window: 0, options: TcpOptions::default(), payload: Payload::Empty }
    }

    /// `tcp_xmit_probe_skb`: a zero-length ACK at `snd_una - 1` (keepalive, window probe).
    pub(super) fn send_probe_skb(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let seq = self.snd_una.wrapping_sub(1);
        let seg = self.build(now, seq, Flags::ACK, Payload::Empty);
        out.push(seg);
    }

    /// `tcp_write_wakeup`: send new data that fits the offered window (up to one MSS), or a
    /// probe skb when none fits.
    /// Returns true when the host's queue dropped it (`tcp_write_wakeup` returns
    /// `tcp_transmit_skb`'s positive `NET_XMIT_DROP`, and its callers then retry on
    /// `TCP_RESOURCE_PROBE_INTERVAL`).
    pub(super) fn write_wakeup(&mut self, now: SimTime, out: &mut Vec<Segment>) -> bool {
        if self.refused_locally(now) {
            return true;
        }
        let wnd_end = self.snd_una.wrapping_add(self.snd_wnd);
        let data_end = self.data_end();
        if seq_lt(self.snd_nxt, self.write_seq) && seq_lt(self.snd_nxt, wnd_end) {
            let skb_end = self.skb_end(self.snd_nxt);
            let avail_data = if seq_lt(self.snd_nxt, skb_end) { skb_end.wrapping_sub(self.snd_nxt) } else { 0 };
            let room = wnd_end.wrapping_sub(self.snd_nxt);
            let len = avail_data.min(self.mss).min(room);
            let fin = self.fin_queued && self.snd_nxt.wrapping_add(len) == data_end && room > len;
            let end = self.snd_nxt.wrapping_add(len);
            if seq_lt(end, skb_end) {
                // tcp_fragment: the part left behind keeps the PSH the probe's skb was given.
                self.sndq.split(self.seq_off(end));
                self.sndq.mark_push_at(self.seq_off(end));
            }
            // tcp_write_wakeup sets PSH on what it sends.
            self.send_new(now, len, fin, true, out);
            // tcp_event_new_data_sent → tcp_check_space.
            self.check_space(now);
        } else {
            self.send_probe_skb(now, out);
        }
        false
    }

    /// Whether the host's queue drops what this connection transmits now
    /// ([`Conn::set_dev_refuses`]): `__tcp_transmit_skb` then gets `NET_XMIT_DROP` (> 0)
    /// from `queue_xmit` and calls `tcp_enter_cwr`, local congestion being congestion.
    pub(super) fn refused_locally(&mut self, now: SimTime) -> bool {
        if self.dev_refuses {
            self.enter_cwr(now);
        }
        self.dev_refuses
    }

    /// Segments in flight (`packets_out`): skbs sent and not yet wholly acknowledged.
    pub(super) fn packets_out(&self) -> u32 {
        self.rtx_skbs.len()
    }

    /// `tcp_packets_in_flight`: `packets_out - (sacked_out + lost_out) + retrans_out`, from
    /// the scoreboard.
    pub(super) fn packets_in_flight(&self) -> u32 {
        self.rtx_skbs.in_flight()
    }

    /// `tcp_nagle_check` for a small segment: a corked push (`TCP_NAGLE_CORK`: TCP_CORK, or
    /// this send's MSG_MORE) holds it; else, unless TCP_NODELAY, Minshall's variant of Nagle
    /// holds it while an earlier small segment is unacknowledged. `snd_nxt` stands at `seq`,
    /// with segments of the same skb before it when `after_others`.
    fn nagle_blocks_at(&self, seq: u32, after_others: bool, cork: bool) -> bool {
        cork || (!self.opts.nodelay
            && (after_others || self.packets_out() > 0)
            && seq_gt(self.snd_sml, self.snd_una)
            && seq_le(self.snd_sml, seq))
    }

    /// `tcp_cwnd_test`: how many segments the congestion window lets out now, at most half
    /// the window at once ("ensure we have at least 2 GSO packets in flight"). The FIN is let
    /// out whatever the window when it goes in a one-segment skb ("Don't be strict about the
    /// congestion window for the final FIN": `TCPHDR_FIN && tcp_skb_pcount(skb) == 1`), here
    /// when what is left to send is one segment ending with the FIN.
    fn cwnd_quota(&self) -> u32 {
        if self.fin_queued && self.next_segment(self.snd_nxt, self.skb_end(self.snd_nxt)).1 {
            return 1;
        }
        let (in_flight, cwnd) = (self.packets_in_flight(), self.cwnd.cwnd);
        if in_flight >= cwnd {
            return 0;
        }
        (cwnd >> 1).max(1).min(cwnd - in_flight)
    }

    /// `tcp_tso_segs` → `tcp_tso_autosize`: the segments one GSO skb may hold, about a
    /// millisecond at the pacing rate (`sk_pacing_rate >> sk_pacing_shift`, shift 10), at least
    /// `tcp_min_tso_segs`, at most what the device takes (`sk_gso_max_segs`). The 5.18+ bonus
    /// of `gso_max_size >> (min_rtt >> tcp_tso_rtt_log)` is left out: it adds a segment only
    /// below a 4 ms RTT.
    pub(super) fn tso_segs(&self) -> u32 {
        let per_ms = (self.pacing_rate >> 10).min(crate::tcp::cc::GSO_MAX_SIZE);
        let segs = (per_ms / u64::from(self.mss.max(1))) as u32;
        segs.max(self.profile.tcp_min_tso_segs).min(self.profile.gso_max_segs).max(1)
    }

    /// The data and FIN of the segment at `seq` in the skb whose data ends at `skb_end` (at
    /// most one MSS): the FIN rides on the last byte queued.
    fn next_segment(&self, seq: u32, skb_end: u32) -> (u32, bool) {
        let len = if seq_lt(seq, skb_end) { skb_end.wrapping_sub(seq).min(self.mss) } else { 0 };
        (len, self.fin_queued && seq.wrapping_add(len) == self.data_end())
    }

    /// The end of the data of the skb holding `seq` (the send queue's skb boundaries; the
    /// data end for a FIN alone).
    fn skb_end(&self, seq: u32) -> u32 {
        let off = self.seq_off(seq);
        self.sndq.skb_at(off).map_or(self.data_end(), |skb| seq.wrapping_add((skb.end - off) as u32))
    }

    /// How many of the next `max` segments of the send-head skb (data ending at `skb_end`) go
    /// out as one (`tcp_write_xmit`'s `tcp_snd_wnd_test`, `tcp_mss_split_point`): those within
    /// the peer's window, a last sub-MSS one only if Nagle allows it, which it only asks of the
    /// last skb queued (`tcp_nagle_test` with `TCP_NAGLE_PUSH` for the others).
    fn sendable_segs(&self, max: u32, skb_end: u32, cork: bool) -> u32 {
        let is_tail = skb_end == self.data_end();
        let mut seq = self.snd_nxt;
        let mut n = 0;
        while n < max && seq != self.write_seq {
            let (len, fin) = self.next_segment(seq, skb_end);
            if len == 0 && !fin {
                break;
            }
            let end = seq.wrapping_add(len).wrapping_add(fin as u32);
            if !self.within_snd_wnd(end) || (is_tail && !fin && len < self.mss && self.nagle_blocks_at(seq, n > 0, cork)) {
                break;
            }
            seq = end;
            n += 1;
        }
        n
    }

    /// `tcp_snd_wnd_test`: whether the segment at `seq` of the skb ending at `skb_end` (its
    /// FIN included) ends within the peer's window.
    fn snd_wnd_test(&self, seq: u32, skb_end: u32) -> bool {
        let (len, fin) = self.next_segment(seq, skb_end);
        self.within_snd_wnd(seq.wrapping_add(len).wrapping_add(fin as u32))
    }

    /// Whether sequence space up to `end` lies within the peer's window.
    fn within_snd_wnd(&self, end: u32) -> bool {
        !seq_gt(end, self.snd_una.wrapping_add(self.snd_wnd))
    }

    /// Sends one segment of `len` data bytes at `seq` (+FIN): payload from the send queue.
    /// PSH where the segment ends an skb `tcp_mark_push` marked, or where `push` says (the
    /// last segment of a multi-segment skb, a window probe).
    fn xmit(&mut self, now: SimTime, seq: u32, len: u32, fin: bool, push: bool, out: &mut Vec<Segment>) -> u32 {
        let off = self.seq_off(seq);
        let payload = self.sndq.payload(self.tx_stream, off, len);
        let mut flags = Flags::ACK;
        let end_off = off + u64::from(len);
        let marked = self.sndq.skb_at(off).is_some_and(|skb| skb.psh && skb.end == end_off);
        if len > 0 && (push || marked) {
            flags = flags | Flags::PSH;
        }
        if fin {
            flags = flags | Flags::FIN;
        }
        if len > 0 {
            self.event_data_sent(now);
        }
        let seg = self.build(now, seq, flags, payload);
        out.push(seg);
        if len > 0 && now.since(self.lrcvtime) < self.ato {
            // tcp_event_data_sent: a reply within ato of the last receive → interactive.
            self.pingpong = true;
        }
        seq.wrapping_add(len).wrapping_add(fin as u32)
    }

    /// New data at `snd_nxt` in an skb of its own (a probe's, a loss probe's).
    pub(super) fn send_new(&mut self, now: SimTime, len: u32, fin: bool, push: bool, out: &mut Vec<Segment>) {
        let skb = self.edt_begin(now, out);
        self.send_segment(now, len, fin, push, true, out);
        self.edt_end(skb, now, out);
    }

    /// One segment of new data at `snd_nxt` (`tcp_event_new_data_sent`), the last of its skb
    /// when `last`.
    fn send_segment(&mut self, now: SimTime, len: u32, fin: bool, push: bool, last: bool, out: &mut Vec<Segment>) {
        let prior_packets = self.packets_out();
        let seq = self.snd_nxt;
        let end = self.xmit(now, seq, len, fin, push, out);
        self.snd_nxt = end;
        self.rtx_skbs.push(end, now, last);
        self.prr_sent(1);
        if len < self.mss && !fin {
            self.snd_sml = end;
        }
        if prior_packets == 0 || self.rtx_kind == RtxTimer::LossProbe || self.rtx_kind == RtxTimer::Probe0 {
            self.rearm_rto(now);
        }
    }

    /// Sends again the skb whose first segment holds `seq` (`__tcp_retransmit_skb`), at most
    /// `segs` segments of it (the rest split off, [`RtxSkbs::fragment`]), after
    /// `tcp_trim_head` dropped what was acknowledged; an skb of one segment first takes in
    /// the one-segment skbs behind it where they fit (`tcp_retrans_try_collapse`). Each
    /// segment is marked for Karn's rule (`TCPCB_EVER_RETRANS`) and counted in
    /// `total_retrans` and RetransSegs (`tcp_skb_pcount`), nothing more; the loss probe
    /// stops here. An skb of more than one segment leaves with PSH on its last segment
    /// (`__tcp_transmit_skb`: "Force a PSH flag on all (GSO) packets", on the clone it
    /// sends; tcp_offload.c `tcp_gso_segment` clears PSH on every segment but the last).
    /// Returns how many segments went out.
    ///
    /// [`RtxSkbs::fragment`]: super::buffers::RtxSkbs::fragment
    pub(super) fn resend_skb(&mut self, now: SimTime, seq: u32, segs: u32, out: &mut Vec<Segment>) -> u32 {
        let wnd_end = self.snd_una.wrapping_add(self.snd_wnd);
        let fin_seq = self.fin_queued.then_some(self.data_end());
        let n = self.rtx_skbs.fragment(seq, segs, wnd_end, self.snd_una, self.mss, fin_seq);
        if n == 1 {
            self.retrans_try_collapse(seq, wnd_end, fin_seq);
        }
        let mut at = seq;
        let skb = self.edt_begin(now, out);
        for i in 1..=n {
            at = self.resend_segment(now, at, n > 1 && i == n, out);
        }
        self.edt_end(skb, now, out);
        n
    }

    /// `tcp_retrans_try_collapse` on the one-segment skb at `seq`, in the retransmit queue
    /// and in the send queue's skbs (`tcp_collapse_retrans`).
    fn retrans_try_collapse(&mut self, seq: u32, wnd_end: u32, fin_seq: Option<u32>) {
        let (sndq, snd_una) = (&self.sndq, self.snd_una);
        let eor_at = |end: u32| sndq.eor_at(sndq.head_off() + u64::from(end.wrapping_sub(snd_una)));
        self.rtx_skbs.collapse(seq, snd_una, self.mss, wnd_end, fin_seq, eor_at);
        let (len, _) = self.queued_segment(seq);
        let off = self.seq_off(seq);
        self.sndq.merge(off, off + u64::from(len));
    }

    /// The data length and FIN of the queued segment whose data starts at `seq`.
    fn queued_segment(&self, seq: u32) -> (u32, bool) {
        let data_end = self.data_end();
        let skb_end = self.rtx_skbs.end_of(seq).unwrap_or(self.snd_nxt);
        let has_fin = self.fin_queued && skb_end == self.write_seq;
        let skb_data_end = skb_end.wrapping_sub(has_fin as u32);
        let len = if seq_lt(seq, skb_data_end) { skb_data_end.wrapping_sub(seq).min(self.mss) } else { 0 };
        (len, has_fin && seq.wrapping_add(len) == data_end)
    }

    /// One segment of a retransmitted skb, from `seq`; PSH when `push`. Returns the
    /// sequence after it.
    fn resend_segment(&mut self, now: SimTime, seq: u32, push: bool, out: &mut Vec<Segment>) -> u32 {
        let (len, fin) = self.queued_segment(seq);
        let end = self.xmit(now, seq, len, fin, push, out);
        self.rare.get_mut().total_retrans += 1;
        self.count(crate::tcp::mib::Mib::RetransSegs);
        self.rtx_skbs.mark_resent(seq, now);
        end
    }

    /// `tcp_retransmit_skb` (tcp_output.c): `__tcp_retransmit_skb` with at most `segs`
    /// segments, then the skb is `TCPCB_SACKED_RETRANS` and counts in `retrans_out` (back
    /// in flight), the first retransmission starts `retrans_stamp`, and `undo_retrans`
    /// grows, each by `tcp_skb_pcount`. What the RTO and the recovery send; the loss probe
    /// does not come here. One the host's queue drops marks nothing (`__tcp_retransmit_skb`
    /// failed): 0. Returns the segments sent.
    pub(super) fn retransmit_skb(&mut self, now: SimTime, seq: u32, segs: u32, out: &mut Vec<Segment>) -> u32 {
        if self.refused_locally(now) {
            return 0;
        }
        let n = self.resend_skb(now, seq, segs, out);
        let mut at = seq;
        for _ in 0..n {
            self.rtx_skbs.mark_retrans(at);
            self.undo_retransmitted();
            at = self.rtx_skbs.end_of(at).unwrap_or(self.snd_nxt);
        }
        self.rare.get_mut().retrans_stamp.get_or_insert(now);
        n
    }

    /// `tcp_write_xmit`: new data within the congestion window, the peer's window and Nagle; then the loss probe or, with nothing
    /// in flight and a closed window, the persist timer (`tcp_check_probe_timer`).
    pub(super) fn write_xmit(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        self.push_pending_frames(now, self.opts.cork, out);
    }

    /// `__tcp_push_pending_frames` → `tcp_write_xmit` with `nonagle` corked or not: a push
    /// after a MSG_MORE send is corked (`tcp_push`), one that pulls the cork or sets
    /// TCP_NODELAY is not (`TCP_NAGLE_PUSH`, `__tcp_sock_set_cork`, `__tcp_sock_set_nodelay`).
    /// Data a cork holds with nothing in flight goes out with the probe timer below
    /// (`tcp_check_probe_timer` → `tcp_probe_timer` → `tcp_write_wakeup`).
    pub(super) fn push_pending_frames(&mut self, now: SimTime, cork: bool, out: &mut Vec<Segment>) {
        self.tcp_write_xmit(now, cork, false, out);
    }

    /// `tcp_write_xmit`, one skb at a time from the send head: the congestion window's quota
    /// (`tcp_cwnd_test`, at most `tcp_tso_segs`) first lets the skb take bytes of the next one
    /// (`tcp_grow_skb`), then as much of it as the quota, the peer's window and Nagle allow goes
    /// out, the rest split off (`tso_fragment`). With `push_one` (`tcp_push_one`) one skb at
    /// most.
    pub(super) fn tcp_write_xmit(&mut self, now: SimTime, cork: bool, push_one: bool, out: &mut Vec<Segment>) {
        if !matches!(
            self.state,
            TcpState::Established | TcpState::CloseWait | TcpState::FinWait1 | TcpState::Closing | TcpState::LastAck
        ) && !self.passive_fastopen()
        {
            return;
        }
        let mut sent_new = false;
        let mut cwnd_limited = false;
        let had_unsent = self.snd_nxt != self.write_seq;
        let mut rwnd_limited = false;
        loop {
            if self.snd_nxt == self.write_seq {
                break;
            }
            let quota = self.cwnd_quota();
            if quota == 0 {
                cwnd_limited = true;
                break;
            }
            let max_segs = quota.min(self.tso_segs());
            let head = self.seq_off(self.snd_nxt);
            self.sndq.grow_skb(head, u64::from(max_segs * self.mss));
            let skb_end = self.skb_end(self.snd_nxt);
            let segs = self.sendable_segs(max_segs, skb_end, cork);
            if segs == 0 {
                rwnd_limited = !self.snd_wnd_test(self.snd_nxt, skb_end);
                break;
            }
            if self.small_queue_check(segs * self.mss) {
                break;
            }
            // `if (unlikely(tcp_transmit_skb(sk, skb, 1, gfp))) break;`: a local drop leaves
            // the skb at the send head, unsent; with nothing in flight the probe timer below
            // retries it (`tcp_check_probe_timer`).
            if self.refused_locally(now) {
                break;
            }
            self.send_skb(now, segs, skb_end, out);
            sent_new = true;
            if push_one {
                break;
            }
        }
        // tcp_write_xmit: the chronograph of a window that held the next segment back.
        if had_unsent {
            if rwnd_limited {
                self.chrono_start(now, ChronoKind::RwndLimited);
            } else {
                self.chrono_stop(now, ChronoKind::RwndLimited);
            }
        }
        cwnd_limited |= self.packets_in_flight() >= self.cwnd.cwnd;
        if sent_new || cwnd_limited {
            self.cwnd_validate(now, cwnd_limited);
        }
        if sent_new {
            self.schedule_loss_probe(now);
        }
        if self.packets_out() == 0 && seq_lt(self.snd_nxt, self.write_seq) && self.rtx_at.get().is_none() {
            let base = timeouts::probe0_when(self.rto, 0, self.rto_max());
            self.arm_rtx(now, RtxTimer::Probe0, base);
        }
    }

    /// Sends the first `segs` segments of the send-head skb (data ending at `skb_end`),
    /// splitting the rest off (`tso_fragment`). `__tcp_transmit_skb`: "Force a PSH flag on all
    /// (GSO) packets to expedite GRO flush at receiver": an skb of more than one segment
    /// carries PSH, which GSO leaves on its last segment.
    fn send_skb(&mut self, now: SimTime, segs: u32, skb_end: u32, out: &mut Vec<Segment>) {
        let mut end = self.snd_nxt;
        for _ in 0..segs {
            let (len, _) = self.next_segment(end, skb_end);
            end = end.wrapping_add(len);
        }
        if seq_lt(end, skb_end) {
            self.sndq.split(self.seq_off(end));
        }
        let skb = self.edt_begin(now, out);
        for i in 1..=segs {
            let (len, fin) = self.next_segment(self.snd_nxt, skb_end);
            self.send_segment(now, len, fin, segs > 1 && i == segs, i == segs, out);
        }
        self.edt_end(skb, now, out);
        // tcp_event_new_data_sent → tcp_check_space, once per skb sent.
        self.check_space(now);
    }

    /// `tcp_cwnd_validate` (tcp_output.c): remember, per window of data, whether the flight
    /// was ever limited by cwnd, else the most packets it held. A new window begins once
    /// `snd_una` passes `cwnd_usage_seq`; until then a limited moment is not forgotten.
    /// Starved, not cwnd-limited, with all written data sent and the writer out of buffer
    /// (`SOCK_NOSPACE`), the send buffer is what limits: `TCP_CHRONO_SNDBUF_LIMITED` starts.
    fn cwnd_validate(&mut self, now: SimTime, is_cwnd_limited: bool) {
        if !seq_lt(self.snd_una, self.cwnd_usage_seq)
            || is_cwnd_limited
            || (!self.is_cwnd_limited && self.packets_out() > self.max_packets_out)
        {
            self.is_cwnd_limited = is_cwnd_limited;
            self.max_packets_out = self.packets_out();
            self.cwnd_usage_seq = self.snd_nxt;
        }
        if !self.is_cwnd_limited()
            && self.snd_nxt == self.write_seq
            && self.nospace
            && matches!(self.state, TcpState::Established | TcpState::CloseWait)
        {
            self.chrono_start(now, ChronoKind::SndbufLimited);
        }
    }

    /// `tcp_is_cwnd_limited` (include/net/tcp.h), which gates every cwnd increase
    /// (`tcp_cong_avoid` → the algorithm's `cong_avoid`): limited in this window, or, in slow
    /// start, cwnd below twice the largest flight, so that cwnd can grow to twice what was
    /// ACKed.
    pub(super) fn is_cwnd_limited(&self) -> bool {
        if self.is_cwnd_limited {
            return true;
        }
        self.cwnd.cwnd < self.cwnd.ssthresh && self.cwnd.cwnd < 2 * self.max_packets_out
    }

    /// `tcp_send_fin`: queue the FIN behind the data and push it out.
    pub(super) fn send_fin(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        if self.fin_queued {
            return;
        }
        self.fin_queued = true;
        // tcp_queue_skb: a FIN skb that starts an empty write queue starts `Busy`.
        if self.snd_nxt == self.write_seq {
            self.chrono_start(now, ChronoKind::Busy);
        }
        self.write_seq = self.write_seq.wrapping_add(1);
        self.write_xmit(now, out);
    }

    /// `TCP_TIMEOUT_MIN`: 2 jiffies.
    pub(super) fn timeout_min(&self) -> Dur {
        self.jiffies().to_dur(2)
    }

    pub(super) fn arm_rtx(&mut self, now: SimTime, kind: RtxTimer, after: Dur) {
        self.rtx_kind = kind;
        self.rtx_at = Deadline::at(self.timer_at(now, after));
    }

    /// `tcp_rearm_rto`: restart the RTO from now, or stop it when nothing is in flight.
    pub(super) fn rearm_rto(&mut self, now: SimTime) {
        if self.packets_out() == 0 {
            if self.rtx_kind != RtxTimer::Probe0 {
                self.rtx_at = Deadline::NONE;
            }
        } else {
            self.arm_rtx(now, RtxTimer::Rto, self.rto);
        }
    }

    /// `tcp_schedule_loss_probe` (RFC 8985 §7.2; in Open or CWR), else the RTO: PTO = 2·SRTT plus the
    /// worst-case delayed ACK (`tcp_rto_min_us`) when one segment is in flight, else plus
    /// `TCP_TIMEOUT_MIN_US`, converted to jiffies after the sum (`usecs_to_jiffies(timeout_us)`,
    /// 6.6+), or 1 s without an RTT sample; never later than the RTO.
    pub(super) fn schedule_loss_probe(&mut self, now: SimTime) {
        let tlp_on = self.profile.tcp_early_retrans >= 3;
        let open = matches!(self.ca_state, CaState::Open | CaState::Cwr);
        if !tlp_on || self.packets_out() == 0 || !self.sack_ok || !open || !self.state.is_synchronized() {
            self.rearm_rto(now);
            return;
        }
        let pto = if self.rtt.has_sample() {
            let two_srtt = Dur::from_micros((self.rtt.srtt_us8 >> 2) as u64);
            let floor = if self.packets_out() == 1 { Dur::from_micros(self.profile.tcp_rto_min_us) } else { timeouts::TCP_TIMEOUT_MIN_US };
            self.jiffies().round_up(two_srtt + floor)
        } else {
            Dur::from_millis(self.profile.tcp_timeout_init_ms)
        };
        self.arm_rtx(now, RtxTimer::LossProbe, pto.min(self.rto));
    }

    /// `tcp_cleanup_rbuf`: after a read, ACK if a full-sized ACK is owed or the window can
    /// now be raised to at least twice what the peer sees.
    pub(super) fn cleanup_rbuf(&mut self, now: SimTime, copied: u32, out: &mut Vec<Segment>) {
        let mut time_to_ack = self.ack_pending && self.rcv_nxt.wrapping_sub(self.rcv_wup) > self.rcv_mss;
        if copied > 0 && !time_to_ack && self.shutdown & crate::tcp::view::RCV_SHUTDOWN == 0 {
            let now_win = self.receive_window();
            if 2 * now_win <= self.window_clamp {
                let new = self.compute_window();
                if new != 0 && new >= 2 * now_win {
                    time_to_ack = true;
                }
            }
        }
        if time_to_ack && self.state.is_synchronized() && self.state != TcpState::TimeWait {
            self.send_ack(now, out);
        }
    }
}
