//! The report of a run: what `tcpsim run` prints, for people (text) and tools (JSON).
//!
//! Field names follow the CLI contract (`docs/cli.md`): the scenario, the seed, the
//! simulated end time, per socket its final state and the errors its application saw, per
//! host the kernel counters by `nstat` name. A scripted scenario's answer is in what its
//! calls returned: the report lists every step's result, and per named socket the errors
//! the script saw, when it first saw one, and when the kernel raised it.

use super::apps::{Apps, Role};
use super::World;
use crate::engine::Dir;
use crate::errno::Errno;
use crate::host::Fd;
use crate::scenario::{Observation, Scenario, Step};
use crate::time::SimTime;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct SocketReport {
    /// Shared by the host's sockets: a million rows hold a few names, not a million
    /// strings (issue 14: the report's memory per connection).
    #[serde(serialize_with = "serialize_shared_str")]
    pub host: Arc<str>,
    pub app: usize,
    pub role: &'static str,
    pub fd: u32,
    /// The state when the application last saw the socket: now, or when it closed it.
    pub state: &'static str,
    pub errors: Vec<Errno>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub closed_by_app: bool,
    /// The connection's state in the kernel now, once the application closed the socket: an
    /// orphan lives on (FIN_WAIT2, TIME_WAIT…) until it is done, then CLOSE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_state: Option<&'static str>,
    /// When a call on this socket first returned an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error_ns: Option<u64>,
    /// When the application first saw the socket in `state`.
    pub state_since_ns: u64,
}

/// A shared name, written as the string it is.
fn serialize_shared_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// A socket the script named.
#[derive(Clone, Debug, Serialize)]
pub struct ScriptSocketReport {
    pub name: String,
    pub host: String,
    /// The socket's state now; absent once the script closed it (or when it cannot be told:
    /// a host where applications also open sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    pub closed_by_script: bool,
    /// Errors the script's calls on this socket returned, in order (EAGAIN and EINPROGRESS
    /// are not errors of the connection and are left out).
    pub errors: Vec<Errno>,
    /// When a call first returned one of `errors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error_ns: Option<u64>,
    /// The first error the kernel set on the socket (`sk_err`: an RST, a timeout), and
    /// when: the script may learn of it only later, or never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_raised: Option<Errno>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_raised_ns: Option<u64>,
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
    /// The load generators' summaries and the finite-capacity servers' counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load: Vec<super::LoadReport>,
    /// The sockets the script named, in the order it created them.
    pub script_sockets: Vec<ScriptSocketReport>,
    /// What every step of the script returned.
    pub script: Vec<Observation>,
    pub hosts: Vec<HostReport>,
    pub links: Vec<LinkReport>,
    /// State-graph edges taken, of all the graph has.
    pub edges_covered: usize,
    pub edges_total: usize,
    /// Which edges were taken (from, to, cause), in the graph's order.
    pub edges: Vec<crate::tcp::graph::Edge>,
    /// Transitions the graph forbids: each is a bug in the model.
    pub illegal_transitions: Vec<String>,
    /// Poll/epoll answers that broke a documented rule.
    pub rule_violations: Vec<String>,
    /// What the protocol applications (heartbeat, messages) did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<super::protocols::ProtocolReport>,
    /// Broken invariants of the applications' data (`sim/world/invariants.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<super::invariants::Breach>,
    /// The limit that stopped the run before its end (`--max-events`, `--timeout`…): the
    /// report is of what was simulated until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The first connection's story, read from the trace (`timeline.rs`); filled by the
    /// caller that holds the trace, for the default run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<String>,
}

impl RunReport {
    /// Whether every check held (exit status 0 rather than 1).
    pub fn ok(&self) -> bool {
        self.illegal_transitions.is_empty() && self.rule_violations.is_empty() && self.invariants.is_empty() && self.stopped.is_none()
    }

