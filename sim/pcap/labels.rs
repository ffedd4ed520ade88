//! tcpsim's own analysis labels, following Wireshark's TCP sequence analysis
//! (epan/dissectors/packet-tcp.c `tcp_analyze_sequence_number`), computed from the segments
//! alone with per-direction state, so that a segment tcpsim calls a keep-alive is one that
//! Wireshark's `tcp.analysis.keep_alive` marks, and so on.
//!
//! The checks run in Wireshark's order and share its early exits (a zero-window probe is
//! nothing else; a keep-alive ACK or zero-window-probe ACK is not also a duplicate ACK; a
//! keep-alive is never a retransmission). As in Wireshark's display filters, a fast or
//! spurious retransmission also carries [`Label::Retransmission`].
//!
//! Wireshark's windows in this analysis are the raw header values; only the window-full
//! check scales them.
//!
//! The rules are those of Wireshark 4.0, the tshark Debian 12 ships and CI checks against
//! (`tests/pcap_tshark.rs`). Later versions flag ACKed-unseen-segment once per stall rather
//! than once per gap.

use crate::tcp::segment::{seq_gt, seq_le, seq_lt, Flags, Segment};
use std::collections::BTreeMap;
use crate::addr::SockAddr;

/// One `tcp.analysis.*` flag.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    Retransmission,
    FastRetransmission,
    SpuriousRetransmission,
    ZeroWindow,
    ZeroWindowProbe,
    ZeroWindowProbeAck,
    KeepAlive,
    KeepAliveAck,
    WindowUpdate,
    WindowFull,
    DupAck,
    OutOfOrder,
    LostSegment,
    AckLostSegment,
    ReusedPorts,
}

impl Label {
    pub const ALL: [Label; 15] = [
        Label::Retransmission,
        Label::FastRetransmission,
        Label::SpuriousRetransmission,
        Label::ZeroWindow,
        Label::ZeroWindowProbe,
        Label::ZeroWindowProbeAck,
        Label::KeepAlive,
        Label::KeepAliveAck,
        Label::WindowUpdate,
        Label::WindowFull,
        Label::DupAck,
        Label::OutOfOrder,
        Label::LostSegment,
        Label::AckLostSegment,
        Label::ReusedPorts,
    ];

    /// The Wireshark display-filter field that marks the same segments.
    pub fn wireshark_field(self) -> &'static str {
        match self {
            Label::Retransmission => "tcp.analysis.retransmission",
            Label::FastRetransmission => "tcp.analysis.fast_retransmission",
            Label::SpuriousRetransmission => "tcp.analysis.spurious_retransmission",
            Label::ZeroWindow => "tcp.analysis.zero_window",
            Label::ZeroWindowProbe => "tcp.analysis.zero_window_probe",
            Label::ZeroWindowProbeAck => "tcp.analysis.zero_window_probe_ack",
            Label::KeepAlive => "tcp.analysis.keep_alive",
            Label::KeepAliveAck => "tcp.analysis.keep_alive_ack",
            Label::WindowUpdate => "tcp.analysis.window_update",
            Label::WindowFull => "tcp.analysis.window_full",
            Label::DupAck => "tcp.analysis.duplicate_ack",
            Label::OutOfOrder => "tcp.analysis.out_of_order",
            Label::LostSegment => "tcp.analysis.lost_segment",
            Label::AckLostSegment => "tcp.analysis.ack_lost_segment",
            Label::ReusedPorts => "tcp.analysis.reused_ports",
        }
    }
}

/// Window scale as Wireshark tracks it: unknown until the handshake says.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Scale {
    Unknown,
    /// The handshake showed scaling is not in use.
    Off,
    Shift(u8),
}

