//! An HTTP/1.1 "Hello, world!" server written with `tripoll::task`: one
//! task per connection on one reactor, one thread. `lab/src/bin/http/` is
//! the callback version; this one shares its request parsing and canned
//! responses (`http/proto.rs`, `http/date.rs`, included as modules).
//!
//! ```text
//! cargo run --release -p tripoll-lab --bin async_http -- --backend epoll --port 8080
//! curl -i http://127.0.0.1:8080/
//! ```
//!
//! A connection task reads, answers every complete request in its buffer
//! with one write, and reads again; it closes after a response that says
//! so (errors, `Connection: close`, HTTP/1.0), lingering to drain the
//! peer's input so the close is not a reset. A connection that completes
//! no request for the idle timeout is closed (with 408 if a request was
//! under way and nothing was pending): the deadline moves with complete
//! requests only, so a client trickling bytes is still cut, and it bounds
//! a write to a client that does not read too.

use tripoll_lab::cli as common;
use tripoll_lab::http::date;
use tripoll_lab::http::proto;

use std::cell::Cell;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{to_usize, Args};
use date::DATE_LEN;
use proto::{Limits, Parsed, Persist, Request, Responses, Status};
use tripoll::reactor::Reactor;
use tripoll::task::{sleep, timeout, Async, Executor, Spawner};
use tripoll::{Mode, Poller};

const PROG: &str = "async_http";

const USAGE: &str = "\
async_http: an HTTP/1.1 \"Hello, world!\" server on tripoll's async layer

Usage: async_http [OPTIONS]

Every request for GET, HEAD or POST on any path is answered with 200 and the
body \"Hello, world!\". The server prints one line saying where it listens,
with which backend and trigger mode, and runs until SIGINT (Ctrl-C) or
SIGTERM, then prints a summary on stderr and exits 0.

Options:
  --backend epoll|poll|select
        The readiness backend. Default: $TRIPOLL_BACKEND, or epoll.
  --addr IP
        The address to listen on (default: 127.0.0.1).
  --port PORT
        The port to listen on (default: 8080; 0 for any free port).
  --idle-timeout DURATION
        Close a connection that completes no request for this long: 10, 10s,
        500ms, 2m (default: 10s).
  --max-head BYTES
        The longest request head (default: 8K): 431, or 414 for a request
        line alone that long.
  --max-body BYTES
        The largest request body, read and discarded (default: 1M): 413.
  -h, --help
        Print this help.
";

/// The input buffer grows by this much when it is full.
const READ_CHUNK: usize = 8 * 1024;
/// The longest a connection lingers after its last response.
const MAX_LINGER: Duration = Duration::from_secs(2);

struct Config {
    backend: Option<tripoll::Backend>,
    addr: IpAddr,
    port: u16,
    idle: Duration,
    limits: Limits,
}

fn parse_args() -> Config {
    let mut cfg = Config {
        backend: None,
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 8080,
        idle: Duration::from_secs(10),
        limits: Limits {
            max_head: 8 << 10,
            max_body: 1 << 20,
        },
    };
    let mut args = Args::from_env(PROG, USAGE);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => args.help(),
            "--backend" => cfg.backend = Some(args.value(&flag, common::parse_backend)),
            "--addr" => cfg.addr = args.value(&flag, common::parse_addr),
            "--port" => cfg.port = args.value(&flag, common::parse_port),
            "--idle-timeout" => cfg.idle = args.value(&flag, common::parse_duration),
            "--max-head" => {
                cfg.limits.max_head = to_usize(args.value(&flag, common::parse_size(64)))
            }
            "--max-body" => cfg.limits.max_body = args.value(&flag, common::parse_size(0)),
            _ => args.unknown(&flag),
        }
    }
    cfg
}

/// What every task shares.
struct Shared {
    idle: Duration,
    limits: Limits,
    responses: Responses,
    date: Cell<[u8; DATE_LEN]>,
    connections: Cell<u64>,
    refused: Cell<u64>,
    requests: Cell<u64>,
    errors: Cell<u64>,
    timeouts: Cell<u64>,
}

