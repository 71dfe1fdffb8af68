//! `tripoll::task`, the async layer on the reactor, on every backend: many
//! tasks waiting on one socket all wake; a task dropped while waiting leaves
//! no registration; timers are never early; a waker used from another
//! thread wakes the loop; 10 000 concurrent async echo connections lose
//! nothing. Then the examples written with it (`async_echo`, `async_http`)
//! against real clients, as their callback counterparts are tested.
//!
//! Every wait is bounded: the futures under test run inside
//! `timeout(SAFETY, ..)` (a hang fails with `TimedOut`), client sockets
//! carry timeouts, and child processes are killed when their guard drops.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::child::{self, listen_addrs, Proc, PATIENCE};
use common::SAFETY;
use tripoll::reactor::Reactor;
use tripoll::task::{sleep, timeout, Async, Executor};
use tripoll::{AnyPoller, Backend, Interest, Mode};

fn reactor(backend: Backend) -> Reactor {
    Reactor::with_poller(AnyPoller::new(backend).expect("poller"))
}

/// Returns `Pending` once (waking itself), so the other tasks run.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Yields until `done()` holds.
async fn until(done: impl Fn() -> bool) {
    while !done() {
        yield_now().await;
    }
}

/// Runs `f` on `reactor` with a fresh executor, bounded by [`SAFETY`].
fn run<T>(reactor: &mut Reactor, ex: &Executor, f: impl Future<Output = T>) -> T {
    ex.block_on(reactor, timeout(SAFETY, f))
        .expect("the loop")
        .expect("the test's future hung")
}

// ---------------------------------------------------------------------------
// Waiters

/// Makes `a` not ready for reading: a read that would block clears the
/// flag (a read that cannot complete, cut by a short timeout).
async fn make_unready(a: &Async<UnixStream>) {
    let mut buf = [0; 1];
    let cut = timeout(Duration::from_millis(1), a.read(&mut buf)).await;
    assert_eq!(
        cut.expect_err("nothing to read").kind(),
        ErrorKind::TimedOut
    );
}

fn many_waiters_all_wake(backend: Backend) {
    const WAITERS: usize = 16;
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    run(&mut reactor, &ex, async move {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Rc::new(Async::new(a).unwrap());
        make_unready(&a).await;
        let waiting = Rc::new(Cell::new(0));
        let woken = Rc::new(Cell::new(0));
        for _ in 0..WAITERS {
            let (a, waiting, woken) = (Rc::clone(&a), Rc::clone(&waiting), Rc::clone(&woken));
            spawner.spawn(async move {
                waiting.set(waiting.get() + 1);
                a.readable().await.unwrap();
                woken.set(woken.get() + 1);
            });
        }
        until(|| waiting.get() == WAITERS).await;
        yield_now().await; // every waiter has polled `readable` once
        assert_eq!(woken.get(), 0, "nothing was written yet");
        b.write_all(b"x").unwrap();
        until(|| woken.get() == WAITERS).await;
        // And the byte is still there for whoever reads it.
        let mut buf = [0; 1];
        assert_eq!(a.read(&mut buf).await.unwrap(), 1);
    });
    assert!(ex.is_empty());
}

fn readers_and_writers_on_one_socket(backend: Backend) {
    // A reader and a writer wait on the same object at once (in oneshot
    // mode each event disarms both directions: the one still waited on
    // must be re-armed).
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    run(&mut reactor, &ex, async move {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (Rc::new(Async::new(a).unwrap()), Async::new(b).unwrap());
        // Fill `a` until it would block, so the writer must wait.
        let chunk = vec![7u8; 64 * 1024];
        let mut filled = 0;
        while let Ok(Ok(n)) = timeout(Duration::from_millis(1), a.write(&chunk)).await {
            filled += n;
        }
        let a2 = Rc::clone(&a);
        let reader = spawner.spawn(async move {
            let mut buf = [0; 5];
            a2.read_exact(&mut buf).await.unwrap();
            buf
        });
        let a3 = Rc::clone(&a);
        let writer = spawner.spawn(async move { a3.write_all(b"tail").await.unwrap() });
        yield_now().await;
        b.write_all(b"hello").await.unwrap();
        assert_eq!(&reader.await.unwrap(), b"hello");
        // Drain what `a` sent, so the writer gets room.
        let mut got = vec![0; filled + 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[filled..], b"tail");
        writer.await.unwrap();
    });
}

