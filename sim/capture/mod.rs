//! The real-kernel capture harness: a scenario file run on the real Linux kernel, so that the
//! model is always held against the truth (`tcpsim capture SCENARIO --out DIR`).
//!
//! Each scenario host becomes a network namespace and each link a veth pair between two of them,
//! or the namespace's own `lo` for a loopback link ([`netns`]); faults are nftables drop rules. The script runs with real sockets ([`runner`]),
//! `[[fault]]` entries are applied at their times by a second thread, `[[app]]` entries run as
//! threads of their own ([`apps`]). Every script step's result goes to the observation log
//! ([`observe`]), the same format the simulator writes. tcpdump listens on the server's veth,
//! whose timestamps are the trustworthy ones.
//!
//! This is the real world, not the model: it uses the monotonic clock and real sleeps, and its
//! results vary with timer slack (1–8 % late on 6.18, facts Appendix A). Comparisons with the
//! simulator must tolerate time ([`observe::compare`]); the readiness rows carry no time at all.
//! What the lab cannot reproduce (link delay and jitter without netem, a frozen host's stopped
//! timers, …) is listed in the report.
//!
//! Files written to the output directory: `observations.jsonl`, `capture.pcap`, `kernel.txt`
//! (`uname -r`), `scenario.toml` (the input, as run) and `report.json` ([`CaptureReport`] without
//! the observations).

pub mod apps;
pub mod load;
pub mod netns;
use crate::script::observe;
pub mod runner;

use crate::scenario::readiness::{self, ReadinessError, ReadinessRow, CONDITIONS};
use crate::scenario::types::{AppSpec, FaultKind, Observation, Scenario, Step};
use crate::table::TableLink;
use crate::world::LoadReport;
use netns::Lab;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Why a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No root, no namespaces, or a tool missing: the capture cannot run here at all.
    #[error("real-kernel capture unavailable: {0}")]
    Unavailable(String),
    #[error("`{cmd}` failed: {msg}")]
    Command { cmd: String, msg: String },
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// The scenario asks for something the harness cannot do (unknown socket, host, link…).
    #[error("scenario: {0}")]
    Scenario(String),
    #[error(transparent)]
    Readiness(#[from] ReadinessError),
    #[error(transparent)]
    Log(#[from] observe::LogError),
}

/// What a capture did, and what of the scenario the real network could not reproduce.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaptureReport {
    pub scenario: String,
    pub out_dir: PathBuf,
    /// `uname -r`.
    pub kernel: String,
    /// Host and interface tcpdump listened on.
    pub capture_host: Option<String>,
    pub capture_iface: Option<String>,
    /// tcpdump's closing lines ("N packets captured", …).
    pub tcpdump: Vec<String>,
    /// Scenario features approximated or left out (delay without netem, …).
    pub unreproduced: Vec<String>,
    /// What went unlike the scenario on this run (a script that overran its duration).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The `[[fault]]` entries applied, with the time each took effect (ns from the start).
    #[serde(default)]
    pub timed_faults: Vec<TimedFault>,
    /// What the `[[app]]` entries' connections did, in time order.
    #[serde(default)]
    pub app_events: Vec<apps::AppEvent>,
    /// The load applications' reports (`ab`, `http_server`), as the simulator gives them.
    #[serde(default)]
    pub load: Vec<LoadReport>,
    pub observations: Vec<Observation>,
}

