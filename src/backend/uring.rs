//! `io_uring(7)` as a readiness multiplexer: every registration is an
//! `IORING_OP_POLL_ADD` request in flight, and a wait is one
//! `io_uring_enter` that submits the queued requests and sleeps for their
//! completions. The kernel keeps no interest list here; this backend keeps
//! a small table (descriptor → registration) to turn completions back into
//! tokens and to re-arm what must be re-armed.
//!
//! The ring itself (mmap, submission and completion entries) comes from the
//! `io-uring` crate; this file only decides which requests to queue and what
//! their completions mean.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, types, EnterFlags, IoUring};

use crate::event::Event;
use crate::rules::{self, Deadline, Notifier};
use crate::sys::{self, bits};
use crate::{Backend, Capabilities, Error, Events, Interest, Mode, Op, Poller, Result, Token};

/// The io_uring backend: readiness through `IORING_OP_POLL_ADD` requests
/// (Linux 5.18 or later; see [`Uring::new`] for what it checks).
///
/// # Modes
///
/// - [`Mode::Level`]: a oneshot poll request, queued again after each
///   reported event; the kernel completes it at once while the descriptor
///   is still ready, so every wait sees it, as with epoll.
/// - [`Mode::Oneshot`] and [`Mode::EdgeOneshot`]: a oneshot poll request,
///   not queued again until [`modify`](Poller::modify). (A oneshot request
///   reports the readiness present when it is armed, so the two are the
///   same thing here.)
/// - [`Mode::Edge`]: one multishot request (`IORING_POLL_ADD_MULTI`), which
///   completes once per wake-up of the descriptor: once per arrival.
/// - [`Mode::Exclusive`] and [`Mode::EdgeExclusive`]: refused with
///   [`Error::Unsupported`]. io_uring's exclusive poll wakes one *request*,
///   and this backend would have to re-arm it after every event, which
///   loses the "one of several pollers" guarantee in between.
///
/// A request that completes with readiness nobody asked for (the kernel
/// always adds `POLLRDHUP`, `POLLERR` and `POLLHUP`) is replaced by a
/// multishot request, which reports only the next real change, so such a
/// descriptor never makes a wait spin.
///
/// # Costs
///
/// Register, modify and a oneshot re-arm only write a submission entry: no
/// system call, unless a wait is blocked in another thread, in which case
/// the change is submitted at once so that it takes effect promptly.
/// A wait that finds completions already waiting in the ring checks them
/// with one zero-timeout `poll(2)` (see below) and returns if that finds
/// something; otherwise it is one `io_uring_enter` (submit and sleep, with
/// the timeout in nanoseconds through `IORING_ENTER_EXT_ARG`; interrupted
/// by a signal, it goes on with the time left). Unregister is one
/// `io_uring_enter` that cancels the poll request
/// (`IORING_OP_ASYNC_CANCEL`) and returns once the kernel has processed the
/// cancellation: a completion of the removed registration is never
/// reported, and the request no longer holds the file (when unregister runs
/// on the thread that waits; from another thread, the kernel finishes on
/// the waiting thread, at once if it is blocked in a wait). Unregister also
/// empties the ring when no wait is running, so a program that never waits
/// does not pile up completions.
///
/// # What a wait reports
///
/// A completion tells the readiness when the request completed (in fact
/// the wake-up's key, not a fresh poll). One that was already waiting in
/// the ring when a wait begins may be out of date (the caller may have read,
/// written or closed since), so it is not reported as it is: the wait asks
/// the descriptors of all such completions again, in one zero-timeout
/// `poll(2)`, together with the level registrations the last wait reported,
/// and reports what that finds (epoll polls each ready file when the wait
/// collects it, for the same reason). A multishot request stays armed
/// through this; a registration found not ready gets a request that waits
/// for its next change. A completion that arrives during the wait and
/// reports priority, or one kind of readiness while the registration asks
/// for another too, is checked with `poll(2)` before it is reported (a
/// socket's "data arrived" key always says `POLLPRI`). So a wait reports
/// what is ready when it returns, as epoll's does; the model test holds it
/// to that.
///
/// # A small ring
///
/// Any number of descriptors can be registered, whatever the ring's size
/// ([`Uring::with_entries`]): completions that do not fit are held by the
/// kernel (`IORING_FEAT_NODROP`) and fetched by the next waits, in order,
/// none lost and none twice. When more completions are ready than
/// [`Events`] holds, the rest stay in the ring for the next wait, first
/// come first served. Only if the kernel cannot even allocate memory to
/// hold them does it drop completions; the ring is then unusable, and
/// every wait fails with `EBADR` instead of missing events silently.
///
/// # Closed descriptors
///
/// A poll request holds a reference to its *file*: closing a registered
/// descriptor neither cancels the poll nor closes the file (a socket's peer
/// sees no close) until [`unregister`](Poller::unregister). Unregister
/// before closing, as the [`Poller`] contract asks. If a registered number
/// is closed anyway, the next time its request has to be queued (a level
/// registration after an event, a re-armed oneshot) the kernel finds the
/// number closed: the token is reported once with error and hang-up and the
/// registration is dropped, as with poll. If the number was reused by then,
/// the new file is watched under the old token, as with poll and select.
///
/// # Threads
///
/// Any thread may register, modify, unregister or notify while another
/// waits; [`notify`](Poller::notify) goes through a multishot poll on an
/// eventfd and coalesces like the other backends'.
pub struct Uring {
    /// Boxed: the ring's bookkeeping is a few hundred bytes, and
    /// `AnyPoller` is as large as its largest backend.
    ring: Box<IoUring>,
    state: Mutex<State>,
    notifier: Notifier,
    /// Submission entries this ring was built with.
    entries: u32,
}

