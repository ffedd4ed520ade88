//! The TCP Fast Open client, through packetdrill scripts written here (not packetdrill's):
//! the remote end's SYN-ACK is the script's, so it can hand out a cookie. Each expectation
//! is derived from the kernel function named beside it.

use std::path::PathBuf;
use tcpsim::packetdrill::{run_file, Outcome};

fn run(name: &str, text: &str) -> Outcome {
    let dir = std::env::temp_dir().join(format!("tcpsim-tfo-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p: PathBuf = dir.join(format!("{name}.pkt"));
    std::fs::write(&p, text).unwrap();
    run_file(&p)
}

/// No timestamps (the option list stays short), packetdrill's receive buffer (wscale 8).
const SETUP: &str = "`sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_rmem=\"4096 540000 15728640\"`\n";

/// A cookie request on socket 3 whose SYN-ACK brings cookie 0102030405060708, then a
/// graceful close: the host's cache holds the cookie for the remote address.
const WARM_CACHE: &str = "\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO,nop,nop>
+.01 < S. 123:123(0) ack 1 win 14600 <mss 1460,nop,nop,sackOK,nop,wscale 6,FO 0102030405060708,nop,nop>
+0 > . 1:1(0) ack 1
+0 close(3) = 0
+0 > F. 1:1(0) ack 1
+.01 < F. 1:1(0) ack 2 win 92
+0 > . 2:2(0) ack 2
";

/// A deferred connect on socket 4, then a 2000-byte write 100 ms later.
const DEFERRED_WRITE: &str = "\
+.01 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 setsockopt(4, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(4, ..., ...) = 0
+.1 write(4, ..., 2000) = 1420
+0 > S 0:1420(1420) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO 0102030405060708,nop,nop>
";

fn assert_pass(name: &str, text: &str) {
    let o = run(name, text);
    assert_eq!(o, Outcome::Pass, "{name}:\n{text}");
}

#[test]
fn without_the_client_bit_msg_fastopen_and_tcp_fastopen_connect_are_eopnotsupp() {
    // tcp_sendmsg_fastopen and do_tcp_setsockopt(TCP_FASTOPEN_CONNECT) test
    // `sysctl_tcp_fastopen & TFO_CLIENT_ENABLE` first. Nothing is sent: the connect that
    // follows sends the first SYN, a plain one (no FO: no fastopen_req).
    let script = "`sysctl -q net.ipv4.tcp_fastopen=0 net.ipv4.tcp_timestamps=0 net.ipv4.tcp_rmem=\"4096 540000 15728640\"`
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 sendto(3, ..., 100, MSG_FASTOPEN, ..., ...) = -1 EOPNOTSUPP (Operation not supported)
+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = -1 EOPNOTSUPP (Operation not supported)
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8>
";
    assert_pass("eopnotsupp", script);
}

#[test]
fn a_deferred_connect_returns_0_and_the_first_write_sends_the_syn_with_data() {
    // tcp_fastopen_defer_connect: a cached cookie sets DEFER_CONNECT and tcp_v4_connect
    // returns 0 before tcp_connect; the write 100 ms later sends the SYN (the script checks
    // its time) with the cookie and min(2000, MSS 1460 − MAX_TCP_OPTION_SPACE 40) = 1420
    // bytes (tcp_send_syn_data), and returns them (tcp_sendmsg_locked: EINPROGRESS with
    // copied_syn > 0 goes to `out`).
    let script = format!(
        "{SETUP}{WARM_CACHE}{DEFERRED_WRITE}\
+.01 < S. 999:999(0) ack 1421 win 14600 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > . 1421:1421(0) ack 1
+0 write(4, ..., 100) = 100
+0 > P. 1421:1521(100) ack 1
"
    );
    assert_pass("deferred", &script);
}

#[test]
fn syn_data_the_syn_ack_does_not_acknowledge_is_sent_again_at_once() {
    // tcp_rcv_fastopen_synack: the SYN-data skb still heads the retransmission queue, so it
    // is marked lost and tcp_non_congestion_loss_retransmit sends it, with the PSH the
    // skb was given (TCPHDR_ACK | TCPHDR_PSH); no separate ACK (it returns true).
    let script = format!(
        "{SETUP}{WARM_CACHE}{DEFERRED_WRITE}\
+.01 < S. 999:999(0) ack 1 win 14600 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > P. 1:1421(1420) ack 1
+.01 < . 1:1(0) ack 1421 win 257
"
    );
    assert_pass("data-not-acked", &script);
}

#[test]
fn a_write_from_null_after_a_deferred_connect_falls_back_to_a_cookie_request() {
    // tcp_send_syn_data: copy_page_from_iter takes nothing from NULL, so `goto fallback`:
    // a plain SYN whose cookie is cut to a request (`fo->cookie.len = 0`); the caller gets
    // __inet_stream_connect's EINPROGRESS, not EFAULT (copied_syn is 0).
    let script = format!(
        "{SETUP}{WARM_CACHE}\
+.01 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 setsockopt(4, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(4, ..., ...) = 0
+0 write(4, NULL, 100) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO,nop,nop>
"
    );
    assert_pass("null-fallback", &script);
}

#[test]
fn msg_fastopen_while_a_cookie_request_is_allocated_is_ealready() {
    // A TCP_FASTOPEN_CONNECT connect without a cookie keeps tp->fastopen_req (it carried the
    // cookie request); tcp_sendmsg_fastopen answers a second Fast Open EALREADY.
    let script = format!(
        "{SETUP}0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO,nop,nop>
+0 sendto(3, ..., 100, MSG_FASTOPEN, ..., ...) = -1 EALREADY (Operation already in progress)
"
    );
    assert_pass("ealready", &script);
}

#[test]
fn a_wrong_expectation_fails_so_the_passes_above_mean_something() {
    // The same deferred write, but the script expects the SYN at connect time.
    let script = format!(
        "{SETUP}{WARM_CACHE}\
+.01 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 setsockopt(4, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(4, ..., ...) = 0
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO,nop,nop>
+.1 write(4, ..., 2000) = 1420
"
    );
    assert!(matches!(run("wrong", &script), Outcome::Fail { .. }));
}

#[test]
fn a_blocking_writer_waiting_with_data_left_has_the_syn_ack_acked_by_its_data() {
    // No cookie: tcp_send_syn_data falls back to a cookie request and the writer sleeps in
    // inet_wait_for_connect with writebias 1 (its request still carries data), so
    // tcp_rcv_synsent_state_process sees sk_write_pending and saves the ACK ("Save one
    // ACK"): the 1000 bytes written once the socket is ESTABLISHED carry it. The call
    // returns when they are queued, 10 ms in.
    let script = format!(
        "{SETUP}0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.010 sendto(3, ..., 1000, MSG_FASTOPEN, ..., ...) = 1000
+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO,nop,nop>
+.01 < S. 123:123(0) ack 1 win 5840 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > P. 1:1001(1000) ack 1
"
    );
    assert_pass("blocking-no-cookie", &script);
}

#[test]
fn a_blocking_writer_whose_data_all_went_in_the_syn_leaves_the_ack_immediate() {
    // tcp_send_syn_data: `if (space == fo->size) fo->data = NULL`, so inet_wait_for_connect
    // adds no writebias and the SYN-ACK is acknowledged at once (tcp_send_ack).
    let script = format!(
        "{SETUP}{WARM_CACHE}\
+.01 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 setsockopt(4, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(4, ..., ...) = 0
+0...0.010 write(4, ..., 1000) = 1000
+0 > S 0:1000(1000) <mss 1460,nop,nop,sackOK,nop,wscale 8,FO 0102030405060708,nop,nop>
+.01 < S. 999:999(0) ack 1001 win 14600 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > . 1001:1001(0) ack 1
"
    );
    assert_pass("blocking-all-in-syn", &script);
}

#[test]
fn a_deferred_socket_polls_writable_and_a_second_connect_is_eisconn() {
    // tcp_poll: `else if (state == TCP_SYN_SENT && inet_test_bit(DEFER_CONNECT, sk))` gives
    // EPOLLOUT | EPOLLWRNORM alone; __inet_stream_connect in SS_CONNECTING with
    // DEFER_CONNECT answers a connect() (not a sendmsg) EISCONN.
    let script = format!(
        "{SETUP}{WARM_CACHE}\
+.01 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 setsockopt(4, SOL_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(4, ..., ...) = 0
+0 poll([{{fd=4, events=POLLIN|POLLOUT|POLLERR, revents=POLLOUT}}], 1, 0) = 1
+0 connect(4, ..., ...) = -1 EISCONN (Transport endpoint is already connected)
"
    );
    assert_pass("deferred-poll", &script);
}

#[test]
fn tcpi_options_has_syn_data_only_when_the_syn_ack_acknowledged_it() {
    // tcp_get_info: TCPI_OPT_SYN_DATA from tp->syn_data_acked, which
    // tcp_rcv_fastopen_synack sets from tp->syn_data only when no SYN data is left unacked;
    // no timestamps here, SACK and window scaling negotiated: 2 | 4 | 32.
    let acked = format!(
        "{SETUP}{WARM_CACHE}{DEFERRED_WRITE}\
+.01 < S. 999:999(0) ack 1421 win 14600 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > . 1421:1421(0) ack 1
+0 %{{ assert tcpi_options == TCPI_OPT_SACK | TCPI_OPT_WSCALE | TCPI_OPT_SYN_DATA, tcpi_options }}%
"
    );
    assert_pass("syn-data-acked", &acked);
    let unacked = format!(
        "{SETUP}{WARM_CACHE}{DEFERRED_WRITE}\
+.01 < S. 999:999(0) ack 1 win 14600 <mss 1460,nop,nop,sackOK,nop,wscale 6>
+0 > P. 1:1421(1420) ack 1
+0 %{{ assert (tcpi_options & TCPI_OPT_SYN_DATA) == 0, tcpi_options }}%
"
    );
    assert_pass("syn-data-unacked", &unacked);
}
