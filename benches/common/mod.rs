//! Shared set-up for the criterion benches: descriptor fixtures, one
//! `Driver` per row (every tripoll backend, the same loop written on
//! raw libc, mio, and polling in each of its modes), and the criterion
//! configuration.
//!
//! Every driver registers the same descriptors for reading, level-triggered
//! where the library offers it, with key `i` for `fds[i]`, and on each wait
//! hands the key of every ready descriptor to a callback. The bench decides
//! what the callback does (read a byte, forward a write), so every row does
//! the same work around its wait.

// Each bench binary uses a different part of this module.
#![allow(dead_code)]

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion};
use tripoll::{Events, Interest, Mode, Poller, Token, FD_SETSIZE};

#[allow(unused_imports)]
pub(crate) use tripoll_testkit::for_each_backend;

/// The registered-descriptor counts of the scaling benches. 16 384 is the
/// largest power of two that fits under a hard `RLIMIT_NOFILE` of 20 000,
/// which a process without `CAP_SYS_RESOURCE` cannot raise.
pub const SIZES: [usize; 6] = [10, 100, 1_000, 10_000, 16_384, 65_536];

/// What the benches ask [`raise_limit`] for: 65 536 registered descriptors
/// and room to spare.
pub const FD_LIMIT: u64 = 140_000;

/// Descriptors a bench holds besides its fixture: standard streams, the
/// pollers' own descriptors, criterion's files.
const HEADROOM: u64 = 64;

/// How many events one wait can return, for every row.
pub const EVENTS: usize = 1024;

/// Raises the descriptor limit towards [`FD_LIMIT`] and returns the soft
/// limit in force, which is lower where the hard limit cannot be raised.
pub fn raise_limit() -> u64 {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().expect("getrlimit(RLIMIT_NOFILE)");
    if soft >= FD_LIMIT {
        return soft;
    }
    // Root may raise the hard limit; anyone may raise the soft one to it.
    if hard < FD_LIMIT && Resource::NOFILE.set(FD_LIMIT, FD_LIMIT).is_ok() {
        return FD_LIMIT;
    }
    rlimit::increase_nofile_limit(FD_LIMIT).expect("setrlimit(RLIMIT_NOFILE)")
}

/// Criterion settings that keep all the benches of `cargo bench` near ten
/// minutes on two cores: 1 s warm-up, 2 s of measurement, 10 000 bootstrap
/// resamples (a tenth of criterion's default: the medians do not depend on
/// it, and the analysis of each benchmark takes a second less), timed with
/// [`Clock::from_env`].
pub fn config() -> Criterion<Clock> {
    Criterion::default()
        .with_measurement(Clock::from_env())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .nresamples(10_000)
}

/// What the benches time.
///
/// The default is the benchmark thread's CPU time (user and system,
/// `CLOCK_THREAD_CPUTIME_ID`): the machine is shared, and time spent
/// waiting for a core while another process runs is not the cost of the
/// code under test. No timed loop ever blocks (every wait has its data
/// ready before it is called), so on an idle machine CPU time and wall time
/// agree. `TRIPOLL_BENCH_CLOCK=wall` switches to wall time
/// (`CLOCK_MONOTONIC`), criterion's usual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// `CLOCK_THREAD_CPUTIME_ID`.
    Thread,
    /// `CLOCK_MONOTONIC`.
    Wall,
}

impl Clock {
    /// The environment variable [`Clock::from_env`] reads.
    pub const ENV_VAR: &'static str = "TRIPOLL_BENCH_CLOCK";

    /// `cpu` (the default) or `wall` from `TRIPOLL_BENCH_CLOCK`.
    pub fn from_env() -> Clock {
        match std::env::var(Self::ENV_VAR).as_deref() {
            Err(_) | Ok("") | Ok("cpu") => Clock::Thread,
            Ok("wall") => Clock::Wall,
            Ok(other) => panic!("{}={other}: expected `cpu` or `wall`", Self::ENV_VAR),
        }
    }

