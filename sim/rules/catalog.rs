//! The catalogue of readiness rules.
//!
//! Each predicate reads what the socket observably is (its `SockView`: state, shutdown bits,
//! pending error, queued bytes, buffer sizes) and the answer; none calls the mask computation.
//! Man-page quotations are from man-pages 6.03 as installed on the reference machine; POSIX is
//! SUSv4 (2018) poll() and connect(); kqueue(2) is FreeBSD's.

use super::{Call, Observed, Os, OsScope, Rule};
use crate::socket::kqueue::{freebsd_errno, FreeBsdSocket, KEvent, KFilter, EV_EOF};
use crate::socket::view::{PollMask, SockView, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use crate::tcp::state::TcpState;

// ---- What the socket observably is -------------------------------------------------------

fn state(v: &SockView) -> TcpState {
    v.state.unwrap_or(TcpState::Close)
}
fn listening(v: &SockView) -> bool {
    state(v) == TcpState::Listen
}
/// The handshake is under way: neither established nor failed.
fn handshaking(v: &SockView) -> bool {
    matches!(state(v), TcpState::SynSent | TcpState::SynRecv)
}
/// The receive side is shut: a FIN arrived in sequence, SHUT_RD, or the connection is gone.
fn rcv_shut(v: &SockView) -> bool {
    v.shutdown & RCV_SHUTDOWN != 0
}
fn send_shut(v: &SockView) -> bool {
    v.shutdown & SEND_SHUTDOWN != 0
}
/// The effective receive low-water mark: SO_RCVLOWAT, at least 1 (socket(7)).
fn rcvlowat(v: &SockView) -> u32 {
    v.rcvlowat.max(1)
}
/// include/net/sock.h: the send queue is below sndbuf and its free space is at least half of
/// what is queued (`sk_stream_wspace >= sk_stream_min_wspace`).
fn send_space_ok(v: &SockView) -> bool {
    let (queued, buf) = (u64::from(v.wmem_queued), u64::from(v.sndbuf));
    queued < buf && buf - queued >= queued / 2
}
/// include/net/tcp.h `tcp_stream_memory_free` when polled: unsent bytes, doubled, below
/// TCP_NOTSENT_LOWAT (the send buffer bounds unsent bytes far below 2^31).
fn notsent_ok(v: &SockView) -> bool {
    2 * u64::from(v.notsent) < u64::from(v.notsent_lowat)
}

/// The poll/epoll answer on an open, non-listening socket.
fn conn_mask<'a>(o: &Observed<'a>) -> Option<(&'a SockView, PollMask, PollMask)> {
    o.mask_answer().filter(|(v, _, _)| !listening(v))
}
fn listen_mask<'a>(o: &Observed<'a>) -> Option<(&'a SockView, PollMask, PollMask)> {
    o.mask_answer().filter(|(v, _, _)| listening(v))
}
fn is_poll(o: &Observed) -> bool {
    matches!(o.call, Call::Poll { .. })
}
fn requested_has(req: PollMask, bit: PollMask) -> bool {
    req.contains(bit)
}
fn kq(o: &Observed, filter: KFilter) -> Option<(FreeBsdSocket, Option<u32>, Option<KEvent>)> {
    o.kevent_answer()
        .filter(|(_, f, _, _)| *f == filter)
        .map(|(v, _, lowat, ev)| (FreeBsdSocket::from_view(v), lowat, ev))
}
/// EV_EOF with `fflags` carrying `so_error` (FreeBSD number, 0 if none).
fn eof_with_error(so: &FreeBsdSocket, ev: &KEvent) -> bool {
    ev.flags & EV_EOF != 0 && ev.fflags == so.so_error.map_or(0, freebsd_errno)
}

const WRITE_BITS: PollMask = PollMask(PollMask::OUT.0 | PollMask::WRNORM.0);

// ---- The rules ----------------------------------------------------------------------------

