//! An HTTP/1.1 "Hello, world!" server on tripoll's callback reactor.
//!
//! ```text
//! cargo run --release -p tripoll-lab --bin http -- --backend epoll --port 8080 --threads 2
//! curl -i http://127.0.0.1:8080/
//! ```
//!
//! What it shows:
//!
//! - one [`Reactor`] per thread, each with its own listening socket on the
//!   same port (`SO_REUSEPORT`, so the kernel spreads connections), created
//!   with `socket2` because the option must be set before `bind`;
//! - SIGINT and SIGTERM delivered as reactor events (`on_signal`), ending
//!   every thread's loop and the process with status 0;
//! - HTTP/1.1 keep-alive and HTTP/1.0 close semantics, `Connection: close`
//!   and `keep-alive` honoured, pipelined requests answered in order with
//!   one write per batch, each head checked in one pass over its bytes
//!   (see `http/proto.rs` for the statuses it answers malformed, oversized
//!   and unsupported requests with);
//! - a `Date` header rendered once a second by a timer into a cached
//!   buffer, and every response rendered whole at start-up and patched
//!   when the date changes, so a response is one copy and a request costs
//!   no allocation once a connection's buffers have grown;
//! - an idle timeout per connection, renewed by complete requests only, so
//!   a client that sends one byte at a time is still cut;
//! - output buffered per connection with writable interest while it is
//!   pending, and a cap above which the connection is not read from;
//! - an accept loop that survives running out of descriptors (`EMFILE`)
//!   without spinning, with a spare descriptor.

use tripoll_lab::cli as common;
use tripoll_lab::http::date;
use tripoll_lab::http::proto;
mod server;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{to_usize, Args};
use tripoll::reactor::{Error as ReactorError, Handle, Reactor};
use tripoll::{Backend, Poller};

use proto::Limits;
use server::{Settings, Stats};

const PROG: &str = "http";

const USAGE: &str = "\
http: an HTTP/1.1 \"Hello, world!\" server on tripoll's reactor

Usage: http [OPTIONS]

Every request for GET, HEAD or POST on any path is answered with 200 and the
body \"Hello, world!\". The server prints one line saying where it listens,
with which backend, how many threads and which trigger mode, and runs until
SIGINT (Ctrl-C) or SIGTERM, then prints a summary on stderr and exits 0.

Options:
  --backend epoll|poll|select|uring
        The readiness backend. Default: $TRIPOLL_BACKEND, or epoll.
  --addr IP
        The address to listen on (default: 127.0.0.1; ::1 for IPv6).
  --port PORT
        The port to listen on (default: 8080). Port 0 asks the kernel for a
        free port; the line printed at start shows which.
  --threads N
        Reactors, each in its own thread with its own listener on the same
        port (SO_REUSEPORT); the kernel spreads connections (default: 1).
  --idle-timeout DURATION
        Close a connection that completes no request for this long: 10, 10s,
        500ms, 2m (default: 10s).
  --max-head BYTES
        The longest request head (request line and headers); a longer one
        gets 431, or 414 if the request line alone is longer (default: 8K).
  --max-body BYTES
        The largest request body, read and discarded; a larger one gets 413
        (default: 1M).
  --max-pending BYTES
        Output a connection may have pending before the server stops reading
        its requests until the peer catches up (default: 64K).
  --max-buffered BYTES
        The budget for the buffers of all connections together, over all
        threads (default: 64M). At or over it, a connection with output
        pending reads nothing more until that output is sent; past it, a
        connection still holding unsent output after its turn is closed.
        Clients that read their responses are served throughout.
  --max-fds N
        Set this process's descriptor limit (RLIMIT_NOFILE) to N, to watch the
        server shed connections at the limit. Default: raise it as far as
        allowed.
  -h, --help
        Print this help.

Example:
  http --backend epoll --port 8080 --threads 2
  curl -i http://127.0.0.1:8080/
";

#[derive(Clone, Copy, Debug)]
struct Config {
    backend: Option<Backend>,
    addr: IpAddr,
    port: u16,
    threads: usize,
    settings: Settings,
    max_fds: Option<u64>,
}

fn parse_args() -> Config {
    let mut cfg = Config {
        backend: None,
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 8080,
        threads: 1,
        settings: Settings {
            idle: Duration::from_secs(10),
            max_pending: 64 << 10,
            max_buffered: 64 << 20,
            limits: Limits {
                max_head: 8 << 10,
                max_body: 1 << 20,
            },
        },
        max_fds: None,
    };
    let mut args = Args::from_env(PROG, USAGE);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => args.help(),
            "--backend" => cfg.backend = Some(args.value(&flag, common::parse_backend)),
            "--addr" => cfg.addr = args.value(&flag, common::parse_addr),
            "--port" => cfg.port = args.value(&flag, common::parse_port),
            "--threads" => {
                let n = args.value(&flag, common::parse_count(1));
                if n > 1024 {
                    args.fail("--threads: at most 1024");
                }
                cfg.threads = to_usize(n);
            }
            "--idle-timeout" => cfg.settings.idle = args.value(&flag, common::parse_duration),
            "--max-head" => {
                cfg.settings.limits.max_head = to_usize(args.value(&flag, common::parse_size(64)))
            }
            "--max-body" => cfg.settings.limits.max_body = args.value(&flag, common::parse_size(0)),
            "--max-pending" => {
                cfg.settings.max_pending = to_usize(args.value(&flag, common::parse_size(1)))
            }
            "--max-buffered" => {
                cfg.settings.max_buffered = to_usize(args.value(&flag, common::parse_size(1)))
            }
            "--max-fds" => cfg.max_fds = Some(args.value(&flag, common::parse_count(8))),
            _ => args.unknown(&flag),
        }
    }
    cfg
}

