//! Semantic validation: what it accepts (every op, both fault forms, overrides), and the
//! helpers the engine calls (`host_profile`, `resolve_to`). The rejections are covered one
//! fixture each in `scenario_errors.rs`.

use tcpsim::addr::SockAddr;
use std::net::Ipv4Addr;
use tcpsim::scenario::{host_profile, parse, resolve_to, validate, FieldPath, HostSpec, Scenario, Step};
use tcpsim::tcp::profile::KernelProfile;

const HOSTS: &str = r#"
name = "ok"
duration = "10s"

[[host]]
name = "client"
addr = "10.0.0.1"

[[host]]
name = "server"
addr = "10.0.0.2"
kernel = "linux-6.1"

[[link]]
name = "wire"
a = "client"
b = "server"
delay = "5ms"
a_to_b = { loss = 0.0, queue = 1 }
b_to_a = { duplicate = 1.0, jitter = "1ms" }
"#;

fn ok(extra: &str) -> Scenario {
    ok_with("", extra)
}

/// `top` goes before the first table (top-level keys), `extra` after the link.
fn ok_with(top: &str, extra: &str) -> Scenario {
    parse(&format!("{top}{HOSTS}{extra}"), "ok.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn host(sysctl: &str, kernel: Option<&str>) -> HostSpec {
    let kernel = kernel.map(|k| format!("kernel = \"{k}\"\n")).unwrap_or_default();
    toml::from_str(&format!("name = \"h\"\naddr = \"10.0.0.1\"\n{kernel}[sysctl]\n{sysctl}")).unwrap()
}

#[test]
fn a_script_using_every_op_is_accepted() {
    let s = ok_with(
        "observe = \"s\"\n",
        r#"
[[script]]
op = "socket"
host = "server"
sock = "l"
[[script]]
op = "bind"
sock = "l"
port = 80
[[script]]
op = "listen"
sock = "l"
backlog = 0
[[script]]
op = "socket"
host = "client"
sock = "c"
nonblocking = true
[[script]]
op = "setsockopt"
sock = "c"
opt = "SO_LINGER"
value = [1, 0]
[[script]]
op = "connect"
sock = "c"
to = "10.0.0.2:80"
[[script]]
op = "accept"
sock = "l"
new = "s"
[[script]]
op = "send"
sock = "c"
len = 1000
until_error = true
flags = ["MSG_DONTWAIT", "MSG_NOSIGNAL"]
[[script]]
op = "recv"
sock = "s"
len = 10
flags = ["MSG_PEEK"]
[[script]]
op = "poll"
sock = "s"
events = ["POLLIN", "EPOLLRDHUP"]
[[script]]
op = "epoll_create"
ep = "ep"
[[script]]
op = "epoll_ctl"
ep = "ep"
sock = "s"
action = "add"
events = ["EPOLLIN", "EPOLLET", "EPOLLONESHOT"]
[[script]]
op = "epoll_wait"
ep = "ep"
timeout = "1s"
max = 4
[[script]]
op = "kevent"
sock = "s"
filter = "EVFILT_READ"
lowat = 2
[[script]]
op = "getsockopt"
sock = "c"
opt = "TCP_INFO"
[[script]]
op = "ioctl"
sock = "c"
req = "SIOCOUTQNSD"
[[script]]
op = "fault"
kind = "filter"
link = "wire"
drop = "syn"
direction = "b_to_a"
[[script]]
op = "fault"
kind = "crash"
host = "server"
[[script]]
op = "sleep"
dur = "1.5s"
[[script]]
op = "shutdown"
sock = "c"
how = "SHUT_RDWR"
[[script]]
op = "close"
sock = "c"
"#,
    );
    assert_eq!(s.script.len(), 21);
    assert!(matches!(&s.script[13], Step::Kevent { lowat: Some(2), .. }));
    assert!(matches!(&s.script[6], Step::Accept { new, .. } if new == "s"));
    assert_eq!(s.observe.as_deref(), Some("s"));
}

#[test]
fn scheduled_faults_apps_and_middleboxes_are_accepted() {
    let s = ok(r#"
[[fault]]
at = "10s"
kind = "filter"
link = "wire"
drop = "non_syn"
direction = "a_to_b"

[[fault]]
at = "0"
kind = "thaw"
host = "server"

[[middlebox]]
name = "nat"
link = "wire"
idle_timeout = "30s"
on_expired = "rst"

[[app]]
kind = "server"
host = "server"
port = 80
sockopts = { SO_LINGER = [1, 0], TCP_NODELAY = 1 }

[[app]]
kind = "server"
host = "client"
port = 80

[[app]]
kind = "client"
host = "client"
to = "server:80"
count = 3
interval = "10ms"
"#);
    assert_eq!((s.faults.len(), s.middleboxes.len(), s.apps.len()), (2, 1, 3));
}

#[test]
fn host_profile_applies_overrides_to_the_named_kernel() {
    let base = KernelProfile::builtin("linux-6.1").unwrap();
    let p =
        host_profile(&host("tcp_keepalive_time_s = 10\ntcp_rmem = [1, 2, 3]\n", Some("linux-6.1"))).unwrap();
    assert_eq!(p.tcp_keepalive_time_s, 10);
    assert_eq!(p.tcp_rmem, [1, 2, 3]);
    let restored =
        KernelProfile { tcp_keepalive_time_s: base.tcp_keepalive_time_s, tcp_rmem: base.tcp_rmem, ..p };
    assert_eq!(restored, base, "only the overridden fields change");
}

#[test]
fn host_profile_defaults_to_linux_6_18() {
    assert_eq!(host_profile(&host("", None)).unwrap(), KernelProfile::linux_6_18());
}

#[test]
fn host_profile_names_the_bad_override() {
    let e = host_profile(&host("tcp_sack = true\ntcp_bogus = 1\n", None)).unwrap_err();
    assert!(e.starts_with("sysctl.tcp_bogus: "), "{e}");
    let e = host_profile(&host("tcp_retries2 = -1\n", None)).unwrap_err();
    assert!(e.starts_with("sysctl.tcp_retries2: invalid value: integer `-1`"), "{e}");
    let e = host_profile(&host("", Some("linux-2.4"))).unwrap_err();
    assert!(e.contains("unknown kernel profile `linux-2.4`"), "{e}");
}

#[test]
fn resolve_to_accepts_names_and_addresses_of_hosts() {
    let s = ok("");
    let server = SockAddr::new(Ipv4Addr::new(10, 0, 0, 2), 443);
    assert_eq!(resolve_to(&s, "server:443"), Ok(server));
    assert_eq!(resolve_to(&s, "10.0.0.2:443"), Ok(server));
    assert!(resolve_to(&s, "server:65536").is_err());
    assert!(resolve_to(&s, ":80").is_err());
}

#[test]
fn validate_checks_scenarios_built_in_code() {
    // The readiness table builder appends steps to parsed recipes; validate() checks the result.
    let mut s = ok("");
    s.script.push(Step::Close { sock: "nobody".into() });
    let inv = validate(&s).unwrap_err();
    assert_eq!(inv.path, FieldPath::root().key("script").index(0).key("sock"));
    assert!(inv.message.contains("no socket named `nobody`"), "{inv}");
}

#[test]
fn poll_rejects_epoll_only_flags() {
    let e = parse(
        &format!("{HOSTS}[[script]]\nop = \"socket\"\nhost = \"client\"\nsock = \"c\"\n[[script]]\nop = \"poll\"\nsock = \"c\"\nevents = [\"EPOLLET\"]\n"),
        "t.toml",
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("script[1].events[0]"));
}

#[test]
fn kevent_names_a_known_filter_and_no_lowat_on_evfilt_empty() {
    let script = |filter: &str, lowat: &str| {
        format!("{HOSTS}[[script]]\nop = \"socket\"\nhost = \"client\"\nsock = \"c\"\n[[script]]\nop = \"kevent\"\nsock = \"c\"\nfilter = \"{filter}\"\n{lowat}")
    };
    assert!(parse(&script("EVFILT_WRITE", "lowat = 0\n"), "t.toml").is_ok());
    let e = parse(&script("EVFILT_EMPTY", "lowat = 1\n"), "t.toml").unwrap_err();
    assert_eq!(e.field(), Some("script[1].lowat"), "{e}");
    let e = parse(&script("EVFILT_VNODE", ""), "t.toml").unwrap_err();
    assert!(e.to_string().contains("EVFILT_VNODE"), "{e}");
}

#[test]
fn long_name_lists_are_shortened() {
    let hosts: String =
        (0..20).map(|i| format!("[[host]]\nname = \"h{i}\"\naddr = \"10.1.0.{i}\"\n")).collect();
    let text =
        format!("name = \"x\"\nduration = \"1s\"\n{hosts}[[link]]\nname = \"l\"\na = \"h0\"\nb = \"nope\"\n");
    let e = parse(&text, "t.toml").unwrap_err();
    assert!(e.message().ends_with("(hosts: h0, h1, h10, h11, h12, h13, h14, h15, … (12 more))"), "{e}");
}
