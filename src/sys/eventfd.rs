//! `eventfd(2)`: the counter a blocked wait sleeps on, so that another
//! thread can wake it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::syscall;

/// A non-blocking, close-on-exec eventfd: readable while its counter is
/// above zero.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        // SAFETY: eventfd just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Adds one to the counter, making the descriptor readable.
    pub(crate) fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        loop {
            // SAFETY: `one` is 8 readable bytes that outlive the call.
            let res = syscall!(write(
                self.fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>()
            ));
            match res {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The counter is at its maximum: empty it and add again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drain()?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads and resets the counter: `None` when it was zero.
    pub(crate) fn take(&self) -> io::Result<Option<u64>> {
        super::read_counter(self.fd())
    }

    /// A second handle on the same counter (`dup`).
    pub(crate) fn try_clone(&self) -> io::Result<EventFd> {
        Ok(EventFd {
            fd: self.fd.try_clone()?,
        })
    }

    /// The counter's descriptor.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resets the counter to zero, making the descriptor unreadable.
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut count: u64 = 0;
        // SAFETY: `count` is 8 writable bytes that outlive the call.
        let res = syscall!(read(
            self.fd(),
            (&mut count as *mut u64).cast(),
            std::mem::size_of::<u64>()
        ));
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        syscall!(poll(&mut pfd, 1, 0)).unwrap() == 1
    }

    #[test]
    fn becomes_readable_and_drains() {
        let w = EventFd::new().unwrap();
        assert!(!readable(w.fd()));
        w.wake().unwrap();
        w.wake().unwrap();
        assert!(readable(w.fd()));
        w.drain().unwrap();
        assert!(!readable(w.fd()));
    }
}
