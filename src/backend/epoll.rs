//! `epoll(7)`: the kernel keeps the interest list, so this backend keeps no
//! state of its own besides the epoll descriptor and its wake-up eventfd.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::sys::{self, syscall, RawEvent, Waker};
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
#[derive(Debug)]
pub struct Epoll {
    epfd: OwnedFd,
    waker: Waker,
    /// Set by `notify` while a wake-up is in flight, so a burst of
    /// notifications costs one `write`.
    notified: AtomicBool,
}

/// `epoll_data` of the wake-up eventfd.
const WAKER: Token = Token::RESERVED;

impl Epoll {
    /// Creates an epoll instance (close-on-exec) with its wake-up eventfd.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Create`] when the kernel refuses.
    pub fn new() -> Result<Epoll> {
        let epfd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC)).map_err(Error::io(Op::Create))?;
        // SAFETY: epoll_create1 just returned this descriptor; we own it.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        let waker = Waker::new().map_err(Error::io(Op::Create))?;
        let epoll = Epoll {
            epfd,
            waker,
            notified: AtomicBool::new(false),
        };
        // Edge-triggered: every `write` to the eventfd is a new edge, so the
        // counter never needs draining on the wait path.
        let bits = libc::EPOLLIN as u32 | libc::EPOLLET as u32;
        epoll
            .ctl(libc::EPOLL_CTL_ADD, epoll.waker.fd(), bits, WAKER)
            .map_err(Error::io(Op::Create))?;
        Ok(epoll)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: Token) -> io::Result<()> {
        let mut ev = RawEvent {
            events,
            u64: token.0 as u64,
        };
        // SAFETY: `ev` is a valid epoll_event that outlives the call; the
        // kernel copies it.
        syscall!(epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev))?;
        Ok(())
    }

    fn check(&self, fd: RawFd, token: Token, mode: Mode) -> Result<()> {
        if fd < 0 {
            return Err(Error::InvalidFd { fd });
        }
        if token == WAKER {
            return Err(Error::ReservedToken(token));
        }
        if mode.is_exclusive() && mode.is_oneshot() {
            return Err(Error::Unsupported {
                backend: Backend::Epoll,
                mode,
            });
        }
        Ok(())
    }
}

/// The `epoll_ctl` event mask for a registration.
///
/// Beside `EPOLLEXCLUSIVE` the kernel accepts only `EPOLLIN`, `EPOLLOUT`,
/// `EPOLLERR`, `EPOLLHUP`, `EPOLLWAKEUP` and `EPOLLET` (anything else is
/// `EINVAL`), so an exclusive registration goes without `EPOLLRDHUP` (a
/// half-closed peer shows as readable, and the read that returns 0 tells)
/// and cannot ask for priority data.
fn registration_bits(interest: Interest, mode: Mode) -> Result<u32> {
    let bits = interest.epoll_bits() | mode.epoll_bits();
    if !mode.is_exclusive() {
        return Ok(bits);
    }
    if interest.contains(Interest::PRIORITY) {
        return Err(Error::Unsupported {
            backend: Backend::Epoll,
            mode,
        });
    }
    Ok(bits & !sys::bits::RDHUP)
}

/// Whether `epoll_pwait2` (Linux 5.11) is available; cleared on `ENOSYS`.
static HAVE_PWAIT2: AtomicBool = AtomicBool::new(true);

