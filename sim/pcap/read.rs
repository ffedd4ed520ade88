//! Reading real captures into [`Segment`]s.
//!
//! Formats: classic pcap (µs and ns magic, either byte order, and the "modified" variant),
//! pcapng (several sections and interfaces, each interface's `if_tsresol`/`if_tsoffset`).
//! Link types: Ethernet (1), raw IP (101, and 12/14 where they mean raw IP, 228 raw IPv4),
//! Linux cooked SLL (113) and SLL2 (276) as `tcpdump -i any` writes them, and BSD
//! loopback (0 with the AF family in host order, 108 in network order).
//!
//! File framing is parsed by `pcap-parser`, packet headers by `etherparse`. Packets that are
//! not TCP over IPv4 or IPv6 (ARP, UDP, ICMP, fragments, snaplen-cut segments) are *skipped* with a
//! reason; a truncated or corrupt file is an *error* naming the file, the packet (numbered
//! from 1, as Wireshark's `frame.number`) and the byte offset of its record. No input makes
//! this module panic: every slice is bounds-checked and no input-derived value is unwrapped.

use crate::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use crate::tcp::fastopen::FoCookie;
use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::tcp::HeaderSliceError as TcpSliceError;
use etherparse::{EtherType, IpNumber, LaxNetSlice, LaxSlicedPacket, TcpSlice};
use pcap_parser::nom;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use crate::addr::SockAddr;
use std::net::IpAddr;
use std::path::Path;
use std::rc::Rc;

/// One TCP segment read from a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedSegment {
    /// Capture timestamp in nanoseconds since the Unix epoch (integer, exact to the file's
    /// resolution; finer resolutions are truncated to the nanosecond).
    pub t_ns: u64,
    pub seg: Segment,
    /// The pcapng interface id (0 for classic pcap).
    pub iface: u32,
    /// The packet's length on the wire (the record's original length).
    pub raw_len: u32,
}

/// Everything read from one capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    pub packets: Vec<CapturedSegment>,
    /// Packets that are not TCP over IP or were cut by the snaplen: (packet number, reason).
    pub skipped: Vec<(u64, String)>,
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// The file as a whole: its header, magic or a non-packet block.
    #[error("{file}: at byte {offset}: {what}")]
    File {
        file: String,
        offset: u64,
        what: String,
    },
    /// One packet record.
    #[error("{file}: packet {index} at byte {offset}: {what}")]
    Packet {
        file: String,
        index: u64,
        offset: u64,
        what: String,
    },
}

