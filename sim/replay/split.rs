//! A capture split into TCP connections by 4-tuple, each with its client and server.

use crate::pcap::CapturedSegment;
use crate::tcp::segment::{Flags, Segment};
use std::net::SocketAddrV4;

/// One connection of a capture: the packets of one 4-tuple, in capture order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The endpoint that sent the first SYN (or, without one, the first packet's sender).
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    /// Indices into the capture's packets.
    pub packets: Vec<usize>,
}

impl Connection {
    /// The endpoint playing `side`, and its peer.
    pub fn endpoints(&self, side: super::Side) -> (SocketAddrV4, SocketAddrV4) {
        match side {
            super::Side::Client => (self.client, self.server),
            super::Side::Server => (self.server, self.client),
        }
    }
}

/// The unordered pair of endpoints a segment belongs to.
fn tuple(seg: &Segment) -> (SocketAddrV4, SocketAddrV4) {
    if seg.src <= seg.dst {
        (seg.src, seg.dst)
    } else {
        (seg.dst, seg.src)
    }
}

/// Splits `packets` into connections, in the order of their first packet. Who is the client
/// is decided by the handshake: the sender of a bare SYN, else the receiver of a SYN-ACK,
/// else the sender of the first packet.
pub fn split(packets: &[CapturedSegment]) -> Vec<Connection> {
    let mut conns: Vec<((SocketAddrV4, SocketAddrV4), Vec<usize>)> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let key = tuple(&p.seg);
        match conns.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => conns.push((key, vec![i])),
        }
    }
    conns
        .into_iter()
        .map(|(_, idx)| {
            let segs = || idx.iter().map(|&i| &packets[i].seg);
            let syn = segs().find(|s| s.flags.contains(Flags::SYN) && !s.flags.contains(Flags::ACK)).map(|s| s.src);
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
    use crate::tcp::segment::{Payload, TcpOptions};

    fn pkt(t: u64, src: &str, dst: &str, flags: Flags) -> CapturedSegment {
        let seg = Segment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq: 0,
            ack: 0,
            flags,
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
}
