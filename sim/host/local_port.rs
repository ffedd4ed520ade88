//! Choosing a local port for a socket that did not bind one, as Linux does
//! (net/ipv4/inet_hashtables.c `__inet_hash_connect`, net/ipv4/inet_connection_sock.c
//! `inet_csk_find_open_port`), from `ip_local_port_range`.
//!
//! connect() needs a port unique for its 4-tuple, not for the host: the same port may serve
//! connections to different peers, and a connection in TIME_WAIT keeps its 4-tuple (so the
//! port to that one peer) until it is gone (`__inet_check_established`). A port a listener
//! (or an explicit bind) holds is never shared (its bind bucket has `fastreuse >= 0`).
//! The search starts at an offset that depends on the destination, plus a per-destination
//! perturbation that advances after each success (RFC 6056 algorithm 4, "double-hash"), and
//! tries ports of the range's low parity first — even ones with the default range; a bind()
//! to port 0 (or listen() without bind) tries the other parity first, leaving even ports to
//! connect(). Successive connects to one peer therefore get ports a few apart, the search
//! stops at the first free port, and its cost stays small until the range is nearly full.
//!
//! Simplifications: Linux keys the destination hash with a boot-time secret and fills the
//! perturbation table with random numbers; here the hash is unkeyed and each entry starts
//! from the host's seeded random stream the first time its destination is used.
//! `tcp_tw_reuse` (reuse of a TIME_WAIT 4-tuple on loopback) is not modelled.

use std::collections::BTreeMap;
use crate::addr::SockAddr;

/// `INET_TABLE_PERTURB_SIZE` with the default `CONFIG_INET_TABLE_PERTURB_ORDER` of 16.
const PERTURB_SIZE: u32 = 1 << 16;

/// `ip_local_port_range` as a half-open range `[low, high)`.
#[derive(Copy, Clone, Debug)]
pub struct PortRange {
    low: u32,
    high: u32,
}

impl PortRange {
    /// From the sysctl's two inclusive bounds (`[32768, 60999] -> [32768, 61000[`).
    pub fn new([low, high]: [u16; 2]) -> PortRange {
        let (low, high) = (u32::from(low.min(high)), u32::from(low.max(high)) + 1);
        PortRange { low, high }
    }

    /// Ports in the range, rounded down to even so that both parities have the same count.
    fn remaining(self) -> u32 {
        let n = self.high - self.low;
        if n > 1 {
            n & !1
        } else {
            n
        }
    }

    /// Scans `remaining` ports two apart from `low + offset`, then the other parity
    /// (`other_parity_scan`); the first free port, with how many were tried. The scan asks
    /// `first_free` about runs of ports (`start`, `start + 2`, … `count` of them, the run ending
    /// where the scan wraps to the range's start or stops) for the index of the first free one,
    /// so that a caller that knows which ports are taken skips them without trying each.
    fn scan(self, mut offset: u32, mut first_free: impl FnMut(u16, u32) -> Option<u32>) -> Option<(u16, u32)> {
        let remaining = self.remaining();
        for _parity in 0..2 {
            let mut port = self.low + offset;
            let mut i = 0;
            while i < remaining {
                if port >= self.high {
                    port -= remaining;
                }
                let run = ((self.high - port).div_ceil(2)).min((remaining - i).div_ceil(2));
                if let Some(k) = first_free(port as u16, run) {
                    return Some(((port + 2 * k) as u16, i + 2 * k));
                }
                i += 2 * run;
                port += 2 * run;
            }
            if remaining <= 1 {
                break;
            }
            offset ^= 1;
        }
        None
    }
}

/// A `first_free` for [`Ports::connect_port`] that asks `free` about each port of the run.
pub fn each_port(mut free: impl FnMut(u16) -> bool) -> impl FnMut(u16, u32) -> Option<u32> {
    move |start, count| (0..count).find(|k| free((u32::from(start) + 2 * k) as u16))
}

