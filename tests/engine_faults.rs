//! Host and link faults: freeze/thaw, crash/reboot, link down, filters, NAT idle expiry.

mod engine_support;

use engine_support::*;
use tcpsim::engine::{Dir, Fault, HostState, LinkParams, Sim};
use tcpsim::engine::fault::FaultAction;
use tcpsim::scenario::{Direction, FaultKind, FilterMatch, OnExpired};
use tcpsim::tcp::segment::Flags;
use tcpsim::time::{Dur, SimTime};
use tcpsim::trace::Trace;

/// Two pingers, `a` (10.0.0.1) sending to `b` (10.0.0.2) every 100 ms once started, over a
/// link `l` with 1 ms delay each way.
fn pair() -> Sim<Pinger> {
    let mut sim = Sim::new(3);
    sim.add_host("a", "10.0.0.1".parse().unwrap(), Pinger::new("10.0.0.1:1", Some("10.0.0.2:2"), Dur::from_millis(100)))
        .unwrap();
    sim.add_host("b", "10.0.0.2".parse().unwrap(), Pinger::new("10.0.0.2:2", Some("10.0.0.1:1"), Dur::from_millis(100)))
        .unwrap();
    let p = LinkParams { delay: Dur::from_millis(1), ..LinkParams::default() };
    sim.add_link("l", "a", "b", p.clone(), p).unwrap();
    sim.set_trace(Trace::memory());
    sim
}

fn spec<'a>(kind: FaultKind, link: Option<&'a str>, host: Option<&'a str>) -> FaultAction<'a> {
    FaultAction { kind, link, host, drop: None, direction: Direction::Both }
}

#[test]
fn freeze_drops_arrivals_and_thaw_fires_held_timers_in_order() {
    let mut sim = pair();
    sim.with_node(0, |n, ctx| n.start(ctx));
    sim.with_node(1, |_, ctx| {
        // Due while frozen, scheduled out of order on purpose: they fire by due time.
        ctx.schedule(ms(1200), 11);
        ctx.schedule(ms(1100), 10);
        ctx.schedule(ms(1300), 12);
        ctx.schedule(ms(1700), 13); // after the thaw: fires on time
    });
    sim.schedule_fault(ms(1000), Fault::Freeze(1));
    sim.schedule_fault(ms(1500), Fault::Thaw(1));
    sim.run_until(ms(1050));
    assert_eq!(sim.host_state(1), HostState::Frozen);
    sim.run_until(ms(2000));

    let b = sim.node(1);
    assert_eq!(b.fired, vec![(ms(1500), 10), (ms(1500), 11), (ms(1500), 12), (ms(1700), 13)]);
    let recs = records(sim.trace().bytes());
    let frozen: Vec<u64> = of_kind(&recs, "seg_drop")
        .iter()
        .inspect(|r| assert_eq!((r["reason"].as_str(), r["host"].as_str()), (Some("host_frozen"), Some("b"))))
        .map(|r| t(r))
        .collect();
    // Sends at 1.0 .. 1.4 s arrive 1 ms later, while b is frozen; 1.5 s arrives after the thaw.
    let want: Vec<u64> = (10..15).map(|k| ms(k * 100 + 1).0).collect();
    assert_eq!(frozen, want);
    assert_eq!(b.got.len(), 19 - 5, "arrivals at 0.101 .. 1.901 s except the five dropped");
    // Timers are traced by the node that knows what they are (the host names them), not by
    // the engine, which only knows keys.
    assert!(of_kind(&recs, "timer").is_empty());
}

