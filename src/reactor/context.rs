//! [`Context`]: the loop's state and the calls every callback shares with
//! the [`Reactor`](super::Reactor) (which reaches them here).

use std::any::TypeId;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::failure::{guarded_drop, report_to_stderr, Failure, Origin};
use super::handle::{Job, Shared};
use super::signal::{SignalFn, Signals};
use super::slab::Slab;
use super::sources::{self, decode, encode, owned_handler, Handler, Source, SIGNAL_TOKEN};
use super::timer::{self, Callback, Timers};
use super::{Error, Handle, Result, SignalInfo, TimerId};
use crate::{Event, Interest, Mode, Poller, Token};

/// What the error handler is.
type ErrorFn = Box<dyn FnMut(&mut Context, Failure)>;

/// The loop's state, and what a callback gets to act on it: register,
/// modify and unregister sources, set and cancel timers, watch signals,
/// stop the loop, get a [`Handle`].
///
/// Every handler, timer, signal handler and posted closure is called with
/// `&mut Context`; a [`Reactor`](super::Reactor) has the same calls, which
/// reach its `Context`, for use before and between runs. The type
/// does not name the poller, so a handler written once as a plain `fn`
/// serves a reactor over any backend:
///
/// ```
/// use std::io;
/// use tripoll::reactor::{Context, Reactor};
/// use tripoll::{Epoll, Event, Poll};
///
/// fn on_ready(ctx: &mut Context, ev: Event) -> io::Result<()> {
///     println!("{:?} is ready", ev.token());
///     Ok(ctx.unregister(ev.token())?)
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// let mut on_epoll = Reactor::with_poller(Epoll::new()?);
/// let mut on_poll = Reactor::with_poller(Poll::new()?);
/// # use std::os::fd::AsRawFd;
/// # use tripoll::{Interest, Mode};
/// on_epoll.register(a.as_raw_fd(), Interest::WRITABLE, Mode::Level, on_ready)?;
/// on_poll.register(a.as_raw_fd(), Interest::WRITABLE, Mode::Level, on_ready)?;
/// # Ok(())
/// # }
/// ```
pub struct Context {
    /// The poller behind `dyn`: registering and modifying are rare next to
    /// waiting, which the reactor does through its typed copy.
    pub(crate) shared: Arc<Shared<dyn Poller>>,
    pub(crate) sources: Slab<Source>,
    pub(crate) timers: Timers,
    pub(crate) signals: Option<Signals>,
    /// Closures taken from the shared queue and not yet run.
    pub(crate) posted: VecDeque<Job>,
    /// A callback called [`stop`](Context::stop).
    pub(crate) stop: bool,
    /// Failures not yet handed to the error handler.
    failures: VecDeque<Failure>,
    /// `None`: the default report (one line on stderr). Out of its place
    /// while it runs.
    error_handler: Option<ErrorFn>,
    /// The error handler is running (and so out of its place).
    reporting: bool,
    /// The running error handler set or cleared the error handler.
    error_handler_changed: bool,
}

impl Context {
    pub(crate) fn new(shared: Arc<Shared<dyn Poller>>) -> Context {
        Context {
            shared,
            sources: sources::new_slab(),
            timers: Timers::new(),
            signals: None,
            posted: VecDeque::new(),
            stop: false,
            failures: VecDeque::new(),
            error_handler: None,
            reporting: false,
            error_handler_changed: false,
        }
    }