// ---------------------------------------------------------------------------
// Registrations

fn dropped_waiter_leaves_no_registration(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    let before = reactor.source_count();
    let fd = Rc::new(Cell::new(-1));
    let fd2 = Rc::clone(&fd);
    run(&mut reactor, &ex, async move {
        let (a, _b) = UnixStream::pair().unwrap();
        fd2.set(a.as_raw_fd());
        let task = spawner.spawn(timeout(Duration::from_millis(5), async move {
            let a = Async::new(a).unwrap();
            let mut buf = [0; 1];
            a.read(&mut buf).await // waits: nothing comes
        }));
        // The waiting task is dropped (inside it, by the timeout).
        let out = task.await.expect("the task ran");
        assert_eq!(out.expect_err("cut").kind(), ErrorKind::TimedOut);
    });
    assert_eq!(reactor.source_count(), before, "unregistered at once");
    assert!(!common::is_open(fd.get()), "and closed");

    // A whole task dropped while it waits: with its executor, outside the
    // loop. The object stays open until the loop has unregistered it.
    let ex = Executor::new();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let waiting = Rc::new(Cell::new(false));
    let w = Rc::clone(&waiting);
    ex.spawn(async move {
        let a = Async::new(a).unwrap();
        w.set(true);
        let mut buf = [0; 1];
        let _ = a.read(&mut buf).await;
        unreachable!("nothing is ever written");
    });
    let w = Rc::clone(&waiting);
    run(&mut reactor, &ex, until(move || w.get()));
    assert_eq!(reactor.source_count(), before + 1);
    drop(ex);
    assert!(common::is_open(fd), "closed only after it is unregistered");
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(reactor.source_count(), before, "unregistered by the loop");
    assert!(!common::is_open(fd), "then closed");
}

fn dropping_the_executor_drops_tasks_that_hold_its_spawner(backend: Backend) {
    // A task holding a spawner of its own executor (an accept loop does)
    // makes no cycle: dropping the executor drops the task, and its socket
    // is unregistered at the loop's next turn.
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let started = Rc::new(Cell::new(false));
    let s = Rc::clone(&started);
    let task = ex.spawn(async move {
        let a = Async::new(a).unwrap();
        s.set(true);
        let mut buf = [0; 1];
        let _ = a.read(&mut buf).await; // nothing comes
        drop(spawner);
    });
    let s = Rc::clone(&started);
    run(&mut reactor, &ex, until(move || s.get()));
    assert_eq!(reactor.source_count(), 1);
    let late = ex.spawner();
    drop(ex);
    assert!(task.is_finished(), "dropped with its executor");
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(reactor.source_count(), 0);
    assert!(!common::is_open(fd));
    // A spawner that outlives its executor drops what it is given.
    let h = late.spawn(async { 1 });
    assert!(h.is_finished());
}

fn into_inner_unregisters(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd: RawFd = a.as_raw_fd();
    let a = run(&mut reactor, &ex, async move {
        let a = Async::new(a).unwrap();
        a.into_inner().unwrap()
    });
    assert_eq!(reactor.source_count(), 0);
    // The same descriptor registers again: nothing of the old one is left.
    let t = reactor
        .register(fd, Interest::READABLE, Mode::Level, |_, _| Ok(()))
        .expect("registering the same descriptor again");
    reactor.unregister(t).unwrap();
    drop(a);
}

fn outside_a_task_is_an_error(backend: Backend) {
    let _reactor = reactor(backend);
    let (a, _b) = UnixStream::pair().unwrap();
    let err = Async::new(a).expect_err("no reactor is lent outside a task");
    assert_eq!(err.kind(), ErrorKind::Other);
    // A future polled by another executor (a hand-made one here) gets an
    // error from the timer, not a hang.
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut s = sleep(Duration::from_secs(60));
    match Pin::new(&mut s).poll(&mut cx) {
        Poll::Ready(Err(e)) => assert_eq!(e.kind(), ErrorKind::Other),
        other => panic!("{other:?}"),
    }
}

