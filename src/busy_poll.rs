//! Busy polling per epoll instance (Linux 6.9: `EPIOCSPARAMS`,
//! `EPIOCGPARAMS`): [`BusyPoll`], [`Epoll::set_busy_poll`],
//! [`Epoll::busy_poll`], and the same on [`AnyPoller`], which refuses them
//! for the other backends.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::sys::busy_poll as sys;
use crate::{AnyPoller, Epoll, Error, Op, Poller, Result};

/// An epoll instance's busy-poll parameters.
///
/// With busy polling on, a wait that finds nothing ready first polls the
/// network device's receive queues itself (through NAPI) for up to
/// [`usecs`](BusyPoll::usecs), instead of sleeping until the device's
/// interrupt and the softirq deliver the packet. That saves the interrupt
/// and wake-up latency, at the cost of a CPU spinning meanwhile.
///
/// When it helps: a latency-bound server (request/response, small
/// messages, a core to spare) on a NIC whose driver uses NAPI, with the
/// sockets of one epoll instance served by the same receive queue (the
/// kernel busy-polls one NAPI id per instance; see `SO_INCOMING_NAPI_ID`
/// and `SO_REUSEPORT` steering). Loopback and Unix sockets have no device
/// queue to poll, so they show no gain, and neither does a throughput-bound
/// load. The kernel's own documentation is
/// `Documentation/networking/napi.rst` ("Busy polling").
///
/// ```
/// use tripoll::{BusyPoll, Capabilities, Epoll, Error, Poller};
///
/// let poller = Epoll::new()?;
/// if poller.capabilities().contains(Capabilities::BUSY_POLL) {
///     let wanted = BusyPoll { usecs: 50, budget: 8, prefer: true };
///     poller.set_busy_poll(wanted)?;
///     assert_eq!(poller.busy_poll()?, wanted);
///     poller.set_busy_poll(BusyPoll::default())?; // off again
/// } else {
///     // A kernel before 6.9, or a seccomp profile that refuses the ioctl.
///     assert!(matches!(poller.busy_poll(), Err(Error::FeatureUnavailable { .. })));
/// }
/// # Ok::<(), tripoll::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BusyPoll {
    /// How long a wait may busy-poll before it sleeps, in microseconds;
    /// 0 turns busy polling off (the default). At most `i32::MAX`.
    pub usecs: u32,
    /// How many packets one poll of the device may process; 0 means the
    /// kernel's default (`BUSY_POLL_BUDGET`, 8). Above 64
    /// (`NAPI_POLL_WEIGHT`) needs `CAP_NET_ADMIN`.
    pub budget: u16,
    /// Prefer busy polling to interrupt-driven processing
    /// (`prefer_busy_poll`): with the device's IRQ deferral settings
    /// (`napi_defer_hard_irqs`, `gro_flush_timeout`), the kernel keeps the
    /// interrupts off while the application polls.
    pub prefer: bool,
}

impl BusyPoll {
    fn from_raw(p: &sys::Params) -> BusyPoll {
        BusyPoll {
            usecs: p.busy_poll_usecs,
            budget: p.busy_poll_budget,
            prefer: p.prefer_busy_poll != 0,
        }
    }

    fn to_raw(self) -> sys::Params {
        sys::Params {
            busy_poll_usecs: self.usecs,
            busy_poll_budget: self.budget,
            prefer_busy_poll: u8::from(self.prefer),
            __pad: 0,
        }
    }
}

/// What the ioctl's refusal means: the kernel does not know it (`ENOTTY`
/// before 6.9), or a seccomp profile refuses it (`ENOSYS`, `EPERM`,
/// `EACCES`, ...).
fn unavailable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTTY | libc::ENOSYS | libc::EPERM | libc::EACCES | libc::EOPNOTSUPP)
    )
}

fn refused(e: io::Error) -> Error {
    Error::FeatureUnavailable {
        feature: "busy poll",
        reason: format!("EPIOCGPARAMS/EPIOCSPARAMS refused: {e} (Linux 6.9 has them)"),
    }
}

/// Whether the kernel answered `EPIOCGPARAMS`: unknown, yes, no. Probed
/// once per process, by the first [`Epoll::capabilities`] that asks.
static PROBED: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

