//! The application of a system under test whose calls were not recorded (a capture without
//! an observation log), inferred from what the trace shows it did:
//!
//! - a `write` before each run of new data the endpoint sends, of the bytes up to the
//!   segment that carries PSH (Linux marks the end of a `sendmsg` with PSH:
//!   `tcp_sendmsg_locked` → `tcp_push`), at the time the run's first segment left (the
//!   earliest the capture shows the bytes written);
//! - a greedy reader: a `read` of everything queued each time the peer's data or FIN
//!   arrives, so the receive window stays as open as the kernel's was;
//! - at the endpoint's FIN, `shutdown(SHUT_WR)` when the peer's data is still accepted after
//!   it (a half-close), `close` otherwise (`tcp_close` would answer later data with a RST,
//!   `tcp_rcv_state_process`).
//!
//! - a reader that stops: when the endpoint's advertised window closes and never reopens,
//!   no read at all on that connection (which reads came before cannot be told from the
//!   kernel's own window changes);
//! - data written but never sent: zero-window probes from the endpoint (`tcp_send_probe0`
//!   arms only with data waiting, `tcp_check_probe_timer`) show bytes queued behind the
//!   closed window; one more byte is written after the last data sent (how many is unknown:
//!   none of them reaches the wire).
//!
//! Every inferred call is listed with the report, and a divergence in the data or FIN such a
//! call produced is labelled as hanging on an inference, apart from kernel behaviour.
//!
//! A listener that never accepts and the socket's settings are inferred apart
//! ([`super::shown`]). Not inferred yet: a write larger than the model's send buffer takes
//! what fits (the rest is not retried); a close with unread data or `SO_LINGER {1,0}` from a
//! RST.

use super::split::Connection;
use super::Side;
use crate::pcap::CapturedSegment;
use crate::tcp::segment::{seq_gt, Flags, Segment};
use serde::Serialize;
use crate::addr::SockAddr;

/// An application call the trace implies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "call")]
pub enum Call {
    /// `write` of `len` bytes.
    Write { len: u32 },
    /// `read` of everything queued.
    Read,
    /// `shutdown(SHUT_WR)`.
    ShutdownWr,
    Close,
}

/// One inferred call on one connection, at its capture time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Inferred {
    pub t_ns: u64,
    pub sut: SockAddr,
    pub peer: SockAddr,
    #[serde(flatten)]
    pub call: Call,
}

impl Inferred {
    /// `write(100)`, `read`, `shutdown(SHUT_WR)`, `close`.
    pub fn call_text(&self) -> String {
        match self.call {
            Call::Write { len } => format!("write({len})"),
            Call::Read => "read".into(),
            Call::ShutdownWr => "shutdown(SHUT_WR)".into(),
            Call::Close => "close".into(),
        }
    }
}


/// The calls of `side`'s application on connection `c`, in time order; none without the
/// endpoint's SYN (its numbering is then unknown).
pub fn infer(packets: &[CapturedSegment], c: &Connection, side: Side) -> Vec<Inferred> {
    let (sut, peer) = c.endpoints(side);
    let segs: Vec<(u64, &Segment)> = c.packets.iter().map(|&i| (packets[i].t_ns, &packets[i].seg)).collect();
    let Some(isn) = segs.iter().find(|(_, s)| s.src == sut && s.flags.contains(Flags::SYN)).map(|(_, s)| s.seq) else {
        return Vec::new();
    };
    let at = |t_ns, call| Inferred { t_ns, sut, peer, call };
    let mut out = Vec::new();
    let mut next_new = isn.wrapping_add(1);
    let mut write: Option<(u64, u32)> = None;
    let mut closed = false;
    let reads = !stops_reading(&segs, sut);
    let (mut peer_una, mut peer_wnd) = (None::<u32>, 1u16);
    let (mut last_data, mut unsent) = (None::<u64>, false);
    for (k, &(t, s)) in segs.iter().enumerate() {
        if s.src == peer {
            if reads && (!s.payload.is_empty() || s.flags.contains(Flags::FIN)) {
                out.push(at(t, Call::Read));
            }
            peer_una = s.flags.contains(Flags::ACK).then_some(s.ack);
            peer_wnd = s.window;
            continue;
        }
        let zero_window_probe = s.payload.is_empty() && peer_wnd == 0 && peer_una.is_some_and(|una| s.seq == una.wrapping_sub(1));
        unsent |= zero_window_probe && !closed;
        let end = s.seq.wrapping_add(s.payload.len());
        if !s.payload.is_empty() && seq_gt(end, next_new) {
            let fresh = end.wrapping_sub(if seq_gt(s.seq, next_new) { s.seq } else { next_new });
            last_data = Some(t);
            let (start, len) = write.get_or_insert((t, 0));
            *len += fresh;
            next_new = end;
            if s.flags.contains(Flags::PSH) {
                out.push(at(*start, Call::Write { len: *len }));
                write = None;
            }
        }
        if s.flags.contains(Flags::FIN) && !closed {
            if let Some((start, len)) = write.take() {
                out.push(at(start, Call::Write { len }));
            }
            closed = true;
            let half = accepts_data_after(&segs[k + 1..], sut, peer);
            out.push(at(t, if half { Call::ShutdownWr } else { Call::Close }));
        }
    }
    if let Some((start, len)) = write {
        out.push(at(start, Call::Write { len }));
    }
    if let (true, Some(t)) = (unsent, last_data) {
        out.push(at(t, Call::Write { len: 1 }));
    }
    out.sort_by_key(|i| i.t_ns);
    out
}

