//! The load applications: `ab` against a finite-capacity server. Expected figures are derived
//! from the scenario (requests, concurrency, service time), never copied from a run.

mod scenario_text;

use std::path::Path;
use tcpsim::scenario::{load, parse, AppSpec, Scenario};
use tcpsim::trace::Trace;
use tcpsim::world::{AbReport, LoadReport, RunReport, ServerReport, World};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn run(sc: &Scenario) -> RunReport {
    let mut world = World::build(sc, sc.seed, Trace::off()).unwrap_or_else(|e| panic!("{e}"));
    world.run(sc);
    let report = world.report(sc);
    assert!(report.ok(), "{:?} {:?}", report.illegal_transitions, report.rule_violations);
    report
}

fn ab(r: &RunReport) -> &AbReport {
    r.load.iter().find_map(|l| if let LoadReport::Ab(a) = l { Some(a) } else { None }).expect("an ab summary")
}

fn server(r: &RunReport) -> &ServerReport {
    r.load.iter().find_map(|l| if let LoadReport::Server(s) = l { Some(s) } else { None }).expect("a server summary")
}

/// (requests, concurrency, service time in ns) of the scenario's ab and server.
fn shape(sc: &Scenario) -> (u64, u64, u64) {
    let mut n = (0, 0, 0);
    for a in &sc.apps {
        match a {
            AppSpec::Ab { requests, concurrency, .. } => (n.0, n.1) = (u64::from(*requests), u64::from(*concurrency)),
            AppSpec::HttpServer { service_time, .. } => n.2 = service_time.map_or(0, |d| d.0.as_nanos()),
            _ => {}
        }
    }
    n
}

#[test]
fn ab_c1000_is_served_at_the_servers_rate_with_littles_law_latency() {
    let sc = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/scale/ab-c1000.toml")).unwrap();
    let (n, c, svc) = shape(&sc);
    let r = run(&sc);
    let (a, s) = (ab(&r), server(&r));
    // More requests than the 28 232 ephemeral ports within TIME_WAIT's 60 s: they complete
    // only because a SYN reopens the server's TIME_WAIT 4-tuple (TCP_TW_SYN).
    assert_eq!((u64::from(a.completed), a.failed, a.not_finished), (n, 0, 0), "{a:?}");
    assert_eq!(s.served, n);
    // One worker, one request per service time: the last completes n service times in.
    let last = a.last_done_ns;
    assert!(last >= n * svc && last < n * svc + 10 * MS, "last completion at {last} ns");
    // c requests in the system, served at 1/svc: each waits about c × svc (Little's law).
    let p50 = a.latency_ns.p50;
    assert!(p50.abs_diff(c * svc) <= c * svc / 20, "median latency {p50} ns, expected about {} ns", c * svc);
    assert_eq!(a.latency_ns.count as u64, n);
}

/// ab -n 10 -c 3 against a server with one worker and 10 ms per request, `port` its port.
fn small(port: u16) -> String {
    let hosts = scenario_text::two_hosts("ab-small", "10s", "1ms");
    format!(
        r#"{hosts}
[[app]]
kind = "http_server"
host = "server"
port = {port}
service_time = "10ms"
response_bytes = 5000

[[app]]
kind = "ab"
host = "client"
to = "server:80"
requests = 10
concurrency = 3
"#
    )
}

#[test]
fn a_single_worker_serves_requests_one_after_another() {
    let sc = parse(&small(80), "ab-small.toml").unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc);
    let (a, s) = (ab(&r), server(&r));
    assert_eq!((a.completed, a.failed, s.accepted, s.served), (10, 0, 10, 10));
    // Handshake (2 ms), request (1 ms), then 10 ms per request in turn: the tenth response
    // leaves the server at 3 + 100 ms and reaches ab 1 ms later, with the server's FIN.
    assert!(a.last_done_ns >= 104 * MS && a.last_done_ns < 110 * MS, "{}", a.last_done_ns);
    // The first request waits for nobody; the slowest waits for all three in the system.
    assert!(a.latency_ns.max >= 30 * MS && a.latency_ns.max < S, "{:?}", a.latency_ns);
    // The JSON report carries the summary.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["load"][0]["kind"], "ab");
    assert_eq!(json["load"][0]["completed"], 10);
}

#[test]
fn ab_counts_refused_connections_by_errno() {
    let sc = parse(&small(81), "ab-refused.toml").unwrap_or_else(|e| panic!("{e}"));
    let r = run(&sc);
    let a = ab(&r);
    assert_eq!((a.completed, a.failed), (0, 10));
    assert_eq!(a.failed_by_errno.get("ECONNREFUSED"), Some(&10), "{a:?}");
    assert_eq!(a.first_failure.as_ref().map(|f| f.errno.as_str()), Some("ECONNREFUSED"));
}
