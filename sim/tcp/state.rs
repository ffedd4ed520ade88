//! The eleven TCP states (RFC 9293 §3.3.2), named as Linux names them (`include/net/tcp_states.h`).
//!
//! The transitions between them are declared once, as a graph, in [`super::graph`].

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    /// Linux's `TCP_CLOSE`: RFC 9293's CLOSED (a fresh socket, or one that is done).
    #[serde(rename = "CLOSE")]
    Close,
    Listen,
    SynSent,
    SynRecv,
    Established,
    #[serde(rename = "FIN_WAIT1")]
    FinWait1,
    #[serde(rename = "FIN_WAIT2")]
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    pub const ALL: [TcpState; 11] = [
        TcpState::Close,
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::CloseWait,
        TcpState::Closing,
        TcpState::LastAck,
        TcpState::TimeWait,
    ];

    /// The name `ss` and `/proc/net/tcp` use.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Close => "CLOSE",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// The `TCP_*` number Linux reports in `tcpi_state` (include/net/tcp_states.h).
    pub fn linux_number(self) -> u8 {
        match self {
            TcpState::Established => 1,
            TcpState::SynSent => 2,
            TcpState::SynRecv => 3,
            TcpState::FinWait1 => 4,
            TcpState::FinWait2 => 5,
            TcpState::TimeWait => 6,
            TcpState::Close => 7,
            TcpState::CloseWait => 8,
            TcpState::LastAck => 9,
            TcpState::Listen => 10,
            TcpState::Closing => 11,
        }
    }

    /// Synchronized states (RFC 9293 §3.5.2): a sequence-numbered exchange has happened.
    pub fn is_synchronized(self) -> bool {
        !matches!(self, TcpState::Close | TcpState::Listen | TcpState::SynSent | TcpState::SynRecv)
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a connection changed state: the label of an edge of the state graph
/// ([`super::graph`]). Every transition the model takes names one of these.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// listen() (inet_csk_listen_start).
    Listen,
    /// connect(): a SYN is sent (tcp_v4_connect).
    Connect,
    /// A SYN arrived: a listener's child is born in SYN_RECV, or a simultaneous open.
    RcvSyn,
    /// A SYN-ACK acceptable to a SYN_SENT socket (tcp_rcv_synsent_state_process).
    RcvSynAck,
    /// An ACK that acknowledges our SYN (tcp_rcv_state_process, SYN_RECV).
    RcvAckOfSyn,
    /// A FIN in sequence (tcp_fin).
    RcvFin,
    /// An ACK that acknowledges our FIN.
    RcvAckOfFin,
    /// close() or shutdown(SHUT_WR) sends our FIN (tcp_close_state).
    Close,
    /// An acceptable RST (tcp_reset).
    RcvRst,
    /// The retransmission, SYN, keepalive or user timeout gave up (tcp_write_err).
    Timeout,
    /// The local side aborted with RST: SO_LINGER {1,0}, close() with unread data, or
    /// disconnect (tcp_disconnect, tcp_send_active_reset).
    Abort,
    /// TIME_WAIT's 2MSL (TCP_TIMEWAIT_LEN) or an orphan's FIN_WAIT2 timeout ran out.
    TimewaitExpired,
    /// close() of a listener or of a socket that never connected.
    CloseUnconnected,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Listen => "listen",
            Cause::Connect => "connect",
            Cause::RcvSyn => "rcv_syn",
            Cause::RcvSynAck => "rcv_syn_ack",
            Cause::RcvAckOfSyn => "rcv_ack_of_syn",
            Cause::RcvFin => "rcv_fin",
            Cause::RcvAckOfFin => "rcv_ack_of_fin",
            Cause::Close => "close",
            Cause::RcvRst => "rcv_rst",
            Cause::Timeout => "timeout",
            Cause::Abort => "abort",
            Cause::TimewaitExpired => "timewait_expired",
            Cause::CloseUnconnected => "close_unconnected",
        }
    }
}
