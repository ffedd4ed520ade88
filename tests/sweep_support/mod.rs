//! The heartbeat question's grid: kinds of failure × ways of noticing it, each cell a small
//! sweep of `models/heartbeat-vanished-peer.toml` with the failure and the detector swapped
//! in. Used by `tests/models_sweep.rs` (which holds the figures to the kernel's settings) and
//! by `tests/models_docs.rs` (which tabulates them in `docs/questions.md`).
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::Path;
use tcpsim::scenario::{load, AppSpec, FaultKind, FaultSpec, MiddleboxSpec, OnExpired, OptValue, Scenario, SockOpt};
use tcpsim::sweep::{run_seeds, Seeds};

pub const S: f64 = 1.0;

/// Seeds per cell: enough to show the spread a random failure time gives.
pub const CELL_SEEDS: Seeds = Seeds { from: 0, to: 20 };
/// How long the NAT keeps an idle flow (the `nat` row).
pub const NAT_IDLE_S: u64 = 120;
/// How long each run lasts: past default keepalive's 2 h + 9 × 75 s.
pub const DURATION_S: u64 = 9_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    Partition,
    Freeze,
    Crash,
    Nat,
}

pub const FAILURES: [Failure; 4] = [Failure::Partition, Failure::Freeze, Failure::Crash, Failure::Nat];

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Partition => "partition (path cut)",
            Failure::Freeze => "freeze (peer hibernates)",
            Failure::Crash => "crash (peer powered off)",
            Failure::Nat => "NAT forgets the idle flow",
        }
    }
}

/// A way of noticing the peer is gone.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detector {
    /// Application heartbeat every `n` s, dead after `k` unanswered.
    Heartbeat { n: u64, k: u32 },
    /// An idle connection with SO_KEEPALIVE and the kernel defaults (2 h, 75 s, 9).
    DefaultKeepalive,
    /// An idle connection with TCP_KEEPIDLE 10, TCP_KEEPINTVL 5, TCP_KEEPCNT 3.
    TunedKeepalive,
    /// Heartbeat bytes every second but no application check: TCP_USER_TIMEOUT of `ms`.
    UserTimeout { ms: u64 },
}

pub const DETECTORS: [Detector; 6] = [
    Detector::Heartbeat { n: 1, k: 3 },
    Detector::Heartbeat { n: 5, k: 3 },
    Detector::Heartbeat { n: 10, k: 5 },
    Detector::DefaultKeepalive,
    Detector::TunedKeepalive,
    Detector::UserTimeout { ms: 10_000 },
];

impl Detector {
    pub fn name(self) -> String {
        match self {
            Detector::Heartbeat { n, k } => format!("heartbeat N={n} s, K={k}"),
            Detector::DefaultKeepalive => "default keepalive".into(),
            Detector::TunedKeepalive => "keepalive 10/5/3".into(),
            Detector::UserTimeout { ms } => format!("TCP_USER_TIMEOUT {} s", ms / 1000),
        }
    }
}

