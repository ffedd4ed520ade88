//! FreeBSD's view of a TCP socket: the kqueue filters and poll(2), from sys/kern/uipc_socket.c
//! (`filt_soread`, `filt_sowrite`, `filt_soempty`, `sopoll_generic`), sys/sys/socketvar.h
//! (`soreadabledata`, `sowriteable`) and sys/kern/sys_generic.c (`pollscan`).
//!
//! The socket is described by the same [`SockView`] the Linux model fills; [`FreeBsdSocket`]
//! translates it, in one place, into the flags FreeBSD's code tests.

use crate::errno::Errno;
use crate::socket::view::{PollMask, SockView, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use crate::tcp::state::TcpState;

/// `EV_EOF` (sys/sys/event.h).
pub const EV_EOF: u16 = 0x8000;
/// `MCLBYTES`: the default send low-water mark `soreserve` installs.
pub const MCLBYTES: u32 = 2048;

/// The kqueue filters a socket supports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KFilter {
    Read,
    Write,
    Empty,
}

impl KFilter {
    /// The `EVFILT_*` number (sys/sys/event.h).
    pub fn code(self) -> i16 {
        match self {
            KFilter::Read => -1,
            KFilter::Write => -2,
            KFilter::Empty => -13,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            KFilter::Read => "EVFILT_READ",
            KFilter::Write => "EVFILT_WRITE",
            KFilter::Empty => "EVFILT_EMPTY",
        }
    }
}

/// One event kevent(2) returns for a socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KEvent {
    pub filter: KFilter,
    /// Bytes readable (READ), listen-queue length (READ on a listener), send space (WRITE),
    /// bytes still in the send buffer (EMPTY).
    pub data: i64,
    /// Only [`EV_EOF`] is produced by the socket filters.
    pub flags: u16,
    /// With `EV_EOF`: `so_error` as a FreeBSD errno number (0 if none).
    pub fflags: u32,
}

impl KEvent {
    pub fn eof(&self) -> bool {
        self.flags & EV_EOF != 0
    }
}

/// The FreeBSD socket flags the filters read, derived from the [`SockView`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FreeBsdSocket {
    /// `SOLISTENING(so)`.
    pub listening: bool,
    /// `so_rcv.sb_state & SBS_CANTRCVMORE`.
    pub cantrcvmore: bool,
    /// `so_snd.sb_state & SBS_CANTSENDMORE`.
    pub cantsendmore: bool,
    /// `so_state & SS_ISCONNECTED`.
    pub isconnected: bool,
    /// `so_error`, the pending error.
    pub so_error: Option<Errno>,
    /// `sbavail(&so->so_rcv)` (TCP keeps no control data: `sb_ctl` is 0).
    pub rcv_avail: u32,
    /// `so_rcv.sb_lowat` (SO_RCVLOWAT; `soreserve` makes it at least 1).
    pub rcv_lowat: u32,
    /// `sbspace(&so->so_snd)`.
    pub snd_space: u32,
    /// `so_snd.sb_lowat`: `soreserve` sets MCLBYTES, clamped to `sb_hiwat` (the send buffer).
    pub snd_lowat: u32,
    /// `sbused(&so->so_snd)`.
    pub snd_used: u32,
    /// `so_oobmark || (so_rcv.sb_state & SBS_RCVATMARK)`: out-of-band data waits.
    pub oob: bool,
    /// `sol_qlen` / `!TAILQ_EMPTY(&so->sol_comp)` for a listener.
    pub accept_queue_len: u32,
}

impl FreeBsdSocket {
    /// The one translation from the simulator's socket to FreeBSD's flags.
    pub fn from_view(v: &SockView) -> FreeBsdSocket {
        let state = v.state.unwrap_or(TcpState::Close);
        // `soisdisconnected` (RST, timeout, full close) sets both CANTRCVMORE and CANTSENDMORE;
        // the model records a torn-down connection as CLOSE with both shutdown bits, as Linux's
        // `tcp_done` does. A fresh CLOSE socket has neither.
        let disconnected = state == TcpState::Close && (v.done || v.shutdown == SHUTDOWN_MASK);
        FreeBsdSocket {
            listening: state == TcpState::Listen,
            // `socantrcvmore`: a FIN in sequence (tcp_input), SHUT_RD (`soshutdown`), or
            // `soisdisconnected`.
            cantrcvmore: v.shutdown & RCV_SHUTDOWN != 0 || disconnected,
            // `socantsendmore`: SHUT_WR / close (`soshutdown`), or `soisdisconnected`.
            cantsendmore: v.shutdown & SEND_SHUTDOWN != 0 || disconnected,
            // `soisconnected` on entering ESTABLISHED; `soisdisconnected` clears it when the
            // connection is gone (TIME_WAIT, CLOSE via `tcp_close`).
            isconnected: matches!(
                state,
                TcpState::Established
                    | TcpState::FinWait1
                    | TcpState::FinWait2
                    | TcpState::CloseWait
                    | TcpState::Closing
                    | TcpState::LastAck
            ),
            // `tcp_drop` stores the hard error in `so_error`; soft errors stay in `t_softerror`.
            so_error: v.err,
            rcv_avail: v.rcv_avail,
            rcv_lowat: v.rcvlowat.max(1),
            snd_space: v.snd_space,
            snd_lowat: MCLBYTES.min(v.sndbuf),
            snd_used: v.snd_used,
            oob: v.urg_valid,
            accept_queue_len: v.accept_queue_len,
        }
    }

