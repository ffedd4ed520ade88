//! Linux's readiness mask for a TCP socket, and what poll(2) hands back to a program.
//!
//! [`tcp_poll`] is the implementation: it follows net/ipv4/tcp.c `tcp_poll` statement by
//! statement (6.x), each step commented with the kernel line it models. The documented rules it
//! must satisfy live apart, in `crate::rules`; the two are checked against each other.
//!
//! Not modelled (the `SockView` does not carry them, and the TCP model does not produce them):
//! the BPF psock `sk_is_readable` hook, the
//! `MSG_ERRQUEUE` error queue, and the urgent byte sitting exactly at `copied_seq` (which adds 1
//! to the SO_RCVLOWAT target).

use crate::socket::view::{PollMask, SockView, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use crate::tcp::state::TcpState;

/// The readiness mask Linux computes for a TCP socket: net/ipv4/tcp.c `tcp_poll`.
///
/// This is the full mask, before poll(2) or epoll filter it by the caller's interest.
pub fn tcp_poll(v: &SockView) -> PollMask {
    // `state = inet_sk_state_load(sk);` A socket always has a state; a fresh one is CLOSE.
    let state = v.state.unwrap_or(TcpState::Close);
    // `if (state == TCP_LISTEN) return inet_csk_listen_poll(sk);`
    if state == TcpState::Listen {
        return inet_csk_listen_poll(v);
    }
    let mut mask = PollMask::EMPTY;
    // `if (sk->sk_shutdown == SHUTDOWN_MASK || state == TCP_CLOSE) mask |= EPOLLHUP;`
    // (HUP only when both directions are shut: the "EPOLLHUP is certainly not done right" comment.)
    if v.shutdown == SHUTDOWN_MASK || state == TcpState::Close {
        mask |= PollMask::HUP;
    }
    // `if (sk->sk_shutdown & RCV_SHUTDOWN) mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;`
    if v.shutdown & RCV_SHUTDOWN != 0 {
        mask |= PollMask::IN | PollMask::RDNORM | PollMask::RDHUP;
    }
    // `if (state != TCP_SYN_SENT && (state != TCP_SYN_RECV || rcu_access_pointer(tp->fastopen_rsk)))`
    // A SYN_RECV socket of a simultaneous open takes the else branch; a Fast Open child
    // does not.
    if state != TcpState::SynSent && (state != TcpState::SynRecv || v.fastopen_rsk) {
        // `int target = sock_rcvlowat(sk, 0, INT_MAX);`
        let target = sock_rcvlowat(v);
        // `if (tcp_stream_is_readable(sk, target)) mask |= EPOLLIN | EPOLLRDNORM;`
        if tcp_epollin_ready(v, target) {
            mask |= PollMask::IN | PollMask::RDNORM;
        }
        // `if (!(shutdown & SEND_SHUTDOWN)) { if (__sk_stream_is_writeable(sk, 1)) ... }`
        if v.shutdown & SEND_SHUTDOWN == 0 {
            // The kernel sets SOCK_NOSPACE when this fails and tests again after a barrier, to
            // close a race with a concurrent ACK; a simulation has no such race, so one test.
            if sk_stream_is_writeable(v) {
                mask |= PollMask::OUT | PollMask::WRNORM;
            }
        } else {
            // `else mask |= EPOLLOUT | EPOLLWRNORM;` — "a write would not block": it fails at
            // once with EPIPE.
            mask |= PollMask::OUT | PollMask::WRNORM;
        }
        // `if (tp->urg_data & TCP_URG_VALID) mask |= EPOLLPRI;`
        if v.urg_valid {
            mask |= PollMask::PRI;
        }
    }
    // `else if (state == TCP_SYN_SENT && inet_test_bit(DEFER_CONNECT, sk))`: a Fast Open
    // connect() that deferred its SYN is writable, "so application can call write() in order
    // for kernel to generate SYN+data". Any other connect in progress reports nothing.
    else if state == TcpState::SynSent && v.defer_connect {
        mask |= PollMask::OUT | PollMask::WRNORM;
    }

    // `smp_rmb(); if (READ_ONCE(sk->sk_err) || !skb_queue_empty_lockless(&sk->sk_error_queue))`
    // `    mask |= EPOLLERR;`
    if v.err.is_some() {
        mask |= PollMask::ERR;
    }
    mask
}

/// include/net/inet_connection_sock.h `inet_csk_listen_poll`: a listener is readable when its
/// accept queue (`rskq_accept_head`) is non-empty, and reports nothing else.
pub fn inet_csk_listen_poll(v: &SockView) -> PollMask {
    if v.accept_queue_len > 0 {
        PollMask::IN | PollMask::RDNORM
    } else {
        PollMask::EMPTY
    }
}

/// include/net/sock.h `sock_rcvlowat(sk, 0, INT_MAX)`: `min(sk_rcvlowat, INT_MAX) ?: 1`.
pub fn sock_rcvlowat(v: &SockView) -> u32 {
    v.rcvlowat.clamp(1, i32::MAX as u32)
}

/// include/net/tcp.h `tcp_epollin_ready`: in-order bytes wait and either there are at least
/// `target` of them, receive memory is under pressure (`tcp_rmem_pressure`), or the receive
/// window has shrunk to at most one `rcv_mss` (so waiting for more would deadlock).
pub fn tcp_epollin_ready(v: &SockView, target: u32) -> bool {
    // `if (avail <= 0) return false;`
    if v.rcv_avail == 0 {
        return false;
    }
    // `return (avail >= target) || tcp_rmem_pressure(sk) ||
    //        (tcp_receive_window(tp) <= inet_csk(sk)->icsk_ack.rcv_mss);`
    v.rcv_avail >= target || v.rmem_pressure || v.rcv_wnd_small
}

/// include/net/sock.h `__sk_stream_is_writeable(sk, wake = 1)` as tcp_poll calls it.
pub fn sk_stream_is_writeable(v: &SockView) -> bool {
    // `sk_stream_wspace(sk) >= sk_stream_min_wspace(sk)`: `sndbuf - wmem_queued >=
    // wmem_queued >> 1` in signed int arithmetic (the space may be negative).
    let wspace = i64::from(v.sndbuf) - i64::from(v.wmem_queued);
    let min_wspace = i64::from(v.wmem_queued >> 1);
    wspace >= min_wspace && sk_stream_memory_free(v)
}

/// include/net/sock.h `__sk_stream_memory_free(sk, wake = 1)`.
fn sk_stream_memory_free(v: &SockView) -> bool {
    // `if (READ_ONCE(sk->sk_wmem_queued) >= READ_ONCE(sk->sk_sndbuf)) return false;`
    if v.wmem_queued >= v.sndbuf {
        return false;
    }
    // tcp.c `tcp_stream_memory_free`: `(notsent_bytes << wake) < tcp_notsent_lowat(tp)`,
    // a u32 shift that drops the top bit exactly as C does.
    (v.notsent << 1) < v.notsent_lowat
}

/// What poll(2) stores in `revents` for an open socket: fs/select.c `do_pollfd` filters the
/// mask by `events | EPOLLERR | EPOLLHUP` (POLLERR and POLLHUP need not be requested).
pub fn poll_revents(v: &SockView, requested: PollMask) -> PollMask {
    tcp_poll(v) & (requested | PollMask::ERR | PollMask::HUP)
}

/// `revents` for an entry whose fd is not open: fs/select.c `do_pollfd` sets `EPOLLNVAL`
/// (whatever was requested).
pub const POLL_REVENTS_CLOSED_FD: PollMask = PollMask::NVAL;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;

    fn established() -> SockView {
        SockView {
            state: Some(TcpState::Established),
            rcvlowat: 1,
            sndbuf: 16384,
            notsent_lowat: u32::MAX,
            ..SockView::default()
        }
    }

    #[test]
    fn writeable_threshold_is_the_kernels_integer_test() {
        let mut v = established();
        v.sndbuf = 3000;
        v.wmem_queued = 2000; // 1000 >= 1000
        assert!(sk_stream_is_writeable(&v));
        v.wmem_queued = 2001; // 999 >= 1000 fails
        assert!(!sk_stream_is_writeable(&v));
        v.sndbuf = 4;
        v.wmem_queued = 3; // 1 >= 1, 3 < 4: writeable although 3 > 2/3 * 4
        assert!(sk_stream_is_writeable(&v));
        v.wmem_queued = 4; // not below sndbuf
        assert!(!sk_stream_is_writeable(&v));
    }

    #[test]
    fn notsent_lowat_gates_writability() {
        let mut v = established();
        v.notsent_lowat = 100;
        v.notsent = 49; // 98 < 100
        assert!(sk_stream_is_writeable(&v));
        v.notsent = 50; // 100 < 100 fails
        assert!(!sk_stream_is_writeable(&v));
    }

    #[test]
    fn poll_reports_err_and_hup_unrequested_but_filters_the_rest() {
        let mut v = established();
        v.state = Some(TcpState::Close);
        v.shutdown = SHUTDOWN_MASK;
        v.done = true;
        v.err = Some(Errno::ECONNRESET);
        assert_eq!(
            tcp_poll(&v),
            PollMask::IN
                | PollMask::RDNORM
                | PollMask::RDHUP
                | PollMask::OUT
                | PollMask::WRNORM
                | PollMask::ERR
                | PollMask::HUP
        );
        assert_eq!(
            poll_revents(&v, PollMask::EMPTY),
            PollMask::ERR | PollMask::HUP
        );
        assert_eq!(
            poll_revents(&v, PollMask::IN),
            PollMask::IN | PollMask::ERR | PollMask::HUP
        );
    }
}
