//! Scale: 10 000 concurrent TCP connections on loopback through one poller.
//!
//! The test process runs an echo server on the poller under test; client
//! processes (this same test binary, re-run with [`CLIENT_ENV`] set) open
//! the connections, send a distinct message on every one of them, twice,
//! and check every echo byte for byte. The client is another process
//! because a process may hold 20 000 descriptors here (the hard
//! `RLIMIT_NOFILE`, which only `CAP_SYS_RESOURCE` can raise), and the two
//! ends of 10 000 connections need more.
//!
//! A client connects in batches of [`BATCH`] and waits until the server
//! tells it (a line on its stdin) that it has accepted the batch, so the
//! listen backlog (1024, as far as `net.core.somaxconn` allows) never
//! overflows and no connect depends on SYN retransmission. No client sends
//! before the server has accepted every connection of every client, and the
//! server closes each connection once it has echoed both rounds (so the
//! TIME_WAIT state lands on the server's port, not on the clients'
//! ephemeral ports); the client then checks for a clean end of stream.
//!
//! * epoll (level and edge) and poll must hold all 10 000 connections at
//!   once (the server counts its peak of live registrations) and lose or
//!   corrupt no byte.
//! * select must refuse every descriptor at or above `FD_SETSIZE` with
//!   `FdOutOfRange`, and keep serving the ones below it.
//! * `stretch_50k_epoll` (ignored; `scripts/stretch-50k.sh` runs it in
//!   release mode) does 50 000 connections from five client processes bound
//!   to 127.0.0.2 to 127.0.0.6: one source address has only about 28 000
//!   ephemeral ports towards one server port. It needs a hard descriptor
//!   limit above 50 000 for the server process.
//!
//! Every run is bounded: a deadline fails the test instead of hanging,
//! client sockets carry read and write timeouts, and a client process that
//! outlives the deadline is killed. The tests of this file take turns (a
//! process-wide lock), and each checks that the server side leaks no
//! descriptor.

mod common;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tripoll::{AnyPoller, Backend, Error, Events, Interest, Mode, Poller, Token, FD_SETSIZE};

/// Serialises the tests of this binary: their descriptor budgets and the
/// leak checks would not survive running side by side.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Set in a client process: `server address;source address;connections;select`.
const CLIENT_ENV: &str = "TRIPOLL_SCALE_CLIENT";
/// The line a client process prints its result on.
const REPORT_PREFIX: &str = "SCALE-CLIENT-REPORT";

const LISTENER: Token = Token(usize::MAX - 1);
const BACKLOG: i32 = 1024;
/// Connections a client opens before it waits for the server to accept
/// them; five clients at once stay under the backlog.
const BATCH: usize = 128;
const MSG_LEN: usize = 100;
const ROUNDS: usize = 2;
const CONNS: usize = 10_000;
/// Safety net only: a healthy debug run takes seconds.
const DEADLINE_SECS: u64 = 300;

// ---------------------------------------------------------------------------
// Sockets made with libc, for what std cannot do: a chosen backlog, and a
// source address bound before connecting.

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn cvt(res: libc::c_int) -> io::Result<libc::c_int> {
    if res == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res)
    }
}

fn tcp_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket(2) just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: &OwnedFd, addr: SocketAddrV4) -> io::Result<()> {
    let sa = sockaddr(addr);
    // SAFETY: `sa` is a valid sockaddr_in and the length matches it.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A nonblocking listener on 127.0.0.1 with a backlog of [`BACKLOG`].
fn listener() -> io::Result<TcpListener> {
    let fd = tcp_socket()?;
    bind(&fd, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    // SAFETY: listen(2) on a socket we own.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) })?;
    let l = TcpListener::from(fd);
    l.set_nonblocking(true)?;
    Ok(l)
}

/// A blocking connection from `src` (any port) to `dst`.
fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    let fd = tcp_socket()?;
    // Let connect pick the port: a port chosen at bind time must be free
    // for every destination, a search that grows with each socket bound.
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid c_int and the length matches it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    bind(&fd, SocketAddrV4::new(src, 0))?;
    let sa = sockaddr(dst);
    // SAFETY: `sa` is a valid sockaddr_in and the length matches it.
    let res = cvt(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    });
    match res {
        Ok(_) => Ok(TcpStream::from(fd)),
        // An interrupted blocking connect goes on in the background.
        Err(e) if e.kind() == ErrorKind::Interrupted => wait_connected(fd),
        Err(e) => Err(e),
    }
}

