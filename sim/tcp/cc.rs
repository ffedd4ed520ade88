//! Congestion control: NewReno (RFC 5681 slow start and congestion avoidance, RFC 6582 fast
//! recovery), in segments as Linux counts `snd_cwnd`. Linux's default is CUBIC with PRR and
//! RACK; this keeps the behaviour that matters for lossy scenarios (an initial window of
//! `TCP_INIT_CWND`, halving on loss, one segment after an RTO, slow start back) without the
//! curve. Loss *detection* (three duplicate ACKs) lives in the connection; this is the window.

/// `icsk_ca_state`, reduced to what NewReno needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CaState {
    /// Normal operation (`TCP_CA_Open`).
    Open,
    /// Fast recovery after three duplicate ACKs (`TCP_CA_Recovery`), until `high_seq` is acked.
    Recovery,
    /// After an RTO (`TCP_CA_Loss`): slow start from one segment, go-back-N retransmission.
    Loss,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReno {
    /// `snd_cwnd`, segments.
    pub cwnd: u32,
    /// `snd_ssthresh`, segments (`TCP_INFINITE_SSTHRESH` initially).
    pub ssthresh: u32,
    /// `snd_cwnd_cnt`: ACKed segments towards the next congestion-avoidance increment.
    cwnd_cnt: u32,
    pub state: CaState,
    /// Fast-recovery inflation: duplicate ACKs seen in recovery (each one a segment that
    /// left the network, RFC 6582 §3.2 step 3).
    pub inflation: u32,
}

/// `TCP_INFINITE_SSTHRESH`.
pub const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

impl NewReno {
    pub fn new(initial_cwnd: u32) -> NewReno {
        NewReno { cwnd: initial_cwnd.max(1), ssthresh: INFINITE_SSTHRESH, cwnd_cnt: 0, state: CaState::Open, inflation: 0 }
    }

    /// The window the sender may fill, in segments, including recovery inflation.
    pub fn window(&self) -> u32 {
        self.cwnd.saturating_add(self.inflation)
    }

    /// `tcp_reno_cong_avoid`: `acked` segments newly acknowledged while not recovering.
    /// Grows only when the flight was using the window (`tcp_is_cwnd_limited`).
    pub fn on_ack(&mut self, acked: u32, cwnd_limited: bool) {
        if self.state != CaState::Open && self.state != CaState::Loss || !cwnd_limited {
            return;
        }
        let mut acked = acked;
        if self.cwnd < self.ssthresh {
            // tcp_slow_start: grow by the acked count, up to ssthresh.
            let grow = acked.min(self.ssthresh - self.cwnd);
            self.cwnd += grow;
            acked -= grow;
        }
        if acked > 0 && self.cwnd >= self.ssthresh {
            // tcp_cong_avoid_ai: one segment per window's worth of ACKs.
            self.cwnd_cnt += acked;
            if self.cwnd_cnt >= self.cwnd {
                self.cwnd_cnt -= self.cwnd;
                self.cwnd += 1;
            }
        }
    }

    /// `tcp_reno_ssthresh`: half the window, at least two segments.
    fn halve(&self) -> u32 {
        (self.cwnd / 2).max(2)
    }

    /// Three duplicate ACKs: enter fast recovery (`tcp_enter_recovery`).
    pub fn enter_recovery(&mut self) {
        self.ssthresh = self.halve();
        self.cwnd = self.ssthresh;
        self.inflation = 3;
        self.state = CaState::Recovery;
    }

    /// A further duplicate ACK in recovery: one more segment has left the network.
    pub fn on_dupack_in_recovery(&mut self) {
        self.inflation = self.inflation.saturating_add(1);
    }

    /// A partial ACK in recovery (RFC 6582 §3.2 step 5): deflate by what was acked.
    pub fn on_partial_ack(&mut self, acked: u32) {
        self.inflation = self.inflation.saturating_sub(acked).max(1);
    }

    /// The recovery point was acknowledged: leave recovery at ssthresh.
    pub fn exit_recovery(&mut self) {
        self.cwnd = self.ssthresh.max(1);
        self.inflation = 0;
        self.cwnd_cnt = 0;
        self.state = CaState::Open;
    }

    /// An RTO (`tcp_enter_loss`): ssthresh halves (unless already in loss), one segment.
    pub fn on_rto(&mut self) {
        if self.state != CaState::Loss {
            self.ssthresh = self.halve();
        }
        self.cwnd = 1;
        self.cwnd_cnt = 0;
        self.inflation = 0;
        self.state = CaState::Loss;
    }

    /// Everything sent before the RTO has been acknowledged again.
    pub fn exit_loss(&mut self) {
        self.state = CaState::Open;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_linear_growth() {
        let mut cc = NewReno::new(10);
        cc.on_ack(10, true);
        assert_eq!(cc.cwnd, 20);
        cc.on_ack(5, false);
        assert_eq!(cc.cwnd, 20, "no growth when application-limited");
        cc.ssthresh = 20;
        cc.on_ack(19, true);
        assert_eq!(cc.cwnd, 20);
        cc.on_ack(1, true);
        assert_eq!(cc.cwnd, 21);
    }

    #[test]
    fn recovery_halves_and_rto_collapses_to_one() {
        let mut cc = NewReno::new(10);
        cc.enter_recovery();
        assert_eq!((cc.cwnd, cc.ssthresh, cc.window()), (5, 5, 8));
        cc.on_dupack_in_recovery();
        assert_eq!(cc.window(), 9);
        cc.exit_recovery();
        assert_eq!(cc.window(), 5);
        cc.on_rto();
        assert_eq!((cc.cwnd, cc.ssthresh), (1, 2));
        cc.on_rto();
        assert_eq!(cc.ssthresh, 2, "a second RTO in loss keeps ssthresh");
    }
}
