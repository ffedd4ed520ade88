//! Every committed real-kernel trace replayed against the model, each side in turn: the
//! divergences found must be exactly those `traces/KNOWN-DIVERGENCES.md` lists (section
//! "Replay"), so the file can neither hide a new divergence nor keep a fixed one.

mod replay_support;

use replay_support::{known, readiness_traces};
use std::collections::BTreeSet;
use tcpsim::replay::{replay_file, ReplayOptions};

#[test]
fn every_trace_replays_with_only_the_known_divergences() {
    let mut found = BTreeSet::new();
    let (mut compared, mut matched, mut traces) = (0, 0, 0);
    for (condition, dir) in readiness_traces() {
        let report = replay_file(&dir.join("capture.pcap"), &ReplayOptions::default())
            .unwrap_or_else(|e| panic!("{condition}: {e}"));
        assert!(report.observations.is_some(), "{condition}: the recorded calls drove the SUT");
        traces += 1;
        compared += report.segments_compared;
        matched += report.segments_matched;
        for d in &report.divergences {
            let v = &d.divergence;
            found.insert(format!("readiness/{condition} {} {} {} {}", d.side.name(), v.connection, v.segment, v.fields.join(",")));
        }
        // Every connection was replayed from both sides and every SUT segment compared
        // up to the first structural divergence.
        for c in &report.connections {
            assert!(c.segments_compared <= c.segments_captured.max(c.segments_model), "{condition}: {c:?}");
        }
    }
    println!("{traces} traces, {compared} segments compared, {matched} matched, {} divergences", found.len());
    assert_eq!(traces, 22, "one trace per readiness condition");
    assert!(compared >= 90, "the traces hold most of their segments for comparison: {compared}");
    let listed = known("Replay");
    let new: Vec<_> = found.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&found).collect();
    assert!(new.is_empty() && stale.is_empty(), "not in KNOWN-DIVERGENCES.md: {new:#?}\nlisted but not found: {stale:#?}");
}

#[test]
fn replay_is_deterministic() {
    let path = replay_support::repo().join("traces/readiness/sndbuf-full/capture.pcap");
    let a = replay_file(&path, &ReplayOptions::default()).unwrap().to_json();
    let b = replay_file(&path, &ReplayOptions::default()).unwrap().to_json();
    assert_eq!(a, b);
}
