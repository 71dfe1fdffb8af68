//! One reactor's share of the server: its listener, its connections, their
//! idle timers and the cached `Date`.
//!
//! Everything here lives on one thread, so the state the callbacks share is
//! in `Rc`s and `Cell`s.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tripoll::reactor::{Context, Reactor, TimerId};
use tripoll::{Event, Interest, Mode, Token};

use crate::common::{self, send_nosignal, LogLimit, Shed, Spare, ACCEPT_PAUSE};
use crate::date::{self, DATE_LEN};
use crate::proto::{self, Limits, Parsed, Persist, Request, Responses, Status};
use crate::PROG;

/// Connections accepted per readiness report of the listener, so a flood of
/// connects cannot starve the connections already open.
const ACCEPTS_PER_TURN: usize = 64;
/// The input buffer grows by this much when less than half of it is free.
const READ_CHUNK: usize = 8 * 1024;
/// Rounds of answering and sending per report, when the socket takes
/// every response and requests are left.
const SERVE_ROUNDS: usize = 8;
/// Reads per report while discarding input after the last response.
const LINGER_READS: usize = 4;
/// The longest a connection lingers after its last response.
const MAX_LINGER: Duration = Duration::from_secs(2);

/// What one reactor's connections obey.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// A connection that completes no request for this long is closed.
    pub idle: Duration,
    /// Output a connection may have pending before the server stops reading
    /// (and parsing) its requests until the peer catches up.
    pub max_pending: usize,
    /// The budget for the buffers of all connections of the process
    /// together (every thread's): see [`BUFFERED`].
    pub max_buffered: usize,
    pub limits: Limits,
}

/// What the input and output buffers of every connection hold, summed over
/// all threads (their capacity: what the allocator gave). While it is at or
/// over the budget, a connection with output pending reads nothing more;
/// if it passes the budget, a connection left holding unsent output after
/// its turn is closed. A client that reads its responses has none pending
/// after its turn, so it is served throughout.
static BUFFERED: AtomicUsize = AtomicUsize::new(0);
/// The most [`BUFFERED`] ever was.
static PEAK_BUFFERED: AtomicUsize = AtomicUsize::new(0);

/// The most the buffers of all connections held together.
pub fn peak_buffered() -> usize {
    PEAK_BUFFERED.load(Ordering::Relaxed)
}

/// What one reactor did, summed over threads at shutdown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub connections: u64,
    /// Connections closed at once: out of descriptors, or the poller would
    /// not take them (select past `FD_SETSIZE`).
    pub refused: u64,
    /// Responses to requests, errors included.
    pub requests: u64,
    /// Responses with a 4xx or 5xx status.
    pub errors: u64,
    /// Connections closed by the idle timer.
    pub timeouts: u64,
    /// The most output one connection had pending.
    pub peak_pending: usize,
    /// Times the listener was paused: out of descriptors, no spare.
    pub pauses: u64,
    /// Connections closed because the process was over its buffer budget.
    pub shed_budget: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.connections += other.connections;
        self.refused += other.refused;
        self.requests += other.requests;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.peak_pending = self.peak_pending.max(other.peak_pending);
        self.pauses += other.pauses;
        self.shed_budget += other.shed_budget;
    }
}

/// State every callback of one reactor shares.
pub struct Shared {
    settings: Settings,
    responses: Responses,
    /// The `Date` value, rendered once a second by a timer.
    date: Cell<[u8; DATE_LEN]>,
    stats: Cell<Stats>,
    warned_register: Cell<bool>,
    /// Recurring trouble (out of descriptors, over the budget) is reported
    /// at most once a second.
    log: RefCell<LogLimit>,
}

impl Shared {
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }
}

/// Sets up a reactor to serve `listener` (already non-blocking): the accept
/// handler and the clock.
pub fn start(
    reactor: &mut Reactor,
    listener: TcpListener,
    settings: Settings,
) -> io::Result<Rc<Shared>> {
    let shared = Rc::new(Shared {
        settings,
        responses: Responses::new(),
        date: Cell::new(date::now()),
        stats: Cell::new(Stats::default()),
        warned_register: Cell::new(false),
        log: RefCell::new(LogLimit::new(Duration::from_secs(1))),
    });

    // The date changes on the second: tick just after each boundary, so the
    // cached value is never a second behind.
    let clock = Rc::clone(&shared);
    reactor.set_timer(until_next_second(), move |ctx, _| {
        clock.date.set(date::now());
        ctx.set_interval(Duration::from_secs(1), move |_, _| {
            clock.date.set(date::now());
            Ok(())
        })?;
        Ok(())
    })?;

    let mut spare = Spare::new()?;
    let acceptor = Rc::clone(&shared);
    reactor.register_owned(
        listener,
        Interest::READABLE,
        Mode::Level,
        move |ctx, listener, ev| {
            accept(ctx, listener, ev.token(), &acceptor, &mut spare);
            Ok(())
        },
    )?;
    Ok(shared)
}

