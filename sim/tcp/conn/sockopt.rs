//! Per-socket options the TCP model reads, with Linux's range checks
//! (net/core/sock.c `sk_setsockopt`, net/ipv4/tcp.c `do_tcp_setsockopt`).

use crate::errno::Errno;
use crate::tcp::cc::Algorithm;
use crate::tcp::uapi::{OptValue, SockOpt};
use crate::tcp::profile::KernelProfile;

/// `MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL` (include/net/tcp.h).
pub const MAX_TCP_KEEPIDLE: i64 = 32767;
pub const MAX_TCP_KEEPINTVL: i64 = 32767;
/// `MAX_TCP_KEEPCNT`, `MAX_TCP_SYNCNT`.
pub const MAX_TCP_KEEPCNT: i64 = 127;
pub const MAX_TCP_SYNCNT: i64 = 127;
/// `TCP_SKB_MIN_TRUESIZE` = 2048 + `SKB_DATA_ALIGN(sizeof(struct sk_buff))` (256 on x86-64);
/// `SOCK_MIN_SNDBUF` is twice it, `SOCK_MIN_RCVBUF` once (include/net/sock.h).
pub const SOCK_MIN_SNDBUF: u32 = 2 * (2048 + 256);
pub const SOCK_MIN_RCVBUF: u32 = 2048 + 256;
/// `TCP_MIN_MSS` and `MAX_TCP_WINDOW` (include/net/tcp.h): the range of TCP_MAXSEG.
const TCP_MIN_MSS: i64 = 88;
const MAX_TCP_WINDOW: i64 = 32767;
/// `TCP_MSS_DEFAULT`: what getsockopt(TCP_MAXSEG) answers before a connection has an MSS
/// (`tcp_init_sock` sets `mss_cache` to it).
const TCP_MSS_DEFAULT: u16 = 536;

/// include/net/tcp.h `tcp_mss_clamp`: `mss`, lowered to TCP_MAXSEG's `user_mss` if that is
/// set and smaller.
pub fn tcp_mss_clamp(user_mss: u16, mss: u16) -> u16 {
    if user_mss != 0 && user_mss < mss { user_mss } else { mss }
}

/// Socket options as set by the application (`None`: the sysctl applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SockOpts {
    pub keepalive: bool,
    pub keepidle_s: Option<u32>,
    pub keepintvl_s: Option<u32>,
    /// A u8, as Linux keeps it (`tp->keepalive_probes`).
    pub keepcnt: Option<u8>,
    /// TCP_USER_TIMEOUT in ms; 0 is "unset".
    pub user_timeout_ms: u32,
    /// A u8, as Linux keeps it (`icsk_syn_retries`).
    pub syncnt: Option<u8>,
    /// SO_LINGER on, with `l_linger` seconds.
    pub linger: Option<u32>,
    /// SO_SNDBUF as set (before doubling; setting it locks the buffer size).
    pub sndbuf: Option<u32>,
    pub rcvbuf: Option<u32>,
    /// SO_RCVLOWAT (0 reads as 1).
    pub rcvlowat: u32,
    pub nodelay: bool,
    /// TCP_CORK (`TCP_NAGLE_CORK` in `tp->nonagle`).
    pub cork: bool,
    pub notsent_lowat: Option<u32>,
    pub rto_max_ms: Option<u32>,
    /// TCP_CONGESTION (`None`: `net.ipv4.tcp_congestion_control`).
    pub congestion: Option<Algorithm>,
    /// TCP_INQ (`tp->recvmsg_inq`).
    pub recvmsg_inq: bool,
    /// TCP_MAXSEG (`tp->rx_opt.user_mss`); 0 is unset.
    pub user_mss: u16,
    /// SO_ZEROCOPY (`SOCK_ZEROCOPY`).
    pub zerocopy: bool,
    /// IP_TOS (`inet->tos`). Stored and read back: the model's segments carry no IP header
    /// of their own (the pcap writer's TOS byte is 0).
    pub tos: u8,
    /// IP_MTU_DISCOVER (`inet->pmtudisc`; `None`: IP_PMTUDISC_WANT, as
    /// `net.ipv4.ip_no_pmtu_disc` = 0 sets it in `inet_create`). Stored and read back: the
    /// model has no ICMP path-MTU updates for it to govern, and the pcap writer sets DF.
    pub pmtudisc: Option<u8>,
    /// TCP_FASTOPEN_CONNECT (`tp->fastopen_connect`).
    pub fastopen_connect: bool,
    /// TCP_FASTOPEN: the Fast Open queue length asked for (`fastopenq.max_qlen` before the
    /// somaxconn cap); 0 unset.
    pub fastopen_qlen: u32,
}

