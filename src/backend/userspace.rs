//! What poll and select have in common: the registration map, the wake-up
//! protocol with other threads, oneshot emulation, dropping closed
//! descriptors, and rotating the scan start so no descriptor starves.
//!
//! A backend only says how to turn registrations into its kernel set, how
//! to wait on that set, and how to read readiness back ([`Kernel`]).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::registry::{Entry, Registry};
use crate::event::Event;
use crate::sys::{self, bits, Deadline, Waker};
use crate::{Backend, Capabilities, Error, Events, Interest, Mode, Op, Poller, Result, Token};

/// Readiness bit for a descriptor the kernel says is not open (`POLLNVAL`,
/// or select's `EBADF`). Outside the `EPOLL*` bits a caller ever sees.
pub(crate) const CLOSED: u32 = 1 << 31;

/// The part of a backend that differs between poll and select.
pub(crate) trait Kernel: Default + Send + 'static {
    /// Which backend this is.
    const BACKEND: Backend;
    /// What it can do.
    const CAPABILITIES: Capabilities;

    /// Refuses a descriptor this kernel interface cannot take.
    fn check_fd(fd: RawFd) -> Result<()>;

    /// Rebuilds the kernel set from the waker and the armed registrations.
    fn prepare(&mut self, waker: RawFd, entries: &[Entry]);

    /// Waits on the prepared set; returns the kernel's count of hits.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize>;

    /// Whether the waker was among the hits.
    fn waker_ready(&self) -> bool;

    /// How many descriptors the prepared set holds, the waker excluded.
    fn len(&self) -> usize;

    /// The descriptor at `i` (in `0..len()`) and its readiness as `EPOLL*`
    /// bits (plus [`CLOSED`]).
    fn ready(&self, i: usize) -> (RawFd, u32);

    /// How many of the kernel's hits one readiness value accounts for
    /// (select counts each set separately).
    fn hits(ready: u32) -> usize;
}

#[derive(Debug, Default)]
struct State {
    registry: Registry,
    /// A thread is inside the kernel wait with a snapshot of `registry`.
    waiting: bool,
}

#[derive(Debug, Default)]
struct Scan<K> {
    kernel: K,
    /// Where the next scan starts, so that ready descriptors beyond the
    /// capacity of `Events` are served first next time.
    cursor: usize,
    /// The registry generation `kernel` was built from; while it holds, the
    /// set is reused as is (the kernel overwrites only the results).
    built: Option<u64>,
}

/// A poller built from a [`Kernel`] and the shared bookkeeping.
#[derive(Debug)]
pub(crate) struct Userspace<K> {
    state: Mutex<State>,
    /// Held for the whole of a wait: concurrent waits take turns.
    scan: Mutex<Scan<K>>,
    waker: Waker,
    /// A user [`notify`](Userspace::notify) is pending.
    notified: AtomicBool,
}

/// Locks a mutex, recovering it if a thread panicked while holding it: the
/// state it guards is valid between any two statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<K: Kernel> Userspace<K> {
    pub(crate) fn new() -> Result<Self> {
        Ok(Userspace {
            state: Mutex::default(),
            scan: Mutex::default(),
            waker: Waker::new().map_err(Error::io(Op::Create))?,
            notified: AtomicBool::new(false),
        })
    }

    fn check(fd: RawFd, token: Token, mode: Mode) -> Result<()> {
        if !K::CAPABILITIES.contains(mode.requires()) {
            return Err(Error::Unsupported {
                backend: K::BACKEND,
                mode,
            });
        }
        if fd < 0 {
            return Err(Error::InvalidFd { fd });
        }
        K::check_fd(fd)?;
        if token == Token::RESERVED {
            return Err(Error::ReservedToken(token));
        }
        Ok(())
    }

    /// Applies a change to the registry and, if a wait is blocked on an old
    /// snapshot, wakes it so that it re-polls with the new one.
    fn change<T>(&self, op: Op, f: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
        let mut st = lock(&self.state);
        let out = f(&mut st.registry)?;
        if st.waiting {
            self.waker.wake().map_err(Error::io(op))?;
        }
        Ok(out)
    }

    pub(crate) fn waker_fd(&self) -> RawFd {
        self.waker.fd()
    }
}

