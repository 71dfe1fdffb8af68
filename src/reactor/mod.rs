//! A callback reactor on top of any [`Poller`]: I/O handlers, timers,
//! signals, and a [`Handle`] for other threads.
//!
//! A [`Reactor`] owns a poller and a table of sources. Each source is a
//! descriptor with a handler, a closure called with a [`Context`] and the
//! [`Event`] whenever the descriptor is ready. Through the context a handler
//! can register new sources (a listener registers each connection it
//! accepts), modify or unregister itself or any other source, set and cancel
//! timers, watch signals and stop the loop.
//!
//! # Example: an echo server
//!
//! A non-blocking socket may take part of a write, or none of it, so the
//! connection handler keeps what the socket did not take and reads no more
//! until that is sent: a client that sends without reading then fills its
//! own buffers, not the server's memory. (`examples/reactor_echo.rs` is the
//! same server as a program.)
//!
//! ```
//! use std::io::{self, Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use tripoll::reactor::{Context, Reactor};
//! use tripoll::{Event, Interest, Mode};
//!
//! fn echo(ctx: &mut Context, conn: &mut TcpStream, unsent: &mut Vec<u8>, ev: Event) -> io::Result<()> {
//!     let was_waiting = !unsent.is_empty();
//!     if !was_waiting {
//!         let mut buf = [0; 4096];
//!         match conn.read(&mut buf) {
//!             Ok(0) => return Ok(ctx.unregister(ev.token())?), // closes `conn`
//!             Ok(n) => unsent.extend_from_slice(&buf[..n]),
//!             Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
//!             Err(e) => return Err(e), // the connection is dropped and reported
//!         }
//!     }
//!     while !unsent.is_empty() {
//!         match conn.write(unsent) {
//!             Ok(n) => drop(unsent.drain(..n)),
//!             Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     if was_waiting != !unsent.is_empty() {
//!         // Wait for room to write while anything is unsent; read otherwise.
//!         let interest = if unsent.is_empty() { Interest::READABLE } else { Interest::WRITABLE };
//!         ctx.modify(ev.token(), interest, Mode::Level)?;
//!     }
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut reactor = Reactor::new()?; // epoll unless TRIPOLL_BACKEND says otherwise
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! listener.set_nonblocking(true)?;
//! reactor.register_owned(listener, Interest::READABLE, Mode::Level, |ctx, listener, _| {
//!     loop {
//!         let conn = match listener.accept() {
//!             Ok((conn, _)) => conn,
//!             Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
//!             Err(e) => return Err(e),
//!         };
//!         conn.set_nonblocking(true)?;
//!         let mut unsent = Vec::new();
//!         ctx.register_owned(conn, Interest::READABLE, Mode::Level, move |ctx, conn, ev| {
//!             echo(ctx, conn, &mut unsent, ev)
//!         })?;
//!     }
//! })?;
//!
//! let handle = reactor.handle(); // Send + Sync: talks to the loop from anywhere
//! let client = std::thread::spawn(move || -> io::Result<Vec<u8>> {
//!     let mut stream = TcpStream::connect(addr)?;
//!     let message = vec![7; 100_000];
//!     let writer = stream.try_clone()?;
//!     let sender = std::thread::spawn(move || (&writer).write_all(&message));
//!     let mut reply = vec![0; 100_000];
//!     stream.read_exact(&mut reply)?;
//!     sender.join().expect("sender panicked")?;
//!     handle.stop()?; // `run` below returns
//!     Ok(reply)
//! });
//! reactor.run()?;
//! assert_eq!(client.join().expect("client panicked")?, vec![7; 100_000]);
//! # Ok(())
//! # }
//! ```
//!
//! # Sources and tokens
//!
//! [`register`](Context::register) takes a raw descriptor and hands back the
//! [`Token`] the reactor chose for it; [`register_owned`](Context::register_owned)
//! takes the I/O object itself and keeps it alive exactly as long as the
//! registration, which is the easy way to get the order right: the
//! descriptor is unregistered first and closed after. With `register`, close
//! the descriptor only after unregistering it, as with any poller.
//!
//! Tokens come from a slab with a generation counter in the token's upper
//! bits. When a source is unregistered its slot's generation moves on, so an
//! event still queued for it, or a stale token held somewhere, never reaches
//! the source that later reuses the slot. A handler that unregisters another
//! source whose event is ready in the same turn is safe: the other handler
//! is not called. A handler that unregisters itself finishes its call, and
//! is dropped (with everything it owns) right after.
//!
//! # Timers
//!
//! [`set_timer`](Context::set_timer), [`set_timer_at`](Context::set_timer_at)
//! and [`set_interval`](Context::set_interval) return a [`TimerId`];
//! [`cancel_timer`](Context::cancel_timer) takes it back. The earliest
//! deadline bounds the poller's wait, rounded up by the backend, so a timer
//! never fires before its deadline and a short one does not spin the loop.
//! Timers due at the same instant fire in the order they were set. A
//! repeating timer keeps its phase; ticks missed while the loop was busy are
//! skipped, not replayed in a burst. Setting and cancelling costs
//! `O(log n)`: cancelled timers are dropped lazily from a binary heap, which
//! is rebuilt when more than half of it is dead.
//!
//! # Signals
//!
//! [`on_signal`](Context::on_signal) delivers a signal as an ordinary event:
//! the reactor blocks it in the calling thread with `pthread_sigmask` and
//! reads it from a `signalfd`. Several reactors of one thread may watch the
//! same signal (one of them reads each instance): the mask is counted per
//! signal and per thread across every reactor of the process, and restored
//! only when the last watcher goes. A signal sent to the *process* (`kill`, the
//! terminal's Ctrl-C) goes to any thread that does not block it, so block
//! the signal in every other thread too: the simple way is to create the
//! reactor and call `on_signal` before spawning threads, which inherit the
//! mask. Dropping the reactor (or [`remove_signal`](Reactor::remove_signal))
//! restores the signal's mask; an instance that was pending and unread is
//! discarded first, so it is not delivered with the default action.
//!
//! # Threads
//!
//! A reactor and its handlers live on one thread (handlers need not be
//! `Send`, so `Rc` state works). Other threads talk to it through a
//! [`Handle`]: [`wake`](Handle::wake) it, [`post`](Handle::post) a closure
//! to run on the loop thread (the way to hand it a connection accepted
//! elsewhere), or [`stop`](Handle::stop) it.
//!
//! The queue of posted closures has no bound, while the loop runs or is
//! stopped: a bound would force a policy on the posting threads (block, or
//! fail and keep the work) that only the application can choose. Each
//! closure holds one box until it runs or the reactor is dropped (which
//! drops it unrun). Bound the work in flight on the posting side (a
//! semaphore, a bounded channel) if producers can outrun the loop.
//!
//! # Errors and panics
//!
//! A callback's failure never ends the loop (asyncio's policy). A handler,
//! timer, signal handler or posted closure that returns an error or
//! panics loses what it was registered for: the reactor unregisters the
//! source (cancels the timer, stops watching the signal) and drops the
//! callback, then hands a [`Failure`] naming it ([`Origin`]: the source's
//! descriptor and token, the timer, the signal, or "posted") and saying
//! what happened ([`Cause`]: the error, or the panic's message) to the
//! error handler, and goes on with the rest of the turn. The default
//! handler writes one line to stderr;
//! [`set_error_handler`](Context::set_error_handler) replaces it (to log
//! elsewhere, count, or stop the loop). [`run_once`](Reactor::run_once)
//! follows the same policy. (The panic hook still prints its own message
//! for a panic; `std::panic::set_hook` controls that.)
//!
//! A destructor that panics when the reactor drops a callback, or what the
//! callback owns, counts as a failure of that callback: when handler A
//! unregisters source B and B's handler panics in its destructor, B is
//! reported, and A goes on.
//!
//! [`run`](Reactor::run) returns an error only when the poller fails (or
//! the signal descriptor cannot be read): [`Error::Poller`],
//! [`Error::Os`].
//!
//! # Cost
//!
//! In the steady state a turn allocates nothing: the event buffer is reused,
//! a handler is moved out of its slot and back around its call (never
//! boxed again), timers reuse their slab and heap. Only registering a
//! source, setting a timer and posting a closure allocate (one box each).

