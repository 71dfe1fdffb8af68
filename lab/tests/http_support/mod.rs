//! What `tests/http.rs` and `tests/http_hostile.rs` share: the `http`
//! example as a child process (built and run by `common::child`), and a
//! small HTTP/1.1 client on a blocking `TcpStream` that reads responses and
//! tells how a connection ended.
//!
//! Every child is killed when its guard drops, every socket has a read
//! timeout: a broken server fails a test, it does not hang it.

#![allow(dead_code)] // each test file uses its own part

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

#[allow(unused_imports)]
pub use crate::common::child::field;
use crate::common::child::{self, listen_addrs, Proc};

/// The longest any single step on a socket may take before a test gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub const BACKENDS: [&str; 3] = ["epoll", "poll", "select"];

/// The `http` example binary, built fresh once per test process.
pub fn binary() -> PathBuf {
    child::bin("http")
}

/// A running `http` example. Dropping it kills the process.
pub struct Server {
    proc: Proc,
    pub addr: SocketAddr,
    pub banner: String,
}

impl Server {
    /// Starts the example on a free port of 127.0.0.1 with `args` added,
    /// and waits for its listening line.
    pub fn start(args: &[&str]) -> Server {
        let mut all = vec!["--port", "0"];
        all.extend_from_slice(args);
        Server::spawn(&all)
    }

    /// Starts the example with exactly `args`, and `TRIPOLL_BACKEND` unset.
    pub fn spawn(args: &[&str]) -> Server {
        Server::spawn_env(args, &[])
    }

    /// Starts the example with exactly `args`, `TRIPOLL_BACKEND` unset and
    /// the variables `env` set.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut proc = Proc::spawn_env("http", args, env);
        let banner = proc.line();
        // `http: listening on ADDR (backend X, threads N, mode M)`: one
        // address, whatever the number of threads.
        let addrs = listen_addrs("http", &banner);
        assert_eq!(addrs.len(), 1, "one address in {banner:?}");
        Server {
            proc,
            addr: addrs[0],
            banner,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends `sig` and waits for the exit; the exit must be status 0 and
    /// stdout must hold nothing but the listening line. Returns stderr (the
    /// summary).
    pub fn stop_with(self, sig: libc::c_int) -> String {
        self.proc.stop_with(sig)
    }

    pub fn stop(self) -> String {
        self.proc.stop()
    }
}

/// One parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The bytes on the wire.
    pub raw: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive); panics if it appears
    /// more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = found.next();
        assert!(found.next().is_none(), "header {name} appears twice");
        first
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The raw response with the date blanked out, for comparisons.
    pub fn normalized(&self) -> Vec<u8> {
        let mut raw = self.raw.clone();
        if let Some(at) = find(&raw, b"\r\nDate: ") {
            let start = at + 8;
            for b in &mut raw[start..start + 29] {
                *b = b'#';
            }
        }
        raw
    }
}

/// How reading from a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The server closed: end of file.
    Eof,
    /// The server closed with unread input: a reset.
    Reset,
    /// Nothing came within [`PATIENCE`].
    TimedOut,
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A blocking HTTP client connection with a read buffer.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`; a server that closed early may make this fail.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).expect("send a request");
    }

    /// Reads more bytes into the buffer.
    fn fill(&mut self) -> Result<(), End> {
        let mut chunk = [0; 16 * 1024];
        let read = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match read {
            Ok(0) => Err(End::Eof),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Err(End::Reset),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(End::TimedOut)
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// The next response, or how the connection ended before one was
    /// complete. `head_only`: the request was HEAD, the response has no
    /// body whatever its `Content-Length` says.
    pub fn try_response(&mut self, head_only: bool) -> Result<Response, End> {
        loop {
            if let Some(r) = self.parse_one(head_only) {
                return Ok(r);
            }
            self.fill()?;
        }
    }

    fn parse_one(&mut self, head_only: bool) -> Option<Response> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let head_len = match res.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(e) => panic!(
                "the server sent a malformed response ({e}): {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        };
        let code = res.code.expect("status code");
        let reason = res.reason.unwrap_or("").to_owned();
        let headers: Vec<(String, String)> = res
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).expect("ASCII header value"),
                )
            })
            .collect();
        let body_len = if head_only || code / 100 == 1 {
            0
        } else {
            let cl = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("response without Content-Length: {headers:?}"));
            cl.parse::<usize>().expect("numeric Content-Length")
        };
        if self.buf.len() < head_len + body_len {
            return None;
        }
        let raw: Vec<u8> = self.buf.drain(..head_len + body_len).collect();
        Some(Response {
            code,
            reason,
            headers,
            body: raw[head_len..].to_vec(),
            raw,
        })
    }

    /// The next response; panics if the connection ends first.
    pub fn response(&mut self) -> Response {
        match self.try_response(false) {
            Ok(r) => r,
            Err(end) => panic!(
                "connection ended ({end:?}) before a complete response; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Sends `request` and reads one response.
    pub fn exchange(&mut self, request: &[u8]) -> Response {
        self.send(request);
        self.response()
    }

    /// Reads until the server closes; the server must send nothing more.
    /// Returns how it ended (never [`End::TimedOut`]: that panics).
    pub fn expect_closed(&mut self) -> End {
        loop {
            match self.fill() {
                Ok(()) => {}
                Err(End::TimedOut) => panic!(
                    "the server did not close the connection in {PATIENCE:?}; unread: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Err(end) => {
                    assert!(
                        self.buf.is_empty(),
                        "unexpected bytes before the close: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return end;
                }
            }
        }
    }

    /// Every response until the server closes, and how it closed. The
    /// bytes after the last complete response must be none.
    pub fn responses_until_close(&mut self) -> (Vec<Response>, End) {
        let mut all = Vec::new();
        loop {
            match self.try_response(false) {
                Ok(r) => all.push(r),
                Err(End::TimedOut) => panic!(
                    "the server neither answered nor closed in {PATIENCE:?}; got {} responses, \
                     unread: {:?}",
                    all.len(),
                    String::from_utf8_lossy(&self.buf)
                ),
                Err(end) => {
                    assert!(
                        self.buf.is_empty(),
                        "a truncated response before the close: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return (all, end);
                }
            }
        }
    }
}

/// A plain GET for `path` with a Host header.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// Checks the shape of a 200 greeting.
pub fn assert_hello(r: &Response) {
    assert_eq!(
        r.code,
        200,
        "status of {:?}",
        String::from_utf8_lossy(&r.raw)
    );
    assert_eq!(r.reason, "OK");
    assert_eq!(r.body, b"Hello, world!");
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("server"), Some("tripoll"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let date = r.header("date").expect("a Date header");
    assert!(parse_imf_fixdate(date).is_some(), "malformed Date {date:?}");
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds
/// since the epoch, checking every field, the weekday included. Written
/// independently of the server's calendar: it counts days year by year.
pub fn parse_imf_fixdate(s: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29
        || &s[3..5] != ", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &s[25..] != " GMT"
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as u64 + 1;
    let year = num(12..16)?;
    let (hh, mm, ss) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if year < 1970 || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let month_len = |y: u64, m: u64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 || day > month_len(year, month) {
        return None;
    }
    let mut days = 0;
    for y in 1970..year {
        days += if leap(y) { 366 } else { 365 };
    }
    for m in 1..month {
        days += month_len(year, m);
    }
    days += day - 1;
    if DAYS[(days % 7) as usize] != &s[..3] {
        return None;
    }
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}