fn wait_connected(fd: OwnedFd) -> io::Result<TcpStream> {
    let s = TcpStream::from(fd);
    s.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s.peer_addr() {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::NotConnected && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    s.set_nonblocking(false)?;
    Ok(s)
}

// ---------------------------------------------------------------------------
// Messages and reports

/// The message of connection `i` in `round`: its number, then bytes that
/// depend on both, so a byte delivered to the wrong connection or out of
/// place shows.
fn message(i: usize, round: usize) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    let head = format!("conn {i:06} round {round} ");
    m[..head.len()].copy_from_slice(head.as_bytes());
    for (k, b) in m.iter_mut().enumerate().skip(head.len()) {
        *b = ((i * 31 + round * 7 + k) % 251) as u8;
    }
    m
}

#[derive(Debug, Default)]
struct ServerReport {
    accepted: usize,
    /// Connections refused by `register` with `FdOutOfRange` (select).
    refused: usize,
    /// The highest descriptor the server registered.
    max_registered_fd: RawFd,
    peak_live: usize,
    bytes_echoed: usize,
    /// Connections the server closed after echoing all they sent.
    completed: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ClientReport {
    /// Connections that got every echo, byte for byte.
    served: usize,
    /// Connections the server closed without an echo (select only).
    refused: usize,
}

// ---------------------------------------------------------------------------
// The client process

/// Entry point of a client process, not a test: the parent re-runs this
/// binary with `--ignored --exact client_process` and [`CLIENT_ENV`] set.
/// Run by hand without the variable, it does nothing.
#[test]
#[ignore = "entry point of the client processes that the scale tests start"]
fn client_process() {
    let Ok(spec) = std::env::var(CLIENT_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(';').collect();
    let [server, source, conns, select] = parts[..] else {
        panic!("bad {CLIENT_ENV}: {spec:?}");
    };
    let server: SocketAddrV4 = server.parse().expect("server address");
    let source: Ipv4Addr = source.parse().expect("source address");
    let conns: usize = conns.parse().expect("connection count");
    let select = select == "1";
    tripoll::raise_fd_limit(conns as u64 + 100).expect("raise_fd_limit");
    match client(server, source, conns, select) {
        Ok(r) => println!("{REPORT_PREFIX} served={} refused={}", r.served, r.refused),
        Err(e) => panic!("client from {source}: {e}"),
    }
}

fn client(
    server: SocketAddrV4,
    source: Ipv4Addr,
    conns: usize,
    select: bool,
) -> Result<ClientReport, String> {
    let mut acks = io::stdin().lock();
    let mut line = String::new();
    let mut acked = 0;
    let mut streams = Vec::with_capacity(conns);
    while streams.len() < conns {
        let batch_end = (streams.len() + BATCH).min(conns);
        while streams.len() < batch_end {
            let s = connect_from(source, server)
                .map_err(|e| format!("connect #{}: {e}", streams.len()))?;
            s.set_read_timeout(Some(Duration::from_secs(60)))
                .and_then(|()| s.set_write_timeout(Some(Duration::from_secs(60))))
                .map_err(|e| format!("timeouts: {e}"))?;
            streams.push(Some(s));
        }
        // Let the server take this batch off the backlog first.
        while acked < streams.len() {
            line.clear();
            match acks.read_line(&mut line) {
                Ok(0) => return Err("the server closed the acknowledgement pipe".into()),
                Ok(_) => {
                    acked = line
                        .trim()
                        .parse()
                        .map_err(|e| format!("ack {line:?}: {e}"))?
                }
                Err(e) => return Err(format!("reading acks: {e}")),
            }
        }
    }

    // Every client's connections are open before anyone sends: the server
    // says "go" when it has accepted them all.
    loop {
        line.clear();
        match acks.read_line(&mut line) {
            Ok(0) => return Err("the server closed the acknowledgement pipe".into()),
            Ok(_) if line.trim() == "go" => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading acks: {e}")),
        }
    }

    let mut report = ClientReport::default();
    for round in 0..ROUNDS {
        // Every message in flight at once, then every echo.
        for (i, s) in streams.iter_mut().enumerate() {
            let Some(stream) = s.as_mut() else { continue };
            if let Err(e) = stream.write_all(&message(i, round)) {
                // A select server closes the ones it cannot register.
                if select && round == 0 && is_reset(&e) {
                    report.refused += 1;
                    *s = None;
                    continue;
                }
                return Err(format!("write on #{i}, round {round}: {e}"));
            }
        }
        for (i, s) in streams.iter_mut().enumerate() {
            let Some(stream) = s.as_mut() else { continue };
            let mut got = [0u8; MSG_LEN];
            match read_full(stream, &mut got) {
                Ok(MSG_LEN) if got == message(i, round) => {}
                Ok(MSG_LEN) => {
                    return Err(format!(
                        "#{i}, round {round}: echo {:?} is not {:?}",
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&message(i, round))
                    ))
                }
                Ok(0) if select && round == 0 => {
                    report.refused += 1;
                    *s = None;
                }
                Err(e) if select && round == 0 && is_reset(&e) => {
                    report.refused += 1;
                    *s = None;
                }
                Ok(n) => return Err(format!("#{i}, round {round}: echo cut at {n} bytes")),
                Err(e) => return Err(format!("read on #{i}, round {round}: {e}")),
            }
        }
    }
    // The server closes each connection once it has echoed everything:
    // nothing more may arrive.
    for (i, s) in streams.iter_mut().enumerate() {
        let Some(stream) = s.as_mut() else { continue };
        let mut extra = [0u8; 16];
        match read_full(stream, &mut extra) {
            Ok(0) => report.served += 1,
            other => return Err(format!("#{i}: expected end of stream, got {other:?}")),
        }
    }
    Ok(report)
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A client process as the server sees it.
struct ClientProc {
    child: Child,
    /// Acknowledgements go here.
    acks: ChildStdin,
    conns: usize,
    accepted: usize,
    next_ack: usize,
}

impl ClientProc {
    fn spawn(server: SocketAddrV4, source: Ipv4Addr, conns: usize, select: bool) -> ClientProc {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args(["--ignored", "--exact", "client_process", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(
                CLIENT_ENV,
                format!("{server};{source};{conns};{}", u8::from(select)),
            )
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client process");
        let acks = child.stdin.take().expect("piped stdin");
        ClientProc {
            child,
            acks,
            conns,
            accepted: 0,
            next_ack: BATCH.min(conns),
        }
    }

    /// Counts one accepted connection; tells the client when a batch of
    /// its connections is off the backlog.
    fn accepted_one(&mut self) -> Result<(), String> {
        self.accepted += 1;
        if self.accepted >= self.next_ack {
            writeln!(self.acks, "{}", self.accepted).map_err(|e| format!("ack: {e}"))?;
            self.next_ack = (self.next_ack + BATCH).min(self.conns);
        }
        Ok(())
    }

    /// Tells the client that every client is connected.
    fn go(&mut self) -> Result<(), String> {
        writeln!(self.acks, "go").map_err(|e| format!("go: {e}"))
    }

    /// The client's exit status if it has failed already.
    fn failed(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) if !status.success() => Some(format!("client exited with {status}")),
            _ => None,
        }
    }

    /// Waits for the client to exit (killing it at the deadline) and reads
    /// its report.
    fn finish(mut self, deadline: Instant) -> Result<ClientReport, String> {
        drop(self.acks);
        let status = loop {
            match self.child.try_wait().map_err(|e| format!("wait: {e}"))? {
                Some(status) => break status,
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("client process still running at the deadline; killed".into());
                }
                None => thread::sleep(Duration::from_millis(10)),
            }
        };
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        if !status.success() {
            return Err(format!("client process {status}:\n{out}\n{err}"));
        }
        let line = BufReader::new(out.as_bytes())
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split_once(REPORT_PREFIX).map(|(_, rest)| rest.to_owned()))
            .ok_or_else(|| format!("no report from the client:\n{out}\n{err}"))?;
        let field = |name: &str| -> Result<usize, String> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad report {line:?}"))
        };
        Ok(ClientReport {
            served: field("served=")?,
            refused: field("refused=")?,
        })
    }
}

