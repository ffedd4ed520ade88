//! Seeded random conversations over a hostile path (loss, reordering, duplication) with
//! random application behaviour: the model must never panic, must deliver each direction's
//! bytes in order and unaltered, and must finish once the path is clean again.

mod tcp_conn_common;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcp_conn_common::*;
use tcpsim::scenario::types::ShutHow;
use tcpsim::tcp::conn::SendData;
use tcpsim::tcp::segment::derived_byte;
use tcpsim::tcp::state::TcpState;
use tcpsim::time::{Dur, SimTime};

fn conversation(seed: u64) {
    let mut app = ChaCha8Rng::seed_from_u64(seed ^ 0xabcdef);
    let mut sim = Sim::new(seed, Dur::from_millis(1 + seed % 20));
    sim.keep_trace = false;
    sim.loss_ppm = 30_000;
    sim.reorder_ppm = 30_000;
    sim.dup_ppm = 20_000;
    if seed % 3 == 0 {
        sim.opts[1].set(tcpsim::scenario::types::SockOpt::SO_RCVBUF, &tcpsim::scenario::types::OptValue::Int(3000)).unwrap();
    }
    sim.connect();
    let totals = [20_000 + app.next_u32() as u64 % 200_000, app.next_u32() as u64 % 100_000];
    let mut sent = [0u64; 2];
    let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut shut = [false; 2];
    let mut eof = [false; 2];
    let clean_at = SimTime(0) + Dur::from_secs(120);
    let limit = SimTime(0) + Dur::from_secs(4_000);
    while sim.now < limit {
        if sim.now >= clean_at {
            sim.loss_ppm = 0;
            sim.reorder_ppm = 0;
            sim.dup_ppm = 0;
        }
        for side in 0..2 {
            let now = sim.now;
            let Some(c) = sim.conns[side].as_mut() else { continue };
            let mut out = Vec::new();
            if app.next_u32() % 4 == 0 && sent[side] < totals[side] && c.state() == TcpState::Established || c.state() == TcpState::CloseWait && sent[side] < totals[side] {
                let n = (1 + app.next_u32() as u64 % 30_000).min(totals[side] - sent[side]) as u32;
                if let Ok(k) = c.send(now, SendData::Derived(n), &mut out) {
                    sent[side] += k as u64;
                }
            }
            if sent[side] == totals[side] && !shut[side] && matches!(c.state(), TcpState::Established | TcpState::CloseWait) {
                c.shutdown(now, ShutHow::SHUT_WR, &mut out).unwrap();
                shut[side] = true;
            }
            if app.next_u32() % 3 == 0 {
                let n = 1 + app.next_u32() % 50_000;
                if app.next_u32() % 5 == 0 {
                    // A peek returns the same bytes again below: count only real reads.
                    if let Ok(v) = c.recv(now, n, true, &mut out) {
                        eof[side] |= v.is_empty();
                    }
                }
                let more = c.recv(now, n, false, &mut out);
                if let Ok(v) = more {
                    if v.is_empty() {
                        eof[side] = true;
                    }
                    got[side].extend_from_slice(&v);
                }
            }
            sim.transmit(side, out);
        }
        let both_done = eof[0] && eof[1] && shut[0] && shut[1];
        if both_done {
            break;
        }
        if !sim.step() {
            // Nothing in flight or armed: the applications think for a millisecond.
            sim.now += Dur::from_millis(1);
        }
    }
    for (side, bytes) in got.iter().enumerate() {
        let peer = 1 - side;
        let stream = sim.conns[peer].as_ref().unwrap().tx_stream();
        assert_eq!(bytes.len() as u64, totals[peer], "seed {seed}: side {side} received everything");
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(*b, derived_byte(stream, i as u64), "seed {seed}: side {side} byte {i}");
        }
    }
}

#[test]
fn random_conversations_over_a_hostile_path() {
    for seed in 0..64 {
        conversation(seed);
    }
}
