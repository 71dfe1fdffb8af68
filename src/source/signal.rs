//! [`Signals`]: a set of signals received as events through a `signalfd`.
//!
//! Masks are per thread, and several users in one thread (a reactor, a
//! source the program made itself, a second reactor) may want the same
//! signal. A process-wide table counts the holders of each signal in each
//! thread: the first one blocks it, and only the last one to go restores
//! the mask it found.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use crate::sys::signal::{self as sys, SigSet};
use crate::{Error, Op, Result};

/// What one delivered signal says about itself (from the kernel's
/// `signalfd_siginfo`), as [`Signals::read`] and the reactor's signal
/// handlers get it.
///
/// ```
/// use tripoll::source::Signals;
///
/// let signals = Signals::new(&[libc::SIGRTMIN()])?;
/// // This program's one thread blocks the signal now; queue it with a value.
/// let pid = std::process::id().to_string();
/// let rt = format!("-{}", libc::SIGRTMIN());
/// std::process::Command::new("kill").args([rt.as_str(), &pid]).status()?;
/// let info = signals.read()?.expect("pending");
/// assert_eq!(info.signal, libc::SIGRTMIN());
/// assert_eq!(info.value, 0); // `kill` sends no value; `sigqueue` does
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SignalInfo {
    /// The signal number, e.g. `libc::SIGINT`.
    pub signal: libc::c_int,
    /// The process that sent it (`kill`, `raise`, `sigqueue`), 0 for the
    /// kernel; for `SIGCHLD`, the child whose state changed.
    pub pid: u32,
    /// The real user id of the sender.
    pub uid: u32,
    /// How it was sent (`si_code`: `SI_USER`, `SI_TKILL`, `SI_QUEUE`, ...;
    /// for `SIGCHLD`, `CLD_EXITED`, `CLD_KILLED`, ...).
    pub code: i32,
    /// The integer a `sigqueue` sender attached (`sival_int`, the
    /// kernel's `ssi_int`); 0 for a plain `kill`.
    pub value: i32,
    /// For `SIGCHLD`: the child's exit code or the signal that ended it.
    pub status: i32,
}

/// The holders of one signal in one thread.
struct Hold {
    thread: ThreadId,
    signal: libc::c_int,
    count: usize,
    /// The thread had the signal blocked before the first holder took it;
    /// it stays blocked after the last one goes.
    was_blocked: bool,
}

/// Every held signal of the process, by thread. A handful of entries at
/// most, so a list.
static HOLDS: Mutex<Vec<Hold>> = Mutex::new(Vec::new());

/// Locks the table. Each change is one push, removal or count update that
/// cannot panic halfway, so a poisoned lock still holds a consistent table.
fn holds() -> MutexGuard<'static, Vec<Hold>> {
    HOLDS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One more holder of `signal` in this thread; the first blocks it.
fn acquire(signal: libc::c_int) -> io::Result<()> {
    let thread = thread::current().id();
    let mut table = holds();
    if let Some(h) = table
        .iter_mut()
        .find(|h| h.thread == thread && h.signal == signal)
    {
        h.count += 1;
        return Ok(());
    }
    let was_blocked = sys::block(signal)?;
    table.push(Hold {
        thread,
        signal,
        count: 1,
        was_blocked,
    });
    Ok(())
}

/// One holder of `signal` in this thread fewer. The last one gives the
/// signal back its mask from before the first: a signal that was not
/// blocked is unblocked, after discarding pending instances the holders
/// had claimed but not read (they would otherwise be delivered with the
/// default action, which for most signals ends the process).
fn release(signal: libc::c_int) {
    let thread = thread::current().id();
    let mut table = holds();
    let Some(at) = table
        .iter()
        .position(|h| h.thread == thread && h.signal == signal)
    else {
        return;
    };
    table[at].count -= 1;
    if table[at].count > 0 {
        return;
    }
    let hold = table.swap_remove(at);
    if !hold.was_blocked {
        sys::discard_pending(signal);
        // Cannot fail: the arguments are valid.
        let _ = sys::unblock(signal);
    }
}

/// Whether `signal` may be taken as an event.
pub(crate) fn check(signal: libc::c_int) -> Result<()> {
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

/// A set of signals received as events: while it lives, its signals are
/// blocked in the thread that made it and queue on a `signalfd` instead of
/// running a handler or their default action. Register it with any
/// [`Poller`](crate::Poller) and [`read`](Signals::read) when it is
/// readable.
///
/// The mask is the calling thread's, so a `Signals` stays on the thread
/// that made it (it is not `Send`). Blocking a signal in one thread does
/// not stop the kernel from delivering a process-directed signal
/// (`kill(pid)`) to another thread that has it unblocked: block it in
/// every thread (make the `Signals` before starting any), or send to the
/// thread (`raise`, `pthread_kill`). When the last `Signals` (or reactor
/// handler) holding a signal in a thread goes, the thread's mask is what
/// it was before, and instances of the signal that arrived meanwhile and
/// were not read are discarded.
///
/// ```
/// use std::time::Duration;
/// use tripoll::source::Signals;
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let signals = Signals::new(&[libc::SIGUSR1])?;
/// poller.register_source(&signals, Token(0), Interest::READABLE, Mode::Level)?;
///
/// // This program has one thread, which now blocks SIGUSR1.
/// let pid = std::process::id().to_string();
/// std::process::Command::new("kill").args(["-USR1", &pid]).status()?;
/// let mut events = Events::with_capacity(4);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(0)));
/// let info = signals.read()?.expect("one signal");
/// assert_eq!(info.signal, libc::SIGUSR1);
/// assert_ne!(info.pid, 0); // the `kill` command's
/// assert!(signals.read()?.is_none());
/// poller.unregister_source(&signals)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Signals {
    fd: OwnedFd,
    /// The signals the signalfd reads, each held once in the table.
    mask: SigSet,
    /// The mask is per thread: not `Send`, nor `Sync`.
    _thread: PhantomData<*const ()>,
}

