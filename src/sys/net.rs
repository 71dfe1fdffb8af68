//! Sockets for the task layer: a connect that does not block (std's
//! `connect` does), and the `O_NONBLOCK` flag for any descriptor.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::syscall;

/// Sets `O_NONBLOCK` on `fd`, keeping its other status flags. Returns
/// whether it was clear (and so was set here).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<bool> {
    let flags = super::status_flags(fd)?;
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(false);
    }
    // SAFETY: F_SETFL with an int argument; an invalid fd is an error.
    syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    Ok(true)
}

/// Clears `O_NONBLOCK` on `fd`, keeping its other status flags: undoes
/// [`set_nonblocking`].
pub(crate) fn clear_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = super::status_flags(fd)?;
    // SAFETY: F_SETFL with an int argument; an invalid fd is an error.
    syscall!(fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK))?;
    Ok(())
}

/// A new non-blocking stream socket of `family`.
fn stream_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes plain integers.
    let fd = syscall!(socket(family, kind, 0))?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Starts connecting a non-blocking TCP socket to `addr`. The connection
/// may still be in progress: wait until the socket is writable, then read
/// `SO_ERROR`.
pub(crate) fn connect_tcp(addr: &SocketAddr) -> io::Result<OwnedFd> {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for
            // every socket address type, `sockaddr_in` included.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let family = libc::c_int::from(storage.ss_family);
    let fd = stream_socket(family)?;
    let ptr = (&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr>();
    // SAFETY: `ptr` points to an initialised socket address of `len` bytes.
    match syscall!(connect(fd.as_raw_fd(), ptr, len as libc::socklen_t)) {
        Ok(_) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(fd),
        Err(e) => Err(e),
    }
}

/// Connects a non-blocking Unix stream socket to the socket at `path`.
/// A Unix connect completes at once or fails: `WouldBlock` when the
/// listener's backlog is full.
pub(crate) fn connect_unix(path: &Path) -> io::Result<OwnedFd> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: all-zero bytes are a valid `sockaddr_un`.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a Unix socket path must be shorter than 108 bytes, without NUL",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    let fd = stream_socket(libc::AF_UNIX)?;
    let ptr = (&addr as *const libc::sockaddr_un).cast::<libc::sockaddr>();
    // SAFETY: `ptr` points to an initialised `sockaddr_un` of at least `len` bytes.
    syscall!(connect(fd.as_raw_fd(), ptr, len as libc::socklen_t))?;
    Ok(fd)
}
