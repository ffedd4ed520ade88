#!/usr/bin/env python3
"""Plain-socket programs whose traces show (some of) their socket settings, as a user's own
programs would make them (no tcpsim harness). Each prints a line when the test may go on.

    settings.py keepalive-server HOST PORT  listens, prints "ready", reads one connection to
                                            EOF, closes
    settings.py keepalive-client HOST PORT  SO_KEEPALIVE with TCP_KEEPIDLE 1 s, TCP_KEEPINTVL
                                            1 s, TCP_KEEPCNT 3 (set before connect); idles
                                            3.5 s (probes, answered), closes
    settings.py timeout-server HOST PORT    listens, prints "ready", accepts, 4 s later writes
                                            10 bytes (to a client that is gone), then 1 s on
    settings.py timeout-client HOST PORT    TCP_USER_TIMEOUT 3000 ms; connects, prints
                                            "connected", waits for a line on stdin (the test
                                            drops its packets meanwhile), writes 100 bytes and
                                            waits for the error (ETIMEDOUT)
    settings.py backlog-server HOST PORT    listen(backlog 1), prints "ready", never accepts
    settings.py backlog-client HOST PORT    four non-blocking connects 50 ms apart, 2.5 s
                                            later closes them all
    settings.py rcvbuf-server HOST PORT     SO_RCVBUF 4096 on the listener, prints "ready",
                                            accepts, never reads
    settings.py rcvbuf-client HOST PORT     connects, one non-blocking send of 20000 bytes,
                                            prints "sent N", then idles
    settings.py reconnect-server HOST PORT  listens, prints "ready"; twice: accepts, reads 5
                                            bytes, closes first (its side of the 4-tuple
                                            goes to TIME_WAIT)
    settings.py reconnect-client HOST PORT  connects, writes 5 bytes, reads to EOF, closes;
                                            200 ms later a new socket with SO_REUSEADDR
                                            bound to the same port connects again (the SYN
                                            reaches the server's TIME_WAIT socket), the same
                                            exchange
"""
import socket
import sys
import time


def listener(host, port, backlog=8, rcvbuf=None):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ls.bind((host, port))
    ls.listen(backlog)
    print("ready", flush=True)
    return ls


def keepalive_server(host, port):
    conn, _ = listener(host, port).accept()
    while conn.recv(65536):
        pass
    conn.close()


def keepalive_client(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    s.connect((host, port))
    time.sleep(3.5)
    s.close()


def timeout_server(host, port):
    conn, _ = listener(host, port).accept()
    time.sleep(4)
    conn.send(b"z" * 10)
    time.sleep(1)


def timeout_client(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 3000)
    s.connect((host, port))
    print("connected", flush=True)
    sys.stdin.readline()
    s.send(b"y" * 100)
    try:
        s.recv(100)
    except OSError as e:
        print(f"error {e.errno}", flush=True)


def backlog_server(host, port):
    ls = listener(host, port, backlog=1)
    time.sleep(60)
    ls.close()


def backlog_client(host, port):
    socks = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
        time.sleep(0.05)
    time.sleep(2.5)
    for s in socks:
        s.close()


def rcvbuf_server(host, port):
    conn, _ = listener(host, port, rcvbuf=4096).accept()
    time.sleep(60)


def rcvbuf_client(host, port):
    s = socket.create_connection((host, port))
    s.setblocking(False)
    n = s.send(b"r" * 20000)
    print(f"sent {n}", flush=True)
    time.sleep(60)


def reconnect_server(host, port):
    ls = listener(host, port)
    for _ in range(2):
        conn, _ = ls.accept()
        conn.recv(5)
        conn.close()


def reconnect_client(host, port):
    local = 0
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", local))
        s.connect((host, port))
        local = s.getsockname()[1]
        s.send(b"hello")
        while s.recv(100):
            pass
        s.close()
        time.sleep(0.2)


if __name__ == "__main__":
    role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    programs = {
        "keepalive-server": keepalive_server,
        "keepalive-client": keepalive_client,
        "timeout-server": timeout_server,
        "timeout-client": timeout_client,
        "backlog-server": backlog_server,
        "backlog-client": backlog_client,
        "rcvbuf-server": rcvbuf_server,
        "rcvbuf-client": rcvbuf_client,
        "reconnect-server": reconnect_server,
        "reconnect-client": reconnect_client,
    }
    programs[role](host, port)
