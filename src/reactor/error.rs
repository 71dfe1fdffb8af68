//! What the reactor's calls and its loop can fail with.

use super::Failure;
use crate::Token;
use std::io;

/// Everything a [`Reactor`](super::Reactor) call can fail with.
///
/// A failing callback does not come out of [`run`](super::Reactor::run):
/// the loop hands it to its error handler and goes on (see the [module
/// docs](super#errors-and-panics)). `run` fails only with the poller's own
/// errors ([`Error::Poller`], [`Error::Os`] for the signal descriptor).
///
/// `Error` converts into [`io::Error`], so `?` works in handlers.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use tripoll::reactor::{Error, Reactor};
///
/// let mut reactor = Reactor::new()?;
/// let zero = reactor.set_interval(Duration::ZERO, |_, _| Ok(()));
/// assert!(matches!(zero, Err(Error::ZeroPeriod)));
/// let as_io: io::Error = zero.unwrap_err().into();
/// assert_eq!(as_io.kind(), io::ErrorKind::InvalidInput);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A callback returned an error or panicked. [`run`](super::Reactor::run)
    /// never returns this: it hands failures to the error handler (see
    /// [`set_error_handler`](super::Context::set_error_handler)); it is here
    /// so that a handler can turn a [`Failure`] into an `Error`, or `?` it.
    #[error(transparent)]
    Callback(#[from] Failure),
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
    /// [`modify_owned`](super::Context::modify_owned) named a source that
    /// was registered without an owned object, or with one of another type.
    #[error("{0:?} does not own an object of the type asked for")]
    NotOwned(Token),
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
    #[must_use]
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Callback(f) => f.error().map_or(io::ErrorKind::Other, io::Error::kind),
            Error::Os { source, .. } => source.kind(),
            Error::Poller(e) => e.kind(),
            Error::UnknownToken(_) => io::ErrorKind::NotFound,
            Error::NotOwned(_) => io::ErrorKind::InvalidInput,
            Error::InvalidSignal { .. } | Error::ZeroPeriod => io::ErrorKind::InvalidInput,
            Error::SignalInUse { .. } => io::ErrorKind::AlreadyExists,
            Error::Full => io::ErrorKind::OutOfMemory,
            Error::Closed => io::ErrorKind::BrokenPipe,
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
///
/// ```
/// use std::time::Duration;
/// use tripoll::reactor::Reactor;
///
/// fn tick_every(reactor: &mut Reactor, period: Duration) -> tripoll::reactor::Result<()> {
///     reactor.set_interval(period, |_, _| Ok(()))?;
///     Ok(())
/// }
/// let mut reactor = Reactor::new()?;
/// tick_every(&mut reactor, Duration::from_secs(1))?;
/// assert!(tick_every(&mut reactor, Duration::ZERO).is_err()); // a zero period would spin
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
