//! The host's socket table: descriptors, connections and listeners.
//!
//! Descriptors are allocated lowest-free-first, as `get_unused_fd_flags` does, so scripts
//! and traces see the numbers a real program would. Connections live in a slab apart from
//! descriptors because a connection outlives its descriptor (an orphan after close()) and
//! exists before one (a child waiting in the accept queue).

use super::{ConnSlot, ListenerSlot};
use crate::socket::view::SockView;
use crate::tcp::conn::SockOpts;
use crate::tcp::profile::KernelProfile;
use crate::tcp::state::TcpState;

/// A file descriptor number.
pub type Fd = u32;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnId(pub u32);

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenerId(pub u32);

/// One connection for as long as it lives: its slot, and the serial number the slot had
/// when it was made, so that a slot (or a 4-tuple) reused by a later connection is not
/// taken for it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConnHandle {
    id: ConnId,
    serial: u64,
}

/// What a descriptor refers to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SockRef {
    /// socket() but neither connect() nor listen() yet; the index is into `fresh`.
    Fresh(u32),
    Listener(ListenerId),
    Conn(ConnId),
}

/// A socket before it connects or listens: its options wait here.
#[derive(Default)]
pub(crate) struct FreshSock {
    pub opts: SockOpts,
    pub port: Option<u16>,
    /// shutdown() on an unconnected socket still sets `sk_shutdown` (inet_shutdown).
    pub shutdown: u8,
}

pub(crate) struct FdEntry {
    pub sock: SockRef,
    /// O_NONBLOCK: a file flag, not a socket property.
    pub nonblocking: bool,
}

#[derive(Default)]
pub(crate) struct SockTable {
    fds: Vec<Option<FdEntry>>,
    fresh: Vec<Option<FreshSock>>,
    conns: Vec<Option<ConnSlot>>,
    /// The serial number of the connection in each slot of `conns` (see [`ConnHandle`]).
    serials: Vec<u64>,
    next_serial: u64,
    listeners: Vec<Option<ListenerSlot>>,
    /// Children created by a listener and not yet accept()ed: kept even when finished, so
    /// that accept() can still return them (a reset child is accepted, then reports its error).
    pending_children: Vec<ConnId>,
}

/// Puts `item` in the first free slot of `slab`, returning its index.
fn insert<T>(slab: &mut Vec<Option<T>>, item: T) -> u32 {
    match slab.iter().position(Option::is_none) {
        Some(i) => {
            slab[i] = Some(item);
            i as u32
        }
        None => {
            slab.push(Some(item));
            (slab.len() - 1) as u32
        }
    }
}

impl SockTable {
    pub fn get(&self, fd: Fd) -> Option<SockRef> {
        self.entry(fd).map(|e| e.sock)
    }

    pub fn entry(&self, fd: Fd) -> Option<&FdEntry> {
        self.fds.get(fd as usize).and_then(Option::as_ref)
    }

    pub fn entry_mut(&mut self, fd: Fd) -> Option<&mut FdEntry> {
        self.fds.get_mut(fd as usize).and_then(Option::as_mut)
    }

    /// Allocates the lowest free descriptor, starting at 3 (0–2 are the standard streams).
    pub fn alloc_fd(&mut self, sock: SockRef, nonblocking: bool) -> Fd {
        if self.fds.len() < 3 {
            self.fds.resize_with(3, || None);
        }
        let free = self.fds.iter().skip(3).position(Option::is_none).map(|i| i + 3);
        let entry = FdEntry { sock, nonblocking };
        match free {
            Some(i) => {
                self.fds[i] = Some(entry);
                i as Fd
            }
            None => {
                self.fds.push(Some(entry));
                (self.fds.len() - 1) as Fd
            }
        }
    }

    pub fn free_fd(&mut self, fd: Fd) -> Option<FdEntry> {
        self.fds.get_mut(fd as usize).and_then(Option::take)
    }

    pub fn new_fresh(&mut self, sock: FreshSock) -> u32 {
        insert(&mut self.fresh, sock)
    }

    pub fn fresh(&self, i: u32) -> Option<&FreshSock> {
        self.fresh.get(i as usize).and_then(Option::as_ref)
    }

    pub fn fresh_mut(&mut self, i: u32) -> Option<&mut FreshSock> {
        self.fresh.get_mut(i as usize).and_then(Option::as_mut)
    }

    pub fn take_fresh(&mut self, i: u32) -> Option<FreshSock> {
        self.fresh.get_mut(i as usize).and_then(Option::take)
    }

    pub fn add_conn(&mut self, slot: ConnSlot) -> ConnId {
        let i = insert(&mut self.conns, slot) as usize;
        self.serials.resize(self.conns.len(), 0);
        self.serials[i] = self.next_serial;
        self.next_serial += 1;
        ConnId(i as u32)
    }

    /// The handle of the connection now in slot `id`.
    pub fn handle(&self, id: ConnId) -> Option<ConnHandle> {
        self.conn(id)?;
        Some(ConnHandle { id, serial: self.serials[id.0 as usize] })
    }

    /// The connection `h` names, if it still lives.
    pub fn conn_by_handle(&self, h: ConnHandle) -> Option<&ConnSlot> {
        self.conn(h.id).filter(|_| self.serials[h.id.0 as usize] == h.serial)
    }

    pub fn conn(&self, id: ConnId) -> Option<&ConnSlot> {
        self.conns.get(id.0 as usize).and_then(Option::as_ref)
    }

    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut ConnSlot> {
        self.conns.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    pub fn remove_conn(&mut self, id: ConnId) -> Option<ConnSlot> {
        self.conns.get_mut(id.0 as usize).and_then(Option::take)
    }

    pub fn add_listener(&mut self, slot: ListenerSlot) -> ListenerId {
        ListenerId(insert(&mut self.listeners, slot))
    }

    pub fn listener(&self, id: ListenerId) -> Option<&ListenerSlot> {
        self.listeners.get(id.0 as usize).and_then(Option::as_ref)
    }

    pub fn listener_mut(&mut self, id: ListenerId) -> Option<&mut ListenerSlot> {
        self.listeners.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    pub fn remove_listener(&mut self, id: ListenerId) -> Option<ListenerSlot> {
        self.listeners.get_mut(id.0 as usize).and_then(Option::take)
    }

    pub fn listeners(&self) -> impl Iterator<Item = &ListenerSlot> {
        self.listeners.iter().flatten()
    }

    pub fn mark_pending_child(&mut self, id: ConnId) {
        self.pending_children.push(id);
    }

    pub fn unmark_pending_child(&mut self, id: ConnId) {
        self.pending_children.retain(|c| *c != id);
    }

    pub fn is_pending_child(&self, id: ConnId) -> bool {
        self.pending_children.contains(&id)
    }
}

/// What `tcp_poll` sees on a socket that has neither connected nor listened: CLOSE, so
/// POLLOUT|POLLHUP (facts §2.2, "Fresh socket, never connected").
pub(crate) fn fresh_view(profile: &KernelProfile) -> SockView {
    SockView {
        state: Some(TcpState::Close),
        rcvlowat: 1,
        sndbuf: profile.tcp_wmem[1],
        notsent_lowat: profile.tcp_notsent_lowat,
        snd_space: profile.tcp_wmem[1],
        ..SockView::default()
    }
}
