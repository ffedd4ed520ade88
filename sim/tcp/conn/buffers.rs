//! Send and receive queues. Neither stores a byte of derived payload: the send queue keeps
//! runs of lengths (and the real bytes only of `Bytes` writes), the receive queue keeps the
//! segments' payload descriptors until `recv` materialises them.

use super::rcvmem::{Charge, RcvMem};
use crate::tcp::segment::{derived_byte, seq_gt, seq_lt, Payload};
use crate::time::SimTime;
use std::collections::VecDeque;
use std::rc::Rc;

/// One run of application data in the send queue.
#[derive(Clone, Debug)]
enum Chunk {
    /// `len` derived bytes (their offsets are implied by the position in the queue).
    Derived(u32),
    /// Real bytes: `data[start..start + len]`.
    Bytes { data: Rc<[u8]>, start: u32, len: u32 },
}

impl Chunk {
    fn len(&self) -> u32 {
        match self {
            Chunk::Derived(n) => *n,
            Chunk::Bytes { len, .. } => *len,
        }
    }
}

/// The write queue plus the retransmit queue (`sk_write_queue`, `tcp_rtx_queue`), as one
/// run-length list from `snd_una` to `write_seq` (data bytes only; SYN and FIN are flags),
/// with the boundaries of the skbs that hold it.
#[derive(Clone, Debug, Default)]
pub struct SendQueue {
    /// Stream offset of the first queued byte.
    head_off: u64,
    /// Bytes queued.
    len: u64,
    /// The runs and the skbs: boxed and allocated only while something is queued, so that
    /// an idle connection holds no memory for them and its object stays small.
    q: Option<Box<Queued>>,
}

/// What a non-empty send queue holds.
#[derive(Clone, Debug, Default)]
struct Queued {
    chunks: VecDeque<Chunk>,
    /// The skbs, in order: each ends where the next begins, the first begins at `head_off`.
    skbs: VecDeque<QueuedSkb>,
}

/// The skb list of an empty send queue.
static NO_SKBS: VecDeque<QueuedSkb> = VecDeque::new();

/// One skb of the send queue as `tcp_sendmsg_locked` built it (`tcp_stream_alloc_skb`,
/// `tcp_skb_entail`) and `tso_fragment` split it: where it ends, whether `tcp_mark_push`
/// marked it (`TCPHDR_PSH` in `TCP_SKB_CB(skb)->tcp_flags`) and whether it ends a MSG_EOR
/// write (`TCP_SKB_CB(skb)->eor`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct QueuedSkb {
    /// Stream offset one past its last byte.
    pub end: u64,
    pub psh: bool,
    /// `tcp_skb_can_collapse_to` (include/net/tcp.h) is false: no data is ever added behind
    /// this skb's end, not by a later write, `tcp_grow_skb` or the retransmit collapse.
    pub eor: bool,
}

impl SendQueue {
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Stream offset one past the last queued byte.
    pub fn end_off(&self) -> u64 {
        self.head_off + self.len
    }
    pub fn head_off(&self) -> u64 {
        self.head_off
    }

    fn skbs(&self) -> &VecDeque<QueuedSkb> {
        self.q.as_deref().map_or(&NO_SKBS, |q| &q.skbs)
    }

    fn skbs_mut(&mut self) -> &mut VecDeque<QueuedSkb> {
        &mut self.q.get_or_insert_with(Default::default).skbs
    }

    /// The tail skb, if any (nothing is allocated when the queue is empty).
    fn tail_mut(&mut self) -> Option<&mut QueuedSkb> {
        self.q.as_deref_mut().and_then(|q| q.skbs.back_mut())
    }

    fn chunks_mut(&mut self) -> &mut VecDeque<Chunk> {
        &mut self.q.get_or_insert_with(Default::default).chunks
    }

    /// The skbs queued (`sk_wmem_queued` counts a truesize for each).
    pub fn skb_count(&self) -> u32 {
        self.skbs().len() as u32
    }

    /// The last skb, if it starts at or after `unsent` (it is still in `sk_write_queue`,
    /// so `tcp_sendmsg_locked` may append to it) and does not end a record
    /// (`tcp_skb_can_collapse_to`): its length.
    pub fn unsent_tail_len(&self, unsent: u64) -> Option<u32> {
        if self.skbs().back().is_some_and(|t| t.eor) {
            return None;
        }
        let start = self.tail_start().filter(|&s| s >= unsent)?;
        Some((self.end_off() - start) as u32)
    }

    /// Where the last skb begins.
    pub fn tail_start(&self) -> Option<u64> {
        self.skbs().back()?;
        Some(self.skbs().iter().nth_back(1).map_or(self.head_off, |s| s.end))
    }

    /// `tcp_stream_alloc_skb` + `tcp_skb_entail`: a new empty skb at the tail.
    pub fn entail(&mut self) {
        let end = self.end_off();
        self.skbs_mut().push_back(QueuedSkb { end, psh: false, eor: false });
    }

    /// `tcp_sendmsg_locked` with MSG_EOR, once the whole write is queued: the tail skb ends
    /// a record (`TCP_SKB_CB(skb)->eor = 1`).
    pub fn set_tail_eor(&mut self) {
        if let Some(t) = self.tail_mut() {
            t.eor = true;
        }
    }

    /// Whether an skb ends exactly at stream offset `off` and ends a record there.
    pub fn eor_at(&self, off: u64) -> bool {
        self.skb_at(off.wrapping_sub(1)).is_some_and(|s| s.eor && s.end == off)
    }

    /// Sets or clears the tail skb's PSH (`tcp_mark_push`; `tcp_sendmsg_locked` clears it
    /// when a new write appends to the skb).
    pub fn set_tail_push(&mut self, psh: bool) {
        if let Some(t) = self.tail_mut() {
            t.psh = psh;
        }
    }

    /// The skb holding stream offset `off`: its end and PSH mark.
    pub fn skb_at(&self, off: u64) -> Option<QueuedSkb> {
        let i = self.skbs().partition_point(|s| s.end <= off);
        self.skbs().get(i).copied()
    }

    /// `tso_fragment` / `tcp_fragment`: the skb holding `at` is cut there; the PSH mark goes
    /// with the second part (`TCP_SKB_CB(skb)->tcp_flags = flags & ~(TCPHDR_FIN |
    /// TCPHDR_PSH)`, the new skb keeps `flags`), and so does the EOR mark
    /// (`tcp_skb_fragment_eor`).
    pub fn split(&mut self, at: u64) {
        let i = self.skbs().partition_point(|s| s.end <= at);
        let start = if i == 0 { self.head_off } else { self.skbs()[i - 1].end };
        if i < self.skbs().len() && at > start {
            self.skbs_mut().insert(i, QueuedSkb { end: at, psh: false, eor: false });
        }
    }

    /// `tcp_grow_skb` (tcp_output.c, 6.10+): the skb holding `off` takes up to `amount` bytes
    /// more from the front of the next one, so that it fills the congestion window's quota;
    /// a next skb emptied this way is freed and its PSH and EOR marks pass on. An skb that
    /// ends a record takes nothing (`tcp_skb_can_collapse`).
    pub fn grow_skb(&mut self, off: u64, quota: u64) {
        let i = self.skbs().partition_point(|s| s.end <= off);
        let start = if i == 0 { self.head_off } else { self.skbs()[i - 1].end };
        let (Some(&skb), Some(&next)) = (self.skbs().get(i), self.skbs().get(i + 1)) else { return };
        let amount = (start + quota).saturating_sub(skb.end);
        if amount == 0 || skb.eor {
            return;
        }
        if amount >= next.end - skb.end {
            self.skbs_mut()[i + 1].psh |= skb.psh;
            self.skbs_mut().remove(i);
        } else {
            self.skbs_mut()[i].end += amount;
        }
    }

    /// `tcp_collapse_retrans`: the skbs between stream offsets `from` and `to` become one
    /// (a retransmission sends them as one segment); their PSH marks are OR'ed, the EOR mark
    /// is the last one's (`TCP_SKB_CB(skb)->eor = TCP_SKB_CB(next_skb)->eor`; the caller
    /// merges no record's end, [`RtxSkbs::collapse`]) and the freed skbs' truesize leaves the
    /// queue.
    pub fn merge(&mut self, from: u64, to: u64) {
        let lo = self.skbs().partition_point(|s| s.end <= from);
        let hi = self.skbs().partition_point(|s| s.end < to);
        if hi <= lo || hi >= self.skbs().len() {
            return;
        }
        let psh = self.skbs().range(lo..=hi).any(|s| s.psh);
        let q = self.skbs_mut();
        q.drain(lo..hi);
        q[lo].psh = psh;
    }

