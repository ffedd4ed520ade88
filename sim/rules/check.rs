//! Checking answers against the rules, one observation at a time or over a whole run.

use super::catalog::RULES;
use super::{Conformance, Observed, Os, Rule};
use crate::socket::epoll::Epoll;
use crate::socket::kqueue::{self, KEvent, KFilter};
use crate::socket::poll::{poll_revents, tcp_poll};
use crate::socket::view::{PollMask, SockView};
use crate::time::SimTime;
use std::collections::BTreeMap;
use std::fmt;

/// A rule an answer broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub text: &'static str,
    pub source: &'static str,
    /// The observation, in words.
    pub observed: String,
}

impl Violation {
    fn new(rule: &'static Rule, o: &Observed) -> Violation {
        Violation {
            rule: rule.id,
            text: rule.text,
            source: rule.source,
            observed: o.to_string(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule `{}` violated: {} [source: {}]; observed: {}",
            self.rule, self.text, self.source, self.observed
        )
    }
}

/// The violations of the rules that bind the answering system ([`Conformance::Native`]).
pub fn check(o: &Observed) -> Vec<Violation> {
    check_against(o, Conformance::Native)
}

/// The violations of the rules that bind under `conformance`.
pub fn check_against(o: &Observed, conformance: Conformance) -> Vec<Violation> {
    RULES
        .iter()
        .filter(|r| r.binds(o.os, conformance) && (r.applies)(o) && !(r.holds)(o))
        .map(|r| Violation::new(r, o))
        .collect()
}

/// The ids of the rules that bind this answer's system and apply to it: what the readiness
/// table lists for a row.
pub fn rules_for(o: &Observed) -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|r| r.binds(o.os, Conformance::Native) && (r.applies)(o))
        .map(|r| r.id)
        .collect()
}

/// The portable rules this answer breaks because its system knowingly departs from them (for
/// Linux: POLLOUT together with POLLHUP). Recorded, not failures.
pub fn departures(o: &Observed) -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|r| r.binds(o.os, Conformance::Posix) && !r.binds(o.os, Conformance::Native))
        .filter(|r| (r.applies)(o) && !(r.holds)(o))
        .map(|r| r.id)
        .collect()
}

/// A violation with the moment it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub time: SimTime,
    pub violation: Violation,
}

/// The error a run ends with when any answer broke a rule: names the seed, the simulated time
/// and the rule of every failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_failures(*seed, failures))]
pub struct RunFailure {
    pub seed: u64,
    pub failures: Vec<Failure>,
}

fn render_failures(seed: u64, failures: &[Failure]) -> String {
    let mut s = format!(
        "{} readiness rule violation(s) in the run with seed {seed}:",
        failures.len()
    );
    for f in failures {
        s.push_str(&format!("\n  seed {seed}, t={}s: {}", f.time, f.violation));
    }
    s
}

/// Checks every readiness answer of one run. The syscall layer either computes answers through
/// the checking wrappers ([`Checker::linux_poll`], [`Checker::epoll_wait`], ...) or hands each
/// answer to [`Checker::observe`]; at the end [`Checker::finish`] fails the run if any rule broke.
#[derive(Clone, Debug)]
pub struct Checker {
    seed: u64,
    checked: u64,
    failures: Vec<Failure>,
}

impl Checker {
    pub fn new(seed: u64) -> Checker {
        Checker {
            seed,
            checked: 0,
            failures: Vec::new(),
        }
    }

    /// Checks one answer given at `now`; returns whether it broke no rule.
    pub fn observe(&mut self, now: SimTime, o: &Observed) -> bool {
        self.checked += 1;
        let violations = check(o);
        let clean = violations.is_empty();
        self.failures
            .extend(violations.into_iter().map(|violation| Failure {
                time: now,
                violation,
            }));
        clean
    }

    /// poll(2) on a Linux socket: the revents, checked.
    pub fn linux_poll(&mut self, now: SimTime, v: &SockView, requested: PollMask) -> PollMask {
        let revents = poll_revents(v, requested);
        self.observe(now, &Observed::poll(Os::Linux, v, requested, revents));
        revents
    }

    /// poll(2) on a FreeBSD socket: the revents, checked.
    pub fn freebsd_poll(&mut self, now: SimTime, v: &SockView, requested: PollMask) -> PollMask {
        let revents = kqueue::freebsd_poll(v, requested);
        self.observe(now, &Observed::poll(Os::FreeBsd, v, requested, revents));
        revents
    }

    /// kevent(2) on one FreeBSD filter: the event, checked.
    pub fn kevent(
        &mut self,
        now: SimTime,
        v: &SockView,
        filter: KFilter,
        note_lowat: Option<u32>,
    ) -> Option<KEvent> {
        let event = kqueue::kevent(v, filter, note_lowat);
        self.observe(now, &Observed::kevent(v, filter, note_lowat, event));
        event
    }

    /// epoll_wait(2) that does not block (Linux): `view_of(fd)` gives each queued socket as it
    /// is now; every reported event is checked against that socket.
    pub fn epoll_wait(
        &mut self,
        now: SimTime,
        ep: &mut Epoll,
        max: usize,
        mut view_of: impl FnMut(u32) -> SockView,
    ) -> Vec<(u32, PollMask)> {
        let mut views = BTreeMap::new();
        let events = ep.wait_registered(max, |fd| {
            let v = view_of(fd);
            let mask = tcp_poll(&v);
            views.insert(fd, v);
            mask
        });
        for (fd, reported, registered) in &events {
            self.observe(now, &Observed::epoll(&views[fd], *registered, *reported));
        }
        let events: Vec<(u32, PollMask)> = events.into_iter().map(|(fd, m, _)| (fd, m)).collect();
        events
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// How many answers were checked.
    pub fn checked(&self) -> u64 {
        self.checked
    }
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    /// `Ok(answers checked)`, or the failure naming seed, times and rules.
    pub fn finish(self) -> Result<u64, RunFailure> {
        if self.failures.is_empty() {
            Ok(self.checked)
        } else {
            Err(RunFailure {
                seed: self.seed,
                failures: self.failures,
            })
        }
    }
}
