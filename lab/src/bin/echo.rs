//! An echo server on the raw `Poller` API: register, modify, unregister.
//!
//! ```text
//! cargo run -p tripoll-lab --bin echo -- --backend poll --mode oneshot --port 8001 --port 8002
//! ```
//!
//! What it shows, in the order a reader meets it:
//!
//! - one poller watching a `tripoll::source::Signals` (SIGINT/SIGTERM end
//!   the server with exit status 0), several listening sockets and every
//!   connection;
//! - the trigger mode chosen on the command line, refused up front with
//!   `supports` when the backend cannot honour it (edge needs epoll);
//! - per-connection output buffering: writable interest is asked for only
//!   while output is pending, and a connection whose pending output passes a
//!   cap is not read from until it drains, so a peer that reads slowly loses
//!   no byte and cannot make the server buffer without bound;
//! - an accept loop that survives running out of descriptors (`EMFILE`)
//!   without spinning: it keeps a spare descriptor, and when accept fails it
//!   closes the spare, accepts the connection, closes it at once and takes
//!   the spare back, so the pending connection leaves the backlog.
//!   Should the spare be lost (another thread of a server with several
//!   could take its number), the listener is paused for a moment instead;
//! - a total budget for all connections' output buffers (`--max-buffered`),
//!   checked before every read: a read that could pass it is not made from a
//!   connection with output pending (back-pressure), and for one with none
//!   the connection holding the most is closed first, so the total stays
//!   within the budget plus one read (64 KiB) however many clients never
//!   read;
//! - in edge mode, a connection whose turn ran out (it may have more input)
//!   is queued once and driven again after the next wait, at most once per
//!   turn, so greedy clients cannot starve the others.

use tripoll_lab::cli as common;

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process;
use std::time::{Duration, Instant};

use common::{Args, LogLimit, Shed, Spare, ACCEPT_PAUSE};
use tripoll::source::Signals;
use tripoll::{AnyPoller, Backend, Events, Interest, Mode, Poller, Token};

const PROG: &str = "echo";

const USAGE: &str = "\
echo: an echo server on tripoll's raw Poller API

Usage: echo [OPTIONS]

Every byte a client sends is sent back to it, in order. The server prints one
line saying where it listens, with which backend and mode, and runs until
SIGINT (Ctrl-C) or SIGTERM, then exits with status 0.

Options:
  --backend epoll|poll|select|uring
        The readiness backend. Default: $TRIPOLL_BACKEND, or epoll.
  --mode level|edge|oneshot
        How readiness is reported (default: level).
          level    every wait reports a socket while it is ready;
          edge     a socket is reported when it becomes ready, and the server
                   reads and writes until EAGAIN (epoll only);
          oneshot  one report, then the socket is re-armed with modify.
  --addr IP
        The address to listen on (default: 127.0.0.1; ::1 for IPv6).
  --port PORT
        A port to listen on; repeat for several (default: 8001). Port 0 asks
        the kernel for a free port; the line printed at start shows which.
  --max-pending BYTES
        Output a connection may have pending before the server stops reading
        from it until the peer catches up (default: 1M). K, M, G suffixes.
  --max-buffered BYTES
        The budget for all connections' output buffers together (default:
        64M), checked before every read. A read that could pass it is not
        made from a connection with output pending until that output drains;
        for a connection with none (a client that reads its echo), the
        connection holding the most is closed to make room. The total held
        stays within the budget plus one read (64 KiB).
  --max-fds N
        Set this process's descriptor limit (RLIMIT_NOFILE) to N, to watch the
        server shed connections at the limit instead of failing. Default: raise
        it as far as allowed.
  -h, --help
        Print this help.

Example:
  echo --backend epoll --mode edge --port 8001 --port 8002
  printf 'hello\\n' | nc -q1 127.0.0.1 8001
";

/// Reads per readiness report before another connection gets its turn.
const READS_PER_TURN: usize = 16;
/// Size of one read.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
struct Config {
    backend: Option<Backend>,
    mode: Mode,
    addr: IpAddr,
    ports: Vec<u16>,
    max_pending: usize,
    max_buffered: usize,
    max_fds: Option<u64>,
}

