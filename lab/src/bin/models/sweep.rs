//! The driver: each model as a child server, loaded by the `client`
//! example at each N, measured from `/proc`, under a protocol (see
//! `protocol.rs`): the other load checked around every cell, one-thread
//! servers and the client pinned to cores of their own, runs alternated
//! between models, and the machine, kernel, load and commit recorded.
//!
//! Every wait has a deadline: a server that prints no address, a client
//! that does not finish, children that do not go away are killed and the
//! cell says so.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tripoll_lab::affinity;

use crate::protocol::{self, CpuClock, LoadAverage, Machine};
use crate::report::{self, Cell, CellLoad, Format, Measured, Meta, Row};
use crate::{chart, Model};

pub struct Config {
    pub models: Vec<Model>,
    /// The (N, K active) of every cell, for each model.
    pub loads: Vec<Load>,
    pub duration: Duration,
    pub size: u64,
    /// Runs per cell, alternated: run 1 of every cell, then run 2, ...
    pub runs: usize,
    pub quick: bool,
    pub format: Format,
    pub svg: Option<PathBuf>,
    /// Print and draw the results of an earlier `--csv` run instead.
    pub from_csv: Option<PathBuf>,
    /// A cell is busy when other work keeps this many cores busy.
    pub max_load: f64,
    /// Refuse to start, and refuse cells, on a busy machine.
    pub strict: bool,
    /// Pin one-thread servers and their client to a core each.
    pub pin: bool,
    /// Print the cells in the order they would run, and stop.
    pub plan_only: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            models: Model::all(),
            loads: Vec::new(),
            duration: Duration::from_secs(3),
            size: 64,
            runs: 1,
            quick: false,
            format: Format::Table,
            svg: None,
            from_csv: None,
            max_load: 1.0,
            strict: false,
            pin: true,
            plan_only: false,
        }
    }
}

impl Config {
    /// How long the machine is watched, idle, before each cell.
    fn window(&self) -> Duration {
        if self.quick {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(300)
        }
    }
}

/// N connections held, `active` of them exchanging messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub n: usize,
    pub active: usize,
}

/// How long the client may take beyond the load time (connecting N
/// sockets, the last echoes) before it gives up on its own; the driver
/// kills it a little later still.
const CLIENT_GRACE: Duration = Duration::from_secs(20);
/// How long a server may take to print its address.
const SERVER_START: Duration = Duration::from_secs(10);
/// How long the machine is watched before the sweep starts.
const START_WINDOW: Duration = Duration::from_secs(1);
/// `--strict`: how long a cell waits for other work to end.
const STRICT_WAIT: Duration = Duration::from_secs(30);

/// Where a cell's server and client run: a CPU each, or wherever the
/// scheduler puts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    server: Option<usize>,
    client: Option<usize>,
}

impl Placement {
    fn of(model: Model, cfg: &Config, cpus: &[usize]) -> Placement {
        match cpus {
            [server, client, ..] if cfg.pin && !model.multi_core() => Placement {
                server: Some(*server),
                client: Some(*client),
            },
            _ => Placement {
                server: None,
                client: None,
            },
        }
    }

    fn label(self) -> String {
        match (self.server, self.client) {
            (Some(s), Some(c)) => format!("server {s} client {c}"),
            _ => "unpinned".to_owned(),
        }
    }
}

/// One cell of the plan: run `run` (from 1) of model `model` at load
/// `load` (indexes into the config's lists).
struct Planned {
    run: usize,
    model: usize,
    load: usize,
}

/// Every cell in the order it runs: run 1 of every model at every load,
/// then run 2, and so on, so that a change of conditions during the sweep
/// touches every model alike instead of all the runs of one.
fn plan(cfg: &Config) -> Vec<Planned> {
    let mut all = Vec::new();
    for run in 1..=cfg.runs.max(1) {
        for model in 0..cfg.models.len() {
            for load in 0..cfg.loads.len() {
                all.push(Planned { run, model, load });
            }
        }
    }
    all
}

/// A rough time for one cell, for the estimate printed before the sweep
/// and the time left: the watch before it, the load time, starting and
/// stopping, and connecting N (slower where each connection starts a
/// thread or a process).
fn estimate(model: Model, load: Load, cfg: &Config) -> Duration {
    let per_connection = match model {
        Model::Fork | Model::Thread => Duration::from_micros(400),
        _ => Duration::from_micros(60),
    };
    cfg.window() + cfg.duration + Duration::from_millis(300) + per_connection * load.n as u32
}