    fn error_code(&self) -> u32 {
        self.so_error.map_or(0, freebsd_errno)
    }
}

/// An errno's number on FreeBSD (sys/sys/errno.h), which differs from Linux's for most
/// networking errors (ECONNRESET is 54, not 104).
pub fn freebsd_errno(e: Errno) -> u32 {
    use Errno::*;
    match e {
        ENOENT => 2,
        EINTR => 4,
        EBADF => 9,
        EFAULT => 14,
        EEXIST => 17,
        EINVAL => 22,
        EMFILE => 24,
        EPIPE => 32,
        EAGAIN => 35,
        EINPROGRESS => 36,
        EALREADY => 37,
        ENOPROTOOPT => 42,
        EOPNOTSUPP => 45,
        EADDRINUSE => 48,
        EADDRNOTAVAIL => 49,
        ENETUNREACH => 51,
        ECONNABORTED => 53,
        ECONNRESET => 54,
        ENOBUFS => 55,
        EISCONN => 56,
        ENOTCONN => 57,
        ETIMEDOUT => 60,
        ECONNREFUSED => 61,
        EHOSTUNREACH => 65,
        ENOSYS => 78,
    }
}

/// The errno a FreeBSD number stands for: the inverse of [`freebsd_errno`], to name a
/// kevent's `fflags`.
pub fn errno_from_freebsd(code: u32) -> Option<Errno> {
    Errno::all().iter().copied().find(|e| freebsd_errno(*e) == code)
}

/// EVFILT_READ: `filt_soread`. `note_lowat` is the `NOTE_LOWAT` threshold if one was given.
/// `None` if the filter does not fire.
pub fn kevent_read(v: &SockView, note_lowat: Option<u32>) -> Option<KEvent> {
    let so = FreeBsdSocket::from_view(v);
    let mut ev = KEvent {
        filter: KFilter::Read,
        data: 0,
        flags: 0,
        fflags: 0,
    };
    if so.listening {
        // `kn->kn_data = so->sol_qlen;`
        ev.data = i64::from(so.accept_queue_len);
        // `if (so->so_error) { kn_flags |= EV_EOF; kn_fflags = so_error; return 1; }`
        if so.so_error.is_some() {
            ev.flags |= EV_EOF;
            ev.fflags = so.error_code();
            return Some(ev);
        }
        // `return (!TAILQ_EMPTY(&so->sol_comp));`
        return (so.accept_queue_len > 0).then_some(ev);
    }
    // `kn->kn_data = sbavail(&so->so_rcv) - so->so_rcv.sb_ctl;`
    ev.data = i64::from(so.rcv_avail);
    // `if (so->so_rcv.sb_state & SBS_CANTRCVMORE) { EV_EOF; fflags = so_error; return 1; }`
    if so.cantrcvmore {
        ev.flags |= EV_EOF;
        ev.fflags = so.error_code();
        return Some(ev);
    }
    // `else if (so->so_error || so->so_rerror) return 1;`
    if so.so_error.is_some() {
        return Some(ev);
    }
    // `if (kn->kn_sfflags & NOTE_LOWAT) return kn_data >= kn_sdata;`
    // `else if (sbavail(&so->so_rcv) >= so->so_rcv.sb_lowat) return 1;`
    let lowat = note_lowat.unwrap_or(so.rcv_lowat);
    (so.rcv_avail >= lowat).then_some(ev)
}