/// `IP_PMTUDISC_WANT` and `IP_PMTUDISC_OMIT` (include/uapi/linux/in.h): a new socket's mode
/// and the last valid one.
const IP_PMTUDISC_WANT: u8 = 1;
const IP_PMTUDISC_OMIT: i64 = 5;
/// `INET_ECN_MASK`: the TOS byte's ECN bits.
const INET_ECN_MASK: u8 = 3;

fn int(v: &OptValue) -> Result<i64, Errno> {
    match v {
        OptValue::Int(i) => Ok(*i),
        OptValue::Pair(_) | OptValue::Name(_) => Err(Errno::EINVAL),
    }
}

fn ranged(v: &OptValue, lo: i64, hi: i64) -> Result<u32, Errno> {
    let i = int(v)?;
    if i < lo || i > hi {
        return Err(Errno::EINVAL);
    }
    Ok(i as u32)
}

impl SockOpts {
    /// setsockopt(): validates as Linux does and records the value. Options that are not
    /// settable (SO_ERROR, TCP_INFO) give ENOPROTOOPT.
    pub fn set(&mut self, opt: SockOpt, value: &OptValue) -> Result<(), Errno> {
        match opt {
            SockOpt::SO_KEEPALIVE => self.keepalive = int(value)? != 0,
            SockOpt::TCP_KEEPIDLE => self.keepidle_s = Some(ranged(value, 1, MAX_TCP_KEEPIDLE)?),
            SockOpt::TCP_KEEPINTVL => self.keepintvl_s = Some(ranged(value, 1, MAX_TCP_KEEPINTVL)?),
            SockOpt::TCP_KEEPCNT => self.keepcnt = Some(ranged(value, 1, MAX_TCP_KEEPCNT)? as u8),
            SockOpt::TCP_SYNCNT => self.syncnt = Some(ranged(value, 1, MAX_TCP_SYNCNT)? as u8),
            SockOpt::TCP_USER_TIMEOUT => self.user_timeout_ms = ranged(value, 0, i32::MAX as i64)?,
            SockOpt::TCP_NODELAY => self.nodelay = int(value)? != 0,
            SockOpt::TCP_CORK => self.cork = int(value)? != 0,
            // Any int; stored as the u32 the kernel keeps.
            SockOpt::TCP_NOTSENT_LOWAT => self.notsent_lowat = Some(int(value)? as u32),
            // do_tcp_setsockopt: 0 or 1, anything else EINVAL.
            SockOpt::TCP_INQ => self.recvmsg_inq = ranged(value, 0, 1)? == 1,
            // The sysctl and state checks are the host's (`Host::sys_setsockopt`).
            SockOpt::TCP_FASTOPEN_CONNECT => self.fastopen_connect = ranged(value, 0, 1)? == 1,
            // The state check and the key are the host's (`Host::sys_setsockopt`).
            SockOpt::TCP_FASTOPEN => self.fastopen_qlen = ranged(value, 0, i64::from(i32::MAX))? as u32,
            // do_tcp_setsockopt: 0 (unset) or TCP_MIN_MSS ..= MAX_TCP_WINDOW.
            SockOpt::TCP_MAXSEG => match int(value)? {
                0 => self.user_mss = 0,
                _ => self.user_mss = ranged(value, TCP_MIN_MSS, MAX_TCP_WINDOW)? as u16,
            },
            // 6.15: 1 s ..= 120 s (TCP_RTO_MAX_SEC).
            SockOpt::TCP_RTO_MAX_MS => self.rto_max_ms = Some(ranged(value, 1000, 120_000)?),
            SockOpt::SO_RCVLOWAT => {
                let i = int(value)?;
                self.rcvlowat = if i < 0 { i32::MAX as u32 } else { i as u32 };
            }
            // sk_setsockopt: the int is read as u32 and clamped to the max before doubling,
            // so a negative value means "as large as allowed".
            SockOpt::SO_SNDBUF => self.sndbuf = Some(int(value)? as u32),
            SockOpt::SO_RCVBUF => self.rcvbuf = Some(int(value)? as u32),
            SockOpt::SO_LINGER => match value {
                OptValue::Pair([onoff, secs]) => {
                    self.linger = if *onoff != 0 { Some((*secs).clamp(0, u32::MAX as i64) as u32) } else { None };
                }
                OptValue::Int(_) | OptValue::Name(_) => return Err(Errno::EINVAL),
            },
            // tcp_set_congestion_control: an unknown name is ENOENT.
            SockOpt::TCP_CONGESTION => match value {
                OptValue::Name(n) => self.congestion = Some(Algorithm::from_name(n).ok_or(Errno::ENOENT)?),
                _ => return Err(Errno::EINVAL),
            },
            // sk_setsockopt: a TCP socket takes 0 or 1.
            SockOpt::SO_ZEROCOPY => self.zerocopy = ranged(value, 0, 1)? == 1,
            // ip_sock_set_tos: a stream socket keeps its own ECN bits. The route reset that
            // follows a change (`sk_dst_reset`) changes nothing TCP reads here: the next
            // lookup finds the same route, MTU and device features (`tcp_current_mss`).
            SockOpt::IP_TOS => self.tos = (int(value)? as u8 & !INET_ECN_MASK) | (self.tos & INET_ECN_MASK),
            // ip_sock_set_mtu_discover: IP_PMTUDISC_DONT ..= IP_PMTUDISC_OMIT.
            SockOpt::IP_MTU_DISCOVER => self.pmtudisc = Some(ranged(value, 0, IP_PMTUDISC_OMIT)? as u8),
            SockOpt::SO_ERROR | SockOpt::TCP_INFO => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// getsockopt() as an unconnected socket answers (a connection answers with its live
    /// buffer sizes and error, `Conn::get_opt`). SO_SNDBUF/SO_RCVBUF read back doubled.
    pub fn get(&self, opt: SockOpt, p: &KernelProfile) -> OptValue {
        OptValue::Int(match opt {
            SockOpt::SO_ERROR => 0,
            SockOpt::SO_KEEPALIVE => self.keepalive as i64,
            SockOpt::SO_LINGER => return OptValue::Pair([self.linger.is_some() as i64, self.linger.unwrap_or(0) as i64]),
            SockOpt::SO_SNDBUF => self.effective_sndbuf(p) as i64,
            SockOpt::SO_RCVBUF => self.effective_rcvbuf(p) as i64,
            SockOpt::SO_RCVLOWAT => self.rcvlowat.max(1) as i64,
            SockOpt::TCP_KEEPIDLE => self.keepidle(p) as i64,
            SockOpt::TCP_KEEPINTVL => self.keepintvl(p) as i64,
            SockOpt::TCP_KEEPCNT => self.keepcnt(p) as i64,
            SockOpt::TCP_USER_TIMEOUT => self.user_timeout_ms as i64,
            SockOpt::TCP_SYNCNT => self.syn_retries(p) as i64,
            SockOpt::TCP_NODELAY => self.nodelay as i64,
            SockOpt::TCP_CORK => self.cork as i64,
            // do_tcp_getsockopt reads tp->notsent_lowat: 0 until set, whatever the sysctl
            // (tcp_notsent_lowat() falls back to it only where the limit is applied).
            SockOpt::TCP_NOTSENT_LOWAT => i64::from(self.notsent_lowat.unwrap_or(0)),
            SockOpt::TCP_INQ => self.recvmsg_inq as i64,
            SockOpt::TCP_FASTOPEN_CONNECT => self.fastopen_connect as i64,
            SockOpt::TCP_FASTOPEN => i64::from(self.fastopen_qlen.min(p.somaxconn)),
            // do_tcp_getsockopt in CLOSE or LISTEN: user_mss if set, else the initial
            // mss_cache.
            SockOpt::TCP_MAXSEG => i64::from(if self.user_mss != 0 { self.user_mss } else { TCP_MSS_DEFAULT }),
            SockOpt::TCP_RTO_MAX_MS => self.rto_max_ms(p) as i64,
            SockOpt::TCP_CONGESTION => return OptValue::Name(self.congestion.unwrap_or(p.tcp_congestion_control).name().into()),
            SockOpt::SO_ZEROCOPY => self.zerocopy as i64,
            SockOpt::IP_TOS => i64::from(self.tos),
            SockOpt::IP_MTU_DISCOVER => i64::from(self.pmtudisc.unwrap_or(IP_PMTUDISC_WANT)),
            // tcpi_state of a fresh socket: TCP_CLOSE.
            SockOpt::TCP_INFO => 7,
        })
    }

    /// `sk_sndbuf` for these options: SO_SNDBUF doubled and clamped, else `tcp_wmem[1]`.
    pub fn effective_sndbuf(&self, p: &KernelProfile) -> u32 {
        match self.sndbuf {
            Some(v) => v.min(p.wmem_max).saturating_mul(2).max(SOCK_MIN_SNDBUF),
            None => p.tcp_wmem[1],
        }
    }

    /// `sk_rcvbuf`: SO_RCVBUF doubled and clamped, else `tcp_rmem[1]`.
    pub fn effective_rcvbuf(&self, p: &KernelProfile) -> u32 {
        match self.rcvbuf {
            Some(v) => v.min(p.rmem_max).saturating_mul(2).max(SOCK_MIN_RCVBUF),
            None => p.tcp_rmem[1],
        }
    }

    pub fn keepidle(&self, p: &KernelProfile) -> u64 {
        self.keepidle_s.map(u64::from).unwrap_or(p.tcp_keepalive_time_s)
    }
    pub fn keepintvl(&self, p: &KernelProfile) -> u64 {
        self.keepintvl_s.map(u64::from).unwrap_or(p.tcp_keepalive_intvl_s)
    }
    pub fn keepcnt(&self, p: &KernelProfile) -> u32 {
        self.keepcnt.map_or(p.tcp_keepalive_probes, u32::from)
    }
    pub fn syn_retries(&self, p: &KernelProfile) -> u32 {
        self.syncnt.map_or(p.tcp_syn_retries, u32::from)
    }
    /// include/net/tcp.h `tcp_notsent_lowat`: `tp->notsent_lowat ?: sysctl_tcp_notsent_lowat`,
    /// so a TCP_NOTSENT_LOWAT of 0 restores the sysctl's limit rather than setting none.
    pub fn notsent_lowat(&self, p: &KernelProfile) -> u32 {
        self.notsent_lowat.filter(|&v| v != 0).unwrap_or(p.tcp_notsent_lowat)
    }
    /// `tcp_mss_clamp` with this socket's TCP_MAXSEG.
    pub fn mss_clamp(&self, mss: u16) -> u16 {
        tcp_mss_clamp(self.user_mss, mss)
    }
    pub fn rto_max_ms(&self, p: &KernelProfile) -> u64 {
        self.rto_max_ms.map(u64::from).unwrap_or(p.tcp_rto_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_like_linux() {
        let mut o = SockOpts::default();
        assert_eq!(o.set(SockOpt::TCP_KEEPIDLE, &OptValue::Int(0)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::TCP_KEEPIDLE, &OptValue::Int(32768)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::TCP_KEEPCNT, &OptValue::Int(128)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::TCP_SYNCNT, &OptValue::Int(0)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::TCP_USER_TIMEOUT, &OptValue::Int(-1)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::TCP_RTO_MAX_MS, &OptValue::Int(999)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::SO_ERROR, &OptValue::Int(1)), Err(Errno::ENOPROTOOPT));
        o.set(SockOpt::SO_LINGER, &OptValue::Pair([1, 0])).unwrap();
        assert_eq!(o.linger, Some(0));
        o.set(SockOpt::TCP_KEEPIDLE, &OptValue::Int(2)).unwrap();
        assert_eq!(o.keepidle_s, Some(2));
        assert_eq!(o.set(SockOpt::TCP_MAXSEG, &OptValue::Int(87)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::TCP_MAXSEG, &OptValue::Int(32768)), Err(Errno::EINVAL));
    }

    #[test]
    fn notsent_lowat_of_zero_falls_back_to_the_sysctl() {
        let p = KernelProfile { tcp_notsent_lowat: 50_000, ..KernelProfile::linux_6_18() };
        let mut o = SockOpts::default();
        assert_eq!(o.notsent_lowat(&p), 50_000);
        o.set(SockOpt::TCP_NOTSENT_LOWAT, &OptValue::Int(32_000)).unwrap();
        assert_eq!(o.notsent_lowat(&p), 32_000);
        // tcp_notsent_lowat(): `tp->notsent_lowat ?: sysctl`; getsockopt still reads the 0.
        o.set(SockOpt::TCP_NOTSENT_LOWAT, &OptValue::Int(0)).unwrap();
        assert_eq!(o.notsent_lowat(&p), 50_000);
        assert_eq!(o.get(SockOpt::TCP_NOTSENT_LOWAT, &p), OptValue::Int(0));
    }

    #[test]
    fn maxseg_clamps_and_reads_back() {
        let p = KernelProfile::linux_6_18();
        let mut o = SockOpts::default();
        assert_eq!(o.get(SockOpt::TCP_MAXSEG, &p), OptValue::Int(536));
        assert_eq!(o.mss_clamp(1460), 1460);
        o.set(SockOpt::TCP_MAXSEG, &OptValue::Int(1100)).unwrap();
        assert_eq!(o.get(SockOpt::TCP_MAXSEG, &p), OptValue::Int(1100));
        assert_eq!(o.mss_clamp(1460), 1100);
        assert_eq!(o.mss_clamp(1000), 1000);
        o.set(SockOpt::TCP_MAXSEG, &OptValue::Int(0)).unwrap();
        assert_eq!(o.mss_clamp(1460), 1460);
    }

    #[test]
    fn ip_options_are_checked_and_read_back_as_linux_keeps_them() {
        let p = KernelProfile::linux_6_18();
        let mut o = SockOpts::default();
        assert_eq!(o.get(SockOpt::IP_MTU_DISCOVER, &p), OptValue::Int(1), "IP_PMTUDISC_WANT");
        o.set(SockOpt::IP_MTU_DISCOVER, &OptValue::Int(0)).unwrap();
        assert_eq!(o.get(SockOpt::IP_MTU_DISCOVER, &p), OptValue::Int(0));
        assert_eq!(o.set(SockOpt::IP_MTU_DISCOVER, &OptValue::Int(6)), Err(Errno::EINVAL));
        assert_eq!(o.set(SockOpt::IP_MTU_DISCOVER, &OptValue::Int(-1)), Err(Errno::EINVAL));
        assert_eq!(o.get(SockOpt::IP_TOS, &p), OptValue::Int(0));
        o.set(SockOpt::IP_TOS, &OptValue::Int(4)).unwrap();
        assert_eq!(o.get(SockOpt::IP_TOS, &p), OptValue::Int(4));
        // The ECN bits of a TCP socket's TOS are not the application's to set.
        o.set(SockOpt::IP_TOS, &OptValue::Int(0x13)).unwrap();
        assert_eq!(o.get(SockOpt::IP_TOS, &p), OptValue::Int(0x10));
    }

    #[test]
    fn zerocopy_is_a_boolean_flag() {
        let p = KernelProfile::linux_6_18();
        let mut o = SockOpts::default();
        assert_eq!(o.get(SockOpt::SO_ZEROCOPY, &p), OptValue::Int(0));
        assert_eq!(o.set(SockOpt::SO_ZEROCOPY, &OptValue::Int(2)), Err(Errno::EINVAL));
        o.set(SockOpt::SO_ZEROCOPY, &OptValue::Int(1)).unwrap();
        assert_eq!(o.get(SockOpt::SO_ZEROCOPY, &p), OptValue::Int(1));
    }

    #[test]
    fn buffers_are_doubled_and_clamped() {
        let p = KernelProfile::linux_6_18();
        let mut o = SockOpts::default();
        assert_eq!(o.effective_sndbuf(&p), 16384);
        assert_eq!(o.effective_rcvbuf(&p), 131072);
        o.set(SockOpt::SO_SNDBUF, &OptValue::Int(10000)).unwrap();
        assert_eq!(o.effective_sndbuf(&p), 20000);
        assert_eq!(o.get(SockOpt::SO_SNDBUF, &p), OptValue::Int(20000));
        assert_eq!(o.get(SockOpt::TCP_KEEPIDLE, &p), OptValue::Int(7200));
        o.set(SockOpt::SO_SNDBUF, &OptValue::Int(1)).unwrap();
        assert_eq!(o.effective_sndbuf(&p), SOCK_MIN_SNDBUF);
        o.set(SockOpt::SO_RCVBUF, &OptValue::Int(1 << 30)).unwrap();
        assert_eq!(o.effective_rcvbuf(&p), 2 * p.rmem_max);
    }
}
