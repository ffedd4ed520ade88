//! Congestion control as Linux plugs it in: a `struct tcp_congestion_ops` per algorithm
//! ([`CongestionOps`]), chosen per socket ([`CongestionControl`], an enum of the
//! implementations as smoltcp's `socket/tcp/congestion.rs`), acting on the window fields of
//! the `tcp_sock` ([`Window`]). The connection keeps `icsk_ca_state` ([`CaState`]) and calls
//! the hooks where the kernel does (include/net/tcp.h `struct tcp_congestion_ops`):
//! `ssthresh` on entering recovery or loss, `cong_avoid` from `tcp_cong_control` when the
//! state allows growth, `set_state` from `tcp_set_ca_state`, `cwnd_event` from
//! `tcp_event_data_sent` (`CA_EVENT_TX_START`) and `pkts_acked` from `tcp_clean_rtx_queue`.
//! The window *reduction* during recovery is not the algorithm's business in Linux either
//! (`tcp_cwnd_reduction`, PRR: [`prr`]).

mod cubic;
pub mod prr;
pub(crate) use cubic::GSO_MAX_SIZE;
mod reno;

pub use cubic::Cubic;
pub use reno::Reno;

use crate::tcp::jiffies::Jiffies;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};

/// `TCP_INFINITE_SSTHRESH`.
pub const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// `icsk_ca_state`, the states the model enters (include/net/tcp.h `enum tcp_ca_state`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CaState {
    /// Normal operation (`TCP_CA_Open`).
    Open,
    /// SACKs or duplicate ACKs seen, nothing lost yet (`TCP_CA_Disorder`).
    Disorder,
    /// Reducing the window for an ECN echo or a local drop, nothing lost (`TCP_CA_CWR`,
    /// `tcp_enter_cwr`), until `high_seq` is acknowledged.
    Cwr,
    /// Fast recovery after three duplicate ACKs (`TCP_CA_Recovery`), until `high_seq` is acked.
    Recovery,
    /// After an RTO (`TCP_CA_Loss`): slow start from one segment, go-back-N retransmission.
    Loss,
}

impl CaState {
    /// The number `tcpi_ca_state` reports (`TCP_CA_Open` = 0 … `TCP_CA_Loss` = 4).
    pub fn linux_number(self) -> u8 {
        match self {
            CaState::Open => 0,
            CaState::Disorder => 1,
            CaState::Cwr => 2,
            CaState::Recovery => 3,
            CaState::Loss => 4,
        }
    }
}

/// `enum tcp_ca_event`, the events the model raises.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CaEvent {
    /// First transmission when nothing is in flight (`CA_EVENT_TX_START`).
    TxStart,
}

/// Which algorithm a socket runs: the name `TCP_CONGESTION` and
/// `net.ipv4.tcp_congestion_control` take.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Reno,
    Cubic,
}

impl Algorithm {
    /// `tcp_ca_find`: the algorithm with this name (ENOENT in `tcp_set_congestion_control`
    /// when there is none).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "reno" => Some(Algorithm::Reno),
            "cubic" => Some(Algorithm::Cubic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Reno => "reno",
            Algorithm::Cubic => "cubic",
        }
    }
}

/// The window fields of a `tcp_sock` an algorithm reads and writes, in segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// `snd_cwnd`.
    pub cwnd: u32,
    /// `snd_ssthresh` (`TCP_INFINITE_SSTHRESH` initially).
    pub ssthresh: u32,
    /// `snd_cwnd_cnt`: ACKed segments towards the next congestion-avoidance increment.
    pub cwnd_cnt: u32,
}

impl Window {
    pub fn new(initial_cwnd: u32) -> Window {
        Window { cwnd: initial_cwnd.max(1), ssthresh: INFINITE_SSTHRESH, cwnd_cnt: 0 }
    }

    /// `tcp_in_slow_start`.
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// `tcp_slow_start` (tcp_cong.c): grow by the acked count up to ssthresh; returns what is
    /// left for congestion avoidance.
    pub fn slow_start(&mut self, acked: u32) -> u32 {
        let cwnd = self.cwnd.saturating_add(acked).min(self.ssthresh);
        let left = acked - (cwnd - self.cwnd);
        self.cwnd = cwnd;
        left
    }

    /// `tcp_cong_avoid_ai` (tcp_cong.c): one segment per `w` acked, credits accumulated at a
    /// larger `w` applied first.
    pub fn cong_avoid_ai(&mut self, w: u32, acked: u32) {
        let w = w.max(1);
        if self.cwnd_cnt >= w {
            self.cwnd_cnt = 0;
            self.cwnd += 1;
        }
        self.cwnd_cnt += acked;
        if self.cwnd_cnt >= w {
            let delta = self.cwnd_cnt / w;
            self.cwnd_cnt -= delta * w;
            self.cwnd += delta;
        }
    }
}

/// The kernel clocks an algorithm reads: `tcp_jiffies32` and `tcp_mstamp` (µs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    pub jiffies: u32,
    pub now_us: u32,
    /// `HZ`, the kernel's tick rate (`CONFIG_HZ`).
    pub hz: u32,
}

