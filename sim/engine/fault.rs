//! Faults: resolved against a simulation's names, then applied at the current time.
//!
//! They come from the schedule (`[[fault]] at = ...`, queued as events when the world is
//! built) and from scripts (`op = "fault"`, applied by the step executor through
//! [`Sim::apply_fault`]), both as a [`FaultAction`]. Each application is traced as a `fault`
//! record.

use super::link::Dir;
use super::middlebox::FilterMatch;
use super::sim::{HostState, Node, Sim};
use super::EngineError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Every segment on the link silently dropped, both ways.
    Partition,
    /// Ends a partition.
    Heal,
    /// The cable pulled: nothing crosses the link.
    LinkDown,
    /// The cable replugged.
    LinkUp,
    /// The host hibernated: nothing on it runs, it receives nothing.
    Freeze,
    /// The host resumes; timers that expired meanwhile fire.
    Thaw,
    /// The host stops and loses all socket state.
    Crash,
    /// The host comes back with no connections; it answers unknown segments with RST.
    Reboot,
    /// Drops segments matching `drop` on `link` in `direction` (a firewall rule).
    Filter,
    /// Removes every filter on `link`.
    Unfilter,
}

impl FaultKind {
    /// The name as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Heal => "heal",
            FaultKind::LinkDown => "link_down",
            FaultKind::LinkUp => "link_up",
            FaultKind::Freeze => "freeze",
            FaultKind::Thaw => "thaw",
            FaultKind::Crash => "crash",
            FaultKind::Reboot => "reboot",
            FaultKind::Filter => "filter",
            FaultKind::Unfilter => "unfilter",
        }
    }
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    AToB,
    BToA,
    #[default]
    Both,
}

/// A fault by the names of what it hits, before they are resolved: what a scenario's
/// `[[fault]]` and a script's `op = "fault"` both say.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FaultAction<'a> {
    pub kind: FaultKind,
    /// The link, for partition/heal/link_down/link_up/filter/unfilter.
    pub link: Option<&'a str>,
    /// The host, for freeze/thaw/crash/reboot.
    pub host: Option<&'a str>,
    /// For `filter`: what is dropped.
    pub drop: Option<FilterMatch>,
    /// For `filter`: which direction of the link.
    pub direction: Direction,
}

/// A fault with its target resolved to an index.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Both directions of the link drop everything (in flight too) until healed.
    Partition(usize),
    Heal(usize),
    /// The cable pulled: both directions drop everything, in flight and queued included.
    LinkDown(usize),
    LinkUp(usize),
    Filter { link: usize, drop: FilterMatch, direction: Direction },
    Unfilter(usize),
    /// Nothing on the host runs; arriving segments are dropped; due timers wait.
    Freeze(usize),
    /// The host runs again; timers that came due while frozen fire now, in order.
    Thaw(usize),
    /// The host stops; its stack forgets everything; its timers never fire.
    Crash(usize),
    /// The host starts again with a fresh stack (crashing it first if it was running).
    Reboot(usize),
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition(_) => FaultKind::Partition,
            Fault::Heal(_) => FaultKind::Heal,
            Fault::LinkDown(_) => FaultKind::LinkDown,
            Fault::LinkUp(_) => FaultKind::LinkUp,
            Fault::Filter { .. } => FaultKind::Filter,
            Fault::Unfilter(_) => FaultKind::Unfilter,
            Fault::Freeze(_) => FaultKind::Freeze,
            Fault::Thaw(_) => FaultKind::Thaw,
            Fault::Crash(_) => FaultKind::Crash,
            Fault::Reboot(_) => FaultKind::Reboot,
        }
    }

    /// The kind as written in scenario files.
    pub fn kind_name(&self) -> &'static str {
        self.kind().name()
    }
}


#[derive(Serialize)]
struct FaultRecord<'a> {
    kind: FaultKind,
    target: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop: Option<FilterMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<Direction>,
}

impl<N: Node> Sim<N> {
    /// Resolves a fault's names to indices; the error names what is missing or unknown.
    pub fn resolve_fault(&self, spec: &FaultAction) -> Result<Fault, EngineError> {
        let kind = spec.kind.name();
        let link = || -> Result<usize, EngineError> {
            let name = spec.link.ok_or(EngineError::MissingField { kind, field: "link" })?;
            self.link_index(name).ok_or_else(|| EngineError::UnknownLink(name.into()))
        };
        let host = || -> Result<usize, EngineError> {
            let name = spec.host.ok_or(EngineError::MissingField { kind, field: "host" })?;
            self.host_index(name).ok_or_else(|| EngineError::UnknownHost(name.into()))
        };
        Ok(match spec.kind {
            FaultKind::Partition => Fault::Partition(link()?),
            FaultKind::Heal => Fault::Heal(link()?),
            FaultKind::LinkDown => Fault::LinkDown(link()?),
            FaultKind::LinkUp => Fault::LinkUp(link()?),
            FaultKind::Filter => Fault::Filter {
                link: link()?,
                drop: spec.drop.ok_or(EngineError::MissingField { kind, field: "drop" })?,
                direction: spec.direction,
            },
            FaultKind::Unfilter => Fault::Unfilter(link()?),
            FaultKind::Freeze => Fault::Freeze(host()?),
            FaultKind::Thaw => Fault::Thaw(host()?),
            FaultKind::Crash => Fault::Crash(host()?),
            FaultKind::Reboot => Fault::Reboot(host()?),
        })
    }

