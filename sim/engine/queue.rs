//! The event queue: events ordered by `(time, insertion sequence)`, in two tiers.
//!
//! The sequence number makes ties resolve in insertion order, so two events due at the same
//! nanosecond always run in the same order on every run and every machine. Entries are
//! stored by value.
//!
//! Most of what is queued at scale is due far ahead (a million keepalive timers ten minutes
//! out) while the events being run are due within the millisecond. A single heap of
//! everything makes each event cost a walk through it, a cache miss a level once it
//! outgrows the cache (ten levels at a million timers). So the queue keeps two tiers, the
//! layout of a ladder or calendar queue:
//!
//! - *far*: entries due at or after `horizon`, in buckets of 2^[`BUCKET_SHIFT`] ns, unordered
//!   within a bucket; pushing there is an append;
//! - *near*: entries due before `horizon`: the earliest bucket, sorted once when it becomes
//!   near (`run`, earliest last, popped from the end), and a small 4-ary heap of what is
//!   pushed into the near range afterwards.
//!
//! The earliest entry is the earlier of `run`'s last and the heap's root: every near entry
//! is due before every far one. The next bucket moves in when a pop finds the near tier
//! empty, not as soon as it empties: then the horizon would jump to whatever is queued
//! next, however far (at the start of a run, the partition an hour ahead), and everything
//! pushed before it would go to the near heap, one heap of a million keepalive timers.
//! While the near tier is empty, `peek_time` reads the earliest bucket's earliest time,
//! which the bucket keeps.
//! The order is exactly that of one heap over all entries (the tests compare with a sorted
//! reference); only the cost changes.

use crate::time::SimTime;
use std::collections::BTreeMap;

/// Children per node of the near heap.
const D: usize = 4;

/// Far buckets span 2^20 ns (about a millisecond): close to the granularity of the timers
/// (a jiffy is 1 to 10 ms) and of link delays, so that a bucket holds the events of a
/// moment and the near tier stays small.
const BUCKET_SHIFT: u32 = 20;

/// One queued event.
#[derive(Copy, Clone)]
struct Entry<E> {
    at: SimTime,
    seq: u64,
    ev: E,
}

impl<E> Entry<E> {
    /// `(at, seq)` as one integer: a single branch-free comparison instead of a tuple's two.
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.at.0) << 64) | u128::from(self.seq)
    }
}

/// A far bucket: its entries, unordered, and the earliest time among them.
struct Bucket<E> {
    first: u64,
    entries: Vec<Entry<E>>,
}

