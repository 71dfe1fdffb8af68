//! [`Async`]: an I/O object registered with the reactor, its readiness per
//! direction, and the futures that wait on it.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{self as unix, UnixListener, UnixStream};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use super::{no_reactor, reactor_id, refill_budget, spend_budget, with_context};
use crate::reactor::{Context, Handle};
use crate::{sys, Event, Interest, Mode, Token};

/// One direction's readiness; see the [module docs](super#readiness-one-tick-and-a-list-of-wakers-per-direction).
struct Direction {
    ready: Cell<bool>,
    /// The peer will send nothing more (read direction only): reading
    /// returns what is left, then 0, so a read that empties the buffer does
    /// not mean the next one would block, and no event will come to say
    /// otherwise in edge mode.
    closed: Cell<bool>,
    tick: Cell<u64>,
    wakers: RefCell<Vec<Option<Waker>>>,
    /// Empty places in `wakers`, left by waiters that went away.
    free: RefCell<Vec<usize>>,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            // Optimistic: the first operation is tried, and tells.
            ready: Cell::new(true),
            closed: Cell::new(false),
            tick: Cell::new(0),
            wakers: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }

    /// An event: ready, one tick on, every waiter woken.
    fn fire(&self) {
        self.ready.set(true);
        self.tick.set(self.tick.get().wrapping_add(1));
        let single = {
            let mut wakers = self.wakers.borrow_mut();
            match wakers.len() {
                0 => return,
                1 => wakers.pop(),
                _ => None,
            }
        };
        if let Some(waiter) = single {
            // The usual case, one waiter: no list to move out and back.
            self.free.borrow_mut().clear();
            if let Some(waker) = waiter {
                waker.wake();
            }
            return;
        }
        let mut list = std::mem::take(&mut *self.wakers.borrow_mut());
        self.free.borrow_mut().clear();
        for waker in list.drain(..).flatten() {
            waker.wake();
        }
        let mut wakers = self.wakers.borrow_mut();
        if wakers.is_empty() {
            *wakers = list; // keeps the capacity
        }
    }

    /// An operation that started at `tick` would block: not ready, unless
    /// an event came since.
    fn clear(&self, tick: u64) {
        if self.tick.get() == tick {
            self.ready.set(false);
        }
    }

    /// An operation that started at `tick` emptied the buffer (a short
    /// read): as `clear`, unless the peer has closed, when the next read
    /// returns the end of the stream at once.
    fn drained(&self, tick: u64) {
        if !self.closed.get() {
            self.clear(tick);
        }
    }

    fn has_waiters(&self) -> bool {
        self.wakers.borrow().len() > self.free.borrow().len()
    }

    fn insert(&self, waker: Waker) -> usize {
        let mut wakers = self.wakers.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(key) => {
                wakers[key] = Some(waker);
                key
            }
            None => {
                wakers.push(Some(waker));
                wakers.len() - 1
            }
        }
    }

    fn update(&self, key: usize, waker: &Waker) {
        if let Some(slot) = self.wakers.borrow_mut().get_mut(key) {
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
    }

    fn remove(&self, key: usize) {
        let taken = self.wakers.borrow_mut().get_mut(key).and_then(Option::take);
        if taken.is_some() {
            self.free.borrow_mut().push(key);
        }
    }
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

impl Dir {
    fn interest(self) -> Interest {
        match self {
            Dir::Read => Interest::READABLE,
            Dir::Write => Interest::WRITABLE,
        }
    }
}

/// What an [`Async`] shares with its handler in the reactor.
struct Source {
    fd: RawFd,
    token: Cell<Token>,
    /// Registered `Mode::Oneshot` (re-armed by hand) rather than edge.
    oneshot: bool,
    /// Oneshot: the directions armed now (none after an event).
    armed: Cell<Interest>,
    read: Direction,
    write: Direction,
    reactor: usize,
    handle: Handle,
    /// The I/O object of an `Async` dropped outside the loop: the
    /// reactor drops it with the handler, after unregistering.
    parked: RefCell<Option<Box<dyn Any>>>,
}

impl Source {
    fn dir(&self, dir: Dir) -> &Direction {
        match dir {
            Dir::Read => &self.read,
            Dir::Write => &self.write,
        }
    }

    /// The handler's work.
    fn on_event(&self, ctx: &mut Context, ev: Event) {
        if self.oneshot {
            self.armed.set(Interest::empty());
        }
        let failed = ev.is_error() || ev.is_hangup();
        if ev.is_read_closed() || ev.is_hangup() {
            self.read.closed.set(true);
        }
        if ev.is_readable() || ev.is_read_closed() || failed {
            self.read.fire();
        }
        if ev.is_writable() || failed {
            self.write.fire();
        }
        if self.oneshot {
            let mut want = Interest::empty();
            for dir in [Dir::Read, Dir::Write] {
                if self.dir(dir).has_waiters() {
                    want |= dir.interest();
                }
            }
            if !want.is_empty() && ctx.modify(self.token.get(), want, Mode::Oneshot).is_ok() {
                self.armed.set(want);
            } else if !want.is_empty() {
                // The waiters retry, and meet the error when they re-arm.
                self.read.fire();
                self.write.fire();
            }
        }
    }

    /// Makes sure an event will come for `dir` (oneshot: re-arms it).
    fn arm(&self, dir: Dir) -> io::Result<()> {
        let armed = self.armed.get();
        if !self.oneshot || armed.contains(dir.interest()) {
            return Ok(());
        }
        let want = armed | dir.interest();
        let token = self.token.get();
        with_context(Some(self.reactor), |ctx| {
            ctx.modify(token, want, Mode::Oneshot)
        })
        .ok_or_else(no_reactor)??;
        self.armed.set(want);
        Ok(())
    }

    /// Polls a waiter on `dir`; `reg` is its place in the waker list and
    /// the tick it started at.
    fn poll_ready(
        &self,
        dir: Dir,
        reg: &mut Option<(usize, u64)>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<io::Result<()>> {
        let d = self.dir(dir);
        match *reg {
            None if d.ready.get() => Poll::Ready(Ok(())),
            None => {
                let key = d.insert(cx.waker().clone());
                *reg = Some((key, d.tick.get()));
                if let Err(e) = self.arm(dir) {
                    d.remove(key);
                    *reg = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            Some((_, start)) if d.tick.get() != start => {
                *reg = None; // the list was emptied by the event
                Poll::Ready(Ok(()))
            }
            Some((key, _)) => {
                d.update(key, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Unregisters, then drops `io`: now if the reactor is lent to this
    /// thread, else at the loop's next turn.
    fn release(&self, io: Box<dyn Any>) {
        let token = self.token.get();
        let done = with_context(Some(self.reactor), |ctx| {
            // `UnknownToken`: already gone (the reactor removed it).
            let _ = ctx.unregister(token);
        });
        if done.is_some() {
            drop(io);
            return;
        }
        *self.parked.borrow_mut() = Some(io);
        let posted = self.handle.post(move |ctx| {
            let _ = ctx.unregister(token);
            Ok(())
        });
        if posted.is_err() {
            // The reactor is gone, and unregistered everything first.
            drop(self.parked.borrow_mut().take());
        }
    }
}

/// A non-blocking I/O object registered with a reactor, for async code;
/// see the [module docs](super).
///
/// An `Async` is created inside a task (of an [`Executor`](super::Executor)
/// or [`block_on`](super::block_on)) driving the reactor it registers
/// with. It owns the object and sets it non-blocking. It gives it out by
/// shared reference only ([`get_ref`](Async::get_ref)): a `&mut T` could
/// swap the descriptor for another (`mem::swap`, `mem::replace`) behind
/// the registration. Dropping an `Async` unregisters the descriptor, then
/// closes it; [`into_inner`](Async::into_inner) unregisters and gives the
/// object back.
///
/// Several tasks may wait on one `Async` (in the same direction or not):
/// every waiter is woken by each event.
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, Async};
///
/// let mut reactor = Reactor::new()?;
/// let (a, b) = UnixStream::pair()?;
/// block_on(&mut reactor, async {
///     let (a, b) = (Async::new(a)?, Async::new(b)?);
///     // Two directions, two tasks' worth of waiting, one thread.
///     a.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     b.read_exact(&mut buf).await?;
///     b.write_all(b"pong").await?;
///     a.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"pong");
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Async<T: AsFd + 'static> {
    /// `None` only inside `drop` and `into_inner`.
    io: Option<T>,
    source: Rc<Source>,
}

impl<T: AsFd + 'static> Async<T> {
    /// Sets `io` non-blocking and registers it with the reactor of the
    /// task being polled, edge-triggered where the backend can, oneshot
    /// elsewhere (see the [module docs](super#trigger-mode)).
    ///
    /// # Errors
    ///
    /// Outside a task of an executor driving a reactor (`io` is dropped),
    /// or the poller's refusal (select: a descriptor from `FD_SETSIZE`
    /// up; see [`Context::register`]). The descriptor's flags are left as
    /// they were then (a blocking descriptor stays blocking).
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = (Async::new(a)?, Async::new(b)?);
    ///     a.write_all(b"hi").await?;
    ///     let mut buf = [0; 2];
    ///     b.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"hi");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// // Outside a task there is no reactor to register with.
    /// assert!(Async::new(UnixStream::pair()?.0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(io: T) -> io::Result<Async<T>> {
        let fd = io.as_fd().as_raw_fd();
        let source =
            with_context(None, |ctx| Async::<T>::setup(ctx, fd)).ok_or_else(no_reactor)??;
        Ok(Async {
            io: Some(io),
            source,
        })
    }

    /// Sets `fd` non-blocking and registers it; a failure leaves its
    /// flags as they were.
    fn setup(ctx: &mut Context, fd: RawFd) -> io::Result<Rc<Source>> {
        let was_blocking = sys::net::set_nonblocking(fd)?;
        Async::<T>::register(ctx, fd).map_err(|e| {
            if was_blocking {
                // Best effort: the registration's error is the one to report.
                let _ = sys::net::clear_nonblocking(fd);
            }
            e
        })
    }

    fn register(ctx: &mut Context, fd: RawFd) -> io::Result<Rc<Source>> {
        let oneshot = !ctx.poller().supports(Mode::Edge);
        let mode = if oneshot { Mode::Oneshot } else { Mode::Edge };
        let both = Interest::READABLE | Interest::WRITABLE;
        let source = Rc::new(Source {
            fd,
            token: Cell::new(Token::RESERVED),
            oneshot,
            armed: Cell::new(both),
            read: Direction::new(),
            write: Direction::new(),
            reactor: reactor_id(ctx),
            handle: ctx.handle(),
            parked: RefCell::new(None),
        });
        let shared = Rc::clone(&source);
        let token = ctx.register(fd, both, mode, move |ctx, ev| {
            shared.on_event(ctx, ev);
            Ok(())
        })?;
        source.token.set(token);
        Ok(source)
    }

    /// The object, shared. (There is no `get_mut`: see the type's docs.)
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ///     // The std object, for what `Async` does not wrap.
    ///     let addr = listener.get_ref().local_addr()?;
    ///     assert!(addr.ip().is_loopback() && addr.port() != 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &T {
        match &self.io {
            Some(io) => io,
            None => unreachable!("`io` is taken only by `drop` and `into_inner`"),
        }
    }

    /// Unregisters the object and gives it back (still non-blocking).
    ///
    /// # Errors
    ///
    /// Outside a task of an executor driving the object's reactor; the
    /// object is then dropped as if the `Async` was (unregistered and
    /// closed at the loop's next turn).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// let a = block_on(&mut reactor, async {
    ///     let a = Async::new(a)?;
    ///     // ... async work ..., then back to a plain (non-blocking) socket.
    ///     a.into_inner()
    /// })??;
    /// b.write_all(b"x")?;
    /// let mut buf = [0; 1];
    /// assert_eq!((&a).read(&mut buf)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(mut self) -> io::Result<T> {
        let token = self.source.token.get();
        with_context(Some(self.source.reactor), |ctx| {
            let _ = ctx.unregister(token);
        })
        .ok_or_else(no_reactor)?;
        self.io.take().ok_or_else(no_reactor)
    }

    /// Waits until the object may be readable: at once if no operation
    /// returned `WouldBlock` since the last event, else until the next
    /// event. The object may still turn out not to be readable (another
    /// task read first): the operation then returns `WouldBlock`.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = Async::<UnixStream>::pair()?;
    ///     b.write_all(b"x").await?;
    ///     a.readable().await?; // data waits: at once
    ///     let mut buf = [0; 1];
    ///     assert_eq!(a.get_ref().read(&mut buf)?, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readable(&self) -> Ready<'_> {
        Ready {
            source: &self.source,
            dir: Dir::Read,
            reg: None,
        }
    }

    /// As [`readable`](Async::readable), for writing.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, _b) = Async::<UnixStream>::pair()?;
    ///     a.writable().await?; // an empty send buffer: at once
    ///     assert_eq!(a.get_ref().write(b"x")?, 1);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writable(&self) -> Ready<'_> {
        Ready {
            source: &self.source,
            dir: Dir::Write,
            reg: None,
        }
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting to be
    /// readable in between, and returns what it returned. `op` must be a
    /// non-blocking read-side operation on the object (read, recv,
    /// accept).
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ///     let _client = TcpStream::connect(listener.get_ref().local_addr()?)?;
    ///     // Any non-blocking read-side call on the std object: here the
    ///     // plain `accept`, waited for as `Async::accept` would.
    ///     let (conn, peer) = listener.read_with(|l| l.accept()).await?;
    ///     assert_eq!(conn.peer_addr()?, peer);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(Dir::Read, op, |_| false).await
    }

    /// As [`read_with`](Async::read_with), for write-side operations.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = Async::<UnixStream>::pair()?;
    ///     // Any non-blocking write-side call on the std object: here a plain write.
    ///     let n = a.write_with(|s| (&*s).write(b"raw")).await?;
    ///     assert_eq!(n, 3);
    ///     let mut buf = [0; 3];
    ///     b.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"raw");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.op(Dir::Write, op, |_| false).await
    }

    /// The loop behind every operation. `drained` says whether a result
    /// shows the kernel buffer emptied (read) or filled (write).
    async fn op<R>(
        &self,
        dir: Dir,
        mut op: impl FnMut(&T) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let d = self.source.dir(dir);
        loop {
            if !spend_budget() {
                YieldNow(false).await;
                refill_budget(); // for a foreign executor, which does not
            }
            if !d.ready.get() {
                Ready {
                    source: &self.source,
                    dir,
                    reg: None,
                }
                .await?;
            }
            let tick = d.tick.get();
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => d.clear(tick),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    if drained(&r) {
                        d.drained(tick);
                    }
                    return Ok(r);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<T: AsFd + 'static> Async<T>
where
    for<'a> &'a T: Read + Write,
{
    /// Reads into `buf`, waiting until something can be read; `Ok(0)` at
    /// the end of the stream (or for an empty `buf`).
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = Async::<UnixStream>::pair()?;
    ///     b.write_all(b"hello").await?;
    ///     drop(b);
    ///     let mut buf = [0; 16];
    ///     let n = a.read(&mut buf).await?; // what has arrived, at least one byte
    ///     assert_eq!(&buf[..n], b"hello");
    ///     assert_eq!(a.read(&mut buf).await?, 0); // the peer closed
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.op(Dir::Read, |mut io| io.read(buf), |&n| n > 0 && n < len)
            .await
    }

    /// Reads exactly `buf.len()` bytes.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the stream ends first, or the read's error.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = Async::<UnixStream>::pair()?;
    ///     b.write_all(b"abc").await?;
    ///     let mut buf = [0; 3];
    ///     a.read_exact(&mut buf).await?; // waits until all three bytes are in
    ///     assert_eq!(&buf, b"abc");
    ///     drop(b);
    ///     let err = a.read_exact(&mut buf).await.unwrap_err(); // the stream ended first
    ///     assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Writes from `buf`, waiting until something can be written; returns
    /// how many bytes were taken.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = Async::<UnixStream>::pair()?;
    ///     // Some of the bytes, at least one: the socket may take part of a write.
    ///     let n = a.write(b"partial").await?;
    ///     assert!(n >= 1 && n <= 7);
    ///     let mut buf = vec![0; n];
    ///     b.read_exact(&mut buf).await?;
    ///     assert_eq!(buf, &b"partial"[..n]);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        self.op(Dir::Write, |mut io| io.write(buf), |&n| n < len)
            .await
    }

    /// Writes all of `buf`.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the object takes nothing, or the write's error.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{Async, Executor};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ex = Executor::new();
    /// let (a, b) = UnixStream::pair()?;
    /// // 1 MiB: more than the socket buffers, so the writer waits for the reader.
    /// let sent = vec![7u8; 1 << 20];
    /// let expect = sent.clone();
    /// ex.spawn(async move {
    ///     let a = Async::new(a).expect("in a task");
    ///     a.write_all(&sent).await.expect("write_all");
    /// });
    /// let got = ex.block_on(&mut reactor, async move {
    ///     let b = Async::new(b)?;
    ///     let mut got = vec![0; 1 << 20];
    ///     b.read_exact(&mut got).await?;
    ///     Ok::<_, std::io::Error>(got)
    /// })??;
    /// assert!(got == expect);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

impl Async<TcpListener> {
    /// Binds a TCP listener to `addr` and registers it.
    ///
    /// # Errors
    ///
    /// The bind's, or as [`Async::new`].
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     // Port 0: the kernel picks a free one.
    ///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ///     assert_ne!(listener.get_ref().local_addr()?.port(), 0);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(addr: impl Into<SocketAddr>) -> io::Result<Async<TcpListener>> {
        Async::new(TcpListener::bind(addr.into())?)
    }

    /// Accepts a connection, registered in turn.
    ///
    /// # Errors
    ///
    /// The accept's (`EMFILE` when out of descriptors...), or as
    /// [`Async::new`] for the connection (which is then closed).
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ///     let client = Async::<TcpStream>::connect(listener.get_ref().local_addr()?).await?;
    ///     let (server, peer) = listener.accept().await?; // registered, non-blocking
    ///     assert_eq!(peer, client.get_ref().local_addr()?);
    ///     server.write_all(b"welcome").await?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        let (stream, addr) = self.read_with(|l| l.accept()).await?;
        Ok((Async::new(stream)?, addr))
    }
}

