//! What the two reference HTTP servers share: the lab http server's response
//! bytes with a `Date` rendered once a second, answering every complete
//! request in a buffer, and the command line. Each server keeps only its
//! event loop.

use std::io;
use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli;
use crate::http::date;

/// How much a read asks for at once.
pub const READ_CHUNK: usize = 8 * 1024;
/// The longest a request head may be before the connection is closed.
pub const MAX_INPUT: usize = 64 * 1024;

/// The http example's response to a GET, the date in the middle.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: tripoll\r\nContent-Type: text/plain\r\n\
Content-Length: 13\r\nDate: ";
const TAIL: &[u8] = b"\r\n\r\nHello, world!";

/// The whole response, re-rendered when the second changes.
pub struct Response {
    pub bytes: Vec<u8>,
    second: u64,
}

impl Default for Response {
    fn default() -> Response {
        Response::new()
    }
}

impl Response {
    pub fn new() -> Response {
        let mut r = Response {
            bytes: Vec::new(),
            second: u64::MAX,
        };
        r.refresh();
        r
    }

    /// Renders the date again if the second changed; returns the time to
    /// the next second.
    pub fn refresh(&mut self) -> Duration {
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

/// Answers every complete request in `inbuf[..*filled]` with `response`
/// (appended to `out`) and keeps the unfinished rest at the start of
/// `inbuf`. A malformed request is an error: the caller closes.
pub fn answer(
    inbuf: &mut [u8],
    filled: &mut usize,
    out: &mut Vec<u8>,
    response: &[u8],
) -> io::Result<()> {
    let mut pos = 0;
    while pos < *filled {
        let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); 16];
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(&inbuf[pos..*filled], &mut headers) {
            Ok(httparse::Status::Complete(len)) => {
                pos += len;
                out.extend_from_slice(response);
            }
            Ok(httparse::Status::Partial) => break,
            Err(_) => return Err(io::ErrorKind::InvalidData.into()),
        }
    }
    inbuf.copy_within(pos..*filled, 0);
    *filled -= pos;
    Ok(())
}

/// Parses `--port PORT` (default 8080) and `--help` with the lab's
/// [`Args`](crate::cli::Args), runs `serve` on the port, and exits 1 with
/// the error if it returns one.
pub fn main(prog: &'static str, usage: &'static str, serve: impl FnOnce(u16) -> io::Result<()>) {
    let mut args = cli::Args::from_env(prog, usage);
    let mut port = 8080;
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "-h" | "--help" => args.help(),
            "--port" => port = args.value(&flag, cli::parse_port),
            _ => args.unknown(&flag),
        }
    }
    if let Err(e) = serve(port) {
        cli::die(prog, e);
    }
}
