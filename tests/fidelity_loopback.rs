//! Loopback and link MTU (issue 10, item 6): the MSS a SYN advertises is the route's
//! (`tcp_advertise_mss` → `dst_metric_advmss`, net/ipv4/route.c `ipv4_default_advmss`: MTU
//! − 40), so a `lo` link (MTU 65536) gives 65495 and a 9000-byte veth 8960; a loopback joins
//! a host to itself, with one port space and no serialization delay.

mod models_support;
mod scenario_text;
use models_support::*;
use scenario_text::two_hosts;
use std::path::PathBuf;
use std::process::Command;
use tcpsim::scenario::parse;

fn run_text(text: &str) -> Run {
    let sc = parse(text, "loopback.toml").unwrap_or_else(|e| panic!("{e}"));
    run_scenario(sc)
}

/// One host `box` at `addr` with a loopback link `lo` (plus `link_extra` lines in it); a
/// listener `l` on port 80, a client `c` connecting to `box:80`, the server's accepted `s`,
/// then `steps`.
fn loopback(addr: &str, link_extra: &str, steps: &str) -> String {
    let opening = scenario_text::listen_and_connect("box", "box", "box:80", false);
    format!(
        r#"
name = "loopback"
duration = "2s"
[[host]]
name = "box"
addr = "{addr}"
[[link]]
name = "lo"
kind = "lo"
a = "box"
b = "box"
{link_extra}
{opening}[[script]]
op = "accept"
sock = "l"
new = "s"
{steps}"#
    )
}

fn step(op: &str, sock: &str, rest: &str) -> String {
    format!("[[script]]\nop = \"{op}\"\nsock = \"{sock}\"\n{rest}\n")
}

/// Segments `box` sent from or to port 80 with `flags` (tcpdump spelling).
fn segs<'a>(r: &'a Run, flags: &str, from_server: bool) -> Vec<&'a serde_json::Value> {
    let port = if from_server { "src" } else { "dst" };
    r.events("seg_sent", |v| v["flags"] == flags && v[port].as_str().is_some_and(|a| a.ends_with(":80")))
}

/// A connection over `lo` to the host's own address: both SYNs advertise 65495
/// (65536 − 40, capped at `IPV4_MAX_PMTU` − 40) and timestamps are negotiated, so the path
/// allows 65495 − 12 = 65483-byte segments; but `tcp_sync_mss` bounds the MSS by half the
/// largest window the peer offered (include/net/tcp.h `tcp_bound_to_half_wnd`), and on loopback
/// that is less: the SYN-ACK's window is 65483 (the server's first `rcv_wnd`), so the first
/// segments carry 65483 / 2 = 32741 bytes (`ss -i` on a real `lo` shows `mss:32741`, and a
/// capture of this script on 6.18 the same two first segments), and each later one at most half
/// the largest window the server advertised before it (`tcp_ack_update_window` re-syncs the
/// MSS when it grows). No segment waits for serialization: each arrives when it is sent.
#[test]
fn loopback_advertises_65495_and_bounds_segments_by_half_the_window() {
    let len = 300_000;
    // Each recv takes what has arrived; the window reopens as it does.
    let steps = step("send", "c", &format!("len = {len}")) + &step("recv", "s", &format!("len = {len}")).repeat(5);
    let r = run_text(&loopback("127.0.0.1", "", &steps));
    let syn = segs(&r, "S", false);
    let synack = segs(&r, "S.", true);
    assert_eq!(syn[0]["options"]["mss"], 65495, "{}", syn[0]);
    assert_eq!(synack[0]["options"]["mss"], 65495, "{}", synack[0]);
    assert!(syn[0]["options"]["timestamps"].is_array() && synack[0]["options"]["timestamps"].is_array(), "timestamps negotiated");
    let wscale = syn[0]["options"]["wscale"].as_u64().unwrap();
    // The server's segments in order, with each client data segment checked against the
    // largest window the server had advertised by then (unscaled in the SYN-ACK).
    let mut max_window = 0;
    let mut data = Vec::new();
    let mut first_ack_window = None;
    for v in r.events("seg_sent", |_| true) {
        let win = v["win"].as_u64().unwrap();
        if v["src"].as_str().is_some_and(|a| a.ends_with(":80")) {
            let scaled = if v["flags"] == "S." { win } else { win << wscale };
            if !data.is_empty() {
                first_ack_window.get_or_insert(scaled);
            }
            max_window = max_window.max(scaled);
        } else if v["len"].as_u64() > Some(0) {
            let l = v["len"].as_u64().unwrap();
            assert!(l <= (max_window / 2).min(65483), "{l} bytes with the largest window {max_window}: {v}");
            data.push(l);
        }
    }
    assert_eq!(data.iter().sum::<u64>(), len, "every byte crossed lo: {data:?}");
    assert_eq!(synack[0]["win"], 65483);
    assert_eq!(data[..2], [32741, 32741], "half the SYN-ACK's window: {data:?}");
    // The server's first ACK of data opens the window (93 << 10 = 95232 on a real lo): the
    // next segment is half that.
    let grown = first_ack_window.expect("the server acked data");
    assert!(grown > 65483, "{grown}");
    assert_eq!(data[2], grown / 2, "the MSS grew with the window: {data:?}");
    // No serialization: the handshake completes at the instant of connect.
    let established = r.transitions("box", "ESTABLISHED");
    assert!(established.iter().all(|v| t(v) == t(syn[0])), "{established:?}");
}

