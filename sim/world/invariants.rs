//! Invariants every run is held to (`run` and `sweep`), beyond the state graph and the
//! readiness rules that are checked as the run goes:
//! - `prefix-delivery`: what an application receives is a prefix of what its peer sent (in
//!   order, no duplicate, no byte altered; derived payload makes the check a function call);
//! - `undelivered-means-error`: a receiver that read EOF without an error got everything its
//!   peer's application handed over, and a sender whose FIN was acknowledged (FIN_WAIT2,
//!   TIME_WAIT) without an error has had everything read by a healthy receiver;
//! - `exactly-once-in-order`: a resume-protocol sink delivered every message produced, once
//!   each and in order.

use super::apps::{AppSock, Apps, Role};
use super::protocols::ProtocolReport;
use crate::engine::Sim;
use crate::host::Host;
use crate::scenario::MsgProtocol;
use crate::tcp::state::TcpState;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use crate::addr::SockAddr;

/// A broken invariant: which, when, on which socket, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    pub invariant: String,
    pub t_ns: u64,
    pub socket: String,
    pub detail: String,
}

/// The invariants that apply to a run's applications.
pub(super) fn check(sim: &Sim<Host>, apps: &Apps, protocols: &[ProtocolReport]) -> Vec<Breach> {
    let mut out = Vec::new();
    for s in &apps.socks {
        if let Some((t, off)) = s.rare().prefix_breach {
            out.push(breach("prefix-delivery", t, sock_name(sim, s), format!("byte {off} of the stream is not what the peer sent")));
        }
    }
    undelivered(sim, apps, &mut out);
    for p in protocols {
        if let ProtocolReport::Sink { app, protocol: MsgProtocol::Resume, disorder, lost, .. } = p {
            let name = format!("app {app} (message sink)");
            if let Some(d) = disorder.first() {
                let detail = format!("message {} arrived where {} was due ({} such)", d.id, d.expected, disorder.len());
                out.push(breach("exactly-once-in-order", SimTime(d.t_ns), name.clone(), detail));
            }
            if let Some(l) = lost.first() {
                let detail = format!("{} message(s) never delivered, the first ({}) produced at {} ns", lost.len(), l.id, l.produced_ns);
                out.push(breach("exactly-once-in-order", sim.now(), name, detail));
            }
        }
    }
    out
}

fn breach(invariant: &str, t: SimTime, socket: String, detail: String) -> Breach {
    Breach { invariant: invariant.into(), t_ns: t.as_nanos(), socket, detail }
}

fn sock_name(sim: &Sim<Host>, s: &AppSock) -> String {
    format!("{} fd {} (app {})", sim.node(s.host).name(), s.fd, s.app)
}

/// The (local, remote) addresses of an application socket's connection, open or closed.
fn addrs(sim: &Sim<Host>, s: &AppSock) -> Option<(SockAddr, SockAddr)> {
    if s.closed {
        return s.rare().closed_addrs;
    }
    sim.node(s.host).conn_addrs(s.fd)
}

/// The kernel state of a sender's connection, followed after the application closed it
/// (it may live on as an orphan; its 4-tuple may belong to another connection by now).
fn kernel_state(sim: &Sim<Host>, s: &AppSock) -> Option<TcpState> {
    match s.rare().closed_conn {
        Some(c) if s.closed => sim.node(s.host).conn_state(c),
        _ => sim.node(s.host).state(s.fd),
    }
}

fn undelivered(sim: &Sim<Host>, apps: &Apps, out: &mut Vec<Breach>) {
    let senders: Vec<&AppSock> = apps.socks.iter().filter(|s| s.role == Role::Client && s.sent > 0).collect();
    if senders.is_empty() {
        // Nothing to pair (idle connections): no map of every accepted socket at the end.
        return;
    }
    // Accepted ends by their (local, remote) addresses, the first of a reused 4-tuple kept: one
    // lookup per sender, not a scan of every socket.
    let mut accepted: std::collections::BTreeMap<(SockAddr, SockAddr), &AppSock> = std::collections::BTreeMap::new();
    for s in apps.socks.iter().filter(|s| s.role == Role::Accepted) {
        if let Some(a) = addrs(sim, s) {
            accepted.entry(a).or_insert(s);
        }
    }
    for tx in senders {
        let Some((local, remote)) = addrs(sim, tx) else { continue };
        let Some(rx) = accepted.get(&(remote, local)) else { continue };
        if rx.received >= tx.sent {
            continue;
        }
        let missing = format!("{} of {} bytes sent by {} never read", tx.sent - rx.received, tx.sent, sock_name(sim, tx));
        if rx.eof && rx.rare().errors.is_empty() {
            out.push(breach("undelivered-means-error", rx.state_since, sock_name(sim, rx), format!("EOF read, but {missing}")));
            continue;
        }
        let fin_acked = matches!(kernel_state(sim, tx), Some(TcpState::FinWait2 | TcpState::TimeWait));
        if fin_acked && tx.rare().errors.is_empty() && rx.rare().errors.is_empty() && !rx.closed {
            out.push(breach("undelivered-means-error", sim.now(), sock_name(sim, tx), format!("FIN acknowledged without an error, but {missing}")));
        }
    }
}

