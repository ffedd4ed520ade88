//! Segment-by-segment comparison of what the model sent with what the kernel sent, as
//! packetdrill holds a script's outbound packets against the stack: flags, sequence and
//! acknowledgment numbers relative to each side's initial sequence number, payload length,
//! window after scaling, options (not TS values, which are clocks), and time within
//! max(4 ms, 12.5 % of the gap since the previous packet) (packetdrill's default
//! `--tolerance_usecs=4000` and its `--tolerance_percent`). Where packetdrill stops at the
//! first unexpected packet, the comparison resynchronises and goes on (unless `--first`), so
//! that one difference does not hide the recovery, persist or close behaviour behind it.

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

/// What kind of difference a divergence is, worst first: a report's "worst" divergence is
/// the one of the earliest class here.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Sequence number, acknowledgment number or length differ: the model's byte stream or
    /// its view of the peer's is not the kernel's.
    Sequence,
    /// The kernel sent the segment, the model nothing that corresponds.
    Missing,
    /// The model sent a segment, while the capture was running, that the kernel did not.
    Extra,
    /// The same segment but for its flags (e.g. PSH).
    Flags,
    /// The same segment but for its options (negotiated values, presence of timestamps, SACK
    /// blocks).
    Options,
    /// The same segment but for the window it offers.
    Window,
    /// The same segment, sent outside the time tolerance.
    Time,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Sequence => "sequence",
            Class::Missing => "missing",
            Class::Extra => "extra",
            Class::Flags => "flags",
            Class::Options => "options",
            Class::Window => "window",
            Class::Time => "time",
        }
    }

    /// The class of a pair of segments that differ in `fields` (the worst one decides).
    fn of(fields: &[&str]) -> Class {
        let has = |f: &[&str]| fields.iter().any(|x| f.contains(x));
        if has(&["seq", "ack", "length"]) {
            Class::Sequence
        } else if has(&["flags"]) {
            Class::Flags
        } else if has(&["options"]) {
            Class::Options
        } else if has(&["window"]) {
            Class::Window
        } else {
            Class::Time
        }
    }

    /// Whether `--first` stops here: the classes the comparison stopped at before it
    /// resynchronised (a window, options or time difference never stopped it).
    pub fn stops_first(self) -> bool {
        matches!(self, Class::Sequence | Class::Missing | Class::Extra | Class::Flags)
    }
}

/// One segment on which the model and the capture disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// Index of the connection in the capture.
    pub connection: usize,
    /// Index of the segment among those the system under test sent on this connection in the
    /// capture; for an `extra` one, among those the model sent.
    pub segment: usize,
    pub class: Class,
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
    /// Captured SUT segments compared: paired with a model segment, or found missing.
    pub segments_compared: usize,
    /// Of those, the ones the model sent alike.
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
    /// Stop at the first divergence that [`Class::stops_first`] (`--first`).
    pub first: bool,
}

/// How far ahead [`resync`] looks in each sequence for the next pair of segments that
/// correspond.
const RESYNC_WINDOW: usize = 8;

/// What makes two segments the same segment, whatever their window, options and time:
/// flags but PSH (which Linux sets by skb, not by segment), and the relative numbers.
#[derive(Clone, PartialEq, Eq)]
struct Key {
    flags: String,
    seq: u32,
    ack: u32,
    length: u32,
}

impl Key {
    fn of(v: &SegmentView) -> Key {
        Key { flags: v.flags.replace('P', ""), seq: v.rel_seq, ack: v.rel_ack, length: v.length }
    }
}

/// Where the two sequences correspond again, from the pair `(0, 0)` that does not: the
/// nearest `(a, b)` (fewest segments skipped, a balanced skip first) with `captured[a]`
/// the same segment as `model[b]`. `None` when no such pair is within [`RESYNC_WINDOW`].
fn resync(captured: &[Key], model: &[Key]) -> Option<(usize, usize)> {
    resync_order().iter().copied().find(|&(a, b)| matches!((captured.get(a), model.get(b)), (Some(c), Some(m)) if c == m))
}

