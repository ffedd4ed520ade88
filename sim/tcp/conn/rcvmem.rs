//! Receive memory (`sk_rmem_alloc`) as the modelled NIC charges it, and the receive
//! `scaling_ratio` derived from it (include/net/tcp.h `tcp_win_from_space`,
//! tcp_input.c `tcp_measure_rcv_mss`).
//!
//! The modelled NIC is a veth pair or loopback: `veth_xmit` and `loopback_xmit` hand the
//! receiver the sender's own skb (no GRO, no copy). Its head is the small head
//! `tcp_stream_alloc_skb` allocated (`skb_small_head_cache`: `SKB_TRUESIZE(256)` = 832 bytes
//! on x86-64) and its payload sits in page fragments, each counted at its length
//! (`tcp_sendmsg_locked` → `skb_len_add`). A segment that arrives in order is coalesced onto
//! the receive queue's tail skb when that has fragment slots left (`tcp_queue_rcv` →
//! `tcp_try_coalesce` → `skb_try_coalesce`: the fragments move, the head is freed, so only
//! the payload is charged); otherwise it is queued whole. The out-of-order queue coalesces
//! the same way onto its rightmost skb (`tcp_ooo_try_coalesce`), and `tcp_ofo_queue` onto the
//! receive queue's tail when the data becomes in order.
//!
//! Measured on this machine's 6.18 kernel (`ss -tmi`, `skmem:(r…)`, veth and lo alike): a
//! first 1448-byte segment charges 2280 bytes (`scaling_ratio` 1448·256/2280 = 162), each
//! further one 1448, and the 18th (the tail skb's 17 fragments full) 2280 again.
//! Simplifications: a FIN without data queues no skb here (Linux charges its 832-byte head
//! until it is read), and an out-of-order segment that overlaps held data is charged as one
//! new skb per uncovered range.

/// `SKB_TRUESIZE(SKB_WITH_OVERHEAD(SKB_SMALL_HEAD_CACHE_SIZE))`: the truesize of a segment's
/// skb without its payload.
pub const SKB_HEAD_TRUESIZE: u32 = 832;
/// `MAX_SKB_FRAGS` (`CONFIG_MAX_SKB_FRAGS` = 17): fragments one skb holds.
const MAX_SKB_FRAGS: u8 = 17;
/// `TCP_RMEM_TO_WIN_SCALE`: `scaling_ratio` is a fraction of 256.
const TCP_RMEM_TO_WIN_SCALE: u32 = 8;
/// `TCP_DEFAULT_SCALING_RATIO`: 50 %, until a segment is measured.
pub const TCP_DEFAULT_SCALING_RATIO: u8 = 1 << (TCP_RMEM_TO_WIN_SCALE - 1);

/// The truesize of one received segment's skb carrying `len` bytes.
pub fn skb_truesize(len: u32) -> u32 {
    len.saturating_add(SKB_HEAD_TRUESIZE)
}

/// `tcp_win_from_space`: the payload `space` bytes of buffer hold at `ratio`.
pub fn win_from_space(ratio: u8, space: u32) -> u32 {
    ((u64::from(space) * u64::from(ratio)) >> TCP_RMEM_TO_WIN_SCALE) as u32
}

/// `__tcp_space_from_win`: the buffer that holds `win` bytes of payload at `ratio`.
pub fn space_from_win(ratio: u8, win: u32) -> u32 {
    ((u64::from(win) << TCP_RMEM_TO_WIN_SCALE) / u64::from(ratio.max(1))).min(u64::from(u32::MAX)) as u32
}

/// `tcp_measure_rcv_mss`'s ratio: `skb->len << TCP_RMEM_TO_WIN_SCALE / skb->truesize`, at
/// least 1.
pub fn measured_ratio(len: u32) -> u8 {
    let val = (u64::from(len) << TCP_RMEM_TO_WIN_SCALE) / u64::from(skb_truesize(len));
    val.clamp(1, 255) as u8
}

/// The charge of one piece of a queue (a segment's payload as queued, or an out-of-order
/// range): the truesize it added and whether it began a new skb (`head`; else its fragments
/// were coalesced onto the skb before it). The receive queue's pieces are its skbs'
/// boundaries: an skb is freed, and its pieces' charges uncharged, once every byte of it was
/// read.
#[derive(Clone, Copy, Debug)]
pub struct Charge {
    truesize: u32,
    head: bool,
}

impl Charge {
    /// The piece was coalesced onto the skb before it (no head of its own).
    pub fn coalesced(&self) -> bool {
        !self.head
    }
}

/// `sk_rmem_alloc` and what decides the next segment's charge.
#[derive(Clone, Debug, Default)]
pub struct RcvMem {
    rmem: u32,
    /// The truesize of the front skb's pieces already read (still charged until the whole
    /// skb is: `tcp_eat_recv_skb`).
    front_read: u32,
    /// Fragments of the receive queue's tail skb, 0 when the queue is empty.
    tail_frags: u8,
    /// Fragments of the out-of-order queue's rightmost skb (`ooo_last_skb`).
    ooo_last_frags: u8,
}

