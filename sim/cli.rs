//! The verbs of the `tcpsim` command, as library functions (the binary only parses
//! arguments). Output files are written to a temporary name and renamed into place only
//! when the run succeeded, so a failed run leaves nothing half-written.

use crate::scenario::{self, Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::World;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How a verb ended when it did its work.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// A check failed: an invariant, a rule, a divergence (exit status 1).
    CheckFailed,
}

/// Why a verb could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input was wrong (exit status 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Input(String),
    /// Something outside the input failed (exit status 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Scenario(_) | CliError::Input(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

/// A file written under a temporary name and moved into place by [`Staged::commit`].
struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

impl Staged {
    fn create(dest: &Path) -> Result<(Staged, fs::File), CliError> {
        let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".partial");
        let tmp = dest.with_file_name(name);
        let f = fs::File::create(&tmp).map_err(|e| CliError::Input(format!("{}: {e}", dest.display())))?;
        Ok((Staged { tmp, dest: dest.to_path_buf() }, f))
    }

    fn commit(self) -> Result<(), CliError> {
        fs::rename(&self.tmp, &self.dest).map_err(|e| CliError::Failed(format!("{}: {e}", self.dest.display())))
    }

    fn abandon(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

fn load_scenario(path: Option<&Path>) -> Result<Scenario, CliError> {
    match path {
        Some(p) => Ok(scenario::load::load(p)?),
        None => Ok(scenario::default_scenario()?),
    }
}

/// `tcpsim run`.
pub fn run(path: Option<&Path>, seed: Option<u64>, trace: Option<&Path>, pcap: Option<&Path>, json: bool) -> Result<Status, CliError> {
    let sc = load_scenario(path)?;
    let seed = seed.unwrap_or(sc.seed);
    let mut staged = Vec::new();
    let trace_sink = match trace {
        Some(p) => {
            let (s, f) = Staged::create(p)?;
            staged.push(s);
            Trace::to_writer(Box::new(io::BufWriter::new(f)))
        }
        None => Trace::off(),
    };
    let pcap_sink = match pcap {
        Some(p) => {
            let (s, f) = Staged::create(p)?;
            staged.push(s);
            Some(crate::pcap::PcapWriter::new(io::BufWriter::new(f)).map_err(|e| CliError::Failed(e.to_string()))?)
        }
        None => None,
    };
    let result = simulate(&sc, seed, trace_sink, pcap_sink);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            staged.into_iter().for_each(Staged::abandon);
            return Err(e);
        }
    };
    for s in staged {
        s.commit()?;
    }
    let mut out = io::stdout().lock();
    let text = if json {
        serde_json::to_string_pretty(&report).map_err(|e| CliError::Failed(e.to_string()))? + "\n"
    } else {
        report.to_text()
    };
    let _ = out.write_all(text.as_bytes());
    Ok(if report.ok() { Status::Ok } else { Status::CheckFailed })
}

/// Runs one scenario to its end with the given sinks.
fn simulate(
    sc: &Scenario,
    seed: u64,
    trace: Trace,
    pcap: Option<crate::pcap::PcapWriter<io::BufWriter<fs::File>>>,
) -> Result<crate::world::RunReport, CliError> {
    let mut world = World::build(sc, seed, trace).map_err(|e| CliError::Input(e.to_string()))?;
    if let Some(w) = pcap {
        world.set_pcap(w);
    }
    world.run(sc);
    let report = world.report(sc);
    world.finish().map_err(|e| CliError::Failed(format!("writing output: {e}")))?;
    Ok(report)
}

/// `tcpsim graph`.
pub fn graph() -> Result<Status, CliError> {
    print!("{}", crate::tcp::graph::tcp_graph().to_dot());
    Ok(Status::Ok)
}

/// `tcpsim schema`.
pub fn schema() -> Result<Status, CliError> {
    print!("{}", scenario::schema::json_schema_text());
    Ok(Status::Ok)
}

