//! The phase of the system under test's jiffies clock, from its first timer-driven segment.
//!
//! Linux runs every TCP timer from the timer wheel on a tick (`sim/tcp/jiffies.rs`): a
//! timer-driven segment leaves on a tick of the kernel's `jiffies`, and a timer queued on a
//! coarser wheel level runs only on a multiple of that level's granularity
//! (kernel/time/timer.c `calc_index`: 8 jiffies on level 1, 64 on level 2). Neither where the
//! ticks fall nor the value of `jiffies` is in a capture, and a model ticking elsewhere
//! sends a keepalive probe up to a level-1 bucket (32 ms at HZ 250) away from the kernel's,
//! after the peer's captured reply to the kernel's probe has already reached it.
//!
//! So the capture's first segment that no received segment or application call can have
//! sent is taken to have left on a tick, and the model's clock (`jiffies_offset_ns`) set so
//! that its own tick falls there, with `jiffies` a multiple of the granularity of the wheel
//! level its timer was queued on. A timer runs late on a busy CPU, never early, so the later
//! timer-driven segments refine it: the tick moves to the earliest of them (within half a
//! tick), and the alignment is the one under which they were the least late (the lab's
//! keepalive probes 256 and 255 ticks apart, both on a level-1 timer of 250 jiffies: the
//! first two ran a tick late). A timer's level is the one of the timeout the gap before the
//! segment shows (the timer was armed at the connection's previous packet at the latest: a
//! keepalive timer when the last one fired or the handshake completed, `tcp_finish_connect`;
//! the retransmission timer when the data was sent or acknowledged, `tcp_rearm_rto`).
//! Timer-driven are:
//!
//! - a keepalive or zero-window probe: no data at `snd_nxt - 1` (`tcp_write_wakeup` →
//!   `tcp_xmit_probe_skb`, from `tcp_keepalive_timer` or `tcp_probe_timer`);
//! - a retransmission (of data, a SYN or a FIN) that follows the connection's previous packet
//!   by more than a tick (`tcp_retransmit_timer`; a fast retransmission answers an ACK at
//!   once);
//! - a delayed ACK: an empty segment acknowledging new data more than a tick after the
//!   connection's previous packet (`tcp_delack_timer`; an ACK sent at once answers a segment).
//!
//! The segment left a few microseconds after its tick (softirq, the path to the capture
//! point); the model's tick is put at the captured time itself, so that its segment leaves
//! no later than the kernel's did and before the peer's answer to it.

use super::settings::Setting;
use super::split::Connection;
use super::Side;
use crate::pcap::CapturedSegment;
use crate::tcp::jiffies::Jiffies;
use crate::tcp::profile::KernelProfile;
use crate::tcp::segment::{seq_gt, Flags, Segment};
use crate::time::SimTime;
use crate::addr::SockAddr;

/// What kind of timer sent a segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Probe,
    Retransmission,
    DelayedAck,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Probe => "keepalive or zero-window probe",
            Kind::Retransmission => "retransmission",
            Kind::DelayedAck => "delayed ACK",
        }
    }
}

/// A timer-driven segment of the SUT: its capture time, the gap since the connection's
/// previous packet, and its kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Fired {
    t_ns: u64,
    gap_ns: u64,
    kind: Kind,
}

/// The sequence number after `s` (a SYN and a FIN count one each).
fn end(s: &Segment) -> u32 {
    s.seq.wrapping_add(s.seq_len())
}

/// The segments of `sut` on one connection that a timer sent, more than `tick_ns` after the
/// connection's previous packet.
fn fired(segs: &[(u64, &Segment)], sut: SockAddr, tick_ns: u64) -> Vec<Fired> {
    let (mut snd_nxt, mut ack) = (None::<u32>, None::<u32>);
    let mut last: Option<u64> = None;
    let mut out = Vec::new();
    for &(t, s) in segs {
        let gap = last.map(|l| t.saturating_sub(l));
        last = Some(t);
        if s.src != sut {
            continue;
        }
        let kind = kind(s, snd_nxt, ack);
        if s.flags.contains(Flags::ACK) {
            ack = Some(ack.map_or(s.ack, |a| if seq_gt(s.ack, a) { s.ack } else { a }));
        }
        snd_nxt = Some(snd_nxt.map_or(end(s), |n| if seq_gt(end(s), n) { end(s) } else { n }));
        if let (Some(kind), Some(gap_ns)) = (kind, gap.filter(|&g| g > tick_ns)) {
            out.push(Fired { t_ns: t, gap_ns, kind });
        }
    }
    out
}

