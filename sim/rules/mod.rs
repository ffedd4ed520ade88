//! The documented rules every readiness answer is checked against.
//!
//! The rules are the specification; `socket::poll::tcp_poll`, `socket::epoll` and
//! `socket::kqueue` are the implementation. Each rule quotes its documentary source (a man page,
//! POSIX, kqueue(2), or the kernel function whose behaviour it states) and is written from what
//! the socket observably is (its [`SockView`]), never by calling the mask computation.
//!
//! A rule is scoped by operating system. A portable rule that an OS knowingly breaks stays in
//! the catalogue, scoped [`OsScope::Posix`] with that OS listed in `departs` and a note saying
//! why; checking that OS's answers skips it (and [`check::departures`] reports the departure),
//! while checking against strict POSIX ([`Conformance::Posix`]) enforces it.
//!
//! - [`catalog`]: the rules;
//! - [`check`]: checking an observation, and the [`check::Checker`] a run carries.

pub mod catalog;
pub mod check;

use crate::socket::epoll::EP_PRIVATE_BITS;
use crate::socket::kqueue::{KEvent, KFilter};
use crate::socket::view::{PollMask, SockView};
use std::fmt;

pub use check::{check, check_against, departures, rules_for, Checker, RunFailure, Violation};

pub use crate::tcp::profile::Os;

/// Which systems a rule binds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OsScope {
    /// Linux only (its man pages or kernel source).
    Linux,
    /// FreeBSD only (kqueue(2), its kernel source).
    FreeBsd,
    /// A portable rule (POSIX, or a man page stating portable behaviour). `departs` lists the
    /// systems that knowingly break it and `note` says how; for them the rule is recorded, not
    /// enforced.
    Posix {
        departs: &'static [Os],
        note: &'static str,
    },
}

impl OsScope {
    /// The scope as the rules document prints it.
    pub fn describe(self) -> String {
        match self {
            OsScope::Linux => "Linux".to_string(),
            OsScope::FreeBsd => "FreeBSD".to_string(),
            OsScope::Posix { departs: [], .. } => "POSIX".to_string(),
            OsScope::Posix { departs, note } => {
                let names: Vec<&str> = departs.iter().map(|o| o.name()).collect();
                format!("POSIX (departs: {} — {})", names.join(", "), note)
            }
        }
    }
}

/// The standard an answer is checked against.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Conformance {
    /// The rules the answering system is meant to follow: its own, and the portable ones it does
    /// not knowingly depart from. Every run is checked this way.
    Native,
    /// Every portable rule, departures included, and no system-specific one.
    Posix,
}

/// One documented rule.
#[derive(Copy, Clone)]
pub struct Rule {
    /// Stable, kebab-case: tables and failures refer to it.
    pub id: &'static str,
    /// The rule in words.
    pub text: &'static str,
    /// Where it is written down, exactly.
    pub source: &'static str,
    pub os: OsScope,
    /// Whether the rule says anything about this observation.
    pub applies: fn(&Observed) -> bool,
    /// Whether the observation satisfies it (only asked when it applies).
    pub holds: fn(&Observed) -> bool,
}

impl Rule {
    /// Whether this rule binds an answer from `os` under `conformance`.
    pub fn binds(&self, os: Os, conformance: Conformance) -> bool {
        match (conformance, self.os) {
            (Conformance::Posix, OsScope::Posix { .. }) => true,
            (Conformance::Posix, _) => false,
            (Conformance::Native, OsScope::Linux) => os == Os::Linux,
            (Conformance::Native, OsScope::FreeBsd) => os == Os::FreeBsd,
            (Conformance::Native, OsScope::Posix { departs, .. }) => !departs.contains(&os),
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("os", &self.os)
            .finish()
    }
}

/// The readiness call that was answered, with its request and its answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// poll(2) on one fd: the `events` asked for and the `revents` returned.
    Poll {
        requested: PollMask,
        revents: PollMask,
    },
    /// One event epoll_wait(2) returned: the fd's registered `events` (as given to epoll_ctl,
    /// flags included) and the reported mask.
    Epoll { events: u32, reported: PollMask },
    /// kevent(2) on one filter: the NOTE_LOWAT given, if any, and the event (`None`: it did
    /// not fire).
    Kevent {
        filter: KFilter,
        note_lowat: Option<u32>,
        event: Option<KEvent>,
    },
}

/// One answer to check: which system gave it, about which socket, to which call.
#[derive(Copy, Clone, Debug)]
pub struct Observed<'a> {
    pub os: Os,
    /// The socket as it was when the answer was computed; `None` if the fd was not open.
    pub view: Option<&'a SockView>,
    pub call: Call,
}

