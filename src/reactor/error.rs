//! What the reactor's calls and its loop can fail with.

use std::io;
use std::os::fd::RawFd;

use super::TimerId;
use crate::Token;

/// Everything a [`Reactor`](super::Reactor) call can fail with.
///
/// The variants that name a callback ([`Handler`](Error::Handler),
/// [`Panicked`](Error::Panicked), [`Timer`](Error::Timer), ...) come out of
/// [`run`](super::Reactor::run) and [`run_once`](super::Reactor::run_once)
/// when a callback returned an error or panicked. By then the reactor has
/// already dropped that callback and unregistered its source (cancelled its
/// timer, stopped watching its signal), and it stays usable: call `run`
/// again to go on serving everything else. Events that were ready in the
/// same turn are not lost; the next turn delivers them first.
///
/// `Error` converts into [`io::Error`], so `?` works in handlers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O handler returned an error. The source was unregistered.
    #[error("handler of fd {fd} ({token:?}) failed: {source}")]
    Handler {
        /// The source's descriptor.
        fd: RawFd,
        /// The source's token.
        token: Token,
        /// What the handler returned.
        #[source]
        source: io::Error,
    },
    /// An I/O handler panicked. The source was unregistered.
    #[error("handler of fd {fd} ({token:?}) panicked: {message}")]
    Panicked {
        /// The source's descriptor.
        fd: RawFd,
        /// The source's token.
        token: Token,
        /// The panic message (`"<non-string panic payload>"` if it had none).
        message: String,
    },
    /// A timer callback returned an error. The timer was cancelled.
    #[error("timer {timer:?} failed: {source}")]
    Timer {
        /// The timer.
        timer: TimerId,
        /// What the callback returned.
        #[source]
        source: io::Error,
    },
    /// A timer callback panicked. The timer was cancelled.
    #[error("timer {timer:?} panicked: {message}")]
    TimerPanicked {
        /// The timer.
        timer: TimerId,
        /// The panic message.
        message: String,
    },
    /// A signal handler returned an error. The reactor stopped watching
    /// the signal and restored its mask.
    #[error("handler of signal {signal} failed: {source}")]
    Signal {
        /// The signal number.
        signal: libc::c_int,
        /// What the handler returned.
        #[source]
        source: io::Error,
    },
    /// A signal handler panicked. The reactor stopped watching the signal
    /// and restored its mask.
    #[error("handler of signal {signal} panicked: {message}")]
    SignalPanicked {
        /// The signal number.
        signal: libc::c_int,
        /// The panic message.
        message: String,
    },
    /// A closure sent with [`Handle::post`](super::Handle::post) returned
    /// an error.
    #[error("posted closure failed: {source}")]
    Posted {
        /// What the closure returned.
        #[source]
        source: io::Error,
    },
    /// A closure sent with [`Handle::post`](super::Handle::post) panicked.
    #[error("posted closure panicked: {message}")]
    PostPanicked {
        /// The panic message.
        message: String,
    },
    /// The poller refused a call (registering a descriptor twice, a mode
    /// the backend lacks, a wait that failed, ...).
    #[error(transparent)]
    Poller(#[from] crate::Error),
    /// No source is registered under this token (it was unregistered, or
    /// never came from this reactor).
    #[error("no source is registered with {0:?}")]
    UnknownToken(Token),
    /// The signal cannot be handled: out of range, `SIGKILL`/`SIGSTOP`, a
    /// signal the C library keeps for itself, or one the CPU raises for a
    /// fault (`SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`, `SIGTRAP`, `SIGSYS`).
    #[error("signal {signal} cannot be handled by the reactor")]
    InvalidSignal {
        /// The signal number.
        signal: libc::c_int,
    },
    /// The signal already has a handler in this reactor.
    #[error("signal {signal} already has a handler")]
    SignalInUse {
        /// The signal number.
        signal: libc::c_int,
    },
    /// A repeating timer was given a zero period, which would spin.
    #[error("a repeating timer needs a non-zero period")]
    ZeroPeriod,
    /// Every token (or timer id) is taken.
    #[error("the reactor has no room for another source or timer")]
    Full,
    /// The reactor this [`Handle`](super::Handle) belongs to was dropped.
    #[error("the reactor is gone")]
    Closed,
    /// A system call the reactor makes for itself (`signalfd`,
    /// `pthread_sigmask`, reading the signal descriptor) failed.
    #[error("{op} failed: {source}")]
    Os {
        /// The call.
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The [`io::ErrorKind`] this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Handler { source, .. }
            | Error::Timer { source, .. }
            | Error::Signal { source, .. }
            | Error::Posted { source }
            | Error::Os { source, .. } => source.kind(),
            Error::Poller(e) => e.kind(),
            Error::UnknownToken(_) => io::ErrorKind::NotFound,
            Error::InvalidSignal { .. } | Error::ZeroPeriod => io::ErrorKind::InvalidInput,
            Error::SignalInUse { .. } => io::ErrorKind::AlreadyExists,
            Error::Full => io::ErrorKind::OutOfMemory,
            Error::Closed => io::ErrorKind::BrokenPipe,
            Error::Panicked { .. }
            | Error::TimerPanicked { .. }
            | Error::SignalPanicked { .. }
            | Error::PostPanicked { .. } => io::ErrorKind::Other,
        }
    }

    /// The descriptor and token of the I/O source whose handler failed or
    /// panicked, if that is what this error is about.
    pub fn failed_source(&self) -> Option<(RawFd, Token)> {
        match self {
            Error::Handler { fd, token, .. } | Error::Panicked { fd, token, .. } => {
                Some((*fd, *token))
            }
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    /// Keeps an operating-system error as is; wraps every other variant with
    /// its matching kind, so it can be downcast back with
    /// [`io::Error::get_ref`].
    fn from(e: Error) -> io::Error {
        match e {
            Error::Os { source, .. } => source,
            Error::Poller(p) => p.into(),
            other => io::Error::new(other.kind(), other),
        }
    }
}

/// A `Result` whose error is the reactor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