    /// Marks PSH the skb holding `off` (`tcp_write_wakeup` marks the part a probe leaves).
    pub fn mark_push_at(&mut self, off: u64) {
        let i = self.skbs().partition_point(|s| s.end <= off);
        if let Some(skb) = self.q.as_deref_mut().and_then(|q| q.skbs.get_mut(i)) {
            skb.psh = true;
        }
    }

    /// Appends `n` derived bytes to the tail skb.
    pub fn push_derived(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.grow_tail(n);
        if let Some(Chunk::Derived(last)) = self.chunks_mut().back_mut() {
            if let Some(sum) = last.checked_add(n) {
                *last = sum;
                self.len += n as u64;
                return;
            }
        }
        self.chunks_mut().push_back(Chunk::Derived(n));
        self.len += n as u64;
    }

    /// Appends real bytes to the tail skb.
    pub fn push_bytes(&mut self, data: Rc<[u8]>, start: u32, len: u32) {
        if len == 0 {
            return;
        }
        self.grow_tail(len);
        self.chunks_mut().push_back(Chunk::Bytes { data, start, len });
        self.len += len as u64;
    }

    /// The tail skb grows by `n` (a caller with no skb queued gets one).
    fn grow_tail(&mut self, n: u32) {
        if self.skbs().is_empty() {
            self.entail();
        }
        if let Some(t) = self.skbs_mut().back_mut() {
            t.end += u64::from(n);
        }
    }

    /// Drops `n` acknowledged bytes from the front; the skbs they end are freed
    /// (`tcp_clean_rtx_queue`), a partly acknowledged one is trimmed (`tcp_trim_head`).
    pub fn drop_front(&mut self, mut n: u64) {
        n = n.min(self.len);
        self.len -= n;
        self.head_off += n;
        let head = self.head_off;
        let Some(q) = self.q.as_deref_mut() else { return };
        while q.skbs.front().is_some_and(|s| s.end <= head) {
            q.skbs.pop_front();
        }
        while n > 0 {
            let Some(front) = q.chunks.front_mut() else { break };
            let l = front.len() as u64;
            if l <= n {
                n -= l;
                q.chunks.pop_front();
            } else {
                let k = n as u32;
                match front {
                    Chunk::Derived(len) => *len -= k,
                    Chunk::Bytes { start, len, .. } => {
                        *start += k;
                        *len -= k;
                    }
                }
                n = 0;
            }
        }
        if q.chunks.is_empty() && q.skbs.is_empty() {
            // An idle connection holds no buffer memory.
            self.q = None;
        }
    }

    /// Discards everything (`tcp_write_queue_purge`).
    pub fn purge(&mut self) {
        self.head_off += self.len;
        self.len = 0;
        self.q = None;
    }

    /// The payload of `len` bytes at stream offset `off`: derived when the range lies in
    /// derived runs only, otherwise materialised.
    pub fn payload(&self, stream: u64, off: u64, len: u32) -> Payload {
        if len == 0 {
            return Payload::Empty;
        }
        debug_assert!(off >= self.head_off && off + len as u64 <= self.end_off());
        let mut pos = self.head_off;
        let mut out: Option<Vec<u8>> = None;
        let end = off + len as u64;
        for c in self.q.iter().flat_map(|q| &q.chunks) {
            let c_end = pos + c.len() as u64;
            if c_end <= off {
                pos = c_end;
                continue;
            }
            if pos >= end {
                break;
            }
            let from = off.max(pos);
            let to = end.min(c_end);
            match c {
                Chunk::Derived(_) => {
                    if out.is_none() && from == off && to == end {
                        return Payload::Derived { stream, offset: off, len };
                    }
                    let v = out.get_or_insert_with(|| Vec::with_capacity(len as usize));
                    v.extend((from..to).map(|o| derived_byte(stream, o)));
                }
                Chunk::Bytes { data, start, .. } => {
                    let s = (*start as u64 + (from - pos)) as usize;
                    let e = s + (to - from) as usize;
                    let v = out.get_or_insert_with(|| Vec::with_capacity(len as usize));
                    v.extend_from_slice(&data[s..e]);
                }
            }
            pos = c_end;
        }
        Payload::Bytes(out.unwrap_or_default().into())
    }
}

/// The segments sent and not yet fully acknowledged (`tcp_rtx_queue`), one entry per
/// segment, each with its end sequence, when it was last sent, its scoreboard bits
/// (`TCP_SKB_CB(skb)->sacked`) and whether it is the last segment of its skb, in sending
/// order (SYN and FIN count as one sequence number each), with the scoreboard's counters
/// (`sacked_out`, `lost_out`, `retrans_out`).
///
/// Linux counts `packets_out` in segments, not bytes: eight 100-byte writes with Nagle off
/// are eight packets (tcp_output.c `tcp_event_new_data_sent`: `tp->packets_out +=
/// tcp_skb_pcount(skb)`); every ACK that frees a never-retransmitted skb is an RTT sample
/// (`tcp_clean_rtx_queue`'s `first_ackt`, Karn's rule as `TCPCB_RETRANS`). The scoreboard
/// bits are an skb's, and an skb of several segments (a GSO skb, `tcp_tso_autosize`) is
/// retransmitted whole (`__tcp_retransmit_skb`): the entries of one skb run up to the one
/// marked `last`. Linux cuts skbs where their segments come to differ, and so do
/// the marks: at a SACK block's edges (`tcp_match_skb_to_sack` → `tcp_fragment`), at what a
/// retransmission may send ([`RtxSkbs::fragment`]), before the segment a loss probe resends
/// ([`RtxSkbs::split_last`]), after the head `tcp_newreno_mark_lost` marks; a cumulative
/// ACK inside an skb trims it (`tcp_trim_head`: the entries left keep their marks); a
/// segment longer than the MSS is cut into several when resent (`tcp_set_skb_tso_segs`). SACKed
/// skbs are not merged (`tcp_shift_skb_data` moves SACKed data onto the SACKed skb before
/// it): the un-SACKed rest is cut at the block's edge either way, and a SACKed skb is never
/// sent again, so where SACKed skbs begin and end changes nothing this model sends.
///
/// Boxed and allocated only while something is in flight, so that an idle connection holds
/// no memory for it (and the connection object stays small): the counters live in the box.
#[derive(Clone, Debug, Default)]
pub struct RtxSkbs {
    q: Option<Box<RtxQueue>>,
}

#[derive(Clone, Debug, Default)]
struct RtxQueue {
    skbs: VecDeque<SentSkb>,
    /// `sacked_out`: skbs SACKed (for a connection without SACK, duplicate ACKs, kept by
    /// the caller through [`RtxSkbs::set_reno_sacked`]).
    sacked_out: u32,
    /// `lost_out`: skbs marked `TCPCB_LOST`.
    lost_out: u32,
    /// `retrans_out`: skbs marked `TCPCB_SACKED_RETRANS`.
    retrans_out: u32,
}

/// `TCPCB_SACKED_ACKED`: the peer SACKed the skb.
const SACKED_ACKED: u8 = 0x01;
/// `TCPCB_SACKED_RETRANS`: retransmitted and not since SACKed or found lost again.
const SACKED_RETRANS: u8 = 0x02;
/// `TCPCB_LOST`: presumed lost.
const LOST: u8 = 0x04;
/// `TCPCB_EVER_RETRANS`: retransmitted at least once (Karn's rule).
const EVER_RETRANS: u8 = 0x80;

#[derive(Copy, Clone, Debug)]
struct SentSkb {
    end: u32,
    /// `TCP_SKB_CB(skb)->sacked`.
    sacked: u8,
    /// The last segment of its skb (in the padding of the entry: it costs no memory).
    last: bool,
    /// Last transmission (`skb_mstamp_ns`).
    sent: SimTime,
}