/// Edge (multishot), oneshot, read-closed, any descriptor number; not
/// exclusive (see [`Uring`]).
const CAPABILITIES: Capabilities = Capabilities::EDGE
    .union(Capabilities::ONESHOT)
    .union(Capabilities::READ_CLOSED)
    .union(Capabilities::WRITE_CLOSED)
    .union(Capabilities::UNBOUNDED_FDS);

/// The default number of submission entries. More registrations than
/// that are fine: a full queue is submitted to make room.
const DEFAULT_ENTRIES: u32 = 256;

/// The default number of completion entries: more than the submission
/// queue needs, because the kernel sizes the hash table in which a
/// cancellation looks for its target by the completion ring (2^(log2(entries)
/// − 5) buckets, at most 256, reached at 8192 entries). With 10 000 requests
/// in flight, 16 buckets made one unregister cost 22 µs (a scan of ~600
/// requests); 256 make it ~1.5 µs. The ring's memory is 128 KiB.
const DEFAULT_COMPLETIONS: u32 = 8192;

/// The `user_data` of a poll request: the descriptor number in the low
/// half, and in the high half a sequence number that changes with every
/// new request, so that a completion of an older request (modified,
/// unregistered, replaced) is recognised and dropped. Registered numbers
/// are below 2^31, which leaves the numbers above for the poller's own
/// requests.
fn user_data(fd: u32, seq: u32) -> u64 {
    (u64::from(seq) << 32) | u64::from(fd)
}

fn split_user_data(ud: u64) -> (u32, u32) {
    (ud as u32, (ud >> 32) as u32)
}

/// The "descriptor" in the `user_data` of the eventfd poll behind
/// [`Poller::notify`].
const NOTIFY: u32 = u32::MAX;
/// The "descriptor" in the `user_data` of cancellations, whose own
/// completions say nothing.
const IGNORED: u32 = u32::MAX - 1;

/// The largest timeout handed to the kernel at once. The kernel adds the
/// timeout to the current time without checking for overflow, so a huge one
/// would wrap into the past; a wait longer than this simply enters again.
const MAX_ENTER_TIMEOUT: Duration = Duration::from_secs(1 << 30);

#[derive(Debug, Clone, Copy)]
struct Reg {
    token: Token,
    interest: Interest,
    mode: Mode,
    /// Sequence number of the current request (see [`user_data`]).
    seq: u32,
    /// A request for `seq` is queued or in flight.
    live: bool,
    /// The current request is multishot.
    multishot: bool,
    /// Oneshot modes: false once reported, until `modify`.
    armed: bool,
    /// Level mode: reported by the last wait, to be re-armed by the next
    /// (see [`State::rearm`]).
    rearm: bool,
    /// A completion that waited in the ring is still to be checked again
    /// (see [`State::later`]).
    later: bool,
    /// In the current wait's batch of checks (see [`State::checks`]).
    checking: bool,
    /// The wait that last reported this registration, and where its event
    /// is in that wait's `Events`, so a second completion in the same wait
    /// adds to that event instead of making a second one.
    batch: u64,
    index: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Registrations, indexed by descriptor number.
    regs: Vec<Option<Reg>>,
    /// Sequence numbers for new requests.
    next_seq: u32,
    /// Threads inside (or about to enter) `io_uring_enter` to wait.
    waiters: usize,
    /// Counts waits, for [`Reg::batch`].
    batch: u64,
    /// Sequence number of the current eventfd poll.
    notify_seq: u32,
    /// A completion of the eventfd poll was absorbed outside a wait; the
    /// next wait takes the notification.
    notify_seen: bool,
    /// Level registrations reported by the last wait, re-armed when the next
    /// one begins, after the completions it found waiting: so that when
    /// more are ready than `Events` holds, those not yet served come first.
    rearm: Vec<RawFd>,
    /// Registrations whose completion waited in the ring and is still to be
    /// checked again, oldest first: a wait checks no more of them than its
    /// `Events` can hold, so that 10 000 ready descriptors cost a wait what
    /// it reports, not all of them.
    later: std::collections::VecDeque<RawFd>,
    /// How many more of those the current wait checks.
    budget: usize,
    /// The current wait's batch of checks: one `poll(2)` entry for each
    /// registration whose completion waited in the ring (see
    /// [`Uring::run_checks`]). Kept between waits so a wait allocates
    /// nothing once it has grown.
    checks: Checks,
}

/// The `pollfd`s of a batch of checks (`libc::pollfd` has no `Debug`).
#[derive(Default)]
struct Checks(Vec<sys::poll::PollFd>);

impl fmt::Debug for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|p| p.fd)).finish()
    }
}