/// The per-destination perturbation (`table_perturb`) of one host.
#[derive(Default)]
pub struct Ports {
    perturb: BTreeMap<u32, u32>,
}

impl Ports {
    /// connect()'s port for a socket of `local_ip` to `remote` (`__inet_hash_connect`):
    /// the first port from the destination's offset, low parity first, that is free (no
    /// listener on it, and the 4-tuple not in the established hash; `first_free` answers for a
    /// run of ports, see [`PortRange::scan`]). `random` is one
    /// draw of the host's random stream; None when every port is taken (EADDRNOTAVAIL).
    /// `exhausted` (every port already reaches `remote`) answers None without the scan
    /// Linux makes, which would find nothing: the result and every later choice are the same.
    pub fn connect_port(
        &mut self,
        range: PortRange,
        local_ip: std::net::IpAddr,
        remote: SockAddr,
        random: u32,
        exhausted: bool,
        first_free: impl FnMut(u16, u32) -> Option<u32>,
    ) -> Option<u16> {
        let port_offset = port_offset(local_ip, remote);
        let index = (port_offset as u32) & (PERTURB_SIZE - 1);
        // get_random_sleepable_once: the table starts random (here: per entry, when first used).
        let perturb = self.perturb.entry(index).or_insert(random);
        if exhausted {
            return None;
        }
        let remaining = range.remaining().max(1);
        let offset = (perturb.wrapping_add((port_offset >> 32) as u32) % remaining) & !1;
        let (port, tried) = range.scan(offset, first_free)?;
        // "a little bit of randomness to the next source port": i = max(i, rand(8) * step).
        let step = 2;
        let i = tried.max((random % 8) * step);
        *perturb = perturb.wrapping_add(i + step);
        Some(port)
    }

    /// bind(0)'s or listen()'s port (`inet_csk_find_open_port`): a random offset, odd
    /// parity first (the opposite of connect()), the first port `free` accepts.
    pub fn bind_port(range: PortRange, random: u32, free: impl FnMut(u16) -> bool) -> Option<u16> {
        let offset = (random % range.remaining().max(1)) | 1;
        range.scan(offset, each_port(free)).map(|(port, _)| port)
    }
}

