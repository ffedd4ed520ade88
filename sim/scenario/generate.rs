//! Large scenarios generated rather than written: N idle keepalive connections over as
//! many client hosts as Linux's port space needs (`models/scale/`, the benchmarks).
//! `cargo run --release --example scale_models -- idle N` prints one.

use std::fmt::Write as _;

/// Connections per client host: under the 28 232 ports of `ip_local_port_range`.
const PER_HOST: u64 = 25_000;

/// N keepalive connections to one server, spread over at least ten client hosts of at most
/// 25 000 connections each (one 4-tuple per ephemeral port: Linux's port space caps one client
/// address at 28 232 connections to one server port). Keepalive after 600 s idle, probes every
/// 75 s, 9 of them; two simulated hours; a tenth of the client hosts are partitioned from the
/// server after one hour, so their connections die of keepalive (ETIMEDOUT) 600 s + 9 × 75 s
/// after their last exchange, and no other connection does.
pub fn idle_keepalive(n: u64) -> String {
    // At least ten hosts, so that a tenth of them is a tenth of the connections.
    let hosts = n.div_ceil(PER_HOST).max(10);
    let per_host = n.div_ceil(hosts);
    let partitioned = hosts / 10;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Question (issue 14): do a million idle keepalive connections behave as each one does alone?\n\
         # Generated: cargo run --release --example scale_models -- idle {n}\n\
         #\n\
         # {n} connections from {hosts} client hosts ({per_host} each, under the 28 232 ports of one 4-tuple) to\n\
         # one server, all with SO_KEEPALIVE (idle 600 s, interval 75 s, 9 probes). At 1 h the first\n\
         # {partitioned} client hosts (a tenth) are cut off: each of their connections dies with ETIMEDOUT\n\
         # 600 s + 9 x 75 s = 1275 s after its last keepalive exchange; every other connection lives.\n\
         \n\
         name = \"idle-{n}\"\n\
         description = \"{n} idle keepalive connections, a tenth partitioned half-way\"\n\
         duration = \"2h\"\n\
         \n\
         [[host]]\nname = \"server\"\naddr = \"10.0.0.1\"\n"
    );
    for h in 0..hosts {
        let _ = writeln!(s, "[[host]]\nname = \"c{h}\"\naddr = \"10.{}.{}.1\"\n", 1 + h / 256, h % 256);
    }
    for h in 0..hosts {
        let _ = writeln!(s, "[[link]]\nname = \"l{h}\"\na = \"c{h}\"\nb = \"server\"\ndelay = \"1ms\"\n");
    }
    for h in 0..partitioned {
        let _ = writeln!(s, "[[fault]]\nat = \"1h\"\nkind = \"partition\"\nlink = \"l{h}\"\n");
    }
    let _ = writeln!(s, "[[app]]\nkind = \"server\"\nhost = \"server\"\nport = 80\nbacklog = 4096\n");
    let mut left = n;
    for h in 0..hosts {
        let count = left.min(per_host);
        left -= count;
        let _ = writeln!(
            s,
            "[[app]]\nkind = \"client\"\nhost = \"c{h}\"\nto = \"server:80\"\ncount = {count}\ninterval = \"100us\"\n\
             sockopts = {{ SO_KEEPALIVE = 1, TCP_KEEPIDLE = 600, TCP_KEEPINTVL = 75, TCP_KEEPCNT = 9 }}\n"
        );
    }
    s
}

