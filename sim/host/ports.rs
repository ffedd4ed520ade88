//! Which local ports a host uses, kept beside the hashes that use them, so that bind() and
//! the ephemeral-port search ask an index rather than scan.
//!
//! Linux's `__inet_hash_connect` walks the range from a random offset and takes the first
//! port it can use; so does the model ([`Host::ephemeral_port`](super::Host)). Walking port
//! by port costs the whole range per connect() once the range is busy (40 000 clients, each
//! connect scanning 28 232 ports). The set of free ephemeral ports answers "the first free
//! port at or after the offset, wrapping" in one ordered lookup: the same port the walk
//! finds, at O(log ports).

use super::sockets::{ConnId, ListenerId};
use super::Host;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddrV4;
use std::ops::RangeInclusive;

/// Ports in use: by how many listeners and connections each, and which ephemeral ones are
/// free (built on the first ephemeral search, then kept in step).
#[derive(Debug, Default)]
pub(crate) struct PortUse {
    users: BTreeMap<u16, u32>,
    free: Option<(RangeInclusive<u16>, BTreeSet<u16>)>,
}

impl PortUse {
    pub(crate) fn in_use(&self, port: u16) -> bool {
        self.users.contains_key(&port)
    }

    fn acquire(&mut self, port: u16) {
        let n = self.users.entry(port).or_default();
        *n += 1;
        if *n == 1 {
            if let Some((_, free)) = &mut self.free {
                free.remove(&port);
            }
        }
    }

    fn release(&mut self, port: u16) {
        let Some(n) = self.users.get_mut(&port) else { return };
        *n -= 1;
        if *n == 0 {
            self.users.remove(&port);
            if let Some((range, free)) = &mut self.free {
                if range.contains(&port) {
                    free.insert(port);
                }
            }
        }
    }

    /// The first port of `range` not in use, walking up from `start` and wrapping to the
    /// range's first port: the port a walk of `range` from `start` would find.
    pub(crate) fn first_free(&mut self, range: &RangeInclusive<u16>, start: u16) -> Option<u16> {
        if self.free.as_ref().is_none_or(|(r, _)| r != range) {
            let free = range.clone().filter(|p| !self.in_use(*p)).collect();
            self.free = Some((range.clone(), free));
        }
        let (_, free) = self.free.as_ref()?;
        free.range(start..).next().or_else(|| free.range(..start).next()).copied()
    }
}

impl Host {
    /// Enters a connection in the established hash (and its port in use).
    pub(crate) fn ehash_insert(&mut self, local: SocketAddrV4, remote: SocketAddrV4, id: ConnId) {
        if self.ehash.insert((local, remote), id).is_none() {
            self.ports.acquire(local.port());
        }
    }

    /// Takes a connection's 4-tuple out of the established hash.
    pub(crate) fn ehash_remove(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        if self.ehash.remove(&(local, remote)).is_some() {
            self.ports.release(local.port());
        }
    }

    /// Enters a listener in the listening hash.
    pub(crate) fn lhash_insert(&mut self, port: u16, id: ListenerId) {
        if self.lhash.insert(port, id).is_none() {
            self.ports.acquire(port);
        }
    }

    pub(crate) fn lhash_remove(&mut self, port: u16) {
        if self.lhash.remove(&port).is_some() {
            self.ports.release(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk the index replaces.
    fn walk(used: &BTreeSet<u16>, range: &RangeInclusive<u16>, start: u16) -> Option<u16> {
        let (lo, hi) = (*range.start(), *range.end());
        (start..=hi).chain(lo..start).find(|p| !used.contains(p))
    }

    #[test]
    fn the_index_finds_the_port_the_walk_finds() {
        let range = 100..=199;
        let mut ports = PortUse::default();
        let mut used = BTreeSet::new();
        // A deterministic mix of uses and releases, the range filling up to exhaustion.
        let mut x: u32 = 12345;
        for step in 0..5000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let start = 100 + (x >> 8) as u16 % 100;
            assert_eq!(ports.first_free(&range, start), walk(&used, &range, start), "step {step}");
            let p = 90 + (x >> 20) as u16 % 120;
            if (x >> 4) % 3 == 0 && used.contains(&p) {
                ports.release(p);
                used.remove(&p);
            } else if !used.contains(&p) {
                ports.acquire(p);
                used.insert(p);
            }
        }
        assert!(used.len() > 50);
    }

    #[test]
    fn a_port_stays_in_use_until_its_last_user_goes() {
        let mut ports = PortUse::default();
        let range = 1..=3;
        ports.acquire(2);
        ports.acquire(2);
        assert_eq!(ports.first_free(&range, 2), Some(3));
        ports.release(2);
        assert!(ports.in_use(2));
        ports.release(2);
        assert_eq!(ports.first_free(&range, 2), Some(2));
    }
}
