//! The replay's result: per connection and side, how many segments were compared and
//! matched and why the others were not, and every divergence with its class and both
//! segments; as text for people (a verdict line per connection, then details) and JSON for
//! tools.
//!
//! The verdict: every divergence known, and every segment the system under test sent
//! compared (coverage is part of it: a replay that checked part of the capture has not shown
//! the model explains it), unless the caller accepts a partial comparison (`--partial`).

use super::compare::{Class, ConnComparison, Divergence, SegmentView, Timed};
use super::{Recorded, Side};
use serde::Serialize;
use std::fmt::Write as _;
use crate::addr::SockAddr;

/// One connection replayed with one side as the system under test.
#[derive(Clone, Debug, Serialize)]
pub struct ConnReport {
    pub side: Side,
    /// Index of the connection in the capture (order of first packet).
    pub connection: usize,
    /// The system under test's endpoint, and its peer's.
    pub sut: String,
    pub peer: String,
    /// Segments the SUT sent in the capture.
    pub segments_captured: usize,
    /// Segments the model sent while the capture was running.
    pub segments_model: usize,
    /// Captured SUT segments compared (paired with a model segment, or found missing).
    pub segments_compared: usize,
    pub segments_matched: usize,
    pub divergences: usize,
    /// The captured SUT segments that were not compared, by reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<NotCompared>,
}

/// Captured segments of the system under test that were not compared, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotCompared {
    pub segments: usize,
    pub reason: String,
}

/// A divergence, with the side that was replayed.
#[derive(Clone, Debug, Serialize)]
pub struct DivergenceReport {
    pub side: Side,
    #[serde(flatten)]
    pub divergence: Divergence,
    /// Its cause, when the known-divergences file lists it (it then fails nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known: Option<String>,
    /// Whether it is in data or a FIN that an inferred application call produced: it may be
    /// the inference, not the kernel's behaviour, that differs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hangs_on_inference: bool,
}

/// An application call inferred from the trace, as listed in the report.
#[derive(Clone, Debug, Serialize)]
pub struct InferredCall {
    pub side: Side,
    /// Time on the replay's timeline (ns).
    pub t_ns: u64,
    pub sut: String,
    pub peer: String,
    pub call: String,
}

/// The whole replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub pcap: String,
    pub kernel: String,
    /// The observation log whose calls drove the SUT, if one lay beside the capture.
    pub observations: Option<String>,
    pub connections: Vec<ConnReport>,
    pub segments_compared: usize,
    pub segments_matched: usize,
    pub divergences: Vec<DivergenceReport>,
    /// The known-divergences file the divergences were looked up in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_file: Option<String>,
    /// TCP packets of the capture that could not be read (cut by the snaplen), by
    /// reason: whose segments they were is unknown, so the comparison is not complete.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread_tcp: Vec<NotCompared>,
    /// Whether every segment the system under test sent was compared.
    pub complete: bool,
    /// The application's calls, inferred from the capture (no observation log).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inferred: Vec<InferredCall>,
    /// The SUT's settings, given (`--set`) or shown by the trace, per side.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SideSetting>,
    /// Listeners the trace shows never accepted (no calls were inferred on their children).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub never_accepts: Vec<String>,
    /// Each connection's segments, when the replay was asked to keep them (`--plot`).
    #[serde(skip)]
    pub segments: Vec<ConnSegments>,
    /// The plots drawn of this replay (`--plot`), with what each holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plots: Vec<PlotMade>,
    /// The recorded `TCP_INFO` calls of the side under test, the kernel's answer beside the
    /// model's ([`super::info`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp_info: Vec<super::info::InfoSample>,
    #[serde(skip)]
    infers: bool,
}

/// One replayed connection's segments on the replay's timeline: what the side under test
/// sent in the capture (the kernel's) and in the replay while the capture ran (the model's,
/// as many as `segments_model` counts), and what its peer sent (captured; fed to the model).
#[derive(Clone, Debug)]
pub struct ConnSegments {
    pub side: Side,
    pub connection: usize,
    pub sut: SockAddr,
    pub peer: SockAddr,
    pub kernel: Vec<Timed>,
    pub model: Vec<Timed>,
    pub peer_segments: Vec<Timed>,
}

/// A plot file drawn of the replay (without its extension: `.svg` and `.png` were drawn)
/// and its marks, by kind.
#[derive(Clone, Debug, Serialize)]
pub struct PlotMade {
    pub file: String,
    pub marks: std::collections::BTreeMap<&'static str, usize>,
}

