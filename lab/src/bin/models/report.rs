//! The sweep's results: a table, CSV or JSON, and a chart drawn with
//! `plotters`.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::common::human_nanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// What one (model, N) run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Messages echoed within the load time, per second.
    pub msgs_per_sec: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    /// Server CPU time (user + system, children included) over the whole
    /// client run, per echoed message.
    pub cpu_ns_per_msg: f64,
    /// The client's CPU time per echoed message: when the client is the
    /// bottleneck, messages/s measures it rather than the server.
    pub client_cpu_ns_per_msg: f64,
    /// Peak resident memory: the server's `VmHWM` plus the largest sampled
    /// sum of its children's proportional set sizes.
    pub peak_kib: u64,
    pub threads: u64,
    pub processes: u64,
}

#[derive(Debug, Clone)]
pub enum Cell {
    Measured(Measured),
    /// Decided before running: why the model cannot serve N.
    Cannot(String),
    /// It was run and did not work.
    Failed(String),
}

pub struct Row {
    pub model: String,
    pub connections: usize,
    pub cell: Cell,
}

/// One line for the progress output.
pub fn brief(cell: &Cell) -> String {
    match cell {
        Cell::Measured(m) => format!(
            "{:.0} msg/s, p99 {}, {} CPU/msg",
            m.msgs_per_sec,
            human_nanos(m.p99_ns as f64),
            human_nanos(m.cpu_ns_per_msg)
        ),
        Cell::Cannot(why) => format!("cannot: {why}"),
        Cell::Failed(why) => format!("failed: {why}"),
    }
}

pub fn write(out: &mut String, format: Format, rows: &[Row]) {
    match format {
        Format::Table => table(out, rows),
        Format::Csv => csv(out, rows),
        Format::Json => json(out, rows),
    }
}

fn table(out: &mut String, rows: &[Row]) {
    let _ = writeln!(
        out,
        "| model | N | msg/s | p50 | p99 | server CPU/msg | client CPU/msg | peak RSS | threads | procs |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = match &r.cell {
            Cell::Measured(m) => writeln!(
                out,
                "| {} | {} | {:.0} | {} | {} | {} | {} | {:.1} MiB | {} | {} |",
                r.model,
                r.connections,
                m.msgs_per_sec,
                human_nanos(m.p50_ns as f64),
                human_nanos(m.p99_ns as f64),
                human_nanos(m.cpu_ns_per_msg),
                human_nanos(m.client_cpu_ns_per_msg),
                m.peak_kib as f64 / 1024.0,
                m.threads,
                m.processes
            ),
            other => writeln!(
                out,
                "| {} | {} | {} ||||||||",
                r.model,
                r.connections,
                brief(other)
            ),
        };
    }
}

const CSV_HEADER: &str = "model,connections,status,msgs_per_sec,p50_ns,p99_ns,cpu_ns_per_msg,\
                          client_cpu_ns_per_msg,peak_kib,threads,processes,reason";

fn csv(out: &mut String, rows: &[Row]) {
    let _ = writeln!(out, "{CSV_HEADER}");
    for r in rows {
        let _ = match &r.cell {
            Cell::Measured(m) => writeln!(
                out,
                "{},{},ok,{:.1},{},{},{:.0},{:.0},{},{},{},",
                r.model,
                r.connections,
                m.msgs_per_sec,
                m.p50_ns,
                m.p99_ns,
                m.cpu_ns_per_msg,
                m.client_cpu_ns_per_msg,
                m.peak_kib,
                m.threads,
                m.processes
            ),
            Cell::Cannot(why) => writeln!(
                out,
                "{},{},cannot,,,,,,,,,\"{}\"",
                r.model,
                r.connections,
                why.replace('"', "\"\"")
            ),
            Cell::Failed(why) => writeln!(
                out,
                "{},{},failed,,,,,,,,,\"{}\"",
                r.model,
                r.connections,
                why.replace('"', "\"\"")
            ),
        };
    }
}

/// Rows back from [`csv`]'s output, to draw or print a sweep again
/// without running it.
pub fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(CSV_HEADER) {
        return Err("not the CSV of a models sweep (the header differs)".to_owned());
    }
    lines.map(parse_csv_row).collect()
}

