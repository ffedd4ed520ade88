//! Socket addresses, IPv4 or IPv6, in 8 bytes.
//!
//! Every connection holds its two endpoints and the established hash keys on them, so at a
//! million connections each byte of an address counts. A [`SockAddr`] is an IPv4 address
//! and port as they are (what `SocketAddrV4` was), or a port and the index of an IPv6
//! address in a process-wide table of the IPv6 addresses seen so far: a run meets a few
//! (its hosts, a capture's peers), never one a connection.
//!
//! The index is never shown and never orders anything: equality and hashing use it (equal
//! addresses have equal indices), while [`Ord`] and [`Display`](fmt::Display) resolve it, so
//! no result depends on which run or thread met an address first. IPv4 orders before IPv6
//! and an IPv4 address orders as `SocketAddrV4` did, so IPv4 runs are unchanged.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::RwLock;

/// An IPv4 or IPv6 address and a port (see the module documentation).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct SockAddr {
    /// The IPv4 address's bits, or the IPv6 address's index in [`V6`].
    ip: u32,
    port: u16,
    v6: bool,
}

/// The IPv6 addresses met so far, by index, and the index of each.
struct V6Table {
    addrs: Vec<Ipv6Addr>,
    index: BTreeMap<Ipv6Addr, u32>,
}

static V6: RwLock<V6Table> = RwLock::new(V6Table { addrs: Vec::new(), index: BTreeMap::new() });

/// The index of `a` in [`V6`], adding it the first time.
fn intern(a: Ipv6Addr) -> u32 {
    if let Some(i) = V6.read().unwrap_or_else(|e| e.into_inner()).index.get(&a) {
        return *i;
    }
    let mut t = V6.write().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = t.index.get(&a) {
        return *i;
    }
    let i = u32::try_from(t.addrs.len()).expect("fewer than 2^32 IPv6 addresses in one process");
    t.addrs.push(a);
    t.index.insert(a, i);
    i
}

impl SockAddr {
    pub fn new(ip: impl Into<IpAddr>, port: u16) -> SockAddr {
        match ip.into() {
            IpAddr::V4(a) => SockAddr { ip: u32::from(a), port, v6: false },
            IpAddr::V6(a) => SockAddr { ip: intern(a), port, v6: true },
        }
    }

    /// An IPv4 address and port, in a constant.
    pub const fn v4(ip: Ipv4Addr, port: u16) -> SockAddr {
        SockAddr { ip: ip.to_bits(), port, v6: false }
    }

    pub fn ip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(V6.read().unwrap_or_else(|e| e.into_inner()).addrs[self.ip as usize])
        } else {
            IpAddr::V4(Ipv4Addr::from(self.ip))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// The address as one word for the simulator's keyed hashes: an IPv4 address's bits
    /// (what they always hashed), an IPv6 address's four words folded.
    pub fn ip_word(&self) -> u32 {
        ip_word(self.ip())
    }
}

/// The address in the host part of a connect target: `A.B.C.D`, or an IPv6 address in
/// brackets as in `[2001:db8::2]:80`.
pub fn parse_host_ip(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// [`SockAddr::ip_word`] of a bare address.
pub fn ip_word(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let w = a.to_bits();
            (w as u32) ^ ((w >> 32) as u32) ^ ((w >> 64) as u32) ^ ((w >> 96) as u32)
        }
    }
}

/// The address's bytes, 4 or 16 (for hashes that take the octets).
pub fn octets(ip: IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

impl Ord for SockAddr {
    fn cmp(&self, other: &SockAddr) -> Ordering {
        match (self.v6, other.v6) {
            (false, false) => (self.ip, self.port).cmp(&(other.ip, other.port)),
            _ => (self.ip(), self.port).cmp(&(other.ip(), other.port)),
        }
    }
}

impl PartialOrd for SockAddr {
    fn partial_cmp(&self, other: &SockAddr) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> SockAddr {
        SockAddr::new(a.ip(), a.port())
    }
}

impl From<SockAddr> for SocketAddr {
    fn from(a: SockAddr) -> SocketAddr {
        SocketAddr::new(a.ip(), a.port())
    }
}

impl From<std::net::SocketAddrV4> for SockAddr {
    fn from(a: std::net::SocketAddrV4) -> SockAddr {
        SockAddr::new(*a.ip(), a.port())
    }
}

/// `10.0.0.1:80` or `[2001:db8::1]:80`, as [`SocketAddr`] writes them.
impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&SocketAddr::from(*self), f)
    }
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// As `SocketAddr` serializes: the [`Display`](fmt::Display) string.
impl serde::Serialize for SockAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for SockAddr {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<SockAddr, Self::Err> {
        s.parse::<SocketAddr>().map(SockAddr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bytes_and_both_families_round_trip() {
        assert_eq!(std::mem::size_of::<SockAddr>(), 8);
        for s in ["10.0.0.1:80", "[2001:db8::1]:443", "[::ffff:10.0.0.1]:7"] {
            let a: SockAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(SocketAddr::from(a), s.parse::<SocketAddr>().unwrap());
        }
    }

    #[test]
    fn order_is_the_addresses_not_the_table() {
        // Met in descending order, ordered ascending: the table's order does not leak.
        let hi: SockAddr = "[2001:db8::9]:1".parse().unwrap();
        let lo: SockAddr = "[2001:db8::2]:1".parse().unwrap();
        let v4: SockAddr = "192.0.2.1:9".parse().unwrap();
        assert!(lo < hi && v4 < lo);
        assert_eq!(lo, "[2001:db8::2]:1".parse().unwrap());
        assert!("10.0.0.1:9".parse::<SockAddr>().unwrap() < "10.0.0.2:1".parse().unwrap());
    }
}
