//! Socket and descriptor-limit helpers that the tests of both crates use.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Makes `close` on this TCP socket send a reset instead of a FIN.
pub fn set_linger_zero(s: &TcpStream) {
    socket2::SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
}

/// A blocking TCP connection to `addr` whose receive buffer is set to
/// `bytes` before `connect` (so the advertised window is small from the
/// start and autotuning is off).
pub fn connect_with_receive_buffer(addr: SocketAddr, bytes: usize) -> TcpStream {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    s.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    s.connect(&addr.into())
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.into()
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `wanted`
/// descriptors (through the `rlimit` crate), raising the hard limit too
/// where the process may (root, `CAP_SYS_RESOURCE`), and returns the soft
/// limit now in force: lower than `wanted` when the hard limit could not be
/// raised, so the caller can say what it needs.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().expect("getrlimit(RLIMIT_NOFILE)");
    if soft >= wanted {
        return soft;
    }
    if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return wanted;
    }
    rlimit::increase_nofile_limit(wanted).expect("setrlimit(RLIMIT_NOFILE)")
}
