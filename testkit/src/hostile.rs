//! Three clients at once against an echo server, as a server author meets
//! them: a hog that sends 10 MB without reading, a resetter that drops its
//! connection mid-stream (SO_LINGER 0), and a well-behaved client that must
//! get its whole echo while the other two misbehave. Used for every echo
//! server the README shows (`reactor_echo`, `async_echo`). And a flood of
//! clients that write and never read, for the memory-budget tests of the
//! echo and HTTP examples.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::child::{cpu_ticks, PATIENCE};

const HOG_BYTES: usize = 10 * 1024 * 1024;
const GOOD_BYTES: usize = 1024 * 1024;
const CHUNK: usize = 16 * 1024;

/// Bytes that differ per client (`tag`) and per position, so a byte from
/// the wrong place or client shows.
pub fn pattern(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(i as u64 >> 9) as u8 ^ tag)
        .collect()
}

/// A connection with generous timeouts, so a server that stops answering
/// fails the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Sends without reading until the socket takes no more.
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

/// Runs the three clients against the echo server at `addr` and checks
/// every byte each of the surviving two gets back. The server should then
/// have reported exactly one failure: the reset connection.
pub fn echo_survives_hostile_clients(addr: SocketAddr) {
    // The hog: 10 MB, not reading, until its socket takes no more.
    let hog = connect(addr);
    let hog_data = pattern(1, HOG_BYTES);
    let hog_sent = send_until_stuck(&hog, &hog_data);
    assert!(hog_sent > 0);

    // The resetter: sends, sees the echo start, then resets.
    let mut resetter = connect(addr);
    resetter.write_all(&pattern(2, 100_000)).unwrap();
    let mut first = [0; 1];
    resetter.read_exact(&mut first).unwrap();
    assert_eq!(first[0], pattern(2, 1)[0]);
    crate::net::set_linger_zero(&resetter);
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
}

/// A client socket with a small receive buffer (8 KiB asked, set before
/// `connect` so the window is small from the start and autotuning is off):
/// a client that never reads then holds the server up after a few KiB,
/// instead of the megabytes Linux would otherwise buffer for it on
/// loopback.
pub fn connect_small_window(addr: SocketAddr) -> TcpStream {
    crate::net::connect_with_receive_buffer(addr, 8 * 1024)
}

/// Clients that write and never read, non-blocking: writes until each has
/// written `per_client` bytes, or no client can write more and the server
/// (`pid`) has used no CPU for 20 rounds of 10 ms, that is it stopped
/// reading (how the flood ends, not what is asserted). Calls `sample` after
/// every round; returns the clients, still open.
pub fn flood_without_reading(
    pid: libc::pid_t,
    addr: SocketAddr,
    clients: usize,
    message: &[u8],
    per_client: usize,
    mut sample: impl FnMut(),
) -> Vec<TcpStream> {
    let mut socks: Vec<(TcpStream, usize, bool)> = (0..clients)
        .map(|_| {
            let s = connect_small_window(addr);
            s.set_nonblocking(true).unwrap();
            (s, 0, true)
        })
        .collect();
    let mut idle_rounds = 0;
    let mut ticks = cpu_ticks(pid);
    let deadline = Instant::now() + PATIENCE;
    while idle_rounds < 20 && Instant::now() < deadline {
        let mut progress = false;
        for (s, written, alive) in &mut socks {
            while *alive && *written < per_client {
                let at = *written % message.len();
                match s.write(&message[at..]) {
                    Ok(n) => {
                        *written += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // Shed by the server: fine, that is one way to cap memory.
                    Err(_) => *alive = false,
                }
            }
        }
        sample();
        let now = cpu_ticks(pid);
        if progress || now != ticks {
            idle_rounds = 0;
        } else {
            idle_rounds += 1;
        }
        ticks = now;
        thread::sleep(Duration::from_millis(10));
        if socks.iter().all(|(_, w, a)| !*a || *w >= per_client) {
            break;
        }
    }
    socks.into_iter().map(|(s, _, _)| s).collect()
}
