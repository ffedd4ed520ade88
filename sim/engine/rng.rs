//! Seeded randomness, split into independent named streams.
//!
//! One ChaCha12 key is derived from the run's seed; each consumer (a link direction, a host,
//! an application) gets its own ChaCha *stream* of that key, chosen by a stable hash of its
//! name. Streams never overlap, so one more draw on one link shifts nothing elsewhere, and
//! adding a host does not change what the existing ones draw.

use crate::time::Dur;
use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

pub use rand_chacha::ChaCha12Rng as StreamRng;

/// The run's generators, by name.
#[derive(Clone, Debug)]
pub struct RngStreams {
    key: [u8; 32],
}

impl RngStreams {
    /// Expands `seed` into a ChaCha key with rand_core's `seed_from_u64` (a fixed PCG32
    /// expansion, specified as portable and stable by rand_core).
    pub fn new(seed: u64) -> Self {
        RngStreams { key: ChaCha12Rng::seed_from_u64(seed).get_seed() }
    }

    /// The generator named `name`: same key, stream number `fnv1a64(name)`.
    pub fn stream(&self, name: &str) -> ChaCha12Rng {
        let mut rng = ChaCha12Rng::from_seed(self.key);
        rng.set_stream(fnv1a64(name.as_bytes()));
        rng
    }
}

/// FNV-1a, 64 bits: a stable, dependency-free hash (std's hashers are not stable across
/// releases, and `DefaultHasher` is randomly keyed).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A probability as an integer threshold: an event happens when a uniform `u64` draw is
/// below it.
///
/// Converting once from `f64` is deterministic on every machine: multiplying by 2^64 only
/// changes the exponent (exact in IEEE 754 binary64), and Rust defines the float-to-integer
/// cast (truncating, saturating). After that, deciding is an integer comparison; no
/// floating-point arithmetic happens per draw, so no rounding mode or FMA can change a result.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Prob {
    /// `p * 2^64`, with `always` covering p = 1 (2^64 does not fit).
    threshold: u64,
    always: bool,
}

impl Prob {
    pub const NEVER: Prob = Prob { threshold: 0, always: false };

    /// `p` must be in [0, 1]; anything else (NaN included) is `None`.
    pub fn new(p: f64) -> Option<Prob> {
        if !(0.0..=1.0).contains(&p) {
            return None;
        }
        if p == 1.0 {
            return Some(Prob { threshold: 0, always: true });
        }
        Some(Prob { threshold: (p * 18_446_744_073_709_551_616.0) as u64, always: false })
    }

    /// Whether the event can happen at all.
    pub fn is_never(self) -> bool {
        !self.always && self.threshold == 0
    }

    /// Draws once, unless the outcome is certain (p = 0 or 1): then nothing is drawn, so
    /// that setting a probability to 0 leaves the stream exactly as if it were absent.
    #[inline]
    pub fn sample(self, rng: &mut impl RngCore) -> bool {
        if self.always {
            return true;
        }
        self.threshold != 0 && rng.next_u64() < self.threshold
    }
}

/// True with probability `p` (see [`Prob`] for why this is deterministic across machines).
/// Panics if `p` is outside [0, 1]; validate probabilities with [`Prob::new`] first.
pub fn chance(rng: &mut impl RngCore, p: f64) -> bool {
    Prob::new(p).expect("probability outside [0, 1]").sample(rng)
}

/// A duration drawn uniformly from `[0, max]` (inclusive), without bias (Lemire's
/// multiply-and-reject). `max = 0` draws nothing.
pub fn uniform_dur(rng: &mut impl RngCore, max: Dur) -> Dur {
    if max.0 == 0 {
        return Dur::ZERO;
    }
    let Some(range) = max.0.checked_add(1) else {
        return Dur(rng.next_u64());
    };
    let threshold = range.wrapping_neg() % range;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(range);
        if (m as u64) >= threshold {
            return Dur((m >> 64) as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rng: &mut ChaCha12Rng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn streams_are_independent() {
        let s = RngStreams::new(7);
        let mut a = s.stream("link/l0/a_to_b");
        let mut b = s.stream("host/client");
        let b_alone = draws(&mut b, 8);

        let mut a2 = s.stream("link/l0/a_to_b");
        let mut b2 = s.stream("host/client");
        draws(&mut a2, 1000); // many more draws on one stream...
        assert_eq!(draws(&mut b2, 8), b_alone); // ...change nothing on another
        assert_ne!(draws(&mut a, 8), b_alone);
    }

    #[test]
    fn same_seed_same_draws_and_seeds_differ() {
        let x = draws(&mut RngStreams::new(1).stream("h"), 4);
        assert_eq!(x, draws(&mut RngStreams::new(1).stream("h"), 4));
        assert_ne!(x, draws(&mut RngStreams::new(2).stream("h"), 4));
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn prob_edges_and_rate() {
        let mut r = RngStreams::new(3).stream("p");
        assert!(Prob::new(-0.1).is_none() && Prob::new(1.5).is_none() && Prob::new(f64::NAN).is_none());
        assert!((0..100).all(|_| Prob::new(1.0).unwrap().sample(&mut r)));
        assert!((0..100).all(|_| !Prob::new(0.0).unwrap().sample(&mut r)));
        assert_eq!(Prob::new(0.5).unwrap().threshold, 1 << 63);
        let hits = (0..100_000).filter(|_| chance(&mut r, 0.25)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }

    #[test]
    fn certain_outcomes_draw_nothing() {
        let mut r = RngStreams::new(3).stream("p");
        let before = r.clone();
        Prob::NEVER.sample(&mut r);
        Prob::new(1.0).unwrap().sample(&mut r);
        uniform_dur(&mut r, Dur::ZERO);
        assert_eq!(r, before);
    }

    #[test]
    fn uniform_dur_stays_in_range_and_hits_both_ends() {
        let mut r = RngStreams::new(4).stream("u");
        let v: Vec<u64> = (0..2000).map(|_| uniform_dur(&mut r, Dur(3)).0).collect();
        assert!(v.iter().all(|&x| x <= 3));
        assert!(v.contains(&0) && v.contains(&3));
    }
}
