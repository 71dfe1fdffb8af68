//! The many-socket client: N connections to an echo server on one tripoll
//! event loop, every echoed byte checked.
//!
//! ```text
//! cargo run -p tripoll-lab --bin echo -- --port 8001 &
//! cargo run -p tripoll-lab --bin client -- --port 8001 --connections 1000
//! cargo run --release -p tripoll-lab --bin client -- --port 8001 --duration 10 --rate 50000
//! ```
//!
//! By default each connection sends a fixed number of messages, one at a
//! time, and waits for each echo before sending the next. With `--duration`
//! (closed loop: as fast as the echoes come back) or `--rate` (open loop:
//! messages leave on a schedule, whether or not earlier ones came back) it is
//! a load generator that prints a progress line each second and the
//! throughput and latency percentiles at the end.
//!
//! Connections are opened with non-blocking `connect` and their completion
//! is a writable event, like any other. Every byte of every connection comes
//! from a deterministic pattern, so a byte that comes back wrong, late, out
//! of order or not at all is caught. The exit status is 0 only if every
//! connection worked and every byte came back.

use tripoll_lab::affinity;
use tripoll_lab::cli as common;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process;
use std::time::{Duration, Instant};

use common::{human_bytes, human_nanos, send_nosignal, Args};
use tripoll::{AnyPoller, Backend, Events, Interest, Mode, Poller, Token, FD_SETSIZE};

const PROG: &str = "client";

const USAGE: &str = "\
client: many connections to an echo server on one tripoll event loop

Usage: client [OPTIONS]

Opens N connections to an echo server (such as the lab's echo), sends
messages on each, and checks every byte that comes back. Exits 0 only if all
connections worked and no byte was lost or wrong; 1 otherwise; 2 for a bad
command line.

Options:
  --backend epoll|poll|select|uring
        The readiness backend. Default: $TRIPOLL_BACKEND, or epoll. Select
        can only watch descriptors below 1024, so it takes at most about
        1000 connections.
  --addr IP           Server address (default: 127.0.0.1).
  --port PORT         Server port (default: 8001).
  -c, --connections N Connections to open (default: 100).
  --messages M        Messages per connection when verifying (default: 10).
  --size BYTES        Bytes per message (default: 1K). K, M suffixes.
  --duration TIME     Run as a load generator for TIME (10, 10s, 500ms, 2m):
                      each connection sends its next message as soon as the
                      previous one is echoed. Prints a progress line each
                      second and throughput and latency percentiles at the end.
  --rate R            Load generator at R messages per second in total, spread
                      evenly over the connections; messages leave on schedule
                      whether or not earlier ones came back, and latency counts
                      from the scheduled time. Duration defaults to 10s.
  --active K          Only the first K connections exchange messages; the
                      others are opened, held open and never written to
                      (idle connections, as a server with many quiet
                      clients sees them), and closed when the active ones
                      are done. Default: all of them. With --rate, R is
                      spread over the K active connections.
  --cpu N             Run on CPU N alone (the models sweep pins the client
                      to one core and a one-thread server to another).
  --timeout TIME      Give up on connections still unfinished after TIME
                      (default: 30s; in load mode counted after the duration).
  --json              Also print the summary as one JSON object on the last
                      line, for tools (the models sweep reads it).
  -h, --help          Print this help.
";

/// Connections being set up at once; more would overflow the server's
/// accept backlog and wait for SYN retransmits.
const CONNECTS_IN_FLIGHT: usize = 256;
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Each connection sends this many messages, one at a time.
    Count(u64),
    /// Until `end`, each connection sends the next message when the last
    /// came back.
    ClosedLoop,
    /// Until `end`, each connection sends one message every `interval`.
    Rate { interval: Duration },
}

#[derive(Debug)]
struct Config {
    backend: Option<Backend>,
    server: SocketAddr,
    connections: usize,
    /// The first `active` connections exchange messages; the rest idle.
    active: usize,
    size: u64,
    plan: Plan,
    duration: Option<Duration>,
    timeout: Duration,
    json: bool,
}

