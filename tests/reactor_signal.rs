//! Signals through the reactor, on every backend.
//!
//! Signal masks are per thread and signals are process-wide, so this binary
//! holds a single `#[test]` that runs every case in sequence on one thread.
//! Signals are sent with `raise`, which directs them at the calling thread:
//! a signal sent to the whole process (`kill(getpid())`) could be delivered
//! to one of the test harness's own threads, which do not block it, and its
//! default action would end the process.

use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tripoll::reactor::{Error, Reactor, SignalInfo};
use tripoll::{Epoll, Poll, Poller, Select};

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

fn turn_until<P: Poller>(r: &mut Reactor<P>, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SAFETY;
    while !done() {
        assert!(Instant::now() < deadline, "no signal within {SAFETY:?}");
        r.run_once(Some(Duration::from_millis(100))).expect("turn");
    }
}

fn signals_arrive_as_events<P: Poller>(poller: P) {
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
fn prior_mask_is_kept<P: Poller>(poller: P) {
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

/// A panicking signal handler is reported, and the signal is let go.
fn panicking_signal_handler<P: Poller>(poller: P) {
    let mut r = Reactor::with_poller(poller);
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
    let err = loop {
        match r.run_once(Some(SAFETY)) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    match err {
        Error::SignalPanicked { signal, message } => {
            assert_eq!(signal, libc::SIGUSR1);
            assert!(message.contains("signal boom"));
        }
        other => panic!("expected SignalPanicked, got {other:?}"),
    }
    assert!(!is_blocked(libc::SIGUSR1), "the failed signal is let go");
    raise(libc::SIGUSR2);
    turn_until(&mut r, || *ok.borrow() == 1);
    drop(r);
    assert!(!is_blocked(libc::SIGUSR2));
}

#[test]
fn signals() {
    signals_arrive_as_events(Epoll::new().unwrap());
    signals_arrive_as_events(Poll::new().unwrap());
    signals_arrive_as_events(Select::new().unwrap());
    prior_mask_is_kept(Epoll::new().unwrap());
    prior_mask_is_kept(Select::new().unwrap());
    panicking_signal_handler(Epoll::new().unwrap());
    panicking_signal_handler(Poll::new().unwrap());
    panicking_signal_handler(Select::new().unwrap());
}
