//! Server models side by side: one echo protocol served by every model the
//! classic tutorials walk through, each driven by the same `client` and
//! measured as the number of connections grows.
//!
//! ```text
//! cargo build --release -p tripoll-lab --bin models --bin client
//! target/release/models                      # the whole sweep, a table
//! target/release/models --quick              # a smoke run
//! target/release/models --csv --svg docs/models.svg
//! target/release/models --serve thread --port 8001   # one model as a server
//! ```
//!
//! The models, one short server function each:
//!
//! | model | file | how it serves N clients |
//! |---|---|---|
//! | `blocking` | `models/blocking.rs` | one thread, one client at a time |
//! | `fork` | `models/blocking.rs` | a process per connection |
//! | `thread` | `models/blocking.rs` | a thread per connection |
//! | `pool` | `models/blocking.rs` | a fixed pool of threads, each serving one client at a time |
//! | `busy` | `models/nonblocking.rs` | one thread, non-blocking sockets, tries every socket in turn (spins) |
//! | `select-level`, `poll-level`, `epoll-level`, `epoll-edge` | `models/nonblocking.rs` | one thread, one tripoll event loop |
//! | `epoll-percore` | `models/nonblocking.rs` | one epoll loop per core, each with its own `SO_REUSEPORT` listener |
//! | `epoll-exclusive` | `models/nonblocking.rs` | one epoll loop per core, one listener shared with `Mode::Exclusive` |
//! | `uring-completion` | `models/completion.rs` | one thread, io_uring's completion model: multishot receive into provided buffers, send (feature `io-uring`) |
//! | `async-epoll` | `models/tasks.rs` | a task per connection on one reactor, one thread |
//!
//! At the descriptor limit (`--serve MODEL --max-fds N`), every model that
//! can reach it refuses the clients it cannot serve, with a spare
//! descriptor, and goes on serving the others (`models/refuse.rs`, shared
//! by all but `uring-completion`, which sheds through its ring); `fork`
//! and `blocking` never reach it.
//!
//! The readiness rows come from [`tripoll::Backend::ALL`] and every mode the
//! backend [`supports`](tripoll::Poller::supports) among level and edge, so a
//! new backend joins the sweep without an edit here.
//!
//! The driver (`models/sweep.rs`) starts each model as a child process of
//! itself (`models --serve MODEL`), so the CPU time and memory it reads from
//! `/proc` are the server's own, loads it with the lab's `client` (built
//! next to this one) for a fixed duration at each N, and reports messages
//! per second, latency percentiles, server CPU time per message, peak
//! memory and the threads and processes used. A model that cannot serve N
//! says why in its cell instead of being run into a timeout.

use tripoll_lab::affinity;
use tripoll_lab::cli as common;

mod blocking;
mod chart;
#[cfg(feature = "io-uring")]
mod completion;
mod nonblocking;
mod protocol;
mod refuse;
mod report;
mod sweep;
mod tasks;

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use common::Args;
use tripoll::{AnyPoller, Backend, Mode, Poller, FD_SETSIZE};

const PROG: &str = "models";

const USAGE: &str = "\
models: the same echo protocol served by each server model, measured

Usage: models [OPTIONS]            run the sweep and print a table
       models --plan [OPTIONS]     print the cells in the order they would
                                   run, and the time they would take
       models --serve MODEL [--port PORT] [--cpu N] [--max-fds N]
                                   serve one model (prints its address)
       models --list               the models, one per line, with the
                                   most clients each can serve at once

The sweep starts each model as a child process, loads it with the lab's
client (which must be built next to this binary: cargo build --release
-p tripoll-lab --bin client) and measures messages/s, p50/p99 latency, server
CPU per message, peak memory and threads/processes, for each number of
connections. Every output records the machine, the kernel, the commit and
the load: the 1-minute load average before and after each cell, and the
cores other work kept busy (the machine's CPU time less the sweep's own,
over a moment before the cell and over the cell); a cell where that
reaches --max-load is marked busy.

Default cells: N = 1, 10, 100, 1000, 10000 with every connection active,
and N = 10000 with 10 and 100 active (the rest held idle); 3s each, about
5 minutes on two cores, 6 with the io-uring models (--plan prints the
estimate).

