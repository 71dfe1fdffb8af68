//! HTTP/1.x request heads in, canned responses out.
//!
//! One pass over the bytes of a head checks its syntax (RFC 9112, with the
//! same rules and the same points of refusal as `httparse` 1.x, which this
//! server used before: the bytes a method, a target, a field name and a
//! field value may hold, line ends, at most [`MAX_HEADERS`] fields) and
//! takes in the meaning of the fields that matter as they go by (`Host`,
//! `Content-Length`, `Transfer-Encoding`, `Connection`, `Expect`); nothing
//! is copied, nothing is decoded as UTF-8 unless the target holds non-ASCII
//! bytes. Then come the limits and the status to answer with when a
//! request cannot be served.
//!
//! Decisions, each one a choice RFC 7230/7231 allows:
//!
//! - A head longer than the limit is refused with 431, or 414 when the
//!   request line alone is that long (as nginx does); more than
//!   [`MAX_HEADERS`] header fields is 431 too.
//! - Only `HTTP/1.0` and `HTTP/1.1` are parsed; anything else in the
//!   version's place is a version error. The request line is
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
//! - HTTP/1.1 without exactly one `Host` field is 400 (RFC 7230 §5.4), and
//!   so is a `Host` that is not `uri-host [":" port]` (RFC 9112 §3.2): a
//!   reg-name (unreserved, sub-delims, `%` and two hex digits) or an IP
//!   literal in brackets, then optionally `:` and digits. An empty `Host`
//!   is allowed (RFC 9110 §7.2).
//! - `Expect: 100-continue` on an HTTP/1.1 request with a body gets an
//!   interim `100 Continue`; any other expectation is 417.
//! - GET, HEAD and POST get the greeting (HEAD without the body); any other
//!   well-formed method gets 501 and the connection stays usable. The target
//!   must be ASCII and in origin form (`/...`), absolute form
//!   (`http://...`) or `*`; anything else is 400.
//! - Bare LF line ends are accepted (RFC 7230 §3.5 allows it), as are
//!   empty lines before a request line.

use std::cell::RefCell;

use super::date::DATE_LEN;

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
///
/// The answer does not depend on how the bytes arrived: only the first
/// `max_head` bytes are judged (a fault beyond them is the size's, not the
/// byte's), and a version is judged once its line has ended.
pub fn parse(buf: &[u8], limits: Limits) -> Parsed {
    let window = &buf[..buf.len().min(limits.max_head)];
    let partial = || {
        if buf.len() > limits.max_head {
            // One byte past the limit decides 414 or 431, whatever follows.
            Parsed::Reject(too_large(&buf[..=limits.max_head], limits.max_head))
        } else {
            Parsed::Partial
        }
    };
    match scan(window) {
        Ok(head) => head.judge(limits),
        Err(Stop::Partial) => partial(),
        // `HTTP/0.` may still become `HTTP/0.9` (505) or `HTTP/0.x` (400):
        // wait for the line's end while the version could be well formed.
        Err(Stop::Version) if !request_line(window).1 && may_be_version(window) => partial(),
        Err(Stop::Version) => Parsed::Reject(version_status(window)),
        Err(Stop::TooManyHeaders) => Parsed::Reject(Status::HeaderFieldsTooLarge),
        Err(Stop::Invalid) => Parsed::Reject(Status::BadRequest),
    }
}

/// Why [`scan`] stopped before the end of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The bytes end before the head does.
    Partial,
    /// A byte the syntax does not allow.
    Invalid,
    /// Something other than `HTTP/1.0` or `HTTP/1.1` in the version's place.
    Version,
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
}

// Byte classes, one bit each, looked up in `CLASS`.
/// tchar (RFC 9110 §5.6.2): a method or a field name.
const TOKEN: u8 = 1;
/// What a request target may hold: every visible byte and obs-text.
const TARGET: u8 = 2;
/// A field value: HTAB, SP, visible bytes, obs-text.
const VALUE: u8 = 4;
/// unreserved and sub-delims (RFC 3986): a reg-name without `%`.
const HOST: u8 = 8;
/// [`HOST`] and `:`: inside the brackets of an IP literal.
const LITERAL: u8 = 16;
/// A port's digits.
const DIGIT: u8 = 32;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut c = 0;
        if alnum
            || matches!(b, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+')
            || matches!(b, b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
        {
            c |= TOKEN;
        }
        if b >= b'!' && b != 0x7f {
            c |= TARGET;
        }
        if b == b'\t' || (b >= b' ' && b != 0x7f) {
            c |= VALUE;
        }
        if alnum
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || matches!(
                b,
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b','
            )
            || matches!(b, b';' | b'=')
        {
            c |= HOST | LITERAL;
        }
        if b == b':' {
            c |= LITERAL;
        }
        if b.is_ascii_digit() {
            c |= DIGIT;
        }
        t[i] = c;
        i += 1;
    }
    t
}

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

