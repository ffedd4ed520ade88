//! The established hash (`inet_ehash`): (local, remote) → connection, looked up on every
//! segment a host receives.
//!
//! A hash map, not an ordered map: at a million connections an ordered lookup is twenty
//! cache misses, a hash lookup one or two. The hasher is fixed (no per-process random key),
//! and nothing ever iterates the map, so no result depends on its order. It also counts the
//! connections on each local port, which is what `bind()` and the ephemeral port search ask
//! (`inet_bind_bucket`'s owners) without a scan, and the connections from each local address
//! to each peer on an ephemeral port, so that a connect() to a peer every ephemeral port
//! already reaches fails at once instead of trying the whole range.

use super::sockets::ConnId;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use crate::addr::SockAddr;

/// A connection's key: its (local, remote) addresses.
pub type FourTuple = (SockAddr, SockAddr);

/// A multiply-rotate hasher (the `FxHash` scheme) for the few words of a 4-tuple: cheap,
/// deterministic, and good enough for addresses the scenario chose.
#[derive(Default, Clone, Copy)]
pub struct FlowHasher(u64);

impl Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The established hash of one host.
pub struct EHash {
    map: HashMap<FourTuple, ConnId, BuildHasherDefault<FlowHasher>>,
    /// Connections per local port (ports with none are absent).
    per_port: BTreeMap<u16, u32>,
    /// `ip_local_port_range`, inclusive.
    ephemeral: [u16; 2],
    /// Connections per (local address, peer) whose local port is in `ephemeral`.
    per_peer: BTreeMap<(std::net::IpAddr, SockAddr), u32>,
}

impl EHash {
    pub fn new(ip_local_port_range: [u16; 2]) -> EHash {
        EHash { map: HashMap::default(), per_port: BTreeMap::new(), ephemeral: ip_local_port_range, per_peer: BTreeMap::new() }
    }

    fn ephemeral_peer(&self, key: &FourTuple) -> Option<(std::net::IpAddr, SockAddr)> {
        let [low, high] = self.ephemeral;
        (low..=high).contains(&key.0.port()).then(|| (key.0.ip(), key.1))
    }

    pub fn get(&self, key: &FourTuple) -> Option<ConnId> {
        self.map.get(key).copied()
    }

    pub fn insert(&mut self, key: FourTuple, id: ConnId) {
        if self.map.insert(key, id).is_none() {
            *self.per_port.entry(key.0.port()).or_default() += 1;
            if let Some(peer) = self.ephemeral_peer(&key) {
                *self.per_peer.entry(peer).or_default() += 1;
            }
        }
    }

    pub fn remove(&mut self, key: &FourTuple) -> Option<ConnId> {
        let id = self.map.remove(key)?;
        let port = key.0.port();
        if let Some(n) = self.per_port.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.per_port.remove(&port);
            }
        }
        if let Some(peer) = self.ephemeral_peer(key) {
            if let Some(n) = self.per_peer.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(&peer);
                }
            }
        }
        Some(id)
    }

    /// Whether connections from `local` to `remote` hold every port of the ephemeral range,
    /// so that no 4-tuple to `remote` is left for a connect() (`__inet_hash_connect` would
    /// try them all and fail with EADDRNOTAVAIL).
    pub fn ephemeral_exhausted(&self, local: std::net::IpAddr, remote: SockAddr) -> bool {
        let [low, high] = self.ephemeral;
        let ports = u32::from(high.max(low) - low.min(high)) + 1;
        self.per_peer.get(&(local, remote)).is_some_and(|n| *n >= ports)
    }

    /// Whether some connection has local port `port`.
    pub fn port_used(&self, port: u16) -> bool {
        self.per_port.contains_key(&port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(lport: u16, rport: u16) -> FourTuple {
        (SockAddr::new(IpAddr::from([10, 0, 0, 1]), lport), SockAddr::new(IpAddr::from([10, 0, 0, 2]), rport))
    }

    #[test]
    fn counts_connections_per_local_port() {
        let mut h = EHash::new([32768, 60999]);
        h.insert(key(40000, 80), ConnId(0));
        h.insert(key(40000, 81), ConnId(1));
        assert!(h.port_used(40000));
        assert_eq!(h.remove(&key(40000, 80)), Some(ConnId(0)));
        assert!(h.port_used(40000), "one connection left on the port");
        assert_eq!(h.remove(&key(40000, 80)), None, "already gone");
        h.remove(&key(40000, 81));
        assert!(!h.port_used(40000));
        assert_eq!(h.get(&key(40000, 81)), None);
    }

    /// The range [40000, 40002] to one peer: exhausted when its three ports all reach the
    /// peer, not before, not by ports outside the range or connections to another peer, and
    /// no longer once one of them is gone.
    #[test]
    fn knows_when_every_ephemeral_port_reaches_a_peer() {
        let mut h = EHash::new([40000, 40002]);
        let (local, peer) = (IpAddr::from([10, 0, 0, 1]), SockAddr::new(IpAddr::from([10, 0, 0, 2]), 80));
        h.insert(key(80, 5555), ConnId(9));
        h.insert(key(39999, 80), ConnId(8));
        h.insert(key(40000, 81), ConnId(7));
        for (i, p) in [40000, 40001].into_iter().enumerate() {
            h.insert(key(p, 80), ConnId(i as u32));
            assert!(!h.ephemeral_exhausted(local, peer), "port {p}");
        }
        h.insert(key(40002, 80), ConnId(2));
        assert!(h.ephemeral_exhausted(local, peer));
        h.insert(key(40002, 80), ConnId(3));
        h.remove(&key(40001, 80));
        assert!(!h.ephemeral_exhausted(local, peer), "a port is free again");
    }
}
