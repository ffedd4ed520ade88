//! The rules against the implementation, both ways: every answer the implementation gives for
//! random consistent sockets satisfies every rule that binds it (and every rule is reached), and
//! for every rule a deliberately wrong answer is caught, naming that rule.

mod readiness_support;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use readiness_support::*;
use std::collections::BTreeMap;
use tcpsim::errno::Errno;
use tcpsim::rules::catalog::{rule, RULES};
use tcpsim::rules::{
    check, check_against, departures, rules_for, Call, Checker, Conformance, Observed, Os, OsScope,
};
use tcpsim::socket::epoll::{CtlOp, Epoll, EPOLLET, EPOLLONESHOT};
use tcpsim::socket::kqueue::{freebsd_poll, kevent, KEvent, KFilter, EV_EOF};
use tcpsim::socket::poll::{poll_revents, tcp_poll, POLL_REVENTS_CLOSED_FD};
use tcpsim::socket::view::{PollMask, SockView, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use tcpsim::tcp::state::TcpState;
use tcpsim::time::SimTime;

// ---- random consistent sockets --------------------------------------------------------------

struct Gen(ChaCha8Rng);

impl Gen {
    fn below(&mut self, n: u32) -> u32 {
        (self.0.next_u64() % u64::from(n)) as u32
    }
    fn upto(&mut self, n: u32) -> u32 {
        (self.0.next_u64() % (u64::from(n) + 1)) as u32
    }
    fn chance(&mut self, one_in: u32) -> bool {
        self.below(one_in) == 0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u32) as usize]
    }

    /// A socket the TCP model could produce: the shutdown bits, SOCK_DONE and the pending error
    /// agree with the state (linux-tcp-facts §1.2); queues and buffers vary freely, including
    /// around the writability and low-water thresholds.
    fn view(&mut self) -> SockView {
        let state = self.pick(&TcpState::ALL);
        let r = [
            self.below(1 << 20),
            self.below(4096),
            self.upto(8192),
            self.below(1 << 16),
            self.upto(65536),
        ];
        let sndbuf = self.pick(&[4608, 16384, 87040, 4_194_304, 1 + r[0]]);
        let wmem_queued = self.upto(sndbuf + sndbuf / 4);
        let mut v = SockView {
            state: Some(state),
            rcvlowat: self.pick(&[0, 1, 1, 10, 1 + r[1]]),
            rcv_avail: self.pick(&[0, 1, 5, 10, r[2]]),
            rmem_pressure: self.chance(5),
            rcv_wnd_small: self.chance(5),
            sndbuf,
            wmem_queued,
            notsent: self.upto(wmem_queued),
            notsent_lowat: self.pick(&[u32::MAX, u32::MAX, 1 + r[3]]),
            urg_valid: self.chance(6),
            snd_space: self.pick(&[0, 2047, 2048, 32768, r[4]]),
            snd_used: self.pick(&[0, r[4]]),
            ..SockView::default()
        };
        let dead_error = [
            None,
            Some(Errno::ECONNRESET),
            Some(Errno::ETIMEDOUT),
            Some(Errno::ECONNREFUSED),
            Some(Errno::EPIPE),
            Some(Errno::EHOSTUNREACH),
        ];
        match state {
            TcpState::Listen => {
                v.rcv_avail = 0;
                v.urg_valid = false;
                let many = 1 + self.below(128);
                v.accept_queue_len = self.pick(&[0, 0, 1, many]);
            }
            TcpState::SynSent | TcpState::SynRecv => {
                v.rcv_avail = 0;
                v.urg_valid = false;
            }
            TcpState::Established => v.shutdown = self.pick(&[0, 0, RCV_SHUTDOWN]),
            TcpState::FinWait1 | TcpState::FinWait2 => {
                v.shutdown = self.pick(&[SEND_SHUTDOWN, SHUTDOWN_MASK])
            }
            TcpState::CloseWait => {
                v.shutdown = RCV_SHUTDOWN;
                v.done = true;
            }
            TcpState::Closing | TcpState::LastAck | TcpState::TimeWait => {
                v.shutdown = SHUTDOWN_MASK;
                v.done = true;
            }
            TcpState::Close => {
                if self.chance(3) {
                    // Never connected, or disconnected from SYN_SENT (tcp_disconnect: ECONNRESET).
                    v.rcv_avail = 0;
                    v.urg_valid = false;
                    v.err = self.pick(&[None, None, Some(Errno::ECONNRESET)]);
                } else {
                    // tcp_done: RST, timeout, refused, or both FINs; the error may be read already.
                    v.shutdown = SHUTDOWN_MASK;
                    v.done = true;
                    v.err = self.pick(&dead_error);
                }
            }
        }
        v
    }

    fn poll_events(&mut self) -> PollMask {
        let all = PollMask::NAMED.iter().fold(0, |acc, (m, _)| acc | m.0);
        PollMask(self.0.next_u32() & all)
    }
}

