//! The three kernel timers of a connection (net/ipv4/tcp_timer.c): the retransmit timer
//! (`tcp_retransmit_timer`, `tcp_send_loss_probe`, `tcp_probe_timer`, SYN retransmission),
//! the delayed-ACK timer (`tcp_delack_timer_handler`) and `sk_timer` (`tcp_keepalive_timer`,
//! which also ends an orphan's FIN_WAIT2 and TIME_WAIT here).

use super::{Conn, RtxTimer, TimerKind};
use crate::errno::Errno;
use crate::tcp::mib::Mib;
use crate::tcp::segment::Segment;
use crate::tcp::state::{Cause, TcpState};
use crate::tcp::timeouts::{self, TCP_RTO_MIN};
use crate::time::{Dur, SimTime};

/// When one of the three timers is due: an `Option<SimTime>` in 8 bytes rather than 16
/// (`u64::MAX`, a time no run reaches, is "not armed"), so the connection object stays small.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Deadline(u64);

impl Deadline {
    /// Not armed.
    pub const NONE: Deadline = Deadline(u64::MAX);

    /// Armed for `at`.
    pub fn at(at: SimTime) -> Deadline {
        debug_assert!(at.0 != u64::MAX, "u64::MAX is the sentinel");
        Deadline(at.0)
    }

    pub fn get(self) -> Option<SimTime> {
        (self.0 != u64::MAX).then_some(SimTime(self.0))
    }
}

impl Conn {
    /// When `kind` is due, if armed.
    pub fn deadline(&self, kind: TimerKind) -> Option<SimTime> {
        match kind {
            TimerKind::Retransmit => self.rtx_at.get(),
            TimerKind::DelAck => self.delack_at.get(),
            TimerKind::Keepalive => self.keepalive_at.get(),
        }
    }

