//! What a wait reports: [`Token`], [`Event`], the reusable [`Events`]
//! buffer and its [`Iter`]ator.
//!
//! The first three are also at the crate root (`tripoll::Events`); the
//! iterator lives here only, as `tripoll::event::Iter`, the type
//! [`Events::iter`] returns.
//!
//! ```
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
//!
//! let poller = AnyPoller::from_env()?;
//! let (a, mut b) = UnixStream::pair()?;
//! poller.register_source(&a, Token(9), Interest::READABLE | Interest::WRITABLE, Mode::Level)?;
//! b.write_all(b"x")?;
//! // One buffer, reused by every wait; each event names its token.
//! let mut events = Events::with_capacity(64);
//! poller.wait(&mut events, Some(Duration::from_secs(5)))?;
//! let ev = events.iter().next().expect("an event");
//! assert_eq!(ev.token(), Token(9));
//! assert!(ev.is_readable() && ev.is_writable());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use crate::sys::{bits, RawEvent};

/// The caller's key for a registration, handed back in every [`Event`].
///
/// On epoll it travels in `epoll_data`, so the kernel gives it back without a
/// lookup. [`Token::RESERVED`] (`usize::MAX`) is kept for the poller's own
/// wake-up descriptor and cannot be registered.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use tripoll::{AnyPoller, Error, Interest, Mode, Poller, Token};
///
/// // Tokens are often indices into the caller's own table of connections.
/// let conns = vec![UnixStream::pair()?.0, UnixStream::pair()?.0];
/// let poller = AnyPoller::from_env()?;
/// for (i, c) in conns.iter().enumerate() {
///     poller.register(c.as_raw_fd(), Token(i), Interest::WRITABLE, Mode::Level)?;
/// }
/// let (other, _) = UnixStream::pair()?;
/// let reserved = poller.register(other.as_raw_fd(), Token::RESERVED, Interest::READABLE, Mode::Level);
/// assert!(matches!(reserved, Err(Error::ReservedToken(Token::RESERVED))));
/// assert_eq!(usize::from(Token(1)), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl Token {
    /// The token every poller keeps for itself; registering it fails with
    /// [`Error::ReservedToken`](crate::Error::ReservedToken).
    pub const RESERVED: Token = Token(usize::MAX);
}

impl From<usize> for Token {
    fn from(n: usize) -> Token {
        Token(n)
    }
}

impl From<Token> for usize {
    fn from(t: Token) -> usize {
        t.0
    }
}

/// One readiness report: which registration, and what it is ready for.
///
/// This is a view over the kernel's `struct epoll_event`: `epoll_wait` writes
/// it directly, the poll and select backends fill in the same bits. Events
/// may be spurious (a read can still return `WouldBlock`), as with every
/// readiness API.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let (a, mut b) = UnixStream::pair()?;
/// poller.register(a.as_raw_fd(), Token(9), Interest::READABLE | Interest::WRITABLE, Mode::Level)?;
/// b.write_all(b"hi")?;
///
/// let mut events = Events::with_capacity(4);
/// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
/// let ev = events.iter().next().expect("one event for both directions");
/// assert_eq!(ev.token(), Token(9));
/// assert!(ev.is_readable() && ev.is_writable());
/// assert!(!ev.is_error() && !ev.is_hangup() && !ev.is_read_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Event(RawEvent);

impl Event {
    pub(crate) fn new(token: Token, readiness: u32) -> Event {
        Event(RawEvent {
            events: readiness,
            u64: token.0 as u64,
        })
    }

    fn bits(&self) -> u32 {
        self.0.events
    }

    fn has(&self, b: u32) -> bool {
        self.bits() & b != 0
    }

