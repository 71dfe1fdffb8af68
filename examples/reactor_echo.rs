//! The README's reactor example: an echo server on [`Reactor`] that keeps
//! serving whatever its clients do. It echoes what the socket takes and
//! keeps the rest, reading no more from a client until that is sent, so a
//! client that sends without reading fills its own buffers, not the
//! server's memory; a client that resets loses its connection and nothing
//! else.
//!
//! `cargo run --example reactor_echo -- [--backend NAME] [ADDR]` (default
//! `127.0.0.1:8001`; the backend defaults to `TRIPOLL_BACKEND`, else
//! epoll); Ctrl-C stops it. The README shows this file from its first `use`
//! line, and `tests/reactor_echo.rs` checks that it still does.

mod common;

const USAGE: &str = "\
reactor_echo: an echo server on tripoll's callback reactor

Usage: reactor_echo [--backend epoll|poll|select|uring] [ADDR]

ADDR defaults to 127.0.0.1:8001 (port 0 picks a free port); the backend
defaults to $TRIPOLL_BACKEND, else epoll. Runs until SIGINT (Ctrl-C).
";

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use tripoll::reactor::{Context, Reactor};
use tripoll::{Event, Interest, Mode, Poller};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = common::Options::parse("reactor_echo", USAGE, "127.0.0.1:8001");
    let mut reactor = Reactor::with_poller(opts.poller("reactor_echo"));
    let listener = TcpListener::bind(&opts.addr)?;
    listener.set_nonblocking(true)?;
    let backend = reactor.poller().name();
    println!(
        "reactor_echo: listening on {} (backend {backend})",
        listener.local_addr()?
    );
    reactor.register_owned(listener, Interest::READABLE, Mode::Level, accept)?;
    reactor.on_signal(libc::SIGINT, |ctx, _| {
        ctx.stop();
        Ok(())
    })?;
    // Until Ctrl-C. A handler that fails (a client reset its connection, say)
    // loses its connection, the failure is reported on stderr, and the loop
    // goes on; `reactor.set_error_handler` would report it elsewhere.
    reactor.run()?;
    Ok(())
}

fn accept(ctx: &mut Context, listener: &mut TcpListener, _: Event) -> io::Result<()> {
    loop {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => return Err(e), // out of descriptors, say: see examples/echo.rs
        };
        conn.set_nonblocking(true)?;
        let mut unsent = Vec::new();
        ctx.register_owned(
            conn,
            Interest::READABLE,
            Mode::Level,
            move |ctx, conn, ev| echo(ctx, conn, &mut unsent, ev),
        )?;
    }
}

/// Reads (only while nothing waits in `unsent`), writes what the socket
/// takes, keeps the rest, and waits for room to write while anything is
/// left: a non-blocking socket may take part of a write, or none of it.
fn echo(
    ctx: &mut Context,
    conn: &mut TcpStream,
    unsent: &mut Vec<u8>,
    ev: Event,
) -> io::Result<()> {
    let was_waiting = !unsent.is_empty();
    if !was_waiting {
        let mut buf = [0; 4096];
        match conn.read(&mut buf) {
            Ok(0) => return Ok(ctx.unregister(ev.token())?), // closes `conn`
            Ok(n) => unsent.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    while !unsent.is_empty() {
        match conn.write(unsent) {
            Ok(n) => drop(unsent.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    let waiting = !unsent.is_empty();
    if waiting != was_waiting {
        let interest = if waiting {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        ctx.modify(ev.token(), interest, Mode::Level)?;
    }
    Ok(())
}