/// One `epoll_wait`. A timeout that is not a whole number of milliseconds
/// goes through `epoll_pwait2`, which takes a `timespec`, so that a timer
/// due in 1.2 ms wakes after 1.2 ms rather than 2; blocking, zero and
/// whole-millisecond timeouts (the hot path) use plain `epoll_wait`.
///
/// # Safety
///
/// `buf` must point to `max` writable `epoll_event`s.
#[inline]
unsafe fn epoll_wait(
    epfd: RawFd,
    buf: *mut RawEvent,
    max: libc::c_int,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    if let Some(t) = timeout {
        if t.subsec_nanos() % 1_000_000 != 0 && HAVE_PWAIT2.load(Ordering::Relaxed) {
            let ts = sys::timespec(t);
            // SAFETY: `buf` holds `max` events (the caller's promise), `ts`
            // outlives the call, and a null signal mask means none is set.
            let res = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    buf,
                    max,
                    &ts as *const libc::timespec,
                    ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if res >= 0 {
                return Ok(res as usize);
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENOSYS) {
                return Err(err);
            }
            HAVE_PWAIT2.store(false, Ordering::Relaxed);
        }
    }
    // SAFETY: as above, `buf` holds `max` events.
    let n = syscall!(epoll_wait(epfd, buf, max, sys::timeout_ms(timeout)))?;
    Ok(n as usize)
}

/// Maps `epoll_ctl`'s errno to the error a caller can act on.
fn ctl_error(op: Op, fd: RawFd, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EEXIST) => Error::AlreadyRegistered { fd },
        Some(libc::ENOENT) => Error::NotRegistered { fd },
        Some(libc::EBADF) => Error::InvalidFd { fd },
        // Register: the file has no readiness to watch. Modify and
        // unregister: such a file can never have been registered.
        Some(libc::EPERM) if op == Op::Register => Error::NotPollable { fd },
        Some(libc::EPERM) => Error::NotRegistered { fd },
        _ => Error::Io { op, source: e },
    }
}

impl Poller for Epoll {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.check(fd, token, mode)?;
        let bits = registration_bits(interest, mode)?;
        self.ctl(libc::EPOLL_CTL_ADD, fd, bits, token)
            .map_err(|e| ctl_error(Op::Register, fd, e))
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.check(fd, token, mode)?;
        if mode.is_exclusive() {
            // The kernel refuses EPOLLEXCLUSIVE with EPOLL_CTL_MOD.
            return Err(Error::Unsupported {
                backend: Backend::Epoll,
                mode,
            });
        }
        let bits = interest.epoll_bits() | mode.epoll_bits();
        self.ctl(libc::EPOLL_CTL_MOD, fd, bits, token)
            .map_err(|e| ctl_error(Op::Modify, fd, e))
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        if fd < 0 {
            return Err(Error::InvalidFd { fd });
        }
        match self.ctl(libc::EPOLL_CTL_DEL, fd, 0, Token(0)) {
            Ok(()) => Ok(()),
            // The descriptor was closed since it was registered, and closing
            // the last reference to its file already took it off the interest
            // list: it is no longer watched, which is what the caller wants.
            // (ENOENT, an open descriptor that is not registered, stays an
            // error: epoll cannot tell a reused number from a typo.)
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(()),
            Err(e) => Err(ctl_error(Op::Unregister, fd, e)),
        }
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        let epfd = self.epfd.as_raw_fd();
        let (buf, cap) = events.spare_raw();
        let max = cap.min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: `buf` points to `cap` writable epoll_events owned by
        // `events`, which we borrow mutably for the whole call.
        let n = sys::retry_eintr(timeout, |left| unsafe { epoll_wait(epfd, buf, max, left) })
            .map_err(Error::io(Op::Wait))?;
        // SAFETY: the kernel initialised the first `n` (≤ `cap`) entries.
        unsafe { events.set_len(n) };
        // The wake-up eventfd can only be among the events while the flag is
        // set: `notify` sets it before writing, and only the wait that takes
        // the event clears it. So the common case skips the scan. Clearing
        // is a swap, not a store: it must read the `true` of a `notify` that
        // raced with this wait, so that the notifier's writes (the reason it
        // notified) are visible to this thread when `wait` returns.
        if self.notified.load(Ordering::Acquire) && events.remove_token(WAKER) {
            self.notified.swap(false, Ordering::AcqRel);
        }
        Ok(events.len())
    }

    fn notify(&self) -> Result<()> {
        if self.notified.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.waker.wake().map_err(|e| {
            self.notified.store(false, Ordering::Release);
            Error::io(Op::Notify)(e)
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    fn backend(&self) -> Backend {
        Backend::Epoll
    }
}