/// Reads the capture at `path`.
pub fn read_pcap(path: &Path) -> Result<Capture, PcapError> {
    let name = path.display().to_string();
    let io = |source| PcapError::Io { file: name.clone(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    #[cfg(target_os = "linux")]
    if let Some(m) = Mapped::new(&file) {
        return read_pcap_bytes(m.bytes(), &name);
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io)?;
    read_pcap_bytes(&bytes, &name)
}

/// A file mapped read-only into memory: a capture of a million packets is a gigabyte, and
/// reading it into a buffer first doubled what a replay holds (and the time spent zeroing
/// pages for it). None where the file cannot be mapped (empty, a pipe): it is read instead.
#[cfg(target_os = "linux")]
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

#[cfg(target_os = "linux")]
impl Mapped {
    fn new(file: &std::fs::File) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let meta = file.metadata().ok()?;
        let len = usize::try_from(meta.len()).ok().filter(|l| *l > 0 && meta.is_file())?;
        // SAFETY: a private read-only mapping of a file we hold open; unmapped in Drop.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        (ptr != libc::MAP_FAILED).then_some(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Reads a capture held in memory; `name` is used in error messages.
pub fn read_pcap_bytes(bytes: &[u8], name: &str) -> Result<Capture, PcapError> {
    let file_err = |offset: usize, what: String| PcapError::File {
        file: name.to_string(),
        offset: offset as u64,
        what,
    };
    let Some(magic) = bytes.get(..4) else {
        return Err(file_err(
            0,
            format!(
                "file too short for a pcap magic ({} of 4 bytes)",
                bytes.len()
            ),
        ));
    };
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => Reader::new(bytes, name).pcapng(),
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        // Kuznetzov's "modified" pcap (24-byte records), which pcap-parser reads little-endian only.
        | [0x34, 0xcd, 0xb2, 0xa1] => Reader::new(bytes, name).classic(),
        _ => Err(file_err(
            0,
            format!("not a pcap or pcapng file (magic {:02x}{:02x}{:02x}{:02x})", magic[0], magic[1], magic[2], magic[3]),
        )),
    }
}

/// A pcapng interface: what its packets' timestamps and link layer mean.
struct Iface {
    linktype: i32,
    /// `if_tsresol` (pcapng §4.2): bit 7 clear = 10^-n s, set = 2^-n s.
    tsresol: u8,
    /// `if_tsoffset`, seconds added to every timestamp.
    tsoffset: i64,
}

/// What a packet turned out to be.
enum Decoded {
    Tcp(Segment),
    Skip(String),
}

struct Reader<'a> {
    bytes: &'a [u8],
    name: &'a str,
    capture: Capture,
    /// Number of the last packet record seen (from 1).
    index: u64,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], name: &'a str) -> Self {
        Reader {
            bytes,
            name,
            capture: Capture::default(),
            index: 0,
        }
    }

    fn offset_of(&self, rest: &[u8]) -> usize {
        self.bytes.len() - rest.len()
    }

    fn file_err(&self, offset: usize, what: String) -> PcapError {
        PcapError::File {
            file: self.name.to_string(),
            offset: offset as u64,
            what,
        }
    }

    fn packet_err(&self, offset: usize, what: String) -> PcapError {
        PcapError::Packet {
            file: self.name.to_string(),
            index: self.index,
            offset: offset as u64,
            what,
        }
    }

    /// Classic pcap: a 24-byte file header, then 16-byte record headers each followed by data.
    fn classic(mut self) -> Result<Capture, PcapError> {
        let (mut rest, header) = pcap_parser::pcap::parse_pcap_header(self.bytes).map_err(|e| {
            self.file_err(
                0,
                format!(
                    "bad pcap file header: {}",
                    nom_what(&e, "24-byte file header")
                ),
            )
        })?;
        let linktype = header.network.0;
        check_linktype(linktype).map_err(|what| self.file_err(20, what))?;
        let nanos = header.is_nanosecond_precision();
        let frame_parser = if header.is_modified_format() {
            pcap_parser::pcap::parse_pcap_frame_modified
        } else if header.is_bigendian() {
            pcap_parser::pcap::parse_pcap_frame_be
        } else {
            pcap_parser::pcap::parse_pcap_frame
        };
        while !rest.is_empty() {
            let offset = self.offset_of(rest);
            self.index += 1;
            let (next, frame) = frame_parser(rest).map_err(|e| {
                self.packet_err(
                    offset,
                    format!(
                        "{} ({} bytes left in the file)",
                        nom_what(&e, "record"),
                        rest.len()
                    ),
                )
            })?;
            let frac_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
            if frame.ts_usec >= frac_limit {
                return Err(self.packet_err(
                    offset,
                    format!(
                        "timestamp fraction {} is not below {frac_limit}",
                        frame.ts_usec
                    ),
                ));
            }
            let frac_ns = if nanos {
                u64::from(frame.ts_usec)
            } else {
                u64::from(frame.ts_usec) * 1_000
            };
            let t_ns = u64::from(frame.ts_sec) * 1_000_000_000 + frac_ns;
            self.packet(offset, linktype, frame.data, frame.origlen, t_ns, 0)?;
            rest = next;
        }
        Ok(self.capture)
    }

    /// pcapng: blocks; a Section Header resets the byte order and the interface list.
    fn pcapng(mut self) -> Result<Capture, PcapError> {
        let mut rest = self.bytes;
        let mut big_endian = false;
        let mut ifaces: Vec<Iface> = Vec::new();
        while !rest.is_empty() {
            let offset = self.offset_of(rest);
            let parsed = if big_endian {
                pcap_parser::pcapng::parse_block_be(rest)
            } else {
                pcap_parser::pcapng::parse_block_le(rest)
            };
            let (next, block) = match parsed {
                Ok(ok) => ok,
                Err(e) => {
                    let what = format!(
                        "{}{} ({} bytes left in the file)",
                        nom_what(&e, "pcapng block"),
                        block_diagnosis(rest, big_endian),
                        rest.len()
                    );
                    return Err(if block_is_packet(rest, big_endian) {
                        self.index += 1;
                        self.packet_err(offset, what)
                    } else {
                        self.file_err(offset, what)
                    });
                }
            };
            match block {
                Block::SectionHeader(shb) => {
                    big_endian = shb.big_endian();
                    ifaces.clear();
                }
                Block::InterfaceDescription(idb) => ifaces.push(Iface {
                    linktype: idb.linktype.0,
                    tsresol: idb.if_tsresol,
                    tsoffset: idb.if_tsoffset,
                }),
                Block::EnhancedPacket(epb) => {
                    self.index += 1;
                    let Some(iface) = ifaces.get(epb.if_id as usize) else {
                        return Err(self.packet_err(
                            offset,
                            format!(
                                "interface {} was not described ({} interfaces in this section)",
                                epb.if_id,
                                ifaces.len()
                            ),
                        ));
                    };
                    let t_ns = pcapng_ts_ns(epb.ts_high, epb.ts_low, iface.tsresol, iface.tsoffset)
                        .map_err(|what| self.packet_err(offset, what))?;
                    let linktype = iface.linktype;
                    self.packet(
                        offset,
                        linktype,
                        epb.packet_data(),
                        epb.origlen,
                        t_ns,
                        epb.if_id,
                    )?;
                }
                Block::SimplePacket(_) => {
                    self.index += 1;
                    let reason = "simple packet block (carries no timestamp)".to_string();
                    self.capture.skipped.push((self.index, reason));
                }
                _ => {}
            }
            rest = next;
        }
        Ok(self.capture)
    }

    /// Decodes one packet record and files it as a segment or a skip.
    fn packet(
        &mut self,
        offset: usize,
        linktype: i32,
        data: &[u8],
        orig_len: u32,
        t_ns: u64,
        iface: u32,
    ) -> Result<(), PcapError> {
        match decode(linktype, data, orig_len).map_err(|what| self.packet_err(offset, what))? {
            Decoded::Tcp(seg) => self.capture.packets.push(CapturedSegment {
                t_ns,
                seg,
                iface,
                raw_len: orig_len,
            }),
            Decoded::Skip(reason) => self.capture.skipped.push((self.index, reason)),
        }
        Ok(())
    }
}

