# Mini packetdrill: what the scripted peers under traces/lab share. Imported by each
# <dir>/tun_peer.py, which runs inside a fresh network namespace (root): a tun device
# tun0 (192.168.0.1, the kernel under test) routes 192.0.2.0/24 to the script, which writes
# the peer's segments into it and reads what the kernel sends.
import os, fcntl, struct, socket, time
TUNSETIFF = 0x400454ca; IFF_TUN = 0x0001; IFF_NO_PI = 0x1000
LOC, REM = '192.168.0.1', '192.0.2.1'
ECN = {0: 'noecn', 1: 'ect1', 2: 'ect0', 3: 'ce'}
FL = [(0x02, 'S'), (0x01, 'F'), (0x08, 'P'), (0x04, 'R'), (0x40, 'E'), (0x80, 'W'), (0x10, '.')]
tun = None

def setup(sysctls):
    """Creates tun0 and its route, then applies `sysctls` (a `sysctl -q` argument string)."""
    global tun
    tun = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', b'tun0', IFF_TUN | IFF_NO_PI))
    os.system('ip link set lo up; ip addr add %s/24 dev tun0; ip link set tun0 up; ip route add 192.0.2.0/24 dev tun0' % LOC)
    os.system('sysctl -q ' + sysctls)

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff

def pkt(seq, ack, flags, win, opts=b'', tos=0, data=b'', sport=40000, dport=8080):
    """Sends the peer's segment 192.0.2.1:sport → 192.168.0.1:dport (`tos`: the IP ECN field)."""
    off = (20 + len(opts)) // 4
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, off << 4, flags, win, 0, 0) + opts + data
    ph = socket.inet_aton(REM) + socket.inet_aton(LOC) + struct.pack('!BBH', 0, 6, len(tcp))
    c = csum(ph + tcp); tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, tos, 20 + len(tcp), 0, 0x4000, 64, 6, 0, socket.inet_aton(REM), socket.inet_aton(LOC))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    os.write(tun, ip + tcp)

def drain(wait=0.02):
    """The kernel's TCP segments for `wait` seconds: (seq, ack, flags, length, ECN field)."""
    out = []; end = time.time() + wait
    while time.time() < end:
        try:
            b = os.read(tun, 70000)
        except BlockingIOError:
            time.sleep(0.001); continue
        if len(b) < 40 or b[9] != 6: continue
        ihl = (b[0] & 15) * 4; t = b[ihl:]
        seq, ack = struct.unpack('!II', t[4:12]); off = (t[12] >> 4) * 4
        out.append((seq, ack, t[13], len(b) - ihl - off, b[1] & 3))
    return out

def show(p, base_seq, base_ack):
    """A drained segment in packetdrill's notation, relative to the two ISNs."""
    f = ''.join(c for b, c in FL if p[2] & b)
    return '[%s] %s %d:%d(%d) ack %d' % (ECN[p[4]], f, (p[0] - base_seq) & 0xffffffff, (p[0] - base_seq + p[3]) & 0xffffffff, p[3], (p[1] - base_ack) & 0xffffffff)

def info(c):
    """tcp_info's ca_state, snd_cwnd and snd_ssthresh of socket `c`."""
    b = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    snd_ssthresh, snd_cwnd = struct.unpack('II', b[76:84])
    return 'ca_state %d snd_cwnd %d snd_ssthresh %d' % (b[1], snd_cwnd, snd_ssthresh)

def listener():
    """A CUBIC listener on 192.168.0.1:8080."""
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_TCP, 13, b'cubic'); ls.bind((LOC, 8080)); ls.listen(1)
    return ls
