//! What a failing callback leaves behind: a [`Failure`] saying where
//! ([`Origin`]) and how ([`Cause`]), the one guarded call every callback
//! goes through, and the default report.

use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::TimerId;
use crate::Token;

/// Where a failing callback was registered.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use tripoll::reactor::{Origin, Reactor};
///
/// let mut reactor = Reactor::new()?;
/// let origins = Rc::new(RefCell::new(Vec::new()));
/// let seen = Rc::clone(&origins);
/// reactor.set_error_handler(move |_, f| seen.borrow_mut().push(f.origin));
/// let timer = reactor.set_timer(Duration::ZERO, |_, _| Err(std::io::Error::other("x")))?;
/// reactor.run_once(None)?;
/// assert_eq!(*origins.borrow(), [Origin::Timer(timer)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// The handler of an I/O source.
    Source {
        /// The source's descriptor.
        fd: RawFd,
        /// The source's token.
        token: Token,
    },
    /// A timer's callback.
    Timer(TimerId),
    /// The handler of a signal (its number).
    Signal(libc::c_int),
    /// A closure sent with [`Handle::post`](super::Handle::post).
    Posted,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Source { fd, token } => write!(f, "handler of fd {fd} (token {})", token.0),
            Origin::Timer(id) => write!(f, "timer {id:?}"),
            Origin::Signal(signal) => write!(f, "handler of signal {signal}"),
            Origin::Posted => f.write_str("posted closure"),
        }
    }
}

/// How a callback failed.
///
/// ```
/// use tripoll::reactor::Cause;
///
/// let returned = Cause::Returned(std::io::Error::other("refused"));
/// let panicked = Cause::Panicked("index out of bounds".to_owned());
/// assert_eq!(returned.to_string(), "failed: refused");
/// assert!(panicked.to_string().contains("index out of bounds"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// It returned this error.
    Returned(io::Error),
    /// It panicked, or a destructor of something it owned panicked when
    /// the reactor dropped it; the panic's message
    /// (`"<non-string panic payload>"` if it had none).
    Panicked(String),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Returned(e) => write!(f, "failed: {e}"),
            Cause::Panicked(message) => write!(f, "panicked: {message}"),
        }
    }
}

/// A callback that returned an error or panicked, as the reactor's error
/// handler gets it (see
/// [`set_error_handler`](super::Context::set_error_handler)). By then the
/// reactor has dropped the callback and let go of what it was registered
/// for: the source is unregistered, the timer cancelled, the signal no
/// longer watched.
///
/// ```
/// use std::io;
/// use tripoll::reactor::{Cause, Failure, Origin};
///
/// let f = Failure::new(Origin::Posted, Cause::Returned(io::ErrorKind::Other.into()));
/// assert_eq!(f.to_string(), "posted closure failed: other error");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{origin} {cause}")]
pub struct Failure {
    /// Where the callback was registered.
    pub origin: Origin,
    /// What went wrong.
    pub cause: Cause,
}

impl Failure {
    /// A failure of the callback registered at `origin`.
    ///
    /// ```
    /// use tripoll::reactor::{Cause, Failure, Origin};
    ///
    /// // A handler that wants to hand a failure on, say to its own log.
    /// let failure = Failure::new(Origin::Posted, Cause::Returned(std::io::Error::other("lost")));
    /// assert_eq!(failure.error().map(|e| e.to_string()), Some("lost".to_owned()));
    /// assert!(failure.to_string().contains("lost"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(origin: Origin, cause: Cause) -> Failure {
        Failure { origin, cause }
    }

    /// The error the callback returned, if it returned one (rather than
    /// panicking).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io::ErrorKind;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let kinds = Rc::new(RefCell::new(Vec::new()));
    /// let seen = Rc::clone(&kinds);
    /// reactor.set_error_handler(move |_, f| seen.borrow_mut().push(f.error().map(|e| e.kind())));
    /// reactor.set_timer(Duration::ZERO, |_, _| Err(ErrorKind::TimedOut.into()))?;
    /// reactor.run_once(None)?;
    /// assert_eq!(*kinds.borrow(), [Some(ErrorKind::TimedOut)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn error(&self) -> Option<&io::Error> {
        match &self.cause {
            Cause::Returned(e) => Some(e),
            Cause::Panicked(_) => None,
        }
    }

    /// The panic message, if the callback (or a destructor) panicked.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use tripoll::reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let messages = Rc::new(RefCell::new(Vec::new()));
    /// let seen = Rc::clone(&messages);
    /// reactor.set_error_handler(move |_, f| seen.borrow_mut().push(f.panic_message().map(str::to_owned)));
    /// // A panicking callback is caught: the loop goes on.
    /// reactor.set_timer(Duration::ZERO, |_, _| panic!("bad state"))?;
    /// reactor.run_once(None)?;
    /// assert_eq!(*messages.borrow(), [Some("bad state".to_owned())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn panic_message(&self) -> Option<&str> {
        match &self.cause {
            Cause::Panicked(m) => Some(m),
            Cause::Returned(_) => None,
        }
    }
}

/// Runs `f`, turning a returned error or a panic into a [`Failure`] of
/// `origin`. The one place the reactor catches what user code does.
pub(crate) fn guarded<R>(origin: Origin, f: impl FnOnce() -> io::Result<R>) -> Result<R, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(Failure::new(origin, Cause::Returned(e))),
        Err(payload) => Err(Failure::new(
            origin,
            Cause::Panicked(panic_message(payload)),
        )),
    }
}

/// Drops `value` (a callback and what it owns) under [`guarded`]: a panic in
/// a destructor becomes a failure of `origin`.
pub(crate) fn guarded_drop<T>(origin: Origin, value: T) -> Result<(), Failure> {
    guarded(origin, move || {
        drop(value);
        Ok(())
    })
}

/// The message of a panic, then the payload dropped. A payload whose own
/// destructor panics is leaked: there is nobody left to blame.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    };
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
    message
}

/// The report used when no error handler is set: one line on stderr,
/// naming the callback and what went wrong.
pub(crate) fn report_to_stderr(failure: &Failure) {
    let line = failure.to_string().replace('\n', " ");
    eprintln!("tripoll reactor: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_names_errors_and_panics() {
        let origin = Origin::Signal(10);
        assert_eq!(guarded(origin, || Ok(3)).unwrap(), 3);
        let e = guarded::<()>(origin, || Err(io::ErrorKind::InvalidData.into())).unwrap_err();
        assert_eq!(e.origin, origin);
        assert_eq!(
            e.error().map(io::Error::kind),
            Some(io::ErrorKind::InvalidData)
        );
        let p = guarded::<()>(origin, || panic!("boom {}", 1)).unwrap_err();
        assert_eq!(p.panic_message(), Some("boom 1"));
        let p = guarded::<()>(origin, || panic!("static")).unwrap_err();
        assert_eq!(p.panic_message(), Some("static"));
        let p = guarded::<()>(origin, || std::panic::panic_any(42)).unwrap_err();
        assert_eq!(p.panic_message(), Some("<non-string panic payload>"));
        assert_eq!(
            p.to_string(),
            "handler of signal 10 panicked: <non-string panic payload>"
        );
    }

    #[test]
    fn guarded_drop_catches_a_panicking_destructor() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("bomb");
            }
        }
        let f = guarded_drop(Origin::Posted, Bomb).unwrap_err();
        assert_eq!(f.panic_message(), Some("bomb"));
        assert!(guarded_drop(Origin::Posted, 5).is_ok());
    }
}