impl Clock {
    /// The clocks at `now` of a kernel whose jiffies are `jiffies` (the host's, phase
    /// included: `sim/tcp/jiffies.rs`).
    pub fn at(now: SimTime, jiffies: Jiffies) -> Clock {
        Clock { jiffies: jiffies.at(now) as u32, now_us: (now.0 / 1000) as u32, hz: jiffies.hz() }
    }
}

/// What `tcp_clean_rtx_queue` tells `pkts_acked` (`struct ack_sample`) plus the socket
/// fields CUBIC's HyStart reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AckSample {
    pub clock: Clock,
    /// RTT of the last newly acked, never retransmitted segment (`rtt_us`; -1 in Linux).
    pub rtt_us: Option<u32>,
    pub snd_una: u32,
    pub snd_nxt: u32,
    /// `sk_pacing_rate`, bytes per second.
    pub pacing_rate: u64,
    /// `sk_pacing_status != SK_PACING_NONE`: the socket's packets are paced (by `fq`).
    pub paced: bool,
}

/// `struct tcp_congestion_ops`, the hooks the model calls.
pub trait CongestionOps {
    /// `.init`, when the connection is established (`tcp_init_congestion_control`).
    fn init(&mut self, _w: &mut Window, _clock: Clock, _snd_nxt: u32) {}
    /// `.ssthresh`: the slow-start threshold after a loss.
    fn ssthresh(&mut self, w: &Window) -> u32;
    /// `.cong_avoid`: grow the window for `acked` segments (`tcp_cong_avoid`); the caller
    /// has checked `tcp_is_cwnd_limited`.
    fn cong_avoid(&mut self, w: &mut Window, acked: u32, clock: Clock);
    /// `.set_state`, from `tcp_set_ca_state`.
    fn set_state(&mut self, _new: CaState, _clock: Clock, _snd_nxt: u32) {}
    /// `.cwnd_event`; `lsndtime` is the jiffy of the last data sent.
    fn cwnd_event(&mut self, _ev: CaEvent, _clock: Clock, _lsndtime: u32) {}
    /// `.pkts_acked`.
    fn pkts_acked(&mut self, _w: &mut Window, _sample: &AckSample) {}
    /// `.undo_cwnd`, the window after a spurious reduction is undone: `tcp_reno_undo_cwnd`
    /// (tcp_cong.c), max(cwnd, prior_cwnd), which CUBIC uses too (tcp_cubic.c `cubictcp`).
    fn undo_cwnd(&mut self, w: &Window, prior_cwnd: u32) -> u32 {
        w.cwnd.max(prior_cwnd)
    }
}

/// The algorithms, one per variant: static dispatch, and per-connection state no larger
/// than the largest algorithm's (`ICSK_CA_PRIV_SIZE` in Linux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CongestionControl {
    Reno(Reno),
    Cubic(Cubic),
}

impl CongestionControl {
    pub fn new(alg: Algorithm) -> CongestionControl {
        match alg {
            Algorithm::Reno => CongestionControl::Reno(Reno),
            Algorithm::Cubic => CongestionControl::Cubic(Cubic::default()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            CongestionControl::Reno(_) => Algorithm::Reno,
            CongestionControl::Cubic(_) => Algorithm::Cubic,
        }
    }

    fn ops(&mut self) -> &mut dyn CongestionOps {
        match self {
            CongestionControl::Reno(r) => r,
            CongestionControl::Cubic(c) => c,
        }
    }

    pub fn init(&mut self, w: &mut Window, clock: Clock, snd_nxt: u32) {
        self.ops().init(w, clock, snd_nxt)
    }
    pub fn ssthresh(&mut self, w: &Window) -> u32 {
        self.ops().ssthresh(w)
    }
    pub fn cong_avoid(&mut self, w: &mut Window, acked: u32, clock: Clock) {
        self.ops().cong_avoid(w, acked, clock)
    }
    pub fn set_state(&mut self, new: CaState, clock: Clock, snd_nxt: u32) {
        self.ops().set_state(new, clock, snd_nxt)
    }
    pub fn cwnd_event(&mut self, ev: CaEvent, clock: Clock, lsndtime: u32) {
        self.ops().cwnd_event(ev, clock, lsndtime)
    }
    pub fn pkts_acked(&mut self, w: &mut Window, sample: &AckSample) {
        self.ops().pkts_acked(w, sample)
    }
    pub fn undo_cwnd(&mut self, w: &Window, prior_cwnd: u32) -> u32 {
        self.ops().undo_cwnd(w, prior_cwnd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_stops_at_ssthresh_and_returns_the_rest() {
        let mut w = Window::new(10);
        w.ssthresh = 14;
        assert_eq!(w.slow_start(6), 2);
        assert_eq!(w.cwnd, 14);
    }

    #[test]
    fn cong_avoid_ai_applies_stretch_acks_and_old_credit() {
        let mut w = Window::new(10);
        w.cong_avoid_ai(10, 25);
        assert_eq!((w.cwnd, w.cwnd_cnt), (12, 5));
        // Credits gathered at w = 12 applied gently once w has dropped to 4.
        w.cwnd_cnt = 7;
        w.cong_avoid_ai(4, 1);
        assert_eq!((w.cwnd, w.cwnd_cnt), (13, 1));
    }

    #[test]
    fn names_round_trip() {
        for a in [Algorithm::Reno, Algorithm::Cubic] {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(Algorithm::from_name("bbr"), None);
    }
}
