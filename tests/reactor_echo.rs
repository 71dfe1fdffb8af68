//! The README's reactor example, `examples/reactor_echo.rs`: the README
//! shows it verbatim, and it keeps serving on every backend while one
//! client sends 10 MB without reading and another resets its connection
//! mid-stream; a well-behaved client gets its whole echo meanwhile, and the
//! hog, once it reads, gets back every byte it sent.
//!
//! The example runs as a child process (`common::child`); every socket has
//! a timeout, so a broken server fails the test instead of hanging it.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;

use common::child::{listen_addrs, Proc, PATIENCE};

const NAME: &str = "reactor_echo";
/// What the hog sends without reading.
const HOG_BYTES: usize = 10 * 1024 * 1024;
/// What the well-behaved client has echoed, in chunks of `CHUNK`.
const GOOD_BYTES: usize = 1024 * 1024;
const CHUNK: usize = 16 * 1024;

/// Byte `i` of a stream tagged `tag`.
fn pattern(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(i as u64 >> 9) as u8 ^ tag)
        .collect()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

#[test]
fn the_readme_shows_the_example() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/reactor_echo.rs");
    let code = &example[example.find("use std::io").expect("a `use std::io` line")..];
    let block = format!("```rust,no_run\n{code}```\n");
    assert!(
        readme.contains(&block),
        "README.md's reactor example differs from examples/reactor_echo.rs \
         (from its first `use` line on): copy the file into the README"
    );
}

/// Sends without reading until the socket takes no more (or all of `data`
/// is sent); returns how much it sent.
fn send_until_stuck(s: &TcpStream, data: &[u8]) -> usize {
    s.set_nonblocking(true).unwrap();
    let mut sent = 0;
    while sent < data.len() {
        match (&*s).write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("the hog's write failed: {e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
    sent
}

fn survives_hostile_clients(backend: &str) {
    let mut server = Proc::spawn_env(NAME, &["127.0.0.1:0"], &[("TRIPOLL_BACKEND", backend)]);
    let banner = server.line();
    assert!(
        banner.ends_with(&format!("(backend {backend})")),
        "{banner}"
    );
    let addr = listen_addrs(NAME, &banner)[0];

    // The hog: 10 MB, not reading, until its socket takes no more.
    let hog = connect(addr);
    let hog_data = pattern(1, HOG_BYTES);
    let hog_sent = send_until_stuck(&hog, &hog_data);
    assert!(hog_sent > 0);

    // The resetter: sends, sees the echo start, then resets (SO_LINGER 0).
    let mut resetter = connect(addr);
    resetter.write_all(&pattern(2, 100_000)).unwrap();
    let mut first = [0; 1];
    resetter.read_exact(&mut first).unwrap();
    assert_eq!(first[0], pattern(2, 1)[0]);
    common::set_linger_zero(&resetter);
    drop(resetter);

    // The well-behaved client, served in full while the others misbehave.
    let mut good = connect(addr);
    let good_data = pattern(3, GOOD_BYTES);
    let mut back = vec![0; CHUNK];
    for chunk in good_data.chunks(CHUNK) {
        good.write_all(chunk).unwrap();
        let back = &mut back[..chunk.len()];
        good.read_exact(back).expect("the good client's echo");
        assert!(back == chunk, "the good client's echo differs");
    }
    good.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    good.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "nothing after the echo, then a clean close"
    );

    // The hog reads at last, and sends the rest: every byte comes back.
    let writer = hog.try_clone().unwrap();
    let rest_of_hog = hog_data[hog_sent..].to_vec();
    let sender = thread::spawn(move || (&writer).write_all(&rest_of_hog));
    let mut echoed = vec![0; HOG_BYTES];
    (&hog).read_exact(&mut echoed).expect("the hog's echo");
    sender.join().unwrap().expect("the rest of the hog's data");
    assert!(echoed == hog_data, "the hog's echo differs");

    // One failure reported (the reset connection), one line; exit 0 on SIGINT.
    let stderr = server.stop();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(
        lines[0].starts_with("tripoll reactor: handler of fd ")
            && (lines[0].contains("reset") || lines[0].contains("Broken pipe")),
        "{stderr}"
    );
}

macro_rules! survives_hostile_clients {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            #[test]
            fn survives_hostile_clients() {
                super::survives_hostile_clients($backend.name());
            }
        }
    };
}

common::for_each_backend!(survives_hostile_clients);
