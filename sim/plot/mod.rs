//! Pictures of a run, drawn with `plotters` as SVG and PNG, in a font compiled into the
//! binary (DejaVu Sans, `assets/fonts/`), so they render on a machine without fonts:
//! - `time-sequence`: tcptrace's time-sequence graph of the busiest direction: data segments
//!   (vertical bars from seq to seq + len), retransmissions in red, the peer's ACK line, the
//!   advertised receive window's right edge, SACK blocks, zero-window probes;
//! - `rto`: each retransmission of one sequence number by backoff step over time, with the
//!   `tcp_retries2` budget and where the connection ended;
//! - `states`: a state timeline per connection (from a trace; a pcap has no states);
//! - `readiness`: what the script's poll/epoll calls reported, over time;
//! - `sweep`: the histogram of each key outcome of a sweep.
//!
//! - `replay`: per replayed connection, the time-sequence graph of the side under test with
//!   the kernel's segments (from the capture) and the model's (from the replay) overlaid, by
//!   the same drawing function as a run's.
//!
//! Every function returns what it drew (counts of marks), which is what the tests check.

mod input;

pub use input::{Pkt, PlotInput};

use crate::output::{self, OutputError};
use crate::sweep::SweepResult;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 560);
/// Linux's `tcp_retries2` default: the retransmission budget the RTO plot draws.
const TCP_RETRIES2: u32 = 15;

/// What one plot holds, by kind of mark.
pub type Marks = BTreeMap<&'static str, usize>;

/// Why a plot was not made: its file could not be written (the caller's input: a path that
/// is not a writable file), or drawing failed.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{0}")]
    Output(#[from] OutputError),
    #[error("plot {file}: {msg}")]
    Draw { file: String, msg: String },
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A font that is compiled in and known good: failing to load it is a build bug.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Draws `draw` into DIR/NAME.svg and DIR/NAME.png, in memory first and then each file
/// written whole ([`output::write_file`]); the marks it drew.
macro_rules! render {
    ($dir:expr, $name:expr, $draw:expr) => {{
        register_font();
        let svg = $dir.join(format!("{}.svg", $name));
        let png = $dir.join(format!("{}.png", $name));
        let err = |f: &Path, e: String| PlotError::Draw { file: f.display().to_string(), msg: e };
        let mut text = String::new();
        let marks = {
            let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
            let m = $draw(&root).map_err(|e| err(&svg, e))?;
            root.present().map_err(|e| err(&svg, e.to_string()))?;
            m
        };
        let mut rgb = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            $draw(&root).map_err(|e| err(&png, e))?;
            root.present().map_err(|e| err(&png, e.to_string()))?;
        }
        output::write_file(&svg, text.as_bytes())?;
        output::write_file(&png, &encode_png(&rgb).map_err(|e| err(&png, e))?)?;
        marks
    }};
}

/// An RGB picture of [`SIZE`] as PNG.
fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(rgb, SIZE.0, SIZE.1, image::ColorType::Rgb8).map_err(e2s)?;
    Ok(out)
}

/// Every plot of a run into `dir` (created if needed); what each holds, by file stem.
pub fn run_plots(input: &PlotInput, dir: &Path) -> Result<BTreeMap<&'static str, Marks>, PlotError> {
    output::out_dir(dir)?;
    let mut out = BTreeMap::new();
    out.insert("time-sequence", render!(dir, "time-sequence", |r| busiest_time_sequence(r, input)));
    out.insert("rto", render!(dir, "rto", |r| rto_timeline(r, input)));
    if !input.states.is_empty() {
        out.insert("states", render!(dir, "states", |r| state_timeline(r, input)));
    }
    if !input.readiness.is_empty() {
        out.insert("readiness", render!(dir, "readiness", |r| readiness_timeline(r, input)));
    }
    Ok(out)
}

/// The histogram of every outcome of a sweep, one file each (`sweep-OUTCOME`).
pub fn sweep_plots(r: &SweepResult, dir: &Path) -> Result<BTreeMap<String, Marks>, PlotError> {
    output::out_dir(dir)?;
    let mut out = BTreeMap::new();
    let names: Vec<&String> = r.outcomes.keys().collect();
    for name in names {
        let values: Vec<f64> = r.members.iter().filter_map(|m| m.outcomes.get(name).copied()).collect();
        let title = format!("{}: {name} over {} seeds", r.scenario, r.runs);
        let marks = render!(dir, format!("sweep-{name}"), |root| histogram(root, &title, name, &values));
        out.insert(name.clone(), marks);
    }
    Ok(out)
}

