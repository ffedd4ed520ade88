//! Running a scenario of `models/` through the library, and reading its answer: the script's
//! observations, the run report, and the JSON Lines trace for the times of wire events.
//!
//! Expected figures in the tests are derived from the kernel profile of the scenario's hosts
//! (`rto_min`, `tcp_retries2`, keepalive settings, …) and the link delays, never copied
//! from a run.
#![allow(dead_code)] // each test crate uses a different subset

use serde_json::Value;
use std::path::Path;
use tcpsim::errno::Errno;
use tcpsim::scenario::{host_profile, load, Observation, Scenario};
use tcpsim::tcp::profile::KernelProfile;
use tcpsim::trace::Trace;
use tcpsim::world::{RunReport, ScriptSocketReport, World};

pub const US: u64 = 1_000;
pub const MS: u64 = 1_000_000;
pub const S: u64 = 1_000_000_000;

/// One finished run of a scenario.
pub struct Run {
    pub sc: Scenario,
    pub obs: Vec<Observation>,
    pub report: RunReport,
    /// Every trace record, in order.
    pub trace: Vec<Value>,
}

pub fn model(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `sc` with its own seed and a memory trace.
pub fn run_scenario(sc: Scenario) -> Run {
    let mut world = World::build(&sc, sc.seed, Trace::memory()).unwrap_or_else(|e| panic!("{e}"));
    let obs = world.run(&sc);
    let report = world.report(&sc);
    assert!(report.ok(), "{}: checks failed: {:?} {:?}", sc.name, report.illegal_transitions, report.rule_violations);
    let text = std::str::from_utf8(world.sim().trace().bytes()).expect("the trace is UTF-8");
    let trace = text.lines().map(|l| serde_json::from_str(l).expect("each trace line is JSON")).collect();
    Run { sc, obs, report, trace }
}

pub fn run_model(name: &str) -> Run {
    run_scenario(model(name))
}

/// `sc` on textbook timers: every host's timers fire exactly their timeout after they are
/// armed, in 1 ms jiffies (`hz = 1000`, `timers = "exact"`), as the kernel's algorithms state
/// them. The tests that hold a schedule to its algorithm (backoff doubling, the retries2
/// budget, keepalive's idle + cnt·intvl) run on it; where Linux's timer wheel puts those
/// timers is held by `tests/timers_jiffies.rs` and, against the real kernel, by
/// `models_kernel.rs` (with [`wheel_slack`]).
pub fn textbook(mut sc: Scenario) -> Scenario {
    for h in &mut sc.hosts {
        h.sysctl.insert("hz".into(), 1000.into());
        h.sysctl.insert("timers".into(), "exact".into());
    }
    sc
}

/// [`run_model`] on [`textbook`] timers.
pub fn run_textbook(name: &str) -> Run {
    run_scenario(textbook(model(name)))
}

/// The most a timer armed for `timeout_ns` fires after `timeout_ns` on a Linux host of `hz`:
/// the timeout is rounded up to whole jiffies (`usecs_to_jiffies`), and the timer wheel's
/// bucket rounds the expiry up to its level's granularity (kernel/time/timer.c
/// `calc_wheel_index`: level n ≥ 1 holds deltas from 63·8^(n−1) jiffies and is 8^n jiffies
/// wide; `calc_index` adds one bucket). Where in a bucket a timer lands depends on the
/// kernel's jiffies at the time, which a capture does not record.
pub fn wheel_slack(timeout_ns: u64, hz: u64) -> u64 {
    let jiffy = S / hz;
    let delta = timeout_ns.div_ceil(jiffy);
    let lvl = (1..9).take_while(|n| delta >= 63 << (3 * (n - 1))).count() as u32;
    ((1u64 << (3 * lvl)) + 1) * jiffy
}

/// The kernel profile of scenario host `name`.
pub fn profile(sc: &Scenario, name: &str) -> KernelProfile {
    let spec = sc.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name}"));
    host_profile(spec).unwrap_or_else(|e| panic!("{e}"))
}

/// The one-way delay of the scenario's (single) link, in ns.
pub fn one_way(sc: &Scenario) -> u64 {
    assert_eq!(sc.links.len(), 1, "these scenarios have one link");
    sc.links[0].delay.expect("the link has a delay").lo().as_nanos()
}

/// `rto_min` of a profile, in ns.
pub fn rto_min(p: &KernelProfile) -> u64 {
    p.tcp_rto_min_us * US
}

/// The RTO after the handshake's single RTT sample `rtt` (tcp_rtt_estimator's first sample:
/// srtt = rtt, mdev = rtt/2·4 = 2·rtt, rttvar = max(mdev, rto_min); rto = srtt + rttvar).
pub fn rto_after_handshake(p: &KernelProfile, rtt: u64) -> u64 {
    rtt + (2 * rtt).max(rto_min(p))
}

/// When the tail loss probe fires after a lone segment is sent: 2·srtt + rto_min, but never
/// later than the RTO (tcp_output.c `tcp_schedule_loss_probe`).
pub fn tlp_delay(p: &KernelProfile, rtt: u64) -> u64 {
    (2 * rtt + rto_min(p)).min(rto_after_handshake(p, rtt))
}

