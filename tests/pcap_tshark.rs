//! tcpsim's pcaps and labels against the real tshark: no malformed packets, no checksum
//! errors, and tshark's `tcp.analysis.*` flags equal `label_segments`, frame by frame, for
//! crafted segment sequences (retransmissions, keep-alives, zero windows, dup ACKs, ...).
//!
//! Skips, saying why, when `tshark` is not installed; CI installs it.

use tcpsim::addr::SockAddr;
use std::path::{Path, PathBuf};
use tcpsim::pcap::{label_segments, read_pcap, Label, PcapWriter};

mod tshark_support;
use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
use tcpsim::time::SimTime;
use tshark_support::*;

const MS: u64 = 1_000_000;
const ACK: Flags = Flags::ACK;
const PA: Flags = Flags(Flags::PSH.0 | Flags::ACK.0);

/// One client-server connection being scripted; sequence numbers relative to the ISNs.
struct Conv {
    c: SockAddr,
    s: SockAddr,
    c_isn: u32,
    s_isn: u32,
    segs: Vec<(u64, Segment)>,
}

impl Conv {
    fn new() -> Conv {
        Conv {
            c: "192.168.7.1:40000".parse().unwrap(),
            s: "192.168.7.2:47999".parse().unwrap(),
            c_isn: 0x1000_0000,
            s_isn: 0xfffff000, // wraps during the connection
            segs: vec![],
        }
    }

    #[allow(clippy::too_many_arguments)] // one per header field the scenarios set
    fn seg(
        &mut self,
        t: u64,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: Flags,
        window: u16,
        len: u32,
    ) -> &mut Segment {
        let (src, dst, isn, peer_isn) = if from_client {
            (self.c, self.s, self.c_isn, self.s_isn)
        } else {
            (self.s, self.c, self.s_isn, self.c_isn)
        };
        let payload = if len == 0 {
            Payload::Empty
        } else {
            Payload::Derived {
                stream: from_client as u64,
                offset: u64::from(seq.wrapping_sub(1)),
                len,
            }
        };
        self.segs.push((
            t,
            Segment {
                src,
                dst,
                seq: isn.wrapping_add(seq),
                ack: if flags.contains(Flags::ACK) {
                    peer_isn.wrapping_add(ack)
                } else {
                    0
                },
                flags,
                ecn: Ecn::NotEct,
                window,
                options: TcpOptions::default(),
                payload,
            },
        ));
        &mut self.segs.last_mut().unwrap().1
    }
    fn c(
        &mut self,
        t: u64,
        seq: u32,
        ack: u32,
        flags: Flags,
        window: u16,
        len: u32,
    ) -> &mut Segment {
        self.seg(t, true, seq, ack, flags, window, len)
    }
    fn s(
        &mut self,
        t: u64,
        seq: u32,
        ack: u32,
        flags: Flags,
        window: u16,
        len: u32,
    ) -> &mut Segment {
        self.seg(t, false, seq, ack, flags, window, len)
    }

    /// SYN at 0, SYN-ACK at 1 ms, ACK at 2 ms: both sides scale windows by 2^7.
    fn handshake(&mut self) {
        self.handshake_at(0, MS, 2 * MS);
    }

    /// SYN at `syn`, SYN-ACK at `syn_ack`, ACK at `ack`: both sides scale windows by 2^7.
    fn handshake_at(&mut self, syn: u64, syn_ack: u64, ack: u64) {
        let opts = |ts| TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some(ts),
            ..TcpOptions::default()
        };
        self.c(syn, 0, 0, Flags::SYN, 64240, 0).options = opts((1, 0));
        self.s(syn_ack, 0, 1, Flags::SYN | ACK, 65160, 0).options = opts((2, 1));
        self.c(ack, 1, 1, ACK, 502, 0);
    }
}

fn write_pcap(name: &str, segs: &[(u64, Segment)]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pcap_tshark_{name}.pcap"));
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (t, s) in segs {
        w.write_segment(SimTime(*t), s).unwrap();
    }
    w.finish().unwrap();
    path
}

