//! Segments written by `PcapWriter` read back identical through `read_pcap_bytes`.

use std::rc::Rc;
use tcpsim::pcap::{read_pcap_bytes, PcapWriter};
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::SimTime;

fn seg(src: &str, dst: &str, seq: u32, ack: u32, flags: Flags, window: u16) -> Segment {
    Segment {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        seq,
        ack,
        flags,
        ecn: Ecn::NotEct,
        window,
        options: TcpOptions::default(),
        payload: Payload::Empty,
    }
}

/// A handshake, data with timestamps, SACK, a FIN and a RST: every option and flag tcpsim uses.
fn conversation() -> Vec<(SimTime, Segment)> {
    let c = "10.0.0.1:40000";
    let s = "10.0.0.2:80";
    let mut syn = seg(c, s, 1000, 0, Flags::SYN, 64240);
    syn.options = TcpOptions {
        mss: Some(1460),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: Some((111, 0)),
        ..TcpOptions::default()
    };
    // A Fast Open cookie request, and the SYN-ACK's 8-byte cookie (kind 34, RFC 7413).
    syn.options.fastopen = Some(tcpsim::tcp::fastopen::FoCookie::REQUEST);
    let mut synack = seg(s, c, 5000, 1001, Flags::SYN | Flags::ACK, 65160);
    synack.options = TcpOptions {
        timestamps: Some((222, 111)),
        fastopen: tcpsim::tcp::fastopen::FoCookie::new(&[0, 1, 2, 3, 0xab, 0xcd, 0xef, 0xff]),
        ..syn.options.clone()
    };
    let ts = |v, e| TcpOptions {
        timestamps: Some((v, e)),
        ..TcpOptions::default()
    };
    let mut ack = seg(c, s, 1001, 5001, Flags::ACK, 502);
    ack.options = ts(112, 222);
    let mut data = seg(c, s, 1001, 5001, Flags::PSH | Flags::ACK, 502);
    data.options = ts(113, 222);
    data.payload = Payload::Derived {
        stream: 7,
        offset: 0,
        len: 1448,
    };
    let mut sack = seg(s, c, 5001, 1001, Flags::ACK, 509);
    sack.options = TcpOptions {
        timestamps: Some((223, 113)),
        sack: vec![(2449, 3897), (5345, 6793), (8241, 9689)],
        ..TcpOptions::default()
    };
    let mut sack4 = seg(s, c, 5001, 1001, Flags::ACK | Flags::ECE, 509);
    sack4.options.sack = vec![(1, 2), (3, 4), (5, 6), (7, 8)];
    let mut bytes = seg(s, c, 5001, 2449, Flags::PSH | Flags::ACK | Flags::CWR, 509);
    bytes.payload = Payload::Bytes(Rc::from(&b"HTTP/1.1 200 OK\r\n"[..]));
    let fin = seg(c, s, 2449, 5018, Flags::FIN | Flags::ACK, 502);
    let rst = seg(s, c, 5018, 0, Flags::RST, 0);
    let no_ts_syn = {
        let mut s2 = seg("10.0.0.3:1", "10.0.0.4:2", 0xffff_fff0, 0, Flags::SYN, 1024);
        s2.options = TcpOptions {
            mss: Some(536),
            sack_permitted: true,
            wscale: Some(0),
            // A cookie in the experimental option (kind 254, magic 0xF989).
            fastopen: tcpsim::tcp::fastopen::FoCookie::new(&[9, 8, 7, 6]).map(|c| c.with_exp(true)),
            ..TcpOptions::default()
        };
        s2
    };
    [
        syn, synack, ack, data, sack, sack4, bytes, fin, rst, no_ts_syn,
    ]
    .into_iter()
    .enumerate()
    // Times exercise the nanosecond field, including a second boundary.
    .map(|(i, s)| (SimTime(i as u64 * 333_333_337 + 999_999_999), s))
    .collect()
}

