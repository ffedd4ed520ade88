//! Trace replay, the trace checker (`tcpsim replay`): holds a captured trace against the
//! model.
//!
//! The capture is split into connections ([`split`]); one endpoint, the *system under test*,
//! is a real model [`Host`] in a two-host simulation, and the other is a [`Puppet`] that
//! sends its captured segments at their captured times ([`puppet`]). The SUT's application
//! is the scenario's script beside the capture, each call made at its recorded time
//! ([`driver`]); without a log, a listener or connector making the calls inferred from the
//! capture ([`infer`]: writes, a greedy reader, shutdown or close), listed in the report; with
//! a log of `[[app]]`s only (not replayed), a passive listener or connector. Every segment the SUT sent
//! in the capture is then compared, in order, with what the model sent, resynchronising
//! after each difference ([`compare`]), and the result reported per connection with the
//! share of segments compared ([`report`]).
//!
//! Both clocks are put on one timeline, the observation log's: the capture's first SYN is
//! taken to leave when the first `connect` returned (a veth delivers within the call), or,
//! for a blocking `connect`, the handshake's final ACK. Without a log, the first packet is at
//! 1 ms, after the passive SUT's setup at 0. The scenario's links are replayed without
//! delay, shaping or loss: the captured times already hold the real path's.
//!
//! Not replayed: a scenario's `[[app]]`s (only script calls are recorded; a scenario of apps
//! alone gets a passive SUT), and faults on the puppet's host (the capture already shows what
//! that host did).

pub mod compare;
pub mod driver;
pub mod infer;
pub mod info;
pub mod known;
pub mod puppet;
pub mod report;
pub mod settings;
pub mod shown;
pub mod split;
pub mod ticks;

pub use report::{ConnReport, ConnSegments, DivergenceReport, NotCompared, ReplayReport};
pub use split::{split, Connection};

use crate::engine::{LinkParams, Sim};
use crate::host::Host;
use crate::pcap::{read_pcap, Capture, PcapError};
use crate::scenario::types::LinkDirSpec;
use crate::scenario::{Observation, Scenario, Step};
use crate::tcp::profile::KernelProfile;
use crate::tcp::segment::Flags;
use crate::time::{Dur, SimTime};
use compare::{compare_connection, ConnComparison, Sides, Spaces, Timed};
use driver::{Action, Driver};
use puppet::{ConnMap, Emission, Endpoint, Puppet, SutLog};
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Which endpoint of each connection is the system under test.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What a replay holds the capture against.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The sides replayed, each in its own run.
    pub sides: Vec<Side>,
    /// A built-in kernel profile (`linux-6.18`); default: the scenario host's, else 6.18.
    pub kernel: Option<String>,
    /// Stop each connection's comparison at its first divergence in flags, sequence or
    /// length, or a missing or extra segment (`--first`), rather than resynchronising.
    pub first: bool,
    /// The SUT's settings given with `--set`: they override what the trace shows.
    pub settings: Vec<settings::Setting>,
    /// Keeps each connection's segments in the report (for `--plot`).
    pub keep_segments: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { sides: vec![Side::Client, Side::Server], kernel: None, first: false, settings: Vec::new(), keep_segments: false }
    }
}

/// Why a replay could not be made (exit status 2: the input is wrong).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Pcap(#[from] PcapError),
    #[error("{0}")]
    Input(String),
}

/// What the real-kernel run left beside its capture.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// `scenario.toml`: hosts, links, sysctls, and the script.
    pub scenario: Option<(PathBuf, Scenario)>,
    /// `observations.jsonl`: when each script step returned.
    pub observations: Option<(PathBuf, Vec<Observation>)>,
}

