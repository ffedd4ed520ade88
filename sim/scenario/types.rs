//! The scenario file's types: what a person writes in `models/*.toml`.
//!
//! The same types drive the simulator and the real-kernel capture harness, so that one file
//! describes one experiment for both. The JSON Schema (`tcpsim schema`) is generated from them.

use crate::errno::Errno;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

use super::draw::{CountDraw, DurDraw, ProbDraw};
pub use super::protocols::{HeartbeatSpec, MessageSinkSpec, MessengerSpec, MsgProtocol};
use super::units::{DurSpec, RateSpec};
pub use crate::engine::fault::{Direction, FaultAction, FaultKind};
pub use crate::engine::middlebox::FilterMatch;
pub use crate::engine::middlebox::OnExpired;
pub use crate::tcp::uapi::{IoctlReq, MsgFlag, OptValue, ShutHow, SockOpt, UserBuf};

/// One experiment: hosts joined by links, faults on a schedule, applications and/or a script.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How long the simulation runs, e.g. `"30s"`.
    pub duration: DurSpec,
    /// The default seed (overridden by `--seed`).
    #[serde(default)]
    pub seed: u64,
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    #[serde(default, rename = "link")]
    pub links: Vec<LinkSpec>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    #[serde(default, rename = "middlebox")]
    pub middleboxes: Vec<MiddleboxSpec>,
    #[serde(default, rename = "app")]
    pub apps: Vec<AppSpec>,
    /// Exact syscalls, run in order in simulated time (blocking calls block the script).
    #[serde(default)]
    pub script: Vec<Step>,
    /// For readiness recipes (`models/readiness/`): the socket the readiness table observes
    /// once the script has run (the observation steps are appended by the table builder).
    #[serde(default)]
    pub observe: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    pub addr: IpAddr,
    /// Kernel profile name (a file in `models/kernels/`); default `linux-6.18`.
    #[serde(default)]
    pub kernel: Option<String>,
    /// Overrides of the profile's fields, by name, e.g. `tcp_keepalive_time_s = 10`;
    /// `timers = "exact"` (with `hz = 1000`) fires timers at their textbook times instead
    /// of on jiffy ticks and timer-wheel buckets (`sim/tcp/jiffies.rs`).
    #[serde(default)]
    pub sysctl: BTreeMap<String, serde_json::Value>,
    /// The root qdisc this host sends through: `"pfifo"` (default: a packet leaves when
    /// sent) or `"fq"` (each socket's packets leave at the departure times TCP stamps at its
    /// pacing rate, and TCP Small Queues holds a writer at about two skbs in the qdisc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdisc: Option<crate::host::qdisc::Qdisc>,
}

/// Per-direction link properties; unset fields fall back to the link's own, then to defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkDirSpec {
    /// One-way propagation delay (default 0; `"5ms..50ms"`: drawn per run).
    pub delay: Option<DurDraw>,
    /// Serialization rate, e.g. `"100Mbit"` (default: unlimited).
    pub bandwidth: Option<RateSpec>,
    /// Queue length in packets before tail drop (default 1000).
    pub queue: Option<u32>,
    /// Probability in [0, 1] that a packet is lost (`"0.01..0.05"`: drawn per run).
    pub loss: Option<ProbDraw>,
    /// Probability in [0, 1] that a packet is duplicated (a range is drawn per run).
    pub duplicate: Option<ProbDraw>,
    /// Extra delay drawn uniformly from [0, jitter] per packet; packets may overtake each
    /// other (a range `"0..10ms"` sets the bound itself per run).
    pub jitter: Option<DurDraw>,
    /// Segments lost by their number, counting from 1 the TCP segments that reach this
    /// direction's wire (`[40]` one loss, `[40, 41, 42, 43]` a burst); `tcpsim capture` makes
    /// the same losses with an nft counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_nth: Option<Vec<u64>>,
    /// Every `drop_every`-th segment reaching this direction's wire is lost (counted as for
    /// `drop_nth`; at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_every: Option<u64>,
}

/// The device a link models.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A veth pair between two hosts (Ethernet, MTU 1500 unless set).
    #[default]
    Veth,
    /// A host's loopback device (`lo`): `a` and `b` name the same host, which reaches its own
    /// address over it; MTU 65536 unless set, no serialization delay.
    Lo,
}

impl LinkKind {
    /// The device's MTU when the scenario sets none (`ETH_DATA_LEN`; loopback's 64 KiB,
    /// drivers/net/loopback.c `loopback_setup`).
    pub const fn default_mtu(self) -> u32 {
        match self {
            LinkKind::Veth => 1500,
            LinkKind::Lo => 65536,
        }
    }
}