    /// The token the descriptor was registered with.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(42), Interest::READABLE, Mode::Level)?;
    /// b.write_all(b"x")?;
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// // The token says which registration this is: here the only one.
    /// assert_eq!(events.iter().next().map(|ev| ev.token()), Some(Token(42)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn token(&self) -> Token {
        Token(self.0.u64 as usize)
    }

    /// Data can be read, or the peer closed (a read then returns 0).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// b.write_all(b"x")?;
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// let ev = events.iter().next().expect("an event");
    /// assert!(ev.is_readable() && !ev.is_writable()); // only what was asked for
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_readable(&self) -> bool {
        self.has(bits::IN)
    }

    /// Data can be written.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// // An empty send buffer: writable at once.
    /// poller.register_source(&a, Token(1), Interest::WRITABLE, Mode::Level)?;
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// assert!(events.iter().next().expect("an event").is_writable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_writable(&self) -> bool {
        self.has(bits::OUT)
    }

    /// Urgent (out-of-band) data is waiting.
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// poller.register_source(&server, Token(1), Interest::PRIORITY, Mode::Level)?;
    /// // One byte of TCP urgent data (MSG_OOB), sent with the socket2 crate.
    /// assert_eq!(socket2::SockRef::from(&client).send_out_of_band(&[7])?, 1);
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// assert!(events.iter().next().expect("an event").is_priority());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_priority(&self) -> bool {
        self.has(bits::PRI)
    }

    /// The descriptor has an error pending (`SO_ERROR` tells which), or was
    /// closed while still registered with poll or select.
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// poller.register_source(&client, Token(1), Interest::READABLE, Mode::Level)?;
    /// // The peer resets the connection: SO_LINGER 0 (with the socket2
    /// // crate), then close.
    /// socket2::SockRef::from(&server).set_linger(Some(Duration::ZERO))?;
    /// drop(server);
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// let ev = events.iter().next().expect("an event");
    /// // select reports a reset as readable only; the others as an error.
    /// assert!(ev.is_error() || poller.backend() == tripoll::Backend::Select);
    /// assert_eq!(client.take_error()?.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionReset));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.has(bits::ERR)
    }

    /// Both directions are shut: the peer closed, or the connection failed.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// drop(b); // the peer closes: both directions are shut
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// let ev = events.iter().next().expect("an event");
    /// assert!(ev.is_readable()); // a read returns 0
    /// if poller.backend() != tripoll::Backend::Select {
    ///     assert!(ev.is_hangup()); // select cannot tell a hang-up
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_hangup(&self) -> bool {
        self.has(bits::HUP)
    }

    /// The peer will send no more data (it shut down its writing side or
    /// closed). Implied by [`is_hangup`](Event::is_hangup). The select backend
    /// cannot see this and reports such a peer as readable only; see
    /// [`Capabilities::READ_CLOSED`](crate::Capabilities::READ_CLOSED).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// use tripoll::Capabilities;
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// b.shutdown(std::net::Shutdown::Write)?; // the peer sends no more, but reads on
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// let ev = events.iter().next().expect("an event");
    /// let seen = poller.capabilities().contains(Capabilities::READ_CLOSED);
    /// assert_eq!(ev.is_read_closed(), seen);
    /// assert!(!ev.is_hangup()); // only one direction is shut
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_read_closed(&self) -> bool {
        self.has(bits::RDHUP | bits::HUP)
    }

    /// Writing is over: a write would fail (`EPIPE` or `ECONNRESET`), so
    /// stop queueing output for this descriptor.
    ///
    /// True when the event carries hang-up (`EPOLLHUP`: both directions are
    /// shut, or the connection was reset or refused), or an error together
    /// with writable readiness, or an error alone (the write end of a pipe
    /// whose read end is closed reports exactly that when write interest is
    /// absent). These are mio's rules for epoll, so code moving from mio sees
    /// the same answers. A peer that only shut down its writing side
    /// (`shutdown(SHUT_WR)`) is [`is_read_closed`](Event::is_read_closed)
    /// but not write-closed: this side can still send.
    ///
    /// Select sees neither hang-up nor errors (a reset socket is readable and
    /// writable to it, and the write that fails tells), so it never reports
    /// this; see [`Capabilities::WRITE_CLOSED`](crate::Capabilities::WRITE_CLOSED).
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{Epoll, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = Epoll::new()?;
    /// let mut events = Events::with_capacity(4);
    /// let (a, b) = UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(1), Interest::READABLE | Interest::WRITABLE, Mode::Level)?;
    ///
    /// b.shutdown(Shutdown::Write)?; // the peer sends no more, but still reads
    /// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// let ev = events.iter().next().expect("an event");
    /// assert!(ev.is_read_closed() && !ev.is_write_closed());
    ///
    /// drop(b); // now nobody reads what `a` would write
    /// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// let ev = events.iter().next().expect("an event");
    /// assert!(ev.is_write_closed() && ev.is_hangup());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_write_closed(&self) -> bool {
        let b = self.bits();
        self.has(bits::HUP) || (self.has(bits::ERR) && self.has(bits::OUT)) || b == bits::ERR
    }

    /// The raw `EPOLL*` bits, for callers who want the kernel's own words.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// poller.register_source(&a, Token(1), Interest::READABLE, Mode::Level)?;
    /// b.write_all(b"x")?;
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
    /// let bits = events.iter().next().expect("an event").raw_readiness();
    /// assert_ne!(bits & libc::EPOLLIN as u32, 0); // every backend speaks epoll's bits
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn raw_readiness(&self) -> u32 {
        self.bits()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token())
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("priority", &self.is_priority())
            .field("error", &self.is_error())
            .field("hangup", &self.is_hangup())
            .field("read_closed", &self.is_read_closed())
            .finish()
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.token() == other.token() && self.bits() == other.bits()
    }
}

