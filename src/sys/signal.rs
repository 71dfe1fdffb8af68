//! Signal masks and `signalfd`, as safe functions for
//! [`Signals`](crate::source::Signals).
//!
//! Everything here works on the calling thread's mask: `pthread_sigmask`
//! changes one thread, and a `signalfd` reads the signals pending for the
//! thread that reads it (and for the process).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::syscall;

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub(crate) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The empty set.
    pub(crate) fn empty() -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set it is given, and
        // cannot fail for a valid pointer.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            SigSet(set.assume_init())
        }
    }

    /// The set holding only `signal`.
    pub(crate) fn of(signal: libc::c_int) -> SigSet {
        let mut set = SigSet::empty();
        set.add(signal);
        set
    }

    /// Adds `signal`; a number out of range is ignored (sigaddset refuses
    /// it with `EINVAL` and leaves the set unchanged).
    pub(crate) fn add(&mut self, signal: libc::c_int) {
        // SAFETY: `self.0` is an initialised sigset_t.
        unsafe { libc::sigaddset(&mut self.0, signal) };
    }

    /// Removes `signal`; a number out of range is ignored.
    pub(crate) fn remove(&mut self, signal: libc::c_int) {
        // SAFETY: `self.0` is an initialised sigset_t.
        unsafe { libc::sigdelset(&mut self.0, signal) };
    }

    /// Whether `signal` is in the set.
    pub(crate) fn contains(&self, signal: libc::c_int) -> bool {
        // SAFETY: `self.0` is an initialised sigset_t.
        unsafe { libc::sigismember(&self.0, signal) == 1 }
    }
}

/// `pthread_sigmask(how, set)`, returning the previous mask.
fn thread_mask(how: libc::c_int, set: &SigSet) -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: both pointers are to valid, initialised sigset_t values.
    let rc = unsafe { libc::pthread_sigmask(how, &set.0, &mut old.0) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(old)
}

/// Blocks `signal` in the calling thread; returns whether it was blocked
/// already.
pub(crate) fn block(signal: libc::c_int) -> io::Result<bool> {
    let old = thread_mask(libc::SIG_BLOCK, &SigSet::of(signal))?;
    Ok(old.contains(signal))
}

/// Unblocks `signal` in the calling thread.
pub(crate) fn unblock(signal: libc::c_int) -> io::Result<()> {
    thread_mask(libc::SIG_UNBLOCK, &SigSet::of(signal)).map(drop)
}

/// Consumes every pending instance of `signal` (which must be blocked), so
/// that unblocking it does not deliver one that was already claimed.
pub(crate) fn discard_pending(signal: libc::c_int) {
    let set = SigSet::of(signal);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Real-time signals queue; a bound keeps a sender in a loop from holding
    // us here.
    for _ in 0..4096 {
        // SAFETY: `set` and `zero` are valid; a null siginfo is allowed.
        match syscall!(sigtimedwait(&set.0, std::ptr::null_mut(), &zero)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A new non-blocking, close-on-exec `signalfd` reading `mask`.
pub(crate) fn signalfd(mask: &SigSet) -> io::Result<OwnedFd> {
    let fd = syscall!(signalfd(
        -1,
        &mask.0,
        libc::SFD_NONBLOCK | libc::SFD_CLOEXEC
    ))?;
    // SAFETY: signalfd just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Points an existing `signalfd` at `mask`.
pub(crate) fn signalfd_set_mask(fd: BorrowedFd<'_>, mask: &SigSet) -> io::Result<()> {
    syscall!(signalfd(
        fd.as_raw_fd(),
        &mask.0,
        libc::SFD_NONBLOCK | libc::SFD_CLOEXEC
    ))
    .map(drop)
}

/// One record read from a `signalfd` (the fields of `signalfd_siginfo` the
/// reactor reports).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SigInfo {
    pub(crate) signal: libc::c_int,
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) code: i32,
    pub(crate) value: i32,
    pub(crate) status: i32,
}

/// Reads one pending signal from a non-blocking `signalfd`; `None` when
/// there is none.
pub(crate) fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<Option<SigInfo>> {
    // SAFETY: signalfd_siginfo is plain integers, for which all zeroes is a
    // valid value.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: `info` is a writable buffer of exactly `size` bytes.
        let res = syscall!(read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size
        ));
        match res {
            Ok(n) if n as usize == size => break,
            // The kernel reads whole records or nothing.
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(SigInfo {
        signal: info.ssi_signo as libc::c_int,
        pid: info.ssi_pid,
        uid: info.ssi_uid,
        code: info.ssi_code,
        value: info.ssi_int,
        status: info.ssi_status,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_hold_what_was_added() {
        let mut set = SigSet::empty();
        assert!(!set.contains(libc::SIGUSR1));
        set.add(libc::SIGUSR1);
        assert!(set.contains(libc::SIGUSR1));
        assert!(!set.contains(libc::SIGUSR2));
        set.remove(libc::SIGUSR1);
        assert!(!set.contains(libc::SIGUSR1));
        set.add(100_000); // out of range: ignored
        assert!(!set.contains(100_000));
    }
}
