//! What a registration asks for: readiness [`Interest`] and trigger [`Mode`].

use std::fmt;
use std::str::FromStr;

use bitflags::bitflags;

use crate::sys::bits;
use crate::{Error, Result};

bitflags! {
    /// The readiness a registration asks to hear about.
    ///
    /// Errors and hang-ups are always reported, whatever the interest; an
    /// empty interest therefore still tells you when the descriptor fails or
    /// its peer goes away.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let both = Interest::READABLE | Interest::WRITABLE;
    /// assert!(both.contains(Interest::WRITABLE) && !both.contains(Interest::PRIORITY));
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, b) = UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(1), Interest::empty(), Mode::Level)?;
    /// let mut events = Events::with_capacity(4);
    /// // Writable, but nobody asked: nothing to report.
    /// assert_eq!(poller.wait(&mut events, Some(Duration::ZERO))?, 0);
    /// poller.modify(a.as_raw_fd(), Token(1), both, Mode::Level)?;
    /// assert_eq!(poller.wait(&mut events, Some(Duration::from_secs(1)))?, 1);
    /// # drop(b);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Interest: u8 {
        /// Data can be read without blocking (or the peer closed its side).
        const READABLE = 0b001;
        /// Data can be written without blocking.
        const WRITABLE = 0b010;
        /// Urgent data is waiting: TCP out-of-band (`MSG_OOB`) data, a
        /// pseudo-terminal state change, a `sysfs` attribute update.
        const PRIORITY = 0b100;
    }
}

impl Interest {
    /// The `EPOLL*` readiness bits this interest covers: what epoll is
    /// asked for, and what the scanning backends let through. Readable
    /// interest includes `EPOLLRDHUP`, so a half-closed peer is seen.
    pub(crate) fn readiness_mask(self) -> u32 {
        let mut out = 0;
        if self.contains(Interest::READABLE) {
            out |= bits::IN | bits::RDHUP;
        }
        if self.contains(Interest::WRITABLE) {
            out |= bits::OUT;
        }
        if self.contains(Interest::PRIORITY) {
            out |= bits::PRI;
        }
        out
    }
}

/// How often a ready descriptor is reported.
///
/// | mode | reported | backends |
/// |---|---|---|
/// | [`Level`](Mode::Level) (default) | on every wait while ready | all |
/// | [`Edge`](Mode::Edge) | once per change to ready; drain to `WouldBlock` | epoll |
/// | [`Oneshot`](Mode::Oneshot) | once, then disarmed until [`modify`](crate::Poller::modify) | all |
/// | [`EdgeOneshot`](Mode::EdgeOneshot) | once per edge, then disarmed | epoll |
/// | [`Exclusive`](Mode::Exclusive) | level, and only one of several pollers on the same fd is woken | epoll |
/// | [`EdgeExclusive`](Mode::EdgeExclusive) | edge, and only one of several pollers is woken | epoll |
///
/// Ask [`Poller::supports`](crate::Poller::supports) before relying on a mode:
/// a backend that cannot honour one refuses it with
/// [`Error::Unsupported`](crate::Error::Unsupported) before changing anything.
/// Exclusive registrations cannot be modified (a kernel rule; [`Error::ModifyExclusive`](crate::Error::ModifyExclusive)): unregister and
/// register again instead.
///
/// Modes have names (`level`, `edge`, `oneshot`, `edge-oneshot`,
/// `exclusive`, `edge-exclusive`) for command lines and configuration:
/// [`Display`](fmt::Display) writes them (honouring width and alignment) and
/// [`FromStr`] reads them back in any letter case; an unknown name is
/// [`Error::UnknownName`](crate::Error::UnknownName), never a silent default.
/// The set of modes may grow (the enum is `#[non_exhaustive]`).
///
/// ```
/// use tripoll::Mode;
///
/// let mode: Mode = "Edge-Oneshot".parse()?;
/// assert_eq!(mode, Mode::EdgeOneshot);
/// assert!(mode.is_edge() && mode.is_oneshot());
/// assert_eq!(format!("[{:<9}]", Mode::Edge), "[edge     ]");
/// assert!("edgy".parse::<Mode>().is_err());
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Level-triggered: reported on every wait for as long as it is ready.
    #[default]
    Level,
    /// Edge-triggered (`EPOLLET`): reported when it becomes ready; no new
    /// event arrives until new readiness does, so read or write until
    /// `WouldBlock`.
    Edge,
    /// Level-triggered, one event (`EPOLLONESHOT`): after it is reported the
    /// registration is disarmed, reporting nothing (not even hang-up) until
    /// re-armed with [`modify`](crate::Poller::modify).
    Oneshot,
    /// Edge-triggered and one event (`EPOLLET | EPOLLONESHOT`).
    EdgeOneshot,
    /// Level-triggered with `EPOLLEXCLUSIVE`: when several pollers watch the
    /// same descriptor, one event wakes one of them instead of all (the
    /// thundering herd on a shared listening socket). The kernel allows no
    /// `EPOLLRDHUP` here, so a half-closed peer shows as readable only (the
    /// read that returns 0 tells), and no [`Interest::PRIORITY`]: that
    /// combination is refused with [`Error::Unsupported`](crate::Error::Unsupported).
    Exclusive,
    /// Edge-triggered with `EPOLLEXCLUSIVE`.
    EdgeExclusive,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 6] = [
        Mode::Level,
        Mode::Edge,
        Mode::Oneshot,
        Mode::EdgeOneshot,
        Mode::Exclusive,
        Mode::EdgeExclusive,
    ];

    /// The name [`Display`](fmt::Display) writes and [`FromStr`] reads:
    /// `"level"`, `"edge"`, `"oneshot"`, `"edge-oneshot"`, `"exclusive"` or
    /// `"edge-exclusive"`.
    ///
    /// ```
    /// assert_eq!(tripoll::Mode::EdgeExclusive.name(), "edge-exclusive");
    /// ```
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Level => "level",
            Mode::Edge => "edge",
            Mode::Oneshot => "oneshot",
            Mode::EdgeOneshot => "edge-oneshot",
            Mode::Exclusive => "exclusive",
            Mode::EdgeExclusive => "edge-exclusive",
        }
    }

    /// Whether this mode is edge-triggered.
    ///
    /// ```
    /// use tripoll::Mode;
    ///
    /// assert!(Mode::Edge.is_edge() && Mode::EdgeOneshot.is_edge());
    /// assert!(!Mode::Level.is_edge() && !Mode::Oneshot.is_edge());
    /// ```
    #[must_use]
    pub const fn is_edge(self) -> bool {
        matches!(self, Mode::Edge | Mode::EdgeOneshot | Mode::EdgeExclusive)
    }

    /// Whether this mode disarms after one event.
    ///
    /// ```
    /// use tripoll::Mode;
    ///
    /// // A oneshot registration reports once, then waits to be re-armed
    /// // with `modify`.
    /// assert!(Mode::Oneshot.is_oneshot() && Mode::EdgeOneshot.is_oneshot());
    /// assert!(!Mode::Level.is_oneshot() && !Mode::Exclusive.is_oneshot());
    /// ```
    #[must_use]
    pub const fn is_oneshot(self) -> bool {
        matches!(self, Mode::Oneshot | Mode::EdgeOneshot)
    }

    /// Whether this mode sets `EPOLLEXCLUSIVE`.
    ///
    /// ```
    /// use tripoll::Mode;
    ///
    /// // Several pollers waiting on one listener: only one is woken.
    /// assert!(Mode::Exclusive.is_exclusive() && Mode::EdgeExclusive.is_exclusive());
    /// assert!(!Mode::Edge.is_exclusive());
    /// ```
    #[must_use]
    pub const fn is_exclusive(self) -> bool {
        matches!(self, Mode::Exclusive | Mode::EdgeExclusive)
    }

    /// The capabilities a backend needs to honour this mode.
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, Capabilities, Mode, Poller};
    ///
    /// assert_eq!(Mode::Level.requires(), Capabilities::empty());
    /// assert!(Mode::EdgeOneshot.requires().contains(Capabilities::EDGE | Capabilities::ONESHOT));
    /// // What `supports` checks.
    /// let poll = AnyPoller::new(Backend::Poll)?;
    /// assert_eq!(poll.supports(Mode::Edge), poll.capabilities().contains(Mode::Edge.requires()));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    pub const fn requires(self) -> Capabilities {
        let mut caps = Capabilities::empty();
        if self.is_edge() {
            caps = caps.union(Capabilities::EDGE);
        }
        if self.is_oneshot() {
            caps = caps.union(Capabilities::ONESHOT);
        }
        if self.is_exclusive() {
            caps = caps.union(Capabilities::EXCLUSIVE);
        }
        caps
    }
}

