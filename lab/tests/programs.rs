//! End-to-end tests of the examples: each runs as a child process and is
//! driven over loopback by real sockets (or by another example).
//!
//! The examples are built and run by `common::child`. Every child is killed
//! when its guard drops, every socket has a read timeout and every wait a
//! deadline: a broken example fails the test, it does not hang it. No
//! assertion depends on timing.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::child::{field, listen_addrs, rss_bytes, run, Proc, PATIENCE};
use common::hostile::flood_without_reading;
use tripoll::{AnyPoller, Backend, Mode, Poller};

/// A running echo example and the addresses it printed.
struct Echo {
    proc: Proc,
    addrs: Vec<SocketAddr>,
    banner: String,
}

impl Echo {
    fn start(args: &[&str]) -> Echo {
        let mut proc = Proc::spawn("echo", args);
        let banner = proc.line();
        let addrs = listen_addrs("echo", &banner);
        Echo {
            proc,
            addrs,
            banner,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Stops the server with `sig` and checks it exits 0; returns its
    /// shutdown summary (stderr).
    fn stop_with(self, sig: libc::c_int) -> String {
        self.proc.stop_with(sig)
    }

    fn stop(self) -> String {
        self.proc.stop()
    }
}

/// A blocking client socket that gives up instead of hanging.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// The test pattern: byte `i` of a stream tagged `tag`.
fn pattern(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(i as u64 >> 9) as u8 ^ tag)
        .collect()
}

fn roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).expect("write");
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).expect("read the echo");
    assert!(back == msg, "echo of {} bytes differs", msg.len());
}

/// Half-closes the client side and expects the server to close after
/// sending everything: nothing more arrives.
fn expect_clean_close(mut s: TcpStream) {
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read to end of file");
    assert!(
        rest.is_empty(),
        "{} unexpected bytes after the echo",
        rest.len()
    );
}

/// Echo on one backend and mode: several clients at once, messages from one
/// byte to larger than one read, interleaved; then a clean close.
fn echo_works(backend: &str, mode: &str) {
    let echo = Echo::start(&["--backend", backend, "--mode", mode, "--port", "0"]);
    assert!(
        echo.banner
            .ends_with(&format!("(backend {backend}, mode {mode})")),
        "banner: {}",
        echo.banner
    );
    let mut clients: Vec<TcpStream> = (0..5).map(|_| connect(echo.addr())).collect();
    for (round, size) in [1usize, 17, 1000, 65_536, 200_000].into_iter().enumerate() {
        for (k, c) in clients.iter_mut().enumerate() {
            roundtrip(c, &pattern((round * 8 + k) as u8, size));
        }
    }
    for c in clients {
        expect_clean_close(c);
    }
    let summary = echo.stop();
    assert!(summary.contains("SIGINT"), "summary: {summary}");
    assert!(summary.contains("accepted 5,"), "summary: {summary}");
    assert!(summary.contains("still open 0,"), "summary: {summary}");
}

/// Echo in every mode on one backend: each mode the backend supports
/// echoes, and each it does not is a usage error before anything listens.
fn echo_every_mode(backend: Backend) {
    let poller = AnyPoller::new(backend).expect("poller");
    let name = backend.name();
    for (mode, flag) in [
        (Mode::Level, "level"),
        (Mode::Edge, "edge"),
        (Mode::Oneshot, "oneshot"),
    ] {
        if poller.supports(mode) {
            echo_works(name, flag);
            continue;
        }
        let done = run("echo", &["--backend", name, "--mode", flag, "--port", "0"]);
        assert_eq!(done.status.code(), Some(2), "{name}: {}", done.stderr);
        assert!(
            done.stderr.contains(&format!(
                "the {name} backend does not support --mode {flag}"
            )),
            "{name}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "", "nothing listens, so no banner");
    }
}

/// The modes of the echo example that `backend` supports.
fn supported_modes(backend: Backend) -> Vec<&'static str> {
    let poller = AnyPoller::new(backend).expect("poller");
    [
        (Mode::Level, "level"),
        (Mode::Edge, "edge"),
        (Mode::Oneshot, "oneshot"),
    ]
    .into_iter()
    .filter(|&(mode, _)| poller.supports(mode))
    .map(|(_, flag)| flag)
    .collect()
}

