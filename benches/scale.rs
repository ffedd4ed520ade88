//! The two runs that fell off a cliff (issue 8, items 7 and 8), measured where the cliff
//! was: `tcpsim run` with 40 000 clients 1 µs apart (the ephemeral range is exhausted after
//! 28 232 of them), and `tcpsim replay` of one long connection without timestamps (160 000
//! packets; the figures for 1 000 000, measured with the binary, are in BENCHMARKS.md).
//!
//! `cargo bench --bench scale`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use tcpsim::pcap::{read_pcap_bytes, PcapWriter};
use tcpsim::replay::{replay, Recorded, ReplayOptions, Side};
use tcpsim::scenario::parse;
use tcpsim::trace::Trace;
use tcpsim::world::World;

const CLIENTS: &str = include_str!("scenarios/clients-40000.toml");
const BULK: &str = include_str!("scenarios/bulk-1m-packets.toml");

/// Runs `text`; the pcap of its wire, if asked for.
fn run(text: &str, pcap: bool) -> Vec<u8> {
    let sc = parse(text, "bench.toml").expect("the bench scenario parses");
    let mut world = World::build(&sc, 1, Trace::off()).expect("builds");
    let buf = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    if pcap {
        world.set_pcap(PcapWriter::new(Shared(buf.clone())).expect("header"));
    }
    world.run(&sc);
    world.finish().expect("flushes");
    buf.take()
}

/// A writer into a buffer the caller keeps.
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let text = CLIENTS;
    g.throughput(Throughput::Elements(40_000));
    g.bench_function("run 40000 clients 1us apart", |b| b.iter(|| run(text, false)));
    let pcap = run(&BULK.replace("bytes = 975000000", "bytes = 160000000"), true);
    let cap = read_pcap_bytes(&pcap, "bulk.pcap").expect("reads");
    let opts = ReplayOptions { sides: vec![Side::Server], ..ReplayOptions::default() };
    g.throughput(Throughput::Elements(cap.packets.len() as u64));
    g.bench_function(format!("replay {} packets, one connection", cap.packets.len()), |b| {
        b.iter(|| replay(&cap, "bulk.pcap", &Recorded::default(), &opts).expect("replays"))
    });
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
