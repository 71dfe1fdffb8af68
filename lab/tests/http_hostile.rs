//! Hostile input against the `http` example: a table of malformed and
//! abusive requests, a byte-at-a-time slowloris, and a property test that
//! splits valid pipelined requests at arbitrary points. Each table case
//! gets the status it deserves (or a close), the server keeps serving a
//! well-behaved client all along, and nothing hangs: the servers run with
//! `--idle-timeout 1`, every read has a safety timeout.
//!
//! The table runs on every backend, one server each, its cases in
//! parallel threads; no assertion depends on timing.

mod common;
mod http_support;

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use http_support::{assert_hello, field, get, Client, End, Response, Server, PATIENCE};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// The servers' idle timeout here.
const IDLE: Duration = Duration::from_secs(1);

/// What the client does after writing a case's bytes.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Keeps its side open and waits.
    Wait,
    /// Shuts down its write side.
    HalfClose,
}

/// What must come back.
#[derive(Clone, Debug)]
enum Expect {
    /// This status with `Connection: close`, then the close.
    Refused(u16),
    /// These statuses in order, then the close.
    Answers(&'static [u16]),
    /// This status, and the connection stays usable.
    Served(u16),
    /// The close with no answer, or a 408 and the close (an incomplete
    /// request cut at the idle timeout).
    Cut,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    then: Then,
    expect: Expect,
}

/// A request with `line` as its request line and these header lines, each
/// line ended by CRLF, and the blank line.
fn request(line: &str, headers: &[&str]) -> Vec<u8> {
    let mut s = format!("{line}\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// `prefix`, then the raw bytes of `raw` in the middle, then `suffix`.
fn with_bytes(prefix: &str, raw: &[u8], suffix: &str) -> Vec<u8> {
    let mut v = prefix.as_bytes().to_vec();
    v.extend_from_slice(raw);
    v.extend_from_slice(suffix.as_bytes());
    v
}

fn table() -> Vec<Case> {
    use Expect::*;
    use Then::*;
    let case = |name, bytes, expect| Case {
        name,
        bytes,
        then: Wait,
        expect,
    };
    let host = "Host: t";
    let many_headers: Vec<String> = (0..100).map(|i| format!("X-H{i}: v")).collect();
    let many_headers: Vec<&str> = many_headers.iter().map(String::as_str).collect();
    let heavy_headers: Vec<String> = (0..60)
        .map(|i| format!("X-H{i}: {}", "v".repeat(200)))
        .collect();
    let heavy_headers: Vec<&str> = heavy_headers.iter().map(String::as_str).collect();
    let big_value = format!("X-Big: {}", "a".repeat(9000));
    let long_uri = format!("GET /{} HTTP/1.1", "u".repeat(10_000));
    let mut tls_hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    tls_hello.extend((0..150u32).map(|i| (i * 7 + 3) as u8));
    let junk: Vec<u8> = (0..=255u8).rev().collect();

    vec![
        // The request line.
        case("garbage line", b"GARBAGE\r\n\r\n".to_vec(), Refused(400)),
        case("no version", b"GET /\r\n\r\n".to_vec(), Refused(400)),
        case("method only", b"GET\r\n\r\n".to_vec(), Refused(400)),
        case(
            "fourth field",
            request("GET / HTTP/1.1 x", &[host]),
            Refused(400),
        ),
        case(
            "two spaces",
            request("GET  / HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "space in target",
            request("GET /a b HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "( in method",
            request("G(T / HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "@ in method",
            request("GE@T / HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "NUL in method",
            with_bytes("G", b"\0", "ET / HTTP/1.1\r\nHost: t\r\n\r\n"),
            Refused(400),
        ),
        case(
            "NUL in target",
            with_bytes("GET /a", b"\0", "b HTTP/1.1\r\nHost: t\r\n\r\n"),
            Refused(400),
        ),
        case(
            "UTF-8 in target",
            request("GET /\u{e9} HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "0xFF in target",
            with_bytes("GET /", b"\xff", " HTTP/1.1\r\nHost: t\r\n\r\n"),
            Refused(400),
        ),
        case(
            "relative target",
            request("GET abc HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "ftp target",
            request("GET ftp://t/ HTTP/1.1", &[host]),
            Refused(400),
        ),
        case(
            "lowercase version",
            request("GET / http/1.1", &[host]),
            Refused(400),
        ),
        case(
            "version suffix",
            request("GET / HTTP/1.1x", &[host]),
            Refused(400),
        ),
        case("HTTP/2.0", request("GET / HTTP/2.0", &[host]), Refused(505)),
        case("HTTP/3", request("GET / HTTP/3", &[host]), Refused(505)),
        case("HTTP/1.2", request("GET / HTTP/1.2", &[host]), Refused(505)),
        case("HTTP/0.9", request("GET / HTTP/0.9", &[host]), Refused(505)),
        case(
            "h2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            Refused(505),
        ),
        case("TLS ClientHello", tls_hello, Refused(400)),
        case("binary junk", junk, Refused(400)),
        case("blank lines only", b"\r\n".repeat(6000), Refused(400)),
        case("huge URI", request(&long_uri, &[host]), Refused(414)),
        case("endless method", b"A".repeat(20_000), Refused(414)),
        // Header syntax.
        case(
            "no colon",
            request("GET / HTTP/1.1", &[host, "NoColon"]),
            Refused(400),
        ),
        case(
            "space before colon",
            request("GET / HTTP/1.1", &["Host : t"]),
            Refused(400),
        ),
        case(
            "empty name",
            request("GET / HTTP/1.1", &[host, ": x"]),
            Refused(400),
        ),
        case(
            "obs-fold",
            request("GET / HTTP/1.1", &[host, "X-A: a", " b"]),
            Refused(400),
        ),
        case(
            "NUL in value",
            with_bytes("GET / HTTP/1.1\r\nHost: t\r\nX-A: a", b"\0", "b\r\n\r\n"),
            Refused(400),
        ),
        case(
            "DEL in value",
            with_bytes("GET / HTTP/1.1\r\nHost: t\r\nX-A: a", b"\x7f", "b\r\n\r\n"),
            Refused(400),
        ),
        case(
            "control in name",
            with_bytes("GET / HTTP/1.1\r\nHost: t\r\nX", b"\x01", "A: b\r\n\r\n"),
            Refused(400),
        ),
        // Sizes.
        case(
            "one huge header",
            request("GET / HTTP/1.1", &[host, &big_value]),
            Refused(431),
        ),
        case(
            "100 headers",
            request("GET / HTTP/1.1", &many_headers),
            Refused(431),
        ),
        case(
            "12 KB of headers",
            request("GET / HTTP/1.1", &heavy_headers),
            Refused(431),
        ),
        // Framing.
        case(
            "negative length",
            request("POST / HTTP/1.1", &[host, "Content-Length: -1"]),
            Refused(400),
        ),
        case(
            "non-numeric length",
            request("POST / HTTP/1.1", &[host, "Content-Length: abc"]),
            Refused(400),
        ),
        case(
            "plus sign length",
            request("POST / HTTP/1.1", &[host, "Content-Length: +5"]),
            Refused(400),
        ),
        case(
            "length list",
            request("POST / HTTP/1.1", &[host, "Content-Length: 5, 5"]),
            Refused(400),
        ),
        case(
            "spaced length",
            request("POST / HTTP/1.1", &[host, "Content-Length: 1 0"]),
            Refused(400),
        ),
        case(
            "conflicting lengths",
            request(
                "POST / HTTP/1.1",
                &[host, "Content-Length: 5", "Content-Length: 6"],
            ),
            Refused(400),
        ),
        case(
            "overflowing length",
            request(
                "POST / HTTP/1.1",
                &[host, "Content-Length: 99999999999999999999999"],
            ),
            Refused(400),
        ),
        case(
            "body over the limit",
            request("POST / HTTP/1.1", &[host, "Content-Length: 2000000000"]),
            Refused(413),
        ),
        case(
            "chunked",
            request("POST / HTTP/1.1", &[host, "Transfer-Encoding: chunked"]),
            Refused(501),
        ),
        case(
            "chunked and length",
            request(
                "POST / HTTP/1.1",
                &[host, "Transfer-Encoding: chunked", "Content-Length: 3"],
            ),
            Refused(400),
        ),
        case("no Host", request("GET / HTTP/1.1", &[]), Refused(400)),
        case(
            "two Hosts",
            request("GET / HTTP/1.1", &[host, "Host: u"]),
            Refused(400),
        ),
        // RFC 9112 §3.2: a Host that is not uri-host [":" port] is 400.
        case(
            "space in Host",
            request("GET / HTTP/1.1", &["Host: a b"]),
            Refused(400),
        ),
        case(
            "slash in Host",
            request("GET / HTTP/1.1", &["Host: a/b"]),
            Refused(400),
        ),
        case(
            "letters in Host's port",
            request("GET / HTTP/1.1", &["Host: a:8x"]),
            Refused(400),
        ),
        case(
            "unclosed IP literal in Host",
            request("GET / HTTP/1.1", &["Host: [::1"]),
            Refused(400),
        ),
        case(
            "stray percent in Host",
            request("GET / HTTP/1.1", &["Host: a%zz"]),
            Refused(400),
        ),
        case(
            "Host with a port, an IP literal, an empty one",
            [
                request("GET / HTTP/1.1", &["Host: example.org:8080"]),
                request("GET / HTTP/1.1", &["Host: [::1]:80"]),
                request("GET / HTTP/1.1", &["Host: a%41-b_c~!$&'()*+,;="]),
                request("GET / HTTP/1.1", &["Host:", "Connection: close"]),
            ]
            .concat(),
            Answers(&[200, 200, 200, 200]),
        ),
        case(
            "unknown expectation",
            request(
                "POST / HTTP/1.1",
                &[host, "Expect: bogus", "Content-Length: 1"],
            ),
            Refused(417),
        ),
        // Sequences.
        case(
            "garbage after a good request",
            [get("/"), b"GARBAGE\r\n\r\n".to_vec()].concat(),
            Answers(&[200, 400]),
        ),
        case(
            "request after Connection: close",
            [
                request("GET / HTTP/1.1", &[host, "Connection: close"]),
                get("/"),
            ]
            .concat(),
            Answers(&[200]),
        ),
        case(
            "HTTP/1.0 then more",
            [b"GET / HTTP/1.0\r\n\r\n".to_vec(), get("/")].concat(),
            Answers(&[200]),
        ),
        // Accepted oddities.
        case(
            "bare LF",
            b"GET / HTTP/1.1\nHost: t\n\n".to_vec(),
            Served(200),
        ),
        case(
            "leading blank lines",
            [b"\r\n\r\n".to_vec(), get("/")].concat(),
            Served(200),
        ),
        case(
            "unknown method",
            request("BREW / HTTP/1.1", &[host]),
            Served(501),
        ),
        // Incomplete.
        case(
            "unterminated head",
            b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec(),
            Cut,
        ),
        case(
            "truncated body",
            [
                request("POST / HTTP/1.1", &[host, "Content-Length: 10"]),
                b"abc".to_vec(),
            ]
            .concat(),
            Cut,
        ),
        case("silence", Vec::new(), Cut),
        Case {
            name: "unterminated head, half-closed",
            bytes: b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec(),
            then: HalfClose,
            expect: Cut,
        },
    ]
}

/// Plays one case on a fresh connection; panics with the case's name if
/// the server's answer is wrong.
fn play(server_addr: std::net::SocketAddr, case: &Case) {
    let name = case.name;
    let mut c = Client::connect(server_addr);
    // A server that refused early may have closed before all of a long
    // case is written: only the answer counts.
    let _ = c.try_send(&case.bytes);
    if let Then::HalfClose = case.then {
        let _ = c.stream.shutdown(Shutdown::Write);
    }
    match &case.expect {
        Expect::Refused(code) => {
            let (responses, end) = c.responses_until_close();
            assert_eq!(responses.len(), 1, "{name}: {responses:?}");
            check_refusal(name, &responses[0], *code);
            assert!(matches!(end, End::Eof | End::Reset), "{name}");
        }
        Expect::Answers(codes) => {
            let (responses, _) = c.responses_until_close();
            let got: Vec<u16> = responses.iter().map(|r| r.code).collect();
            assert_eq!(&got, codes, "{name}");
            let last = responses.last().expect("at least one response");
            assert!(last.closes(), "{name}: the last answer says close");
            for r in &responses[..responses.len() - 1] {
                assert!(!r.closes(), "{name}: only the last answer closes");
            }
        }
        Expect::Served(code) => {
            let r = c.response();
            assert_eq!(
                r.code,
                *code,
                "{name}: {:?}",
                String::from_utf8_lossy(&r.raw)
            );
            assert!(!r.closes(), "{name}: the connection stays open");
            assert_hello(&c.exchange(&get("/next")));
        }
        Expect::Cut => {
            let (responses, end) = c.responses_until_close();
            match responses.as_slice() {
                [] => {}
                [r] => check_refusal(name, r, 408),
                more => panic!("{name}: expected at most a 408, got {more:?}"),
            }
            assert!(matches!(end, End::Eof | End::Reset), "{name}");
        }
    }
}

fn check_refusal(name: &str, r: &Response, code: u16) {
    assert_eq!(
        r.code,
        code,
        "{name}: {:?}",
        String::from_utf8_lossy(&r.raw)
    );
    assert!(r.closes(), "{name}: a refusal says Connection: close");
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str()),
        "{name}"
    );
}

/// A well-behaved client, in a thread, asking over one keep-alive
/// connection until told to stop; every answer must be the greeting.
struct GoodClient {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: thread::JoinHandle<()>,
}

impl GoodClient {
    fn start(addr: std::net::SocketAddr) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&served));
        let thread = thread::spawn(move || {
            let mut c = Client::connect(addr);
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                c.send(&get("/good"));
                match c.try_response(false) {
                    Ok(r) => assert_hello(&r),
                    // Only a client that was starved past the idle timeout
                    // (one second) may find its connection closed.
                    Err(End::Eof | End::Reset) if last.elapsed() > IDLE => {
                        c = Client::connect(addr);
                        continue;
                    }
                    Err(end) => panic!("the good client's connection ended: {end:?}"),
                }
                last = Instant::now();
                n.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
        });
        GoodClient {
            stop,
            served,
            thread,
        }
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits until it has been served `more` times after now.
    fn wait_for(&self, more: u64) {
        let target = self.served() + more;
        let deadline = Instant::now() + PATIENCE;
        while self.served() < target {
            assert!(!self.thread.is_finished(), "the good client failed");
            assert!(Instant::now() < deadline, "the good client is not served");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the good client failed");
        self.served.load(Ordering::Relaxed)
    }
}

fn hostile_table(backend: &str) {
    let server = Server::start(&["--backend", backend, "--idle-timeout", "1"]);
    let cases = table();
    assert!(cases.len() >= 30, "the table has {} cases", cases.len());
    let good = GoodClient::start(server.addr);
    good.wait_for(1);
    let addr = server.addr;
    thread::scope(|s| {
        let players: Vec<_> = cases
            .iter()
            .map(|case| (case.name, s.spawn(move || play(addr, case))))
            .collect();
        let mut failed = Vec::new();
        for (name, p) in players {
            if p.join().is_err() {
                failed.push(name);
            }
        }
        assert!(failed.is_empty(), "{backend}: cases failed: {failed:?}");
    });
    // Served during the table and after it.
    good.wait_for(3);
    let during = good.finish();
    assert!(during > 3);
    assert_hello(&server.connect().exchange(&get("/after")));
    let summary = server.stop();
    let refusals = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Refused(_)))
        .count() as u64;
    // Refusals plus the 400 after a good request and the 501.
    assert!(
        field(&summary, "error responses ") >= refusals + 2,
        "{summary}"
    );
    assert_eq!(field(&summary, "refused "), 0, "{summary}");
}

/// Slowloris: a head sent one byte at a time, never finished. Bytes keep
/// coming, but only complete requests renew the idle timeout, so the
/// server cuts it (with a 408); a good client is served meanwhile.
fn slowloris(backend: &str) {
    let server = Server::start(&["--backend", backend, "--idle-timeout", "1"]);
    let good = GoodClient::start(server.addr);
    let mut loris = server.connect();
    let mut writer = loris.stream.try_clone().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let cut_seen = Arc::clone(&cut);
    let trickle = thread::spawn(move || {
        let head = b"GET / HTTP/1.1\r\nHost: t\r\n";
        let header_bytes = b"X-Loris: a\r\n".iter().cycle();
        let mut sent = 0u64;
        for &b in head.iter().chain(header_bytes) {
            if cut_seen.load(Ordering::Relaxed)
                || std::io::Write::write_all(&mut writer, &[b]).is_err()
            {
                break;
            }
            sent += 1;
            thread::sleep(Duration::from_millis(20));
        }
        sent
    });
    good.wait_for(5);
    let (responses, end) = loris.responses_until_close();
    cut.store(true, Ordering::Relaxed);
    let sent = trickle.join().expect("trickle thread");
    assert!(sent > 0);
    match responses.as_slice() {
        [r] => check_refusal("slowloris", r, 408),
        other => panic!("slowloris: expected one 408, got {other:?}"),
    }
    assert!(matches!(end, End::Eof | End::Reset));
    good.wait_for(3);
    good.finish();
    let summary = server.stop();
    assert_eq!(field(&summary, "idle timeouts "), 1, "{summary}");
}

/// The table and slowloris on every backend of the one backend list.
macro_rules! per_backend {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            #[test]
            fn hostile_table() {
                super::hostile_table($backend.name());
            }

            #[test]
            fn slowloris() {
                super::slowloris($backend.name());
            }
        }
    };
}

common::for_each_backend!(per_backend);

/// One request of the property test's stream.
#[derive(Clone, Debug)]
enum Req {
    Get(String),
    Head,
    Post(Vec<u8>),
    Http10KeepAlive,
    Unknown,
    WithHeaders(Vec<(String, String)>),
}

impl Req {
    fn bytes(&self, last: bool) -> Vec<u8> {
        let close = if last { "Connection: close\r\n" } else { "" };
        match self {
            Req::Get(path) => {
                format!("GET /{path} HTTP/1.1\r\nHost: t\r\n{close}\r\n").into_bytes()
            }
            Req::Head => format!("HEAD / HTTP/1.1\r\nHost: t\r\n{close}\r\n").into_bytes(),
            Req::Post(body) => {
                let mut v = format!(
                    "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n{close}\r\n",
                    body.len()
                )
                .into_bytes();
                v.extend_from_slice(body);
                v
            }
            Req::Http10KeepAlive => {
                let conn = if last { "close" } else { "keep-alive" };
                format!("GET / HTTP/1.0\r\nConnection: {conn}\r\n\r\n").into_bytes()
            }
            Req::Unknown => format!("BREW /pot HTTP/1.1\r\nHost: t\r\n{close}\r\n").into_bytes(),
            Req::WithHeaders(hs) => {
                let mut s = String::from("GET /h HTTP/1.1\r\nHost: t\r\n");
                for (n, v) in hs {
                    s.push_str(&format!("{n}: {v}\r\n"));
                }
                s.push_str(close);
                s.push_str("\r\n");
                s.into_bytes()
            }
        }
    }
}

fn req_strategy() -> impl Strategy<Value = Req> {
    prop_oneof![
        "[a-z0-9/._-]{0,40}".prop_map(Req::Get),
        Just(Req::Head),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Req::Post),
        Just(Req::Http10KeepAlive),
        Just(Req::Unknown),
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,20}", "[ -~]{0,60}"), 0..10).prop_map(|hs| {
            Req::WithHeaders(
                hs.into_iter()
                    .map(|(n, v)| (n, v.trim().to_owned()))
                    .collect(),
            )
        }),
    ]
}