/// `4m05s`, `12s`.
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Runs every cell (or reads them back with `--from-csv`), prints the
/// results and draws the chart.
pub fn run(cfg: &Config) -> Result<(), String> {
    for (backend, why) in Model::unavailable() {
        eprintln!("{}: no {backend} models in this sweep: {why}", crate::PROG);
    }
    if let Some(why) = crate::completion_unavailable() {
        eprintln!(
            "{}: no uring-completion model in this sweep: {why}",
            crate::PROG
        );
    }
    let (meta, rows) = match &cfg.from_csv {
        Some(path) => fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| report::parse_csv(&text))
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            let cpus = affinity::allowed_cpus().map_err(|e| format!("sched_getaffinity: {e}"))?;
            if cfg.plan_only {
                print_plan(cfg, &cpus)?;
                return Ok(());
            }
            sweep(cfg, &cpus)?
        }
    };
    let mut out = String::new();
    report::write(&mut out, cfg.format, &meta, &rows);
    print!("{out}");
    if let Some(path) = &cfg.svg {
        chart::chart(path, &meta, &rows).map_err(|e| format!("chart {}: {e}", path.display()))?;
        eprintln!("{}: chart written to {}", crate::PROG, path.display());
    }
    Ok(())
}

/// The limits a cell is checked against, read now.
fn limits_now(fds: u64) -> Limits {
    Limits {
        fds,
        nproc: process_limit(),
        free_tasks: free_tasks(),
    }
}

/// `--plan`: a line per cell in the order the sweep would run them (run,
/// model, N, active, placement, what would happen), then the estimate.
fn print_plan(cfg: &Config, cpus: &[usize]) -> Result<(), String> {
    let fds = crate::common::raise_fd_limit(1 << 20).map_err(|e| format!("fd limit: {e}"))?;
    let limits = limits_now(fds);
    let mut total = Duration::ZERO;
    let mut measured = 0;
    println!("# run\tmodel\tN\tactive\tplacement\tcell");
    for p in plan(cfg) {
        let (model, load) = (cfg.models[p.model], cfg.loads[p.load]);
        let what = match model.cannot(load.n, &limits) {
            Some(why) => format!("cannot: {why}"),
            None => {
                measured += 1;
                total += estimate(model, load, cfg);
                "measure".to_owned()
            }
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{what}",
            p.run,
            model.name(),
            load.n,
            load.active,
            Placement::of(model, cfg, cpus).label()
        );
    }
    println!("# {measured} cells to measure, about {}", minutes(total));
    Ok(())
}

/// What one run of one cell gave.
struct Outcome {
    cell: Cell,
    load: CellLoad,
}