impl Async<TcpStream> {
    /// Connects to `addr` without blocking the loop.
    ///
    /// # Errors
    ///
    /// The connection's failure (`ConnectionRefused`...), or as
    /// [`Async::new`].
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ///     let addr = listener.get_ref().local_addr()?;
    ///     let client = Async::<TcpStream>::connect(addr).await?; // waits for the handshake
    ///     assert_eq!(client.get_ref().peer_addr()?, addr);
    ///     drop(listener);
    ///     // Nobody listens there now: refused.
    ///     let err = Async::<TcpStream>::connect(addr).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn connect(addr: impl Into<SocketAddr>) -> io::Result<Async<TcpStream>> {
        let fd = sys::net::connect_tcp(&addr.into())?;
        let stream = Async::new(TcpStream::from(fd))?;
        stream.source.write.ready.set(false); // wait for the outcome
        stream.writable().await?;
        if let Some(e) = stream.get_ref().take_error()? {
            return Err(e);
        }
        stream.get_ref().peer_addr()?; // `NotConnected` if it is not
        Ok(stream)
    }
}

impl Async<UnixListener> {
    /// Binds a Unix stream listener to `path` and registers it.
    ///
    /// # Errors
    ///
    /// The bind's, or as [`Async::new`].
    ///
    /// ```
    /// use std::os::unix::net::UnixListener;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let path = std::env::temp_dir().join(format!("tripoll-doc-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = Async::<UnixListener>::bind(&path)?;
    ///     assert!(listener.get_ref().local_addr()?.as_pathname() == Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Async<UnixListener>> {
        Async::new(UnixListener::bind(path)?)
    }

    /// Accepts a connection, registered in turn.
    ///
    /// # Errors
    ///
    /// As for TCP.
    ///
    /// ```
    /// use std::os::unix::net::{UnixListener, UnixStream};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let path = std::env::temp_dir().join(format!("tripoll-doc-a-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = Async::<UnixListener>::bind(&path)?;
    ///     let client = Async::<UnixStream>::connect(&path).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"hi").await?;
    ///     let mut buf = [0; 2];
    ///     server.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"hi");
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(Async<UnixStream>, unix::SocketAddr)> {
        let (stream, addr) = self.read_with(|l| l.accept()).await?;
        Ok((Async::new(stream)?, addr))
    }
}

