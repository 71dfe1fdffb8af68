//! The completion model: an echo server on io_uring's own model, where the
//! kernel does the I/O and reports it done, rather than saying a socket is
//! ready for the program to do it. One thread, one ring:
//!
//! - one multishot accept: each new connection is a completion;
//! - per connection, one multishot receive (`IORING_OP_RECV` with
//!   `IORING_RECV_MULTISHOT`) into buffers the kernel picks from a
//!   provided-buffer ring: each arrival is a completion carrying the bytes
//!   and the buffer's id, and the buffer goes back to the ring as soon as
//!   its bytes are copied to the connection's queue;
//! - per connection, at most one `IORING_OP_SEND` in flight, of what the
//!   queue holds; a short send sends the rest.
//!
//! A client that does not read makes the queue grow: past [`MAX_OWED`]
//! the receive is cancelled, and armed again once the queue is below it,
//! so such a client holds a bounded amount of memory and stalls no one.
//! A connection is closed when its peer has finished sending and
//! everything has been echoed (or it failed), once no operation of it is
//! in flight (the kernel may still write into or read from its buffers).
//!
//! Out of descriptors, `accept` fails (EMFILE) before it looks at the
//! backlog, so an accept armed again at once fails again at once, for
//! ever, while the clients in the backlog wait. Instead the server frees
//! a spare descriptor and arms one accept ([`Op::Shed`]): it takes the
//! next client with the spare's number (waiting in the kernel, at no
//! cost, while the backlog is empty), and the server closes it at once
//! and takes the spare back, so a client beyond the limit is refused, not
//! left waiting; then the multishot accept is armed again. One line on
//! stderr says the server is refusing clients, once until it serves one
//! again (and at most once a second).
//!
//! Not in the library: the library's io_uring backend is a readiness
//! `Poller` (`uring-level`, `uring-edge`); this is the other way to use
//! the ring, written against the `io-uring` crate directly.

use std::io;
use std::mem;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{BufRingEntry, Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use crate::common::{self, Spare, ACCEPT_PAUSE};
use crate::refuse;

/// Submission queue entries (the completion queue has twice as many).
const RING_ENTRIES: u32 = 4096;
/// Provided buffers: how many, and how large.
const BUFFERS: u16 = 512;
const BUFFER_SIZE: usize = 4096;
/// The buffer group of the provided-buffer ring.
const GROUP: u16 = 0;
/// Bytes a connection may owe before its receive is cancelled.
const MAX_OWED: usize = 256 * 1024;

/// What a completion is for: the operation in the top byte, the
/// connection's slot below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The multishot accept: each client it takes is served.
    Accept,
    Recv(usize),
    Send(usize),
    Cancel(usize),
    /// Out of descriptors: one accept with the spare freed; the client it
    /// takes is refused (closed at once), unless descriptors have freed up
    /// meanwhile.
    Shed,
    /// Out of descriptors with no spare to shed with: a timeout of
    /// [`ACCEPT_PAUSE`], then accepting again.
    Pause,
}

impl Op {
    fn encode(self) -> u64 {
        match self {
            Op::Accept => 0,
            Op::Recv(i) => (1 << 56) | i as u64,
            Op::Send(i) => (2 << 56) | i as u64,
            Op::Cancel(i) => (3 << 56) | i as u64,
            Op::Shed => 4 << 56,
            Op::Pause => 5 << 56,
        }
    }

    fn decode(data: u64) -> Option<Op> {
        let i = (data & ((1 << 56) - 1)) as usize;
        match data >> 56 {
            0 => Some(Op::Accept),
            1 => Some(Op::Recv(i)),
            2 => Some(Op::Send(i)),
            3 => Some(Op::Cancel(i)),
            4 => Some(Op::Shed),
            5 => Some(Op::Pause),
            _ => None,
        }
    }
}

/// The life of a connection's multishot receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recv {
    /// In flight: completions come as bytes arrive.
    Armed,
    /// Asked to stop (the connection owes too much); its last completion
    /// is still to come.
    Cancelling,
    /// Not in flight.
    Stopped,
}

struct Conn {
    stream: TcpStream,
    recv: Recv,
    /// The bytes of the send in flight (the kernel reads them until its
    /// completion: never touched meanwhile), and how many were sent.
    sending: Vec<u8>,
    sent: usize,
    in_send: bool,
    cancel_in_flight: bool,
    /// Bytes received and not yet handed to a send.
    queued: Vec<u8>,
    /// The peer has finished sending (end of stream) or the connection
    /// failed.
    finished: bool,
    failed: bool,
}

impl Conn {
    fn owed(&self) -> usize {
        self.sending.len() - self.sent + self.queued.len()
    }

