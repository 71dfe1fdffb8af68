//! Choosing a backend at run time: the [`Backend`] names, and
//! [`AnyPoller`], one enum over every backend with one dispatch.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::str::FromStr;
use std::time::Duration;

use crate::backend::{Epoll, Poll, Select};
use crate::{Capabilities, Error, Events, Interest, Mode, Poller, Result, Token};

/// The I/O multiplexing models: which [`Poller`] implementation to use.
///
/// Parse one from its name (`"epoll".parse()`, any letter case) or from
/// the `TRIPOLL_BACKEND` environment variable ([`Backend::from_env`]), and
/// build it with [`AnyPoller::new`].
///
/// ```
/// use tripoll::Backend;
///
/// let b: Backend = "Select".parse()?;
/// assert_eq!(b, Backend::Select);
/// assert_eq!(format!("[{b:>8}]"), "[  select]");
/// assert!("kqueue".parse::<Backend>().is_err());
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// `epoll(7)`: the kernel keeps the interest list; a wait costs in
    /// proportion to the ready descriptors. Linux only.
    Epoll,
    /// `poll(2)`: the whole descriptor array goes to the kernel on every
    /// wait; no limit on descriptor numbers.
    Poll,
    /// `select(2)`: three `FD_SETSIZE`-bit bitmaps per wait; descriptors must
    /// be below 1024.
    Select,
    /// `io_uring(7)` readiness (`IORING_OP_POLL_ADD`), named `uring`: the
    /// kernel completes one poll request per readiness report. Needs the
    /// `io-uring` cargo feature and a kernel and system that allow io_uring;
    /// otherwise [`AnyPoller::new`] fails with [`Error::Unavailable`] (never
    /// a quiet fall-back to another backend).
    IoUring,
}

/// Every backend and its name, from the most scalable to the least: the
/// one list that [`Backend::ALL`], [`Backend::name`] and parsing read.
const NAMES: [(Backend, &str); 4] = [
    (Backend::Epoll, "epoll"),
    (Backend::Poll, "poll"),
    (Backend::Select, "select"),
    (Backend::IoUring, "uring"),
];

impl Backend {
    /// Every backend, from the most scalable to the least. One may be
    /// unavailable where the program runs ([`Error::Unavailable`]): io_uring
    /// without its cargo feature, or where the system forbids it.
    pub const ALL: [Backend; NAMES.len()] = {
        let mut all = [Backend::Epoll; NAMES.len()];
        let mut i = 0;
        while i < NAMES.len() {
            all[i] = NAMES[i].0;
            i += 1;
        }
        all
    };

    /// The environment variable [`Backend::from_env`] reads.
    pub const ENV_VAR: &'static str = "TRIPOLL_BACKEND";

    /// The lower-case name: `"epoll"`, `"poll"`, `"select"` or `"uring"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        let mut i = 0;
        while i < NAMES.len() {
            if NAMES[i].0 as u8 == self as u8 {
                return NAMES[i].1;
            }
            i += 1;
        }
        "unknown" // unreachable: every variant is in NAMES (tested)
    }

    /// The platform's best backend: epoll (the crate builds for Linux and
    /// Android only).
    ///
    /// ```
    /// assert_eq!(tripoll::Backend::platform_default(), tripoll::Backend::Epoll);
    /// ```
    #[must_use]
    pub const fn platform_default() -> Backend {
        Backend::Epoll
    }

    /// The backend named by `TRIPOLL_BACKEND` (`epoll`, `poll`, `select` or
    /// `uring`, any letter case), or [`platform_default`](Backend::platform_default)
    /// when the variable is unset or empty.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`] for any other value, including one that is
    /// not valid Unicode: a typo never silently selects another backend.
    pub fn from_env() -> Result<Backend> {
        match std::env::var_os(Self::ENV_VAR) {
            None => Ok(Backend::platform_default()),
            Some(v) if v.is_empty() => Ok(Backend::platform_default()),
            Some(v) => match v.to_str() {
                Some(s) => s.parse(),
                None => Err(Error::UnknownBackend {
                    name: v.to_string_lossy().into_owned(),
                }),
            },
        }
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::platform_default()
    }
}

impl fmt::Display for Backend {
    /// The name, honouring width and alignment (`{:8}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    /// Parses `epoll`, `poll`, `select` or `uring`, ignoring letter case.
    fn from_str(s: &str) -> Result<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownBackend { name: s.to_owned() })
    }
}

/// A poller whose backend is chosen at run time: an enum over the three, so
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
    /// [`Error::Io`] with [`Op::Create`](crate::Op::Create) if the kernel
    /// refuses (out of descriptors, for one).
    pub fn new(backend: Backend) -> Result<AnyPoller> {
        Ok(match backend {
            Backend::Epoll => AnyPoller::Epoll(Epoll::new()?),
            Backend::Poll => AnyPoller::Poll(Poll::new()?),
            Backend::Select => AnyPoller::Select(Select::new()?),
            #[cfg(feature = "io-uring")]
            Backend::IoUring => AnyPoller::IoUring(crate::Uring::new()?),
            #[cfg(not(feature = "io-uring"))]
            Backend::IoUring => {
                return Err(Error::Unavailable {
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
    /// [`Error::UnknownBackend`] for a bad name, or the errors of
    /// [`AnyPoller::new`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_has_its_own_name() {
        for (i, b) in Backend::ALL.into_iter().enumerate() {
            assert_eq!(b.name(), NAMES[i].1);
            assert_ne!(b.name(), "unknown");
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
    }
}
