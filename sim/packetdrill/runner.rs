//! Runs a parsed script against one modelled Linux host, as packetdrill runs it against a
//! kernel (run.c `run_script`): events in order, each at its time; inbound packets injected
//! into the host; outbound packets taken, in the order the host sent them, from a tap on its
//! wire and held against the script; system calls made through the host's syscall layer,
//! a blocking one left pending while later events run (packetdrill's syscall thread).
//!
//! The remote end is a silent peer on a perfect link: everything it "sends" is the script's
//! inbound packets, put straight into the host.

use super::ast::{Action, Direction, Event, IpEcn, PacketSpec, Script};
use super::code::{self, CodeError};
use super::matcher::{self, Actual};
use super::syscalls::{self, Call, Handles, Progress};
use super::sysctl::{CmdError, Sysctls};
use super::time::{self, Scheduled, Tolerance};
use super::Outcome;
use crate::engine::{LinkParams, Sim};
use crate::host::Host;
use crate::replay::driver::on_sut;
use crate::replay::puppet::{Endpoint, Puppet};
use crate::tcp::profile::KernelProfile;
use crate::tcp::segment::{Ecn, Flags, Payload, Segment};
use crate::time::SimTime;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use crate::addr::SockAddr;
use std::net::Ipv4Addr;
use std::path::Path;
use std::rc::Rc;

/// packetdrill's default addresses (config.c): the host under test and the remote end.
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// `--bind_port` and `--connect_port` defaults.
pub const PORT: u16 = 8080;
/// The remote end's port for connections it opens.
const REMOTE_PORT: u16 = 40_000;
/// How long past its expected time the runner waits for an outbound packet before calling
/// it missing (a late one is then reported with its time, as packetdrill would).
const SNIFF_HORIZON_US: i64 = 130_000_000;
/// How long a call that blocks where the script expects it not to, or a blocking call still
/// running when the script ends, may keep blocking (packetdrill waits one second for its
/// syscall thread).
const BLOCK_LIMIT_US: i64 = 1_000_000;

/// Why a run stopped early.
pub(crate) enum Stop {
    Fail(u32, String),
    Unsupported(u32, String),
}

type Step = Result<(), Stop>;

/// The connection under test, and how its numbers map between script and model.
#[derive(Debug)]
struct Conn {
    local: SockAddr,
    remote: SockAddr,
    /// An active open whose SYN has not been seen: the local port is not known yet.
    connecting: bool,
    /// The local ISN as the script writes it and as the model chose it.
    script_isn: u32,
    live_isn: Option<u32>,
    /// The remote end's ISN: its SYN's sequence number, the same in script and model.
    remote_isn: u32,
    /// Script TS val → the model's (for inbound TS ecr); the first pair anchors the rest.
    ts_map: BTreeMap<u32, u32>,
    first_ts: Option<(u32, u32)>,
}

impl Conn {
    fn passive() -> Conn {
        Conn {
            local: SockAddr::new(LOCAL_IP, PORT),
            remote: SockAddr::new(REMOTE_IP, REMOTE_PORT),
            connecting: false,
            script_isn: 0,
            live_isn: None,
            remote_isn: 0,
            ts_map: BTreeMap::new(),
            first_ts: None,
        }
    }

    /// Script → model, for the host's own sequence space (socket.h
    /// `local_seq_script_to_live_offset`): as tcpdump prints them, a SYN's numbers are
    /// absolute and the others relative to the ISN.
    fn local_offset(&self, syn: bool) -> u32 {
        let live = self.live_isn.unwrap_or(self.script_isn);
        if syn {
            live.wrapping_sub(self.script_isn)
        } else {
            live
        }
    }

    /// The same for the remote end's sequence space (`remote_seq_script_to_live_offset`).
    fn remote_offset(&self, syn: bool) -> u32 {
        if syn {
            0
        } else {
            self.remote_isn
        }
    }
}

/// A call left blocking while later events run.
struct Pending {
    line: u32,
    call: Call,
    /// When it must return (`...end`), resolved.
    end: Scheduled,
}

