//! The readiness table's rows (`docs/readiness-conditions.md`): the 22 condition ids,
//! the recipe scenario that reaches each (`models/readiness/<id>.toml`), the observation steps
//! appended after a recipe, and the turning of those observations into a row.
//!
//! The simulator and the real-kernel harness both run `recipe(id).script` followed by
//! [`observation_steps`], and both build their row with [`row_from_observations`]: the two
//! columns of `tcpsim table --kernel` are therefore built by one function and differ only where
//! the observations differ.

use super::types::{EpollOp, HostSpec, KqFilter, LinkKind, MsgFlag, Observation, Scenario, SockOpt, Step, UserBuf};
use super::units::DurSpec;
use crate::errno::Errno;
use crate::socket::view::PollMask;
use crate::tcp::profile::Os;
use crate::time::Dur;
use serde::{Deserialize, Serialize};

/// The condition ids, in the spec's order.
pub const CONDITIONS: [&str; 22] = [
    "listen-empty",
    "listen-pending",
    "connect-in-progress",
    "connect-refused",
    "connect-timeout",
    "established-idle",
    "established-data",
    "sndbuf-full",
    "peer-fin",
    "peer-fin-with-data",
    "peer-closed",
    "local-shut-wr",
    "both-shut-wr",
    "local-shut-rd",
    "rst-received",
    "rst-unread-close",
    "write-after-peer-close",
    "retrans-timeout",
    "keepalive-timeout",
    "idle-partition-no-keepalive",
    "send-during-partition",
    "peer-reboot",
];

/// The recipe files, compiled in so that the binary works from any directory.
const RECIPES: [(&str, &str); 22] = [
    ("listen-empty", include_str!("../../models/readiness/listen-empty.toml")),
    ("listen-pending", include_str!("../../models/readiness/listen-pending.toml")),
    ("connect-in-progress", include_str!("../../models/readiness/connect-in-progress.toml")),
    ("connect-refused", include_str!("../../models/readiness/connect-refused.toml")),
    ("connect-timeout", include_str!("../../models/readiness/connect-timeout.toml")),
    ("established-idle", include_str!("../../models/readiness/established-idle.toml")),
    ("established-data", include_str!("../../models/readiness/established-data.toml")),
    ("sndbuf-full", include_str!("../../models/readiness/sndbuf-full.toml")),
    ("peer-fin", include_str!("../../models/readiness/peer-fin.toml")),
    ("peer-fin-with-data", include_str!("../../models/readiness/peer-fin-with-data.toml")),
    ("peer-closed", include_str!("../../models/readiness/peer-closed.toml")),
    ("local-shut-wr", include_str!("../../models/readiness/local-shut-wr.toml")),
    ("both-shut-wr", include_str!("../../models/readiness/both-shut-wr.toml")),
    ("local-shut-rd", include_str!("../../models/readiness/local-shut-rd.toml")),
    ("rst-received", include_str!("../../models/readiness/rst-received.toml")),
    ("rst-unread-close", include_str!("../../models/readiness/rst-unread-close.toml")),
    ("write-after-peer-close", include_str!("../../models/readiness/write-after-peer-close.toml")),
    ("retrans-timeout", include_str!("../../models/readiness/retrans-timeout.toml")),
    ("keepalive-timeout", include_str!("../../models/readiness/keepalive-timeout.toml")),
    ("idle-partition-no-keepalive", include_str!("../../models/readiness/idle-partition-no-keepalive.toml")),
    ("send-during-partition", include_str!("../../models/readiness/send-during-partition.toml")),
    ("peer-reboot", include_str!("../../models/readiness/peer-reboot.toml")),
];

/// The interest set of every readiness observation (the spec's `poll` column).
pub const OBSERVE_EVENTS: [&str; 4] = ["POLLIN", "POLLPRI", "POLLOUT", "POLLRDHUP"];

