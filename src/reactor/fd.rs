//! A reactor's descriptor, for nesting it in another event loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use super::Reactor;
use crate::Poller;

/// A reactor over a poller with a descriptor of its own ([`Epoll`](crate::Epoll))
/// lends it: readable when a source is ready or a [`Handle`](super::Handle)
/// woke the loop (a [`post`](super::Handle::post), a
/// [`stop`](super::Handle::stop)), so an outer loop can watch it and turn
/// the reactor with [`run_once`](Reactor::run_once)`(Some(Duration::ZERO))`
/// when it is.
///
/// Timers live in user space and never make it readable: an outer loop
/// that relies on the reactor's timers must also turn it by their deadlines.
/// The default `Reactor<AnyPoller>` has no `AsFd` (poll and select have no
/// such descriptor); ask [`AnyPoller::pollable_fd`](crate::AnyPoller::pollable_fd)
/// through [`poller`](Reactor::poller) instead.
///
/// ```
/// use std::time::Duration;
/// use tripoll::reactor::Reactor;
/// use tripoll::{Epoll, Events, Interest, Mode, Poller, Token};
///
/// let mut reactor = Reactor::with_poller(Epoll::new()?);
/// let outer = Epoll::new()?;
/// outer.register_source(&reactor, Token(0), Interest::READABLE, Mode::Level)?;
///
/// reactor.handle().post(|ctx| {
///     ctx.stop();
///     Ok(())
/// })?;
/// let mut events = Events::with_capacity(4);
/// outer.wait(&mut events, Some(Duration::from_secs(1)))?;
/// assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(0)));
/// assert_eq!(reactor.run_once(Some(Duration::ZERO))?, 1); // the posted closure ran
/// outer.unregister_source(&reactor)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<P: Poller + AsFd> AsFd for Reactor<P> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poller().as_fd()
    }
}

impl<P: Poller + AsFd> AsRawFd for Reactor<P> {
    /// The poller's descriptor; see [`as_fd`](Reactor::as_fd).
    fn as_raw_fd(&self) -> RawFd {
        self.poller().as_fd().as_raw_fd()
    }
}
