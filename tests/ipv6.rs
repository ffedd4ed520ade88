//! IPv6: a scenario whose hosts have IPv6 addresses runs as an IPv4 one does, with the
//! IPv6 header's consequences (net/ipv6/route.c `ip6_default_advmss`: MSS = MTU − 40 − 20),
//! and its pcap reads back through the reader segment for segment.

use std::path::{Path, PathBuf};
use std::process::Command;
use tcpsim::pcap::{read_pcap, read_pcap_bytes, PcapWriter};
use tcpsim::tcp::segment::{Ecn, Flags, Segment};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `models/peer-closes-gracefully.toml` with its two hosts moved to IPv6 addresses.
fn v6_scenario(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("models/peer-closes-gracefully.toml")).unwrap();
    let text = text.replace("addr = \"10.0.0.1\"", "addr = \"2001:db8::1\"").replace("addr = \"10.0.0.2\"", "addr = \"2001:db8::2\"");
    assert!(text.contains("2001:db8::1") && text.contains("2001:db8::2"));
    let p = dir.join("v6.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_ipv6_scenario_runs_with_the_ipv6_mss_and_its_pcap_reads_back() {
    let dir = scratch("ipv6_scenario");
    let pcap = dir.join("v6.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_tcpsim"))
        .args(["run", v6_scenario(&dir).to_str().unwrap(), "--pcap", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cap = read_pcap(&pcap).unwrap();
    assert!(cap.skipped.is_empty(), "{:?}", cap.skipped);
    // Handshake, the server's line and FIN, the client's ACKs and FIN, the last ACK.
    assert!(cap.packets.len() >= 7, "{}", cap.packets.len());
    let hosts = ["2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap()];
    for p in &cap.packets {
        assert!(hosts.contains(&p.seg.src.ip()) && hosts.contains(&p.seg.dst.ip()), "{}", p.seg.summary());
    }
    // Both SYNs advertise a 1500-byte veth's IPv6 MSS: 1500 − 40 (IPv6) − 20 (TCP).
    let syns: Vec<&Segment> = cap.packets.iter().map(|p| &p.seg).filter(|s| s.flags.contains(Flags::SYN)).collect();
    assert_eq!(syns.len(), 2);
    assert!(syns.iter().all(|s| s.options.mss == Some(1440)), "{syns:?}");
    // Ethernet (14) + IPv6 (40) + TCP (20) + options + payload, as recorded on the wire.
    for p in &cap.packets {
        let options = tcpsim::pcap::write::linux_options(&p.seg.options).len() as u32;
        assert_eq!(p.raw_len, 14 + 40 + 20 + options + p.seg.payload.len(), "{}", p.seg.summary());
    }
    // Written again from what was read, the file is the same byte for byte.
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for p in &cap.packets {
        w.write_segment(tcpsim::time::SimTime(p.t_ns), &p.seg).unwrap();
    }
    assert_eq!(w.finish().unwrap(), std::fs::read(&pcap).unwrap());
}

#[test]
fn ipv6_frames_carry_ecn_in_the_traffic_class_and_read_back_identical() {
    let mut seg = Segment {
        src: "[2001:db8::1]:40000".parse().unwrap(),
        dst: "[2001:db8::2]:80".parse().unwrap(),
        seq: 1,
        ack: 2,
        flags: Flags::PSH | Flags::ACK,
        ecn: Ecn::Ce,
        window: 502,
        options: Default::default(),
        payload: tcpsim::tcp::segment::Payload::Derived { stream: 3, offset: 0, len: 100 },
    };
    seg.options.timestamps = Some((7, 8));
    let frame = tcpsim::pcap::write::encode_frame(&seg, 0).unwrap();
    assert_eq!(&frame[12..14], &[0x86, 0xdd], "ether type IPv6");
    // Version 6, traffic class 0x03 (CE) split over the first two bytes, flow label 0.
    assert_eq!(&frame[14..18], &[0x60, 0x30, 0, 0]);
    assert_eq!(u16::from_be_bytes([frame[18], frame[19]]), 20 + 12 + 100, "payload length");
    assert_eq!((frame[20], frame[21]), (6, 64), "next header TCP, hop limit 64");
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.write_segment(tcpsim::time::SimTime(5), &seg).unwrap();
    let cap = read_pcap_bytes(&w.finish().unwrap(), "mem.pcap").unwrap();
    let got = &cap.packets[0].seg;
    assert_eq!((got.src, got.dst, got.seq, got.ack, got.flags, got.ecn, got.window), (seg.src, seg.dst, 1, 2, seg.flags, Ecn::Ce, 502));
    assert_eq!(got.options, seg.options);
    assert_eq!(got.payload.to_bytes(), seg.payload.to_bytes());
}

/// The verdict lines of `tcpsim replay PCAP --partial`: the side, then what was compared and
/// how it differs (the endpoints, whose ports differ between runs, left out).
fn replay_verdicts(pcap: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpsim")).args(["replay", pcap.to_str().unwrap(), "--partial"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let verdict = |l: &str| {
        let at = l.find(": differs").or_else(|| l.find(": agrees")).unwrap_or(0);
        format!("{}{}", l.split(' ').next().unwrap_or(""), &l[at..])
    };
    let verdicts: Vec<String> = text.lines().filter(|l| (l.starts_with("client ") || l.starts_with("server ")) && l.contains(" segments compared")).map(verdict).collect();
    assert_eq!(verdicts.len(), 2, "{text}");
    verdicts
}

#[test]
fn an_ipv6_capture_replays_as_its_ipv4_twin_does() {
    let dir = scratch("ipv6_replay");
    let run = |scenario: &Path, pcap: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_tcpsim")).args(["run", scenario.to_str().unwrap(), "--pcap", pcap.to_str().unwrap()]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
    };
    let (v4, v6) = (dir.join("v4.pcap"), dir.join("v6.pcap"));
    run(&repo().join("models/peer-closes-gracefully.toml"), &v4);
    run(&v6_scenario(&dir), &v6);
    let (a, b) = (replay_verdicts(&v4), replay_verdicts(&v6));
    // Every segment of both sides compared, and the same verdict as over IPv4.
    assert!(b.iter().all(|v| v.contains("5 of 5 segments compared") || v.contains("4 of 4 segments compared")), "{b:?}");
    assert_eq!(a, b);
}
