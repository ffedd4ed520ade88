//! packetdrill scripts run against the model: the Linux TCP developers' own tests
//! (google/packetdrill) turned into a conformance suite.
//!
//! - [`lexer`], [`parser`] → [`ast`]: the script language (`lexer.l`, `parser.y`);
//! - [`time`]: when events happen and how late they may be (`run.c`);
//! - [`matcher`]: an outbound segment held against the script's packet (`run_packet.c`);
//! - [`code`]: the `%{ assert tcpi_… }%` blocks;
//! - [`sysctl`]: the shell lines that configure the kernel;
//! - `runner`/`syscalls`/`calls`: one script against one modelled host, through the
//!   project's syscall interface ([`crate::syscall::Syscalls`]);
//! - [`report`]: the conformance report.
//!
//! A script passes only if every event happened as written; one that needs something the
//! model does not have is *unsupported*, with the feature named, never a pass.

pub mod ast;
mod calls;
pub mod code;
pub mod lexer;
pub mod matcher;
pub mod parser;
pub mod report;
mod runner;
mod syscalls;
pub mod sysctl;
pub mod time;

use serde::Serialize;
use std::path::Path;

/// A syntax error, at a line of the script.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: u32,
    pub msg: String,
}

/// How one script fared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// The first line where the model did not do what the script says, and why.
    Fail { line: u32, error: String },
    /// The first line that needs something the model does not have, and what.
    Unsupported { line: u32, feature: String },
    /// The script could not be read or parsed.
    Error { line: u32, error: String },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::Unsupported { .. } => "unsupported",
            Outcome::Error { .. } => "error",
        }
    }
}

/// Reads, parses and runs one script.
pub fn run_file(path: &Path) -> Outcome {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Outcome::Error { line: 0, error: e.to_string() },
    };
    match parser::parse(&text) {
        Ok(script) => runner::run(&script, path),
        Err(e) => Outcome::Error { line: e.line, error: e.msg },
    }
}
