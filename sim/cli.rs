//! The verbs of the `tcpsim` command, as library functions (the binary only parses
//! arguments). Output files are written as [`output`] says: never half-written, never
//! anything but a regular file replaced.

use crate::scenario::{self, Scenario, ScenarioError};
use crate::trace::Trace;
use crate::world::World;
use crate::limits::Limits;
use crate::output::{self, Output, OutputError, Plan};
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

fn load_scenario(path: Option<&Path>) -> Result<Scenario, CliError> {
    match path {
        Some(p) => Ok(scenario::load::load(p)?),
        None => Ok(scenario::default_scenario()?),
    }
}

/// What `tcpsim run` writes besides its report.
#[derive(Clone, Debug, Default)]
pub struct RunOutputs<'a> {
    pub trace: Option<&'a Path>,
    pub pcap: Option<&'a Path>,
    /// A directory for the run's plots (drawn from the trace).
    pub plot: Option<&'a Path>,
}

impl From<OutputError> for CliError {
    fn from(e: OutputError) -> Self {
        CliError::Input(e.to_string())
    }
}

/// Writes `text` to standard output. A closed pipe ends the process quietly (SIGPIPE, see
/// [`output::install_cleanup_on_signals`]); any other failure is ignored as `print!` would
/// not, without its panic.
pub fn print_out(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// `tcpsim run`. Every output path is checked and opened before the run starts; each is
/// written in place or staged as [`output`] decides, and staged ones are moved into place
/// only when the run and its writes succeeded.
pub fn run(path: Option<&Path>, seed: Option<u64>, outputs: &RunOutputs, limits: Limits, json: bool, detail: bool) -> Result<Status, CliError> {
    let sc = load_scenario(path)?;
    let seed = seed.unwrap_or(sc.seed);
    let named: Vec<(&str, &Path)> =
        [("--trace", outputs.trace), ("--pcap", outputs.pcap)].into_iter().filter_map(|(o, p)| p.map(|p| (o, p))).collect();
    let plans = output::plan_all(&named)?;
    // The trace is read back for the counters check and the plots: only a regular file can be.
    let trace_file = match (outputs.trace, plans.first()) {
        (Some(_), Some(Plan::Staged(dest))) => Some(dest.clone()),
        _ => None,
    };
    if outputs.plot.is_some() && outputs.trace.is_some() && trace_file.is_none() {
        return Err(CliError::Input("--plot draws from the trace: give --trace a regular file, or leave it out".into()));
    }
    let mut opened = Vec::new();
    let mut writers = Vec::new();
    for ((_, shown), plan) in named.iter().zip(&plans) {
        let (o, w) = Output::open(plan, shown)?;
        opened.push(o);
        writers.push(w);
    }
    let to_stdout = plans.contains(&Plan::Stdout);
    // The built-in default run tells its connection's story, read from its trace.
    let timeline = path.is_none();
    let mut writers = writers.into_iter();
    let trace = match outputs.trace {
        Some(_) => Trace::to_writer(writers.next().expect("one writer per output")),
        // The plots and the timeline are drawn from the trace: kept in memory when no file is
        // asked for.
        None if outputs.plot.is_some() || timeline => Trace::memory(),
        None => Trace::off(),
    };
    let pcap = match outputs.pcap {
        Some(_) => {
            let pcap_at = opened.last().map(|o| o.shown().to_string()).unwrap_or_default();
            let w: Box<dyn Write> = Box::new(io::BufWriter::new(writers.next().expect("one writer per output")));
            Some(crate::pcap::PcapWriter::new(w).map_err(|e| CliError::Failed(format!("{pcap_at}: {e}")))?)
        }
        None => None,
    };
    let label = sc.name.clone();
    let (mut report, trace_bytes) = simulate(&sc, seed, trace, pcap, limits, &label)?;
    for o in opened {
        o.commit().map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let trace_text = match &trace_file {
        Some(p) => Some(fs::read_to_string(p).map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?),
        // Kept in memory: there was no --trace (a device, a FIFO or standard output is not
        // read back).
        None if outputs.trace.is_none() && (outputs.plot.is_some() || timeline) => {
            Some(String::from_utf8_lossy(&trace_bytes).into_owned())
        }
        None => None,
    };
    // With a trace at hand, the report's counters are held to it.
    if let Some(text) = &trace_text {
        report.invariants.extend(crate::world::invariants::counters_agree(&report, text));
    }
    if let (true, Some(text)) = (timeline, &trace_text) {
        report.timeline = crate::world::timeline::timeline(text);
    }
    if let (Some(dir), Some(text)) = (outputs.plot, &trace_text) {
        let mut input = crate::plot::PlotInput::from_trace(text, "trace").map_err(CliError::Failed)?;
        input.add_readiness(&report.script);
        crate::plot::run_plots(&input, dir).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let text = if json {
        serde_json::to_string_pretty(&report).map_err(|e| CliError::Failed(e.to_string()))? + "\n"
    } else if detail {
        report.to_text_with(true)
    } else {
        report.to_text()
    };
    // Standard output carries a trace or a pcap: the report goes beside it, to standard error.
    match to_stdout {
        true => eprint!("{text}"),
        false => print_out(&text),
    }
    if let Some(why) = &report.stopped {
        eprintln!("tcpsim: {why}; the report is of the {:.3} simulated seconds before it", report.end_ns as f64 / 1e9);
    }
    if !report.ok() {
        // The command that reproduces the failed run.
        let file = path.map_or(String::new(), |p| format!(" {}", p.display()));
        eprintln!("reproduce: tcpsim run{file} --seed {seed}");
    }
    Ok(if report.ok() { Status::Ok } else { Status::CheckFailed })
}

/// `tcpsim plot`: the plots of a recorded trace (JSON Lines) or of any pcap.
pub fn plot(input: &Path, out: &Path) -> Result<Status, CliError> {
    let bytes = fs::read(input).map_err(|e| CliError::Input(format!("{}: {e}", input.display())))?;
    let name = input.display().to_string();
    let data = if bytes.first() == Some(&b'{') {
        let text = String::from_utf8(bytes).map_err(|_| CliError::Input(format!("{name}: not UTF-8 JSON Lines")))?;
        crate::plot::PlotInput::from_trace(&text, &name).map_err(CliError::Input)?
    } else {
        let cap = crate::pcap::read::read_pcap_bytes(&bytes, &name).map_err(|e| CliError::Input(e.to_string()))?;
        crate::plot::PlotInput::from_capture(&cap)
    };
    let made = crate::plot::run_plots(&data, out).map_err(|e| CliError::Failed(e.to_string()))?;
    for (name, marks) in made {
        let m: Vec<String> = marks.iter().map(|(k, v)| format!("{v} {k}")).collect();
        print_out(&format!("{}/{name}.svg (and .png): {}\n", out.display(), m.join(", ")));
    }
    Ok(Status::Ok)
}

/// Runs one scenario to its end (or to a limit) with the given sinks.
fn simulate(
    sc: &Scenario,
    seed: u64,
    trace: Trace,
    pcap: Option<crate::pcap::PcapWriter<Box<dyn Write>>>,
    limits: Limits,
    label: &str,
) -> Result<(crate::world::RunReport, Vec<u8>), CliError> {
    let mut world = World::build(sc, seed, trace).map_err(|e| CliError::Input(e.to_string()))?;
    world.set_limits(limits, label);
    if let Some(w) = pcap {
        world.set_pcap(w);
    }
    world.run(sc);
    let report = world.report(sc);
    world.finish().map_err(|e| CliError::Failed(format!("writing output: {}", output::io_text(&e))))?;
    Ok((report, world.take_trace_bytes()))
}

/// `tcpsim graph`.
pub fn graph() -> Result<Status, CliError> {
    print_out(&crate::tcp::graph::tcp_graph().to_dot());
    Ok(Status::Ok)
}

/// `tcpsim schema`.
pub fn schema() -> Result<Status, CliError> {
    print_out(&scenario::schema::json_schema_text());
    Ok(Status::Ok)
}

/// `tcpsim table`.
pub fn table(os: crate::tcp::profile::Os, json: bool, kernel: bool, link: crate::table::TableLink) -> Result<Status, CliError> {
    // Refused before anything runs: the real kernel beside a FreeBSD table would be Linux's.
    if kernel && os != crate::tcp::profile::Os::Linux {
        return Err(CliError::Input("--kernel needs --os linux: this machine runs Linux".into()));
    }
    let mut t = crate::table::simulate_on(os, link).map_err(|e| CliError::Failed(e.to_string()))?;
    if kernel {
        add_kernel_answers(&mut t, link)?;
    }
    let text = if json { t.to_json() } else { t.to_markdown() };
    print_out(&text);
    Ok(if t.disagreements() == 0 { Status::Ok } else { Status::CheckFailed })
}

/// The real kernel's answers beside the simulated ones (`table --kernel`).
#[cfg(target_os = "linux")]
fn add_kernel_answers(t: &mut crate::table::Table, link: crate::table::TableLink) -> Result<(), CliError> {
    let rows = crate::capture::kernel_table(link).map_err(|e| CliError::Failed(e.to_string()))?;
    t.set_kernel(rows, crate::capture::kernel_release());
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn add_kernel_answers(_: &mut crate::table::Table, _: crate::table::TableLink) -> Result<(), CliError> {
    Err(CliError::Failed(NO_CAPTURE.into()))
}

/// Why the real-kernel harness is missing from this build.
#[cfg(not(target_os = "linux"))]
const NO_CAPTURE: &str = "the real-kernel harness (network namespaces) needs Linux";

/// An existing `capture --out` is kept unless `force` says to write into it.
fn check_capture_out(out: &Path, force: bool) -> Result<(), CliError> {
    match std::fs::metadata(out) {
        Ok(m) if !m.is_dir() => Err(CliError::Input(format!("{}: exists and is not a directory", out.display()))),
        Ok(_) if !force => Err(CliError::Input(format!("{}: already exists (--force writes into it)", out.display()))),
        _ => Ok(()),
    }
}

/// `tcpsim capture`.
#[cfg(target_os = "linux")]
pub fn capture(path: &Path, out: &Path, force: bool) -> Result<Status, CliError> {
    check_capture_out(out, force)?;
    let sc = scenario::load::load(path)?;
    let report = crate::capture::capture(&sc, out).map_err(|e| CliError::Failed(e.to_string()))?;
    print_out(&report.to_string());
    Ok(Status::Ok)
}

/// `tcpsim capture`: Linux only.
#[cfg(not(target_os = "linux"))]
pub fn capture(path: &Path, out: &Path, force: bool) -> Result<Status, CliError> {
    check_capture_out(out, force)?;
    scenario::load::load(path)?;
    Err(CliError::Failed(NO_CAPTURE.into()))
}

/// Where `tcpsim replay` looks up known divergences.
#[derive(Clone, Debug, Default)]
pub enum KnownFrom {
    /// `KNOWN-DIVERGENCES.md` beside the capture's directory or above it, if there is one.
    #[default]
    Beside,
    File(std::path::PathBuf),
}

/// How much of a capture `tcpsim replay` compares, and what it accepts.
#[derive(Copy, Clone, Debug, Default)]
pub struct Coverage {
    /// `--first`: stop each connection at its first divergence.
    pub first: bool,
    /// `--partial`: a comparison of part of the segments may pass.
    pub partial: bool,
}

/// `tcpsim replay`: holds a captured trace against the model, one side (or both) as the
/// system under test. Exit status 1 when a segment diverged in a way the known-divergences
/// file does not list or when not every segment was compared (unless `partial`), 2 when the
/// capture (or what lies beside it) could not be read or holds nothing to replay; the report
/// is printed only once the replay is done.
///
/// With `plot`, the time-sequence graph of each connection's side under test, kernel and
/// model overlaid, is drawn into that directory (checked before the replay runs).
#[allow(clippy::too_many_arguments)]
pub fn replay(
    path: &Path,
    side: Option<crate::replay::Side>,
    kernel: Option<&str>,
    known: &KnownFrom,
    cover: Coverage,
    sets: &[String],
    plot: Option<&Path>,
    json: bool,
) -> Result<Status, CliError> {
    use crate::replay::known::Known;
    use crate::replay::{ReplayError, ReplayOptions};
    if let Some(dir) = plot {
        output::out_dir(dir).map_err(|e| CliError::Input(format!("--plot {e}")))?;
    }
    if let Some(k) = kernel {
        crate::tcp::profile::KernelProfile::builtin(k).map_err(|e| CliError::Input(format!("--kernel: {e}")))?;
    }
    let known = match known {
        KnownFrom::File(f) => Some(Known::load(f).map_err(|e| CliError::Input(format!("--known: {e}")))?),
        KnownFrom::Beside => match Known::find_for(path) {
            Some(f) => Some(Known::load(&f).map_err(CliError::Input)?),
            None => None,
        },
    };
    let settings = sets
        .iter()
        .map(|a| crate::replay::settings::parse(a).map_err(|e| CliError::Input(format!("--set {a}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut opts = ReplayOptions { kernel: kernel.map(str::to_string), first: cover.first, settings, keep_segments: plot.is_some(), ..ReplayOptions::default() };
    if let Some(s) = side {
        opts.sides = vec![s];
    }
    let mut report = crate::replay::replay_file(path, &opts).map_err(|e| match e {
        ReplayError::Pcap(e) => CliError::Input(e.to_string()),
        ReplayError::Input(msg) => CliError::Input(msg),
    })?;
    if let Some(k) = &known {
        k.mark(path, &mut report);
    }
    if let Some(dir) = plot {
        replay_plots(&mut report, dir)?;
    }
    let text = if json { report.to_json() } else { report.to_text() };
    print_out(&text);
    Ok(if report.ok(cover.partial) { Status::Ok } else { Status::CheckFailed })
}

/// Draws each replayed connection's overlay into `dir` and lists the plots in the report.
fn replay_plots(report: &mut crate::replay::ReplayReport, dir: &Path) -> Result<(), CliError> {
    use crate::plot::{Overlay, PlotError};
    let overlays: Vec<Overlay> = report.segments.iter().map(Overlay::of).collect();
    let made = crate::plot::replay_plots(&overlays, dir).map_err(|e| match e {
        PlotError::Output(e) => CliError::Input(format!("--plot {e}")),
        e @ PlotError::Draw { .. } => CliError::Failed(e.to_string()),
    })?;
    report.plots = made.into_iter().map(|(name, marks)| crate::replay::report::PlotMade { file: dir.join(name).display().to_string(), marks }).collect();
    Ok(())
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
