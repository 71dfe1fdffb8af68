//! `epoll(7)`: create, control, wait.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{syscall, timeout_ms, timespec, RawEvent};

/// The kernel's limit on the events one `epoll_wait` may ask for
/// (`EP_MAX_EVENTS`, `INT_MAX / sizeof(struct epoll_event)`); more is
/// `EINVAL`.
pub(crate) const MAX_EVENTS: usize = libc::c_int::MAX as usize / std::mem::size_of::<RawEvent>();

/// `epoll_ctl` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctl {
    Add,
    Modify,
    Delete,
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub(crate) fn create() -> io::Result<OwnedFd> {
    let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    // SAFETY: epoll_create1 just returned this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `epoll_ctl(epfd, op, fd, {events, data})`.
pub(crate) fn ctl(
    epfd: BorrowedFd<'_>,
    op: Ctl,
    fd: RawFd,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let op = match op {
        Ctl::Add => libc::EPOLL_CTL_ADD,
        Ctl::Modify => libc::EPOLL_CTL_MOD,
        Ctl::Delete => libc::EPOLL_CTL_DEL,
    };
    let mut ev = RawEvent { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event that outlives the call; the kernel
    // copies it (and ignores it for a delete).
    syscall!(epoll_ctl(epfd.as_raw_fd(), op, fd, &mut ev))?;
    Ok(())
}

/// Whether `epoll_pwait2` (Linux 5.11) may be tried. Cleared for good the
/// first time the kernel, or a seccomp filter in front of it, refuses it.
static HAVE_PWAIT2: AtomicBool = AtomicBool::new(true);

/// Whether an `epoll_pwait2` error means "not available here" rather than a
/// failed wait: `ENOSYS` from an old kernel, `EPERM` or `ENOTSUP` from a
/// seccomp profile that refuses syscalls it does not know.
fn pwait2_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)
    )
}

/// One wait into `buf`'s capacity (its previous contents are dropped; it
/// ends holding what the kernel wrote), returning how many it wrote. A timeout that is not a whole number of
/// milliseconds goes through `epoll_pwait2`, which takes a `timespec`, so
/// that a timer due in 1.2 ms wakes after 1.2 ms rather than 2; blocking,
/// zero and whole-millisecond timeouts (the hot path) use plain
/// `epoll_wait`. Where `epoll_pwait2` is refused, the timeout is rounded up
/// to whole milliseconds instead, from then on.
#[inline]
pub(crate) fn wait(
    epfd: BorrowedFd<'_>,
    buf: &mut Vec<RawEvent>,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    buf.clear();
    let max = buf.capacity().min(MAX_EVENTS) as libc::c_int;
    let out = buf.as_mut_ptr();
    let epfd = epfd.as_raw_fd();
    if let Some(t) = timeout {
        if t.subsec_nanos() % 1_000_000 != 0 && HAVE_PWAIT2.load(Ordering::Relaxed) {
            let ts = timespec(t);
            // SAFETY: `out` has room for `max` ≤ capacity events of `buf`,
            // borrowed mutably for the whole call; `ts` outlives the call; a
            // null signal mask means none is set.
            let res = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    out,
                    max,
                    &ts as *const libc::timespec,
                    ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if res >= 0 {
                // SAFETY: the kernel initialised the first `res` ≤ `max` entries.
                unsafe { buf.set_len(res as usize) };
                return Ok(res as usize);
            }
            let err = io::Error::last_os_error();
            if !pwait2_refused(&err) {
                return Err(err);
            }
            HAVE_PWAIT2.store(false, Ordering::Relaxed);
        }
    }
    // SAFETY: as above, `out` has room for `max` events.
    let n = syscall!(epoll_wait(epfd, out, max, timeout_ms(timeout)))? as usize;
    // SAFETY: the kernel initialised the first `n` ≤ `max` entries.
    unsafe { buf.set_len(n) };
    Ok(n)
}