impl Recorded {
    /// Loads `scenario.toml` and `observations.jsonl` from the capture's directory, where
    /// they exist.
    pub fn beside(pcap: &Path) -> Result<Recorded, ReplayError> {
        let dir = pcap.parent().unwrap_or(Path::new("."));
        let sc_path = dir.join("scenario.toml");
        let obs_path = dir.join("observations.jsonl");
        let scenario = match sc_path.is_file() {
            true => Some((sc_path.clone(), crate::scenario::load(&sc_path).map_err(|e| ReplayError::Input(e.to_string()))?)),
            false => None,
        };
        let observations = match obs_path.is_file() {
            true => {
                let name = obs_path.display().to_string();
                let text = std::fs::read_to_string(&obs_path).map_err(|e| ReplayError::Input(format!("{name}: {e}")))?;
                let obs = crate::script::observe::from_jsonl(&name, &text).map_err(|e| ReplayError::Input(e.to_string()))?;
                Some((obs_path, obs))
            }
            false => None,
        };
        Ok(Recorded { scenario, observations })
    }

    /// Whether the application's calls are to be inferred from the capture: no observation
    /// log lies beside it (a scenario's log without script steps, of `[[app]]`s only, leaves
    /// the SUT passive instead).
    pub fn infers(&self) -> bool {
        self.observations.is_none()
    }

    /// The recorded script and its log; none for a scenario without script steps (only
    /// `[[app]]`s, which are not replayed), whose SUT is then passive.
    fn script(&self) -> Option<(&Scenario, &[Observation])> {
        match (&self.scenario, &self.observations) {
            (Some((_, sc)), Some((_, obs))) if !sc.script.is_empty() => Some((sc, obs)),
            _ => None,
        }
    }
}

/// Replays the capture at `path` with what lies beside it.
pub fn replay_file(path: &Path, opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    let cap = read_pcap(path)?;
    let rec = Recorded::beside(path)?;
    replay(&cap, &path.display().to_string(), &rec, opts)
}

/// Replays `cap` (named `name` in the report) against the model.
pub fn replay(cap: &Capture, name: &str, rec: &Recorded, opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    let conns = split(&cap.packets);
    // An empty capture beside its recorded run is an answer (the kernel sent nothing: a
    // listener nobody connected to); anything else without a connection is nothing to check.
    let empty_run = cap.skipped.is_empty() && rec.scenario.is_some();
    if conns.is_empty() && !empty_run {
        return Err(ReplayError::Input(format!("{name}: nothing to replay: {}", what_it_holds(cap))));
    }
    let timeline = Timeline::of(cap, rec);
    let kernel = opts.kernel.clone().unwrap_or_else(|| "linux-6.18".into());
    let mut report = ReplayReport::new(name, &kernel, rec);
    report.set_unread_tcp(unread_tcp(cap));
    for &side in &opts.sides {
        let Some(first) = conns.first() else { break };
        let sut_ip = first.endpoints(side).0.ip();
        let run = SideRun { cap, conns: &conns, rec, timeline, side, sut_ip, kernel: opts.kernel.as_deref(), first: opts.first, given: &opts.settings, keep: opts.keep_segments };
        run.run(&mut report)?;
    }
    Ok(report)
}

/// What a capture without a readable TCP segment holds instead, most common first:
/// "12 packets, none TCP (UDP 10, ICMPv6 2)", or, when some were TCP the reader could not
/// use, "3 packets: TCP segment cut by the snaplen (…)".
fn what_it_holds(cap: &Capture) -> String {
    if cap.skipped.is_empty() {
        return "the file holds no packets".into();
    }
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, reason) in &cap.skipped {
        *kinds.entry(not_tcp_kind(reason).unwrap_or(reason)).or_default() += 1;
    }
    let mut kinds: Vec<(&str, usize)> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let more = if kinds.len() > 4 { ", …" } else { "" };
    let total = cap.skipped.len();
    let packets = if total == 1 { "packet" } else { "packets" };
    if cap.skipped.iter().all(|(_, r)| not_tcp_kind(r).is_some()) {
        let shown: Vec<String> = kinds.iter().take(4).map(|(k, n)| format!("{k} {n}")).collect();
        return format!("{total} {packets}, none TCP ({}{more})", shown.join(", "));
    }
    let shown: Vec<String> = kinds.iter().take(4).map(|(k, n)| format!("{n} {} {k}", if *n == 1 { "packet:" } else { "packets:" })).collect();
    format!("{}{more}", shown.join(", "))
}