/// The flags a row may show, in the spec's order; others (`POLLRDNORM`, …) are not requested
/// and would only appear if a harness leaked them, so rows drop them.
const ROW_FLAGS: [&str; 7] = ["POLLIN", "POLLPRI", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP", "POLLNVAL"];

/// Name of the epoll instance the observation steps create.
pub const OBSERVE_EP: &str = "observe_ep";

/// Number of steps [`observation_steps`] returns (the seven columns; epoll takes three calls).
pub const OBSERVATION_STEP_COUNT: usize = 9;

/// The ops of the Linux observation steps, in order.
const LINUX_OPS: [&str; OBSERVATION_STEP_COUNT] =
    ["poll", "epoll_create", "epoll_ctl", "epoll_wait", "recv", "poll", "getsockopt", "send", "poll"];

/// The ops of the FreeBSD observation steps: kevent on EVFILT_READ and EVFILT_WRITE takes the
/// place of epoll, which FreeBSD does not have.
const FREEBSD_OPS: [&str; 8] = ["poll", "kevent", "kevent", "recv", "poll", "getsockopt", "send", "poll"];

/// The ops of `os`'s observation steps.
fn observation_ops(os: Os) -> &'static [&'static str] {
    match os {
        Os::Linux => &LINUX_OPS,
        Os::FreeBsd => &FREEBSD_OPS,
    }
}

/// Number of steps [`observation_steps_for`] returns for `os`.
pub fn observation_step_count(os: Os) -> usize {
    observation_ops(os).len()
}

/// Why a recipe or an observation log could not be turned into a row.
#[derive(Debug, thiserror::Error)]
pub enum ReadinessError {
    #[error("unknown readiness condition `{0}` (known: {known})", known = CONDITIONS.join(", "))]
    UnknownCondition(String),
    #[error("models/readiness/{id}.toml: {msg}")]
    BadRecipe { id: String, msg: String },
    #[error("condition `{id}`: observation log has {got} entries, the readiness observations need the last {need}")]
    TooFewObservations { id: String, got: usize, need: usize },
    #[error("condition `{id}`: observation {index} is `{got}`, expected `{expected}`")]
    UnexpectedOp { id: String, index: usize, got: String, expected: &'static str },
    #[error("condition `{id}`: observation {index} (`kevent`) failed: {errno}")]
    KeventFailed { id: String, index: usize, errno: String },
}

/// One row of the readiness table, in the spec's JSON shape and spelling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessRow {
    pub condition: String,
    pub poll: Vec<String>,
    pub epoll: Vec<String>,
    /// `"1 (data)"`, `"0 (eof)"` or `"-1 ENAME"`.
    pub peek: String,
    pub poll_after_peek: Vec<String>,
    /// `"0"` or the errno name.
    pub so_error_after_peek: String,
    /// The count (`"1"`) or `"-1 ENAME"`.
    pub send: String,
    pub poll_after_send: Vec<String>,
    /// `send-during-partition` only: what the first 100-byte send returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_send: Option<String>,
    /// FreeBSD rows only: EVFILT_READ and EVFILT_WRITE in place of `epoll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kqueue: Option<KqueueCells>,
    /// The readiness rules that explain the row (filled by the simulator; empty for the kernel).
    #[serde(default)]
    pub rules: Vec<String>,
}

/// What kevent(2) returned for the observed socket, one filter each: the event when the filter
/// fired, `None` (JSON `null`) when it did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KqueueCells {
    pub read: Option<KeventCell>,
    pub write: Option<KeventCell>,
}

/// One fired kevent: `data` (bytes readable, listen-queue length, or send space), `flags` by
/// name (`["EV_EOF"]` or `[]`), `fflags` the pending error's name with EV_EOF, else `0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeventCell {
    pub data: i64,
    pub flags: Vec<String>,
    pub fflags: serde_json::Value,
}

impl KeventCell {
    /// `data 1`, `data 0, EV_EOF, fflags ECONNRESET`.
    pub fn text(&self) -> String {
        let mut s = format!("data {}", self.data);
        for f in &self.flags {
            s.push_str(&format!(", {f}"));
        }
        match &self.fflags {
            serde_json::Value::String(e) => s.push_str(&format!(", fflags {e}")),
            serde_json::Value::Number(n) if n.as_i64() != Some(0) => s.push_str(&format!(", fflags {n}")),
            _ => {}
        }
        s
    }
}