/// A client that writes `total` bytes without reading, until the server
/// stops taking them (or all are written), then reads everything: every
/// byte must come back, in order, and the server's pending output must reach
/// its cap (or the scenario proved nothing) but never pass it by more than
/// one read (64 KiB).
///
/// How much the kernel's socket buffers absorb decides how much must be
/// written to hold the writer up: on loopback with Linux's default buffer
/// autotuning (up to 4 MiB of send buffer, more for receiving) 4 MiB go
/// through without the server ever reading less, so the tests write 16 MiB.
fn slow_reader(backend: &str, mode: &str, cap: Option<&str>, total: usize) {
    let mut args = vec!["--backend", backend, "--mode", mode, "--port", "0"];
    if let Some(cap) = cap {
        args.extend(["--max-pending", cap]);
    }
    let echo = Echo::start(&args);
    let mut reader = connect(echo.addr());
    let mut writer = reader.try_clone().expect("clone");
    let data = Arc::new(pattern(0x5a, total));
    let sent = Arc::new(Mutex::new(0usize));
    let (data2, sent2) = (Arc::clone(&data), Arc::clone(&sent));
    let w = thread::spawn(move || {
        for chunk in data2.chunks(16 * 1024) {
            writer.write_all(chunk).expect("write");
            *sent2.lock().unwrap() += chunk.len();
        }
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    // Do not read until the writer is done or has stalled: the server must
    // stop reading from us rather than buffer without bound or drop bytes.
    let mut last = 0;
    let mut stalls = 0;
    let deadline = Instant::now() + PATIENCE;
    while !w.is_finished() && stalls < 5 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let now = *sent.lock().unwrap();
        stalls = if now == last { stalls + 1 } else { 0 };
        last = now;
    }
    let stalled_at = *sent.lock().unwrap();
    let mut back = Vec::with_capacity(total);
    reader.read_to_end(&mut back).unwrap_or_else(|e| {
        panic!(
            "{backend} {mode}: read everything back: {e} after {} of {total} bytes",
            back.len()
        )
    });
    w.join().expect("writer thread");
    assert_eq!(back.len(), total, "bytes echoed");
    if let Some(i) = back.iter().zip(data.iter()).position(|(a, b)| a != b) {
        panic!("first wrong byte at offset {i}");
    }
    let summary = echo.stop();
    let peak = field(&summary, "largest pending output ");
    let cap = field(&summary, "(cap ");
    assert!(
        peak <= cap + 64 * 1024,
        "pending output {peak} passed the cap {cap} by more than one read"
    );
    assert!(
        stalled_at < total && peak >= cap,
        "the writer was never held up (it wrote {stalled_at} of {total} bytes before reading) \
         or the pending output ({peak}) never reached the cap ({cap}): the kernel's buffers \
         took everything, so the test did not exercise the cap; write more"
    );
}

#[test]
fn slow_reader_gets_every_byte_epoll_level_default_cap() {
    slow_reader("epoll", "level", None, 16 << 20);
}

/// Every example test that runs per backend, for one backend of the one
/// backend list: echo in each mode, a slow reader in each supported mode,
/// and `EMFILE` in level mode and the backend's other mode (edge where it
/// has it, else oneshot).
macro_rules! per_backend {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn echo_in_every_mode() {
                echo_every_mode($backend);
            }

            #[test]
            fn slow_reader_gets_every_byte() {
                for mode in supported_modes($backend) {
                    slow_reader($backend.name(), mode, Some("64K"), 16 << 20);
                }
            }

            #[test]
            fn echo_survives_emfile() {
                let modes = supported_modes($backend);
                let other = if modes.contains(&"edge") {
                    "edge"
                } else {
                    "oneshot"
                };
                for mode in ["level", other] {
                    survives_fd_exhaustion($backend.name(), mode);
                }
            }
        }
    };
}

common::for_each_backend!(per_backend);

#[test]
fn echo_listens_on_several_ports() {
    let echo = Echo::start(&["--port", "0", "--port", "0", "--port", "0"]);
    assert_eq!(echo.addrs.len(), 3, "banner: {}", echo.banner);
    let mut ports: Vec<u16> = echo.addrs.iter().map(|a| a.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "three distinct ports: {}", echo.banner);
    assert!(ports.iter().all(|&p| p != 0), "actual ports, not 0");
    for (k, &addr) in echo.addrs.iter().enumerate() {
        let mut c = connect(addr);
        roundtrip(&mut c, &pattern(k as u8, 5000));
        expect_clean_close(c);
    }
    let summary = echo.stop_with(libc::SIGTERM);
    assert!(summary.contains("SIGTERM"), "summary: {summary}");
    assert!(summary.contains("accepted 3,"), "summary: {summary}");
}