impl std::fmt::Display for CaptureReport {
    /// The summary `tcpsim capture` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "captured `{}` on Linux {} into {}", self.scenario, self.kernel, self.out_dir.display())?;
        writeln!(f, "  {} observations, {} app events", self.observations.len(), self.app_events.len())?;
        if let (Some(h), Some(i)) = (&self.capture_host, &self.capture_iface) {
            writeln!(f, "  tcpdump on {h}/{i}: {}", self.tcpdump.join(", "))?;
        }
        for l in &self.load {
            write!(f, "{}", l.to_text())?;
        }
        for u in &self.unreproduced {
            writeln!(f, "  not reproduced: {u}")?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: std::io::Error) -> CaptureError {
    CaptureError::Io { path: path.display().to_string(), msg: e.to_string() }
}

/// `uname -r` of the running kernel.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// Whether captures can run here; `Err` says why not (not root, no `ip netns`, a tool missing).
pub fn can_capture() -> Result<(), String> {
    netns::check_environment()
}

/// The host tcpdump listens on: the host of the first listening socket, else of the first
/// server app, else the second host (the scenarios' server by convention), else the first.
fn capture_host(sc: &Scenario) -> Option<String> {
    let listener = sc.script.iter().find_map(|s| match s {
        Step::Listen { sock, .. } => Some(sock),
        _ => None,
    });
    let host_of = |name: &str| {
        sc.script.iter().find_map(|s| match s {
            Step::Socket { host, sock, .. } if sock == name => Some(host.clone()),
            _ => None,
        })
    };
    let server_app = sc.apps.iter().find_map(|a| match a {
        AppSpec::Server { host, .. } | AppSpec::HttpServer { host, .. } => Some(host.clone()),
        _ => None,
    });
    listener
        .and_then(|l| host_of(l))
        .or(server_app)
        .or_else(|| sc.hosts.get(1).or(sc.hosts.first()).map(|h| h.name.clone()))
}

/// Runs `scenario` on the real kernel and writes its results to `out_dir` (created if needed).
pub fn capture(scenario: &Scenario, out_dir: &Path) -> Result<CaptureReport, CaptureError> {
    netns::check_environment().map_err(CaptureError::Unavailable)?;
    // The real kernel runs the member of the scenario's own seed.
    let resolved = crate::scenario::draw::resolve(scenario, scenario.seed);
    let scenario = &resolved;
    std::fs::create_dir_all(out_dir).map_err(|e| io_err(out_dir, e))?;
    let mut lab = Lab::build(scenario)?;
    let mut unreproduced = std::mem::take(&mut lab.unreproduced);
    unreproduced.extend(unsupported(scenario));

    let host = capture_host(scenario);
    let iface = host.as_deref().and_then(|h| {
        let i = lab.host_index(h)?;
        lab.links.iter().find(|l| l.a == i || l.b == i).map(|l| (i, l.iface.clone()))
    });
    let pcap = out_dir.join("capture.pcap");
    if let Some((i, ifname)) = &iface {
        lab.start_tcpdump(*i, ifname, &pcap)?;
    } else {
        unreproduced.push("no link to capture on: no capture.pcap".into());
    }
    // The script runs on its own thread: it blocks SIGPIPE and moves between namespaces, neither
    // of which should leak into the caller's thread. This thread is its watchdog.
    let app_hosts = app_hosts(scenario, &lab)?;
    let addrs: Vec<(String, std::net::IpAddr)> =
        lab.hosts.iter().map(|h| (h.name.clone(), h.addr)).collect();
    let resolve = |to: &str| {
        crate::script::resolve(to, |h| addrs.iter().find(|(n, _)| n == h).map(|(_, a)| *a))
            .map(std::net::SocketAddr::from)
            .ok_or_else(|| CaptureError::Scenario(format!("`{to}` is not HOST:PORT or A.B.C.D:PORT")))
    };
    let live = runner::LiveFds::default();
    let lab = Mutex::new(lab);
    let app_events = Mutex::new(Vec::new());
    let stop_apps = AtomicBool::new(false);
    let start = Instant::now();
    let listening = std::sync::atomic::AtomicUsize::new(0);
    let servers = scenario.apps.iter().filter(|a| matches!(a, AppSpec::HttpServer { .. })).count();
    let end = start + Duration::from_nanos(scenario.duration.0.as_nanos());
    let app_run = apps::AppRun { resolve: &resolve, start, end, stop: &stop_apps, seed: scenario.seed, listening: &listening, servers };
    let mut warnings = Vec::new();
    let (result, timed, apps) = std::thread::scope(|s| {
        let (run_done, done_rx) = mpsc::channel::<()>();
        let timed = s.spawn(|| timed_faults(scenario, &lab, &live, start, done_rx));
        let apps: Vec<_> = scenario
            .apps
            .iter()
            .zip(&app_hosts)
            .enumerate()
            .map(|(i, (app, host))| {
                let (run, events) = (&app_run, &app_events);
                s.spawn(move || apps::run_app(i, app, host, run, events))
            })
            .collect();
        let script = s.spawn(|| runner::run_script(scenario, &lab, &live, start));
        let duration = Duration::from_nanos(scenario.duration.0.as_nanos());
        watchdog(&script, &live, start, start + duration + overrun_grace(duration), &mut warnings);
        if !apps.is_empty() {
            // Apps run for the scenario's whole duration, as in the simulator.
            std::thread::sleep((start + duration).saturating_duration_since(Instant::now()));
            stop_apps.store(true, Ordering::Relaxed);
        }
        drop(run_done);
        let panicked = || CaptureError::Scenario("a capture thread panicked".into());
        let apps: Result<Vec<Option<LoadReport>>, CaptureError> =
            apps.into_iter().map(|a| a.join().unwrap_or_else(|_| Err(panicked()))).collect();
        (
            script.join().unwrap_or_else(|_| Err(panicked())),
            timed.join().unwrap_or_else(|_| Err(panicked())),
            apps,
        )
    });
    let mut lab = lab.into_inner().expect("no thread panics holding the lab");
    let tcpdump = lab.stop_tcpdump();
    let (observations, open_at_end) = result?;
    drop(open_at_end);
    drop(lab);
    let tcpdump = tcpdump?;
    let timed_faults = timed?;
    let load: Vec<LoadReport> = apps?.into_iter().flatten().collect();
    let mut app_events = app_events.into_inner().expect("no app thread panics holding the log");
    app_events.sort_by_key(|e| (e.t_ns, e.app, e.conn));

    let kernel = kernel_release();
    let write = |name: &str, text: &str| {
        let p = out_dir.join(name);
        std::fs::write(&p, text).map_err(|e| io_err(&p, e))
    };
    write("observations.jsonl", &observe::to_jsonl(&observations))?;
    write("kernel.txt", &format!("{kernel}\n"))?;
    let toml_text = toml::to_string(scenario)
        .map_err(|e| CaptureError::Scenario(format!("cannot write scenario.toml: {e}")))?;
    write("scenario.toml", &toml_text)?;
    let report = CaptureReport {
        scenario: scenario.name.clone(),
        out_dir: out_dir.to_path_buf(),
        kernel,
        capture_host: iface.as_ref().map(|_| host.clone().unwrap_or_default()),
        capture_iface: iface.map(|(_, n)| n),
        tcpdump,
        unreproduced,
        warnings,
        timed_faults,
        app_events,
        load,
        observations,
    };
    let mut summary = serde_json::to_value(&report).expect("report serialises");
    summary.as_object_mut().expect("an object").remove("observations");
    summary.as_object_mut().expect("an object").remove("out_dir");
    write("report.json", &format!("{}\n", serde_json::to_string_pretty(&summary).expect("json")))?;
    Ok(report)
}

/// One scheduled `[[fault]]` as applied.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimedFault {
    pub kind: FaultKind,
    /// When it was due and when it took effect, in ns from the start of the script.
    pub at_ns: u64,
    pub applied_ns: u64,
}