Options:
  --connections LIST  Connection counts (default: 1,10,100,1000,10000, and
                      the idle rows above).
  --active LIST       Of N connections, only K exchange messages, the
                      others are held idle: a cell for each K of LIST (K
                      above N is taken as N). Default: all active.
  --models LIST       Only these models (comma-separated names, see --list).
  --duration TIME     Load time per cell (default: 3s; 300ms with --quick).
  --size BYTES        Bytes per message (default: 64).
  --runs K            Runs per cell, alternated (run 1 of every cell, then
                      run 2, ...); the run with the median messages/s is
                      reported, with the lowest and highest (default: 1).
  --max-load CORES    A cell is busy when other work keeps this many cores
                      busy (default: 1.0).
  --strict            Refuse to start on a busy machine (exit status 2),
                      and refuse cells other work disturbs.
  --pin, --no-pin     Pin one-thread servers to one CPU and the client to
                      another (default: on with two CPUs or more). Servers
                      that use every core, and their client, stay unpinned.
  --plan              Print the cells in order and the estimate, and exit.
  --quick             Smoke run: N = 1, 10, 100 and 100 with 10 active,
                      300ms per cell.
  --csv               Print the results as CSV instead of the table.
  --json              Print the results as JSON instead of the table.
  --svg PATH          Also draw the chart: messages/s, CPU per message,
                      memory per connection and p99 latency against N, and
                      the idle-connection cells against K.
  --from-csv FILE     Print (and with --svg draw) the results of an earlier
                      --csv run instead of running the sweep.
  --serve MODEL       Serve MODEL on 127.0.0.1 until killed.
  --port PORT         The port for --serve (default: 0, any free port).
  --cpu N             With --serve: run on CPU N alone.
  --max-fds N         With --serve: set the server's descriptor limit
                      (RLIMIT_NOFILE) to N, to watch the model at the
                      limit. Default: raise it as far as allowed.
  --list              Print the models and exit.
  -h, --help          Print this help.
";

/// Workers of the `pool` model.
const POOL_SIZE: usize = 128;

/// Descriptors a server holds besides its connections: stdio, the
/// listener, the poller and its waker, with room to spare.
const FD_MARGIN: usize = 64;

/// One way to serve many clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Accept, serve that client until it leaves, accept the next.
    Blocking,
    /// A `fork`ed process per connection.
    Fork,
    /// A thread per connection.
    Thread,
    /// [`POOL_SIZE`] threads, each accepting and serving one client at a time.
    Pool,
    /// One thread trying every non-blocking socket in turn, without waiting.
    Busy,
    /// One thread on a tripoll event loop with this backend and mode.
    Readiness(Backend, Mode),
    /// One epoll loop per core, each with its own `SO_REUSEPORT` listener.
    PerCore,
    /// One epoll loop per core, sharing one listener registered with
    /// `Mode::Exclusive`.
    Exclusive,
    /// One thread on io_uring's completion model (multishot receive into
    /// provided buffers, send): the kernel does the I/O.
    Completion,
    /// A task per connection (async/await on `tripoll::task`), one reactor
    /// on one thread with this backend: coroutines.
    Tasks(Backend),
}

impl Model {
    /// Every model this program can run here, in the order of the
    /// tutorials' story: the readiness rows are every backend that can be
    /// created here (io_uring only with the `io-uring` feature and where the
    /// system allows it) in every mode it supports among level and edge.
    pub fn all() -> Vec<Model> {
        let mut all = vec![
            Model::Blocking,
            Model::Fork,
            Model::Thread,
            Model::Pool,
            Model::Busy,
        ];
        for backend in Backend::ALL {
            let Ok(poller) = AnyPoller::new(backend) else {
                continue; // see `unavailable`
            };
            for mode in [Mode::Level, Mode::Edge] {
                if poller.supports(mode) {
                    all.push(Model::Readiness(backend, mode));
                }
            }
        }
        // The kernel doing the I/O itself: the step after readiness.
        if completion_unavailable().is_none() {
            all.push(Model::Completion);
        }
        // The fair match for the thread and process models: every core.
        all.push(Model::PerCore);
        all.push(Model::Exclusive);
        // Coroutines on the platform's best backend: the last step of the
        // tutorials' story.
        all.push(Model::Tasks(Backend::default()));
        all
    }

    /// The backends left out of [`Model::all`], each with the reason.
    pub fn unavailable() -> Vec<(Backend, tripoll::Error)> {
        Backend::ALL
            .into_iter()
            .filter_map(|b| AnyPoller::new(b).err().map(|e| (b, e)))
            .collect()
    }

