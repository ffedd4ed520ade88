//! The event queue: a binary min-heap ordered by `(time, insertion sequence)`.
//!
//! The sequence number makes ties resolve in insertion order, so two events due at the same
//! nanosecond always run in the same order on every run and every machine (a plain heap
//! would order equal keys by its internal layout). Entries are stored by value: pushing and
//! popping allocate nothing once the heap has grown to its working size.
//!
//! The interface is deliberately small (`push`, `pop`, `peek_time`, `len`) so that the heap can
//! be swapped for a timing wheel or a calendar queue without touching its users.

use crate::time::SimTime;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One queued event. Ordered so that `BinaryHeap` (a max-heap) yields the earliest first.
struct Entry<E> {
    at: SimTime,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed: the smallest `(at, seq)` is the heap's maximum.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A queue of events of type `E`, earliest first, ties in insertion order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), next_seq: 0 }
    }

    /// A queue that will not reallocate before holding `n` events.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(n), next_seq: 0 }
    }

    /// Queues `ev` at `at`; it pops after every event queued earlier for the same time.
    #[inline]
    pub fn push(&mut self, at: SimTime, ev: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, ev });
    }

    /// The earliest event, and its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.heap.pop().map(|e| (e.at, e.ev))
    }

    /// The time of the earliest event, without removing it.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| e.at)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
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
}
