//! The established hash (`inet_ehash`): (local, remote) → connection, looked up on every
//! segment a host receives.
//!
//! A hash table, not an ordered map: at a million connections an ordered lookup is twenty
//! cache misses. The table ([`FlowTable`]) keeps each 4-tuple beside its connection in one
//! array, probed linearly, so that a lookup reads one cache line, not the two of a hash map
//! with its control bytes apart (a 44 MB table at a million: a miss each, on every segment).
//! Linux's ehash bucket leads to the socket itself and compares the 4-tuple there
//! (`INET_MATCH` in `__inet_lookup_established`) for the same reason. The hasher is fixed (no
//! per-process random key), and nothing ever iterates the table, so no result depends on
//! its order. It also counts the
//! connections on each local port, which is what `bind()` and the ephemeral port search ask
//! (`inet_bind_bucket`'s owners) without a scan, and the ephemeral ports each local address
//! holds to each peer, so that connect()'s port search skips the taken ones a word of 64 ports
//! at a time instead of looking each 4-tuple up (`__inet_hash_connect` tries them one by one;
//! with 25 000 connections from one host to one server, the even ports fill up and each later
//! connect() tries all 14 116 of them first), and fails at once when all are taken.

use super::sockets::ConnId;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
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

/// A free slot of [`FlowTable`]: no host has 2^32 - 1 connections.
const EMPTY: ConnId = ConnId(u32::MAX);

/// 4-tuple → connection: open addressing, linear probing, at most three quarters full;
/// removal shifts the entries behind back (no tombstones), so a lookup stops at the first
/// free slot.
#[derive(Default)]
struct FlowTable {
    /// A power of two long (or empty); free slots hold [`EMPTY`].
    slots: Vec<(FourTuple, ConnId)>,
    len: usize,
}

impl FlowTable {
    /// The slot where `key`'s probe starts: the hash's high bits (the multiply mixes into
    /// them, not into the low ones).
    fn home(&self, key: &FourTuple) -> usize {
        let mut h = FlowHasher::default();
        key.hash(&mut h);
        (h.finish() >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The slot holding `key`, or the free one where it would go.
    fn find(&self, key: &FourTuple) -> (usize, bool) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let (k, id) = &self.slots[i];
            if *id == EMPTY {
                return (i, false);
            }
            if k == key {
                return (i, true);
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, key: &FourTuple) -> Option<ConnId> {
        if self.len == 0 {
            return None;
        }
        let (i, found) = self.find(key);
        found.then(|| self.slots[i].1)
    }

    fn contains_key(&self, key: &FourTuple) -> bool {
        self.get(key).is_some()
    }

    /// Maps `key` to `id`; the connection it replaces, if any.
    fn insert(&mut self, key: FourTuple, id: ConnId) -> Option<ConnId> {
        debug_assert!(id != EMPTY);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(key);
        }
        let (i, found) = self.find(&key);
        let old = std::mem::replace(&mut self.slots[i], (key, id));
        if found {
            return Some(old.1);
        }
        self.len += 1;
        None
    }

    fn remove(&mut self, key: &FourTuple) -> Option<ConnId> {
        if self.len == 0 {
            return None;
        }
        let (mut hole, found) = self.find(key);
        if !found {
            return None;
        }
        let id = self.slots[hole].1;
        self.len -= 1;
        // Backward shift: an entry further along the run moves into the hole when its probe
        // (from its home to where it sits) passes over the hole.
        let mask = self.slots.len() - 1;
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            if self.slots[i].1 == EMPTY {
                break;
            }
            let home = self.home(&self.slots[i].0);
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[i];
                hole = i;
            }
        }
        self.slots[hole].1 = EMPTY;
        Some(id)
    }

    /// Doubles the slots (16 at first) and puts every entry back; free slots hold `filler`
    /// as their (unread) key.
    fn grow(&mut self, filler: FourTuple) {
        let n = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![(filler, EMPTY); n]);
        for (key, id) in old.into_iter().filter(|(_, id)| *id != EMPTY) {
            let (i, _) = self.find(&key);
            self.slots[i] = (key, id);
        }
    }
}

/// The established hash of one host.
pub struct EHash {
    map: FlowTable,
    /// Connections per local port (ports with none are absent).
    per_port: BTreeMap<u16, u32>,
    /// `ip_local_port_range`, inclusive.
    ephemeral: [u16; 2],
    /// Ports in `ephemeral` held by connections, per (local address, peer).
    per_peer: BTreeMap<(std::net::IpAddr, SockAddr), PeerPorts>,
}

/// The ephemeral ports connections from one local address to one peer hold.
#[derive(Default)]
struct PeerPorts {
    count: u32,
    /// Bit `port % 64` of entry `port / 64` is set while a connection holds `port`; entries
    /// with no bit set are absent (a host with one connection to each of many peers holds a
    /// word for each, not a bitmap of the range).
    words: BTreeMap<u16, u64>,
}

impl PeerPorts {
    fn insert(&mut self, port: u16) {
        self.count += 1;
        *self.words.entry(port / 64).or_default() |= 1 << (port % 64);
    }

    /// Whether no port is left.
    fn remove(&mut self, port: u16) -> bool {
        self.count -= 1;
        if let Some(w) = self.words.get_mut(&(port / 64)) {
            *w &= !(1 << (port % 64));
            if *w == 0 {
                self.words.remove(&(port / 64));
            }
        }
        self.count == 0
    }

