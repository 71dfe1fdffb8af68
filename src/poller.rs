//! The [`Poller`] trait and the contract every backend keeps, and its
//! forwarding through references and smart pointers.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // for the documentation's links
use crate::{AnyPoller, Error};
use crate::{Backend, Capabilities, Events, Interest, Mode, Result, Token};
#[allow(unused_imports)] // for the documentation's links
use std::os::fd::BorrowedFd;

/// An I/O readiness multiplexer: the one interface over epoll, poll,
/// select and io_uring.
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
///    nanoseconds for poll and io_uring; microseconds for select), so a
///    short wait never becomes a busy
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
///    hang-up, until re-armed by [`modify`]. An exclusive registration
///    cannot be modified, nor a registration made exclusive by [`modify`]:
///    [`Error::ModifyExclusive`].
/// 5. **Bookkeeping.** Registering a descriptor twice fails with
///    [`Error::AlreadyRegistered`] and leaves the first registration working;
///    modifying or unregistering a number that is not registered (open or
///    not) fails with [`Error::NotRegistered`]; a descriptor that cannot be
///    polled at all (`O_PATH`) is refused at registration with
///    [`Error::NotPollable`]; a failed call leaves no half state behind.
///    Every backend checks its arguments with the same rules, in the same
///    order, before it touches any state.
/// 6. **Closed descriptors.** Unregistering a descriptor that was closed
///    since it was registered succeeds (also when its number was reused). A closed descriptor still registered
///    with poll or select is reported once as an error event and dropped;
///    the wait as a whole does not fail and does not spin.
/// 7. **Select's limit.** Select refuses descriptors at or above
///    `FD_SETSIZE` (1024) with [`Error::FdOutOfRange`] at registration.
/// 8. **Fairness.** When more descriptors are ready than [`Events`] holds,
///    successive waits serve all of them.
/// 9. **Threads.** Changes made from another thread while a wait blocks take
///    effect promptly; [`notify`] wakes a blocked wait (which then returns,
///    possibly with no events), and notifications sent before the wait
///    coalesce into one wake-up. Several threads may wait on one poller at
///    once, and each returns by its own deadline (a zero timeout never
///    blocks, whoever else is waiting). A level-triggered readiness may be
///    reported to more than one of them; an edge-triggered or oneshot event
///    goes to exactly one. (Poll and select hand their one kernel set to
///    one waiter at a time: the others queue until it returns or their own
///    deadline passes, and then return with no events.)
/// 10. **Cost.** The epoll wait allocates nothing and makes no system call
///     besides `epoll_wait`. Poll and select do work linear in the number of
///     registered descriptors per wait, as the system calls themselves do.
///
/// Descriptors are plain [`RawFd`]s: the poller never closes them, and
/// registering one does not keep it alive. Unregister before closing.
/// [`register_source`](Poller::register_source),
/// [`modify_source`](Poller::modify_source) and
/// [`unregister_source`](Poller::unregister_source) take an I/O object
/// instead (anything [`AsFd`]: a socket, a pipe, a [`BorrowedFd`]), which
/// proves the descriptor is open *during the call*; the same rules apply
/// after it. A
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
///   unregistered (they cannot tell the two apart); epoll does not watch
///   it. Unregistering that number succeeds on every backend.
/// - a regular file or directory: epoll refuses it ([`Error::NotPollable`],
///   the kernel has no readiness for it); poll and select report it always
///   ready, as `poll(2)` and `select(2)` do.
///
/// [`supports`]: Poller::supports
/// [`modify`]: Poller::modify
/// [`notify`]: Poller::notify
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use tripoll::{AnyPoller, Backend, Error, Events, Interest, Mode, Poller, Token};
///
/// // Code written once against the contract runs on every backend.
/// fn echo_once(poller: &impl Poller) -> Result<(), Box<dyn std::error::Error>> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.set_nonblocking(true)?;
///     poller.register_source(&a, Token(0), Interest::READABLE, Mode::Level)?;
///     b.write_all(b"hi")?;
///     let mut events = Events::with_capacity(4);
///     poller.wait(&mut events, Some(Duration::from_secs(5)))?;
///     let mut buf = [0; 2];
///     a.read_exact(&mut buf)?;
///     poller.unregister_source(&a)?;
///     assert_eq!(&buf, b"hi");
///     Ok(())
/// }
/// for backend in Backend::ALL {
///     match AnyPoller::new(backend) {
///         Ok(poller) => echo_once(&poller)?,
///         Err(Error::Unavailable { .. }) => {} // io_uring without its feature
///         Err(e) => return Err(e.into()),
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Poller: Send + Sync + fmt::Debug {
    /// Starts watching `fd` for `interest`, reporting it with `token`.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::{AnyPoller, Error, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level)?;
    /// // A second registration of the same descriptor is refused.
    /// let again = poller.register(a.as_raw_fd(), Token(2), Interest::READABLE, Mode::Level);
    /// assert!(matches!(again, Err(Error::AlreadyRegistered { .. })));
    /// poller.unregister(a.as_raw_fd())?; // before `a` is closed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRegistered`], [`Error::Unsupported`] (the mode),
    /// [`Error::FdOutOfRange`] (select), [`Error::InvalidFd`],
    /// [`Error::NotPollable`] (`O_PATH`; on epoll also regular files),
    /// [`Error::ReservedToken`], or [`Error::Io`].
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()>;

    /// Replaces the token, interest and mode of a registered `fd`. This is
    /// also how a oneshot registration is re-armed.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let mut events = Events::with_capacity(4);
    /// let (a, _b) = UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(1), Interest::WRITABLE, Mode::Oneshot)?;
    /// assert_eq!(poller.wait(&mut events, Some(Duration::from_secs(1)))?, 1);
    /// assert_eq!(poller.wait(&mut events, Some(Duration::ZERO))?, 0); // disarmed
    ///
    /// // Re-arm it, under a new token.
    /// poller.modify(a.as_raw_fd(), Token(2), Interest::WRITABLE, Mode::Oneshot)?;
    /// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(2)));
    /// # poller.unregister(a.as_raw_fd())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotRegistered`], [`Error::Unsupported`] (the mode),
    /// [`Error::ModifyExclusive`] (to or from an exclusive mode),
    /// [`Error::ReservedToken`], or [`Error::Io`].
    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()>;

    /// Stops watching `fd`. Succeeds for a descriptor that was closed since
    /// it was registered.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::{AnyPoller, Error, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let fd = a.as_raw_fd();
    /// poller.register(fd, Token(1), Interest::READABLE, Mode::Level)?;
    /// poller.unregister(fd)?;
    /// assert!(matches!(poller.unregister(fd), Err(Error::NotRegistered { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let mut events = Events::with_capacity(16);
    /// let (a, mut b) = UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(3), Interest::READABLE, Mode::Level)?;
    ///
    /// // Nothing to read yet: the timeout passes.
    /// assert_eq!(poller.wait(&mut events, Some(Duration::from_millis(1)))?, 0);
    ///
    /// b.write_all(b"x")?;
    /// let n = poller.wait(&mut events, None)?; // blocks until something happens
    /// assert_eq!(n, 1);
    /// for ev in &events {
    ///     assert_eq!(ev.token(), Token(3));
    ///     assert!(ev.is_readable());
    /// }
    /// # poller.unregister(a.as_raw_fd())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// ```
    /// use std::sync::Arc;
    /// use std::thread;
    /// use tripoll::{AnyPoller, Events, Poller};
    ///
    /// let poller = Arc::new(AnyPoller::from_env()?);
    /// let waker = Arc::clone(&poller);
    /// let t = thread::spawn(move || waker.notify());
    /// let mut events = Events::with_capacity(4);
    /// // Returns once notified (with no events: nothing is registered).
    /// assert_eq!(poller.wait(&mut events, None)?, 0);
    /// t.join().expect("notifier thread")?;
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Notify`](crate::Op::Notify) if the wake-up
    /// descriptor cannot be written.
    fn notify(&self) -> Result<()>;

    /// What this backend can do beyond level-triggered readiness.
    ///
    /// ```
    /// use tripoll::{Capabilities, Epoll, Poller, Select};
    ///
    /// assert!(Epoll::new()?.capabilities().contains(Capabilities::EDGE));
    /// let select = Select::new()?.capabilities();
    /// assert!(select.contains(Capabilities::ONESHOT));
    /// assert!(!select.contains(Capabilities::UNBOUNDED_FDS));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    fn capabilities(&self) -> Capabilities;

    /// Which backend this is.
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, Poller};
    ///
    /// let poller = AnyPoller::new(Backend::Poll)?;
    /// assert_eq!(poller.backend(), Backend::Poll);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    fn backend(&self) -> Backend;

    /// Whether this backend honours `mode`.
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, Mode, Poller};
    ///
    /// let poller = AnyPoller::new(Backend::Select)?;
    /// assert!(poller.supports(Mode::Oneshot)); // emulated
    /// assert!(!poller.supports(Mode::Edge));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    fn supports(&self, mode: Mode) -> bool {
        self.capabilities().contains(mode.requires())
    }

    /// The backend's name: `"epoll"`, `"poll"`, `"select"` or `"uring"`.
    ///
    /// ```
    /// use tripoll::{Epoll, Poller};
    ///
    /// assert_eq!(Epoll::new()?.name(), "epoll");
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    fn name(&self) -> &'static str {
        self.backend().name()
    }

    /// Waits like [`wait`](Poller::wait), until an absolute `deadline`
    /// rather than for a duration: `None` blocks until an event or a
    /// notification, a deadline already past never blocks. Handy in loops
    /// that wait several times toward one deadline.
    ///
    /// The deadline is turned into a timeout once, at the call, and handed
    /// to [`wait`](Poller::wait), which keeps it across `EINTR` (contract
    /// point 2).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tripoll::{AnyPoller, Events, Poller};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let mut events = Events::with_capacity(4);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// while poller.wait_deadline(&mut events, Some(deadline))? == 0 && Instant::now() < deadline {
    ///     // woken early (a notify): wait again for what is left
    /// }
    /// assert!(Instant::now() >= deadline);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Poller::wait).
    fn wait_deadline(&self, events: &mut Events, deadline: Option<Instant>) -> Result<usize> {
        let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        self.wait(events, timeout)
    }

    /// [`register`](Poller::register) for an I/O object: a socket, a pipe,
    /// an [`OwnedFd`](std::os::fd::OwnedFd) or a [`BorrowedFd`].
    ///
    /// The borrow proves the descriptor is open while the call runs; the
    /// poller does not keep it. The rules for closed descriptors on the
    /// trait apply as with raw ones: unregister (with
    /// [`unregister_source`](Poller::unregister_source)) before the object
    /// is dropped.
    ///
    /// Only on sized pollers, so that the trait stays object safe;
    /// `&dyn Poller`, `Box<dyn Poller>` and `Arc<dyn Poller>` are sized
    /// pollers and have it.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller: Box<dyn Poller> = Box::new(AnyPoller::from_env()?);
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// poller.register_source(&listener, Token(0), Interest::READABLE, Mode::Level)?;
    ///
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let mut events = Events::with_capacity(4);
    /// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// assert!(events.iter().any(|e| e.token() == Token(0) && e.is_readable()));
    /// poller.unregister_source(&listener)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`register`](Poller::register).
    fn register_source<S>(
        &self,
        source: &S,
        token: Token,
        interest: Interest,
        mode: Mode,
    ) -> Result<()>
    where
        Self: Sized,
        S: AsFd + ?Sized,
    {
        self.register(source.as_fd().as_raw_fd(), token, interest, mode)
    }

    /// [`modify`](Poller::modify) for an I/O object; see
    /// [`register_source`](Poller::register_source).
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::{Epoll, Interest, Mode, Poller, Token};
    ///
    /// let poller = Epoll::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// poller.modify_source(&a, Token(1), Interest::READABLE | Interest::WRITABLE, Mode::Edge)?;
    /// poller.unregister_source(&a)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`modify`](Poller::modify).
    fn modify_source<S>(
        &self,
        source: &S,
        token: Token,
        interest: Interest,
        mode: Mode,
    ) -> Result<()>
    where
        Self: Sized,
        S: AsFd + ?Sized,
    {
        self.modify(source.as_fd().as_raw_fd(), token, interest, mode)
    }

    /// [`unregister`](Poller::unregister) for an I/O object; see
    /// [`register_source`](Poller::register_source).
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::{AnyPoller, Error, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let fd = a.as_fd(); // a `BorrowedFd` is a source too
    /// poller.register_source(&fd, Token(1), Interest::READABLE, Mode::Level)?;
    /// poller.unregister_source(&fd)?;
    /// assert!(matches!(poller.unregister_source(&a), Err(Error::NotRegistered { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`unregister`](Poller::unregister).
    fn unregister_source<S>(&self, source: &S) -> Result<()>
    where
        Self: Sized,
        S: AsFd + ?Sized,
    {
        self.unregister(source.as_fd().as_raw_fd())
    }
}