fn parse_csv_row(line: &str) -> Result<Row, String> {
    let bad = || format!("bad CSV row {line:?}");
    let cols: Vec<&str> = line.splitn(12, ',').collect();
    if cols.len() != 12 {
        return Err(bad());
    }
    let num = |i: usize| cols[i].parse::<f64>().map_err(|_| bad());
    let reason = cols[11].trim_matches('"').replace("\"\"", "\"");
    let cell = match cols[2] {
        "ok" => Cell::Measured(Measured {
            msgs_per_sec: num(3)?,
            p50_ns: num(4)? as u64,
            p99_ns: num(5)? as u64,
            cpu_ns_per_msg: num(6)?,
            client_cpu_ns_per_msg: num(7)?,
            peak_kib: num(8)? as u64,
            threads: num(9)? as u64,
            processes: num(10)? as u64,
        }),
        "cannot" => Cell::Cannot(reason),
        "failed" => Cell::Failed(reason),
        _ => return Err(bad()),
    };
    Ok(Row {
        model: cols[0].to_owned(),
        connections: cols[1].parse().map_err(|_| bad())?,
        cell,
    })
}

fn json_string(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn json(out: &mut String, rows: &[Row]) {
    out.push_str("[\n");
    for (i, r) in rows.iter().enumerate() {
        let head = format!(
            "{{\"model\":{},\"connections\":{}",
            json_string(&r.model),
            r.connections
        );
        let _ = match &r.cell {
            Cell::Measured(m) => write!(
                out,
                "  {head},\"status\":\"ok\",\"msgs_per_sec\":{:.1},\"p50_ns\":{},\"p99_ns\":{},\
                 \"cpu_ns_per_msg\":{:.0},\"client_cpu_ns_per_msg\":{:.0},\"peak_kib\":{},\
                 \"threads\":{},\"processes\":{}}}",
                m.msgs_per_sec,
                m.p50_ns,
                m.p99_ns,
                m.cpu_ns_per_msg,
                m.client_cpu_ns_per_msg,
                m.peak_kib,
                m.threads,
                m.processes
            ),
            Cell::Cannot(why) => write!(
                out,
                "  {head},\"status\":\"cannot\",\"reason\":{}}}",
                json_string(why)
            ),
            Cell::Failed(why) => write!(
                out,
                "  {head},\"status\":\"failed\",\"reason\":{}}}",
                json_string(why)
            ),
        };
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
}

/// The measured points of each model, in row order: (N, value).
fn series(rows: &[Row], value: impl Fn(&Measured) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut all: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows {
        let Cell::Measured(m) = &r.cell else { continue };
        let point = (r.connections as f64, value(m));
        match all.iter_mut().find(|(name, _)| *name == r.model) {
            Some((_, pts)) => pts.push(point),
            None => all.push((r.model.clone(), vec![point])),
        }
    }
    all
}

/// Line colours, dark enough on white and told apart in order (the
/// Tableau 10 palette); models past the tenth reuse them.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Two log-log panels side by side, messages per second and server CPU
/// per message against the number of connections, one line per model,
/// and the legend to their right.
pub fn chart(path: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1280, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (panels, legend) = root.split_horizontally(1130);
    let (left, right) = panels.split_horizontally(565);
    let rate = series(rows, |m| m.msgs_per_sec);
    panel(&left, "echoed messages per second", "messages/s", &rate)?;
    let cpu = series(rows, |m| m.cpu_ns_per_msg / 1000.0);
    panel(
        &right,
        "server CPU time per message",
        "µs per message",
        &cpu,
    )?;
    // Every model with a measured cell, in row order (the same in both).
    for (i, (name, _)) in rate.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        let color = COLORS[i % COLORS.len()];
        legend.draw(&PathElement::new(
            vec![(8, y), (36, y)],
            color.stroke_width(3),
        ))?;
        legend.draw(&Text::new(name.as_str(), (44, y - 7), ("sans-serif", 14)))?;
    }
    root.present()?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    lines: &[(String, Vec<(f64, f64)>)],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let max_n = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    let ys = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    // From a power of ten down, so the axis has labels below the lowest line.
    let (lo, hi) = if lo <= hi && lo > 0.0 {
        (10f64.powf(lo.log10().floor()), hi * 1.5)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.7..max_n * 1.5).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("connections (N)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| short(*x))
        .y_label_formatter(&|y| short(*y))
        .y_labels(12)
        .light_line_style(WHITE)
        .draw()?;
    for (i, (_, pts)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}

/// An axis label: 1, 20, 300, 4k, 5M, 0.5.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}