#[test]
fn no_timer_from_before_a_crash_fires_after_it() {
    let mut sim = pair();
    sim.with_node(0, |n, ctx| n.start(ctx));
    sim.with_node(1, |_, ctx| {
        ctx.schedule(ms(2500), 20); // due while down
        ctx.schedule(ms(5000), 21); // due after the reboot
    });
    sim.node_mut(1).on_reboot_schedule = vec![(ms(3500), 30)];
    sim.schedule_fault(ms(2000), Fault::Crash(1));
    sim.schedule_fault(ms(3000), Fault::Reboot(1));
    sim.run_until(ms(6000));

    let b = sim.node(1);
    assert_eq!((b.crashes.as_slice(), b.reboots.as_slice()), (&[ms(2000)][..], &[ms(3000)][..]));
    assert_eq!(b.fired, vec![(ms(3500), 30)], "only the timer scheduled after the reboot");
    let recs = records(sim.trace().bytes());
    let down: Vec<u64> = of_kind(&recs, "seg_drop")
        .iter()
        .inspect(|r| assert_eq!(r["reason"], "host_down"))
        .map(|r| t(r))
        .collect();
    let want: Vec<u64> = (20..30).map(|k| ms(k * 100 + 1).0).collect();
    assert_eq!(down, want, "arrivals between crash and reboot");
    assert!(b.got.iter().any(|&(at, ..)| at == ms(3001)), "the first arrival after the reboot is delivered");
}

#[test]
fn crash_while_frozen_discards_held_timers() {
    let mut sim = pair();
    sim.with_node(1, |_, ctx| ctx.schedule(ms(150), 40));
    sim.apply_fault(&spec(FaultKind::Freeze, None, Some("b"))).unwrap();
    sim.run_until(ms(200));
    sim.apply_fault(&spec(FaultKind::Crash, None, Some("b"))).unwrap();
    sim.apply_fault(&spec(FaultKind::Reboot, None, Some("b"))).unwrap();
    sim.apply_fault(&spec(FaultKind::Thaw, None, Some("b"))).unwrap(); // not frozen any more: no-op
    sim.run_until(ms(1000));
    assert!(sim.node(1).fired.is_empty());
    assert_eq!(sim.host_state(1), HostState::Up);
}

#[test]
fn timers_scheduled_while_down_die_with_that_kernel() {
    let mut sim = pair();
    sim.apply(Fault::Crash(1));
    sim.with_node(1, |_, ctx| ctx.schedule(ms(50), 50)); // a stray call while down
    sim.apply(Fault::Reboot(1));
    sim.run_until(ms(100));
    assert!(sim.node(1).fired.is_empty());
    // A script's fault step resolves to the same fault.
    let step: tcpsim::scenario::Step =
        serde_json::from_value(serde_json::json!({"op": "fault", "kind": "freeze", "host": "b"})).unwrap();
    let spec = step.fault_action().unwrap();
    assert_eq!(sim.resolve_fault(&spec), Ok(Fault::Freeze(1)));
    let bad = FaultAction { host: Some("zz"), ..spec };
    assert_eq!(sim.apply_fault(&bad), Err(tcpsim::engine::EngineError::UnknownHost("zz".into())));
}

#[test]
fn link_down_loses_segments_in_flight_and_partition_blocks_arrivals() {
    let mut sim = pair();
    let p = LinkParams { delay: Dur::from_millis(10), ..LinkParams::default() };
    *sim.link_dir_mut(0, Dir::AToB) = tcpsim::engine::link::LinkDir::new(p);
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    sim.with_node(0, |_, ctx| ctx.send(data(a, b, 1, 10)));
    sim.run_until(ms(5));
    sim.apply_fault(&spec(FaultKind::LinkDown, Some("l"), None)).unwrap();
    sim.run_until(ms(6));
    sim.apply_fault(&spec(FaultKind::LinkUp, Some("l"), None)).unwrap();
    sim.with_node(0, |_, ctx| ctx.send(data(a, b, 2, 10)));
    sim.run_until(ms(8));
    sim.apply_fault(&spec(FaultKind::Partition, Some("l"), None)).unwrap();
    sim.run_until(ms(20));
    sim.apply_fault(&spec(FaultKind::Heal, Some("l"), None)).unwrap();
    sim.with_node(0, |_, ctx| ctx.send(data(a, b, 3, 10)));
    sim.run_until(ms(40));

    let recs = records(sim.trace().bytes());
    let fates: Vec<(u64, u64, String)> = recs
        .iter()
        .filter(|r| r["ev"] == "seg_drop" || r["ev"] == "seg_recv")
        .map(|r| (t(r), r["seq"].as_u64().unwrap(), r["reason"].as_str().unwrap_or("recv").to_string()))
        .collect();
    assert_eq!(
        fates,
        vec![
            (ms(10).0, 1, "link_down".into()), // sent at 0, cable pulled at 5 ms, replugged at 6 ms
            (ms(16).0, 2, "partition".into()), // sent at 6 ms, partitioned at 8 ms
            (ms(30).0, 3, "recv".into()),
        ]
    );
    assert_eq!(sim.link_stats(0, Dir::AToB).dropped, 2);
    assert_eq!(sim.link_stats(0, Dir::AToB).received, 1);
}

