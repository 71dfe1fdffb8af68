//! The steps of a wait, and the reaping of the ring outside one.

use std::io;
use std::mem;
use std::time::Duration;

use super::book::{Out, Pass};
use super::{lock, State, Uring};
use crate::rules::Deadline;
use crate::sys::uring as sys;
use crate::{Error, Events, Op, Result};

impl Uring {
    /// [`Poller::wait`]: the first steps under the lock ([`Uring::begin`]);
    /// if they report nothing, sleep in `io_uring_enter` without the lock,
    /// then collect what completed, until something is reported, a
    /// notification comes or the time is up.
    #[inline(always)]
    pub(super) fn wait_for(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        events.clear();
        let mut deadline = Deadline::after(timeout);
        let mut st = lock(&self.state);
        let batch = st.book.next_batch();
        let mut out = Out {
            events,
            batch,
            notified: false,
        };
        let mut to_submit = self.begin(&mut st, &mut out).map_err(Error::io(Op::Wait))?;
        if !out.events.is_empty() {
            return self.finish(&mut st, &out);
        }
        if out.notified {
            // Return without blocking, with whatever is ready now.
            deadline = Deadline::after(Some(Duration::ZERO));
        }
        loop {
            let left = deadline.remaining();
            if left == Some(Duration::ZERO) {
                // No time left: submit (once; an interrupted call leaves
                // them for the next wait) and collect what completes at once.
                st.ring
                    .queues()
                    .submit_once()
                    .map_err(Error::io(Op::Wait))?;
                self.collect(&mut st, &mut out)
                    .map_err(Error::io(Op::Wait))?;
                return self.finish(&mut st, &out);
            }
            st.book.waiters += 1;
            drop(st);
            // Submit and sleep in one call; it returns at once if a request
            // completes on submission or completions are already waiting.
            let res = deadline.retry_eintr(left, |left| {
                sys::enter(self.ring_fd, to_submit, 1, true, left)
            });
            st = lock(&self.state);
            st.book.waiters -= 1;
            if let Err(e) = res {
                match e.raw_os_error() {
                    // Timed out, or completions held back: look and decide.
                    Some(libc::ETIME | libc::EBUSY) => {}
                    // EBADR: completions were dropped (see `Queues::refill`).
                    _ => return Err(Error::io(Op::Wait)(e)),
                }
            }
            to_submit = self
                .collect(&mut st, &mut out)
                .map_err(Error::io(Op::Wait))?;
            if !out.events.is_empty() || out.notified || deadline.is_past() {
                return self.finish(&mut st, &out);
            }
        }
    }

    /// The first steps of a wait, under the lock: the completions that
    /// waited in the ring are confirmed (with the level registrations the
    /// last wait reported, if a `poll(2)` is made anyway); if that reports
    /// something, the changes queued before the wait are submitted and what
    /// they find joins the report. Otherwise the reported level
    /// registrations get new requests, for the `io_uring_enter` to submit.
    /// Returns how many entries are queued for it.
    #[inline]
    fn begin(&self, st: &mut State, out: &mut Out<'_>) -> io::Result<u32> {
        let State { ring, book } = st;
        let mut q = ring.queues();
        out.notified = mem::take(&mut book.notify_seen) && self.notifier.take();
        let changes = q.pending() > 0;
        book.reap(&mut q, Pass::Stale, out, &self.notifier)?;
        if !book.line.is_empty() {
            if book.rearms_due() {
                book.rearms_to_line(out.room());
            }
            book.run_checks(&mut q, out)?;
        }
        if !out.events.is_empty() {
            if changes {
                // Registrations and changes made before this wait: it must
                // see what they find ready now.
                q.submit_once()?;
                book.reap(&mut q, Pass::Fresh, out, &self.notifier)?;
                book.run_checks(&mut q, out)?;
            }
            return Ok(0);
        }
        if book.rearms_due() {
            book.rearms_to_kernel(&mut q)?;
        }
        Ok(q.queued())
    }

    /// Reads what completed during the wait, and confirms what needs it.
    /// Returns how many entries are queued for the next `io_uring_enter`.
    #[inline(always)]
    fn collect(&self, st: &mut State, out: &mut Out<'_>) -> io::Result<u32> {
        let State { ring, book } = st;
        let mut q = ring.queues();
        book.reap(&mut q, Pass::Fresh, out, &self.notifier)?;
        if !book.line.is_empty() {
            book.run_checks(&mut q, out)?;
        }
        Ok(q.queued())
    }

    /// The end of a wait: if another thread is blocked in a wait, the
    /// re-arms this one queued are submitted now, or it would not see them.
    #[inline]
    fn finish(&self, st: &mut State, out: &Out<'_>) -> Result<usize> {
        if st.book.waiters > 0 {
            let State { ring, book } = st;
            let mut q = ring.queues();
            book.rearms_to_kernel(&mut q)
                .and_then(|()| q.submit())
                .map_err(Error::io(Op::Wait))?;
        }
        Ok(out.events.len())
    }

    /// Submits now if a wait is blocked elsewhere: it would not see the
    /// change until it woke for another reason.
    pub(super) fn submit_if_waited_on(st: &mut State) -> io::Result<()> {
        if st.book.waiters > 0 {
            st.ring.queues().submit()?;
        }
        Ok(())
    }

    /// Empties the ring outside a wait, so that a program that changes
    /// registrations without waiting does not pile up completions: what it
    /// finds is checked, and notifications taken, by the next wait.
    pub(super) fn absorb(&self, st: &mut State) -> io::Result<()> {
        if st.book.waiters > 0 {
            return Ok(()); // the waiter reaps them
        }
        let State { ring, book } = st;
        let mut q = ring.queues();
        if q.is_empty() {
            return Ok(());
        }
        // Never written: an absorbed completion reports nothing.
        let mut scratch = Events::with_capacity(0);
        let mut out = Out {
            events: &mut scratch,
            batch: 0,
            notified: false,
        };
        book.reap(&mut q, Pass::Absorb, &mut out, &self.notifier)
    }
}