// ---------------------------------------------------------------------------
// The echo server

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    echoed: usize,
    /// Level mode: whether writable interest is on.
    writing: bool,
}

struct Server {
    backend: Backend,
    mode: Mode,
    conns_expected: usize,
    deadline: Instant,
    poller: AnyPoller,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    report: ServerReport,
    /// Client processes by source address.
    clients: HashMap<Ipv4Addr, ClientProc>,
}

impl Server {
    fn accept_all(&mut self) -> Result<(), String> {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("accept: {e}")),
            };
            self.report.accepted += 1;
            stream
                .set_nonblocking(true)
                .map_err(|e| format!("set_nonblocking: {e}"))?;
            let fd = stream.as_raw_fd();
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let interest = match self.mode {
                Mode::Edge => Interest::READABLE | Interest::WRITABLE,
                _ => Interest::READABLE,
            };
            match self.poller.register(fd, Token(slot), interest, self.mode) {
                Ok(()) => {
                    self.report.max_registered_fd = self.report.max_registered_fd.max(fd);
                    self.conns[slot] = Some(Conn {
                        stream,
                        out: Vec::new(),
                        echoed: 0,
                        writing: false,
                    });
                    self.live += 1;
                    self.report.peak_live = self.report.peak_live.max(self.live);
                }
                Err(Error::FdOutOfRange { fd: f, limit }) if self.backend == Backend::Select => {
                    if f != fd || limit != FD_SETSIZE || (fd as usize) < FD_SETSIZE {
                        return Err(format!(
                            "bad FdOutOfRange {{ fd: {f}, limit: {limit} }} for fd {fd}"
                        ));
                    }
                    self.report.refused += 1;
                    self.free.push(slot);
                    // Dropping the stream closes the connection.
                }
                Err(e) => return Err(format!("register fd {fd}: {e}")),
            }
            let ip = match peer.ip() {
                IpAddr::V4(ip) => ip,
                IpAddr::V6(ip) => return Err(format!("IPv6 peer {ip}")),
            };
            self.clients
                .get_mut(&ip)
                .ok_or_else(|| format!("connection from unknown {peer}"))?
                .accepted_one()?;
            if self.report.accepted == self.conns_expected {
                for c in self.clients.values_mut() {
                    c.go()?;
                }
            }
        }
    }

    fn close(&mut self, slot: usize) -> Result<(), String> {
        let conn = self.conns[slot].take().ok_or("closing a free slot")?;
        self.poller
            .unregister(conn.stream.as_raw_fd())
            .map_err(|e| format!("unregister: {e}"))?;
        self.free.push(slot);
        self.live -= 1;
        Ok(())
    }

    /// Reads what there is and echoes it; closes the connection once all
    /// its rounds are echoed (the server closes first, so the client's
    /// ephemeral ports are not left in TIME_WAIT).
    fn serve(&mut self, slot: usize) -> Result<(), String> {
        let mut buf = [0u8; 4096];
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Err(format!("event for free slot {slot}"));
        };
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return Err(format!("slot {slot}: the client closed first")),
                Ok(n) => conn.out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("server read: {e}")),
            }
        }
        while !conn.out.is_empty() {
            match conn.stream.write(&conn.out) {
                Ok(n) => {
                    self.report.bytes_echoed += n;
                    conn.echoed += n;
                    conn.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("server write: {e}")),
            }
        }
        if conn.echoed == MSG_LEN * ROUNDS {
            self.report.completed += 1;
            return self.close(slot);
        }
        if self.mode == Mode::Level {
            let want = !conn.out.is_empty();
            if want != conn.writing {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                conn.writing = want;
                let fd = conn.stream.as_raw_fd();
                self.poller
                    .modify(fd, Token(slot), interest, Mode::Level)
                    .map_err(|e| format!("modify: {e}"))?;
            }
        }
        Ok(())
    }

    /// Serves until every expected connection was accepted, echoed and
    /// closed.
    fn run(&mut self) -> Result<(), String> {
        self.poller
            .register(
                self.listener.as_raw_fd(),
                LISTENER,
                Interest::READABLE,
                Mode::Level,
            )
            .map_err(|e| format!("register listener: {e}"))?;
        let mut events = Events::with_capacity(1024);
        while self.report.accepted < self.conns_expected || self.live > 0 {
            if Instant::now() > self.deadline {
                return Err(format!("deadline passed: {:?}", self.report));
            }
            for c in self.clients.values_mut() {
                if let Some(e) = c.failed() {
                    return Err(e);
                }
            }
            self.poller
                .wait(&mut events, Some(Duration::from_millis(100)))
                .map_err(|e| format!("wait: {e}"))?;
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    self.accept_all()?;
                } else {
                    self.serve(ev.token().0)?;
                }
            }
        }
        self.poller
            .unregister(self.listener.as_raw_fd())
            .map_err(|e| format!("unregister listener: {e}"))
    }
}

