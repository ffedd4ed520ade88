//! `docs/questions.md`: for each seed question (`shared/seed/questions.txt`), the scenarios
//! that answer it, the command to run, and what the simulator answers. The file is generated
//! from the runs: `UPDATE_DOCS=1 cargo test --release --test models_docs` rewrites it, and
//! otherwise this test fails when it is out of date, so it is never edited by hand.

mod models_support;
mod sweep_support;
use models_support::*;
use std::fmt::Write as _;
use std::path::Path;

/// A seed question: its title in questions.txt, what it asks, the scenarios answering it.
struct Seed {
    title: &'static str,
    asks: &'static str,
    models: &'static [&'static str],
}

const SEEDS: &[Seed] = &[
    Seed {
        title: "What constitutes \"readable\" (kqueue/epoll) - linux",
        asks: "What does epoll report, and what do recv() and send() return, when the peer closes \
               gracefully, half-closes, resets, or silently vanishes?",
        models: &[
            "peer-closes-gracefully.toml",
            "peer-half-closes.toml",
            "peer-resets.toml",
            "peer-hibernated.toml",
            "peer-hibernated-keepalive.toml",
        ],
    },
    Seed {
        title: "how to check tcp peer is closed",
        asks: "Can a program tell whether the peer is still there without exchanging data \
               (recv with MSG_PEEK|MSG_DONTWAIT)?",
        models: &["peer-closes-gracefully.toml", "peer-hibernated.toml", "heartbeat-vanished-peer.toml"],
    },
    Seed {
        title: "send (2) succeed with established connection on unreachable network",
        asks: "Why does send() succeed with the cable unplugged, and when does the program find out?",
        models: &["cable-unplugged-send.toml"],
    },
    Seed {
        title: "TCP: Improving reliability with a broken connection",
        asks: "If the cable comes back, does everything arrive, and in order? How long does TCP \
               keep trying?",
        models: &[
            "cable-replugged.toml",
            "cable-long-outage-user-timeout.toml",
            "cable-unplugged-send.toml",
            "heartbeat-vanished-peer.toml",
            "resume-after-reconnect.toml",
            "naive-after-reconnect.toml",
        ],
    },
    Seed {
        title: "Linux TCP weirdly unresponsive when under heavy load",
        asks: "Why SYN retransmissions, then a connection whose request is retransmitted and \
               finally reset, against a listener whose accept queue is full?",
        models: &["listen-backlog-overflow.toml", "listen-backlog-overflow-reset.toml", "ab-loopback-reset.toml"],
    },
    Seed {
        title: "Keeping FTP control connection alive",
        asks: "What happens to an idle connection whose NAT or firewall state expired, and does \
               keepalive prevent it?",
        models: &["nat-idle-timeout.toml", "nat-idle-reset.toml", "nat-idle-keepalive.toml"],
    },
];

/// Scenarios that answer no seed question but show TCP at work.
const OTHERS: &[&str] = &["default.toml", "lossy-partition.toml"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scenario's header comment, without the comment marks: the `# Question …` paragraph,
/// and the rest (the setup and what Linux does).
fn header(file: &str) -> (String, String) {
    let text = std::fs::read_to_string(root().join("models").join(file)).unwrap();
    let lines: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).map(|l| l.trim_start_matches('#')).collect();
    let split = lines.iter().position(|l| l.trim().is_empty()).unwrap_or(lines.len());
    let question = lines[..split].iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    let rest = lines[split..].iter().map(|l| l.strip_prefix(' ').unwrap_or(l)).collect::<Vec<_>>().join("\n");
    (question, rest.trim().to_string())
}

fn scenario_section(out: &mut String, file: &str) {
    let r = run_model(file);
    let (question, rest) = header(file);
    let _ = writeln!(out, "### `models/{file}`\n");
    let _ = writeln!(out, "{question}\n");
    let _ = writeln!(out, "The scenario, and what Linux 6.18 does (its header):\n\n```text\n{rest}\n```\n");
    let _ = writeln!(out, "Run it: `cargo run --release -- run models/{file}`\n");
    let _ = writeln!(out, "The simulator's answer (Linux 6.18 profile, seed {}):\n", r.report.seed);
    let _ = writeln!(out, "```text{}```\n", r.report.answer_text());
    out.push_str(&sweep_section(file));
    let stem = file.trim_end_matches(".toml");
    if root().join("traces/seeds").join(stem).join("observations.jsonl").exists() {
        let _ = writeln!(
            out,
            "Run on Linux 6.18 itself (`traces/seeds/{stem}/`), it gave the same results \
             (`tests/models_kernel.rs`; the real timers fire a few per cent late).\n"
        );
    }
}