/// Whether `fd`'s open file description has `O_NONBLOCK` set.
fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no argument; a closed fd is an error (-1).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// An `Async::new` that fails changes nothing: outside a task (no reactor
/// lent), and inside one when the poller refuses the descriptor (already
/// registered), a blocking descriptor stays blocking. Seen through a
/// duplicate, which shares the flags.
fn a_failed_new_leaves_the_flags(backend: Backend) {
    let (a, _b) = UnixStream::pair().unwrap();
    let probe = a.try_clone().unwrap();
    assert!(!is_nonblocking(probe.as_raw_fd()));
    let err = Async::new(a).expect_err("no reactor is lent outside a task");
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(!is_nonblocking(probe.as_raw_fd()), "outside a task");

    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let (a, _b) = UnixStream::pair().unwrap();
    let probe = a.try_clone().unwrap();
    let t = reactor
        .register(
            a.as_raw_fd(),
            Interest::READABLE,
            Mode::Level,
            |_, _| Ok(()),
        )
        .unwrap();
    let err = run(&mut reactor, &ex, async move {
        Async::new(a).expect_err("the descriptor is already registered")
    });
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(!is_nonblocking(probe.as_raw_fd()), "after a refusal");
    // The first registration (of a number now closed) is left to its owner.
    reactor.unregister(t).unwrap();
    // And a successful one does set the flag.
    let (a, _b) = UnixStream::pair().unwrap();
    let probe = a.try_clone().unwrap();
    let a = run(&mut reactor, &ex, async move { Async::new(a).unwrap() });
    assert!(is_nonblocking(probe.as_raw_fd()));
    drop(a);
}

struct NoopWake;
impl std::task::Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

// ---------------------------------------------------------------------------
// Timers and wake-ups

fn timers_are_never_early(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    let delays = [0u64, 1, 2, 3, 5, 8, 13, 21, 1, 0, 7, 2];
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = Rc::clone(&results);
    run(&mut reactor, &ex, async move {
        let mut handles = Vec::new();
        for &ms in &delays {
            let r = Rc::clone(&r);
            handles.push(spawner.spawn(async move {
                let d = Duration::from_millis(ms);
                let start = Instant::now();
                sleep(d).await.unwrap();
                r.borrow_mut().push((d, start.elapsed()));
                let start = Instant::now();
                let cut = timeout(d, std::future::pending::<()>()).await;
                assert_eq!(cut.unwrap_err().kind(), ErrorKind::TimedOut);
                r.borrow_mut().push((d, start.elapsed()));
            }));
        }
        for h in handles {
            h.await.expect("a timer task");
        }
    });
    let results = results.borrow();
    assert_eq!(results.len(), 2 * delays.len());
    for &(asked, took) in results.iter() {
        assert!(took >= asked, "woken after {took:?}, asked {asked:?}");
    }
}

fn woken_from_another_thread(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let flag = Arc::new(AtomicBool::new(false));
    let (s2, f2) = (Arc::clone(&slot), Arc::clone(&flag));
    let waker_thread = thread::spawn(move || {
        // Waits for the waker, then sets the flag and wakes from here.
        let waker = loop {
            if let Some(w) = s2.lock().unwrap().take() {
                break w;
            }
            thread::sleep(Duration::from_millis(1));
        };
        f2.store(true, Ordering::Release);
        waker.wake();
    });
    // No timer here (it would wake the loop by itself): a watchdog stops
    // the loop instead, and the test fails with `Interrupted`.
    let (done, watch) = mpsc::channel::<()>();
    let handle = reactor.handle();
    let watchdog = thread::spawn(move || {
        if watch.recv_timeout(SAFETY).is_err() {
            let _ = handle.stop();
        }
    });
    let polls = Rc::new(Cell::new(0));
    let p = Rc::clone(&polls);
    let out = ex.block_on(
        &mut reactor,
        std::future::poll_fn(move |cx| {
            p.set(p.get() + 1);
            if flag.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }),
    );
    let _ = done.send(());
    watchdog.join().unwrap();
    waker_thread.join().unwrap();
    out.expect("woken by the other thread, not stopped by the watchdog");
    assert_eq!(polls.get(), 2, "polled, then polled again once woken");
}