fn until_next_second() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(1_000_000_000 - nanos)) + Duration::from_millis(1)
}

/// Accepts what the backlog holds, up to [`ACCEPTS_PER_TURN`]. Never fails:
/// an error that is not about one connection is reported and accepting
/// resumes on the next report.
///
/// Out of descriptors, the spare sheds connections one by one. When this
/// thread has no spare to shed with (another thread's accept took the
/// number it freed), the listener is paused: its interest is dropped for
/// [`ACCEPT_PAUSE`], so its level-triggered readiness does not make the
/// loop spin, and a timer restores it; the next report tries to take the
/// spare back first.
fn accept(
    ctx: &mut Context,
    listener: &mut TcpListener,
    token: Token,
    shared: &Rc<Shared>,
    spare: &mut Spare,
) {
    for _ in 0..ACCEPTS_PER_TURN {
        match listener.accept() {
            Ok((stream, _)) => add(ctx, stream, shared),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if common::is_fd_exhaustion(&e) => {
                match spare.shed(listener, || shared.count(|s| s.refused += 1)) {
                    Shed::Refused => {}
                    Shed::Empty => return,
                    Shed::Pause => {
                        pause_accepting(ctx, token, shared);
                        return;
                    }
                }
            }
            // The connection died in the backlog, or a transient error.
            Err(e) if common::is_per_connection(&e) => {}
            Err(e) => {
                shared
                    .log
                    .borrow_mut()
                    .note(PROG, format_args!("accept: {e}"));
                return;
            }
        }
    }
}

/// Stops watching the listener for [`ACCEPT_PAUSE`]. If the listener cannot
/// be paused or resumed (the poller refused), it is left watched: the loop
/// may then turn more often, but it still serves.
fn pause_accepting(ctx: &mut Context, token: Token, shared: &Rc<Shared>) {
    shared.count(|s| s.pauses += 1);
    shared.log.borrow_mut().note(
        PROG,
        format_args!(
            "out of descriptors and no spare to shed with: not accepting for {} ms",
            ACCEPT_PAUSE.as_millis()
        ),
    );
    if ctx.modify(token, Interest::empty(), Mode::Level).is_err() {
        return;
    }
    let resumed = ctx.set_timer(ACCEPT_PAUSE, move |ctx, _| {
        // The listener lives as long as the reactor: this cannot fail for
        // an unknown token, and a refusal leaves it paused for no longer
        // than the next attempt, so say so.
        if let Err(e) = ctx.modify(token, Interest::READABLE, Mode::Level) {
            eprintln!("{PROG}: cannot resume accepting: {e}");
        }
        Ok(())
    });
    if resumed.is_err() {
        let _ = ctx.modify(token, Interest::READABLE, Mode::Level);
    }
}

/// Registers a new connection and its idle timer.
fn add(ctx: &mut Context, stream: TcpStream, shared: &Rc<Shared>) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    // Responses go out in one write per batch; Nagle would hold the next
    // batch back until the peer acknowledges the last one.
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + shared.settings.idle;
    let idle = Rc::new(Idle {
        deadline: Cell::new(deadline),
        armed: Cell::new(None),
        partial: Cell::new(false),
    });
    let conn = Conn {
        stream,
        inbuf: Vec::new(),
        filled: 0,
        out: Vec::new(),
        sent: 0,
        body_left: 0,
        owed: None,
        phase: Phase::Open,
        backlog: false,
        read_closed: false,
        interest: Interest::READABLE,
        peak: 0,
        accounted: 0,
        idle: Rc::clone(&idle),
        shared: Rc::clone(shared),
    };
    let token = match ctx.register_owned(conn, Interest::READABLE, Mode::Level, on_event) {
        Ok(token) => token,
        Err(e) => {
            // Select takes no descriptor from FD_SETSIZE up, for one: this
            // connection is closed, the others go on.
            if !shared.warned_register.replace(true) {
                eprintln!("{PROG}: refusing connections: {e}");
            }
            shared.count(|s| s.refused += 1);
            return;
        }
    };
    if arm_idle(ctx, idle, Rc::clone(shared), token, deadline).is_err() {
        let _ = ctx.unregister(token);
        shared.count(|s| s.refused += 1);
        return;
    }
    shared.count(|s| s.connections += 1);
}