/// A short name for what a packet the reader skipped holds, when it is not TCP: the IP
/// protocol ("UDP", "ICMPv6", "IP protocol 47"), "ARP", or the link layer's reason.
fn not_tcp_kind(reason: &str) -> Option<&str> {
    if let Some(proto) = reason.strip_prefix("IP protocol ").and_then(|r| r.strip_suffix(" is not TCP")) {
        return Some(proto.split_once(" (").map_or(reason.trim_end_matches(" is not TCP"), |(_, name)| name.trim_end_matches(')')));
    }
    let tcp = reason.starts_with("TCP segment") || reason.starts_with("headers cut") || reason.contains("fragment") || reason.starts_with("IP header cut");
    (!tcp).then_some(reason)
}

/// The capture's TCP packets the reader skipped (cut by the snaplen), by reason: some may be
/// the system under test's, so their count is part of the coverage.
fn unread_tcp(cap: &Capture) -> Vec<NotCompared> {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, reason) in &cap.skipped {
        if reason.starts_with("TCP segment") {
            *by.entry(reason.as_str()).or_default() += 1;
        }
    }
    by.into_iter().map(|(reason, segments)| NotCompared { segments, reason: reason.to_string() }).collect()
}

/// Capture time to replay time: `sim = pcap + offset`, never below zero.
#[derive(Copy, Clone, Debug)]
struct Timeline {
    offset: i128,
}

impl Timeline {
    /// A non-blocking `connect` returns once its SYN is sent, so the SYN is anchored at its
    /// return; a blocking one (returned 0) returns after the SYN-ACK, once the handshake's
    /// final ACK is sent (`tcp_rcv_synsent_state_process` sends it before waking the caller),
    /// so that ACK is anchored there instead.
    fn of(cap: &Capture, rec: &Recorded) -> Timeline {
        let is_syn = |f: Flags| f.contains(Flags::SYN) && !f.contains(Flags::ACK);
        let first_syn = cap.packets.iter().position(|p| is_syn(p.seg.flags));
        let connect = rec.script().and_then(|(sc, obs)| {
            obs.iter().find(|o| matches!(sc.script.get(o.step), Some(Step::Connect { .. }))).map(|o| (o.t_ns, o.ret == Some(0)))
        });
        let anchor = first_syn.map(|i| {
            let syn = &cap.packets[i].seg;
            let handshake_ack = cap.packets[i..].iter().find(|p| {
                p.seg.src == syn.src && p.seg.dst == syn.dst && p.seg.flags.contains(Flags::ACK) && !p.seg.flags.contains(Flags::SYN)
            });
            (cap.packets[i].t_ns, handshake_ack.map(|p| p.t_ns))
        });
        let offset = match (anchor, connect) {
            (Some((_, Some(ack))), Some((t, true))) => i128::from(t) - i128::from(ack),
            (Some((syn, _)), Some((t, _))) => i128::from(t) - i128::from(syn),
            _ => {
                let first = cap.packets.first().map_or(0, |p| p.t_ns);
                i128::from(PASSIVE_FIRST_PACKET.as_nanos()) - i128::from(first)
            }
        };
        Timeline { offset }
    }

    fn at(&self, pcap_ns: u64) -> SimTime {
        SimTime((i128::from(pcap_ns) + self.offset).clamp(0, i128::from(u64::MAX)) as u64)
    }
}