/// What one direction of a connection has shown (Wireshark's `tcp_flow_t` and
/// `tcp_analyze_seq_flow_info_t`, only the fields the labels need). A sequence value of 0
/// means "not seen yet", as in Wireshark.
#[derive(Clone, Debug)]
struct Flow {
    /// The ISN this direction is known by: its SYN's sequence number, else one before its
    /// first segment's, else one before the first ACK the other direction sent.
    base_seq: Option<u32>,
    scale: Scale,
    /// Last raw window sent in this direction.
    window: u32,
    /// Whether `window` came from a SYN.
    window_from_syn: bool,
    nextseq: u32,
    nextseq_time: u64,
    lastack: u32,
    lastack_time: u64,
    maxseqtobeacked: u32,
    /// Duplicate ACKs counted since the ACK number last changed.
    dupacknum: u32,
    /// Labels of the last segment sent in this direction.
    last_labels: Vec<Label>,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            base_seq: None,
            scale: Scale::Unknown,
            window: 0,
            window_from_syn: false,
            nextseq: 0,
            nextseq_time: 0,
            lastack: 0,
            lastack_time: 0,
            maxseqtobeacked: 0,
            dupacknum: 0,
            last_labels: Vec::new(),
        }
    }
}

/// One connection (Wireshark's `tcp_analysis`): flow 0 is sent by the lower endpoint.
#[derive(Clone, Debug)]
struct Conn {
    flows: [Flow; 2],
    /// Capture time of the most recent pure SYN (`ts_mru_syn`), in ns. Wireshark's
    /// `nstime_t` zero means "none", so a SYN captured at the epoch (as tcpsim's pcaps,
    /// whose clock starts at 0, have it) arms nothing.
    ts_mru_syn: u64,
    /// The handshake RTT (`ts_first_rtt`): from `ts_mru_syn` to the first later segment
    /// with ACK and without SYN, in ns, signed as `nstime_delta` makes it; 0 means unknown,
    /// and a zero delta leaves it unknown. Wireshark's out-of-order threshold.
    first_rtt: i64,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            flows: [Flow::new(), Flow::new()],
            ts_mru_syn: 0,
            first_rtt: 0,
        }
    }

    /// The out-of-order threshold (`ooo_thres` in `tcp_analyze_sequence_number`): the
    /// handshake RTT, or 3 ms while it is zero. Wireshark adds the RTT's signed seconds and
    /// nanoseconds into a `guint64`, so a negative RTT (capture times going backwards)
    /// wraps to a huge threshold.
    fn ooo_threshold(&self) -> u64 {
        if self.first_rtt == 0 {
            OOO_THRESHOLD_NS
        } else {
            self.first_rtt as u64
        }
    }

    /// `dissect_tcp`'s handshake-RTT bookkeeping, which runs after the sequence analysis
    /// of the same segment: a pure SYN records its time in `ts_mru_syn`; a segment with
    /// ACK and without SYN, while `ts_mru_syn` is non-zero and `ts_first_rtt` zero, sets
    /// `ts_first_rtt = now - ts_mru_syn`. Both tests are `nstime_is_zero`.
    fn track_first_rtt(&mut self, t: u64, flags: Flags) {
        let syn = flags.contains(Flags::SYN);
        let ack = flags.contains(Flags::ACK);
        if syn && !ack {
            self.ts_mru_syn = t;
        }
        if ack && !syn && self.ts_mru_syn != 0 && self.first_rtt == 0 {
            self.first_rtt = t.wrapping_sub(self.ts_mru_syn) as i64;
        }
    }
}

/// Wireshark's out-of-order threshold when the handshake RTT is unknown: 3 ms.
const OOO_THRESHOLD_NS: u64 = 3_000_000;
/// A retransmission within 20 ms of the second duplicate ACK is a fast retransmission.
const FAST_RETRANS_NS: u64 = 20_000_000;

