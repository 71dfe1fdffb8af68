//! Awaiting the typed sources of [`crate::source`]: each is an
//! [`Async`] object whose read waits while the source has nothing to say.

use std::io;
use std::process::ExitStatus;

use super::Async;
use crate::source::{ChildExit, SignalInfo, Signals, Timer, Wake};

/// `Ok(None)` from a source's non-blocking read, as the `WouldBlock` that
/// [`Async::read_with`] waits on.
fn or_wait<T>(read: crate::Result<Option<T>>) -> io::Result<T> {
    read?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
}

impl Async<Signals> {
    /// Waits for one of the set's signals and returns it.
    ///
    /// ```
    /// use tripoll::reactor::Reactor;
    /// use tripoll::source::Signals;
    /// use tripoll::task::{self, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let info = task::block_on(&mut reactor, async {
    ///     let signals = Async::new(Signals::new(&[libc::SIGUSR2])?)?;
    ///     // This program's one thread blocks SIGUSR2 now.
    ///     let pid = std::process::id().to_string();
    ///     std::process::Command::new("kill").args(["-USR2", &pid]).status()?;
    ///     signals.recv().await
    /// })??;
    /// assert_eq!(info.signal, libc::SIGUSR2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Signals::read`], or the reactor's.
    pub async fn recv(&self) -> io::Result<SignalInfo> {
        self.read_with(|s| or_wait(s.read())).await
    }
}

impl Async<Timer> {
    /// Waits until the timer has expired and returns how many times it
    /// did since the last read (more than one when the task was late for a
    /// periodic timer).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::source::{Clock, Timer};
    /// use tripoll::task::{self, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let start = Instant::now();
    /// let ticks = task::block_on(&mut reactor, async {
    ///     let timer = Async::new(Timer::new(Clock::Monotonic)?)?;
    ///     timer.get_ref().set_after(Duration::from_millis(10))?;
    ///     timer.tick().await
    /// })??;
    /// assert_eq!(ticks, 1);
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Timer::read`], or the reactor's.
    pub async fn tick(&self) -> io::Result<u64> {
        self.read_with(|t| or_wait(t.read())).await
    }
}

impl Async<ChildExit> {
    /// Waits for the child to exit, reaps it and returns its status.
    ///
    /// ```
    /// use std::process::Command;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::source::ChildExit;
    /// use tripoll::task::{self, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let status = task::block_on(&mut reactor, async {
    ///     let child = Command::new("sh").args(["-c", "exit 2"]).spawn()?;
    ///     let exit = Async::new(ChildExit::from_child(&child)?)?;
    ///     exit.exit().await
    /// })??;
    /// assert_eq!(status.code(), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ChildExit::try_wait`], or the reactor's.
    pub async fn exit(&self) -> io::Result<ExitStatus> {
        self.read_with(|c| or_wait(c.try_wait())).await
    }
}

impl Async<Wake> {
    /// Waits for a wake-up and returns how many came since the last read.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::source::Wake;
    /// use tripoll::task::{self, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let wake = Wake::new()?;
    /// let waker = wake.try_clone()?;
    /// let other = std::thread::spawn(move || waker.wake());
    /// let count = task::block_on(&mut reactor, async {
    ///     Async::new(wake)?.woken().await
    /// })??;
    /// assert_eq!(count, 1);
    /// other.join().expect("thread")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Wake::read`], or the reactor's.
    pub async fn woken(&self) -> io::Result<u64> {
        self.read_with(|w| or_wait(w.read())).await
    }
}
