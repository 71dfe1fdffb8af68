//! Choosing a backend at run time: [`AnyPoller`], one enum over every
//! backend with one dispatch. (The names, [`Backend`], sit lower, next to
//! the trait: every backend names itself with one.)

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::backend::{Epoll, Poll, Select};
use crate::{Backend, Capabilities, Events, Interest, Mode, Poller, Result, Token};

/// A poller whose backend is chosen at run time: an enum over the four, so
/// dispatch is a `match`, not a virtual call, and nothing is boxed.
///
/// ```
/// use tripoll::{AnyPoller, Backend, Poller};
///
/// let poller = AnyPoller::new(Backend::Poll)?;
/// assert_eq!(poller.name(), "poll");
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyPoller {
    /// The epoll backend.
    Epoll(Epoll),
    /// The poll backend.
    Poll(Poll),
    /// The select backend.
    Select(Select),
    /// The io_uring backend.
    #[cfg(feature = "io-uring")]
    IoUring(crate::Uring),
}

impl AnyPoller {
    /// Creates a poller of the given backend.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) with [`Op::Create`](crate::Op::Create) if the kernel
    /// refuses (out of descriptors, for one).
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, Error, Mode, Poller};
    ///
    /// let poller = AnyPoller::new(Backend::Poll)?;
    /// assert_eq!(poller.backend(), Backend::Poll);
    /// assert!(!poller.supports(Mode::Edge)); // poll(2) has no edge trigger
    /// // io_uring is built in with the `io-uring` feature only, and never
    /// // replaced by another backend when it cannot be had.
    /// match AnyPoller::new(Backend::IoUring) {
    ///     Ok(uring) => assert_eq!(uring.backend(), Backend::IoUring),
    ///     Err(e) => assert!(matches!(e, Error::Unavailable { .. }), "{e}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(backend: Backend) -> Result<AnyPoller> {
        Ok(match backend {
            Backend::Epoll => AnyPoller::Epoll(Epoll::new()?),
            Backend::Poll => AnyPoller::Poll(Poll::new()?),
            Backend::Select => AnyPoller::Select(Select::new()?),
            #[cfg(feature = "io-uring")]
            Backend::IoUring => AnyPoller::IoUring(crate::Uring::new()?),
            #[cfg(not(feature = "io-uring"))]
            Backend::IoUring => {
                return Err(crate::Error::Unavailable {
                    backend,
                    reason: "tripoll was built without its `io-uring` feature".to_owned(),
                })
            }
        })
    }

    /// A descriptor that is readable exactly when a [`wait`](Poller::wait)
    /// would report something, for nesting this poller in another event
    /// loop: the epoll instance's own (see [`Epoll`'s `AsFd`](Epoll#impl-AsFd-for-Epoll)),
    /// or `None` for poll and select, which keep their set in user space and
    /// have no kernel object that could become readable, and for io_uring,
    /// whose pending submissions its ring's descriptor does not show.
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend};
    ///
    /// assert!(AnyPoller::new(Backend::Epoll)?.pollable_fd().is_some());
    /// assert!(AnyPoller::new(Backend::Poll)?.pollable_fd().is_none());
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    pub fn pollable_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            AnyPoller::Epoll(p) => Some(p.as_fd()),
            AnyPoller::Poll(_) | AnyPoller::Select(_) => None,
            // The ring's descriptor is readable when completions wait, but
            // registrations queued and not yet submitted would not show.
            #[cfg(feature = "io-uring")]
            AnyPoller::IoUring(_) => None,
        }
    }

    /// Creates the poller that `TRIPOLL_BACKEND` names; see
    /// [`Backend::from_env`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`](crate::Error::UnknownBackend) for a bad name, or the errors of
    /// [`AnyPoller::new`].
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, Poller};
    ///
    /// // `TRIPOLL_BACKEND=poll cargo run` would make this a poll(2) poller.
    /// let poller = AnyPoller::from_env()?;
    /// assert_eq!(poller.backend(), Backend::from_env()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env() -> Result<AnyPoller> {
        AnyPoller::new(Backend::from_env()?)
    }
}

/// The one place that lists the variants of [`AnyPoller`]: every method
/// goes through it.
macro_rules! dispatch {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            AnyPoller::Epoll($p) => $call,
            AnyPoller::Poll($p) => $call,
            AnyPoller::Select($p) => $call,
            #[cfg(feature = "io-uring")]
            AnyPoller::IoUring($p) => $call,
        }
    };
}

impl Poller for AnyPoller {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        dispatch!(self, p => p.register(fd, token, interest, mode))
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        dispatch!(self, p => p.modify(fd, token, interest, mode))
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        dispatch!(self, p => p.unregister(fd))
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        dispatch!(self, p => p.wait(events, timeout))
    }

    fn notify(&self) -> Result<()> {
        dispatch!(self, p => p.notify())
    }

    fn capabilities(&self) -> Capabilities {
        dispatch!(self, p => p.capabilities())
    }

    fn backend(&self) -> Backend {
        dispatch!(self, p => p.backend())
    }
}

impl From<Epoll> for AnyPoller {
    fn from(p: Epoll) -> AnyPoller {
        AnyPoller::Epoll(p)
    }
}

impl From<Poll> for AnyPoller {
    fn from(p: Poll) -> AnyPoller {
        AnyPoller::Poll(p)
    }
}

impl From<Select> for AnyPoller {
    fn from(p: Select) -> AnyPoller {
        AnyPoller::Select(p)
    }
}
