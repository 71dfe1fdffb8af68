//! `select(2)`: three fixed-size bitmaps per wait.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::time::Duration;

use super::registry::Entry;
use super::userspace::{userspace_poller, Kernel, Userspace};
use crate::sys::{self, bits, syscall};
use crate::{Backend, Capabilities, Error, Interest, Result};

/// The largest descriptor number plus one that select can watch.
pub const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// The select backend: registrations live in user space and become three
/// `fd_set` bitmaps (read, write, except) per wait.
///
/// Level-triggered and oneshot registrations (oneshot emulated); no edge or
/// exclusive modes. Descriptors at or above [`FD_SETSIZE`] (1024) are refused
/// with [`Error::FdOutOfRange`] at registration: writing them into an
/// `fd_set` would be undefined behaviour. Select cannot see a half-closed
/// peer (no [`Capabilities::READ_CLOSED`]): such a peer reads as readable,
/// and a socket with an error as readable and writable, as `select(2)`
/// reports them. A registration with neither readable nor writable interest
/// is therefore never reported. Timeouts have microsecond resolution.
///
/// Concurrent waits on one `Select` take turns; registrations from other
/// threads wake the waiter, which re-selects with the new set.
#[derive(Debug)]
pub struct Select(Userspace<SelectSet>);

impl Select {
    /// Creates a select backend with its wake-up eventfd.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Create`](crate::Op::Create) if the eventfd
    /// cannot be created, or [`Error::FdOutOfRange`] if it is numbered at or
    /// above [`FD_SETSIZE`] (the process already holds 1024 descriptors).
    pub fn new() -> Result<Select> {
        let inner = Userspace::new()?;
        SelectSet::check_fd(inner.waker_fd())?;
        Ok(Select(inner))
    }
}

userspace_poller!(Select);

/// The bitmaps, kept twice: `want` as built, `got` as the kernel left them
/// (select overwrites its arguments, so each attempt starts from `want`).
struct Bitmaps {
    want: [libc::fd_set; 3],
    got: [libc::fd_set; 3],
}

/// The kernel set: boxed bitmaps (768 bytes, which would otherwise make
/// `Select`, and every `AnyPoller`, that large), the waker and the armed
/// descriptors in the order they were added.
pub(crate) struct SelectSet {
    sets: Box<Bitmaps>,
    nfds: libc::c_int,
    waker: RawFd,
    fds: Vec<RawFd>,
}

const READ: usize = 0;
const WRITE: usize = 1;
const EXCEPT: usize = 2;

fn empty_set() -> libc::fd_set {
    // SAFETY: fd_set is plain bits; all-zero is the empty set (what FD_ZERO
    // writes).
    unsafe { std::mem::zeroed() }
}

impl Default for SelectSet {
    fn default() -> SelectSet {
        SelectSet {
            sets: Box::new(Bitmaps {
                want: [empty_set(); 3],
                got: [empty_set(); 3],
            }),
            nfds: 0,
            waker: -1,
            fds: Vec::new(),
        }
    }
}

impl std::fmt::Debug for SelectSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectSet")
            .field("nfds", &self.nfds)
            .field("fds", &self.fds)
            .finish_non_exhaustive()
    }
}

/// Adds `fd` to `set`. Only called with descriptors that passed
/// `check_fd`, so below `FD_SETSIZE`.
fn add(set: &mut libc::fd_set, fd: RawFd) {
    debug_assert!((0..FD_SETSIZE as RawFd).contains(&fd));
    // SAFETY: `fd` is in 0..FD_SETSIZE (checked at registration, and the
    // waker in `Select::new`), so FD_SET stays inside the bitmap.
    unsafe { libc::FD_SET(fd, set) }
}

fn has(set: &libc::fd_set, fd: RawFd) -> bool {
    // SAFETY: as in `add`, `fd` is in 0..FD_SETSIZE.
    unsafe { libc::FD_ISSET(fd, set) }
}

impl Kernel for SelectSet {
    const BACKEND: Backend = Backend::Select;
    const CAPABILITIES: Capabilities = Capabilities::ONESHOT;

    fn check_fd(fd: RawFd) -> Result<()> {
        if fd as usize >= FD_SETSIZE {
            return Err(Error::FdOutOfRange {
                fd,
                limit: FD_SETSIZE,
            });
        }
        Ok(())
    }

    fn prepare(&mut self, waker: RawFd, entries: &[Entry]) {
        let want = &mut self.sets.want;
        *want = [empty_set(); 3];
        self.fds.clear();
        self.waker = waker;
        add(&mut want[READ], waker);
        let mut max = waker;
        for e in entries.iter().filter(|e| e.armed) {
            if e.interest.contains(Interest::READABLE) {
                add(&mut want[READ], e.fd);
            }
            if e.interest.contains(Interest::WRITABLE) {
                add(&mut want[WRITE], e.fd);
            }
            if e.interest.contains(Interest::PRIORITY) {
                add(&mut want[EXCEPT], e.fd);
            }
            max = max.max(e.fd);
            self.fds.push(e.fd);
        }
        self.nfds = max + 1;
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let sets = &mut *self.sets;
        sets.got = sets.want;
        let mut tv = timeout.map(sys::timeval);
        let tv_ptr = tv
            .as_mut()
            .map_or(ptr::null_mut(), |t| t as *mut libc::timeval);
        let [r, w, x] = &mut sets.got;
        // SAFETY: the three sets are live and writable, `nfds` is at most
        // FD_SETSIZE, and `tv_ptr` is null or points to `tv`, which outlives
        // the call.
        let n = syscall!(select(self.nfds, r, w, x, tv_ptr))?;
        Ok(n as usize)
    }

    fn waker_ready(&self) -> bool {
        has(&self.sets.got[READ], self.waker)
    }

    fn len(&self) -> usize {
        self.fds.len()
    }

    fn ready(&self, i: usize) -> (RawFd, u32) {
        let fd = self.fds[i];
        let mut out = 0;
        let got = &self.sets.got;
        if has(&got[READ], fd) {
            out |= bits::IN;
        }
        if has(&got[WRITE], fd) {
            out |= bits::OUT;
        }
        if has(&got[EXCEPT], fd) {
            out |= bits::PRI;
        }
        (fd, out)
    }

    fn hits(ready: u32) -> usize {
        ready.count_ones() as usize
    }
}
