//! `io_uring(7)` as a readiness multiplexer: every registration is an
//! `IORING_OP_POLL_ADD` request in flight, and a wait is one
//! `io_uring_enter` that submits the queued requests and sleeps for their
//! completions. The kernel keeps no interest list here; the backend keeps
//! a table (descriptor → registration) to turn completions back into
//! tokens and to re-arm what must be re-armed.
//!
//! - `ring.rs`: the ring, and the only code that touches its queues;
//! - `reg.rs`: one registration's state machine, as enums;
//! - `check.rs`: the line of completions to confirm with `poll(2)`;
//! - `book.rs`: the registrations, and what a wait does with each
//!   completion, check and report;
//! - `wait.rs`: the order of a wait's steps;
//! - here: the [`Poller`] calls.

mod book;
mod check;
mod reg;
mod ring;
mod wait;

use std::fmt;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use book::Book;
use reg::{Reg, Request};
use ring::Ring;

use crate::rules::{self, Notifier};
use crate::{Backend, Capabilities, Error, Events, Interest, Mode, Op, Poller, Result, Token};

/// The io_uring backend: readiness through `IORING_OP_POLL_ADD` requests
/// (Linux 5.18 or later; see [`Uring::new`] for what it checks).
///
/// # Modes
///
/// - [`Mode::Level`]: a oneshot poll request; after each reported event
///   the next wait asks the descriptor again, in the `poll(2)` it makes
///   anyway (see below) or with a new request, which the kernel completes
///   at once while the descriptor is still ready: every wait sees it, as
///   with epoll.
/// - [`Mode::Oneshot`] and [`Mode::EdgeOneshot`]: a oneshot poll request,
///   not queued again until [`modify`](Poller::modify). (A oneshot request
///   reports the readiness present when it is armed, so the two are the
///   same thing here.)
/// - [`Mode::Edge`]: one multishot request (`IORING_POLL_ADD_MULTI`), which
///   completes once per wake-up of the descriptor: once per arrival.
/// - [`Mode::Exclusive`] and [`Mode::EdgeExclusive`]: refused with
///   [`Error::Unsupported`]. io_uring's exclusive poll wakes one *request*,
///   and this backend would have to re-arm it after every event, which
///   loses the "one of several pollers" guarantee in between.
///
/// A request that completes with readiness nobody asked for (the kernel
/// always adds `POLLRDHUP`, `POLLERR` and `POLLHUP`) is replaced by a
/// multishot request, which reports only the next real change, so such a
/// descriptor never makes a wait spin.
///
/// # Costs
///
/// Register, modify and a oneshot re-arm only write a submission entry: no
/// system call, unless a wait is blocked in another thread, in which case
/// the change is submitted at once so that it takes effect promptly.
/// A wait that finds completions already waiting in the ring checks them
/// with one zero-timeout `poll(2)` (see below) and returns if that finds
/// something; otherwise it is one `io_uring_enter` (submit and sleep, with
/// the timeout in nanoseconds through `IORING_ENTER_EXT_ARG`; interrupted
/// by a signal, it goes on with the time left, and once the time is up it
/// submits once more and returns, interrupted or not). Unregister is one
/// `io_uring_enter` that cancels the poll request
/// (`IORING_OP_ASYNC_CANCEL`) and returns once the kernel has processed the
/// cancellation: a completion of the removed registration is never
/// reported, and the request no longer holds the file (when unregister runs
/// on the thread that waits; from another thread, the kernel finishes on
/// the waiting thread, at once if it is blocked in a wait). Unregister also
/// empties the ring when no wait is running, so a program that never waits
/// does not pile up completions.
///
/// # What a wait reports
///
/// A completion tells the readiness when the request completed (in fact
/// the wake-up's key, not a fresh poll). One that was already waiting in
/// the ring when a wait begins may be out of date (the caller may have read,
/// written or closed since), so it is not reported as it is: the wait asks
/// the descriptors of all such completions again, in one zero-timeout
/// `poll(2)`, together with the level registrations the last wait reported,
/// and reports what that finds (epoll polls each ready file when the wait
/// collects it, for the same reason). A multishot request stays armed
/// through this; a registration found not ready gets a request that waits
/// for its next change. A completion that arrives during the wait and
/// reports priority, or one kind of readiness while the registration asks
/// for another too, is checked with `poll(2)` before it is reported (a
/// socket's "data arrived" key always says `POLLPRI`). So a wait reports
/// what is ready when it returns, as epoll's does; the model test holds it
/// to that.
///
/// # A small ring
///
/// Any number of descriptors can be registered, whatever the ring's size
/// ([`Uring::with_entries`]): completions that do not fit are held by the
/// kernel (`IORING_FEAT_NODROP`), and every wait moves all of them, from
/// the ring and from the kernel, into a line of registrations to check,
/// oldest first. When more are ready than [`Events`] holds, the next waits
/// serve the rest of the line before those they reported (a level
/// registration joins the back of the line after each report): every ready
/// registration is reported within ⌈ready / capacity⌉ + 1 waits. The kernel
/// ends a multishot request whose completion does not fit; its registration
/// gets a new one, whose arming reports the readiness, so an edge change is
/// still reported once. Only if the kernel cannot even allocate memory to
/// hold completions does it drop them; the ring is then unusable, and every
/// wait fails with `EBADR` instead of missing events silently.
///
/// # Closed descriptors
///
/// A poll request holds a reference to its *file*: closing a registered
/// descriptor neither cancels the poll nor closes the file (a socket's peer
/// sees no close) until [`unregister`](Poller::unregister). Unregister
/// before closing, as the [`Poller`] contract asks. If a registered number
/// is closed anyway, the next time its request has to be queued (a level
/// registration after an event, a re-armed oneshot) the kernel finds the
/// number closed: the token is reported once with error and hang-up and the
/// registration is dropped, as with poll. If the number was reused by then,
/// the new file is watched under the old token, as with poll and select.
///
/// # Threads
///
/// Any thread may register, modify, unregister or notify while another
/// waits; [`notify`](Poller::notify) goes through a multishot poll on an
/// eventfd and coalesces like the other backends'.
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use tripoll::{Error, Events, Interest, Mode, Poller, Token, Uring};
///
/// // Where io_uring cannot be had (an old kernel, io_uring_disabled, a
/// // seccomp filter), creating one says why; nothing falls back to epoll.
/// let poller = match Uring::new() {
///     Ok(p) => p,
///     Err(e @ Error::Unavailable { .. }) => {
///         eprintln!("no io_uring here: {e}");
///         return Ok(());
///     }
///     Err(e) => return Err(e.into()),
/// };
/// let (a, mut b) = UnixStream::pair()?;
/// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Edge)?;
/// b.write_all(b"x")?;
/// let mut events = Events::with_capacity(4);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// assert_eq!(events.iter().next().map(|ev| ev.token()), Some(Token(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Uring {
    state: Mutex<State>,
    notifier: Notifier,
    /// The ring's descriptor, for the `io_uring_enter` a wait sleeps in
    /// without the lock (the ring, in `state`, owns it).
    ring_fd: RawFd,
    /// Submission entries this ring was built with.
    entries: u32,
}

