//! The part of a reactor other threads can reach: its poller (to wake it),
//! a queue of closures to run on the loop thread, and a stop flag.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Context, Error, Result};
use crate::Poller;

/// A closure posted from another thread.
pub(crate) type Job<P> = Box<dyn FnOnce(&mut Context<'_, P>) -> io::Result<()> + Send>;

pub(crate) struct Queue<P: Poller> {
    pub(crate) jobs: Vec<Job<P>>,
    /// Set when the reactor is dropped; posting then fails.
    pub(crate) closed: bool,
}

pub(crate) struct Shared<P: Poller> {
    pub(crate) poller: P,
    queue: Mutex<Queue<P>>,
    /// The queue may be non-empty: lets the loop skip the lock when idle.
    pub(crate) posted: AtomicBool,
    /// A stop was asked for from another thread.
    pub(crate) stop: AtomicBool,
}

impl<P: Poller> Shared<P> {
    pub(crate) fn new(poller: P) -> Shared<P> {
        Shared {
            poller,
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                closed: false,
            }),
            posted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// Locks the queue. A thread that panicked while holding the lock left
    /// it valid (every change is a single push or drain), so poisoning is
    /// ignored.
    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue<P>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle to a [`Reactor`](super::Reactor) for other threads: wake its
/// loop, run a closure on the loop thread, or ask the loop to stop.
///
/// Cheap to clone; `Send` and `Sync`. Posting allocates one box per
/// closure; nothing else here allocates.
pub struct Handle<P: Poller = crate::AnyPoller> {
    pub(crate) shared: Arc<Shared<P>>,
}

impl<P: Poller> Handle<P> {
    /// Wakes the loop: a blocked [`run_once`](super::Reactor::run_once)
    /// returns. Wake-ups sent before the loop waits coalesce into one.
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
    /// were posted. An error `f` returns, or a panic, comes out of
    /// [`run`](super::Reactor::run) as [`Error::Posted`] or
    /// [`Error::PostPanicked`].
    ///
    /// A closure accepted here but still queued when the reactor is dropped
    /// is dropped without running.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the reactor is already gone (`f` is dropped),
    /// or [`Error::Poller`] if the loop cannot be woken (`f` stays queued
    /// and runs at the loop's next turn).
    pub fn post<F>(&self, f: F) -> Result<()>
    where
        F: FnOnce(&mut Context<'_, P>) -> io::Result<()> + Send + 'static,
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
    pub fn is_closed(&self) -> bool {
        self.shared.queue().closed
    }
}

impl<P: Poller> Clone for Handle<P> {
    fn clone(&self) -> Handle<P> {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P: Poller> fmt::Debug for Handle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("poller", &self.shared.poller)
            .field("closed", &self.is_closed())
            .finish()
    }
}
