//! One Linux TCP connection (a `struct tcp_sock`), sans I/O: it is fed segments, syscalls and
//! timer expiries and answers with segments, deadlines and state changes.
//!
//! Layout: this file holds the TCB and the syscall-facing API (`tcp_sendmsg_locked`,
//! `tcp_recvmsg_locked`, `inet_shutdown`, `__tcp_close`, `tcp_poll`'s inputs); `input.rs` the
//! arrival of segments (`tcp_rcv_state_process`, `tcp_ack`, `tcp_data_queue`, `tcp_fin`,
//! `tcp_reset`); `output.rs` the building of segments (`tcp_write_xmit`, Nagle, window
//! selection); `timers.rs` the three kernel timers; `congestion.rs` the calls into the
//! congestion-control algorithm and `icsk_ca_state`; [`buffers`] the queues; [`sockopt`] the
//! options and their range checks.
//!
//! Simplifications, each also noted where it is made:
//! - congestion control runs Linux's algorithms ([`crate::tcp::cc`]: CUBIC by default, Reno),
//!   hooked in where the kernel calls them (`congestion.rs`); recovery (`recovery.rs`) keeps
//!   the SACK scoreboard, detects loss with RACK (Reno's duplicate ACKs without SACK) and
//!   runs PRR, undoes a spurious reduction (timestamps, D-SACKs, F-RTO: `undo.rs`);
//!   reordering is detected from SACKs and from a cumulative ACK that fills a hole never
//!   retransmitted (`tcp_clean_rtx_queue`), not by timestamps, and RACK's window does not
//!   grow with D-SACKs;
//! - every sent skb is one segment (no TSO/GSO), and is re-sent whole;
//! - the send queue keeps Linux's skbs with their PSH and MSG_EOR marks (`tcp_sendmsg_locked`
//!   fills them to `size_goal`, `tso_fragment` and `tcp_grow_skb` move their boundaries at
//!   transmit, never past a record's end), each charged a fixed truesize ([`SKB_OVERHEAD`])
//!   plus its payload; a retransmission re-sends one MSS at a time without splitting them;
//!   the receive side charges each skb as the modelled NIC (veth, lo) delivers it and derives
//!   `scaling_ratio` from the measured segments ([`rcvmem`]);
//! - send-buffer autotuning is `tcp_check_space` after an ACK's push and after every skb
//!   sent: `tcp_sndbuf_expand` for a writer that hit the limit, while the flight is below cwnd (a `poll` that finds the socket
//!   not writeable does not set `SOCK_NOSPACE` as Linux's `tcp_poll` does); receive-buffer autotuning follows
//!   `tcp_rcv_space_adjust`, with the receiver RTT from timestamps only (no per-window
//!   measurement without them);
//! - no PAWS, no urgent data, no rate limit on challenge ACKs (out-of-window duplicate
//!   ACKs are limited, `tcp_oow_rate_limited`), no memory-pressure orphan kills
//!   (`tcp_out_of_resources`);
//! - an orphan's FIN_WAIT2 and TIME_WAIT stay in this one object (Linux moves them to a
//!   timewait mini-socket); [`Conn::view`] shows the fd's CLOSE for TIME_WAIT.

pub mod buffers;
mod child;
mod congestion;
mod ecn;
mod fastopen;
mod input;
mod output;
pub mod pacing;
mod rare;
mod rcvmem;
mod recovery;
pub mod sockopt;
mod timers;
mod undo;

pub use child::{ChildParams, ChildTimestamps};
pub use sockopt::SockOpts;

use crate::errno::Errno;
use crate::tcp::cc::{CaState, CongestionControl, Window};
use crate::tcp::uapi::{OptValue, ShutHow, SockOpt, UserBuf};
use crate::tcp::view::{PollMask, SockView, Wakeup, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK};
use crate::tcp::jiffies::Jiffies;
use crate::tcp::profile::KernelProfile;
use crate::tcp::rtt::RttEstimator;
use crate::tcp::segment::Segment;
use crate::tcp::state::{Cause, TcpState};
use crate::time::{Dur, SimTime};
use buffers::{RecvQueue, RtxSkbs, SendQueue};
use timers::Deadline;
use serde::Serialize;
use crate::addr::SockAddr;
use std::rc::Rc;

/// The per-segment memory overhead counted in `sk_wmem_queued` and `sk_rmem_alloc` on top of
/// the payload: `SKB_DATA_ALIGN(MAX_TCP_HEADER)` (320) + `SKB_DATA_ALIGN(sizeof(struct
/// sk_buff))` (256) + `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` (320) on x86-64, i.e.
/// the truesize of an skb as `tcp_stream_alloc_skb` allocates it, with the payload in page
/// fragments. An estimate: Linux's real truesize depends on page-fragment packing.
pub const SKB_OVERHEAD: u32 = 896;

/// `TCP_MAX_QUICKACKS`.
const TCP_MAX_QUICKACKS: u8 = 16;
/// `TCP_MIN_MSS`.
const TCP_MIN_MSS: u32 = 88;
/// `TCP_TIMEOUT_FALLBACK` (RFC 6298 §5.7): the RTO after a retransmitted handshake without
/// an RTT sample.
const TCP_TIMEOUT_FALLBACK: Dur = Dur::from_secs(3);
/// Linux's default MSS when the peer sends none (`TCP_MSS_DEFAULT`).
const TCP_MSS_DEFAULT: u16 = 536;

/// The kernel timers of one connection (`icsk_retransmit_timer`, `icsk_delack_timer`,
/// `sk_timer`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// RTO, TLP, RACK's reordering timer, SYN retransmission and zero-window probe share
    /// `icsk_retransmit_timer`.
    Retransmit,
    DelAck,
    /// Keepalive; also the orphaned FIN_WAIT2 timeout and TIME_WAIT's 2MSL.
    Keepalive,
}

/// What `icsk_retransmit_timer` is armed for (`icsk_pending`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum RtxTimer {
    Rto,
    LossProbe,
    Probe0,
    /// RACK's reordering timer (`ICSK_TIME_REO_TIMEOUT`).
    ReoTimeout,
}

/// Pending wake-ups of a socket's wait queue, merged until the host takes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum PendingWake {
    None,
    /// Only keyed wake-ups, with the union of their keys.
    Keyed(PollMask),
    /// At least one wake-up without a key.
    All,
}


/// Data for send(): `Derived(len)` bytes of the connection's derived stream, real bytes, or
/// `Null(len)`, a length at a NULL pointer the copy faults on ([`UserBuf`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendData {
    Derived(u32),
    Bytes(Vec<u8>),
    Null(u32),
}

impl SendData {
    /// What a script's `send` step writes: its `data` as text, else `len` derived bytes, from
    /// `buf`.
    pub fn of_step(len: Option<u32>, data: Option<&str>, buf: UserBuf) -> SendData {
        match (data, buf) {
            (_, UserBuf::Null) => SendData::Null(len.unwrap_or(0)),
            (Some(text), UserBuf::Mapped) => SendData::Bytes(text.as_bytes().to_vec()),
            (None, UserBuf::Mapped) => SendData::Derived(len.unwrap_or(0)),
        }
    }

    /// The bytes the call asks to send.
    pub fn count(&self) -> u32 {
        match self {
            SendData::Derived(n) | SendData::Null(n) => *n,
            SendData::Bytes(b) => b.len() as u32,
        }
    }

    /// The part after the first `n` bytes (what a blocking send still has to queue).
    pub fn after(&self, n: u32) -> SendData {
        match self {
            SendData::Derived(len) => SendData::Derived(len - n),
            SendData::Null(len) => SendData::Null(len - n),
            SendData::Bytes(b) => SendData::Bytes(b[n as usize..].to_vec()),
        }
    }
}

/// Where recv() puts what it reads (`tcp_recvmsg_locked`'s copy).
pub enum RecvDest<'a> {
    /// Appended to the vector.
    Copy(&'a mut Vec<u8>),
    /// Dropped unread: `MSG_TRUNC` skips `skb_copy_datagram_msg`.
    Discard,
    /// A NULL buffer: the copy faults ([`UserBuf::Null`]).
    Fault,
}

