//! The four backends side by side, in one process, on the same scenario.
//!
//! ```text
//! cargo run --release --example compare
//! cargo run --release --example compare -- --sizes 10,100 --active 1 --waits 2000
//! ```
//!
//! For each backend and each N: N Unix datagram sockets are registered for
//! readable interest, A of them (one end of a socketpair each, spread evenly
//! over the N) have a datagram waiting, and a fixed number of non-blocking
//! waits is timed. The idle sockets are unconnected, so they cost one
//! descriptor each rather than a pair's two and N = 10 000 fits under a
//! 20 000 descriptor limit. With epoll a wait costs in proportion to the A
//! ready descriptors; with poll and select it costs in proportion to all N,
//! because the whole set goes to the kernel and back on every wait. The
//! table shows the median time per wait over a few repetitions and the
//! events delivered per second.
//!
//! This times the wait alone; the criterion bench `wait_scaling` times a
//! write, a blocking wait and a read per active descriptor (the `--help`
//! text and the README say how the two sets of numbers relate).
//! `TRIPOLL_BACKEND` restricts the table to one backend, as `--backend` does.
//!
//! Select cannot hold descriptors numbered 1024 (`FD_SETSIZE`) or more; its
//! row then says so instead of failing.

use std::os::unix::net::UnixDatagram;
use std::process;
use std::time::{Duration, Instant};

use tripoll::{AnyPoller, Backend, Error, Events, Interest, Mode, Poller, Token};

const PROG: &str = "compare";

const USAGE: &str = "\
compare: epoll, poll, select and io_uring side by side on the same scenario

Usage: compare [OPTIONS]

For each backend and each N, registers N Unix datagram sockets for readable
interest, makes A of them readable (a datagram from a socketpair peer,
never read, so they stay readable), and times a fixed number of
non-blocking waits (timeout 0), each of which must report the A events.
Prints one row per backend and N: the median wall-clock time per wait over
the repetitions, and the events delivered per second (A per wait). Build
with --release for meaningful numbers.

What it measures, next to the criterion bench `wait_scaling`
(BENCHMARKS.md): compare times the wait alone, through AnyPoller, with
nothing read or written in the timed loop. wait_scaling times an iteration
that writes one byte per active descriptor, waits (blocking) until all are
reported and reads each byte, on each backend type directly, in thread CPU
time. So at small N wait_scaling's figure is mostly its write and read
system calls (about 2 µs per active descriptor) and compare's is far lower;
as N grows, poll and select cost the same per registered descriptor in
both, and their rows converge.

TRIPOLL_BACKEND, when set, restricts the table to that backend (an unknown
name is an error); --backend overrides it.

Options:
  --sizes N,N,...     Registered descriptor counts (default: 10,100,1000,10000).
  --active A          Descriptors ready on every wait (default: 1; at most the
                      smallest N).
  --waits W           Waits timed per repetition (default: 2000).
  --reps R            Repetitions; the median is shown (default: 5).
  --backend B         Only this backend (epoll, poll, select or uring);
                      default: $TRIPOLL_BACKEND if set, else all (uring
                      where it is available).
  -h, --help          Print this help.

Select's row for an N whose descriptors reach FD_SETSIZE (1024) reads
\"n/a (fd ≥ FD_SETSIZE)\".
";

struct Config {
    sizes: Vec<usize>,
    active: usize,
    waits: usize,
    reps: usize,
    backends: Vec<Backend>,
}

fn parse_args() -> Config {
    let mut cfg = Config {
        sizes: vec![10, 100, 1000, 10_000],
        active: 1,
        waits: 2000,
        reps: 5,
        backends: backends_from_env(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            print!("{USAGE}");
            process::exit(0);
        }
        // `--name value` or `--name=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if !["--sizes", "--active", "--waits", "--reps", "--backend"].contains(&flag.as_str()) {
            usage_error(&format!("unknown option {flag:?}"));
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            usage_error(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--sizes" => cfg.sizes = value.split(',').map(|v| count(&flag, v)).collect(),
            "--active" => cfg.active = count(&flag, &value),
            "--waits" => cfg.waits = count(&flag, &value),
            "--reps" => cfg.reps = count(&flag, &value),
            _ => match value.parse::<Backend>() {
                Ok(b) => cfg.backends = vec![b],
                Err(e) => usage_error(&format!("invalid value {value:?} for --backend: {e}")),
            },
        }
    }
    let smallest = cfg.sizes.iter().copied().min().unwrap_or(1);
    if cfg.active > smallest {
        usage_error(&format!(
            "--active {} is more than the smallest size {smallest}: A of the N descriptors are \
             made ready, so A must be at most N",
            cfg.active
        ));
    }
    cfg
}

/// A whole number of at least 1, or a usage error naming `flag`.
fn count(flag: &str, value: &str) -> usize {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => n,
        _ => usage_error(&format!(
            "invalid value {value:?} for {flag}: a whole number of at least 1"
        )),
    }
}

/// One line on stderr naming what is wrong, then exit status 2.
fn usage_error(msg: &str) -> ! {
    eprintln!("{PROG}: error: {msg} (try '{PROG} --help')");
    process::exit(2)
}

/// Prints `compare: error` and the reason, then exits 1.
fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("{PROG}: error: {msg}");
    process::exit(1)
}