/// A filter's cell in text: the event, or `not fired`.
pub fn kevent_text(cell: &Option<KeventCell>) -> String {
    cell.as_ref().map_or_else(|| "not fired".to_string(), KeventCell::text)
}

impl ReadinessRow {
    /// The seven columns (plus `first_send`) as `(name, value)` text, for cell-by-cell comparison.
    pub fn cells(&self) -> Vec<(&'static str, String)> {
        let mask = |m: &Vec<String>| format!("[{}]", m.join(", "));
        let mut cells = vec![
            ("poll", mask(&self.poll)),
            ("epoll", mask(&self.epoll)),
            ("peek", self.peek.clone()),
            ("poll_after_peek", mask(&self.poll_after_peek)),
            ("so_error_after_peek", self.so_error_after_peek.clone()),
            ("send", self.send.clone()),
            ("poll_after_send", mask(&self.poll_after_send)),
        ];
        if let Some(kq) = &self.kqueue {
            cells.insert(2, ("kqueue_write", kevent_text(&kq.write)));
            cells.insert(2, ("kqueue_read", kevent_text(&kq.read)));
        }
        if let Some(f) = &self.first_send {
            cells.push(("first_send", f.clone()));
        }
        cells
    }
}

/// The names of the cells where two rows of the same condition differ (for `tcpsim table
/// --kernel`, which marks them).
pub fn differing_cells(a: &ReadinessRow, b: &ReadinessRow) -> Vec<&'static str> {
    let (ca, cb) = (a.cells(), b.cells());
    let get = |cells: &[(&'static str, String)], n: &str| {
        cells.iter().find(|(m, _)| *m == n).map(|(_, v)| v.clone())
    };
    // Every column either row has (only `first_send` is optional), in the table's order.
    let mut names: Vec<&'static str> = ca.iter().map(|(n, _)| *n).collect();
    names.extend(cb.iter().map(|(n, _)| *n).filter(|n| !names.contains(n)).collect::<Vec<_>>());
    names.into_iter().filter(|n| get(&ca, n) != get(&cb, n)).collect()
}

/// The recipe scenario of a condition, parsed from its embedded `models/readiness/<id>.toml`.
pub fn recipe(id: &str) -> Result<Scenario, ReadinessError> {
    let text = RECIPES
        .iter()
        .find(|(n, _)| *n == id)
        .map(|(_, t)| *t)
        .ok_or_else(|| ReadinessError::UnknownCondition(id.to_string()))?;
    toml::from_str::<Scenario>(text)
        .map_err(|e| ReadinessError::BadRecipe { id: id.to_string(), msg: e.to_string() })
}

/// The recipe with the observation steps appended: the exact script both columns run.
pub fn observed_recipe(id: &str) -> Result<Scenario, ReadinessError> {
    observed_recipe_for(Os::Linux, id)
}

/// The recipe with `os`'s observation steps ([`observation_steps_for`]) appended.
pub fn observed_recipe_for(os: Os, id: &str) -> Result<Scenario, ReadinessError> {
    let mut sc = recipe(id)?;
    let sock = sc.observe.clone().ok_or_else(|| ReadinessError::BadRecipe {
        id: id.to_string(),
        msg: "no `observe` socket".to_string(),
    })?;
    sc.script.extend(observation_steps_for(os, &sock));
    Ok(sc)
}

