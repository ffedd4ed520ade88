//! Every committed real-kernel trace replayed against the model, each side in turn: the
//! divergences found must be exactly those `traces/KNOWN-DIVERGENCES.md` lists (section
//! "Replay"), so the file can neither hide a new divergence nor keep a fixed one.

mod replay_support;

use replay_support::{all_traces, known};
use std::collections::BTreeSet;
use tcpsim::replay::{replay_file, ReplayOptions, Side};

/// The seed scenarios (`models/*.toml`) short enough to capture in real time.
const SEED_TRACES: usize = 9;

#[test]
fn every_trace_replays_with_only_the_known_divergences() {
    let mut found = BTreeSet::new();
    let (mut compared, mut matched, mut traces) = (0, 0, 0);
    let mut sets = std::collections::BTreeMap::<String, usize>::new();
    for (trace, dir) in all_traces() {
        let report = replay_file(&dir.join("capture.pcap"), &ReplayOptions::default())
            .unwrap_or_else(|e| panic!("{trace}: {e}"));
        let scenario = tcpsim::scenario::load(&dir.join("scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
        // A scripted trace drives the SUT with its recorded calls; one made of `[[app]]`s
        // only (not replayed) has a passive SUT.
        assert_eq!(report.observations.is_some(), !scenario.script.is_empty(), "{trace}: the recorded calls drove the SUT");
        traces += 1;
        *sets.entry(trace.split('/').next().unwrap().to_string()).or_default() += 1;
        compared += report.segments_compared;
        matched += report.segments_matched;
        for d in &report.divergences {
            let v = &d.divergence;
            found.insert(format!("{trace} {} {} {} {}", d.side.name(), v.connection, v.segment, v.fields.join(",")));
        }
        // Every connection was replayed from both sides (a capture without connections,
        // `listen-empty`'s, has none), and every SUT segment compared: the comparison goes on
        // past each divergence, so what follows a known one is held to the file too.
        let of = |side| report.connections.iter().filter(|c| c.side == side).map(|c| c.connection).collect::<Vec<_>>();
        assert_eq!(of(Side::Client), of(Side::Server), "{trace}: every connection replayed from both sides");
        for c in &report.connections {
            assert_eq!(c.segments_compared, c.segments_captured, "{trace}: {c:?}");
            assert!(c.not_compared.is_empty(), "{trace}: {c:?}");
        }
        assert!(report.complete, "{trace}: every segment compared");
    }
    println!("{traces} traces, {compared} segments compared, {matched} matched, {} divergences", found.len());
    assert_eq!(sets.get("readiness"), Some(&22), "one trace per readiness condition");
    assert_eq!(sets.get("seeds"), Some(&SEED_TRACES), "the seed scenarios captured (traces/seeds/README.md)");
    assert!(compared >= 380, "the traces hold their segments for comparison: {compared}");
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