impl State {
    fn get_mut(&mut self, fd: RawFd) -> Option<&mut Reg> {
        self.regs.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    fn take(&mut self, fd: RawFd) -> Option<Reg> {
        self.regs.get_mut(usize::try_from(fd).ok()?)?.take()
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }
}

/// Locks a mutex, recovering it if a thread panicked while holding it: the
/// state is consistent between any two statements that change it.
fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The poll mask a request asks the kernel for.
///
/// io_uring's poll ignores `POLLPRI` when it matches a wake-up against the
/// request (Linux 6.18 leaves it out of the match, with `EPOLLONESHOT`), so
/// a priority-only request would never complete. Asking for `POLLIN` too
/// makes the wake-ups that come with urgent data match; the readable bit is
/// masked off again before anything is reported.
fn poll_bits(interest: Interest) -> u32 {
    let mut bits = interest.readiness_mask();
    if interest.contains(Interest::PRIORITY) {
        bits |= bits::IN;
    }
    bits
}

/// The readiness a registration reports: what it asked for, plus error and
/// hang-up.
fn wanted_bits(interest: Interest) -> u32 {
    interest.readiness_mask() | bits::ERR | bits::HUP
}

impl Uring {
    /// Sets up an io_uring instance with its wake-up eventfd.
    ///
    /// Needs Linux 5.18 or later (`IORING_SETUP_SUBMIT_ALL`; it also uses
    /// `IORING_FEAT_NODROP`, `IORING_FEAT_EXT_ARG` and multishot poll, all
    /// older), the `io-uring` cargo feature, and a system that allows
    /// io_uring (`/proc/sys/kernel/io_uring_disabled`, seccomp profiles).
    ///
    /// ```
    /// use tripoll::{Error, Poller, Uring};
    ///
    /// match Uring::new() {
    ///     Ok(p) => assert_eq!(p.name(), "uring"),
    ///     // A container that forbids io_uring, or an old kernel.
    ///     Err(Error::Unavailable { reason, .. }) => eprintln!("no io_uring: {reason}"),
    ///     Err(e) => panic!("{e}"),
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when io_uring cannot be used here (the reason
    /// says why); [`Error::Io`] with [`Op::Create`] when the kernel is out
    /// of a resource (descriptors, memory).
    pub fn new() -> Result<Uring> {
        Uring::build(DEFAULT_ENTRIES, DEFAULT_COMPLETIONS)
    }

    /// Like [`Uring::new`], with `entries` submission entries (at least 2,
    /// rounded up to a power of two by the kernel) and twice as many
    /// completion entries. Any number of descriptors can be registered
    /// whatever the size: a small ring only costs more system calls, and
    /// makes cancelling a request (unregister, modify) cost in proportion to
    /// the requests in flight (see `DEFAULT_COMPLETIONS` in the source).
    ///
    /// # Errors
    ///
    /// As [`Uring::new`].
    pub fn with_entries(entries: u32) -> Result<Uring> {
        let entries = entries.max(2);
        Uring::build(entries, entries.saturating_mul(2))
    }

    fn build(entries: u32, completions: u32) -> Result<Uring> {
        let ring = IoUring::builder()
            .setup_submit_all()
            .setup_clamp()
            .setup_cqsize(completions)
            .build(entries)
            .map_err(setup_error)?;
        let params = ring.params();
        if !params.is_feature_nodrop() || !params.is_feature_ext_arg() {
            return Err(unavailable(
                "the kernel lacks IORING_FEAT_NODROP or IORING_FEAT_EXT_ARG".to_owned(),
            ));
        }
        let entries = params.sq_entries();
        let notifier = Notifier::new().map_err(Error::io(Op::Create))?;
        let uring = Uring {
            ring: Box::new(ring),
            state: Mutex::new(State::default()),
            notifier,
            entries,
        };
        {
            let mut st = lock(&uring.state);
            uring.arm_notifier(&mut st).map_err(Error::io(Op::Create))?;
            uring.submit(&mut st).map_err(Error::io(Op::Create))?;
        }
        Ok(uring)
    }

    /// How many submission entries the ring has.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Queues one submission entry, submitting what is queued first if the
    /// ring is full.
    fn push(&self, st: &mut State, entry: &squeue::Entry) -> io::Result<()> {
        let _ = st;
        loop {
            // SAFETY: `st` proves the state lock is held, and every view of
            // the submission queue is made under it, so no other exists.
            let mut sq = unsafe { self.ring.submission_shared() };
            // SAFETY: poll and cancel entries point at no user memory.
            if unsafe { sq.push(entry) }.is_ok() {
                return Ok(());
            }
            drop(sq);
            self.submit(st)?;
        }
    }

    /// How many entries are queued and not yet submitted.
    fn queued(&self, st: &mut State) -> u32 {
        let _ = st;
        // SAFETY: the state lock is held (see `push`).
        let sq = unsafe { self.ring.submission_shared() };
        sq.len() as u32
    }

    /// Submits every queued entry now, without waiting.
    fn submit(&self, st: &mut State) -> io::Result<()> {
        let n = self.queued(st);
        if n == 0 {
            return Ok(());
        }
        loop {
            match self.enter(n, 0, EnterFlags::empty(), None) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // Completions the kernel holds back must be flushed
                    // before it takes more; they stay in the ring for the
                    // next wait.
                    self.enter(0, 0, EnterFlags::GETEVENTS, None)?;
                }
                other => return other.map(drop),
            }
        }
    }

    /// Submits now if a wait is blocked elsewhere: it would not see the
    /// change until it woke for another reason.
    fn submit_if_waited_on(&self, st: &mut State) -> io::Result<()> {
        if st.waiters > 0 {
            self.submit(st)?;
        }
        Ok(())
    }

    /// The end of a wait that reports: re-arms queued by its reap would
    /// otherwise wait for this thread's next wait, and another thread
    /// blocked in a wait needs them now.
    fn finish(&self, st: &mut State, events: &Events) -> Result<usize> {
        if st.waiters > 0 {
            self.flush_rearms(st)
                .and_then(|()| self.submit(st))
                .map_err(Error::io(Op::Wait))?;
        }
        Ok(events.len())
    }

