//! Faults: peers that reset, half-close or vanish mid-write; signal storms
//! during a wait; notification storms; registrations racing with waits;
//! descriptors closed (and their numbers reused) while registered.
//!
//! Every scenario runs on every backend, takes its turn under one
//! process-wide lock, and checks that it leaves as many descriptors open
//! (`/proc/self/fd`) as it found.
//!
//! What each backend reports was measured on Linux 6.x first:
//!
//! | peer did | epoll / poll | select |
//! |---|---|---|
//! | reset (`SO_LINGER` 0, close) | `IN ERR HUP RDHUP`; empty interest `ERR HUP` | readable; empty interest nothing |
//! | shut down its writing side | `IN OUT RDHUP` | readable, writable |
//! | closed after that, then we shut ours | `IN OUT HUP RDHUP` | readable, writable |
//! | closed with our bytes unread | `OUT ERR HUP` (writable interest) | writable |
//!
//! After a reset the first read fails with `ECONNRESET` and the next
//! returns 0; after the peer vanished mid-write, the first
//! `send(MSG_NOSIGNAL)` fails with `ECONNRESET` and the next with `EPIPE`.

mod common;

use std::collections::HashSet;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use tripoll::{AnyPoller, Backend, Error, Event, Events, Interest, Mode, Poller, Token};

/// Generous bound for waits that must end with an event.
const SAFETY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Harness

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs one scenario alone and checks it leaked no descriptor.
fn leak_checked(backend: Backend, scenario: fn(Backend)) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = common::open_fds();
    scenario(backend);
    common::assert_no_new_fds(&before, &format!("[{backend}]"));
}

/// Every scenario for one backend, from the one backend list:
/// `epoll::reset_peer`, `poll::reset_peer`, ...
macro_rules! faults {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            every_scenario!(
                $backend,
                reset_peer,
                half_closed_peer,
                peer_vanishes_mid_write,
                signal_storm_does_not_cut_a_timeout_short_or_stretch_it,
                signal_storm_does_not_lose_an_event,
                notify_storm_loses_no_final_wake_up,
                registrations_race_with_waits,
                closed_fd_is_reported_once_then_its_number_is_free,
                closed_fd_number_reused_before_a_wait
            );
        }
    };
}

macro_rules! every_scenario {
    ($backend:expr, $($scenario:ident),* $(,)?) => {
        $( #[test] fn $scenario() { super::leak_checked($backend, super::$scenario) } )*
    };
}

common::for_each_backend!(faults);

fn poller(backend: Backend) -> AnyPoller {
    AnyPoller::new(backend).expect("poller")
}

fn has_error_bits(backend: Backend) -> bool {
    backend != Backend::Select
}

/// A connected loopback TCP pair, both ends nonblocking.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (s, _) = l.accept().expect("accept");
    c.set_nonblocking(true).expect("nonblocking");
    s.set_nonblocking(true).expect("nonblocking");
    (c, s)
}

fn unix_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
}

/// Closes `s` with an RST instead of a FIN.
fn reset(s: TcpStream) {
    common::set_linger_zero(&s);
    drop(s);
}

/// `send` with `MSG_NOSIGNAL`: a vanished peer is an `EPIPE`, not a
/// `SIGPIPE`.
fn send(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is valid for `data.len()` bytes for the call.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Waits up to `timeout` and returns the events, checked for duplicates.
fn wait(p: &AnyPoller, timeout: Duration) -> Vec<Event> {
    let mut events = Events::with_capacity(64);
    let n = p.wait(&mut events, Some(timeout)).expect("wait");
    assert_eq!(n, events.len());
    let evs: Vec<Event> = events.iter().copied().collect();
    let tokens: HashSet<Token> = evs.iter().map(Event::token).collect();
    assert_eq!(tokens.len(), evs.len(), "a token reported twice: {evs:?}");
    evs
}

/// The one event a wait must report, within [`SAFETY`].
fn one_event(p: &AnyPoller, token: Token) -> Event {
    let evs = wait(p, SAFETY);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].token(), token, "{evs:?}");
    evs[0]
}

fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> Option<i32> {
    match r {
        Err(e) => e.raw_os_error(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

// ---------------------------------------------------------------------------
// Peers that misbehave

fn reset_peer(backend: Backend) {
    let p = poller(backend);
    let (mut ours, theirs) = tcp_pair();
    let (quiet, quiet_peer) = tcp_pair();
    p.register(ours.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level)
        .unwrap();
    // No interest at all: only errors and hang-ups can be reported.
    p.register(quiet.as_raw_fd(), Token(2), Interest::empty(), Mode::Level)
        .unwrap();
    reset(theirs);
    reset(quiet_peer);

    let sign: fn(&Event) -> bool = if has_error_bits(backend) {
        Event::is_error
    } else {
        Event::is_readable
    };
    let ev = wait_until(&p, Token(1), sign);
    assert!(ev.is_readable(), "{ev:?}");
    if has_error_bits(backend) {
        assert!(
            ev.is_error() && ev.is_hangup() && ev.is_read_closed(),
            "{ev:?}"
        );
        // The quiet one is reported too (both resets are in by now: each
        // lands in the closing call on loopback).
        let quiet_ev = wait_until(&p, Token(2), Event::is_error);
        assert!(quiet_ev.is_error() && quiet_ev.is_hangup(), "{quiet_ev:?}");
        assert!(
            !quiet_ev.is_readable() && !quiet_ev.is_writable(),
            "{quiet_ev:?}"
        );
    } else {
        assert!(
            !ev.is_error() && !ev.is_hangup() && !ev.is_writable(),
            "{ev:?}"
        );
        // Select cannot report a registration without read or write interest.
        let evs = wait(&p, Duration::ZERO);
        assert!(evs.iter().all(|e| e.token() != Token(2)), "{evs:?}");
    }

    let mut buf = [0u8; 16];
    assert_eq!(errno(ours.read(&mut buf)), Some(libc::ECONNRESET));
    assert_eq!(
        ours.read(&mut buf).unwrap(),
        0,
        "end of stream after the reset"
    );
    // Level-triggered: the dead socket stays readable (end of stream).
    let evs = wait(&p, Duration::ZERO);
    let ev = evs
        .iter()
        .find(|e| e.token() == Token(1))
        .expect("still readable");
    assert!(ev.is_readable(), "{ev:?}");
    if has_error_bits(backend) {
        assert!(
            !ev.is_error() && ev.is_hangup(),
            "error consumed by the read: {ev:?}"
        );
    }

    p.unregister(ours.as_raw_fd()).unwrap();
    p.unregister(quiet.as_raw_fd()).unwrap();
}

fn half_closed_peer(backend: Backend) {
    let p = poller(backend);
    let (mut ours, mut theirs) = tcp_pair();
    let both = Interest::READABLE | Interest::WRITABLE;
    p.register(ours.as_raw_fd(), Token(3), both, Mode::Level)
        .unwrap();
    let ev = one_event(&p, Token(3));
    assert!(ev.is_writable() && !ev.is_readable(), "idle: {ev:?}");

    theirs.shutdown(Shutdown::Write).unwrap();
    let ev = wait_until(&p, Token(3), Event::is_readable);
    assert!(
        ev.is_writable() && !ev.is_hangup() && !ev.is_error(),
        "{ev:?}"
    );
    assert_eq!(ev.is_read_closed(), has_error_bits(backend), "{ev:?}");
    let mut buf = [0u8; 16];
    assert_eq!(ours.read(&mut buf).unwrap(), 0);

    // The other direction still works.
    ours.write_all(b"pong").unwrap();
    theirs.set_nonblocking(false).unwrap();
    theirs.set_read_timeout(Some(SAFETY)).unwrap();
    let mut got = [0u8; 4];
    theirs.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong");

    // Peer gone and our side shut too: hang-up.
    drop(theirs);
    ours.shutdown(Shutdown::Write).unwrap();
    if has_error_bits(backend) {
        let ev = wait_until(&p, Token(3), Event::is_hangup);
        assert!(ev.is_readable() && ev.is_read_closed(), "{ev:?}");
        // Normally a clean close. But the peer's socket, closed by its owner
        // in FIN_WAIT2, lives on in the kernel's TIME_WAIT table; when that
        // table is full (`net.ipv4.tcp_max_tw_buckets`, which a run of the
        // 10 000-connection tests can fill) the kernel drops it at once and
        // answers our FIN with a reset. Then, and only then, the error bit
        // is set, and the error is the reset.
        if ev.is_error() {
            let err = ours.take_error().unwrap();
            assert_eq!(
                err.as_ref().and_then(io::Error::raw_os_error),
                Some(libc::ECONNRESET),
                "an error beside hang-up can only be a reset: {ev:?} {err:?}"
            );
        }
    } else {
        let ev = one_event(&p, Token(3));
        assert!(ev.is_readable() && ev.is_writable(), "{ev:?}");
    }
    p.unregister(ours.as_raw_fd()).unwrap();
}

/// Waits (level-triggered) until the event for `token` satisfies `what`.
/// Loopback delivers in the sending call, but the TCP state change of a
/// FIN or RST may land a moment later.
fn wait_until(p: &AnyPoller, token: Token, what: fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + SAFETY;
    loop {
        let evs = wait(p, Duration::from_millis(50));
        if let Some(ev) = evs.iter().find(|e| e.token() == token && what(e)) {
            return *ev;
        }
        assert!(
            Instant::now() < deadline,
            "no such event for {token:?}: last {evs:?}"
        );
    }
}

fn peer_vanishes_mid_write(backend: Backend) {
    let p = poller(backend);
    let (ours, theirs) = tcp_pair();
    p.register(ours.as_raw_fd(), Token(4), Interest::WRITABLE, Mode::Level)
        .unwrap();
    // Fill every buffer on the way: the peer never reads.
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sent = 0;
    loop {
        match send(ours.as_raw_fd(), &chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("send: {e}"),
        }
    }
    assert!(sent > 0);
    // Closing with unread bytes makes the peer send a reset.
    drop(theirs);
    let ev = wait_until(&p, Token(4), Event::is_writable);
    if has_error_bits(backend) {
        assert!(ev.is_error() && ev.is_hangup(), "{ev:?}");
    }
    assert_eq!(errno(send(ours.as_raw_fd(), b"x")), Some(libc::ECONNRESET));
    assert_eq!(errno(send(ours.as_raw_fd(), b"x")), Some(libc::EPIPE));
    p.unregister(ours.as_raw_fd()).unwrap();
}

// ---------------------------------------------------------------------------
// Signal storms

static SIGNALS_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    SIGNALS_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// A no-op SIGUSR1 handler installed without `SA_RESTART`, so every signal
/// makes a blocked system call fail with `EINTR`.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: an all-zero sigaction is valid; we fill in the handler
        // and an empty mask before passing it.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0;
        // SAFETY: `sa.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is fully initialised; the old action is not wanted.
        let rc = unsafe { libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
    });
}

struct Storm<T> {
    result: T,
    sent: usize,
    handled: usize,
    /// The storm reached its time cap before the waiter returned.
    capped: bool,
}

/// Runs `waiter` in a thread and sends it SIGUSR1 every 100 µs until it
/// returns (or 30 s pass). `midway` runs on this thread once 200 signals
/// were sent and 50 of them handled.
fn storm<T: Send + 'static>(
    waiter: impl FnOnce() -> T + Send + 'static,
    midway: impl FnOnce(),
) -> Storm<T> {
    install_handler();
    let done = Arc::new(AtomicBool::new(false));
    let (release, released) = mpsc::channel::<()>();
    let handle = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let r = waiter();
            done.store(true, Ordering::Release);
            // Stay alive until the signals stop: a pthread_t of a thread
            // that has exited must not be signalled.
            let _ = released.recv();
            r
        })
    };
    let target = handle.as_pthread_t();
    let handled_before = SIGNALS_HANDLED.load(Ordering::Relaxed);
    let cap = Instant::now() + Duration::from_secs(30);
    let mut midway = Some(midway);
    let mut sent = 0;
    let mut capped = false;
    while !done.load(Ordering::Acquire) {
        if Instant::now() > cap {
            capped = true;
            break;
        }
        // SAFETY: `target` is a live thread: it waits for `release`.
        let rc = unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
        assert_eq!(rc, 0, "pthread_kill");
        sent += 1;
        // Act once the storm has really hit the waiter: on a loaded machine
        // signals sent to a thread that is not running coalesce, so count
        // the handled ones rather than the sent ones.
        let handled = SIGNALS_HANDLED.load(Ordering::Relaxed) - handled_before;
        if sent >= 200 && handled >= 50 {
            if let Some(f) = midway.take() {
                f();
            }
        }
        thread::sleep(Duration::from_micros(100));
    }
    let handled = SIGNALS_HANDLED.load(Ordering::Relaxed) - handled_before;
    release.send(()).expect("waiter alive");
    let result = handle.join().expect("waiter panicked");
    Storm {
        result,
        sent,
        handled,
        capped,
    }
}