    /// What an expiry of `kind` would run now, named for the trace: the retransmission
    /// timer is `retransmit` (RTO, SYN and SYN-ACK retransmission), `TLP` or `probe0`
    /// (whichever `icsk_pending` holds), or `RACK-reo`; `sk_timer` is `keepalive`, or ends an orphan's
    /// `fin-wait2` or a `time-wait`.
    pub fn timer_name(&self, kind: TimerKind) -> &'static str {
        match kind {
            TimerKind::Retransmit => match self.rtx_kind {
                RtxTimer::Rto => "retransmit",
                RtxTimer::LossProbe => "TLP",
                RtxTimer::Probe0 => "probe0",
                RtxTimer::ReoTimeout => "RACK-reo",
            },
            TimerKind::DelAck => "delack",
            TimerKind::Keepalive => match self.state {
                TcpState::TimeWait => "time-wait",
                TcpState::FinWait2 => "fin-wait2",
                _ => "keepalive",
            },
        }
    }

    /// The earliest armed deadline of any timer.
    pub fn next_deadline(&self) -> Option<SimTime> {
        [self.rtx_at.get(), self.delack_at.get(), self.keepalive_at.get()].into_iter().flatten().min()
    }

    /// A timer expired. Calls before the deadline (a stale event) are ignored.
    pub fn on_timer(&mut self, now: SimTime, kind: TimerKind, out: &mut Vec<Segment>) {
        match kind {
            TimerKind::Retransmit => {
                if self.rtx_at.get().is_none_or(|at| now < at) {
                    return;
                }
                self.rtx_at = Deadline::NONE;
                match self.rtx_kind {
                    RtxTimer::Rto => self.retransmit_timer(now, out),
                    RtxTimer::LossProbe => self.send_loss_probe(now, out),
                    RtxTimer::Probe0 => self.probe_timer(now, out),
                    RtxTimer::ReoTimeout => self.rack_reo_timeout(now, out),
                }
            }
            TimerKind::DelAck => {
                if self.delack_at.get().is_none_or(|at| now < at) {
                    return;
                }
                self.delack_at = Deadline::NONE;
                self.delack_timer(now, out);
            }
            TimerKind::Keepalive => {
                if self.keepalive_at.get().is_none_or(|at| now < at) {
                    return;
                }
                self.keepalive_at = Deadline::NONE;
                self.keepalive_timer(now, out);
            }
        }
    }

    /// `tcp_write_err`: the soft error if one was recorded, else ETIMEDOUT. No RST is sent.
    fn write_err(&mut self) {
        self.count(Mib::TcpAbortOnTimeout);
        let err = self.sk_err_soft.unwrap_or(Errno::ETIMEDOUT);
        self.done_with_error(err, Cause::Timeout);
    }

    /// `tcp_clamp_rto_to_user_timeout`: never sleep past the user timeout.
    fn clamp_rto_to_user_timeout(&self, now: SimTime) -> Dur {
        let ut = self.opts.user_timeout_ms;
        if ut == 0 || (self.state == TcpState::SynSent && !self.profile.user_timeout_bounds_connect) {
            return self.rto;
        }
        let elapsed = now.since(self.rare.get().retrans_stamp.unwrap_or(now));
        let ut = Dur::from_millis(ut as u64);
        if elapsed >= ut {
            self.jiffies().to_dur(1) // "user timeout has passed; fire ASAP"
        } else {
            self.rto.min(ut - elapsed)
        }
    }

    /// `tcp_clamp_probe0_to_user_timeout`.
    pub(super) fn clamp_probe0_to_user_timeout(&self, now: SimTime, when: Dur) -> Dur {
        let ut = self.opts.user_timeout_ms;
        let Some(start) = self.rare.get().probes_tstamp else { return when };
        if ut == 0 {
            return when;
        }
        let remaining = Dur::from_millis(ut as u64) - now.since(start);
        remaining.max(self.timeout_min()).min(when)
    }

    /// `tcp_write_timeout`, SYN states: count and time limits (6.5+ linear timeouts).
    fn syn_timed_out(&self, now: SimTime) -> bool {
        let p = &self.profile;
        let linear = if self.state == TcpState::SynSent { p.tcp_syn_linear_timeouts } else { 0 };
        let budget = timeouts::Budget {
            boundary: self.opts.syn_retries(p),
            user_timeout_ms: if p.user_timeout_bounds_connect { self.opts.user_timeout_ms } else { 0 },
            rto_base: Dur::from_millis(p.tcp_timeout_init_ms),
            rto_max: self.rto_max(),
        };
        timeouts::syn_timed_out(now, self.rare.get().retrans_stamp.unwrap_or(now), self.rare.get().retransmits, linear, budget)
    }

    /// `tcp_write_timeout`, synchronized states: retries2 (or the orphan budget) as time,
    /// counted from the first RTO retransmission; the user timeout replaces it.
    fn data_timed_out(&self, now: SimTime) -> bool {
        let p = &self.profile;
        let mut retry_until = p.tcp_retries2;
        if self.orphan {
            let alive = self.rto < self.rto_max();
            retry_until = timeouts::orphan_retries(p.tcp_orphan_retries, alive, self.sk_err_soft.is_some());
        }
        let budget = timeouts::Budget {
            boundary: retry_until,
            user_timeout_ms: self.opts.user_timeout_ms,
            rto_base: TCP_RTO_MIN,
            rto_max: self.rto_max(),
        };
        timeouts::retransmits_timed_out(now, self.rare.get().retrans_stamp, self.rare.get().retransmits, budget)
    }

    /// `tcp_retransmit_timer`.
    fn retransmit_timer(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        match self.state {
            TcpState::SynSent | TcpState::SynRecv => {
                self.count(Mib::TcpTimeouts);
                if self.syn_timed_out(now) {
                    self.write_err();
                    return;
                }
                self.rare.get_mut().retransmits += 1;
                self.rare.get_mut().total_rto += 1;
                self.rare.get_mut().total_retrans += 1;
                self.count(Mib::RetransSegs);
                self.rtx_skbs.mark_resent(self.iss, now);
                self.rtx_skbs.mark_retrans(self.iss);
                let synack = self.state == TcpState::SynRecv;
                let seg = self.syn_segment(now, synack);
                out.push(seg);
                // 6.5+: the first tcp_syn_linear_timeouts SYN RTOs do not back off.
                if self.state != TcpState::SynSent || self.rare.get().total_rto > self.profile.tcp_syn_linear_timeouts {
                    self.rare.get_mut().backoff += 1;
                    self.rto = self.rto.saturating_mul(2).min(self.rto_max());
                }
                let after = self.clamp_rto_to_user_timeout(now);
                self.arm_rtx(now, RtxTimer::Rto, after);
                return;
            }
            TcpState::Close | TcpState::Listen | TcpState::TimeWait => return,
            _ => {}
        }
        if self.packets_out() == 0 {
            return;
        }
        if self.snd_wnd == 0 && !self.orphan {
            // The receiver shrank its window onto data in flight (tcp_rtx_probe0_timed_out).
            if self.rtx_probe0_timed_out(now) {
                self.write_err();
                return;
            }
        } else {
            // Counted before the give-up check, as tcp_retransmit_timer does.
            self.count(Mib::TcpTimeouts);
            if self.data_timed_out(now) {
                self.write_err();
                return;
            }
        }
        self.enter_loss(now);
        // tcp_update_rto_stats
        self.rare.get_mut().retransmits += 1;
        self.rare.get_mut().total_rto += 1;
        if self.refused_locally(now) {
            // `tcp_retransmit_skb` > 0, a local drop ("Retransmission failed because of local
            // congestion"): retry on TCP_RESOURCE_PROBE_INTERVAL without backing off.
            self.arm_rtx(now, RtxTimer::Rto, timeouts::TCP_RESOURCE_PROBE_INTERVAL);
            return;
        }
        // `tcp_retransmit_skb(sk, tcp_rtx_queue_head(sk), 1)`: one segment of the head skb.
        let una = self.snd_una;
        self.retransmit_skb(now, una, 1, out);
        self.rare.get_mut().backoff += 1;
        self.rto = self.rto.saturating_mul(2).min(self.rto_max());
        let after = self.clamp_rto_to_user_timeout(now);
        self.arm_rtx(now, RtxTimer::Rto, after);
    }

    /// `tcp_rtx_probe0_timed_out`: retransmitting into a zero window gives up only when
    /// nothing has been received for twice `rto_max` (or the user timeout).
    fn rtx_probe0_timed_out(&self, now: SimTime) -> bool {
        let mut timeout = self.rto_max().saturating_mul(2);
        let ut = self.opts.user_timeout_ms;
        let rtx_delta = now.since(self.rare.get().retrans_stamp.unwrap_or(now));
        if ut != 0 {
            let ut = Dur::from_millis(ut as u64);
            if rtx_delta > ut {
                return true;
            }
            timeout = timeout.min(ut);
        }
        if now.since(self.rcv_tstamp) <= timeout {
            return false;
        }
        rtx_delta > timeout
    }

    /// `tcp_enter_loss`: everything outstanding is presumed lost; go back to `snd_una`.
    fn enter_loss(&mut self, now: SimTime) {
        self.enter_loss_window(now);
        self.high_seq = self.snd_nxt;
        self.rare.set(|r| &mut r.tlp_high_seq, None);
    }

    /// `tcp_send_loss_probe` (tcp_output.c): at most one probe outstanding (`tlp_high_seq`);
    /// new data if the send head fits the peer's window (`tcp_snd_wnd_test`, sent past cwnd
    /// and Nagle), else the last skb sent again (`skb_rb_last(&sk->tcp_rtx_queue)`, whole:
    /// after a FIN sent on its own that is the bare FIN). Then the RTO from now. The probe
    /// goes through `__tcp_retransmit_skb` alone: `TCPCB_EVER_RETRANS` and `total_retrans`,
    /// but not `TCPCB_SACKED_RETRANS`, `retrans_out`, `retrans_stamp` nor `undo_retrans`.
    fn send_loss_probe(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        if self.packets_out() == 0 {
            return;
        }
        // A probe the host's queue drops is not sent (`goto rearm_timer`): no `tlp_high_seq`,
        // no TCPLossProbes.
        if self.rare.get().tlp_high_seq.is_none() && !self.refused_locally(now) {
            let wnd_end = self.snd_una.wrapping_add(self.snd_wnd);
            let data_end = self.data_end();
            let new_len = if crate::tcp::segment::seq_lt(self.snd_nxt, data_end) {
                data_end.wrapping_sub(self.snd_nxt).min(self.mss)
            } else {
                0
            };
            let new_fin = self.fin_queued && self.snd_nxt.wrapping_add(new_len) == data_end;
            let new_end = self.snd_nxt.wrapping_add(new_len).wrapping_add(new_fin as u32);
            if self.snd_nxt != self.write_seq && crate::tcp::segment::seq_le(new_end, wnd_end) {
                // tcp_write_xmit(push_one = 2): one segment past the congestion window
                // (tcp_event_new_data_sent → tcp_check_space).
                self.send_new(now, new_len, new_fin, false, out);
                self.check_space(now);
            } else if let Some(last) = self.rtx_skbs.last_start(self.snd_una) {
                self.rtx_skbs.split_last();
                self.resend_skb(now, last, 1, out);
            }
            self.rare.set(|r| &mut r.tlp_high_seq, Some(self.snd_nxt));
            self.count(Mib::TcpLossProbes);
        }
        self.arm_rtx(now, RtxTimer::Rto, self.rto);
    }

    /// `tcp_probe_timer`: probe a zero window, backing off; abort only after
    /// `tcp_retries2` unanswered probes (or the user timeout, or an orphan's budget).
    fn probe_timer(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        if self.packets_out() > 0 || self.snd_nxt == self.write_seq {
            self.rare.set(|r| &mut r.probes_out, 0);
            self.rare.set(|r| &mut r.probes_tstamp, None);
            return;
        }
        match self.rare.get().probes_tstamp {
            None => self.rare.set(|r| &mut r.probes_tstamp, Some(now)),
            Some(start) => {
                let ut = self.opts.user_timeout_ms;
                if ut != 0 && now.since(start) >= Dur::from_millis(ut as u64) {
                    self.write_err();
                    return;
                }
            }
        }
        let mut max_probes = self.profile.tcp_retries2;
        if self.orphan {
            let alive = self.rto.saturating_shl(self.rare.get().backoff).min(self.rto_max()) < self.rto_max();
            max_probes = timeouts::orphan_retries(self.profile.tcp_orphan_retries, alive, self.sk_err_soft.is_some());
            if !alive && self.rare.get().backoff >= max_probes {
                self.write_err();
                return;
            }
        }
        if self.rare.get().probes_out >= max_probes {
            self.write_err();
            return;
        }
        self.send_probe0(now, out);
    }

    /// `tcp_send_probe0`: a probe counts whether or not it left; one the host's queue
    /// dropped retries on `TCP_RESOURCE_PROBE_INTERVAL` without backing off ("Let senders
    /// fight for local resources conservatively").
    fn send_probe0(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        let dropped_locally = self.write_wakeup(now, out);
        if self.packets_out() > 0 || self.snd_nxt == self.write_seq {
            self.rare.set(|r| &mut r.probes_out, 0);
            self.rare.set(|r| &mut r.backoff, 0);
            self.rare.set(|r| &mut r.probes_tstamp, None);
            return;
        }
        self.rare.get_mut().probes_out += 1;
        let when = if dropped_locally {
            timeouts::TCP_RESOURCE_PROBE_INTERVAL
        } else {
            if self.rare.get().backoff < self.profile.tcp_retries2 {
                self.rare.get_mut().backoff += 1;
            }
            timeouts::probe0_when(self.rto, self.rare.get().backoff, self.rto_max())
        };
        let when = self.clamp_probe0_to_user_timeout(now, when);
        self.arm_rtx(now, RtxTimer::Probe0, when);
    }

    /// `tcp_delack_timer_handler`: a missed delayed ACK inflates `ato`, or ends interactive
    /// (pingpong) mode.
    fn delack_timer(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        if !self.ack_pending || !self.state.is_synchronized() || self.state == TcpState::TimeWait {
            return;
        }
        if !self.pingpong {
            self.ato = self.ato.saturating_mul(2).min(self.rto);
        } else {
            self.pingpong = false;
            self.ato = Dur::from_millis(self.profile.tcp_delack_min_ms);
        }
        self.send_ack(now, out);
    }

    /// `tcp_keepalive_timer` (and the timewait timers kept on `sk_timer` here).
    fn keepalive_timer(&mut self, now: SimTime, out: &mut Vec<Segment>) {
        match self.state {
            TcpState::TimeWait => {
                self.set_state(TcpState::Close, Cause::TimewaitExpired);
                return;
            }
            TcpState::FinWait2 if self.orphan => {
                self.tcp_done(Cause::TimewaitExpired);
                return;
            }
            TcpState::Listen | TcpState::Close | TcpState::SynSent | TcpState::SynRecv => return,
            _ => {}
        }
        if !self.opts.keepalive {
            return;
        }
        let keepalive_time = self.keepalive_time();
        if self.packets_out() > 0 || self.snd_nxt != self.write_seq {
            self.keepalive_at = Deadline::at(self.timer_at(now, keepalive_time));
            return;
        }
        let elapsed = self.keepalive_time_elapsed(now);
        if elapsed >= keepalive_time {
            let ut = self.opts.user_timeout_ms;
            let give_up = if ut != 0 {
                elapsed >= Dur::from_millis(ut as u64) && self.rare.get().probes_out > 0
            } else {
                self.rare.get().probes_out >= self.opts.keepcnt(&self.profile)
            };
            if give_up {
                let rst = self.active_reset(now);
                out.push(rst);
                self.write_err();
                return;
            }
            // A probe the host's queue dropped is not counted and retried sooner.
            if self.write_wakeup(now, out) {
                self.keepalive_at = Deadline::at(self.timer_at(now, timeouts::TCP_RESOURCE_PROBE_INTERVAL));
                return;
            }
            self.rare.get_mut().probes_out += 1;
            self.keepalive_at = Deadline::at(self.timer_at(now, Dur::from_secs(self.opts.keepintvl(&self.profile))));
        } else {
            self.keepalive_at = Deadline::at(self.timer_at(now, keepalive_time - elapsed));
        }
    }

    /// `keepalive_time_elapsed`: time since the last segment received (data or ACK).
    fn keepalive_time_elapsed(&self, now: SimTime) -> Dur {
        now.since(self.lrcvtime.max(self.rcv_tstamp))
    }

    /// SO_KEEPALIVE or TCP_KEEPIDLE changed on a live socket (`tcp_set_keepalive`,
    /// `keepalive_time_set`): arm relative to the idle time already elapsed, or disarm.
    pub(super) fn keepalive_opt_changed(&mut self, now: SimTime, toggled: bool) {
        let live = match self.state {
            TcpState::Established | TcpState::CloseWait | TcpState::FinWait1 | TcpState::Closing | TcpState::LastAck => true,
            TcpState::FinWait2 => !self.orphan,
            _ => false,
        };
        if !live {
            return;
        }
        if !self.opts.keepalive {
            if toggled {
                self.keepalive_at = Deadline::NONE;
            }
            return;
        }
        let when = if toggled {
            self.keepalive_time()
        } else {
            self.keepalive_time() - self.keepalive_time_elapsed(now)
        };
        self.keepalive_at = Deadline::at(self.timer_at(now, when));
    }
}
