//! The TCP state machine as Linux implements it, declared once as data.
//!
//! [`EDGES`] lists every transition the model may take, labelled with its [`Cause`]; the
//! `petgraph` graph built from it is what each transition is checked against
//! ([`StateGraph::allows`], [`Coverage::record`]), what `tcpsim graph` prints
//! ([`StateGraph::to_dot`]) and what a run's coverage report counts.
//!
//! The edges are Linux's rather than only RFC 9293 §3.3.2's figure: Linux adds the
//! abort (`tcp_disconnect`, SO_LINGER {1,0}, close() with unread data) and timeout
//! (`tcp_write_err`) exits from every synchronized state, and a full socket never sits in
//! TIME_WAIT for long (the timewait mini-socket does; see `tcp_time_wait`). Each edge cites
//! the kernel function that takes it.

use super::state::{Cause, TcpState};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::OnceLock;

use Cause as C;
use TcpState as S;

/// Every legal transition `(from, to, cause)`. The position in this table is the edge's
/// index in coverage reports, so append rather than reorder.
pub const EDGES: &[(TcpState, TcpState, Cause)] = &[
    // af_inet.c inet_listen -> inet_csk_listen_start
    (S::Close, S::Listen, C::Listen),
    // tcp_ipv4.c tcp_v4_connect: tcp_set_state(sk, TCP_SYN_SENT)
    (S::Close, S::SynSent, C::Connect),
    // tcp.c __tcp_close: a listener is set to CLOSE, then inet_csk_listen_stop
    (S::Listen, S::Close, C::CloseUnconnected),
    // af_inet.c inet_shutdown(SHUT_RD) on a listener -> tcp_disconnect
    (S::Listen, S::Close, C::Abort),
    // tcp_input.c tcp_conn_request + tcp_minisocks.c tcp_create_openreq_child: the child
    // (not the listener, which stays in LISTEN) is born in SYN_RECV. RFC 9293's LISTEN->SYN-RECEIVED.
    (S::Listen, S::SynRecv, C::RcvSyn),
    // tcp_input.c tcp_rcv_synsent_state_process -> tcp_finish_connect
    (S::SynSent, S::Established, C::RcvSynAck),
    // tcp_input.c tcp_rcv_synsent_state_process: a SYN without ACK (simultaneous open)
    (S::SynSent, S::SynRecv, C::RcvSyn),
    // tcp_input.c tcp_rcv_synsent_state_process (RST with an acceptable ACK) -> tcp_reset
    (S::SynSent, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout -> tcp_write_err (SYN retries or TCP_USER_TIMEOUT)
    (S::SynSent, S::Close, C::Timeout),
    // tcp.c tcp_disconnect (shutdown() in SYN_SENT, SO_LINGER {1,0})
    (S::SynSent, S::Close, C::Abort),
    // tcp.c tcp_close_state: new_state[TCP_SYN_SENT] = TCP_CLOSE (close() sends nothing)
    (S::SynSent, S::Close, C::CloseUnconnected),
    // tcp_input.c tcp_rcv_state_process, case TCP_SYN_RECV (acceptable ACK)
    (S::SynRecv, S::Established, C::RcvAckOfSyn),
    // tcp.c tcp_close_state: new_state[TCP_SYN_RECV] = TCP_FIN_WAIT1 | TCP_ACTION_FIN
    (S::SynRecv, S::FinWait1, C::Close),
    // tcp_input.c tcp_validate_incoming / tcp_reset
    (S::SynRecv, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout (a SYN_RECV full socket: simultaneous open, Fast Open)
    (S::SynRecv, S::Close, C::Timeout),
    // tcp.c tcp_disconnect (tcp_need_reset includes SYN_RECV)
    (S::SynRecv, S::Close, C::Abort),
    // tcp.c tcp_close_state: new_state[TCP_ESTABLISHED] = TCP_FIN_WAIT1 | TCP_ACTION_FIN
    (S::Established, S::FinWait1, C::Close),
    // tcp_input.c tcp_fin: ESTABLISHED -> CLOSE_WAIT
    (S::Established, S::CloseWait, C::RcvFin),
    // tcp_input.c tcp_reset
    (S::Established, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout / tcp_keepalive_timer -> tcp_write_err
    (S::Established, S::Close, C::Timeout),
    // tcp.c __tcp_close (unread data) / tcp_disconnect
    (S::Established, S::Close, C::Abort),
    // tcp_input.c tcp_rcv_state_process, case TCP_FIN_WAIT1 (snd_una == write_seq)
    (S::FinWait1, S::FinWait2, C::RcvAckOfFin),
    // tcp_input.c tcp_fin: FIN_WAIT1 -> CLOSING (simultaneous close)
    (S::FinWait1, S::Closing, C::RcvFin),
    // (A FIN that also acks ours takes two edges, as Linux sets the state twice within the
    // segment: FIN_WAIT1 -> FIN_WAIT2 in tcp_rcv_state_process, then tcp_fin -> tcp_time_wait.)
    // tcp_input.c tcp_reset
    (S::FinWait1, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout (orphan retries included)
    (S::FinWait1, S::Close, C::Timeout),
    // tcp.c __tcp_close / tcp_disconnect; tcp_rcv_state_process (orphan with TCP_LINGER2 < 0)
    (S::FinWait1, S::Close, C::Abort),
    // tcp_input.c tcp_fin: FIN_WAIT2 -> tcp_time_wait(TCP_TIME_WAIT)
    (S::FinWait2, S::TimeWait, C::RcvFin),
    // tcp_input.c tcp_reset
    (S::FinWait2, S::Close, C::RcvRst),
    // tcp_timer.c tcp_keepalive_timer -> tcp_write_err (SO_KEEPALIVE, fd still open)
    (S::FinWait2, S::Close, C::Timeout),
    // tcp.c __tcp_close / tcp_disconnect
    (S::FinWait2, S::Close, C::Abort),
    // Orphaned FIN_WAIT2: tcp_fin_time() runs out (tcp_keepalive_timer, or the timewait
    // socket in substate FIN_WAIT2: tcp_minisocks.c tcp_time_wait)
    (S::FinWait2, S::Close, C::TimewaitExpired),
    // tcp.c tcp_close_state: new_state[TCP_CLOSE_WAIT] = TCP_LAST_ACK | TCP_ACTION_FIN
    (S::CloseWait, S::LastAck, C::Close),
    // tcp_input.c tcp_reset (sk_err = EPIPE)
    (S::CloseWait, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout / tcp_keepalive_timer
    (S::CloseWait, S::Close, C::Timeout),
    // tcp.c __tcp_close (unread data) / tcp_disconnect
    (S::CloseWait, S::Close, C::Abort),
    // tcp_input.c tcp_rcv_state_process, case TCP_CLOSING -> tcp_time_wait
    (S::Closing, S::TimeWait, C::RcvAckOfFin),
    // tcp_input.c tcp_reset
    (S::Closing, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout (FIN retransmission gave up)
    (S::Closing, S::Close, C::Timeout),
    // tcp.c tcp_disconnect (close() with SO_LINGER {1,0} after shutdown)
    (S::Closing, S::Close, C::Abort),
    // tcp_input.c tcp_rcv_state_process, case TCP_LAST_ACK -> tcp_done
    (S::LastAck, S::Close, C::RcvAckOfFin),
    // tcp_input.c tcp_reset
    (S::LastAck, S::Close, C::RcvRst),
    // tcp_timer.c tcp_write_timeout (FIN retransmission gave up)
    (S::LastAck, S::Close, C::Timeout),
    // tcp.c tcp_disconnect (close() with SO_LINGER {1,0} after shutdown)
    (S::LastAck, S::Close, C::Abort),
    // inet_timewait_sock.c tw_timer_handler after TCP_TIMEWAIT_LEN
    (S::TimeWait, S::Close, C::TimewaitExpired),
    // tcp_minisocks.c tcp_timewait_state_process: RST kills the timewait socket
    // (tcp_rfc1337 = 0, the default)
    (S::TimeWait, S::Close, C::RcvRst),
    // tcp_minisocks.c tcp_timewait_state_process → TCP_TW_SYN: a new SYN above rcv_nxt (or
    // with a newer timestamp) ends the timewait socket and goes to the listener
    (S::TimeWait, S::Close, C::RcvSyn),
];

// Coverage keeps the covered edges in a u128 bit set.
const _: () = assert!(EDGES.len() <= 128, "Coverage's bit set holds at most 128 edges");

/// One labelled edge of the graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: TcpState,
    pub to: TcpState,
    pub cause: Cause,
}

/// A transition the graph does not contain: a bug in the model, reported in the trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal TCP transition {from} -> {to} ({cause})", cause = cause.name())]
pub struct IllegalTransition {
    pub from: TcpState,
    pub to: TcpState,
    pub cause: Cause,
}

/// The state graph, built once from [`EDGES`].
#[derive(Debug)]
pub struct StateGraph {
    graph: DiGraph<TcpState, Cause>,
    nodes: [NodeIndex; 11],
}

/// The one graph, built on first use.
pub fn tcp_graph() -> &'static StateGraph {
    static GRAPH: OnceLock<StateGraph> = OnceLock::new();
    GRAPH.get_or_init(StateGraph::build)
}

fn state_index(s: TcpState) -> usize {
    TcpState::ALL.iter().position(|&x| x == s).expect("TcpState::ALL lists every state")
}

impl StateGraph {
    fn build() -> StateGraph {
        let mut graph = DiGraph::with_capacity(TcpState::ALL.len(), EDGES.len());
        let nodes = TcpState::ALL.map(|s| graph.add_node(s));
        // Edges are added in table order, so a petgraph EdgeIndex equals the table index.
        for &(from, to, cause) in EDGES {
            graph.add_edge(nodes[state_index(from)], nodes[state_index(to)], cause);
        }
        StateGraph { graph, nodes }
    }

    fn node(&self, s: TcpState) -> NodeIndex {
        self.nodes[state_index(s)]
    }

    /// The index of edge `from -> to` labelled `cause`, if the graph has it.
    pub fn edge_index(&self, from: TcpState, to: TcpState, cause: Cause) -> Option<usize> {
        self.graph
            .edges_connecting(self.node(from), self.node(to))
            .find(|e| *e.weight() == cause)
            .map(|e| e.id().index())
    }

    /// Whether the model may go from `from` to `to` for `cause`.
    pub fn allows(&self, from: TcpState, to: TcpState, cause: Cause) -> bool {
        self.edge_index(from, to, cause).is_some()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Every edge, in [`EDGES`] order (stable across runs and builds).
    pub fn edges(&self) -> impl Iterator<Item = Edge> + '_ {
        self.graph.edge_references().map(|e| Edge {
            from: self.graph[e.source()],
            to: self.graph[e.target()],
            cause: *e.weight(),
        })
    }

    /// The graph in Graphviz DOT, nodes named by [`TcpState::name`] and edges labelled by
    /// [`Cause::name`]; byte-for-byte the same on every run.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph tcp_states {\n    rankdir=TB;\n    node [shape=box];\n");
        for st in TcpState::ALL {
            let _ = writeln!(s, "    \"{}\";", st.name());
        }
        for e in self.edges() {
            let _ = writeln!(s, "    \"{}\" -> \"{}\" [label=\"{}\"];", e.from.name(), e.to.name(), e.cause.name());
        }
        s.push_str("}\n");
        s
    }
}

/// Which edges a run took: a bit set of edge indices.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    bits: u128,
}

/// The JSON form of [`Coverage`] for the run report.
#[derive(Clone, Debug, Serialize)]
pub struct CoverageReport {
    pub covered_count: usize,
    pub total: usize,
    pub covered: Vec<Edge>,
    pub missing: Vec<Edge>,
}

impl Coverage {
    pub fn new() -> Coverage {
        Coverage::default()
    }

    /// Checks a transition against the graph and marks its edge covered.
    pub fn record(&mut self, from: TcpState, to: TcpState, cause: Cause) -> Result<(), IllegalTransition> {
        let i = tcp_graph().edge_index(from, to, cause).ok_or(IllegalTransition { from, to, cause })?;
        self.bits |= 1u128 << i;
        Ok(())
    }

    /// Adds another run's (or connection's) coverage to this one.
    pub fn merge(&mut self, other: &Coverage) {
        self.bits |= other.bits;
    }

    fn select(&self, covered: bool) -> impl Iterator<Item = Edge> + '_ {
        tcp_graph().edges().enumerate().filter(move |(i, _)| (self.bits >> i & 1 == 1) == covered).map(|(_, e)| e)
    }

    /// The covered edges, in [`EDGES`] order.
    pub fn covered(&self) -> impl Iterator<Item = Edge> + '_ {
        self.select(true)
    }

    /// The edges not yet covered, in [`EDGES`] order.
    pub fn missing(&self) -> impl Iterator<Item = Edge> + '_ {
        self.select(false)
    }

    pub fn report(&self) -> CoverageReport {
        CoverageReport {
            covered_count: self.bits.count_ones() as usize,
            total: tcp_graph().edge_count(),
            covered: self.covered().collect(),
            missing: self.missing().collect(),
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.report()).expect("coverage report serialises")
    }
}