/// The modes this server handles: `Mode`'s own names, limited to the three
/// its read and write loops are written for.
fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.parse::<Mode>() {
        Ok(mode @ (Mode::Level | Mode::Edge | Mode::Oneshot)) => Ok(mode),
        Ok(mode) => Err(format!(
            "{mode} is not served here: expected one of level, edge, oneshot"
        )),
        Err(_) => Err("expected one of level, edge, oneshot".to_owned()),
    }
}

fn parse_args() -> Config {
    let mut cfg = Config {
        backend: None,
        mode: Mode::Level,
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ports: Vec::new(),
        max_pending: 1 << 20,
        max_buffered: 64 << 20,
        max_fds: None,
    };
    let mut args = Args::from_env(PROG, USAGE);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => args.help(),
            "--backend" => cfg.backend = Some(args.value(&flag, common::parse_backend)),
            "--mode" => cfg.mode = args.value(&flag, parse_mode),
            "--addr" => cfg.addr = args.value(&flag, common::parse_addr),
            "--port" => cfg.ports.push(args.value(&flag, common::parse_port)),
            "--max-pending" => {
                cfg.max_pending = common::to_usize(args.value(&flag, common::parse_size(1)));
            }
            "--max-buffered" => {
                cfg.max_buffered = common::to_usize(args.value(&flag, common::parse_size(1)));
            }
            "--max-fds" => cfg.max_fds = Some(args.value(&flag, common::parse_count(8))),
            _ => args.unknown(&flag),
        }
    }
    if cfg.ports.is_empty() {
        cfg.ports.push(8001);
    }
    cfg
}

fn main() {
    let cfg = parse_args();
    // Block the signals before anything else, so none is lost between
    // start-up and the first wait.
    let signals = common::shutdown_signals()
        .unwrap_or_else(|e| common::die(PROG, format!("cannot set up signal handling: {e}")));
    let poller = common::make_poller(PROG, cfg.backend);
    if !poller.supports(cfg.mode) {
        common::fail(
            PROG,
            &format!(
                "the {} backend does not support --mode {} (edge-triggered readiness needs \
                 epoll); use --mode level or --mode oneshot",
                poller.name(),
                cfg.mode
            ),
        );
    }
    common::set_fd_limit(PROG, cfg.max_fds);

    let mut server = Server::new(poller, &cfg, &signals)
        .unwrap_or_else(|e| common::die(PROG, format!("cannot start: {e}")));
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    println!(
        "{PROG}: listening on {} (backend {}, mode {})",
        addrs.join(", "),
        server.poller.name(),
        cfg.mode
    );

    match server.run(&signals) {
        Ok(signal) => {
            let s = &server.stats;
            eprintln!(
                "{PROG}: {signal}: shutting down; accepted {}, refused at the fd limit {}, \
                 still open {}, largest pending output {} bytes (cap {}), largest read from one \
                 connection in one turn {} bytes, largest total buffered {} bytes (budget {}), \
                 shed over the budget {}, accept paused {} times",
                s.accepted,
                s.refused,
                server.open_connections(),
                s.peak_pending,
                cfg.max_pending,
                s.peak_turn_read,
                s.peak_buffered,
                cfg.max_buffered,
                s.shed_budget,
                s.pauses,
            );
            process::exit(0);
        }
        Err(e) => common::die(PROG, e),
    }
}

/// Token layout: the signalfd, then one per listener, then the connections
/// (slab index + offset).
const SIGNALS: Token = Token(0);
const FIRST_LISTENER: usize = 1;

#[derive(Debug, Default)]
struct Stats {
    accepted: u64,
    refused: u64,
    /// The most output any one connection had pending at once: never more
    /// than the cap plus one read.
    peak_pending: usize,
    /// The most bytes read from one connection in one turn of the loop:
    /// never more than one turn's reads (`READS_PER_TURN` × `READ_CHUNK`).
    peak_turn_read: usize,
    /// The most output buffer held by all connections together.
    peak_buffered: usize,
    /// Connections closed because the total was over the budget.
    shed_budget: u64,
    /// Times a listener was paused: out of descriptors, no spare.
    pauses: u64,
}

