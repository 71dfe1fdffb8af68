//! The non-blocking models: one thread, many sockets, no call ever waits
//! on one client. The busy loop asks every socket in turn whether it has
//! something; the event loop asks the kernel (select, poll, epoll) which
//! ones do, and sleeps until one does. On a machine with several cores,
//! one such loop per core: each with its own `SO_REUSEPORT` listener, or
//! all sharing one listener registered with `EPOLLEXCLUSIVE`.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use std::sync::{mpsc, Arc};
use std::thread;

use tripoll::{AnyPoller, Backend, Events, Interest, Mode, Poller, Token};

use crate::common;

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

/// Accepts every waiting connection, handing each to `add`.
fn accept_all(
    listener: &TcpListener,
    mut add: impl FnMut(Conn) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => add(Conn::new(stream)?)?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if common::is_per_connection(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The tutorials' non-blocking server: no call waits, so the loop tries
/// the listener and then every connection, over and over, whether or not
/// anything happened. It serves everyone, and burns a core doing it.
pub fn busy_loop(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut conns = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        accept_all(&listener, |c| {
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
    serve_loop(&listener, &poller, mode, mode)
}

/// One epoll loop per listener, each on its own thread: the listeners
/// share a port through `SO_REUSEPORT`, and the kernel spreads the
/// incoming connections over them. Nothing is shared between the loops.
pub fn loop_per_listener(listeners: Vec<TcpListener>) -> io::Result<()> {
    let (done, ended) = mpsc::channel();
    for listener in listeners {
        let done = done.clone();
        thread::Builder::new().spawn(move || {
            let run = || event_loop(listener, AnyPoller::new(Backend::Epoll)?, Mode::Level);
            let _ = done.send(run());
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
    let (done, ended) = mpsc::channel();
    for _ in 0..loops {
        let (listener, done) = (Arc::clone(&listener), done.clone());
        thread::Builder::new().spawn(move || {
            let run = || {
                let poller = AnyPoller::new(Backend::Epoll)?;
                serve_loop(&listener, &poller, Mode::Exclusive, Mode::Level)
            };
            let _ = done.send(run());
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

/// The loop itself: `listener` (non-blocking) registered with
/// `listener_mode`, connections with `mode` (level or edge).
fn serve_loop(
    listener: &TcpListener,
    poller: &AnyPoller,
    listener_mode: Mode,
    mode: Mode,
) -> io::Result<()> {
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
        poller.wait(&mut events, None)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(listener, |c| {
                    let i = free.pop().unwrap_or(conns.len());
                    poller.register(c.stream.as_raw_fd(), Token(i + 1), first_interest, mode)?;
                    if i == conns.len() {
                        conns.push(Some(c));
                    } else {
                        conns[i] = Some(c);
                    }
                    Ok(())
                })?;
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
