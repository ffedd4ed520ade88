//! The conformance report: every script's outcome, counts per directory, as JSON, text
//! (one line per script, packetdrill's `file:line: error` style) or the Markdown table
//! committed as `docs/packetdrill.md`.

use super::{run_file, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One script's result; `script` is its path relative to the directory given (or as given).
#[derive(Clone, Debug, Serialize)]
pub struct ScriptResult {
    pub script: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Pass/fail/unsupported/error counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub error: usize,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail { .. } => self.fail += 1,
            Outcome::Unsupported { .. } => self.unsupported += 1,
            Outcome::Error { .. } => self.error += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.pass + self.fail + self.unsupported + self.error
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scripts: Vec<ScriptResult>,
}

/// The `.pkt` files under `dir`, sorted, with their paths relative to it.
fn scripts_under(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pkt") {
                let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().into_owned();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every script named: files as given, directories recursively.
pub fn run_paths(paths: &[PathBuf]) -> Result<Report, String> {
    let mut scripts = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            // Named from the directory given, so that per-directory counts keep its name.
            let base = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let found = scripts_under(p).map_err(|e| format!("{}: {e}", p.display()))?;
            scripts.extend(found.into_iter().map(|(rel, path)| (if base.is_empty() { rel } else { format!("{base}/{rel}") }, path)));
        } else {
            scripts.push((p.display().to_string(), p.clone()));
        }
    }
    let results = scripts.into_iter().map(|(script, path)| ScriptResult { script, outcome: run_file(&path) }).collect();
    Ok(Report { scripts: results })
}

impl Report {
    /// Counts by the script's directory (its path up to the file name).
    pub fn by_directory(&self) -> BTreeMap<String, Counts> {
        let mut m: BTreeMap<String, Counts> = BTreeMap::new();
        for r in &self.scripts {
            let dir = r.script.rsplit_once('/').map_or(".", |(d, _)| d).to_string();
            m.entry(dir).or_default().add(&r.outcome);
        }
        m
    }

    pub fn totals(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.scripts {
            c.add(&r.outcome);
        }
        c
    }

    /// The scripts that passed.
    pub fn passing(&self) -> Vec<&str> {
        self.scripts.iter().filter(|r| r.outcome == Outcome::Pass).map(|r| r.script.as_str()).collect()
    }

    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            totals: Counts,
            directories: BTreeMap<String, Counts>,
            scripts: &'a [ScriptResult],
        }
        let out = Out { totals: self.totals(), directories: self.by_directory(), scripts: &self.scripts };
        serde_json::to_string_pretty(&out).unwrap_or_default() + "\n"
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for r in &self.scripts {
            match &r.outcome {
                Outcome::Pass => s.push_str(&format!("{}: pass\n", r.script)),
                Outcome::Fail { line, error } => s.push_str(&format!("{}:{line}: {error}\n", r.script)),
                Outcome::Unsupported { line, feature } => s.push_str(&format!("{}:{line}: unsupported: {feature}\n", r.script)),
                Outcome::Error { line, error } => s.push_str(&format!("{}:{line}: error: {error}\n", r.script)),
            }
        }
        let t = self.totals();
        s.push_str(&format!("{} scripts: {} pass, {} fail, {} unsupported, {} error\n", t.total(), t.pass, t.fail, t.unsupported, t.error));
        s
    }

    /// The Markdown of `docs/packetdrill.md`: a summary per directory, then every script with
    /// its first failing line and why.
    pub fn to_markdown(&self, source: &str) -> String {
        let mut s = String::from("# packetdrill conformance\n\n");
        s.push_str(&format!(
            "Generated by `tests/packetdrill.rs` from `tcpsim packetdrill {source}` (google/packetdrill's Linux \
             TCP scripts, GPL-2.0, read at run time and not part of this repository). A script passes only if \
             every packet, call and assertion happened as written; *unsupported* names the first feature the \
             model lacks; *fail* names the first line where the model differs, in packetdrill's wording.\n\n"
        ));
        s.push_str("| directory | pass | fail | unsupported | error |\n|---|---:|---:|---:|---:|\n");
        for (d, c) in self.by_directory() {
            s.push_str(&format!("| {d} | {} | {} | {} | {} |\n", c.pass, c.fail, c.unsupported, c.error));
        }
        let t = self.totals();
        s.push_str(&format!("| **all** | {} | {} | {} | {} |\n\n", t.pass, t.fail, t.unsupported, t.error));
        s.push_str("| script | result | line | why |\n|---|---|---:|---|\n");
        for r in &self.scripts {
            let (line, why) = match &r.outcome {
                Outcome::Pass => (String::new(), String::new()),
                Outcome::Fail { line, error } | Outcome::Error { line, error } => (line.to_string(), error.clone()),
                Outcome::Unsupported { line, feature } => (line.to_string(), feature.clone()),
            };
            let why = why.replace('|', "\\|").replace('\n', "<br>");
            s.push_str(&format!("| {} | {} | {line} | {why} |\n", r.script, r.outcome.name()));
        }
        s
    }
}
