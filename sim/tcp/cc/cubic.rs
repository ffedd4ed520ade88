//! CUBIC with HyStart, Linux's default (net/ipv4/tcp_cubic.c, "CUBIC v2.3"), in the kernel's
//! fixed-point units so that cwnd sequences are the kernel's to the segment: time in
//! `1/1024` s (`BICTCP_HZ`), the cube root by table and one Newton step (`cubic_root`), the
//! curve's constant folded into `cube_rtt_scale` and `cube_factor` at module load
//! (`cubictcp_register`), the epoch in jiffies.
//!
//! Module parameters at their defaults: `beta` 717/1024, `bic_scale` 41 (C = 0.4),
//! `fast_convergence` 1, `tcp_friendliness` 1, `initial_ssthresh` 0, `hystart` 1 with both
//! detections (`HYSTART_ACK_TRAIN | HYSTART_DELAY`), `hystart_low_window` 16,
//! `hystart_ack_delta_us` 2000. The socket is not paced (`SK_PACING_NONE`: no `fq` qdisc), so
//! the ACK-train threshold is halved (`hystart_update`).

use super::{AckSample, CaEvent, CaState, Clock, CongestionOps, Window};

/// `BICTCP_BETA_SCALE`.
const BETA_SCALE_DENOM: u32 = 1024;
/// `BICTCP_HZ`: the curve's time unit is 2^-10 s.
const BICTCP_HZ: u32 = 10;
/// `beta`: the window keeps 717/1024 ≈ 0.7 of itself on loss.
const BETA: u32 = 717;
/// `bic_scale`: C = 41/1024 × 10 ≈ 0.4 (the ×10 is the 100 ms reference RTT).
const BIC_SCALE: u32 = 41;
/// `beta_scale` = 8·(1024 + beta) / 3 / (1024 − beta) = 15: ACKs per Reno increment, ×8.
const TCP_FRIENDLY_SCALE: u32 = 8 * (BETA_SCALE_DENOM + BETA) / 3 / (BETA_SCALE_DENOM - BETA);
/// `cube_rtt_scale` = bic_scale × 10 = 410.
const CUBE_RTT_SCALE: u64 = BIC_SCALE as u64 * 10;
/// `cube_factor` = 2^(10 + 3·BICTCP_HZ) / (bic_scale × 10): K = cbrt(cube_factor·(Wmax − W)).
const CUBE_FACTOR: u64 = (1u64 << (10 + 3 * BICTCP_HZ)) / (BIC_SCALE as u64 * 10);
/// `hystart_low_window`.
const HYSTART_LOW_WINDOW: u32 = 16;
/// `hystart_ack_delta_us`.
const HYSTART_ACK_DELTA_US: i32 = 2000;
/// `HYSTART_MIN_SAMPLES`, `HYSTART_DELAY_MIN`, `HYSTART_DELAY_MAX` (µs).
const HYSTART_MIN_SAMPLES: u8 = 8;
const HYSTART_DELAY_MIN: u32 = 4000;
const HYSTART_DELAY_MAX: u32 = 16000;
/// `sk_gso_max_size` on a veth or loopback route: `GSO_LEGACY_MAX_SIZE` (65536) less
/// `MAX_TCP_HEADER + 1` (net/core/sock.c `sk_setup_caps`).
const GSO_MAX_SIZE: u64 = 65536 - (320 + 1);

/// `struct bictcp`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cubic {
    /// Increase cwnd by one after `cnt` ACKed segments.
    cnt: u32,
    /// The window before the last reduction (W_max), after fast convergence.
    last_max_cwnd: u32,
    last_cwnd: u32,
    /// Jiffy of the last `cnt` computation.
    last_time: u32,
    bic_origin_point: u32,
    /// Time from the epoch's start to the origin, in 2^-10 s.
    bic_k: u32,
    /// Minimum RTT seen, µs.
    delay_min: u32,
    /// Jiffy the epoch began (0: no epoch).
    epoch_start: u32,
    ack_cnt: u32,
    /// The window Reno would have (TCP friendliness).
    tcp_cwnd: u32,
    sample_cnt: u8,
    /// HyStart found the exit point.
    found: bool,
    round_start: u32,
    end_seq: u32,
    last_ack: u32,
    curr_rtt: u32,
}

/// `fls64`: the position of the most significant set bit, 1-based; 0 for 0.
fn fls64(a: u64) -> u32 {
    64 - a.leading_zeros()
}

