//! epoll as fs/eventpoll.c implements it, driven by a sequence of socket states and the
//! wake-ups the TCP stack would issue between them. Every reported event is rule-checked.
//!
//! The wake-ups follow net/ipv4/tcp_input.c: a data segment calls `sk_data_ready`; a FIN calls
//! `sk_state_change` (tcp_fin) and then `sk_data_ready` (tcp_data_queue); an RST calls
//! `sk_error_report` and `sk_state_change` (tcp_reset → tcp_done_with_error → tcp_done); an ACK
//! that frees send space calls `sk_write_space`. Reading never wakes the reader.

mod readiness_support;

use readiness_support::*;
use tcpsim::errno::Errno;
use tcpsim::rules::Checker;
use tcpsim::socket::epoll::{CtlOp, Epoll, Wakeup, EPOLLET, EPOLLONESHOT};
use tcpsim::socket::poll::tcp_poll;
use tcpsim::socket::view::{PollMask, SockView};
use tcpsim::time::{Dur, SimTime};

const FD: u32 = 5;
const IN: PollMask = PollMask::IN;
const OUT: PollMask = PollMask::OUT;
const RDHUP: PollMask = PollMask::RDHUP;
const ERR: PollMask = PollMask::ERR;
const HUP: PollMask = PollMask::HUP;

/// One socket watched by one epoll instance, in simulated time.
struct Watched {
    view: SockView,
    ep: Epoll,
    checker: Checker,
    now: SimTime,
}

impl Watched {
    fn new(view: SockView, events: u32) -> Watched {
        let mut ep = Epoll::new();
        ep.ctl(CtlOp::Add, FD, events, tcp_poll(&view)).unwrap();
        Watched {
            view,
            ep,
            checker: Checker::new(0xe9011),
            now: SimTime::ZERO,
        }
    }

    /// The socket changes to `view`, and the stack runs these callbacks.
    fn becomes(&mut self, view: SockView, wakeups: &[Wakeup]) {
        self.now += Dur::from_millis(1);
        self.view = view;
        for w in wakeups {
            self.ep.on_wakeup(FD, w.key());
        }
    }

    /// The application reads: the socket changes, nothing wakes.
    fn reads(&mut self, view: SockView) {
        self.becomes(view, &[]);
    }

    /// epoll_wait(timeout 0): the mask reported for FD, if any.
    fn wait(&mut self) -> Option<PollMask> {
        self.now += Dur::from_millis(1);
        let view = self.view.clone();
        let events = self
            .checker
            .epoll_wait(self.now, &mut self.ep, 16, |_| view.clone());
        assert!(events.len() <= 1);
        events.first().map(|(fd, m)| {
            assert_eq!(*fd, FD);
            *m
        })
    }

    fn ctl(&mut self, op: CtlOp, events: u32) -> Result<(), Errno> {
        self.ep.ctl(op, FD, events, tcp_poll(&self.view))
    }

    fn finish(self) {
        self.checker
            .finish()
            .expect("every answer satisfies the rules");
    }
}

const ARRIVAL: &[Wakeup] = &[Wakeup::DataReady];
const FIN: &[Wakeup] = &[Wakeup::StateChange, Wakeup::DataReady];
const RST: &[Wakeup] = &[Wakeup::ErrorReport, Wakeup::StateChange];

#[test]
fn level_triggered_keeps_reporting_until_drained() {
    let mut w = Watched::new(established(), IN.0);
    assert_eq!(w.wait(), None);
    w.becomes(with_data(established(), 100), ARRIVAL);
    for _ in 0..3 {
        assert_eq!(w.wait(), Some(IN));
    }
    w.reads(established());
    // The item is still queued; the re-poll finds nothing, drops it, reports nothing.
    assert_eq!(w.wait(), None);
    assert!(!w.ep.has_ready());
    w.finish();
}

