//! The socket API as programs see it: syscalls, poll, epoll and FreeBSD's kqueue.

pub mod epoll;
pub mod kqueue;
pub mod poll;
/// What a socket observably is: the model's [`crate::tcp::view`], which readiness reads.
pub mod view {
    pub use crate::tcp::view::*;
}
