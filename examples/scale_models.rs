//! Writes the large scenarios of `models/scale/` ([`tcpsim::scenario::generate`]):
//!
//! ```sh
//! cargo run --release --example scale_models -- idle 1000000 > /tmp/idle-1m.toml
//! ```

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["idle", n] => match n.parse::<u64>() {
            Ok(n) if n > 0 => print!("{}", tcpsim::scenario::generate::idle_keepalive(n)),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn usage() {
    eprintln!("usage: scale_models idle N");
    std::process::exit(2);
}
