//! A reference for `lab/scripts/http-bench.sh`: the barest HTTP/1.1 "Hello, world!"
//! server on mio and httparse, sending the same response bytes as the
//! lab `http` server (same headers, a `Date` cached once a second).
//!
//! ```text
//! cargo run --release -p tripoll-lab --bin ref_http_mio -- --port 8080
//! ```
//!
//! It is the usual mio loop: every connection registered edge-triggered for
//! reading and writing, read until `WouldBlock`, every complete request in
//! the buffer answered, the answers sent in one write. It does what a
//! benchmark needs and nothing more: no validation beyond httparse's
//! syntax (any complete request gets the greeting, a malformed one closes
//! the connection), no `Connection: close`, no request bodies, no idle
//! timeout, no cap on pending output. One thread; it runs until killed.

use tripoll_lab::ref_http as shared;

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use shared::{Response, MAX_INPUT, READ_CHUNK};

const PROG: &str = "ref_http_mio";
const USAGE: &str = "\
ref_http_mio: a bare mio + httparse HTTP/1.1 server, the reference for lab/scripts/http-bench.sh

Usage: ref_http_mio [--port PORT]

Listens on 127.0.0.1:PORT (default 8080; 0 picks a free port), prints
\"ref_http_mio: listening on ADDR\", answers every request with the http
lab http server's 200 response, and runs until killed.
";

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    sent: usize,
}

fn main() {
    shared::main(PROG, USAGE, serve);
}

fn serve(port: u16) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("{PROG}: listening on {}", listener.local_addr()?);

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut response = Response::new();
    loop {
        let timeout = response.refresh();
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        response.refresh();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept(&poll, &listener, &mut conns, &mut free)?;
                continue;
            }
            let i = ev.token().0;
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            if conn.drive(&response.bytes).is_err() {
                let mut conn = conns[i].take().expect("checked above");
                let _ = poll.registry().deregister(&mut conn.stream);
                free.push(i);
            }
        }
    }
}

fn accept(
    poll: &Poll,
    listener: &TcpListener,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) -> io::Result<()> {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("{PROG}: accept: {e}");
                return Ok(());
            }
        };
        stream.set_nodelay(true)?;
        let i = free.pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns[i] = Some(Conn {
            stream,
            inbuf: vec![0; READ_CHUNK],
            filled: 0,
            out: Vec::with_capacity(READ_CHUNK),
            sent: 0,
        });
    }
}

impl Conn {
    /// Reads until `WouldBlock`, answers every complete request, sends.
    /// An error, a malformed request or the peer's close ends the
    /// connection.
    fn drive(&mut self, response: &[u8]) -> io::Result<()> {
        loop {
            if self.filled == self.inbuf.len() {
                if self.inbuf.len() >= MAX_INPUT {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                self.inbuf.resize(self.inbuf.len() * 2, 0);
            }
            match self.stream.read(&mut self.inbuf[self.filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.filled += n;
                    self.answer(response)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.flush()
    }

    fn answer(&mut self, response: &[u8]) -> io::Result<()> {
        shared::answer(&mut self.inbuf, &mut self.filled, &mut self.out, response)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.sent = 0;
        Ok(())
    }
}
