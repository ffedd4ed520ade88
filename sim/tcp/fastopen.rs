//! TCP Fast Open (RFC 7413; net/ipv4/tcp_fastopen.c, tcp_output.c `tcp_send_syn_data`,
//! tcp_input.c `tcp_rcv_fastopen_synack`): the cookie as the FO option carries it, the
//! per-destination cookie cache a host keeps (`tcp_fastopen_cache_get/set`, part of the TCP
//! metrics), the little state a connecting socket holds, and the server's cookie: SipHash-2-4
//! of the address pair under the namespace's key ([`FastOpenKey`]).
//!
//! Not modelled: the blackhole detection that turns active Fast Open off after timeouts
//! (`tcp_fastopen_active_should_disable`: it is off until a blackhole is seen, which the
//! model never records), per-route `RTAX_FASTOPEN_NO_COOKIE`, the `TCP_FASTOPEN_NO_COOKIE`
//! socket option, per-listener keys (`TCP_FASTOPEN_KEY`) and the backup key.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `net.ipv4.tcp_fastopen` bits (include/net/tcp.h): the client may use Fast Open.
pub const TFO_CLIENT_ENABLE: u32 = 1;
/// ... and sends SYN-data without any cookie option.
pub const TFO_CLIENT_NO_COOKIE: u32 = 4;
/// ... the server answers SYNs with Fast Open (a listener with a Fast Open queue).
pub const TFO_SERVER_ENABLE: u32 = 2;
/// ... and takes SYN-data without any cookie.
pub const TFO_SERVER_COOKIE_NOT_REQD: u32 = 0x200;
/// ... and gives every listener a Fast Open queue as long as its backlog, without the
/// TCP_FASTOPEN socket option (af_inet.c `inet_listen`).
pub const TFO_SERVER_WO_SOCKOPT1: u32 = 0x400;
/// `TCP_FASTOPEN_COOKIE_SIZE`: the server's cookies are 8 bytes (one SipHash value).
pub const TCP_FASTOPEN_COOKIE_SIZE: usize = 8;
/// `TCP_FASTOPEN_COOKIE_MIN`/`_MAX` (include/linux/tcp.h): a cookie's length, in bytes.
pub const TCP_FASTOPEN_COOKIE_MIN: usize = 4;
pub const TCP_FASTOPEN_COOKIE_MAX: usize = 16;
/// `MAX_TCP_OPTION_SPACE`: the option room `tcp_send_syn_data` keeps free in a SYN-data.
pub const MAX_TCP_OPTION_SPACE: u32 = 40;

/// A Fast Open cookie as an FO option carries it (`struct tcp_fastopen_cookie`): up to 16
/// bytes; none is a cookie request. `exp`: the pre-RFC experimental option (kind 254,
/// magic 0xF989) instead of kind 34.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoCookie {
    len: u8,
    val: [u8; TCP_FASTOPEN_COOKIE_MAX],
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub exp: bool,
}

impl FoCookie {
    /// An empty cookie: the option asks for one.
    pub const REQUEST: FoCookie = FoCookie { len: 0, val: [0; TCP_FASTOPEN_COOKIE_MAX], exp: false };

    /// The cookie `bytes` (at most 16), in the RFC 7413 option.
    pub fn new(bytes: &[u8]) -> Option<FoCookie> {
        let mut val = [0; TCP_FASTOPEN_COOKIE_MAX];
        val.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(FoCookie { len: bytes.len() as u8, val, exp: false })
    }

    /// The same cookie in the experimental option (or not).
    pub fn with_exp(self, exp: bool) -> FoCookie {
        FoCookie { exp, ..self }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.val[..usize::from(self.len)]
    }

    pub fn is_request(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the option itself: kind, length (and the experimental magic), the cookie.
    pub fn option_len(&self) -> u32 {
        u32::from(self.len) + if self.exp { 4 } else { 2 }
    }

    /// `tcp_parse_fastopen_option`: a cookie of a valid length (4..=16, even) is kept; any
    /// other is read as no cookie at all.
    pub fn valid(&self) -> bool {
        let n = usize::from(self.len);
        (TCP_FASTOPEN_COOKIE_MIN..=TCP_FASTOPEN_COOKIE_MAX).contains(&n) && n % 2 == 0
    }
}

/// The key a network namespace's listeners make cookies with (`struct tcp_fastopen_context`'s
/// primary `siphash_key_t`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FastOpenKey([u64; 2]);

impl FastOpenKey {
    /// A key from 16 random bytes (`tcp_fastopen_init_key_once`: `get_random_bytes`), read as
    /// `tcp_fastopen_reset_cipher` reads any key: two little-endian 64-bit words.
    pub fn from_bytes(b: [u8; 16]) -> FastOpenKey {
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        FastOpenKey([word(0), word(8)])
    }

