//! The socket API as programs see it: syscalls, poll, epoll and FreeBSD's kqueue.

pub mod view;
