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
//! ```
//! use std::io::{self, Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use tripoll::reactor::Reactor;
//! use tripoll::{Interest, Mode};
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
//!         ctx.register_owned(conn, Interest::READABLE, Mode::Level, |ctx, conn, ev| {
//!             let mut buf = [0; 4096];
//!             match conn.read(&mut buf) {
//!                 Ok(0) => Ok(ctx.unregister(ev.token())?), // closes `conn`
//!                 Ok(n) => conn.write_all(&buf[..n]), // fine for short replies
//!                 Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
//!                 Err(e) => Err(e),
//!             }
//!         })?;
//!     }
//! })?;
//!
//! let handle = reactor.handle(); // Send + Sync: talks to the loop from anywhere
//! let client = std::thread::spawn(move || -> io::Result<[u8; 5]> {
//!     let mut stream = TcpStream::connect(addr)?;
//!     stream.write_all(b"hello")?;
//!     let mut reply = [0; 5];
//!     stream.read_exact(&mut reply)?;
//!     handle.stop()?; // `run` below returns
//!     Ok(reply)
//! });
//! reactor.run()?;
//! assert_eq!(&client.join().expect("client panicked")?, b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! # Sources and tokens
//!
//! [`register`](Reactor::register) takes a raw descriptor and hands back the
//! [`Token`] the reactor chose for it; [`register_owned`](Reactor::register_owned)
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
//! [`set_timer`](Reactor::set_timer), [`set_timer_at`](Reactor::set_timer_at)
//! and [`set_interval`](Reactor::set_interval) return a [`TimerId`];
//! [`cancel_timer`](Reactor::cancel_timer) takes it back. The earliest
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
//! [`on_signal`](Reactor::on_signal) delivers a signal as an ordinary event:
//! the reactor blocks it in the calling thread with `pthread_sigmask` and
//! reads it from a `signalfd`. A signal sent to the *process* (`kill`, the
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
//! # Errors and panics
//!
//! A handler, timer, signal handler or posted closure that returns an error
//! or panics makes [`run`](Reactor::run) return an [`Error`] naming it, for
//! instance [`Error::Panicked`] with the source's descriptor and token.
//! Before returning, the reactor unregisters that source (cancels that
//! timer, stops watching that signal) and drops its handler, and it stays
//! usable: calling `run` again goes on serving the others, starting with the
//! events of the interrupted turn.
//!
//! # Cost
//!
//! In the steady state a turn allocates nothing: the event buffer is reused,
//! a handler is moved out of its slot and back around its call (never
//! boxed again), timers reuse their slab and heap. Only registering a
//! source, setting a timer and posting a closure allocate (one box each).

mod error;
mod fd;
mod handle;
mod signal;
mod slab;
mod timer;

pub use error::{Error, Result};
pub use handle::Handle;
pub use signal::SignalInfo;
pub use timer::TimerId;

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{AnyPoller, Event, Events, Interest, Mode, Poller, Token};
use handle::{Job, Shared};
use signal::Signals;
use slab::Slab;
use timer::{Callback, Timers};

