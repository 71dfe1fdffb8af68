//! The conveniences a new user expects, on every backend: `is_write_closed`
//! against real sockets and pipes, `wait_deadline`, registration of I/O
//! objects (`AsFd`), nesting an epoll poller in another poller, and the
//! names of modes and operations.

mod common;

use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{pipe, socket_pair, tcp_pair, wait_for, wait_one, Watchdog, QUIET, SAFETY};
use tripoll::{
    AnyPoller, Backend, Capabilities, Epoll, Error, Event, Events, Interest, Mode, Op, Poller,
    Token,
};

const T: Token = Token(1);

fn poller(backend: Backend) -> AnyPoller {
    AnyPoller::new(backend).expect("create poller")
}

/// Waits until an event for `T` satisfies `done` and returns it.
fn wait_until(p: &AnyPoller, events: &mut Events, done: fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + SAFETY;
    loop {
        let e = wait_for(p, events, T);
        if done(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "no matching event: last {e:?}");
    }
}

// ---------------------------------------------------------------------------
// is_write_closed

/// The peer resets the connection: writing is over, and the backends that
/// can see it say so; the write that follows fails, which is the truth the
/// flag reports.
fn write_closed_after_peer_reset(backend: Backend) {
    let _fds = common::fds_shared();
    let p = poller(backend);
    let (server, client) = tcp_pair();
    p.register_source(
        &server,
        T,
        Interest::READABLE | Interest::WRITABLE,
        Mode::Level,
    )
    .expect("register");
    common::set_linger_zero(&client);
    drop(client);

    let mut events = Events::with_capacity(4);
    let ev = wait_until(&p, &mut events, |e| e.is_readable() || e.is_error());
    let caps = p.capabilities();
    assert_eq!(
        ev.is_write_closed(),
        caps.contains(Capabilities::WRITE_CLOSED),
        "{backend}: {ev:?}"
    );
    if caps.contains(Capabilities::WRITE_CLOSED) {
        assert!(ev.is_error() && ev.is_hangup(), "{backend}: {ev:?}");
    }
    let err = (&server)
        .write(b"x")
        .expect_err("writing to a reset connection");
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "{err}"
    );
    p.unregister_source(&server).expect("unregister");
}

/// A pipe's read end goes away: the write end reports writing is over
/// (epoll and poll say `EPOLLERR`), and the write fails with `EPIPE`.
fn write_closed_when_the_reader_goes(backend: Backend) {
    let _fds = common::fds_shared();
    let p = poller(backend);
    let (reader, mut writer) = pipe();
    p.register_source(&writer, T, Interest::WRITABLE, Mode::Level)
        .expect("register");
    let mut events = Events::with_capacity(4);
    assert!(
        !wait_one(&p, &mut events, T).is_write_closed(),
        "reader still there"
    );

    drop(reader);
    let ev = wait_one(&p, &mut events, T);
    let caps = p.capabilities();
    assert_eq!(
        ev.is_write_closed(),
        caps.contains(Capabilities::WRITE_CLOSED),
        "{backend}: {ev:?}"
    );
    let err = writer
        .write(b"x")
        .expect_err("writing to a pipe nobody reads");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    p.unregister_source(&writer).expect("unregister");
}

/// The same with write interest absent: the event is an error alone, which
/// still means writing is over.
fn write_closed_without_write_interest(backend: Backend) {
    let _fds = common::fds_shared();
    let p = poller(backend);
    let (reader, writer) = pipe();
    p.register_source(&writer, T, Interest::empty(), Mode::Level)
        .expect("register");
    let mut events = Events::with_capacity(4);
    drop(reader);
    if p.capabilities().contains(Capabilities::WRITE_CLOSED) {
        let ev = wait_one(&p, &mut events, T);
        assert!(ev.is_error() && !ev.is_writable(), "{backend}: {ev:?}");
        assert!(ev.is_write_closed(), "{backend}: {ev:?}");
    } else {
        // Select: no interest, nothing it can report.
        common::assert_quiet(&p, &mut events, "select sees no errors");
    }
    p.unregister_source(&writer).expect("unregister");
}