/// Whether `epoll` can take busy-poll parameters here.
pub(crate) fn available(epoll: &Epoll) -> bool {
    // Miri cannot emulate the ioctl (an unsupported operation ends its
    // run), so under it busy polling is reported missing, as on an old
    // kernel.
    if cfg!(miri) {
        return false;
    }
    match PROBED.load(Ordering::Relaxed) {
        YES => true,
        NO => false,
        _ => {
            let yes = sys::get(epoll.as_fd()).is_ok();
            PROBED.store(if yes { YES } else { NO }, Ordering::Relaxed);
            yes
        }
    }
}

impl Epoll {
    /// Sets this instance's busy-poll parameters (see [`BusyPoll`] for
    /// when it helps); [`BusyPoll::default()`] turns busy polling off.
    /// [`Capabilities::BUSY_POLL`](crate::Capabilities::BUSY_POLL) says in
    /// advance whether the kernel has it.
    ///
    /// ```
    /// use tripoll::{BusyPoll, Epoll, Error};
    ///
    /// let poller = Epoll::new()?;
    /// match poller.set_busy_poll(BusyPoll { usecs: 20, budget: 0, prefer: false }) {
    ///     Ok(()) => assert_eq!(poller.busy_poll()?.usecs, 20),
    ///     Err(Error::FeatureUnavailable { feature, .. }) => assert_eq!(feature, "busy poll"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::FeatureUnavailable`] (`"busy poll"`) on a kernel before 6.9
    /// or under a seccomp profile that refuses the ioctl; [`Error::Io`]
    /// with [`Op::BusyPoll`] for values the kernel refuses (`usecs` above
    /// `i32::MAX`: `EINVAL`; a `budget` above 64 without `CAP_NET_ADMIN`:
    /// `EPERM`). Nothing is changed then.
    pub fn set_busy_poll(&self, params: BusyPoll) -> Result<()> {
        match sys::set(self.as_fd(), &params.to_raw()) {
            Ok(()) => Ok(()),
            // The one EPERM the kernel itself answers is for a budget above
            // NAPI_POLL_WEIGHT without the capability.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && params.budget > 64 => {
                Err(Error::io(Op::BusyPoll)(e))
            }
            Err(e) if unavailable(&e) => Err(refused(e)),
            Err(e) => Err(Error::io(Op::BusyPoll)(e)),
        }
    }

    /// This instance's busy-poll parameters, as the kernel holds them.
    ///
    /// ```
    /// use tripoll::{BusyPoll, Epoll};
    ///
    /// let poller = Epoll::new()?;
    /// if let Ok(params) = poller.busy_poll() {
    ///     assert_eq!(params, BusyPoll::default()); // off in a new instance
    /// }
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`set_busy_poll`](Epoll::set_busy_poll).
    pub fn busy_poll(&self) -> Result<BusyPoll> {
        match sys::get(self.as_fd()) {
            Ok(p) => Ok(BusyPoll::from_raw(&p)),
            Err(e) if unavailable(&e) => Err(refused(e)),
            Err(e) => Err(Error::io(Op::BusyPoll)(e)),
        }
    }
}

fn not_epoll(p: &AnyPoller) -> Error {
    Error::FeatureUnavailable {
        feature: "busy poll",
        reason: format!(
            "the {} backend has no busy polling (epoll has)",
            p.backend()
        ),
    }
}

impl AnyPoller {
    /// [`Epoll::set_busy_poll`] when the backend is epoll.
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, BusyPoll, Error};
    ///
    /// let poller = AnyPoller::new(Backend::Poll)?;
    /// assert!(matches!(
    ///     poller.set_busy_poll(BusyPoll { usecs: 10, budget: 0, prefer: false }),
    ///     Err(Error::FeatureUnavailable { .. })
    /// ));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::FeatureUnavailable`] for every other backend; otherwise as
    /// [`Epoll::set_busy_poll`].
    pub fn set_busy_poll(&self, params: BusyPoll) -> Result<()> {
        match self {
            AnyPoller::Epoll(p) => p.set_busy_poll(params),
            other => Err(not_epoll(other)),
        }
    }

    /// [`Epoll::busy_poll`] when the backend is epoll.
    ///
    /// ```
    /// use tripoll::{AnyPoller, Backend, Error};
    ///
    /// let poller = AnyPoller::new(Backend::Select)?;
    /// assert!(matches!(poller.busy_poll(), Err(Error::FeatureUnavailable { .. })));
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`set_busy_poll`](AnyPoller::set_busy_poll).
    pub fn busy_poll(&self) -> Result<BusyPoll> {
        match self {
            AnyPoller::Epoll(p) => p.busy_poll(),
            other => Err(not_epoll(other)),
        }
    }
}