    /// Every failed check, as invariants: the state graph, the readiness rules, the data.
    pub fn breaches(&self) -> Vec<super::invariants::Breach> {
        use super::invariants::Breach;
        let graph = self.illegal_transitions.iter().map(|t| Breach {
            invariant: "state-graph".into(),
            t_ns: self.end_ns,
            socket: t.split(": ").next().unwrap_or_default().to_string(),
            detail: t.clone(),
        });
        let rules = self.rule_violations.iter().map(|v| Breach {
            invariant: "readiness-rules".into(),
            t_ns: rule_time_ns(v),
            socket: "-".into(),
            detail: v.clone(),
        });
        graph.chain(rules).chain(self.invariants.iter().cloned()).collect()
    }

    /// A summary for people.
    pub fn to_text(&self) -> String {
        self.to_text_with(self.sockets.len() <= DETAIL_LIMIT)
    }

    /// The summary, with every application socket on its own line (`detail`) or counted.
    pub fn to_text_with(&self, detail: bool) -> String {
        let mut s = String::new();
        let secs = self.end_ns as f64 / 1e9;
        let _ = writeln!(s, "scenario {} (seed {}), simulated {:.3} s", self.scenario, self.seed, secs);
        if let Some(why) = &self.stopped {
            let _ = writeln!(s, "STOPPED: {why}, before the scenario's end");
        }
        if !self.timeline.is_empty() {
            let _ = writeln!(s, "\ntimeline of the first connection (from the trace):");
            for line in &self.timeline {
                let _ = writeln!(s, "  {line}");
            }
        }
        s += &self.sockets_text_with(detail);
        s += &self.load_text();
        if !self.script.is_empty() {
            let _ = writeln!(s, "\nscript (time the call returned, step, call, socket: result):");
            s += &self.script_text(|_| true);
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
            let c = counters_text(h);
            let c = if c.is_empty() { "-".to_string() } else { c };
            let _ = writeln!(s, "  {:<8} ({}) {}", h.name, h.kernel, c);
        }
        let _ = writeln!(s, "\nstate graph: {} of {} edges taken", self.edges_covered, self.edges_total);
        for v in self.illegal_transitions.iter().chain(&self.rule_violations) {
            let _ = writeln!(s, "CHECK FAILED: {v}");
        }
        for b in &self.invariants {
            let _ = writeln!(s, "INVARIANT VIOLATED: {} at {} on {}: {}", b.invariant, secs_text(b.t_ns), b.socket, b.detail);
        }
        s
    }

    /// The part of the summary that answers a scenario's question: the sockets, the script's
    /// calls that report something (not its setup), and the counters that moved.
    pub fn answer_text(&self) -> String {
        let mut s = self.sockets_text();
        let telling = |o: &Observation| {
            o.errno.is_some()
                || matches!(o.op.as_str(), "connect" | "send" | "recv" | "poll" | "epoll_wait" | "getsockopt" | "ioctl")
        };
        if self.script.iter().any(telling) {
            let _ = writeln!(s, "\nwhat the script's calls returned:");
            s += &self.script_text(telling);
        }
        let moved: Vec<String> = self
            .hosts
            .iter()
            .map(|h| (h, counters_text(h)))
            .filter(|(_, c)| !c.is_empty())
            .map(|(h, c)| format!("  {:<8} {c}", h.name))
            .collect();
        if !moved.is_empty() {
            let _ = writeln!(s, "\nkernel counters:\n{}", moved.join("\n"));
        }
        s
    }

    fn load_text(&self) -> String {
        if self.load.is_empty() {
            return String::new();
        }
        let mut s = "\nload (ab and finite-capacity servers):\n".to_string();
        for l in &self.load {
            s += &l.to_text();
        }
        s
    }

    fn sockets_text(&self) -> String {
        self.sockets_text_with(self.sockets.len() <= DETAIL_LIMIT)
    }

