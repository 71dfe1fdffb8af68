//! Async/await on a [`Reactor`] you own: no runtime, no hidden thread,
//! std only.
//!
//! - [`Async`] wraps a non-blocking I/O object registered with the
//!   reactor: [`readable`](Async::readable), [`writable`](Async::writable),
//!   and [`read`](Async::read), [`write`](Async::write),
//!   [`accept`](Async::<std::net::TcpListener>::accept) and
//!   [`connect`](Async::<std::net::TcpStream>::connect) for TCP and Unix
//!   streams.
//! - [`sleep`], [`sleep_until`] and [`timeout`] use the reactor's timers.
//! - The [typed sources](crate::source) are awaited through `Async` too:
//!   [`recv`](Async::<crate::source::Signals>::recv) a signal,
//!   [`tick`](Async::<crate::source::Timer>::tick) a kernel timer,
//!   [`exit`](Async::<crate::source::ChildExit>::exit) of a child,
//!   [`woken`](Async::<crate::source::Wake>::woken) by another thread.
//! - [`block_on`] runs one future; an [`Executor`] also runs tasks
//!   [`spawn`](Executor::spawn)ed on it (local: they need not be `Send`),
//!   until they are all done or the loop is stopped.
//!
//! ```
//! use std::net::{TcpListener, TcpStream};
//! use tripoll::reactor::Reactor;
//! use tripoll::task::{self, Async, Executor};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut reactor = Reactor::new()?; // epoll unless TRIPOLL_BACKEND says otherwise
//! let ex = Executor::new();
//! let spawner = ex.spawner();
//! let echoed = ex.block_on(&mut reactor, async move {
//!     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
//!     let addr = listener.get_ref().local_addr()?;
//!     spawner.spawn(async move {
//!         // The server: one connection, echoed until the client closes.
//!         let (conn, _) = listener.accept().await?;
//!         let mut buf = [0; 1024];
//!         loop {
//!             let n = conn.read(&mut buf).await?;
//!             if n == 0 {
//!                 return Ok::<(), std::io::Error>(());
//!             }
//!             conn.write_all(&buf[..n]).await?;
//!         }
//!     });
//!     let client = Async::<TcpStream>::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut reply = [0; 5];
//!     client.read_exact(&mut reply).await?;
//!     Ok::<_, std::io::Error>(reply)
//! })??;
//! assert_eq!(&echoed, b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! # How it sits on the reactor
//!
//! Each [`Async`] is one reactor source whose handler does nothing but
//! record readiness and wake tasks; the executor polls the woken tasks
//! between turns of the loop ([`Reactor::run_once`]). While it polls, the
//! executor lends the reactor's [`Context`] to
//! the futures (through a thread-local set for exactly that span), which
//! is how `Async::new` registers, a dropped `Async` unregisters and a
//! [`sleep`] sets its timer, without a global reactor. So these calls work
//! inside a task of an executor driving that reactor; elsewhere they return
//! an error (`Async::new`, `into_inner`, a wait that needs re-arming), or,
//! for a drop, hand the object to the loop, which unregisters it, then
//! closes it, at its next turn.
//!
//! # Readiness: one tick and a list of wakers per direction
//!
//! Each direction (read, write) of an `Async` keeps a *ready* flag, a
//! *tick* counter and a list of wakers. An event sets the flag, advances
//! the tick and wakes **every** waiter (several tasks may wait on one
//! socket: a single waker slot would lose all but the last). An operation
//! that returns `WouldBlock` clears the flag, but only if the tick has not
//! moved since the operation started, so an event that arrived meanwhile
//! is not forgotten. A waiter completes once the tick has moved since it
//! started waiting, whatever another task did with the flag since: no
//! waiter misses a wake-up, and a duplicate or spurious event costs one
//! retried operation that returns `WouldBlock`.
//!
//! A `read` or `write` that moves fewer bytes than asked also clears the
//! flag: on a stream socket that means the kernel buffer was emptied (or
//! filled), so the next call waits instead of making a system call that is
//! bound to return `WouldBlock`. That keeps an echo or ping-pong exchange at
//! the callback reactor's system calls.
//!
//! # Trigger mode
//!
//! Where the poller [`supports`](crate::Poller::supports)
//! [`Mode::Edge`](crate::Mode::Edge) (epoll), an `Async` is registered once,
//! edge-triggered, for both directions, and never modified: waiting costs
//! no system call, and the ready flag stands in for the level the edge
//! does not repeat. Elsewhere (poll, select) it is registered
//! [`Mode::Oneshot`](crate::Mode::Oneshot) (emulated by those backends) and
//! re-armed, for the directions somebody waits on, when a task starts
//! waiting and after each event: level-triggered with both directions
//! would report a writable socket on every turn, and managing the level
//! interest by hand costs the same updates. Either way the tick counter
//! makes lost and duplicate events harmless.
//!
//! # Fairness
//!
//! A task whose operations keep succeeding (a peer that sends faster than
//! it reads) yields to the loop after 128 operations in one poll, so it
//! cannot starve the other tasks, the timers or the reactor.
//!
//! [`Reactor`]: crate::reactor::Reactor
//! [`Reactor::run_once`]: crate::reactor::Reactor::run_once

