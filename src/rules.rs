//! The rules of the [`Poller`](crate::Poller) contract that every backend
//! shares, each written once: what a registration may ask for
//! ([`check_register`], [`check_modify`], [`check_fd`],
//! [`check_pollable`]), how notifications coalesce ([`Notifier`]), and how a
//! wait keeps its deadline across signals ([`Deadline`]).
//!
//! A backend calls these before it touches any state, so a refused call
//! changes nothing, and every backend refuses the same input with the same
//! error, in the same order.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sys::{self, eventfd::EventFd, select::FD_SETSIZE};
use crate::{Backend, Capabilities, Error, Interest, Mode, Op, Result, Token};

/// Checks a [`register`](crate::Poller::register) call against what every
/// backend refuses and what this one (`caps`) cannot do: a negative
/// descriptor, one beyond select's range, the reserved token, a mode the
/// backend lacks, and priority interest with an exclusive mode (the kernel
/// takes no `EPOLLPRI` with `EPOLLEXCLUSIVE`).
pub(crate) fn check_register(
    caps: Capabilities,
    backend: Backend,
    fd: RawFd,
    token: Token,
    interest: Interest,
    mode: Mode,
) -> Result<()> {
    check_fd(fd)?;
    if !caps.contains(Capabilities::UNBOUNDED_FDS) && fd as usize >= FD_SETSIZE {
        return Err(Error::FdOutOfRange {
            fd,
            limit: FD_SETSIZE,
        });
    }
    check_request(caps, backend, token, interest, mode)
}

/// Checks a [`modify`](crate::Poller::modify) call: the rules of
/// [`check_register`] (but a descriptor out of select's range is simply not
/// registered), and no exclusive mode, which the kernel sets only when a
/// registration is made.
pub(crate) fn check_modify(
    caps: Capabilities,
    backend: Backend,
    fd: RawFd,
    token: Token,
    interest: Interest,
    mode: Mode,
) -> Result<()> {
    check_fd(fd)?;
    check_request(caps, backend, token, interest, mode)?;
    if mode.is_exclusive() {
        return Err(Error::ModifyExclusive { fd });
    }
    Ok(())
}

/// Refuses a negative descriptor, the one rule of
/// [`unregister`](crate::Poller::unregister).
pub(crate) fn check_fd(fd: RawFd) -> Result<()> {
    if fd < 0 {
        return Err(Error::InvalidFd { fd });
    }
    Ok(())
}

fn check_request(
    caps: Capabilities,
    backend: Backend,
    token: Token,
    interest: Interest,
    mode: Mode,
) -> Result<()> {
    if token == Token::RESERVED {
        return Err(Error::ReservedToken(token));
    }
    let unsupported = Error::Unsupported { backend, mode };
    if !caps.contains(mode.requires()) {
        return Err(unsupported);
    }
    if mode.is_exclusive() && interest.contains(Interest::PRIORITY) {
        return Err(unsupported);
    }
    Ok(())
}

/// Whether `fd` is an open descriptor whose file can report readiness:
/// [`Error::InvalidFd`] if it is not open, [`Error::NotPollable`] for an
/// `O_PATH` descriptor (a name, not an open file: poll would call it
/// invalid, select would call it ready forever, epoll refuses it).
pub(crate) fn check_pollable(fd: RawFd) -> Result<()> {
    match sys::status_flags(fd) {
        Err(_) => Err(Error::InvalidFd { fd }),
        Ok(flags) if flags & libc::O_PATH != 0 => Err(Error::NotPollable { fd }),
        Ok(_) => Ok(()),
    }
}

/// The wake-up descriptor of a poller and the rule that notifications
/// coalesce: [`notify`](Notifier::notify) writes the eventfd only when no
/// notification is pending, and the wait that consumes it
/// [`take`](Notifier::take)s the flag.
#[derive(Debug)]
pub(crate) struct Notifier {
    fd: EventFd,
    /// Set by `notify` while a wake-up is in flight.
    pending: AtomicBool,
}

impl Notifier {
    pub(crate) fn new() -> io::Result<Notifier> {
        Ok(Notifier {
            fd: EventFd::new()?,
            pending: AtomicBool::new(false),
        })
    }

    /// The eventfd a backend watches for readability.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.fd()
    }

    /// A user's [`Poller::notify`](crate::Poller::notify): one write per
    /// burst. If the write fails the flag is cleared again, so the next
    /// call retries rather than believing a wake-up is on its way.
    pub(crate) fn notify(&self) -> Result<()> {
        if self.pending.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.fd.wake().map_err(|e| {
            self.pending.store(false, Ordering::Release);
            Error::io(Op::Notify)(e)
        })
    }

    /// Whether a user notification is pending: only then can the wake-up
    /// descriptor be among a wait's events, so a backend may skip looking.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Clears the pending flag and says whether it was set. A swap, not a
    /// store: it must read the `true` of a `notify` that raced with the
    /// wait, so that the notifier's writes (the reason it notified) are
    /// visible to the waiting thread when `wait` returns.
    #[inline]
    pub(crate) fn take(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }

    /// Wakes the waiter without a user notification (the registrations
    /// changed under a blocked poll or select).
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.fd.wake()
    }

    /// Empties the eventfd, for backends that watch it level-triggered.
    pub(crate) fn drain(&self) -> io::Result<()> {
        self.fd.drain()
    }
}

/// How much of a timeout is left, so that a wait interrupted by a signal
/// resumes with the remaining time rather than starting over.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deadline {
    /// Block until something happens.
    Never,
    /// Do not block at all.
    Now,
    /// Block until this instant.
    At(Instant),
}

