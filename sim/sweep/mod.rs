//! Many seeds of one scenario: every run held to the invariants, its key outcomes collected,
//! and a summary that does not depend on how the work was spread.
//!
//! Members are simulated in parallel (`rayon`, `--jobs`) but collected in seed order, and
//! the summary is computed from the ordered members only, so `--jobs 1` and `--jobs 8` print
//! the same bytes. A shard (`--shard K/N`) runs one contiguous block of the seeds and keeps
//! its members in its result; [`merge`] joins shards into exactly what one sweep prints.

pub mod cli;

use crate::scenario::{draw, Scenario};
use crate::trace::Trace;
use crate::world::invariants::Breach;
use crate::world::protocols::ProtocolReport;
use crate::world::{RunReport, World};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Seeds `from..to` (half-open).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    pub from: u64,
    pub to: u64,
}

impl Seeds {
    /// `A..B` (B excluded) or `A..=B`.
    pub fn parse(s: &str) -> Result<Seeds, String> {
        let bad = || format!("--seeds `{s}`: expected A..B or A..=B");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let from: u64 = a.trim().parse().map_err(|_| bad())?;
        let to = match b.strip_prefix('=') {
            Some(b) => b.trim().parse::<u64>().map_err(|_| bad())?.checked_add(1).ok_or_else(bad)?,
            None => b.trim().parse().map_err(|_| bad())?,
        };
        if to <= from {
            return Err(format!("--seeds `{s}` is empty"));
        }
        Ok(Seeds { from, to })
    }

    pub fn len(self) -> u64 {
        self.to - self.from
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Block `k` of `n` contiguous, near-equal blocks (0-based `k`).
    pub fn shard(self, k: u64, n: u64) -> Seeds {
        let len = self.len();
        let at = |i: u64| self.from + (u128::from(len) * u128::from(i) / u128::from(n)) as u64;
        Seeds { from: at(k), to: at(k + 1) }
    }
}

/// `K/N`, 0 <= K < N.
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard `{s}`: expected K/N with 0 <= K < N");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// One seed's run: what broke, and its key outcomes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaches: Vec<Breach>,
    pub outcomes: BTreeMap<String, f64>,
}

/// The distribution of one outcome over the runs that have it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub runs: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// A failed run, and the command that reproduces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub seed: u64,
    pub invariant: String,
    pub t_ns: u64,
    pub socket: String,
    pub detail: String,
    pub reproduce: String,
}

/// What `tcpsim sweep` prints (and a shard writes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub scenario: String,
    /// The scenario file as given on the command line (for the reproducers).
    pub path: String,
    pub seeds: Seeds,
    /// Present on a shard's result only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub runs: u64,
    /// Runs that broke each invariant.
    pub violations: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, Distribution>,
    pub failures: Vec<Failure>,
    pub members: Vec<Member>,
}

/// Runs one seed of `sc` and reports it (no trace, no pcap).
pub fn run_member(sc: &Scenario, seed: u64) -> Result<(Member, RunReport), String> {
    let mut world = World::build(sc, seed, Trace::off()).map_err(|e| e.to_string())?;
    world.run(sc);
    let report = world.report(sc);
    let resolved = draw::resolve(sc, seed);
    let member = Member { seed, breaches: report.breaches(), outcomes: outcomes(&resolved, &report) };
    Ok((member, report))
}

/// Runs `seeds` of `sc` on `jobs` threads, in seed order; `tick` is called once per
/// finished seed.
pub fn run_seeds(sc: &Scenario, seeds: Seeds, jobs: usize, tick: &(dyn Fn() + Sync)) -> Result<Vec<Member>, String> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build().map_err(|e| e.to_string())?;
    pool.install(|| {
        (seeds.from..seeds.to)
            .into_par_iter()
            .map(|seed| {
                let m = run_member(sc, seed).map(|(m, _)| m);
                tick();
                m
            })
            .collect()
    })
}

/// The result of `members` (in seed order).
pub fn summarise(scenario: &str, path: &str, seeds: Seeds, shard: Option<String>, members: Vec<Member>) -> SweepResult {
    let mut violations = BTreeMap::new();
    let mut failures = Vec::new();
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for m in &members {
        let mut seen = std::collections::BTreeSet::new();
        for b in &m.breaches {
            if seen.insert(b.invariant.clone()) {
                *violations.entry(b.invariant.clone()).or_insert(0) += 1;
                failures.push(Failure {
                    seed: m.seed,
                    invariant: b.invariant.clone(),
                    t_ns: b.t_ns,
                    socket: b.socket.clone(),
                    detail: b.detail.clone(),
                    reproduce: format!("tcpsim run {path} --seed {}", m.seed),
                });
            }
        }
        for (k, v) in &m.outcomes {
            values.entry(k.clone()).or_default().push(*v);
        }
    }
    let outcomes = values.into_iter().map(|(k, v)| (k, distribution(v))).collect();
    SweepResult {
        scenario: scenario.to_string(),
        path: path.to_string(),
        seeds,
        shard,
        runs: members.len() as u64,
        violations,
        outcomes,
        failures,
        members,
    }
}