/// The ring and the bookkeeping, under one lock.
struct State {
    ring: Ring,
    book: Book,
}

/// Edge (multishot), oneshot, read-closed, any descriptor number; not
/// exclusive (see [`Uring`]).
const CAPABILITIES: Capabilities = Capabilities::EDGE
    .union(Capabilities::ONESHOT)
    .union(Capabilities::READ_CLOSED)
    .union(Capabilities::WRITE_CLOSED)
    .union(Capabilities::UNBOUNDED_FDS);

/// The default number of submission entries. More registrations than
/// that are fine: a full queue is submitted to make room.
const DEFAULT_ENTRIES: u32 = 256;

/// The default number of completion entries: more than the submission
/// queue needs, because the kernel sizes the hash table in which a
/// cancellation looks for its target by the completion ring (2^(log2(entries)
/// − 5) buckets, at most 256, reached at 8192 entries). With 10 000 requests
/// in flight, 16 buckets made one unregister cost 22 µs (a scan of ~600
/// requests); 256 make it ~1.5 µs. The ring's memory is 128 KiB.
const DEFAULT_COMPLETIONS: u32 = 8192;

/// Locks a mutex, recovering it if a thread panicked while holding it: the
/// state is consistent between any two statements that change it.
fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Uring {
    /// Sets up an io_uring instance with its wake-up eventfd.
    ///
    /// Needs Linux 5.18 or later (`IORING_SETUP_SUBMIT_ALL`; it also uses
    /// `IORING_FEAT_NODROP`, `IORING_FEAT_EXT_ARG` and multishot poll, all
    /// older), the `io-uring` cargo feature, and a system that allows
    /// io_uring (`/proc/sys/kernel/io_uring_disabled`, seccomp profiles).
    ///
    /// ```
    /// use tripoll::{Error, Poller, Uring};
    ///
    /// match Uring::new() {
    ///     Ok(p) => assert_eq!(p.name(), "uring"),
    ///     // A container that forbids io_uring, or an old kernel.
    ///     Err(Error::Unavailable { reason, .. }) => eprintln!("no io_uring: {reason}"),
    ///     Err(e) => panic!("{e}"),
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when io_uring cannot be used here (the reason
    /// says why); [`Error::Io`] with [`Op::Create`] when the kernel is out
    /// of a resource (descriptors, memory).
    pub fn new() -> Result<Uring> {
        Uring::build(DEFAULT_ENTRIES, DEFAULT_COMPLETIONS)
    }

    /// Like [`Uring::new`], with `entries` submission entries (at least 2,
    /// rounded up to a power of two by the kernel) and twice as many
    /// completion entries. Any number of descriptors can be registered
    /// whatever the size: a small ring only costs more system calls, and
    /// makes cancelling a request (unregister, modify) cost in proportion to
    /// the requests in flight (see `DEFAULT_COMPLETIONS` in the source).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{Events, Interest, Mode, Poller, Token, Uring};
    ///
    /// // A small ring serves any number of descriptors; it only costs more
    /// // system calls when many are ready at once.
    /// let small = Uring::with_entries(4)?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// let (c, mut d) = UnixStream::pair()?;
    /// small.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// small.register_source(&c, Token(2), Interest::READABLE, Mode::Level)?;
    /// b.write_all(b"x")?;
    /// d.write_all(b"y")?;
    /// let mut events = Events::with_capacity(8);
    /// let mut seen = Vec::new();
    /// while seen.len() < 2 {
    ///     small.wait(&mut events, Some(Duration::from_secs(5)))?;
    ///     seen.extend(events.iter().map(|ev| ev.token()));
    /// }
    /// seen.sort();
    /// seen.dedup();
    /// assert_eq!(seen, [Token(1), Token(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Uring::new`].
    pub fn with_entries(entries: u32) -> Result<Uring> {
        let entries = entries.max(2);
        Uring::build(entries, entries.saturating_mul(2))
    }

    fn build(entries: u32, completions: u32) -> Result<Uring> {
        let mut ring = Ring::new(entries, completions)?;
        let notifier = Notifier::new().map_err(Error::io(Op::Create))?;
        let mut book = Book::default();
        {
            let mut q = ring.queues();
            book.arm_notifier(&mut q, notifier.fd())
                .and_then(|()| q.submit())
                .map_err(Error::io(Op::Create))?;
        }
        Ok(Uring {
            ring_fd: ring.fd(),
            entries: ring.entries(),
            state: Mutex::new(State { ring, book }),
            notifier,
        })
    }

    /// How many submission entries the ring has.
    ///
    /// ```
    /// use tripoll::Uring;
    ///
    /// // The kernel rounds the size up to a power of two.
    /// assert_eq!(Uring::with_entries(5)?.entries(), 8);
    /// assert!(Uring::new()?.entries() >= 2);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    pub fn entries(&self) -> u32 {
        self.entries
    }
}