/// Writes `segs`, checks the file is clean, and compares tshark's flags with ours, both on
/// the segments themselves and on the segments read back from the file.
fn check(name: &str, segs: &[(u64, Segment)], expect: &[(usize, &[Label])]) {
    let ours = label_segments(segs);
    // The scenario's point, stated independently of both tools: frame number → labels.
    for (frame, labels) in expect {
        assert_eq!(
            ours[frame - 1],
            labels.to_vec(),
            "{name}: our labels of frame {frame}"
        );
    }
    if !tshark_available() {
        return;
    }
    let path = write_pcap(name, segs);
    assert_clean(&path);
    let theirs = tshark_labels(&path);
    assert_eq!(theirs.len(), segs.len(), "{name}: frame count");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a,
            b,
            "{name}: frame {} ({}): ours vs tshark",
            i + 1,
            segs[i].1.summary()
        );
    }
    let back: Vec<(u64, Segment)> = read_pcap(&path)
        .unwrap()
        .packets
        .into_iter()
        .map(|p| (p.t_ns, p.seg))
        .collect();
    assert_eq!(
        label_segments(&back),
        ours,
        "{name}: labels of the read-back segments"
    );
}

use Label::*;

#[test]
fn rto_retransmission() {
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1, 1, PA, 502, 1000);
    v.c(11 * MS, 1001, 1, PA, 502, 1000);
    v.c(300 * MS, 1, 1, PA, 502, 1000); // frame 6: RTO fired
    v.s(310 * MS, 1, 2001, ACK, 509, 0);
    check(
        "rto",
        &v.segs,
        &[(4, &[]), (6, &[Retransmission]), (7, &[])],
    );
}

#[test]
fn dup_acks_and_fast_retransmission() {
    let mut v = Conv::new();
    v.handshake();
    for i in 0..4 {
        v.c(
            10 * MS + i as u64 * 100_000,
            1 + i * 1000,
            1,
            ACK,
            502,
            1000,
        );
    }
    // Segment 2 (1001..2001) lost: the server ACKs 1001 once, then three duplicates.
    v.s(20 * MS, 1, 1001, ACK, 509, 0); // frame 8
    for (i, right) in [3001u32, 4001].into_iter().enumerate() {
        let (c_isn, t) = (v.c_isn, (21 + i as u64) * MS);
        v.s(t, 1, 1001, ACK, 509, 0).options.sack = vec![(c_isn + 2001, c_isn + right)];
    }
    v.s(23 * MS, 1, 1001, ACK, 509, 0).options.sack = vec![(v.c_isn + 2001, v.c_isn + 4001)];
    v.c(24 * MS, 1001, 1, ACK, 502, 1000); // frame 12: fast retransmit
    v.s(30 * MS, 1, 4001, ACK, 509, 0);
    check(
        "fast_retrans",
        &v.segs,
        &[
            (8, &[]),
            (9, &[DupAck]),
            (10, &[DupAck]),
            (11, &[DupAck]),
            (12, &[Retransmission, FastRetransmission]),
            (13, &[]),
        ],
    );
}

#[test]
fn out_of_order_and_lost_segment() {
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1001, 1, ACK, 502, 1000); // frame 4: 1..1001 not seen yet
    v.c(10 * MS + 500_000, 1, 1, ACK, 502, 1000); // frame 5: within 3 ms (see below)
    v.s(20 * MS, 1, 2001, ACK, 509, 0);
    check(
        "ooo",
        &v.segs,
        &[(4, &[LostSegment]), (5, &[OutOfOrder]), (6, &[])],
    );
}

/// A 45 ms handshake starting at `t0`, two segments 1 ms apart, then the first one again
/// 11 ms after the second (frame 7): sooner than the handshake RTT, later than 3 ms.
fn resent_between_3_ms_and_the_handshake_rtt(t0: u64) -> Vec<(u64, Segment)> {
    let mut v = Conv::new();
    v.handshake_at(t0, t0 + 20 * MS, t0 + 45 * MS);
    v.c(t0 + 100 * MS, 1, 1, ACK, 502, 1000);
    v.c(t0 + 101 * MS, 1001, 1, ACK, 502, 1000);
    v.c(t0 + 112 * MS, 1, 1, ACK, 502, 1000); // frame 6
    v.segs
}

#[test]
fn out_of_order_threshold_is_the_handshake_rtt() {
    // packet-tcp.c: ooo_thres = ts_first_rtt, the time from the last pure SYN to the first
    // segment with ACK and without SYN, here 45 ms.
    check(
        "ooo_rtt",
        &resent_between_3_ms_and_the_handshake_rtt(1_000 * MS),
        &[(6, &[OutOfOrder])],
    );
}

