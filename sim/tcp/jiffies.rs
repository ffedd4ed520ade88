//! When a TCP timer fires: Linux arms every TCP timer in jiffies and runs it from the timer
//! wheel, on a tick.
//!
//! - A timeout is a whole number of jiffies: the kernel keeps `icsk_rto`, `ato`,
//!   `TCP_TIMEOUT_MIN`, `TCP_RTO_MIN` in jiffies and converts microseconds and milliseconds
//!   rounding up (include/linux/jiffies.h `usecs_to_jiffies`, `msecs_to_jiffies`).
//! - The timer is armed for `jiffies + timeout` (`sk_reset_timer`, `inet_csk_reset_xmit_timer`,
//!   `tcp_send_delayed_ack`, `tcp_reset_keepalive_timer`, `reqsk_queue_hash_req`) and queued
//!   on the wheel (kernel/time/timer.c `__mod_timer` → `calc_wheel_index`), whose bucket
//!   rounds the expiry *up* to its level's granularity (`calc_index`: `(expires >>
//!   LVL_SHIFT(lvl)) + 1`, so even level 0 fires one jiffy past `expires`: "the timer wheel has
//!   to guarantee that a timer does not fire early").
//! - The bucket runs when `jiffies` reaches it, at a tick: jiffies advance every 1/HZ s.
//!
//! By default the model's ticks fall on multiples of 1/HZ from simulated time 0, with
//! `jiffies` = 0 there, on every host. A real kernel's phase is arbitrary: the profile's
//! `jiffies_offset_ns` says how long its jiffies clock had been running at simulated time 0,
//! which sets both where in a tick time 0 falls and the value of `jiffies` (a level-1 bucket
//! is 8 jiffies wide and aligned on multiples of 8, a level-2 one on 64). A replay infers it
//! from the first timer-driven segment of the capture (`sim/replay/ticks.rs`).
//!
//! `timers = "exact"` in the kernel profile keeps the textbook behaviour: a timer fires
//! `timeout` after it is armed (timeouts are still whole jiffies of the profile's `hz`).

use crate::tcp::profile::KernelProfile;
use crate::time::{Dur, SimTime};
use serde::{Deserialize, Serialize};

/// How a kernel profile's timers fire.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Timers {
    /// On the first tick at or after the timer wheel's bucket (Linux).
    #[default]
    Jiffies,
    /// Exactly `timeout` after arming: the textbook numbers.
    Exact,
}

/// `LVL_CLK_SHIFT`: each wheel level is 8 times coarser than the one below.
const LVL_CLK_SHIFT: u32 = 3;
/// `LVL_BITS`: 64 buckets a level.
const LVL_SIZE: u64 = 1 << 6;
const NSEC_PER_SEC: u64 = 1_000_000_000;

/// A host's jiffies clock and timer wheel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Jiffies {
    hz: u64,
    timers: Timers,
    /// How long `jiffies` had run at simulated time 0 (`jiffies_offset_ns`).
    offset_ns: u64,
}

impl Jiffies {
    pub fn of(p: &KernelProfile) -> Jiffies {
        Jiffies { hz: u64::from(p.hz.max(1)), timers: p.timers, offset_ns: p.jiffies_offset_ns }
    }

    /// `HZ`.
    pub fn hz(self) -> u32 {
        self.hz as u32
    }

    /// `usecs_to_jiffies` (and `msecs_to_jiffies`): a span in whole jiffies, rounded up.
    pub fn from_dur(self, d: Dur) -> u64 {
        (u128::from(d.as_nanos()) * u128::from(self.hz)).div_ceil(u128::from(NSEC_PER_SEC)) as u64
    }

    /// `jiffies_to_usecs`: the span of `j` jiffies.
    pub fn to_dur(self, j: u64) -> Dur {
        Dur::from_nanos(self.span_ns(j))
    }