#[test]
fn echo_listens_on_ipv6_loopback_when_available() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let echo = Echo::start(&["--addr", "::1", "--port", "0"]);
    assert!(echo.addr().is_ipv6(), "banner: {}", echo.banner);
    let mut c = connect(echo.addr());
    roundtrip(&mut c, b"over IPv6");
    expect_clean_close(c);
    echo.stop();
}

/// With a descriptor limit far below the number of clients, the server
/// sheds the excess connections (each client sees end of file or a reset)
/// instead of leaving them in the backlog, keeps serving the accepted ones,
/// and serves new clients once descriptors are free again.
fn survives_fd_exhaustion(backend: &str, mode: &str) {
    const CLIENTS: usize = 40;
    let echo = Echo::start(&[
        "--backend",
        backend,
        "--mode",
        mode,
        "--port",
        "0",
        "--max-fds",
        "24",
    ]);
    let mut served = Vec::new();
    let mut shed = 0;
    for k in 0..CLIENTS {
        let mut c = connect(echo.addr());
        let msg = pattern(k as u8, 100);
        // A shed connection may already be closed: the write can fail.
        let wrote = c.write_all(&msg).is_ok();
        let mut back = vec![0; msg.len()];
        match c.read_exact(&mut back) {
            Ok(()) => {
                assert!(wrote && back == msg, "client {k}: wrong echo");
                served.push(c);
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                    ),
                    "client {k}: expected to be shed (EOF or reset), got {e}"
                );
                shed += 1;
            }
        }
    }
    assert!(!served.is_empty(), "no client was served");
    assert!(shed > 0, "the limit of 24 descriptors shed nobody");
    // The accepted connections still work...
    for (k, c) in served.iter_mut().enumerate() {
        roundtrip(c, &pattern(k as u8 ^ 0xff, 3000));
    }
    // ...and once they are gone, new clients are served again.
    let n_served = served.len();
    for c in served {
        expect_clean_close(c);
    }
    let mut c = connect(echo.addr());
    roundtrip(&mut c, b"after the storm");
    expect_clean_close(c);
    let summary = echo.stop();
    assert_eq!(
        field(&summary, "refused at the fd limit "),
        shed as u64,
        "{summary}"
    );
    assert_eq!(
        field(&summary, "accepted "),
        n_served as u64 + 1,
        "{summary}"
    );
}

/// The client example against the echo example: `(client backend, echo
/// backend, echo mode)`.
fn client_against_echo(client_backend: &str, echo_backend: &str, mode: &str) {
    let echo = Echo::start(&["--backend", echo_backend, "--mode", mode, "--port", "0"]);
    let port = echo.addr().port().to_string();
    let done = run(
        "client",
        &[
            "--backend",
            client_backend,
            "--port",
            &port,
            "--connections",
            "100",
            "--messages",
            "10",
            "--size",
            "1000",
        ],
    );
    assert!(
        done.status.success(),
        "client failed ({:?}):\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    let out = &done.stdout;
    assert!(out.contains("connections: 100 ok, 0 failed"), "{out}");
    assert_eq!(field(out, "bytes sent: "), 100 * 10 * 1000, "{out}");
    assert_eq!(field(out, "verified: "), 100 * 10 * 1000, "{out}");
    assert_eq!(field(out, "lost: "), 0, "{out}");
    assert_eq!(field(out, "corrupt: "), 0, "{out}");
    assert!(out.ends_with("client: OK"), "{out}");
    let summary = echo.stop();
    assert!(summary.contains("accepted 100,"), "{summary}");
}

#[test]
fn client_100_connections_epoll_against_echo_epoll_edge() {
    client_against_echo("epoll", "epoll", "edge");
}

#[test]
fn client_100_connections_poll_against_echo_select_level() {
    client_against_echo("poll", "select", "level");
}

#[test]
fn client_100_connections_select_against_echo_poll_oneshot() {
    client_against_echo("select", "poll", "oneshot");
}

#[test]
fn client_load_mode_reports_progress_and_percentiles() {
    let echo = Echo::start(&["--port", "0"]);
    let port = echo.addr().port().to_string();
    let done = run(
        "client",
        &[
            "--port",
            &port,
            "--connections",
            "10",
            "--size",
            "100",
            "--duration",
            "2",
            "--rate",
            "500",
        ],
    );
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    let out = &done.stdout;
    assert!(
        out.contains("[   1s]"),
        "a progress line each second: {out}"
    );
    assert!(out.contains("throughput: "), "{out}");
    for p in ["p50 ", "p99 ", "p999 "] {
        assert!(out.contains(p), "{p} missing: {out}");
    }
    assert_eq!(field(out, "lost: "), 0, "{out}");
    assert_eq!(field(out, "corrupt: "), 0, "{out}");
    let sent = field(out, "bytes sent: ");
    assert!(
        sent > 0 && sent.is_multiple_of(100),
        "whole messages: {out}"
    );
    echo.stop();
}

#[test]
fn client_fails_when_nobody_listens() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let done = run(
        "client",
        &["--port", &port.to_string(), "--connections", "3"],
    );
    assert_eq!(
        done.status.code(),
        Some(1),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("connections: 0 ok, 3 failed"),
        "{}",
        done.stdout
    );
    assert!(done.stderr.contains("connect: "), "{}", done.stderr);
    assert!(done.stdout.ends_with("client: FAILED"), "{}", done.stdout);
}

