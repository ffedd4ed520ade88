//! The engine-alone workload shared by `benches/engine.rs` and `examples/engine_icount.rs`:
//! `n` connections, each with an ACK clock and a retransmission timer.
//!
//! Each connection receives an ACK every RTT (10 to 50 ms, its own), and every ACK re-arms
//! its RTO to `now + 200 ms + rtt` — the pattern that makes re-arming the hot operation. One
//! ACK in 16 is "lost": the connection stalls until its RTO fires, which "retransmits" (re-arms
//! and restarts the ACK clock). So the queue holds about `n` ACK events plus `n` timer
//! entries, and every branch (fire, requeue, stale) is exercised.
//!
//! Two timer strategies: [`Lazy`] (the engine's: `TimerSlot` entries in the one event queue)
//! and [`Eager`] (timers in an indexed binary heap, re-armed by moving the entry in place,
//! ACK events in the event queue; the loop takes the earlier head).

use tcpsim::engine::{EventQueue, Pop, TimerSlot};
use tcpsim::time::SimTime;

const RTO_BASE_NS: u64 = 200_000_000;

#[derive(Copy, Clone)]
enum Ev {
    Ack(u32),
    Rto(u32),
}

/// splitmix64: a cheap deterministic generator, so the bench measures the engine, not ChaCha.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rtts(n: usize, rng: &mut u64) -> Vec<u64> {
    (0..n).map(|_| 10_000_000 + next(rng) % 40_000_000).collect()
}

/// Counts of what the events did. An *event* is an ACK or an RTO expiry: the work both
/// strategies do. Lazy re-arm also pops entries that do nothing but re-queue or vanish.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub acks: u64,
    pub fires: u64,
    /// Queue pops (lazy: events plus requeued and stale timer entries).
    pub pops: u64,
}

impl Counts {
    pub fn events(&self) -> u64 {
        self.acks + self.fires
    }
}

/// Lazy re-arm: one queue, `TimerSlot` per connection.
pub struct Lazy {
    q: EventQueue<Ev>,
    slots: Vec<TimerSlot>,
    rtt: Vec<u64>,
    rng: u64,
    pub counts: Counts,
}

impl Lazy {
    pub fn new(n: usize) -> Self {
        let mut rng = 1;
        let rtt = rtts(n, &mut rng);
        let mut q = EventQueue::with_capacity(2 * n + 16);
        let mut slots = vec![TimerSlot::new(); n];
        for i in 0..n {
            q.push(SimTime(next(&mut rng) % rtt[i]), Ev::Ack(i as u32));
            if let Some(at) = slots[i].arm(SimTime(RTO_BASE_NS + rtt[i])) {
                q.push(at, Ev::Rto(i as u32));
            }
        }
        Lazy { q, slots, rtt, rng, counts: Counts::default() }
    }

    /// Entries in the queue (ACK events plus timer entries, stale ones included).
    pub fn pending(&self) -> usize {
        self.q.len()
    }

    /// Processes `events` events (ACKs and RTO expiries), however many pops that takes.
    pub fn run(&mut self, events: u64) {
        let until = self.counts.events() + events;
        while self.counts.events() < until {
            let (now, ev) = self.q.pop().expect("the workload never drains");
            self.counts.pops += 1;
            match ev {
                Ev::Ack(i) => {
                    self.counts.acks += 1;
                    let rtt = self.rtt[i as usize];
                    self.rearm(i, now, rtt);
                    if next(&mut self.rng) % 16 != 0 {
                        self.q.push(SimTime(now.0 + rtt), Ev::Ack(i));
                    }
                }
                Ev::Rto(i) => match self.slots[i as usize].on_pop(now) {
                    Pop::Fire => {
                        self.counts.fires += 1;
                        let rtt = self.rtt[i as usize];
                        self.rearm(i, now, rtt);
                        self.q.push(SimTime(now.0 + rtt), Ev::Ack(i));
                    }
                    Pop::Requeue(at) => self.q.push(at, Ev::Rto(i)),
                    Pop::Stale => {}
                },
            }
        }
    }

    #[inline]
    fn rearm(&mut self, i: u32, now: SimTime, rtt: u64) {
        if let Some(at) = self.slots[i as usize].arm(SimTime(now.0 + RTO_BASE_NS + rtt)) {
            self.q.push(at, Ev::Rto(i));
        }
    }
}

