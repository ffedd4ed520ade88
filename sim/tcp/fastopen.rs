//! TCP Fast Open, the client side (RFC 7413; net/ipv4/tcp_fastopen.c, tcp_output.c
//! `tcp_send_syn_data`, tcp_input.c `tcp_rcv_fastopen_synack`): the cookie as the FO option
//! carries it, the per-destination cookie cache a host keeps (`tcp_fastopen_cache_get/set`,
//! part of the TCP metrics), and the little state a connecting socket holds.
//!
//! Not modelled: the server side (a listener answering SYN-data), the blackhole detection
//! that turns active Fast Open off after timeouts (`tcp_fastopen_active_should_disable`:
//! it is off until a blackhole is seen, which the model never records), per-route
//! `RTAX_FASTOPEN_NO_COOKIE` and the `TCP_FASTOPEN_NO_COOKIE` socket option.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// `net.ipv4.tcp_fastopen` bits (include/net/tcp.h): the client may use Fast Open.
pub const TFO_CLIENT_ENABLE: u32 = 1;
/// ... and sends SYN-data without any cookie option.
pub const TFO_CLIENT_NO_COOKIE: u32 = 4;
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
    entries: BTreeMap<Ipv4Addr, (u64, Cached)>,
    /// A counter standing for `tcpm_stamp` (jiffies): the order entries were last used in.
    clock: u64,
}

/// 16384 chains of 5 (tcp_metrics.c `tcp_metrics_hash_log`, `TCP_METRICS_RECLAIM_DEPTH`).
const CACHE_ENTRIES: usize = 16384 * 5;

impl FastOpenCache {
    /// `tcp_fastopen_cache_get`: the destination's MSS, cookie and `try_exp`, if any.
    pub fn get(&self, daddr: Ipv4Addr) -> Option<&Cached> {
        self.entries.get(&daddr).map(|(_, c)| c)
    }

    /// `tcp_fastopen_cache_set` (with `tcp_get_metrics(…, create = true)`): a non-zero MSS
    /// and a valid cookie replace what was kept; without a cookie a higher `try_exp` is kept
    /// while no cookie is; a lost SYN-data counts, anything else clears the count.
    pub fn set(&mut self, daddr: Ipv4Addr, mss: u16, cookie: Option<FoCookie>, syn_lost: bool, try_exp: u8) {
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

/// A connecting socket's Fast Open state (what `struct tcp_fastopen_request` and the
/// `syn_fastopen`/`syn_data` bits of `tcp_sock`, and inet's `DEFER_CONNECT`, hold), kept
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
        let d = Ipv4Addr::new(192, 0, 2, 1);
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
    fn cookie_lengths_follow_tcp_parse_fastopen_option() {
        assert!(FoCookie::new(&[1, 2, 3, 4]).unwrap().valid());
        assert!(!FoCookie::new(&[1, 2, 3]).unwrap().valid());
        assert!(!FoCookie::new(&[1, 2]).unwrap().valid());
        assert!(FoCookie::new(&[0; 17]).is_none());
        assert_eq!(FoCookie::new(&[0; 8]).unwrap().option_len(), 10);
    }
}
