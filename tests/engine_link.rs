//! Link timing: serialization at the link's rate, tail drop, duplication; and the clock
//! semantics of `run_until`.

mod engine_support;

use engine_support::*;
use tcpsim::engine::link::{serialization_delay, wire_bytes};
use tcpsim::engine::{Dir, LinkParams, Prob, Sim};
use tcpsim::time::{Dur, SimTime};
use tcpsim::trace::Trace;

fn pair(ab: LinkParams) -> Sim<Pinger> {
    let mut sim = Sim::new(5);
    sim.add_host("a", "10.0.0.1".parse().unwrap(), Pinger::new("10.0.0.1:1", None, Dur(1))).unwrap();
    sim.add_host("b", "10.0.0.2".parse().unwrap(), Pinger::new("10.0.0.2:2", None, Dur(1))).unwrap();
    sim.add_link("l", "a", "b", ab, LinkParams::default()).unwrap();
    sim.set_trace(Trace::memory());
    sim
}

/// Sends `n` segments of `payload` bytes from a to b at the current time.
fn burst(sim: &mut Sim<Pinger>, n: u32, payload: u32) {
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    sim.with_node(0, |_, ctx| (0..n).for_each(|i| ctx.send(data(a, b, i, payload))));
}

#[test]
fn packets_arrive_at_exactly_the_computed_times() {
    // 1446 payload + 54 header bytes = 1500 bytes = 12 000 bits: 1.2 ms at 10 Mbit/s.
    let rate = 10_000_000;
    let p = LinkParams { delay: Dur::from_millis(5), bandwidth: Some(rate), ..LinkParams::default() };
    let mut sim = pair(p);
    let sample = data(addr("10.0.0.1:1"), addr("10.0.0.2:2"), 0, 1446);
    assert_eq!(wire_bytes(&sample), 1500);
    let ser = serialization_delay(1500, rate);
    assert_eq!(ser, Dur::from_micros(1200));
    sim.run_until(ms(1));
    burst(&mut sim, 8, 1446);
    sim.run_until(ms(100));
    let got: Vec<SimTime> = sim.node(1).got.iter().map(|g| g.0).collect();
    let want: Vec<SimTime> = (1..=8).map(|k| ms(1) + Dur(ser.0 * k) + Dur::from_millis(5)).collect();
    assert_eq!(got, want);
    // In order: FIFO with no jitter.
    assert_eq!(sim.node(1).got.iter().map(|g| g.1).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
}

#[test]
fn rate_with_remainder_rounds_up_per_packet() {
    // 100 bytes at 3 Mbit/s = 266 666.67 ns: each packet takes 266 667 ns.
    let p = LinkParams { bandwidth: Some(3_000_000), ..LinkParams::default() };
    let mut sim = pair(p);
    burst(&mut sim, 3, 46);
    sim.run_until(ms(10));
    let got: Vec<u64> = sim.node(1).got.iter().map(|g| g.0 .0).collect();
    assert_eq!(got, vec![266_667, 533_334, 800_001]);
}

#[test]
fn queue_overflow_drops_exactly_the_excess() {
    let p = LinkParams { bandwidth: Some(1_000_000), queue: 4, ..LinkParams::default() };
    let mut sim = pair(p);
    burst(&mut sim, 10, 100);
    sim.run_until(ms(100));
    assert_eq!(sim.node(1).got.iter().map(|g| g.1).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let st = sim.link_stats(0, Dir::AToB);
    assert_eq!((st.sent, st.dropped, st.received), (10, 6, 4));
    let recs = records(sim.trace().bytes());
    let drops: Vec<(u64, u64)> = of_kind(&recs, "seg_drop")
        .iter()
        .inspect(|r| assert_eq!(r["reason"], "queue_full"))
        .map(|r| (t(r), r["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(drops, (4..10).map(|s| (0, s)).collect::<Vec<_>>());
    // Once drained, the queue takes a full burst again.
    burst(&mut sim, 4, 100);
    sim.run_until(ms(200));
    assert_eq!(sim.node(1).got.len(), 8);
}

#[test]
fn duplicates_arrive_twice_and_are_traced() {
    let p = LinkParams { delay: Dur(1000), duplicate: Prob::new(1.0).unwrap(), ..LinkParams::default() };
    let mut sim = pair(p);
    burst(&mut sim, 2, 10);
    sim.run_until(ms(1));
    let got: Vec<(u64, u32)> = sim.node(1).got.iter().map(|g| (g.0 .0, g.1)).collect();
    assert_eq!(got, vec![(1000, 0), (1000, 0), (1000, 1), (1000, 1)]);
    let recs = records(sim.trace().bytes());
    assert_eq!(of_kind(&recs, "seg_dup").len(), 2);
    assert_eq!(sim.link_stats(0, Dir::AToB).duplicated, 2);
}

#[test]
fn jitter_reorders_but_stays_in_bounds() {
    let p = LinkParams { delay: Dur::from_millis(10), jitter: Dur::from_millis(10), ..LinkParams::default() };
    let mut sim = pair(p);
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    for i in 0..50 {
        sim.run_until(ms(i));
        sim.with_node(0, |_, ctx| ctx.send(data(a, b, i as u32, 1)));
    }
    sim.run_until(ms(100));
    let got = &sim.node(1).got;
    assert_eq!(got.len(), 50);
    for &(at, seq, _) in got {
        let sent = ms(u64::from(seq));
        assert!(at >= sent + Dur::from_millis(10) && at <= sent + Dur::from_millis(20));
    }
    let seqs: Vec<u32> = got.iter().map(|g| g.1).collect();
    assert!(seqs.windows(2).any(|w| w[0] > w[1]), "1 ms apart with 10 ms of jitter: some overtake");
}

#[test]
fn run_until_runs_events_at_the_limit_and_sets_the_clock() {
    let mut sim = pair(LinkParams::default());
    sim.with_node(1, |_, ctx| {
        ctx.schedule(ms(10), 7);
        ctx.schedule(ms(10), 8);
        ctx.schedule(ms(3), 6); // earlier, scheduled later
        ctx.schedule(SimTime::ZERO, 5); // in the past is now
    });
    sim.run_until(ms(10));
    assert_eq!(sim.now(), ms(10));
    assert_eq!(sim.node(1).fired, vec![(SimTime::ZERO, 5), (ms(3), 6), (ms(10), 7), (ms(10), 8)]);
    assert_eq!(sim.peek_time(), None);
    sim.run_until(ms(5)); // never backwards
    assert_eq!(sim.now(), ms(10));
    assert!(!sim.step());
}

#[test]
fn node_records_carry_time_and_host_and_keep_field_order() {
    #[derive(serde::Serialize)]
    struct StateChange {
        from: &'static str,
        to: &'static str,
    }
    let mut sim = pair(LinkParams::default());
    sim.run_until(ms(7));
    sim.with_node(1, |_, ctx| {
        assert!(ctx.trace_enabled());
        ctx.trace("state", &StateChange { from: "SYN_SENT", to: "ESTABLISHED" });
    });
    sim.trace_mut().record(ms(7), "syscall", &serde_json::json!({"op": "close", "ret": 0}));
    let text = String::from_utf8(sim.trace_mut().take_bytes()).unwrap();
    assert_eq!(
        text,
        "{\"t\":7000000,\"ev\":\"state\",\"host\":\"b\",\"from\":\"SYN_SENT\",\"to\":\"ESTABLISHED\"}\n\
         {\"t\":7000000,\"ev\":\"syscall\",\"op\":\"close\",\"ret\":0}\n"
    );
}
