//! The system under test's settings where the trace shows them (no observation log, or
//! beside one): each inferred setting says what in the trace showed it, and `--set` overrides
//! it ([`super::settings`]).
//!
//! - Timestamps, SACK and window scaling off, and a TCP_MAXSEG below the link's MSS, from the
//!   options of the SUT's SYN or SYN-ACK (`tcp_syn_options`, `tcp_synack_options`,
//!   tcp_output.c).
//! - A locked SO_RCVBUF from the SYN's window and scale: `tcp_select_initial_window`
//!   (tcp_output.c) sizes them from `sk_rcvbuf` (SO_RCVBUF doubled, `sk_setsockopt`), so the
//!   values of SO_RCVBUF that give the captured pair are found by trying them against the
//!   model's own `select_initial_window`; the smallest is used and the range reported.
//! - Keepalive: `tcp_keepalive_timer` (tcp_timer.c) sends a probe (`tcp_write_wakeup` →
//!   `tcp_xmit_probe_skb`: no data, `snd_una - 1`) once nothing was received for
//!   `keepalive_time` (`keepalive_time_elapsed`: since `lrcvtime` / `rcv_tstamp`), the next
//!   `keepalive_intvl` after an unanswered one, and a RST after `keepalive_probes` unanswered.
//!   So TCP_KEEPIDLE is the silence before a probe, TCP_KEEPINTVL the gap between two
//!   unanswered probes, TCP_KEEPCNT the unanswered probes before the RST (whole seconds).
//! - TCP_USER_TIMEOUT: `tcp_write_timeout` (tcp_timer.c) gives up without a word (no RST)
//!   once `retransmits_timed_out` finds the user timeout passed since `retrans_stamp`, the
//!   last timer clamped to it (`tcp_clamp_rto_to_user_timeout`). `tcp_retransmit_skb`
//!   (tcp_output.c) sets `retrans_stamp` to the skb's time after `__tcp_retransmit_skb`
//!   stamped it: the *first retransmission* (by the RTO timer: a tail loss probe leaves it
//!   unset). A retransmission series that stops while the
//!   capture goes on past the next backoff, or a bare RST answering the peer later (the
//!   socket is gone), puts the timeout between the last retransmission and that point; the
//!   middle is used (any value in between gives the same trace).
//! - The listen backlog: `tcp_conn_request` (tcp_input.c) drops a SYN while the accept queue
//!   is full, `sk_acceptq_is_full`: more than `sk_max_ack_backlog` children. A SYN dropped
//!   when N handshakes had completed (and none of them sent anything: the listener never
//!   accepted them) gives a backlog of N − 1 and a listener that never accepts.

use super::settings::Setting;
use super::split::Connection;
use super::Side;
use crate::pcap::CapturedSegment;
use crate::tcp::conn::select_initial_window;
use crate::tcp::profile::KernelProfile;
use crate::tcp::segment::{seq_gt, Flags, Segment};
use crate::tcp::uapi::SockOpt;
use crate::addr::SockAddr;

/// The MSS of an Ethernet (veth) link: 1500 − 40.
const LINK_MSS: u16 = 1460;
/// `TCPOLEN_TSTAMP_ALIGNED`: what the timestamp option takes from each segment's payload.
const TS_ALIGNED: u32 = 12;
/// `SOCK_MIN_RCVBUF` (include/net/sock.h).
const SOCK_MIN_RCVBUF: u32 = 2048 + 256;

/// What the trace shows of one side's settings.
#[derive(Clone, Debug, Default)]
pub struct Shown {
    pub settings: Vec<Setting>,
    /// Listeners (SUT ports) that never accepted a connection.
    pub never_accepts: Vec<SockAddr>,
}

/// One connection's segments with their capture times.
type Segs<'a> = Vec<(u64, &'a Segment)>;

fn segs<'a>(packets: &'a [CapturedSegment], c: &Connection) -> Segs<'a> {
    c.packets.iter().map(|&i| (packets[i].t_ns, &packets[i].seg)).collect()
}

fn is_syn(s: &Segment) -> bool {
    s.flags.contains(Flags::SYN)
}

