//! Loss recovery as `tcp_ack` runs it (net/ipv4/tcp_input.c): the SACK scoreboard
//! (`tcp_sacktag_write_queue`, kept in [`super::buffers::RtxSkbs`]), loss detection (RACK,
//! [`crate::tcp::rack`], for a SACK connection; `tcp_newreno_mark_lost` without SACK), the
//! state machine of `tcp_fastretrans_alert` (Open, Disorder, Recovery; Loss is entered by the
//! RTO), the window during recovery (`tcp_cong_control` → PRR, [`crate::tcp::cc::prr`]) and
//! the retransmission of what was marked lost (`tcp_xmit_retransmit_queue`), RACK's
//! reordering timer (`tcp_rack_reo_timeout`), and where the undo of a spurious reduction
//! ([`super::undo`]) is tried.

use super::buffers::{Acked, RackSample, Sacked};
use super::undo::Undo;
use super::{Conn, RtxTimer};
use crate::tcp::cc::prr::{self, Delivery, Prr};
use crate::tcp::cc::{CaState, INFINITE_SSTHRESH};
use crate::tcp::rack::{Rack, REORDERING};
use crate::tcp::segment::{seq_ge, seq_gt, seq_lt, Segment};
use crate::tcp::timeouts;
use crate::time::{Dur, SimTime};

/// What one ACK told the sender: the `flag` bits and counts `tcp_ack` gathers.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct AckFlags {
    /// `FLAG_SND_UNA_ADVANCED`.
    pub una_advanced: bool,
    /// `FLAG_DATA_ACKED`: data (not only a SYN) was newly acknowledged.
    pub data_acked: bool,
    /// A duplicate ACK (`num_dupack` = 1): no data, no window change, nothing acked.
    pub dupack: bool,
    /// Skbs freed by the cumulative ACK, and those of them not SACKed before.
    pub acked: Acked,
    /// Skbs newly SACKed (`FLAG_DATA_SACKED` when non-zero).
    pub sacked: Sacked,
    /// Skbs newly marked lost.
    pub newly_lost: u32,
    /// `FLAG_LOST_RETRANS`: loss detection found a retransmission lost again
    /// (`tcp_identify_packet_loss`: `retrans_out` fell).
    pub lost_retrans: bool,
    /// RACK armed its reordering timer: the ACK leaves the timer alone (`tcp_rack_mark_lost`
    /// clears `FLAG_SET_XMIT_TIMER`).
    pub reo_armed: bool,
    /// The echoed timestamp (`rx_opt.rcv_tsecr`), when timestamps are on and it is not 0.
    pub tsecr: Option<u32>,
    /// F-RTO step 2.b: new data goes out before any retransmission (`REXMIT_NEW`).
    pub rexmit_new: bool,
    /// `FLAG_ECE`: the ACK echoes a CE mark (`tcp_ecn_rcv_ecn_echo`).
    pub ece: bool,
}

impl AckFlags {
    /// `FLAG_ORIG_SACK_ACKED`: a never retransmitted skb at or below `high_seq` was
    /// delivered.
    fn orig_sack_acked(&self, high_seq: u32) -> bool {
        [self.acked.orig_end, self.sacked.orig_end].into_iter().flatten().any(|e| !seq_gt(e, high_seq))
    }
}

/// RACK's, PRR's and undo's state (`tp->rack`, `prior_cwnd`, `prr_delivered`, `prr_out`,
/// `undo_marker`, `undo_retrans`, `prior_ssthresh`), boxed when a connection first meets a
/// SACK or a loss, so that the connection object stays small.
#[derive(Clone, Debug, Default)]
pub(super) struct LossState {
    pub(super) rack: Rack,
    pub(super) prr: Prr,
    pub(super) undo: Undo,
}

impl Conn {
    pub(super) fn loss_state(&mut self) -> &mut LossState {
        self.loss.get_or_insert_with(Default::default)
    }

