//! Scenario text for tests that script both ends of one connection.

/// Hosts `client` (10.0.0.1) and `server` (10.0.0.2) joined by the link `wire` with a
/// one-way `delay`; `[[script]]` or `[[app]]` tables follow.
pub fn two_hosts(name: &str, duration: &str, delay: &str) -> String {
    two_hosts_with_client(name, duration, delay, "")
}

/// [`two_hosts`] with `client_lines` (e.g. a `sysctl = {…}`) in the client's table.
pub fn two_hosts_with_client(name: &str, duration: &str, delay: &str, client_lines: &str) -> String {
    format!(
        r#"
name = "{name}"
duration = "{duration}"
[[host]]
name = "client"
addr = "10.0.0.1"
{client_lines}[[host]]
name = "server"
addr = "10.0.0.2"
[[link]]
name = "wire"
a = "client"
b = "server"
delay = "{delay}"
"#
    )
}

/// Script steps: a listener `l` on `server`'s port 80 (backlog 4), and a socket `c` on
/// `client` connecting to `to`.
#[allow(dead_code)] // not every test file that shares this module uses it
pub fn listen_and_connect(server: &str, client: &str, to: &str, nonblocking_client: bool) -> String {
    format!(
        r#"[[script]]
op = "socket"
host = "{server}"
sock = "l"
[[script]]
op = "bind"
sock = "l"
port = 80
[[script]]
op = "listen"
sock = "l"
backlog = 4
[[script]]
op = "socket"
host = "{client}"
sock = "c"
nonblocking = {nonblocking_client}
[[script]]
op = "connect"
sock = "c"
to = "{to}"
"#
    )
}

/// [`two_hosts`] with 1 ms each way and a script that starts with a listener `l` on the
/// server's port 80 (backlog 4) and a socket `c` on the client connecting to it, then `steps`.
#[allow(dead_code)] // not every test file that shares this module uses it
pub fn client_server(name: &str, duration: &str, nonblocking_client: bool, steps: &str) -> String {
    let hosts = two_hosts(name, duration, "1ms");
    let opening = listen_and_connect("server", "client", "server:80", nonblocking_client);
    format!("{hosts}{opening}{steps}")
}

/// Every scenario in `models/` (not its subfolders), loaded, in file-name order.
#[allow(dead_code)] // not every test file that shares this module uses it
pub fn every_model() -> Vec<(std::path::PathBuf, tcpsim::scenario::Scenario)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let models: Vec<_> = paths.into_iter().map(|p| {
        let sc = tcpsim::scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
        (p, sc)
    }).collect();
    assert!(models.len() > 10, "the models were read: {}", models.len());
    models
}

#[allow(dead_code)] // not every test file that shares this module uses it
/// Script steps: accept, then a filter that drops everything the server sends (its ACKs
/// never reach the client), then `more`.
pub fn acks_lost(more: &str) -> String {
    format!(
        r#"[[script]]
op = "accept"
sock = "l"
new = "s"
[[script]]
op = "fault"
kind = "filter"
link = "wire"
drop = "all"
direction = "b_to_a"
{more}"#
    )
}
