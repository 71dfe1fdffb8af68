//! `source::Signals` with signals sent to the whole process: `kill` and
//! `sigqueue` from this process, `kill` from another, `SIGCHLD` from a
//! child that exits, on every backend.
//!
//! A process-directed signal goes to any thread that does not block it,
//! and its default action ends the process. So this binary has no test
//! harness (`harness = false` in Cargo.toml): `main` is its only thread,
//! and it blocks what it sends through the `Signals` it makes, so no
//! stray signal can reach a thread that would die of it.

// Children here are reaped through their `ChildExit`, which the lint cannot
// see; each test asserts that they were.
#![allow(clippy::zombie_processes)]

mod common;

use std::mem::MaybeUninit;
use std::process::Command;

use tripoll::reactor::Reactor;
use tripoll::source::{SignalInfo, Signals};
use tripoll::{AnyPoller, Backend, Events, Interest, Mode, Poller, Token};

const T: Token = Token(5);

fn poller(backend: Backend) -> AnyPoller {
    AnyPoller::new(backend).expect("create the poller")
}

fn pid() -> libc::pid_t {
    std::process::id() as libc::pid_t
}

fn kill(signal: libc::c_int) {
    // SAFETY: sends a signal to this process, whose one thread blocks it.
    assert_eq!(unsafe { libc::kill(pid(), signal) }, 0, "kill");
}

fn sigqueue(signal: libc::c_int, value: i32) {
    // libc's `sigval` has the pointer member only; the kernel reads the
    // integer member (`ssi_int`) from the low bytes of the same union.
    let value = libc::sigval {
        sival_ptr: value as usize as *mut libc::c_void,
    };
    // SAFETY: as for `kill`, with a payload.
    assert_eq!(
        unsafe { libc::sigqueue(pid(), signal, value) },
        0,
        "sigqueue"
    );
}

fn is_blocked(signal: libc::c_int) -> bool {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a null `set` only queries the mask into `old`.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above.
    let old = unsafe { old.assume_init() };
    // SAFETY: `old` is an initialised sigset_t.
    unsafe { libc::sigismember(&old, signal) == 1 }
}

/// Waits for the signals' event and reads one signal.
fn next(p: &AnyPoller, signals: &Signals) -> SignalInfo {
    let mut events = Events::with_capacity(8);
    loop {
        if let Some(info) = signals.read().expect("read") {
            return info;
        }
        common::wait_for(p, &mut events, T);
    }
}