/// Every answer the implementation gives for `v`, through the checker; the observations made.
fn answer_everything(
    g: &mut Gen,
    checker: &mut Checker,
    now: SimTime,
    v: &SockView,
    seen: &mut BTreeMap<&'static str, u32>,
) {
    let mut note = |o: &Observed| {
        for id in rules_for(o) {
            *seen.entry(id).or_default() += 1;
        }
    };
    let requested = g.poll_events();
    let revents = checker.linux_poll(now, v, requested);
    note(&Observed::poll(Os::Linux, v, requested, revents));

    let events = g.poll_events().0 | g.pick(&[0, EPOLLET, EPOLLONESHOT]);
    let mut ep = Epoll::new();
    ep.ctl(CtlOp::Add, 1, events, tcp_poll(v)).unwrap();
    for (_, reported) in checker.epoll_wait(now, &mut ep, 4, |_| v.clone()) {
        note(&Observed::epoll(v, events, reported));
    }

    let requested = g.poll_events();
    let revents = checker.freebsd_poll(now, v, requested);
    note(&Observed::poll(Os::FreeBsd, v, requested, revents));

    for filter in [KFilter::Read, KFilter::Write, KFilter::Empty] {
        let some = Some(1 + g.below(4096));
        let lowat = g.pick(&[None, None, some]);
        let event = checker.kevent(now, v, filter, lowat);
        note(&Observed::kevent(v, filter, lowat, event));
    }
}

#[test]
fn implementation_answers_satisfy_every_binding_rule_and_reach_every_rule() {
    let seed = 0x5eed_2026;
    let mut g = Gen(ChaCha8Rng::seed_from_u64(seed));
    let mut checker = Checker::new(seed);
    let mut seen = BTreeMap::new();
    for i in 0..20_000u64 {
        let v = g.view();
        answer_everything(&mut g, &mut checker, SimTime(i), &v, &mut seen);
    }
    let checked = checker.checked();
    if let Err(failure) = checker.finish() {
        panic!("{failure}");
    }
    assert!(checked > 100_000, "{checked} answers checked");
    let unreached: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(
        unreached.is_empty(),
        "rules no implementation answer reached: {unreached:?}"
    );
}

// ---- deliberately wrong answers ---------------------------------------------------------------

