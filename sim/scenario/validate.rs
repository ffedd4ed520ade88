//! Semantic checks: a scenario that deserialized can still name a host that does not exist, fault
//! a link that is not there, or use a socket before creating it. Each check returns the field
//! path of the offending value; [`load()`](super::load::load) turns the path into a file position.
//!
//! Checks that concern the *outcome* of a syscall (accept on a socket that never listened, send
//! after close) are deliberately not made here: those are questions the simulator answers
//! (EINVAL, EBADF…), not mistakes in the file.

use std::collections::BTreeMap;
use crate::addr::SockAddr;

use super::error::{FieldPath, Invalid};
use super::types::*;
use super::draw::ProbDraw;
use super::units::DurSpec;
use crate::socket::view::PollMask;
use crate::tcp::profile::KernelProfile;
use crate::time::Dur;

/// The kernel profile of a host that names none.
pub const DEFAULT_KERNEL: &str = "linux-6.18";

/// Checks everything that can be checked before running: see the module doc.
pub fn validate(s: &Scenario) -> Result<(), Invalid> {
    if s.duration.0 == Dur(0) {
        return Err(Invalid::new(FieldPath::root().key("duration"), "duration must be greater than 0"));
    }
    let hosts = check_hosts(s)?;
    let links = check_links(s, &hosts)?;
    let names = Names { hosts, links };
    check_middleboxes(s, &names)?;
    check_faults(s, &names)?;
    check_apps(s, &names)?;
    check_script(s, &names)?;
    Ok(())
}

/// The kernel profile of `spec`: its named built-in profile with the `sysctl` overrides applied.
///
/// The overrides are applied through serde (profile → JSON object → overlay → profile, with the
/// profile's `deny_unknown_fields`), so that any field of [`KernelProfile`] can be overridden
/// and a misspelt or mistyped one is an error rather than silently ignored.
pub fn host_profile(spec: &HostSpec) -> Result<KernelProfile, String> {
    let name = spec.kernel.as_deref().unwrap_or(DEFAULT_KERNEL);
    let base = KernelProfile::builtin(name).map_err(|e| e.to_string())?;
    overlay(&base, &spec.sysctl).map_err(|e| match e {
        OverlayError::UnknownField(key, msg) | OverlayError::BadValue(key, msg) => {
            format!("sysctl.{key}: {msg}")
        }
    })
}

/// `base` with the sysctl overrides applied (`tcpsim replay --set`): an error names the
/// override (`tcp_sack: ...`).
pub fn with_sysctls(base: &KernelProfile, overrides: &BTreeMap<String, serde_json::Value>) -> Result<KernelProfile, String> {
    overlay(base, overrides).map_err(|e| match e {
        OverlayError::UnknownField(key, msg) | OverlayError::BadValue(key, msg) => format!("{key}: {msg}"),
    })
}

/// Resolves a connect target `HOST:PORT`, `A.B.C.D:PORT` or `[IPv6]:PORT` to the address of a
/// scenario host.
pub fn resolve_to(s: &Scenario, to: &str) -> Result<SockAddr, String> {
    let (host, port) =
        to.rsplit_once(':').ok_or_else(|| format!("`{to}` is not HOST:PORT or A.B.C.D:PORT"))?;
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(format!("`{to}`: port `{port}` is not a number in 1..=65535")),
    };
    let addr = match crate::addr::parse_host_ip(host).ok_or(()) {
        Ok(addr) if s.hosts.iter().any(|h| h.addr == addr) => addr,
        Ok(addr) => {
            let known: Vec<String> = s.hosts.iter().map(|h| h.addr.to_string()).collect();
            return Err(format!("`{to}`: no host has address {addr} ({})", listing("addresses", &known)));
        }
        Err(_) => match s.hosts.iter().find(|h| h.name == host) {
            Some(h) => h.addr,
            None => {
                return Err(format!("`{to}`: {}", no_such("host", host, s.hosts.iter().map(|h| &h.name))))
            }
        },
    };
    Ok(SockAddr::new(addr, port))
}

/// Names defined by the scenario, with the index of their definition.
struct Names<'a> {
    hosts: BTreeMap<&'a str, usize>,
    links: BTreeMap<&'a str, usize>,
}

