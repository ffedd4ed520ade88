//! The simulator loop: hosts, links and middleboxes, driven by one event queue.
//!
//! Three kinds of events: a host's timer, a segment's arrival at the far end of a link, and
//! a scheduled fault. A host's stack implements [`Node`]; it acts on the world only through
//! the [`Ctx`] it is handed (send a segment, schedule a timer, trace, draw randomness), so
//! every effect happens at the current simulated time and in a fixed order.

use super::link::{Dir, DropReason, LinkDir, LinkParams, Transmit, ETH_DATA_LEN};
use super::middlebox::{FilterMatch, FlowTable, Hook, Middlebox, OnExpired, Place, Stage, Verdict};
use super::queue::EventQueue;
use super::rng::{RngStreams, StreamRng};
use super::{EngineError, Fault};
use crate::tcp::segment::Segment;
use crate::time::{Dur, SimTime};
use crate::trace::{SegRecord, Trace};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What a host's network stack implements.
pub trait Node {
    /// A segment addressed to this host arrived.
    fn on_segment(&mut self, now: SimTime, seg: Segment, ctx: &mut Ctx);
    /// A timer this node scheduled with `ctx.schedule(at, key)` popped. The node decides
    /// (e.g. via its [`TimerSlot`](super::TimerSlot)) whether it is stale.
    fn on_timer(&mut self, now: SimTime, key: u64, ctx: &mut Ctx);
    /// The host crashed: drop all state. (After reboot, the node answers unknown segments
    /// as a fresh kernel does: that is the node's business.)
    fn on_crash(&mut self, now: SimTime);
    /// The host came back up after a crash.
    fn on_reboot(&mut self, now: SimTime, ctx: &mut Ctx);
}

/// A node's handle on the world during one call, at one instant.
pub struct Ctx<'a> {
    now: SimTime,
    host: usize,
    host_name: &'a str,
    epoch: u32,
    queue: &'a mut EventQueue<Event>,
    outbox: &'a mut Vec<Segment>,
    trace: &'a mut Trace,
    rng: &'a mut StreamRng,
    net: Net<'a>,
}

/// The routing a node may ask about: which link reaches an address, and its MTU.
struct Net<'a> {
    by_addr: &'a BTreeMap<IpAddr, usize>,
    routes: &'a BTreeMap<(usize, usize), (usize, Dir)>,
    links: &'a [Link],
}

impl Ctx<'_> {
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// This host's index in the simulation.
    pub fn host(&self) -> usize {
        self.host
    }

    /// Sends `seg` when the call returns, over the link to the host owning `seg.dst`'s
    /// address (dropped as `no_route` if there is none).
    pub fn send(&mut self, seg: Segment) {
        self.outbox.push(seg);
    }

    /// Calls `on_timer(key)` at `at` (or now, if `at` is past), unless the host crashes
    /// first. Timers are not cancelled here: owners keep a `TimerSlot` and ignore stale pops.
    pub fn schedule(&mut self, at: SimTime, key: u64) {
        let host = self.host as u32;
        self.queue.push(at.max(self.now), Event::Timer { host, epoch: self.epoch, key });
    }

    /// Whether trace records are kept (build expensive records only if so).
    pub fn trace_enabled(&self) -> bool {
        self.trace.enabled()
    }

    /// Records `{"t":now,"ev":ev,"host":<this host>,<fields of rec>}`; `rec` must
    /// serialise as a JSON object.
    pub fn trace<T: Serialize + ?Sized>(&mut self, ev: &str, rec: &T) {
        if self.trace.enabled() {
            self.trace.record(self.now, ev, &HostRecord { host: self.host_name, rec });
        }
    }

    /// This host's random stream (`host/<name>`).
    pub fn rng(&mut self) -> &mut StreamRng {
        self.rng
    }

    /// The MTU of the link that carries this host's segments to `dst` (`dst_mtu` of the
    /// route), or `None` if no link reaches it.
    pub fn route_mtu(&self, dst: IpAddr) -> Option<u32> {
        let to = self.net.by_addr.get(&dst)?;
        let &(l, _) = self.net.routes.get(&(self.host, *to))?;
        Some(self.net.links[l].mtu)
    }
}

#[derive(Serialize)]
struct HostRecord<'a, T: ?Sized> {
    host: &'a str,
    #[serde(flatten)]
    rec: &'a T,
}

/// What sees every segment put on a link, with the time it was sent (the pcap writer).
pub type WireTap = Box<dyn FnMut(SimTime, &Segment)>;