/// What one ACK freed (`tcp_clean_rtx_queue`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Acked {
    /// Skbs wholly acknowledged (`pkts_acked`).
    pub skbs: u32,
    /// Of those, the ones not SACKed before (what `tp->delivered` grows by).
    pub delivered: u32,
    /// When the first of them that was never retransmitted was sent (`first_ackt`).
    pub first_sent: Option<SimTime>,
    /// When the last of them was sent, SACKed or not (`last_ackt`; the kernel skips the
    /// SACKed ones): the algorithm's RTT sample unless `retrans`.
    pub last_sent: Option<SimTime>,
    /// One of them had been retransmitted (`FLAG_RETRANS_DATA_ACKED`).
    pub retrans: bool,
    /// The end of the first of them never retransmitted nor SACKed before
    /// (`FLAG_ORIG_SACK_ACKED` once compared with `high_seq`).
    pub orig_end: Option<u32>,
    /// The newest of them by send time, never SACKed, for RACK (`tcp_rack_advance`).
    pub rack: Option<RackSample>,
    /// The last of them in sequence order: `rack.rtt_us` is from the last skb
    /// `tcp_rack_advance` sees.
    pub last: Option<RackSample>,
    /// The lowest start of them never retransmitted nor SACKed (`tcp_clean_rtx_queue`'s
    /// `reord`, "lowest acked un-retx un-sacked seq").
    pub reord: Option<u32>,
}

/// A delivered skb's send time, end and whether it was retransmitted: what
/// `tcp_rack_advance` reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RackSample {
    pub sent: SimTime,
    pub end: u32,
    pub retrans: bool,
}

impl RackSample {
    /// `tcp_skb_sent_after`: sent later, or at the same time with a higher sequence.
    pub fn after(&self, other: &RackSample) -> bool {
        self.sent > other.sent || (self.sent == other.sent && seq_gt(self.end, other.end))
    }
}

/// What `tcp_sacktag_write_queue` found in one ACK's SACK blocks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Sacked {
    /// Skbs newly SACKed (`FLAG_DATA_SACKED`, part of `rs->acked_sacked`).
    pub newly: u32,
    /// The newest of them by send time, for RACK.
    pub rack: Option<RackSample>,
    /// The last of them in sequence order (blocks sorted, as `tcp_sacktag_write_queue`
    /// sorts them).
    pub last: Option<RackSample>,
    /// The lowest end of them never retransmitted (`FLAG_ORIG_SACK_ACKED` once compared
    /// with `high_seq`).
    pub orig_end: Option<u32>,
    /// The lowest start of them never retransmitted and below the highest SACKed sequence
    /// when tagged: a hole filled late (`state->reord`).
    pub reord: Option<u32>,
    /// `tcp_highest_sack_seq` after the blocks: the end of the highest SACKed skb.
    pub fack: u32,
}

