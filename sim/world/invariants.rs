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
use crate::host::{Host, SockRef};
use crate::scenario::MsgProtocol;
use crate::tcp::state::TcpState;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::net::SocketAddrV4;

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
        if let Some((t, off)) = s.prefix_breach {
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
fn addrs(sim: &Sim<Host>, s: &AppSock) -> Option<(SocketAddrV4, SocketAddrV4)> {
    if s.closed {
        return s.closed_conn;
    }
    let host = sim.node(s.host);
    match host.table.get(s.fd)? {
        SockRef::Conn(id) => host.table.conn(id).map(|c| (c.conn.local(), c.conn.remote())),
        _ => None,
    }
}

/// The kernel state of a sender's connection, found by its addresses (it may be an orphan).
fn kernel_state(sim: &Sim<Host>, s: &AppSock, local: SocketAddrV4, remote: SocketAddrV4) -> Option<TcpState> {
    let host = sim.node(s.host);
    host.ehash.get(&(local, remote)).and_then(|id| host.table.conn(*id)).map(|c| c.conn.state())
}

fn undelivered(sim: &Sim<Host>, apps: &Apps, out: &mut Vec<Breach>) {
    let ends: Vec<(&AppSock, Option<(SocketAddrV4, SocketAddrV4)>)> = apps.socks.iter().map(|s| (s, addrs(sim, s))).collect();
    for (tx, tx_addrs) in ends.iter().filter(|(s, _)| s.role == Role::Client && s.sent > 0) {
        let Some((local, remote)) = *tx_addrs else { continue };
        let peer = ends.iter().find(|(s, a)| s.role == Role::Accepted && *a == Some((remote, local)));
        let Some((rx, _)) = peer else { continue };
        if rx.received >= tx.sent {
            continue;
        }
        let missing = format!("{} of {} bytes sent by {} never read", tx.sent - rx.received, tx.sent, sock_name(sim, tx));
        if rx.eof && rx.errors.is_empty() {
            out.push(breach("undelivered-means-error", rx.state_since, sock_name(sim, rx), format!("EOF read, but {missing}")));
            continue;
        }
        let fin_acked = matches!(kernel_state(sim, tx, local, remote), Some(TcpState::FinWait2 | TcpState::TimeWait));
        if fin_acked && tx.errors.is_empty() && rx.errors.is_empty() && !rx.closed {
            out.push(breach("undelivered-means-error", sim.now(), sock_name(sim, tx), format!("FIN acknowledged without an error, but {missing}")));
        }
    }
}