type Area<'a, DB> = DrawingArea<DB, Shift>;

fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// What one series of a time-sequence graph calls its marks and draws them in: a run's own
/// segments, or the kernel's and the model's of a replay, overlaid.
struct Look {
    data: (&'static str, RGBColor),
    retransmission: (&'static str, RGBColor),
    probe: (&'static str, RGBColor),
    control: (&'static str, RGBColor),
    /// Stroke width of the bars: the kernel's are wide, so the model's show inside them.
    width: u32,
}

/// The height of the plotting area and of one legend row, in pixels (about).
const PLOT_HEIGHT: f64 = 460.0;
const LEGEND_ROW: f64 = 16.0;

/// The y axis's top, as a multiple of the highest mark, for a legend of `rows`: the legend,
/// at the top right, sits in the room above the marks and never hides one.
fn legend_room(rows: usize) -> f64 {
    let legend = (rows as f64 * LEGEND_ROW + 2.0 * LEGEND_ROW) / PLOT_HEIGHT;
    1.05 / (1.0 - legend).max(0.3)
}

/// How far above the data and ACKs the window's edge may lie and still be drawn to scale.
const WINDOW_CUT: f64 = 3.0;

const ORANGE: RGBColor = RGBColor(255, 140, 0);
const GREY: RGBColor = RGBColor(120, 120, 120);

/// A run's or a capture's own segments.
const ONE: Look = Look {
    data: ("data", BLUE),
    retransmission: ("retransmission", RED),
    probe: ("zero-window probe", ORANGE),
    control: ("control segment", GREY),
    width: 2,
};

/// The kernel's segments in a replay: wide, light bars.
const KERNEL: Look = Look {
    data: ("kernel data", RGBColor(120, 170, 255)),
    retransmission: ("kernel retransmission", RGBColor(255, 140, 140)),
    probe: ("kernel zero-window probe", RGBColor(255, 190, 90)),
    control: ("kernel control segment", RGBColor(170, 170, 170)),
    width: 7,
};

/// The model's segments in a replay: narrow, dark bars, drawn over the kernel's.
const MODEL: Look = Look {
    data: ("model data", RGBColor(0, 0, 110)),
    retransmission: ("model retransmission", RGBColor(170, 0, 0)),
    probe: ("model zero-window probe", RGBColor(140, 70, 0)),
    control: ("model control segment", BLACK),
    width: 2,
};

/// One sender's segments in a time-sequence graph.
struct Series<'a> {
    look: &'a Look,
    flow: &'a [Pkt],
}

/// One replayed connection's side under test: the kernel's segments (from the capture), the
/// model's (from the replay), and the peer's (captured, fed to both), with times on the
/// replay's timeline.
#[derive(Clone, Debug)]
pub struct Overlay {
    /// File stem (`time-sequence-client-0`).
    pub name: String,
    /// `client 10.0.0.1:34070 > 10.0.0.2:8080`.
    pub title: String,
    pub kernel: Vec<Pkt>,
    pub model: Vec<Pkt>,
    pub peer: Vec<Pkt>,
}

impl Overlay {
    /// From a replayed connection's segments. Each sender's windows are scaled as its
    /// connection negotiated: the kernel's and the peer's by the captured SYNs, the model's by
    /// its own SYN and the peer's.
    pub fn of(c: &crate::replay::ConnSegments) -> Overlay {
        let sut = c.sut.to_string();
        let from_sut = |pkts: Vec<Pkt>| pkts.into_iter().filter(|p| p.src == sut).collect::<Vec<Pkt>>();
        let kernel_side = input::pkts_of(c.kernel.iter().chain(&c.peer_segments).map(|t| (t.t.as_nanos(), &t.seg)));
        let model_side = input::pkts_of(c.model.iter().chain(&c.peer_segments).map(|t| (t.t.as_nanos(), &t.seg)));
        Overlay {
            name: format!("time-sequence-{}-{}", c.side.name(), c.connection),
            title: format!("{} {} > {}", c.side.name(), c.sut, c.peer),
            kernel: from_sut(kernel_side.clone()),
            model: from_sut(model_side),
            peer: kernel_side.into_iter().filter(|p| p.src != sut).collect(),
        }
    }
}

/// The time-sequence graph of each replayed connection, kernel and model overlaid, into
/// `dir` (made ready first); what each holds, by file stem.
pub fn replay_plots(overlays: &[Overlay], dir: &Path) -> Result<Vec<(String, Marks)>, PlotError> {
    output::out_dir(dir)?;
    let mut out = Vec::new();
    for o in overlays {
        let title = format!("time-sequence graph {}: kernel and model", o.title);
        let series = [Series { look: &KERNEL, flow: &o.kernel }, Series { look: &MODEL, flow: &o.model }];
        let marks = render!(dir, &o.name, |r| time_sequence(r, &title, &series, &o.peer));
        out.push((o.name.clone(), marks));
    }
    Ok(out)
}

/// The time-sequence graph of the direction that carried the most data.
fn busiest_time_sequence<DB: DrawingBackend>(root: &Area<DB>, input: &PlotInput) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    let Some((src, dst)) = input.busiest_direction() else {
        root.fill(&WHITE).map_err(e2s)?;
        note(root, "no data segments")?;
        return Ok(Marks::new());
    };
    let flow = input.flow(&src, &dst);
    let back = input.flow(&dst, &src);
    time_sequence(root, &format!("time-sequence graph {src} > {dst}"), &[Series { look: &ONE, flow: &flow }], &back)
}

/// tcptrace's time-sequence graph of one or more series of one sender's segments (each
/// numbered from its own first data byte: a replay's model has its own ISN), with the
/// receiver's ACK line, window edge and SACK blocks from `back` (numbered as the first
/// series). Each segment is one mark: data (a bar from seq to seq + len), retransmission
/// (a bar starting below the highest sequence sent before it), zero-window probe (a cross),
/// or control segment (SYN, FIN, pure ACK, RST: a dot).
fn time_sequence<DB: DrawingBackend>(root: &Area<DB>, title: &str, series: &[Series], back: &[Pkt]) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(e2s)?;
    let mut marks = Marks::new();
    let bases: Vec<u32> = series.iter().map(|s| input::first_byte(s.flow)).collect();
    // Signed distance from the first data byte: a SYN's numbers fall just below it. The
    // axis starts a little below 0, so that an ACK line at 0 shows above it.
    let rel = |base: u32, s: u32| f64::from(s.wrapping_sub(base) as i32).max(0.0);
    let back_base = bases.first().copied().unwrap_or(0);
    let times = series.iter().flat_map(|s| s.flow.iter()).chain(back).map(|p| secs(p.t_ns));
    let t0 = times.clone().fold(f64::INFINITY, f64::min);
    let t0 = if t0.is_finite() { t0 } else { 0.0 };
    let t1 = times.fold(t0, f64::max).max(t0 + 1e-3);
    let top = series.iter().zip(&bases).flat_map(|(s, b)| s.flow.iter().map(move |p| rel(*b, p.seq) + f64::from(p.len))).fold(1.0, f64::max);
    let acked = || back.iter().filter(|p| p.has_ack && !p.syn);
    let top = acked().map(|p| rel(back_base, p.ack)).fold(top, f64::max);
    // The window's right edge is drawn to scale unless it lies far above the data (a few
    // bytes sent into a 64 KB window): then it is cut at the top, and the legend says so.
    let window_top = acked().map(|p| rel(back_base, p.ack) + f64::from(p.win)).fold(top, f64::max);
    let cut = window_top > WINDOW_CUT * top;
    let wtop = if cut { top * 1.2 } else { window_top };
    let kinds: Vec<Vec<(input::Kind, &Pkt)>> = series.iter().map(|s| input::classify(s.flow, back)).collect();
    let acking = acked().next().is_some();
    let has_sack = back.iter().any(|p| !p.sack.is_empty());
    // A legend row per kind of mark drawn, the ACK line and window edge, SACK blocks.
    let rows = kinds.iter().map(|k| k.iter().map(|(kind, _)| *kind).collect::<std::collections::BTreeSet<_>>().len()).sum::<usize>()
        + 2 * usize::from(acking)
        + usize::from(has_sack);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, -wtop * 0.02..wtop * legend_room(rows))
        .map_err(e2s)?;
    chart.configure_mesh().x_desc("time (s)").y_desc("relative sequence number (bytes)").label_style((FAMILY, 12)).draw().map_err(e2s)?;