/// A broken echo server: echoes everything but flips one byte of each
/// connection's stream. The client must notice.
#[test]
fn client_detects_a_corrupted_byte() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            workers.push(thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut off = 0usize;
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if (off..off + n).contains(&1500) {
                        buf[1500 - off] ^= 0x01;
                    }
                    off += n;
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.join();
        }
    });
    let done = run(
        "client",
        &[
            "--port",
            &port.to_string(),
            "--connections",
            "2",
            "--messages",
            "3",
        ],
    );
    server.join().unwrap();
    assert_eq!(
        done.status.code(),
        Some(1),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert_eq!(field(&done.stdout, "corrupt: "), 2, "{}", done.stdout);
    assert!(done.stderr.contains("wrong bytes"), "{}", done.stderr);
    assert!(done.stdout.ends_with("client: FAILED"), "{}", done.stdout);
}

#[test]
fn client_refuses_too_many_connections_for_select() {
    let done = run("client", &["--backend", "select", "--connections", "5000"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("select can only watch descriptors below 1024"),
        "{}",
        done.stderr
    );
}

/// Every program of the lab.
const PROGRAMS: [&str; 7] = [
    "echo",
    "http",
    "async_http",
    "client",
    "models",
    "ref_http_epoll",
    "ref_http_mio",
];

/// The programs that choose a poller (the others call mio or epoll
/// directly, or name the backend in each model).
const POLLER_PROGRAMS: [&str; 4] = ["echo", "http", "async_http", "client"];

/// `stderr` is one line, and it contains `needle`.
fn one_line_naming(what: &str, stderr: &str, needle: &str) {
    assert_eq!(stderr.lines().count(), 1, "{what}: one line, got: {stderr}");
    assert!(stderr.contains(needle), "{what}: {needle:?} in: {stderr}");
}

#[test]
fn every_program_explains_itself_with_help() {
    for name in PROGRAMS {
        for flag in ["--help", "-h"] {
            let done = run(name, &[flag]);
            assert!(done.status.success(), "{name} {flag}: {:?}", done.status);
            assert!(
                done.stdout.contains("Usage:"),
                "{name} {flag}: {}",
                done.stdout
            );
            assert_eq!(done.stderr, "", "{name} {flag}");
        }
    }
    for name in POLLER_PROGRAMS {
        let done = run(name, &["--help"]);
        assert!(done.stdout.contains("--backend"), "{name}: {}", done.stdout);
    }
}

#[test]
fn every_program_refuses_an_unknown_option_in_one_line() {
    for name in PROGRAMS {
        let done = run(name, &["--frobnicate"]);
        assert_eq!(done.status.code(), Some(2), "{name}: {}", done.stderr);
        one_line_naming(name, &done.stderr, "--frobnicate");
        assert!(done.stderr.contains("--help"), "{name}: {}", done.stderr);
        assert_eq!(done.stdout, "", "{name}");
    }
}

#[test]
fn every_program_rejects_a_bad_backend_clearly() {
    for name in POLLER_PROGRAMS {
        let done = run(name, &["--backend", "kqueue"]);
        assert_eq!(done.status.code(), Some(2), "{name}: {}", done.stderr);
        one_line_naming(
            name,
            &done.stderr,
            "invalid value \"kqueue\" for --backend: expected one of epoll, poll, select, uring",
        );
        assert_eq!(done.stdout, "", "{name}");
    }
}

/// A bad `TRIPOLL_BACKEND` is one readable line (exit 1), never a Debug
/// dump; `models` names each model's backend itself and ignores it.
#[test]
fn a_bad_tripoll_backend_variable_is_one_line() {
    for (name, args) in [
        ("echo", &["--port", "0"][..]),
        ("http", &["--port", "0"]),
        ("async_http", &["--port", "0"]),
        ("client", &["--port", "9", "-c", "1"]),
    ] {
        let done = Proc::spawn_env(name, args, &[("TRIPOLL_BACKEND", "bogus")]).finish();
        assert_eq!(done.status.code(), Some(1), "{name}: {}", done.stderr);
        one_line_naming(
            name,
            &done.stderr,
            "unknown backend \"bogus\": expected one of epoll, poll, select, uring",
        );
    }
}

#[test]
fn bad_values_and_unknown_options_are_usage_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "echo",
            &["--port", "70000"],
            "invalid value \"70000\" for --port",
        ),
        (
            "echo",
            &["--mode", "sideways"],
            "expected one of level, edge, oneshot",
        ),
        ("echo", &["--port"], "--port needs a value"),
        ("echo", &["--frobnicate"], "unknown option --frobnicate"),
        ("echo", &["8001"], "unexpected argument \"8001\""),
        ("client", &["--connections", "0"], "must be at least 1"),
        ("client", &["--duration", "soon"], "expected a duration"),
        (
            "client",
            &["--size", "12Q"],
            "invalid value \"12Q\" for --size",
        ),
    ];
    for (name, args, needle) in cases {
        let done = run(name, args);
        assert_eq!(
            done.status.code(),
            Some(2),
            "{name} {args:?}: {}",
            done.stderr
        );
        assert!(
            done.stderr.contains(needle),
            "{name} {args:?}: {}",
            done.stderr
        );
        assert!(
            done.stderr.contains("--help"),
            "{name} {args:?}: {}",
            done.stderr
        );
    }
}