/// Takes the network's own behaviour out of the scenario's links, keeping their faults.
/// The puppet emits each captured segment at its captured time and the SUT's segments are
/// compared at the time the SUT sends them: both are times at the capture point, beside the
/// server's interface, so whatever delayed, shaped or dropped a packet on the real path is
/// already in the capture. A link that added the scenario's delay, jitter, bandwidth or
/// loss again would replay a different network (the lab reproduces no delay at all: a veth
/// delivers within the sending call). Loss by count (`drop_nth`, `drop_every`) stays: the lab
/// makes it at the receiver's input hook, past the capture point, as a fault, and numbers the
/// same segments the replay's link does.
fn transparent_links(sc: &mut Scenario) {
    let counted_only = |d: &Option<LinkDirSpec>| {
        let d = d.as_ref().filter(|d| d.drop_nth.is_some() || d.drop_every.is_some())?;
        Some(LinkDirSpec { drop_nth: d.drop_nth.clone(), drop_every: d.drop_every, ..Default::default() })
    };
    for l in &mut sc.links {
        l.delay = None;
        l.jitter = None;
        l.bandwidth = None;
        l.queue = None;
        l.loss = None;
        l.duplicate = None;
        l.a_to_b = counted_only(&l.a_to_b);
        l.b_to_a = counted_only(&l.b_to_a);
    }
}

/// Without a recorded script, the first captured packet is replayed at 1 ms, after the
/// passive SUT has set up at 0.
const PASSIVE_FIRST_PACKET: Dur = Dur::from_millis(1);

/// One side's replay.
struct SideRun<'a> {
    cap: &'a Capture,
    conns: &'a [Connection],
    rec: &'a Recorded,
    timeline: Timeline,
    side: Side,
    sut_ip: IpAddr,
    kernel: Option<&'a str>,
    first: bool,
    given: &'a [settings::Setting],
    keep: bool,
}