impl RtxSkbs {
    fn iter(&self) -> impl Iterator<Item = &SentSkb> + '_ {
        self.q.iter().flat_map(|q| q.skbs.iter())
    }
    fn counter(&self, f: impl Fn(&RtxQueue) -> u32) -> u32 {
        self.q.as_deref().map_or(0, f)
    }
    /// `packets_out`.
    pub fn len(&self) -> u32 {
        self.counter(|q| q.skbs.len() as u32)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `sacked_out`.
    pub fn sacked_out(&self) -> u32 {
        self.counter(|q| q.sacked_out)
    }
    /// `lost_out`.
    pub fn lost_out(&self) -> u32 {
        self.counter(|q| q.lost_out)
    }
    /// `retrans_out`.
    pub fn retrans_out(&self) -> u32 {
        self.counter(|q| q.retrans_out)
    }
    /// `tcp_packets_in_flight` (include/net/tcp.h): `packets_out - (sacked_out + lost_out)
    /// + retrans_out`, "what we think is in the network".
    pub fn in_flight(&self) -> u32 {
        self.counter(|q| (q.skbs.len() as u32).saturating_sub(q.sacked_out + q.lost_out) + q.retrans_out)
    }
    /// A segment ending at `end` was sent for the first time at `now`; `last` when it ends
    /// its skb.
    pub fn push(&mut self, end: u32, now: SimTime, last: bool) {
        self.q.get_or_insert_with(Default::default).skbs.push_back(SentSkb { end, sacked: 0, last, sent: now });
    }
    /// Drops the skbs `ack` covers entirely (a partly acknowledged skb is trimmed, not
    /// freed, and still counts) and says what they were; their bits leave the counters
    /// (`tcp_clean_rtx_queue`). The first skb starts at `snd_una`.
    pub fn ack(&mut self, snd_una: u32, ack: u32) -> Acked {
        let mut acked = Acked::default();
        let Some(q) = self.q.as_mut() else { return acked };
        let mut start = snd_una;
        while let Some(skb) = q.skbs.front().copied().filter(|s| !seq_gt(s.end, ack)) {
            q.skbs.pop_front();
            if skb.sacked & (EVER_RETRANS | SACKED_RETRANS | SACKED_ACKED) == 0 && acked.reord.is_none() {
                acked.reord = Some(start);
            }
            start = skb.end;
            acked.skbs += 1;
            q.retrans_out -= u32::from(skb.sacked & SACKED_RETRANS != 0);
            q.lost_out -= u32::from(skb.sacked & LOST != 0);
            if skb.sacked & SACKED_ACKED != 0 {
                q.sacked_out -= 1;
            } else {
                acked.delivered += 1;
                if skb.sacked & EVER_RETRANS == 0 && acked.orig_end.is_none() {
                    acked.orig_end = Some(skb.end);
                }
                let sample = RackSample { sent: skb.sent, end: skb.end, retrans: skb.sacked & EVER_RETRANS != 0 };
                if acked.rack.is_none_or(|r| sample.after(&r)) {
                    acked.rack = Some(sample);
                }
                acked.last = Some(sample);
            }
            acked.last_sent = Some(skb.sent);
            if skb.sacked & EVER_RETRANS != 0 {
                acked.retrans = true;
            } else if acked.first_sent.is_none() {
                acked.first_sent = Some(skb.sent);
            }
        }
        if q.skbs.is_empty() {
            self.q = None;
        }
        acked
    }
    /// `tcp_sacktag_write_queue` (tcp_input.c): marks `TCPCB_SACKED_ACKED` the skbs wholly
    /// inside a SACK block above `snd_una` (blocks at or below it are D-SACKs or stale); a
    /// newly SACKed skb leaves `lost_out` and `retrans_out` (`tcp_sacktag_one`). A segment
    /// the block covers only in part is left alone: `tcp_match_skb_to_sack` cuts a GSO skb
    /// at the block's edges rounded to whole segments (up at the start, down at the end),
    /// and so does this walk, where a newly SACKed segment ends its skb and so does the one
    /// before it (`tcp_fragment`).
    pub fn sacktag(&mut self, blocks: &[(u32, u32)], snd_una: u32) -> Sacked {
        let mut out = Sacked::default();
        let Some(q) = self.q.as_mut() else { return out };
        let mut blocks = blocks.to_vec();
        blocks.sort_by_key(|b| b.0.wrapping_sub(snd_una));
        out.fack = Self::highest_sack_in(q, snd_una);
        for (start, end) in blocks {
            if !seq_gt(end, snd_una) || !seq_lt(start, end) {
                continue;
            }
            let mut skb_start = snd_una;
            for i in 0..q.skbs.len() {
                let skb = &mut q.skbs[i];
                let s = skb_start;
                skb_start = skb.end;
                if seq_lt(s, start) || seq_gt(skb.end, end) || skb.sacked & SACKED_ACKED != 0 {
                    if !seq_lt(s, end) {
                        break;
                    }
                    continue;
                }
                if skb.sacked & (EVER_RETRANS | SACKED_RETRANS) == 0 {
                    if out.orig_end.is_none_or(|e| seq_lt(skb.end, e)) {
                        out.orig_end = Some(skb.end);
                    }
                    // tcp_sacktag_one: "New sack for not retransmitted frame, which was in
                    // hole. It is reordering."
                    if seq_lt(s, out.fack) && out.reord.is_none_or(|r| seq_lt(s, r)) {
                        out.reord = Some(s);
                    }
                }
                if seq_gt(skb.end, out.fack) {
                    out.fack = skb.end;
                }
                q.retrans_out -= u32::from(skb.sacked & SACKED_RETRANS != 0);
                q.lost_out -= u32::from(skb.sacked & LOST != 0);
                skb.sacked = (skb.sacked & !(SACKED_RETRANS | LOST)) | SACKED_ACKED;
                skb.last = true;
                q.sacked_out += 1;
                out.newly += 1;
                let sample = RackSample { sent: skb.sent, end: skb.end, retrans: skb.sacked & EVER_RETRANS != 0 };
                if out.rack.is_none_or(|r| sample.after(&r)) {
                    out.rack = Some(sample);
                }
                out.last = Some(sample);
                if let Some(prev) = i.checked_sub(1).map(|p| &mut q.skbs[p]) {
                    prev.last = true;
                }
            }
        }
        out
    }
    /// `tcp_highest_sack_seq` (include/net/tcp.h): the end of the highest SACKed skb
    /// (`highest_sack` is the skb after it), `snd_una` when nothing is SACKed.
    pub fn highest_sack_seq(&self, snd_una: u32) -> u32 {
        self.q.as_deref().map_or(snd_una, |q| Self::highest_sack_in(q, snd_una))
    }

    /// Without a SACKed skb (`sacked_out` counts them) there is nothing to look for: every
    /// ACK asks, and the walk would cross the whole flight.
    fn highest_sack_in(q: &RtxQueue, snd_una: u32) -> u32 {
        if q.sacked_out == 0 {
            return snd_una;
        }
        q.skbs.iter().rev().find(|s| s.sacked & SACKED_ACKED != 0).map_or(snd_una, |s| s.end)
    }

    /// A connection without SACK counts duplicate ACKs as SACKed segments
    /// (`tcp_add_reno_sack`, `tcp_remove_reno_sacks`), at most `packets_out` less the holes,
    /// one at least (`tcp_limit_reno_sacked`).
    pub fn set_reno_sacked(&mut self, n: u32) {
        if let Some(q) = self.q.as_mut() {
            let len = q.skbs.len() as u32;
            q.sacked_out = n.min(len - q.lost_out.max(1).min(len));
        }
    }
    /// `tcp_mark_skb_lost` on the skb at `idx`: a SACKed one stays; a lost retransmission
    /// leaves `retrans_out` (`TCPCB_SACKED_RETRANS` cleared) and is retransmitted again.
    /// Returns whether it was a retransmission lost again (`FLAG_LOST_RETRANS`).
    fn mark_lost_at(q: &mut RtxQueue, idx: usize) -> (bool, bool) {
        let skb = &mut q.skbs[idx];
        if skb.sacked & SACKED_ACKED != 0 {
            return (false, false);
        }
        if skb.sacked & LOST != 0 {
            if skb.sacked & SACKED_RETRANS != 0 {
                skb.sacked &= !SACKED_RETRANS;
                q.retrans_out -= 1;
                return (false, true);
            }
            return (false, false);
        }
        skb.sacked |= LOST;
        q.lost_out += 1;
        (true, false)
    }
    /// `tcp_newreno_mark_lost`'s marking: the head skb is lost, cut to its first segment
    /// first (`tcp_fragment(sk, TCP_FRAG_IN_RTX_QUEUE, skb, mss, mss, GFP_ATOMIC)` when
    /// `tcp_skb_pcount(skb) > 1`).
    pub fn mark_head_lost(&mut self) -> bool {
        let Some(q) = self.q.as_mut() else { return false };
        if q.skbs.is_empty() || q.skbs[0].sacked & LOST != 0 {
            return false;
        }
        q.skbs[0].last = true;
        Self::mark_lost_at(q, 0).0
    }
    /// `tcp_rack_detect_loss` (tcp_recovery.c) over the queue: every skb not SACKed, sent
    /// before the newest delivered one (`rack`), whose time to be declared lost
    /// (`rack_rtt_us + reo_wnd - elapsed`, `tcp_rack_skb_timeout`) has come, is marked lost
    /// (`tcp_mark_skb_lost`). Returns the newly lost, the lost retransmissions, and the
    /// longest wait left among the others (µs), for the reordering timer.
    pub fn rack_detect_loss(&mut self, rack: &RackSample, rtt_us: u64, reo_wnd_us: u64, now: SimTime) -> (u32, u32, Option<u64>) {
        let (mut newly, mut lost_retrans, mut wait) = (0, 0, None::<u64>);
        let Some(q) = self.q.as_mut() else { return (0, 0, None) };
        for idx in 0..q.skbs.len() {
            let skb = q.skbs[idx];
            // A lost skb not yet retransmitted is already accounted.
            if skb.sacked & SACKED_ACKED != 0 || (skb.sacked & LOST != 0 && skb.sacked & SACKED_RETRANS == 0) {
                continue;
            }
            let sample = RackSample { sent: skb.sent, end: skb.end, retrans: false };
            if !rack.after(&sample) {
                // The queue is in sequence order, which is first-send order: past a
                // never-retransmitted skb sent after the newest delivered one, every skb
                // was sent after it too (Linux walks `tsorted_sent_queue` and stops at the
                // first); a retransmitted one says nothing of those behind it.
                if skb.sacked & EVER_RETRANS == 0 {
                    break;
                }
                continue;
            }
            let elapsed = now.since(skb.sent).as_micros();
            let remaining = (rtt_us + reo_wnd_us) as i64 - elapsed as i64;
            if remaining <= 0 {
                let (n, r) = Self::mark_lost_at(q, idx);
                newly += u32::from(n);
                lost_retrans += u32::from(r);
            } else {
                wait = Some(wait.map_or(remaining as u64, |w: u64| w.max(remaining as u64)));
            }
        }
        (newly, lost_retrans, wait)
    }
    /// The first skb to retransmit (`tcp_xmit_retransmit_queue`): lost, not SACKed, not
    /// retransmitted since it was marked; its start sequence given `snd_una`.
    pub fn next_lost(&self, snd_una: u32) -> Option<u32> {
        let mut start = snd_una;
        for skb in self.iter() {
            if skb.sacked & (LOST | SACKED_ACKED | SACKED_RETRANS) == LOST {
                return Some(start);
            }
            start = skb.end;
        }
        None
    }
    /// `tcp_timeout_mark_lost` (tcp_input.c): after an RTO every skb not SACKed is lost,
    /// retransmitted ones too (`tcp_mark_skb_lost` clears `TCPCB_SACKED_RETRANS`). Linux
    /// spares skbs RACK would not yet time out; the model marks them all.
    pub fn timeout_mark_lost(&mut self) {
        if let Some(q) = self.q.as_mut() {
            for skb in q.skbs.iter_mut().filter(|s| s.sacked & SACKED_ACKED == 0) {
                skb.sacked = (skb.sacked & !SACKED_RETRANS) | LOST;
            }
            q.lost_out = q.skbs.len() as u32 - q.sacked_out;
            q.retrans_out = 0;
        }
    }
    /// `tcp_undo_cwnd_reduction` with `unmark_loss`: no skb is lost any more.
    pub fn clear_lost(&mut self) {
        if let Some(q) = self.q.as_mut() {
            for skb in q.skbs.iter_mut() {
                skb.sacked &= !LOST;
            }
            q.lost_out = 0;
        }
    }
    /// `tcp_sacktag_one` with `dup_sack`: the retransmitted skbs (`TCPCB_RETRANS`) wholly
    /// inside the D-SACK block `[start, end)` and ending after `after`, the queue starting at
    /// `snd_una`: each a retransmission shown spurious.
    pub fn retransmitted_within(&self, snd_una: u32, start: u32, end: u32, after: u32) -> u32 {
        let mut skb_start = snd_una;
        let mut n = 0;
        for skb in self.iter() {
            let s = std::mem::replace(&mut skb_start, skb.end);
            if !seq_lt(s, end) {
                break;
            }
            let inside = !seq_lt(s, start) && !seq_gt(skb.end, end);
            n += u32::from(inside && skb.sacked & EVER_RETRANS != 0 && seq_gt(skb.end, after));
        }
        n
    }
    /// The head skb was ever retransmitted (`TCPCB_EVER_RETRANS`, `tcp_any_retrans_done`).
    pub fn head_ever_retrans(&self) -> bool {
        self.q.as_ref().and_then(|q| q.skbs.front()).is_some_and(|s| s.sacked & EVER_RETRANS != 0)
    }
    /// `__tcp_retransmit_skb`'s `tcp_fragment` (`skb->len > len`): of the skb whose first
    /// segment holds `seq`, at most `segs` segments (`cur_mss * segs`) that end within the
    /// peer's window (`len = rounddown(avail_wnd, cur_mss)`) are sent again; the rest becomes
    /// an skb of its own, with the same bits. A segment longer than `mss` (sent before the
    /// MSS fell) is cut into segments of `mss` first (`resegment`). Returns how
    /// many. The queue starts at `snd_una`; `fin` is the FIN's sequence number if one is
    /// queued. A segment is the unit here: the first one goes whatever the window (Linux
    /// sends the part of it the window takes, and nothing past the window above `snd_una`,
    /// `-EAGAIN`), and Linux, counting bytes, would cut the segment after one that a partial
    /// ACK trimmed.
    pub fn fragment(&mut self, seq: u32, segs: u32, wnd_end: u32, snd_una: u32, mss: u32, fin: Option<u32>) -> u32 {
        let Some(q) = self.q.as_mut() else { return 0 };
        let Some(mut i) = q.skbs.iter().position(|s| seq_gt(s.end, seq)) else { return 0 };
        let mut start = if i == 0 { snd_una } else { q.skbs[i - 1].end };
        let mut n = 1;
        loop {
            Self::resegment(q, i, start, mss, fin);
            if q.skbs[i].last || n == segs || q.skbs.get(i + 1).is_none_or(|s| seq_gt(s.end, wnd_end)) {
                break;
            }
            start = q.skbs[i].end;
            i += 1;
            n += 1;
        }
        q.skbs[i].last = true;
        n
    }
    /// `tcp_set_skb_tso_segs(skb, cur_mss)` in `__tcp_retransmit_skb`: the segment at `i`
    /// (from `start`), if its data is longer than `mss` — SYN data sent before the SYN-ACK
    /// lowered the MSS (`tcp_rcv_fastopen_synack`) — becomes as many segments as `mss`
    /// makes of it, each with its bits, which the counters count (`tcp_adjust_pcount`); the
    /// FIN stays on the last.
    fn resegment(q: &mut RtxQueue, i: usize, start: u32, mss: u32, fin: Option<u32>) {
        let skb = q.skbs[i];
        let data_end = skb.end.wrapping_sub(u32::from(fin.is_some_and(|f| f.wrapping_add(1) == skb.end)));
        let mut at = start.wrapping_add(mss);
        let mut k = i;
        while seq_lt(at, data_end) {
            q.skbs.insert(k, SentSkb { end: at, last: false, ..skb });
            q.lost_out += u32::from(skb.sacked & LOST != 0);
            q.retrans_out += u32::from(skb.sacked & SACKED_RETRANS != 0);
            k += 1;
            at = at.wrapping_add(mss);
        }
    }
    /// `tcp_send_loss_probe`: the last skb sent is cut so that its last segment is an skb
    /// of its own (`tcp_fragment` at `(pcount - 1) * mss`), the one the probe resends.
    pub fn split_last(&mut self) {
        if let Some(q) = self.q.as_mut() {
            if let Some(i) = q.skbs.len().checked_sub(2) {
                q.skbs[i].last = true;
            }
        }
    }
    /// The skb holding `seq` was sent again at `now` (`__tcp_retransmit_skb`, which the loss
    /// probe calls alone): `TCPCB_EVER_RETRANS` and a new `skb_mstamp_ns`, no counter.
    pub fn mark_resent(&mut self, seq: u32, now: SimTime) {
        let Some(q) = self.q.as_mut() else { return };
        if let Some(skb) = q.skbs.iter_mut().find(|s| seq_gt(s.end, seq)) {
            skb.sacked |= EVER_RETRANS;
            skb.sent = now;
        }
    }
    /// `tcp_retransmit_skb`'s part once `__tcp_retransmit_skb` sent the skb holding `seq`:
    /// `TCPCB_SACKED_RETRANS` and `retrans_out`.
    pub fn mark_retrans(&mut self, seq: u32) {
        let Some(q) = self.q.as_mut() else { return };
        if let Some(skb) = q.skbs.iter_mut().find(|s| seq_gt(s.end, seq)) {
            if skb.sacked & SACKED_RETRANS == 0 {
                q.retrans_out += 1;
            }
            skb.sacked |= SACKED_RETRANS;
        }
    }
    /// `tcp_retrans_try_collapse` (tcp_output.c, `tcp_retrans_collapse` = 1): before the skb
    /// holding `seq` is retransmitted, the skbs after it are merged into it while the data
    /// fits one `mss` and the peer's window (`wnd_end`), and until it ends a record
    /// (`tcp_skb_can_collapse(to, skb)`: `eor_at(end)` for an skb ending at `end`; the
    /// merged skb takes the last one's mark, `tcp_collapse_retrans`). `fin` is the FIN's
    /// sequence number if one is queued: it takes no space. Never for a SYN (the caller's
    /// concern). Only one-segment skbs merge: the one at `seq` is sent whole only if it is
    /// shorter than `cur_mss` (`skb->len < avail_wnd`), and `tcp_can_collapse` takes no
    /// skb of more than one segment (`tcp_skb_pcount(skb) > 1`).
    pub fn collapse(&mut self, seq: u32, snd_una: u32, mss: u32, wnd_end: u32, fin: Option<u32>, eor_at: impl Fn(u32) -> bool) {
        let Some(rq) = self.q.as_mut() else { return };
        let q = &mut rq.skbs;
        let Some(i) = q.iter().position(|s| seq_gt(s.end, seq)).filter(|&i| q[i].last) else { return };
        let data_len = |start: u32, end: u32| end.wrapping_sub(start).wrapping_sub(fin.is_some_and(|f| f.wrapping_add(1) == end) as u32);
        let start = if i == 0 { snd_una } else { q[i - 1].end };
        let mut space = mss as i64 - data_len(start, q[i].end) as i64;
        while let Some(next) = q.get(i + 1).copied().filter(|_| !eor_at(q[i].end)) {
            space -= data_len(q[i].end, next.end) as i64;
            // tcp_can_collapse: never a SACKed skb, nor one of several segments.
            if space < 0 || seq_gt(next.end, wnd_end) || next.sacked & SACKED_ACKED != 0 || !next.last {
                break;
            }
            // tcp_collapse_retrans: the merged skb keeps only EVER_RETRANS of the next
            // one's bits, whose counts go (`tcp_adjust_pcount`).
            rq.retrans_out -= u32::from(next.sacked & SACKED_RETRANS != 0);
            rq.lost_out -= u32::from(next.sacked & LOST != 0);
            q[i].end = next.end;
            q[i].sacked |= next.sacked & EVER_RETRANS;
            q.remove(i + 1);
        }
    }
    /// Skbs that end at or before `seq`.
    pub fn count_upto(&self, seq: u32) -> u32 {
        self.iter().take_while(|s| !seq_gt(s.end, seq)).count() as u32
    }
    /// The end of the skb holding sequence `seq`.
    pub fn end_of(&self, seq: u32) -> Option<u32> {
        self.iter().map(|s| s.end).find(|&e| seq_gt(e, seq))
    }
    /// The start of the last skb sent (`skb_rb_last`), given `snd_una`.
    pub fn last_start(&self, snd_una: u32) -> Option<u32> {
        let q = &self.q.as_ref()?.skbs;
        match q.len() {
            0 => None,
            1 => Some(snd_una),
            n => Some(q[n - 2].end),
        }
    }
    /// `tcp_write_queue_purge`.
    pub fn purge(&mut self) {
        self.q = None;
    }
}