    /// The application sockets one line each (`detail`), or counted by host, role, state
    /// and errors: the report stays readable at a million connections.
    fn sockets_text_with(&self, detail: bool) -> String {
        let mut s = self.protocols_text();
        if self.sockets.is_empty() {
            // nothing to list
        } else if detail {
            let _ = writeln!(s, "\nsockets (opened by the scenario's applications):");
            for k in &self.sockets {
                let _ = writeln!(s, "{}", socket_line(k));
            }
        } else {
            let _ = writeln!(
                s,
                "\nsockets (opened by the scenario's applications): {}, counted by host, role, state and errors (--detail lists each):",
                self.sockets.len()
            );
            let mut groups: BTreeMap<(&str, &str, String, String), u64> = BTreeMap::new();
            for k in &self.sockets {
                *groups.entry((&*k.host, k.role, state_text(k), errors_text(&k.errors))).or_default() += 1;
            }
            for ((host, role, state, errs), n) in groups {
                let _ = writeln!(s, "  {host:<8} {role:<8} {state:<36} {n:>9}  {errs}");
            }
        }
        if !self.script_sockets.is_empty() {
            let _ = writeln!(s, "\nscript sockets:");
            for k in &self.script_sockets {
                let _ = writeln!(s, "  {}", script_socket_text(k));
            }
        }
        s
    }

    /// One line per protocol application: what it noticed, or what it delivered and lost.
    fn protocols_text(&self) -> String {
        use super::protocols::ProtocolReport as P;
        let mut s = String::new();
        if !self.protocols.is_empty() {
            let _ = writeln!(s, "\nprotocol applications:");
        }
        for p in &self.protocols {
            let line = match p {
                P::Heartbeat { app, declared_dead_ns, error_ns, error, heartbeats_sent, replies } => {
                    let dead = declared_dead_ns.map_or("peer never declared dead".into(), |t| format!("peer declared dead at {}", secs_text(t)));
                    let err = error.zip(*error_ns).map_or(String::new(), |(e, t)| format!(", {} at {}", e.name(), secs_text(t)));
                    format!("app {app} heartbeat: {heartbeats_sent} sent, {replies} answered; {dead}{err}")
                }
                P::Messenger { app, protocol, produced, confirmed, connections, errors } => {
                    let errs = errors.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ");
                    format!("app {app} messenger ({}): {produced} produced, {confirmed} confirmed, {connections} connection(s); errors: {}", protocol.name(), if errs.is_empty() { "none" } else { &errs })
                }
                P::Sink { app, protocol, delivered, disorder, lost } => {
                    let lost_text = match (lost.first(), lost.last()) {
                        (Some(a), Some(b)) => format!("{} lost (produced {} .. {})", lost.len(), secs_text(a.produced_ns), secs_text(b.produced_ns)),
                        _ => "none lost".into(),
                    };
                    format!("app {app} sink ({}): {delivered} delivered, {} out of sequence, {lost_text}", protocol.name(), disorder.len())
                }
            };
            let _ = writeln!(s, "  {line}");
        }
        s
    }

    fn script_text(&self, keep: impl Fn(&Observation) -> bool) -> String {
        let mut s = String::new();
        for o in self.script.iter().filter(|o| keep(o)) {
            let sock = o.sock.as_deref().unwrap_or("-");
            let _ = writeln!(s, "  {:>14}  {:>2} {:<12} {:<8} {}", secs_text(o.t_ns), o.step, o.op, sock, result_text(o));
        }
        s
    }
}

/// Above this many application sockets the text report counts them instead of listing them.
pub const DETAIL_LIMIT: usize = 48;

fn errors_text(errors: &[Errno]) -> String {
    if errors.is_empty() {
        "no errors".to_string()
    } else {
        errors.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
    }
}

/// The state the application last saw, and the kernel's now if it closed the socket.
fn state_text(k: &SocketReport) -> String {
    match (k.closed_by_app, k.connection_state) {
        (true, Some(now)) if now != k.state => format!("{} (closed; now {now})", k.state),
        (true, _) => format!("{} (closed)", k.state),
        (false, _) => k.state.to_string(),
    }
}

