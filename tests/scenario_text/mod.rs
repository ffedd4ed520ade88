//! Scenario text for tests that script both ends of one connection.

/// Hosts `client` (10.0.0.1) and `server` (10.0.0.2) joined by `wire` (1 ms each way), a
/// script that starts with a listener `l` on the server's port 80 (backlog 4) and a socket
/// `c` on the client connecting to it, then `steps` (TOML `[[script]]` tables).
pub fn client_server(name: &str, duration: &str, nonblocking_client: bool, steps: &str) -> String {
    format!(
        r#"
name = "{name}"
duration = "{duration}"
[[host]]
name = "client"
addr = "10.0.0.1"
[[host]]
name = "server"
addr = "10.0.0.2"
[[link]]
name = "wire"
a = "client"
b = "server"
delay = "1ms"
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
backlog = 4
[[script]]
op = "socket"
host = "client"
sock = "c"
nonblocking = {nonblocking_client}
[[script]]
op = "connect"
sock = "c"
to = "server:80"
{steps}"#
    )
}