/// A queue of events of type `E`, earliest first, ties in insertion order. Events are
/// small `Copy` values (an index, a key): moving them is the queue's whole work.
pub struct EventQueue<E> {
    /// The near tier's loaded bucket, sorted latest first: its earliest entry is the last.
    run: Vec<Entry<E>>,
    /// The near tier's later arrivals, heap-ordered: each entry is before its children
    /// `D*i+1 ..= D*i+D`.
    heap: Vec<Entry<E>>,
    /// The far tier: bucket number (`at >> BUCKET_SHIFT`) → its entries.
    far: BTreeMap<u64, Bucket<E>>,
    /// Entries in `far`.
    far_len: usize,
    /// Entries due before this time are near; the rest far.
    horizon: u64,
    /// Emptied bucket vectors, kept to spare their allocations.
    spare: Vec<Vec<Entry<E>>>,
    next_seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A queue whose near heap will not reallocate before holding `n` events.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            run: Vec::new(),
            heap: Vec::with_capacity(n),
            far: BTreeMap::new(),
            far_len: 0,
            horizon: 0,
            spare: Vec::new(),
            next_seq: 0,
        }
    }

    /// Queues `ev` at `at`; it pops after every event queued earlier for the same time.
    #[inline]
    pub fn push(&mut self, at: SimTime, ev: E) {
        let item = Entry { at, seq: self.next_seq, ev };
        self.next_seq += 1;
        if at.0 < self.horizon {
            self.heap_push(item);
            return;
        }
        let spare = &mut self.spare;
        let bucket = self.far.entry(at.0 >> BUCKET_SHIFT).or_insert_with(|| Bucket { first: at.0, entries: spare.pop().unwrap_or_default() });
        bucket.first = bucket.first.min(at.0);
        bucket.entries.push(item);
        self.far_len += 1;
    }

    /// The earliest event, and its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.run.is_empty() && self.heap.is_empty() {
            self.refill();
        }
        let from_run = match (self.run.last(), self.heap.first()) {
            (Some(r), Some(h)) => r.key() < h.key(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let top = if from_run { self.run.pop() } else { self.heap_pop() }.expect("checked above");
        Some((top.at, top.ev))
    }

    /// Moves the earliest far bucket into the near tier, sorted (the near tier is empty).
    fn refill(&mut self) {
        let Some((bucket, Bucket { mut entries, .. })) = self.far.pop_first() else { return };
        self.far_len -= entries.len();
        // The bucket's end; the last bucket's is the end of time (due then: far, ordered by seq).
        self.horizon = u64::try_from((u128::from(bucket) + 1) << BUCKET_SHIFT).unwrap_or(u64::MAX);
        entries.sort_unstable_by_key(|e| std::cmp::Reverse(e.key()));
        let emptied = std::mem::replace(&mut self.run, entries);
        self.spare.push(emptied);
    }

    /// Pushes onto the near heap: move parents down into the hole until the item's place is
    /// found.
    #[inline]
    fn heap_push(&mut self, item: Entry<E>) {
        let key = item.key();
        self.heap.push(item);
        let h = self.heap.as_mut_slice();
        let mut i = h.len() - 1;
        while i > 0 {
            let parent = (i - 1) / D;
            if key >= h[parent].key() {
                break;
            }
            h[i] = h[parent];
            i = parent;
        }
        h[i] = item;
    }

    /// Pops the near heap's root.
    #[inline]
    fn heap_pop(&mut self) -> Option<Entry<E>> {
        let last = self.heap.pop()?;
        let h = self.heap.as_mut_slice();
        let Some(&top) = h.first() else {
            return Some(last);
        };
        // Sift the last entry down from the root: move the earliest child up into the hole.
        let (n, key) = (h.len(), last.key());
        let mut i = 0;
        loop {
            let first = D * i + 1;
            let (min, min_key) = if first + D <= n {
                earliest_of_four(&h[first..first + D], first)
            } else if first < n {
                (first..n).map(|c| (c, h[c].key())).min_by_key(|&(_, k)| k).expect("first < n")
            } else {
                break;
            };
            if min_key >= key {
                break;
            }
            h[i] = h[min];
            i = min;
        }
        h[i] = last;
        Some(top)
    }

    /// The time of the earliest event, without removing it.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        match (self.run.last(), self.heap.first()) {
            (Some(r), Some(h)) => Some(r.at.min(h.at)),
            (None, None) => self.far.first_key_value().map(|(_, b)| SimTime(b.first)),
            (r, h) => r.or(h).map(|e| e.at),
        }
    }

    pub fn len(&self) -> usize {
        self.run.len() + self.heap.len() + self.far_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The earliest of a full set of four siblings starting at index `first`: a two-round
/// tournament, three comparisons, no bounds checks beyond the slice's.
#[inline(always)]
fn earliest_of_four<E>(c: &[Entry<E>], first: usize) -> (usize, u128) {
    let k = [c[0].key(), c[1].key(), c[2].key(), c[3].key()];
    let (a, ka) = if k[1] < k[0] { (1, k[1]) } else { (0, k[0]) };
    let (b, kb) = if k[3] < k[2] { (3, k[3]) } else { (2, k[2]) };
    let (m, km) = if kb < ka { (b, kb) } else { (a, ka) };
    (first + m, km)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn pops_in_time_order() {
        let mut q = EventQueue::new();
        for (t, e) in [(30, 'c'), (10, 'a'), (20, 'b')] {
            q.push(SimTime(t), e);
        }
        assert_eq!(q.peek_time(), Some(SimTime(10)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(SimTime(10), 'a'), (SimTime(20), 'b'), (SimTime(30), 'c')]);
        assert!(q.is_empty());
    }

    #[test]
    fn ties_pop_in_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..100u32 {
            // Interleave two times so the heap's layout is not trivially sorted.
            q.push(SimTime(u64::from(i % 2)), i);
        }
        let got: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        let want: Vec<u32> = (0..100).filter(|i| i % 2 == 0).chain((0..100).filter(|i| i % 2 == 1)).collect();
        assert_eq!(got, want);
    }

    /// An event queued far ahead first (a partition an hour out) does not become the near
    /// tier with everything queued later but due before it in the near heap: those wait in
    /// their buckets, and each bucket is sorted when its time comes.
    #[test]
    fn an_event_queued_far_ahead_first_leaves_earlier_ones_in_their_buckets() {
        let mut q = EventQueue::new();
        q.push(SimTime(3_600_000_000_000), u32::MAX);
        for i in 0..1000u32 {
            q.push(SimTime(u64::from(i) << BUCKET_SHIFT), i);
        }
        assert!(q.heap.is_empty() && q.run.is_empty(), "nothing loaded before a pop");
        assert_eq!(q.peek_time(), Some(SimTime(0)));
        for i in 0..1000u32 {
            assert_eq!(q.pop(), Some((SimTime(u64::from(i) << BUCKET_SHIFT), i)));
            assert!(q.heap.is_empty(), "pop {i}: the near heap holds nothing");
        }
        assert_eq!(q.pop(), Some((SimTime(3_600_000_000_000), u32::MAX)));
        assert!(q.is_empty());
    }

    /// Runs `ops` (a push at a time, or a pop) against the queue and a sorted reference.
    fn check_against_reference(ops: Vec<Option<u64>>) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, usize)> = Vec::new(); // (time, insertion index)
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Some(t) => {
                    q.push(SimTime(t), n);
                    reference.push((t, n));
                }
                None => {
                    reference.sort_unstable_by(|a, b| b.cmp(a));
                    let want = reference.pop().map(|(t, n)| (SimTime(t), n));
                    proptest::prop_assert_eq!(q.pop(), want);
                }
            }
            proptest::prop_assert_eq!(q.len(), reference.len());
            proptest::prop_assert_eq!(q.peek_time().map(|t| t.0), reference.iter().map(|r| r.0).min());
        }
        Ok(())
    }

    proptest::proptest! {
        /// Any interleaving of pushes and pops yields what a sorted reference yields: times
        /// within one bucket (ties abound)…
        #[test]
        fn matches_a_sorted_reference(ops in proptest::collection::vec(proptest::option::of(0u64..20), 0..300)) {
            check_against_reference(ops)?;
        }

        /// …and times over a few buckets, some at their edges, pushed before and after the
        /// near tier's horizon, and at the end of time.
        #[test]
        fn matches_a_sorted_reference_across_buckets(ops in proptest::collection::vec(proptest::option::of(proptest::prop_oneof![
            0u64..(6 << BUCKET_SHIFT),
            (0u64..6).prop_map(|b| (b << BUCKET_SHIFT).saturating_sub(1)),
            proptest::strategy::Just(u64::MAX),
        ]), 0..400)) {
            check_against_reference(ops)?;
        }
    }
}
