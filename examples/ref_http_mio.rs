//! A reference for `benches/http.sh`: the barest HTTP/1.1 "Hello, world!"
//! server on mio and httparse, sending the same response bytes as the
//! `http` example (same headers, a `Date` cached once a second).
//!
//! ```text
//! cargo run --release --example ref_http_mio -- --port 8080
//! ```
//!
//! It is the usual mio loop: every connection registered edge-triggered for
//! reading and writing, read until `WouldBlock`, every complete request in
//! the buffer answered, the answers sent in one write. It does what a
//! benchmark needs and nothing more: no validation beyond httparse's
//! syntax (any complete request gets the greeting, a malformed one closes
//! the connection), no `Connection: close`, no request bodies, no idle
//! timeout, no cap on pending output. One thread; it runs until killed.

#[allow(dead_code)]
#[path = "http/date.rs"]
mod date;

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::process;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const PROG: &str = "ref_http_mio";
const USAGE: &str = "\
ref_http_mio: a bare mio + httparse HTTP/1.1 server, the reference for benches/http.sh

Usage: ref_http_mio [--port PORT]

Listens on 127.0.0.1:PORT (default 8080; 0 picks a free port), prints
\"ref_http_mio: listening on ADDR\", answers every request with the http
example's 200 response, and runs until killed.
";

const LISTENER: Token = Token(usize::MAX);
const READ_CHUNK: usize = 8 * 1024;
/// The longest a request head may be before the connection is closed.
const MAX_INPUT: usize = 64 * 1024;

/// The http example's response to a GET, the date in the middle.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: tripoll\r\nContent-Type: text/plain\r\n\
Content-Length: 13\r\nDate: ";
const TAIL: &[u8] = b"\r\n\r\nHello, world!";

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    sent: usize,
}

/// The whole response, re-rendered when the second changes.
struct Response {
    bytes: Vec<u8>,
    second: u64,
}

impl Response {
    fn new() -> Response {
        let mut r = Response {
            bytes: Vec::new(),
            second: u64::MAX,
        };
        r.refresh();
        r
    }

    /// Renders the date again if the second changed; returns the time to
    /// the next second.
    fn refresh(&mut self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        if now.as_secs() != self.second {
            self.second = now.as_secs();
            self.bytes.clear();
            self.bytes.extend_from_slice(HEAD);
            self.bytes
                .extend_from_slice(&date::imf_fixdate(self.second));
            self.bytes.extend_from_slice(TAIL);
        }
        Duration::from_nanos(u64::from(1_000_000_000 - now.subsec_nanos()))
    }
}

fn main() {
    let port = parse_port();
    if let Err(e) = serve(port) {
        eprintln!("{PROG}: {e}");
        process::exit(1);
    }
}

fn parse_port() -> u16 {
    let mut args = std::env::args().skip(1);
    let mut port = 8080;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                process::exit(0);
            }
            "--port" => match args.next().map(|p| p.parse::<u16>()) {
                Some(Ok(p)) => port = p,
                _ => usage_error("--port needs a number from 0 to 65535"),
            },
            other => usage_error(&format!("unknown argument {other:?}")),
        }
    }
    port
}

fn usage_error(msg: &str) -> ! {
    eprintln!("{PROG}: {msg} (see --help)");
    process::exit(2);
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
        let mut pos = 0;
        while pos < self.filled {
            let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); 16];
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(&self.inbuf[pos..self.filled], &mut headers) {
                Ok(httparse::Status::Complete(len)) => {
                    pos += len;
                    self.out.extend_from_slice(response);
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return Err(io::ErrorKind::InvalidData.into()),
            }
        }
        self.inbuf.copy_within(pos..self.filled, 0);
        self.filled -= pos;
        Ok(())
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
