//! `counters-agree-with-trace`: the report's counters are the counts of the trace's records,
//! for every scenario in `models/`; a trace that lost or gained a record is caught.

mod scenario_text;

use std::path::Path;
use tcpsim::scenario::{load, Scenario};
use tcpsim::trace::Trace;
use tcpsim::world::invariants::counters_agree;
use tcpsim::world::{RunReport, World};

fn run(sc: &Scenario) -> (RunReport, String) {
    let mut world = World::build(sc, sc.seed, Trace::memory()).unwrap_or_else(|e| panic!("{}: {e}", sc.name));
    world.run(sc);
    let report = world.report(sc);
    world.finish().unwrap();
    (report, String::from_utf8(world.take_trace_bytes()).unwrap())
}

fn model(name: &str) -> Scenario {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_model_s_counters_agree_with_its_trace() {
    for (p, sc) in scenario_text::every_model() {
        let (report, trace) = run(&sc);
        let breaches = counters_agree(&report, &trace);
        assert!(breaches.is_empty(), "{}: {breaches:?}", p.display());
    }
}

/// The lossy partition retransmits on its timer: its client counts TCPTimeouts, one per
/// expiry; a trace with one expiry fewer than the count breaks the invariant, by name.
#[test]
fn a_timeout_counted_without_its_expiry_is_caught() {
    let sc = model("lossy-partition.toml");
    let (report, trace) = run(&sc);
    let client = report.hosts.iter().find(|h| h.name == "client").unwrap();
    let timeouts = client.counters.get("TCPTimeouts").copied().unwrap_or(0);
    assert!(timeouts > 0, "the partition makes the client's retransmission timer expire");
    let expiries: Vec<usize> = trace
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(r#""ev":"timer""#) && l.contains(r#""host":"client""#) && l.contains(r#""timer":"retransmit""#))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(expiries.len() as u64, timeouts, "each expiry with data in flight is one TCPTimeouts");
    let cut: String = trace.lines().enumerate().filter(|(i, _)| *i != expiries[0]).map(|(_, l)| format!("{l}\n")).collect();
    let breaches = counters_agree(&report, &cut);
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].invariant, "counters-agree-with-trace");
    assert!(breaches[0].socket.contains("client TCPTimeouts"), "{breaches:?}");
}

/// A segment record missing from the trace shows on its link and its host.
#[test]
fn a_segment_missing_from_the_trace_is_caught() {
    let sc = model("peer-closes-gracefully.toml");
    let (report, trace) = run(&sc);
    let first_sent = trace.lines().position(|l| l.contains(r#""ev":"seg_sent""#)).unwrap();
    let cut: String = trace.lines().enumerate().filter(|(i, _)| *i != first_sent).map(|(_, l)| format!("{l}\n")).collect();
    let breaches = counters_agree(&report, &cut);
    let what: Vec<&str> = breaches.iter().map(|b| b.socket.as_str()).collect();
    assert!(what.iter().any(|w| w.ends_with(" sent") && w.starts_with("link ")), "{what:?}");
    assert!(what.iter().any(|w| w.ends_with("segments sent") && w.starts_with("host ")), "{what:?}");
}