    /// `tcp_sacktag_write_queue`, from `tcp_ack` when the ACK carries SACK blocks on a SACK
    /// connection; the newest skb delivered advances RACK.
    pub(super) fn sacktag(&mut self, now: SimTime, seg: &Segment, prior_snd_una: u32) -> Sacked {
        if !self.sack_ok || seg.options.sack.is_empty() {
            return Sacked::default();
        }
        self.check_dsack(&seg.options.sack, seg.ack, prior_snd_una);
        let sacked = self.rtx_skbs.sacktag(&seg.options.sack, prior_snd_una);
        self.rack_advance(sacked.rack, sacked.last, now);
        // Not after an RTO, unless it may still be undone.
        if let Some(low) = sacked.reord.filter(|_| self.ca_state != CaState::Loss || self.undo_marked()) {
            let mss = self.mss;
            self.loss_state().rack.check_sack_reordering(low, sacked.fack, mss);
        }
        sacked
    }

    /// The part of `tcp_clean_rtx_queue` that feeds the scoreboard: RACK hears of the
    /// newest skb delivered, and an original skb cumulatively acknowledged below
    /// `prior_fack` (the highest SACKed sequence before this ACK) is reordering ("Non-
    /// retransmitted hole got filled? That's reordering": `tcp_check_sack_reordering`);
    /// without SACK, the cumulative ACK eats the duplicate ACKs counted as SACKed
    /// (`tcp_remove_reno_sacks`: one ACK fills one hole, the rest were counted already).
    pub(super) fn scoreboard_acked(&mut self, now: SimTime, acked: &mut Acked, prior_fack: u32) {
        if self.sack_ok {
            self.rack_advance(acked.rack, acked.last, now);
            if let Some(low) = acked.reord.filter(|&r| seq_lt(r, prior_fack)) {
                let (fack, mss) = (self.rtx_skbs.highest_sack_seq(self.snd_una), self.mss);
                self.loss_state().rack.check_sack_reordering(low, fack, mss);
            }
        } else if acked.skbs > 0 {
            let sacked = self.rtx_skbs.sacked_out();
            acked.delivered = acked.skbs.saturating_sub(sacked).max(1);
            self.rtx_skbs.set_reno_sacked(sacked.saturating_sub(acked.skbs - 1));
        }
    }

    /// `tcp_rack_advance` for the skbs one ACK delivered: the newest by send time moves
    /// `rack.mstamp`, the last one processed (in sequence order) sets `rack.rtt_us`.
    fn rack_advance(&mut self, newest: Option<RackSample>, last: Option<RackSample>, now: SimTime) {
        let min_rtt = self.rtt.min_rtt_us;
        for s in [newest, last.filter(|l| Some(*l) != newest)].into_iter().flatten() {
            self.loss_state().rack.advance(s, now, min_rtt);
        }
    }

    /// `tcp_ack_is_dubious`: a duplicate ACK, SACK news or an ECN echo (`FLAG_CA_ALERT`),
    /// or a state other than Open.
    fn ack_is_dubious(&self, f: &AckFlags) -> bool {
        f.dupack || f.sacked.newly > 0 || f.ece || self.ca_state != CaState::Open
    }

    /// From `tcp_ack` once the cumulative ACK was processed: `tcp_fastretrans_alert` when the
    /// ACK is dubious, then `tcp_cong_control` (PRR in recovery, else the algorithm's
    /// growth). Retransmissions go out from `write_xmit` (`tcp_xmit_recovery`).
    /// The caller has checked that something was in flight (`prior_packets`).
    pub(super) fn ack_congestion(&mut self, now: SimTime, f: &mut AckFlags) {
        if self.ack_is_dubious(f) {
            self.fastretrans_alert(now, f);
        }
        if f.una_advanced && !f.reo_armed {
            self.set_xmit_timer(now);
        }
        self.cong_control(now, f);
        self.update_pacing_rate();
    }

