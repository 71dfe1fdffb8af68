//! Confirming completions that may be out of date.
//!
//! A completion says what a descriptor was when its request completed; the
//! caller may have read, written or closed since. So a completion that
//! waited in the ring is not reported as it is: its registration joins the
//! [`Line`], oldest first, and a wait takes from the front of the line as
//! many as its `Events` has room for and asks them all in one zero-timeout
//! `poll(2)` (epoll polls each ready file when `epoll_wait` collects it, for
//! the same reason). Whatever the ring's size, every completion is moved
//! out of the ring into the line at once, so the line, not the ring, decides
//! who is served next: first come, first served.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::RawFd;

use super::book::{slot, Book, Out};
use super::reg::{Place, Reg, Request, Verdict};
use super::ring::Queues;
use crate::sys::poll::PollFd;
use crate::sys::uring::poll_now;

/// The registrations to check, oldest first, and the current batch.
#[derive(Default)]
pub(super) struct Line {
    /// Registrations waiting for a check, oldest first (see
    /// [`Place::Later`](super::reg::Place::Later)).
    waiting: VecDeque<RawFd>,
    /// The current batch: one `pollfd` each.
    pub(super) batch: Vec<PollFd>,
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("waiting", &self.waiting.len())
            .field("batch", &self.batch.len())
            .finish()
    }
}

