//! The library's teaching examples as a user meets them: each explains
//! itself with `--help`, refuses a bad option, backend name or
//! `TRIPOLL_BACKEND` in one line, and does what it says on every backend.
//! (`reactor_echo` and `async_echo` are also run against hostile clients in
//! `tests/reactor_echo.rs` and `tests/async.rs`; `compare` in
//! `tests/compare.rs`.)
//!
//! The examples run as child processes (`common::child`); every socket has
//! a timeout, so a broken example fails the test instead of hanging it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use common::child::{self, listen_addrs, Proc, PATIENCE};

/// Every teaching example.
const EXAMPLES: [&str; 5] = [
    "compare",
    "poller_echo",
    "reactor_echo",
    "async_echo",
    "hello_http",
];

/// The teaching servers: `[--backend NAME] [ADDR]`.
const SERVERS: [&str; 4] = ["poller_echo", "reactor_echo", "async_echo", "hello_http"];

/// The README's table of examples names every example in `examples/`, and
/// nothing else: the file list and the table cannot drift apart.
#[test]
fn the_readme_lists_every_example() {
    let readme = include_str!("../README.md");
    let mut on_disk: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
            .expect("examples/")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".rs").map(str::to_owned)
            })
            .collect();
    on_disk.sort();
    let mut listed: Vec<String> = readme
        .lines()
        .filter_map(|l| l.split("--example ").nth(1))
        .filter_map(|rest| rest.split(['`', ' ']).next())
        .map(str::to_owned)
        .collect();
    listed.sort();
    listed.dedup();
    assert_eq!(
        listed, on_disk,
        "README.md's examples against examples/*.rs"
    );
    let mut constant: Vec<&str> = EXAMPLES.to_vec();
    constant.sort();
    assert_eq!(constant, on_disk, "EXAMPLES against examples/*.rs");
}

fn one_line_naming(what: &str, stderr: &str, needle: &str) {
    assert_eq!(stderr.lines().count(), 1, "{what}: one line, got: {stderr}");
    assert!(stderr.contains(needle), "{what}: {needle:?} in: {stderr}");
}

#[test]
fn every_example_explains_itself_with_help() {
    for name in EXAMPLES {
        for flag in ["--help", "-h"] {
            let done = child::run(child::example(name), &[flag]);
            assert!(done.status.success(), "{name} {flag}: {:?}", done.status);
            assert!(done.stdout.contains("Usage:"), "{name}: {}", done.stdout);
            assert!(done.stdout.contains("--backend"), "{name}: {}", done.stdout);
            assert_eq!(done.stderr, "", "{name} {flag}");
        }
    }
}

#[test]
fn every_example_refuses_bad_options_in_one_line() {
    for name in EXAMPLES {
        let done = child::run(child::example(name), &["--frobnicate"]);
        assert_eq!(done.status.code(), Some(2), "{name}: {}", done.stderr);
        one_line_naming(name, &done.stderr, "--frobnicate");
        assert!(done.stderr.contains("--help"), "{name}: {}", done.stderr);

        let done = child::run(child::example(name), &["--backend", "kqueue"]);
        assert_eq!(done.status.code(), Some(2), "{name}: {}", done.stderr);
        one_line_naming(name, &done.stderr, "\"kqueue\" for --backend");
        one_line_naming(
            name,
            &done.stderr,
            "expected one of epoll, poll, select, uring",
        );
    }
}

#[test]
fn every_server_reports_a_bad_tripoll_backend_in_one_line() {
    for name in SERVERS {
        let done = Proc::spawn_env(
            child::example(name),
            &["127.0.0.1:0"],
            &[("TRIPOLL_BACKEND", "bogus")],
        )
        .finish();
        assert_eq!(done.status.code(), Some(1), "{name}: {}", done.stderr);
        one_line_naming(
            name,
            &done.stderr,
            "unknown backend \"bogus\": expected one of epoll, poll, select, uring",
        );
    }
}

/// Starts a teaching server on `backend` at a free port; the banner must
/// name the backend.
fn start(name: &str, backend: &str) -> (Proc, SocketAddr) {
    let mut server = Proc::spawn(child::example(name), &["--backend", backend, "127.0.0.1:0"]);
    let banner = server.line();
    assert!(
        banner.contains(&format!("(backend {backend}")),
        "{name}: {banner}"
    );
    let addr = listen_addrs(name, &banner)[0];
    (server, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// `poller_echo` sends back every byte, and keeps serving while a hog sends
/// 10 MB without reading and a resetter drops its connection mid-stream.
fn poller_echo_serves_and_survives(backend: &str) {
    let (server, addr) = start("poller_echo", backend);
    let mut c = connect(addr);
    c.write_all(b"hello, poller").unwrap();
    let mut back = [0; 13];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello, poller");

    common::hostile::echo_survives_hostile_clients(addr);

    // The reset is reported in one line; the server is still up.
    drop(c);
    let mut c = connect(addr);
    c.write_all(b"still here").unwrap();
    let mut back = [0; 10];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
    // Killed (it serves until then): one line on stderr, for the reset.
    server.signal(libc::SIGTERM);
    let stderr = server.finish().stderr;
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(
        lines[0].starts_with("poller_echo: client ")
            && (lines[0].contains("reset") || lines[0].contains("Broken pipe")),
        "{stderr}"
    );
}

/// `hello_http` answers each request of a keep-alive connection, pipelined
/// ones too, and curl (when installed) gets the greeting.
fn hello_http_answers(backend: &str) {
    let (server, addr) = start("hello_http", backend);
    let mut c = connect(addr);
    let request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    c.write_all(&[&request[..], &request[..], &request[..]].concat())
        .unwrap();
    let one =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
    let mut back = vec![0; 3 * one.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, [&one[..], &one[..], &one[..]].concat());

    if let Ok(out) = Command::new("curl")
        .args(["-s", "--max-time", "10", &format!("http://{addr}/")])
        .output()
    {
        assert!(out.status.success(), "curl: {out:?}");
        assert_eq!(out.stdout, b"Hello, world!");
    }
    drop(c);
    server.signal(libc::SIGTERM);
    assert_eq!(server.finish().stderr, "", "nothing went wrong");
}

macro_rules! example_suite {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            #[test]
            fn poller_echo_serves_and_survives_hostile_clients() {
                super::poller_echo_serves_and_survives($backend.name());
            }

            #[test]
            fn hello_http_answers_every_request() {
                super::hello_http_answers($backend.name());
            }
        }
    };
}

common::for_each_backend!(example_suite);
