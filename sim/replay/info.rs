//! The recorded run's `getsockopt(TCP_INFO)` samples held against the model's at the same
//! calls: the capture harness logs what the real kernel's `tcp_get_info` returned
//! (`sim/capture/runner.rs`), the replay makes each call at its recorded time on the system
//! under test ([`super::driver`]), and the congestion state the issue names is compared:
//! `tcpi_snd_cwnd`, `tcpi_snd_ssthresh`, `tcpi_ca_state`, `tcpi_retrans`, `tcpi_lost` and
//! `tcpi_reordering` exactly, `tcpi_rtt` (a time) within the replay's time tolerance
//! ([`super::compare::tolerance`] of the RTT itself: max(4 ms, 12.5 %)).

use super::driver::{Action, Driver};
use super::Side;
use crate::scenario::{Observation, Scenario, Step};
use crate::tcp::uapi::SockOpt;
use crate::time::{Dur, SimTime};
use serde::Serialize;
use std::collections::BTreeMap;

/// The `tcp_info` fields compared exactly, by their name in the observation log.
pub const EXACT: [&str; 6] = ["snd_cwnd", "snd_ssthresh", "ca_state", "retrans", "lost", "reordering"];

/// The smoothed RTT, compared within the time tolerance.
pub const RTT: &str = "rtt_us";

/// One `TCP_INFO` call of the system under test, the kernel's answer and the model's.
#[derive(Clone, Debug, Serialize)]
pub struct InfoSample {
    pub side: Side,
    /// The script step (index in the scenario's script).
    pub step: usize,
    /// When the call was made, on the replay's timeline.
    pub t_ns: u64,
    pub kernel: BTreeMap<&'static str, serde_json::Value>,
    pub model: BTreeMap<&'static str, serde_json::Value>,
    /// The fields that differ (empty: the sample agrees).
    pub differ: Vec<&'static str>,
}

/// Pairs each recorded `TCP_INFO` of a connected socket with the model's answer to the same
/// call (`samples`: the model's, by the time the replay made the call; a call on the peer's
/// socket, not made, has none) and compares them.
pub fn compare(side: Side, sc: &Scenario, obs: &[Observation], samples: &[(SimTime, serde_json::Value)]) -> Vec<InfoSample> {
    let by_time: BTreeMap<SimTime, &serde_json::Value> = samples.iter().map(|(t, v)| (*t, v)).collect();
    let reached = obs.iter().filter(|o| sc.script.get(o.step).is_some());
    let mut out = Vec::new();
    for (o, (at, action)) in reached.zip(Driver::scripted(sc, obs)) {
        let Action::Step(Step::Getsockopt { opt: SockOpt::TCP_INFO, .. }) = action else { continue };
        let (Some(kernel), Some(model)) = (o.value.as_ref().filter(|v| v.get("snd_cwnd").is_some()), by_time.get(&at)) else {
            continue;
        };
        out.push(sample(side, o.step, at, kernel, model));
    }
    out
}

/// The compared fields of one call, and which differ.
fn sample(side: Side, step: usize, at: SimTime, kernel: &serde_json::Value, model: &serde_json::Value) -> InfoSample {
    let pick = |v: &serde_json::Value| -> BTreeMap<&'static str, serde_json::Value> {
        EXACT.iter().chain([&RTT]).map(|&k| (k, v.get(k).cloned().unwrap_or(serde_json::Value::Null))).collect()
    };
    let (kernel, model) = (pick(kernel), pick(model));
    let mut differ: Vec<&'static str> = EXACT.iter().copied().filter(|k| kernel[k] != model[k]).collect();
    if !rtt_agrees(&kernel[RTT], &model[RTT]) {
        differ.push(RTT);
    }
    InfoSample { side, step, t_ns: at.as_nanos(), kernel, model, differ }
}

/// Whether two `tcpi_rtt` values (µs) are within the replay's time tolerance of the kernel's.
fn rtt_agrees(kernel: &serde_json::Value, model: &serde_json::Value) -> bool {
    match (kernel.as_u64(), model.as_u64()) {
        (Some(k), Some(m)) => {
            let tol = super::compare::tolerance(Dur::from_micros(k));
            k.abs_diff(m).saturating_mul(1000) <= tol.as_nanos()
        }
        _ => kernel == model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_fields_must_be_equal_and_the_rtt_within_the_time_tolerance() {
        let kernel = json!({"snd_cwnd": 10, "snd_ssthresh": 2147483647u32, "ca_state": 0, "retrans": 0, "lost": 0, "reordering": 3, "rtt_us": 50});
        let same = sample(Side::Client, 3, SimTime(7), &kernel, &json!({"snd_cwnd": 10, "snd_ssthresh": 2147483647u32, "ca_state": 0, "retrans": 0, "lost": 0, "reordering": 3, "rtt_us": 3900}));
        assert!(same.differ.is_empty(), "{:?}", same.differ);
        let other = sample(Side::Client, 3, SimTime(7), &kernel, &json!({"snd_cwnd": 7, "snd_ssthresh": 7, "ca_state": 3, "retrans": 1, "lost": 1, "reordering": 3, "rtt_us": 4100}));
        assert_eq!(other.differ, ["snd_cwnd", "snd_ssthresh", "ca_state", "retrans", "lost", "rtt_us"]);
    }
}