/// One of a side's settings, as listed in the report.
#[derive(Clone, Debug, Serialize)]
pub struct SideSetting {
    pub side: Side,
    #[serde(flatten)]
    pub setting: super::settings::Setting,
}

impl ReplayReport {
    pub(super) fn new(pcap: &str, kernel: &str, rec: &Recorded) -> ReplayReport {
        let observations = match rec.script() {
            Some(_) => rec.observations.as_ref().map(|(p, _)| p.display().to_string()),
            None => None,
        };
        ReplayReport {
            pcap: pcap.to_string(),
            kernel: kernel.to_string(),
            observations,
            connections: Vec::new(),
            segments_compared: 0,
            segments_matched: 0,
            divergences: Vec::new(),
            known_file: None,
            unread_tcp: Vec::new(),
            complete: true,
            inferred: Vec::new(),
            settings: Vec::new(),
            never_accepts: Vec::new(),
            segments: Vec::new(),
            plots: Vec::new(),
            tcp_info: Vec::new(),
            infers: rec.infers(),
        }
    }

    /// Lists one side's inferred calls, timed by `at`.
    pub(super) fn add_inferred(&mut self, side: Side, calls: &[super::infer::Inferred], at: impl Fn(u64) -> crate::time::SimTime) {
        self.inferred.extend(calls.iter().map(|i| InferredCall {
            side,
            t_ns: at(i.t_ns).as_nanos(),
            sut: i.sut.to_string(),
            peer: i.peer.to_string(),
            call: i.call_text(),
        }));
    }

    /// Lists one side's settings and the listeners it never accepted on.
    pub(super) fn add_settings(&mut self, side: Side, settings: &super::settings::Settings, never_accepts: &[SockAddr]) {
        self.settings.extend(settings.0.iter().map(|s| SideSetting { side, setting: s.clone() }));
        self.never_accepts.extend(never_accepts.iter().map(|l| format!("{} {l}", side.name())));
    }

    /// Keeps one connection's segments (for `--plot`).
    pub(super) fn keep_segments(&mut self, c: ConnSegments) {
        self.segments.push(c);
    }

    /// Records the capture's TCP packets that could not be read (`(reason, count)`).
    pub(super) fn set_unread_tcp(&mut self, unread: Vec<NotCompared>) {
        self.complete &= unread.is_empty();
        self.unread_tcp = unread;
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        side: Side,
        connection: usize,
        sut: SockAddr,
        peer: SockAddr,
        segments_captured: usize,
        segments_model: usize,
        c: ConnComparison,
        not_compared: Vec<NotCompared>,
    ) {
        self.complete &= not_compared.is_empty();
        self.segments_compared += c.segments_compared;
        self.segments_matched += c.segments_matched;
        self.connections.push(ConnReport {
            side,
            connection,
            sut: sut.to_string(),
            peer: peer.to_string(),
            segments_captured,
            segments_model,
            segments_compared: c.segments_compared,
            segments_matched: c.segments_matched,
            divergences: c.divergences.len(),
            not_compared,
        });
        let infers = self.infers;
        self.divergences.extend(c.divergences.into_iter().map(|divergence| {
            // Data and FINs are what the inferred calls put on the wire.
            let carries = |v: &SegmentView| v.length > 0 || v.flags.contains('F');
            let hangs_on_inference = infers && divergence.captured.iter().chain(divergence.model.iter()).any(carries);
            DivergenceReport { side, divergence, known: None, hangs_on_inference }
        }));
    }

    /// The verdict: every divergence is a known one, and every segment was compared unless
    /// `partial` accepts a comparison of part of them.
    pub fn ok(&self, partial: bool) -> bool {
        self.divergences.iter().all(|d| d.known.is_some()) && (self.complete || partial)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a replay report always serialises") + "\n"
    }

