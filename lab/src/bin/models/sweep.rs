//! The driver: each model as a child server, loaded by the `client`
//! example at each N, measured from `/proc`.
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

use crate::report::{self, Cell, Format, Measured, Row};
use crate::Model;

pub struct Config {
    pub models: Vec<Model>,
    pub connections: Vec<usize>,
    pub duration: Duration,
    pub size: u64,
    /// Runs per cell; the run with the median messages/s is reported.
    pub runs: usize,
    pub quick: bool,
    pub format: Format,
    pub svg: Option<PathBuf>,
    /// Print and draw the results of an earlier `--csv` run instead.
    pub from_csv: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            models: Model::all(),
            connections: Vec::new(),
            duration: Duration::from_secs(3),
            size: 64,
            runs: 1,
            quick: false,
            format: Format::Table,
            svg: None,
            from_csv: None,
        }
    }
}

/// How long the client may take beyond the load time (connecting N
/// sockets, the last echoes) before it gives up on its own; the driver
/// kills it a little later still.
const CLIENT_GRACE: Duration = Duration::from_secs(20);
/// How long a server may take to print its address.
const SERVER_START: Duration = Duration::from_secs(10);

/// Runs every (model, N) cell (or reads them back with `--from-csv`),
/// prints the results and draws the chart.
pub fn run(cfg: &Config) -> Result<(), String> {
    for (backend, why) in Model::unavailable() {
        eprintln!("{}: no {backend} models in this sweep: {why}", crate::PROG);
    }
    let rows = match &cfg.from_csv {
        Some(path) => fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| report::parse_csv(&text))
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => sweep(cfg)?,
    };
    let mut out = String::new();
    report::write(&mut out, cfg.format, &rows);
    print!("{out}");
    if let Some(path) = &cfg.svg {
        report::chart(path, &rows).map_err(|e| format!("chart {}: {e}", path.display()))?;
        eprintln!("{}: chart written to {}", crate::PROG, path.display());
    }
    Ok(())
}

fn sweep(cfg: &Config) -> Result<Vec<Row>, String> {
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
    // Raised here, inherited by the servers and the client.
    let fds = crate::common::raise_fd_limit(1 << 20).map_err(|e| format!("fd limit: {e}"))?;
    let mut rows = Vec::new();
    for &model in &cfg.models {
        for &n in &cfg.connections {
            let limits = Limits {
                fds,
                nproc: process_limit(),
                free_tasks: free_tasks(),
            };
            let cell = match model.cannot(n, &limits) {
                Some(why) => Cell::Cannot(why),
                None => {
                    eprint!(
                        "{}: {} with {n} connections ... ",
                        crate::PROG,
                        model.name()
                    );
                    let cell = match median_of_runs(&client, model, n, cfg) {
                        Ok(m) => Cell::Measured(m),
                        Err(why) => Cell::Failed(why),
                    };
                    eprintln!("{}", report::brief(&cell));
                    cell
                }
            };
            rows.push(Row {
                model: model.name(),
                connections: n,
                cell,
            });
        }
    }
    Ok(rows)
}

/// Measures a cell `cfg.runs` times and keeps the run with the median
/// messages/s (one run's figures together, not a mix of runs). Any failed
/// run fails the cell.
fn median_of_runs(
    client: &PathBuf,
    model: Model,
    n: usize,
    cfg: &Config,
) -> Result<Measured, String> {
    let mut runs = Vec::new();
    for _ in 0..cfg.runs.max(1) {
        runs.push(measure(client, model, n, cfg)?);
    }
    runs.sort_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec));
    Ok(runs.swap_remove(runs.len() / 2))
}

/// One cell: start the server, load it, read what it used, stop it.
fn measure(client: &PathBuf, model: Model, n: usize, cfg: &Config) -> Result<Measured, String> {
    let mut server = Server::start(model)?;
    let pid = server.child.id();
    let sampler = Sampler::start(pid);
    let load = run_client(client, server.port, n, cfg);
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
    let load = load.map_err(|e| match server_err.lines().next() {
        Some(line) => format!("{e}; server: {line}"),
        None => e,
    })?;
    Ok(Measured {
        msgs_per_sec: load.msgs_per_sec,
        p50_ns: load.p50_ns,
        p99_ns: load.p99_ns,
        cpu_ns_per_msg: cpu * 1e9 / load.echoed.max(1) as f64,
        client_cpu_ns_per_msg: load.cpu_seconds * 1e9 / load.echoed.max(1) as f64,
        peak_kib: hwm + peak.children_kib,
        threads: peak.threads,
        processes: peak.processes,
    })
}

/// A model running as `models --serve MODEL --port 0`.
struct Server {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(model: Model) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        // Each model names its backend; TRIPOLL_BACKEND would only confuse it.
        let mut child = Command::new(exe)
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
struct Load {
    msgs_per_sec: f64,
    echoed: u64,
    p50_ns: u64,
    p99_ns: u64,
    /// The client's own CPU time (user + system).
    cpu_seconds: f64,
}

/// Runs the client as a load generator against `port`, bounded in time.
fn run_client(client: &PathBuf, port: u16, n: usize, cfg: &Config) -> Result<Load, String> {
    let duration_ms = cfg.duration.as_millis().max(1);
    // The same load for every model: the client on its default backend
    // (epoll), whatever TRIPOLL_BACKEND says.
    let mut child = Command::new(client)
        .args(["--port", &port.to_string(), "--connections", &n.to_string()])
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
    Ok(Load {
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

fn clock_ticks() -> f64 {
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
    // SAFETY: all-zero is a valid rusage, which getrusage fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid, writable storage for the kernel.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}