/// Whether the block at the start of `rest` is a packet block (so it counts as a packet).
fn block_is_packet(rest: &[u8], big_endian: bool) -> bool {
    let Some(&[a, b, c, d]) = rest.get(..4) else {
        return false;
    };
    let t = if big_endian {
        u32::from_be_bytes([a, b, c, d])
    } else {
        u32::from_le_bytes([a, b, c, d])
    };
    t == pcap_parser::EPB_MAGIC || t == pcap_parser::SPB_MAGIC
}

/// After `pcap-parser` rejected the block at the start of `rest`: its type and what is wrong
/// with its length fields (pcapng §3.1: a block is type, total length, body, total length
/// again; the length is at least 12 and a multiple of 4).
fn block_diagnosis(rest: &[u8], big_endian: bool) -> String {
    let word = |at: usize| {
        rest.get(at..at + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        })
    };
    let (Some(block_type), Some(len)) = (word(0), word(4)) else {
        return String::new();
    };
    let mut s = format!(": block type {block_type:#010x}, length {len}");
    if len < 12 || len % 4 != 0 {
        s.push_str(" (not a multiple of 4 of at least 12)");
    } else if len as usize > rest.len() {
        s.push_str(&format!(
            " (runs {} bytes past the end of the file)",
            len as usize - rest.len()
        ));
    } else if let Some(trailer) = word(len as usize - 4) {
        if trailer != len {
            s.push_str(&format!(" (the trailing length field says {trailer})"));
        }
    }
    s
}

