#!/usr/bin/env python3
"""A plain-socket echo exchange, as a user's own program would make it (no tcpsim harness).

    echo.py server HOST PORT   listens (backlog 1), prints "ready", echoes one connection
                               until EOF, then closes
    echo.py client HOST PORT   connects, writes 3 x 100 bytes (each echoed back before the
                               next), half-closes (shutdown SHUT_WR), reads to EOF, closes
"""
import socket
import sys


def server(host, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    print("ready", flush=True)
    conn, _ = ls.accept()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()
    ls.close()


def client(host, port):
    s = socket.create_connection((host, port))
    for i in range(3):
        s.sendall(bytes([ord("a") + i]) * 100)
        got = b""
        while len(got) < 100:
            data = s.recv(100 - len(got))
            if not data:
                sys.exit("echo.py: the server closed early")
            got += data
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()


if __name__ == "__main__":
    role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"server": server, "client": client}[role](host, port)