pub(crate) struct Run<'a> {
    dir: &'a Path,
    tol: Tolerance,
    ts_tick_usecs: i64,
    sysctls: Sysctls,
    sim: Sim<Endpoint>,
    sent: Rc<RefCell<VecDeque<(SimTime, Segment)>>>,
    pub(crate) handles: Handles,
    /// Sockets the script set SO_REUSEADDR on.
    pub(crate) reuseaddr: std::collections::BTreeSet<u32>,
    /// Sockets socket() made that no connect(), sendto() or listen() has used since
    /// (packetdrill's `SOCKET_NEW`).
    new_sockets: std::collections::BTreeSet<u32>,
    /// The descriptor `%{ }%` blocks read `tcp_info` from (packetdrill's socket under test).
    under_test: Option<u32>,
    /// The names `%{ }%` blocks bound, for the blocks after.
    globals: code::Globals,
    conn: Conn,
    pending: Option<Pending>,
    /// The previous event's scheduled time and whether it was an inbound packet.
    last: Option<(i64, bool)>,
}

/// Runs `script` (from `path`); the outcome names the first line that failed or used
/// something the model does not have.
pub fn run(script: &Script, path: &Path) -> Outcome {
    // run_all.py runs a script whose name ends in `v6.pkt` over IPv6 only (`StartTests`).
    if path.to_string_lossy().ends_with("v6.pkt") {
        return Outcome::Unsupported { line: 0, feature: "IPv6 (run_all.py runs *v6.pkt scripts over IPv6 only)".into() };
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut r = match Run::new(script, dir) {
        Ok(r) => r,
        Err(stop) => return stop.into(),
    };
    let done = r.events(&script.events).and_then(|_| match &script.cleanup {
        Some((line, cmd)) => r.command(*line, cmd),
        None => Ok(()),
    });
    match done {
        Ok(()) => Outcome::Pass,
        Err(stop) => stop.into(),
    }
}

impl From<Stop> for Outcome {
    fn from(s: Stop) -> Outcome {
        match s {
            Stop::Fail(line, error) => Outcome::Fail { line, error },
            Stop::Unsupported(line, feature) => Outcome::Unsupported { line, feature },
        }
    }
}

impl<'a> Run<'a> {
    fn new(script: &Script, dir: &'a Path) -> Result<Run<'a>, Stop> {
        let mut tol = Tolerance::default();
        let mut ts_tick_usecs = 0;
        for o in &script.options {
            let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<f64>().ok());
            let bad = || Stop::Fail(o.line, format!("bad --{}: {}", o.name, o.value.as_deref().unwrap_or("")));
            match o.name.as_str() {
                "tolerance_usecs" => tol.usecs = num(&o.value).filter(|v| *v > 0.0).ok_or_else(bad)? as i64,
                "tolerance_percent" => tol.percent = num(&o.value).filter(|v| (0.0..=100.0).contains(v)).ok_or_else(bad)?,
                "tcp_ts_tick_usecs" => ts_tick_usecs = num(&o.value).filter(|v| *v >= 0.0).ok_or_else(bad)? as i64,
                "ip_version" if o.value.as_deref() == Some("ipv4") => {}
                // --mss sets the MTU packetdrill's tun device advertises; the model's route MTU
                // is fixed, so only the default (1500) is faithful.
                _ => return Err(Stop::Unsupported(o.line, format!("option --{}", o.name))),
            }
        }
        // packetdrill's tun device offers TSO: skbs of up to GSO_MAX_SEGS segments. The
        // scripts were written on Google's kernels, CONFIG_HZ = 1000: their timer times (RACK's
        // `usecs_to_jiffies(reo_wnd + TCP_TIMEOUT_MIN_US)`, the RTO's rounding) assume 1 ms jiffies.
        let profile = KernelProfile { gso_max_segs: 65535, hz: 1000, ..KernelProfile::linux_6_18() };
        let mut sim = Sim::new(0);
        let sent: Rc<RefCell<VecDeque<(SimTime, Segment)>>> = Rc::default();
        let host = Host::new("sut", LOCAL_IP.into(), Rc::new(profile.clone()));
        let peer = Puppet::new(Vec::new(), Vec::new(), Rc::default());
        let setup = |e: crate::engine::EngineError| Stop::Fail(0, format!("internal: {e}"));
        sim.add_host("sut", LOCAL_IP.into(), Endpoint::Sut(Box::new(host))).map_err(setup)?;
        sim.add_host("remote", REMOTE_IP.into(), Endpoint::Puppet(peer)).map_err(setup)?;
        sim.add_link("wire", "sut", "remote", LinkParams::default(), LinkParams::default()).map_err(setup)?;
        let tap = sent.clone();
        sim.set_tap(Box::new(move |t, seg| {
            if seg.src.ip() == LOCAL_IP {
                tap.borrow_mut().push_back((t, seg.clone()));
            }
        }));
        Ok(Run {
            dir,
            tol,
            ts_tick_usecs,
            sysctls: Sysctls::new(profile),
            sim,
            sent,
            handles: Handles::default(),
            reuseaddr: Default::default(),
            new_sockets: Default::default(),
            under_test: None,
            globals: Default::default(),
            conn: Conn::passive(),
            pending: None,
            last: None,
        })
    }

    pub(crate) fn now_us(&self) -> i64 {
        (self.sim.now().as_nanos() / 1000) as i64
    }

    pub(crate) fn host(&mut self) -> &mut Host {
        match self.sim.node_mut(0) {
            Endpoint::Sut(h) => h,
            Endpoint::Puppet(_) => unreachable!("node 0 is the host under test"),
        }
    }

    /// The host under test through the project's syscall interface.
    pub(crate) fn calls(&mut self) -> super::calls::HostCalls<'_> {
        super::calls::HostCalls { sim: &mut self.sim }
    }

    /// Calls into the host with its engine context (segments it sends go on the wire).
    pub(crate) fn with_host<R>(&mut self, f: impl FnOnce(&mut Host, &mut crate::engine::Ctx) -> R) -> R {
        on_sut(&mut self.sim, 0, f).expect("node 0 is the host under test")
    }

    fn events(&mut self, events: &[Event]) -> Step {
        if let Some(first) = events.first() {
            if first.time != super::ast::EventTime::Absolute(0) {
                return Err(Stop::Fail(first.line, "first event should be at time 0".into()));
            }
        }
        for ev in events {
            self.event(ev)?;
        }
        // packetdrill waits (up to a second) for a blocking call still in progress.
        if let Some(p) = &self.pending {
            let line = p.line;
            let limit = self.now_us() + BLOCK_LIMIT_US;
            self.advance_until(limit, |r| r.pending.is_none())?;
            if self.pending.is_some() {
                return Err(Stop::Fail(line, "runtime error: exiting while a blocking system call is in progress".into()));
            }
        }
        Ok(())
    }

    fn event(&mut self, ev: &Event) -> Step {
        let inbound = matches!(&ev.action, Action::Packet(p) if p.direction == Direction::Inbound);
        let anchored = self.last.filter(|(_, was_inbound)| *was_inbound && inbound).map(|(t, _)| t);
        let now = self.now_us();
        let at = time::schedule(ev.time, now, anchored);
        let last_time = self.last.map(|(t, _)| t);
        match &ev.action {
            Action::Packet(p) if p.direction == Direction::Outbound => self.outbound(ev.line, p, &at, last_time)?,
            action => {
                self.wait_for(ev.line, &at, last_time, action)?;
                match action {
                    Action::Packet(p) => self.inbound(ev.line, p)?,
                    Action::Syscall(s) => self.syscall(ev.line, s, &at, is_relative(ev.time))?,
                    Action::Command(c) => self.command(ev.line, c)?,
                    Action::Code(c) => self.code(ev.line, c)?,
                }
            }
        }
        self.last = Some((at.start, inbound));
        Ok(())
    }

    /// `wait_for_event`: runs the model up to the event's time, then checks that the run is
    /// not already past it (a call that blocked where the script expected none).
    fn wait_for(&mut self, line: u32, at: &Scheduled, last: Option<i64>, action: &Action) -> Step {
        self.advance_until(at.start, |_| false)?;
        let what = match action {
            Action::Packet(_) => "inbound packet",
            Action::Syscall(_) => "system call start",
            Action::Command(_) => "command",
            Action::Code(_) => "data collection for code",
        };
        let now = self.now_us();
        time::verify(at, now, last, self.tol, what).map_err(|e| Stop::Fail(line, e))
    }

    /// Runs the model until `t` (µs) or until `done` holds, giving a pending blocking call
    /// its chance after every event.
    fn advance_until(&mut self, t: i64, mut done: impl FnMut(&Run) -> bool) -> Step {
        let until = SimTime(t.max(0) as u64 * 1000);
        loop {
            self.retry_pending()?;
            if done(self) {
                return Ok(());
            }
            match self.sim.peek_time() {
                Some(next) if next <= until => {
                    self.sim.step();
                }
                _ => break,
            }
        }
        self.sim.run_until(until.max(self.sim.now()));
        self.retry_pending()
    }

    /// One more try of the pending blocking call; when it completes, its result and return
    /// time are checked.
    fn retry_pending(&mut self) -> Step {
        let Some(mut p) = self.pending.take() else { return Ok(()) };
        match syscalls::attempt(self, &mut p.call).map_err(|e| e.at(p.line))? {
            Progress::Blocked => {
                self.pending = Some(p);
                Ok(())
            }
            Progress::Done(result) => {
                let now = self.now_us();
                syscalls::check_result(&p.call, &result).map_err(|e| Stop::Fail(p.line, e))?;
                syscalls::after(self, &p.call, &result);
                time::verify(&p.end, now, None, self.tol, "system call return").map_err(|e| Stop::Fail(p.line, e))
            }
        }
    }

    fn syscall(&mut self, line: u32, spec: &super::ast::SyscallSpec, at: &Scheduled, relative: bool) -> Step {
        let mut call = syscalls::prepare(self, spec).map_err(|e| e.at(line))?;
        if let Some(end) = spec.end_usecs {
            // A blocking call: a second one while the first still blocks is a script error.
            if self.pending.is_some() {
                let limit = self.now_us() + BLOCK_LIMIT_US;
                self.advance_until(limit, |r| r.pending.is_none())?;
                if self.pending.is_some() {
                    return Err(Stop::Fail(
                        line,
                        format!("runtime error in {} call: blocking system call while another blocking system call is already in progress", spec.name),
                    ));
                }
            }
            // `adjust_relative_event_times`: a relative call's end moves with its start.
            let end_at = if relative { end + at.offset } else { end };
            let end = Scheduled { start: end_at, end: end_at, offset: at.offset, any: false, range: None };
            self.pending = Some(Pending { line, call, end });
            return self.retry_pending();
        }
        // A non-blocking call runs inline; if it blocks, the whole script waits with it.
        let limit = self.now_us() + SNIFF_HORIZON_US;
        loop {
            match syscalls::attempt(self, &mut call).map_err(|e| e.at(line))? {
                Progress::Done(result) => {
                    syscalls::check_result(&call, &result).map_err(|e| Stop::Fail(line, e))?;
                    syscalls::after(self, &call, &result);
                    return Ok(());
                }
                Progress::Blocked => {
                    if self.now_us() >= limit || !self.sim.step() {
                        return Err(Stop::Fail(line, format!("runtime error in {} call: the call blocked and never returned", spec.name)));
                    }
                }
            }
        }
    }

    fn command(&mut self, line: u32, cmd: &str) -> Step {
        self.sysctls.run(cmd, self.dir).map_err(|e| match e {
            CmdError::Unsupported(f) => Stop::Unsupported(line, f),
            CmdError::Failed(m) => Stop::Fail(line, m),
        })?;
        // New sockets read the kernel configuration as it is now.
        let profile = Rc::new(self.sysctls.profile.clone());
        self.host().set_profile(profile);
        let refuses = self.sysctls.qdisc_refuses;
        self.host().set_qdisc_refuses(refuses);
        if let Some(key) = self.sysctls.fastopen_key {
            self.host().set_fastopen_key(key);
        }
        let qdisc = self.sysctls.qdisc;
        self.host().set_qdisc(qdisc);
        if std::mem::take(&mut self.sysctls.metrics_flushed) {
            self.host().flush_tcp_metrics();
        }
        Ok(())
    }

    /// A `%{ }%` block, over `getsockopt(TCP_INFO)` of the socket under test.
    fn code(&mut self, line: u32, block: &str) -> Step {
        let fd = self.under_test.ok_or_else(|| Stop::Fail(line, "no socket under test for tcp_info".into()))?;
        let info = crate::syscall::Syscalls::getsockopt(&mut self.calls(), fd, crate::tcp::uapi::SockOpt::TCP_INFO)
            .map_err(|e| Stop::Fail(line, format!("getsockopt(TCP_INFO): {e:?}")))?;
        let options = self.host().tcpi_options(fd).map(f64::from);
        let lookup = |name: &str| if name == "tcpi_options" { options } else { tcp_info_value(&info, name) };
        code::run_block(block, &lookup, &mut self.globals).map_err(|e| match e {
            CodeError::Failed(m) => Stop::Fail(line, m),
            CodeError::Unsupported(f) => Stop::Unsupported(line, f),
        })
    }

    pub(crate) fn set_under_test(&mut self, fd: u32) {
        self.under_test = Some(fd);
    }

    /// socket() made `fd`, or listen() used it (`run_syscall_socket`, `run_syscall_listen`).
    pub(crate) fn set_new_socket(&mut self, fd: u32, new: bool) {
        if new {
            self.new_sockets.insert(fd);
        } else {
            self.new_sockets.remove(&fd);
        }
    }

    /// connect() or sendto() on `fd` (run_system_call.c `run_syscall_connect`): a socket still
    /// new becomes the active open under test; another stays as it is.
    pub(crate) fn start_active_open(&mut self, fd: u32) {
        if !self.new_sockets.remove(&fd) {
            return;
        }
        self.conn = Conn { remote: SockAddr::new(REMOTE_IP, PORT), connecting: true, ..Conn::passive() };
    }

    pub(crate) fn remote_addr(&self) -> SockAddr {
        SockAddr::new(REMOTE_IP, PORT)
    }

    fn inbound(&mut self, line: u32, p: &PacketSpec) -> Step {
        unsupported_packet(line, p)?;
        let ecn = match p.ecn {
            None => Ecn::NotEct,
            Some(IpEcn::Is(e)) => e,
            Some(IpEcn::Ect01) => return Err(Stop::Fail(line, "error handling packet: [ect01] can only be used with outbound packets".into())),
        };
        let flags = matcher::flags_of(&p.flags);
        let mut options = matcher::model_options(p.options.as_deref().unwrap_or(&[])).map_err(|f| Stop::Unsupported(line, f))?;
        let syn = flags.contains(Flags::SYN);
        if syn {
            self.conn.remote_isn = p.seq;
        }
        let off = self.conn.local_offset(syn);
        for b in &mut options.sack {
            *b = (b.0.wrapping_add(off), b.1.wrapping_add(off));
        }
        if let (Some((val, ecr)), true) = (options.timestamps, flags.contains(Flags::ACK)) {
            let live = self.conn.ts_map.get(&ecr).copied().or_else(|| {
                self.conn.first_ts.map(|(script, actual)| ecr.wrapping_sub(script).wrapping_add(actual))
            });
            let live = live.ok_or_else(|| {
                Stop::Fail(line, format!("error handling packet: unable to infer live TS ecr for script TS ecr {ecr};  no matching or preceding outbound TS val"))
            })?;
            options.timestamps = Some((val, live));
        }
        let window = p.window.ok_or_else(|| Stop::Fail(line, "error handling packet: inbound packet without a window".into()))?;
        let seg = Segment {
            src: self.conn.remote,
            dst: self.conn.local,
            seq: p.seq.wrapping_add(self.conn.remote_offset(syn)),
            ack: if flags.contains(Flags::ACK) { p.ack.unwrap_or(0).wrapping_add(off) } else { 0 },
            flags,
            ecn,
            window,
            options,
            payload: if p.len == 0 { Payload::Empty } else { Payload::Bytes(vec![0u8; p.len as usize].into()) },
        };
        let now = self.sim.now();
        self.with_host(|h, ctx| crate::engine::Node::on_segment(h, now, seg, ctx));
        Ok(())
    }

    /// The next segment the host sent on the connection under test, running the model until
    /// it sends one (or the horizon passes).
    fn sniff(&mut self, horizon: i64) -> Result<Option<(SimTime, Segment)>, Stop> {
        loop {
            loop {
                let next = self.sent.borrow_mut().pop_front();
                let Some((t, seg)) = next else { break };
                if self.is_ours(&seg) {
                    return Ok(Some((t, seg)));
                }
            }
            if self.now_us() > horizon {
                return Ok(None);
            }
            self.retry_pending()?;
            match self.sim.peek_time() {
                Some(next) if next.as_nanos() <= horizon as u64 * 1000 => {
                    self.sim.step();
                }
                _ => {
                    self.sim.run_until(SimTime(horizon as u64 * 1000 + 1000));
                    if self.sent.borrow().is_empty() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Whether `seg` belongs to the connection under test (packetdrill ignores the rest).
    fn is_ours(&mut self, seg: &Segment) -> bool {
        if self.conn.connecting && seg.dst == self.conn.remote && seg.flags.contains(Flags::SYN) && !seg.flags.contains(Flags::ACK) {
            self.conn.local = seg.src;
            self.conn.connecting = false;
            self.conn.live_isn = Some(seg.seq);
        }
        seg.src == self.conn.local && seg.dst == self.conn.remote
    }

    fn outbound(&mut self, line: u32, p: &PacketSpec, at: &Scheduled, last: Option<i64>) -> Step {
        unsupported_packet(line, p)?;
        let fail = |e: String| Stop::Fail(line, format!("error handling packet: {e}"));
        let horizon = at.end + SNIFF_HORIZON_US;
        let Some((t, first)) = self.sniff(horizon)? else {
            return Err(fail(format!(
                "expected outbound packet at {:.6} sec but the model sent none (ran to {:.6} sec)\nscript packet: {}",
                at.start as f64 / 1e6,
                self.now_us() as f64 / 1e6,
                matcher::dump_script(p)
            )));
        };
        let syn = first.flags.contains(Flags::SYN);
        if syn {
            self.conn.live_isn = Some(first.seq);
            self.conn.script_isn = p.seq;
        }
        // The model puts one MSS on the wire per segment (GSO done): join them into the
        // TSO-sized packet the script expects, as packetdrill aggregates what it sniffs.
        let mut frags = vec![first];
        let mut so_far = frags[0].payload.len();
        let mut last_t = t;
        while so_far < p.len {
            let Some((nt, next)) = self.sniff(horizon)? else { break };
            let prev = frags.last().expect("one fragment at least");
            // A segment that does not continue this one (a retransmission, an ACK) is the
            // next packet's: the joined packet is as long as it got.
            if !matcher::continues(prev, &next) {
                self.sent.borrow_mut().push_front((nt, next));
                break;
            }
            // Compared in the script's numbering, as packetdrill converts each sniffed packet.
            let off = self.conn.local_offset(false);
            let script_space = |s: &Segment| Segment { seq: s.seq.wrapping_sub(off), ..s.clone() };
            matcher::check_fragment(&script_space(prev), &script_space(&next), so_far, p.len).map_err(fail)?;
            so_far += next.payload.len();
            frags.push(next);
            last_t = nt;
        }
        let actual = self.map_outbound(&frags, p);
        // The joined packet carries the last fragment's time (`packet_duplicate_info`).
        let actual_t = (last_t.as_nanos() / 1000) as i64;
        let dumps = |a: &Actual| {
            format!(
                "\nscript packet: {:.6} {}\nactual packet: {:.6} {}",
                at.start as f64 / 1e6,
                matcher::dump_script(p),
                actual_t as f64 / 1e6,
                matcher::dump_actual(a)
            )
        };
        if so_far != p.len {
            return Err(fail(format!("live packet payload: expected {} bytes vs actual {so_far} bytes{}", p.len, dumps(&actual))));
        }
        matcher::verify(p, &actual, self.ts_tick_usecs, self.tol.usecs).map_err(|e| fail(format!("{e}{}", dumps(&actual))))?;
        time::verify(at, actual_t, last, self.tol, "outbound packet").map_err(|e| fail(format!("{e}{}", dumps(&actual))))?;
        // What happens after the packet (relative times) counts from when it went out.
        self.sim.run_until(last_t.max(self.sim.now()));
        Ok(())
    }

    /// The joined segment in the script's numbering (`map_outbound_live_packet`), recording
    /// the TS val mapping inbound TS ecr values are translated with. packetdrill's
    /// `aggregate_packets` (packet.c) builds the joined packet from the last fragment's
    /// headers (its flags, so the PSH that `__tcp_transmit_skb` puts on a GSO skb and GSO
    /// leaves on the skb's last segment; its ACK, window and options) and takes only the
    /// sequence number and CWR from the first.
    fn map_outbound(&mut self, frags: &[Segment], p: &PacketSpec) -> Actual {
        let first = &frags[0];
        let last = frags.last().expect("one fragment at least");
        let flags = Flags((last.flags.0 & !Flags::CWR.0) | (first.flags.0 & Flags::CWR.0));
        let syn = first.flags.contains(Flags::SYN);
        let remote = self.conn.remote_offset(syn);
        let mut options = matcher::wire_options(&last.options);
        for o in &mut options {
            if let super::ast::TcpOpt::Sack(blocks) = o {
                for b in blocks {
                    *b = (b.0.wrapping_sub(remote), b.1.wrapping_sub(remote));
                }
            }
        }
        if let (Some(sv), Some((av, _))) = (script_ts_val(p), last.options.timestamps) {
            self.conn.ts_map.insert(sv, av);
            let (fs, fa) = *self.conn.first_ts.get_or_insert((sv, av));
            for o in &mut options {
                if let super::ast::TcpOpt::Timestamp { val, .. } = o {
                    *val = fs.wrapping_add(av.wrapping_sub(fa));
                }
            }
        }
        Actual {
            flags,
            ecn: last.ecn,
            seq: first.seq.wrapping_sub(self.conn.local_offset(syn)),
            ack: last.ack.wrapping_sub(remote),
            window: last.window,
            len: frags.iter().map(|s| s.payload.len()).sum(),
            options,
        }
    }
}

/// A packet that needs what the model lacks: TOS and flow-label annotations, unknown
/// options.
fn unsupported_packet(line: u32, p: &PacketSpec) -> Step {
    if let Some(f) = &p.unsupported {
        return Err(Stop::Unsupported(line, f.clone()));
    }
    match p.options.as_deref().map(matcher::model_options) {
        Some(Err(f)) => Err(Stop::Unsupported(line, f)),
        _ => Ok(()),
    }
}

/// The TS val the script expects in an outbound packet.
fn script_ts_val(p: &PacketSpec) -> Option<u32> {
    p.options.as_ref()?.iter().find_map(|o| match o {
        super::ast::TcpOpt::Timestamp { val, .. } => Some(*val),
        _ => None,
    })
}

fn is_relative(t: super::ast::EventTime) -> bool {
    matches!(t, super::ast::EventTime::Relative(_) | super::ast::EventTime::RelativeRange(..))
}

/// A `tcpi_*` name (or a `TCP_CA_*` constant) from the model's `tcp_info`.
fn tcp_info_value(info: &serde_json::Value, name: &str) -> Option<f64> {
    let key = match name {
        "TCP_CA_Open" => return Some(0.0),
        "TCP_CA_Disorder" => return Some(1.0),
        "TCP_CA_CWR" => return Some(2.0),
        "TCP_CA_Recovery" => return Some(3.0),
        "TCP_CA_Loss" => return Some(4.0),
        // include/uapi/linux/tcp.h
        "TCPI_OPT_TIMESTAMPS" => return Some(1.0),
        "TCPI_OPT_SACK" => return Some(2.0),
        "TCPI_OPT_WSCALE" => return Some(4.0),
        "TCPI_OPT_ECN" => return Some(8.0),
        "TCPI_OPT_ECN_SEEN" => return Some(16.0),
        "TCPI_OPT_SYN_DATA" => return Some(32.0),
        "tcpi_rto" => "rto_us",
        "tcpi_rtt" => "srtt_us",
        "tcpi_rttvar" => "rttvar_us",
        "tcpi_state" => return None,
        "tcpi_last_data_sent" => "last_data_sent_ms",
        "tcpi_last_data_recv" => "last_data_recv_ms",
        "tcpi_last_ack_recv" => "last_ack_recv_ms",
        "tcpi_busy_time" => "busy_time_us",
        "tcpi_rwnd_limited" => "rwnd_limited_us",
        "tcpi_sndbuf_limited" => "sndbuf_limited_us",
        n => n.strip_prefix("tcpi_")?,
    };
    info.get(key)?.as_f64()
}