// ---------------------------------------------------------------------------
// One run

struct Outcome {
    server: ServerReport,
    clients: Vec<ClientReport>,
}

impl Outcome {
    fn client_total(&self) -> ClientReport {
        self.clients
            .iter()
            .fold(ClientReport::default(), |a, c| ClientReport {
                served: a.served + c.served,
                refused: a.refused + c.refused,
            })
    }
}

/// Serves `conns` connections split evenly over one client process per
/// source address.
fn run(backend: Backend, mode: Mode, conns: usize, sources: &[Ipv4Addr], secs: u64) -> Outcome {
    let wanted = conns as u64 + 200;
    let limit = tripoll::raise_fd_limit(wanted).expect("raise_fd_limit");
    assert!(
        limit >= wanted,
        "the server needs {wanted} descriptors; the hard limit allows {limit}"
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let fds_before = common::open_fds();

    let listener = listener().expect("listener");
    let addr = match listener.local_addr().expect("local_addr") {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    };
    let select = backend == Backend::Select;
    let per_client = conns / sources.len();
    assert_eq!(per_client * sources.len(), conns, "uneven split");
    let clients = sources
        .iter()
        .map(|&src| (src, ClientProc::spawn(addr, src, per_client, select)))
        .collect();
    let mut server = Server {
        backend,
        mode,
        conns_expected: conns,
        deadline,
        poller: AnyPoller::new(backend).expect("poller"),
        listener,
        conns: Vec::with_capacity(conns),
        free: Vec::new(),
        live: 0,
        report: ServerReport::default(),
        clients,
    };
    let served = server.run();
    let Server {
        report,
        clients,
        poller,
        listener,
        conns: leftover,
        ..
    } = server;
    drop((poller, listener, leftover));
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for (src, c) in clients {
        match c.finish(deadline) {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(format!("client {src}: {e}")),
        }
    }
    if let Err(e) = served {
        errors.insert(0, format!("server: {e}"));
    }
    assert!(errors.is_empty(), "[{backend}] {}", errors.join("\n"));
    common::assert_no_new_fds(&fds_before, &format!("[{backend}]"));
    Outcome {
        server: report,
        clients: reports,
    }
}

/// Every connection held at once and every byte echoed intact.
fn assert_all_served(o: &Outcome, conns: usize) {
    let s = &o.server;
    assert_eq!(s.accepted, conns, "{s:?}");
    assert_eq!(s.refused, 0, "{s:?}");
    assert_eq!(
        s.peak_live, conns,
        "never held every connection at once: {s:?}"
    );
    assert_eq!(s.completed, conns, "{s:?}");
    assert_eq!(s.bytes_echoed, conns * MSG_LEN * ROUNDS, "{s:?}");
    let c = o.client_total();
    assert_eq!(
        c,
        ClientReport {
            served: conns,
            refused: 0
        }
    );
}

/// 10 000 connections on one backend, level- and edge-triggered: every
/// one served where the backend takes any descriptor number; where it does
/// not (select), the numbers from `FD_SETSIZE` up refused with a typed error
/// and the rest served. A backend without edge mode refuses it.
macro_rules! holds_10k {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn holds_10k_connections_level() {
                holds_10k($backend, Mode::Level);
            }

            #[test]
            fn holds_10k_connections_edge() {
                holds_10k($backend, Mode::Edge);
            }
        }
    };
}