/// `len` bytes of `p` from `start`.
pub fn slice_payload(p: &Payload, start: u32, len: u32) -> Payload {
    if len == 0 {
        return Payload::Empty;
    }
    match p {
        Payload::Empty => Payload::Empty,
        Payload::Derived { stream, offset, .. } => {
            Payload::Derived { stream: *stream, offset: offset + start as u64, len }
        }
        Payload::Bytes(b) => Payload::Bytes(b[start as usize..(start + len) as usize].into()),
    }
}

fn append_bytes(p: &Payload, start: u32, len: u32, out: &mut Vec<u8>) {
    match p {
        Payload::Empty => {}
        Payload::Derived { stream, offset, .. } => {
            let o = offset + start as u64;
            out.extend((o..o + len as u64).map(|i| derived_byte(*stream, i)));
        }
        Payload::Bytes(b) => out.extend_from_slice(&b[start as usize..(start + len) as usize]),
    }
}

/// The receive queue (`sk_receive_queue`) and the out-of-order queue (`out_of_order_queue`).
#[derive(Clone, Debug, Default)]
pub struct RecvQueue {
    /// In-order payloads, each with its memory charge (their skbs' boundaries);
    /// `front_skip` bytes of the first were already read.
    inorder: VecDeque<(Payload, Charge)>,
    front_skip: u32,
    /// In-order bytes not yet read (`rcv_nxt - copied_seq`).
    avail: u32,
    /// Out-of-order segments by sequence number, sorted, non-overlapping, each with its
    /// memory charge; boxed and allocated only while one is held (a connection without
    /// loss or reordering never holds one, and its object stays small).
    #[allow(clippy::box_collection)] // 8 bytes in the connection object, not a VecDeque's 32
    ooo: Option<Box<VecDeque<(u32, Payload, Charge)>>>,
    ooo_bytes: u32,
    /// The memory both queues' skbs are charged (`sk_rmem_alloc`).
    mem: RcvMem,
}