/// The labels of each segment, `segs` being (capture time in ns, segment) in capture order.
pub fn label_segments(segs: &[(u64, Segment)]) -> Vec<Vec<Label>> {
    let mut conns: BTreeMap<(SockAddr, SockAddr), Conn> = BTreeMap::new();
    segs.iter()
        .map(|(t, seg)| {
            let (key, dir) = if (seg.src.ip(), seg.src.port()) <= (seg.dst.ip(), seg.dst.port()) {
                ((seg.src, seg.dst), 0)
            } else {
                ((seg.dst, seg.src), 1)
            };
            let conn = conns.entry(key).or_insert_with(Conn::new);
            let mut labels = Vec::new();
            // Reused ports (packet-tcp.c `dissect_tcp`): a SYN whose ISN differs from the
            // one this direction is known by starts a new conversation on the same ports.
            let f = &conn.flows[dir];
            let pure_syn = seg.flags.contains(Flags::SYN) && !seg.flags.contains(Flags::ACK);
            if pure_syn && f.base_seq.is_some_and(|base| base != seg.seq) {
                *conn = Conn::new();
                labels.push(Label::ReusedPorts);
            }
            analyze(conn, dir, *t, seg, &mut labels);
            labels.sort();
            labels.dedup();
            labels
        })
        .collect()
}

/// `tcp_analyze_sequence_number` for one segment sent in direction `dir`.
fn analyze(conn: &mut Conn, dir: usize, t: u64, seg: &Segment, labels: &mut Vec<Label>) {
    let flags = seg.flags;
    let (seq, ack) = (seg.seq, seg.ack);
    let seglen = seg.payload.len();
    let window = u32::from(seg.window);
    let syn_fin_rst = flags.intersects(Flags::SYN | Flags::FIN | Flags::RST);
    window_scaling(conn, dir, seg);
    let ooo_threshold = conn.ooo_threshold();
    let [a, b] = &mut conn.flows;
    let (fwd, rev) = if dir == 0 { (a, b) } else { (b, a) };

    if fwd.base_seq.is_none() {
        fwd.base_seq = Some(if flags.contains(Flags::SYN) {
            seq
        } else {
            seq.wrapping_sub(1)
        });
    }
    if rev.base_seq.is_none() && flags.contains(Flags::ACK) {
        rev.base_seq = Some(ack.wrapping_sub(1));
    }

    'fwd: {
        // Zero-window probe: exactly one byte at the next expected sequence number while
        // the peer advertises a zero window. Nothing else is checked.
        if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
            labels.push(Label::ZeroWindowProbe);
            break 'fwd;
        }
        if window == 0 && !syn_fin_rst {
            labels.push(Label::ZeroWindow);
        }
        // Lost segment: beyond the highest sequence number seen ("previous segment not captured").
        if fwd.nextseq != 0 && seq_gt(seq, fwd.nextseq) && !flags.contains(Flags::RST) {
            labels.push(Label::LostSegment);
        }
        // Keep-alive: 0 or 1 byte one before the next expected sequence number
        // (tcp_timer.c `tcp_keepalive_timer` sends snd_una - 1).
        if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && !syn_fin_rst {
            labels.push(Label::KeepAlive);
        }
        let same_seq_ack = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && !syn_fin_rst;
        if same_seq_ack && window != 0 && window != fwd.window {
            labels.push(Label::WindowUpdate);
        }
        if seglen > 0 && rev.scale != Scale::Unknown && !syn_fin_rst {
            // A window taken from a SYN is never scaled (RFC 7323 §2.2; Wireshark's
            // `is_first_ack`).
            let shift = match rev.scale {
                Scale::Shift(s) if !rev.window_from_syn => u32::from(s),
                _ => 0,
            };
            let edge = rev
                .lastack
                .wrapping_add(rev.window.checked_shl(shift).unwrap_or(0));
            if seq.wrapping_add(seglen) == edge {
                labels.push(Label::WindowFull);
            }
        }
        if same_seq_ack
            && window != 0
            && window == fwd.window
            && rev.last_labels.contains(&Label::KeepAlive)
        {
            labels.push(Label::KeepAliveAck);
            break 'fwd;
        }
        if same_seq_ack
            && window == 0
            && fwd.window == 0
            && rev.last_labels.contains(&Label::ZeroWindowProbe)
        {
            labels.push(Label::ZeroWindowProbeAck);
            break 'fwd;
        }
        if same_seq_ack && window != 0 && window == fwd.window {
            fwd.dupacknum += 1;
            labels.push(Label::DupAck);
        }
    }

    if ack != fwd.lastack {
        fwd.dupacknum = 0;
    }

    // ACKed unseen segment: acknowledges beyond the highest contiguous sequence number the
    // other direction was seen to send; flagged once per gap.
    if rev.maxseqtobeacked != 0 && seq_gt(ack, rev.maxseqtobeacked) && flags.contains(Flags::ACK) {
        labels.push(Label::AckLostSegment);
        rev.maxseqtobeacked = rev.nextseq;
    }

    if seglen > 0 || flags.intersects(Flags::SYN | Flags::FIN) {
        retransmission_kind(fwd, rev, t, seq, seglen, flags, ooo_threshold, labels);
    }

    let mut nextseq = seq.wrapping_add(seglen);
    if flags.intersects(Flags::SYN | Flags::FIN) {
        nextseq = nextseq.wrapping_add(1);
    }
    let probe = labels.contains(&Label::ZeroWindowProbe);
    // A zero-window probe does not advance nextseq (the byte is not accepted).
    if (seq_gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !probe {
        fwd.nextseq = nextseq;
        fwd.nextseq_time = t;
    }
    if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !probe {
        fwd.maxseqtobeacked = fwd.nextseq;
    }
    fwd.window = window;
    fwd.window_from_syn = flags.contains(Flags::SYN);
    fwd.lastack = ack;
    fwd.lastack_time = t;
    fwd.last_labels = labels.clone();
    conn.track_first_rtt(t, flags);
}