impl Line {
    /// Whether nothing waits for a check, in line or in the batch.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.batch.is_empty()
    }

    /// How many wait in line (entries of registrations that moved on
    /// included).
    #[inline]
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Puts `fd` at the front of the line: found ready, with no room left
    /// to report it, it is served first by the next wait.
    pub(super) fn push_front(&mut self, fd: RawFd) {
        self.waiting.push_front(fd);
    }

    /// The next registration in line.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<RawFd> {
        self.waiting.pop_front()
    }

    /// Keeps only the entries `keep` accepts (those whose registration is
    /// still in line, once each), in order.
    pub(super) fn retain(&mut self, keep: impl FnMut(RawFd) -> bool) {
        let mut keep = keep;
        self.waiting.retain(|&fd| keep(fd));
    }

    /// Puts `reg`, the registration of `fd`, in the current batch (`now`,
    /// or when nobody is in line and the batch has `room`), or at the back
    /// of the line. True when the line has grown past what `live`
    /// registrations explain and should be compacted.
    #[inline(always)]
    pub(super) fn queue(
        &mut self,
        reg: &mut Reg,
        fd: RawFd,
        now: bool,
        room: usize,
        live: usize,
    ) -> bool {
        match reg.place {
            Place::Later | Place::Checking => return false,
            Place::Idle | Place::Rearm => {}
        }
        if now || (self.waiting.is_empty() && self.batch.len() < room) {
            reg.place = Place::Checking;
            self.add(fd, reg.check_mask());
            return false;
        }
        reg.place = Place::Later;
        self.waiting.push_back(fd);
        self.waiting.len() > 2 * live + 64
    }

    /// Adds `fd` to the current batch, asking for `events`.
    #[inline]
    pub(super) fn add(&mut self, fd: RawFd, events: i16) {
        self.batch.push(PollFd {
            fd,
            events,
            revents: 0,
        });
    }

    /// How many are in the current batch.
    #[inline]
    pub(super) fn batch_len(&self) -> usize {
        self.batch.len()
    }

    /// Asks the batch in one zero-timeout `poll(2)`, retried if
    /// interrupted; the results are in the batch until it is cleared.
    #[inline(always)]
    pub(super) fn run(&mut self) -> io::Result<usize> {
        loop {
            match poll_now(&mut self.batch) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

/// `revents` as readiness bits (the `POLL*` and `EPOLL*` bits are the same).
#[inline]
pub(super) fn readiness(p: &PollFd) -> u32 {
    u32::from(p.revents as u16)
}

impl Book {
    /// Puts the registration of `fd` in the current batch of checks (`now`,
    /// or when nobody is in line and the batch has room), or at the back of
    /// the line.
    #[inline(always)]
    pub(super) fn queue_check(&mut self, fd: RawFd, now: bool, room: usize) {
        let live = self.live;
        let Book { regs, line, .. } = self;
        let Some(reg) = slot(regs, fd) else { return };
        if line.queue(reg, fd, now, room, live) {
            self.compact();
        }
    }

    /// Drops the line's entries of registrations that moved on, and
    /// duplicates, keeping the order.
    pub(super) fn compact(&mut self) {
        let regs = &mut self.regs;
        let mut kept = Vec::new();
        self.line.retain(|fd| {
            let reg = usize::try_from(fd)
                .ok()
                .and_then(|s| regs.get_mut(s))
                .and_then(Option::as_mut);
            match reg {
                Some(r) if r.place == Place::Later => {
                    r.place = Place::Idle; // a second entry is dropped
                    kept.push(fd);
                    true
                }
                _ => false,
            }
        });
        for fd in kept {
            if let Some(r) = self.get(fd) {
                r.place = Place::Later;
            }
        }
    }

    /// Checks registrations from the front of the line, as many at a time
    /// as `events` has room for, in one `poll(2)` each batch, until `events`
    /// is full or nobody is left in line.
    pub(super) fn run_checks(&mut self, q: &mut Queues<'_>, out: &mut Out<'_>) -> io::Result<()> {
        loop {
            let room = out.room();
            while self.line.batch_len() < room {
                let Some(fd) = self.line.pop() else { break };
                if let Some(reg) = self.get(fd).filter(|r| r.place == Place::Later) {
                    reg.place = Place::Checking;
                    let mask = reg.check_mask();
                    self.line.add(fd, mask);
                }
            }
            if self.line.batch_len() == 0 {
                return Ok(());
            }
            let polled = self.line.run();
            let mut res = Ok(());
            for i in 0..self.line.batch_len() {
                let p = self.line.batch[i];
                let Some(reg) = self.get(p.fd).filter(|r| r.place == Place::Checking) else {
                    continue;
                };
                reg.place = Place::Idle;
                if res.is_err() {
                    continue;
                }
                let verdict = match polled {
                    Ok(_) => reg.checked(readiness(&p)),
                    // `poll(2)` failed (out of memory, or more entries than
                    // RLIMIT_NOFILE): ask with a new request instead, whose
                    // arming polls the file at the next submission.
                    Err(_) if reg.request == Request::Disarmed => Verdict::Nothing,
                    Err(_) => {
                        let multishot = reg.multishot();
                        res = self.cancel(q, p.fd);
                        Verdict::Arm { multishot }
                    }
                };
                if res.is_ok() {
                    res = match verdict {
                        Verdict::Report(ready) => self.report(q, p.fd, ready, out),
                        Verdict::Nothing => Ok(()),
                        Verdict::Arm { multishot } => self.arm(q, p.fd, multishot),
                        _ => self.apply(q, p.fd, verdict, true, out),
                    };
                }
            }
            self.line.batch.clear();
            res?;
            if out.events.is_full() || self.line.waiting() == 0 {
                return Ok(());
            }
        }
    }

    /// Whether level registrations reported by the last wait are due.
    #[inline]
    pub(super) fn rearms_due(&self) -> bool {
        !self.rearm.is_empty()
    }

    /// The level registrations the last wait reported join the line, after
    /// those already in it (straight into the batch when nobody is in line
    /// and it has `room`): a `poll(2)` is made anyway, and asks them for
    /// less than new requests would cost.
    pub(super) fn rearms_to_line(&mut self, room: usize) {
        for i in 0..self.rearm.len() {
            let fd = self.rearm[i];
            if self.get(fd).is_some_and(|r| r.place == Place::Rearm) {
                self.queue_check(fd, false, room);
            }
        }
        self.rearm.clear();
    }

    /// The level registrations the last wait reported get new requests,
    /// whose arming polls the file.
    pub(super) fn rearms_to_kernel(&mut self, q: &mut Queues<'_>) -> io::Result<()> {
        for i in 0..self.rearm.len() {
            let fd = self.rearm[i];
            let Some(reg) = self.get(fd).filter(|r| r.place == Place::Rearm) else {
                continue;
            };
            reg.place = Place::Idle;
            if reg.request != Request::Idle {
                continue;
            }
            if let Err(e) = self.arm(q, fd, false) {
                // This one and the rest stay due for the next wait.
                if let Some(reg) = self.get(fd) {
                    reg.place = Place::Rearm;
                }
                self.rearm.drain(..i);
                return Err(e);
            }
        }
        self.rearm.clear();
        Ok(())
    }
}
