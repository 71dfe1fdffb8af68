//! The backend's bookkeeping: the registrations by descriptor number, and
//! what a wait does with each completion and report (the checks' part is in
//! `check.rs`). It changes the ring only through a [`Queues`] view; the
//! decisions are [`Reg`](super::reg::Reg)'s.

use std::io;
use std::os::fd::RawFd;

use io_uring::cqueue;

use super::check::Line;
use super::reg::{AfterReport, Completion, Place, Reg, Verdict};
use super::ring::Queues;
use crate::rules::Notifier;
use crate::sys::bits;
use crate::sys::uring::Sqe;
use crate::{Event, Events};

/// The "descriptor" in the `user_data` of the eventfd poll behind
/// `notify`. Registered numbers are below 2^31.
const NOTIFY: u32 = u32::MAX;
/// The "descriptor" in the `user_data` of cancellations, whose own
/// completions say nothing.
const IGNORED: u32 = u32::MAX - 1;

/// The `user_data` of a request: the descriptor number in the low half and
/// a sequence number, new for every request, in the high half, so that a
/// completion of a replaced request is recognised and dropped.
#[inline]
fn user_data(fd: u32, seq: u32) -> u64 {
    (u64::from(seq) << 32) | u64::from(fd)
}

/// Where a completion is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// During a wait, after its last submission: reported as it is.
    Fresh,
    /// Waiting in the ring when the wait began: checked first.
    Stale,
    /// Outside any wait: checked by the next wait, notifications too.
    Absorb,
}

/// What one wait reports.
pub(super) struct Out<'e> {
    pub(super) events: &'e mut Events,
    pub(super) batch: u64,
    /// A user notification was among the completions.
    pub(super) notified: bool,
}

impl Out<'_> {
    #[inline]
    pub(super) fn room(&self) -> usize {
        self.events.capacity() - self.events.len()
    }
}

/// The registrations and the waits' lists.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Registrations, indexed by descriptor number.
    pub(super) regs: Vec<Option<Reg>>,
    /// How many of `regs` are registered.
    pub(super) live: usize,
    next_seq: u32,
    /// Threads inside (or about to enter) `io_uring_enter` to wait.
    pub(super) waiters: usize,
    /// Counts waits, for [`Reg::batch`].
    batch: u64,
    notify_seq: u32,
    /// A notification was absorbed outside a wait; the next wait takes it.
    pub(super) notify_seen: bool,
    /// Level registrations the last wait reported ([`Place::Rearm`]).
    pub(super) rearm: Vec<RawFd>,
    /// Registrations to check ([`Place::Later`], [`Place::Checking`]).
    pub(super) line: Line,
}

/// The registration of `fd` in `regs`, if any.
#[inline(always)]
pub(super) fn slot(regs: &mut [Option<Reg>], fd: RawFd) -> Option<&mut Reg> {
    regs.get_mut(usize::try_from(fd).ok()?)?.as_mut()
}

impl Book {
    #[inline]
    pub(super) fn get(&mut self, fd: RawFd) -> Option<&mut Reg> {
        slot(&mut self.regs, fd)
    }

    /// Whether `fd` is registered.
    pub(super) fn contains(&mut self, fd: RawFd) -> bool {
        self.get(fd).is_some()
    }

