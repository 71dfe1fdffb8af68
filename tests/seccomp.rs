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