/// The skips [`resync`] tries, in order: fewest segments skipped first, then the most
/// balanced, then more of the kernel's (computed once: a diverged replay tries them at each
/// segment).
fn resync_order() -> &'static [(usize, usize)] {
    static ORDER: std::sync::OnceLock<Vec<(usize, usize)>> = std::sync::OnceLock::new();
    ORDER.get_or_init(|| {
        let w = RESYNC_WINDOW;
        let mut skips: Vec<(usize, usize)> = (0..=w).flat_map(|a| (0..=w).map(move |b| (a, b))).filter(|&s| s != (0, 0)).collect();
        skips.sort_by_key(|&(a, b)| (a + b, a.abs_diff(b), std::cmp::Reverse(a)));
        skips
    })
}

/// Compares the two sequences in order, resynchronising after a difference: a pair that is
/// the same segment (same [`Key`]) is compared field by field; where they are not, the
/// comparison looks ahead for where they are again ([`resync`]) and reports what lies
/// between as missing (the kernel's) and extra (the model's), a balanced part pair by pair;
/// where they never are again, it pairs them in order. The model is not altered: it keeps
/// running on the peer's captured segments, which carry the kernel's acknowledgments.
pub fn compare_connection(connection: usize, s: &Sides) -> ConnComparison {
    let cap: Vec<(SegmentView, Dur)> = s.captured.iter().map(|(t, gap)| (SegmentView::of(t, s.captured_spaces), tolerance(*gap))).collect();
    let model: Vec<SegmentView> = s.model.iter().map(|m| SegmentView::of(m, s.model_spaces)).collect();
    let cap_keys: Vec<Key> = cap.iter().map(|(v, _)| Key::of(v)).collect();
    let model_keys: Vec<Key> = model.iter().map(Key::of).collect();
    let end = s.capture_end.as_nanos();
    let mut out = ConnComparison::default();
    let (mut i, mut j) = (0, 0);
    loop {
        let step = match (cap.get(i), model.get(j)) {
            (None, None) => break,
            (None, Some(m)) if m.t_ns > end => break,
            (Some(_), None) => Step::Missing,
            (None, Some(_)) => Step::Extra,
            (Some(_), Some(_)) if cap_keys[i] == model_keys[j] => Step::Pair,
            (Some(_), Some(_)) => match resync(&cap_keys[i..], &model_keys[j..]) {
                Some((a, b)) if a > 0 && b > 0 => Step::Pair,
                Some((a, _)) if a > 0 => Step::Missing,
                Some(_) => Step::Extra,
                None => Step::Pair,
            },
        };
        let divergence = match step {
            Step::Pair => {
                let (c, tol) = &cap[i];
                let m = &model[j];
                let mut fields = c.differences(m);
                if c.t_ns.abs_diff(m.t_ns) > tol.as_nanos() {
                    fields.push("time");
                }
                out.segments_compared += 1;
                let d = (!fields.is_empty()).then(|| Divergence {
                    connection,
                    segment: i,
                    class: Class::of(&fields),
                    fields,
                    captured: Some(c.clone()),
                    model: Some(m.clone()),
                    tolerance_ns: tol.as_nanos(),
                });
                out.segments_matched += usize::from(d.is_none());
                (i, j) = (i + 1, j + 1);
                d
            }
            Step::Missing => {
                let (c, tol) = &cap[i];
                out.segments_compared += 1;
                i += 1;
                Some(Divergence {
                    connection,
                    segment: i - 1,
                    class: Class::Missing,
                    fields: vec!["missing"],
                    captured: Some(c.clone()),
                    model: None,
                    tolerance_ns: tol.as_nanos(),
                })
            }
            Step::Extra => {
                j += 1;
                // A model segment sent after the capture stopped could not have been seen.
                (model[j - 1].t_ns <= end).then(|| Divergence {
                    connection,
                    segment: j - 1,
                    class: Class::Extra,
                    fields: vec!["extra"],
                    captured: None,
                    model: Some(model[j - 1].clone()),
                    tolerance_ns: 0,
                })
            }
        };
        if let Some(d) = divergence {
            let stop = s.first && d.class.stops_first();
            out.divergences.push(d);
            if stop {
                break;
            }
        }
    }
    out
}

