//! A scenario with a lossy, jittery link and a partition, built from a scenario file: each
//! drop appears in the trace with its reason at the right time, and runs are reproducible.

mod engine_support;

use engine_support::*;
use std::collections::BTreeMap;
use tcpsim::engine::EngineError;
use tcpsim::world::build_sim;
use tcpsim::scenario::Scenario;
use tcpsim::time::{Dur, SimTime};
use tcpsim::trace::Trace;

const SCENARIO: &str = r#"
name = "lossy-partition"
duration = "6s"

[[host]]
name = "a"
addr = "10.0.0.1"

[[host]]
name = "b"
addr = "10.0.0.2"

[[link]]
name = "l"
a = "a"
b = "b"
delay = "10ms"
jitter = "5ms"
loss = 0.1

[[fault]]
at = "2s"
kind = "partition"
link = "l"

[[fault]]
at = "4s"
kind = "heal"
link = "l"
"#;

/// Runs the scenario: `a` sends to `b` every 100 ms; returns the trace bytes.
fn run(seed: u64) -> Vec<u8> {
    let sc: Scenario = toml::from_str(SCENARIO).unwrap();
    let mut sim = build_sim(&sc, seed, |_, h| {
        let me = format!("{}:5000", h.addr);
        let peer = if h.name == "a" { Some("10.0.0.2:5000") } else { None };
        Pinger::new(&me, peer, Dur::from_millis(100))
    })
    .unwrap();
    sim.set_trace(Trace::memory());
    sim.with_node(0, |n, ctx| n.start(ctx));
    sim.run_until(SimTime::ZERO + sc.duration.0);
    assert_eq!(sim.now(), SimTime(6_000_000_000));
    sim.trace_mut().take_bytes()
}

#[test]
fn every_drop_has_its_reason_at_the_right_time() {
    let recs = records(&run(1));
    // The fate of each segment, by sequence number.
    let mut sent = BTreeMap::new();
    for r in of_kind(&recs, "seg_sent") {
        assert_eq!(r["host"], "a");
        assert_eq!((r["link"].as_str(), r["dir"].as_str()), (Some("l"), Some("a_to_b")));
        sent.insert(r["seq"].as_u64().unwrap(), t(r));
    }
    assert_eq!(sent.len(), 60, "one every 100 ms from 100 ms to 6 s inclusive");
    let (mut partition, mut loss, mut recv) = (0, 0, 0);
    let mut fates = BTreeMap::new();
    for r in recs.iter().filter(|r| r["ev"] == "seg_drop" || r["ev"] == "seg_recv") {
        let seq = r["seq"].as_u64().unwrap();
        *fates.entry(seq).or_insert(0) += 1;
        let sent_at = sent[&seq];
        let in_partition = (2_000_000_000..4_000_000_000).contains(&sent_at);
        match (r["ev"].as_str().unwrap(), r["reason"].as_str()) {
            ("seg_drop", Some("partition")) => {
                // Dropped the moment it was sent (the fault at 2 s precedes the 2 s send).
                assert!(in_partition, "{r}");
                assert_eq!(t(r), sent_at);
                partition += 1;
            }
            ("seg_drop", Some("loss")) => {
                assert!(!in_partition, "{r}");
                assert_eq!(t(r), sent_at);
                loss += 1;
            }
            ("seg_recv", None) => {
                assert!(!in_partition, "{r}");
                assert_eq!(r["host"], "b");
                let delay = t(r) - sent_at;
                assert!((10_000_000..=15_000_000).contains(&delay), "delay {delay} outside delay+jitter");
                recv += 1;
            }
            _ => panic!("unexpected record {r}"),
        }
    }
    assert_eq!(partition, 20, "sends at 2.0 s .. 3.9 s");
    // Every segment has exactly one fate, except that the one sent at 6 s may still be in
    // flight when the run ends.
    assert!(fates.values().all(|&n| n == 1));
    let last = *sent.keys().last().unwrap();
    assert!(sent.keys().all(|s| fates.contains_key(s) || *s == last));
    assert!(loss > 0 && loss < 15, "10% of 40 segments: got {loss}");
    assert_eq!(loss + recv + partition, fates.len());
    let faults: Vec<(u64, &str)> =
        of_kind(&recs, "fault").iter().map(|r| (t(r), r["kind"].as_str().unwrap())).collect();
    assert_eq!(faults, vec![(2_000_000_000, "partition"), (4_000_000_000, "heal")]);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let first = run(7);
    assert!(first.len() > 1000);
    assert_eq!(first, run(7), "same scenario and seed must give a byte-identical trace");
    assert_ne!(first, run(8), "a different seed must change the random draws");
}

