//! HTTP/1.x request heads in, canned responses out.
//!
//! Parsing is `httparse`'s; this module adds what it leaves to the server:
//! limits, the meaning of the headers that frame a message
//! (`Content-Length`, `Transfer-Encoding`, `Connection`, `Host`, `Expect`),
//! and the status to answer with when a request cannot be served.
//!
//! Decisions, each one a choice RFC 7230/7231 allows:
//!
//! - A head longer than the limit is refused with 431, or 414 when the
//!   request line alone is that long (as nginx does); more than
//!   [`MAX_HEADERS`] header fields is 431 too.
//! - httparse accepts only `HTTP/1.0` and `HTTP/1.1` and reports anything
//!   else in the version's place as a version error. The request line is
//!   then inspected: three fields whose third is well-formed
//!   (`HTTP/` digit, optionally `.` digit) is a version this server does not
//!   speak, 505 (also `HTTP/1.2`, which a server could serve as 1.1);
//!   anything else there (`http/1.1`, `HTTP/1.1x`, a fourth field) is 400.
//! - A request body is framed by `Content-Length` only, read and discarded.
//!   A value that is not all digits, does not fit 64 bits, or differs
//!   between two `Content-Length` fields is 400; a body above the limit is
//!   413. `Transfer-Encoding` (chunked or not) is 501 Not Implemented, and
//!   400 together with `Content-Length` (a smuggling attempt). Both close
//!   the connection: the end of the body is unknown.
//! - HTTP/1.1 without exactly one `Host` field is 400 (RFC 7230 §5.4).
//! - `Expect: 100-continue` on an HTTP/1.1 request with a body gets an
//!   interim `100 Continue`; any other expectation is 417.
//! - GET, HEAD and POST get the greeting (HEAD without the body); any other
//!   well-formed method gets 501 and the connection stays usable. The target
//!   must be ASCII and in origin form (`/...`), absolute form
//!   (`http://...`) or `*`; anything else is 400.
//! - Bare LF line ends are accepted (RFC 7230 §3.5 allows it, and
//!   httparse does), as are empty lines before a request line.

use std::mem::MaybeUninit;

use crate::date::DATE_LEN;

/// Header fields a request may have.
pub const MAX_HEADERS: usize = 64;

/// The body of every successful response.
pub const GREETING: &[u8] = b"Hello, world!";

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What a request may weigh.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes from the request line to the blank line after the headers.
    pub max_head: usize,
    /// Bytes of a request body.
    pub max_body: u64,
}

/// The statuses this server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    const ALL: [Status; 9] = [
        Status::Ok,
        Status::BadRequest,
        Status::RequestTimeout,
        Status::PayloadTooLarge,
        Status::UriTooLong,
        Status::ExpectationFailed,
        Status::HeaderFieldsTooLarge,
        Status::NotImplemented,
        Status::VersionNotSupported,
    ];

    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::RequestTimeout => 408,
            Status::PayloadTooLarge => 413,
            Status::UriTooLong => 414,
            Status::ExpectationFailed => 417,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::VersionNotSupported => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::RequestTimeout => "Request Timeout",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::ExpectationFailed => "Expectation Failed",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whether the connection stays open after a response, and how the
/// response says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// HTTP/1.1's default: no `Connection` header.
    KeepAlive,
    /// An HTTP/1.0 client asked to keep the connection: `Connection:
    /// keep-alive`.
    KeepAlive10,
    /// `Connection: close`, then the server closes.
    Close,
}

impl Persist {
    const ALL: [Persist; 3] = [Persist::KeepAlive, Persist::KeepAlive10, Persist::Close];

    fn header(self) -> &'static str {
        match self {
            Persist::KeepAlive => "",
            Persist::KeepAlive10 => "Connection: keep-alive\r\n",
            Persist::Close => "Connection: close\r\n",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A request head the server can answer.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// Bytes of the head, blank line included.
    pub len: usize,
    pub status: Status,
    /// HEAD: the response has no body.
    pub head_only: bool,
    pub persist: Persist,
    /// Bytes of body that follow the head, to be discarded.
    pub body: u64,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// What the bytes at the start of a buffer are.
#[derive(Clone, Copy, Debug)]
pub enum Parsed {
    /// The start of a head; more bytes are needed.
    Partial,
    Request(Request),
    /// Not a request this server can answer: reply with the status and
    /// close the connection.
    Reject(Status),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8], limits: Limits) -> Parsed {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) if len > limits.max_head => {
            Parsed::Reject(too_large(buf, limits.max_head))
        }
        Ok(httparse::Status::Complete(len)) => examine(&req, len, limits),
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
            Parsed::Reject(too_large(buf, limits.max_head))
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => Parsed::Reject(Status::HeaderFieldsTooLarge),
        Err(httparse::Error::Version) => Parsed::Reject(version_status(buf)),
        Err(_) => Parsed::Reject(Status::BadRequest),
    }
}

/// The request line, after any empty lines before it, without its line
/// end (or up to the end of `buf` if it has none yet).
fn request_line(buf: &[u8]) -> (&[u8], bool) {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let line = &rest[..end];
            (line.strip_suffix(b"\r").unwrap_or(line), true)
        }
        None => (rest, false),
    }
}

