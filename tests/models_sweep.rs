//! The two seed questions that need sweeps: an application heartbeat against TCP's own ways
//! of noticing a vanished peer, and messages that survive reconnects. Expected figures come
//! from the heartbeat's N and K, the link's round trip and the kernel profile's keepalive
//! settings, never from a run.

mod models_support;
mod sweep_support;
use std::path::Path;
use models_support::wheel_slack;
use sweep_support::*;
use tcpsim::scenario::{host_profile, load, Scenario};
use tcpsim::sweep::{run_seeds, Member, Seeds};

/// The round trip of the heartbeat scenario's link (10 ms each way) and a little slack for
/// the retransmission timer's granularity.
const RTT_SLACK: f64 = 0.05;

fn model(name: &str) -> Scenario {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// A heartbeat every N s, dead after K unanswered: the first unanswered heartbeat leaves at
/// most N after the failure, and the peer is declared dead K heartbeats later, so detection
/// falls in [K·N, (K+1)·N] after the failure, whatever the failure.
#[test]
fn heartbeat_detects_a_vanished_peer_in_about_n_times_k() {
    for f in [Failure::Partition, Failure::Freeze, Failure::Crash] {
        for (n, k) in [(1u64, 3u32), (5, 3), (10, 5)] {
            let c = run_cell(f, Detector::Heartbeat { n, k });
            assert_eq!(c.detected.len(), c.runs, "{f:?} N={n} K={k}: every seed detects it");
            let (lo, hi) = ((u64::from(k) * n) as f64, (u64::from(k + 1) * n) as f64 + RTT_SLACK);
            for d in &c.detected {
                assert!((lo - RTT_SLACK..=hi).contains(d), "{f:?} N={n} K={k}: detected after {d} s, not in [{lo}, {hi}]");
            }
        }
    }
}

/// TCP alone: default keepalive reports ETIMEDOUT only after tcp_keepalive_time plus
/// tcp_keepalive_probes × tcp_keepalive_intvl of silence (counted from the handshake, the
/// last traffic of an idle connection); tuned keepalive after at most keepidle + cnt ×
/// intvl; TCP_USER_TIMEOUT after its value (at the next retransmission timer past it).
#[test]
fn tcp_alone_notices_much_later_or_with_tuning() {
    let sc = cell_scenario(Failure::Partition, Detector::DefaultKeepalive);
    let p = host_profile(&sc.hosts[0]).unwrap();
    let silence = (p.tcp_keepalive_time_s + u64::from(p.tcp_keepalive_probes) * p.tcp_keepalive_intvl_s) as f64;
    // Each timer fires on Linux's timer wheel, up to its bucket's width late.
    let hz = u64::from(p.hz);
    let late = wheel_slack(p.tcp_keepalive_time_s * models_support::S, hz) + u64::from(p.tcp_keepalive_probes) * wheel_slack(p.tcp_keepalive_intvl_s * models_support::S, hz);
    let latest = silence + 1.0 + late as f64 / 1e9;
    let members = run_seeds(&sc, CELL_SEEDS, 1, &|| {}).unwrap();
    for m in &members {
        let at = m.outcomes["detected_at_s"];
        assert!((silence..latest).contains(&at), "seed {}: default keepalive noticed at {at} s, expected {silence}..{latest} s after the handshake", m.seed);
    }
    for d in run_cell(Failure::Partition, Detector::TunedKeepalive).detected {
        // The probe after the failure comes within keepidle (10 s); then 3 probes 5 s apart.
        assert!((15.0..=25.0 + RTT_SLACK).contains(&d), "tuned keepalive: {d} s");
    }
    for d in run_cell(Failure::Partition, Detector::UserTimeout { ms: 10_000 }).detected {
        assert!((10.0..=12.0).contains(&d), "TCP_USER_TIMEOUT 10 s: {d} s");
    }
}

/// A NAT forgets only idle flows: a heartbeat (or tuned keepalive, or heartbeat bytes) keeps
/// the entry alive, so nothing fails; default keepalive's first probe, after 2 h, is dropped.
#[test]
fn traffic_keeps_a_nat_entry_alive_and_default_keepalive_does_not() {
    for d in [Detector::Heartbeat { n: 1, k: 3 }, Detector::TunedKeepalive, Detector::UserTimeout { ms: 10_000 }] {
        let c = run_cell(Failure::Nat, d);
        assert!(c.detected.is_empty(), "{d:?}: the NAT entry must stay alive, but {} seeds saw a failure", c.detected.len());
    }
    let c = run_cell(Failure::Nat, Detector::DefaultKeepalive);
    assert_eq!(c.detected.len(), c.runs, "default keepalive runs into the forgotten entry on every seed");
}

fn sweep(name: &str, n: u64) -> Vec<Member> {
    run_seeds(&model(name), Seeds { from: 0, to: n }, 2, &|| {}).unwrap()
}

/// 1 000 seeds of random partitions, a receiver crash and NAT timeouts: the resume protocol
/// delivers every message exactly once and in order on each (the sink's invariant, checked
/// on every run), while the naive protocol loses messages on some seeds.
#[test]
fn resume_after_reconnect_is_exactly_once_across_1000_seeds_and_naive_loses() {
    let resume = sweep("resume-after-reconnect.toml", 1000);
    for m in &resume {
        assert!(m.breaches.is_empty(), "seed {}: {:?}", m.seed, m.breaches);
        assert_eq!(m.outcomes["messages_lost"], 0.0, "seed {}", m.seed);
        assert_eq!(m.outcomes["sequence_breaks"], 0.0, "seed {}", m.seed);
    }
    let reconnected = resume.iter().filter(|m| m.outcomes["connections"] > 1.0).count();
    assert!(reconnected > 500, "the drawn failures must force reconnects on most seeds, got {reconnected}");
    let naive = sweep("naive-after-reconnect.toml", 1000);
    let lossy: Vec<&Member> = naive.iter().filter(|m| m.outcomes["messages_lost"] > 0.0).collect();
    assert!(!lossy.is_empty() && lossy.len() < 1000, "naive loses on some seeds, not all: {}", lossy.len());
    assert!(naive.iter().all(|m| m.breaches.is_empty()), "naive promises nothing: its losses are outcomes, not violations");
}

/// Both message scenarios draw the same failures per seed (same ranges, same stream), so the
/// naive protocol's losses are seen under the exact conditions the resume protocol survived.
#[test]
fn resume_and_naive_draw_the_same_failures() {
    let (a, b) = (model("resume-after-reconnect.toml"), model("naive-after-reconnect.toml"));
    for seed in 0..50 {
        let (ra, rb) = (tcpsim::scenario::draw::resolve(&a, seed), tcpsim::scenario::draw::resolve(&b, seed));
        let times = |s: &Scenario| s.faults.iter().map(|f| (f.kind, f.at.map(|x| x.lo()))).collect::<Vec<_>>();
        assert_eq!(times(&ra), times(&rb), "seed {seed}");
    }
}

/// 1 000 seeds of the heartbeat scenario: every partition time drawn, every detection in
/// [K·N, (K+1)·N].
#[test]
fn heartbeat_sweep_of_1000_seeds_holds() {
    for m in sweep("heartbeat-vanished-peer.toml", 1000) {
        assert!(m.breaches.is_empty(), "seed {}: {:?}", m.seed, m.breaches);
        let d = m.outcomes["detection_s"];
        assert!((3.0 - RTT_SLACK..=4.0 + RTT_SLACK).contains(&d), "seed {}: {d} s", m.seed);
    }
}