/// A queued event. Small (24 bytes) so the heap moves little; segments in flight wait in a
/// slab and the event holds their slot.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Event {
    Timer { host: u32, epoch: u32, key: u64 },
    Arrive { slot: u32 },
    Fault { idx: u32 },
}

/// A segment on the wire.
struct InFlight {
    seg: Segment,
    to: u32,
    link: u32,
    dir: Dir,
    /// The link's down-count when it was sent: a cable pulled meanwhile loses it.
    link_epoch: u32,
    /// An RST from a stage next to the receiver: it crosses no link.
    local: bool,
}

/// Whether a host runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Up,
    /// Hibernated: receives nothing, its due timers wait for the thaw.
    Frozen,
    /// Crashed: receives nothing, its timers are gone.
    Down,
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Segments the host's stack sent (routed or not).
    pub segs_sent: u64,
    /// Segments delivered to the host's stack.
    pub segs_recv: u64,
}

/// Counters of one direction of a link.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Segments handed to the link (middlebox RSTs included).
    pub sent: u64,
    /// Segments that came out at the far end (before the receiving host's state is checked).
    pub received: u64,
    /// Segments dropped by the link or its middlebox.
    pub dropped: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
}

/// The engine's side of a host: its name, address, up/frozen/down state and random stream.
/// The node itself (a TCP host's kernel, [`crate::host::Host`]) is kept beside it.
pub(crate) struct HostSlot {
    pub(crate) name: String,
    addr: IpAddr,
    pub(crate) state: HostState,
    /// Incremented at each crash; timers carry the epoch they were scheduled in.
    pub(crate) epoch: u32,
    rng: StreamRng,
    /// Timer keys that came due while frozen, in the order they came due.
    pub(crate) held: Vec<u64>,
    stats: HostStats,
}

pub(crate) struct Link {
    pub(crate) name: String,
    a: usize,
    b: usize,
    /// The devices' MTU: what the MSS of connections routed over the link derives from.
    mtu: u32,
    pub(crate) dirs: [LinkDir; 2],
    rngs: [StreamRng; 2],
    stats: [LinkStats; 2],
    /// Incremented each time the link goes down.
    pub(crate) epoch: u32,
    /// Its middleboxes and filters, in the order they were added.
    stages: Vec<Middlebox>,
}

impl Link {
    fn dst_host(&self, dir: Dir) -> usize {
        match dir {
            Dir::AToB => self.b,
            Dir::BToA => self.a,
        }
    }

    /// Adds a filter at the entry of `dir` (once: a second identical rule would change nothing).
    pub(crate) fn add_filter(&mut self, dir: Dir, drop: FilterMatch) {
        let (place, stage) = (Place::Entry(dir), Stage::Filter(drop));
        if !self.stages.iter().any(|m| m.place == place && m.stage == stage) {
            self.stages.push(Middlebox { name: None, place, stage });
        }
    }

    /// Removes every filter, both ways.
    pub(crate) fn clear_filters(&mut self) {
        self.stages.retain(|m| !matches!(m.stage, Stage::Filter(_)));
    }
}

/// A trace record about a segment.
#[derive(Serialize)]
struct SegEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    middlebox: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<DropReason>,
    /// For `seg_dup`: when the copy arrives.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
    #[serde(flatten)]
    seg: SegRecord<'a>,
}

/// Where something happened to a segment, by index (names are looked up only if traced).
#[derive(Copy, Clone, Default)]
struct Where {
    host: Option<usize>,
    link: Option<(usize, Dir)>,
    /// A stage of the link, by its index in the link's chain.
    stage: Option<usize>,
    reason: Option<DropReason>,
    at: Option<SimTime>,
}

impl Where {
    fn link(l: usize, dir: Dir) -> Where {
        Where { link: Some((l, dir)), ..Where::default() }
    }
    fn host(self, h: usize) -> Where {
        Where { host: Some(h), ..self }
    }
    fn stage(self, i: usize) -> Where {
        Where { stage: Some(i), ..self }
    }
    fn reason(self, r: DropReason) -> Where {
        Where { reason: Some(r), ..self }
    }
}

