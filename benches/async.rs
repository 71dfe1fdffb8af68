//! What the async layer (`tripoll::task`) costs on top of the callback
//! reactor and the raw poller.
//!
//! - `async_pingpong`: one event per iteration. The bench writes a byte
//!   into one end of a socket pair; the server side reads it and writes it
//!   back; the bench reads the echo. Raw poller (wait, iterate, read,
//!   write), callback reactor (`run_once`, the handler reads and writes)
//!   and async (a future that awaits `read` then `write_all`, driven by
//!   `block_on`), on epoll (async: edge-triggered) and poll (async:
//!   oneshot, re-armed per wait). The same system calls in every row, so
//!   the differences are dispatch and wake-up costs per event.
//! - `async_echo_64k`: 64 KiB per iteration through the same echo, read in
//!   16 KiB chunks, each side draining until `WouldBlock` on each
//!   readiness report; on epoll.
//!
//! Timed with the benchmark thread's CPU time (see `common::Clock`); no
//! timed wait ever blocks, the data is always there first.

mod common;

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tripoll::reactor::Reactor;
use tripoll::task::{block_on, Async};
use tripoll::{Epoll, Events, Interest, Mode, Poll, Poller, Token};

use common::{Clock, Group};

const BULK: usize = 64 * 1024;
const CHUNK: usize = 16 * 1024;

fn pair() -> (OwnedFd, OwnedFd) {
    common::socket_pair().expect("socketpair")
}

/// Reads from `stream` until it would block, writing each chunk back;
/// returns the bytes echoed.
fn drain_echo(stream: &UnixStream, buf: &mut [u8]) -> usize {
    let mut echoed = 0;
    loop {
        match (&*stream).read(buf) {
            Ok(0) => return echoed,
            Ok(n) => {
                (&*stream).write_all(&buf[..n]).expect("echo write");
                echoed += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return echoed,
            Err(e) => panic!("echo read: {e}"),
        }
    }
}

fn raw_pingpong<P: Poller>(group: &mut Group<'_>, name: &str, poller: P) {
    let (a, b) = pair();
    let a = UnixStream::from(a);
    poller
        .register(a.as_raw_fd(), Token(0), Interest::READABLE, Mode::Level)
        .expect("register");
    let mut events = Events::with_capacity(common::EVENTS);
    let mut buf = [0u8; 64];
    group.bench_function(name, |bench| {
        bench.iter(|| {
            common::write_byte(b.as_raw_fd());
            poller.wait(&mut events, None).expect("wait");
            for ev in &events {
                assert_eq!(ev.token(), Token(0));
                let n = (&a).read(&mut buf).expect("read");
                (&a).write_all(&buf[..n]).expect("write");
            }
            common::read_byte(b.as_raw_fd());
        })
    });
    poller.unregister(a.as_raw_fd()).expect("unregister");
}

fn reactor_pingpong<P: Poller + 'static>(group: &mut Group<'_>, name: &str, poller: P) {
    let (a, b) = pair();
    let mut reactor = Reactor::with_poller_and_capacity(poller, common::EVENTS);
    let mut buf = [0u8; 64];
    reactor
        .register_owned(
            UnixStream::from(a),
            Interest::READABLE,
            Mode::Level,
            move |_, a, _| {
                let n = (&*a).read(&mut buf)?;
                (&*a).write_all(&buf[..n])
            },
        )
        .expect("register");
    group.bench_function(name, |bench| {
        bench.iter(|| {
            common::write_byte(b.as_raw_fd());
            let ran = reactor.run_once(None).expect("run_once");
            assert_eq!(ran, 1, "one callback per event");
            common::read_byte(b.as_raw_fd());
        })
    });
}

fn async_pingpong<P: Poller + 'static>(group: &mut Group<'_>, name: &str, poller: P) {
    let (a, b) = pair();
    let mut reactor = Reactor::with_poller_and_capacity(poller, common::EVENTS);
    let clock = Clock::from_env();
    let a = block_on(&mut reactor, async { Async::new(UnixStream::from(a)) })
        .expect("loop")
        .expect("register");
    let a = &a;
    group.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            block_on(&mut reactor, async {
                let mut buf = [0u8; 64];
                let start = clock.start();
                for _ in 0..iters {
                    common::write_byte(b.as_raw_fd());
                    let n = a.read(&mut buf).await.expect("read");
                    a.write_all(&buf[..n]).await.expect("write");
                    common::read_byte(b.as_raw_fd());
                }
                clock.end(start)
            })
            .expect("loop")
        })
    });
}

