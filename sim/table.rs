//! The readiness table (`docs/readiness-conditions.md`), computed by running each
//! condition's recipe through the simulator, never typed in.
//!
//! The simulated rows are built from the simulator's observation log by the same function
//! that builds the real kernel's rows from a capture, so the two columns can only differ
//! where the model and the kernel do.

use crate::scenario::readiness::{
    differing_cells, kevent_text, observed_recipe_for, on_loopback, row_from_observations, row_from_observations_for, ReadinessRow,
    CONDITIONS,
};
use crate::script::observe;
use crate::tcp::profile::Os;
use crate::trace::Trace;
use crate::world::World;
use serde_json::json;
use std::fmt::Write as _;

/// The table: simulated rows, and optionally the real kernel's beside them.
pub struct Table {
    pub os: Os,
    /// The kernel profile the simulation used.
    pub profile: String,
    pub rows: Vec<ReadinessRow>,
    /// The link the recipes ran over.
    pub link: TableLink,
    /// The real kernel's release and rows, when measured.
    pub kernel: Option<(String, Vec<ReadinessRow>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
    Recipe(#[from] crate::scenario::readiness::ReadinessError),
    #[error("condition `{id}`: {msg}")]
    Run { id: String, msg: String },
}

/// The link the recipes' two ends talk over.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum TableLink {
    /// Two hosts joined by a veth, as the recipes are written.
    #[default]
    Veth,
    /// Both ends on one host, over its loopback (127.0.0.1; [`on_loopback`]). A recipe's
    /// host fault then strikes the only host: `peer-reboot` crashes the observer too.
    Loopback,
}

/// Runs the 22 recipes on hosts of `os`'s default kernel profile.
pub fn simulate(os: Os) -> Result<Table, TableError> {
    simulate_on(os, TableLink::Veth)
}

/// [`simulate`] over `link`.
pub fn simulate_on(os: Os, link: TableLink) -> Result<Table, TableError> {
    let profile = match os {
        Os::Linux => "linux-6.18",
        Os::FreeBsd => "freebsd-14",
    };
    let rows = CONDITIONS.iter().map(|id| simulate_row_on(id, profile, link)).collect::<Result<Vec<_>, _>>()?;
    Ok(Table { os, profile: profile.to_string(), rows, link, kernel: None })
}

/// One condition: its recipe plus the observation steps of the profile's system (epoll on
/// Linux, kqueue on FreeBSD), on a fresh world whose every host runs `profile`.
pub fn simulate_row(id: &str, profile: &str) -> Result<ReadinessRow, TableError> {
    simulate_row_on(id, profile, TableLink::Veth)
}

/// [`simulate_row`] over `link`.
pub fn simulate_row_on(id: &str, profile: &str, link: TableLink) -> Result<ReadinessRow, TableError> {
    let run_err = |msg: String| TableError::Run { id: id.to_string(), msg };
    let os = crate::tcp::profile::KernelProfile::builtin(profile).map_err(|e| run_err(e.to_string()))?.os;
    let mut sc = observed_recipe_for(os, id)?;
    if link == TableLink::Loopback {
        sc = on_loopback(&sc)?;
    }
    for h in &mut sc.hosts {
        h.kernel = Some(profile.to_string());
    }
    let mut world = World::build(&sc, sc.seed, Trace::off()).map_err(|e| run_err(e.to_string()))?;
    let obs = world.run(&sc);
    let mut row = row_from_observations_for(os, id, &obs)?;
    row.rules = world.applied_rules();
    let failures = world.rule_failures();
    if !failures.is_empty() {
        return Err(run_err(failures.join("; ")));
    }
    Ok(row)
}

fn os_name(os: Os) -> &'static str {
    match os {
        Os::Linux => "linux",
        Os::FreeBsd => "freebsd",
    }
}

impl Table {
    pub fn set_kernel(&mut self, rows: Vec<ReadinessRow>, release: String) {
        self.kernel = Some((release, rows));
    }