/// `struct tcp_info`, the fields the scenarios read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpInfo {
    pub state: TcpState,
    pub rto_us: u64,
    pub backoff: u32,
    pub probes: u32,
    pub retransmits: u32,
    /// Segments in flight (`packets_out`).
    pub unacked: u32,
    /// `tcpi_ca_state`: `icsk_ca_state` (0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss).
    pub ca_state: u8,
    /// `tcpi_sacked`: segments SACKed (`sacked_out`; without SACK, duplicate ACKs counted).
    pub sacked: u32,
    /// `tcpi_lost`: segments presumed lost (`lost_out`).
    pub lost: u32,
    /// `tcpi_retrans`: retransmitted segments not yet acknowledged (`retrans_out`).
    pub retrans: u32,
    /// `tcpi_reordering`: the reordering degree the sender assumes (`tp->reordering`).
    pub reordering: u32,
    /// `tcpi_reord_seen`: reorderings detected (`tp->reord_seen`, counted by
    /// `tcp_check_sack_reordering`).
    pub reord_seen: u32,
    pub snd_cwnd: u32,
    pub snd_ssthresh: u32,
    /// `tcpi_rtt`: the smoothed RTT.
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub total_retrans: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    /// `tcpi_advmss`: the MSS we advertised (`tp->advmss`).
    pub advmss: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// `tcpi_options` (`TCPI_OPT_*`: timestamps 1, SACK 2, window scaling 4, SYN data
    /// acknowledged 32). Read by the packetdrill runner; kept out of the JSON a scenario's
    /// TCP_INFO records, whose outputs predate it.
    #[serde(skip)]
    pub options: u8,
    /// The fields that count time up to the call (`tcp_get_info`'s `now`): filled by
    /// [`Conn::info_at`], absent from [`Conn::info`].
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub times: Option<InfoTimes>,
}

/// `tcp_get_info`'s times since events (in milliseconds of whole jiffies, `jiffies_to_msecs`)
/// and the chronographs (`tcp_get_info_chrono_stats`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InfoTimes {
    /// `tcpi_last_data_sent`: since `lsndtime`.
    pub last_data_sent_ms: u64,
    /// `tcpi_last_data_recv`: since `icsk_ack.lrcvtime`.
    pub last_data_recv_ms: u64,
    /// `tcpi_last_ack_recv`: since `rcv_tstamp`.
    pub last_ack_recv_ms: u64,
    pub busy_time_us: u64,
    pub rwnd_limited_us: u64,
    pub sndbuf_limited_us: u64,
}

/// `tcp_select_initial_window()` with the 6.x defaults: the receive window offered in the
/// SYN (or SYN-ACK) and the window scale, for a receive buffer `rcvbuf` and an MSS `mss`.
/// The space is `tcp_full_space()`, half the buffer (`tcp_win_from_space` with
/// `TCP_DEFAULT_SCALING_RATIO`, 50 %: no segment is measured yet), rounded down to whole MSS; the scale is chosen for the largest
/// buffer the socket may grow to (`max(tcp_rmem[2], rmem_max)`), unless SO_RCVBUF locked the
/// buffer: then the window clamp is the full space (`tcp_connect_init`,
/// `tcp_openreq_init_rwin`) and the scale fits that.
pub fn select_initial_window(p: &KernelProfile, rcvbuf: u32, rcvbuf_locked: bool, mss: u32, wscale_ok: bool) -> (u32, u8) {
    let window_clamp: u64 = if rcvbuf_locked { win_from_space(rcvbuf) as u64 } else { 65535u64 << 14 };
    let mut space = (win_from_space(rcvbuf) as u64).min(window_clamp);
    if space > mss as u64 {
        space -= space % mss as u64;
    }
    let mut wscale = 0u8;
    if wscale_ok {
        let max_space = (p.tcp_rmem[2].max(p.rmem_max) as u64).min(window_clamp);
        wscale = (max_space.max(1).ilog2() as i32 - 15).clamp(0, 14) as u8;
    }
    (space as u32, wscale)
}

/// `tcp_win_from_space()` at `TCP_DEFAULT_SCALING_RATIO`, before any segment is measured.
fn win_from_space(space: u32) -> u32 {
    rcvmem::win_from_space(rcvmem::TCP_DEFAULT_SCALING_RATIO, space)
}