impl SideRun<'_> {
    /// The connections whose `side` is the SUT's address, with their index in the capture.
    /// Puppets number connections by position in this list.
    fn sut_conns(&self) -> Vec<(usize, &Connection)> {
        self.conns.iter().enumerate().filter(|(_, c)| c.endpoints(self.side).0.ip() == self.sut_ip).collect()
    }

    /// The SUT's kernel profile before `--set` and what the trace shows.
    fn base_profile(&self) -> Result<KernelProfile, ReplayError> {
        let spec = self.rec.scenario.as_ref().and_then(|(_, sc)| sc.hosts.iter().find(|h| h.addr == self.sut_ip));
        match spec {
            Some(spec) => {
                let mut spec = spec.clone();
                if let Some(k) = self.kernel {
                    spec.kernel = Some(k.to_string());
                }
                crate::scenario::host_profile(&spec).map_err(|e| ReplayError::Input(format!("host `{}`: {e}", spec.name)))
            }
            None => KernelProfile::builtin(self.kernel.unwrap_or("linux-6.18")).map_err(|e| ReplayError::Input(e.to_string())),
        }
    }

    /// The simulation: the SUT host, a puppet per other address, links as the scenario has
    /// them (or one plain link per peer). Returns it with the SUT's index and name.
    fn build(&self, log: &SutLog, profile: KernelProfile) -> Result<(Sim<Endpoint>, usize, String), ReplayError> {
        let profile = Rc::new(profile);
        let puppet = || Endpoint::Puppet(Puppet::new(Vec::new(), Vec::new(), log.clone()));
        let sut_node = |name: &str, addr| Endpoint::Sut(Box::new(Host::new(name, addr, profile.clone())));
        let input = |e: crate::engine::EngineError| ReplayError::Input(e.to_string());
        let sim = match &self.rec.scenario {
            Some((path, sc)) => {
                let Some(sut) = sc.hosts.iter().find(|h| h.addr == self.sut_ip) else {
                    return Err(ReplayError::Input(format!(
                        "{}: the capture's {} {} is not a host of this scenario",
                        path.display(),
                        self.side.name(),
                        self.sut_ip
                    )));
                };
                let mut sc = sc.clone();
                transparent_links(&mut sc);
                // Faults on the puppet's host are not replayed: the puppet is the capture.
                sc.faults.retain(|f| f.host.as_ref().is_none_or(|h| *h == sut.name));
                crate::world::build_sim(&sc, sc.seed, |_, spec| if spec.addr == self.sut_ip { sut_node(&spec.name, spec.addr) } else { puppet() })
                    .map_err(input)?
            }
            None => {
                let mut sim = Sim::new(0);
                sim.add_host("sut", self.sut_ip, sut_node("sut", self.sut_ip)).map_err(input)?;
                let mut peers: Vec<IpAddr> = self.sut_conns().iter().map(|(_, c)| c.endpoints(self.side).1.ip()).collect();
                peers.dedup();
                for (i, ip) in peers.iter().enumerate() {
                    let name = format!("peer{i}");
                    if sim.host_by_addr(*ip).is_none() {
                        sim.add_host(&name, *ip, puppet()).map_err(input)?;
                        sim.add_link(&format!("wire{i}"), "sut", &name, LinkParams::default(), LinkParams::default()).map_err(input)?;
                    }
                }
                sim
            }
        };
        let sut = sim.host_by_addr(self.sut_ip).unwrap_or_default();
        let name = sim.host_name(sut).to_string();
        Ok((sim, sut, name))
    }

    /// Gives every puppet its captured segments and queues them.
    fn load_puppets(&self, sim: &mut Sim<Endpoint>) -> Result<(), ReplayError> {
        let conns = self.sut_conns();
        let maps: Vec<ConnMap> = conns
            .iter()
            .map(|(_, c)| {
                let (sut, peer) = c.endpoints(self.side);
                let sent = || c.packets.iter().map(|&i| &self.cap.packets[i].seg).filter(move |s| s.src == sut);
                ConnMap {
                    sut,
                    peer,
                    captured_isn: sent().find(|s| s.flags.contains(Flags::SYN)).map(|s| s.seq),
                    captured_ts0: sent().find_map(|s| s.options.timestamps).map(|(v, _)| v),
                }
            })
            .collect();
        let mut by_host: std::collections::BTreeMap<usize, Vec<Emission>> = Default::default();
        for (ci, (_, c)) in conns.iter().enumerate() {
            let peer = c.endpoints(self.side).1;
            for &i in &c.packets {
                let p = &self.cap.packets[i];
                if p.seg.src != peer {
                    continue;
                }
                let Some(h) = sim.host_by_addr(peer.ip()) else {
                    return Err(ReplayError::Input(format!("the capture's peer {} is not a host of the scenario", peer.ip())));
                };
                by_host.entry(h).or_default().push(Emission { at: self.timeline.at(p.t_ns), conn: ci, seg: p.seg.clone() });
            }
        }
        for (h, emissions) in by_host {
            let times: Vec<SimTime> = emissions.iter().map(|e| e.at).collect();
            if let Endpoint::Puppet(p) = sim.node_mut(h) {
                p.emissions = emissions;
                p.conns = maps.clone();
            }
            sim.with_node(h, |_, ctx| times.iter().enumerate().for_each(|(k, at)| ctx.schedule(*at, k as u64)));
        }
        Ok(())
    }

    /// What the capture shows of the SUT's settings, and the settings applied: `--set`'s,
    /// then the shown ones it does not override. The application's settings only without a
    /// log (a recorded run's scenario and script already hold its sysctls and socket
    /// options); the jiffies phase always (no log records it: [`ticks`]).
    fn settings(&self, base: &KernelProfile) -> (shown::Shown, settings::Settings) {
        let conns: Vec<&Connection> = self.sut_conns().into_iter().map(|(_, c)| c).collect();
        let end = self.cap.packets.iter().map(|p| p.t_ns).max().unwrap_or(0);
        let mut shown = match self.rec.infers() {
            true => shown::infer(&self.cap.packets, &conns, self.side, base, end),
            false => shown::Shown::default(),
        };
        shown.settings.extend(ticks::infer(&self.cap.packets, &conns, self.side, base, |t| self.timeline.at(t)));
        let all = settings::Settings::merge(self.given, shown.settings.clone());
        (shown, all)
    }

    /// The calls inferred from the capture for the SUT's connections (none with a log); none
    /// on the children of a listener that never accepts.
    fn inferred(&self, never_accepts: &[crate::addr::SockAddr]) -> Vec<infer::Inferred> {
        if !self.rec.infers() {
            return Vec::new();
        }
        let on_accepted = |c: &&Connection| self.side == Side::Client || !never_accepts.contains(&c.server);
        let mut calls: Vec<infer::Inferred> =
            self.sut_conns().into_iter().map(|(_, c)| c).filter(on_accepted).flat_map(|c| infer::infer(&self.cap.packets, c, self.side)).collect();
        calls.sort_by_key(|i| i.t_ns);
        calls
    }

    /// The SUT's application: the recorded script, else a listener or connector making the
    /// inferred calls.
    fn actions<'s>(&self, sc: Option<(&'s Scenario, &[Observation])>, inferred: &[infer::Inferred]) -> Vec<(SimTime, Action<'s>)> {
        let mut actions = match sc {
            Some((sc, obs)) => Driver::scripted(sc, obs),
            None => match self.side {
                Side::Server => {
                    let mut ports: Vec<u16> = self.sut_conns().iter().map(|(_, c)| c.server.port()).collect();
                    ports.sort_unstable();
                    ports.dedup();
                    ports.into_iter().map(|p| (SimTime::ZERO, Action::Listen(p))).collect()
                }
                Side::Client => self
                    .sut_conns()
                    .iter()
                    .map(|(_, c)| {
                        let t = self.timeline.at(self.cap.packets[c.packets[0]].t_ns);
                        (t, Action::Connect { local: c.client.port(), remote: c.server })
                    })
                    .collect(),
            },
        };
        actions.extend(inferred.iter().map(|i| (self.timeline.at(i.t_ns), Action::Inferred(i.clone()))));
        actions.sort_by_key(|(t, _)| *t);
        actions
    }

    fn run(&self, report: &mut ReplayReport) -> Result<(), ReplayError> {
        let log: SutLog = Rc::default();
        let base = self.base_profile()?;
        let (shown, settings) = self.settings(&base);
        let profile = settings.profile(&base).map_err(|e| ReplayError::Input(format!("--set {e}")))?;
        let (mut sim, sut, sut_name) = self.build(&log, profile)?;
        let tap = log.clone();
        let sut_ip = self.sut_ip;
        sim.set_tap(Box::new(move |t, seg| {
            if seg.src.ip() == sut_ip {
                tap.borrow_mut().push(Timed { t, seg: seg.clone() });
            }
        }));
        self.load_puppets(&mut sim)?;
        let conns = self.sut_conns();
        let client_ports = match self.side {
            Side::Client => conns.iter().map(|(_, c)| c.client.port()).collect(),
            Side::Server => Vec::new(),
        };
        let script = self.rec.script();
        let inferred = self.inferred(&shown.never_accepts);
        let actions = self.actions(script, &inferred);
        let mut driver = Driver::new(sut, &sut_name, client_ports, &settings);
        let last_packet = self.cap.packets.iter().map(|p| self.timeline.at(p.t_ns)).max().unwrap_or(SimTime::ZERO);
        let capture_end = actions.last().map_or(last_packet, |(t, _)| last_packet.max(*t));
        driver::run(&mut sim, &mut driver, &actions, capture_end + driver::RUN_PAST_CAPTURE);
        if let Some((sc, obs)) = script {
            report.tcp_info.extend(info::compare(self.side, sc, obs, driver.tcp_info_samples()));
        }
        let model = log.borrow();
        for (index, c) in conns {
            self.compare(report, index, c, &model, capture_end);
        }
        report.add_inferred(self.side, &inferred, |t| self.timeline.at(t));
        report.add_settings(self.side, &settings, &shown.never_accepts);
        Ok(())
    }

    /// Compares one connection and adds it to the report.
    fn compare(&self, report: &mut ReplayReport, index: usize, c: &Connection, model: &[Timed], capture_end: SimTime) {
        let (sut, peer) = c.endpoints(self.side);
        let mut captured = Vec::new();
        let mut prev: Option<u64> = None;
        for &i in &c.packets {
            let p = &self.cap.packets[i];
            if p.seg.src == sut {
                let gap = Dur::from_nanos(prev.map_or(0, |t| p.t_ns.saturating_sub(t)));
                captured.push((Timed { t: self.timeline.at(p.t_ns), seg: p.seg.clone() }, gap));
            }
            prev = Some(p.t_ns);
        }
        if !self.has_handshake(c) {
            let reason = "the capture holds no SYN of this connection: the model cannot join an established connection";
            let not = vec![NotCompared { segments: captured.len(), reason: reason.into() }];
            report.add(self.side, index, sut, peer, captured.len(), 0, ConnComparison::default(), not);
            return;
        }
        let peer_segs: Vec<_> = c.packets.iter().map(|&i| &self.cap.packets[i].seg).filter(|s| s.src == peer).collect();
        let earlier = self.conns[..index].iter().filter(|o| o.client == c.client && o.server == c.server).count();
        let model = incarnation(model.iter().filter(|t| t.seg.src == sut && t.seg.dst == peer), earlier);
        let sides = Sides {
            captured_spaces: Spaces::of(captured.iter().map(|(t, _)| &t.seg), peer_segs.iter().copied()),
            model_spaces: Spaces::of(model.iter().map(|t| &t.seg), peer_segs.iter().copied()),
            captured: &captured,
            model: &model,
            capture_end,
            first: self.first,
        };
        let result = compare_connection(index, &sides);
        let mut not = Vec::new();
        let stopped = captured.len() - result.segments_compared;
        if stopped > 0 {
            not.push(NotCompared { segments: stopped, reason: "the comparison stopped at the first divergence (--first)".into() });
        }
        let model_in_capture = model.iter().filter(|t| t.t <= capture_end).count();
        if self.keep {
            let peer_segs = c.packets.iter().map(|&i| &self.cap.packets[i]).filter(|p| p.seg.src == peer);
            report.keep_segments(ConnSegments {
                side: self.side,
                connection: index,
                sut,
                peer,
                kernel: captured.iter().map(|(t, _)| t.clone()).collect(),
                model: model.iter().filter(|t| t.t <= capture_end).cloned().collect(),
                peer_segments: peer_segs.map(|p| Timed { t: self.timeline.at(p.t_ns), seg: p.seg.clone() }).collect(),
            });
        }
        report.add(self.side, index, sut, peer, captured.len(), model_in_capture, result, not);
    }

    /// Whether the capture holds the connection's opening SYN, without which the model has
    /// no connection to compare.
    fn has_handshake(&self, c: &Connection) -> bool {
        c.packets.iter().map(|&i| &self.cap.packets[i].seg).any(|s| s.src == c.client && s.flags.contains(Flags::SYN) && !s.flags.contains(Flags::ACK))
    }
}

