//! The typed sources (`tripoll::source`) on every backend: timers against
//! the clock, wake-ups from threads and processes, real child processes
//! that exit, are killed or were already reaped, and the misuse each
//! answers with a typed error. Signals sent with `kill`/`sigqueue` to the
//! whole process are in `source_signals.rs`, a binary of its own.

// Children here are reaped through their `ChildExit`, which the lint cannot
// see; each test asserts that they were.
#![allow(clippy::zombie_processes)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::seccomp;
use tripoll::source::{ChildExit, Clock, Signals, Start, Timer, Wake};
use tripoll::{AnyPoller, Backend, Error, Events, Interest, Mode, Poller, Token};

const T: Token = Token(7);

fn poller(backend: Backend) -> AnyPoller {
    AnyPoller::new(backend).expect("create the poller")
}

/// Waits for the source's event, then reads it with `read` until it says
/// something (a level-triggered source stays readable until read).
fn wait_read<R>(p: &AnyPoller, mut read: impl FnMut() -> Option<R>) -> R {
    let mut events = Events::with_capacity(8);
    loop {
        common::wait_for(p, &mut events, T);
        if let Some(r) = read() {
            return r;
        }
    }
}

// ---------------------------------------------------------------------------
// Timer

/// A one-shot timer fires once, never before its delay, and is quiet after.
fn timer_one_shot_never_early(backend: Backend) {
    let p = poller(backend);
    let timer = Timer::new(Clock::Monotonic).unwrap();
    p.register_source(&timer, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    common::assert_quiet(&p, &mut events, "a disarmed timer");

    let delay = Duration::from_millis(30);
    let start = Instant::now();
    timer.set_after(delay).unwrap();
    let count = wait_read(&p, || timer.read().unwrap());
    assert!(start.elapsed() >= delay, "early: {:?}", start.elapsed());
    assert_eq!(count, 1);
    common::assert_quiet(&p, &mut events, "a one-shot timer that was read");
    assert_eq!(timer.read().unwrap(), None);
    p.unregister_source(&timer).unwrap();
}

/// A periodic timer counts every period that passed while the loop was
/// held up: at least as many as whole periods between arming and reading.
fn timer_counts_periods_missed_by_a_blocked_loop(backend: Backend) {
    let p = poller(backend);
    let timer = Timer::new(Clock::Monotonic).unwrap();
    p.register_source(&timer, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let period = Duration::from_millis(5);
    timer.set_interval(period).unwrap();
    let armed = Instant::now(); // after the kernel armed it
    thread::sleep(period * 10); // the loop is blocked
    let mut events = Events::with_capacity(8);
    common::wait_for(&p, &mut events, T);
    let before_read = Instant::now();
    let count = timer.read().unwrap().expect("expired");
    let whole = (before_read - armed).as_nanos() / period.as_nanos();
    assert!(
        u128::from(count) >= whole,
        "{count} expirations in {whole} whole periods"
    );
    assert!(count >= 10, "{count}");
    // And it goes on.
    let again = wait_read(&p, || timer.read().unwrap());
    assert!(again >= 1);
    timer.disarm().unwrap();
    let _ = timer.read().unwrap();
    common::assert_quiet(&p, &mut events, "a disarmed periodic timer");
    p.unregister_source(&timer).unwrap();
}

/// An absolute deadline on each clock expires no earlier than the clock
/// reads that time; a deadline already past expires at once.
fn timer_absolute_deadlines(backend: Backend) {
    let p = poller(backend);
    for clock in [Clock::Monotonic, Clock::Boottime] {
        let timer = Timer::new(clock).unwrap();
        p.register_source(&timer, T, Interest::READABLE, Mode::Level)
            .unwrap();
        let deadline = clock.now().unwrap() + Duration::from_millis(25);
        timer.set(Start::At(deadline), None).unwrap();
        let count = wait_read(&p, || timer.read().unwrap());
        let now = clock.now().unwrap();
        assert!(now >= deadline, "{clock:?}: {now:?} < {deadline:?}");
        assert_eq!(count, 1);

        let past = clock.now().unwrap() - Duration::from_millis(1);
        timer.set(Start::At(past), None).unwrap();
        assert_eq!(wait_read(&p, || timer.read().unwrap()), 1);
        p.unregister_source(&timer).unwrap();
    }
}

/// Re-arming replaces the earlier setting; a zero delay is due at once.
fn timer_rearm_and_zero_delay(backend: Backend) {
    let p = poller(backend);
    let timer = Timer::new(Clock::Monotonic).unwrap();
    p.register_source(&timer, T, Interest::READABLE, Mode::Level)
        .unwrap();
    timer.set_after(Duration::from_secs(3600)).unwrap();
    let mut events = Events::with_capacity(8);
    common::assert_quiet(&p, &mut events, "a timer an hour away");
    timer.set_after(Duration::ZERO).unwrap();
    assert_eq!(wait_read(&p, || timer.read().unwrap()), 1);
    p.unregister_source(&timer).unwrap();
}

// ---------------------------------------------------------------------------
// Wake

/// Wake-ups from other threads add up; the read takes them all.
fn wake_from_threads(backend: Backend) {
    let p = poller(backend);
    let wake = Arc::new(Wake::new().unwrap());
    p.register_source(&*wake, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    common::assert_quiet(&p, &mut events, "an unbumped counter");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let w = Arc::clone(&wake);
            thread::spawn(move || {
                for _ in 0..25 {
                    w.wake().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    common::wait_for(&p, &mut events, T);
    assert_eq!(wake.read().unwrap(), Some(100));
    assert_eq!(wake.read().unwrap(), None);
    common::assert_quiet(&p, &mut events, "a counter that was read");
    p.unregister_source(&*wake).unwrap();
}

/// A forked process bumps the counter through the descriptor it inherited.
fn wake_from_another_process(backend: Backend) {
    let p = poller(backend);
    let wake = Wake::new().unwrap();
    let twin = wake.try_clone().unwrap();
    p.register_source(&wake, T, Interest::READABLE, Mode::Level)
        .unwrap();
    // SAFETY: the child makes only async-signal-safe calls (the eventfd
    // write inside `wake`, then `_exit`).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ok = twin.wake().is_ok() && twin.wake().is_ok();
        // SAFETY: ends the forked child without running the parent's
        // destructors or atexit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    drop(twin);
    let exit = ChildExit::new(pid).unwrap();
    let status = loop {
        if let Some(s) = exit.try_wait().unwrap() {
            break s;
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(status.code(), Some(0));
    let mut events = Events::with_capacity(8);
    common::wait_for(&p, &mut events, T);
    assert_eq!(wake.read().unwrap(), Some(2));
    p.unregister_source(&wake).unwrap();
}

// ---------------------------------------------------------------------------
// ChildExit

fn spawn_sh(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

/// A child that exits: readable once it has, its code through `try_wait`,
/// reaped (the pid no longer waitable), and the same status again.
fn child_that_exits(backend: Backend) {
    let p = poller(backend);
    let mut child = spawn_sh("read x; exit 7");
    let exit = ChildExit::from_child(&child).unwrap();
    assert_eq!(exit.pid() as u32, child.id());
    p.register_source(&exit, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    common::assert_quiet(&p, &mut events, "a child still running");
    assert_eq!(exit.try_wait().unwrap(), None);

    drop(child.stdin.take()); // `read` sees end of file
    let status = wait_read(&p, || exit.try_wait().unwrap());
    assert_eq!(status.code(), Some(7));
    assert_eq!(exit.try_wait().unwrap(), Some(status));
    // Reaped: std can no longer wait for it.
    let err = child.wait().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECHILD));
    p.unregister_source(&exit).unwrap();
}

/// A child that is killed reports the signal.
fn child_that_is_killed(backend: Backend) {
    let p = poller(backend);
    let mut child = Command::new("sleep").arg("3600").spawn().unwrap();
    let exit = ChildExit::from_child(&child).unwrap();
    p.register_source(&exit, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    common::assert_quiet(&p, &mut events, "a sleeping child");
    child.kill().unwrap();
    let status = wait_read(&p, || exit.try_wait().unwrap());
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(status.code(), None);
    p.unregister_source(&exit).unwrap();
}

/// A child that exited before it was watched (a zombie) is readable at
/// once.
fn child_that_exited_before(backend: Backend) {
    let p = poller(backend);
    let child = spawn_sh("exit 0");
    let exit = ChildExit::from_child(&child).unwrap();
    // Until `exit` reaps it, the child stays a zombie.
    p.register_source(&exit, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let status = wait_read(&p, || exit.try_wait().unwrap());
    assert!(status.success());
    p.unregister_source(&exit).unwrap();
}

// ---------------------------------------------------------------------------
// Every source on every backend

macro_rules! source_suite {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn timer_one_shot_never_early() {
                let _fds = common::fds_shared();
                super::timer_one_shot_never_early($backend)
            }
            #[test]
            fn timer_counts_periods_missed_by_a_blocked_loop() {
                let _fds = common::fds_shared();
                super::timer_counts_periods_missed_by_a_blocked_loop($backend)
            }
            #[test]
            fn timer_absolute_deadlines() {
                let _fds = common::fds_shared();
                super::timer_absolute_deadlines($backend)
            }
            #[test]
            fn timer_rearm_and_zero_delay() {
                let _fds = common::fds_shared();
                super::timer_rearm_and_zero_delay($backend)
            }
            #[test]
            fn wake_from_threads() {
                let _fds = common::fds_shared();
                super::wake_from_threads($backend)
            }
            #[test]
            fn wake_from_another_process() {
                let _fds = common::fds_shared();
                super::wake_from_another_process($backend)
            }
            #[test]
            fn child_that_exits() {
                let _fds = common::fds_shared();
                super::child_that_exits($backend)
            }
            #[test]
            fn child_that_is_killed() {
                let _fds = common::fds_shared();
                super::child_that_is_killed($backend)
            }
            #[test]
            fn child_that_exited_before() {
                let _fds = common::fds_shared();
                super::child_that_exited_before($backend)
            }
        }
    };
}

common::for_each_backend!(source_suite);

// ---------------------------------------------------------------------------
// Misuse, and what is not there

mod misuse {
    use super::*;

    #[test]
    fn signals_that_cannot_be_events() {
        for s in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            0,
            -3,
            libc::SIGRTMAX() + 1,
        ] {
            match Signals::new(&[s]) {
                Err(Error::InvalidSignal { signal }) => assert_eq!(signal, s),
                other => panic!("signal {s}: {other:?}"),
            }
            let err: std::io::Error = Signals::new(&[s]).unwrap_err().into();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
        let mut set = Signals::new(&[]).unwrap();
        assert!(matches!(
            set.add(libc::SIGKILL),
            Err(Error::InvalidSignal {
                signal: libc::SIGKILL
            })
        ));
        assert!(!set.contains(libc::SIGKILL));
        assert!(!set.remove(libc::SIGKILL));
    }

    #[test]
    fn timers_with_zero_or_overflowing_periods() {
        let timer = Timer::new(Clock::Monotonic).unwrap();
        for bad in [
            timer.set_interval(Duration::ZERO),
            timer.set(Start::After(Duration::from_millis(1)), Some(Duration::ZERO)),
            timer.set_interval(Duration::MAX),
            timer.set_after(Duration::MAX),
            timer.set(Start::At(Duration::MAX), None),
        ] {
            assert!(matches!(bad, Err(Error::InvalidTimer { .. })), "{bad:?}");
        }
        // Nothing was armed by the refusals.
        thread::sleep(Duration::from_millis(5));
        assert_eq!(timer.read().unwrap(), None);
    }

    #[test]
    fn pids_that_are_not_children() {
        let parent = std::os::unix::process::parent_id() as libc::pid_t;
        for pid in [parent, 1, 0, -1, libc::pid_t::MAX] {
            match ChildExit::new(pid) {
                Err(Error::NotAChild { pid: p }) => assert_eq!(p, pid),
                other => panic!("pid {pid}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_child_already_reaped() {
        let mut child = Command::new("true").spawn().unwrap();
        assert!(child.wait().unwrap().success());
        assert!(matches!(
            ChildExit::from_child(&child),
            Err(Error::NotAChild { .. })
        ));
    }

    #[test]
    fn a_child_reaped_behind_the_sources_back() {
        let mut child = Command::new("true").spawn().unwrap();
        let exit = ChildExit::from_child(&child).unwrap();
        assert!(child.wait().unwrap().success());
        assert!(matches!(exit.try_wait(), Err(Error::NotAChild { .. })));
    }

    /// Where pidfd_open is refused (an old kernel, a seccomp profile), the
    /// error says so, typed.
    fn pidfd_refused(errno: i32) {
        let mut child = Command::new("sleep").arg("3600").spawn().unwrap();
        seccomp::refuse(libc::SYS_pidfd_open, errno);
        match ChildExit::from_child(&child) {
            Err(e @ Error::FeatureUnavailable { feature, .. }) => {
                assert_eq!(feature, "pidfd");
                assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
            }
            other => panic!("{other:?}"),
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn pidfd_refused_with_enosys() {
        seccomp::in_child("misuse::pidfd_refused_with_enosys", || {
            pidfd_refused(libc::ENOSYS)
        });
    }

    #[test]
    fn pidfd_refused_with_eperm() {
        seccomp::in_child("misuse::pidfd_refused_with_eperm", || {
            pidfd_refused(libc::EPERM)
        });
    }
}

// ---------------------------------------------------------------------------
// A thousand children

/// Whether this process has any child left, running or zombie.
fn has_children() -> bool {
    // SAFETY: siginfo_t is plain data; WNOWAIT leaves any child as it is.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is writable and outlives the call.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc == -1 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ECHILD), "{e}");
        return false;
    }
    true
}

/// A thousand children, all waiting on one pipe, exit at once when it
/// closes; the loop reaps each through its `ChildExit`, and no child is
/// left (waitid finds none, not even a zombie). In a child process of the
/// test binary, so that no other test's children count.
fn thousand_children(backend: Backend) {
    common::raise_fd_limit(4096);
    let p = poller(backend);
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut exits = Vec::new();
    for i in 0..1000 {
        let stdin = reader.try_clone().unwrap();
        let child = Command::new("cat")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(stdin)))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let exit = ChildExit::from_child(&child).unwrap();
        p.register_source(&exit, Token(i), Interest::READABLE, Mode::Oneshot)
            .unwrap();
        exits.push(Some(exit));
    }
    drop(reader);
    let mut events = Events::with_capacity(256);
    assert_eq!(p.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    drop(writer); // every `cat` reads end of file and exits

    let mut left = exits.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while left > 0 {
        assert!(Instant::now() < deadline, "{left} children never reported");
        p.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        for ev in events.iter() {
            let slot = &mut exits[ev.token().0];
            let exit = slot.take().expect("one event per child (oneshot)");
            let status = exit.try_wait().unwrap().expect("readable: exited");
            assert!(status.success(), "{status:?}");
            p.unregister_source(&exit).unwrap();
            left -= 1;
        }
    }
    assert!(!has_children(), "a child is left");
}

#[test]
fn thousand_children_exit_at_once_epoll() {
    seccomp::in_child("thousand_children_exit_at_once_epoll", || {
        thousand_children(Backend::Epoll)
    });
}

#[test]
fn thousand_children_exit_at_once_poll() {
    seccomp::in_child("thousand_children_exit_at_once_poll", || {
        thousand_children(Backend::Poll)
    });
}
