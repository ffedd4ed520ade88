//! `[[app]]` entries on the real kernel: a server that listens (and accepts and reads
//! everything, echoing if asked) and clients that open connections on a schedule, send derived
//! bytes and close. Each app is one thread in its host's namespace, driving non-blocking sockets
//! with `poll()` in short slices so that it stops as soon as the run ends; what happens to each
//! connection goes to the report as [`AppEvent`]s.

use crate::script::observe::errno_of;
use super::CaptureError;
use crate::errno::Errno;
use super::load;
use crate::scenario::types::{AppSpec, OptValue, SockOpt};
use crate::world::LoadReport;
use crate::tcp::segment::derived_byte;
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest an app thread waits in `poll()` before looking at the clock and the stop flag.
const SLICE: Duration = Duration::from_millis(10);

/// One thing that happened to an app's connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEvent {
    /// Index of the `[[app]]` entry.
    pub app: usize,
    /// The connection's number within the app (clients: in order of opening; servers: of accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u32>,
    /// Nanoseconds from the start of the run.
    pub t_ns: u64,
    /// `listening`, `accepted`, `connected`, `sent`, `received`, `eof`, `closed`, `error`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Errno>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// What an app thread needs of its host.
pub struct AppHost {
    /// The host's scenario name (the load reports carry it).
    pub name: String,
    pub addr: IpAddr,
    /// The host's namespace, for `setns`.
    pub netns: File,
}

/// The shared log of one run's apps.
struct Log<'a> {
    app: usize,
    start: Instant,
    events: &'a Mutex<Vec<AppEvent>>,
}

impl Log<'_> {
    fn push(&self, conn: Option<u32>, event: &str, errno: Option<Errno>, bytes: Option<u64>) {
        let e = AppEvent {
            app: self.app,
            conn,
            t_ns: self.start.elapsed().as_nanos() as u64,
            event: event.to_string(),
            errno,
            bytes,
        };
        self.events.lock().expect("no app thread panics holding the log").push(e);
    }

    fn error(&self, conn: Option<u32>, err: &std::io::Error) {
        let (errno, _) = errno_of(err.raw_os_error().unwrap_or(0));
        self.push(conn, "error", errno, None);
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> CaptureError + '_ {
    move |e| CaptureError::Io { path: what.to_string(), msg: e.to_string() }
}

/// Runs app `index` until `stop` is set; `resolve` turns `host:port` into an address. A load
/// application (`ab`, `http_server`) returns its report ([`super::load`]).
pub fn run_app(
    index: usize,
    app: &AppSpec,
    host: &AppHost,
    run: &AppRun<'_>,
    events: &Mutex<Vec<AppEvent>>,
) -> Result<Option<LoadReport>, CaptureError> {
    let AppRun { resolve, start, stop, seed, .. } = *run;
    // This thread lives in the host's namespace from here on; it is the app's own.
    super::netns::enter(&host.netns)?;
    let log = Log { app: index, start, events };
    match app {
        AppSpec::Server { port, backlog, accept, echo, sockopts, .. } => {
            let local = SocketAddr::new(host.addr, *port);
            let l = new_socket(local, sockopts)?;
            l.bind(&SockAddr::from(local)).map_err(io("bind"))?;
            l.listen(*backlog).map_err(io("listen"))?;
            log.push(None, "listening", None, None);
            serve(&l, *accept, *echo, &log, stop);
        }
        AppSpec::Client { to, at, count, interval, bytes, close, sockopts, .. } => {
            let to = resolve(to)?;
            let at = at.map_or(Duration::ZERO, |d| Duration::from_nanos(d.0.as_nanos()));
            let interval = interval.map_or(Duration::ZERO, |d| Duration::from_nanos(d.0.as_nanos()));
            let plan =
                ClientPlan { to, first: start + at, interval, count: *count, bytes: *bytes, close: *close };
            run_clients(&plan, sockopts, index as u64, &log, stop)?;
        }
        AppSpec::Ab {
            to, at, requests, concurrency, request_bytes, response_bytes, keepalive, timeout, start_interval, sockopts, ..
        } => {
            let plan = load::AbPlan {
                app: index,
                to: resolve(to)?,
                at: at.map_or(Duration::ZERO, |d| Duration::from_nanos(d.0.as_nanos())),
                requests: *requests,
                concurrency: *concurrency,
                request_bytes: *request_bytes,
                response_bytes: *response_bytes,
                keepalive: *keepalive,
                timeout: Duration::from_nanos(timeout.0.as_nanos()),
                start_interval: start_interval.map_or(Duration::ZERO, |d| Duration::from_nanos(d.0.as_nanos())),
            };
            run.wait_for_servers();
            return Ok(Some(LoadReport::Ab(load::run_ab(&plan, sockopts, host, run)?)));
        }
        AppSpec::HttpServer {
            port, backlog, workers, service_time, service, response_bytes, accept_batch, keepalive, sockopts, ..
        } => {
            let mut plan = load::ServerPlan {
                app: index,
                port: *port,
                backlog: *backlog,
                workers: *workers,
                service_time: service_time.map_or(crate::time::Dur::ZERO, |d| d.0),
                service: *service,
                response_bytes: *response_bytes,
                accept_batch: *accept_batch,
                keepalive: *keepalive,
                rng: crate::engine::RngStreams::new(seed).stream(&format!("app/{index}")),
            };
            return Ok(Some(LoadReport::Server(load::run_http_server(&mut plan, sockopts, host, run)?)));
        }
        AppSpec::Heartbeat(_) | AppSpec::Messenger(_) | AppSpec::MessageSink(_) => {
            return Err(CaptureError::Scenario(format!("app[{index}]: protocol applications run only in the simulator")));
        }
    }
    Ok(None)
}

