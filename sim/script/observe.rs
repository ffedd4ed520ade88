//! The observation log on disk: one [`Observation`] per line (`observations.jsonl`), the format
//! the simulator writes too, so that a real-kernel run and a simulated one compare line by line.

use crate::errno::Errno;
use crate::scenario::types::Observation;
use crate::socket::view::PollMask;
use std::fmt::Write as _;

/// Why an observation log did not parse.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {msg}")]
pub struct LogError {
    pub source_name: String,
    pub line: usize,
    pub msg: String,
}

/// The log as text: one JSON object per line.
pub fn to_jsonl(obs: &[Observation]) -> String {
    let mut out = String::new();
    for o in obs {
        let line = serde_json::to_string(o).expect("an Observation always serialises");
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Parses a log; `source_name` (a file name) only labels errors.
pub fn from_jsonl(source_name: &str, text: &str) -> Result<Vec<Observation>, LogError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| LogError {
                source_name: source_name.to_string(),
                line: i + 1,
                msg: e.to_string(),
            })
        })
        .collect()
}

/// Poll/epoll revents as the log writes them: flag names in table order.
pub fn event_names(revents: u32) -> Vec<String> {
    PollMask(revents).names().into_iter().map(str::to_string).collect()
}

/// A failed call's errno: by name when the model knows it, else `None` (the number then goes in
/// the observation's `value` as `{"errno": n}`).
pub fn errno_of(code: i32) -> (Option<Errno>, Option<serde_json::Value>) {
    match Errno::from_code(code) {
        Some(e) => (Some(e), None),
        None => (None, Some(serde_json::json!({ "errno": code }))),
    }
}

/// How far apart a real-kernel time and a simulated one may be and still agree: the kernel's
/// timers fire 1–8 % late (facts Appendix A) and its syscalls take real time.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TimeTolerance {
    pub abs_ns: u64,
    /// Fraction of the larger of the two times.
    pub rel: f64,
}

impl Default for TimeTolerance {
    /// 20 ms plus 10 %.
    fn default() -> Self {
        TimeTolerance { abs_ns: 20_000_000, rel: 0.10 }
    }
}

impl TimeTolerance {
    pub fn agrees(self, a: u64, b: u64) -> bool {
        a.abs_diff(b) as f64 <= self.abs_ns as f64 + self.rel * a.max(b) as f64
    }
}

/// One field on which two observation logs disagree.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObservationDiff {
    pub step: usize,
    pub op: String,
    /// `op`, `sock`, `ret`, `errno`, `events`, `value`, `sigpipe`, `t_ns`, or `missing` when one
    /// log has no entry for the step.
    pub field: &'static str,
    pub kernel: String,
    pub model: String,
}

fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), |v| format!("{v:?}"))
}

/// Compares a real-kernel log with a simulated one, step by step: every field must be equal
/// except time (within `tol`) and values that are objects (TCP_INFO, `until_error` totals),
/// which describe rather than decide and differ with real RTTs and memory accounting.
pub fn compare(kernel: &[Observation], model: &[Observation], tol: TimeTolerance) -> Vec<ObservationDiff> {
    let mut diffs = Vec::new();
    for i in 0..kernel.len().max(model.len()) {
        let (k, m) = match (kernel.get(i), model.get(i)) {
            (Some(k), Some(m)) => (k, m),
            (k, m) => {
                let op = k.or(m).map(|o| o.op.clone()).unwrap_or_default();
                let present =
                    |o: Option<&Observation>| if o.is_some() { "present" } else { "absent" }.to_string();
                diffs.push(ObservationDiff {
                    step: i,
                    op,
                    field: "missing",
                    kernel: present(k),
                    model: present(m),
                });
                continue;
            }
        };
        let mut diff = |field, kernel: String, model: String| {
            if kernel != model {
                diffs.push(ObservationDiff { step: i, op: k.op.clone(), field, kernel, model });
            }
        };
        diff("op", k.op.clone(), m.op.clone());
        diff("sock", show(&k.sock), show(&m.sock));
        diff("ret", show(&k.ret), show(&m.ret));
        diff("errno", show(&k.errno), show(&m.errno));
        diff("events", show(&k.events), show(&m.events));
        diff("sigpipe", k.sigpipe.to_string(), m.sigpipe.to_string());
        let decides = |v: &Option<serde_json::Value>| v.clone().filter(|v| !v.is_object());
        diff("value", show(&decides(&k.value)), show(&decides(&m.value)));
        if !tol.agrees(k.t_ns, m.t_ns) {
            diff("t_ns", k.t_ns.to_string(), m.t_ns.to_string());
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_tolerates_time_and_details_but_nothing_else() {
        let k = vec![
            Observation {
                step: 0,
                op: "send".into(),
                t_ns: 1_050_000_000,
                ret: Some(-1),
                errno: Some(Errno::EAGAIN),
                value: Some(serde_json::json!({"bytes": 7000})),
                ..Default::default()
            },
            Observation {
                step: 1,
                op: "poll".into(),
                t_ns: 1_100_000_000,
                events: Some(vec!["POLLOUT".into()]),
                ..Default::default()
            },
        ];
        let mut m = k.clone();
        m[0].t_ns = 1_000_000_000;
        m[0].value = Some(serde_json::json!({"bytes": 6000}));
        assert!(compare(&k, &m, TimeTolerance::default()).is_empty());

        m[1].events = Some(vec![]);
        m[1].t_ns = 3_000_000_000;
        let d = compare(&k, &m[..], TimeTolerance::default());
        let fields: Vec<_> = d.iter().map(|d| (d.step, d.field)).collect();
        assert_eq!(fields, [(1, "events"), (1, "t_ns")]);
        assert_eq!(compare(&k, &m[..1], TimeTolerance::default())[0].field, "missing");
    }

    #[test]
    fn log_round_trips_and_errors_name_the_line() {
        let obs = vec![
            Observation {
                step: 0,
                op: "socket".into(),
                sock: Some("c".into()),
                t_ns: 5,
                ret: Some(0),
                ..Default::default()
            },
            Observation {
                step: 1,
                op: "send".into(),
                ret: Some(-1),
                errno: Some(Errno::EPIPE),
                sigpipe: true,
                ..Default::default()
            },
        ];
        let text = to_jsonl(&obs);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\"errno\":\"EPIPE\""));
        assert_eq!(from_jsonl("x", &text).unwrap(), obs);
        let err = from_jsonl("obs.jsonl", &format!("{text}{{\"step\": \"nope\"}}\n")).unwrap_err();
        assert_eq!((err.source_name.as_str(), err.line), ("obs.jsonl", 3));
    }

    #[test]
    fn unknown_errno_keeps_its_number() {
        assert_eq!(errno_of(104), (Some(Errno::ECONNRESET), None));
        assert_eq!(errno_of(1).1, Some(serde_json::json!({"errno": 1})));
        assert_eq!(event_names(0x2015), ["POLLIN", "POLLOUT", "POLLRDHUP", "POLLHUP"]);
    }
}
