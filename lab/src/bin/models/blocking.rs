//! The blocking models: every `read` and `write` waits, so a thread of
//! control serves one client at a time, and serving many takes many
//! threads of control (processes, threads, a pool).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr;
use std::thread;

use crate::common;

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

/// The tutorials' first server: while one client is served, the next waits
/// in the accept queue.
pub fn one_at_a_time(listener: TcpListener) -> io::Result<()> {
    loop {
        echo(accept(&listener)?);
    }
}

/// A thread per connection: the kernel's scheduler does the multiplexing.
pub fn thread_per_connection(listener: TcpListener) -> io::Result<()> {
    loop {
        let stream = accept(&listener)?;
        thread::Builder::new().spawn(move || echo(stream))?;
    }
}

/// `workers` threads that each accept and serve one client at a time: the
/// thread count is fixed, and so is the number of clients served at once.
pub fn thread_pool(listener: TcpListener, workers: usize) -> io::Result<()> {
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                match accept(&listener) {
                    Ok(stream) => echo(stream),
                    Err(e) => common::die(crate::PROG, format!("pool worker: accept: {e}")),
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