fn stop_ends_run_and_keeps_tasks(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let (a, mut b) = UnixStream::pair().unwrap();
    let got = Rc::new(Cell::new(0u8));
    let g = Rc::clone(&got);
    let stopper = ex.spawner();
    ex.spawn(async move {
        let a = Async::new(a).unwrap();
        let mut buf = [0; 1];
        stopper.stop(); // `run` returns once this poll is over
        a.read_exact(&mut buf).await.unwrap();
        g.set(buf[0]);
    });
    ex.run(&mut reactor).unwrap();
    assert_eq!(ex.len(), 1, "stopped, not finished");
    b.write_all(&[42]).unwrap();
    ex.run(&mut reactor).unwrap(); // until every task is done
    assert_eq!(got.get(), 42);
    assert!(ex.is_empty());

    // A stop of the reactor (a handle, from another thread) ends `run`
    // too, and is consumed: the next call goes on.
    ex.spawn(std::future::pending::<()>());
    let handle = reactor.handle();
    thread::spawn(move || handle.stop().unwrap())
        .join()
        .unwrap();
    ex.run(&mut reactor).unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex.block_on(&mut reactor, async { 5 }).unwrap(), 5);

    // `block_on` stopped before its future is done: `Interrupted`.
    let stopper = ex.spawner();
    let err = ex
        .block_on(&mut reactor, async move {
            stopper.stop();
            std::future::pending::<()>().await
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted);
}

fn a_panicking_task_is_dropped_alone(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let bad = ex.spawn(async {
        yield_now().await;
        panic!("this task fails (the test expects it)");
    });
    let good = ex.spawn(async {
        yield_now().await;
        yield_now().await;
        7
    });
    let out = ex
        .block_on(&mut reactor, async { (bad.await, good.await) })
        .unwrap();
    assert_eq!(out, (None, Some(7)));
    assert!(ex.is_empty());
}

// ---------------------------------------------------------------------------
// TCP and Unix helpers