/// Sends `stream` in pieces of `chunks` bytes (cycled), flushing and
/// pausing between them, and reads every response until the close.
fn exchange_split(
    addr: std::net::SocketAddr,
    stream: &[u8],
    chunks: &[usize],
    pauses: bool,
    heads: &[bool],
) -> Vec<Vec<u8>> {
    let mut c = Client::connect(addr);
    let mut writer = c.stream.try_clone().unwrap();
    let stream = stream.to_vec();
    let chunks = chunks.to_vec();
    let sender = thread::spawn(move || {
        let mut at = 0;
        for &size in chunks.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + size).min(stream.len());
            std::io::Write::write_all(&mut writer, &stream[at..end]).expect("send a piece");
            std::io::Write::flush(&mut writer).unwrap();
            at = end;
            if pauses {
                thread::sleep(Duration::from_micros(300));
            }
        }
    });
    let mut out = Vec::new();
    for (i, &head) in heads.iter().enumerate() {
        let r = c
            .try_response(head)
            .unwrap_or_else(|e| panic!("response {i}: the connection ended: {e:?}"));
        out.push(r.normalized());
    }
    assert_eq!(c.expect_closed(), End::Eof);
    sender.join().expect("sender");
    out
}

/// However a valid pipelined stream is cut into pieces, the answers are
/// the same as when it is sent whole. One server (default idle timeout, so
/// a slow machine cannot turn a split request into a 408) for all cases.
#[test]
fn split_pipelines_get_the_same_answers() {
    let server = Server::start(&["--backend", "epoll"]);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::collection::vec(req_strategy(), 1..8),
        proptest::collection::vec(1usize..64, 1..16),
    );
    let result = runner.run(&strategy, |(reqs, chunks)| {
        let mut stream = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            stream.extend(r.bytes(i + 1 == reqs.len()));
        }
        let heads: Vec<bool> = reqs.iter().map(|r| matches!(r, Req::Head)).collect();
        let whole = exchange_split(server.addr, &stream, &[stream.len()], false, &heads);
        let split = exchange_split(server.addr, &stream, &chunks, true, &heads);
        prop_assert_eq!(whole.len(), reqs.len());
        for (i, (w, s)) in whole.iter().zip(&split).enumerate() {
            prop_assert_eq!(
                String::from_utf8_lossy(w),
                String::from_utf8_lossy(s),
                "response {}",
                i
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let summary = server.stop();
    assert_eq!(field(&summary, "idle timeouts "), 0, "{summary}");
}
