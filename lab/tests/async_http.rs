//! `async_http`, the HTTP server on the task layer, against real clients
//! on every backend: keep-alive, pipelining, HTTP/1.0 and `Connection:
//! close`, `Expect: 100-continue`, a discarded body, curl if installed,
//! hostile input, a slow client cut at the idle timeout, and the summary at
//! SIGTERM.

mod common;
mod http_support;

use std::process::Command;
use std::thread;
use std::time::Duration;

use common::child::{listen_addrs, Proc};
use tripoll::Backend;

/// `async_http` against real clients: the greeting with keep-alive,
/// pipelining, HTTP/1.0 and `Connection: close`, `Expect: 100-continue`,
/// a discarded body, curl if installed, then hostile input (each case its
/// status and the close, or a cut at the idle timeout), a well-behaved
/// client served all along, and the summary at SIGTERM.
fn async_http_serves_and_refuses(backend: Backend) {
    use http_support::{assert_hello, get, Client, End};
    const NAME: &str = "async_http";
    let name = backend.name();
    let mut server = Proc::spawn(
        NAME,
        &["--port", "0", "--backend", name, "--idle-timeout", "1"],
    );
    let banner = server.line();
    // The async layer registers edge-triggered where the backend can.
    let poller = tripoll::AnyPoller::new(backend).expect("poller");
    let mode = if tripoll::Poller::supports(&poller, tripoll::Mode::Edge) {
        "edge"
    } else {
        "oneshot"
    };
    assert!(
        banner.ends_with(&format!("(backend {name}, mode {mode})")),
        "{banner}"
    );
    let addr = listen_addrs(NAME, &banner)[0];

    // Keep-alive: three requests on one connection, then three pipelined.
    let mut c = Client::connect(addr);
    for _ in 0..3 {
        assert_hello(&c.exchange(&get("/")));
    }
    c.send(&[get("/a"), get("/b"), get("/c")].concat());
    for _ in 0..3 {
        assert_hello(&c.response());
    }
    // HEAD: no body.
    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.try_response(true).expect("a HEAD response");
    assert_eq!(head.code, 200);
    assert!(head.body.is_empty());
    // A body, read and discarded; then 100-continue.
    let r = c.exchange(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_hello(&r);
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.response().code, 100);
    c.send(b"abc");
    assert_hello(&c.response());
    // `Connection: close`: the answer says so, then the close.
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let (rs, end) = c.responses_until_close();
    assert_eq!(rs.len(), 1);
    assert!(rs[0].closes());
    assert_eq!(end, End::Eof);
    // HTTP/1.0 without keep-alive closes too.
    let mut c = Client::connect(addr);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let (rs, end) = c.responses_until_close();
    assert_eq!(rs.len(), 1);
    assert_hello(&rs[0]);
    assert_eq!(end, End::Eof);

    // curl, a real client, if there is one.
    if let Ok(out) = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", &format!("http://{addr}/")])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl: {text}");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nHello, world!"), "{text}");
    }

    // Hostile input: status, then the close.
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let refused: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"GARBAGE\r\n\r\n".to_vec(), 400),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 505),
        ("huge URI", format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(10_000)).into_bytes(), 414),
        ("endless method", b"A".repeat(20_000), 414),
        ("many headers", format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").into_bytes(), 431),
        ("chunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 501),
        ("smuggling", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        ("two lengths", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n".to_vec(), 400),
        ("body too large", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n".to_vec(), 413),
        ("odd expectation", b"GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n".to_vec(), 417),
        ("binary junk", (0..=255u8).rev().collect(), 400),
    ];
    let good = thread::spawn(move || {
        // Served all along.
        let mut c = Client::connect(addr);
        for _ in 0..50 {
            assert_hello(&c.exchange(&get("/")));
        }
    });
    for (label, bytes, code) in refused {
        let mut c = Client::connect(addr);
        let _ = c.try_send(&bytes); // the server may close before taking all
        let (rs, _) = c.responses_until_close();
        assert_eq!(rs.len(), 1, "{label}: one answer");
        assert_eq!(rs[0].code, code, "{label}");
        assert!(rs[0].closes(), "{label}: says it closes");
    }
    // A method it does not serve: 501, and the connection stays.
    let mut c = Client::connect(addr);
    assert_eq!(c.exchange(b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n").code, 501);
    assert_hello(&c.exchange(&get("/")));
    // Slowloris: a request trickled in and never finished is cut at the
    // idle timeout (1 s) with 408, whatever it sends meanwhile.
    let mut slow = Client::connect(addr);
    slow.send(b"GET / HTTP/1.1\r\n");
    let mut cut = false;
    for _ in 0..100 {
        if slow.try_send(b"X").is_err() {
            cut = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let (rs, _) = slow.responses_until_close();
    assert!(cut || rs.len() == 1, "cut by the idle timeout");
    if let Some(r) = rs.first() {
        assert_eq!(r.code, 408);
    }
    // An idle connection is closed without a word.
    let mut idle = Client::connect(addr);
    assert_ne!(idle.expect_closed(), End::TimedOut);
    good.join().expect("the well-behaved client");

    let summary = server.stop_with(libc::SIGTERM);
    assert!(
        summary.starts_with("async_http: SIGTERM after "),
        "{summary}"
    );
    assert_eq!(summary.lines().count(), 1, "{summary}");
}

macro_rules! async_http_suite {
    ($name:ident, $backend:expr, $poller:ty) => {
        mod $name {
            #[test]
            fn async_http_serves_and_refuses() {
                super::async_http_serves_and_refuses($backend)
            }
        }
    };
}

common::for_each_backend!(async_http_suite);