/// The scenario of one cell.
pub fn cell_scenario(failure: Failure, detector: Detector) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/heartbeat-vanished-peer.toml");
    let mut sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
    sc.duration.0 = tcpsim::time::Dur::from_secs(DURATION_S);
    let partition_at = sc.faults[0].at;
    sc.faults.clear();
    let on_host = |kind| FaultSpec {
        at: partition_at,
        kind,
        link: None,
        host: Some("server".into()),
        drop: None,
        direction: Default::default(),
        lasts: None,
        repeat: None,
    };
    match failure {
        Failure::Partition => sc.faults.push(FaultSpec { link: Some("net".into()), host: None, ..on_host(FaultKind::Partition) }),
        Failure::Freeze => sc.faults.push(on_host(FaultKind::Freeze)),
        Failure::Crash => sc.faults.push(on_host(FaultKind::Crash)),
        Failure::Nat => sc.middleboxes.push(MiddleboxSpec {
            name: "nat".into(),
            link: "net".into(),
            idle_timeout: tcpsim::scenario::DurSpec(tcpsim::time::Dur::from_secs(NAT_IDLE_S)),
            on_expired: OnExpired::Drop,
        }),
    }
    let AppSpec::Heartbeat(hb) = &mut sc.apps[1] else { panic!("app[1] is the heartbeat client") };
    let secs = |s: u64| Some(tcpsim::scenario::DurSpec(tcpsim::time::Dur::from_secs(s)));
    hb.sockopts.clear();
    match detector {
        Detector::Heartbeat { n, k } => {
            hb.interval = secs(n);
            hb.misses = k;
        }
        Detector::DefaultKeepalive | Detector::TunedKeepalive => {
            hb.interval = None;
            hb.misses = 0;
            hb.sockopts.insert(SockOpt::SO_KEEPALIVE, OptValue::Int(1));
            if detector == Detector::TunedKeepalive {
                hb.sockopts.insert(SockOpt::TCP_KEEPIDLE, OptValue::Int(10));
                hb.sockopts.insert(SockOpt::TCP_KEEPINTVL, OptValue::Int(5));
                hb.sockopts.insert(SockOpt::TCP_KEEPCNT, OptValue::Int(3));
            }
        }
        Detector::UserTimeout { ms } => {
            hb.interval = secs(1);
            hb.misses = 0;
            hb.sockopts.insert(SockOpt::TCP_USER_TIMEOUT, OptValue::Int(ms as i64));
        }
    }
    sc
}

/// One cell: detection times (seconds after the failure) of the seeds that detected it, and
/// how many seeds ran.
pub struct Cell {
    pub detected: Vec<f64>,
    pub runs: usize,
}

impl Cell {
    pub fn median(&self) -> Option<f64> {
        let mut v = self.detected.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len().saturating_sub(1) / 2).copied()
    }
}

/// Runs one cell. For the NAT row the failure is the NAT forgetting the flow: `NAT_IDLE_S`
/// after the connection last carried a segment (the handshake, for an idle connection).
pub fn run_cell(failure: Failure, detector: Detector) -> Cell {
    let sc = cell_scenario(failure, detector);
    let members = run_seeds(&sc, CELL_SEEDS, 1, &|| {}).unwrap_or_else(|e| panic!("{e}"));
    for m in &members {
        assert!(m.breaches.is_empty(), "{failure:?} {detector:?} seed {}: {:?}", m.seed, m.breaches);
    }
    let detected = members
        .iter()
        .filter_map(|m| match failure {
            Failure::Nat => m.outcomes.get("detected_at_s").map(|t| t - NAT_IDLE_S as f64),
            _ => m.outcomes.get("detection_s").copied(),
        })
        .collect();
    Cell { detected, runs: members.len() }
}

/// Every cell of the grid.
pub fn grid() -> BTreeMap<(Failure, Detector), Cell> {
    let mut out = BTreeMap::new();
    for f in FAILURES {
        for d in DETECTORS {
            out.insert((f, d), run_cell(f, d));
        }
    }
    out
}

/// A cell as the table shows it.
pub fn cell_text(c: &Cell) -> String {
    let Some(med) = c.median() else { return "not detected".into() };
    let lo = c.detected.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = c.detected.iter().copied().fold(0.0, f64::max);
    let missed = if c.detected.len() < c.runs { format!(", {} of {} not detected", c.runs - c.detected.len(), c.runs) } else { String::new() };
    if hi - lo < 0.5 {
        format!("{} s{missed}", fmt_s(med))
    } else {
        format!("{} s ({}–{}){missed}", fmt_s(med), fmt_s(lo), fmt_s(hi))
    }
}

fn fmt_s(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The markdown table of the grid.
pub fn table_md(g: &BTreeMap<(Failure, Detector), Cell>) -> String {
    let mut s = String::from("| failure |");
    for d in DETECTORS {
        s += &format!(" {} |", d.name());
    }
    s += "\n| --- |";
    for _ in DETECTORS {
        s += " --- |";
    }
    s += "\n";
    for f in FAILURES {
        s += &format!("| {} |", f.name());
        for d in DETECTORS {
            s += &format!(" {} |", cell_text(&g[&(f, d)]));
        }
        s += "\n";
    }
    s
}
