//! `pidfd_open(2)` and `waitid(P_PIDFD)`: a child process as a descriptor
//! that becomes readable when it exits, and its exit status.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::syscall;

/// A close-on-exec descriptor for process `pid` (Linux 5.3).
pub(crate) fn open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // libc has no wrapper for every C library it supports; the raw call
    // takes the pid and a flags word (0: a blocking pidfd, which is what
    // poll needs; reads never happen on it).
    let fd = syscall!(syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint))?;
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: pidfd_open just returned this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a waited-for child ended, in `waitpid`'s encoding (the one
/// `ExitStatusExt::from_raw` takes).
pub(crate) type RawStatus = libc::c_int;

/// What `waitid` answered.
pub(crate) enum Waited {
    /// The child has not exited yet.
    Running,
    /// It exited (and, unless `peek`, is now reaped).
    Exited(RawStatus),
}

/// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`, leaving the child waitable
/// when `peek` (`WNOWAIT`).
pub(crate) fn wait(fd: BorrowedFd<'_>, peek: bool) -> io::Result<Waited> {
    let mut options = libc::WEXITED | libc::WNOHANG;
    if peek {
        options |= libc::WNOWAIT;
    }
    // SAFETY: siginfo_t is plain data for which all zeroes is valid; a zero
    // `si_pid` after the call is how WNOHANG says "nothing yet".
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        let id = fd.as_raw_fd() as libc::id_t;
        // SAFETY: `info` is a writable siginfo_t that outlives the call.
        match syscall!(waitid(libc::P_PIDFD, id, &mut info, options)) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // SAFETY: waitid filled `info` for a child (SIGCHLD layout) or left it
    // zeroed; both make the pid and status fields valid to read.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(Waited::Running);
    }
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // WEXITED asks for exits only; anything else is read as a plain
        // exit with the status given.
        _ => (status & 0xff) << 8,
    };
    Ok(Waited::Exited(raw))
}