mod context;
mod error;
mod failure;
mod handle;
mod signal;
mod slab;
mod sources;
mod timer;

pub use context::Context;
pub use error::{Error, Result};
pub use failure::{Cause, Failure, Origin};
pub use handle::Handle;
pub use signal::SignalInfo;
pub use timer::TimerId;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{AnyPoller, Events, Poller};
use handle::Shared;
use sources::SIGNAL_TOKEN;

/// Events one wait can return, unless the caller chooses.
const DEFAULT_EVENTS: usize = 1024;

/// A callback event loop over a [`Poller`]; see the [module docs](self).
///
/// A reactor is a [`Context`] (the sources, timers, signals and error
/// handler, reached through `Deref`: every call a callback can make works
/// on the reactor too) plus the loop: a poller of a known type, so that
/// its wait is dispatched statically, and the event buffer.
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
    ctx: Context,
    /// The same poller as `ctx`'s, typed.
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
    /// Failures are handled as in [`run`](Reactor::run); one left by a call
    /// made outside the loop (a destructor that panicked during
    /// [`unregister`](Context::unregister)) is reported first.
    ///
    /// # Errors
    ///
    /// As [`run`](Reactor::run).
    pub fn run_once(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.ctx.report_failures();
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
        Ok(ran)
    }

    /// Whether a stop was asked for ([`Context::stop`], [`Handle::stop`])
    /// that [`run`](Reactor::run) has not yet honoured; for loops built on
    /// [`run_once`](Reactor::run_once).
    pub fn stop_requested(&self) -> bool {
        self.ctx.stop || self.shared.stop.load(Ordering::Acquire)
    }

    fn take_stop(&mut self) -> bool {
        let local = std::mem::take(&mut self.ctx.stop);
        let remote = self.shared.stop.swap(false, Ordering::AcqRel);
        local || remote
    }

    /// The caller's timeout, shortened to the next timer's deadline, or zero
    /// when posted closures are still waiting to run.
    fn wait_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.ctx.posted.is_empty() {
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

    /// Unregisters every source and drops every callback (queued posted
    /// closures unrun), reporting destructors that panic.
    fn clear(&mut self) {
        let ctx = &mut self.ctx;
        ctx.close_posted();
        let keys: Vec<(u32, u32)> = ctx.sources.keys().collect();
        for (index, generation) in keys {
            if let Some(source) = ctx.sources.remove(index, generation) {
                let fd = source.fd;
                let _ = self.shared.poller.unregister(fd);
                let token = sources::encode(index, generation);
                ctx.drop_guarded(Origin::Source { fd, token }, source);
            }
        }
        let mut timers = std::mem::take(&mut ctx.timers);
        timers.clear(|id, callback| ctx.drop_guarded(Origin::Timer(id), callback));
        if let Some(mut signals) = ctx.signals.take() {
            let _ = self.shared.poller.unregister(signals.fd());
            signals.clear(|signal, handler| ctx.drop_guarded(Origin::Signal(signal), handler));
        }
    }
}

impl<P: Poller + 'static> Deref for Reactor<P> {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl<P: Poller + 'static> DerefMut for Reactor<P> {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

impl<P: Poller + 'static> Drop for Reactor<P> {
    /// Unregisters every source from the poller (which [`Handle`]s may keep
    /// alive, or which the caller may share), drops the handlers, timers and
    /// queued closures, and lets go of the signals. Destructors that panic
    /// go to the error handler; whatever it registers meanwhile is cleared
    /// in a second round, reported on stderr.
    fn drop(&mut self) {
        self.clear();
        self.ctx.report_failures();
        self.ctx.clear_error_handler();
        self.clear();
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