/// Applies the scenario's `[[fault]]` entries at their times (in the order written when times
/// tie), until the script ends (`script_done` disconnects); those due later are not applied.
fn timed_faults(
    sc: &Scenario,
    lab: &Mutex<Lab>,
    live: &runner::LiveFds,
    start: Instant,
    script_done: mpsc::Receiver<()>,
) -> Result<Vec<TimedFault>, CaptureError> {
    let mut faults: Vec<_> = sc.faults.iter().collect();
    faults.sort_by_key(|f| f.at.map_or(0, |d| d.lo().as_nanos()));
    let mut applied = Vec::new();
    for f in faults {
        let at_ns = f.at.map_or(0, |d| d.lo().as_nanos());
        let due = start + Duration::from_nanos(at_ns);
        if let Err(mpsc::RecvTimeoutError::Disconnected) =
            script_done.recv_timeout(due.saturating_duration_since(Instant::now()))
        {
            break;
        }
        {
            let mut lab = lab.lock().expect("no thread panics holding the lab");
            lab.apply_fault(&f.action())?;
            if f.kind == FaultKind::Crash {
                if let Some(h) = f.host.as_deref().and_then(|h| lab.host_index(h)) {
                    runner::abort_host_sockets(live, h);
                }
            }
        }
        applied.push(TimedFault { kind: f.kind, at_ns, applied_ns: start.elapsed().as_nanos() as u64 });
    }
    Ok(applied)
}

/// Each app's host (address and namespace), by the app's `host`.
fn app_hosts(sc: &Scenario, lab: &Lab) -> Result<Vec<apps::AppHost>, CaptureError> {
    sc.apps
        .iter()
        .map(|a| {
            let host = a.host();
            let h = lab
                .host_index(host)
                .ok_or_else(|| CaptureError::Scenario(format!("app: unknown host `{host}`")))?;
            let netns = lab.hosts[h].fd.try_clone().map_err(|e| io_err(Path::new(&lab.hosts[h].netns), e))?;
            Ok(apps::AppHost { name: host.to_string(), addr: lab.hosts[h].addr, netns })
        })
        .collect()
}

/// How long a script may run past the scenario's `duration` before its blocked calls are cut:
/// a fifth of the duration (real timers fire 1–8 % late, facts Appendix A), at least 2 s.
fn overrun_grace(duration: Duration) -> Duration {
    (duration / 5).max(Duration::from_secs(2))
}