    /// Cells where the simulation and the real kernel differ: (condition, column names).
    pub fn differences(&self) -> Vec<(String, Vec<&'static str>)> {
        let Some((_, kernel)) = &self.kernel else { return Vec::new() };
        self.rows
            .iter()
            .filter_map(|sim| {
                let k = kernel.iter().find(|k| k.condition == sim.condition)?;
                let d = differing_cells(sim, k);
                (!d.is_empty()).then(|| (sim.condition.clone(), d))
            })
            .collect()
    }

    pub fn disagreements(&self) -> usize {
        self.differences().iter().map(|(_, d)| d.len()).sum()
    }

    /// The spec's JSON shape (`source: simulation`), with `real_kernel` and `differences`
    /// added when the kernel was measured.
    pub fn to_json(&self) -> String {
        let mut v = json!({
            "os": os_name(self.os),
            "kernel": self.profile,
            "source": "simulation",
            "rows": self.rows,
        });
        if self.os == Os::FreeBsd {
            // FreeBSD has no epoll: its rows leave the column out and carry `kqueue` instead.
            for row in v["rows"].as_array_mut().into_iter().flatten() {
                row.as_object_mut().map(|r| r.remove("epoll"));
            }
            v["readiness_api"] = json!("kqueue");
            v["columns"] = json!(FREEBSD_COLUMNS);
        }
        let notes: Vec<&TableNote> = self.note_sections().into_iter().flat_map(|(_, n)| n).collect();
        if !notes.is_empty() {
            v["notes"] = json!(notes
                .iter()
                .map(|n| json!({ "rows": n.rows, "note": n.text, "source": n.source }))
                .collect::<Vec<_>>());
        }
        if let Some((release, rows)) = &self.kernel {
            v["real_kernel"] = json!({ "kernel": release, "source": "capture", "rows": rows });
            v["differences"] = json!(self
                .differences()
                .into_iter()
                .map(|(c, cells)| json!({ "condition": c, "cells": cells }))
                .collect::<Vec<_>>());
        }
        serde_json::to_string_pretty(&v).expect("JSON values serialise") + "\n"
    }

    /// A table for people; with the kernel measured, each condition has a second line for
    /// the kernel and every differing cell is marked `≠`.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let (over, flag) = match self.link {
            TableLink::Veth => ("", ""),
            TableLink::Loopback => (", both ends on one host's loopback, 127.0.0.1", " --link loopback"),
        };
        let _ = writeln!(s, "# Readiness table: {} (simulated, kernel profile `{}`{over})\n", os_name(self.os), self.profile);
        let _ = writeln!(
            s,
            "Generated by `tcpsim table --os {}{flag}`; do not edit. Conditions: `docs/readiness-conditions.md`; rules: `docs/rules.md`.\n",
            os_name(self.os)
        );
        if self.os == Os::FreeBsd {
            let _ = writeln!(s, "{FREEBSD_COLUMNS}\n");
            let _ = writeln!(s, "| condition | source | poll | EVFILT_READ | EVFILT_WRITE | peek | poll after peek | SO_ERROR | send | poll after send | rules |");
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        } else {
            let _ = writeln!(s, "| condition | source | poll | epoll | peek | poll after peek | SO_ERROR | send | poll after send | rules |");
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        }
        let kernel = self.kernel.as_ref();
        for row in &self.rows {
            let krow = kernel.and_then(|(_, rows)| rows.iter().find(|k| k.condition == row.condition));
            let diff = krow.map(|k| differing_cells(row, k)).unwrap_or_default();
            write_row(&mut s, row, "sim", &diff, true);
            if let (Some(k), Some((release, _))) = (krow, kernel) {
                write_row(&mut s, k, &format!("kernel {release}"), &diff, false);
            }
        }
        if kernel.is_some() {
            let _ = writeln!(s, "\n{} cell(s) differ between the simulation and the real kernel.", self.disagreements());
        }
        for (heading, notes) in self.note_sections() {
            let _ = writeln!(s, "\n## {heading}\n");
            for n in notes {
                let rows: Vec<String> = n.rows.iter().map(|r| format!("`{r}`")).collect();
                let rows = if rows.is_empty() { "all rows".to_string() } else { rows.join(", ") };
                let _ = writeln!(s, "- **{rows}**: {} (source: {})", n.text, n.source);
            }
        }
        s
    }

    /// The notes that go with this table, by section: FreeBSD's approximations, and what one
    /// host changes of a recipe.
    fn note_sections(&self) -> Vec<(&'static str, &'static [TableNote])> {
        let mut sections = Vec::new();
        if self.os == Os::FreeBsd {
            sections.push(("What is FreeBSD's here, and what is not", FREEBSD_NOTES));
        }
        if self.link == TableLink::Loopback {
            sections.push(("What one host changes", LOOPBACK_NOTES));
        }
        sections
    }
}

