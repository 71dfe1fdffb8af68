//! The conformance suite: every promise of the [`Poller`] contract (see
//! `src/poller.rs`), written once in [`suite`] and instantiated for each
//! backend of the one backend list (`tests/common`) by [`conformance!`]:
//! `epoll`, `poll`, `select`, `uring` (with the `io-uring` feature), and
//! `env` (the backend `TRIPOLL_BACKEND` chooses, through
//! `AnyPoller::from_env`). Its sections follow the contract's points, with
//! their numbers; [`layout`] checks that, and that every test of the suite
//! is in the one list the backends run.
//!
//! Tests ask the poller what it can do (`supports`, `capabilities`) and
//! check either the behaviour or the refusal. Everything runs on real
//! descriptors: pipes, Unix socket pairs and TCP over 127.0.0.1.
//!
//! Timing: no test asserts that something is *fast*. Lower bounds (a wait
//! lasts at least its timeout) are correctness checks; upper bounds are
//! only generous safety nets that turn a hang into a failure.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tripoll::{
    AnyPoller, Backend, Capabilities, Error, Events, Interest, Mode, Poller, Token, FD_SETSIZE,
};

use common::{
    assert_quiet, drain, dup_onto, events_for, pipe, socket_pair, tcp_pair, wait_for, wait_one,
    Interrupter, Watchdog, XorShift, SAFETY,
};

/// Counts each thread's allocations: a wait must allocate nothing
/// (contract point 10).
#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

use common::alloc::allocations;

/// The generic tests. Each takes the backend's constructor.
mod suite {
    use super::*;

    const T1: Token = Token(1);
    const T2: Token = Token(2);
    const T3: Token = Token(3);

    /// How long a watchdog lets a blocking wait run before failing the test.
    const HANG: Duration = Duration::from_secs(10);