#[test]
fn a_syn_captured_at_the_epoch_leaves_the_out_of_order_threshold_at_3_ms() {
    // dissect_tcp arms ts_first_rtt only while ts_mru_syn is not zero (nstime_is_zero), and a
    // SYN stamped 1970-01-01 00:00:00 (tcpsim's clock starts there) leaves it zero: the
    // threshold stays 3 ms, and 11 ms after the highest segment is a retransmission.
    check(
        "ooo_epoch",
        &resent_between_3_ms_and_the_handshake_rtt(0),
        &[(6, &[Retransmission])],
    );
}

#[test]
fn a_handshake_ack_at_the_syns_instant_leaves_the_rtt_to_the_next_ack() {
    // ts_first_rtt is set while it is zero: an RTT of exactly 0 is no RTT, and the next
    // segment with ACK and without SYN (the server's, 50 ms after the SYN) sets it.
    let t0 = 1_000 * MS;
    let mut v = Conv::new();
    v.handshake_at(t0, t0, t0);
    v.s(t0 + 50 * MS, 1, 1, ACK, 509, 0); // frame 4
    v.c(t0 + 100 * MS, 1, 1, ACK, 502, 1000);
    v.c(t0 + 101 * MS, 1001, 1, ACK, 502, 1000);
    v.c(t0 + 112 * MS, 1, 1, ACK, 502, 1000); // frame 7: 11 ms < 50 ms
    check("ooo_zero_rtt", &v.segs, &[(7, &[OutOfOrder])]);
}

#[test]
fn keep_alive_and_its_ack() {
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1, 1, PA, 502, 100);
    v.s(20 * MS, 1, 101, ACK, 509, 0);
    // tcp_keepalive_timer → tcp_write_wakeup → tcp_xmit_probe_skb: seq snd_una - 1, no data.
    v.c(7_200_000 * MS, 100, 1, ACK, 502, 0); // frame 6
    v.s(7_200_001 * MS, 1, 101, ACK, 509, 0); // frame 7
                                              // A one-byte keep-alive (seq snd_una - 1 carrying the old byte), as Windows sends.
    v.c(7_275_000 * MS, 100, 1, ACK, 502, 1); // frame 8
    v.s(7_275_001 * MS, 1, 101, ACK, 509, 0); // frame 9
    check(
        "keepalive",
        &v.segs,
        &[
            (6, &[KeepAlive]),
            (7, &[KeepAliveAck]),
            (8, &[KeepAlive]),
            (9, &[KeepAliveAck]),
        ],
    );
}

#[test]
fn zero_window_probe_and_window_update() {
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1, 1, PA, 502, 1000);
    v.s(20 * MS, 1, 1001, ACK, 0, 0); // frame 5: receiver full
    v.c(220 * MS, 1001, 1, PA, 502, 1); // frame 6: one-byte probe at snd_nxt
    v.s(221 * MS, 1, 1001, ACK, 0, 0); // frame 7: probe refused, window still zero
    v.s(400 * MS, 1, 1001, ACK, 300, 0); // frame 8: window opens
    v.c(401 * MS, 1001, 1, PA, 502, 1000); // frame 9
    check(
        "zero_window",
        &v.segs,
        &[
            (5, &[ZeroWindow]),
            (6, &[ZeroWindowProbe]),
            (7, &[ZeroWindow, ZeroWindowProbeAck]),
            (8, &[WindowUpdate]),
            (9, &[]),
        ],
    );
}

#[test]
fn window_full() {
    let mut v = Conv::new();
    v.handshake();
    v.s(3 * MS, 1, 1, ACK, 10, 0); // frame 4: window 10 << 7 = 1280 bytes
    v.c(10 * MS, 1, 1, ACK, 502, 1000);
    v.c(11 * MS, 1001, 1, ACK, 502, 280); // frame 6: reaches the window's right edge
    v.s(20 * MS, 1, 1281, ACK, 10, 0);
    check("window_full", &v.segs, &[(5, &[]), (6, &[WindowFull])]);
}

