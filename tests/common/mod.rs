//! Helpers for the integration tests: real descriptors, a lock that keeps
//! descriptor-number-sensitive tests apart, a watchdog that turns a hung
//! wait into a failure, a thread interrupter for `EINTR`, a seeded PRNG,
//! the one backend list ([`for_each_backend`]), a counting allocator
//! ([`alloc`]), real seccomp filters ([`seccomp`]), and (in [`child`]) the
//! examples as child processes.
#![allow(dead_code, unused_imports)]

pub mod alloc;
pub mod child;
pub mod seccomp;

pub use tripoll_testkit::for_each_backend;
pub use tripoll_testkit::hostile;
pub use tripoll_testkit::net::{connect_with_receive_buffer, raise_fd_limit, set_linger_zero};

/// The one backend list as values, for tests that loop over the backends.
pub fn backends() -> Vec<tripoll::Backend> {
    let mut all = Vec::new();
    macro_rules! push {
        ($module:ident, $backend:expr, $poller:ty) => {
            all.push($backend);
        };
    }
    for_each_backend!(push);
    all
}

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Once, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tripoll::{Event, Events, Interest, Mode, Poller, Token};

/// How long a test waits for an event that must come. Generous on purpose:
/// it only bounds a broken test, a correct one never gets near it.
pub const SAFETY: Duration = Duration::from_secs(5);

/// How long a test watches for an event that must *not* come. A correct
/// backend reports nothing however long we look, so this cannot flake; it
/// only has to be long enough for a wrong event to show.
pub const QUIET: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// Descriptor numbers

/// Every test holds this lock: shared by default, exclusive for the tests
/// that depend on descriptor *numbers* (a closed number must not be reused
/// by another thread's socket, fd 1500 must be free, select's waker must stay
/// below 1024 while a test holds 1200 descriptors).
static FDS: RwLock<()> = RwLock::new(());

/// Holds the descriptor lock shared: this test only needs numbers it owns.
pub fn fds_shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|p| p.into_inner())
}

/// Holds the descriptor lock alone: no other test opens or closes anything.
pub fn fds_exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|p| p.into_inner())
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags; any number is fine.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

// ---------------------------------------------------------------------------
// Real descriptors

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 just returned these two descriptors; nothing else owns them.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// A connected Unix stream pair, both ends non-blocking.
pub fn socket_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
}

/// A TCP connection over 127.0.0.1: (accepted side, non-blocking; client
/// side, blocking).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    server.set_nonblocking(true).expect("nonblocking");
    (server, client)
}

/// `dup2(fd, target)`, owned. Panics if `target` is already open, so a test
/// never closes a descriptor it does not own.
pub fn dup_onto(fd: RawFd, target: RawFd) -> OwnedFd {
    assert!(!is_open(target), "fd {target} is already in use");
    // SAFETY: `fd` is open and `target` is free, so dup2 closes nothing.
    let rc = unsafe { libc::dup2(fd, target) };
    assert_eq!(rc, target, "dup2: {}", io::Error::last_os_error());
    // SAFETY: dup2 just made `target`; we are its only owner.
    unsafe { OwnedFd::from_raw_fd(target) }
}

/// Sends one byte of TCP urgent (out-of-band) data.
pub fn send_oob(s: &TcpStream, byte: u8) {
    // SAFETY: one readable byte for send to copy.
    let n = unsafe { libc::send(s.as_raw_fd(), (&byte as *const u8).cast(), 1, libc::MSG_OOB) };
    assert_eq!(n, 1, "send(MSG_OOB): {}", io::Error::last_os_error());
}

/// Reads until `WouldBlock` or end of stream: (bytes read, end seen).
pub fn drain(r: &mut impl Read) -> (usize, bool) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (total, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Waiting

/// The events of the last wait that carry `token`.
pub fn events_for(events: &Events, token: Token) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.token() == token)
        .copied()
        .collect()
}

