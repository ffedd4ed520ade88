//! The `tcpsim` command line (see `docs/cli.md`): exit status 0 when the work was
//! done and every check held, 1 when a check failed, 2 when the input was wrong.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tcpsim::cli;

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

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum OsArg {
    Linux,
    Freebsd,
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
        /// Writes every event as JSON Lines.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Writes every segment on the simulated wire as a pcap file.
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
        #[arg(long, value_enum, default_value = "linux")]
        os: OsArg,
        #[arg(long, value_enum, default_value = "md")]
        format: TableFormat,
        /// Adds the real kernel's answers beside the simulated ones (runs the recipes in
        /// network namespaces; needs root).
        #[arg(long)]
        kernel: bool,
    },
    /// Holds a captured trace against the model: each segment the system under test sent
    /// is compared with what the model sends when fed the peer's captured segments (and the
    /// recorded calls of `observations.jsonl` beside the capture).
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
    },
    /// Runs a scenario on the real kernel in network namespaces (root): pcap and
    /// observation log.
    Capture {
        scenario: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match args.verb {
        Verb::Run { scenario, seed, trace, pcap, format, detail, plot } => cli::run(
            scenario.as_deref(),
            seed,
            trace.as_deref(),
            pcap.as_deref(),
            format == Format::Json,
            detail,
            plot.as_deref(),
        ),
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
        Verb::Table { os, format, kernel } => cli::table(os == OsArg::Freebsd, format == TableFormat::Json, kernel),
        Verb::Capture { scenario, out } => cli::capture(&scenario, &out),
        Verb::Replay { pcap, side, kernel, format } => {
            let side = side.map(|s| match s {
                SideArg::Client => tcpsim::replay::Side::Client,
                SideArg::Server => tcpsim::replay::Side::Server,
            });
            cli::replay(&pcap, side, kernel.as_deref(), format == Format::Json)
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
