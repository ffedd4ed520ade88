//! tcpsim: a deterministic simulator of the Linux kernel's TCP stack.
//!
//! Layout, one concern a module:
//! - [`addr`]: socket addresses, IPv4 or IPv6, in 8 bytes;
//! - [`time`]: simulated time in integer nanoseconds;
//! - [`engine`]: the discrete-event engine (queue, randomness, links, faults, trace);
//! - [`scenario`]: scenario files and their validation;
//! - [`tcp`]: the sans-I/O model of Linux TCP;
//! - [`socket`]: readiness as programs see it: poll, epoll, kqueue;
//! - [`rules`]: the documented readiness rules every poll/epoll/kqueue answer is checked against;
//! - [`host`]: a host's kernel: demultiplexing, descriptors, syscalls;
//! - [`syscall`]: the socket syscalls as one interface over the model and the real kernel;
//! - [`script`]: the one interpreter of scenario scripts over that interface, and the
//!   observation log it writes;
//! - [`world`]: a whole run: applications, scripts, the report;
//! - [`table`]: the readiness table, by simulation;
//! - [`trace`]: the JSON Lines trace of a run;
//! - [`capture`] (Linux): the same scenarios run on the real kernel, in network namespaces;
//! - [`pcap`]: pcap writing and reading, Wireshark-style labels;
//! - [`replay`]: trace replay, a captured trace held against the model;
//! - [`sweep`]: many seeds of one scenario, invariants on each, shards and their merge;
//! - [`plot`]: time-sequence, RTO, state, readiness and sweep plots (SVG and PNG);
//! - [`packetdrill`]: packetdrill scripts run against the model, a conformance report;
//! - [`cli`]: the verbs of the `tcpsim` command;
//! - [`output`]: output files, never half-written, never a device or a link replaced;
//! - [`limits`]: bounds on a run, and its progress on a terminal;
//! - [`errno`]: error numbers by name.

#[cfg(target_os = "linux")]
pub mod capture;
pub mod addr;
pub mod cli;
pub mod engine;
pub mod errno;
pub mod host;
pub mod limits;
pub mod output;
pub mod packetdrill;
pub mod pcap;
pub mod plot;
pub mod replay;
pub mod rules;
pub mod scenario;
pub mod script;
pub mod socket;
pub mod sweep;
pub mod syscall;
pub mod table;
pub mod tcp;
pub mod time;
pub mod trace;
pub mod world;
