//! Loss recovery: fast retransmit and a byte-exact 1 MB transfer over a lossy, reordering path.

mod tcp_conn_common;
use tcp_conn_common::*;
use tcpsim::tcp::segment::{derived_byte, Flags};
use tcpsim::tcp::state::TcpState;
use tcpsim::time::{Dur, SimTime};

#[test]
fn one_lost_segment_is_fast_retransmitted_after_three_dupacks() {
    let mut sim = Sim::new(5, Dur::from_millis(10));
    let t0 = send_ten_losing_the_third(&mut sim);
    sim.run_until(t0 + Dur::from_millis(60));
    let lost_seq = CLIENT_ISS + 1 + 2 * 1448;
    let copies = sim.sent_by(0, |s| s.seq == lost_seq && !s.payload.is_empty());
    assert_eq!(copies.len(), 2);
    // Sent at t0; the 3rd duplicate ACK (for the 6th segment) arrives one RTT later.
    assert_eq!(copies[1].at, t0 + Dur::from_millis(20));
    let dupacks = sim.sent_by(1, |s| s.ack == lost_seq && s.payload.is_empty() && s.flags == Flags::ACK);
    assert!(dupacks.len() >= 3, "{}", dupacks.len());
    // The receiver reports the hole with SACK blocks.
    assert!(dupacks.iter().any(|d| !d.seg.options.sack.is_empty()));
    // Two ACKs of slow start grew the window to 12; recovery keeps CUBIC's beta of it,
    // 12·717/1024 = 8 (`tcp_conn_cc` has Reno's half).
    assert_eq!(sim.client().info().snd_ssthresh, 8);
    sim.run_until(t0 + Dur::from_millis(500));
    assert_eq!(sim.server().inq(), 10 * 1448);
    assert_eq!(sim.client().outq(), 0);
}

fn lossy_megabyte(seed: u64, loss_ppm: u32, reorder_ppm: u32) {
    let mut sim = Sim::new(seed, Dur::from_millis(5));
    sim.loss_ppm = loss_ppm;
    sim.reorder_ppm = reorder_ppm;
    let total = 1 << 20;
    let bulk = bulk_transfer(&mut sim, total, true, SimTime(0) + Dur::from_secs(3_000));
    assert_eq!(bulk.received.len() as u64, total, "seed {seed}: all bytes delivered");
    let stream = sim.client().tx_stream();
    for (i, b) in bulk.received.iter().enumerate() {
        assert_eq!(*b, derived_byte(stream, i as u64), "seed {seed}: byte {i}");
    }
    assert!(matches!(sim.client().state(), TcpState::TimeWait | TcpState::Close));
    assert_eq!(sim.server().state(), TcpState::Close);
    let dropped = sim.trace.iter().filter(|s| s.dropped).count();
    assert!(dropped > 0, "the path did lose segments");
}

#[test]
fn megabyte_over_two_percent_loss_and_reordering_is_byte_exact() {
    for seed in [1, 2, 3] {
        lossy_megabyte(seed, 20_000, 10_000);
    }
}

#[test]
fn megabyte_over_heavy_loss_still_completes() {
    lossy_megabyte(42, 100_000, 50_000);
}