impl Names<'_> {
    fn host(&self, name: &str, path: FieldPath) -> Result<(), Invalid> {
        match self.hosts.contains_key(name) {
            true => Ok(()),
            false => Err(Invalid::new(path, no_such("host", name, self.hosts.keys()))),
        }
    }
    fn link(&self, name: &str, path: FieldPath) -> Result<(), Invalid> {
        match self.links.contains_key(name) {
            true => Ok(()),
            false => Err(Invalid::new(path, no_such("link", name, self.links.keys()))),
        }
    }
}

/// `no link named `wan` (links: wire)`.
fn no_such<S: AsRef<str>>(kind: &str, name: &str, known: impl Iterator<Item = S>) -> String {
    let known: Vec<String> = known.map(|k| k.as_ref().to_string()).collect();
    format!("no {kind} named `{name}` ({})", listing(&format!("{kind}s"), &known))
}

/// `links: wire, wan`, shortened after [`LISTED`] names so that a large scenario's error stays short.
fn listing(plural: &str, known: &[String]) -> String {
    match known.len() {
        0 => format!("no {plural} defined"),
        n if n <= LISTED => format!("{plural}: {}", known.join(", ")),
        n => format!("{plural}: {}, … ({} more)", known[..LISTED].join(", "), n - LISTED),
    }
}

/// How many known names an error lists.
const LISTED: usize = 8;

/// `arr[i].field`.
fn field(arr: &str, i: usize, f: &str) -> FieldPath {
    FieldPath::root().key(arr).index(i).key(f)
}

/// Checks that names are unique; returns name → index of definition.
fn unique<'a>(
    arr: &str,
    kind: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<&'a str, usize>, Invalid> {
    let mut seen = BTreeMap::new();
    for (i, name) in names.enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(Invalid::new(
                field(arr, i, "name"),
                format!("duplicate {kind} name `{name}` (first defined at {arr}[{first}])"),
            ));
        }
    }
    Ok(seen)
}

fn check_hosts(s: &Scenario) -> Result<BTreeMap<&str, usize>, Invalid> {
    let hosts = unique("host", "host", s.hosts.iter().map(|h| h.name.as_str()))?;
    let mut addrs = BTreeMap::new();
    for (i, h) in s.hosts.iter().enumerate() {
        // Connect targets are `HOST:PORT` or `A.B.C.D:PORT`: a name must be neither.
        if h.name.is_empty() || h.name.contains(':') || h.name.parse::<std::net::IpAddr>().is_ok() {
            return Err(Invalid::new(
                field("host", i, "name"),
                format!("host name `{}` must be non-empty, without `:`, and not an address", h.name),
            ));
        }
        if let Some(first) = addrs.insert(h.addr, i) {
            return Err(Invalid::new(
                field("host", i, "addr"),
                format!("address {} is already host `{}`'s (host[{first}])", h.addr, s.hosts[first].name),
            ));
        }
        check_kernel(h, i)?;
    }
    Ok(hosts)
}

/// The kernel name exists and every sysctl override names a profile field with a value of its type.
fn check_kernel(h: &HostSpec, i: usize) -> Result<(), Invalid> {
    let name = h.kernel.as_deref().unwrap_or(DEFAULT_KERNEL);
    let base =
        KernelProfile::builtin(name).map_err(|e| Invalid::new(field("host", i, "kernel"), e.to_string()))?;
    overlay(&base, &h.sysctl).map(|_| ()).map_err(|e| match e {
        OverlayError::UnknownField(key, msg) => Invalid::key(field("host", i, "sysctl").key(&key), msg),
        OverlayError::BadValue(key, msg) => Invalid::new(field("host", i, "sysctl").key(&key), msg),
    })
}

/// Why a sysctl override could not be applied: (key, message).
enum OverlayError {
    UnknownField(String, String),
    BadValue(String, String),
}

