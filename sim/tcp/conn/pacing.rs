//! Earliest-departure-time pacing and TCP Small Queues, for a socket whose host sends through
//! the `fq` qdisc (`sk_pacing_status == SK_PACING_FQ`, set by sch_fq.c `fq_classify` when the
//! socket's first packet reaches it with pacing enabled).
//!
//! The socket only stamps: each skb sent leaves `__tcp_transmit_skb` with a departure time
//! (`skb->tstamp` = `tp->tcp_wstamp_ns`), and `tcp_update_skb_after_send` moves
//! `tcp_wstamp_ns` on by the skb's length at the pacing rate. The host's qdisc
//! ([`crate::host::qdisc`]) holds the skb until then and tells the socket when it lets it go
//! (the skb's destructor `tcp_wfree`), which frees its share of `sk_wmem_alloc` and, if TCP
//! Small Queues held the writer back (`TSQ_THROTTLED`), sends more (`tcp_tsq_handler`).
//!
//! Without `fq` (the default `pfifo`), nothing is stamped and nothing is held: a packet
//! leaves when sent, its memory is freed at once, and `tcp_small_queue_check` never holds
//! anything back, so the socket carries no pacing state ([`Conn::pace`] is `None`).
//! `tcp_needs_internal_pacing` (the socket's own hrtimer, `SK_PACING_NEEDED`, for BBR
//! without fq) is not modelled.

use super::{Conn, SKB_OVERHEAD};
use crate::tcp::segment::Segment;
use crate::time::{Dur, SimTime};

/// `tcp_update_skb_after_send`: "Original sch_fq does not pace first 10 MSS" — the
/// departure time advances only once `tp->data_segs_out` reaches 10 (6.x).
const UNPACED_SEGS: u32 = 10;

/// The socket's pacing state (in `struct tcp_sock` and `struct sock`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Pacing {
    /// `tp->tcp_wstamp_ns`: the departure time of the next skb, never before now.
    wstamp: SimTime,
    /// `tp->data_segs_out`: segments with data sent (saturating: only `UNPACED_SEGS` matters).
    data_segs_out: u32,
    /// The truesize of this socket's skbs the qdisc still holds (their part of
    /// `sk_wmem_alloc`).
    held: u64,
    /// `TSQ_THROTTLED`: `tcp_small_queue_check` held the writer back.
    throttled: bool,
    /// Skbs stamped since the host last took them ([`Conn::take_departures`]).
    departures: Vec<Departure>,
}

/// One skb handed to the qdisc: its next `segs` data (or FIN) segments in the output.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    pub segs: usize,
    /// `skb->tstamp`: not before this.
    pub tstamp: SimTime,
    /// The skb's truesize the qdisc holds (its destructor, `tcp_wfree`, frees it); 0 when it
    /// left at once (due now with nothing of the socket queued before it).
    pub truesize: u32,
}

/// An skb being sent: `tcp_wstamp_ns` before `__tcp_transmit_skb` raised it to now
/// (`prior_wstamp`), and where its segments start in the output.
pub(super) struct SkbStart {
    prior: SimTime,
    first: usize,
}

impl Conn {
    /// Makes the socket send through `fq` or not (the host's qdisc, set when the socket is
    /// created, as `fq_classify` sets `SK_PACING_FQ` on its first packet).
    pub fn set_qdisc_fq(&mut self, on: bool) {
        self.rare.set(|r| &mut r.pacing, on.then(Default::default));
    }

    /// Whether the socket is paced by the qdisc (`sk_pacing_status != SK_PACING_NONE`).
    pub(super) fn is_paced(&self) -> bool {
        self.rare.get().pacing.is_some()
    }

    /// The pacing state of a paced socket (allocating nothing for another).
    fn pacing_mut(&mut self) -> Option<&mut Pacing> {
        if !self.is_paced() {
            return None;
        }
        self.rare.get_mut().pacing.as_mut()
    }

    /// The skbs stamped since the last call, in the order of their segments in the output.
    pub fn take_departures(&mut self) -> Vec<Departure> {
        self.pacing_mut().map(|p| std::mem::take(&mut p.departures)).unwrap_or_default()
    }

    /// `__tcp_transmit_skb`: `prior_wstamp = tp->tcp_wstamp_ns; tp->tcp_wstamp_ns =
    /// max(tp->tcp_wstamp_ns, tp->tcp_clock_cache)`, the skb's departure time. The segments
    /// pushed to `out` until [`Conn::edt_end`] are the skb's.
    pub(super) fn edt_begin(&mut self, now: SimTime, out: &[Segment]) -> Option<SkbStart> {
        let p = self.pacing_mut()?;
        let prior = p.wstamp;
        p.wstamp = p.wstamp.max(now);
        Some(SkbStart { prior, first: out.len() })
    }

