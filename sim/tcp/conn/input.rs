//! Segment arrival (net/ipv4/tcp_input.c): `tcp_rcv_synsent_state_process`,
//! `tcp_rcv_state_process` (with `tcp_validate_incoming`), `tcp_ack`, `tcp_data_queue`,
//! `tcp_fin`, `tcp_reset`, the ACK decision (`__tcp_ack_snd_check`) and, for TIME_WAIT,
//! `tcp_timewait_state_process` (tcp_minisocks.c).

use super::buffers::{slice_payload, Acked};
use super::recovery::AckFlags;
use super::{Conn, Deadline, RtxTimer, TCP_MAX_QUICKACKS, TCP_TIMEOUT_FALLBACK};
use crate::errno::Errno;
use crate::tcp::view::{Wakeup, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use crate::tcp::cc::CaState;
use crate::tcp::segment::{seq_ge, seq_gt, seq_le, seq_lt, Ecn, Flags, Payload, Segment};
use crate::tcp::state::{Cause, TcpState};
use crate::tcp::timeouts;
use crate::time::{Dur, SimTime};

/// `tcp_invalid_ratelimit`'s default (HZ/2): the least time between two answers to
/// out-of-window segments.
const TCP_INVALID_RATELIMIT_MS: u32 = 500;

impl Conn {
    /// A segment addressed to this connection arrived.
    pub fn on_segment(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) {
        match self.state {
            TcpState::Close | TcpState::Listen => {}
            TcpState::SynSent => self.rcv_synsent(now, seg, out),
            TcpState::TimeWait => self.rcv_timewait(now, seg, out),
            _ => self.rcv_state_process(now, seg, out),
        }
    }

    /// `tcp_rcv_synsent_state_process`.
    fn rcv_synsent(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) {
        let f = seg.flags;
        if f.contains(Flags::ACK) {
            if seq_le(seg.ack, self.iss) || seq_gt(seg.ack, self.snd_nxt) {
                // reset_and_undo: an unacceptable ACK draws <SEQ=SEG.ACK><CTL=RST>.
                if !f.contains(Flags::RST) {
                    out.push(Conn::reset_reply(seg));
                }
                return;
            }
            if f.contains(Flags::RST) {
                self.tcp_reset();
                return;
            }
            if !f.contains(Flags::SYN) {
                return;
            }
            self.irs = seg.seq;
            self.rcv_nxt = seg.seq.wrapping_add(1);
            self.rcv_wup = self.rcv_nxt;
            let our_ws = self.rcv_wscale;
            self.ecn_rcv_synack(f);
            // tcp_rcv_synsent_state_process: max_window from the SYN-ACK, then tcp_sync_mss.
            self.snd_wnd = seg.window as u32; // never scaled in a SYN (RFC 7323 §2.2)
            self.snd_wl1 = seg.seq;
            self.max_window = self.snd_wnd;
            self.negotiate(seg.options.mss, seg.options.wscale, seg.options.sack_permitted, seg.options.timestamps.map(|t| t.0), our_ws);
            let acked = self.rtx_skbs.ack(self.snd_una, seg.ack);
            // Data a SYN carried (Fast Open) and the SYN-ACK acknowledges leaves the queue.
            self.sndq.drop_front(u64::from(seg.ack.wrapping_sub(self.iss).saturating_sub(1)));
            self.snd_una = seg.ack;
            self.high_seq = self.snd_una;
            self.snd_sml = self.snd_una;
            if !self.ack_update_rtt(now, seg, acked) {
                self.rto = if self.rare.get().total_retrans > 0 { TCP_TIMEOUT_FALLBACK } else { Dur::from_millis(self.profile.tcp_timeout_init_ms) };
            }
            self.rare.set(|r| &mut r.backoff, 0);
            self.rare.set(|r| &mut r.retransmits, 0);
            self.rare.set(|r| &mut r.retrans_stamp, None);
            self.rtx_at = Deadline::NONE;
            self.rcv_tstamp = now;
            self.lrcvtime = now;
            self.set_state(TcpState::Established, Cause::RcvSynAck);
            self.init_transfer(now);
            if !seg.payload.is_empty() {
                self.queue_inorder(now, seg.payload.clone(), f.contains(Flags::FIN), seg.ecn, out);
            }
            // tcp_rcv_synsent_state_process: SYN data sent again carries the ACK.
            if self.rcv_fastopen_synack(now, seg, out) {
                return;
            }
            if self.write_pending() {
                // "Save one ACK. Data will be ready after several ticks, if write_pending is
                // set": inet_csk_schedule_ack, quick-ACK mode, the delayed-ACK timer at
                // TCP_DELACK_MAX; the writer's data carries the ACK.
                self.ack_pending = true;
                self.enter_quickack_mode(TCP_MAX_QUICKACKS);
                self.delack_at = Deadline::at(self.timer_at(now, Dur::from_millis(self.profile.tcp_delack_max_ms)));
                return;
            }
            self.send_ack(now, out);
            return;
        }
        if f.contains(Flags::RST) {
            return;
        }
        if f.contains(Flags::SYN) {
            // Simultaneous open (RFC 9293 §3.5, figure 8).
            self.irs = seg.seq;
            self.rcv_nxt = seg.seq.wrapping_add(1);
            self.rcv_wup = self.rcv_nxt;
            let our_ws = self.rcv_wscale;
            self.ecn_rcv_syn(f);
            self.snd_wnd = seg.window as u32;
            self.snd_wl1 = seg.seq;
            self.max_window = self.snd_wnd;
            self.negotiate(seg.options.mss, seg.options.wscale, seg.options.sack_permitted, seg.options.timestamps.map(|t| t.0), our_ws);
            self.set_state(TcpState::SynRecv, Cause::RcvSyn);
            let synack = self.syn_segment(now, true);
            out.push(synack);
        }
    }

    /// `tcp_rcv_state_process` for SYN_RECV and the synchronized states.
    fn rcv_state_process(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) {
        let f = seg.flags;
        // tcp_validate_incoming, step 1: tcp_sequence.
        let end = seg.seq.wrapping_add(seg.seq_len());
        let in_window = !seq_lt(end, self.rcv_wup) && !seq_gt(seg.seq, self.rcv_nxt.wrapping_add(self.receive_window()));
        if !in_window {
            if !f.contains(Flags::RST) && (f.contains(Flags::SYN) || !self.oow_rate_limited(now, seg)) {
                if !f.contains(Flags::SYN) && seg.seq_len() > 0 && seq_lt(seg.seq, self.rcv_nxt) {
                    // tcp_send_dupack: quick-ACK mode and a D-SACK of the old part.
                    self.enter_quickack_mode(TCP_MAX_QUICKACKS);
                    let dup_end = if seq_gt(end, self.rcv_nxt) { self.rcv_nxt } else { end };
                    self.dsack_set(seg.seq, dup_end);
                }
                // tcp_send_dupack / the challenge ACK for a SYN: both an ACK.
                self.send_ack(now, out);
            }
            return;
        }
        // Step 2: RST (RFC 5961 §3.2: exact match or challenge).
        if f.contains(Flags::RST) {
            let exact = seg.seq == self.rcv_nxt
                || (seg.seq == self.rcv_nxt.wrapping_sub(1)
                    && matches!(self.state, TcpState::CloseWait | TcpState::LastAck | TcpState::Closing));
            if exact {
                self.tcp_reset();
            } else {
                self.send_ack(now, out);
            }
            return;
        }
        // Step 4: a SYN in a synchronized state draws a challenge ACK, except the SYN-ACK
        // that completes a simultaneous open.
        if f.contains(Flags::SYN) {
            let sim_open_synack = self.state == TcpState::SynRecv
                && f.contains(Flags::ACK)
                && seg.seq.wrapping_add(1) == self.rcv_nxt
                && seg.ack == self.snd_nxt;
            if !sim_open_synack {
                self.send_ack(now, out);
                return;
            }
        }
        if !f.contains(Flags::ACK) {
            return;
        }
        // A Fast Open child's snd_una is past its SYN-ACK already: an ACK of nothing new is
        // acceptable to `tcp_ack`.
        let old_ack = if self.passive_fastopen() { seq_lt(seg.ack, self.snd_una) } else { seq_le(seg.ack, self.snd_una) };
        if self.state == TcpState::SynRecv && (old_ack || seq_gt(seg.ack, self.snd_nxt)) {
            out.push(Conn::reset_reply(seg));
            return;
        }
        // tcp_store_ts_recent (RFC 7323 §4.3).
        if self.ts_ok {
            if let Some((tsval, _)) = seg.options.timestamps {
                if seq_le(seg.seq, self.rcv_wup) {
                    self.ts_recent = tsval;
                }
            }
        }
        let was_syn_recv = self.state == TcpState::SynRecv;
        if !self.tcp_ack(now, seg, out) {
            return;
        }
        if was_syn_recv {
            self.snd_wnd = (seg.window as u32) << self.snd_wscale;
            self.snd_wl1 = seg.seq;
            self.set_state(TcpState::Established, Cause::RcvAckOfSyn);
            if !self.rcv_synrecv_state_fastopen(now) {
                self.init_transfer(now);
            }
        }
        let fin_acked = self.fin_queued && self.snd_una == self.write_seq;
        match self.state {
            TcpState::FinWait1 if fin_acked => {
                self.set_state(TcpState::FinWait2, Cause::RcvAckOfFin);
                self.shutdown |= SEND_SHUTDOWN;
                if self.orphan {
                    // Data after close(): the peer must learn it was not read.
                    let data_end = seg.seq.wrapping_add(seg.payload.len());
                    if !seg.payload.is_empty() && seq_gt(data_end, self.rcv_nxt) {
                        out.push(Conn::reset_reply(seg));
                        self.count(crate::tcp::mib::Mib::TcpAbortOnData);
                        self.tcp_done(Cause::Abort);
                        return;
                    }
                    self.keepalive_at = Deadline::at(self.timer_at(now, self.fin_time()));
                }
            }
            TcpState::Closing if fin_acked => {
                self.enter_time_wait(now, Cause::RcvAckOfFin);
                return;
            }
            TcpState::LastAck if fin_acked => {
                self.tcp_done(Cause::RcvAckOfFin);
                return;
            }
            _ => {}
        }
        if !seg.payload.is_empty() || f.contains(Flags::FIN) {
            let mut queue = true;
            if matches!(self.state, TcpState::CloseWait | TcpState::Closing | TcpState::LastAck) && !seq_lt(seg.seq, self.rcv_nxt) {
                queue = false;
            }
            if queue
                && matches!(self.state, TcpState::FinWait1 | TcpState::FinWait2 | TcpState::CloseWait | TcpState::Closing | TcpState::LastAck)
                && self.shutdown & RCV_SHUTDOWN != 0
            {
                let data_end = seg.seq.wrapping_add(seg.payload.len());
                if !seg.payload.is_empty() && seq_gt(data_end, self.rcv_nxt) {
                    // tcp_rcv_state_process: new data after the receive side was shut →
                    // tcp_reset + RST: a local abort, with the errno tcp_reset picks.
                    out.push(Conn::reset_reply(seg));
                    self.count(crate::tcp::mib::Mib::TcpAbortOnData);
                    self.tcp_reset_cause(Cause::Abort);
                    return;
                }
            }
            if queue {
                self.data_queue(now, seg, out);
            }
        }
        if matches!(self.state, TcpState::Close | TcpState::TimeWait) {
            return;
        }
        self.data_snd_check(now, out);
        self.ack_snd_check(now, out);
    }

    /// `tcp_data_snd_check`, after every ACK the connection takes: what the ACK lets go out
    /// is sent (`tcp_push_pending_frames`), then `tcp_check_space`, which so sees the
    /// congestion window the ACK grew and the flight the push left.
    fn data_snd_check(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        self.write_xmit(now, out);
        self.check_space(now);
    }

    /// `tcp_ack`. False when the segment must be discarded (it acknowledges unsent data).
    fn tcp_ack(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) -> bool {
        let ack = seg.ack;
        if seq_gt(ack, self.snd_nxt) {
            return false;
        }
        let prior_snd_una = self.snd_una;
        if seq_lt(ack, prior_snd_una) {
            // An old ACK: its SACK blocks still count, and may reveal losses (tcp_ack's
            // `old_ack`: sacktag, fastretrans_alert, tcp_xmit_recovery; cwnd untouched).
            let sacked = self.sacktag(now, seg, prior_snd_una);
            if sacked.newly > 0 && self.packets_out() > 0 {
                let mut f = AckFlags { sacked, ..AckFlags::default() };
                self.old_ack_alert(now, &mut f);
                self.xmit_recovery(now, &f, out);
            }
            return true;
        }
        let prior_packets = self.packets_out();
        // tcp_ack_update_window
        let nwin = (seg.window as u32) << self.snd_wscale;
        let mut win_changed = false;
        if seq_lt(self.snd_una, ack) || seq_gt(seg.seq, self.snd_wl1) || (seg.seq == self.snd_wl1 && (nwin > self.snd_wnd || nwin == 0)) {
            win_changed = nwin != self.snd_wnd;
            self.snd_wnd = nwin;
            if win_changed && seq_lt(self.snd_nxt, self.write_seq) {
                self.slow_start_after_idle_check(now);
            }
            self.snd_wl1 = seg.seq;
            if nwin > self.max_window {
                self.max_window = nwin;
                self.sync_mss();
            }
        }
        self.rare.set(|r| &mut r.probes_out, 0);
        self.rcv_tstamp = now;
        let prior_fack = self.rtx_skbs.highest_sack_seq(prior_snd_una);
        let sacked = self.sacktag(now, seg, prior_snd_una);
        let acked = ack.wrapping_sub(self.snd_una);
        let tsecr = seg.options.timestamps.map(|(_, ecr)| ecr).filter(|&ecr| self.ts_ok && ecr != 0);
        let mut f = AckFlags { sacked, tsecr, ece: self.ecn_echoed(seg.flags), ..AckFlags::default() };
        self.ecn_accept_cwr(seg);
        if acked > 0 {
            self.clean_rtx_queue(now, seg, acked, prior_fack, &mut f);
        } else if seg.payload.is_empty() && !seg.flags.contains(Flags::FIN) && !win_changed && prior_packets > 0 {
            f.dupack = true;
        }
        if prior_packets > 0 {
            self.ack_congestion(now, &mut f);
            self.xmit_recovery(now, &f, out);
        }
        if prior_packets == 0 && seq_lt(self.snd_nxt, self.write_seq) {
            self.ack_probe(now);
        }
        true
    }

    /// The acknowledged part of `tcp_ack`: `tcp_clean_rtx_queue`, the RTT sample, write
    /// space and the retransmission timer. `prior_fack`: `tcp_highest_sack_seq` before the
    /// ACK's SACK blocks were tagged.
    fn clean_rtx_queue(&mut self, now: SimTime, seg: &Segment, acked: u32, prior_fack: u32, f: &mut AckFlags) {
        let ack = seg.ack;
        let mut data_acked = acked as u64;
        let syn_acked = matches!(self.state, TcpState::SynSent | TcpState::SynRecv) && self.snd_una == self.iss;
        if syn_acked {
            data_acked -= 1; // our SYN
        }
        if self.fin_queued && ack == self.write_seq {
            data_acked -= 1; // our FIN
        }
        self.sndq.drop_front(data_acked);
        let mut freed = self.rtx_skbs.ack(self.snd_una, ack);
        self.snd_una = ack;
        self.sk_err_soft = None;
        if self.ack_update_rtt(now, seg, freed) {
            self.rare.set(|r| &mut r.backoff, 0);
        }
        self.scoreboard_acked(now, &mut freed, prior_fack);
        f.una_advanced = true;
        f.data_acked = data_acked > 0;
        f.acked = freed;
        // The SYN's skb is no sample: a passive child's queue starts after it
        // (`tcp_create_openreq_child`).
        let last_sent = freed.last_sent.filter(|_| !freed.retrans && !syn_acked);
        self.ca_pkts_acked(now, seg, last_sent);
        self.rare.set(|r| &mut r.retransmits, 0);
        if self.ca_state == CaState::Open {
            self.rare.set(|r| &mut r.retrans_stamp, None);
        }
        if let Some(h) = self.rare.get().tlp_high_seq {
            if seq_ge(ack, h) {
                self.rare.set(|r| &mut r.tlp_high_seq, None);
            }
        }
        // tcp_clean_rtx_queue: an emptied retransmit queue stops `Busy`.
        if self.packets_out() == 0 {
            self.chrono_stop(now, crate::tcp::chrono::ChronoKind::Busy);
        }
    }

    /// `tcp_set_xmit_timer`, once the ACK's state changes are made: the loss probe where
    /// it may be sent, else the RTO restarted (`tcp_schedule_loss_probe`), none with
    /// nothing in flight.
    pub(super) fn set_xmit_timer(&mut self, now: SimTime) {
        if self.packets_out() == 0 {
            if self.rtx_kind != RtxTimer::Probe0 {
                self.rtx_at = Deadline::NONE;
            }
        } else {
            self.schedule_loss_probe(now);
        }
    }

    /// `tcp_ack_probe`: an ACK while persisting. If the window now takes the next segment the
    /// probe timer stops; otherwise it is re-armed with the current backoff.
    fn ack_probe(&mut self, now: SimTime) {
        let data_end = self.data_end();
        let len = if seq_lt(self.snd_nxt, data_end) { data_end.wrapping_sub(self.snd_nxt).min(self.mss) } else { 0 };
        let fin = self.fin_queued && self.snd_nxt.wrapping_add(len) == data_end;
        let end = self.snd_nxt.wrapping_add(len).wrapping_add(fin as u32);
        if seq_le(end, self.snd_una.wrapping_add(self.snd_wnd)) {
            self.rare.set(|r| &mut r.backoff, 0);
            self.rare.set(|r| &mut r.probes_tstamp, None);
            if self.rtx_kind == RtxTimer::Probe0 {
                self.rtx_at = Deadline::NONE;
            }
        } else {
            let when = timeouts::probe0_when(self.rto, self.rare.get().backoff, self.rto_max());
            let when = self.clamp_probe0_to_user_timeout(now, when);
            self.arm_rtx(now, RtxTimer::Probe0, when);
        }
    }

    /// `tcp_ack_update_rtt` (tcp_input.c): every ACK that frees skbs is an RTT sample, from
    /// the first of them never retransmitted (`seq_rtt_us` from `first_ackt`), unless one
    /// that was retransmitted is among them (Karn, `FLAG_RETRANS_DATA_ACKED`); failing that,
    /// from the echoed timestamp (`rcv_tsecr`, RFC 7323 RTTM). Sets the RTO
    /// (`tcp_rtt_estimator`, `tcp_set_rto`).
    fn ack_update_rtt(&mut self, now: SimTime, seg: &Segment, acked: Acked) -> bool {
        if acked.skbs == 0 {
            return false;
        }
        let mut m = acked.first_sent.filter(|_| !acked.retrans).map(|sent| now.since(sent).as_micros());
        if m.is_none() && self.ts_ok {
            if let Some((_, tsecr)) = seg.options.timestamps {
                let delta_ms = self.tsval(now).wrapping_sub(tsecr);
                if tsecr != 0 && (delta_ms as i32) >= 0 {
                    m = Some((delta_ms as u64).max(1) * 1000);
                }
            }
        }
        let Some(us) = m else { return false };
        self.rtt.sample(us, self.rto_min_us(), self.snd_una, self.snd_nxt);
        self.rto = self.rtt.rto(self.rto_max(), self.jiffies());
        true
    }

    /// `tcp_data_queue`: in-order data is queued (with the out-of-order segments it makes
    /// contiguous), duplicates and out-of-window data are ACKed at once, the rest goes to
    /// the out-of-order queue.
    fn data_queue(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) {
        self.rcv_rtt_measure_ts(now, seg);
        let fin = seg.flags.contains(Flags::FIN);
        let mut seq = seg.seq;
        let mut payload = seg.payload.clone();
        if seg.flags.contains(Flags::SYN) {
            seq = seq.wrapping_add(1);
        }
        let len = payload.len();
        let end = seq.wrapping_add(len).wrapping_add(fin as u32);
        if seq_le(end, self.rcv_nxt) {
            // A retransmission of data already received.
            self.dsack_set(seq, end);
            self.out_of_window();
            return;
        }
        if !seq_lt(seq, self.rcv_nxt.wrapping_add(self.receive_window())) && seq != self.rcv_nxt {
            self.out_of_window();
            return;
        }
        if seq_lt(seq, self.rcv_nxt) {
            // Partly old: seq < rcv_nxt < end_seq.
            self.dsack_set(seq, self.rcv_nxt);
            let skip = self.rcv_nxt.wrapping_sub(seq);
            payload = slice_payload(&payload, skip.min(len), len.saturating_sub(skip));
            seq = self.rcv_nxt;
        }
        if seq == self.rcv_nxt {
            if self.receive_window() == 0 && !(payload.is_empty() && fin) {
                self.out_of_window();
                return;
            }
            if !payload.is_empty() && self.rmem_alloc() > self.rcvbuf {
                self.drop_nomem();
                return;
            }
            self.queue_inorder(now, payload, fin, seg.ecn, out);
            return;
        }
        // tcp_data_queue_ofo
        self.data_ecn_check(seg.ecn);
        if !payload.is_empty() && self.rmem_alloc() > self.rcvbuf {
            self.drop_nomem();
            return;
        }
        let kept = self.rcvq.insert_ooo(seq, payload);
        if fin {
            self.rare.set(|r| &mut r.ooo_fin, Some(seq.wrapping_add(len)));
        }
        if let Some(coalesced) = kept.filter(|_| self.sack_ok && len > 0) {
            // tcp_data_queue_ofo: a SACK flow's window grows on out-of-order data too, the
            // truesize adjusted only for a coalesced segment.
            self.grow_window(len, coalesced);
        }
        self.ack_pending = true;
    }

    /// Queue in-order data at `rcv_nxt`, pull what the out-of-order queue makes contiguous,
    /// process a FIN that becomes in sequence. `ecn`: the IP ECN field the data came with.
    fn queue_inorder(&mut self, now: SimTime, payload: Payload, fin: bool, ecn: Ecn, out: &mut Vec<Segment>) {
        let len = payload.len();
        self.rcvq.push_inorder(payload);
        self.rcv_nxt = self.rcv_nxt.wrapping_add(len);
        if len > 0 {
            self.event_data_recv(now, len, ecn);
        }
        let mut fin_now = fin;
        if self.rcvq.has_ooo() {
            self.rcv_nxt = self.rcvq.pull_ooo(self.rcv_nxt);
            if !self.rcvq.has_ooo() {
                // RFC 5681 §4.2: ACK at once when a gap is filled.
                self.ack_now = true;
            }
        }
        if self.rare.get().ooo_fin == Some(self.rcv_nxt) && !self.rcvq.has_ooo() {
            fin_now = true;
            self.rare.set(|r| &mut r.ooo_fin, None);
        }
        if fin_now {
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            self.tcp_fin(now, out);
        }
        self.wake_keyed(Wakeup::DataReady.key());
    }

    /// `tcp_oow_rate_limited` (tcp_input.c): an out-of-window segment that occupies no
    /// sequence space (or a SYN) is answered at most once per `tcp_invalid_ratelimit` (500 ms), so that two
    /// stacks cannot ACK each other in a loop. Data segments are always answered.
    fn oow_rate_limited(&mut self, now: SimTime, seg: &Segment) -> bool {
        if seg.seq_len() > 0 && !seg.flags.contains(Flags::SYN) {
            return false;
        }
        let now_ms = ((now.as_nanos() / 1_000_000) as u32).max(1);
        if self.rare.get().last_oow_ack_ms != 0 && now_ms.wrapping_sub(self.rare.get().last_oow_ack_ms) < TCP_INVALID_RATELIMIT_MS {
            return true;
        }
        self.rare.set(|r| &mut r.last_oow_ack_ms, now_ms);
        false
    }

    /// `tcp_dsack_set` (tcp_input.c): remember the duplicate range `seq..end` for the next
    /// ACK's first SACK block, if SACK was negotiated (`tcp_is_sack`; `tcp_dsack` = 1).
    fn dsack_set(&mut self, seq: u32, end: u32) {
        if self.sack_ok && seq_lt(seq, end) {
            self.rare.set(|r| &mut r.dsack, (seq, end));
        }
    }

    /// `tcp_try_rmem_schedule` failed: drop the data and ACK at once with a zero window
    /// (ICSK_ACK_NOMEM | ICSK_ACK_NOW).
    fn drop_nomem(&mut self) {
        self.ack_nomem = true;
        self.ack_pending = true;
        self.ack_now = true;
    }

    /// `out_of_window`: duplicate or unacceptable data: quick-ACK mode, ACK at once.
    fn out_of_window(&mut self) {
        self.enter_quickack_mode(TCP_MAX_QUICKACKS);
        self.ack_pending = true;
        self.ack_now = true;
    }

    /// `tcp_enter_quickack_mode`: quick-ACK up to `max_quickacks` segments.
    pub(super) fn enter_quickack_mode(&mut self, max_quickacks: u8) {
        self.incr_quickack(max_quickacks);
        self.pingpong = false;
        self.ato = Dur::from_millis(self.profile.tcp_delack_min_ms);
    }

    /// `tcp_incr_quickack` (tcp_input.c): ACK the next `rcv_wnd / (2·rcv_mss)` segments at
    /// once, at most 16; a quotient of 0 becomes 2, but 1 stays 1: a 2896-byte window with
    /// 1000-byte segments (a 4096-byte SO_RCVBUF) quick-ACKs one segment, not two. At most
    /// `max_quickacks`.
    fn incr_quickack(&mut self, max_quickacks: u8) {
        let q = match self.rcv_wnd / (2 * self.rcv_mss.max(1)) {
            0 => 2,
            n => n,
        }
        .min(u32::from(max_quickacks)) as u8;
        self.quick = self.quick.max(q);
    }

    /// `tcp_event_data_recv`: schedule an ACK, adapt `ato` to the arrival pattern, note a CE
    /// mark (`tcp_data_ecn_check`), grow the window (`tcp_grow_window`), track the peer's
    /// segment size (`tcp_measure_rcv_mss`).
    fn event_data_recv(&mut self, now: SimTime, len: u32, ecn: Ecn) {
        self.ack_pending = true;
        self.measure_rcv_mss(len);
        let ato_min = Dur::from_millis(self.profile.tcp_delack_min_ms);
        if self.ato == Dur::ZERO {
            self.incr_quickack(TCP_MAX_QUICKACKS);
            self.ato = ato_min;
        } else {
            let m = now.since(self.lrcvtime);
            if m <= Dur(ato_min.as_nanos() / 2) {
                self.ato = Dur(self.ato.as_nanos() / 2) + Dur(ato_min.as_nanos() / 2);
            } else if m < self.ato {
                self.ato = (Dur(self.ato.as_nanos() / 2) + m).min(self.rto);
            } else if m > self.rto {
                self.incr_quickack(TCP_MAX_QUICKACKS);
            }
        }
        self.lrcvtime = now;
        self.data_ecn_check(ecn);
        if len >= 128 {
            self.grow_window(len, true);
        }
    }

    /// `tcp_measure_rcv_mss` (tcp_input.c), for a segment of `len` bytes at least `rcv_mss`:
    /// when it changes `rcv_mss`, `scaling_ratio` is measured on its skb
    /// (`len << 8 / truesize`, [`super::rcvmem::measured_ratio`]) and, if the ratio moved,
    /// the window clamp follows the buffer (`tcp_set_window_clamp(tcp_win_from_space(sk_rcvbuf))`,
    /// with `rcvq_space` no larger). `rcv_mss` is capped at `advmss`. Shorter segments
    /// (`last_seg_size`) are not modelled.
    fn measure_rcv_mss(&mut self, len: u32) {
        if len < self.rcv_mss {
            return;
        }
        if len != self.rcv_mss {
            let old = self.scaling_ratio;
            self.scaling_ratio = super::rcvmem::measured_ratio(len);
            if self.scaling_ratio != old {
                self.set_window_clamp(self.full_space());
                self.rcvq_space = self.rcvq_space.min(self.window_clamp);
            }
        }
        self.rcv_mss = len.min(u32::from(self.advmss));
    }

    /// `tcp_grow_window` (tcp_input.c): raise `rcv_ssthresh` towards the smaller of the
    /// window clamp and the free space (`tcp_space`), and ACK this segment at once
    /// (`icsk_ack.quick |= 1`) so the peer learns of the larger window. The step is two
    /// `advmss` (at least two segments of this size) if the skb's payload is worth its
    /// truesize (`tcp_win_from_space(truesize) <= len`), else `__tcp_grow_window`'s. In order,
    /// `truesize_adjust` leaves the payload only (the head is freed by coalescing), so the
    /// test always holds; out of order (`adjust` false) the whole truesize counts.
    fn grow_window(&mut self, len: u32, adjust: bool) {
        let room = self.window_clamp.min(self.tcp_space()).saturating_sub(self.rcv_ssthresh);
        if room == 0 {
            return;
        }
        let truesize = if adjust { len } else { super::rcvmem::skb_truesize(len) };
        let incr = if self.win_from_space(truesize) <= len { 2 * u32::from(self.advmss) } else { self.grow_window_slow(len, truesize) };
        if incr > 0 {
            self.rcv_ssthresh += room.min(incr.max(2 * len));
            self.quick |= 1;
        }
    }

    /// `__tcp_grow_window`: a segment whose truesize outweighs its payload still grows the
    /// window while `rcv_ssthresh` is below the share of `tcp_rmem[2]` it would fill.
    fn grow_window_slow(&self, len: u32, truesize: u32) -> u32 {
        let mut truesize = self.win_from_space(truesize) >> 1;
        let mut window = self.win_from_space(self.profile.tcp_rmem[2]) >> 1;
        while self.rcv_ssthresh <= window {
            if truesize <= len {
                return 2 * self.rcv_mss;
            }
            truesize >>= 1;
            window >>= 1;
        }
        0
    }

    /// `tcp_rcv_rtt_measure_ts`: the receiver's RTT from the echo of our timestamp on a
    /// full-sized segment (feeds receive-buffer autotuning).
    fn rcv_rtt_measure_ts(&mut self, now: SimTime, seg: &Segment) {
        let Some((_, tsecr)) = seg.options.timestamps else { return };
        if !self.ts_ok || tsecr == 0 || tsecr == self.rcv_rtt_last_tsecr {
            return;
        }
        self.rcv_rtt_last_tsecr = tsecr;
        if seg.payload.len() < self.rcv_mss {
            return;
        }
        let delta_ms = self.tsval(now).wrapping_sub(tsecr) as i32;
        if delta_ms < 0 {
            return;
        }
        let m = (delta_ms as u64 * 1000).clamp(1, (u32::MAX >> 4) as u64) as u32;
        // tcp_rcv_rtt_update: gain 1/8, 8× scaled.
        self.rcv_rtt_us8 = if self.rcv_rtt_us8 == 0 {
            m << 3
        } else {
            let mut v = self.rcv_rtt_us8 as i64;
            v += m as i64 - (v >> 3);
            v.clamp(1, u32::MAX as i64) as u32
        };
    }

    /// `tcp_fin`.
    fn tcp_fin(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        self.ack_pending = true;
        self.shutdown |= RCV_SHUTDOWN;
        self.done = true;
        match self.state {
            TcpState::SynRecv | TcpState::Established => {
                self.set_state(TcpState::CloseWait, Cause::RcvFin);
                self.pingpong = true;
            }
            TcpState::FinWait1 => {
                self.send_ack(now, out);
                self.set_state(TcpState::Closing, Cause::RcvFin);
            }
            TcpState::FinWait2 => {
                self.send_ack(now, out);
                self.enter_time_wait(now, Cause::RcvFin);
            }
            _ => {}
        }
        self.rcvq.purge_ooo();
        self.rare.set(|r| &mut r.ooo_fin, None);
        self.wake();
    }

    /// `tcp_time_wait(TCP_TIME_WAIT)`: the timewait socket holds the 4-tuple for
    /// `TCP_TIMEWAIT_LEN`; the fd's socket is done (CLOSE, both directions shut).
    pub(super) fn enter_time_wait(&mut self, now: SimTime, cause: Cause) {
        self.set_state(TcpState::TimeWait, cause);
        self.shutdown = SHUTDOWN_MASK;
        self.rtx_at = Deadline::NONE;
        self.delack_at = Deadline::NONE;
        self.ack_pending = false;
        self.keepalive_at = Deadline::at(self.timer_at(now, Dur::from_secs(self.profile.tcp_timewait_len_s)));
    }

    /// `tcp_reset`: the error by state (ECONNREFUSED in SYN_SENT, EPIPE in CLOSE_WAIT,
    /// ECONNRESET otherwise), write queue purged, CLOSE. Received data stays readable.
    fn tcp_reset(&mut self) {
        self.tcp_reset_cause(Cause::RcvRst);
    }

    fn tcp_reset_cause(&mut self, cause: Cause) {
        let err = match self.state {
            TcpState::SynSent => Errno::ECONNREFUSED,
            TcpState::CloseWait => Errno::EPIPE,
            TcpState::Close => return,
            _ => Errno::ECONNRESET,
        };
        self.done_with_error(err, cause);
    }

    /// `__tcp_ack_snd_check`: ACK now (two full segments, quick-ACK mode, a filled gap,
    /// out-of-order data) or arm the delayed ACK.
    fn ack_snd_check(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        if !self.ack_pending {
            return;
        }
        let two_segments = self.rcv_nxt.wrapping_sub(self.rcv_wup) > self.rcv_mss && self.compute_window() >= self.rcv_wnd;
        let quickack = self.quick > 0 && !self.pingpong;
        if two_segments || quickack || self.ack_now || self.rcvq.has_ooo() {
            self.send_ack(now, out);
        } else {
            self.send_delayed_ack(now, out);
        }
    }

    /// `tcp_send_delayed_ack`: `ato` bounded by 500 ms (200 ms when interactive) and by the
    /// RTT, at most `tcp_delack_max`; an earlier pending deadline is kept.
    fn send_delayed_ack(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let delack_min = Dur::from_millis(self.profile.tcp_delack_min_ms);
        let delack_max = Dur::from_millis(self.profile.tcp_delack_max_ms);
        let mut ato = self.ato;
        if ato > delack_min {
            let mut max_ato = if self.pingpong { delack_max } else { Dur::from_millis(500) };
            if self.rtt.has_sample() {
                let rtt = self.jiffies().round_up(Dur::from_micros(self.rtt.srtt_us() as u64)).max(delack_min);
                max_ato = max_ato.min(rtt);
            }
            ato = ato.min(max_ato);
        }
        ato = ato.min(delack_max);
        let mut at = self.timer_at(now, ato);
        if let Some(pending) = self.delack_at.get() {
            if pending <= now + Dur(ato.as_nanos() / 4) {
                self.send_ack(now, out);
                return;
            }
            at = at.min(pending);
        }
        self.delack_at = Deadline::at(at);
    }

    /// `tcp_timewait_state_process` (tcp_minisocks.c), `TCP_TW_SYN`: in TIME_WAIT a SYN
    /// (no ACK, no RST) above `rcv_nxt`, or with a timestamp newer than `ts_recent`, may
    /// open a new incarnation of the 4-tuple; the listener answers it with ISN
    /// `tw_snd_nxt + 65535 + 2` (never 0). No PAWS in the model.
    pub fn timewait_syn_isn(&self, seg: &Segment) -> Option<u32> {
        let f = seg.flags;
        if self.state != TcpState::TimeWait || !f.contains(Flags::SYN) || f.intersects(Flags::ACK | Flags::RST) {
            return None;
        }
        let newer_ts = self.ts_ok && seg.options.timestamps.is_some_and(|(tsval, _)| (self.ts_recent.wrapping_sub(tsval) as i32) < 0);
        if !seq_gt(seg.seq, self.rcv_nxt) && !newer_ts {
            return None;
        }
        Some(self.snd_nxt.wrapping_add(65535 + 2).max(1))
    }

    /// The timewait socket is replaced by a new incarnation (`inet_twsk_deschedule_put`).
    pub fn timewait_kill(&mut self) {
        self.set_state(TcpState::Close, Cause::RcvSyn);
        self.keepalive_at = Deadline::NONE;
    }

    /// `tcp_timewait_state_process` for the TIME_WAIT substate (tcp_rfc1337 = 0).
    fn rcv_timewait(&mut self, now: SimTime, seg: &Segment, out: &mut Vec<Segment>) {
        let f = seg.flags;
        let tw_len = Dur::from_secs(self.profile.tcp_timewait_len_s);
        if f.contains(Flags::RST) {
            if seg.seq == self.rcv_nxt {
                self.set_state(TcpState::Close, Cause::RcvRst);
                self.keepalive_at = Deadline::NONE;
            }
            return;
        }
        if f.contains(Flags::SYN) && !f.contains(Flags::ACK) {
            // An old duplicate, or a new SYN with no listener to take it: TCP_TW_ACK, and
            // the timer is not restarted.
            if !self.oow_rate_limited(now, seg) {
                self.send_ack(now, out);
            }
            return;
        }
        self.keepalive_at = Deadline::at(self.timer_at(now, tw_len));
        if seg.seq == self.rcv_nxt && seg.seq_len() == 0 {
            return; // a bare in-window ACK just restarts the timer
        }
        // tcp_timewait_check_oow_rate_limit.
        if !self.oow_rate_limited(now, seg) {
            self.send_ack(now, out);
        }
    }
}
