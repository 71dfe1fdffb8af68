//! The backends, in two tiers.
//!
//! - Kernel-list backends keep the interest list in the kernel, so a wait
//!   costs in proportion to the ready descriptors: [`epoll`], and `uring`
//!   (io_uring, behind the `io-uring` feature), whose list is the poll
//!   requests in flight.
//! - User-space scanning backends keep the registrations themselves and hand
//!   the whole set to the kernel on every wait, so a wait costs in
//!   proportion to the registered descriptors: [`scan`], one engine with two
//!   thin kernels, poll and select.
//!
//! Every backend checks its input with the shared [`rules`](crate::rules)
//! before touching any state.

mod epoll;
mod scan;
#[cfg(feature = "io-uring")]
mod uring;

pub use epoll::Epoll;
pub use scan::select::FD_SETSIZE;
pub use scan::{Poll, Select};
#[cfg(feature = "io-uring")]
pub use uring::Uring;
