//! The one place where tripoll talks to libc.
//!
//! Every system call goes through [`syscall!`], which turns the C convention
//! (`-1` and `errno`) into `io::Result`, and every call site is in this
//! folder, split by topic: [`epoll`], [`eventfd`], [`poll`] and [`select`]
//! for the backends, `signal` for the reactor; time conversions and
//! descriptor queries here. Callers see safe functions; each `unsafe` block
//! here carries a `// SAFETY:` note.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod net;
pub(crate) mod poll;
pub(crate) mod select;
#[cfg(feature = "io-uring")]
pub(crate) mod uring;

pub(crate) mod signal;
// The typed sources' calls, and epoll's busy-poll knob.
pub(crate) mod busy_poll;
pub(crate) mod pidfd;
pub(crate) mod timerfd;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Calls a libc function and maps a `-1` return to `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// The kernel's event record. On Linux it is `struct epoll_event` itself, so
/// `epoll_wait` writes straight into the buffer of records its caller hands
/// over (the public events are a view of them); the other backends fill in
/// the same record with the same `EPOLL*` bits.
pub(crate) type RawEvent = libc::epoll_event;

/// Readiness bits, spelled once so every backend reports the same ones.
pub(crate) mod bits {
    pub(crate) const IN: u32 = libc::EPOLLIN as u32;
    pub(crate) const OUT: u32 = libc::EPOLLOUT as u32;
    pub(crate) const PRI: u32 = libc::EPOLLPRI as u32;
    pub(crate) const ERR: u32 = libc::EPOLLERR as u32;
    pub(crate) const HUP: u32 = libc::EPOLLHUP as u32;
    pub(crate) const RDHUP: u32 = libc::EPOLLRDHUP as u32;
}

/// Converts a timeout into whole milliseconds for `epoll_wait`, rounding
/// *up* so that a short wait never turns into a busy loop, and clamping
/// what does not fit in a `c_int` instead of wrapping. `None` is `-1`.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    let Some(t) = timeout else { return -1 };
    let ms = div_ceil(t.as_nanos(), 1_000_000);
    ms.min(libc::c_int::MAX as u128) as libc::c_int
}

/// `n / d` rounded up. (`u128::div_ceil` needs Rust 1.73; the crate's
/// minimum is 1.70.) `n` is at most `Duration::MAX` in nanoseconds, far
/// below `u128::MAX - d`, so the sum cannot overflow.
fn div_ceil(n: u128, d: u128) -> u128 {
    (n + d - 1) / d
}

/// Converts a timeout into a `timespec` for `ppoll`. Seconds beyond
/// `time_t::MAX` are clamped.
pub(crate) fn timespec(t: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as _,
    }
}

/// Converts a timeout into a `timeval` for `select`, rounding the
/// microseconds up.
pub(crate) fn timeval(t: Duration) -> libc::timeval {
    let micros = div_ceil(t.as_nanos(), 1_000);
    let secs = (micros / 1_000_000).min(libc::time_t::MAX as u128);
    libc::timeval {
        tv_sec: secs as libc::time_t,
        tv_usec: (micros % 1_000_000) as libc::suseconds_t,
    }
}

/// Reads the 8-byte counter of an eventfd or a timerfd (and resets it):
/// `None` when it was zero, or the timer had not expired.
pub(crate) fn read_counter(fd: RawFd) -> io::Result<Option<u64>> {
    let mut count: u64 = 0;
    loop {
        // SAFETY: `count` is 8 writable bytes that outlive the call.
        let res = syscall!(read(
            fd,
            (&mut count as *mut u64).cast(),
            std::mem::size_of::<u64>()
        ));
        match res {
            Ok(_) => return Ok(Some(count)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// The descriptor's status flags (`F_GETFL`): `Err` when it is not open.
pub(crate) fn status_flags(fd: RawFd) -> io::Result<libc::c_int> {
    syscall!(fcntl(fd, libc::F_GETFL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up_and_clamps() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(100))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1_001))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(7))), 7);
        assert_eq!(timeout_ms(Some(Duration::MAX)), libc::c_int::MAX);
    }

    #[test]
    fn timeval_rounds_up() {
        let tv = timeval(Duration::from_nanos(1));
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1));
        let tv = timeval(Duration::from_nanos(1_999_999_001));
        assert_eq!((tv.tv_sec, tv.tv_usec), (2, 0));
        let tv = timeval(Duration::MAX);
        assert!(tv.tv_sec > 0, "huge timeouts clamp instead of wrapping");
    }
}