/// `kill(getpid(), SIGINT)`: read as an event, with the sender and code;
/// two standard signals before a read are one.
fn sigint_from_kill(backend: Backend) {
    let p = poller(backend);
    let signals = Signals::new(&[libc::SIGINT]).unwrap();
    p.register_source(&signals, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut events = Events::with_capacity(8);
    common::assert_quiet(&p, &mut events, "no signal sent");
    kill(libc::SIGINT);
    kill(libc::SIGINT);
    let info = next(&p, &signals);
    assert_eq!(info.signal, libc::SIGINT);
    assert_eq!(info.pid, std::process::id());
    assert_eq!(info.code, libc::SI_USER);
    assert_eq!(info.value, 0);
    assert_eq!(signals.read().unwrap(), None, "standard signals coalesce");
    common::assert_quiet(&p, &mut events, "the signal was read");
    p.unregister_source(&signals).unwrap();
}

/// `sigqueue` of real-time signals: each queued, in order, with its value.
fn realtime_with_payload(backend: Backend) {
    let p = poller(backend);
    let rt = libc::SIGRTMIN() + 1;
    let signals = Signals::new(&[rt]).unwrap();
    p.register_source(&signals, T, Interest::READABLE, Mode::Level)
        .unwrap();
    for v in [11, -2, 0x7fff_0000] {
        sigqueue(rt, v);
    }
    for v in [11, -2, 0x7fff_0000] {
        let info = next(&p, &signals);
        assert_eq!(info.signal, rt);
        assert_eq!(info.value, v);
        assert_eq!(info.code, libc::SI_QUEUE);
        assert_eq!(info.pid, std::process::id());
    }
    assert_eq!(signals.read().unwrap(), None);
    p.unregister_source(&signals).unwrap();
}

/// A signal another process sends names that process.
fn sigusr1_from_another_process(backend: Backend) {
    let p = poller(backend);
    let signals = Signals::new(&[libc::SIGUSR1]).unwrap();
    p.register_source(&signals, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut sender = Command::new("kill")
        .args(["-USR1", &pid().to_string()])
        .spawn()
        .unwrap();
    let info = next(&p, &signals);
    assert_eq!(info.signal, libc::SIGUSR1);
    assert_eq!(info.pid, sender.id());
    assert!(sender.wait().unwrap().success());
    p.unregister_source(&signals).unwrap();
}

/// A child that exits sends SIGCHLD, with its pid and exit code.
fn sigchld_from_a_child(backend: Backend) {
    let p = poller(backend);
    let signals = Signals::new(&[libc::SIGCHLD]).unwrap();
    p.register_source(&signals, T, Interest::READABLE, Mode::Level)
        .unwrap();
    let mut child = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
    let info = next(&p, &signals);
    assert_eq!(info.signal, libc::SIGCHLD);
    assert_eq!(info.pid, child.id());
    assert_eq!(info.code, libc::CLD_EXITED);
    assert_eq!(info.status, 5);
    assert_eq!(child.wait().unwrap().code(), Some(5));
    p.unregister_source(&signals).unwrap();
}

/// The mask is counted per thread across every holder, sources and
/// reactors alike: the signal stays blocked until the last goes, which
/// restores the mask found and discards what was claimed but not read.
fn mask_counting(backend: Backend) {
    let s = libc::SIGUSR2;
    assert!(!is_blocked(s));
    let a = Signals::new(&[s]).unwrap();
    let b = Signals::new(&[s]).unwrap();
    let mut reactor = Reactor::with_poller(poller(backend));
    reactor.on_signal(s, |_, _| Ok(())).unwrap();
    assert!(is_blocked(s));
    drop(a);
    assert!(is_blocked(s), "b and the reactor still hold it");
    drop(b);
    assert!(is_blocked(s), "the reactor still holds it");
    kill(s); // pending, never read
    assert!(reactor.remove_signal(s));
    // Unblocked, and the pending one was discarded: had it been delivered,
    // its default action would have ended this process.
    assert!(!is_blocked(s));

    // A signal blocked before stays blocked after.
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set.
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGHUP);
        set.assume_init()
    };
    // SAFETY: `set` is an initialised sigset_t; a null old set is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    drop(Signals::new(&[libc::SIGHUP]).unwrap());
    assert!(is_blocked(libc::SIGHUP));
    // SAFETY: as above.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

/// A task awaits a signal sent to the process.
fn task_awaits_a_signal(backend: Backend) {
    let mut reactor = Reactor::with_poller(poller(backend));
    let rt = libc::SIGRTMIN() + 2;
    let info = tripoll::task::block_on(&mut reactor, async {
        let signals = tripoll::task::Async::new(Signals::new(&[rt])?)?;
        sigqueue(rt, 42);
        signals.recv().await
    })
    .unwrap()
    .unwrap();
    assert_eq!(info.signal, rt);
    assert_eq!(info.value, 42);
    assert_eq!(info.pid, std::process::id());
}

/// A case: its name, and the body run once per backend.
type Case = (&'static str, fn(Backend));

fn main() {
    let cases: [Case; 6] = [
        ("task_awaits_a_signal", task_awaits_a_signal),
        ("sigint_from_kill", sigint_from_kill),
        ("realtime_with_payload", realtime_with_payload),
        ("sigusr1_from_another_process", sigusr1_from_another_process),
        ("sigchld_from_a_child", sigchld_from_a_child),
        ("mask_counting", mask_counting),
    ];
    let mut ran = 0;
    for backend in common::backends() {
        for (name, case) in cases {
            case(backend);
            println!("test {backend}::{name} ... ok");
            ran += 1;
        }
    }
    // Nothing was left pending or blocked.
    for s in [libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD] {
        assert!(!is_blocked(s), "signal {s} left blocked");
    }
    println!("test result: ok. {ran} passed");
}