/// A parse error from `pcap-parser` in words; `what` names the structure being read.
fn nom_what(e: &nom::Err<pcap_parser::PcapError<&[u8]>>, what: &str) -> String {
    match e {
        nom::Err::Incomplete(nom::Needed::Size(n)) => {
            format!("truncated {what}: {n} more bytes needed")
        }
        nom::Err::Incomplete(nom::Needed::Unknown) => format!("truncated {what}"),
        nom::Err::Error(pe) | nom::Err::Failure(pe) => match pe {
            pcap_parser::PcapError::NomError(_, kind)
            | pcap_parser::PcapError::OwnedNomError(_, kind) => {
                format!("corrupt {what} ({})", kind.description())
            }
            other => format!("corrupt {what} ({other})"),
        },
    }
}

/// The link types this reader decodes; anything else is refused up front.
fn check_linktype(linktype: i32) -> Result<(), String> {
    match linktype {
        0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 276 => Ok(()),
        other => Err(format!(
            "link type {other} is not supported (Ethernet 1, raw IP 101/12/14/228, Linux SLL 113, SLL2 276, loopback 0/108)"
        )),
    }
}

/// A pcapng timestamp in integer nanoseconds: `ticks` units of 10^-n or 2^-n seconds
/// (`if_tsresol`, pcapng §4.2; default 10^-6), plus `if_tsoffset` seconds.
pub fn pcapng_ts_ns(ts_high: u32, ts_low: u32, tsresol: u8, tsoffset: i64) -> Result<u64, String> {
    let ticks = (u128::from(ts_high) << 32) | u128::from(ts_low);
    let exp = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        if exp <= 9 {
            ticks * 10u128.pow(9 - exp)
        } else {
            // Finer than a nanosecond: truncate. 10^exp beyond u128 means 0 ns for any u64 tick.
            10u128.checked_pow(exp - 9).map_or(0, |div| ticks / div)
        }
    } else {
        // ticks < 2^64 so ticks * 10^9 < 2^94: no overflow; exp ≤ 127 so the shift is defined.
        (ticks * 1_000_000_000) >> exp
    };
    let total = ns as i128 + i128::from(tsoffset) * 1_000_000_000;
    u64::try_from(total).map_err(|_| {
        format!("timestamp out of range (if_tsresol {tsresol:#x}, if_tsoffset {tsoffset})")
    })
}