impl Eq for Event {}

/// A reusable buffer that a [`wait`](crate::Poller::wait) fills.
///
/// Its capacity bounds how many events one wait returns; each wait replaces
/// the previous contents. When more descriptors are ready than it holds, the
/// next waits return the rest: no registration is starved. Allocate it once
/// and keep it; waiting allocates nothing.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair()).collect::<Result<_, _>>()?;
/// for (i, (a, _)) in pairs.iter().enumerate() {
///     poller.register(a.as_raw_fd(), Token(i), Interest::WRITABLE, Mode::Level)?;
/// }
///
/// // Room for two: three ready descriptors take two waits, none is left out.
/// let mut events = Events::with_capacity(2);
/// let mut seen = std::collections::BTreeSet::new();
/// for _ in 0..2 {
///     poller.wait(&mut events, Some(Duration::from_secs(1)))?;
///     assert!(events.len() <= events.capacity());
///     seen.extend(events.iter().map(|e| e.token().0));
/// }
/// assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Events {
    buf: Vec<RawEvent>,
}

impl Events {
    /// The largest capacity: what one `epoll_wait` may be asked for
    /// (`INT_MAX / sizeof(struct epoll_event)`, about 179 million). Larger
    /// requests are clamped to it.
    pub const MAX_CAPACITY: usize = crate::sys::epoll::MAX_EVENTS;

