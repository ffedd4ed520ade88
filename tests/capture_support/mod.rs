//! Helpers shared by the capture tests: the skip rule for live captures, and a minimal reader of
//! the classic pcap files tcpdump writes (the project's full pcap reader lives elsewhere; these
//! tests only need to know the file is whole and what its packets are).

#![allow(dead_code)]

/// The seed scenarios (`models/<name>.toml`) captured under `traces/seeds/<name>/`: every one
/// whose `duration` is at most 2 minutes of real time, but `lossy-partition` (its 4 MB stream
/// makes a 4.5 MB pcap; `traces/seeds/README.md`).
pub const SEED_TRACES: [&str; 7] = [
    "cable-replugged",
    "default",
    "listen-backlog-overflow-reset",
    "peer-closes-gracefully",
    "peer-half-closes",
    "peer-hibernated-keepalive",
    "peer-resets",
];

/// Seed captures that ran longer than 2 minutes of real time: recorded once
/// (`tcpsim capture models/NAME.toml --out traces/seeds/NAME`, as root), not by
/// `TCPSIM_RECORD_SEEDS`.
pub const LONG_SEED_TRACES: [&str; 2] = ["cable-unplugged-send", "listen-backlog-overflow"];

/// The largest pcap committed under `traces/`.
pub const MAX_TRACE_PCAP_BYTES: u64 = 1 << 20;

/// Whether live captures can run here. When they cannot, says why and returns false, unless
/// `TCPSIM_REQUIRE_CAPTURE=1` (set by CI), in which case the test fails.
pub fn live_or_skip(test: &str) -> bool {
    match tcpsim::capture::can_capture() {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("TCPSIM_REQUIRE_CAPTURE").as_deref() == Ok("1") {
                panic!("{test}: TCPSIM_REQUIRE_CAPTURE=1 but a live capture cannot run here: {why}");
            }
            eprintln!("{test}: skipped: {why}");
            false
        }
    }
}

/// A classic pcap file: its link type and packets (timestamp ns, captured bytes).
pub struct Pcap {
    pub linktype: u32,
    pub nanos: bool,
    pub packets: Vec<(u64, Vec<u8>)>,
}

/// Parses a classic little-endian pcap (µs or ns magic); `Err` says what is wrong.
pub fn read_pcap(bytes: &[u8]) -> Result<Pcap, String> {
    let u32_at = |o: usize| -> Result<u32, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .ok_or(format!("truncated at byte {o}"))
    };
    let nanos = match u32_at(0)? {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        m => return Err(format!("not a little-endian pcap (magic {m:#x})")),
    };
    let linktype = u32_at(20)?;
    let mut packets = Vec::new();
    let mut off = 24;
    while off < bytes.len() {
        let (sec, frac, incl) = (u32_at(off)?, u32_at(off + 4)?, u32_at(off + 8)? as usize);
        let data =
            bytes.get(off + 16..off + 16 + incl).ok_or(format!("record at byte {off} is truncated"))?;
        let ns = u64::from(sec) * 1_000_000_000 + u64::from(frac) * if nanos { 1 } else { 1000 };
        packets.push((ns, data.to_vec()));
        off += 16 + incl;
    }
    Ok(Pcap { linktype, nanos, packets })
}

/// One TCP/IPv4 segment of an Ethernet frame: (src port, dst port, SYN, RST, payload).
pub fn tcp_of(frame: &[u8]) -> Option<(u16, u16, bool, bool, Vec<u8>)> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    match p.transport? {
        etherparse::TransportSlice::Tcp(t) => {
            Some((t.source_port(), t.destination_port(), t.syn(), t.rst(), t.payload().to_vec()))
        }
        _ => None,
    }
}