#[test]
fn echo_uses_tripoll_backend_when_no_flag_is_given() {
    let mut proc = Proc::spawn_env("echo", &["--port", "0"], &[("TRIPOLL_BACKEND", "select")]);
    let banner = proc.line();
    assert!(banner.contains("(backend select, mode level)"), "{banner}");
    let echo = Echo {
        addrs: listen_addrs("echo", &banner),
        proc,
        banner,
    };
    let mut c = connect(echo.addr());
    roundtrip(&mut c, b"x");
    drop(c);
    echo.stop();
}

#[test]
fn sigint_stops_an_idle_and_a_busy_server_with_status_0() {
    // Idle: nothing ever connected.
    let idle = Echo::start(&["--port", "0"]);
    let summary = idle.stop();
    assert!(summary.contains("SIGINT"), "{summary}");

    // Busy: a connection open with output pending.
    let busy = Echo::start(&["--port", "0", "--backend", "poll"]);
    let mut c = connect(busy.addr());
    c.write_all(&pattern(1, 100_000)).unwrap();
    let mut first = [0u8; 10];
    c.read_exact(&mut first).unwrap();
    let summary = busy.stop();
    assert!(summary.contains("still open 1,"), "{summary}");
    // The server's exit closed the connection: reading ends (with end of
    // file or a reset) instead of running into the timeout.
    let mut rest = Vec::new();
    match c.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.len() <= 100_000 - first.len(), "more than was sent"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
}

// ---------------------------------------------------------------------------
// At the limits: durations, fairness in edge mode, a total buffer budget

