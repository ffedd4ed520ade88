//! The lab: one network namespace per scenario host, one veth pair per scenario link, faults as
//! nftables drop rules, and a tcpdump process on one veth.
//!
//! Every drop happens at the *receiving* end's `input` hook, never at the sender's `output` hook:
//! a packet dropped on output makes `ip_queue_xmit` fail with EPERM, and TCP then treats the
//! retransmission as locally congested (tcp_timer.c `tcp_retransmit_timer`: "Retransmission failed
//! because of local congestion") and re-arms without backoff, which is not what a lost packet does.
//! Dropping at the receiver's input also keeps the dropped packets in the server-side capture, as
//! a tap on the wire would see them.
//!
//! A scenario's `lo` link (`kind = "lo"`, as `tcpsim table --link loopback` makes every recipe's)
//! is the host namespace's own loopback: no veth, both ends of each connection in one namespace.
//! Its drop rules see only the scenario's traffic (to or from one of [`scenario_ports`]), so
//! that whatever else crosses that `lo` is never dropped by a fault.
//!
//! All names carry the process id and a per-process counter, so concurrent captures never
//! collide; [`Lab`]'s `Drop` deletes the namespaces (and with them the veths and rules) and stops
//! tcpdump, on success and on error alike.

use super::CaptureError;
use crate::engine::fault::FaultAction;
use crate::scenario::types::{Direction, FaultKind, FilterMatch, LinkDirSpec, LinkKind, LinkSpec, Scenario};
use crate::tcp::cc::Algorithm;
use crate::tcp::profile::KernelProfile;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long tcpdump may take to report that it is capturing, and to exit after SIGINT.
const TCPDUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long tcpdump is given to write the last packets before it is stopped.
const TCPDUMP_DRAIN: Duration = Duration::from_millis(20);

/// tcpdump's capture buffer (`-B`, KiB) on `iface`: with the default 2 MiB a 1.3 MB transfer
/// on a veth lost half its packets ("663 packets dropped by kernel") while tcpdump still exited
/// 0. In `--immediate-mode` libpcap uses a TPACKET_V2 ring of frames sized for the interface's
/// MTU, so the buffer holds a number of packets, not bytes: 64 MiB is 32 768 frames on a veth
/// (MTU 1500) but about a thousand on `lo` (MTU 65536), which a burst of handshakes overran
/// while tcpdump waited for a core (`models/ab-loopback-reset.toml` under load: 539 dropped);
/// `lo` gets 512 MiB, some eight thousand frames.
fn tcpdump_buffer_kib(iface: &str) -> u32 {
    if iface == "lo" { 512 * 1024 } else { 64 * 1024 }
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// One scenario host: its namespace.
#[derive(Debug)]
pub struct HostNs {
    pub name: String,
    pub addr: IpAddr,
    /// The `ip netns` name.
    pub netns: String,
    /// `/var/run/netns/<netns>`, held open for `setns`.
    pub fd: File,
    /// The congestion control each socket made here is given with TCP_CONGESTION, when the
    /// namespace's default could not be set (a namespace's
    /// `net.ipv4.tcp_congestion_control` may be read-only, while root may choose any
    /// available algorithm per socket: `tcp_set_congestion_control`; an accepted socket
    /// inherits its listener's, `tcp_ca_openreq_child`).
    pub congestion: Option<&'static str>,
    /// The scenario's root qdisc for this host's interfaces.
    pub qdisc: crate::host::qdisc::Qdisc,
}

/// One scenario link: a veth pair, named the same in both namespaces, or a host's `lo`.
#[derive(Debug)]
pub struct LinkIf {
    pub name: String,
    pub a: usize,
    pub b: usize,
    pub iface: String,
    /// A loopback (`a == b`): the ports of the scenario's traffic on it, sorted, to which its
    /// drop rules are limited. `None` for a veth, which carries nothing but the scenario's.
    pub lo_ports: Option<Vec<u16>>,
}

/// Why packets are being dropped: each fault adds drops tagged with its origin, and the ending
/// fault (heal, unfilter, reboot, thaw) removes exactly those.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Origin {
    Partition(usize),
    Filter(usize),
    /// A crashed or frozen host (index).
    HostDown(usize),
    LinkDown(usize),
}

/// One drop rule: packets arriving at host `at` over link `link` that match `what`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct DropRule {
    link: usize,
    at: usize,
    what: FilterMatch,
    origin: Origin,
}

/// The namespaces, links, active drop rules and capture process of one run.
#[derive(Debug)]
pub struct Lab {
    pub hosts: Vec<HostNs>,
    pub links: Vec<LinkIf>,
    drops: Vec<DropRule>,
    /// Static random-loss rules: (link, receiving host, loss in parts per million).
    losses: Vec<(usize, usize, u32)>,
    /// Static loss by count: (link, receiving host, the nft match numbering the segments).
    counted: Vec<(usize, usize, String)>,
    tcpdump: Option<Tcpdump>,
    /// The rules last loaded into each host's namespace (index = host).
    written: Vec<String>,
    /// What the real network could not reproduce, for the report.
    pub unreproduced: Vec<String>,
}

