//! The report of a run: what `tcpsim run` prints, for people (text) and tools (JSON).
//!
//! Field names follow the CLI contract (`shared/spec/cli.md`): the scenario, the seed, the
//! simulated end time, per socket its final state and the errors its application saw, per
//! host the kernel counters by `nstat` name.

use super::apps::{Apps, Role};
use super::World;
use crate::engine::Dir;
use crate::errno::Errno;
use crate::scenario::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct SocketReport {
    pub host: String,
    pub app: usize,
    pub role: &'static str,
    pub fd: u32,
    /// The state when the application last saw the socket: now, or when it closed it.
    pub state: &'static str,
    pub errors: Vec<Errno>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub closed_by_app: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    pub name: String,
    pub kernel: String,
    pub counters: BTreeMap<&'static str, u64>,
    pub segments_sent: u64,
    pub segments_received: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkReport {
    pub name: String,
    pub direction: &'static str,
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub end_ns: u64,
    pub sockets: Vec<SocketReport>,
    pub hosts: Vec<HostReport>,
    pub links: Vec<LinkReport>,
    /// State-graph edges taken, of all the graph has.
    pub edges_covered: usize,
    pub edges_total: usize,
    /// Transitions the graph forbids: each is a bug in the model.
    pub illegal_transitions: Vec<String>,
    /// Poll/epoll answers that broke a documented rule.
    pub rule_violations: Vec<String>,
}

impl RunReport {
    /// Whether every check held (exit status 0 rather than 1).
    pub fn ok(&self) -> bool {
        self.illegal_transitions.is_empty() && self.rule_violations.is_empty()
    }

    /// A summary for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let secs = self.end_ns as f64 / 1e9;
        let _ = writeln!(s, "scenario {} (seed {}), simulated {:.3} s", self.scenario, self.seed, secs);
        let _ = writeln!(s, "\nsockets:");
        for k in &self.sockets {
            let errs = if k.errors.is_empty() {
                "no errors".to_string()
            } else {
                k.errors.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
            };
            let state = if k.closed_by_app { format!("{} (closed)", k.state) } else { k.state.to_string() };
            let _ = writeln!(
                s,
                "  {:<8} fd {:<3} {:<8} {:<20} sent {:>9} B  received {:>9} B  {}",
                k.host, k.fd, k.role, state, k.bytes_sent, k.bytes_received, errs
            );
        }
        let _ = writeln!(s, "\nlinks:");
        for l in &self.links {
            let _ = writeln!(
                s,
                "  {:<10} {:<6} sent {:>7}  delivered {:>7}  dropped {:>6}  duplicated {}",
                l.name, l.direction, l.sent, l.delivered, l.dropped, l.duplicated
            );
        }
        let _ = writeln!(s, "\nkernel counters:");
        for h in &self.hosts {
            let c: Vec<String> = h.counters.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect();
            let c = if c.is_empty() { "-".to_string() } else { c.join(" ") };
            let _ = writeln!(s, "  {:<8} ({}) {}", h.name, h.kernel, c);
        }
        let _ = writeln!(s, "\nstate graph: {} of {} edges taken", self.edges_covered, self.edges_total);
        for v in self.illegal_transitions.iter().chain(&self.rule_violations) {
            let _ = writeln!(s, "CHECK FAILED: {v}");
        }
        s
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Listener => "listener",
        Role::Accepted => "accepted",
        Role::Client => "client",
    }
}

pub(super) fn build(world: &World, scenario: &Scenario, apps: &Apps) -> RunReport {
    let sim = &world.sim;
    let sockets = apps
        .socks
        .iter()
        .map(|a| {
            let state = if a.closed { a.last_state } else { sim.node(a.host).state(a.fd).unwrap_or(a.last_state) };
            SocketReport {
                host: sim.host_name(a.host).to_string(),
                app: a.app,
                role: role_name(a.role),
                fd: a.fd,
                state: state.name(),
                errors: a.errors.clone(),
                bytes_sent: a.sent,
                bytes_received: a.received,
                closed_by_app: a.closed,
            }
        })
        .collect();
    let mut coverage = crate::tcp::graph::Coverage::new();
    let mut illegal = Vec::new();
    let hosts = (0..sim.host_count())
        .map(|i| {
            let n = sim.node(i);
            coverage.merge(n.coverage());
            illegal.extend(n.illegal_transitions().iter().map(|t| format!("{}: {t}", n.name())));
            let stats = sim.host_stats(i);
            HostReport {
                name: n.name().to_string(),
                kernel: n.profile().name.clone(),
                counters: n.counters(),
                segments_sent: stats.segs_sent,
                segments_received: stats.segs_recv,
            }
        })
        .collect();
    let links = scenario
        .links
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            [(Dir::AToB, "a_to_b"), (Dir::BToA, "b_to_a")].map(|(d, name)| {
                let st = sim.link_stats(i, d);
                LinkReport {
                    name: l.name.clone(),
                    direction: name,
                    sent: st.sent,
                    delivered: st.received,
                    dropped: st.dropped,
                    duplicated: st.duplicated,
                }
            })
        })
        .collect();
    RunReport {
        scenario: scenario.name.clone(),
        seed: world.seed,
        end_ns: world.now().as_nanos(),
        sockets,
        hosts,
        links,
        edges_covered: coverage.covered().count(),
        edges_total: crate::tcp::graph::tcp_graph().edges().count(),
        illegal_transitions: illegal,
        rule_violations: world.rule_failures(),
    }
}