#[test]
fn edge_triggered_reports_once_per_wakeup() {
    let mut w = Watched::new(established(), IN.0 | EPOLLET);
    w.becomes(with_data(established(), 100), ARRIVAL);
    assert_eq!(w.wait(), Some(IN));
    assert_eq!(
        w.wait(),
        None,
        "no new event, no report, although 100 bytes wait"
    );
    w.becomes(with_data(established(), 200), ARRIVAL);
    assert_eq!(w.wait(), Some(IN));
    assert_eq!(w.wait(), None);
    w.finish();
}

/// The case users trip on. Two segments arrive before the program waits: two wake-ups, but the
/// item is queued once, so ONE event. If the program then reads only part of what is queued
/// (one segment's worth, or one fixed-size buffer) and waits again, it hangs: the rest is
/// readable, yet nothing will report it until a third segment arrives. With EPOLLET a program
/// must read until EAGAIN. Had it waited between the two segments, it would have had two events.
#[test]
fn edge_triggered_two_segments_before_one_read() {
    let mut w = Watched::new(established(), IN.0 | EPOLLET);
    w.becomes(with_data(established(), 1000), ARRIVAL);
    w.becomes(with_data(established(), 2000), ARRIVAL);
    assert_eq!(w.wait(), Some(IN), "one event for two wake-ups");
    w.reads(with_data(established(), 1000)); // read one segment's worth
    assert_eq!(
        w.wait(),
        None,
        "1000 bytes still readable, and epoll_wait says nothing"
    );
    assert!(
        tcp_poll(&w.view).contains(IN),
        "a level-triggered poll would report them"
    );
    w.becomes(with_data(established(), 1500), ARRIVAL);
    assert_eq!(w.wait(), Some(IN), "a third segment is a new edge");

    // Waiting between the segments: one event after each wake-up, not more.
    let mut w2 = Watched::new(established(), IN.0 | EPOLLET);
    w2.becomes(with_data(established(), 1000), ARRIVAL);
    assert_eq!(w2.wait(), Some(IN));
    w2.becomes(with_data(established(), 2000), ARRIVAL);
    assert_eq!(w2.wait(), Some(IN));
    assert_eq!(w2.wait(), None);
    w.finish();
    w2.finish();
}

#[test]
fn edge_triggered_fin_after_data_is_a_new_edge_with_rdhup() {
    let mut w = Watched::new(established(), (IN | RDHUP).0 | EPOLLET);
    w.becomes(with_data(established(), 10), ARRIVAL);
    assert_eq!(w.wait(), Some(IN));
    // The peer's FIN arrives behind the unread data: IN|RDHUP, reported once.
    w.becomes(peer_fin(10), FIN);
    assert_eq!(w.wait(), Some(IN | RDHUP));
    assert_eq!(w.wait(), None);
    // Draining (read 10 bytes, then read 0) wakes nothing.
    w.reads(peer_fin(0));
    assert_eq!(w.wait(), None);
    w.finish();
}

#[test]
fn edge_triggered_rst_after_a_drained_read_reports_everything_once() {
    let events = (IN | OUT | RDHUP).0 | EPOLLET;
    let mut w = Watched::new(established(), events);
    assert_eq!(w.wait(), Some(OUT), "ADD found the socket writable");
    w.becomes(with_data(established(), 10), ARRIVAL);
    assert_eq!(w.wait(), Some(IN | OUT));
    w.reads(established());
    assert_eq!(w.wait(), None);
    w.becomes(torn_down(Some(Errno::ECONNRESET), 0), RST);
    assert_eq!(
        w.wait(),
        Some(IN | OUT | RDHUP | ERR | HUP),
        "two wake-ups, one event"
    );
    assert_eq!(
        w.wait(),
        None,
        "edge-triggered: the dead socket is not reported again"
    );

    // Level-triggered, the same socket is reported on every wait until it is closed or removed,
    // even after the error has been read (ERR goes, the rest stays).
    let mut lt = Watched::new(established(), (IN | OUT | RDHUP).0);
    lt.becomes(torn_down(Some(Errno::ECONNRESET), 0), RST);
    assert_eq!(lt.wait(), Some(IN | OUT | RDHUP | ERR | HUP));
    lt.reads(torn_down(None, 0));
    assert_eq!(lt.wait(), Some(IN | OUT | RDHUP | HUP));
    assert_eq!(lt.wait(), Some(IN | OUT | RDHUP | HUP));
    w.finish();
    lt.finish();
}