#[test]
fn filters_drop_what_they_match_in_their_direction() {
    let mut sim = pair();
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    let mut f = spec(FaultKind::Filter, Some("l"), None);
    assert!(sim.apply_fault(&f).is_err(), "filter without `drop`");
    f.drop = Some(FilterMatch::Syn);
    f.direction = Direction::AToB;
    sim.apply_fault(&f).unwrap();
    sim.with_node(0, |_, ctx| {
        ctx.send(seg(a, b, 1, Flags::SYN, 0));
        ctx.send(seg(a, b, 2, Flags::ACK, 0));
    });
    sim.with_node(1, |_, ctx| ctx.send(seg(b, a, 3, Flags::SYN, 0)));
    sim.run_until(ms(5));
    sim.apply_fault(&spec(FaultKind::Unfilter, Some("l"), None)).unwrap();
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 4, Flags::SYN, 0)));
    sim.run_until(ms(10));
    let b_got: Vec<u32> = sim.node(1).got.iter().map(|g| g.1).collect();
    let a_got: Vec<u32> = sim.node(0).got.iter().map(|g| g.1).collect();
    assert_eq!((b_got, a_got), (vec![2, 4], vec![3]));
    let recs = records(sim.trace().bytes());
    let drops = of_kind(&recs, "seg_drop");
    assert_eq!(drops.len(), 1);
    assert_eq!((drops[0]["seq"].as_u64(), drops[0]["reason"].as_str()), (Some(1), Some("filter")));
}

#[test]
fn filters_are_judged_once_the_link_is_up() {
    let mut sim = pair();
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    let mut f = spec(FaultKind::Filter, Some("l"), None);
    f.drop = Some(FilterMatch::All);
    sim.apply_fault(&f).unwrap();
    sim.apply_fault(&spec(FaultKind::Partition, Some("l"), None)).unwrap();
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 1, Flags::SYN, 0)));
    sim.apply_fault(&spec(FaultKind::Heal, Some("l"), None)).unwrap();
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 2, Flags::SYN, 0)));
    sim.apply_fault(&spec(FaultKind::Unfilter, Some("l"), None)).unwrap();
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 3, Flags::SYN, 0)));
    sim.run_until(ms(5));
    let recs = records(sim.trace().bytes());
    let drops: Vec<(u64, &str)> =
        of_kind(&recs, "seg_drop").iter().map(|r| (r["seq"].as_u64().unwrap(), r["reason"].as_str().unwrap())).collect();
    assert_eq!(drops, vec![(1, "partition"), (2, "filter")]);
    assert!(of_kind(&recs, "seg_drop").iter().all(|r| r.get("middlebox").is_none()), "a filter has no name");
    assert_eq!(sim.node(1).got.iter().map(|g| g.1).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn a_second_middlebox_on_a_link_judges_what_the_first_lets_through() {
    let mut sim = pair();
    sim.add_middlebox("home", "l", Dur::from_secs(30), OnExpired::Drop).unwrap();
    sim.add_middlebox("cgnat", "l", Dur::from_secs(10), OnExpired::Drop).unwrap();
    assert!(sim.add_middlebox("home", "l", Dur::from_secs(1), OnExpired::Drop).is_err(), "names are unique");
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 1, Flags::SYN, 0)));
    sim.run_until(SimTime(Dur::from_secs(20).0));
    // 20 s idle: alive for the 30 s box, forgotten by the 10 s one behind it.
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 2, Flags::ACK, 0)));
    sim.run_until(SimTime(Dur::from_secs(21).0));
    let recs = records(sim.trace().bytes());
    let drops: Vec<(u64, &str)> =
        of_kind(&recs, "seg_drop").iter().map(|r| (r["seq"].as_u64().unwrap(), r["middlebox"].as_str().unwrap())).collect();
    assert_eq!(drops, vec![(2, "cgnat")]);
    assert_eq!(sim.node(1).got.iter().map(|g| g.1).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn segments_to_unknown_addresses_have_no_route() {
    let mut sim = pair();
    sim.with_node(0, |_, ctx| ctx.send(data(addr("10.0.0.1:1"), addr("10.9.9.9:9"), 1, 1)));
    let recs = records(sim.trace().bytes());
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0]["ev"].as_str(), recs[0]["reason"].as_str(), recs[0]["host"].as_str()), (Some("seg_drop"), Some("no_route"), Some("a")));
    assert_eq!(sim.host_stats(0).segs_sent, 1);
}