    /// Nanoseconds in `j` jiffies, rounded up.
    fn span_ns(self, j: u64) -> u64 {
        (u128::from(j) * u128::from(NSEC_PER_SEC)).div_ceil(u128::from(self.hz)) as u64
    }

    /// `d` rounded up to whole jiffies, as the kernel stores a timeout.
    pub fn round_up(self, d: Dur) -> Dur {
        self.to_dur(self.from_dur(d))
    }

    /// The value of `jiffies` at `t`: the ticks since the clock started, `offset_ns` before
    /// time 0.
    pub fn at(self, t: SimTime) -> u64 {
        ((u128::from(t.as_nanos()) + u128::from(self.offset_ns)) * u128::from(self.hz) / u128::from(NSEC_PER_SEC)) as u64
    }

    /// When tick `j` happens (the first instant `jiffies` reads `j`).
    fn tick_time(self, j: u64) -> SimTime {
        SimTime(self.span_ns(j).saturating_sub(self.offset_ns))
    }

    /// When a timer armed at `now` for `timeout` runs: `jiffies + timeout` (timeout rounded
    /// up to jiffies), put in its wheel bucket, run at that bucket's tick. With exact
    /// timers, `now + timeout`.
    pub fn expiry(self, now: SimTime, timeout: Dur) -> SimTime {
        if self.timers == Timers::Exact {
            return now + timeout;
        }
        let clk = self.at(now);
        let expires = clk + self.from_dur(timeout);
        self.tick_time(bucket_expiry(expires, clk, self.depth()))
    }

    /// `LVL_DEPTH`: 8 levels at HZ ≤ 100, else 9.
    fn depth(self) -> u32 {
        if self.hz > 100 { 9 } else { 8 }
    }

    /// The width in jiffies of the wheel bucket that holds a timer due `delta` jiffies after
    /// it is queued (`LVL_GRAN` of its level): its bucket runs on a multiple of it.
    pub fn granularity(self, delta: u64) -> u64 {
        1 << (level(delta, self.depth()) * LVL_CLK_SHIFT)
    }
}

/// The wheel level a timer due `delta` jiffies ahead is queued on (`calc_wheel_index`): the
/// first whose range holds it, else the last.
fn level(delta: u64, depth: u32) -> u32 {
    (1..depth).find(|&n| delta < lvl_start(n)).map_or(depth - 1, |n| n - 1)
}

/// `LVL_START(n)`: the smallest delta queued on level `n`.
fn lvl_start(n: u32) -> u64 {
    (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)
}

