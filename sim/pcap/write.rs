//! Writing segments as they were on the simulated wire: classic pcap, nanosecond
//! timestamps (magic 0xa1b23c4d), link type Ethernet.
//!
//! Every frame is Ethernet II + IPv4 (no options, DF set, TTL 64) or IPv6 (no extension
//! headers, hop limit 64, flow label 0) + TCP, with correct IPv4 header and TCP checksums so
//! that Wireshark validates them. The TCP options are laid out
//! as Linux lays them out (tcp_output.c `tcp_options_write`), so that a capture from the
//! simulator and one from a real kernel look alike byte for byte in the option area.

use crate::tcp::segment::{Flags, Segment, TcpOptions};
use crate::time::SimTime;
use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader};
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

/// The snapshot length written in the file header: tcpdump's default.
pub const SNAPLEN: u32 = 262_144;

/// TTL of every simulated IPv4 packet (Linux `net.ipv4.ip_default_ttl`) and hop limit of
/// every IPv6 one (`net.ipv6.conf.all.hop_limit`).
const TTL: u8 = 64;

/// Errors while writing a capture.
#[derive(Debug, thiserror::Error)]
pub enum PcapWriteError {
    #[error("writing pcap: {}", crate::output::io_text(.0))]
    Io(#[from] std::io::Error),
    #[error("writing pcap: {0}")]
    Pcap(pcap_file::PcapError),
    #[error("segment {summary}: {what}")]
    Segment { summary: String, what: String },
}

/// pcap-file reports a failed write as "Error reading bytes": the I/O error under it is
/// what happened (a full disk), so that is what is kept.
impl From<pcap_file::PcapError> for PcapWriteError {
    fn from(e: pcap_file::PcapError) -> Self {
        match e {
            pcap_file::PcapError::IoError(io) => PcapWriteError::Io(io),
            other => PcapWriteError::Pcap(other),
        }
    }
}

/// Writes segments to a classic nanosecond pcap.
///
/// Nothing reaches the underlying writer half-way through a frame; call [`finish`](Self::finish)
/// to flush and get the writer back (the CLI writes to a temporary file and renames it).
pub struct PcapWriter<W: Write> {
    inner: pcap_file::pcap::PcapWriter<W>,
    /// Next IPv4 identification per sender address: deterministic, one counter per host as
    /// Linux's per-destination `ip_idents` would give for a single peer.
    ip_id: BTreeMap<IpAddr, u16>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (nanosecond magic, Ethernet, snaplen [`SNAPLEN`]).
    pub fn new(writer: W) -> Result<Self, PcapWriteError> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
        };
        let inner = pcap_file::pcap::PcapWriter::with_header(writer, header)?;
        Ok(PcapWriter {
            inner,
            ip_id: BTreeMap::new(),
        })
    }

    /// Writes one segment seen on the wire at simulated time `t`.
    pub fn write_segment(&mut self, t: SimTime, seg: &Segment) -> Result<(), PcapWriteError> {
        let id = self.ip_id.entry(seg.src.ip()).or_insert(0);
        let frame = encode_frame(seg, *id)?;
        *id = id.wrapping_add(1);
        let packet = PcapPacket {
            timestamp: Duration::from_nanos(t.as_nanos()),
            orig_len: frame.len() as u32,
            data: Cow::Owned(frame),
        };
        self.inner.write_packet(&packet)?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, PcapWriteError> {
        let mut w = self.inner.into_writer();
        w.flush()?;
        Ok(w)
    }
}

/// The locally administered MAC address of a host: `02:00:a:b:c:d`, the address's last
/// four bytes.
pub fn mac_of(ip: IpAddr) -> [u8; 6] {
    let [a, b, c, d] = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => v6.octets()[12..].try_into().expect("four bytes"),
    };
    [0x02, 0x00, a, b, c, d]
}

