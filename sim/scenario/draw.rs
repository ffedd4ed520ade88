//! Randomness a scenario declares: a value written as a range (`at = "10s..20s"`,
//! `repeat = "0..3"`) is drawn anew by every run from its seed, so that a sweep over seeds
//! explores it and `tcpsim run --seed N` reproduces one member exactly.
//!
//! Draws come from their own named stream (`scenario`) of the run's generator, in file order,
//! and only a range draws: a scenario without ranges draws nothing, and every other stream
//! (links, hosts) is untouched by what this module draws.

use super::types::{AppSpec, FaultKind, FaultSpec, LinkDirSpec, LinkSpec, Scenario};
use super::units::{string_serde, DurSpec, UnitError};
use crate::engine::RngStreams;
use crate::time::Dur;
use rand_core::RngCore;
use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The stream every scenario-level draw comes from.
pub const STREAM: &str = "scenario";

/// A duration, or a range `"LO..HI"` (both ends included) drawn uniformly per run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DurDraw {
    pub lo: DurSpec,
    pub hi: DurSpec,
}

/// A count, or a range `"LO..HI"` (both ends included) drawn uniformly per run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CountDraw {
    pub lo: u32,
    pub hi: u32,
}

/// A probability in [0, 1], or a range `"LO..HI"` drawn uniformly per run. Written as a
/// number (`loss = 0.01`) when fixed, so a file without ranges reads and writes as before.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ProbDraw {
    pub lo: f64,
    pub hi: f64,
}

impl DurDraw {
    pub fn fixed(d: Dur) -> DurDraw {
        DurDraw { lo: DurSpec(d), hi: DurSpec(d) }
    }

    /// The value when fixed; for a range, its lower end (what a run without draws would use).
    pub fn lo(self) -> Dur {
        self.lo.0
    }

    pub fn is_range(self) -> bool {
        self.lo != self.hi
    }

    /// Draws once if a range; a fixed value draws nothing.
    fn draw(self, rng: &mut impl RngCore) -> Dur {
        Dur(uniform(rng, self.lo.0.as_nanos(), self.hi.0.as_nanos()))
    }
}

impl ProbDraw {
    pub fn fixed(p: f64) -> ProbDraw {
        ProbDraw { lo: p, hi: p }
    }

    pub fn is_range(self) -> bool {
        self.lo != self.hi
    }

    /// Draws once if a range (53 random bits, as a double holds); a fixed value draws nothing.
    fn draw(self, rng: &mut impl RngCore) -> f64 {
        if !self.is_range() {
            return self.lo;
        }
        let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.lo + (self.hi - self.lo) * unit
    }
}

impl CountDraw {
    fn draw(self, rng: &mut impl RngCore) -> u32 {
        uniform(rng, u64::from(self.lo), u64::from(self.hi)) as u32
    }
}

/// A uniform integer in `[lo, hi]`, by widening multiplication (no modulo bias worth
/// naming at these spans); no draw when `lo == hi`.
fn uniform(rng: &mut impl RngCore, lo: u64, hi: u64) -> u64 {
    if lo >= hi {
        return lo;
    }
    let span = u128::from(hi - lo) + 1;
    lo + ((u128::from(rng.next_u64()) * span) >> 64) as u64
}

/// Splits `"A..B"` into its ends, or gives `(s, s)`.
fn split_range(s: &str) -> (&str, &str) {
    s.split_once("..").unwrap_or((s, s))
}

impl std::str::FromStr for DurDraw {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = split_range(s);
        let lo: DurSpec = a.parse().map_err(|e: UnitError| e.to_string())?;
        let hi: DurSpec = b.parse().map_err(|e: UnitError| e.to_string())?;
        if hi < lo {
            return Err(format!("range `{s}` ends before it starts"));
        }
        Ok(DurDraw { lo, hi })
    }
}

impl std::str::FromStr for CountDraw {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = split_range(s);
        let num = |x: &str| x.trim().parse::<u32>().map_err(|_| format!("`{x}` is not a count"));
        let (lo, hi) = (num(a)?, num(b)?);
        if hi < lo {
            return Err(format!("range `{s}` ends before it starts"));
        }
        Ok(CountDraw { lo, hi })
    }
}