#[test]
fn window_full_does_not_scale_a_window_taken_from_the_syn() {
    // The SYN-ACK's window (100) is not scaled (RFC 7323 §2.2): 100 bytes fill it; the next
    // ACK's window 100 is scaled by 2^2 = 400 bytes.
    let mut v = Conv::new();
    v.c(0, 0, 0, Flags::SYN, 64240, 0).options.wscale = Some(2);
    v.s(MS, 0, 1, Flags::SYN | ACK, 100, 0).options.wscale = Some(2);
    v.c(2 * MS, 1, 1, ACK, 502, 100); // frame 3
    v.s(3 * MS, 1, 101, ACK, 100, 0); // frame 4
    v.c(4 * MS, 101, 1, ACK, 502, 300); // frame 5: up to 101 + 300, short of 101 + 400
    v.c(5 * MS, 401, 1, ACK, 502, 100); // frame 6: reaches 501
    check(
        "window_full_syn",
        &v.segs,
        &[(3, &[WindowFull]), (4, &[]), (5, &[]), (6, &[WindowFull])],
    );
}

#[test]
fn spurious_retransmission_and_acked_unseen_segment() {
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1, 1, ACK, 502, 1000);
    v.s(20 * MS, 1, 1001, ACK, 509, 0);
    v.c(300 * MS, 1, 1, ACK, 502, 1000); // frame 6: already acknowledged
    v.s(310 * MS, 1, 3001, ACK, 509, 0); // frame 7: acknowledges bytes never seen
    check(
        "spurious",
        &v.segs,
        &[
            (6, &[Retransmission, SpuriousRetransmission]),
            (7, &[AckLostSegment]),
        ],
    );
}

#[test]
fn reused_ports_after_close() {
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1, 1, Flags::FIN | ACK, 502, 0);
    v.s(11 * MS, 1, 2, Flags::FIN | ACK, 509, 0);
    v.c(12 * MS, 2, 2, ACK, 502, 0);
    v.c_isn = 0x5000_0000;
    v.s_isn = 0x7000_0000;
    v.c(5_000 * MS, 0, 0, Flags::SYN, 64240, 0).options.wscale = Some(7); // frame 7
    v.s(5_001 * MS, 0, 1, Flags::SYN | ACK, 65160, 0)
        .options
        .wscale = Some(7);
    v.c(5_002 * MS, 1, 1, ACK, 502, 0);
    check(
        "reused",
        &v.segs,
        &[(7, &[ReusedPorts]), (8, &[]), (9, &[])],
    );
}

#[test]
fn a_corrupted_checksum_is_noticed() {
    // The checksum assertion above can fail: flip a payload byte and tshark must complain.
    if !tshark_available() {
        return;
    }
    let mut v = Conv::new();
    v.handshake();
    v.c(10 * MS, 1, 1, PA, 502, 100);
    let path = write_pcap("corrupt", &v.segs);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let result = std::panic::catch_unwind(|| assert_clean(&path));
    assert!(
        result.is_err(),
        "tshark did not report the corrupted TCP checksum"
    );
}