fn write(segs: &[(SimTime, Segment)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (t, s) in segs {
        w.write_segment(*t, s).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn written_segments_read_back_identical() {
    let segs = conversation();
    let bytes = write(&segs);
    // Nanosecond magic, little-endian, Ethernet, snaplen 262144.
    assert_eq!(&bytes[..4], &0xa1b2_3c4du32.to_le_bytes());
    assert_eq!(&bytes[16..20], &262_144u32.to_le_bytes());
    assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
    let cap = read_pcap_bytes(&bytes, "mem.pcap").unwrap();
    assert!(cap.skipped.is_empty(), "{:?}", cap.skipped);
    assert_eq!(cap.packets.len(), segs.len());
    for ((t, want), got) in segs.iter().zip(&cap.packets) {
        assert_eq!(got.t_ns, t.as_nanos());
        assert_eq!(got.seg.src, want.src);
        assert_eq!(got.seg.dst, want.dst);
        assert_eq!(
            (got.seg.seq, got.seg.ack, got.seg.flags, got.seg.window),
            (want.seq, want.ack, want.flags, want.window)
        );
        assert_eq!(got.seg.options, want.options, "{}", want.summary());
        assert_eq!(got.seg.payload.to_bytes(), want.payload.to_bytes());
        assert_eq!(got.iface, 0);
    }
}

#[test]
fn options_follow_linux_layout() {
    let segs = conversation();
    let frame = tcpsim::pcap::write::encode_frame(&segs[0].1, 0).unwrap();
    // SYN: MSS, SACK_PERM, TS, NOP, WS, then the Fast Open request padded with two NOPs
    // (tcp_options_write: `(len & 3) == 2`), 24 option bytes.
    let opts = &frame[14 + 20 + 20..];
    assert_eq!(&opts[..4], &[2, 4, 0x05, 0xb4]);
    assert_eq!(&opts[4..8], &[4, 2, 8, 10]);
    assert_eq!(&opts[16..20], &[1, 3, 3, 7]);
    assert_eq!(&opts[20..24], &[34, 2, 1, 1]);
    assert_eq!(opts.len(), 24);
    // SYN-ACK: the 8-byte cookie, option length 10, two NOPs.
    let frame = tcpsim::pcap::write::encode_frame(&segs[1].1, 0).unwrap();
    assert_eq!(&frame[14 + 40 + 20..14 + 40 + 32], &[34, 10, 0, 1, 2, 3, 0xab, 0xcd, 0xef, 0xff, 1, 1]);
    // Data: NOP NOP TS.
    let frame = tcpsim::pcap::write::encode_frame(&segs[2].1, 0).unwrap();
    assert_eq!(
        frame[14 + 20 + 12] >> 4,
        8,
        "data offset of a timestamped segment"
    );
    assert_eq!(&frame[14 + 20 + 20..14 + 20 + 24], &[1, 1, 8, 10]);
    // SACK after timestamps: NOP NOP TS NOP NOP SACK.
    let frame = tcpsim::pcap::write::encode_frame(&segs[4].1, 0).unwrap();
    assert_eq!(&frame[14 + 40 + 12..14 + 40 + 16], &[1, 1, 5, 26]);
}

#[test]
fn ip_ids_count_per_sender_and_macs_follow_addresses() {
    let segs = conversation();
    let bytes = write(&segs);
    // Record 1 (client) and record 3 (client again): IP ids 0 and 1; record 2 (server): 0.
    let mut off = 24;
    let mut ids = vec![];
    while off < bytes.len() {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = &bytes[off + 16..off + 16 + caplen];
        ids.push(u16::from_be_bytes([frame[18], frame[19]]));
        if off == 24 {
            assert_eq!(
                &frame[6..12],
                &[2, 0, 10, 0, 0, 1],
                "source MAC derives from 10.0.0.1"
            );
            assert_eq!(frame[22], 64, "TTL");
            assert_eq!(frame[20] & 0x40, 0x40, "DF");
        }
        off += 16 + caplen;
    }
    assert_eq!(ids, vec![0, 0, 1, 2, 1, 2, 3, 3, 4, 0]);
}

/// Each segment of a real Linux capture (tests/fixtures/pcap/eth_ns.pcap), re-encoded by the
/// writer, gives the kernel's own TCP header and option bytes, and the same IPv4 TTL, flags
/// and lengths. (The checksum is left out: loopback captures carry the partial checksum of
/// checksum offload.)
#[test]
fn writer_reproduces_linux_headers_byte_for_byte() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pcap/eth_ns.pcap");
    let bytes = std::fs::read(&path).unwrap();
    let cap = read_pcap_bytes(&bytes, "eth_ns.pcap").unwrap();
    let mut off = 24;
    for p in &cap.packets {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let real = &bytes[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        let ours = tcpsim::pcap::write::encode_frame(&p.seg, 0).unwrap();
        assert_eq!(ours.len(), real.len(), "{}", p.seg.summary());
        let (ip_ours, ip_real) = (&ours[14..34], &real[14..34]);
        assert_eq!(
            ip_ours[0..4],
            ip_real[0..4],
            "version, IHL, TOS, total length"
        );
        assert_eq!(ip_ours[6..10], ip_real[6..10], "DF, TTL, protocol");
        assert_eq!(ip_ours[12..20], ip_real[12..20], "addresses");
        let (tcp_ours, tcp_real) = (&ours[34..], &real[34..]);
        assert_eq!(
            tcp_ours[..16],
            tcp_real[..16],
            "{}: ports, seq, ack, offset, flags, window",
            p.seg.summary()
        );
        assert_eq!(
            tcp_ours[18..],
            tcp_real[18..],
            "{}: urgent pointer, options, payload",
            p.seg.summary()
        );
    }
    assert_eq!(cap.packets.len(), 10);
}