/// Every duration flag goes through one parser with bounds: a value too
/// large for a deadline (`1e19` seconds used to panic on `Instant`
/// overflow) or so small it rounds to zero (`1e-12` used to parse to a zero
/// duration, which is documented as refused) is a usage error at start.
#[test]
fn durations_out_of_range_are_usage_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "http",
            &["--idle-timeout", "1e19"],
            "must be at most 365 days",
        ),
        ("http", &["--idle-timeout", "1e-12"], "must be at least 1ms"),
        (
            "http",
            &["--idle-timeout", "0.0004"],
            "must be at least 1ms",
        ),
        (
            "http",
            &["--idle-timeout", "0"],
            "must be a positive duration",
        ),
        (
            "http",
            &["--idle-timeout", "inf"],
            "must be a positive duration",
        ),
        (
            "http",
            &["--idle-timeout", "NaN"],
            "must be a positive duration",
        ),
        ("client", &["--timeout", "1e19"], "must be at most 365 days"),
        ("client", &["--timeout", "1e-12"], "must be at least 1ms"),
        (
            "client",
            &["--duration", "1e19"],
            "must be at most 365 days",
        ),
        ("client", &["--duration", "1e-12ms"], "must be at least 1ms"),
        (
            "client",
            &["--duration", "525601m"],
            "must be at most 365 days",
        ),
        ("client", &["--duration", "10 s"], "expected a duration"),
    ];
    // A rate so low that the interval between messages passes the bound
    // (deadlines a multiple of it away could overflow `Instant`).
    let done = run("client", &["-c", "1", "--rate", "1e-19"]);
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("--rate is too small"),
        "{}",
        done.stderr
    );
    for (name, args, needle) in cases {
        let done = run(name, args);
        assert_eq!(
            done.status.code(),
            Some(2),
            "{name} {args:?}: {}",
            done.stderr
        );
        let flag = args[0];
        assert!(
            done.stderr
                .contains(&format!("invalid value {:?} for {flag}: {needle}", args[1])),
            "{name} {args:?}: {}",
            done.stderr
        );
    }
    // The bounds themselves are accepted: a year, and one millisecond.
    let server = Proc::spawn("http", &["--port", "0", "--idle-timeout", "365d"]).finish();
    assert_eq!(
        server.status.code(),
        Some(2),
        "no 'd' unit: {}",
        server.stderr
    );
    let mut http = Proc::spawn("http", &["--port", "0", "--idle-timeout", "525600m"]);
    let banner = http.line();
    let addr = listen_addrs("http", &banner)[0];
    let mut c = connect(addr);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    c.read_exact(&mut head)
        .expect("a response with a year-long idle timeout");
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(c);
    http.stop();
    let echo = Echo::start(&["--port", "0"]);
    let port = echo.addr().port().to_string();
    let done = run(
        "client",
        &[
            "--port",
            &port,
            "-c",
            "2",
            "--messages",
            "3",
            "--timeout",
            "1ms",
        ],
    );
    // One millisecond is a valid (if hopeless) timeout: the run ends, with
    // a verdict either way, and no usage error.
    assert!(matches!(done.status.code(), Some(0 | 1)), "{}", done.stderr);
    echo.stop();
}

/// A client that writes as fast as it can and reads everything back, on
/// two threads, until `stop` is set; `got` counts the bytes it got back.
fn greedy_client(
    addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    got: Arc<std::sync::atomic::AtomicU64>,
) -> thread::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    thread::spawn(move || {
        let mut reader = connect(addr);
        let mut writer = reader.try_clone().unwrap();
        let w = thread::spawn(move || {
            let chunk = pattern(0x77, 256 * 1024);
            while !stop.load(Ordering::Relaxed) {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = writer.shutdown(Shutdown::Write);
        });
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        w.join().unwrap();
    })
}

/// Edge mode with three greedy full-duplex clients and one ping client:
/// every connection is driven at most once per loop turn, so no connection
/// reads more than one turn's budget (16 reads of 64 KiB) in a turn, and
/// the ping client's round trips keep coming while the greedy ones run.
///
/// The "read again" list used to hold duplicates: a connection queued last
/// turn that got a new edge was driven twice in one turn (and queued twice
/// for the next), each time reading up to 1 MiB, so greedy connections got
/// several turns' worth of reading per turn and the ping client's latency
/// grew without bound. The server's summary reports the most bytes it read
/// from one connection in one turn; it must not pass the per-turn budget.
fn edge_fairness(mode: &str) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const PINGS: usize = 200;
    let echo = Echo::start(&["--backend", "epoll", "--mode", mode, "--port", "0"]);
    let stop = Arc::new(AtomicBool::new(false));
    let got: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let greedy: Vec<_> = got
        .iter()
        .map(|g| greedy_client(echo.addr(), Arc::clone(&stop), Arc::clone(g)))
        .collect();
    let received = || -> Vec<u64> { got.iter().map(|g| g.load(Ordering::Relaxed)).collect() };
    // The greedy clients in full flow first: each has had 4 MiB echoed.
    let deadline = Instant::now() + PATIENCE;
    while received().iter().any(|&n| n < 4 << 20) {
        assert!(
            Instant::now() < deadline,
            "greedy clients not served: {:?}",
            received()
        );
        thread::sleep(Duration::from_millis(1));
    }
    let before = received();
    let mut ping = connect(echo.addr());
    ping.set_nodelay(true).unwrap();
    for k in 0..PINGS {
        let b = [k as u8];
        ping.write_all(&b).unwrap();
        let mut back = [0u8; 1];
        ping.read_exact(&mut back).expect("ping echo");
        assert_eq!(back, b, "ping {k}: wrong byte");
    }
    let after = received();
    let greedy_still_ran = greedy.iter().all(|g| !g.is_finished());
    stop.store(true, Ordering::Relaxed);
    for g in greedy {
        g.join().unwrap();
    }
    assert!(
        greedy_still_ran,
        "a greedy client ended before the pings did"
    );
    assert!(
        after.iter().zip(&before).all(|(a, b)| a > b),
        "the greedy clients were served while the pings went on: {before:?} -> {after:?}"
    );
    drop(ping);
    let summary = echo.stop();
    let most = field(&summary, "largest read from one connection in one turn ");
    assert!(
        most <= 16 * 64 * 1024,
        "a connection got {most} bytes read in one turn, more than one turn's budget: {summary}"
    );
    assert!(most > 0, "{summary}");
}

