//! The kernel counters a connection moves (`nstat` names), each counted where Linux counts
//! it. A connection counts the events ([`Mib`]) in a few bytes ([`MibCounts`]) and its host
//! collects them after every call into the connection (`Host::after_conn`).
//!
//! Counted by the host itself, not here: `TcpOutRsts` (every RST the host sends,
//! `tcp_v4_send_reset` and `tcp_send_active_reset` both count `TCP_MIB_OUTRSTS`),
//! `TcpEstabResets` and `TcpAttemptFails` (from the state transitions, see
//! [`transition_counter`]); the listener's own (`ListenOverflows`, `ListenDrops`, …) in
//! `ListenerCounters`.

use super::state::{Cause, TcpState};

/// One counted event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mib {
    /// A segment retransmitted (first: [`MibCounts`] keeps it apart): tcp_output.c `__tcp_retransmit_skb` adds
    /// `TCP_MIB_RETRANSSEGS` per segment (RTO, fast retransmit, TLP, SYN retransmissions).
    RetransSegs,
    /// The retransmission timer expired: tcp_timer.c `tcp_retransmit_timer` counts
    /// `LINUX_MIB_TCPTIMEOUTS` on every expiry before `tcp_write_timeout` decides whether to
    /// give up (not on the zero-window path, which retransmits without counting it).
    TcpTimeouts,
    /// A tail loss probe sent: tcp_output.c `tcp_send_loss_probe` (`LINUX_MIB_TCPLOSSPROBES`).
    TcpLossProbes,
    /// Given up by a timer: tcp_timer.c `tcp_write_err` (`LINUX_MIB_TCPABORTONTIMEOUT`),
    /// for the retransmission, SYN, zero-window probe and keepalive timeouts alike.
    TcpAbortOnTimeout,
    /// Data thrown away: close() with SO_LINGER {1, 0} (tcp.c `__tcp_close`), or new data
    /// after the receive side was shut (tcp_input.c `tcp_rcv_state_process`):
    /// `LINUX_MIB_TCPABORTONDATA`.
    TcpAbortOnData,
    /// close() with unread data: tcp.c `__tcp_close` (`LINUX_MIB_TCPABORTONCLOSE`).
    TcpAbortOnClose,
    /// A fast recovery undone once `high_seq` was acknowledged: tcp_input.c
    /// `tcp_try_undo_recovery` (`LINUX_MIB_TCPFULLUNDO`).
    TcpFullUndo,
    /// A fast recovery undone on a partial ACK: `tcp_try_undo_partial`
    /// (`LINUX_MIB_TCPPARTIALUNDO`).
    TcpPartialUndo,
    /// An RTO undone: `tcp_try_undo_loss`, or `tcp_try_undo_recovery` in Loss
    /// (`LINUX_MIB_TCPLOSSUNDO`).
    TcpLossUndo,
    /// A reduction undone because D-SACKs showed every retransmission a duplicate:
    /// `tcp_try_undo_dsack` (`LINUX_MIB_TCPDSACKUNDO`).
    TcpDsackUndo,
    /// An RTO found spurious by F-RTO: `tcp_try_undo_loss` (`LINUX_MIB_TCPSPURIOUSRTOS`).
    TcpSpuriousRtos,
}

/// Events counted since the host last collected them (a call into a connection moves
/// each by a handful at most): `TcpRetransSegs`, which one ACK can move by a window, in 16
/// bits; the others, at most once per call (one timer, one close, one undo per ACK), in 8
/// bits, so that the connection object stays within its bound.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MibCounts {
    retrans_segs: u16,
    rare: [u8; Mib::ALL.len() - 1],
}

// `rare` is indexed by `Mib as usize - 1`: RetransSegs, kept apart, must be the first.
const _: () = assert!(Mib::RetransSegs as usize == 0);

impl MibCounts {
    /// Nothing counted (the `Default`, usable in a `static`).
    pub const ZERO: MibCounts = MibCounts { retrans_segs: 0, rare: [0; Mib::ALL.len() - 1] };

    pub fn add(&mut self, m: Mib) {
        match m {
            Mib::RetransSegs => self.retrans_segs = self.retrans_segs.saturating_add(1),
            _ => {
                let c = &mut self.rare[m as usize - 1];
                *c = c.saturating_add(1);
            }
        }
    }

    fn get(&self, m: Mib) -> u64 {
        match m {
            Mib::RetransSegs => u64::from(self.retrans_segs),
            _ => u64::from(self.rare[m as usize - 1]),
        }
    }

    /// The non-zero counts by `nstat` name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Mib::ALL.iter().map(|&m| (m.name(), self.get(m))).filter(|(_, n)| *n > 0)
    }
}

impl Mib {
    const ALL: [Mib; 11] = [
        Mib::RetransSegs,
        Mib::TcpTimeouts,
        Mib::TcpLossProbes,
        Mib::TcpAbortOnTimeout,
        Mib::TcpAbortOnData,
        Mib::TcpAbortOnClose,
        Mib::TcpFullUndo,
        Mib::TcpPartialUndo,
        Mib::TcpLossUndo,
        Mib::TcpDsackUndo,
        Mib::TcpSpuriousRtos,
    ];

    /// The name `nstat` prints.
    pub fn name(self) -> &'static str {
        match self {
            Mib::RetransSegs => "TcpRetransSegs",
            Mib::TcpTimeouts => "TCPTimeouts",
            Mib::TcpLossProbes => "TCPLossProbes",
            Mib::TcpAbortOnTimeout => "TCPAbortOnTimeout",
            Mib::TcpAbortOnData => "TCPAbortOnData",
            Mib::TcpAbortOnClose => "TCPAbortOnClose",
            Mib::TcpFullUndo => "TCPFullUndo",
            Mib::TcpPartialUndo => "TCPPartialUndo",
            Mib::TcpLossUndo => "TCPLossUndo",
            Mib::TcpDsackUndo => "TCPDSACKUndo",
            Mib::TcpSpuriousRtos => "TCPSpuriousRTOs",
        }
    }
}

/// The counter a state transition moves, if any: tcp.c `tcp_set_state` counts
/// `TCP_MIB_ESTABRESETS` when ESTABLISHED or CLOSE_WAIT goes to CLOSE; `tcp_done` counts
/// `TCP_MIB_ATTEMPTFAILS` when a connection dies in SYN_SENT or SYN_RECV (an RST, a
/// timeout: the paths through `tcp_done`, not a close() of a connecting socket).
pub fn transition_counter(from: TcpState, to: TcpState, cause: Cause) -> Option<&'static str> {
    match (from, to) {
        (TcpState::Established | TcpState::CloseWait, TcpState::Close) => Some("TcpEstabResets"),
        (TcpState::SynSent | TcpState::SynRecv, TcpState::Close) if matches!(cause, Cause::RcvRst | Cause::Timeout) => {
            Some("TcpAttemptFails")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_of_established_and_failed_attempts_are_told_from_transitions() {
        assert_eq!(transition_counter(TcpState::Established, TcpState::Close, Cause::RcvRst), Some("TcpEstabResets"));
        assert_eq!(transition_counter(TcpState::CloseWait, TcpState::Close, Cause::Abort), Some("TcpEstabResets"));
        assert_eq!(transition_counter(TcpState::SynSent, TcpState::Close, Cause::Timeout), Some("TcpAttemptFails"));
        assert_eq!(transition_counter(TcpState::SynSent, TcpState::Close, Cause::CloseUnconnected), None);
        assert_eq!(transition_counter(TcpState::FinWait1, TcpState::Close, Cause::Timeout), None);
    }
}