    /// No operation of this connection is in flight: the kernel holds
    /// none of its buffers.
    fn quiet(&self) -> bool {
        self.recv == Recv::Stopped && !self.in_send && !self.cancel_in_flight
    }

    fn wants_recv(&self) -> bool {
        self.recv == Recv::Stopped && !self.finished && !self.failed && self.owed() < MAX_OWED
    }
}

/// The provided buffers and the ring that hands them to the kernel,
/// in memory of their own (mapped, so the kernel's writes never alias a
/// Rust reference).
struct BufRing {
    entries: NonNull<BufRingEntry>,
    buffers: NonNull<u8>,
    tail: u16,
}

impl BufRing {
    fn ring_bytes() -> usize {
        usize::from(BUFFERS) * mem::size_of::<BufRingEntry>()
    }

    fn buffer_bytes() -> usize {
        usize::from(BUFFERS) * BUFFER_SIZE
    }

    /// Maps the memory, registers the ring as buffer group [`GROUP`] and
    /// gives the kernel every buffer.
    fn new(ring: &IoUring) -> io::Result<BufRing> {
        let entries = map(Self::ring_bytes())?.cast::<BufRingEntry>();
        let buffers = match map(Self::buffer_bytes()) {
            Ok(b) => b,
            Err(e) => {
                unmap(entries.cast(), Self::ring_bytes());
                return Err(e);
            }
        };
        let mut br = BufRing {
            entries,
            buffers,
            tail: 0,
        };
        // SAFETY: `entries` is a page-aligned mapping of BUFFERS entries,
        // alive until `br` is dropped, which unregisters it first.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries.as_ptr() as u64,
                BUFFERS,
                GROUP,
                0,
            )?
        };
        for bid in 0..BUFFERS {
            br.give(bid);
        }
        br.publish();
        Ok(br)
    }

    /// Puts buffer `bid` back at the ring's tail (seen by the kernel at
    /// the next [`publish`](BufRing::publish)).
    fn give(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (BUFFERS - 1));
        // SAFETY: `slot` < BUFFERS, inside the mapping; the kernel reads
        // only entries below the published tail, and this one is past it.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        // SAFETY: `bid` < BUFFERS, so the buffer is inside its mapping.
        let addr = unsafe { self.buffers.as_ptr().add(usize::from(bid) * BUFFER_SIZE) };
        entry.set_addr(addr as u64);
        entry.set_len(BUFFER_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lies in the first entry, inside the
        // mapping; the kernel reads it, so it is written atomically, with
        // release ordering so the entries are written before it moves.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid`, which a completion has just
    /// handed back to the program.
    fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        assert!(
            bid < BUFFERS && len <= BUFFER_SIZE,
            "buffer {bid}, {len} bytes"
        );
        // SAFETY: inside the mapping (checked above); the kernel wrote the
        // buffer before posting the completion and does not touch it again
        // until it is given back with `give`, after this borrow ends.
        unsafe {
            std::slice::from_raw_parts(
                self.buffers.as_ptr().add(usize::from(bid) * BUFFER_SIZE),
                len,
            )
        }
    }
}

impl Drop for BufRing {
    /// Unregister it first (the kernel keeps the pages it was given
    /// pinned until then, so an unregistered ring is the only clean one).
    fn drop(&mut self) {
        unmap(self.entries.cast(), Self::ring_bytes());
        unmap(self.buffers, Self::buffer_bytes());
    }
}

fn map(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous private mapping: no file, no address hint.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

fn unmap(p: NonNull<u8>, len: usize) {
    // SAFETY: `p` is a mapping of `len` bytes from `map`, used no more.
    unsafe { libc::munmap(p.as_ptr().cast(), len) };
}

/// Whether this kernel runs the model: a ring, a provided-buffer ring
/// (5.19) and multishot receive (6.0) must all be there.
pub fn available() -> io::Result<()> {
    let ring = IoUring::new(8)?;
    let buffers = BufRing::new(&ring)?;
    ring.submitter().unregister_buf_ring(GROUP)?;
    drop(buffers);
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    if !probe.is_supported(opcode::RecvMulti::CODE) {
        return Err(io::Error::other("this kernel's io_uring has no receive"));
    }
    Ok(())
}

/// The server: serves until an error stops it.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    let mut ring = IoUring::new(RING_ENTRIES)?;
    let buffers = BufRing::new(&ring)?;
    let mut server = Server {
        conns: Vec::new(),
        free: Vec::new(),
        buffers,
        pending: Vec::new(),
        stopped: Vec::new(),
        listener: listener.as_raw_fd(),
        spare: Spare::new()?,
        refusing: false,
        pause: Timespec::from(ACCEPT_PAUSE),
    };
    let err = server.run(&mut ring);
    let _ = ring.submitter().unregister_buf_ring(GROUP);
    err
}