struct Server {
    poller: AnyPoller,
    mode: Mode,
    listeners: Vec<TcpListener>,
    /// Connection slab: a connection's token is its index plus `conn_base`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    conn_base: usize,
    /// Kept open to be given up when accept hits the descriptor limit.
    spare: Spare,
    /// Edge mode only: connections that stopped reading because their turn
    /// was over, not because the socket was drained. No new edge will come
    /// for them, so they are driven again after the next (non-blocking) wait.
    again: Vec<usize>,
    max_pending: usize,
    /// All connections' output buffers together, against `--max-buffered`.
    budget: Budget,
    /// Turns of the loop so far: each connection is driven at most once
    /// per turn.
    turn: u64,
    /// Per listener: paused until then (out of descriptors, no spare).
    paused: Vec<Option<Instant>>,
    buf: Vec<u8>,
    stats: Stats,
    warned_register: bool,
    log: LogLimit,
}

struct Conn {
    stream: TcpStream,
    /// Output not yet sent is `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    /// The peer will send nothing more; close once `out` is flushed.
    read_closed: bool,
    /// The interest currently registered.
    interest: Interest,
    /// The most output this connection had pending.
    peak: usize,
    /// The turn this connection was last driven in, and the bytes read
    /// from it in that turn.
    turn: u64,
    turn_read: usize,
    /// Edge mode: on the list to be driven again next turn.
    queued: bool,
}

/// The budget for all connections' output buffers together: what they
/// hold (their capacity, which is what the allocator gave) against the
/// most they may hold. Checked before every read, so the total passes the
/// budget by one read at most (see `Server::serve`).
struct Budget {
    max: usize,
    held: usize,
}

impl Budget {
    fn over(&self) -> bool {
        self.held >= self.max
    }

    fn has_room_for(&self, growth: usize) -> bool {
        self.held + growth <= self.max
    }

    /// Counts a buffer's change of capacity from `before` to `after`.
    fn resized(&mut self, before: usize, after: usize) {
        self.held = self.held + after - before;
    }
}

/// What driving a connection left behind.
enum Drive {
    /// It has no output pending and would read, but a read could pass the
    /// budget: room must be made (another connection shed) first.
    NeedsRoom,
    /// Nothing more will happen on it: close it.
    Done,
    /// Still open; `more` when it may have unread input left.
    Open { more: bool },
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Whether the connection may read more: the peer has not closed, its
    /// output is under the cap, and, while all connections together are
    /// over the budget (`over`), it has no output pending.
    fn may_read(&self, max_pending: usize, over: bool) -> bool {
        !self.read_closed && self.pending() < max_pending && !(over && self.pending() > 0)
    }

    /// The interest this connection needs now: readable while it may read;
    /// writable only while output is pending. Never empty for an open
    /// connection (see `drive`).
    fn wanted(&self, max_pending: usize, over: bool) -> Interest {
        let mut i = Interest::empty();
        if self.may_read(max_pending, over) {
            i |= Interest::READABLE;
        }
        if self.pending() > 0 {
            i |= Interest::WRITABLE;
        }
        i
    }