/// Everything the capture shows of `side`'s settings on `conns`, the first connection that
/// shows each setting deciding it. `end_ns` is the capture's last packet.
pub fn infer(packets: &[CapturedSegment], conns: &[&Connection], side: Side, profile: &KernelProfile, end_ns: u64) -> Shown {
    let mut shown = Shown::default();
    let mut add = |s: Option<Setting>| {
        if let Some(s) = s {
            if !shown.settings.iter().any(|o| o.key == s.key) {
                shown.settings.push(s);
            }
        }
    };
    for c in conns {
        let (sut, peer) = c.endpoints(side);
        let segs = segs(packets, c);
        for s in syn_options(&segs, sut, side, profile) {
            add(Some(s));
        }
        for s in keepalive(&segs, peer) {
            add(Some(s));
        }
        add(user_timeout(&segs, sut, peer, profile, end_ns));
    }
    if side == Side::Server {
        let (backlog, never) = backlog(packets, conns);
        for s in backlog {
            add(Some(s));
        }
        shown.never_accepts = never;
    }
    shown
}

/// Options off, a lowered MSS and a locked SO_RCVBUF, from the SUT's SYN or SYN-ACK.
fn syn_options(segs: &Segs, sut: SockAddr, side: Side, profile: &KernelProfile) -> Vec<Setting> {
    let Some((_, syn)) = segs.iter().find(|(_, s)| s.src == sut && is_syn(s)) else { return Vec::new() };
    let peer_syn = segs.iter().find(|(_, s)| s.src != sut && is_syn(s)).map(|(_, s)| &s.options);
    // A SYN-ACK carries an option only when the SYN offered it.
    let offered = |has: fn(&crate::tcp::segment::TcpOptions) -> bool| side == Side::Client || peer_syn.is_some_and(has);
    let o = &syn.options;
    let mut out = Vec::new();
    let off = |field: &str, what: &str| Setting::inferred_sysctl(field, serde_json::json!(false), format!("no {what} option in the {}", syn_name(side)));
    if o.timestamps.is_none() && offered(|p| p.timestamps.is_some()) {
        out.push(off("tcp_timestamps", "timestamp"));
    }
    if !o.sack_permitted && offered(|p| p.sack_permitted) {
        out.push(off("tcp_sack", "SACK-permitted"));
    }
    if o.wscale.is_none() && offered(|p| p.wscale.is_some()) {
        out.push(off("tcp_window_scaling", "window-scale"));
    }
    let mss = o.mss.unwrap_or(LINK_MSS);
    if mss < LINK_MSS {
        out.push(Setting::inferred(SockOpt::TCP_MAXSEG, i64::from(mss), format!("MSS {mss} in the {}", syn_name(side))));
    }
    out.extend(rcvbuf(syn, mss, profile, side));
    out
}

fn syn_name(side: Side) -> &'static str {
    match side {
        Side::Client => "SYN",
        Side::Server => "SYN-ACK",
    }
}

/// The SO_RCVBUF values that make `tcp_select_initial_window` offer the SYN's window and
/// scale, when the default buffer does not.
fn rcvbuf(syn: &Segment, mss: u16, profile: &KernelProfile, side: Side) -> Option<Setting> {
    let payload = u32::from(mss) - if syn.options.timestamps.is_some() { TS_ALIGNED } else { 0 };
    let ws_ok = syn.options.wscale.is_some();
    let seen = (u32::from(syn.window), syn.options.wscale.unwrap_or(0));
    if select_initial_window(profile, profile.tcp_rmem[1], false, payload, ws_ok) == seen {
        return None;
    }
    let effective = |v: u32| v.min(profile.rmem_max).saturating_mul(2).max(SOCK_MIN_RCVBUF);
    let fits: Vec<u32> = (1..=profile.rmem_max).filter(|&v| select_initial_window(profile, effective(v), true, payload, ws_ok) == seen).collect();
    let (&lo, &hi) = (fits.first()?, fits.last()?);
    let range = if lo == hi { format!("{lo}") } else { format!("any of {lo}..={hi}") };
    let why = format!("window {} with scale {} in the {} ({range})", seen.0, seen.1, syn_name(side));
    Some(Setting::inferred(SockOpt::SO_RCVBUF, i64::from(lo), why))
}


/// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT (with SO_KEEPALIVE) from the SUT's keepalive
/// probes: empty segments at `snd_una - 1` while the peer's window is open (at a closed
/// window the same segment is a zero-window probe).
fn keepalive(segs: &Segs, peer: SockAddr) -> Vec<Setting> {
    let secs = |ns: u64| ((ns + 500_000_000) / 1_000_000_000) as i64;
    let (mut snd_una, mut peer_wnd) = (None::<u32>, 0u16);
    let mut last_heard: Option<u64> = None;
    // The previous probe, if nothing was heard since.
    let mut unanswered: Option<(u64, u32)> = None;
    let (mut idle, mut intvl, mut cnt) = (None, None, None);
    for &(t, s) in segs {
        if s.src == peer {
            if s.flags.contains(Flags::ACK) {
                snd_una = Some(s.ack);
            }
            peer_wnd = s.window;
            last_heard = Some(t);
            unanswered = None;
            continue;
        }
        let probe = s.payload.is_empty()
            && !s.flags.intersects(Flags::SYN | Flags::FIN | Flags::RST)
            && peer_wnd > 0
            && snd_una.is_some_and(|una| s.seq == una.wrapping_sub(1));
        if probe {
            match unanswered {
                None => {
                    idle = idle.or(last_heard.map(|h| (t - h, secs(t - h))));
                    unanswered = Some((t, 1));
                }
                Some((prev, n)) => {
                    intvl = intvl.or(Some((t - prev, secs(t - prev))));
                    unanswered = Some((t, n + 1));
                }
            }
        } else if s.flags.contains(Flags::RST) {
            cnt = cnt.or(unanswered.map(|(_, n)| n));
        }
    }
    let Some((gap, idle_s)) = idle.filter(|&(_, s)| s >= 1) else { return Vec::new() };
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut out = vec![
        Setting::inferred(SockOpt::SO_KEEPALIVE, 1, "keepalive probes (empty, at snd_una − 1)".into()),
        Setting::inferred(SockOpt::TCP_KEEPIDLE, idle_s, format!("the first probe {:.1} ms after the last segment received", ms(gap))),
    ];
    if let Some((gap, s)) = intvl.filter(|&(_, s)| s >= 1) {
        out.push(Setting::inferred(SockOpt::TCP_KEEPINTVL, s, format!("{:.1} ms between two unanswered probes", ms(gap))));
    }
    if let Some(n) = cnt {
        out.push(Setting::inferred(SockOpt::TCP_KEEPCNT, i64::from(n), format!("a RST after {n} unanswered probes")));
    }
    out
}

/// TCP_USER_TIMEOUT from a retransmission series that stops, unacknowledged, while the
/// capture goes on past when the next backoff would have sent again.
fn user_timeout(segs: &Segs, sut: SockAddr, peer: SockAddr, profile: &KernelProfile, end_ns: u64) -> Option<Setting> {
    // The SUT's last segment that carries sequence space, and every send of its seq (a RST
    // may follow: the peer's later segments reach a socket that is gone).
    let sent = |s: &Segment| s.src == sut && !s.flags.contains(Flags::RST) && (!s.payload.is_empty() || s.flags.intersects(Flags::SYN | Flags::FIN));
    let &(_, last) = segs.iter().rev().find(|(_, s)| sent(s))?;
    let times: Vec<u64> = segs.iter().filter(|(_, s)| sent(s) && s.seq == last.seq).map(|(t, _)| *t).collect();
    let acked = segs.iter().any(|(_, s)| s.src == peer && s.flags.contains(Flags::ACK) && seq_gt(s.ack, last.seq));
    let [.., prev, tk] = times[..] else { return None };
    if acked || times.len() < 3 {
        return None;
    }
    // retrans_stamp: the first retransmission the RTO timer made. A tail loss probe
    // (`tcp_send_loss_probe` → `__tcp_retransmit_skb`) leaves it unset: backoff never
    // shortens the gap, so a first retransmission followed sooner than it followed the
    // original is the probe, and the next one the first RTO.
    let probe = times.len() > 3 && times[2] - times[1] < (times[1] - times[0]) / 2;
    let t0 = times[if probe { 2 } else { 1 }];
    let rto_max = profile.tcp_rto_max_ms * 1_000_000;
    let next = tk + (2 * (tk - prev)).min(rto_max);
    // A bare RST answering the peer after the series: the socket was gone by then
    // (`tcp_v4_send_reset` for a segment no socket takes).
    let gone = segs.iter().find(|(t, s)| *t > tk && s.src == sut && s.flags.contains(Flags::RST) && !s.flags.contains(Flags::ACK)).map(|(t, _)| *t);
    let stop = match gone {
        Some(t) => t.min(next),
        None if end_ns >= next => next,
        None => return None,
    };
    let (lo, hi) = ((tk - t0) / 1_000_000, (stop - t0) / 1_000_000);
    let why = format!(
        "{} retransmissions of seq {}, the last {lo} ms after the first one, the socket gone by {hi} ms (no retransmission or a RST) (any of {}..={hi} ms; or tcp_retries2)",
        times.len() - 1,
        last.seq,
        lo + 1
    );
    Some(Setting::inferred(SockOpt::TCP_USER_TIMEOUT, ((lo + hi) / 2) as i64, why))
}

