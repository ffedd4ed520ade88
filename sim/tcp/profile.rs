//! Kernel profiles: every sysctl default and version-dependent behaviour the model uses,
//! kept as data in `models/kernels/*.toml` and chosen per host.
//!
//! Names follow the sysctl they come from (`net.ipv4.tcp_*`, Documentation/networking/ip-sysctl.rst),
//! with the unit as a suffix where the sysctl has one implicitly.

use crate::tcp::cc::Algorithm;
use crate::tcp::jiffies::Timers;
use serde::{Deserialize, Serialize};

/// Which operating system's socket semantics a host follows (and whose documented rules its
/// answers are held to).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    FreeBsd,
}

impl Os {
    pub fn name(self) -> &'static str {
        match self {
            Os::Linux => "Linux",
            Os::FreeBsd => "FreeBSD",
        }
    }
}

/// One kernel's TCP parameters and behaviour switches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelProfile {
    /// Profile name, e.g. `linux-6.18`.
    pub name: String,
    pub os: Os,
    /// `uname -r` style version, for reports.
    pub version: String,

    // --- connection establishment (tcp_timer.c tcp_write_timeout, 6.5+) ---
    pub tcp_syn_retries: u32,
    pub tcp_synack_retries: u32,
    /// 6.5+: the first N SYN RTOs stay linear; 0 models older kernels.
    pub tcp_syn_linear_timeouts: u32,
    /// `TCP_TIMEOUT_INIT`: initial RTO (1 s since RFC 6298).
    pub tcp_timeout_init_ms: u64,
    /// 6.x: TCP_USER_TIMEOUT also bounds SYN_SENT (5.x applied it only when synchronized).
    pub user_timeout_bounds_connect: bool,

    // --- retransmission (tcp_timer.c, include/net/tcp.h) ---
    pub tcp_retries1: u32,
    pub tcp_retries2: u32,
    /// 0 means 8 while the RTO is below its maximum (`tcp_orphan_retries()`).
    pub tcp_orphan_retries: u32,
    pub tcp_rto_min_us: u64,
    pub tcp_rto_max_ms: u64,
    /// `tcp_early_retrans`: 3 enables the tail loss probe (TLP).
    pub tcp_early_retrans: u32,
    /// Initial congestion window in segments (`TCP_INIT_CWND`).
    pub initial_cwnd: u32,
    /// `net.ipv4.tcp_congestion_control`: the algorithm new sockets run.
    pub tcp_congestion_control: Algorithm,
    /// `net.ipv4.tcp_slow_start_after_idle`: restart from the initial window after an idle
    /// RTO (RFC 2861).
    pub tcp_slow_start_after_idle: bool,
    /// `CONFIG_HZ`: the tick of `jiffies`, which congestion control's clock and every TCP
    /// timeout count in (100, 250, 300 or 1000).
    pub hz: u32,
    /// How timers fire: `"jiffies"` on the tick of their timer-wheel bucket, as Linux does
    /// (`calc_wheel_index`), or `"exact"`, the textbook `timeout` after arming
    /// (`sim/tcp/jiffies.rs`).
    pub timers: Timers,
    /// How long the kernel's `jiffies` clock had run at simulated time 0, in nanoseconds:
    /// where its ticks fall (the remainder in a tick) and the value of `jiffies` the timer
    /// wheel's coarser buckets align on. 0: ticks at multiples of 1/HZ, `jiffies` 0 at time 0.
    /// A real kernel's is arbitrary; a replay infers it from the capture.
    pub jiffies_offset_ns: u64,

    // --- delayed ACK (include/net/tcp.h) ---
    pub tcp_delack_min_ms: u64,
    pub tcp_delack_max_ms: u64,

    // --- keepalive (include/net/tcp.h) ---
    pub tcp_keepalive_time_s: u64,
    pub tcp_keepalive_intvl_s: u64,
    pub tcp_keepalive_probes: u32,

    // --- closing ---
    pub tcp_fin_timeout_s: u64,
    /// `TCP_TIMEWAIT_LEN`.
    pub tcp_timewait_len_s: u64,

    // --- ports (net/ipv4/inet_hashtables.c __inet_hash_connect) ---
    /// `net.ipv4.ip_local_port_range`, inclusive: where connect() and bind(0) find a port.
    pub ip_local_port_range: [u16; 2],

    // --- listen backlog (include/net/sock.h, inet_connection_sock.h) ---
    pub somaxconn: u32,
    pub tcp_max_syn_backlog: u32,
    pub tcp_syncookies: u32,
    pub tcp_abort_on_overflow: bool,
    /// 6.14+: `inet_csk_reqsk_queue_is_full()` is `qlen > backlog` (before: `>=`).
    pub reqsk_queue_full_strict: bool,

    // --- buffers (net/ipv4/tcp.c tcp_init_sock, net/core/sock.c) ---
    pub tcp_rmem: [u32; 3],
    pub tcp_wmem: [u32; 3],
    pub rmem_max: u32,
    pub wmem_max: u32,
    pub tcp_notsent_lowat: u32,
    pub tcp_moderate_rcvbuf: bool,

    // --- options ---
    pub tcp_window_scaling: bool,
    pub tcp_sack: bool,
    pub tcp_timestamps: bool,
    /// `net.ipv4.tcp_ecn`: whether a connection uses ECN (RFC 3168).
    pub tcp_ecn: TcpEcn,
    /// `net.ipv4.tcp_fastopen`: bit 1 (`TFO_CLIENT_ENABLE`) lets clients use Fast Open
    /// (`TCP_FASTOPEN_CONNECT`, `MSG_FASTOPEN`); bit 4 (`TFO_CLIENT_NO_COOKIE`) sends SYN-data
    /// without a cookie; bit 2 (`TFO_SERVER_ENABLE`) lets listeners with a Fast Open queue
    /// take SYN-data, 0x200 without a cookie, and 0x400 gives every listener a queue.
    pub tcp_fastopen: u32,

    // --- segmentation offload ---
    /// `sk_gso_max_segs` of the route's device: how many segments one skb may carry
    /// (`tcp_tso_segs`). 1 sends one MSS per skb, as the lab's veths are set up
    /// (`capture::netns`); packetdrill's tun device takes `GSO_MAX_SEGS` (65535).
    pub gso_max_segs: u32,
    /// `net.ipv4.tcp_min_tso_segs`: the fewest segments `tcp_tso_autosize` puts in an skb.
    pub tcp_min_tso_segs: u32,
}