/// The simulation: the world a set of nodes of type `N` lives in.
pub struct Sim<N> {
    now: SimTime,
    queue: EventQueue<Event>,
    nodes: Vec<N>,
    pub(crate) hosts: Vec<HostSlot>,
    pub(crate) links: Vec<Link>,
    by_addr: BTreeMap<IpAddr, usize>,
    /// (from host, to host) → (link, direction).
    routes: BTreeMap<(usize, usize), (usize, Dir)>,
    in_flight: Vec<Option<InFlight>>,
    free_slots: Vec<u32>,
    pub(crate) faults: Vec<Fault>,
    rngs: RngStreams,
    pub(crate) trace: Trace,
    /// Segments sent during the current node call (kept to reuse its allocation).
    outbox: Vec<Segment>,
    /// Sees every segment put on a link, when it is put there (the pcap writer).
    tap: Option<WireTap>,
}

impl<N: Node> Sim<N> {
    /// An empty world at time zero, with randomness from `seed` and tracing off.
    pub fn new(seed: u64) -> Self {
        Sim {
            now: SimTime::ZERO,
            queue: EventQueue::new(),
            nodes: Vec::new(),
            hosts: Vec::new(),
            links: Vec::new(),
            by_addr: BTreeMap::new(),
            routes: BTreeMap::new(),
            in_flight: Vec::new(),
            free_slots: Vec::new(),
            faults: Vec::new(),
            rngs: RngStreams::new(seed),
            trace: Trace::off(),
            outbox: Vec::new(),
            tap: None,
        }
    }

    /// Adds a host; returns its index.
    pub fn add_host(&mut self, name: &str, addr: IpAddr, node: N) -> Result<usize, EngineError> {
        if self.host_index(name).is_some() {
            return Err(EngineError::Duplicate { what: "host", name: name.into() });
        }
        if self.by_addr.contains_key(&addr) {
            return Err(EngineError::Duplicate { what: "host address", name: addr.to_string() });
        }
        let i = self.hosts.len();
        self.by_addr.insert(addr, i);
        self.hosts.push(HostSlot {
            name: name.into(),
            addr,
            state: HostState::Up,
            epoch: 0,
            rng: self.rngs.stream(&format!("host/{name}")),
            held: Vec::new(),
            stats: HostStats::default(),
        });
        self.nodes.push(node);
        Ok(i)
    }

    /// Adds a link between hosts `a` and `b` (by name); returns its index.
    pub fn add_link(
        &mut self,
        name: &str,
        a: &str,
        b: &str,
        a_to_b: LinkParams,
        b_to_a: LinkParams,
    ) -> Result<usize, EngineError> {
        if self.link_index(name).is_some() {
            return Err(EngineError::Duplicate { what: "link", name: name.into() });
        }
        let ia = self.host_index(a).ok_or_else(|| EngineError::UnknownHost(a.into()))?;
        let ib = self.host_index(b).ok_or_else(|| EngineError::UnknownHost(b.into()))?;
        if ia == ib {
            return Err(EngineError::SelfLink(name.into()));
        }
        if let Some(&(other, _)) = self.routes.get(&(ia, ib)) {
            return Err(EngineError::ParallelLink {
                link: name.into(),
                a: a.into(),
                b: b.into(),
                other: self.links[other].name.clone(),
            });
        }
        let l = self.links.len();
        self.routes.insert((ia, ib), (l, Dir::AToB));
        self.routes.insert((ib, ia), (l, Dir::BToA));
        self.push_link(name, ia, ib, [a_to_b, b_to_a]);
        Ok(l)
    }

    /// Adds a loopback device on `host` (by name): its segments to its own address cross
    /// link `name` in the a → b direction (Linux's `lo`: one device, one queue). Returns
    /// the link's index.
    pub fn add_loopback(&mut self, name: &str, host: &str, params: LinkParams) -> Result<usize, EngineError> {
        if self.link_index(name).is_some() {
            return Err(EngineError::Duplicate { what: "link", name: name.into() });
        }
        let h = self.host_index(host).ok_or_else(|| EngineError::UnknownHost(host.into()))?;
        if let Some(&(other, _)) = self.routes.get(&(h, h)) {
            let other = self.links[other].name.clone();
            return Err(EngineError::ParallelLink { link: name.into(), a: host.into(), b: host.into(), other });
        }
        let l = self.links.len();
        self.routes.insert((h, h), (l, Dir::AToB));
        self.push_link(name, h, h, [params.clone(), params]);
        Ok(l)
    }

    /// Sets link `link`'s MTU (both ends; 1500, Ethernet's, until set).
    pub fn set_mtu(&mut self, link: usize, mtu: u32) {
        self.links[link].mtu = mtu;
    }