    /// Applies `spec` now: the step executor's entry point.
    pub fn apply_fault(&mut self, spec: &FaultAction) -> Result<(), EngineError> {
        let f = self.resolve_fault(spec)?;
        self.apply(f);
        Ok(())
    }

    /// Applies a resolved fault now.
    pub fn apply(&mut self, f: Fault) {
        self.trace_fault(f);
        match f {
            Fault::Partition(l) => self.set_link(l, |d| d.partitioned = true),
            Fault::Heal(l) => self.set_link(l, |d| d.partitioned = false),
            Fault::LinkDown(l) => {
                let now = self.now();
                self.links[l].epoch = self.links[l].epoch.wrapping_add(1);
                self.set_link(l, |d| {
                    d.up = false;
                    d.flush_queue(now);
                });
            }
            Fault::LinkUp(l) => self.set_link(l, |d| d.up = true),
            Fault::Filter { link, drop, direction } => {
                for &dir in dirs(direction) {
                    self.links[link].add_filter(dir, drop);
                }
            }
            Fault::Unfilter(l) => self.links[l].clear_filters(),
            Fault::Freeze(h) => {
                if self.hosts[h].state == HostState::Up {
                    self.hosts[h].state = HostState::Frozen;
                }
            }
            Fault::Thaw(h) => self.thaw(h),
            Fault::Crash(h) => self.crash(h),
            Fault::Reboot(h) => {
                self.crash(h);
                // A new epoch for the new kernel: nothing scheduled while down survives.
                let host = &mut self.hosts[h];
                host.epoch = host.epoch.wrapping_add(1);
                host.state = HostState::Up;
                self.reboot_node(h);
            }
        }
    }

    fn set_link(&mut self, l: usize, mut f: impl FnMut(&mut super::link::LinkDir)) {
        for d in &mut self.links[l].dirs {
            f(d);
        }
    }

    /// Resumes a frozen host and fires, in the order they came due, the timers that came
    /// due while it was frozen (a hibernated VM's kernel finds them expired on resume).
    fn thaw(&mut self, h: usize) {
        if self.hosts[h].state != HostState::Frozen {
            return;
        }
        self.hosts[h].state = HostState::Up;
        let held = std::mem::take(&mut self.hosts[h].held);
        let epoch = self.hosts[h].epoch;
        for &key in &held {
            // A timer may crash or freeze the host again (a fault applied from a node
            // would); the rest then wait, or die, as the state says.
            let host = &mut self.hosts[h];
            match host.state {
                HostState::Up if host.epoch == epoch => self.fire_timer(h, key),
                HostState::Frozen if host.epoch == epoch => host.held.push(key),
                _ => {}
            }
        }
    }

    /// Stops a running or frozen host: its stack forgets everything, and the epoch bump
    /// makes every timer it had queued stale.
    fn crash(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        if host.state == HostState::Down {
            return;
        }
        host.state = HostState::Down;
        host.epoch = host.epoch.wrapping_add(1);
        host.held.clear();
        self.crash_node(h);
    }

    fn trace_fault(&mut self, f: Fault) {
        if !self.trace.enabled() {
            return;
        }
        let (target, drop, direction) = match f {
            Fault::Partition(l) | Fault::Heal(l) | Fault::LinkDown(l) | Fault::LinkUp(l) | Fault::Unfilter(l) => {
                (self.links[l].name.as_str(), None, None)
            }
            Fault::Filter { link, drop, direction } => (self.links[link].name.as_str(), Some(drop), Some(direction)),
            Fault::Freeze(h) | Fault::Thaw(h) | Fault::Crash(h) | Fault::Reboot(h) => {
                (self.hosts[h].name.as_str(), None, None)
            }
        };
        let rec = FaultRecord { kind: f.kind(), target, drop, direction };
        let now = self.now();
        self.trace.record(now, "fault", &rec);
    }
}

fn dirs(d: Direction) -> &'static [Dir] {
    match d {
        Direction::AToB => &[Dir::AToB],
        Direction::BToA => &[Dir::BToA],
        Direction::Both => &Dir::BOTH,
    }
}
