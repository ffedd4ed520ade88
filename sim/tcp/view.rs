//! What a socket observably is, as the readiness computations need it.
//!
//! The TCP model fills a [`SockView`]; `poll`, `epoll`, `kqueue` and the rules read it. Keeping
//! this a plain value is what lets the rules (the specification) and `tcp_poll` (the
//! implementation) be written apart and checked against each other.

use crate::errno::Errno;
use crate::tcp::state::TcpState;
use serde::{Deserialize, Serialize};

/// `sk_shutdown` bits (include/net/sock.h).
pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = RCV_SHUTDOWN | SEND_SHUTDOWN;

/// The inputs of `tcp_poll()` (net/ipv4/tcp.c) and of FreeBSD's `filt_soread`/`filt_sowrite`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SockView {
    /// `None` for a socket that has no TCP state yet is never the case on Linux: a fresh socket
    /// is in CLOSE. Kept as a plain state.
    pub state: Option<TcpState>,
    /// `sk_shutdown`: [`RCV_SHUTDOWN`] | [`SEND_SHUTDOWN`].
    pub shutdown: u8,
    /// `SOCK_DONE`: a FIN was received in sequence (or the connection was torn down).
    pub done: bool,
    /// `sk_err`: the pending hard error, cleared by `sock_error()`.
    pub err: Option<Errno>,
    /// `sk_err_soft`: the soft error (e.g. a recorded ICMP), reported by SO_ERROR when `err` is 0.
    pub err_soft: Option<Errno>,
    /// `rcv_nxt - copied_seq`: in-order bytes not yet read.
    pub rcv_avail: u32,
    /// `SO_RCVLOWAT` (at least 1).
    pub rcvlowat: u32,
    /// `tcp_rmem_pressure()`: receive memory above 7/8 of rcvbuf.
    pub rmem_pressure: bool,
    /// The receive window is at most one `rcv_mss` (part of `tcp_epollin_ready`).
    pub rcv_wnd_small: bool,
    /// `sk_wmem_queued`: send-queue memory (truesize) in bytes.
    pub wmem_queued: u32,
    /// `sk_sndbuf`.
    pub sndbuf: u32,
    /// Bytes in the send queue not yet sent: `write_seq - snd_nxt`.
    pub notsent: u32,
    /// `TCP_NOTSENT_LOWAT` (or the sysctl; `u32::MAX` is "off").
    pub notsent_lowat: u32,
    /// `urg_data & TCP_URG_VALID`: an out-of-band byte waits unread.
    pub urg_valid: bool,
    /// For a listener: connections completed and waiting in the accept queue.
    pub accept_queue_len: u32,
    /// Bytes of free space in the send buffer, as FreeBSD's `sbspace(so_snd)` would see it.
    pub snd_space: u32,
    /// Bytes queued in the send buffer (FreeBSD `sbused(so_snd)`, for EVFILT_EMPTY).
    pub snd_used: u32,
    /// Linux `DEFER_CONNECT`: a Fast Open connect() that has not sent its SYN yet.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub defer_connect: bool,
    /// Linux `tp->fastopen_rsk`: a Fast Open child still in its handshake (SYN_RECV), which
    /// reads and writes as a connected socket does.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub fastopen_rsk: bool,
}

/// A poll/epoll event mask with Linux's bit values (include/uapi/asm-generic/poll.h,
/// include/uapi/linux/eventpoll.h: the EPOLL* bits equal the POLL* ones).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PollMask(pub u32);

impl PollMask {
    pub const IN: PollMask = PollMask(0x001);
    pub const PRI: PollMask = PollMask(0x002);
    pub const OUT: PollMask = PollMask(0x004);
    pub const ERR: PollMask = PollMask(0x008);
    pub const HUP: PollMask = PollMask(0x010);
    pub const NVAL: PollMask = PollMask(0x020);
    pub const RDNORM: PollMask = PollMask(0x040);
    pub const RDBAND: PollMask = PollMask(0x080);
    pub const WRNORM: PollMask = PollMask(0x100);
    pub const WRBAND: PollMask = PollMask(0x200);
    pub const RDHUP: PollMask = PollMask(0x2000);
    pub const EMPTY: PollMask = PollMask(0);

