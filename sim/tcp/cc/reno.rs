//! Reno (net/ipv4/tcp_cong.c `tcp_reno`): slow start, then one segment per window of ACKs;
//! half the window on loss. Linux's fallback and the `reno` of `TCP_CONGESTION`.

use super::{Clock, CongestionOps, Window};

/// Reno keeps no state of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reno;

impl CongestionOps for Reno {
    /// `tcp_reno_ssthresh`: half the window, at least two segments.
    fn ssthresh(&mut self, w: &Window) -> u32 {
        (w.cwnd >> 1).max(2)
    }

    /// `tcp_reno_cong_avoid`: slow start below ssthresh, then `tcp_cong_avoid_ai(cwnd)`.
    fn cong_avoid(&mut self, w: &mut Window, acked: u32, _clock: Clock) {
        let mut acked = acked;
        if w.in_slow_start() {
            acked = w.slow_start(acked);
            if acked == 0 {
                return;
            }
        }
        let cwnd = w.cwnd;
        w.cong_avoid_ai(cwnd, acked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock { jiffies: 0, now_us: 0, hz: 1000 };

    #[test]
    fn slow_start_then_linear_growth() {
        let mut w = Window::new(10);
        Reno.cong_avoid(&mut w, 10, CLOCK);
        assert_eq!(w.cwnd, 20);
        w.ssthresh = 20;
        Reno.cong_avoid(&mut w, 19, CLOCK);
        assert_eq!(w.cwnd, 20);
        Reno.cong_avoid(&mut w, 1, CLOCK);
        assert_eq!(w.cwnd, 21);
    }

    #[test]
    fn ssthresh_halves_with_a_floor_of_two() {
        assert_eq!(Reno.ssthresh(&Window::new(10)), 5);
        assert_eq!(Reno.ssthresh(&Window::new(3)), 2);
    }
}
