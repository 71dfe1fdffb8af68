//! The tutorials' first event-loop server: "Hello, world!" over HTTP/1.1
//! on one poller (epoll unless told otherwise), one thread.
//!
//! `cargo run --example hello_http -- [--backend NAME] [ADDR]` (default
//! `127.0.0.1:8080`), then `curl http://127.0.0.1:8080/`; Ctrl-C stops it.
//!
//! Each connection keeps what it has received; every complete request head
//! in it (up to the blank line) gets the same answer, so keep-alive and
//! pipelining work. It is a lesson, not a web server: it reads no body,
//! and a client that sends a head larger than 8 KiB, or that does not
//! read its answers, is disconnected. The lab's `http`
//! (`lab/src/bin/http/`) is the full server.

mod common;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use tripoll::{Events, Interest, Mode, Poller, Token};

const PROG: &str = "hello_http";

const USAGE: &str = "\
hello_http: \"Hello, world!\" over HTTP/1.1 on one event loop

Usage: hello_http [--backend epoll|poll|select|uring] [ADDR]

ADDR defaults to 127.0.0.1:8080 (port 0 picks a free port); the backend
defaults to $TRIPOLL_BACKEND, else epoll. Prints the address it listens on,
then serves until killed.
";

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// The most a client may send without finishing a request head.
const MAX_HEAD: usize = 8 * 1024;

const LISTENER: Token = Token(0);

fn main() -> io::Result<()> {
    let opts = common::Options::parse(PROG, USAGE, "127.0.0.1:8080");
    let poller = opts.poller(PROG);
    let listener = TcpListener::bind(&opts.addr)?;
    listener.set_nonblocking(true)?;
    poller.register_source(&listener, LISTENER, Interest::READABLE, Mode::Level)?;
    println!(
        "{PROG}: listening on {} (backend {})",
        listener.local_addr()?,
        poller.name()
    );

    // Each connection and the bytes of the request head it has sent so far.
    let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
    let mut next_key = 1;
    let mut events = Events::with_capacity(256);
    loop {
        poller.wait(&mut events, None)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                        Err(e) => return Err(e),
                    };
                    stream.set_nonblocking(true)?;
                    poller.register_source(
                        &stream,
                        Token(next_key),
                        Interest::READABLE,
                        Mode::Level,
                    )?;
                    conns.insert(next_key, (stream, Vec::new()));
                    next_key += 1;
                }
                continue;
            }
            let key = ev.token().0;
            let Some((stream, received)) = conns.get_mut(&key) else {
                continue;
            };
            if let Err(e) = answer(stream, received) {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    eprintln!("{PROG}: connection {key}: {e}");
                }
                poller.unregister_source(stream)?;
                conns.remove(&key);
            }
        }
    }
}

/// Reads what has arrived and answers every complete request head in it.
/// An error (`UnexpectedEof` when the client closed) ends the connection.
fn answer(stream: &mut TcpStream, received: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0; 4096];
    let n = match stream.read(&mut buf) {
        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) => return Err(e),
    };
    received.extend_from_slice(&buf[..n]);
    while let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
        received.drain(..end + 4);
        // A small answer fits in an empty socket buffer; one that does not
        // fit means the client is not reading: `WouldBlock` ends it.
        stream.write_all(RESPONSE)?;
    }
    if received.len() > MAX_HEAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request head too large",
        ));
    }
    Ok(())
}