    pub fn name(self) -> String {
        match self {
            Model::Blocking => "blocking".to_owned(),
            Model::Fork => "fork".to_owned(),
            Model::Thread => "thread".to_owned(),
            Model::Pool => "pool".to_owned(),
            Model::Busy => "busy".to_owned(),
            Model::Readiness(backend, mode) => {
                let mode = if mode.is_edge() { "edge" } else { "level" };
                format!("{}-{mode}", backend.name())
            }
            Model::PerCore => "epoll-percore".to_owned(),
            Model::Completion => "uring-completion".to_owned(),
            Model::Exclusive => "epoll-exclusive".to_owned(),
            Model::Tasks(backend) => format!("async-{}", backend.name()),
        }
    }

    /// Whether the model spreads its work over every core (so the sweep
    /// leaves it and its client unpinned).
    pub fn multi_core(self) -> bool {
        matches!(
            self,
            Model::Fork | Model::Thread | Model::Pool | Model::PerCore | Model::Exclusive
        )
    }

    /// The listeners this model serves on: one, or one per loop sharing
    /// the port.
    fn listeners(self, port: u16) -> io::Result<Vec<TcpListener>> {
        match self {
            Model::PerCore => listen_reuseport(port, loops()),
            _ => Ok(vec![listen(port, false)?]),
        }
    }

    fn parse(name: &str) -> Result<Model, String> {
        if let Some(m) = Model::all().into_iter().find(|m| m.name() == name) {
            return Ok(m);
        }
        if name == Model::Completion.name() {
            let why = completion_unavailable().unwrap_or_default();
            return Err(format!("{name} cannot run here: {why}"));
        }
        // A readiness model whose backend cannot be created here: say why.
        for (backend, e) in Model::unavailable() {
            if name.split_once('-').map(|(b, _)| b) == Some(backend.name()) {
                return Err(format!("{name} cannot run here: {e}"));
            }
        }
        let names: Vec<String> = Model::all().into_iter().map(Model::name).collect();
        Err(format!("expected one of {}", names.join(", ")))
    }

    /// The most clients this model can serve at the same time, if it has
    /// a limit of its own (descriptor and process limits aside).
    pub fn capacity(self) -> Option<usize> {
        match self {
            Model::Blocking => Some(1),
            Model::Pool => Some(POOL_SIZE),
            Model::Readiness(Backend::Select, _) => Some(FD_SETSIZE - FD_MARGIN),
            _ => None,
        }
    }

    /// Why this model cannot serve `n` connections on this machine now,
    /// decided before trying, or `None` if it should.
    pub fn cannot(self, n: usize, limits: &sweep::Limits) -> Option<String> {
        if let Some(cap) = self.capacity().filter(|&cap| n > cap) {
            return Some(match self {
                Model::Blocking => format!(
                    "serves one client at a time: the other {} would wait until the first leaves",
                    n - 1
                ),
                Model::Pool => format!(
                    "{cap} workers each hold one client until it leaves: {} would wait",
                    n - cap
                ),
                _ => format!("select watches descriptors below {FD_SETSIZE} only ({cap} clients)"),
            });
        }
        if self == Model::Completion {
            if let Some(why) = completion_unavailable() {
                return Some(why);
            }
        }
        if let Model::Readiness(backend, _) | Model::Tasks(backend) = self {
            if let Err(e) = AnyPoller::new(backend) {
                return Some(format!("no {} poller here: {e}", backend.name()));
            }
        }
        if (n + FD_MARGIN) as u64 > limits.fds {
            return Some(format!(
                "the descriptor limit is {} (hard limit; raising it needs CAP_SYS_RESOURCE)",
                limits.fds
            ));
        }
        let tasks = match self {
            Model::Fork => "processes",
            Model::Thread => "threads",
            _ => return None,
        };
        // Room for the client and whatever else starts meanwhile.
        let wanted = n as u64 + 1024;
        if wanted > limits.nproc {
            return Some(format!(
                "{n} {tasks} would pass the process limit of {} (RLIMIT_NPROC, shared by the \
                 user's processes and threads)",
                limits.nproc
            ));
        }
        if wanted > limits.free_tasks {
            return Some(format!(
                "{n} {tasks} do not fit: the system has room for {} more tasks now (pid_max, \
                 threads-max)",
                limits.free_tasks
            ));
        }
        None
    }

