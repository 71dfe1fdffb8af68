//! An echo server written with `tripoll::task`: one task per connection,
//! code that reads like a thread per client, run by one reactor on one
//! thread. `examples/reactor_echo.rs` is the same server with callbacks.
//!
//! `cargo run --example async_echo -- [--backend NAME] [ADDR]` (default
//! `127.0.0.1:8001`; the backend defaults to `TRIPOLL_BACKEND`, else epoll);
//! Ctrl-C stops it.
//!
//! `write_all` waits until the socket takes everything before the task
//! reads again, so a client that sends without reading fills its own
//! buffers, not the server's memory (each connection holds one 16 KiB
//! buffer); a client that sends nothing, or takes none of its echo, for a
//! minute is closed; a client that resets ends its own task (one line on
//! stderr) and nothing else. Out of descriptors, accepting pauses for
//! 100 ms; the lab's `async_http` shows shedding with a spare descriptor.

mod common;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use tripoll::reactor::Reactor;
use tripoll::task::{timeout, Async, Executor, Spawner};
use tripoll::{Mode, Poller};

const USAGE: &str = "\
async_echo: an echo server on tripoll's async/await layer

Usage: async_echo [--backend epoll|poll|select|uring] [ADDR]

ADDR defaults to 127.0.0.1:8001 (port 0 picks a free port); the backend
defaults to $TRIPOLL_BACKEND, else epoll. Runs until SIGINT (Ctrl-C).
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = common::Options::parse("async_echo", USAGE, "127.0.0.1:8001");
    let addr = opts.addr.as_str();
    let mut reactor = Reactor::with_poller(opts.poller("async_echo"));
    reactor.on_signal(libc::SIGINT, |ctx, _| {
        ctx.stop(); // ends `ex.run` below
        Ok(())
    })?;
    let backend = reactor.poller().name();
    let mode = if reactor.poller().supports(Mode::Edge) {
        "edge"
    } else {
        "oneshot"
    };
    let ex = Executor::new();
    // `Async::new` registers with the reactor driving the task it runs in.
    let listener = ex.block_on(&mut reactor, async { Async::new(TcpListener::bind(addr)?) })??;
    println!(
        "async_echo: listening on {} (backend {backend}, mode {mode})",
        listener.get_ref().local_addr()?
    );
    ex.spawn(accept(listener, ex.spawner()));
    ex.run(&mut reactor)?; // until Ctrl-C
    Ok(())
}

async fn accept(listener: Async<TcpListener>, ex: Spawner) {
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                // Out of descriptors, say: wait for some to close, not spin.
                eprintln!("async_echo: accept: {e}");
                let _ = tripoll::task::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        ex.spawn(async move {
            if let Err(e) = echo(conn).await {
                eprintln!("async_echo: connection from {peer}: {e}");
            }
        });
    }
}

/// How long a connection may send nothing, or take none of its echo.
const IDLE: Duration = Duration::from_secs(60);

async fn echo(conn: Async<TcpStream>) -> io::Result<()> {
    let mut buf = vec![0; 16 * 1024];
    loop {
        // `timeout` fails when the time is up: close quietly.
        let Ok(read) = timeout(IDLE, conn.read(&mut buf)).await else {
            return Ok(());
        };
        let n = read?;
        if n == 0 {
            return Ok(()); // the peer closed; dropping `conn` closes ours
        }
        let Ok(written) = timeout(IDLE, conn.write_all(&buf[..n])).await else {
            return Ok(());
        };
        written?;
    }
}