#[test]
fn unknown_names_are_errors_not_panics() {
    let bad_link_host = SCENARIO.replace("b = \"b\"", "b = \"nosuch\"");
    let sc: Scenario = toml::from_str(&bad_link_host).unwrap();
    let err = build_sim(&sc, 0, |_, _| Pinger::new("10.0.0.9:1", None, Dur(1))).err();
    assert_eq!(err, Some(EngineError::UnknownHost("nosuch".into())));

    let bad_fault = SCENARIO.replace("link = \"l\"\n\"#", "link = \"m\"\n\"#").replacen("kind = \"heal\"\nlink = \"l\"", "kind = \"heal\"\nlink = \"m\"", 1);
    let sc: Scenario = toml::from_str(&bad_fault).unwrap();
    let err = build_sim(&sc, 0, |_, _| Pinger::new("10.0.0.9:1", None, Dur(1))).err();
    assert_eq!(err, Some(EngineError::UnknownLink("m".into())));

    let bad_loss = SCENARIO.replace("loss = 0.1", "loss = 1.5");
    let sc: Scenario = toml::from_str(&bad_loss).unwrap();
    let err = build_sim(&sc, 0, |_, _| Pinger::new("10.0.0.9:1", None, Dur(1))).err();
    assert!(matches!(err, Some(EngineError::BadProbability { field: "loss", .. })), "{err:?}");
}

#[test]
fn per_direction_settings_override_the_links_and_middleboxes_are_built() {
    let text = SCENARIO.replace(
        "loss = 0.1\n",
        "loss = 0.1\n\n[link.a_to_b]\nloss = 1.0\n\n[link.b_to_a]\nloss = 0.0\njitter = \"0\"\n\n[[middlebox]]\nname = \"fw\"\nlink = \"l\"\nidle_timeout = \"1s\"\non_expired = \"rst\"\n",
    );
    let sc: Scenario = toml::from_str(&text).unwrap();
    let mut sim = build_sim(&sc, 1, |_, h| Pinger::new(&format!("{}:5000", h.addr), None, Dur(1))).unwrap();
    sim.set_trace(Trace::memory());
    let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:5000"));
    let syn = tcpsim::tcp::segment::Flags::SYN;
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 1, syn, 0))); // creates the flow, then lost
    sim.run_until(ms(100));
    sim.with_node(1, |_, ctx| (0..20).for_each(|i| ctx.send(data(b, a, i, 1))));
    sim.run_until(ms(200));
    let recs = records(sim.trace().bytes());
    let drops = of_kind(&recs, "seg_drop");
    assert_eq!(drops.len(), 1);
    assert_eq!((drops[0]["dir"].as_str(), drops[0]["reason"].as_str()), (Some("a_to_b"), Some("loss")));
    // b→a: no loss and no jitter there, only the link's 10 ms delay; the firewall knows the flow.
    let got: Vec<(SimTime, u32)> = sim.node(0).got.iter().map(|g| (g.0, g.1)).collect();
    assert_eq!(got, (0..20).map(|i| (ms(110), i)).collect::<Vec<_>>());
}
