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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trips_and_errors_name_the_line() {
        let obs = vec![
            Observation { step: 0, op: "socket".into(), sock: Some("c".into()), t_ns: 5, ret: Some(0), ..Default::default() },
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