impl Deadline {
    /// Starts the clock for `timeout`. A timeout too large to add to the
    /// current instant is treated as infinite. Only a finite, non-zero
    /// timeout reads the clock.
    #[inline]
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        match timeout {
            None => Deadline::Never,
            Some(t) if t.is_zero() => Deadline::Now,
            Some(t) => Instant::now()
                .checked_add(t)
                .map_or(Deadline::Never, Deadline::At),
        }
    }

    /// The time left, `None` for an infinite wait.
    #[inline]
    pub(crate) fn remaining(self) -> Option<Duration> {
        match self {
            Deadline::Never => None,
            Deadline::Now => Some(Duration::ZERO),
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// Whether the time is up (never for an infinite wait).
    pub(crate) fn is_past(self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// Runs the kernel wait `call` until it does not fail with `EINTR`: the
    /// one signal rule of every backend. The first attempt gets `first`, the
    /// timeout as the caller gave it (so a whole number of milliseconds
    /// stays whole, and no clock is read); each retry gets the time left,
    /// and an interrupted wait whose time is up returns `Ok(0)`.
    #[inline]
    pub(crate) fn retry_eintr(
        self,
        first: Option<Duration>,
        mut call: impl FnMut(Option<Duration>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut left = first;
        loop {
            match call(left) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    left = self.remaining();
                    // Time is up (a zero timeout's at once): nothing ready.
                    if left == Some(Duration::ZERO) {
                        return Ok(0);
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Capabilities = Capabilities::all();

    #[test]
    fn register_rules_come_in_one_order() {
        let (fd, t, r) = (3, Token(1), Interest::READABLE);
        let b = Backend::Epoll;
        assert!(matches!(
            check_register(ALL, b, -1, Token::RESERVED, r, Mode::Edge),
            Err(Error::InvalidFd { fd: -1 })
        ));
        assert!(matches!(
            check_register(
                Capabilities::ONESHOT,
                Backend::Select,
                1500,
                t,
                r,
                Mode::Level
            ),
            Err(Error::FdOutOfRange { fd: 1500, .. })
        ));
        assert!(check_register(ALL, b, 1500, t, r, Mode::Level).is_ok());
        assert!(matches!(
            check_register(Capabilities::empty(), b, fd, Token::RESERVED, r, Mode::Edge),
            Err(Error::ReservedToken(_))
        ));
        assert!(matches!(
            check_register(Capabilities::ONESHOT, Backend::Poll, fd, t, r, Mode::Edge),
            Err(Error::Unsupported {
                backend: Backend::Poll,
                mode: Mode::Edge
            })
        ));
        assert!(matches!(
            check_register(ALL, b, fd, t, r | Interest::PRIORITY, Mode::Exclusive),
            Err(Error::Unsupported {
                mode: Mode::Exclusive,
                ..
            })
        ));
        assert!(check_register(ALL, b, fd, t, r, Mode::Exclusive).is_ok());
    }

    #[test]
    fn modify_refuses_exclusive_modes() {
        let (t, r) = (Token(1), Interest::READABLE);
        for mode in [Mode::Exclusive, Mode::EdgeExclusive] {
            assert!(matches!(
                check_modify(ALL, Backend::Epoll, 4, t, r, mode),
                Err(Error::ModifyExclusive { fd: 4 })
            ));
            // A backend without exclusive modes says so first.
            assert!(matches!(
                check_modify(Capabilities::ONESHOT, Backend::Poll, 4, t, r, mode),
                Err(Error::Unsupported { .. })
            ));
        }
        assert!(check_modify(
            Capabilities::ONESHOT,
            Backend::Select,
            1500,
            t,
            r,
            Mode::Level
        )
        .is_ok());
    }

    #[test]
    fn deadline_of_a_huge_timeout_is_infinite() {
        assert!(matches!(
            Deadline::after(Some(Duration::MAX)),
            Deadline::Never
        ));
        assert!(matches!(
            Deadline::after(Some(Duration::ZERO)),
            Deadline::Now
        ));
        assert!(Deadline::Now.is_past() && !Deadline::Never.is_past());
    }

    #[test]
    fn retry_eintr_of_a_zero_timeout_returns_at_once() {
        let mut calls = 0;
        let res = Deadline::Now.retry_eintr(Some(Duration::ZERO), |_| {
            calls += 1;
            if calls < 1000 {
                Err(io::Error::from_raw_os_error(libc::EINTR))
            } else {
                Ok(1000) // the bug: retried until this gave up
            }
        });
        assert_eq!(res.unwrap(), 0);
        assert_eq!(calls, 1);
    }

    #[test]
    fn retry_eintr_passes_the_remaining_time() {
        let mut seen = Vec::new();
        let timeout = Some(Duration::from_secs(10));
        let res = Deadline::after(timeout).retry_eintr(timeout, |left| {
            seen.push(left.expect("finite"));
            if seen.len() < 3 {
                std::thread::sleep(Duration::from_millis(5));
                Err(io::Error::from_raw_os_error(libc::EINTR))
            } else {
                Ok(7)
            }
        });
        assert_eq!(res.unwrap(), 7);
        assert_eq!(seen.len(), 3);
        assert!(seen[1] < seen[0] && seen[2] < seen[1], "{seen:?}");
    }

    #[test]
    fn retry_eintr_stops_when_time_is_up() {
        let mut calls = 0;
        let timeout = Some(Duration::from_millis(1));
        let res = Deadline::after(timeout).retry_eintr(timeout, |_| {
            calls += 1;
            std::thread::sleep(Duration::from_millis(2));
            Err(io::Error::from_raw_os_error(libc::EINTR))
        });
        assert_eq!(res.unwrap(), 0);
        assert_eq!(calls, 1);
    }
}