impl RecvQueue {
    pub fn avail(&self) -> u32 {
        self.avail
    }
    pub fn ooo_bytes(&self) -> u32 {
        self.ooo_bytes
    }
    pub fn has_ooo(&self) -> bool {
        self.ooo.as_ref().is_some_and(|q| !q.is_empty())
    }
    /// `sk_rmem_alloc`: the truesize of the skbs both queues hold ([`RcvMem`]).
    pub fn rmem_alloc(&self) -> u32 {
        self.mem.rmem_alloc()
    }

    /// Queues a segment's in-order payload (`tcp_queue_rcv`).
    pub fn push_inorder(&mut self, p: Payload) {
        if p.is_empty() {
            return;
        }
        let charge = self.mem.queue(p.len());
        self.append_inorder(p, charge);
    }

    fn append_inorder(&mut self, p: Payload, charge: Charge) {
        self.avail += p.len();
        self.inorder.push_back((p, charge));
    }

    /// Copies (or, with `peek`, looks at) up to `len` bytes (`tcp_recvmsg_locked`).
    pub fn read(&mut self, len: u32, peek: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(len.min(self.avail) as usize);
        self.read_into(len, peek, Some(&mut out));
        out
    }

    /// Takes (or, with `peek`, looks at) up to `len` bytes and returns how many: their bytes
    /// are appended to `copy` if there is one, and never generated otherwise (`MSG_TRUNC`,
    /// `tcp_recvmsg_locked` skips `skb_copy_datagram_msg`): a program that only counts
    /// what it receives costs nothing per byte.
    pub fn read_into(&mut self, len: u32, peek: bool, mut copy: Option<&mut Vec<u8>>) -> u32 {
        let n = len.min(self.avail);
        let mut skip = self.front_skip;
        let mut left = n;
        let mut consumed_whole = 0;
        for (p, _) in &self.inorder {
            if left == 0 {
                break;
            }
            let take = (p.len() - skip).min(left);
            if let Some(out) = copy.as_deref_mut() {
                append_bytes(p, skip, take, out);
            }
            left -= take;
            if skip + take == p.len() {
                consumed_whole += 1;
                skip = 0;
            } else {
                skip += take;
            }
        }
        if !peek {
            for i in 0..consumed_whole {
                self.mem.eat(self.inorder[i].1, self.inorder.get(i + 1).map(|(_, c)| *c));
            }
            self.inorder.drain(..consumed_whole);
            self.front_skip = skip;
            self.avail -= n;
            if self.inorder.is_empty() {
                self.inorder = VecDeque::new();
            }
        }
        n
    }

    /// Drops all unread in-order data (close()).
    pub fn purge(&mut self) {
        *self = RecvQueue::default();
    }

    /// Queues an out-of-order segment starting at `seq`, trimming overlaps with what is
    /// already held (`tcp_data_queue_ofo`; the earlier copy wins). The queue is sorted and
    /// its ranges disjoint, so the held ranges the segment overlaps are found by binary
    /// search (Linux keeps an rbtree): O(log n) plus the overlaps, not a scan.
    /// Returns whether the segment was kept (part of it was new) and, if so, whether it was
    /// coalesced onto the rightmost held skb (`tcp_ooo_try_coalesce`).
    pub fn insert_ooo(&mut self, seq: u32, p: Payload) -> Option<bool> {
        let end = seq.wrapping_add(p.len());
        let ooo = self.ooo.get_or_insert_with(Default::default);
        let lo = ooo.partition_point(|(s, q, _)| !seq_gt(s.wrapping_add(q.len()), seq));
        let hi = ooo.partition_point(|(s, _, _)| seq_lt(*s, end));
        let last_end = ooo.back().map(|(s, q, _)| s.wrapping_add(q.len()));
        // The parts of [seq, end) no held range covers.
        let mut gaps = Vec::new();
        let mut at = seq;
        for (s, q, _) in ooo.range(lo..hi.max(lo)) {
            if seq_lt(at, *s) {
                gaps.push((at, *s));
            }
            let q_end = s.wrapping_add(q.len());
            if seq_gt(q_end, at) {
                at = q_end;
            }
        }
        if seq_lt(at, end) {
            gaps.push((at, end));
        }
        let mut kept = None;
        for (gs, ge) in gaps {
            let len = ge.wrapping_sub(gs);
            self.ooo_bytes += len;
            let piece = slice_payload(&p, gs.wrapping_sub(seq), len);
            let at = ooo.partition_point(|(x, _, _)| seq_lt(*x, gs));
            let rightmost = at == ooo.len();
            let charge = self.mem.ofo_insert(len, rightmost && last_end == Some(gs), rightmost);
            kept.get_or_insert(charge.coalesced());
            ooo.insert(at, (gs, piece, charge));
        }
        if ooo.is_empty() {
            self.ooo = None;
        }
        kept
    }

    /// Moves segments that became in-order at `rcv_nxt` to the receive queue and returns the
    /// new `rcv_nxt` (`tcp_ofo_queue`). Segments wholly below `rcv_nxt` are dropped.
    pub fn pull_ooo(&mut self, mut rcv_nxt: u32) -> u32 {
        let Some(mut ooo) = self.ooo.take() else { return rcv_nxt };
        while let Some((s, p, _)) = ooo.front() {
            let (s, len) = (*s, p.len());
            let end = s.wrapping_add(len);
            if seq_gt(s, rcv_nxt) {
                break;
            }
            let Some((_, p, charge)) = ooo.pop_front() else { break };
            self.ooo_bytes -= len;
            if seq_gt(end, rcv_nxt) {
                let off = rcv_nxt.wrapping_sub(s);
                let charge = self.mem.ofo_to_queue(charge);
                self.append_inorder(slice_payload(&p, off, len - off), charge);
                rcv_nxt = end;
            } else {
                self.mem.ofo_free(charge);
            }
        }
        if !ooo.is_empty() {
            self.ooo = Some(ooo);
        }
        rcv_nxt
    }