fn socket_line(k: &SocketReport) -> String {
    let since = format!("since {}", secs_text(k.state_since_ns));
    let errs = errors_text(&k.errors);
    let errs = match k.first_error_ns {
        Some(t) => format!("{errs} (first at {})", secs_text(t)),
        None => errs,
    };
    format!(
        "  {:<8} fd {:<3} {:<8} {:<36} {:<18} sent {:>9} B  received {:>9} B  {}",
        k.host,
        k.fd,
        k.role,
        state_text(k),
        since,
        k.bytes_sent,
        k.bytes_received,
        errs
    )
}

/// The time in a rule failure's text (`seed N, t=S s: ...`), in nanoseconds.
fn rule_time_ns(v: &str) -> u64 {
    let secs = v.split("t=").nth(1).and_then(|r| r.split(' ').next()).and_then(|x| x.parse::<f64>().ok());
    secs.map_or(0, |s| (s * 1e9).round() as u64)
}

/// A host's counters that are not zero, `nstat` style.
fn counters_text(h: &HostReport) -> String {
    h.counters.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// Seconds to the microsecond, trailing zeros dropped down to milliseconds: "25.015 s",
/// "0.120118 s" (the JSON report has the nanoseconds).
fn secs_text(ns: u64) -> String {
    let us = (ns + 500) / 1_000;
    let mut digits = format!("{:06}", us % 1_000_000);
    while digits.len() > 3 && digits.ends_with('0') {
        digits.pop();
    }
    format!("{}.{digits} s", us / 1_000_000)
}

fn script_socket_text(k: &ScriptSocketReport) -> String {
    let state = match (k.state, k.closed_by_script) {
        (_, true) => "(closed)",
        (Some(st), false) => st,
        (None, false) => "?",
    };
    let raised = k.error_raised.zip(k.error_raised_ns);
    let errs = match (k.errors.is_empty(), raised) {
        (true, None) => "no errors".to_string(),
        (true, Some((e, t))) => format!("no errors seen ({} raised by the kernel at {}, never read)", e.name(), secs_text(t)),
        (false, _) => {
            let names = k.errors.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ");
            let mut when = Vec::new();
            if let Some((_, t)) = raised {
                when.push(format!("raised by the kernel at {}", secs_text(t)));
            }
            if let Some(t) = k.first_error_ns {
                when.push(format!("first seen at {}", secs_text(t)));
            }
            format!("{names} ({})", when.join(", "))
        }
    };
    format!("{:<8} {:<10} {:<12} {errs}", k.host, k.name, state)
}

/// One step's result as a C programmer reads it: `-1 ECONNRESET`, `1 [POLLIN|POLLOUT]`.
fn result_text(o: &Observation) -> String {
    if o.value.as_ref().is_some_and(|v| v.get("blocked").is_some()) {
        return "still blocked at the end of the run".to_string();
    }
    let mut parts = Vec::new();
    match (o.ret, o.errno) {
        (Some(r), Some(e)) => parts.push(format!("{r} {}", e.name())),
        (Some(r), None) => parts.push(r.to_string()),
        (None, _) => {}
    }
    if let Some(ev) = &o.events {
        if !ev.is_empty() || o.op == "poll" || o.op == "epoll_wait" {
            parts.push(format!("[{}]", ev.join("|")));
        }
    }
    if let Some(v) = o.value.as_ref().filter(|v| v.as_array().is_none_or(|a| !a.is_empty())) {
        parts.push(value_text(v));
    }
    if o.sigpipe {
        parts.push("SIGPIPE".to_string());
    }
    parts.join(" ")
}

/// A getsockopt value; TCP_INFO shortened to what says whether the connection is alive.
fn value_text(v: &serde_json::Value) -> String {
    match v.get("state") {
        Some(state) => {
            let field = |k: &str| v.get(k).map_or("?".to_string(), |x| x.to_string());
            format!(
                "state={} retransmits={} backoff={} probes={} unacked={}",
                state.as_str().unwrap_or("?"),
                field("retransmits"),
                field("backoff"),
                field("probes"),
                field("unacked")
            )
        }
        None => v.to_string(),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Listener => "listener",
        Role::Accepted => "accepted",
        Role::Client => "client",
    }
}

/// The kernel's state of connection `c` on host `h`; CLOSE once it is gone (even if its
/// 4-tuple now belongs to another connection).
fn conn_state(world: &World, h: usize, c: crate::host::ConnHandle) -> &'static str {
    world.sim.node(h).conn_state(c).unwrap_or(crate::tcp::state::TcpState::Close).name()
}

