//! The reference servers of `lab/scripts/http-bench.sh` (`ref_http_mio`,
//! `ref_http_epoll`) send exactly the bytes the `http` example sends for
//! the same requests, the `Date` value aside: the comparison measures the
//! same output.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::child::Proc;

/// Two pipelined requests, as wrk sends them.
const REQUESTS: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// The address in `PROG: listening on ADDR` or `... ADDR (backend ...)`.
fn address(line: &str) -> SocketAddr {
    let rest = &line[line.find("listening on ").expect(line) + "listening on ".len()..];
    let addr = rest.split(' ').next().expect(line);
    addr.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// The two responses to [`REQUESTS`], their `Date` values blanked out.
fn answers(proc: &mut Proc) -> Vec<u8> {
    let line = proc.line();
    let mut c = TcpStream::connect(address(&line)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    c.write_all(REQUESTS).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while count(&got, b"Hello, world!") < 2 {
        let n = c.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "{line}: closed after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let mut at = 0;
    while let Some(i) = find(&got[at..], b"\r\nDate: ") {
        let start = at + i + b"\r\nDate: ".len();
        got[start..start + 29].fill(b'D');
        at = start;
    }
    got
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn reference_servers_send_the_examples_bytes() {
    let mut example = Proc::spawn("http", &["--port", "0"]);
    let expected = answers(&mut example);
    assert_eq!(count(&expected, b"HTTP/1.1 200 OK\r\n"), 2);
    assert_eq!(
        count(&expected, b"\r\nDate: DDDDDDDDDDDDDDDDDDDDDDDDDDDDD\r\n"),
        2
    );
    for name in ["ref_http_mio", "ref_http_epoll"] {
        let mut reference = Proc::spawn(name, &["--port", "0"]);
        let got = answers(&mut reference);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
    }
    example.stop();
}