/// Applies overrides one at a time, so that a failure names the override that caused it.
fn overlay(
    base: &KernelProfile,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<KernelProfile, OverlayError> {
    let mut profile = base.clone();
    for (key, value) in overrides {
        let mut obj = match serde_json::to_value(&profile) {
            Ok(serde_json::Value::Object(obj)) => obj,
            _ => return Err(OverlayError::BadValue(key.clone(), "kernel profile is not an object".into())),
        };
        if !obj.contains_key(key) {
            let msg =
                format!("`{key}` is not a kernel profile field (see models/kernels/{}.toml)", base.name);
            return Err(OverlayError::UnknownField(key.clone(), msg));
        }
        obj.insert(key.clone(), value.clone());
        profile = serde_json::from_value(serde_json::Value::Object(obj))
            .map_err(|e| OverlayError::BadValue(key.clone(), e.to_string()))?;
    }
    Ok(profile)
}

fn check_links<'a>(
    s: &'a Scenario,
    hosts: &BTreeMap<&str, usize>,
) -> Result<BTreeMap<&'a str, usize>, Invalid> {
    let links = unique("link", "link", s.links.iter().map(|l| l.name.as_str()))?;
    let names = Names { hosts: hosts.clone(), links: BTreeMap::new() };
    let mut pairs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, l) in s.links.iter().enumerate() {
        names.host(&l.a, field("link", i, "a"))?;
        names.host(&l.b, field("link", i, "b"))?;
        check_device(l, i)?;
        let pair = if l.a < l.b { (l.a.as_str(), l.b.as_str()) } else { (l.b.as_str(), l.a.as_str()) };
        if let Some(first) = pairs.insert(pair, i) {
            return Err(Invalid::new(
                field("link", i, "b"),
                format!(
                    "link[{first}] `{}` already joins `{}` and `{}` (at most one link between two hosts)",
                    s.links[first].name, pair.0, pair.1
                ),
            ));
        }
        let base = FieldPath::root().key("link").index(i);
        check_props(&base, l.loss, l.duplicate, l.queue)?;
        for (dir, spec) in [("a_to_b", &l.a_to_b), ("b_to_a", &l.b_to_a)] {
            if let Some(d) = spec {
                check_props(&base.key(dir), d.loss, d.duplicate, d.queue)?;
                check_counted(&base.key(dir), d)?;
            }
        }
    }
    Ok(links)
}

/// Loss by count: segments are numbered from 1, an `every` of 1 would be a partition, and
/// the lab has one counter a direction (`sim/capture/netns.rs`), so not both.
fn check_counted(base: &FieldPath, d: &LinkDirSpec) -> Result<(), Invalid> {
    if let Some(i) = d.drop_nth.as_ref().and_then(|n| n.iter().position(|&n| n == 0)) {
        return Err(Invalid::new(base.key("drop_nth").index(i), "segments are counted from 1"));
    }
    if d.drop_every.is_some_and(|n| n < 2) {
        return Err(Invalid::new(base.key("drop_every"), "drop_every must be at least 2"));
    }
    if d.drop_nth.is_some() && d.drop_every.is_some() {
        return Err(Invalid::new(base.key("drop_every"), "drop_nth and drop_every cannot both be set on one direction"));
    }
    Ok(())
}

/// A veth joins two hosts, a `lo` link one host to itself; an MTU in [`MTU_RANGE`]; no
/// serialization rate on loopback (`loopback_xmit` hands the skb straight to the receive
/// path), and no second direction.
fn check_device(l: &LinkSpec, i: usize) -> Result<(), Invalid> {
    match l.kind {
        LinkKind::Veth if l.a == l.b => {
            return Err(Invalid::new(field("link", i, "b"), format!("link joins host `{}` to itself (a loopback is kind = \"lo\")", l.a)));
        }
        LinkKind::Lo if l.a != l.b => {
            return Err(Invalid::new(
                field("link", i, "b"),
                format!("a lo link joins a host to itself: b must be `{}`, got `{}`", l.a, l.b),
            ));
        }
        _ => {}
    }
    if let Some(mtu) = l.mtu.filter(|m| !MTU_RANGE.contains(m)) {
        let (lo, hi) = (MTU_RANGE.start(), MTU_RANGE.end());
        return Err(Invalid::new(field("link", i, "mtu"), format!("mtu must be in {lo}..={hi}, got {mtu}")));
    }
    if l.kind == LinkKind::Lo {
        let base = FieldPath::root().key("link").index(i);
        let rated = [(base.clone(), l.bandwidth), (base.key("a_to_b"), l.a_to_b.as_ref().and_then(|d| d.bandwidth))];
        if let Some((at, _)) = rated.into_iter().find(|(_, b)| b.is_some()) {
            return Err(Invalid::new(at.key("bandwidth"), "a lo link has no serialization rate"));
        }
        if l.b_to_a.is_some() {
            return Err(Invalid::new(base.key("b_to_a"), "a lo link has one direction: a_to_b"));
        }
    }
    Ok(())
}

