//! Pure timeout policy: the arithmetic of `net/ipv4/tcp_timer.c` and `include/net/tcp.h`,
//! kept apart from the connection so that each rule can be tested on its own.

use crate::time::{Dur, SimTime};

/// `TCP_RTO_MIN` (HZ/5): the base of the retries1/retries2 time model in data states,
/// whatever the socket's real RTO or `tcp_rto_min_us` (tcp_timer.c `retransmits_timed_out`).
pub const TCP_RTO_MIN: Dur = Dur::from_millis(200);
/// `TCP_TIMEOUT_MIN_US` (include/net/tcp.h, 6.6+): the 2 ms floor that RACK's reordering
/// timer and the loss probe add before converting to jiffies (commit 1c2709cfff1d "tcp: fix
/// excessive TLP and RACK timeouts from HZ rounding"; before it, 2 jiffies were added after
/// the conversion, 8 ms at HZ = 250).
pub const TCP_TIMEOUT_MIN_US: Dur = Dur::from_micros(2000);
/// `TCP_RESOURCE_PROBE_INTERVAL`: retry after a local transmit failure, without backoff.
pub const TCP_RESOURCE_PROBE_INTERVAL: Dur = Dur::from_millis(500);

/// `tcp_model_timeout()`: the time a connection that starts at `rto_base`, doubles its RTO
/// on every expiry and is capped at `rto_max` takes to make `boundary` retransmissions.
/// `tcp_retries2 = 15` with a 200 ms base and 120 s cap gives 924.6 s (ip-sysctl.rst).
pub fn tcp_model_timeout(boundary: u32, rto_base: Dur, rto_max: Dur) -> Dur {
    let base = rto_base.as_nanos().max(1);
    let thresh = (rto_max.as_nanos() / base).max(1).ilog2();
    if boundary <= thresh {
        Dur(((2u64 << boundary) - 1) * base)
    } else {
        Dur(((2u64 << thresh) - 1) * base + (boundary - thresh) as u64 * rto_max.as_nanos())
    }
}

/// The time budget of `retransmits_timed_out()`: `tcp_model_timeout(boundary, rto_base,
/// rto_max)`, or the user timeout (TCP_USER_TIMEOUT, ms; 0 = unset) instead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub boundary: u32,
    pub user_timeout_ms: u32,
    pub rto_base: Dur,
    pub rto_max: Dur,
}

impl Budget {
    pub fn timeout(&self) -> Dur {
        if self.user_timeout_ms == 0 {
            tcp_model_timeout(self.boundary, self.rto_base, self.rto_max)
        } else {
            Dur::from_millis(self.user_timeout_ms as u64)
        }
    }
}

/// `retransmits_timed_out()`: has the connection been retransmitting for longer than the
/// budget allows? False while nothing has been retransmitted (`icsk_retransmits == 0`).
pub fn retransmits_timed_out(now: SimTime, retrans_stamp: Option<SimTime>, retransmits: u32, budget: Budget) -> bool {
    let Some(start) = retrans_stamp else { return false };
    retransmits != 0 && now.since(start) >= budget.timeout()
}

/// `tcp_orphan_retries()`: the retry budget of a socket the application has closed. The
/// sysctl's 0 means 8 while the RTO is below its maximum; an ICMP soft error on a dead
/// (RTO at maximum) socket makes it 0.
pub fn orphan_retries(sysctl: u32, alive: bool, has_soft_error: bool) -> u32 {
    let mut retries = sysctl;
    if has_soft_error && !alive {
        retries = 0;
    }
    if retries == 0 && alive {
        retries = 8;
    }
    retries
}

/// `tcp_probe0_when()`: the zero-window probe interval, `max(rto, TCP_RTO_MIN) << backoff`,
/// capped at `rto_max` (include/net/tcp.h `tcp_probe0_base`).
pub fn probe0_when(rto: Dur, backoff: u32, rto_max: Dur) -> Dur {
    rto.max(TCP_RTO_MIN).saturating_shl(backoff).min(rto_max)
}

