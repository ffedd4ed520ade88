//! RACK, time-based loss detection (RFC 8985) as Linux runs it with `tcp_recovery` = 1
//! (net/ipv4/tcp_recovery.c): an skb is lost once an skb sent after it has been delivered
//! and more than the most recent RTT plus a reordering window has passed since it was sent.
//! This file keeps `tp->rack` and its rules; the walk over the retransmit queue is
//! [`crate::tcp::conn::buffers::RtxSkbs::rack_detect_loss`].
//!
//! Reordering seen in the SACKs (`tcp_check_sack_reordering`) raises `tp->reordering` and
//! `tp->reord_seen`; until then the window is none during recovery or once `sacked_out`
//! reaches `tp->reordering`, and min_rtt/4 after. Simplification: the window stays one step
//! (`reo_wnd_steps` = 1): no D-SACK adaptation (`tcp_rack_update_reo_wnd`).

use crate::tcp::conn::buffers::RackSample;
use crate::time::SimTime;

/// `tcp_reordering`: the default reordering degree (`TCP_REORDERING`, 3).
pub const REORDERING: u32 = 3;
/// `tcp_max_reordering`: the most `tp->reordering` grows to (300).
pub const MAX_REORDERING: u32 = 300;

/// `tp->rack`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Rack {
    /// The newest delivered skb by send time (`rack.mstamp`, `rack.end_seq`).
    newest: Option<RackSample>,
    /// RTT of the last delivered skb (`rack.rtt_us`).
    pub rtt_us: u32,
    /// Something was delivered since the last detection (`rack.advanced`).
    advanced: bool,
    /// `tp->reordering` once raised above the default (0: `REORDERING`).
    reordering: u32,
    /// `tp->reord_seen`: reorderings seen.
    pub reord_seen: u32,
}

impl Rack {
    /// `tcp_rack_advance`: an skb sent at `s.sent` was delivered (SACKed or ACKed, never
    /// before). A retransmitted one delivered sooner than min_rtt after its retransmission
    /// is ambiguous (the original may have been delivered) and is ignored.
    pub fn advance(&mut self, s: RackSample, now: SimTime, min_rtt_us: u32) {
        let rtt_us = now.since(s.sent).as_micros().min(u64::from(u32::MAX)) as u32;
        if rtt_us < min_rtt_us && s.retrans {
            return;
        }
        self.advanced = true;
        self.rtt_us = rtt_us;
        if self.newest.is_none_or(|n| s.after(&n)) {
            self.newest = Some(s);
        }
    }

    /// The newest delivered skb, if something was delivered since the last call
    /// (`tcp_rack_mark_lost` clears `rack.advanced` before it scans).
    pub fn take_advanced(&mut self) -> Option<RackSample> {
        std::mem::take(&mut self.advanced).then_some(self.newest).flatten()
    }

    /// `tp->rack.advanced = 1` after an undo: the next ACK re-examines the queue.
    pub fn force_advanced(&mut self) {
        self.advanced = self.newest.is_some();
    }

    /// The newest delivered skb (the reordering timer scans without an advance).
    pub fn newest(&self) -> Option<RackSample> {
        self.newest
    }

    /// `tp->reordering`: the reordering degree the sender assumes.
    pub fn reordering(&self) -> u32 {
        if self.reordering == 0 {
            REORDERING
        } else {
            self.reordering
        }
    }

    /// `tcp_check_sack_reordering` (tcp_input.c): an original skb starting at `low_seq` was
    /// delivered below the highest SACKed sequence `fack` (`tcp_highest_sack_seq`): the
    /// degree grows to that distance in segments when it exceeds the current one (at most
    /// `tcp_max_reordering`), and the event is remembered (`reord_seen`).
    pub fn check_sack_reordering(&mut self, low_seq: u32, fack: u32, mss: u32) {
        if !crate::tcp::segment::seq_lt(low_seq, fack) || mss == 0 {
            return;
        }
        let metric = fack.wrapping_sub(low_seq);
        if metric > self.reordering() * mss {
            self.reordering = metric.div_ceil(mss).min(MAX_REORDERING);
        }
        self.reord_seen += 1;
    }

