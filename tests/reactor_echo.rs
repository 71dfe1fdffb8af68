//! The reactor's teaching example, `examples/reactor_echo.rs`: it keeps
//! serving on every backend while one client sends 10 MB without reading
//! and another resets its connection mid-stream; a well-behaved client gets
//! its whole echo meanwhile, and the hog, once it reads, gets back every
//! byte it sent.
//!
//! The example runs as a child process (`common::child`); every socket has
//! a timeout, so a broken server fails the test instead of hanging it.

mod common;

use common::child::{self, listen_addrs, Proc};

const NAME: &str = "reactor_echo";

fn survives_hostile_clients(backend: &str) {
    let mut server = Proc::spawn_env(
        child::example(NAME),
        &["127.0.0.1:0"],
        &[("TRIPOLL_BACKEND", backend)],
    );
    let banner = server.line();
    assert!(
        banner.ends_with(&format!("(backend {backend})")),
        "{banner}"
    );
    let addr = listen_addrs(NAME, &banner)[0];

    common::hostile::echo_survives_hostile_clients(addr);

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