    /// One `io_uring_enter`.
    fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: EnterFlags,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let submitter = self.ring.submitter();
        let Some(t) = timeout else {
            // SAFETY: no argument is passed, so there is nothing for the
            // kernel to read beyond the counts and flags.
            return unsafe {
                submitter.enter::<libc::sigset_t>(to_submit, min_complete, flags.bits(), None)
            };
        };
        let ts = Timespec::new()
            .sec(t.min(MAX_ENTER_TIMEOUT).as_secs())
            .nsec(t.subsec_nanos());
        let args = SubmitArgs::new().timespec(&ts);
        let flags = flags | EnterFlags::EXT_ARG;
        // SAFETY: with IORING_ENTER_EXT_ARG the kernel reads an
        // `io_uring_getevents_arg`, which `SubmitArgs` is (repr(transparent)),
        // and the timespec it points to; both outlive the call.
        unsafe { submitter.enter(to_submit, min_complete, flags.bits(), Some(&args)) }
    }

    /// Queues a multishot poll on the eventfd (a oneshot one would have to
    /// be re-queued after every notification, and would complete at once
    /// while the counter is not drained).
    fn arm_notifier(&self, st: &mut State) -> io::Result<()> {
        st.notify_seq = st.seq();
        let entry = opcode::PollAdd::new(types::Fd(self.notifier.fd()), bits::IN)
            .multi(true)
            .build()
            .user_data(user_data(NOTIFY, st.notify_seq));
        self.push(st, &entry)
    }

    /// Queues a new poll request for the registration of `fd`.
    fn arm(&self, st: &mut State, fd: RawFd, multishot: bool) -> io::Result<()> {
        let seq = st.seq();
        let Some(reg) = st.get_mut(fd) else {
            return Ok(());
        };
        reg.seq = seq;
        reg.live = true;
        reg.multishot = multishot;
        let entry = opcode::PollAdd::new(types::Fd(fd), poll_bits(reg.interest))
            .multi(multishot)
            .build()
            .user_data(user_data(fd as u32, seq));
        self.push(st, &entry)
    }

    /// Queues the cancellation of the request of the registration of `fd`,
    /// if it has one in flight, and makes its remaining completions stale.
    fn cancel(&self, st: &mut State, fd: RawFd) -> io::Result<()> {
        let seq = st.seq();
        let Some(reg) = st.get_mut(fd) else {
            return Ok(());
        };
        if !reg.live {
            return Ok(());
        }
        let old = reg.seq;
        reg.seq = seq;
        reg.live = false;
        self.cancel_request(st, user_data(fd as u32, old))
    }

    /// Queues an `IORING_OP_ASYNC_CANCEL` of the request `target`.
    ///
    /// Not `IORING_OP_POLL_REMOVE`: a remove that finds the request busy
    /// with a wake-up (its task work queued and not yet run) fails with
    /// `EALREADY` and leaves it armed, and a multishot request then lives
    /// on, holding the file, after its registration is gone. A cancel
    /// marks the request instead, and whoever owns it ends it. Its only
    /// failure for a poll is `ENOENT` (the request ended already), which
    /// needs nothing, so its completions are ignored.
    fn cancel_request(&self, st: &mut State, target: u64) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(target)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(user_data(IGNORED, 0));
        self.push(st, &entry)
    }

    /// Handles the completions that are in the ring as a wait begins (see
    /// [`Uring::complete`]): each is checked again (see
    /// [`Uring::run_checks`]), not reported as it is. Returns whether a user
    /// notification was among them.
    fn recheck(&self, st: &mut State, events: &mut Events, batch: u64) -> io::Result<bool> {
        st.budget = events.capacity() - events.len();
        self.check_later(st);
        let mut notified = false;
        // SAFETY: the state lock is held (see `reap`). The view's end is
        // fixed when it is made, so completions posted by the submissions
        // this loop makes are left for the reap that follows.
        let mut cq = unsafe { self.ring.completion_shared() };
        while !events.is_full() {
            let Some(cqe) = cq.next() else { break };
            notified |= self.complete(st, events, batch, &cqe, Pass::Stale)?;
        }
        drop(cq);
        if !st.checks.0.is_empty() || !events.is_empty() {
            // A `poll(2)` is made anyway, or this wait reports already: the
            // level registrations the last wait reported are checked in it
            // too, after the completions (those not yet served come first),
            // instead of by new requests.
            self.each_rearm(st, |uring, st, fd| {
                uring.add_check(st, fd);
                Ok(())
            })?;
        }
        self.run_checks(st, events, batch)?;
        self.check_more(st, events, batch)?;
        Ok(notified)
    }

    /// Empties the ring outside a wait, so that a program that changes
    /// registrations without waiting does not pile up completions: each is
    /// turned into a new request (as a stale one is, see
    /// [`Uring::complete`]), which the next wait reports. Costs nothing when
    /// the ring is empty.
    fn absorb(&self, st: &mut State) -> io::Result<()> {
        if st.waiters > 0 {
            return Ok(()); // the waiter reaps them
        }
        let mut scratch = None;
        loop {
            {
                // SAFETY: the state lock is held (see `reap`).
                let mut cq = unsafe { self.ring.completion_shared() };
                if cq.is_empty() && !self.overflowed(st) {
                    return Ok(());
                }
                // Never written: an absorbed completion reports nothing.
                let scratch = scratch.get_or_insert_with(|| Events::with_capacity(0));
                for cqe in &mut cq {
                    self.complete(st, scratch, 0, &cqe, Pass::Absorb)?;
                }
            }
            if !self.overflowed(st) {
                return Ok(());
            }
            match self.enter(0, 0, EnterFlags::GETEVENTS, None) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                _ => {}
            }
        }
    }

    /// Moves completions from the ring into `events` until the ring is
    /// empty or `events` is full. Returns whether a user notification was
    /// among them.
    fn reap(&self, st: &mut State, events: &mut Events, batch: u64) -> io::Result<bool> {
        let notified = self.reap_ring(st, events, batch)?;
        self.run_checks(st, events, batch)?;
        Ok(notified)
    }

    /// The completions part of [`Uring::reap`]; the checks some of them
    /// asked for are run after it.
    fn reap_ring(&self, st: &mut State, events: &mut Events, batch: u64) -> io::Result<bool> {
        let mut notified = false;
        loop {
            let mut more = false;
            {
                // SAFETY: the state lock is held, and every view of the
                // completion queue is made under it, so no other exists.
                let mut cq = unsafe { self.ring.completion_shared() };
                while !events.is_full() {
                    let Some(cqe) = cq.next() else { break };
                    notified |= self.complete(st, events, batch, &cqe, Pass::Fresh)?;
                }
                if !events.is_full() {
                    cq.sync();
                    more = !cq.is_empty();
                }
                if cq.overflow() != 0 {
                    // The kernel could not even allocate room to hold
                    // completions back (memory exhausted): some are lost,
                    // and the ring refuses every wait from now on (EBADR).
                    // Say so rather than miss events silently.
                    return Err(io::Error::from_raw_os_error(libc::EBADR));
                }
            }
            if events.is_full() {
                return Ok(notified);
            }
            if !more && self.overflowed(st) {
                // The kernel holds completions that did not fit; an enter
                // with GETEVENTS moves them into the ring we just emptied.
                match self.enter(0, 0, EnterFlags::GETEVENTS, None) {
                    Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                    _ => more = true,
                }
            }
            if !more {
                return Ok(notified);
            }
        }
    }

    /// Whether the kernel holds completions back for want of room.
    fn overflowed(&self, st: &mut State) -> bool {
        let _ = st;
        // SAFETY: the state lock is held (see `push`).
        let sq = unsafe { self.ring.submission_shared() };
        sq.cq_overflow()
    }

    /// Handles one completion. Returns whether it was a user notification.
    ///
    /// A completion that was already in the ring when the wait began is not
    /// `fresh`: it says what the descriptor was when it completed, and the
    /// caller may have read, written or closed since. Such a completion is
    /// not reported as it is: its registration joins the wait's checks (see
    /// [`Uring::run_checks`]), or, past the wait's budget, the line for the
    /// next waits (see [`State::later`]).
    fn complete(
        &self,
        st: &mut State,
        events: &mut Events,
        batch: u64,
        cqe: &cqueue::Entry,
        pass: Pass,
    ) -> io::Result<bool> {
        let last = !cqueue::more(cqe.flags());
        let (fd, seq) = split_user_data(cqe.user_data());
        if fd == NOTIFY {
            if seq != st.notify_seq {
                return Ok(false);
            }
            if last {
                self.arm_notifier(st)?;
            }
            if pass == Pass::Absorb {
                st.notify_seen = true;
                return Ok(false);
            }
            return Ok(self.notifier.take());
        }
        if fd == IGNORED {
            return Ok(false);
        }
        let fd = fd as RawFd;
        let Some(reg) = st.get_mut(fd) else {
            return Ok(false);
        };
        if reg.seq != seq {
            return Ok(false); // a replaced request's last words
        }
        if last {
            reg.live = false;
        }
        let res = cqe.result();
        if res == -libc::ECANCELED {
            // Cancelled by the kernel, not by us (ours change `seq`): keep
            // watching.
            let multishot = reg.multishot;
            return self.rearm_if_idle(st, fd, multishot).map(|()| false);
        }
        if res < 0 && pass == Pass::Absorb {
            // Asked again at the next submission, reported by that wait.
            let multishot = reg.mode == Mode::Edge;
            return self.arm(st, fd, multishot).map(|()| false);
        }
        if res < 0 {
            // The number is closed (EBADF) or cannot be polled any more.
            return self.closed(st, events, batch, fd).map(|()| false);
        }
        let ready = res as u32 & wanted_bits(reg.interest);
        if pass != Pass::Fresh && reg.armed {
            if reg.checking {
                // An earlier completion put it in this wait's checks, which
                // will see this readiness too.
                return Ok(false);
            }
            let queued = std::mem::replace(&mut reg.later, true);
            if pass == Pass::Absorb || st.budget == 0 {
                if !queued {
                    st.later.push_back(fd);
                }
                return Ok(false);
            }
            st.budget -= 1;
            self.add_check(st, fd);
            return Ok(false);
        }
        reg.later = false;
        if reg.armed && needs_confirmation(reg.interest, ready) {
            // The key may not tell the descriptor's whole state: ask it,
            // with this wait's other checks.
            self.add_check(st, fd);
            return Ok(false);
        }
        if reg.mode.is_edge() && !reg.mode.is_oneshot() {
            if ready != 0 {
                let reg = *reg;
                report(events, batch, fd, st, &reg, ready);
            }
            return self.rearm_if_idle(st, fd, true).map(|()| false);
        }
        if (reg.mode.is_oneshot() && !reg.armed) || ready == 0 {
            // Nothing the caller asked for (or disarmed meanwhile): park on
            // a multishot request, which reports only the next change
            // instead of completing again at once.
            if reg.armed {
                return self.rearm_if_idle(st, fd, true).map(|()| false);
            }
            return Ok(false);
        }
        let reg = *reg;
        report(events, batch, fd, st, &reg, ready);
        self.reported(st, fd).map(|()| false)
    }

    /// Queues the re-arms of the level registrations the last wait
    /// reported (see [`State::rearm`]).
    fn flush_rearms(&self, st: &mut State) -> io::Result<()> {
        self.each_rearm(st, |uring, st, fd| uring.rearm_if_idle(st, fd, false))
    }

    /// Takes the level registrations the last wait reported (see
    /// [`State::rearm`]), still registered and still due, and hands each
    /// to `act`; stops at the first error. The list is emptied either way,
    /// keeping its allocation.
    fn each_rearm(
        &self,
        st: &mut State,
        mut act: impl FnMut(&Uring, &mut State, RawFd) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut fds = std::mem::take(&mut st.rearm);
        let mut res = Ok(());
        for &fd in &fds {
            match st.get_mut(fd) {
                Some(reg) if reg.rearm => reg.rearm = false,
                _ => continue,
            }
            res = act(self, st, fd);
            if res.is_err() {
                break;
            }
        }
        fds.clear();
        st.rearm = fds;
        res
    }

    /// Adds the registration of `fd` to this wait's batch of checks (once).
    fn add_check(&self, st: &mut State, fd: RawFd) {
        let Some(reg) = st.get_mut(fd) else { return };
        reg.later = false;
        if std::mem::replace(&mut reg.checking, true) {
            return;
        }
        // `POLLRDHUP` always: a poll request completes on it whatever it
        // asked (the kernel adds it, with error and hang-up), so a check
        // must see it to tell when to park (see `Uring::checked`).
        let events = (reg.interest.readiness_mask() | bits::RDHUP) as libc::c_short;
        st.checks.0.push(sys::poll::PollFd {
            fd,
            events,
            revents: 0,
        });
    }

    /// Moves the registrations whose completions were put off by earlier
    /// waits, oldest first, into this wait's batch of checks, within its
    /// budget.
    fn check_later(&self, st: &mut State) {
        while st.budget > 0 {
            let Some(fd) = st.later.pop_front() else {
                return;
            };
            match st.get_mut(fd) {
                Some(reg) if reg.later => {}
                _ => continue,
            }
            st.budget -= 1;
            self.add_check(st, fd);
        }
    }

    /// Checks this wait's batch in one zero-timeout `poll(2)`, and reports
    /// what is ready now.
    ///
    /// The batch holds the registrations whose completions waited in the
    /// ring when the wait began: such a completion says what the descriptor
    /// was when it completed, and the caller may have read, written or
    /// closed since (epoll polls each ready file when the wait collects it,
    /// for the same reason). One `poll(2)` for the whole batch costs less
    /// than a new poll request each, and leaves a multishot request armed.
    /// A registration found not ready gets a request that waits for its
    /// next change, if it has none.
    fn run_checks(&self, st: &mut State, events: &mut Events, batch: u64) -> io::Result<()> {
        if st.checks.0.is_empty() {
            return Ok(());
        }
        let mut checks = std::mem::take(&mut st.checks.0);
        let polled = loop {
            match sys::poll::ppoll(&mut checks, Some(Duration::ZERO)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let mut res = Ok(());
        for c in &checks {
            let Some(reg) = st.get_mut(c.fd) else {
                continue;
            };
            reg.checking = false;
            if res.is_err() {
                continue;
            }
            res = match polled {
                // `poll(2)` failed (out of memory, or more entries than
                // RLIMIT_NOFILE): ask with a new request instead, whose
                // arming polls the file at the next submission.
                Err(_) => self
                    .cancel(st, c.fd)
                    .and_then(|()| self.arm_for_change(st, c.fd)),
                Ok(_) => self.checked(st, events, batch, c.fd, c.revents),
            };
        }
        checks.clear();
        st.checks.0 = checks;
        res
    }

    /// Acts on one check's result: reports the registration if it is ready
    /// for what it asked, or makes sure a request waits for its next change.
    fn checked(
        &self,
        st: &mut State,
        events: &mut Events,
        batch: u64,
        fd: RawFd,
        revents: libc::c_short,
    ) -> io::Result<()> {
        let Some(reg) = st.get_mut(fd) else {
            return Ok(());
        };
        if revents & libc::POLLNVAL != 0 {
            // The number was closed: report it once, as poll does.
            return self.closed(st, events, batch, fd);
        }
        let revents = u32::from(revents as u16);
        let ready = revents & wanted_bits(reg.interest);
        if !reg.armed {
            return Ok(());
        }
        if ready == 0 && revents != 0 {
            // Ready only for what it did not ask (a half-closed peer under
            // an empty interest): park on a multishot request, which
            // reports only the next change (see `Uring::complete`).
            return self.rearm_if_idle(st, fd, true);
        }
        if ready == 0 {
            return self.arm_for_change(st, fd);
        }
        if events.is_full() && reg.batch != batch {
            // Ready, and no room left: first in line for the next wait.
            if !std::mem::replace(&mut reg.later, true) {
                st.later.push_back(fd);
            }
            return Ok(());
        }
        let reg = *reg;
        report(events, batch, fd, st, &reg, ready);
        self.reported(st, fd)
    }

    /// Makes sure a request waits for the next change of the registration
    /// of `fd` (multishot in edge mode, oneshot otherwise), unless it has
    /// one or is a disarmed oneshot.
    fn arm_for_change(&self, st: &mut State, fd: RawFd) -> io::Result<()> {
        match st.get_mut(fd) {
            Some(reg) if reg.armed => {
                let multishot = reg.mode == Mode::Edge;
                self.rearm_if_idle(st, fd, multishot)
            }
            _ => Ok(()),
        }
    }

    /// A registration was just reported: an edge one keeps (or gets) its
    /// multishot request; a oneshot one is disarmed; a level one is re-armed
    /// by the next wait (see [`State::rearm`]). A multishot request parked
    /// for unasked readiness has done its job.
    fn reported(&self, st: &mut State, fd: RawFd) -> io::Result<()> {
        let Some(reg) = st.get_mut(fd) else {
            return Ok(());
        };
        if reg.mode == Mode::Edge {
            return self.rearm_if_idle(st, fd, true);
        }
        self.cancel(st, fd)?;
        let Some(reg) = st.get_mut(fd) else {
            return Ok(());
        };
        if reg.mode.is_oneshot() {
            reg.armed = false;
        } else {
            reg.rearm = true;
            st.rearm.push(fd);
        }
        Ok(())
    }

    /// The number of a registration is closed (its request failed, or a
    /// check found it invalid): reports it once with error and hang-up, as
    /// poll does, and forgets it.
    fn closed(&self, st: &mut State, events: &mut Events, batch: u64, fd: RawFd) -> io::Result<()> {
        let Some(reg) = st.get_mut(fd).copied() else {
            return Ok(());
        };
        report(events, batch, fd, st, &reg, bits::ERR | bits::HUP);
        self.cancel(st, fd)?;
        st.take(fd);
        Ok(())
    }

    /// While `events` has room, checks more of the put-off completions:
    /// the ones this wait's budget covered may have turned out to report
    /// nothing (a wake-up for readiness since consumed, or nobody asked
    /// for), and a wait must not leave room unused, or block, while a
    /// registration it has not looked at is ready.
    fn check_more(&self, st: &mut State, events: &mut Events, batch: u64) -> io::Result<()> {
        while !events.is_full() && !st.later.is_empty() {
            st.budget = events.capacity() - events.len();
            self.check_later(st);
            self.run_checks(st, events, batch)?;
        }
        Ok(())
    }

    /// Queues a new request for `fd` unless one is still in flight.
    fn rearm_if_idle(&self, st: &mut State, fd: RawFd, multishot: bool) -> io::Result<()> {
        match st.get_mut(fd) {
            Some(reg) if !reg.live => self.arm(st, fd, multishot),
            _ => Ok(()),
        }
    }
}

/// How [`Uring::complete`] treats a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Arrived during this wait: report it.
    Fresh,
    /// Was waiting in the ring when this wait began: ask again.
    Stale,
    /// Found outside any wait: ask again, errors too (the next wait
    /// reports them).
    Absorb,
}

