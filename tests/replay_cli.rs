//! `tcpsim replay` as scripts use it: exit status 0 when the model agrees with every
//! segment, 1 for a divergence (reported in `divergences`), 2 for a capture that cannot be
//! read (the error names the file; nothing is printed on stdout).

mod replay_support;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tcpsim::pcap::{read_pcap, PcapWriter};
use tcpsim::tcp::segment::Flags;
use tcpsim::time::SimTime;

fn tcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpsim")).args(args).output().expect("tcpsim runs")
}

/// A fresh directory for one test, holding a copy of a readiness trace's scenario and
/// observation log (so the copied capture is replayed with the recorded calls).
fn trace_copy(test: &str, condition: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay_cli_{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = replay_support::repo().join("traces/readiness").join(condition);
    for f in ["scenario.toml", "observations.jsonl"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    (src.join("capture.pcap"), dir)
}

/// Rewrites the capture at `src` into `dst` through `PcapWriter`, letting `alter` change
/// packet `i`'s segment.
fn rewrite(src: &Path, dst: &Path, alter: impl Fn(usize, &mut tcpsim::tcp::segment::Segment)) {
    let cap = read_pcap(src).unwrap();
    let mut w = PcapWriter::new(std::fs::File::create(dst).unwrap()).unwrap();
    for (i, p) in cap.packets.iter().enumerate() {
        let mut seg = p.seg.clone();
        alter(i, &mut seg);
        w.write_segment(SimTime(p.t_ns), &seg).unwrap();
    }
    w.finish().unwrap();
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_faithful_copy_agrees_and_an_altered_window_is_a_divergence() {
    let (src, dir) = trace_copy("window", "established-data");
    let copy = dir.join("capture.pcap");
    rewrite(&src, &copy, |_, _| {});
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--side", "server", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let ok = json(&out);
    assert_eq!(ok["divergences"].as_array().unwrap().len(), 0);
    assert_eq!(ok["segments_compared"], ok["segments_matched"]);
    assert!(ok["segments_compared"].as_u64().unwrap() >= 3);

    // The server's data segment (its first with a payload) announces a window 1 smaller.
    let cap = read_pcap(&src).unwrap();
    let server = cap.packets[0].seg.dst;
    let data = cap.packets.iter().position(|p| p.seg.src == server && !p.seg.payload.is_empty()).unwrap();
    rewrite(&src, &copy, |i, s| {
        if i == data {
            s.window -= 1;
        }
    });
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--side", "server", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    let d = r["divergences"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["side"], "server");
    assert_eq!(d[0]["fields"], serde_json::json!(["window"]));
    assert_eq!(d[0]["segment"], 1, "the SYN-ACK is segment 0, the data segment 1");
    let (k, m) = (&d[0]["captured"], &d[0]["model"]);
    assert_eq!(k["window"].as_u64().unwrap() + 1024, m["window"].as_u64().unwrap(), "window compared after scaling (2^10)");
    assert_eq!(r["connections"][0]["segments_matched"].as_u64().unwrap() + 1, r["connections"][0]["segments_compared"].as_u64().unwrap());
}

#[test]
fn with_first_an_altered_flag_stops_the_comparison_and_the_text_shows_both_segments() {
    let (src, dir) = trace_copy("flag", "peer-fin");
    let copy = dir.join("capture.pcap");
    let cap = read_pcap(&src).unwrap();
    let server = cap.packets[0].seg.dst;
    let fin = cap.packets.iter().position(|p| p.seg.src == server && p.seg.flags.contains(Flags::FIN)).unwrap();
    // The server's FIN becomes a PSH-ACK without FIN: the model still sends its FIN.
    rewrite(&src, &copy, |i, s| {
        if i == fin {
            s.flags = Flags::ACK | Flags::PSH;
        }
    });
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--side", "server", "--first"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    // The SYN-ACK is segment 0; the comparison stops at the FIN, leaving the final ACK.
    assert!(text.contains("differs in 1 place, 2 of 3 segments compared; first and worst: segment 1 flags"), "{text}");
    assert!(text.contains("  1 segment not compared: the comparison stopped at the first divergence (--first)"), "{text}");
    assert!(text.contains("2 segments compared, 1 matched, 1 divergences"), "{text}");
    assert!(text.contains("kernel t=") && text.contains("Flags [P.]"), "{text}");
    assert!(text.contains("model  t=") && text.contains("Flags [F.]"), "{text}");
}

/// established-data's server: SYN-ACK, its one data segment (`P.`), the ACK of the
/// client's data. The copy sends the data segment without PSH.
fn without_psh(test: &str) -> PathBuf {
    let (src, dir) = trace_copy(test, "established-data");
    let copy = dir.join("capture.pcap");
    drop_server_psh(&src, &copy);
    copy
}

/// Writes `src` to `copy` with the server's first data segment sent without PSH.
fn drop_server_psh(src: &Path, copy: &Path) {
    let cap = read_pcap(src).unwrap();
    let server = cap.packets[0].seg.dst;
    let data = cap.packets.iter().position(|p| p.seg.src == server && !p.seg.payload.is_empty()).unwrap();
    rewrite(src, copy, |i, s| {
        if i == data {
            s.flags = Flags::ACK;
        }
    });
}

#[test]
fn after_a_psh_difference_the_later_segments_are_still_compared() {
    let copy = without_psh("psh");
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--side", "server", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    let d = r["divergences"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!((d[0]["segment"].as_u64(), d[0]["class"].as_str()), (Some(1), Some("flags")));
    assert_eq!(d[0]["fields"], serde_json::json!(["flags"]));
    let c = &r["connections"][0];
    assert_eq!(c["segments_captured"], 3);
    assert_eq!(c["segments_compared"], 3, "the ACK after the data segment is compared: {c:#}");
    assert_eq!(c["segments_matched"], 2, "and agrees: {c:#}");
    assert_eq!(r["complete"], true);
}

#[test]
fn a_truncated_comparison_fails_unless_partial() {
    // The PSH difference is listed as known, so only coverage decides.
    let copy = without_psh("partial");
    let dir = copy.parent().unwrap();
    let trace = dir.file_name().unwrap().to_str().unwrap();
    let known = dir.parent().unwrap().join("KNOWN-DIVERGENCES-partial.md");
    let row = format!("| {trace} | server | 0 | 1 | flags | the copy's data segment lost its PSH |");
    std::fs::write(&known, format!("## Replay\n\n| trace | side | connection | segment | fields | cause |\n| --- | --- | --- | --- | --- | --- |\n{row}\n")).unwrap();
    let replay = |extra: &[&str]| {
        let mut args = vec!["replay", copy.to_str().unwrap(), "--side", "server", "--known", known.to_str().unwrap()];
        args.extend(extra);
        let out = tcpsim(&args);
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = replay(&[]);
    assert_eq!(code, Some(0), "a known divergence passes and everything was compared: {text}");
    assert!(text.contains("differs in 1 place (1 known), 3 of 3 segments compared"), "{text}");
    let (code, text) = replay(&["--first"]);
    assert_eq!(code, Some(1), "stopped at the known divergence, one segment unchecked: {text}");
    assert!(text.contains("2 of 3 segments compared") && text.contains("not a pass (unless --partial)"), "{text}");
    let (code, text) = replay(&["--first", "--partial"]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_truncated_capture_is_bad_input_named_by_file() {
    let (src, dir) = trace_copy("truncated", "established-data");
    let bytes = std::fs::read(src).unwrap();
    let cut = dir.join("capture.pcap");
    // Cut in the middle of the fourth packet's record.
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = tcpsim(&["replay", cut.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(cut.to_str().unwrap()) && err.contains("packet"), "{err}");
    assert!(out.stdout.is_empty(), "nothing written half-way");
}

#[test]
fn a_missing_file_or_an_unknown_kernel_is_bad_input() {
    let out = tcpsim(&["replay", "no/such/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/capture.pcap"));
    let pcap = replay_support::repo().join("traces/readiness/peer-fin/capture.pcap");
    let out = tcpsim(&["replay", pcap.to_str().unwrap(), "--kernel", "linux-9.9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("linux-9.9"));
}

/// A capture alone in its own directory (no scenario, no observation log).
fn alone(test: &str, condition: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay_cli_{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("capture.pcap");
    std::fs::copy(replay_support::repo().join("traces/readiness").join(condition).join("capture.pcap"), &copy).unwrap();
    copy
}

#[test]
fn without_an_observation_log_a_handshake_alone_replays_with_a_listener_and_a_connector() {
    let copy = alone("passive", "listen-pending");
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--format", "json"]);
    let r = json(&out);
    assert_eq!(r["observations"], serde_json::Value::Null);
    // Handshake only: the client's SYN and ACK, the server's SYN-ACK; nothing else inferred.
    assert_eq!(r["segments_compared"], 3, "{r:#}");
    assert_eq!(r["segments_matched"], 3, "{r:#}");
    assert!(r.get("inferred").is_none(), "{r:#}");
    assert_eq!(out.status.code(), Some(0));
}

/// established-data without its log: each side's one-byte write (PSH) and its read of the
/// peer's byte are inferred, and every segment of both sides agrees.
#[test]
fn without_an_observation_log_writes_and_reads_are_inferred_from_the_capture() {
    let copy = alone("inferred", "established-data");
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--format", "json"]);
    let r = json(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let calls: Vec<(String, String)> = r["inferred"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["side"].as_str().unwrap().to_string(), c["call"].as_str().unwrap().to_string()))
        .collect();
    let c = |side: &str, call: &str| (side.to_string(), call.to_string());
    assert_eq!(calls, [c("client", "read"), c("client", "write(1)"), c("server", "write(1)"), c("server", "read")]);
    assert_eq!((r["segments_compared"].as_u64(), r["segments_matched"].as_u64()), (Some(7), Some(7)), "{r:#}");
    assert_eq!(r["complete"], true);
    let text = String::from_utf8(tcpsim(&["replay", copy.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("(no observation log: application inferred from the capture)"), "{text}");
    assert!(text.contains("inferred application calls:") && text.contains(" write(1)"), "{text}");
}

/// A classic pcap (µs, Ethernet) of `n` copies of the frame `frame`.
fn pcap_of(frame: &[u8], n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0xa1b2c3d4u32.to_le_bytes().to_vec(), 2u16.to_le_bytes().to_vec(), 4u16.to_le_bytes().to_vec(), vec![0; 8], 65535u32.to_le_bytes().to_vec(), 1u32.to_le_bytes().to_vec()] {
        b.extend(v);
    }
    for i in 0..n {
        for v in [i as u32, 0, frame.len() as u32, frame.len() as u32] {
            b.extend(v.to_le_bytes());
        }
        b.extend_from_slice(frame);
    }
    b
}

/// Ethernet header with `ether_type`, then `rest`.
fn ether(ether_type: u16, rest: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend(ether_type.to_be_bytes());
    f.extend_from_slice(rest);
    f
}

#[test]
fn a_capture_without_tcp_is_bad_input_that_says_what_it_holds() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay_cli_nothing");
    std::fs::create_dir_all(&dir).unwrap();
    // IPv6, next header ICMPv6 (58), an 8-byte echo request.
    let mut icmp6 = vec![0x60, 0, 0, 0, 0, 8, 58, 64];
    icmp6.extend([0u8; 32]);
    icmp6.extend([128, 0, 0, 0, 0, 1, 0, 1]);
    // IPv4 UDP (17): header only, then 8 bytes of UDP.
    let udp = [0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0];
    // Ten UDP packets, then two ICMPv6 ones (the second file's records after its header).
    let mut mixed = pcap_of(&ether(0x0800, &udp), 10);
    mixed.extend_from_slice(&pcap_of(&ether(0x86dd, &icmp6), 2)[24..]);
    let cases = [
        ("icmp6.pcap", pcap_of(&ether(0x86dd, &icmp6), 12), "12 packets, none TCP (ICMPv6 12)"),
        ("udp.pcap", pcap_of(&ether(0x0800, &udp), 3), "3 packets, none TCP (UDP 3)"),
        ("mixed.pcap", mixed, "12 packets, none TCP (UDP 10, ICMPv6 2)"),
        ("empty.pcap", pcap_of(&[], 0), "the file holds no packets"),
    ];
    for (name, file, says) in cases {
        let p = dir.join(name);
        std::fs::write(&p, file).unwrap();
        let out = tcpsim(&["replay", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(&format!("{}: nothing to replay: {says}", p.display())), "{name}: {err}");
        assert!(out.stdout.is_empty());
    }
}

/// The README's example: a divergence the known-divergences file explains passes, and says
/// why; with a file that does not list it, it fails.
#[test]
fn known_divergences_pass_with_their_cause_unknown_ones_fail() {
    let pcap = replay_support::repo().join("traces/readiness/sndbuf-full/capture.pcap");
    let out = tcpsim(&["replay", pcap.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("segment 2 (time): known: the ACK of 3449"), "{text}");
    assert!(text.contains(" known, listed in"), "{text}");
    let v = json(&tcpsim(&["replay", pcap.to_str().unwrap(), "--format", "json"]));
    let divergences = v["divergences"].as_array().unwrap();
    assert!(!divergences.is_empty() && divergences.iter().all(|d| d["known"].is_string()), "{v}");
    assert!(divergences.iter().any(|d| d["known"].as_str().is_some_and(|c| c.contains("replay granularity"))), "{v}");
let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay_cli_known");
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("KNOWN-DIVERGENCES.md");
    std::fs::write(&empty, "## Replay\n\n| trace | side | connection | segment | fields | cause |\n| --- | --- | --- | --- | --- | --- |\n").unwrap();
    let out = tcpsim(&["replay", pcap.to_str().unwrap(), "--known", empty.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("segment 2 (time): NOT a known divergence"), "{text}");
    let help = String::from_utf8_lossy(&tcpsim(&["replay", "--help"]).stdout).into_owned();
    assert!(help.contains("Exit status: 0 when every segment agrees"), "{help}");
}

/// Without a log, a divergence in data the inferred calls wrote is labelled as hanging on the
/// inference: here the kernel's data segment lacks the PSH that ends a write.
#[test]
fn a_divergence_in_inferred_data_is_labelled_so() {
    let copy = alone("psh_inferred", "established-data");
    let src = replay_support::repo().join("traces/readiness/established-data/capture.pcap");
    drop_server_psh(&src, &copy);
    let out = tcpsim(&["replay", copy.to_str().unwrap(), "--side", "server", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    let d = r["divergences"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!((d[0]["class"].as_str(), d[0]["hangs_on_inference"].as_bool()), (Some("flags"), Some(true)), "{d:#?}");
    let text = String::from_utf8(tcpsim(&["replay", copy.to_str().unwrap(), "--side", "server"]).stdout).unwrap();
    assert!(text.contains("segment 1 (flags) [hangs on an inferred call]"), "{text}");
}

/// A capture with retransmissions: two messages sent while the cable is out, retransmitted
/// with backoff until it is back.
const RETRANSMITTING: &str = "traces/seeds/cable-replugged/capture.pcap";

/// A fresh, empty scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay_cli_{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Segments the side at `sut` sent in the capture: all of them, and those with data.
fn sent_by(pcap: &Path, sut: &str) -> (usize, usize) {
    let cap = read_pcap(pcap).unwrap();
    let sent: Vec<_> = cap.packets.iter().filter(|p| p.seg.src.to_string() == sut).collect();
    (sent.len(), sent.iter().filter(|p| !p.seg.payload.is_empty()).count())
}

#[test]
fn plot_overlays_the_kernels_and_the_models_segments_of_each_connection() {
    let dir = scratch("plot");
    let pcap = replay_support::repo().join(RETRANSMITTING);
    let run = |out: &Path| tcpsim(&["replay", pcap.to_str().unwrap(), "--plot", out.to_str().unwrap(), "--format", "json"]);
    let out = run(&dir.join("one"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&out);
    let conns = r["connections"].as_array().unwrap();
    let plots = r["plots"].as_array().unwrap();
    assert_eq!(plots.len(), conns.len(), "one plot per replayed connection: {plots:#?}");
    let sum = |m: &serde_json::Value, who: &str| -> u64 {
        m.as_object().unwrap().iter().filter(|(k, _)| k.starts_with(who)).map(|(_, v)| v.as_u64().unwrap()).sum()
    };
    for c in conns {
        let stem = format!("time-sequence-{}-{}", c["side"].as_str().unwrap(), c["connection"]);
        let plot = plots.iter().find(|p| p["file"].as_str().unwrap().ends_with(&stem)).unwrap_or_else(|| panic!("{stem} in {plots:#?}"));
        let m = &plot["marks"];
        let (captured, with_data) = sent_by(&pcap, c["sut"].as_str().unwrap());
        // Every segment of the side under test is one mark: the kernel's as the capture holds
        // them, the model's as the replay counted them.
        assert_eq!(sum(m, "kernel "), captured as u64, "{stem}: {m}");
        assert_eq!(c["segments_captured"].as_u64().unwrap(), captured as u64);
        assert_eq!(sum(m, "model "), c["segments_model"].as_u64().unwrap(), "{stem}: {m}");
        let data = ["kernel data", "kernel retransmission", "kernel zero-window probe"].iter().map(|k| m[*k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(data, with_data as u64, "{stem}: kernel data marks vs the capture's data segments");
        for ext in ["svg", "png"] {
            let f = dir.join("one").join(format!("{stem}.{ext}"));
            assert!(std::fs::metadata(&f).map(|m| m.len() > 5_000).unwrap_or(false), "{} missing or blank", f.display());
        }
    }
    // The client's messages were retransmitted by the kernel, and by the model.
    let client = plots.iter().find(|p| p["file"].as_str().unwrap().ends_with("time-sequence-client-0")).unwrap();
    assert!(client["marks"]["kernel retransmission"].as_u64().unwrap() > 0, "{client}");
    assert!(client["marks"]["model retransmission"].as_u64().unwrap() > 0, "{client}");
    let svg = std::fs::read_to_string(dir.join("one/time-sequence-client-0.svg")).unwrap();
    for label in ["kernel retransmission", "model retransmission", "kernel data", "model data"] {
        assert!(svg.contains(label), "the legend names {label}");
    }
    // Drawn again, every file is the same, byte for byte.
    assert_eq!(run(&dir.join("two")).status.code(), Some(0));
    let mut names: Vec<_> = std::fs::read_dir(dir.join("one")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 2 * conns.len());
    for n in names {
        assert!(std::fs::read(dir.join("one").join(&n)).unwrap() == std::fs::read(dir.join("two").join(&n)).unwrap(), "{n:?} differs between runs");
    }
    // The text report lists each plot with its marks.
    let text = tcpsim(&["replay", pcap.to_str().unwrap(), "--plot", dir.join("one").to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("time-sequence-client-0.svg (and .png): ") && text.contains(" model retransmission"), "{text}");
}

#[test]
fn a_plot_dir_that_cannot_be_one_is_bad_input_and_nothing_is_replaced() {
    let dir = scratch("plot_bad");
    let pcap = replay_support::repo().join(RETRANSMITTING);
    let replay = |out: &Path| tcpsim(&["replay", pcap.to_str().unwrap(), "--plot", out.to_str().unwrap()]);
    // A regular file where the directory should be, and a directory below it.
    let file = dir.join("a-file");
    std::fs::write(&file, "keep me").unwrap();
    for bad in [file.clone(), file.join("sub")] {
        let o = replay(&bad);
        assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&bad.display().to_string()) && err.contains("--plot"), "{err}");
        assert!(o.stdout.is_empty());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // A FIFO and a directory where a picture would go are named and kept.
    let plots = dir.join("plots");
    std::fs::create_dir_all(plots.join("time-sequence-server-0.png")).unwrap();
    let fifo = plots.join("time-sequence-client-0.svg");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let o = replay(&plots);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&fifo.display().to_string()) && err.contains("not a regular file"), "{err}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    std::fs::remove_file(&fifo).unwrap();
    let o = replay(&plots);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("time-sequence-server-0.png") && err.contains("is a directory"), "{err}");
    assert!(plots.join("time-sequence-server-0.png").is_dir());
}

/// The README's overlay picture is what its command draws now: `UPDATE_DOCS=1 cargo test
/// --release --test replay_cli` redraws it when the model (or the drawing) changed on purpose.
#[test]
fn the_readme_overlay_is_what_its_command_draws() {
    let dir = scratch("plot_docs");
    let repo = replay_support::repo();
    let pcap = repo.join(RETRANSMITTING);
    let o = tcpsim(&["replay", pcap.to_str().unwrap(), "--side", "client", "--plot", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let fresh = std::fs::read(dir.join("time-sequence-client-0.svg")).unwrap();
    let doc = repo.join("docs/img/replay-cable-replugged.svg");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&doc, &fresh).unwrap();
    }
    assert!(std::fs::read(&doc).unwrap() == fresh, "{} is out of date: run `UPDATE_DOCS=1 cargo test --release --test replay_cli`", doc.display());
}