type IoFn<P> = Box<dyn FnMut(&mut Context<'_, P>, Event) -> io::Result<()>>;
type TimerFn<P> = Box<dyn FnOnce(&mut Context<'_, P>, TimerId) -> io::Result<()>>;
type RepeatFn<P> = Box<dyn FnMut(&mut Context<'_, P>, TimerId) -> io::Result<()>>;
type SignalFn<P> = Box<dyn FnMut(&mut Context<'_, P>, SignalInfo) -> io::Result<()>>;

/// Bits of a token that hold the slab index; the rest hold the generation.
const INDEX_BITS: u32 = if usize::BITS >= 64 { 32 } else { 20 };
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u32 = (usize::MAX >> INDEX_BITS) as u32;
/// The reactor's own token for its signalfd: an index the slab never hands
/// out (it stops one short of `INDEX_MASK`), generation 0. Distinct from
/// [`Token::RESERVED`], whose generation bits are all ones.
const SIGNAL_TOKEN: Token = Token(INDEX_MASK);
/// Events one wait can return, unless the caller chooses.
const DEFAULT_EVENTS: usize = 1024;
/// Signals read per readiness report of the signalfd; the rest wait for the
/// next turn, so a flood of queued real-time signals cannot starve I/O.
const SIGNALS_PER_TURN: usize = 64;

fn encode(index: u32, generation: u32) -> Token {
    Token(((generation & GENERATION_MASK) as usize) << INDEX_BITS | index as usize)
}

fn decode(token: Token) -> (u32, u32) {
    (
        (token.0 & INDEX_MASK) as u32,
        (token.0 >> INDEX_BITS) as u32 & GENERATION_MASK,
    )
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Drops a value whose destructor may panic (a handler that already
/// panicked, say) without letting that panic escape.
fn drop_quietly<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

struct Source<P: Poller> {
    fd: RawFd,
    /// Out of the slot while the handler runs.
    handler: Option<IoFn<P>>,
}

/// Everything a handler can reach through its [`Context`].
struct Core<P: Poller> {
    shared: Arc<Shared<P>>,
    sources: Slab<Source<P>>,
    timers: Timers<P>,
    signals: Option<Signals<P>>,
    /// A handler called [`Context::stop`].
    stop: bool,
}

impl<P: Poller> Core<P> {
    fn poller(&self) -> &P {
        &self.shared.poller
    }

    fn register(&mut self, fd: RawFd, interest: Interest, mode: Mode, f: IoFn<P>) -> Result<Token> {
        let source = Source {
            fd,
            handler: Some(f),
        };
        let (index, generation) = self.sources.insert(source).map_err(|_| Error::Full)?;
        let token = encode(index, generation);
        if let Err(e) = self.poller().register(fd, token, interest, mode) {
            let source = self.sources.remove(index, generation);
            drop(source);
            return Err(e.into());
        }
        Ok(token)
    }

    fn modify(&mut self, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        let fd = self.fd_of(token).ok_or(Error::UnknownToken(token))?;
        self.poller().modify(fd, token, interest, mode)?;
        Ok(())
    }

    fn unregister(&mut self, token: Token) -> Result<()> {
        let (index, generation) = decode(token);
        let source = self
            .sources
            .remove(index, generation)
            .ok_or(Error::UnknownToken(token))?;
        let res = self.poller().unregister(source.fd);
        // Last, once the bookkeeping is done: the handler's destructor is
        // user code, and may close the descriptor or even panic.
        drop(source);
        match res {
            // Closed and reused elsewhere: no longer watched either way.
            Ok(()) | Err(crate::Error::NotRegistered { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn fd_of(&self, token: Token) -> Option<RawFd> {
        let (index, generation) = decode(token);
        self.sources.get(index, generation).map(|s| s.fd)
    }

    fn set_timer(&mut self, deadline: Instant, callback: Callback<P>) -> Result<TimerId> {
        self.timers.insert(deadline, callback).ok_or(Error::Full)
    }

    fn cancel_timer(&mut self, id: TimerId) -> bool {
        let callback = self.timers.cancel(id);
        let found = callback.is_some();
        drop(callback);
        found
    }

    fn on_signal(&mut self, signal: libc::c_int, f: SignalFn<P>) -> Result<()> {
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
        self.signals.insert(signals).add(signal, f)
    }

    fn remove_signal(&mut self, signal: libc::c_int) -> bool {
        let handler = self.signals.as_mut().and_then(|s| s.remove(signal));
        let found = handler.is_some();
        drop(handler);
        found
    }

    /// Runs the handler `event` is for, if its source is still registered.
    /// Returns how many callbacks ran.
    fn dispatch(&mut self, event: Event) -> Result<usize> {
        let token = event.token();
        if token == SIGNAL_TOKEN {
            return self.dispatch_signals();
        }
        let (index, generation) = decode(token);
        let Some(source) = self.sources.get_mut(index, generation) else {
            return Ok(0); // unregistered since the wait: a stale event
        };
        let Some(mut handler) = source.handler.take() else {
            return Ok(0);
        };
        let fd = source.fd;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            handler(&mut Context { core: self }, event)
        }));
        match outcome {
            Ok(Ok(())) => {
                match self.sources.get_mut(index, generation) {
                    Some(source) => source.handler = Some(handler),
                    // It unregistered itself.
                    None => drop(handler),
                }
                Ok(1)
            }
            Ok(Err(source)) => {
                let _ = self.unregister(token);
                drop(handler);
                Err(Error::Handler { fd, token, source })
            }
            Err(payload) => {
                let _ = self.unregister(token);
                let message = panic_message(&*payload);
                drop_quietly(payload);
                drop_quietly(handler);
                Err(Error::Panicked { fd, token, message })
            }
        }
    }

    fn dispatch_signals(&mut self) -> Result<usize> {
        let mut ran = 0;
        for _ in 0..SIGNALS_PER_TURN {
            let Some(signals) = self.signals.as_mut() else {
                break;
            };
            let Some(info) = signals.read_one()? else {
                break;
            };
            // Read but no longer watched (removed since it was raised).
            let Some((mut handler, id)) = signals.take(info.signal) else {
                continue;
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                handler(&mut Context { core: self }, info)
            }));
            ran += 1;
            let signal = info.signal;
            match outcome {
                Ok(Ok(())) => {
                    let leftover = match self.signals.as_mut() {
                        Some(signals) => signals.put_back(signal, id, handler),
                        None => Some(handler),
                    };
                    drop(leftover);
                }
                Ok(Err(source)) => {
                    self.remove_signal_registration(signal, id);
                    drop(handler);
                    return Err(Error::Signal { signal, source });
                }
                Err(payload) => {
                    self.remove_signal_registration(signal, id);
                    let message = panic_message(&*payload);
                    drop_quietly(payload);
                    drop_quietly(handler);
                    return Err(Error::SignalPanicked { signal, message });
                }
            }
        }
        Ok(ran)
    }

    /// Removes the registration `id` of `signal`, not a later one.
    fn remove_signal_registration(&mut self, signal: libc::c_int, id: u64) {
        if let Some(signals) = self.signals.as_mut() {
            if signals.is_current(signal, id) {
                let handler = signals.remove(signal);
                drop(handler);
            }
        }
    }

    /// Runs every timer due now. Timers set by these callbacks wait for the
    /// next turn, even with a zero delay.
    fn fire_timers(&mut self) -> Result<usize> {
        if self.timers.len() == 0 {
            return Ok(0);
        }
        let now = Instant::now();
        let mark = self.timers.round_mark();
        let mut ran = 0;
        while let Some(due) = self.timers.pop_due(now, mark) {
            let timer = due.id;
            ran += 1;
            let (outcome, repeat) = match due.callback {
                Callback::Once(f) => {
                    let outcome =
                        catch_unwind(AssertUnwindSafe(|| f(&mut Context { core: self }, timer)));
                    (outcome, None)
                }
                Callback::Repeat(mut f, period) => {
                    let outcome =
                        catch_unwind(AssertUnwindSafe(|| f(&mut Context { core: self }, timer)));
                    (outcome, Some((f, period)))
                }
            };
            match outcome {
                Ok(Ok(())) => {
                    if let Some((f, period)) = repeat {
                        let cancelled = self.timers.restore(timer, f, period, due.deadline, now);
                        drop(cancelled);
                    }
                }
                Ok(Err(source)) => {
                    self.cancel_timer(timer);
                    drop(repeat);
                    return Err(Error::Timer { timer, source });
                }
                Err(payload) => {
                    self.cancel_timer(timer);
                    let message = panic_message(&*payload);
                    drop_quietly(payload);
                    drop_quietly(repeat);
                    return Err(Error::TimerPanicked { timer, message });
                }
            }
        }
        Ok(ran)
    }
}

/// What a callback gets to act on the reactor while it runs: the same
/// calls as on the [`Reactor`] itself (register, modify, unregister, timers,
/// signals, a [`Handle`]), plus [`stop`](Context::stop).
pub struct Context<'r, P: Poller = AnyPoller> {
    core: &'r mut Core<P>,
}

/// The calls the [`Reactor`] and a [`Context`] share.
macro_rules! loop_api {
    () => {
        /// Registers `fd` for `interest` in `mode` and calls `handler` with
        /// each event it gets, until the source is unregistered. Returns the
        /// token the reactor chose, which every event for it carries.
        ///
        /// The reactor does not own `fd`: unregister before closing it, or
        /// use [`register_owned`](Self::register_owned). A handler may
        /// own the descriptor's I/O object; it is dropped when the source is
        /// unregistered, after the poller stopped watching the descriptor.
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
            F: FnMut(&mut Context<'_, P>, Event) -> io::Result<()> + 'static,
        {
            self.core().register(fd, interest, mode, Box::new(handler))
        }

        /// Registers an I/O object the reactor then owns: `handler` gets it
        /// by `&mut` with each event, and it is dropped (closing its
        /// descriptor) when the source is unregistered, after the poller
        /// stopped watching it. Make it non-blocking first.
        ///
        /// # Errors
        ///
        /// As [`register`](Self::register); `source` is dropped then.
        pub fn register_owned<S, F>(
            &mut self,
            source: S,
            interest: Interest,
            mode: Mode,
            mut handler: F,
        ) -> Result<Token>
        where
            S: AsRawFd + 'static,
            F: FnMut(&mut Context<'_, P>, &mut S, Event) -> io::Result<()> + 'static,
        {
            let fd = source.as_raw_fd();
            let mut source = source;
            self.register(fd, interest, mode, move |ctx, event| {
                handler(ctx, &mut source, event)
            })
        }

        /// Changes the interest and mode of a registered source; also how a
        /// [`Mode::Oneshot`] source is re-armed.
        ///
        /// # Errors
        ///
        /// [`Error::UnknownToken`], or [`Error::Poller`] if the poller
        /// refuses (the registration is then unchanged).
        pub fn modify(&mut self, token: Token, interest: Interest, mode: Mode) -> Result<()> {
            self.core().modify(token, interest, mode)
        }

        /// Unregisters a source and drops its handler. A handler may
        /// unregister itself: its call finishes, and it is dropped right
        /// after. No event reaches a source once it is unregistered, even
        /// one already read from the poller in the same turn.
        ///
        /// # Errors
        ///
        /// [`Error::UnknownToken`] if `token` names no source (any more).
        /// [`Error::Poller`] if the poller refused; the source is removed
        /// all the same.
        pub fn unregister(&mut self, token: Token) -> Result<()> {
            self.core().unregister(token)
        }

        /// Whether `token` names a registered source.
        pub fn is_registered(&self, token: Token) -> bool {
            self.core_ref().fd_of(token).is_some()
        }

        /// The descriptor registered under `token`.
        pub fn fd_of(&self, token: Token) -> Option<RawFd> {
            self.core_ref().fd_of(token)
        }

        /// How many sources are registered.
        pub fn source_count(&self) -> usize {
            self.core_ref().sources.len()
        }

        /// Calls `f` once, `delay` from now (on the first turn at or after
        /// the deadline; never before it). Delays beyond a century are
        /// clamped to one.
        ///
        /// # Errors
        ///
        /// [`Error::Full`] if 2³² timers are pending.
        pub fn set_timer<F>(&mut self, delay: Duration, f: F) -> Result<TimerId>
        where
            F: FnOnce(&mut Context<'_, P>, TimerId) -> io::Result<()> + 'static,
        {
            let deadline = timer::deadline_after(Instant::now(), delay);
            self.core().set_timer(deadline, Callback::Once(Box::new(f)))
        }

        /// Calls `f` once, at `deadline` or on the first turn after it.
        ///
        /// # Errors
        ///
        /// [`Error::Full`] if 2³² timers are pending.
        pub fn set_timer_at<F>(&mut self, deadline: Instant, f: F) -> Result<TimerId>
        where
            F: FnOnce(&mut Context<'_, P>, TimerId) -> io::Result<()> + 'static,
        {
            self.core().set_timer(deadline, Callback::Once(Box::new(f)))
        }

        /// Calls `f` every `period`, first one `period` from now, until the
        /// timer is cancelled (the callback may cancel it with the
        /// [`TimerId`] it is given). Ticks missed while the loop was busy
        /// are skipped, keeping the phase.
        ///
        /// # Errors
        ///
        /// [`Error::ZeroPeriod`], or [`Error::Full`].
        pub fn set_interval<F>(&mut self, period: Duration, f: F) -> Result<TimerId>
        where
            F: FnMut(&mut Context<'_, P>, TimerId) -> io::Result<()> + 'static,
        {
            if period.is_zero() {
                return Err(Error::ZeroPeriod);
            }
            let period = period.min(timer::MAX_DELAY);
            let deadline = timer::deadline_after(Instant::now(), period);
            self.core()
                .set_timer(deadline, Callback::Repeat(Box::new(f), period))
        }

        /// Cancels a timer and drops its callback. Returns whether it was
        /// pending: `false` for a one-shot timer that already fired (or is
        /// firing) and for an id already cancelled.
        pub fn cancel_timer(&mut self, id: TimerId) -> bool {
            self.core().cancel_timer(id)
        }

        /// Whether `id` names a pending timer.
        pub fn timer_pending(&self, id: TimerId) -> bool {
            self.core_ref().timers.contains(id)
        }

        /// How many timers are pending.
        pub fn timer_count(&self) -> usize {
            self.core_ref().timers.len()
        }

        /// Calls `handler` each time `signal` (e.g. `libc::SIGINT`) is
        /// delivered, instead of the signal's usual action. The signal is
        /// blocked in the calling thread and read from a `signalfd`; see
        /// the [module docs](self#signals) for the other threads of the
        /// process. Standard signals sent several times before the loop
        /// turns arrive once; real-time signals queue.
        ///
        /// # Errors
        ///
        /// [`Error::InvalidSignal`], [`Error::SignalInUse`] (one handler per
        /// signal; [`remove_signal`](Self::remove_signal) first),
        /// [`Error::Os`] or [`Error::Poller`] if the signalfd cannot be set
        /// up. The mask is unchanged then.
        pub fn on_signal<F>(&mut self, signal: libc::c_int, handler: F) -> Result<()>
        where
            F: FnMut(&mut Context<'_, P>, SignalInfo) -> io::Result<()> + 'static,
        {
            self.core().on_signal(signal, Box::new(handler))
        }

        /// Stops watching `signal`, drops its handler and restores the
        /// signal's mask in the reactor's thread. Returns whether it was
        /// watched.
        pub fn remove_signal(&mut self, signal: libc::c_int) -> bool {
            self.core().remove_signal(signal)
        }

        /// A handle for other threads.
        pub fn handle(&self) -> Handle<P> {
            Handle {
                shared: Arc::clone(&self.core_ref().shared),
            }
        }

        /// The poller underneath.
        pub fn poller(&self) -> &P {
            self.core_ref().poller()
        }
    };
}

impl<P: Poller> Context<'_, P> {
    fn core(&mut self) -> &mut Core<P> {
        self.core
    }

    fn core_ref(&self) -> &Core<P> {
        self.core
    }

    loop_api!();

    /// Makes [`run`](Reactor::run) return `Ok(())` once this turn is over.
    pub fn stop(&mut self) {
        self.core.stop = true;
    }
}

impl<P: Poller> fmt::Debug for Context<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("backend", &self.core.poller().backend())
            .field("sources", &self.core.sources.len())
            .field("timers", &self.core.timers.len())
            .finish()
    }
}

/// A callback event loop over a [`Poller`]; see the [module docs](self).
///
/// A reactor belongs to the thread that creates it (its handlers need not be
/// `Send`, and the signal mask it sets is that thread's); other threads use
/// a [`Handle`]. To run one on another thread, create it there.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<tripoll::reactor::Reactor>(); // a reactor stays on its thread
/// ```
pub struct Reactor<P: Poller = AnyPoller> {
    core: Core<P>,
    events: Events,
    /// The next event of `events` to dispatch: a turn cut short by a failing
    /// handler resumes here.
    cursor: usize,
    /// Posted closures taken from the shared queue and not yet run.
    jobs: VecDeque<Job<P>>,
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

impl<P: Poller> Reactor<P> {
    /// A reactor over `poller`, reading up to 1024 events per turn.
    pub fn with_poller(poller: P) -> Reactor<P> {
        Reactor::with_poller_and_capacity(poller, DEFAULT_EVENTS)
    }

    /// A reactor over `poller`, reading up to `events` events per turn
    /// (at least one).
    pub fn with_poller_and_capacity(poller: P, events: usize) -> Reactor<P> {
        Reactor {
            core: Core {
                shared: Arc::new(Shared::new(poller)),
                sources: Slab::new(INDEX_MASK as u32, GENERATION_MASK),
                timers: Timers::new(),
                signals: None,
                stop: false,
            },
            events: Events::with_capacity(events),
            cursor: 0,
            jobs: VecDeque::new(),
        }
    }

    fn core(&mut self) -> &mut Core<P> {
        &mut self.core
    }

    fn core_ref(&self) -> &Core<P> {
        &self.core
    }

    loop_api!();

    /// Turns the loop until a handler calls [`Context::stop`] or a
    /// [`Handle::stop`] arrives, then returns `Ok(())`. A stop asked for
    /// before `run` is called makes it return at once.
    ///
    /// With nothing registered and no timer pending, `run` sleeps until a
    /// [`Handle`] wakes it.
    ///
    /// # Errors
    ///
    /// The first callback that fails or panics ends `run` with its
    /// [`Error`] (its source is unregistered by then, see the [module
    /// docs](self#errors-and-panics)), as does a failing wait
    /// ([`Error::Poller`]). The reactor stays usable; `run` again to go on.
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
    /// callbacks ran; `Ok(0)` when the timeout passed or the loop was
    /// woken with nothing to do.
    ///
    /// If the previous turn was cut short by a failing callback, this turn
    /// first finishes it, without waiting.
    ///
    /// # Errors
    ///
    /// As [`run`](Reactor::run).
    pub fn run_once(&mut self, timeout: Option<Duration>) -> Result<usize> {
        let mut ran = 0;
        if self.cursor >= self.events.len() {
            let timeout = self.wait_timeout(timeout);
            self.events.clear();
            self.cursor = 0;
            self.core.poller().wait(&mut self.events, timeout)?;
        }
        while let Some(&event) = self.events.as_slice().get(self.cursor) {
            self.cursor += 1;
            ran += self.core.dispatch(event)?;
        }
        ran += self.core.fire_timers()?;
        ran += self.run_posted()?;
        Ok(ran)
    }

    /// Whether a stop was asked for ([`Context::stop`], [`Handle::stop`])
    /// that [`run`](Reactor::run) has not yet honoured; for loops built on
    /// [`run_once`](Reactor::run_once).
    pub fn stop_requested(&self) -> bool {
        self.core.stop || self.core.shared.stop.load(Ordering::Acquire)
    }

    fn take_stop(&mut self) -> bool {
        let local = std::mem::take(&mut self.core.stop);
        let remote = self.core.shared.stop.swap(false, Ordering::AcqRel);
        local || remote
    }

    /// The caller's timeout, shortened to the next timer's deadline, or zero
    /// when posted closures are still waiting to run.
    fn wait_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.jobs.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self
            .core
            .timers
            .next_deadline()
            .map(|at| at.saturating_duration_since(Instant::now()));
        match (timeout, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn run_posted(&mut self) -> Result<usize> {
        if self.core.shared.posted.swap(false, Ordering::AcqRel) {
            let mut queue = self.core.shared.queue();
            self.jobs.extend(queue.jobs.drain(..));
        }
        let mut ran = 0;
        while let Some(job) = self.jobs.pop_front() {
            ran += 1;
            let core = &mut self.core;
            match catch_unwind(AssertUnwindSafe(|| job(&mut Context { core }))) {
                Ok(Ok(())) => {}
                Ok(Err(source)) => return Err(Error::Posted { source }),
                Err(payload) => {
                    let message = panic_message(&*payload);
                    drop_quietly(payload);
                    return Err(Error::PostPanicked { message });
                }
            }
        }
        Ok(ran)
    }
}

impl<P: Poller> Drop for Reactor<P> {
    /// Unregisters every source from the poller (which [`Handle`]s may keep
    /// alive, or which the caller may share), then drops the handlers,
    /// timers and queued closures, and restores the signal mask.
    fn drop(&mut self) {
        let queued = {
            let mut queue = self.core.shared.queue();
            queue.closed = true;
            std::mem::take(&mut queue.jobs)
        };
        drop_quietly(queued);
        drop_quietly(std::mem::take(&mut self.jobs));

        let core = &mut self.core;
        let keys: Vec<(u32, u32)> = core.sources.keys().collect();
        for (index, generation) in keys {
            if let Some(source) = core.sources.remove(index, generation) {
                let _ = core.shared.poller.unregister(source.fd);
                drop_quietly(source);
            }
        }
        core.timers.clear(drop_quietly);
        if let Some(mut signals) = core.signals.take() {
            let _ = core.shared.poller.unregister(signals.fd());
            signals.clear(drop_quietly);
        }
    }
}

impl<P: Poller> fmt::Debug for Reactor<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("poller", self.core.poller())
            .field("sources", &self.core.sources.len())
            .field("timers", &self.core.timers.len())
            .field("signals", &self.core.signals)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_avoid_reserved_ones() {
        for (index, generation) in [(0, 0), (1, 7), (INDEX_MASK as u32 - 1, GENERATION_MASK)] {
            let token = encode(index, generation);
            assert_eq!(decode(token), (index, generation));
            assert_ne!(token, Token::RESERVED);
            assert_ne!(token, SIGNAL_TOKEN);
        }
        assert_ne!(SIGNAL_TOKEN, Token::RESERVED);
    }

    #[test]
    fn panic_messages_are_extracted() {
        let p = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
        let p = catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
        let p = catch_unwind(|| std::panic::panic_any(42)).unwrap_err();
        assert_eq!(panic_message(&*p), "<non-string panic payload>");
    }
}
