//! The sweep's chart, drawn with `plotters` as SVG: four log-log panels
//! against the number of connections (messages/s, server CPU per message,
//! memory per connection, p99 latency) for the cells where every
//! connection is active, and below them the idle-connection cells (N held,
//! K active) against K. Models are grouped by family, each family in its
//! own range of hues, so a model has the same colour in every chart.
//! Cells measured while other work ran are drawn hollow.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::HSLColor;

use crate::report::{family, Cell, Measured, Meta, Row};

/// The families in the order of the tutorials' story, each with the hues
/// (0 to 1) its models' colours are spread over.
const FAMILIES: [(&str, f64, f64); 5] = [
    ("blocking", 0.0, 0.0),
    ("processes and threads", 0.98, 0.12),
    ("readiness loops", 0.28, 0.68),
    ("completion", 0.78, 0.80),
    ("coroutines", 0.86, 0.92),
];

/// The models the lab knows, in the order colours are handed out within a
/// family; a model not listed comes after them.
const KNOWN: [&str; 18] = [
    "blocking",
    "fork",
    "thread",
    "pool",
    "busy",
    "select-level",
    "poll-level",
    "poll-edge",
    "epoll-level",
    "epoll-edge",
    "epoll-percore",
    "epoll-exclusive",
    "uring-level",
    "uring-edge",
    "uring-completion",
    "async-epoll",
    "async-poll",
    "async-uring",
];

/// A model's colour: its family's hue range, its place in the family.
fn color(model: &str) -> HSLColor {
    let fam = family(model);
    let (_, from, to) = FAMILIES
        .iter()
        .copied()
        .find(|f| f.0 == fam)
        .unwrap_or(FAMILIES[2]);
    if fam == "blocking" {
        return HSLColor(0.0, 0.0, 0.35);
    }
    let members: Vec<&str> = KNOWN.iter().copied().filter(|m| family(m) == fam).collect();
    let i = members
        .iter()
        .position(|m| *m == model)
        .unwrap_or(members.len());
    let span = (to - from).rem_euclid(1.0);
    let t = i as f64 / members.len().max(1) as f64;
    // Alternate the lightness so that neighbours in a family differ twice.
    let light = if i % 2 == 0 { 0.38 } else { 0.55 };
    HSLColor((from + span * t).rem_euclid(1.0), 0.75, light)
}

/// One line: a model's measured points, and whether each was busy.
struct Line {
    model: String,
    points: Vec<(f64, f64, bool)>,
}

fn lines(
    rows: &[Row],
    keep: impl Fn(&Row) -> bool,
    value: impl Fn(&Row, &Measured) -> f64,
) -> Vec<Line> {
    let mut all: Vec<Line> = Vec::new();
    for r in rows.iter().filter(|r| keep(r)) {
        let Cell::Measured(m) = &r.cell else { continue };
        let point = (r.connections as f64, value(r, m), r.load.busy);
        match all.iter_mut().find(|l| l.model == r.model) {
            Some(l) => l.points.push(point),
            None => all.push(Line {
                model: r.model.clone(),
                points: vec![point],
            }),
        }
    }
    all
}

pub fn chart(path: &Path, meta: &Meta, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1400, 1240)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, rest) = root.split_vertically(70);
    let (main, idle) = rest.split_vertically(800);
    header(&head, meta)?;
    let (panels, legend) = main.split_horizontally(1120);
    let quadrants = panels.split_evenly((2, 2));
    let all_active = |r: &Row| r.active == r.connections;
    let per_n = [
        (
            "echoed messages per second",
            "messages/s",
            lines(rows, all_active, |_, m| m.msgs_per_sec),
        ),
        (
            "server CPU time per message",
            "µs per message",
            lines(rows, all_active, |_, m| m.cpu_ns_per_msg / 1e3),
        ),
        (
            "peak memory per connection",
            "KiB per connection",
            lines(rows, all_active, |r, m| {
                m.peak_kib as f64 / r.connections.max(1) as f64
            }),
        ),
        (
            "p99 latency",
            "µs",
            lines(rows, all_active, |_, m| m.p99_ns as f64 / 1e3),
        ),
    ];
    for ((title, y, data), area) in per_n.iter().zip(&quadrants) {
        panel(area, title, "connections (N), all active", y, data)?;
    }
    draw_legend(&legend, rows)?;
    idle_panels(&idle, rows)?;
    root.present()?;
    Ok(())
}

