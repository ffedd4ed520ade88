//! `tcpsim sweep` and `tcpsim merge`: the verbs over [`super`], with a progress bar on a
//! terminal (none in a pipe) and the result printed only once every seed ran.

use super::{merge, parse_shard, run_seeds, summarise, SweepResult, Seeds};
use crate::cli::{CliError, Status};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// What the command line asked of a sweep.
pub struct SweepArgs<'a> {
    pub scenario: &'a Path,
    pub seeds: &'a str,
    pub jobs: usize,
    pub shard: Option<&'a str>,
    pub json: bool,
    pub plot: Option<&'a Path>,
}

/// `tcpsim sweep`.
pub fn sweep(a: &SweepArgs) -> Result<Status, CliError> {
    let sc = crate::scenario::load::load(a.scenario)?;
    let seeds = Seeds::parse(a.seeds).map_err(CliError::Input)?;
    let shard = a.shard.map(parse_shard).transpose().map_err(CliError::Input)?;
    let mine = shard.map_or(seeds, |(k, n)| seeds.shard(k, n));
    let bar = progress(mine.len());
    let tick = || bar.inc(1);
    let members = run_seeds(&sc, mine, a.jobs, &tick).map_err(CliError::Failed)?;
    bar.finish_and_clear();
    let path = a.scenario.display().to_string();
    let result = summarise(&sc.name, &path, seeds, shard.map(|(k, n)| format!("{k}/{n}")), members);
    if let Some(dir) = a.plot {
        crate::plot::sweep_plots(&result, dir).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    print_result(&result, a.json)
}

/// `tcpsim merge`.
pub fn merge_files(files: &[PathBuf], json: bool) -> Result<Status, CliError> {
    let mut parts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| CliError::Input(format!("{}: {e}", f.display())))?;
        let part: SweepResult = serde_json::from_str(&text)
            .map_err(|e| CliError::Input(format!("{}:{}:{}: not a sweep result: {e}", f.display(), e.line(), e.column())))?;
        parts.push(part);
    }
    let result = merge(parts).map_err(CliError::Input)?;
    print_result(&result, json)
}

fn progress(n: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds ({eta} left)") {
        bar.set_style(style);
    }
    bar
}

fn print_result(r: &SweepResult, json: bool) -> Result<Status, CliError> {
    let text = if json {
        serde_json::to_string_pretty(r).map_err(|e| CliError::Failed(e.to_string()))? + "\n"
    } else {
        to_text(r)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(if r.failures.is_empty() { Status::Ok } else { Status::CheckFailed })
}

/// The summary for people: runs, violations by invariant, outcome distributions, and one
/// reproducer per failure.
pub fn to_text(r: &SweepResult) -> String {
    let mut s = String::new();
    let shard = r.shard.as_ref().map_or(String::new(), |k| format!(", shard {k}"));
    let _ = writeln!(s, "sweep {} seeds {}..{}{shard}: {} runs", r.scenario, r.seeds.from, r.seeds.to, r.runs);
    if r.violations.is_empty() {
        let _ = writeln!(s, "every invariant held on every run");
    }
    for (inv, n) in &r.violations {
        let _ = writeln!(s, "invariant {inv}: broken in {n} run(s)");
    }
    if !r.outcomes.is_empty() {
        let _ = writeln!(s, "\n{:<24} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}", "outcome", "runs", "min", "p50", "p90", "max", "mean");
    }
    for (k, d) in &r.outcomes {
        let _ = writeln!(s, "{k:<24} {:>6} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3}", d.runs, d.min, d.p50, d.p90, d.max, d.mean);
    }
    for f in &r.failures {
        let _ = writeln!(
            s,
            "\nFAILED seed {}: invariant {} at {} ns on {}: {}\n  reproduce: {}",
            f.seed, f.invariant, f.t_ns, f.socket, f.detail, f.reproduce
        );
    }
    s
}
