//! `Reactor::on_child_exit` on every backend: real children that exit or
//! are killed, many at once, one cancelled before it exits, one reaped
//! behind the reactor's back; and the task layer awaiting a timer, a
//! child's exit and a wake-up.

// Children here are reaped through their `ChildExit`, which the lint cannot
// see; each test asserts that they were.
#![allow(clippy::zombie_processes)]

mod common;

use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tripoll::reactor::{Failure, Origin, Reactor};
use tripoll::source::{ChildExit, Clock, Timer, Wake};
use tripoll::task::{self, Async};
use tripoll::{AnyPoller, Backend, Error};

fn reactor(backend: Backend) -> Reactor<AnyPoller> {
    Reactor::with_poller(AnyPoller::new(backend).expect("create the poller"))
}

type Seen = Rc<RefCell<Vec<(libc::pid_t, ExitStatus)>>>;

/// Children that exit with codes and one that is killed: each handler
/// runs once with its pid and status, and the reactor is empty after.
fn children_exit_and_are_killed(backend: Backend) {
    let mut r = reactor(backend);
    let seen: Seen = Rc::default();
    let mut pids = Vec::new();
    for code in 0..8 {
        let child = Command::new("sh")
            .args(["-c", &format!("exit {code}")])
            .spawn()
            .unwrap();
        pids.push(child.id() as libc::pid_t);
        let seen = Rc::clone(&seen);
        r.on_child_exit(ChildExit::from_child(&child).unwrap(), move |_, pid, s| {
            seen.borrow_mut().push((pid, s));
            Ok(())
        })
        .unwrap();
    }
    let mut sleeper = Command::new("sleep").arg("3600").spawn().unwrap();
    let sleeper_pid = sleeper.id() as libc::pid_t;
    let s2 = Rc::clone(&seen);
    r.on_child_exit(ChildExit::new(sleeper_pid).unwrap(), move |_, pid, s| {
        s2.borrow_mut().push((pid, s));
        Ok(())
    })
    .unwrap();
    assert_eq!(r.source_count(), 9);

    let deadline = Instant::now() + common::SAFETY;
    while seen.borrow().len() < 8 {
        assert!(Instant::now() < deadline, "{:?}", seen.borrow());
        r.run_once(Some(common::SAFETY)).unwrap();
    }
    assert_eq!(r.source_count(), 1, "the sleeper is still watched");
    sleeper.kill().unwrap();
    while seen.borrow().len() < 9 {
        assert!(Instant::now() < deadline, "{:?}", seen.borrow());
        r.run_once(Some(common::SAFETY)).unwrap();
    }
    assert_eq!(r.source_count(), 0);
    let seen = seen.borrow();
    for (code, pid) in pids.iter().enumerate() {
        let (_, status) = seen.iter().find(|(p, _)| p == pid).expect("reported");
        assert_eq!(status.code(), Some(code as i32));
    }
    let (_, status) = seen.iter().find(|(p, _)| *p == sleeper_pid).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(seen.len(), 9, "each once");
    // Reaped by the reactor: std finds no child to wait for.
    assert_eq!(
        sleeper.wait().unwrap_err().raw_os_error(),
        Some(libc::ECHILD)
    );
}

/// Unregistering before the exit cancels the handler and leaves the child
/// to be reaped by its owner.
fn cancelled_before_the_exit(backend: Backend) {
    let mut r = reactor(backend);
    let mut child = Command::new("sh")
        .args(["-c", "read x; exit 0"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let token = r
        .on_child_exit(ChildExit::from_child(&child).unwrap(), |_, _, _| {
            panic!("cancelled")
        })
        .unwrap();
    r.unregister(token).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    r.run_once(Some(common::QUIET)).unwrap();
    assert_eq!(r.source_count(), 0);
}

/// A child reaped behind the reactor's back fails its source with
/// `NotAChild`, reported to the error handler; the loop goes on.
fn reaped_behind_its_back(backend: Backend) {
    let mut r = reactor(backend);
    let failures: Rc<RefCell<Vec<Failure>>> = Rc::default();
    let f2 = Rc::clone(&failures);
    r.set_error_handler(move |_, f| f2.borrow_mut().push(f));
    let mut child = Command::new("true").spawn().unwrap();
    r.on_child_exit(ChildExit::from_child(&child).unwrap(), |_, _, _| {
        panic!("not ours to reap")
    })
    .unwrap();
    assert!(child.wait().unwrap().success()); // reaps it first
    let deadline = Instant::now() + common::SAFETY;
    while failures.borrow().is_empty() {
        assert!(Instant::now() < deadline);
        r.run_once(Some(common::SAFETY)).unwrap();
    }
    let failures = failures.borrow();
    assert_eq!(failures.len(), 1);
    assert!(matches!(failures[0].origin, Origin::Source { .. }));
    let e = failures[0].error().expect("returned an error");
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::NotAChild { .. })), "{e:?}");
    assert_eq!(r.source_count(), 0);
}

/// The task layer awaits a kernel timer (never early), a child's exit and
/// a wake-up from another thread.
fn tasks_await_sources(backend: Backend) {
    let mut r = reactor(backend);
    let start = Instant::now();
    let (ticks, status, woken) = task::block_on(&mut r, async {
        let timer = Async::new(Timer::new(Clock::Monotonic)?)?;
        timer.get_ref().set_after(Duration::from_millis(20))?;
        let ticks = timer.tick().await?;
        assert!(start.elapsed() >= Duration::from_millis(20));

        let child = Command::new("sh").args(["-c", "exit 9"]).spawn()?;
        let exit = Async::new(ChildExit::from_child(&child)?)?;
        let status = exit.exit().await?;

        let wake = Wake::new()?;
        let waker = wake.try_clone()?;
        let wake = Async::new(wake)?;
        let t = std::thread::spawn(move || {
            waker.wake().unwrap();
            waker.wake().unwrap();
        });
        t.join().unwrap();
        let woken = wake.woken().await?;
        Ok::<_, std::io::Error>((ticks, status, woken))
    })
    .unwrap()
    .unwrap();
    assert_eq!(ticks, 1);
    assert_eq!(status.code(), Some(9));
    assert_eq!(woken, 2);
}

macro_rules! child_suite {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn children_exit_and_are_killed() {
                let _fds = common::fds_shared();
                super::children_exit_and_are_killed($backend)
            }
            #[test]
            fn cancelled_before_the_exit() {
                let _fds = common::fds_shared();
                super::cancelled_before_the_exit($backend)
            }
            #[test]
            fn reaped_behind_its_back() {
                let _fds = common::fds_shared();
                super::reaped_behind_its_back($backend)
            }
            #[test]
            fn tasks_await_sources() {
                let _fds = common::fds_shared();
                super::tasks_await_sources($backend)
            }
        }
    };
}

common::for_each_backend!(child_suite);
