# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
# A passive open (mss 1460, no options), then 1000 bytes written while the tun device's qdisc
# drops every packet (pfifo limit 0), then the qdisc removed and the data ACKed: prints what
# the kernel sends and its tcp_info (ca_state, snd_cwnd, snd_ssthresh) at each step.
import os, sys, time, socket, struct
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from tunpeer import setup, pkt, drain, show, info, listener
setup('net.ipv4.tcp_slow_start_after_idle=0')
ls = listener()
ISN = 0
# < S 0:0(0) win 65535 <mss 1460>
pkt(ISN, 0, 0x02, 65535, bytes([2, 4, 0x05, 0xb4]))
synack = [p for p in drain(0.1) if p[2] & 0x12 == 0x12][0]
iss = synack[0]
print('synack', show(synack, iss, ISN))
time.sleep(0.1)
pkt(ISN + 1, iss + 1, 0x10, 65535)
c, _ = ls.accept()
print('established:', info(c))
os.system('tc qdisc replace dev tun0 root pfifo limit 0')
c.send(b'x' * 1000)
for p in drain(0.01): print('out', show(p, iss, ISN))
print('after write, qdisc dropping:', info(c))
time.sleep(0.1)
os.system('tc qdisc delete dev tun0 root')
t0 = time.time(); out = []
while not out and time.time() - t0 < 3:
    out = drain(0.002)
for p in out: print('out %.3f s after the qdisc went' % (time.time() - t0), show(p, iss, ISN))
print('qdisc gone, data sent by the probe timer:', info(c))
time.sleep(0.1)
pkt(ISN + 1, iss + 1001, 0x10, 65535)
for p in drain(0.01): print('out', show(p, iss, ISN))
print('after ACK of 1001:', info(c))