/// The names of every mode, joined for error messages.
const MODE_NAMES: &str = "level, edge, oneshot, edge-oneshot, exclusive, edge-exclusive";

impl fmt::Display for Mode {
    /// The mode's [`name`](Mode::name), honouring width and alignment
    /// (`{:12}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Parses a mode's [`name`](Mode::name), ignoring letter case.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for anything else.
    fn from_str(s: &str) -> Result<Mode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownName {
                what: "mode",
                name: s.to_owned(),
                expected: MODE_NAMES,
            })
    }
}

bitflags! {
    /// What a backend can do beyond level-triggered readiness, as reported by
    /// [`Poller::capabilities`](crate::Poller::capabilities).
    ///
    /// ```
    /// use tripoll::{AnyPoller, Capabilities, Mode, Poller};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let caps = poller.capabilities();
    /// // What `supports` answers, spelled out:
    /// assert_eq!(poller.supports(Mode::Edge), caps.contains(Capabilities::EDGE));
    /// assert_eq!(Mode::EdgeOneshot.requires(), Capabilities::EDGE | Capabilities::ONESHOT);
    /// // Every backend does oneshot (poll and select emulate it).
    /// assert!(caps.contains(Capabilities::ONESHOT));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Capabilities: u8 {
        /// Edge-triggered registrations ([`Mode::Edge`], [`Mode::EdgeOneshot`]).
        const EDGE = 0b0001;
        /// Oneshot registrations ([`Mode::Oneshot`]); native on epoll,
        /// emulated on poll and select.
        const ONESHOT = 0b0010;
        /// `EPOLLEXCLUSIVE` registrations ([`Mode::Exclusive`]).
        const EXCLUSIVE = 0b0100;
        /// [`Event::is_read_closed`](crate::Event::is_read_closed) is reported
        /// when the peer shuts down its writing side. Without it a closed peer
        /// shows as readable, and the read that returns 0 tells.
        const READ_CLOSED = 0b1000;
        /// Descriptors of any number can be registered (select is limited to
        /// numbers below `FD_SETSIZE`).
        const UNBOUNDED_FDS = 0b1_0000;
        /// [`Event::is_write_closed`](crate::Event::is_write_closed) is
        /// reported when writing is over (hang-up, or an error on a
        /// writable descriptor). Select sees neither hang-up nor errors: a
        /// reset socket is readable and writable to it, and the write that
        /// fails tells.
        const WRITE_CLOSED = 0b10_0000;
        /// Per-instance busy polling ([`Epoll::set_busy_poll`](crate::Epoll::set_busy_poll)):
        /// epoll on Linux 6.9 and later, where no seccomp profile refuses
        /// the ioctl.
        const BUSY_POLL = 0b100_0000;
    }
}
