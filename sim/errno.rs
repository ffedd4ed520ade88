//! The errno values the socket layer reports, by their Linux names.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An error number as a program sees it. Serialised by name (`"ECONNRESET"`), as in
/// the readiness table and every JSON report.
#[allow(clippy::upper_case_acronyms)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Errno {
    EAGAIN,
    EPIPE,
    ECONNRESET,
    ECONNREFUSED,
    ECONNABORTED,
    ETIMEDOUT,
    ENOTCONN,
    EISCONN,
    EALREADY,
    EINPROGRESS,
    EINVAL,
    EBADF,
    EADDRINUSE,
    EADDRNOTAVAIL,
    EHOSTUNREACH,
    ENETUNREACH,
    EOPNOTSUPP,
    ENOPROTOOPT,
    EMFILE,
    ENOBUFS,
    EINTR,
    /// epoll_ctl(EPOLL_CTL_ADD) of an fd already registered (fs/eventpoll.c).
    EEXIST,
    /// epoll_ctl(EPOLL_CTL_MOD/DEL) of an fd not registered (fs/eventpoll.c).
    ENOENT,
    /// A syscall the host's system does not have (epoll on FreeBSD, kqueue on Linux).
    ENOSYS,
    /// A user buffer the kernel cannot copy through (a NULL pointer: `UserBuf::Null`).
    EFAULT,
}

impl Errno {
    /// The Linux (x86-64) number, for pcap-adjacent tools and the capture harness.
    pub fn code(self) -> i32 {
        use Errno::*;
        match self {
            EAGAIN => 11,
            EPIPE => 32,
            ECONNRESET => 104,
            ECONNREFUSED => 111,
            ECONNABORTED => 103,
            ETIMEDOUT => 110,
            ENOTCONN => 107,
            EISCONN => 106,
            EALREADY => 114,
            EINPROGRESS => 115,
            EINVAL => 22,
            EBADF => 9,
            EADDRINUSE => 98,
            EADDRNOTAVAIL => 99,
            EHOSTUNREACH => 113,
            ENETUNREACH => 101,
            EOPNOTSUPP => 95,
            ENOPROTOOPT => 92,
            EMFILE => 24,
            ENOBUFS => 105,
            EINTR => 4,
            EEXIST => 17,
            ENOENT => 2,
            ENOSYS => 38,
            EFAULT => 14,
        }
    }

    /// Every errno the model knows, in declaration order.
    pub fn all() -> &'static [Errno] {
        &ALL
    }

    /// The inverse of [`Errno::code`], for reading real-kernel observations.
    pub fn from_code(code: i32) -> Option<Errno> {
        ALL.iter().copied().find(|e| e.code() == code)
    }

    pub fn name(self) -> &'static str {
        use Errno::*;
        match self {
            EAGAIN => "EAGAIN",
            EPIPE => "EPIPE",
            ECONNRESET => "ECONNRESET",
            ECONNREFUSED => "ECONNREFUSED",
            ECONNABORTED => "ECONNABORTED",
            ETIMEDOUT => "ETIMEDOUT",
            ENOTCONN => "ENOTCONN",
            EISCONN => "EISCONN",
            EALREADY => "EALREADY",
            EINPROGRESS => "EINPROGRESS",
            EINVAL => "EINVAL",
            EBADF => "EBADF",
            EADDRINUSE => "EADDRINUSE",
            EADDRNOTAVAIL => "EADDRNOTAVAIL",
            EHOSTUNREACH => "EHOSTUNREACH",
            ENETUNREACH => "ENETUNREACH",
            EOPNOTSUPP => "EOPNOTSUPP",
            ENOPROTOOPT => "ENOPROTOOPT",
            EMFILE => "EMFILE",
            ENOBUFS => "ENOBUFS",
            EINTR => "EINTR",
            EEXIST => "EEXIST",
            ENOENT => "ENOENT",
            ENOSYS => "ENOSYS",
            EFAULT => "EFAULT",
        }
    }
}

const ALL: [Errno; 25] = {
    use Errno::*;
    [
        EAGAIN, EPIPE, ECONNRESET, ECONNREFUSED, ECONNABORTED, ETIMEDOUT, ENOTCONN, EISCONN,
        EALREADY, EINPROGRESS, EINVAL, EBADF, EADDRINUSE, EADDRNOTAVAIL, EHOSTUNREACH,
        ENETUNREACH, EOPNOTSUPP, ENOPROTOOPT, EMFILE, ENOBUFS, EINTR, EEXIST, ENOENT, ENOSYS,
        EFAULT,
    ]
};

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
