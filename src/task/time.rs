//! Timer futures on the reactor's timer heap.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use super::{no_reactor, reactor_id, with_context};
use crate::reactor::{deadline_after, TimerId};

/// What a pending [`Sleep`] shares with its timer callback.
struct Shared {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The future of [`sleep`] and [`sleep_until`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, sleep, Sleep};
///
/// let mut reactor = Reactor::new()?;
/// let nap: Sleep = sleep(Duration::from_millis(2));
/// let until = nap.deadline();
/// block_on(&mut reactor, nap)??;
/// assert!(Instant::now() >= until);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The timer set at the first poll, its reactor, and what it shares.
    timer: Option<(TimerId, usize, Rc<Shared>)>,
}

/// Waits `delay` (at least: never less). The timer is set on the reactor
/// of the task that first polls the future.
///
/// # Errors
///
/// The future yields an error when polled outside a task of an executor
/// driving a reactor, or if the reactor holds 2³² timers.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, sleep};
///
/// let mut reactor = Reactor::new()?;
/// let start = Instant::now();
/// block_on(&mut reactor, sleep(Duration::from_millis(5)))??;
/// assert!(start.elapsed() >= Duration::from_millis(5)); // never early
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sleep(delay: Duration) -> Sleep {
    // Clamped as the reactor's timers are: `Instant` cannot hold everything.
    sleep_until(deadline_after(Instant::now(), delay))
}

/// Waits until `deadline` (never returns before it).
///
/// # Errors
///
/// As [`sleep`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, sleep_until};
///
/// let mut reactor = Reactor::new()?;
/// let deadline = Instant::now() + Duration::from_millis(5);
/// block_on(&mut reactor, sleep_until(deadline))??;
/// assert!(Instant::now() >= deadline);
/// // A deadline already past: at once.
/// block_on(&mut reactor, sleep_until(deadline))??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

impl Sleep {
    /// When the future completes.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tripoll::task::sleep;
    ///
    /// let before = Instant::now();
    /// let nap = sleep(Duration::from_secs(1)); // not polled: no timer yet
    /// assert!(nap.deadline() >= before + Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn set_timer(&mut self) -> io::Result<()> {
        let shared = Rc::new(Shared {
            fired: Cell::new(false),
            waker: RefCell::new(None),
        });
        let theirs = Rc::clone(&shared);
        let deadline = self.deadline;
        let (id, reactor) = with_context(None, |ctx| {
            let id = ctx.set_timer_at(deadline, move |_, _| {
                theirs.fired.set(true);
                if let Some(waker) = theirs.waker.borrow_mut().take() {
                    waker.wake();
                }
                Ok(())
            });
            id.map(|id| (id, reactor_id(ctx)))
        })
        .ok_or_else(no_reactor)??;
        self.timer = Some((id, reactor, shared));
        Ok(())
    }
}

impl Future for Sleep {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(Ok(()));
        }
        if self.timer.as_ref().is_some_and(|(_, _, s)| s.fired.get()) {
            self.timer = None; // fired, yet early by this clock: set another
        }
        if self.timer.is_none() {
            if let Err(e) = self.set_timer() {
                return Poll::Ready(Err(e));
            }
        }
        if let Some((_, _, shared)) = &self.timer {
            let mut waker = shared.waker.borrow_mut();
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((id, reactor, shared)) = self.timer.take() {
            if !shared.fired.get() {
                // Outside the loop the timer stays, and fires for nothing.
                with_context(Some(reactor), |ctx| ctx.cancel_timer(id));
            }
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("timer", &self.timer.as_ref().map(|(id, _, _)| *id))
            .finish()
    }
}

/// Runs `future` for at most `limit`: its output, or an error of kind
/// `TimedOut` once `limit` has passed (never before). `future` is dropped
/// then.
///
/// ```
/// use std::io::ErrorKind;
/// use std::time::Duration;
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, sleep, timeout};
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new()?;
/// let slow = timeout(Duration::from_millis(1), sleep(Duration::from_secs(60)));
/// let err = block_on(&mut reactor, slow)?.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::TimedOut);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// `TimedOut`, or as [`sleep`].
pub async fn timeout<F: Future>(limit: Duration, future: F) -> io::Result<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = sleep(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "tripoll::task::timeout: the time limit passed",
            ))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