fn tcp_echo_and_refused_connect(backend: Backend) {
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    run(&mut reactor, &ex, async move {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        spawner.spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await.unwrap();
            }
        });
        let client = Async::<TcpStream>::connect(addr).await.unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut back = vec![0; data.len()];
        let (w, r) = (client.write_all(&data), client.read_exact(&mut back));
        join2(w, r).await;
        assert!(back == data, "1 MB echoed byte for byte");

        // A port nobody listens on: the connect fails, typed.
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let err = Async::<TcpStream>::connect(dead_addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

/// Polls two futures of `()` results until both are done.
async fn join2(a: impl Future<Output = io::Result<()>>, b: impl Future<Output = io::Result<()>>) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut da, mut db) = (false, false);
    std::future::poll_fn(|cx| {
        if !da {
            if let Poll::Ready(r) = a.as_mut().poll(cx) {
                r.unwrap();
                da = true;
            }
        }
        if !db {
            if let Poll::Ready(r) = b.as_mut().poll(cx) {
                r.unwrap();
                db = true;
            }
        }
        if da && db {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The peer's last bytes and its end of stream arrive together, and the
/// loop has taken their one event before the task reads: the short read
/// that empties the buffer must not make the task wait for another event,
/// because in edge mode none comes; the next read returns 0 (the end).
/// (It waited forever: the lab's coroutine model hung with its socket in
/// CLOSE_WAIT.)
fn end_of_stream_after_a_short_read(backend: Backend) {
    let mut reactor = Reactor::with_poller(AnyPoller::new(backend).unwrap());
    let ex = Executor::new();
    run(&mut reactor, &ex, async {
        let (a, b) = Async::<UnixStream>::pair().unwrap();
        b.write_all(b"last").await.unwrap();
        drop(b); // the end of the stream, behind the data
                 // Let the loop turn: the edge (readable, read-closed) is taken.
        sleep(Duration::from_millis(20)).await.unwrap();
        let mut buf = [0; 64];
        assert_eq!(a.read(&mut buf).await.unwrap(), 4); // short: emptied
        assert_eq!(&buf[..4], b"last");
        assert_eq!(a.read(&mut buf).await.unwrap(), 0, "the end of the stream");
    });
}

fn unix_listener_and_connect(backend: Backend) {
    let dir =
        std::env::temp_dir().join(format!("tripoll-async-{}-{backend:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let spawner = ex.spawner();
    let p = path.clone();
    run(&mut reactor, &ex, async move {
        let listener = Async::<std::os::unix::net::UnixListener>::bind(&p).unwrap();
        let server = spawner.spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            conn.write_all(b"over unix").await.unwrap();
        });
        let client = Async::<UnixStream>::connect(&p).await.unwrap();
        let mut buf = [0; 9];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"over unix");
        server.await.unwrap();
        let missing = Async::<UnixStream>::connect(p.with_file_name("none")).await;
        assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------
// 10 000 concurrent connections through the async layer

/// Serialises the scale tests of this binary (descriptor budgets).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Set in a client process: `server address;connections`.
const CLIENT_ENV: &str = "TRIPOLL_ASYNC_CLIENT";
const REPORT_PREFIX: &str = "ASYNC-CLIENT-REPORT";
/// Connections a client opens, and gets one echo on, before the next
/// batch: the listen backlog never holds more.
const BATCH: usize = 100;
const MSG_LEN: usize = 100;
/// Safety net only: a healthy debug run takes seconds.
const SCALE_DEADLINE: Duration = Duration::from_secs(300);

/// The message of connection `i` in `round`: a byte delivered to the wrong
/// connection or out of place shows.
fn message(i: usize, round: usize) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    let head = format!("conn {i:06} round {round} ");
    m[..head.len()].copy_from_slice(head.as_bytes());
    for (k, b) in m.iter_mut().enumerate().skip(head.len()) {
        *b = ((i * 31 + round * 7 + k) % 251) as u8;
    }
    m
}

/// Entry point of the client process of [`holds_10k`], not a test: the
/// parent re-runs this binary with `--ignored --exact client_process` and
/// [`CLIENT_ENV`] set. Without the variable it does nothing.
#[test]
#[ignore = "entry point of the client process that the scale tests start"]
fn client_process() {
    let Ok(spec) = std::env::var(CLIENT_ENV) else {
        return;
    };
    let (addr, conns) = spec.split_once(';').expect("addr;conns");
    let addr: SocketAddr = addr.parse().expect("server address");
    let conns: usize = conns.parse().expect("connection count");
    common::raise_fd_limit(conns as u64 + 100);
    let echo = |s: &mut TcpStream, i: usize, round: usize| {
        let mut got = [0u8; MSG_LEN];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("#{i} round {round}: {e}"));
        assert!(got == message(i, round), "#{i} round {round}: wrong echo");
    };
    // Round 0, batch by batch: every connection stays open.
    let mut streams: Vec<TcpStream> = Vec::with_capacity(conns);
    while streams.len() < conns {
        let start = streams.len();
        let end = (start + BATCH).min(conns);
        for i in start..end {
            let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
            (&s).write_all(&message(i, 0)).unwrap();
            streams.push(s);
        }
        for (i, s) in streams.iter_mut().enumerate().skip(start) {
            echo(s, i, 0);
        }
    }
    // Round 1 with all of them open: every message in flight, then every echo.
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&message(i, 1)).unwrap();
    }
    for (i, s) in streams.iter_mut().enumerate() {
        echo(s, i, 1);
    }
    // Then a clean end on each: we close our side, the server closes its.
    let mut served = 0;
    for (i, s) in streams.iter_mut().enumerate() {
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("#{i} end: {e}"));
        assert!(rest.is_empty(), "#{i}: bytes after the echoes");
        served += 1;
    }
    println!("{REPORT_PREFIX} served={served}");
}

/// Kills the client process if the test fails first.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct Counts {
    live: Cell<usize>,
    peak: Cell<usize>,
    completed: Cell<usize>,
    bytes: Cell<usize>,
    failed: RefCell<Vec<String>>,
}