/// Probabilities in [0, 1] (NaN and infinities fail the range test) and a queue of at least one.
fn check_props(
    base: &FieldPath,
    loss: Option<ProbDraw>,
    duplicate: Option<ProbDraw>,
    queue: Option<u32>,
) -> Result<(), Invalid> {
    for (name, p) in [("loss", loss), ("duplicate", duplicate)] {
        if let Some(p) = p {
            if ![p.lo, p.hi].iter().all(|x| (0.0..=1.0).contains(x)) {
                return Err(Invalid::new(base.key(name), format!("probability must be in [0, 1], got {p}")));
            }
        }
    }
    if queue == Some(0) {
        return Err(Invalid::new(base.key("queue"), "queue must hold at least 1 packet"));
    }
    Ok(())
}

fn check_middleboxes(s: &Scenario, names: &Names) -> Result<(), Invalid> {
    unique("middlebox", "middlebox", s.middleboxes.iter().map(|m| m.name.as_str()))?;
    for (i, m) in s.middleboxes.iter().enumerate() {
        names.link(&m.link, field("middlebox", i, "link"))?;
        if m.idle_timeout.0 == Dur(0) {
            return Err(Invalid::new(
                field("middlebox", i, "idle_timeout"),
                "idle_timeout must be greater than 0",
            ));
        }
    }
    Ok(())
}

/// `at` falls within the run.
fn check_at(s: &Scenario, at: Option<DurSpec>, path: FieldPath) -> Result<(), Invalid> {
    match at {
        Some(at) if at.0 > s.duration.0 => Err(Invalid::new(
            path,
            format!("`at` = {at} is after the end of the run (duration = {})", s.duration),
        )),
        _ => Ok(()),
    }
}

fn check_faults(s: &Scenario, names: &Names) -> Result<(), Invalid> {
    for (i, f) in s.faults.iter().enumerate() {
        let base = FieldPath::root().key("fault").index(i);
        if f.at.is_none() {
            return Err(Invalid::new(base.key("at"), "a scheduled fault needs `at` (a time from the start)"));
        }
        check_at(s, f.at.map(|a| a.hi), base.key("at"))?;
        if f.lasts.is_some() && super::draw::inverse(f.kind).is_none() {
            return Err(Invalid::new(base.key("lasts"), format!("`{}` has no inverse fault to end it", f.kind.name())));
        }
        let target = FaultTarget {
            kind: f.kind,
            link: f.link.as_deref(),
            host: f.host.as_deref(),
            drop: f.drop,
            direction: f.direction,
        };
        check_fault(&target, names, &base)?;
    }
    Ok(())
}

/// The fields of a fault, shared by `[[fault]]` and script `fault` steps.
struct FaultTarget<'a> {
    kind: FaultKind,
    link: Option<&'a str>,
    host: Option<&'a str>,
    drop: Option<FilterMatch>,
    direction: Direction,
}


/// Each fault kind has the one target it acts on (a link or a host) and no other; only
/// `filter` takes `drop` (required) and `direction`.
fn check_fault(f: &FaultTarget, names: &Names, base: &FieldPath) -> Result<(), Invalid> {
    let kind = f.kind.name();
    let on_host =
        matches!(f.kind, FaultKind::Freeze | FaultKind::Thaw | FaultKind::Crash | FaultKind::Reboot);
    let (needed, needed_value, other, other_value) =
        if on_host { ("host", f.host, "link", f.link) } else { ("link", f.link, "host", f.host) };
    if other_value.is_some() {
        return Err(Invalid::new(base.key(other), format!("`{kind}` acts on a {needed}, not a {other}")));
    }
    let Some(target) = needed_value else {
        return Err(Invalid::new(base.key(needed), format!("`{kind}` needs `{needed}`")));
    };
    match on_host {
        true => names.host(target, base.key("host"))?,
        false => names.link(target, base.key("link"))?,
    }
    let is_filter = f.kind == FaultKind::Filter;
    if is_filter && f.drop.is_none() {
        return Err(Invalid::new(base.key("drop"), "`filter` needs `drop` (syn, non_syn or all)"));
    }
    if !is_filter && f.drop.is_some() {
        return Err(Invalid::new(base.key("drop"), format!("`drop` applies only to `filter`, not `{kind}`")));
    }
    if !is_filter && f.direction != Direction::Both {
        return Err(Invalid::new(
            base.key("direction"),
            format!("`direction` applies only to `filter`, not `{kind}`"),
        ));
    }
    Ok(())
}

