//! `poll(2)`: the whole `pollfd` array goes to the kernel on every wait.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::registry::Entry;
use super::{ScanSet, Scanner, CLOSED};
use crate::sys::bits;
use crate::sys::poll::{ppoll, PollFd};
use crate::{Backend, Capabilities, Events, Interest, Mode, Poller, Result, Token};

/// The poll backend: registrations live in user space and are handed to
/// `ppoll` as one `pollfd` array per wait.
///
/// Level-triggered and oneshot registrations (oneshot is emulated: the
/// descriptor leaves the array once it has reported); no edge or exclusive
/// modes. No limit on descriptor numbers. The cost of a wait grows with the
/// number of registered descriptors, which is the point of comparing it
/// with epoll. Timeouts have nanosecond resolution.
///
/// Concurrent waits on one `Poll` take turns, each returning by its own
/// deadline; registrations from other threads wake the waiter, which
/// re-polls with the new set.
///
/// `Poll` has no `AsFd`: its set lives in user space, so there is no kernel
/// object that becomes readable when a wait would report (its wake-up
/// eventfd only tells of [`notify`](crate::Poller::notify)). To nest one in
/// another event loop, run its waits on a thread of their own that
/// notifies the outer loop, or use [`Epoll`](crate::Epoll).
///
/// ```
/// use tripoll::{Events, Interest, Mode, Poll, Poller, Token};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let poller = Poll::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// poller.register(a.as_raw_fd(), Token(1), Interest::WRITABLE, Mode::Oneshot)?;
/// let mut events = Events::with_capacity(8);
/// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
/// assert_eq!(events.len(), 1); // then disarmed until `modify`
/// poller.wait(&mut events, Some(Duration::ZERO))?;
/// assert!(events.is_empty());
/// # drop(b);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Poll(Scanner<PollSet>);

impl Poll {
    /// Creates a poll backend with its wake-up eventfd.
    ///
    /// ```
    /// use tripoll::{Backend, Mode, Poller, Poll};
    ///
    /// let poller = Poll::new()?;
    /// assert_eq!(poller.backend(), Backend::Poll);
    /// assert!(poller.supports(Mode::Level) && !poller.supports(Mode::Edge));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) with [`Op::Create`](crate::Op::Create)
    /// if the eventfd cannot be created.
    pub fn new() -> Result<Poll> {
        Scanner::new().map(Poll)
    }
}

/// Every call goes to the scanning engine, which does the work for poll
/// and select alike.
impl Poller for Poll {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.0.register(fd, token, interest, mode)
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.0.modify(fd, token, interest, mode)
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        self.0.unregister(fd)
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        self.0.wait(events, timeout)
    }

    fn notify(&self) -> Result<()> {
        self.0.notify()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn backend(&self) -> Backend {
        self.0.backend()
    }
}

/// The `pollfd` array: one per armed registration, then the waker.
#[derive(Debug, Default)]
pub(crate) struct PollSet {
    fds: Vec<PollFd>,
}

// On Linux `poll(2)` and `epoll(7)` spell readiness with the same bits,
// so one mask serves both: what a registration asks for, and what it reads.
const _: () = {
    assert!(libc::POLLIN as u32 == bits::IN && libc::POLLOUT as u32 == bits::OUT);
    assert!(libc::POLLPRI as u32 == bits::PRI && libc::POLLRDHUP as u32 == bits::RDHUP);
    assert!(libc::POLLERR as u32 == bits::ERR && libc::POLLHUP as u32 == bits::HUP);
};

/// The `pollfd` `events` that ask for `interest`.
fn poll_events(interest: Interest) -> libc::c_short {
    interest.readiness_mask() as libc::c_short
}

/// A `pollfd`'s `revents` as the `EPOLL*` readiness bits every backend
/// reports, with [`CLOSED`] for `POLLNVAL`.
fn readiness(revents: libc::c_short) -> u32 {
    let known = bits::IN | bits::OUT | bits::PRI | bits::ERR | bits::HUP | bits::RDHUP;
    let mut out = revents as u16 as u32 & known;
    if revents & libc::POLLNVAL != 0 {
        out |= CLOSED;
    }
    out
}

impl ScanSet for PollSet {
    const BACKEND: Backend = Backend::Poll;
    const CAPABILITIES: Capabilities = Capabilities::ONESHOT
        .union(Capabilities::READ_CLOSED)
        .union(Capabilities::WRITE_CLOSED)
        .union(Capabilities::UNBOUNDED_FDS);

    fn prepare(&mut self, waker: RawFd, entries: &[Entry]) {
        self.fds.clear();
        self.fds
            .extend(entries.iter().filter(|e| e.armed).map(|e| PollFd {
                fd: e.fd,
                events: poll_events(e.interest),
                revents: 0,
            }));
        // The waker goes last: once the kernel has found a ready descriptor
        // it stops queueing itself on the ones after it, so in a busy loop
        // the waker costs no wait-queue entry.
        self.fds.push(PollFd {
            fd: waker,
            events: libc::POLLIN,
            revents: 0,
        });
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        ppoll(&mut self.fds, timeout)
    }

    #[inline]
    fn waker_ready(&self) -> bool {
        self.fds.last().is_some_and(|w| w.revents != 0)
    }

    #[inline]
    fn len(&self) -> usize {
        self.fds.len().saturating_sub(1)
    }

    #[inline]
    fn ready(&self, i: usize) -> (RawFd, u32) {
        let p = &self.fds[i];
        if p.revents == 0 {
            return (p.fd, 0);
        }
        (p.fd, readiness(p.revents))
    }

    #[inline]
    fn hits(_ready: u32) -> usize {
        1
    }
}