/// The model's segments of incarnation `k` (0 the first) of one 4-tuple, from all of them
/// in time order ([`split::starts_incarnation`]).
fn incarnation<'a>(segs: impl Iterator<Item = &'a Timed>, k: usize) -> Vec<Timed> {
    let (mut n, mut last_syn) = (0, None);
    let mut out = Vec::new();
    for t in segs {
        if split::starts_incarnation(last_syn, &t.seg) {
            n += 1;
        }
        if t.seg.flags.contains(Flags::SYN) {
            last_syn = Some(t.seg.seq);
        }
        if n == k {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::CapturedSegment;
    use crate::tcp::segment::{Ecn, Payload, Segment, TcpOptions};
    use crate::addr::SockAddr;

    const SCENARIO: &str = r#"
        name = "t"
        duration = "1s"
        [[host]]
        name = "client"
        addr = "10.0.0.1"
        [[host]]
        name = "server"
        addr = "10.0.0.2"
        [[link]]
        name = "wire"
        a = "client"
        b = "server"
        delay = "5ms"
        jitter = "1ms"
        bandwidth = "10Mbit"
        loss = 0.01
        [link.a_to_b]
        delay = "7ms"
        [[script]]
        op = "socket"
        host = "client"
        sock = "c"
        [[script]]
        op = "connect"
        sock = "c"
        to = "server:8080"
    "#;

    fn packet(t_ns: u64, flags: Flags, from_client: bool) -> CapturedSegment {
        let (c, s) = (SockAddr::new([10, 0, 0, 1], 40000), SockAddr::new([10, 0, 0, 2], 8080));
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        let seg = Segment { src, dst, seq: 1, ack: 1, flags, ecn: Ecn::NotEct, window: 64, options: TcpOptions::default(), payload: Payload::Empty };
        CapturedSegment { t_ns, seg, iface: 0, raw_len: 66 }
    }

    /// SYN at 1000, SYN-ACK at 1015, the handshake's ACK at 1040 (µs).
    fn handshake() -> Capture {
        let packets = vec![
            packet(1_000_000, Flags::SYN, true),
            packet(1_015_000, Flags::SYN | Flags::ACK, false),
            packet(1_040_000, Flags::ACK, true),
        ];
        Capture { packets, skipped: Vec::new() }
    }

    fn recorded(connect_ret: i64, connect_t: u64) -> Recorded {
        let sc = crate::scenario::parse(SCENARIO, "t.toml").unwrap();
        let obs = [(0, 100_000, 0), (1, connect_t, connect_ret)]
            .iter()
            .map(|&(step, t_ns, ret)| Observation { step, t_ns, ret: Some(ret), ..Observation::default() })
            .collect();
        Recorded { scenario: Some(("t.toml".into(), sc)), observations: Some(("o.jsonl".into(), obs)) }
    }

    #[test]
    fn a_non_blocking_connect_returns_when_its_syn_leaves() {
        let t = Timeline::of(&handshake(), &recorded(-1, 300_000));
        assert_eq!(t.at(1_000_000), SimTime(300_000));
    }

    #[test]
    fn a_blocking_connect_returns_when_the_handshake_ack_leaves() {
        let t = Timeline::of(&handshake(), &recorded(0, 300_000));
        assert_eq!(t.at(1_040_000), SimTime(300_000));
        assert_eq!(t.at(1_000_000), SimTime(260_000));
    }

    #[test]
    fn a_scenario_without_script_steps_has_a_passive_sut() {
        let mut rec = recorded(0, 300_000);
        assert!(rec.script().is_some());
        if let Some((_, sc)) = &mut rec.scenario {
            sc.script.clear();
        }
        assert!(rec.script().is_none());
        // Without a script, the first packet is put at 1 ms.
        assert_eq!(Timeline::of(&handshake(), &rec).at(1_000_000), SimTime::ZERO + PASSIVE_FIRST_PACKET);
    }

    #[test]
    fn replayed_links_add_no_delay_shaping_or_loss() {
        let mut sc = crate::scenario::parse(SCENARIO, "t.toml").unwrap();
        transparent_links(&mut sc);
        let l = &sc.links[0];
        assert_eq!((l.name.as_str(), l.a.as_str(), l.b.as_str()), ("wire", "client", "server"));
        assert!(l.delay.is_none() && l.jitter.is_none() && l.bandwidth.is_none() && l.loss.is_none() && l.a_to_b.is_none());
    }
}
