# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
# Plays the segments of google/packetdrill's sack/sack-route-refresh-ip-tos (the kernel
# connects, writes 5840, 5840 and 14600 bytes, and gets the ACK of 13141 with SACK blocks
# 16061:17521 and 20441:26281), and prints the TCP flags of what the kernel sends. The tun
# device has no TSO, so the kernel's GSO cuts each skb into segments on the way out: an skb of
# several segments shows as a run of segments with PSH on its last one only.
import os, sys, time, socket, struct
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from tunpeer import setup, pkt, drain, show, info
# common/defaults.sh, as far as this script reads it.
setup('net.ipv4.tcp_rmem="4096 540000 15728640" net.ipv4.tcp_wmem="4096 262144 4194304" '
      'net.ipv4.tcp_timestamps=1 net.ipv4.tcp_sack=1 net.ipv4.tcp_dsack=1 net.ipv4.tcp_frto=2 '
      'net.ipv4.tcp_reordering=3 net.ipv4.tcp_slow_start_after_idle=0 '
      'net.ipv4.tcp_early_retrans=4 net.ipv4.tcp_recovery=1 net.ipv4.tcp_ecn=0 '
      'net.ipv4.tcp_pacing_ss_ratio=200 net.ipv4.tcp_pacing_ca_ratio=120')
os.system('tc qdisc add dev tun0 root pfifo')
PORT, ISN = 40000, 0
def peer(ack, opts=b''):
    pkt(ISN + 1, iss + ack, 0x10, 65535, opts, sport=8080, dport=PORT)
def out(wait, label):
    for p in drain(wait): print(label, show(p, iss, ISN))

c = socket.socket()
c.setsockopt(socket.IPPROTO_TCP, 13, b'cubic')
c.setsockopt(socket.SOL_IP, 10, 0)  # IP_MTU_DISCOVER, IP_PMTUDISC_DONT
c.bind(('192.168.0.1', PORT))
c.setblocking(False)
c.connect_ex(('192.0.2.1', 8080))
syn = [p for p in drain(0.01) if p[2] & 0x02][0]
iss = syn[0]
# +.01 < S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 2,nop,nop,sackOK>
pkt(ISN, iss + 1, 0x12, 65535, bytes([2, 4, 0x05, 0xb4, 1, 3, 3, 2, 1, 1, 4, 2]), sport=8080, dport=PORT)
out(0.01, 'handshake')
c.setblocking(True)
c.send(b'x' * 5840)
out(0.01, 'write 5840')
peer(5841)
time.sleep(0.01)
c.send(b'x' * 5840)
out(0.01, 'write 5840')
peer(11681)
time.sleep(0.01)
c.send(b'x' * 14600)
c.setsockopt(socket.SOL_IP, socket.IP_TOS, 4)
c.setsockopt(socket.SOL_IP, socket.IP_TOS, 0)
out(0.01, 'write 14600')
# +.01 < . 1:1(0) ack 13141 win 65535 <sack 16061:17521 20441:26281,nop,nop>
sack = struct.pack('!BBBB4I', 1, 1, 5, 18, iss + 16061, iss + 17521, iss + 20441, iss + 26281)
peer(13141, sack)
out(0.01, 'after SACK')
print('after SACK:', info(c))
peer(26281)
out(0.01, 'after ACK of 26281')
print('end:', info(c))
