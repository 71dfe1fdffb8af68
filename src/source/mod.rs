//! Typed sources for what a loop waits on besides sockets: signals,
//! timers, child processes and wake-ups, each an owned descriptor that
//! Linux makes readable when the thing happens.
//!
//! Each source holds its descriptor ([`AsFd`](std::os::fd::AsFd)), so it
//! registers with any [`Poller`](crate::Poller) through
//! [`register_source`](crate::Poller::register_source) (every backend;
//! select takes descriptors below [`FD_SETSIZE`](crate::FD_SETSIZE) as
//! always), and each has a non-blocking read that says what happened, or
//! `None` when nothing has:
//!
//! | source | kernel object | readable when | read gives |
//! |---|---|---|---|
//! | [`Signals`] | `signalfd` | a signal of the set is pending | [`SignalInfo`]: number, sender, `sigqueue` value |
//! | [`Timer`] | `timerfd` | it expired | the expirations since the last read |
//! | [`ChildExit`] | `pidfd` | the child exited | its [`ExitStatus`](std::process::ExitStatus), reaped |
//! | [`Wake`] | `eventfd` | someone called [`wake`](Wake::wake) | the wake-ups since the last read |
//!
//! The [reactor](crate::reactor) takes its signals through [`Signals`] and
//! child exits through [`ChildExit`]; the [task layer](crate::task) awaits
//! all of them through [`Async`](crate::task::Async).
//!
//! ```
//! use std::time::Duration;
//! use tripoll::source::{Clock, Timer, Wake};
//! use tripoll::{Epoll, Events, Interest, Mode, Poller, Token};
//!
//! let poller = Epoll::new()?;
//! let timer = Timer::new(Clock::Monotonic)?;
//! let wake = Wake::new()?;
//! poller.register_source(&timer, Token(1), Interest::READABLE, Mode::Level)?;
//! poller.register_source(&wake, Token(2), Interest::READABLE, Mode::Level)?;
//!
//! timer.set_after(Duration::from_secs(60))?;
//! wake.wake()?;
//! let mut events = Events::with_capacity(4);
//! poller.wait(&mut events, None)?;
//! let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
//! assert_eq!(tokens, [Token(2)]); // the wake-up, long before the timer
//! # Ok::<(), tripoll::Error>(())
//! ```

mod child;
mod signal;
mod timer;
mod wake;

pub use child::ChildExit;
pub(crate) use signal::check as check_signal;
pub use signal::{SignalInfo, Signals};
pub use timer::{Clock, Start, Timer};
pub use wake::Wake;
