//! The million-connection question at 10 000 (`scenario::generate::idle_keepalive`, the
//! generator of `models/scale/idle-1000000.toml`): every connection of a partitioned client
//! host dies at the time keepalive predicts for it, and no other connection dies.
//!
//! The prediction is derived from the generator's parameters (SO_KEEPALIVE with idle 600 s,
//! interval 75 s, 9 probes; links of 1 ms each way; clients started 100 µs apart per host;
//! the first tenth of the client hosts cut off at 1 h) and `tcp_keepalive_timer`
//! (tcp_timer.c): a probe leaves `idle` after the last segment received, each answered probe
//! restarts the idle time, and after `cnt` unanswered probes sent `intvl` apart the
//! connection is aborted with ETIMEDOUT, `idle + cnt·intvl` after the last receipt. The run
//! uses textbook timers (exact, 1 ms jiffies) so that the schedule is the algorithm's.

use tcpsim::errno::Errno;
use tcpsim::scenario::{generate, parse};
use tcpsim::trace::Trace;
use tcpsim::world::World;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

const CONNECTIONS: u64 = 10_000;
const IDLE: u64 = 600 * S;
const INTVL: u64 = 75 * S;
const CNT: u64 = 9;
const ONE_WAY: u64 = MS;
const START_INTERVAL: u64 = 100 * US;
const PARTITION_AT: u64 = 3600 * S;

/// When the client started `k`-th on its host dies, if its host is cut off at
/// [`PARTITION_AT`]: its connect() at `k`·interval, the SYN-ACK one RTT later (the first
/// receipt), then each probe `IDLE` after the last receipt, answered one RTT later while the
/// round trip ends before the partition.
fn predicted_death(k: u64) -> u64 {
    let rtt = 2 * ONE_WAY;
    let mut last_rx = k * START_INTERVAL + rtt;
    while last_rx + IDLE + rtt < PARTITION_AT {
        last_rx += IDLE + rtt;
    }
    last_rx + IDLE + CNT * INTVL
}

#[test]
fn partitioned_connections_die_at_their_predicted_time_and_no_other_dies() {
    let mut sc = parse(&generate::idle_keepalive(CONNECTIONS), "idle-10000.toml").unwrap_or_else(|e| panic!("{e}"));
    for h in &mut sc.hosts {
        h.sysctl.insert("hz".into(), 1000.into());
        h.sysctl.insert("timers".into(), "exact".into());
    }
    let mut world = World::build(&sc, sc.seed, Trace::off()).unwrap_or_else(|e| panic!("{e}"));
    world.run(&sc);
    let report = world.report(&sc);
    assert!(report.ok(), "{:?} {:?}", report.illegal_transitions, report.rule_violations);

    // Ten client hosts of 1 000 connections (at least ten hosts, a tenth of them cut off).
    let clients: Vec<_> = report.sockets.iter().filter(|s| s.role == "client").collect();
    assert_eq!(clients.len() as u64, CONNECTIONS);
    let cut_off = ["c0"];
    let mut died = 0;
    let mut per_host: std::collections::BTreeMap<&str, u64> = Default::default();
    for s in &clients {
        let k = per_host.entry(&*s.host).or_default();
        if cut_off.contains(&&*s.host) {
            let death = predicted_death(*k);
            assert_eq!(s.errors, [Errno::ETIMEDOUT], "{} client {k}", s.host);
            assert_eq!(s.first_error_ns, Some(death), "{} client {k}: dies at its last receipt + idle + cnt·intvl", s.host);
            died += 1;
        } else {
            assert!(s.errors.is_empty() && s.state == "ESTABLISHED", "{} client {k}: {} {:?}", s.host, s.state, s.errors);
        }
        *k += 1;
    }
    assert_eq!(died, CONNECTIONS / 10);
    // The server's side never notices: it has no keepalive, and nothing reaches it.
    let accepted: Vec<_> = report.sockets.iter().filter(|s| s.role == "accepted").collect();
    assert_eq!(accepted.len() as u64, CONNECTIONS);
    assert!(accepted.iter().all(|s| s.errors.is_empty() && s.state == "ESTABLISHED"));
}