fn parse_args() -> Config {
    let mut backend = None;
    let mut addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port = 8001;
    let mut connections = 100;
    let mut messages = 10;
    let mut size = 1024;
    let mut duration = None;
    let mut rate = None;
    let mut timeout = Duration::from_secs(30);
    let mut json = false;
    let mut active = None;
    let mut cpu = None;
    let mut args = Args::from_env(PROG, USAGE);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => args.help(),
            "--backend" => backend = Some(args.value(&flag, common::parse_backend)),
            "--addr" => addr = args.value(&flag, common::parse_addr),
            "--port" => port = args.value(&flag, common::parse_port),
            "-c" | "--connections" => connections = args.value(&flag, common::parse_count(1)),
            "--messages" => messages = args.value(&flag, common::parse_count(1)),
            "--size" => size = args.value(&flag, common::parse_size(1)),
            "--duration" => duration = Some(args.value(&flag, common::parse_duration)),
            "--rate" => rate = Some(args.value(&flag, common::parse_rate)),
            "--timeout" => timeout = args.value(&flag, common::parse_duration),
            "--json" => json = true,
            "--active" => active = Some(args.value(&flag, common::parse_count(1))),
            "--cpu" => cpu = Some(args.value(&flag, affinity::parse_cpu)),
            _ => args.unknown(&flag),
        }
    }
    if port == 0 {
        args.fail("--port 0 is not a server port");
    }
    let connections = common::to_usize(connections);
    let active = common::to_usize(active.unwrap_or(connections as u64));
    if active > connections {
        args.fail(&format!(
            "--active {active} is more than the {connections} connections"
        ));
    }
    if let Some(cpu) = cpu {
        if let Err(e) = affinity::pin_to(cpu) {
            args.fail(&format!("--cpu {cpu}: {e}"));
        }
    }
    let plan = match rate {
        Some(r) => {
            // The interval is a duration like any other: at most a year,
            // so that no deadline computed from it overflows.
            let interval = Duration::try_from_secs_f64(active as f64 / r)
                .ok()
                .filter(|d| *d <= common::MAX_DURATION)
                .unwrap_or_else(|| {
                    args.fail(
                        "--rate is too small for so many connections: each would send less \
                         than once a year",
                    )
                });
            Plan::Rate { interval }
        }
        None if duration.is_some() => Plan::ClosedLoop,
        None => Plan::Count(messages),
    };
    if rate.is_some() && duration.is_none() {
        duration = Some(Duration::from_secs(10));
    }
    Config {
        backend,
        server: SocketAddr::new(addr, port),
        connections,
        active,
        size,
        plan,
        duration,
        timeout,
        json,
    }
}

fn main() {
    let cfg = parse_args();
    let poller = common::make_poller(PROG, cfg.backend);
    // Each connection is one descriptor; leave room for the poller, stdio
    // and a few more.
    let needed = cfg.connections as u64 + 32;
    if poller.backend() == Backend::Select && needed > FD_SETSIZE as u64 {
        common::fail(
            PROG,
            &format!(
                "select can only watch descriptors below {FD_SETSIZE}, so it cannot hold {} \
                 connections; use --connections {} or less, or --backend epoll",
                cfg.connections,
                FD_SETSIZE - 32
            ),
        );
    }
    match common::raise_fd_limit(needed) {
        Ok(got) if got >= needed => {}
        Ok(got) => common::die(
            PROG,
            format!(
                "{} connections need {needed} descriptors but the limit is {got}",
                cfg.connections
            ),
        ),
        Err(e) => common::die(PROG, format!("cannot raise the descriptor limit: {e}")),
    }

    let what = match cfg.plan {
        Plan::Count(m) => format!("{m} messages of {} bytes each", cfg.size),
        Plan::ClosedLoop => format!("{}-byte messages, closed loop", cfg.size),
        Plan::Rate { .. } => format!("{}-byte messages on a schedule", cfg.size),
    };
    let idle = match cfg.connections - cfg.active {
        0 => String::new(),
        idle => format!(" ({} active, {idle} idle)", cfg.active),
    };
    println!(
        "{PROG}: backend {}, {} connections{idle} to {}, {what}",
        poller.name(),
        cfg.connections,
        cfg.server
    );
    let mut run = Run::new(poller, &cfg);
    let ok = match run.run() {
        Ok(()) => run.report(),
        Err(e) => common::die(PROG, e),
    };
    process::exit(if ok { 0 } else { 1 });
}