/// For each rule: a socket, the answering system, and a wrong answer that breaks the rule.
fn wrong_answer(id: &str) -> (Os, Option<SockView>, Call) {
    use PollMask as M;
    let t = TABLE_EVENTS;
    let poll = |requested: PollMask, revents: PollMask| Call::Poll { requested, revents };
    let kq = |filter, event| Call::Kevent {
        filter,
        note_lowat: None,
        event,
    };
    let kev = |filter, data, flags| {
        Some(KEvent {
            filter,
            data,
            flags,
            fflags: 0,
        })
    };
    let rst = torn_down(Some(Errno::ECONNRESET), 0);
    let linux = |v: SockView, call| (Os::Linux, Some(v), call);
    let freebsd = |v: SockView, call| (Os::FreeBsd, Some(v), call);
    match id {
        "revents-within-request" => linux(established(), poll(M::IN, M::OUT)),
        "pollnval-iff-fd-not-open" => (Os::Linux, None, poll(t, M::EMPTY)),
        "epoll-event-nonempty" => linux(
            with_data(established(), 1),
            Call::Epoll {
                events: M::IN.0,
                reported: M::EMPTY,
            },
        ),
        "pending-error-pollerr" => linux(rst, poll(t, M::IN | M::OUT | M::RDHUP | M::HUP)),
        "pollerr-only-with-error" => linux(established(), poll(t, M::OUT | M::ERR)),
        "freebsd-no-pollerr" => freebsd(rst, poll(t, M::IN | M::RDHUP | M::HUP | M::ERR)),
        "freebsd-error-pollin" => freebsd(rst, poll(M::IN, M::HUP)),
        "data-ready-pollin" => linux(with_data(established(), 1), poll(t, M::OUT)),
        "pollin-read-wont-block" => linux(established(), poll(t, M::IN | M::OUT)),
        "eof-pollin" => linux(peer_fin(0), poll(t, M::OUT | M::RDHUP)),
        "rcvlowat-gates-pollin" => linux(
            SockView {
                rcvlowat: 10,
                ..with_data(established(), 5)
            },
            poll(t, M::IN | M::OUT),
        ),
        "rdhup-on-receive-shutdown" => linux(peer_fin(0), poll(t, M::IN | M::OUT)),
        "rdhup-only-on-receive-shutdown" => linux(established(), poll(t, M::OUT | M::RDHUP)),
        "pollpri-iff-urgent" => linux(
            SockView {
                urg_valid: true,
                ..established()
            },
            poll(t, M::OUT),
        ),
        "linux-pollhup-iff-both-shut-or-close" => {
            linux(peer_fin(0), poll(t, M::IN | M::OUT | M::RDHUP | M::HUP))
        }
        "posix-pollhup-excludes-pollout" => freebsd(
            torn_down(None, 0),
            poll(t, M::IN | M::OUT | M::RDHUP | M::HUP),
        ),
        "freebsd-pollhup-iff-both-cantmore" => {
            freebsd(peer_fin(0), poll(t, M::IN | M::RDHUP | M::HUP))
        }
        "listen-readable-iff-accept-queue" => linux(listener(0), poll(t, M::IN)),
        "listen-reports-only-pollin" => linux(listener(1), poll(t, M::IN | M::OUT)),
        "connecting-not-writable" => linux(in_state(TcpState::SynSent), poll(t, M::OUT)),
        "syn-sent-reports-nothing" => linux(in_state(TcpState::SynSent), poll(t, M::HUP)),
        "pollout-needs-send-space" => linux(sndbuf_full(), poll(t, M::OUT)),
        "send-space-gives-pollout" => linux(established(), poll(M::OUT, M::EMPTY)),
        "notsent-lowat-gates-pollout" => linux(
            SockView {
                notsent_lowat: 100,
                notsent: 60,
                wmem_queued: 60,
                ..established()
            },
            poll(t, M::OUT),
        ),
        "send-shutdown-still-pollout" => linux(local_shut_wr(), poll(M::OUT, M::EMPTY)),
        "kq-read-eof-iff-cantrcvmore" => {
            freebsd(peer_fin(0), kq(KFilter::Read, kev(KFilter::Read, 0, 0)))
        }
        "kq-read-data-is-available" => freebsd(
            with_data(established(), 5),
            kq(KFilter::Read, kev(KFilter::Read, 4, 0)),
        ),
        "kq-read-lowat" => freebsd(with_data(established(), 5), kq(KFilter::Read, None)),
        "kq-listen-read-iff-pending" => freebsd(listener(2), kq(KFilter::Read, None)),
        "kq-write-eof-iff-cantsendmore" => freebsd(
            local_shut_wr(),
            kq(KFilter::Write, kev(KFilter::Write, 32768, 0)),
        ),
        "kq-write-not-while-connecting" => freebsd(
            in_state(TcpState::SynSent),
            kq(KFilter::Write, kev(KFilter::Write, 32768, 0)),
        ),
        "kq-write-data-is-space" => {
            freebsd(established(), kq(KFilter::Write, kev(KFilter::Write, 1, 0)))
        }
        "kq-write-lowat" => freebsd(established(), kq(KFilter::Write, None)),
        "kq-listen-never-writable" => {
            freebsd(listener(0), kq(KFilter::Write, kev(KFilter::Write, 0, 0)))
        }
        "kq-empty-iff-drained" => freebsd(
            SockView {
                snd_used: 1200,
                ..established()
            },
            kq(KFilter::Empty, kev(KFilter::Empty, 0, 0)),
        ),
        other => panic!("no deliberately wrong answer for rule `{other}`: add one"),
    }
}