/// A socket option's value has the option's shape: `[l_onoff, l_linger]` for SO_LINGER, a
/// name for TCP_CONGESTION, an integer otherwise; read-only options cannot be set.
fn check_opt(opt: SockOpt, value: &OptValue, path: FieldPath) -> Result<(), Invalid> {
    match (opt, value) {
        (SockOpt::SO_ERROR | SockOpt::TCP_INFO, _) => {
            Err(Invalid::new(path, format!("{opt:?} is read-only")))
        }
        (SockOpt::SO_LINGER, OptValue::Pair(_)) => Ok(()),
        (SockOpt::SO_LINGER, OptValue::Int(_)) => {
            Err(Invalid::new(path, "SO_LINGER takes [l_onoff, l_linger], e.g. [1, 0]"))
        }
        (SockOpt::TCP_CONGESTION, OptValue::Name(_)) => Ok(()),
        (SockOpt::TCP_CONGESTION, _) => Err(Invalid::new(path, "TCP_CONGESTION takes a name, e.g. \"cubic\"")),
        (_, OptValue::Int(_)) => Ok(()),
        (_, OptValue::Name(_)) => Err(Invalid::new(path, "expected an integer, or [l_onoff, l_linger] for SO_LINGER")),
        (_, OptValue::Pair(_)) => Err(Invalid::new(path, format!("{opt:?} takes an integer"))),
    }
}

fn check_sockopts(opts: &BTreeMap<SockOpt, OptValue>, base: &FieldPath) -> Result<(), Invalid> {
    for (opt, value) in opts {
        check_opt(*opt, value, base.key("sockopts").key(&format!("{opt:?}")))?;
    }
    Ok(())
}

/// A server app's host exists, and its port is set and not taken by an earlier server.
fn check_server<'a>(
    names: &Names,
    listening: &mut BTreeMap<(&'a str, u16), usize>,
    i: usize,
    host: &'a str,
    port: u16,
    base: &FieldPath,
) -> Result<(), Invalid> {
    names.host(host, base.key("host"))?;
    if port == 0 {
        return Err(Invalid::new(base.key("port"), "a server needs a port in 1..=65535"));
    }
    if let Some(first) = listening.insert((host, port), i) {
        return Err(Invalid::new(base.key("port"), format!("app[{first}] already listens on {host}:{port}")));
    }
    Ok(())
}

fn check_apps(s: &Scenario, names: &Names) -> Result<(), Invalid> {
    let mut listening: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for (i, app) in s.apps.iter().enumerate() {
        let base = FieldPath::root().key("app").index(i);
        match app {
            AppSpec::Server { host, port, sockopts, .. } => {
                check_server(names, &mut listening, i, host, *port, &base)?;
                check_sockopts(sockopts, &base)?;
            }
            AppSpec::Client { host, to, at, count, sockopts, .. } => {
                names.host(host, base.key("host"))?;
                resolve_to(s, to).map_err(|m| Invalid::new(base.key("to"), m))?;
                check_at(s, *at, base.key("at"))?;
                if *count == 0 {
                    return Err(Invalid::new(base.key("count"), "count must be at least 1"));
                }
                check_sockopts(sockopts, &base)?;
            }
            AppSpec::HttpServer { host, port, workers, sockopts, .. } => {
                check_server(names, &mut listening, i, host, *port, &base)?;
                if *workers == 0 {
                    return Err(Invalid::new(base.key("workers"), "a server needs at least one worker"));
                }
                check_sockopts(sockopts, &base)?;
            }
            AppSpec::Ab { host, to, at, requests, concurrency, sockopts, .. } => {
                check_client_of(s, names, &base, host, to, *at)?;
                if *requests == 0 {
                    return Err(Invalid::new(base.key("requests"), "requests must be at least 1"));
                }
                if *concurrency == 0 {
                    return Err(Invalid::new(base.key("concurrency"), "concurrency must be at least 1"));
                }
                check_sockopts(sockopts, &base)?;
            }
            AppSpec::Heartbeat(h) => {
                check_client_of(s, names, &base, &h.host, &h.to, h.at)?;
                check_sockopts(&h.sockopts, &base)?;
            }
            AppSpec::Messenger(m) => check_client_of(s, names, &base, &m.host, &m.to, m.at)?,
            AppSpec::MessageSink(k) => {
                names.host(&k.host, base.key("host"))?;
                if k.port == 0 {
                    return Err(Invalid::new(base.key("port"), "a sink needs a port in 1..=65535"));
                }
            }
        }
    }
    Ok(())
}