/// `tcp_fin_time()`: how long an orphaned FIN_WAIT2 socket waits for the peer's FIN:
/// `max(tcp_fin_timeout, 3.5 * rto)` (TCP_LINGER2 unset).
pub fn fin_time(fin_timeout: Dur, rto: Dur) -> Dur {
    let rto_based = Dur(rto.as_nanos().saturating_mul(7) / 2);
    fin_timeout.max(rto_based)
}

/// The SYN_SENT half of `tcp_write_timeout()` (6.5+): expired once `retransmits` reaches
/// `syn_retries + linear` (the linear SYN timeouts buy extra retransmissions), or when the
/// time since the first SYN reaches `tcp_model_timeout(syn_retries, TCP_TIMEOUT_INIT)`
/// (or the user timeout, when set and the kernel applies it to connect).
/// `budget.boundary` is `syn_retries` and `budget.rto_base` is `TCP_TIMEOUT_INIT`.
pub fn syn_timed_out(now: SimTime, first_syn: SimTime, retransmits: u32, linear: u32, budget: Budget) -> bool {
    retransmits >= budget.boundary + linear || retransmits_timed_out(now, Some(first_syn), retransmits, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Dur = Dur::from_secs(120);

    #[test]
    fn retries2_budget_is_924_6_s() {
        assert_eq!(tcp_model_timeout(15, TCP_RTO_MIN, MAX), Dur::from_millis(924_600));
        assert_eq!(tcp_model_timeout(3, TCP_RTO_MIN, MAX), Dur::from_millis(3_000));
        // TCP_RTO_MAX_MS = 1000: thresh 2, 7 * 0.2 + 13 * 1 = 14.4 s (facts §3.4).
        assert_eq!(tcp_model_timeout(15, TCP_RTO_MIN, Dur::from_secs(1)), Dur::from_millis(14_400));
        // Orphans: 8 retries, 511 * 0.2 = 102.2 s.
        assert_eq!(tcp_model_timeout(8, TCP_RTO_MIN, MAX), Dur::from_millis(102_200));
    }

    #[test]
    fn syn_time_term_is_2_pow_n_plus_1_minus_1_seconds() {
        assert_eq!(tcp_model_timeout(6, Dur::from_secs(1), MAX), Dur::from_secs(127));
        assert_eq!(tcp_model_timeout(1, Dur::from_secs(1), MAX), Dur::from_secs(3));
    }

    #[test]
    fn nothing_retransmitted_never_times_out() {
        let t0 = SimTime(0);
        let b = Budget { boundary: 1, user_timeout_ms: 0, rto_base: TCP_RTO_MIN, rto_max: MAX };
        assert!(!retransmits_timed_out(SimTime(u64::MAX / 2), Some(t0), 0, b));
        assert!(!retransmits_timed_out(SimTime(u64::MAX / 2), None, 3, b));
        let ut = Budget { user_timeout_ms: 3_000, ..b };
        let at = t0 + Dur::from_millis(2_999);
        assert!(!retransmits_timed_out(at, Some(t0), 1, ut));
        assert!(retransmits_timed_out(at + Dur::from_millis(1), Some(t0), 1, ut));
    }

    #[test]
    fn orphan_retries_zero_means_eight_while_alive() {
        assert_eq!(orphan_retries(0, true, false), 8);
        assert_eq!(orphan_retries(0, false, false), 0);
        assert_eq!(orphan_retries(3, false, true), 0);
        assert_eq!(orphan_retries(3, true, true), 3);
    }

    #[test]
    fn probe0_backs_off_from_at_least_200_ms() {
        assert_eq!(probe0_when(Dur::from_millis(50), 0, MAX), Dur::from_millis(200));
        assert_eq!(probe0_when(Dur::from_millis(201), 2, MAX), Dur::from_millis(804));
        assert_eq!(probe0_when(Dur::from_secs(1), 10, MAX), MAX);
        assert_eq!(fin_time(Dur::from_secs(60), Dur::from_secs(20)), Dur::from_secs(70));
        assert_eq!(fin_time(Dur::from_secs(60), Dur::from_millis(201)), Dur::from_secs(60));
    }
}