    fn now(self) -> Duration {
        let id = match self {
            Clock::Thread => libc::CLOCK_THREAD_CPUTIME_ID,
            Clock::Wall => libc::CLOCK_MONOTONIC,
        };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        check(unsafe { libc::clock_gettime(id, &mut ts) }, "clock_gettime");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

/// Criterion's own clock, for its nanosecond formatter.
static WALL: WallTime = WallTime;

impl Measurement for Clock {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }

    fn end(&self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

/// A benchmark group timed by [`Clock`].
pub type Group<'c> = BenchmarkGroup<'c, Clock>;

/// Samples per benchmark for `n` registered descriptors: fewer for the big
/// sets, where one iteration of poll or select takes milliseconds.
pub fn samples(n: usize) -> usize {
    if n >= 10_000 {
        20
    } else {
        30
    }
}

/// `n` registered descriptors: the ends of `n / 2` non-blocking Unix stream
/// socket pairs, every end registered, so that `n` descriptors cost `n`
/// from the limit. Descriptor `i`'s peer is `i ^ 1`: a byte written to the
/// peer makes `i` readable, and nothing else does. In a fresh process the
/// descriptors are numbered from 3 up, so sets of about a thousand stay
/// within select's reach.
#[derive(Debug)]
pub struct Fds {
    owned: Vec<OwnedFd>,
    raw: Vec<RawFd>,
}

impl Fds {
    /// The fixture for `n` (even) descriptors, or why it cannot be made
    /// under `limit` (the soft `RLIMIT_NOFILE`).
    pub fn new(n: usize, limit: u64) -> Result<Fds, String> {
        assert!(n % 2 == 0, "descriptors come in pairs");
        if n as u64 + HEADROOM > limit {
            return Err(format!(
                "needs {n} descriptors plus {HEADROOM}, RLIMIT_NOFILE is {limit} \
                 (raising the hard limit needs CAP_SYS_RESOURCE)"
            ));
        }
        let mut owned = Vec::with_capacity(n);
        for _ in 0..n / 2 {
            let (a, b) = socket_pair().map_err(|e| format!("socketpair: {e}"))?;
            owned.push(a);
            owned.push(b);
        }
        let raw = owned.iter().map(AsRawFd::as_raw_fd).collect();
        Ok(Fds { owned, raw })
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Every descriptor, in key order.
    pub fn all(&self) -> &[RawFd] {
        &self.raw
    }

    /// Descriptor `i`.
    #[inline]
    pub fn fd(&self, i: usize) -> RawFd {
        self.raw[i]
    }

    /// The other end of descriptor `i`'s pair: write here to make `i`
    /// readable.
    #[inline]
    pub fn peer(&self, i: usize) -> RawFd {
        self.raw[i ^ 1]
    }

    /// The highest descriptor, if select cannot take it (with room for the
    /// select backend's own wake-up descriptor).
    pub fn beyond_select(&self) -> Option<RawFd> {
        let max = self.raw.iter().copied().max()?;
        (max as usize + 8 >= FD_SETSIZE).then_some(max)
    }
}

/// Builds the fixture for `n` descriptors, or prints why `group/row/n` is
/// not run.
pub fn fixture(group: &str, n: usize, limit: u64) -> Option<Fds> {
    match Fds::new(n, limit) {
        Ok(fds) => Some(fds),
        Err(why) => {
            println!("{group}/*/{n}: not run: {why}");
            None
        }
    }
}

/// Whether a row may run on `fds`; prints why not for select beyond
/// `FD_SETSIZE`.
pub fn runnable<D: Driver>(group: &str, fds: &Fds) -> bool {
    if !D::SELECT {
        return true;
    }
    match fds.beyond_select() {
        None => true,
        Some(fd) => {
            println!(
                "{group}/{}/{}: not run: descriptor {fd} is beyond select's FD_SETSIZE ({FD_SETSIZE})",
                D::NAME,
                fds.len()
            );
            false
        }
    }
}

/// A connected pair of non-blocking, close-on-exec Unix stream sockets.
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair just returned these two descriptors; we own them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes one byte; a bench whose write fails has measured nothing.
#[inline]
pub fn write_byte(fd: RawFd) {
    let b = 1u8;
    // SAFETY: one readable byte at `&b`.
    let n = unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    assert_eq!(n, 1, "write({fd}): {}", io::Error::last_os_error());
}

/// Reads the one byte a bench wrote.
#[inline]
pub fn read_byte(fd: RawFd) {
    let mut b = 0u8;
    // SAFETY: one writable byte at `&mut b`.
    let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
    assert_eq!(n, 1, "read({fd}): {}", io::Error::last_os_error());
}

/// `-1` from a libc call as the panic every bench wants.
fn check(res: libc::c_int, what: &str) -> libc::c_int {
    assert!(res != -1, "{what}: {}", io::Error::last_os_error());
    res
}

/// One row of a bench: a way to wait for readable descriptors.
pub trait Driver: Sized {
    /// The row's name in the report.
    const NAME: &'static str;
    /// Whether the row is select(2), limited to descriptors below
    /// `FD_SETSIZE`.
    const SELECT: bool = false;

    /// Registers every `fds[i]` for reading with key `i`.
    fn open(fds: &[RawFd]) -> Self;

    /// Blocks until at least one descriptor is ready, calls `f(key)` for
    /// each ready one and returns how many it reported. An interrupted wait
    /// reports nothing.
    fn wait(&mut self, f: impl FnMut(usize)) -> usize;
}

/// A tripoll backend that can be made without arguments: every backend of
/// the one backend list (`tests/common/backends.rs`).
pub trait Backend: Poller + Sized {
    const NAME: &'static str;
    const SELECT: bool;
    fn create() -> tripoll::Result<Self>;
}

macro_rules! impl_backend {
    ($module:ident, $backend:expr, $poller:ty) => {
        impl Backend for $poller {
            const NAME: &'static str = $backend.name();
            const SELECT: bool = matches!($backend, tripoll::Backend::Select);
            fn create() -> tripoll::Result<Self> {
                <$poller>::new()
            }
        }
    };
}

for_each_backend!(impl_backend);

/// Visits every tripoll backend of the one backend list, each called
/// directly.
pub fn every_backend(v: &mut impl Visit) {
    macro_rules! visit {
        ($module:ident, $backend:expr, $poller:ty) => {
            v.visit::<Tri<$poller>>();
        };
    }
    for_each_backend!(visit);
}

/// A tripoll backend, called directly (no `AnyPoller` dispatch).
#[derive(Debug)]
pub struct Tri<P> {
    pub poller: P,
    events: Events,
}

impl<P: Backend> Tri<P> {
    /// A poller with nothing registered.
    pub fn empty() -> Tri<P> {
        Tri {
            poller: P::create().expect("create poller"),
            events: Events::with_capacity(EVENTS),
        }
    }
}

impl<P: Backend> Driver for Tri<P> {
    const NAME: &'static str = P::NAME;
    const SELECT: bool = P::SELECT;

    fn open(fds: &[RawFd]) -> Self {
        let tri: Tri<P> = Tri::empty();
        for (i, &fd) in fds.iter().enumerate() {
            tri.poller
                .register(fd, Token(i), Interest::READABLE, Mode::Level)
                .expect("register");
        }
        tri
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        let n = self.poller.wait(&mut self.events, None).expect("wait");
        for ev in self.events.iter() {
            f(ev.token().0);
        }
        n
    }
}

/// The interest tripoll's epoll backend asks for with `Interest::READABLE`.
pub const EPOLL_READ: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;

/// `epoll_create1`, `epoll_ctl`, `epoll_wait` on libc: the floor for the
/// epoll backend.
#[derive(Debug)]
pub struct RawEpoll {
    pub epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

impl RawEpoll {
    pub fn empty() -> RawEpoll {
        // SAFETY: plain system call; a new descriptor we own on success.
        let epfd = check(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        );
        RawEpoll {
            // SAFETY: epoll_create1 just returned this descriptor.
            epfd: unsafe { OwnedFd::from_raw_fd(epfd) },
            buf: Vec::with_capacity(EVENTS),
        }
    }

    #[inline]
    pub fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, key: usize) {
        let mut ev = libc::epoll_event {
            events,
            u64: key as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        check(
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) },
            "epoll_ctl",
        );
    }
}

impl Driver for RawEpoll {
    const NAME: &'static str = "raw-epoll";

    fn open(fds: &[RawFd]) -> Self {
        let raw = RawEpoll::empty();
        for (i, &fd) in fds.iter().enumerate() {
            raw.ctl(libc::EPOLL_CTL_ADD, fd, EPOLL_READ, i);
        }
        raw
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        let cap = self.buf.capacity() as libc::c_int;
        // SAFETY: `buf` has room for `cap` events, which the kernel writes.
        let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), self.buf.as_mut_ptr(), cap, -1) };
        if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            return 0;
        }
        let n = check(n, "epoll_wait") as usize;
        // SAFETY: epoll_wait initialised the first `n` (≤ cap) entries.
        unsafe { self.buf.set_len(n) };
        for ev in &self.buf {
            f(ev.u64 as usize);
        }
        n
    }
}