impl<K: Kernel + std::fmt::Debug> Poller for Userspace<K> {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        Self::check(fd, token, mode)?;
        if !sys::fd_is_open(fd) {
            return Err(Error::InvalidFd { fd });
        }
        self.change(Op::Register, |r| r.insert(fd, token, interest, mode))
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        Self::check(fd, token, mode)?;
        self.change(Op::Modify, |r| r.modify(fd, token, interest, mode))
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        if fd < 0 {
            return Err(Error::InvalidFd { fd });
        }
        self.change(Op::Unregister, |r| r.remove(fd).map(drop))
    }

    fn capabilities(&self) -> Capabilities {
        K::CAPABILITIES
    }

    fn backend(&self) -> Backend {
        K::BACKEND
    }

    fn notify(&self) -> Result<()> {
        if self.notified.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.waker.wake().map_err(|e| {
            self.notified.store(false, Ordering::Release);
            Error::io(Op::Notify)(e)
        })
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        let mut scan = lock(&self.scan);
        let scan = &mut *scan;
        let deadline = Deadline::after(timeout);
        events.clear();
        loop {
            {
                let mut st = lock(&self.state);
                let generation = st.registry.generation();
                if scan.built != Some(generation) {
                    scan.kernel.prepare(self.waker.fd(), st.registry.entries());
                    scan.built = Some(generation);
                }
                st.waiting = true;
            }
            let res = scan.kernel.wait(deadline.remaining());
            let mut st = lock(&self.state);
            st.waiting = false;
            let time_is_up = deadline.remaining() == Some(Duration::ZERO);
            let hits = match res {
                Ok(hits) => hits,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if time_is_up {
                        return Ok(0);
                    }
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                    reap_closed(&mut st.registry, events);
                    if !events.is_empty() || time_is_up {
                        return Ok(events.len());
                    }
                    continue;
                }
                Err(e) => return Err(Error::io(Op::Wait)(e)),
            };
            let mut user_notified = false;
            let mut hits = hits;
            if scan.kernel.waker_ready() {
                hits = hits.saturating_sub(1);
                self.waker.drain().map_err(Error::io(Op::Wait))?;
                user_notified = self.notified.swap(false, Ordering::AcqRel);
            }
            collect(scan, &mut st.registry, events, hits);
            if !events.is_empty() || user_notified || time_is_up {
                return Ok(events.len());
            }
            // Woken only because the registrations changed: wait again on
            // the new set with the time that is left.
        }
    }
}

/// Turns the kernel's answer into events, starting at the cursor and
/// stopping when `hits` are accounted for or `events` is full.
fn collect<K: Kernel>(
    scan: &mut Scan<K>,
    registry: &mut Registry,
    events: &mut Events,
    mut hits: usize,
) {
    let len = scan.kernel.len();
    if len == 0 {
        return;
    }
    let start = scan.cursor % len;
    scan.cursor = start;
    let mut next = start;
    for _ in 0..len {
        if hits == 0 {
            return;
        }
        // A wrapping index rather than a chained iterator: this loop runs
        // once per registered descriptor per wait, and stays branch-light.
        let i = next;
        next += 1;
        if next == len {
            next = 0;
        }
        let (fd, ready) = scan.kernel.ready(i);
        if ready == 0 {
            continue;
        }
        if events.is_full() {
            scan.cursor = i;
            return;
        }
        hits = hits.saturating_sub(K::hits(ready));
        // The registration may have changed or gone while we waited.
        let Some(entry) = registry.get(fd) else {
            continue;
        };
        if ready & CLOSED != 0 {
            events.push(Event::new(entry.token, bits::ERR | bits::HUP));
            let _ = registry.remove(fd);
            continue;
        }
        if !entry.armed {
            continue;
        }
        let ready = ready & (entry.interest.epoll_bits() | bits::ERR | bits::HUP);
        if ready == 0 {
            continue;
        }
        events.push(Event::new(entry.token, ready));
        if entry.mode.is_oneshot() {
            registry.disarm(fd);
        }
    }
}

/// After a wait failed with `EBADF`: reports each armed registration whose
/// descriptor is no longer open as an error event, once, and drops it. A
/// disarmed oneshot registration was not in the kernel set and reports
/// nothing until re-armed, as with poll.
fn reap_closed(registry: &mut Registry, events: &mut Events) {
    let closed: Vec<(RawFd, Token)> = registry
        .entries()
        .iter()
        .filter(|e| e.armed && !sys::fd_is_open(e.fd))
        .map(|e| (e.fd, e.token))
        .collect();
    for (fd, token) in closed {
        if events.push(Event::new(token, bits::ERR | bits::HUP)) {
            let _ = registry.remove(fd);
        }
    }
}