impl Server {
    /// Submits, waits for completions, handles them; until an error.
    fn run(&mut self, ring: &mut IoUring) -> io::Result<()> {
        self.accept();
        let mut done = Vec::new();
        loop {
            self.submit(ring)?;
            ring.submit_and_wait(1)?;
            done.clear();
            done.extend(
                ring.completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(data, res, flags) in &done {
                self.complete(data, res, flags)?;
            }
            self.buffers.publish();
            self.rearm();
        }
    }
}

struct Server {
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    buffers: BufRing,
    /// Operations to submit at the end of this batch.
    pending: Vec<squeue::Entry>,
    /// Connections whose receive stopped or whose debt shrank this batch:
    /// the ones [`Server::rearm`] looks at (never all of them).
    stopped: Vec<usize>,
    listener: RawFd,
    /// Given up to take a client when out of descriptors ([`Op::Shed`]).
    spare: Spare,
    /// Out of descriptors since the last client served: refusing clients
    /// has been reported.
    refusing: bool,
    /// The timeout of [`Op::Pause`] (the kernel reads it when the timeout
    /// is submitted).
    pause: Timespec,
}

impl Server {
    fn accept(&mut self) {
        let e = opcode::AcceptMulti::new(Fd(self.listener)).build();
        self.pending.push(e.user_data(Op::Accept.encode()));
    }

    fn recv(&mut self, i: usize) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        c.recv = Recv::Armed;
        let e = opcode::RecvMulti::new(Fd(c.stream.as_raw_fd()), GROUP).build();
        self.pending.push(e.user_data(Op::Recv(i).encode()));
    }

    /// Starts a send of everything queued, if none is in flight.
    fn send(&mut self, i: usize) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if c.in_send || c.failed {
            return;
        }
        if c.sent == c.sending.len() {
            if c.queued.is_empty() {
                return;
            }
            c.sending.clear();
            c.sent = 0;
            mem::swap(&mut c.sending, &mut c.queued);
        }
        let rest = &c.sending[c.sent..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        let e = opcode::Send::new(Fd(c.stream.as_raw_fd()), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        c.in_send = true;
        self.pending.push(e.user_data(Op::Send(i).encode()));
    }

    fn cancel(&mut self, i: usize) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if c.recv != Recv::Armed || c.cancel_in_flight {
            return;
        }
        c.recv = Recv::Cancelling;
        c.cancel_in_flight = true;
        let e = opcode::AsyncCancel::new(Op::Recv(i).encode()).build();
        self.pending.push(e.user_data(Op::Cancel(i).encode()));
    }

    /// Hands the batch's operations to the kernel.
    fn submit(&mut self, ring: &mut IoUring) -> io::Result<()> {
        for e in self.pending.drain(..) {
            loop {
                // SAFETY: every buffer an entry points at outlives its
                // operation: a send's bytes stay in `Conn::sending`,
                // untouched while `in_send`, and a connection (its buffers
                // and descriptor) is dropped only when `quiet`; receives
                // use the provided buffers, which live as long as the ring;
                // a pause's timeout is the server's own `pause`.
                let pushed = unsafe { ring.submission().push(&e) };
                if pushed.is_ok() {
                    break;
                }
                ring.submit()?; // the queue is full: hand it over first
            }
        }
        Ok(())
    }

    /// Handles one completion; an error stops the server (an accept that
    /// failed for a reason that will not pass).
    fn complete(&mut self, data: u64, res: i32, flags: u32) -> io::Result<()> {
        match Op::decode(data) {
            Some(Op::Accept) => return self.accepted(res, flags),
            Some(Op::Shed) => return self.shed_done(res),
            Some(Op::Pause) => {
                // Try again; out of descriptors still, the accept fails at
                // once and sheds or pauses anew.
                self.spare.recover();
                self.accept();
            }
            Some(Op::Recv(i)) => self.received(i, res, flags),
            Some(Op::Send(i)) => self.sent(i, res),
            Some(Op::Cancel(i)) => {
                if let Some(c) = self.conns[i].as_mut() {
                    c.cancel_in_flight = false;
                }
                self.maybe_close(i);
            }
            None => {}
        }
        Ok(())
    }

    /// A completion of the multishot accept: a client, or why none came.
    fn accepted(&mut self, res: i32, flags: u32) -> io::Result<()> {
        let more = cqueue::more(flags);
        if res >= 0 {
            // SAFETY: a successful accept's result is a new descriptor
            // that nothing else owns.
            self.add(unsafe { TcpStream::from_raw_fd(res) });
            if !more {
                self.accept(); // the multishot accept ended: start another
            }
            return Ok(());
        }
        if more {
            return Ok(()); // still armed (a failure ends it, on the kernels seen)
        }
        let e = io::Error::from_raw_os_error(-res);
        if common::is_fd_exhaustion(&e) {
            // Armed again now, it would fail at once, again and again.
            self.shed();
        } else if common::is_per_connection(&e) {
            self.accept(); // that client died in the backlog: the next may do
        } else {
            return Err(io::Error::new(e.kind(), format!("accept: {e}")));
        }
        Ok(())
    }