/// Retransmission, fast retransmission, spurious retransmission or out-of-order, for a
/// segment that occupies sequence space.
#[allow(clippy::too_many_arguments)]
fn retransmission_kind(
    fwd: &Flow,
    rev: &Flow,
    t: u64,
    seq: u32,
    seglen: u32,
    flags: Flags,
    ooo_threshold: u64,
    labels: &mut Vec<Label>,
) {
    if labels.contains(&Label::KeepAlive) {
        return;
    }
    let mut seq_not_advanced = fwd.nextseq != 0 && seq_lt(seq, fwd.nextseq);
    // More than one byte starting just below nextseq: new data after a zero-window probe.
    if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
        seq_not_advanced = false;
    }
    // Spurious: every byte was already acknowledged by the other side.
    if seglen > 0 && rev.lastack != 0 && seq_le(seq.wrapping_add(seglen), rev.lastack) {
        labels.extend([Label::SpuriousRetransmission, Label::Retransmission]);
        return;
    }
    if seq_not_advanced
        && rev.dupacknum >= 2
        && rev.lastack == seq
        && t.wrapping_sub(rev.lastack_time) < FAST_RETRANS_NS
    {
        labels.extend([Label::FastRetransmission, Label::Retransmission]);
        return;
    }
    let end = seq
        .wrapping_add(seglen)
        .wrapping_add(flags.intersects(Flags::SYN | Flags::FIN) as u32);
    if seq_not_advanced && t.wrapping_sub(fwd.nextseq_time) < ooo_threshold && fwd.nextseq != end {
        labels.push(Label::OutOfOrder);
        return;
    }
    if seq_not_advanced {
        labels.push(Label::Retransmission);
    }
}

/// Window scaling, as `dissect_tcp` records it from the handshake.
fn window_scaling(conn: &mut Conn, dir: usize, seg: &Segment) {
    let flags = seg.flags;
    if flags.contains(Flags::SYN) {
        // verify_tcp_window_scaling: a SYN without WS turns scaling off both ways.
        let rev_scale = conn.flows[1 - dir].scale;
        match seg.options.wscale {
            Some(ws) => conn.flows[dir].scale = Scale::Shift(ws.min(14)),
            None if conn.flows[dir].scale == Scale::Unknown => {
                conn.flows[dir].scale = Scale::Off;
                conn.flows[1 - dir].scale = Scale::Off;
            }
            None => {}
        }
        if flags.contains(Flags::ACK) && rev_scale == Scale::Off {
            conn.flows[dir].scale = Scale::Off;
        }
    }
}
