//! Sockets in the conditions of the readiness table (linux-tcp-facts §2.2), as `SockView`s the
//! TCP model would fill, for the readiness tests.
#![allow(dead_code)]

use tcpsim::errno::Errno;
use tcpsim::socket::view::{PollMask, SockView, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use tcpsim::tcp::state::TcpState;

/// The interest of the readiness table: `POLLIN|POLLPRI|POLLOUT|POLLRDHUP`.
pub const TABLE_EVENTS: PollMask =
    PollMask(PollMask::IN.0 | PollMask::PRI.0 | PollMask::OUT.0 | PollMask::RDHUP.0);

/// Linux defaults: SO_RCVLOWAT 1, sndbuf `tcp_wmem[1]`, TCP_NOTSENT_LOWAT off; FreeBSD's
/// default send space (32 KiB) for the FreeBSD-only fields.
pub fn fresh() -> SockView {
    SockView {
        state: Some(TcpState::Close),
        rcvlowat: 1,
        sndbuf: 16384,
        notsent_lowat: u32::MAX,
        snd_space: 32768,
        ..SockView::default()
    }
}

pub fn in_state(state: TcpState) -> SockView {
    SockView {
        state: Some(state),
        ..fresh()
    }
}

pub fn listener(accept_queue_len: u32) -> SockView {
    SockView {
        accept_queue_len,
        ..in_state(TcpState::Listen)
    }
}

pub fn established() -> SockView {
    in_state(TcpState::Established)
}

pub fn with_data(mut v: SockView, bytes: u32) -> SockView {
    v.rcv_avail = bytes;
    v
}

/// The peer's FIN taken in sequence (`tcp_fin`): CLOSE_WAIT, RCV_SHUTDOWN, SOCK_DONE.
pub fn peer_fin(unread: u32) -> SockView {
    SockView {
        shutdown: RCV_SHUTDOWN,
        done: true,
        rcv_avail: unread,
        ..in_state(TcpState::CloseWait)
    }
}

/// Local SHUT_WR, our FIN acknowledged: FIN_WAIT2.
pub fn local_shut_wr() -> SockView {
    SockView {
        shutdown: SEND_SHUTDOWN,
        ..in_state(TcpState::FinWait2)
    }
}

/// Local SHUT_RD: no state change.
pub fn local_shut_rd() -> SockView {
    SockView {
        shutdown: RCV_SHUTDOWN,
        ..established()
    }
}

/// Local SHUT_RDWR: FIN_WAIT2 with both bits.
pub fn local_shut_rdwr() -> SockView {
    SockView {
        shutdown: SHUTDOWN_MASK,
        ..in_state(TcpState::FinWait2)
    }
}

/// A connection torn down by `tcp_done` (RST, timeout, refused; or both FINs with the fd in
/// CLOSE): CLOSE, SHUTDOWN_MASK, SOCK_DONE, and the error if one is still pending.
pub fn torn_down(err: Option<Errno>, unread: u32) -> SockView {
    SockView {
        shutdown: SHUTDOWN_MASK,
        done: true,
        err,
        rcv_avail: unread,
        ..fresh()
    }
}

/// The send buffer is full: `wmem_queued` at `sndbuf`, no FreeBSD send space.
pub fn sndbuf_full() -> SockView {
    SockView {
        wmem_queued: 16384,
        notsent: 8000,
        snd_space: 0,
        snd_used: 32768,
        ..established()
    }
}

pub fn names(m: PollMask) -> Vec<&'static str> {
    m.names()
}
