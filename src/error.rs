//! The one error type every poller returns.

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use crate::{Backend, Mode, Token};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The call that failed, named in [`Error::Io`].
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
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Register => "register",
            Op::Modify => "modify",
            Op::Unregister => "unregister",
            Op::Wait => "wait",
            Op::Notify => "notify",
        })
    }
}

/// Everything a poller call can fail with: one variant per thing a caller
/// can act on, and the operating system's own error with the call that
/// failed.
///
/// `Error` converts into [`io::Error`] with the matching [`io::ErrorKind`],
/// so `?` works in functions that return `io::Result`.
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
    /// `poll`, `select`.
    #[error("unknown backend {name:?}: expected one of epoll, poll, select, uring")]
    UnknownBackend {
        /// The name that was given.
        name: String,
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
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::AlreadyRegistered { .. } => io::ErrorKind::AlreadyExists,
            Error::NotRegistered { .. } => io::ErrorKind::NotFound,
            Error::FdOutOfRange { .. } | Error::InvalidFd { .. } | Error::ReservedToken(_) => {
                io::ErrorKind::InvalidInput
            }
            Error::NotPollable { .. } => io::ErrorKind::PermissionDenied,
            Error::UnknownBackend { .. } => io::ErrorKind::InvalidInput,
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
