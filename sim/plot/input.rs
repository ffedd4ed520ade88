//! What the plots are drawn from: the segments of a trace (JSON Lines) or of any pcap, the
//! state transitions of a trace, and the readiness answers of a run's script.

use crate::pcap::read::Capture;
use crate::tcp::segment::{Flags, Segment};
use std::collections::BTreeMap;

/// One segment as the plots need it; `win` is in bytes (scaled by the sender's window scale).
#[derive(Clone, Debug, PartialEq)]
pub struct Pkt {
    pub t_ns: u64,
    pub src: String,
    pub dst: String,
    pub seq: u32,
    pub ack: u32,
    pub has_ack: bool,
    pub syn: bool,
    pub rst: bool,
    pub win: u32,
    pub len: u32,
    pub sack: Vec<(u32, u32)>,
}

#[derive(Clone, Debug, Default)]
pub struct PlotInput {
    pub pkts: Vec<Pkt>,
    /// (time, connection end `local > remote`, new state).
    pub states: Vec<(u64, String, String)>,
    /// (time, socket, reported events).
    pub readiness: Vec<(u64, String, String)>,
    pub end_ns: u64,
}

/// Raw fields of a segment, before window scaling.
struct Raw {
    t_ns: u64,
    src: String,
    dst: String,
    seq: u32,
    ack: u32,
    flags: Flags,
    win: u16,
    len: u32,
    wscale: Option<u8>,
    sack: Vec<(u32, u32)>,
}

impl PlotInput {
    /// From a trace: every `seg_sent` (what went on the wire) and every `state` record.
    pub fn from_trace(text: &str, name: &str) -> Result<PlotInput, String> {
        let mut raws = Vec::new();
        let mut states = Vec::new();
        let mut end = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{name}:{}: {e}", i + 1))?;
            let t = v["t"].as_u64().ok_or_else(|| format!("{name}:{}: no time `t`", i + 1))?;
            end = end.max(t);
            match v["ev"].as_str() {
                Some("seg_sent") => raws.push(raw_of_json(t, &v).ok_or_else(|| format!("{name}:{}: not a segment", i + 1))?),
                Some("state") => {
                    let row = format!("{} > {}", v["local"].as_str().unwrap_or("?"), v["remote"].as_str().unwrap_or("?"));
                    states.push((t, row, v["to"].as_str().unwrap_or("?").to_string()));
                }
                _ => {}
            }
        }
        Ok(PlotInput { pkts: scale(raws), states, readiness: Vec::new(), end_ns: end })
    }

    /// From a capture (any pcap or pcapng): its segments, time from the first packet.
    pub fn from_capture(cap: &Capture) -> PlotInput {
        let t0 = cap.packets.first().map_or(0, |p| p.t_ns);
        let raws = cap.packets.iter().map(|p| raw_of_segment(p.t_ns - t0, &p.seg)).collect();
        let end = cap.packets.last().map_or(0, |p| p.t_ns - t0);
        PlotInput { pkts: scale(raws), states: Vec::new(), readiness: Vec::new(), end_ns: end }
    }

    /// Adds what the script's poll/epoll/kevent calls reported.
    pub fn add_readiness(&mut self, script: &[crate::scenario::Observation]) {
        for o in script {
            if let (Some(ev), Some(sock)) = (&o.events, &o.sock) {
                let label = if ev.is_empty() { "-".to_string() } else { ev.join("|") };
                self.readiness.push((o.t_ns, format!("{sock} ({})", o.op), label));
            }
        }
    }

    /// The (src, dst) that carried the most payload bytes.
    pub fn busiest_direction(&self) -> Option<(String, String)> {
        let mut bytes: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for p in &self.pkts {
            *bytes.entry((&p.src, &p.dst)).or_default() += u64::from(p.len);
        }
        let best = bytes.into_iter().filter(|(_, b)| *b > 0).max_by_key(|(k, b)| (*b, std::cmp::Reverse(*k)))?;
        Some((best.0 .0.to_string(), best.0 .1.to_string()))
    }

    pub fn flow(&self, src: &str, dst: &str) -> Vec<Pkt> {
        self.pkts.iter().filter(|p| p.src == src && p.dst == dst).cloned().collect()
    }

    pub fn state_rows(&self) -> Vec<String> {
        let mut rows: Vec<String> = Vec::new();
        for (_, r, _) in &self.states {
            if !rows.contains(r) {
                rows.push(r.clone());
            }
        }
        rows
    }

    /// (row, from s, to s, state): each state lasts until the next transition of its row.
    pub fn state_spans(&self) -> Vec<(usize, f64, f64, String)> {
        spans(&self.state_rows(), &self.states, self.end_ns)
    }

    pub fn readiness_spans(&self) -> Vec<(usize, f64, f64, String)> {
        let rows: Vec<String> = self.readiness.iter().map(|r| r.1.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        spans(&rows, &self.readiness, self.end_ns)
    }
}