impl Async<UnixStream> {
    /// Connects to the Unix socket at `path`. A Unix connect completes at
    /// once (the kernel needs no round trip), so this does not wait.
    ///
    /// # Errors
    ///
    /// The connect's: `WouldBlock` when the listener's backlog is full,
    /// `NotFound`, `ConnectionRefused`...; or as [`Async::new`].
    ///
    /// ```
    /// use std::os::unix::net::{UnixListener, UnixStream};
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let path = std::env::temp_dir().join(format!("tripoll-doc-c-{}.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     // No socket there yet: an error, not a wait.
    ///     assert!(Async::<UnixStream>::connect(&path).await.is_err());
    ///     let _listener = Async::<UnixListener>::bind(&path)?;
    ///     let client = Async::<UnixStream>::connect(&path).await?;
    ///     assert!(client.get_ref().peer_addr()?.as_pathname() == Some(path.as_path()));
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Async<UnixStream>> {
        let fd = sys::net::connect_unix(path.as_ref())?;
        Async::new(UnixStream::from(fd))
    }

    /// A connected pair, both registered.
    ///
    /// # Errors
    ///
    /// `socketpair`'s, or as [`Async::new`].
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use tripoll::reactor::Reactor;
    /// use tripoll::task::{block_on, Async};
    ///
    /// let mut reactor = Reactor::new()?;
    /// block_on(&mut reactor, async {
    ///     let (a, b) = Async::<UnixStream>::pair()?;
    ///     a.write_all(b"ping").await?;
    ///     let mut buf = [0; 4];
    ///     b.read_exact(&mut buf).await?;
    ///     assert_eq!(&buf, b"ping");
    ///     Ok::<(), std::io::Error>(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pair() -> io::Result<(Async<UnixStream>, Async<UnixStream>)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Async::new(a)?, Async::new(b)?))
    }
}

impl<T: AsFd + 'static> Drop for Async<T> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            self.source.release(Box::new(io));
        }
    }
}