    /// An ACK below `snd_una` that SACKs something new: loss detection only.
    pub(super) fn old_ack_alert(&mut self, now: SimTime, f: &mut AckFlags) {
        if self.ack_is_dubious(f) {
            self.fastretrans_alert(now, f);
        }
    }

    /// `tcp_fastretrans_alert`.
    fn fastretrans_alert(&mut self, now: SimTime, f: &mut AckFlags) {
        if self.packets_out() == 0 {
            self.set_reno_sacked(0);
        }
        // A. An ECN echo proves the congestion: the reduction may not be undone.
        if f.ece {
            self.forget_prior_ssthresh();
        }
        // D. CWR ends once something above high_seq is acknowledged, so that the CWR flag
        // reached the receiver.
        if self.ca_state == CaState::Cwr && seq_ge(self.snd_una, self.high_seq) && self.snd_una != self.high_seq {
            self.end_cwnd_reduction();
            self.set_ca_state(now, CaState::Open);
        }
        // D. Recovery is over once high_seq is acknowledged: undone if it was spurious
        // (`tcp_try_undo_recovery`, which also holds Reno's state), else cwnd = ssthresh.
        if self.ca_state == CaState::Recovery && seq_ge(self.snd_una, self.high_seq) {
            self.set_reno_sacked(0);
            if self.try_undo_recovery(now, f) {
                return;
            }
            self.end_cwnd_reduction();
        }
        // E.
        match self.ca_state {
            CaState::Recovery => {
                if !f.una_advanced {
                    if !self.sack_ok {
                        self.add_reno_sack(f);
                    }
                } else if self.try_undo_partial(now, f) {
                    return;
                }
                if self.try_undo_dsack() {
                    self.try_to_open(now);
                }
                self.identify_packet_loss(now, f);
                // A partial undo reverted the state: a loss now evident starts a new
                // recovery (tcp_time_to_recover).
                if self.ca_state != CaState::Recovery && self.rtx_skbs.lost_out() > 0 {
                    self.enter_recovery(now, f.ece);
                }
            }
            CaState::Loss => {
                self.process_loss(now, f);
                self.identify_packet_loss(now, f);
                // Undone, or a retransmission lost again: on as in Open, into Recovery
                // ("Change state if cwnd is undone or retransmits are lost").
                if self.ca_state == CaState::Open || f.lost_retrans {
                    self.alert_open(now, f);
                }
            }
            CaState::Open | CaState::Disorder | CaState::Cwr => self.alert_open(now, f),
        }
    }

    /// `tcp_process_loss` (its Reno part aside; the exit once `high_seq` is acknowledged is
    /// in [`Self::cong_control`]): an ACK for an original undoes the RTO; with F-RTO (RFC
    /// 5682, SACK-enhanced, `tcp_frto` = 2), an original delivered after the RTO shows it
    /// spurious (3.b); the first ACK advancing `snd_una` sends new data instead of
    /// retransmitting (2.b); a SACK or duplicate ACK for that new data shows the loss real
    /// (3.a).
    fn process_loss(&mut self, now: SimTime, f: &mut AckFlags) {
        let recovered = seq_ge(self.snd_una, self.high_seq);
        if f.una_advanced && self.try_undo_loss(now, f, false) {
            return;
        }
        if !self.frto() {
            return;
        }
        if f.orig_sack_acked(self.high_seq) && self.try_undo_loss(now, f, true) {
            return;
        }
        if seq_gt(self.snd_nxt, self.high_seq) {
            if f.sacked.newly > 0 || f.dupack {
                self.set_frto(false);
            }
        } else if f.una_advanced && !recovered {
            self.high_seq = self.snd_nxt;
            let wnd_end = self.snd_una.wrapping_add(self.snd_wnd);
            if seq_lt(self.snd_nxt, self.data_end()) && seq_gt(wnd_end, self.snd_nxt) {
                f.rexmit_new = true;
                return;
            }
            self.set_frto(false);
        }
    }