/// `cubic_root`: a table lookup on the top bits, then one Newton-Raphson step
/// (x = (2x + a/x²)/3, with x·(x−1) for x² and ×341/1024 for /3). Average error 0.195 %.
pub fn cubic_root(a: u64) -> u32 {
    /// cbrt(x) MSB values for x in [0..63]: v = cbrt(x << 18) − 1 (Willy Tarreau's table).
    const V: [u8; 64] = [
        0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156, 157, 161, 164, 168, 170, 173, 176,
        179, 181, 185, 187, 190, 192, 194, 197, 199, 200, 202, 204, 206, 209, 211, 213, 215, 217, 219, 221, 222, 224,
        225, 227, 229, 231, 232, 234, 236, 237, 239, 240, 242, 244, 245, 246, 248, 250, 251, 252, 254,
    ];
    let b = fls64(a);
    if b < 7 {
        return (V[a as usize] as u32 + 35) >> 6;
    }
    let b = ((b * 84) >> 8) - 1;
    let shift = (a >> (b * 3)) as usize;
    let x = ((V[shift] as u32 + 10) << b) >> 6;
    let x = (2 * x).wrapping_add((a / (x as u64 * (x as u64 - 1))) as u32);
    x.wrapping_mul(341) >> 10
}

/// `usecs_to_jiffies`, rounding up.
fn usecs_to_jiffies(us: u32, hz: u32) -> u64 {
    (us as u64 * hz as u64).div_ceil(1_000_000)
}

/// `after(a, b)` on 32-bit sequence or time stamps.
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

impl Cubic {
    /// `bictcp_reset`: everything before `unused` in `struct bictcp`, and `found`.
    fn reset(&mut self) {
        let (sample_cnt, round_start, end_seq, last_ack, curr_rtt) =
            (self.sample_cnt, self.round_start, self.end_seq, self.last_ack, self.curr_rtt);
        *self = Cubic { sample_cnt, round_start, end_seq, last_ack, curr_rtt, ..Cubic::default() };
    }

    /// `bictcp_hystart_reset`: a new round starts now and ends when `snd_nxt` is acked.
    fn hystart_reset(&mut self, clock: Clock, snd_nxt: u32) {
        self.round_start = clock.now_us;
        self.last_ack = clock.now_us;
        self.end_seq = snd_nxt;
        self.curr_rtt = u32::MAX;
        self.sample_cnt = 0;
    }

    /// `bictcp_update`: the ACK count `cnt` per increment that follows the cubic curve
    /// W(t) = C·(t − K)³ + W_max, no slower than Reno would grow.
    fn update(&mut self, cwnd: u32, acked: u32, clock: Clock) {
        self.ack_cnt = self.ack_cnt.wrapping_add(acked);
        let since_last = clock.jiffies.wrapping_sub(self.last_time) as i32;
        if self.last_cwnd == cwnd && since_last <= (clock.hz / 32) as i32 {
            return;
        }
        // cnt is recomputed at most once per jiffy; a reduction zeroes epoch_start.
        if !(self.epoch_start != 0 && clock.jiffies == self.last_time) {
            self.update_cnt(cwnd, acked, clock);
        }
        self.tcp_friendliness(cwnd);
        self.cnt = self.cnt.max(2);
    }

    /// The cubic part of `bictcp_update` (up to the `tcp_friendliness` label).
    fn update_cnt(&mut self, cwnd: u32, acked: u32, clock: Clock) {
        self.last_cwnd = cwnd;
        self.last_time = clock.jiffies;
        if self.epoch_start == 0 {
            self.epoch_start = clock.jiffies;
            self.ack_cnt = acked;
            self.tcp_cwnd = cwnd;
            if self.last_max_cwnd <= cwnd {
                self.bic_k = 0;
                self.bic_origin_point = cwnd;
            } else {
                self.bic_k = cubic_root(CUBE_FACTOR * (self.last_max_cwnd - cwnd) as u64);
                self.bic_origin_point = self.last_max_cwnd;
            }
        }
        // t = (jiffies − epoch_start + delay_min in jiffies) in 2^-10 s; the s32 difference
        // is sign-extended into the u64 as in C.
        let mut t = clock.jiffies.wrapping_sub(self.epoch_start) as i32 as i64 as u64;
        t = t.wrapping_add(usecs_to_jiffies(self.delay_min, clock.hz));
        t = (t << BICTCP_HZ) / clock.hz as u64;
        let k = self.bic_k as u64;
        let offs = if t < k { k - t } else { t - k };
        let delta = (CUBE_RTT_SCALE.wrapping_mul(offs).wrapping_mul(offs).wrapping_mul(offs) >> (10 + 3 * BICTCP_HZ)) as u32;
        let bic_target =
            if t < k { self.bic_origin_point.wrapping_sub(delta) } else { self.bic_origin_point.wrapping_add(delta) };
        self.cnt = if bic_target > cwnd { cwnd / (bic_target - cwnd) } else { 100 * cwnd };
        // Before any loss the curve is flat: grow at least 5 % per RTT.
        if self.last_max_cwnd == 0 && self.cnt > 20 {
            self.cnt = 20;
        }
    }

    /// TCP friendliness: count the window Reno would have reached (`tcp_cwnd`, one segment
    /// per `cwnd·beta_scale/8` ACKs) and never grow slower than it.
    fn tcp_friendliness(&mut self, cwnd: u32) {
        let delta = (cwnd * TCP_FRIENDLY_SCALE) >> 3;
        if delta > 0 && self.ack_cnt > delta {
            self.tcp_cwnd += (self.ack_cnt - 1) / delta;
            self.ack_cnt -= (self.ack_cnt - 1) / delta * delta;
        }
        if self.tcp_cwnd > cwnd {
            let max_cnt = cwnd / (self.tcp_cwnd - cwnd);
            self.cnt = self.cnt.min(max_cnt);
        }
    }

