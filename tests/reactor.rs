//! The reactor suite: written once in [`suite`], generic over the poller,
//! and instantiated for every backend of the one backend list
//! (`tests/common`) by [`reactor_suite!`].
//!
//! Everything runs on real descriptors (Unix socket pairs, TCP on
//! 127.0.0.1) and real threads. No test asserts that something is fast:
//! "never before the deadline" is a lower bound, a correctness check; upper
//! bounds are generous safety nets that turn a hang into a failure.
//!
//! Signals are process-wide, so their test lives alone in
//! `tests/reactor_signal.rs`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tripoll::reactor::{Cause, Context, Error, Failure, Origin, Reactor, TimerId};
use tripoll::{Event, Interest, Mode, Poller, Token};

mod common;

/// Counts each thread's allocations, so a test can check that the loop's
/// steady state allocates nothing.
#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

use common::alloc::{allocations, live_bytes};

/// How long any wait for something that must happen may take before the
/// test fails instead of hanging.
const SAFETY: Duration = Duration::from_secs(30);

/// A non-blocking Unix socket pair.
fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
}

/// Turns the loop until `done` says so, failing after [`SAFETY`].
fn turn_until<P: Poller + 'static>(r: &mut Reactor<P>, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SAFETY;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "the condition was not reached within {SAFETY:?}"
        );
        r.run_once(Some(Duration::from_millis(100))).expect("turn");
    }
}

/// Turns the loop `n` times without blocking for long.
fn turn_n<P: Poller + 'static>(r: &mut Reactor<P>, n: usize) {
    for _ in 0..n {
        r.run_once(Some(Duration::from_millis(10))).expect("turn");
    }
}

/// A timer due after `delay`; the flag returned is set when it fires.
fn timer_flag<P: Poller + 'static>(r: &mut Reactor<P>, delay: Duration) -> Rc<Cell<bool>> {
    let fired = Rc::new(Cell::new(false));
    let f = Rc::clone(&fired);
    r.set_timer(delay, move |_, _| {
        f.set(true);
        Ok(())
    })
    .unwrap();
    fired
}

