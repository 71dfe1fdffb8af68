//! # tripoll
//!
//! A thin, safe wrapper over Linux `epoll(7)`, with `poll(2)`, `select(2)`
//! and io_uring readiness backends behind the same [`Poller`] trait and one
//! contract, so the I/O multiplexing models can be swapped with one word and
//! compared. On top: a callback [`reactor`] and an async/await layer,
//! [`task`].
//!
//! - [`Epoll`] offers every trigger [`Mode`]: level (the default), edge,
//!   oneshot, edge + oneshot, and `EPOLLEXCLUSIVE`.
//! - [`Poll`] and [`Select`] offer level and (emulated) oneshot.
//! - `Uring` (feature `io-uring`) offers level, edge, oneshot and edge +
//!   oneshot through `IORING_OP_POLL_ADD`.
//! - [`AnyPoller`] picks one at run time, from a [`Backend`] or from the
//!   `TRIPOLL_BACKEND` environment variable.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
//!
//! # fn main() -> std::io::Result<()> {
//! let poller = AnyPoller::from_env()?; // epoll unless TRIPOLL_BACKEND says otherwise
//! let (mut a, mut b) = UnixStream::pair()?;
//! a.set_nonblocking(true)?;
//! poller.register_source(&a, Token(7), Interest::READABLE, Mode::Level)?;
//!
//! b.write_all(b"ping")?;
//! let mut events = Events::with_capacity(16);
//! poller.wait(&mut events, Some(Duration::from_secs(1)))?;
//!
//! let ev = events.iter().next().expect("one event");
//! assert_eq!(ev.token(), Token(7));
//! assert!(ev.is_readable());
//! let mut buf = [0; 4];
//! a.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//!
//! poller.unregister_source(&a)?;
//! # Ok(())
//! # }
//! ```
//!
//! The contract every backend keeps is written on [`Poller`].
//!
//! # One backend, four names
//!
//! Each backend has one name in each place it can be chosen:
//!
//! | backend | type | [`Backend`] | `TRIPOLL_BACKEND`, `--backend` | cargo feature |
//! |---|---|---|---|---|
//! | `epoll(7)` | [`Epoll`] | `Backend::Epoll` | `epoll` | none |
//! | `poll(2)` | [`Poll`] | `Backend::Poll` | `poll` | none |
//! | `select(2)` | [`Select`] | `Backend::Select` | `select` | none |
//! | io_uring readiness | `Uring` | `Backend::IoUring` | `uring` | `io-uring` |
//!
//! (The feature is named after the `io-uring` crate it brings in; the short
//! `uring` is what a command line takes and what [`Backend::name`] gives.)
//!
//! # Errors: three conventions, one per layer
//!
//! - The pollers return [`Result<T, tripoll::Error>`](Error): a typed error
//!   saying which rule a call broke (a mode the backend lacks, a descriptor
//!   select cannot hold, a token reserved for the poller) or which system
//!   call failed, so callers can match on it. It converts into
//!   [`std::io::Error`] with the matching [`ErrorKind`](std::io::ErrorKind),
//!   so `?` works in I/O code.
//! - The [`reactor`] returns [`reactor::Error`]: the poller's errors
//!   ([`reactor::Error::Poller`]) plus the reactor's own (an unknown token,
//!   a signal it cannot handle, a timer without a period); it converts into
//!   `io::Error` too. Handlers return [`std::io::Result`], since what fails
//!   in a handler is I/O.
//! - The [`task`] layer returns [`std::io::Result`], as the `std::io`
//!   operations its futures stand in for (`read`, `write_all`, `accept`)
//!   do; a poller's refusal arrives converted.

#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(rust_2018_idioms, unreachable_pub)]

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!("tripoll needs Linux or Android: its event record is epoll's");

mod any;
mod backend;
mod busy_poll;
mod error;
pub mod event;
mod interest;
mod kind;
mod poller;
pub mod reactor;
mod rules;
pub mod source;
mod sys;
pub mod task;

pub use any::AnyPoller;
#[cfg(feature = "io-uring")]
pub use backend::Uring;
pub use backend::{Epoll, Poll, Select, FD_SETSIZE};
pub use busy_poll::BusyPoll;
pub use error::{Error, Op, Result};
pub use event::{Event, Events, Token};
pub use interest::{Capabilities, Interest, Mode};
pub use kind::Backend;
pub use poller::Poller;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