/// The address a probe on loopback uses (`tcpsim table --link loopback`).
pub const LOOPBACK_ADDR: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A recipe moved onto one host's loopback: its hosts become one host `local` at
/// 127.0.0.1 (the first host's kernel and sysctls), every `host` and `to` naming one of them
/// names `local`, and its link becomes that host's `lo` (same name, so faults still find it;
/// no serialization rate, one direction). Faults that act on a host act on the only one.
pub fn on_loopback(sc: &Scenario) -> Result<Scenario, ReadinessError> {
    let bad = |msg: String| ReadinessError::BadRecipe { id: sc.name.clone(), msg };
    let names: Vec<String> = sc.hosts.iter().map(|h| h.name.clone()).collect();
    let mut v = serde_json::to_value(sc).map_err(|e| bad(e.to_string()))?;
    rename_hosts(&mut v, &names);
    let mut out: Scenario = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
    let first = sc.hosts.first().ok_or_else(|| bad("no host".into()))?;
    out.hosts = vec![HostSpec { name: "local".into(), addr: LOOPBACK_ADDR, ..first.clone() }];
    if out.links.len() > 1 {
        return Err(bad("more than one link: a host has one loopback".into()));
    }
    for l in &mut out.links {
        l.kind = LinkKind::Lo;
        (l.a, l.b) = ("local".into(), "local".into());
        l.bandwidth = None;
        l.mtu = None;
        l.b_to_a = None;
        if let Some(d) = &mut l.a_to_b {
            d.bandwidth = None;
        }
    }
    Ok(out)
}

/// Rewrites every `host` and `to` value that names a host in `names` (`"server"`,
/// `"server:8080"`) to name `local`.
fn rename_hosts(v: &mut serde_json::Value, names: &[String]) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), x) {
                    ("host" | "to", serde_json::Value::String(s)) => {
                        let (name, port) = s.split_once(':').map_or((s.as_str(), None), |(n, p)| (n, Some(p)));
                        if names.iter().any(|n| n == name) {
                            *s = port.map_or("local".to_string(), |p| format!("local:{p}"));
                        }
                    }
                    (_, x) => rename_hosts(x, names),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rename_hosts(x, names)),
        _ => {}
    }
}

/// The readiness observations of `sock`, in the table's column order: poll, epoll (create, add,
/// wait), `recv` 1 byte `MSG_PEEK|MSG_DONTWAIT`, poll, `SO_ERROR`, `send` "z"
/// `MSG_DONTWAIT|MSG_NOSIGNAL`, poll. Every poll/epoll_wait has timeout 0.
pub fn observation_steps(sock: &str) -> Vec<Step> {
    observation_steps_for(Os::Linux, sock)
}

/// `os`'s readiness observations of `sock`. Linux: [`observation_steps`]. FreeBSD, which has no
/// epoll: kevent EVFILT_READ and kevent EVFILT_WRITE (no NOTE_LOWAT) in its place.
pub fn observation_steps_for(os: Os, sock: &str) -> Vec<Step> {
    let events = || OBSERVE_EVENTS.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let zero = || Some(DurSpec(Dur(0)));
    let poll = || Step::Poll { sock: sock.to_string(), events: events(), timeout: zero() };
    let readiness_api = match os {
        Os::Linux => vec![
            Step::EpollCreate { ep: OBSERVE_EP.to_string() },
            Step::EpollCtl {
                ep: OBSERVE_EP.to_string(),
                sock: sock.to_string(),
                action: EpollOp::Add,
                events: OBSERVE_EVENTS.iter().map(|s| format!("E{s}")).collect(),
            },
            Step::EpollWait { ep: OBSERVE_EP.to_string(), timeout: zero(), max: 1 },
        ],
        Os::FreeBsd => [KqFilter::EVFILT_READ, KqFilter::EVFILT_WRITE]
            .into_iter()
            .map(|filter| Step::Kevent { sock: sock.to_string(), filter, lowat: None })
            .collect(),
    };
    let mut steps = vec![poll()];
    steps.extend(readiness_api);
    steps.extend([
        Step::Recv { sock: sock.to_string(), len: 1, buf: UserBuf::Mapped, flags: vec![MsgFlag::MSG_PEEK, MsgFlag::MSG_DONTWAIT] },
        poll(),
        Step::Getsockopt { sock: sock.to_string(), opt: SockOpt::SO_ERROR },
        Step::Send {
            sock: sock.to_string(),
            len: None,
            data: Some("z".to_string()),
            buf: UserBuf::Mapped,
            flags: vec![MsgFlag::MSG_DONTWAIT, MsgFlag::MSG_NOSIGNAL],
            until_error: false,
        },
        poll(),
    ]);
    steps
}