/// The object's descriptor, borrowed: to pass it to a system call, or to
/// tell which descriptor an event or a log line is about.
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// use std::os::unix::net::UnixStream;
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, Async};
///
/// let mut reactor = Reactor::new()?;
/// block_on(&mut reactor, async {
///     let (a, _b) = UnixStream::pair()?;
///     let fd = a.as_raw_fd();
///     let a = Async::new(a)?;
///     assert_eq!(a.as_fd().as_raw_fd(), fd);
///     assert_eq!(a.as_raw_fd(), fd);
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T: AsFd + 'static> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

/// The object's descriptor number; see [`AsFd`](#impl-AsFd-for-Async<T>).
impl<T: AsFd + 'static> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_fd().as_raw_fd()
    }
}

/// An `Async` over an owned descriptor, as [`Async::new`]`(T::from(fd))`:
/// for a socket that comes from elsewhere (inherited, passed over a Unix
/// socket, made with `socket2`).
///
/// # Errors
///
/// As [`Async::new`]; the descriptor is closed then.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::OwnedFd;
/// use std::os::unix::net::UnixStream;
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, Async};
///
/// let mut reactor = Reactor::new()?;
/// let (a, mut b) = UnixStream::pair()?;
/// let fd: OwnedFd = a.into();
/// b.write_all(b"hi")?;
/// let got = block_on(&mut reactor, async move {
///     let a = Async::<UnixStream>::try_from(fd)?;
///     let mut buf = [0; 2];
///     a.read_exact(&mut buf).await?;
///     Ok::<_, std::io::Error>(buf)
/// })??;
/// assert_eq!(&got, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T: AsFd + From<OwnedFd> + 'static> TryFrom<OwnedFd> for Async<T> {
    type Error = io::Error;

    fn try_from(fd: OwnedFd) -> io::Result<Async<T>> {
        Async::new(T::from(fd))
    }
}

