//! TCP Fast Open's client through a scenario's `sendto` step (`flags = ["MSG_FASTOPEN"]`): the
//! model's calls and SYNs, each expectation derived from the kernel function named beside it,
//! and the same scenarios on the real kernel (root and `ip netns` needed; skipped with the
//! reason otherwise, failed instead when `TCPSIM_REQUIRE_CAPTURE=1`).

mod capture_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use tcpsim::errno::Errno;
use tcpsim::pcap::read::read_pcap;
use tcpsim::pcap::PcapWriter;
use tcpsim::scenario::types::{Observation, Scenario};
use tcpsim::tcp::fastopen::FoCookie;
use tcpsim::tcp::segment::Flags;
use tcpsim::trace::Trace;
use tcpsim::world::World;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Two hosts on a veth pair; `server` listens on 9000 (no Fast Open server: `tcp_fastopen` is 1
/// there). `client`'s `tcp_fastopen` is `{client_tfo}`. Socket `c` (blocking) sends 100 bytes
/// with sendto(MSG_FASTOPEN); the server reads them; then socket `d` (non-blocking) does the
/// same.
fn scenario(client_tfo: u32) -> Scenario {
    let text = format!(
        r#"
name = "fastopen-sendto"
duration = "2s"

[[host]]
name = "client"
addr = "10.0.0.1"
sysctl = {{ tcp_fastopen = {client_tfo} }}

[[host]]
name = "server"
addr = "10.0.0.2"

[[link]]
name = "wire"
a = "client"
b = "server"

[[script]]
op = "socket"
host = "server"
sock = "l"

[[script]]
op = "bind"
sock = "l"
port = 9000

[[script]]
op = "listen"
sock = "l"
backlog = 4

[[script]]
op = "socket"
host = "client"
sock = "c"

[[script]]
op = "sendto"
sock = "c"
to = "server:9000"
len = 100
flags = ["MSG_FASTOPEN"]

[[script]]
op = "accept"
sock = "l"
new = "s"

[[script]]
op = "recv"
sock = "s"
len = 1000

[[script]]
op = "socket"
host = "client"
sock = "d"
nonblocking = true

[[script]]
op = "sendto"
sock = "d"
to = "server:9000"
len = 100
flags = ["MSG_FASTOPEN"]

[[script]]
op = "sleep"
dur = "100ms"
"#
    );
    tcpsim::scenario::load::parse(&text, "fastopen-sendto.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// What the client sent on one connection: the SYN's payload length and FO option, then the
/// next segment's flags and payload length.
#[derive(Debug, PartialEq, Eq)]
struct Opening {
    syn_len: usize,
    syn_fastopen: Option<FoCookie>,
    next: Option<(bool, usize)>,
}

/// The openings of the client's connections, in the order of their SYNs (one per source port;
/// a retransmitted SYN is the same opening).
fn openings(pcap: &Path) -> Vec<Opening> {
    let cap = read_pcap(pcap).unwrap_or_else(|e| panic!("{e}"));
    let mut by_port: BTreeMap<u16, (u64, Vec<&tcpsim::tcp::segment::Segment>)> = BTreeMap::new();
    for p in &cap.packets {
        if p.seg.src.ip() == CLIENT {
            by_port.entry(p.seg.src.port()).or_insert((p.t_ns, Vec::new())).1.push(&p.seg);
        }
    }
    let mut conns: Vec<_> = by_port.into_values().collect();
    conns.sort_by_key(|(t, _)| *t);
    conns
        .into_iter()
        .map(|(_, segs)| {
            let syn = segs[0];
            assert!(syn.flags.contains(Flags::SYN), "the client's first segment is its SYN: {syn:?}");
            let next = segs.iter().find(|s| !s.flags.contains(Flags::SYN));
            Opening {
                syn_len: syn.payload.len() as usize,
                syn_fastopen: syn.options.fastopen,
                next: next.map(|s| (s.flags.contains(Flags::PSH), s.payload.len() as usize)),
            }
        })
        .collect()
}

/// The model's run: observations, and its pcap written to `dir`.
fn model(sc: &Scenario, dir: &Path) -> (Vec<Observation>, std::path::PathBuf) {
    let pcap = dir.join("model.pcap");
    let mut world = World::build(sc, sc.seed, Trace::off()).unwrap_or_else(|e| panic!("{e}"));
    world.set_pcap(PcapWriter::new(std::fs::File::create(&pcap).unwrap()).unwrap());
    let obs = world.run(sc);
    world.finish().unwrap();
    (obs, pcap)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tcpsim-fastopen-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ret_errno(obs: &[Observation], step: usize) -> (Option<i64>, Option<Errno>) {
    (obs[step].ret, obs[step].errno)
}

/// The steps of the two sendto calls.
const SENDTO_C: usize = 4;
const SENDTO_D: usize = 8;

#[test]
fn a_sendto_with_msg_fastopen_asks_for_a_cookie_then_a_blocking_writer_waits_for_the_handshake() {
    let sc = scenario(1);
    let (obs, pcap) = model(&sc, &temp_dir("request"));
    // tcp_sendmsg_fastopen → __inet_stream_connect: a blocking writer sleeps in
    // inet_wait_for_connect, then tcp_sendmsg_locked copies the whole write.
    assert_eq!(ret_errno(&obs, SENDTO_C), (Some(100), None));
    assert_eq!(obs[SENDTO_C + 2].ret, Some(100), "the server reads the 100 bytes");
    // Non-blocking: the SYN took nothing (no cookie): EINPROGRESS.
    assert_eq!(ret_errno(&obs, SENDTO_D), (Some(-1), Some(Errno::EINPROGRESS)));
    let o = openings(&pcap);
    assert_eq!(o.len(), 2, "{o:?}");
    // No cookie cached: tcp_send_syn_data falls back to a SYN asking for one (an empty FO
    // option). The writer counts in sk_write_pending (the request still holds its data), so
    // tcp_rcv_synsent_state_process saves the ACK of the SYN-ACK: the data carries it.
    assert_eq!(o[0], Opening { syn_len: 0, syn_fastopen: Some(FoCookie::REQUEST), next: Some((true, 100)) });
    // The SYN-ACK brought no cookie: tcp_rcv_fastopen_synack caches try_exp 1, and
    // tcp_fastopen_cache_get makes the next request the experimental option.
    assert_eq!(o[1].syn_len, 0);
    assert_eq!(o[1].syn_fastopen, Some(FoCookie::REQUEST.with_exp(true)));
}

#[test]
fn with_tfo_client_no_cookie_the_syn_carries_the_data_and_a_plain_listener_gets_it_again() {
    let sc = scenario(5);
    let (obs, pcap) = model(&sc, &temp_dir("no-cookie"));
    // The SYN took all 100 bytes; the blocking writer still waits for the handshake.
    assert_eq!(ret_errno(&obs, SENDTO_C), (Some(100), None));
    assert_eq!(obs[SENDTO_C + 2].ret, Some(100));
    // Non-blocking: tcp_sendmsg_locked returns the SYN's bytes (EINPROGRESS with copied_syn > 0).
    assert_eq!(ret_errno(&obs, SENDTO_D), (Some(100), None));
    let o = openings(&pcap);
    // TFO_CLIENT_NO_COOKIE: tcp_fastopen_cookie_check passes with cookie length -1, so the SYN
    // carries min(100, MSS 1460 − MAX_TCP_OPTION_SPACE 40) bytes and no FO option. A listener
    // without TFO_SERVER_ENABLE acknowledges only the SYN; tcp_rcv_fastopen_synack sends the
    // data again at once (tcp_non_congestion_loss_retransmit), which carries the ACK.
    let want = Opening { syn_len: 100, syn_fastopen: None, next: Some((true, 100)) };
    assert_eq!(o, vec![want, Opening { syn_len: 100, syn_fastopen: None, next: Some((true, 100)) }]);
}

/// The same scenario on the real kernel: the same call results and the same openings.
fn live_matches_the_model(test: &str, client_tfo: u32) {
    if !capture_support::live_or_skip(test) {
        return;
    }
    let sc = scenario(client_tfo);
    let dir = temp_dir(test);
    let (model_obs, model_pcap) = model(&sc, &dir);
    let report = tcpsim::capture::capture(&sc, &dir.join("live")).unwrap_or_else(|e| panic!("{e}"));
    let calls = |obs: &[Observation]| obs.iter().map(|o| (o.op.clone(), o.ret, o.errno)).collect::<Vec<_>>();
    assert_eq!(calls(&report.observations), calls(&model_obs), "kernel {}", report.kernel);
    assert_eq!(openings(&dir.join("live/capture.pcap")), openings(&model_pcap), "kernel {}", report.kernel);
}

#[cfg(target_os = "linux")]
#[test]
fn live_a_cookie_request_matches_the_model() {
    live_matches_the_model("live_a_cookie_request_matches_the_model", 1);
}

#[cfg(target_os = "linux")]
#[test]
fn live_syn_data_without_a_cookie_matches_the_model() {
    live_matches_the_model("live_syn_data_without_a_cookie_matches_the_model", 5);
}