/// The MTUs a link may have: IPv4's minimum (68, RFC 791) to loopback's 64 KiB.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65536;

/// A point-to-point link between two hosts, or a host's loopback device.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub name: String,
    pub a: String,
    pub b: String,
    /// `veth` (default) or `lo`.
    #[serde(default, skip_serializing_if = "is_veth")]
    pub kind: LinkKind,
    /// The devices' MTU in bytes, 68..=65536 (default 1500 for veth, 65536 for lo): the
    /// MSS of connections over the link is MTU − 40.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    pub delay: Option<DurDraw>,
    pub bandwidth: Option<RateSpec>,
    pub queue: Option<u32>,
    pub loss: Option<ProbDraw>,
    pub duplicate: Option<ProbDraw>,
    pub jitter: Option<DurDraw>,
    /// Overrides for the direction a → b.
    pub a_to_b: Option<LinkDirSpec>,
    /// Overrides for the direction b → a.
    pub b_to_a: Option<LinkDirSpec>,
}

fn is_veth(k: &LinkKind) -> bool {
    *k == LinkKind::Veth
}

impl LinkSpec {
    /// The MTU the link's devices have.
    pub fn mtu(&self) -> u32 {
        self.mtu.unwrap_or(self.kind.default_mtu())
    }
}

/// A fault applied at a time (in `[[fault]]`) or at a point of the script (`op = "fault"`).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When, from the start of the run (`"10s..20s"`: drawn per run); absent inside a script.
    #[serde(default)]
    pub at: Option<DurDraw>,
    pub kind: FaultKind,
    /// Undoes the fault this long after it (heal, link_up, thaw, reboot, unfilter); a range
    /// is drawn per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lasts: Option<DurDraw>,
    /// How many times the fault happens, each at its own drawn `at` (`"0..3"`: drawn per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<CountDraw>,
    /// The link, for partition/heal/link_down/link_up/filter/unfilter.
    #[serde(default)]
    pub link: Option<String>,
    /// The host, for freeze/thaw/crash/reboot.
    #[serde(default)]
    pub host: Option<String>,
    /// For `filter`: what is dropped.
    #[serde(default)]
    pub drop: Option<FilterMatch>,
    /// For `filter`: which direction of the link.
    #[serde(default)]
    pub direction: Direction,
}

/// A NAT or stateful firewall on a link that forgets idle flows.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MiddleboxSpec {
    pub name: String,
    pub link: String,
    /// A flow idle this long is forgotten.
    pub idle_timeout: DurSpec,
    #[serde(default)]
    pub on_expired: OnExpired,
}

/// Long-running applications, for scenarios that are not exact syscall scripts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AppSpec {
    /// listen() on `port`, accept() every connection (unless `accept = false`) and read
    /// everything, optionally echoing it back.
    Server {
        host: String,
        port: u16,
        #[serde(default = "default_backlog")]
        backlog: i32,
        #[serde(default = "yes")]
        accept: bool,
        #[serde(default)]
        echo: bool,
        #[serde(default)]
        sockopts: BTreeMap<SockOpt, OptValue>,
    },
    /// `count` connections to `to` (`host:port`), starting at `at`, `interval` apart; each
    /// sends `bytes` derived bytes, then closes if `close`.
    Client {
        host: String,
        to: String,
        #[serde(default)]
        at: Option<DurSpec>,
        #[serde(default = "one")]
        count: u32,
        #[serde(default)]
        interval: Option<DurSpec>,
        #[serde(default)]
        bytes: u64,
        #[serde(default)]
        close: bool,
        #[serde(default)]
        sockopts: BTreeMap<SockOpt, OptValue>,
    },
    /// An `ab`-like load generator (Apache Bench, `ab -n requests -c concurrency`): at most
    /// `concurrency` connections open at once, a new one started when one finishes; each
    /// sends a request of `request_bytes` and reads the response until the server closes,
    /// then closes; with `keepalive`, until `response_bytes` (its Content-Length) arrived,
    /// then sends the next request on the same connection. A request not answered within `timeout` (ab's `-s`, 30 s)
    /// fails with ETIMEDOUT. The report gives ab's summary: completed and failed requests by
    /// errno, connect time and latency percentiles.
    Ab {
        host: String,
        to: String,
        #[serde(default)]
        at: Option<DurSpec>,
        requests: u32,
        #[serde(default = "one")]
        concurrency: u32,
        #[serde(default = "default_request_bytes")]
        request_bytes: u32,
        #[serde(default = "default_response_bytes")]
        response_bytes: u32,
        #[serde(default)]
        keepalive: bool,
        #[serde(default = "default_ab_timeout")]
        timeout: DurSpec,
        /// The time between ab's first connect() calls (default 0: all at once).
        #[serde(default)]
        start_interval: Option<DurSpec>,
        #[serde(default)]
        sockopts: BTreeMap<SockOpt, OptValue>,
    },
    /// A server of finite capacity: `workers` threads, each an epoll loop that accepts in
    /// batches of up to `accept_batch` (accept4 until EAGAIN when unset), reads a request,
    /// spends `service_time` on it (fixed, or drawn uniformly from [0, 2 × service_time]
    /// with `service = "uniform"`, from the app's own seeded stream), writes
    /// `response_bytes` and closes (or, with `keepalive`, waits for the next request). A
    /// busy worker accepts nothing: that is how the accept queue fills.
    HttpServer {
        host: String,
        port: u16,
        #[serde(default = "default_backlog")]
        backlog: i32,
        #[serde(default = "one")]
        workers: u32,
        #[serde(default)]
        service_time: Option<DurSpec>,
        #[serde(default)]
        service: ServiceDist,
        #[serde(default = "default_response_bytes")]
        response_bytes: u32,
        #[serde(default)]
        accept_batch: Option<u32>,
        #[serde(default)]
        keepalive: bool,
        #[serde(default)]
        sockopts: BTreeMap<SockOpt, OptValue>,
    },
    /// An application heartbeat over an idle connection.
    Heartbeat(HeartbeatSpec),
    /// Numbered messages, with or without resume after reconnect.
    Messenger(MessengerSpec),
    /// The receiving end of a messenger.
    MessageSink(MessageSinkSpec),
}

