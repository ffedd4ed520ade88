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
//! Every function returns what it drew (counts of marks), which is what the tests check.

mod input;

pub use input::{Pkt, PlotInput};

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

#[derive(Debug, thiserror::Error)]
#[error("plot {file}: {msg}")]
pub struct PlotError {
    file: String,
    msg: String,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A font that is compiled in and known good: failing to load it is a build bug.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Draws `draw` into DIR/NAME.svg and DIR/NAME.png; the marks it drew.
macro_rules! render {
    ($dir:expr, $name:expr, $draw:expr) => {{
        register_font();
        let svg = $dir.join(format!("{}.svg", $name));
        let png = $dir.join(format!("{}.png", $name));
        let err = |f: &Path, e: String| PlotError { file: f.display().to_string(), msg: e };
        let marks = {
            let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            let m = $draw(&root).map_err(|e| err(&svg, e))?;
            root.present().map_err(|e| err(&svg, e.to_string()))?;
            m
        };
        {
            let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
            $draw(&root).map_err(|e| err(&png, e))?;
            root.present().map_err(|e| err(&png, e.to_string()))?;
        }
        marks
    }};
}

/// Every plot of a run into `dir` (created if needed); what each holds, by file stem.
pub fn run_plots(input: &PlotInput, dir: &Path) -> Result<BTreeMap<&'static str, Marks>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|e| PlotError { file: dir.display().to_string(), msg: e.to_string() })?;
    let mut out = BTreeMap::new();
    out.insert("time-sequence", render!(dir, "time-sequence", |r| time_sequence(r, input)));
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
    std::fs::create_dir_all(dir).map_err(|e| PlotError { file: dir.display().to_string(), msg: e.to_string() })?;
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

/// The time-sequence graph of the direction that carried the most data.
fn time_sequence<DB: DrawingBackend>(root: &Area<DB>, input: &PlotInput) -> Result<Marks, String>
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
    let back = input.flow(&dst, &src);
    let base = flow.iter().find(|p| p.len > 0).map_or(0, |p| p.seq);
    // Signed distance from the first data byte: a SYN's numbers fall just below it.
    let rel = |s: u32| f64::from(s.wrapping_sub(base) as i32).max(0.0);
    let t0 = secs(input.pkts.first().map_or(0, |p| p.t_ns));
    let t1 = secs(input.pkts.last().map_or(0, |p| p.t_ns)).max(t0 + 1e-3);
    let top = flow.iter().map(|p| rel(p.seq) + f64::from(p.len)).fold(1.0, f64::max);
    let wtop = back.iter().filter(|p| p.has_ack && !p.syn).map(|p| rel(p.ack) + f64::from(p.win)).fold(top, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("time-sequence graph {src} > {dst}"), (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, 0.0..wtop * 1.05)
        .map_err(e2s)?;
    chart.configure_mesh().x_desc("time (s)").y_desc("relative sequence number (bytes)").label_style((FAMILY, 12)).draw().map_err(e2s)?;

    let (fresh, retrans) = input::split_retransmissions(&flow);
    let bar = |p: &&Pkt, c: RGBColor| {
        let x = secs(p.t_ns);
        PathElement::new(vec![(x, rel(p.seq)), (x, rel(p.seq) + f64::from(p.len.max(1)))], c.stroke_width(2))
    };
    let data: Vec<&Pkt> = fresh.iter().filter(|p| p.len > 0 && !input::is_window_probe(p, &back)).copied().collect();
    let probes: Vec<&Pkt> = flow.iter().filter(|p| input::is_window_probe(p, &back)).collect();
    marks.insert("data", data.len());
    marks.insert("retransmission", retrans.len());
    marks.insert("zero-window probe", probes.len());
    chart.draw_series(data.iter().map(|p| bar(p, BLUE))).map_err(e2s)?.label("data").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(retrans.iter().map(|p| bar(p, RED))).map_err(e2s)?.label("retransmission").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    let orange = RGBColor(255, 140, 0);
    chart
        .draw_series(probes.iter().map(|p| Cross::new((secs(p.t_ns), rel(p.seq)), 5, orange.stroke_width(2))))
        .map_err(e2s)?
        .label("zero-window probe")
        .legend(move |(x, y)| Cross::new((x + 10, y), 4, orange));

    let acks: Vec<(f64, f64)> = input::steps(back.iter().filter(|p| p.has_ack && !p.syn).map(|p| (secs(p.t_ns), rel(p.ack))));
    let wins: Vec<(f64, f64)> = input::steps(back.iter().filter(|p| p.has_ack && !p.syn).map(|p| (secs(p.t_ns), rel(p.ack) + f64::from(p.win))));
    let green = RGBColor(0, 150, 0);
    let olive = RGBColor(180, 160, 0);
    chart.draw_series(LineSeries::new(acks, green)).map_err(e2s)?.label("ACK").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green));
    chart.draw_series(LineSeries::new(wins, olive)).map_err(e2s)?.label("receive window").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], olive));
    let purple = RGBColor(150, 0, 200);
    let sacks: Vec<(f64, f64, f64)> =
        back.iter().flat_map(|p| p.sack.iter().map(move |(l, r)| (secs(p.t_ns), rel(*l), rel(*r)))).collect();
    marks.insert("sack block", sacks.len());
    chart
        .draw_series(sacks.iter().map(|(x, l, r)| PathElement::new(vec![(*x, *l), (*x, *r)], purple.stroke_width(3))))
        .map_err(e2s)?
        .label("SACK block")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], purple));
    chart.configure_series_labels().label_font((FAMILY, 12)).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(e2s)?;
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