impl std::str::FromStr for ProbDraw {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = split_range(s);
        let num = |x: &str| x.trim().parse::<f64>().map_err(|_| format!("`{x}` is not a number"));
        let (lo, hi) = (num(a)?, num(b)?);
        // NaN fails every comparison: say so rather than let the range test pass it by.
        if lo.is_nan() || hi.is_nan() || hi < lo {
            return Err(format!("range `{s}` ends before it starts"));
        }
        Ok(ProbDraw { lo, hi })
    }
}

/// A drawn value as the file writes it: `LO..HI`, or the one value when both ends agree.
fn write_range<T: fmt::Display + PartialEq>(f: &mut fmt::Formatter<'_>, lo: T, hi: T) -> fmt::Result {
    if lo == hi {
        write!(f, "{lo}")
    } else {
        write!(f, "{lo}..{hi}")
    }
}

impl fmt::Display for DurDraw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_range(f, self.lo, self.hi)
    }
}

impl fmt::Display for ProbDraw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_range(f, self.lo, self.hi)
    }
}

impl fmt::Display for CountDraw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_range(f, self.lo, self.hi)
    }
}


/// A number, or a string `"LO..HI"`: what a file may write for a [`ProbDraw`].
#[derive(Deserialize)]
#[serde(untagged)]
enum ProbText {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for ProbDraw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match ProbText::deserialize(d)? {
            ProbText::Number(p) => Ok(ProbDraw::fixed(p)),
            ProbText::Text(s) => s.parse().map_err(|e| de::Error::custom(format!("invalid probability: {e}"))),
        }
    }
}

impl Serialize for ProbDraw {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_range() {
            s.collect_str(self)
        } else {
            s.serialize_f64(self.lo)
        }
    }
}

impl JsonSchema for ProbDraw {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProbDraw".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "probability in [0, 1], or a range \"LO..HI\" drawn per run",
            "anyOf": [
                { "type": "number", "minimum": 0.0, "maximum": 1.0 },
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\.\\.[0-9]+(\\.[0-9]+)?$" }
            ]
        })
    }
}

string_serde!(
    DurDraw,
    "duration, or a range LO..HI drawn per run",
    "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)|0)(\\.\\.([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)|0))?$",
    "duration"
);
string_serde!(CountDraw, "count, or a range LO..HI drawn per run", "^[0-9]+(\\.\\.[0-9]+)?$", "count");

/// Whether the scenario declares anything drawn per run.
pub fn has_draws(sc: &Scenario) -> bool {
    let faults = sc.faults.iter().any(|f| {
        f.at.is_some_and(DurDraw::is_range)
            || f.lasts.is_some_and(DurDraw::is_range)
            || f.repeat.is_some_and(|r| r.lo != r.hi)
    });
    let apps = sc.apps.iter().any(|a| match a {
        AppSpec::Messenger(m) => m.quiet_at.is_some_and(DurDraw::is_range) || m.quiet.is_some_and(DurDraw::is_range),
        _ => false,
    });
    faults || apps || sc.links.iter().any(link_has_draws)
}

fn link_has_draws(l: &LinkSpec) -> bool {
    let any = |delay: Option<DurDraw>, jitter: Option<DurDraw>, loss: Option<ProbDraw>, dup: Option<ProbDraw>| {
        delay.is_some_and(DurDraw::is_range)
            || jitter.is_some_and(DurDraw::is_range)
            || loss.is_some_and(ProbDraw::is_range)
            || dup.is_some_and(ProbDraw::is_range)
    };
    let dir = |d: &LinkDirSpec| any(d.delay, d.jitter, d.loss, d.duplicate);
    any(l.delay, l.jitter, l.loss, l.duplicate) || l.a_to_b.as_ref().is_some_and(dir) || l.b_to_a.as_ref().is_some_and(dir)
}