    /// `net.ipv4.tcp_fastopen_key` as written, `%x-%x-%x-%x` (sysctl_net_ipv4.c
    /// `proc_tcp_fastopen_key`: each word stored little-endian, in order; a backup key after a
    /// comma is ignored here); `None` if it does not parse.
    pub fn parse(text: &str) -> Option<FastOpenKey> {
        let primary = text.trim().split(',').next()?;
        let words: Vec<u32> = primary.split('-').map(|w| u32::from_str_radix(w, 16).ok()).collect::<Option<_>>()?;
        let words: [u32; 4] = words.try_into().ok()?;
        let mut b = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        Some(FastOpenKey::from_bytes(b))
    }

    /// `__tcp_fastopen_cookie_gen_cipher`: SipHash-2-4 of the SYN's source and destination
    /// addresses in network order (8 bytes for IPv4, 32 for IPv6: `ip6h->saddr` and `daddr`
    /// side by side), the value little-endian.
    pub fn cookie(&self, saddr: IpAddr, daddr: IpAddr) -> FoCookie {
        let ((s, sn), (d, dn)) = (crate::addr::octets(saddr), crate::addr::octets(daddr));
        let path: Vec<u8> = s[..sn].iter().chain(&d[..dn]).copied().collect();
        let v = siphash24(self.0, &path);
        FoCookie::new(&v.to_le_bytes()).expect("8 bytes fit")
    }
}

/// SipHash-2-4 (lib/siphash.c `siphash`) of `data` under `key`.
fn siphash24(key: [u64; 2], data: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    };
    let chunks = data.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        compress(&mut v, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    compress(&mut v, u64::from_le_bytes(last) | (data.len() as u64) << 56);
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// What a destination's cache entry holds (`struct tcp_fastopen_metrics`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cached {
    /// The MSS the server's SYN-ACK offered (0: none learnt).
    pub mss: u16,
    /// The cookie (None: none learnt).
    pub cookie: Option<FoCookie>,
    /// `try_exp`: 1 when a request in the RFC option drew no cookie (try the experimental
    /// option next), 2 when the experimental one did not either.
    pub try_exp: u8,
    /// Consecutive SYN-data losses (what `ip tcp_metrics show` lists as `fo_syn_drops`).
    pub syn_loss: u32,
}

/// The TCP metrics' Fast Open part, per destination (tcp_metrics.c: entries keyed by the
/// address pair; a host here has one address, so by the destination's). Bounded: the
/// kernel's hash holds `2^tcp_metrics_hash_log` chains (16384 on a machine with 512 MB or
/// more) of at most `TCP_METRICS_RECLAIM_DEPTH` (5) entries each, a full chain reusing its
/// least recently used entry (`tcpm_suck_dst` on the oldest `tcpm_stamp`); the model keeps
/// as many entries and reuses the least recently used of them all, oldest stamp first and
/// the lower address on a tie, so the choice never depends on iteration order.
#[derive(Clone, Debug, Default)]
pub struct FastOpenCache {
    entries: BTreeMap<IpAddr, (u64, Cached)>,
    /// A counter standing for `tcpm_stamp` (jiffies): the order entries were last used in.
    clock: u64,
}

/// 16384 chains of 5 (tcp_metrics.c `tcp_metrics_hash_log`, `TCP_METRICS_RECLAIM_DEPTH`).
const CACHE_ENTRIES: usize = 16384 * 5;

impl FastOpenCache {
    /// `tcp_fastopen_cache_get`: the destination's MSS, cookie and `try_exp`, if any.
    pub fn get(&self, daddr: IpAddr) -> Option<&Cached> {
        self.entries.get(&daddr).map(|(_, c)| c)
    }

    /// `tcp_fastopen_cache_set` (with `tcp_get_metrics(…, create = true)`): a non-zero MSS
    /// and a valid cookie replace what was kept; without a cookie a higher `try_exp` is kept
    /// while no cookie is; a lost SYN-data counts, anything else clears the count.
    pub fn set(&mut self, daddr: IpAddr, mss: u16, cookie: Option<FoCookie>, syn_lost: bool, try_exp: u8) {
        if !self.entries.contains_key(&daddr) && self.entries.len() >= CACHE_ENTRIES {
            let oldest = self.entries.iter().min_by_key(|(a, (stamp, _))| (*stamp, **a)).map(|(a, _)| *a);
            if let Some(a) = oldest {
                self.entries.remove(&a);
            }
        }
        self.clock += 1;
        let (stamp, m) = self.entries.entry(daddr).or_default();
        *stamp = self.clock;
        if mss != 0 {
            m.mss = mss;
        }
        match cookie {
            Some(c) if !c.is_request() => m.cookie = Some(c),
            _ if try_exp > m.try_exp && m.cookie.is_none() => m.try_exp = try_exp,
            _ => {}
        }
        if syn_lost {
            m.syn_loss += 1;
        } else {
            m.syn_loss = 0;
        }
    }

