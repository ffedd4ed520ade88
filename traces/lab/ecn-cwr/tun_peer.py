# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
# Plays google/packetdrill's cwnd_moderation/cwnd-moderation-ecn-enter-cwr-no-moderation-700
# (tcp_ecn = 2, an ECN-setup SYN, 4000 bytes written, an ECE on the ACK of 1001), then a
# CE-marked data segment, and prints the TCP flags and IP ECN field of what the kernel sends
# and its tcp_info (ca_state, snd_cwnd, snd_ssthresh).
import os, sys, time, socket, struct
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from tunpeer import setup, pkt, drain, show, info, listener
setup('net.ipv4.tcp_ecn=2 net.ipv4.tcp_timestamps=1 net.ipv4.tcp_slow_start_after_idle=0')
ls = listener()
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