fn pingpong(c: &mut Criterion<Clock>) {
    let mut group = c.benchmark_group("async_pingpong");
    raw_pingpong(&mut group, "epoll raw", Epoll::new().expect("epoll"));
    reactor_pingpong(&mut group, "epoll reactor", Epoll::new().expect("epoll"));
    async_pingpong(&mut group, "epoll async", Epoll::new().expect("epoll"));
    raw_pingpong(&mut group, "poll raw", Poll::new().expect("poll"));
    reactor_pingpong(&mut group, "poll reactor", Poll::new().expect("poll"));
    async_pingpong(&mut group, "poll async", Poll::new().expect("poll"));
    group.finish();
}

/// Writes `BULK` bytes into `b` (the client end), as one write.
fn send_bulk(b: &UnixStream, data: &[u8]) {
    assert_eq!((&*b).write(data).expect("bulk write"), data.len());
}

/// Reads the `BULK` echoed bytes back from `b`.
fn recv_bulk(b: &UnixStream, back: &mut [u8]) {
    let mut got = 0;
    while got < back.len() {
        got += (&*b).read(&mut back[got..]).expect("bulk read");
    }
}

fn echo_bulk(c: &mut Criterion<Clock>) {
    let mut group = c.benchmark_group("async_echo_64k");
    group.throughput(Throughput::Bytes(BULK as u64));
    let data = vec![7u8; BULK];
    let mut back = vec![0u8; BULK];

    {
        let (a, b) = pair();
        let (a, b) = (UnixStream::from(a), UnixStream::from(b));
        let poller = Epoll::new().expect("epoll");
        poller
            .register(a.as_raw_fd(), Token(0), Interest::READABLE, Mode::Level)
            .expect("register");
        let mut events = Events::with_capacity(common::EVENTS);
        let mut buf = vec![0u8; CHUNK];
        group.bench_function("epoll raw", |bench| {
            bench.iter(|| {
                send_bulk(&b, &data);
                let mut echoed = 0;
                while echoed < BULK {
                    poller.wait(&mut events, None).expect("wait");
                    echoed += drain_echo(&a, &mut buf);
                }
                recv_bulk(&b, &mut back);
            })
        });
    }
    {
        let (a, b) = pair();
        let b = UnixStream::from(b);
        let mut reactor = Reactor::with_poller(Epoll::new().expect("epoll"));
        let echoed = std::rc::Rc::new(std::cell::Cell::new(0));
        let count = std::rc::Rc::clone(&echoed);
        let mut buf = vec![0u8; CHUNK];
        reactor
            .register_owned(
                UnixStream::from(a),
                Interest::READABLE,
                Mode::Level,
                move |_, a, _| {
                    count.set(count.get() + drain_echo(a, &mut buf));
                    Ok(())
                },
            )
            .expect("register");
        group.bench_function("epoll reactor", |bench| {
            bench.iter(|| {
                send_bulk(&b, &data);
                echoed.set(0);
                while echoed.get() < BULK {
                    reactor.run_once(None).expect("run_once");
                }
                recv_bulk(&b, &mut back);
            })
        });
    }
    {
        let (a, b) = pair();
        let b = UnixStream::from(b);
        let mut reactor = Reactor::with_poller(Epoll::new().expect("epoll"));
        let clock = Clock::from_env();
        let a = block_on(&mut reactor, async { Async::new(UnixStream::from(a)) })
            .expect("loop")
            .expect("register");
        let a = &a;
        let mut buf = vec![0u8; CHUNK];
        group.bench_function("epoll async", |bench| {
            bench.iter_custom(|iters| {
                block_on(&mut reactor, async {
                    let start = clock.start();
                    for _ in 0..iters {
                        send_bulk(&b, &data);
                        let mut echoed = 0;
                        while echoed < BULK {
                            let n = a.read(&mut buf).await.expect("read");
                            a.write_all(&buf[..n]).await.expect("write");
                            echoed += n;
                        }
                        recv_bulk(&b, &mut back);
                    }
                    clock.end(start)
                })
                .expect("loop")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config().without_plots();
    targets = pingpong, echo_bulk
}
criterion_main!(benches);
