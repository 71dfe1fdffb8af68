//! Signals through the reactor, on every backend.
//!
//! Signal masks are per thread and signals are process-wide, so this binary
//! holds a single `#[test]` that runs every case in sequence on one thread.
//! Signals are sent with `raise`, which directs them at the calling thread:
//! a signal sent to the whole process (`kill(getpid())`) could be delivered
//! to one of the test harness's own threads, which do not block it, and its
//! default action would end the process.

use std::cell::{Cell, RefCell};
use std::io;
use std::mem::MaybeUninit;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tripoll::reactor::{Error, Failure, Origin, Reactor, SignalInfo};
use tripoll::{AnyPoller, Backend, Poller};

mod common;

const SAFETY: Duration = Duration::from_secs(30);

/// This thread's signal mask.
fn current_mask() -> libc::sigset_t {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: a null `set` only queries the mask into `old`, which the call
    // initialises.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above.
    unsafe { old.assume_init() }
}

fn is_blocked(signal: libc::c_int) -> bool {
    let mask = current_mask();
    // SAFETY: `mask` is an initialised sigset_t.
    unsafe { libc::sigismember(&mask, signal) == 1 }
}

fn is_pending(signal: libc::c_int) -> bool {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending initialises `set`.
    assert_eq!(unsafe { libc::sigpending(set.as_mut_ptr()) }, 0);
    // SAFETY: initialised above.
    let set = unsafe { set.assume_init() };
    // SAFETY: `set` is initialised.
    unsafe { libc::sigismember(&set, signal) == 1 }
}

fn set_blocked(signal: libc::c_int, block: bool) {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset takes a valid signal.
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), signal);
        set.assume_init()
    };
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: `set` is valid; a null old set is allowed.
    assert_eq!(
        unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) },
        0
    );
}

fn raise(signal: libc::c_int) {
    // SAFETY: raise has no memory-safety preconditions; the signal is
    // blocked and watched by the reactor whenever this is called.
    assert_eq!(unsafe { libc::raise(signal) }, 0);
}

fn turn_until<P: Poller + 'static>(r: &mut Reactor<P>, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SAFETY;
    while !done() {
        assert!(Instant::now() < deadline, "no signal within {SAFETY:?}");
        r.run_once(Some(Duration::from_millis(100))).expect("turn");
    }
}

fn signals_arrive_as_events<P: Poller + 'static>(poller: P) {
    let name = poller.name();
    assert!(!is_blocked(libc::SIGUSR1), "{name}: clean start");
    let mut r = Reactor::with_poller(poller);
    let got: Rc<RefCell<Vec<SignalInfo>>> = Rc::default();
    let g = Rc::clone(&got);
    r.on_signal(libc::SIGUSR1, move |_, info| {
        g.borrow_mut().push(info);
        Ok(())
    })
    .unwrap();
    assert!(is_blocked(libc::SIGUSR1), "{name}: blocked while watched");
    assert!(matches!(
        r.on_signal(libc::SIGUSR1, |_, _| Ok(())),
        Err(Error::SignalInUse {
            signal: libc::SIGUSR1
        })
    ));
    for bad in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 1000] {
        assert!(
            matches!(r.on_signal(bad, |_, _| Ok(())), Err(Error::InvalidSignal { signal }) if signal == bad),
            "{name}: signal {bad} must be refused"
        );
    }

    raise(libc::SIGUSR1);
    turn_until(&mut r, || !got.borrow().is_empty());
    let info = got.borrow()[0];
    assert_eq!(info.signal, libc::SIGUSR1);
    assert_eq!(info.pid, std::process::id(), "{name}: sent by this process");

    // A second signal, whose handler stops the loop.
    r.on_signal(libc::SIGUSR2, |ctx, info| {
        assert_eq!(info.signal, libc::SIGUSR2);
        ctx.stop();
        Ok(())
    })
    .unwrap();
    raise(libc::SIGUSR2);
    let watchdog = r.set_timer(SAFETY, |_, _| panic!("SIGUSR2 never arrived"));
    r.run().unwrap();
    r.cancel_timer(watchdog.unwrap());
    assert_eq!(
        got.borrow().len(),
        1,
        "{name}: SIGUSR2 did not reach SIGUSR1's handler"
    );

    // Removing one restores its mask; the other stays watched.
    assert!(r.remove_signal(libc::SIGUSR2));
    assert!(!r.remove_signal(libc::SIGUSR2));
    assert!(!is_blocked(libc::SIGUSR2));
    assert!(is_blocked(libc::SIGUSR1));

    // A signal raised but never read is discarded on drop, not delivered
    // with its default action (which would end this process).
    raise(libc::SIGUSR1);
    assert!(is_pending(libc::SIGUSR1));
    drop(r);
    assert!(!is_blocked(libc::SIGUSR1), "{name}: mask restored on drop");
    assert!(!is_pending(libc::SIGUSR1));
}

