//! Edge-triggered epoll through the whole stack (script → host → connection wake-ups →
//! epoll), for the cases users trip on: data arriving in two segments before one read, a
//! FIN after data, an RST after a drained read. An edge is a wake-up: ET reports again only
//! after a new event on the socket, however much stays unread.

mod scenario_text;

use scenario_text::client_server;
use tcpsim::scenario::Observation;

/// A connected pair `c` (client, non-blocking, in an ET epoll `ep` for IN|OUT|RDHUP) and
/// `s` (accepted, TCP_NODELAY so that each send is its own segment), then `steps`.
fn run(steps: &str) -> Vec<Observation> {
    let setup = r#"
[[script]]
op = "sleep"
dur = "50ms"
[[script]]
op = "accept"
sock = "l"
new = "s"
[[script]]
op = "setsockopt"
sock = "s"
opt = "TCP_NODELAY"
value = 1
[[script]]
op = "epoll_create"
ep = "ep"
[[script]]
op = "epoll_ctl"
ep = "ep"
sock = "c"
action = "add"
events = ["EPOLLIN", "EPOLLOUT", "EPOLLRDHUP", "EPOLLET"]
[[script]]
op = "epoll_wait"
ep = "ep"
"#;
    let text = client_server("epoll-et", "5s", true, &format!("{setup}{steps}"));
    let sc = tcpsim::scenario::parse(&text, "epoll-et.toml").expect("valid scenario");
    let mut world = tcpsim::world::World::build(&sc, 1, tcpsim::trace::Trace::off()).unwrap();
    let obs = world.run(&sc);
    let report = world.report(&sc);
    assert!(report.rule_violations.is_empty(), "{:?}", report.rule_violations);
    // The setup's own epoll_wait reports the connected socket's first edge: writable.
    let setup = obs.iter().position(|o| o.op == "epoll_wait").unwrap();
    assert_eq!(events(&obs[setup]), ["POLLOUT"]);
    obs[setup + 1..].to_vec()
}

fn events(o: &Observation) -> Vec<String> {
    o.events.clone().unwrap_or_default()
}

/// The results of the epoll_wait steps, in order.
fn waits(obs: &[Observation]) -> Vec<Vec<String>> {
    obs.iter().filter(|o| o.op == "epoll_wait").map(events).collect()
}

const SEND_1: &str = "[[script]]\nop = \"send\"\nsock = \"s\"\ndata = \"x\"\n";
const SETTLE: &str = "[[script]]\nop = \"sleep\"\ndur = \"20ms\"\n";
const WAIT: &str = "[[script]]\nop = \"epoll_wait\"\nep = \"ep\"\n";
const READ_1: &str = "[[script]]\nop = \"recv\"\nsock = \"c\"\nlen = 1\n";

#[test]
fn two_segments_before_one_read_make_one_edge() {
    let obs = run(&[SEND_1, SEND_1, SETTLE, WAIT, WAIT, READ_1, WAIT].concat());
    let sends: Vec<_> = obs.iter().filter(|o| o.op == "send").collect();
    assert!(sends.iter().all(|o| o.ret == Some(1)));
    // Both segments arrived before the wait: one event, then none, and after reading one
    // of the two bytes still none, though a byte remains: no new edge.
    assert_eq!(waits(&obs), [vec!["POLLIN", "POLLOUT"], vec![], vec![]]);
    let read = obs.iter().find(|o| o.op == "recv").unwrap();
    assert_eq!(read.ret, Some(1));
}

#[test]
fn a_fin_after_data_is_a_new_edge() {
    let shut = "[[script]]\nop = \"shutdown\"\nsock = \"s\"\nhow = \"SHUT_WR\"\n";
    let obs = run(&[SEND_1, SETTLE, WAIT, WAIT, shut, SETTLE, WAIT, WAIT].concat());
    assert_eq!(
        waits(&obs),
        [vec!["POLLIN", "POLLOUT"], vec![], vec!["POLLIN", "POLLOUT", "POLLRDHUP"], vec![]]
    );
}

#[test]
fn an_rst_after_a_drained_read_is_one_edge_with_everything() {
    let linger0 = "[[script]]\nop = \"setsockopt\"\nsock = \"s\"\nopt = \"SO_LINGER\"\nvalue = [1, 0]\n";
    let close = "[[script]]\nop = \"close\"\nsock = \"s\"\n";
    let obs = run(&[SEND_1, SETTLE, WAIT, READ_1, WAIT, linger0, close, SETTLE, WAIT, WAIT].concat());
    assert_eq!(
        waits(&obs),
        [
            vec!["POLLIN", "POLLOUT"],
            vec![],
            vec!["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"],
            vec![],
        ]
    );
}

#[test]
fn arriving_data_does_not_wake_a_watcher_of_pollout_only() {
    // ep_poll_callback drops a wake-up whose key (sock_def_readable's IN|PRI|RDNORM|RDBAND)
    // shares nothing with the watcher's interest: no spurious POLLOUT edge.
    let out_only = r#"
[[script]]
op = "epoll_create"
ep = "out"
[[script]]
op = "epoll_ctl"
ep = "out"
sock = "c"
action = "add"
events = ["EPOLLOUT", "EPOLLET"]
[[script]]
op = "epoll_wait"
ep = "out"
"#;
    let obs = run(&[out_only, SEND_1, SETTLE, "[[script]]\nop = \"epoll_wait\"\nep = \"out\"\n", WAIT].concat());
    assert_eq!(waits(&obs), [vec!["POLLOUT"], vec![], vec!["POLLIN", "POLLOUT"]]);
}