/// The backlog of each listener whose SYNs began to be dropped with its accept queue full,
/// and those listeners (they never accepted: their children sent nothing of their own).
fn backlog(packets: &[CapturedSegment], conns: &[&Connection]) -> (Vec<Setting>, Vec<SockAddr>) {
    let mut out = Vec::new();
    let mut never = Vec::new();
    let mut listeners: Vec<SockAddr> = conns.iter().map(|c| c.server).collect();
    listeners.sort();
    listeners.dedup();
    for l in listeners {
        // Each connection: its first SYN's time, when its handshake completed (if it did),
        // whether its SYN went unanswered, whether the server sent data or a FIN.
        let mut seen: Vec<(u64, Option<u64>, bool, bool)> = Vec::new();
        for c in conns.iter().filter(|c| c.server == l) {
            let segs = segs(packets, c);
            let Some(&(syn_t, _)) = segs.iter().find(|(_, s)| s.src == c.client && is_syn(s)) else { continue };
            let synack = segs.iter().position(|(_, s)| s.src == l && is_syn(s));
            let done = synack.and_then(|k| segs[k..].iter().find(|(_, s)| s.src == c.client && !is_syn(s) && s.flags.contains(Flags::ACK)).map(|(t, _)| *t));
            let spoke = segs.iter().any(|(_, s)| s.src == l && (!s.payload.is_empty() || s.flags.intersects(Flags::FIN | Flags::RST)));
            seen.push((syn_t, done, synack.is_none(), spoke));
        }
        let Some(&(dropped_t, ..)) = seen.iter().find(|c| c.2) else { continue };
        let queued: Vec<_> = seen.iter().filter(|c| c.1.is_some_and(|d| d < dropped_t)).collect();
        if queued.is_empty() || queued.iter().any(|c| c.3) {
            continue;
        }
        let n = queued.len();
        let why = format!("a SYN to {l} dropped with {n} handshakes completed and never accepted (sk_acceptq_is_full: more than backlog)");
        out.push(Setting { key: "backlog".into(), value: (n - 1).to_string(), source: super::settings::Source::Inferred(why), knob: super::settings::Knob::Backlog(n as i32 - 1) });
        never.push(l);
    }
    (out, never)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Ecn, Payload, TcpOptions};

    fn pkt(t_ms: u64, from_client: bool, cport: u16, seq: u32, ack: u32, flags: Flags, len: usize) -> CapturedSegment {
        let c = SockAddr::new([10, 0, 0, 1], cport);
        let s: SockAddr = "10.0.0.2:80".parse().unwrap();
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        let payload = if len == 0 { Payload::Empty } else { Payload::Bytes(vec![0; len].into()) };
        let options = TcpOptions { mss: Some(1460), wscale: Some(10), sack_permitted: true, timestamps: Some((1, 0)), ..TcpOptions::default() };
        // The SYN's window is Linux 6.18's default (tcp_rmem[1], 1448 bytes a segment).
        let (options, window) = if flags.contains(Flags::SYN) { (options, 65160) } else { (TcpOptions::default(), 500) };
        CapturedSegment { t_ns: t_ms * 1_000_000, seg: Segment { src, dst, seq, ack, flags, ecn: Ecn::NotEct, window, options, payload }, iface: 0, raw_len: 0 }
    }

    fn handshake(t: u64, cport: u16) -> Vec<CapturedSegment> {
        let a = Flags::ACK;
        vec![pkt(t, true, cport, 99, 0, Flags::SYN, 0), pkt(t, false, cport, 499, 100, Flags::SYN | a, 0), pkt(t, true, cport, 100, 500, a, 0)]
    }

    fn shown(packets: &[CapturedSegment], side: Side) -> Shown {
        let conns = super::super::split(packets);
        let refs: Vec<&Connection> = conns.iter().collect();
        let end = packets.iter().map(|p| p.t_ns).max().unwrap_or(0);
        infer(packets, &refs, side, &KernelProfile::linux_6_18(), end)
    }

    fn texts(s: &Shown) -> Vec<String> {
        s.settings.iter().map(|s| format!("{}={}", s.key, s.value)).collect()
    }

    #[test]
    fn keepalive_idle_interval_and_count_from_probe_spacing() {
        let a = Flags::ACK;
        let mut p = handshake(0, 5000);
        // Answered probe at 2 s, then three unanswered a second apart, then a RST.
        p.push(pkt(2000, true, 5000, 99, 500, a, 0));
        p.push(pkt(2000, false, 5000, 500, 100, a, 0));
        for t in [4000, 5000, 6000] {
            p.push(pkt(t, true, 5000, 99, 500, a, 0));
        }
        p.push(pkt(7000, true, 5000, 100, 500, Flags::RST | a, 0));
        assert_eq!(texts(&shown(&p, Side::Client)), ["SO_KEEPALIVE=1", "TCP_KEEPIDLE=2", "TCP_KEEPINTVL=1", "TCP_KEEPCNT=3"]);
    }

    #[test]
    fn a_retransmission_series_that_stops_bounds_the_user_timeout() {
        let a = Flags::ACK | Flags::PSH;
        let mut p = handshake(0, 5000);
        for t in [10, 210, 610, 1410] {
            p.push(pkt(t, true, 5000, 100, 500, a, 10));
        }
        // The next backoff would have sent at 3010 ms: the capture goes on to 3500 ms.
        let mut only_retrans = p.clone();
        only_retrans.push(pkt(3500, false, 5000, 500, 100, Flags::ACK, 0));
        let s = shown(&only_retrans, Side::Client);
        assert_eq!(texts(&s), ["TCP_USER_TIMEOUT=2000"]);
        // A RST answering the peer before then bounds it too.
        let mut answered = p.clone();
        answered.push(pkt(2000, false, 5000, 500, 100, Flags::ACK | Flags::PSH, 10));
        answered.push(pkt(2000, true, 5000, 100, 0, Flags::RST, 0));
        assert_eq!(texts(&shown(&answered, Side::Client)), ["TCP_USER_TIMEOUT=1495"]);
        // A capture that ends before the next backoff shows nothing.
        p.push(pkt(2000, false, 5000, 500, 100, Flags::ACK, 0));
        assert!(shown(&p, Side::Client).settings.is_empty());
    }

    #[test]
    fn a_syn_dropped_with_two_children_queued_is_a_backlog_of_one() {
        let mut p = handshake(0, 5000);
        p.extend(handshake(1, 5001));
        p.push(pkt(2, true, 5002, 99, 0, Flags::SYN, 0));
        p.push(pkt(1002, true, 5002, 99, 0, Flags::SYN, 0));
        let s = shown(&p, Side::Server);
        assert_eq!(texts(&s), ["backlog=1"]);
        assert_eq!(s.never_accepts, ["10.0.0.2:80".parse::<SockAddr>().unwrap()]);
    }

    #[test]
    fn a_small_first_window_is_a_locked_so_rcvbuf() {
        let mut p = handshake(0, 5000);
        // SO_RCVBUF 4096: sk_rcvbuf 8192, half of it offered, whole MSS (1448 with
        // timestamps): 2896, scale 0 (the model's select_initial_window).
        p[1].seg.window = 2896;
        p[1].seg.options.wscale = Some(0);
        let s = shown(&p, Side::Server);
        assert_eq!(s.settings.len(), 1, "{:?}", texts(&s));
        assert_eq!(s.settings[0].key, "SO_RCVBUF");
        let v: u32 = s.settings[0].value.parse().unwrap();
        assert!(v <= 4096, "{v}");
        assert!(s.settings[0].text().contains("window 2896 with scale 0"), "{}", s.settings[0].text());
        // The default buffer shows nothing.
        assert!(shown(&handshake(0, 5000), Side::Server).settings.is_empty());
    }
}