fn os(e: io::Error) -> Error {
    Error::io(Op::Signal)(e)
}

impl Signals {
    /// Takes `signals` (none is fine: [`add`](Signals::add) them later),
    /// blocking them in the calling thread.
    ///
    /// ```
    /// use tripoll::source::Signals;
    /// use tripoll::Error;
    ///
    /// let signals = Signals::new(&[libc::SIGINT, libc::SIGTERM])?;
    /// assert!(signals.contains(libc::SIGTERM));
    /// // SIGKILL cannot be caught, so it cannot be an event either.
    /// assert!(matches!(
    ///     Signals::new(&[libc::SIGKILL]),
    ///     Err(Error::InvalidSignal { signal: libc::SIGKILL })
    /// ));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignal`] for a signal that cannot be taken (nothing
    /// is blocked then); [`Error::Io`] with [`Op::Signal`] if the kernel
    /// refuses the `signalfd` or the mask.
    pub fn new(signals: &[libc::c_int]) -> Result<Signals> {
        for &signal in signals {
            check(signal)?;
        }
        let mut this = Signals {
            fd: sys::signalfd(&SigSet::empty()).map_err(os)?,
            mask: SigSet::empty(),
            _thread: PhantomData,
        };
        for &signal in signals {
            // On failure `this` is dropped, releasing what it took.
            this.add(signal)?;
        }
        Ok(this)
    }

    /// Adds `signal` to the set, blocking it in this thread. Adding a
    /// signal the set holds already changes nothing.
    ///
    /// ```
    /// use tripoll::source::Signals;
    ///
    /// let mut signals = Signals::new(&[])?;
    /// signals.add(libc::SIGRTMIN())?;
    /// signals.add(libc::SIGRTMIN())?;
    /// assert!(signals.contains(libc::SIGRTMIN()));
    /// assert!(signals.remove(libc::SIGRTMIN()));
    /// assert!(!signals.remove(libc::SIGRTMIN()));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`new`](Signals::new).
    pub fn add(&mut self, signal: libc::c_int) -> Result<()> {
        check(signal)?;
        if self.mask.contains(signal) {
            return Ok(());
        }
        acquire(signal).map_err(os)?;
        self.mask.add(signal);
        if let Err(e) = sys::signalfd_set_mask(self.fd.as_fd(), &self.mask) {
            self.mask.remove(signal);
            release(signal);
            return Err(os(e));
        }
        Ok(())
    }

    /// Takes `signal` out of the set and lets go of it (see the type's
    /// docs); returns whether the set held it.
    ///
    /// ```
    /// use tripoll::source::Signals;
    ///
    /// let mut signals = Signals::new(&[libc::SIGUSR2])?;
    /// assert!(signals.remove(libc::SIGUSR2));
    /// assert!(!signals.contains(libc::SIGUSR2));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    pub fn remove(&mut self, signal: libc::c_int) -> bool {
        if check(signal).is_err() || !self.mask.contains(signal) {
            return false;
        }
        self.mask.remove(signal);
        // If this fails the signalfd still lists the signal, which is
        // harmless once it is unblocked: it reads only what is pending.
        let _ = sys::signalfd_set_mask(self.fd.as_fd(), &self.mask);
        release(signal);
        true
    }

    /// Whether the set holds `signal`.
    ///
    /// ```
    /// use tripoll::source::Signals;
    ///
    /// let signals = Signals::new(&[libc::SIGHUP])?;
    /// assert!(signals.contains(libc::SIGHUP));
    /// assert!(!signals.contains(libc::SIGINT));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    pub fn contains(&self, signal: libc::c_int) -> bool {
        check(signal).is_ok() && self.mask.contains(signal)
    }

    /// Reads one pending signal without blocking; `None` when there is
    /// none. Standard signals do not queue (two `SIGINT`s before a read are
    /// one); real-time signals do, each with its [`value`](SignalInfo::value).
    ///
    /// ```
    /// use tripoll::source::Signals;
    ///
    /// let signals = Signals::new(&[libc::SIGUSR1])?;
    /// assert!(signals.read()?.is_none());
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Signal`] if the read fails.
    pub fn read(&self) -> Result<Option<SignalInfo>> {
        let info = sys::read_signalfd(self.fd.as_fd()).map_err(os)?;
        Ok(info.map(|i| SignalInfo {
            signal: i.signal,
            pid: i.pid,
            uid: i.uid,
            code: i.code,
            value: i.value,
            status: i.status,
        }))
    }

    /// The signals in the set, in increasing order.
    fn held(&self) -> Vec<libc::c_int> {
        (1..=libc::SIGRTMAX())
            .filter(|&s| self.contains(s))
            .collect()
    }
}

impl Drop for Signals {
    /// Lets go of every signal in the set (see the type's docs).
    fn drop(&mut self) {
        for signal in self.held() {
            release(signal);
        }
    }
}

impl AsFd for Signals {
    /// The `signalfd`: readable while a signal of the set is pending.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Signals {
    /// The `signalfd`; see [`as_fd`](Signals::as_fd).
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("fd", &self.fd.as_raw_fd())
            .field("signals", &self.held())
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
            libc::SIGCHLD,
            libc::SIGRTMIN(),
            libc::SIGRTMAX(),
        ] {
            assert!(check(s).is_ok(), "{s}");
        }
    }
}