fn sweep(cfg: &Config, cpus: &[usize]) -> Result<(Meta, Vec<Row>), String> {
    let client = std::env::current_exe()
        .map_err(|e| format!("current_exe: {e}"))?
        .with_file_name("client");
    if !client.exists() {
        return Err(format!(
            "the client is missing at {}; build it next to this one: \
             cargo build --release -p tripoll-lab --bin client",
            client.display()
        ));
    }
    let start_load = LoadAverage::now();
    let other = protocol::other_load_over(if cfg.quick {
        cfg.window()
    } else {
        START_WINDOW
    });
    if other >= cfg.max_load {
        let msg = format!(
            "the machine is busy: other work keeps {other:.2} cores busy (load average \
             {start_load}), at or above --max-load {:.2}",
            cfg.max_load
        );
        if cfg.strict {
            eprintln!(
                "{}: error: {msg}; --strict measures on a quiet machine only",
                crate::PROG
            );
            std::process::exit(crate::common::USAGE_ERROR);
        }
        eprintln!(
            "{}: warning: {msg}; its cells will be marked busy",
            crate::PROG
        );
    }
    if cfg.pin && cpus.len() < 2 {
        eprintln!("{}: one CPU only: nothing is pinned", crate::PROG);
    }
    let machine = Machine::here();
    // Raised here, inherited by the servers and the client.
    let fds = crate::common::raise_fd_limit(1 << 20).map_err(|e| format!("fd limit: {e}"))?;
    let plan = plan(cfg);
    let planned_limits = limits_now(fds);
    let estimates: Vec<Duration> = plan
        .iter()
        .map(|p| {
            let (model, load) = (cfg.models[p.model], cfg.loads[p.load]);
            match model.cannot(load.n, &planned_limits) {
                Some(_) => Duration::ZERO,
                None => estimate(model, load, cfg),
            }
        })
        .collect();
    let estimated: Duration = estimates.iter().sum();
    eprintln!(
        "{}: {} cells, about {} by estimate",
        crate::PROG,
        plan.len(),
        minutes(estimated)
    );
    let started = Instant::now();
    let mut outcomes: Vec<Vec<Outcome>> = (0..cfg.models.len() * cfg.loads.len())
        .map(|_| Vec::new())
        .collect();
    let mut one_minute = vec![start_load.one];
    for (i, p) in plan.iter().enumerate() {
        let (model, load) = (cfg.models[p.model], cfg.loads[p.load]);
        let place = Placement::of(model, cfg, cpus);
        let runs = if cfg.runs > 1 {
            format!(", run {} of {}", p.run, cfg.runs)
        } else {
            String::new()
        };
        let what = format!(
            "cell {} of {}: {} with {} connections ({} active){runs}",
            i + 1,
            plan.len(),
            model.name(),
            load.n,
            load.active
        );
        let outcome = match model.cannot(load.n, &limits_now(fds)) {
            Some(why) => {
                let now = LoadAverage::now().one;
                Outcome {
                    cell: Cell::Cannot(why),
                    load: CellLoad {
                        before: now,
                        after: now,
                        ..CellLoad::default()
                    },
                }
            }
            None => {
                eprint!("{}: {what} ... ", crate::PROG);
                let o = measure_cell(&client, model, load, place, cfg);
                one_minute.extend([o.load.before, o.load.after]);
                let busy = if o.load.busy { " [busy]" } else { "" };
                let elapsed = started.elapsed();
                let done: Duration = estimates[..=i].iter().sum();
                let rest: Duration = estimates[i + 1..].iter().sum();
                let pace = elapsed.as_secs_f64() / done.as_secs_f64().max(1e-3);
                eprintln!(
                    "{}{busy} (elapsed {}, about {} left)",
                    report::brief(&o.cell),
                    minutes(elapsed),
                    minutes(rest.mul_f64(pace.clamp(0.1, 10.0)))
                );
                o
            }
        };
        outcomes[p.model * cfg.loads.len() + p.load].push(outcome);
    }
    let rows: Vec<Row> = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, runs)| {
            let (model, load) = (
                cfg.models[i / cfg.loads.len()],
                cfg.loads[i % cfg.loads.len()],
            );
            aggregate(model, load, Placement::of(model, cfg, cpus), runs)
        })
        .collect();
    let end_load = LoadAverage::now();
    one_minute.push(end_load.one);
    let (lo, hi) = one_minute
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &l| (lo.min(l), hi.max(l)));
    let busy = rows.iter().filter(|r| r.load.busy).count();
    let measured = rows
        .iter()
        .filter(|r| !matches!(r.cell, Cell::Cannot(_)))
        .count();
    let other_max = rows.iter().map(|r| r.load.other).fold(other, f64::max);
    let pin = match cpus {
        [s, c, ..] if cfg.pin => format!(
            "one-thread servers on CPU {s}, their client on CPU {c}; multi-core servers \
             (fork, thread, pool, epoll-percore, epoll-exclusive) and their client unpinned"
        ),
        _ => "nothing pinned".to_owned(),
    };
    let meta: Meta = [
        ("machine", machine.cpu),
        ("cores", machine.cores.to_string()),
        ("kernel", machine.kernel),
        ("commit", machine.commit),
        ("load_start", start_load.to_string()),
        ("load_end", end_load.to_string()),
        ("load_1min_range", format!("{lo:.2}–{hi:.2}")),
        ("other_load_max", format!("{other_max:.2} cores")),
        ("max_load", format!("{:.2} cores", cfg.max_load)),
        ("busy_cells", format!("{busy} of {measured}")),
        (
            "runs",
            format!("{} (alternated; the median run is shown)", cfg.runs),
        ),
        ("duration", format!("{} ms", cfg.duration.as_millis())),
        ("message_size", format!("{} bytes", cfg.size)),
        ("pinning", pin),
        ("elapsed", minutes(started.elapsed())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok((meta, rows))
}

/// One run of one cell under the protocol: watch the machine, then
/// measure, and mark (or with `--strict`, refuse) a cell other work
/// disturbed.
fn measure_cell(
    client: &PathBuf,
    model: Model,
    load: Load,
    place: Placement,
    cfg: &Config,
) -> Outcome {
    let before = LoadAverage::now().one;
    let mut other = protocol::other_load_over(cfg.window());
    if cfg.strict && other >= cfg.max_load {
        let until = Instant::now() + STRICT_WAIT;
        while other >= cfg.max_load && Instant::now() < until {
            other = protocol::other_load_over(Duration::from_secs(1));
        }
    }
    let mut cell_load = CellLoad {
        before,
        after: before,
        other,
        busy: other >= cfg.max_load,
    };
    if cfg.strict && cell_load.busy {
        return Outcome {
            cell: Cell::Refused(format!(
                "other work kept {other:.2} cores busy before the cell (--max-load {:.2})",
                cfg.max_load
            )),
            load: cell_load,
        };
    }
    let result = measure(client, model, load, place, cfg);
    cell_load.after = LoadAverage::now().one;
    let cell = match result {
        Ok((m, during)) => {
            cell_load.other = cell_load.other.max(during);
            cell_load.busy = cell_load.other >= cfg.max_load;
            if cfg.strict && cell_load.busy {
                Cell::Refused(format!(
                    "other work kept {during:.2} cores busy during the cell (--max-load {:.2})",
                    cfg.max_load
                ))
            } else {
                Cell::Measured(m)
            }
        }
        Err(why) => Cell::Failed(why),
    };
    Outcome {
        cell,
        load: cell_load,
    }
}

/// A cell's runs as one row: the run with the median messages/s (one
/// run's figures together, not a mix of runs) with the lowest and highest
/// beside it, and the worst load any run saw. A failed run fails the cell.
fn aggregate(model: Model, load: Load, place: Placement, runs: Vec<Outcome>) -> Row {
    let worst = runs.iter().fold(CellLoad::default(), |w, o| CellLoad {
        before: w.before.max(o.load.before),
        after: w.after.max(o.load.after),
        other: w.other.max(o.load.other),
        busy: w.busy || o.load.busy,
    });
    let mut measured = Vec::new();
    let mut first_other = None;
    for o in runs {
        match o.cell {
            Cell::Measured(m) => measured.push(m),
            Cell::Failed(why) => {
                first_other = Some(Cell::Failed(why));
                break;
            }
            other => {
                first_other.get_or_insert(other);
            }
        }
    }
    let n = measured.len();
    let cell = match first_other {
        Some(failed @ Cell::Failed(_)) => failed,
        Some(other) if measured.is_empty() => other,
        _ if measured.is_empty() => Cell::Cannot("no run".to_owned()),
        _ => {
            measured.sort_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec));
            let (lo, hi) = (measured[0].msgs_per_sec, measured[n - 1].msgs_per_sec);
            let mut median = measured.swap_remove(n / 2);
            median.msgs_min = lo;
            median.msgs_max = hi;
            Cell::Measured(median)
        }
    };
    Row {
        model: model.name(),
        connections: load.n,
        active: load.active,
        placement: place.label(),
        runs: n,
        cell,
        load: worst,
    }
}

