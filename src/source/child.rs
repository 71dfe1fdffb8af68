//! [`ChildExit`]: a child process as a descriptor that becomes readable
//! when it exits (`pidfd_open`), and its exit status (`waitid(P_PIDFD)`).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::OnceLock;

use crate::sys::pidfd::{self as sys, Waited};
use crate::{Error, Op, Result};

/// The exit of one child process of this process, as a source: readable
/// once the child has exited, and [`try_wait`](ChildExit::try_wait) then
/// reaps it and gives its status. No `SIGCHLD` handler, no thread per
/// child, and no race with pid reuse: the descriptor names the process,
/// not its number.
///
/// Reap a child through its `ChildExit` only: once it is reaped,
/// [`Child::wait`] (or `waitpid`) no longer finds it, and the other way
/// round.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use tripoll::source::ChildExit;
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let child = Command::new("sh").args(["-c", "exit 3"]).spawn()?;
/// let exit = ChildExit::from_child(&child)?;
/// poller.register_source(&exit, Token(9), Interest::READABLE, Mode::Level)?;
///
/// let mut events = Events::with_capacity(4);
/// let status = loop {
///     if let Some(status) = exit.try_wait()? {
///         break status;
///     }
///     poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// };
/// assert_eq!(status.code(), Some(3));
/// poller.unregister_source(&exit)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ChildExit {
    fd: OwnedFd,
    pid: libc::pid_t,
    /// Set once the child is reaped: it cannot be waited for twice.
    status: OnceLock<ExitStatus>,
}

/// Whether `pidfd_open` failing with `e` means the call is unavailable
/// here rather than a bad pid: `ENOSYS` (a kernel before 5.3) or what a
/// seccomp profile answers for a call it refuses.
fn unavailable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES | libc::EOPNOTSUPP)
    )
}

impl ChildExit {
    /// Watches the child process `pid` of this process.
    ///
    /// ```
    /// use std::process::Command;
    /// use tripoll::source::ChildExit;
    /// use tripoll::Error;
    ///
    /// let mut child = Command::new("true").spawn()?;
    /// let exit = ChildExit::new(child.id() as i32)?;
    /// assert_eq!(exit.pid(), child.id() as i32);
    ///
    /// // Our parent is not our child.
    /// let parent = std::os::unix::process::parent_id() as i32;
    /// assert!(matches!(ChildExit::new(parent), Err(Error::NotAChild { .. })));
    /// # drop(exit);
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NotAChild`]: no such process (an unused pid, or a child
    ///   already reaped), or not a child of this process.
    /// - [`Error::FeatureUnavailable`] (`"pidfd"`): `pidfd_open` or
    ///   `waitid(P_PIDFD)` is missing (Linux before 5.4) or refused by a
    ///   seccomp filter.
    /// - [`Error::Io`] with [`Op::Child`] for anything else (out of
    ///   descriptors).
    pub fn new(pid: libc::pid_t) -> Result<ChildExit> {
        if pid <= 0 {
            return Err(Error::NotAChild { pid });
        }
        let fd = sys::open(pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH | libc::EINVAL) => Error::NotAChild { pid },
            _ if unavailable(&e) => Error::FeatureUnavailable {
                feature: "pidfd",
                reason: format!("pidfd_open: {e}"),
            },
            _ => Error::io(Op::Child)(e),
        })?;
        // A peek that leaves the child waitable tells whether it is ours.
        match sys::wait(fd.as_fd(), true) {
            Ok(_) => Ok(ChildExit {
                fd,
                pid,
                status: OnceLock::new(),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Err(Error::NotAChild { pid }),
            // P_PIDFD came in Linux 5.4, a release after pidfd_open.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) || unavailable(&e) => {
                Err(Error::FeatureUnavailable {
                    feature: "pidfd",
                    reason: format!("waitid(P_PIDFD): {e}"),
                })
            }
            Err(e) => Err(Error::io(Op::Child)(e)),
        }
    }

    /// Watches a child started with [`std::process::Command`]. Reap it
    /// through this source (not [`Child::wait`]).
    ///
    /// ```
    /// use std::process::Command;
    /// use tripoll::source::ChildExit;
    ///
    /// let mut child = Command::new("sleep").arg("10").spawn()?;
    /// let exit = ChildExit::from_child(&child)?;
    /// assert_eq!(exit.try_wait()?, None); // still running
    /// child.kill()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`new`](ChildExit::new): [`Error::NotAChild`] if the child was
    /// already reaped ([`Child::wait`] returned).
    pub fn from_child(child: &Child) -> Result<ChildExit> {
        let pid = libc::pid_t::try_from(child.id()).map_err(|_| Error::NotAChild { pid: -1 })?;
        ChildExit::new(pid)
    }

    /// The child's process id.
    ///
    /// ```
    /// use std::process::Command;
    /// use tripoll::source::ChildExit;
    ///
    /// let mut child = Command::new("true").spawn()?;
    /// let exit = ChildExit::from_child(&child)?;
    /// assert_eq!(exit.pid() as u32, child.id());
    /// # drop(exit);
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The child's exit status once it has exited, without blocking; `None`
    /// while it runs. The first call after the exit reaps the child (no
    /// zombie is left); later calls give the same status.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::process::Command;
    /// use tripoll::source::ChildExit;
    ///
    /// let mut child = Command::new("sleep").arg("10").spawn()?;
    /// let exit = ChildExit::from_child(&child)?;
    /// child.kill()?; // SIGKILL
    /// let status = loop {
    ///     if let Some(s) = exit.try_wait()? {
    ///         break s;
    ///     }
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// };
    /// assert_eq!(status.signal(), Some(libc::SIGKILL));
    /// assert_eq!(exit.try_wait()?, Some(status));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotAChild`] if someone else reaped the child first (a
    /// `waitpid(-1)` elsewhere in the process, [`Child::wait`]);
    /// [`Error::Io`] with [`Op::Child`] if `waitid` fails otherwise.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.status.get() {
            return Ok(Some(*status));
        }
        match sys::wait(self.fd.as_fd(), false) {
            Ok(Waited::Running) => Ok(None),
            Ok(Waited::Exited(raw)) => {
                let status = *self.status.get_or_init(|| ExitStatus::from_raw(raw));
                Ok(Some(status))
            }
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                Err(Error::NotAChild { pid: self.pid })
            }
            Err(e) => Err(Error::io(Op::Child)(e)),
        }
    }
}

impl AsFd for ChildExit {
    /// The pidfd: readable once the child has exited.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for ChildExit {
    /// The pidfd; see [`as_fd`](ChildExit::as_fd).
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildExit")
            .field("fd", &self.fd.as_raw_fd())
            .field("pid", &self.pid)
            .field("status", &self.status.get())
            .finish()
    }
}