/// A signal the thread blocked before the reactor took it stays blocked.
fn prior_mask_is_kept<P: Poller + 'static>(poller: P) {
    set_blocked(libc::SIGUSR2, true);
    let mut r = Reactor::with_poller(poller);
    r.on_signal(libc::SIGUSR2, |_, _| Ok(())).unwrap();
    raise(libc::SIGUSR2);
    let seen = Rc::new(RefCell::new(0));
    let s = Rc::clone(&seen);
    r.remove_signal(libc::SIGUSR2);
    r.on_signal(libc::SIGUSR2, move |_, _| {
        *s.borrow_mut() += 1;
        Ok(())
    })
    .unwrap();
    turn_until(&mut r, || *seen.borrow() == 1);
    drop(r);
    assert!(
        is_blocked(libc::SIGUSR2),
        "a mask set before the reactor is left alone"
    );
    assert!(!is_pending(libc::SIGUSR2));
    set_blocked(libc::SIGUSR2, false);
}

/// A panicking signal handler is reported (once, naming the signal), and
/// the signal is let go; the other signal is still served.
fn panicking_signal_handler<P: Poller + 'static>(poller: P) {
    let mut r = Reactor::with_poller(poller);
    let log: Rc<RefCell<Vec<Failure>>> = Rc::default();
    let l = Rc::clone(&log);
    r.set_error_handler(move |_, f| l.borrow_mut().push(f));
    r.on_signal(libc::SIGUSR1, |_, _| -> io::Result<()> {
        panic!("signal boom")
    })
    .unwrap();
    let ok = Rc::new(RefCell::new(0));
    let o = Rc::clone(&ok);
    r.on_signal(libc::SIGUSR2, move |_, _| {
        *o.borrow_mut() += 1;
        Ok(())
    })
    .unwrap();
    raise(libc::SIGUSR1);
    turn_until(&mut r, || !log.borrow().is_empty());
    assert_eq!(log.borrow().len(), 1);
    assert_eq!(log.borrow()[0].origin, Origin::Signal(libc::SIGUSR1));
    assert_eq!(log.borrow()[0].panic_message(), Some("signal boom"));
    assert!(!is_blocked(libc::SIGUSR1), "the failed signal is let go");
    raise(libc::SIGUSR2);
    turn_until(&mut r, || *ok.borrow() == 1);
    assert_eq!(log.borrow().len(), 1);
    drop(r);
    assert!(!is_blocked(libc::SIGUSR2));
}