    fn push_link(&mut self, name: &str, a: usize, b: usize, [a_to_b, b_to_a]: [LinkParams; 2]) {
        self.links.push(Link {
            name: name.into(),
            a,
            b,
            mtu: ETH_DATA_LEN,
            dirs: [LinkDir::new(a_to_b), LinkDir::new(b_to_a)],
            rngs: Dir::BOTH.map(|d| self.rngs.stream(&format!("link/{name}/{}", d.as_str()))),
            stats: [LinkStats::default(); 2],
            epoch: 0,
            stages: Vec::new(),
        });
    }

    /// Puts a NAT (or stateful firewall) on `link`, next to its `a` end, after the stages
    /// already there.
    pub fn add_middlebox(
        &mut self,
        name: &str,
        link: &str,
        idle_timeout: Dur,
        on_expired: OnExpired,
    ) -> Result<(), EngineError> {
        let l = self.link_index(link).ok_or_else(|| EngineError::UnknownLink(link.into()))?;
        let taken = self.links.iter().flat_map(|l| &l.stages).any(|m| m.name.as_deref() == Some(name));
        if taken {
            return Err(EngineError::Duplicate { what: "middlebox", name: name.into() });
        }
        let stage = Stage::FlowTable(FlowTable::new(idle_timeout, on_expired));
        self.links[l].stages.push(Middlebox { name: Some(name.into()), place: Place::EndA, stage });
        Ok(())
    }