/// A connection's idle timeout. The deadline moves on with each complete
/// request, not with each byte, so a client that trickles a request in
/// byte by byte is still cut. The timer is not moved with it (that would
/// cost a timer per request): when it fires before the deadline it is set
/// again for the deadline.
struct Idle {
    deadline: Cell<Instant>,
    /// The pending timer and when it fires.
    armed: Cell<Option<(TimerId, Instant)>>,
    /// A request has begun and is not complete, and nothing is waiting to
    /// be sent: a timeout then gets a 408 before the close.
    partial: Cell<bool>,
}

fn arm_idle(
    ctx: &mut Context,
    idle: Rc<Idle>,
    shared: Rc<Shared>,
    token: Token,
    at: Instant,
) -> tripoll::reactor::Result<()> {
    let this = Rc::clone(&idle);
    let id = ctx.set_timer_at(at, move |ctx, _| {
        this.armed.set(None);
        on_idle(ctx, this, shared, token);
        Ok(())
    })?;
    idle.armed.set(Some((id, at)));
    Ok(())
}

/// Moves the deadline to `at`, which may be earlier than the pending timer
/// (the short linger after the last response).
fn set_deadline(ctx: &mut Context, conn: &Conn, token: Token, at: Instant) {
    conn.idle.deadline.set(at);
    let Some((id, fires)) = conn.idle.armed.get() else {
        return;
    };
    if at >= fires {
        return; // the timer fires first and moves itself on
    }
    ctx.cancel_timer(id);
    conn.idle.armed.set(None);
    let res = arm_idle(
        ctx,
        Rc::clone(&conn.idle),
        Rc::clone(&conn.shared),
        token,
        at,
    );
    if res.is_err() {
        let _ = ctx.unregister(token);
    }
}

fn on_idle(ctx: &mut Context, idle: Rc<Idle>, shared: Rc<Shared>, token: Token) {
    let Some(fd) = ctx.fd_of(token) else {
        return; // closed meanwhile
    };
    let deadline = idle.deadline.get();
    if Instant::now() < deadline {
        if arm_idle(ctx, idle, shared, token, deadline).is_err() {
            let _ = ctx.unregister(token);
        }
        return;
    }
    if idle.partial.get() {
        // Best effort, one try: the connection is closed either way.
        let mut out = Vec::with_capacity(256);
        shared.responses.write(
            &mut out,
            Status::RequestTimeout,
            Persist::Close,
            false,
            &shared.date.get(),
        );
        let _ = send_nosignal(fd, &out);
        shared.count(|s| s.errors += 1);
    }
    shared.count(|s| s.timeouts += 1);
    let _ = ctx.unregister(token); // drops the connection, closing it
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading requests and answering them.
    Open,
    /// The last response is queued (an error, or `Connection: close`);
    /// nothing more is read until it is sent.
    Closing,
    /// The last response is sent and the write side shut down; input is
    /// read and dropped until the peer closes or the linger deadline, so
    /// that unread input does not make the close a reset that could destroy
    /// the response before the peer reads it.
    Lingering,
}

/// What the handler does with a connection after driving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Open,
    Linger,
    Close,
}

