//! A whole run: the engine with a TCP host per scenario host, the scenario's applications,
//! and its script, advanced together in simulated time.
//!
//! The engine knows nothing of programs; this module is where programs live. Applications
//! react to socket wake-ups (as an event loop on epoll would) and to their own start times;
//! the script runs its steps in order, and a blocking step lets the world run until the
//! socket is ready or the run ends.

mod apps;
mod event_loop;
pub mod invariants;
pub mod protocols;
mod build;
mod load;
mod report;
pub mod timeline;
mod script;

pub use build::build_sim;
pub use load::{AbReport, FirstFailure, LoadReport, Percentiles, ServerReport};

pub use report::{RunReport, ScriptSocketReport, SocketReport};

use crate::engine::{EngineError, Sim};
use crate::host::Host;
use crate::rules::Checker;
use crate::scenario::validate::host_profile;
use crate::scenario::Scenario;
use crate::time::SimTime;
use crate::trace::Trace;
use apps::Apps;
use std::rc::Rc;

/// Why a run could not start (the scenario passed validation, so these are rare).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("host `{host}`: {msg}")]
    Profile { host: String, msg: String },
}

/// The simulated world of one run.
pub struct World {
    pub(crate) sim: Sim<Host>,
    pub(crate) end: SimTime,
    apps: Apps,
    pub(crate) checker: Checker,
    /// Ids of the readiness rules that applied to some answer of this run.
    pub(crate) applied_rules: std::collections::BTreeSet<&'static str>,
    seed: u64,
    /// What each step of the script returned, once [`World::run`] ran it (for the report).
    observations: Vec<crate::scenario::Observation>,
    /// Outputs to flush when the run is over.
    finishers: Vec<Box<dyn FnOnce() -> std::io::Result<()>>>,
    /// The run's bounds and progress meter, if it has any (see [`World::set_limits`]).
    governor: Option<crate::limits::Governor>,
}

/// The pcap writer behind the engine's tap; an error stops writing and is reported at the end.
struct PcapSink<W: std::io::Write> {
    writer: Option<crate::pcap::PcapWriter<W>>,
    error: Option<String>,
}

impl<W: std::io::Write> PcapSink<W> {
    fn write(&mut self, t: SimTime, seg: &crate::tcp::segment::Segment) {
        if let Some(w) = &mut self.writer {
            if let Err(e) = w.write_segment(t, seg) {
                self.error = Some(e.to_string());
                self.writer = None;
            }
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(std::io::Error::other(e));
        }
        match self.writer.take().map(|w| w.finish()) {
            Some(Err(e)) => Err(std::io::Error::other(e.to_string())),
            _ => Ok(()),
        }
    }
}

impl World {
    /// Builds the world of `scenario` with `seed`; nothing runs yet.
    pub fn build(scenario: &Scenario, seed: u64, trace: Trace) -> Result<World, RunError> {
        let resolved = crate::scenario::draw::resolve(scenario, seed);
        let scenario = &resolved;
        let mut profiles = Vec::with_capacity(scenario.hosts.len());
        for h in &scenario.hosts {
            let p = host_profile(h).map_err(|msg| RunError::Profile { host: h.name.clone(), msg })?;
            profiles.push(Rc::new(p));
        }
        let mut sim = build_sim(scenario, seed, |i, spec| {
            let mut host = Host::new(&spec.name, spec.addr, profiles[i].clone());
            host.set_qdisc(spec.qdisc.unwrap_or_default());
            host
        })?;
        sim.set_trace(trace);
        let apps = Apps::new(&scenario.apps, &sim);
        Ok(World {
            sim,
            end: SimTime::ZERO + scenario.duration.0,
            apps,
            checker: Checker::new(seed),
            applied_rules: Default::default(),
            seed,
            observations: Vec::new(),
            finishers: Vec::new(),
            governor: None,
        })
    }

    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn sim(&self) -> &Sim<Host> {
        &self.sim
    }