/// The peer shuts down only its writing side: reading is over here, but
/// this side can still send, on every backend.
fn half_close_is_not_write_closed(backend: Backend) {
    let _fds = common::fds_shared();
    let p = poller(backend);
    let (a, b) = socket_pair();
    p.register_source(&a, T, Interest::READABLE | Interest::WRITABLE, Mode::Level)
        .expect("register");
    b.shutdown(Shutdown::Write).expect("shutdown");
    let mut events = Events::with_capacity(4);
    let ev = wait_until(&p, &mut events, |e| e.is_readable());
    assert!(!ev.is_write_closed(), "{backend}: {ev:?}");
    assert_eq!(
        ev.is_read_closed(),
        p.capabilities().contains(Capabilities::READ_CLOSED),
        "{backend}: {ev:?}"
    );
    assert_eq!((&a).write(b"still open").expect("write"), 10);
    p.unregister_source(&a).expect("unregister");
}

/// A healthy, writable connection is not write-closed.
fn healthy_is_not_write_closed(backend: Backend) {
    let _fds = common::fds_shared();
    let p = poller(backend);
    let (server, _client) = tcp_pair();
    p.register_source(&server, T, Interest::WRITABLE, Mode::Level)
        .expect("register");
    let mut events = Events::with_capacity(4);
    let ev = wait_until(&p, &mut events, |e| e.is_writable());
    assert!(!ev.is_write_closed() && !ev.is_error(), "{backend}: {ev:?}");
    p.unregister_source(&server).expect("unregister");
}

// ---------------------------------------------------------------------------
// wait_deadline

/// A poller that counts its waits and remembers their timeouts, forwarding
/// everything to a real one: shows that `wait_deadline` goes through `wait`.
#[derive(Debug)]
struct Recording<P> {
    inner: P,
    waits: AtomicUsize,
    last: Mutex<Option<Option<Duration>>>,
}

impl<P: Poller> Poller for Recording<P> {
    fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        mode: Mode,
    ) -> tripoll::Result<()> {
        self.inner.register(fd, token, interest, mode)
    }
    fn modify(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        mode: Mode,
    ) -> tripoll::Result<()> {
        self.inner.modify(fd, token, interest, mode)
    }
    fn unregister(&self, fd: RawFd) -> tripoll::Result<()> {
        self.inner.unregister(fd)
    }
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> tripoll::Result<usize> {
        self.waits.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(timeout);
        self.inner.wait(events, timeout)
    }
    fn notify(&self) -> tripoll::Result<()> {
        self.inner.notify()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
}

/// One deadline, converted once, one `wait`: a far deadline with data ready
/// returns the data through a single wait whose timeout is what was left.
fn wait_deadline_converts_once_and_waits_once(backend: Backend) {
    let _fds = common::fds_shared();
    let p = Recording {
        inner: poller(backend),
        waits: AtomicUsize::new(0),
        last: Mutex::new(None),
    };
    let (a, mut b) = socket_pair();
    p.register_source(&a, T, Interest::READABLE, Mode::Level)
        .expect("register");
    b.write_all(b"x").expect("write");

    let mut events = Events::with_capacity(4);
    let hour = Duration::from_secs(3600);
    let before = Instant::now();
    let n = p
        .wait_deadline(&mut events, Some(before + hour))
        .expect("wait");
    assert_eq!(n, 1);
    assert_eq!(p.waits.load(Ordering::SeqCst), 1);
    let timeout = p.last.lock().unwrap().expect("a wait").expect("a timeout");
    assert!(timeout <= hour && timeout > hour - SAFETY, "{timeout:?}");

    p.notify().expect("notify");
    p.unregister_source(&a).expect("unregister");
    assert_eq!(p.wait_deadline(&mut events, None).expect("wait"), 0);
    assert_eq!(p.waits.load(Ordering::SeqCst), 2);
    assert_eq!(
        *p.last.lock().unwrap(),
        Some(None),
        "no deadline is no timeout"
    );
}