    /// `tcp_xmit_recovery`: in recovery or after an RTO, what is marked lost goes out;
    /// F-RTO's new data first, and only that if some went out.
    pub(super) fn xmit_recovery(&mut self, now: SimTime, f: &AckFlags, out: &mut Vec<Segment>) {
        if !matches!(self.ca_state, CaState::Recovery | CaState::Loss) {
            return;
        }
        if f.rexmit_new {
            self.write_xmit(now, out);
            if seq_gt(self.snd_nxt, self.high_seq) {
                return;
            }
            self.set_frto(false);
        }
        self.xmit_retransmit_queue(now, out);
    }

    /// `tcp_fastretrans_alert`'s default case (Open, Disorder, CWR, and Loss falling
    /// through): count Reno's duplicate ACKs, detect losses, and enter recovery if any
    /// (`tcp_time_to_recover`), else `tcp_try_to_open`, where an ECN echo enters CWR.
    /// Recovery retransmits what is lost (`REXMIT_LOST`), not F-RTO's new data.
    fn alert_open(&mut self, now: SimTime, f: &mut AckFlags) {
        if !self.sack_ok {
            if f.una_advanced {
                self.set_reno_sacked(0);
            }
            self.add_reno_sack(f);
        }
        if matches!(self.ca_state, CaState::Open | CaState::Disorder) {
            self.try_undo_dsack();
        }
        self.identify_packet_loss(now, f);
        if self.rtx_skbs.lost_out() == 0 {
            if f.ece {
                self.enter_cwr(now);
            }
            if self.ca_state != CaState::Cwr {
                self.try_keep_open(now);
            }
            return;
        }
        self.enter_recovery(now, f.ece);
        f.rexmit_new = false;
    }

    /// `tcp_add_reno_sack`: without SACK each duplicate ACK counts as one segment SACKed and
    /// delivered, at most `packets_out` − the holes (`tcp_limit_reno_sacked`).
    fn add_reno_sack(&mut self, f: &mut AckFlags) {
        if !f.dupack {
            return;
        }
        let prior = self.rtx_skbs.sacked_out();
        self.rtx_skbs.set_reno_sacked(prior + 1);
        f.acked.delivered += self.rtx_skbs.sacked_out().saturating_sub(prior);
    }

    /// `tcp_reset_reno_sack` and the like: only a connection without SACK counts this way.
    fn set_reno_sacked(&mut self, n: u32) {
        if !self.sack_ok {
            self.rtx_skbs.set_reno_sacked(n);
        }
    }

    /// `tcp_identify_packet_loss`: RACK for a SACK connection (`tcp_rack_mark_lost`), the
    /// head after enough duplicate ACKs or a partial ACK without (`tcp_newreno_mark_lost`).
    fn identify_packet_loss(&mut self, now: SimTime, f: &mut AckFlags) {
        if self.packets_out() == 0 {
            return;
        }
        if !self.sack_ok {
            let lost = match self.ca_state {
                CaState::Recovery => f.una_advanced,
                CaState::Loss => false,
                _ => self.rtx_skbs.sacked_out() >= REORDERING,
            };
            if lost && self.rtx_skbs.mark_head_lost() {
                f.newly_lost += 1;
            }
            return;
        }
        // tcp_rack_mark_lost: scan only when something new was delivered; arm the
        // reordering timer for the skbs not yet late enough.
        if let Some(newest) = self.loss.as_mut().and_then(|l| l.rack.take_advanced()) {
            if let Some(wait_us) = self.rack_detect_loss(now, newest, f) {
                self.arm_reo_timer(now, wait_us);
                f.reo_armed = true;
            }
        }
    }

