//! The connection's side of congestion control: where `tcp_input.c` and `tcp_output.c` call
//! the algorithm's hooks ([`crate::tcp::cc`]) and keep `icsk_ca_state`.
//!
//! Simplification: fast recovery inflates the window by one segment per duplicate ACK
//! (RFC 6582) where Linux runs PRR (`tcp_cwnd_reduction`).

use super::Conn;
use crate::tcp::cc::{CaEvent, CaState, Clock, CongestionControl};
use crate::tcp::state::TcpState;
use crate::time::SimTime;

impl Conn {
    /// The kernel clocks at `now`, for the algorithm.
    pub(super) fn ca_clock(&self, now: SimTime) -> Clock {
        Clock::at(now, self.profile.hz)
    }

    /// The window the sender may fill, in segments, including recovery inflation.
    pub(super) fn send_window(&self) -> u32 {
        self.cwnd.cwnd.saturating_add(self.inflation)
    }

    /// `tcp_set_ca_state`: the algorithm hears of the change first.
    fn set_ca_state(&mut self, now: SimTime, new: CaState) {
        let clock = self.ca_clock(now);
        self.ca.set_state(new, clock, self.snd_nxt);
        self.ca_state = new;
    }

    /// `tcp_init_congestion_control`, from `tcp_init_transfer`.
    pub(super) fn init_congestion_control(&mut self, now: SimTime) {
        let clock = self.ca_clock(now);
        self.ca.init(&mut self.cwnd, clock, self.snd_nxt);
    }

    /// `tcp_reinit_congestion_control` after TCP_CONGESTION named another algorithm: fresh
    /// private state, initialised at once unless the socket is closed.
    pub(super) fn reinit_congestion_control(&mut self, now: SimTime) {
        let alg = self.opts.congestion.unwrap_or(self.profile.tcp_congestion_control);
        if alg == self.ca.algorithm() {
            return;
        }
        self.ca = CongestionControl::new(alg);
        if !matches!(self.state, TcpState::Close | TcpState::Listen) {
            self.init_congestion_control(now);
        }
    }

    /// Three duplicate ACKs: `tcp_enter_recovery` with the algorithm's ssthresh.
    pub(super) fn enter_recovery(&mut self, now: SimTime) {
        self.cwnd.ssthresh = self.ca.ssthresh(&self.cwnd);
        self.cwnd.cwnd = self.cwnd.ssthresh;
        self.inflation = 3;
        self.set_ca_state(now, CaState::Recovery);
    }

    /// A further duplicate ACK in recovery: one more segment has left the network.
    pub(super) fn recovery_dupack(&mut self) {
        self.inflation = self.inflation.saturating_add(1);
    }

    /// A partial ACK in recovery (RFC 6582 §3.2 step 5): deflate by what was acked.
    pub(super) fn recovery_partial_ack(&mut self, acked_segs: u32) {
        self.inflation = self.inflation.saturating_sub(acked_segs).max(1);
    }

    /// The recovery point was acknowledged: leave recovery at ssthresh.
    pub(super) fn exit_recovery(&mut self, now: SimTime) {
        self.cwnd.cwnd = self.cwnd.ssthresh.max(1);
        self.inflation = 0;
        self.cwnd.cwnd_cnt = 0;
        self.set_ca_state(now, CaState::Open);
    }

    /// The window part of `tcp_enter_loss`: ssthresh from the algorithm (unless already in
    /// loss), one segment.
    pub(super) fn enter_loss_window(&mut self, now: SimTime) {
        if self.ca_state != CaState::Loss {
            self.cwnd.ssthresh = self.ca.ssthresh(&self.cwnd);
        }
        self.cwnd.cwnd = 1;
        self.cwnd.cwnd_cnt = 0;
        self.inflation = 0;
        self.set_ca_state(now, CaState::Loss);
    }

    /// Everything sent before the RTO has been acknowledged again.
    pub(super) fn exit_loss(&mut self, now: SimTime) {
        self.set_ca_state(now, CaState::Open);
    }

    /// `tcp_cong_avoid` from `tcp_cong_control`: grow by `acked` segments when the flight
    /// was using the window (`tcp_is_cwnd_limited`).
    pub(super) fn cong_avoid(&mut self, now: SimTime, acked: u32, cwnd_limited: bool) {
        if !cwnd_limited {
            return;
        }
        let clock = self.ca_clock(now);
        self.ca.cong_avoid(&mut self.cwnd, acked, clock);
    }

    /// `tcp_event_data_sent`: `CA_EVENT_TX_START` when nothing was in flight, and
    /// `lsndtime`.
    pub(super) fn event_data_sent(&mut self, now: SimTime) {
        let clock = self.ca_clock(now);
        if self.packets_in_flight() == 0 {
            self.ca.cwnd_event(CaEvent::TxStart, clock, self.lsndtime);
        }
        self.lsndtime = clock.jiffies;
    }
}