/// The retries2 time budget (tcp_timer.c `tcp_model_timeout` with rto_base = rto_min).
pub fn retries2_budget(p: &KernelProfile) -> u64 {
    let base = rto_min(p);
    let max = p.tcp_rto_max_ms * MS;
    let thresh = (max / base).ilog2();
    let n = p.tcp_retries2;
    if n <= thresh {
        ((1u64 << (n + 1)) - 1) * base
    } else {
        ((1u64 << (thresh + 1)) - 1) * base + u64::from(n - thresh) * max
    }
}

/// The RTO retransmissions of a lone segment sent at `sent` into a dead path, up to `until`
/// (no abort: a TCP_USER_TIMEOUT longer than that).
pub fn rto_firings_until(p: &KernelProfile, rtt: u64, sent: u64, until: u64) -> Vec<u64> {
    let mut rto = rto_after_handshake(p, rtt);
    let mut t = sent + tlp_delay(p, rtt) + rto;
    let mut out = Vec::new();
    while t <= until {
        out.push(t);
        rto = (2 * rto).min(p.tcp_rto_max_ms * MS);
        t += rto;
    }
    out
}

/// The times of the RTO retransmissions of a lone segment sent at `sent` into a dead path,
/// and the time the connection is aborted (first firing at or past the retries2 budget,
/// counted from the first RTO retransmission; tcp_write_timeout). The TLP comes first and
/// does not start the budget.
pub fn dead_path_schedule(p: &KernelProfile, rtt: u64, sent: u64) -> (Vec<u64>, u64) {
    let mut rto = rto_after_handshake(p, rtt);
    let max = p.tcp_rto_max_ms * MS;
    let mut t = sent + tlp_delay(p, rtt) + rto;
    let first = t;
    let budget = retries2_budget(p);
    let mut retrans = Vec::new();
    loop {
        if t - first >= budget && !retrans.is_empty() {
            return (retrans, t);
        }
        retrans.push(t);
        rto = (2 * rto).min(max);
        t += rto;
    }
}

impl Run {
    /// The observation of step `i`.
    pub fn step(&self, i: usize) -> &Observation {
        &self.obs[i]
    }

    /// Observations of `op` on `sock`, in order.
    pub fn calls(&self, op: &str, sock: &str) -> Vec<&Observation> {
        self.obs.iter().filter(|o| o.op == op && o.sock.as_deref() == Some(sock)).collect()
    }

    /// Observations of `op` (any socket), in order.
    pub fn ops(&self, op: &str) -> Vec<&Observation> {
        self.obs.iter().filter(|o| o.op == op).collect()
    }

    pub fn script_socket(&self, name: &str) -> &ScriptSocketReport {
        self.report.script_sockets.iter().find(|k| k.name == name).unwrap_or_else(|| panic!("no socket {name}"))
    }

    pub fn counter(&self, host: &str, name: &str) -> u64 {
        let h = self.report.hosts.iter().find(|h| h.name == host).unwrap_or_else(|| panic!("no host {host}"));
        h.counters.get(name).copied().unwrap_or(0)
    }

    /// Trace records of kind `ev` for which `f` holds.
    pub fn events(&self, ev: &str, f: impl Fn(&Value) -> bool) -> Vec<&Value> {
        self.trace.iter().filter(|v| v["ev"] == ev && f(v)).collect()
    }

    /// Segments `host` put on the wire, with `flags` exactly (tcpdump spelling: "S", "S.",
    /// ".", "P.", "F.", "R", "R.").
    pub fn sent(&self, host: &str, flags: &str) -> Vec<&Value> {
        self.events("seg_sent", |v| v["host"] == host && v["flags"] == flags)
    }

    /// Times of segments `host` sent with payload (data and retransmissions).
    pub fn data_times(&self, host: &str) -> Vec<u64> {
        self.events("seg_sent", |v| v["host"] == host && v["len"].as_u64().unwrap_or(0) > 0).iter().map(|v| t(v)).collect()
    }

    /// State transitions on `host` into `to`.
    pub fn transitions(&self, host: &str, to: &str) -> Vec<&Value> {
        self.events("state", |v| v["host"] == host && v["to"] == to)
    }
}

/// The time of a trace record.
pub fn t(v: &Value) -> u64 {
    v["t"].as_u64().expect("every record has a time")
}

/// An observation's events, as a `|`-joined string for comparison.
pub fn events(o: &Observation) -> String {
    o.events.as_ref().map(|e| e.join("|")).unwrap_or_default()
}

/// Asserts an observation returned `ret` (and no errno).
#[track_caller]
pub fn ok(o: &Observation, ret: i64) {
    assert_eq!((o.ret, o.errno), (Some(ret), None), "step {} {}: {o:?}", o.step, o.op);
}

/// Asserts an observation failed with `e`.
#[track_caller]
pub fn fails(o: &Observation, e: Errno) {
    assert_eq!((o.ret, o.errno), (Some(-1), Some(e)), "step {} {}: {o:?}", o.step, o.op);
}

/// The count an ioctl (FIONREAD, SIOCOUTQ, SIOCOUTQNSD) wrote. ioctl(2) itself returns 0 and
/// writes the count: the real-kernel log has it in `value`; the simulator's script log has
/// so far put it in `ret` (reported to the lead). Either is read here.
#[track_caller]
pub fn ioctl_count(o: &Observation) -> i64 {
    assert_eq!((o.op.as_str(), o.errno), ("ioctl", None), "step {}: {o:?}", o.step);
    o.value.as_ref().and_then(|v| v.as_i64()).or(o.ret).expect("a count")
}
