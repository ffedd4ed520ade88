//! Classic ECN (RFC 3168) as Linux runs it (include/net/tcp_ecn.h, net/ipv4/tcp_input.c,
//! net/ipv4/tcp_output.c): the ECN-setup SYN and SYN-ACK, the ECT(0) mark on new data
//! (`tcp_ecn_send`), a CE mark answered with ECE on every segment until the sender's CWR
//! (`tcp_data_ecn_check`, `tcp_ecn_accept_cwr`), and CWR on the first new data after a
//! window reduction (`tcp_ecn_queue_cwr`). What an ECE does to the window (`tcp_enter_cwr`)
//! is in `recovery.rs`; the request sock's side of the handshake in `listener.rs`.
//!
//! Not modelled: Accurate ECN (6.18's `tcp_ecn` 3 to 5, the AE flag): a SYN-ACK answering
//! with CWR set is taken as no ECN, as RFC 3168 §6.1.1 reads it; congestion controls that
//! need ECN (DCTCP, `tcp_ca_needs_ecn`); `RTAX_FEATURE_ECN` routes.

use super::Conn;
use crate::tcp::segment::{seq_ge, Ecn, Flags, Segment};

/// `tp->ecn_flags`: the connection's ECN state, the kernel's bits in one byte.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct EcnFlags(u8);

impl EcnFlags {
    /// `TCP_ECN_OK` (`TCP_ECN_MODE_RFC3168`): ECN was negotiated (or asked for, until the
    /// SYN-ACK answers).
    const OK: u8 = 1;
    /// `TCP_ECN_QUEUE_CWR`: the next new data segment carries CWR.
    const QUEUE_CWR: u8 = 2;
    /// `TCP_ECN_DEMAND_CWR`: a CE mark arrived; our segments carry ECE until CWR does.
    const DEMAND_CWR: u8 = 4;
    /// `TCP_ECN_SEEN`: a segment marked ECT or CE arrived.
    const SEEN: u8 = 8;

    /// ECN on (`TCP_ECN_OK` alone) or off.
    pub(super) fn negotiated(ok: bool) -> EcnFlags {
        EcnFlags(if ok { Self::OK } else { 0 })
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8) {
        self.0 |= bit;
    }

    fn clear(&mut self, bit: u8) {
        self.0 &= !bit;
    }
}

impl Conn {
    /// ECN is in use on this connection (`tcp_ecn_mode_rfc3168`).
    pub(super) fn ecn_ok(&self) -> bool {
        self.ecn.has(EcnFlags::OK)
    }

    /// `tcp_ecn_send_syn`, from `tcp_connect`: with `tcp_ecn` = 1 the SYN asks for ECN
    /// (ECE|CWR) and the connection counts on it until the SYN-ACK answers.
    pub(super) fn ecn_send_syn(&mut self) {
        self.ecn = EcnFlags::negotiated(self.profile.tcp_ecn.request());
    }

    /// The ECN flags of our SYN or SYN-ACK. A SYN asks with ECE|CWR, but not when sent
    /// again: `__tcp_retransmit_skb` → `tcp_ecn_clear_syn` takes them off the skb for good
    /// (`tcp_ecn_fallback` = 1, RFC 3168 §6.1.1.1: a middlebox may drop ECN-setup SYNs).
    /// A SYN-ACK (simultaneous open, `tcp_ecn_send_synack`) carries ECE alone if ECN is on.
    pub(super) fn ecn_syn_flags(&self, synack: bool) -> Flags {
        match (self.ecn_ok(), synack) {
            (false, _) => Flags::NONE,
            (true, true) => Flags::ECE,
            (true, false) if self.rare.get().retransmits == 0 => Flags::ECE | Flags::CWR,
            (true, false) => Flags::NONE,
        }
    }

    /// `tcp_ecn_rcv_synack`: ECN stays on only if the SYN-ACK agrees with ECE alone; one
    /// without ECE, or with CWR too (an Accurate ECN answer, RFC 3168 §6.1.1), turns it off.
    pub(super) fn ecn_rcv_synack(&mut self, f: Flags) {
        if !f.contains(Flags::ECE) || f.contains(Flags::CWR) {
            self.ecn = EcnFlags::default();
        }
    }