impl<'a> Observed<'a> {
    pub fn poll(
        os: Os,
        view: &'a SockView,
        requested: PollMask,
        revents: PollMask,
    ) -> Observed<'a> {
        Observed {
            os,
            view: Some(view),
            call: Call::Poll { requested, revents },
        }
    }
    /// poll(2) on an fd that is not open.
    pub fn poll_closed_fd(os: Os, requested: PollMask, revents: PollMask) -> Observed<'static> {
        Observed {
            os,
            view: None,
            call: Call::Poll { requested, revents },
        }
    }
    pub fn epoll(view: &'a SockView, events: u32, reported: PollMask) -> Observed<'a> {
        Observed {
            os: Os::Linux,
            view: Some(view),
            call: Call::Epoll { events, reported },
        }
    }
    pub fn kevent(
        view: &'a SockView,
        filter: KFilter,
        note_lowat: Option<u32>,
        event: Option<KEvent>,
    ) -> Observed<'a> {
        Observed {
            os: Os::FreeBsd,
            view: Some(view),
            call: Call::Kevent {
                filter,
                note_lowat,
                event,
            },
        }
    }

    /// For poll/epoll on an open socket: the socket, the events asked for (for epoll, the
    /// registered events without the flag bits) and the mask returned.
    pub fn mask_answer(&self) -> Option<(&'a SockView, PollMask, PollMask)> {
        let v = self.view?;
        match self.call {
            Call::Poll { requested, revents } => Some((v, requested, revents)),
            Call::Epoll { events, reported } => {
                Some((v, PollMask(events & !EP_PRIVATE_BITS), reported))
            }
            Call::Kevent { .. } => None,
        }
    }

    /// For kevent: the socket, the filter, the NOTE_LOWAT and the event.
    pub fn kevent_answer(&self) -> Option<(&'a SockView, KFilter, Option<u32>, Option<KEvent>)> {
        match self.call {
            Call::Kevent {
                filter,
                note_lowat,
                event,
            } => Some((self.view?, filter, note_lowat, event)),
            _ => None,
        }
    }
}

impl fmt::Display for Observed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = self.os.name();
        match self.call {
            Call::Poll { requested, revents } => write!(
                f,
                "{os} poll(events={:?}) -> revents={:?}",
                requested.names(),
                revents.names()
            )?,
            Call::Epoll { events, reported } => write!(
                f,
                "{os} epoll_wait (events={:?}{}{}) -> {:?}",
                PollMask(events).names(),
                if events & crate::socket::epoll::EPOLLET != 0 {
                    "|EPOLLET"
                } else {
                    ""
                },
                if events & crate::socket::epoll::EPOLLONESHOT != 0 {
                    "|EPOLLONESHOT"
                } else {
                    ""
                },
                reported.names()
            )?,
            Call::Kevent {
                filter,
                note_lowat,
                event,
            } => write!(
                f,
                "{os} kevent({}, NOTE_LOWAT={note_lowat:?}) -> {event:?}",
                filter.name()
            )?,
        }
        match self.view {
            None => write!(f, " on an fd that is not open"),
            Some(v) => write!(f, " on {}", describe_view(v)),
        }
    }
}

/// A one-line account of a socket for failure messages.
pub fn describe_view(v: &SockView) -> String {
    let state = v.state.map_or("none", |s| s.name());
    format!(
        "socket {{state {state}, shutdown {}, done {}, err {:?}, rcv_avail {}, rcvlowat {}, \
         wmem_queued {}, sndbuf {}, notsent {}, accept_queue {}, urg {}}}",
        v.shutdown,
        v.done,
        v.err,
        v.rcv_avail,
        v.rcvlowat,
        v.wmem_queued,
        v.sndbuf,
        v.notsent,
        v.accept_queue_len,
        v.urg_valid
    )
}

/// `docs/rules.md`: every rule with its id, scope, text and source, generated from the catalog.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Readiness rules\n\n");
    out.push_str(
        "Generated from `sim/rules/catalog.rs` (`tcpsim::rules::render_markdown`); do not edit by \
         hand. Regenerate with `UPDATE_DOCS=1 cargo test --test readiness_rules_doc`.\n\n",
    );
    out.push_str(
        "Every poll, epoll and kqueue answer the simulator gives is checked against the rules \
         that bind the answering system. A portable (POSIX) rule that a system knowingly breaks \
         is kept, with the departure recorded, and is not enforced for that system.\n\n",
    );
    out.push_str(&format!("{} rules.\n\n", catalog::RULES.len()));
    for r in catalog::RULES {
        out.push_str(&format!("## `{}`\n\n", r.id));
        out.push_str(&format!("- Scope: {}\n", r.os.describe()));
        out.push_str(&format!("- Rule: {}\n", r.text));
        out.push_str(&format!("- Source: {}\n\n", r.source));
    }
    out
}
