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
        Verb::Packetdrill { paths, format } => cli::packetdrill(&paths, format == Format::Json),
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