fn distribution(mut v: Vec<f64>) -> Distribution {
    v.sort_by(f64::total_cmp);
    // Nearest rank: the smallest value with at least q of the runs at or below it.
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    let sum: f64 = v.iter().sum();
    Distribution { runs: v.len() as u64, min: v[0], p50: q(0.5), p90: q(0.9), p99: q(0.99), max: v[v.len() - 1], mean: sum / v.len() as f64 }
}

/// Joins shard results of one sweep into what the whole sweep prints. Every seed of the
/// range must be covered exactly once.
pub fn merge(parts: Vec<SweepResult>) -> Result<SweepResult, String> {
    let first = parts.first().ok_or("nothing to merge")?;
    let (scenario, path, seeds) = (first.scenario.clone(), first.path.clone(), first.seeds);
    let mut members = Vec::new();
    for p in &parts {
        if p.scenario != scenario || p.seeds != seeds {
            return Err(format!(
                "shard of `{}` seeds {}..{} does not belong with `{scenario}` seeds {}..{}",
                p.scenario, p.seeds.from, p.seeds.to, seeds.from, seeds.to
            ));
        }
        members.extend(p.members.iter().cloned());
    }
    members.sort_by_key(|m| m.seed);
    for (i, m) in members.iter().enumerate() {
        let want = seeds.from + i as u64;
        if m.seed != want {
            let why = if m.seed < want { "twice" } else { "missing" };
            return Err(format!("seed {} is {why} among the shards", if m.seed < want { m.seed } else { want }));
        }
    }
    if members.len() as u64 != seeds.len() {
        return Err(format!("seed {} is missing among the shards", seeds.from + members.len() as u64));
    }
    Ok(summarise(&scenario, &path, seeds, None, members))
}

/// A run's key outcomes, in seconds or counts: when the first failure was noticed, how long
/// after the first fault, and what the protocol applications lost.
fn outcomes(resolved: &Scenario, r: &RunReport) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let fault_at = resolved.faults.iter().filter_map(|f| f.at).map(|a| a.lo().as_nanos()).min();
    let secs = |ns: u64| ns as f64 / 1e9;
    let first_error = r.sockets.iter().filter_map(|s| s.first_error_ns).min();
    if let Some(t) = first_error {
        out.insert("first_error_s".into(), secs(t));
    }
    for p in &r.protocols {
        match p {
            ProtocolReport::Heartbeat { declared_dead_ns, error_ns, .. } => {
                let noticed = [*declared_dead_ns, *error_ns].into_iter().flatten().min();
                if let Some(t) = noticed {
                    out.insert("detected_at_s".into(), secs(t));
                    if let Some(f) = fault_at {
                        out.insert("detection_s".into(), secs(t.saturating_sub(f)));
                    }
                }
            }
            ProtocolReport::Sink { lost, disorder, .. } => {
                out.insert("messages_lost".into(), lost.len() as f64);
                if let Some(first) = lost.first() {
                    out.insert("first_lost_produced_s".into(), secs(first.produced_ns));
                }
                out.insert("sequence_breaks".into(), disorder.len() as f64);
            }
            ProtocolReport::Messenger { connections, .. } => {
                out.insert("connections".into(), *connections as f64);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_shards_parse_and_cover() {
        assert_eq!(Seeds::parse("0..10"), Ok(Seeds { from: 0, to: 10 }));
        assert_eq!(Seeds::parse("1..=10"), Ok(Seeds { from: 1, to: 11 }));
        assert!(Seeds::parse("5..5").is_err() && Seeds::parse("x").is_err());
        let s = Seeds { from: 3, to: 13 };
        let blocks: Vec<Seeds> = (0..3).map(|k| s.shard(k, 3)).collect();
        assert_eq!(blocks.first().unwrap().from, 3);
        assert_eq!(blocks.last().unwrap().to, 13);
        assert!(blocks.windows(2).all(|w| w[0].to == w[1].from));
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").is_err());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let d = distribution((1..=10).map(f64::from).collect());
        assert_eq!((d.min, d.p50, d.p90, d.max, d.mean), (1.0, 5.0, 9.0, 10.0, 5.5));
    }
}
