//! The seed question "what constitutes readable": graceful close, half-close and reset, as
//! `models/peer-closes-gracefully.toml`, `models/peer-half-closes.toml` and
//! `models/peer-resets.toml` ask them, held to linux-tcp-facts.md §1.1, §2.1, §2.2 and §7.

mod models_support;
use models_support::*;
use tcpsim::errno::Errno;

/// Steps 0-5 of these scripts: listen, connect (one round trip), accept (when the client's
/// ACK lands, one more one-way delay).
fn handshake_times(r: &Run) {
    let ow = one_way(&r.sc);
    assert_eq!(r.calls("connect", "c")[0].t_ns, 2 * ow, "connect returns one round trip after the SYN");
    assert_eq!(r.calls("accept", "listener")[0].t_ns, 3 * ow, "accept returns when the third ACK arrives");
}

#[test]
fn graceful_close_reads_as_data_then_end_of_stream_with_epollin_and_rdhup_but_no_hup() {
    let r = run_model("peer-closes-gracefully.toml");
    handshake_times(&r);
    let ow = one_way(&r.sc);
    let peeks = r.calls("recv", "c");
    // Idle and healthy: the MSG_PEEK liveness check says EAGAIN, epoll says OUT only.
    fails(peeks[0], Errno::EAGAIN);
    let waits = r.ops("epoll_wait");
    assert_eq!(events(waits[0]), "POLLOUT");
    // The server's data and FIN leave at the close (3·ow) and arrive one way later: CLOSE_WAIT.
    let close_wait = r.transitions("client", "CLOSE_WAIT");
    assert_eq!(close_wait.len(), 1);
    assert_eq!(t(close_wait[0]), 4 * ow);
    // After the FIN: IN|OUT|RDHUP, no HUP (only RCV_SHUTDOWN), no ERR.
    assert_eq!(events(waits[1]), "POLLIN|POLLOUT|POLLRDHUP");
    ok(peeks[1], 1); // the peek sees data, not yet the end
    ok(peeks[2], 4); // "bye\n"
    ok(peeks[3], 0); // end of stream
    // Level-triggered readiness stays at end of stream.
    assert_eq!(events(waits[2]), "POLLIN|POLLOUT|POLLRDHUP");
    // Nobody saw an error; both ends closed cleanly: the server (first to close) reaches
    // TIME_WAIT when the client's FIN arrives, the client CLOSE when its FIN is acknowledged.
    for k in &r.report.script_sockets {
        assert!(k.errors.is_empty() && k.error_raised.is_none(), "{k:?}");
    }
    let client_close = r.calls("close", "c")[0].t_ns;
    assert_eq!(t(r.transitions("server", "TIME_WAIT")[0]), client_close + ow);
    assert_eq!(t(r.transitions("client", "CLOSE")[0]), client_close + 2 * ow);
    assert!(r.sent("client", "R.").is_empty() && r.sent("server", "R.").is_empty(), "no RST anywhere");
}

#[test]
fn half_close_gives_pollin_and_rdhup_without_hup_and_the_other_direction_still_works() {
    let r = run_model("peer-half-closes.toml");
    handshake_times(&r);
    let ow = one_way(&r.sc);
    let poll = r.ops("poll")[0];
    ok(poll, 1);
    assert_eq!(events(poll), "POLLIN|POLLOUT|POLLRDHUP", "no POLLHUP: only the receive side is shut");
    let recvs = r.calls("recv", "c");
    ok(recvs[0], 14);
    ok(recvs[1], 0);
    // The client, in CLOSE_WAIT, may still send; the server reads it one way later.
    let send = r.calls("send", "c")[0];
    ok(send, 11);
    let server_recvs = r.calls("recv", "s");
    ok(server_recvs[0], 11);
    assert_eq!(server_recvs[0].t_ns, send.t_ns + ow);
    // Then the client closes: the server's recv returns 0 when that FIN arrives.
    ok(server_recvs[1], 0);
    assert_eq!(server_recvs[1].t_ns, r.calls("close", "c")[0].t_ns + ow);
    // The server's descriptor, after SHUT_WR and the peer's FIN, is in CLOSE (the TIME_WAIT is
    // a separate mini-socket; measured on 6.18, facts §1.2).
    assert_eq!(r.script_socket("s").state, Some("CLOSE"));
    assert!(r.report.script_sockets.iter().all(|k| k.errors.is_empty()));
}

#[test]
fn reset_reads_as_err_then_econnreset_once_then_end_of_stream_then_epipe() {
    let r = run_model("peer-resets.toml");
    handshake_times(&r);
    let ow = one_way(&r.sc);
    // SO_LINGER {1, 0} and close(): an RST, not a FIN (tcp.c `__tcp_close` → `tcp_disconnect`).
    let close = r.calls("close", "s")[0].t_ns;
    let rst = r.sent("server", "R.");
    assert_eq!(rst.len(), 1);
    assert_eq!(t(rst[0]), close);
    assert!(r.sent("server", "F.").is_empty(), "no FIN");
    assert_eq!(r.script_socket("c").error_raised_ns, Some(close + ow), "the RST lands one way later");
    assert_eq!(r.script_socket("c").error_raised, Some(Errno::ECONNRESET));
    let waits = r.ops("epoll_wait");
    assert_eq!(events(waits[0]), "POLLIN|POLLOUT|POLLRDHUP|POLLERR|POLLHUP", "EPOLLIN too: tcp_done sets SHUTDOWN_MASK");
    let sends = r.calls("send", "c");
    fails(sends[0], Errno::ECONNRESET);
    assert!(!sends[0].sigpipe);
    assert_eq!(events(waits[1]), "POLLIN|POLLOUT|POLLRDHUP|POLLHUP", "the error was consumed by send");
    ok(r.calls("recv", "c")[0], 0);
    fails(sends[1], Errno::EPIPE);
    assert!(!sends[1].sigpipe, "MSG_NOSIGNAL");
    let c = r.script_socket("c");
    assert_eq!(c.errors, [Errno::ECONNRESET, Errno::EPIPE]);
    assert_eq!(c.first_error_ns, Some(sends[0].t_ns));
}