    fn shared<P: Poller + 'static>(make: fn() -> P) -> Arc<P> {
        Arc::new(make())
    }

    fn watchdog<P: Poller + 'static>(p: &Arc<P>) -> Watchdog {
        Watchdog::arm(Arc::clone(p) as Arc<dyn Poller>, HANG)
    }

    /// `wait(None)` under a watchdog: returns what the wait returned, and
    /// fails with `why` if the watchdog had to end it.
    fn wait_unbounded<P: Poller + 'static>(p: &Arc<P>, events: &mut Events, why: &str) -> usize {
        let dog = watchdog(p);
        let n = p.wait(events, None).unwrap();
        assert!(!dog.disarm(), "{why}");
        n
    }

    /// [`wait_unbounded`] while another thread, once the wait has had time
    /// to block, runs `act` on the poller. The wait must not return before
    /// `act` begins. Returns what the wait and `act` returned.
    fn wait_while<P: Poller + 'static, R: Send + 'static>(
        p: &Arc<P>,
        events: &mut Events,
        why: &str,
        act: impl FnOnce(&P) -> R + Send + 'static,
    ) -> (usize, R) {
        let began = Arc::new(AtomicBool::new(false));
        let (b, q) = (Arc::clone(&began), Arc::clone(p));
        let other = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            b.store(true, Ordering::SeqCst);
            act(&q)
        });
        let n = wait_unbounded(p, events, why);
        assert!(
            began.load(Ordering::SeqCst),
            "the wait returned before the other thread acted: {events:?}"
        );
        (n, other.join().unwrap())
    }

    /// Asserts that `mode` is refused with `Unsupported` naming this backend
    /// and mode, that nothing was registered, and that the same descriptor
    /// then registers with `Level` and works.
    fn assert_refuses<P: Poller>(p: &P, mode: Mode) {
        assert!(!p.supports(mode));
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        match p.register(fd, T1, Interest::READABLE, mode) {
            Err(Error::Unsupported { backend, mode: m }) => {
                assert_eq!((backend, m), (p.backend(), mode));
            }
            other => panic!("{} register {mode:?}: {other:?}", p.name()),
        }
        assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { fd: f }) if f == fd));
        p.register(fd, T2, Interest::READABLE, Mode::Level)
            .expect("a refused mode leaves no state");
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        assert!(wait_one(p, &mut events, T2).is_readable());
        p.unregister(fd).unwrap();
    }

    // -- Identity and capabilities --------------------------------------------

    pub(crate) fn capabilities_are_consistent<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let caps = p.capabilities();
        assert_eq!(p.name(), p.backend().name());
        for mode in Mode::ALL {
            assert_eq!(p.supports(mode), caps.contains(mode.requires()), "{mode:?}");
        }
        assert!(p.supports(Mode::Level), "level works everywhere");
        assert!(p.supports(Mode::Oneshot), "oneshot works everywhere");
        let expected = match p.backend() {
            // Busy polling depends on the kernel (6.9) and its policy.
            Backend::Epoll if tripoll::Epoll::new().unwrap().busy_poll().is_ok() => {
                Capabilities::all()
            }
            Backend::Epoll => Capabilities::all().difference(Capabilities::BUSY_POLL),
            Backend::Poll => {
                Capabilities::ONESHOT
                    | Capabilities::READ_CLOSED
                    | Capabilities::WRITE_CLOSED
                    | Capabilities::UNBOUNDED_FDS
            }
            Backend::Select => Capabilities::ONESHOT,
            Backend::IoUring => {
                Capabilities::EDGE
                    | Capabilities::ONESHOT
                    | Capabilities::READ_CLOSED
                    | Capabilities::WRITE_CLOSED
                    | Capabilities::UNBOUNDED_FDS
            }
            other => panic!("{other}: add its capabilities to this table"),
        };
        assert_eq!(caps, expected);
    }

    pub(crate) fn every_mode_matches_supports<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let mut events = Events::with_capacity(8);
        for mode in Mode::ALL {
            if !p.supports(mode) {
                assert_refuses(&p, mode);
                continue;
            }
            let (a, mut b) = socket_pair();
            p.register(a.as_raw_fd(), T1, Interest::READABLE, mode)
                .unwrap_or_else(|e| panic!("{} claims {mode:?} but refuses it: {e}", p.name()));
            b.write_all(b"x").unwrap();
            let e = wait_one(&p, &mut events, T1);
            assert!(e.is_readable() && !e.is_writable(), "{mode:?}: {e:?}");
            p.unregister(a.as_raw_fd()).unwrap();
        }
    }

    // -- Contract 1: timeouts -------------------------------------------------

    /// Zero-timeout waits, with nothing registered and then with a
    /// descriptor that is not ready. They run on a helper thread so that a
    /// wait that blocks fails the test instead of hanging it (a watchdog
    /// would have to register a descriptor of its own).
    pub(crate) fn zero_timeout_returns_at_once<P: Poller + 'static>(make: fn() -> P) {
        let (tx, rx) = std::sync::mpsc::channel();
        let helper = thread::spawn(move || {
            let result = {
                let p = make();
                let mut events = Events::with_capacity(8);
                let empty: Vec<usize> = (0..100)
                    .map(|_| p.wait(&mut events, Some(Duration::ZERO)).unwrap())
                    .collect();
                let (a, _b) = socket_pair();
                p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
                    .unwrap();
                let idle = p.wait(&mut events, Some(Duration::ZERO)).unwrap();
                (empty, idle, events.len())
            }; // descriptors closed before reporting back
            let _ = tx.send(result);
        });
        let (empty, idle, len) = rx.recv_timeout(HANG).expect("a zero-timeout wait blocked");
        helper.join().unwrap();
        assert!(
            empty.iter().all(|&n| n == 0),
            "nothing registered: {empty:?}"
        );
        assert_eq!((idle, len), (0, 0), "registered, not ready");
    }

    pub(crate) fn short_timeouts_are_not_cut_short<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, _b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        for t in [
            Duration::from_nanos(1),
            Duration::from_micros(100),
            Duration::from_micros(1_500),
            Duration::from_millis(25),
        ] {
            let start = Instant::now();
            let n = p.wait(&mut events, Some(t)).unwrap();
            let elapsed = start.elapsed();
            assert_eq!(n, 0, "{t:?}");
            assert!(elapsed >= t, "a {t:?} wait returned after {elapsed:?}");
        }
    }

    /// A wait with nothing to report sleeps, even when registered
    /// descriptors are ready in ways it must not report: data behind a
    /// disarmed oneshot, data under a priority-only interest.
    pub(crate) fn idle_wait_sleeps<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let mut events = Events::with_capacity(8);
        let (a, _b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let (c, mut d) = socket_pair();
        d.write_all(b"x").unwrap();
        p.register(c.as_raw_fd(), T2, Interest::READABLE, Mode::Oneshot)
            .unwrap();
        wait_one(&p, &mut events, T2); // now disarmed, data still there
        let (e, mut f) = socket_pair();
        f.write_all(b"x").unwrap();
        p.register(e.as_raw_fd(), T3, Interest::PRIORITY, Mode::Level)
            .unwrap();
        let (rd, _wr) = pipe();
        p.register(rd.as_raw_fd(), Token(4), Interest::READABLE, Mode::Level)
            .unwrap();
        common::assert_sleeps(&p, &mut events, Duration::from_millis(150), "idle");
    }

    pub(crate) fn no_timeout_blocks_until_data<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let (n, _b) = wait_while(&p, &mut events, "wait(None) did not see the data", |_| {
            b.write_all(b"late").unwrap();
            b
        });
        assert_eq!(n, 1, "{events:?}");
        assert!(events_for(&events, T1)[0].is_readable());
    }

    pub(crate) fn huge_timeouts_clamp_instead_of_wrapping<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let mut events = Events::with_capacity(8);
        for t in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_secs(i64::MAX as u64),
            Duration::from_secs(1 << 40),
            // 2^32 ms: a C int truncation would make it 0, i.e. no wait.
            Duration::from_millis(1 << 32),
            // 2^31 ms: just past i32::MAX milliseconds.
            Duration::from_millis(1 << 31),
        ] {
            let sent = Arc::new(AtomicBool::new(false));
            let (s, q) = (Arc::clone(&sent), Arc::clone(&p));
            let notifier = thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                s.store(true, Ordering::SeqCst);
                q.notify().unwrap();
            });
            let dog = watchdog(&p);
            let n = p.wait(&mut events, Some(t));
            assert!(!dog.disarm(), "{t:?}: the notify did not end the wait");
            assert_eq!(n.unwrap_or_else(|e| panic!("{t:?}: {e}")), 0);
            assert!(
                sent.load(Ordering::SeqCst),
                "{t:?}: returned before the notify, as if the timeout were 0"
            );
            notifier.join().unwrap();
        }
    }

    // -- Contract 2: signals --------------------------------------------------

    /// Interrupts a 500 ms wait every 5 ms during its first 90%, then lets
    /// it run out.
    ///
    /// - A wait that gives up on `EINTR` ends before its timeout.
    /// - A wait that restarts with the full timeout cannot end before the
    ///   last signal plus the full timeout; that is a certainty, not a
    ///   matter of speed. One that resumes with the remaining time ends at
    ///   the timeout plus scheduling delay: the bound leaves it about 450 ms
    ///   of delay, and a signaller slowed down by load only adds to that.
    pub(crate) fn eintr_resumes_with_the_remaining_time<P: Poller + 'static>(make: fn() -> P) {
        const TIMEOUT: Duration = Duration::from_millis(500);
        let p = make();
        let (a, _b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let before = common::signals_received();
        let start = Instant::now();
        let interrupter = Interrupter::start(Duration::from_millis(5), TIMEOUT * 9 / 10);
        let n = p.wait(&mut events, Some(TIMEOUT));
        let end = Instant::now();
        let (sent, last) = interrupter.stop();
        let handled = common::signals_received() - before;
        assert_eq!(n.expect("EINTR must not surface"), 0);
        assert!(
            end - start >= TIMEOUT,
            "interrupted wait ended early: {:?}",
            end - start
        );
        assert!(sent >= 1 && handled >= 1, "no signal was delivered");
        let last = last.expect("a signal was sent");
        assert!(
            end < last + TIMEOUT,
            "the wait ended {:?} after the last signal: EINTR restarted the full {TIMEOUT:?}",
            end - last
        );
    }

    pub(crate) fn eintr_does_not_end_an_infinite_wait<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let written = Arc::new(AtomicBool::new(false));
        let w = Arc::clone(&written);
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            w.store(true, Ordering::SeqCst);
            b.write_all(b"x").unwrap();
            b
        });
        let before = common::signals_received();
        let dog = watchdog(&p);
        let interrupter = Interrupter::start(Duration::from_millis(5), HANG);
        let mut events = Events::with_capacity(8);
        let n = p.wait(&mut events, None);
        let (sent, _) = interrupter.stop();
        assert!(!dog.disarm(), "the data did not end the wait");
        let handled = common::signals_received() - before;
        assert!(sent >= 1 && handled >= 1, "no signal was delivered");
        assert_eq!(n.expect("EINTR must not surface"), 1, "{events:?}");
        assert!(written.load(Ordering::SeqCst), "returned before the data");
        drop(writer.join().unwrap());
    }

    // -- Contract 3: masking --------------------------------------------------

    pub(crate) fn readable_interest_hides_writable<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        b.write_all(b"x").unwrap();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let e = wait_one(&p, &mut events, T1);
        assert!(
            e.is_readable() && !e.is_writable() && !e.is_priority(),
            "{e:?}"
        );
        assert!(
            !e.is_error() && !e.is_hangup() && !e.is_read_closed(),
            "{e:?}"
        );
    }

    pub(crate) fn writable_interest_hides_readable<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        b.write_all(b"x").unwrap();
        p.register(a.as_raw_fd(), T1, Interest::WRITABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_writable() && !e.is_readable(), "{e:?}");
    }

    pub(crate) fn both_readinesses_come_in_one_event<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        b.write_all(b"x").unwrap();
        p.register(
            a.as_raw_fd(),
            T1,
            Interest::READABLE | Interest::WRITABLE,
            Mode::Level,
        )
        .unwrap();
        let mut events = Events::with_capacity(8);
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable() && e.is_writable(), "{e:?}");
    }

    pub(crate) fn priority_interest_ignores_normal_data<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        b.write_all(b"x").unwrap();
        p.register(a.as_raw_fd(), T1, Interest::PRIORITY, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "ordinary data is not priority data");
    }

    /// Contract point 8, with a one-event buffer: a descriptor whose
    /// wake-up turns out to be nothing it asked for (ordinary data under a
    /// priority-only interest) must not use up the wait, while another is
    /// ready. Found by the model test on io_uring, which checked again only
    /// as many put-off completions as the buffer holds, and the one it
    /// checked reported nothing.
    pub(crate) fn a_wake_up_of_nothing_does_not_hide_a_ready_one<P: Poller + 'static>(
        make: fn() -> P,
    ) {
        let p = make();
        let (pri, mut pri_peer) = socket_pair();
        let (data, mut data_peer) = socket_pair();
        p.register(pri.as_raw_fd(), T1, Interest::PRIORITY, Mode::Level)
            .unwrap();
        p.register(data.as_raw_fd(), T2, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(1);
        assert_quiet(&p, &mut events, "nothing sent yet");
        pri_peer.write_all(b"x").unwrap();
        data_peer.write_all(b"y").unwrap();
        p.wait(&mut events, Some(Duration::ZERO)).unwrap();
        let got: Vec<Token> = events.iter().map(|e| e.token()).collect();
        assert_eq!(got, [T2], "a zero wait reports the one ready descriptor");
        let e = wait_one(&p, &mut events, T2);
        assert!(e.is_readable(), "{e:?}");
    }

    pub(crate) fn hangup_is_reported_without_interest<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::empty(), Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "nothing happened yet");
        drop(b);
        if p.backend() == Backend::Select {
            // Documented: select has no set for hang-up alone.
            assert_quiet(&p, &mut events, "select reports no empty interest");
            return;
        }
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_hangup(), "{e:?}");
        assert!(!e.is_readable() && !e.is_writable(), "masked: {e:?}");
    }

    pub(crate) fn error_is_reported_without_interest<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (mut server, client) = tcp_pair();
        common::set_linger_zero(&client);
        // Select cannot watch an empty interest; it shows an error as
        // readable, and the read reports it.
        let select = p.backend() == Backend::Select;
        let interest = if select {
            Interest::READABLE
        } else {
            Interest::empty()
        };
        p.register(server.as_raw_fd(), T1, interest, Mode::Level)
            .unwrap();
        drop(client); // sends a reset
        let mut events = Events::with_capacity(8);
        let e = wait_for(&p, &mut events, T1);
        if select {
            assert!(e.is_readable(), "{e:?}");
        } else {
            assert!(e.is_error(), "{e:?}");
            assert!(!e.is_readable() && !e.is_writable(), "masked: {e:?}");
        }
        let err = server.read(&mut [0; 8]).expect_err("reset");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    // -- Contract 4: modes ----------------------------------------------------

    pub(crate) fn level_partial_read_stays_readable<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (mut a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        b.write_all(b"0123456789").unwrap();
        let mut events = Events::with_capacity(8);
        assert!(wait_one(&p, &mut events, T1).is_readable());
        let mut buf = [0; 4];
        a.read_exact(&mut buf).unwrap();
        for _ in 0..3 {
            assert!(wait_one(&p, &mut events, T1).is_readable(), "6 bytes left");
        }
        assert_eq!(drain(&mut a), (6, false));
        assert_quiet(&p, &mut events, "drained");
    }

    pub(crate) fn edge_reports_once_per_arrival<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        if !p.supports(Mode::Edge) {
            assert_refuses(&p, Mode::Edge);
            return;
        }
        let (mut a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Edge)
            .unwrap();
        let mut events = Events::with_capacity(8);
        b.write_all(b"one").unwrap();
        assert!(wait_one(&p, &mut events, T1).is_readable());
        assert_quiet(&p, &mut events, "edge: no new data, no new event");
        b.write_all(b"two").unwrap();
        assert!(wait_one(&p, &mut events, T1).is_readable());
        assert_eq!(drain(&mut a), (6, false), "drain to WouldBlock");
        assert_quiet(&p, &mut events, "drained");
        b.write_all(b"three").unwrap();
        assert!(wait_one(&p, &mut events, T1).is_readable());
    }

    pub(crate) fn oneshot_disarms_until_modify<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        assert!(p.supports(Mode::Oneshot));
        let (mut a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Oneshot)
            .unwrap();
        let mut events = Events::with_capacity(8);
        b.write_all(b"x").unwrap();
        assert!(wait_one(&p, &mut events, T1).is_readable());
        assert_quiet(&p, &mut events, "disarmed");
        b.write_all(b"y").unwrap();
        assert_quiet(&p, &mut events, "disarmed, even with more data");
        drop(b);
        assert_quiet(&p, &mut events, "disarmed, even after hang-up");

        p.modify(fd, T2, Interest::READABLE, Mode::Oneshot).unwrap();
        let e = wait_one(&p, &mut events, T2);
        assert!(e.is_readable(), "{e:?}");
        if p.capabilities().contains(Capabilities::READ_CLOSED) {
            assert!(e.is_hangup() && e.is_read_closed(), "{e:?}");
        }
        assert_quiet(&p, &mut events, "disarmed again");

        p.modify(fd, T3, Interest::READABLE, Mode::Level).unwrap();
        for _ in 0..2 {
            assert!(wait_one(&p, &mut events, T3).is_readable(), "level again");
        }
        assert_eq!(drain(&mut a), (2, true));
    }

    pub(crate) fn edge_oneshot_disarms_until_modify<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        if !p.supports(Mode::EdgeOneshot) {
            assert_refuses(&p, Mode::EdgeOneshot);
            return;
        }
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::EdgeOneshot)
            .unwrap();
        let mut events = Events::with_capacity(8);
        b.write_all(b"x").unwrap();
        assert!(wait_one(&p, &mut events, T1).is_readable());
        assert_quiet(&p, &mut events, "disarmed");
        b.write_all(b"y").unwrap();
        assert_quiet(&p, &mut events, "disarmed, even with a new edge");
        p.modify(fd, T2, Interest::READABLE, Mode::EdgeOneshot)
            .unwrap();
        assert!(wait_one(&p, &mut events, T2).is_readable(), "re-armed");
        assert_quiet(&p, &mut events, "disarmed again");
    }

    pub(crate) fn exclusive_registers_but_cannot_be_modified<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        if !p.supports(Mode::Exclusive) {
            assert_refuses(&p, Mode::Exclusive);
            assert_refuses(&p, Mode::EdgeExclusive);
            return;
        }
        let mut events = Events::with_capacity(8);
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        // The kernel takes no priority interest with EPOLLEXCLUSIVE.
        match p.register(
            fd,
            T1,
            Interest::READABLE | Interest::PRIORITY,
            Mode::Exclusive,
        ) {
            Err(Error::Unsupported { backend, mode }) => {
                assert_eq!((backend, mode), (p.backend(), Mode::Exclusive));
            }
            other => panic!("exclusive with priority: {other:?}"),
        }
        assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { .. })));
        p.register(fd, T1, Interest::READABLE, Mode::Exclusive)
            .unwrap();
        b.write_all(b"x").unwrap();
        for _ in 0..2 {
            assert!(wait_one(&p, &mut events, T1).is_readable(), "level");
        }
        // Neither into an exclusive mode nor out of one: the same typed
        // error on every path, and the registration is unchanged.
        for mode in Mode::ALL {
            match p.modify(fd, T2, Interest::WRITABLE, mode) {
                Err(Error::ModifyExclusive { fd: f }) => assert_eq!(f, fd, "{mode:?}"),
                other => panic!("modify of an exclusive registration to {mode:?}: {other:?}"),
            }
        }
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable() && !e.is_writable(), "unchanged: {e:?}");
        drop(b);
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable() && e.is_hangup(), "peer gone: {e:?}");
        p.unregister(fd).unwrap();

        let (c, mut d) = socket_pair();
        p.register(c.as_raw_fd(), T3, Interest::READABLE, Mode::EdgeExclusive)
            .unwrap();
        d.write_all(b"x").unwrap();
        assert!(wait_one(&p, &mut events, T3).is_readable());
        assert_quiet(&p, &mut events, "edge");
        d.write_all(b"y").unwrap();
        assert!(wait_one(&p, &mut events, T3).is_readable());
    }

    pub(crate) fn refused_modify_changes_nothing<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        // A mode this backend's modify refuses: edge where there is no edge,
        // exclusive (which cannot be modified) where there is.
        let refused = if p.supports(Mode::Edge) {
            Mode::Exclusive
        } else {
            Mode::Edge
        };
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        assert!(matches!(
            p.modify(fd, T2, Interest::WRITABLE, refused),
            Err(Error::Unsupported { .. } | Error::ModifyExclusive { .. })
        ));
        assert!(matches!(
            p.modify(fd, Token::RESERVED, Interest::WRITABLE, Mode::Level),
            Err(Error::ReservedToken(Token::RESERVED))
        ));
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "still readable-only, nothing to read");
        b.write_all(b"x").unwrap();
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable() && !e.is_writable(), "unchanged: {e:?}");
    }

    // -- Contract 5: bookkeeping ----------------------------------------------

    pub(crate) fn double_register_keeps_the_first<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        match p.register(fd, T2, Interest::WRITABLE, Mode::Level) {
            Err(Error::AlreadyRegistered { fd: f }) => assert_eq!(f, fd),
            other => panic!("second register: {other:?}"),
        }
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "first registration is readable-only");
        b.write_all(b"x").unwrap();
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable() && !e.is_writable(), "{e:?}");
    }

    pub(crate) fn unknown_fd_is_not_registered<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, _b) = socket_pair();
        let fd = a.as_raw_fd();
        assert!(matches!(
            p.modify(fd, T1, Interest::READABLE, Mode::Level),
            Err(Error::NotRegistered { fd: f }) if f == fd
        ));
        assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { fd: f }) if f == fd));
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        p.unregister(fd).unwrap();
        assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { .. })));
        assert!(matches!(
            p.modify(fd, T1, Interest::READABLE, Mode::Level),
            Err(Error::NotRegistered { .. })
        ));
        // And it can come back.
        p.register(fd, T2, Interest::WRITABLE, Mode::Level).unwrap();
        let mut events = Events::with_capacity(8);
        assert!(wait_one(&p, &mut events, T2).is_writable());
    }

    pub(crate) fn reserved_token_is_refused<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        assert!(matches!(
            p.register(fd, Token::RESERVED, Interest::READABLE, Mode::Level),
            Err(Error::ReservedToken(Token::RESERVED))
        ));
        assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { .. })));
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        wait_one(&p, &mut events, T1);
        // The largest token that is not reserved travels intact.
        let big = Token(usize::MAX - 1);
        p.modify(fd, big, Interest::READABLE, Mode::Level).unwrap();
        wait_one(&p, &mut events, big);
    }

    pub(crate) fn negative_fd_is_invalid<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        for fd in [-1, RawFd::MIN] {
            assert!(matches!(
                p.register(fd, T1, Interest::READABLE, Mode::Level),
                Err(Error::InvalidFd { fd: f }) if f == fd
            ));
            assert!(matches!(
                p.modify(fd, T1, Interest::READABLE, Mode::Level),
                Err(Error::InvalidFd { fd: f }) if f == fd
            ));
            assert!(matches!(p.unregister(fd), Err(Error::InvalidFd { fd: f }) if f == fd));
        }
    }

    pub(crate) fn errors_convert_to_io_kinds<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, _b) = socket_pair();
        let fd = a.as_raw_fd();
        let kind = |e: Error| {
            let k = e.kind();
            let io: io::Error = e.into();
            assert_eq!(io.kind(), k);
            let inner = io.get_ref().expect("wrapped");
            assert!(inner.downcast_ref::<Error>().is_some(), "downcasts back");
            k
        };
        let not_registered = p.unregister(fd).unwrap_err();
        assert_eq!(kind(not_registered), io::ErrorKind::NotFound);
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        let twice = p
            .register(fd, T1, Interest::READABLE, Mode::Level)
            .unwrap_err();
        assert_eq!(kind(twice), io::ErrorKind::AlreadyExists);
        let reserved = p
            .modify(fd, Token::RESERVED, Interest::READABLE, Mode::Level)
            .unwrap_err();
        assert_eq!(kind(reserved), io::ErrorKind::InvalidInput);
        let negative = p
            .register(-1, T1, Interest::READABLE, Mode::Level)
            .unwrap_err();
        assert_eq!(kind(negative), io::ErrorKind::InvalidInput);
        let refused = if p.supports(Mode::Edge) {
            Mode::Exclusive
        } else {
            Mode::Edge
        };
        let unsupported = p.modify(fd, T1, Interest::READABLE, refused).unwrap_err();
        assert_eq!(kind(unsupported), io::ErrorKind::Unsupported);
    }

    /// A number that is not open and was never registered: every backend
    /// gives the same answer.
    pub(crate) fn never_registered_numbers_are_not_registered<P: Poller + 'static>(
        make: fn() -> P,
    ) {
        let p = make();
        let (a, _b) = socket_pair();
        let fd = a.as_raw_fd();
        drop(a);
        assert!(!common::is_open(fd));
        assert!(
            matches!(p.unregister(fd), Err(Error::NotRegistered { fd: f }) if f == fd),
            "unregister"
        );
        assert!(
            matches!(
                p.modify(fd, T1, Interest::READABLE, Mode::Level),
                Err(Error::NotRegistered { fd: f }) if f == fd
            ),
            "modify"
        );
    }

    /// An `O_PATH` descriptor names a file without opening it: nothing can
    /// be polled on it, and every backend refuses it the same way.
    pub(crate) fn o_path_descriptors_are_not_pollable<P: Poller + 'static>(make: fn() -> P) {
        use std::os::unix::fs::OpenOptionsExt;
        let p = make();
        let path = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(".")
            .expect("O_PATH open");
        let fd = path.as_raw_fd();
        for mode in [Mode::Level, Mode::Oneshot] {
            match p.register(fd, T1, Interest::READABLE | Interest::WRITABLE, mode) {
                Err(Error::NotPollable { fd: f }) => assert_eq!(f, fd),
                other => panic!("register of an O_PATH descriptor ({mode:?}): {other:?}"),
            }
        }
        assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { .. })));
        let mut events = Events::with_capacity(8);
        assert_eq!(p.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    }

    /// A capacity beyond what the kernel takes is clamped, and waits work.
    pub(crate) fn huge_capacity_is_clamped<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, _b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::WRITABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(usize::MAX);
        assert_eq!(events.capacity(), Events::MAX_CAPACITY);
        assert_eq!(
            Events::MAX_CAPACITY,
            i32::MAX as usize / std::mem::size_of::<libc::epoll_event>()
        );
        assert!(wait_one(&p, &mut events, T1).is_writable());
    }

    // -- Contract 6: closed descriptors (exclusive: numbers must not be reused) ---

    pub(crate) fn unregister_of_a_closed_fd_succeeds<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, _b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        drop(a);
        p.unregister(fd).expect("unregister after close");
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "unregistered");
    }

    pub(crate) fn closed_fd_is_reported_once<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        let (c, mut d) = socket_pair();
        let fd = a.as_raw_fd();
        b.write_all(b"pending").unwrap();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        p.register(c.as_raw_fd(), T2, Interest::READABLE, Mode::Level)
            .unwrap();
        drop(a);
        assert!(!common::is_open(fd));
        let mut events = Events::with_capacity(8);
        if p.backend() == Backend::Epoll {
            // Closing the last reference took it off the kernel's list.
            assert_quiet(&p, &mut events, "epoll forgets closed descriptors");
            p.unregister(fd).expect("unregister after close");
        } else {
            let n = p
                .wait(&mut events, Some(SAFETY))
                .expect("the wait must not fail");
            assert_eq!(n, 1, "{events:?}");
            let e = events_for(&events, T1)[0];
            assert!(e.is_error(), "{e:?}");
            assert_eq!(p.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
            assert!(
                matches!(p.unregister(fd), Err(Error::NotRegistered { .. })),
                "reported and dropped"
            );
        }
        // Not again, and no spinning.
        common::assert_sleeps(
            &p,
            &mut events,
            Duration::from_millis(100),
            "after the closed descriptor was reported",
        );
        // The others are still served.
        d.write_all(b"x").unwrap();
        assert!(wait_one(&p, &mut events, T2).is_readable());
    }

    /// A disarmed oneshot registration reports nothing, not even that its
    /// descriptor was closed, until it is re-armed.
    pub(crate) fn closed_disarmed_fd_stays_silent<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        let (c, _d) = socket_pair();
        let (fa, fc) = (a.as_raw_fd(), c.as_raw_fd());
        p.register(fa, T1, Interest::READABLE, Mode::Oneshot)
            .unwrap();
        p.register(fc, T2, Interest::READABLE, Mode::Level).unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        wait_one(&p, &mut events, T1); // disarms T1
        drop(a);
        drop(c);
        if p.backend() == Backend::Epoll {
            assert_quiet(&p, &mut events, "epoll forgets closed descriptors");
            return;
        }
        if p.backend() == Backend::IoUring {
            // The level request in flight holds c's file open (io_uring
            // polls files, and closing the number cancels nothing): nothing
            // changed, nothing to report. Unregistering releases it.
            assert_quiet(&p, &mut events, "c's file is still open");
            p.unregister(fc).expect("unregister after close");
        } else {
            let n = p.wait(&mut events, Some(SAFETY)).unwrap();
            assert_eq!(n, 1, "only the armed one: {events:?}");
            assert!(events_for(&events, T2)[0].is_error());
        }
        assert_quiet(&p, &mut events, "the disarmed one stays silent");
        // Re-armed, it is reported (and dropped) like any closed descriptor.
        p.modify(fa, T3, Interest::READABLE, Mode::Oneshot).unwrap();
        let e = wait_one(&p, &mut events, T3);
        assert!(e.is_error(), "{e:?}");
        assert!(matches!(p.unregister(fa), Err(Error::NotRegistered { .. })));
    }

    pub(crate) fn closed_fd_cannot_be_registered<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, _b) = socket_pair();
        let fd = a.as_raw_fd();
        drop(a);
        assert!(!common::is_open(fd));
        assert!(matches!(
            p.register(fd, T1, Interest::READABLE, Mode::Level),
            Err(Error::InvalidFd { fd: f }) if f == fd
        ));
    }

    // -- Contract 7: select's limit, and many descriptors (exclusive) ---------

    pub(crate) fn fd_above_setsize<P: Poller + 'static>(make: fn() -> P) {
        assert!(common::raise_fd_limit(4096) >= 1501);
        let p = make();
        let (rd, mut wr) = pipe();
        let high = dup_onto(rd.as_raw_fd(), 1500);
        let (low_rd, mut low_wr) = pipe();
        p.register(low_rd.as_raw_fd(), T2, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let res = p.register(high.as_raw_fd(), T1, Interest::READABLE, Mode::Level);
        if p.capabilities().contains(Capabilities::UNBOUNDED_FDS) {
            res.unwrap();
            wr.write_all(b"x").unwrap();
            assert!(wait_one(&p, &mut events, T1).is_readable());
            return;
        }
        assert_eq!(FD_SETSIZE, 1024);
        match res {
            Err(e @ Error::FdOutOfRange { .. }) => {
                assert!(matches!(
                    e,
                    Error::FdOutOfRange {
                        fd: 1500,
                        limit: FD_SETSIZE
                    }
                ));
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            }
            other => panic!("fd 1500 on select: {other:?}"),
        }
        assert!(matches!(
            p.unregister(1500),
            Err(Error::NotRegistered { .. })
        ));
        wr.write_all(b"x").unwrap();
        assert_quiet(&p, &mut events, "fd 1500 is not watched");
        low_wr.write_all(b"x").unwrap();
        assert!(wait_one(&p, &mut events, T2).is_readable(), "still serving");
    }

    pub(crate) fn thousands_of_fds<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        if !p.capabilities().contains(Capabilities::UNBOUNDED_FDS) {
            assert_eq!(p.backend(), Backend::Select);
            return; // fd_above_setsize covers the refusal.
        }
        assert!(common::raise_fd_limit(4096) >= 1400);
        let pipes: Vec<_> = (0..600).map(|_| pipe()).collect();
        for (i, (rd, _)) in pipes.iter().enumerate() {
            p.register(rd.as_raw_fd(), Token(i), Interest::READABLE, Mode::Level)
                .unwrap();
        }
        let mut expected = BTreeSet::new();
        for (i, (rd, wr)) in pipes.iter().enumerate() {
            if rd.as_raw_fd() >= FD_SETSIZE as RawFd || i % 37 == 0 {
                (&*wr).write_all(b"x").unwrap();
                expected.insert(i);
            }
        }
        assert!(
            pipes.iter().any(|(rd, _)| rd.as_raw_fd() >= 1100),
            "the test must reach beyond 1024"
        );
        let mut seen = BTreeSet::new();
        let mut events = Events::with_capacity(64);
        let deadline = Instant::now() + SAFETY;
        while seen != expected {
            assert!(Instant::now() < deadline, "missing {:?}", &expected - &seen);
            p.wait(&mut events, Some(SAFETY)).unwrap();
            for e in &events {
                assert!(expected.contains(&e.token().0), "not written: {e:?}");
                assert!(e.is_readable());
                seen.insert(e.token().0);
            }
        }
    }

    // -- Contract 8: fairness -------------------------------------------------

    pub(crate) fn a_small_buffer_serves_everyone<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let pipes: Vec<_> = (0..64).map(|_| pipe()).collect();
        for (i, (rd, wr)) in pipes.iter().enumerate() {
            p.register(rd.as_raw_fd(), Token(i), Interest::READABLE, Mode::Level)
                .unwrap();
            (&*wr).write_all(b"x").unwrap();
        }
        let mut events = Events::with_capacity(8);
        let mut seen = HashSet::new();
        for _ in 0..8 {
            let n = p.wait(&mut events, Some(SAFETY)).unwrap();
            assert_eq!(n, 8, "a full buffer each time");
            seen.extend(events.iter().map(|e| e.token()));
        }
        assert_eq!(seen.len(), 64, "8 waits of 8 must cover all 64");
    }

    pub(crate) fn zero_capacity_still_makes_progress<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(0);
        assert!(events.capacity() >= 1);
        wait_one(&p, &mut events, T1);
    }

    pub(crate) fn each_wait_replaces_the_events<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (mut a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        wait_one(&p, &mut events, T1);
        drain(&mut a);
        assert_eq!(p.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
        assert!(events.is_empty() && events.iter().next().is_none());
    }

    // -- Contract 9: threads --------------------------------------------------

    pub(crate) fn register_while_blocked<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        b.write_all(b"ready").unwrap();
        let fd = a.as_raw_fd();
        let mut events = Events::with_capacity(8);
        let (n, ()) = wait_while(
            &p,
            &mut events,
            "the new registration was not seen",
            move |q| {
                q.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
            },
        );
        assert_eq!(n, 1, "{events:?}");
        assert!(events_for(&events, T1)[0].is_readable());
    }

    pub(crate) fn modify_while_blocked<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        b.write_all(b"ready").unwrap();
        p.register(fd, T1, Interest::PRIORITY, Mode::Level).unwrap();
        let mut events = Events::with_capacity(8);
        let (n, ()) = wait_while(
            &p,
            &mut events,
            "the modified interest was not seen",
            move |q| {
                q.modify(fd, T2, Interest::READABLE, Mode::Level).unwrap();
            },
        );
        assert_eq!(n, 1, "{events:?}");
        assert!(events_for(&events, T2)[0].is_readable());
    }

    pub(crate) fn rearm_while_blocked<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        b.write_all(b"ready").unwrap();
        p.register(fd, T1, Interest::READABLE, Mode::Oneshot)
            .unwrap();
        let mut events = Events::with_capacity(8);
        wait_one(&*p, &mut events, T1);
        let why = "the re-armed registration was not seen";
        let (n, ()) = wait_while(&p, &mut events, why, move |q| {
            q.modify(fd, T2, Interest::READABLE, Mode::Oneshot).unwrap();
        });
        assert_eq!(n, 1, "{events:?}");
        assert!(events_for(&events, T2)[0].is_readable());
    }

    pub(crate) fn unregister_while_blocked<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        let mut events = Events::with_capacity(8);
        let (n, _b) = wait_while(
            &p,
            &mut events,
            "the notify did not end the wait",
            move |q| {
                let mut b = b;
                q.unregister(fd).unwrap();
                b.write_all(b"unseen").unwrap();
                thread::sleep(Duration::from_millis(50));
                q.notify().unwrap();
                b
            },
        );
        assert_eq!(n, 0, "unregistered, then only a notify: {events:?}");
    }

    /// Contract points 4 and 9: an unregister from another thread while a
    /// wait blocks also lets go of the file: once it returns, closing the
    /// descriptor closes the socket and the peer reads end of stream, while
    /// the wait is still blocked. (On io_uring the request was made by the
    /// waiting thread, which must be woken to end it.)
    pub(crate) fn unregister_while_blocked_lets_go_of_the_file<P: Poller + 'static>(
        make: fn() -> P,
    ) {
        let p = shared(make);
        let modes = [Mode::Level, Mode::Edge, Mode::Oneshot, Mode::EdgeOneshot];
        for mode in modes.into_iter().filter(|&m| p.supports(m)) {
            let (a, b) = socket_pair();
            p.register(a.as_raw_fd(), T1, Interest::READABLE, mode)
                .unwrap();
            let mut events = Events::with_capacity(8);
            let (n, got) = wait_while(&p, &mut events, "the notify did not end the wait", {
                let name = p.name();
                move |q| {
                    q.unregister(a.as_raw_fd()).unwrap();
                    drop(a);
                    let mut b = b;
                    b.set_nonblocking(false).unwrap();
                    b.set_read_timeout(Some(SAFETY)).unwrap();
                    let got = b
                        .read(&mut [0; 8])
                        .map_err(|e| format!("{name} {mode:?}: {e}"));
                    q.notify().unwrap();
                    got
                }
            });
            assert_eq!(
                got,
                Ok(0),
                "{} {mode:?}: the peer reads end of stream",
                p.name()
            );
            assert_eq!(n, 0, "unregistered, then only a notify: {events:?}");
        }
    }

    pub(crate) fn notify_wakes_a_blocked_wait<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, _b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let (n, ()) = wait_while(&p, &mut events, "notify did not wake the wait", |q| {
            q.notify().unwrap();
        });
        assert_eq!(n, 0, "a notify is not an event: {events:?}");
    }

    pub(crate) fn notifies_coalesce<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        for _ in 0..5 {
            p.notify().unwrap();
        }
        let mut events = Events::with_capacity(8);
        let n = wait_unbounded(&p, &mut events, "a notify before the wait was lost");
        assert_eq!(n, 0, "{events:?}");
        // The wake-up was consumed: the next wait sleeps its whole timeout.
        common::assert_sleeps(
            &*p,
            &mut events,
            Duration::from_millis(100),
            "after a consumed wake-up",
        );
        // And a notify still works afterwards.
        p.notify().unwrap();
        let n = wait_unbounded(&p, &mut events, "the notify after a coalesced one was lost");
        assert_eq!(n, 0, "{events:?}");
    }

    pub(crate) fn notify_from_two_threads<P: Poller + 'static>(make: fn() -> P) {
        const ROUNDS: usize = 200;
        let p = shared(make);
        let barrier = Arc::new(Barrier::new(3));
        let notifiers: Vec<_> = (0..2)
            .map(|_| {
                let (q, bar) = (Arc::clone(&p), Arc::clone(&barrier));
                thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        bar.wait();
                        q.notify().unwrap();
                    }
                })
            })
            .collect();
        let dog = watchdog(&p);
        let mut events = Events::with_capacity(8);
        let mut reported = 0;
        for _ in 0..ROUNDS {
            barrier.wait();
            reported += p.wait(&mut events, None).unwrap();
        }
        for t in notifiers {
            t.join().unwrap();
        }
        assert!(!dog.disarm(), "a wake-up was lost");
        assert_eq!(reported, 0, "notifications are not events");
    }

    pub(crate) fn waits_from_two_threads<P: Poller + 'static>(make: fn() -> P) {
        // Two waiters on one poller, level-triggered data: both see it.
        let p = shared(make);
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        b.write_all(b"x").unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let q = Arc::clone(&p);
                thread::spawn(move || {
                    let mut events = Events::with_capacity(8);
                    for _ in 0..50 {
                        let n = q.wait(&mut events, Some(SAFETY)).unwrap();
                        assert_eq!(n, 1, "{events:?}");
                        assert_eq!(events_for(&events, T1).len(), 1);
                    }
                })
            })
            .collect();
        for w in waiters {
            w.join().unwrap();
        }
    }

    // Concurrent waits: several threads waiting on one poller.

    /// While one thread blocks in `wait(None)`, another thread's waits on the
    /// same poller return by their own deadlines: zero at once, a short
    /// timeout when it runs out, neither early.
    pub(crate) fn concurrent_waits_keep_their_own_deadlines<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let dog = watchdog(&p);
        let (done_tx, done_rx) = mpsc::channel();
        let q = Arc::clone(&p);
        let blocker = thread::spawn(move || {
            let mut events = Events::with_capacity(8);
            let n = q.wait(&mut events, None).unwrap();
            done_tx.send(()).unwrap();
            n
        });
        thread::sleep(Duration::from_millis(50)); // time for it to block
        let (tx, rx) = mpsc::channel();
        let q = Arc::clone(&p);
        let second = thread::spawn(move || {
            let mut events = Events::with_capacity(8);
            for t in [Duration::ZERO, Duration::from_millis(30), Duration::ZERO] {
                let start = Instant::now();
                let n = q.wait(&mut events, Some(t)).unwrap();
                tx.send((t, n, start.elapsed())).unwrap();
            }
        });
        for _ in 0..3 {
            let (t, n, took) = rx
                .recv_timeout(SAFETY)
                .expect("a second waiter returns by its own deadline while another blocks");
            assert_eq!(n, 0, "nothing is ready");
            assert!(took >= t, "{t:?} ended early, after {took:?}");
        }
        second.join().unwrap();
        assert!(done_rx.try_recv().is_err(), "the first waiter still blocks");
        b.write_all(b"x").unwrap();
        assert_eq!(blocker.join().unwrap(), 1, "the blocked wait sees the data");
        assert!(!dog.disarm(), "the blocked wait was released by the data");
    }

    /// Several waiters and one oneshot registration: the event is reported
    /// to exactly one of them (level readiness may reach several, see
    /// `waits_from_two_threads`).
    pub(crate) fn oneshot_goes_to_one_waiter<P: Poller + 'static>(make: fn() -> P) {
        let p = shared(make);
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Oneshot)
            .unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&p);
                thread::spawn(move || {
                    let mut events = Events::with_capacity(8);
                    q.wait(&mut events, Some(Duration::from_millis(300)))
                        .unwrap();
                    events_for(&events, T1).len()
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        b.write_all(b"x").unwrap();
        let seen: usize = waiters.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(seen, 1, "one oneshot event, one waiter");
    }

    // -- Contract 10: cost ----------------------------------------------------

    /// The epoll wait allocates nothing (contract point 10): not for events,
    /// not for a timeout, not for a notification.
    pub(crate) fn waiting_allocates_nothing<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        // Warm up: buffers the backend keeps may grow on first use.
        p.wait(&mut events, Some(Duration::ZERO)).unwrap();
        b.write_all(b"x").unwrap();
        wait_one(&p, &mut events, T1);
        let before = super::allocations();
        for _ in 0..50 {
            assert_eq!(p.wait(&mut events, Some(Duration::ZERO)).unwrap(), 1);
        }
        p.notify().unwrap();
        p.wait(&mut events, Some(SAFETY)).unwrap();
        p.wait(&mut events, Some(Duration::from_micros(1))).unwrap();
        let made = super::allocations() - before;
        if p.backend() == Backend::Epoll {
            assert_eq!(made, 0, "the epoll wait allocated {made} times");
        }
    }

    // -- Sockets, files, sharing ----------------------------------------------

    pub(crate) fn peer_close_is_seen<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (mut a, b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        drop(b);
        let mut events = Events::with_capacity(8);
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable(), "a closed peer reads as readable: {e:?}");
        if p.capabilities().contains(Capabilities::READ_CLOSED) {
            assert!(e.is_hangup() && e.is_read_closed(), "{e:?}");
        }
        assert_eq!(a.read(&mut [0; 8]).unwrap(), 0, "end of stream");
    }

    /// Contract point 4: after `unregister` the poller keeps nothing of the
    /// descriptor, so closing it closes the file and the peer reads end of
    /// stream. An io_uring poll request holds the file; a cancellation that
    /// loses a race with a wake-up would leave the request, and the socket,
    /// alive. So the registration goes through modifies and waits while
    /// another thread keeps waking it, every mode the backend has, many
    /// rounds.
    pub(crate) fn unregister_lets_go_of_the_file<P: Poller + 'static>(make: fn() -> P) {
        const ROUNDS: usize = 150;
        const CHANGES: usize = 12;
        let p = make();
        let mut events = Events::with_capacity(8);
        let modes = [Mode::Level, Mode::Edge, Mode::Oneshot, Mode::EdgeOneshot];
        for mode in modes.into_iter().filter(|&m| p.supports(m)) {
            for round in 0..ROUNDS {
                let (mut a, b) = socket_pair();
                let fd = a.as_raw_fd();
                let stop = Arc::new(AtomicBool::new(false));
                let writer = {
                    let stop = Arc::clone(&stop);
                    thread::spawn(move || {
                        let mut b = b;
                        while !stop.load(Ordering::Relaxed) {
                            match b.write(b"wake") {
                                Ok(_) => {}
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    thread::yield_now();
                                }
                                Err(e) => panic!("write: {e}"),
                            }
                        }
                        b
                    })
                };
                p.register(fd, T1, Interest::READABLE, mode).unwrap();
                for change in 0..CHANGES {
                    p.wait(&mut events, Some(Duration::ZERO)).unwrap();
                    drain(&mut a);
                    let interest = if change % 2 == 0 {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    p.modify(fd, T1, interest, mode).unwrap();
                }
                p.wait(&mut events, Some(Duration::ZERO)).unwrap();
                p.unregister(fd).unwrap();
                stop.store(true, Ordering::Relaxed);
                let mut b = writer.join().unwrap();
                // Unread data would make the close a reset.
                drain(&mut a);
                drop(a);
                // Nothing was ever written to `b`: a closed peer reads as
                // end of stream at once, a live one would block.
                match b.read(&mut [0; 8]) {
                    Ok(0) => {}
                    other => panic!(
                        "{} {mode:?}, round {round}: the unregistered, closed end is still open \
                         (peer read: {other:?})",
                        p.name()
                    ),
                }
            }
        }
    }

    pub(crate) fn half_close_is_read_closed<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (mut server, client) = tcp_pair();
        p.register(server.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut events = Events::with_capacity(8);
        let e = wait_for(&p, &mut events, T1);
        assert!(e.is_readable(), "{e:?}");
        if p.capabilities().contains(Capabilities::READ_CLOSED) {
            assert!(
                e.is_read_closed() && !e.is_hangup(),
                "half, not full: {e:?}"
            );
        }
        assert_eq!(server.read(&mut [0; 8]).unwrap(), 0, "end of stream");
        // Our side can still write.
        (&server).write_all(b"bye").unwrap();
        let mut buf = [0; 3];
        (&client).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"bye");
    }

    pub(crate) fn tcp_urgent_data_is_priority<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let (server, client) = tcp_pair();
        p.register(server.as_raw_fd(), T1, Interest::PRIORITY, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "no urgent data yet");
        common::send_oob(&client, b'!');
        let e = wait_for(&p, &mut events, T1);
        assert!(e.is_priority() && !e.is_readable(), "{e:?}");
    }

    pub(crate) fn regular_files<P: Poller + 'static>(make: fn() -> P) {
        let p = make();
        let file = std::fs::File::open("Cargo.toml").expect("a regular file");
        let fd = file.as_raw_fd();
        let res = p.register(fd, T1, Interest::READABLE | Interest::WRITABLE, Mode::Level);
        if p.backend() == Backend::Epoll {
            match res {
                Err(e @ Error::NotPollable { .. }) => {
                    assert!(matches!(e, Error::NotPollable { fd: f } if f == fd));
                }
                other => panic!("epoll and a regular file: {other:?}"),
            }
            // Nothing was left behind.
            assert!(matches!(p.unregister(fd), Err(Error::NotRegistered { fd: f }) if f == fd));
            assert!(matches!(
                p.modify(fd, T1, Interest::READABLE, Mode::Level),
                Err(Error::NotRegistered { fd: f }) if f == fd
            ));
            return;
        }
        // poll and select: a regular file is always ready.
        res.unwrap();
        let mut events = Events::with_capacity(8);
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable() && e.is_writable(), "{e:?}");
        p.unregister(fd).unwrap();
    }

    pub(crate) fn one_fd_in_two_pollers<P: Poller + 'static>(make: fn() -> P) {
        let (p, q) = (make(), make());
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        q.register(a.as_raw_fd(), T2, Interest::READABLE, Mode::Level)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        wait_one(&p, &mut events, T1);
        wait_one(&q, &mut events, T2);
        p.unregister(a.as_raw_fd()).unwrap();
        assert_quiet(&p, &mut events, "unregistered from p");
        wait_one(&q, &mut events, T2);
    }

    pub(crate) fn boxed_dyn_poller<P: Poller + 'static>(make: fn() -> P) {
        let p: Box<dyn Poller> = Box::new(make());
        let backend = p.backend();
        assert_eq!(p.name(), backend.name());
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        wait_one(&p, &mut events, T1);
        // Through a reference to the box and an Arc of it too.
        let shared: Arc<Box<dyn Poller>> = Arc::new(p);
        wait_one(&shared, &mut events, T1);
        wait_one(&&**shared, &mut events, T1);
        shared.unregister(a.as_raw_fd()).unwrap();
        assert_quiet(&shared, &mut events, "unregistered");
    }

    /// 100 TCP connections, four writer threads sending seeded random
    /// chunks in a random order; the poller side counts and checks every
    /// byte (oneshot, re-armed after each drain) and echoes the count back
    /// when the client closes its side.
    pub(crate) fn hundred_connections<P: Poller + 'static>(make: fn() -> P) {
        const CONNS: usize = 100;
        const WRITERS: usize = 4;
        let p = make();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut plan_rng = XorShift::new(0x5EED);
        let plans: Vec<Vec<usize>> = (0..CONNS)
            .map(|_| {
                let chunks = plan_rng.range(1, 8) as usize;
                (0..chunks)
                    .map(|_| plan_rng.range(1, 3000) as usize)
                    .collect()
            })
            .collect();
        let expected: Vec<u64> = plans
            .iter()
            .map(|c| c.iter().sum::<usize>() as u64)
            .collect();
        let pattern = |conn: usize, offset: u64| (offset.wrapping_mul(31) + conn as u64) as u8;

        let mut servers = Vec::new();
        let mut clients: Vec<Vec<_>> = (0..WRITERS).map(|_| Vec::new()).collect();
        for i in 0..CONNS {
            let c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let (s, _) = listener.accept().unwrap();
            s.set_nonblocking(true).unwrap();
            p.register(s.as_raw_fd(), Token(i), Interest::READABLE, Mode::Oneshot)
                .unwrap();
            servers.push(s);
            clients[i % WRITERS].push((i, c, plans[i].clone()));
        }
        let writers: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(w, mut mine)| {
                thread::spawn(move || {
                    let mut rng = XorShift::new(w as u64 + 1);
                    let mut offsets = vec![0u64; mine.len()];
                    let mut live: Vec<usize> = (0..mine.len()).collect();
                    while !live.is_empty() {
                        let k = rng.range(0, live.len() as u64 - 1) as usize;
                        let j = live[k];
                        let (conn, stream, chunks) = &mut mine[j];
                        let len = chunks.remove(0);
                        let data: Vec<u8> = (0..len as u64)
                            .map(|o| pattern(*conn, offsets[j] + o))
                            .collect();
                        stream.write_all(&data).unwrap();
                        offsets[j] += len as u64;
                        if chunks.is_empty() {
                            stream.shutdown(std::net::Shutdown::Write).unwrap();
                            live.swap_remove(k);
                        }
                    }
                    mine.into_iter()
                        .map(|(conn, mut stream, _)| {
                            let mut echo = [0; 8];
                            stream.read_exact(&mut echo).unwrap();
                            (conn, u64::from_le_bytes(echo))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();

        let mut received = vec![0u64; CONNS];
        let mut open = CONNS;
        let mut events = Events::with_capacity(16);
        let mut buf = vec![0u8; 16 * 1024];
        while open > 0 {
            let n = p.wait(&mut events, Some(SAFETY)).unwrap();
            assert!(n > 0, "no progress for {SAFETY:?}; {open} connections open");
            for e in &events {
                let i = e.token().0;
                let s = &mut servers[i];
                let eof = loop {
                    match s.read(&mut buf) {
                        Ok(0) => break true,
                        Ok(k) => {
                            for (o, &byte) in buf[..k].iter().enumerate() {
                                assert_eq!(byte, pattern(i, received[i] + o as u64), "conn {i}");
                            }
                            received[i] += k as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                        Err(e) => panic!("conn {i}: {e}"),
                    }
                };
                if eof {
                    s.write_all(&received[i].to_le_bytes()).unwrap();
                    p.unregister(s.as_raw_fd()).unwrap();
                    open -= 1;
                } else {
                    p.modify(s.as_raw_fd(), Token(i), Interest::READABLE, Mode::Oneshot)
                        .unwrap();
                }
            }
        }
        assert_eq!(received, expected);
        let mut echoed = vec![0u64; CONNS];
        for w in writers {
            for (conn, count) in w.join().unwrap() {
                echoed[conn] = count;
            }
        }
        assert_eq!(echoed, expected);
    }
}

/// Instantiates `$shared` tests under the shared descriptor lock and
/// `$exclusive` ones alone, each calling `suite::<name>(make)`.
macro_rules! instantiate {
    (shared: [$($shared:ident),* $(,)?], exclusive: [$($exclusive:ident),* $(,)?] $(,)?) => {
        $(
            #[test]
            fn $shared() {
                let _fds = common::fds_shared();
                crate::suite::$shared(make);
            }
        )*
        $(
            #[test]
            fn $exclusive() {
                let _fds = common::fds_exclusive();
                crate::suite::$exclusive(make);
            }
        )*
    };
}

/// The one list of tests, shared by every backend.
macro_rules! every_test {
    () => {
        instantiate! {
            shared: [
                capabilities_are_consistent,
                every_mode_matches_supports,
                zero_timeout_returns_at_once,
                short_timeouts_are_not_cut_short,
                idle_wait_sleeps,
                no_timeout_blocks_until_data,
                huge_timeouts_clamp_instead_of_wrapping,
                eintr_resumes_with_the_remaining_time,
                eintr_does_not_end_an_infinite_wait,
                readable_interest_hides_writable,
                writable_interest_hides_readable,
                both_readinesses_come_in_one_event,
                priority_interest_ignores_normal_data,
                a_wake_up_of_nothing_does_not_hide_a_ready_one,
                hangup_is_reported_without_interest,
                error_is_reported_without_interest,
                level_partial_read_stays_readable,
                edge_reports_once_per_arrival,
                oneshot_disarms_until_modify,
                edge_oneshot_disarms_until_modify,
                exclusive_registers_but_cannot_be_modified,
                refused_modify_changes_nothing,
                double_register_keeps_the_first,
                unknown_fd_is_not_registered,
                reserved_token_is_refused,
                negative_fd_is_invalid,
                errors_convert_to_io_kinds,
                zero_capacity_still_makes_progress,
                each_wait_replaces_the_events,
                register_while_blocked,
                modify_while_blocked,
                rearm_while_blocked,
                unregister_while_blocked,
                unregister_while_blocked_lets_go_of_the_file,
                notify_wakes_a_blocked_wait,
                notifies_coalesce,
                notify_from_two_threads,
                waits_from_two_threads,
                peer_close_is_seen,
                unregister_lets_go_of_the_file,
                half_close_is_read_closed,
                tcp_urgent_data_is_priority,
                regular_files,
                one_fd_in_two_pollers,
                boxed_dyn_poller,
                waiting_allocates_nothing,
                o_path_descriptors_are_not_pollable,
                huge_capacity_is_clamped,
                concurrent_waits_keep_their_own_deadlines,
                oneshot_goes_to_one_waiter,
            ],
            // Alone: they depend on descriptor numbers, or hold hundreds of
            // descriptors (with many test threads, select's would pass 1024).
            exclusive: [
                a_small_buffer_serves_everyone,
                hundred_connections,
                unregister_of_a_closed_fd_succeeds,
                never_registered_numbers_are_not_registered,
                closed_fd_is_reported_once,
                closed_disarmed_fd_stays_silent,
                closed_fd_cannot_be_registered,
                fd_above_setsize,
                thousands_of_fds,
            ],
        }
    };
}

/// One module of tests per backend, from the one backend list, plus the
/// backend `TRIPOLL_BACKEND` names.
macro_rules! conformance {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            use super::*;

            fn make() -> AnyPoller {
                AnyPoller::new($backend).expect(concat!(
                    "create the ",
                    stringify!($module),
                    " poller"
                ))
            }

            every_test!();
        }
    };
}

common::for_each_backend!(conformance);

mod env {
    use super::*;

    fn make() -> AnyPoller {
        AnyPoller::from_env().expect("create the TRIPOLL_BACKEND poller")
    }

    every_test!();
}

/// What does not depend on a backend.
mod api {
    use super::*;

    #[test]
    fn backend_names_parse_in_any_case() {
        for (s, b) in [
            ("epoll", Backend::Epoll),
            ("EPOLL", Backend::Epoll),
            ("Poll", Backend::Poll),
            ("poll", Backend::Poll),
            ("select", Backend::Select),
            ("SeLeCt", Backend::Select),
        ] {
            assert_eq!(s.parse::<Backend>().unwrap(), b, "{s}");
            assert_eq!(b.to_string(), b.name());
        }
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
    }

    #[test]
    fn unknown_backend_names_are_errors() {
        for s in ["kqueue", "", " epoll", "epoll ", "iocp", "pol", "epollx"] {
            match s.parse::<Backend>() {
                Err(e @ Error::UnknownBackend { .. }) => {
                    assert!(matches!(&e, Error::UnknownBackend { name } if name == s));
                    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                    let io: io::Error = e.into();
                    assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
                }
                other => panic!("{s:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn any_poller_is_the_backend_asked_for() {
        let _fds = common::fds_shared();
        for b in Backend::ALL {
            match AnyPoller::new(b) {
                Ok(p) => {
                    assert_eq!(p.backend(), b);
                    assert_eq!(p.name(), b.name());
                }
                // Without its feature, io_uring is a typed refusal that
                // names it, never another backend.
                Err(Error::Unavailable { backend, reason })
                    if b == Backend::IoUring && !cfg!(feature = "io-uring") =>
                {
                    assert_eq!(backend, b);
                    assert!(reason.contains("io-uring"), "{reason}");
                }
                Err(e) => panic!("{b}: {e}"),
            }
        }
        assert_eq!(Backend::default(), Backend::Epoll);
        assert_eq!(Backend::platform_default(), Backend::Epoll);
    }

    /// Reads the environment (never writes it: that would race the other
    /// tests' threads) and checks `from_env` follows it.
    #[test]
    fn from_env_follows_the_variable() {
        let _fds = common::fds_shared();
        let expected = match std::env::var(Backend::ENV_VAR) {
            Err(_) => Backend::Epoll,
            Ok(v) if v.is_empty() => Backend::Epoll,
            Ok(v) => v.parse().expect("TRIPOLL_BACKEND names a backend"),
        };
        assert_eq!(Backend::from_env().unwrap(), expected);
        assert_eq!(AnyPoller::from_env().unwrap().backend(), expected);
    }

    #[test]
    fn errors_have_io_kinds() {
        let cases = [
            (
                Error::AlreadyRegistered { fd: 3 },
                io::ErrorKind::AlreadyExists,
            ),
            (Error::NotRegistered { fd: 3 }, io::ErrorKind::NotFound),
            (Error::InvalidFd { fd: -1 }, io::ErrorKind::InvalidInput),
            (
                Error::ReservedToken(Token::RESERVED),
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::FdOutOfRange {
                    fd: 2000,
                    limit: FD_SETSIZE,
                },
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::Unsupported {
                    backend: Backend::Poll,
                    mode: Mode::Edge,
                },
                io::ErrorKind::Unsupported,
            ),
            (
                Error::Unavailable {
                    backend: Backend::IoUring,
                    reason: "io_uring_setup: Operation not permitted".to_owned(),
                },
                io::ErrorKind::Unsupported,
            ),
        ];
        for (e, kind) in cases {
            let text = e.to_string();
            assert!(!text.is_empty());
            let io: io::Error = e.into();
            assert_eq!(io.kind(), kind, "{text}");
            assert_eq!(io.to_string(), text, "the message survives");
        }
        let os = Error::Io {
            op: tripoll::Op::Wait,
            source: io::Error::from_raw_os_error(libc::EBADF),
        };
        let io: io::Error = os.into();
        assert_eq!(io.raw_os_error(), Some(libc::EBADF), "OS errors stay raw");
    }
}

/// The suite's own shape, read from its source: what a reader, or a new
/// test, could otherwise get wrong without any test failing.
mod layout {
    /// This file.
    const SUITE: &str = include_str!("conformance.rs");
    /// The contract's numbered points.
    const CONTRACT: &str = include_str!("../src/poller.rs");

    /// The names of the generic tests in `mod suite`.
    fn suite_tests() -> Vec<&'static str> {
        SUITE
            .lines()
            .filter_map(|l| l.strip_prefix("    pub(crate) fn "))
            .map(|rest| rest.split(['<', '(']).next().unwrap_or(rest))
            .collect()
    }

    /// The names in `every_test!`, the one list every backend runs.
    fn listed_tests() -> Vec<&'static str> {
        let start = SUITE
            .find("macro_rules! every_test {")
            .expect("the every_test! list");
        let end = start + SUITE[start..].find("\n}\n").expect("its end");
        SUITE[start..end]
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_suffix(','))
            .filter(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .collect()
    }

    /// `(number, title)` of each point of the contract on `Poller`
    /// (`/// 1. **Timeouts.** ...`).
    fn contract_points() -> Vec<(usize, String)> {
        CONTRACT
            .lines()
            .filter_map(|l| l.strip_prefix("///"))
            .filter_map(|l| {
                let (number, rest) = l.trim_start().split_once(". **")?;
                let title = rest.split_once(".**")?.0;
                Some((number.parse().ok()?, title.to_lowercase()))
            })
            .collect()
    }

    /// `(number, title)` of each `// -- Contract N: title ---` section.
    fn sections() -> Vec<(usize, String)> {
        SUITE
            .lines()
            .filter_map(|l| l.strip_prefix("    // -- Contract "))
            .filter_map(|l| {
                let (number, title) = l.split_once(": ")?;
                Some((
                    number.parse().ok()?,
                    title.trim_end_matches(['-', ' ']).to_owned(),
                ))
            })
            .collect()
    }

    #[test]
    fn every_suite_test_is_in_the_list_once() {
        let mut suite = suite_tests();
        let mut listed = listed_tests();
        assert!(suite.len() > 50, "found {} suite tests", suite.len());
        suite.sort_unstable();
        listed.sort_unstable();
        let mut unique = listed.clone();
        unique.dedup();
        assert_eq!(listed, unique, "a test is listed twice in every_test!");
        assert_eq!(suite, listed, "every_test! lists exactly the suite's tests");
    }

    #[test]
    fn sections_follow_the_contract() {
        let points = contract_points();
        assert_eq!(
            points.iter().map(|p| p.0).collect::<Vec<_>>(),
            (1..=points.len()).collect::<Vec<_>>(),
            "the contract in src/poller.rs is numbered 1, 2, 3 ... once: {points:?}"
        );
        assert!(points.len() >= 10, "found {points:?}");
        let sections = sections();
        assert_eq!(
            sections.iter().map(|s| s.0).collect::<Vec<_>>(),
            (1..=points.len()).collect::<Vec<_>>(),
            "one section per contract point, in its order: {sections:?}"
        );
        for ((n, point), (_, section)) in points.iter().zip(&sections) {
            assert!(
                section.starts_with(point.as_str()),
                "section {n} is {section:?}, the contract's point {n} is {point:?}"
            );
        }
    }
}
