//! The sweep's results: a table, CSV or JSON, each headed by the
//! protocol's record (machine, kernel, commit, load), and read back from
//! the CSV. The chart is `chart.rs`.

use std::fmt::Write as _;

use crate::common::human_nanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// What one (model, N, active) cell measured: the run with the median
/// messages/s, with the lowest and highest of all its runs beside it.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Messages echoed within the load time, per second.
    pub msgs_per_sec: f64,
    /// The lowest and highest messages/s over the cell's runs.
    pub msgs_min: f64,
    pub msgs_max: f64,
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
    /// `--strict`: not measured, or not kept, because other work ran.
    Refused(String),
}

/// What else ran on the machine around a cell (the worst of its runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CellLoad {
    /// The 1-minute load average just before and just after the cell.
    pub before: f64,
    pub after: f64,
    /// Cores kept busy by work other than the sweep's, before or during
    /// the cell, whichever is higher (see `protocol.rs`).
    pub other: f64,
    /// `other` reached `--max-load`.
    pub busy: bool,
}

pub struct Row {
    pub model: String,
    pub connections: usize,
    /// Connections exchanging messages; the others are held idle.
    pub active: usize,
    /// Where the server and the client ran: `server 0 client 1`, or
    /// `unpinned`.
    pub placement: String,
    /// Runs measured (the median is reported).
    pub runs: usize,
    pub cell: Cell,
    pub load: CellLoad,
}

/// The protocol's record: (key, value) pairs, in every output.
pub type Meta = Vec<(String, String)>;

/// The family a model belongs to, for the chart's grouping and colours.
pub fn family(model: &str) -> &'static str {
    match model {
        "blocking" => "blocking",
        "fork" | "thread" | "pool" => "processes and threads",
        m if m.starts_with("async-") => "coroutines",
        m if m.ends_with("-completion") => "completion",
        _ => "readiness loops",
    }
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
        Cell::Refused(why) => format!("refused: {why}"),
    }
}

pub fn write(out: &mut String, format: Format, meta: &Meta, rows: &[Row]) {
    match format {
        Format::Table => table(out, meta, rows),
        Format::Csv => csv(out, meta, rows),
        Format::Json => json(out, meta, rows),
    }
}

fn active_label(r: &Row) -> String {
    if r.active == r.connections {
        "all".to_owned()
    } else {
        r.active.to_string()
    }
}

fn load_label(l: &CellLoad) -> String {
    let mark = if l.busy { " **busy**" } else { "" };
    format!(
        "{:.2} → {:.2}, other {:.2}{mark}",
        l.before, l.after, l.other
    )
}

