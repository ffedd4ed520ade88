//! A NULL user buffer (`buf = "NULL"`) through the one syscall layer: the copy faults with
//! EFAULT where `tcp_sendmsg_locked` / `tcp_recvmsg_locked` copy, after their state and error
//! checks, and leaves the queues as they were.

mod scenario_text;
use scenario_text::{listen_and_connect, two_hosts};
use tcpsim::errno::Errno;
use tcpsim::scenario::{parse, Observation};
use tcpsim::trace::Trace;
use tcpsim::world::World;

fn step(op: &str, sock: &str, rest: &str) -> String {
    format!("[[script]]\nop = \"{op}\"\nsock = \"{sock}\"\n{rest}\n")
}

/// Runs the client/server connection, then `steps`; the observations of `steps` only.
fn run(steps: &[String]) -> Vec<Observation> {
    let setup = format!(
        "{}{}{}",
        two_hosts("null-buf", "2s", "1ms"),
        listen_and_connect("server", "client", "server:80", false),
        step("accept", "l", "new = \"s\"")
    );
    let text = format!("{setup}{}", steps.concat());
    let sc = parse(&text, "null-buf.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut world = World::build(&sc, 1, Trace::off()).unwrap();
    let obs = world.run(&sc);
    obs[obs.len() - steps.len()..].to_vec()
}

fn result(o: &Observation) -> (Option<i64>, Option<Errno>, Option<i64>) {
    (o.ret, o.errno, o.value.as_ref().and_then(|v| v.as_i64()))
}

#[test]
fn a_send_from_null_faults_and_queues_nothing() {
    let obs = run(&[
        step("send", "c", "len = 1000\nbuf = \"NULL\""),
        step("ioctl", "c", "req = \"SIOCOUTQ\""),
        step("send", "c", "len = 100"),
        step("ioctl", "c", "req = \"SIOCOUTQ\""),
    ]);
    assert_eq!(result(&obs[0]), (Some(-1), Some(Errno::EFAULT), None));
    assert_eq!(result(&obs[1]), (Some(0), None, Some(0)), "the failed send queued no byte");
    assert_eq!(result(&obs[2]).0, Some(100));
    assert_eq!(result(&obs[3]), (Some(0), None, Some(100)), "the next send's bytes follow on");
}

#[test]
fn a_recv_into_null_faults_and_leaves_the_data_to_read() {
    let obs = run(&[
        step("send", "c", "len = 100"),
        "[[script]]\nop = \"sleep\"\ndur = \"50ms\"\n".to_string(),
        step("recv", "s", "len = 100\nbuf = \"NULL\""),
        step("ioctl", "s", "req = \"FIONREAD\""),
        step("recv", "s", "len = 100"),
        step("recv", "s", "len = 0\nbuf = \"NULL\""),
        step("recv", "s", "len = 10\nbuf = \"NULL\"\nflags = [\"MSG_DONTWAIT\"]"),
    ]);
    assert_eq!(result(&obs[2]), (Some(-1), Some(Errno::EFAULT), None));
    assert_eq!(result(&obs[3]), (Some(0), None, Some(100)), "nothing was consumed");
    assert_eq!(result(&obs[4]).0, Some(100));
    assert_eq!(result(&obs[5]).0, Some(0), "a zero-length read copies nothing, so nothing faults");
    assert_eq!(result(&obs[6]), (Some(-1), Some(Errno::EAGAIN), None), "no data: EAGAIN comes before any copy");
}

#[test]
fn a_send_from_null_on_an_unconnected_socket_fails_its_state_check_first() {
    let obs = run(&[
        "[[script]]\nop = \"socket\"\nhost = \"client\"\nsock = \"u\"\n".to_string(),
        step("send", "u", "len = 10\nbuf = \"NULL\""),
    ]);
    assert_eq!(result(&obs[1]).1, Some(Errno::EPIPE));
}