/// Two reactors of one thread watch SIGUSR1. Dropping the first leaves the
/// signal blocked for the second, which still reads it; the mask is restored
/// when the second lets go. (Before the watchers were counted, the drop
/// unblocked the signal and the next one ended the process: hence the
/// child process.)
fn two_reactors_one_thread(backend: Backend) {
    assert!(!is_blocked(libc::SIGUSR1), "clean start");
    let mut first = Reactor::with_poller(AnyPoller::new(backend).unwrap());
    first.on_signal(libc::SIGUSR1, |_, _| Ok(())).unwrap();
    let mut second = Reactor::with_poller(AnyPoller::new(backend).unwrap());
    let got = Rc::new(Cell::new(0));
    let g = Rc::clone(&got);
    second
        .on_signal(libc::SIGUSR1, move |_, _| {
            g.set(g.get() + 1);
            Ok(())
        })
        .unwrap();
    drop(first);
    assert!(
        is_blocked(libc::SIGUSR1),
        "the second reactor still watches"
    );
    raise(libc::SIGUSR1);
    turn_until(&mut second, || got.get() == 1);

    // The other way round: the first to go is the one that came second.
    let mut third = Reactor::with_poller(AnyPoller::new(backend).unwrap());
    third.on_signal(libc::SIGUSR1, |_, _| Ok(())).unwrap();
    assert!(third.remove_signal(libc::SIGUSR1));
    assert!(is_blocked(libc::SIGUSR1));
    raise(libc::SIGUSR1);
    turn_until(&mut second, || got.get() == 2);
    assert!(second.remove_signal(libc::SIGUSR1));
    assert!(
        !is_blocked(libc::SIGUSR1),
        "the last watcher restores the mask"
    );
    drop((second, third));
    assert!(!is_blocked(libc::SIGUSR1));
}

/// A reactor on each of two threads watches SIGUSR1 (masks are per
/// thread, the watcher count is per thread too): each reads the signal
/// raised in its thread, and the first one dropping changes nothing for
/// the other.
fn two_threads(backend: Backend) {
    let both_watch = Arc::new(Barrier::new(2));
    let first_gone = Arc::new(Barrier::new(2));
    let spawn = |drops_first: bool| {
        let both_watch = Arc::clone(&both_watch);
        let first_gone = Arc::clone(&first_gone);
        thread::spawn(move || {
            let mut r = Reactor::with_poller(AnyPoller::new(backend).unwrap());
            let got = Rc::new(Cell::new(0));
            let g = Rc::clone(&got);
            r.on_signal(libc::SIGUSR1, move |_, info| {
                assert_eq!(info.signal, libc::SIGUSR1);
                g.set(g.get() + 1);
                Ok(())
            })
            .unwrap();
            both_watch.wait();
            raise(libc::SIGUSR1);
            turn_until(&mut r, || got.get() == 1);
            if drops_first {
                drop(r);
                assert!(!is_blocked(libc::SIGUSR1));
                first_gone.wait();
            } else {
                first_gone.wait();
                assert!(is_blocked(libc::SIGUSR1), "the other thread's drop left it");
                raise(libc::SIGUSR1);
                turn_until(&mut r, || got.get() == 2);
                drop(r);
                assert!(!is_blocked(libc::SIGUSR1));
            }
        })
    };
    let a = spawn(true);
    let b = spawn(false);
    a.join().expect("the first thread");
    b.join().expect("the second thread");
}

/// Set in the child process that runs the shared-signal cases.
const CHILD: &str = "TRIPOLL_SIGNAL_CHILD";

/// Signals shared between reactors, run in a child process (this test
/// again, alone): a signal that is wrongly unblocked ends the child, not the
/// test runner, and the parent reports it.
#[test]
fn signals_shared_between_reactors() {
    if std::env::var_os(CHILD).is_some() {
        for backend in common::backends() {
            two_reactors_one_thread(backend);
            two_threads(backend);
        }
        println!("child: every case passed");
        return;
    }
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "signals_shared_between_reactors",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child: every case passed"),
        "the child failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signals() {
    for backend in common::backends() {
        let make = || AnyPoller::new(backend).unwrap();
        signals_arrive_as_events(make());
        prior_mask_is_kept(make());
        panicking_signal_handler(make());
    }
}