impl<T: AsFd + fmt::Debug + 'static> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("io", &self.io)
            .field("fd", &self.source.fd)
            .field("token", &self.source.token.get())
            .field("oneshot", &self.source.oneshot)
            .finish()
    }
}

/// The future of [`Async::readable`] and [`Async::writable`]. Dropping it
/// while it waits takes its waker off the list.
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use tripoll::reactor::Reactor;
/// use tripoll::task::{block_on, Async};
///
/// let mut reactor = Reactor::new()?;
/// block_on(&mut reactor, async {
///     let (a, b) = Async::<UnixStream>::pair()?;
///     let waiting = a.readable(); // a `Ready`: nothing happens until awaited
///     b.write_all(b"x").await?;
///     waiting.await?;
///     Ok::<(), std::io::Error>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Ready<'a> {
    source: &'a Source,
    dir: Dir,
    reg: Option<(usize, u64)>,
}

impl Future for Ready<'_> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.source.poll_ready(this.dir, &mut this.reg, cx)
    }
}

impl Drop for Ready<'_> {
    fn drop(&mut self) {
        if let Some((key, start)) = self.reg {
            let d = self.source.dir(self.dir);
            if d.tick.get() == start {
                d.remove(key);
            }
        }
    }
}

impl fmt::Debug for Ready<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("dir", &self.dir)
            .field("waiting", &self.reg.is_some())
            .finish()
    }
}

/// Returns `Pending` once, waking itself: lets the loop turn.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
