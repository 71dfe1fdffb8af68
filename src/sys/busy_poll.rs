//! Per-epoll busy polling (`EPIOCSPARAMS`/`EPIOCGPARAMS`, Linux 6.9).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::syscall;

/// The kernel's `struct epoll_params`.
pub(crate) type Params = libc::epoll_params;

/// The instance's busy-poll parameters (`EPIOCGPARAMS`).
pub(crate) fn get(epfd: BorrowedFd<'_>) -> io::Result<Params> {
    let mut params = Params {
        busy_poll_usecs: 0,
        busy_poll_budget: 0,
        prefer_busy_poll: 0,
        __pad: 0,
    };
    // SAFETY: `params` is a writable epoll_params, the size the request
    // encodes, and outlives the call.
    syscall!(ioctl(
        epfd.as_raw_fd(),
        libc::EPIOCGPARAMS,
        &mut params as *mut Params
    ))?;
    Ok(params)
}

/// Sets the instance's busy-poll parameters (`EPIOCSPARAMS`); the padding
/// must be zero.
pub(crate) fn set(epfd: BorrowedFd<'_>, params: &Params) -> io::Result<()> {
    // SAFETY: `params` is a readable epoll_params, the size the request
    // encodes, and outlives the call.
    syscall!(ioctl(
        epfd.as_raw_fd(),
        libc::EPIOCSPARAMS,
        params as *const Params
    ))
    .map(drop)
}
