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
use std::time::Duration;

use crate::sys::poll::{ppoll, PollFd};

/// The registrations to check, oldest first, and the current batch.
#[derive(Default)]
pub(super) struct Line {
    /// Registrations waiting for a check, oldest first (see
    /// [`Place::Later`](super::reg::Place::Later)).
    waiting: VecDeque<RawFd>,
    /// The current batch: one `pollfd` each.
    batch: Vec<PollFd>,
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
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.batch.is_empty()
    }

    /// How many wait in line (entries of registrations that moved on
    /// included).
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Puts `fd` at the back of the line.
    pub(super) fn push_back(&mut self, fd: RawFd) {
        self.waiting.push_back(fd);
    }

    /// Puts `fd` at the front of the line: found ready, with no room left
    /// to report it, it is served first by the next wait.
    pub(super) fn push_front(&mut self, fd: RawFd) {
        self.waiting.push_front(fd);
    }

    /// The next registration in line.
    pub(super) fn pop(&mut self) -> Option<RawFd> {
        self.waiting.pop_front()
    }

    /// Keeps only the entries `keep` accepts (those whose registration is
    /// still in line, once each), in order.
    pub(super) fn retain(&mut self, keep: impl FnMut(RawFd) -> bool) {
        let mut keep = keep;
        self.waiting.retain(|&fd| keep(fd));
    }

    /// Adds `fd` to the current batch, asking for `events`.
    pub(super) fn add(&mut self, fd: RawFd, events: i16) {
        self.batch.push(PollFd {
            fd,
            events,
            revents: 0,
        });
    }

    /// How many are in the current batch.
    pub(super) fn batch_len(&self) -> usize {
        self.batch.len()
    }

    /// Asks the batch in one zero-timeout `poll(2)` (retried if
    /// interrupted) and takes it, to be handed back with
    /// [`give_back`](Line::give_back) once its results are used.
    pub(super) fn run(&mut self) -> (Vec<PollFd>, io::Result<usize>) {
        let mut batch = std::mem::take(&mut self.batch);
        let polled = loop {
            match ppoll(&mut batch, Some(Duration::ZERO)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        (batch, polled)
    }

    /// Takes back a batch's storage, emptied, so that a wait allocates
    /// nothing once it has grown.
    pub(super) fn give_back(&mut self, mut batch: Vec<PollFd>) {
        batch.clear();
        self.batch = batch;
    }
}

/// `revents` as readiness bits (the `POLL*` and `EPOLL*` bits are the same).
pub(super) fn readiness(p: &PollFd) -> u32 {
    u32::from(p.revents as u16)
}