/// Every rule, in the order `docs/rules.md` lists them.
pub static RULES: &[Rule] = &[
    // -- poll(2)/epoll: what may be reported at all
    Rule {
        id: "revents-within-request",
        text: "The mask returned holds only events that were requested, plus POLLERR, POLLHUP and \
               POLLNVAL, which are reported without being asked for (epoll: the registered events \
               plus EPOLLERR and EPOLLHUP).",
        source: "POSIX poll() (POLLERR, POLLHUP, POLLNVAL: \"it shall be ignored in the events \
                 member\"); poll(2) (\"The bits returned in revents can include any of those \
                 specified in events, or one of the values POLLERR, POLLHUP, or POLLNVAL.\"); \
                 epoll_ctl(2) EPOLLERR, EPOLLHUP (\"it is not necessary to set it in events when \
                 calling epoll_ctl()\")",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: |o| matches!(o.call, Call::Poll { .. } | Call::Epoll { .. }),
        holds: |o| match o.call {
            Call::Poll { requested, revents } => {
                revents.0 & !(requested | PollMask::ERR | PollMask::HUP | PollMask::NVAL).0 == 0
            }
            Call::Epoll { events, reported } => {
                reported.0 & !(events | PollMask::ERR.0 | PollMask::HUP.0) == 0
            }
            Call::Kevent { .. } => true,
        },
    },
    Rule {
        id: "pollnval-iff-fd-not-open",
        text: "poll() sets POLLNVAL exactly when the fd is not open.",
        source: "poll(2) (POLLNVAL: \"Invalid request: fd not open\"); POSIX poll() (POLLNVAL: \
                 \"The specified fd value is invalid\")",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: is_poll,
        holds: |o| match o.call {
            Call::Poll { revents, .. } => revents.contains(PollMask::NVAL) == o.view.is_none(),
            _ => true,
        },
    },
    Rule {
        id: "epoll-event-nonempty",
        text: "epoll_wait never returns an event with an empty mask: an item whose socket went \
               quiet before the call is dropped, not reported.",
        source: "fs/eventpoll.c ep_send_events (\"revents = ep_item_poll(epi, &pt, 1); if \
                 (!revents) continue;\"); epoll_wait(2)",
        os: OsScope::Linux,
        applies: |o| matches!(o.call, Call::Epoll { .. }),
        holds: |o| o.mask_answer().is_none_or(|(_, _, m)| !m.is_empty()),
    },
    // -- errors
    Rule {
        id: "pending-error-pollerr",
        text: "A socket with a pending error (the one SO_ERROR would return: ECONNRESET, \
               ETIMEDOUT, ECONNREFUSED...) reports POLLERR, requested or not.",
        source: "POSIX poll() (POLLERR: \"An error has occurred on the device or stream\"); \
                 poll(2) POLLERR (\"Error condition\"); socket(7) SO_ERROR (\"Get and clear the \
                 pending socket error.\"); tcp_poll (net/ipv4/tcp.c: \"if (sk->sk_err ...) mask |= EPOLLERR\")",
        os: OsScope::Posix {
            departs: &[Os::FreeBsd],
            note: "FreeBSD's sopoll_generic never sets POLLERR on a socket: a pending so_error \
                   makes it readable and writable instead (soreadabledata, sowriteable)",
        },
        applies: |o| conn_mask(o).is_some_and(|(v, _, _)| v.err.is_some()),
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::ERR)),
    },
    Rule {
        id: "pollerr-only-with-error",
        text: "POLLERR is reported only while an error is pending; reading it (SO_ERROR, or a \
               recv/send that returns it) clears it and POLLERR goes.",
        source: "tcp_poll (net/ipv4/tcp.c: EPOLLERR iff sk_err or the error queue); \
                 include/net/sock.h sock_error (exchanges sk_err with 0); socket(7) SO_ERROR",
        os: OsScope::Linux,
        applies: |o| o.mask_answer().is_some(),
        holds: |o| {
            o.mask_answer()
                .is_none_or(|(v, _, m)| !m.contains(PollMask::ERR) || v.err.is_some())
        },
    },
    Rule {
        id: "freebsd-no-pollerr",
        text: "FreeBSD's poll() never reports POLLERR on a TCP socket; a pending error shows as \
               POLLIN (and POLLOUT, unless POLLHUP hides it).",
        source: "FreeBSD sys/kern/uipc_socket.c sopoll_generic; sys/sys/socketvar.h \
                 soreadabledata, sowriteable (\"|| (so)->so_error\")",
        os: OsScope::FreeBsd,
        applies: |o| is_poll(o) && o.view.is_some(),
        holds: |o| {
            o.mask_answer()
                .is_none_or(|(_, _, m)| !m.contains(PollMask::ERR))
        },
    },
    Rule {
        id: "freebsd-error-pollin",
        text: "On FreeBSD a connected socket with a pending error is readable: POLLIN (when \
               requested), so that the read returns the error.",
        source: "FreeBSD sys/sys/socketvar.h soreadabledata (\"|| (so)->so_error\"); \
                 sopoll_generic",
        os: OsScope::FreeBsd,
        applies: |o| {
            is_poll(o)
                && conn_mask(o)
                    .is_some_and(|(v, req, _)| v.err.is_some() && requested_has(req, PollMask::IN))
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::IN)),
    },
    // -- reading
    Rule {
        id: "data-ready-pollin",
        text: "With at least SO_RCVLOWAT (minimum 1) bytes of in-order data waiting, POLLIN is \
               reported (when requested). Not asserted while the handshake is under way or an \
               urgent byte is pending (Linux then needs one byte more than SO_RCVLOWAT).",
        source: "POSIX poll() (POLLIN: \"Data other than high-priority data may be read without \
                 blocking\"); poll(2) (POLLIN: \"There is data to read.\"); socket(7) SO_RCVLOWAT",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: |o| {
            conn_mask(o).is_some_and(|(v, req, _)| {
                requested_has(req, PollMask::IN)
                    && !handshaking(v)
                    && !v.urg_valid
                    && v.rcv_avail >= rcvlowat(v)
            })
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::IN)),
    },
    Rule {
        id: "pollin-read-wont-block",
        text: "POLLIN on a connected or closed socket means a read will not block: data waits, \
               or end-of-file was reached (FIN, shutdown, torn-down connection), or an error is \
               pending.",
        source: "POSIX poll() (POLLIN: \"may be read without blocking\"); poll(2) POLLHUP and epoll_ctl(2) \
                 EPOLLHUP (\"Subsequent reads from the channel will return 0 (end of file) only \
                 after all outstanding data in the channel has been consumed.\")",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: |o| conn_mask(o).is_some_and(|(_, _, m)| m.contains(PollMask::IN)),
        holds: |o| {
            conn_mask(o)
                .is_none_or(|(v, _, _)| v.rcv_avail > 0 || rcv_shut(v) || v.done || v.err.is_some())
        },
    },
    Rule {
        id: "eof-pollin",
        text: "Once the receive side is shut (the peer's FIN taken in sequence, SHUT_RD, or the \
               connection torn down), POLLIN is reported (when requested): a read returns the \
               remaining data, then 0.",
        source: "poll(2) and epoll_ctl(2) (end of file on a stream socket is POLLIN plus a read \
                 returning 0); POSIX poll() POLLIN; tcp_poll (\"if (sk->sk_shutdown & \
                 RCV_SHUTDOWN) mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP\")",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: |o| {
            conn_mask(o).is_some_and(|(v, req, _)| rcv_shut(v) && requested_has(req, PollMask::IN))
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::IN)),
    },
    Rule {
        id: "rcvlowat-gates-pollin",
        text: "While the receive side is open, POLLIN means at least SO_RCVLOWAT bytes wait — \
               except under receive-memory pressure or with the receive window down to one MSS, \
               when any byte will do.",
        source: "socket(7) SO_RCVLOWAT (\"Since Linux 2.6.28, select(2), poll(2), and epoll(7) \
                 indicate a socket as readable only if at least SO_RCVLOWAT bytes are \
                 available.\"); include/net/tcp.h tcp_epollin_ready",
        os: OsScope::Linux,
        applies: |o| conn_mask(o).is_some_and(|(v, _, m)| !rcv_shut(v) && m.contains(PollMask::IN)),
        holds: |o| {
            conn_mask(o).is_none_or(|(v, _, _)| {
                v.rcv_avail > 0
                    && (v.rcv_avail >= rcvlowat(v) || v.rmem_pressure || v.rcv_wnd_small)
            })
        },
    },
    Rule {
        id: "rdhup-on-receive-shutdown",
        text: "POLLRDHUP is reported (when requested) whenever the receive side is shut: the \
               peer's FIN, a local SHUT_RD, or a torn-down connection.",
        source: "epoll_ctl(2) EPOLLRDHUP and poll(2) POLLRDHUP, since Linux 2.6.17 (\"Stream \
                 socket peer closed connection, or shut down writing half of connection.\"); \
                 tcp_poll (also on a local SHUT_RD, which sets RCV_SHUTDOWN)",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o)
                .is_some_and(|(v, req, _)| rcv_shut(v) && requested_has(req, PollMask::RDHUP))
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::RDHUP)),
    },
    Rule {
        id: "rdhup-only-on-receive-shutdown",
        text: "POLLRDHUP is never reported while the receive side is open.",
        source: "tcp_poll (net/ipv4/tcp.c: EPOLLRDHUP is set only under RCV_SHUTDOWN); \
                 epoll_ctl(2) EPOLLRDHUP",
        os: OsScope::Linux,
        applies: |o| o.mask_answer().is_some(),
        holds: |o| {
            o.mask_answer()
                .is_none_or(|(v, _, m)| !m.contains(PollMask::RDHUP) || rcv_shut(v))
        },
    },
    Rule {
        id: "pollpri-iff-urgent",
        text: "On a connected or closed socket, POLLPRI (when requested) is reported exactly when \
               an out-of-band byte waits unread.",
        source: "poll(2) POLLPRI (\"There is out-of-band data on a TCP socket (see \
                 tcp(7)).\"); tcp(7) urgent data; tcp_poll (\"if (tp->urg_data & TCP_URG_VALID) mask |= EPOLLPRI\")",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o)
                .is_some_and(|(v, req, _)| !handshaking(v) && requested_has(req, PollMask::PRI))
        },
        holds: |o| conn_mask(o).is_none_or(|(v, _, m)| m.contains(PollMask::PRI) == v.urg_valid),
    },
    // -- hang-up
    Rule {
        id: "linux-pollhup-iff-both-shut-or-close",
        text: "On a non-listening socket Linux reports POLLHUP exactly when both directions are \
               shut or the socket is in CLOSE — which includes a fresh, never-connected socket. \
               A half-close (a FIN one way) never gives POLLHUP.",
        source: "tcp_poll (net/ipv4/tcp.c: \"if (sk->sk_shutdown == SHUTDOWN_MASK || state == \
                 TCP_CLOSE) mask |= EPOLLHUP\", and its comment \"set EPOLLHUP if and only if \
                 shutdown has been made in both directions\")",
        os: OsScope::Linux,
        applies: |o| conn_mask(o).is_some(),
        holds: |o| {
            conn_mask(o).is_none_or(|(v, _, m)| {
                m.contains(PollMask::HUP)
                    == (v.shutdown == SHUTDOWN_MASK || state(v) == TcpState::Close)
            })
        },
    },
    Rule {
        id: "posix-pollhup-excludes-pollout",
        text: "POLLHUP and POLLOUT are never reported together: a stream that has hung up is not \
               writable.",
        source: "POSIX poll() (POLLHUP: \"This event and POLLOUT are mutually-exclusive; a stream \
                 can never be writable if a hangup has occurred\"); FreeBSD sys/kern/sys_generic.c \
                 pollscan (\"POSIX requires POLLOUT to be never set simultaneously with POLLHUP\")",
        os: OsScope::Posix {
            departs: &[Os::Linux],
            note: "tcp_poll reports EPOLLOUT together with EPOLLHUP (its comment: \"EPOLLHUP is \
                   certainly not done right\"): a fresh socket, a reset or timed-out connection \
                   and a full shutdown all give OUT|HUP",
        },
        applies: |o| {
            o.mask_answer()
                .is_some_and(|(_, _, m)| m.contains(PollMask::HUP))
        },
        holds: |o| {
            o.mask_answer()
                .is_none_or(|(_, _, m)| !m.intersects(WRITE_BITS))
        },
    },
    Rule {
        id: "freebsd-pollhup-iff-both-cantmore",
        text: "On FreeBSD a non-listening socket reports POLLHUP exactly when it can neither \
               receive nor send more: both directions shut, or disconnected by RST or timeout.",
        source: "FreeBSD sys/kern/uipc_socket.c sopoll_generic (\"if (so->so_rcv.sb_state & \
                 SBS_CANTRCVMORE) ... if (so->so_snd.sb_state & SBS_CANTSENDMORE) revents |= \
                 POLLHUP\"); soisdisconnected",
        os: OsScope::FreeBsd,
        applies: |o| is_poll(o) && conn_mask(o).is_some(),
        holds: |o| {
            conn_mask(o).is_none_or(|(v, _, m)| {
                let so = FreeBsdSocket::from_view(v);
                m.contains(PollMask::HUP) == (so.cantrcvmore && so.cantsendmore)
            })
        },
    },
    // -- listening sockets
    Rule {
        id: "listen-readable-iff-accept-queue",
        text: "A listening socket with no pending error is readable (POLLIN, when requested) \
               exactly when a completed connection waits in its accept queue.",
        source: "accept(2) (\"A readable event will be delivered when a new connection is \
                 attempted\"); inet_csk_listen_poll (include/net/inet_connection_sock.h); FreeBSD \
                 sopoll_generic",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: |o| {
            listen_mask(o)
                .is_some_and(|(v, req, _)| v.err.is_none() && requested_has(req, PollMask::IN))
        },
        holds: |o| {
            listen_mask(o)
                .is_none_or(|(v, _, m)| m.contains(PollMask::IN) == (v.accept_queue_len > 0))
        },
    },
    Rule {
        id: "listen-reports-only-pollin",
        text: "A listening socket reports nothing but POLLIN|POLLRDNORM: never POLLOUT, POLLHUP \
               or POLLERR.",
        source: "tcp_poll (\"if (state == TCP_LISTEN) return inet_csk_listen_poll(sk)\"); \
                 inet_csk_listen_poll (include/net/inet_connection_sock.h)",
        os: OsScope::Linux,
        applies: |o| listen_mask(o).is_some(),
        holds: |o| {
            listen_mask(o).is_none_or(|(_, _, m)| m.0 & !(PollMask::IN | PollMask::RDNORM).0 == 0)
        },
    },
    // -- connecting
    Rule {
        id: "connecting-not-writable",
        text: "While a connect is in progress (SYN sent, no error, nothing shut) the socket is \
               not writable: POLLOUT comes only when the connection is established or has failed.",
        source: "POSIX connect() (\"When the connection has been established asynchronously, \
                 pselect(), select(), and poll() shall indicate that the file descriptor for the \
                 socket is ready for writing\"); connect(2) EINPROGRESS (\"It is possible to \
                 select(2) or poll(2) for completion by selecting the socket for writing.\")",
        os: OsScope::Posix {
            departs: &[],
            note: "",
        },
        applies: |o| {
            conn_mask(o).is_some_and(|(v, _, _)| {
                state(v) == TcpState::SynSent && v.shutdown == 0 && v.err.is_none() && !v.defer_connect
            })
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| !m.intersects(WRITE_BITS)),
    },
    Rule {
        id: "syn-sent-reports-nothing",
        text: "Linux reports an empty mask for a connect in progress (SYN_SENT), apart from \
               POLLERR if an error is pending; only a TCP Fast Open client gets POLLOUT early.",
        source: "tcp_poll (the readable/writable block is skipped for TCP_SYN_SENT; \"else if \
                 (state == TCP_SYN_SENT && ... DEFER_CONNECT ...)\")",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o).is_some_and(|(v, _, _)| state(v) == TcpState::SynSent && v.shutdown == 0 && !v.defer_connect)
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.0 & !PollMask::ERR.0 == 0),
    },
    // -- writing
    Rule {
        id: "pollout-needs-send-space",
        text: "While the send side is open, POLLOUT means the send queue holds less than sndbuf \
               and its free space is at least half of what is queued (wmem_queued ≲ 2/3 of \
               sndbuf), and unsent bytes meet TCP_NOTSENT_LOWAT.",
        source: "include/net/sock.h __sk_stream_is_writeable (sk_stream_wspace >= \
                 sk_stream_min_wspace), __sk_stream_memory_free; include/net/tcp.h \
                 tcp_stream_memory_free; tcp_poll",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o).is_some_and(|(v, _, m)| !send_shut(v) && m.contains(PollMask::OUT))
        },
        holds: |o| conn_mask(o).is_none_or(|(v, _, _)| send_space_ok(v) && notsent_ok(v)),
    },
    Rule {
        id: "send-space-gives-pollout",
        text: "On an established or closed socket with the send side open, enough send space (as \
               in pollout-needs-send-space) and TCP_NOTSENT_LOWAT met, POLLOUT is reported (when \
               requested).",
        source: "tcp_poll (\"if (__sk_stream_is_writeable(sk, 1)) mask |= EPOLLOUT | \
                 EPOLLWRNORM\"); poll(2) (POLLOUT: \"Writing is now possible\")",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o).is_some_and(|(v, req, _)| {
                requested_has(req, PollMask::OUT)
                    && !handshaking(v)
                    && !send_shut(v)
                    && send_space_ok(v)
                    && notsent_ok(v)
            })
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::OUT)),
    },
    Rule {
        id: "notsent-lowat-gates-pollout",
        text:
            "With TCP_NOTSENT_LOWAT set, POLLOUT (send side open) needs the unsent bytes, counted \
               twice, below it: a writer is woken only once the queue has mostly drained.",
        source: "include/net/tcp.h tcp_stream_memory_free (\"(notsent_bytes << wake) < \
                 tcp_notsent_lowat(tp)\"); Documentation/networking/ip-sysctl.rst \
                 tcp_notsent_lowat",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o).is_some_and(|(v, _, m)| {
                !send_shut(v) && m.contains(PollMask::OUT) && v.notsent_lowat != u32::MAX
            })
        },
        holds: |o| conn_mask(o).is_none_or(|(v, _, _)| notsent_ok(v)),
    },
    Rule {
        id: "send-shutdown-still-pollout",
        text: "After the send side is shut (SHUT_WR, close, or a torn-down connection) Linux \
               reports POLLOUT (when requested), although send() then fails with EPIPE: the write \
               does not block.",
        source: "tcp_poll (\"} else mask |= EPOLLOUT | EPOLLWRNORM;\" under SEND_SHUTDOWN); \
                 send(2) EPIPE (\"The local end has been shut down on a connection oriented \
                 socket.\")",
        os: OsScope::Linux,
        applies: |o| {
            conn_mask(o).is_some_and(|(v, req, _)| {
                send_shut(v) && !handshaking(v) && requested_has(req, PollMask::OUT)
            })
        },
        holds: |o| conn_mask(o).is_none_or(|(_, _, m)| m.contains(PollMask::OUT)),
    },
    // -- kqueue EVFILT_READ
    Rule {
        id: "kq-read-eof-iff-cantrcvmore",
        text: "EVFILT_READ on a non-listening socket fires with EV_EOF exactly when the receive \
               side is shut (FIN, SHUT_RD, disconnect), even while data is still unread; fflags \
               then carries so_error (0 if none).",
        source: "kqueue(2) EVFILT_READ (\"If the read direction of the socket has shutdown, then \
                 the filter also sets EV_EOF in flags, and returns the socket error (if any) in \
                 fflags. It is possible for EOF to be returned ... while there is still data \
                 pending\"); sys/kern/uipc_socket.c filt_soread",
        os: OsScope::FreeBsd,
        applies: |o| kq(o, KFilter::Read).is_some_and(|(so, _, _)| !so.listening),
        holds: |o| {
            kq(o, KFilter::Read).is_none_or(|(so, _, ev)| match ev {
                Some(ev) if so.cantrcvmore => eof_with_error(&so, &ev),
                Some(ev) => ev.flags & EV_EOF == 0,
                None => !so.cantrcvmore,
            })
        },
    },
    Rule {
        id: "kq-read-data-is-available",
        text:
            "EVFILT_READ's data is the number of bytes available to read; on a listening socket, \
               the number of connections waiting to be accepted.",
        source: "kqueue(2) EVFILT_READ (\"data contains the number of bytes of protocol data \
                 available to read\"; listen sockets: \"data contains the size of the listen \
                 backlog\"); filt_soread (kn_data = sbavail / sol_qlen)",
        os: OsScope::FreeBsd,
        applies: |o| kq(o, KFilter::Read).is_some_and(|(_, _, ev)| ev.is_some()),
        holds: |o| {
            kq(o, KFilter::Read).is_none_or(|(so, _, ev)| {
                let expect = if so.listening {
                    so.accept_queue_len
                } else {
                    so.rcv_avail
                };
                ev.is_none_or(|ev| ev.data == i64::from(expect))
            })
        },
    },
    Rule {
        id: "kq-read-lowat",
        text: "Without EOF or error, EVFILT_READ fires exactly when the bytes available reach the \
               low-water mark: NOTE_LOWAT if given, else SO_RCVLOWAT.",
        source: "kqueue(2) EVFILT_READ (\"subject to the SO_RCVLOWAT value of the socket buffer. \
                 This may be overridden with a per-filter low water mark ... NOTE_LOWAT\"); \
                 filt_soread",
        os: OsScope::FreeBsd,
        applies: |o| {
            kq(o, KFilter::Read)
                .is_some_and(|(so, _, _)| !so.listening && !so.cantrcvmore && so.so_error.is_none())
        },
        holds: |o| {
            kq(o, KFilter::Read).is_none_or(|(so, lowat, ev)| {
                ev.is_some() == (so.rcv_avail >= lowat.unwrap_or(so.rcv_lowat))
            })
        },
    },
    Rule {
        id: "kq-listen-read-iff-pending",
        text: "On a listening socket with no error, EVFILT_READ fires exactly when a completed \
               connection waits to be accepted.",
        source: "kqueue(2) EVFILT_READ (\"Sockets which have been passed to listen() return when \
                 there is an incoming connection pending\"); filt_soread (\"return \
                 (!TAILQ_EMPTY(&so->sol_comp))\")",
        os: OsScope::FreeBsd,
        applies: |o| {
            kq(o, KFilter::Read).is_some_and(|(so, _, _)| so.listening && so.so_error.is_none())
        },
        holds: |o| {
            kq(o, KFilter::Read).is_none_or(|(so, _, ev)| ev.is_some() == (so.accept_queue_len > 0))
        },
    },
    // -- kqueue EVFILT_WRITE
    Rule {
        id: "kq-write-eof-iff-cantsendmore",
        text:
            "EVFILT_WRITE on a non-listening socket fires with EV_EOF exactly when the send side \
               is shut (SHUT_WR, or a disconnect by FIN exchange, RST or timeout); fflags carries \
               so_error (0 if none).",
        source: "kqueue(2) EVFILT_WRITE (\"The filter will set EV_EOF when the reader \
                 disconnects\"); sys/kern/uipc_socket.c filt_sowrite (\"if (so->so_snd.sb_state & \
                 SBS_CANTSENDMORE) { kn->kn_flags |= EV_EOF; kn->kn_fflags = so->so_error;\")",
        os: OsScope::FreeBsd,
        applies: |o| kq(o, KFilter::Write).is_some_and(|(so, _, _)| !so.listening),
        holds: |o| {
            kq(o, KFilter::Write).is_none_or(|(so, _, ev)| match ev {
                Some(ev) if so.cantsendmore => eof_with_error(&so, &ev),
                Some(ev) => ev.flags & EV_EOF == 0,
                None => !so.cantsendmore,
            })
        },
    },
    Rule {
        id: "kq-write-not-while-connecting",
        text: "EVFILT_WRITE never fires on a socket that is not connected unless it has an error \
               or its send side is shut: a connect in progress reports nothing.",
        source: "sys/kern/uipc_socket.c filt_sowrite (\"else if (((so->so_state & SS_ISCONNECTED) \
                 == 0) && (so->so_proto->pr_flags & PR_CONNREQUIRED)) return (0);\"); POSIX \
                 connect()",
        os: OsScope::FreeBsd,
        applies: |o| {
            kq(o, KFilter::Write).is_some_and(|(so, _, _)| {
                !so.listening && !so.isconnected && !so.cantsendmore && so.so_error.is_none()
            })
        },
        holds: |o| kq(o, KFilter::Write).is_none_or(|(_, _, ev)| ev.is_none()),
    },
    Rule {
        id: "kq-write-data-is-space",
        text: "EVFILT_WRITE's data is the free space in the send buffer.",
        source:
            "kqueue(2) EVFILT_WRITE (\"For sockets, pipes and fifos, data will contain the \
                 amount of space remaining in the write buffer\"); filt_sowrite (kn_data = sbspace)",
        os: OsScope::FreeBsd,
        applies: |o| kq(o, KFilter::Write).is_some_and(|(_, _, ev)| ev.is_some()),
        holds: |o| {
            kq(o, KFilter::Write)
                .is_none_or(|(so, _, ev)| ev.is_none_or(|ev| ev.data == i64::from(so.snd_space)))
        },
    },
    Rule {
        id: "kq-write-lowat",
        text:
            "On a connected socket without EOF or error, EVFILT_WRITE fires exactly when the free \
               send space reaches the low-water mark: NOTE_LOWAT if given, else SO_SNDLOWAT \
               (MCLBYTES, at most the buffer size).",
        source: "kqueue(2) EVFILT_WRITE / NOTE_LOWAT; filt_sowrite (\"return (kn->kn_data >= \
                 so->so_snd.sb_lowat)\"); sys/kern/uipc_sockbuf.c soreserve (sb_lowat = \
                 MCLBYTES, clamped to sb_hiwat)",
        os: OsScope::FreeBsd,
        applies: |o| {
            kq(o, KFilter::Write).is_some_and(|(so, _, _)| {
                !so.listening && so.isconnected && !so.cantsendmore && so.so_error.is_none()
            })
        },
        holds: |o| {
            kq(o, KFilter::Write).is_none_or(|(so, lowat, ev)| {
                ev.is_some() == (so.snd_space >= lowat.unwrap_or(so.snd_lowat))
            })
        },
    },
    Rule {
        id: "kq-listen-never-writable",
        text: "EVFILT_WRITE never fires on a listening socket.",
        source: "sys/kern/uipc_socket.c filt_sowrite (\"if (SOLISTENING(so)) return (0);\")",
        os: OsScope::FreeBsd,
        applies: |o| kq(o, KFilter::Write).is_some_and(|(so, _, _)| so.listening),
        holds: |o| kq(o, KFilter::Write).is_none_or(|(_, _, ev)| ev.is_none()),
    },
    // -- kqueue EVFILT_EMPTY
    Rule {
        id: "kq-empty-iff-drained",
        text:
            "EVFILT_EMPTY on a connected socket fires exactly when the send buffer holds nothing \
               (all data sent and acknowledged); data is the bytes still held.",
        source: "kqueue(2) EVFILT_EMPTY (\"returns whenever there is no remaining data in the \
                 write buffer\"); sys/kern/uipc_socket.c filt_soempty",
        os: OsScope::FreeBsd,
        applies: |o| kq(o, KFilter::Empty).is_some_and(|(so, _, _)| !so.listening),
        holds: |o| {
            kq(o, KFilter::Empty).is_none_or(|(so, _, ev)| match ev {
                Some(ev) => so.snd_used == 0 && ev.data == 0,
                None => so.snd_used > 0,
            })
        },
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}