/// A `pollfd` array built once, handed to poll(2) on every wait and scanned
/// for `revents` until every ready descriptor is found: the floor for the
/// poll backend.
#[derive(Debug)]
pub struct RawPoll {
    fds: Vec<libc::pollfd>,
}

impl Driver for RawPoll {
    const NAME: &'static str = "raw-poll";

    fn open(fds: &[RawFd]) -> Self {
        let fds = fds
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            })
            .collect();
        RawPoll { fds }
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        let len = self.fds.len() as libc::nfds_t;
        // SAFETY: `fds` is a live array of `len` pollfds.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), len, -1) };
        if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            return 0;
        }
        let n = check(n, "poll") as usize;
        let mut left = n;
        for (i, p) in self.fds.iter().enumerate() {
            if left == 0 {
                break;
            }
            if p.revents != 0 {
                left -= 1;
                f(i);
            }
        }
        n
    }
}

/// A read `fd_set` built once, copied and handed to select(2) on every wait,
/// then tested descriptor by descriptor until every ready one is found: the
/// floor for the select backend.
pub struct RawSelect {
    fds: Vec<RawFd>,
    master: libc::fd_set,
    nfds: libc::c_int,
}

impl std::fmt::Debug for RawSelect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSelect")
            .field("nfds", &self.nfds)
            .finish()
    }
}

