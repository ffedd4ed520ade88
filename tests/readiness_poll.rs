//! poll(2) as Linux computes it (`tcp_poll` filtered by `do_pollfd`), row by row against the
//! masks measured on Linux 6.18 (linux-tcp-facts §2.2), and as FreeBSD computes it. Every answer
//! goes through the rule checker.

mod readiness_support;

use readiness_support::*;
use tcpsim::errno::Errno;
use tcpsim::rules::{Checker, Observed, Os};
use tcpsim::socket::epoll::{CtlOp, Epoll};
use tcpsim::socket::poll::{poll_revents, tcp_poll, POLL_REVENTS_CLOSED_FD};
use tcpsim::socket::view::{PollMask, SockView};
use tcpsim::tcp::state::TcpState;
use tcpsim::time::SimTime;

/// (condition, socket, Linux LT mask measured on 6.18, FreeBSD poll mask from source).
fn rows() -> Vec<(&'static str, SockView, Vec<&'static str>, Vec<&'static str>)> {
    let lowat10 = SockView {
        rcvlowat: 10,
        ..with_data(established(), 5)
    };
    vec![
        (
            "fresh socket (CLOSE)",
            fresh(),
            vec!["POLLOUT", "POLLHUP"],
            vec![],
        ),
        ("listener, queue empty", listener(0), vec![], vec![]),
        (
            "listener, one completed connection",
            listener(1),
            vec!["POLLIN"],
            vec!["POLLIN"],
        ),
        (
            "connect in progress",
            in_state(TcpState::SynSent),
            vec![],
            vec![],
        ),
        (
            "established, idle",
            established(),
            vec!["POLLOUT"],
            vec!["POLLOUT"],
        ),
        (
            "data available",
            with_data(established(), 1),
            vec!["POLLIN", "POLLOUT"],
            vec!["POLLIN", "POLLOUT"],
        ),
        (
            "5 bytes below SO_RCVLOWAT 10",
            lowat10,
            vec!["POLLOUT"],
            vec!["POLLOUT"],
        ),
        (
            "peer FIN, data unread",
            peer_fin(1),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP"],
            vec!["POLLIN", "POLLOUT", "POLLRDHUP"],
        ),
        (
            "peer FIN, drained",
            peer_fin(0),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP"],
            vec!["POLLIN", "POLLOUT", "POLLRDHUP"],
        ),
        (
            "local SHUT_WR (FIN_WAIT2)",
            local_shut_wr(),
            vec!["POLLOUT"],
            vec!["POLLOUT"],
        ),
        (
            "local SHUT_RD",
            local_shut_rd(),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP"],
            vec!["POLLIN", "POLLOUT", "POLLRDHUP"],
        ),
        (
            "local SHUT_RDWR",
            local_shut_rdwr(),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        (
            "both directions shut, fd in CLOSE",
            torn_down(None, 0),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        (
            "RST received, error not yet read",
            torn_down(Some(Errno::ECONNRESET), 0),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        (
            "RST received, error already read",
            torn_down(None, 0),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        (
            "RST with unread data",
            torn_down(Some(Errno::ECONNRESET), 10),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        (
            "ETIMEDOUT",
            torn_down(Some(Errno::ETIMEDOUT), 0),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        (
            "connect refused",
            torn_down(Some(Errno::ECONNREFUSED), 0),
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"],
            vec!["POLLIN", "POLLRDHUP", "POLLHUP"],
        ),
        ("send buffer full", sndbuf_full(), vec![], vec![]),
        (
            "send buffer full, data to read",
            with_data(sndbuf_full(), 3),
            vec!["POLLIN"],
            vec!["POLLIN"],
        ),
    ]
}

#[test]
fn linux_poll_and_lt_epoll_match_the_measured_table() {
    let mut checker = Checker::new(1);
    let mut answers = 0;
    for (i, (condition, v, linux, _)) in rows().into_iter().enumerate() {
        answers += if linux.is_empty() { 1 } else { 2 };
        let now = SimTime(i as u64);
        let revents = checker.linux_poll(now, &v, TABLE_EVENTS);
        assert_eq!(names(revents), linux, "poll: {condition}");
        // A level-triggered epoll with the same interest gives the same mask.
        let mut ep = Epoll::new();
        ep.ctl(CtlOp::Add, 7, TABLE_EVENTS.0, tcp_poll(&v)).unwrap();
        let events = checker.epoll_wait(now, &mut ep, 8, |_| v.clone());
        let epoll: Vec<&str> = events.first().map_or(vec![], |(_, m)| names(*m));
        assert_eq!(epoll, linux, "epoll: {condition}");
    }
    // Every poll answer and every epoll event was checked (epoll reports nothing for an empty mask).
    assert_eq!(checker.finish(), Ok(answers));
}

#[test]
fn freebsd_poll_follows_sopoll_generic() {
    let mut checker = Checker::new(2);
    for (i, (condition, v, _, freebsd)) in rows().into_iter().enumerate() {
        let revents = checker.freebsd_poll(SimTime(i as u64), &v, TABLE_EVENTS);
        assert_eq!(names(revents), freebsd, "FreeBSD poll: {condition}");
    }
    checker.finish().unwrap();
}

#[test]
fn err_and_hup_come_without_being_requested() {
    let dead = torn_down(Some(Errno::ECONNRESET), 0);
    assert_eq!(
        poll_revents(&dead, PollMask::EMPTY),
        PollMask::ERR | PollMask::HUP
    );
    assert_eq!(poll_revents(&fresh(), PollMask::IN), PollMask::HUP);
    // RDNORM/WRNORM only when asked for.
    assert_eq!(
        poll_revents(
            &with_data(established(), 1),
            PollMask::RDNORM | PollMask::WRNORM
        ),
        PollMask::RDNORM | PollMask::WRNORM
    );
}

#[test]
fn closed_fd_reports_pollnval_and_the_rules_accept_it() {
    let o = Observed::poll_closed_fd(Os::Linux, TABLE_EVENTS, POLL_REVENTS_CLOSED_FD);
    let mut checker = Checker::new(3);
    assert!(checker.observe(SimTime(0), &o));
    // POLLNVAL on an open socket is caught.
    let v = established();
    let wrong = Observed::poll(Os::Linux, &v, TABLE_EVENTS, PollMask::OUT | PollMask::NVAL);
    assert!(!checker.observe(SimTime(1), &wrong));
    assert_eq!(
        checker.failures()[0].violation.rule,
        "pollnval-iff-fd-not-open"
    );
}

#[test]
fn rcvlowat_pressure_and_small_window_make_a_short_queue_readable() {
    let short = SockView {
        rcvlowat: 10,
        ..with_data(established(), 5)
    };
    assert!(!tcp_poll(&short).contains(PollMask::IN));
    let pressure = SockView {
        rmem_pressure: true,
        ..short.clone()
    };
    assert!(tcp_poll(&pressure).contains(PollMask::IN));
    let small_window = SockView {
        rcv_wnd_small: true,
        ..short.clone()
    };
    assert!(tcp_poll(&small_window).contains(PollMask::IN));
    // Nothing to read: pressure alone does not make it readable.
    let empty = SockView {
        rcv_avail: 0,
        ..pressure
    };
    assert!(!tcp_poll(&empty).contains(PollMask::IN));
    let mut checker = Checker::new(4);
    for v in [short, small_window, empty] {
        checker.linux_poll(SimTime(0), &v, TABLE_EVENTS);
    }
    checker.finish().unwrap();
}

#[test]
fn urgent_data_gives_pollpri_except_while_connecting() {
    let urgent = SockView {
        urg_valid: true,
        ..with_data(established(), 1)
    };
    assert!(tcp_poll(&urgent).contains(PollMask::PRI));
    let connecting = SockView {
        urg_valid: true,
        ..in_state(TcpState::SynSent)
    };
    assert_eq!(tcp_poll(&connecting), PollMask::EMPTY);
    // SYN_RECV (a simultaneous open; Fast Open is not modelled) reports nothing either.
    assert_eq!(tcp_poll(&in_state(TcpState::SynRecv)), PollMask::EMPTY);
}

/// A blocking poll(2) in simulated time, as the model runs it: the caller sleeps on the socket
/// until what it asked for (or POLLERR/POLLHUP) is reported, or its timeout (fs/select.c
/// `do_poll`). An ACK that frees send space does not end a wait for POLLIN alone: with nothing to
/// read it returns 0 at exactly 100 ms; data arriving ends the next wait the moment it lands;
/// timeout 0 never waits.
#[test]
fn blocking_poll_in_simulated_time() {
    use tcpsim::scenario::parse;
    use tcpsim::trace::Trace;
    use tcpsim::world::World;

    const MS: u64 = 1_000_000;
    let script = r#"
name = "blocking-poll"
duration = "10s"

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
delay = "10ms"

[[script]]
op = "socket"
host = "server"
sock = "listener"

[[script]]
op = "bind"
sock = "listener"
port = 8080

[[script]]
op = "listen"
sock = "listener"
backlog = 16

[[script]]
op = "socket"
host = "client"
sock = "c"

[[script]]
op = "connect"
sock = "c"
to = "server:8080"

[[script]]
op = "accept"
sock = "listener"
new = "s"

[[script]]
op = "send"
sock = "c"
data = "hello"

[[script]]
op = "poll"
sock = "c"
events = ["POLLIN"]
timeout = "100ms"

[[script]]
op = "send"
sock = "s"
data = "world"

[[script]]
op = "poll"
sock = "c"
events = ["POLLIN"]
timeout = "100ms"

[[script]]
op = "recv"
sock = "c"
len = 100

[[script]]
op = "poll"
sock = "c"
events = ["POLLIN"]
timeout = "0"
"#;
    let sc = parse(script, "blocking-poll.toml").unwrap();
    let mut world = World::build(&sc, sc.seed, Trace::memory()).unwrap();
    let obs = world.run(&sc);
    assert!(world.rule_failures().is_empty(), "{:?}", world.rule_failures());
    let trace: Vec<serde_json::Value> = std::str::from_utf8(world.sim().trace().bytes())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let arrivals_at_client = |from: u64, to: u64| -> Vec<u64> {
        trace
            .iter()
            .filter(|r| r["ev"] == "seg_recv" && r["host"] == "client")
            .map(|r| r["t"].as_u64().unwrap())
            .filter(|t| (from..=to).contains(t))
            .collect()
    };
    let (sent, first, answered, second, drained, third) = (&obs[6], &obs[7], &obs[8], &obs[9], &obs[10], &obs[11]);

    // The ACK of "hello" lands during the first wait and frees send space; the wait goes on.
    assert_eq!((first.ret, first.t_ns), (Some(0), sent.t_ns + 100 * MS));
    assert!(!arrivals_at_client(sent.t_ns + 1, first.t_ns - 1).is_empty(), "something arrived meanwhile");

    // "world" crosses the 10 ms link; the second wait ends as it lands, reporting POLLIN only.
    assert_eq!(second.t_ns, answered.t_ns + 10 * MS);
    assert_eq!(arrivals_at_client(answered.t_ns, second.t_ns).last(), Some(&second.t_ns));
    assert_eq!((second.ret, second.events.as_deref()), (Some(1), Some(&["POLLIN".to_string()][..])));

    // Drained, timeout 0: 0 at once.
    assert_eq!((drained.ret, third.ret, third.t_ns), (Some(5), Some(0), drained.t_ns));
}
