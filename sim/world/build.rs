//! Building a simulation from a scenario file: the scenario's names and units translated
//! into the engine's hosts, links, middleboxes and fault schedule. The engine knows nothing of
//! files; this is where they meet.

use crate::engine::link::CountedDrops;
use crate::engine::{EngineError, LinkParams, Node, Prob, Sim};
use crate::scenario::draw::{DurDraw, ProbDraw};
use crate::scenario::{HostSpec, LinkDirSpec, LinkKind, LinkSpec, Scenario};
use crate::time::SimTime;

/// Builds the world a scenario describes: hosts (nodes made by `make_node`), links,
/// middleboxes, and its `[[fault]]` schedule as events. Apps and script are the caller's.
pub fn build_sim<N: Node>(
sc: &Scenario,
seed: u64,
mut make_node: impl FnMut(usize, &HostSpec) -> N,
) -> Result<Sim<N>, EngineError> {
    let mut sim = Sim::new(seed);
    for (i, h) in sc.hosts.iter().enumerate() {
        sim.add_host(&h.name, h.addr, make_node(i, h))?;
    }
    for l in &sc.links {
        let ab = link_params(l, l.a_to_b.as_ref())?;
        let i = match l.kind {
            LinkKind::Veth => sim.add_link(&l.name, &l.a, &l.b, ab, link_params(l, l.b_to_a.as_ref())?)?,
            LinkKind::Lo => sim.add_loopback(&l.name, &l.a, ab)?,
        };
        sim.set_mtu(i, l.mtu());
    }
    for m in &sc.middleboxes {
        sim.add_middlebox(&m.name, &m.link, m.idle_timeout.0, m.on_expired)?;
    }
    for f in &sc.faults {
        let fault = sim.resolve_fault(&f.action())?;
        let at = f.at.ok_or(EngineError::FaultWithoutTime(fault.kind_name()))?;
        // A range's lower end: a run resolves its draws first (`scenario::draw::resolve`).
        sim.schedule_fault(SimTime::ZERO + at.lo(), fault);
    }
    Ok(sim)
}

/// One direction's parameters: the direction's own setting, else the link's, else the
/// default (no delay, unlimited rate, 1000 packets of queue, no loss).
fn link_params(l: &LinkSpec, dir: Option<&LinkDirSpec>) -> Result<LinkParams, EngineError> {
    let d = dir.cloned().unwrap_or_default();
    // A run resolved its draws first (`scenario::draw::resolve`): a range's lower end is then
    // its drawn value.
    let prob = |field: &'static str, v: Option<ProbDraw>| match v.map(|p| p.lo) {
        None => Ok(Prob::NEVER),
        Some(p) => Prob::new(p)
            .ok_or_else(|| EngineError::BadProbability { link: l.name.clone(), field, value: p }),
    };
    let bandwidth = d.bandwidth.or(l.bandwidth).map(|r| r.0);
    if bandwidth == Some(0) {
        return Err(EngineError::ZeroBandwidth(l.name.clone()));
    }
    let def = LinkParams::default();
    Ok(LinkParams {
        delay: d.delay.or(l.delay).map_or(def.delay, DurDraw::lo),
        bandwidth,
        queue: d.queue.or(l.queue).unwrap_or(def.queue),
        loss: prob("loss", d.loss.or(l.loss))?,
        duplicate: prob("duplicate", d.duplicate.or(l.duplicate))?,
        jitter: d.jitter.or(l.jitter).map_or(def.jitter, DurDraw::lo),
        counted: counted_drops(&d),
    })
}

/// A direction's loss by count (`drop_nth`, `drop_every`; checked by `scenario::validate`).
fn counted_drops(d: &LinkDirSpec) -> CountedDrops {
    let mut nth = d.drop_nth.clone().unwrap_or_default();
    nth.sort_unstable();
    nth.dedup();
    CountedDrops { nth, every: d.drop_every.unwrap_or(0) }
}