    /// `ip tcp_metrics flush all`.
    pub fn flush(&mut self) {
        self.entries.clear();
    }
}

/// A socket's Fast Open state (what `struct tcp_fastopen_request`, the `syn_fastopen`/
/// `syn_data` bits and `fastopen_rsk` of `tcp_sock`, and inet's `DEFER_CONNECT`, hold), kept
/// out of line: only sockets that use Fast Open have one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActiveOpen {
    /// `inet DEFER_CONNECT`: connect() returned 0 without a SYN; the first write sends it.
    pub defer_connect: bool,
    /// `tp->fastopen_req` is allocated (a second MSG_FASTOPEN is EALREADY).
    pub req: bool,
    /// `fastopen_req->data` is still set: the request holds write data the SYN did not take
    /// (`tcp_send_syn_data` clears it when the SYN took the whole write). A writer waiting
    /// for the handshake counts in `sk_write_pending` only then (`writebias`).
    pub req_data: bool,
    /// A blocking write sleeps in `inet_wait_for_connect` (`tcp_sendmsg_fastopen` →
    /// `__inet_stream_connect`), its SYN having taken this many bytes
    /// (`fastopen_req->copied`).
    pub sleeping: Option<u32>,
    /// `tp->syn_fastopen`: the SYN carried the FO option; `syn_fastopen_exp` in its
    /// experimental form.
    pub syn_fastopen: bool,
    pub syn_fastopen_exp: bool,
    /// `tp->syn_data`: the SYN carried data; `syn_data_acked`: and the SYN-ACK acknowledged
    /// all of it.
    pub syn_data: bool,
    pub syn_data_acked: bool,
    /// A blocking Fast Open write waits for the handshake (`sk_write_pending`, raised by
    /// `inet_wait_for_connect`'s `writebias`).
    pub write_pending: bool,
    /// What `tcp_rcv_fastopen_synack` learnt for the host's cache, not yet taken.
    pub learnt: Option<Learnt>,
    /// `tp->fastopen_rsk` is set: a child `tcp_fastopen_create_child` made at the SYN, its
    /// handshake not complete (it may read and write in SYN_RECV).
    pub passive: bool,
}

/// A `tcp_fastopen_cache_set` call for the host to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learnt {
    pub mss: u16,
    pub cookie: Option<FoCookie>,
    pub syn_lost: bool,
    pub try_exp: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_kept_and_a_request_without_answer_raises_try_exp_only_while_none_is() {
        let mut c = FastOpenCache::default();
        let d = IpAddr::from([192, 0, 2, 1]);
        c.set(d, 0, None, false, 1);
        assert_eq!(c.get(d).map(|m| m.try_exp), Some(1));
        let k = FoCookie::new(&[0xab, 0xcd, 0x12, 0x34]).unwrap();
        c.set(d, 1460, Some(k), false, 0);
        c.set(d, 0, None, true, 2);
        let m = c.get(d).unwrap();
        // tcp_fastopen_cache_set: the MSS stays when 0 is passed, the cookie is kept, and
        // try_exp does not move once a cookie is cached.
        assert_eq!((m.mss, m.cookie, m.try_exp, m.syn_loss), (1460, Some(k), 1, 1));
        c.flush();
        assert!(c.get(d).is_none());
    }

    #[test]
    fn the_servers_cookie_is_the_one_packetdrills_run_all_expects() {
        // run_all.py runs the IPv4 scripts from 192.0.2.1 to 192.168.0.1 with
        // `-D TFO_COOKIE=3021b9d889017eeb` under defaults.sh's key, and
        // `-D TFO_COOKIE_ZERO=b7c12350a90dc8f5` under the all-zero key.
        let (client, server) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 168, 0, 1]));
        let key = FastOpenKey::parse("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4").unwrap();
        let want = [0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb];
        assert_eq!(key.cookie(client, server).bytes(), want);
        let zero = FastOpenKey::parse("00000000-00000000-00000000-00000000").unwrap();
        assert_eq!(zero.cookie(client, server).bytes(), [0xb7, 0xc1, 0x23, 0x50, 0xa9, 0x0d, 0xc8, 0xf5]);
        assert_eq!(FastOpenKey::parse("a1a1a1a1-b2b2b2b2-c3c3c3c3"), None);
    }

    #[test]
    fn cookie_lengths_follow_tcp_parse_fastopen_option() {
        assert!(FoCookie::new(&[1, 2, 3, 4]).unwrap().valid());
        assert!(!FoCookie::new(&[1, 2, 3]).unwrap().valid());
        assert!(!FoCookie::new(&[1, 2]).unwrap().valid());
        assert!(FoCookie::new(&[0; 17]).is_none());
        assert_eq!(FoCookie::new(&[0; 8]).unwrap().option_len(), 10);
    }
}