    /// Names in the order the readiness table prints them.
    pub const NAMED: [(PollMask, &'static str); 11] = [
        (PollMask::IN, "POLLIN"),
        (PollMask::PRI, "POLLPRI"),
        (PollMask::OUT, "POLLOUT"),
        (PollMask::RDHUP, "POLLRDHUP"),
        (PollMask::ERR, "POLLERR"),
        (PollMask::HUP, "POLLHUP"),
        (PollMask::NVAL, "POLLNVAL"),
        (PollMask::RDNORM, "POLLRDNORM"),
        (PollMask::RDBAND, "POLLRDBAND"),
        (PollMask::WRNORM, "POLLWRNORM"),
        (PollMask::WRBAND, "POLLWRBAND"),
    ];

    pub const fn contains(self, o: PollMask) -> bool {
        self.0 & o.0 == o.0
    }
    pub const fn intersects(self, o: PollMask) -> bool {
        self.0 & o.0 != 0
    }
    pub const fn union(self, o: PollMask) -> PollMask {
        PollMask(self.0 | o.0)
    }
    pub const fn intersection(self, o: PollMask) -> PollMask {
        PollMask(self.0 & o.0)
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flag names set in this mask, in table order.
    pub fn names(self) -> Vec<&'static str> {
        PollMask::NAMED.iter().filter(|(m, _)| self.contains(*m)).map(|(_, n)| *n).collect()
    }

    /// Parses one flag name (`POLLIN` or `EPOLLIN`).
    pub fn from_name(name: &str) -> Option<PollMask> {
        let n = name.strip_prefix('E').filter(|r| r.starts_with("POLL")).unwrap_or(name);
        PollMask::NAMED.iter().find(|(_, s)| *s == n).map(|(m, _)| *m)
    }
}

impl std::ops::BitOr for PollMask {
    type Output = PollMask;
    fn bitor(self, o: PollMask) -> PollMask {
        self.union(o)
    }
}

impl std::ops::BitOrAssign for PollMask {
    fn bitor_assign(&mut self, o: PollMask) {
        self.0 |= o.0;
    }
}

impl std::ops::BitAnd for PollMask {
    type Output = PollMask;
    fn bitand(self, o: PollMask) -> PollMask {
        self.intersection(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let m = PollMask::IN | PollMask::OUT | PollMask::RDHUP;
        assert_eq!(m.names(), vec!["POLLIN", "POLLOUT", "POLLRDHUP"]);
        assert_eq!(PollMask::from_name("EPOLLRDHUP"), Some(PollMask::RDHUP));
        assert_eq!(PollMask::from_name("POLLHUP"), Some(PollMask::HUP));
        assert_eq!(PollMask::from_name("EPOLLBOGUS"), None);
    }
}

/// Which socket callback woke the wait queue, and so which poll key it passed
/// (net/core/sock.c, net/core/stream.c). `ep_poll_callback` ignores a keyed wake-up whose key
/// does not intersect the item's interest.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// `sk_data_ready` = `sock_def_readable`: data (or a FIN, via `tcp_data_ready`) arrived.
    DataReady,
    /// `sk_write_space` = `sk_stream_write_space`: ACKs freed send memory.
    WriteSpace,
    /// `sk_state_change` = `sock_def_wakeup`: a state change (FIN, RST, connect done). No key.
    StateChange,
    /// `sk_error_report` = `sock_def_error_report`: `sk_err` was set.
    ErrorReport,
}

impl Wakeup {
    /// The key the callback passes to `__wake_up` (`EMPTY` = no key: every waiter matches).
    pub fn key(self) -> PollMask {
        match self {
            // `wake_up_interruptible_sync_poll(&wq->wait, EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND)`
            Wakeup::DataReady => PollMask::IN | PollMask::PRI | PollMask::RDNORM | PollMask::RDBAND,
            // `wake_up_interruptible_sync_poll(&wq->wait, EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND)`
            Wakeup::WriteSpace => PollMask::OUT | PollMask::WRNORM | PollMask::WRBAND,
            // `wake_up_interruptible_all(&wq->wait)`
            Wakeup::StateChange => PollMask::EMPTY,
            // `wake_up_interruptible_poll(&wq->wait, EPOLLERR)`
            Wakeup::ErrorReport => PollMask::ERR,
        }
    }
}