/// One cell: start the server, load it, read what it used, stop it.
/// Returns the figures and the cores other work kept busy meanwhile.
fn measure(
    client: &PathBuf,
    model: Model,
    load: Load,
    place: Placement,
    cfg: &Config,
) -> Result<(Measured, f64), String> {
    let clock = CpuClock::now();
    let own_before = self_cpu();
    let mut server = Server::start(model, place.server)?;
    let pid = server.child.id();
    let sampler = Sampler::start(pid);
    let load = run_client(client, server.port, load, place.client, cfg);
    let peak = sampler.stop();
    // A forked child's CPU time reaches the parent when it is reaped; give
    // the last ones time to see the client's end of file and exit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children(pid).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let cpu = cpu_seconds(pid) + children(pid).iter().map(|&c| cpu_seconds(c)).sum::<f64>();
    let hwm = status_kib(pid, "VmHWM:");
    let server_err = server.stop();
    // What the machine spent less what the server, the client and this
    // driver spent: the other work.
    let own = cpu + load.as_ref().map_or(0.0, |l| l.cpu_seconds) + self_cpu() - own_before;
    let other = CpuClock::now().other_load_since(&clock, own);
    let load = load.map_err(|e| match server_err.lines().next() {
        Some(line) => format!("{e}; server: {line}"),
        None => e,
    })?;
    let measured = Measured {
        msgs_per_sec: load.msgs_per_sec,
        msgs_min: load.msgs_per_sec,
        msgs_max: load.msgs_per_sec,
        p50_ns: load.p50_ns,
        p99_ns: load.p99_ns,
        cpu_ns_per_msg: cpu * 1e9 / load.echoed.max(1) as f64,
        client_cpu_ns_per_msg: load.cpu_seconds * 1e9 / load.echoed.max(1) as f64,
        peak_kib: hwm + peak.children_kib,
        threads: peak.threads,
        processes: peak.processes,
    };
    Ok((measured, other))
}

