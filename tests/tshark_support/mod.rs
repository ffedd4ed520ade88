//! Running the real tshark on a pcap: its analysis flags per frame, and its expert summary
//! held free of malformed packets and checksum errors. Tests skip their tshark check, saying
//! why, when tshark is not installed, and fail instead under `TCPSIM_REQUIRE_TSHARK=1`, which
//! CI (`.ci/run`, which installs tshark) sets.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use tcpsim::pcap::Label;

/// Whether tshark can run here. When it cannot, says so and returns false (the caller skips
/// its tshark check), unless `TCPSIM_REQUIRE_TSHARK=1` (set by `.ci/run`): then the test
/// fails, so that a machine without tshark cannot pass these checks by saying nothing.
pub fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    skip_or_fail(ok, std::env::var("TCPSIM_REQUIRE_TSHARK").ok().as_deref())
}

/// The decision of [`tshark_available`], given whether tshark ran and the variable's value.
pub fn skip_or_fail(available: bool, require: Option<&str>) -> bool {
    if !available {
        assert_ne!(require, Some("1"), "TCPSIM_REQUIRE_TSHARK=1 but tshark is not installed (apt-get install -y tshark)");
        // Written to the stream directly: the test harness captures eprintln!.
        let _ = writeln!(std::io::stderr(), "SKIP: tshark is not installed (apt-get install -y tshark)");
    }
    available
}

pub fn tshark(path: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ])
        .args(args)
        .output()
        .expect("running tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// tshark's `tcp.analysis.*` flags per frame, read from its PDML output.
pub fn tshark_labels(path: &Path) -> Vec<Vec<Label>> {
    let pdml = tshark(path, &["-T", "pdml"]);
    pdml.split("<packet>")
        .skip(1)
        .map(|packet| {
            Label::ALL
                .into_iter()
                .filter(|l| packet.contains(&format!("name=\"{}\"", l.wireshark_field())))
                .collect()
        })
        .collect()
}

/// The expert summary, asserted free of malformed packets and checksum errors.
pub fn assert_clean(path: &Path) {
    let expert = tshark(path, &["-q", "-z", "expert"]);
    let lower = expert.to_lowercase();
    assert!(
        !lower.contains("malformed"),
        "malformed packets in {}:\n{expert}",
        path.display()
    );
    assert!(
        !lower.contains("checksum"),
        "checksum problems in {}:\n{expert}",
        path.display()
    );
}