/// Whether the endpoint's advertised window closed and never reopened: its reader stopped.
fn stops_reading(segs: &[(u64, &Segment)], sut: SockAddr) -> bool {
    let windows: Vec<u16> = segs.iter().filter(|(_, s)| s.src == sut && !s.flags.contains(Flags::SYN)).map(|(_, s)| s.window).collect();
    windows.iter().position(|&w| w == 0).is_some_and(|k| windows[k..].iter().all(|&w| w == 0))
}

/// Whether, in `rest` (what followed the endpoint's FIN), the peer sent data that the
/// endpoint then acknowledged: its receive side was still open.
fn accepts_data_after(rest: &[(u64, &Segment)], sut: SockAddr, peer: SockAddr) -> bool {
    let mut data_end: Option<u32> = None;
    for (_, s) in rest {
        if s.src == peer && !s.payload.is_empty() {
            data_end = Some(s.seq.wrapping_add(s.payload.len()));
        } else if let Some(end) = data_end {
            if s.src == sut && s.flags.contains(Flags::ACK) && !seq_gt(end, s.ack) && !s.flags.contains(Flags::RST) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::tcp::segment::{Ecn, Payload, TcpOptions};

    pub(in crate::replay) fn pkt(t: u64, from_client: bool, seq: u32, ack: u32, flags: Flags, len: usize) -> CapturedSegment {
        let (c, s): (SockAddr, SockAddr) = ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        let payload = if len == 0 { Payload::Empty } else { Payload::Bytes(vec![0; len].into()) };
        CapturedSegment { t_ns: t, seg: Segment { src, dst, seq, ack, flags, ecn: Ecn::NotEct, window: 100, options: TcpOptions::default(), payload }, iface: 0, raw_len: 0 }
    }

    /// An echo exchange: the client writes 100 bytes in two segments (PSH on the second),
    /// then 50, half-closes and still takes the echo; the server echoes and closes.
    #[test]
    fn writes_end_at_psh_and_a_fin_followed_by_accepted_data_is_a_half_close() {
        let a = Flags::ACK;
        let p = a | Flags::PSH;
        let packets = vec![
            pkt(0, true, 999, 0, Flags::SYN, 0),
            pkt(1, false, 4999, 1000, Flags::SYN | a, 0),
            pkt(2, true, 1000, 5000, a, 0),
            pkt(10, true, 1000, 5000, a, 60),
            pkt(11, true, 1060, 5000, p, 40),
            pkt(12, false, 5000, 1100, p, 100),
            pkt(20, true, 1100, 5100, p, 50),
            pkt(21, true, 1150, 5100, a | Flags::FIN, 0),
            pkt(22, false, 5100, 1151, p, 50),
            pkt(23, true, 1151, 5150, a, 0),
            pkt(24, false, 5150, 1151, a | Flags::FIN, 0),
            pkt(25, true, 1151, 5151, a, 0),
        ];
        let c = &super::super::split(&packets)[0];
        let calls = |side| infer(&packets, c, side).iter().map(|i| (i.t_ns, i.call_text())).collect::<Vec<_>>();
        let s = |t, x: &str| (t, x.to_string());
        assert_eq!(
            calls(Side::Client),
            [s(10, "write(100)"), s(12, "read"), s(20, "write(50)"), s(21, "shutdown(SHUT_WR)"), s(22, "read"), s(24, "read")]
        );
        assert_eq!(calls(Side::Server), [s(10, "read"), s(11, "read"), s(12, "write(100)"), s(20, "read"), s(21, "read"), s(22, "write(50)"), s(24, "close")]);
    }

    /// A receiver whose window closes for good never reads; the sender's zero-window probes
    /// show a byte more written than sent.
    #[test]
    fn a_closed_window_is_a_stopped_reader_and_probes_show_unsent_data() {
        let a = Flags::ACK;
        let mut packets = vec![
            pkt(0, true, 999, 0, Flags::SYN, 0),
            pkt(1, false, 4999, 1000, Flags::SYN | a, 0),
            pkt(2, true, 1000, 5000, a, 0),
            pkt(10, true, 1000, 5000, a | Flags::PSH, 100),
            pkt(11, false, 5000, 1100, a, 0),
            pkt(20, true, 1099, 5000, a, 0),
            pkt(21, false, 5000, 1100, a, 0),
        ];
        packets[4].seg.window = 0;
        packets[6].seg.window = 0;
        let calls = |packets: &[CapturedSegment], side| {
            let c = &super::super::split(packets)[0];
            infer(packets, c, side).iter().map(|i| (i.t_ns, i.call_text())).collect::<Vec<_>>()
        };
        assert_eq!(calls(&packets, Side::Client), [(10, "write(100)".to_string()), (10, "write(1)".to_string())]);
        assert_eq!(calls(&packets, Side::Server), []);
        // A window that reopens is a reader that reads.
        packets[6].seg.window = 100;
        assert_eq!(calls(&packets, Side::Server), [(10, "read".to_string())]);
    }
}
