//! Signals as events: the watched signals are blocked in the reactor's
//! thread and read from a `signalfd`, which the poller watches like any
//! other descriptor.
//!
//! Masks are per thread, and several reactors (or a reactor and the code
//! around it) may want the same signal in the same thread. A process-wide
//! table counts the watchers of each signal in each thread: the first one
//! blocks it, and only the last one to go restores the mask it found.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use super::failure::{guarded, Origin};
use super::{Context, Error, Result};
use crate::sys::signal::{self as sys, SigSet};

/// A signal handler.
pub(crate) type SignalFn = Box<dyn FnMut(&mut Context, SignalInfo) -> io::Result<()>>;

/// Signals read per readiness report of the signalfd; the rest wait for the
/// next turn, so a flood of queued real-time signals cannot starve I/O.
const SIGNALS_PER_TURN: usize = 64;

/// What a signal handler learns about one delivered signal (from the
/// kernel's `signalfd_siginfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalInfo {
    /// The signal number, e.g. `libc::SIGINT`.
    pub signal: libc::c_int,
    /// The process that sent it (`kill`, `raise`, `sigqueue`), 0 for the
    /// kernel.
    pub pid: u32,
    /// The real user id of the sender.
    pub uid: u32,
    /// How it was sent (`si_code`: `SI_USER`, `SI_TKILL`, `SI_QUEUE`, ...).
    pub code: i32,
}

/// The watchers of one signal in one thread, across every reactor.
struct Watch {
    thread: ThreadId,
    signal: libc::c_int,
    count: usize,
    /// The thread had the signal blocked before the first watcher took it;
    /// it stays blocked after the last one goes.
    was_blocked: bool,
}

/// Every watched signal of the process, by thread. A handful of entries at
/// most, so a list.
static WATCHES: Mutex<Vec<Watch>> = Mutex::new(Vec::new());

/// Locks the table. Each change is one push, removal or count update that
/// cannot panic halfway, so a poisoned lock still guards a valid table.
fn watches() -> MutexGuard<'static, Vec<Watch>> {
    WATCHES.lock().unwrap_or_else(|p| p.into_inner())
}

/// One more watcher of `signal` in this thread; the first blocks it.
fn acquire(signal: libc::c_int) -> io::Result<()> {
    let thread = thread::current().id();
    let mut table = watches();
    if let Some(w) = table
        .iter_mut()
        .find(|w| w.thread == thread && w.signal == signal)
    {
        w.count += 1;
        return Ok(());
    }
    let was_blocked = sys::block(signal)?;
    table.push(Watch {
        thread,
        signal,
        count: 1,
        was_blocked,
    });
    Ok(())
}

/// One watcher of `signal` in this thread fewer. The last one gives the
/// signal back its mask from before the first: a signal that was not
/// blocked is unblocked, after discarding pending instances the watchers
/// had claimed but not read (they would otherwise be delivered with the
/// default action, which for most signals ends the process).
fn release(signal: libc::c_int) {
    let thread = thread::current().id();
    let mut table = watches();
    let Some(at) = table
        .iter()
        .position(|w| w.thread == thread && w.signal == signal)
    else {
        return;
    };
    table[at].count -= 1;
    if table[at].count > 0 {
        return;
    }
    let watch = table.swap_remove(at);
    if !watch.was_blocked {
        sys::discard_pending(signal);
        // Cannot fail: the arguments are valid.
        let _ = sys::unblock(signal);
    }
}

struct Slot {
    /// Out of the slot while the handler runs.
    handler: Option<SignalFn>,
    /// Tells this registration from a later one for the same signal.
    id: u64,
}

pub(crate) struct Signals {
    fd: OwnedFd,
    /// The signals the signalfd reads.
    mask: SigSet,
    /// Indexed by signal number.
    slots: Vec<Option<Slot>>,
    next_id: u64,
}

/// Whether the reactor may take `signal`.
fn check(signal: libc::c_int) -> Result<()> {
    let bad = signal < 1
        || signal > libc::SIGRTMAX()
        // Kept by the C library for its threads and timers.
        || (signal > libc::SIGSYS && signal < libc::SIGRTMIN())
        || matches!(
            signal,
            libc::SIGKILL
                | libc::SIGSTOP
                | libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGFPE
                | libc::SIGILL
                | libc::SIGTRAP
                | libc::SIGSYS
        );
    if bad {
        return Err(Error::InvalidSignal { signal });
    }
    Ok(())
}

fn os(op: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Os { op, source }
}

