//! An epoll instance as fs/eventpoll.c implements it, level- and edge-triggered.
//!
//! The kernel keeps, per epoll instance, one item per watched fd (`struct epitem`) and a FIFO
//! ready list (`rdllist`). An item joins the ready list in three ways only:
//! - `epoll_ctl(ADD)` or `(MOD)` finds the fd already ready (`ep_insert`, `ep_modify`);
//! - a wake-up on the socket's wait queue whose key matches the interest (`ep_poll_callback`);
//! - a level-triggered item that was just reported is put back (`ep_send_events`).
//!
//! `epoll_wait` (`ep_send_events`) takes items off the ready list, polls each again, and reports
//! `mask & interest` if that is non-empty. So an edge-triggered item is reported once per
//! wake-up that reached it, with the mask as it is *at epoll_wait time*, not at wake-up time.
//! A program that reads only part of the data and waits again is not told again until the
//! socket wakes it again (new data, FIN, RST, write space).

use crate::errno::Errno;
use crate::socket::view::PollMask;
use std::collections::{BTreeMap, VecDeque};

/// `EPOLLET` (include/uapi/linux/eventpoll.h): edge-triggered.
pub const EPOLLET: u32 = 1 << 31;
/// `EPOLLONESHOT`: disable the item after one report, until `EPOLL_CTL_MOD`.
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLWAKEUP`: keep the system awake while the item is ready. Has no effect here.
pub const EPOLLWAKEUP: u32 = 1 << 29;
/// `EPOLLEXCLUSIVE`: wake one of several epoll instances. Not modelled: rejected with EINVAL.
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// fs/eventpoll.c `EP_PRIVATE_BITS`: the flag bits that are not events.
pub const EP_PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// `EP_MAX_EVENTS`: the largest `maxevents` epoll_wait accepts.
pub const EP_MAX_EVENTS: i32 = (i32::MAX as usize / std::mem::size_of::<[u32; 3]>()) as i32;

/// The `op` of epoll_ctl(2).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CtlOp {
    Add,
    Mod,
    Del,
}

pub use crate::tcp::view::Wakeup;

/// One watched fd (`struct epitem`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct EpItem {
    /// `epi->event.events`: the interest (always with ERR|HUP) plus the flag bits. After a
    /// ONESHOT report only the flag bits remain: the item is disabled.
    events: u32,
    /// `ep_is_linked(epi)`: on the ready list.
    ready: bool,
}

impl EpItem {
    fn interest(&self) -> PollMask {
        PollMask(self.events & !EP_PRIVATE_BITS)
    }
    fn has(&self, flag: u32) -> bool {
        self.events & flag != 0
    }
}

/// An epoll instance (`struct eventpoll`). Deterministic: the ready list is a FIFO.
#[derive(Clone, Debug, Default)]
pub struct Epoll {
    items: BTreeMap<u32, EpItem>,
    ready: VecDeque<u32>,
}

impl Epoll {
    /// epoll_create1(0).
    pub fn new() -> Epoll {
        Epoll::default()
    }

    /// epoll_ctl(2). `events` holds EPOLL* event bits and the EPOLLET/EPOLLONESHOT flags;
    /// `current` is the socket's full readiness mask now (`tcp_poll`), which ADD and MOD test
    /// as `ep_insert`/`ep_modify` do: a ready item is queued at once.
    pub fn ctl(&mut self, op: CtlOp, fd: u32, events: u32, current: PollMask) -> Result<(), Errno> {
        if op != CtlOp::Del && events & EPOLLEXCLUSIVE != 0 {
            return Err(Errno::EINVAL);
        }
        // do_epoll_ctl: `epds->events |= EPOLLERR | EPOLLHUP;` for ADD and MOD.
        let events = events | PollMask::ERR.0 | PollMask::HUP.0;
        match (op, self.items.contains_key(&fd)) {
            (CtlOp::Add, true) => Err(Errno::EEXIST),
            (CtlOp::Mod | CtlOp::Del, false) => Err(Errno::ENOENT),
            (CtlOp::Add, false) => {
                self.items.insert(
                    fd,
                    EpItem {
                        events,
                        ready: false,
                    },
                );
                self.queue_if_ready(fd, current);
                Ok(())
            }
            (CtlOp::Mod, true) => {
                // ep_modify: `epi->event.events = event->events;` then re-poll.
                self.item_mut(fd).events = events;
                self.queue_if_ready(fd, current);
                Ok(())
            }
            (CtlOp::Del, true) => {
                self.forget(fd);
                Ok(())
            }
        }
    }

    /// The fd was closed: `eventpoll_release` drops its item silently.
    pub fn forget(&mut self, fd: u32) {
        if self.items.remove(&fd).is_some() {
            self.ready.retain(|&r| r != fd);
        }
    }

    /// `ep_poll_callback`: the socket's wait queue was woken with `key`
    /// ([`Wakeup::key`]; `PollMask::EMPTY` for a keyless wake-up). Queues the item unless it
    /// is unknown, disabled by ONESHOT, already queued, or the key misses its interest.
    pub fn on_wakeup(&mut self, fd: u32, key: PollMask) {
        let Some(item) = self.items.get_mut(&fd) else {
            return;
        };
        // `if (!(epi->event.events & ~EP_PRIVATE_BITS)) goto out_unlock;` (ONESHOT-disabled)
        if item.interest().is_empty() {
            return;
        }
        // `if (pollflags && !(pollflags & epi->event.events)) goto out_unlock;`
        if !key.is_empty() && !key.intersects(item.interest()) {
            return;
        }
        if !item.ready {
            item.ready = true;
            self.ready.push_back(fd);
        }
    }

    /// epoll_wait(2) when it does not block: `ep_send_events`. Reports at most `max` items
    /// (`max` ≥ 1, see [`check_maxevents`]), each polled again through `current(fd)`.
    ///
    /// An item whose mask no longer meets its interest is dropped from the ready list silently.
    /// A reported level-triggered item goes back to the tail of the ready list; an
    /// edge-triggered one does not; a ONESHOT one is disabled. Items not reached (beyond `max`)
    /// stay at the head, ahead of the re-queued ones (`ep_done_scan`).
    pub fn wait(
        &mut self,
        max: usize,
        current: impl FnMut(u32) -> PollMask,
    ) -> Vec<(u32, PollMask)> {
        self.wait_registered(max, current)
            .into_iter()
            .map(|(fd, mask, _)| (fd, mask))
            .collect()
    }

    /// [`Epoll::wait`], with each event's registered `events` as they were when it was reported
    /// (before a ONESHOT report disabled the item): what the rule checker needs.
    pub fn wait_registered(
        &mut self,
        max: usize,
        mut current: impl FnMut(u32) -> PollMask,
    ) -> Vec<(u32, PollMask, u32)> {
        let mut txlist = std::mem::take(&mut self.ready);
        let mut requeued = Vec::new();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(fd) = txlist.pop_front() else { break };
            let item = self.item_mut(fd);
            item.ready = false;
            // `revents = ep_item_poll(epi, &pt, 1); if (!revents) continue;`
            let interest = item.interest();
            let revents = current(fd) & interest;
            if revents.is_empty() {
                continue;
            }
            let item = self.item_mut(fd);
            out.push((fd, revents, item.events));
            if item.has(EPOLLONESHOT) {
                // `epi->event.events &= EP_PRIVATE_BITS;`
                item.events &= EP_PRIVATE_BITS;
            } else if !item.has(EPOLLET) {
                // Level-triggered: `list_add_tail(&epi->rdllink, &ep->rdllist);`
                item.ready = true;
                requeued.push(fd);
            }
        }
        // ep_done_scan: `list_splice(txlist, &ep->rdllist)` puts the unreached items first.
        txlist.extend(requeued);
        self.ready = txlist;
        out
    }

    /// Whether the ready list is non-empty (`ep_events_available`). A blocking epoll_wait
    /// returns when this holds *and* [`Epoll::wait`] reports something; if `wait` reports
    /// nothing (every queued item went quiet), the kernel goes back to sleep until the next
    /// wake-up or the timeout.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The registered `events` of `fd` (interest with ERR|HUP, plus flags), if registered.
    /// After a ONESHOT report the interest part is empty.
    pub fn events_of(&self, fd: u32) -> Option<u32> {
        self.items.get(&fd).map(|i| i.events)
    }

    /// The watched fds, in order.
    pub fn fds(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.keys().copied()
    }

    fn queue_if_ready(&mut self, fd: u32, current: PollMask) {
        // `revents = ep_item_poll(epi, &epq.pt, 1); if (revents && !ep_is_linked(epi)) list_add_tail(...)`
        let item = self.item_mut(fd);
        if current.intersects(item.interest()) && !item.ready {
            item.ready = true;
            self.ready.push_back(fd);
        }
    }

    fn item_mut(&mut self, fd: u32) -> &mut EpItem {
        self.items
            .get_mut(&fd)
            .expect("epoll: fd on the ready list is registered")
    }
}

/// do_epoll_wait: `if (maxevents <= 0 || maxevents > EP_MAX_EVENTS) return -EINVAL;`
pub fn check_maxevents(maxevents: i32) -> Result<usize, Errno> {
    if maxevents <= 0 || maxevents > EP_MAX_EVENTS {
        Err(Errno::EINVAL)
    } else {
        Ok(maxevents as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_errors_follow_do_epoll_ctl() {
        let mut ep = Epoll::new();
        assert_eq!(
            ep.ctl(CtlOp::Mod, 3, PollMask::IN.0, PollMask::EMPTY),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            ep.ctl(CtlOp::Del, 3, 0, PollMask::EMPTY),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            ep.ctl(CtlOp::Add, 3, PollMask::IN.0, PollMask::EMPTY),
            Ok(())
        );
        assert_eq!(
            ep.ctl(CtlOp::Add, 3, PollMask::IN.0, PollMask::EMPTY),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            ep.events_of(3),
            Some((PollMask::IN | PollMask::ERR | PollMask::HUP).0)
        );
        assert_eq!(
            ep.ctl(CtlOp::Add, 4, EPOLLEXCLUSIVE, PollMask::EMPTY),
            Err(Errno::EINVAL)
        );
        assert_eq!(check_maxevents(0), Err(Errno::EINVAL));
        assert_eq!(check_maxevents(8), Ok(8));
    }

    #[test]
    fn maxevents_leaves_the_rest_at_the_head() {
        let mut ep = Epoll::new();
        for fd in 1..=3 {
            ep.ctl(CtlOp::Add, fd, PollMask::IN.0, PollMask::IN)
                .unwrap();
        }
        // LT: fd 1 is reported and re-queued behind the unreached 2 and 3.
        assert_eq!(ep.wait(1, |_| PollMask::IN), vec![(1, PollMask::IN)]);
        assert_eq!(
            ep.wait(2, |_| PollMask::IN),
            vec![(2, PollMask::IN), (3, PollMask::IN)]
        );
        assert_eq!(
            ep.wait(3, |_| PollMask::IN),
            vec![(1, PollMask::IN), (2, PollMask::IN), (3, PollMask::IN)]
        );
    }
}