/// What the scan of a complete head found, for [`Head::judge`].
#[derive(Debug)]
struct Head {
    len: usize,
    http10: bool,
    status: Status,
    head_only: bool,
    /// The first problem in the target or a field, in the order they come.
    reject: Option<Status>,
    body: Option<u64>,
    chunked: bool,
    hosts: u32,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Head {
    fn reject(&mut self, status: Status) {
        self.reject.get_or_insert(status);
    }

    /// The meaning of one header field other than `Host` (which [`scan`]
    /// takes in itself); `name` is a token, `value` is untrimmed at its
    /// end.
    #[inline]
    fn field(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            6 if name.eq_ignore_ascii_case(b"expect") => {
                let value = trim_end(value);
                if value.eq_ignore_ascii_case(b"100-continue") {
                    self.expect_continue = !self.http10;
                } else {
                    self.reject(Status::ExpectationFailed);
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                let value = trim_end(value);
                self.close |= lists(value, b"close");
                self.keep_alive |= lists(value, b"keep-alive");
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                match content_length(trim_end(value)) {
                    Some(n) if self.body.is_none_or(|prev| prev == n) => self.body = Some(n),
                    _ => self.reject(Status::BadRequest),
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => self.chunked = true,
            _ => {}
        }
    }

    /// The framing and semantics of a complete, syntactically valid head.
    fn judge(self, limits: Limits) -> Parsed {
        if let Some(status) = self.reject {
            return Parsed::Reject(status);
        }
        if self.chunked {
            return Parsed::Reject(if self.body.is_some() {
                Status::BadRequest
            } else {
                Status::NotImplemented
            });
        }
        if self.hosts > 1 || (self.hosts == 0 && !self.http10) {
            return Parsed::Reject(Status::BadRequest);
        }
        let body = self.body.unwrap_or(0);
        if body > limits.max_body {
            return Parsed::Reject(Status::PayloadTooLarge);
        }
        let persist = if self.close {
            Persist::Close
        } else if !self.http10 {
            Persist::KeepAlive
        } else if self.keep_alive {
            Persist::KeepAlive10
        } else {
            Persist::Close
        };
        Parsed::Request(Request {
            len: self.len,
            status: self.status,
            head_only: self.head_only,
            persist,
            body,
            expect_continue: self.expect_continue && body > 0,
        })
    }
}

/// One pass over a request head: the syntax of RFC 9112 as httparse 1.x
/// accepts it (the same bytes in the same places, the same point of
/// refusal), and the meaning of each field as it goes by.
fn scan(buf: &[u8]) -> Result<Head, Stop> {
    // Empty lines before the request line.
    let mut i = 0;
    loop {
        match buf.get(i) {
            Some(b'\r') | Some(b'\n') => i = line_end(buf, i)?,
            Some(_) => break,
            None => return Err(Stop::Partial),
        }
    }

    // The method: one or more tchars, then one space.
    let (status, head_only) = if word4(buf, i) == Some(u32::from_le_bytes(*b"GET ")) {
        i += 4;
        (Status::Ok, false)
    } else {
        let start = i;
        i = skip(buf, i, TOKEN);
        space_after(buf, start, i)?;
        i += 1;
        match &buf[start..i - 1] {
            b"GET" | b"POST" => (Status::Ok, false),
            b"HEAD" => (Status::Ok, true),
            _ => (Status::NotImplemented, false),
        }
    };

    // The target: one or more visible bytes, then one space.
    let start = i;
    let (end, ascii) = skip_target(buf, i);
    i = end;
    space_after(buf, start, i)?;
    let target = &buf[start..i];
    // As httparse: a target that is not UTF-8 is refused here, one that is
    // but is not ASCII once the head is complete (by `valid_target`).
    if !ascii && std::str::from_utf8(target).is_err() {
        return Err(Stop::Invalid);
    }
    i += 1;

    // The version, then the line end.
    const HTTP11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
    const HTTP10: u64 = u64::from_le_bytes(*b"HTTP/1.0");
    let http10 = match word(buf, i) {
        Some(HTTP11) => false,
        Some(HTTP10) => true,
        Some(_) => return Err(Stop::Version),
        // Fewer than eight bytes: wait for more while they could still
        // be one of the two.
        None if b"HTTP/1.".starts_with(&buf[i..]) => return Err(Stop::Partial),
        None => return Err(Stop::Version),
    };
    i = line_end(buf, i + 8)?;

    let mut head = Head {
        len: 0,
        http10,
        status,
        head_only,
        reject: None,
        body: None,
        chunked: false,
        hosts: 0,
        close: false,
        keep_alive: false,
        expect_continue: false,
    };
    // Origin form, the usual one, first.
    if !(ascii && (target[0] == b'/' || valid_target(target))) {
        head.reject(Status::BadRequest);
    }

    let mut fields = 0;
    loop {
        // A line end here ends the head.
        match buf.get(i) {
            Some(b'\r') | Some(b'\n') => {
                head.len = line_end(buf, i)?;
                return Ok(head);
            }
            Some(_) => {}
            None => return Err(Stop::Partial),
        }
        // The name: one or more tchars, then the colon; `Host:` at once.
        let start = i;
        let host = word(buf, i).is_some_and(|x| (x | 0x2020_2020) & 0xff_ffff_ffff == HOST_COLON);
        if host {
            i += 4;
        } else {
            i = skip(buf, i, TOKEN);
            match buf.get(i) {
                Some(b':') if i > start => {}
                Some(_) => return Err(Stop::Invalid),
                None => return Err(Stop::Partial),
            }
        }
        let name = &buf[start..i];
        // Spaces and tabs, then the value up to the line end.
        i += 1;
        while let Some(b' ') | Some(b'\t') = buf.get(i) {
            i += 1;
        }
        let start = i;
        if host || is_host(name) {
            // The usual host[:port] is checked as it is scanned; anything
            // else is scanned as a value and checked after.
            let mut end = skip(buf, i, HOST);
            if buf.get(end) == Some(&b':') {
                end = skip_digits(buf, end + 1);
            }
            let checked = matches!(buf.get(end), Some(b'\r') | Some(b'\n'));
            i = if checked { end } else { skip_value(buf, end) };
            let value = &buf[start..i];
            i = line_end(buf, i)?;
            if fields == MAX_HEADERS {
                return Err(Stop::TooManyHeaders);
            }
            fields += 1;
            head.hosts += 1;
            if !checked && !valid_host(trim_end(value)) {
                head.reject(Status::BadRequest);
            }
            continue;
        }
        i = skip_value(buf, i);
        let value = &buf[start..i];
        i = line_end(buf, i)?;
        if fields == MAX_HEADERS {
            return Err(Stop::TooManyHeaders);
        }
        fields += 1;
        head.field(name, value);
    }
}

/// Past the `\r\n` or `\n` at `i`.
#[inline]
fn line_end(buf: &[u8], i: usize) -> Result<usize, Stop> {
    match buf.get(i) {
        Some(b'\n') => Ok(i + 1),
        Some(b'\r') => match buf.get(i + 1) {
            Some(b'\n') => Ok(i + 2),
            Some(_) => Err(Stop::Invalid),
            None => Err(Stop::Partial),
        },
        Some(_) => Err(Stop::Invalid),
        None => Err(Stop::Partial),
    }
}

/// The space that must end the non-empty field `buf[start..end]`.
#[inline]
fn space_after(buf: &[u8], start: usize, end: usize) -> Result<(), Stop> {
    match buf.get(end) {
        Some(b' ') if end > start => Ok(()),
        Some(_) => Err(Stop::Invalid),
        None => Err(Stop::Partial),
    }
}

/// The first index from `i` whose byte is not of `class`.
#[inline]
fn skip(buf: &[u8], mut i: usize, class: u8) -> usize {
    while i < buf.len() && is(buf[i], class) {
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes from `i`, little-endian, if there are eight.
#[inline]
fn word(buf: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = buf.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// The high bit of each byte of `x` below `n` (at most 0x80) is set. A
/// borrow can also mark bytes above a marked one, never below it, so the
/// lowest mark is exact.
#[inline]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH_BITS
}

/// Four bytes from `i`, little-endian, if there are four.
#[inline]
fn word4(buf: &[u8], i: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(i..i.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Like [`below`], for bytes equal to DEL (0x7f).
#[inline]
fn del(x: u64) -> u64 {
    below(x ^ (ONES * 0x7f), 1)
}

/// [`skip`] for [`TARGET`], eight bytes at a time, and whether every byte
/// it passed is ASCII.
#[inline]
fn skip_target(buf: &[u8], mut i: usize) -> (usize, bool) {
    let mut seen = 0;
    while let Some(x) = word(buf, i) {
        let stop = below(x, b'!') | del(x);
        if stop != 0 {
            // The bytes before the first mark (at most seven of them).
            let n = stop.trailing_zeros() / 8;
            seen |= x & ((1u64 << (8 * n)) - 1);
            i += n as usize;
            break;
        }
        seen |= x;
        i += 8;
    }
    let start = i;
    let end = skip(buf, i, TARGET);
    let tail_ascii = buf[start..end].iter().all(|&b| b < 0x80);
    (end, seen & HIGH_BITS == 0 && tail_ascii)
}

/// `Host:` in the low five bytes of a word, the name in lower case.
const HOST_COLON: u64 = u64::from_le_bytes(*b"host:\0\0\0");

/// The high bit of each byte of `x` above `n` is set (exactly).
#[inline]
fn above(x: u64, n: u8) -> u64 {
    ((x & !HIGH_BITS).wrapping_add(ONES * u64::from(0x7f - n)) | x) & HIGH_BITS
}

/// [`skip`] for [`DIGIT`], eight bytes at a time.
#[inline]
fn skip_digits(buf: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(buf, i) {
        let stop = below(x, b'0') | above(x, b'9');
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    skip(buf, i, DIGIT)
}

/// [`skip`] for [`VALUE`], eight bytes at a time.
#[inline]
fn skip_value(buf: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(buf, i) {
        // Controls (a tab among them: the byte-wise loop below takes it)
        // and DEL.
        let stop = below(x, b' ') | del(x);
        if stop != 0 {
            i += (stop.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    skip(buf, i, VALUE)
}

/// Whether a field name (a token) is `Host`, in any letter case: with
/// bit 5 set, a tchar is a lower-case letter only if it was a letter.
#[inline]
fn is_host(name: &[u8]) -> bool {
    match <[u8; 4]>::try_from(name) {
        Ok(b) => u32::from_le_bytes(b) | 0x2020_2020 == u32::from_le_bytes(*b"host"),
        Err(_) => false,
    }
}

/// `value` without the spaces and tabs at its end.
#[inline]
fn trim_end(value: &[u8]) -> &[u8] {
    let mut end = value.len();
    while end > 0 && matches!(value[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    &value[..end]
}

/// A `Host` value (RFC 9112 §3.2, RFC 3986 §3.2.2): empty, or a host (a
/// reg-name, which covers IPv4 addresses, or an IP literal in brackets)
/// and an optional `:` and port digits.
fn valid_host(value: &[u8]) -> bool {
    let mut i;
    if value.first() == Some(&b'[') {
        // IPv6address / IPvFuture: unreserved, sub-delims and colons.
        i = skip(value, 1, LITERAL);
        if i == 1 || value.get(i) != Some(&b']') {
            return false;
        }
        i += 1;
    } else {
        // reg-name: unreserved, sub-delims and percent-encoded octets.
        i = skip(value, 0, HOST);
        while value.get(i) == Some(&b'%') {
            match value.get(i + 1..i + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {}
                _ => return false,
            }
            i = skip(value, i + 3, HOST);
        }
    }
    match value.get(i) {
        None => true,
        Some(b':') => value[i + 1..].iter().all(|b| b.wrapping_sub(b'0') < 10),
        Some(_) => false,
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

/// Whether an unfinished request line could still end as
/// `METHOD TARGET HTTP/d.d`: no fourth field, and a version that is a prefix
/// of the well-formed shape (or all of it, until the line's end shows
/// whether more follows).
fn may_be_version(buf: &[u8]) -> bool {
    let (line, _) = request_line(buf);
    // A `\r` at the very end may still be followed by its `\n`.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = line.split(|&b| b == b' ');
    let (Some(_), Some(_), version, None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let Some(version) = version else {
        return true;
    };
    let shape: [fn(u8) -> bool; 8] = [
        |b| b == b'H',
        |b| b == b'T',
        |b| b == b'T',
        |b| b == b'P',
        |b| b == b'/',
        |b| b.is_ascii_digit(),
        |b| b == b'.',
        |b| b.is_ascii_digit(),
    ];
    version.len() <= shape.len() && version.iter().zip(shape).all(|(&b, ok)| ok(b))
}

/// After the scan refused the version: 505 for a well-formed version it
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

/// Origin form (`/...`), `*`, or absolute form (`http://...`,
/// `https://...`); `target` is ASCII.
#[inline]
fn valid_target(b: &[u8]) -> bool {
    let starts_with =
        |prefix: &[u8]| b.len() > prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix);
    b.first() == Some(&b'/') || b == b"*" || starts_with(b"http://") || starts_with(b"https://")
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

/// Every response this server sends, rendered whole at start-up, the date
/// included, and patched in place when the date changes: a reply is one
/// copy.
pub struct Responses {
    rendered: RefCell<Rendered>,
}

struct Rendered {
    /// The date the responses carry now.
    date: [u8; DATE_LEN],
    /// Every response, one after the other.
    bytes: Vec<u8>,
    /// Where each response is in `bytes` (start, end, where its date is),
    /// by [`Responses::slot`].
    spans: Vec<(usize, usize, usize)>,
}

impl Default for Responses {
    fn default() -> Responses {
        Responses::new()
    }
}

impl Responses {
    pub fn new() -> Responses {
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        let date = [b' '; DATE_LEN];
        for status in Status::ALL {
            let body: Vec<u8> = match status {
                Status::Ok => GREETING.to_vec(),
                other => format!("{}\n", other.reason()).into_bytes(),
            };
            for persist in Persist::ALL {
                for head_only in [false, true] {
                    let start = bytes.len();
                    bytes.extend_from_slice(
                        format!(
                            "HTTP/1.1 {} {}\r\nServer: tripoll\r\nContent-Type: text/plain\r\n\
                             Content-Length: {}\r\n{}Date: ",
                            status.code(),
                            status.reason(),
                            body.len(),
                            persist.header()
                        )
                        .as_bytes(),
                    );
                    let date_at = bytes.len();
                    bytes.extend_from_slice(&date);
                    bytes.extend_from_slice(b"\r\n\r\n");
                    if !head_only {
                        bytes.extend_from_slice(&body);
                    }
                    debug_assert_eq!(spans.len(), Responses::slot(status, persist, head_only));
                    spans.push((start, bytes.len(), date_at));
                }
            }
        }
        Responses {
            rendered: RefCell::new(Rendered { date, bytes, spans }),
        }
    }

    /// The length of the longest response: room for one more response in
    /// an output buffer is this much.
    pub fn longest(&self) -> usize {
        let r = self.rendered.borrow();
        r.spans
            .iter()
            .map(|&(start, end, _)| end - start)
            .max()
            .unwrap_or(0)
    }

    #[inline]
    fn slot(status: Status, persist: Persist, head_only: bool) -> usize {
        (status.index() * Persist::ALL.len() + persist.index()) * 2 + usize::from(head_only)
    }

    /// Appends the response for `status` to `out`.
    #[inline]
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        status: Status,
        persist: Persist,
        head_only: bool,
        date: &[u8; DATE_LEN],
    ) {
        let mut r = self.rendered.borrow_mut();
        if !same_date(&r.date, date) {
            r.set_date(date);
        }
        let (start, end, _) = r.spans[Responses::slot(status, persist, head_only)];
        out.extend_from_slice(&r.bytes[start..end]);
    }
}

impl Rendered {
    fn set_date(&mut self, date: &[u8; DATE_LEN]) {
        self.date = *date;
        for &(_, _, at) in &self.spans {
            self.bytes[at..at + DATE_LEN].copy_from_slice(date);
        }
    }
}

/// `a == b`, as four overlapping eight-byte words rather than a call to
/// `bcmp`: this runs for every response.
#[inline]
fn same_date(a: &[u8; DATE_LEN], b: &[u8; DATE_LEN]) -> bool {
    let w = |d: &[u8; DATE_LEN], at: usize| {
        let mut x = [0; 8];
        x.copy_from_slice(&d[at..at + 8]);
        u64::from_le_bytes(x)
    };
    [0, 8, 16, DATE_LEN - 8]
        .into_iter()
        .all(|at| w(a, at) == w(b, at))
}