/// Waits for the script thread; past `deadline`, frees any call it is blocked in by shutting
/// down every open socket (`shutdown(SHUT_RDWR)` wakes accept, connect, recv, send and pollers),
/// so that a scenario whose blocking call never returns on the real kernel still ends.
fn watchdog<T>(
    script: &std::thread::ScopedJoinHandle<'_, T>,
    live: &runner::LiveFds,
    start: Instant,
    deadline: Instant,
    warnings: &mut Vec<String>,
) {
    while !script.is_finished() {
        if Instant::now() >= deadline && warnings.is_empty() {
            let fds = live.lock().expect("the runner never panics holding it");
            for &fd in fds.keys() {
                // SAFETY: fd is open: the runner removes it from the set, under this lock,
                // before closing it.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            }
            warnings.push(format!(
                "the script overran the scenario's duration at {:.3} s; its open sockets were shut down (SHUT_RDWR) to end blocked calls",
                deadline.duration_since(start).as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Scenario parts the harness runs only approximately or not at all (it is a script runner).
fn unsupported(sc: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let faults = || {
        let timed = sc.faults.iter().map(|f| f.kind);
        timed.chain(sc.script.iter().filter_map(|s| match s {
            Step::Fault { kind, .. } => Some(*kind),
            _ => None,
        }))
    };
    if sc.faults.iter().any(|f| f.kind == FaultKind::Crash) {
        out.push("a timed crash aborts the host's sockets in place (connect AF_UNSPEC): their fds stay open, so later script calls on them see a closed socket, not EBADF".into());
    }
    if !sc.apps.is_empty() && faults().any(|k| k == FaultKind::Crash) {
        out.push("a crash drops the traffic of the host's [[app]] sockets but does not abort them".into());
    }
    if faults().any(|k| k == FaultKind::Freeze) {
        out.push("freeze approximated by dropping all of the host's traffic: its timers keep running (retransmits, keepalives) where a frozen host's would not".into());
    }
    if faults().any(|k| k == FaultKind::LinkDown) {
        out.push("link_down approximated by drops at both ends (a pulled cable's carrier loss): the server-side capture still shows packets that arrive and are dropped".into());
    }
    if faults().any(|k| k == FaultKind::Crash) {
        out.push("crash: the host's traffic is dropped and its open sockets aborted with SO_LINGER {1,0} (their RSTs dropped); kernel state no fd holds (TIME_WAIT, SYN_RECV requests, orphans) survives, unlike a real crash".into());
    }
    if !sc.middleboxes.is_empty() {
        out.push(format!("{} [[middlebox]] entries not reproduced", sc.middleboxes.len()));
    }
    out
}

/// Runs readiness recipe `id` live over `link` (its script, then the seven observations of its
/// `observe` socket) into `out_dir`, and returns its row. Over loopback the recipe is the one
/// the simulator runs ([`readiness::on_loopback`]): one host, so one namespace, both ends on
/// its `lo` at 127.0.0.1.
pub fn observe_readiness(id: &str, link: TableLink, out_dir: &Path) -> Result<ReadinessRow, CaptureError> {
    let mut sc = readiness::observed_recipe(id)?;
    if link == TableLink::Loopback {
        sc = readiness::on_loopback(&sc)?;
    }
    let report = capture(&sc, out_dir)?;
    Ok(readiness::row_from_observations(id, &report.observations)?)
}

/// How many recipes run at once in [`kernel_table`]: they are mostly waiting (the longest
/// waits 5 s), and each lives in its own namespaces.
const TABLE_PARALLELISM: usize = 8;

/// All 22 rows over `link`, captured live now (`tcpsim table --kernel [--link loopback]`).
/// Each recipe runs in a fresh lab in a temporary directory, removed afterwards; several run at
/// once.
pub fn kernel_table(link: TableLink) -> Result<Vec<ReadinessRow>, CaptureError> {
    // Its own directory per call: two tables measured at once by one process (tests) must not
    // remove each other's.
    static TABLES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = TABLES.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("tcpsim-table-{}-{n}", std::process::id()));
    let rows = run_all(&CONDITIONS, link, &base);
    let _ = std::fs::remove_dir_all(&base);
    rows
}

/// Captures every condition in `ids` over `link` under `base/<id>/`, in parallel; rows in
/// `ids` order.
pub fn run_all(ids: &[&str], link: TableLink, base: &Path) -> Result<Vec<ReadinessRow>, CaptureError> {
    netns::check_environment().map_err(CaptureError::Unavailable)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..TABLE_PARALLELISM.min(ids.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let r = observe_readiness(id, link, &base.join(id));
                results.lock().expect("no panics while held").push((i, r));
            });
        }
    });
    let mut results = results.into_inner().expect("no panics while held");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