/// The protocol's record, as the chart's first lines.
fn header(
    area: &DrawingArea<SVGBackend, Shift>,
    meta: &Meta,
) -> Result<(), Box<dyn std::error::Error>> {
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map_or("unknown", |(_, v)| v.as_str())
    };
    let first = format!(
        "Server models on {} ({} cores), Linux {}, commit {}",
        get("machine"),
        get("cores"),
        get("kernel"),
        get("commit")
    );
    let second = format!(
        "load average (1 min) over the sweep: {}; busy cells (hollow): {}; runs per cell: {}; {} per run",
        get("load_1min_range"),
        get("busy_cells"),
        get("runs"),
        get("duration"),
    );
    area.draw(&Text::new(first, (16, 12), ("sans-serif", 18)))?;
    area.draw(&Text::new(second, (16, 40), ("sans-serif", 15)))?;
    Ok(())
}

/// Every model with a measured cell, under its family's name.
fn draw_legend(
    area: &DrawingArea<SVGBackend, Shift>,
    rows: &[Row],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut models: Vec<&str> = Vec::new();
    for r in rows {
        if matches!(r.cell, Cell::Measured(_)) && !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    let mut y = 40;
    for (fam, _, _) in FAMILIES {
        let members: Vec<&str> = models
            .iter()
            .copied()
            .filter(|m| family(m) == fam)
            .collect();
        if members.is_empty() {
            continue;
        }
        area.draw(&Text::new(
            fam,
            (8, y - 8),
            ("sans-serif", 15).into_font().style(FontStyle::Bold),
        ))?;
        y += 22;
        for m in members {
            area.draw(&PathElement::new(
                vec![(12, y), (40, y)],
                color(m).stroke_width(3),
            ))?;
            area.draw(&Text::new(m, (48, y - 7), ("sans-serif", 14)))?;
            y += 22;
        }
        y += 10;
    }
    Ok(())
}

/// The idle-connection cells: N held, K active, against K; with each
/// model's all-active cell at the same N as its last point.
fn idle_panels(
    area: &DrawingArea<SVGBackend, Shift>,
    rows: &[Row],
) -> Result<(), Box<dyn std::error::Error>> {
    let (panels, note) = area.split_horizontally(1120);
    let held: Vec<usize> = rows
        .iter()
        .filter(|r| r.active < r.connections)
        .map(|r| r.connections)
        .collect();
    let Some(&n) = held.iter().max() else {
        note.draw(&Text::new(
            "no idle-connection cells in this sweep",
            (8, 40),
            ("sans-serif", 14),
        ))?;
        return Ok(());
    };
    let at_n = |r: &Row| r.connections == n;
    let by_k = |value: fn(&Measured) -> f64| -> Vec<Line> {
        let mut ls = lines(rows, at_n, |_, m| value(m));
        // x is K, not N.
        for l in &mut ls {
            l.points.clear();
        }
        for r in rows.iter().filter(|r| at_n(r)) {
            let Cell::Measured(m) = &r.cell else { continue };
            if let Some(l) = ls.iter_mut().find(|l| l.model == r.model) {
                l.points.push((r.active as f64, value(m), r.load.busy));
            }
        }
        for l in &mut ls {
            l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        ls
    };
    let halves = panels.split_evenly((1, 2));
    let x = format!("active connections (K) of {n} held");
    panel(
        &halves[0],
        &format!("messages per second, {n} connections held"),
        &x,
        "messages/s",
        &by_k(|m| m.msgs_per_sec),
    )?;
    panel(
        &halves[1],
        &format!("server CPU per message, {n} connections held"),
        &x,
        "µs per message",
        &by_k(|m| m.cpu_ns_per_msg / 1e3),
    )?;
    for (i, line) in [
        "Idle connections: N are opened and held,",
        "K of them exchange messages. A loop that",
        "scans every descriptor (poll, select) pays",
        "for the idle ones; epoll and io_uring do not.",
    ]
    .iter()
    .enumerate()
    {
        note.draw(&Text::new(
            *line,
            (8, 40 + 20 * i as i32),
            ("sans-serif", 13),
        ))?;
    }
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let max_x = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    // From a power of ten down, so the axis has labels below the lowest line.
    let (lo, hi) = if lo <= hi && lo > 0.0 {
        (10f64.powf(lo.log10().floor()), hi * 1.5)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.7..max_x * 1.5).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| short(*x))
        .y_label_formatter(&|y| short(*y))
        .y_labels(10)
        .light_line_style(WHITE)
        .draw()?;
    for l in lines {
        let c = color(&l.model);
        chart.draw_series(LineSeries::new(
            l.points.iter().map(|p| (p.0, p.1)),
            c.stroke_width(2),
        ))?;
        chart.draw_series(l.points.iter().map(|&(x, y, busy)| {
            // Hollow where other work ran during the cell.
            let style = if busy { c.stroke_width(1) } else { c.filled() };
            Circle::new((x, y), 4, style)
        }))?;
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