#[test]
fn edge_triggered_reports_the_mask_at_wait_time() {
    let mut w = Watched::new(established(), (IN | RDHUP).0 | EPOLLET);
    w.becomes(with_data(established(), 10), ARRIVAL);
    w.becomes(peer_fin(10), FIN);
    // Data and FIN arrived before the wait: one event carrying both.
    assert_eq!(w.wait(), Some(IN | RDHUP));
    w.finish();
}

#[test]
fn oneshot_disables_until_mod_and_mod_reports_a_ready_socket_at_once() {
    let mut w = Watched::new(established(), IN.0 | EPOLLONESHOT);
    w.becomes(with_data(established(), 10), ARRIVAL);
    assert_eq!(w.wait(), Some(IN));
    assert_eq!(
        w.wait(),
        None,
        "disabled, although level-triggered and still readable"
    );
    w.becomes(with_data(established(), 20), ARRIVAL);
    assert_eq!(w.wait(), None, "wake-ups are ignored while disabled");
    w.becomes(torn_down(Some(Errno::ECONNRESET), 20), RST);
    assert_eq!(
        w.wait(),
        None,
        "even ERR and HUP are not reported while disabled"
    );
    // EPOLL_CTL_MOD re-arms; the socket is ready, so ep_modify queues it with no wake-up.
    w.ctl(CtlOp::Mod, IN.0 | EPOLLONESHOT).unwrap();
    assert_eq!(w.wait(), Some(IN | ERR | HUP));
    assert_eq!(w.wait(), None);
    w.finish();
}

#[test]
fn mod_rearms_edge_triggered_and_reports_a_ready_socket_immediately() {
    let mut w = Watched::new(established(), IN.0 | EPOLLET);
    w.becomes(with_data(established(), 10), ARRIVAL);
    assert_eq!(w.wait(), Some(IN));
    assert_eq!(w.wait(), None);
    w.ctl(CtlOp::Mod, (IN | OUT).0 | EPOLLET).unwrap();
    assert_eq!(
        w.wait(),
        Some(IN | OUT),
        "MOD polls the socket and queues it"
    );
    assert_eq!(w.wait(), None);
    w.finish();
}

#[test]
fn del_forgets_the_fd() {
    let mut w = Watched::new(established(), IN.0);
    w.becomes(with_data(established(), 10), ARRIVAL);
    assert!(w.ep.has_ready());
    w.ctl(CtlOp::Del, 0).unwrap();
    assert!(!w.ep.has_ready(), "DEL takes the item off the ready list");
    w.becomes(with_data(established(), 20), ARRIVAL);
    assert_eq!(w.wait(), None);
    assert_eq!(w.ctl(CtlOp::Del, 0), Err(Errno::ENOENT));
    assert_eq!(w.ctl(CtlOp::Mod, IN.0), Err(Errno::ENOENT));
    w.ctl(CtlOp::Add, IN.0).unwrap();
    assert_eq!(w.wait(), Some(IN), "ADD of a readable socket queues it");
    assert_eq!(w.ctl(CtlOp::Add, IN.0), Err(Errno::EEXIST));
    w.finish();
}

#[test]
fn err_and_hup_are_reported_without_being_requested() {
    for flags in [0, EPOLLET] {
        let mut w = Watched::new(established(), OUT.0 | flags);
        w.becomes(torn_down(Some(Errno::ETIMEDOUT), 0), RST);
        assert_eq!(w.wait(), Some(OUT | ERR | HUP), "flags {flags:#x}");
        // Interest in nothing at all still reports ERR and HUP.
        let mut none = Watched::new(established(), flags);
        none.becomes(torn_down(Some(Errno::ECONNRESET), 0), RST);
        assert_eq!(none.wait(), Some(ERR | HUP));
        w.finish();
        none.finish();
    }
}

