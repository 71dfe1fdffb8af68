//! Signals as events: the watched signals are blocked in the reactor's
//! thread and read from a `signalfd`, which the poller watches like any
//! other descriptor.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{Error, Result, SignalFn};
use crate::sys::syscall;
use crate::Poller;

/// What a signal handler learns about one delivered signal (from the
/// kernel's `signalfd_siginfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

struct Slot<P: Poller> {
    /// Out of the slot while the handler runs.
    handler: Option<SignalFn<P>>,
    /// Tells this registration from a later one for the same signal.
    id: u64,
    /// The signal was already blocked in this thread before the reactor
    /// took it; it stays blocked afterwards.
    was_blocked: bool,
}

pub(crate) struct Signals<P: Poller> {
    fd: OwnedFd,
    /// The signals the signalfd reads.
    mask: libc::sigset_t,
    /// Indexed by signal number.
    slots: Vec<Option<Slot<P>>>,
    next_id: u64,
}

fn empty_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set it is given.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn set_of(signal: libc::c_int) -> libc::sigset_t {
    let mut set = empty_set();
    // SAFETY: `set` is an initialised sigset_t and `signal` was checked to be
    // in range, so sigaddset cannot fail.
    unsafe { libc::sigaddset(&mut set, signal) };
    set
}

/// `pthread_sigmask`, which reports failure through its return value.
fn thread_mask(how: libc::c_int, set: &libc::sigset_t) -> io::Result<libc::sigset_t> {
    let mut old = empty_set();
    // SAFETY: both pointers are to valid, initialised sigset_t values.
    let rc = unsafe { libc::pthread_sigmask(how, set, &mut old) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(old)
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

/// Consumes every pending instance of `signal` (which must be blocked), so
/// that unblocking it does not deliver one the reactor had already claimed.
fn discard_pending(signal: libc::c_int) {
    let set = set_of(signal);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Real-time signals queue; a bound keeps a sender in a loop from holding
    // us here.
    for _ in 0..4096 {
        // SAFETY: `set` and `zero` are valid; a null siginfo is allowed.
        match syscall!(sigtimedwait(&set, std::ptr::null_mut(), &zero)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

impl<P: Poller> Signals<P> {
    pub(crate) fn new() -> Result<Signals<P>> {
        let mask = empty_set();
        let fd = syscall!(signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)).map_err(
            |source| Error::Os {
                op: "signalfd",
                source,
            },
        )?;
        // SAFETY: signalfd just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
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

    /// Points the signalfd at the current mask.
    fn update_fd(&self) -> io::Result<()> {
        syscall!(signalfd(
            self.fd.as_raw_fd(),
            &self.mask,
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC
        ))?;
        Ok(())
    }

    /// Blocks `signal` in this thread and delivers it to `handler` from now
    /// on.
    pub(crate) fn add(&mut self, signal: libc::c_int, handler: SignalFn<P>) -> Result<()> {
        check(signal)?;
        let index = signal as usize;
        if matches!(self.slots.get(index), Some(Some(_))) {
            return Err(Error::SignalInUse { signal });
        }
        let os = |op| move |source| Error::Os { op, source };
        let old = thread_mask(libc::SIG_BLOCK, &set_of(signal)).map_err(os("pthread_sigmask"))?;
        // SAFETY: `old` is an initialised sigset_t and `signal` is in range.
        let was_blocked = unsafe { libc::sigismember(&old, signal) } == 1;
        // SAFETY: `self.mask` is initialised and `signal` is in range.
        unsafe { libc::sigaddset(&mut self.mask, signal) };
        if let Err(e) = self.update_fd() {
            // SAFETY: as above.
            unsafe { libc::sigdelset(&mut self.mask, signal) };
            restore(signal, was_blocked);
            return Err(os("signalfd")(e));
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(Slot {
                handler: Some(handler),
                id,
                was_blocked,
            });
        }
        Ok(())
    }

    /// Stops watching `signal` and restores its mask. Returns `None` if it
    /// was not watched, else its handler (`None` while it runs) for the
    /// caller to drop.
    pub(crate) fn remove(&mut self, signal: libc::c_int) -> Option<Option<SignalFn<P>>> {
        let slot = self.slots.get_mut(usize::try_from(signal).ok()?)?.take()?;
        // SAFETY: `self.mask` is initialised and `signal` was in range when added.
        unsafe { libc::sigdelset(&mut self.mask, signal) };
        // If this fails the signalfd still lists the signal, which is
        // harmless: once unblocked below it is never pending for it to read.
        let _ = self.update_fd();
        restore(signal, slot.was_blocked);
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
    pub(crate) fn take(&mut self, signal: libc::c_int) -> Option<(SignalFn<P>, u64)> {
        let slot = self
            .slots
            .get_mut(usize::try_from(signal).ok()?)?
            .as_mut()?;
        Some((slot.handler.take()?, slot.id))
    }

    /// Puts a handler back after it ran, unless its registration was removed
    /// meanwhile: then it is given back for the caller to drop.
    pub(crate) fn put_back(
        &mut self,
        signal: libc::c_int,
        id: u64,
        handler: SignalFn<P>,
    ) -> Option<SignalFn<P>> {
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
    pub(crate) fn is_current(&self, signal: libc::c_int, id: u64) -> bool {
        usize::try_from(signal)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .is_some_and(|s| s.id == id)
    }

    /// Reads one pending signal, `None` when there is none.
    pub(crate) fn read_one(&self) -> Result<Option<SignalInfo>> {
        // SAFETY: signalfd_siginfo is plain integers, for which all zeroes is
        // a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: `info` is a writable buffer of exactly `size` bytes.
            let res = syscall!(read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size
            ));
            match res {
                Ok(n) if n as usize == size => break,
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(source) => {
                    return Err(Error::Os {
                        op: "read(signalfd)",
                        source,
                    })
                }
            }
        }
        Ok(Some(SignalInfo {
            signal: info.ssi_signo as libc::c_int,
            pid: info.ssi_pid,
            uid: info.ssi_uid,
            code: info.ssi_code,
        }))
    }

    /// Stops watching every signal, handing each handler to `drop_one`.
    pub(crate) fn clear(&mut self, mut drop_one: impl FnMut(Option<SignalFn<P>>)) {
        for signal in 0..self.slots.len() as libc::c_int {
            if let Some(handler) = self.remove(signal) {
                drop_one(handler);
            }
        }
    }
}

/// Gives `signal` back its mask from before the reactor took it: a signal
/// that was not blocked is unblocked, after discarding pending instances
/// the reactor had claimed but not read.
fn restore(signal: libc::c_int, was_blocked: bool) {
    if was_blocked {
        return;
    }
    discard_pending(signal);
    // Cannot fail: the arguments are valid.
    let _ = thread_mask(libc::SIG_UNBLOCK, &set_of(signal));
}

impl<P: Poller> fmt::Debug for Signals<P> {
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
