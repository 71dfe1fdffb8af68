//! `ppoll(2)`: the whole descriptor array per call.

use std::io;
use std::ptr;
use std::time::Duration;

use super::{syscall, timespec};

pub(crate) use libc::pollfd as PollFd;

/// One `ppoll` over `fds` with nanosecond timeout resolution; returns the
/// number of entries with a non-zero `revents`.
pub(crate) fn ppoll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a live, writable slice of `len` pollfds; `ts_ptr` is
    // null or points to `ts`, which outlives the call; no signal mask.
    let n = syscall!(ppoll(
        fds.as_mut_ptr(),
        fds.len() as libc::nfds_t,
        ts_ptr,
        ptr::null()
    ))?;
    Ok(n as usize)
}
