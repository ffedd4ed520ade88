//! Undo of a spurious window reduction (net/ipv4/tcp_input.c): when the ACKs show that what
//! recovery or an RTO retransmitted had not been lost, only delayed, cwnd and ssthresh go
//! back to what they were before (`tcp_undo_cwnd_reduction`). The evidence is the timestamp
//! the peer echoes: an ACK whose TSecr is older than the first retransmission was caused by
//! an original transmission (`tcp_packet_delayed`); or there was nothing retransmitted at
//! all (`undo_retrans` = 0).
//!
//! Or D-SACKs reported every retransmission a duplicate (`undo_retrans` counts up per
//! retransmission, down per D-SACKed segment: `tcp_try_undo_dsack`).
//!
//! A D-SACK of data below `snd_una` counts down by the segments it covers
//! (`tcp_check_dsack`'s "dumb counting"), one above it by the retransmitted skbs inside it
//! (`tcp_sacktag_one`'s `dup_sack`). F-RTO's part of the RTO's undo is `tcp_process_loss` in `recovery.rs`.

use super::recovery::AckFlags;
use super::Conn;
use crate::tcp::cc::CaState;
use crate::tcp::mib::Mib;
use crate::tcp::segment::{seq_gt, seq_lt};

/// `tp->undo_marker`, `tp->undo_retrans`, `tp->prior_ssthresh`, kept with RACK and PRR in
/// the boxed loss state (`prior_cwnd` is PRR's).
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Undo {
    /// `undo_marker`: `snd_una` when the reduction began; `None` once undone (0 in Linux).
    marker: Option<u32>,
    /// `undo_retrans`: retransmissions not yet shown spurious (−1 when there were none).
    retrans: i32,
    /// `prior_ssthresh`: ssthresh to restore (0: no reduction to undo).
    prior_ssthresh: u32,
    /// `dsack_dups`: segments the peer reported received twice.
    dsack_dups: u32,
    /// `tp->frto`: this RTO may still be shown spurious by F-RTO.
    frto: bool,
}

impl Conn {
    /// `tcp_init_undo`: remember `snd_una`; retransmissions still in flight may be D-SACKed
    /// later (`undo_retrans` = `retrans_out`, or −1, since 0 means "can undo now").
    pub(super) fn init_undo(&mut self, prior_ssthresh: u32) {
        let retrans = self.rtx_skbs.retrans_out() as i32;
        let una = self.snd_una;
        let u = &mut self.loss_state().undo;
        u.marker = Some(una);
        u.retrans = if retrans == 0 { -1 } else { retrans };
        u.prior_ssthresh = prior_ssthresh;
    }

    /// `tcp_retransmit_skb`'s tail: one more retransmission a D-SACK may show spurious (not
    /// the loss probe, which goes through `__tcp_retransmit_skb` alone).
    pub(super) fn undo_retransmitted(&mut self) {
        if let Some(l) = self.loss.as_deref_mut() {
            l.undo.retrans = l.undo.retrans.max(0) + 1;
        }
    }

    /// `tcp_check_dsack`, from `tcp_sacktag_write_queue`: the first SACK block is a D-SACK
    /// if it lies below the ACK, or inside the second block (RFC 2883). For data already
    /// acknowledged (below `prior_snd_una`) and sent after `undo_marker`, `undo_retrans`
    /// drops by the duplicated segments (`tcp_dsack_seen`); for data still queued, by the
    /// retransmitted skbs inside the block (`tcp_sacktag_one` with `dup_sack`).
    pub(super) fn check_dsack(&mut self, blocks: &[(u32, u32)], ack: u32, prior_snd_una: u32) {
        let Some(&(start, end)) = blocks.first() else { return };
        let dsack = seq_lt(start, ack)
            || blocks.get(1).is_some_and(|&(start1, end1)| !seq_gt(end, end1) && !seq_lt(start, start1));
        if !dsack {
            return;
        }
        let Some(dup_segs) = self.dsack_seen(start, end) else { return };
        let u = self.undo();
        let Some(marker) = u.marker.filter(|&m| u.retrans > 0 && seq_gt(end, m)) else { return };
        let dups = if seq_gt(end, prior_snd_una) {
            self.rtx_skbs.retransmitted_within(prior_snd_una, start, end, marker)
        } else {
            dup_segs
        };
        let u = &mut self.loss_state().undo;
        u.retrans = (u.retrans - dups as i32).max(0);
    }