impl Driver for RawSelect {
    const NAME: &'static str = "raw-select";
    const SELECT: bool = true;

    fn open(fds: &[RawFd]) -> Self {
        // SAFETY: fd_set is plain bits; all-zero is the empty set.
        let mut master: libc::fd_set = unsafe { std::mem::zeroed() };
        let mut max = -1;
        for &fd in fds {
            assert!(
                (0..FD_SETSIZE as RawFd).contains(&fd),
                "fd {fd} ≥ FD_SETSIZE"
            );
            // SAFETY: `fd` is in 0..FD_SETSIZE, checked above.
            unsafe { libc::FD_SET(fd, &mut master) };
            max = max.max(fd);
        }
        RawSelect {
            fds: fds.to_vec(),
            master,
            nfds: max + 1,
        }
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        let mut set = self.master;
        let none = std::ptr::null_mut();
        // SAFETY: `set` is a live fd_set; `nfds` ≤ FD_SETSIZE; null sets and
        // a null timeout are allowed.
        let n = unsafe { libc::select(self.nfds, &mut set, none, none, std::ptr::null_mut()) };
        if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            return 0;
        }
        let n = check(n, "select") as usize;
        let mut left = n;
        for (i, &fd) in self.fds.iter().enumerate() {
            if left == 0 {
                break;
            }
            // SAFETY: every registered `fd` is below FD_SETSIZE (checked in open).
            if unsafe { libc::FD_ISSET(fd, &set) } {
                left -= 1;
                f(i);
            }
        }
        n
    }
}

/// `mio::Poll` with `SourceFd`. mio registers everything edge-triggered;
/// each bench reads what it wrote, so every wait sees a fresh edge.
#[derive(Debug)]
pub struct Mio {
    poll: mio::Poll,
    events: mio::Events,
}

impl Driver for Mio {
    const NAME: &'static str = "mio";

