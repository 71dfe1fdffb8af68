//! The task layer lends the reactor's `&mut Context` to the futures it polls
//! through a thread-local (`src/task/mod.rs`, `with_context`): the one
//! `unsafe` of the crate that is no FFI and lives outside `src/sys/`. These
//! tests drive every path that takes the lend (registering, reading and
//! writing, waiting, timers, spawning from a task, a nested executor call,
//! a panic inside a lent call, dropping an `Async` inside and outside a
//! task) using only what Miri can emulate (epoll, eventfd, pipes: Miri's
//! socket pairs take no `recv`, which std's socket reads use), so that CI
//! can run them under Miri's aliasing checks:
//!
//! ```text
//! MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test -p tripoll --test task_lend
//! ```
//!
//! They run as ordinary tests too.

// `std::io::pipe` is newer (1.87) than the library's minimum (1.70), which
// binds `src/` only: the tests build with the current toolchain.
#![allow(clippy::incompatible_msrv)]

use std::cell::Cell;
use std::io;
use std::io::{pipe, PipeReader, PipeWriter, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use tripoll::reactor::Reactor;
use tripoll::task::{block_on, sleep, Async, Executor};
use tripoll::Epoll;

/// A pipe's two ends, registered with the reactor of the running task.
fn async_pipe() -> io::Result<(Async<PipeReader>, Async<PipeWriter>)> {
    let (r, w) = pipe()?;
    Ok((Async::new(r)?, Async::new(w)?))
}

/// Reads exactly `buf.len()` bytes, waiting as needed (pipes have no
/// `Async::read_exact`: it needs both directions).
async fn read_exact(r: &Async<PipeReader>, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        let n = r.read_with(|p| (&*p).read(&mut buf[at..])).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        at += n;
    }
    Ok(())
}

/// Writes all of `buf`, waiting as needed.
async fn write_all(w: &Async<PipeWriter>, buf: &[u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        at += w.write_with(|p| (&*p).write(&buf[at..])).await?;
    }
    Ok(())
}

fn reactor() -> Reactor<Epoll> {
    Reactor::with_poller(Epoll::new().expect("epoll"))
}

/// Two tasks talk through a pipe: registration, a read that waits
/// for the other task's write, and both `Async`s dropped inside tasks.
#[test]
fn tasks_talk_through_a_pipe() {
    let mut reactor = reactor();
    let ex = Executor::new();
    let (b, a) = pipe().unwrap();
    let got = Rc::new(Cell::new([0u8; 4]));
    let seen = Rc::clone(&got);
    ex.spawn(async move {
        let b = Async::new(b).unwrap();
        let mut buf = [0; 4];
        read_exact(&b, &mut buf).await.unwrap();
        seen.set(buf);
    });
    ex.spawn(async move {
        let a = Async::new(a).unwrap();
        write_all(&a, b"lend").await.unwrap();
    });
    ex.run(&mut reactor).unwrap();
    assert_eq!(&got.get(), b"lend");
    assert!(ex.is_empty());
}

/// A task sleeps (a timer set through the lend), spawns another from inside
/// (the spawner while the context is lent), and the nested one sleeps too.
#[test]
fn timers_and_spawns_from_inside_a_task() {
    let mut reactor = reactor();
    let ex = Executor::new();
    let spawner = ex.spawner();
    let order = Rc::new(Cell::new(0u32));
    let o = Rc::clone(&order);
    ex.spawn(async move {
        sleep(Duration::from_millis(1)).await.unwrap();
        o.set(o.get() * 10 + 1);
        let o2 = Rc::clone(&o);
        spawner
            .spawn(async move {
                sleep(Duration::from_millis(1)).await.unwrap();
                o2.set(o2.get() * 10 + 2);
            })
            .await
            .unwrap();
    });
    ex.run(&mut reactor).unwrap();
    assert_eq!(order.get(), 12);
}

/// An `Async` made in one `block_on` and dropped outside any task: the
/// unregistration is posted back to the reactor and done at its next turn.
#[test]
fn an_async_dropped_outside_a_task() {
    let mut reactor = reactor();
    let (a, b) = pipe().unwrap();
    let a = block_on(&mut reactor, async move { Async::new(a) })
        .unwrap()
        .unwrap();
    drop(a); // no context lent here
    reactor.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(reactor.source_count(), 0);
    drop(b);
}

/// A task that panics while it holds the lend: the executor drops it, puts
/// the context back, and the next task uses the lend again.
#[test]
fn a_panic_inside_the_lend_gives_it_back() {
    let mut reactor = reactor();
    let ex = Executor::new();
    ex.spawn(async {
        let (a, _b) = pipe().unwrap();
        let _a = Async::new(a).unwrap();
        panic!("a task that panics with a registered source");
    });
    let ok = ex
        .block_on(&mut reactor, async {
            let (b, a) = async_pipe()?;
            write_all(&a, b"x").await?;
            let mut buf = [0; 1];
            read_exact(&b, &mut buf).await?;
            Ok::<_, io::Error>(buf)
        })
        .unwrap()
        .unwrap();
    assert_eq!(&ok, b"x");
}

/// A second reactor driven from inside a task of the first: its own
/// context is lent in turn, and the first one's is put back after.
#[test]
fn another_reactor_driven_from_inside_a_task() {
    let mut reactor = reactor();
    let mut inner = self::reactor();
    let value = block_on(&mut reactor, async move {
        block_on(&mut inner, async {
            let (b, a) = async_pipe()?;
            write_all(&a, b"!").await?;
            let mut buf = [0; 1];
            read_exact(&b, &mut buf).await?;
            Ok::<_, io::Error>(buf[0])
        })
    })
    .unwrap();
    assert_eq!(value.unwrap().unwrap(), b'!');
}
