//! One direction of a point-to-point link: a transmitter with a bounded FIFO queue and a
//! serialization rate, then a wire with propagation delay, loss, duplication and jitter.
//!
//! Order of what happens to a segment, and so of the random draws (fixed, for
//! determinism): link state (down, partitioned, filtered) → tail drop if the queue is full
//! → serialization (the segment occupies the transmitter) → loss on the wire (by count, then
//! random) → duplication
//! → one jitter draw per copy delivered.

use super::rng::{uniform_dur, Prob};
use crate::tcp::segment::{Segment, TcpOptions};
use crate::time::{Dur, SimTime};
use rand_core::RngCore;
use serde::Serialize;
use std::collections::VecDeque;

/// Why a segment did not arrive. Serialised in snake_case in the trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Random loss on the wire.
    Loss,
    /// The transmit queue was full (tail drop).
    QueueFull,
    /// The link is partitioned.
    Partition,
    /// The link is down (cable pulled), at send time or while the segment was in flight.
    LinkDown,
    /// A `filter` fault matched the segment.
    Filter,
    /// A middlebox had forgotten (or never knew) the segment's flow.
    NatExpired,
    /// The receiving host is frozen.
    HostFrozen,
    /// The receiving host is crashed.
    HostDown,
    /// No link joins the sender to the host owning the destination address.
    NoRoute,
}

/// What became of a segment handed to a link direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    Dropped(DropReason),
    /// It arrives at `at`; a duplicate, if one was made, at `dup`.
    Deliver { at: SimTime, dup: Option<SimTime> },
}

/// A direction of a link, named after its endpoints as in the scenario file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    AToB,
    BToA,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::AToB, Dir::BToA];

    pub const fn index(self) -> usize {
        self as usize
    }
    pub const fn reverse(self) -> Dir {
        match self {
            Dir::AToB => Dir::BToA,
            Dir::BToA => Dir::AToB,
        }
    }
    /// The spelling in scenario files and traces.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dir::AToB => "a_to_b",
            Dir::BToA => "b_to_a",
        }
    }
}

/// An Ethernet device's default MTU (`ETH_DATA_LEN`): a link's until the scenario sets one.
pub const ETH_DATA_LEN: u32 = 1500;

/// Ethernet (14) + IPv4 (20) + TCP (20) header bytes, without options.
pub const HEADER_BYTES: u32 = 14 + 20 + 20;
/// What an IPv6 header (40, `sizeof(struct ipv6hdr)`, no extension headers) adds over an
/// IPv4 one without options.
pub const IPV6_EXTRA_BYTES: u32 = 40 - 20;

/// Bytes the TCP options take on the wire, laid out as Linux's `tcp_options_write` does
/// (each option padded with NOPs to 32 bits; SACK-permitted shares a word with timestamps).
pub fn options_wire_len(o: &TcpOptions) -> u32 {
    let mut n = 0;
    if o.mss.is_some() {
        n += 4;
    }
    if o.timestamps.is_some() {
        n += 12; // NOP NOP TS, or SACKOK TS
    } else if o.sack_permitted {
        n += 4; // NOP NOP SACKOK
    }
    if o.wscale.is_some() {
        n += 4; // NOP WS
    }
    if !o.sack.is_empty() {
        n += 4 + 8 * o.sack.len() as u32; // NOP NOP SACK len, 8 bytes a block
    }
    if let Some(c) = o.fastopen {
        n += c.option_len().div_ceil(4) * 4; // FO cookie, NOPs to the word
    }
    n
}

/// The frame's size on the wire: headers, options and payload.
pub fn wire_bytes(seg: &Segment) -> u32 {
    let ipv6 = if seg.src.is_ipv6() { IPV6_EXTRA_BYTES } else { 0 };
    HEADER_BYTES + ipv6 + options_wire_len(&seg.options) + seg.payload.len()
}

/// Time to clock `bytes` onto a wire of `bps` bits per second, rounded up to the next ns.
pub fn serialization_delay(bytes: u32, bps: u64) -> Dur {
    let bits = u128::from(bytes) * 8 * 1_000_000_000;
    let bps = u128::from(bps);
    Dur(bits.div_ceil(bps).min(u128::from(u64::MAX)) as u64)
}

/// Static properties of one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkParams {
    pub delay: Dur,
    /// Bits per second; `None` is infinitely fast (no serialization delay, no queueing).
    pub bandwidth: Option<u64>,
    /// Packets that may wait for (or be in) serialization before tail drop.
    pub queue: u32,
    pub loss: Prob,
    pub duplicate: Prob,
    /// Extra delay drawn uniformly from `[0, jitter]` per copy.
    pub jitter: Dur,
    /// Segments lost by their count, not by chance.
    pub counted: CountedDrops,
}

