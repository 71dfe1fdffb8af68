//! What the io_uring backend needs beyond the `io-uring` crate's safe API:
//! queuing a submission entry (unsafe there, because an entry may point at
//! memory the kernel reads later), an `io_uring_enter` made with the ring's
//! descriptor alone, so that a thread can sleep in it after letting go of
//! the lock that guards the ring's queues, and the zero-timeout `ppoll` that
//! confirms completions on every wait.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::time::Duration;

use io_uring::{opcode, squeue, types, EnterFlags, SubmissionQueue};

use super::syscall;

/// A submission entry that points at no user memory: a poll request or a
/// cancellation, the only two this module makes. Only this module can make
/// one, which is what makes [`push`] safe.
#[derive(Debug, Clone)]
pub(crate) struct Sqe(squeue::Entry);

impl Sqe {
    /// `IORING_OP_POLL_ADD` on `fd` for `mask`, multishot or oneshot.
    pub(crate) fn poll_add(fd: RawFd, mask: u32, multishot: bool, user_data: u64) -> Sqe {
        let entry = opcode::PollAdd::new(types::Fd(fd), mask)
            .multi(multishot)
            .build()
            .user_data(user_data);
        Sqe(entry)
    }

    /// `IORING_OP_ASYNC_CANCEL` of the request whose `user_data` is
    /// `target`, with no completion when it succeeds.
    pub(crate) fn cancel(target: u64, user_data: u64) -> Sqe {
        let entry = opcode::AsyncCancel::new(target)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(user_data);
        Sqe(entry)
    }
}

/// Queues `sqe`; false when the queue is full.
pub(crate) fn push(sq: &mut SubmissionQueue<'_>, sqe: &Sqe) -> bool {
    // SAFETY: `push` is unsafe because the kernel may read memory an entry
    // points to after the call; an `Sqe` is a poll or a cancellation, which
    // carry a descriptor number, a mask and 64-bit tags, and point at no
    // memory at all.
    unsafe { sq.push(&sqe.0) }.is_ok()
}

/// The largest timeout handed to the kernel at once. The kernel adds the
/// timeout to the current time without checking for overflow, so a huge one
/// would wrap into the past; a wait longer than this simply enters again.
const MAX_TIMEOUT: Duration = Duration::from_secs(1 << 30);

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `struct io_uring_getevents_arg`, read by the kernel with
/// `IORING_ENTER_EXT_ARG`.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// One `io_uring_enter` on the ring `fd`: submits up to `to_submit` queued
/// entries and, with `getevents`, flushes completions the kernel holds back
/// and waits until `min_complete` are in the ring or `timeout` passes
/// (`ETIME`). The queues' views must have been synced (their tails stored)
/// before the call.
pub(crate) fn enter(
    fd: RawFd,
    to_submit: u32,
    min_complete: u32,
    getevents: bool,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let mut flags = if getevents {
        EnterFlags::GETEVENTS.bits()
    } else {
        0
    };
    let ts;
    let arg;
    let (argp, argsz) = match timeout {
        None => (ptr::null::<libc::c_void>(), 0usize),
        Some(t) => {
            let t = t.min(MAX_TIMEOUT);
            ts = KernelTimespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: i64::from(t.subsec_nanos()),
            };
            arg = GeteventsArg {
                sigmask: 0,
                sigmask_sz: 0,
                min_wait_usec: 0,
                ts: ptr::addr_of!(ts) as u64,
            };
            flags |= EnterFlags::EXT_ARG.bits();
            (
                ptr::addr_of!(arg).cast::<libc::c_void>(),
                std::mem::size_of::<GeteventsArg>(),
            )
        }
    };
    // SAFETY: io_uring_enter reads only its scalar arguments and, with
    // IORING_ENTER_EXT_ARG, `argsz` bytes at `argp`: a live
    // `io_uring_getevents_arg` whose `ts` points at a live timespec, both
    // on this stack until the call returns; no signal mask. The queues it
    // touches are the ring's shared mappings, which the kernel owns
    // as much as we do.
    let n = syscall!(syscall(
        libc::SYS_io_uring_enter,
        fd,
        to_submit,
        min_complete,
        flags,
        argp,
        argsz
    ))?;
    Ok(n as usize)
}

/// One `ppoll(2)` over `fds` that never blocks: the check of every wait
/// that found completions waiting. Made directly (not through libc's
/// wrapper, a cancellation point, nor [`super::poll::ppoll`], which
/// converts a timeout first): it runs on every such wait. Returns the number
/// of entries with a non-zero `revents`.
pub(crate) fn poll_now(fds: &mut [super::poll::PollFd]) -> io::Result<usize> {
    static ZERO: libc::timespec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `fds` is a live, writable slice of `len` pollfds; the timeout
    // points at a static zero timespec; no signal mask (null, size 0).
    let n = syscall!(syscall(
        libc::SYS_ppoll,
        fds.as_mut_ptr(),
        fds.len() as libc::nfds_t,
        ptr::addr_of!(ZERO),
        ptr::null::<libc::sigset_t>(),
        0usize
    ))?;
    Ok(n as usize)
}