    /// Registers `fd` for `interest` in `mode` and calls `handler` with
    /// each event it gets, until the source is unregistered. Returns the
    /// token the reactor chose, which every event for it carries.
    ///
    /// The reactor does not own `fd`: unregister before closing it, or
    /// use [`register_owned`](Self::register_owned). A handler may
    /// own the descriptor's I/O object; it is dropped when the source is
    /// unregistered, after the poller stopped watching the descriptor.
    ///
    /// A handler that returns an error or panics loses its source: the
    /// reactor unregisters it, drops the handler and reports the
    /// [`Failure`] to the error handler (see
    /// [`set_error_handler`](Self::set_error_handler)).
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
    /// let (c, mut d) = UnixStream::pair()?;
    /// let c_fd = c.as_raw_fd();
    /// // A handler registers another source: how an accept loop adds connections.
    /// reactor.register_owned(a, Interest::READABLE, Mode::Level, move |ctx, _a, ev| {
    ///     ctx.unregister(ev.token())?;
    ///     ctx.register(c_fd, Interest::READABLE, Mode::Level, |ctx, ev| {
    ///         ctx.unregister(ev.token())?;
    ///         ctx.stop();
    ///         Ok(())
    ///     })?;
    ///     Ok(())
    /// })?;
    /// b.write_all(b"x")?;
    /// d.write_all(b"y")?;
    /// reactor.run()?;
    /// drop(c); // closed after its registration went
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Poller`] with the poller's refusal (already registered,
    /// [`Mode`] unsupported by the backend, `fd` out of range for select,
    /// ...), or [`Error::Full`]. Nothing is registered then.
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
        let source = Source {
            fd,
            handler: Some(Handler::Plain(Box::new(handler))),
            object: None,
            object_type: None,
        };
        self.insert(source, interest, mode)
    }

    /// Registers an I/O object the reactor then owns: `handler` gets it
    /// by `&mut` with each event, and it is dropped (closing its
    /// descriptor) when the source is unregistered, after the poller
    /// stopped watching it. Make it non-blocking first.
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// reactor.register_owned(listener, Interest::READABLE, Mode::Level, |ctx, l, _| {
    ///     let (conn, _) = l.accept()?;
    ///     conn.set_nonblocking(true)?;
    ///     // Each connection owned by the reactor, closed when unregistered.
    ///     ctx.register_owned(conn, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))?;
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// assert_eq!(reactor.source_count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register); `source` is dropped then.
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
        let source = Source {
            fd: source.as_raw_fd(),
            handler: Some(owned_handler(handler)),
            object: Some(Box::new(source)),
            object_type: Some(TypeId::of::<S>()),
        };
        self.insert(source, interest, mode)
    }

    fn insert(&mut self, source: Source, interest: Interest, mode: Mode) -> Result<Token> {
        let fd = source.fd;
        let (index, generation) = self.sources.insert(source).map_err(|source| {
            self.drop_guarded(
                Origin::Source {
                    fd,
                    token: Token::RESERVED,
                },
                source,
            );
            Error::Full
        })?;
        let token = encode(index, generation);
        if let Err(e) = self.poller().register(fd, token, interest, mode) {
            let source = self.sources.remove(index, generation);
            self.drop_guarded(Origin::Source { fd, token }, source);
            return Err(e.into());
        }
        Ok(token)
    }

    /// Changes the interest and mode of a registered source; also how a
    /// [`Mode::Oneshot`] source is re-armed. The handler stays.
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
    /// let mut turn = 0;
    /// reactor.register(a.as_raw_fd(), Interest::READABLE, Mode::Oneshot, move |ctx, ev| {
    ///     turn += 1;
    ///     if turn == 1 {
    ///         // Oneshot: disarmed after each event until re-armed.
    ///         ctx.modify(ev.token(), Interest::READABLE, Mode::Oneshot)?;
    ///     } else {
    ///         ctx.unregister(ev.token())?;
    ///         ctx.stop();
    ///     }
    ///     Ok(())
    /// })?;
    /// b.write_all(b"x")?; // never read: ready again once re-armed
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownToken`], or [`Error::Poller`] if the poller
    /// refuses (the registration is then unchanged).
    pub fn modify(&mut self, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        let fd = self.fd_of(token).ok_or(Error::UnknownToken(token))?;
        self.poller().modify(fd, token, interest, mode)?;
        Ok(())
    }

    /// Changes the interest and mode of a registered source and replaces
    /// its handler, in one call (Python's `selector.modify(fileobj, events,
    /// data)`). The old handler is dropped; a handler that replaces itself
    /// finishes its call first. An object given to
    /// [`register_owned`](Self::register_owned) stays with the source, out
    /// of the new handler's sight: use [`modify_owned`](Self::modify_owned)
    /// to keep handing it over.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut reactor = Reactor::new()?;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// let t = reactor.register(a.as_raw_fd(), Interest::WRITABLE, Mode::Level, |_, _| {
    ///     panic!("replaced before it runs")
    /// })?;
    /// reactor.modify_with(t, Interest::READABLE, Mode::Level, |ctx, ev| {
    ///     ctx.stop();
    ///     Ok(ctx.unregister(ev.token())?)
    /// })?;
    /// b.write_all(b"x")?;
    /// reactor.run()?;
    /// assert!(!reactor.is_registered(t));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`modify`](Self::modify); the source keeps its old handler then,
    /// and `handler` is dropped.
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
        self.replace(
            token,
            interest,
            mode,
            Handler::Plain(Box::new(handler)),
            None,
        )
    }

    /// As [`modify_with`](Self::modify_with), for a source registered with
    /// [`register_owned`](Self::register_owned): the new handler gets the
    /// same object.
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
    /// reactor.register_owned(a, Interest::READABLE, Mode::Level, |ctx, _a: &mut UnixStream, ev| {
    ///     // From now on a different handler serves the same owned socket.
    ///     ctx.modify_owned(ev.token(), Interest::READABLE, Mode::Level, |ctx, a: &mut UnixStream, ev| {
    ///         let mut buf = [0; 2];
    ///         a.read_exact(&mut buf)?;
    ///         ctx.unregister(ev.token())?;
    ///         ctx.stop();
    ///         Ok(())
    ///     })?;
    ///     Ok(())
    /// })?;
    /// b.write_all(b"hi")?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`modify`](Self::modify), or [`Error::NotOwned`] if the source
    /// owns no object of type `S`. The source keeps its old handler then.
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
        let handler = owned_handler(handler);
        self.replace(token, interest, mode, handler, Some(TypeId::of::<S>()))
    }

    fn replace(
        &mut self,
        token: Token,
        interest: Interest,
        mode: Mode,
        handler: Handler,
        object_type: Option<TypeId>,
    ) -> Result<()> {
        let (index, generation) = decode(token);
        let Some(source) = self.sources.get(index, generation) else {
            return self.refuse(token, handler, Error::UnknownToken(token));
        };
        let fd = source.fd;
        if object_type.is_some() && source.object_type != object_type {
            return self.refuse(token, handler, Error::NotOwned(token));
        }
        if let Err(e) = self.poller().modify(fd, token, interest, mode) {
            return self.refuse(token, handler, e.into());
        }
        let old = self
            .sources
            .get_mut(index, generation)
            .and_then(|source| source.handler.replace(handler));
        self.drop_guarded(Origin::Source { fd, token }, old);
        Ok(())
    }

    /// Drops a handler that was not installed, and returns `err`.
    fn refuse(&mut self, token: Token, handler: Handler, err: Error) -> Result<()> {
        let fd = self.fd_of(token).unwrap_or(-1);
        self.drop_guarded(Origin::Source { fd, token }, handler);
        Err(err)
    }

    /// Unregisters a source and drops its handler. A handler may
    /// unregister itself: its call finishes, and it is dropped right
    /// after. No event reaches a source once it is unregistered, even
    /// one already read from the poller in the same turn.
    ///
    /// A destructor that panics while the handler (or the object of
    /// [`register_owned`](Self::register_owned)) is dropped is reported as
    /// a [`Failure`] of this source, not of the caller.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// reactor.register_owned(a, Interest::READABLE, Mode::Level, |ctx, a, ev| {
    ///     let mut buf = [0; 1];
    ///     if a.read(&mut buf)? == 0 {
    ///         ctx.unregister(ev.token())?; // the peer closed: drop ours too
    ///         ctx.stop();
    ///     }
    ///     Ok(())
    /// })?;
    /// drop(b);
    /// reactor.run()?;
    /// assert_eq!(reactor.source_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownToken`] if `token` names no source (any more).
    /// [`Error::Poller`] if the poller refused; the source is removed
    /// all the same.
    pub fn unregister(&mut self, token: Token) -> Result<()> {
        let (index, generation) = decode(token);
        let source = self
            .sources
            .remove(index, generation)
            .ok_or(Error::UnknownToken(token))?;
        let fd = source.fd;
        let res = self.poller().unregister(fd);
        // Last, once the bookkeeping is done: the handler's destructor is
        // user code, and may close the descriptor or even panic.
        self.drop_guarded(Origin::Source { fd, token }, source);
        match res {
            // Closed and reused elsewhere: no longer watched either way.
            Ok(()) | Err(crate::Error::NotRegistered { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `token` names a registered source.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let token = reactor.register_owned(a, Interest::WRITABLE, Mode::Level, |ctx, _, ev| {
    ///     assert!(ctx.is_registered(ev.token()));
    ///     ctx.unregister(ev.token())?;
    ///     assert!(!ctx.is_registered(ev.token()));
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// assert!(!reactor.is_registered(token));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_registered(&self, token: Token) -> bool {
        self.fd_of(token).is_some()
    }

    /// The descriptor registered under `token`.
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
    /// reactor.register_owned(a, Interest::WRITABLE, Mode::Level, move |ctx, _, ev| {
    ///     assert_eq!(ctx.fd_of(ev.token()), Some(fd));
    ///     ctx.unregister(ev.token())?;
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn fd_of(&self, token: Token) -> Option<RawFd> {
        let (index, generation) = decode(token);
        self.sources.get(index, generation).map(|s| s.fd)
    }

    /// How many sources are registered.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// reactor.register_owned(a, Interest::WRITABLE, Mode::Level, |ctx, _, ev| {
    ///     assert_eq!(ctx.source_count(), 1);
    ///     ctx.unregister(ev.token())?;
    ///     assert_eq!(ctx.source_count(), 0);
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Calls `f` once, `delay` from now (on the first turn at or after
    /// the deadline; never before it). Delays beyond a century are
    /// clamped to one.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::{Duration, Instant};
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let start = Instant::now();
    /// let fired = Rc::new(Cell::new(None));
    /// let at = Rc::clone(&fired);
    /// reactor.set_timer(Duration::from_millis(5), move |ctx, _id| {
    ///     at.set(Some(Instant::now()));
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?; // until the timer stops it
    /// let at = fired.get().expect("the timer fired");
    /// assert!(at >= start + Duration::from_millis(5)); // never early
    /// # Ok::<(), tripoll::reactor::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Full`] if 2³² timers are pending.
    pub fn set_timer<F>(&mut self, delay: Duration, f: F) -> Result<TimerId>
    where
        F: FnOnce(&mut Context, TimerId) -> io::Result<()> + 'static,
    {
        let deadline = timer::deadline_after(Instant::now(), delay);
        self.set_timer_at(deadline, f)
    }

    /// Calls `f` once, at `deadline` or on the first turn after it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// reactor.set_timer(Duration::ZERO, move |ctx, _| {
    ///     // A callback sets a timer for a moment fixed in advance.
    ///     ctx.set_timer_at(deadline, move |ctx, _| {
    ///         assert!(Instant::now() >= deadline);
    ///         ctx.stop();
    ///         Ok(())
    ///     })?;
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Full`] if 2³² timers are pending.
    pub fn set_timer_at<F>(&mut self, deadline: Instant, f: F) -> Result<TimerId>
    where
        F: FnOnce(&mut Context, TimerId) -> io::Result<()> + 'static,
    {
        self.timers
            .insert(deadline, Callback::Once(Box::new(f)))
            .ok_or(Error::Full)
    }

    /// Calls `f` every `period`, first one `period` from now, until the
    /// timer is cancelled (the callback may cancel it with the
    /// [`TimerId`] it is given) or fails. Ticks missed while the loop was
    /// busy are skipped, keeping the phase.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut beats = 0;
    /// reactor.set_timer(Duration::ZERO, move |ctx, _| {
    ///     ctx.set_interval(Duration::from_millis(1), move |ctx, id| {
    ///         beats += 1;
    ///         if beats == 3 {
    ///             ctx.cancel_timer(id);
    ///             ctx.stop();
    ///         }
    ///         Ok(())
    ///     })?;
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// // A zero period would spin: refused.
    /// assert!(reactor.set_interval(Duration::ZERO, |_, _| Ok(())).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ZeroPeriod`], or [`Error::Full`].
    pub fn set_interval<F>(&mut self, period: Duration, f: F) -> Result<TimerId>
    where
        F: FnMut(&mut Context, TimerId) -> io::Result<()> + 'static,
    {
        if period.is_zero() {
            return Err(Error::ZeroPeriod);
        }
        let period = period.min(timer::MAX_DELAY);
        let deadline = timer::deadline_after(Instant::now(), period);
        self.timers
            .insert(deadline, Callback::Repeat(Box::new(f), period))
            .ok_or(Error::Full)
    }

    /// Cancels a timer and drops its callback. Returns whether it was
    /// pending: `false` for a one-shot timer that already fired (or is
    /// firing) and for an id already cancelled.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::time::Duration;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::{Interest, Mode};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let idle = reactor.set_timer(Duration::from_secs(60), |_, _| unreachable!("cancelled"))?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// reactor.register_owned(a, Interest::READABLE, Mode::Level, move |ctx, _, ev| {
    ///     // Activity: the idle timeout is off.
    ///     assert!(ctx.cancel_timer(idle));
    ///     ctx.unregister(ev.token())?;
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// b.write_all(b"x")?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let Some(callback) = self.timers.cancel(id) else {
            return false;
        };
        self.drop_guarded(Origin::Timer(id), callback);
        true
    }

    /// Whether `id` names a pending timer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let later = reactor.set_timer(Duration::from_secs(60), |_, _| Ok(()))?;
    /// reactor.set_timer(Duration::ZERO, move |ctx, me| {
    ///     assert!(!ctx.timer_pending(me)); // a firing one-shot timer is no longer pending
    ///     assert!(ctx.timer_pending(later));
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timer_pending(&self, id: TimerId) -> bool {
        self.timers.contains(id)
    }

    /// How many timers are pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_timer(Duration::ZERO, |ctx, _| {
    ///     ctx.set_timer(Duration::from_secs(60), |_, _| Ok(()))?;
    ///     assert_eq!(ctx.timer_count(), 1); // this one has fired; the new one waits
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Calls `handler` each time `signal` (e.g. `libc::SIGINT`) is
    /// delivered, instead of the signal's usual action. The signal is
    /// blocked in the calling thread and read from a `signalfd`; see
    /// the [module docs](super#signals) for the other threads of the
    /// process. Standard signals sent several times before the loop
    /// turns arrive once; real-time signals queue.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.on_signal(libc::SIGUSR1, |ctx, info| {
    ///     assert_eq!(info.signal, libc::SIGUSR1);
    ///     assert_eq!(info.pid, std::process::id()); // we sent it
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// # // An `unsafe` outside `sys`: this is an example of the caller's
    /// # // code, sending itself the signal; the library makes no such call.
    /// // SAFETY: raise(3) has no memory-safety preconditions. SIGUSR1
    /// // is blocked in this thread now, so it waits in the signalfd.
    /// assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    /// reactor.run()?; // the handler stops it
    /// # Ok::<(), tripoll::reactor::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignal`], [`Error::SignalInUse`] (one handler per
    /// signal; [`remove_signal`](Self::remove_signal) first),
    /// [`Error::Os`] or [`Error::Poller`] if the signalfd cannot be set
    /// up. The mask is unchanged then.
    pub fn on_signal<F>(&mut self, signal: libc::c_int, handler: F) -> Result<()>
    where
        F: FnMut(&mut Context, SignalInfo) -> io::Result<()> + 'static,
    {
        let handler: SignalFn = Box::new(handler);
        let signals = match self.signals.take() {
            Some(signals) => signals,
            None => {
                let signals = Signals::new()?;
                self.poller().register(
                    signals.fd(),
                    SIGNAL_TOKEN,
                    Interest::READABLE,
                    Mode::Level,
                )?;
                signals
            }
        };
        self.signals.insert(signals).add(signal, handler)
    }

    /// Stops watching `signal` and drops its handler. The signal's mask in
    /// this thread is restored once no reactor of the thread watches it any
    /// more. Returns whether it was watched.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.on_signal(libc::SIGUSR2, |_, _| Ok(()))?;
    /// reactor.set_timer(Duration::ZERO, |ctx, _| {
    ///     // From a callback: SIGUSR2 is no longer the loop's.
    ///     assert!(ctx.remove_signal(libc::SIGUSR2));
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_signal(&mut self, signal: libc::c_int) -> bool {
        let Some(handler) = self.signals.as_mut().and_then(|s| s.remove(signal)) else {
            return false;
        };
        self.drop_guarded(Origin::Signal(signal), handler);
        true
    }

    /// Makes [`run`](super::Reactor::run) return `Ok(())` once this turn is
    /// over (or at once, if it is not running).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut turns = 0;
    /// reactor.set_interval(Duration::from_millis(1), move |ctx, _| {
    ///     turns += 1;
    ///     if turns == 2 {
    ///         ctx.stop(); // `run` returns once this turn is done
    ///     }
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// assert_eq!(reactor.timer_count(), 1); // the interval stays for a later run
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// A handle for other threads.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_timer(Duration::ZERO, |ctx, _| {
    ///     // A handle for a worker thread, which reports back through the loop.
    ///     let handle = ctx.handle();
    ///     std::thread::spawn(move || handle.post(|ctx| {
    ///         ctx.stop();
    ///         Ok(())
    ///     }));
    ///     Ok(())
    /// })?;
    /// reactor.run()?; // until the posted closure stops it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The poller underneath, whatever its type.
    /// ([`Reactor::poller`](super::Reactor::poller) gives it typed.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::Mode;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_timer(Duration::ZERO, |ctx, _| {
    ///     // A handler that works on any backend can still ask what it has.
    ///     let mode = if ctx.poller().supports(Mode::Edge) { "edge" } else { "level" };
    ///     println!("{} in {mode} mode", ctx.poller().name());
    ///     ctx.stop();
    ///     Ok(())
    /// })?;
    /// reactor.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn poller(&self) -> &dyn Poller {
        &self.shared.poller
    }

    /// Hands every callback failure to `handler` from now on, instead of
    /// the default report (one line on stderr naming the callback and the
    /// error). Asyncio's `loop.set_exception_handler` is the model: by the
    /// time `handler` runs, the failed callback is gone (its source
    /// unregistered, its timer cancelled, its signal no longer watched),
    /// and the loop goes on when it returns. Each failure arrives exactly
    /// once, in order, at the end of the turn in which it happened (a
    /// failure caused by a call made outside the loop, such as a destructor
    /// that panicked during [`unregister`](Self::unregister), at the end of
    /// the next turn).
    ///
    /// The handler may use the context (stop the loop, unregister more).
    /// A handler that panics is dropped, and the default report takes over.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use tripoll::reactor::{Origin, Reactor};
    ///
    /// # fn main() -> tripoll::reactor::Result<()> {
    /// let mut reactor = Reactor::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = Rc::clone(&seen);
    /// reactor.set_error_handler(move |ctx, failure| {
    ///     log.borrow_mut().push(failure.origin);
    ///     ctx.stop();
    /// });
    /// let id = reactor.set_timer(Duration::ZERO, |_, _| Err(std::io::ErrorKind::Other.into()))?;
    /// reactor.run()?; // the timer fails, the handler stops the loop
    /// assert_eq!(*seen.borrow(), [Origin::Timer(id)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_error_handler<F>(&mut self, handler: F)
    where
        F: FnMut(&mut Context, Failure) + 'static,
    {
        let old = self.error_handler.replace(Box::new(handler));
        self.error_handler_changed = self.reporting;
        self.drop_error_handler(old);
    }

    /// Goes back to the default report of callback failures (one line on
    /// stderr).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_error_handler(|ctx, failure| {
    ///     eprintln!("first failure: {failure}");
    ///     ctx.clear_error_handler(); // later ones go to stderr as by default
    /// });
    /// reactor.set_timer(Duration::ZERO, |_, _| Err(std::io::Error::other("once")))?;
    /// reactor.run_once(None)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear_error_handler(&mut self) {
        let old = self.error_handler.take();
        self.error_handler_changed = self.reporting;
        self.drop_error_handler(old);
    }

    fn drop_error_handler(&mut self, handler: Option<ErrorFn>) {
        if catch_unwind(AssertUnwindSafe(move || drop(handler))).is_err() {
            eprintln!("tripoll reactor: the error handler panicked when dropped");
        }
    }

    /// Unregisters every source and drops every callback (queued posted
    /// closures unrun), reporting destructors that panic. For the
    /// reactor's drop.
    pub(crate) fn clear(&mut self) {
        self.close_posted();
        let keys: Vec<(u32, u32)> = self.sources.keys().collect();
        for (index, generation) in keys {
            if let Some(source) = self.sources.remove(index, generation) {
                let fd = source.fd;
                let _ = self.poller().unregister(fd);
                let token = encode(index, generation);
                self.drop_guarded(Origin::Source { fd, token }, source);
            }
        }
        let mut timers = std::mem::take(&mut self.timers);
        timers.clear(|id, callback| self.drop_guarded(Origin::Timer(id), callback));
        if let Some(mut signals) = self.signals.take() {
            let _ = self.poller().unregister(signals.fd());
            signals.clear(|signal, handler| self.drop_guarded(Origin::Signal(signal), handler));
        }
    }

    /// Whether failures wait for the error handler.
    pub(crate) fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }

    /// Queues a failure for the error handler.
    pub(crate) fn fail(&mut self, failure: Failure) {
        self.failures.push_back(failure);
    }

    /// Drops a callback (or what it owned) that belongs to `origin`; a
    /// destructor that panics is reported as a failure of `origin`.
    pub(crate) fn drop_guarded<T>(&mut self, origin: Origin, value: T) {
        if let Err(failure) = guarded_drop(origin, value) {
            self.fail(failure);
        }
    }

    /// Hands the queued failures to the error handler, in order, including
    /// those it causes itself. Called at the end of each turn; does nothing
    /// while the error handler runs (it is that handler's caller that goes
    /// on with the queue).
    #[inline]
    pub(crate) fn report_failures(&mut self) {
        if !self.failures.is_empty() {
            self.hand_failures_over();
        }
    }

    #[cold]
    fn hand_failures_over(&mut self) {
        if self.reporting {
            return;
        }
        while let Some(failure) = self.failures.pop_front() {
            let Some(mut handler) = self.error_handler.take() else {
                report_to_stderr(&failure);
                continue;
            };
            let line = failure.to_string();
            self.reporting = true;
            self.error_handler_changed = false;
            let outcome = catch_unwind(AssertUnwindSafe(|| handler(self, failure)));
            self.reporting = false;
            match outcome {
                Ok(()) if !self.error_handler_changed => self.error_handler = Some(handler),
                // It set another one, or cleared itself.
                Ok(()) => self.drop_error_handler(Some(handler)),
                Err(_) => {
                    eprintln!(
                        "tripoll reactor: the error handler panicked (dropped; back to this \
                         default) while handling: {}",
                        line.replace('\n', " ")
                    );
                    self.drop_error_handler(Some(handler));
                }
            }
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("poller", &self.poller())
            .field("sources", &self.sources.len())
            .field("timers", &self.timers.len())
            .field("signals", &self.signals)
            .field("custom_error_handler", &self.error_handler.is_some())
            .finish()
    }
}
