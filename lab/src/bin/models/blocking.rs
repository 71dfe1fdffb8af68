//! The blocking models: every `read` and `write` waits, so a thread of
//! control serves one client at a time, and serving many takes many
//! threads of control (processes, threads, a pool).
//!
//! At the descriptor limit the thread and pool models refuse the clients
//! they cannot serve ([`Refuser::take`]); the one-at-a-time and process
//! models never get there (one connection at a time; a parent that keeps
//! none).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::common;
use crate::refuse::Refuser;

/// Echoes one client until it closes: the whole protocol, in blocking
/// style.
fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The next connection; errors that concern only that connection (it died
/// in the queue) are skipped.
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if common::is_per_connection(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// How long a client beyond the descriptor limit waits in the backlog
/// before a pool refuses it: ample time for a worker waiting in `accept`,
/// were one free, to take it.
const GRACE: Duration = Duration::from_millis(50);

/// What the accepting threads of a model share for the descriptor limit:
/// one spare, used by one thread at a time (the others wait their turn
/// here, not in `accept`), once every thread has made its first accept.
struct AtLimit {
    refuser: Mutex<Refuser>,
    /// Threads that have not yet made their first accept. A thread's
    /// waiting `accept` holds a descriptor number while it waits: until
    /// every thread has made its first one, one of them could take the
    /// number the spare frees, and the spare would be lost while the
    /// clients hold the rest.
    starting: AtomicUsize,
    /// How long a client waits in the backlog before it is refused: time
    /// for the other threads waiting in `accept` to take it (see
    /// [`Refuser::take`]).
    grace: Duration,
}

impl AtLimit {
    fn new(threads: usize) -> io::Result<AtLimit> {
        Ok(AtLimit {
            refuser: Mutex::new(Refuser::new()?),
            starting: AtomicUsize::new(threads),
            grace: if threads > 1 { GRACE } else { Duration::ZERO },
        })
    }

    /// The calling thread is about to make its first accept.
    fn started(&self) {
        self.starting.fetch_sub(1, Ordering::AcqRel);
    }

    /// As [`accept`]; out of descriptors, refuses clients until it can
    /// serve one (see [`Refuser::take`]), one thread at a time.
    fn accept(&self, listener: &TcpListener) -> io::Result<TcpStream> {
        match accept(listener) {
            Err(e) if common::is_fd_exhaustion(&e) => {
                let mut refuser = self.refuser.lock().unwrap_or_else(PoisonError::into_inner);
                while self.starting.load(Ordering::Acquire) > 0 {
                    thread::sleep(GRACE);
                }
                let stream = refuser.take(listener, self.grace)?;
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            accepted => accepted,
        }
    }
}

/// The tutorials' first server: while one client is served, the next waits
/// in the accept queue.
pub fn one_at_a_time(listener: TcpListener) -> io::Result<()> {
    loop {
        echo(accept(&listener)?);
    }
}

/// A thread per connection: the kernel's scheduler does the multiplexing.
pub fn thread_per_connection(listener: TcpListener) -> io::Result<()> {
    let limit = AtLimit::new(1)?;
    limit.started();
    loop {
        let stream = limit.accept(&listener)?;
        thread::Builder::new().spawn(move || echo(stream))?;
    }
}

/// `workers` threads that each accept and serve one client at a time: the
/// thread count is fixed, and so is the number of clients served at once.
///
/// Each worker waiting in `accept` holds a descriptor number while it
/// waits, so below `workers` descriptors some workers find none at all;
/// they take turns to refuse the clients no worker takes, with the one
/// spare (see [`AtLimit`]).
pub fn thread_pool(listener: TcpListener, workers: usize) -> io::Result<()> {
    let limit = AtLimit::new(workers)?;
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                limit.started();
                loop {
                    match limit.accept(&listener) {
                        Ok(stream) => echo(stream),
                        Err(e) => common::die(crate::PROG, format!("pool worker: accept: {e}")),
                    }
                }
            });
        }
    });
    Ok(())
}

/// A process per connection, as in the tutorials: `fork` after `accept`;
/// the child serves the client and exits, the parent closes its copy of
/// the connection and accepts the next. Finished children are reaped by a
/// SIGCHLD handler, so their CPU time is added to the parent's (`cutime`,
/// `cstime` in `/proc/PID/stat`).
pub fn process_per_connection(listener: TcpListener) -> io::Result<()> {
    reap_children_on_sigchld()?;
    loop {
        let stream = accept(&listener)?;
        // SAFETY: this process has one thread (the `--serve` main thread),
        // so the child inherits no lock held by another thread and may use
        // the allocator and std freely.
        match unsafe { libc::fork() } {
            -1 => return Err(io::Error::last_os_error()),
            0 => {
                echo(stream);
                // `_exit`, not `exit`: no atexit handlers, no flushing of the
                // stdio buffers copied from the parent. Exiting closes every
                // descriptor, the listener included.
                // SAFETY: ends this process; nothing runs after it.
                unsafe { libc::_exit(0) }
            }
            _ => drop(stream),
        }
    }
}

extern "C" fn reap_children(_: libc::c_int) {
    // SAFETY: waitpid is async-signal-safe; errno is saved and restored so
    // the interrupted code does not see the handler's.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        while libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG) > 0 {}
        *errno = saved;
    }
}

fn reap_children_on_sigchld() -> io::Result<()> {
    // SAFETY: all-zero is a valid sigaction (no flags, empty handler).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = reap_children as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SA_RESTART: a blocked `accept` resumes after the handler instead of
    // failing with EINTR.
    sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
    // SAFETY: `sa` is a valid sigaction whose handler only calls
    // async-signal-safe functions; the old action is not wanted (null).
    let rc = unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGCHLD, &sa, ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
