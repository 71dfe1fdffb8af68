//! The non-blocking models: one thread, many sockets, no call ever waits
//! on one client. The busy loop asks every socket in turn whether it has
//! something; the event loop asks the kernel (select, poll, epoll) which
//! ones do, and sleeps until one does. On a machine with several cores,
//! one such loop per core: each with its own `SO_REUSEPORT` listener, or
//! all sharing one listener registered with `EPOLLEXCLUSIVE`. At the
//! descriptor limit each refuses the clients it cannot serve
//! ([`Acceptor`], with the shared [`Refuser`]).

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tripoll::{AnyPoller, Backend, Events, Interest, Mode, Poller, Token};

use crate::common::{self, ACCEPT_PAUSE};
use crate::refuse::Refuser;

/// A connection and the echo it still owes: bytes read but not yet taken
/// by the socket's send buffer.
struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    sent: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            out: Vec::new(),
            sent: 0,
        })
    }

    fn owes(&self) -> bool {
        self.sent < self.out.len()
    }

    /// Echoes until the socket has nothing more to read (`WouldBlock`) or
    /// cannot take more (then it stops reading until it can). Drains fully,
    /// as edge-triggered readiness requires. Returns `false` when the
    /// connection is over.
    fn echo(&mut self, buf: &mut [u8]) -> bool {
        loop {
            if common::send_pending(self.stream.as_raw_fd(), &self.out, &mut self.sent).is_err() {
                return false;
            }
            if self.owes() {
                return true;
            }
            self.out.clear();
            self.sent = 0;
            match self.stream.read(buf) {
                Ok(0) => return false,
                Ok(n) => self.out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

/// A loop's listener: accepts, and at the descriptor limit refuses the
/// clients it cannot serve (see [`Refuser`]).
struct Acceptor<'a> {
    listener: &'a TcpListener,
    refuser: Refuser,
    /// Out of descriptors with no spare to shed with: not accepting until
    /// then (the listener stays readable, and a loop that kept trying
    /// would spin).
    paused: Option<Instant>,
    /// Loops that share one descriptor table (the per-core and exclusive
    /// models) accept one at a time: while one loop's spare is freed to
    /// refuse a client, another loop's accept would take its number and
    /// serve a client with it, and the first loop, its spare lost, could
    /// refuse no more (the clients would wait in its backlog).
    turns: Option<Arc<Mutex<()>>>,
}

impl<'a> Acceptor<'a> {
    fn new(
        listener: &'a TcpListener,
        refuser: Refuser,
        turns: Option<Arc<Mutex<()>>>,
    ) -> Acceptor<'a> {
        Acceptor {
            listener,
            refuser,
            paused: None,
            turns,
        }
    }

    /// Accepts every waiting connection, handing each to `add`, unless
    /// paused. Returns `true` when it has just paused: out of descriptors
    /// with no spare, for [`ACCEPT_PAUSE`].
    fn accept_all(&mut self, mut add: impl FnMut(Conn) -> io::Result<()>) -> io::Result<bool> {
        if let Some(until) = self.paused {
            if Instant::now() < until {
                return Ok(false);
            }
            self.paused = None;
        }
        let _turn = self
            .turns
            .as_deref()
            .map(|t| t.lock().unwrap_or_else(PoisonError::into_inner));
        loop {
            match self.refuser.accept(self.listener) {
                Ok(Some(stream)) => add(Conn::new(stream)?)?,
                Ok(None) => {
                    self.paused = Some(Instant::now() + ACCEPT_PAUSE);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// For an event loop, before it waits: how long it may wait (`None`
    /// unless accepting is paused). Once the pause is over, watches the
    /// listener again with `mode` (the pause unregistered it: an
    /// exclusive registration cannot be modified).
    fn resume(&mut self, poller: &AnyPoller, mode: Mode) -> io::Result<Option<Duration>> {
        let Some(until) = self.paused else {
            return Ok(None);
        };
        let now = Instant::now();
        if now < until {
            return Ok(Some(until - now));
        }
        self.paused = None;
        let fd = self.listener.as_raw_fd();
        poller.register(fd, LISTENER, Interest::READABLE, mode)?;
        Ok(None)
    }
}

/// The tutorials' non-blocking server: no call waits, so the loop tries
/// the listener and then every connection, over and over, whether or not
/// anything happened. It serves everyone, and burns a core doing it.
pub fn busy_loop(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut acceptor = Acceptor::new(&listener, Refuser::new()?, None);
    let mut conns = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        acceptor.accept_all(|c| {
            conns.push(c);
            Ok(())
        })?;
        conns.retain_mut(|c| c.echo(&mut buf));
    }
}

const LISTENER: Token = Token(0);

/// One thread, one tripoll poller: wait until the kernel says which sockets
/// are ready, serve those, wait again. With `Mode::Level` a connection is
/// registered for reading, or for writing while it owes an echo; with
/// `Mode::Edge` it is registered once for both and always drained.
pub fn event_loop(listener: TcpListener, poller: AnyPoller, mode: Mode) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let acceptor = Acceptor::new(&listener, Refuser::new()?, None);
    serve_loop(&poller, acceptor, mode, mode)
}

/// One epoll loop per listener, each on its own thread: the listeners
/// share a port through `SO_REUSEPORT`, and the kernel spreads the
/// incoming connections over them. Nothing is shared between the loops
/// but their turns to accept (see [`Acceptor`]).
pub fn loop_per_listener(listeners: Vec<TcpListener>) -> io::Result<()> {
    // Every loop's poller and spare are made before any loop accepts:
    // once the clients hold every descriptor, they could not be.
    let mut loops = Vec::with_capacity(listeners.len());
    for listener in listeners {
        listener.set_nonblocking(true)?;
        loops.push((listener, AnyPoller::new(Backend::Epoll)?, Refuser::new()?));
    }
    let turns = Arc::new(Mutex::new(()));
    let (done, ended) = mpsc::channel();
    for (listener, poller, refuser) in loops {
        let (turns, done) = (Arc::clone(&turns), done.clone());
        thread::Builder::new().spawn(move || {
            let acceptor = Acceptor::new(&listener, refuser, Some(turns));
            let _ = done.send(serve_loop(&poller, acceptor, Mode::Level, Mode::Level));
        })?;
    }
    first_to_end(&ended)
}

/// `loops` epoll loops on as many threads, all accepting from one
/// listener, registered in each with `Mode::Exclusive` so that a new
/// connection wakes one loop, not all of them (`EPOLLEXCLUSIVE`).
pub fn loops_sharing_listener(listener: TcpListener, loops: usize) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = Arc::new(listener);
    // As in `loop_per_listener`: made before any loop accepts.
    let made = (0..loops)
        .map(|_| Ok((AnyPoller::new(Backend::Epoll)?, Refuser::new()?)))
        .collect::<io::Result<Vec<_>>>()?;
    let turns = Arc::new(Mutex::new(()));
    let (done, ended) = mpsc::channel();
    for (poller, refuser) in made {
        let (listener, turns, done) = (Arc::clone(&listener), Arc::clone(&turns), done.clone());
        thread::Builder::new().spawn(move || {
            let acceptor = Acceptor::new(&listener, refuser, Some(turns));
            let _ = done.send(serve_loop(&poller, acceptor, Mode::Exclusive, Mode::Level));
        })?;
    }
    first_to_end(&ended)
}

/// Waits for the first loop to stop (loops stop only on an error).
fn first_to_end(ended: &mpsc::Receiver<io::Result<()>>) -> io::Result<()> {
    ended
        .recv()
        .map_err(|_| io::Error::other("no event loop was started"))?
}

/// The loop itself: the acceptor's listener (non-blocking) registered
/// with `listener_mode`, connections with `mode` (level or edge).
fn serve_loop(
    poller: &AnyPoller,
    mut acceptor: Acceptor,
    listener_mode: Mode,
    mode: Mode,
) -> io::Result<()> {
    let listener = acceptor.listener;
    poller.register(
        listener.as_raw_fd(),
        LISTENER,
        Interest::READABLE,
        listener_mode,
    )?;
    // Connection `i` has token `i + 1`; freed slots are reused.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let first_interest = if mode.is_edge() {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    loop {
        poller.wait(&mut events, acceptor.resume(poller, listener_mode)?)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                let paused = acceptor.accept_all(|c| {
                    let i = free.pop().unwrap_or(conns.len());
                    poller.register(c.stream.as_raw_fd(), Token(i + 1), first_interest, mode)?;
                    if i == conns.len() {
                        conns.push(Some(c));
                    } else {
                        conns[i] = Some(c);
                    }
                    Ok(())
                })?;
                if paused {
                    poller.unregister(listener.as_raw_fd())?;
                }
                continue;
            }
            let i = ev.token().0 - 1;
            let Some(c) = conns[i].as_mut() else { continue };
            let owed = c.owes();
            if !c.echo(&mut buf) {
                poller.unregister(c.stream.as_raw_fd())?;
                conns[i] = None;
                free.push(i);
            } else if !mode.is_edge() && c.owes() != owed {
                let want = if c.owes() {
                    Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                poller.modify(c.stream.as_raw_fd(), ev.token(), want, mode)?;
            }
        }
    }
}