    fn divergences_of<'a>(&'a self, c: &'a ConnReport) -> impl Iterator<Item = &'a DivergenceReport> + 'a {
        self.divergences.iter().filter(move |d| d.side == c.side && d.divergence.connection == c.connection)
    }

    /// A verdict line per connection, then per connection each divergence (the first and the
    /// worst with both segments) and what was not compared, then the totals.
    pub fn to_text(&self) -> String {
        let mut s = format!("replay of {} against {}", self.pcap, self.kernel);
        match &self.observations {
            Some(o) => s.push_str(&format!(" (application calls from {o})\n")),
            None if self.infers => s.push_str(" (no observation log: application inferred from the capture)\n"),
            None => s.push_str(" (no application calls recorded: passive application)\n"),
        }
        for c in &self.connections {
            let _ = writeln!(s, "{}", self.verdict_line(c));
        }
        if !self.settings.is_empty() {
            s.push_str("settings of the side under test:\n");
        }
        for x in &self.settings {
            let _ = writeln!(s, "  {} {}", x.side.name(), x.setting.text());
        }
        for l in &self.never_accepts {
            let _ = writeln!(s, "inferred: the listener {l} never accepts (no calls on its connections)");
        }
        if !self.inferred.is_empty() {
            s.push_str("inferred application calls:\n");
        }
        for i in &self.inferred {
            let _ = writeln!(s, "  {} {} <> {} t={}.{:09} s {}", i.side.name(), i.sut, i.peer, i.t_ns / 1_000_000_000, i.t_ns % 1_000_000_000, i.call);
        }
        for c in &self.connections {
            self.details(&mut s, c);
        }
        for p in &self.plots {
            let marks: Vec<String> = p.marks.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
            let _ = writeln!(s, "plot {}.svg (and .png): {}", p.file, marks.join(", "));
        }
        self.tcp_info_text(&mut s);
        for u in &self.unread_tcp {
            let _ = writeln!(s, "not read: {} TCP {} ({}): their connections are unknown", u.segments, packets(u.segments), u.reason);
        }
        let _ = write!(
            s,
            "{} segments compared, {} matched, {} divergences",
            self.segments_compared,
            self.segments_matched,
            self.divergences.len()
        );
        match &self.known_file {
            Some(f) => {
                let known = self.divergences.iter().filter(|d| d.known.is_some()).count();
                let _ = writeln!(s, " ({known} known, listed in {f})");
            }
            None => s.push('\n'),
        }
        if !self.complete {
            s.push_str("coverage: not every segment was compared; a partial comparison is not a pass (unless --partial)\n");
        }
        s
    }

    /// The `TCP_INFO` samples: how many agree, then each that differs, field by field.
    fn tcp_info_text(&self, s: &mut String) {
        if self.tcp_info.is_empty() {
            return;
        }
        let differ: Vec<_> = self.tcp_info.iter().filter(|i| !i.differ.is_empty()).collect();
        let _ = writeln!(s, "tcp_info: {} samples at the same calls, {} differ", self.tcp_info.len(), differ.len());
        for i in differ {
            let fields: Vec<String> = i.differ.iter().map(|f| format!("{f} kernel {} model {}", i.kernel[f], i.model[f])).collect();
            let _ = writeln!(s, "  {} step {} t={}.{:09} s: {}", i.side.name(), i.step, i.t_ns / 1_000_000_000, i.t_ns % 1_000_000_000, fields.join(", "));
        }
    }

    /// `server 10.0.0.2:80 <> 10.0.0.1:5000: differs in 3 places (1 known), 12 of 12
    /// segments compared; first: segment 2 time; worst: segment 5 sequence`.
    fn verdict_line(&self, c: &ConnReport) -> String {
        let mut line = format!("{} {} <> {}: ", c.side.name(), c.sut, c.peer);
        let ds: Vec<&DivergenceReport> = self.divergences_of(c).collect();
        match ds.len() {
            0 => line.push_str("agrees"),
            n => {
                let _ = write!(line, "differs in {n} {}", if n == 1 { "place" } else { "places" });
                let known = ds.iter().filter(|d| d.known.is_some()).count();
                if known > 0 {
                    let _ = write!(line, " ({known} known)");
                }
            }
        }
        let _ = write!(line, ", {} of {} segments compared", c.segments_compared, c.segments_captured);
        if let (Some(first), Some(worst)) = (ds.first(), worst(&ds)) {
            match std::ptr::eq(*first, worst) {
                true => {
                    let _ = write!(line, "; first and worst: {}", at(first));
                }
                false => {
                    let _ = write!(line, "; first: {}; worst: {}", at(first), at(worst));
                }
            }
        }
        line
    }

    /// One connection's divergences, each on a line (with its cause when known), the first
    /// and the worst with both segments, and what was not compared.
    fn details(&self, s: &mut String, c: &ConnReport) {
        let ds: Vec<&DivergenceReport> = self.divergences_of(c).collect();
        if ds.is_empty() && c.not_compared.is_empty() {
            return;
        }
        let _ = writeln!(s, "{} {} <> {}:", c.side.name(), c.sut, c.peer);
        let shown = [ds.first().copied(), worst(&ds)];
        for d in &ds {
            let v = &d.divergence;
            let _ = write!(s, "  {} ({})", segment_name(v), v.fields.join(", "));
            if v.fields != [v.class.name()] {
                let _ = write!(s, ", class {}", v.class.name());
            }
            if d.hangs_on_inference {
                s.push_str(" [hangs on an inferred call]");
            }
            match (&d.known, &self.known_file) {
                (Some(cause), _) => {
                    let _ = writeln!(s, ": known: {cause}");
                }
                (None, Some(_)) => s.push_str(": NOT a known divergence\n"),
                (None, None) => s.push('\n'),
            }
            if shown.iter().flatten().any(|x| std::ptr::eq(*x, *d)) {
                let _ = writeln!(s, "    kernel {}", show(v.captured.as_ref()));
                let _ = writeln!(s, "    model  {}", show(v.model.as_ref()));
            }
        }
        for n in &c.not_compared {
            let _ = writeln!(s, "  {} {} not compared: {}", n.segments, segments(n.segments), n.reason);
        }
    }
}