/// The kinds of readiness an interest asks for (read, write, priority).
const KINDS: u32 = bits::IN | bits::OUT | bits::PRI;

/// Whether a completion may not tell the descriptor's whole state.
///
/// A completion caused by a wake-up carries the wake-up's *key*, not the
/// descriptor's state (the kernel polls the file only when the key is
/// empty): a socket's "data arrived" key says readable and always
/// `POLLPRI`, its "room to write" key says writable. So a completion that
/// reports priority, or one kind of readiness while the registration asks
/// for another too, is checked against the descriptor itself before it is
/// reported (in the wait's one `poll(2)` of checks, see
/// [`Uring::run_checks`]), as epoll would (it polls every ready file when
/// the wait collects it). A registration for one kind (the usual case) never
/// pays for this.
fn needs_confirmation(interest: Interest, ready: u32) -> bool {
    let asked = interest.readiness_mask() & KINDS;
    let got = ready & KINDS;
    got & bits::PRI != 0 || (got != 0 && asked & !got != 0)
}

/// Adds `ready` to the events of this wait: a new event, or the one this
/// registration already has in this wait.
fn report(events: &mut Events, batch: u64, fd: RawFd, st: &mut State, reg: &Reg, ready: u32) {
    if reg.batch == batch {
        events.add_readiness(reg.index, ready);
        return;
    }
    let index = events.len();
    if !events.push(Event::new(reg.token, ready)) {
        return;
    }
    if let Some(r) = st.get_mut(fd) {
        r.batch = batch;
        r.index = index;
    }
}

