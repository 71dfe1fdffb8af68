//! The part of a reactor other threads can reach (its poller, to wake it;
//! a queue of closures to run on the loop thread; a stop flag), and the
//! running of those posted closures.
//!
//! The queue has no bound. Posting is how other threads hand work to the
//! loop, and a bound would force a policy on them (block, or fail and make
//! them keep the work) that only the application can choose; each closure
//! costs one box until it runs, or until the reactor is dropped, which
//! closes the queue and drops what is left. An application that posts
//! faster than its loop runs, or posts while the loop is stopped for long,
//! should count what it has in flight (a semaphore, a channel with a
//! bound) on its side.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::failure::{guarded, Origin};
use super::{Context, Error, Result};
use crate::Poller;

/// A closure posted from another thread.
pub(crate) type Job = Box<dyn FnOnce(&mut Context) -> io::Result<()> + Send>;

pub(crate) struct Queue {
    pub(crate) jobs: Vec<Job>,
    /// Set when the reactor is dropped; posting then fails.
    pub(crate) closed: bool,
}

/// What the loop shares with its handles. `P` is the poller's type for the
/// reactor (its wait is dispatched statically) and `dyn Poller` for
/// everything else.
pub(crate) struct Shared<P: ?Sized> {
    queue: Mutex<Queue>,
    /// The queue may be non-empty: lets the loop skip the lock when idle.
    pub(crate) posted: AtomicBool,
    /// A stop was asked for from another thread.
    pub(crate) stop: AtomicBool,
    pub(crate) poller: P,
}

impl<P> Shared<P> {
    pub(crate) fn new(poller: P) -> Shared<P> {
        Shared {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                closed: false,
            }),
            posted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            poller,
        }
    }
}

impl<P: ?Sized> Shared<P> {
    /// Locks the queue. A thread that panicked while holding the lock left
    /// it valid (every change is a single push or drain), so poisoning is
    /// ignored.
    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle to a [`Reactor`](super::Reactor) for other threads: wake its
/// loop, run a closure on the loop thread, or ask the loop to stop.
///
/// Cheap to clone; `Send` and `Sync`. Posting allocates one box per
/// closure; nothing else here allocates. The same type serves a reactor
/// over any poller.
///
/// ```
/// use tripoll::reactor::Reactor;
///
/// # fn main() -> tripoll::reactor::Result<()> {
/// let mut reactor = Reactor::new()?;
/// let handle = reactor.handle();
/// std::thread::spawn(move || handle.post(|ctx| Ok(ctx.stop())))
///     .join()
///     .expect("poster")?;
/// reactor.run()?; // runs the closure, which stops the loop
/// # Ok(())
/// # }
/// ```
pub struct Handle {
    pub(crate) shared: Arc<Shared<dyn Poller>>,
}

impl Handle {
    /// Wakes the loop: a blocked [`run_once`](super::Reactor::run_once)
    /// returns. Wake-ups sent before the loop waits coalesce into one.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let handle = reactor.handle();
    /// // Woken with nothing to do: the turn returns, no callback ran.
    /// std::thread::spawn(move || handle.wake()).join().expect("thread")?;
    /// assert_eq!(reactor.run_once(None)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Poller`] if the poller's wake-up descriptor cannot be
    /// written.
    pub fn wake(&self) -> Result<()> {
        self.shared.poller.notify()?;
        Ok(())
    }

    /// Runs `f` on the loop thread during the loop's next turn, after the
    /// I/O events and timers of that turn. Closures run in the order they
    /// were posted. An error `f` returns, or a panic, goes to the reactor's
    /// error handler as a [`Failure`](super::Failure) of
    /// [`Origin::Posted`](super::Origin::Posted); the loop goes on.
    ///
    /// The queue has no bound (see the [module docs](super#threads)). A
    /// closure accepted here but still queued when the reactor is dropped
    /// is dropped without running.
    ///
    /// ```
    /// use std::thread;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let handle = reactor.handle();
    /// let worker = thread::spawn(move || {
    ///     let answer = 6 * 7; // work done off the loop thread
    ///     handle.post(move |ctx| {
    ///         // back on the loop thread, with the reactor at hand
    ///         assert_eq!(answer, 42);
    ///         ctx.stop();
    ///         Ok(())
    ///     })
    /// });
    /// reactor.run()?; // until the posted closure stops it
    /// worker.join().expect("worker thread")?;
    /// # Ok::<(), tripoll::reactor::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the reactor is already gone (`f` is dropped),
    /// or [`Error::Poller`] if the loop cannot be woken (`f` stays queued
    /// and runs at the loop's next turn).
    pub fn post<F>(&self, f: F) -> Result<()>
    where
        F: FnOnce(&mut Context) -> io::Result<()> + Send + 'static,
    {
        {
            let mut q = self.shared.queue();
            if q.closed {
                return Err(Error::Closed);
            }
            q.jobs.push(Box::new(f));
            self.shared.posted.store(true, Ordering::Release);
        }
        self.wake()
    }

    /// Asks the loop to stop: [`run`](super::Reactor::run) returns `Ok(())`
    /// once the turn in progress is over. A stop asked for while `run` is
    /// not running makes the next `run` return at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let handle = reactor.handle();
    /// let worker = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(5));
    ///     handle.stop() // `run` below returns
    /// });
    /// reactor.run()?;
    /// worker.join().expect("thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the reactor is gone, or [`Error::Poller`] if it
    /// cannot be woken.
    pub fn stop(&self) -> Result<()> {
        if self.shared.queue().closed {
            return Err(Error::Closed);
        }
        self.shared.stop.store(true, Ordering::Release);
        self.wake()
    }

    /// Whether the reactor has been dropped.
    ///
    /// ```
    /// use tripoll::reactor::{Error, Reactor};
    ///
    /// let reactor = Reactor::new()?;
    /// let handle = reactor.handle();
    /// assert!(!handle.is_closed());
    /// drop(reactor);
    /// assert!(handle.is_closed());
    /// assert!(matches!(handle.stop(), Err(Error::Closed))); // nothing left to stop
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.queue().closed
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            // `&&`: a `&dyn Poller` as `&dyn Debug` would need trait upcasting
            // (Rust 1.86); the crate supports 1.70.
            .field("poller", &&self.shared.poller)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Context {
    /// Runs the closures posted from other threads, in order; one that
    /// fails is reported. Returns how many ran.
    #[inline]
    pub(crate) fn run_posted(&mut self) -> usize {
        // Load first: the swap is a locked instruction, and nothing is
        // posted on nearly every turn.
        if self.posted.is_empty() && !self.shared.posted.load(Ordering::Relaxed) {
            return 0;
        }
        self.run_queued()
    }

    fn run_queued(&mut self) -> usize {
        if self.shared.posted.swap(false, Ordering::AcqRel) {
            let mut queue = self.shared.queue();
            self.posted.extend(queue.jobs.drain(..));
        }
        let mut ran = 0;
        while let Some(job) = self.posted.pop_front() {
            ran += 1;
            // Consumed by the call: what it owns is dropped inside it.
            if let Err(failure) = guarded(Origin::Posted, || job(self)) {
                self.fail(failure);
            }
        }
        ran
    }

    /// Drops the closures still queued, without running them, and closes
    /// the queue: posting fails from now on.
    pub(crate) fn close_posted(&mut self) {
        let queued = {
            let mut queue = self.shared.queue();
            queue.closed = true;
            std::mem::take(&mut queue.jobs)
        };
        let local: VecDeque<Job> = std::mem::take(&mut self.posted);
        for job in local.into_iter().chain(queued) {
            self.drop_guarded(Origin::Posted, job);
        }
    }
}