    /// Serves clients on `listeners` (from [`Model::listeners`]) until an
    /// error stops it.
    fn serve(self, mut listeners: Vec<TcpListener>) -> io::Result<()> {
        if self == Model::PerCore {
            return nonblocking::loop_per_listener(listeners);
        }
        let listener = listeners.swap_remove(0);
        match self {
            Model::Blocking => blocking::one_at_a_time(listener),
            Model::Fork => blocking::process_per_connection(listener),
            Model::Thread => blocking::thread_per_connection(listener),
            Model::Pool => blocking::thread_pool(listener, POOL_SIZE),
            Model::Busy => nonblocking::busy_loop(listener),
            Model::Readiness(backend, mode) => {
                nonblocking::event_loop(listener, AnyPoller::new(backend)?, mode)
            }
            Model::PerCore => nonblocking::loop_per_listener(vec![listener]),
            Model::Completion => serve_completion(listener),
            Model::Exclusive => nonblocking::loops_sharing_listener(listener, loops()),
            Model::Tasks(backend) => tasks::tasks(listener, AnyPoller::new(backend)?),
        }
    }
}

/// Why the completion model cannot run here, if it cannot (found out
/// once: it takes setting up a ring).
fn completion_unavailable() -> Option<String> {
    static WHY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    WHY.get_or_init(|| {
        #[cfg(feature = "io-uring")]
        return completion::available()
            .err()
            .map(|e| format!("io_uring's completion model is unavailable here: {e}"));
        #[cfg(not(feature = "io-uring"))]
        Some("the lab was built without its io-uring feature (--features io-uring)".to_owned())
    })
    .clone()
}

#[cfg(feature = "io-uring")]
fn serve_completion(listener: TcpListener) -> io::Result<()> {
    completion::serve(listener)
}

#[cfg(not(feature = "io-uring"))]
fn serve_completion(_: TcpListener) -> io::Result<()> {
    Err(io::Error::other(
        completion_unavailable().unwrap_or_default(),
    ))
}

/// Event loops of the per-core models: one per CPU this process may use.
fn loops() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What the command line asked for.
enum Command {
    Sweep(sweep::Config),
    Serve {
        model: Model,
        port: u16,
        cpu: Option<usize>,
        max_fds: Option<u64>,
    },
    List,
}

fn parse_args() -> Command {
    let mut cfg = sweep::Config::default();
    let mut connections = None;
    let mut active = None;
    let mut pin = None;
    let mut duration = None;
    let mut serve = None;
    let mut port = 0;
    let mut cpu = None;
    let mut max_fds = None;
    let mut list = false;
    let mut args = Args::from_env(PROG, USAGE);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => args.help(),
            "--connections" => connections = Some(args.value(&flag, common::parse_list(1))),
            "--models" => cfg.models = args.value(&flag, parse_models),
            "--duration" => duration = Some(args.value(&flag, common::parse_duration)),
            "--size" => cfg.size = args.value(&flag, common::parse_size(1)),
            "--active" => active = Some(args.value(&flag, common::parse_list(1))),
            "--runs" => cfg.runs = common::to_usize(args.value(&flag, common::parse_count(1))),
            "--max-load" => cfg.max_load = args.value(&flag, parse_load),
            "--strict" => cfg.strict = true,
            "--pin" => pin = Some(true),
            "--no-pin" => pin = Some(false),
            "--plan" => cfg.plan_only = true,
            "--quick" => cfg.quick = true,
            "--csv" => cfg.format = report::Format::Csv,
            "--json" => cfg.format = report::Format::Json,
            "--svg" => cfg.svg = Some(args.value(&flag, |s| Ok::<_, String>(s.into()))),
            "--from-csv" => cfg.from_csv = Some(args.value(&flag, |s| Ok::<_, String>(s.into()))),
            "--serve" => serve = Some(args.value(&flag, Model::parse)),
            "--port" => port = args.value(&flag, common::parse_port),
            "--cpu" => cpu = Some(args.value(&flag, affinity::parse_cpu)),
            "--max-fds" => max_fds = Some(args.value(&flag, common::parse_count(8))),
            "--list" => list = true,
            _ => args.unknown(&flag),
        }
    }
    if list {
        return Command::List;
    }
    if let Some(model) = serve {
        return Command::Serve {
            model,
            port,
            cpu,
            max_fds,
        };
    }
    // With two CPUs or more, unless told otherwise.
    cfg.pin = pin.unwrap_or_else(|| affinity::allowed_cpus().is_ok_and(|c| c.len() >= 2));
    cfg.loads = loads(cfg.quick, connections, active);
    cfg.duration = duration.unwrap_or(if cfg.quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    });
    Command::Sweep(cfg)
}

