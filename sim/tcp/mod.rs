//! The model of the Linux kernel's TCP, sans I/O: it consumes segments, syscalls and timer
//! expiries and produces segments, timer requests and state changes. The engine owns time
//! and the wire.

pub mod cc;
pub mod chrono;
pub mod conn;
pub mod fastopen;
pub mod graph;
pub mod isn;
pub mod jiffies;
pub mod listener;
pub mod mib;
pub mod profile;
pub mod rack;
pub mod reset;
pub mod route;
pub mod rtt;
pub mod segment;
pub mod state;
pub mod syncookie;
pub mod timeouts;
pub mod uapi;
pub mod view;
