//! The story of a run's first connection, in about a dozen lines, read from its trace: the
//! handshake and how long it took, slow start's growth round trip by round trip, the first
//! data segment lost and how the sender recovered it, and the close.
//!
//! A pure function of the trace's records (`seg_sent`, `seg_recv`, `seg_drop`, `timer`,
//! `state`; `sim/trace.rs`), so what it says is what a reader of the trace would find.
//! Sequence numbers are relative to the sender's ISN, as tcpdump prints them.
//!
//! The congestion window is not in the trace; the wire shows it as the sender's flight
//! (`snd_nxt - snd_una`, in segments) while it is cwnd-limited, which a bulk sender in slow
//! start is: Linux sends until `tcp_packets_in_flight` reaches `snd_cwnd` (`tcp_cwnd_test`,
//! tcp_output.c). A round trip ends when the first byte sent in it is acknowledged, as
//! `tcp_cwnd_validate` and HyStart count rounds.

use serde::Deserialize;

/// The fields of a trace record the timeline reads (each record has a subset).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Rec {
    t: u64,
    ev: String,
    host: String,
    src: String,
    dst: String,
    seq: u32,
    ack: u32,
    flags: String,
    len: u32,
    link: String,
    dir: String,
    reason: String,
    timer: String,
    local: String,
    remote: String,
    to: String,
    cause: String,
}

impl Rec {
    fn is_seg(&self, ev: &str, from: &str, to: &str) -> bool {
        self.ev == ev && self.src == from && self.dst == to
    }
}

/// At most this many slow-start round trips are told.
const MAX_ROUNDS: usize = 4;

/// The timeline of the first connection the trace shows (the first SYN sent), one line per
/// event in time order, then what did not happen; nothing when the trace has no connection.
pub fn timeline(trace: &str) -> Vec<String> {
    let recs: Vec<Rec> = trace.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let Some(syn) = recs.iter().find(|r| r.ev == "seg_sent" && r.flags == "S") else { return Vec::new() };
    let conn = Conn { client: syn.src.clone(), server: syn.dst.clone(), host: syn.host.clone(), isn: syn.seq };
    let mut events = vec![(syn.t, format!("{} {} sends SYN to {}", conn.host, conn.client, conn.server))];
    events.extend(conn.handshake(&recs, syn.t));
    let flow = conn.flow(&recs);
    events.extend(
        flow.rounds.iter().take(MAX_ROUNDS).enumerate().map(|(i, &(t, n))| (t, format!("slow start, round trip {}: {n} segments in flight", i + 1))),
    );
    let (losses, notes) = conn.loss(&recs);
    events.extend(losses);
    if let Some((t, bytes)) = flow.last_acked {
        let start = flow.first_data.unwrap_or(t);
        events.push((t, format!("last byte acknowledged: {bytes} B in {:.3} s", (t - start) as f64 / 1e9)));
    }
    events.extend(conn.close(&recs));
    // Stable: events at one instant keep the order they were told in.
    events.sort_by_key(|&(t, _)| t);
    events.into_iter().map(|(t, line)| format!("{:>10} s  {line}", at(t))).chain(notes).collect()
}

/// The connection the timeline follows, by its client's and server's addresses.
struct Conn {
    client: String,
    server: String,
    /// The client's host name.
    host: String,
    /// The client's initial sequence number.
    isn: u32,
}

/// What the client's data and the ACKs for it show.
struct Flow {
    /// Each slow-start round trip before the first loss: when it began, its largest flight.
    rounds: Vec<(u64, u32)>,
    first_data: Option<u64>,
    /// When the last data byte was acknowledged, and how many bytes that made.
    last_acked: Option<(u64, u32)>,
}

impl Conn {
    fn rel(&self, seq: u32) -> u32 {
        seq.wrapping_sub(self.isn)
    }

    /// Where a segment's data ends, relative to the ISN.
    fn data_end(&self, r: &Rec) -> u32 {
        self.rel(r.seq).saturating_add(r.len)
    }

    /// Where a segment's sequence space ends (its FIN counts one), relative to the ISN.
    fn end(&self, r: &Rec) -> u32 {
        self.data_end(r).saturating_add(u32::from(r.flags.contains('F')))
    }

    /// When the SYN-ACK arrived (the client is connected), and after how many SYNs.
    fn handshake(&self, recs: &[Rec], syn_t: u64) -> Option<(u64, String)> {
        let synack = recs.iter().find(|r| r.is_seg("seg_recv", &self.server, &self.client) && r.flags == "S.")?;
        let syns = recs.iter().filter(|r| r.is_seg("seg_sent", &self.client, &self.server) && r.flags == "S").count();
        let again = match syns {
            1 => String::new(),
            n => format!(", after {} SYN retransmissions", n - 1),
        };
        Some((synack.t, format!("SYN-ACK arrives: connected {:.3} ms after the SYN{again}", (synack.t - syn_t) as f64 / 1e6)))
    }