impl Signals {
    pub(crate) fn new() -> Result<Signals> {
        let mask = SigSet::empty();
        let fd = sys::signalfd(&mask).map_err(os("signalfd"))?;
        let slots = (0..=libc::SIGRTMAX()).map(|_| None).collect();
        Ok(Signals {
            fd,
            mask,
            slots,
            next_id: 0,
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Blocks `signal` in this thread and delivers it to `handler` from now
    /// on.
    pub(crate) fn add(&mut self, signal: libc::c_int, handler: SignalFn) -> Result<()> {
        check(signal)?;
        let index = signal as usize;
        if matches!(self.slots.get(index), Some(Some(_))) {
            return Err(Error::SignalInUse { signal });
        }
        acquire(signal).map_err(os("pthread_sigmask"))?;
        self.mask.add(signal);
        if let Err(e) = sys::signalfd_set_mask(self.fd.as_fd(), &self.mask) {
            self.mask.remove(signal);
            release(signal);
            return Err(os("signalfd")(e));
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(Slot {
                handler: Some(handler),
                id,
            });
        }
        Ok(())
    }

    /// Stops watching `signal` and lets go of it (see [`release`]). Returns
    /// `None` if it was not watched, else its handler (`None` while it runs)
    /// for the caller to drop.
    pub(crate) fn remove(&mut self, signal: libc::c_int) -> Option<Option<SignalFn>> {
        let slot = self.slots.get_mut(usize::try_from(signal).ok()?)?.take()?;
        self.mask.remove(signal);
        // If this fails the signalfd still lists the signal, which is
        // harmless: it reads only what is pending for this thread.
        let _ = sys::signalfd_set_mask(self.fd.as_fd(), &self.mask);
        release(signal);
        Some(slot.handler)
    }

    /// Whether `signal` has a handler.
    pub(crate) fn contains(&self, signal: libc::c_int) -> bool {
        usize::try_from(signal)
            .ok()
            .and_then(|i| self.slots.get(i))
            .is_some_and(Option::is_some)
    }

    /// Takes the handler of `signal` out to run it, with the id of its
    /// registration.
    fn take(&mut self, signal: libc::c_int) -> Option<(SignalFn, u64)> {
        let slot = self
            .slots
            .get_mut(usize::try_from(signal).ok()?)?
            .as_mut()?;
        Some((slot.handler.take()?, slot.id))
    }

    /// Puts a handler back after it ran, unless its registration was removed
    /// meanwhile: then it is given back for the caller to drop.
    fn put_back(&mut self, signal: libc::c_int, id: u64, handler: SignalFn) -> Option<SignalFn> {
        let slot = usize::try_from(signal)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::as_mut);
        match slot {
            Some(slot) if slot.id == id && slot.handler.is_none() => {
                slot.handler = Some(handler);
                None
            }
            _ => Some(handler),
        }
    }

    /// Whether the registration `id` of `signal` is still in place.
    fn is_current(&self, signal: libc::c_int, id: u64) -> bool {
        usize::try_from(signal)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .is_some_and(|s| s.id == id)
    }

    /// Reads one pending signal, `None` when there is none.
    fn read_one(&self) -> Result<Option<SignalInfo>> {
        let info = sys::read_signalfd(self.fd.as_fd()).map_err(os("read(signalfd)"))?;
        Ok(info.map(|i| SignalInfo {
            signal: i.signal,
            pid: i.pid,
            uid: i.uid,
            code: i.code,
        }))
    }

    /// Stops watching every signal, handing each handler to `drop_one`.
    pub(crate) fn clear(&mut self, mut drop_one: impl FnMut(libc::c_int, Option<SignalFn>)) {
        for signal in 0..self.slots.len() as libc::c_int {
            if let Some(handler) = self.remove(signal) {
                drop_one(signal, handler);
            }
        }
    }
}

impl Context {
    /// Reads the pending signals (up to [`SIGNALS_PER_TURN`]) and runs their
    /// handlers. A handler that fails stops watching its signal and is
    /// reported. Returns how many handlers ran.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] if the signalfd cannot be read.
    pub(crate) fn dispatch_signals(&mut self) -> Result<usize> {
        let mut ran = 0;
        for _ in 0..SIGNALS_PER_TURN {
            let Some(signals) = self.signals.as_mut() else {
                break;
            };
            let Some(info) = signals.read_one()? else {
                break;
            };
            // Read but no longer watched (removed since it was raised).
            let Some((mut handler, id)) = signals.take(info.signal) else {
                continue;
            };
            ran += 1;
            let signal = info.signal;
            let origin = Origin::Signal(signal);
            match guarded(origin, || handler(self, info)) {
                Ok(()) => {
                    let leftover = match self.signals.as_mut() {
                        Some(signals) => signals.put_back(signal, id, handler),
                        None => Some(handler),
                    };
                    self.drop_guarded(origin, leftover);
                }
                Err(failure) => {
                    self.fail(failure);
                    if let Some(signals) = self.signals.as_mut() {
                        if signals.is_current(signal, id) {
                            let slot = signals.remove(signal);
                            self.drop_guarded(origin, slot);
                        }
                    }
                    self.drop_guarded(origin, handler);
                }
            }
        }
        Ok(ran)
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watched: Vec<libc::c_int> = (0..self.slots.len() as libc::c_int)
            .filter(|s| self.contains(*s))
            .collect();
        f.debug_struct("Signals")
            .field("fd", &self.fd())
            .field("watched", &watched)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_signals_it_must_not_take() {
        for s in [
            0,
            -1,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
            libc::SIGRTMAX() + 1,
            1000,
        ] {
            assert!(
                matches!(check(s), Err(Error::InvalidSignal { signal }) if signal == s),
                "{s}"
            );
        }
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGHUP,
            libc::SIGRTMIN(),
            libc::SIGRTMAX(),
        ] {
            assert!(check(s).is_ok(), "{s}");
        }
    }
}