#[test]
fn a_wakeup_whose_key_misses_the_interest_is_ignored() {
    // Edge-triggered, interested in OUT only: arriving data (key IN|PRI|RDNORM|RDBAND) does not
    // queue the item, so no spurious OUT edge; an ACK freeing space (key OUT) does.
    let full = sndbuf_full();
    let mut w = Watched::new(full.clone(), OUT.0 | EPOLLET);
    assert_eq!(w.wait(), None);
    let freed = SockView {
        wmem_queued: 0,
        notsent: 0,
        ..established()
    };
    w.becomes(with_data(freed.clone(), 10), ARRIVAL);
    assert_eq!(
        w.wait(),
        None,
        "data-ready does not wake an OUT-only watcher"
    );
    w.becomes(with_data(freed, 10), &[Wakeup::WriteSpace]);
    assert_eq!(w.wait(), Some(OUT));
    w.finish();
}

#[test]
fn the_ready_list_is_fifo_across_fds() {
    let mut ep = Epoll::new();
    let idle = established();
    for fd in [9, 3, 6] {
        ep.ctl(CtlOp::Add, fd, IN.0 | EPOLLET, tcp_poll(&idle))
            .unwrap();
    }
    // Wake-ups in the order 6, 9, 3: reported in that order, not in fd order.
    for fd in [6, 9, 3] {
        ep.on_wakeup(fd, Wakeup::DataReady.key());
    }
    let readable = with_data(established(), 1);
    let mut checker = Checker::new(7);
    let events = checker.epoll_wait(SimTime(1), &mut ep, 2, |_| readable.clone());
    assert_eq!(events, vec![(6, IN), (9, IN)]);
    let events = checker.epoll_wait(SimTime(2), &mut ep, 2, |_| readable.clone());
    assert_eq!(events, vec![(3, IN)]);
    checker.finish().unwrap();
}

/// epoll_wait with a 50 ms timeout, as the model runs it (fs/eventpoll.c `ep_poll`): the peer's
/// FIN ends an edge-triggered wait the moment it lands; a second wait, with nothing new for an
/// edge-triggered entry, returns 0 at exactly 50 ms.
#[test]
fn blocking_epoll_wait_in_simulated_time() {
    use tcpsim::scenario::parse;
    use tcpsim::trace::Trace;
    use tcpsim::world::World;

    const MS: u64 = 1_000_000;
    let script = r#"
name = "blocking-epoll-wait"
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
delay = "20ms"

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
op = "epoll_create"
ep = "ep"

[[script]]
op = "epoll_ctl"
ep = "ep"
sock = "c"
action = "add"
events = ["EPOLLIN", "EPOLLRDHUP", "EPOLLET"]

[[script]]
op = "close"
sock = "s"

[[script]]
op = "epoll_wait"
ep = "ep"
timeout = "50ms"

[[script]]
op = "epoll_wait"
ep = "ep"
timeout = "50ms"
"#;
    let sc = parse(script, "blocking-epoll-wait.toml").unwrap();
    let mut world = World::build(&sc, sc.seed, Trace::memory()).unwrap();
    let obs = world.run(&sc);
    assert!(world.rule_failures().is_empty(), "{:?}", world.rule_failures());
    let (closed, first, second) = (&obs[8], &obs[9], &obs[10]);
    // The FIN leaves at the close and crosses the 20 ms link.
    assert_eq!(first.t_ns, closed.t_ns + 20 * MS);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!((first.ret, first.events.clone()), (Some(1), Some(names(&["POLLIN", "POLLRDHUP"]))));
    assert_eq!((second.ret, second.t_ns), (Some(0), first.t_ns + 50 * MS));
}