/// The byte at offset `off` of connection `conn`'s stream: a hash, so that a
/// shifted, repeated or mixed-up byte does not match by accident.
fn pattern(conn: u64, off: u64) -> u8 {
    let x = (off ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    (x >> 56) as u8
}

/// Starts a non-blocking `connect`; it completes when the socket turns
/// writable, and `SO_ERROR` (`take_error`) then says whether it worked.
fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = common::tcp_socket(addr)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(s.into())
}

/// A latency histogram with about 3% resolution: 32 buckets per power of
/// two, so it takes constant memory however long the run.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; (64 - SUB_BITS as usize + 1) * SUB as usize],
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
        ((e - SUB_BITS + 1) as u64 * SUB + sub) as usize
    }

    /// The middle of bucket `i`'s range.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let e = i / SUB + SUB_BITS as u64 - 1;
        let width = 1u64 << (e - SUB_BITS as u64);
        let low = (SUB + i % SUB) << (e - SUB_BITS as u64);
        low + width / 2
    }

    fn record(&mut self, nanos: u64) {
        self.counts[Self::index(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value below which a fraction `q` of the samples fall.
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }

    fn summary(&self) -> String {
        if self.total == 0 {
            return "no samples".to_owned();
        }
        format!(
            "p50 {}  p99 {}  p999 {}  max {}",
            human_nanos(self.quantile(0.50) as f64),
            human_nanos(self.quantile(0.99) as f64),
            human_nanos(self.quantile(0.999) as f64),
            human_nanos(self.max as f64)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started yet (waiting for a connect slot).
    Idle,
    Connecting,
    Open,
    /// No more messages: shut down writing once output is flushed, then
    /// wait for the server's end of file.
    Closing,
    Done,
    Failed,
}

struct Conn {
    id: u64,
    stream: Option<TcpStream>,
    state: State,
    /// Bytes handed to the kernel; the stream's bytes `[sent, queued)` are
    /// still to be sent.
    sent: u64,
    queued: u64,
    /// Bytes echoed back and checked.
    verified: u64,
    /// End offset and start time of each message not yet fully echoed.
    in_flight: VecDeque<(u64, Instant)>,
    messages: u64,
    write_shut: bool,
    interest: Interest,
}

struct Run {
    poller: AnyPoller,
    server: SocketAddr,
    size: u64,
    plan: Plan,
    duration: Option<Duration>,
    timeout: Duration,
    json: bool,
    conns: Vec<Conn>,
    /// Connections `0..active` exchange messages, the others stay idle.
    active: usize,
    /// Active connections done or failed; at `active` the idle ones close.
    active_finished: usize,
    /// Connections open when the last one was set up.
    held: usize,
    next_connect: usize,
    connecting: usize,
    finished: usize,
    /// Rate mode: when each connection sends its next message.
    schedule: BinaryHeap<Reverse<(Instant, usize)>>,
    start: Instant,
    connected_at: Option<Instant>,
    end: Option<Instant>,
    ended: bool,
    buf: Vec<u8>,
    corrupt: u64,
    errors: Vec<String>,
    second: Histogram,
    total: Histogram,
    second_msgs: u64,
    second_start: Instant,
    elapsed_secs: u64,
    timed_out: bool,
    /// Load mode: messages echoed before the end of the duration.
    in_window: u64,
}

impl Run {
    fn new(poller: AnyPoller, cfg: &Config) -> Run {
        let now = Instant::now();
        let conns = (0..cfg.connections)
            .map(|i| Conn {
                id: i as u64,
                stream: None,
                state: State::Idle,
                sent: 0,
                queued: 0,
                verified: 0,
                in_flight: VecDeque::new(),
                messages: 0,
                write_shut: false,
                interest: Interest::empty(),
            })
            .collect();
        Run {
            poller,
            server: cfg.server,
            size: cfg.size,
            plan: cfg.plan,
            duration: cfg.duration,
            timeout: cfg.timeout,
            json: cfg.json,
            conns,
            active: cfg.active,
            active_finished: 0,
            held: 0,
            next_connect: 0,
            connecting: 0,
            finished: 0,
            schedule: BinaryHeap::new(),
            start: now,
            connected_at: None,
            end: None,
            ended: false,
            buf: vec![0; CHUNK],
            corrupt: 0,
            errors: Vec::new(),
            second: Histogram::new(),
            total: Histogram::new(),
            second_msgs: 0,
            second_start: now,
            elapsed_secs: 0,
            timed_out: false,
            in_window: 0,
        }
    }

    fn is_load(&self) -> bool {
        !matches!(self.plan, Plan::Count(_))
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        self.start = Instant::now();
        self.second_start = self.start;
        while self.finished < self.conns.len() {
            self.start_connects();
            let now = Instant::now();
            if self.end.is_none() && self.connected_at.is_some() && self.is_load() {
                self.start_load(now);
            }
            let deadline = self.deadline();
            if now >= deadline {
                self.timed_out = true;
                break;
            }
            let mut timeout = deadline - now;
            if let Some(next) = self.next_timer() {
                timeout = timeout.min(next.saturating_duration_since(now));
            }
            self.poller.wait(&mut events, Some(timeout))?;
            for ev in events.iter() {
                let i = ev.token().0;
                match self.conns[i].state {
                    State::Connecting => self.on_connect(i),
                    State::Open | State::Closing => {
                        if ev.is_readable() || ev.is_error() || ev.is_hangup() {
                            self.on_readable(i);
                        }
                        if ev.is_writable() {
                            self.pump(i);
                        }
                    }
                    _ => {}
                }
            }
            self.timers();
        }
        Ok(())
    }

    /// When the run gives up: the timeout after start (verify mode) or
    /// after the end of the load.
    fn deadline(&self) -> Instant {
        match self.end {
            Some(end) => end + self.timeout,
            None => self.start + self.timeout + self.duration.unwrap_or_default(),
        }
    }

    /// The load clock starts when every connection is up: closed loop sends
    /// the first message on each connection, rate mode spreads the first
    /// sends over one interval so the load is even rather than in bursts.
    fn start_load(&mut self, now: Instant) {
        self.end = self.duration.map(|d| now + d);
        self.second_start = now;
        let n = self.active as f64;
        for i in 0..self.active {
            if self.conns[i].state != State::Open {
                continue;
            }
            match self.plan {
                Plan::Rate { interval } => {
                    let at = now + interval.mul_f64(i as f64 / n);
                    self.schedule.push(Reverse((at, i)));
                }
                _ => self.next_message(i),
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        if !self.is_load() || self.end.is_none() {
            return None;
        }
        let tick = self.second_start + Duration::from_secs(1);
        let mut next = tick;
        if let Some(end) = self.end.filter(|_| !self.ended) {
            next = next.min(end);
        }
        if let Some(Reverse((at, _))) = self.schedule.peek() {
            next = next.min(*at);
        }
        Some(next)
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if let Some(end) = self.end {
            while let Some(&Reverse((at, i))) = self.schedule.peek() {
                if at > now || at >= end {
                    break;
                }
                self.schedule.pop();
                if self.conns[i].state != State::Open {
                    continue;
                }
                self.enqueue(i, at);
                if let Plan::Rate { interval } = self.plan {
                    self.schedule.push(Reverse((at + interval, i)));
                }
                self.pump(i);
            }
            if !self.ended && now >= end {
                self.ended = true;
                self.schedule.clear();
                for i in 0..self.conns.len() {
                    if self.conns[i].state == State::Open && self.conns[i].in_flight.is_empty() {
                        self.begin_close(i);
                    }
                }
            }
        }
        if self.is_load() && self.end.is_some() && now >= self.second_start + Duration::from_secs(1)
        {
            self.progress(now);
        }
    }

    fn progress(&mut self, now: Instant) {
        let secs = now.duration_since(self.second_start).as_secs_f64();
        self.elapsed_secs += 1;
        println!(
            "[{:>4}s] {:>9.0} msg/s  {:>12}/s  {}",
            self.elapsed_secs,
            self.second_msgs as f64 / secs,
            human_bytes(self.second_msgs as f64 * self.size as f64 / secs),
            self.second.summary()
        );
        self.total.merge(&self.second);
        self.second = Histogram::new();
        self.second_msgs = 0;
        self.second_start = now;
    }

    fn start_connects(&mut self) {
        while self.connecting < CONNECTS_IN_FLIGHT && self.next_connect < self.conns.len() {
            let i = self.next_connect;
            self.next_connect += 1;
            let res = start_connect(self.server).and_then(|s| {
                self.poller
                    .register(s.as_raw_fd(), Token(i), Interest::WRITABLE, Mode::Level)?;
                Ok(s)
            });
            match res {
                Ok(s) => {
                    self.conns[i].stream = Some(s);
                    self.conns[i].state = State::Connecting;
                    self.conns[i].interest = Interest::WRITABLE;
                    self.connecting += 1;
                }
                Err(e) => self.fail(i, format!("connect: {e}")),
            }
        }
    }

    fn on_connect(&mut self, i: usize) {
        self.connecting -= 1;
        self.conns[i].state = State::Open;
        let Some(stream) = self.conns[i].stream.as_ref() else {
            return;
        };
        let err = match stream.take_error() {
            Ok(Some(e)) => Some(e),
            Ok(None) => stream.peer_addr().err(),
            Err(e) => Some(e),
        };
        if let Some(e) = err {
            self.fail(i, format!("connect: {e}"));
            return;
        }
        let _ = stream.set_nodelay(true);
        self.all_connected_check();
        match self.plan {
            Plan::Count(_) if !self.holds_idle() => self.next_message(i),
            // The load starts when all connections are up (and with idle
            // connections, the verification too: they are held meanwhile).
            _ => self.update_interest(i),
        }
        if i >= self.active && self.active_finished == self.active {
            self.begin_close(i); // too late: the active ones are all done
        }
    }

    /// Whether some connections are opened only to be held, idle.
    fn holds_idle(&self) -> bool {
        self.active < self.conns.len()
    }

    fn all_connected_check(&mut self) {
        if self.next_connect == self.conns.len()
            && self.connecting == 0
            && self.connected_at.is_none()
        {
            self.connected_at = Some(Instant::now());
            self.held = self
                .conns
                .iter()
                .filter(|c| matches!(c.state, State::Open | State::Closing))
                .count();
            if matches!(self.plan, Plan::Count(_)) && self.holds_idle() {
                for i in 0..self.active {
                    if self.conns[i].state == State::Open {
                        self.next_message(i);
                    }
                }
            }
        }
    }

    /// Count and closed-loop modes: sends the next message, or starts
    /// closing when there is none.
    fn next_message(&mut self, i: usize) {
        let more = match self.plan {
            Plan::Count(m) => self.conns[i].messages < m,
            Plan::ClosedLoop => !self.ended,
            Plan::Rate { .. } => false,
        };
        if more {
            self.enqueue(i, Instant::now());
            self.pump(i);
        } else {
            self.begin_close(i);
        }
    }

    fn enqueue(&mut self, i: usize, start: Instant) {
        let c = &mut self.conns[i];
        c.queued += self.size;
        c.messages += 1;
        c.in_flight.push_back((c.queued, start));
    }

    fn begin_close(&mut self, i: usize) {
        if self.conns[i].state == State::Open {
            self.conns[i].state = State::Closing;
            self.pump(i);
        }
    }

    /// Sends queued bytes until done or the socket is full; shuts down
    /// writing once a closing connection has sent everything.
    fn pump(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_ref() else {
            return;
        };
        while c.sent < c.queued {
            let n = (c.queued - c.sent).min(CHUNK as u64) as usize;
            for (k, b) in self.buf[..n].iter_mut().enumerate() {
                *b = pattern(c.id, c.sent + k as u64);
            }
            match send_nosignal(stream.as_raw_fd(), &self.buf[..n]) {
                Ok(m) => c.sent += m as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("send: {e}"));
                    return;
                }
            }
        }
        if c.state == State::Closing && c.sent == c.queued && !c.write_shut {
            c.write_shut = true;
            if let Err(e) = stream.shutdown(Shutdown::Write) {
                self.fail(i, format!("shutdown: {e}"));
                return;
            }
        }
        self.update_interest(i);
    }

    /// Reads and checks echoed bytes until the socket is empty.
    fn on_readable(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let Some(mut stream) = c.stream.as_ref() else {
                return;
            };
            match stream.read(&mut self.buf) {
                Ok(0) => {
                    if c.state == State::Closing && c.write_shut && c.verified == c.sent {
                        self.finish(i, State::Done);
                    } else {
                        let lost = c.queued - c.verified;
                        self.fail(
                            i,
                            format!("server closed the connection with {lost} bytes not echoed"),
                        );
                    }
                    return;
                }
                Ok(n) => {
                    let bad = self.buf[..n]
                        .iter()
                        .enumerate()
                        .filter(|&(k, &b)| {
                            let off = c.verified + k as u64;
                            off >= c.sent || b != pattern(c.id, off)
                        })
                        .count();
                    if bad > 0 {
                        self.corrupt += bad as u64;
                        let at = c.verified;
                        self.fail(
                            i,
                            format!("{bad} wrong bytes among {n} echoed from offset {at}"),
                        );
                        return;
                    }
                    c.verified += n as u64;
                    self.completed(i);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("recv: {e}"));
                    return;
                }
            }
        }
    }

    /// Records the messages that are now fully echoed, and sends the next.
    fn completed(&mut self, i: usize) {
        let now = Instant::now();
        let mut done = 0;
        let c = &mut self.conns[i];
        while let Some(&(end, start)) = c.in_flight.front() {
            if end > c.verified {
                break;
            }
            c.in_flight.pop_front();
            done += 1;
            let ns = now.duration_since(start).as_nanos().min(u64::MAX as u128) as u64;
            self.second.record(ns);
        }
        self.second_msgs += done;
        if self.end.is_some_and(|end| now <= end) {
            self.in_window += done;
        }
        if done == 0 || !self.conns[i].in_flight.is_empty() {
            return;
        }
        match self.plan {
            Plan::Count(_) | Plan::ClosedLoop => self.next_message(i),
            Plan::Rate { .. } if self.ended => self.begin_close(i),
            Plan::Rate { .. } => {}
        }
    }

    fn update_interest(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_ref() else {
            return;
        };
        let mut want = Interest::READABLE;
        if c.sent < c.queued {
            want |= Interest::WRITABLE;
        }
        if want == c.interest {
            return;
        }
        match self
            .poller
            .modify(stream.as_raw_fd(), Token(i), want, Mode::Level)
        {
            Ok(()) => c.interest = want,
            Err(e) => self.fail(i, format!("modify: {e}")),
        }
    }

    fn fail(&mut self, i: usize, why: String) {
        if self.errors.len() < 10 {
            self.errors.push(format!("connection {i}: {why}"));
        }
        self.finish(i, State::Failed);
    }

    fn finish(&mut self, i: usize, state: State) {
        let c = &mut self.conns[i];
        if matches!(c.state, State::Done | State::Failed) {
            return;
        }
        if c.state == State::Connecting {
            self.connecting -= 1;
        }
        c.state = state;
        if let Some(s) = c.stream.take() {
            let _ = self.poller.unregister(s.as_raw_fd());
        }
        self.finished += 1;
        if i < self.active {
            self.active_finished += 1;
            if self.active_finished == self.active {
                // The idle connections were held for the active ones only.
                for j in self.active..self.conns.len() {
                    self.begin_close(j);
                }
            }
        }
        self.all_connected_check();
    }

    /// The summary as one line of JSON. Load mode: `msgs_per_sec` counts
    /// only the echoes that came back within the duration.
    fn print_json(
        &self,
        ok: usize,
        failed: usize,
        messages: u64,
        verified: u64,
        lost: u64,
        good: bool,
    ) {
        let (echoed, secs) = match self.duration.filter(|_| self.is_load()) {
            Some(d) => (self.in_window, d.as_secs_f64()),
            None => (self.total.total, self.start.elapsed().as_secs_f64()),
        };
        println!(
            "{{\"connections\":{},\"active\":{},\"ok\":{ok},\"failed\":{failed},\"messages\":{messages},\
             \"echoed\":{},\"bytes_verified\":{verified},\"lost\":{lost},\"corrupt\":{},\
             \"msgs_per_sec\":{:.1},\"p50_ns\":{},\"p99_ns\":{},\"good\":{good}}}",
            self.conns.len(),
            self.active,
            self.total.total,
            self.corrupt,
            echoed as f64 / secs,
            self.total.quantile(0.50),
            self.total.quantile(0.99),
        );
    }

    /// Prints what was seen; returns whether everything came back.
    fn report(&mut self) -> bool {
        let last = mem::replace(&mut self.second, Histogram::new());
        self.total.merge(&last);
        let ok = self.conns.iter().filter(|c| c.state == State::Done).count();
        let failed = self.conns.len() - ok;
        let unfinished = self
            .conns
            .iter()
            .filter(|c| !matches!(c.state, State::Done | State::Failed))
            .count();
        let sent: u64 = self.conns.iter().map(|c| c.sent).sum();
        let verified: u64 = self.conns.iter().map(|c| c.verified).sum();
        let lost = sent - verified;
        let messages: u64 = self.conns.iter().map(|c| c.messages).sum();
        for e in &self.errors {
            eprintln!("{PROG}: {e}");
        }
        if self.timed_out {
            eprintln!("{PROG}: gave up on {unfinished} unfinished connections after the timeout");
        }
        if let Some(at) = self.connected_at {
            println!(
                "{PROG}: connections: {ok} ok, {failed} failed (set up in {}; open at once: {})",
                human_nanos(at.duration_since(self.start).as_nanos() as f64),
                self.held
            );
        } else {
            println!("{PROG}: connections: {ok} ok, {failed} failed");
        }
        println!(
            "{PROG}: messages: {messages}; bytes sent: {sent}, verified: {verified}, lost: {lost}, \
             corrupt: {}",
            self.corrupt
        );
        if self.is_load() {
            let secs = self.duration.unwrap_or_default().as_secs_f64();
            let echoed = self.total.total;
            println!(
                "{PROG}: throughput: {:.0} msg/s, {}/s each way over {secs:.1} s",
                echoed as f64 / secs,
                human_bytes(echoed as f64 * self.size as f64 / secs)
            );
            println!("{PROG}: latency: {}", self.total.summary());
        }
        let good = failed == 0 && lost == 0 && self.corrupt == 0;
        println!("{PROG}: {}", if good { "OK" } else { "FAILED" });
        if self.json {
            self.print_json(ok, failed, messages, verified, lost, good);
        }
        good
    }
}