/// `net.ipv4.tcp_ecn` (Documentation/networking/ip-sysctl.rst, include/net/tcp_ecn.h `enum
/// tcp_ecn_mode`): 0, no ECN; 1, ask for it in our SYNs and agree to it in incoming ones
/// (`TCP_ECN_IN_ECN_OUT_ECN`); 2, agree to it in incoming SYNs only
/// (`TCP_ECN_IN_ECN_OUT_NOECN`, Linux's default). 3 to 5, Accurate ECN (6.18), are not
/// modelled and are refused as a value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "u8", into = "u8")]
pub struct TcpEcn(u8);

impl TcpEcn {
    /// Our SYN asks for ECN (`tcp_ecn_send_syn`: `use_ecn`).
    pub fn request(self) -> bool {
        self.0 == 1
    }

    /// A SYN that asks for ECN gets it (`tcp_ecn_create_request`: `ecn_ok`).
    pub fn accept(self) -> bool {
        self.0 != 0
    }
}

impl TryFrom<u8> for TcpEcn {
    type Error = String;
    fn try_from(v: u8) -> Result<TcpEcn, String> {
        match v {
            0..=2 => Ok(TcpEcn(v)),
            3..=5 => Err(format!("tcp_ecn = {v} (Accurate ECN) is not modelled; 0, 1 or 2")),
            _ => Err(format!("tcp_ecn = {v} is not 0, 1 or 2")),
        }
    }
}

impl From<TcpEcn> for u8 {
    fn from(e: TcpEcn) -> u8 {
        e.0
    }
}

/// Why a kernel profile could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown kernel profile `{0}` (built in: {known})", known = BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("kernel profile `{name}`: {msg}")]
    Invalid { name: String, msg: String },
}

/// The profiles shipped in `models/kernels/`, compiled in so that a clean clone runs anywhere.
const BUILTIN: &[(&str, &str)] = &[
    ("linux-6.18", include_str!("../../models/kernels/linux-6.18.toml")),
    ("linux-6.1", include_str!("../../models/kernels/linux-6.1.toml")),
    ("freebsd-14", include_str!("../../models/kernels/freebsd-14.toml")),
];

impl KernelProfile {
    /// The default profile: the kernel these machines run.
    pub fn linux_6_18() -> KernelProfile {
        KernelProfile::builtin("linux-6.18").expect("built-in profile parses (tested)")
    }

    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Result<KernelProfile, ProfileError> {
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| ProfileError::Unknown(name.to_string()))?;
        toml::from_str(text).map_err(|e| ProfileError::Invalid { name: name.to_string(), msg: e.to_string() })
    }

    /// Names of the built-in profiles.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_differ_where_the_kernel_changed() {
        let new = KernelProfile::linux_6_18();
        let old = KernelProfile::builtin("linux-6.1").unwrap();
        assert_eq!(new.tcp_syn_linear_timeouts, 4);
        assert_eq!(old.tcp_syn_linear_timeouts, 0);
        assert!(new.reqsk_queue_full_strict && !old.reqsk_queue_full_strict);
        assert_eq!(new.tcp_keepalive_time_s, 7200);
        assert!(matches!(KernelProfile::builtin("linux-9.9"), Err(ProfileError::Unknown(_))));
    }

    #[test]
    fn freebsd_profile_has_freebsd_values() {
        let p = KernelProfile::builtin("freebsd-14").unwrap();
        assert_eq!(p.os, Os::FreeBsd);
        // tcp_timer.h: TCPTV_KEEPCNT 8, TCPTV_REXMTMAX 64 s; TCP_MAXRXTSHIFT 12.
        assert_eq!((p.tcp_keepalive_time_s, p.tcp_keepalive_intvl_s, p.tcp_keepalive_probes), (7200, 75, 8));
        assert_eq!((p.tcp_rto_max_ms, p.tcp_retries2), (64000, 12));
        // tcp_syncache.c SYNCACHE_MAXREXMTS; sys/socket.h SOMAXCONN.
        assert_eq!((p.tcp_synack_retries, p.somaxconn), (3, 128));
        assert_eq!(KernelProfile::linux_6_18().os, Os::Linux);
    }
}
