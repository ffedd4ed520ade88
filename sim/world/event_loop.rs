//! What an application's event loop is told when one of its sockets is woken, held against
//! the readiness rules (`docs/rules.md`) like every scripted poll/epoll/kqueue answer.
//!
//! On Linux the loop is a level-triggered epoll with `EPOLLIN | EPOLLOUT | EPOLLRDHUP`
//! registered (what event loops such as libuv and tokio register); on FreeBSD a poll(2) with
//! `POLLIN | POLLOUT`. The answer is computed by the same functions a script's call uses, so
//! an app's wake-up breaks a rule exactly when the same call in a script would.

use crate::engine::Sim;
use crate::host::{Fd, Host};
use crate::rules::{self, Checker};
use crate::socket::poll::tcp_poll;
use crate::socket::view::PollMask;
use crate::tcp::profile::Os;

/// `EPOLLIN | EPOLLOUT | EPOLLRDHUP` (include/uapi/linux/eventpoll.h).
const REGISTERED: u32 = 0x001 | 0x004 | 0x2000;

/// Checks the answer the loop of host `h` gets for `fd` now.
pub(super) fn check_answer(sim: &Sim<Host>, checker: &mut Checker, h: usize, fd: Fd) {
    let Some(view) = sim.node(h).view(fd) else { return };
    let now = sim.now();
    match sim.node(h).os() {
        Os::Linux => {
            // ep_item_poll: the socket's mask, filtered by what is registered (EPOLLERR and
            // EPOLLHUP are always reported).
            let always = PollMask::ERR.union(PollMask::HUP);
            let reported = PollMask(tcp_poll(&view).0 & (REGISTERED | always.0));
            if reported == PollMask::EMPTY {
                // ep_send_events drops an item with nothing to report: the loop is told nothing.
                return;
            }
            checker.observe(now, &rules::Observed::epoll(&view, REGISTERED, reported));
        }
        Os::FreeBsd => {
            checker.freebsd_poll(now, &view, PollMask::IN.union(PollMask::OUT));
        }
    }
}
