//! The pcap reader over real captures (tests/fixtures/pcap, made by make.sh there from one
//! loopback exchange: SYN, SYN-ACK, ACK, "ping\n", ACK, "pong\n", ACK, FIN, FIN, ACK), and its
//! errors on truncated and corrupt input.

use std::path::{Path, PathBuf};
use tcpsim::pcap::read::pcapng_ts_ns;
use tcpsim::pcap::{read_pcap, read_pcap_bytes, Capture, PcapError};
use tcpsim::tcp::segment::{Flags, Segment};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pcap")
        .join(name)
}

fn read(name: &str) -> Capture {
    read_pcap(&fixture(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn segments(c: &Capture) -> Vec<Segment> {
    c.packets.iter().map(|p| p.seg.clone()).collect()
}

/// First and last timestamps of eth_ns.pcap, as tshark prints them
/// (`tshark -r eth_ns.pcap -T fields -e frame.time_epoch`). Regenerating the fixtures with
/// make.sh makes a new capture: update these, the port and the sequence numbers below.
const FIRST_NS: u64 = 1_795_715_034_271_454_496;
const LAST_NS: u64 = 1_795_715_034_271_614_736;

#[test]
fn nanosecond_pcap_reads_the_exchange() {
    let c = read("eth_ns.pcap");
    assert!(c.skipped.is_empty());
    assert_eq!(c.packets.len(), 10);
    assert_eq!(c.packets[0].t_ns, FIRST_NS);
    assert_eq!(c.packets[9].t_ns, LAST_NS);
    let s = segments(&c);
    let flags: Vec<String> = s.iter().map(|s| s.flags.tcpdump()).collect();
    assert_eq!(
        flags,
        ["S", "S.", ".", "P.", ".", "P.", ".", "F.", "F.", "."]
    );
    let client = s[0].src;
    assert_eq!(client.to_string(), "127.0.0.1:36764");
    assert_eq!(s[0].seq, 3_082_134_854);
    assert_eq!(s[9].seq, 3_082_134_861);
    assert_eq!(s[3].payload.to_bytes(), b"ping\n");
    assert_eq!(s[5].payload.to_bytes(), b"pong\n");
    // Linux's SYN options on loopback: MSS 65495, SACK permitted, timestamps, wscale 10.
    assert_eq!(s[0].options.mss, Some(65495));
    assert_eq!(s[0].options.wscale, Some(10));
    assert!(s[0].options.sack_permitted);
    assert_eq!(s[0].options.timestamps, Some((1_169_140_494, 0)));
    assert_eq!(
        s[2].options.timestamps,
        Some((1_169_140_494, 1_577_409_038))
    );
    assert_eq!(s[1].ack, s[0].seq.wrapping_add(1));
    assert!(s[9].flags == Flags::ACK);
    assert_eq!(c.packets[0].raw_len, 74);
}

#[test]
fn every_format_and_link_type_gives_the_same_segments() {
    let want = segments(&read("eth_ns.pcap"));
    for name in [
        "eth_us.pcap",
        "eth_us_be.pcap",
        "eth_ns_be.pcap",
        "eth_ns.pcapng",
        "eth_us.pcapng",
        "raw_101.pcap",
        "raw_228.pcap",
        "null_0.pcap",
        "sll.pcap",
        "sll2.pcap",
    ] {
        let c = read(name);
        assert!(c.skipped.is_empty(), "{name}: {:?}", c.skipped);
        assert_eq!(segments(&c), want, "{name}");
    }
}

#[test]
fn timestamps_keep_each_files_resolution() {
    // µs files hold the ns capture truncated to the microsecond.
    for name in [
        "eth_us.pcap",
        "eth_us_be.pcap",
        "eth_us.pcapng",
        "raw_101.pcap",
        "null_0.pcap",
    ] {
        let c = read(name);
        assert_eq!(c.packets[0].t_ns, FIRST_NS / 1000 * 1000, "{name}");
        assert_eq!(c.packets[9].t_ns, LAST_NS / 1000 * 1000, "{name}");
    }
    for name in ["eth_ns.pcapng", "eth_ns_be.pcap"] {
        let c = read(name);
        assert_eq!(
            (c.packets[0].t_ns, c.packets[9].t_ns),
            (FIRST_NS, LAST_NS),
            "{name}"
        );
    }
}

#[test]
fn pcapng_with_two_interfaces() {
    let c = read("multi_if.pcapng");
    assert_eq!(c.packets.len(), 20);
    // mergecap interleaves by time: the SLL2 copy (interface 1, µs) first, then Ethernet (0, ns).
    assert_eq!(
        (c.packets[0].iface, c.packets[0].t_ns),
        (1, 1_795_715_034_271_453_000)
    );
    assert_eq!((c.packets[1].iface, c.packets[1].t_ns), (0, FIRST_NS));
    let by_iface = |i| {
        c.packets
            .iter()
            .filter(|p| p.iface == i)
            .map(|p| p.seg.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(by_iface(0), by_iface(1));
    assert_eq!(by_iface(0).len(), 10);
}

#[test]
fn pcapng_timestamp_resolutions() {
    assert_eq!(pcapng_ts_ns(0, 1_500_000, 6, 0), Ok(1_500_000_000));
    assert_eq!(pcapng_ts_ns(1, 0, 9, 0), Ok(1 << 32));
    // 2^-10 s units: 1024 ticks = 1 s.
    assert_eq!(
        pcapng_ts_ns(0, 1024 + 1, 0x8a, 0),
        Ok(1_000_000_000 + 976_562)
    );
    // Picoseconds truncate to the nanosecond.
    assert_eq!(pcapng_ts_ns(0, 1_999, 12, 0), Ok(1));
    assert_eq!(pcapng_ts_ns(0, 5, 0, 10), Ok(15_000_000_000));
    assert!(pcapng_ts_ns(0, 5, 0, -10)
        .unwrap_err()
        .contains("out of range"));
    assert!(pcapng_ts_ns(u32::MAX, u32::MAX, 0, 0).is_err());
    assert_eq!(pcapng_ts_ns(u32::MAX, u32::MAX, 127, 0), Ok(0));
}

fn err(bytes: &[u8]) -> String {
    match read_pcap_bytes(bytes, "traces/x.pcap") {
        Ok(c) => panic!("expected an error, read {} packets", c.packets.len()),
        Err(e) => e.to_string(),
    }
}

/// Offsets of the records of a little-endian classic pcap.
fn record_offsets(b: &[u8]) -> Vec<usize> {
    let mut off = 24;
    let mut v = vec![];
    while off < b.len() {
        v.push(off);
        off += 16 + u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
    }
    v
}

#[test]
fn truncated_files_are_errors_that_say_where() {
    let b = std::fs::read(fixture("eth_ns.pcap")).unwrap();
    let offs = record_offsets(&b);
    let e = err(&b[..b.len() - 10]);
    assert!(
        e.starts_with(&format!(
            "traces/x.pcap: packet 10 at byte {}: truncated record",
            offs[9]
        )),
        "{e}"
    );
    let e = err(&b[..offs[3] + 7]);
    assert!(
        e.starts_with(&format!(
            "traces/x.pcap: packet 4 at byte {}: truncated record",
            offs[3]
        )),
        "{e}"
    );
    let e = err(&b[..10]);
    assert!(
        e.starts_with("traces/x.pcap: at byte 0: bad pcap file header: truncated"),
        "{e}"
    );
    let e = err(&b[..2]);
    assert!(e.contains("too short"), "{e}");
    let e = err(b"GIF89a....");
    assert!(e.contains("not a pcap or pcapng file"), "{e}");

    let b = std::fs::read(fixture("eth_ns.pcapng")).unwrap();
    let e = err(&b[..b.len() - 3]);
    assert!(e.starts_with("traces/x.pcap: packet 10 at byte "), "{e}");
    assert!(e.contains("truncated pcapng block"), "{e}");
    assert!(e.contains("block type 0x00000006"), "{e}");
}

#[test]
fn corrupt_pcapng_blocks_are_described() {
    let b = std::fs::read(fixture("eth_ns.pcapng")).unwrap();
    // Walk to the first Enhanced Packet Block (type 6) and corrupt its trailing length.
    let mut off = 0;
    while u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) != 6 {
        off += u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
    }
    let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
    let mut c = b.clone();
    c[off + len - 4] ^= 0x40;
    let e = err(&c);
    assert!(
        e.starts_with(&format!(
            "traces/x.pcap: packet 1 at byte {off}: corrupt pcapng block"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "length {len} (the trailing length field says {})",
            len ^ 0x40
        )),
        "{e}"
    );
    let mut c = b.clone();
    c[off + 4..off + 8].copy_from_slice(&7u32.to_le_bytes());
    let e = err(&c);
    assert!(
        e.contains("length 7 (not a multiple of 4 of at least 12)"),
        "{e}"
    );
}

/// A little-endian µs classic pcap of raw IPv4 packets.
fn raw_pcap(packets: &[(Vec<u8>, u32)]) -> Vec<u8> {
    let mut b = vec![];
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 101] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (data, orig_len) in packets {
        for v in [1u32, 0, data.len() as u32, *orig_len] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
    }
    b
}

/// The raw IPv4 packet of frame `i` of the fixture exchange.
fn raw_packet(i: usize) -> Vec<u8> {
    let b = std::fs::read(fixture("raw_101.pcap")).unwrap();
    let off = record_offsets(&b)[i];
    let len = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
    b[off + 16..off + 16 + len].to_vec()
}

#[test]
fn corrupt_packets_are_errors_that_say_what() {
    // IPv4 total length 32: the TCP header gets 12 of its 20 bytes.
    let mut p = raw_packet(0)[..32].to_vec();
    p[2..4].copy_from_slice(&32u16.to_be_bytes());
    let b = raw_pcap(&[(raw_packet(2), 52), (p, 32)]);
    let e = err(&b);
    assert_eq!(
        e,
        format!(
            "traces/x.pcap: packet 2 at byte {}: truncated TCP header (12 of 20 bytes)",
            24 + 16 + 52
        )
    );

    // TCP data offset 3 (< 5).
    let mut p = raw_packet(2);
    p[20 + 12] = 3 << 4;
    assert!(err(&raw_pcap(&[(p.clone(), p.len() as u32)]))
        .contains("packet 1 at byte 24: corrupt TCP header"));

    // IPv4 total length beyond the captured bytes, with nothing cut by the snaplen.
    let mut p = raw_packet(3);
    p[2..4].copy_from_slice(&200u16.to_be_bytes());
    let e = err(&raw_pcap(&[(p.clone(), p.len() as u32)]));
    assert!(
        e.contains("IPv4 total length 200 exceeds the 57 bytes present"),
        "{e}"
    );

    // An option whose length runs past the option area.
    let mut p = raw_packet(0);
    p[20 + 20 + 1] = 40; // MSS claims 40 bytes
    let e = err(&raw_pcap(&[(p.clone(), p.len() as u32)]));
    assert!(e.contains("TCP option 2 at option byte 0"), "{e}");
}

#[test]
fn non_tcp_and_snaplen_cut_packets_are_skipped_with_a_reason() {
    let full = raw_packet(3); // "ping\n", 57 bytes
    let mut udp = raw_packet(2);
    udp[9] = 17;
    // IPv6 carrying ICMPv6 (58): an echo request.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 58, 64];
    v6.extend([0u8; 32]);
    v6.extend([128, 0, 0, 0, 0, 1, 0, 1]);
    let b = raw_pcap(&[
        (full[..54].to_vec(), 57),
        (udp, 52),
        (full.clone(), 57),
        (full[..30].to_vec(), 57),
    ]);
    let c = read_pcap_bytes(&b, "x").unwrap();
    assert_eq!(c.packets.len(), 1);
    assert_eq!(c.packets[0].seg.payload.to_bytes(), b"ping\n");
    let reasons: Vec<(u64, &str)> = c.skipped.iter().map(|(i, r)| (*i, r.as_str())).collect();
    assert_eq!(
        reasons,
        [
            (
                1,
                "TCP segment cut by the snaplen (54 of 57 bytes captured)"
            ),
            (2, "IP protocol 17 (UDP) is not TCP"),
            (
                4,
                "TCP segment cut by the snaplen (30 of 57 bytes captured)"
            ),
        ]
    );
    let c = read_pcap_bytes(&raw_pcap(&[(v6, 48)]), "x").unwrap();
    assert_eq!(c.skipped, [(1, "IP protocol 58 (ICMPv6) is not TCP".to_string())]);
}

#[test]
fn unsupported_link_types_and_missing_files() {
    let mut b = raw_pcap(&[(raw_packet(0), 60)]);
    b[20..24].copy_from_slice(&105u32.to_le_bytes()); // 802.11
    assert!(err(&b).starts_with("traces/x.pcap: at byte 20: link type 105 is not supported"));
    let e = read_pcap(Path::new("/nonexistent/t.pcap")).unwrap_err();
    assert!(
        matches!(e, PcapError::Io { .. }) && e.to_string().starts_with("/nonexistent/t.pcap: ")
    );
}

#[test]
fn bsd_loopback_family_in_either_byte_order() {
    let ip = raw_packet(3);
    let with_af = |af: [u8; 4]| [af.to_vec(), ip.clone()].concat();
    let file = |linktype: u32, frames: &[Vec<u8>]| {
        let mut b = raw_pcap(
            &frames
                .iter()
                .map(|f| (f.clone(), f.len() as u32))
                .collect::<Vec<_>>(),
        );
        b[20..24].copy_from_slice(&linktype.to_le_bytes());
        b
    };
    // DLT_NULL from a big-endian host, and a family that is neither AF_INET nor AF_INET6 (7).
    let c = read_pcap_bytes(
        &file(
            0,
            &[with_af(2u32.to_be_bytes()), with_af(7u32.to_le_bytes())],
        ),
        "x",
    )
    .unwrap();
    assert_eq!(c.packets.len(), 1);
    assert_eq!(c.packets[0].seg.payload.to_bytes(), b"ping\n");
    assert_eq!(
        c.skipped,
        [(2, "loopback address family 7 is not AF_INET or AF_INET6".to_string())]
    );
    // DLT_LOOP (108): always network byte order.
    let c = read_pcap_bytes(&file(108, &[with_af(2u32.to_be_bytes())]), "x").unwrap();
    assert_eq!(c.packets.len(), 1);
    let e = err(&file(108, &[vec![0, 0]]));
    assert!(
        e.contains("packet 1 at byte 24: truncated loopback header (2 of 4 bytes)"),
        "{e}"
    );
}
