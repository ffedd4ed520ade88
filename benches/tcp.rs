//! TCP segments processed per second: a bulk transfer between two connection models over a
//! clean link and over a 1 % lossy one (the two-endpoint harness of the `tcp_conn_*` tests),
//! with the sender running reno and cubic (what CUBIC's cube root and HyStart cost).
//! Run: `cargo bench --bench tcp`; criterion reports "elements/s" = segments delivered to a
//! connection per second of wall time.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tcpsim::tcp::cc::Algorithm;
use tcpsim::time::{Dur, SimTime};

#[path = "../tests/tcp_conn_common/mod.rs"]
mod tcp_conn_common;
use tcp_conn_common::{bulk_transfer, Sim};

const BYTES: u64 = 4 << 20;

fn run(loss_ppm: u32, alg: Algorithm) -> u64 {
    let mut sim = Sim::new(1, Dur::from_millis(1));
    sim.keep_trace = false;
    sim.loss_ppm = loss_ppm;
    sim.opts[0].congestion = Some(alg);
    let bulk = bulk_transfer(&mut sim, BYTES, false, SimTime(0) + Dur::from_secs(10_000));
    black_box(bulk.finished_at);
    sim.segments_processed
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_bulk_4MiB");
    g.sample_size(10);
    for (name, loss) in [("clean", 0u32), ("loss_1pct", 10_000)] {
        for alg in [Algorithm::Reno, Algorithm::Cubic] {
            let segments = run(loss, alg);
            g.throughput(Throughput::Elements(segments));
            g.bench_function(format!("{name}/{}", alg.name()), |b| b.iter(|| run(loss, alg)));
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
