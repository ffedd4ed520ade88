# Mini packetdrill: a scripted peer on a tun device against the real kernel (run inside a netns).
# Plays the segments of google/packetdrill's slow_start/slow-start-fq-ack-per-2pkt through an
# `fq` root qdisc (tcp_min_tso_segs 2, tcp_pacing_ss_ratio 200): 40000 bytes written, the peer
# ACKing every other segment at the script's times, and prints when each data segment reached
# the tun device, relative to the write, with tcp_info's snd_cwnd at the end. The first line is
# the qdisc tun0 ended up with: a kernel built without CONFIG_NET_SCH_FQ refuses `fq`, and the
# run is then the unpaced contrast.
import os, sys, time, socket, struct
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import tunpeer
from tunpeer import setup, pkt, show, listener

def read_until(deadline, t0, log):
    """The kernel's segments until `deadline` (monotonic), each with its arrival time."""
    while time.monotonic() < deadline:
        try:
            b = os.read(tunpeer.tun, 70000)
        except BlockingIOError:
            continue
        if len(b) < 40 or b[9] != 6: continue
        ihl = (b[0] & 15) * 4; t = b[ihl:]
        seq, ack = struct.unpack('!II', t[4:12]); off = (t[12] >> 4) * 4
        log.append((time.monotonic() - t0, (seq, ack, t[13], len(b) - ihl - off, b[1] & 3)))

setup('net.ipv4.tcp_min_tso_segs=2 net.ipv4.tcp_pacing_ss_ratio=200 net.ipv4.tcp_timestamps=1')
os.system('tc qdisc replace dev tun0 root fq 2>/dev/null')
print('qdisc:', os.popen('tc qdisc show dev tun0').read().strip())
ls = listener()
ISN = 0
# < S 0:0(0) win 32792 <mss 1460,sackOK,nop,nop,nop,wscale 7>
pkt(ISN, 0, 0x02, 32792, bytes([2, 4, 0x05, 0xb4, 4, 2, 1, 1, 1, 3, 3, 7]))
log = []
read_until(time.monotonic() + 0.1, time.monotonic(), log)
synack = [p for _, p in log if p[2] & 0x12 == 0x12][0]
iss = synack[0]
# < . 1:1(0) ack 1 win 500 (100 ms after the SYN-ACK: srtt 100 ms)
pkt(ISN + 1, iss + 1, 0x10, 500)
c, _ = ls.accept()
c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 200000)
t0 = time.monotonic()
c.send(b'x' * 40000)
log = []
# The script's ACKs, at its times after the write.
for at, acked in [(0.105, 2921), (0.108, 5841), (0.110, 8761), (0.119, 11681), (0.120, 14601)]:
    read_until(t0 + at, t0, log)
    pkt(ISN + 1, iss + acked, 0x10, 500)
read_until(t0 + 0.140, t0, log)
for t, p in log:
    if p[3]: print('%.4f %s' % (t, show(p, iss, ISN)))
b = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print('snd_cwnd', struct.unpack('I', b[80:84])[0])