/// The implementation's answer to the same call.
fn right_answer(os: Os, view: Option<&SockView>, call: Call) -> Call {
    match (call, view) {
        (Call::Poll { requested, .. }, None) => Call::Poll {
            requested,
            revents: POLL_REVENTS_CLOSED_FD,
        },
        (Call::Poll { requested, .. }, Some(v)) => {
            let revents = if os == Os::Linux {
                poll_revents(v, requested)
            } else {
                freebsd_poll(v, requested)
            };
            Call::Poll { requested, revents }
        }
        (Call::Epoll { events, .. }, Some(v)) => Call::Epoll {
            events,
            reported: tcp_poll(v) & PollMask(events | PollMask::ERR.0 | PollMask::HUP.0),
        },
        (
            Call::Kevent {
                filter, note_lowat, ..
            },
            Some(v),
        ) => Call::Kevent {
            filter,
            note_lowat,
            event: kevent(v, filter, note_lowat),
        },
        (call, None) => call,
    }
}

#[test]
fn every_rule_catches_a_deliberately_wrong_answer_and_accepts_the_right_one() {
    for r in RULES {
        let (os, view, wrong) = wrong_answer(r.id);
        let observed = Observed {
            os,
            view: view.as_ref(),
            call: wrong,
        };
        assert!(
            r.binds(os, Conformance::Native),
            "{}: the witness must be on a system the rule binds",
            r.id
        );
        let caught: Vec<&str> = check(&observed).iter().map(|v| v.rule).collect();
        assert!(
            caught.contains(&r.id),
            "{}: wrong answer {observed} not caught (caught {caught:?})",
            r.id
        );

        let right = Observed {
            os,
            view: view.as_ref(),
            call: right_answer(os, view.as_ref(), wrong),
        };
        assert!(
            check(&right).is_empty(),
            "{}: right answer {right} flagged: {:?}",
            r.id,
            check(&right)
        );
    }
}

#[test]
fn a_wrong_mask_fails_the_run_naming_seed_time_and_rule() {
    let mut checker = Checker::new(42);
    let rst = torn_down(Some(Errno::ECONNRESET), 0);
    let right = checker.linux_poll(SimTime(1_000_000_000), &rst, TABLE_EVENTS);
    assert!(checker.is_clean());
    // The same socket, POLLERR dropped: a mask computation that forgot sk_err.
    let wrong = PollMask(right.0 & !PollMask::ERR.0);
    let o = Observed::poll(Os::Linux, &rst, TABLE_EVENTS, wrong);
    assert!(!checker.observe(SimTime(1_500_000_000), &o));
    let failure = checker.finish().unwrap_err();
    assert_eq!(failure.seed, 42);
    assert_eq!(failure.failures.len(), 1);
    assert_eq!(failure.failures[0].time, SimTime(1_500_000_000));
    assert_eq!(failure.failures[0].violation.rule, "pending-error-pollerr");
    let message = failure.to_string();
    assert!(message.contains("seed 42, t=1.500000000s"), "{message}");
    assert!(
        message.contains("rule `pending-error-pollerr` violated"),
        "{message}"
    );
    assert!(message.contains("socket(7) SO_ERROR"), "{message}");
}

