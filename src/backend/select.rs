//! `select(2)`: three fixed-size bitmaps per wait.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::time::Duration;

use super::registry::Entry;
use super::userspace::{Kernel, Userspace};
use crate::poller::delegate_poller;
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

delegate_poller!([] Select, this => &this.0);

/// Bits in one word of an `fd_set`.
const WORD_BITS: usize = libc::c_ulong::BITS as usize;

/// An `fd_set` we can index safely: glibc's and the kernel's layout, an
/// array of `unsigned long` where descriptor `d` is bit `d % WORD_BITS` of
/// word `d / WORD_BITS`. Owning the bits lets a wait copy and pass only the
/// words below `nfds` instead of all 128 bytes, with no `unsafe` FD_SET.
#[derive(Clone, Copy)]
#[repr(C)]
struct FdSet([libc::c_ulong; FD_SETSIZE / WORD_BITS]);

// The kernel reads and writes `FdSet`s through `*mut fd_set`.
const _: () = assert!(std::mem::size_of::<FdSet>() == std::mem::size_of::<libc::fd_set>());
const _: () = assert!(std::mem::align_of::<FdSet>() >= std::mem::align_of::<libc::fd_set>());

impl FdSet {
    const EMPTY: FdSet = FdSet([0; FD_SETSIZE / WORD_BITS]);

    /// Adds `fd`, which `check_fd` has put below `FD_SETSIZE`.
    fn add(&mut self, fd: RawFd) {
        let fd = fd as usize;
        self.0[fd / WORD_BITS] |= 1 << (fd % WORD_BITS);
    }

    fn has(&self, fd: RawFd) -> bool {
        let fd = fd as usize;
        self.0[fd / WORD_BITS] & (1 << (fd % WORD_BITS)) != 0
    }
}

/// The bitmaps, kept twice: `want` as built, `got` as the kernel left them
/// (select overwrites its arguments, so each attempt starts from `want`).
struct Bitmaps {
    want: [FdSet; 3],
    got: [FdSet; 3],
}

/// The kernel set: boxed bitmaps (768 bytes, which would otherwise make
/// `Select`, and every `AnyPoller`, that large), which of the three sets
/// are in use (an unused one goes to the kernel as a null pointer), the
/// waker and the armed descriptors in the order they were added.
pub(crate) struct SelectSet {
    sets: Box<Bitmaps>,
    used: [bool; 3],
    nfds: libc::c_int,
    waker: RawFd,
    fds: Vec<RawFd>,
}

const READ: usize = 0;
const WRITE: usize = 1;
const EXCEPT: usize = 2;

impl Default for SelectSet {
    fn default() -> SelectSet {
        SelectSet {
            sets: Box::new(Bitmaps {
                want: [FdSet::EMPTY; 3],
                got: [FdSet::EMPTY; 3],
            }),
            used: [false; 3],
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
        *want = [FdSet::EMPTY; 3];
        self.fds.clear();
        self.waker = waker;
        want[READ].add(waker);
        self.used = [true, false, false];
        let mut max = waker;
        for e in entries.iter().filter(|e| e.armed) {
            for (set, flag) in [
                (READ, Interest::READABLE),
                (WRITE, Interest::WRITABLE),
                (EXCEPT, Interest::PRIORITY),
            ] {
                if e.interest.contains(flag) {
                    want[set].add(e.fd);
                    self.used[set] = true;
                }
            }
            max = max.max(e.fd);
            self.fds.push(e.fd);
        }
        self.nfds = max + 1;
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let words = (self.nfds as usize + WORD_BITS - 1) / WORD_BITS;
        let Bitmaps { want, got } = &mut *self.sets;
        let mut ptrs = [ptr::null_mut::<libc::fd_set>(); 3];
        for set in [READ, WRITE, EXCEPT] {
            if self.used[set] {
                got[set].0[..words].copy_from_slice(&want[set].0[..words]);
                ptrs[set] = (&mut got[set] as *mut FdSet).cast();
            }
        }
        let mut tv = timeout.map(sys::timeval);
        let tv_ptr = tv
            .as_mut()
            .map_or(ptr::null_mut(), |t| t as *mut libc::timeval);
        // SAFETY: each set pointer is null or points to a live, writable
        // `FdSet`, laid out as an `fd_set` (asserted above); `nfds` is at
        // most FD_SETSIZE, so the kernel touches only those bits; `tv_ptr`
        // is null or points to `tv`, which outlives the call.
        let n = syscall!(select(
            self.nfds,
            ptrs[READ],
            ptrs[WRITE],
            ptrs[EXCEPT],
            tv_ptr
        ))?;
        Ok(n as usize)
    }

    #[inline]
    fn waker_ready(&self) -> bool {
        self.sets.got[READ].has(self.waker)
    }

    #[inline]
    fn len(&self) -> usize {
        self.fds.len()
    }

    #[inline]
    fn ready(&self, i: usize) -> (RawFd, u32) {
        let fd = self.fds[i];
        let got = &self.sets.got;
        let mut out = 0;
        // Only the sets handed to the kernel hold this wait's answer.
        for (set, bit) in [(READ, bits::IN), (WRITE, bits::OUT), (EXCEPT, bits::PRI)] {
            if self.used[set] && got[set].has(fd) {
                out |= bit;
            }
        }
        (fd, out)
    }

    #[inline]
    fn hits(ready: u32) -> usize {
        ready.count_ones() as usize
    }
}