/// A veth with `mtu = 9000` advertises 9000 − 40 = 8960 both ways, and carries data in
/// segments of 8960 − 12.
#[test]
fn a_9000_byte_veth_advertises_8960() {
    let text = two_hosts("jumbo", "2s", "1ms").replace("delay = \"1ms\"\n", "delay = \"1ms\"\nmtu = 9000\n")
        + &scenario_script_client_server()
        + &step("send", "c", "len = 100000")
        + &step("recv", "s", "len = 100000");
    let r = run_text(&text);
    assert_eq!(r.sent("client", "S")[0]["options"]["mss"], 8960);
    assert_eq!(r.sent("server", "S.")[0]["options"]["mss"], 8960);
    let max = r.events("seg_sent", |v| v["host"] == "client").iter().filter_map(|v| v["len"].as_u64()).max();
    assert_eq!(max, Some(8960 - 12));
}

/// The default veth keeps Ethernet's 1500: MSS 1460, as every model's trace had it.
#[test]
fn a_default_veth_advertises_1460() {
    let r = run_text(&(two_hosts("eth", "1s", "1ms") + &scenario_script_client_server()));
    assert_eq!(r.sent("client", "S")[0]["options"]["mss"], 1460);
    assert_eq!(r.sent("server", "S.")[0]["options"]["mss"], 1460);
}

/// `tcp_bound_to_half_wnd` on a veth: a listener with SO_RCVBUF 1024 offers a 1152-byte
/// window in its SYN-ACK (as the real one did), so the client's MSS is 1152 / 2 = 576, not 1448
/// (`tcp_rcv_synsent_state_process` sets `max_window` and calls `tcp_sync_mss`); its segments
/// are that long. A capture of this script on Linux 6.18 showed the same: TCP_INFO `snd_mss`
/// 576 and 576-byte segments.
#[test]
fn a_small_window_halves_the_mss_on_a_veth_too() {
    let setup = [
        step("socket", "l", "host = \"server\""),
        step("setsockopt", "l", "opt = \"SO_RCVBUF\"\nvalue = 1024"),
        step("bind", "l", "port = 80"),
        step("listen", "l", "backlog = 4"),
        step("socket", "c", "host = \"client\""),
        step("connect", "c", "to = \"server:80\""),
        step("accept", "l", "new = \"s\""),
        step("getsockopt", "c", "opt = \"TCP_INFO\""),
        step("send", "c", "len = 5000\nflags = [\"MSG_DONTWAIT\"]"),
        "[[script]]\nop = \"sleep\"\ndur = \"100ms\"\n".to_string(),
    ]
    .concat();
    let r = run_text(&(two_hosts("small-window", "1s", "0") + &setup));
    let synack_win = r.sent("server", "S.")[0]["win"].as_u64().unwrap();
    assert_eq!(synack_win, 1152);
    let info = r.calls("getsockopt", "c")[0].value.clone().unwrap();
    assert_eq!(info["snd_mss"], synack_win / 2, "{info}");
    let lens: Vec<u64> = r.events("seg_sent", |v| v["host"] == "client").iter().filter_map(|v| v["len"].as_u64()).filter(|&l| l > 0).collect();
    assert!(!lens.is_empty() && lens.iter().all(|&l| l <= synack_win / 2), "{lens:?}");
}

fn scenario_script_client_server() -> String {
    [
        step("socket", "l", "host = \"server\""),
        step("bind", "l", "port = 80"),
        step("listen", "l", "backlog = 4"),
        step("socket", "c", "host = \"client\""),
        step("connect", "c", "to = \"server:80\""),
        step("accept", "l", "new = \"s\""),
    ]
    .concat()
}

/// `tcpsim run` on a scenario whose link is bad: exit 2 and one line naming the file, the
/// line and column, and the field.
fn run_bad(name: &str, text: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("tcpsim-loopback-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpsim")).args(["run", path.to_str().unwrap()]).output().expect("tcpsim runs");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The line (1-based) of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).expect("line present") + 1
}

