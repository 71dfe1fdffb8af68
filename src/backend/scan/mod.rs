//! The user-space scanning backends: poll and select keep the registrations
//! themselves and hand the whole set to the kernel on every wait.
//!
//! [`Scanner`] is the engine they share: the registration map
//! ([`registry`]), taking turns between waiting threads, waking a blocked
//! wait when the registrations change, oneshot emulation, dropping closed
//! descriptors, and rotating the scan start so no descriptor starves. Each
//! backend only says how to build its kernel set, wait on it, and read
//! readiness back ([`ScanSet`]): [`poll`] and [`select`] are a page each.

pub(crate) mod poll;
mod registry;
pub(crate) mod select;

pub use poll::Poll;
pub use select::Select;

use std::io;
use std::os::fd::RawFd;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use registry::{Entry, Registry};

use crate::event::Event;
use crate::rules::{self, Deadline, Notifier};
use crate::sys::{self, bits};
use crate::{Backend, Capabilities, Error, Events, Interest, Mode, Op, Poller, Result, Token};

/// Readiness bit for a descriptor the kernel says is not open (`POLLNVAL`,
/// or select's `EBADF`). Outside the `EPOLL*` bits a caller ever sees.
pub(crate) const CLOSED: u32 = 1 << 31;

/// A descriptor set in the form one scanning system call takes: the part
/// of a backend that differs between poll and select.
pub(crate) trait ScanSet: Default + Send + 'static {
    /// Which backend this is.
    const BACKEND: Backend;
    /// What it can do.
    const CAPABILITIES: Capabilities;

    /// Rebuilds the set from the waker and the armed registrations.
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
    /// A thread holds the scan (the kernel set): others queue on `turn`.
    scanning: bool,
    /// How many threads queue on `turn`, so that handing the scan back
    /// costs a wake-up only when someone waits for it.
    queued: usize,
}

#[derive(Debug, Default)]
struct Scan<S> {
    set: S,
    /// Where the next scan starts, so that ready descriptors beyond the
    /// capacity of `Events` are served first next time.
    cursor: usize,
    /// The registry generation `set` was built from; while it holds, the
    /// set is reused as is (the kernel overwrites only the results).
    built: Option<u64>,
}

/// A poller built from a [`ScanSet`] and the shared bookkeeping.
#[derive(Debug)]
pub(crate) struct Scanner<S> {
    state: Mutex<State>,
    /// Signalled when the scan is handed back.
    turn: Condvar,
    /// Only ever locked by the thread whose turn it is (`State::scanning`).
    scan: Mutex<Scan<S>>,
    notifier: Notifier,
}

/// Locks a mutex, recovering it if a thread panicked while holding it: the
/// state it guards is valid between any two statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hands the scan back if a wait unwinds while holding it, so that a panic
/// in one thread never leaves the others queued forever.
struct Unwinding<'a, S>(&'a Scanner<S>);

impl<S> Drop for Unwinding<'_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(&self.0.state).scanning = false;
            self.0.turn.notify_all();
        }
    }
}

impl<S: ScanSet> Scanner<S> {
    pub(crate) fn new() -> Result<Self> {
        Ok(Scanner {
            state: Mutex::default(),
            turn: Condvar::new(),
            scan: Mutex::default(),
            notifier: Notifier::new().map_err(Error::io(Op::Create))?,
        })
    }

    pub(crate) fn waker_fd(&self) -> RawFd {
        self.notifier.fd()
    }

    /// Applies a change to the registry and, if a wait is blocked on an old
    /// snapshot, wakes it so that it re-polls with the new one.
    fn change<T>(&self, op: Op, f: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
        let mut st = lock(&self.state);
        let out = f(&mut st.registry)?;
        if st.waiting {
            self.notifier.wake().map_err(Error::io(op))?;
        }
        Ok(out)
    }