/// `tcpsim table`.
pub fn table(freebsd: bool, json: bool, kernel: bool) -> Result<Status, CliError> {
    // Refused before anything runs: the real kernel beside a FreeBSD table would be Linux's.
    if kernel && freebsd {
        return Err(CliError::Input("--kernel needs --os linux: this machine runs Linux".into()));
    }
    let os = if freebsd { crate::tcp::profile::Os::FreeBsd } else { crate::tcp::profile::Os::Linux };
    let mut t = crate::table::simulate(os).map_err(|e| CliError::Failed(e.to_string()))?;
    if kernel {
        add_kernel_answers(&mut t)?;
    }
    let text = if json { t.to_json() } else { t.to_markdown() };
    print!("{text}");
    Ok(if t.disagreements() == 0 { Status::Ok } else { Status::CheckFailed })
}

/// The real kernel's answers beside the simulated ones (`table --kernel`).
#[cfg(target_os = "linux")]
fn add_kernel_answers(t: &mut crate::table::Table) -> Result<(), CliError> {
    let rows = crate::capture::kernel_table().map_err(|e| CliError::Failed(e.to_string()))?;
    t.set_kernel(rows, crate::capture::kernel_release());
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn add_kernel_answers(_: &mut crate::table::Table) -> Result<(), CliError> {
    Err(CliError::Failed(NO_CAPTURE.into()))
}

/// Why the real-kernel harness is missing from this build.
#[cfg(not(target_os = "linux"))]
const NO_CAPTURE: &str = "the real-kernel harness (network namespaces) needs Linux";

/// `tcpsim capture`.
#[cfg(target_os = "linux")]
pub fn capture(path: &Path, out: &Path) -> Result<Status, CliError> {
    let sc = scenario::load::load(path)?;
    let report = crate::capture::capture(&sc, out).map_err(|e| CliError::Failed(e.to_string()))?;
    print!("{report}");
    Ok(Status::Ok)
}

/// `tcpsim capture`: Linux only.
#[cfg(not(target_os = "linux"))]
pub fn capture(path: &Path, _out: &Path) -> Result<Status, CliError> {
    scenario::load::load(path)?;
    Err(CliError::Failed(NO_CAPTURE.into()))
}

/// `tcpsim replay`: holds a captured trace against the model, one side (or both) as the
/// system under test. Exit status 1 when a segment diverged, 2 when the capture (or what
/// lies beside it) could not be read; the report is printed only once the replay is done.
pub fn replay(path: &Path, side: Option<crate::replay::Side>, kernel: Option<&str>, json: bool) -> Result<Status, CliError> {
    use crate::replay::{ReplayError, ReplayOptions};
    if let Some(k) = kernel {
        crate::tcp::profile::KernelProfile::builtin(k).map_err(|e| CliError::Input(format!("--kernel: {e}")))?;
    }
    let mut opts = ReplayOptions { kernel: kernel.map(str::to_string), ..ReplayOptions::default() };
    if let Some(s) = side {
        opts.sides = vec![s];
    }
    let report = crate::replay::replay_file(path, &opts).map_err(|e| match e {
        ReplayError::Pcap(e) => CliError::Input(e.to_string()),
        ReplayError::Input(msg) => CliError::Input(msg),
    })?;
    let text = if json { report.to_json() } else { report.to_text() };
    let _ = io::stdout().lock().write_all(text.as_bytes());
    Ok(if report.ok() { Status::Ok } else { Status::CheckFailed })
}

/// `tcpsim packetdrill`: the conformance report of the scripts named. Exit status 1 when a
/// script failed, 2 when a path could not be read or a script could not be parsed.
pub fn packetdrill(paths: &[PathBuf], json: bool) -> Result<Status, CliError> {
    let report = crate::packetdrill::report::run_paths(paths).map_err(CliError::Input)?;
    let text = if json { report.to_json() } else { report.to_text() };
    let _ = io::stdout().lock().write_all(text.as_bytes());
    let t = report.totals();
    if t.error > 0 {
        let first = report.scripts.iter().find(|r| r.outcome.name() == "error").map(|r| r.script.clone()).unwrap_or_default();
        return Err(CliError::Input(format!("{first}: could not be read or parsed (see the report)")));
    }
    Ok(if t.fail == 0 { Status::Ok } else { Status::CheckFailed })
}
