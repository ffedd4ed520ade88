//! Initial sequence numbers as Linux chooses them (net/core/secure_seq.c `secure_tcp_seq`,
//! RFC 6528 §3): a keyed hash of the 4-tuple plus a clock that ticks every 64 ns
//! (`seq_scale`: `ktime_get_real_ns() >> 6`). A reconnection on the same 4-tuple therefore
//! starts where the clock has moved on to, which is what lets a TIME_WAIT socket accept it
//! (`tcp_timewait_state_process`: a SYN above `rcv_nxt`) even without timestamps. The key is
//! per host (`net_secret`), drawn from the run's seed.

use crate::time::SimTime;
use crate::addr::SockAddr;

/// `secure_tcp_seq(saddr, daddr, sport, dport)` with the host's `key`, at `now`.
pub fn secure_tcp_seq(key: u64, local: SockAddr, remote: SockAddr, now: SimTime) -> u32 {
    let tuple = [
        local.ip_word() as u64,
        remote.ip_word() as u64,
        (local.port() as u64) << 16 | remote.port() as u64,
    ];
    let hash = tuple.iter().fold(key, |h, v| mix(h ^ v));
    (hash as u32).wrapping_add((now.as_nanos() >> 6) as u32)
}

/// A 64-bit finalizer (splitmix64): the keyed hash need only be deterministic and spread.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_tuple_advances_with_the_clock_other_tuples_differ() {
        let (a, b) = ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
        let c: SockAddr = "10.0.0.1:40001".parse().unwrap();
        let t0 = secure_tcp_seq(7, a, b, SimTime(0));
        assert_eq!(secure_tcp_seq(7, a, b, SimTime(64_000_000)).wrapping_sub(t0), 1_000_000);
        assert_ne!(secure_tcp_seq(7, c, b, SimTime(0)), t0);
        assert_ne!(secure_tcp_seq(8, a, b, SimTime(0)), t0);
    }
}