    /// Runs the next thing that happens before `limit` (an engine event or an application's
    /// start), then lets applications react to the wake-ups it caused. False when nothing is
    /// left to happen by `limit`.
    fn step_before(&mut self, limit: SimTime) -> bool {
        if self.stopped() {
            return false;
        }
        let next_sim = self.sim.peek_time().filter(|t| *t <= limit);
        let next_app = self.apps.next_start().filter(|t| *t <= limit);
        match (next_sim, next_app) {
            (None, None) => return false,
            _ if !self.governed() => return false,
            (Some(s), Some(a)) if a < s => self.start_apps(a),
            (None, Some(a)) => self.start_apps(a),
            _ => {
                self.sim.step();
            }
        }
        self.apps.on_wakeups(&mut self.sim, &mut self.checker);
        true
    }

    fn start_apps(&mut self, at: SimTime) {
        self.sim.run_until(at);
        self.apps.start_due(&mut self.sim);
    }

    /// Counts the event about to run against the run's limits; false once one is hit.
    fn governed(&mut self) -> bool {
        let Some(g) = &mut self.governor else { return true };
        g.tick(self.sim.now(), self.sim.trace().bytes_written())
    }

    /// Bounds the run by `limits` and shows its progress on a terminal, headed `label`.
    pub fn set_limits(&mut self, limits: crate::limits::Limits, label: &str) {
        self.governor = Some(crate::limits::Governor::new(limits, self.end, label));
    }

    /// Whether a limit stopped the run: nothing more happens in it.
    pub fn stopped(&self) -> bool {
        self.limit_hit().is_some()
    }

    /// The limit that stopped the run, if one did.
    pub fn limit_hit(&self) -> Option<&crate::limits::LimitHit> {
        self.governor.as_ref().and_then(|g| g.hit())
    }

    /// Runs everything up to `t` and sets the clock to `t` (unless a limit stopped the run:
    /// the clock then stays where the run stopped).
    pub fn run_until(&mut self, t: SimTime) {
        while self.step_before(t) {}
        if !self.stopped() {
            self.sim.run_until(t);
        }
    }

    /// Runs until `ready` holds or `deadline` passes; whether it holds. A blocking syscall
    /// is this wait followed by the call.
    pub(crate) fn wait_for(&mut self, deadline: SimTime, mut ready: impl FnMut(&Sim<Host>) -> bool) -> bool {
        loop {
            if ready(&self.sim) {
                return true;
            }
            if !self.step_before(deadline) {
                if !self.stopped() {
                    self.sim.run_until(deadline.max(self.sim.now()));
                }
                return ready(&self.sim);
            }
        }
    }

    /// Runs the scenario to its end: the script first (if any), then the remaining time.
    pub fn run(&mut self, scenario: &Scenario) -> Vec<crate::scenario::Observation> {
        let observations = script::run_script(self, &scenario.script);
        self.observations = observations.clone();
        let end = self.end;
        self.run_until(end);
        observations
    }

    /// Rule violations so far, each naming the seed, the time and the rule.
    pub fn rule_failures(&self) -> Vec<String> {
        self.checker
            .failures()
            .iter()
            .map(|f| format!("seed {}, t={} s: {}", self.seed, f.time, f.violation))
            .collect()
    }

    /// Ids of the rules that applied to some poll/epoll answer of this run.
    pub fn applied_rules(&self) -> Vec<String> {
        self.applied_rules.iter().map(|s| s.to_string()).collect()
    }

    /// Writes every segment put on a link into `pcap`, stamped with its send time.
    pub fn set_pcap<W: std::io::Write + 'static>(&mut self, pcap: crate::pcap::PcapWriter<W>) {
        let sink = Rc::new(std::cell::RefCell::new(PcapSink { writer: Some(pcap), error: None }));
        let tap = sink.clone();
        self.sim.set_tap(Box::new(move |t, seg| tap.borrow_mut().write(t, seg)));
        self.finishers.push(Box::new(move || sink.borrow_mut().finish()));
    }

    /// What a memory trace recorded (empty for other sinks).
    pub fn take_trace_bytes(&mut self) -> Vec<u8> {
        self.sim.trace_mut().take_bytes()
    }

    /// Flushes every output of the run (trace, pcap); the first error wins.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(g) = &mut self.governor {
            g.finish();
        }
        let mut result = self.sim.trace_mut().finish();
        for f in self.finishers.drain(..) {
            let r = f();
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// The report of the run so far.
    pub fn report(&self, scenario: &Scenario) -> RunReport {
        report::build(self, scenario, &self.apps, &self.observations)
    }
}