/// The fields every connecting application has: its host, where to, and when.
fn check_client_of(s: &Scenario, names: &Names, base: &FieldPath, host: &str, to: &str, at: Option<DurSpec>) -> Result<(), Invalid> {
    names.host(host, base.key("host"))?;
    resolve_to(s, to).map_err(|m| Invalid::new(base.key("to"), m))?;
    check_at(s, at, base.key("at"))
}

/// What a script name stands for.
#[derive(Clone, Copy)]
enum Fd {
    Socket,
    Epoll,
}

/// The names a script has created so far, with the step that created each.
struct Fds<'a> {
    fds: BTreeMap<&'a str, (Fd, usize)>,
}

impl<'a> Fds<'a> {
    fn create(&mut self, name: &'a str, fd: Fd, step: usize, path: FieldPath) -> Result<(), Invalid> {
        if let Some((_, first)) = self.fds.get(name) {
            return Err(Invalid::new(path, format!("`{name}` was already created at script[{first}]")));
        }
        self.fds.insert(name, (fd, step));
        Ok(())
    }

    fn names_of(&self, want: fn(Fd) -> bool) -> Vec<String> {
        self.fds.iter().filter(|(_, (fd, _))| want(*fd)).map(|(n, _)| n.to_string()).collect()
    }

    fn socket(&self, name: &str, path: FieldPath) -> Result<(), Invalid> {
        match self.fds.get(name) {
            Some((Fd::Socket, _)) => Ok(()),
            Some((Fd::Epoll, _)) => {
                Err(Invalid::new(path, format!("`{name}` is an epoll instance, not a socket")))
            }
            None => {
                let known = self.names_of(|fd| matches!(fd, Fd::Socket));
                Err(Invalid::new(
                    path,
                    format!(
                        "no socket named `{name}` created by an earlier `socket` or `accept` step ({})",
                        listing("sockets", &known)
                    ),
                ))
            }
        }
    }

    fn epoll(&self, name: &str, path: FieldPath) -> Result<(), Invalid> {
        match self.fds.get(name) {
            Some((Fd::Epoll, _)) => Ok(()),
            Some((Fd::Socket, _)) => {
                Err(Invalid::new(path, format!("`{name}` is a socket, not an epoll instance")))
            }
            None => {
                let known = self.names_of(|fd| matches!(fd, Fd::Epoll));
                Err(Invalid::new(
                    path,
                    format!(
                        "no epoll instance named `{name}` created by an earlier `epoll_create` ({})",
                        listing("epolls", &known)
                    ),
                ))
            }
        }
    }
}