    /// The registration of `fd`, if any.
    pub(super) fn reg(&mut self, fd: RawFd) -> Option<Reg> {
        self.get(fd).copied()
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// Starts a new wait's batch.
    pub(super) fn next_batch(&mut self) -> u64 {
        self.batch += 1;
        self.batch
    }

    /// Adds a registration for a free slot `slot` (the caller checked).
    pub(super) fn insert(&mut self, slot: usize, reg: Reg) {
        if slot >= self.regs.len() {
            self.regs.resize(slot + 1, None);
        }
        self.regs[slot] = Some(reg);
        self.live += 1;
    }

    /// Replaces the registration of `fd` (its request already taken).
    pub(super) fn replace(&mut self, fd: RawFd, reg: Reg) {
        if let Some(r) = self.get(fd) {
            *r = reg;
        }
    }

    /// Forgets the registration of `fd`.
    pub(super) fn remove(&mut self, fd: RawFd) {
        let slot = usize::try_from(fd).ok().and_then(|s| self.regs.get_mut(s));
        if let Some(r @ Some(_)) = slot {
            *r = None;
            self.live -= 1;
        }
    }

    /// Queues the multishot poll of the notifier's eventfd (a oneshot one
    /// would complete again at once while the counter is not drained).
    pub(super) fn arm_notifier(&mut self, q: &mut Queues<'_>, fd: RawFd) -> io::Result<()> {
        self.notify_seq = self.seq();
        q.push(&Sqe::poll_add(
            fd,
            bits::IN,
            true,
            user_data(NOTIFY, self.notify_seq),
        ))
    }

    /// Queues a new request for the registration of `fd`.
    pub(super) fn arm(&mut self, q: &mut Queues<'_>, fd: RawFd, multishot: bool) -> io::Result<()> {
        let seq = self.seq();
        let Some(reg) = self.get(fd) else {
            return Ok(());
        };
        reg.armed(seq, multishot);
        let sqe = Sqe::poll_add(fd, reg.poll_mask(), multishot, user_data(fd as u32, seq));
        q.push(&sqe)
    }

    /// Queues the cancellation of the request of `fd`, if one is in flight.
    ///
    /// `IORING_OP_ASYNC_CANCEL`, not `IORING_OP_POLL_REMOVE`: a remove that
    /// finds the request busy with a wake-up fails with `EALREADY` and
    /// leaves it armed, and a multishot request then outlives its
    /// registration, holding the file. A cancel marks the request and
    /// whoever owns it ends it; its only failure for a poll is `ENOENT`
    /// (ended already), so its completions are ignored.
    pub(super) fn cancel(&mut self, q: &mut Queues<'_>, fd: RawFd) -> io::Result<()> {
        let Some(seq) = self.get(fd).and_then(Reg::take_request) else {
            return Ok(());
        };
        q.push(&Sqe::cancel(
            user_data(fd as u32, seq),
            user_data(IGNORED, 0),
        ))
    }

    /// Reads every completion in the ring, and those the kernel holds
    /// back, in order.
    #[inline(always)]
    pub(super) fn reap(
        &mut self,
        q: &mut Queues<'_>,
        pass: Pass,
        out: &mut Out<'_>,
        notifier: &Notifier,
    ) -> io::Result<()> {
        loop {
            while let Some(cqe) = q.next() {
                self.complete(q, &cqe, pass, out, notifier)?;
            }
            if !q.refill()? {
                return Ok(());
            }
        }
    }

    #[inline(always)]
    fn complete(
        &mut self,
        q: &mut Queues<'_>,
        cqe: &cqueue::Entry,
        pass: Pass,
        out: &mut Out<'_>,
        notifier: &Notifier,
    ) -> io::Result<()> {
        let ud = cqe.user_data();
        let (fd, seq) = (ud as u32, (ud >> 32) as u32);
        let more = cqueue::more(cqe.flags());
        if fd == NOTIFY {
            if seq != self.notify_seq {
                return Ok(());
            }
            if !more {
                self.arm_notifier(q, notifier.fd())?;
            }
            if pass == Pass::Absorb {
                self.notify_seen = true;
            } else {
                out.notified |= notifier.take();
            }
            return Ok(());
        }
        let fd = fd as RawFd;
        let live = self.live;
        let Book { regs, line, .. } = self;
        let Some(reg) = slot(regs, fd) else {
            return Ok(()); // IGNORED, or unregistered since
        };
        let fresh = pass == Pass::Fresh;
        let verdict = reg.complete(Completion {
            seq,
            result: cqe.result(),
            more,
            fresh,
        });
        match verdict {
            Verdict::Nothing => Ok(()),
            Verdict::Check => {
                // Outside a wait: in line for the next one, never in a batch.
                let room = if pass == Pass::Absorb { 0 } else { out.room() };
                if line.queue(reg, fd, fresh, room, live) {
                    self.compact();
                }
                Ok(())
            }
            Verdict::Report(ready) => self.report(q, fd, ready, out),
            _ => self.apply(q, fd, verdict, fresh, out),
        }
    }

    /// Acts on a verdict; `now`: a check it asks for is run by this wait.
    /// (Out of line: the common verdicts are handled where they arise.)
    #[inline(never)]
    pub(super) fn apply(
        &mut self,
        q: &mut Queues<'_>,
        fd: RawFd,
        verdict: Verdict,
        now: bool,
        out: &mut Out<'_>,
    ) -> io::Result<()> {
        match verdict {
            Verdict::Nothing => Ok(()),
            Verdict::Report(ready) => self.report(q, fd, ready, out),
            Verdict::Check => {
                self.queue_check(fd, now, out.room());
                Ok(())
            }
            Verdict::Arm { multishot } => self.arm(q, fd, multishot),
            Verdict::Closed => self.closed(q, fd, out),
        }
    }

    /// Adds `ready` to this wait's events: a new event, or the one this
    /// registration already has in this wait. With no room left, the
    /// registration is first in line for the next wait.
    #[inline(always)]
    pub(super) fn report(
        &mut self,
        q: &mut Queues<'_>,
        fd: RawFd,
        ready: u32,
        out: &mut Out<'_>,
    ) -> io::Result<()> {
        let Some(reg) = self.get(fd) else {
            return Ok(());
        };
        if reg.batch == out.batch {
            out.events.add_readiness(reg.index, ready);
            return Ok(());
        }
        let index = out.events.len();
        if !out.events.push(Event::new(reg.token, ready)) {
            reg.place = Place::Later;
            self.line.push_front(fd);
            return Ok(());
        }
        reg.batch = out.batch;
        reg.index = index;
        reg.place = Place::Idle;
        let after = reg.reported();
        if after.rearm {
            self.rearm.push(fd);
        }
        if after.cancel.is_some() || after.arm {
            return self.after_report(q, fd, after);
        }
        Ok(())
    }

    /// The requests a report ends or starts.
    #[inline(never)]
    fn after_report(
        &mut self,
        q: &mut Queues<'_>,
        fd: RawFd,
        after: AfterReport,
    ) -> io::Result<()> {
        if let Some(seq) = after.cancel {
            q.push(&Sqe::cancel(
                user_data(fd as u32, seq),
                user_data(IGNORED, 0),
            ))?;
        }
        if after.arm {
            self.arm(q, fd, true)?;
        }
        Ok(())
    }

    /// The number of a registration is closed: reports it once with error
    /// and hang-up, as poll does, and forgets it.
    pub(super) fn closed(
        &mut self,
        q: &mut Queues<'_>,
        fd: RawFd,
        out: &mut Out<'_>,
    ) -> io::Result<()> {
        let Some(reg) = self.get(fd) else {
            return Ok(());
        };
        let hup = bits::ERR | bits::HUP;
        if reg.batch == out.batch {
            out.events.add_readiness(reg.index, hup);
        } else if !out.events.push(Event::new(reg.token, hup)) {
            reg.place = Place::Later;
            self.line.push_front(fd);
            return Ok(());
        }
        self.cancel(q, fd)?;
        self.remove(fd);
        Ok(())
    }
}
