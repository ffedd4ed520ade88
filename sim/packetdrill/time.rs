//! packetdrill's time rules (run.c `adjust_relative_event_times`, `verify_time`), in
//! microseconds since the script started.
//!
//! A relative time (`+0.1`) counts from *now* when the event comes up, which is when the
//! previous event actually finished (an outbound packet: when it was sent), except that
//! consecutive inbound packets count from the previous packet's scheduled time, so that
//! processing costs do not accumulate. A blocking call's `...end` moves with its start.

use super::ast::EventTime;

/// The tolerances of a run: `--tolerance_usecs` (default 4000) and `--tolerance_percent`
/// (default 12.5 on Linux: the timer wheel's worst-case slack), the latter a fraction of
/// the time since the previous event.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Tolerance {
    pub usecs: i64,
    pub percent: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { usecs: 4000, percent: 12.5 }
    }
}

/// An event's time once resolved against the run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub start: i64,
    /// The end of a range (`a~b`), else `start`.
    pub end: i64,
    /// What a relative time was added to (for `+a~+b` messages).
    pub offset: i64,
    pub any: bool,
    pub range: Option<RangeKind>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RangeKind {
    Absolute,
    Relative,
}

/// Resolves `t`. `anchored_at`: the previous event's scheduled time when both it and this
/// event are inbound packets; `now` otherwise.
pub fn schedule(t: EventTime, now: i64, anchored_at: Option<i64>) -> Scheduled {
    let offset = anchored_at.unwrap_or(now);
    let s = |start, end, offset, any, range| Scheduled { start, end, offset, any, range };
    match t {
        EventTime::Absolute(a) => s(a, a, 0, false, None),
        EventTime::Relative(a) => s(offset + a, offset + a, offset, false, None),
        EventTime::Any => s(now, now, now, true, None),
        EventTime::AbsoluteRange(a, b) => s(a, b, 0, false, Some(RangeKind::Absolute)),
        EventTime::RelativeRange(a, b) => s(offset + a, offset + b, offset, false, Some(RangeKind::Relative)),
    }
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// `verify_time`: whether `actual` is within tolerance of `at`, worded as packetdrill words
/// a timing error. `last_event` is the previous event's scheduled time (the dynamic part of
/// the tolerance grows with the gap since it).
pub fn verify(at: &Scheduled, actual: i64, last_event: Option<i64>, tol: Tolerance, what: &str) -> Result<(), String> {
    if at.any {
        return Ok(());
    }
    let mut tolerance = tol.usecs;
    if let Some(last) = last_event {
        let dynamic = (tol.percent / 100.0 * (at.start - last) as f64) as i64;
        tolerance = tolerance.max(dynamic);
    }
    match at.range {
        Some(kind) => {
            if actual >= at.start - tolerance && actual <= at.end + tolerance {
                return Ok(());
            }
            Err(match kind {
                RangeKind::Absolute => format!(
                    "timing error: expected {what} in time range {:.6}~{:.6} sec but happened at {:.6} sec",
                    secs(at.start),
                    secs(at.end),
                    secs(actual)
                ),
                RangeKind::Relative => format!(
                    "timing error: expected {what} in relative time range +{:.6}~+{:.6} sec but happened at {:+.6} sec",
                    secs(at.start - at.offset),
                    secs(at.end - at.offset),
                    secs(actual - at.offset)
                ),
            })
        }
        None if (actual - at.start).abs() <= tolerance => Ok(()),
        None => Err(format!(
            "timing error: expected {what} at {:.6} sec but happened at {:.6} sec; tolerance {:.6} sec",
            secs(at.start),
            secs(actual),
            secs(tolerance)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_count_from_now_or_from_the_previous_inbound_packet() {
        assert_eq!(schedule(EventTime::Relative(100_000), 250_000, None).start, 350_000);
        assert_eq!(schedule(EventTime::Relative(100_000), 250_000, Some(200_000)).start, 300_000);
        assert_eq!(schedule(EventTime::Absolute(1_000_000), 250_000, None).start, 1_000_000);
        let r = schedule(EventTime::RelativeRange(0, 40_000), 10_000, None);
        assert_eq!((r.start, r.end, r.range), (10_000, 50_000, Some(RangeKind::Relative)));
    }

    #[test]
    fn tolerance_is_the_larger_of_the_floor_and_the_share_of_the_gap() {
        let tol = Tolerance::default();
        let at = schedule(EventTime::Absolute(1_000_000), 0, None);
        assert!(verify(&at, 1_004_000, None, tol, "outbound packet").is_ok());
        let e = verify(&at, 1_004_001, None, tol, "outbound packet").unwrap_err();
        assert_eq!(e, "timing error: expected outbound packet at 1.000000 sec but happened at 1.004001 sec; tolerance 0.004000 sec");
        // 12.5 % of a 1 s gap is 125 ms.
        assert!(verify(&at, 1_120_000, Some(0), tol, "outbound packet").is_ok());
        assert!(verify(&schedule(EventTime::Any, 5, None), 99_000_000, None, tol, "x").is_ok());
    }

    #[test]
    fn ranges_accept_anything_inside_and_report_relative_bounds() {
        let tol = Tolerance { usecs: 1000, percent: 0.0 };
        let r = schedule(EventTime::RelativeRange(0, 40_000), 10_000, None);
        assert!(verify(&r, 49_000, None, tol, "outbound packet").is_ok());
        let e = verify(&r, 60_000, None, tol, "outbound packet").unwrap_err();
        assert_eq!(e, "timing error: expected outbound packet in relative time range +0.000000~+0.040000 sec but happened at +0.050000 sec");
    }
}
