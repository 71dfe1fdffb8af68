// The module's documentation (a guide, with the echo server as a doctest)
// is README.md next to this file; this file is the loop.
#![doc = include_str!("README.md")]

mod child;
mod context;
mod error;
mod failure;
mod fd;
mod handle;
mod signal;
mod slab;
mod sources;
mod timer;

pub use crate::source::SignalInfo;
pub use context::Context;
pub use error::{Error, Result};
pub use failure::{Cause, Failure, Origin};
pub use handle::Handle;
pub use timer::TimerId;

pub(crate) use timer::deadline_after;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{AnyPoller, Event, Events, Interest, Mode, Poller, Token};
use handle::Shared;
use sources::SIGNAL_TOKEN;

/// Events one wait can return, unless the caller chooses.
const DEFAULT_EVENTS: usize = 1024;

/// A callback event loop over a [`Poller`]; see the [module docs](self).
///
/// A reactor owns the loop's one state, a [`Context`] (the sources,
/// timers, signals and error handler), plus the loop: a poller of a known
/// type, so that its wait is dispatched statically, and the event buffer.
/// Every call a callback can make on its `&mut Context` is a method of the
/// reactor too, for use before and between runs; the reactor reaches its
/// context for them, and hands out no `&mut Context` of its own. So the
/// state cannot be swapped between two reactors (which would make one wait
/// on its poller and dispatch into the other's sources):
///
/// ```compile_fail
/// use tripoll::reactor::Reactor;
///
/// let mut r1 = Reactor::new().unwrap();
/// let mut r2 = Reactor::new().unwrap();
/// std::mem::swap(&mut *r1, &mut *r2); // a reactor is not a pointer to its context
/// ```
///
/// A reactor belongs to the thread that creates it (its handlers need not be
/// `Send`, and the signal mask it sets is that thread's); other threads use
/// a [`Handle`]. To run one on another thread, create it there.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<tripoll::reactor::Reactor>(); // a reactor stays on its thread
/// ```
pub struct Reactor<P: Poller + 'static = AnyPoller> {
    /// Never lent out as `&mut` but to callbacks (which cannot hold two at
    /// once), nor replaced: it and `shared` stay one loop's.
    ctx: Context,
    /// The allocation `ctx` shares with its handles, typed.
    shared: Arc<Shared<P>>,
    events: Events,
    /// The next event of `events` to dispatch: a turn cut short by an error
    /// reading the signal descriptor resumes here.
    cursor: usize,
}

impl Reactor<AnyPoller> {
    /// A reactor over the backend `TRIPOLL_BACKEND` names (epoll by
    /// default); see [`AnyPoller::from_env`].
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::Poller;
    ///
    /// // The backend TRIPOLL_BACKEND names, else epoll.
    /// let reactor = Reactor::new()?;
    /// println!("a reactor on {}", reactor.poller().name());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Poller`] if the variable names no backend or the poller
    /// cannot be created.
    pub fn new() -> Result<Reactor<AnyPoller>> {
        Ok(Reactor::with_poller(AnyPoller::from_env()?))
    }
}

