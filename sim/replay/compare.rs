//! Segment-by-segment comparison of what the model sent with what the kernel sent, as
//! packetdrill holds a script's outbound packets against the stack: flags, sequence and
//! acknowledgment numbers relative to each side's initial sequence number, payload length,
//! window after scaling, options (not TS values, which are clocks), and time within
//! max(4 ms, 12.5 % of the gap since the previous packet) (packetdrill's default
//! `--tolerance_usecs=4000` and its `--tolerance_percent`).

use crate::tcp::segment::{Flags, Segment};
use crate::time::{Dur, SimTime};
use serde::Serialize;

/// The absolute floor of the time tolerance (packetdrill's `tolerance_usecs` default).
pub const TOLERANCE_ABS: Dur = Dur::from_millis(4);
/// The relative tolerance, as a fraction of the gap since the previous packet: 1/8.
pub const TOLERANCE_REL_DIV: u64 = 8;

/// How far the model may be from the kernel for a segment sent `gap` after the previous
/// packet of its connection.
pub fn tolerance(gap: Dur) -> Dur {
    Dur::from_nanos((gap.as_nanos() / TOLERANCE_REL_DIV).max(TOLERANCE_ABS.as_nanos()))
}

/// A segment at its time on the replay's timeline.
#[derive(Clone, Debug)]
pub struct Timed {
    pub t: SimTime,
    pub seg: Segment,
}

/// What relative numbers are relative to, on one side of the comparison (the capture's or
/// the model's): the ISNs of the system under test and of its peer, and the window scale the
/// SUT's non-SYN windows are shifted by (RFC 7323 §2.3: only when both SYNs carried it).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Spaces {
    pub sut_isn: u32,
    pub peer_isn: u32,
    pub sut_wscale: u8,
}

impl Spaces {
    /// From the SYNs each side sent; without a SYN, numbers stay absolute (e.g. the RST a
    /// closed port answers a SYN with carries `seq 0`).
    pub fn of<'a>(sut: impl IntoIterator<Item = &'a Segment>, peer: impl IntoIterator<Item = &'a Segment>) -> Spaces {
        let is_syn = |s: &&Segment| s.flags.contains(Flags::SYN);
        let sut_syn = sut.into_iter().find(is_syn);
        let peer_syn = peer.into_iter().find(is_syn);
        let scale = match (sut_syn.as_ref().and_then(|s| s.options.wscale), peer_syn.as_ref().and_then(|s| s.options.wscale)) {
            (Some(w), Some(_)) => w.min(14),
            _ => 0,
        };
        Spaces {
            sut_isn: sut_syn.map_or(0, |s| s.seq),
            peer_isn: peer_syn.map_or(0, |s| s.seq),
            sut_wscale: scale,
        }
    }
}

/// The options as compared: values that are negotiated, and the presence of timestamps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OptionsView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
    /// SACK blocks relative to the peer's ISN.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sack: Vec<(u32, u32)>,
}

/// One segment as the comparison sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentView {
    /// Time on the replay's timeline (ns).
    pub t_ns: u64,
    /// tcpdump-style line with the absolute numbers.
    pub summary: String,
    pub flags: String,
    pub rel_seq: u32,
    /// Relative ack (0 when the ACK flag is off).
    pub rel_ack: u32,
    pub length: u32,
    /// The window in bytes, after scaling.
    pub window: u32,
    pub options: OptionsView,
}

impl SegmentView {
    pub fn of(t: &Timed, sp: Spaces) -> SegmentView {
        let s = &t.seg;
        let shift = if s.flags.contains(Flags::SYN) { 0 } else { sp.sut_wscale };
        let o = &s.options;
        SegmentView {
            t_ns: t.t.as_nanos(),
            summary: s.summary(),
            flags: s.flags.tcpdump(),
            rel_seq: s.seq.wrapping_sub(sp.sut_isn),
            rel_ack: if s.flags.contains(Flags::ACK) { s.ack.wrapping_sub(sp.peer_isn) } else { 0 },
            length: s.payload.len(),
            window: u32::from(s.window) << shift,
            options: OptionsView {
                mss: o.mss,
                wscale: o.wscale,
                sack_permitted: o.sack_permitted,
                timestamps: o.timestamps.is_some(),
                sack: o.sack.iter().map(|(l, r)| (l.wrapping_sub(sp.peer_isn), r.wrapping_sub(sp.peer_isn))).collect(),
            },
        }
    }

    /// The fields that differ, time aside.
    fn differences(&self, other: &SegmentView) -> Vec<&'static str> {
        let mut d = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                d.push(name);
            }
        };
        check("flags", self.flags != other.flags);
        check("seq", self.rel_seq != other.rel_seq);
        check("ack", self.rel_ack != other.rel_ack);
        check("length", self.length != other.length);
        check("window", self.window != other.window);
        check("options", self.options != other.options);
        d
    }
}

/// Fields after which the two segment sequences no longer line up, so comparing further
/// pairs would only repeat the first difference.
const STRUCTURAL: [&str; 6] = ["flags", "seq", "ack", "length", "missing", "extra"];

/// One segment on which the model and the capture disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// Index of the connection in the capture.
    pub connection: usize,
    /// Index of the segment among those the system under test sent on this connection.
    pub segment: usize,
    /// `flags`, `seq`, `ack`, `length`, `window`, `options`, `time`; `missing` (the model
    /// did not send it) or `extra` (the model sent more while the capture was running).
    pub fields: Vec<&'static str>,
    pub captured: Option<SegmentView>,
    pub model: Option<SegmentView>,
    /// The time tolerance that applied (ns).
    pub tolerance_ns: u64,
}

/// The comparison of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnComparison {
    pub segments_compared: usize,
    pub segments_matched: usize,
    pub divergences: Vec<Divergence>,
}

