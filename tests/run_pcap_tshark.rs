//! `tcpsim run --pcap` as Wireshark sees it: the file opens with no malformed packets and
//! no checksum errors, and tshark's `tcp.analysis` flags (retransmission, keep-alive,
//! zero-window probe, ...) equal the labels tcpsim gives the same segments, frame by frame.

mod tshark_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use tcpsim::pcap::{label_segments, read_pcap, Label};
use tshark_support::*;

/// Runs `scenario` with `--pcap` and returns the file.
fn simulated_pcap(scenario: &str) -> PathBuf {
    let name = Path::new(scenario).file_stem().unwrap().to_string_lossy().to_string();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("run_{name}.pcap"));
    let out = Command::new(env!("CARGO_BIN_EXE_tcpsim"))
        .args(["run", scenario, "--pcap", path.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{scenario}: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// Our labels of the file's segments, with the file's frame count.
fn our_labels(path: &Path) -> Vec<Vec<Label>> {
    let segs: Vec<_> = read_pcap(path).unwrap().packets.into_iter().map(|p| (p.t_ns, p.seg)).collect();
    label_segments(&segs)
}

/// Holds one simulated run's pcap against tshark; returns how often each label occurred.
fn agree_with_tshark(scenario: &str) -> std::collections::BTreeMap<&'static str, usize> {
    let path = simulated_pcap(scenario);
    let ours = our_labels(&path);
    let mut seen = std::collections::BTreeMap::new();
    for l in ours.iter().flatten() {
        *seen.entry(l.wireshark_field()).or_insert(0) += 1;
    }
    if !tshark_available() {
        return seen;
    }
    assert_clean(&path);
    let theirs = tshark_labels(&path);
    assert_eq!(theirs.len(), ours.len(), "{scenario}: frame count");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "{scenario}: frame {}: ours vs tshark", i + 1);
    }
    seen
}

#[test]
fn a_lossy_transfer_with_a_partition_reads_as_tshark_reads_it() {
    let seen = agree_with_tshark("models/lossy-partition.toml");
    assert!(seen.contains_key("tcp.analysis.retransmission"), "the run retransmits: {seen:?}");
}

#[test]
fn keepalive_probes_read_as_tshark_reads_them() {
    let seen = agree_with_tshark("models/peer-hibernated-keepalive.toml");
    assert!(seen.contains_key("tcp.analysis.keep_alive"), "the run sends keepalive probes: {seen:?}");
}

#[test]
fn a_full_receive_window_and_its_probes_read_as_tshark_reads_them() {
    let seen = agree_with_tshark("models/readiness/sndbuf-full.toml");
    assert!(seen.contains_key("tcp.analysis.zero_window"), "the receiver closes its window: {seen:?}");
}