impl fmt::Debug for Uring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uring")
            .field("ring", &self.ring_fd)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Poller for Uring {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_register(CAPABILITIES, Backend::IoUring, fd, token, interest, mode)?;
        // The kernel looks the number up only when the request is
        // submitted, which may be at the next wait: check it now.
        rules::check_pollable(fd)?;
        let slot = usize::try_from(fd).map_err(|_| Error::InvalidFd { fd })?;
        let mut st = lock(&self.state);
        if st.book.contains(fd) {
            return Err(Error::AlreadyRegistered { fd });
        }
        st.book.insert(slot, Reg::new(token, interest, mode));
        let State { ring, book } = &mut *st;
        let mut q = ring.queues();
        let mut res = book.arm(&mut q, fd, mode == Mode::Edge);
        if res.is_ok() && book.waiters > 0 {
            res = q.submit();
        }
        if let Err(e) = res {
            let _ = book.cancel(&mut q, fd);
            book.remove(fd);
            return Err(Error::io(Op::Register)(e));
        }
        Ok(())
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_modify(CAPABILITIES, Backend::IoUring, fd, token, interest, mode)?;
        let mut st = lock(&self.state);
        let Some(old) = st.book.reg(fd) else {
            return Err(Error::NotRegistered { fd });
        };
        let res = (|| {
            let State { ring, book } = &mut *st;
            let mut q = ring.queues();
            book.cancel(&mut q, fd)?;
            let mut new = Reg::new(token, interest, mode);
            (new.batch, new.index) = (old.batch, old.index);
            book.replace(fd, new);
            book.arm(&mut q, fd, mode == Mode::Edge)?;
            drop(q);
            Uring::submit_if_waited_on(&mut st)
        })();
        res.map_err(Error::io(Op::Modify))
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        rules::check_fd(fd)?;
        let mut st = lock(&self.state);
        let Some(reg) = st.book.reg(fd) else {
            return Err(Error::NotRegistered { fd });
        };
        let in_flight = matches!(reg.request, Request::Oneshot(_) | Request::Multishot(_));
        let res = {
            let State { ring, book } = &mut *st;
            let mut q = ring.queues();
            let res = book.cancel(&mut q, fd);
            book.remove(fd);
            if !in_flight {
                return res.map_err(Error::io(Op::Unregister));
            }
            // Submit now, whoever waits: the request holds the file open,
            // and the caller may be about to close it.
            res.and_then(|()| q.submit())
        };
        res.and_then(|()| self.absorb(&mut st))
            .map_err(Error::io(Op::Unregister))
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        self.wait_for(events, timeout)
    }

    fn notify(&self) -> Result<()> {
        self.notifier.notify()
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn backend(&self) -> Backend {
        Backend::IoUring
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// Register, modify and unregister without ever waiting: the requests
    /// they cancel complete with `ECANCELED`, and unregister must take
    /// those completions out of the ring, or they pile up in the kernel
    /// (which holds what does not fit) without bound.
    #[test]
    fn churn_without_waiting_leaves_the_ring_empty() {
        let p = Uring::with_entries(4).unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let both = Interest::READABLE | Interest::WRITABLE;
        for _ in 0..1_000 {
            p.register(fd, Token(1), Interest::READABLE, Mode::Level)
                .unwrap();
            p.modify(fd, Token(1), both, Mode::Level).unwrap();
            p.unregister(fd).unwrap();
        }
        let mut st = lock(&p.state);
        assert!(st.ring.queues().is_empty(), "completions piled up");
        assert!(
            st.book.line.waiting() < 100,
            "the line grew: {:?}",
            st.book.line
        );
    }
}
