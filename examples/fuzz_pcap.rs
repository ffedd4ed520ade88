//! Fuzzes the pcap reader (and the scenario parser) on stable Rust.
//!
//! ```text
//! cargo run --release --example fuzz_pcap -- --iterations 1000000 [--seed 1] [--target pcap|scenario] [--out DIR]
//! ```
//! Exits 1 if any input panicked; each such input is written to `DIR/crash-<target>-<seed>-<iteration>.bin`.

#[path = "../fuzz/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A function under fuzz: any outcome but a panic passes.
type Target = fn(&[u8]);

fn main() -> ExitCode {
    let mut iterations: u64 = 100_000;
    let mut seed: u64 = 1;
    let mut target = String::from("pcap");
    let mut out = PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--iterations" => {
                iterations = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--iterations takes a number"))
            }
            "--seed" => {
                seed = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seed takes a number"))
            }
            "--target" => target = value(),
            "--out" => out = PathBuf::from(value()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (seeds, run_target): (Vec<Vec<u8>>, Target) = match target.as_str() {
        "pcap" => (mutate::pcap_seeds(root), mutate::pcap_target),
        "scenario" => (mutate::scenario_seeds(root), mutate::scenario_target),
        other => usage(&format!("unknown target {other} (pcap or scenario)")),
    };
    if seeds.is_empty() {
        usage(&format!("no seed inputs found for target {target}"));
    }
    let outcome = mutate::run(seed, iterations, seeds, run_target);
    for c in &outcome.crashes {
        let path = out.join(format!("crash-{target}-{seed}-{}.bin", c.iteration));
        let saved = std::fs::write(&path, &c.input).map(|_| path.display().to_string());
        eprintln!(
            "CRASH target {target} seed {seed} iteration {}: {}\n  input ({} bytes): {}",
            c.iteration,
            c.message,
            c.input.len(),
            saved.unwrap_or_else(|e| format!("not saved: {e}"))
        );
    }
    println!(
        "fuzz_pcap: target {target}, seed {seed}: {} inputs run, {} crashed",
        outcome.iterations,
        outcome.crashes.len()
    );
    if outcome.crashes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("fuzz_pcap: {msg}\nusage: fuzz_pcap [--iterations N] [--seed S] [--target pcap|scenario] [--out DIR]");
    std::process::exit(2)
}