/// `a` opens a flow with a SYN at 0, keeps it alive at 10 s, then falls silent for 31 s
/// with a 30 s idle timeout.
fn nat(on_expired: OnExpired) -> (Sim<Pinger>, Vec<serde_json::Value>) {
    let mut sim = pair();
    sim.add_middlebox("nat", "l", Dur::from_secs(30), on_expired).unwrap();
    let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
    let s = |n| SimTime(Dur::from_secs(n).0);
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 1, Flags::SYN, 0)));
    sim.run_until(s(10));
    sim.with_node(1, |_, ctx| ctx.send(seg(b, a, 2, Flags::ACK, 0))); // refreshes, reaching a at 10.001
    sim.run_until(s(41) + Dur::from_millis(1));
    sim.with_node(0, |_, ctx| ctx.send(seg(a, b, 3, Flags::ACK | Flags::PSH, 10))); // 31 s after the refresh
    sim.run_until(s(42));
    sim.with_node(1, |_, ctx| ctx.send(seg(b, a, 4, Flags::ACK, 0)));
    sim.run_until(s(43));
    let recs = records(sim.trace().bytes());
    (sim, recs)
}

#[test]
fn nat_forgets_idle_flows_and_drops_their_segments() {
    let (sim, recs) = nat(OnExpired::Drop);
    let drops: Vec<(u64, u64, &str)> = of_kind(&recs, "seg_drop")
        .iter()
        .inspect(|r| assert_eq!((r["reason"].as_str(), r["middlebox"].as_str()), (Some("nat_expired"), Some("nat"))))
        .map(|r| (t(r), r["seq"].as_u64().unwrap(), r["dir"].as_str().unwrap()))
        .collect();
    // a→b is judged as it leaves a; b→a as it reaches a's end, 1 ms after it left b.
    assert_eq!(drops, vec![(ms(41_001).0, 3, "a_to_b"), (ms(42_001).0, 4, "b_to_a")]);
    assert_eq!(sim.node(0).got.iter().map(|g| g.1).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn firewall_in_rst_mode_answers_forgotten_flows_per_rfc_9293() {
    let (sim, recs) = nat(OnExpired::Rst);
    // a's segment (ACK set, ack 555): RST with seq 555, at once, from the box next to a.
    let a_got: Vec<(SimTime, u32, Flags)> = sim.node(0).got.clone();
    assert_eq!(a_got[1..], [(ms(41_001), 555, Flags::RST)]);
    // b's segment reaches the box at 42.001 s; the RST crosses the link back to b (1 ms).
    assert_eq!(sim.node(1).got.last(), Some(&(ms(42_002), 555, Flags::RST)));
    let box_sent = recs.iter().filter(|r| r["ev"] == "seg_sent" && r["middlebox"] == "nat").count();
    assert_eq!(box_sent, 2);
}