fn spans(rows: &[String], events: &[(u64, String, String)], end_ns: u64) -> Vec<(usize, f64, f64, String)> {
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let evs: Vec<&(u64, String, String)> = events.iter().filter(|e| &e.1 == row).collect();
        for (k, e) in evs.iter().enumerate() {
            let until = evs.get(k + 1).map_or(end_ns, |n| n.0).max(e.0);
            out.push((i, e.0 as f64 / 1e9, until as f64 / 1e9, e.2.clone()));
        }
    }
    out
}

fn raw_of_json(t: u64, v: &serde_json::Value) -> Option<Raw> {
    let flags = v["flags"].as_str()?;
    let mut f = Flags(0);
    for (c, bit) in [('S', 0x02u8), ('F', 0x01), ('R', 0x04), ('P', 0x08), ('.', 0x10)] {
        if flags.contains(c) {
            f.0 |= bit;
        }
    }
    let opts = &v["options"];
    let sack = opts["sack"].as_array().map_or(Vec::new(), |a| {
        a.iter().filter_map(|b| Some((b.get(0)?.as_u64()? as u32, b.get(1)?.as_u64()? as u32))).collect()
    });
    Some(Raw {
        t_ns: t,
        src: v["src"].as_str()?.to_string(),
        dst: v["dst"].as_str()?.to_string(),
        seq: v["seq"].as_u64()? as u32,
        ack: v["ack"].as_u64()? as u32,
        flags: f,
        win: v["win"].as_u64()? as u16,
        len: v["len"].as_u64()? as u32,
        wscale: opts["wscale"].as_u64().map(|w| w as u8),
        sack,
    })
}

fn raw_of_segment(t: u64, s: &Segment) -> Raw {
    Raw {
        t_ns: t,
        src: s.src.to_string(),
        dst: s.dst.to_string(),
        seq: s.seq,
        ack: s.ack,
        flags: s.flags,
        win: s.window,
        len: s.payload.len(),
        wscale: s.options.wscale,
        sack: s.options.sack.clone(),
    }
}

/// Window fields in bytes: a SYN's window is never scaled (RFC 7323 §2.2); later ones are
/// shifted by the scale the sender offered, if both sides offered one.
fn scale(raws: Vec<Raw>) -> Vec<Pkt> {
    let mut offered: BTreeMap<String, u8> = BTreeMap::new();
    for r in raws.iter().filter(|r| r.flags.contains(Flags::SYN)) {
        if let Some(w) = r.wscale {
            offered.insert(r.src.clone(), w);
        }
    }
    raws.into_iter()
        .map(|r| {
            let syn = r.flags.contains(Flags::SYN);
            let shift = match (offered.get(&r.src), offered.get(&r.dst)) {
                (Some(w), Some(_)) if !syn => u32::from(*w),
                _ => 0,
            };
            Pkt {
                t_ns: r.t_ns,
                has_ack: r.flags.contains(Flags::ACK),
                rst: r.flags.contains(Flags::RST),
                syn,
                win: u32::from(r.win) << shift,
                len: r.len,
                seq: r.seq,
                ack: r.ack,
                src: r.src,
                dst: r.dst,
                sack: r.sack,
            }
        })
        .collect()
}

/// Segments (time, segment) as the plots need them: windows in bytes, scaled as
/// [`scale`] says, which needs both directions' SYNs among them.
pub fn pkts_of<'a>(segs: impl IntoIterator<Item = (u64, &'a Segment)>) -> Vec<Pkt> {
    scale(segs.into_iter().map(|(t, s)| raw_of_segment(t, s)).collect())
}

/// The sequence number of a flow's first data byte, which its graph numbers from: after
/// its SYN, else where its first data segment starts, else its first segment's.
pub fn first_byte(flow: &[Pkt]) -> u32 {
    match flow.iter().find(|p| p.syn) {
        Some(syn) => syn.seq.wrapping_add(1),
        None => flow.iter().find(|p| p.len > 0).or(flow.first()).map_or(0, |p| p.seq),
    }
}