fn holds_many(backend: Backend, conns: usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let _fds = common::fds_exclusive();
    let limit = common::raise_fd_limit(conns as u64 + 200);
    assert!(limit >= conns as u64 + 200, "descriptor limit {limit}");
    let mut reactor = reactor(backend);
    let ex = Executor::new();
    let listener = ex
        .block_on(&mut reactor, async {
            Async::<TcpListener>::bind(([127, 0, 0, 1], 0))
        })
        .unwrap()
        .unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "client_process", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CLIENT_ENV, format!("{addr};{conns}"))
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the client process");
    let mut child = Reap(child);

    let counts = Rc::new(Counts::default());
    let (c, spawner) = (Rc::clone(&counts), ex.spawner());
    ex.spawn(async move {
        while c.completed.get() + c.failed.borrow().len() < conns {
            let (conn, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    c.failed.borrow_mut().push(format!("accept: {e}"));
                    continue;
                }
            };
            c.live.set(c.live.get() + 1);
            c.peak.set(c.peak.get().max(c.live.get()));
            let (c, stopper) = (Rc::clone(&c), spawner.clone());
            spawner.spawn(async move {
                let mut buf = [0u8; 4096];
                let res: io::Result<()> = async {
                    loop {
                        let n = conn.read(&mut buf).await?;
                        if n == 0 {
                            return Ok(());
                        }
                        conn.write_all(&buf[..n]).await?;
                        c.bytes.set(c.bytes.get() + n);
                    }
                }
                .await;
                c.live.set(c.live.get() - 1);
                match res {
                    Ok(()) => c.completed.set(c.completed.get() + 1),
                    Err(e) => c.failed.borrow_mut().push(format!("echo: {e}")),
                }
                if c.completed.get() + c.failed.borrow().len() == conns {
                    stopper.stop();
                }
            });
        }
    });
    let c = Rc::clone(&counts);
    let stopper = ex.spawner();
    ex.spawn(async move {
        sleep(SCALE_DEADLINE).await.unwrap();
        c.failed.borrow_mut().push("the deadline passed".into());
        stopper.stop();
    });
    ex.run(&mut reactor).expect("the loop");
    drop(ex); // the deadline task and the listener go

    let out = child.0.wait_with_output_ref();
    assert_eq!(*counts.failed.borrow(), Vec::<String>::new());
    assert_eq!(counts.completed.get(), conns);
    assert_eq!(counts.peak.get(), conns, "every connection open at once");
    assert_eq!(counts.bytes.get(), conns * 2 * MSG_LEN, "every byte echoed");
    assert!(out.0, "client failed: {}", out.2);
    assert!(
        out.1.contains(&format!("{REPORT_PREFIX} served={conns}")),
        "client report: {} {}",
        out.1,
        out.2
    );
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(reactor.source_count(), 0, "nothing left registered");
}

trait WaitRef {
    /// Waits (bounded) and reads: (success, stdout, stderr).
    fn wait_with_output_ref(&mut self) -> (bool, String, String);
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> (bool, String, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(st) = self.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        let mut err = String::new();
        self.stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.success(), out, err)
    }
}

fn holds_10k(backend: Backend) {
    // Select takes no descriptor from FD_SETSIZE (1024) up: it holds what
    // fits below, every byte of it.
    let conns = if backend == Backend::Select {
        900
    } else {
        10_000
    };
    holds_many(backend, conns);
}

// ---------------------------------------------------------------------------
// The examples

/// `async_echo` keeps serving while a hog sends 10 MB without reading and
/// a resetter drops its connection mid-stream (as `reactor_echo` must).
fn async_echo_survives_hostile_clients(backend: Backend) {
    const NAME: &str = "async_echo";
    let name = backend.name();
    let mut server = Proc::spawn_env(
        child::example(NAME),
        &["127.0.0.1:0"],
        &[("TRIPOLL_BACKEND", name)],
    );
    let banner = server.line();
    // The async layer registers edge-triggered where the backend can.
    let poller = tripoll::AnyPoller::new(backend).expect("poller");
    let mode = if tripoll::Poller::supports(&poller, tripoll::Mode::Edge) {
        "edge"
    } else {
        "oneshot"
    };
    assert!(
        banner.ends_with(&format!("(backend {name}, mode {mode})")),
        "{banner}"
    );
    let addr = listen_addrs(NAME, &banner)[0];

    common::hostile::echo_survives_hostile_clients(addr);

    let stderr = server.stop();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(
        lines[0].starts_with("async_echo: connection from 127.0.0.1:")
            && (lines[0].contains("reset") || lines[0].contains("Broken pipe")),
        "{stderr}"
    );
}