/// A deadline already past is a zero timeout: it reports what is ready and
/// never blocks (a watchdog would rescue a blocked wait, and we check it
/// did not have to).
fn wait_deadline_in_the_past_never_blocks(backend: Backend) {
    let _fds = common::fds_shared();
    let p: Arc<dyn Poller> = Arc::new(poller(backend));
    let mut events = Events::with_capacity(4);
    let past = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now);

    let dog = Watchdog::arm(Arc::clone(&p), SAFETY);
    assert_eq!(p.wait_deadline(&mut events, Some(past)).expect("wait"), 0);
    assert!(!dog.disarm(), "a past deadline blocked");

    let (a, mut b) = socket_pair();
    p.register_source(&a, T, Interest::READABLE, Mode::Level)
        .expect("register");
    b.write_all(b"x").expect("write");
    assert_eq!(p.wait_deadline(&mut events, Some(past)).expect("wait"), 1);
    assert_eq!(events.iter().next().map(Event::token), Some(T));
    p.unregister_source(&a).expect("unregister");
}

/// A future deadline with nothing to report returns no earlier than the
/// deadline (contract point 1: timeouts round up).
fn wait_deadline_is_never_early(backend: Backend) {
    let _fds = common::fds_shared();
    let p = poller(backend);
    let mut events = Events::with_capacity(4);
    let deadline = Instant::now() + QUIET;
    let n = p.wait_deadline(&mut events, Some(deadline)).expect("wait");
    assert_eq!(
        n, 0,
        "{backend}: an event with nothing registered: {events:?}"
    );
    assert!(
        Instant::now() >= deadline,
        "{backend}: returned before the deadline"
    );
}

/// No deadline blocks until a notification, and returns after it.
fn wait_deadline_none_waits_for_notify(backend: Backend) {
    let _fds = common::fds_shared();
    let p = Arc::new(poller(backend));
    let sent = Arc::new(AtomicBool::new(false));
    let (p2, sent2) = (Arc::clone(&p), Arc::clone(&sent));
    let t = thread::spawn(move || {
        thread::sleep(QUIET);
        sent2.store(true, Ordering::SeqCst);
        p2.notify()
    });
    let mut events = Events::with_capacity(4);
    assert_eq!(p.wait_deadline(&mut events, None).expect("wait"), 0);
    assert!(sent.load(Ordering::SeqCst), "returned before the notify");
    t.join().expect("thread").expect("notify");
}

// ---------------------------------------------------------------------------
// Registering I/O objects

/// `register_source` and friends on a boxed trait object, with an owned
/// listener and a `BorrowedFd`; the closed-descriptor rules are the raw ones.
fn sources_through_a_trait_object(backend: Backend) {
    let _fds = common::fds_shared();
    let p: Box<dyn Poller> = Box::new(poller(backend));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    p.register_source(&listener, T, Interest::READABLE, Mode::Level)
        .expect("register");
    assert!(matches!(
        p.register_source(&listener.as_fd(), Token(2), Interest::READABLE, Mode::Level),
        Err(Error::AlreadyRegistered { fd }) if fd == listener.as_raw_fd()
    ));

    let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let mut events = Events::with_capacity(4);
    assert!(wait_for(&p, &mut events, T).is_readable());

    p.modify_source(&listener, Token(3), Interest::READABLE, Mode::Level)
        .expect("modify");
    wait_for(&p, &mut events, Token(3));

    p.unregister_source(&listener.as_fd()).expect("unregister");
    assert!(matches!(
        p.unregister_source(&listener),
        Err(Error::NotRegistered { .. })
    ));
    assert!(matches!(
        p.modify_source(&listener, T, Interest::READABLE, Mode::Level),
        Err(Error::NotRegistered { .. })
    ));
}

/// A closed source that was still registered unregisters by its number,
/// as the contract's closed-descriptor rule says.
fn closed_source_unregisters_by_number(backend: Backend) {
    let _fds = common::fds_exclusive();
    let p = poller(backend);
    let (a, _b) = socket_pair();
    let fd = a.as_raw_fd();
    p.register_source(&a, T, Interest::READABLE, Mode::Level)
        .expect("register");
    drop(a);
    p.unregister(fd).expect("unregister a closed descriptor");
}

