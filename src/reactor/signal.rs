//! Signals as events: the reactor's handlers, over one
//! [`source::Signals`](crate::source::Signals) (which blocks the watched
//! signals in the reactor's thread, counting holders per thread, and reads
//! them from its `signalfd`) that the poller watches like any other
//! descriptor.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::failure::{guarded, Origin};
use super::{Context, Error, Result};
use crate::source::{self, SignalInfo};

/// A signal handler.
pub(crate) type SignalFn = Box<dyn FnMut(&mut Context, SignalInfo) -> io::Result<()>>;

/// Signals read per readiness report of the signalfd; the rest wait for the
/// next turn, so a flood of queued real-time signals cannot starve I/O.
const SIGNALS_PER_TURN: usize = 64;

/// The source's errors in the reactor's terms.
fn from_source(e: crate::Error) -> Error {
    match e {
        crate::Error::InvalidSignal { signal } => Error::InvalidSignal { signal },
        crate::Error::Io { source, .. } => Error::Os {
            op: "signalfd",
            source,
        },
        other => Error::Poller(other),
    }
}

struct Slot {
    /// Out of the slot while the handler runs.
    handler: Option<SignalFn>,
    /// Tells this registration from a later one for the same signal.
    id: u64,
}

pub(crate) struct Signals {
    /// The signalfd, and the signals it holds.
    source: source::Signals,
    /// Indexed by signal number.
    slots: Vec<Option<Slot>>,
    next_id: u64,
}

impl Signals {
    pub(crate) fn new() -> Result<Signals> {
        let source = source::Signals::new(&[]).map_err(from_source)?;
        let slots = (0..=libc::SIGRTMAX()).map(|_| None).collect();
        Ok(Signals {
            source,
            slots,
            next_id: 0,
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.source.as_raw_fd()
    }

    /// Blocks `signal` in this thread and delivers it to `handler` from now
    /// on.
    pub(crate) fn add(&mut self, signal: libc::c_int, handler: SignalFn) -> Result<()> {
        source::check_signal(signal).map_err(from_source)?;
        let index = signal as usize;
        if matches!(self.slots.get(index), Some(Some(_))) {
            return Err(Error::SignalInUse { signal });
        }
        self.source.add(signal).map_err(from_source)?;
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

    /// Stops watching `signal` and lets go of it (see
    /// [`source::Signals`]). Returns
    /// `None` if it was not watched, else its handler (`None` while it runs)
    /// for the caller to drop.
    pub(crate) fn remove(&mut self, signal: libc::c_int) -> Option<Option<SignalFn>> {
        let slot = self.slots.get_mut(usize::try_from(signal).ok()?)?.take()?;
        self.source.remove(signal);
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
        self.source.read().map_err(|e| match e {
            crate::Error::Io { source, .. } => Error::Os {
                op: "read(signalfd)",
                source,
            },
            other => from_source(other),
        })
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