macro_rules! task_suite {
    ($name:ident, $backend:expr, $poller:ty) => {
        mod $name {
            use super::*;

            #[test]
            fn many_waiters_all_wake() {
                let _fds = common::fds_shared();
                super::many_waiters_all_wake($backend)
            }
            #[test]
            fn readers_and_writers_on_one_socket() {
                let _fds = common::fds_shared();
                super::readers_and_writers_on_one_socket($backend)
            }
            #[test]
            fn dropped_waiter_leaves_no_registration() {
                let _fds = common::fds_exclusive(); // checks descriptor numbers
                super::dropped_waiter_leaves_no_registration($backend)
            }
            #[test]
            fn dropping_the_executor_drops_tasks_that_hold_its_spawner() {
                let _fds = common::fds_exclusive(); // checks a descriptor number
                super::dropping_the_executor_drops_tasks_that_hold_its_spawner($backend)
            }
            #[test]
            fn into_inner_unregisters() {
                let _fds = common::fds_shared();
                super::into_inner_unregisters($backend)
            }
            #[test]
            fn outside_a_task_is_an_error() {
                let _fds = common::fds_shared();
                super::outside_a_task_is_an_error($backend)
            }
            #[test]
            fn a_failed_new_leaves_the_flags() {
                let _fds = common::fds_exclusive(); // closes a registered number
                super::a_failed_new_leaves_the_flags($backend)
            }
            #[test]
            fn timers_are_never_early() {
                let _fds = common::fds_shared();
                super::timers_are_never_early($backend)
            }
            #[test]
            fn woken_from_another_thread() {
                let _fds = common::fds_shared();
                super::woken_from_another_thread($backend)
            }
            #[test]
            fn stop_ends_run_and_keeps_tasks() {
                let _fds = common::fds_shared();
                super::stop_ends_run_and_keeps_tasks($backend)
            }
            #[test]
            fn a_panicking_task_is_dropped_alone() {
                let _fds = common::fds_shared();
                super::a_panicking_task_is_dropped_alone($backend)
            }
            #[test]
            fn tcp_echo_and_refused_connect() {
                let _fds = common::fds_shared();
                super::tcp_echo_and_refused_connect($backend)
            }
            #[test]
            fn holds_10k_connections() {
                super::holds_10k($backend)
            }
            #[test]
            fn async_echo_survives_hostile_clients() {
                let _fds = common::fds_shared();
                super::async_echo_survives_hostile_clients($backend)
            }
            #[test]
            fn end_of_stream_after_a_short_read() {
                let _fds = common::fds_shared();
                super::end_of_stream_after_a_short_read($backend)
            }
            #[test]
            fn unix_listener_and_connect() {
                let _fds = common::fds_shared();
                super::unix_listener_and_connect($backend)
            }
        }
    };
}

common::for_each_backend!(task_suite);

/// `Async<T>` shows its descriptor (`AsFd`, `AsRawFd`) and takes an owned
/// one (`TryFrom<OwnedFd>`), which it registers like `Async::new`; outside
/// a task the conversion fails, and the descriptor is closed, not leaked.
#[test]
fn async_shows_and_takes_descriptors() {
    use std::os::fd::{AsFd, OwnedFd};
    let _fds = common::fds_exclusive(); // checks that a descriptor closed
    let mut reactor = Reactor::new().expect("reactor");
    let (a, mut b) = UnixStream::pair().unwrap();
    let raw = a.as_raw_fd();
    let owned: OwnedFd = a.into();
    b.write_all(b"fd").unwrap();
    let got = tripoll::task::block_on(&mut reactor, async move {
        let a = Async::<UnixStream>::try_from(owned)?;
        assert_eq!(a.as_raw_fd(), raw);
        assert_eq!(a.as_fd().as_raw_fd(), raw);
        assert_eq!(a.get_ref().as_raw_fd(), raw);
        let mut buf = [0; 2];
        a.read_exact(&mut buf).await?;
        Ok::<_, io::Error>(buf)
    })
    .expect("block_on")
    .expect("read through the converted descriptor");
    assert_eq!(&got, b"fd");

    // No task: an error, and the descriptor is gone with the object.
    let (c, _d) = UnixStream::pair().unwrap();
    let raw = c.as_raw_fd();
    let err = Async::<UnixStream>::try_from(OwnedFd::from(c)).expect_err("no reactor");
    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
    // SAFETY: fcntl(F_GETFD) only reads the flags of a number that may be closed.
    let rc = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    assert_eq!(
        rc, -1,
        "descriptor {raw} still open after a failed conversion"
    );
}
