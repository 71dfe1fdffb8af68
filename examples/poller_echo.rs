//! An echo server on the raw [`Poller`] API: one poller, one listening
//! socket, a table of connections, level-triggered readiness.
//!
//! `cargo run --example poller_echo -- [--backend NAME] [ADDR]` (default
//! `127.0.0.1:8001`; the backend defaults to `TRIPOLL_BACKEND`, else epoll).
//! Try it with `nc 127.0.0.1 8001`; Ctrl-C stops it.
//!
//! What it teaches: a token per socket; readable interest while a client
//! may send, writable interest only while its echo waits to be sent; a
//! socket that takes part of a write (or none) keeps the rest, and the
//! server reads no more from that client until it is sent, so a client
//! that never reads fills its own buffers, not the server's memory. The
//! lab's `echo` (`lab/src/bin/echo.rs`) is this server grown up: edge and
//! oneshot modes, a memory budget, descriptor exhaustion, signals.

mod common;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use tripoll::{Events, Interest, Mode, Poller, Token};

const PROG: &str = "poller_echo";

const USAGE: &str = "\
poller_echo: an echo server on tripoll's raw Poller API

Usage: poller_echo [--backend epoll|poll|select|uring] [ADDR]

Sends every byte a client sends back to it. ADDR defaults to 127.0.0.1:8001
(port 0 picks a free port); the backend defaults to $TRIPOLL_BACKEND, else
epoll. Prints the address it listens on, then serves until killed.
";

/// The listener's token; a connection's token is its key in the table
/// (from 1 up).
const LISTENER: Token = Token(0);

/// A client: its socket and the part of its echo the socket has not taken.
struct Client {
    stream: TcpStream,
    unsent: Vec<u8>,
}

fn main() -> io::Result<()> {
    let opts = common::Options::parse(PROG, USAGE, "127.0.0.1:8001");
    let poller = opts.poller(PROG);
    let listener = TcpListener::bind(&opts.addr)?;
    listener.set_nonblocking(true)?;
    poller.register_source(&listener, LISTENER, Interest::READABLE, Mode::Level)?;
    println!(
        "{PROG}: listening on {} (backend {})",
        listener.local_addr()?,
        poller.name()
    );

    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut next_key = 1;
    let mut events = Events::with_capacity(256);
    loop {
        poller.wait(&mut events, None)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                // Level-triggered: what is left in the backlog is reported
                // again, but accepting all of it now saves the waits.
                while let Some(stream) = accept(&listener)? {
                    poller.register_source(
                        &stream,
                        Token(next_key),
                        Interest::READABLE,
                        Mode::Level,
                    )?;
                    let unsent = Vec::new();
                    clients.insert(next_key, Client { stream, unsent });
                    next_key += 1;
                }
                continue;
            }
            let key = ev.token().0;
            let Some(client) = clients.get_mut(&key) else {
                continue; // closed earlier in this batch
            };
            match serve(client) {
                Ok(Some(interest)) => {
                    poller.modify_source(&client.stream, ev.token(), interest, Mode::Level)?
                }
                Ok(None) => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        eprintln!("{PROG}: client {key}: {e}");
                    }
                    // Unregister before the socket closes (on drop).
                    poller.unregister_source(&client.stream)?;
                    clients.remove(&key);
                }
            }
        }
    }
}

/// The next connection in the backlog, or `None` when it is empty. A
/// connection reset before it was accepted is skipped.
fn accept(listener: &TcpListener) -> io::Result<Option<TcpStream>> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                return Ok(Some(stream));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads (only while no echo waits), sends what the socket takes and keeps
/// the rest. Returns the interest the client needs now if it changed, or
/// `UnexpectedEof` once the client has closed and got all its echo.
fn serve(client: &mut Client) -> io::Result<Option<Interest>> {
    let was_waiting = !client.unsent.is_empty();
    if !was_waiting {
        let mut buf = [0; 16 * 1024];
        match client.stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => client.unsent.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    while !client.unsent.is_empty() {
        match client.stream.write(&client.unsent) {
            Ok(n) => drop(client.unsent.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    let waiting = !client.unsent.is_empty();
    Ok((waiting != was_waiting).then_some(if waiting {
        Interest::WRITABLE
    } else {
        Interest::READABLE
    }))
}