    for ((s, base), kinds) in series.iter().zip(bases).zip(&kinds) {
        let of = |k: input::Kind| kinds.iter().filter(move |(kind, _)| *kind == k).map(|(_, p)| *p);
        let look = s.look;
        let bar = move |p: &Pkt, c: RGBColor| {
            let (x, y) = (secs(p.t_ns), rel(base, p.seq));
            PathElement::new(vec![(x, y), (x, y + f64::from(p.len.max(1)))], c.stroke_width(look.width))
        };
        for (kind, (name, colour)) in [(input::Kind::Data, look.data), (input::Kind::Retransmission, look.retransmission)] {
            let n = of(kind).count();
            marks.insert(name, n);
            let drawn = chart.draw_series(of(kind).map(|p| bar(p, colour))).map_err(e2s)?;
            if n > 0 {
                drawn.label(name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(look.width.min(4))));
            }
        }
        let (name, colour) = look.probe;
        let n = of(input::Kind::Probe).count();
        marks.insert(name, n);
        let drawn = chart.draw_series(of(input::Kind::Probe).map(|p| Cross::new((secs(p.t_ns), rel(base, p.seq)), 5, colour.stroke_width(2)))).map_err(e2s)?;
        if n > 0 {
            drawn.label(name).legend(move |(x, y)| Cross::new((x + 10, y), 4, colour));
        }
        let (name, colour) = look.control;
        let n = of(input::Kind::Control).count();
        marks.insert(name, n);
        let r = look.width.div_ceil(2) + 1;
        let drawn = chart.draw_series(of(input::Kind::Control).map(|p| Circle::new((secs(p.t_ns), rel(base, p.seq)), r, colour.filled()))).map_err(e2s)?;
        if n > 0 {
            drawn.label(name).legend(move |(x, y)| Circle::new((x + 10, y), r, colour.filled()));
        }
    }

    let acks: Vec<(f64, f64)> = input::steps(acked().map(|p| (secs(p.t_ns), rel(back_base, p.ack))));
    let wins: Vec<(f64, f64)> = input::steps(acked().map(|p| (secs(p.t_ns), (rel(back_base, p.ack) + f64::from(p.win)).min(wtop))));
    let window_label = if cut { "receive window (cut at the top)" } else { "receive window" };
    let green = RGBColor(0, 150, 0);
    let olive = RGBColor(180, 160, 0);
    let drawn = chart.draw_series(LineSeries::new(acks, green)).map_err(e2s)?;
    if acking {
        drawn.label("ACK").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green));
    }
    let drawn = chart.draw_series(LineSeries::new(wins, olive)).map_err(e2s)?;
    if acking {
        drawn.label(window_label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], olive));
    }
    let purple = RGBColor(150, 0, 200);
    let sacks: Vec<(f64, f64, f64)> =
        back.iter().flat_map(|p| p.sack.iter().map(move |(l, r)| (secs(p.t_ns), rel(back_base, *l), rel(back_base, *r)))).collect();
    marks.insert("sack block", sacks.len());
    let drawn = chart.draw_series(sacks.iter().map(|(x, l, r)| PathElement::new(vec![(*x, *l), (*x, *r)], purple.stroke_width(3)))).map_err(e2s)?;
    if has_sack {
        drawn.label("SACK block").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], purple));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e2s)?;
    Ok(marks)
}

