//! The event queue: a 4-ary min-heap ordered by `(time, insertion sequence)`.
//!
//! The sequence number makes ties resolve in insertion order, so two events due at the same
//! nanosecond always run in the same order on every run and every machine (a plain heap
//! would order equal keys by its internal layout). Entries are stored by value: pushing and
//! popping allocate nothing once the heap has grown to its working size.
//!
//! Four children a node rather than two halves the depth, and the children sit next to
//! each other in memory: with a million timers pending, where every level below the first
//! few is a cache miss, that is what an event costs (measured in `benches/engine.rs`: the
//! std `BinaryHeap` it replaced was about twice as slow at a million pending timers).
//!
//! The interface is deliberately small (`push`, `pop`, `peek_time`, `len`) so that the heap can
//! be swapped for a timing wheel or a calendar queue without touching its users.

use crate::time::SimTime;

/// Children per node.
const D: usize = 4;

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

/// A queue of events of type `E`, earliest first, ties in insertion order. Events are
/// small `Copy` values (an index, a key): moving them is the heap's whole work.
pub struct EventQueue<E> {
    /// Heap-ordered: each entry is before its children `D*i+1 ..= D*i+D`.
    heap: Vec<Entry<E>>,
    next_seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: Vec::new(), next_seq: 0 }
    }

    /// A queue that will not reallocate before holding `n` events.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue { heap: Vec::with_capacity(n), next_seq: 0 }
    }

    /// Queues `ev` at `at`; it pops after every event queued earlier for the same time.
    #[inline]
    pub fn push(&mut self, at: SimTime, ev: E) {
        let item = Entry { at, seq: self.next_seq, ev };
        self.next_seq += 1;
        let key = item.key();
        self.heap.push(item);
        let h = self.heap.as_mut_slice();
        // Sift up: move parents down into the hole until the item's place is found.
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

    /// The earliest event, and its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let last = self.heap.pop()?;
        let h = self.heap.as_mut_slice();
        let Some(&top) = h.first() else {
            return Some((last.at, last.ev));
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
        Some((top.at, top.ev))
    }

    /// The time of the earliest event, without removing it.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.first().map(|e| e.at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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

    proptest::proptest! {
        /// Any interleaving of pushes and pops yields what a sorted reference yields.
        #[test]
        fn matches_a_sorted_reference(ops in proptest::collection::vec(proptest::option::of(0u64..20), 0..300)) {
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
        }
    }
}