mod exec;
mod io;
mod sources;
mod time;

pub use exec::{block_on, Executor, JoinHandle, Spawner};
pub use io::{Async, Ready};
pub use time::{sleep, sleep_until, timeout, Sleep};

use std::cell::Cell;
use std::io as stdio;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::reactor::Context;

/// The context lent to the futures being polled on this thread.
#[derive(Clone, Copy)]
struct Current {
    ctx: NonNull<Context>,
    reactor: usize,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
    /// Operations a task may still complete in this poll before yielding.
    static BUDGET: Cell<u32> = const { Cell::new(BUDGET_PER_POLL) };
}

/// See the [module docs](self#fairness).
const BUDGET_PER_POLL: u32 = 128;

/// Which reactor a context belongs to: the address of what it shares
/// with its handles, stable for the reactor's life.
fn reactor_id(ctx: &Context) -> usize {
    Arc::as_ptr(&ctx.shared) as *const () as usize
}

/// Puts the previous value back into [`CURRENT`], even on unwinding.
struct Restore(Option<Current>);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.0));
    }
}

/// Runs `f` with `ctx` lent to the futures it polls.
fn enter<R>(ctx: &mut Context, f: impl FnOnce() -> R) -> R {
    let current = Current {
        reactor: reactor_id(ctx),
        ctx: NonNull::from(ctx),
    };
    let previous = CURRENT.with(|c| c.replace(Some(current)));
    let _restore = Restore(previous);
    f()
}

/// Calls `f` with the context lent by [`enter`] on this thread, if any and
/// if it belongs to `reactor` (any reactor if `None`).
fn with_context<R>(reactor: Option<usize>, f: impl FnOnce(&mut Context) -> R) -> Option<R> {
    let current = CURRENT.try_with(|c| c.get()).ok().flatten()?;
    if reactor.is_some_and(|id| id != current.reactor) {
        return None;
    }
    // Out of the cell while `f` runs: a nested call (a destructor run by
    // `f`) finds no context instead of a second `&mut`.
    CURRENT.with(|c| c.set(None));
    let _restore = Restore(Some(current));
    // An `unsafe` outside `sys`, kept until measured: it is no FFI, but a
    // lend of the `&mut Context` the executor holds while it polls. The
    // safe design (the reactor keeps its context in an `Rc<RefCell<_>>`,
    // the thread-local holds a clone) puts the context behind a pointer on
    // every dispatch and adds a borrow check per turn and per task
    // operation; it replaces this only if `benches/async.rs` shows no cost.
    // SAFETY: the pointer comes from the `&mut Context` that `enter` holds
    // for as long as it is in `CURRENT` (`enter` restores the previous
    // value before returning or unwinding), and `enter`'s caller cannot
    // touch the context meanwhile: it is mutably borrowed. Taking it out of
    // the cell above makes this the only `&mut` derived from it until
    // `_restore` puts it back, after `f` and its borrow are gone.
    let ctx = unsafe { &mut *current.ctx.as_ptr() };
    Some(f(ctx))
}

/// Takes one unit of the running task's budget; `false` when it is spent
/// (the task should yield).
fn spend_budget() -> bool {
    BUDGET
        .try_with(|b| {
            let left = b.get();
            b.set(left.saturating_sub(1));
            left > 0
        })
        .unwrap_or(true)
}

/// Gives the next task polled a full budget.
fn refill_budget() {
    let _ = BUDGET.try_with(|b| b.set(BUDGET_PER_POLL));
}

/// The error of a call that needs the reactor outside a task driven by it.
fn no_reactor() -> stdio::Error {
    stdio::Error::new(
        stdio::ErrorKind::Other,
        "tripoll::task: not inside a task of an executor driving this object's reactor",
    )
}