/// Where a recipe moved onto one host's loopback ([`on_loopback`]) no longer reaches its
/// condition. The row is still measured, on the simulator and on the real kernel alike, but it
/// answers another question.
pub const LOOPBACK_NOTES: &[TableNote] = &[TableNote {
    rows: &["peer-reboot"],
    text: "not reproducible on one host: the peer's connection can vanish unseen only with the peer's kernel, and \
           on loopback that kernel is the observer's. The recipe's crash of the server host therefore strikes the only \
           host: `c` is lost with the server's sockets, and the row shows a descriptor that is no longer open \
           (POLLNVAL, EBADF; epoll_ctl fails, so epoll reports nothing), not a connection to a rebooted peer. The kernel \
           column runs the same crash: the lab closes every socket of the namespace with SO_LINGER {1,0}, their RSTs \
           dropped on lo",
    source: "sim/scenario/readiness.rs `on_loopback`; sim/capture/runner.rs `crash`",
}];

/// What the FreeBSD table's columns are, for its header.
pub const FREEBSD_COLUMNS: &str = "FreeBSD has no epoll (`epoll_create` fails with ENOSYS), so the rows have no `epoll` \
column: in its place `kqueue` gives EVFILT_READ and EVFILT_WRITE, each registered with EV_ADD on the observed socket and \
collected with a zero timeout, as `{data, flags, fflags}` when the filter fired (`fflags`: the pending error's name with \
EV_EOF, else 0) and `null` (markdown: `not fired`) when it did not. `poll` is FreeBSD's `sopoll_generic` (no POLLERR; \
POLLHUP only when both directions are shut, and never with POLLOUT). Every poll and kevent answer was checked against the \
FreeBSD and portable rules (`docs/rules.md`).";

/// What some rows of a table mean beyond their recipe (a FreeBSD behaviour the simulation does
/// not model, a recipe that one host changes), and the rows it concerns.
pub struct TableNote {
    /// Condition ids; empty: every row.
    pub rows: &'static [&'static str],
    pub text: &'static str,
    pub source: &'static str,
}