/// What timer, if any, can have sent `s`, given what the SUT had sent (`snd_nxt`) and
/// acknowledged (`ack`) before it.
fn kind(s: &Segment, snd_nxt: Option<u32>, ack: Option<u32>) -> Option<Kind> {
    let nxt = snd_nxt?;
    if s.flags.contains(Flags::RST) {
        return None;
    }
    let carries = !s.payload.is_empty() || s.flags.intersects(Flags::SYN | Flags::FIN);
    if carries {
        return seq_gt(nxt, s.seq).then_some(Kind::Retransmission);
    }
    if s.seq == nxt.wrapping_sub(1) {
        return Some(Kind::Probe);
    }
    let acks_new = s.flags.contains(Flags::ACK) && ack.is_some_and(|a| seq_gt(s.ack, a));
    acks_new.then_some(Kind::DelayedAck)
}

/// A timer-driven segment on the replay's timeline, with the granularity of the wheel level
/// its timer was queued on.
#[derive(Copy, Clone, Debug)]
struct OnTimeline {
    at: SimTime,
    granularity: u64,
}

/// Where the model's ticks fall: `phase` ns past a multiple of `tick_ns`, and `jiffies` a
/// multiple of `align` on the tick whose index (counted from the phase) is `a` modulo it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Phase {
    tick_ns: u64,
    phase: u64,
    align: u64,
    a: u64,
}

impl Phase {
    /// The phase of the first segment's tick, moved earlier to the earliest of the later ones
    /// within half a tick before it: a timer runs late (a busy CPU), never early, so the
    /// earliest is the closest to the tick. Then the alignment under which the segments of a
    /// coarse level were the least late (modulo their granularity: a level-1 timer can only
    /// run on every 8th tick, so one that left a tick past a multiple of 8 ran a tick late).
    fn of(fired: &[OnTimeline], tick_ns: u64) -> Option<Phase> {
        let first = fired.first()?.at.as_nanos() % tick_ns;
        let early = |t: &OnTimeline| {
            let d = (t.at.as_nanos() % tick_ns + tick_ns - first) % tick_ns;
            if d >= tick_ns / 2 { tick_ns - d } else { 0 }
        };
        let phase = (first + tick_ns - fired.iter().map(early).max().unwrap_or(0)) % tick_ns;
        let index = |t: &OnTimeline| (t.at.as_nanos() + tick_ns - phase) / tick_ns;
        let align = fired.iter().map(|f| f.granularity).max().unwrap_or(1);
        let lateness = |a: u64| {
            let late: Vec<u64> = fired.iter().map(|f| (index(f) + align - a % f.granularity) % f.granularity).collect();
            (late.iter().copied().max().unwrap_or(0), late.iter().sum::<u64>())
        };
        let a = (0..align).min_by_key(|&a| (lateness(a), a))?;
        Some(Phase { tick_ns, phase, align, a })
    }

    /// The offset (`jiffies_offset_ns`) that gives the model these ticks: `jiffies` at tick
    /// index `w` (time `phase - tick_ns + w × tick_ns`, index 1 the first at or after 0) is
    /// `w + m - 1`, a multiple of `align` when `w ≡ a`: `m ≡ 1 − a` modulo `align`.
    fn offset(self) -> u64 {
        let m = (1 + self.align - self.a % self.align) % self.align;
        let m = if m == 0 { self.align } else { m };
        m * self.tick_ns - self.phase
    }
}