    /// Out of descriptors: frees the spare and arms one accept, which takes
    /// the next client with the spare's number, now or when one comes.
    fn shed(&mut self) {
        if !self.refusing {
            self.refusing = true;
            refuse::refused();
        }
        if !self.spare.recover() {
            return self.pause();
        }
        self.spare.release();
        let e = opcode::Accept::new(Fd(self.listener), ptr::null_mut(), ptr::null_mut()).build();
        self.pending.push(e.user_data(Op::Shed.encode()));
    }

    /// The accept of [`Server::shed`] is done: the client is refused, or
    /// served if there is room for the spare besides (clients have left
    /// meanwhile); either way the multishot accept is armed again, and at
    /// the limit still it fails at once and sheds the next client.
    fn shed_done(&mut self, res: i32) -> io::Result<()> {
        if res >= 0 {
            // SAFETY: as in `accepted`.
            let stream = unsafe { TcpStream::from_raw_fd(res) };
            if self.spare.recover() {
                self.add(stream);
            } else {
                drop(stream); // refused: the client hears at once
                self.spare.recover();
            }
            self.accept();
            return Ok(());
        }
        self.spare.recover();
        let e = io::Error::from_raw_os_error(-res);
        if common::is_fd_exhaustion(&e) {
            // The spare's number went elsewhere, or the system is out.
            self.pause();
        } else if common::is_per_connection(&e) {
            self.accept();
        } else {
            return Err(io::Error::new(e.kind(), format!("accept: {e}")));
        }
        Ok(())
    }

    /// Out of descriptors with no spare to shed with: accepting stops for
    /// [`ACCEPT_PAUSE`] (the clients wait in the backlog meanwhile).
    fn pause(&mut self) {
        refuse::no_spare();
        let e = opcode::Timeout::new(&self.pause).build();
        self.pending.push(e.user_data(Op::Pause.encode()));
    }

    /// Serves a new client.
    fn add(&mut self, stream: TcpStream) {
        self.refusing = false;
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            stream,
            recv: Recv::Stopped,
            sending: Vec::new(),
            sent: 0,
            in_send: false,
            cancel_in_flight: false,
            queued: Vec::new(),
            finished: false,
            failed: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.recv(i);
    }

    fn received(&mut self, i: usize, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if !cqueue::more(flags) {
            c.recv = Recv::Stopped;
            self.stopped.push(i);
        }
        match res {
            n if n > 0 => {
                let bid = bid.expect("a receive with bytes names its buffer");
                c.queued
                    .extend_from_slice(self.buffers.bytes(bid, n as usize));
                self.buffers.give(bid);
            }
            0 => c.finished = true,
            e if -e == libc::ENOBUFS || -e == libc::ECANCELED => {} // armed again below
            _ => {
                c.failed = true;
                c.finished = true;
            }
        }
        if c.owed() >= MAX_OWED {
            self.cancel(i);
        }
        self.send(i);
        self.maybe_close(i);
    }

    fn sent(&mut self, i: usize, res: i32) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        c.in_send = false;
        if res <= 0 {
            // The peer is gone (or a send took nothing, which would only
            // repeat): nothing more can be echoed to it.
            c.failed = true;
            c.finished = true;
            self.cancel(i);
        } else {
            c.sent += res as usize;
            self.stopped.push(i); // it may owe little enough to receive again
            self.send(i);
        }
        self.maybe_close(i);
    }

    /// Closes a connection that is over, once the kernel holds nothing of
    /// it.
    fn maybe_close(&mut self, i: usize) {
        let Some(c) = self.conns[i].as_ref() else {
            return;
        };
        let over = c.failed || (c.finished && c.owed() == 0);
        if over && c.quiet() {
            self.conns[i] = None; // closes the descriptor
            self.free.push(i);
        }
    }

    /// Arms the receives that stopped (ended, cancelled, out of buffers)
    /// on connections that want more and owe little enough.
    fn rearm(&mut self) {
        while let Some(i) = self.stopped.pop() {
            if self.conns[i].as_ref().is_some_and(Conn::wants_recv) {
                self.recv(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_comes_back_from_its_user_data() {
        for op in [
            Op::Accept,
            Op::Recv(0),
            Op::Recv(12_345),
            Op::Send(7),
            Op::Cancel((1 << 56) - 1),
            Op::Shed,
            Op::Pause,
        ] {
            assert_eq!(Op::decode(op.encode()), Some(op));
        }
        assert_eq!(Op::decode(6 << 56), None);
    }
}