    /// Sends pending output until it is gone or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        common::send_pending(self.stream.as_raw_fd(), &self.out, &mut self.sent)?;
        if self.sent == self.out.len() {
            // Give back a buffer a burst made large: the budget counts what
            // connections hold, not only what they have pending.
            if self.out.capacity() > 2 * READ_CHUNK {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
            self.sent = 0;
        } else if self.sent >= READ_CHUNK && self.sent * 2 >= self.out.len() {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// The capacity a read of up to `READ_CHUNK` bytes may add to `out`:
    /// none while that much is free, else what `reserve_exact` adds.
    fn read_growth(&self) -> usize {
        READ_CHUNK.saturating_sub(self.out.capacity() - self.out.len())
    }

    /// Moves bytes from the socket to the peer: flush, read, flush, ... until
    /// the socket has no input, the output cap is reached, or the turn is
    /// over. Reads and writes go until `WouldBlock`, as edge mode requires.
    ///
    /// Before each read the budget must have room for what the read may
    /// add; without it a connection with output pending waits for its peer
    /// (back-pressure), and one with nothing pending returns `NeedsRoom`.
    /// `overdraw` lets the first read go ahead regardless (there was no one
    /// to shed).
    fn drive(
        &mut self,
        buf: &mut [u8],
        max_pending: usize,
        budget: &mut Budget,
        mut overdraw: bool,
    ) -> io::Result<Drive> {
        let mut reads = 0;
        loop {
            let before = self.out.capacity();
            let flushed = self.flush();
            budget.resized(before, self.out.capacity());
            flushed?;
            if !self.may_read(max_pending, budget.over()) {
                break;
            }
            if reads == READS_PER_TURN {
                return Ok(Drive::Open { more: true });
            }
            let growth = self.read_growth();
            if !budget.has_room_for(growth) && !overdraw {
                if self.pending() > 0 {
                    break;
                }
                return Ok(Drive::NeedsRoom);
            }
            overdraw = false;
            reads += 1;
            match self.stream.read(buf) {
                Ok(0) => self.read_closed = true,
                Ok(n) => {
                    let before = self.out.capacity();
                    if before - self.out.len() < n {
                        self.out.reserve_exact(READ_CHUNK);
                    }
                    self.out.extend_from_slice(&buf[..n]);
                    budget.resized(before, self.out.capacity());
                    self.turn_read += n;
                    self.peak = self.peak.max(self.pending());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.read_closed && self.pending() == 0 {
            return Ok(Drive::Done);
        }
        Ok(Drive::Open { more: false })
    }
}

impl Server {
    fn new(poller: AnyPoller, cfg: &Config, signals: &Signals) -> io::Result<Server> {
        // Signals are read in full on each report, so level mode is right for
        // them whatever the sockets use.
        poller.register_source(signals, SIGNALS, Interest::READABLE, Mode::Level)?;
        let mut listeners = Vec::with_capacity(cfg.ports.len());
        for (i, &port) in cfg.ports.iter().enumerate() {
            let l = TcpListener::bind(SocketAddr::new(cfg.addr, port))
                .map_err(|e| io::Error::new(e.kind(), format!("bind {}:{port}: {e}", cfg.addr)))?;
            l.set_nonblocking(true)?;
            // std listens with a backlog of 128; a many-connection client
            // connects faster than that, so ask for more (listen on a
            // listening socket only changes its backlog).
            socket2::SockRef::from(&l).listen(1024)?;
            poller.register(
                l.as_raw_fd(),
                Token(FIRST_LISTENER + i),
                Interest::READABLE,
                cfg.mode,
            )?;
            listeners.push(l);
        }
        Ok(Server {
            conn_base: FIRST_LISTENER + listeners.len(),
            poller,
            mode: cfg.mode,
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            spare: Spare::new()?,
            again: Vec::new(),
            max_pending: cfg.max_pending,
            budget: Budget {
                max: cfg.max_buffered,
                held: 0,
            },
            turn: 0,
            paused: vec![None; cfg.ports.len()],
            buf: vec![0; READ_CHUNK],
            stats: Stats::default(),
            warned_register: false,
            log: LogLimit::new(Duration::from_secs(1)),
        })
    }

    fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    fn open_connections(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    /// The event loop. Returns the name of the signal that ended it.
    fn run(&mut self, signals: &Signals) -> io::Result<&'static str> {
        let mut events = Events::with_capacity(1024);
        loop {
            // Edge mode: the connections whose turn ran out last time. Each
            // is on the list once (`queued`); taken off here, it may queue
            // itself again when driven this turn.
            let retry = std::mem::take(&mut self.again);
            for &slot in &retry {
                if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                    conn.queued = false;
                }
            }
            let resume_in = self.resume()?;
            let timeout = if retry.is_empty() {
                resume_in
            } else {
                Some(Duration::ZERO)
            };
            self.poller.wait(&mut events, timeout)?;
            self.turn += 1;
            for ev in events.iter() {
                let t = ev.token().0;
                if ev.token() == SIGNALS {
                    if let Some(info) = signals.read()? {
                        return Ok(common::signal_name(&info));
                    }
                } else if t < self.conn_base {
                    self.accept_all(t - FIRST_LISTENER)?;
                } else {
                    self.serve(t - self.conn_base);
                }
            }
            // Driven already this turn (it had an event too): `serve`
            // skips it, and it queued itself again if it needed to.
            for slot in retry {
                self.serve(slot);
            }
            self.enforce_budget();
        }
    }

    /// Closes connections holding the most output while all of them
    /// together hold more than the budget: only after a read that went over
    /// it with no one to shed (see `serve`).
    fn enforce_budget(&mut self) {
        while self.budget.held > self.budget.max && self.shed_largest(None) {}
    }

    /// Closes the connection whose output buffer is largest, other than
    /// `except`, to make room in the budget. Returns false when no other
    /// connection holds anything.
    fn shed_largest(&mut self, except: Option<usize>) -> bool {
        let largest = self
            .conns
            .iter()
            .enumerate()
            .filter(|&(slot, _)| Some(slot) != except)
            .filter_map(|(slot, c)| c.as_ref().map(|c| (c.out.capacity(), slot)))
            .filter(|&(held, _)| held > 0)
            .max();
        let Some((held, slot)) = largest else {
            return false;
        };
        self.stats.shed_budget += 1;
        self.log.note(
            PROG,
            format_args!(
                "over the buffer budget ({} bytes held, budget {}): closing the \
                 connection holding the most ({held} bytes)",
                self.budget.held, self.budget.max
            ),
        );
        self.close(slot);
        true
    }

    /// Accepts until the backlog is empty. Connections arriving when the
    /// process is out of descriptors are accepted with the spare descriptor
    /// and closed at once: left in the backlog, they would keep the listener
    /// readable and a level-triggered loop would spin.
    fn accept_all(&mut self, li: usize) -> io::Result<()> {
        loop {
            match self.listeners[li].accept() {
                Ok((stream, _peer)) => self.add(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if common::is_fd_exhaustion(&e) => {
                    let refused = || self.stats.refused += 1;
                    match self.spare.shed(&self.listeners[li], refused) {
                        Shed::Refused => {}
                        Shed::Empty => break,
                        Shed::Pause => return self.pause(li),
                    }
                }
                // The connection died in the backlog, or a transient error:
                // next one.
                Err(e) if common::is_per_connection(&e) => {}
                Err(e) => {
                    self.log.note(PROG, format_args!("accept: {e}"));
                    break;
                }
            }
        }
        if self.mode.is_oneshot() {
            let fd = self.listeners[li].as_raw_fd();
            let token = Token(FIRST_LISTENER + li);
            self.poller
                .modify(fd, token, Interest::READABLE, self.mode)?;
        }
        Ok(())
    }

    /// Stops watching listener `li` for [`ACCEPT_PAUSE`]: out of
    /// descriptors and no spare to shed with, its level-triggered
    /// readiness would make the loop spin. `resume` undoes it.
    fn pause(&mut self, li: usize) -> io::Result<()> {
        self.stats.pauses += 1;
        self.log.note(
            PROG,
            format_args!(
                "out of descriptors and no spare to shed with: not accepting for {} ms",
                ACCEPT_PAUSE.as_millis()
            ),
        );
        let fd = self.listeners[li].as_raw_fd();
        let token = Token(FIRST_LISTENER + li);
        self.poller
            .modify(fd, token, Interest::empty(), self.mode)?;
        self.paused[li] = Some(Instant::now() + ACCEPT_PAUSE);
        Ok(())
    }

    /// Watches again the listeners whose pause is over, and says how long
    /// until the next one is.
    fn resume(&mut self) -> io::Result<Option<Duration>> {
        let now = Instant::now();
        let mut next: Option<Duration> = None;
        for li in 0..self.listeners.len() {
            let Some(until) = self.paused[li] else {
                continue;
            };
            if until > now {
                let left = until - now;
                next = Some(next.map_or(left, |n| n.min(left)));
                continue;
            }
            self.paused[li] = None;
            let fd = self.listeners[li].as_raw_fd();
            let token = Token(FIRST_LISTENER + li);
            self.poller
                .modify(fd, token, Interest::READABLE, self.mode)?;
        }
        Ok(next)
    }

    fn add(&mut self, stream: TcpStream) {
        if let Err(e) = stream.set_nonblocking(true) {
            eprintln!("{PROG}: set_nonblocking: {e}");
            return;
        }
        // Echoed replies are small and latency matters more than packets.
        let _ = stream.set_nodelay(true);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let token = Token(self.conn_base + slot);
        let res = self
            .poller
            .register(stream.as_raw_fd(), token, Interest::READABLE, self.mode);
        if let Err(e) = res {
            // Select cannot take descriptors from 1024 up, for one: refuse
            // the connection, keep serving the others.
            if !self.warned_register {
                eprintln!("{PROG}: refusing connections: {e}");
                self.warned_register = true;
            }
            self.stats.refused += 1;
            self.free.push(slot);
            return;
        }
        self.stats.accepted += 1;
        self.conns[slot] = Some(Conn {
            stream,
            out: Vec::new(),
            sent: 0,
            read_closed: false,
            interest: Interest::READABLE,
            peak: 0,
            turn: 0,
            turn_read: 0,
            queued: false,
        });
    }

    /// Handles readiness (or a retry) of the connection in `slot`.
    fn serve(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            // Closed earlier in this batch.
            return;
        };
        if conn.turn == self.turn {
            // Once per turn: an event and a retry in the same turn are one.
            return;
        }
        conn.turn = self.turn;
        conn.turn_read = 0;
        let mut overdraw = false;
        loop {
            let Some(conn) = self.conns[slot].as_mut() else {
                return;
            };
            let res = conn.drive(&mut self.buf, self.max_pending, &mut self.budget, overdraw);
            let s = &mut self.stats;
            s.peak_pending = s.peak_pending.max(conn.peak);
            s.peak_turn_read = s.peak_turn_read.max(conn.turn_read);
            s.peak_buffered = s.peak_buffered.max(self.budget.held);
            match res {
                // Make room by shedding the connection holding the most; with
                // no one to shed, this one reads once over the budget.
                Ok(Drive::NeedsRoom) => overdraw = !self.shed_largest(Some(slot)),
                Ok(Drive::Done) | Err(_) => return self.close(slot),
                Ok(Drive::Open { more }) => {
                    if more && self.mode.is_edge() && !conn.queued {
                        conn.queued = true;
                        self.again.push(slot);
                    }
                    if let Err(e) = self.rearm(slot) {
                        eprintln!("{PROG}: modify: {e}");
                        self.close(slot);
                    }
                    return;
                }
            }
        }
    }

    /// Brings the registration in line with what the connection needs. A
    /// oneshot registration is re-armed every time, even if unchanged.
    fn rearm(&mut self, slot: usize) -> tripoll::Result<()> {
        let token = Token(self.conn_base + slot);
        let (max, mode, over) = (self.max_pending, self.mode, self.budget.over());
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        let wanted = conn.wanted(max, over);
        if wanted == conn.interest && !mode.is_oneshot() {
            return Ok(());
        }
        self.poller
            .modify(conn.stream.as_raw_fd(), token, wanted, mode)?;
        conn.interest = wanted;
        Ok(())
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns[slot].take() {
            self.budget.held -= conn.out.capacity();
            // Unregister before the descriptor is closed (when `conn` drops),
            // so its number can be reused safely.
            if let Err(e) = self.poller.unregister(conn.stream.as_raw_fd()) {
                eprintln!("{PROG}: unregister: {e}");
            }
            self.free.push(slot);
        }
    }
}