/// Errors a script's call can return that say nothing about the connection.
fn is_connection_error(e: Errno) -> bool {
    !matches!(e, Errno::EAGAIN | Errno::EINPROGRESS)
}

/// A named socket's descriptor over its lifetime.
struct Named {
    name: String,
    host: usize,
    fd: Option<Fd>,
    opened: SimTime,
    closed: Option<SimTime>,
}

/// The descriptors the script's sockets got. Script steps hold names, the kernel hands out
/// numbers: the lowest free one from 3 (`alloc_fd`, as POSIX requires), so replaying the
/// script's socket/accept/close calls in order gives each name its number. That holds on a
/// host where only the script opens sockets; elsewhere the number is left unknown.
fn named_sockets(steps: &[Step], obs: &[Observation], world: &World, apps: &Apps) -> Vec<Named> {
    let sim = &world.sim;
    let app_hosts: std::collections::BTreeSet<usize> = apps.socks.iter().map(|a| a.host).collect();
    let mut in_use: BTreeMap<usize, std::collections::BTreeSet<Fd>> = BTreeMap::new();
    let alloc = |in_use: &mut BTreeMap<usize, std::collections::BTreeSet<Fd>>, h: usize| -> Option<Fd> {
        let used = in_use.entry(h).or_default();
        let fd = (3..).find(|f| !used.contains(f))?;
        used.insert(fd);
        (!app_hosts.contains(&h)).then_some(fd)
    };
    let mut named: Vec<Named> = Vec::new();
    for (step, o) in steps.iter().zip(obs) {
        if o.ret != Some(0) && !matches!(step, Step::Close { .. }) {
            continue;
        }
        let t = SimTime(o.t_ns);
        let open = |named: &Vec<Named>, n: &str| named.iter().rposition(|k| k.name == n && k.closed.is_none());
        match step {
            Step::Socket { host, sock, .. } => {
                let Some(h) = sim.host_index(host) else { continue };
                let fd = alloc(&mut in_use, h);
                named.push(Named { name: sock.clone(), host: h, fd, opened: t, closed: None });
            }
            Step::Accept { sock, new } => {
                let Some(h) = open(&named, sock).map(|i| named[i].host) else { continue };
                let fd = alloc(&mut in_use, h);
                named.push(Named { name: new.clone(), host: h, fd, opened: t, closed: None });
            }
            Step::Close { sock } if o.ret == Some(0) => {
                if let Some(i) = open(&named, sock) {
                    named[i].closed = Some(t);
                    if let Some(fd) = named[i].fd {
                        in_use.entry(named[i].host).or_default().remove(&fd);
                    }
                }
            }
            _ => {}
        }
    }
    named
}

