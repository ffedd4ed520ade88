//! SYN cookies (net/ipv4/syncookies.c): a listener whose SYN queue is full answers a SYN
//! without keeping state, encoding what it must remember in its ISS (and, with
//! timestamps, in the low bits of its TSval), and rebuilds the connection from the
//! client's ACK.
//!
//! The layout is Linux's (`secure_tcp_syn_cookie`): `ISS = H1(tuple) + client_isn +
//! (count << 24) + ((H2(tuple, count) + mss_index) mod 2^24)`, `count` being minutes, a
//! cookie valid while `count` has advanced by less than `MAX_SYNCOOKIE_AGE` = 2. Linux's
//! keyed siphash is replaced by a keyed integer mix: the simulation needs determinism
//! and the same acceptance rule, not cryptographic strength.

use crate::time::{Dur, SimTime};
use crate::addr::SockAddr;

/// syncookies.c `msstab`: the four MSS values a cookie can carry (index in 2 bits).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

const COOKIEBITS: u32 = 24;
const COOKIEMASK: u32 = (1 << COOKIEBITS) - 1;
/// syncookies.c `MAX_SYNCOOKIE_AGE`, in `TCP_SYNCOOKIE_PERIOD`s.
const MAX_SYNCOOKIE_AGE: u32 = 2;
/// include/net/tcp.h `TCP_SYNCOOKIE_PERIOD` (60 s): the cookie clock's tick.
pub const SYNCOOKIE_PERIOD: Dur = Dur::from_secs(60);
/// include/net/tcp.h `TCP_SYNCOOKIE_VALID` (2 min): after the last SYN-queue overflow, ACKs
/// to a listener are checked as cookies only this long (`tcp_synq_no_recent_overflow`).
pub const SYNCOOKIE_VALID: Dur = Dur::from_secs(120);

/// syncookies.c `TSBITS`, `TS_OPT_WSCALE_MASK`, `TS_OPT_SACK`, `TS_OPT_ECN`: options
/// hidden in TSval.
const TSBITS: u32 = 6;
const TS_OPT_WSCALE_MASK: u32 = 0xf;
const TS_OPT_SACK: u32 = 1 << 4;
const TS_OPT_ECN: u32 = 1 << 5;

/// What a cookie's TSval remembers of the client's SYN.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CookieOptions {
    /// The client's window scale, `None` without window scaling.
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    /// ECN agreed (`ireq->ecn_ok`).
    pub ecn_ok: bool,
}

/// include/net/tcp.h `tcp_cookie_time`: the cookie clock, in periods.
fn cookie_time(now: SimTime) -> u32 {
    (now.as_nanos() / SYNCOOKIE_PERIOD.as_nanos()) as u32
}

