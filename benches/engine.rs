//! Events per second of the engine alone (event queue + `TimerSlot`), for a
//! schedule/fire/re-arm mix with 10 000 and 1 000 000 connections' timers pending, and the
//! same mix with eager (in-place) re-arming for comparison. See `engine_support/workload.rs`.
//!
//! `cargo bench --bench engine`; instruction counts: `examples/engine_icount.rs`.

#[path = "engine_support/workload.rs"]
#[allow(dead_code)] // `pending()` serves the icount example
mod workload;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use workload::{Eager, Lazy};

/// Events per measured iteration.
const BATCH: u64 = 10_000;

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for n in [10_000usize, 1_000_000] {
        let mut lazy = Lazy::new(n);
        lazy.run(2 * n as u64); // reach the steady state before measuring
        g.bench_with_input(BenchmarkId::new("lazy", n), &n, |b, _| b.iter(|| lazy.run(BATCH)));
        let mut eager = Eager::new(n);
        eager.run(2 * n as u64);
        g.bench_with_input(BenchmarkId::new("eager", n), &n, |b, _| b.iter(|| eager.run(BATCH)));
    }
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
