//! The [`Poller`] trait, the [`Backend`] names and the runtime-chosen
//! [`AnyPoller`].

use std::fmt;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::time::Duration;

use crate::backend::{Epoll, Poll, Select};
use crate::{Capabilities, Error, Events, Interest, Mode, Result, Token};

/// An I/O readiness multiplexer: the one interface over epoll, poll and
/// select.
///
/// Every method takes `&self`, so one poller can be shared between threads
/// behind an [`Arc`](std::sync::Arc): one thread waits while others register,
/// modify, unregister or [`notify`](Poller::notify). The trait is object safe
/// (`Box<dyn Poller>` works); [`AnyPoller`] is the allocation-free way to
/// choose a backend at run time.
///
/// # The contract
///
/// Every backend keeps these promises; the conformance suite in `tests/`
/// checks each of them against each backend.
///
/// 1. **Timeouts.** `None` blocks until an event or a notification;
///    `Some(Duration::ZERO)` never blocks; any other timeout is rounded *up*
///    to the backend's resolution (nanoseconds for epoll with
///    `epoll_pwait2`, Linux 5.11 and later, milliseconds before it;
///    nanoseconds for poll; microseconds for select), so a short wait never becomes a busy
///    loop. Timeouts too large for the kernel are clamped, not wrapped.
/// 2. **Signals.** A wait interrupted by a signal (`EINTR`) is resumed with
///    the time that remains, never with the full timeout again.
/// 3. **Masking.** Events carry only the readiness that was asked for, plus
///    error and hang-up, which are always reported. A descriptor ready for
///    reading and writing yields one event with both.
/// 4. **Modes.** A mode the backend cannot honour is refused with
///    [`Error::Unsupported`] before any state changes; [`supports`]
///    answers up front. [`Mode::Oneshot`] works everywhere (poll and select
///    emulate it); a disarmed registration reports nothing, not even
///    hang-up, until re-armed by [`modify`].
/// 5. **Bookkeeping.** Registering a descriptor twice fails with
///    [`Error::AlreadyRegistered`] and leaves the first registration working;
///    modifying or unregistering an unknown descriptor fails with
///    [`Error::NotRegistered`]; a failed call leaves no half state behind.
/// 6. **Closed descriptors.** Unregistering a descriptor that was closed
///    since it was registered succeeds. A closed descriptor still registered
///    with poll or select is reported once as an error event and dropped;
///    the wait as a whole does not fail and does not spin.
/// 7. **Select's limit.** Select refuses descriptors at or above
///    `FD_SETSIZE` (1024) with [`Error::FdOutOfRange`] at registration.
/// 8. **Fairness.** When more descriptors are ready than [`Events`] holds,
///    successive waits serve all of them.
/// 9. **Threads.** Changes made from another thread while a wait blocks take
///    effect promptly; [`notify`] wakes a blocked wait (which then returns,
///    possibly with no events), and notifications sent before the wait
///    coalesce into one wake-up.
/// 10. **Cost.** The epoll wait allocates nothing and makes no system call
///     besides `epoll_wait`. Poll and select do work linear in the number of
///     registered descriptors per wait, as the system calls themselves do.
///
/// Descriptors are plain [`RawFd`]s: the poller never closes them, and
/// registering one does not keep it alive. Unregister before closing. A
/// descriptor closed while registered is not undefined behaviour, but the
/// backends see it differently, because epoll watches open files and poll
/// and select watch numbers:
///
/// - closed, then a wait: poll and select report the token once as error and
///   hang-up and drop the registration; epoll reports nothing (closing the
///   last reference removed it), or keeps reporting while a duplicate of
///   the file (`dup`, `fork`) is open elsewhere;
/// - closed and the number reused by a new file before the next wait: poll
///   and select watch the new file under the old token until it is
///   unregistered (they cannot tell the two apart); epoll does not watch it,
///   and unregistering that number fails with [`Error::NotRegistered`].
///
/// [`supports`]: Poller::supports
/// [`modify`]: Poller::modify
/// [`notify`]: Poller::notify
pub trait Poller: Send + Sync + fmt::Debug {
    /// Starts watching `fd` for `interest`, reporting it with `token`.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRegistered`], [`Error::Unsupported`] (the mode),
    /// [`Error::FdOutOfRange`] (select), [`Error::InvalidFd`],
    /// [`Error::NotPollable`] (epoll and a regular file),
    /// [`Error::ReservedToken`], or [`Error::Io`].
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()>;

    /// Replaces the token, interest and mode of a registered `fd`. This is
    /// also how a oneshot registration is re-armed.
    ///
    /// # Errors
    ///
    /// [`Error::NotRegistered`], [`Error::Unsupported`] (the mode, and any
    /// exclusive mode on epoll, which cannot be modified),
    /// [`Error::ReservedToken`], or [`Error::Io`].
    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()>;

    /// Stops watching `fd`. Succeeds for a descriptor that was closed since
    /// it was registered.
    ///
    /// # Errors
    ///
    /// [`Error::NotRegistered`] or [`Error::Io`].
    fn unregister(&self, fd: RawFd) -> Result<()>;