    /// Slow start's rounds (until the first drop of the client's data) and the transfer's end.
    fn flow(&self, recs: &[Rec]) -> Flow {
        let (mut snd_una, mut snd_nxt, mut mss) = (1u32, 1u32, 0u32);
        let mut rounds: Vec<(u64, u32)> = Vec::new();
        // The first byte sent in the current round: the round ends when it is acknowledged.
        let mut round_seq: Option<u32> = None;
        let mut lost = false;
        let (mut first_data, mut last_acked) = (None, None);
        for r in recs {
            if r.is_seg("seg_drop", &self.client, &self.server) && r.len > 0 {
                lost = true;
            } else if r.is_seg("seg_sent", &self.client, &self.server) && r.len > 0 {
                let end = self.data_end(r);
                first_data.get_or_insert(r.t);
                mss = mss.max(r.len);
                if end <= snd_nxt || lost {
                    snd_nxt = snd_nxt.max(end);
                    continue;
                }
                if round_seq.is_none() {
                    round_seq = Some(snd_nxt);
                    rounds.push((r.t, 0));
                }
                snd_nxt = end;
                let flight = snd_nxt.saturating_sub(snd_una).div_ceil(mss);
                let round = rounds.last_mut().expect("a round was begun");
                round.1 = round.1.max(flight);
            } else if r.is_seg("seg_recv", &self.server, &self.client) && r.flags.contains('.') {
                let ack = self.rel(r.ack);
                if ack > snd_una && ack <= snd_nxt + 1 {
                    snd_una = ack;
                    if first_data.is_some() && snd_una >= snd_nxt {
                        last_acked = Some((r.t, snd_nxt - 1));
                    }
                }
                if round_seq.is_some_and(|s| snd_una > s) {
                    round_seq = None;
                }
            }
        }
        Flow { rounds, first_data, last_acked }
    }

    /// The first of the client's data segments lost, its retransmission (and what sent it),
    /// and the ACK that covered everything sent before that retransmission (`high_seq`); or a
    /// note of what did not happen.
    fn loss(&self, recs: &[Rec]) -> (Vec<(u64, String)>, Vec<String>) {
        let Some((i, drop)) = recs.iter().enumerate().find(|(_, r)| r.is_seg("seg_drop", &self.client, &self.server) && r.len > 0)
        else {
            return (Vec::new(), vec!["no data segment lost".into()]);
        };
        let where_ = if drop.link.is_empty() { drop.host.clone() } else { format!("{} {}", drop.link, drop.dir) };
        let lost = format!("first loss: seq {} ({} B) dropped on {where_} ({})", self.rel(drop.seq), drop.len, drop.reason);
        let mut out = vec![(drop.t, lost)];
        let sent = |r: &Rec| r.is_seg("seg_sent", &self.client, &self.server);
        let Some((j, rtx)) = recs.iter().enumerate().skip(i + 1).find(|(_, r)| sent(r) && r.seq == drop.seq) else {
            return (out, vec![format!("seq {} never retransmitted", self.rel(drop.seq))]);
        };
        out.push((rtx.t, format!("seq {} retransmitted {}", self.rel(rtx.seq), self.why(&recs[i..=j], rtx.t))));
        let high_seq = recs[..j].iter().filter(|r| sent(r)).map(|r| self.end(r)).max().unwrap_or(0);
        let recovered = recs.iter().enumerate().skip(j).find(|(_, r)| {
            r.is_seg("seg_recv", &self.server, &self.client) && r.flags.contains('.') && self.rel(r.ack) >= high_seq
        });
        let Some((k, r)) = recovered else {
            return (out, vec!["never recovered".into()]);
        };
        let again = self.retransmissions(recs).filter(|&n| n >= i && n < k).count();
        let gone = recs[i..k].iter().filter(|r| r.is_seg("seg_drop", &self.client, &self.server) && r.len > 0).count();
        let line = format!("recovered: all sent before the retransmission acknowledged ({gone} segments lost, {again} retransmitted)");
        out.push((r.t, line));
        (out, Vec::new())
    }

    /// The indices of the client's retransmissions: segments that carry no byte beyond the
    /// highest it had sent.
    fn retransmissions<'r>(&'r self, recs: &'r [Rec]) -> impl Iterator<Item = usize> + 'r {
        let mut snd_nxt = 0u32;
        recs.iter().enumerate().filter_map(move |(n, r)| {
            if !r.is_seg("seg_sent", &self.client, &self.server) || (r.len == 0 && !r.flags.contains('F')) {
                return None;
            }
            let end = self.end(r);
            let again = end <= snd_nxt;
            snd_nxt = snd_nxt.max(end);
            again.then_some(n)
        })
    }