/// One Ethernet frame carrying `seg`, with IPv4 identification `ip_id` (unused for IPv6,
/// which has none).
pub fn encode_frame(seg: &Segment, ip_id: u16) -> Result<Vec<u8>, PcapWriteError> {
    let err = |what: String| PcapWriteError::Segment {
        summary: seg.summary(),
        what,
    };
    let payload = seg.payload.to_bytes();
    let tcp = tcp_header(seg, &payload).map_err(err)?;
    let tcp_len = tcp.header_len() + payload.len();
    let (ip_bytes, ether_type) = match (seg.src.ip(), seg.dst.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => (ipv4_header(seg, src.octets(), dst.octets(), tcp_len, ip_id).map_err(err)?, EtherType::IPV4),
        (IpAddr::V6(src), IpAddr::V6(dst)) => (ipv6_header(seg, src.octets(), dst.octets(), tcp_len).map_err(err)?, EtherType::IPV6),
        _ => return Err(err("an IPv4 and an IPv6 endpoint".into())),
    };
    let eth = Ethernet2Header {
        source: mac_of(seg.src.ip()),
        destination: mac_of(seg.dst.ip()),
        ether_type,
    };
    let mut frame = Vec::with_capacity(14 + ip_bytes.len() + tcp_len);
    frame.extend_from_slice(&eth.to_bytes());
    frame.extend_from_slice(&ip_bytes);
    frame.extend_from_slice(&tcp.to_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// The IPv4 header of `seg`: identification `ip_id`, DF, the ECN bits in the TOS byte.
fn ipv4_header(seg: &Segment, src: [u8; 4], dst: [u8; 4], tcp_len: usize, ip_id: u16) -> Result<Vec<u8>, String> {
    let mut ip = Ipv4Header::new(
        u16::try_from(tcp_len).map_err(|_| format!("{tcp_len} bytes do not fit in IPv4"))?,
        TTL,
        IpNumber::TCP,
        src,
        dst,
    )
    .map_err(|e| e.to_string())?;
    ip.identification = ip_id;
    ip.dont_fragment = true;
    // The TOS byte's ECN bits (RFC 3168 §5); TCP's own DSCP stays 0.
    ip.ecn = etherparse::IpEcn::try_new(seg.ecn.bits()).map_err(|e| e.to_string())?;
    ip.header_checksum = ip.calc_header_checksum();
    Ok(ip.to_bytes().to_vec())
}

/// The IPv6 header of `seg`: the ECN bits in the traffic class's low two (RFC 3168 §9.1,
/// as `IP6_ECN_flow_xmit` sets them from the socket's tclass), flow label 0 (Linux draws
/// one from the socket's random `sk_txhash`, `ip6_make_flowlabel`: nothing a simulation
/// can reproduce, and nothing TCP reads).
fn ipv6_header(seg: &Segment, src: [u8; 16], dst: [u8; 16], tcp_len: usize) -> Result<Vec<u8>, String> {
    let ip = Ipv6Header {
        traffic_class: seg.ecn.bits(),
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: u16::try_from(tcp_len).map_err(|_| format!("{tcp_len} bytes do not fit in IPv6"))?,
        next_header: IpNumber::TCP,
        hop_limit: TTL,
        source: src,
        destination: dst,
    };
    Ok(ip.to_bytes().to_vec())
}

/// The TCP header of `seg` with its options and checksum.
fn tcp_header(seg: &Segment, payload: &[u8]) -> Result<TcpHeader, String> {
    let mut h = TcpHeader::new(seg.src.port(), seg.dst.port(), seg.seq, seg.window);
    let f = seg.flags;
    h.fin = f.contains(Flags::FIN);
    h.syn = f.contains(Flags::SYN);
    h.rst = f.contains(Flags::RST);
    h.psh = f.contains(Flags::PSH);
    h.ack = f.contains(Flags::ACK);
    h.urg = f.contains(Flags::URG);
    h.ece = f.contains(Flags::ECE);
    h.cwr = f.contains(Flags::CWR);
    h.acknowledgment_number = seg.ack;
    h.set_options_raw(&linux_options(&seg.options))
        .map_err(|e| e.to_string())?;
    h.checksum = match (seg.src.ip(), seg.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => h.calc_checksum_ipv4_raw(s.octets(), d.octets(), payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => h.calc_checksum_ipv6_raw(s.octets(), d.octets(), payload),
        _ => return Err("an IPv4 and an IPv6 endpoint".into()),
    }
    .map_err(|e| e.to_string())?;
    Ok(h)
}

const TCPOPT_NOP: u8 = 1;
const TCPOPT_MSS: u8 = 2;
const TCPOPT_WINDOW: u8 = 3;
const TCPOPT_SACK_PERM: u8 = 4;
const TCPOPT_SACK: u8 = 5;
const TCPOPT_TIMESTAMP: u8 = 8;
pub(super) const TCPOPT_FASTOPEN: u8 = 34;
pub(super) const TCPOPT_EXP: u8 = 254;
pub(super) const TCPOPT_FASTOPEN_MAGIC: u16 = 0xF989;

/// The option bytes in the order and alignment of tcp_output.c `tcp_options_write`:
/// MSS; then SACK_PERM folded into the timestamp's alignment (`sackOK,TS`) or `NOP NOP TS`;
/// `NOP NOP SACK_PERM` without timestamps; `NOP WS`; `NOP NOP SACK blocks`; finally the Fast
/// Open cookie (kind 34, or 254 with the experimental magic), NOPs filling its last word.
/// The result is always a multiple of 4 bytes, as Linux's is.
pub fn linux_options(o: &TcpOptions) -> Vec<u8> {
    let mut b = Vec::with_capacity(40);
    if let Some(mss) = o.mss {
        b.push(TCPOPT_MSS);
        b.push(4);
        b.extend_from_slice(&mss.to_be_bytes());
    }
    match (o.timestamps, o.sack_permitted) {
        (Some((val, ecr)), sack_perm) => {
            if sack_perm {
                b.extend_from_slice(&[TCPOPT_SACK_PERM, 2]);
            } else {
                b.extend_from_slice(&[TCPOPT_NOP, TCPOPT_NOP]);
            }
            b.extend_from_slice(&[TCPOPT_TIMESTAMP, 10]);
            b.extend_from_slice(&val.to_be_bytes());
            b.extend_from_slice(&ecr.to_be_bytes());
        }
        (None, true) => b.extend_from_slice(&[TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK_PERM, 2]),
        (None, false) => {}
    }
    if let Some(ws) = o.wscale {
        b.extend_from_slice(&[TCPOPT_NOP, TCPOPT_WINDOW, 3, ws]);
    }
    if !o.sack.is_empty() {
        b.extend_from_slice(&[
            TCPOPT_NOP,
            TCPOPT_NOP,
            TCPOPT_SACK,
            2 + 8 * o.sack.len() as u8,
        ]);
        for (left, right) in &o.sack {
            b.extend_from_slice(&left.to_be_bytes());
            b.extend_from_slice(&right.to_be_bytes());
        }
    }
    if let Some(c) = o.fastopen {
        let len = c.option_len() as u8;
        if c.exp {
            b.extend_from_slice(&[TCPOPT_EXP, len]);
            b.extend_from_slice(&TCPOPT_FASTOPEN_MAGIC.to_be_bytes());
        } else {
            b.extend_from_slice(&[TCPOPT_FASTOPEN, len]);
        }
        b.extend_from_slice(c.bytes());
        while b.len() % 4 != 0 {
            b.push(TCPOPT_NOP);
        }
    }
    b
}