    /// How many of the ports `port`, `port + 2`, … (at most `limit`) are held, counted from
    /// `port` to the first that is not.
    fn held_run(&self, port: u16, limit: u32) -> u32 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let parity = if port % 2 == 0 { EVEN } else { !EVEN };
        let (mut word, mut bit) = (port / 64, u32::from(port % 64));
        let mut run = 0;
        for (&w, &bits) in self.words.range(word..) {
            if w != word {
                break;
            }
            let free = !bits & parity & (!0 << bit);
            if free != 0 {
                return (run + (free.trailing_zeros() - bit) / 2).min(limit);
            }
            run += (64 - bit).div_ceil(2);
            if run >= limit {
                return limit;
            }
            (word, bit) = (word + 1, bit % 2);
        }
        run.min(limit)
    }
}

impl EHash {
    pub fn new(ip_local_port_range: [u16; 2]) -> EHash {
        EHash { map: FlowTable::default(), per_port: BTreeMap::new(), ephemeral: ip_local_port_range, per_peer: BTreeMap::new() }
    }

    fn ephemeral_peer(&self, key: &FourTuple) -> Option<(std::net::IpAddr, SockAddr)> {
        let [low, high] = self.ephemeral;
        (low..=high).contains(&key.0.port()).then(|| (key.0.ip(), key.1))
    }

    pub fn get(&self, key: &FourTuple) -> Option<ConnId> {
        self.map.get(key)
    }

    pub fn insert(&mut self, key: FourTuple, id: ConnId) {
        if self.map.insert(key, id).is_none() {
            *self.per_port.entry(key.0.port()).or_default() += 1;
            if let Some(peer) = self.ephemeral_peer(&key) {
                self.per_peer.entry(peer).or_default().insert(key.0.port());
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
            if self.per_peer.get_mut(&peer).is_some_and(|p| p.remove(port)) {
                self.per_peer.remove(&peer);
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
        self.per_peer.get(&(local, remote)).is_some_and(|p| p.count >= ports)
    }

    /// Of the ports `start`, `start + 2`, … (`count` of them), the index of the first whose
    /// 4-tuple from `local` to `remote` is free here and that `also_free` accepts (no listener
    /// on it): the `first_free` of [`super::local_port::Ports::connect_port`]. Ports of the
    /// ephemeral range are skipped a word at a time; others are looked up.
    pub fn first_free_port(
        &self,
        local: std::net::IpAddr,
        remote: SockAddr,
        start: u16,
        count: u32,
        mut also_free: impl FnMut(u16) -> bool,
    ) -> Option<u32> {
        let [low, high] = self.ephemeral;
        let held = self.per_peer.get(&(local, remote));
        let mut k = 0;
        while k < count {
            let port = (u32::from(start) + 2 * k) as u16;
            if let Some(held) = held.filter(|_| (low..=high).contains(&port)) {
                let in_range = u32::from(high - port) / 2 + 1;
                let run = held.held_run(port, (count - k).min(in_range));
                if run > 0 {
                    k += run;
                    continue;
                }
            } else if self.map.contains_key(&(SockAddr::new(local, port), remote)) {
                k += 1;
                continue;
            }
            if also_free(port) {
                return Some(k);
            }
            k += 1;
        }
        None
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

    /// The port search's answer from the held-port words matches looking each 4-tuple up,
    /// for runs inside, across and outside the ephemeral range, with a listener's port to
    /// skip, as connections come and go.
    #[test]
    fn first_free_port_matches_a_lookup_of_each_port() {
        let (local, peer) = (IpAddr::from([10, 0, 0, 1]), SockAddr::new(IpAddr::from([10, 0, 0, 2]), 80));
        let mut h = EHash::new([40000, 40300]);
        let mut held = std::collections::BTreeSet::new();
        let listener = 40_101;
        for step in 0..3000u32 {
            let port = 39_900 + (step.wrapping_mul(2_654_435_761) >> 7) % 500;
            let key = (SockAddr::new(local, port as u16), peer);
            if step % 5 == 4 {
                h.remove(&key);
                held.remove(&port);
            } else {
                h.insert(key, ConnId(step));
                held.insert(port);
            }
            for (start, count) in [(39_890, 60), (39_990, 200), (40_000, 151), (40_001, 150), (40_151, 150), (40_290, 40)] {
                let expected = (0..count).find(|k| {
                    let p = start + 2 * k;
                    p != listener && !held.contains(&p)
                });
                assert_eq!(h.first_free_port(local, peer, start as u16, count, |p| p != listener as u16), expected, "step {step}: ({start}, {count})");
            }
        }
        assert!(!held.is_empty() && held.len() < 500, "some ports held, some free");
    }

    /// The table answers as an ordered map does through inserts, replacements and removals
    /// that collide, wrap around its end and shift runs back, and through its growth.
    #[test]
    fn flow_table_matches_a_map() {
        let mut t = FlowTable::default();
        let mut reference = BTreeMap::new();
        for step in 0..20_000u32 {
            let r = step.wrapping_mul(2_654_435_761).rotate_left(13);
            // Few distinct keys, so that removals hit and runs collide.
            let k = key(40_000 + (r % 700) as u16, 80 + (r >> 20) as u16 % 3);
            if r % 3 == 0 {
                assert_eq!(t.remove(&k), reference.remove(&k), "step {step}: remove");
            } else {
                assert_eq!(t.insert(k, ConnId(step)), reference.insert(k, ConnId(step)), "step {step}: insert");
            }
            assert_eq!(t.len, reference.len());
            let probe = key(40_000 + (r >> 7) as u16 % 700, 80 + (r >> 3) as u16 % 3);
            assert_eq!(t.get(&probe), reference.get(&probe).copied(), "step {step}: get");
        }
        for (k, id) in &reference {
            assert_eq!(t.get(k), Some(*id));
        }
        assert!(reference.len() > 500 && t.slots.len() >= 1024, "the table grew: {} slots", t.slots.len());
    }
}