fn table(out: &mut String, meta: &Meta, rows: &[Row]) {
    for (k, v) in meta {
        let _ = writeln!(out, "- {k}: {v}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| model | N | active | placement | msg/s (median) | min–max | p50 | p99 | server CPU/msg \
         | client CPU/msg | peak RSS | per connection | threads | procs | load 1 min before → after, \
         other cores |"
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    );
    for r in rows {
        let head = format!(
            "| {} | {} | {} | {} |",
            r.model,
            r.connections,
            active_label(r),
            r.placement
        );
        let load = match r.cell {
            Cell::Cannot(_) => String::new(), // nothing ran
            _ => load_label(&r.load),
        };
        let _ = match &r.cell {
            Cell::Measured(m) => writeln!(
                out,
                "{head} {:.0} | {:.0}–{:.0} | {} | {} | {} | {} | {:.1} MiB | {:.1} KiB | {} | {} | {load} |",
                m.msgs_per_sec,
                m.msgs_min,
                m.msgs_max,
                human_nanos(m.p50_ns as f64),
                human_nanos(m.p99_ns as f64),
                human_nanos(m.cpu_ns_per_msg),
                human_nanos(m.client_cpu_ns_per_msg),
                m.peak_kib as f64 / 1024.0,
                m.peak_kib as f64 / r.connections.max(1) as f64,
                m.threads,
                m.processes
            ),
            other => writeln!(out, "{head} {} |||||||||| {load} |", brief(other)),
        };
    }
}

const CSV_HEADER: &str = "model,connections,active,placement,runs,status,msgs_per_sec,msgs_min,\
                          msgs_max,p50_ns,p99_ns,cpu_ns_per_msg,client_cpu_ns_per_msg,peak_kib,\
                          threads,processes,load_before,load_after,other_load,busy,reason";
const CSV_COLUMNS: usize = 21;

/// The metadata as `# key: value` lines, then the header, then a line per
/// cell.
fn csv(out: &mut String, meta: &Meta, rows: &[Row]) {
    for (k, v) in meta {
        let _ = writeln!(out, "# {k}: {v}");
    }
    let _ = writeln!(out, "{CSV_HEADER}");
    for r in rows {
        let head = format!(
            "{},{},{},{},{}",
            r.model, r.connections, r.active, r.placement, r.runs
        );
        let l = &r.load;
        let tail = format!(
            "{:.2},{:.2},{:.2},{}",
            l.before,
            l.after,
            l.other,
            if l.busy { "busy" } else { "quiet" }
        );
        let quote = |why: &str| format!("\"{}\"", why.replace('"', "\"\""));
        let _ = match &r.cell {
            Cell::Measured(m) => writeln!(
                out,
                "{head},ok,{:.1},{:.1},{:.1},{},{},{:.0},{:.0},{},{},{},{tail},",
                m.msgs_per_sec,
                m.msgs_min,
                m.msgs_max,
                m.p50_ns,
                m.p99_ns,
                m.cpu_ns_per_msg,
                m.client_cpu_ns_per_msg,
                m.peak_kib,
                m.threads,
                m.processes
            ),
            Cell::Cannot(why) => writeln!(out, "{head},cannot,,,,,,,,,,,{tail},{}", quote(why)),
            Cell::Failed(why) => writeln!(out, "{head},failed,,,,,,,,,,,{tail},{}", quote(why)),
            Cell::Refused(why) => writeln!(out, "{head},refused,,,,,,,,,,,{tail},{}", quote(why)),
        };
    }
}

/// The metadata and rows back from [`csv`]'s output, to draw or print a
/// sweep again without running it.
pub fn parse_csv(text: &str) -> Result<(Meta, Vec<Row>), String> {
    let mut meta = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next_if(|l| l.starts_with('#')) {
        if let Some((k, v)) = line.trim_start_matches('#').trim().split_once(": ") {
            meta.push((k.to_owned(), v.to_owned()));
        }
    }
    if lines.next() != Some(CSV_HEADER) {
        return Err("not the CSV of a models sweep (the header differs)".to_owned());
    }
    let rows = lines.map(parse_csv_row).collect::<Result<_, _>>()?;
    Ok((meta, rows))
}

fn parse_csv_row(line: &str) -> Result<Row, String> {
    let bad = || format!("bad CSV row {line:?}");
    let cols: Vec<&str> = line.splitn(CSV_COLUMNS, ',').collect();
    if cols.len() != CSV_COLUMNS {
        return Err(bad());
    }
    let num = |i: usize| cols[i].parse::<f64>().map_err(|_| bad());
    let count = |i: usize| cols[i].parse::<usize>().map_err(|_| bad());
    let reason = cols[20].trim_matches('"').replace("\"\"", "\"");
    let cell = match cols[5] {
        "ok" => Cell::Measured(Measured {
            msgs_per_sec: num(6)?,
            msgs_min: num(7)?,
            msgs_max: num(8)?,
            p50_ns: num(9)? as u64,
            p99_ns: num(10)? as u64,
            cpu_ns_per_msg: num(11)?,
            client_cpu_ns_per_msg: num(12)?,
            peak_kib: num(13)? as u64,
            threads: num(14)? as u64,
            processes: num(15)? as u64,
        }),
        "cannot" => Cell::Cannot(reason),
        "failed" => Cell::Failed(reason),
        "refused" => Cell::Refused(reason),
        _ => return Err(bad()),
    };
    Ok(Row {
        model: cols[0].to_owned(),
        connections: count(1)?,
        active: count(2)?,
        placement: cols[3].to_owned(),
        runs: count(4)?,
        cell,
        load: CellLoad {
            before: num(16)?,
            after: num(17)?,
            other: num(18)?,
            busy: match cols[19] {
                "busy" => true,
                "quiet" => false,
                _ => return Err(bad()),
            },
        },
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

/// `{"meta": {...}, "rows": [...]}`, a row per line.
fn json(out: &mut String, meta: &Meta, rows: &[Row]) {
    out.push_str("{\"meta\":{");
    for (i, (k, v)) in meta.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}{}:{}", json_string(k), json_string(v));
    }
    out.push_str("},\n\"rows\":[\n");
    for (i, r) in rows.iter().enumerate() {
        let l = &r.load;
        let head = format!(
            "{{\"model\":{},\"family\":{},\"connections\":{},\"active\":{},\"placement\":{},\
             \"runs\":{},\"load_before\":{:.2},\"load_after\":{:.2},\"other_load\":{:.2},\
             \"busy\":{}",
            json_string(&r.model),
            json_string(family(&r.model)),
            r.connections,
            r.active,
            json_string(&r.placement),
            r.runs,
            l.before,
            l.after,
            l.other,
            l.busy
        );
        let _ = match &r.cell {
            Cell::Measured(m) => write!(
                out,
                "  {head},\"status\":\"ok\",\"msgs_per_sec\":{:.1},\"msgs_min\":{:.1},\
                 \"msgs_max\":{:.1},\"p50_ns\":{},\"p99_ns\":{},\"cpu_ns_per_msg\":{:.0},\
                 \"client_cpu_ns_per_msg\":{:.0},\"peak_kib\":{},\"threads\":{},\"processes\":{}}}",
                m.msgs_per_sec,
                m.msgs_min,
                m.msgs_max,
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
            Cell::Refused(why) => write!(
                out,
                "  {head},\"status\":\"refused\",\"reason\":{}}}",
                json_string(why)
            ),
        };
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("]}\n");
}
