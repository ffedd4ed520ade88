# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
# The kernel is the Fast Open client (TCP_FASTOPEN_CONNECT, no timestamps), the script its
# server at 192.0.2.1:8080: a cookie request answered with cookie 0102030405060708, then a
# deferred connect and a 2000-byte write, then a deferred connect and a write from NULL.
# Prints each call's result and each segment the kernel sends, with its options' kinds.
import os, sys, time, socket, struct, errno, ctypes
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import tunpeer
from tunpeer import setup, pkt, REM
setup('net.ipv4.tcp_fastopen=1 net.ipv4.tcp_timestamps=0')
TCP_FASTOPEN_CONNECT = 30
libc = ctypes.CDLL(None, use_errno=True)

def segments(wait=0.05):
    """The kernel's segments: (sport, seq, flags, payload length, option kinds, FO cookie)."""
    out = []; end = time.time() + wait
    while time.time() < end:
        try:
            b = os.read(tunpeer.tun, 70000)
        except BlockingIOError:
            time.sleep(0.001); continue
        if len(b) < 40 or b[9] != 6: continue
        ihl = (b[0] & 15) * 4; t = b[ihl:]
        sport, = struct.unpack('!H', t[0:2]); seq, = struct.unpack('!I', t[4:8]); off = (t[12] >> 4) * 4
        kinds, cookie, o = [], None, t[20:off]
        while o:
            k = o[0]
            if k in (0, 1): kinds.append(k); o = o[1:]; continue
            n = o[1]; kinds.append(k)
            if k == 34: cookie = o[2:n].hex()
            o = o[n:]
        out.append((sport, seq, t[13], len(b) - ihl - off, kinds, cookie))
    return out

def client():
    c = socket.socket(); c.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1); c.setblocking(False)
    return c

def connect(c):
    try:
        c.connect((REM, 8080)); return 0
    except BlockingIOError:
        return 'EINPROGRESS'

# Cookie request: the SYN carries an empty FO option; the SYN-ACK gives the cookie.
c = client()
print('connect ->', connect(c))
syn = segments()[0]; print('out', syn)
fo = bytes([34, 10]) + bytes.fromhex('0102030405060708')
pkt(5000, syn[1] + 1, 0x12, 14600, bytes([2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 6]) + fo + bytes([1, 1]), sport=8080, dport=syn[0])
print('out', segments())
c.close(); print('close out', segments())

# A deferred connect: 0 and nothing sent; the write sends the SYN with cookie and data.
c = client()
print('connect ->', connect(c), 'out', segments())
time.sleep(0.1)
try:
    print('write 2000 ->', c.send(b'x' * 2000))
except OSError as e:
    print('write 2000 ->', errno.errorcode[e.errno])
print('out', segments())
c.close()

# A write from NULL after a deferred connect.
c = client()
print('connect ->', connect(c))
n = libc.send(c.fileno(), None, 100, 0)
print('write NULL 100 ->', n, errno.errorcode.get(ctypes.get_errno(), '-') if n < 0 else '')
print('out', segments())