fn script_sockets(world: &World, scenario: &Scenario, apps: &Apps, obs: &[Observation]) -> Vec<ScriptSocketReport> {
    let sim = &world.sim;
    let named = named_sockets(&scenario.script, obs, world, apps);
    // A descriptor closed and reused at the same instant: what happened at that instant is the
    // old socket's (a script's steps at one instant run before the next can be opened).
    let reused_at_open: Vec<bool> = named
        .iter()
        .map(|k| named.iter().any(|o| o.host == k.host && o.fd.is_some() && o.fd == k.fd && o.closed == Some(k.opened)))
        .collect();
    named
        .into_iter()
        .zip(reused_at_open)
        .map(|(k, reused)| {
            let in_life = |t: u64| {
                let opened = k.opened.as_nanos();
                (t > opened || (t == opened && !reused)) && k.closed.is_none_or(|c| t <= c.as_nanos())
            };
            let seen: Vec<(u64, Errno)> = obs
                .iter()
                .filter(|o| o.sock.as_deref() == Some(k.name.as_str()) && in_life(o.t_ns))
                .filter_map(|o| o.errno.filter(|e| is_connection_error(*e)).map(|e| (o.t_ns, e)))
                .collect();
            let raised = k.fd.and_then(|fd| apps.watched.get(&(k.host, fd))).and_then(|w| {
                w.raised.iter().map(|(t, e)| (t.as_nanos(), *e)).find(|(t, _)| in_life(*t))
            });
            let state = match (k.closed, k.fd) {
                (None, Some(fd)) => sim.node(k.host).state(fd).map(|s| s.name()),
                _ => None,
            };
            ScriptSocketReport {
                name: k.name,
                host: sim.host_name(k.host).to_string(),
                state,
                closed_by_script: k.closed.is_some(),
                errors: seen.iter().map(|(_, e)| *e).collect(),
                first_error_ns: seen.first().map(|(t, _)| *t),
                error_raised: raised.map(|(_, e)| e),
                error_raised_ns: raised.map(|(t, _)| t),
            }
        })
        .collect()
}

pub(super) fn build(world: &World, scenario: &Scenario, apps: &Apps, observations: &[Observation]) -> RunReport {
    let sim = &world.sim;
    let host_names: Vec<Arc<str>> = (0..sim.host_count()).map(|i| Arc::from(sim.host_name(i))).collect();
    let sockets = apps
        .socks
        .iter()
        .map(|a| {
            let state = if a.closed { a.last_state } else { sim.node(a.host).state(a.fd).unwrap_or(a.last_state) };
            SocketReport {
                host: host_names[a.host].clone(),
                app: a.app,
                role: role_name(a.role),
                fd: a.fd,
                state: state.name(),
                errors: a.rare().errors.clone(),
                bytes_sent: a.sent,
                bytes_received: a.received,
                closed_by_app: a.closed,
                connection_state: a.rare().closed_conn.map(|c| conn_state(world, a.host, c)),
                first_error_ns: a.rare().first_error_at.map(|t| t.as_nanos()),
                state_since_ns: a.state_since.as_nanos(),
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
    let protocols = apps.protocols.reports(world.now());
    RunReport {
        scenario: scenario.name.clone(),
        seed: world.seed,
        end_ns: world.now().as_nanos(),
        sockets,
        load: apps.load.reports(sim),
        script_sockets: script_sockets(world, scenario, apps, observations),
        script: observations.to_vec(),
        hosts,
        links,
        edges_covered: coverage.covered().count(),
        edges: coverage.covered().collect(),
        edges_total: crate::tcp::graph::tcp_graph().edges().count(),
        illegal_transitions: illegal,
        rule_violations: world.rule_failures(),
        invariants: super::invariants::check(&world.sim, apps, &protocols),
        protocols,
        stopped: world.limit_hit().map(|h| h.to_string()),
        timeline: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::secs_text;

    #[test]
    fn times_read_to_the_millisecond_or_the_microsecond() {
        assert_eq!(secs_text(0), "0.000 s");
        assert_eq!(secs_text(25_015_000_000), "25.015 s");
        assert_eq!(secs_text(935_055_000_000), "935.055 s");
        assert_eq!(secs_text(120_118_400), "0.120118 s");
        assert_eq!(secs_text(1_999_999_600), "2.000 s", "rounded to the microsecond");
    }
}
