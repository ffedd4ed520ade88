# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
# Plays google/packetdrill's cwnd_moderation/cwnd-moderation-ecn-enter-cwr-no-moderation-700
# (tcp_ecn = 2, an ECN-setup SYN, 4000 bytes written, an ECE on the ACK of 1001), then a
# CE-marked data segment, and prints the TCP flags and IP ECN field of what the kernel sends
# and its tcp_info (ca_state, snd_cwnd, snd_ssthresh).
import os, fcntl, struct, socket, time
TUNSETIFF = 0x400454ca; IFF_TUN = 0x0001; IFF_NO_PI = 0x1000
tun = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', b'tun0', IFF_TUN | IFF_NO_PI))
os.system('ip link set lo up; ip addr add 192.168.0.1/24 dev tun0; ip link set tun0 up; ip route add 192.0.2.0/24 dev tun0')
os.system('sysctl -q net.ipv4.tcp_ecn=2 net.ipv4.tcp_timestamps=1 net.ipv4.tcp_slow_start_after_idle=0')
LOC, REM = '192.168.0.1', '192.0.2.1'
ECN = {0: 'noecn', 1: 'ect1', 2: 'ect0', 3: 'ce'}
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
def pkt(seq, ack, flags, win, opts=b'', tos=0, data=b''):
    off = (20 + len(opts)) // 4
    tcp = struct.pack('!HHIIBBHHH', 40000, 8080, seq, ack, off << 4, flags, win, 0, 0) + opts + data
    ph = socket.inet_aton(REM) + socket.inet_aton(LOC) + struct.pack('!BBH', 0, 6, len(tcp))
    c = csum(ph + tcp); tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, tos, 20 + len(tcp), 0, 0x4000, 64, 6, 0, socket.inet_aton(REM), socket.inet_aton(LOC))
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
        seq, ack = struct.unpack('!II', t[4:12]); off = (t[12] >> 4) * 4
        out.append((seq, ack, t[13], len(b) - ihl - off, b[1] & 3))
    return out
FL = [(0x02, 'S'), (0x01, 'F'), (0x08, 'P'), (0x04, 'R'), (0x40, 'E'), (0x80, 'W'), (0x10, '.')]
def show(p, base_seq, base_ack):
    f = ''.join(c for b, c in FL if p[2] & b)
    return '[%s] %s %d:%d(%d) ack %d' % (ECN[p[4]], f, (p[0] - base_seq) & 0xffffffff, (p[0] - base_seq + p[3]) & 0xffffffff, p[3], (p[1] - base_ack) & 0xffffffff)
def info(c):
    b = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    ca_state = b[1]
    snd_ssthresh, snd_cwnd = struct.unpack('II', b[76:84])
    return 'ca_state %d snd_cwnd %d snd_ssthresh %d' % (ca_state, snd_cwnd, snd_ssthresh)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); ls.setsockopt(socket.IPPROTO_TCP, 13, b'cubic'); ls.bind((LOC, 8080)); ls.listen(1)
ISN = 0
# < SEW 0:0(0) win 32792 <mss 1000,nop,nop,sackOK,nop,wscale 7>
pkt(ISN, 0, 0xc2, 32792, bytes([2, 4, 0x03, 0xe8, 1, 1, 4, 2, 1, 3, 3, 7]))
synack = [p for p in drain(0.1) if p[2] & 0x12 == 0x12][0]
iss = synack[0]
print('synack', show(synack, iss, ISN))
# < [ect1] . 1:1(0) ack 1 win 320
pkt(ISN + 1, iss + 1, 0x10, 320, tos=1)
c, _ = ls.accept()
c.send(b'x' * 4000)
for p in drain(0.005): print('out', show(p, iss, ISN))
print('after write:', info(c))
time.sleep(0.095)
# < [noecn] E. 1:1(0) ack 1001 win 320
pkt(ISN + 1, iss + 1001, 0x50, 320)
for p in drain(0.005): print('out', show(p, iss, ISN))
print('after ECE ack of 1001:', info(c))
# Data back from the peer with CE: the kernel echoes ECE on its ACK.
pkt(ISN + 1, iss + 1001, 0x18, 320, tos=3, data=b'y' * 100)
for p in drain(0.05): print('out', show(p, iss, ISN))
# More data written: the first new segment carries CWR.
c.send(b'z' * 1000)
pkt(ISN + 101, iss + 4001, 0x10, 320)
for p in drain(0.05): print('out', show(p, iss, ISN))
print('end:', info(c))