/// The (N, K) cells: each N with each K of `--active` (at most N), or
/// every connection active; by default, the idle rows besides.
fn loads(quick: bool, connections: Option<Vec<u64>>, active: Option<Vec<u64>>) -> Vec<sweep::Load> {
    let (all_active, idle): (&[u64], &[(u64, u64)]) = if quick {
        (&[1, 10, 100], &[(100, 10)])
    } else {
        (&[1, 10, 100, 1000, 10000], &[(10000, 10), (10000, 100)])
    };
    let load = |n: u64, k: u64| sweep::Load {
        n: common::to_usize(n),
        active: common::to_usize(k.min(n)),
    };
    let mut loads = Vec::new();
    match (connections, active) {
        (None, None) => {
            loads.extend(all_active.iter().map(|&n| load(n, n)));
            loads.extend(idle.iter().map(|&(n, k)| load(n, k)));
        }
        (ns, ks) => {
            for n in ns.unwrap_or_else(|| all_active.to_vec()) {
                for &k in ks.as_deref().unwrap_or(&[n]) {
                    let l = load(n, k);
                    if !loads.contains(&l) {
                        loads.push(l);
                    }
                }
            }
        }
    }
    loads
}

/// `--max-load`: cores, 0 or more.
fn parse_load(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("expected a number of cores such as 1.0 or 0.5, got {s:?}"))
}

fn parse_models(s: &str) -> Result<Vec<Model>, String> {
    s.split(',').map(|name| Model::parse(name.trim())).collect()
}

fn main() {
    match parse_args() {
        Command::List => {
            for m in Model::all() {
                let cap = m.capacity().map_or("any".to_owned(), |c| c.to_string());
                println!("{}\t{cap}", m.name());
            }
        }
        Command::Serve {
            model,
            port,
            cpu,
            max_fds,
        } => serve(model, port, cpu, max_fds),
        Command::Sweep(cfg) => {
            if let Err(e) = sweep::run(&cfg) {
                common::die(PROG, e);
            }
        }
    }
}

/// `--serve`: listens, prints `models: listening on ADDR (MODEL)` and
/// serves until killed.
fn serve(model: Model, port: u16, cpu: Option<usize>, max_fds: Option<u64>) -> ! {
    // First, so that every thread and process of the server inherits it.
    if let Some(cpu) = cpu {
        if let Err(e) = affinity::pin_to(cpu) {
            common::die(PROG, format!("--cpu {cpu}: {e}"));
        }
    }
    // The driver may die without killing us (a panic, a ^C): go with it.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no
    // pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    match max_fds {
        Some(n) => common::set_fd_limit(PROG, Some(n)),
        None => drop(common::raise_fd_limit(1 << 20)),
    }
    let listeners = model
        .listeners(port)
        .unwrap_or_else(|e| common::die(PROG, format!("listen: {e}")));
    let addr = listeners[0]
        .local_addr()
        .unwrap_or_else(|e| common::die(PROG, format!("local_addr: {e}")));
    println!("{PROG}: listening on {addr} ({})", model.name());
    let _ = io::stdout().flush();
    match model.serve(listeners) {
        Ok(()) => common::die(PROG, format!("{} server stopped", model.name())),
        Err(e) => common::die(PROG, format!("{} server: {e}", model.name())),
    }
}

/// Accept queue length: a slow acceptor (`fork`) must not make the
/// client's connects wait for SYN retransmits. The kernel caps it at
/// `net.core.somaxconn`.
const BACKLOG: libc::c_int = 4096;

/// A blocking listener on 127.0.0.1:`port` with a long accept queue (std's
/// `TcpListener::bind` does not take a backlog).
fn listen(port: u16, reuse_port: bool) -> io::Result<TcpListener> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = common::tcp_socket(addr)?;
    s.set_reuse_port(reuse_port)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    let listener = TcpListener::from(s);
    // Each model chooses for itself; the tutorials' first servers block.
    listener.set_nonblocking(false)?;
    Ok(listener)
}

/// `count` listeners on one port (`port`, or the first one's if 0), each
/// with `SO_REUSEPORT`: the kernel hands each new connection to one of them.
fn listen_reuseport(port: u16, count: usize) -> io::Result<Vec<TcpListener>> {
    let first = listen(port, true)?;
    let port = first.local_addr()?.port();
    let mut all = vec![first];
    for _ in 1..count {
        all.push(listen(port, true)?);
    }
    Ok(all)
}
