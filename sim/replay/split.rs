//! A capture split into TCP connections by 4-tuple, each with its client and server.

use crate::pcap::CapturedSegment;
use crate::tcp::segment::{Flags, Segment};
use std::collections::BTreeMap;
use crate::addr::SockAddr;

/// One connection of a capture: the packets of one 4-tuple, in capture order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The endpoint that sent the first SYN (or, without one, the first packet's sender).
    pub client: SockAddr,
    pub server: SockAddr,
    /// Indices into the capture's packets.
    pub packets: Vec<usize>,
}

impl Connection {
    /// The endpoint playing `side`, and its peer.
    pub fn endpoints(&self, side: super::Side) -> (SockAddr, SockAddr) {
        match side {
            super::Side::Client => (self.client, self.server),
            super::Side::Server => (self.server, self.client),
        }
    }
}

/// The unordered pair of endpoints a segment belongs to.
fn tuple(seg: &Segment) -> (SockAddr, SockAddr) {
    if seg.src <= seg.dst {
        (seg.src, seg.dst)
    } else {
        (seg.dst, seg.src)
    }
}

/// What a 4-tuple's latest connection has shown of its end.
#[derive(Clone, Debug, Default)]
struct Open {
    packets: Vec<usize>,
    /// Its first SYN's sequence number.
    syn: Option<u32>,
    /// The endpoints that sent a FIN.
    fins: Vec<SockAddr>,
    rst: bool,
}

impl Open {
    /// A bare SYN with another initial sequence number after both FINs or a RST: a new
    /// incarnation of the 4-tuple (a SYN a TIME_WAIT socket takes, `tcp_timewait_state_process`
    /// → `TCP_TW_SYN`, or one sent once both ends are closed), not a retransmission.
    fn ended_by(&self, seg: &Segment) -> bool {
        let ended = self.rst || self.fins.len() == 2;
        ended && is_bare_syn(seg) && self.syn != Some(seg.seq)
    }

    fn push(&mut self, i: usize, seg: &Segment) {
        self.packets.push(i);
        if is_bare_syn(seg) && self.syn.is_none() {
            self.syn = Some(seg.seq);
        }
        if seg.flags.contains(Flags::FIN) && !self.fins.contains(&seg.src) {
            self.fins.push(seg.src);
        }
        self.rst |= seg.flags.contains(Flags::RST);
    }
}

fn is_bare_syn(seg: &Segment) -> bool {
    seg.flags.contains(Flags::SYN) && !seg.flags.contains(Flags::ACK)
}

/// Where a run of one endpoint's segments on one 4-tuple (the model's, in time order) starts
/// a new incarnation: at a SYN (or SYN-ACK) with another sequence number than the last one
/// (a retransmitted SYN keeps its ISN).
pub fn starts_incarnation(last_syn: Option<u32>, seg: &Segment) -> bool {
    seg.flags.contains(Flags::SYN) && last_syn.is_some_and(|s| s != seg.seq)
}

/// Splits `packets` into connections, in the order of their first packet: one per 4-tuple
/// and incarnation. Who is the client is decided by the handshake: the sender of a bare SYN,
/// else the receiver of a SYN-ACK, else the sender of the first packet.
pub fn split(packets: &[CapturedSegment]) -> Vec<Connection> {
    let mut conns: Vec<Open> = Vec::new();
    // The latest incarnation of each 4-tuple, by index into `conns`.
    let mut latest: BTreeMap<(SockAddr, SockAddr), usize> = BTreeMap::new();
    for (i, p) in packets.iter().enumerate() {
        let key = tuple(&p.seg);
        let k = match latest.get(&key) {
            Some(&k) if !conns[k].ended_by(&p.seg) => k,
            _ => {
                conns.push(Open::default());
                latest.insert(key, conns.len() - 1);
                conns.len() - 1
            }
        };
        conns[k].push(i, &p.seg);
    }
    conns
        .into_iter()
        .map(|o| {
            let idx = o.packets;
            let segs = || idx.iter().map(|&i| &packets[i].seg);
            let syn = segs().find(|s| is_bare_syn(s)).map(|s| s.src);
            let synack = segs().find(|s| s.flags.contains(Flags::SYN | Flags::ACK)).map(|s| s.dst);
            let first = &packets[idx[0]].seg;
            let client = syn.or(synack).unwrap_or(first.src);
            let server = if first.src == client { first.dst } else { first.src };
            Connection { client, server, packets: idx }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Ecn, Payload, TcpOptions};

    fn pkt(t: u64, src: &str, dst: &str, flags: Flags) -> CapturedSegment {
        let seg = Segment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq: 0,
            ack: 0,
            flags,
            ecn: Ecn::NotEct,
            window: 0,
            options: TcpOptions::default(),
            payload: Payload::Empty,
        };
        CapturedSegment { t_ns: t, seg, iface: 0, raw_len: 54 }
    }

    #[test]
    fn connections_by_tuple_with_the_syn_sender_as_client() {
        let p = vec![
            pkt(1, "10.0.0.2:80", "10.0.0.1:5000", Flags::ACK), // mid-stream, server speaks first
            pkt(2, "10.0.0.1:6000", "10.0.0.2:80", Flags::SYN),
            pkt(3, "10.0.0.1:5000", "10.0.0.2:80", Flags::ACK),
            pkt(4, "10.0.0.2:80", "10.0.0.1:6000", Flags::SYN | Flags::ACK),
        ];
        let c = split(&p);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].packets, [0, 2]);
        assert_eq!(c[0].client, "10.0.0.2:80".parse().unwrap(), "no handshake: the first sender");
        assert_eq!(c[1].packets, [1, 3]);
        assert_eq!(c[1].client, "10.0.0.1:6000".parse().unwrap());
        assert_eq!(c[1].server, "10.0.0.2:80".parse().unwrap());
    }

    /// A SYN after both FINs is a new incarnation; a retransmitted SYN, or one while the
    /// first connection is open, is not.
    #[test]
    fn a_syn_after_the_close_starts_a_new_connection_on_the_same_tuple() {
        let (c, s) = ("10.0.0.1:5000", "10.0.0.2:80");
        let mut p = vec![
            pkt(1, c, s, Flags::SYN),
            pkt(2, c, s, Flags::SYN),
            pkt(3, s, c, Flags::SYN | Flags::ACK),
            pkt(4, s, c, Flags::FIN | Flags::ACK),
            pkt(5, c, s, Flags::FIN | Flags::ACK),
            pkt(6, s, c, Flags::ACK),
            pkt(7, c, s, Flags::SYN),
            pkt(8, s, c, Flags::SYN | Flags::ACK),
        ];
        p[6].seg.seq = 1000;
        let conns = split(&p);
        assert_eq!(conns.iter().map(|c| c.packets.clone()).collect::<Vec<_>>(), [vec![0, 1, 2, 3, 4, 5], vec![6, 7]]);
        assert_eq!(conns[1].client, c.parse().unwrap());
        // With one FIN only, the SYN belongs to the open connection.
        p.remove(4);
        assert_eq!(split(&p).len(), 1);
        assert!(starts_incarnation(Some(0), &p[5].seg) && !starts_incarnation(Some(1000), &p[5].seg) && !starts_incarnation(None, &p[5].seg));
    }
}