    /// `tcp_dsack_seen`: the segments the D-SACK covers, none if it is dubious (longer than
    /// the largest window, the loss probe's own, or more duplicates than retransmissions).
    fn dsack_seen(&mut self, start: u32, end: u32) -> Option<u32> {
        let len = end.wrapping_sub(start);
        if len > self.max_window {
            return None;
        }
        let dup_segs = if len > self.mss {
            len.div_ceil(self.mss.max(1))
        } else if self.rare.get().tlp_high_seq == Some(end) {
            return None;
        } else {
            1
        };
        let total_retrans = self.rare.get().total_retrans;
        let u = &mut self.loss_state().undo;
        u.dsack_dups += dup_segs;
        (u.dsack_dups <= total_retrans).then_some(dup_segs)
    }

    /// `tcp_try_undo_dsack`: every retransmission was D-SACKed (TCPDSACKUndo).
    pub(super) fn try_undo_dsack(&mut self) -> bool {
        let u = self.undo();
        if u.marker.is_none() || u.retrans != 0 {
            return false;
        }
        self.undo_cwnd_reduction(false);
        self.count(Mib::TcpDsackUndo);
        true
    }

    /// `tcp_try_to_open` after a D-SACK undo (no ECN): forget `retrans_stamp` if nothing
    /// was retransmitted, then `tcp_try_keep_open`.
    pub(super) fn try_to_open(&mut self, now: crate::time::SimTime) {
        self.forget_retrans_stamp();
        self.try_keep_open(now);
    }

    /// `retrans_stamp` is cleared once no retransmission is left to time
    /// (`tcp_any_retrans_done` false).
    fn forget_retrans_stamp(&mut self) {
        if !self.any_retrans_done() {
            self.rare.set(|r| &mut r.retrans_stamp, None);
        }
    }

    /// `tp->frto`.
    pub(super) fn frto(&self) -> bool {
        self.undo().frto
    }

    pub(super) fn set_frto(&mut self, on: bool) {
        self.loss_state().undo.frto = on;
    }

    fn undo(&self) -> Undo {
        self.loss.as_ref().map_or_else(Undo::default, |l| l.undo)
    }

    /// `undo_marker` is set: the reduction can still be undone.
    pub(super) fn undo_marked(&self) -> bool {
        self.undo().marker.is_some()
    }

    /// `tcp_packet_delayed` → `tcp_tsopt_ecr_before(tp, tp->retrans_stamp)`: the ACK echoes
    /// a timestamp older than the first retransmission, so an original was delivered.
    fn packet_delayed(&self, f: &AckFlags) -> bool {
        let (Some(stamp), Some(tsecr)) = (self.rare.get().retrans_stamp, f.tsecr) else { return false };
        seq_lt(tsecr, self.tsval(stamp))
    }

    /// `tcp_may_undo`: marked, and no retransmission left unexplained or the ACK is for an
    /// original transmission.
    fn may_undo(&self, f: &AckFlags) -> bool {
        let u = self.undo();
        u.marker.is_some() && (u.retrans == 0 || self.packet_delayed(f))
    }

    /// `tcp_any_retrans_done`: a retransmission in flight, or the head was ever retransmitted.
    fn any_retrans_done(&self) -> bool {
        self.rtx_skbs.retrans_out() > 0 || self.rtx_skbs.head_ever_retrans()
    }

