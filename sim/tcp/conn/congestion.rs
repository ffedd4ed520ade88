//! The connection's side of congestion control: where `tcp_input.c` and `tcp_output.c` call
//! the algorithm's hooks ([`crate::tcp::cc`]) and keep `icsk_ca_state`.
//! The recovery side (scoreboard, loss detection, PRR) is `recovery.rs`.

use super::Conn;
use crate::tcp::cc::{AckSample, CaEvent, CaState, Clock, CongestionControl};
use crate::tcp::segment::Segment;
use crate::tcp::state::TcpState;
use crate::time::SimTime;

impl Conn {
    /// The kernel clocks at `now`, for the algorithm.
    pub(super) fn ca_clock(&self, now: SimTime) -> Clock {
        Clock::at(now, self.jiffies())
    }

    /// `tcp_set_ca_state`: the algorithm hears of the change first.
    pub(super) fn set_ca_state(&mut self, now: SimTime, new: CaState) {
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

    /// The window part of `tcp_enter_loss`: everything outstanding is lost
    /// (`tcp_timeout_mark_lost`); unless it was reduced in this window already (in CWR or
    /// recovery, or in loss with a retransmission pending), what an undo would restore is
    /// kept (`prior_ssthresh`, `prior_cwnd`, `tcp_init_undo`) and ssthresh comes from the
    /// algorithm; one segment; an ECN peer hears of it (`tcp_ecn_queue_cwr`).
    pub(super) fn enter_loss_window(&mut self, now: SimTime) {
        if matches!(self.ca_state, CaState::Open | CaState::Disorder) {
            let sacked_out = self.rtx_skbs.sacked_out();
            self.loss_state().rack.loss_resets_reordering(sacked_out);
        }
        self.timeout_mark_lost();
        let reduced = match self.ca_state {
            CaState::Open | CaState::Disorder => false,
            CaState::Cwr | CaState::Recovery => crate::tcp::segment::seq_gt(self.high_seq, self.snd_una),
            CaState::Loss => self.rare.get().retransmits > 0,
        };
        if !reduced {
            let prior_ssthresh = self.current_ssthresh();
            self.loss_state().prr = crate::tcp::cc::prr::Prr::init(self.cwnd.cwnd);
            self.init_undo(prior_ssthresh);
            self.cwnd.ssthresh = self.ca.ssthresh(&self.cwnd);
        }
        self.cwnd.cwnd = 1;
        self.cwnd.cwnd_cnt = 0;
        // F-RTO (RFC 5682 3.1 step 1) unless another recovery was underway, except for
        // recurring timeouts on the same snd_una (3.2).
        let new_recovery = matches!(self.ca_state, CaState::Open | CaState::Disorder | CaState::Cwr);
        self.set_frto(new_recovery || self.rare.get().retransmits > 0);
        self.set_ca_state(now, CaState::Loss);
        self.ecn_queue_cwr();
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

    /// `pkts_acked` from `tcp_clean_rtx_queue`, with the RTT of the last skb newly acked
    /// (`ca_rtt_us` from `last_ackt`, sent at `last_sent`; none when a retransmitted one is
    /// among them, Karn), else the timestamp echo's (`tcp_rtt_tsopt_us`, in ms), else none.
    pub(super) fn ca_pkts_acked(&mut self, now: SimTime, seg: &Segment, last_sent: Option<SimTime>) {
        let rtt_us = match last_sent {
            Some(sent) => Some(now.since(sent).as_micros().min(u32::MAX as u64) as u32),
            None => self.tsopt_rtt_us(now, seg),
        };
        let sample = AckSample {
            clock: self.ca_clock(now),
            rtt_us,
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            pacing_rate: self.pacing_rate,
            paced: self.is_paced(),
        };
        self.ca.pkts_acked(&mut self.cwnd, &sample);
    }

    /// `tcp_rtt_tsopt_us`: the RTT from the echoed timestamp, at least one tick.
    fn tsopt_rtt_us(&self, now: SimTime, seg: &Segment) -> Option<u32> {
        let (_, tsecr) = seg.options.timestamps?;
        if !self.ts_ok || tsecr == 0 {
            return None;
        }
        let delta_ms = self.tsval(now).wrapping_sub(tsecr);
        (delta_ms < i32::MAX as u32 / 1000).then(|| delta_ms.max(1) * 1000)
    }

    /// `tcp_update_pacing_rate`: 200 % of cwnd·mss/srtt in slow start (below half of
    /// ssthresh), 120 % after (`tcp_pacing_ss_ratio`, `tcp_pacing_ca_ratio`), bytes per
    /// second: the skb size (`tcp_tso_autosize`), HyStart, and under `fq` the departure times
    /// ([`pacing`](super::pacing)).
    pub(super) fn update_pacing_rate(&mut self) {
        let ratio: u64 = if self.cwnd.cwnd < self.cwnd.ssthresh / 2 { 200 } else { 120 };
        let mut rate = self.mss as u64 * ((1_000_000 / 100) << 3) * ratio * self.cwnd.cwnd.max(self.packets_out()) as u64;
        if self.rtt.srtt_us8 != 0 {
            rate /= self.rtt.srtt_us8 as u64;
        }
        self.pacing_rate = rate;
    }

    /// `tcp_slow_start_after_idle_check` (include/net/tcp.h), from `tcp_skb_entail` and from
    /// a window update while data waits: with `tcp_slow_start_after_idle`, nothing in flight
    /// and no data sent for more than an RTO, `tcp_cwnd_restart`.
    pub(super) fn slow_start_after_idle_check(&mut self, now: SimTime) {
        if !self.profile.tcp_slow_start_after_idle || self.packets_out() > 0 {
            return;
        }
        let delta = self.ca_clock(now).jiffies.wrapping_sub(self.lsndtime) as i32;
        let rto = self.jiffies().from_dur(self.rto).min(i32::MAX as u64) as i32;
        if delta > rto {
            self.cwnd_restart(delta, rto);
        }
    }

    /// `tcp_cwnd_restart` (tcp_output.c, RFC 2861): halve the window once per RTO of idle
    /// time, not below the initial window; ssthresh keeps ¾ of the old window.
    fn cwnd_restart(&mut self, mut delta: i32, rto: i32) {
        let restart = self.profile.initial_cwnd.min(self.cwnd.cwnd);
        self.cwnd.ssthresh = self.current_ssthresh();
        let mut cwnd = self.cwnd.cwnd;
        loop {
            delta -= rto;
            if delta <= 0 || cwnd <= restart {
                break;
            }
            cwnd >>= 1;
        }
        self.cwnd.cwnd = cwnd.max(restart);
    }

    /// `tcp_current_ssthresh`: during a reduction (CWR, Recovery) ssthresh, else at least
    /// ¾ of cwnd.
    pub(super) fn current_ssthresh(&self) -> u32 {
        if self.in_cwnd_reduction() {
            return self.cwnd.ssthresh;
        }
        self.cwnd.ssthresh.max((self.cwnd.cwnd >> 1) + (self.cwnd.cwnd >> 2))
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