/// Retransmissions of the busiest direction, by backoff step (the n-th retransmission of the
/// same sequence number) over time, against the `tcp_retries2` budget.
fn rto_timeline<DB: DrawingBackend>(root: &Area<DB>, input: &PlotInput) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(e2s)?;
    let mut marks = Marks::new();
    let Some((src, dst)) = input.busiest_direction() else {
        note(root, "no data segments")?;
        return Ok(marks);
    };
    let flow = input.flow(&src, &dst);
    let steps = input::backoff_steps(&flow);
    marks.insert("retransmission", steps.len());
    let t0 = secs(input.pkts.first().map_or(0, |p| p.t_ns));
    let t1 = secs(input.pkts.last().map_or(0, |p| p.t_ns)).max(t0 + 1e-3);
    let ymax = steps.iter().map(|s| s.1).max().unwrap_or(0).max(TCP_RETRIES2) + 1;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("retransmissions and backoff {src} > {dst}"), (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(t0..t1, 0u32..ymax)
        .map_err(e2s)?;
    chart.configure_mesh().x_desc("time (s)").y_desc("retransmission of the same segment").label_style((FAMILY, 12)).draw().map_err(e2s)?;
    chart
        .draw_series(steps.iter().map(|(t, n)| Circle::new((secs(*t), *n), 4, RED.filled())))
        .map_err(e2s)?
        .label("retransmission (RTO or probe)")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, RED.filled()));
    chart
        .draw_series(LineSeries::new(vec![(t0, TCP_RETRIES2), (t1, TCP_RETRIES2)], BLACK.stroke_width(1)))
        .map_err(e2s)?
        .label("tcp_retries2 = 15 (default budget)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    if let Some(end) = input.pkts.iter().filter(|p| p.rst).map(|p| p.t_ns).last() {
        let x = secs(end);
        chart
            .draw_series(LineSeries::new(vec![(x, 0), (x, ymax)], MAGENTA))
            .map_err(e2s)?
            .label("RST: the connection ends")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA));
        marks.insert("end", 1);
    }
    chart.configure_series_labels().label_font((FAMILY, 12)).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(e2s)?;
    Ok(marks)
}

