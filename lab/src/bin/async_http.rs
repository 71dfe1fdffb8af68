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
//!
//! At its limits it holds as the callback server does: a budget for all
//! connections' buffers together (`--max-buffered`: a connection queues no
//! more responses while the total is at the budget, and one whose input
//! would have to grow past it is closed), and a spare descriptor to accept
//! and close connections while the process is out of descriptors, so the
//! backlog does not fill.

use tripoll_lab::cli as common;
use tripoll_lab::http::date;
use tripoll_lab::http::proto;

use std::cell::Cell;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{to_usize, Args, LogLimit, Shed, Spare, ACCEPT_PAUSE};
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
  --backend epoll|poll|select|uring
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
  --max-buffered BYTES
        The budget for all connections' buffers together, input and output
        (default: 64M). While the total is at the budget, a connection queues
        no more responses until its output is sent (its other pipelined
        requests wait), and a connection whose input would have to grow past
        it is closed. Each connection always has its 8 KiB input buffer and
        room for one response, so the total stays within the budget plus
        that much per connection.
  --max-fds N
        Set this process's descriptor limit (RLIMIT_NOFILE) to N, to watch the
        server shed connections at the limit. Default: raise it as far as
        allowed.
  -h, --help
        Print this help.
";

/// The input buffer grows by this much when it is full.
const READ_CHUNK: usize = 8 * 1024;
/// The output buffer grows by this much (at least) when it has no room for
/// one more response.
const OUT_STEP: usize = 4 * 1024;
/// The longest a connection lingers after its last response.
const MAX_LINGER: Duration = Duration::from_secs(2);

struct Config {
    backend: Option<tripoll::Backend>,
    addr: IpAddr,
    port: u16,
    idle: Duration,
    limits: Limits,
    max_buffered: usize,
    max_fds: Option<u64>,
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
        max_buffered: 64 << 20,
        max_fds: None,
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
            "--max-fds" => cfg.max_fds = Some(args.value(&flag, common::parse_count(8))),
            "--max-buffered" => {
                cfg.max_buffered = to_usize(args.value(&flag, common::parse_size(1)))
            }
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
    /// The budget for all connections' buffers, what they hold now (their
    /// capacity) and the most they held.
    max_buffered: usize,
    held: Cell<usize>,
    peak_held: Cell<usize>,
    /// Connections closed because their input would have passed the budget.
    shed_budget: Cell<u64>,
    log: std::cell::RefCell<LogLimit>,
}

impl Shared {
    fn bump(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }

    /// Whether `growth` more bytes fit in the budget.
    fn has_room_for(&self, growth: usize) -> bool {
        self.held.get() + growth <= self.max_buffered
    }

    /// Counts a connection's buffers changing from `before` to `after` bytes.
    fn resized(&self, before: usize, after: usize) {
        let held = self.held.get() + after - before;
        self.held.set(held);
        self.peak_held.set(self.peak_held.get().max(held));
    }
}