/// Seeds in the sweeps the doc shows (the same count CI sweeps in `tests/models_sweep.rs`).
const DOC_SWEEP: tcpsim::sweep::Seeds = tcpsim::sweep::Seeds { from: 0, to: 1000 };

/// For a scenario with drawn failures: its sweep's summary, and for the heartbeat the grid of
/// failures against ways of noticing them.
fn sweep_section(file: &str) -> String {
    let path = root().join("models").join(file);
    let sc = tcpsim::scenario::load(&path).unwrap();
    if !tcpsim::scenario::draw::has_draws(&sc) {
        return String::new();
    }
    let members = tcpsim::sweep::run_seeds(&sc, DOC_SWEEP, 1, &|| {}).unwrap();
    let rel = format!("models/{file}");
    let r = tcpsim::sweep::summarise(&sc.name, &rel, DOC_SWEEP, None, members);
    let mut s = format!(
        "Swept over seeds {}..{} (`cargo run --release -- sweep {rel} --seeds {}..{}`):\n\n```text\n{}```\n\n",
        DOC_SWEEP.from,
        DOC_SWEEP.to,
        DOC_SWEEP.from,
        DOC_SWEEP.to,
        tcpsim::sweep::cli::to_text(&r)
    );
    if file == "heartbeat-vanished-peer.toml" {
        s += "Detection time after the failure, by kind of failure and way of noticing it: the median \
              over seeds 0..20 of each cell (the failure at a time drawn in 20–40 s), with the range \
              (`tests/sweep_support/mod.rs`; the NAT row counts from the NAT forgetting the flow, \
              120 s after it last carried a segment). Keepalive and TCP_USER_TIMEOUT use the \
              Linux 6.18 defaults unless named; \"not detected\" means nothing failed within the \
              9 000 s run (the traffic kept the NAT entry alive).\n\n";
        s += &sweep_support::table_md(&sweep_support::grid());
        s += "\n";
    }
    s
}

fn generate() -> String {
    let mut out = String::new();
    out += "# The seed questions and the scenarios that answer them\n\n";
    out += "Generated from the runs by `tests/models_docs.rs`; do not edit. Regenerate with\n";
    out += "`UPDATE_DOCS=1 cargo test --release --test models_docs`. Each scenario file's header says\n";
    out += "what Linux 6.18 does and why (with the kernel function); `tests/models_*.rs` hold the\n";
    out += "simulator to it, timings exactly. Times are simulated seconds from the start of the run.\n\n";
    // Scenario file → the question under which its run is shown.
    let mut shown = std::collections::BTreeMap::new();
    for (i, seed) in SEEDS.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", i + 1, seed.title);
        let _ = writeln!(out, "{}\n", seed.asks);
        for m in seed.models {
            match shown.get(m) {
                Some(q) => {
                    let _ = writeln!(out, "See `models/{m}` under question {q} above.\n");
                }
                None => {
                    shown.insert(*m, i + 1);
                    scenario_section(&mut out, m);
                }
            }
        }
    }
    out += "## Other scenarios\n\n";
    for m in OTHERS {
        scenario_section(&mut out, m);
    }
    out
}

#[test]
fn every_seed_question_is_listed_and_every_model_is_answered_in_the_doc() {
    let seeds = std::fs::read_to_string("/work/shared/seed/questions.txt").or_else(|_| {
        // Outside the project machine the seed file may be absent: hold the list to itself.
        Ok::<_, std::io::Error>(SEEDS.iter().map(|s| s.title).collect::<Vec<_>>().join("\n"))
    });
    let seeds = seeds.unwrap();
    for s in SEEDS {
        assert!(seeds.contains(s.title), "not a seed question: {}", s.title);
    }
    let mut listed: Vec<&str> = SEEDS.iter().flat_map(|s| s.models.iter().copied()).chain(OTHERS.iter().copied()).collect();
    listed.sort();
    listed.dedup();
    let mut files: Vec<String> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(listed, files, "every scenario of models/ belongs in docs/questions.md");
}

#[test]
fn questions_md_is_up_to_date() {
    let path = root().join("docs/questions.md");
    let fresh = generate();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == fresh, "docs/questions.md is out of date: run `UPDATE_DOCS=1 cargo test --release --test models_docs`");
}
