//! The TCP state graph: shape, legality checks, coverage, and the committed DOT rendering.

use tcpsim::tcp::graph::{tcp_graph, Coverage, EDGES};
use tcpsim::tcp::state::{Cause, TcpState};

use Cause as C;
use TcpState as S;

#[test]
fn every_state_has_an_edge_in_and_an_edge_out() {
    let g = tcp_graph();
    for s in TcpState::ALL {
        assert!(g.edges().any(|e| e.to == s), "{s} has no incoming edge");
        assert!(g.edges().any(|e| e.from == s), "{s} has no outgoing edge");
    }
}

#[test]
fn edges_are_the_table_in_order_without_duplicates_or_loops() {
    let g = tcp_graph();
    let listed: Vec<_> = g.edges().map(|e| (e.from, e.to, e.cause)).collect();
    assert_eq!(listed, EDGES.to_vec());
    for (i, e) in EDGES.iter().enumerate() {
        assert_ne!(e.0, e.1, "self-loop {e:?}");
        assert!(!EDGES[..i].contains(e), "duplicate edge {e:?}");
    }
}

#[test]
fn allows_linux_transitions() {
    let g = tcp_graph();
    for (from, to, cause) in [
        (S::Close, S::SynSent, C::Connect),
        (S::SynSent, S::SynRecv, C::RcvSyn),
        (S::SynRecv, S::Established, C::RcvAckOfSyn),
        (S::Established, S::CloseWait, C::RcvFin),
        (S::FinWait1, S::FinWait2, C::RcvAckOfFin),
        (S::FinWait2, S::Close, C::TimewaitExpired),
        (S::CloseWait, S::LastAck, C::Close),
        (S::TimeWait, S::Close, C::RcvRst),
    ] {
        assert!(g.allows(from, to, cause), "{from} -> {to} ({}) should be legal", cause.name());
    }
}

#[test]
fn rejects_illegal_transitions_and_wrong_causes() {
    let g = tcp_graph();
    for (from, to, cause) in [
        (S::Listen, S::Established, C::RcvAckOfSyn),
        (S::Close, S::Established, C::RcvSynAck),
        (S::TimeWait, S::Established, C::RcvSyn),
        (S::Established, S::SynSent, C::Connect),
        (S::CloseWait, S::FinWait1, C::Close),
        // Right states, wrong cause.
        (S::Established, S::CloseWait, C::Close),
        (S::Established, S::FinWait1, C::RcvFin),
        (S::SynSent, S::Close, C::TimewaitExpired),
        (S::Listen, S::Close, C::RcvRst),
    ] {
        assert!(!g.allows(from, to, cause), "{from} -> {to} ({}) should be illegal", cause.name());
    }
}

#[test]
fn coverage_records_legal_edges_and_reports_illegal_ones() {
    let mut cov = Coverage::new();
    cov.record(S::Close, S::SynSent, C::Connect).unwrap();
    cov.record(S::SynSent, S::Established, C::RcvSynAck).unwrap();
    cov.record(S::Close, S::SynSent, C::Connect).unwrap(); // twice counts once
    let err = cov.record(S::Listen, S::Established, C::RcvAckOfSyn).unwrap_err();
    assert_eq!(err.to_string(), "illegal TCP transition LISTEN -> ESTABLISHED (rcv_ack_of_syn)");

    let covered: Vec<_> = cov.covered().map(|e| (e.from, e.to, e.cause)).collect();
    assert_eq!(covered, vec![(S::Close, S::SynSent, C::Connect), (S::SynSent, S::Established, C::RcvSynAck)]);
    assert_eq!(cov.missing().count(), EDGES.len() - 2);

    let json = cov.to_json();
    assert_eq!(json["covered_count"], 2);
    assert_eq!(json["total"], EDGES.len());
    assert_eq!(json["covered"][0]["from"], "CLOSE");
    assert_eq!(json["covered"][0]["to"], "SYN_SENT");
    assert_eq!(json["covered"][0]["cause"], "connect");

    let mut other = Coverage::new();
    other.record(S::TimeWait, S::Close, C::TimewaitExpired).unwrap();
    cov.merge(&other);
    assert_eq!(cov.covered().count(), 3);
}

#[test]
fn dot_output_is_stable_and_matches_docs() {
    let dot = tcp_graph().to_dot();
    assert_eq!(dot, tcp_graph().to_dot());
    assert!(dot.contains("\"SYN_SENT\" -> \"ESTABLISHED\" [label=\"rcv_syn_ack\"];"));
    assert_eq!(dot.matches(" -> ").count(), EDGES.len());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tcp-states.dot");
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(path, &dot).unwrap();
    }
    let committed = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (regenerate with UPDATE_DOCS=1 cargo test --test tcp_graph)"));
    assert_eq!(committed, dot, "{path} is stale: regenerate with UPDATE_DOCS=1 cargo test --test tcp_graph");
}