    /// The capacity of [`Events::default`]: 1024.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A buffer for up to `capacity` events per wait. A capacity of zero is
    /// raised to one, because a wait that can report nothing cannot make
    /// progress; one above [`MAX_CAPACITY`](Events::MAX_CAPACITY) is
    /// lowered to it, because no kernel wait can fill more.
    ///
    /// ```
    /// use tripoll::Events;
    ///
    /// assert_eq!(Events::with_capacity(0).capacity(), 1);
    /// assert_eq!(Events::with_capacity(64).capacity(), 64);
    /// ```
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            buf: Vec::with_capacity(capacity.clamp(1, Events::MAX_CAPACITY)),
        }
    }

    /// How many events one wait can return.
    ///
    /// ```
    /// let events = tripoll::Events::with_capacity(0);
    /// assert_eq!(events.capacity(), 1); // a wait must be able to report something
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity().min(Events::MAX_CAPACITY)
    }

    /// How many events the last wait returned.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let mut events = Events::with_capacity(8);
    /// assert_eq!(events.len(), 0);
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(0), Interest::WRITABLE, Mode::Level)?;
    /// let n = poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// assert_eq!((n, events.len()), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the last wait returned nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Poller};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let mut events = Events::default();
    /// poller.wait(&mut events, Some(Duration::ZERO))?; // nothing registered
    /// assert!(events.is_empty());
    /// # Ok::<(), tripoll::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the events of the last wait.
    /// A wait replaces the contents anyway; this is for a loop that keeps
    /// the buffer between waits and must not act on old events twice.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(0), Interest::WRITABLE, Mode::Level)?;
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// assert!(!events.is_empty());
    /// events.clear();
    /// assert!(events.is_empty() && events.capacity() == 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The events of the last wait.
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, mut b) = UnixStream::pair()?;
    /// let (c, mut d) = UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(1), Interest::READABLE, Mode::Level)?;
    /// poller.register(c.as_raw_fd(), Token(2), Interest::READABLE, Mode::Level)?;
    /// b.write_all(b"x")?;
    /// d.write_all(b"y")?;
    ///
    /// let mut events = Events::with_capacity(8);
    /// let mut tokens = Vec::new();
    /// while tokens.len() < 2 {
    ///     poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    ///     tokens = events.iter().map(|e| e.token()).collect(); // level: both stay ready
    /// }
    /// tokens.sort();
    /// assert_eq!(tokens, [Token(1), Token(2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.as_slice().iter(),
        }
    }

    /// The events of the last wait, as a slice.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::time::Duration;
    /// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
    ///
    /// let poller = AnyPoller::from_env()?;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// poller.register(a.as_raw_fd(), Token(4), Interest::WRITABLE, Mode::Level)?;
    /// let mut events = Events::with_capacity(8);
    /// poller.wait(&mut events, Some(Duration::from_secs(1)))?;
    /// let [ev] = events.as_slice() else { panic!("one event") };
    /// assert_eq!(ev.token(), Token(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn as_slice(&self) -> &[Event] {
        // Not in `sys`, unlike every other `unsafe`: `Event` is the public
        // view of the kernel's record, defined in this file, and `sys`
        // knows no public type. It is a cast between two layouts, no FFI.
        // SAFETY: `Event` is `repr(transparent)` over `RawEvent`, so a slice of
        // initialised `RawEvent`s is a valid slice of `Event`s.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<Event>(), self.buf.len()) }
    }

    /// The kernel's records behind the events, for `epoll_wait` to fill
    /// (`sys` takes raw buffers, never this type). Its capacity is the
    /// events' capacity; nothing may grow it.
    pub(crate) fn raw_mut(&mut self) -> &mut Vec<RawEvent> {
        &mut self.buf
    }

    /// Appends one event; returns false when the buffer is full.
    pub(crate) fn push(&mut self, event: Event) -> bool {
        if self.buf.len() == self.buf.capacity() {
            return false;
        }
        self.buf.push(event.0);
        true
    }

    /// Adds readiness bits to the event at `index`, if there is one.
    #[cfg(feature = "io-uring")]
    pub(crate) fn add_readiness(&mut self, index: usize, readiness: u32) {
        if let Some(ev) = self.buf.get_mut(index) {
            ev.events |= readiness;
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() == self.buf.capacity()
    }

    /// Removes every event carrying `token`, returning whether there was one.
    /// Order is not kept: the last event takes the removed one's place.
    pub(crate) fn remove_token(&mut self, token: Token) -> bool {
        let mut found = false;
        let mut i = 0;
        while i < self.buf.len() {
            if self.buf[i].u64 == token.0 as u64 {
                self.buf.swap_remove(i);
                found = true;
            } else {
                i += 1;
            }
        }
        found
    }
}

impl Default for Events {
    /// A buffer for 1024 events per wait: room enough for a busy loop
    /// without a large allocation (16 KiB).
    ///
    /// ```
    /// assert_eq!(tripoll::Events::default().capacity(), tripoll::Events::DEFAULT_CAPACITY);
    /// ```
    fn default() -> Events {
        Events::with_capacity(Events::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("capacity", &self.capacity())
            .field("events", &self.as_slice())
            .finish()
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the events of the last wait; see [`Events::iter`].
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use tripoll::event::Iter;
/// use tripoll::{AnyPoller, Events, Interest, Mode, Poller, Token};
///
/// let poller = AnyPoller::from_env()?;
/// let (a, mut b) = UnixStream::pair()?;
/// poller.register_source(&a, Token(3), Interest::READABLE, Mode::Level)?;
/// b.write_all(b"x")?;
/// let mut events = Events::with_capacity(4);
/// poller.wait(&mut events, Some(Duration::from_secs(5)))?;
/// let iter: Iter<'_> = events.iter();
/// assert_eq!(iter.len(), 1); // an exact size
/// assert_eq!(iter.map(|ev| ev.token()).collect::<Vec<_>>(), [Token(3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, Event>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Event;

    fn next(&mut self) -> Option<&'a Event> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}