    /// `tcp_ecn_rcv_syn` (simultaneous open): ECN stays on only if the peer's SYN asked
    /// for it too (ECE and CWR).
    pub(super) fn ecn_rcv_syn(&mut self, f: Flags) {
        if !f.contains(Flags::ECE | Flags::CWR) {
            self.ecn = EcnFlags::default();
        }
    }

    /// `tcp_ecn_send`, for a segment other than a SYN of an ECN connection: new data
    /// (`seq` at or after `snd_nxt`, some payload) is marked ECT(0) (`INET_ECN_xmit`) and
    /// carries a queued CWR; anything else, a pure ACK, a FIN alone, a retransmission, is
    /// Not-ECT (`INET_ECN_dontxmit`). Every segment echoes ECE while CWR is awaited
    /// (`TCP_ECN_DEMAND_CWR`).
    pub(super) fn ecn_send(&mut self, seq: u32, has_data: bool, flags: Flags) -> (Flags, Ecn) {
        if !self.ecn_ok() {
            return (flags, Ecn::NotEct);
        }
        let mut flags = flags;
        let mut ecn = Ecn::NotEct;
        if has_data && seq_ge(seq, self.snd_nxt) {
            ecn = Ecn::Ect0;
            if self.ecn.has(EcnFlags::QUEUE_CWR) {
                self.ecn.clear(EcnFlags::QUEUE_CWR);
                flags = flags | Flags::CWR;
            }
        }
        if self.ecn.has(EcnFlags::DEMAND_CWR) {
            flags = flags | Flags::ECE;
        }
        (flags, ecn)
    }

    /// `tcp_data_ecn_check` (6.x; `tcp_ecn_check_ce` before), for data received in order
    /// (`tcp_event_data_recv`) or out of order (`tcp_data_queue_ofo`): CE demands CWR and
    /// quick-ACKs two segments ("sender can have a very low cwnd"); Not-ECT after ECT was
    /// seen is probably a retransmission, also quick-ACKed.
    pub(super) fn data_ecn_check(&mut self, ecn: Ecn) {
        if !self.ecn_ok() {
            return;
        }
        match ecn {
            Ecn::NotEct => {
                if self.ecn.has(EcnFlags::SEEN) {
                    self.enter_quickack_mode(2);
                }
            }
            Ecn::Ce => {
                if !self.ecn.has(EcnFlags::DEMAND_CWR) {
                    self.enter_quickack_mode(2);
                    self.ecn.set(EcnFlags::DEMAND_CWR);
                }
                self.ecn.set(EcnFlags::SEEN);
            }
            Ecn::Ect0 | Ecn::Ect1 => self.ecn.set(EcnFlags::SEEN),
        }
    }

    /// `tcp_ecn_accept_cwr`, from `tcp_ack` for every ACK not older than `snd_una` (moved
    /// there from `tcp_data_queue` to accept CWR on pure ACKs too, "a deviation from
    /// RFC3168"): the sender reduced its window, so stop echoing ECE; a CWR on data is
    /// ACKed at once (`ICSK_ACK_NOW`), the sender's window "may be very low".
    pub(super) fn ecn_accept_cwr(&mut self, seg: &Segment) {
        if !self.ecn_ok() || !seg.flags.contains(Flags::CWR) {
            return;
        }
        self.ecn.clear(EcnFlags::DEMAND_CWR);
        if seg.seq_len() > 0 {
            self.ack_now = true;
        }
    }

    /// `tcp_ecn_rcv_ecn_echo`: the ACK echoes a CE mark (`FLAG_ECE`).
    pub(super) fn ecn_echoed(&self, f: Flags) -> bool {
        self.ecn_ok() && f.contains(Flags::ECE) && !f.contains(Flags::SYN)
    }

    /// `tcp_ecn_queue_cwr`, from `tcp_init_cwnd_reduction` and `tcp_enter_loss`: every
    /// window reduction is announced with CWR on the next new data.
    pub(super) fn ecn_queue_cwr(&mut self) {
        if self.ecn_ok() {
            self.ecn.set(EcnFlags::QUEUE_CWR);
        }
    }

    /// `tcp_ecn_withdraw_cwr`, from `tcp_undo_cwnd_reduction` when ssthresh goes back up:
    /// the reduction was spurious, nothing to announce.
    pub(super) fn ecn_withdraw_cwr(&mut self) {
        self.ecn.clear(EcnFlags::QUEUE_CWR);
    }
}