    /// `tcp_enter_loss`: an RTO with `sacked_out` at the default degree brings a raised
    /// degree back to it.
    pub fn loss_resets_reordering(&mut self, sacked_out: u32) {
        if sacked_out >= REORDERING {
            self.reordering = 0;
        }
    }

    /// `tcp_rack_reo_wnd`: until reordering is seen, no window in recovery or after an RTO,
    /// nor once `sacked_out` reached `tp->reordering` (the duplicate-ACK threshold still
    /// counts, `TCP_RACK_NO_DUPTHRESH` being off); else min_rtt/4, at most SRTT.
    pub fn reo_wnd_us(&self, in_recovery: bool, sacked_out: u32, min_rtt_us: u32, srtt_us: u32) -> u32 {
        if self.reord_seen == 0 && (in_recovery || sacked_out >= self.reordering()) {
            return 0;
        }
        (min_rtt_us >> 2).min(srtt_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SimTime {
        SimTime(ms * 1_000_000)
    }

    #[test]
    fn the_newest_by_send_time_wins_and_ties_go_to_the_higher_sequence() {
        let mut r = Rack::default();
        r.advance(RackSample { sent: at(10), end: 5001, retrans: false }, at(20), 10_000);
        r.advance(RackSample { sent: at(10), end: 3001, retrans: false }, at(20), 10_000);
        assert_eq!(r.take_advanced().map(|s| s.end), Some(5001));
        assert_eq!(r.take_advanced(), None, "advanced is cleared by the scan");
        r.advance(RackSample { sent: at(12), end: 1001, retrans: false }, at(22), 10_000);
        assert_eq!(r.newest().map(|s| s.end), Some(1001));
        assert_eq!(r.rtt_us, 10_000);
    }

    #[test]
    fn a_retransmission_delivered_within_min_rtt_is_ambiguous() {
        let mut r = Rack::default();
        r.advance(RackSample { sent: at(30), end: 1001, retrans: true }, at(35), 10_000);
        assert_eq!(r.take_advanced(), None);
        r.advance(RackSample { sent: at(30), end: 1001, retrans: true }, at(41), 10_000);
        assert_eq!(r.take_advanced().map(|s| s.end), Some(1001));
    }

    #[test]
    fn the_reordering_window_closes_in_recovery_and_at_three_sacked() {
        let r = Rack::default();
        assert_eq!(r.reo_wnd_us(false, 1, 10_000, 12_000), 2_500);
        assert_eq!(r.reo_wnd_us(false, 3, 10_000, 12_000), 0);
        assert_eq!(r.reo_wnd_us(true, 0, 10_000, 12_000), 0);
        assert_eq!(r.reo_wnd_us(false, 0, 100_000, 20_000), 20_000);
    }

    /// packetdrill sack/sack-shift-sacked-2-6-8-3-9-nofack: 3001:4001 SACKed after
    /// 8001:9001 is a reordering of 6 segments; from then on the window stays open in
    /// recovery; a reordering within the degree only counts as seen.
    #[test]
    fn a_late_original_raises_the_degree_and_keeps_the_window() {
        let mut r = Rack::default();
        r.check_sack_reordering(9001, 9001, 1000);
        assert_eq!((r.reordering(), r.reord_seen), (3, 0), "not below the highest SACK");
        r.check_sack_reordering(3001, 9001, 1000);
        assert_eq!((r.reordering(), r.reord_seen), (6, 1));
        r.check_sack_reordering(7001, 9001, 1000);
        assert_eq!((r.reordering(), r.reord_seen), (6, 2));
        assert_eq!(r.reo_wnd_us(true, 5, 100_000, 120_000), 25_000);
        r.loss_resets_reordering(3);
        assert_eq!(r.reordering(), 3);
    }
}