impl AppSpec {
    /// The host the application runs on.
    pub fn host(&self) -> &str {
        match self {
            AppSpec::Server { host, .. }
            | AppSpec::Client { host, .. }
            | AppSpec::Ab { host, .. }
            | AppSpec::HttpServer { host, .. } => host,
            AppSpec::Heartbeat(s) => &s.host,
            AppSpec::Messenger(s) => &s.host,
            AppSpec::MessageSink(s) => &s.host,
        }
    }
}

/// How a server's service time varies from request to request.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceDist {
    /// Every request takes `service_time`.
    #[default]
    Fixed,
    /// Uniform over [0, 2 × `service_time`] (the same mean).
    Uniform,
}

fn default_request_bytes() -> u32 {
    100
}
fn default_response_bytes() -> u32 {
    1000
}
fn default_ab_timeout() -> DurSpec {
    DurSpec(crate::time::Dur::from_secs(30))
}

fn default_backlog() -> i32 {
    128
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

impl FaultSpec {
    /// The fault this entry applies, by name (its time is the caller's).
    pub fn action(&self) -> FaultAction<'_> {
        FaultAction {
            kind: self.kind,
            link: self.link.as_deref(),
            host: self.host.as_deref(),
            drop: self.drop,
            direction: self.direction,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EpollOp {
    Add,
    Mod,
    Del,
}

/// A kqueue filter on a socket (FreeBSD sys/sys/event.h).
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum KqFilter {
    /// Readable: bytes available (a listener: completed connections), or EOF.
    EVFILT_READ,
    /// Writable: send-buffer space, or EOF.
    EVFILT_WRITE,
    /// The send buffer is empty.
    EVFILT_EMPTY,
}

/// One step of a script. Sockets are named; each is created on a host by `socket`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Socket {
        host: String,
        sock: String,
        #[serde(default)]
        nonblocking: bool,
    },
    Bind {
        sock: String,
        port: u16,
    },
    Listen {
        sock: String,
        backlog: i32,
    },
    /// `to` is `host:port` (a host name of the scenario, or an address).
    Connect {
        sock: String,
        to: String,
    },
    Accept {
        sock: String,
        /// Name given to the accepted socket.
        new: String,
    },
    /// Sends `len` derived bytes, or `data` as text.
    Send {
        sock: String,
        #[serde(default)]
        len: Option<u32>,
        #[serde(default)]
        data: Option<String>,
        /// `"NULL"`: the buffer pointer is NULL (the copy fails with EFAULT; with `len`).
        #[serde(default)]
        buf: UserBuf,
        #[serde(default)]
        flags: Vec<MsgFlag>,
        /// Repeat until the call fails (e.g. EAGAIN when the send buffer is full).
        #[serde(default)]
        until_error: bool,
    },
    /// sendto(): `send` with a destination, `to` as for `connect`. TCP reads it only with
    /// `flags = ["MSG_FASTOPEN"]`: on a new socket the call is then the connect, its SYN
    /// carrying the data when a Fast Open cookie for the destination is cached, else asking
    /// for one.
    Sendto {
        sock: String,
        to: String,
        #[serde(default)]
        len: Option<u32>,
        #[serde(default)]
        data: Option<String>,
        /// `"NULL"`: the buffer pointer is NULL (with `len`).
        #[serde(default)]
        buf: UserBuf,
        #[serde(default)]
        flags: Vec<MsgFlag>,
    },
    Recv {
        sock: String,
        len: u32,
        /// `"NULL"`: the buffer pointer is NULL (the copy fails with EFAULT).
        #[serde(default)]
        buf: UserBuf,
        #[serde(default)]
        flags: Vec<MsgFlag>,
    },
    Shutdown {
        sock: String,
        how: ShutHow,
    },
    Close {
        sock: String,
    },
    Setsockopt {
        sock: String,
        opt: SockOpt,
        value: OptValue,
    },
    Getsockopt {
        sock: String,
        opt: SockOpt,
    },
    Ioctl {
        sock: String,
        req: IoctlReq,
    },
    /// poll() on one socket; `events` by name (`POLLIN`, `POLLOUT`, …).
    Poll {
        sock: String,
        events: Vec<String>,
        #[serde(default)]
        timeout: Option<DurSpec>,
    },
    /// The instance belongs to the host of the first socket added to it. ENOSYS when no host of
    /// the run is Linux (FreeBSD has no epoll); `epoll_ctl` of a FreeBSD host's socket: ENOSYS.
    EpollCreate {
        ep: String,
    },
    /// `events` by name, with `EPOLLET` / `EPOLLONESHOT` where wanted.
    EpollCtl {
        ep: String,
        sock: String,
        action: EpollOp,
        #[serde(default)]
        events: Vec<String>,
    },
    EpollWait {
        ep: String,
        #[serde(default)]
        timeout: Option<DurSpec>,
        #[serde(default = "one")]
        max: u32,
    },
    /// FreeBSD kevent(2): registers `filter` on the socket (`EV_ADD`, with `NOTE_LOWAT` =
    /// `lowat` if given) and collects with a zero timeout. Records `events` (`["EVFILT_READ"]`
    /// when it fired, `[]` when not) and, when it fired, `value` `{data, flags, fflags}`.
    /// ENOSYS on a Linux host.
    Kevent {
        sock: String,
        filter: KqFilter,
        #[serde(default)]
        lowat: Option<u32>,
    },
    /// Let simulated time pass (the recipes' "settle" and "wait").
    Sleep {
        dur: DurSpec,
    },
    /// Apply a fault now.
    Fault {
        kind: FaultKind,
        #[serde(default)]
        link: Option<String>,
        #[serde(default)]
        host: Option<String>,
        #[serde(default)]
        drop: Option<FilterMatch>,
        #[serde(default)]
        direction: Direction,
    },
}

impl Step {
    /// The fault an `op = "fault"` step applies; `None` for any other step.
    pub fn fault_action(&self) -> Option<FaultAction<'_>> {
        match self {
            Step::Fault { kind, link, host, drop, direction } => Some(FaultAction {
                kind: *kind,
                link: link.as_deref(),
                host: host.as_deref(),
                drop: *drop,
                direction: *direction,
            }),
            _ => None,
        }
    }

    /// The step's `op` name, as in the file.
    pub fn op(&self) -> &'static str {
        match self {
            Step::Socket { .. } => "socket",
            Step::Bind { .. } => "bind",
            Step::Listen { .. } => "listen",
            Step::Connect { .. } => "connect",
            Step::Accept { .. } => "accept",
            Step::Send { .. } => "send",
            Step::Sendto { .. } => "sendto",
            Step::Recv { .. } => "recv",
            Step::Shutdown { .. } => "shutdown",
            Step::Close { .. } => "close",
            Step::Setsockopt { .. } => "setsockopt",
            Step::Getsockopt { .. } => "getsockopt",
            Step::Ioctl { .. } => "ioctl",
            Step::Poll { .. } => "poll",
            Step::EpollCreate { .. } => "epoll_create",
            Step::EpollCtl { .. } => "epoll_ctl",
            Step::EpollWait { .. } => "epoll_wait",
            Step::Kevent { .. } => "kevent",
            Step::Sleep { .. } => "sleep",
            Step::Fault { .. } => "fault",
        }
    }
}

/// What one script step returned: the record both the simulator and the real-kernel harness
/// write (the observation log), so that the two can be compared step by step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Observation {
    /// Index of the step in the script.
    pub step: usize,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sock: Option<String>,
    /// Time the call returned, in nanoseconds from the start of the run.
    pub t_ns: u64,
    /// The call's return value, where it has one (a count, 0, or -1 with `errno`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Errno>,
    /// poll/epoll: the reported events by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// getsockopt/ioctl values and other details (e.g. TCP_INFO fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Whether SIGPIPE was delivered by this call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sigpipe: bool,
}