    /// `hystart_ack_delay`: allowance for TSO/GRO aggregation, one GSO packet at the pacing
    /// rate times four, at most 1 ms.
    fn hystart_ack_delay(pacing_rate: u64) -> u32 {
        if pacing_rate == 0 {
            return 0;
        }
        (GSO_MAX_SIZE * 4 * 1_000_000 / pacing_rate).min(1000) as u32
    }

    /// `hystart_update`: leave slow start (ssthresh = cwnd) when a round's ACK train has
    /// lasted more than half the minimum RTT, or when the round's minimum RTT rose by
    /// delay_min/8 (clamped to 4..16 ms) over the connection's.
    fn hystart_update(&mut self, w: &mut Window, delay: u32, s: &AckSample) {
        if after(s.snd_una, self.end_seq) {
            self.hystart_reset(s.clock, s.snd_nxt);
        }
        let now = s.clock.now_us;
        if (now.wrapping_sub(self.last_ack) as i32) <= HYSTART_ACK_DELTA_US {
            self.last_ack = now;
            let threshold = (self.delay_min + Cubic::hystart_ack_delay(s.pacing_rate)) >> 1;
            if now.wrapping_sub(self.round_start) > threshold {
                self.found = true;
                w.ssthresh = w.cwnd;
            }
        }
        self.curr_rtt = self.curr_rtt.min(delay);
        if self.sample_cnt < HYSTART_MIN_SAMPLES {
            self.sample_cnt += 1;
        } else if self.curr_rtt > self.delay_min + (self.delay_min >> 3).clamp(HYSTART_DELAY_MIN, HYSTART_DELAY_MAX) {
            self.found = true;
            w.ssthresh = w.cwnd;
        }
    }
}

impl CongestionOps for Cubic {
    /// `cubictcp_init`: reset, and start HyStart's first round.
    fn init(&mut self, _w: &mut Window, clock: Clock, snd_nxt: u32) {
        self.reset();
        self.hystart_reset(clock, snd_nxt);
    }

    /// `cubictcp_recalc_ssthresh`: end the epoch; remember W_max (reduced further by fast
    /// convergence when the window did not regain the last one); keep beta of the window.
    fn ssthresh(&mut self, w: &Window) -> u32 {
        self.epoch_start = 0;
        self.last_max_cwnd = if w.cwnd < self.last_max_cwnd {
            w.cwnd * (BETA_SCALE_DENOM + BETA) / (2 * BETA_SCALE_DENOM)
        } else {
            w.cwnd
        };
        (w.cwnd * BETA / BETA_SCALE_DENOM).max(2)
    }

    /// `cubictcp_cong_avoid`: slow start, then `tcp_cong_avoid_ai(ca->cnt)`.
    fn cong_avoid(&mut self, w: &mut Window, acked: u32, clock: Clock) {
        let mut acked = acked;
        if w.in_slow_start() {
            acked = w.slow_start(acked);
            if acked == 0 {
                return;
            }
        }
        self.update(w.cwnd, acked, clock);
        w.cong_avoid_ai(self.cnt, acked);
    }

    /// `cubictcp_state`: an RTO forgets the curve and restarts HyStart.
    fn set_state(&mut self, new: CaState, clock: Clock, snd_nxt: u32) {
        if new == CaState::Loss {
            self.reset();
            self.hystart_reset(clock, snd_nxt);
        }
    }

    /// `cubictcp_cwnd_event` (`CA_EVENT_TX_START`): after an idle period, shift the epoch
    /// by the idle time so the curve resumes where it stopped.
    fn cwnd_event(&mut self, ev: CaEvent, clock: Clock, lsndtime: u32) {
        let CaEvent::TxStart = ev;
        let now = clock.jiffies;
        let delta = now.wrapping_sub(lsndtime) as i32;
        if self.epoch_start != 0 && delta > 0 {
            self.epoch_start = self.epoch_start.wrapping_add(delta as u32);
            if after(self.epoch_start, now) {
                self.epoch_start = now;
            }
        }
    }

    /// `cubictcp_acked`: track the minimum RTT (not in the first second after a reduction)
    /// and run HyStart in slow start from `hystart_low_window` segments on.
    fn pkts_acked(&mut self, w: &mut Window, s: &AckSample) {
        let Some(rtt) = s.rtt_us else { return };
        if self.epoch_start != 0 && (s.clock.jiffies.wrapping_sub(self.epoch_start) as i32) < s.clock.hz as i32 {
            return;
        }
        let delay = rtt.max(1);
        if self.delay_min == 0 || self.delay_min > delay {
            self.delay_min = delay;
        }
        if !self.found && w.in_slow_start() && w.cwnd >= HYSTART_LOW_WINDOW {
            self.hystart_update(w, delay, s);
        }
    }
}
