//! Bounds on a run and its progress meter.
//!
//! A scenario can ask for work without end (a 100 Gbit/s link for a hundred years): the
//! user's limits, and defaults that such a mistake hits first, stop it with a clear
//! message and the report of what was simulated so far. Events and trace bytes are
//! counted, so where a run stops on them is deterministic; the wall-clock `timeout` is not,
//! and is off unless asked for.
//!
//! Long work shows its progress on a terminal (simulated time, events, events per second)
//! through `indicatif`, and nothing at all when standard error is a pipe or a CI log.

use crate::time::SimTime;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// What a run may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Engine events (segment arrivals, timers, faults, application starts).
    pub max_events: Option<u64>,
    /// Bytes of JSON Lines trace.
    pub max_trace_bytes: Option<u64>,
    /// Wall-clock time.
    pub timeout: Option<Duration>,
}

impl Limits {
    /// The default event bound: far above every shipped scenario (the largest, 40 000
    /// clients, takes about two million), reached in about a minute by a runaway one.
    pub const DEFAULT_MAX_EVENTS: u64 = 200_000_000;
    /// The default trace bound: 2 GiB.
    pub const DEFAULT_MAX_TRACE_BYTES: u64 = 2 << 30;

    /// No bounds at all (library callers, tests).
    pub fn none() -> Limits {
        Limits { max_events: None, max_trace_bytes: None, timeout: None }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: Some(Self::DEFAULT_MAX_EVENTS),
            max_trace_bytes: Some(Self::DEFAULT_MAX_TRACE_BYTES),
            timeout: None,
        }
    }
}

/// Which limit ended a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitHit {
    Events(u64),
    TraceBytes(u64),
    Timeout(Duration),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Events(n) => write!(f, "stopped after {n} events (--max-events)"),
            LimitHit::TraceBytes(n) => write!(f, "stopped after {n} bytes of trace (--max-trace-bytes)"),
            LimitHit::Timeout(d) => write!(f, "stopped after {} s of wall-clock time (--timeout)", d.as_secs_f64()),
        }
    }
}

/// How often (in events) the clock is read and the meter redrawn: rarely enough to cost
/// nothing per event.
const CHECK_EVERY: u64 = 1 << 14;

/// Counts a run's work against its [`Limits`] and shows progress.
pub struct Governor {
    limits: Limits,
    events: u64,
    started: Instant,
    /// The simulated time the run ends at (the meter's 100 %).
    end: SimTime,
    bar: Option<ProgressBar>,
    hit: Option<LimitHit>,
}

impl Governor {
    /// A governor for a run ending at `end`; `label` heads the meter.
    pub fn new(limits: Limits, end: SimTime, label: &str) -> Governor {
        Governor { limits, events: 0, started: Instant::now(), end, bar: progress_bar(label, end), hit: None }
    }

    /// One more event, at simulated time `now`, with `trace_bytes` written so far. False
    /// once a limit is hit (and from then on).
    #[inline]
    pub fn tick(&mut self, now: SimTime, trace_bytes: u64) -> bool {
        if self.hit.is_some() {
            return false;
        }
        self.events += 1;
        if self.limits.max_events.is_some_and(|m| self.events > m) {
            self.hit = Some(LimitHit::Events(self.events - 1));
        } else if self.limits.max_trace_bytes.is_some_and(|m| trace_bytes > m) {
            self.hit = Some(LimitHit::TraceBytes(trace_bytes));
        } else if self.events % CHECK_EVERY == 0 {
            self.periodic(now);
        }
        self.hit.is_none()
    }

    fn periodic(&mut self, now: SimTime) {
        let elapsed = self.started.elapsed();
        if let Some(t) = self.limits.timeout.filter(|t| elapsed >= *t) {
            self.hit = Some(LimitHit::Timeout(t));
        }
        if let Some(bar) = &self.bar {
            bar.set_position(now.as_nanos().min(self.end.as_nanos()) / 1_000_000);
            let rate = self.events as f64 / elapsed.as_secs_f64().max(1e-9);
            bar.set_message(format!("{} events, {:.0} events/s", self.events, rate));
        }
    }

    /// Events counted so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The limit that stopped the run, if one did.
    pub fn hit(&self) -> Option<&LimitHit> {
        self.hit.as_ref()
    }

    /// Clears the meter from the terminal.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Governor {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A meter on standard error in simulated milliseconds, or none when standard error is not
/// a terminal.
fn progress_bar(label: &str, end: SimTime) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(end.as_nanos() / 1_000_000), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix} {bar:30} simulated {pos} of {len} ms  {msg}  ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_bound_stops_at_exactly_its_count() {
        let limits = Limits { max_events: Some(3), ..Limits::none() };
        let mut g = Governor::new(limits, SimTime(10), "t");
        assert!((0..3).all(|i| g.tick(SimTime(i), 0)));
        assert!(!g.tick(SimTime(3), 0));
        assert_eq!(g.hit(), Some(&LimitHit::Events(3)));
        assert!(!g.tick(SimTime(4), 0), "stays stopped");
    }

    #[test]
    fn the_trace_bound_stops_once_passed() {
        let limits = Limits { max_trace_bytes: Some(100), ..Limits::none() };
        let mut g = Governor::new(limits, SimTime(10), "t");
        assert!(g.tick(SimTime(1), 100));
        assert!(!g.tick(SimTime(2), 101));
        assert_eq!(g.hit(), Some(&LimitHit::TraceBytes(101)));
    }
}
