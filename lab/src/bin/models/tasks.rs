//! The coroutine model: one task per connection, written like a thread per
//! client (read, then write it all back), run by one reactor on one thread
//! through `tripoll::task`. The tutorials' gevent server, with async/await.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tripoll::reactor::Reactor;
use tripoll::task::{sleep, Async, Executor, Spawner};
use tripoll::AnyPoller;

use crate::common::ACCEPT_PAUSE;
use crate::refuse::Refuser;

/// Serves clients on `listener` with one task each until killed.
pub fn tasks(listener: TcpListener, poller: AnyPoller) -> io::Result<()> {
    let mut reactor = Reactor::with_poller(poller);
    let ex = Executor::new();
    let listener = ex.block_on(&mut reactor, async { Async::new(listener) })??;
    ex.spawn(accept(listener, ex.spawner(), Refuser::new()?));
    ex.run(&mut reactor)
}

/// Out of descriptors, refuses the clients it cannot serve (see
/// [`Refuser`]); an empty backlog is waited for as any `WouldBlock`.
async fn accept(listener: Async<TcpListener>, ex: Spawner, mut refuser: Refuser) {
    loop {
        let accepted = listener.read_with(|l| refuser.accept(l)).await;
        match accepted.and_then(|conn| conn.map(Async::new).transpose()) {
            Ok(Some(conn)) => {
                let _ = conn.get_ref().set_nodelay(true);
                // A client that goes away ends its own task, nothing else.
                drop(ex.spawn(async move { drop(echo(conn).await) }));
            }
            // Out of descriptors with no spare to shed with.
            Ok(None) => drop(sleep(ACCEPT_PAUSE).await),
            // Something else: wait a moment, not spin.
            Err(_) => drop(sleep(Duration::from_millis(100)).await),
        }
    }
}

async fn echo(conn: Async<TcpStream>) -> io::Result<()> {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
    }
}
