//! [`Timer`]: a kernel timer (`timerfd`) that counts its expirations.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys::timerfd as sys;
use crate::{Error, Op, Result};

/// The clock a [`Timer`] runs on.
///
/// ```
/// use tripoll::source::Clock;
///
/// for clock in [Clock::Monotonic, Clock::Boottime] {
///     let a = clock.now()?;
///     let b = clock.now()?;
///     assert!(b >= a, "{clock:?} never goes back");
/// }
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Clock {
    /// `CLOCK_MONOTONIC`, the clock of [`std::time::Instant`]: stops while
    /// the machine is suspended.
    Monotonic,
    /// `CLOCK_BOOTTIME`: like `Monotonic`, but counts suspended time, so a
    /// deadline on it falls at the same wall-clock distance across a
    /// suspend.
    Boottime,
}

impl Clock {
    fn id(self) -> libc::clockid_t {
        match self {
            Clock::Monotonic => libc::CLOCK_MONOTONIC,
            Clock::Boottime => libc::CLOCK_BOOTTIME,
        }
    }

    /// The clock's current time, since its zero: what a
    /// [`Start::At`] deadline is measured in.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::source::{Clock, Start, Timer};
    ///
    /// let timer = Timer::new(Clock::Boottime)?;
    /// let deadline = Clock::Boottime.now()? + Duration::from_millis(5);
    /// timer.set(Start::At(deadline), None)?;
    /// while timer.read()?.is_none() {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert!(Clock::Boottime.now()? >= deadline); // never early
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Timer`] if the kernel refuses the clock.
    pub fn now(self) -> Result<Duration> {
        sys::now(self.id()).map_err(Error::io(Op::Timer))
    }
}

/// When a [`Timer`] first expires.
///
/// ```
/// use std::time::Duration;
/// use tripoll::source::{Clock, Start, Timer};
///
/// let timer = Timer::new(Clock::Monotonic)?;
/// timer.set(Start::After(Duration::from_secs(1)), None)?; // in a second
/// let noon = Clock::Monotonic.now()? + Duration::from_secs(3600);
/// timer.set(Start::At(noon), Some(Duration::from_secs(60)))?; // then every minute
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// This long from the call that arms it. Zero means at once.
    After(Duration),
    /// At this time of the timer's [`Clock`] (as [`Clock::now`] reads it).
    /// A deadline already past expires at once.
    At(Duration),
}

/// A timer the kernel keeps (`timerfd`): one-shot or periodic, from now or
/// at a deadline on a [`Clock`]. Its descriptor is readable once it has
/// expired; [`read`](Timer::read) says how many times it expired since the
/// last read, so a loop that was held up learns how many periods it
/// missed. The kernel never reports an expiry before its time.
///
/// ```
/// use std::time::{Duration, Instant};
/// use tripoll::source::{Clock, Timer};
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let timer = Timer::new(Clock::Monotonic)?;
/// poller.register_source(&timer, Token(1), Interest::READABLE, Mode::Level)?;
///
/// let start = Instant::now();
/// timer.set_after(Duration::from_millis(20))?;
/// let mut events = Events::with_capacity(4);
/// while timer.read()?.is_none() {
///     poller.wait(&mut events, None)?;
/// }
/// assert!(start.elapsed() >= Duration::from_millis(20)); // never early
/// poller.unregister_source(&timer)?;
/// # Ok::<(), tripoll::Error>(())
/// ```
pub struct Timer {
    fd: OwnedFd,
    clock: Clock,
}

/// A `timespec` for `d`, or the error for a time the kernel cannot hold.
fn timespec(d: Duration) -> Result<libc::timespec> {
    let tv_sec = libc::time_t::try_from(d.as_secs()).map_err(|_| Error::InvalidTimer {
        reason: "the time does not fit in the kernel's timespec",
    })?;
    Ok(libc::timespec {
        tv_sec,
        tv_nsec: d.subsec_nanos() as _,
    })
}