/// Where the FreeBSD table is an approximation. The profile `freebsd-14` changes parameters and
/// the socket API's view (poll, kqueue); the TCP algorithms and the recv/send/getsockopt
/// semantics stay Linux's, so these behaviours are documented rather than faked.
pub const FREEBSD_NOTES: &[TableNote] = &[
    TableNote {
        rows: &[],
        text: "the connection is the Linux TCP model with FreeBSD 14's parameters (models/kernels/freebsd-14.toml); \
               `peek`, `SO_ERROR` and `send` are the Linux syscall layer's answers. The socket FreeBSD's poll and \
               filters read is the model's: `fflags` is the error Linux's `tcp_reset`/`tcp_write_err` stores (EPIPE for \
               an RST in CLOSE_WAIT), and EVFILT_WRITE's `data` is the model's free send space (the autotuned Linux \
               sndbuf less the queued truesize), not FreeBSD's `sbspace`",
        source: "models/kernels/freebsd-14.toml header; sim/socket/kqueue.rs `FreeBsdSocket::from_view`",
    },
    TableNote {
        rows: FREEBSD_ERROR_AT_PEEK_ROWS,
        text: "an error was pending when the peek ran (EVFILT_READ's `fflags`). Linux's recv reports it before EOF \
               only when no FIN came first, and clears it even under MSG_PEEK; FreeBSD's reports it before EOF and \
               does not clear it under MSG_PEEK (`if ((flags & MSG_PEEK) == 0) so->so_error = 0;`). On FreeBSD the peek \
               would return the error, and it would still be pending for `poll after peek`, `SO_ERROR` (the errno, \
               not 0) and `send` (that errno, not EPIPE)",
        source: "sys/kern/uipc_socket.c `soreceive_generic`",
    },
    TableNote {
        rows: &["rst-unread-close"],
        text: "FreeBSD's close() with unread data flushes it and sends FIN, not RST; the simulated peer is Linux's TCP \
               and resets (RFC 2525 §2.17), so on FreeBSD `c` would see the `peer-closed` answers",
        source: "sys/netinet/tcp_usrreq.c `tcp_disconnect` (`sbflush(&so->so_rcv)`, `tcp_usrclosed`)",
    },
    TableNote {
        rows: &["connect-timeout"],
        text: "FreeBSD has no TCP_SYNCNT (the recipe's setsockopt would fail); a connect is abandoned with ETIMEDOUT at \
               keepinit, 75 s (TCP_KEEPINIT per socket). The model applies TCP_SYNCNT as Linux does: the answers are \
               those after ETIMEDOUT, reached sooner than FreeBSD would",
        source: "sys/netinet/tcp_timer.c `tcp_timer_keep`; tcp_timer.h TCPTV_KEEP_INIT",
    },
    TableNote {
        rows: &["retrans-timeout"],
        text: "FreeBSD has no TCP_USER_TIMEOUT (closest: TCP_MAXUNACKTIME); the model applies it as Linux does. On \
               FreeBSD the 3 s wait would end with the connection alive, retransmitting for net.inet.tcp.retries (12)",
        source: "sys/netinet/tcp_timer.c `tcp_timer_rexmt`",
    },
    TableNote {
        rows: &["idle-partition-no-keepalive"],
        text: "net.inet.tcp.always_keepalive = 1 makes FreeBSD probe every idle connection, SO_KEEPALIVE or not; the \
               model probes only with SO_KEEPALIVE. The row is unchanged (its 3 s wait is far below keepidle, 7200 s), \
               but on FreeBSD the connection would die with ETIMEDOUT after 7200 + 8·75 s",
        source: "sys/netinet/tcp_timer.c `tcp_timer_keep` (`tcp_always_keepalive`)",
    },
    TableNote {
        rows: &["sndbuf-full"],
        text: "Linux doubles SO_SNDBUF/SO_RCVBUF and counts buffer truesize; FreeBSD keeps the value asked for \
               (`sbreserve`) and counts payload bytes, so the bytes queued before EAGAIN and EVFILT_WRITE's `data` differ",
        source: "sys/kern/uipc_sockbuf.c `sbreserve_locked`; linux-tcp-facts §6",
    },
];

/// The rows where an error is pending when the peek runs (their EVFILT_READ has `fflags`; a
/// test holds this list to the table).
pub const FREEBSD_ERROR_AT_PEEK_ROWS: &[&str] = &[
    "connect-refused",
    "connect-timeout",
    "rst-received",
    "rst-unread-close",
    "write-after-peer-close",
    "retrans-timeout",
    "keepalive-timeout",
    "peer-reboot",
];

fn write_row(s: &mut String, row: &ReadinessRow, source: &str, diff: &[&str], with_rules: bool) {
    let mark = |name: &str, text: String| if diff.contains(&name) { format!("≠ {text}") } else { text };
    let cells = row.cells();
    let cell = |name: &str| cells.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut send = cell("send");
    if let Some(first) = &row.first_send {
        send = format!("{send} (first 100 B send: {first})");
    }
    let rules = if with_rules { row.rules.join(", ") } else { String::new() };
    // Linux: the epoll column; FreeBSD: EVFILT_READ and EVFILT_WRITE.
    let api = match &row.kqueue {
        None => mark("epoll", cell("epoll")),
        Some(kq) => format!(
            "{} | {}",
            mark("kqueue_read", kevent_text(&kq.read)),
            mark("kqueue_write", kevent_text(&kq.write))
        ),
    };
    let _ = writeln!(
        s,
        "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        row.condition,
        source,
        mark("poll", cell("poll")),
        api,
        mark("peek", cell("peek")),
        mark("poll_after_peek", cell("poll_after_peek")),
        mark("so_error_after_peek", cell("so_error_after_peek")),
        mark("send", send),
        mark("poll_after_send", cell("poll_after_send")),
        rules
    );
}