/// Panics when dropped, with its message.
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// A socket that owns a [`Bomb`]: an I/O object whose destructor panics.
struct Armed(UnixStream, #[allow(dead_code)] Bomb);

impl AsRawFd for Armed {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// Sets a flag when dropped: tells when the reactor dropped a handler.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

mod suite {
    use super::*;

    type Make<P> = fn() -> tripoll::Result<P>;

    fn reactor<P: Poller + 'static>(make: Make<P>) -> Reactor<P> {
        Reactor::with_poller(make().expect("poller"))
    }

    /// A handler that records every event it gets.
    fn recorder(
        log: &Rc<RefCell<Vec<Event>>>,
    ) -> impl FnMut(&mut Context, Event) -> io::Result<()> + 'static {
        let log = Rc::clone(log);
        move |_, ev| {
            log.borrow_mut().push(ev);
            Ok(())
        }
    }

    pub(super) fn callbacks_fire_for_the_right_source<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a1, mut b1) = pair();
        let (a2, mut b2) = pair();
        let log1 = Rc::new(RefCell::new(Vec::new()));
        let log2 = Rc::new(RefCell::new(Vec::new()));
        let t1 = r
            .register(
                a1.as_raw_fd(),
                Interest::READABLE,
                Mode::Level,
                recorder(&log1),
            )
            .unwrap();
        let t2 = r
            .register(
                a2.as_raw_fd(),
                Interest::READABLE,
                Mode::Level,
                recorder(&log2),
            )
            .unwrap();
        assert_ne!(t1, t2);
        assert_eq!(r.source_count(), 2);
        assert_eq!(r.fd_of(t1), Some(a1.as_raw_fd()));

        b2.write_all(b"x").unwrap();
        turn_until(&mut r, || !log2.borrow().is_empty());
        assert!(log1.borrow().is_empty(), "only the ready source is called");
        let ev = log2.borrow()[0];
        assert_eq!(ev.token(), t2);
        assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");

        b1.write_all(b"y").unwrap();
        turn_until(&mut r, || !log1.borrow().is_empty());
        let ev = log1.borrow()[0];
        assert_eq!(ev.token(), t1);
        assert!(ev.is_readable());

        // Writable interest reports writability, with the source's token.
        let (w, _peer) = pair();
        let logw = Rc::new(RefCell::new(Vec::new()));
        let tw = r
            .register(
                w.as_raw_fd(),
                Interest::WRITABLE,
                Mode::Level,
                recorder(&logw),
            )
            .unwrap();
        turn_until(&mut r, || !logw.borrow().is_empty());
        let ev = logw.borrow()[0];
        assert_eq!(ev.token(), tw);
        assert!(ev.is_writable() && !ev.is_readable(), "{ev:?}");

        // A closed peer shows as readable (and hung up where the backend
        // can tell).
        let (c, peer) = pair();
        let logc = Rc::new(RefCell::new(Vec::new()));
        let tc = r
            .register(
                c.as_raw_fd(),
                Interest::READABLE,
                Mode::Level,
                recorder(&logc),
            )
            .unwrap();
        drop(peer);
        turn_until(&mut r, || !logc.borrow().is_empty());
        let ev = logc.borrow()[0];
        assert_eq!(ev.token(), tc);
        assert!(ev.is_readable() || ev.is_hangup(), "{ev:?}");
        drop((a1, a2, w, c));
    }

    pub(super) fn modify_changes_interest_and_rearms_oneshot<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, mut b) = pair();
        let log = Rc::new(RefCell::new(Vec::new()));
        let t = r
            .register(
                a.as_raw_fd(),
                Interest::READABLE,
                Mode::Oneshot,
                recorder(&log),
            )
            .unwrap();
        b.write_all(b"stays unread").unwrap();
        turn_until(&mut r, || !log.borrow().is_empty());
        turn_n(&mut r, 3);
        assert_eq!(log.borrow().len(), 1, "oneshot: one event until re-armed");

        r.modify(t, Interest::READABLE, Mode::Oneshot).unwrap();
        turn_until(&mut r, || log.borrow().len() == 2);
        turn_n(&mut r, 3);
        assert_eq!(log.borrow().len(), 2);

        r.modify(t, Interest::WRITABLE, Mode::Level).unwrap();
        turn_until(&mut r, || log.borrow().len() >= 4);
        assert!(log.borrow()[2..]
            .iter()
            .all(|e| e.is_writable() && e.token() == t));

        assert!(matches!(
            r.modify(Token(12345), Interest::READABLE, Mode::Level),
            Err(Error::UnknownToken(Token(12345)))
        ));
    }

    pub(super) fn errors_are_typed<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, _b) = pair();
        let t = r
            .register(
                a.as_raw_fd(),
                Interest::READABLE,
                Mode::Level,
                |_, _| Ok(()),
            )
            .unwrap();
        let twice = r.register(
            a.as_raw_fd(),
            Interest::READABLE,
            Mode::Level,
            |_, _| Ok(()),
        );
        assert!(
            matches!(
                twice,
                Err(Error::Poller(tripoll::Error::AlreadyRegistered { fd })) if fd == a.as_raw_fd()
            ),
            "{twice:?}"
        );
        assert_eq!(r.source_count(), 1, "a refused registration leaves nothing");
        assert!(matches!(
            r.register(-1, Interest::READABLE, Mode::Level, |_, _| Ok(())),
            Err(Error::Poller(_))
        ));
        if !r.poller().supports(Mode::Edge) {
            let (c, _d) = pair();
            let refused = r.register(c.as_raw_fd(), Interest::READABLE, Mode::Edge, |_, _| Ok(()));
            assert!(
                matches!(
                    refused,
                    Err(Error::Poller(tripoll::Error::Unsupported { .. }))
                ),
                "{refused:?}"
            );
        }
        assert!(matches!(
            r.set_interval(Duration::ZERO, |_, _| Ok(())),
            Err(Error::ZeroPeriod)
        ));
        r.unregister(t).unwrap();
        assert!(matches!(r.unregister(t), Err(Error::UnknownToken(x)) if x == t));
        assert_eq!(r.source_count(), 0);
        // The error converts into an io::Error with a matching kind.
        let e: io::Error = Error::UnknownToken(t).into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    pub(super) fn handler_unregisters_itself<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, mut b) = pair();
        let calls = Rc::new(Cell::new(0));
        let dropped = Rc::new(Cell::new(false));
        let c = Rc::clone(&calls);
        let d = Rc::clone(&dropped);
        let flag = DropFlag(Rc::clone(&dropped));
        let t = r
            .register(
                a.as_raw_fd(),
                Interest::READABLE,
                Mode::Level,
                move |ctx, ev| {
                    let _keep = &flag;
                    c.set(c.get() + 1);
                    ctx.unregister(ev.token()).expect("unregister self");
                    assert!(!ctx.is_registered(ev.token()));
                    assert!(!d.get(), "a handler is not dropped while it runs");
                    Ok(())
                },
            )
            .unwrap();
        b.write_all(b"level-triggered data nobody reads").unwrap();
        turn_until(&mut r, || calls.get() > 0);
        assert!(dropped.get(), "dropped right after its last call");
        turn_n(&mut r, 5);
        assert_eq!(calls.get(), 1, "no call after unregistering itself");
        assert!(!r.is_registered(t));
        assert_eq!(r.source_count(), 0);
    }

    /// A and B are ready in the same wait; whichever runs first unregisters
    /// the other, which must then never be called.
    pub(super) fn unregistering_another_during_dispatch<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, mut wa) = pair();
        let (b, mut wb) = pair();
        let tokens: Rc<RefCell<Vec<Token>>> = Rc::default();
        let calls: Rc<RefCell<Vec<Token>>> = Rc::default();
        let mut register = |fd| {
            let tokens = Rc::clone(&tokens);
            let calls = Rc::clone(&calls);
            r.register(fd, Interest::READABLE, Mode::Level, move |ctx, ev| {
                let me = ev.token();
                let first = calls.borrow().is_empty();
                calls.borrow_mut().push(me);
                if first {
                    let other = *tokens.borrow().iter().find(|t| **t != me).unwrap();
                    ctx.unregister(other).expect("unregister the other");
                }
                Ok(())
            })
            .unwrap()
        };
        let ta = register(a.as_raw_fd());
        let tb = register(b.as_raw_fd());
        tokens.borrow_mut().extend([ta, tb]);
        wa.write_all(b"a").unwrap();
        wb.write_all(b"b").unwrap();
        // Both are ready before the first wait, so both are in its batch.
        r.run_once(Some(SAFETY)).unwrap();
        turn_n(&mut r, 4);
        let calls = calls.borrow();
        let first = calls[0];
        assert!(
            calls.iter().all(|t| *t == first),
            "the unregistered source was called: {calls:?} (a={ta:?}, b={tb:?})"
        );
        assert!(calls.len() >= 2, "the survivor keeps being served");
        assert_eq!(r.source_count(), 1);
    }

    /// A's handler unregisters B and registers C, which takes B's slot; B's
    /// event from the same wait must not reach C.
    pub(super) fn reused_slot_gets_no_stale_event<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, mut wa) = pair();
        let (b, mut wb) = pair();
        let (c, _wc) = pair(); // never ready for reading
        let c_fd = c.as_raw_fd();
        let c = Rc::new(RefCell::new(Some(c)));
        let tokens: Rc<RefCell<Vec<Token>>> = Rc::default();
        let c_token: Rc<Cell<Option<Token>>> = Rc::default();
        let c_calls = Rc::new(Cell::new(0));
        let calls: Rc<RefCell<Vec<Token>>> = Rc::default();
        let mut register = |fd| {
            let tokens = Rc::clone(&tokens);
            let calls = Rc::clone(&calls);
            let c_token = Rc::clone(&c_token);
            let c_calls = Rc::clone(&c_calls);
            let c = Rc::clone(&c);
            r.register(fd, Interest::READABLE, Mode::Level, move |ctx, ev| {
                let me = ev.token();
                let first = calls.borrow().is_empty();
                calls.borrow_mut().push(me);
                if first {
                    let other = *tokens.borrow().iter().find(|t| **t != me).unwrap();
                    ctx.unregister(other).unwrap();
                    let owned = c.borrow_mut().take().unwrap();
                    let cc = Rc::clone(&c_calls);
                    let t = ctx
                        .register_owned(owned, Interest::READABLE, Mode::Level, move |_, _, _| {
                            cc.set(cc.get() + 1);
                            Ok(())
                        })
                        .unwrap();
                    assert_ne!(t, other, "a reused slot gets a new generation");
                    c_token.set(Some(t));
                }
                Ok(())
            })
            .unwrap()
        };
        let ta = register(a.as_raw_fd());
        let tb = register(b.as_raw_fd());
        tokens.borrow_mut().extend([ta, tb]);
        wa.write_all(b"a").unwrap();
        wb.write_all(b"b").unwrap();
        r.run_once(Some(SAFETY)).unwrap();
        turn_n(&mut r, 4);
        let tc = c_token.get().expect("C registered");
        let first = calls.borrow()[0];
        let other = if first == ta { tb } else { ta };
        // The documented encoding: slot index in the low bits, generation
        // above. C took the freed slot of `other`.
        let low = |t: Token| t.0 & (u32::MAX as usize);
        assert_eq!(low(tc), low(other), "C reuses the freed slot");
        assert_eq!(
            c_calls.get(),
            0,
            "C got the stale event of the source it replaced"
        );
        assert!(calls.borrow().iter().all(|t| *t == first));
        assert_eq!(r.fd_of(tc), Some(c_fd));
        r.unregister(tc).unwrap();
        assert!(c.borrow().is_none());
    }

    /// The listener's handler registers each accepted connection; a client
    /// thread checks the echo and stops the loop through a handle.
    pub(super) fn listener_registers_connections<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let accepted = Rc::new(Cell::new(0));
        let acc = Rc::clone(&accepted);
        r.register_owned(
            listener,
            Interest::READABLE,
            Mode::Level,
            move |ctx, l, _| loop {
                let conn = match l.accept() {
                    Ok((conn, _)) => conn,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                };
                conn.set_nonblocking(true)?;
                acc.set(acc.get() + 1);
                ctx.register_owned(conn, Interest::READABLE, Mode::Level, |ctx, c, ev| {
                    let mut buf = [0; 1024];
                    match c.read(&mut buf) {
                        Ok(0) => Ok(ctx.unregister(ev.token())?),
                        Ok(n) => c.write_all(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                        Err(e) => Err(e),
                    }
                })?;
            },
        )
        .unwrap();
        let handle = r.handle();
        let client = thread::spawn(move || {
            let result = (|| -> io::Result<Vec<Vec<u8>>> {
                let mut replies = Vec::new();
                for i in 0..3 {
                    let mut s = TcpStream::connect(addr)?;
                    s.set_read_timeout(Some(SAFETY))?;
                    let msg = format!("hello {i}");
                    s.write_all(msg.as_bytes())?;
                    let mut reply = vec![0; msg.len()];
                    s.read_exact(&mut reply)?;
                    replies.push(reply);
                }
                Ok(replies)
            })();
            handle.stop().expect("stop");
            result
        });
        r.run().unwrap();
        let replies = client.join().unwrap().expect("client");
        assert_eq!(
            replies,
            [
                b"hello 0".to_vec(),
                b"hello 1".to_vec(),
                b"hello 2".to_vec()
            ]
        );
        assert_eq!(accepted.get(), 3);
    }

    pub(super) fn timers_fire_in_order_never_early<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let fired: Rc<RefCell<Vec<(u32, Instant, Instant)>>> = Rc::default();
        let start = Instant::now();
        let plan = [(1, 30), (2, 10), (3, 20), (4, 15), (5, 15), (6, 0)];
        for (name, ms) in plan {
            let deadline = start + Duration::from_millis(ms);
            let fired = Rc::clone(&fired);
            r.set_timer_at(deadline, move |_, _| {
                fired.borrow_mut().push((name, deadline, Instant::now()));
                Ok(())
            })
            .unwrap();
        }
        // And relative ones: the deadline is at least `delay` after the call.
        let rel = Rc::new(Cell::new(None));
        let before = Instant::now();
        let rr = Rc::clone(&rel);
        r.set_timer(Duration::from_millis(25), move |_, _| {
            rr.set(Some(Instant::now()));
            Ok(())
        })
        .unwrap();
        assert_eq!(r.timer_count(), 7);
        // An always-writable source keeps the loop turning, so the timers
        // are checked at every moment, not only when their deadline wakes
        // the wait: one that fires early would be caught.
        let (busy, _peer) = pair();
        let busy_calls = Rc::new(Cell::new(0u64));
        let bc = Rc::clone(&busy_calls);
        let tbusy = r
            .register_owned(busy, Interest::WRITABLE, Mode::Level, move |_, _, _| {
                bc.set(bc.get() + 1);
                Ok(())
            })
            .unwrap();
        turn_until(&mut r, || {
            fired.borrow().len() == plan.len() && rel.get().is_some()
        });
        r.unregister(tbusy).unwrap();
        assert!(busy_calls.get() > 0);
        let names: Vec<u32> = fired.borrow().iter().map(|f| f.0).collect();
        assert_eq!(
            names,
            [6, 2, 4, 5, 3, 1],
            "by deadline, then by setting order"
        );
        for &(name, deadline, at) in fired.borrow().iter() {
            assert!(
                at >= deadline,
                "timer {name} fired {:?} early",
                deadline - at
            );
        }
        assert!(rel.get().unwrap() >= before + Duration::from_millis(25));
        assert_eq!(r.timer_count(), 0);
    }

    pub(super) fn the_loop_sleeps_until_the_deadline<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let fired = Rc::new(Cell::new(false));
        let f = Rc::clone(&fired);
        let deadline = Instant::now() + Duration::from_millis(40);
        r.set_timer_at(deadline, move |_, _| {
            f.set(true);
            Ok(())
        })
        .unwrap();
        let mut turns = 0;
        let safety = Instant::now() + SAFETY;
        while !fired.get() {
            assert!(Instant::now() < safety);
            r.run_once(None).unwrap(); // the timer alone bounds the wait
            turns += 1;
        }
        assert!(Instant::now() >= deadline);
        // A loop that spun, or woke early and retried, would need many turns.
        assert!(turns <= 3, "{turns} turns to reach one deadline");
        // With nothing pending, a timeout is honoured in full.
        let t0 = Instant::now();
        assert_eq!(r.run_once(Some(Duration::from_millis(20))).unwrap(), 0);
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }

    pub(super) fn cancelled_timers_never_fire<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let fired: Rc<RefCell<Vec<&'static str>>> = Rc::default();
        let mk = |name: &'static str| {
            let fired = Rc::clone(&fired);
            move |_: &mut Context, _: TimerId| {
                fired.borrow_mut().push(name);
                Ok(())
            }
        };
        let a = r.set_timer(Duration::from_millis(5), mk("a")).unwrap();
        let d = r.set_timer(Duration::from_millis(15), mk("d")).unwrap();
        // `c` cancels `d` from its callback.
        let f = Rc::clone(&fired);
        r.set_timer(Duration::from_millis(8), move |ctx, _| {
            f.borrow_mut().push("c");
            assert!(ctx.cancel_timer(d));
            Ok(())
        })
        .unwrap();
        let last = r.set_timer(Duration::from_millis(30), mk("last")).unwrap();
        assert!(r.cancel_timer(a));
        assert!(!r.cancel_timer(a), "cancelling twice finds nothing");
        assert!(!r.timer_pending(a));
        turn_until(&mut r, || fired.borrow().contains(&"last"));
        assert_eq!(*fired.borrow(), ["c", "last"]);
        assert!(!r.cancel_timer(last), "a fired one-shot timer is gone");
        assert_eq!(r.timer_count(), 0);
    }

    pub(super) fn repeating_timer_fires_n_times_and_cancels_itself<P: Poller + 'static>(
        make: Make<P>,
    ) {
        let mut r = reactor(make);
        let period = Duration::from_millis(5);
        let ticks: Rc<RefCell<Vec<Instant>>> = Rc::default();
        let t = Rc::clone(&ticks);
        let start = Instant::now();
        let id = r
            .set_interval(period, move |ctx, me| {
                t.borrow_mut().push(Instant::now());
                if t.borrow().len() == 5 {
                    assert!(ctx.cancel_timer(me), "cancel from its own callback");
                    assert!(!ctx.timer_pending(me));
                }
                Ok(())
            })
            .unwrap();
        turn_until(&mut r, || ticks.borrow().len() == 5);
        assert!(!r.timer_pending(id));
        // Run well past several more periods: no sixth tick.
        let done = timer_flag(&mut r, period * 10);
        turn_until(&mut r, || done.get());
        let ticks = ticks.borrow();
        assert_eq!(ticks.len(), 5);
        for (k, at) in ticks.iter().enumerate() {
            // Tick k is due at (k + 1) periods after it was set, or later.
            assert!(*at >= start + period * (k as u32 + 1), "tick {k} early");
        }
        assert!(ticks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(r.timer_count(), 0);
    }

    pub(super) fn hundred_thousand_timers_set_and_cancelled<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let stray = Rc::new(Cell::new(0u32));
        let mut ids = Vec::with_capacity(100_000);
        for i in 0..100_000u64 {
            let s = Rc::clone(&stray);
            // Short delays: if cancelling failed they would fire below.
            let delay = Duration::from_micros(500 + i % 1000);
            ids.push(
                r.set_timer(delay, move |_, _| {
                    s.set(s.get() + 1);
                    Ok(())
                })
                .unwrap(),
            );
        }
        assert_eq!(r.timer_count(), 100_000);
        for id in ids.iter().rev() {
            assert!(r.cancel_timer(*id));
        }
        assert_eq!(r.timer_count(), 0);
        let real = timer_flag(&mut r, Duration::from_millis(20));
        turn_until(&mut r, || real.get());
        turn_n(&mut r, 2);
        assert_eq!(stray.get(), 0, "a cancelled timer fired");
        // Ids of cancelled timers stay dead after their slots are reused.
        let reused = r.set_timer(Duration::from_secs(60), |_, _| Ok(())).unwrap();
        assert!(ids.iter().all(|id| *id != reused));
        assert!(!r.cancel_timer(ids[0]) || ids[0] == reused);
        assert!(r.timer_pending(reused));
    }

    /// The reactor runs in its own thread; the test thread stops it with a
    /// handle and fails, rather than hangs, if `run` does not return.
    pub(super) fn stop_from_another_thread<P: Poller + 'static>(make: Make<P>) {
        let (handle_tx, handle_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let looper = thread::spawn(move || {
            let mut r = reactor(make);
            // Something to serve, and a timer far away: neither ends `run`.
            let (a, _b) = pair();
            r.register_owned(a, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))
                .unwrap();
            r.set_timer(Duration::from_secs(3600), |_, _| Ok(()))
                .unwrap();
            handle_tx.send(r.handle()).unwrap();
            let res = r.run();
            done_tx.send(res.map_err(|e| e.to_string())).unwrap();
            // A second stop, asked for while not running, ends the next run
            // at once.
            r.handle().stop().unwrap();
            r.run().unwrap();
        });
        let handle = handle_rx.recv_timeout(SAFETY).expect("reactor started");
        thread::sleep(Duration::from_millis(20)); // let it block in its wait
        handle.stop().unwrap();
        let res = done_rx
            .recv_timeout(SAFETY)
            .expect("run returned after stop");
        assert_eq!(res, Ok(()));
        looper.join().unwrap();
        assert!(handle.is_closed());
        assert!(matches!(handle.stop(), Err(Error::Closed)));
        assert!(matches!(handle.post(|_| Ok(())), Err(Error::Closed)));
    }

    pub(super) fn post_runs_on_the_loop_thread<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let loop_thread = thread::current().id();
        let handle = r.handle();
        let ran_on = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (peer_tx, peer_rx) = mpsc::channel();
        let ran = Arc::clone(&ran_on);
        let poster = thread::spawn(move || {
            // Hand a connection made here to the loop, the way an acceptor
            // thread gives connections to worker loops.
            let (mine, theirs) = pair();
            let r1 = Arc::clone(&ran);
            handle
                .post(move |ctx| {
                    r1.lock().unwrap().push(thread::current().id());
                    ctx.register_owned(theirs, Interest::READABLE, Mode::Level, |ctx, s, ev| {
                        let mut buf = [0; 16];
                        let n = s.read(&mut buf)?;
                        assert_eq!(&buf[..n], b"over");
                        ctx.unregister(ev.token())?;
                        ctx.stop();
                        Ok(())
                    })?;
                    Ok(())
                })
                .unwrap();
            let r2 = Arc::clone(&ran);
            handle
                .post(move |_| {
                    r2.lock().unwrap().push(thread::current().id());
                    Ok(())
                })
                .unwrap();
            peer_tx.send(mine).unwrap();
        });
        let mut mine = peer_rx.recv_timeout(SAFETY).unwrap();
        poster.join().unwrap();
        mine.write_all(b"over").unwrap();
        let watchdog = r.set_timer(SAFETY, |_, _| panic!("the loop was never stopped"));
        r.run().unwrap();
        r.cancel_timer(watchdog.unwrap());
        let ran_on = ran_on.lock().unwrap();
        assert_eq!(*ran_on, [loop_thread, loop_thread]);
        assert_eq!(r.source_count(), 0);
    }

    /// Installs an error handler that keeps every failure it is given.
    fn failures<P: Poller + 'static>(r: &mut Reactor<P>) -> Rc<RefCell<Vec<Failure>>> {
        let log: Rc<RefCell<Vec<Failure>>> = Rc::default();
        let l = Rc::clone(&log);
        r.set_error_handler(move |_, failure| l.borrow_mut().push(failure));
        log
    }

    fn origins(log: &Rc<RefCell<Vec<Failure>>>) -> Vec<Origin> {
        log.borrow().iter().map(|f| f.origin).collect()
    }

    /// A handler that fails and one that panics lose their sources (and are
    /// dropped); each failure reaches the error handler exactly once, naming
    /// the source; the loop goes on serving the others, including an event
    /// ready in the same turn, and `run` does not fail.
    pub(super) fn failing_handlers_lose_only_their_source<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let log = failures(&mut r);
        let (bad, mut wbad) = pair();
        let (boom, mut wboom) = pair();
        let (good, mut wgood) = pair();
        let (bad_fd, boom_fd) = (bad.as_raw_fd(), boom.as_raw_fd());
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(Rc::clone(&dropped));
        let tbad = r
            .register_owned(bad, Interest::READABLE, Mode::Level, |_, _, _| {
                Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame"))
            })
            .unwrap();
        let tboom = r
            .register_owned(boom, Interest::READABLE, Mode::Level, move |_, _, _| {
                let _keep = &flag;
                panic!("boom in the handler")
            })
            .unwrap();
        let good_calls = Rc::new(Cell::new(0));
        let g = Rc::clone(&good_calls);
        let tgood = r
            .register_owned(good, Interest::READABLE, Mode::Oneshot, move |_, _, _| {
                g.set(g.get() + 1);
                Ok(())
            })
            .unwrap();
        wbad.write_all(b"x").unwrap();
        wboom.write_all(b"x").unwrap();
        wgood.write_all(b"y").unwrap();
        turn_until(&mut r, || log.borrow().len() >= 2 && good_calls.get() == 1);
        let bad_origin = Origin::Source {
            fd: bad_fd,
            token: tbad,
        };
        let boom_origin = Origin::Source {
            fd: boom_fd,
            token: tboom,
        };
        let mut seen = origins(&log);
        seen.sort_by_key(|o| format!("{o:?}"));
        let mut want = vec![bad_origin, boom_origin];
        want.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(seen, want);
        for f in log.borrow().iter() {
            if f.origin == bad_origin {
                assert_eq!(
                    f.error().map(io::Error::kind),
                    Some(io::ErrorKind::InvalidData)
                );
                assert!(f.to_string().contains(&format!("fd {bad_fd}")), "{f}");
            } else {
                assert!(
                    matches!(&f.cause, Cause::Panicked(m) if m.contains("boom in the handler")),
                    "{f:?}"
                );
            }
        }
        assert!(!r.is_registered(tbad), "the failing source is unregistered");
        assert!(
            !r.is_registered(tboom),
            "the panicking source is unregistered"
        );
        assert!(dropped.get(), "and its handler dropped");
        // The good source goes on being served; nothing is reported twice.
        r.modify(tgood, Interest::READABLE, Mode::Oneshot).unwrap();
        turn_until(&mut r, || good_calls.get() == 2);
        let _ = wbad.write_all(b"more"); // nobody listens any more
        let _ = wboom.write_all(b"more");
        turn_n(&mut r, 3);
        assert_eq!(log.borrow().len(), 2, "each failure is reported once");
        assert_eq!(r.source_count(), 1);

        // `run` goes on through a failure until it is stopped. The event is
        // ready before the loop starts and I/O runs before timers, so the
        // failure comes first.
        let (late, mut wlate) = pair();
        let late_fd = late.as_raw_fd();
        let tlate = r
            .register_owned(late, Interest::READABLE, Mode::Level, |_, _, _| {
                Err(io::ErrorKind::Other.into())
            })
            .unwrap();
        wlate.write_all(b"z").unwrap();
        r.set_timer(Duration::from_millis(20), |ctx, _| {
            ctx.stop();
            Ok(())
        })
        .unwrap();
        r.run().unwrap();
        assert_eq!(
            origins(&log)[2..],
            [Origin::Source {
                fd: late_fd,
                token: tlate
            }]
        );
    }

    /// Timers and posted closures that fail or panic are reported with their
    /// origin; a failing repeating timer is cancelled; the loop goes on.
    pub(super) fn failing_timers_and_posts_are_reported<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let log = failures(&mut r);
        let ticks = Rc::new(Cell::new(0));
        let t = Rc::clone(&ticks);
        let bad = r
            .set_interval(Duration::from_millis(1), move |_, _| {
                t.set(t.get() + 1);
                Err(io::Error::new(io::ErrorKind::Other, "tick failed"))
            })
            .unwrap();
        let boom = r
            .set_timer(Duration::ZERO, |_, _| panic!("timer boom"))
            .unwrap();
        let later = timer_flag(&mut r, Duration::from_millis(10));
        turn_until(&mut r, || later.get());
        assert_eq!(ticks.get(), 1, "a failing repeating timer is cancelled");
        assert!(!r.timer_pending(bad));
        let h = r.handle();
        h.post(|_| Err(io::Error::new(io::ErrorKind::Other, "posted failure")))
            .unwrap();
        h.post(|_| panic!("posted boom")).unwrap();
        h.post(|ctx| {
            ctx.stop();
            Ok(())
        })
        .unwrap();
        r.run().unwrap(); // the third closure still runs, and stops the loop
        assert_eq!(
            origins(&log),
            [
                Origin::Timer(boom),
                Origin::Timer(bad),
                Origin::Posted,
                Origin::Posted
            ]
        );
        let log = log.borrow();
        assert_eq!(log[0].panic_message(), Some("timer boom"));
        assert_eq!(
            log[1].error().map(ToString::to_string).as_deref(),
            Some("tick failed")
        );
        assert_eq!(
            log[2].error().map(ToString::to_string).as_deref(),
            Some("posted failure")
        );
        assert_eq!(log[3].panic_message(), Some("posted boom"));
    }

    /// A destructor that panics is blamed on what it belonged to, not on the
    /// callback that caused the drop: handler A unregisters source B and
    /// cancels a timer, both of whose callbacks own a `Bomb`; B and the
    /// timer are reported, A keeps its source and is served again.
    pub(super) fn destructor_panics_are_blamed_on_their_owner<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let log = failures(&mut r);
        let (b, _wb) = pair();
        let b_fd = b.as_raw_fd();
        let bomb = Bomb("B's destructor");
        let tb = r
            .register_owned(b, Interest::READABLE, Mode::Level, move |_, _, _| {
                let _keep = &bomb;
                Ok(())
            })
            .unwrap();
        let timer_bomb = Bomb("the timer's destructor");
        let tt = r
            .set_timer(Duration::from_secs(3600), move |_, _| {
                let _keep = &timer_bomb;
                Ok(())
            })
            .unwrap();
        let (a, mut wa) = pair();
        let calls = Rc::new(Cell::new(0));
        let c = Rc::clone(&calls);
        let cancelled = Rc::new(Cell::new(false));
        let cl = Rc::clone(&cancelled);
        let ta = r
            .register_owned(a, Interest::READABLE, Mode::Level, move |ctx, a, _| {
                let mut buf = [0; 16];
                let _ = a.read(&mut buf)?;
                c.set(c.get() + 1);
                if c.get() == 1 {
                    ctx.unregister(tb)?;
                    cl.set(ctx.cancel_timer(tt));
                }
                Ok(())
            })
            .unwrap();
        wa.write_all(b"1").unwrap();
        turn_until(&mut r, || calls.get() == 1);
        assert!(cancelled.get());
        assert_eq!(
            origins(&log),
            [
                Origin::Source {
                    fd: b_fd,
                    token: tb
                },
                Origin::Timer(tt)
            ]
        );
        assert_eq!(log.borrow()[0].panic_message(), Some("B's destructor"));
        assert_eq!(
            log.borrow()[1].panic_message(),
            Some("the timer's destructor")
        );
        assert!(r.is_registered(ta), "A survives");
        assert!(!r.is_registered(tb));
        wa.write_all(b"2").unwrap();
        turn_until(&mut r, || calls.get() == 2);

        // The owned object's destructor, run by an unregister from outside
        // the loop: reported at the start of the next turn, not before.
        let (d, _wd) = pair();
        let d_fd = d.as_raw_fd();
        let armed = Armed(d, Bomb("the object's destructor"));
        let td = r
            .register_owned(armed, Interest::READABLE, Mode::Level, |_, _, _| Ok(()))
            .unwrap();
        r.unregister(td).unwrap();
        assert_eq!(log.borrow().len(), 2, "not reported inside unregister");
        // A turn with nothing else to do does not sleep on it: it returns
        // long before this watchdog.
        let watchdog = timer_flag(&mut r, SAFETY);
        r.run_once(None).unwrap();
        assert!(!watchdog.get(), "the turn slept with a failure to report");
        assert_eq!(log.borrow().len(), 3);
        turn_n(&mut r, 2);
        assert_eq!(
            origins(&log)[2..],
            [Origin::Source {
                fd: d_fd,
                token: td
            }]
        );
        assert_eq!(
            log.borrow()[2].panic_message(),
            Some("the object's destructor")
        );
    }

    /// An error handler that panics is dropped, and later failures no
    /// longer reach it (they go to the default report). Failures the error
    /// handler causes itself are reported after it returns, once each.
    pub(super) fn the_error_handler_is_guarded_too<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let seen: Rc<RefCell<Vec<Origin>>> = Rc::default();
        let (b, _wb) = pair();
        let b_fd = b.as_raw_fd();
        let bomb = Bomb("B's destructor");
        let tb = r
            .register_owned(b, Interest::READABLE, Mode::Level, move |_, _, _| {
                let _keep = &bomb;
                Ok(())
            })
            .unwrap();
        let s = Rc::clone(&seen);
        r.set_error_handler(move |ctx, failure| {
            s.borrow_mut().push(failure.origin);
            if let Origin::Timer(_) = failure.origin {
                ctx.unregister(tb).unwrap(); // B's destructor panics: one more failure
            }
        });
        let first = r
            .set_timer(Duration::ZERO, |_, _| Err(io::ErrorKind::Other.into()))
            .unwrap();
        turn_until(&mut r, || seen.borrow().len() == 2);
        turn_n(&mut r, 2);
        assert_eq!(
            *seen.borrow(),
            [
                Origin::Timer(first),
                Origin::Source {
                    fd: b_fd,
                    token: tb
                }
            ]
        );

        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(Rc::clone(&dropped));
        let calls = Rc::new(Cell::new(0));
        let c = Rc::clone(&calls);
        r.set_error_handler(move |_, _| {
            let _keep = &flag;
            c.set(c.get() + 1);
            panic!("the error handler fails too")
        });
        let fired = timer_flag(&mut r, Duration::from_millis(5));
        r.set_timer(Duration::ZERO, |_, _| Err(io::ErrorKind::Other.into()))
            .unwrap();
        r.set_timer(Duration::ZERO, |_, _| Err(io::ErrorKind::Other.into()))
            .unwrap();
        turn_until(&mut r, || fired.get());
        assert_eq!(
            calls.get(),
            1,
            "a panicking error handler is not called again"
        );
        assert!(dropped.get(), "and is dropped");

        // One that clears itself from its own call is not put back.
        let calls = Rc::new(Cell::new(0));
        let c = Rc::clone(&calls);
        r.set_error_handler(move |ctx, _| {
            c.set(c.get() + 1);
            ctx.clear_error_handler();
        });
        let fired = timer_flag(&mut r, Duration::from_millis(5));
        r.set_timer(Duration::ZERO, |_, _| Err(io::ErrorKind::Other.into()))
            .unwrap();
        r.set_timer(Duration::ZERO, |_, _| Err(io::ErrorKind::Other.into()))
            .unwrap();
        turn_until(&mut r, || fired.get());
        assert_eq!(calls.get(), 1, "cleared from inside: not called again");
    }

    /// Dropping the reactor reports destructors that panic, naming their
    /// source, to the error handler.
    pub(super) fn drop_reports_destructor_panics<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let seen: Rc<RefCell<Vec<Origin>>> = Rc::default();
        let s = Rc::clone(&seen);
        r.set_error_handler(move |_, failure| s.borrow_mut().push(failure.origin));
        let (b, _wb) = pair();
        let b_fd = b.as_raw_fd();
        let tb = r
            .register_owned(
                Armed(b, Bomb("dropped with the reactor")),
                Interest::READABLE,
                Mode::Level,
                |_, _, _| Ok(()),
            )
            .unwrap();
        let bomb = Bomb("a timer dropped with the reactor");
        let tt = r
            .set_timer(Duration::from_secs(3600), move |_, _| {
                let _keep = &bomb;
                Ok(())
            })
            .unwrap();
        drop(r);
        assert_eq!(
            *seen.borrow(),
            [
                Origin::Source {
                    fd: b_fd,
                    token: tb
                },
                Origin::Timer(tt)
            ]
        );
    }

    /// `modify_with` replaces a source's handler, interest and mode in one
    /// call and drops the old handler; a handler may replace itself (its
    /// call finishes first). `modify_owned` keeps handing over the object.
    pub(super) fn modify_with_replaces_the_handler<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, mut b) = pair();
        let log: Rc<RefCell<Vec<&'static str>>> = Rc::default();
        let old_dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(Rc::clone(&old_dropped));
        let t = r
            .register(
                a.as_raw_fd(),
                Interest::WRITABLE,
                Mode::Level,
                move |_, _| -> io::Result<()> {
                    let _keep = &flag;
                    panic!("the first handler never runs")
                },
            )
            .unwrap();
        let l = Rc::clone(&log);
        r.modify_with(t, Interest::READABLE, Mode::Level, move |ctx, ev| {
            l.borrow_mut().push("second");
            let l2 = Rc::clone(&l);
            ctx.modify_with(
                ev.token(),
                Interest::READABLE,
                Mode::Oneshot,
                move |_, _| {
                    l2.borrow_mut().push("third");
                    Ok(())
                },
            )?;
            l.borrow_mut().push("second, replaced");
            Ok(())
        })
        .unwrap();
        assert!(old_dropped.get(), "the replaced handler is dropped at once");
        turn_n(&mut r, 2);
        assert!(log.borrow().is_empty(), "no longer watched for writing");
        b.write_all(b"x").unwrap();
        turn_until(&mut r, || log.borrow().len() >= 3);
        turn_n(&mut r, 3);
        assert_eq!(*log.borrow(), ["second", "second, replaced", "third"]);
        assert!(matches!(
            r.modify_with(Token(12345), Interest::READABLE, Mode::Level, |_, _| Ok(())),
            Err(Error::UnknownToken(Token(12345)))
        ));
        assert!(matches!(
            r.modify_owned(t, Interest::READABLE, Mode::Level, |_, _: &mut UnixStream, _| Ok(())),
            Err(Error::NotOwned(x)) if x == t
        ));
        r.unregister(t).unwrap();

        // The owned object goes to the new handler.
        let (c, mut d) = pair();
        let got: Rc<RefCell<Vec<u8>>> = Rc::default();
        let tc = r
            .register_owned(
                c,
                Interest::READABLE,
                Mode::Level,
                |_, _: &mut UnixStream, _| panic!("replaced before it runs"),
            )
            .unwrap();
        let g = Rc::clone(&got);
        r.modify_owned(
            tc,
            Interest::READABLE,
            Mode::Level,
            move |_, c: &mut UnixStream, _| {
                let mut buf = [0; 8];
                let n = c.read(&mut buf)?;
                g.borrow_mut().extend_from_slice(&buf[..n]);
                Ok(())
            },
        )
        .unwrap();
        assert!(matches!(
            r.modify_owned(tc, Interest::READABLE, Mode::Level, |_, _: &mut TcpStream, _| Ok(())),
            Err(Error::NotOwned(x)) if x == tc
        ));
        d.write_all(b"owned").unwrap();
        turn_until(&mut r, || got.borrow().len() == 5);
        assert_eq!(&*got.borrow(), b"owned");
        // A plain handler in its place: the object stays open with the source
        // and closes when it is unregistered.
        r.modify_with(tc, Interest::WRITABLE, Mode::Oneshot, |_, _| Ok(()))
            .unwrap();
        turn_n(&mut r, 2);
        d.write_all(b"still open").unwrap();
        r.unregister(tc).unwrap();
        assert_eq!(
            d.write_all(b"closed").map_err(|e| e.kind()),
            Err(io::ErrorKind::BrokenPipe)
        );
    }

    /// A handler written once as a plain `fn`: its context names no poller,
    /// so it serves every backend.
    fn unregister_on_event(ctx: &mut Context, ev: Event) -> io::Result<()> {
        Ok(ctx.unregister(ev.token())?)
    }

    pub(super) fn a_plain_fn_handler_serves_any_backend<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, _b) = pair();
        r.register(
            a.as_raw_fd(),
            Interest::WRITABLE,
            Mode::Level,
            unregister_on_event,
        )
        .unwrap();
        let deadline = Instant::now() + SAFETY;
        while r.source_count() > 0 {
            assert!(Instant::now() < deadline, "the handler never ran");
            r.run_once(Some(SAFETY)).unwrap();
        }
    }

    /// A burst of a million timers, set and cancelled, leaves no memory
    /// behind: the timer slab and heap shrink back (and a long-lived timer
    /// set before the burst stays). Measured as the bytes this thread holds.
    pub(super) fn timer_slab_shrinks_after_a_burst<P: Poller + 'static>(make: Make<P>) {
        /// Bytes a million timers hold at the least: one heap entry (an
        /// `Instant` alone is 12 bytes) and one slab slot each.
        const BURST_FLOOR: i64 = 16_000_000;
        /// What the burst may leave: the 64 slots and heap entries kept
        /// after it, at well under 128 bytes each.
        const LEFT_CEILING: i64 = 64 * 128;
        let mut r = reactor(make);
        let keep = r
            .set_interval(Duration::from_secs(3600), |_, _| Ok(()))
            .unwrap();
        let mut ids: Vec<TimerId> = Vec::with_capacity(1_000_000);
        let before = live_bytes();
        for i in 0..1_000_000u64 {
            ids.push(
                r.set_timer(Duration::from_secs(1 + i % 1000), |_, _| Ok(()))
                    .unwrap(),
            );
        }
        let burst = live_bytes() - before;
        assert!(burst > BURST_FLOOR, "a million timers hold {burst} bytes");
        for id in ids.drain(..) {
            assert!(r.cancel_timer(id));
        }
        assert_eq!(r.timer_count(), 1);
        let left = live_bytes() - before;
        assert!(
            left <= LEFT_CEILING,
            "{left} bytes left after the burst ({burst} during it)"
        );
        assert!(r.timer_pending(keep));
        turn_n(&mut r, 1);
        assert!(r.timer_pending(keep));
    }

    /// Once warmed up, a turn that dispatches events and a repeating timer
    /// allocates nothing.
    pub(super) fn steady_state_does_not_allocate<P: Poller + 'static>(make: Make<P>) {
        let mut r = reactor(make);
        let (a, mut w) = pair();
        let calls = Rc::new(Cell::new(0u64));
        let c = Rc::clone(&calls);
        r.register_owned(a, Interest::READABLE, Mode::Level, move |_, a, _| {
            let mut buf = [0; 64];
            match a.read(&mut buf) {
                Ok(_) => c.set(c.get() + 1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            Ok(())
        })
        .unwrap();
        let ticks = Rc::new(Cell::new(0u64));
        let t = Rc::clone(&ticks);
        r.set_interval(Duration::from_micros(200), move |_, _| {
            t.set(t.get() + 1);
            Ok(())
        })
        .unwrap();
        let mut ping = |r: &mut Reactor<P>, n: u64| {
            for _ in 0..n {
                w.write_all(b"p").unwrap();
                let before = calls.get();
                let deadline = Instant::now() + SAFETY;
                while calls.get() == before {
                    assert!(Instant::now() < deadline);
                    r.run_once(Some(SAFETY)).unwrap();
                }
            }
        };
        ping(&mut r, 200); // warm up: buffers reach their working size
        let sanity = allocations();
        drop(std::hint::black_box(Vec::<u8>::with_capacity(8)));
        assert_eq!(allocations(), sanity + 1, "the counter counts");
        let start = allocations();
        ping(&mut r, 2_000);
        // And some ticks of the repeating timer, which reschedules itself.
        let ticked = ticks.get();
        let deadline = Instant::now() + SAFETY;
        while ticks.get() < ticked + 5 {
            assert!(Instant::now() < deadline);
            r.run_once(Some(SAFETY)).unwrap();
        }
        let allocated = allocations() - start;
        assert_eq!(
            allocated,
            0,
            "{allocated} allocations in 2000 steady-state turns on {}",
            r.poller().name()
        );
        assert!(calls.get() >= 2_200);
    }

    /// Dropping the reactor unregisters its sources from a poller that
    /// outlives it, and drops the handlers and what they own.
    pub(super) fn drop_cleans_up_a_shared_poller<P: Poller + 'static>(make: Make<P>) {
        let poller = Arc::new(make().unwrap());
        let mut r = Reactor::with_poller(Arc::clone(&poller));
        let (a, _b) = pair();
        let fd = a.as_raw_fd();
        let (keep, _keep_peer) = pair();
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(Rc::clone(&dropped));
        r.register(
            keep.as_raw_fd(),
            Interest::READABLE,
            Mode::Level,
            move |_, _| {
                let _ = &flag;
                Ok(())
            },
        )
        .unwrap();
        r.register(fd, Interest::READABLE, Mode::Level, |_, _| Ok(()))
            .unwrap();
        r.set_timer(Duration::from_secs(60), |_, _| Ok(())).unwrap();
        let h = r.handle();
        drop(r);
        assert!(dropped.get());
        poller
            .register(fd, Token(1), Interest::READABLE, Mode::Level)
            .expect("the reactor left the descriptor unregistered");
        poller.unregister(fd).unwrap();
        assert!(h.is_closed());
        h.wake().unwrap(); // the poller lives on; waking it is harmless
    }

    /// Two reactors over the same backend, each with one source under the
    /// same token: each source's events reach its own handler, and only
    /// them, whichever reactor turns.
    pub(super) fn two_reactors_keep_their_own_sources<P: Poller + 'static>(make: Make<P>) {
        /// What one handler read from its own socket, and how often it ran.
        #[derive(Default)]
        struct Seen {
            bytes: Vec<u8>,
            calls: usize,
        }
        fn reader(
            mut sock: UnixStream,
            seen: &Rc<RefCell<Seen>>,
        ) -> impl FnMut(&mut Context, Event) -> io::Result<()> + 'static {
            let seen = Rc::clone(seen);
            move |_, _| {
                let mut buf = [0; 16];
                let mut seen = seen.borrow_mut();
                seen.calls += 1;
                match sock.read(&mut buf) {
                    Ok(n) => seen.bytes.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                Ok(())
            }
        }
        let mut r1 = reactor(make);
        let mut r2 = reactor(make);
        let (a1, mut b1) = pair();
        let (a2, mut b2) = pair();
        let seen1 = Rc::new(RefCell::new(Seen::default()));
        let seen2 = Rc::new(RefCell::new(Seen::default()));
        let (fd1, fd2) = (a1.as_raw_fd(), a2.as_raw_fd());
        let t1 = r1
            .register(fd1, Interest::READABLE, Mode::Level, reader(a1, &seen1))
            .unwrap();
        let t2 = r2
            .register(fd2, Interest::READABLE, Mode::Level, reader(a2, &seen2))
            .unwrap();
        assert_eq!(t1, t2, "the same token in both reactors");

        // Before 0.3.0, `std::mem::swap(&mut *r1, &mut *r2)` swapped their
        // contexts and not their pollers: each reactor then ran the other's
        // handler for its own source. A reactor hands out no `&mut Context`
        // now (see the `compile_fail` example on `Reactor`); the test keeps
        // two reactors with equal tokens turning side by side.

        // Only the first source is ready: only its handler runs.
        b1.write_all(b"one").unwrap();
        let deadline = Instant::now() + SAFETY;
        while seen1.borrow().bytes.len() < 3 {
            assert!(
                Instant::now() < deadline,
                "the bytes arrive within {SAFETY:?}"
            );
            r1.run_once(Some(Duration::from_millis(10))).expect("turn");
            r2.run_once(Some(Duration::from_millis(10))).expect("turn");
            assert_eq!(seen2.borrow().calls, 0, "the quiet source's handler ran");
        }
        assert_eq!(seen1.borrow().bytes, b"one");

        // Then only the second.
        let calls1 = seen1.borrow().calls;
        b2.write_all(b"two").unwrap();
        while seen2.borrow().bytes.len() < 3 {
            assert!(
                Instant::now() < deadline,
                "the bytes arrive within {SAFETY:?}"
            );
            r1.run_once(Some(Duration::from_millis(10))).expect("turn");
            r2.run_once(Some(Duration::from_millis(10))).expect("turn");
            assert_eq!(
                seen1.borrow().calls,
                calls1,
                "the quiet source's handler ran"
            );
        }
        assert_eq!(seen2.borrow().bytes, b"two");
        assert_eq!(seen1.borrow().bytes, b"one");
    }
}

