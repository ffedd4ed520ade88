//! What a connection born from a listener inherits from its request sock
//! (`tcp_create_openreq_child`): the [`Listener`](crate::tcp::listener::Listener) fills it in
//! when a handshake completes, [`Conn::accept_child`](super::Conn::accept_child) builds the
//! child from it. One record for both sides, so the two cannot disagree.

use crate::tcp::segment::Segment;
use crate::time::{Dur, SimTime};
use crate::addr::SockAddr;

/// The peer's timestamps as the child inherits them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChildTimestamps {
    /// The latest TSval from the peer (`ts_recent`), to echo.
    pub ts_recent: u32,
    /// Added to the millisecond clock to make our TSval (`tcp_rsk(req)->ts_off`):
    /// TSval = (now in ms, wrapping) + ts_off.
    pub ts_off: u32,
}

/// Everything a connection born from a listener needs (what `tcp_create_openreq_child`
/// copies from the request sock), plus the segment that completed the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildParams {
    pub local: SockAddr,
    pub remote: SockAddr,
    /// Our initial sequence number (the SYN-ACK's seq); snd_una = snd_nxt = iss+1.
    pub iss: u32,
    /// The peer's initial sequence number; rcv_nxt = irs+1.
    pub irs: u32,
    /// The peer's MSS (`mss_clamp`): its SYN's MSS option, [`TCP_MSS_DEFAULT`] if absent,
    /// or the syncookie table's value for a cookie connection.
    pub peer_mss: u16,
    /// The MSS we advertised (`advmss`).
    pub adv_mss: u16,
    /// The peer's window scale shift, `Some` iff window scaling was negotiated.
    pub snd_wscale: Option<u8>,
    /// Our window scale shift (0 unless negotiated).
    pub rcv_wscale: u8,
    /// SACK permitted both ways.
    pub sack_ok: bool,
    /// ECN (RFC 3168) agreed in the handshake (`inet_rsk(req)->ecn_ok`).
    pub ecn_ok: bool,
    /// `Some` iff timestamps were negotiated.
    pub timestamps: Option<ChildTimestamps>,
    /// The peer's window from the completing segment, scaled (`snd_wnd`).
    pub snd_wnd: u32,
    /// The window we offered (`rsk_rcv_wnd`), and its clamp (`rsk_window_clamp`).
    pub rcv_wnd: u32,
    pub window_clamp: u32,
    /// When the first SYN-ACK was sent (`snt_synack`), `None` for a cookie connection
    /// (no state was kept). An RTT sample only if also `synack_retransmits == 0`
    /// (tcp_minisocks.c `tcp_synack_rtt_meas`).
    pub synack_sent_at: Option<SimTime>,
    /// SYN-ACK retransmissions (`req->num_retrans`).
    pub synack_retransmits: u32,
    /// Completed from a syncookie (no request sock existed).
    pub cookie: bool,
    /// Made at the SYN by Fast Open (`tcp_fastopen_create_child`): `segment` is the SYN, whose
    /// data the child holds; it starts in SYN_RECV ([`Conn::fastopen_child`](super::Conn::fastopen_child)).
    pub fastopen: bool,
    /// The segment that completed the handshake; its data and FIN belong to the child.
    pub segment: Segment,
}

impl ChildParams {
    /// tcp_minisocks.c `tcp_synack_rtt_meas`: the SYN-ACK's RTT is a sample only if the
    /// SYN-ACK was sent once (and state was kept: never for a cookie).
    pub fn synack_rtt(&self, now: SimTime) -> Option<Dur> {
        self.synack_sent_at.filter(|_| self.synack_retransmits == 0).map(|t| now - t)
    }
}