/// The committed real-kernel traces (`traces/readiness/<id>/observations.jsonl`), compiled in.
const RECORDED: [(&str, &str); 22] = [
    ("listen-empty", include_str!("../traces/readiness/listen-empty/observations.jsonl")),
    ("listen-pending", include_str!("../traces/readiness/listen-pending/observations.jsonl")),
    ("connect-in-progress", include_str!("../traces/readiness/connect-in-progress/observations.jsonl")),
    ("connect-refused", include_str!("../traces/readiness/connect-refused/observations.jsonl")),
    ("connect-timeout", include_str!("../traces/readiness/connect-timeout/observations.jsonl")),
    ("established-idle", include_str!("../traces/readiness/established-idle/observations.jsonl")),
    ("established-data", include_str!("../traces/readiness/established-data/observations.jsonl")),
    ("sndbuf-full", include_str!("../traces/readiness/sndbuf-full/observations.jsonl")),
    ("peer-fin", include_str!("../traces/readiness/peer-fin/observations.jsonl")),
    ("peer-fin-with-data", include_str!("../traces/readiness/peer-fin-with-data/observations.jsonl")),
    ("peer-closed", include_str!("../traces/readiness/peer-closed/observations.jsonl")),
    ("local-shut-wr", include_str!("../traces/readiness/local-shut-wr/observations.jsonl")),
    ("both-shut-wr", include_str!("../traces/readiness/both-shut-wr/observations.jsonl")),
    ("local-shut-rd", include_str!("../traces/readiness/local-shut-rd/observations.jsonl")),
    ("rst-received", include_str!("../traces/readiness/rst-received/observations.jsonl")),
    ("rst-unread-close", include_str!("../traces/readiness/rst-unread-close/observations.jsonl")),
    (
        "write-after-peer-close",
        include_str!("../traces/readiness/write-after-peer-close/observations.jsonl"),
    ),
    ("retrans-timeout", include_str!("../traces/readiness/retrans-timeout/observations.jsonl")),
    ("keepalive-timeout", include_str!("../traces/readiness/keepalive-timeout/observations.jsonl")),
    (
        "idle-partition-no-keepalive",
        include_str!("../traces/readiness/idle-partition-no-keepalive/observations.jsonl"),
    ),
    (
        "send-during-partition",
        include_str!("../traces/readiness/send-during-partition/observations.jsonl"),
    ),
    ("peer-reboot", include_str!("../traces/readiness/peer-reboot/observations.jsonl")),
];

/// The kernel the committed traces were recorded on (`traces/readiness/kernel.txt`).
pub const RECORDED_KERNEL: &str = include_str!("../traces/readiness/kernel.txt");

/// The committed real-kernel row of condition `id`, built as a capture's is.
fn recorded_row(id: &str) -> Result<ReadinessRow, String> {
    let path = format!("traces/readiness/{id}/observations.jsonl");
    let text = RECORDED.iter().find(|(n, _)| *n == id).map(|(_, t)| *t).ok_or(format!("{path}: not compiled in"))?;
    let obs = observe::from_jsonl(&path, text).map_err(|e| e.to_string())?;
    row_from_observations(id, &obs).map_err(|e| e.to_string())
}

/// The 22 rows of the committed real-kernel traces, in the spec's order (no root needed, on
/// any system).
pub fn recorded_table() -> Vec<ReadinessRow> {
    CONDITIONS
        .iter()
        .map(|id| {
            recorded_row(id).unwrap_or_else(|e| {
                panic!("committed trace of `{id}` is invalid (tests/capture_traces.rs checks it): {e}")
            })
        })
        .collect()
}