fn main() {
    let cfg = parse_args();
    common::set_fd_limit(PROG, cfg.max_fds);
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
        max_buffered: cfg.max_buffered,
        held: Cell::new(0),
        peak_held: Cell::new(0),
        shed_budget: Cell::new(0),
        log: std::cell::RefCell::new(LogLimit::new(Duration::from_secs(1))),
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
        "{PROG}: {} after {} connections ({} refused), {} requests ({} errors), {} idle timeouts, \
         largest total buffered {} bytes (budget {}), shed over the budget {}",
        caught.get(),
        shared.connections.get(),
        shared.refused.get(),
        shared.requests.get(),
        shared.errors.get(),
        shared.timeouts.get(),
        shared.peak_held.get(),
        shared.max_buffered,
        shared.shed_budget.get(),
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

/// Accepts connections and spawns a task for each. Out of descriptors, the
/// spare descriptor sheds the backlog (accept and close at once), so
/// waiting clients hear at once instead of timing out; with no spare to
/// shed with, accepting pauses for [`ACCEPT_PAUSE`].
async fn accept(listener: Async<TcpListener>, spawner: Spawner, shared: Rc<Shared>) {
    let mut spare = match Spare::new() {
        Ok(spare) => spare,
        Err(e) => common::die(PROG, format!("cannot open the spare descriptor: {e}")),
    };
    let mut warned = false;
    loop {
        // `accept` fails with EMFILE before it looks at the backlog, so an
        // empty backlog must be told by the shedding, and waited for as any
        // `WouldBlock` (`read_with`), or the loop would spin.
        let accepted = listener
            .read_with(|l| accept_or_shed(l, &mut spare, &shared))
            .await;
        let conn = match accepted.and_then(|conn| conn.map(Async::new).transpose()) {
            Ok(Some(conn)) => conn,
            Ok(None) => {
                let _ = sleep(ACCEPT_PAUSE).await; // no spare to shed with
                continue;
            }
            Err(e) => {
                // The poller refused the connection (select from FD_SETSIZE
                // up; it is closed): the others go on.
                if !warned {
                    eprintln!("{PROG}: refusing connections: {e}");
                    warned = true;
                }
                Shared::bump(&shared.refused);
                continue;
            }
        };
        Shared::bump(&shared.connections);
        spawner.spawn(Conn::new(conn, Rc::clone(&shared)).serve());
    }
}

/// One connection from the backlog; out of descriptors, sheds the backlog
/// with the spare (`WouldBlock` once it is empty) or, with no spare, gives
/// `None`: pause.
fn accept_or_shed(
    listener: &TcpListener,
    spare: &mut Spare,
    shared: &Shared,
) -> io::Result<Option<TcpStream>> {
    loop {
        match listener.accept() {
            Ok((conn, _)) => return Ok(Some(conn)),
            Err(e) if common::is_per_connection(&e) => continue,
            Err(e) if common::is_fd_exhaustion(&e) => {
                shared.log.borrow_mut().note(
                    PROG,
                    format_args!("out of descriptors: refusing connections"),
                );
                match spare.shed(listener, || Shared::bump(&shared.refused)) {
                    Shed::Refused => continue,
                    Shed::Empty => return Err(io::ErrorKind::WouldBlock.into()),
                    Shed::Pause => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
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
    /// `answer` stopped at the budget with requests left in `inbuf`: answer
    /// again once `out` is sent, before reading more.
    stalled: bool,
    deadline: Instant,
    /// The bytes of buffer capacity this connection has counted in
    /// `shared.held` (given back when it drops).
    counted: usize,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.resized(self.counted, 0);
    }
}

impl Conn {
    fn new(stream: Async<TcpStream>, shared: Rc<Shared>) -> Conn {
        let deadline = Instant::now() + shared.idle;
        let mut conn = Conn {
            stream,
            shared,
            inbuf: vec![0; READ_CHUNK],
            filled: 0,
            out: Vec::new(),
            body_left: 0,
            owed: None,
            closing: false,
            stalled: false,
            deadline,
            counted: 0,
        };
        conn.recount();
        conn
    }

    /// Brings this connection's share of `shared.held` up to date.
    fn recount(&mut self) {
        let now = self.inbuf.capacity() + self.out.capacity();
        self.shared.resized(self.counted, now);
        self.counted = now;
    }

    /// Makes room in `out` for one more response (and a `100 Continue`):
    /// none is needed while the buffer has it; else it grows, by what the
    /// budget has room for, or by just that much while it is empty (each
    /// connection may always queue one response). False when it may not:
    /// stop answering until `out` is sent.
    fn room_for_response(&mut self) -> bool {
        let need = self.shared.responses.longest() + proto::CONTINUE.len();
        if self.out.capacity() - self.out.len() >= need {
            return true;
        }
        let step = need.max(OUT_STEP);
        if self.shared.has_room_for(step) {
            self.out.reserve_exact(step);
        } else if self.out.is_empty() {
            self.out.reserve_exact(need);
        } else {
            return false;
        }
        self.recount();
        true
    }

    /// Sent: empties `out`, giving back a buffer a burst made large.
    fn sent(&mut self) {
        if self.out.capacity() > OUT_STEP {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        self.recount();
    }

    /// The connection's life; errors (a reset, say) just close it.
    async fn serve(mut self) {
        loop {
            self.answer();
            if !self.out.is_empty() {
                let left = self.deadline.saturating_duration_since(Instant::now());
                match timeout(left, self.stream.write_all(&self.out)).await {
                    Ok(Ok(())) => self.sent(),
                    Ok(Err(_)) => return,
                    Err(_) => return Shared::bump(&self.shared.timeouts),
                }
            }
            if self.closing {
                return self.linger().await;
            }
            if std::mem::take(&mut self.stalled) {
                continue; // the requests left in `inbuf` first
            }
            if self.filled == self.inbuf.len() {
                // A request head longer than the buffer (up to --max-head):
                // the input grows, if the budget has room for it.
                if !self.shared.has_room_for(READ_CHUNK) {
                    return self.shed();
                }
                self.inbuf.resize(self.filled + READ_CHUNK, 0);
                self.recount();
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
                    if !self.room_for_response() {
                        self.owed = Some(req);
                        self.stalled = true;
                        break;
                    }
                    self.respond(&req, &date);
                }
                continue;
            }
            if pos == self.filled {
                break;
            }
            if !self.room_for_response() {
                self.stalled = true;
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

    /// Closed because its input would have passed the budget.
    fn shed(&mut self) {
        Shared::bump(&self.shared.shed_budget);
        let (held, max) = (self.shared.held.get(), self.shared.max_buffered);
        self.shared.log.borrow_mut().note(
            PROG,
            format_args!(
                "over the buffer budget ({held} bytes held, budget {max}): closing a \
                 connection whose request head does not fit"
            ),
        );
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
