//! The one error type every poller returns.

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use crate::{Backend, Mode, Token};

/// A `Result` whose error is [`Error`].
///
/// ```
/// use std::os::fd::{AsRawFd, RawFd};
/// use std::os::unix::net::UnixStream;
/// use tripoll::{AnyPoller, Interest, Mode, Poller, Token};
///
/// fn watch(poller: &impl Poller, fd: RawFd) -> tripoll::Result<()> {
///     poller.register(fd, Token(1), Interest::READABLE, Mode::Level)
/// }
/// let poller = AnyPoller::from_env()?;
/// let (a, _b) = UnixStream::pair()?;
/// watch(&poller, a.as_raw_fd())?;
/// assert!(watch(&poller, a.as_raw_fd()).is_err()); // already registered
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The call that failed, named in [`Error::Io`].
///
/// ```
/// use std::os::fd::AsRawFd;
/// use tripoll::{Epoll, Error, Interest, Mode, Op, Poller, Token};
///
/// let poller = Epoll::new()?;
/// // The poller's own descriptor cannot be watched by itself: the kernel
/// // refuses, and the error names the call.
/// match poller.register(poller.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level) {
///     Err(Error::Io { op, .. }) => {
///         assert_eq!(op, Op::Register);
///         assert_eq!(format!("[{op:^10}]"), "[ register ]");
///     }
///     other => panic!("expected an I/O error, got {other:?}"),
/// }
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating the poller (`epoll_create1`, the wake-up `eventfd`).
    Create,
    /// [`Poller::register`](crate::Poller::register).
    Register,
    /// [`Poller::modify`](crate::Poller::modify).
    Modify,
    /// [`Poller::unregister`](crate::Poller::unregister).
    Unregister,
    /// [`Poller::wait`](crate::Poller::wait).
    Wait,
    /// [`Poller::notify`](crate::Poller::notify).
    Notify,
    /// A [`Signals`](crate::source::Signals) call: `signalfd`, the thread's
    /// mask, reading a signal.
    Signal,
    /// A [`Timer`](crate::source::Timer) call: `timerfd_create`, arming it,
    /// reading its count, a clock.
    Timer,
    /// A [`ChildExit`](crate::source::ChildExit) call: `pidfd_open`,
    /// `waitid`.
    Child,
    /// A [`Wake`](crate::source::Wake) call: `eventfd`, bumping or reading
    /// its counter.
    Wake,
    /// [`Epoll::set_busy_poll`](crate::Epoll::set_busy_poll) or
    /// [`Epoll::busy_poll`](crate::Epoll::busy_poll) (`EPIOCSPARAMS`,
    /// `EPIOCGPARAMS`).
    BusyPoll,
}

impl Op {
    /// The lower-case name [`Display`](fmt::Display) writes.
    const fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Register => "register",
            Op::Modify => "modify",
            Op::Unregister => "unregister",
            Op::Wait => "wait",
            Op::Notify => "notify",
            Op::Signal => "signal",
            Op::Timer => "timer",
            Op::Child => "child",
            Op::Wake => "wake",
            Op::BusyPoll => "busy poll",
        }
    }
}

