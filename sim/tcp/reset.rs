//! The RST sent for a segment that no socket wants: a closed port, a connection this host
//! has forgotten (a reboot, an expired request sock), or a listener receiving an ACK.
//!
//! RFC 9293 §3.10.7.1 ("If the state is CLOSED ...") and tcp_ipv4.c `tcp_v4_send_reset`,
//! which agree: an RST is never answered; a segment carrying an ACK is answered with
//! `<SEQ=SEG.ACK><CTL=RST>`; any other with `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`,
//! where SYN and FIN each count one in SEG.LEN. The reply has window 0 and no options
//! (`tcp_v4_send_reset` builds a bare header; only MD5/AO signatures would add options).

use super::segment::{Ecn, Flags, Payload, Segment, TcpOptions};

/// The RST answering `seg`, or `None` when `seg` is itself an RST (RFC 9293 §3.10.7.1:
/// "An incoming segment containing a RST is discarded").
pub fn reset_for(seg: &Segment) -> Option<Segment> {
    if seg.flags.contains(Flags::RST) {
        return None;
    }
    let (seq, ack, flags) = if seg.flags.contains(Flags::ACK) {
        (seg.ack, 0, Flags::RST)
    } else {
        (0, seg.seq.wrapping_add(seg.seq_len()), Flags::RST | Flags::ACK)
    };
    Some(Segment {
        src: seg.dst,
        dst: seg.src,
        seq,
        ack,
        flags,
        ecn: Ecn::NotEct,
        window: 0,
        options: TcpOptions::default(),
        payload: Payload::Empty,
    })
}