/// What every app thread of one run shares: how to resolve `host:port`, the run's start, end
/// and stop flag, the scenario's seed (a server's service times are drawn from its stream),
/// and how many servers listen so far.
#[derive(Copy, Clone)]
pub struct AppRun<'a> {
    pub resolve: &'a (dyn Fn(&str) -> Result<SocketAddr, CaptureError> + Sync),
    pub start: Instant,
    /// The scenario's end: what a load generator sees after it (the servers closing as their
    /// threads stop) is not counted, as the simulator's run ends there.
    pub end: Instant,
    pub stop: &'a AtomicBool,
    pub seed: u64,
    /// Servers (`http_server`) listening; a load generator waits for all of them, as the
    /// simulator's servers listen before any generator starts.
    pub listening: &'a AtomicUsize,
    pub servers: usize,
}

impl AppRun<'_> {
    /// Waits (at most a second) until every server of the run listens.
    pub fn wait_for_servers(&self) {
        let give_up = Instant::now() + Duration::from_secs(1);
        while self.listening.load(Ordering::Acquire) < self.servers && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A non-blocking TCP socket of `addr`'s family with the app's options set.
pub(super) fn new_socket(addr: SocketAddr, opts: &BTreeMap<SockOpt, OptValue>) -> Result<Socket, CaptureError> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(io("socket"))?;
    s.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    for (opt, value) in opts {
        super::runner::set_option(s.as_raw_fd(), *opt, value)
            .map_err(|e| CaptureError::Scenario(format!("app option {opt:?}: {e}")))?;
        // (a refused option is an error here: an app has no observation log to carry its errno)
    }
    Ok(s)
}

/// `poll()` on `fds` for at most one [`SLICE`]; the revents, in order.
fn poll_slice(fds: &[(i32, i16)]) -> Vec<i16> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&(fd, events)| libc::pollfd { fd, events, revents: 0 }).collect();
    if p.is_empty() {
        std::thread::sleep(SLICE);
        return Vec::new();
    }
    // SAFETY: p holds p.len() valid pollfds.
    unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, SLICE.as_millis() as i32) };
    p.iter().map(|p| p.revents).collect()
}

/// The server: accepts (if asked) and reads every connection to its end, echoing if asked.
fn serve(l: &Socket, accept: bool, echo: bool, log: &Log<'_>, stop: &AtomicBool) {
    // (socket, conn number, bytes received)
    let mut conns: Vec<(Socket, u32, u64)> = Vec::new();
    let mut accepted = 0u32;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut fds: Vec<(i32, i16)> = conns.iter().map(|(s, _, _)| (s.as_raw_fd(), libc::POLLIN)).collect();
        if accept {
            fds.push((l.as_raw_fd(), libc::POLLIN));
        }
        let rev = poll_slice(&fds);
        // Reads first (rev[i] is conns[i]'s), then new connections (the listener's is last).
        let mut i = 0;
        conns.retain_mut(|c| {
            let ready = rev.get(i).is_some_and(|r| *r != 0);
            i += 1;
            !ready || read_conn(c, echo, &mut buf, log)
        });
        if accept && rev.last().is_some_and(|r| *r != 0) {
            while let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(true);
                log.push(Some(accepted), "accepted", None, None);
                conns.push((s, accepted, 0));
                accepted += 1;
            }
        }
    }
}

