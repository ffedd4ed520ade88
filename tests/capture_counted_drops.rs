//! Loss by count (`drop_nth` on a link direction) is the same loss on the real kernel and in
//! the replay: `models/lossy/burst-drop.toml` loses the client's 30th to 33rd TCP segments on
//! the wire, the lab with an nft `numgen inc` counter at the server's input hook, the replay's
//! link with its own count. The server's first SACK then names the same hole in both, and
//! the replay holds the capture's `TCP_INFO` samples against the model's at every call.

mod capture_support;

use tcpsim::replay::{replay_file, ReplayOptions, Side};
use tcpsim::tcp::segment::Segment;

/// `[link.a_to_b] drop_nth` of the scenario: the client's segments lost, counted from 1 (the SYN).
const LOST: std::ops::RangeInclusive<usize> = 30..=33;

/// The first ACK carrying a SACK block: (its ACK, the block's left edge).
fn first_sack<'a>(segs: impl IntoIterator<Item = &'a Segment>) -> Option<(u32, u32)> {
    segs.into_iter().find_map(|s| s.options.sack.first().map(|b| (s.ack, b.0)))
}

#[test]
fn a_counted_burst_is_the_same_hole_on_the_kernel_and_in_the_replay() {
    if !capture_support::live_or_skip("a_counted_burst_is_the_same_hole_on_the_kernel_and_in_the_replay") {
        return;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = tcpsim::scenario::load(&repo.join("models/lossy/burst-drop.toml")).unwrap();
    let dir = std::env::temp_dir().join(format!("tcpsim-counted-{}", std::process::id()));
    let report = tcpsim::capture::capture(&sc, &dir).unwrap_or_else(|e| panic!("{e}"));
    let cap = tcpsim::pcap::read_pcap(&dir.join("capture.pcap")).unwrap();
    let client = |s: &Segment| s.src.ip() == std::net::Ipv4Addr::new(10, 0, 0, 1);
    let from_client: Vec<&Segment> = cap.packets.iter().map(|p| &p.seg).filter(|s| client(s)).collect();
    // The server never got the 30th to 33rd: it acknowledges up to the 30th's first byte and
    // SACKs from the 34th's.
    let hole = (from_client[LOST.start() - 1].seq, from_client[*LOST.end()].seq);
    let kernel = first_sack(cap.packets.iter().map(|p| &p.seg).filter(|s| !client(s)));
    assert_eq!(kernel, Some(hole), "the kernel's server");

    let opts = ReplayOptions { sides: vec![Side::Server], keep_segments: true, ..Default::default() };
    let replay = replay_file(&dir.join("capture.pcap"), &opts).unwrap();
    let model = first_sack(replay.segments.iter().flat_map(|c| c.model.iter().map(|t| &t.seg)));
    assert_eq!(model, Some(hole), "the model's server, fed the capture's segments");

    // Every TCP_INFO the client's script took on its connected socket is compared.
    let client_side = replay_file(&dir.join("capture.pcap"), &ReplayOptions { sides: vec![Side::Client], ..Default::default() }).unwrap();
    let taken = report.observations.iter().filter(|o| o.value.as_ref().is_some_and(|v| v.get("snd_cwnd").is_some())).count();
    assert_eq!(taken, 21, "the scenario samples TCP_INFO 21 times");
    assert_eq!(client_side.tcp_info.len(), taken);
    assert!(client_side.tcp_info.iter().all(|i| i.model["snd_cwnd"].as_u64().is_some()));
    let _ = std::fs::remove_dir_all(&dir);
}