    /// `tcp_undo_cwnd_reduction`: cwnd back through the algorithm's `undo_cwnd` (for CUBIC
    /// and Reno alike `tcp_reno_undo_cwnd`, max(cwnd, prior_cwnd)), ssthresh back if it was
    /// higher, and then no CWR to announce (`tcp_ecn_withdraw_cwr`); with `unmark_loss`
    /// nothing is lost any more. RACK re-examines the queue.
    fn undo_cwnd_reduction(&mut self, unmark_loss: bool) {
        if unmark_loss {
            self.rtx_skbs.clear_lost();
        }
        let Some(l) = self.loss.as_deref_mut() else { return };
        let mut withdraw_cwr = false;
        if l.undo.prior_ssthresh != 0 {
            self.cwnd.cwnd = self.ca.undo_cwnd(&self.cwnd, l.prr.prior_cwnd());
            if l.undo.prior_ssthresh > self.cwnd.ssthresh {
                self.cwnd.ssthresh = l.undo.prior_ssthresh;
                withdraw_cwr = true;
            }
        }
        l.undo.marker = None;
        l.rack.force_advanced();
        if withdraw_cwr {
            self.ecn_withdraw_cwr();
        }
    }

    /// `tp->prior_ssthresh = 0`: the reduction under way may not be undone (an ECN echo
    /// proved the congestion).
    pub(super) fn forget_prior_ssthresh(&mut self) {
        if let Some(l) = self.loss.as_deref_mut() {
            l.undo.prior_ssthresh = 0;
        }
    }

    /// `tp->undo_marker = 0` (`tcp_enter_cwr`): nothing to undo.
    pub(super) fn forget_undo_marker(&mut self) {
        if let Some(l) = self.loss.as_deref_mut() {
            l.undo.marker = None;
        }
    }

    /// `tcp_try_undo_recovery`, once `high_seq` is acknowledged in Recovery or Loss: undo
    /// (TCPFullUndo, or TCPLossUndo from Loss) if allowed. Then Open, except that Reno holds
    /// the state until something above `high_seq` is acknowledged
    /// (`tcp_is_non_sack_preventing_reopen`). Returns true when the state is held.
    pub(super) fn try_undo_recovery(&mut self, now: crate::time::SimTime, f: &AckFlags) -> bool {
        if self.may_undo(f) {
            self.undo_cwnd_reduction(false);
            self.count(if self.ca_state == CaState::Loss { Mib::TcpLossUndo } else { Mib::TcpFullUndo });
        }
        if self.non_sack_preventing_reopen() {
            return true;
        }
        self.set_ca_state(now, CaState::Open);
        false
    }

    /// `tcp_is_non_sack_preventing_reopen`: without SACK, `snd_una` = `high_seq` holds the
    /// state (RFC 6582's protection from false fast retransmits); `retrans_stamp` is
    /// forgotten if nothing was retransmitted.
    fn non_sack_preventing_reopen(&mut self) -> bool {
        if self.sack_ok || self.snd_una != self.high_seq {
            return false;
        }
        self.forget_retrans_stamp();
        true
    }

    /// `tcp_try_undo_partial`, on a partial ACK in Recovery: an original filled the hole.
    /// With retransmissions still out, only stop marking losses (returns true); else undo
    /// with the losses unmarked (TCPPartialUndo) and leave Recovery (`tcp_try_keep_open`).
    pub(super) fn try_undo_partial(&mut self, now: crate::time::SimTime, f: &AckFlags) -> bool {
        if !(self.undo_marked() && self.packet_delayed(f)) {
            return false;
        }
        if self.rtx_skbs.retrans_out() > 0 {
            return true;
        }
        self.undo_cwnd_reduction(true);
        self.count(Mib::TcpPartialUndo);
        self.try_to_open(now);
        false
    }

    /// `tcp_try_undo_loss`, in Loss: on an ACK advancing `snd_una` if allowed, or when
    /// F-RTO found the RTO spurious (`frto_undo`, TCPSpuriousRTOs too): undo with the losses
    /// unmarked (TCPLossUndo); a SACK connection, or F-RTO's verdict, reopens.
    pub(super) fn try_undo_loss(&mut self, now: crate::time::SimTime, f: &AckFlags, frto_undo: bool) -> bool {
        if !(frto_undo || self.may_undo(f)) {
            return false;
        }
        self.undo_cwnd_reduction(true);
        self.count(Mib::TcpLossUndo);
        if frto_undo {
            self.count(Mib::TcpSpuriousRtos);
        }
        self.rare.set(|r| &mut r.retransmits, 0);
        if self.non_sack_preventing_reopen() {
            return true;
        }
        if frto_undo || self.sack_ok {
            self.set_ca_state(now, CaState::Open);
        }
        true
    }
}
