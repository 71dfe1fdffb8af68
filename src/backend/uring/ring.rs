//! The ring: setting it up, and the only code that touches its queues.
//! The ring lives in the backend's `Mutex<State>`; a [`Queues`] is one view
//! of both queues, made under the lock once per locked stretch of a call,
//! through the `io-uring` crate's safe `split` on `&mut`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, CompletionQueue, IoUring, SubmissionQueue};

use crate::sys::uring::{self as sys, Sqe};
use crate::{Backend, Error, Op, Result};

/// An io_uring instance.
pub(super) struct Ring {
    /// Boxed: the crate's bookkeeping is a few hundred bytes, and
    /// `AnyPoller` is as large as its largest backend.
    ring: Box<IoUring>,
}

impl Ring {
    /// Sets up a ring with `entries` submission and `completions`
    /// completion entries, and checks the features the backend relies on.
    pub(super) fn new(entries: u32, completions: u32) -> Result<Ring> {
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
        Ok(Ring {
            ring: Box::new(ring),
        })
    }

    /// The ring's descriptor, for an `io_uring_enter` made without the lock.
    pub(super) fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// How many submission entries the ring has.
    pub(super) fn entries(&self) -> u32 {
        self.ring.params().sq_entries()
    }

    /// A view of both queues.
    #[inline]
    pub(super) fn queues(&mut self) -> Queues<'_> {
        let fd = self.fd();
        let (_, sq, cq) = self.ring.split();
        Queues { fd, sq, cq }
    }
}

/// One view of the submission and completion queues. Dropping it stores
/// the submission queue's tail, so entries pushed through it reach the
/// kernel with the next `io_uring_enter`.
pub(super) struct Queues<'a> {
    fd: RawFd,
    sq: SubmissionQueue<'a>,
    cq: CompletionQueue<'a>,
}

impl Queues<'_> {
    /// Queues `sqe`, submitting what is queued first if the queue is full.
    pub(super) fn push(&mut self, sqe: &Sqe) -> io::Result<()> {
        while !sys::push(&mut self.sq, sqe) {
            self.submit()?;
        }
        Ok(())
    }

    /// How many entries are queued and not yet submitted.
    #[inline]
    pub(super) fn queued(&mut self) -> u32 {
        self.sq.sync();
        self.sq.len() as u32
    }

    /// How many entries were queued through this view and not yet
    /// submitted (without storing the tail: for a view just made).
    #[inline]
    pub(super) fn pending(&self) -> u32 {
        self.sq.len() as u32
    }

    /// Submits every queued entry now, without waiting. Interrupted, it
    /// tries again (a signal interrupts one call).
    pub(super) fn submit(&mut self) -> io::Result<()> {
        loop {
            let n = self.queued();
            if n == 0 {
                return Ok(());
            }
            match self.enter(n, false, None) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // Completions the kernel holds back must be flushed
                    // before it takes more; they stay for the next reap.
                    self.enter(0, true, None)?;
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }

    /// Submits once, without waiting; an interrupted call leaves the
    /// entries queued for the next `io_uring_enter`.
    pub(super) fn submit_once(&mut self) -> io::Result<()> {
        let n = self.queued();
        if n == 0 {
            return Ok(());
        }
        match self.enter(n, false, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
            other => other.map(drop),
        }
    }

    /// One `io_uring_enter` submitting `n` entries, with `GETEVENTS` if
    /// asked or if the kernel holds completions back; then looks at the
    /// completion queue again.
    fn enter(&mut self, n: u32, getevents: bool, timeout: Option<Duration>) -> io::Result<usize> {
        let getevents = getevents || self.sq.cq_overflow();
        let res = sys::enter(self.fd, n, 0, getevents, timeout);
        // What the submission completed at once is visible from now on.
        self.cq.sync();
        res
    }

    /// The next completion in the ring, as of the view's last look.
    #[inline]
    pub(super) fn next(&mut self) -> Option<cqueue::Entry> {
        self.cq.next()
    }

    /// Looks at the ring again after [`next`](Queues::next) ran dry: true if
    /// completions arrived meanwhile, or if the kernel held some back for
    /// want of room and this moved them in. An interrupted flush leaves
    /// them for the next reap.
    ///
    /// If the kernel could not even allocate memory to hold completions
    /// back, some are lost and the ring refuses every wait from now on
    /// (`EBADR`): this says so rather than miss events silently.
    #[inline]
    pub(super) fn refill(&mut self) -> io::Result<bool> {
        self.cq.sync();
        if !self.cq.is_empty() {
            return Ok(true);
        }
        if self.sq.cq_overflow() {
            match sys::enter(self.fd, 0, 0, true, None) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            self.cq.sync();
            return Ok(!self.cq.is_empty());
        }
        if self.cq.overflow() != 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADR));
        }
        Ok(false)
    }

    /// Whether the ring is empty and the kernel holds nothing back.
    pub(super) fn is_empty(&mut self) -> bool {
        self.cq.sync();
        self.cq.is_empty() && !self.sq.cq_overflow()
    }
}

pub(super) fn unavailable(reason: String) -> Error {
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
