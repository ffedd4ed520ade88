//! Proportional Rate Reduction (RFC 6937), the window during fast recovery as Linux runs it
//! (net/ipv4/tcp_input.c `tcp_init_cwnd_reduction`, `tcp_cwnd_reduction`,
//! `tcp_end_cwnd_reduction`). Not the algorithm's business: CUBIC and Reno only give the
//! target (`ssthresh`); PRR paces the flight down to it, sending in proportion to what the
//! peer reports delivered while the flight is above ssthresh (PRR-CRB), and slow-starting
//! back up to it once below (PRR-SSRB), at most one segment more than was delivered.

/// `tp->prior_cwnd`, `tp->prr_delivered`, `tp->prr_out`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Prr {
    /// cwnd when the reduction began (`prior_cwnd`).
    prior_cwnd: u32,
    /// Segments the peer reported delivered (ACKed or SACKed) since (`prr_delivered`).
    delivered: u32,
    /// Segments sent since (`prr_out`).
    out: u32,
}

/// What one ACK brought, for `tcp_cwnd_reduction`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Segments newly ACKed or SACKed (`rs->acked_sacked`).
    pub acked_sacked: u32,
    /// Segments newly marked lost (`rs->losses`).
    pub newly_lost: u32,
    /// The ACK advanced `snd_una` (`FLAG_SND_UNA_ADVANCED`).
    pub una_advanced: bool,
}

impl Prr {
    /// `tcp_init_cwnd_reduction`: the reduction starts from the current cwnd.
    pub fn init(cwnd: u32) -> Prr {
        Prr { prior_cwnd: cwnd, delivered: 0, out: 0 }
    }

    /// cwnd when the reduction (or the RTO) began, for `undo_cwnd`.
    pub fn prior_cwnd(&self) -> u32 {
        self.prior_cwnd
    }

    /// Segments sent while in the reduction (`tp->prr_out += tcp_skb_pcount(skb)` in
    /// `tcp_write_xmit` and `tcp_xmit_retransmit_queue`).
    pub fn sent(&mut self, segs: u32) {
        self.out = self.out.saturating_add(segs);
    }

    /// `tcp_cwnd_reduction` (tcp_input.c, the 6.x form with `newly_lost`): the new cwnd,
    /// `in_flight + sndcnt`, or `None` when the ACK delivered nothing (cwnd unchanged).
    /// `in_flight` is `tcp_packets_in_flight` after the ACK was processed.
    pub fn reduction(&mut self, ssthresh: u32, in_flight: u32, d: Delivery) -> Option<u32> {
        if d.acked_sacked == 0 || self.prior_cwnd == 0 {
            return None;
        }
        let delta = i64::from(ssthresh) - i64::from(in_flight);
        self.delivered = self.delivered.saturating_add(d.acked_sacked);
        let (delivered, out) = (i64::from(self.delivered), i64::from(self.out));
        let mut sndcnt = if delta < 0 {
            // Proportional: ssthresh/prior_cwnd of what was delivered, rounded up.
            let dividend = i64::from(ssthresh) * delivered + i64::from(self.prior_cwnd) - 1;
            dividend / i64::from(self.prior_cwnd) - out
        } else {
            // Slow start back to ssthresh: what was delivered and not yet answered, and
            // one more when the ACK made progress without new losses.
            let mut n = (delivered - out).max(i64::from(d.acked_sacked));
            if d.una_advanced && d.newly_lost == 0 {
                n += 1;
            }
            n.min(delta)
        };
        // "Force a fast retransmit upon entering fast recovery".
        sndcnt = sndcnt.max(if self.out == 0 { 1 } else { 0 });
        Some((i64::from(in_flight) + sndcnt).clamp(0, i64::from(u32::MAX)) as u32)
    }
}

/// `tcp_end_cwnd_reduction`: leaving recovery, cwnd is set to ssthresh (the caller checks
/// that ssthresh is finite and the reduction was not undone).
pub fn end_cwnd(ssthresh: u32) -> u32 {
    ssthresh.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sacked(n: u32) -> Delivery {
        Delivery { acked_sacked: n, ..Delivery::default() }
    }

    /// packetdrill fast_recovery/prr-ss-10pkt-lost-1: 10 out, the first lost, CUBIC's
    /// ssthresh 7. On the third SACK, 6 in flight (10 out − 3 SACKed − 1 lost): one
    /// segment (the retransmission) brings cwnd to 7; then one per SACK.
    #[test]
    fn in_flight_at_ssthresh_sends_one_per_delivered() {
        let mut p = Prr::init(10);
        assert_eq!(p.reduction(7, 6, sacked(1)), Some(7));
        p.sent(1);
        assert_eq!(p.reduction(7, 6, sacked(1)), Some(7));
        p.sent(1);
        assert_eq!((p.delivered, p.out), (2, 2));
    }

    /// Above ssthresh (PRR-CRB): ⌈ssthresh·prr_delivered/prior_cwnd⌉ − prr_out.
    #[test]
    fn above_ssthresh_sends_in_proportion() {
        let mut p = Prr::init(20);
        // delivered 1: ⌈14·1/20⌉ − 0 = 1.
        assert_eq!(p.reduction(14, 18, sacked(1)), Some(19));
        p.sent(1);
        // delivered 2: ⌈28/20⌉ − 1 = 1.
        assert_eq!(p.reduction(14, 17, sacked(1)), Some(18));
        p.sent(1);
        // delivered 3: ⌈42/20⌉ − 2 = 1; delivered 4: ⌈56/20⌉ − 3 = 0.
        assert_eq!(p.reduction(14, 16, sacked(1)), Some(17));
        p.sent(1);
        assert_eq!(p.reduction(14, 16, sacked(1)), Some(16));
    }

    /// Below ssthresh (PRR-SSRB): max(prr_delivered − prr_out, newly delivered), +1 on an
    /// ACK that advanced snd_una without new losses, never beyond ssthresh.
    #[test]
    fn below_ssthresh_slow_starts_back() {
        let mut p = Prr::init(10);
        p.sent(4);
        p.delivered = 6;
        let adv = Delivery { acked_sacked: 1, newly_lost: 0, una_advanced: true };
        // delivered 7, out 4: max(3, 1) + 1 = 4, capped by delta 7 − 5 = 2.
        assert_eq!(p.reduction(7, 5, adv), Some(7));
        // A new loss takes the extra segment away.
        p.sent(2);
        let lost = Delivery { acked_sacked: 2, newly_lost: 1, una_advanced: true };
        // delivered 9, out 6: max(3, 2) = 3, delta 7 − 4 = 3.
        assert_eq!(p.reduction(7, 4, lost), Some(7));
    }

    #[test]
    fn nothing_delivered_keeps_cwnd_and_first_ack_forces_a_retransmit() {
        let mut p = Prr::init(10);
        assert_eq!(p.reduction(7, 9, sacked(0)), None);
        // In flight at ssthresh: delta 0 allows nothing, but the first ACK of the reduction
        // always lets the fast retransmit out.
        assert_eq!(p.reduction(7, 7, sacked(1)), Some(8));
    }
}
