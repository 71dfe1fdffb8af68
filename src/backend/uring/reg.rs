//! One registration's state, as types: its request in the kernel
//! ([`Request`]) and its place in the waits' bookkeeping ([`Place`]), and
//! what each completion, check and report leads to ([`Verdict`]). Nothing
//! here touches the kernel: the tests below drive it with made-up
//! completions.

use crate::sys::bits;
use crate::{Interest, Mode, Token};

/// The poll request a registration has in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// None in flight; one is queued when the registration is next found
    /// not ready.
    Idle,
    /// A oneshot poll request, with its sequence number.
    Oneshot(u32),
    /// A multishot poll request, with its sequence number.
    Multishot(u32),
    /// A oneshot registration already reported: no request until `modify`.
    Disarmed,
}

/// Where a registration is in the waits' bookkeeping; each list holds
/// only registrations whose place names it (an entry whose registration
/// moved on is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// In no list.
    Idle,
    /// Level, reported by the last wait: the next checks it with its
    /// `poll(2)`, or re-arms it.
    Rearm,
    /// A completion says it may be ready: in line to be checked.
    Later,
    /// In the current wait's `poll(2)`.
    Checking,
}

/// One completion of a registration's request, decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Completion {
    pub(super) seq: u32,
    /// The poll mask, or a negated `errno`.
    pub(super) result: i32,
    /// The request stays armed (`IORING_CQE_F_MORE`).
    pub(super) more: bool,
    /// Arrived during this wait, after its last submission: it tells the
    /// readiness as of now. One that waited in the ring may be out of date.
    pub(super) fresh: bool,
}

/// What the backend does next for a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing.
    Nothing,
    /// Report this readiness now.
    Report(u32),
    /// Ask the descriptor with `poll(2)` before reporting anything.
    Check,
    /// Queue a new request, multishot or not.
    Arm { multishot: bool },
    /// The number is closed: report error and hang-up once and forget it.
    Closed,
}

/// What follows a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AfterReport {
    /// Cancel the request with this sequence number.
    pub(super) cancel: Option<u32>,
    /// Queue a multishot request.
    pub(super) arm: bool,
    /// Level: the next wait checks or re-arms it ([`Place::Rearm`]).
    pub(super) rearm: bool,
}

/// The kinds of readiness an interest asks for (read, write, priority).
const KINDS: u32 = bits::IN | bits::OUT | bits::PRI;

/// One registration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reg {
    pub(super) token: Token,
    pub(super) interest: Interest,
    pub(super) mode: Mode,
    pub(super) request: Request,
    pub(super) place: Place,
    /// The wait that last reported it, and where its event is in that
    /// wait's `Events`: a second completion in the same wait adds to that
    /// event.
    pub(super) batch: u64,
    pub(super) index: usize,
    /// What it reports: what it asked for, plus error and hang-up.
    wanted: u32,
    /// The `poll(2)` events a check asks for: the interest, and
    /// `POLLRDHUP` always (the kernel adds it to every poll request, so a
    /// check must see it to tell when to park).
    check: i16,
    /// The poll mask a request asks for (see [`Reg::poll_mask`]).
    mask: u32,
}

impl Reg {
    /// A new registration, with no request yet.
    pub(super) fn new(token: Token, interest: Interest, mode: Mode) -> Reg {
        Reg {
            token,
            interest,
            mode,
            request: Request::Idle,
            place: Place::Idle,
            batch: 0,
            index: 0,
            wanted: interest.readiness_mask() | bits::ERR | bits::HUP,
            check: (interest.readiness_mask() | bits::RDHUP) as i16,
            mask: request_mask(interest),
        }
    }

    /// The poll mask a request asks the kernel for.
    #[inline]
    pub(super) fn poll_mask(&self) -> u32 {
        self.mask
    }

    /// The `poll(2)` events a check asks for.
    #[inline]
    pub(super) fn check_mask(&self) -> i16 {
        self.check
    }

    #[inline]
    fn wanted(&self) -> u32 {
        self.wanted
    }

    /// The request a registration in this mode waits for changes with.
    #[inline]
    pub(super) fn multishot(&self) -> bool {
        self.mode == Mode::Edge
    }

    /// A new request (sequence number `seq`) was queued.
    pub(super) fn armed(&mut self, seq: u32, multishot: bool) {
        self.request = if multishot {
            Request::Multishot(seq)
        } else {
            Request::Oneshot(seq)
        };
    }

