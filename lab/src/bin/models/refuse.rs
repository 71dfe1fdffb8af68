//! Every model at its descriptor limit. Out of descriptors, `accept`
//! fails (EMFILE, or ENFILE for the whole system) before it looks at the
//! backlog, so a server that exits there ends every client's service
//! because of one client too many, and one that tries again at once spins
//! while the clients beyond the limit wait in the backlog. Instead a
//! thread keeps a spare descriptor ([`Spare`]); at the limit it frees it,
//! accepts the next client with its number, closes that client at once
//! and takes the spare back: the client is refused, the clients already
//! served go on being served, and nothing spins (an empty backlog is
//! waited for like any other). One line on stderr says so, at most once a
//! second for the whole server.
//!
//! The readiness models and the coroutine model accept on non-blocking
//! listeners ([`Refuser::accept`]); the thread models on blocking ones
//! ([`Refuser::take`]). `uring-completion` hands its accepts to the ring
//! and sheds in `completion.rs`, with the same [`Spare`].

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::common::{self, LogLimit, Shed, Spare, ACCEPT_PAUSE};
use crate::PROG;

/// The server's one rate limit for these lines, whichever thread, loop or
/// model (`uring-completion` too) refuses.
static LOG: Mutex<LogLimit> = Mutex::new(LogLimit::new(Duration::from_secs(1)));

fn note(msg: &str) {
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .note(PROG, msg);
}

pub fn refused() {
    note("out of descriptors: refusing new clients until some close");
}

pub fn no_spare() {
    note(&format!(
        "out of descriptors and no spare to shed with: not accepting for {} ms",
        ACCEPT_PAUSE.as_millis()
    ));
}

/// What one accepting thread keeps for the descriptor limit: its spare.
pub struct Refuser {
    spare: Spare,
}

impl Refuser {
    pub fn new() -> io::Result<Refuser> {
        Ok(Refuser {
            spare: Spare::new()?,
        })
    }

    /// The next client to serve from non-blocking `listener`: `Ok(None)`
    /// when out of descriptors with no spare to shed with (the caller
    /// stops accepting for [`ACCEPT_PAUSE`]), `WouldBlock` once the
    /// backlog is empty. Out of descriptors, every client in the backlog
    /// is refused. Errors that concern one connection only are skipped.
    pub fn accept(&mut self, listener: &TcpListener) -> io::Result<Option<TcpStream>> {
        loop {
            match listener.accept() {
                Ok((stream, _)) => return Ok(Some(stream)),
                Err(e) if common::is_fd_exhaustion(&e) => {
                    match self.spare.shed(listener, refused) {
                        Shed::Refused => {}
                        Shed::Empty => return Err(io::ErrorKind::WouldBlock.into()),
                        Shed::Pause => {
                            no_spare();
                            return Ok(None);
                        }
                    }
                }
                Err(e) if common::is_per_connection(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Out of descriptors, on blocking `listener` (an accept just failed
    /// for want of one): refuses the clients that wait in the backlog for
    /// longer than `grace`, until one comes while there is room for it
    /// besides the spare (clients have left); that one is returned, to be
    /// served. With no spare to shed with, waits [`ACCEPT_PAUSE`] before
    /// trying again.
    ///
    /// It waits for clients in `poll`, not in `accept`: a thread waiting
    /// in `accept` holds a descriptor number, and the kernel hands each
    /// new client to the thread that has waited longest, so other threads
    /// of a pool that wait in `accept` (each with a number of its own)
    /// would have their clients refused here. The `grace` gives them the
    /// time to take a client: one still waiting after it has no thread to
    /// serve it.
    pub fn take(&mut self, listener: &TcpListener, grace: Duration) -> io::Result<TcpStream> {
        loop {
            wait_readable(listener, None)?;
            thread::sleep(grace);
            while wait_readable(listener, Some(Duration::ZERO))? {
                if !self.spare.recover() {
                    no_spare();
                    thread::sleep(ACCEPT_PAUSE);
                    continue;
                }
                self.spare.release();
                // A client is waiting: this takes it at once (or, should a
                // thread of a pool have taken it meanwhile, the next one).
                let accepted = listener.accept();
                let room = self.spare.recover();
                match accepted {
                    Ok((stream, _)) if room => return Ok(stream),
                    Ok((stream, _)) => {
                        drop(stream); // the client hears at once
                        refused();
                    }
                    // Another thread took the spare's number first: the
                    // next turn takes a spare back, or pauses.
                    Err(e) if common::is_fd_exhaustion(&e) => {}
                    Err(e) if common::is_per_connection(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Whether `listener` has a client waiting, waiting up to `timeout` for
/// one (`None`: for as long as it takes). `poll` needs no descriptor of
/// its own.
fn wait_readable(listener: &TcpListener, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = timeout.map_or(-1, |t| {
        libc::c_int::try_from(t.as_millis()).unwrap_or(libc::c_int::MAX)
    });
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `fd` is one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