/// The scenario as the run with `seed` sees it: every range drawn, every `repeat` and
/// `lasts` expanded into plain faults. A scenario without draws comes back equal.
pub fn resolve(sc: &Scenario, seed: u64) -> Scenario {
    let mut rng = RngStreams::new(seed).stream(STREAM);
    let mut out = sc.clone();
    out.faults.clear();
    for f in &sc.faults {
        let copies = f.repeat.map_or(1, |r| r.draw(&mut rng));
        for _ in 0..copies {
            let at = f.at.map(|a| a.draw(&mut rng));
            let plain = FaultSpec { at: at.map(DurDraw::fixed), lasts: None, repeat: None, ..f.clone() };
            out.faults.push(plain);
            if let (Some(at), Some(lasts), Some(undo)) = (at, f.lasts, inverse(f.kind)) {
                let end = at + lasts.draw(&mut rng);
                out.faults.push(FaultSpec { at: Some(DurDraw::fixed(end)), kind: undo, drop: None, ..f.clone() }.plain());
            }
        }
    }
    for app in &mut out.apps {
        if let AppSpec::Messenger(m) = app {
            m.quiet_at = m.quiet_at.map(|d| DurDraw::fixed(d.draw(&mut rng)));
            m.quiet = m.quiet.map(|d| DurDraw::fixed(d.draw(&mut rng)));
        }
    }
    // Links draw last, so that adding a range to a link leaves every earlier draw as it was.
    for l in &mut out.links {
        draw_link(&mut l.delay, &mut l.jitter, &mut l.loss, &mut l.duplicate, &mut rng);
        for d in [&mut l.a_to_b, &mut l.b_to_a].into_iter().flatten() {
            draw_link(&mut d.delay, &mut d.jitter, &mut d.loss, &mut d.duplicate, &mut rng);
        }
    }
    out
}

/// Fixes one link direction's drawn properties, in the order the file lists them.
fn draw_link(
    delay: &mut Option<DurDraw>,
    jitter: &mut Option<DurDraw>,
    loss: &mut Option<ProbDraw>,
    duplicate: &mut Option<ProbDraw>,
    rng: &mut impl RngCore,
) {
    *delay = delay.map(|d| DurDraw::fixed(d.draw(rng)));
    *loss = loss.map(|p| ProbDraw::fixed(p.draw(rng)));
    *duplicate = duplicate.map(|p| ProbDraw::fixed(p.draw(rng)));
    *jitter = jitter.map(|d| DurDraw::fixed(d.draw(rng)));
}

impl FaultSpec {
    fn plain(self) -> FaultSpec {
        FaultSpec { lasts: None, repeat: None, ..self }
    }
}

/// The fault that ends `kind`, for `lasts`.
pub fn inverse(kind: FaultKind) -> Option<FaultKind> {
    match kind {
        FaultKind::Partition => Some(FaultKind::Heal),
        FaultKind::LinkDown => Some(FaultKind::LinkUp),
        FaultKind::Freeze => Some(FaultKind::Thaw),
        FaultKind::Crash => Some(FaultKind::Reboot),
        FaultKind::Filter => Some(FaultKind::Unfilter),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_print() {
        let d: DurDraw = "10s..20s".parse().unwrap();
        assert_eq!((d.lo.0, d.hi.0), (Dur::from_secs(10), Dur::from_secs(20)));
        assert_eq!(d.to_string(), "10s..20s");
        assert_eq!("3s".parse::<DurDraw>().unwrap().to_string(), "3s");
        assert!("20s..10s".parse::<DurDraw>().is_err());
        assert_eq!("0..3".parse::<CountDraw>().unwrap(), CountDraw { lo: 0, hi: 3 });
        assert!("x..3".parse::<CountDraw>().is_err());
    }

    #[test]
    fn uniform_stays_in_bounds_and_fixed_draws_nothing() {
        let mut rng = RngStreams::new(1).stream(STREAM);
        let mut untouched = RngStreams::new(1).stream(STREAM);
        assert_eq!(uniform(&mut rng, 5, 5), 5);
        assert_eq!(rng.next_u64(), untouched.next_u64(), "a fixed value must not draw");
        let xs: Vec<u64> = (0..1000).map(|_| uniform(&mut rng, 10, 20)).collect();
        assert!(xs.iter().all(|x| (10..=20).contains(x)));
        assert!(xs.contains(&10) && xs.contains(&20), "both ends are reachable");
    }
}
