//! The socket API as programs see it: syscalls, poll, epoll and FreeBSD's kqueue.

pub mod epoll;
pub mod kqueue;
pub mod poll;
pub mod view;