/// 414 when the request line alone passes the limit, 431 otherwise; 400
/// when there is no request line at all, only empty lines.
fn too_large(buf: &[u8], max_head: usize) -> Status {
    let (line, ended) = request_line(buf);
    if line.is_empty() {
        Status::BadRequest
    } else if line.len() > max_head || (!ended && buf.len() > max_head) {
        Status::UriTooLong
    } else {
        Status::HeaderFieldsTooLarge
    }
}

/// After httparse refused the version: 505 for a well-formed version it
/// does not speak, 400 for anything else.
fn version_status(buf: &[u8]) -> Status {
    let (line, _) = request_line(buf);
    let mut fields = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Status::BadRequest;
    };
    if method.is_empty() || target.is_empty() {
        return Status::BadRequest;
    }
    let well_formed = match version.strip_prefix(b"HTTP/") {
        Some([major]) => major.is_ascii_digit(),
        Some([major, b'.', minor]) => major.is_ascii_digit() && minor.is_ascii_digit(),
        _ => false,
    };
    if well_formed {
        Status::VersionNotSupported
    } else {
        Status::BadRequest
    }
}

fn valid_target(target: &str) -> bool {
    if !target.is_ascii() {
        return false;
    }
    let b = target.as_bytes();
    let starts_with =
        |prefix: &[u8]| b.len() > prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix);
    b.first() == Some(&b'/') || target == "*" || starts_with(b"http://") || starts_with(b"https://")
}

/// A `Content-Length` value: digits only, fitting 64 bits.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// `item` without the spaces and tabs around it.
fn trim_ows(item: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = item.iter().position(|b| !ows(b)).unwrap_or(item.len());
    let end = item.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &item[start..end]
}

/// Whether a comma-separated header value lists `token`.
fn lists(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_ows(item).eq_ignore_ascii_case(token))
}

/// The framing and semantics of a complete, syntactically valid head.
fn examine(req: &httparse::Request<'_, '_>, len: usize, limits: Limits) -> Parsed {
    let reject = Parsed::Reject;
    let http10 = req.version == Some(0);
    let (status, head_only) = match req.method.unwrap_or("") {
        "GET" | "POST" => (Status::Ok, false),
        "HEAD" => (Status::Ok, true),
        _ => (Status::NotImplemented, false),
    };
    if !valid_target(req.path.unwrap_or("")) {
        return reject(Status::BadRequest);
    }

    let mut body: Option<u64> = None;
    let mut chunked = false;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(n) = content_length(h.value) else {
                return reject(Status::BadRequest);
            };
            if body.is_some_and(|prev| prev != n) {
                return reject(Status::BadRequest);
            }
            body = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= lists(h.value, b"close");
            keep_alive |= lists(h.value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"expect") {
            if !h.value.eq_ignore_ascii_case(b"100-continue") {
                return reject(Status::ExpectationFailed);
            }
            expect_continue = !http10;
        }
    }
    if chunked {
        return reject(if body.is_some() {
            Status::BadRequest
        } else {
            Status::NotImplemented
        });
    }
    if hosts > 1 || (hosts == 0 && !http10) {
        return reject(Status::BadRequest);
    }
    let body = body.unwrap_or(0);
    if body > limits.max_body {
        return reject(Status::PayloadTooLarge);
    }
    let persist = if close {
        Persist::Close
    } else if !http10 {
        Persist::KeepAlive
    } else if keep_alive {
        Persist::KeepAlive10
    } else {
        Persist::Close
    };
    Parsed::Request(Request {
        len,
        status,
        head_only,
        persist,
        body,
        expect_continue: expect_continue && body > 0,
    })
}

/// One status's response, split around the date.
struct Canned {
    /// Status line and headers up to `Date: `, one per [`Persist`].
    before_date: [Vec<u8>; 3],
    /// The end of the head and the body.
    after_date: Vec<u8>,
    /// The end of the head alone, for HEAD.
    after_date_no_body: &'static [u8],
}

/// Every response this server sends, rendered once at start-up but for the
/// date, so a reply is three copies.
pub struct Responses {
    canned: Vec<Canned>,
}

impl Responses {
    pub fn new() -> Responses {
        let canned = Status::ALL
            .iter()
            .map(|&status| {
                let body: Vec<u8> = match status {
                    Status::Ok => GREETING.to_vec(),
                    other => format!("{}\n", other.reason()).into_bytes(),
                };
                let before_date = Persist::ALL.map(|persist| {
                    format!(
                        "HTTP/1.1 {} {}\r\nServer: tripoll\r\nContent-Type: text/plain\r\n\
                         Content-Length: {}\r\n{}Date: ",
                        status.code(),
                        status.reason(),
                        body.len(),
                        persist.header()
                    )
                    .into_bytes()
                });
                let mut after_date = b"\r\n\r\n".to_vec();
                after_date.extend_from_slice(&body);
                Canned {
                    before_date,
                    after_date,
                    after_date_no_body: b"\r\n\r\n",
                }
            })
            .collect();
        Responses { canned }
    }

    /// Appends the response for `status` to `out`.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        status: Status,
        persist: Persist,
        head_only: bool,
        date: &[u8; DATE_LEN],
    ) {
        let c = &self.canned[status.index()];
        out.extend_from_slice(&c.before_date[persist.index()]);
        out.extend_from_slice(date);
        out.extend_from_slice(if head_only {
            c.after_date_no_body
        } else {
            &c.after_date
        });
    }
}