    fn open(fds: &[RawFd]) -> Self {
        let poll = mio::Poll::new().expect("mio::Poll::new");
        for (i, fd) in fds.iter().enumerate() {
            poll.registry()
                .register(
                    &mut mio::unix::SourceFd(fd),
                    mio::Token(i),
                    mio::Interest::READABLE,
                )
                .expect("mio register");
        }
        Mio {
            poll,
            events: mio::Events::with_capacity(EVENTS),
        }
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        match self.poll.poll(&mut self.events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return 0,
            Err(e) => panic!("mio poll: {e}"),
        }
        let mut n = 0;
        for ev in self.events.iter() {
            n += 1;
            f(ev.token().0);
        }
        n
    }
}

/// `polling::Poller` in one of its three modes (`PollMode`), the row's
/// name saying which: `polling-oneshot` (its default, `Poller::add`: every
/// event is followed by a `modify` that re-arms it), `polling-level` and
/// `polling-edge` (`Poller::add_with_mode`: nothing to re-arm; each bench
/// reads what it wrote, so every wait sees a fresh edge).
#[derive(Debug)]
pub struct Polling<const MODE: u8> {
    poller: polling::Poller,
    events: polling::Events,
    fds: Vec<RawFd>,
}

/// The `MODE` of [`Polling`].
pub const ONESHOT: u8 = 0;
pub const LEVEL: u8 = 1;
pub const EDGE: u8 = 2;

impl<const MODE: u8> Driver for Polling<MODE> {
    const NAME: &'static str = match MODE {
        ONESHOT => "polling-oneshot",
        LEVEL => "polling-level",
        _ => "polling-edge",
    };

    fn open(fds: &[RawFd]) -> Self {
        let poller = polling::Poller::new().expect("polling::Poller::new");
        let mode = match MODE {
            ONESHOT => polling::PollMode::Oneshot,
            LEVEL => polling::PollMode::Level,
            _ => polling::PollMode::Edge,
        };
        for (i, &fd) in fds.iter().enumerate() {
            // SAFETY: `fd` stays open until after the poller is dropped (the
            // fixture outlives every driver).
            unsafe { poller.add_with_mode(fd, polling::Event::readable(i), mode) }
                .expect("polling add");
        }
        let cap = NonZeroUsize::new(EVENTS).expect("EVENTS > 0");
        Polling {
            poller,
            events: polling::Events::with_capacity(cap),
            fds: fds.to_vec(),
        }
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        self.events.clear();
        match self.poller.wait(&mut self.events, None) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return 0,
            Err(e) => panic!("polling wait: {e}"),
        }
        let mut n = 0;
        for ev in self.events.iter() {
            n += 1;
            f(ev.key);
            if MODE == ONESHOT {
                // SAFETY: the descriptor is open (see `open`).
                let fd = unsafe { BorrowedFd::borrow_raw(self.fds[ev.key]) };
                self.poller
                    .modify(fd, polling::Event::readable(ev.key))
                    .expect("polling modify");
            }
        }
        n
    }
}

/// The same loop on the `io-uring` crate, the floor for the uring backend:
/// a oneshot `IORING_OP_POLL_ADD` per descriptor, and each wait one
/// `io_uring_enter` that submits the re-arms of the last wait's events and
/// sleeps for a completion, whose readiness is taken as it comes (no second
/// look at completions that waited in the ring, no locks).
#[cfg(feature = "io-uring")]
pub struct RawUring {
    ring: io_uring::IoUring,
    fds: Vec<RawFd>,
}

#[cfg(feature = "io-uring")]
impl std::fmt::Debug for RawUring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawUring")
            .field("fds", &self.fds.len())
            .finish()
    }
}

#[cfg(feature = "io-uring")]
impl RawUring {
    fn arm(&mut self, key: usize) {
        let fd = io_uring::types::Fd(self.fds[key]);
        let entry = io_uring::opcode::PollAdd::new(fd, EPOLL_READ)
            .build()
            .user_data(key as u64);
        loop {
            // SAFETY: a poll request points at no memory of ours.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            self.ring.submit().expect("io_uring submit");
        }
    }
}

#[cfg(feature = "io-uring")]
impl Driver for RawUring {
    const NAME: &'static str = "raw-uring";