const AF_INET: u32 = 2;
/// AF_INET6 as the capturing system numbers it (Wireshark's `BSD_AF_INET6_*`): Linux 10,
/// NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// Strips the link layer and decodes IP + TCP.
fn decode(linktype: i32, data: &[u8], orig_len: u32) -> Result<Decoded, String> {
    let snapped = (data.len() as u64) < u64::from(orig_len);
    let lax = match linktype {
        1 => LaxSlicedPacket::from_ethernet(data).map_err(|e| {
            format!(
                "truncated Ethernet header ({} of {} bytes)",
                e.len, e.required_len
            )
        })?,
        12 | 14 | 101 | 228 => match LaxSlicedPacket::from_ip(data) {
            Ok(p) => p,
            Err(e) => return ip_error(e, snapped, data.len(), orig_len),
        },
        113 => {
            // Linux cooked v1 (16 bytes): protocol at 14..16. Parsed here rather than with
            // etherparse's LinuxSllHeaderSlice, which rejects ARPHRD_LOOPBACK (772), the
            // hardware type of `lo` in `tcpdump -i any` captures.
            let (proto, rest) = cooked(data, 16, 14, "Linux SLL")?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        276 => {
            // Linux cooked v2 (20 bytes): protocol at 0..2.
            let (proto, rest) = cooked(data, 20, 0, "Linux SLL2")?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        0 | 108 => {
            let Some(&[a, b, c, d]) = data.get(..4) else {
                return Err(format!(
                    "truncated loopback header ({} of 4 bytes)",
                    data.len()
                ));
            };
            // DLT_LOOP holds the AF in network order; DLT_NULL in the capturing host's order,
            // which shows as non-zero upper 16 bits when it differs from ours (families are
            // small numbers; Wireshark's packet-null.c uses the same test).
            let family = if linktype == 108 {
                u32::from_be_bytes([a, b, c, d])
            } else {
                let le = u32::from_le_bytes([a, b, c, d]);
                if le & 0xffff_0000 != 0 {
                    le.swap_bytes()
                } else {
                    le
                }
            };
            let ether_type = match family {
                AF_INET => EtherType::IPV4,
                f if AF_INET6.contains(&f) => EtherType::IPV6,
                _ => return Ok(Decoded::Skip(format!("loopback address family {family} is not AF_INET or AF_INET6"))),
            };
            LaxSlicedPacket::from_ether_type(ether_type, data.get(4..).unwrap_or_default())
        }
        other => return Err(check_linktype(other).err().unwrap_or_default()),
    };
    decode_net(&lax, snapped, data.len(), orig_len)
}

/// A Linux cooked header of `len` bytes with the big-endian protocol at `proto_at`.
fn cooked<'d>(
    data: &'d [u8],
    len: usize,
    proto_at: usize,
    what: &str,
) -> Result<(u16, &'d [u8]), String> {
    match (data.get(proto_at..proto_at + 2), data.get(len..)) {
        (Some(&[hi, lo]), Some(rest)) => Ok((u16::from_be_bytes([hi, lo]), rest)),
        _ => Err(format!(
            "truncated {what} header ({} of {len} bytes)",
            data.len()
        )),
    }
}

fn ip_error(
    e: LaxHeaderSliceError,
    snapped: bool,
    caplen: usize,
    orig_len: u32,
) -> Result<Decoded, String> {
    if snapped {
        return Ok(Decoded::Skip(format!(
            "IP header cut by the snaplen ({caplen} of {orig_len} bytes captured)"
        )));
    }
    Err(match e {
        LaxHeaderSliceError::Len(l) => format!(
            "truncated IP header ({} of {} bytes)",
            l.len, l.required_len
        ),
        LaxHeaderSliceError::Content(c) => format!("corrupt IP header: {c}"),
    })
}

/// IPv4 or IPv6 and TCP, once the link layer is gone.
fn decode_net(
    lax: &LaxSlicedPacket,
    snapped: bool,
    caplen: usize,
    orig_len: u32,
) -> Result<Decoded, String> {
    let cut = || format!("cut by the snaplen ({caplen} of {orig_len} bytes captured)");
    let (ip, payload) = match &lax.net {
        Some(LaxNetSlice::Ipv4(v4)) => (Ip::V4(v4.header()), v4.payload()),
        Some(LaxNetSlice::Ipv6(v6)) => (Ip::V6(v6.header()), v6.payload()),
        Some(LaxNetSlice::Arp(_)) => return Ok(Decoded::Skip("ARP".into())),
        None => {
            return match &lax.stop_err {
                Some(_) if snapped => Ok(Decoded::Skip(format!("headers {}", cut()))),
                Some((e, layer)) => Err(format!("corrupt {layer}: {e}")),
                None => Ok(Decoded::Skip(match &lax.link {
                    Some(etherparse::LinkSlice::Ethernet2(eth)) => {
                        format!("ether type {:#06x} is not IP", eth.ether_type().0)
                    }
                    _ => "not IP".into(),
                })),
            };
        }
    };
    if payload.fragmented {
        return Ok(Decoded::Skip(format!("{} fragment", ip.version())));
    }
    if payload.ip_number != IpNumber::TCP {
        return Ok(Decoded::Skip(format!("IP protocol {}{} is not TCP", payload.ip_number.0, protocol_name(payload.ip_number.0))));
    }
    if payload.incomplete {
        if snapped {
            return Ok(Decoded::Skip(format!("TCP segment {}", cut())));
        }
        return Err(ip.too_long(payload.payload.len()));
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|e| match e {
        TcpSliceError::Len(l) => format!(
            "truncated TCP header ({} of {} bytes)",
            l.len, l.required_len
        ),
        TcpSliceError::Content(c) => format!("corrupt TCP header: {c}"),
    })?;
    let options = parse_options(tcp.options())?;
    let (saddr, daddr, tos) = match &ip {
        Ip::V4(h) => (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), h.ecn().value()),
        Ip::V6(h) => (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), h.traffic_class()),
    };
    let src = SockAddr::new(saddr, tcp.source_port());
    let dst = SockAddr::new(daddr, tcp.destination_port());
    let body = tcp.payload();
    Ok(Decoded::Tcp(Segment {
        src,
        dst,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        // Byte 13 of the header holds CWR..FIN in the same bit positions as `Flags`.
        flags: Flags(tcp.header_slice().get(13).copied().unwrap_or(0)),
        ecn: Ecn::from_tos(tos),
        window: tcp.window_size(),
        options,
        payload: if body.is_empty() {
            Payload::Empty
        } else {
            Payload::Bytes(Rc::from(body))
        },
    }))
}

