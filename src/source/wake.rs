//! [`Wake`]: an `eventfd` counter another thread or process can bump.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use crate::sys::eventfd::EventFd;
use crate::{Error, Op, Result};

/// A wake-up counter (`eventfd`): [`wake`](Wake::wake) adds one from any
/// thread (it is `Sync`), or from another process that holds a
/// [`try_clone`](Wake::try_clone) across `fork` or a descriptor it was
/// sent; the descriptor is readable while the counter is above zero, and
/// [`read`](Wake::read) takes the count and resets it. For loops that do
/// not own their poller's [`notify`](crate::Poller::notify), or that want
/// several distinct wake-ups, each with its own token.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tripoll::source::Wake;
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let wake = Arc::new(Wake::new()?);
/// poller.register_source(&*wake, Token(3), Interest::READABLE, Mode::Level)?;
///
/// let other = Arc::clone(&wake);
/// std::thread::spawn(move || {
///     other.wake().expect("wake");
///     other.wake().expect("wake");
/// })
/// .join()
/// .expect("thread");
///
/// let mut events = Events::with_capacity(4);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(3)));
/// assert_eq!(wake.read()?, Some(2));
/// assert_eq!(wake.read()?, None);
/// poller.unregister_source(&*wake)?;
/// # Ok::<(), tripoll::Error>(())
/// ```
pub struct Wake {
    counter: EventFd,
}

impl Wake {
    /// A new counter at zero.
    ///
    /// ```
    /// use tripoll::source::Wake;
    ///
    /// let wake = Wake::new()?;
    /// assert_eq!(wake.read()?, None);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Wake`] if the kernel refuses the `eventfd`.
    pub fn new() -> Result<Wake> {
        let counter = EventFd::new().map_err(Error::io(Op::Wake))?;
        Ok(Wake { counter })
    }

    /// Adds one to the counter, making the descriptor readable.
    ///
    /// ```
    /// use tripoll::source::Wake;
    ///
    /// let wake = Wake::new()?;
    /// wake.wake()?;
    /// wake.wake()?;
    /// assert_eq!(wake.read()?, Some(2));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Wake`] if the write fails.
    pub fn wake(&self) -> Result<()> {
        self.counter.wake().map_err(Error::io(Op::Wake))
    }

    /// Takes the count of wake-ups since the last read and resets it,
    /// without blocking; `None` when there were none.
    ///
    /// ```
    /// use tripoll::source::Wake;
    ///
    /// let wake = Wake::new()?;
    /// assert_eq!(wake.read()?, None);
    /// wake.wake()?;
    /// assert_eq!(wake.read()?, Some(1));
    /// assert_eq!(wake.read()?, None); // reset by the read
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Wake`] if the read fails.
    pub fn read(&self) -> Result<Option<u64>> {
        self.counter.take().map_err(Error::io(Op::Wake))
    }

    /// A second handle on the same counter (a duplicated descriptor), to
    /// hand to another owner or keep across `fork`.
    ///
    /// ```
    /// use tripoll::source::Wake;
    ///
    /// let wake = Wake::new()?;
    /// let twin = wake.try_clone()?;
    /// twin.wake()?;
    /// assert_eq!(wake.read()?, Some(1));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Wake`] if the descriptor cannot be
    /// duplicated.
    pub fn try_clone(&self) -> Result<Wake> {
        let counter = self.counter.try_clone().map_err(Error::io(Op::Wake))?;
        Ok(Wake { counter })
    }
}

impl AsFd for Wake {
    /// The `eventfd`: readable while the counter is above zero.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.counter.as_fd()
    }
}

impl AsRawFd for Wake {
    /// The `eventfd`; see [`as_fd`](Wake::as_fd).
    fn as_raw_fd(&self) -> RawFd {
        self.counter.fd()
    }
}

impl fmt::Debug for Wake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wake")
            .field("fd", &self.counter.fd())
            .finish()
    }
}
