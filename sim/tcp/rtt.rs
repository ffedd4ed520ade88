//! RTT estimation and the RTO, as Linux does it (tcp_input.c `tcp_rtt_estimator`,
//! `tcp_set_rto`; include/net/tcp.h `__tcp_set_rto`, `tcp_bound_rto`).
//!
//! Differences from RFC 6298 that Linux makes and this follows: the variance term is floored
//! at `rto_min` (so the effective floor is SRTT + 200 ms, not 200 ms), falling RTTs move the
//! deviation with gain 1/32 instead of 1/4, and `rttvar` decays only once per RTT.

use crate::tcp::jiffies::Jiffies;
use crate::time::Dur;

/// The estimator's state, in microseconds, scaled as the kernel scales it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RttEstimator {
    /// 8 × SRTT (`srtt_us`); 0 until the first sample.
    pub srtt_us8: u32,
    /// Mean deviation, in 4 × units (`mdev_us`).
    pub mdev_us: u32,
    /// Maximal mdev over the last RTT (`mdev_max_us`).
    pub mdev_max_us: u32,
    /// The smoothed variance term used for the RTO (`rttvar_us`), never below rto_min.
    pub rttvar_us: u32,
    /// `rtt_seq`: when `snd_una` passes it, one RTT has elapsed and rttvar may decay.
    pub rtt_seq: u32,
    /// The smallest sample seen (`tcp_min_rtt`; Linux keeps the minimum of the last
    /// `tcp_min_rtt_wlen` = 300 s, longer than the model's connections live); 0 = none.
    pub min_rtt_us: u32,
}

impl RttEstimator {
    /// Feeds one RTT sample `m_us` (`tcp_rtt_estimator`). `snd_una`/`snd_nxt` time the
    /// once-per-RTT decay of rttvar.
    pub fn sample(&mut self, m_us: u64, rto_min_us: u32, snd_una: u32, snd_nxt: u32) {
        let m_in = m_us.clamp(1, i32::MAX as u64) as i64;
        // tcp_update_rtt_min.
        if self.min_rtt_us == 0 || (m_in as u32) < self.min_rtt_us {
            self.min_rtt_us = m_in as u32;
        }
        let mut srtt = self.srtt_us8 as i64;
        if srtt != 0 {
            let mut m = m_in - (srtt >> 3);
            srtt += m;
            if m < 0 {
                m = -m - (self.mdev_us as i64 >> 2);
                if m > 0 {
                    m >>= 3;
                }
            } else {
                m -= self.mdev_us as i64 >> 2;
            }
            self.mdev_us = (self.mdev_us as i64 + m).max(0) as u32;
            if self.mdev_us > self.mdev_max_us {
                self.mdev_max_us = self.mdev_us;
                if self.mdev_max_us > self.rttvar_us {
                    self.rttvar_us = self.mdev_max_us;
                }
            }
            if crate::tcp::segment::seq_gt(snd_una, self.rtt_seq) {
                if self.mdev_max_us < self.rttvar_us {
                    self.rttvar_us -= (self.rttvar_us - self.mdev_max_us) >> 2;
                }
                self.rtt_seq = snd_nxt;
                self.mdev_max_us = rto_min_us;
            }
        } else {
            srtt = m_in << 3;
            self.mdev_us = (m_in << 1) as u32;
            self.rttvar_us = self.mdev_us.max(rto_min_us);
            self.mdev_max_us = self.rttvar_us;
            self.rtt_seq = snd_nxt;
        }
        self.srtt_us8 = srtt.clamp(1, u32::MAX as i64) as u32;
    }

    pub fn has_sample(&self) -> bool {
        self.srtt_us8 != 0
    }

    /// SRTT in microseconds.
    pub fn srtt_us(&self) -> u32 {
        self.srtt_us8 >> 3
    }

    /// `__tcp_set_rto` + `tcp_bound_rto`: `srtt + rttvar`, rounded up to whole jiffies of
    /// the host's HZ (`usecs_to_jiffies`) and capped at `rto_max`.
    pub fn rto(&self, rto_max: Dur, jiffies: Jiffies) -> Dur {
        let us = (self.srtt_us8 >> 3) as u64 + self.rttvar_us as u64;
        jiffies.round_up(Dur::from_micros(us)).min(rto_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Dur = Dur::from_secs(120);

    fn hz(hz: u32) -> Jiffies {
        Jiffies::of(&crate::tcp::profile::KernelProfile { hz, ..crate::tcp::profile::KernelProfile::linux_6_18() })
    }

    #[test]
    fn first_sample_sets_rto_to_srtt_plus_rto_min_floor() {
        let mut e = RttEstimator::default();
        e.sample(50, 200_000, 1, 1);
        assert_eq!(e.srtt_us(), 50);
        assert_eq!(e.rttvar_us, 200_000);
        // 200.05 ms rounded up to jiffies: 201 at HZ=1000, 51 jiffies (204 ms) at HZ=250.
        assert_eq!(e.rto(MAX, hz(1000)), Dur::from_millis(201));
        assert_eq!(e.rto(MAX, hz(250)), Dur::from_millis(204));
        // A large first sample: RTO = 3 RTT.
        let mut e = RttEstimator::default();
        e.sample(400_000, 200_000, 1, 1);
        assert_eq!(e.rto(MAX, hz(250)), Dur::from_millis(1200));
    }

    #[test]
    fn falling_rtt_moves_deviation_slowly_and_rttvar_decays_once_per_rtt() {
        let mut e = RttEstimator::default();
        e.sample(400_000, 200_000, 0, 100);
        let before = e.rttvar_us;
        // Same RTT, one RTT later: mdev shrinks (600 ms) but rttvar holds at its maximum...
        e.sample(400_000, 200_000, 101, 200);
        assert_eq!((e.mdev_us, e.rttvar_us), (600_000, before));
        // ...and a round later decays by a quarter of its excess over mdev_max (450 ms).
        e.sample(400_000, 200_000, 201, 300);
        assert_eq!(e.mdev_us, 450_000);
        assert_eq!(e.rttvar_us, 800_000 - (800_000 - 450_000) / 4);
        assert_eq!(e.srtt_us(), 400_000);
    }
}