/// Reads what a connection has; false once it is finished (EOF or error), after logging why.
fn read_conn(c: &mut (Socket, u32, u64), echo: bool, buf: &mut [u8], log: &Log<'_>) -> bool {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(c.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            0 => {
                log.push(Some(c.1), "eof", None, Some(c.2));
                return false;
            }
            n if n > 0 => {
                c.2 += n as u64;
                if echo {
                    send_all(&c.0, &buf[..n as usize]);
                }
            }
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    return true;
                }
                log.push(Some(c.1), "received", None, Some(c.2));
                log.error(Some(c.1), &e);
                return false;
            }
        }
    }
}

/// Echoes `data`, waiting (briefly, in slices) for room; gives up on an error.
fn send_all(s: &Socket, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: data is valid for its length.
        let n = unsafe { libc::send(s.as_raw_fd(), data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n > 0 {
            data = &data[n as usize..];
        } else if std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
            poll_slice(&[(s.as_raw_fd(), libc::POLLOUT)]);
        } else {
            return;
        }
    }
}

struct ClientPlan {
    to: SocketAddr,
    first: Instant,
    interval: Duration,
    count: u32,
    bytes: u64,
    close: bool,
}

enum ClientState {
    Connecting,
    Sending {
        sent: u64,
    },
    /// Sent everything and left open (`close = false`).
    Idle,
}

/// The clients: connection `i` opens at `first + i·interval`; each sends its bytes as soon as it
/// is connected, then closes (if asked).
fn run_clients(
    plan: &ClientPlan,
    opts: &BTreeMap<SockOpt, OptValue>,
    stream_base: u64,
    log: &Log<'_>,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    let mut conns: Vec<(Socket, u32, ClientState)> = Vec::new();
    let mut opened = 0u32;
    while !stop.load(Ordering::Relaxed) {
        while opened < plan.count && Instant::now() >= plan.first + plan.interval * opened {
            let s = new_socket(plan.to, opts)?;
            match s.connect(&SockAddr::from(plan.to)) {
                Ok(()) => conns.push((s, opened, ClientState::Connecting)),
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    conns.push((s, opened, ClientState::Connecting))
                }
                Err(e) => log.error(Some(opened), &e),
            }
            opened += 1;
        }
        let fds: Vec<(i32, i16)> = conns
            .iter()
            .map(|(s, _, st)| {
                (s.as_raw_fd(), if matches!(st, ClientState::Idle) { libc::POLLIN } else { libc::POLLOUT })
            })
            .collect();
        let rev = poll_slice(&fds);
        let mut keep = Vec::with_capacity(conns.len());
        for ((s, n, st), r) in conns.drain(..).zip(rev.into_iter().chain(std::iter::repeat(0))) {
            let next = if r == 0 { Some(st) } else { step_client(&s, n, st, plan, stream_base, log) };
            if let Some(st) = next {
                keep.push((s, n, st));
            }
        }
        conns = keep;
    }
    Ok(())
}

/// Advances one client connection after poll reported it; `None` once it is finished.
fn step_client(
    s: &Socket,
    n: u32,
    st: ClientState,
    plan: &ClientPlan,
    stream_base: u64,
    log: &Log<'_>,
) -> Option<ClientState> {
    match st {
        ClientState::Connecting => match s.take_error() {
            Ok(None) => {
                log.push(Some(n), "connected", None, None);
                Some(ClientState::Sending { sent: 0 })
            }
            Ok(Some(e)) | Err(e) => {
                log.error(Some(n), &e);
                None
            }
        },
        ClientState::Sending { mut sent } => {
            let stream = (stream_base << 32) | u64::from(n);
            while sent < plan.bytes {
                let chunk: Vec<u8> =
                    (sent..plan.bytes.min(sent + 16 * 1024)).map(|o| derived_byte(stream, o)).collect();
                // SAFETY: chunk is valid for its length.
                let r = unsafe {
                    libc::send(s.as_raw_fd(), chunk.as_ptr().cast(), chunk.len(), libc::MSG_NOSIGNAL)
                };
                if r > 0 {
                    sent += r as u64;
                    continue;
                }
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    return Some(ClientState::Sending { sent });
                }
                log.error(Some(n), &e);
                return None;
            }
            log.push(Some(n), "sent", None, Some(sent));
            if plan.close {
                log.push(Some(n), "closed", None, None);
                None
            } else {
                Some(ClientState::Idle)
            }
        }
        ClientState::Idle => {
            // The peer sent something or went away: drain it, log its end.
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: buf is valid for its length.
                let r = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                match r {
                    0 => {
                        log.push(Some(n), "eof", None, None);
                        return None;
                    }
                    r if r > 0 => continue,
                    _ => {
                        let e = std::io::Error::last_os_error();
                        if e.kind() == std::io::ErrorKind::WouldBlock {
                            return Some(ClientState::Idle);
                        }
                        log.error(Some(n), &e);
                        return None;
                    }
                }
            }
        }
    }
}