/// Loss by count: the segments that reach this direction's wire (past the queue) are numbered
/// from 1, and those whose number is listed, or a multiple of `every`, are lost. This is the
/// loss the capture lab makes exactly on the real kernel, with an nftables `numgen inc` counter
/// at the receiver's input hook (`sim/capture/netns.rs`), so a capture and its replay lose the
/// same segments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountedDrops {
    /// Numbers of the lost segments, ascending.
    pub nth: Vec<u64>,
    /// Every `every`-th segment is lost (0: none).
    pub every: u64,
}

impl CountedDrops {
    /// Whether segment number `n` (from 1) is lost.
    pub fn drops(&self, n: u64) -> bool {
        (self.every > 0 && n % self.every == 0) || self.nth.binary_search(&n).is_ok()
    }
}

impl Default for LinkParams {
    /// A perfect link: no delay, unlimited rate, the default queue of 1000 packets.
    fn default() -> Self {
        LinkParams {
            delay: Dur::ZERO,
            bandwidth: None,
            queue: 1000,
            loss: Prob::NEVER,
            duplicate: Prob::NEVER,
            jitter: Dur::ZERO,
            counted: CountedDrops::default(),
        }
    }
}

/// One direction of a link, with its mutable state.
#[derive(Clone, Debug)]
pub struct LinkDir {
    pub params: LinkParams,
    pub up: bool,
    pub partitioned: bool,
    /// When the transmitter finishes the last accepted segment.
    busy_until: SimTime,
    /// Finish times of the accepted segments not yet fully serialized, oldest first.
    in_queue: VecDeque<SimTime>,
    /// Segments that reached the wire, for [`CountedDrops`].
    on_wire: u64,
}

impl LinkDir {
    pub fn new(params: LinkParams) -> Self {
        LinkDir {
            params,
            up: true,
            partitioned: false,
            busy_until: SimTime::ZERO,
            in_queue: VecDeque::new(),
            on_wire: 0,
        }
    }

    /// Why the link would refuse a segment right now, if it would.
    pub fn blocked(&self) -> Option<DropReason> {
        if !self.up {
            Some(DropReason::LinkDown)
        } else if self.partitioned {
            Some(DropReason::Partition)
        } else {
            None
        }
    }

    /// Segments accepted and not yet fully serialized at `now`.
    pub fn queued(&mut self, now: SimTime) -> usize {
        while self.in_queue.front().is_some_and(|&t| t <= now) {
            self.in_queue.pop_front();
        }
        self.in_queue.len()
    }

    /// Pulling the cable loses whatever waited in the transmit queue.
    pub fn flush_queue(&mut self, now: SimTime) {
        self.in_queue.clear();
        self.busy_until = now;
    }

    /// Hands `seg`, which the link state and the entry stages let through, to this direction
    /// at `now`; draws from `rng` (this direction's stream).
    pub fn transmit(&mut self, now: SimTime, seg: &Segment, rng: &mut impl RngCore) -> Transmit {
        let done = match self.params.bandwidth {
            None => now,
            Some(bps) => {
                if self.queued(now) >= self.params.queue as usize {
                    return Transmit::Dropped(DropReason::QueueFull);
                }
                let start = self.busy_until.max(now);
                let done = start + serialization_delay(wire_bytes(seg), bps);
                self.busy_until = done;
                self.in_queue.push_back(done);
                done
            }
        };
        self.on_wire += 1;
        // Before the random draws, so that a direction without counted drops draws as before.
        if self.params.counted.drops(self.on_wire) || self.params.loss.sample(rng) {
            return Transmit::Dropped(DropReason::Loss);
        }
        let dup = self.params.duplicate.sample(rng);
        let base = done + self.params.delay;
        let at = base + uniform_dur(rng, self.params.jitter);
        let dup = dup.then(|| base + uniform_dur(rng, self.params.jitter));
        Transmit::Deliver { at, dup }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::RngStreams;
    use crate::tcp::segment::{Ecn, Flags, Payload};

    fn seg(len: u32, flags: Flags) -> Segment {
        Segment {
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:80".parse().unwrap(),
            seq: 1,
            ack: 0,
            flags,
            ecn: Ecn::NotEct,
            window: 100,
            options: TcpOptions::default(),
            payload: if len == 0 { Payload::Empty } else { Payload::Derived { stream: 0, offset: 0, len } },
        }
    }

    #[test]
    fn option_lengths_match_linux_layouts() {
        let syn = TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            ..TcpOptions::default()
        };
        assert_eq!(options_wire_len(&syn), 20);
        let syn_no_ts = TcpOptions { timestamps: None, ..syn.clone() };
        assert_eq!(options_wire_len(&syn_no_ts), 12);
        let data = TcpOptions { timestamps: Some((5, 6)), ..Default::default() };
        assert_eq!(options_wire_len(&data), 12);
        let sack = TcpOptions { timestamps: Some((5, 6)), sack: vec![(1, 2), (3, 4)], ..Default::default() };
        assert_eq!(options_wire_len(&sack), 12 + 20);
    }