/// Every backend when `TRIPOLL_BACKEND` is unset or empty, else the one it
/// names; an unknown name ends the program, as in every other example.
fn backends_from_env() -> Vec<Backend> {
    match std::env::var_os(Backend::ENV_VAR) {
        Some(v) if !v.is_empty() => match Backend::from_env() {
            Ok(b) => vec![b],
            Err(e) => die(e),
        },
        _ => Backend::ALL.to_vec(),
    }
}

fn main() {
    let mut cfg = parse_args();
    if cfg.backends.len() > 1 {
        // Every backend by default: leave out, saying why, one this program
        // cannot use here (io_uring without its feature, or forbidden). One
        // asked for by name is made anyway, and its error ends the run.
        cfg.backends.retain(|&b| match AnyPoller::new(b) {
            Err(e @ Error::Unavailable { .. }) => {
                println!("{b}: not run: {e}");
                false
            }
            _ => true,
        });
    }
    let largest = cfg.sizes.iter().copied().max().unwrap_or(0) as u64;
    // One descriptor per watched socket, one more per active one, plus the
    // poller's own and stdio.
    let needed = largest + cfg.active as u64 + 32;
    let limit = rlimit::increase_nofile_limit(needed)
        .unwrap_or_else(|e| die(format!("cannot raise the descriptor limit: {e}")));

    println!(
        "{} active, {} waits per repetition, median of {} repetitions",
        cfg.active, cfg.waits, cfg.reps
    );
    println!(
        "{:<8} {:>7} {:>14} {:>14}",
        "backend", "N", "time/wait", "events/s"
    );
    for &n in &cfg.sizes {
        for &backend in &cfg.backends {
            let needs = (n + cfg.active + 32) as u64;
            let row = if needs > limit {
                format!("n/a (needs {needs} fds, limit {limit})")
            } else {
                match measure(backend, n, &cfg) {
                    Ok(Some(per_wait)) => {
                        let events_per_sec = cfg.active as f64 / per_wait.as_secs_f64();
                        format!(
                            "{:>14} {:>14}",
                            human_nanos(per_wait.as_nanos() as f64),
                            human_rate(events_per_sec)
                        )
                    }
                    Ok(None) => "n/a (fd ≥ FD_SETSIZE)".to_owned(),
                    Err(e) => die(format!("{backend} with N = {n}: {e}")),
                }
            };
            println!("{:<8} {:>7} {row}", backend.name(), n);
        }
    }
    process::exit(0);
}

/// The median time of one wait with `n` registered descriptors and
/// `cfg.active` of them ready, or `None` when select cannot hold them.
fn measure(backend: Backend, n: usize, cfg: &Config) -> Result<Option<Duration>, String> {
    // The poller first, so its own descriptor has a low number.
    let poller = match AnyPoller::new(backend) {
        Ok(p) => p,
        Err(Error::FdOutOfRange { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // Spread the active ones over the set, so a linear scan cannot stop
    // early by luck.
    let step = n / cfg.active;
    let is_active = |i: usize| i % step == 0 && i / step < cfg.active;
    let mut watched = Vec::with_capacity(n);
    let mut peers = Vec::with_capacity(cfg.active);
    for i in 0..n {
        let sock = if is_active(i) {
            let (sock, peer) = UnixDatagram::pair().map_err(|e| format!("socketpair: {e}"))?;
            peers.push(peer);
            sock
        } else {
            // Never readable, and one descriptor instead of a pair's two:
            // 10 000 of them fit under a 20 000 descriptor limit.
            UnixDatagram::unbound().map_err(|e| format!("socket: {e}"))?
        };
        match poller.register_source(&sock, Token(i), Interest::READABLE, Mode::Level) {
            Ok(()) => {}
            Err(Error::FdOutOfRange { .. }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        watched.push(sock);
    }
    // Nothing reads the datagrams, so the active sockets stay readable.
    for peer in &peers {
        peer.send(b"x").map_err(|e| format!("send: {e}"))?;
    }

    let mut events = Events::with_capacity(cfg.active);
    // One untimed round to warm caches and fault in the buffers.
    run_waits(&poller, &mut events, cfg.active, cfg.waits.min(100))?;
    let mut times = Vec::with_capacity(cfg.reps);
    for _ in 0..cfg.reps {
        let start = Instant::now();
        run_waits(&poller, &mut events, cfg.active, cfg.waits)?;
        times.push(start.elapsed().div_f64(cfg.waits as f64));
    }
    times.sort();
    Ok(Some(times[times.len() / 2]))
}

/// `waits` non-blocking waits, each of which must report exactly `active`
/// events: the measurement is of real work, not of an empty set.
fn run_waits(
    poller: &AnyPoller,
    events: &mut Events,
    active: usize,
    waits: usize,
) -> Result<(), String> {
    for _ in 0..waits {
        let got = poller
            .wait(events, Some(Duration::ZERO))
            .map_err(|e| format!("wait: {e}"))?;
        if got != active {
            return Err(format!("a wait reported {got} events, expected {active}"));
        }
    }
    Ok(())
}

fn human_nanos(ns: f64) -> String {
    match ns {
        ns if ns < 1e3 => format!("{ns:.0} ns"),
        ns if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        ns if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        ns => format!("{:.2} s", ns / 1e9),
    }
}

fn human_rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    }
}