/// Instantiates the suite for one backend.
macro_rules! reactor_suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn callbacks_fire_for_the_right_source() {
                suite::callbacks_fire_for_the_right_source($make)
            }
            #[test]
            fn modify_changes_interest_and_rearms_oneshot() {
                suite::modify_changes_interest_and_rearms_oneshot($make)
            }
            #[test]
            fn errors_are_typed() {
                suite::errors_are_typed($make)
            }
            #[test]
            fn handler_unregisters_itself() {
                suite::handler_unregisters_itself($make)
            }
            #[test]
            fn unregistering_another_during_dispatch() {
                suite::unregistering_another_during_dispatch($make)
            }
            #[test]
            fn reused_slot_gets_no_stale_event() {
                suite::reused_slot_gets_no_stale_event($make)
            }
            #[test]
            fn listener_registers_connections() {
                suite::listener_registers_connections($make)
            }
            #[test]
            fn timers_fire_in_order_never_early() {
                suite::timers_fire_in_order_never_early($make)
            }
            #[test]
            fn the_loop_sleeps_until_the_deadline() {
                suite::the_loop_sleeps_until_the_deadline($make)
            }
            #[test]
            fn cancelled_timers_never_fire() {
                suite::cancelled_timers_never_fire($make)
            }
            #[test]
            fn repeating_timer_fires_n_times_and_cancels_itself() {
                suite::repeating_timer_fires_n_times_and_cancels_itself($make)
            }
            #[test]
            fn hundred_thousand_timers_set_and_cancelled() {
                suite::hundred_thousand_timers_set_and_cancelled($make)
            }
            #[test]
            fn stop_from_another_thread() {
                suite::stop_from_another_thread($make)
            }
            #[test]
            fn post_runs_on_the_loop_thread() {
                suite::post_runs_on_the_loop_thread($make)
            }
            #[test]
            fn failing_handlers_lose_only_their_source() {
                suite::failing_handlers_lose_only_their_source($make)
            }
            #[test]
            fn failing_timers_and_posts_are_reported() {
                suite::failing_timers_and_posts_are_reported($make)
            }
            #[test]
            fn destructor_panics_are_blamed_on_their_owner() {
                suite::destructor_panics_are_blamed_on_their_owner($make)
            }
            #[test]
            fn the_error_handler_is_guarded_too() {
                suite::the_error_handler_is_guarded_too($make)
            }
            #[test]
            fn drop_reports_destructor_panics() {
                suite::drop_reports_destructor_panics($make)
            }
            #[test]
            fn modify_with_replaces_the_handler() {
                suite::modify_with_replaces_the_handler($make)
            }
            #[test]
            fn a_plain_fn_handler_serves_any_backend() {
                suite::a_plain_fn_handler_serves_any_backend($make)
            }
            #[test]
            fn timer_slab_shrinks_after_a_burst() {
                suite::timer_slab_shrinks_after_a_burst($make)
            }
            #[test]
            fn steady_state_does_not_allocate() {
                suite::steady_state_does_not_allocate($make)
            }
            #[test]
            fn two_reactors_keep_their_own_sources() {
                suite::two_reactors_keep_their_own_sources($make)
            }
            #[test]
            fn drop_cleans_up_a_shared_poller() {
                suite::drop_cleans_up_a_shared_poller($make)
            }
        }
    };
}

/// One module per backend of the one backend list.
macro_rules! reactor_suite_for {
    ($module:ident, $backend:expr, $poller:ty) => {
        reactor_suite!($module, || tripoll::AnyPoller::new($backend));
    };
}

common::for_each_backend!(reactor_suite_for);

/// `Reactor::new` takes the backend from `TRIPOLL_BACKEND`.
#[test]
fn new_uses_the_environment_backend() {
    let r = Reactor::new().expect("reactor");
    let expected = tripoll::Backend::from_env().unwrap();
    assert_eq!(r.poller().backend(), expected);
}

/// The handle is `Send + Sync + Clone`; the reactor is tied to its thread.
#[test]
fn handle_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<tripoll::reactor::Handle>();
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Error>();
}