    #[test]
    fn serialization_rounds_up() {
        // 1000 bytes at 1 Gbit/s: 8000 ns exactly; at 3 bit/s it does not divide.
        assert_eq!(serialization_delay(1000, 1_000_000_000), Dur(8_000));
        assert_eq!(serialization_delay(1, 3), Dur(2_666_666_667));
    }

    #[test]
    fn down_beats_partition() {
        let mut l = LinkDir::new(LinkParams::default());
        l.partitioned = true;
        l.up = false;
        assert_eq!(l.blocked(), Some(DropReason::LinkDown));
        l.up = true;
        assert_eq!(l.blocked(), Some(DropReason::Partition));
        l.partitioned = false;
        assert_eq!(l.blocked(), None);
    }

    #[test]
    fn back_to_back_segments_queue_behind_each_other() {
        // 946 payload + 54 headers = 1000 bytes = 8 us at 1 Gbit/s; 1 ms propagation.
        let params = LinkParams { delay: Dur::from_millis(1), bandwidth: Some(1_000_000_000), queue: 2, ..Default::default() };
        let mut l = LinkDir::new(params);
        let mut r = RngStreams::new(0).stream("x");
        let s = seg(946, Flags::ACK);
        let t0 = SimTime(100);
        let got: Vec<Transmit> = (0..4).map(|_| l.transmit(t0, &s, &mut r)).collect();
        assert_eq!(got[0], Transmit::Deliver { at: SimTime(100 + 8_000 + 1_000_000), dup: None });
        assert_eq!(got[1], Transmit::Deliver { at: SimTime(100 + 16_000 + 1_000_000), dup: None });
        assert_eq!(got[2], Transmit::Dropped(DropReason::QueueFull));
        assert_eq!(got[3], Transmit::Dropped(DropReason::QueueFull));
        // Once the first has left the transmitter there is room for one more, behind the second.
        assert_eq!(
            l.transmit(SimTime(100 + 8_000), &s, &mut r),
            Transmit::Deliver { at: SimTime(100 + 24_000 + 1_000_000), dup: None }
        );
    }

    #[test]
    fn counted_drops_lose_the_listed_and_every_nth_segment_on_the_wire() {
        let mut r = RngStreams::new(1).stream("x");
        let lost = |counted: CountedDrops, r: &mut _| {
            let mut l = LinkDir::new(LinkParams { counted, ..Default::default() });
            (1..=12u64).filter(|_| l.transmit(SimTime(0), &seg(10, Flags::ACK), r) == Transmit::Dropped(DropReason::Loss)).collect::<Vec<_>>()
        };
        assert_eq!(lost(CountedDrops { nth: vec![3, 4, 5], every: 0 }, &mut r), [3, 4, 5]);
        assert_eq!(lost(CountedDrops { nth: vec![], every: 5 }, &mut r), [5, 10]);
        // A segment tail-dropped at the queue never reached the wire: it is not counted.
        let mut l = LinkDir::new(LinkParams { bandwidth: Some(8_000), queue: 1, counted: CountedDrops { nth: vec![2], every: 0 }, ..Default::default() });
        assert!(matches!(l.transmit(SimTime(0), &seg(10, Flags::ACK), &mut r), Transmit::Deliver { .. }));
        assert_eq!(l.transmit(SimTime(0), &seg(10, Flags::ACK), &mut r), Transmit::Dropped(DropReason::QueueFull));
        assert_eq!(l.transmit(SimTime(1_000_000_000), &seg(10, Flags::ACK), &mut r), Transmit::Dropped(DropReason::Loss));
    }

    #[test]
    fn jitter_stays_within_bounds_and_duplicates_copy() {
        let params = LinkParams {
            delay: Dur(1000),
            jitter: Dur(500),
            duplicate: Prob::new(1.0).unwrap(),
            ..Default::default()
        };
        let mut l = LinkDir::new(params);
        let mut r = RngStreams::new(9).stream("x");
        for _ in 0..100 {
            match l.transmit(SimTime(0), &seg(10, Flags::ACK), &mut r) {
                Transmit::Deliver { at, dup: Some(d) } => {
                    assert!((1000..=1500).contains(&at.0) && (1000..=1500).contains(&d.0));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
