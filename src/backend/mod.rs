//! The three backends. Each file exports one poller type with the same
//! shape; poll and select share their user-space bookkeeping through
//! [`userspace`].

mod epoll;
mod poll;
mod registry;
mod select;
#[cfg(feature = "io-uring")]
mod uring;
mod userspace;

pub use epoll::Epoll;
pub use poll::Poll;
pub use select::{Select, FD_SETSIZE};
#[cfg(feature = "io-uring")]
pub use uring::Uring;