impl RcvMem {
    /// `sk_rmem_alloc`.
    pub fn rmem_alloc(&self) -> u32 {
        self.rmem
    }

    /// Whether the receive queue's tail skb has a fragment slot for one more segment
    /// (`skb_try_coalesce`: at most `MAX_SKB_FRAGS`).
    fn tail_has_room(&self) -> bool {
        (1..MAX_SKB_FRAGS).contains(&self.tail_frags)
    }

    /// `len` in-order bytes queued (`tcp_queue_rcv`): coalesced onto the tail skb if it
    /// has a fragment slot (`tcp_try_coalesce`: the head is freed, the payload charged),
    /// else a new skb.
    pub fn queue(&mut self, len: u32) -> Charge {
        let charge = if self.tail_has_room() {
            self.tail_frags += 1;
            Charge { truesize: len, head: false }
        } else {
            self.tail_frags = 1;
            Charge { truesize: skb_truesize(len), head: true }
        };
        self.rmem += charge.truesize;
        charge
    }

    /// An out-of-order range of `len` bytes held (`tcp_data_queue_ofo`); `extends_last`:
    /// it starts where the rightmost held skb ends, so `tcp_ooo_try_coalesce` may take it.
    pub fn ofo_insert(&mut self, len: u32, extends_last: bool, rightmost: bool) -> Charge {
        let charge = if extends_last && self.ooo_last_frags < MAX_SKB_FRAGS {
            self.ooo_last_frags += 1;
            Charge { truesize: len, head: false }
        } else {
            if rightmost {
                self.ooo_last_frags = 1;
            }
            Charge { truesize: skb_truesize(len), head: true }
        };
        self.rmem += charge.truesize;
        charge
    }

    /// An out-of-order range becomes in order (`tcp_ofo_queue` → `tcp_queue_rcv`): its own
    /// skb is coalesced onto the receive queue's tail when a fragment slot is left (its head
    /// freed), and fragments coalesced out of order follow their skb.
    pub fn ofo_to_queue(&mut self, c: Charge) -> Charge {
        if !c.head || self.tail_has_room() {
            let truesize = if c.head { c.truesize - SKB_HEAD_TRUESIZE } else { c.truesize };
            self.rmem -= c.truesize - truesize;
            self.tail_frags = (self.tail_frags + 1).min(MAX_SKB_FRAGS);
            Charge { truesize, head: false }
        } else {
            self.tail_frags = 1;
            Charge { truesize: c.truesize, head: true }
        }
    }

    /// An out-of-order range freed without being queued (wholly old, or purged).
    pub fn ofo_free(&mut self, c: Charge) {
        self.rmem -= c.truesize;
    }

    /// A piece of the receive queue read to its end (`tcp_recvmsg_locked`); `next`: the
    /// piece after it, if any. The skb is freed (`tcp_eat_recv_skb`) when the next piece
    /// begins another skb or there is none.
    pub fn eat(&mut self, piece: Charge, next: Option<Charge>) {
        self.front_read += piece.truesize;
        if next.is_none_or(|n| n.head) {
            self.rmem -= self.front_read;
            self.front_read = 0;
            if next.is_none() {
                self.tail_frags = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_a_full_veth_segment_is_162() {
        // 1448 · 256 / (1448 + 832) = 162.58, truncated (do_div).
        assert_eq!(measured_ratio(1448), 162);
        assert_eq!(win_from_space(162, 131_072), 82_944);
        assert_eq!(space_from_win(128, 1000), 2000);
    }

    /// Queues `n` segments of 1448 bytes and returns their charges.
    fn queue_n(m: &mut RcvMem, n: usize) -> Vec<Charge> {
        (0..n).map(|_| m.queue(1448)).collect()
    }

    #[test]
    fn coalescing_charges_payload_until_the_frags_are_full() {
        // As `ss -tmi` showed on a 1500-byte veth (skmem r…, an unread receive queue): one
        // segment 2280, 5 segments 8072, 15 22552, 18 27728, 19 29176.
        let mut m = RcvMem::default();
        let mut q = queue_n(&mut m, 1);
        assert_eq!(m.rmem_alloc(), 2280);
        q.extend(queue_n(&mut m, 4));
        assert_eq!(m.rmem_alloc(), 8072);
        q.extend(queue_n(&mut m, 10));
        assert_eq!(m.rmem_alloc(), 22552);
        q.extend(queue_n(&mut m, 3));
        assert_eq!(m.rmem_alloc(), 27728);
        q.extend(queue_n(&mut m, 1));
        assert_eq!(m.rmem_alloc(), 29176);
        // Reading the first skb's 17 pieces frees it; a partly read one stays charged.
        for i in 0..17 {
            m.eat(q[i], q.get(i + 1).copied());
        }
        assert_eq!(m.rmem_alloc(), 2 * 1448 + 832);
        m.eat(q[17], Some(q[18]));
        assert_eq!(m.rmem_alloc(), 2 * 1448 + 832);
        m.eat(q[18], None);
        assert_eq!(m.rmem_alloc(), 0);
        // The queue emptied: the next segment has a head of its own.
        m.queue(1448);
        assert_eq!(m.rmem_alloc(), 2280);
    }
}