    /// Replaces the trace recorder (off by default).
    pub fn set_trace(&mut self, trace: Trace) {
        self.trace = trace;
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// The run's random streams, for consumers outside the engine (e.g. `app/<name>`).
    pub fn rng_streams(&self) -> &RngStreams {
        &self.rngs
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    /// When the next event is due, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }

    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    pub fn host_by_addr(&self, addr: IpAddr) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }

    pub fn host_name(&self, i: usize) -> &str {
        &self.hosts[i].name
    }

    pub fn host_addr(&self, i: usize) -> IpAddr {
        self.hosts[i].addr
    }

    pub fn host_state(&self, i: usize) -> HostState {
        self.hosts[i].state
    }

    pub fn host_stats(&self, i: usize) -> HostStats {
        self.hosts[i].stats
    }

    pub fn link_index(&self, name: &str) -> Option<usize> {
        self.links.iter().position(|l| l.name == name)
    }

    pub fn link_stats(&self, link: usize, dir: Dir) -> LinkStats {
        self.links[link].stats[dir.index()]
    }

    /// One direction of a link, to inspect or adjust its parameters.
    pub fn link_dir_mut(&mut self, link: usize, dir: Dir) -> &mut LinkDir {
        &mut self.links[link].dirs[dir.index()]
    }

    pub fn node(&self, i: usize) -> &N {
        &self.nodes[i]
    }

    /// Direct access to a node's state, without a `Ctx` (to inspect or set up; anything it
    /// would send must go through [`Sim::with_node`]).
    pub fn node_mut(&mut self, i: usize) -> &mut N {
        &mut self.nodes[i]
    }

    /// Calls into host `i`'s node at the current time (a syscall, say): segments it sends
    /// enter the network and timers it schedules are queued when `f` returns. Runs whatever
    /// the host's state; the caller decides whether a frozen or crashed host may act.
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut N, &mut Ctx) -> R) -> R {
        let host = &mut self.hosts[i];
        let mut ctx = Ctx {
            now: self.now,
            host: i,
            host_name: &host.name,
            epoch: host.epoch,
            queue: &mut self.queue,
            outbox: &mut self.outbox,
            trace: &mut self.trace,
            rng: &mut host.rng,
            net: Net { by_addr: &self.by_addr, routes: &self.routes, links: &self.links },
        };
        let r = f(&mut self.nodes[i], &mut ctx);
        self.flush_outbox(i);
        r
    }

    /// Runs every event due at or before `t`, then sets the clock to `t` (never backwards).
    pub fn run_until(&mut self, t: SimTime) {
        while self.queue.peek_time().is_some_and(|at| at <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs the next event; false if there is none.
    pub fn step(&mut self) -> bool {
        let Some((at, ev)) = self.queue.pop() else {
            return false;
        };
        debug_assert!(at >= self.now, "event queued in the past");
        self.now = at;
        match ev {
            Event::Timer { host, epoch, key } => self.timer_due(host as usize, epoch, key),
            Event::Arrive { slot } => self.arrive(slot),
            Event::Fault { idx } => {
                let f = self.faults[idx as usize];
                self.apply(f);
            }
        }
        true
    }

    /// Queues a resolved fault for time `at`.
    pub fn schedule_fault(&mut self, at: SimTime, fault: Fault) {
        let idx = self.faults.len() as u32;
        self.faults.push(fault);
        self.queue.push(at.max(self.now), Event::Fault { idx });
    }

    fn timer_due(&mut self, h: usize, epoch: u32, key: u64) {
        let host = &mut self.hosts[h];
        if host.epoch != epoch {
            return; // scheduled before a crash: that kernel is gone
        }
        match host.state {
            HostState::Down => {}
            HostState::Frozen => host.held.push(key),
            HostState::Up => self.fire_timer(h, key),
        }
    }

    /// Hands an expired timer to its node (which traces it by name if it is not stale:
    /// only the node knows what its keys mean).
    pub(crate) fn fire_timer(&mut self, h: usize, key: u64) {
        let now = self.now;
        self.with_node(h, |n, ctx| n.on_timer(now, key, ctx));
    }

    pub(crate) fn crash_node(&mut self, h: usize) {
        let now = self.now;
        self.nodes[h].on_crash(now);
    }

    pub(crate) fn reboot_node(&mut self, h: usize) {
        let now = self.now;
        self.with_node(h, |n, ctx| n.on_reboot(now, ctx));
    }

    /// Installs a function that sees every segment as it is put on a link (lost ones too),
    /// stamped with the time it was sent.
    pub fn set_tap(&mut self, tap: WireTap) {
        self.tap = Some(tap);
    }

    fn tap_seg(&mut self, seg: &Segment) {
        if let Some(tap) = &mut self.tap {
            tap(self.now, seg);
        }
    }

    /// Sends what the node queued during its call, in order.
    fn flush_outbox(&mut self, h: usize) {
        let mut out = std::mem::take(&mut self.outbox);
        for seg in out.drain(..) {
            self.send_from(h, seg);
        }
        self.outbox = out;
    }

    fn send_from(&mut self, h: usize, seg: Segment) {
        self.hosts[h].stats.segs_sent += 1;
        let route = self.by_addr.get(&seg.dst.ip()).and_then(|&to| self.routes.get(&(h, to)));
        let Some(&(l, dir)) = route else {
            let w = Where { host: Some(h), reason: Some(DropReason::NoRoute), ..Where::default() };
            return self.trace_seg("seg_drop", &seg, w);
        };
        self.links[l].stats[dir.index()].sent += 1;
        self.trace_seg("seg_sent", &seg, Where::link(l, dir).host(h));
        self.tap_seg(&seg);
        if self.pass_stages(l, Hook::Leave(dir), &seg) {
            self.transmit(l, dir, seg);
        }
    }

    /// Lets the stages of link `l` that sit at `hook` judge `seg`, in order; false if one
    /// drops it (after sending the stage's RST, if it answers with one).
    fn pass_stages(&mut self, l: usize, hook: Hook, seg: &Segment) -> bool {
        let dir = hook.dir();
        for i in 0..self.links[l].stages.len() {
            let m = &mut self.links[l].stages[i];
            if !m.place.sees(hook) {
                continue;
            }
            let Verdict::Drop { reason, reset } = m.stage.on_segment(self.now, seg) else {
                continue;
            };
            self.links[l].stats[dir.index()].dropped += 1;
            self.trace_seg("seg_drop", seg, Where::link(l, dir).stage(i).reason(reason));
            if let Some(rst) = reset {
                self.stage_reset(l, dir.reverse(), i, rst);
            }
            return false;
        }
        true
    }

    /// Puts `seg` on link `l` in direction `dir` (if the link is up and its entry stages let
    /// it), and queues its arrival(s).
    fn transmit(&mut self, l: usize, dir: Dir, seg: Segment) {
        let d = dir.index();
        if let Some(reason) = self.links[l].dirs[d].blocked() {
            self.links[l].stats[d].dropped += 1;
            return self.trace_seg("seg_drop", &seg, Where::link(l, dir).reason(reason));
        }
        if !self.pass_stages(l, Hook::Entry(dir), &seg) {
            return;
        }
        let link = &mut self.links[l];
        let verdict = link.dirs[d].transmit(self.now, &seg, &mut link.rngs[d]);
        let (to, link_epoch) = (link.dst_host(dir) as u32, link.epoch);
        match verdict {
            Transmit::Dropped(reason) => {
                link.stats[d].dropped += 1;
                self.trace_seg("seg_drop", &seg, Where::link(l, dir).reason(reason));
            }
            Transmit::Deliver { at, dup } => {
                if let Some(dup_at) = dup {
                    link.stats[d].duplicated += 1;
                    self.trace_seg("seg_dup", &seg, Where { at: Some(dup_at), ..Where::link(l, dir) });
                }
                let copy = dup.map(|dup_at| (dup_at, seg.clone()));
                let f = InFlight { seg, to, link: l as u32, dir, link_epoch, local: false };
                self.enqueue_arrival(at, f);
                if let Some((dup_at, seg)) = copy {
                    let f = InFlight { seg, to, link: l as u32, dir, link_epoch, local: false };
                    self.enqueue_arrival(dup_at, f);
                }
            }
        }
    }

    fn enqueue_arrival(&mut self, at: SimTime, f: InFlight) {
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.in_flight[s as usize] = Some(f);
                s
            }
            None => {
                self.in_flight.push(Some(f));
                (self.in_flight.len() - 1) as u32
            }
        };
        self.queue.push(at, Event::Arrive { slot });
    }

    /// An RST from stage `i` of link `l`, travelling `dir`. Towards the end the stage sits
    /// at it arrives at once; towards the other it crosses the link like any segment.
    fn stage_reset(&mut self, l: usize, dir: Dir, i: usize, rst: Segment) {
        self.links[l].stats[dir.index()].sent += 1;
        self.trace_seg("seg_sent", &rst, Where::link(l, dir).stage(i));
        self.tap_seg(&rst);
        let link = &self.links[l];
        if link.stages[i].place.beside_receiver(dir) {
            let (to, link_epoch) = (link.dst_host(dir) as u32, link.epoch);
            let f = InFlight { seg: rst, to, link: l as u32, dir, link_epoch, local: true };
            self.enqueue_arrival(self.now, f);
        } else {
            self.transmit(l, dir, rst);
        }
    }

    /// Why link `l` loses a segment that was in flight on it, if it does.
    fn lost_in_flight(&self, f: &InFlight) -> Option<DropReason> {
        let link = &self.links[f.link as usize];
        let ld = &link.dirs[f.dir.index()];
        if !ld.up || link.epoch != f.link_epoch {
            Some(DropReason::LinkDown)
        } else if ld.partitioned {
            Some(DropReason::Partition)
        } else {
            None
        }
    }

    fn arrive(&mut self, slot: u32) {
        let f = self.in_flight[slot as usize].take().expect("arrival of an empty slot");
        self.free_slots.push(slot);
        let (l, dir, to) = (f.link as usize, f.dir, f.to as usize);
        if !f.local {
            if let Some(reason) = self.lost_in_flight(&f) {
                self.links[l].stats[dir.index()].dropped += 1;
                return self.trace_seg("seg_drop", &f.seg, Where::link(l, dir).reason(reason));
            }
            if !self.pass_stages(l, Hook::Reach(dir), &f.seg) {
                return;
            }
        }
        // A middlebox's RST next to the receiver crossed no wire but was counted as sent on the
        // link: it comes out at the far end too, so that sent = received + dropped.
        self.links[l].stats[dir.index()].received += 1;
        let reason = match self.hosts[to].state {
            HostState::Up => None,
            HostState::Frozen => Some(DropReason::HostFrozen),
            HostState::Down => Some(DropReason::HostDown),
        };
        if let Some(reason) = reason {
            return self.trace_seg("seg_drop", &f.seg, Where::link(l, dir).host(to).reason(reason));
        }
        self.hosts[to].stats.segs_recv += 1;
        self.trace_seg("seg_recv", &f.seg, Where::link(l, dir).host(to));
        let now = self.now;
        let seg = f.seg;
        self.with_node(to, move |n, ctx| n.on_segment(now, seg, ctx));
    }

    fn trace_seg(&mut self, ev: &str, seg: &Segment, w: Where) {
        if !self.trace.enabled() {
            return;
        }
        let rec = SegEvent {
            host: w.host.map(|h| self.hosts[h].name.as_str()),
            link: w.link.map(|(l, _)| self.links[l].name.as_str()),
            dir: w.link.map(|(_, d)| d.as_str()),
            middlebox: w.link.zip(w.stage).and_then(|((l, _), i)| self.links[l].stages[i].name.as_deref()),
            reason: w.reason,
            at: w.at.map(|t| t.0),
            seg: SegRecord::new(seg),
        };
        self.trace.record(self.now, ev, &rec);
    }
}
