# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
import os, sys, time, socket, struct
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from tunpeer import setup, pkt, drain, listener
setup('net.ipv4.tcp_wmem="4096 50000 4194304" net.ipv4.tcp_timestamps=1 net.ipv4.tcp_congestion_control=cubic net.ipv4.tcp_slow_start_after_idle=0')
ls = listener()
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