    fn open(fds: &[RawFd]) -> Self {
        let ring = io_uring::IoUring::new(256).expect("io_uring_setup");
        let mut raw = RawUring {
            ring,
            fds: fds.to_vec(),
        };
        for key in 0..fds.len() {
            raw.arm(key);
        }
        raw.ring.submit().expect("io_uring submit");
        raw
    }

    #[inline]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return 0,
            Err(e) => panic!("io_uring_enter: {e}"),
        }
        let mut n = 0;
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            let key = cqe.user_data() as usize;
            assert!(cqe.result() >= 0, "poll {key}: {}", cqe.result());
            n += 1;
            f(key);
            self.arm(key);
        }
        n
    }
}

/// tripoll's io_uring backend in edge mode, called directly: the ping-pong
/// row that `FloorUring<true>` is the floor of.
#[cfg(feature = "io-uring")]
#[derive(Debug)]
pub struct UringEdge(Tri<tripoll::Uring>);

#[cfg(feature = "io-uring")]
impl Driver for UringEdge {
    const NAME: &'static str = "uring-edge";

    fn open(fds: &[RawFd]) -> Self {
        let tri: Tri<tripoll::Uring> = Tri::empty();
        for (i, &fd) in fds.iter().enumerate() {
            tri.poller
                .register(fd, Token(i), Interest::READABLE, Mode::Edge)
                .expect("register");
        }
        UringEdge(tri)
    }

    #[inline]
    fn wait(&mut self, f: impl FnMut(usize)) -> usize {
        self.0.wait(f)
    }
}

/// The pattern by which the uring backend keeps the [`Poller`] contract, at
/// its barest: the floor of that backend's own bookkeeping, for the
/// ping-pong only (two descriptors, nothing else registered).
///
/// As the backend does, it keeps the ring under a mutex and sleeps in
/// `io_uring_enter` without it (so another thread could register), and it
/// reports only readiness that is current: completions found waiting in the
/// ring when a wait begins are asked again with one zero-timeout `ppoll`,
/// together (level) with the descriptors the last wait reported; a level
/// descriptor found not ready gets a new oneshot request, and the ones the
/// last wait reported get theirs before the wait sleeps. Edge keeps one
/// multishot request per descriptor. Unlike the backend it has one mode and
/// one interest, no sequence numbers (nothing is ever cancelled), no line
/// for more ready descriptors than `Events` holds, no merging of two
/// completions of one wait, no notification and no error handling beyond
/// a panic.
#[cfg(feature = "io-uring")]
pub struct FloorUring<const EDGE: bool> {
    ring: std::sync::Mutex<io_uring::IoUring>,
    ring_fd: RawFd,
    fds: Vec<RawFd>,
    /// Level: the keys the last wait reported.
    rearm: Vec<usize>,
    /// One wait's `ppoll` array, and the key of each entry.
    check: Vec<libc::pollfd>,
    keys: Vec<usize>,
}

#[cfg(feature = "io-uring")]
impl<const EDGE: bool> std::fmt::Debug for FloorUring<EDGE> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorUring")
            .field("edge", &EDGE)
            .field("fds", &self.fds.len())
            .finish()
    }
}

#[cfg(feature = "io-uring")]
impl<const EDGE: bool> FloorUring<EDGE> {
    fn arm(ring: &mut io_uring::IoUring, fd: RawFd, key: usize) {
        let entry = io_uring::opcode::PollAdd::new(io_uring::types::Fd(fd), EPOLL_READ)
            .multi(EDGE)
            .build()
            .user_data(key as u64);
        // SAFETY: a poll request points at no memory of ours; the queue has
        // room (two descriptors, one request each, 256 entries).
        unsafe { ring.submission().push(&entry) }.expect("submission queue full");
    }

    fn add_check(check: &mut Vec<libc::pollfd>, keys: &mut Vec<usize>, fd: RawFd, key: usize) {
        check.push(libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        });
        keys.push(key);
    }
}

