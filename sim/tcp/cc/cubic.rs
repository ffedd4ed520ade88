//! CUBIC with HyStart, Linux's default (net/ipv4/tcp_cubic.c, "CUBIC v2.3"), in the kernel's
//! fixed-point units so that cwnd sequences are the kernel's to the segment: time in
//! `1/1024` s (`BICTCP_HZ`), the cube root by table and one Newton step (`cubic_root`), the
//! curve's constant folded into `cube_rtt_scale` and `cube_factor` at module load
//! (`cubictcp_register`), the epoch in jiffies.
//!
//! Module parameters at their defaults: `beta` 717/1024, `bic_scale` 41 (C = 0.4),
//! `fast_convergence` 1, `tcp_friendliness` 1, `initial_ssthresh` 0, `hystart` 1 with both
//! detections (`HYSTART_ACK_TRAIN | HYSTART_DELAY`), `hystart_low_window` 16,
//! `hystart_ack_delta_us` 2000. The ACK-train threshold is halved unless the socket is paced
//! (`hystart_update`: `if (sk->sk_pacing_status == SK_PACING_NONE) threshold >>= 1`, "Pacing
//! might have delayed packets up to RTT/2 during slow start").

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
pub(crate) const GSO_MAX_SIZE: u64 = 65536 - (320 + 1);

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
    /// lasted more than half the minimum RTT (the whole of it on a paced socket), or when the round's minimum RTT rose by
    /// delay_min/8 (clamped to 4..16 ms) over the connection's.
    fn hystart_update(&mut self, w: &mut Window, delay: u32, s: &AckSample) {
        if after(s.snd_una, self.end_seq) {
            self.hystart_reset(s.clock, s.snd_nxt);
        }
        let now = s.clock.now_us;
        if (now.wrapping_sub(self.last_ack) as i32) <= HYSTART_ACK_DELTA_US {
            self.last_ack = now;
            let mut threshold = self.delay_min + Cubic::hystart_ack_delay(s.pacing_rate);
            if !s.paced {
                threshold >>= 1;
            }
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

#[cfg(test)]
mod tests {
    //! Expected values worked by hand through tcp_cubic.c (v2.3, as in 6.x), HZ = 250.
    use super::*;
    use crate::tcp::cc::INFINITE_SSTHRESH;

    const HZ: u32 = 250;

    fn at(jiffies: u32) -> Clock {
        Clock { jiffies, now_us: 0, hz: HZ }
    }

    fn window(cwnd: u32, ssthresh: u32) -> Window {
        Window { cwnd, ssthresh, cwnd_cnt: 0 }
    }

    #[test]
    fn module_constants_are_the_kernels() {
        // cubictcp_register: beta_scale = 8·1741/3/307 = 4642/307 = 15;
        // cube_rtt_scale = 41·10; cube_factor = 2^40 / 410.
        assert_eq!(TCP_FRIENDLY_SCALE, 15);
        assert_eq!(CUBE_RTT_SCALE, 410);
        assert_eq!(CUBE_FACTOR, 2_681_735_677);
    }

    #[test]
    fn cubic_root_by_table_and_one_newton_step() {
        // fls64(27) = 5 < 7: (v[27] + 35) >> 6 = (190 + 35) >> 6 = 3.
        assert_eq!(cubic_root(27), 3);
        // fls64(1000) = 10 → b = (840 >> 8) − 1 = 2; shift = 1000 >> 6 = 15;
        // x = ((156 + 10) << 2) >> 6 = 10; x = 2·10 + 1000/(10·9) = 31; 31·341 >> 10 = 10.
        assert_eq!(cubic_root(1000), 10);
        // K for W_max − W = 30: a = 80452070310, fls64 = 37 → b = 11, shift = a >> 33 = 9;
        // x = ((129 + 10) << 11) >> 6 = 4448; x = 8896 + a/(4448·4447) = 8896 + 4067 = 12963;
        // 12963·341 >> 10 = 4316 (4.215 s; cbrt(30/0.4) = 4.217).
        assert_eq!(cubic_root(CUBE_FACTOR * 30), 4316);
    }

    #[test]
    fn ssthresh_keeps_beta_and_fast_convergence_lowers_w_max() {
        let mut c = Cubic::default();
        // 100·717/1024 = 70; W_max = 100 (no earlier maximum).
        assert_eq!(c.ssthresh(&window(100, INFINITE_SSTHRESH)), 70);
        assert_eq!(c.last_max_cwnd, 100);
        // Lost again below W_max: W_max = 80·1741/2048 = 68; ssthresh = 80·717/1024 = 56.
        assert_eq!(c.ssthresh(&window(80, 70)), 56);
        assert_eq!(c.last_max_cwnd, 68);
        assert_eq!(c.ssthresh(&window(2, 2)), 2, "at least two segments");
    }

    /// After a loss at 100 segments: cwnd 70, W_max 100, K = 4316 (2^-10 s).
    fn after_loss_at_100() -> (Cubic, Window) {
        let mut c = Cubic::default();
        let mut w = window(100, INFINITE_SSTHRESH);
        w.ssthresh = c.ssthresh(&w);
        w.cwnd = w.ssthresh;
        (c, w)
    }

    #[test]
    fn the_concave_curve_starts_slow_and_cnt_is_computed_once_per_jiffy() {
        let (mut c, mut w) = after_loss_at_100();
        // First ACK, jiffy 1000: the epoch starts, t = 0, offs = K = 4316,
        // delta = 410·4316³ >> 40 = 29, target = 100 − 29 = 71, cnt = 70/(71 − 70) = 70.
        c.cong_avoid(&mut w, 1, at(1000));
        assert_eq!((c.epoch_start, c.bic_k, c.bic_origin_point, c.cnt), (1000, 4316, 100, 70));
        // 69 more ACKs in the same jiffy: last_cwnd == cwnd and 0 ≤ HZ/32, so cnt stays 70;
        // tcp_cong_avoid_ai(70) adds the 70th segment-credit → cwnd 71.
        for _ in 0..69 {
            c.cong_avoid(&mut w, 1, at(1000));
        }
        assert_eq!((w.cwnd, w.cwnd_cnt), (71, 0));
        // cwnd changed but the jiffy did not: only the friendliness part runs
        // (ack_cnt 71 ≤ 71·15 >> 3 = 133), cnt stays 70.
        c.cong_avoid(&mut w, 1, at(1000));
        assert_eq!((c.cnt, w.cwnd_cnt, c.last_cwnd), (70, 1, 70));
        // One second later (jiffy 1250): t = 250 << 10 / 250 = 1024, offs = 3292,
        // delta = 410·3292³ >> 40 = 13, target = 87, cnt = 71/16 = 4.
        c.cong_avoid(&mut w, 1, at(1250));
        assert_eq!((c.cnt, w.cwnd, w.cwnd_cnt), (4, 71, 2));
        c.cong_avoid(&mut w, 1, at(1250));
        c.cong_avoid(&mut w, 1, at(1250));
        assert_eq!((w.cwnd, w.cwnd_cnt), (72, 0), "one segment per four acked");
    }

    #[test]
    fn tcp_friendliness_caps_cnt_at_renos_pace() {
        // W_max = cwnd = 10: K = 0, origin 10, the curve is flat at first (cnt = 100·10).
        let mut c = Cubic { last_max_cwnd: 10, ..Cubic::default() };
        let mut w = window(10, 10);
        c.cong_avoid(&mut w, 1, at(1000));
        assert_eq!((c.cnt, c.tcp_cwnd), (1000, 10));
        // 10 jiffies later, 18 acked: t = 40, delta = 410·40³ >> 40 = 0, cnt = 1000; Reno's
        // estimate: ack_cnt 19 > 10·15 >> 3 = 18 → tcp_cwnd 11 > 10 → cnt = 10/1 = 10.
        // tcp_cong_avoid_ai(10, 18): cwnd_cnt 1 + 18 = 19 → cwnd 11, cwnd_cnt 9.
        c.cong_avoid(&mut w, 18, at(1010));
        assert_eq!((c.cnt, c.tcp_cwnd, c.ack_cnt), (10, 11, 1));
        assert_eq!((w.cwnd, w.cwnd_cnt), (11, 9));
    }

    #[test]
    fn before_any_loss_the_curve_grows_at_least_five_percent_per_rtt() {
        let mut c = Cubic::default();
        let mut w = window(20, 20);
        // last_max_cwnd 0 ≤ 20: K = 0, target = 20, cnt = 100·20 → capped at 20.
        c.cong_avoid(&mut w, 1, at(1000));
        assert_eq!(c.cnt, 20);
    }

    fn sample(now_us: u32, rtt_us: u32, snd_una: u32, pacing_rate: u64) -> AckSample {
        AckSample {
            clock: Clock { jiffies: now_us / 4000, now_us, hz: HZ },
            rtt_us: Some(rtt_us),
            snd_una,
            snd_nxt: 100_000,
            pacing_rate,
            paced: false,
        }
    }

    /// A cubic socket in slow start at 16 segments whose HyStart round began at 100 ms and
    /// ends when 50 000 is acked.
    fn slow_start_at_16() -> (Cubic, Window) {
        let mut c = Cubic::default();
        let mut w = window(16, INFINITE_SSTHRESH);
        c.init(&mut w, Clock { jiffies: 25, now_us: 100_000, hz: HZ }, 50_000);
        (c, w)
    }

    #[test]
    fn hystart_ack_train_exits_slow_start_after_half_the_min_rtt() {
        // ACKs 1 ms apart (≤ 2 ms: a train), RTT 9 ms, unpaced socket with no pacing rate:
        // threshold = 9000 >> 1 = 4500; the 5th ACK is 5000 µs past round_start.
        let (mut c, mut w) = slow_start_at_16();
        for k in 1..=4 {
            c.pkts_acked(&mut w, &sample(100_000 + 1000 * k, 9000, 1000 * k, 0));
        }
        assert_eq!(w.ssthresh, INFINITE_SSTHRESH);
        c.pkts_acked(&mut w, &sample(105_000, 9000, 5000, 0));
        assert_eq!((w.ssthresh, c.found), (16, true));
    }

    #[test]
    fn hystart_ack_train_allows_for_gso_at_the_pacing_rate() {
        // hystart_ack_delay = min(1 ms, 65215·4 s / rate): at 260 860 000 B/s exactly 1000 µs,
        // so threshold = (9000 + 1000) >> 1 = 5000, and 5000 µs is not past it.
        let rate = GSO_MAX_SIZE * 4 * 1000;
        assert_eq!(Cubic::hystart_ack_delay(rate), 1000);
        let (mut c, mut w) = slow_start_at_16();
        for k in 1..=5 {
            c.pkts_acked(&mut w, &sample(100_000 + 1000 * k, 9000, 1000 * k, rate));
        }
        assert_eq!(w.ssthresh, INFINITE_SSTHRESH);
        c.pkts_acked(&mut w, &sample(106_000, 9000, 6000, rate));
        assert_eq!(w.ssthresh, 16);
    }

    #[test]
    fn hystart_ack_train_on_a_paced_socket_waits_the_whole_min_rtt() {
        // Paced (fq): threshold = 9000 + 0, not halved; the train at 5 ms (past the unpaced
        // 4500) and at 9 ms does not end slow start, at 10 ms it does.
        let (mut c, mut w) = slow_start_at_16();
        for k in 1..=9 {
            c.pkts_acked(&mut w, &AckSample { paced: true, ..sample(100_000 + 1000 * k, 9000, 1000 * k, 0) });
        }
        assert_eq!(w.ssthresh, INFINITE_SSTHRESH);
        c.pkts_acked(&mut w, &AckSample { paced: true, ..sample(110_000, 9000, 10_000, 0) });
        assert_eq!((w.ssthresh, c.found), (16, true));
    }

    #[test]
    fn hystart_delay_exits_when_a_rounds_min_rtt_rises_by_the_threshold() {
        // ACKs 3 ms apart: never a train. Round 1: RTT 10 ms (delay_min 10 000). Round 2
        // (snd_una past 50 000): RTT 14 100 µs > 10 000 + clamp(1250, 4000, 16000) = 14 000,
        // decided once HYSTART_MIN_SAMPLES (8) samples of the round have been taken.
        let (mut c, mut w) = slow_start_at_16();
        let mut t = 100_000;
        for k in 1..=8 {
            t += 3000;
            c.pkts_acked(&mut w, &sample(t, 10_000, 5000 * k, 0));
        }
        for k in 0..8 {
            t += 3000;
            c.pkts_acked(&mut w, &sample(t, 14_100, 60_000 + k, 0));
        }
        assert_eq!((c.delay_min, c.sample_cnt, w.ssthresh), (10_000, 8, INFINITE_SSTHRESH));
        c.pkts_acked(&mut w, &sample(t + 3000, 14_100, 60_010, 0));
        assert_eq!((w.ssthresh, c.found), (16, true));
    }

    #[test]
    fn hystart_delay_ignores_a_rise_below_the_threshold() {
        let (mut c, mut w) = slow_start_at_16();
        let mut t = 100_000;
        for k in 1..=30 {
            t += 3000;
            let rtt = if k <= 8 { 10_000 } else { 13_900 };
            c.pkts_acked(&mut w, &sample(t, rtt, 5000 * k, 0));
        }
        assert_eq!(w.ssthresh, INFINITE_SSTHRESH);
    }

    #[test]
    fn hystart_waits_for_the_low_window() {
        let (mut c, _) = slow_start_at_16();
        let mut w = window(15, INFINITE_SSTHRESH);
        for k in 1..=10 {
            c.pkts_acked(&mut w, &sample(100_000 + 1000 * k, 1000, 1000 * k, 0));
        }
        assert_eq!((w.ssthresh, c.delay_min), (INFINITE_SSTHRESH, 1000));
    }

    #[test]
    fn delay_samples_in_the_first_second_of_an_epoch_are_discarded() {
        let mut c = Cubic { epoch_start: 1000, ..Cubic::default() };
        let mut w = window(20, 10);
        // jiffy 1249 − 1000 = 249 < HZ: discarded; jiffy 1250: taken.
        c.pkts_acked(&mut w, &AckSample { clock: at(1249), ..sample(0, 5000, 0, 0) });
        assert_eq!(c.delay_min, 0);
        c.pkts_acked(&mut w, &AckSample { clock: at(1250), ..sample(0, 5000, 0, 0) });
        assert_eq!(c.delay_min, 5000);
    }

    #[test]
    fn loss_state_resets_the_curve_and_hystart() {
        let (mut c, mut w) = slow_start_at_16();
        for k in 1..=5 {
            c.pkts_acked(&mut w, &sample(100_000 + 1000 * k, 9000, 1000 * k, 0));
        }
        assert!(c.found);
        c.ssthresh(&w);
        c.set_state(CaState::Loss, Clock { jiffies: 40, now_us: 160_000, hz: HZ }, 70_000);
        assert_eq!((c.found, c.last_max_cwnd, c.delay_min), (false, 0, 0));
        assert_eq!((c.round_start, c.end_seq, c.curr_rtt, c.sample_cnt), (160_000, 70_000, u32::MAX, 0));
        c.set_state(CaState::Recovery, at(50), 80_000);
        assert_eq!(c.end_seq, 70_000, "only Loss resets");
    }

    #[test]
    fn tx_start_after_idle_shifts_the_epoch_by_the_idle_time() {
        let mut c = Cubic { epoch_start: 1000, ..Cubic::default() };
        // Idle from jiffy 1100 to 1300: epoch 1000 + 200.
        c.cwnd_event(CaEvent::TxStart, at(1300), 1100);
        assert_eq!(c.epoch_start, 1200);
        // A shift past now is clamped to now.
        let mut c = Cubic { epoch_start: 1000, ..Cubic::default() };
        c.cwnd_event(CaEvent::TxStart, at(1300), 900);
        assert_eq!(c.epoch_start, 1300);
        // No epoch, nothing to shift.
        let mut c = Cubic::default();
        c.cwnd_event(CaEvent::TxStart, at(1300), 900);
        assert_eq!(c.epoch_start, 0);
    }
}