/// What the system under test sent on one connection, in the capture and in the model.
pub struct Sides<'a> {
    /// Captured SUT segments, each with the gap since the previous packet of the connection.
    pub captured: &'a [(Timed, Dur)],
    pub captured_spaces: Spaces,
    pub model: &'a [Timed],
    pub model_spaces: Spaces,
    /// When the capture stopped: later model segments were not observable, so not compared.
    pub capture_end: SimTime,
}

/// Compares in order. A difference in window, options or time keeps the two sequences
/// aligned and comparison goes on; any other stops it (as packetdrill stops at the first
/// unexpected packet).
pub fn compare_connection(connection: usize, s: &Sides) -> ConnComparison {
    let mut out = ConnComparison::default();
    let n = s.captured.len().max(s.model.iter().filter(|m| m.t <= s.capture_end).count());
    for i in 0..n {
        let cap = s.captured.get(i).map(|(t, gap)| (SegmentView::of(t, s.captured_spaces), tolerance(*gap)));
        let model = s.model.get(i).map(|m| SegmentView::of(m, s.model_spaces));
        let (fields, tol) = match (&cap, &model) {
            (Some((c, tol)), Some(m)) => {
                let mut f = c.differences(m);
                if c.t_ns.abs_diff(m.t_ns) > tol.as_nanos() {
                    f.push("time");
                }
                (f, *tol)
            }
            (Some((_, tol)), None) => (vec!["missing"], *tol),
            (None, Some(_)) => (vec!["extra"], Dur::ZERO),
            (None, None) => break,
        };
        out.segments_compared += 1;
        if fields.is_empty() {
            out.segments_matched += 1;
            continue;
        }
        let structural = fields.iter().any(|f| STRUCTURAL.contains(f));
        out.divergences.push(Divergence {
            connection,
            segment: i,
            fields,
            captured: cap.map(|(c, _)| c),
            model,
            tolerance_ns: tol.as_nanos(),
        });
        if structural {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Payload, TcpOptions};

    fn seg(seq: u32, ack: u32, flags: Flags, window: u16) -> Segment {
        Segment {
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            seq,
            ack,
            flags,
            window,
            options: TcpOptions::default(),
            payload: Payload::Empty,
        }
    }

    fn at(ms: u64, s: Segment) -> Timed {
        Timed { t: SimTime::ZERO + Dur::from_millis(ms), seg: s }
    }

    #[test]
    fn tolerance_is_four_ms_or_an_eighth_of_the_gap() {
        assert_eq!(tolerance(Dur::from_millis(10)), Dur::from_millis(4));
        assert_eq!(tolerance(Dur::from_millis(200)), Dur::from_millis(25));
    }

    #[test]
    fn relative_numbers_agree_across_isns_and_differences_are_named() {
        let cap_sp = Spaces { sut_isn: 1000, peer_isn: 50, sut_wscale: 2 };
        let mod_sp = Spaces { sut_isn: 7, peer_isn: 50, sut_wscale: 0 };
        let captured = vec![
            (at(0, seg(1001, 51, Flags::ACK, 16)), Dur::from_millis(1)),
            (at(200, seg(1001, 51, Flags::ACK, 16)), Dur::from_millis(200)),
            (at(300, seg(1001, 52, Flags::ACK, 16)), Dur::from_millis(100)),
            (at(400, seg(1002, 52, Flags::ACK | Flags::FIN, 16)), Dur::from_millis(100)),
        ];
        let model = vec![
            at(3, seg(8, 51, Flags::ACK, 64)),   // same: 16 << 2 == 64, 3 ms late within 4 ms
            at(230, seg(8, 51, Flags::ACK, 32)), // window and 30 ms late (tolerance 25 ms)
            at(300, seg(8, 51, Flags::ACK, 64)), // ack differs: structural, comparison stops
            at(400, seg(9, 52, Flags::ACK, 64)),
        ];
        let sides = Sides {
            captured: &captured,
            captured_spaces: cap_sp,
            model: &model,
            model_spaces: mod_sp,
            capture_end: SimTime::ZERO + Dur::from_secs(1),
        };
        let c = compare_connection(0, &sides);
        assert_eq!((c.segments_compared, c.segments_matched), (3, 1));
        let f: Vec<_> = c.divergences.iter().map(|d| (d.segment, d.fields.clone())).collect();
        assert_eq!(f, [(1, vec!["window", "time"]), (2, vec!["ack"])]);
    }

    #[test]
    fn missing_and_extra_segments_diverge_but_not_after_the_capture_ended() {
        let captured = vec![(at(0, seg(1, 1, Flags::ACK, 1)), Dur::ZERO)];
        let sp = Spaces::default();
        let none: Vec<Timed> = Vec::new();
        let end = SimTime::ZERO + Dur::from_millis(100);
        let c = compare_connection(0, &Sides { captured: &captured, captured_spaces: sp, model: &none, model_spaces: sp, capture_end: end });
        assert_eq!(c.divergences[0].fields, ["missing"]);
        let model = vec![at(0, seg(1, 1, Flags::ACK, 1)), at(150, seg(1, 1, Flags::ACK, 1))];
        let c = compare_connection(0, &Sides { captured: &captured, captured_spaces: sp, model: &model, model_spaces: sp, capture_end: end });
        assert!(c.divergences.is_empty(), "a segment after the capture stopped is not compared");
        let model = vec![at(0, seg(1, 1, Flags::ACK, 1)), at(50, seg(1, 1, Flags::ACK, 1))];
        let c = compare_connection(0, &Sides { captured: &captured, captured_spaces: sp, model: &model, model_spaces: sp, capture_end: end });
        assert_eq!(c.divergences[0].fields, ["extra"]);
    }
}
