//! The sending chronographs (include/net/tcp.h `tcp_chrono_start`/`tcp_chrono_stop`/
//! `tcp_chrono_set`): how long the connection had data to send, and of that time how long the
//! peer's window or the send buffer held it back. `tcp_get_info_chrono_stats` (tcp.c) reports
//! them as `tcpi_busy_time` (the sum of all three), `tcpi_rwnd_limited` and
//! `tcpi_sndbuf_limited`, in microseconds of whole jiffies.
//!
//! One chronograph runs at a time; a start only ever moves to a higher-priority kind, and a
//! stop falls back to `Busy` (or to none once both queues are empty).

/// `enum tcp_chrono`, in priority order.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChronoKind {
    #[default]
    Unspec,
    /// Data in the write or retransmit queue (`TCP_CHRONO_BUSY`).
    Busy,
    /// `tcp_write_xmit` found the next segment beyond the peer's window.
    RwndLimited,
    /// The writer ran out of send buffer and everything it wrote is sent.
    SndbufLimited,
}

/// `tp->chrono_type`, `chrono_start` and `chrono_stat[]`, in jiffies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chrono {
    kind: ChronoKind,
    start: u32,
    stat: [u32; 3],
}

/// What `tcp_get_info` reports, in microseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChronoStats {
    pub busy_time_us: u64,
    pub rwnd_limited_us: u64,
    pub sndbuf_limited_us: u64,
}

impl Chrono {
    /// `tcp_chrono_set`: the running chronograph's time is added to its total.
    fn set(&mut self, jiffies: u32, kind: ChronoKind) {
        if self.kind > ChronoKind::Unspec {
            let i = self.kind as usize - 1;
            self.stat[i] = self.stat[i].wrapping_add(jiffies.wrapping_sub(self.start));
        }
        self.start = jiffies;
        self.kind = kind;
    }

    /// `tcp_chrono_start`: only a higher-priority kind takes over.
    pub fn start(&mut self, jiffies: u32, kind: ChronoKind) {
        if kind > self.kind {
            self.set(jiffies, kind);
        }
    }

    /// `tcp_chrono_stop`: with both queues empty nothing runs; else, if `kind` is the one
    /// running, `Busy` takes over.
    pub fn stop(&mut self, jiffies: u32, kind: ChronoKind, queues_empty: bool) {
        if queues_empty {
            self.set(jiffies, ChronoKind::Unspec);
        } else if kind == self.kind {
            self.set(jiffies, ChronoKind::Busy);
        }
    }

    /// `tcp_get_info_chrono_stats` at `jiffies`, for a kernel ticking at `hz`.
    pub fn stats(&self, jiffies: u32, hz: u32) -> ChronoStats {
        let mut us = [0u64; 3];
        for (i, v) in us.iter_mut().enumerate() {
            let mut j = u64::from(self.stat[i]);
            if self.kind as usize == i + 1 {
                j += u64::from(jiffies.wrapping_sub(self.start));
            }
            *v = j * u64::from(1_000_000 / hz.max(1));
        }
        ChronoStats { busy_time_us: us.iter().sum(), rwnd_limited_us: us[1], sndbuf_limited_us: us[2] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_is_the_sum_and_a_stop_falls_back_to_busy() {
        let mut c = Chrono::default();
        c.start(10, ChronoKind::Busy);
        c.start(12, ChronoKind::RwndLimited);
        // A lower kind does not take over a higher one.
        c.start(13, ChronoKind::Busy);
        c.stop(20, ChronoKind::RwndLimited, false);
        // Stopping a kind that is not running changes nothing.
        c.stop(21, ChronoKind::SndbufLimited, false);
        c.stop(25, ChronoKind::Busy, true);
        let s = c.stats(100, 250);
        assert_eq!(s, ChronoStats { busy_time_us: 15 * 4000, rwnd_limited_us: 8 * 4000, sndbuf_limited_us: 0 });
        // The running chronograph counts up to the moment asked.
        c.start(30, ChronoKind::Busy);
        assert_eq!(c.stats(35, 250).busy_time_us, 20 * 4000);
    }
}
