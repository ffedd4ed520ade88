//! The data path held to the kernel's segments (issue 10): scripted two-host scenarios whose
//! wire is asserted segment by segment, each against the kernel function that decides it.
//! Sequence numbers are relative to each side's ISN, as tcpdump prints them.

mod models_support;
mod scenario_text;
use models_support::*;
use scenario_text::client_server;
use serde_json::Value;
use tcpsim::scenario::parse;

/// One segment as tcpdump shows it: time (ns), flags, relative seq, relative ack, length.
#[derive(Debug, Clone, PartialEq)]
struct Wire {
    t: u64,
    flags: String,
    seq: u32,
    ack: u32,
    len: u32,
    sack: Vec<(u32, u32)>,
}

fn run_text(text: &str) -> Run {
    let sc = parse(text, "fidelity.toml").unwrap_or_else(|e| panic!("{e}"));
    run_scenario(sc)
}

/// The ISN of `host` (its SYN or SYN-ACK's seq).
fn isn(r: &Run, host: &str) -> u32 {
    let syn = r.events("seg_sent", |v| v["host"] == host && v["flags"].as_str().is_some_and(|f| f.starts_with('S')));
    syn[0]["seq"].as_u64().unwrap() as u32
}

fn field(v: &Value, k: &str) -> u32 {
    v[k].as_u64().unwrap_or(0) as u32
}

/// Every segment `host` sent, with seq relative to its ISN and ack to the peer's.
fn wire(r: &Run, host: &str, peer: &str) -> Vec<Wire> {
    let (mine, theirs) = (isn(r, host), isn(r, peer));
    r.events("seg_sent", |v| v["host"] == host)
        .into_iter()
        .map(|v| Wire {
            t: t(v),
            flags: v["flags"].as_str().unwrap().to_string(),
            seq: field(v, "seq").wrapping_sub(mine),
            ack: if v["flags"].as_str().unwrap().contains('.') { field(v, "ack").wrapping_sub(theirs) } else { 0 },
            len: field(v, "len"),
            sack: v["options"]["sack"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|b| ((b[0].as_u64().unwrap() as u32).wrapping_sub(theirs), (b[1].as_u64().unwrap() as u32).wrapping_sub(theirs)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Script steps: accept, then a filter that drops everything the server sends (its ACKs
/// never reach the client), then `more`.
fn acks_lost(more: &str) -> String {
    format!(
        r#"[[script]]
op = "accept"
sock = "l"
new = "s"
[[script]]
op = "fault"
kind = "filter"
link = "wire"
drop = "all"
direction = "b_to_a"
{more}"#
    )
}

fn send(sock: &str, len: u32) -> String {
    format!("[[script]]\nop = \"send\"\nsock = \"{sock}\"\nlen = {len}\n")
}

const NODELAY: &str = "[[script]]\nop = \"setsockopt\"\nsock = \"c\"\nopt = \"TCP_NODELAY\"\nvalue = 1\n";

/// tcp_output.c `tcp_schedule_loss_probe`: with more than one packet out the probe timeout
/// is 2·srtt + `TCP_TIMEOUT_MIN` (2 ms), and `packets_out` counts skbs: eight 100-byte
/// segments sent with Nagle off are eight packets. `tcp_send_loss_probe` then re-sends the
/// last skb (`skb_rb_last`), 100 bytes at 701. On a 1 ms link srtt is 2 ms: the probe leaves
/// 6 ms after the last write. (Kernel, 6.18: `P. 701:801` 11.4 ms after the last write on a
/// 2.5 ms-RTT veth; the model used to wait 2·srtt + 200 ms and re-send 1:801.)
#[test]
fn loss_probe_counts_skbs_and_resends_the_last_one() {
    let steps = format!("{NODELAY}{}{}[[script]]\nop = \"sleep\"\ndur = \"100ms\"\n", acks_lost(""), send("c", 100).repeat(8));
    let r = run_text(&client_server("tlp-skbs", "1s", false, &steps));
    let data: Vec<Wire> = wire(&r, "client", "server").into_iter().filter(|w| w.len > 0).collect();
    assert!(data.len() >= 9, "{data:#?}");
    for (i, w) in data[..8].iter().enumerate() {
        assert_eq!((w.seq, w.len, w.flags.as_str()), (1 + 100 * i as u32, 100, "P."), "{w:?}");
    }
    let probe = &data[8];
    assert_eq!((probe.seq, probe.len), (701, 100), "{probe:?}");
    assert_eq!(probe.t - data[7].t, 6 * MS, "2·srtt + TCP_TIMEOUT_MIN");
}

/// An orphan with data and FIN unacknowledged: the FIN went out on its own skb after the data
/// (`tcp_send_fin` could not append it to a sent skb), so two packets are out and the probe
/// is the bare FIN (kernel: `F. 101` 7.1 ms later; model before: `FP. 1:101` at +202 ms).
#[test]
fn loss_probe_of_an_orphan_resends_the_bare_fin() {
    let steps = format!(
        "{NODELAY}{}{}[[script]]\nop = \"sleep\"\ndur = \"1ms\"\n[[script]]\nop = \"close\"\nsock = \"c\"\n[[script]]\nop = \"sleep\"\ndur = \"100ms\"\n",
        acks_lost(""),
        send("c", 100)
    );
    let r = run_text(&client_server("tlp-fin", "1s", false, &steps));
    let w = wire(&r, "client", "server");
    let fins: Vec<&Wire> = w.iter().filter(|s| s.flags.contains('F')).collect();
    assert_eq!((fins[0].flags.as_str(), fins[0].seq, fins[0].len), ("F.", 101, 0));
    assert_eq!((fins[1].flags.as_str(), fins[1].seq, fins[1].len), ("F.", 101, 0), "the probe is the FIN alone");
    assert_eq!(fins[1].t - fins[0].t, 6 * MS);
}

/// tcp_input.c `tcp_data_queue` → `tcp_dsack_set`: data wholly below `rcv_nxt` (the loss
/// probe of a segment that had arrived) is ACKed at once with a D-SACK block for it (RFC
/// 2883), reported once. Kernel: `ack 801 sack 701:801` (the issue's capture: `ack 4801 sack
/// 4701:4801`); model before: `ack 801` without the block.
#[test]
fn duplicate_data_is_acked_with_a_dsack_block() {
    let steps = format!("{NODELAY}{}{}[[script]]\nop = \"sleep\"\ndur = \"100ms\"\n", acks_lost(""), send("c", 100).repeat(8));
    let r = run_text(&client_server("dsack", "1s", false, &steps));
    let probe_t = wire(&r, "client", "server").iter().filter(|w| w.len > 0).nth(8).expect("the probe").t;
    let acks: Vec<Wire> = wire(&r, "server", "client").into_iter().filter(|w| w.t > probe_t).collect();
    assert_eq!((acks[0].ack, acks[0].len), (801, 0), "{acks:?}");
    assert_eq!(acks[0].sack, vec![(701, 801)]);
    // Reported once: the next ACK answers the RTO's retransmission (the eight skbs collapsed
    // into one, `tcp_retrans_try_collapse`) with that retransmission's own D-SACK.
    assert_eq!(acks[1].sack, vec![(1, 801)], "{acks:?}");
}
