//! The `tcpsim` command line (see `shared/spec/cli.md`): exit status 0 when the work was
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
        Verb::Run { scenario, seed, trace, pcap, format } => {
            cli::run(scenario.as_deref(), seed, trace.as_deref(), pcap.as_deref(), format == Format::Json)
        }
        Verb::Graph => cli::graph(),
        Verb::Schema => cli::schema(),
        Verb::Table { os, format, kernel } => cli::table(os == OsArg::Freebsd, format == TableFormat::Json, kernel),
        Verb::Capture { scenario, out } => cli::capture(&scenario, &out),
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