/// A model running as `models --serve MODEL --port 0`.
struct Server {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(model: Model, cpu: Option<usize>) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = Command::new(exe);
        if let Some(cpu) = cpu {
            cmd.args(["--cpu", &cpu.to_string()]);
        }
        // Each model names its backend; TRIPOLL_BACKEND would only confuse it.
        let mut child = cmd
            .args(["--serve", &model.name(), "--port", "0"])
            .env_remove(tripoll::Backend::ENV_VAR)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start the server: {e}"))?;
        let stderr = collect(child.stderr.take());
        let stdout = child.stdout.take();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            if let Some(out) = stdout {
                let _ = BufReader::new(out).read_line(&mut line);
            }
            let _ = tx.send(line);
        });
        let mut server = Server {
            child,
            port: 0,
            stderr,
        };
        let line = rx.recv_timeout(SERVER_START).unwrap_or_default();
        server.port = match parse_port(&line) {
            Some(p) => p,
            None => {
                let err = server.stop();
                return Err(format!("the server printed no address: {err}"));
            }
        };
        Ok(server)
    }

    /// Kills the server; returns what it wrote on stderr.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        text_of(&self.stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The port in `models: listening on 127.0.0.1:PORT (MODEL)`.
fn parse_port(line: &str) -> Option<u16> {
    let addr = line.split_whitespace().nth(3)?;
    addr.rsplit(':').next()?.parse().ok()
}

/// Reads a pipe to its end in a thread, keeping the first 4 KiB, and
/// sends that when the pipe closes.
fn collect(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(pipe) = pipe {
            let mut pipe = pipe;
            let _ = pipe.by_ref().take(4096).read_to_end(&mut kept);
            // Drain the rest so the writer never blocks on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).trim().to_owned());
    });
    rx
}

/// What [`collect`] read, once the writer has exited. A pipe still held
/// open (by a forked child that has not exited) is not waited for long.
fn text_of(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(2))
        .unwrap_or_else(|_| "(its stderr is still open)".to_owned())
}

/// What the client measured.
struct ClientLoad {
    msgs_per_sec: f64,
    echoed: u64,
    p50_ns: u64,
    p99_ns: u64,
    /// The client's own CPU time (user + system).
    cpu_seconds: f64,
}

