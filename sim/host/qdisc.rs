//! The sending host's root queueing discipline: `pfifo` (the default: a packet leaves when
//! sent) or `fq` (net/sched/sch_fq.c) releasing each socket's packets at their departure
//! times.
//!
//! What of `fq` changes the timing TCP sees, for sockets that stamp their skbs
//! ([`crate::tcp::conn::pacing`], EDT):
//! - `fq_classify`: one flow per socket (`skb->sk`); the flow's packets in `skb->tstamp`
//!   order (`flow_queue_add`; a socket's stamps never decrease, so that is arrival order);
//! - `fq_enqueue`: `time_to_send = skb->tstamp`;
//! - `fq_dequeue`: the flow's head leaves once `now >= time_to_send`, else the qdisc's
//!   watchdog is armed for it (`qdisc_watchdog_schedule_range_ns`) — here the flow's timer.
//!   With EDT stamps the flow's own rate limit is skipped ("If EDT time stamps are
//!   provided, we trust them: skip rate limiting"), and with `maxrate` unset nothing else
//!   delays it. The quantum (2 MTU) and initial quantum (10 MTU) only order flows against
//!   each other: a flow out of credit goes to the old flows' list and is served again at
//!   once (`goto begin`), so a packet due now still leaves now.
//!
//! Left out: the 10 s horizon (`fq_packet_beyond_horizon`: only a stamp 10 s ahead, a pacing
//! rate below 300 B/s for a full segment, would be dropped), the flow limit of 100 packets
//! (TCP Small Queues keeps a socket at two skbs), the priority bands of 6.9, and packets
//! without a socket or from a listener (the SYN-ACK, resets), which fq sends at once as the
//! model does.

use crate::engine::TimerSlot;
use crate::tcp::conn::pacing::Departure;
use crate::tcp::segment::Segment;
use crate::time::SimTime;
use std::collections::{BTreeMap, VecDeque};

/// The root qdisc a host sends through.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Qdisc {
    /// `pfifo` (or `pfifo_fast`, `noqueue`): no pacing; what TCP sends leaves at once.
    #[default]
    Pfifo,
    /// `fq` with its defaults: TCP's departure stamps are kept.
    Fq,
}

/// One skb held: its segments, its departure time, the truesize its socket gets back.
#[derive(Debug)]
pub struct HeldSkb {
    pub tstamp: SimTime,
    pub segs: Vec<Segment>,
    pub truesize: u32,
}

/// A socket's flow: its skbs in departure order, and the watchdog armed for the head.
#[derive(Debug, Default)]
struct Flow {
    queue: VecDeque<HeldSkb>,
    timer: TimerSlot,
}

/// `struct fq_sched_data`, keyed by the connection the flow belongs to.
#[derive(Debug, Default)]
pub struct Fq {
    flows: BTreeMap<u32, Flow>,
}

impl Fq {
    /// `fq_enqueue` then, within the same `dev_queue_xmit`, `fq_dequeue`: an skb due now
    /// whose flow holds nothing leaves at once (returned); any other is held, and the time
    /// the flow's watchdog must be queued for is returned when it changes.
    pub fn enqueue(&mut self, flow: u32, now: SimTime, skb: HeldSkb) -> Result<HeldSkb, Option<SimTime>> {
        let f = self.flows.entry(flow).or_default();
        if f.queue.is_empty() && skb.tstamp <= now {
            return Ok(skb);
        }
        f.queue.push_back(skb);
        let head = f.queue[0].tstamp;
        Err(f.timer.arm(head))
    }

    /// The flow's watchdog popped at `now`: its due skbs, in order, and the time to queue it
    /// again for the next one, if any. A stale pop releases nothing.
    pub fn dequeue(&mut self, flow: u32, now: SimTime) -> (Vec<HeldSkb>, Option<SimTime>) {
        use crate::engine::Pop;
        let Some(f) = self.flows.get_mut(&flow) else { return (Vec::new(), None) };
        match f.timer.on_pop(now) {
            Pop::Fire => {}
            Pop::Requeue(at) => return (Vec::new(), Some(at)),
            Pop::Stale => return (Vec::new(), None),
        }
        let mut due = Vec::new();
        while f.queue.front().is_some_and(|s| s.tstamp <= now) {
            due.extend(f.queue.pop_front());
        }
        let next = match f.queue.front() {
            Some(head) => f.timer.arm(head.tstamp),
            None => {
                self.flows.remove(&flow);
                None
            }
        };
        (due, next)
    }

    /// Drops a closed connection's flow (`fq_gc` of a detached flow; what it held is sent
    /// first by the caller).
    pub fn forget(&mut self, flow: u32) -> Vec<HeldSkb> {
        self.flows.remove(&flow).map(|f| f.queue.into()).unwrap_or_default()
    }
}

/// Groups a paced socket's output into skbs: each departure takes its next `segs` data or
/// FIN segments (those `tcp_transmit_skb` sent from the write or retransmission queue);
/// other segments (ACKs, probes, resets: built alone, not stamped) stand alone with no
/// departure. Yields (departure, segments) in output order.
pub(crate) fn group(out: Vec<Segment>, departures: Vec<Departure>) -> Vec<(Option<Departure>, Vec<Segment>)> {
    let mut deps = departures.into_iter();
    let mut groups: Vec<(Option<Departure>, Vec<Segment>)> = Vec::new();
    let mut left = 0;
    for seg in out {
        let stamped = seg.seq_len() > 0 && !seg.flags.contains(crate::tcp::segment::Flags::SYN);
        if !stamped {
            groups.push((None, vec![seg]));
        } else if left > 0 {
            left -= 1;
            if let Some(g) = groups.last_mut() {
                g.1.push(seg);
            }
        } else {
            let d = deps.next();
            left = d.map_or(0, |d| d.segs.saturating_sub(1));
            groups.push((d, vec![seg]));
        }
    }
    groups
}