impl Timer {
    /// A new timer on `clock`, disarmed.
    ///
    /// ```
    /// use tripoll::source::{Clock, Timer};
    ///
    /// let timer = Timer::new(Clock::Boottime)?;
    /// assert_eq!(timer.clock(), Clock::Boottime);
    /// assert_eq!(timer.read()?, None); // disarmed: never expires
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Timer`] if the kernel refuses the timer.
    pub fn new(clock: Clock) -> Result<Timer> {
        let fd = sys::create(clock.id()).map_err(Error::io(Op::Timer))?;
        Ok(Timer { fd, clock })
    }

    /// The timer's clock.
    ///
    /// ```
    /// use tripoll::source::{Clock, Timer};
    ///
    /// assert_eq!(Timer::new(Clock::Monotonic)?.clock(), Clock::Monotonic);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Arms the timer: first at `start`, then every `period` if there is
    /// one. Replaces any earlier setting and forgets expirations not yet
    /// read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::source::{Clock, Start, Timer};
    /// use tripoll::Error;
    ///
    /// let timer = Timer::new(Clock::Monotonic)?;
    /// // Due one millisecond ago: expires at once, then every 10 ms.
    /// let deadline = Clock::Monotonic.now()? - Duration::from_millis(1);
    /// timer.set(Start::At(deadline), Some(Duration::from_millis(10)))?;
    /// assert!(matches!(
    ///     timer.set(Start::After(Duration::ZERO), Some(Duration::ZERO)),
    ///     Err(Error::InvalidTimer { .. })
    /// ));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTimer`] for a zero period or a time beyond the
    /// kernel's `timespec` (nothing changes then); [`Error::Io`] with
    /// [`Op::Timer`] if the kernel refuses.
    pub fn set(&self, start: Start, period: Option<Duration>) -> Result<()> {
        let interval = match period {
            Some(Duration::ZERO) => {
                return Err(Error::InvalidTimer {
                    reason: "a periodic timer needs a non-zero period",
                })
            }
            Some(p) => timespec(p)?,
            None => timespec(Duration::ZERO)?,
        };
        let (absolute, at) = match start {
            Start::After(d) => (false, d),
            Start::At(d) => (true, d),
        };
        // An all-zero first expiry disarms the timer: "now" is the smallest
        // time the kernel takes, which is already due.
        let at = at.max(Duration::from_nanos(1));
        let value = timespec(at)?;
        sys::set(self.fd.as_fd(), absolute, value, interval).map_err(Error::io(Op::Timer))
    }

    /// Arms the timer to expire once, `delay` from now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::source::{Clock, Timer};
    ///
    /// let timer = Timer::new(Clock::Monotonic)?;
    /// timer.set_after(Duration::ZERO)?; // due at once
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`set`](Timer::set).
    pub fn set_after(&self, delay: Duration) -> Result<()> {
        self.set(Start::After(delay), None)
    }

    /// Arms the timer to expire every `period`, the first one `period`
    /// from now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::source::{Clock, Timer};
    /// use tripoll::Error;
    ///
    /// let timer = Timer::new(Clock::Monotonic)?;
    /// timer.set_interval(Duration::from_millis(5))?;
    /// assert!(matches!(timer.set_interval(Duration::ZERO), Err(Error::InvalidTimer { .. })));
    /// assert!(matches!(timer.set_interval(Duration::MAX), Err(Error::InvalidTimer { .. })));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`set`](Timer::set).
    pub fn set_interval(&self, period: Duration) -> Result<()> {
        if period.is_zero() {
            return Err(Error::InvalidTimer {
                reason: "a periodic timer needs a non-zero period",
            });
        }
        self.set(Start::After(period), Some(period))
    }

    /// Disarms the timer and forgets expirations not yet read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::source::{Clock, Timer};
    ///
    /// let timer = Timer::new(Clock::Monotonic)?;
    /// timer.set_after(Duration::ZERO)?;
    /// timer.disarm()?;
    /// assert_eq!(timer.read()?, None);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Timer`] if the kernel refuses.
    pub fn disarm(&self) -> Result<()> {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        sys::set(self.fd.as_fd(), false, zero, zero).map_err(Error::io(Op::Timer))
    }

    /// How many times the timer expired since the last read, without
    /// blocking; `None` when it has not (the descriptor is then not
    /// readable).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::source::{Clock, Timer};
    ///
    /// let timer = Timer::new(Clock::Monotonic)?;
    /// timer.set_interval(Duration::from_millis(1))?;
    /// std::thread::sleep(Duration::from_millis(5));
    /// // Five periods passed, so five expirations at least: none is lost.
    /// assert!(timer.read()?.unwrap_or(0) >= 5);
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Timer`] if the read fails.
    pub fn read(&self) -> Result<Option<u64>> {
        sys::read(self.fd.as_fd()).map_err(Error::io(Op::Timer))
    }
}

impl AsFd for Timer {
    /// The `timerfd`: readable once the timer has expired and until it is
    /// read.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Timer {
    /// The `timerfd`; see [`as_fd`](Timer::as_fd).
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("fd", &self.fd.as_raw_fd())
            .field("clock", &self.clock)
            .finish()
    }
}
