//! The `tcpsim` command line (see `docs/cli.md`): exit status 0 when the work was
//! done and every check held, 1 when a check failed, 2 when the input was wrong.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tcpsim::cli;
use tcpsim::tcp::profile::Os;

#[derive(Parser)]
#[command(name = "tcpsim", version, about = "A deterministic simulator of the Linux kernel's TCP stack")]
struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum TableFormat {
    Md,
    Json,
}

/// `table --link`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum TableLinkArg {
    Veth,
    Loopback,
}

impl From<TableLinkArg> for tcpsim::table::TableLink {
    fn from(a: TableLinkArg) -> Self {
        match a {
            TableLinkArg::Veth => tcpsim::table::TableLink::Veth,
            TableLinkArg::Loopback => tcpsim::table::TableLink::Loopback,
        }
    }
}

/// `--os`: the one [`Os`], by the lower-case name kernel profiles give it.
fn os_arg() -> impl TypedValueParser<Value = Os> {
    PossibleValuesParser::new(["linux", "freebsd"]).map(|s| if s == "freebsd" { Os::FreeBsd } else { Os::Linux })
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum SideArg {
    Client,
    Server,
}

#[derive(Subcommand)]
enum Verb {
    /// Runs one seeded simulation and prints a summary (the built-in default scenario when
    /// no file is given).
    Run {
        /// A scenario file (TOML); see `models/`.
        scenario: Option<PathBuf>,
        /// The seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Writes every event as JSON Lines (`-`: standard output).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Writes every segment on the simulated wire as a pcap file (`-`: standard output).
        #[arg(long)]
        pcap: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Lists every application socket (by default, above 48 they are counted by host,
        /// role and state; the JSON report always lists each).
        #[arg(long)]
        detail: bool,
        /// Draws the run's plots (SVG and PNG) into this directory.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Stops the run after this many events (0: no limit); the report is of what was
        /// simulated by then, and the exit status 1.
        #[arg(long, default_value_t = tcpsim::limits::Limits::DEFAULT_MAX_EVENTS)]
        max_events: u64,
        /// Stops the run once the trace holds this many bytes (0: no limit).
        #[arg(long, default_value_t = tcpsim::limits::Limits::DEFAULT_MAX_TRACE_BYTES)]
        max_trace_bytes: u64,
        /// Stops the run after this many seconds of wall-clock time (default: none).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Runs many seeds of a scenario, every invariant checked on each; a reproducer per failure.
    Sweep {
        scenario: PathBuf,
        /// Seeds A..B (B excluded) or A..=B.
        #[arg(long)]
        seeds: String,
        /// Threads (the result does not depend on it).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Runs block K (0-based) of N of the seeds; `tcpsim merge` joins the shards.
        #[arg(long)]
        shard: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Draws the distribution of each key outcome into this directory.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Joins shard results (`sweep --shard K/N --format json`) into what one sweep prints.
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Draws the plots of a recorded trace (`--trace`, JSON Lines) or of any pcap.
    Plot {
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints the TCP state machine as DOT.
    Graph,
    /// Prints the JSON Schema of scenario files.
    Schema,
    /// The readiness table, computed by simulation.
    Table {
        #[arg(long, value_parser = os_arg(), default_value = "linux")]
        os: Os,
        #[arg(long, value_enum, default_value = "md")]
        format: TableFormat,
        /// Adds the real kernel's answers beside the simulated ones (runs the recipes in
        /// network namespaces; needs root).
        #[arg(long)]
        kernel: bool,
        /// `veth` (two hosts) or `loopback` (both ends on one host's lo, 127.0.0.1).
        #[arg(long, value_enum, default_value = "veth")]
        link: TableLinkArg,
    },
    /// Holds a captured trace against the model: each segment the system under test sent
    /// is compared with what the model sends when fed the peer's captured segments (and the
    /// recorded calls of `observations.jsonl` beside the capture).
    #[command(after_help = "Exit status: 0 when every segment agrees or each divergence is listed in the \
known-divergences file (with its cause), and every segment the system under test sent was compared; \
1 when a divergence is not listed there, or some segments were not compared (a connection whose SYN \
the capture lacks, packets that could not be read, --first) and --partial was not given; 2 when the \
capture or what lies beside it cannot be read, or it holds no TCP-over-IPv4 connection to replay.")]
    Replay {
        pcap: PathBuf,
        /// The endpoint under test (default: each side in turn).
        #[arg(long, value_enum)]
        side: Option<SideArg>,
        /// A built-in kernel profile (default: the scenario host's, else linux-6.18).
        #[arg(long)]
        kernel: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Known divergences (a KNOWN-DIVERGENCES.md): listed ones pass, with their cause
        /// (default: KNOWN-DIVERGENCES.md in the capture's directory or the nearest above).
        #[arg(long)]
        known: Option<PathBuf>,
        /// Stops each connection's comparison at its first divergence in flags, sequence or
        /// length, or a missing or extra segment (default: resynchronise and go on).
        #[arg(long)]
        first: bool,
        /// Accepts a comparison that did not cover every segment the system under test sent.
        #[arg(long)]
        partial: bool,
        /// A setting of the system under test the trace cannot show (repeatable): a sysctl
        /// (`tcp_keepalive_time=2`), a socket option set on each of its sockets
        /// (`SO_RCVBUF=4096`, `TCP_USER_TIMEOUT=8000`, `SO_LINGER=1,0`) or `backlog=N`.
        /// Overrides what the trace shows; listed in the report.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Draws, for each replayed connection, the time-sequence graph of the side under test
        /// with the kernel's segments (captured) and the model's (replayed) overlaid, into this
        /// directory (SVG and PNG, `time-sequence-SIDE-N`; created if missing).
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
    },
    /// Runs packetdrill scripts (files, or directories of `.pkt` files) against the model:
    /// pass, fail (the first differing line, in packetdrill's wording) or unsupported (the
    /// feature the model lacks), with counts per directory.
    Packetdrill {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Runs a scenario on the real kernel in network namespaces (root): pcap and
    /// observation log.
    Capture {
        scenario: PathBuf,
        /// The directory written (refused if it exists, unless --force).
        #[arg(long)]
        out: PathBuf,
        /// Writes into an existing --out directory.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    tcpsim::output::install_cleanup_on_signals();
    let args = Args::parse();
    let outcome = match args.verb {
        Verb::Run { scenario, seed, trace, pcap, format, detail, plot, max_events, max_trace_bytes, timeout } => {
            let outputs = cli::RunOutputs { trace: trace.as_deref(), pcap: pcap.as_deref(), plot: plot.as_deref() };
            match limits(max_events, max_trace_bytes, timeout) {
                Ok(l) => cli::run(scenario.as_deref(), seed, &outputs, l, format == Format::Json, detail),
                Err(e) => Err(e),
            }
        }
        Verb::Sweep { scenario, seeds, jobs, shard, format, plot } => {
            tcpsim::sweep::cli::sweep(&tcpsim::sweep::cli::SweepArgs {
                scenario: &scenario,
                seeds: &seeds,
                jobs,
                shard: shard.as_deref(),
                json: format == Format::Json,
                plot: plot.as_deref(),
            })
        }
        Verb::Merge { files, format } => tcpsim::sweep::cli::merge_files(&files, format == Format::Json),
        Verb::Plot { input, out } => cli::plot(&input, &out),
        Verb::Graph => cli::graph(),
        Verb::Schema => cli::schema(),
        Verb::Table { os, format, kernel, link } => cli::table(os, format == TableFormat::Json, kernel, link.into()),
        Verb::Capture { scenario, out, force } => cli::capture(&scenario, &out, force),
        Verb::Packetdrill { paths, format } => cli::packetdrill(&paths, format == Format::Json),
        Verb::Replay { pcap, side, kernel, format, known, first, partial, set, plot } => {
            let side = side.map(|s| match s {
                SideArg::Client => tcpsim::replay::Side::Client,
                SideArg::Server => tcpsim::replay::Side::Server,
            });
            let known = known.map_or(cli::KnownFrom::Beside, cli::KnownFrom::File);
            cli::replay(&pcap, side, kernel.as_deref(), &known, cli::Coverage { first, partial }, &set, plot.as_deref(), format == Format::Json)
        }
    };
    match outcome {
        Ok(cli::Status::Ok) => ExitCode::SUCCESS,
        Ok(cli::Status::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tcpsim: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The run's limits from its options (0 turns a limit off).
fn limits(max_events: u64, max_trace_bytes: u64, timeout: Option<f64>) -> Result<tcpsim::limits::Limits, cli::CliError> {
    let timeout = match timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(std::time::Duration::from_secs_f64(t)),
        Some(t) => return Err(cli::CliError::Input(format!("--timeout {t}: a number of seconds above 0"))),
        None => None,
    };
    let nonzero = |n: u64| (n > 0).then_some(n);
    Ok(tcpsim::limits::Limits { max_events: nonzero(max_events), max_trace_bytes: nonzero(max_trace_bytes), timeout })
}