#[test]
fn bad_mtus_and_loopbacks_are_exit_2_errors_naming_the_field() {
    let cases = [
        ("mtu-low", two_hosts("bad", "1s", "1ms") + "mtu = 67\n", "mtu = ", "link[0].mtu", "68..=65536"),
        ("mtu-high", two_hosts("bad", "1s", "1ms") + "mtu = 65537\n", "mtu = ", "link[0].mtu", "65537"),
        ("lo-two-hosts", two_hosts("bad", "1s", "1ms") + "kind = \"lo\"\n", "b = ", "link[0].b", "lo link"),
        (
            "lo-rate",
            loopback("127.0.0.1", "bandwidth = \"10Mbit\"", ""),
            "bandwidth = ",
            "link[0].bandwidth",
            "serialization",
        ),
        ("kind", two_hosts("bad", "1s", "1ms") + "kind = \"wifi\"\n", "kind = ", "link[0].kind", "veth"),
    ];
    for (name, text, line_prefix, field, words) in cases {
        let (code, err) = run_bad(name, &text);
        assert_eq!(code, 2, "{name}: {err}");
        let line = line_of(&text, line_prefix);
        assert!(err.contains(&format!("bad.toml:{line}:")), "{name}: line {line} named: {err}");
        assert!(err.contains(&format!(": {field}: ")), "{name}: field {field} named: {err}");
        assert!(err.contains(words), "{name}: {words:?} in {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

/// `tcpsim table --link loopback`: every recipe runs with both ends on one host's `lo`
/// (127.0.0.1). On a lossless link without delay the answers are the veth table's, except
/// where a recipe crashes the peer host, which on loopback is the observer's own host.
#[test]
fn the_readiness_table_runs_over_loopback() {
    use tcpsim::table::{simulate_on, TableLink};
    use tcpsim::tcp::profile::Os;
    let veth = simulate_on(Os::Linux, TableLink::Veth).expect("veth table");
    let lo = simulate_on(Os::Linux, TableLink::Loopback).expect("every recipe runs on loopback and keeps the rules");
    assert_eq!(lo.rows.len(), tcpsim::scenario::readiness::CONDITIONS.len());
    for (v, l) in veth.rows.iter().zip(&lo.rows) {
        assert_eq!(v.condition, l.condition);
        if l.condition == "peer-reboot" {
            assert_ne!(v.cells(), l.cells(), "the crash takes the observer's host too");
        } else {
            assert_eq!(v.cells(), l.cells(), "{}", l.condition);
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tcpsim")).args(["table", "--link", "loopback"]).output().expect("tcpsim runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("loopback, 127.0.0.1") && text.contains("--link loopback"), "{text}");
    assert!(text.contains("| `sndbuf-full` | sim |"), "{text}");
}

/// A send needs only `sk_wmem_queued < sk_sndbuf` for a new skb (stream.c
/// `sk_stream_memory_free`, tcp.c `tcp_sendmsg_locked`), while POLLOUT needs the free space
/// to be at least half the queued (`__sk_stream_is_writeable`: `sk_stream_wspace >=
/// sk_stream_min_wspace`). On loopback with SO_SNDBUF 40000 (`sk_sndbuf` 80 000): a
/// 100 000-byte write fills skbs of 32741 bytes (the size goal, bounded by half the SYN-ACK's
/// 65483 window, `tcp_bound_to_half_wnd`) while the queue is below 80 000: 3 of them, each
/// charged 32741 + 896 (2 · 33637 = 67274 < 80 000 ≤ 3 · 33637), so it returns 98223. The
/// peer's ACK of the first frees it once the call returns: 67274 queued, 12726 free, less
/// than half of 67274, so no POLLOUT; yet a one-byte send gets a new skb, as 67274 < 80 000,
/// and POLLOUT stays off. A capture of this script on Linux 6.18 answered the same four
/// (98223, no POLLOUT, 1, no POLLOUT).
#[test]
fn loopback_one_byte_send_succeeds_without_pollout() {
    let poll = step("poll", "c", "events = [\"POLLOUT\"]");
    let steps = step("setsockopt", "c", "opt = \"SO_SNDBUF\"\nvalue = 40000")
        + &step("send", "c", "len = 100000\nflags = [\"MSG_DONTWAIT\"]")
        + &poll
        + &step("send", "c", "data = \"x\"\nflags = [\"MSG_DONTWAIT\"]")
        + &poll;
    let r = run_text(&loopback("127.0.0.1", "", &steps));
    let sends = r.calls("send", "c");
    ok(sends[0], 3 * 32741);
    ok(sends[1], 1);
    for p in r.calls("poll", "c") {
        ok(p, 0);
    }
}