#[test]
fn edge_mode_serves_each_connection_once_per_turn() {
    edge_fairness("edge");
}

#[test]
fn level_mode_serves_each_connection_once_per_turn() {
    edge_fairness("level");
}

/// 40 clients that send 16 MiB each and never read (with small receive
/// windows, so the kernel buffers less of it): each connection stops at its
/// own cap (`--max-pending 4M` here), but without a total budget that is
/// 160 MiB held (the issue measured 451 MiB for 400 clients at the default
/// 1 MiB cap; seen here before the budget existed: 164 MiB). With
/// `--max-buffered 16M`, the server's resident memory stays under its
/// resident size at start + the budget + 24 MiB, where the 24 MiB are
/// stated overhead: the allocator's slack and rounding (a `Vec` holds up
/// to twice what it was asked for, and the budget counts capacity, so that
/// is covered; what is left is freed memory the allocator keeps), the
/// 64 KiB read buffer and the connection table. A polite client that reads
/// its echo is served throughout.
fn echo_buffer_budget(mode: &str) {
    const BUDGET: u64 = 16 << 20;
    const OVERHEAD: u64 = 24 << 20;
    let echo = Echo::start(&[
        "--backend",
        "epoll",
        "--mode",
        mode,
        "--port",
        "0",
        "--max-pending",
        "4M",
        "--max-buffered",
        "16M",
    ]);
    let pid = echo.proc.pid();
    let base = rss_bytes(pid);
    let mut polite = connect(echo.addr());
    roundtrip(&mut polite, b"before");
    let mut peak = base;
    let msg = pattern(0x33, 64 * 1024);
    let hogs = flood_without_reading(pid, echo.addr(), 40, &msg, 16 << 20, || {
        peak = peak.max(rss_bytes(pid));
    });
    peak = peak.max(rss_bytes(pid));
    assert!(
        peak <= base + BUDGET + OVERHEAD,
        "resident memory reached {} MiB (at start {} MiB, budget 16 MiB, overhead 24 MiB)",
        peak >> 20,
        base >> 20
    );
    // The polite client is served while the hogs are still connected.
    for k in 0..20u8 {
        roundtrip(&mut polite, &pattern(k, 10_000));
    }
    drop(hogs);
    expect_clean_close(polite);
    let summary = echo.stop();
    // The budget is checked before every read: the total passes it by one
    // read (64 KiB) at most. Back-pressure holds it there: a connection
    // with output pending is not read from while the total is at the
    // budget, so none needs to be shed.
    let held = field(&summary, "largest total buffered ");
    assert!(held <= BUDGET + (64 << 10), "{summary}");
    assert!(
        held > BUDGET / 2,
        "the hogs did not reach the budget: {summary}"
    );
}

#[test]
fn echo_total_buffer_budget_level() {
    echo_buffer_budget("level");
}

#[test]
fn echo_total_buffer_budget_edge() {
    echo_buffer_budget("edge");
}

/// 2 000 clients that send and never read, `--max-buffered 16M`: the
/// budget is checked before every read, so the total the server holds
/// stays within the budget plus one read (64 KiB), however many
/// connections there are. (Checked after each connection's turn instead,
/// the total reached about three times the budget here: 50.3 MB.) On every
/// backend that holds 2 000 descriptors, in level and edge mode where the
/// backend has it.
fn echo_budget_holds_against_many_never_reading_clients(backend: Backend, mode: &str) {
    const BUDGET: u64 = 16 << 20;
    const ONE_READ: u64 = 64 << 10;
    const CLIENTS: usize = 2000;
    common::raise_fd_limit(2 * CLIENTS as u64 + 256);
    let echo = Echo::start(&[
        "--backend",
        backend.name(),
        "--mode",
        mode,
        "--port",
        "0",
        "--max-buffered",
        "16M",
    ]);
    let pid = echo.proc.pid();
    let msg = pattern(0x5a, 16 * 1024);
    let hogs = flood_without_reading(pid, echo.addr(), CLIENTS, &msg, 256 << 10, || {});
    let mut polite = connect(echo.addr());
    roundtrip(&mut polite, b"still served");
    drop(hogs);
    drop(polite);
    let summary = echo.stop();
    let held = field(&summary, "largest total buffered ");
    assert!(
        held <= BUDGET + ONE_READ,
        "{backend} {mode}: the server held {held} bytes, over the budget of {BUDGET} plus one \
         read: {summary}"
    );
    assert!(
        held > BUDGET / 2,
        "{backend} {mode}: the flood did not reach the budget: {summary}"
    );
}

