# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
import os, fcntl, struct, socket, select, time, sys
TUNSETIFF = 0x400454ca; IFF_TUN = 0x0001; IFF_NO_PI = 0x1000
tun = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', b'tun0', IFF_TUN | IFF_NO_PI))
os.system('ip link set lo up; ip addr add 192.168.0.1/24 dev tun0; ip link set tun0 up; ip route add 192.0.2.0/24 dev tun0')
os.system('sysctl -q net.ipv4.tcp_wmem="4096 50000 4194304"; sysctl -q net.ipv4.tcp_timestamps=1 net.ipv4.tcp_congestion_control=cubic net.ipv4.tcp_slow_start_after_idle=0; sysctl net.ipv4.tcp_congestion_control')
LOC, REM = '192.168.0.1', '192.0.2.1'
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
def pkt(seq, ack, flags, win, opts=b''):
    sport, dport = 40000, 8080
    off = (20 + len(opts)) // 4
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, off << 4, flags, win, 0, 0) + opts
    ph = socket.inet_aton(REM) + socket.inet_aton(LOC) + struct.pack('!BBH', 0, 6, len(tcp))
    c = csum(ph + tcp); tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, socket.inet_aton(REM), socket.inet_aton(LOC))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    os.write(tun, ip + tcp)
def drain(wait=0.02):
    out = []; end = time.time() + wait
    while time.time() < end:
        try:
            b = os.read(tun, 70000)
        except BlockingIOError:
            time.sleep(0.001); continue
        if len(b) < 40 or b[9] != 6: continue
        ihl = (b[0] & 15) * 4; t = b[ihl:]
        seq, ack = struct.unpack('!II', t[4:12]); off = (t[12] >> 4) * 4; fl = t[13]
        out.append((seq, ack, fl, len(b) - ihl - off))
    return out
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ls.setsockopt(socket.IPPROTO_TCP, 13, b'cubic'); ls.bind((LOC, 8080)); ls.listen(1)
ISN = 1000
pkt(ISN, 0, 0x02, 32792, bytes([2,4,0x03,0xe8, 4,2, 1,1, 1,3,3,7]))  # mss 1000,sackOK,nop,nop,nop,wscale 7
synack = [p for p in drain(0.1) if p[2] & 0x12 == 0x12][0]
iss = synack[0]
rel = lambda s: (s - iss) & 0xffffffff
pkt(ISN + 1, iss + 1, 0x10, 257)
c, _ = ls.accept(); c.setblocking(False); print('cc', c.getsockopt(socket.IPPROTO_TCP, 13, 16))
TCP_NOTSENT_LOWAT = 25
c.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, struct.pack('I', int(sys.argv[1]) if len(sys.argv) > 1 else 0xffffffff))
import select as S
ep = S.epoll(); ep.register(c.fileno(), S.EPOLLOUT | S.EPOLLIN | S.EPOLLET)
def ew(): return ep.poll(0)
def sndbuf(): return c.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
def segs(l): 
    if not l: return '-'
    return '%d:%d (%d pkts) psh at %s' % (rel(l[0][0]), rel(l[-1][0]) + l[-1][3], len(l), [rel(p[0]) + p[3] for p in l if p[2] & 8])
print('epoll initial', ew(), ew(), 'sndbuf', sndbuf())
def w(n):
    try: return c.send(b'x' * n)
    except BlockingIOError: return 'EAGAIN'
print('write 59000 ->', w(59000), 'sndbuf', sndbuf())
print(' epoll', ew()); print(' out', segs(drain()))
for a in [10001, 26001]:
    pkt(ISN + 1, iss + a, 0x10, 257)
    print('ack', a, 'out', segs(drain()), 'epoll', ew(), ew(), 'sndbuf', sndbuf())
print('write 180000 ->', w(180000), 'sndbuf', sndbuf())
for a in [42001, 74001]:
    pkt(ISN + 1, iss + a, 0x10, 257)
    print('ack', a, 'out', segs(drain()), 'epoll', ew(), ew(), 'sndbuf', sndbuf())
print('write 180000 ->', w(180000), 'sndbuf', sndbuf())
pkt(ISN + 1, iss + 106001, 0x10, 257)
print('ack 106001 out', segs(drain()), 'epoll', ew(), 'sndbuf', sndbuf())