/// A messy connection generated from a seed: losses (segments missing from the capture),
/// reordering, retransmissions, keep-alives, zero windows and probes, window changes,
/// duplicate ACKs, data both ways. Not a TCP model: a source of varied segment sequences.
fn messy_connection(seed: u64, port: u16, t0: u64) -> Vec<(u64, Segment)> {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut r = |n: u64| rng.next_u64() % n;
    let mut v = Conv::new();
    v.c.set_port(port);
    v.c_isn = (seed as u32).wrapping_mul(0x9e37_79b9);
    v.s_isn = v.c_isn ^ 0xa5a5_5a5a;
    let ws = if r(4) == 0 { None } else { Some(r(15) as u8) };
    v.c(t0, 0, 0, Flags::SYN, 64240, 0).options.wscale = ws;
    let mut t = t0 + 1 + r(3 * MS);
    v.s(t, 0, 1, Flags::SYN | ACK, 65160, 0).options.wscale = ws.map(|_| r(15) as u8);
    t += 1 + r(3 * MS);
    v.c(t, 1, 1, ACK, 502, 0);
    let (mut snd_nxt, mut snd_una, mut srv_nxt) = (1u32, 1u32, 1u32);
    let mut sent: Vec<(u32, u32)> = vec![]; // client segments (seq, len) sent, captured or not
    let mut rcv_nxt = 1u32; // server's cumulative ACK point
    let mut held: Option<(u32, u32)> = None; // a segment to be captured late (reordered)
    let mut srv_win: u16 = 500;
    let steps = 40 + r(80);
    for _ in 0..steps {
        t += [10_000, 100_000, MS, 5 * MS, 40 * MS, 300 * MS][r(6) as usize];
        match r(12) {
            0..=3 => {
                let len = 1 + r(1448) as u32;
                let seq = snd_nxt;
                snd_nxt = snd_nxt.wrapping_add(len);
                sent.push((seq, len));
                match r(10) {
                    0 => {} // lost before the capture point
                    1 if held.is_none() => held = Some((seq, len)),
                    _ => {
                        v.c(t, seq, srv_nxt, PA, 502, len);
                        if seq == rcv_nxt {
                            rcv_nxt = seq.wrapping_add(len);
                        }
                    }
                }
                if r(2) == 0 {
                    if let Some((hs, hl)) = held.take() {
                        t += r(MS);
                        v.c(t, hs, srv_nxt, PA, 502, hl);
                    }
                }
            }
            4 | 5 => {
                srv_win = match r(5) {
                    0 => 0,
                    1 => srv_win.saturating_add(r(100) as u16),
                    _ => srv_win,
                };
                v.s(t, srv_nxt, rcv_nxt, ACK, srv_win, 0);
                snd_una = rcv_nxt;
            }
            6 => {
                // Retransmit the oldest unacknowledged segment.
                if let Some(&(seq, len)) = sent
                    .iter()
                    .find(|(s, l)| tcpsim::tcp::segment::seq_gt(s.wrapping_add(*l), snd_una))
                {
                    v.c(t, seq, srv_nxt, PA, 502, len);
                    if seq == rcv_nxt {
                        rcv_nxt = seq.wrapping_add(len);
                    }
                }
            }
            7 => {
                let len = r(2) as u32;
                v.c(t, snd_una.wrapping_sub(1), srv_nxt, ACK, 502, len);
            }
            8 => {
                v.c(t, snd_nxt, srv_nxt, PA, 502, 1);
            }
            9 => {
                let len = 1 + r(200) as u32;
                v.s(t, srv_nxt, rcv_nxt, PA, srv_win, len);
                srv_nxt = srv_nxt.wrapping_add(len);
                snd_una = rcv_nxt;
            }
            10 => {
                v.s(t, srv_nxt, rcv_nxt, ACK, srv_win, 0);
                v.s(t + 1000, srv_nxt, rcv_nxt, ACK, srv_win, 0);
            }
            _ => {
                v.c(t, snd_nxt, srv_nxt, ACK, 502 + r(3) as u16, 0);
            }
        }
    }
    if r(2) == 0 {
        v.c(t + MS, snd_nxt, srv_nxt, Flags::FIN | ACK, 502, 0);
        v.s(
            t + 2 * MS,
            srv_nxt,
            snd_nxt.wrapping_add(1),
            Flags::FIN | ACK,
            srv_win,
            0,
        );
    }
    v.segs
}

#[test]
fn messy_connections_agree_with_tshark() {
    if !tshark_available() {
        return;
    }
    let mut segs = vec![];
    for seed in 0..40u64 {
        segs.extend(messy_connection(
            seed,
            50_000 + seed as u16,
            seed * 100_000 * MS,
        ));
    }
    segs.sort_by_key(|(t, _)| *t);
    let ours = label_segments(&segs);
    let path = write_pcap("messy", &segs);
    assert_clean(&path);
    let theirs = tshark_labels(&path);
    assert_eq!(theirs.len(), segs.len());
    let mut diffs = vec![];
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            diffs.push(format!(
                "frame {} ({}): ours {a:?}, tshark {b:?}",
                i + 1,
                segs[i].1.summary()
            ));
        }
    }
    let labelled = ours.iter().filter(|l| !l.is_empty()).count();
    assert!(
        labelled > segs.len() / 10,
        "the generator should produce many labelled segments ({labelled})"
    );
    assert!(
        diffs.is_empty(),
        "{} of {} frames differ:\n{}",
        diffs.len(),
        segs.len(),
        diffs.join("\n")
    );
}

/// Without tshark, its checks skip and say so, unless CI requires them: then they fail.
#[test]
fn a_missing_tshark_fails_when_required() {
    assert!(tshark_support::skip_or_fail(true, Some("1")));
    assert!(!tshark_support::skip_or_fail(false, None));
    let required = std::panic::catch_unwind(|| tshark_support::skip_or_fail(false, Some("1")));
    assert!(required.is_err(), "TCPSIM_REQUIRE_TSHARK=1 turns the skip into a failure");
}