/// The IP header under a TCP segment.
enum Ip<'a> {
    V4(etherparse::Ipv4HeaderSlice<'a>),
    V6(etherparse::Ipv6HeaderSlice<'a>),
}

impl Ip<'_> {
    fn version(&self) -> &'static str {
        match self {
            Ip::V4(_) => "IPv4",
            Ip::V6(_) => "IPv6",
        }
    }

    /// The error for a length field that claims more than the `present` payload bytes.
    fn too_long(&self, present: usize) -> String {
        match self {
            Ip::V4(h) => format!("IPv4 total length {} exceeds the {} bytes present", h.total_len(), h.slice().len() + present),
            Ip::V6(h) => format!("IPv6 payload length {} exceeds the {present} bytes present after the header", h.payload_length()),
        }
    }
}

/// The name of a common IP protocol number, for a skipped packet's reason.
fn protocol_name(proto: u8) -> &'static str {
    match proto {
        1 => " (ICMP)",
        17 => " (UDP)",
        58 => " (ICMPv6)",
        132 => " (SCTP)",
        _ => "",
    }
}

/// The options tcpsim models, from the raw option bytes.
///
/// A plain TLV walk rather than etherparse's `TcpOptionsIterator`, because that iterator
/// stops at the first kind it does not know (TFO, MD5, MPTCP are legal and common), while
/// TCP requires unknown options to be skipped by their length (RFC 9293 §3.1).
fn parse_options(raw: &[u8]) -> Result<TcpOptions, String> {
    let mut o = TcpOptions::default();
    let mut i = 0;
    while let Some(&kind) = raw.get(i) {
        match kind {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = *raw
            .get(i + 1)
            .ok_or_else(|| format!("TCP option {kind} at option byte {i} has no length"))?
            as usize;
        let bad = || format!("TCP option {kind} at option byte {i}: bad length {len}");
        if len < 2 {
            return Err(bad());
        }
        let body = raw.get(i + 2..i + len).ok_or_else(|| {
            format!(
                "TCP option {kind} at option byte {i}: length {len} runs past the {} option bytes",
                raw.len()
            )
        })?;
        match kind {
            2 => o.mss = Some(u16::from_be_bytes(body.try_into().map_err(|_| bad())?)),
            3 => match body {
                &[shift] => o.wscale = Some(shift),
                _ => return Err(bad()),
            },
            4 if body.is_empty() => o.sack_permitted = true,
            4 => return Err(bad()),
            5 => {
                if body.is_empty() || body.len() % 8 != 0 {
                    return Err(bad());
                }
                o.sack = body
                    .chunks_exact(8)
                    .map(|c| {
                        let w = |k: usize| u32::from_be_bytes([c[k], c[k + 1], c[k + 2], c[k + 3]]);
                        (w(0), w(4))
                    })
                    .collect();
            }
            8 => {
                let b: &[u8; 8] = body.try_into().map_err(|_| bad())?;
                let val = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                let ecr = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                o.timestamps = Some((val, ecr));
            }
            // Fast Open (RFC 7413): a cookie longer than 16 bytes is kept by no kernel.
            super::write::TCPOPT_FASTOPEN => o.fastopen = FoCookie::new(body),
            // The experimental Fast Open option, kind 254 with magic 0xF989 (tcp_input.c
            // `tcp_parse_options`, TCPOPT_EXP); other experiments share the kind.
            super::write::TCPOPT_EXP if body.starts_with(&super::write::TCPOPT_FASTOPEN_MAGIC.to_be_bytes()) => {
                o.fastopen = FoCookie::new(&body[2..]).map(|c| c.with_exp(true));
            }
            _ => {}
        }
        i += len;
    }
    Ok(o)
}