/// `counters-agree-with-trace`: every counter the report gives is the count of the trace's
/// records of that thing: per link direction, segments sent (`seg_sent`), delivered
/// (`seg_recv`), dropped (`seg_drop`) and duplicated (`seg_dup`); per host, segments sent and
/// RSTs sent (`TcpOutRsts`). A counter bumped twice for one event, or an event not counted,
/// shows here. Per host also `TCPTimeouts` against the retransmission timer's expiries
/// (`retransmit` and a listener's `SYN-ACK` timer records): at most one each, because
/// `tcp_retransmit_timer` counts an expiry once and not at all when nothing is in flight or the
/// window is zero, and `tcp_syn_ack_timeout` once per request's expiry.
pub fn counters_agree(report: &super::RunReport, trace: &str) -> Vec<Breach> {
    use std::collections::BTreeMap;
    let mut seen: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for line in trace.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let ev = v["ev"].as_str().unwrap_or_default();
        if !ev.starts_with("seg_") && ev != "timer" {
            continue;
        }
        if let (Some(link), Some(dir)) = (v["link"].as_str(), v["dir"].as_str()) {
            // A segment the link carried to a host that was frozen or down was delivered by
            // the link and dropped by the host.
            let at_host = matches!(v["reason"].as_str(), Some("host_frozen" | "host_down"));
            let kind = if ev == "seg_drop" && at_host { "seg_recv" } else { ev };
            *seen.entry((kind.to_string(), link.to_string(), dir.to_string())).or_default() += 1;
        }
        if let (Some(host), "timer", Some("retransmit" | "SYN-ACK")) = (v["host"].as_str(), ev, v["timer"].as_str()) {
            *seen.entry(("rto_expiry".into(), host.to_string(), String::new())).or_default() += 1;
        }
        if let (Some(host), "seg_sent") = (v["host"].as_str(), ev) {
            *seen.entry(("host_sent".into(), host.to_string(), String::new())).or_default() += 1;
            if v["flags"].as_str().is_some_and(|f| f.contains('R')) {
                *seen.entry(("host_rst".into(), host.to_string(), String::new())).or_default() += 1;
            }
        }
    }
    let count = |ev: &str, a: &str, b: &str| seen.get(&(ev.to_string(), a.to_string(), b.to_string())).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut check = |what: String, counter: u64, traced: u64| {
        if counter != traced {
            out.push(breach(
                "counters-agree-with-trace",
                SimTime(report.end_ns),
                what.clone(),
                format!("the report counts {counter}, the trace has {traced} records"),
            ));
        }
    };
    for l in &report.links {
        let (n, d) = (l.name.as_str(), l.direction);
        check(format!("link {n} {d} sent"), l.sent, count("seg_sent", n, d));
        check(format!("link {n} {d} delivered"), l.delivered, count("seg_recv", n, d));
        check(format!("link {n} {d} dropped"), l.dropped, count("seg_drop", n, d));
        check(format!("link {n} {d} duplicated"), l.duplicated, count("seg_dup", n, d));
    }
    for h in &report.hosts {
        check(format!("host {} segments sent", h.name), h.segments_sent, count("host_sent", &h.name, ""));
        let rsts = h.counters.get("TcpOutRsts").copied().unwrap_or(0);
        check(format!("host {} TcpOutRsts", h.name), rsts, count("host_rst", &h.name, ""));
    }
    for h in &report.hosts {
        let timeouts = h.counters.get("TCPTimeouts").copied().unwrap_or(0);
        let expiries = count("rto_expiry", &h.name, "");
        if timeouts > expiries {
            out.push(breach(
                "counters-agree-with-trace",
                SimTime(report.end_ns),
                format!("host {} TCPTimeouts", h.name),
                format!("the report counts {timeouts}, more than the trace's {expiries} retransmission-timer expiries"),
            ));
        }
    }
    out
}
