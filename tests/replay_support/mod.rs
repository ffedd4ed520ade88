//! Shared by the replay tests: the committed traces, and `traces/KNOWN-DIVERGENCES.md`
//! parsed into the set of divergences it lists.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(condition, directory)` of every committed readiness trace, in name order.
pub fn readiness_traces() -> Vec<(String, PathBuf)> {
    traces_in("readiness")
}

/// `(set/name, directory)` of every committed trace under `traces/` (each set's
/// directories holding a `capture.pcap`: `readiness/…`, `seeds/…`), in name order.
pub fn all_traces() -> Vec<(String, PathBuf)> {
    let mut sets: Vec<String> = std::fs::read_dir(repo().join("traces"))
        .expect("traces/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    sets.sort();
    sets.iter().flat_map(|set| traces_in(set).into_iter().map(move |(n, d)| (format!("{set}/{n}"), d))).collect()
}

/// `(name, directory)` of the traces of `traces/{set}`, in name order.
pub fn traces_in(set: &str) -> Vec<(String, PathBuf)> {
    let root = repo().join("traces").join(set);
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("capture.pcap").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

/// The rows of the table under the `## {section}` heading of KNOWN-DIVERGENCES.md, each
/// row's cells but the last (the cause, which must not be empty), joined by spaces; a Replay
/// row over a range of segments (`3-72`) stands for one row per segment.
pub fn known(section: &str) -> BTreeSet<String> {
    let path = repo().join("traces/KNOWN-DIVERGENCES.md");
    let text = std::fs::read_to_string(&path).expect("traces/KNOWN-DIVERGENCES.md exists");
    let mut inside = false;
    let mut rows = BTreeSet::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            inside = h.trim() == section;
            continue;
        }
        if !inside || !line.starts_with('|') || line.starts_with("| trace") || line.starts_with("|--") || line.starts_with("| --") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (cause, key) = cells.split_last().expect("a table row has cells");
        assert!(!cause.is_empty(), "{}: row without a cause: {line}", path.display());
        // A Replay row's segment may be a range `A-B`: one row per segment of it.
        let segments = match (section, key.get(3).and_then(|s| s.split_once('-'))) {
            ("Replay", Some((a, b))) => {
                let n = |v: &str| v.parse::<usize>().unwrap_or_else(|_| panic!("{}: bad segment range: {line}", path.display()));
                (n(a)..=n(b)).map(|i| i.to_string()).collect()
            }
            _ => vec![String::new()],
        };
        for seg in segments {
            let mut key = key.to_vec();
            if !seg.is_empty() {
                key[3] = &seg;
            }
            assert!(rows.insert(key.join(" ")), "{}: row listed twice: {line}", path.display());
        }
    }
    rows
}

pub fn name(p: &Path) -> String {
    p.display().to_string()
}