/// `inet_sk_port_offset` (`secure_ipv4_port_ephemeral(saddr, daddr, dport)`), unkeyed: a
/// 64-bit hash of the source address and the destination.
fn port_offset(local_ip: std::net::IpAddr, remote: SockAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let ((l, ln), (r, rn)) = (crate::addr::octets(local_ip), crate::addr::octets(remote.ip()));
    for b in l[..ln].iter().chain(r[..rn].iter()).chain(remote.port().to_be_bytes().iter()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    const LINUX: [u16; 2] = [32768, 60999];

    fn server(port: u16) -> SockAddr {
        SockAddr::new([10, 0, 0, 2], port)
    }

    #[test]
    fn connect_prefers_even_ports_until_they_run_out_then_takes_odd_ones() {
        let range = PortRange::new([40000, 40009]);
        let mut ports = Ports::default();
        let mut used = BTreeSet::new();
        for k in 0..10 {
            let p = ports.connect_port(range, IpAddr::from([10, 0, 0, 1]), server(80), k * 7919, false, each_port(|p| !used.contains(&p))).unwrap();
            assert!((40000..=40009).contains(&p));
            assert_eq!(p % 2 == 0, k < 5, "connect {k} got {p}: the five even ports go first");
            used.insert(p);
        }
        assert_eq!(ports.connect_port(range, IpAddr::from([10, 0, 0, 1]), server(80), 1, false, each_port(|p| !used.contains(&p))), None);
        // Known to be exhausted: the same answer without asking about a single port.
        assert_eq!(ports.connect_port(range, IpAddr::from([10, 0, 0, 1]), server(80), 1, true, |_, _| unreachable!()), None);
    }

    #[test]
    fn bind_prefers_odd_ports() {
        for r in [0, 1, 2, 12345, u32::MAX] {
            let p = Ports::bind_port(PortRange::new(LINUX), r, |_| true).unwrap();
            assert_eq!(p % 2, 1, "{p}");
            assert!((32768..=60999).contains(&p));
        }
    }

    #[test]
    fn a_port_is_unique_per_destination_not_per_host() {
        // 28 232 ports, and twice as many connections: to two servers, each port serves both.
        let range = PortRange::new(LINUX);
        let mut ports = Ports::default();
        let mut used: BTreeSet<(u16, u16)> = BTreeSet::new();
        for k in 0..2 * 28_232u32 {
            let dport = 80 + (k % 2) as u16;
            let p = ports
                .connect_port(range, IpAddr::from([10, 0, 0, 1]), server(dport), k.wrapping_mul(2_654_435_761), false, each_port(|p| !used.contains(&(p, dport))))
                .unwrap_or_else(|| panic!("connection {k} found no port"));
            assert!(used.insert((p, dport)));
        }
        let full = ports.connect_port(range, IpAddr::from([10, 0, 0, 1]), server(80), 3, false, each_port(|p| !used.contains(&(p, 80))));
        assert_eq!(full, None, "every port to server:80 is taken: EADDRNOTAVAIL");
    }

    #[test]
    fn successive_connects_to_one_peer_advance_by_a_few_ports() {
        let range = PortRange::new(LINUX);
        let mut ports = Ports::default();
        let mut last: Option<u16> = None;
        for k in 0..100u32 {
            // Every earlier port is free again (the earlier connection is gone): the
            // perturbation still moves the next choice forward, by 2 to 16.
            let p = ports.connect_port(range, IpAddr::from([10, 0, 0, 1]), server(80), k, false, each_port(|_| true)).unwrap();
            if let Some(prev) = last {
                let d = (u32::from(p) + 28_232 - u32::from(prev)) % 28_232;
                assert!((2..=16).contains(&d) && d % 2 == 0, "{prev} -> {p}");
            }
            last = Some(p);
        }
    }

    /// `__inet_hash_connect`'s loop as written, one port at a time: the reference the run-wise
    /// scan must match, wrap-around of a range with an odd number of ports included.
    fn scan_one_by_one(range: PortRange, mut offset: u32, free: impl Fn(u16) -> bool) -> Option<(u16, u32)> {
        let remaining = range.remaining();
        for _parity in 0..2 {
            let (mut port, mut i) = (range.low + offset, 0);
            while i < remaining {
                if port >= range.high {
                    port -= remaining;
                }
                if free(port as u16) {
                    return Some((port as u16, i));
                }
                i += 2;
                port += 2;
            }
            if remaining <= 1 {
                break;
            }
            offset ^= 1;
        }
        None
    }

    #[test]
    fn the_scan_by_runs_finds_the_port_the_scan_by_ports_finds() {
        for (low, high) in [(40000, 40000), (40000, 40001), (40000, 40008), (40000, 40009), (40001, 40130)] {
            let range = PortRange::new([low, high]);
            let n = u32::from(high - low) + 1;
            for seed in 0..40u32 {
                // Ports taken with a density that grows with the seed, up to all of them.
                let taken = |p: u16| (u32::from(p).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 40 < seed;
                for offset in 0..n.max(2) - 1 {
                    let offset = offset & !1;
                    let mut runs = Vec::new();
                    let by_runs = range.scan(offset, |start, count| {
                        runs.push((start, count));
                        each_port(|p| !taken(p))(start, count)
                    });
                    assert_eq!(by_runs, scan_one_by_one(range, offset, |p| !taken(p)), "[{low}, {high}] offset {offset} seed {seed}");
                    for (start, count) in runs {
                        let last = u32::from(start) + 2 * (count - 1);
                        assert!(count > 0 && u32::from(start) >= range.low && last < range.high, "run ({start}, {count}) inside the range");
                    }
                }
            }
        }
    }
}