    /// `tcp_update_skb_after_send` (tcp_output.c, 6.x): once `data_segs_out >= 10`, the next
    /// departure is `len / sk_pacing_rate` later, less up to half of that for the time the
    /// socket lost to idleness or timer lateness (`credit = tcp_wstamp_ns - prior_wstamp`,
    /// "take into account OS jitter"). The skb goes to the qdisc: held, with its truesize in
    /// `sk_wmem_alloc`, unless due now with nothing of this socket before it (`fq_dequeue`
    /// then lets it go within `dev_queue_xmit`, and the device frees it: tun and veth
    /// `skb_orphan` what they take).
    pub(super) fn edt_end(&mut self, start: Option<SkbStart>, now: SimTime, out: &[Segment]) {
        let rate = self.pacing_rate;
        let (Some(start), Some(p)) = (start, self.pacing_mut()) else { return };
        let segs = &out[start.first..];
        if segs.is_empty() {
            return;
        }
        let len: u64 = segs.iter().map(|s| u64::from(s.payload.len())).sum();
        // __tcp_transmit_skb: `if (skb->len != tcp_header_size) tp->data_segs_out += pcount`.
        let data_segs = segs.iter().filter(|s| !s.payload.is_empty()).count() as u32;
        p.data_segs_out = p.data_segs_out.saturating_add(data_segs).min(UNPACED_SEGS);
        let tstamp = p.wstamp;
        if rate != 0 && p.data_segs_out >= UNPACED_SEGS {
            let len_ns = len * 1_000_000_000 / rate;
            let credit = p.wstamp.since(start.prior).as_nanos();
            p.wstamp += Dur::from_nanos(len_ns - (len_ns / 2).min(credit));
        }
        let held = tstamp > now || p.held > 0;
        let truesize = if held { SKB_OVERHEAD + len as u32 } else { 0 };
        p.held += u64::from(truesize);
        p.departures.push(Departure { segs: segs.len(), tstamp, truesize });
    }

    /// `tcp_small_queue_check` (tcp_output.c), before an skb of `len` bytes goes out: hold
    /// the writer back (`TSQ_THROTTLED`) while the socket's skbs in the qdisc
    /// (`sk_wmem_alloc`, which starts at 1) exceed two of these skbs' truesize or a
    /// millisecond at the pacing rate (`sk_pacing_rate >> sk_pacing_shift`, shift 10);
    /// paced by fq, `tcp_limit_output_bytes` does not cap that. Never when the
    /// retransmission queue holds at most one skb
    /// (`tcp_rtx_queue_empty_or_single_skb`): no completion would come to resume it.
    pub(super) fn small_queue_check(&mut self, len: u32) -> bool {
        let rate = self.pacing_rate;
        let limit = (2 * u64::from(SKB_OVERHEAD + len)).max(rate >> 10);
        // `refcount_read(&sk->sk_wmem_alloc) > limit`, the count starting at 1; a socket
        // without fq holds nothing (and pays for no lookup on its segment path).
        let over = self.pacing_mut().is_some_and(|p| p.held >= limit);
        if !over || self.rtx_skbs.end_of(self.snd_una).is_none_or(|end| end == self.snd_nxt) {
            return false;
        }
        if let Some(p) = self.pacing_mut() {
            p.throttled = true;
        }
        true
    }

    /// The qdisc let go of an skb of this socket holding `truesize` (its destructor,
    /// `tcp_wfree`): the memory is freed and, if the writer was held back, `tcp_tsq_handler`
    /// → `tcp_tsq_write` sends what it can: the lost skbs first when cwnd has room
    /// (`tcp_xmit_retransmit_queue`), then new data (`tcp_write_xmit`).
    pub fn tsq_release(&mut self, now: SimTime, truesize: u32, out: &mut Vec<Segment>) {
        let Some(p) = self.pacing_mut() else { return };
        p.held = p.held.saturating_sub(u64::from(truesize));
        if !std::mem::take(&mut p.throttled) {
            return;
        }
        use crate::tcp::state::TcpState::*;
        if !matches!(self.state, Established | FinWait1 | Closing | CloseWait | LastAck) {
            return;
        }
        if self.rtx_skbs.lost_out() > self.rtx_skbs.retrans_out() && self.cwnd.cwnd > self.packets_in_flight() {
            self.xmit_retransmit_queue(now, out);
        }
        self.write_xmit(now, out);
    }
}
