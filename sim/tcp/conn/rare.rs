//! The cold part of a connection: state that an idle ESTABLISHED connection holds at its
//! default (no retransmission, no probe, no pending transition or counter), kept in a box
//! that exists only while some field differs from its default.
//!
//! A million idle connections then touch a small connection object and hold no box (issue
//! 14: memory per idle connection, and the cache misses of large connection slots). A new
//! field belongs here when its default is a constant (not `iss`, not `now`) and an idle
//! connection returns to it; a field every segment or timer reads belongs in
//! [`Conn`](super::Conn) itself. One exception: the state of an opt-in feature that only
//! the sockets using it hold (fq's pacing), which then keep the box.

use crate::tcp::mib::MibCounts;
use crate::tcp::state::{Cause, TcpState};
use crate::time::SimTime;

/// The fields, each at its default when the connection is idle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct RareState {
    /// State transitions not yet collected by the host.
    pub transitions: Vec<(TcpState, TcpState, Cause)>,
    /// Counted events not yet collected by the host (`nstat` counters, see `tcp::mib`).
    pub mib: MibCounts,
    /// `retrans_stamp`: first (RTO) retransmission, or the first SYN.
    pub retrans_stamp: Option<SimTime>,
    /// When the first unanswered zero-window or keepalive probe left (`icsk_probes_tstamp`).
    pub probes_tstamp: Option<SimTime>,
    /// `tlp_high_seq`: the loss probe outstanding.
    pub tlp_high_seq: Option<u32>,
    /// Sequence number of a FIN held in the out-of-order queue.
    pub ooo_fin: Option<u32>,
    /// A D-SACK block to report on the next ACK (`rx_opt.dsack`, `duplicate_sack[0]`); none
    /// when empty (start == end).
    pub dsack: (u32, u32),
    /// `icsk_backoff`.
    pub backoff: u32,
    /// `icsk_retransmits`: RTO expiries since the last forward progress.
    pub retransmits: u32,
    /// `total_retrans`.
    pub total_retrans: u32,
    /// `total_rto`: RTO expiries of this connection (linear SYN timeouts count these).
    pub total_rto: u32,
    /// `icsk_probes_out`.
    pub probes_out: u32,
    /// `last_oow_ack_time`: when an out-of-window segment was last answered, in ms (a 1 kHz
    /// jiffy clock); 0 = never.
    pub last_oow_ack_ms: u32,
    /// Departure stamps and TCP Small Queues, while the socket sends through `fq`
    /// ([`pacing`](super::pacing)).
    pub pacing: Option<super::pacing::Pacing>,
}

/// Every field at its default: what an absent box reads as.
static IDLE: RareState = RareState {
    transitions: Vec::new(),
    mib: MibCounts::ZERO,
    retrans_stamp: None,
    probes_tstamp: None,
    tlp_high_seq: None,
    ooo_fin: None,
    dsack: (0, 0),
    backoff: 0,
    retransmits: 0,
    total_retrans: 0,
    total_rto: 0,
    probes_out: 0,
    last_oow_ack_ms: 0,
    pacing: None,
};

/// [`RareState`], boxed while any field is off its default.
#[derive(Clone, Debug, Default)]
pub(super) struct Rare(Option<Box<RareState>>);

impl Rare {
    /// The fields (all defaults when no box is held).
    #[inline]
    pub fn get(&self) -> &RareState {
        self.0.as_deref().unwrap_or(&IDLE)
    }

    /// The fields, for writing: the box is allocated if absent.
    #[inline]
    pub fn get_mut(&mut self) -> &mut RareState {
        self.0.get_or_insert_with(Default::default)
    }

    /// Sets one field; writing a default into an absent box allocates nothing (an ACK that
    /// clears `backoff` on an idle connection stays free).
    #[inline]
    pub fn set<T: PartialEq + Default>(&mut self, field: fn(&mut RareState) -> &mut T, value: T) {
        match self.0.as_deref_mut() {
            Some(r) => *field(r) = value,
            None if value == T::default() => {}
            None => *field(self.get_mut()) = value,
        }
    }

    /// Takes one field, leaving its default; an absent box gives the default and stays
    /// absent.
    #[inline]
    pub fn take<T: Default>(&mut self, field: fn(&mut RareState) -> &mut T) -> T {
        self.0.as_deref_mut().map(|r| std::mem::take(field(r))).unwrap_or_default()
    }

    /// Frees the box once every field is back at its default.
    pub fn shrink(&mut self) {
        if self.0.as_deref().is_some_and(|r| *r == IDLE) {
            self.0 = None;
        }
    }

    /// Whether the box is held (some field is off its default).
    pub fn is_held(&self) -> bool {
        self.0.is_some()
    }
}
