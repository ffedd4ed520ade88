//! Events per second of the engine alone (event queue + `TimerSlot`), for a
//! schedule/fire/re-arm mix with 10 000 and 1 000 000 connections' timers pending, and the
//! same mix with eager (in-place) re-arming for comparison. See `engine_support/workload.rs`.
//!
//! `cargo bench --bench engine`; instruction counts: `examples/engine_icount.rs`.
//!
//! Measured 2026-11-26 on the shared 2-core build machine (load average about 3, so wall
//! times vary by ±30 % between runs), 4-ary event queue, per event (an ACK or an RTO expiry):
//!
//! | workload                 | wall time / event | events/s  | instructions | D1 misses |
//! |--------------------------|-------------------|-----------|--------------|-----------|
//! | lazy, 10 000 timers      | 46–48 ns          | 21 M      | 589          | 8.8       |
//! | eager, 10 000 timers     | 54–77 ns          | 13–19 M   | 617          | 10.5      |
//! | lazy, 1 000 000 timers   | 460–680 ns        | 1.5–2.2 M | 695          | 17.7      |
//! | eager, 1 000 000 timers  | 460–530 ns        | 1.9–2.2 M | 902          | 23.4      |
//! | whole `Sim`, echo        | 70–97 ns          | 10–14 M   |              |           |
//!
//! Instructions and D1 misses from callgrind (`--cache-sim=yes`), the difference between
//! 3 000 000 and 1 000 000 events divided by 2 000 000. The std `BinaryHeap` the queue
//! started as measured 534 / 626 instructions (10 000 / 1 000 000 timers) but about half the
//! events per second (≈ 11 M/s and ≈ 1 M/s): more cache misses (22 D1 misses an event at a
//! million timers) outweigh its fewer instructions.

#[path = "engine_support/workload.rs"]
#[allow(dead_code)] // `pending()` serves the icount example
mod workload;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tcpsim::engine::{Ctx, LinkParams, Node, Pop, Sim, TimerSlot};
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::{Dur, SimTime};
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

/// Echoes every segment back and re-arms a lazily kept 200 ms timer per segment received,
/// as a TCP receiver re-arms its retransmission timer on each ACK.
struct Echo {
    rto: TimerSlot,
}

impl Node for Echo {
    fn on_segment(&mut self, now: SimTime, seg: Segment, ctx: &mut Ctx) {
        if let Some(at) = self.rto.arm(now + Dur::from_millis(200)) {
            ctx.schedule(at, 0);
        }
        ctx.send(Segment { src: seg.dst, dst: seg.src, ack: seg.seq, ..seg });
    }
    fn on_timer(&mut self, now: SimTime, _key: u64, ctx: &mut Ctx) {
        if let Pop::Requeue(at) = self.rto.on_pop(now) {
            ctx.schedule(at, 0);
        }
    }
    fn on_crash(&mut self, _: SimTime) {}
    fn on_reboot(&mut self, _: SimTime, _: &mut Ctx) {}
}

/// The whole loop, trace off: 1000 segments bouncing between two hosts over a 1 ms link,
/// each arrival a node call, a link transmission and a timer re-arm.
fn whole_sim(c: &mut Criterion) {
    let mut sim = Sim::new(1);
    for (name, ip) in [("a", "10.0.0.1"), ("b", "10.0.0.2")] {
        sim.add_host(name, ip.parse().unwrap(), Echo { rto: TimerSlot::new() }).unwrap();
    }
    let p = LinkParams { delay: Dur::from_millis(1), ..LinkParams::default() };
    sim.add_link("l", "a", "b", p.clone(), p).unwrap();
    sim.with_node(0, |_, ctx| {
        for i in 0..1000u32 {
            ctx.send(Segment {
                src: "10.0.0.1:1000".parse().unwrap(),
                dst: "10.0.0.2:80".parse().unwrap(),
                seq: i,
                ack: 0,
                flags: Flags::ACK,
                ecn: Ecn::NotEct,
                window: 1000,
                options: TcpOptions::default(),
                payload: Payload::Derived { stream: 0, offset: 0, len: 100 },
            });
        }
    });
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.bench_function("echo_1000_in_flight", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                sim.step();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, engine, whole_sim);
criterion_main!(benches);