    /// `icsk_pending == ICSK_TIME_REO_TIMEOUT`.
    fn reo_pending(&self) -> bool {
        self.rtx_at.get().is_some() && self.rtx_kind == RtxTimer::ReoTimeout
    }

    /// `tcp_rack_mark_lost`'s timer (tcp_recovery.c): `usecs_to_jiffies(timeout +
    /// TCP_TIMEOUT_MIN_US)`, the longest wait plus 2 ms rounded up to jiffies, no later than
    /// the RTO (`inet_csk_reset_xmit_timer`'s `max_when`).
    fn arm_reo_timer(&mut self, now: SimTime, wait_us: u64) {
        let wait = Dur::from_micros(wait_us) + timeouts::TCP_TIMEOUT_MIN_US;
        let after = self.jiffies().round_up(wait).min(self.rto);
        self.arm_rtx(now, RtxTimer::ReoTimeout, after);
    }

    /// `tcp_rack_reo_timeout` (tcp_recovery.c): the reordering window has passed for some
    /// skbs; those now lost start recovery (with one delivered segment for PRR) and are
    /// retransmitted; then the RTO is armed again.
    pub(super) fn rack_reo_timeout(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let Some(newest) = self.loss.as_ref().and_then(|l| l.rack.newest()) else { return };
        let prior_in_flight = self.packets_in_flight();
        let mut f = AckFlags::default();
        self.rack_detect_loss(now, newest, &mut f);
        if prior_in_flight != self.packets_in_flight() {
            if self.ca_state != CaState::Recovery {
                self.enter_recovery(now, false);
                f.acked.delivered = 1;
                self.cong_control(now, &f);
            }
            self.xmit_retransmit_queue(now, out);
        }
        if self.rtx_at.get().is_none() || self.rtx_kind != RtxTimer::Rto {
            self.rearm_rto(now);
        }
    }

    /// `tcp_rack_detect_loss` with the window of `tcp_rack_reo_wnd`.
    /// Returns the longest wait of the skbs not yet lost, µs.
    fn rack_detect_loss(&mut self, now: SimTime, newest: RackSample, f: &mut AckFlags) -> Option<u64> {
        let in_recovery = matches!(self.ca_state, CaState::Recovery | CaState::Loss);
        let rack = self.loss.as_ref().map(|l| l.rack).unwrap_or_default();
        let reo_wnd = rack.reo_wnd_us(in_recovery, self.rtx_skbs.sacked_out(), self.rtt.min_rtt_us, self.rtt.srtt_us());
        let rtt_us = self.loss.as_ref().map_or(0, |l| l.rack.rtt_us);
        let (newly, lost_retrans, wait) = self.rtx_skbs.rack_detect_loss(&newest, u64::from(rtt_us), u64::from(reo_wnd), now);
        f.newly_lost += newly;
        f.lost_retrans |= lost_retrans > 0;
        wait
    }

    /// `tcp_try_keep_open`: Disorder while anything is SACKed, lost or retransmitted.
    pub(super) fn try_keep_open(&mut self, now: SimTime) {
        let state = if self.rtx_skbs.sacked_out() + self.rtx_skbs.lost_out() > 0 || self.rtx_skbs.retrans_out() > 0 {
            CaState::Disorder
        } else {
            CaState::Open
        };
        if self.ca_state != state {
            self.set_ca_state(now, state);
            self.high_seq = self.snd_nxt;
        }
    }

    /// `tcp_enter_recovery` → `tcp_init_undo`: what to restore if the recovery proves
    /// spurious (`prior_ssthresh` = `tcp_current_ssthresh`, none after an ECN echo, `ece`);
    /// then `tcp_init_cwnd_reduction`, unless CWR already reduces the window, which
    /// Recovery takes over with its target and PRR state.
    fn enter_recovery(&mut self, now: SimTime, ece: bool) {
        let reducing = self.in_cwnd_reduction();
        let prior_ssthresh = if reducing || ece { 0 } else { self.current_ssthresh() };
        self.init_undo(prior_ssthresh);
        if !reducing {
            self.init_cwnd_reduction();
        }
        self.set_ca_state(now, CaState::Recovery);
    }