/// The SUT's jiffies phase on `conns` from its timer-driven segments, with `at` putting
/// capture times on the replay's timeline; none without such a segment.
pub fn infer(packets: &[CapturedSegment], conns: &[&Connection], side: Side, profile: &KernelProfile, at: impl Fn(u64) -> SimTime) -> Option<Setting> {
    let jiffies = Jiffies::of(&KernelProfile { jiffies_offset_ns: 0, ..profile.clone() });
    let tick_ns = jiffies.to_dur(1).as_nanos();
    let mut all: Vec<Fired> = conns
        .iter()
        .flat_map(|c| {
            let segs: Vec<(u64, &Segment)> = c.packets.iter().map(|&i| (packets[i].t_ns, &packets[i].seg)).collect();
            fired(&segs, c.endpoints(side).0, tick_ns)
        })
        .collect();
    all.sort_by_key(|f| f.t_ns);
    // Armed at the previous packet at the latest: the timeout is at most the gap, in
    // jiffies, less the one the bucket adds past it.
    let on_timeline: Vec<OnTimeline> =
        all.iter().map(|f| OnTimeline { at: at(f.t_ns), granularity: jiffies.granularity(f.gap_ns.div_ceil(tick_ns).saturating_sub(1)) }).collect();
    let phase = Phase::of(&on_timeline, tick_ns)?;
    let offset = phase.offset();
    let first = all[0];
    let at_zero = Jiffies::of(&KernelProfile { jiffies_offset_ns: offset, ..profile.clone() }).at(SimTime::ZERO);
    let ms = |ns: u64| ns as f64 / 1e6;
    let why = format!(
        "the first of {} timer-driven segments, a {} at {:.3} ms, {:.1} ms after the packet before it: \
         ticks at {:.3} ms + k × {:.0} ms, jiffies {at_zero} at 0, a multiple of {} on the coarsest timer's ticks",
        all.len(),
        first.kind.name(),
        ms(at(first.t_ns).as_nanos()),
        ms(first.gap_ns),
        ms(phase.phase),
        ms(tick_ns),
        phase.align,
    );
    Some(Setting::inferred_sysctl("jiffies_offset_ns", serde_json::json!(offset), why))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// infer.rs's test segment, its time in µs.
    fn pkt(t_us: u64, from_client: bool, seq: u32, ack: u32, flags: Flags, len: usize) -> CapturedSegment {
        super::super::infer::tests::pkt(t_us * 1000, from_client, seq, ack, flags, len)
    }

    fn handshake() -> Vec<CapturedSegment> {
        let a = Flags::ACK;
        vec![pkt(0, true, 99, 0, Flags::SYN, 0), pkt(50, false, 499, 100, Flags::SYN | a, 0), pkt(60, true, 100, 500, a, 0)]
    }

    fn inferred(p: &[CapturedSegment], side: Side) -> Option<Setting> {
        let conns = super::super::split(p);
        let refs: Vec<&Connection> = conns.iter().collect();
        infer(p, &refs, side, &KernelProfile::linux_6_18(), |t| SimTime(t + 1_000_000))
    }

    fn offset(s: &Setting) -> u64 {
        s.value.parse().unwrap()
    }

    /// A keepalive probe 1.0203 s after the handshake (TCP_KEEPIDLE 1 s: 250 jiffies, a
    /// level-1 timer) at 1.021303 s on the replay's timeline: the model's jiffies read a
    /// multiple of 8 on a tick there.
    #[test]
    fn a_keepalive_probe_sets_the_tick_and_the_level_one_alignment() {
        let mut p = handshake();
        p.push(pkt(1_020_363, true, 99, 500, Flags::ACK, 0));
        p.push(pkt(1_020_400, false, 500, 100, Flags::ACK, 0));
        let s = inferred(&p, Side::Client).expect("the probe is timer-driven");
        assert_eq!(s.key, "jiffies_offset_ns");
        let j = Jiffies::of(&KernelProfile { jiffies_offset_ns: offset(&s), ..KernelProfile::linux_6_18() });
        let probe = SimTime(1_021_363_000);
        assert_eq!(j.at(probe) % 8, 0, "{}", s.text());
        assert_eq!(j.at(probe), j.at(SimTime(probe.as_nanos() - 1)) + 1, "a tick at the probe: {}", s.text());
        assert!(s.text().contains("keepalive or zero-window probe"), "{}", s.text());
        // The server sent nothing a timer sent: nothing inferred.
        assert!(inferred(&p, Side::Server).is_none());
    }

    /// The lab's probes (tests/replay_live.rs): 256 then 255 ticks apart on a level-1 timer
    /// of 250 jiffies, which runs only every 8th tick, each a little earlier in its tick. The
    /// first two ran a tick late: the model's ticks fall at the earliest of them, on jiffies
    /// a multiple of 8 a tick before the first two probes and at the third.
    #[test]
    fn late_timers_are_told_by_the_later_ones() {
        let a = Flags::ACK;
        let mut p = handshake();
        // On the timeline (1 ms later): 1.012069 s, +1.023988 s, +1.019997 s.
        for t in [1_011_069, 2_035_057, 3_055_054] {
            p.push(pkt(t, true, 99, 500, a, 0));
            p.push(pkt(t + 20, false, 500, 100, a, 0));
        }
        let s = inferred(&p, Side::Client).unwrap();
        let j = Jiffies::of(&KernelProfile { jiffies_offset_ns: offset(&s), ..KernelProfile::linux_6_18() });
        let tick = |t_us: u64| (j.at(SimTime(t_us * 1000)), j.at(SimTime(t_us * 1000 - 4000)));
        // Ticks at 3.055054 s − k × 4 ms exactly (the third probe's), jiffies ≡ 0 (mod 8) there.
        let third = tick(3_056_054);
        assert_eq!((third.0 % 8, third.0 - third.1), (0, 1), "{}", s.text());
        // The first two: a tick before them (4.012 and 4.015 ms) is a multiple of 8.
        for t in [1_012_069 - 12 - 4000, 2_036_057 - 3 - 4000] {
            assert_eq!(tick(t).0 % 8, 0, "{}", s.text());
        }
    }

    /// A delayed ACK 40.5 ms after the data: a level-0 timer, only the tick's phase shown.
    #[test]
    fn a_delayed_ack_sets_the_tick() {
        let mut p = handshake();
        p.push(pkt(1000, false, 500, 100, Flags::ACK | Flags::PSH, 10));
        // An ACK at once answers a segment: not a timer's.
        p.push(pkt(1010, true, 100, 510, Flags::ACK, 0));
        p.push(pkt(2000, false, 510, 100, Flags::ACK | Flags::PSH, 10));
        p.push(pkt(42_500, true, 100, 520, Flags::ACK, 0));
        let s = inferred(&p, Side::Client).unwrap();
        let j = Jiffies::of(&KernelProfile { jiffies_offset_ns: offset(&s), ..KernelProfile::linux_6_18() });
        let ack = SimTime(43_500_000);
        assert_eq!(j.at(ack), j.at(SimTime(ack.as_nanos() - 1)) + 1, "{}", s.text());
        assert!(offset(&s) < 4_000_000, "one tick's phase, no coarser alignment: {}", s.text());
        assert!(s.text().contains("delayed ACK"), "{}", s.text());
    }

    /// A fast retransmission answers a duplicate ACK at once; the RTO one comes after a gap.
    #[test]
    fn only_a_retransmission_after_a_silence_is_the_timer_s() {
        let a = Flags::ACK;
        let mut p = handshake();
        p.push(pkt(1000, true, 100, 500, a | Flags::PSH, 10));
        p.push(pkt(1100, false, 500, 100, a, 0));
        p.push(pkt(1150, true, 100, 500, a | Flags::PSH, 10));
        assert!(inferred(&p, Side::Client).is_none());
        p.push(pkt(300_000, true, 100, 500, a | Flags::PSH, 10));
        let s = inferred(&p, Side::Client).unwrap();
        assert!(s.text().contains("retransmission at 301.000 ms"), "{}", s.text());
        // 298.85 ms is 75 jiffies: a level-1 timer.
        let j = Jiffies::of(&KernelProfile { jiffies_offset_ns: offset(&s), ..KernelProfile::linux_6_18() });
        assert_eq!(j.at(SimTime(301_000_000)) % 8, 0, "{}", s.text());
    }
}