impl<P: Poller + 'static> Reactor<P> {
    /// A reactor over `poller`, reading up to 1024 events per turn.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Backend, Poll, Poller};
    ///
    /// // A reactor over a poller of a known type: its wait is dispatched statically.
    /// let reactor = Reactor::with_poller(Poll::new()?);
    /// assert_eq!(reactor.poller().backend(), Backend::Poll);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_poller(poller: P) -> Reactor<P> {
        Reactor::with_poller_and_capacity(poller, DEFAULT_EVENTS)
    }

    /// A reactor over `poller`, reading up to `events` events per turn
    /// (at least one).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Epoll, Interest, Mode};
    ///
    /// // Two events per turn at most: many ready sources take several turns, in turn.
    /// let mut reactor = Reactor::with_poller_and_capacity(Epoll::new()?, 2);
    /// let (a, mut b) = UnixStream::pair()?;
    /// let (c, mut d) = UnixStream::pair()?;
    /// let (e, mut f) = UnixStream::pair()?;
    /// for s in [&a, &c, &e] {
    ///     reactor.register(s.as_raw_fd(), Interest::READABLE, Mode::Level, |ctx, ev| {
    ///         ctx.unregister(ev.token())?;
    ///         Ok(())
    ///     })?;
    /// }
    /// for w in [&mut b, &mut d, &mut f] {
    ///     w.write_all(b"x")?;
    /// }
    /// assert_eq!(reactor.run_once(None)?, 2); // two handlers this turn
    /// assert_eq!(reactor.run_once(None)?, 1); // the third the next
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_poller_and_capacity(poller: P, events: usize) -> Reactor<P> {
        let shared = Arc::new(Shared::new(poller));
        let erased: Arc<Shared<dyn Poller>> = shared.clone();
        Reactor {
            ctx: Context::new(erased),
            shared,
            events: Events::with_capacity(events),
            cursor: 0,
        }
    }

    /// The poller underneath, typed. ([`Context::poller`] gives it as
    /// `&dyn Poller`.)
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Epoll, Mode, Poller};
    ///
    /// let reactor = Reactor::with_poller(Epoll::new()?);
    /// // Typed: the backend's own methods are there too.
    /// let poller: &Epoll = reactor.poller();
    /// assert!(poller.supports(Mode::Exclusive));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn poller(&self) -> &P {
        &self.shared.poller
    }

    /// Turns the loop until a callback calls [`Context::stop`] or a
    /// [`Handle::stop`] arrives, then returns `Ok(())`. A stop asked for
    /// before `run` is called makes it return at once.
    ///
    /// With nothing registered and no timer pending, `run` sleeps until a
    /// [`Handle`] wakes it. A callback that fails does not end it (see the
    /// [module docs](self#errors-and-panics)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut ticks = 0;
    /// reactor.set_interval(Duration::from_millis(1), move |ctx, _| {
    ///     ticks += 1;
    ///     if ticks == 3 {
    ///         ctx.stop(); // `run` returns after this turn
    ///     }
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Only when the poller's wait fails ([`Error::Poller`]) or the signal
    /// descriptor cannot be read ([`Error::Os`]). The reactor stays usable.
    pub fn run(&mut self) -> Result<()> {
        loop {
            if self.take_stop() {
                return Ok(());
            }
            self.run_once(None)?;
        }
    }

    /// Turns the loop once: waits for readiness, at most `timeout` (`None`:
    /// no limit) and no later than the next timer's deadline, then calls the
    /// handlers of the ready sources, the timers that are due and the
    /// closures posted from other threads, in that order. Returns how many
    /// callbacks ran (failed ones included); `Ok(0)` when the timeout
    /// passed or the loop was woken with nothing to do.
    ///
    /// Failures are handled as in [`run`](Reactor::run): the error handler
    /// gets them at the end of the turn, with any left by a call made
    /// outside the loop (a destructor that panicked during
    /// [`unregister`](Context::unregister)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// // Nothing registered: the timeout passes and nothing runs.
    /// assert_eq!(reactor.run_once(Some(Duration::from_millis(1)))?, 0);
    /// reactor.handle().post(|_| Ok(()))?;
    /// assert_eq!(reactor.run_once(None)?, 1); // the posted closure
    /// # Ok::<(), tripoll::reactor::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`run`](Reactor::run).
    pub fn run_once(&mut self, timeout: Option<Duration>) -> Result<usize> {
        if self.cursor >= self.events.len() {
            let timeout = self.wait_timeout(timeout);
            self.events.clear();
            self.cursor = 0;
            self.shared.poller.wait(&mut self.events, timeout)?;
        }
        let mut ran = 0;
        while let Some(&event) = self.events.as_slice().get(self.cursor) {
            self.cursor += 1;
            ran += if event.token() == SIGNAL_TOKEN {
                self.ctx.dispatch_signals()?
            } else {
                self.ctx.dispatch_io(event)
            };
        }
        ran += self.ctx.fire_timers();
        ran += self.ctx.run_posted();
        self.ctx.report_failures();
        Ok(ran)
    }

    /// Whether a stop was asked for ([`Context::stop`], [`Handle::stop`])
    /// that [`run`](Reactor::run) has not yet honoured; for loops built on
    /// [`run_once`](Reactor::run_once).
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.handle().stop()?; // from any thread
    /// assert!(reactor.stop_requested());
    /// // A loop of its own, built on run_once, checks it between turns.
    /// while !reactor.stop_requested() {
    ///     reactor.run_once(None)?;
    /// }
    /// reactor.run()?; // `run` honours the stop at once, and clears it
    /// assert!(!reactor.stop_requested());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn stop_requested(&self) -> bool {
        self.ctx.stop || self.shared.stop.load(Ordering::Acquire)
    }

    fn take_stop(&mut self) -> bool {
        let local = std::mem::take(&mut self.ctx.stop);
        let remote = self.shared.stop.swap(false, Ordering::AcqRel);
        local || remote
    }

    /// The caller's timeout, shortened to the next timer's deadline, or zero
    /// when posted closures are still waiting to run or failures to be
    /// reported (left by a call made outside the loop).
    fn wait_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.ctx.posted.is_empty() || self.ctx.has_failures() {
            return Some(Duration::ZERO);
        }
        let timer = self
            .ctx
            .timers
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        match (timeout, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The calls a callback makes on its [`Context`], made on the reactor
/// before and between runs: each is the context's, reached here.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// use tripoll::reactor::Reactor;
/// use tripoll::{Interest, Mode};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reactor = Reactor::new()?;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// // On the reactor, before it runs ...
/// let token = reactor.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |ctx, ev| {
///     // ... and on the context, inside a callback: the same calls.
///     ctx.unregister(ev.token())?;
///     ctx.stop();
///     Ok(())
/// })?;
/// let guard = reactor.set_timer(Duration::from_secs(60), |_, _| Ok(()))?;
/// b.write_all(b"x")?;
/// reactor.run()?;
/// assert!(!reactor.is_registered(token));
/// assert!(reactor.cancel_timer(guard));
/// # Ok(())
/// # }
/// ```
impl<P: Poller + 'static> Reactor<P> {
    /// The loop's state, for the task layer's executor to lend to the
    /// futures it polls; never to user code (see the type's docs).
    pub(crate) fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }

    /// See [`Context::register`].
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, mut b) = UnixStream::pair()?; // the caller keeps `a` open
    /// let token = reactor.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |ctx, ev| {
    ///     assert!(ev.is_readable());
    ///     ctx.unregister(ev.token())?; // before `a` is closed
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// assert!(reactor.is_registered(token));
    /// b.write_all(b"x")?;
    /// reactor.run()?;
    /// assert!(!reactor.is_registered(token));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::register`].
    pub fn register<F>(
        &mut self,
        fd: RawFd,
        interest: Interest,
        mode: Mode,
        handler: F,
    ) -> Result<Token>
    where
        F: FnMut(&mut Context, Event) -> io::Result<()> + 'static,
    {
        self.ctx.register(fd, interest, mode, handler)
    }

    /// See [`Context::register_owned`].
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// // The reactor owns `a` now, and hands it to the handler.
    /// reactor.register_owned(a, Interest::READABLE, Mode::Level, |ctx, a, ev| {
    ///     let mut buf = [0; 2];
    ///     a.read_exact(&mut buf)?;
    ///     assert_eq!(&buf, b"hi");
    ///     ctx.unregister(ev.token())?; // closes `a`
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// b.write_all(b"hi")?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::register_owned`].
    pub fn register_owned<S, F>(
        &mut self,
        source: S,
        interest: Interest,
        mode: Mode,
        handler: F,
    ) -> Result<Token>
    where
        S: AsRawFd + 'static,
        F: FnMut(&mut Context, &mut S, Event) -> io::Result<()> + 'static,
    {
        self.ctx.register_owned(source, interest, mode, handler)
    }

    /// See [`Context::modify`].
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let token = reactor.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |ctx, ev| {
    ///     assert!(ev.is_writable()); // after the modify below
    ///     ctx.unregister(ev.token())?;
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// // Nothing to read, but room to write: the handler runs once it asks for that.
    /// reactor.modify(token, Interest::WRITABLE, Mode::Level)?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::modify`].
    pub fn modify(&mut self, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.ctx.modify(token, interest, mode)
    }

    /// See [`Context::modify_with`].
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// let token = reactor.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |_, _| {
    ///     unreachable!("replaced before the loop runs")
    /// })?;
    /// // A new interest and a new handler in one call (Python's selector.modify).
    /// reactor.modify_with(token, Interest::READABLE, Mode::Level, |ctx, ev| {
    ///     ctx.unregister(ev.token())?;
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// b.write_all(b"x")?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::modify_with`].
    pub fn modify_with<F>(
        &mut self,
        token: Token,
        interest: Interest,
        mode: Mode,
        handler: F,
    ) -> Result<()>
    where
        F: FnMut(&mut Context, Event) -> io::Result<()> + 'static,
    {
        self.ctx.modify_with(token, interest, mode, handler)
    }

    /// See [`Context::modify_owned`].
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// let token = reactor.register_owned(a, Interest::READABLE, Mode::Level, |_, _: &mut UnixStream, _| {
    ///     unreachable!("replaced before the loop runs")
    /// })?;
    /// // The owned source stays; its interest and handler change.
    /// reactor.modify_owned(token, Interest::READABLE, Mode::Level, |ctx, a: &mut UnixStream, ev| {
    ///     let mut buf = [0; 1];
    ///     a.read_exact(&mut buf)?;
    ///     ctx.unregister(ev.token())?;
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// b.write_all(b"x")?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::modify_owned`].
    pub fn modify_owned<S, F>(
        &mut self,
        token: Token,
        interest: Interest,
        mode: Mode,
        handler: F,
    ) -> Result<()>
    where
        S: AsRawFd + 'static,
        F: FnMut(&mut Context, &mut S, Event) -> io::Result<()> + 'static,
    {
        self.ctx.modify_owned(token, interest, mode, handler)
    }

    /// See [`Context::unregister`].
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::{Error, Reactor};
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let token = reactor.register(a.as_raw_fd(), Interest::READABLE, Mode::Level, |_, _| Ok(()))?;
    /// reactor.unregister(token)?; // now `a` may be closed
    /// drop(a);
    /// // A token is good once: a second unregister is an error, not a panic.
    /// assert!(matches!(reactor.unregister(token), Err(Error::UnknownToken(t)) if t == token));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::unregister`].
    pub fn unregister(&mut self, token: Token) -> Result<()> {
        self.ctx.unregister(token)
    }

    /// See [`Context::is_registered`].
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let token = reactor.register_owned(a, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))?;
    /// assert!(reactor.is_registered(token));
    /// reactor.unregister(token)?;
    /// assert!(!reactor.is_registered(token));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_registered(&self, token: Token) -> bool {
        self.ctx.is_registered(token)
    }

    /// See [`Context::fd_of`].
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let fd = a.as_raw_fd();
    /// let token = reactor.register_owned(a, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))?;
    /// assert_eq!(reactor.fd_of(token), Some(fd)); // for a log line, say
    /// reactor.unregister(token)?;
    /// assert_eq!(reactor.fd_of(token), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn fd_of(&self, token: Token) -> Option<RawFd> {
        self.ctx.fd_of(token)
    }

    /// See [`Context::source_count`].
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// assert_eq!(reactor.source_count(), 0);
    /// let (a, b) = UnixStream::pair()?;
    /// reactor.register_owned(a, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))?;
    /// reactor.register_owned(b, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))?;
    /// assert_eq!(reactor.source_count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn source_count(&self) -> usize {
        self.ctx.source_count()
    }

    /// See [`Context::set_timer`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let start = Instant::now();
    /// reactor.set_timer(Duration::from_millis(5), move |ctx, _| {
    ///     assert!(start.elapsed() >= Duration::from_millis(5)); // never early
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::set_timer`].
    pub fn set_timer<F>(&mut self, delay: Duration, f: F) -> Result<TimerId>
    where
        F: FnOnce(&mut Context, TimerId) -> io::Result<()> + 'static,
    {
        self.ctx.set_timer(delay, f)
    }

    /// See [`Context::set_timer_at`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// reactor.set_timer_at(deadline, move |ctx, _| {
    ///     assert!(Instant::now() >= deadline);
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::set_timer_at`].
    pub fn set_timer_at<F>(&mut self, deadline: Instant, f: F) -> Result<TimerId>
    where
        F: FnOnce(&mut Context, TimerId) -> io::Result<()> + 'static,
    {
        self.ctx.set_timer_at(deadline, f)
    }

    /// See [`Context::set_interval`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut left = 3;
    /// reactor.set_interval(Duration::from_millis(1), move |ctx, id| {
    ///     left -= 1;
    ///     if left == 0 {
    ///         ctx.cancel_timer(id); // a repeating timer ends when cancelled
    ///         ctx.stop();
    ///     }
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// assert_eq!(reactor.timer_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::set_interval`].
    pub fn set_interval<F>(&mut self, period: Duration, f: F) -> Result<TimerId>
    where
        F: FnMut(&mut Context, TimerId) -> io::Result<()> + 'static,
    {
        self.ctx.set_interval(period, f)
    }

    /// See [`Context::cancel_timer`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let id = reactor.set_timer(Duration::from_secs(60), |_, _| unreachable!("cancelled"))?;
    /// assert!(reactor.cancel_timer(id));
    /// assert!(!reactor.cancel_timer(id)); // already gone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.ctx.cancel_timer(id)
    }

    /// See [`Context::timer_pending`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let id = reactor.set_timer(Duration::ZERO, |_, _| Ok(()))?;
    /// assert!(reactor.timer_pending(id));
    /// reactor.run_once(None)?; // due at once: it fires
    /// assert!(!reactor.timer_pending(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timer_pending(&self, id: TimerId) -> bool {
        self.ctx.timer_pending(id)
    }

    /// See [`Context::timer_count`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_timer(Duration::from_secs(60), |_, _| Ok(()))?;
    /// reactor.set_interval(Duration::from_secs(60), |_, _| Ok(()))?;
    /// assert_eq!(reactor.timer_count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timer_count(&self) -> usize {
        self.ctx.timer_count()
    }

    /// See [`Context::on_signal`].
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// // Ctrl-C ends the loop cleanly instead of the process.
    /// reactor.on_signal(libc::SIGINT, |ctx, info| {
    ///     eprintln!("SIGINT from pid {}", info.pid);
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// // A signal cannot have two handlers in one reactor, nor can SIGKILL have any.
    /// assert!(reactor.on_signal(libc::SIGINT, |_, _| Ok(())).is_err());
    /// assert!(reactor.on_signal(libc::SIGKILL, |_, _| Ok(())).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Context::on_signal`].
    pub fn on_signal<F>(&mut self, signal: libc::c_int, handler: F) -> Result<()>
    where
        F: FnMut(&mut Context, SignalInfo) -> io::Result<()> + 'static,
    {
        self.ctx.on_signal(signal, handler)
    }

    /// See [`Context::remove_signal`].
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.on_signal(libc::SIGUSR1, |_, _| Ok(()))?;
    /// assert!(reactor.remove_signal(libc::SIGUSR1)); // SIGUSR1 acts as before again
    /// assert!(!reactor.remove_signal(libc::SIGUSR1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_signal(&mut self, signal: libc::c_int) -> bool {
        self.ctx.remove_signal(signal)
    }

    /// See [`Context::stop`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_timer(Duration::from_secs(60), |_, _| Ok(()))?;
    /// reactor.stop(); // asked before `run`: it returns at once
    /// reactor.run()?;
    /// assert_eq!(reactor.timer_count(), 1); // nothing ran
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&mut self) {
        self.ctx.stop();
    }

    /// See [`Context::handle`].
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let handle = reactor.handle(); // `Send`: for other threads
    /// std::thread::spawn(move || handle.stop()).join().expect("thread")?;
    /// reactor.run()?; // returns: stopped from the other thread
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn handle(&self) -> Handle {
        self.ctx.handle()
    }

    /// See [`Context::set_error_handler`].
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = Rc::clone(&seen);
    /// reactor.set_error_handler(move |_ctx, failure| log.borrow_mut().push(failure.to_string()));
    /// reactor.set_timer(Duration::ZERO, |_, _| Err(std::io::Error::other("boom")))?;
    /// reactor.run_once(None)?; // the timer fails; the loop goes on
    /// assert_eq!(seen.borrow().len(), 1);
    /// assert!(seen.borrow()[0].contains("boom"), "{:?}", seen.borrow());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_error_handler<F>(&mut self, handler: F)
    where
        F: FnMut(&mut Context, Failure) + 'static,
    {
        self.ctx.set_error_handler(handler);
    }

    /// See [`Context::clear_error_handler`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_error_handler(|_, _| {});
    /// // Back to the default: one line on stderr per failure.
    /// reactor.clear_error_handler();
    /// reactor.set_timer(Duration::ZERO, |_, _| Err(std::io::Error::other("reported on stderr")))?;
    /// reactor.run_once(None)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear_error_handler(&mut self) {
        self.ctx.clear_error_handler();
    }
}

impl<P: Poller + 'static> Drop for Reactor<P> {
    /// Unregisters every source from the poller (which [`Handle`]s may keep
    /// alive, or which the caller may share), drops the handlers, timers and
    /// queued closures, and lets go of the signals. Destructors that panic
    /// go to the error handler; whatever it registers meanwhile is cleared
    /// in a second round, reported on stderr.
    fn drop(&mut self) {
        self.ctx.clear();
        self.ctx.report_failures();
        self.ctx.clear_error_handler();
        self.ctx.clear();
        self.ctx.report_failures();
    }
}

impl<P: Poller + 'static> fmt::Debug for Reactor<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("context", &self.ctx)
            .finish()
    }
}