fn signal_storm_does_not_cut_a_timeout_short_or_stretch_it(backend: Backend) {
    let p = Arc::new(poller(backend));
    let (ours, _theirs) = unix_pair();
    p.register(ours.as_raw_fd(), Token(5), Interest::READABLE, Mode::Level)
        .unwrap();
    let timeout = Duration::from_millis(300);
    let s = {
        let p = Arc::clone(&p);
        storm(
            move || {
                let mut events = Events::with_capacity(8);
                let start = Instant::now();
                let n = p.wait(&mut events, Some(timeout));
                (n.map_err(|e| e.to_string()), start.elapsed())
            },
            || {},
        )
    };
    let (n, elapsed) = s.result;
    assert_eq!(n, Ok(0), "[{backend}] nothing was ready");
    assert!(
        elapsed >= timeout,
        "[{backend}] returned early: {elapsed:?}"
    );
    // A wait that restarted its full timeout on every EINTR would still be
    // waiting when the storm hit its 30 s cap.
    assert!(!s.capped, "[{backend}] the wait outlived a 30 s storm");
    assert!(
        s.handled >= 50,
        "[{backend}] only {} of {} signals handled",
        s.handled,
        s.sent
    );
    p.unregister(ours.as_raw_fd()).unwrap();
}

fn signal_storm_does_not_lose_an_event(backend: Backend) {
    for timeout in [None, Some(Duration::from_secs(60))] {
        let p = Arc::new(poller(backend));
        let (ours, mut theirs) = unix_pair();
        p.register(ours.as_raw_fd(), Token(6), Interest::READABLE, Mode::Level)
            .unwrap();
        let s = {
            let p = Arc::clone(&p);
            storm(
                move || {
                    let mut events = Events::with_capacity(8);
                    let n = p.wait(&mut events, timeout).map_err(|e| e.to_string());
                    (n, events.iter().copied().collect::<Vec<Event>>())
                },
                || theirs.write_all(b"x").expect("peer write"),
            )
        };
        let (n, evs) = s.result;
        assert_eq!(n, Ok(1), "[{backend}] {timeout:?}: {evs:?}");
        assert_eq!(evs[0].token(), Token(6));
        assert!(evs[0].is_readable(), "{evs:?}");
        assert!(!s.capped && s.sent >= 200, "[{backend}] sent {}", s.sent);
        assert!(
            s.handled >= 50,
            "[{backend}] only {} of {} signals handled",
            s.handled,
            s.sent
        );
        p.unregister(ours.as_raw_fd()).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Notification storms

fn notify_storm_loses_no_final_wake_up(backend: Backend) {
    const NOTIFIERS: usize = 8;
    const EACH: usize = 5_000;
    let p = Arc::new(poller(backend));
    // Registered but never ready: every wake-up must come from notify.
    let (quiet, _quiet_peer) = unix_pair();
    p.register(quiet.as_raw_fd(), Token(7), Interest::READABLE, Mode::Level)
        .unwrap();
    let finished = Arc::new(AtomicBool::new(false));
    let (report, reported) = mpsc::channel();
    let waiter = {
        let p = Arc::clone(&p);
        let finished = Arc::clone(&finished);
        thread::spawn(move || {
            let mut events = Events::with_capacity(8);
            let mut wakeups = 0usize;
            loop {
                let n = p.wait(&mut events, None).expect("wait");
                assert_eq!(n, 0, "a notify is not an event: {events:?}");
                wakeups += 1;
                if finished.load(Ordering::Acquire) {
                    break;
                }
            }
            let _ = report.send(wakeups);
        })
    };
    let remaining = Arc::new(AtomicUsize::new(NOTIFIERS));
    let notifiers: Vec<_> = (0..NOTIFIERS)
        .map(|_| {
            let p = Arc::clone(&p);
            let finished = Arc::clone(&finished);
            let remaining = Arc::clone(&remaining);
            thread::spawn(move || {
                for _ in 0..EACH {
                    p.notify().expect("notify");
                }
                // The last one out raises the flag, then wakes the waiter
                // once more: that wake-up must not be lost.
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    finished.store(true, Ordering::Release);
                    p.notify().expect("notify");
                }
            })
        })
        .collect();
    for n in notifiers {
        n.join().expect("notifier panicked");
    }
    let wakeups = reported
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("[{backend}] the waiter missed the final wake-up (hung)"));
    waiter.join().expect("waiter panicked");
    assert!(
        (1..=NOTIFIERS * EACH + 1).contains(&wakeups),
        "[{backend}] {wakeups} wake-ups"
    );
    p.unregister(quiet.as_raw_fd()).unwrap();
}