// ---------------------------------------------------------------------------
// Nesting: an epoll poller's descriptor in another poller

/// The inner epoll's descriptor is readable exactly when its wait would
/// report: data, a notify; quiet once the inner wait took them.
fn epoll_nests_in(backend: Backend) {
    let _fds = common::fds_shared();
    let outer = poller(backend);
    let inner = Epoll::new().expect("epoll");
    let any_inner = AnyPoller::from(Epoll::new().expect("epoll"));
    assert!(any_inner.pollable_fd().is_some());
    outer
        .register_source(&inner, Token(0), Interest::READABLE, Mode::Level)
        .expect("register the inner poller");
    let mut outer_events = Events::with_capacity(4);
    let mut inner_events = Events::with_capacity(4);
    common::assert_quiet(&outer, &mut outer_events, "inner has nothing");

    let (a, mut b) = socket_pair();
    inner
        .register_source(&a, T, Interest::READABLE, Mode::Edge)
        .expect("register");
    b.write_all(b"x").expect("write");
    assert!(wait_one(&outer, &mut outer_events, Token(0)).is_readable());
    assert_eq!(wait_one(&inner, &mut inner_events, T).token(), T);
    common::assert_quiet(&outer, &mut outer_events, "inner's edge was taken");

    inner.notify().expect("notify");
    wait_one(&outer, &mut outer_events, Token(0));
    assert_eq!(
        inner.wait(&mut inner_events, Some(SAFETY)).expect("wait"),
        0
    );
    common::assert_quiet(&outer, &mut outer_events, "inner's notify was taken");

    inner.unregister_source(&a).expect("unregister");
    outer
        .unregister_source(&inner)
        .expect("unregister the inner poller");
}

/// A reactor over epoll nests the same way: its descriptor is readable when
/// one of its sources is ready or a handle posted to it, and quiet once a
/// turn has dispatched them.
fn reactor_nests_in(backend: Backend) {
    let _fds = common::fds_shared();
    let outer = poller(backend);
    let mut reactor = tripoll::reactor::Reactor::with_poller(Epoll::new().expect("epoll"));
    outer
        .register_source(&reactor, Token(0), Interest::READABLE, Mode::Level)
        .expect("register the reactor");
    let mut events = Events::with_capacity(4);
    common::assert_quiet(&outer, &mut events, "an idle reactor");

    let (a, mut b) = socket_pair();
    let got = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = std::rc::Rc::clone(&got);
    reactor
        .register_owned(a, Interest::READABLE, Mode::Edge, move |_, conn, _| {
            let (n, _) = common::drain(conn);
            seen.set(seen.get() + n);
            Ok(())
        })
        .expect("register a source");
    b.write_all(b"abc").expect("write");
    wait_one(&outer, &mut events, Token(0));
    assert_eq!(reactor.run_once(Some(Duration::ZERO)).expect("turn"), 1);
    assert_eq!(got.get(), 3);
    common::assert_quiet(&outer, &mut events, "the reactor's turn took the edge");

    reactor.handle().post(|_| Ok(())).expect("post");
    wait_one(&outer, &mut events, Token(0));
    assert_eq!(reactor.run_once(Some(Duration::ZERO)).expect("turn"), 1);
    common::assert_quiet(&outer, &mut events, "the posted closure ran");
    outer
        .unregister_source(&reactor)
        .expect("unregister the reactor");
}