/// EVFILT_WRITE: `filt_sowrite`. `note_lowat` as for [`kevent_read`].
pub fn kevent_write(v: &SockView, note_lowat: Option<u32>) -> Option<KEvent> {
    let so = FreeBsdSocket::from_view(v);
    // `if (SOLISTENING(so)) return (0);`
    if so.listening {
        return None;
    }
    // `kn->kn_data = sbspace(&so->so_snd);`
    let mut ev = KEvent {
        filter: KFilter::Write,
        data: i64::from(so.snd_space),
        flags: 0,
        fflags: 0,
    };
    // `if (so->so_snd.sb_state & SBS_CANTSENDMORE) { EV_EOF; fflags = so_error; return 1; }`
    if so.cantsendmore {
        ev.flags |= EV_EOF;
        ev.fflags = so.error_code();
        return Some(ev);
    }
    // `else if (so->so_error) return 1;`
    if so.so_error.is_some() {
        return Some(ev);
    }
    // `else if (!(so_state & SS_ISCONNECTED) && (pr_flags & PR_CONNREQUIRED)) return 0;`
    if !so.isconnected {
        return None;
    }
    // `return kn_data >= (NOTE_LOWAT ? kn_sdata : so->so_snd.sb_lowat);`
    let lowat = note_lowat.unwrap_or(so.snd_lowat);
    (so.snd_space >= lowat).then_some(ev)
}

/// EVFILT_EMPTY: `filt_soempty` — fires when the send buffer holds nothing (a listener always).
pub fn kevent_empty(v: &SockView) -> Option<KEvent> {
    let so = FreeBsdSocket::from_view(v);
    let mut ev = KEvent {
        filter: KFilter::Empty,
        data: 0,
        flags: 0,
        fflags: 0,
    };
    if so.listening {
        return Some(ev);
    }
    ev.data = i64::from(so.snd_used);
    (so.snd_used == 0).then_some(ev)
}

/// The event of one filter ([`kevent_read`], [`kevent_write`], [`kevent_empty`]).
pub fn kevent(v: &SockView, filter: KFilter, note_lowat: Option<u32>) -> Option<KEvent> {
    match filter {
        KFilter::Read => kevent_read(v, note_lowat),
        KFilter::Write => kevent_write(v, note_lowat),
        KFilter::Empty => kevent_empty(v),
    }
}

/// poll(2) on FreeBSD: `sopoll_generic`, then `pollscan`'s "POSIX requires POLLOUT to be never
/// set simultaneously with POLLHUP". FreeBSD never reports POLLERR for a socket: a pending
/// error makes it readable and writable instead (`soreadabledata`, `sowriteable`).
pub fn freebsd_poll(v: &SockView, requested: PollMask) -> PollMask {
    let so = FreeBsdSocket::from_view(v);
    let rd = PollMask::IN | PollMask::RDNORM;
    let wr = PollMask::OUT | PollMask::WRNORM;
    let pri = PollMask::PRI | PollMask::RDBAND;
    let mut revents = PollMask::EMPTY;
    if so.listening {
        if !requested.intersects(rd) {
            revents = PollMask::EMPTY;
        } else if so.accept_queue_len > 0 {
            revents = requested & rd;
        } else if so.so_error.is_some() {
            revents = (requested & rd) | PollMask::HUP;
        }
    } else {
        // `soreadabledata`: sbavail >= sb_lowat || so_error || so_rerror.
        if requested.intersects(rd) && (so.rcv_avail >= so.rcv_lowat || so.so_error.is_some()) {
            revents |= requested & rd;
        }
        // `sowriteable`: (space >= lowat && connected) || CANTSENDMORE || so_error.
        let writeable = (so.snd_space >= so.snd_lowat && so.isconnected)
            || so.cantsendmore
            || so.so_error.is_some();
        if requested.intersects(wr) && writeable {
            revents |= requested & wr;
        }
        if requested.intersects(pri) && so.oob {
            revents |= requested & pri;
        }
        // `if (so_rcv.sb_state & SBS_CANTRCVMORE) { revents |= events & (POLLIN|POLLRDNORM);`
        // `    if (so_snd.sb_state & SBS_CANTSENDMORE) revents |= POLLHUP; }`
        if so.cantrcvmore {
            revents |= requested & rd;
            if so.cantsendmore {
                revents |= PollMask::HUP;
            }
            // `revents |= events & POLLRDHUP;` (FreeBSD 14)
            revents |= requested & PollMask::RDHUP;
        }
    }
    // sys_generic.c `pollscan`: `if ((fds->revents & POLLHUP) != 0) fds->revents &= ~POLLOUT;`
    // FreeBSD defines POLLWRNORM as POLLOUT (sys/sys/poll.h), so both names go.
    if revents.contains(PollMask::HUP) {
        revents = PollMask(revents.0 & !wr.0);
    }
    revents
}