    /// `tcp_init_cwnd_reduction`: the reduction lasts until what is now sent is
    /// acknowledged (`high_seq`); the algorithm's ssthresh becomes the target, PRR starts
    /// from the current cwnd, and an ECN peer hears of it (`tcp_ecn_queue_cwr`).
    fn init_cwnd_reduction(&mut self) {
        self.high_seq = self.snd_nxt;
        self.rare.set(|r| &mut r.tlp_high_seq, None);
        self.cwnd.cwnd_cnt = 0;
        let cwnd = self.cwnd.cwnd;
        self.loss_state().prr = Prr::init(cwnd);
        self.cwnd.ssthresh = self.ca.ssthresh(&self.cwnd);
        self.ecn_queue_cwr();
    }

    /// `tcp_enter_cwr` (tcp_input.c): an ECN echo (or a local drop) proves congestion
    /// without a loss: no undo (`prior_ssthresh` and `undo_marker` cleared), and from Open
    /// or Disorder the window is reduced in the CWR state, by PRR as in recovery ("tcp: use
    /// PRR to reduce cwin in CWR state", 3.7).
    pub(super) fn enter_cwr(&mut self, now: SimTime) {
        self.forget_prior_ssthresh();
        if matches!(self.ca_state, CaState::Open | CaState::Disorder) {
            self.forget_undo_marker();
            self.init_cwnd_reduction();
            self.set_ca_state(now, CaState::Cwr);
        }
    }

    /// `tcp_in_cwnd_reduction`: CWR or Recovery, where PRR sets cwnd.
    pub(super) fn in_cwnd_reduction(&self) -> bool {
        matches!(self.ca_state, CaState::Cwr | CaState::Recovery)
    }

    /// `tcp_end_cwnd_reduction`: cwnd is ssthresh once CWR or recovery ends, unless the
    /// recovery was undone.
    fn end_cwnd_reduction(&mut self) {
        if self.cwnd.ssthresh < INFINITE_SSTHRESH && (self.ca_state == CaState::Cwr || self.undo_marked()) {
            self.cwnd.cwnd = prr::end_cwnd(self.cwnd.ssthresh);
        }
    }

    /// `tcp_cong_control`: in CWR or recovery PRR sets cwnd (`tcp_cwnd_reduction`);
    /// otherwise the algorithm grows it when delivery allows (`tcp_may_raise_cwnd`).
    fn cong_control(&mut self, now: SimTime, f: &AckFlags) {
        match self.ca_state {
            CaState::Recovery | CaState::Cwr => {
                let d = Delivery { acked_sacked: f.acked.delivered + f.sacked.newly, newly_lost: f.newly_lost, una_advanced: f.una_advanced };
                let (ssthresh, in_flight) = (self.cwnd.ssthresh, self.packets_in_flight());
                if let Some(cwnd) = self.loss_state().prr.reduction(ssthresh, in_flight, d) {
                    self.cwnd.cwnd = cwnd;
                }
            }
            CaState::Loss => self.cong_avoid(now, f.acked.delivered + f.sacked.newly, true),
            CaState::Open | CaState::Disorder if self.may_raise_cwnd(f) => {
                let limited = self.is_cwnd_limited();
                self.cong_avoid(now, f.acked.delivered + f.sacked.newly, limited);
            }
            CaState::Open | CaState::Disorder => {}
        }
        if self.ca_state == CaState::Loss && seq_ge(self.snd_una, self.high_seq) {
            self.exit_loss(now);
        }
    }

    /// `tcp_may_raise_cwnd`: cwnd grows only on in-order delivery (RFC 5681), unless the
    /// reordering seen is high (`tp->reordering` > `tcp_reordering`): then on any delivery,
    /// a new SACK included (`FLAG_FORWARD_PROGRESS`).
    fn may_raise_cwnd(&self, f: &AckFlags) -> bool {
        f.data_acked || (self.reordering() > REORDERING && f.sacked.newly > 0)
    }