    /// The out-of-order ranges, for SACK blocks (RFC 2018), merged where contiguous.
    pub fn ooo_ranges(&self) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = Vec::new();
        for (s, p, _) in self.ooo.iter().flat_map(|q| q.iter()) {
            let e = s.wrapping_add(p.len());
            match v.last_mut() {
                Some(last) if last.1 == *s => last.1 = e,
                _ => v.push((*s, e)),
            }
        }
        v
    }

    /// Drops the out-of-order queue (`tcp_fin` purges it).
    pub fn purge_ooo(&mut self) {
        for (_, _, charge) in self.ooo.take().into_iter().flat_map(|q| *q) {
            self.mem.ofo_free(charge);
        }
        self.ooo_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_queue_mixes_derived_and_bytes() {
        let mut q = SendQueue::default();
        q.push_derived(10);
        q.push_derived(5);
        q.push_bytes(Rc::from(&b"hello"[..]), 0, 5);
        assert_eq!(q.len(), 20);
        assert_eq!(q.payload(7, 2, 4), Payload::Derived { stream: 7, offset: 2, len: 4 });
        let mixed = q.payload(7, 13, 4).to_bytes();
        assert_eq!(mixed, vec![derived_byte(7, 13), derived_byte(7, 14), b'h', b'e']);
        q.drop_front(16);
        assert_eq!(q.payload(7, 16, 4).to_bytes(), b"ello".to_vec());
    }

    #[test]
    fn recv_queue_reorders_and_trims_overlaps() {
        let mut r = RecvQueue::default();
        let d = |off: u64, len: u32| Payload::Derived { stream: 1, offset: off, len };
        r.insert_ooo(110, d(10, 10));
        r.insert_ooo(105, d(5, 10)); // overlaps the first; only 105..110 is new
        assert_eq!(r.ooo_bytes(), 15);
        assert_eq!(r.ooo_ranges(), vec![(105, 120)]);
        r.push_inorder(d(0, 5));
        let nxt = r.pull_ooo(105);
        assert_eq!(nxt, 120);
        let got = r.read(100, true);
        assert_eq!(got, (0..20).map(|i| derived_byte(1, i)).collect::<Vec<_>>());
        assert_eq!(r.read(7, false).len(), 7);
        assert_eq!(r.read(100, false), (7..20).map(|i| derived_byte(1, i)).collect::<Vec<_>>());
        assert_eq!(r.avail(), 0);
    }

    #[test]
    fn ooo_queue_holds_each_byte_once_whatever_the_arrival_order() {
        // Random segments over a 4 KiB window (crossing the sequence wrap), against a byte map.
        let base = u32::MAX - 2000;
        let mut r = RecvQueue::default();
        let mut held = vec![false; 4096];
        let mut rng = 0x1234_5678_u64;
        r.insert_ooo(base, Payload::Derived { stream: 3, offset: 0, len: 50 });
        held[..50].iter_mut().for_each(|b| *b = true);
        for _ in 0..500 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let off = (rng >> 33) as u32 % 4000;
            let len = 1 + (rng >> 20) as u32 % 96;
            r.insert_ooo(base.wrapping_add(off), Payload::Derived { stream: 3, offset: off as u64, len });
            held[off as usize..(off + len) as usize].iter_mut().for_each(|b| *b = true);
            assert_eq!(r.ooo_bytes(), held.iter().filter(|b| **b).count() as u32);
        }
        // The ranges are sorted, disjoint, and cover exactly the held bytes.
        let mut covered = vec![false; 4096];
        for (s, e) in r.ooo_ranges() {
            let (s, e) = (s.wrapping_sub(base), e.wrapping_sub(base));
            assert!(s < e);
            covered[s as usize..e as usize].iter_mut().for_each(|b| *b = true);
        }
        assert_eq!(covered, held);
        // Every held byte is the one its offset derives (slices kept their offsets).
        let first_hole = held.iter().position(|b| !*b).unwrap_or(4096) as u32;
        assert!(first_hole >= 50);
        r.push_inorder(Payload::Empty);
        let nxt = r.pull_ooo(base);
        assert_eq!(nxt, base.wrapping_add(first_hole));
        let got = r.read(first_hole, false);
        assert_eq!(got, (0..first_hole as u64).map(|o| derived_byte(3, o)).collect::<Vec<_>>());
    }

    /// Ten 1000-byte skbs from sequence 1, all sent at 10 ms (one TSO burst).
    fn ten_skbs() -> RtxSkbs {
        let mut q = RtxSkbs::default();
        for i in 1..=10u32 {
            q.push(1 + i * 1000, SimTime(10_000_000), true);
        }
        q
    }

    /// Five GSO skbs of two 1000-byte segments each from sequence 1 (`tcp_tso_autosize` at
    /// `tcp_min_tso_segs`), all sent at 10 ms.
    fn five_gso_skbs() -> RtxSkbs {
        let mut q = RtxSkbs::default();
        for i in 1..=10u32 {
            q.push(1 + i * 1000, SimTime(10_000_000), i % 2 == 0);
        }
        q
    }

    /// packetdrill sack/sack-route-refresh-ip-tos in 1000-byte segments: the ACK of 1001
    /// trims the first skb to its second segment (`tcp_trim_head`), the SACK of 3001:4001
    /// cuts the second at 3001 (`tcp_match_skb_to_sack` → `tcp_fragment`), so the first hole
    /// is two one-segment skbs and the second (4001:6001) one skb of two segments, resent
    /// whole when cwnd allows two, else cut to what it allows (`__tcp_retransmit_skb`).
    #[test]
    fn gso_skbs_are_cut_at_sack_edges_and_resent_whole() {
        let mut q = five_gso_skbs();
        q.ack(1, 1001);
        assert_eq!(q.sacktag(&[(3001, 4001), (6001, 10001)], 1001).newly, 1 + 4);
        q.timeout_mark_lost();
        assert_eq!((q.lost_out(), q.next_lost(1001)), (4, Some(1001)));
        let wnd_end = 100_000;
        assert_eq!(q.fragment(1001, 6, wnd_end, 1001, 1000, None), 1, "the trimmed skb: one segment left");
        assert_eq!(q.fragment(2001, 6, wnd_end, 1001, 1000, None), 1, "cut where the SACK block starts");
        assert_eq!(q.fragment(4001, 1, wnd_end, 1001, 1000, None), 1, "cut to one segment");
        assert_eq!(q.fragment(5001, 6, wnd_end, 1001, 1000, None), 1, "the rest is an skb of its own");
        let mut q = five_gso_skbs();
        assert_eq!(q.fragment(4001, 6, wnd_end, 1, 1000, None), 2, "a whole skb");
        assert_eq!(q.fragment(4001, 6, 5001, 1, 1000, None), 1, "the peer's window takes one segment");
        assert_eq!(q.fragment(6001, 6, 6001, 1, 1000, None), 1, "the first segment goes whatever the window");
    }

    /// SYN data of 1420 bytes sent as one segment, of which the SYN-ACK acknowledges 100 and
    /// lowers the MSS to 1000 (packetdrill fastopen/client/syn-data-partial-or-over-ack):
    /// resent, the 1320 bytes left are two segments (`tcp_set_skb_tso_segs`), both lost and
    /// then retransmitted (`tcp_adjust_pcount`); with room for one, the second is cut off.
    #[test]
    fn a_segment_longer_than_the_mss_is_resent_as_several() {
        let mut q = RtxSkbs::default();
        q.push(1421, SimTime(10_000_000), true);
        q.timeout_mark_lost();
        assert_eq!(q.fragment(101, 1, 100_000, 101, 1000, None), 1);
        assert_eq!((q.len(), q.lost_out(), q.end_of(101)), (2, 2, Some(1101)));
        let mut q = RtxSkbs::default();
        q.push(1422, SimTime(10_000_000), true);
        q.timeout_mark_lost();
        assert_eq!(q.fragment(101, 10, 100_000, 101, 1000, Some(1421)), 2, "the FIN takes no room");
        q.mark_retrans(101);
        q.mark_retrans(1101);
        assert_eq!((q.len(), q.lost_out(), q.retrans_out(), q.end_of(1101)), (2, 2, 2, Some(1422)));
    }

    /// The loss probe resends the last segment alone (`tcp_send_loss_probe` cuts the last
    /// skb); NewReno marks the head's first segment lost, cut from the rest
    /// (`tcp_newreno_mark_lost`); the retransmit collapse neither starts from nor takes in
    /// an skb of several segments (`tcp_can_collapse`).
    #[test]
    fn probe_newreno_and_collapse_cut_or_keep_gso_skbs() {
        let wnd_end = 100_000;
        let mut q = five_gso_skbs();
        q.split_last();
        assert_eq!((q.fragment(9001, 6, wnd_end, 1, 1000, None), q.fragment(8001, 6, wnd_end, 1, 1000, None)), (1, 1));
        let mut q = five_gso_skbs();
        assert!(q.mark_head_lost());
        assert_eq!((q.lost_out(), q.fragment(1, 6, wnd_end, 1, 1000, None), q.fragment(1001, 6, wnd_end, 1, 1000, None)), (1, 1, 1));
        let mut q = five_gso_skbs();
        q.collapse(1, 1, 3000, wnd_end, None, |_| false);
        assert_eq!(q.len(), 10, "the head skb has two segments");
        q.ack(1, 1001);
        q.collapse(1001, 1001, 3000, wnd_end, None, |_| false);
        assert_eq!((q.len(), q.end_of(1001)), (9, Some(2001)), "the next skb has two segments");
    }

    /// The loss probe's skb (`__tcp_retransmit_skb` alone) is not back in flight: RACK
    /// marks it lost like any other skb, and it is retransmitted once lost; the
    /// acknowledgement of a resent skb gives no RTT sample (Karn), of a fresh one the send
    /// time of the last skb freed.
    #[test]
    fn a_probed_skb_stays_out_of_retrans_out_and_can_be_marked_lost() {
        let mut q = ten_skbs();
        q.mark_resent(10_001, SimTime(20_000_000));
        assert_eq!((q.retrans_out(), q.in_flight()), (0, 10));
        let later = RackSample { sent: SimTime(40_000_000), end: 11_001, retrans: false };
        let (lost, _, _) = q.rack_detect_loss(&later, 10_000, 0, SimTime(50_000_000));
        assert_eq!(lost, 10, "the probed skb is lost with the others");
        assert_eq!(q.next_lost(1), Some(1));
        let acked = q.ack(1, 2001);
        assert_eq!((acked.retrans, acked.last_sent), (false, Some(SimTime(10_000_000))));
        q.mark_resent(2001, SimTime(60_000_000));
        q.mark_retrans(2001);
        assert_eq!((q.retrans_out(), q.lost_out()), (1, 8));
        assert!(q.ack(2001, 3001).retrans);
    }

    /// packetdrill fast_recovery/prr-ss-30pkt-lost1_4: packets 1-4 lost, SACKs of 5-7.
    #[test]
    fn sacktag_counts_whole_skbs_once_and_in_flight_follows() {
        let mut q = ten_skbs();
        let s = q.sacktag(&[(4001, 5001)], 1);
        assert_eq!((s.newly, q.sacked_out(), q.in_flight()), (1, 1, 9));
        // A growing block SACKs only what is new.
        let s = q.sacktag(&[(4001, 7001)], 1);
        assert_eq!((s.newly, q.sacked_out()), (2, 3));
        assert_eq!(s.rack.map(|r| r.end), Some(7001), "the newest, ties to the higher sequence");
        // A block covering part of an skb does not SACK it.
        assert_eq!(q.sacktag(&[(7001, 7500)], 1).newly, 0);
        assert_eq!(q.in_flight(), 10 - 3);
        // Once acknowledged, a block at or below snd_una (a D-SACK) is ignored.
        assert_eq!(q.ack(1, 1001).delivered, 1);
        assert_eq!(q.sacktag(&[(1, 1001)], 1001).newly, 0);
        assert_eq!((q.len(), q.sacked_out()), (9, 3));
    }

    /// A D-SACK above snd_una counts the retransmitted skbs wholly inside it, after the
    /// undo marker.
    #[test]
    fn a_d_sack_counts_the_retransmissions_it_covers() {
        let mut q = ten_skbs();
        q.mark_resent(2001, SimTime(30_000_000));
        q.mark_resent(3001, SimTime(30_000_000));
        assert_eq!(q.retransmitted_within(1, 2001, 4001, 1), 2);
        assert_eq!(q.retransmitted_within(1, 2001, 3500, 1), 1, "only whole skbs");
        assert_eq!(q.retransmitted_within(1, 2001, 4001, 3001), 1, "ends after the marker");
        assert_eq!(q.retransmitted_within(1, 4001, 6001, 1), 0, "never retransmitted");
    }

    /// RACK with no reordering window (three SACKed): everything sent no later than the
    /// newest delivered skb and below it is lost; a retransmission takes it back into flight;
    /// the cumulative ACK takes the bits out of the counters.
    #[test]
    fn rack_marks_lost_and_retransmissions_count_in_flight() {
        let mut q = ten_skbs();
        let newest = q.sacktag(&[(4001, 7001)], 1).rack.unwrap();
        let now = SimTime(24_000_000);
        let (lost, lost_retrans, wait) = q.rack_detect_loss(&newest, 14_000, 0, now);
        assert_eq!((lost, lost_retrans, wait), (4, 0, None));
        // packets_out 10 - (sacked 3 + lost 4) + retrans 0.
        assert_eq!((q.lost_out(), q.in_flight()), (4, 3));
        assert_eq!(q.next_lost(1), Some(1));
        q.mark_resent(1, now);
        q.mark_retrans(1);
        assert_eq!((q.retrans_out(), q.in_flight(), q.next_lost(1)), (1, 4, Some(1001)));
        // The later skbs (7001:11001) are after the newest: not lost; with a window of
        // 2.5 ms they would not be anyway, the earliest ones waiting 2.5 ms at most.
        let mut r = ten_skbs();
        let newest = r.sacktag(&[(4001, 5001)], 1).rack.unwrap();
        let (lost, _, wait) = r.rack_detect_loss(&newest, 10_000, 2_500, SimTime(20_000_000));
        assert_eq!((lost, wait), (0, Some(2_500)));
        let acked = q.ack(1, 2001);
        assert_eq!((acked.skbs, acked.delivered, acked.retrans), (2, 2, true));
        // 1:1001 was retransmitted; 1001:2001, never resent nor SACKed, is `reord`.
        assert_eq!(acked.reord, Some(1001));
        assert_eq!((q.lost_out(), q.retrans_out(), q.sacked_out()), (2, 0, 3));
    }

    /// A retransmission found lost again leaves retrans_out (`tcp_mark_skb_lost`); an RTO
    /// marks every skb not SACKed lost; a SACKed skb is never collapsed into another.
    #[test]
    fn lost_retransmissions_rto_marking_and_collapse_respect_the_bits() {
        let mut q = ten_skbs();
        let newest = q.sacktag(&[(3001, 6001)], 1).rack.unwrap();
        q.rack_detect_loss(&newest, 10_000, 0, SimTime(20_000_000));
        q.mark_resent(1, SimTime(20_000_000));
        q.mark_retrans(1);
        let later = RackSample { sent: SimTime(30_000_000), end: 11001, retrans: false };
        let (lost, lost_retrans, _) = q.rack_detect_loss(&later, 10_000, 0, SimTime(40_000_000));
        assert_eq!((lost_retrans, q.retrans_out()), (1, 0));
        assert!(lost > 0);
        q.timeout_mark_lost();
        assert_eq!((q.lost_out(), q.sacked_out(), q.retrans_out(), q.in_flight()), (7, 3, 0, 0));
        let mut c = ten_skbs();
        c.sacktag(&[(1001, 2001)], 1);
        c.collapse(1, 1, 3000, 100_000, None, |_| false);
        assert_eq!(c.len(), 10, "the skb after the head is SACKed: nothing merges");
    }

    /// `tcp_skb_can_collapse`: the retransmit collapse merges up to a record's end and no
    /// further; without one it fills the MSS.
    #[test]
    fn collapse_stops_at_a_record_end() {
        let mut c = ten_skbs();
        c.collapse(1, 1, 3000, 100_000, None, |_| false);
        assert_eq!((c.len(), c.end_of(1)), (8, Some(3001)));
        let mut c = ten_skbs();
        c.collapse(1, 1, 3000, 100_000, None, |end| end == 2001);
        assert_eq!((c.len(), c.end_of(1)), (9, Some(2001)));
        let mut c = ten_skbs();
        c.collapse(1, 1, 3000, 100_000, None, |end| end == 1001);
        assert_eq!((c.len(), c.end_of(1)), (10, Some(1001)));
    }

    /// `tcp_sendmsg_locked` starts a new skb after one that ends a record; `tso_fragment`
    /// leaves the mark on the second part; `tcp_grow_skb` takes nothing past it.
    #[test]
    fn a_record_end_keeps_later_data_out_of_its_skb() {
        let mut q = SendQueue::default();
        q.push_derived(400);
        assert_eq!(q.unsent_tail_len(0), Some(400));
        q.set_tail_eor();
        assert_eq!(q.unsent_tail_len(0), None, "tcp_skb_can_collapse_to");
        q.entail();
        q.push_derived(600);
        assert_eq!((q.skb_count(), q.eor_at(400), q.eor_at(1000)), (2, true, false));
        q.split(100);
        assert_eq!((q.eor_at(100), q.eor_at(400)), (false, true));
        q.grow_skb(100, 1000);
        assert_eq!(q.skb_at(100).map(|s| s.end), Some(400), "the record's skb takes nothing");
        q.grow_skb(0, 1000);
        assert_eq!((q.skb_count(), q.skb_at(0).map(|s| (s.end, s.eor))), (2, Some((400, true))), "the emptied skb's mark passes on");
    }
}
