//! `timerfd(2)` and `clock_gettime(2)`: a kernel timer that counts its
//! expirations into a descriptor.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::syscall;

/// A new non-blocking, close-on-exec timerfd on `clock`, disarmed.
pub(crate) fn create(clock: libc::clockid_t) -> io::Result<OwnedFd> {
    let fd = syscall!(timerfd_create(
        clock,
        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC
    ))?;
    // SAFETY: timerfd_create just returned this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms (or, with a zero `value`, disarms) the timer: first expiry at
/// `value` (absolute on the timer's clock when `absolute`, else from
/// now), then every `interval` (zero: once).
pub(crate) fn set(
    fd: BorrowedFd<'_>,
    absolute: bool,
    value: libc::timespec,
    interval: libc::timespec,
) -> io::Result<()> {
    let flags = if absolute { libc::TFD_TIMER_ABSTIME } else { 0 };
    let spec = libc::itimerspec {
        it_interval: interval,
        it_value: value,
    };
    // SAFETY: `spec` is a valid itimerspec; a null old value is allowed.
    syscall!(timerfd_settime(
        fd.as_raw_fd(),
        flags,
        &spec,
        std::ptr::null_mut()
    ))
    .map(drop)
}

/// The expirations since the last read, `None` when there were none.
pub(crate) fn read(fd: BorrowedFd<'_>) -> io::Result<Option<u64>> {
    super::read_counter(fd.as_raw_fd())
}

/// The current time on `clock`, since its zero.
pub(crate) fn now(clock: libc::clockid_t) -> io::Result<Duration> {
    let mut ts = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `ts` is a writable timespec, which the call fills on success.
    syscall!(clock_gettime(clock, ts.as_mut_ptr()))?;
    // SAFETY: initialised by the successful call above.
    let ts = unsafe { ts.assume_init() };
    // A clock's time is never negative; clamp rather than trust it.
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}