    /// `tp->reordering`: the reordering degree the sender assumes, `TCP_REORDERING` until
    /// the scoreboard exists.
    pub(super) fn reordering(&self) -> u32 {
        self.loss.as_ref().map_or(REORDERING, |l| l.rack.reordering())
    }

    /// `segs` segments were sent while the window is being reduced (`prr_out`, counted by
    /// `tcp_write_xmit` and `tcp_xmit_retransmit_queue` when `tcp_in_cwnd_reduction`).
    pub(super) fn prr_sent(&mut self, segs: u32) {
        if self.in_cwnd_reduction() {
            self.loss_state().prr.sent(segs);
        }
    }

    /// `tcp_xmit_retransmit_queue` (tcp_output.c): the skbs marked lost and not yet
    /// retransmitted, oldest first (`retransmit_skb_hint` only saves the walk), each through
    /// `tcp_retransmit_skb` with as many of its segments as cwnd leaves room for
    /// (`tcp_snd_cwnd` − `tcp_packets_in_flight`), at most `tcp_tso_segs` ("make sure not
    /// sending too bigs TSO packets"), while `retrans_out < lost_out`: every lost skb
    /// retransmitted (the loss probe's skb is not in `retrans_out`, `tcp_send_loss_probe`
    /// calling `__tcp_retransmit_skb` alone). The RTO restarts when the head goes out,
    /// unless the reordering timer is pending. Neither `tcp_pacing_check` (internal pacing,
    /// `SK_PACING_NEEDED`) nor, under `fq`, this loop's `tcp_small_queue_check(sk, skb, 1)`
    /// (twice the new-data limit) is modelled: retransmissions are stamped and held by the
    /// qdisc ([`pacing`](super::pacing)) but never wait for room in it.
    pub(super) fn xmit_retransmit_queue(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let max_segs = self.tso_segs();
        while self.packets_in_flight() < self.cwnd.cwnd && self.rtx_skbs.retrans_out() < self.rtx_skbs.lost_out() {
            let Some(seq) = self.rtx_skbs.next_lost(self.snd_una) else { return };
            let segs = (self.cwnd.cwnd - self.packets_in_flight()).min(max_segs);
            // `if (tcp_retransmit_skb(sk, skb, segs)) break;`
            let sent = self.retransmit_skb(now, seq, segs, out);
            if sent == 0 {
                break;
            }
            self.prr_sent(sent);
            if seq == self.snd_una && !self.reo_pending() {
                self.rearm_rto(now);
            }
        }
    }

    /// `tcp_timeout_mark_lost` (from `tcp_enter_loss`): every skb not SACKed is lost, its
    /// retransmission too.
    pub(super) fn timeout_mark_lost(&mut self) {
        self.set_reno_sacked(0);
        self.rtx_skbs.timeout_mark_lost();
    }

    /// `tcp_non_congestion_loss_retransmit` (tcp_input.c), after `tcp_mark_skb_lost` of
    /// every skb in flight: Loss without a cwnd reduction (ssthresh kept at
    /// `tcp_current_ssthresh`, nothing to undo), and the retransmission queue sent.
    pub(super) fn non_congestion_loss_retransmit(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        self.rtx_skbs.timeout_mark_lost();
        if self.ca_state != CaState::Loss {
            self.high_seq = self.snd_nxt;
            self.cwnd.ssthresh = self.current_ssthresh();
            self.set_ca_state(now, CaState::Loss);
        }
        self.xmit_retransmit_queue(now, out);
    }

    /// Forget the scoreboard's side state (`tcp_disconnect`).
    pub(super) fn clear_recovery(&mut self) {
        self.loss = None;
    }
}
