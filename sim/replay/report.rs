//! The replay's result: per connection and side, how many segments were compared and
//! matched, and every divergence with both segments; as text for people and JSON for tools.

use super::compare::{ConnComparison, Divergence, SegmentView};
use super::{Recorded, Side};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddrV4;

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
    pub segments_compared: usize,
    pub segments_matched: usize,
    pub divergences: usize,
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
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        side: Side,
        connection: usize,
        sut: SocketAddrV4,
        peer: SocketAddrV4,
        segments_captured: usize,
        segments_model: usize,
        c: ConnComparison,
    ) {
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
        });
        self.divergences.extend(c.divergences.into_iter().map(|divergence| DivergenceReport { side, divergence, known: None }));
    }

    /// Whether the model agreed with every segment, but where the divergence is a known one.
    pub fn ok(&self) -> bool {
        self.divergences.iter().all(|d| d.known.is_some())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a replay report always serialises") + "\n"
    }

    /// One line per connection, and under a disagreeing one its first divergence with both
    /// segments.
    pub fn to_text(&self) -> String {
        let mut s = format!("replay of {} against {}", self.pcap, self.kernel);
        match &self.observations {
            Some(o) => s.push_str(&format!(" (application calls from {o})\n")),
            None => s.push_str(" (no observation log: passive application)\n"),
        }
        for c in &self.connections {
            let _ = write!(
                s,
                "{} {} <> {}: {} of {} segments agree",
                c.side.name(),
                c.sut,
                c.peer,
                c.segments_matched,
                c.segments_compared
            );
            let first = self.divergences.iter().find(|d| d.side == c.side && d.divergence.connection == c.connection);
            match first {
                None => s.push('\n'),
                Some(d) => {
                    let d = &d.divergence;
                    let _ = writeln!(s, "; first divergence at segment {} ({}):", d.segment, d.fields.join(", "));
                    let _ = writeln!(s, "  kernel {}", show(d.captured.as_ref()));
                    let _ = writeln!(s, "  model  {}", show(d.model.as_ref()));
                }
            }
            let known = self.divergences.iter().filter(|d| d.side == c.side && d.divergence.connection == c.connection);
            for d in known {
                let what = match &d.known {
                    Some(cause) => format!("known: {cause}"),
                    None => "NOT a known divergence".to_string(),
                };
                if self.known_file.is_some() {
                    let _ = writeln!(s, "  segment {} ({}): {what}", d.divergence.segment, d.divergence.fields.join(", "));
                }
            }
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
        s
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