// Forwarding through references and smart pointers: a `&P`, `Box<P>` or
// `Arc<P>` (`P` possibly `dyn Poller`) is a poller too.

impl<P: Poller + ?Sized> Poller for &P {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        (**self).register(fd, token, interest, mode)
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        (**self).modify(fd, token, interest, mode)
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        (**self).unregister(fd)
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        (**self).wait(events, timeout)
    }

    fn notify(&self) -> Result<()> {
        (**self).notify()
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }

    fn backend(&self) -> Backend {
        (**self).backend()
    }
}

impl<P: Poller + ?Sized> Poller for Box<P> {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        (**self).register(fd, token, interest, mode)
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        (**self).modify(fd, token, interest, mode)
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        (**self).unregister(fd)
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        (**self).wait(events, timeout)
    }

    fn notify(&self) -> Result<()> {
        (**self).notify()
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }

    fn backend(&self) -> Backend {
        (**self).backend()
    }
}

impl<P: Poller + ?Sized> Poller for Arc<P> {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        (**self).register(fd, token, interest, mode)
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        (**self).modify(fd, token, interest, mode)
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        (**self).unregister(fd)
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        (**self).wait(events, timeout)
    }

    fn notify(&self) -> Result<()> {
        (**self).notify()
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }

    fn backend(&self) -> Backend {
        (**self).backend()
    }
}