fn main() {
    let cfg = parse_args();
    common::set_fd_limit(PROG, cfg.max_fds);

    // The signal handlers first, on this thread, before any other thread
    // exists: the workers inherit the blocked mask, so SIGINT and SIGTERM
    // reach this reactor's signalfd and nothing else.
    let mut reactor = Reactor::with_poller(common::make_poller(PROG, cfg.backend));
    let peers: Rc<RefCell<Vec<Handle>>> = Rc::default();
    let caught: Rc<Cell<&'static str>> = Rc::new(Cell::new(""));
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let peers = Rc::clone(&peers);
        let caught = Rc::clone(&caught);
        let res = reactor.on_signal(signal, move |ctx, _| {
            caught.set(name);
            for peer in peers.borrow().iter() {
                let _ = peer.stop();
            }
            ctx.stop();
            Ok(())
        });
        if let Err(e) = res {
            common::die(PROG, format!("cannot watch {name}: {e}"));
        }
    }

    let listeners = bind_all(&cfg)
        .unwrap_or_else(|e| common::die(PROG, format!("cannot listen on {}: {e}", cfg.addr)));
    let local = listeners[0]
        .local_addr()
        .unwrap_or_else(|e| common::die(PROG, format!("local address: {e}")));

    let mut listeners = listeners.into_iter();
    let first = listeners
        .next()
        .expect("bind_all returns one listener per thread");
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut workers = Vec::new();
    for (i, listener) in listeners.enumerate() {
        let ready = ready_tx.clone();
        let spawned = thread::Builder::new()
            .name(format!("http-{}", i + 1))
            .spawn(move || worker(cfg, listener, ready));
        match spawned {
            Ok(w) => workers.push(w),
            Err(e) => common::die(PROG, format!("cannot start a thread: {e}")),
        }
    }
    drop(ready_tx);
    for _ in 0..workers.len() {
        match ready_rx.recv() {
            Ok(Ok(handle)) => peers.borrow_mut().push(handle),
            Ok(Err(e)) => common::die(PROG, format!("a worker could not start: {e}")),
            Err(_) => common::die(PROG, "a worker died at start"),
        }
    }

    let shared = server::start(&mut reactor, first, cfg.settings)
        .unwrap_or_else(|e| common::die(PROG, format!("cannot start: {e}")));
    println!(
        "{PROG}: listening on {local} (backend {}, threads {}, mode level)",
        reactor.poller().name(),
        cfg.threads
    );

    let outcome = run(&mut reactor);
    for peer in peers.borrow().iter() {
        let _ = peer.stop();
    }
    let mut total = shared.stats();
    for w in workers {
        match w.join() {
            Ok(Ok(stats)) => total.add(&stats),
            Ok(Err(e)) => eprintln!("{PROG}: a worker failed: {e}"),
            Err(_) => eprintln!("{PROG}: a worker panicked"),
        }
    }
    if let Err(e) = outcome {
        common::die(PROG, e);
    }
    eprintln!(
        "{PROG}: {}: shutting down; connections {}, requests {}, error responses {}, \
         idle timeouts {}, refused {}, accept paused {} times, largest pending output {} bytes \
         (cap {}), largest total buffered {} bytes (budget {}), shed over the budget {}",
        caught.get(),
        total.connections,
        total.requests,
        total.errors,
        total.timeouts,
        total.refused,
        total.pauses,
        total.peak_pending,
        cfg.settings.max_pending,
        server::peak_buffered(),
        cfg.settings.max_buffered,
        total.shed_budget,
    );
    process::exit(0);
}

/// A worker thread: its own reactor over its own listener, until the main
/// thread stops it through the handle it sent back.
fn worker(
    cfg: Config,
    listener: TcpListener,
    ready: mpsc::Sender<Result<Handle, String>>,
) -> Result<Stats, String> {
    let started = common::new_poller(cfg.backend)
        .map_err(|e| e.to_string())
        .and_then(|poller| {
            let mut reactor = Reactor::with_poller(poller);
            let shared =
                server::start(&mut reactor, listener, cfg.settings).map_err(|e| e.to_string())?;
            Ok((reactor, shared))
        });
    let (mut reactor, shared) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            return Err(e);
        }
    };
    if ready.send(Ok(reactor.handle())).is_err() {
        return Err("the main thread went away".to_owned());
    }
    run(&mut reactor)?;
    Ok(shared.stats())
}

/// Runs a reactor until it is stopped. A callback that fails is reported
/// (by the reactor, through this error handler) and the loop goes on
/// serving the rest; a failing wait ends it.
fn run(reactor: &mut Reactor) -> Result<(), String> {
    reactor.set_error_handler(|_, failure| eprintln!("{PROG}: {failure}"));
    match reactor.run() {
        Ok(()) => Ok(()),
        Err(ReactorError::Poller(e)) => Err(format!("wait: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// One listener per thread on the same address. With several, each gets
/// `SO_REUSEPORT`, and all bind the port the first one got (which matters
/// for port 0).
fn bind_all(cfg: &Config) -> io::Result<Vec<TcpListener>> {
    let reuse_port = cfg.threads > 1;
    let first = bind(SocketAddr::new(cfg.addr, cfg.port), reuse_port)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..cfg.threads {
        all.push(bind(addr, reuse_port)?);
    }
    Ok(all)
}

/// A non-blocking listening socket. `SO_REUSEPORT` has to be set between
/// `socket` and `bind`, which std's `TcpListener::bind` does not allow.
fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let s = common::tcp_socket(addr)?;
    // A restarted server can bind while old connections sit in TIME_WAIT.
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}
