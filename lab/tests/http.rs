//! End-to-end tests of the `http` example: the server runs as a child
//! process on each backend and is spoken to over loopback with real
//! sockets (and with curl). Hostile input is in `http_hostile.rs`.
//!
//! No assertion depends on timing; every wait has a generous safety
//! timeout so a broken server fails instead of hanging.

mod common;
mod http_support;

use tripoll_lab::http::date;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::child::{cpu_ticks, rss_bytes};
use common::hostile::flood_without_reading;
use http_support::{
    assert_hello, field, get, parse_imf_fixdate, Client, End, Server, BACKENDS, PATIENCE,
};
use proptest::prelude::*;

fn start(backend: &str) -> Server {
    let server = Server::start(&["--backend", backend]);
    assert!(
        server
            .banner
            .ends_with(&format!("(backend {backend}, threads 1, mode level)")),
        "listening line: {}",
        server.banner
    );
    server
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// GET / is answered with exactly the greeting and a plausible date.
fn get_root(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    let before = unix_now();
    let r = c.exchange(&get("/"));
    let after = unix_now();
    assert_hello(&r);
    assert_eq!(
        r.header("connection"),
        None,
        "HTTP/1.1 keeps alive silently"
    );
    let date = parse_imf_fixdate(r.header("date").unwrap()).unwrap();
    // Never ahead of the clock; behind it by no more than a server that
    // was badly starved could be.
    assert!(date <= after, "Date {date} is after {after}");
    assert!(date + 60 >= before, "Date {date} is far before {before}");
    let expected = b"HTTP/1.1 200 OK\r\nServer: tripoll\r\nContent-Type: text/plain\r\n\
                     Content-Length: 13\r\nDate: ";
    assert!(
        r.raw.starts_with(expected),
        "{:?}",
        String::from_utf8_lossy(&r.raw)
    );
    assert!(r.raw.ends_with(b" GMT\r\n\r\nHello, world!"));
    drop(c);
    let summary = server.stop();
    assert_eq!(field(&summary, "requests "), 1, "{summary}");
    assert_eq!(field(&summary, "error responses "), 0, "{summary}");
}

/// Several requests, one connection; any path.
fn keep_alive(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    for path in ["/", "/a", "/b/c?d=e", "http://test/absolute"] {
        assert_hello(&c.exchange(&get(path)));
    }
    // The client closes: so does the server, with nothing more to say.
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.expect_closed();
    let summary = server.stop();
    assert_eq!(field(&summary, "connections "), 1, "{summary}");
    assert_eq!(field(&summary, "requests "), 4, "{summary}");
}

/// HTTP/1.0: one response, `Connection: close`, then the server closes.
fn http10_closes(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    let r = c.exchange(b"GET / HTTP/1.0\r\n\r\n");
    assert_hello(&r);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(c.expect_closed(), End::Eof);
}

/// HTTP/1.0 with `Connection: keep-alive` stays open and says so.
fn http10_keep_alive(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    for _ in 0..3 {
        let r = c.exchange(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert_hello(&r);
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    let r = c.exchange(b"GET / HTTP/1.0\r\n\r\n");
    assert_hello(&r);
    assert!(r.closes());
    c.expect_closed();
}

/// HTTP/1.1 `Connection: close` ends the connection after its response:
/// a request pipelined behind it is not answered.
fn connection_close(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    c.send(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let (responses, end) = c.responses_until_close();
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_hello(&responses[0]);
    assert!(responses[0].closes());
    // The unanswered request may be left unread: EOF or a reset.
    assert!(matches!(end, End::Eof | End::Reset));
}

/// Ten requests in one write: ten responses, in order. HEAD and an unknown
/// method in known places show the order.
fn pipelining(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    let kinds = [
        "GET", "HEAD", "GET", "BREW", "GET", "GET", "HEAD", "POST", "BREW", "GET",
    ];
    let mut batch = Vec::new();
    for (i, m) in kinds.iter().enumerate() {
        let req = if *m == "POST" {
            format!("POST /{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        } else {
            format!("{m} /{i} HTTP/1.1\r\nHost: t\r\n\r\n")
        };
        batch.extend_from_slice(req.as_bytes());
    }
    c.send(&batch);
    for (i, m) in kinds.iter().enumerate() {
        let r = c
            .try_response(*m == "HEAD")
            .unwrap_or_else(|e| panic!("response {i}: connection ended: {e:?}"));
        match *m {
            "BREW" => {
                assert_eq!(r.code, 501, "response {i}");
                assert!(!r.closes(), "501 for a method keeps the connection");
            }
            "HEAD" => {
                assert_eq!(r.code, 200, "response {i}");
                assert_eq!(r.header("content-length"), Some("13"));
                assert!(r.body.is_empty());
            }
            _ => assert_hello(&r),
        }
    }
    // Nothing more: the next bytes are the answer to the next request.
    assert_hello(&c.exchange(&get("/after")));
}

/// A body is read and discarded by Content-Length, whether it arrives with
/// the head, after it, or in pieces; `Expect: 100-continue` gets its
/// interim response.
fn bodies_are_discarded(backend: &str) {
    let server = start(backend);
    let mut c = server.connect();
    assert_hello(&c.exchange(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"));

    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n");
    c.send(b"01234");
    thread::sleep(Duration::from_millis(20));
    c.send(b"56789GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_hello(&c.response());
    assert_hello(&c.response());

    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = c.try_response(false).expect("100 Continue");
    assert_eq!(interim.code, 100);
    assert_eq!(interim.raw, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"body");
    assert_hello(&c.response());
    let summary = {
        drop(c);
        server.stop()
    };
    assert_eq!(field(&summary, "requests "), 4, "{summary}");
}

/// Each refusal: the right status, `Connection: close`, then the close.
fn error_statuses(backend: &str) {
    let server = start(backend);
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let huge_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(9000));
    let cases: [(&[u8], u16); 7] = [
        (b"GARBAGE\r\n\r\n", 400),
        (huge_header.as_bytes(), 431),
        (huge_uri.as_bytes(), 414),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000000\r\n\r\n",
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", 400), // no Host
    ];
    for (request, code) in cases {
        let mut c = server.connect();
        // A good request first: the error ends a working connection.
        assert_hello(&c.exchange(&get("/")));
        c.send(request);
        let r = c.response();
        assert_eq!(
            r.code,
            code,
            "for {:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
        assert!(r.closes(), "an error response says Connection: close");
        assert_eq!(
            r.header("content-length").unwrap(),
            r.body.len().to_string()
        );
        c.expect_closed();
    }
    let summary = server.stop();
    assert_eq!(field(&summary, "error responses "), 7, "{summary}");
}

/// `--idle-timeout 1`: a silent connection is closed by the server, and so
/// is one that went silent after a request.
fn idle_timeout(backend: &str) {
    let server = Server::start(&["--backend", backend, "--idle-timeout", "1"]);
    let mut silent = server.connect();
    let mut after_one = server.connect();
    assert_hello(&after_one.exchange(&get("/")));
    assert_eq!(silent.expect_closed(), End::Eof);
    assert_eq!(after_one.expect_closed(), End::Eof);
    let summary = server.stop();
    assert_eq!(field(&summary, "idle timeouts "), 2, "{summary}");
}

/// A client that sends requests and reads nothing: the server answers
/// until the connection's output passes the cap, then stops reading it;
/// once the client reads, every response arrives, in order. The summary
/// shows the cap was reached and held.
fn slow_reader(backend: &str) {
    const CAP: usize = 16 * 1024;
    const REQUESTS: usize = 60_000;
    let server = Server::start(&["--backend", backend, "--max-pending", "16K"]);
    let mut c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let batch: Vec<u8> = (0..100)
            .flat_map(|_| b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".iter().copied())
            .collect();
        for _ in 0..REQUESTS / 100 {
            writer.write_all(&batch).expect("write requests");
        }
    });
    // Let the server fill the socket buffers and hit the cap: wait until
    // the bytes waiting for the client stop growing.
    let (mut last, mut still) = (0, 0);
    let quiet_deadline = Instant::now() + PATIENCE;
    while still < 3 && Instant::now() < quiet_deadline {
        thread::sleep(Duration::from_millis(100));
        let now = unread_bytes(&c.stream);
        still = if now == last && now > 0 { still + 1 } else { 0 };
        last = now;
    }
    let deadline = Instant::now() + PATIENCE * 4;
    for i in 0..REQUESTS {
        assert!(Instant::now() < deadline, "only {i} responses in time");
        let r = c.response();
        assert_eq!(r.code, 200, "response {i}");
        assert_eq!(r.body, b"Hello, world!");
    }
    sender.join().expect("sender");
    drop(c);
    let summary = server.stop();
    assert_eq!(field(&summary, "requests "), REQUESTS as u64, "{summary}");
    let peak = field(&summary, "largest pending output ") as usize;
    // Responses are added while less than the cap is pending: at most one
    // response beyond it.
    assert!(peak >= CAP, "the cap was never reached: {summary}");
    assert!(peak < CAP + 200, "the cap was not held: {summary}");
}

/// Bytes received and not yet read on `s` (`FIONREAD`).
fn unread_bytes(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// curl, a real client, gets the greeting.
fn curl(backend: &str) {
    if !Path::new("/usr/bin/curl").exists() {
        eprintln!("skipping: /usr/bin/curl is not installed");
        return;
    }
    let server = start(backend);
    let url = format!("http://{}/", server.addr);
    let out = Command::new("/usr/bin/curl")
        .args(["-s", "-i", "--max-time", "20", &url])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 13\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nHello, world!"), "{text}");
    // HTTP/1.0 and HEAD through curl too.
    let out = Command::new("/usr/bin/curl")
        .args(["-s", "-I", "--http1.0", "--max-time", "20", &url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl -I failed: {out:?}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(!text.contains("Hello"), "HEAD has no body: {text}");
}

/// Every test above for one backend of the one backend list:
/// `epoll::get_root`, `poll::get_root`, ...
macro_rules! per_backend {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            every_test!(
                $backend,
                get_root,
                keep_alive,
                http10_closes,
                http10_keep_alive,
                connection_close,
                pipelining,
                bodies_are_discarded,
                error_statuses,
                idle_timeout,
                slow_reader,
                curl
            );
        }
    };
}

macro_rules! every_test {
    ($backend:expr, $($test:ident),* $(,)?) => {
        $( #[test] fn $test() { super::$test($backend.name()) } )*
    };
}

common::for_each_backend!(per_backend);

#[test]
fn sigint_and_sigterm_exit_zero_with_a_summary() {
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let server = Server::start(&[]);
        let mut c = server.connect();
        assert_hello(&c.exchange(&get("/")));
        // An open connection does not hold the shutdown up.
        let summary = server.stop_with(sig);
        assert!(
            summary.contains(&format!("http: {name}: shutting down")),
            "{summary}"
        );
        assert_eq!(field(&summary, "connections "), 1, "{summary}");
    }
}

#[test]
fn backend_comes_from_the_environment_by_default() {
    let server = Server::spawn_env(&["--port", "0"], &[]);
    assert!(
        server.banner.contains("backend epoll,"),
        "{}",
        server.banner
    );
    for backend in BACKENDS {
        let server = Server::spawn_env(&["--port", "0"], &[("TRIPOLL_BACKEND", backend)]);
        assert!(
            server.banner.contains(&format!("backend {backend},")),
            "{}",
            server.banner
        );
        assert_hello(&server.connect().exchange(&get("/")));
    }
    // --backend wins over the environment.
    let server = Server::spawn_env(
        &["--port", "0", "--backend", "select"],
        &[("TRIPOLL_BACKEND", "poll")],
    );
    assert!(
        server.banner.contains("backend select,"),
        "{}",
        server.banner
    );
}

/// `--threads 3`: three reactors on one port; every connection is served
/// and the summary adds them up.
#[test]
fn threads_share_the_port() {
    const CONNS: usize = 30;
    let server = Server::start(&["--threads", "3"]);
    assert!(server.banner.contains("threads 3,"), "{}", server.banner);
    let mut clients: Vec<Client> = (0..CONNS).map(|_| server.connect()).collect();
    for round in 0..3 {
        for c in &mut clients {
            assert_hello(&c.exchange(&get(&format!("/{round}"))));
        }
    }
    drop(clients);
    let summary = server.stop();
    assert_eq!(field(&summary, "connections "), CONNS as u64, "{summary}");
    assert_eq!(field(&summary, "requests "), 3 * CONNS as u64, "{summary}");
}

#[test]
fn serves_ipv6_loopback_when_available() {
    if TcpStream::connect("[::1]:9").is_err() && std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let server = Server::start(&["--addr", "::1"]);
    assert!(
        matches!(server.addr, SocketAddr::V6(_)),
        "{}",
        server.banner
    );
    assert_hello(&server.connect().exchange(&get("/")));
}

#[test]
fn help_and_usage_errors() {
    let out = Command::new(http_support::binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--backend",
        "--port",
        "--addr",
        "--threads",
        "--idle-timeout",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}");
    }
    for bad in [
        &["--backend", "kqueue"][..],
        &["--port", "99999"],
        &["--threads", "0"],
        &["--idle-timeout", "-1"],
        &["--bogus"],
    ] {
        let out = Command::new(http_support::binary())
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("http: error:"), "{bad:?}: {err}");
    }
}

/// `--max-fds 24`: connections beyond the descriptor limit are accepted
/// and closed at once (the spare descriptor), the server neither dies nor
/// spins, and serves again once descriptors are free.
#[test]
fn survives_descriptor_exhaustion() {
    const CLIENTS: usize = 40;
    let server = Server::start(&["--max-fds", "24"]);
    let mut served = Vec::new();
    let mut shed = 0;
    for k in 0..CLIENTS {
        let mut c = server.connect();
        let sent = c.try_send(&get(&format!("/{k}"))).is_ok();
        match c.try_response(false) {
            Ok(r) => {
                assert!(sent);
                assert_hello(&r);
                served.push(c);
            }
            Err(End::Eof | End::Reset) => shed += 1,
            Err(End::TimedOut) => panic!("client {k} was neither served nor shed"),
        }
    }
    assert!(!served.is_empty(), "no client was served");
    assert!(shed > 0, "a limit of 24 descriptors shed nobody");
    for c in &mut served {
        assert_hello(&c.exchange(&get("/again")));
    }
    let n_served = served.len();
    drop(served);
    // The server notices the closes in its own time; retry until a new
    // client is served (bounded by PATIENCE).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut c = server.connect();
        let _ = c.try_send(&get("/after"));
        if let Ok(r) = c.try_response(false) {
            assert_hello(&r);
            break;
        }
        assert!(Instant::now() < deadline, "never served again");
        thread::sleep(Duration::from_millis(50));
    }
    let summary = server.stop();
    assert!(field(&summary, "refused ") >= shed as u64, "{summary}");
    assert!(
        field(&summary, "connections ") > n_served as u64,
        "{summary}"
    );
}

/// The cached Date moves on: within a generous bound, a later request
/// carries a later date.
#[test]
fn date_is_refreshed() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let first = c.exchange(&get("/"));
    let first = parse_imf_fixdate(first.header("date").unwrap()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        thread::sleep(Duration::from_millis(200));
        let r = c.exchange(&get("/"));
        let now = parse_imf_fixdate(r.header("date").unwrap()).unwrap();
        assert!(now >= first, "the date went back");
        if now > first {
            break;
        }
        assert!(Instant::now() < deadline, "the Date never changed");
    }
}

#[test]
fn imf_fixdate_known_values() {
    let cases: [(u64, &str); 7] = [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (978_307_199, "Sun, 31 Dec 2000 23:59:59 GMT"),
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ];
    for (secs, text) in cases {
        assert_eq!(
            std::str::from_utf8(&date::imf_fixdate(secs)).unwrap(),
            text,
            "{secs}"
        );
    }
}

proptest! {
    /// The server's calendar agrees with an independent one.
    #[test]
    fn imf_fixdate_round_trips(secs in 0u64..253_402_300_800) {
        let text = date::imf_fixdate(secs);
        let text = std::str::from_utf8(&text).unwrap();
        prop_assert_eq!(parse_imf_fixdate(text), Some(secs), "{}", text);
    }
}

/// Bytes that trickle in are not a request until they are complete; the
/// client half-closing after a complete request still gets its response.
#[test]
fn half_close_after_request_gets_the_response() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&get("/"));
    c.stream.shutdown(Shutdown::Write).unwrap();
    let (responses, end) = c.responses_until_close();
    assert_eq!(responses.len(), 1);
    assert_hello(&responses[0]);
    assert_eq!(end, End::Eof);
    // And a raw read sees nothing else.
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

// ---------------------------------------------------------------------------
// At the limits: several threads out of descriptors, a total buffer budget

/// `--threads 4 --max-fds 40` at its descriptor limit, with connections
/// arriving from several threads at once. The workers share one descriptor
/// table, so the number one worker frees (its spare, to shed a connection)
/// can be taken by another worker's `accept`: it used to lose its spare for
/// good, and then with connections in its backlog its level-triggered
/// listener fired on every wait while it accepted nothing, so the server
/// spun and printed a line per spin (hundreds of MiB of log in seconds).
///
/// The race is a matter of scheduling, so the test gives it many chances:
/// 80 connections held open keep the server at the limit; then, three
/// times, 4 threads churn up to 6 000 connections (each shed by the server),
/// and 40 more connections are left waiting, so that a worker without a
/// spare has some in its backlog. Checked:
/// - CPU, each time, with the 40 left waiting: over a window of two
///   seconds the server uses at most a tenth of one core (CPU ticks from
///   `/proc/PID/stat`). A spinning server uses all the CPU it is given, and
///   even on this shared two-core machine it is given far more than a tenth
///   of a core; a correct server has shed the 40 and is idle (a paused
///   listener costs one timer wake-up per 50 ms: well under 1% of a core).
/// - the log: under 64 KiB of stderr for the whole run (the trouble is
///   reported at most once a second per worker, with a count).
/// - recovery: once the held connections are gone, new clients are served.
///
/// Before the fix, this failed in most runs (a spin seen as 64–263 of 300
/// ticks, or 0.5–2.5 MB of log).
#[test]
fn threads_at_the_descriptor_limit_neither_spin_nor_flood_the_log() {
    use crate::common::child::{clock_ticks_per_second, listen_addrs, Proc};
    const HELD: usize = 80;
    const CHURNERS: usize = 4;
    const EACH: usize = 1500;
    const WAITING: usize = 40;
    const ROUNDS: usize = 3;
    const WINDOW: Duration = Duration::from_secs(2);
    let mut proc = Proc::spawn(
        "http",
        &[
            "--port",
            "0",
            "--threads",
            "4",
            "--max-fds",
            "40",
            "--idle-timeout",
            "5m",
        ],
    );
    let banner = proc.line();
    let addr = listen_addrs("http", &banner)[0];
    let pid = proc.pid();
    let hz = clock_ticks_per_second();
    // Take the server to its limit and keep it there: these stay open.
    let held: Vec<TcpStream> = (0..HELD)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert_eq!(held.len(), HELD, "connects to the backlog complete");
    for round in 0..ROUNDS {
        // The previous round's connections may still fill the backlogs
        // (the server sheds them at the speed the machine gives it): wait
        // until a connection is taken again, within PATIENCE. A worker
        // stuck for good never takes one, and this fails.
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "round {round}: the server never took a connection again"
            );
        }
        // A worker stuck without its spare stops accepting, its backlog
        // fills and connects to it time out: a churner stops at its first
        // failure (the damage is done by then).
        let churners: Vec<_> = (0..CHURNERS)
            .map(|_| {
                thread::spawn(move || {
                    (0..EACH)
                        .take_while(|_| {
                            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let churned: usize = churners.into_iter().map(|c| c.join().unwrap()).sum();
        assert!(churned > 0, "round {round}: no churn connection was made");
        let waiting: Vec<TcpStream> = (0..WAITING)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok())
            .collect();
        // Let the server shed what it can, then watch it at the limit.
        thread::sleep(Duration::from_millis(300));
        let (t0, w0) = (cpu_ticks(pid), Instant::now());
        thread::sleep(WINDOW);
        let (t1, w1) = (cpu_ticks(pid), Instant::now());
        let window_ticks = w1.duration_since(w0).as_secs_f64() * hz as f64;
        let used = (t1 - t0) as f64;
        assert!(
            used <= window_ticks / 10.0,
            "round {round}: the server used {used} CPU ticks in {window_ticks:.0} ticks of \
             wall time at the descriptor limit: it spins"
        );
        drop(waiting);
    }
    drop(held);
    // Served again once the flood is gone: 40 clients in a row, within
    // PATIENCE. Until then a client may be shed: the server must notice the
    // closes, and its four listeners' backlogs still hold the churn's
    // connections, whose accepting takes it to the limit again for a
    // moment (seen under load as a reset after a first success).
    let deadline = Instant::now() + PATIENCE;
    let mut in_a_row = 0;
    while in_a_row < 40 {
        let mut c = Client::connect(addr);
        let _ = c.try_send(&get(&format!("/good/{in_a_row}")));
        match c.try_response(false) {
            Ok(r) => {
                assert_hello(&r);
                in_a_row += 1;
            }
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "never served 40 clients in a row again"
                );
                in_a_row = 0;
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let summary = proc.stop();
    assert!(
        summary.len() < 64 * 1024,
        "{} bytes of log; it begins: {}",
        summary.len(),
        &summary[..summary.len().min(2000)]
    );
    assert!(
        field(&summary, "refused ") > 0,
        "nobody was shed: {summary}"
    );
    assert!(field(&summary, "requests ") >= 40, "{summary}"); // the 40 in a row
}

/// 40 clients that pipeline requests and never read the responses (with
/// small receive windows, so the kernel buffers little for them), with
/// `--max-pending 4M` (each connection may hold 4 MiB of responses): 160 MiB
/// without a total budget (seen before the budget existed: 164 MiB). With `--max-buffered 8M` the server's resident
/// memory stays under its size at start + the budget + 24 MiB of stated
/// overhead (allocator slack, freed memory it keeps, the connections' input
/// buffers, two threads), and a polite client is served meanwhile.
#[test]
fn total_buffer_budget_caps_memory_across_connections() {
    use crate::common::child::{listen_addrs, Proc};
    const BUDGET: u64 = 8 << 20;
    const OVERHEAD: u64 = 24 << 20;
    const HOGS: usize = 40;
    let mut proc = Proc::spawn(
        "http",
        &[
            "--port",
            "0",
            "--threads",
            "2",
            "--max-pending",
            "4M",
            "--max-buffered",
            "8M",
            "--idle-timeout",
            "5m",
        ],
    );
    let banner = proc.line();
    let addr = listen_addrs("http", &banner)[0];
    let pid = proc.pid();
    let base = rss_bytes(pid);
    let mut polite = Client::connect(addr);
    assert_hello(&polite.exchange(&get("/before")));
    // The shortest request there is: the most response bytes per byte sent.
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(1000);
    // Each hog may send 8 MiB (300 000 requests, 40 MiB of responses: far
    // more than the kernel buffers plus the 4 MiB cap).
    let mut peak = base;
    let hogs = flood_without_reading(pid, addr, HOGS, &request, 8 << 20, || {
        peak = peak.max(rss_bytes(pid));
    });
    peak = peak.max(rss_bytes(pid));
    assert!(
        peak <= base + BUDGET + OVERHEAD,
        "resident memory reached {} MiB (at start {} MiB, budget 8 MiB, overhead 24 MiB)",
        peak >> 20,
        base >> 20
    );
    for k in 0..20 {
        assert_hello(&polite.exchange(&get(&format!("/polite/{k}"))));
    }
    drop(hogs);
    drop(polite);
    let summary = proc.stop();
    // Enforced after each connection's turn; one turn may grow an output
    // buffer from under the 4 MiB cap to twice that (a `Vec` doubles), and
    // the input buffer by a read: the total passes the budget by no more.
    let held = field(&summary, "largest total buffered ");
    assert!(held <= BUDGET + 2 * (4 << 20) + (64 << 10), "{summary}");
    assert!(field(&summary, "shed over the budget ") > 0, "{summary}");
}
