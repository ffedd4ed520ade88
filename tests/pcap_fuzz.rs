//! A short run of the stable-Rust fuzzer (fuzz/mutate.rs) over the pcap reader and the
//! scenario parser; CI runs `cargo run --release --example fuzz_pcap` for much longer.

#[path = "../fuzz/mutate.rs"]
mod mutate;

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn assert_no_crash(outcome: &mutate::Outcome, target: &str) {
    for c in &outcome.crashes {
        eprintln!(
            "{target} iteration {}: {} ({} bytes: {:02x?})",
            c.iteration,
            c.message,
            c.input.len(),
            c.input
        );
    }
    assert!(
        outcome.crashes.is_empty(),
        "{} {target} inputs panicked",
        outcome.crashes.len()
    );
}

#[test]
fn pcap_reader_survives_20000_mutated_captures() {
    let seeds = mutate::pcap_seeds(root());
    assert!(seeds.len() >= 10, "fixtures missing: {}", seeds.len());
    let outcome = mutate::run(20_260_101, 20_000, seeds, mutate::pcap_target);
    assert_eq!(outcome.iterations, 20_000);
    assert_no_crash(&outcome, "pcap");
}

#[test]
fn scenario_parser_survives_5000_mutated_files() {
    let seeds = mutate::scenario_seeds(root());
    assert!(!seeds.is_empty());
    let outcome = mutate::run(7, 5_000, seeds, mutate::scenario_target);
    assert_no_crash(&outcome, "scenario");
}

#[test]
fn the_fuzzer_notices_a_panic_and_replays_it() {
    // A target that panics on some inputs proves panics are caught and reported, and the
    // same seed gives the same inputs (so a report can be replayed).
    let panics_on_short = |input: &[u8]| assert!(input.len() > 100, "short input");
    let a = mutate::run(3, 2_000, mutate::pcap_seeds(root()), panics_on_short);
    let b = mutate::run(3, 2_000, mutate::pcap_seeds(root()), panics_on_short);
    assert!(!a.crashes.is_empty());
    assert!(
        a.crashes[0].message.contains("short input"),
        "{}",
        a.crashes[0].message
    );
    let its = |o: &mutate::Outcome| {
        o.crashes
            .iter()
            .map(|c| (c.iteration, c.input.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(its(&a), its(&b));
}
