//! Timers on jiffies (`sim/tcp/jiffies.rs`): on Linux 6.18 at HZ = 250 a TCP timer armed for
//! `jiffies + n` runs at the tick of its timer-wheel bucket (kernel/time/timer.c
//! `calc_wheel_index`: `n + 1` jiffies past the current one on level 0); the model's ticks fall
//! on multiples of 4 ms of simulated time. `timers = "exact"` keeps the textbook times.

mod models_support;
mod scenario_text;
use models_support::*;
use scenario_text::{acks_lost, listen_and_connect, two_hosts_with_client};
use tcpsim::scenario::parse;

/// One jiffy at HZ = 250.
const JIFFY: u64 = 4 * MS;

/// The first tick after `t` plus `n` more: where a level-0 timer for `jiffies + n` armed at
/// `t` runs (`calc_index`: `(expires >> 0) + 1`).
fn bucket_tick(t: u64, n: u64) -> u64 {
    (t / JIFFY + n + 1) * JIFFY
}

fn run(client_lines: &str, steps: &str) -> Run {
    let text = format!("{}{}{steps}", two_hosts_with_client("jiffies", "2s", "1ms", client_lines), listen_and_connect("server", "client", "server:80", false));
    run_scenario(parse(&text, "jiffies.toml").unwrap_or_else(|e| panic!("{e}")))
}

/// Times of the segments `host` sent whose flags satisfy `pick`.
fn sent(r: &Run, host: &str, pick: impl Fn(&str, u64) -> bool) -> Vec<u64> {
    r.events("seg_sent", |v| v["host"] == host && pick(v["flags"].as_str().unwrap(), v["len"].as_u64().unwrap_or(0)))
        .iter()
        .map(|v| t(v))
        .collect()
}

/// The server accepts, its ACKs are dropped, the client writes 100 bytes once and waits.
fn unacked_write() -> String {
    acks_lost("[[script]]\nop = \"send\"\nsock = \"c\"\nlen = 100\n[[script]]\nop = \"sleep\"\ndur = \"1s\"\n")
}

/// tcp_output.c `tcp_schedule_loss_probe` with one packet out: `usecs_to_jiffies(2·srtt +
/// tcp_rto_min_us)` = ⌈204 ms / 4 ms⌉ = 51 jiffies, no later than the RTO (`__tcp_set_rto`: srtt 2 ms + rttvar
/// 200 ms, `usecs_to_jiffies` → 51 jiffies); the probe runs at bucket `jiffies + 52`. The RTO
/// re-armed by the probe is 51 jiffies from its tick: 52 ticks, 208 ms, later. (Kernel: RTO
/// bases of 207–212 ms in `traces/seeds/listen-backlog-overflow-reset`; the model used to say
/// 202 and 201 ms.)
#[test]
fn loss_probe_and_rto_run_on_the_tick_of_their_bucket() {
    let r = run("", &unacked_write());
    let data = sent(&r, "client", |_, len| len > 0);
    assert!(data.len() >= 3, "{data:?}");
    assert_eq!(data[1], bucket_tick(data[0], 51), "TLP: 51 jiffies, on the tick of bucket jiffies + 52");
    assert_eq!(data[2] - data[1], 52 * JIFFY, "RTO: 51 jiffies from a tick");
}

/// The same with `timers = "exact"` and `hz = 1000`: the textbook 2·srtt + 200 ms and RTO
/// 202 ms, to the nanosecond of rounding to 1 ms jiffies.
#[test]
fn exact_timers_keep_the_textbook_times() {
    let r = run("sysctl = { timers = \"exact\", hz = 1000 }\n", &unacked_write());
    let data = sent(&r, "client", |_, len| len > 0);
    assert_eq!(data[1] - data[0], 202 * MS, "TLP: 2·srtt (4 ms) + TCP_RTO_MIN, capped at the RTO (202 ms)");
    assert_eq!(data[2] - data[1], 202 * MS, "RTO");
}

/// tcp_input.c `tcp_fin` enters pingpong mode and `tcp_send_delayed_ack` arms the timer for
/// `jiffies + ato` with `ato` = 0 (no data received): the ACK of the FIN leaves on the next
/// tick (kernel, `traces/readiness/peer-fin`: 5.7 ms after the FIN, on a 4 ms tick).
#[test]
fn the_ack_of_a_bare_fin_waits_for_the_next_tick() {
    let steps = r#"[[script]]
op = "accept"
sock = "l"
new = "s"
[[script]]
op = "sleep"
dur = "101ms"
[[script]]
op = "shutdown"
sock = "s"
how = "SHUT_WR"
[[script]]
op = "sleep"
dur = "100ms"
"#;
    let r = run("", steps);
    let fin = sent(&r, "server", |f, _| f.contains('F'))[0];
    let arrives = fin + MS;
    let acks = sent(&r, "client", |f, _| f == ".");
    let ack = *acks.iter().find(|&&a| a > fin).expect("the ACK of the FIN");
    assert_ne!(arrives % JIFFY, 0, "the FIN arrives between ticks");
    assert_eq!(ack, bucket_tick(arrives, 0), "delayed ACK for jiffies + 0: the next tick");

    let exact = run("sysctl = { timers = \"exact\" }\n", steps);
    let fin = sent(&exact, "server", |f, _| f.contains('F'))[0];
    let ack = *sent(&exact, "client", |f, _| f == ".").iter().find(|&&a| a > fin).unwrap();
    assert_eq!(ack, fin + MS, "exact: at once");
}