struct Conn {
    stream: TcpStream,
    /// Input is `inbuf[..filled]`; the rest is room for the next read.
    inbuf: Vec<u8>,
    filled: usize,
    /// Output not yet sent is `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    /// Bytes of the current request's body still to be discarded, and the
    /// response owed once they are.
    body_left: u64,
    owed: Option<Request>,
    phase: Phase,
    /// Answering stopped at the output cap with input left in the buffer.
    backlog: bool,
    /// The peer sent its last byte.
    read_closed: bool,
    /// The interest currently registered.
    interest: Interest,
    peak: usize,
    /// What this connection's buffers add to [`BUFFERED`].
    accounted: usize,
    idle: Rc<Idle>,
    shared: Rc<Shared>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        BUFFERED.fetch_sub(self.accounted, Ordering::Relaxed);
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

/// The handler of every connection.
fn on_event(ctx: &mut Context, conn: &mut Conn, ev: Event) -> io::Result<()> {
    let token = ev.token();
    let next = match conn.drive(ev) {
        Ok(next) => next,
        Err(_) => Next::Close, // reset by the peer, or the like
    };
    let total = conn.account();
    let budget = conn.shared.settings.max_buffered;
    if next != Next::Close && total > budget && conn.pending() > 0 {
        conn.shared.count(|s| s.shed_budget += 1);
        conn.shared.log.borrow_mut().note(
            PROG,
            format_args!(
                "over the buffer budget ({total} bytes held, budget {budget}): closing \
                 connections that hold unsent output"
            ),
        );
        close(ctx, conn, token);
        return Ok(());
    }
    if next == Next::Linger && conn.phase != Phase::Lingering {
        if conn.stream.shutdown(Shutdown::Write).is_err() {
            close(ctx, conn, token);
            return Ok(());
        }
        conn.phase = Phase::Lingering;
        conn.idle.partial.set(false);
        let linger = conn.shared.settings.idle.min(MAX_LINGER);
        set_deadline(ctx, conn, token, Instant::now() + linger);
    }
    if next == Next::Close {
        close(ctx, conn, token);
        return Ok(());
    }
    let wanted = conn.wanted();
    if wanted != conn.interest {
        if ctx.modify(token, wanted, Mode::Level).is_err() {
            close(ctx, conn, token);
            return Ok(());
        }
        conn.interest = wanted;
    }
    Ok(())
}

fn close(ctx: &mut Context, conn: &Conn, token: Token) {
    if let Some((id, _)) = conn.idle.armed.take() {
        ctx.cancel_timer(id);
    }
    // Drops `conn` once this handler returns, closing the socket.
    let _ = ctx.unregister(token);
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Brings [`BUFFERED`] up to date with this connection's buffers and
    /// returns the new total.
    fn account(&mut self) -> usize {
        let held = self.out.capacity() + self.inbuf.capacity();
        let total = if held >= self.accounted {
            BUFFERED.fetch_add(held - self.accounted, Ordering::Relaxed) + (held - self.accounted)
        } else {
            BUFFERED.fetch_sub(self.accounted - held, Ordering::Relaxed) - (self.accounted - held)
        };
        self.accounted = held;
        PEAK_BUFFERED.fetch_max(total, Ordering::Relaxed);
        total
    }

    /// Whether to read more: the peer has not closed, the output is under
    /// the cap, and, while the process is at or over its buffer budget,
    /// none is pending.
    fn may_read(&self) -> bool {
        let over = BUFFERED.load(Ordering::Relaxed) >= self.shared.settings.max_buffered;
        !self.read_closed
            && self.pending() < self.shared.settings.max_pending
            && !(over && self.pending() > 0)
    }

    /// The interest the connection needs now.
    fn wanted(&self) -> Interest {
        match self.phase {
            Phase::Lingering => Interest::READABLE,
            Phase::Closing => Interest::WRITABLE,
            Phase::Open => {
                let mut i = Interest::empty();
                if self.may_read() {
                    i |= Interest::READABLE;
                }
                // With a backlog and nothing pending, a writable socket is
                // how the loop comes back to it.
                if self.pending() > 0 || self.backlog {
                    i |= Interest::WRITABLE;
                }
                i
            }
        }
    }

    /// Flushes, answers what is buffered, reads once, answers: the
    /// responses to every request complete in the buffer go out in one
    /// write.
    fn drive(&mut self, ev: Event) -> io::Result<Next> {
        if self.phase == Phase::Lingering {
            return self.drain();
        }
        if ev.is_writable() && self.pending() > 0 {
            self.flush()?;
        }
        // Requests left unanswered when the output cap was reached.
        self.serve_buffered()?;
        let may_read = self.phase == Phase::Open && !self.backlog && self.may_read();
        if may_read && (ev.is_readable() || ev.is_error() || ev.is_hangup()) && self.read()? {
            self.serve_buffered()?;
        }
        if self.pending() > self.peak {
            self.peak = self.pending();
            let peak = self.peak;
            self.shared
                .count(|s| s.peak_pending = s.peak_pending.max(peak));
        }
        let started = self.filled > 0 || self.body_left > 0;
        self.idle
            .partial
            .set(self.phase == Phase::Open && started && !self.backlog && self.pending() == 0);
        if self.pending() > 0 || self.backlog {
            return Ok(Next::Open);
        }
        Ok(match (self.phase, self.read_closed) {
            (_, true) => Next::Close,
            (Phase::Open, false) => Next::Open,
            (_, false) => Next::Linger,
        })
    }

    /// Answers the buffered requests and sends the responses, again while
    /// the socket takes them all and requests are left, a few rounds at
    /// most: past those, `backlog` stays set and the writable interest it
    /// asks for brings the connection back on the next turn.
    fn serve_buffered(&mut self) -> io::Result<()> {
        for _ in 0..SERVE_ROUNDS {
            self.answer();
            if self.pending() > 0 {
                self.flush()?;
            }
            if !self.backlog || self.pending() >= self.shared.settings.max_pending {
                break;
            }
        }
        Ok(())
    }

    /// Reads once into the input buffer. Returns whether bytes arrived.
    fn read(&mut self) -> io::Result<bool> {
        if self.inbuf.len() - self.filled < READ_CHUNK / 2 {
            self.inbuf.resize(self.filled + READ_CHUNK, 0);
        }
        match self.stream.read(&mut self.inbuf[self.filled..]) {
            Ok(0) => {
                self.read_closed = true;
                Ok(false)
            }
            Ok(n) => {
                self.filled += n;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Answers every complete request in the buffer, until the output cap,
    /// and drops the bytes it consumed.
    fn answer(&mut self) {
        let max_pending = self.shared.settings.max_pending;
        let limits = self.shared.settings.limits;
        let date = self.shared.date.get();
        let mut completed = false;
        let mut pos = 0;
        while self.phase == Phase::Open && self.pending() < max_pending {
            if self.body_left > 0 {
                let have = (self.filled - pos) as u64;
                let take = self.body_left.min(have);
                pos += take as usize;
                self.body_left -= take;
                if self.body_left > 0 {
                    break;
                }
                if let Some(req) = self.owed.take() {
                    self.respond(&req, &date);
                    completed = true;
                }
                continue;
            }
            if pos == self.filled {
                break;
            }
            match proto::parse(&self.inbuf[pos..self.filled], limits) {
                Parsed::Partial => break,
                Parsed::Reject(status) => {
                    let responses = &self.shared.responses;
                    responses.write(&mut self.out, status, Persist::Close, false, &date);
                    self.shared.count(|s| {
                        s.requests += 1;
                        s.errors += 1;
                    });
                    self.phase = Phase::Closing;
                    pos = self.filled; // the rest is not worth reading
                }
                Parsed::Request(req) => {
                    pos += req.len;
                    if req.body == 0 {
                        self.respond(&req, &date);
                        completed = true;
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
        if pos > 0 {
            self.inbuf.copy_within(pos..self.filled, 0);
            self.filled -= pos;
        }
        if self.filled == 0 && self.inbuf.capacity() > 4 * READ_CHUNK {
            self.inbuf = Vec::new();
        }
        self.backlog =
            self.phase == Phase::Open && self.filled > 0 && self.pending() >= max_pending;
        if completed && self.phase == Phase::Open {
            self.idle
                .deadline
                .set(Instant::now() + self.shared.settings.idle);
        }
    }

    fn respond(&mut self, req: &Request, date: &[u8; DATE_LEN]) {
        let responses = &self.shared.responses;
        responses.write(&mut self.out, req.status, req.persist, req.head_only, date);
        let error = req.status != Status::Ok;
        self.shared.count(|s| {
            s.requests += 1;
            s.errors += u64::from(error);
        });
        if req.persist == Persist::Close {
            self.phase = Phase::Closing;
        }
    }

    /// Sends pending output until it is gone or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        common::send_pending(self.stream.as_raw_fd(), &self.out, &mut self.sent)?;
        if self.sent == self.out.len() {
            // Give back a buffer a burst made large: the budget counts what
            // connections hold, not only what they have pending.
            if self.out.capacity() > 4 * READ_CHUNK {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
            self.sent = 0;
        } else if self.sent * 2 >= self.out.len() {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Lingering: reads and drops input until the peer closes.
    fn drain(&mut self) -> io::Result<Next> {
        if self.inbuf.len() < READ_CHUNK {
            self.inbuf.resize(READ_CHUNK, 0);
        }
        for _ in 0..LINGER_READS {
            match self.stream.read(&mut self.inbuf) {
                Ok(0) => return Ok(Next::Close),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Next::Linger)
    }
}
