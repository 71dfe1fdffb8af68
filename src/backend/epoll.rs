//! `epoll(7)`: the kernel keeps the interest list, so a wait is one system
//! call into the caller's buffer and costs in proportion to the ready
//! descriptors, not the registered ones.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::rules::{self, Deadline, Notifier};
use crate::sys::{bits, epoll as sys, epoll::Ctl};
use crate::{Backend, Capabilities, Error, Events, Interest, Mode, Op, Poller, Result, Token};

/// The epoll backend: a thin wrapper over `epoll_create1`, `epoll_ctl` and
/// `epoll_wait`.
///
/// It supports every [`Mode`], including level-triggered, oneshot and
/// `EPOLLEXCLUSIVE` registrations. A wait is one `epoll_wait` straight into
/// the caller's [`Events`]: nothing is allocated or copied.
///
/// Epoll watches open file *descriptions*, not descriptor numbers: a
/// descriptor closed while registered keeps being reported as long as a
/// duplicate of it (`dup`, `fork`) is open. Unregister before closing.
///
/// ```
/// use tripoll::{Epoll, Events, Interest, Mode, Poller, Token};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let poller = Epoll::new()?;
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// poller.register(a.as_raw_fd(), Token(1), Interest::WRITABLE, Mode::Edge)?;
/// let mut events = Events::with_capacity(8);
/// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
/// assert!(events.iter().any(|e| e.token() == Token(1) && e.is_writable()));
/// # drop(b);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Epoll {
    epfd: OwnedFd,
    notifier: Notifier,
    /// What this poller registered, by descriptor number: the kernel's
    /// errors cannot tell "closed since it was registered" (which
    /// unregisters successfully) from "never registered", nor say that a
    /// modify failed because the registration is exclusive. Only
    /// register, modify and unregister touch it; the wait never does.
    registered: Mutex<Vec<Registration>>,
}

/// What [`Epoll`] remembers of one descriptor number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Registration {
    #[default]
    None,
    Plain,
    Exclusive,
}

impl AsFd for Epoll {
    /// The epoll instance's own descriptor, for nesting this poller in
    /// another event loop (another `Epoll`, mio, an async runtime): it is
    /// readable exactly when a [`wait`](Poller::wait) would report
    /// something, a [`notify`](Poller::notify) included. Do not close it, nor
    /// `epoll_ctl` it behind the poller's back.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{Epoll, Events, Interest, Mode, Poller, Token};
    ///
    /// let inner = Epoll::new()?;
    /// let outer = Epoll::new()?;
    /// outer.register_source(&inner, Token(0), Interest::READABLE, Mode::Level)?;
    ///
    /// let (a, mut b) = UnixStream::pair()?;
    /// inner.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// b.write_all(b"x")?;
    ///
    /// let mut events = Events::with_capacity(4);
    /// outer.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(0)));
    /// inner.wait(&mut events, Some(Duration::ZERO))?;
    /// assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epfd.as_fd()
    }
}

impl AsRawFd for Epoll {
    /// The epoll instance's own descriptor; see [`as_fd`](Epoll::as_fd).
    fn as_raw_fd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }
}

/// `epoll_data` of the wake-up eventfd.
const WAKER: Token = Token::RESERVED;

const CAPABILITIES: Capabilities = Capabilities::all();

impl Epoll {
    /// Creates an epoll instance (close-on-exec) with its wake-up eventfd.
    ///
    /// ```
    /// use tripoll::{Backend, Epoll, Mode, Poller};
    ///
    /// let poller = Epoll::new()?;
    /// assert_eq!(poller.backend(), Backend::Epoll);
    /// assert!(Mode::ALL.into_iter().all(|m| poller.supports(m)));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Create`] when the kernel refuses (out of
    /// descriptors, for one).
    pub fn new() -> Result<Epoll> {
        let epoll = Epoll {
            epfd: sys::create().map_err(Error::io(Op::Create))?,
            notifier: Notifier::new().map_err(Error::io(Op::Create))?,
            registered: Mutex::default(),
        };
        // Edge-triggered: every `write` to the eventfd is a new edge, so the
        // counter never needs draining on the wait path.
        let bits = bits::IN | libc::EPOLLET as u32;
        sys::ctl(
            epoll.epfd.as_fd(),
            Ctl::Add,
            epoll.notifier.fd(),
            bits,
            WAKER.0 as u64,
        )
        .map_err(Error::io(Op::Create))?;
        Ok(epoll)
    }