    /// What made the sender retransmit at `t`: a timer that fired then (the retransmission
    /// timer or the loss probe), or, with none, the peer's duplicate ACKs and SACKs.
    fn why(&self, span: &[Rec], t: u64) -> String {
        let fired: Vec<&Rec> = span.iter().filter(|r| r.ev == "timer" && r.host == self.host && r.local == self.client).collect();
        let probe = fired.iter().find(|r| r.timer == "TLP" && r.t < t).map(|r| format!(" after a loss probe at {} s", at(r.t)));
        let cause = match fired.iter().find(|r| r.t == t) {
            Some(r) if r.timer == "retransmit" => "by the retransmission timer (RTO)".to_string(),
            Some(r) => format!("by the {} timer", r.timer),
            None => "on the peer's duplicate ACKs and SACKs (fast retransmit)".to_string(),
        };
        format!("{cause}{}", probe.unwrap_or_default())
    }

    /// The close: when the client's application closed, its FIN, and the states each side
    /// ended in, with what took it there (the state record's cause).
    fn close(&self, recs: &[Rec]) -> Vec<(u64, String)> {
        let state = |local: &str, remote: &str, to: &str| {
            recs.iter().find(|r| r.ev == "state" && r.local == local && r.remote == remote && r.to == to)
        };
        let fin = recs.iter().find(|r| r.is_seg("seg_sent", &self.client, &self.server) && r.flags.contains('F'));
        let mut out: Vec<(u64, String)> = Vec::new();
        if let Some(r) = state(&self.client, &self.server, "FIN_WAIT1") {
            out.push((r.t, "client calls close(): FIN_WAIT1".into()));
        }
        if let Some(r) = fin {
            out.push((r.t, "client sends its FIN, after its data".into()));
        }
        for (who, local, remote, to) in [("client", &self.client, &self.server, "TIME_WAIT"), ("server", &self.server, &self.client, "CLOSE")] {
            if let Some(r) = state(local, remote, to) {
                out.push((r.t, format!("{who} in {to} ({})", r.cause)));
            }
        }
        out
    }
}

/// Simulated seconds to the microsecond.
fn at(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(t: u64, ev: &str, from: &str, to: &str, seq: u32, ack: u32, flags: &str, len: u32) -> String {
        format!(
            r#"{{"t":{t},"ev":"{ev}","host":"h","link":"l","dir":"a_to_b","reason":"loss","src":"{from}","dst":"{to}","seq":{seq},"ack":{ack},"flags":"{flags}","len":{len}}}"#
        )
    }

    #[test]
    fn a_trace_without_a_syn_has_no_timeline() {
        assert!(timeline(r#"{"t":0,"ev":"state","host":"h"}"#).is_empty());
    }

    #[test]
    fn rounds_end_when_their_first_byte_is_acked_and_stop_at_the_first_loss() {
        let (c, s) = ("1.1.1.1:1", "2.2.2.2:2");
        let lines = [
            seg(0, "seg_sent", c, s, 99, 0, "S", 0),
            seg(10, "seg_recv", s, c, 500, 100, "S.", 0),
            seg(10, "seg_sent", c, s, 100, 501, ".", 10),
            seg(10, "seg_sent", c, s, 110, 501, ".", 10),
            // The first segment acked: round 2 begins; each ACK releases two segments.
            seg(20, "seg_recv", s, c, 501, 110, ".", 0),
            seg(20, "seg_sent", c, s, 120, 501, ".", 10),
            seg(20, "seg_sent", c, s, 130, 501, ".", 10),
            seg(21, "seg_recv", s, c, 501, 120, ".", 0),
            seg(21, "seg_sent", c, s, 140, 501, ".", 10),
            seg(21, "seg_drop", c, s, 140, 501, ".", 10),
            seg(21, "seg_sent", c, s, 150, 501, ".", 10),
            seg(30, "seg_recv", s, c, 501, 140, ".", 0),
            seg(40, "seg_sent", c, s, 140, 501, ".", 10),
            seg(50, "seg_recv", s, c, 501, 160, ".", 0),
        ]
        .join("\n");
        let t = timeline(&lines);
        assert!(t[1].contains("SYN-ACK arrives: connected 0.000 ms"), "{t:?}");
        assert!(t[2].ends_with("round trip 1: 2 segments in flight"), "{t:?}");
        assert!(t[3].ends_with("round trip 2: 3 segments in flight"), "{t:?}");
        assert!(t[4].contains("first loss: seq 41 (10 B)"), "{t:?}");
        assert!(t[5].contains("seq 41 retransmitted on the peer's duplicate ACKs"), "{t:?}");
        assert!(t[6].contains("recovered") && t[6].contains("(1 segments lost, 1 retransmitted)"), "{t:?}");
        assert!(t[7].contains("last byte acknowledged: 60 B"), "{t:?}");
    }
}