/// For each segment of `flow`, whether it is a retransmission: data that starts below the
/// highest sequence number sent before it, as tcptrace colours it.
fn retransmitted(flow: &[Pkt]) -> Vec<bool> {
    let mut high: Option<u32> = None;
    flow.iter()
        .map(|p| {
            if p.len == 0 {
                return false;
            }
            let again = high.is_some_and(|h| (p.seq.wrapping_sub(h) as i32) < 0);
            let end = p.seq.wrapping_add(p.len);
            if high.is_none_or(|h| (end.wrapping_sub(h) as i32) > 0) {
                high = Some(end);
            }
            again
        })
        .collect()
}

/// Data segments split into first transmissions and retransmissions.
pub fn split_retransmissions(flow: &[Pkt]) -> (Vec<&Pkt>, Vec<&Pkt>) {
    let again = retransmitted(flow);
    let data = flow.iter().zip(again).filter(|(p, _)| p.len > 0);
    let (again, fresh): (Vec<_>, Vec<_>) = data.partition(|(_, a)| *a);
    (fresh.into_iter().map(|(p, _)| p).collect(), again.into_iter().map(|(p, _)| p).collect())
}

/// What a segment is in a time-sequence graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Data,
    Retransmission,
    Probe,
    /// No payload: SYN, FIN, RST or a pure ACK.
    Control,
}

/// Each segment of `flow` with its kind, every segment exactly once: a retransmission first,
/// then a zero-window probe (against the receiver's segments `back`), data, or control.
pub fn classify<'p>(flow: &'p [Pkt], back: &[Pkt]) -> Vec<(Kind, &'p Pkt)> {
    flow.iter()
        .zip(retransmitted(flow))
        .map(|(p, again)| {
            let kind = match () {
                _ if again => Kind::Retransmission,
                _ if is_window_probe(p, back) => Kind::Probe,
                _ if p.len > 0 => Kind::Data,
                _ => Kind::Control,
            };
            (kind, p)
        })
        .collect()
}

/// A segment sent into a zero window: the last window the peer advertised before it was 0.
pub fn is_window_probe(p: &Pkt, back: &[Pkt]) -> bool {
    let last = back.iter().filter(|b| b.t_ns <= p.t_ns && b.has_ack && !b.syn).last();
    p.len <= 1 && last.is_some_and(|b| b.win == 0) && !p.syn && !p.rst
}

/// Each retransmission with its backoff step: the how-many-th time that sequence number
/// was sent again.
pub fn backoff_steps(flow: &[Pkt]) -> Vec<(u64, u32)> {
    let (_, again) = split_retransmissions(flow);
    let mut count: BTreeMap<u32, u32> = BTreeMap::new();
    again
        .into_iter()
        .map(|p| {
            let n = count.entry(p.seq).or_insert(0);
            *n += 1;
            (p.t_ns, *n)
        })
        .collect()
}

/// A staircase through `points` (a value holds until the next one).
pub fn steps(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, y) in points {
        if let Some(&(_, py)) = out.last() {
            out.push((x, py));
        }
        out.push((x, y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(t_ns: u64, seq: u32, len: u32) -> Pkt {
        Pkt { t_ns, src: "a".into(), dst: "b".into(), seq, ack: 0, has_ack: true, syn: false, rst: false, win: 1000, len, sack: Vec::new() }
    }

    #[test]
    fn every_segment_is_one_kind_and_data_below_the_highest_sent_is_a_retransmission() {
        let syn = Pkt { syn: true, has_ack: false, ..pkt(0, 99, 0) };
        let flow = [syn, pkt(1, 100, 10), pkt(2, 110, 10), pkt(3, 100, 20), pkt(4, 120, 0), pkt(5, 120, 5)];
        let kinds: Vec<Kind> = classify(&flow, &[]).into_iter().map(|(k, _)| k).collect();
        use Kind::*;
        assert_eq!(kinds, [Control, Data, Data, Retransmission, Control, Data]);
        assert_eq!(first_byte(&flow), 100, "numbered from the byte after the SYN");
        assert_eq!(first_byte(&flow[2..]), 110, "without a SYN, from the first data byte");
        // Into a zero window, a segment of at most one byte is a probe.
        let closed = [Pkt { win: 0, ..pkt(4, 0, 0) }];
        let probe = pkt(6, 125, 1);
        assert_eq!(classify(std::slice::from_ref(&probe), &closed)[0].0, Probe);
    }
}