#[test]
fn posix_hup_out_exclusion_flags_linux_only_when_scoped_to_posix() {
    let r = rule("posix-pollhup-excludes-pollout").unwrap();
    assert!(matches!(
        r.os,
        OsScope::Posix {
            departs: [Os::Linux],
            ..
        }
    ));
    for (condition, v) in [
        ("RST", torn_down(Some(Errno::ECONNRESET), 0)),
        ("fresh socket", fresh()),
        ("SHUT_RDWR", local_shut_rdwr()),
    ] {
        let revents = poll_revents(&v, TABLE_EVENTS);
        assert!(
            revents.contains(PollMask::OUT | PollMask::HUP),
            "{condition}: Linux reports OUT|HUP"
        );
        let o = Observed::poll(Os::Linux, &v, TABLE_EVENTS, revents);
        let posix: Vec<&str> = check_against(&o, Conformance::Posix)
            .iter()
            .map(|x| x.rule)
            .collect();
        assert_eq!(
            posix,
            vec!["posix-pollhup-excludes-pollout"],
            "{condition}: strict POSIX flags Linux"
        );
        assert!(
            check(&o).is_empty(),
            "{condition}: scoped to Linux, no violation"
        );
        assert_eq!(
            departures(&o),
            vec!["posix-pollhup-excludes-pollout"],
            "{condition}: recorded departure"
        );
        // FreeBSD conforms: pollscan drops POLLOUT. (Strict POSIX does flag its missing POLLERR.)
        let fb = freebsd_poll(&v, TABLE_EVENTS);
        let fb_posix = check_against(
            &Observed::poll(Os::FreeBsd, &v, TABLE_EVENTS, fb),
            Conformance::Posix,
        );
        assert!(
            fb_posix
                .iter()
                .all(|x| x.rule != "posix-pollhup-excludes-pollout"),
            "{condition}: {fb_posix:?}"
        );
    }
}

#[test]
fn rules_for_lists_what_applies_to_a_table_row() {
    let rst = torn_down(Some(Errno::ECONNRESET), 0);
    let o = Observed::poll(
        Os::Linux,
        &rst,
        TABLE_EVENTS,
        poll_revents(&rst, TABLE_EVENTS),
    );
    let ids = rules_for(&o);
    for expected in [
        "revents-within-request",
        "pending-error-pollerr",
        "eof-pollin",
        "rdhup-on-receive-shutdown",
        "linux-pollhup-iff-both-shut-or-close",
        "send-shutdown-still-pollout",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }
    assert!(
        !ids.contains(&"posix-pollhup-excludes-pollout"),
        "a departure is not a binding rule"
    );
    assert!(
        !ids.iter().any(|id| id.starts_with("kq-")),
        "kqueue rules do not apply to poll"
    );
    // A FreeBSD kevent observation lists only kqueue rules.
    let e = Observed::kevent(&rst, KFilter::Read, None, kevent(&rst, KFilter::Read, None));
    assert_eq!(
        rules_for(&e),
        vec!["kq-read-eof-iff-cantrcvmore", "kq-read-data-is-available"]
    );
    assert_eq!(
        kevent(&rst, KFilter::Read, None).map(|e| e.flags),
        Some(EV_EOF)
    );
}

#[test]
fn the_catalog_is_well_formed() {
    assert!(RULES.len() >= 20, "{} rules", RULES.len());
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), RULES.len(), "rule ids are unique");
    for r in RULES {
        assert!(
            r.id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{}",
            r.id
        );
        assert!(!r.text.is_empty() && !r.source.is_empty(), "{}", r.id);
        if let OsScope::Posix { departs, note } = r.os {
            assert_eq!(
                departs.is_empty(),
                note.is_empty(),
                "{}: a departure needs a note",
                r.id
            );
        }
    }
}
