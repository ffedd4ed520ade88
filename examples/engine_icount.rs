//! A fixed number of engine events, for instruction counts under callgrind:
//!
//! ```text
//! cargo build --release --example engine_icount
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/engine_icount lazy 10000 1000000
//! ```
//!
//! Arguments: strategy (`lazy` or `eager`), connections, events. Run it twice with
//! different event counts and divide the difference in instructions by the difference in
//! events: setup cancels out.

#[path = "../benches/engine_support/workload.rs"]
mod workload;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: engine_icount lazy|eager CONNECTIONS EVENTS";
    let (Some(kind), Some(n), Some(events)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (Ok(n), Ok(events)) = (n.parse::<usize>(), events.parse::<u64>()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (counts, pending) = match kind.as_str() {
        "lazy" => {
            let mut w = workload::Lazy::new(n);
            w.run(events);
            (w.counts, w.pending())
        }
        "eager" => {
            let mut w = workload::Eager::new(n);
            w.run(events);
            (w.counts, w.pending())
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    println!(
        "{kind} n={n} events={} acks={} fires={} pops={} pending_at_end={pending}",
        counts.events(),
        counts.acks,
        counts.fires,
        counts.pops
    );
}
