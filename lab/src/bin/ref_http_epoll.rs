//! A reference for `lab/scripts/http-bench.sh`: an HTTP/1.1 "Hello, world!" server
//! on a raw libc `epoll_wait` loop and httparse, sending the same response
//! bytes as the `http` example (same headers, a `Date` cached once a
//! second).
//!
//! ```text
//! cargo run --release -p tripoll-lab --bin ref_http_epoll -- --port 8080
//! ```
//!
//! The floor in system calls: connections registered level-triggered for
//! reading only, one `read` per readiness report, every complete request in
//! the buffer answered and the answers sent with one `write`; writable
//! interest is added only while output is pending. No validation beyond
//! httparse's syntax (a malformed request closes the connection), no
//! `Connection: close`, no bodies, no idle timeout, no output cap. One
//! thread; it runs until killed.
//!
//! The libc calls are `unsafe`: this is the loop tripoll's epoll backend is
//! measured against, so it calls the kernel directly (each block says why
//! it is sound).

use tripoll_lab::ref_http as shared;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use shared::{Response, MAX_INPUT, READ_CHUNK};

const PROG: &str = "ref_http_epoll";
const USAGE: &str = "\
ref_http_epoll: a raw epoll + httparse HTTP/1.1 server, the reference for lab/scripts/http-bench.sh

Usage: ref_http_epoll [--port PORT]

Listens on 127.0.0.1:PORT (default 8080; 0 picks a free port), prints
\"ref_http_epoll: listening on ADDR\", answers every request with the http
lab http server's 200 response, and runs until killed.
";

/// The listener's key; a connection's key is its descriptor.
const LISTENER: u64 = u64::MAX;
const EVENTS: usize = 1024;

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    sent: usize,
    /// Writable interest is registered.
    writing: bool,
}

fn main() {
    shared::main(PROG, USAGE, serve);
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call; on success a new descriptor we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 just returned this descriptor.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: libc::c_int, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: key,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    fn wait(&self, buf: &mut Vec<libc::epoll_event>, timeout_ms: libc::c_int) -> io::Result<()> {
        buf.clear();
        let cap = buf.capacity() as libc::c_int;
        // SAFETY: `buf` has room for `cap` events, which the kernel writes.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), buf.as_mut_ptr(), cap, timeout_ms) };
        let n = cvt(n)? as usize;
        // SAFETY: epoll_wait initialised the first `n` (≤ cap) entries.
        unsafe { buf.set_len(n) };
        Ok(())
    }
}

fn serve(port: u16) -> io::Result<()> {
    let epoll = Epoll::new()?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    listener.set_nonblocking(true)?;
    epoll.ctl(
        libc::EPOLL_CTL_ADD,
        listener.as_raw_fd(),
        libc::EPOLLIN,
        LISTENER,
    )?;
    println!("{PROG}: listening on {}", listener.local_addr()?);

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events: Vec<libc::epoll_event> = Vec::with_capacity(EVENTS);
    let mut response = Response::new();
    loop {
        let next_second = response.refresh();
        let timeout_ms = next_second.as_millis() as libc::c_int + 1;
        match epoll.wait(&mut events, timeout_ms) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in &events {
            let (key, flags) = (ev.u64, ev.events);
            if key == LISTENER {
                accept(&epoll, &listener, &mut conns)?;
                continue;
            }
            let fd = key as usize;
            let Some(conn) = conns.get_mut(fd).and_then(Option::as_mut) else {
                continue;
            };
            if conn.drive(&epoll, flags, &response.bytes).is_err() {
                // Dropping the stream closes it, which removes it from the
                // epoll set.
                conns[fd] = None;
            }
        }
    }
}

fn accept(epoll: &Epoll, listener: &TcpListener, conns: &mut Vec<Option<Conn>>) -> io::Result<()> {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("{PROG}: accept: {e}");
                return Ok(());
            }
        };
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let fd = stream.as_raw_fd();
        epoll.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN, fd as u64)?;
        let i = fd as usize;
        if conns.len() <= i {
            conns.resize_with(i + 1, || None);
        }
        conns[i] = Some(Conn {
            stream,
            inbuf: vec![0; READ_CHUNK],
            filled: 0,
            out: Vec::with_capacity(READ_CHUNK),
            sent: 0,
            writing: false,
        });
    }
}

impl Conn {
    /// One read if readable, every complete request answered, one write.
    fn drive(&mut self, epoll: &Epoll, flags: u32, response: &[u8]) -> io::Result<()> {
        if flags & libc::EPOLLOUT as u32 != 0 {
            self.flush(epoll)?;
        }
        if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
            return Ok(());
        }
        if self.filled == self.inbuf.len() {
            if self.inbuf.len() >= MAX_INPUT {
                return Err(io::ErrorKind::InvalidData.into());
            }
            self.inbuf.resize(self.inbuf.len() * 2, 0);
        }
        match self.stream.read(&mut self.inbuf[self.filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => self.filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.answer(response)?;
        self.flush(epoll)
    }

    fn answer(&mut self, response: &[u8]) -> io::Result<()> {
        shared::answer(&mut self.inbuf, &mut self.filled, &mut self.out, response)
    }

    /// Writes what is pending; asks for writable interest while some is
    /// left, and drops it once all is sent.
    fn flush(&mut self, epoll: &Epoll) -> io::Result<()> {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let pending = self.sent < self.out.len();
        if !pending {
            self.out.clear();
            self.sent = 0;
        }
        if pending != self.writing {
            let events = if pending {
                libc::EPOLLIN | libc::EPOLLOUT
            } else {
                libc::EPOLLIN
            };
            let fd = self.stream.as_raw_fd();
            epoll.ctl(libc::EPOLL_CTL_MOD, fd, events, fd as u64)?;
            self.writing = pending;
        }
        Ok(())
    }
}