/// kernel/time/timer.c `calc_wheel_index` with `calc_index`: the jiffy at which the bucket
/// holding a timer for `expires`, queued when the base's clock reads `clk`, runs. The level is
/// the first whose range holds `expires - clk`; its granularity rounds `expires` up, one
/// granule past it; a delta past the last level is cut to `WHEEL_TIMEOUT_MAX`.
pub fn bucket_expiry(expires: u64, clk: u64, depth: u32) -> u64 {
    let delta = expires - clk;
    let cutoff = lvl_start(depth);
    let lvl = level(delta, depth);
    let expires = match delta >= cutoff {
        true => clk + cutoff - (1 << ((depth - 1) * LVL_CLK_SHIFT)),
        false => expires,
    };
    let shift = lvl * LVL_CLK_SHIFT;
    ((expires >> shift) + 1) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(hz: u32) -> Jiffies {
        Jiffies { hz: u64::from(hz), timers: Timers::Jiffies, offset_ns: 0 }
    }

    #[test]
    fn conversions_round_up_as_usecs_to_jiffies() {
        let j = wheel(250);
        // usecs_to_jiffies(200_050) at HZ=250: 50.0125 → 51 jiffies.
        assert_eq!(j.from_dur(Dur::from_micros(200_050)), 51);
        assert_eq!(j.from_dur(Dur::from_millis(40)), 10); // TCP_DELACK_MIN = HZ/25
        assert_eq!(j.from_dur(Dur::ZERO), 0);
        assert_eq!(j.round_up(Dur::from_micros(200_050)), Dur::from_millis(204));
        assert_eq!(wheel(1000).round_up(Dur::from_micros(200_050)), Dur::from_millis(201));
        // HZ=300: a jiffy is 3.33 ms; 10 ms is 3 jiffies, tick 3 at exactly 10 ms.
        assert_eq!(wheel(300).from_dur(Dur::from_millis(10)), 3);
        assert_eq!(wheel(300).to_dur(3), Dur::from_millis(10));
    }

    #[test]
    fn calc_index_rounds_up_one_granule_past_expires() {
        // Level 0 (delta < 63): the next jiffy after expires, even for delta 0.
        assert_eq!(bucket_expiry(100, 100, 9), 101);
        assert_eq!(bucket_expiry(151, 100, 9), 152);
        // Level 1 (63 ≤ delta < 504): granularity 8, aligned on multiples of 8.
        assert_eq!(bucket_expiry(1000 + 102, 1000, 9), 1104);
        assert_eq!(bucket_expiry(1000 + 63, 1000, 9), 1064);
        assert_eq!(bucket_expiry(1000 + 503, 1000, 9), 1504);
        // Level 2 (504 ≤ delta < 4032): granularity 64.
        assert_eq!(bucket_expiry(504, 0, 9), 512);
        assert_eq!(bucket_expiry(1632, 0, 9), 1664);
        // Level 3 (4032 ≤ delta < 32256): granularity 512; TIME_WAIT's 60 s at HZ=250.
        assert_eq!(bucket_expiry(15000, 0, 9), 15360);
        let j = wheel(250);
        assert_eq!([62, 63, 503, 504, 15000].map(|d| j.granularity(d)), [1, 8, 8, 64, 512]);
    }

    #[test]
    fn timers_fire_on_the_tick_of_their_bucket() {
        let j = wheel(250);
        // The delayed ACK of a FIN with ato = 0 (tcp_send_delayed_ack: jiffies + 0), the
        // segment at 100.35 ms: jiffy 25, bucket 26, the tick at 104 ms.
        assert_eq!(j.expiry(SimTime(100_350_000), Dur::ZERO), SimTime(104_000_000));
        // TCP_DELACK_MIN (10 jiffies) armed at 0.3 ms: bucket 11, 44 ms.
        assert_eq!(j.expiry(SimTime(300_000), Dur::from_millis(40)), SimTime(44_000_000));
        // The first RTO of 51 jiffies, armed at 247.12 ms (jiffy 61): 208 ms after jiffy 61.
        assert_eq!(j.expiry(SimTime(247_120_000), Dur::from_millis(204)), SimTime(452_000_000));
        // A clock started 1.5 ms before time 0 ticks at 2.5 ms, 6.5 ms, …: the delayed ACK
        // above runs at jiffy 26 again, 1.5 ms earlier.
        let early = Jiffies { offset_ns: 1_500_000, ..j };
        assert_eq!(early.expiry(SimTime(100_350_000), Dur::ZERO), SimTime(102_500_000));
        // Started 2 jiffies + 1 ms before 0: jiffy 8 is at 5 ms, so a level-1 timer (the
        // initial RTO, 250 jiffies) armed at 0.5 ms (jiffy 2) runs at jiffy 256, 1.015 s.
        let aligned = Jiffies { offset_ns: 9_000_000, ..j };
        assert_eq!(aligned.at(SimTime(500_000)), 2);
        assert_eq!(aligned.expiry(SimTime(500_000), Dur::from_secs(1)), SimTime(1_015_000_000));
        // Exact timers: now + timeout.
        let exact = Jiffies { timers: Timers::Exact, ..j };
        assert_eq!(exact.expiry(SimTime(100_350_000), Dur::ZERO), SimTime(100_350_000));
    }
}