/// One step of [`compare_connection`].
enum Step {
    Pair,
    Missing,
    Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Ecn, Payload, TcpOptions};

    fn seg(seq: u32, ack: u32, flags: Flags, window: u16) -> Segment {
        Segment {
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            seq,
            ack,
            flags,
            ecn: Ecn::NotEct,
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

    fn sides<'a>(captured: &'a [(Timed, Dur)], model: &'a [Timed], first: bool) -> Sides<'a> {
        let sp = Spaces::default();
        Sides { captured, captured_spaces: sp, model, model_spaces: sp, capture_end: SimTime::ZERO + Dur::from_secs(1), first }
    }

    fn found(c: &ConnComparison) -> Vec<(usize, Class, Vec<&'static str>)> {
        c.divergences.iter().map(|d| (d.segment, d.class, d.fields.clone())).collect()
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
            at(300, seg(8, 51, Flags::ACK, 64)), // ack differs, and never corresponds again
            at(400, seg(9, 52, Flags::ACK, 64)), // no FIN
        ];
        let mut s = sides(&captured, &model, false);
        (s.captured_spaces, s.model_spaces) = (cap_sp, mod_sp);
        let c = compare_connection(0, &s);
        assert_eq!((c.segments_compared, c.segments_matched), (4, 1));
        assert_eq!(
            found(&c),
            [(1, Class::Window, vec!["window", "time"]), (2, Class::Sequence, vec!["ack"]), (3, Class::Flags, vec!["flags"])]
        );
        // --first: the sequence difference stops it, the window and time one did not.
        s.first = true;
        let c = compare_connection(0, &s);
        assert_eq!((c.segments_compared, c.segments_matched), (3, 1));
        assert_eq!(found(&c).len(), 2);
    }

    #[test]
    fn after_a_missing_or_an_extra_segment_the_comparison_resynchronises() {
        let data = |ms, seq, flags| at(ms, Segment { payload: Payload::Bytes(vec![0; 10].into()), ..seg(seq, 1, flags, 1) });
        let captured: Vec<(Timed, Dur)> = [
            data(0, 1, Flags::ACK | Flags::PSH),
            data(10, 11, Flags::ACK),
            data(20, 21, Flags::ACK | Flags::PSH),
            data(30, 31, Flags::ACK | Flags::PSH),
        ]
        .into_iter()
        .map(|t| (t, Dur::from_millis(10)))
        .collect();
        // The model sends no second segment, an extra ACK before the fourth, and the third
        // without PSH: each is reported once, and everything else matches.
        let model = vec![
            data(0, 1, Flags::ACK | Flags::PSH),
            data(20, 21, Flags::ACK),
            at(25, seg(31, 1, Flags::ACK, 1)),
            data(30, 31, Flags::ACK | Flags::PSH),
        ];
        let c = compare_connection(0, &sides(&captured, &model, false));
        assert_eq!(
            found(&c),
            [(1, Class::Missing, vec!["missing"]), (2, Class::Flags, vec!["flags"]), (2, Class::Extra, vec!["extra"])]
        );
        assert_eq!((c.segments_compared, c.segments_matched), (4, 2));
        let c = compare_connection(0, &sides(&captured, &model, true));
        assert_eq!(found(&c), [(1, Class::Missing, vec!["missing"])], "--first stops at the first");
        assert_eq!(c.segments_compared, 2);
    }

    #[test]
    fn missing_and_extra_segments_diverge_but_not_after_the_capture_ended() {
        let captured = vec![(at(0, seg(1, 1, Flags::ACK, 1)), Dur::ZERO)];
        let sp = Spaces::default();
        let none: Vec<Timed> = Vec::new();
        let end = SimTime::ZERO + Dur::from_millis(100);
        let sides = |model| Sides { captured: &captured, captured_spaces: sp, model, model_spaces: sp, capture_end: end, first: false };
        let c = compare_connection(0, &sides(&none));
        assert_eq!(c.divergences[0].fields, ["missing"]);
        let model = vec![at(0, seg(1, 1, Flags::ACK, 1)), at(150, seg(1, 1, Flags::ACK, 1))];
        let c = compare_connection(0, &sides(&model));
        assert!(c.divergences.is_empty(), "a segment after the capture stopped is not compared");
        let model = vec![at(0, seg(1, 1, Flags::ACK, 1)), at(50, seg(1, 1, Flags::ACK, 1))];
        let c = compare_connection(0, &sides(&model));
        assert_eq!(c.divergences[0].fields, ["extra"]);
    }
}