common::for_each_backend!(holds_10k);

fn holds_10k(backend: Backend, mode: Mode) {
    let poller = AnyPoller::new(backend).expect("poller");
    if !poller.supports(mode) {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let refused = poller.register(a.as_raw_fd(), tripoll::Token(0), Interest::READABLE, mode);
        assert!(
            matches!(refused, Err(tripoll::Error::Unsupported { .. })),
            "{refused:?}"
        );
        return;
    }
    let bounded = !poller
        .capabilities()
        .contains(tripoll::Capabilities::UNBOUNDED_FDS);
    drop(poller);
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let o = run(backend, mode, CONNS, &[Ipv4Addr::LOCALHOST], DEADLINE_SECS);
    if bounded {
        assert_refuses_from_fd_setsize_up_and_serves_the_rest(&o);
    } else {
        assert_all_served(&o, CONNS);
    }
}

fn assert_refuses_from_fd_setsize_up_and_serves_the_rest(o: &Outcome) {
    let s = &o.server;
    assert_eq!(s.accepted, CONNS, "{s:?}");
    // The descriptors below 1024 that the test process has free.
    assert!(s.refused > 8_000 && s.refused < CONNS, "{s:?}");
    assert!((s.max_registered_fd as usize) < FD_SETSIZE, "{s:?}");
    let served = CONNS - s.refused;
    assert_eq!(s.peak_live, served, "{s:?}");
    assert_eq!(s.completed, served, "{s:?}");
    assert_eq!(s.bytes_echoed, served * MSG_LEN * ROUNDS, "{s:?}");
    assert_eq!(
        o.client_total(),
        ClientReport {
            served,
            refused: s.refused
        }
    );
}

/// 50 000 connections through epoll (edge-triggered), from five client
/// processes bound to 127.0.0.2 to 127.0.0.6. `scripts/stretch-50k.sh`
/// runs it in release mode; `TRIPOLL_STRETCH_CONNS` (a multiple of five)
/// changes the count. The server process needs a hard descriptor limit
/// above the count.
#[test]
#[ignore = "stretch: 50 000 connections; run scripts/stretch-50k.sh"]
fn stretch_50k_epoll() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let conns = std::env::var("TRIPOLL_STRETCH_CONNS")
        .ok()
        .map(|v| v.parse().expect("TRIPOLL_STRETCH_CONNS"))
        .unwrap_or(50_000);
    let sources: Vec<Ipv4Addr> = (2..=6).map(|d| Ipv4Addr::new(127, 0, 0, d)).collect();
    let started = Instant::now();
    let o = run(Backend::Epoll, Mode::Edge, conns, &sources, 900);
    assert_all_served(&o, conns);
    println!(
        "stretch: {conns} connections from {} sources, {} bytes echoed, peak {} live, in {:.1?}",
        sources.len(),
        o.server.bytes_echoed,
        o.server.peak_live,
        started.elapsed()
    );
}