/// Event names: `POLLIN`… (or `EPOLLIN`…), and for epoll_ctl also the `EPOLLET`/`EPOLLONESHOT` flags.
fn check_events(events: &[String], epoll_flags: bool, base: &FieldPath) -> Result<(), Invalid> {
    for (k, name) in events.iter().enumerate() {
        let flag = epoll_flags && (name == "EPOLLET" || name == "EPOLLONESHOT");
        if !flag && PollMask::from_name(name).is_none() {
            let mut known: Vec<&str> = PollMask::NAMED.iter().map(|(_, n)| *n).collect();
            if epoll_flags {
                known.extend(["EPOLLET", "EPOLLONESHOT"]);
            }
            return Err(Invalid::new(
                base.key("events").index(k),
                format!("unknown event `{name}` (expected one of {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The bytes of a `send` or `sendto` step: `len` or `data`, and a NULL `buf` only with `len`.
fn check_payload(op: &str, len: Option<u32>, data: Option<&str>, buf: UserBuf, base: &FieldPath) -> Result<(), Invalid> {
    match (len, data) {
        (Some(_), Some(_)) => Err(Invalid::new(base.key("data"), "give `len` or `data`, not both")),
        (None, None) => Err(Invalid::new(base.key("len"), format!("`{op}` needs `len` or `data`"))),
        (None, Some(_)) if buf == UserBuf::Null => {
            Err(Invalid::new(base.key("data"), "a NULL `buf` has no `data`: give `len`"))
        }
        _ => Ok(()),
    }
}

fn check_script(s: &Scenario, names: &Names) -> Result<(), Invalid> {
    let mut fds = Fds { fds: BTreeMap::new() };
    for (i, step) in s.script.iter().enumerate() {
        let base = FieldPath::root().key("script").index(i);
        let at = |f: &str| base.key(f);
        match step {
            Step::Socket { host, sock, .. } => {
                names.host(host, at("host"))?;
                fds.create(sock, Fd::Socket, i, at("sock"))?;
            }
            Step::Accept { sock, new } => {
                fds.socket(sock, at("sock"))?;
                fds.create(new, Fd::Socket, i, at("new"))?;
            }
            Step::Connect { sock, to } => {
                fds.socket(sock, at("sock"))?;
                resolve_to(s, to).map_err(|m| Invalid::new(at("to"), m))?;
            }
            Step::Send { sock, len, data, buf, .. } => {
                fds.socket(sock, at("sock"))?;
                check_payload(step.op(), *len, data.as_deref(), *buf, &base)?;
            }
            Step::Sendto { sock, to, len, data, buf, .. } => {
                fds.socket(sock, at("sock"))?;
                resolve_to(s, to).map_err(|m| Invalid::new(at("to"), m))?;
                check_payload(step.op(), *len, data.as_deref(), *buf, &base)?;
            }
            Step::Setsockopt { sock, opt, value } => {
                fds.socket(sock, at("sock"))?;
                check_opt(*opt, value, at("value"))?;
            }
            Step::Poll { sock, events, .. } => {
                fds.socket(sock, at("sock"))?;
                check_events(events, false, &base)?;
            }
            Step::EpollCreate { ep } => fds.create(ep, Fd::Epoll, i, at("ep"))?,
            Step::EpollCtl { ep, sock, events, .. } => {
                fds.epoll(ep, at("ep"))?;
                fds.socket(sock, at("sock"))?;
                check_events(events, true, &base)?;
            }
            Step::EpollWait { ep, .. } => fds.epoll(ep, at("ep"))?,
            Step::Kevent { sock, filter, lowat } => {
                fds.socket(sock, at("sock"))?;
                // NOTE_LOWAT is a threshold on `data` of the read and write filters only
                // (kqueue(2)); EVFILT_EMPTY takes no threshold.
                if *filter == KqFilter::EVFILT_EMPTY && lowat.is_some() {
                    return Err(Invalid::new(
                        at("lowat"),
                        "`lowat` (NOTE_LOWAT) applies to EVFILT_READ and EVFILT_WRITE, not EVFILT_EMPTY",
                    ));
                }
            }
            Step::Fault { kind, link, host, drop, direction } => {
                let target = FaultTarget {
                    kind: *kind,
                    link: link.as_deref(),
                    host: host.as_deref(),
                    drop: *drop,
                    direction: *direction,
                };
                check_fault(&target, names, &base)?;
            }
            Step::Sleep { .. } => {}
            Step::Bind { sock, .. }
            | Step::Listen { sock, .. }
            | Step::Recv { sock, .. }
            | Step::Shutdown { sock, .. }
            | Step::Close { sock }
            | Step::Getsockopt { sock, .. }
            | Step::Ioctl { sock, .. } => fds.socket(sock, at("sock"))?,
        }
    }
    if let Some(obs) = &s.observe {
        fds.socket(obs, FieldPath::root().key("observe"))?;
    }
    Ok(())
}
