//! `select(2)`: three fixed-size bitmaps per wait.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::registry::Entry;
use super::{ScanSet, Scanner};
use crate::rules;
use crate::sys::bits;
use crate::sys::select::{select, FdSet};
use crate::{Backend, Capabilities, Events, Interest, Mode, Poller, Result, Token};

/// The largest descriptor number plus one that select can watch.
pub const FD_SETSIZE: usize = crate::sys::select::FD_SETSIZE;

/// The select backend: registrations live in user space and become three
/// `fd_set` bitmaps (read, write, except) per wait.
///
/// Level-triggered and oneshot registrations (oneshot emulated); no edge or
/// exclusive modes. Descriptors at or above [`FD_SETSIZE`] (1024) are refused
/// with [`Error::FdOutOfRange`](crate::Error::FdOutOfRange) at registration: writing them into an
/// `fd_set` would be undefined behaviour. Select cannot see a half-closed
/// peer (no [`Capabilities::READ_CLOSED`]): such a peer reads as readable,
/// and a socket with an error as readable and writable, as `select(2)`
/// reports them. A registration with neither readable nor writable interest
/// is therefore never reported. Timeouts have microsecond resolution.
///
/// Concurrent waits on one `Select` take turns, each returning by its own
/// deadline; registrations from other threads wake the waiter, which
/// re-selects with the new set.
///
/// `Select` has no `AsFd`: its set lives in user space, so there is no kernel
/// object that becomes readable when a wait would report (its wake-up
/// eventfd only tells of [`notify`](crate::Poller::notify)). To nest one in
/// another event loop, run its waits on a thread of their own that
/// notifies the outer loop, or use [`Epoll`](crate::Epoll).
///
/// ```
/// use tripoll::{Error, Events, Interest, Mode, Poller, Select, Token};
/// use std::os::fd::AsRawFd;
///
/// let poller = Select::new()?;
/// // Numbers at or above 1024 do not fit in an `fd_set`.
/// assert!(matches!(
///     poller.register(4096, Token(1), Interest::READABLE, Mode::Level),
///     Err(Error::FdOutOfRange { fd: 4096, limit: 1024 })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Select(Scanner<SelectSet>);

impl Select {
    /// Creates a select backend with its wake-up eventfd.
    ///
    /// ```
    /// use tripoll::{Backend, Mode, Poller, Select};
    ///
    /// let poller = Select::new()?;
    /// assert_eq!(poller.backend(), Backend::Select);
    /// assert!(poller.supports(Mode::Level) && !poller.supports(Mode::Edge));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) with [`Op::Create`](crate::Op::Create) if the eventfd
    /// cannot be created, or [`Error::FdOutOfRange`](crate::Error::FdOutOfRange) if it is numbered at or
    /// above [`FD_SETSIZE`] (the process already holds 1024 descriptors).
    pub fn new() -> Result<Select> {
        let inner = Scanner::<SelectSet>::new()?;
        // The waker goes into the read set too, so it obeys the same limit.
        rules::check_register(
            SelectSet::CAPABILITIES,
            Backend::Select,
            inner.waker_fd(),
            crate::Token(0),
            Interest::READABLE,
            crate::Mode::Level,
        )?;
        Ok(Select(inner))
    }
}

/// Every call goes to the scanning engine, which does the work for poll
/// and select alike.
impl Poller for Select {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.0.register(fd, token, interest, mode)
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        self.0.modify(fd, token, interest, mode)
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        self.0.unregister(fd)
    }

    #[inline]
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        self.0.wait(events, timeout)
    }

    fn notify(&self) -> Result<()> {
        self.0.notify()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn backend(&self) -> Backend {
        self.0.backend()
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

impl ScanSet for SelectSet {
    const BACKEND: Backend = Backend::Select;
    const CAPABILITIES: Capabilities = Capabilities::ONESHOT;

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
        let nfds = self.nfds as usize;
        let Bitmaps { want, got } = &mut *self.sets;
        // Each attempt starts from the set as built; an unused set goes to
        // the kernel as null.
        let mut pass = [None, None, None];
        for (set, (got, want)) in got.iter_mut().zip(want.iter()).enumerate() {
            if self.used[set] {
                got.copy_below(want, nfds);
                pass[set] = Some(got);
            }
        }
        let [read, write, except] = pass;
        select(nfds, read, write, except, timeout)
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