/// Runs the client as a load generator against `port`, bounded in time.
fn run_client(
    client: &PathBuf,
    port: u16,
    load: Load,
    cpu: Option<usize>,
    cfg: &Config,
) -> Result<ClientLoad, String> {
    let duration_ms = cfg.duration.as_millis().max(1);
    let mut cmd = Command::new(client);
    if let Some(cpu) = cpu {
        cmd.args(["--cpu", &cpu.to_string()]);
    }
    // The same load for every model: the client on its default backend
    // (epoll), whatever TRIPOLL_BACKEND says.
    let mut child = cmd
        .args(["--port", &port.to_string()])
        .args(["--connections", &load.n.to_string()])
        .args(["--active", &load.active.to_string()])
        .env_remove(tripoll::Backend::ENV_VAR)
        .args(["--size", &cfg.size.to_string()])
        .args(["--duration", &format!("{duration_ms}ms")])
        .args(["--timeout", &format!("{}s", CLIENT_GRACE.as_secs())])
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start the client: {e}"))?;
    // The client's CPU time is what the reaped children's total grows by
    // while it runs: the server of this cell is reaped only after.
    let cpu_before = reaped_children_cpu();
    let stdout = collect_all(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let deadline = Instant::now() + cfg.duration + CLIENT_GRACE + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the client did not finish in time and was killed".to_owned());
            }
        }
    };
    let cpu_seconds = reaped_children_cpu() - cpu_before;
    let out = stdout.join().unwrap_or_default();
    let err = text_of(&stderr);
    let json = out.lines().rev().find(|l| l.starts_with('{'));
    let (true, Some(json)) = (status.success(), json) else {
        let first = err.lines().next().unwrap_or("no message");
        return Err(format!("client failed ({status}): {first}"));
    };
    let num = |key: &str| json_number(json, key).ok_or_else(|| format!("no {key} in {json}"));
    Ok(ClientLoad {
        msgs_per_sec: num("msgs_per_sec")?,
        echoed: num("echoed")? as u64,
        p50_ns: num("p50_ns")? as u64,
        p99_ns: num("p99_ns")? as u64,
        cpu_seconds,
    })
}

/// Reads a pipe to its end in a thread (the client's progress lines are
/// few: one per second).
fn collect_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut s);
        }
        s
    })
}

/// The number after `"key":` in the client's flat JSON summary.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// The largest tree the server grew while it was loaded.
#[derive(Default, Clone, Copy)]
struct Peak {
    threads: u64,
    processes: u64,
    /// Memory of the child processes (proportional set size, so pages they
    /// share with the parent are not counted thousands of times).
    children_kib: u64,
}

/// Watches the server's threads and child processes from a thread of the
/// driver.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Peak>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut peak = Peak::default();
            // Reading every child's memory is costly with thousands of
            // them, and the driver shares two cores with the benchmark: do
            // it only when there are more children than at the last
            // reading, at most twice a second.
            let mut measured_kids = 0;
            let mut measured_at: Option<Instant> = None;
            while !flag.load(Ordering::Relaxed) {
                let kids = children(pid);
                peak.threads = peak.threads.max(status_kib(pid, "Threads:"));
                peak.processes = peak.processes.max(1 + kids.len() as u64);
                let due = measured_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
                if kids.len() > measured_kids && due {
                    let kib = kids.iter().map(|&c| pss_kib(c)).sum::<u64>();
                    peak.children_kib = peak.children_kib.max(kib);
                    measured_kids = kids.len();
                    measured_at = Some(Instant::now());
                }
                thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        Sampler { stop, handle }
    }

    fn stop(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The child processes of `pid`.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A number field of `/proc/PID/status` (`VmHWM:` in KiB, `Threads:`).
fn status_kib(pid: u32, key: &str) -> u64 {
    proc_field(&format!("/proc/{pid}/status"), key)
}

/// The proportional set size of `pid`, in KiB.
fn pss_kib(pid: u32) -> u64 {
    proc_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

fn proc_field(path: &str, key: &str) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of `pid` and of its reaped children.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields count from after its ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14 to 17; `rest` starts at 3.
    let ticks: u64 = (11..15)
        .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / clock_ticks()
}

pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf takes a constant and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// What bounds the number of connections a model can take on this machine.
pub struct Limits {
    /// The descriptor limit the servers and the client get.
    pub fds: u64,
    /// The soft process limit (RLIMIT_NPROC), which counts threads too.
    pub nproc: u64,
    /// Processes and threads the whole system can still start: `pid_max`
    /// and `threads-max` less those running now (other users' too).
    pub free_tasks: u64,
}

fn free_tasks() -> u64 {
    let read = |path: &str| -> Option<u64> { fs::read_to_string(path).ok()?.trim().parse().ok() };
    let max = match (
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(u64::MAX),
    };
    // The fourth field of /proc/loadavg is runnable/total tasks.
    let now = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok())
        .unwrap_or(0);
    max.saturating_sub(now)
}