/// Waits (repeatedly, up to [`SAFETY`]) until an event for `token` arrives
/// and returns it. For readiness that travels through the network stack,
/// where one wait may see an earlier state.
pub fn wait_for<P: Poller + ?Sized>(p: &P, events: &mut Events, token: Token) -> Event {
    let deadline = Instant::now() + SAFETY;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no event for {token:?} within {SAFETY:?}");
        p.wait(events, Some(left)).expect("wait");
        if let Some(e) = events.iter().find(|e| e.token() == token) {
            return *e;
        }
    }
}

/// One wait (up to [`SAFETY`]) that must return exactly one event, for
/// `token`. For pipes and Unix sockets readiness is immediate, so the first
/// wait must carry it.
pub fn wait_one<P: Poller + ?Sized>(p: &P, events: &mut Events, token: Token) -> Event {
    let n = p.wait(events, Some(SAFETY)).expect("wait");
    assert_eq!(n, 1, "expected one event for {token:?}, got {events:?}");
    assert_eq!(n, events.len());
    let e = events.iter().next().copied().expect("one event");
    assert_eq!(e.token(), token, "{events:?}");
    e
}

/// Asserts that a wait of [`QUIET`] reports nothing.
pub fn assert_quiet<P: Poller + ?Sized>(p: &P, events: &mut Events, why: &str) {
    let n = p.wait(events, Some(QUIET)).expect("wait");
    assert_eq!(n, 0, "{why}: unexpected {events:?}");
    assert!(events.is_empty());
}

/// The token of a watchdog's rescue pipe.
pub const RESCUE: Token = Token(usize::MAX - 2);

/// Ends a wait that is still blocked after `after`, turning a hang into a
/// failure (see [`Watchdog::disarm`]). It both notifies the poller and makes
/// a pipe registered with [`RESCUE`] readable, so it works even when the
/// backend's `notify` is what is broken.
#[derive(Debug)]
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    poller: Arc<dyn Poller>,
    rescue: File,
}

impl Watchdog {
    /// Registers the rescue pipe and starts the clock. Arm it before the
    /// wait starts, so that the pipe is in the waiter's set.
    pub fn arm(poller: Arc<dyn Poller>, after: Duration) -> Watchdog {
        let (rescue, mut alarm) = pipe();
        poller
            .register(rescue.as_raw_fd(), RESCUE, Interest::READABLE, Mode::Level)
            .expect("register the rescue pipe");
        let (tx, rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let (flag, p) = (Arc::clone(&fired), Arc::clone(&poller));
        let thread = thread::spawn(move || {
            let mut timeout = after;
            // Keep at it until disarmed, in case a wait loops past one.
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                let _ = alarm.write(b"!");
                let _ = p.notify();
                timeout = Duration::from_millis(100);
            }
        });
        Watchdog {
            stop: Some(tx),
            fired,
            thread: Some(thread),
            poller,
            rescue,
        }
    }

    /// Stops the clock and unregisters the rescue pipe; returns whether the
    /// clock had run out.
    pub fn disarm(mut self) -> bool {
        self.shutdown();
        self.fired.load(Ordering::SeqCst)
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            drop(tx);
            if let Some(t) = self.thread.take() {
                t.join().expect("watchdog thread");
            }
            let _ = self.poller.unregister(self.rescue.as_raw_fd());
        }
    }
}