fn unavailable(reason: String) -> Error {
    Error::Unavailable {
        backend: Backend::IoUring,
        reason,
    }
}

/// Sorts `io_uring_setup`'s failures: out of a resource is an ordinary
/// error; anything else means io_uring cannot be used here.
fn setup_error(e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Error::io(Op::Create)(e),
        Some(libc::ENOSYS) => unavailable(format!(
            "io_uring_setup is not available ({e}): a kernel without io_uring, or a seccomp filter"
        )),
        Some(libc::EPERM) => unavailable(format!(
            "io_uring_setup was refused ({e}): io_uring_disabled is {}, or a seccomp filter",
            io_uring_disabled()
        )),
        Some(libc::EINVAL) => unavailable(format!(
            "io_uring_setup rejected the setup flags ({e}): a kernel older than 5.18"
        )),
        _ => unavailable(format!("io_uring_setup failed: {e}")),
    }
}

/// The value of `/proc/sys/kernel/io_uring_disabled` (Linux 6.6), for the
/// error message.
fn io_uring_disabled() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(s) => s.trim().to_owned(),
        Err(_) => "not present".to_owned(),
    }
}

impl fmt::Debug for Uring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uring")
            .field("ring", &self.ring.as_raw_fd())
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Poller for Uring {
    fn register(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_register(CAPABILITIES, Backend::IoUring, fd, token, interest, mode)?;
        // The kernel looks the number up only when the request is
        // submitted, which may be at the next wait: check it now.
        rules::check_pollable(fd)?;
        let slot = usize::try_from(fd).map_err(|_| Error::InvalidFd { fd })?;
        let mut st = lock(&self.state);
        if st.regs.get(slot).is_some_and(Option::is_some) {
            return Err(Error::AlreadyRegistered { fd });
        }
        if slot >= st.regs.len() {
            st.regs.resize(slot + 1, None);
        }
        st.regs[slot] = Some(Reg {
            token,
            interest,
            mode,
            seq: 0,
            live: false,
            multishot: false,
            armed: true,
            rearm: false,
            later: false,
            checking: false,
            batch: 0,
            index: 0,
        });
        let multishot = mode == Mode::Edge;
        let res = self
            .arm(&mut st, fd, multishot)
            .and_then(|()| self.submit_if_waited_on(&mut st));
        if let Err(e) = res {
            let _ = self.cancel(&mut st, fd);
            st.take(fd);
            return Err(Error::io(Op::Register)(e));
        }
        Ok(())
    }

    fn modify(&self, fd: RawFd, token: Token, interest: Interest, mode: Mode) -> Result<()> {
        rules::check_modify(CAPABILITIES, Backend::IoUring, fd, token, interest, mode)?;
        let mut st = lock(&self.state);
        if st.get_mut(fd).is_none() {
            return Err(Error::NotRegistered { fd });
        }
        let res = (|| {
            self.cancel(&mut st, fd)?;
            if let Some(reg) = st.get_mut(fd) {
                *reg = Reg {
                    token,
                    interest,
                    mode,
                    armed: true,
                    rearm: false,
                    later: false,
                    checking: false,
                    ..*reg
                };
            }
            self.arm(&mut st, fd, mode == Mode::Edge)?;
            self.submit_if_waited_on(&mut st)
        })();
        res.map_err(Error::io(Op::Modify))
    }

    fn unregister(&self, fd: RawFd) -> Result<()> {
        rules::check_fd(fd)?;
        let mut st = lock(&self.state);
        let Some(reg) = st.get_mut(fd).copied() else {
            return Err(Error::NotRegistered { fd });
        };
        let res = self.cancel(&mut st, fd);
        st.take(fd);
        if !reg.live {
            return res.map_err(Error::io(Op::Unregister));
        }
        // Submit now, whoever waits: the request holds the file open, and
        // the caller may be about to close it.
        res.and_then(|()| self.submit(&mut st))
            .and_then(|()| self.absorb(&mut st))
            .map_err(Error::io(Op::Unregister))
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> Result<usize> {
        events.clear();
        let mut deadline = Deadline::after(timeout);
        let mut st = lock(&self.state);
        st.batch += 1;
        let batch = st.batch;
        // Requests queued before this wait (registrations, changes) must be
        // submitted before it reports anything: it must see all that is
        // ready now. Those its own checks queue are for registrations just
        // found not ready, and can go with the next submission.
        let changes = self.queued(&mut st) > 0;
        let seen = std::mem::take(&mut st.notify_seen) && self.notifier.take();
        let notified = seen
            | self
                .recheck(&mut st, events, batch)
                .map_err(Error::io(Op::Wait))?;
        if !events.is_empty() {
            if changes {
                // Submitted even when `events` is full: what completes at
                // once waits in the ring, in line for the next waits.
                self.submit(&mut st).map_err(Error::io(Op::Wait))?;
                self.reap(&mut st, events, batch)
                    .map_err(Error::io(Op::Wait))?;
            }
            return self.finish(&mut st, events);
        }
        if notified {
            // Return without blocking, with whatever is ready now.
            deadline = Deadline::after(Some(Duration::ZERO));
        }
        self.flush_rearms(&mut st).map_err(Error::io(Op::Wait))?;
        loop {
            // Queued requests (new registrations, changes, re-arms of level
            // registrations reported last time) are submitted before this
            // wait reports anything: it must see all that is ready now.
            // Nothing queued and completions waiting: no system call.
            let to_submit = self.queued(&mut st);
            if to_submit == 0 {
                let notified = self
                    .reap(&mut st, events, batch)
                    .map_err(Error::io(Op::Wait))?;
                if !events.is_empty() || notified {
                    return self.finish(&mut st, events);
                }
            }
            let left = deadline.remaining();
            if left == Some(Duration::ZERO) {
                // Submit, and collect what completes at once.
                self.submit(&mut st).map_err(Error::io(Op::Wait))?;
                self.reap(&mut st, events, batch)
                    .map_err(Error::io(Op::Wait))?;
                return self.finish(&mut st, events);
            }
            st.waiters += 1;
            drop(st);
            // Submit and sleep in one call; returns at once if a request
            // completes on submission or completions are already waiting.
            let res = deadline.retry_eintr(left, |left| {
                self.enter(to_submit, 1, EnterFlags::GETEVENTS, left)
            });
            st = lock(&self.state);
            st.waiters -= 1;
            if let Err(e) = res {
                match e.raw_os_error() {
                    // Timed out, or completions held back: look at the ring
                    // and decide.
                    Some(libc::ETIME | libc::EBUSY) => {}
                    // EBADR: completions were dropped (see `reap`).
                    _ => return Err(Error::io(Op::Wait)(e)),
                }
            }
            let notified = self
                .reap(&mut st, events, batch)
                .map_err(Error::io(Op::Wait))?;
            if !events.is_empty() || notified {
                return self.finish(&mut st, events);
            }
        }
    }

    fn notify(&self) -> Result<()> {
        self.notifier.notify()
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn backend(&self) -> Backend {
        Backend::IoUring
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    /// Register, modify and unregister without ever waiting: the requests
    /// they cancel complete with `ECANCELED`, and unregister must take
    /// those completions out of the ring, or they pile up in the kernel
    /// (which holds what does not fit) without bound.
    #[test]
    fn churn_without_waiting_leaves_the_ring_empty() {
        let p = Uring::with_entries(4).unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let both = Interest::READABLE | Interest::WRITABLE;
        for _ in 0..1_000 {
            p.register(fd, Token(1), Interest::READABLE, Mode::Level)
                .unwrap();
            p.modify(fd, Token(1), both, Mode::Level).unwrap();
            p.unregister(fd).unwrap();
        }
        let mut st = lock(&p.state);
        assert!(!p.overflowed(&mut st), "completions piled up");
        // SAFETY: the state lock is held.
        let cq = unsafe { p.ring.completion_shared() };
        assert!(cq.is_empty(), "{} completions left", cq.len());
    }
}