/// The soft process limit (RLIMIT_NPROC), which counts threads too.
// `rlim_t` is `u64` here but `u32` on 32-bit targets, where the cast matters.
#[allow(clippy::unnecessary_cast)]
fn process_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is valid, writable storage for the kernel to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut lim) } != 0 {
        return u64::MAX;
    }
    lim.rlim_cur as u64
}

/// User plus system CPU time of this process's children that have been
/// waited for.
fn reaped_children_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_CHILDREN)
}

/// User plus system CPU time of this process (the driver) so far.
fn self_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_SELF)
}

fn rusage_cpu(who: libc::c_int) -> f64 {
    // SAFETY: all-zero is a valid rusage, which getrusage fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid, writable storage for the kernel.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(msgs: f64) -> Outcome {
        Outcome {
            cell: Cell::Measured(Measured {
                msgs_per_sec: msgs,
                msgs_min: msgs,
                msgs_max: msgs,
                p50_ns: msgs as u64,
                p99_ns: 0,
                cpu_ns_per_msg: 0.0,
                client_cpu_ns_per_msg: 0.0,
                peak_kib: 0,
                threads: 1,
                processes: 1,
            }),
            load: CellLoad::default(),
        }
    }

    const LOAD: Load = Load { n: 10, active: 10 };
    const PINNED: Placement = Placement {
        server: Some(0),
        client: Some(1),
    };

    #[test]
    fn runs_alternate_between_models_and_loads() {
        let cfg = Config {
            models: vec![Model::Thread, Model::Busy],
            loads: vec![LOAD, Load { n: 20, active: 2 }],
            runs: 2,
            ..Config::default()
        };
        let order: Vec<(usize, usize, usize)> = plan(&cfg)
            .iter()
            .map(|p| (p.run, p.model, p.load))
            .collect();
        assert_eq!(
            order,
            [
                (1, 0, 0),
                (1, 0, 1),
                (1, 1, 0),
                (1, 1, 1),
                (2, 0, 0),
                (2, 0, 1),
                (2, 1, 0),
                (2, 1, 1)
            ]
        );
    }

    #[test]
    fn a_cell_reports_its_median_run_whole_with_the_spread() {
        let row = aggregate(
            Model::Busy,
            LOAD,
            PINNED,
            vec![measured(30.0), measured(10.0), measured(20.0)],
        );
        let Cell::Measured(m) = row.cell else {
            panic!("{:?}", row.cell)
        };
        assert_eq!((m.msgs_per_sec, m.msgs_min, m.msgs_max), (20.0, 10.0, 30.0));
        assert_eq!(m.p50_ns, 20, "the median run's own figures");
        assert_eq!(row.runs, 3);
        assert_eq!(row.placement, "server 0 client 1");
    }

    #[test]
    fn a_failed_run_fails_the_cell_and_a_busy_run_marks_it() {
        let failed = Outcome {
            cell: Cell::Failed("it broke".into()),
            load: CellLoad::default(),
        };
        let row = aggregate(Model::Busy, LOAD, PINNED, vec![measured(1.0), failed]);
        assert!(matches!(row.cell, Cell::Failed(ref why) if why == "it broke"));

        let mut busy = measured(2.0);
        busy.load = CellLoad {
            before: 3.0,
            after: 4.0,
            other: 1.5,
            busy: true,
        };
        let row = aggregate(Model::Busy, LOAD, PINNED, vec![measured(1.0), busy]);
        assert!(row.load.busy);
        assert_eq!(
            (row.load.before, row.load.after, row.load.other),
            (3.0, 4.0, 1.5)
        );
    }

    #[test]
    fn multi_core_models_are_never_pinned() {
        let cfg = Config::default();
        let cpus = [0, 1];
        assert_eq!(Placement::of(Model::Busy, &cfg, &cpus), PINNED);
        for m in [
            Model::Fork,
            Model::Thread,
            Model::Pool,
            Model::PerCore,
            Model::Exclusive,
        ] {
            assert_eq!(Placement::of(m, &cfg, &cpus).label(), "unpinned");
        }
        assert_eq!(Placement::of(Model::Busy, &cfg, &[3]).label(), "unpinned");
        let off = Config {
            pin: false,
            ..Config::default()
        };
        assert_eq!(Placement::of(Model::Busy, &off, &cpus).label(), "unpinned");
    }
}