/// CPU time this thread has used.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Asserts that a wait of `t` with nothing to report returns 0 after at
/// least `t` and *sleeps*: the waiting thread uses less than a tenth of `t`
/// in CPU time (a sleeping wait uses microseconds). A blocked thread uses next to none, and a loaded machine only
/// gives a busy loop less CPU, never a sleeping thread more, so this
/// catches a spinning wait without depending on the machine's speed.
pub fn assert_sleeps<P: Poller + ?Sized>(p: &P, events: &mut Events, t: Duration, why: &str) {
    let cpu = thread_cpu_time();
    let start = Instant::now();
    let n = p.wait(events, Some(t)).expect("wait");
    let elapsed = start.elapsed();
    let used = thread_cpu_time() - cpu;
    assert_eq!(n, 0, "{why}: unexpected {events:?}");
    assert!(
        elapsed >= t,
        "{why}: a {t:?} wait returned after {elapsed:?}"
    );
    assert!(
        used < t / 10,
        "{why}: a {t:?} wait used {used:?} of CPU: it spins instead of sleeping"
    );
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Signals

thread_local! {
    static SIGNALS: Cell<u64> = const { Cell::new(0) };
}

extern "C" fn count_signal(_: libc::c_int) {
    // A const-initialised thread-local without a destructor is a plain TLS
    // access: async-signal-safe.
    SIGNALS.with(|c| c.set(c.get() + 1));
}

/// Installs a counting SIGUSR1 handler *without* `SA_RESTART`, so blocking
/// calls it interrupts fail with `EINTR`.
pub fn install_sigusr1() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting point; we fill in
        // the handler (an `extern "C" fn(c_int)`), an empty mask and no flags.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            let rc = libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
        }
    });
}

/// How many SIGUSR1s this thread has handled.
pub fn signals_received() -> u64 {
    SIGNALS.with(Cell::get)
}

/// Sends SIGUSR1 to the thread that created it every `every`, until
/// stopped or until `span` has passed since it started. Not `Send`: the
/// target thread must outlive it, and it is stopped (joined) when dropped.
#[derive(Debug)]
pub struct Interrupter {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, Option<Instant>)>>,
    _not_send: PhantomData<*const ()>,
}

impl Interrupter {
    /// Starts interrupting the calling thread.
    pub fn start(every: Duration, span: Duration) -> Interrupter {
        install_sigusr1();
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() };
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let thread = thread::spawn(move || {
            let stop_at = Instant::now() + span;
            let (mut sent, mut last) = (0, None);
            while !d.load(Ordering::SeqCst) && Instant::now() < stop_at {
                // SAFETY: `target` is alive: it owns this Interrupter and
                // joins this thread (in `stop` or `drop`) before it can exit.
                let rc = unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
                assert_eq!(rc, 0, "pthread_kill");
                sent += 1;
                last = Some(Instant::now());
                thread::sleep(every);
            }
            (sent, last)
        });
        Interrupter {
            done,
            thread: Some(thread),
            _not_send: PhantomData,
        }
    }

    /// Stops; returns how many signals were sent and when the last one was.
    pub fn stop(mut self) -> (u64, Option<Instant>) {
        self.shutdown()
    }

    fn shutdown(&mut self) -> (u64, Option<Instant>) {
        self.done.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().expect("interrupter thread"),
            None => (0, None),
        }
    }
}

impl Drop for Interrupter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------
// Randomness

/// Marsaglia's xorshift64: deterministic, seeded, no dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (zero is replaced: xorshift would stay at 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------
// Descriptor leak checks.

/// The descriptors this process has open, each with what it refers to
/// (`/proc/self/fd/N`'s link). Leak checks compare these sets rather than
/// counts: a descriptor another thread closed meanwhile is not a leak, and
/// in a count it would hide one.
pub fn open_fds() -> std::collections::BTreeMap<RawFd, std::path::PathBuf> {
    let own_dir = std::fs::read_link("/proc/self")
        .map(|pid| std::path::Path::new("/proc").join(pid).join("fd"));
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let fd: RawFd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            // The directory handle of this very listing.
            (own_dir.as_ref().ok() != Some(&target)).then_some((fd, target))
        })
        .collect()
}

/// Panics, naming them, if descriptors are open now that were not in
/// `before` (a descriptor number reused for another file counts as new).
pub fn assert_no_new_fds(
    before: &std::collections::BTreeMap<RawFd, std::path::PathBuf>,
    what: &str,
) {
    let now = open_fds();
    let leaked: Vec<_> = now
        .iter()
        .filter(|(fd, target)| before.get(fd) != Some(target))
        .collect();
    assert!(leaked.is_empty(), "{what}: descriptors leaked: {leaked:?}");
}