// ---------------------------------------------------------------------------
// Registrations racing with waits

/// Small deterministic generator (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn registrations_race_with_waits(backend: Backend) {
    const THREADS: usize = 4;
    const PAIRS: usize = 8;
    const STEPS: usize = 3_000;
    let p = Arc::new(poller(backend));
    // Every token handed to `register` or `modify`, recorded before the
    // call: a waiter must never see any other.
    let issued: Arc<Mutex<HashSet<Token>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // The waiter and the mutators start together.
    let start = Arc::new(Barrier::new(THREADS + 1));

    // Ready descriptors that are never registered.
    let bystanders: Vec<(UnixStream, UnixStream)> = (0..4)
        .map(|_| {
            let (a, mut b) = unix_pair();
            b.write_all(b"!").unwrap();
            (a, b)
        })
        .collect();

    let waiter = {
        let p = Arc::clone(&p);
        let issued = Arc::clone(&issued);
        let stop = Arc::clone(&stop);
        let start = Arc::clone(&start);
        thread::spawn(move || {
            let mut events = Events::with_capacity(256);
            let mut seen = 0usize;
            start.wait();
            loop {
                // Read before the wait: once the mutators are done, one more
                // wait runs, which the final registrations (level, ready)
                // must answer, however the threads were scheduled.
                let last = stop.load(Ordering::Acquire);
                p.wait(&mut events, Some(Duration::from_millis(2)))
                    .expect("wait");
                let issued = issued.lock().unwrap();
                for ev in events.iter() {
                    assert!(
                        issued.contains(&ev.token()),
                        "stale or foreign event {ev:?}"
                    );
                    assert!(!ev.is_error() && !ev.is_hangup(), "{ev:?}");
                    seen += 1;
                }
                if last {
                    return seen;
                }
            }
        })
    };

    let mutators: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = Arc::clone(&p);
            let issued = Arc::clone(&issued);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let pairs: Vec<(UnixStream, UnixStream)> = (0..PAIRS)
                    .map(|_| {
                        let (a, mut b) = unix_pair();
                        b.write_all(b"?").unwrap();
                        (a, b)
                    })
                    .collect();
                start.wait();
                let mut state: Vec<Option<Token>> = vec![None; PAIRS];
                for step in 0..STEPS {
                    let i = rng.below(PAIRS);
                    let fd = pairs[i].0.as_raw_fd();
                    let token = Token((t * PAIRS + i) * STEPS + step);
                    let interest =
                        [Interest::READABLE, Interest::READABLE | Interest::WRITABLE][rng.below(2)];
                    let mode = [Mode::Level, Mode::Oneshot][rng.below(2)];
                    match (state[i], rng.below(3)) {
                        (None, 0) => {
                            let r = p.modify(fd, token, interest, mode);
                            assert!(matches!(r, Err(Error::NotRegistered { .. })), "{r:?}");
                        }
                        (None, _) => {
                            issued.lock().unwrap().insert(token);
                            p.register(fd, token, interest, mode).expect("register");
                            state[i] = Some(token);
                        }
                        (Some(_), 0) => {
                            let r = p.register(fd, token, interest, mode);
                            assert!(matches!(r, Err(Error::AlreadyRegistered { .. })), "{r:?}");
                        }
                        (Some(_), 1) => {
                            issued.lock().unwrap().insert(token);
                            p.modify(fd, token, interest, mode).expect("modify");
                            state[i] = Some(token);
                        }
                        (Some(_), _) => {
                            p.unregister(fd).expect("unregister");
                            state[i] = None;
                        }
                    }
                }
                // Re-arm what is left registered, level-triggered, so the
                // final state is known exactly.
                for (i, s) in state.iter().enumerate() {
                    if let Some(token) = s {
                        p.modify(
                            pairs[i].0.as_raw_fd(),
                            *token,
                            Interest::READABLE,
                            Mode::Level,
                        )
                        .expect("final modify");
                    }
                }
                (pairs, state)
            })
        })
        .collect();
    let finals: Vec<_> = mutators
        .into_iter()
        .map(|m| m.join().expect("mutator panicked"))
        .collect();
    stop.store(true, Ordering::Release);
    let seen = waiter.join().expect("waiter panicked");
    assert!(seen > 0, "[{backend}] the waiter saw nothing at all");

    // Exactly the registered descriptors are reported, under their last token.
    let expected: HashSet<Token> = finals
        .iter()
        .flat_map(|(_, state)| state.iter().flatten().copied())
        .collect();
    let evs = wait(&p, Duration::ZERO);
    let got: HashSet<Token> = evs.iter().map(Event::token).collect();
    assert_eq!(got, expected, "[{backend}] final state");
    assert!(
        evs.iter().all(|e| e.is_readable() && !e.is_writable()),
        "{evs:?}"
    );
    for (pairs, state) in &finals {
        for (i, s) in state.iter().enumerate() {
            let r = p.unregister(pairs[i].0.as_raw_fd());
            match s {
                Some(_) => r.expect("unregister a registered fd"),
                None => assert!(matches!(r, Err(Error::NotRegistered { .. })), "{r:?}"),
            }
        }
    }
    for (a, _) in &bystanders {
        let r = p.unregister(a.as_raw_fd());
        assert!(matches!(r, Err(Error::NotRegistered { .. })), "{r:?}");
    }
    assert!(wait(&p, Duration::ZERO).is_empty());
}