    fn registered(&self) -> MutexGuard<'_, Vec<Registration>> {
        // The table is valid between any two statements: recover it.
        self.registered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Sets what is remembered of `fd`, growing the table as needed.
fn remember(table: &mut Vec<Registration>, fd: RawFd, r: Registration) -> Registration {
    let i = fd as usize; // `rules` refused negative descriptors
    if i >= table.len() {
        if r == Registration::None {
            return Registration::None;
        }
        table.resize(i + 1, Registration::None);
    }
    std::mem::replace(&mut table[i], r)
}

fn recalled(table: &[Registration], fd: RawFd) -> Registration {
    table.get(fd as usize).copied().unwrap_or_default()
}

/// The `epoll_ctl` event mask for a registration.
///
/// Beside `EPOLLEXCLUSIVE` the kernel accepts only `EPOLLIN`, `EPOLLOUT`,
/// `EPOLLERR`, `EPOLLHUP`, `EPOLLWAKEUP` and `EPOLLET` (anything else is
/// `EINVAL`), so an exclusive registration goes without `EPOLLRDHUP`: a
/// half-closed peer shows as readable, and the read that returns 0 tells.
/// (Priority interest with it was refused by the rules.)
fn event_mask(interest: Interest, mode: Mode) -> u32 {
    let mut mask = interest.readiness_mask();
    if mode.is_edge() {
        mask |= libc::EPOLLET as u32;
    }
    if mode.is_oneshot() {
        mask |= libc::EPOLLONESHOT as u32;
    }
    if mode.is_exclusive() {
        mask = (mask & !bits::RDHUP) | libc::EPOLLEXCLUSIVE as u32;
    }
    mask
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

impl Poller for Epoll {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_register(CAPABILITIES, Backend::Epoll, fd, token, interest, mode)?;
        let mut table = self.registered();
        let mask = event_mask(interest, mode);
        match sys::ctl(self.epfd.as_fd(), Ctl::Add, fd, mask, token.0 as u64) {
            Ok(()) => {
                let r = if mode.is_exclusive() {
                    Registration::Exclusive
                } else {
                    Registration::Plain
                };
                remember(&mut table, fd, r);
                Ok(())
            }
            Err(e) => Err(match errno(&e) {
                libc::EEXIST => Error::AlreadyRegistered { fd },
                // Not open, or an `O_PATH` descriptor: the shared rule says which.
                libc::EBADF => rules::check_pollable(fd)
                    .err()
                    .unwrap_or(Error::InvalidFd { fd }),
                // The file has no readiness to watch (a regular file, a directory).
                libc::EPERM => Error::NotPollable { fd },
                _ => Error::Io {
                    op: Op::Register,
                    source: e,
                },
            }),
        }
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_modify(CAPABILITIES, Backend::Epoll, fd, token, interest, mode)?;
        let mask = event_mask(interest, mode);
        // A modify changes nothing that is remembered, so only its errors
        // look at the table.
        match sys::ctl(self.epfd.as_fd(), Ctl::Modify, fd, mask, token.0 as u64) {
            Ok(()) => Ok(()),
            Err(e) => Err(match errno(&e) {
                // The kernel keeps EPOLLEXCLUSIVE registrations as they were made.
                libc::EINVAL if recalled(&self.registered(), fd) == Registration::Exclusive => {
                    Error::ModifyExclusive { fd }
                }
                libc::ENOENT | libc::EBADF | libc::EPERM => Error::NotRegistered { fd },
                libc::EINVAL if fd == self.epfd.as_raw_fd() => Error::NotRegistered { fd },
                _ => Error::Io {
                    op: Op::Modify,
                    source: e,
                },
            }),
        }
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        rules::check_fd(fd)?;
        let mut table = self.registered();
        let was = remember(&mut table, fd, Registration::None);
        match sys::ctl(self.epfd.as_fd(), Ctl::Delete, fd, 0, 0) {
            Ok(()) => Ok(()),
            // Registered, then closed (closing the last reference took it off
            // the kernel's list) or closed and the number reused: either way
            // it is no longer watched, which is what the caller wants.
            Err(e)
                if matches!(errno(&e), libc::EBADF | libc::ENOENT) && was != Registration::None =>
            {
                Ok(())
            }
            Err(e)
                if matches!(
                    errno(&e),
                    libc::EBADF | libc::ENOENT | libc::EPERM | libc::EINVAL
                ) =>
            {
                Err(Error::NotRegistered { fd })
            }
            Err(e) => {
                remember(&mut table, fd, was);
                Err(Error::Io {
                    op: Op::Unregister,
                    source: e,
                })
            }
        }
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        let epfd = self.epfd.as_fd();
        Deadline::after(timeout)
            .retry_eintr(timeout, |left| sys::wait(epfd, events.raw_mut(), left))
            .map_err(Error::io(Op::Wait))?;
        // The wake-up eventfd can only be among the events while a notify is
        // pending, so the common case skips the scan.
        if self.notifier.is_pending() && events.remove_token(WAKER) {
            self.notifier.take();
        }
        Ok(events.len())
    }

    fn notify(&self) -> Result<()> {
        self.notifier.notify()
    }

    fn capabilities(&self) -> Capabilities {
        if crate::busy_poll::available(self) {
            CAPABILITIES
        } else {
            CAPABILITIES.difference(Capabilities::BUSY_POLL)
        }
    }

    fn backend(&self) -> Backend {
        Backend::Epoll
    }
}