impl fmt::Display for Op {
    /// The lower-case name (`"create"`, `"register"`, `"modify"`,
    /// `"unregister"`, `"wait"`, `"notify"`, `"signal"`, `"timer"`,
    /// `"child"`, `"wake"` or `"busy poll"`), honouring width and alignment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Everything a poller call can fail with: one variant per thing a caller
/// can act on, and the operating system's own error with the call that
/// failed.
///
/// `Error` converts into [`io::Error`] with the matching [`io::ErrorKind`],
/// so `?` works in functions that return `io::Result`.
///
/// ```
/// use std::io;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use tripoll::{AnyPoller, Error, Interest, Mode, Poller, Token};
///
/// fn watch(poller: &AnyPoller, s: &UnixStream) -> io::Result<()> {
///     poller.register(s.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level)?;
///     Ok(())
/// }
///
/// let poller = AnyPoller::from_env()?;
/// let (a, _b) = UnixStream::pair()?;
/// watch(&poller, &a)?;
/// let err = watch(&poller, &a).unwrap_err(); // registered twice
/// assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
/// // The typed error is still inside.
/// let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
/// assert!(matches!(inner, Some(Error::AlreadyRegistered { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The descriptor is already registered with this poller; the existing
    /// registration is untouched. Use [`modify`](crate::Poller::modify) to
    /// change it.
    #[error("fd {fd} is already registered with this poller")]
    AlreadyRegistered {
        /// The descriptor.
        fd: RawFd,
    },
    /// The descriptor is not registered with this poller.
    #[error("fd {fd} is not registered with this poller")]
    NotRegistered {
        /// The descriptor.
        fd: RawFd,
    },
    /// The select backend cannot watch descriptors numbered `FD_SETSIZE` or
    /// above: `fd_set` is a fixed-size bitmap.
    #[error("fd {fd} is out of range for select, which only takes descriptors below {limit}")]
    FdOutOfRange {
        /// The descriptor.
        fd: RawFd,
        /// The first number that does not fit (`FD_SETSIZE`).
        limit: usize,
    },
    /// The backend cannot honour this trigger mode; nothing was changed.
    /// [`Poller::supports`](crate::Poller::supports) says so in advance.
    #[error("the {backend} backend does not support {mode:?} registrations")]
    Unsupported {
        /// The backend that refused.
        backend: Backend,
        /// The mode it refused.
        mode: Mode,
    },
    /// An exclusive registration cannot be changed, nor a registration made
    /// exclusive, by [`modify`](crate::Poller::modify): the kernel sets
    /// `EPOLLEXCLUSIVE` only when a registration is made. Unregister and
    /// register again instead; nothing was changed.
    #[error("fd {fd}: exclusive registrations cannot be modified; unregister and register again")]
    ModifyExclusive {
        /// The descriptor.
        fd: RawFd,
    },
    /// The descriptor is negative or not open.
    #[error("fd {fd} is not an open file descriptor")]
    InvalidFd {
        /// The descriptor.
        fd: RawFd,
    },
    /// The descriptor cannot be polled for readiness: an `O_PATH`
    /// descriptor (every backend refuses it), or on epoll a regular file or
    /// a directory, which the kernel refuses with `EPERM` (poll and select
    /// report them always ready).
    #[error(
        "fd {fd} does not support readiness notification (O_PATH, a regular file or a directory?)"
    )]
    NotPollable {
        /// The descriptor.
        fd: RawFd,
    },
    /// [`Token::RESERVED`] was passed; the poller keeps it for itself.
    #[error("token {0:?} is reserved for the poller's own wake-up descriptor")]
    ReservedToken(Token),
    /// `TRIPOLL_BACKEND` or a parsed backend name is not one of `epoll`,
    /// `poll`, `select`, `uring`.
    #[error("unknown backend {name:?}: expected one of epoll, poll, select, uring")]
    UnknownBackend {
        /// The name that was given.
        name: String,
    },
    /// A [`Mode`] name (parsed with [`FromStr`](std::str::FromStr)) is not
    /// one of the names [`Display`](fmt::Display) writes.
    #[error("unknown {what} {name:?}: expected one of {expected}")]
    UnknownName {
        /// What was being parsed: `"mode"`.
        what: &'static str,
        /// The name that was given.
        name: String,
        /// The names that would have been accepted, comma-separated.
        expected: &'static str,
    },
    /// The backend cannot run here: built without its cargo feature, or
    /// the kernel or the system's policy refuses it (an old kernel,
    /// `io_uring_disabled`, a seccomp filter). Nothing falls back to another
    /// backend silently; choose one that is available.
    #[error("the {backend} backend is unavailable: {reason}")]
    Unavailable {
        /// The backend that cannot be created.
        backend: Backend,
        /// Why, in words.
        reason: String,
    },
    /// The signal cannot be taken as an event: out of range, `SIGKILL` or
    /// `SIGSTOP` (which cannot be caught), a signal the C library keeps for
    /// its threads, or one the CPU raises for a fault (`SIGSEGV`, `SIGBUS`,
    /// `SIGFPE`, `SIGILL`, `SIGTRAP`, `SIGSYS`), which blocked would end the
    /// process instead of being queued.
    #[error("signal {signal} cannot be received as an event")]
    InvalidSignal {
        /// The signal number.
        signal: libc::c_int,
    },
    /// The process is not a child of this process that can be waited for:
    /// it does not exist, was already reaped, or belongs to someone else.
    #[error("pid {pid} is not a child of this process that can be waited for")]
    NotAChild {
        /// The process id.
        pid: libc::pid_t,
    },
    /// A timer was given a period of zero (which would spin) or a time the
    /// kernel's `timespec` cannot hold.
    #[error("invalid timer: {reason}")]
    InvalidTimer {
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// A kernel feature this call needs is missing here: an older kernel
    /// (`pidfd_open` needs Linux 5.3, busy-poll parameters Linux 6.9), a
    /// seccomp filter that refuses the call, or a backend that has no such
    /// thing (busy polling is epoll's). Nothing was changed.
    #[error("{feature} is unavailable: {reason}")]
    FeatureUnavailable {
        /// The feature: `"pidfd"`, `"busy poll"`.
        feature: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// The operating system refused a call.
    #[error("{op} failed: {source}")]
    Io {
        /// Which call.
        op: Op,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: Op) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }

    /// The [`io::ErrorKind`] this error converts to.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::{AnyPoller, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// // Twice: refused, as `EEXIST` would be.
    /// let err = poller
    ///     .register_source(&a, Token(2), Interest::READABLE, Mode::Level)
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    /// // The same kind once converted for `?` in I/O code.
    /// assert_eq!(std::io::Error::from(err).kind(), ErrorKind::AlreadyExists);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::AlreadyRegistered { .. } => io::ErrorKind::AlreadyExists,
            Error::NotRegistered { .. } => io::ErrorKind::NotFound,
            Error::FdOutOfRange { .. } | Error::InvalidFd { .. } | Error::ReservedToken(_) => {
                io::ErrorKind::InvalidInput
            }
            Error::NotPollable { .. } => io::ErrorKind::PermissionDenied,
            Error::UnknownBackend { .. } | Error::UnknownName { .. } => io::ErrorKind::InvalidInput,
            Error::InvalidSignal { .. } | Error::InvalidTimer { .. } => io::ErrorKind::InvalidInput,
            Error::NotAChild { .. } => io::ErrorKind::NotFound,
            Error::FeatureUnavailable { .. } => io::ErrorKind::Unsupported,
            Error::Unsupported { .. }
            | Error::ModifyExclusive { .. }
            | Error::Unavailable { .. } => io::ErrorKind::Unsupported,
            Error::Io { source, .. } => source.kind(),
        }
    }
}

impl From<Error> for io::Error {
    /// Keeps the operating system's error as is (its `raw_os_error` too);
    /// wraps every other variant with its matching kind, so it can be
    /// downcast back with [`io::Error::get_ref`].
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io { source, .. } => source,
            other => io::Error::new(other.kind(), other),
        }
    }
}