    /// Takes the request in flight, to cancel it: its completions are
    /// stale from now on.
    pub(super) fn take_request(&mut self) -> Option<u32> {
        match self.request {
            Request::Oneshot(seq) | Request::Multishot(seq) => {
                self.request = Request::Idle;
                Some(seq)
            }
            Request::Idle | Request::Disarmed => None,
        }
    }

    /// Queue a request of this kind unless one is in flight (or none is
    /// wanted).
    #[inline]
    fn ensure(&self, multishot: bool) -> Verdict {
        match self.request {
            Request::Idle => Verdict::Arm { multishot },
            _ => Verdict::Nothing,
        }
    }

    /// A completion of this registration's request.
    ///
    /// A multishot request that ends with readiness (the kernel ends one
    /// when the completion ring is full) is replaced, and the new request's
    /// arming polls the file: reporting the ending completion as well would
    /// report one change twice.
    #[inline]
    pub(super) fn complete(&mut self, c: Completion) -> Verdict {
        let multishot = match self.request {
            Request::Oneshot(seq) if seq == c.seq => false,
            Request::Multishot(seq) if seq == c.seq => true,
            // A replaced request's last words, or disarmed meanwhile.
            _ => return Verdict::Nothing,
        };
        if !c.more {
            self.request = Request::Idle;
        }
        if c.result == -libc::ECANCELED {
            // Cancelled by the kernel, not by us (ours change the number).
            return self.ensure(multishot);
        }
        if multishot && !c.more && c.result >= 0 {
            return Verdict::Arm { multishot: true };
        }
        if c.result < 0 || !c.fresh {
            // Closed, or out of date: ask the descriptor.
            return Verdict::Check;
        }
        let ready = c.result as u32 & self.wanted();
        if needs_confirmation(self.interest, ready) {
            return Verdict::Check;
        }
        if ready == 0 {
            // Only what nobody asked for: park on a multishot request,
            // which reports only the next change.
            return self.ensure(true);
        }
        Verdict::Report(ready)
    }

    /// The result of a check (`revents` of `poll(2)`).
    #[inline]
    pub(super) fn checked(&self, revents: u32) -> Verdict {
        if self.request == Request::Disarmed {
            return Verdict::Nothing;
        }
        if revents & libc::POLLNVAL as u32 != 0 {
            return Verdict::Closed;
        }
        let ready = revents & self.wanted();
        if ready != 0 {
            return Verdict::Report(ready);
        }
        if revents != 0 {
            return self.ensure(true);
        }
        self.ensure(self.multishot())
    }

    /// The registration was just reported: an edge one keeps (or gets) its
    /// multishot request; a oneshot one is disarmed; a level one goes to
    /// the next wait's re-arms. A request parked for unasked readiness has
    /// done its job.
    #[inline]
    pub(super) fn reported(&mut self) -> AfterReport {
        if self.mode == Mode::Edge {
            return AfterReport {
                cancel: None,
                arm: self.request == Request::Idle,
                rearm: false,
            };
        }
        let cancel = self.take_request();
        let rearm = !self.mode.is_oneshot();
        if rearm {
            self.place = Place::Rearm;
        } else {
            self.request = Request::Disarmed;
        }
        AfterReport {
            cancel,
            arm: false,
            rearm,
        }
    }
}

/// The poll mask a request for `interest` asks the kernel for.
///
/// io_uring's poll ignores `POLLPRI` when it matches a wake-up against the
/// request, so a priority-only request would never complete: asking for
/// `POLLIN` too makes the wake-ups that come with urgent data match (the
/// readable bit is masked off before anything is reported).
fn request_mask(interest: Interest) -> u32 {
    let mut mask = interest.readiness_mask();
    if interest.contains(Interest::PRIORITY) {
        mask |= bits::IN;
    }
    mask
}

/// Whether a completion may not tell the descriptor's whole state.
///
/// A completion caused by a wake-up carries the wake-up's *key*, not the
/// descriptor's state: a socket's "data arrived" key says readable and
/// always `POLLPRI`, its "room to write" key says writable. So a completion
/// that reports priority, or one kind of readiness while the registration
/// asks for another too, is checked against the descriptor before it is
/// reported, as epoll would (it polls every ready file when the wait
/// collects it). A registration for one kind never pays for this.
fn needs_confirmation(interest: Interest, ready: u32) -> bool {
    let asked = interest.readiness_mask() & KINDS;
    let got = ready & KINDS;
    got & bits::PRI != 0 || (got != 0 && asked & !got != 0)
}

#[cfg(test)]
#[path = "reg_tests.rs"]
mod tests;