/// The divergence of the worst class (the first of them).
fn worst<'a>(ds: &[&'a DivergenceReport]) -> Option<&'a DivergenceReport> {
    ds.iter().copied().min_by_key(|d| d.divergence.class)
}

/// `segment 5 sequence`.
fn at(d: &DivergenceReport) -> String {
    format!("{} {}", segment_name(&d.divergence), d.divergence.class.name())
}

/// `segment 5`, or `model segment 5` for an extra one (numbered among the model's).
fn segment_name(d: &Divergence) -> String {
    match d.class {
        Class::Extra => format!("model segment {}", d.segment),
        _ => format!("segment {}", d.segment),
    }
}

fn segments(n: usize) -> &'static str {
    if n == 1 {
        "segment"
    } else {
        "segments"
    }
}

fn packets(n: usize) -> &'static str {
    if n == 1 {
        "packet"
    } else {
        "packets"
    }
}

fn show(v: Option<&SegmentView>) -> String {
    match v {
        Some(v) => {
            let o = &v.options;
            let mut opts = Vec::new();
            opts.extend(o.mss.map(|m| format!("mss {m}")));
            if o.sack_permitted {
                opts.push("sackOK".to_string());
            }
            if o.timestamps {
                opts.push("TS".to_string());
            }
            opts.extend(o.wscale.map(|w| format!("wscale {w}")));
            opts.extend(o.sack.iter().map(|(l, r)| format!("sack {l}:{r}")));
            format!(
                "t={}.{:09} s  {} (relative seq {} ack {}, window {} bytes, options [{}])",
                v.t_ns / 1_000_000_000,
                v.t_ns % 1_000_000_000,
                v.summary,
                v.rel_seq,
                v.rel_ack,
                v.window,
                opts.join(",")
            )
        }
        None => "(none)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn divergence(segment: usize, class: Class, fields: Vec<&'static str>) -> Divergence {
        Divergence { connection: 0, segment, class, fields, captured: None, model: None, tolerance_ns: 0 }
    }

    #[test]
    fn the_verdict_line_names_the_first_and_the_worst_and_the_coverage() {
        let mut r = ReplayReport::new("c.pcap", "linux-6.18", &Recorded::default());
        let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
        let c = ConnComparison {
            segments_compared: 4,
            segments_matched: 2,
            divergences: vec![divergence(1, Class::Time, vec!["time"]), divergence(3, Class::Missing, vec!["missing"])],
        };
        let stopped = vec![NotCompared { segments: 2, reason: "the comparison stopped at the first divergence (--first)".into() }];
        r.add(Side::Client, 0, a, b, 6, 5, c, stopped);
        let text = r.to_text();
        let first = text.lines().nth(1).unwrap();
        assert_eq!(first, "client 10.0.0.1:1 <> 10.0.0.2:2: differs in 2 places, 4 of 6 segments compared; first: segment 1 time; worst: segment 3 missing");
        assert!(text.contains("  2 segments not compared: the comparison stopped"), "{text}");
        assert!(!r.complete && !r.ok(false) && !r.ok(true), "unknown divergences fail, partial or not");
    }
}