impl Shared {
    fn bump(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }
}

fn main() {
    let cfg = parse_args();
    common::set_fd_limit(PROG, None);
    let mut reactor = Reactor::with_poller(common::make_poller(PROG, cfg.backend));
    let caught: Rc<Cell<&'static str>> = Rc::new(Cell::new(""));
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let caught = Rc::clone(&caught);
        let res = reactor.on_signal(signal, move |ctx, _| {
            caught.set(name);
            ctx.stop(); // ends `ex.run` below
            Ok(())
        });
        if let Err(e) = res {
            common::die(PROG, format!("cannot watch {name}: {e}"));
        }
    }
    let shared = Rc::new(Shared {
        idle: cfg.idle,
        limits: cfg.limits,
        responses: Responses::new(),
        date: Cell::new(date::now()),
        connections: Cell::new(0),
        refused: Cell::new(0),
        requests: Cell::new(0),
        errors: Cell::new(0),
        timeouts: Cell::new(0),
    });

    let ex = Executor::new();
    let addr = SocketAddr::new(cfg.addr, cfg.port);
    let listener = ex
        .block_on(&mut reactor, async { Async::new(TcpListener::bind(addr)?) })
        .and_then(|r| r)
        .unwrap_or_else(|e| common::die(PROG, format!("cannot listen on {addr}: {e}")));
    let local = listener
        .get_ref()
        .local_addr()
        .unwrap_or_else(|e| common::die(PROG, format!("local address: {e}")));
    let mode = if reactor.poller().supports(Mode::Edge) {
        "edge"
    } else {
        "oneshot"
    };
    println!(
        "{PROG}: listening on {local} (backend {}, mode {mode})",
        reactor.poller().name()
    );

    ex.spawn(clock(Rc::clone(&shared)));
    ex.spawn(accept(listener, ex.spawner(), Rc::clone(&shared)));
    if let Err(e) = ex.run(&mut reactor) {
        common::die(PROG, format!("the loop failed: {e}"));
    }
    eprintln!(
        "{PROG}: {} after {} connections ({} refused), {} requests ({} errors), {} idle timeouts",
        caught.get(),
        shared.connections.get(),
        shared.refused.get(),
        shared.requests.get(),
        shared.errors.get(),
        shared.timeouts.get(),
    );
}

/// Renders the `Date` value just after each second starts.
async fn clock(shared: Rc<Shared>) {
    loop {
        let into = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let next = Duration::from_nanos(1_000_000_000 - u64::from(into)) + Duration::from_millis(1);
        if sleep(next).await.is_err() {
            return;
        }
        shared.date.set(date::now());
    }
}

async fn accept(listener: Async<TcpListener>, spawner: Spawner, shared: Rc<Shared>) {
    let mut warned = false;
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) if common::is_per_connection(&e) => continue,
            Err(e) => {
                // Out of descriptors, or the poller refused the connection
                // (select from FD_SETSIZE up; it is closed): the others go on.
                if !warned {
                    eprintln!("{PROG}: refusing connections: {e}");
                    warned = true;
                }
                Shared::bump(&shared.refused);
                if common::is_fd_exhaustion(&e) {
                    let _ = sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        Shared::bump(&shared.connections);
        spawner.spawn(Conn::new(conn, Rc::clone(&shared)).serve());
    }
}

struct Conn {
    stream: Async<TcpStream>,
    shared: Rc<Shared>,
    /// Input is `inbuf[..filled]`.
    inbuf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    /// Body bytes of the current request still to discard, and the
    /// response owed once they are.
    body_left: u64,
    owed: Option<Request>,
    /// The last response is queued: send it, linger, close.
    closing: bool,
    deadline: Instant,
}

impl Conn {
    fn new(stream: Async<TcpStream>, shared: Rc<Shared>) -> Conn {
        let deadline = Instant::now() + shared.idle;
        Conn {
            stream,
            shared,
            inbuf: vec![0; READ_CHUNK],
            filled: 0,
            out: Vec::new(),
            body_left: 0,
            owed: None,
            closing: false,
            deadline,
        }
    }