#[derive(Debug)]
struct Tcpdump {
    /// Its `-B`, for the error that says it was too small.
    buffer_kib: u32,
    child: Child,
    stderr: mpsc::Receiver<String>,
}

/// Runs a command and fails with its stderr if it does not succeed.
fn run(cmd: &mut Command) -> Result<String, CaptureError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CaptureError::Command { cmd: format!("{cmd:?}"), msg: e.to_string() })?;
    if !out.status.success() {
        return Err(CaptureError::Command {
            cmd: format!("{cmd:?}"),
            msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip netns exec NS ARGS…`.
fn in_ns(netns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns]).args(args);
    c
}

/// A host's address as a one-host prefix: `/32`, or `/128` for IPv6.
fn host_prefix(addr: IpAddr) -> String {
    format!("{addr}/{}", if addr.is_ipv6() { 128 } else { 32 })
}

/// `ip addr add PREFIX dev IFACE` (arguments for [`in_ns`]); an IPv6 address skips duplicate address detection
/// (`nodad`), which would hold it tentative, unusable, for a second after the link is up.
fn addr_add<'a>(prefix: &'a str, iface: &'a str) -> Vec<&'a str> {
    let mut args = vec!["ip", "addr", "add", prefix, "dev", iface];
    if prefix.contains(':') {
        args.push("nodad");
    }
    args
}

/// An interface name for a link: its own name if the kernel accepts it (≤ 15 chars, plain),
/// else `tsl<index>`.
fn iface_name(link: &str, index: usize) -> String {
    let plain = link.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain && !link.is_empty() && link.len() <= 15 && link != "lo" {
        link.to_string()
    } else {
        format!("tsl{index}")
    }
}

impl Lab {
    /// Creates the namespaces and links of `sc`. On error the partial lab is dropped, which
    /// deletes whatever was created.
    pub fn build(sc: &Scenario) -> Result<Lab, CaptureError> {
        let id = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut lab = Lab {
            hosts: Vec::new(),
            links: Vec::new(),
            drops: Vec::new(),
            losses: Vec::new(),
            counted: Vec::new(),
            tcpdump: None,
            written: Vec::new(),
            unreproduced: Vec::new(),
        };
        for (i, h) in sc.hosts.iter().enumerate() {
            let netns = format!("tcpsim-{pid}-{id}-{i}");
            run(Command::new("ip").args(["netns", "add", &netns]))?;
            let path = format!("/var/run/netns/{netns}");
            let fd =
                File::open(&path).map_err(|e| CaptureError::Io { path: path.clone(), msg: e.to_string() });
            // Registered before the error check so that Drop deletes the namespace either way.
            lab.hosts.push(HostNs {
                name: h.name.clone(),
                addr: h.addr,
                netns: netns.clone(),
                congestion: None,
                qdisc: h.qdisc.unwrap_or_default(),
                fd: match fd {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = run(Command::new("ip").args(["netns", "del", &netns]));
                        return Err(e);
                    }
                },
            });
            run(&mut in_ns(&netns, &["ip", "link", "set", "lo", "up"]))?;
            // IPv4 only: keeps IPv6 neighbour discovery and MLD reports out of the capture.
            run(&mut in_ns(&netns, &["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]))?;
            run(&mut in_ns(&netns, &["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"]))?;
            // A new namespace inherits the machine's default congestion control (tcp_sk_init),
            // which may be one the model does not run (bbr on the lab machine): use the
            // profile's, so that windows compare.
            let cc = KernelProfile::builtin(h.kernel.as_deref().unwrap_or("linux-6.18"))
                .map_or(Algorithm::Cubic, |p| p.tcp_congestion_control);
            let cc_sysctl = format!("net.ipv4.tcp_congestion_control={}", cc.name());
            if run(&mut in_ns(&netns, &["sysctl", "-q", "-w", &cc_sysctl])).is_err() {
                // Per socket instead (the runner's `socket`).
                lab.hosts[i].congestion = Some(cc.name());
            }
            lab.apply_sysctls(i, &h.sysctl)?;
            if let Some(k) = &h.kernel {
                let release = super::kernel_release();
                if !k.strip_prefix("linux-").is_some_and(|v| release.starts_with(&format!("{v}."))) {
                    lab.unreproduced.push(format!(
                        "host `{}`: kernel profile `{k}` not available; ran on Linux {release}",
                        h.name
                    ));
                }
            }
        }
        let ports = scenario_ports(sc);
        for (i, l) in sc.links.iter().enumerate() {
            lab.add_link(i, l, &ports)?;
        }
        lab.write_rules()?;
        Ok(lab)
    }

    /// Index of a host by scenario name.
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    fn link_index(&self, name: &str) -> Option<usize> {
        self.links.iter().position(|l| l.name == name)
    }

    /// Host sysctl overrides, by the kernel profile's field names: the name itself, or without
    /// its unit suffix (`tcp_keepalive_time_s` → `net.ipv4.tcp_keepalive_time`), under
    /// `net.ipv4` or `net.core`. What has no per-namespace sysctl is reported, not applied.
    fn apply_sysctls(
        &mut self,
        host: usize,
        sysctl: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), CaptureError> {
        for (name, value) in sysctl {
            let value = match value {
                serde_json::Value::Bool(b) => u8::from(*b).to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Array(a) => a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let bare = ["_s", "_ms", "_us"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            let mut keys = Vec::new();
            for n in [name.as_str(), bare] {
                keys.push(format!("net.ipv4.{n}"));
                keys.push(format!("net.core.{n}"));
            }
            let netns = self.hosts[host].netns.clone();
            let applied = keys
                .iter()
                .any(|k| run(&mut in_ns(&netns, &["sysctl", "-q", "-w", &format!("{k}={value}")])).is_ok());
            if !applied {
                self.unreproduced.push(format!(
                    "host `{}`: sysctl `{name}` has no per-namespace kernel setting; not applied",
                    self.hosts[host].name
                ));
            }
        }
        Ok(())
    }

    /// A veth pair between the two hosts' namespaces, each end carrying its host's address as a
    /// /32 with a host route to the other end, plus what of the link's properties `tbf` and
    /// nftables can reproduce.
    fn add_link(&mut self, i: usize, l: &LinkSpec, ports: &[u16]) -> Result<(), CaptureError> {
        let find = |n: &str| {
            self.host_index(n)
                .ok_or_else(|| CaptureError::Scenario(format!("link `{}`: unknown host `{n}`", l.name)))
        };
        if l.kind == LinkKind::Lo {
            return self.add_loopback(i, find(&l.a)?, l, ports);
        }
        let (a, b) = (find(&l.a)?, find(&l.b)?);
        let iface = iface_name(&l.name, i);
        let (na, nb) = (self.hosts[a].netns.clone(), self.hosts[b].netns.clone());
        run(Command::new("ip").args([
            "link", "add", &iface, "netns", &na, "type", "veth", "peer", "name", &iface, "netns", &nb,
        ]))?;
        self.links.push(LinkIf { name: l.name.clone(), a, b, iface: iface.clone(), lo_ports: None });
        for (me, peer) in [(a, b), (b, a)] {
            let ns = self.hosts[me].netns.clone();
            let (addr, peer_addr) = (host_prefix(self.hosts[me].addr), host_prefix(self.hosts[peer].addr));
            run(&mut in_ns(&ns, &addr_add(&addr, &iface)))?;
            // One MSS per skb, as on a wire: without this, TCP hands the veth GSO super-packets
            // (tcp_tso_autosize), which the veth passes on whole, so the capture would show
            // 2896- or 64K-byte "segments".
            run(&mut in_ns(&ns, &["ip", "link", "set", &iface, "gso_max_segs", "1"]))?;
            run(&mut in_ns(&ns, &["ip", "link", "set", &iface, "mtu", &l.mtu().to_string()]))?;
            run(&mut in_ns(&ns, &["ip", "link", "set", &iface, "up"]))?;
            if self.hosts[me].qdisc == crate::host::qdisc::Qdisc::Fq {
                run(&mut in_ns(&ns, &["tc", "qdisc", "replace", "dev", &iface, "root", "fq"]))?;
            }
            run(&mut in_ns(&ns, &["ip", "route", "add", &peer_addr, "dev", &iface]))?;
        }
        let dirs =
            [(a, b, l.a_to_b.clone().unwrap_or_default()), (b, a, l.b_to_a.clone().unwrap_or_default())];
        for (from, to, d) in dirs {
            self.link_direction(i, from, to, &d, l)?;
        }
        Ok(())
    }

    /// Host `h`'s `lo` as link `i` (a loopback joins a host to itself; `lo` is up since
    /// [`Lab::build`]): the host's address goes on it unless it is loopback's already (bringing
    /// `lo` up gives it 127.0.0.1/8, net/ipv4/devinet.c `inetdev_event` on NETDEV_UP), its MTU
    /// is set when the scenario's is not `lo`'s 65536, and its one direction (a_to_b) gets the
    /// link's loss. Unlike a veth, its `gso_max_segs` is left alone: the recipes ask what a real
    /// `lo` does, and it passes GSO skbs on whole (so its capture shows skbs of several MSS;
    /// `traces/KNOWN-DIVERGENCES.md`, Loopback).
    fn add_loopback(&mut self, i: usize, h: usize, l: &LinkSpec, ports: &[u16]) -> Result<(), CaptureError> {
        let ns = self.hosts[h].netns.clone();
        if !self.hosts[h].addr.is_loopback() {
            run(&mut in_ns(&ns, &addr_add(&host_prefix(self.hosts[h].addr), "lo")))?;
        }
        if l.mtu() != LinkKind::Lo.default_mtu() {
            run(&mut in_ns(&ns, &["ip", "link", "set", "lo", "mtu", &l.mtu().to_string()]))?;
        }
        self.links.push(LinkIf { name: l.name.clone(), a: h, b: h, iface: "lo".into(), lo_ports: Some(ports.to_vec()) });
        self.link_direction(i, h, h, &l.a_to_b.clone().unwrap_or_default(), l)
    }

    /// One direction's properties: bandwidth as `tbf` on the sender's veth, loss as a random
    /// drop at the receiver; delay, jitter and duplication cannot be had without netem.
    fn link_direction(
        &mut self,
        link: usize,
        from: usize,
        to: usize,
        d: &LinkDirSpec,
        l: &LinkSpec,
    ) -> Result<(), CaptureError> {
        let dir = format!("link `{}` {}→{}", l.name, self.hosts[from].name, self.hosts[to].name);
        if let Some(delay) = d.delay.or(l.delay).filter(|d| d.lo().as_nanos() > 0) {
            self.unreproduced.push(format!(
                "{dir}: delay {delay} not reproduced (no netem on this kernel; a veth adds microseconds)"
            ));
        }
        if let Some(j) = d.jitter.or(l.jitter).filter(|d| d.lo().as_nanos() > 0) {
            self.unreproduced.push(format!("{dir}: jitter {j} not reproduced (no netem)"));
        }
        if let Some(p) = d.duplicate.or(l.duplicate).map(|p| p.lo).filter(|p| *p > 0.0) {
            self.unreproduced.push(format!("{dir}: duplication {p} not reproduced (no netem)"));
        }
        if let Some(p) = d.loss.or(l.loss).map(|p| p.lo).filter(|p| *p > 0.0) {
            let ppm = (p.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
            self.losses.push((link, to, ppm));
            self.unreproduced.push(format!(
                "{dir}: loss {p} approximated by an nft random drop (independent per packet, as the model's)"
            ));
        }
        if let Some(m) = counted_match(d) {
            self.counted.push((link, to, m));
        }
        if let Some(rate) = d.bandwidth.or(l.bandwidth) {
            let queue = d.queue.or(l.queue).unwrap_or(1000);
            // tbf needs a bucket of at least one MTU and rate/HZ; limit ≈ the queue in packets.
            let burst = (rate.0 / 8 / 250).max(1600);
            let limit = u64::from(queue) * 1514;
            self.unreproduced.push(format!(
                "{dir}: bandwidth {rate} as a tbf token bucket (burst {burst} bytes, limit {limit} bytes)"
            ));
            if self.hosts[from].qdisc == crate::host::qdisc::Qdisc::Fq {
                self.unreproduced.push(format!("{dir}: the tbf replaces the host's fq (no pacing)"));
            }
            let ns = self.hosts[from].netns.clone();
            let iface = self.links[link].iface.clone();
            run(&mut in_ns(
                &ns,
                &[
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    &iface,
                    "root",
                    "tbf",
                    "rate",
                    &format!("{}bit", rate.0),
                    "burst",
                    &burst.to_string(),
                    "limit",
                    &limit.to_string(),
                ],
            ))?;
        }
        Ok(())
    }

    /// Applies a fault (its link/host/filter fields as in the scenario). Crash's socket aborts
    /// are the runner's part; this only changes what the network lets through.
    pub fn apply_fault(&mut self, f: &FaultAction) -> Result<(), CaptureError> {
        let FaultAction { kind, link, host, drop, direction } = *f;
        let need_link = || {
            let n = link.ok_or_else(|| CaptureError::Scenario(format!("fault `{kind:?}` needs `link`")))?;
            self.link_index(n)
                .ok_or_else(|| CaptureError::Scenario(format!("fault `{kind:?}`: unknown link `{n}`")))
        };
        let need_host = || {
            let n = host.ok_or_else(|| CaptureError::Scenario(format!("fault `{kind:?}` needs `host`")))?;
            self.host_index(n)
                .ok_or_else(|| CaptureError::Scenario(format!("fault `{kind:?}`: unknown host `{n}`")))
        };
        match kind {
            FaultKind::Partition => {
                let l = need_link()?;
                self.add_drops(l, Direction::Both, FilterMatch::All, Origin::Partition(l));
            }
            FaultKind::Heal => {
                let l = need_link()?;
                self.drops.retain(|d| d.origin != Origin::Partition(l));
            }
            FaultKind::Filter => {
                let l = need_link()?;
                let what =
                    drop.ok_or_else(|| CaptureError::Scenario("fault `filter` needs `drop`".into()))?;
                self.add_drops(l, direction, what, Origin::Filter(l));
            }
            FaultKind::Unfilter => {
                let l = need_link()?;
                self.drops.retain(|d| d.origin != Origin::Filter(l));
            }
            FaultKind::Crash | FaultKind::Freeze => {
                let h = need_host()?;
                for l in 0..self.links.len() {
                    if self.links[l].a == h || self.links[l].b == h {
                        self.add_drops(l, Direction::Both, FilterMatch::All, Origin::HostDown(h));
                    }
                }
            }
            FaultKind::Reboot | FaultKind::Thaw => {
                let h = need_host()?;
                self.drops.retain(|d| d.origin != Origin::HostDown(h));
            }
            // A pulled cable, not `ip link set down`: an administratively downed interface loses
            // its routes, so the host's own sends fail locally (EHOSTUNREACH, or a "local
            // congestion" retransmit path), whereas a carrier loss keeps the routes
            // (ignore_routes_with_linkdown = 0) and the packets just vanish. So: drops, as for a
            // partition.
            FaultKind::LinkDown => {
                let l = need_link()?;
                self.add_drops(l, Direction::Both, FilterMatch::All, Origin::LinkDown(l));
            }
            FaultKind::LinkUp => {
                let l = need_link()?;
                self.drops.retain(|d| d.origin != Origin::LinkDown(l));
            }
        }
        self.write_rules()
    }

    fn add_drops(&mut self, link: usize, direction: Direction, what: FilterMatch, origin: Origin) {
        for at in receivers(&self.links[link], direction) {
            self.drops.push(DropRule { link, at, what, origin });
        }
    }

    /// Rewrites the `inet tcpsim` table of every namespace whose drops changed, atomically (one
    /// `nft -f` batch each), all namespaces at once: each batch waits for an RCU grace period
    /// (~17 ms measured), which is the latency of a fault.
    fn write_rules(&mut self) -> Result<(), CaptureError> {
        let mut pending = Vec::new();
        for h in 0..self.hosts.len() {
            let rules = self.chains_of(h);
            if self.written.get(h) == Some(&rules) {
                continue;
            }
            let batch = format!("table inet tcpsim\ndelete table inet tcpsim\ntable inet tcpsim {{\n{rules}}}\n");
            pending.push((h, rules, spawn_nft(&self.hosts[h].netns, &batch)?));
        }
        for (h, rules, child) in pending {
            wait_nft(child)?;
            self.written.resize(self.hosts.len(), String::new());
            self.written[h] = rules;
        }
        Ok(())
    }

    /// The chains of host `h`'s `inet tcpsim` table.
    fn chains_of(&self, h: usize) -> String {
        table_chains(h, &self.links, &self.losses, &self.drops, &self.counted)
    }

    /// Starts tcpdump on `iface` in host `host`'s namespace writing `pcap`, and returns once
    /// tcpdump reports that it is listening (capture active). `--immediate-mode` matters: without
    /// it, packets still in the ring's current block when SIGINT comes are never written (seen:
    /// "17 packets received by filter", "0 packets captured").
    pub fn start_tcpdump(&mut self, host: usize, iface: &str, pcap: &Path) -> Result<(), CaptureError> {
        let pcap_s = pcap.to_string_lossy().into_owned();
        let mut cmd = in_ns(
            &self.hosts[host].netns,
            &[
                "tcpdump",
                "-i",
                iface,
                "-n",
                "-U",
                "--immediate-mode",
                "-B",
                &tcpdump_buffer_kib(iface).to_string(),
                "-Z",
                "root",
                "--time-stamp-precision=nano",
                "-w",
                &pcap_s,
            ],
        );
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CaptureError::Command { cmd: format!("{cmd:?}"), msg: e.to_string() })?;
        let stderr = child.stderr.take().expect("stderr was piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.tcpdump = Some(Tcpdump { buffer_kib: tcpdump_buffer_kib(iface), child, stderr: rx });
        let deadline = std::time::Instant::now() + TCPDUMP_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.tcpdump.as_ref().expect("just set").stderr.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => return Ok(()),
                Ok(line) => seen.push(line),
                Err(_) => {
                    return Err(CaptureError::Command {
                        cmd: format!("{cmd:?}"),
                        msg: format!("tcpdump did not start capturing: {}", seen.join("; ")),
                    })
                }
            }
        }
    }

    /// Stops tcpdump with SIGINT (so it flushes and closes the file) and waits for it; returns
    /// its closing report (e.g. "12 packets captured"), or an error when it says the kernel
    /// dropped packets (a capture with holes would replay as divergences that are not TCP's).
    pub fn stop_tcpdump(&mut self) -> Result<Vec<String>, CaptureError> {
        let Some(mut t) = self.tcpdump.take() else { return Ok(Vec::new()) };
        // Lets tcpdump write what the last steps put on the wire: on SIGINT it breaks its loop
        // and packets still in the ring would be counted "received" but never written.
        std::thread::sleep(TCPDUMP_DRAIN);
        let pid = t.child.id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = std::time::Instant::now() + TCPDUMP_TIMEOUT;
        loop {
            match t.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = t.child.kill();
                    let _ = t.child.wait();
                    return Err(CaptureError::Command {
                        cmd: "tcpdump".into(),
                        msg: "did not exit after SIGINT; killed (the pcap may be truncated)".into(),
                    });
                }
            }
        }
        let lines: Vec<String> = t.stderr.try_iter().collect();
        match dropped_by_kernel(&lines) {
            Some(n) if n > 0 => Err(CaptureError::Command {
                cmd: "tcpdump".into(),
                msg: format!(
                    "{n} packets dropped by kernel (buffer -B {} KiB too small for this run); the capture is incomplete: {}",
                    t.buffer_kib,
                    lines.join(", ")
                ),
            }),
            _ => Ok(lines),
        }
    }
}

/// The hosts where a link's traffic in `direction` is dropped: where it arrives (a_to_b at
/// `b`). A loopback has one direction, a_to_b, which carries all its traffic (the model routes
/// a host to itself over it so, engine/sim.rs `add_loopback`): there a_to_b and both drop at
/// the host, and b_to_a, which nothing travels, drops nothing.
fn receivers(link: &LinkIf, direction: Direction) -> Vec<usize> {
    match (direction, link.lo_ports.is_some()) {
        (Direction::AToB | Direction::Both, true) => vec![link.a],
        (Direction::BToA, true) => Vec::new(),
        (Direction::AToB, false) => vec![link.b],
        (Direction::BToA, false) => vec![link.a],
        (Direction::Both, false) => vec![link.a, link.b],
    }
}

/// Host `h`'s chains of the `inet tcpsim` table: `input`, with random losses, then fault
/// drops, then counted drops, each matched by the interface the packet arrived on. A
/// loopback's rules go in a chain `lo` of their own, which `input` enters (`goto`: the chain's
/// end is the packet's end, accepted) only for packets to or from one of the scenario's ports,
/// so that they never touch what else crosses `lo`. (One rule `tcp sport != P tcp dport != P
/// accept` cannot say it: nft 1.0.6 merges the two adjacent port matches into one 32-bit
/// compare, which is false only when both ports equal P: seen letting a SYN to P through.)
fn table_chains(
    h: usize,
    links: &[LinkIf],
    losses: &[(usize, usize, u32)],
    drops: &[DropRule],
    counted: &[(usize, usize, String)],
) -> String {
    let mut rules: Vec<(usize, String)> = Vec::new();
    for &(link, at, ppm) in losses {
        if at == h {
            rules.push((link, format!("numgen random mod 1000000 < {ppm} drop")));
        }
    }
    for d in drops.iter().filter(|d| d.at == h) {
        let m = match d.what {
            FilterMatch::All => "drop",
            // iptables' --syn: SYN set, ACK/RST/FIN clear.
            FilterMatch::Syn => "tcp flags & (fin|syn|rst|ack) == syn drop",
            FilterMatch::NonSyn => "tcp flags & (fin|syn|rst|ack) != syn drop",
        };
        rules.push((d.link, m.to_string()));
    }
    // After the fault drops, as the model's link counts only what its state let through.
    for (link, at, m) in counted {
        if *at == h {
            rules.push((*link, format!("meta l4proto tcp {m} drop")));
        }
    }
    let line = |link: usize, rule: &str| format!("    iifname \"{}\" {rule}\n", links[link].iface);
    let lo = rules.iter().find_map(|(l, _)| links[*l].lo_ports.as_deref());
    let mut input = lo.map(lo_entry_rules).unwrap_or_default();
    let mut lo_chain = String::new();
    for (l, rule) in &rules {
        let chain = if links[*l].lo_ports.is_some() { &mut lo_chain } else { &mut input };
        chain.push_str(&line(*l, rule));
    }
    let mut chains =
        format!("  chain input {{\n    type filter hook input priority filter; policy accept;\n{input}  }}\n");
    if lo.is_some() {
        chains += &format!("  chain lo {{\n{lo_chain}  }}\n");
    }
    chains
}

/// The `input` rules that send what arrives on `lo` to or from one of `ports` (the scenario's
/// traffic) to the chain `lo`.
fn lo_entry_rules(ports: &[u16]) -> String {
    let set = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    if set.is_empty() {
        // No port of the scenario: nothing on lo is its traffic.
        return String::new();
    }
    ["dport", "sport"].iter().map(|f| format!("    iifname \"lo\" tcp {f} {{ {set} }} goto lo\n")).collect()
}

/// The ports the scenario's traffic uses: every port its script binds and every port of a
/// `to` (a connect's or an app's `HOST:PORT`), and every app's listening `port`, sorted. Each
/// of its connections has one of them at one end (a connection's other end, an ephemeral port,
/// is not known in advance).
pub fn scenario_ports(sc: &Scenario) -> Vec<u16> {
    fn walk(v: &serde_json::Value, out: &mut std::collections::BTreeSet<u16>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("port", serde_json::Value::Number(n)) => {
                            out.extend(n.as_u64().and_then(|p| u16::try_from(p).ok()));
                        }
                        ("to", serde_json::Value::String(to)) => {
                            out.extend(to.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()));
                        }
                        (_, x) => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for part in [serde_json::to_value(&sc.script), serde_json::to_value(&sc.apps)] {
        walk(&part.expect("scenario parts serialise"), &mut out);
    }
    out.into_iter().collect()
}

/// The count in tcpdump's closing line "N packets dropped by kernel", if it printed one.
pub fn dropped_by_kernel(lines: &[String]) -> Option<u64> {
    lines.iter().find_map(|l| l.trim().strip_suffix("packets dropped by kernel")?.trim().parse().ok())
}

/// The nft match of a direction's loss by count (`drop_nth`, `drop_every`): `numgen inc` is a
/// counter of the rule's own, from 0, advanced by every packet that reaches it, so the n-th TCP
/// segment (from 1) to arrive is number n − 1. A namespace's rules are reloaded whole when a
/// fault changes them, which restarts the counter: a scenario that counts should not also
/// filter at the same host.
fn counted_match(d: &LinkDirSpec) -> Option<String> {
    match (&d.drop_nth, d.drop_every) {
        (_, Some(every)) => Some(format!("numgen inc mod {every} == {}", every.saturating_sub(1))),
        (Some(nth), None) => {
            let n: Vec<String> = nth.iter().map(|n| n.saturating_sub(1).to_string()).collect();
            Some(format!("numgen inc mod 4294967295 {{ {} }}", n.join(", ")))
        }
        (None, None) => None,
    }
}

/// Starts `nft -f -` inside a namespace and feeds it one batch.
fn spawn_nft(netns: &str, batch: &str) -> Result<(Child, String), CaptureError> {
    let mut cmd = in_ns(netns, &["nft", "-f", "-"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CaptureError::Command { cmd: format!("{cmd:?}"), msg: e.to_string() })?;
    let fed = child.stdin.take().expect("stdin was piped").write_all(batch.as_bytes());
    let desc = format!("ip netns exec {netns} nft -f - <<{batch}");
    fed.map_err(|e| CaptureError::Command { cmd: desc.clone(), msg: e.to_string() })?;
    Ok((child, desc))
}

/// Waits for a [`spawn_nft`] and fails with its stderr if the batch was refused.
fn wait_nft((child, desc): (Child, String)) -> Result<(), CaptureError> {
    let out = child
        .wait_with_output()
        .map_err(|e| CaptureError::Command { cmd: desc.clone(), msg: e.to_string() })?;
    if !out.status.success() {
        return Err(CaptureError::Command {
            cmd: desc,
            msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut t) = self.tcpdump.take() {
            let _ = t.child.kill();
            let _ = t.child.wait();
        }
        for h in &self.hosts {
            let _ = run(Command::new("ip").args(["netns", "del", &h.netns]));
        }
    }
}

/// Moves the calling thread into a namespace (by an open `/var/run/netns/…` or
/// `/proc/thread-self/ns/net` file). Only this thread moves; sockets keep the namespace they
/// were created in.
pub fn enter(ns: &File) -> Result<(), CaptureError> {
    // SAFETY: setns(2) on a valid fd; CLONE_NEWNET affects only the calling thread.
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(CaptureError::Io {
            path: "setns".into(),
            msg: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(())
}

/// Whether this process can build a lab: root, `ip netns`, nft and tcpdump. `Err` says why not.
pub fn check_environment() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root (network namespaces need CAP_SYS_ADMIN/CAP_NET_ADMIN)".into());
    }
    for (tool, args) in [("ip", &["-V"][..]), ("nft", &["--version"][..]), ("tcpdump", &["--version"][..])] {
        match Command::new(tool).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status() {
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "`{tool}` not available ({e}); apt-get install -y iproute2 nftables tcpdump"
                ))
            }
        }
    }
    let probe =
        format!("tcpsim-probe-{}-{}", std::process::id(), LAB_COUNTER.fetch_add(1, Ordering::Relaxed));
    run(Command::new("ip").args(["netns", "add", &probe]))
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let _ = run(Command::new("ip").args(["netns", "del", &probe]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_drop_count_is_read_from_tcpdumps_closing_lines() {
        let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let closing = lines(&["1311 packets captured", "1311 packets received by filter", "663 packets dropped by kernel"]);
        assert_eq!(dropped_by_kernel(&closing), Some(663));
        assert_eq!(dropped_by_kernel(&lines(&["12 packets captured", "0 packets dropped by kernel"])), Some(0));
        assert_eq!(dropped_by_kernel(&lines(&["12 packets captured"])), None);
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        assert_eq!(iface_name("wire", 0), "wire");
        assert_eq!(iface_name("a-very-long-link-name", 3), "tsl3");
        assert_eq!(iface_name("has space", 1), "tsl1");
        assert_eq!(iface_name("lo", 2), "tsl2");
    }

    fn veth(name: &str) -> LinkIf {
        LinkIf { name: name.into(), a: 0, b: 1, iface: name.into(), lo_ports: None }
    }

    fn lo(ports: &[u16]) -> LinkIf {
        LinkIf { name: "wire".into(), a: 0, b: 0, iface: "lo".into(), lo_ports: Some(ports.to_vec()) }
    }

    fn drop(link: usize, at: usize, what: FilterMatch) -> DropRule {
        DropRule { link, at, what, origin: Origin::Partition(link) }
    }

    #[test]
    fn a_loopback_drops_its_one_direction_at_its_host() {
        let l = lo(&[8080]);
        assert_eq!(receivers(&l, Direction::AToB), [0]);
        assert_eq!(receivers(&l, Direction::Both), [0], "one rule, not one per end");
        assert!(receivers(&l, Direction::BToA).is_empty(), "nothing travels b_to_a on a loopback");
        let v = veth("wire");
        assert_eq!(receivers(&v, Direction::AToB), [1]);
        assert_eq!(receivers(&v, Direction::BToA), [0]);
        assert_eq!(receivers(&v, Direction::Both), [0, 1]);
    }

    #[test]
    fn a_veth_hosts_rules_stay_in_its_input_chain() {
        let links = [veth("wire")];
        let drops = [drop(0, 1, FilterMatch::All), drop(0, 1, FilterMatch::Syn)];
        let counted = [(0, 1, "numgen inc mod 3 == 2".to_string())];
        assert_eq!(
            table_chains(1, &links, &[(0, 1, 500)], &drops, &counted),
            "  chain input {\n    type filter hook input priority filter; policy accept;\n\
             \x20   iifname \"wire\" numgen random mod 1000000 < 500 drop\n\
             \x20   iifname \"wire\" drop\n\
             \x20   iifname \"wire\" tcp flags & (fin|syn|rst|ack) == syn drop\n\
             \x20   iifname \"wire\" meta l4proto tcp numgen inc mod 3 == 2 drop\n  }\n"
        );
        // The other end has none.
        assert_eq!(
            table_chains(0, &links, &[(0, 1, 500)], &drops, &counted),
            "  chain input {\n    type filter hook input priority filter; policy accept;\n  }\n"
        );
    }

    #[test]
    fn a_loopbacks_rules_see_only_the_scenarios_ports() {
        let links = [lo(&[80, 8080])];
        let chains = table_chains(0, &links, &[], &[drop(0, 0, FilterMatch::Syn)], &[]);
        assert_eq!(
            chains,
            "  chain input {\n    type filter hook input priority filter; policy accept;\n\
             \x20   iifname \"lo\" tcp dport { 80, 8080 } goto lo\n\
             \x20   iifname \"lo\" tcp sport { 80, 8080 } goto lo\n  }\n\
             \x20 chain lo {\n\
             \x20   iifname \"lo\" tcp flags & (fin|syn|rst|ack) == syn drop\n  }\n"
        );
        // Without a drop the table has no `lo` chain and nothing is diverted.
        assert!(!table_chains(0, &links, &[], &[], &[]).contains("lo"));
        // A scenario without ports has no traffic on lo: nothing enters the chain.
        let none = table_chains(0, &[lo(&[])], &[], &[drop(0, 0, FilterMatch::All)], &[]);
        assert!(!none.contains("goto"), "{none}");
    }

    #[test]
    fn the_ports_of_a_loopback_recipe_are_its_listeners() {
        use crate::scenario::readiness::{observed_recipe, on_loopback};
        let sc = on_loopback(&observed_recipe("peer-reboot").unwrap()).unwrap();
        assert_eq!(scenario_ports(&sc), [8080]);
        let mut two = sc.clone();
        two.script.push(crate::scenario::types::Step::Bind { sock: "c".into(), port: 40000 });
        assert_eq!(scenario_ports(&two), [8080, 40000]);
    }
}