/// A per-direction stream id for derived payload, from the endpoints and the ISN.
pub fn stream_id(local: SockAddr, remote: SockAddr, iss: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let ((l, ln), (r, rn)) = (crate::addr::octets(local.ip()), crate::addr::octets(remote.ip()));
    for b in l[..ln].iter().chain(r[..rn].iter()) {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    for v in [local.port() as u64, remote.port() as u64, iss as u64] {
        h = (h ^ v).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The timestamp offset of a connection (Linux: `secure_tcp_ts_off`, a keyed hash of the
/// addresses), derived here from the endpoints so that it is deterministic.
pub fn ts_offset(local: SockAddr, remote: SockAddr) -> u32 {
    (stream_id(local, remote, 0x7473) >> 17) as u32
}

/// One TCP connection.
#[derive(Debug)]
pub struct Conn {
    profile: Rc<KernelProfile>,
    /// The socket options, shared with the host's other connections that have the same
    /// ([`Rc::make_mut`] on a change).
    opts: Rc<SockOpts>,
    /// Fast Open's client state, for sockets that use it (see `fastopen.rs`).
    tfo: Option<Box<crate::tcp::fastopen::ActiveOpen>>,
    local: SockAddr,
    remote: SockAddr,
    state: TcpState,
    /// The cold state, boxed while off its defaults ([`rare`]: transitions and counters
    /// not yet collected, retransmission and probe counts).
    rare: rare::Rare,
    /// Wake-ups of the socket's wait queue not yet taken by the host (see [`PendingWake`]).
    wakeup: PendingWake,

    // --- socket flags ---
    /// `sk_shutdown`.
    shutdown: u8,
    /// `SOCK_DONE`: FIN received in sequence.
    done: bool,
    /// `SOCK_DEAD`: closed by the application.
    orphan: bool,
    /// The host's egress queue drops every packet, so `__tcp_transmit_skb` fails locally
    /// (`NET_XMIT_DROP`); set by [`Host::set_qdisc_refuses`](crate::host::Host::set_qdisc_refuses).
    dev_refuses: bool,
    /// `SOCK_NOSPACE`: a writer found the buffer full; the next freeing ACK wakes it.
    nospace: bool,
    sk_err: Option<Errno>,
    sk_err_soft: Option<Errno>,
    sndbuf_locked: bool,
    rcvbuf_locked: bool,

    // --- negotiated options ---
    ts_ok: bool,
    sack_ok: bool,
    /// `tp->rx_opt.wscale_ok`: both SYNs carried the window scale option.
    wscale_ok: bool,
    snd_wscale: u8,
    rcv_wscale: u8,
    ts_offset: u32,
    ts_recent: u32,
    /// `tp->ecn_flags`: RFC 3168 ECN ([`ecn`]).
    ecn: ecn::EcnFlags,
    /// `mss_cache`: payload per segment we send.
    mss: u32,
    /// `icsk_ack.rcv_mss`: estimate of the peer's segment size.
    rcv_mss: u32,
    /// `tp->advmss`: the MSS we advertise, the route's ([`crate::tcp::route::ipv4_default_advmss`]).
    advmss: u16,
    /// `rx_opt.mss_clamp`: the MSS the peer advertised (536 if it sent none).
    mss_clamp: u16,

    // --- send sequence space (RFC 9293 §3.3.1) ---
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    /// Sequence after the last byte queued, FIN included (`write_seq`).
    write_seq: u32,
    snd_wnd: u32,
    snd_wl1: u32,
    max_window: u32,
    /// End of the last small segment sent (Minshall's Nagle, `snd_sml`).
    snd_sml: u32,
    /// A FIN is queued (it sits at `write_seq - 1`).
    fin_queued: bool,
    sndq: SendQueue,
    /// The skbs in flight (`tcp_rtx_queue`): `packets_out` counts these.
    rtx_skbs: RtxSkbs,
    tx_stream: u64,
    sndbuf: u32,

    // --- receive sequence space ---
    irs: u32,
    rcv_nxt: u32,
    /// The window last advertised, bytes, and the `rcv_nxt` it was advertised at.
    rcv_wnd: u32,
    rcv_wup: u32,
    rcv_ssthresh: u32,
    window_clamp: u32,
    /// `scaling_ratio`: the payload share of receive memory, of 256 (`tcp_measure_rcv_mss`).
    scaling_ratio: u8,
    rcvbuf: u32,
    rcvq: RecvQueue,
    /// Receive-buffer autotuning (`rcvq_space`): bytes the application read in the last
    /// measured RTT, the read total at the start of the measurement, and its start time.
    rcvq_space: u32,
    rcvq_copied: u64,
    rcvq_time: SimTime,
    /// Bytes the application has read in all (`copied_seq`, widened).
    copied: u64,
    /// The receiver's RTT estimate (`rcv_rtt_est.rtt_us`, 8× scaled) and its state.
    rcv_rtt_us8: u32,
    rcv_rtt_last_tsecr: u32,

    // --- retransmission ---
    rtt: RttEstimator,
    rto: Dur,
    /// `snd_cwnd`, `snd_ssthresh`, `snd_cwnd_cnt`.
    cwnd: Window,
    /// `icsk_ca_state`.
    ca_state: CaState,
    /// `icsk_ca_ops` with its private state (`icsk_ca_priv`).
    ca: CongestionControl,
    /// RACK and PRR, once SACKs or losses are met.
    loss: Option<Box<recovery::LossState>>,
    /// `lsndtime`: the jiffy data was last sent.
    lsndtime: u32,
    /// `sk_pacing_rate`, bytes per second.
    pacing_rate: u64,
    /// Recovery point (`high_seq`).
    high_seq: u32,
    /// `tcp_cwnd_validate`'s memory of the current window: was the flight ever limited by
    /// cwnd (`is_cwnd_limited`), the most packets out (`max_packets_out`), and `snd_nxt` when
    /// this window began (`cwnd_usage_seq`).
    is_cwnd_limited: bool,
    max_packets_out: u32,
    cwnd_usage_seq: u32,
    /// End of the data last marked PSH (`pushed_seq`, see `forced_push`).
    pushed_seq: u32,
    /// The sending chronographs (`chrono_type`, `chrono_stat`), from the first data queued.
    chrono: Option<Box<crate::tcp::chrono::Chrono>>,

    // --- delayed ACK (`icsk_ack`) ---
    ack_pending: bool,
    ack_now: bool,
    /// `ICSK_ACK_NOMEM`: data was dropped for lack of buffer; advertise a zero window.
    ack_nomem: bool,
    quick: u8,
    pingpong: bool,
    ato: Dur,
    lrcvtime: SimTime,
    /// `rcv_tstamp`: last ACK processed (keepalive idle time runs from here).
    rcv_tstamp: SimTime,

    // --- timers ---
    rtx_at: Deadline,
    rtx_kind: RtxTimer,
    delack_at: Deadline,
    keepalive_at: Deadline,
}

impl Conn {
    fn blank(now: SimTime, profile: Rc<KernelProfile>, opts: Rc<SockOpts>, local: SockAddr, remote: SockAddr, iss: u32, advmss: u16) -> Conn {
        let sndbuf = opts.effective_sndbuf(&profile);
        let rcvbuf = opts.effective_rcvbuf(&profile);
        let cwnd = profile.initial_cwnd;
        let ca = CongestionControl::new(opts.congestion.unwrap_or(profile.tcp_congestion_control));
        let rto = Dur::from_millis(profile.tcp_timeout_init_ms);
        Conn {
            sndbuf_locked: opts.sndbuf.is_some(),
            rcvbuf_locked: opts.rcvbuf.is_some(),
            profile,
            opts,
            tfo: None,
            local,
            remote,
            state: TcpState::Close,
            rare: Default::default(),
            wakeup: PendingWake::None,
            shutdown: 0,
            done: false,
            orphan: false,
            dev_refuses: false,
            nospace: false,
            sk_err: None,
            sk_err_soft: None,
            ts_ok: false,
            sack_ok: false,
            wscale_ok: false,
            snd_wscale: 0,
            rcv_wscale: 0,
            ts_offset: ts_offset(local, remote),
            ts_recent: 0,
            ecn: ecn::EcnFlags::default(),
            mss: TCP_MSS_DEFAULT as u32,
            rcv_mss: TCP_MSS_DEFAULT as u32,
            advmss,
            mss_clamp: TCP_MSS_DEFAULT,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            write_seq: iss,
            snd_wnd: 0,
            snd_wl1: 0,
            max_window: 0,
            snd_sml: iss,
            fin_queued: false,
            sndq: SendQueue::default(),
            rtx_skbs: RtxSkbs::default(),
            tx_stream: stream_id(local, remote, iss),
            sndbuf,
            irs: 0,
            rcv_nxt: 0,
            rcv_wnd: 0,
            rcv_wup: 0,
            rcv_ssthresh: 0,
            window_clamp: 0,
            scaling_ratio: rcvmem::TCP_DEFAULT_SCALING_RATIO,
            rcvbuf,
            rcvq: RecvQueue::default(),
            rcvq_space: 0,
            rcvq_copied: 0,
            rcvq_time: now,
            copied: 0,
            rcv_rtt_us8: 0,
            rcv_rtt_last_tsecr: 0,
            rtt: RttEstimator::default(),
            rto,
            cwnd: Window::new(cwnd),
            ca_state: CaState::Open,
            ca,
            loss: None,
            lsndtime: 0,
            pacing_rate: 0,
            high_seq: iss,
            is_cwnd_limited: false,
            max_packets_out: 0,
            cwnd_usage_seq: iss,
            pushed_seq: iss,
            chrono: None,
            ack_pending: false,
            ack_now: false,
            ack_nomem: false,
            quick: 0,
            pingpong: false,
            ato: Dur::ZERO,
            lrcvtime: now,
            rcv_tstamp: now,
            rtx_at: Deadline::NONE,
            rtx_kind: RtxTimer::Rto,
            delack_at: Deadline::NONE,
            keepalive_at: Deadline::NONE,
        }
    }

    /// connect() (`tcp_v4_connect` → `tcp_connect`): SYN_SENT, the SYN appended to `out`,
    /// the SYN timer armed for `TCP_TIMEOUT_INIT`. `advmss` is the route's, lowered to
    /// TCP_MAXSEG (`tcp_connect_init`: `tp->advmss = tcp_mss_clamp(tp, dst_metric_advmss(dst))`).
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        now: SimTime,
        profile: Rc<KernelProfile>,
        opts: impl Into<Rc<SockOpts>>,
        local: SockAddr,
        remote: SockAddr,
        iss: u32,
        advmss: u16,
        out: &mut Vec<Segment>,
    ) -> Conn {
        let mut c = Conn::connect_init(now, profile, opts, local, remote, iss, advmss);
        c.send_syn(now, out);
        c
    }

    /// `tcp_connect`'s send: the SYN, and its timer armed for the initial RTO.
    pub fn send_syn(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        out.push(self.syn_segment(now, false));
        self.arm_rtx(now, RtxTimer::Rto, self.rto);
    }

    /// `tcp_v4_connect` up to `tcp_connect` sending the SYN: SYN_SENT, the SYN's skb queued
    /// (`tcp_connect_init`, `tcp_connect_queue_skb`). [`Conn::connect`] sends it at once;
    /// [`Conn::fastopen_connect`] may send it later, with data.
    pub fn connect_init(
        now: SimTime,
        profile: Rc<KernelProfile>,
        opts: impl Into<Rc<SockOpts>>,
        local: SockAddr,
        remote: SockAddr,
        iss: u32,
        advmss: u16,
    ) -> Conn {
        let opts = opts.into();
        let advmss = opts.mss_clamp(advmss);
        let mut c = Conn::blank(now, profile, opts, local, remote, iss, advmss);
        let mss = u32::from(c.advmss);
        let (rcv_wnd, wscale) = select_initial_window(&c.profile, c.rcvbuf, c.rcvbuf_locked, mss, c.profile.tcp_window_scaling);
        c.rcv_wnd = rcv_wnd;
        c.rcv_ssthresh = rcv_wnd;
        c.rcv_wscale = wscale;
        c.window_clamp = 65535u32 << wscale;
        c.snd_nxt = iss.wrapping_add(1);
        c.write_seq = c.snd_nxt;
        c.snd_sml = c.snd_nxt;
        c.pushed_seq = c.snd_nxt;
        c.high_seq = c.snd_nxt;
        c.set_state(TcpState::SynSent, Cause::Connect);
        c.rare.set(|r| &mut r.retrans_stamp, Some(now));
        c.rtx_skbs.push(c.snd_nxt, now, true);
        // tcp_connect calls tcp_ecn_send_syn on the SYN's skb before either way of sending
        // it (tcp_transmit_skb, or tcp_send_syn_data for Fast Open).
        c.ecn_send_syn();
        c
    }

    /// A child created by a listener when the handshake completes (`tcp_create_openreq_child`
    /// then `tcp_rcv_state_process` in SYN_RECV): it is born in SYN_RECV and the same ACK
    /// makes it ESTABLISHED; both transitions are recorded. If the completing segment carries
    /// data or a FIN, pass it to [`Conn::on_segment`] of the child afterwards (as
    /// `tcp_child_process` does); a bare ACK needs nothing more.
    pub fn accept_child(now: SimTime, profile: Rc<KernelProfile>, opts: impl Into<Rc<SockOpts>>, params: &ChildParams, out: &mut Vec<Segment>) -> Conn {
        let _ = out; // the completing ACK needs no answer
        let mut c = Conn::openreq_child(now, profile, opts.into(), params);
        if let Some(rtt) = params.synack_rtt(now) {
            c.rtt.sample(rtt.as_micros(), c.rto_min_us(), c.snd_una, c.snd_nxt);
            c.rto = c.rtt.rto(c.rto_max(), c.jiffies());
        } else if params.synack_retransmits > 0 {
            c.rto = TCP_TIMEOUT_FALLBACK;
        }
        c.rcv_tstamp = now;
        c.lrcvtime = now;
        c.set_state(TcpState::Established, Cause::RcvAckOfSyn);
        c.init_transfer(now);
        c
    }

    /// `tcp_create_openreq_child`: a child in SYN_RECV with what the request sock negotiated,
    /// its SYN-ACK acknowledged (the caller undoes that for a Fast Open child).
    fn openreq_child(now: SimTime, profile: Rc<KernelProfile>, opts: Rc<SockOpts>, params: &ChildParams) -> Conn {
        let mut c = Conn::blank(now, profile, opts, params.local, params.remote, params.iss, params.adv_mss);
        c.tx_stream = stream_id(params.local, params.remote, params.iss);
        c.ts_offset = params.timestamps.map_or(0, |t| t.ts_off);
        c.state = TcpState::Listen;
        c.set_state(TcpState::SynRecv, Cause::RcvSyn);
        c.snd_una = params.iss.wrapping_add(1);
        c.snd_nxt = c.snd_una;
        c.write_seq = c.snd_una;
        c.snd_sml = c.snd_una;
        c.pushed_seq = c.snd_una;
        c.high_seq = c.snd_una;
        c.irs = params.irs;
        c.rcv_nxt = params.irs.wrapping_add(1);
        c.rcv_wup = c.rcv_nxt;
        c.rcv_wnd = params.rcv_wnd;
        c.rcv_ssthresh = params.rcv_wnd;
        let ts_recent = params.timestamps.map(|t| t.ts_recent);
        // tcp_ecn_openreq_child: ECN as the request sock agreed it.
        c.ecn = ecn::EcnFlags::negotiated(params.ecn_ok);
        // tcp_create_openreq_child sets max_window before tcp_v4_syn_recv_sock's tcp_sync_mss.
        c.snd_wnd = params.snd_wnd;
        c.snd_wl1 = c.rcv_nxt;
        c.max_window = c.snd_wnd;
        c.negotiate(Some(params.peer_mss), params.snd_wscale, params.sack_ok, ts_recent, params.rcv_wscale);
        c
    }

    /// Applies the peer's SYN options (`tcp_parse_options` + `tcp_sync_mss`).
    fn negotiate(&mut self, peer_mss: Option<u16>, peer_wscale: Option<u8>, peer_sack: bool, peer_tsval: Option<u32>, our_wscale: u8) {
        let p = &self.profile;
        self.wscale_ok = peer_wscale.is_some() && p.tcp_window_scaling;
        match peer_wscale {
            Some(ws) if p.tcp_window_scaling => {
                self.snd_wscale = ws.min(14);
                self.rcv_wscale = our_wscale;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.window_clamp = 65535u32 << self.rcv_wscale;
        self.sack_ok = peer_sack && p.tcp_sack;
        self.ts_ok = peer_tsval.is_some() && p.tcp_timestamps;
        if self.ts_ok {
            self.ts_recent = peer_tsval.unwrap_or(0);
        }
        let opt_len = if self.ts_ok { 12 } else { 0 };
        // tcp_parse_options: the peer's MSS option, lowered to TCP_MAXSEG (`user_mss`).
        self.mss_clamp = peer_mss.map_or(TCP_MSS_DEFAULT, |m| self.opts.mss_clamp(m));
        let peer = u32::from(self.mss_clamp);
        let ours = u32::from(self.advmss);
        // tcp_sync_mss: the path's MSS, bounded by half the largest window the peer offered
        // (the caller set `max_window` from its SYN or SYN-ACK first).
        self.mss = self.bound_to_half_wnd((peer.min(ours) - opt_len).max(TCP_MIN_MSS));
        // With timestamps the MSS we expect excludes their 12 bytes (`tp->advmss -=
        // TCPOLEN_TSTAMP_ALIGNED`, tcp_rcv_synsent_state_process; `ss -i` shows advmss 1448
        // on both ends of a 1500-byte veth): window growth steps by it (`tcp_grow_window`).
        self.advmss = self.advmss.saturating_sub(opt_len as u16).max(TCP_MIN_MSS as u16);
        // tcp_initialize_rcv_mss: a guess below the peer's MSS (at most TCP_MSS_DEFAULT, 536,
        // as `ss -i` shows before data), raised by the first full segment
        // (`tcp_measure_rcv_mss`), which then measures `scaling_ratio`.
        let hint = ours.min(self.mss).min(self.rcv_wnd / 2).min(u32::from(TCP_MSS_DEFAULT)).max(TCP_MIN_MSS);
        self.rcv_mss = hint;
    }

    /// `tcp_init_transfer` / `tcp_init_buffer_space`: buffers, window clamp and keepalive at
    /// the start of the connection. The clamp keeps one segment of the full space for the
    /// application ("force reservation of one segment", `tcp_app_win` = 31): 65536 − 1448 =
    /// 64088 for a 128 KiB buffer on a 1500-byte veth (`ss -i` shows it as `rcv_ssthresh`),
    /// nothing on loopback, whose 65483-byte MSS is more than half the space.
    pub(super) fn init_transfer(&mut self, now: SimTime) {
        let maxwin = self.full_space();
        let advmss = u32::from(self.advmss);
        // `tcp_app_win`'s default, 31, reserves `maxwin >> 31` for the application: nothing
        // below 2 GiB, so the clamp is at most the full space ...
        self.window_clamp = self.window_clamp.min(maxwin);
        // ... but "force reservation of one segment" still applies.
        if self.window_clamp > 2 * advmss && self.window_clamp + advmss > maxwin {
            self.window_clamp = (2 * advmss).max(maxwin - advmss);
        }
        self.rcv_ssthresh = self.rcv_ssthresh.min(self.window_clamp);
        self.rcvq_space = self.rcv_ssthresh.min(self.rcv_wnd).min(self.profile.initial_cwnd * u32::from(self.advmss));
        self.rcvq_time = now;
        self.sndbuf_expand();
        // Not idle before the first data (tcp_finish_connect, tcp_rcv_state_process).
        self.lsndtime = self.ca_clock(now).jiffies;
        self.init_congestion_control(now);
        if self.opts.keepalive {
            self.keepalive_at = Deadline::at(self.timer_at(now, self.keepalive_time()));
        }
    }

    /// tcp_input.c `tcp_check_space` → `tcp_new_space`, where Linux calls it: from
    /// `tcp_data_snd_check` after an ACK's push, and (5.18+, "tcp: fix potential xmit stalls
    /// caused by TCP_NOTSENT_LOWAT") from `tcp_event_new_data_sent` after every skb sent, so
    /// the first skb an ACK lets out can expand the buffer while the flight is still below
    /// the congestion window the ACK grew (measured on 6.18: `tests/packetdrill.rs`,
    /// `the_send_buffer_grows_as_measured_on_linux_6_18`). Only a writer that
    /// found the buffer full (`SOCK_NOSPACE`, set by `tcp_sendmsg_locked`'s wait_for_space)
    /// gets a larger buffer, and only while the flight is below cwnd
    /// (`tcp_should_expand_sndbuf`); then `sk_stream_write_space` wakes it once the socket
    /// is writeable again. A writer that never hit the limit keeps the buffer
    /// `tcp_init_buffer_space` gave it.
    /// Once the writer is woken, the send buffer no longer limits (`TCP_CHRONO_SNDBUF_LIMITED`
    /// stops).
    pub(super) fn check_space(&mut self, now: SimTime) {
        if !self.nospace {
            return;
        }
        if self.packets_in_flight() < self.cwnd.cwnd {
            self.sndbuf_expand();
        }
        if self.is_writeable() {
            self.nospace = false;
            self.chrono_stop(now, crate::tcp::chrono::ChronoKind::SndbufLimited);
            self.wake_keyed(Wakeup::WriteSpace.key());
        }
    }

    /// `tcp_sndbuf_expand`: room for twice the congestion window of full-size skbs, per
    /// segment `roundup_pow_of_two(max(mss_clamp, mss_cache) + MAX_TCP_HEADER + shinfo) +
    /// sizeof(sk_buff)`, up to
    /// `tcp_wmem[2]`. Only while SO_SNDBUF was not set.
    fn sndbuf_expand(&mut self) {
        if self.sndbuf_locked {
            return;
        }
        let per_mss = (u32::from(self.mss_clamp).max(self.mss) + 320 + 320).next_power_of_two() + 256;
        let nr_segs = self.profile.initial_cwnd.max(self.cwnd.cwnd).max(4);
        let sndmem = 2u64 * nr_segs as u64 * per_mss as u64;
        if (self.sndbuf as u64) < sndmem {
            self.sndbuf = sndmem.min(self.profile.tcp_wmem[2] as u64) as u32;
        }
    }

    // ------------------------------------------------------------------ small helpers

    /// The host's jiffies and timer wheel (`sim/tcp/jiffies.rs`).
    fn jiffies(&self) -> Jiffies {
        Jiffies::of(&self.profile)
    }
    /// When a timer armed at `now` for `timeout` fires: every timer of the connection is
    /// set through here (`sk_reset_timer` on the timer wheel).
    fn timer_at(&self, now: SimTime, timeout: Dur) -> SimTime {
        self.jiffies().expiry(now, timeout)
    }
    fn rto_min_us(&self) -> u32 {
        self.profile.tcp_rto_min_us.min(u32::MAX as u64) as u32
    }
    fn rto_max(&self) -> Dur {
        Dur::from_millis(self.opts.rto_max_ms(&self.profile))
    }
    fn keepalive_time(&self) -> Dur {
        Dur::from_secs(self.opts.keepidle(&self.profile))
    }

    fn set_state(&mut self, new: TcpState, cause: Cause) {
        if new != self.state {
            self.rare.get_mut().transitions.push((self.state, new, cause));
            self.state = new;
            self.wake();
        }
    }

    /// `sk_state_change` and the like: a wake-up without a key, which reaches every waiter.
    fn wake(&mut self) {
        self.wakeup = PendingWake::All;
    }

    /// A keyed wake-up: `sk_data_ready` (sock_def_readable: IN|PRI|RDNORM|RDBAND) or
    /// `sk_write_space` (sk_stream_write_space: OUT|WRNORM|WRBAND). Only waiters interested
    /// in one of the key's events are woken (fs/eventpoll.c `ep_poll_callback`).
    fn wake_keyed(&mut self, key: PollMask) {
        self.wakeup = match self.wakeup {
            PendingWake::None => PendingWake::Keyed(key),
            PendingWake::Keyed(k) => PendingWake::Keyed(k | key),
            PendingWake::All => PendingWake::All,
        };
    }

    /// Data bytes queued and the sequence after the last one (FIN excluded).
    fn data_end(&self) -> u32 {
        self.write_seq.wrapping_sub(self.fin_queued as u32)
    }

    /// `sk_wmem_queued`: the truesize of every skb queued, [`SKB_OVERHEAD`] each
    /// (`tcp_stream_alloc_skb`, `tcp_skb_entail`, `tso_fragment`) plus its payload
    /// (`skb_copy_to_page_nocache`: page fragments count what they hold), less what
    /// `tcp_trim_head` took off a partly acknowledged skb.
    pub fn wmem_queued(&self) -> u32 {
        let len = self.sndq.len().min(u32::MAX as u64 / 2) as u32;
        let skbs = self.sndq.skb_count().saturating_add(u32::from(self.fin_queued && self.fin_unacked()));
        len.saturating_add(SKB_OVERHEAD.saturating_mul(skbs))
    }

    fn fin_unacked(&self) -> bool {
        crate::tcp::segment::seq_lt(self.snd_una, self.write_seq)
    }

    /// `sk_rmem_alloc`: the truesize of the queued skbs ([`rcvmem`]).
    fn rmem_alloc(&self) -> u32 {
        self.rcvq.rmem_alloc()
    }

    /// `tcp_win_from_space` at the connection's `scaling_ratio`.
    fn win_from_space(&self, space: u32) -> u32 {
        rcvmem::win_from_space(self.scaling_ratio, space)
    }

    /// `tcp_full_space`: the window the whole receive buffer holds.
    fn full_space(&self) -> u32 {
        self.win_from_space(self.rcvbuf)
    }

    /// `tcp_space`: the window the free receive buffer holds (0 when overcommitted).
    fn tcp_space(&self) -> u32 {
        self.win_from_space(self.rcvbuf.saturating_sub(self.rmem_alloc()))
    }

    /// `tcp_set_window_clamp`: a larger clamp lets `rcv_ssthresh` rise to the window last
    /// offered; a smaller one lowers it (`__tcp_adjust_rcv_ssthresh`, without memory
    /// pressure: to the clamp).
    fn set_window_clamp(&mut self, val: u32) {
        let new = val.max(sockopt::SOCK_MIN_RCVBUF / 2);
        if new == self.window_clamp {
            return;
        }
        let old = self.window_clamp;
        self.window_clamp = new;
        if new < old {
            self.rcv_ssthresh = self.rcv_ssthresh.min(new);
        } else {
            self.rcv_ssthresh = self.rcv_ssthresh.max(self.rcv_wnd.min(new));
        }
    }

    /// `__sk_stream_is_writeable(sk, 1)`.
    fn is_writeable(&self) -> bool {
        let q = self.wmem_queued();
        let space = self.sndbuf.saturating_sub(q);
        space >= q / 2 && q < self.sndbuf && self.outq_notsent().saturating_mul(2) < self.opts.notsent_lowat(&self.profile)
    }

    /// `sk_stream_memory_free` as sendmsg checks it (wake = 0).
    fn memory_free(&self) -> bool {
        self.wmem_queued() < self.sndbuf && self.outq_notsent() < self.opts.notsent_lowat(&self.profile)
    }

    /// `tcp_done`: CLOSE, both directions shut, timers stopped.
    fn tcp_done(&mut self, cause: Cause) {
        self.set_state(TcpState::Close, cause);
        self.shutdown = SHUTDOWN_MASK;
        self.rtx_at = Deadline::NONE;
        self.delack_at = Deadline::NONE;
        self.keepalive_at = Deadline::NONE;
        self.ack_pending = false;
        self.wake();
    }

    /// `tcp_done_with_error` / `tcp_write_err`: record the error, drop the write queue,
    /// close. The receive queue stays readable.
    fn done_with_error(&mut self, err: Errno, cause: Cause) {
        if !self.orphan {
            self.sk_err = Some(err);
        }
        self.purge_write_queue();
        self.tcp_done(cause);
    }

    fn purge_write_queue(&mut self) {
        self.sndq.purge();
        self.rtx_skbs.purge();
        self.clear_recovery();
        self.fin_queued = false;
        self.write_seq = self.snd_una;
        self.snd_nxt = if crate::tcp::segment::seq_gt(self.snd_nxt, self.snd_una) { self.snd_una } else { self.snd_nxt };
    }

    // ------------------------------------------------------------------ syscalls

    /// send() without flags: [`Conn::sendmsg`].
    pub fn send(&mut self, now: SimTime, data: SendData, out: &mut Vec<Segment>) -> Result<u32, Errno> {
        self.sendmsg(now, data, false, false, out)
    }

    /// sendmsg() (`tcp_sendmsg_locked`), non-blocking: the count queued, partial when the
    /// buffer fills, EAGAIN when nothing fits; the order of the error checks is Linux's.
    /// With MSG_MORE (`more`) the tail is not marked PSH and the push is corked (`tcp_push`).
    /// With MSG_EOR (`eor`) a write queued whole ends a record: its last skb takes no later
    /// data ("if (unlikely(flags & MSG_EOR)) TCP_SKB_CB(skb)->eor = 1" once no data is
    /// left; `tcp_skb_can_collapse_to`). A NULL buffer (`SendData::Null`) fails with EFAULT
    /// at the first copy, after the state checks and after waiting for memory (`do_error`:
    /// the new skb stays empty and `tcp_remove_empty_skb` unlinks it; nothing was copied, so
    /// `sk_stream_error` returns the EFAULT).
    pub fn sendmsg(&mut self, now: SimTime, data: SendData, more: bool, eor: bool, out: &mut Vec<Segment>) -> Result<u32, Errno> {
        // A Fast Open child writes before its handshake completes (`tcp_passive_fastopen`).
        if !matches!(self.state, TcpState::Established | TcpState::CloseWait) && !self.passive_fastopen() {
            // sk_stream_wait_connect
            if let Some(e) = self.sk_err.take() {
                return Err(e);
            }
            if !matches!(self.state, TcpState::SynSent | TcpState::SynRecv) {
                return Err(self.stream_error(Errno::EPIPE));
            }
            return Err(Errno::EAGAIN);
        }
        if self.sk_err.is_some() || self.shutdown & SEND_SHUTDOWN != 0 {
            return Err(self.stream_error(Errno::EPIPE));
        }
        let total = data.count();
        let fault = matches!(data, SendData::Null(_));
        let bytes: Option<Rc<[u8]>> = match data {
            SendData::Bytes(v) => Some(v.into()),
            SendData::Derived(_) | SendData::Null(_) => None,
        };
        let size_goal = self.size_goal();
        let mut copied = 0u32;
        while copied < total {
            let room = match self.sndq.unsent_tail_len(self.seq_off(self.snd_nxt)) {
                Some(len) if len < size_goal => size_goal - len,
                _ => {
                    // new_segment: only a new skb needs free memory.
                    if !self.memory_free() {
                        break;
                    }
                    self.slow_start_after_idle_check(now);
                    if !fault {
                        self.sndq.entail();
                    }
                    size_goal
                }
            };
            if fault {
                return Err(Errno::EFAULT);
            }
            let chunk = (total - copied).min(room);
            match &bytes {
                None => self.sndq.push_derived(chunk),
                Some(b) => self.sndq.push_bytes(b.clone(), copied, chunk),
            }
            if copied == 0 {
                // "if (!copied) TCP_SKB_CB(skb)->tcp_flags &= ~TCPHDR_PSH"
                self.sndq.set_tail_push(false);
            }
            // tcp_add_write_queue_tail: an skb that starts an empty write queue starts `Busy`.
            if self.snd_nxt == self.write_seq {
                self.chrono_start(now, crate::tcp::chrono::ChronoKind::Busy);
            }
            copied += chunk;
            self.write_seq = self.write_seq.wrapping_add(chunk);
            if copied == total || self.sndq.unsent_tail_len(self.seq_off(self.snd_nxt)).is_some_and(|l| l < size_goal) {
                continue;
            }
            // A full skb: a forced push sends what may go (TCP_NAGLE_PUSH), else an skb
            // that is the send head goes out alone (`tcp_push_one`).
            if self.forced_push() {
                self.mark_push();
                self.push_pending_frames(now, false, out);
            } else if self.sndq.tail_start() == Some(self.seq_off(self.snd_nxt)) {
                self.tcp_write_xmit(now, false, true, out);
            }
        }
        if copied < total {
            // wait_for_space: SOCK_NOSPACE, and what was copied is pushed, marked PSH
            // (`tcp_push` with MSG_MORE cleared).
            self.nospace = true;
            if copied > 0 {
                self.mark_push();
                self.push_pending_frames(now, false, out);
            }
        }
        if copied == 0 && total > 0 {
            return Err(Errno::EAGAIN);
        }
        if eor && copied == total && total > 0 {
            self.sndq.set_tail_eor();
        }
        // tcp_push: unless MSG_MORE (or a forced push), the tail skb is marked PSH; the push
        // is corked by MSG_MORE or TCP_CORK.
        if !more || self.forced_push() {
            self.mark_push();
        }
        self.push_pending_frames(now, more || self.opts.cork, out);
        Ok(copied)
    }

    /// `tcp_send_mss` → `tcp_xmit_size_goal` (tcp.c): how much `tcp_sendmsg_locked` puts in
    /// one skb. The device's GSO size less the headers (`sk_gso_max_size`), bounded by half
    /// the largest window the peer offered (`tcp_bound_to_half_wnd`), in whole MSS, at most
    /// `sk_gso_max_segs` of them and at least one.
    fn size_goal(&self) -> u32 {
        let mss = self.mss.max(1);
        let bounded = self.bound_to_half_wnd(crate::tcp::cc::GSO_MAX_SIZE as u32);
        let segs = (bounded / mss).min(self.profile.gso_max_segs);
        (segs * mss).max(mss)
    }

    /// `tcp_bound_to_half_wnd` (include/net/tcp.h, called by tcp_output.c `tcp_sync_mss` and
    /// `tcp_xmit_size_goal`): a packet no larger than half the largest window the peer offered
    /// (the whole of it when that is at most 536 bytes), so that even a peer whose window is
    /// near one MSS gets more than one segment in flight; no bound before any window was seen. Bites on loopback, where the MSS (65 483) exceeds half the first
    /// windows: `ss -i` shows `mss:32741` after a 65 483-byte SYN-ACK window.
    fn bound_to_half_wnd(&self, pktsize: u32) -> u32 {
        let cutoff = if self.max_window > u32::from(TCP_MSS_DEFAULT) { self.max_window >> 1 } else { self.max_window };
        if cutoff != 0 && pktsize > cutoff {
            cutoff.max(68 - self.tcp_header_len())
        } else {
            pktsize
        }
    }

    /// `tcp_sync_mss` after the peer's window grew past `max_window` (`tcp_ack_update_window`):
    /// the path's MSS (`tcp_mtu_to_mss`: the peer's clamp and ours, less the options every
    /// segment carries) bounded anew by half that window.
    pub(super) fn sync_mss(&mut self) {
        let opt_len = self.tcp_header_len() - 20;
        let path = u32::from(self.mss_clamp).min(u32::from(self.advmss) + opt_len);
        self.mss = self.bound_to_half_wnd(path.saturating_sub(opt_len).max(TCP_MIN_MSS));
    }

    /// `tp->tcp_header_len`: the TCP header with the options every segment carries.
    fn tcp_header_len(&self) -> u32 {
        20 + if self.ts_ok { 12 } else { 0 }
    }

    /// The send queue's stream offset of sequence number `seq` (at or after `snd_una`).
    fn seq_off(&self, seq: u32) -> u64 {
        self.sndq.head_off() + u64::from(seq.wrapping_sub(self.snd_una))
    }

    /// `forced_push` (tcp.c): more than half the largest window the peer offered was
    /// written since the last PSH mark.
    fn forced_push(&self) -> bool {
        crate::tcp::segment::seq_gt(self.write_seq, self.pushed_seq.wrapping_add(self.max_window >> 1))
    }

    /// `tcp_mark_push`: the tail skb carries PSH; `pushed_seq` moves to `write_seq`.
    fn mark_push(&mut self) {
        self.sndq.set_tail_push(true);
        self.pushed_seq = self.write_seq;
    }

    /// `sk_stream_error`: an EPIPE is replaced by a pending error, which is consumed.
    fn stream_error(&mut self, err: Errno) -> Errno {
        if err == Errno::EPIPE {
            if let Some(e) = self.sk_err.take() {
                return e;
            }
        }
        err
    }

    /// recv() (`tcp_recvmsg_locked`), non-blocking. Data wins; then SOCK_DONE → EOF; then
    /// the pending error (consumed, even with `peek`); RCV_SHUTDOWN → EOF; CLOSE → ENOTCONN;
    /// else EAGAIN. Reading frees window and may send a window update (`tcp_cleanup_rbuf`).
    pub fn recv(&mut self, now: SimTime, len: u32, peek: bool, out: &mut Vec<Segment>) -> Result<Vec<u8>, Errno> {
        let mut data = Vec::new();
        self.recv_into(now, len, peek, RecvDest::Copy(&mut data), out)?;
        Ok(data)
    }

    /// recv() into `dest`: the count read, 0 at end of stream. A copy that faults reads
    /// nothing and fails with EFAULT; the read still ends in `tcp_cleanup_rbuf` (with a
    /// negative `copied`, so only an owed full-sized ACK is sent): `tcp_recvmsg_locked`,
    /// "if (!copied) copied = -EFAULT; break;".
    pub fn recv_into(&mut self, now: SimTime, len: u32, peek: bool, dest: RecvDest, out: &mut Vec<Segment>) -> Result<u32, Errno> {
        if self.state == TcpState::Listen {
            return Err(Errno::ENOTCONN);
        }
        if self.rcvq.avail() > 0 && len > 0 {
            let copy = match dest {
                RecvDest::Copy(v) => Some(v),
                RecvDest::Discard => None,
                RecvDest::Fault => {
                    self.cleanup_rbuf(now, 0, out);
                    return Err(Errno::EFAULT);
                }
            };
            let n = self.rcvq.read_into(len, peek, copy);
            if !peek {
                self.copied += u64::from(n);
                self.rcv_space_adjust(now);
                self.cleanup_rbuf(now, n, out);
            }
            return Ok(n);
        }
        if len == 0 || self.done {
            return Ok(0);
        }
        if let Some(e) = self.sk_err.take() {
            return Err(e);
        }
        if self.shutdown & RCV_SHUTDOWN != 0 {
            return Ok(0);
        }
        if self.state == TcpState::Close {
            return Err(Errno::ENOTCONN);
        }
        Err(Errno::EAGAIN)
    }

    /// shutdown() (`inet_shutdown` → `tcp_shutdown`).
    pub fn shutdown(&mut self, now: SimTime, how: ShutHow, out: &mut Vec<Segment>) -> Result<(), Errno> {
        let bits = match how {
            ShutHow::SHUT_RD => RCV_SHUTDOWN,
            ShutHow::SHUT_WR => SEND_SHUTDOWN,
            ShutHow::SHUT_RDWR => SHUTDOWN_MASK,
        };
        match self.state {
            TcpState::Close | TcpState::TimeWait => {
                self.shutdown |= bits;
                self.wake();
                Err(Errno::ENOTCONN)
            }
            TcpState::Listen => Ok(()),
            TcpState::SynSent => {
                self.disconnect(now, out);
                Ok(())
            }
            _ => {
                self.shutdown |= bits;
                if bits & SEND_SHUTDOWN != 0
                    && matches!(self.state, TcpState::Established | TcpState::SynRecv | TcpState::CloseWait)
                    && self.close_state()
                {
                    self.send_fin(now, out);
                }
                self.wake();
                Ok(())
            }
        }
    }

    /// `tcp_close_state`: the state after our FIN is queued; true if a FIN must be sent.
    fn close_state(&mut self) -> bool {
        let (next, fin) = match self.state {
            TcpState::Established | TcpState::SynRecv => (TcpState::FinWait1, true),
            TcpState::CloseWait => (TcpState::LastAck, true),
            TcpState::SynSent | TcpState::Listen | TcpState::Close => (TcpState::Close, false),
            TcpState::TimeWait => (TcpState::Close, false),
            s => (s, false),
        };
        let cause = if next == TcpState::Close { Cause::CloseUnconnected } else { Cause::Close };
        self.set_state(next, cause);
        fin
    }

    /// `tcp_disconnect` (SO_LINGER {1, 0}, shutdown in SYN_SENT): RST where
    /// `tcp_need_reset`, CLOSE, ECONNRESET.
    fn disconnect(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let old = self.state;
        let need_reset = matches!(
            old,
            TcpState::Established | TcpState::CloseWait | TcpState::FinWait1 | TcpState::FinWait2 | TcpState::SynRecv
        ) || (matches!(old, TcpState::Closing | TcpState::LastAck) && self.snd_nxt != self.write_seq);
        if need_reset {
            out.push(self.active_reset(now));
        }
        self.set_state(TcpState::Close, Cause::Abort);
        self.purge_write_queue();
        self.rcvq.purge();
        self.rtx_at = Deadline::NONE;
        self.delack_at = Deadline::NONE;
        self.keepalive_at = Deadline::NONE;
        self.ack_pending = false;
        if (need_reset || old == TcpState::SynSent) && !self.orphan {
            self.sk_err = Some(Errno::ECONNRESET);
            self.wake();
        }
    }

    /// close() (`__tcp_close`): unread data → RST; SO_LINGER {1, 0} → `tcp_disconnect`;
    /// else a FIN. The connection is then orphaned.
    pub fn close(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        self.shutdown = SHUTDOWN_MASK;
        self.orphan = true;
        if matches!(self.state, TcpState::Close | TcpState::TimeWait) {
            // After tcp_time_wait the fd's socket is already CLOSE; the timewait socket
            // lives on by itself.
            return;
        }
        let unread = self.rcvq.avail() > 0;
        self.rcvq.purge();
        if unread {
            // RFC 2525 §2.17; LINUX_MIB_TCPABORTONCLOSE.
            self.count(crate::tcp::mib::Mib::TcpAbortOnClose);
            self.set_state(TcpState::Close, Cause::Abort);
            out.push(self.active_reset(now));
            self.tcp_done(Cause::Abort);
            return;
        }
        if self.opts.linger == Some(0) {
            self.count(crate::tcp::mib::Mib::TcpAbortOnData);
            self.disconnect(now, out);
            return;
        }
        if self.close_state() {
            self.send_fin(now, out);
        }
        match self.state {
            TcpState::Close => self.tcp_done(Cause::CloseUnconnected),
            TcpState::FinWait2 => self.keepalive_at = Deadline::at(self.timer_at(now, self.fin_time())),
            _ => {}
        }
    }

    /// `tcp_rcv_space_adjust` (with `tcp_moderate_rcvbuf`, unless SO_RCVBUF locked the
    /// buffer): once per receiver RTT, size the buffer for twice what the application read
    /// in that RTT plus growth (`tcp_space_from_win` at `scaling_ratio`), up to
    /// `tcp_rmem[2]`; the window clamp follows (`tcp_win_from_space`).
    fn rcv_space_adjust(&mut self, now: SimTime) {
        let rtt_us = (self.rcv_rtt_us8 >> 3) as u64;
        if rtt_us == 0 || now.since(self.rcvq_time).as_micros() < rtt_us {
            return;
        }
        let copied = self.copied - self.rcvq_copied;
        if copied > self.rcvq_space as u64 {
            if self.profile.tcp_moderate_rcvbuf && !self.rcvbuf_locked {
                let space = self.rcvq_space.max(1) as u64;
                let mut rcvwin = (copied << 1) + 16 * u64::from(self.advmss);
                let grow = rcvwin * (copied - space) / space;
                rcvwin += grow << 1;
                let rcvwin = rcvwin.min(u64::from(u32::MAX)) as u32;
                let rcvbuf = rcvmem::space_from_win(self.scaling_ratio, rcvwin).min(self.profile.tcp_rmem[2]);
                if rcvbuf > self.rcvbuf {
                    self.rcvbuf = rcvbuf;
                    self.window_clamp = self.win_from_space(rcvbuf).min(65535u32 << self.rcv_wscale);
                }
            }
            self.rcvq_space = copied.min(u32::MAX as u64) as u32;
        }
        self.rcvq_copied = self.copied;
        self.rcvq_time = now;
    }

    fn fin_time(&self) -> Dur {
        crate::tcp::timeouts::fin_time(Dur::from_secs(self.profile.tcp_fin_timeout_s), self.rto)
    }

    /// `sock_error()` for SO_ERROR: the hard error, else the soft one; both consumed.
    pub fn take_error(&mut self) -> Option<Errno> {
        self.sk_err.take().or_else(|| self.sk_err_soft.take())
    }

    /// Records a soft error (an ICMP error in a synchronized state, `tcp_v4_err`).
    pub fn set_soft_error(&mut self, err: Errno) {
        self.sk_err_soft = Some(err);
    }

    /// setsockopt() on a live socket: validates, records, and applies what Linux applies at
    /// once (keepalive re-arming, `keepalive_time_set`; buffer sizes; TCP_NODELAY pushes what
    /// Nagle held, `tcp_push_pending_frames`).
    pub fn set_opt(&mut self, now: SimTime, opt: SockOpt, value: &OptValue, out: &mut Vec<Segment>) -> Result<(), Errno> {
        Rc::make_mut(&mut self.opts).set(opt, value)?;
        match opt {
            // __tcp_sock_set_nodelay and __tcp_sock_set_cork: TCP_NAGLE_PUSH sends what
            // Nagle or a cork held.
            SockOpt::TCP_NODELAY if self.opts.nodelay => self.push_pending_frames(now, false, out),
            SockOpt::TCP_CORK if !self.opts.cork => self.push_pending_frames(now, false, out),
            SockOpt::SO_KEEPALIVE => self.keepalive_opt_changed(now, true),
            SockOpt::TCP_KEEPIDLE => self.keepalive_opt_changed(now, false),
            SockOpt::SO_SNDBUF => {
                self.sndbuf = self.opts.effective_sndbuf(&self.profile);
                self.sndbuf_locked = true;
            }
            SockOpt::SO_RCVBUF => {
                self.rcvbuf = self.opts.effective_rcvbuf(&self.profile);
                self.rcvbuf_locked = true;
            }
            SockOpt::TCP_CONGESTION => self.reinit_congestion_control(now),
            _ => {}
        }
        Ok(())
    }

    /// getsockopt() of the values the connection holds: the live (autotuned) buffer sizes,
    /// the pending error without consuming it (use [`Conn::take_error`] for SO_ERROR's read),
    /// the state for TCP_INFO; the rest as [`SockOpts::get`].
    pub fn get_opt(&self, opt: SockOpt) -> OptValue {
        match opt {
            SockOpt::SO_ERROR => OptValue::Int(self.sk_err.or(self.sk_err_soft).map_or(0, |e| e.code() as i64)),
            SockOpt::SO_SNDBUF => OptValue::Int(self.sndbuf as i64),
            SockOpt::SO_RCVBUF => OptValue::Int(self.rcvbuf as i64),
            SockOpt::TCP_INFO => OptValue::Int(self.state.linux_number() as i64),
            // do_tcp_getsockopt: `mss_cache` once connecting (in CLOSE, `user_mss` if set).
            SockOpt::TCP_MAXSEG if self.state != TcpState::Close || self.opts.user_mss == 0 => OptValue::Int(i64::from(self.mss)),
            _ => self.opts.get(opt, &self.profile),
        }
    }

    /// Everything `tcp_poll` reads. A TIME_WAIT connection shows what Linux's fd socket
    /// shows after `tcp_time_wait`: CLOSE.
    pub fn view(&self) -> SockView {
        let state = if self.state == TcpState::TimeWait { TcpState::Close } else { self.state };
        let wmem = self.wmem_queued();
        SockView {
            state: Some(state),
            defer_connect: self.defer_connect(),
            fastopen_rsk: self.passive_fastopen(),
            shutdown: self.shutdown,
            done: self.done,
            err: self.sk_err,
            err_soft: self.sk_err_soft,
            rcv_avail: self.rcvq.avail(),
            rcvlowat: self.opts.rcvlowat.max(1),
            rmem_pressure: self.rmem_alloc() as u64 * 8 > self.rcvbuf as u64 * 7,
            rcv_wnd_small: self.receive_window() <= self.rcv_mss,
            wmem_queued: wmem,
            sndbuf: self.sndbuf,
            notsent: self.outq_notsent(),
            notsent_lowat: self.opts.notsent_lowat(&self.profile),
            urg_valid: false,
            accept_queue_len: 0,
            snd_space: self.sndbuf.saturating_sub(wmem),
            snd_used: self.sndq.len().min(u32::MAX as u64) as u32,
        }
    }

    pub fn state(&self) -> TcpState {
        self.state
    }

    /// `tcp_get_info`'s `tcpi_options`: TCPI_OPT_TIMESTAMPS, _SACK, _WSCALE as negotiated,
    /// TCPI_OPT_SYN_DATA when the SYN-ACK acknowledged SYN data (`tp->syn_data_acked`); the
    /// model has no ECN, µs timestamps nor Fast Open child.
    fn tcpi_options(&self) -> u8 {
        u8::from(self.ts_ok) | u8::from(self.sack_ok) << 1 | u8::from(self.wscale_ok) << 2 | u8::from(self.syn_data_acked()) << 5
    }

    pub fn info(&self) -> TcpInfo {
        TcpInfo {
            state: self.state,
            rto_us: self.rto.as_micros(),
            backoff: self.rare.get().backoff,
            probes: self.rare.get().probes_out,
            retransmits: self.rare.get().retransmits,
            unacked: self.packets_out(),
            ca_state: self.ca_state.linux_number(),
            sacked: self.rtx_skbs.sacked_out(),
            lost: self.rtx_skbs.lost_out(),
            retrans: self.rtx_skbs.retrans_out(),
            reordering: self.reordering(),
            reord_seen: self.loss.as_ref().map_or(0, |l| l.rack.reord_seen),
            snd_cwnd: self.cwnd.cwnd,
            snd_ssthresh: self.cwnd.ssthresh,
            rtt_us: self.rtt.srtt_us(),
            rttvar_us: self.rtt.rttvar_us,
            total_retrans: self.rare.get().total_retrans,
            snd_mss: self.mss,
            rcv_mss: self.rcv_mss,
            advmss: u32::from(self.advmss),
            snd_wscale: self.snd_wscale,
            options: self.tcpi_options(),
            rcv_wscale: self.rcv_wscale,
            times: None,
        }
    }

    /// getsockopt(TCP_INFO) at `now`: [`Conn::info`] with the times since events and the
    /// chronographs (`tcp_get_info`, `tcp_get_info_chrono_stats`), counted in jiffies.
    pub fn info_at(&self, now: SimTime) -> TcpInfo {
        let hz = self.profile.hz;
        let j = |t: SimTime| self.ca_clock(t).jiffies;
        let ms = |since: u32| u64::from(j(now).wrapping_sub(since)) * 1000 / u64::from(hz.max(1));
        let chrono = self.chrono.as_deref().map(|c| c.stats(j(now), hz)).unwrap_or_default();
        TcpInfo {
            times: Some(InfoTimes {
                last_data_sent_ms: ms(self.lsndtime),
                last_data_recv_ms: ms(j(self.lrcvtime)),
                last_ack_recv_ms: ms(j(self.rcv_tstamp)),
                busy_time_us: chrono.busy_time_us,
                rwnd_limited_us: chrono.rwnd_limited_us,
                sndbuf_limited_us: chrono.sndbuf_limited_us,
            }),
            ..self.info()
        }
    }

    /// `tcp_chrono_start` (allocating the chronographs the first time).
    fn chrono_start(&mut self, now: SimTime, kind: crate::tcp::chrono::ChronoKind) {
        let j = self.ca_clock(now).jiffies;
        self.chrono.get_or_insert_with(Default::default).start(j, kind);
    }

    /// `tcp_chrono_stop`; `tcp_rtx_and_write_queues_empty` is `snd_una == write_seq` (a
    /// queued FIN counts).
    fn chrono_stop(&mut self, now: SimTime, kind: crate::tcp::chrono::ChronoKind) {
        let (j, empty) = (self.ca_clock(now).jiffies, self.snd_una == self.write_seq);
        if let Some(c) = self.chrono.as_deref_mut() {
            c.stop(j, kind, empty);
        }
    }

    /// The wake-ups since the last call, as one: `None` if there were none, the empty mask
    /// if any carried no key (everyone wakes), else the union of their keys.
    pub fn take_wakeup(&mut self) -> Option<PollMask> {
        match std::mem::replace(&mut self.wakeup, PendingWake::None) {
            PendingWake::None => None,
            PendingWake::All => Some(PollMask::EMPTY),
            PendingWake::Keyed(k) => Some(k),
        }
    }

    /// Every state change since the last call, with its cause.
    pub fn take_transitions(&mut self) -> Vec<(TcpState, TcpState, Cause)> {
        self.rare.take(|r| &mut r.transitions)
    }

    /// The counted events since the last call, for the host's `nstat` counters.
    pub fn take_mib(&mut self) -> crate::tcp::mib::MibCounts {
        self.rare.take(|r| &mut r.mib)
    }

    /// Frees the cold state's box if everything in it is back at its default ([`rare`]).
    /// The host calls it after every entry into the connection, once it collected the
    /// transitions and counters, so that an idle connection holds no box.
    pub fn shrink(&mut self) {
        self.rare.shrink();
    }

    /// Whether the cold state's box is held: false for an idle connection after
    /// [`Conn::shrink`].
    pub fn holds_cold_state(&self) -> bool {
        self.rare.is_held()
    }

    pub(super) fn count(&mut self, m: crate::tcp::mib::Mib) {
        self.rare.get_mut().mib.add(m);
    }

    /// Orphaned and CLOSE: the host may free it.
    pub fn is_finished(&self) -> bool {
        self.orphan && self.state == TcpState::Close
    }

    pub fn is_orphan(&self) -> bool {
        self.orphan
    }

    /// Whether the host's egress queue now drops every packet (see `dev_refuses`).
    pub fn set_dev_refuses(&mut self, on: bool) {
        self.dev_refuses = on;
    }

    pub fn local(&self) -> SockAddr {
        self.local
    }
    pub fn remote(&self) -> SockAddr {
        self.remote
    }
    /// Stream id of the bytes this side sends (derived payload).
    pub fn tx_stream(&self) -> u64 {
        self.tx_stream
    }
    /// Stream id of the derived bytes the peer sends (its `tx_stream`, from its ISN).
    pub fn rx_stream(&self) -> u64 {
        stream_id(self.remote, self.local, self.irs)
    }
    /// `SIOCOUTQ`: `write_seq - snd_una`.
    pub fn outq(&self) -> u32 {
        if matches!(self.state, TcpState::SynSent | TcpState::SynRecv) {
            return 0;
        }
        self.write_seq.wrapping_sub(self.snd_una)
    }
    /// `SIOCOUTQNSD`: `write_seq - snd_nxt` (0 during the handshake).
    pub fn outq_notsent(&self) -> u32 {
        if matches!(self.state, TcpState::SynSent | TcpState::SynRecv) {
            return 0;
        }
        let d = self.write_seq.wrapping_sub(self.snd_nxt);
        if (d as i32) < 0 {
            0
        } else {
            d
        }
    }
    /// `SIOCINQ` / FIONREAD: in-order bytes not yet read.
    pub fn inq(&self) -> u32 {
        self.rcvq.avail()
    }

    /// What recvmsg() puts in its `TCP_CM_INQ` control message when TCP_INQ is on, `None`
    /// when it is off (`tcp_recvmsg`: `tp->recvmsg_inq` → `tcp_inq_hint`): `rcv_nxt -
    /// copied_seq`, which counts a received FIN as one byte, and 1 after a FIN even then, so
    /// that the reader goes on to read the EOF.
    pub fn inq_hint(&self) -> Option<u32> {
        if !self.opts.recvmsg_inq {
            return None;
        }
        let copied_seq = self.irs.wrapping_add(1).wrapping_add(self.copied as u32);
        let inq = self.rcv_nxt.wrapping_sub(copied_seq);
        Some(if inq == 0 && self.done { 1 } else { inq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_matches_linux_syn_windows() {
        let p = KernelProfile::linux_6_18();
        // Active open: mss 1460 → 64240 (44 × 1460), the window Linux SYNs carry.
        assert_eq!(select_initial_window(&p, 131072, false, 1460, true).0, 64240);
        // Passive open with timestamps: mss 1448 → 65160.
        assert_eq!(select_initial_window(&p, 131072, false, 1448, true).0, 65160);
        // Scale from tcp_rmem[2]: 32 MB → 10 on 6.18, 6 MB → 7 on 6.1.
        assert_eq!(select_initial_window(&p, 131072, false, 1460, true).1, 10);
        let old = KernelProfile::builtin("linux-6.1").unwrap();
        assert_eq!(select_initial_window(&old, 131072, false, 1460, true).1, 7);
        assert_eq!(select_initial_window(&p, 131072, false, 1460, false).1, 0);
        // SO_RCVBUF locks the clamp to the buffer: an 8 KB buffer needs no scaling.
        assert_eq!(select_initial_window(&p, 8192, true, 1448, true), (2896, 0));
    }
}
