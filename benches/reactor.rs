//! What the reactor costs on top of the raw poller, and what its timers
//! cost.
//!
//! - `reactor_dispatch`: one event per iteration (write a byte, turn the
//!   loop, read the byte in the callback), through the raw poller (wait,
//!   iterate `Events`, read) and through `Reactor::run_once` (wait, look up
//!   the slab slot, call the boxed handler), on epoll and poll. The
//!   difference between a backend's two rows is the reactor's dispatch cost
//!   per event.
//! - `reactor_timers`: set 100 000 timers at scattered deadlines and cancel
//!   them all, one iteration each.
//! - `reactor_timer_wake` (wall clock): set a 500 µs timer and turn the
//!   loop until it fires; the median minus 500 µs is how late the loop
//!   wakes after a deadline.

mod common;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tripoll::reactor::{Reactor, TimerId};
use tripoll::{Epoll, Events, Interest, Mode, Poll, Poller, Token};

use common::{Clock, Group};

/// Timers set and cancelled per iteration of `reactor_timers`.
const TIMERS: usize = 100_000;

fn pair() -> (OwnedFd, OwnedFd) {
    common::socket_pair().expect("socketpair")
}

fn raw_row<P: Poller>(group: &mut Group<'_>, name: &str, poller: P) {
    let (a, b) = pair();
    poller
        .register(a.as_raw_fd(), Token(0), Interest::READABLE, Mode::Level)
        .expect("register");
    let mut events = Events::with_capacity(common::EVENTS);
    group.bench_function(name, |bench| {
        bench.iter(|| {
            common::write_byte(b.as_raw_fd());
            poller.wait(&mut events, None).expect("wait");
            for ev in &events {
                assert_eq!(ev.token(), Token(0));
                common::read_byte(a.as_raw_fd());
            }
        })
    });
}

fn reactor_row<P: Poller + 'static>(group: &mut Group<'_>, name: &str, poller: P) {
    let (a, b) = pair();
    let mut reactor = Reactor::with_poller_and_capacity(poller, common::EVENTS);
    let fd = a.as_raw_fd();
    reactor
        .register(fd, Interest::READABLE, Mode::Level, move |_, _| {
            common::read_byte(fd);
            Ok(())
        })
        .expect("register");
    group.bench_function(name, |bench| {
        bench.iter(|| {
            common::write_byte(b.as_raw_fd());
            let ran = reactor.run_once(None).expect("run_once");
            assert_eq!(ran, 1, "one callback per event");
        })
    });
    drop(reactor);
    drop(a);
}

fn dispatch(c: &mut Criterion<Clock>) {
    let mut group = c.benchmark_group("reactor_dispatch");
    raw_row(&mut group, "epoll raw", Epoll::new().expect("epoll"));
    reactor_row(&mut group, "epoll reactor", Epoll::new().expect("epoll"));
    raw_row(&mut group, "poll raw", Poll::new().expect("poll"));
    reactor_row(&mut group, "poll reactor", Poll::new().expect("poll"));
    group.finish();
}

fn timers(c: &mut Criterion<Clock>) {
    let mut group = c.benchmark_group("reactor_timers");
    group.sample_size(10);
    let mut reactor = Reactor::with_poller(Epoll::new().expect("epoll"));
    let mut ids: Vec<TimerId> = Vec::with_capacity(TIMERS);
    group.bench_function("set+cancel 100k", |bench| {
        bench.iter(|| {
            for i in 0..TIMERS {
                // Scattered deadlines between 1 s and 101 s from now.
                let delay = Duration::from_secs(1)
                    + Duration::from_micros((i * 7919 % TIMERS) as u64 * 1000);
                ids.push(reactor.set_timer(delay, |_, _| Ok(())).expect("set_timer"));
            }
            for id in ids.drain(..) {
                assert!(reactor.cancel_timer(id), "a pending timer cancels");
            }
        })
    });
    group.finish();
    assert_eq!(reactor.timer_count(), 0, "every timer was cancelled");
}

fn timer_wake(c: &mut Criterion) {
    let mut group = c.benchmark_group("reactor_timer_wake");
    group.sample_size(30);
    let delay = Duration::from_micros(500);
    for (name, poller) in [
        (
            "epoll 500us",
            tripoll::AnyPoller::Epoll(Epoll::new().expect("epoll")),
        ),
        (
            "poll 500us",
            tripoll::AnyPoller::Poll(Poll::new().expect("poll")),
        ),
    ] {
        let mut reactor = Reactor::with_poller(poller);
        group.bench_function(name, |bench| {
            bench.iter_batched(
                || (),
                |()| {
                    let fired = Rc::new(Cell::new(false));
                    let flag = Rc::clone(&fired);
                    reactor
                        .set_timer(delay, move |_, _| -> io::Result<()> {
                            flag.set(true);
                            Ok(())
                        })
                        .expect("set_timer");
                    while !fired.get() {
                        reactor.run_once(None).expect("run_once");
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = cpu;
    config = common::config().without_plots();
    targets = dispatch, timers
}
criterion_group! {
    name = wall;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = timer_wake
}
criterion_main!(cpu, wall);