/// Builds the row of condition `id` from a run's observation log: the last
/// [`OBSERVATION_STEP_COUNT`] entries are the observation steps; for `send-during-partition` the
/// first `send` of the script gives `first_send`.
pub fn row_from_observations(id: &str, obs: &[Observation]) -> Result<ReadinessRow, ReadinessError> {
    row_from_observations_for(Os::Linux, id, obs)
}

/// [`row_from_observations`] for a run of `os`'s observation steps. A FreeBSD row has no
/// `epoll` (left empty) and has `kqueue`.
pub fn row_from_observations_for(os: Os, id: &str, obs: &[Observation]) -> Result<ReadinessRow, ReadinessError> {
    let ops = observation_ops(os);
    if obs.len() < ops.len() {
        return Err(ReadinessError::TooFewObservations { id: id.to_string(), got: obs.len(), need: ops.len() });
    }
    let (script, tail) = obs.split_at(obs.len() - ops.len());
    for (i, (o, want)) in tail.iter().zip(ops).enumerate() {
        if o.op != *want {
            return Err(ReadinessError::UnexpectedOp {
                id: id.to_string(),
                index: script.len() + i,
                got: o.op.clone(),
                expected: want,
            });
        }
    }
    let first_send = (id == "send-during-partition")
        .then(|| script.iter().find(|o| o.op == "send").map(count_or_errno))
        .flatten();
    // The columns after the readiness API's calls: peek, poll, SO_ERROR, send, poll.
    let rest = &tail[ops.len() - 5..];
    let (epoll, kqueue) = match os {
        Os::Linux => (mask_names(&tail[3]), None),
        Os::FreeBsd => {
            let cell = |k: usize| kevent_cell(id, script.len() + k, &tail[k]);
            (Vec::new(), Some(KqueueCells { read: cell(1)?, write: cell(2)? }))
        }
    };
    Ok(ReadinessRow {
        condition: id.to_string(),
        poll: mask_names(&tail[0]),
        epoll,
        peek: peek_text(&rest[0]),
        poll_after_peek: mask_names(&rest[1]),
        so_error_after_peek: so_error_text(&rest[2]),
        send: count_or_errno(&rest[3]),
        poll_after_send: mask_names(&rest[4]),
        first_send,
        kqueue,
        rules: Vec::new(),
    })
}

/// A kevent observation as a cell: `None` when the filter did not fire; the event's
/// `{data, flags, fflags}` (as the script runner records it) when it did.
fn kevent_cell(id: &str, index: usize, o: &Observation) -> Result<Option<KeventCell>, ReadinessError> {
    if let Some(e) = o.errno {
        return Err(ReadinessError::KeventFailed { id: id.to_string(), index, errno: e.to_string() });
    }
    if o.events.as_ref().is_none_or(|e| e.is_empty()) {
        return Ok(None);
    }
    let bad = |msg: &str| ReadinessError::KeventFailed { id: id.to_string(), index, errno: msg.to_string() };
    let v = o.value.as_ref().ok_or_else(|| bad("fired without `value`"))?;
    serde_json::from_value::<KeventCell>(v.clone()).map(Some).map_err(|e| bad(&format!("bad `value`: {e}")))
}

/// The reported flags, restricted to the table's and in its order. Accepts `EPOLL*` spellings.
fn mask_names(o: &Observation) -> Vec<String> {
    let mut mask = PollMask::EMPTY;
    for n in o.events.iter().flatten() {
        if let Some(m) = PollMask::from_name(n) {
            mask |= m;
        }
    }
    mask.names().into_iter().filter(|n| ROW_FLAGS.contains(n)).map(str::to_string).collect()
}

/// `-1 ENAME` for a failed call (`-1 E?` if the errno is missing), else the return value.
fn count_or_errno(o: &Observation) -> String {
    match (o.ret, o.errno) {
        (_, Some(e)) => format!("-1 {e}"),
        (Some(r), None) if r < 0 => "-1 E?".to_string(),
        (Some(r), None) => r.to_string(),
        (None, None) => "?".to_string(),
    }
}

