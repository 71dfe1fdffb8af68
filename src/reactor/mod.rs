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
    pub fn with_poller(poller: P) -> Reactor<P> {
        Reactor::with_poller_and_capacity(poller, DEFAULT_EVENTS)
    }

    /// A reactor over `poller`, reading up to `events` events per turn
    /// (at least one).
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
    /// # Errors
    ///
    /// As [`Context::modify`].
    pub fn modify(&mut self, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.ctx.modify(token, interest, mode)
    }

    /// See [`Context::modify_with`].
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
    /// # Errors
    ///
    /// As [`Context::unregister`].
    pub fn unregister(&mut self, token: Token) -> Result<()> {
        self.ctx.unregister(token)
    }

    /// See [`Context::is_registered`].
    #[must_use]
    pub fn is_registered(&self, token: Token) -> bool {
        self.ctx.is_registered(token)
    }

    /// See [`Context::fd_of`].
    #[must_use]
    pub fn fd_of(&self, token: Token) -> Option<RawFd> {
        self.ctx.fd_of(token)
    }

    /// See [`Context::source_count`].
    #[must_use]
    pub fn source_count(&self) -> usize {
        self.ctx.source_count()
    }

    /// See [`Context::set_timer`].
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
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.ctx.cancel_timer(id)
    }

    /// See [`Context::timer_pending`].
    #[must_use]
    pub fn timer_pending(&self, id: TimerId) -> bool {
        self.ctx.timer_pending(id)
    }

    /// See [`Context::timer_count`].
    #[must_use]
    pub fn timer_count(&self) -> usize {
        self.ctx.timer_count()
    }

    /// See [`Context::on_signal`].
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
    pub fn remove_signal(&mut self, signal: libc::c_int) -> bool {
        self.ctx.remove_signal(signal)
    }

    /// See [`Context::stop`].
    pub fn stop(&mut self) {
        self.ctx.stop();
    }

    /// See [`Context::handle`].
    #[must_use]
    pub fn handle(&self) -> Handle {
        self.ctx.handle()
    }

    /// See [`Context::set_error_handler`].
    pub fn set_error_handler<F>(&mut self, handler: F)
    where
        F: FnMut(&mut Context, Failure) + 'static,
    {
        self.ctx.set_error_handler(handler);
    }

    /// See [`Context::clear_error_handler`].
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
