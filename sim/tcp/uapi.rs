//! The socket API's vocabulary as the kernel's headers spell it (include/uapi/linux/socket.h,
//! tcp.h, sockios.h): options, their values, send/recv flags, shutdown modes, ioctl requests.
//! The model owns these names; scenario files and the real-kernel harness use them as they are.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Socket options the model implements, by their C names.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
pub enum SockOpt {
    SO_ERROR,
    SO_KEEPALIVE,
    SO_LINGER,
    SO_SNDBUF,
    SO_RCVBUF,
    SO_RCVLOWAT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_KEEPCNT,
    TCP_USER_TIMEOUT,
    TCP_SYNCNT,
    TCP_NODELAY,
    TCP_NOTSENT_LOWAT,
    TCP_RTO_MAX_MS,
    TCP_CONGESTION,
    TCP_INFO,
    // Whether each recvmsg() carries a `TCP_CM_INQ` control message with the bytes left to
    // read (`tp->recvmsg_inq`). A plain comment: a doc comment would turn the schema's
    // option names from one string enum into a list of constants.
    TCP_INQ,
    // The MSS to advertise and to send at most (`tp->rx_opt.user_mss`); 0 is unset.
    TCP_MAXSEG,
    // Hold sub-MSS segments until the cork is pulled (`TCP_NAGLE_CORK` in `tp->nonagle`).
    TCP_CORK,
    // Let MSG_ZEROCOPY sends pin the user's pages instead of copying them (`SOCK_ZEROCOPY`;
    // sk_setsockopt: 0 or 1 on a TCP socket, else EINVAL).
    SO_ZEROCOPY,
    // SOL_IP: the IP header's TOS byte (`inet->tos`); for TCP its ECN bits stay the
    // kernel's. A change resets the cached route (`sk_dst_reset`).
    IP_TOS,
    // SOL_IP: path MTU discovery, IP_PMTUDISC_DONT (0) ..= IP_PMTUDISC_OMIT (5)
    // (`inet->pmtudisc`).
    IP_MTU_DISCOVER,
    // Fast Open by connect(): with a cookie cached for the destination connect() returns 0
    // at once and the first write sends the SYN with data; without one the SYN asks for a
    // cookie (`tp->fastopen_connect`; tcp.c do_tcp_setsockopt: 0 or 1, EOPNOTSUPP when
    // net.ipv4.tcp_fastopen lacks TFO_CLIENT_ENABLE, EINVAL once the socket left CLOSE).
    TCP_FASTOPEN_CONNECT,
    // Fast Open for a listener (or a socket about to listen): a queue of at most this many
    // children made at their SYN and still in their handshake (`fastopen_queue_tune`, capped
    // at somaxconn); SYN-data is taken only with net.ipv4.tcp_fastopen's server bit (2).
    // tcp.c do_tcp_setsockopt: a value >= 0, EINVAL once the socket is connecting or
    // connected.
    TCP_FASTOPEN,
}

/// An option's value: an integer, `[l_onoff, l_linger]` for SO_LINGER, or a name for
/// TCP_CONGESTION.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OptValue {
    Int(i64),
    Pair([i64; 2]),
    Name(String),
}

#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum MsgFlag {
    MSG_PEEK,
    MSG_DONTWAIT,
    MSG_NOSIGNAL,
    MSG_WAITALL,
    MSG_MORE,
    // The write ends a record: later writes start a new skb and no skb merges across its
    // end (`TCP_SKB_CB(skb)->eor`, tcp.c `tcp_sendmsg_locked`).
    MSG_EOR,
    // Send from pinned user pages where SO_ZEROCOPY is set and the send is not empty
    // (`tcp_sendmsg_locked`: "flags & MSG_ZEROCOPY && size && sock_flag(sk, SOCK_ZEROCOPY)"),
    // else an ordinary send. The bytes sent and the call's result are a copying send's; the
    // pages' memory accounting and the completion notices read with MSG_ERRQUEUE are not
    // modelled.
    MSG_ZEROCOPY,
    // With a destination (sendto): the write opens the connection, its SYN carrying what of
    // the data fits when a cookie for the destination is cached, else asking for one (TCP
    // Fast Open; tcp.c `tcp_sendmsg_fastopen`, EOPNOTSUPP unless `net.ipv4.tcp_fastopen` has
    // bit 1). A blocking call then waits for the handshake and writes the rest; a
    // non-blocking one answers the bytes the SYN took, or EINPROGRESS.
    MSG_FASTOPEN,
}

#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ShutHow {
    SHUT_RD,
    SHUT_WR,
    SHUT_RDWR,
}

#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum IoctlReq {
    /// Bytes readable (`SIOCINQ`).
    FIONREAD,
    /// Bytes unacknowledged plus unsent (`write_seq - snd_una`).
    SIOCOUTQ,
    /// Bytes not yet sent (`write_seq - snd_nxt`).
    SIOCOUTQNSD,
}

/// The user buffer a send() reads or a recv() fills: the program's own memory, or a NULL
/// pointer, which the kernel's copy faults on. The fault is found where the bytes are copied,
/// after the call's state and error checks (tcp.c `tcp_sendmsg_locked`:
/// `skb_copy_to_page_nocache` → `do_error`; `tcp_recvmsg_locked`: `skb_copy_datagram_msg` →
/// "copied = -EFAULT"), so a call that fails earlier fails as it would with any buffer, and
/// one that copies nothing (a zero length, `MSG_TRUNC`) succeeds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum UserBuf {
    #[default]
    #[serde(rename = "mapped")]
    Mapped,
    #[serde(rename = "NULL")]
    Null,
}