/// One row per connection end, one coloured span per state.
fn state_timeline<DB: DrawingBackend>(root: &Area<DB>, input: &PlotInput) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    let spans = input.state_spans();
    let rows: Vec<String> = input.state_rows();
    timeline(root, "TCP state per connection end", &rows, &spans, "state span")
}

/// One row per scripted socket, one span per reported event set.
fn readiness_timeline<DB: DrawingBackend>(root: &Area<DB>, input: &PlotInput) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    let spans = input.readiness_spans();
    let rows: Vec<String> = input.readiness.iter().map(|r| r.1.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    timeline(root, "readiness reported by poll/epoll/kevent", &rows, &spans, "answer")
}

/// Spans (row, from, to, label) drawn as labelled bars.
fn timeline<DB: DrawingBackend>(root: &Area<DB>, title: &str, rows: &[String], spans: &[(usize, f64, f64, String)], what: &'static str) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(e2s)?;
    let t0 = spans.iter().map(|s| s.1).fold(f64::INFINITY, f64::min).min(0.0);
    let t1 = spans.iter().map(|s| s.2).fold(0.0, f64::max).max(t0 + 1e-3);
    let n = rows.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .build_cartesian_2d(t0..t1, 0.0..n)
        .map_err(e2s)?;
    chart.configure_mesh().x_desc("time (s)").disable_y_mesh().y_labels(0).label_style((FAMILY, 12)).draw().map_err(e2s)?;
    let labels: Vec<String> = spans.iter().map(|s| s.3.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let colour = |l: &str| Palette99::pick(labels.iter().position(|x| x == l).unwrap_or(0)).mix(0.6);
    chart
        .draw_series(spans.iter().map(|(row, a, b, l)| {
            let y = n - 1.0 - *row as f64;
            Rectangle::new([(*a, y + 0.15), (*b, y + 0.85)], colour(l).filled())
        }))
        .map_err(e2s)?;
    chart
        .draw_series(spans.iter().map(|(row, a, _, l)| {
            let y = n - 1.0 - *row as f64;
            Text::new(l.clone(), (*a, y + 0.6), (FAMILY, 11).into_font())
        }))
        .map_err(e2s)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| Text::new(r.clone(), (t0, n - 1.0 - i as f64 + 0.95), (FAMILY, 11).into_font())))
        .map_err(e2s)?;
    let mut marks = Marks::new();
    marks.insert(what, spans.len());
    marks.insert("row", rows.len());
    Ok(marks)
}

/// A histogram of `values` in at most 30 bins.
fn histogram<DB: DrawingBackend>(root: &Area<DB>, title: &str, name: &str, values: &[f64]) -> Result<Marks, String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(e2s)?;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if values.is_empty() { (0.0, 1.0) } else { (lo, hi.max(lo + 1e-9)) };
    let bins = 30usize;
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u32; bins];
    for v in values {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let ymax = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi + width, 0u32..ymax + ymax / 10 + 1)
        .map_err(e2s)?;
    chart.configure_mesh().x_desc(name).y_desc("runs").label_style((FAMILY, 12)).draw().map_err(e2s)?;
    chart
        .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| {
            let x = lo + i as f64 * width;
            Rectangle::new([(x, 0), (x + width, *c)], BLUE.mix(0.6).filled())
        }))
        .map_err(e2s)?;
    let mut marks = Marks::new();
    marks.insert("bin", counts.iter().filter(|c| **c > 0).count());
    marks.insert("runs", values.len());
    Ok(marks)
}

fn note<DB: DrawingBackend>(root: &Area<DB>, text: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.draw(&Text::new(text.to_string(), (40, 40), (FAMILY, 20).into_font())).map_err(e2s)
}
