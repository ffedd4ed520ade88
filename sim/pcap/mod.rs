//! Packet captures: writing the simulated wire as pcap, reading real captures back into
//! [`Segment`](crate::tcp::segment::Segment)s, and labelling segments the way Wireshark's
//! TCP analysis does.
//!
//! - [`write`]: [`PcapWriter`], classic pcap with nanosecond timestamps, Ethernet + IPv4 + TCP
//!   with Linux's option layout and correct checksums;
//! - [`read`]: [`read_pcap`] / [`read_pcap_bytes`], classic pcap and pcapng over the link types
//!   `tcpdump` produces, with errors that name the file, packet and byte offset;
//! - [`labels`]: [`label_segments`], Wireshark's `tcp.analysis.*` flags computed from the
//!   segments alone.

pub mod labels;
pub mod read;
pub mod write;

pub use labels::{label_segments, Label};
pub use read::{read_pcap, read_pcap_bytes, Capture, CapturedSegment, PcapError};
pub use write::PcapWriter;
