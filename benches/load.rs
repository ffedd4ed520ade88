//! Whole runs at scale (issue 14): `ab -n 50000 -c 1000` against a 1 ms-per-request server
//! (models/scale/ab-c1000.toml), and N idle keepalive connections for two simulated hours
//! (`scenario::generate::idle_keepalive`), at two sizes to show the growth.
//! Run: `cargo bench --bench load`; the figures and ratios are in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;
use tcpsim::scenario::{generate, load, parse, Scenario};
use tcpsim::trace::Trace;
use tcpsim::world::World;

fn run(sc: &Scenario) -> u64 {
    let mut world = World::build(sc, sc.seed, Trace::off()).expect("builds");
    world.run(sc);
    black_box(world.report(sc)).end_ns
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    let ab = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scale/ab-c1000.toml")).expect("loads");
    g.bench_function("ab_n50000_c1000", |b| b.iter(|| run(&ab)));
    for n in [10_000u64, 100_000] {
        let sc = parse(&generate::idle_keepalive(n), "idle.toml").expect("parses");
        g.bench_function(format!("idle_keepalive_{n}_2h"), |b| b.iter(|| run(&sc)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