macro_rules! api_suite {
    ($name:ident, $backend:expr, $poller:ty) => {
        mod $name {

            #[test]
            fn write_closed_after_peer_reset() {
                super::write_closed_after_peer_reset($backend);
            }
            #[test]
            fn write_closed_when_the_reader_goes() {
                super::write_closed_when_the_reader_goes($backend);
            }
            #[test]
            fn write_closed_without_write_interest() {
                super::write_closed_without_write_interest($backend);
            }
            #[test]
            fn half_close_is_not_write_closed() {
                super::half_close_is_not_write_closed($backend);
            }
            #[test]
            fn healthy_is_not_write_closed() {
                super::healthy_is_not_write_closed($backend);
            }
            #[test]
            fn wait_deadline_converts_once_and_waits_once() {
                super::wait_deadline_converts_once_and_waits_once($backend);
            }
            #[test]
            fn wait_deadline_in_the_past_never_blocks() {
                super::wait_deadline_in_the_past_never_blocks($backend);
            }
            #[test]
            fn wait_deadline_is_never_early() {
                super::wait_deadline_is_never_early($backend);
            }
            #[test]
            fn wait_deadline_none_waits_for_notify() {
                super::wait_deadline_none_waits_for_notify($backend);
            }
            #[test]
            fn sources_through_a_trait_object() {
                super::sources_through_a_trait_object($backend);
            }
            #[test]
            fn closed_source_unregisters_by_number() {
                super::closed_source_unregisters_by_number($backend);
            }
            #[test]
            fn epoll_nests_in() {
                super::epoll_nests_in($backend);
            }
            #[test]
            fn reactor_nests_in() {
                super::reactor_nests_in($backend);
            }
        }
    };
}

common::for_each_backend!(api_suite);

// ---------------------------------------------------------------------------
// Names, defaults, descriptors

#[test]
fn capabilities_of_write_closed() {
    for backend in common::backends() {
        let caps = poller(backend).capabilities();
        assert_eq!(
            caps.contains(Capabilities::WRITE_CLOSED),
            backend != Backend::Select,
            "{backend}"
        );
    }
}

#[test]
fn mode_names_round_trip_and_pad() {
    for mode in Mode::ALL {
        let name = mode.to_string();
        assert_eq!(name, mode.name());
        assert_eq!(name.parse::<Mode>().expect("parse"), mode);
        assert_eq!(name.to_uppercase().parse::<Mode>().expect("parse"), mode);
        assert_eq!(format!("{mode:>16}"), format!("{name:>16}"));
        assert_eq!(format!("{mode:-<16}"), format!("{name:-<16}"));
    }
    let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        [
            "level",
            "edge",
            "oneshot",
            "edge-oneshot",
            "exclusive",
            "edge-exclusive"
        ]
    );
}

#[test]
fn unknown_mode_is_a_typed_error() {
    for bad in ["", "edgy", "edge_oneshot", " level", "level "] {
        match bad.parse::<Mode>() {
            Err(e @ Error::UnknownName { what: "mode", .. }) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                let text = e.to_string();
                assert!(text.contains(&format!("{bad:?}")), "{text}");
                assert!(text.contains("edge-oneshot"), "{text}");
            }
            other => panic!("{bad:?} parsed as {other:?}"),
        }
    }
}

#[test]
fn op_names_display_and_pad() {
    let named = [
        (Op::Create, "create"),
        (Op::Register, "register"),
        (Op::Modify, "modify"),
        (Op::Unregister, "unregister"),
        (Op::Wait, "wait"),
        (Op::Notify, "notify"),
    ];
    for (op, name) in named {
        assert_eq!(op.to_string(), name);
        assert_eq!(format!("[{op:^12}]"), format!("[{name:^12}]"));
    }
}

#[test]
fn backend_display_pads() {
    for b in Backend::ALL {
        assert_eq!(format!("{b:8}|"), format!("{:8}|", b.name()));
    }
}

#[test]
fn events_default_holds_a_busy_turn() {
    let events = Events::default();
    assert_eq!(events.capacity(), Events::DEFAULT_CAPACITY);
    assert!(events.is_empty());
}

#[test]
fn only_epoll_has_a_pollable_fd() {
    for backend in common::backends() {
        let p = poller(backend);
        assert_eq!(
            p.pollable_fd().is_some(),
            backend == Backend::Epoll,
            "{backend}"
        );
    }
    let e = Epoll::new().expect("epoll");
    assert_eq!(e.as_fd().as_raw_fd(), e.as_raw_fd());
    let raw = e.as_raw_fd();
    assert_eq!(
        AnyPoller::from(e).pollable_fd().map(|fd| fd.as_raw_fd()),
        Some(raw)
    );
}
