//! tcpsim: a deterministic simulator of the Linux kernel's TCP stack.
//!
//! Layout, one concern a module:
//! - [`time`]: simulated time in integer nanoseconds;
//! - [`engine`]: the discrete-event engine (queue, randomness, links, faults, trace);
//! - [`scenario`]: scenario files and their validation;
//! - [`tcp`]: the sans-I/O model of Linux TCP;
//! - [`socket`]: syscalls, poll, epoll, kqueue as programs see them;
//! - [`errno`]: error numbers by name.

pub mod engine;
pub mod errno;
pub mod pcap;
pub mod scenario;
pub mod socket;
pub mod tcp;
pub mod time;