#[cfg(feature = "io-uring")]
impl<const EDGE: bool> Driver for FloorUring<EDGE> {
    const NAME: &'static str = if EDGE {
        "floor-uring-edge"
    } else {
        "floor-uring"
    };

    fn open(fds: &[RawFd]) -> Self {
        let mut ring = io_uring::IoUring::new(256).expect("io_uring_setup");
        for (key, &fd) in fds.iter().enumerate() {
            Self::arm(&mut ring, fd, key);
        }
        ring.submit().expect("io_uring submit");
        FloorUring {
            ring_fd: ring.as_raw_fd(),
            ring: std::sync::Mutex::new(ring),
            fds: fds.to_vec(),
            rearm: Vec::new(),
            check: Vec::new(),
            keys: Vec::new(),
        }
    }

    // A call, as the backend's `wait` is (inlined into the bench's loop,
    // the floor would count about 50 fewer a round trip in level mode).
    #[inline(never)]
    fn wait(&mut self, mut f: impl FnMut(usize)) -> usize {
        let FloorUring {
            ring,
            ring_fd,
            fds,
            rearm,
            check,
            keys,
        } = self;
        // Locked through a shared reference, as the backend's `wait(&self)`
        // must: another thread may hold it.
        let ring: &std::sync::Mutex<io_uring::IoUring> = ring;
        let to_submit = {
            let mut guard = ring.lock().expect("ring lock");
            check.clear();
            keys.clear();
            for cqe in guard.completion() {
                let key = cqe.user_data() as usize;
                Self::add_check(check, keys, fds[key], key);
            }
            if !keys.is_empty() {
                for &key in rearm.iter() {
                    Self::add_check(check, keys, fds[key], key);
                }
                rearm.clear();
                static ZERO: libc::timespec = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: a live array of `len` pollfds, a static timeout,
                // no signal mask.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_ppoll,
                        check.as_mut_ptr(),
                        check.len() as libc::nfds_t,
                        &ZERO as *const libc::timespec,
                        std::ptr::null::<libc::sigset_t>(),
                        0usize,
                    )
                };
                assert!(r >= 0, "ppoll: {}", io::Error::last_os_error());
                let mut n = 0;
                for (p, &key) in check.iter().zip(keys.iter()) {
                    if p.revents & libc::POLLIN != 0 {
                        f(key);
                        n += 1;
                        if !EDGE {
                            rearm.push(key);
                        }
                    } else if !EDGE {
                        Self::arm(&mut guard, fds[key], key);
                    }
                }
                return n;
            }
            for &key in rearm.iter() {
                Self::arm(&mut guard, fds[key], key);
            }
            rearm.clear();
            let queued = guard.submission().len();
            queued
        };
        // SAFETY: io_uring_enter with scalar arguments only (no extended
        // argument); the queues were synced when their views were dropped.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                *ring_fd,
                to_submit as libc::c_uint,
                1 as libc::c_uint,
                io_uring::EnterFlags::GETEVENTS.bits(),
                std::ptr::null::<libc::c_void>(),
                0usize,
            )
        };
        assert!(r >= 0, "io_uring_enter: {}", io::Error::last_os_error());
        let mut guard = ring.lock().expect("ring lock");
        let mut n = 0;
        for cqe in guard.completion() {
            let key = cqe.user_data() as usize;
            f(key);
            n += 1;
            if !EDGE {
                rearm.push(key);
            }
        }
        n
    }
}

/// Something that runs a bench for one row type.
pub trait Visit {
    fn visit<D: Driver>(&mut self);
}

/// The backends of the one list and the raw floors (raw-uring with the
/// `io-uring` feature), then mio and polling (in its three modes).
pub fn every_row(v: &mut impl Visit) {
    every_backend(v);
    v.visit::<RawEpoll>();
    v.visit::<RawPoll>();
    v.visit::<RawSelect>();
    #[cfg(feature = "io-uring")]
    v.visit::<RawUring>();
    v.visit::<Mio>();
    v.visit::<Polling<ONESHOT>>();
    v.visit::<Polling<LEVEL>>();
    v.visit::<Polling<EDGE>>();
}

/// The `k`-th of `active` keys spread evenly over `0..n`, each in the
/// middle of its share, so that a linear scan finds none of them first.
pub fn spread(k: usize, active: usize, n: usize) -> usize {
    (2 * k + 1) * n / (2 * active)
}