// ---------------------------------------------------------------------------
// Descriptors closed while registered
//
// Poll and select watch descriptor *numbers*; epoll watches open *files*.
// Decided behaviour, asserted below:
//
// * closed, then a wait: poll and select report the old token once as an
//   error and hang-up and drop the registration; epoll reports nothing (the
//   file left its interest list when it closed). Either way the number is
//   then free: a new file there is not watched until registered, and
//   registering it succeeds.
// * closed and the number reused before any wait: poll and select cannot
//   tell (the kernel sees an open descriptor) and watch the new file under
//   the old registration until it is unregistered; epoll does not watch it,
//   and unregistering the number says `NotRegistered`.

/// A socket with bytes waiting, and its peer. Made before the old
/// descriptor closes, so that neither end takes the freed number itself.
fn readable_socket() -> (UnixStream, UnixStream) {
    let (a, mut b) = unix_pair();
    b.write_all(b"new").unwrap();
    (a, b)
}

/// Moves `s` to descriptor number `fd`, which must be free.
fn move_to(s: UnixStream, fd: RawFd) -> OwnedFd {
    // SAFETY: dup2 onto a number this test owns and has just closed.
    let rc = unsafe { libc::dup2(s.as_raw_fd(), fd) };
    assert_eq!(rc, fd, "dup2: {}", io::Error::last_os_error());
    drop(s);
    // SAFETY: dup2 made `fd` a descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn closed_fd_is_reported_once_then_its_number_is_free(backend: Backend) {
    let p = poller(backend);
    let (ours, _theirs) = unix_pair();
    let fd = ours.as_raw_fd();
    p.register(fd, Token(8), Interest::READABLE, Mode::Level)
        .unwrap();
    let (fresh, _peer) = readable_socket();
    drop(ours);

    let evs = wait(&p, Duration::ZERO);
    if backend == Backend::Epoll {
        assert!(evs.is_empty(), "{evs:?}");
    } else {
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].token(), Token(8));
        assert!(evs[0].is_error() && evs[0].is_hangup(), "{evs:?}");
    }
    // Once only, and the wait does not fail or spin on it.
    assert!(wait(&p, Duration::ZERO).is_empty());
    assert!(wait(&p, Duration::from_millis(20)).is_empty());

    let new = move_to(fresh, fd);
    assert!(
        wait(&p, Duration::ZERO).is_empty(),
        "the new file is not watched"
    );
    if backend == Backend::Epoll {
        // Closed since it was registered, never reported: unregistering it
        // succeeds (contract point 6), once.
        p.unregister(fd).expect("unregister after close");
    }
    // Poll and select reported it and dropped it.
    assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { .. })));
    p.register(fd, Token(9), Interest::READABLE, Mode::Level)
        .expect("the number is free to register");
    let ev = one_event(&p, Token(9));
    assert!(ev.is_readable() && !ev.is_error(), "{ev:?}");
    p.unregister(fd).unwrap();
    drop(new);
}

fn closed_fd_number_reused_before_a_wait(backend: Backend) {
    let p = poller(backend);
    let (ours, _theirs) = unix_pair();
    let fd = ours.as_raw_fd();
    p.register(fd, Token(10), Interest::READABLE, Mode::Level)
        .unwrap();
    let (fresh, _peer) = readable_socket();
    drop(ours);
    let new = move_to(fresh, fd);

    let evs = wait(&p, Duration::ZERO);
    if backend == Backend::Epoll {
        assert!(evs.is_empty(), "{evs:?}");
    } else {
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].token(), Token(10), "watched under the old token");
        assert!(evs[0].is_readable() && !evs[0].is_error(), "{evs:?}");
    }
    // The same answer everywhere: the old registration held the number.
    p.unregister(fd)
        .expect("unregister of a closed, reused number");
    assert!(wait(&p, Duration::ZERO).is_empty());
    assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { .. })));
    p.register(fd, Token(11), Interest::READABLE, Mode::Level)
        .unwrap();
    assert_eq!(one_event(&p, Token(11)).token(), Token(11));
    p.unregister(fd).unwrap();
    drop(new);
}
