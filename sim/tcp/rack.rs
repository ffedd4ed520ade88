//! RACK, time-based loss detection (RFC 8985) as Linux runs it with `tcp_recovery` = 1
//! (net/ipv4/tcp_recovery.c): an skb is lost once an skb sent after it has been delivered
//! and more than the most recent RTT plus a reordering window has passed since it was sent.
//! This file keeps `tp->rack` and its rules; the walk over the retransmit queue is
//! [`crate::tcp::conn::buffers::RtxSkbs::rack_detect_loss`].
//!
//! Simplification: reordering is never detected (`tp->reord_seen` stays 0, no D-SACK
//! adaptation of the window, `tcp_rack_update_reo_wnd`), so the window is the kernel's
//! initial one: none during recovery or once `sacked_out` reaches `tcp_reordering`, else
//! min_rtt/4.

use crate::tcp::conn::buffers::RackSample;
use crate::time::SimTime;

/// `tcp_reordering`: the default reordering degree (`TCP_REORDERING`, 3).
pub const REORDERING: u32 = 3;

/// `tp->rack`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Rack {
    /// The newest delivered skb by send time (`rack.mstamp`, `rack.end_seq`).
    newest: Option<RackSample>,
    /// RTT of the last delivered skb (`rack.rtt_us`).
    pub rtt_us: u32,
    /// Something was delivered since the last detection (`rack.advanced`).
    advanced: bool,
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

    /// `tcp_rack_reo_wnd`: no window in recovery or after an RTO, nor once `sacked_out`
    /// reached the reordering degree (the duplicate-ACK threshold still counts,
    /// `TCP_RACK_NO_DUPTHRESH` being off); else min_rtt/4, at most SRTT.
    pub fn reo_wnd_us(in_recovery: bool, sacked_out: u32, min_rtt_us: u32, srtt_us: u32) -> u32 {
        if in_recovery || sacked_out >= REORDERING {
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
        assert_eq!(Rack::reo_wnd_us(false, 1, 10_000, 12_000), 2_500);
        assert_eq!(Rack::reo_wnd_us(false, 3, 10_000, 12_000), 0);
        assert_eq!(Rack::reo_wnd_us(true, 0, 10_000, 12_000), 0);
        assert_eq!(Rack::reo_wnd_us(false, 0, 100_000, 20_000), 20_000);
    }
}