macro_rules! echo_budget_suite {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            #[test]
            fn echo_budget_holds_against_2000_never_reading_clients() {
                for mode in crate::supported_modes($backend) {
                    if mode != "oneshot" {
                        crate::echo_budget_holds_against_many_never_reading_clients($backend, mode);
                    }
                }
            }
        }
    };
}

// Select stops at descriptor 1 024, below the 2 000 clients.
macro_rules! echo_budget_unless_select {
    (select, $backend:expr, $poller:ty) => {};
    ($module:ident, $backend:expr, $poller:ty) => {
        echo_budget_suite!($module, $backend, $poller);
    };
}

mod budget {
    crate::common::for_each_backend!(echo_budget_unless_select);
}

/// Found by `fuzz/` (target `http_parse`, input kept in
/// `fuzz/regressions/http_parse/`): the status of a request with a version
/// httparse refuses depends on how its bytes arrive. Whole,
/// `GET / HTTP/0.9` gets 505; split after `HTTP/0.`, httparse already
/// refuses the version and `version_status` judges the request line as far
/// as it has come, finds `HTTP/0.` malformed and answers 400. Likewise junk
/// longer than the head limit: 400 or 414 depending on whether the invalid
/// byte or the limit is seen first. Fixed: the parser judges only the first
/// `max_head` bytes and a version only once its line has ended.
#[test]
fn http_version_status_does_not_depend_on_segmentation() {
    let mut http = Proc::spawn("http", &["--port", "0"]);
    let addr = listen_addrs("http", &http.line())[0];
    let status = |parts: &[&[u8]]| -> String {
        let mut c = connect(addr);
        c.set_nodelay(true).unwrap();
        for (i, p) in parts.iter().enumerate() {
            c.write_all(p).unwrap();
            if i + 1 < parts.len() {
                // Let the server read this part on its own.
                thread::sleep(Duration::from_millis(100));
            }
        }
        let mut head = [0u8; 12];
        c.read_exact(&mut head).expect("a response");
        String::from_utf8_lossy(&head).into_owned()
    };
    let whole = status(&[b"GET / HTTP/0.9\r\nHost: a\r\n\r\n"]);
    let split = status(&[b"GET / HTTP/0.", b"9\r\nHost: a\r\n\r\n"]);
    assert_eq!(whole, "HTTP/1.1 505");
    assert_eq!(split, whole, "the status changed with the segmentation");
    // The same with junk longer than the head limit (8 KiB): an invalid
    // byte within the first read gets 400; sent after the limit has passed,
    // 414.
    let mut junk = vec![b'A'; 9000];
    junk.extend_from_slice(b"\x02\r\n\r\n");
    let whole = status(&[&junk]);
    let split = status(&[&junk[..8500], &junk[8500..]]);
    assert_eq!(split, whole, "the status changed with the segmentation");
    http.stop();
}

/// `TRIPOLL_BACKEND=uring` in the echo server: served by io_uring when it is
/// built in, a clear error (exit 1) when it is not; never another backend.
#[test]
fn echo_under_tripoll_backend_uring() {
    let mut proc = Proc::spawn_env("echo", &["--port", "0"], &[("TRIPOLL_BACKEND", "uring")]);
    if cfg!(feature = "io-uring") {
        use std::io::{Read, Write};
        let banner = proc.line();
        assert!(banner.contains("(backend uring, mode level)"), "{banner}");
        let addr = common::child::listen_addrs("echo", &banner)[0];
        let mut c = std::net::TcpStream::connect(addr).expect("connect to echo");
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        c.write_all(b"ping over io_uring").unwrap();
        let mut back = [0u8; 18];
        c.read_exact(&mut back).expect("the echo");
        assert_eq!(&back, b"ping over io_uring");
        drop(c);
        proc.stop();
    } else {
        let done = proc.finish();
        assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
        assert!(
            done.stderr.contains("the uring backend is unavailable"),
            "{}",
            done.stderr
        );
    }
}