/// A keyed mix of a connection's addresses and `salt` (stands in for Linux's siphash).
pub(crate) fn mix(secret: u64, remote: SockAddr, local: SockAddr, salt: u32) -> u32 {
    let tuple = (u64::from(remote.ip_word()) << 32 | u64::from(local.ip_word()))
        ^ (u64::from(remote.port()) << 48 | u64::from(local.port()) << 16 | u64::from(salt));
    let mut z = secret ^ tuple.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// Index of the largest table MSS not above the client's (`cookie_v4_init_sequence`).
fn mss_index(peer_mss: u16) -> u32 {
    (1..MSS_TABLE.len()).rev().find(|&i| peer_mss >= MSS_TABLE[i]).unwrap_or(0) as u32
}

/// The cookie ISS for a SYN from `remote` with sequence `client_isn`, and the MSS it
/// encodes (the one the connection will use toward the client).
pub fn cookie_isn(
    secret: u64,
    local: SockAddr,
    remote: SockAddr,
    client_isn: u32,
    peer_mss: u16,
    now: SimTime,
) -> (u32, u16) {
    let idx = mss_index(peer_mss);
    let count = cookie_time(now);
    let isn = mix(secret, remote, local, u32::MAX)
        .wrapping_add(client_isn)
        .wrapping_add(count << COOKIEBITS)
        .wrapping_add(mix(secret, remote, local, count).wrapping_add(idx) & COOKIEMASK);
    (isn, MSS_TABLE[idx as usize])
}

/// `__cookie_v4_check`: the MSS encoded in the ACK of a cookie SYN-ACK, or `None` if the
/// cookie is forged or older than `MAX_SYNCOOKIE_AGE` periods.
pub fn check_cookie(
    secret: u64,
    local: SockAddr,
    remote: SockAddr,
    seg_seq: u32,
    seg_ack: u32,
    now: SimTime,
) -> Option<u16> {
    let client_isn = seg_seq.wrapping_sub(1);
    let cookie = seg_ack.wrapping_sub(1).wrapping_sub(mix(secret, remote, local, u32::MAX)).wrapping_sub(client_isn);
    let count = cookie_time(now);
    let diff = count.wrapping_sub(cookie >> COOKIEBITS) & (u32::MAX >> COOKIEBITS);
    if diff >= MAX_SYNCOOKIE_AGE {
        return None;
    }
    let idx = cookie.wrapping_sub(mix(secret, remote, local, count.wrapping_sub(diff))) & COOKIEMASK;
    MSS_TABLE.get(idx as usize).copied()
}

/// `cookie_init_timestamp`: the SYN-ACK's TSval (before the per-connection offset) with the
/// client's window scale (15 = none), SACK permission and ECN in its low 6 bits, never above
/// `ts_now`.
pub fn cookie_tsval(ts_now: u32, o: CookieOptions) -> u32 {
    let mut options = o.wscale.map_or(TS_OPT_WSCALE_MASK, u32::from);
    if o.sack_ok {
        options |= TS_OPT_SACK;
    }
    if o.ecn_ok {
        options |= TS_OPT_ECN;
    }
    let ts = (ts_now >> TSBITS << TSBITS) | options;
    if ts > ts_now {
        ts.wrapping_sub(1 << TSBITS)
    } else {
        ts
    }
}

/// `cookie_timestamp_decode` and `cookie_ecn_ok`'s bit: the options from the TSecr of the
/// client's ACK (offset already removed).
pub fn decode_cookie_tsecr(tsecr: u32) -> CookieOptions {
    let wscale = tsecr & TS_OPT_WSCALE_MASK;
    CookieOptions {
        wscale: (wscale != TS_OPT_WSCALE_MASK).then_some(wscale as u8),
        sack_ok: tsecr & TS_OPT_SACK != 0,
        ecn_ok: tsecr & TS_OPT_ECN != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SockAddr, SockAddr) {
        ("10.0.0.2:80".parse().unwrap(), "10.0.0.1:40000".parse().unwrap())
    }

    #[test]
    fn cookie_round_trips_within_two_periods_and_then_expires() {
        let (l, r) = addrs();
        let t0 = SimTime(30 * 1_000_000_000);
        let (isn, mss) = cookie_isn(7, l, r, 1000, 1460, t0);
        assert_eq!(mss, 1460);
        let ok = |t: SimTime| check_cookie(7, l, r, 1001, isn.wrapping_add(1), t);
        assert_eq!(ok(t0), Some(1460));
        assert_eq!(ok(t0 + Dur::from_secs(89)), Some(1460)); // count advanced by 1
        assert_eq!(ok(t0 + Dur::from_secs(90)), None); // count advanced by 2
                                                       // Wrong secret, client ISN or ack: rejected. (As in Linux, only the 2-bit MSS index
        // is checked, so a seq or ack a few units off can still pass, with another MSS.)
        assert_eq!(check_cookie(8, l, r, 1001, isn.wrapping_add(1), t0), None);
        assert_eq!(check_cookie(7, l, r, 1001 + 5000, isn.wrapping_add(1), t0), None);
        assert_eq!(check_cookie(7, l, r, 1001, isn.wrapping_add(1 + 5000), t0), None);
    }

    #[test]
    fn mss_rounds_down_to_the_table() {
        let (l, r) = addrs();
        for (peer, want) in [(1460, 1460), (1459, 1440), (1300, 1300), (1000, 536), (100, 536), (9000, 1460)] {
            let (isn, mss) = cookie_isn(1, l, r, 5, peer, SimTime::ZERO);
            assert_eq!(mss, want);
            assert_eq!(check_cookie(1, l, r, 6, isn.wrapping_add(1), SimTime::ZERO), Some(want));
        }
    }

    #[test]
    fn timestamp_carries_wscale_sack_and_ecn() {
        let all = CookieOptions { wscale: Some(7), sack_ok: true, ecn_ok: true };
        let ts = cookie_tsval(100_000, all);
        assert!(ts <= 100_000 && 100_000 - ts < 64);
        // 7 | TS_OPT_SACK (16) | TS_OPT_ECN (32) in the low 6 bits.
        assert_eq!(ts & 63, 7 + 16 + 32);
        assert_eq!(decode_cookie_tsecr(ts), all);
        let none = CookieOptions::default();
        assert_eq!(decode_cookie_tsecr(cookie_tsval(100_000, none)), none);
    }
}