    /// Takes the kernel set for this wait, queueing until `deadline` while
    /// another thread holds it: one thread scans at a time, and the others
    /// wait here rather than inside a lock, so each returns by its own
    /// deadline (`None` if it passes first).
    fn take_turn<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Deadline,
    ) -> Option<MutexGuard<'a, State>> {
        while st.scanning {
            let left = deadline.remaining();
            if left == Some(Duration::ZERO) {
                return None;
            }
            st.queued += 1;
            st = match left {
                None => self.turn.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(left) => {
                    let (st, _) = self
                        .turn
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner());
                    st
                }
            };
            st.queued -= 1;
        }
        st.scanning = true;
        Some(st)
    }

    /// Waits on the kernel set (rebuilt when the registrations changed)
    /// until something is reported, a user notification arrives, or the
    /// deadline passes. Called and returning with the state locked.
    fn scan<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        scan: &mut Scan<S>,
        deadline: Deadline,
        events: &mut Events,
    ) -> (MutexGuard<'a, State>, Result<usize>) {
        loop {
            let generation = st.registry.generation();
            if scan.built != Some(generation) {
                scan.set.prepare(self.notifier.fd(), st.registry.entries());
                scan.built = Some(generation);
            }
            st.waiting = true;
            drop(st);
            let res = deadline.retry_eintr(deadline.remaining(), |left| scan.set.wait(left));
            st = lock(&self.state);
            st.waiting = false;
            let time_is_up = deadline.is_past();
            let hits = match res {
                Ok(hits) => hits,
                Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                    reap_closed(&mut st.registry, events);
                    if !events.is_empty() || time_is_up {
                        return (st, Ok(events.len()));
                    }
                    continue;
                }
                Err(e) => return (st, Err(Error::io(Op::Wait)(e))),
            };
            let mut user_notified = false;
            if hits > 0 {
                let mut hits = hits;
                if scan.set.waker_ready() {
                    hits -= 1;
                    if let Err(e) = self.notifier.drain() {
                        return (st, Err(Error::io(Op::Wait)(e)));
                    }
                    user_notified = self.notifier.take();
                }
                collect(scan, &mut st.registry, events, hits);
            }
            if !events.is_empty() || user_notified || time_is_up {
                return (st, Ok(events.len()));
            }
            // Woken only because the registrations changed: wait again on
            // the new set with the time that is left.
        }
    }
}

impl<S: ScanSet + std::fmt::Debug> Poller for Scanner<S> {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_register(S::CAPABILITIES, S::BACKEND, fd, token, interest, mode)?;
        rules::check_pollable(fd)?;
        self.change(Op::Register, |r| r.insert(fd, token, interest, mode))
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_modify(S::CAPABILITIES, S::BACKEND, fd, token, interest, mode)?;
        self.change(Op::Modify, |r| r.modify(fd, token, interest, mode))
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        rules::check_fd(fd)?;
        self.change(Op::Unregister, |r| r.remove(fd).map(drop))
    }

    fn capabilities(&self) -> Capabilities {
        S::CAPABILITIES
    }

    fn backend(&self) -> Backend {
        S::BACKEND
    }

    fn notify(&self) -> Result<()> {
        self.notifier.notify()
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        let deadline = Deadline::after(timeout);
        events.clear();
        let Some(st) = self.take_turn(lock(&self.state), deadline) else {
            return Ok(0);
        };
        let unwinding = Unwinding(self);
        let mut scan = lock(&self.scan);
        let (mut st, res) = self.scan(st, &mut scan, deadline, events);
        drop(scan);
        st.scanning = false;
        if st.queued > 0 {
            self.turn.notify_one();
        }
        drop(unwinding);
        res
    }
}

/// Turns the kernel's answer into events, starting at the cursor and
/// stopping when `hits` are accounted for or `events` is full.
fn collect<S: ScanSet>(
    scan: &mut Scan<S>,
    registry: &mut Registry,
    events: &mut Events,
    mut hits: usize,
) {
    let len = scan.set.len();
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
        let (fd, ready) = scan.set.ready(i);
        if ready == 0 {
            continue;
        }
        if events.is_full() {
            scan.cursor = i;
            return;
        }
        hits = hits.saturating_sub(S::hits(ready));
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
        let ready = ready & (entry.interest.readiness_mask() | bits::ERR | bits::HUP);
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
        .filter(|e| e.armed && sys::status_flags(e.fd).is_err())
        .map(|e| (e.fd, e.token))
        .collect();
    for (fd, token) in closed {
        if events.push(Event::new(token, bits::ERR | bits::HUP)) {
            let _ = registry.remove(fd);
        }
    }
}
