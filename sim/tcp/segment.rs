//! TCP segments as they cross the simulated wire (RFC 9293 §3.1).
//!
//! Payload is usually *derived*: where no application wrote real bytes, a segment
//! carries only (stream, offset, length) and the bytes are a pure function of those, so a
//! bulk transfer costs no memory per byte and the checker can still verify every byte
//! delivered (see [`derived_byte`]).

use serde::{Deserialize, Serialize};
use crate::addr::SockAddr;
use std::rc::Rc;

/// TCP header flags, with the wire bit values (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);
    pub const NONE: Flags = Flags(0);

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// tcpdump's spelling: `S`, `S.`, `P.`, `F.`, `R`, `R.`, `.` for a bare ACK.
    pub fn tcpdump(self) -> String {
        let mut s = String::new();
        for (f, c) in [
            (Flags::SYN, 'S'),
            (Flags::FIN, 'F'),
            (Flags::PSH, 'P'),
            (Flags::RST, 'R'),
            (Flags::URG, 'U'),
            (Flags::ECE, 'E'),
            (Flags::CWR, 'W'),
        ] {
            if self.contains(f) {
                s.push(c);
            }
        }
        if self.contains(Flags::ACK) {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        self.union(o)
    }
}

/// The TCP options Linux sends and understands (RFC 9293 §3.2, RFC 7323, RFC 2018).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpOptions {
    /// Maximum segment size, SYN and SYN-ACK only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// Window scale shift (RFC 7323 §2), SYN and SYN-ACK only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wscale: Option<u8>,
    /// SACK permitted (RFC 2018 §2), SYN and SYN-ACK only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sack_permitted: bool,
    /// Timestamps (TSval, TSecr), RFC 7323 §3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (left, right), at most 4 (3 with timestamps).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sack: Vec<(u32, u32)>,
    /// Fast Open (RFC 7413 §4.1.1, option kind 34), SYN and SYN-ACK only: a cookie, or an
    /// empty one that asks for a cookie.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fastopen: Option<crate::tcp::fastopen::FoCookie>,
}

impl TcpOptions {
    pub fn is_empty(&self) -> bool {
        *self == TcpOptions::default()
    }
}

/// Where a segment's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// No payload.
    Empty,
    /// `len` bytes of stream `stream` starting at stream offset `offset`, computed by
    /// [`derived_byte`] rather than stored.
    Derived { stream: u64, offset: u64, len: u32 },
    /// Bytes an application really wrote.
    Bytes(Rc<[u8]>),
}

impl Payload {
    pub fn len(&self) -> u32 {
        match self {
            Payload::Empty => 0,
            Payload::Derived { len, .. } => *len,
            Payload::Bytes(b) => b.len() as u32,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes themselves, materialised (for pcap and the byte checker).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Payload::Empty => Vec::new(),
            Payload::Derived { stream, offset, len } => {
                (0..*len as u64).map(|i| derived_byte(*stream, offset + i)).collect()
            }
            Payload::Bytes(b) => b.to_vec(),
        }
    }
}

/// The byte at `offset` of derived stream `stream`: a cheap mix of both, so that a
/// misplaced, duplicated or reordered byte is caught by comparing with this function.
pub fn derived_byte(stream: u64, offset: u64) -> u8 {
    // splitmix64 finaliser over (stream, offset): fast, and every bit depends on both.
    let mut z = stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ offset;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u8
}

/// One TCP segment with its endpoints (IPv4 or IPv6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub src: SockAddr,
    pub dst: SockAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    /// The IP header's ECN field.
    pub ecn: Ecn,
    /// The window field as sent on the wire (before scaling).
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Payload,
}

impl Segment {
    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload.len()
            + self.flags.contains(Flags::SYN) as u32
            + self.flags.contains(Flags::FIN) as u32
    }

    /// A one-line summary in tcpdump's style, for traces and divergence reports.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} > {}: Flags [{}], seq {}",
            self.src,
            self.dst,
            self.flags.tcpdump(),
            self.seq
        );
        if !self.payload.is_empty() {
            s.push_str(&format!(":{}", self.seq.wrapping_add(self.payload.len())));
        }
        if self.flags.contains(Flags::ACK) {
            s.push_str(&format!(", ack {}", self.ack));
        }
        s.push_str(&format!(", win {}, length {}", self.window, self.payload.len()));
        s
    }
}

/// The ECN field of the IP header (RFC 3168 §5), with its wire values (`INET_ECN_*`,
/// include/net/inet_ecn.h): what TCP marks its segments with (`tcp_ecn_send`) and what a
/// router on the path turns into CE.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ecn {
    /// `INET_ECN_NOT_ECT`: the sender does not do ECN; routers drop instead of marking.
    #[default]
    NotEct = 0,
    /// `INET_ECN_ECT_1`.
    Ect1 = 1,
    /// `INET_ECN_ECT_0`: what Linux marks data with (`INET_ECN_xmit`).
    Ect0 = 2,
    /// `INET_ECN_CE`: Congestion Experienced.
    Ce = 3,
}

impl Ecn {
    /// The field from the two low bits of the TOS byte (`INET_ECN_MASK`).
    pub fn from_tos(tos: u8) -> Ecn {
        match tos & 3 {
            0 => Ecn::NotEct,
            1 => Ecn::Ect1,
            2 => Ecn::Ect0,
            _ => Ecn::Ce,
        }
    }

    /// The two bits as the TOS byte carries them.
    pub fn bits(self) -> u8 {
        self as u8
    }

    /// packetdrill's and tcpdump's spelling: `noecn` for Not-ECT, else `ect0`, `ect1`, `ce`.
    pub fn name(self) -> &'static str {
        match self {
            Ecn::NotEct => "noecn",
            Ecn::Ect1 => "ect1",
            Ecn::Ect0 => "ect0",
            Ecn::Ce => "ce",
        }
    }
}

/// Sequence-number comparison modulo 2^32 (RFC 9293 §3.4; the kernel's `before()`).
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `!before(a, b)`: a is at or after b in sequence space.
pub fn seq_ge(a: u32, b: u32) -> bool {
    !seq_lt(a, b)
}

/// `after(a, b)`.
pub fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

/// `!after(a, b)`.
pub fn seq_le(a: u32, b: u32) -> bool {
    !seq_gt(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_comparison_wraps() {
        assert!(seq_lt(0xffff_fff0, 0x10));
        assert!(seq_gt(0x10, 0xffff_fff0));
        assert!(seq_ge(5, 5) && seq_le(5, 5) && !seq_lt(5, 5));
    }

    #[test]
    fn derived_bytes_depend_on_stream_and_offset() {
        let a: Vec<u8> = (0..64).map(|i| derived_byte(1, i)).collect();
        let b: Vec<u8> = (0..64).map(|i| derived_byte(2, i)).collect();
        let c: Vec<u8> = (1..65).map(|i| derived_byte(1, i)).collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn seq_len_counts_syn_and_fin() {
        let s = Segment {
            src: "10.0.0.1:1".parse().unwrap(),
            dst: "10.0.0.2:2".parse().unwrap(),
            seq: 0,
            ack: 0,
            flags: Flags::SYN | Flags::FIN,
            ecn: Ecn::NotEct,
            window: 0,
            options: TcpOptions::default(),
            payload: Payload::Derived { stream: 0, offset: 0, len: 3 },
        };
        assert_eq!(s.seq_len(), 5);
        assert_eq!(s.flags.tcpdump(), "SF");
    }
}
