//! The [`Poller`] trait and the contract every backend keeps, and its
//! forwarding through references and smart pointers.

use std::fmt;
use std::os::fd::RawFd;
use std::time::Duration;

#[allow(unused_imports)] // for the documentation's links
use crate::{AnyPoller, Error};
use crate::{Backend, Capabilities, Events, Interest, Mode, Result, Token};

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
///   unregistered (they cannot tell the two apart); epoll does not watch
///   it. Unregistering that number succeeds on every backend.
/// - a regular file or directory: epoll refuses it ([`Error::NotPollable`],
///   the kernel has no readiness for it); poll and select report it always
///   ready, as `poll(2)` and `select(2)` do.
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
    /// [`Error::NotPollable`] (`O_PATH`; on epoll also regular files),
    /// [`Error::ReservedToken`], or [`Error::Io`].
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()>;

    /// Replaces the token, interest and mode of a registered `fd`. This is
    /// also how a oneshot registration is re-armed.
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