/// Eager re-arm: timers in an indexed binary min-heap keyed by (deadline, seq), moved in
/// place on every re-arm; ACK events in the event queue.
pub struct Eager {
    q: EventQueue<u32>,
    timers: IndexedHeap,
    rtt: Vec<u64>,
    rng: u64,
    pub counts: Counts,
}

impl Eager {
    pub fn new(n: usize) -> Self {
        let mut rng = 1;
        let rtt = rtts(n, &mut rng);
        let mut q = EventQueue::with_capacity(n + 16);
        let mut timers = IndexedHeap::new(n);
        for (i, &r) in rtt.iter().enumerate() {
            q.push(SimTime(next(&mut rng) % r), i as u32);
            timers.set(i as u32, RTO_BASE_NS + r);
        }
        Eager { q, timers, rtt, rng, counts: Counts::default() }
    }

    /// Timers plus ACK events pending.
    pub fn pending(&self) -> usize {
        self.q.len() + self.timers.heap.len()
    }

    /// Processes `events` events (ACKs and timer expiries), earliest first.
    pub fn run(&mut self, events: u64) {
        for _ in 0..events {
            let ack_at = self.q.peek_time().map_or(u64::MAX, |t| t.0);
            match self.timers.peek() {
                Some((at, i)) if at < ack_at => {
                    self.timers.remove_top();
                    self.counts.pops += 1;
                    self.counts.fires += 1;
                    let rtt = self.rtt[i as usize];
                    self.timers.set(i, at + RTO_BASE_NS + rtt);
                    self.q.push(SimTime(at + rtt), i);
                }
                _ => {
                    let (now, i) = self.q.pop().expect("the workload never drains");
                    self.counts.pops += 1;
                    self.counts.acks += 1;
                    let rtt = self.rtt[i as usize];
                    self.timers.set(i, now.0 + RTO_BASE_NS + rtt);
                    if next(&mut self.rng) % 16 != 0 {
                        self.q.push(SimTime(now.0 + rtt), i);
                    }
                }
            }
        }
    }
}

/// A binary min-heap of timer ids with a position index, so a timer's deadline can change
/// in place (the textbook "eager" timer heap).
struct IndexedHeap {
    /// (deadline, seq, id), heap-ordered.
    heap: Vec<(u64, u64, u32)>,
    /// Position of each id in `heap`, `u32::MAX` if absent.
    pos: Vec<u32>,
    seq: u64,
}

impl IndexedHeap {
    fn new(n: usize) -> Self {
        IndexedHeap { heap: Vec::with_capacity(n), pos: vec![u32::MAX; n], seq: 0 }
    }

    fn peek(&self) -> Option<(u64, u32)> {
        self.heap.first().map(|&(t, _, i)| (t, i))
    }

    fn set(&mut self, id: u32, at: u64) {
        self.seq += 1;
        let key = (at, self.seq, id);
        match self.pos[id as usize] {
            u32::MAX => {
                self.heap.push(key);
                let p = self.heap.len() - 1;
                self.pos[id as usize] = p as u32;
                self.sift_up(p);
            }
            p => {
                let p = p as usize;
                let older = self.heap[p] > key;
                self.heap[p] = key;
                if older {
                    self.sift_up(p);
                } else {
                    self.sift_down(p);
                }
            }
        }
    }

    fn remove_top(&mut self) {
        let last = self.heap.len() - 1;
        self.swap(0, last);
        let (_, _, id) = self.heap.pop().unwrap();
        self.pos[id as usize] = u32::MAX;
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].2 as usize] = a as u32;
        self.pos[self.heap[b].2 as usize] = b as u32;
    }

    fn sift_up(&mut self, mut p: usize) {
        while p > 0 {
            let parent = (p - 1) / 2;
            if self.heap[parent] <= self.heap[p] {
                break;
            }
            self.swap(p, parent);
            p = parent;
        }
    }

    fn sift_down(&mut self, mut p: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * p + 1, 2 * p + 2);
            let mut m = p;
            if l < n && self.heap[l] < self.heap[m] {
                m = l;
            }
            if r < n && self.heap[r] < self.heap[m] {
                m = r;
            }
            if m == p {
                break;
            }
            self.swap(p, m);
            p = m;
        }
    }
}