/// The spec's spelling of a peek: `"1 (data)"`, `"0 (eof)"` or `"-1 ENAME"`.
fn peek_text(o: &Observation) -> String {
    match (o.ret, o.errno) {
        (Some(0), None) => "0 (eof)".to_string(),
        (Some(n), None) if n > 0 => format!("{n} (data)"),
        _ => count_or_errno(o),
    }
}

/// `SO_ERROR`'s value: `"0"` or the errno name. The value may be logged as the name or the
/// number (the kernel harness logs the name; a number is mapped through [`Errno::from_code`]).
fn so_error_text(o: &Observation) -> String {
    if let Some(e) = o.errno {
        return format!("-1 {e}");
    }
    match &o.value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(0) => "0".to_string(),
            Some(c) => i32::try_from(c)
                .ok()
                .and_then(Errno::from_code)
                .map_or_else(|| format!("errno {c}"), |e| e.name().to_string()),
            None => n.to_string(),
        },
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ob(op: &str) -> Observation {
        Observation { op: op.to_string(), ..Default::default() }
    }

    fn with_events(op: &str, ev: &[&str]) -> Observation {
        Observation { events: Some(ev.iter().map(|s| s.to_string()).collect()), ret: Some(1), ..ob(op) }
    }

    #[test]
    fn every_recipe_parses_and_names_an_observed_socket() {
        for id in CONDITIONS {
            let sc = recipe(id).unwrap_or_else(|e| panic!("{e}"));
            let sock = sc.observe.as_deref().unwrap_or_else(|| panic!("{id}: no observe"));
            assert!(
                sc.script.iter().any(
                    |s| matches!(s, Step::Socket { sock: n, .. } | Step::Accept { new: n, .. } if n == sock)
                ),
                "{id}: observed socket `{sock}` is never created"
            );
            assert_eq!(sc.hosts.len(), 2, "{id}");
            assert_eq!(observed_recipe(id).unwrap().script.len(), sc.script.len() + OBSERVATION_STEP_COUNT);
        }
        assert!(matches!(recipe("no-such-row"), Err(ReadinessError::UnknownCondition(_))));
    }

    #[test]
    fn observation_steps_are_the_seven_columns_in_order() {
        let ops: Vec<_> = observation_steps("c").iter().map(Step::op).collect();
        assert_eq!(
            ops,
            ["poll", "epoll_create", "epoll_ctl", "epoll_wait", "recv", "poll", "getsockopt", "send", "poll"]
        );
    }

    #[test]
    fn row_uses_the_spec_spelling() {
        let mut log = vec![Observation { op: "send".into(), ret: Some(100), ..Default::default() }];
        log.push(with_events("poll", &["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"]));
        log.push(ob("epoll_create"));
        log.push(ob("epoll_ctl"));
        log.push(with_events("epoll_wait", &["EPOLLIN", "EPOLLHUP", "EPOLLRDNORM"]));
        log.push(Observation { ret: Some(-1), errno: Some(Errno::ECONNRESET), ..ob("recv") });
        log.push(with_events("poll", &["POLLIN"]));
        log.push(Observation { ret: Some(0), value: Some(serde_json::json!(32)), ..ob("getsockopt") });
        log.push(Observation { ret: Some(-1), errno: Some(Errno::EPIPE), ..ob("send") });
        log.push(with_events("poll", &[]));
        let row = row_from_observations("send-during-partition", &log).unwrap();
        assert_eq!(row.poll, ["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"]);
        assert_eq!(row.epoll, ["POLLIN", "POLLHUP"]);
        assert_eq!(row.peek, "-1 ECONNRESET");
        assert_eq!(row.so_error_after_peek, "EPIPE");
        assert_eq!(row.send, "-1 EPIPE");
        assert!(row.poll_after_send.is_empty());
        assert_eq!(row.first_send.as_deref(), Some("100"));
        assert_eq!(row_from_observations("peer-fin", &log).unwrap().first_send, None);

        log[5] = Observation { ret: Some(0), ..ob("recv") };
        log[7] = Observation { ret: Some(0), value: Some(serde_json::json!("0")), ..ob("getsockopt") };
        let row = row_from_observations("peer-fin", &log).unwrap();
        assert_eq!((row.peek.as_str(), row.so_error_after_peek.as_str()), ("0 (eof)", "0"));
    }

    #[test]
    fn differing_cells_names_each_difference_once() {
        let a = ReadinessRow { poll: vec!["POLLOUT".into()], send: "1".into(), ..Default::default() };
        let mut b = a.clone();
        assert!(differing_cells(&a, &b).is_empty());
        b.send = "-1 EPIPE".into();
        b.first_send = Some("100".into());
        assert_eq!(differing_cells(&a, &b), ["send", "first_send"]);
    }

    #[test]
    fn freebsd_observation_steps_use_kevent_in_place_of_epoll() {
        let ops: Vec<_> = observation_steps_for(Os::FreeBsd, "c").iter().map(Step::op).collect();
        assert_eq!(ops, FREEBSD_OPS);
        assert_eq!(observation_step_count(Os::FreeBsd), 8);
        assert!(matches!(
            &observation_steps_for(Os::FreeBsd, "c")[2],
            Step::Kevent { filter: KqFilter::EVFILT_WRITE, lowat: None, .. }
        ));
        // The Linux steps are unchanged by the OS-aware builder.
        let linux: Vec<_> = observation_steps("c").iter().map(Step::op).collect();
        assert_eq!(linux, LINUX_OPS);
    }

    #[test]
    fn freebsd_row_takes_kqueue_cells_from_the_kevent_observations() {
        let kev = |fired: Option<serde_json::Value>| Observation {
            events: Some(fired.iter().map(|_| "EVFILT_READ".to_string()).collect()),
            value: fired,
            ret: Some(0),
            ..ob("kevent")
        };
        let log = vec![
            with_events("poll", &["POLLIN", "POLLHUP"]),
            kev(Some(serde_json::json!({ "data": 0, "flags": ["EV_EOF"], "fflags": "ECONNRESET" }))),
            kev(None),
            Observation { ret: Some(-1), errno: Some(Errno::ECONNRESET), ..ob("recv") },
            with_events("poll", &["POLLIN", "POLLHUP"]),
            Observation { ret: Some(0), value: Some(serde_json::json!("0")), ..ob("getsockopt") },
            Observation { ret: Some(-1), errno: Some(Errno::EPIPE), ..ob("send") },
            with_events("poll", &["POLLIN", "POLLHUP"]),
        ];
        let row = row_from_observations_for(Os::FreeBsd, "rst-received", &log).unwrap();
        assert!(row.epoll.is_empty());
        let kq = row.kqueue.clone().unwrap();
        assert_eq!(kevent_text(&kq.read), "data 0, EV_EOF, fflags ECONNRESET");
        assert_eq!(kq.write, None);
        assert_eq!(row.peek, "-1 ECONNRESET");
        assert_eq!(row.send, "-1 EPIPE");
        let names: Vec<_> = row.cells().iter().map(|(n, _)| *n).collect();
        assert_eq!(&names[..4], ["poll", "epoll", "kqueue_read", "kqueue_write"]);
        // A Linux log is not a FreeBSD one.
        assert!(matches!(
            row_from_observations_for(Os::Linux, "rst-received", &log),
            Err(ReadinessError::TooFewObservations { .. })
        ));
    }

    #[test]
    fn a_log_that_is_not_an_observation_run_is_refused() {
        let short = vec![ob("poll"); 3];
        assert!(matches!(row_from_observations("x", &short), Err(ReadinessError::TooFewObservations { .. })));
        let wrong = vec![ob("poll"); OBSERVATION_STEP_COUNT];
        assert!(matches!(
            row_from_observations("x", &wrong),
            Err(ReadinessError::UnexpectedOp { index: 1, .. })
        ));
    }
}