    /// The connection's life; errors (a reset, say) just close it.
    async fn serve(mut self) {
        loop {
            self.answer();
            if !self.out.is_empty() {
                let left = self.deadline.saturating_duration_since(Instant::now());
                match timeout(left, self.stream.write_all(&self.out)).await {
                    Ok(Ok(())) => self.out.clear(),
                    Ok(Err(_)) => return,
                    Err(_) => return Shared::bump(&self.shared.timeouts),
                }
            }
            if self.closing {
                return self.linger().await;
            }
            if self.filled == self.inbuf.len() {
                self.inbuf.resize(self.filled + READ_CHUNK, 0);
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let read = timeout(left, self.stream.read(&mut self.inbuf[self.filled..])).await;
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => self.filled += n,
                Err(_) => return self.timed_out(),
            }
        }
    }

    /// Answers every complete request in the buffer, and drops the bytes
    /// it consumed.
    fn answer(&mut self) {
        let date = self.shared.date.get();
        let mut pos = 0;
        while !self.closing {
            if self.body_left > 0 {
                let take = self.body_left.min((self.filled - pos) as u64);
                pos += take as usize;
                self.body_left -= take;
                if self.body_left > 0 {
                    break;
                }
                if let Some(req) = self.owed.take() {
                    self.respond(&req, &date);
                }
                continue;
            }
            if pos == self.filled {
                break;
            }
            match proto::parse(&self.inbuf[pos..self.filled], self.shared.limits) {
                Parsed::Partial => break,
                Parsed::Reject(status) => {
                    let responses = &self.shared.responses;
                    responses.write(&mut self.out, status, Persist::Close, false, &date);
                    Shared::bump(&self.shared.requests);
                    Shared::bump(&self.shared.errors);
                    self.closing = true;
                    pos = self.filled; // the rest is not worth reading
                }
                Parsed::Request(req) => {
                    pos += req.len;
                    if req.body == 0 {
                        self.respond(&req, &date);
                    } else {
                        if req.expect_continue {
                            self.out.extend_from_slice(proto::CONTINUE);
                        }
                        self.body_left = req.body;
                        self.owed = Some(req);
                    }
                }
            }
        }
        self.inbuf.copy_within(pos..self.filled, 0);
        self.filled -= pos;
    }

    fn respond(&mut self, req: &Request, date: &[u8; DATE_LEN]) {
        let responses = &self.shared.responses;
        responses.write(&mut self.out, req.status, req.persist, req.head_only, date);
        Shared::bump(&self.shared.requests);
        if req.status != Status::Ok {
            Shared::bump(&self.shared.errors);
        }
        if req.persist == Persist::Close {
            self.closing = true;
        }
        self.deadline = Instant::now() + self.shared.idle;
    }

    /// The idle timeout: a 408 if a request was under way (one try, the
    /// connection closes either way).
    fn timed_out(&mut self) {
        Shared::bump(&self.shared.timeouts);
        if self.filled > 0 || self.body_left > 0 {
            let mut out = Vec::with_capacity(256);
            let date = self.shared.date.get();
            let responses = &self.shared.responses;
            responses.write(
                &mut out,
                Status::RequestTimeout,
                Persist::Close,
                false,
                &date,
            );
            let _ = self.stream.get_ref().write(&out);
            Shared::bump(&self.shared.errors);
        }
    }

    /// After the last response: shut our side, then read and drop the
    /// peer's input until it closes or the linger time is up, so unread
    /// input does not turn the close into a reset that could destroy the
    /// response before the peer reads it.
    async fn linger(mut self) {
        if self.stream.get_ref().shutdown(Shutdown::Write).is_err() {
            return;
        }
        let limit = self.shared.idle.min(MAX_LINGER);
        let stream = &self.stream;
        let buf = &mut self.inbuf;
        let _ = timeout(limit, async {
            loop {
                match stream.read(buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}