    /// Waits for readiness, fills `events` (replacing what it held) and
    /// returns how many events it holds.
    ///
    /// Returns `Ok(0)` when the timeout passes, and may return `Ok(0)` after
    /// a [`notify`](Poller::notify). See the contract above for timeouts and
    /// signals.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Wait`](crate::Op::Wait) when the kernel call
    /// fails for any reason other than `EINTR`.
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize>;

    /// Wakes a thread blocked in [`wait`](Poller::wait), or the next wait if
    /// none is blocked now. Callable from any thread; several calls before
    /// the waiter runs coalesce into one wake-up.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Notify`](crate::Op::Notify) if the wake-up
    /// descriptor cannot be written.
    fn notify(&self) -> Result<()>;

    /// What this backend can do beyond level-triggered readiness.
    fn capabilities(&self) -> Capabilities;

    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Whether this backend honours `mode`.
    fn supports(&self, mode: Mode) -> bool {
        self.capabilities().contains(mode.requires())
    }

    /// The backend's name: `"epoll"`, `"poll"` or `"select"`.
    fn name(&self) -> &'static str {
        self.backend().name()
    }
}

/// Implements [`Poller`] for `$ty` by handing every call to `$inner`, an
/// expression of `$this` (each method's `&self`): for the smart pointers
/// here, and for the poll and select backends, which wrap their shared
/// engine.
macro_rules! delegate_poller {
    ([$($generics:tt)*] $ty:ty, $this:ident => $inner:expr) => {
        impl<$($generics)*> $crate::Poller for $ty {
            fn register(
                &self,
                fd: std::os::fd::RawFd,
                token: $crate::Token,
                interest: $crate::Interest,
                mode: $crate::Mode,
            ) -> $crate::Result<()> {
                { let $this = self; $inner }.register(fd, token, interest, mode)
            }

            fn modify(
                &self,
                fd: std::os::fd::RawFd,
                token: $crate::Token,
                interest: $crate::Interest,
                mode: $crate::Mode,
            ) -> $crate::Result<()> {
                { let $this = self; $inner }.modify(fd, token, interest, mode)
            }

            fn unregister(&self, fd: std::os::fd::RawFd) -> $crate::Result<()> {
                { let $this = self; $inner }.unregister(fd)
            }

            #[inline]
            fn wait(
                &self,
                events: &mut $crate::Events,
                timeout: Option<std::time::Duration>,
            ) -> $crate::Result<usize> {
                { let $this = self; $inner }.wait(events, timeout)
            }

            fn notify(&self) -> $crate::Result<()> {
                { let $this = self; $inner }.notify()
            }

            fn capabilities(&self) -> $crate::Capabilities {
                { let $this = self; $inner }.capabilities()
            }

            fn backend(&self) -> $crate::Backend {
                { let $this = self; $inner }.backend()
            }
        }
    };
}
pub(crate) use delegate_poller;

delegate_poller!([P: Poller + ?Sized] &P, this => &**this);
delegate_poller!([P: Poller + ?Sized] Box<P>, this => &**this);
delegate_poller!([P: Poller + ?Sized] std::sync::Arc<P>, this => &**this);

/// The three I/O multiplexing models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// `io_uring(7)` readiness (`IORING_OP_POLL_ADD`), named `uring`: needs
    /// the `io-uring` cargo feature and a kernel and system that allow
    /// io_uring; otherwise creating it fails with
    /// [`Error::Unavailable`], never falling back to another backend.
    IoUring,
}

impl Backend {
    /// Every backend, from the most scalable to the least.
    pub const ALL: [Backend; 3] = [Backend::Epoll, Backend::Poll, Backend::Select];

    /// The environment variable [`Backend::from_env`] reads.
    pub const ENV_VAR: &'static str = "TRIPOLL_BACKEND";

    /// The lower-case name: `"epoll"`, `"poll"` or `"select"`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::Poll => "poll",
            Backend::Select => "select",
            Backend::IoUring => "uring",
        }
    }

    /// The platform's best backend: epoll on Linux and Android, poll
    /// elsewhere.
    pub const fn platform_default() -> Backend {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            Backend::Epoll
        } else {
            Backend::Poll
        }
    }

    /// The backend named by `TRIPOLL_BACKEND` (`epoll`, `poll` or `select`,
    /// any letter case), or [`platform_default`](Backend::platform_default)
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    /// Parses `epoll`, `poll` or `select`, ignoring letter case.
    fn from_str(s: &str) -> Result<Backend> {
        [
            Backend::Epoll,
            Backend::Poll,
            Backend::Select,
            Backend::IoUring,
        ]
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
                    reason: "tripoll was built without the `io-uring` feature".to_owned(),
                })
            }
        })
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

    fn inner(&self) -> &dyn Poller {
        match self {
            AnyPoller::Epoll(p) => p,
            AnyPoller::Poll(p) => p,
            AnyPoller::Select(p) => p,
            #[cfg(feature = "io-uring")]
            AnyPoller::IoUring(p) => p,
        }
    }
}

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
        self.inner().capabilities()
    }

    fn backend(&self) -> Backend {
        self.inner().backend()
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
