//! The host's socket table: descriptors, connections and listeners.
//!
//! Descriptors are allocated lowest-free-first, as `get_unused_fd_flags` does, so scripts
//! and traces see the numbers a real program would. Connections live in a slab apart from
//! descriptors because a connection outlives its descriptor (an orphan after close()) and
//! exists before one (a child waiting in the accept queue).
//!
//! Every slab keeps the set of its free slots, so allocating the lowest free one costs a
//! set lookup, not a scan: a host with a million sockets allocates as fast as one with ten.

use super::{ConnSlot, ListenerSlot};
use crate::socket::view::SockView;
use crate::tcp::conn::SockOpts;
use crate::tcp::profile::KernelProfile;
use crate::tcp::state::TcpState;
use std::collections::BTreeSet;

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

/// Slots of `T`, reused lowest-index-first: the free indices are kept in an ordered set so
/// that finding the lowest costs O(log n) (a scan would make N allocations cost N²).
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    /// Indices of the empty slots below `slots.len()`, at or above `first`.
    free: BTreeSet<u32>,
    /// The lowest index handed out (descriptors start at 3).
    first: u32,
}

impl<T> Slab<T> {
    const fn starting_at(first: u32) -> Self {
        Slab { slots: Vec::new(), free: BTreeSet::new(), first }
    }

    /// Puts `item` in the lowest free slot, returning its index.
    fn insert(&mut self, item: T) -> u32 {
        if let Some(i) = self.free.pop_first() {
            self.slots[i as usize] = Some(item);
            return i;
        }
        if self.slots.len() < self.first as usize {
            self.slots.resize_with(self.first as usize, || None);
        }
        self.slots.push(Some(item));
        (self.slots.len() - 1) as u32
    }

    fn get(&self, i: u32) -> Option<&T> {
        self.slots.get(i as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.slots.get_mut(i as usize).and_then(Option::as_mut)
    }

    fn take(&mut self, i: u32) -> Option<T> {
        let item = self.slots.get_mut(i as usize).and_then(Option::take)?;
        self.free.insert(i);
        Some(item)
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }
}

pub(crate) struct SockTable {
    fds: Slab<FdEntry>,
    fresh: Slab<FreshSock>,
    conns: Slab<ConnSlot>,
    /// The serial number of the connection in each slot of `conns` (see [`ConnHandle`]).
    serials: Vec<u64>,
    next_serial: u64,
    listeners: Slab<ListenerSlot>,
    /// Children created by a listener and not yet accept()ed: kept even when finished, so
    /// that accept() can still return them (a reset child is accepted, then reports its error).
    pending_children: BTreeSet<ConnId>,
}

impl Default for SockTable {
    fn default() -> Self {
        SockTable {
            // 0–2 are the standard streams.
            fds: Slab::starting_at(3),
            fresh: Slab::starting_at(0),
            conns: Slab::starting_at(0),
            serials: Vec::new(),
            next_serial: 0,
            listeners: Slab::starting_at(0),
            pending_children: BTreeSet::new(),
        }
    }
}

impl SockTable {
    pub fn get(&self, fd: Fd) -> Option<SockRef> {
        self.entry(fd).map(|e| e.sock)
    }

    pub fn entry(&self, fd: Fd) -> Option<&FdEntry> {
        self.fds.get(fd)
    }

    pub fn entry_mut(&mut self, fd: Fd) -> Option<&mut FdEntry> {
        self.fds.get_mut(fd)
    }

    /// Allocates the lowest free descriptor, starting at 3 (0–2 are the standard streams).
    pub fn alloc_fd(&mut self, sock: SockRef, nonblocking: bool) -> Fd {
        self.fds.insert(FdEntry { sock, nonblocking })
    }

    pub fn free_fd(&mut self, fd: Fd) -> Option<FdEntry> {
        self.fds.take(fd)
    }

    pub fn new_fresh(&mut self, sock: FreshSock) -> u32 {
        self.fresh.insert(sock)
    }

    pub fn fresh(&self, i: u32) -> Option<&FreshSock> {
        self.fresh.get(i)
    }

    pub fn fresh_mut(&mut self, i: u32) -> Option<&mut FreshSock> {
        self.fresh.get_mut(i)
    }

    pub fn take_fresh(&mut self, i: u32) -> Option<FreshSock> {
        self.fresh.take(i)
    }

    pub fn add_conn(&mut self, slot: ConnSlot) -> ConnId {
        let i = self.conns.insert(slot) as usize;
        self.serials.resize(self.serials.len().max(i + 1), 0);
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
        self.conns.get(id.0)
    }

    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut ConnSlot> {
        self.conns.get_mut(id.0)
    }

    pub fn conns_mut(&mut self) -> impl Iterator<Item = &mut ConnSlot> {
        self.conns.iter_mut()
    }

    pub fn remove_conn(&mut self, id: ConnId) -> Option<ConnSlot> {
        self.conns.take(id.0)
    }

    pub fn add_listener(&mut self, slot: ListenerSlot) -> ListenerId {
        ListenerId(self.listeners.insert(slot))
    }

    pub fn listener(&self, id: ListenerId) -> Option<&ListenerSlot> {
        self.listeners.get(id.0)
    }

    pub fn listener_mut(&mut self, id: ListenerId) -> Option<&mut ListenerSlot> {
        self.listeners.get_mut(id.0)
    }

    pub fn remove_listener(&mut self, id: ListenerId) -> Option<ListenerSlot> {
        self.listeners.take(id.0)
    }

    pub fn listeners(&self) -> impl Iterator<Item = &ListenerSlot> {
        self.listeners.iter()
    }

    pub fn mark_pending_child(&mut self, id: ConnId) {
        self.pending_children.insert(id);
    }

    pub fn unmark_pending_child(&mut self, id: ConnId) {
        self.pending_children.remove(&id);
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
