//! Behaviour when the kernel, or a seccomp profile in front of it, refuses
//! a system call: tested under real seccomp filters in child processes.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::seccomp;
use tripoll::{Epoll, Events, Interest, Mode, Poller, Token};

/// `epoll_pwait2` refused with `errno`: sub-millisecond timed waits fall
/// back to `epoll_wait`, rounded up to whole milliseconds (never early),
/// and the refusal is remembered: once it is forbidden outright (a filter
/// that kills the process), later waits still work.
fn pwait2_refused_falls_back(errno: i32) {
    seccomp::refuse(libc::SYS_epoll_pwait2, errno);
    let p = Epoll::new().unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    p.register(a.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let timeout = Duration::from_micros(1_500);
    let start = Instant::now();
    let n = p
        .wait(&mut events, Some(timeout))
        .expect("the wait falls back");
    assert_eq!(n, 0);
    assert!(start.elapsed() >= timeout, "early: {:?}", start.elapsed());
    seccomp::forbid(libc::SYS_epoll_pwait2);
    for _ in 0..3 {
        let start = Instant::now();
        assert_eq!(p.wait(&mut events, Some(timeout)).unwrap(), 0);
        assert!(start.elapsed() >= timeout, "early: {:?}", start.elapsed());
    }
}

mod pwait2 {
    use super::*;

    #[test]
    fn refused_with_enosys() {
        seccomp::in_child("pwait2::refused_with_enosys", || {
            pwait2_refused_falls_back(libc::ENOSYS)
        });
    }

    #[test]
    fn refused_with_eperm() {
        seccomp::in_child("pwait2::refused_with_eperm", || {
            pwait2_refused_falls_back(libc::EPERM)
        });
    }

    #[test]
    fn refused_with_enotsup() {
        seccomp::in_child("pwait2::refused_with_enotsup", || {
            pwait2_refused_falls_back(libc::EOPNOTSUPP)
        });
    }
}

/// Every wait system call answers `EINTR`: a wait still returns by its
/// deadline, with nothing, for a zero timeout as for a positive one. (With
/// a zero timeout the epoll, poll and select backends retried forever.)
/// io_uring's own case is in `tests/uring.rs`.
fn interrupted_waits_return_by_their_deadline(backend: tripoll::Backend) {
    let p = tripoll::AnyPoller::new(backend).unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    p.register(a.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(60));
        eprintln!("a wait under EINTR never returned");
        std::process::exit(3);
    });
    for call in [
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
        libc::SYS_poll,
        libc::SYS_ppoll,
        libc::SYS_select,
        libc::SYS_pselect6,
    ] {
        seccomp::refuse(call, libc::EINTR);
    }
    for timeout in [Duration::ZERO, Duration::from_millis(20)] {
        let start = Instant::now();
        assert_eq!(
            p.wait(&mut events, Some(timeout)).unwrap(),
            0,
            "{timeout:?}"
        );
        assert!(start.elapsed() >= timeout, "early: {:?}", start.elapsed());
    }
}

macro_rules! interrupted_suite {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            #[test]
            fn interrupted_waits_return_by_their_deadline() {
                super::seccomp::in_child(
                    concat!(
                        stringify!($module),
                        "::interrupted_waits_return_by_their_deadline"
                    ),
                    || super::interrupted_waits_return_by_their_deadline($backend),
                );
            }
        }
    };
}

// io_uring waits in `io_uring_enter`: its own test is in tests/uring.rs.
macro_rules! interrupted_unless_uring {
    (uring, $backend:expr, $poller:ty) => {};
    ($module:ident, $backend:expr, $poller:ty) => {
        interrupted_suite!($module, $backend, $poller);
    };
}

common::for_each_backend!(interrupted_unless_uring);
