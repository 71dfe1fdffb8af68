//! [`Backend`]: the names of the I/O multiplexing models, parsed from text
//! and from `TRIPOLL_BACKEND`. A low module: every backend and the
//! [`Poller`] trait name themselves with it, and it depends on none of
//! them ([`AnyPoller`](crate::AnyPoller), which builds one from a name,
//! sits above them all).

use std::fmt;
use std::str::FromStr;

#[allow(unused_imports)] // for the documentation's links
use crate::Poller;
use crate::{Error, Result};

/// The I/O multiplexing models: which [`Poller`] implementation to use.
///
/// Parse one from its name (`"epoll".parse()`, any letter case) or from
/// the `TRIPOLL_BACKEND` environment variable ([`Backend::from_env`]), and
/// build it with [`AnyPoller::new`](crate::AnyPoller::new).
///
/// ```
/// use tripoll::Backend;
///
/// let b: Backend = "Select".parse()?;
/// assert_eq!(b, Backend::Select);
/// assert_eq!(format!("[{b:>8}]"), "[  select]");
/// assert!("kqueue".parse::<Backend>().is_err());
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// `epoll(7)`: the kernel keeps the interest list; a wait costs in
    /// proportion to the ready descriptors. Linux only.
    Epoll,
    /// `poll(2)`: the whole descriptor array goes to the kernel on every
    /// wait; no limit on descriptor numbers.
    Poll,
    /// `select(2)`: three `FD_SETSIZE`-bit bitmaps per wait; descriptors must
    /// be below 1024.
    Select,
    /// `io_uring(7)` readiness (`IORING_OP_POLL_ADD`), named `uring`: the
    /// kernel completes one poll request per readiness report. Needs the
    /// `io-uring` cargo feature and a kernel and system that allow io_uring;
    /// otherwise [`AnyPoller::new`](crate::AnyPoller::new) fails with [`Error::Unavailable`] (never
    /// a quiet fall-back to another backend).
    IoUring,
}

/// Every backend and its name, from the most scalable to the least: the
/// one list that [`Backend::ALL`], [`Backend::name`] and parsing read.
const NAMES: [(Backend, &str); 4] = [
    (Backend::Epoll, "epoll"),
    (Backend::Poll, "poll"),
    (Backend::Select, "select"),
    (Backend::IoUring, "uring"),
];

impl Backend {
    /// Every backend, from the most scalable to the least. One may be
    /// unavailable where the program runs ([`Error::Unavailable`]): io_uring
    /// without its cargo feature, or where the system forbids it.
    pub const ALL: [Backend; NAMES.len()] = {
        let mut all = [Backend::Epoll; NAMES.len()];
        let mut i = 0;
        while i < NAMES.len() {
            all[i] = NAMES[i].0;
            i += 1;
        }
        all
    };

    /// The environment variable [`Backend::from_env`] reads.
    pub const ENV_VAR: &'static str = "TRIPOLL_BACKEND";

    /// The lower-case name: `"epoll"`, `"poll"`, `"select"` or `"uring"`.
    ///
    /// ```
    /// use tripoll::Backend;
    ///
    /// let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
    /// assert_eq!(names, ["epoll", "poll", "select", "uring"]);
    /// // The name parses back to the backend.
    /// assert_eq!(Backend::Select.name().parse::<Backend>()?, Backend::Select);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn name(self) -> &'static str {
        let mut i = 0;
        while i < NAMES.len() {
            if NAMES[i].0 as u8 == self as u8 {
                return NAMES[i].1;
            }
            i += 1;
        }
        "unknown" // unreachable: every variant is in NAMES (tested)
    }

    /// The platform's best backend: epoll (the crate builds for Linux and
    /// Android only).
    ///
    /// ```
    /// assert_eq!(tripoll::Backend::platform_default(), tripoll::Backend::Epoll);
    /// ```
    #[must_use]
    pub const fn platform_default() -> Backend {
        Backend::Epoll
    }

    /// The backend named by `TRIPOLL_BACKEND` (`epoll`, `poll`, `select` or
    /// `uring`, any letter case), or [`platform_default`](Backend::platform_default)
    /// when the variable is unset or empty.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBackend`] for any other value, including one that is
    /// not valid Unicode: a typo never silently selects another backend.
    ///
    /// ```
    /// use tripoll::Backend;
    ///
    /// // What `TRIPOLL_BACKEND=...` selects; here whatever the environment says.
    /// match Backend::from_env() {
    ///     Ok(backend) => println!("the backend is {backend}"),
    ///     Err(e) => println!("TRIPOLL_BACKEND is wrong: {e}"),
    /// }
    /// // Unset or empty gives the platform's default.
    /// if std::env::var_os(Backend::ENV_VAR).map_or(true, |v| v.is_empty()) {
    ///     assert_eq!(Backend::from_env()?, Backend::platform_default());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env() -> Result<Backend> {
        match std::env::var_os(Self::ENV_VAR) {
            None => Ok(Backend::platform_default()),
            Some(v) if v.is_empty() => Ok(Backend::platform_default()),
            Some(v) => match v.to_str() {
                Some(s) => s.parse(),
                None => Err(Error::UnknownBackend {
                    name: v.to_string_lossy().into_owned(),
                }),
            },
        }
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::platform_default()
    }
}

impl fmt::Display for Backend {
    /// The name, honouring width and alignment (`{:8}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    /// Parses `epoll`, `poll`, `select` or `uring`, ignoring letter case.
    fn from_str(s: &str) -> Result<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownBackend { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_has_its_own_name() {
        for (i, b) in Backend::ALL.into_iter().enumerate() {
            assert_eq!(b.name(), NAMES[i].1);
            assert_ne!(b.name(), "unknown");
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
    }
}
