//! A host whose kernel profile is FreeBSD's answers with FreeBSD's socket API: poll as
//! `sopoll_generic` computes it, kevent(2) exists, epoll does not (ENOSYS) — and the reverse on
//! a Linux host. Every answer is checked against the rules of the host's system.

use tcpsim::errno::Errno;
use tcpsim::scenario::{parse, Observation};
use tcpsim::trace::Trace;
use tcpsim::world::World;

/// A client on `client_kernel` connects to a server on `server_kernel` that closes abortively
/// (RST), then the script observes the client.
fn run(client_kernel: &str, server_kernel: &str, observe: &str) -> (Vec<Observation>, World) {
    let text = format!(
        r#"
name = "freebsd-host"
duration = "2s"
[[host]]
name = "c"
addr = "10.0.0.1"
kernel = "{client_kernel}"
[[host]]
name = "s"
addr = "10.0.0.2"
kernel = "{server_kernel}"
[[link]]
name = "wire"
a = "c"
b = "s"
delay = "1ms"
[[script]]
op = "socket"
host = "s"
sock = "l"
[[script]]
op = "bind"
sock = "l"
port = 80
[[script]]
op = "listen"
sock = "l"
backlog = 8
[[script]]
op = "socket"
host = "c"
sock = "c"
[[script]]
op = "connect"
sock = "c"
to = "s:80"
[[script]]
op = "accept"
sock = "l"
new = "a"
[[script]]
op = "setsockopt"
sock = "a"
opt = "SO_LINGER"
value = [1, 0]
[[script]]
op = "close"
sock = "a"
[[script]]
op = "sleep"
dur = "50ms"
{observe}
"#
    );
    let sc = parse(&text, "freebsd-host.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut world = World::build(&sc, 1, Trace::off()).unwrap();
    let obs = world.run(&sc);
    assert!(world.rule_failures().is_empty(), "{:?}", world.rule_failures());
    (obs, world)
}

const OBSERVE: &str = r#"
[[script]]
op = "poll"
sock = "c"
events = ["POLLIN", "POLLOUT", "POLLRDHUP"]
[[script]]
op = "kevent"
sock = "c"
filter = "EVFILT_READ"
[[script]]
op = "kevent"
sock = "c"
filter = "EVFILT_EMPTY"
[[script]]
op = "epoll_create"
ep = "ep"
"#;

fn last(obs: &[Observation], n: usize) -> &[Observation] {
    &obs[obs.len() - n..]
}

#[test]
fn a_freebsd_host_polls_as_freebsd_and_has_kevent_but_no_epoll() {
    let (obs, world) = run("freebsd-14", "freebsd-14", OBSERVE);
    let [poll, read, empty, epoll] = last(&obs, 4) else { unreachable!() };
    // sopoll_generic + pollscan after an RST: readable, HUP, no ERR and no OUT.
    assert_eq!(poll.events.as_deref(), Some(&["POLLIN".to_string(), "POLLRDHUP".into(), "POLLHUP".into()][..]));
    // filt_soread: EV_EOF with fflags = so_error, by name.
    assert_eq!((read.ret, read.events.as_deref()), (Some(1), Some(&["EVFILT_READ".to_string()][..])));
    assert_eq!(read.value, Some(serde_json::json!({ "data": 0, "flags": ["EV_EOF"], "fflags": "ECONNRESET" })));
    // filt_soempty: the send buffer was discarded by the disconnection.
    assert_eq!(empty.value, Some(serde_json::json!({ "data": 0, "flags": [], "fflags": 0 })));
    // No host of this run is Linux: nothing can create an epoll.
    assert_eq!((epoll.ret, epoll.errno), (Some(-1), Some(Errno::ENOSYS)));
    let applied = world.applied_rules();
    assert!(applied.iter().any(|r| r == "freebsd-no-pollerr"), "{applied:?}");
    assert!(applied.iter().any(|r| r == "kq-read-eof-iff-cantrcvmore"), "{applied:?}");
    assert!(!applied.iter().any(|r| r == "linux-pollhup-iff-both-shut-or-close"), "{applied:?}");
}

#[test]
fn a_linux_host_has_no_kevent_and_polls_as_linux() {
    let (obs, world) = run("linux-6.18", "linux-6.18", OBSERVE);
    let [poll, read, empty, epoll] = last(&obs, 4) else { unreachable!() };
    let names: Vec<&str> = poll.events.iter().flatten().map(String::as_str).collect();
    assert_eq!(names, ["POLLIN", "POLLOUT", "POLLRDHUP", "POLLERR", "POLLHUP"]);
    for k in [read, empty] {
        assert_eq!((k.ret, k.errno, k.events.as_ref()), (Some(-1), Some(Errno::ENOSYS), None));
    }
    assert_eq!(epoll.ret, Some(0));
    assert!(world.applied_rules().iter().any(|r| r == "linux-pollhup-iff-both-shut-or-close"));
}

#[test]
fn epoll_ctl_on_a_freebsd_socket_fails_with_enosys() {
    // The epoll is created for the Linux server host; binding it to the FreeBSD client's
    // socket asks the FreeBSD kernel for an epoll, which it does not have.
    let observe = r#"
[[script]]
op = "epoll_create"
ep = "ep"
[[script]]
op = "epoll_ctl"
ep = "ep"
sock = "c"
action = "add"
events = ["EPOLLIN"]
[[script]]
op = "kevent"
sock = "c"
filter = "EVFILT_WRITE"
lowat = 1
"#;
    let (obs, _) = run("freebsd-14", "linux-6.18", observe);
    let [create, ctl, write] = last(&obs, 3) else { unreachable!() };
    assert_eq!(create.ret, Some(0));
    assert_eq!((ctl.ret, ctl.errno), (Some(-1), Some(Errno::ENOSYS)));
    // filt_sowrite after the RST: CANTSENDMORE → EV_EOF, fflags ECONNRESET.
    let v = write.value.as_ref().unwrap();
    assert_eq!((v["flags"][0].as_str(), v["fflags"].as_str()), (Some("EV_EOF"), Some("ECONNRESET")));
}
