//! Model-based property tests: random sequences of registrations, I/O on
//! Unix stream socket pairs and zero-timeout waits, checked against a small
//! model of what each backend must report.
//!
//! Every slot is a connected `UnixStream` pair: `ours` is the end that gets
//! registered, `peer` is the other end that the operations write into, read
//! from, shut down and close. The model keeps what the kernel keeps for
//! `ours` (bytes queued each way, shut-down bits, the pending `ECONNRESET`)
//! and, for epoll's edge-triggered modes, which wake-ups reach the
//! registration.
//!
//! What the model encodes was measured on Linux 6.x with small probes before
//! it was written down; the facts it rests on:
//!
//! * `ours` is always writable: writes are kept small and few, so its send
//!   buffer never fills, and that stays true after the peer closes.
//! * readable iff bytes are queued or the peer shut down its writing side
//!   (`EPOLLRDHUP` with it); hang-up iff both directions are shut (the peer
//!   closed, or shut down both sides).
//! * a peer that closes while bytes we sent it are unread leaves
//!   `ECONNRESET` pending on `ours`: `EPOLLERR` until a read with nothing
//!   queued returns that error (and clears it).
//! * select has no error, hang-up or read-closed bits: readable is
//!   `IN | HUP | ERR`, writable is `OUT | ERR`, and a registration with
//!   neither readable nor writable interest is never reported.
//! * epoll's edge modes report when a wake-up reached the registration and
//!   the descriptor is ready (for its interest) at the time of the wait.
//!   Wake-ups on `ours`: the peer writing (keyed `IN | PRI`: it passes a
//!   registration with readable or priority interest), the peer consuming a
//!   whole buffer we wrote (keyed `OUT`: writable interest only; a partial
//!   read frees nothing and wakes nobody), and every shutdown or close of
//!   the peer (unkeyed: passes every registration). Our own reads and writes
//!   wake nothing on `ours`. `register` and `modify` queue an event when the
//!   descriptor is ready for the new interest.
//!
//! Each backend is checked against the model alone; then the same sequences
//! (level and oneshot only) run on all three side by side, and epoll and
//! poll must report identical events while select reports their projection.
//!
//! `PROPTEST_CASES` scales every test here (the default is 1000 cases for
//! each per-backend run); `scripts/memcheck.sh` sets it low.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use tripoll::{AnyPoller, Backend, Capabilities, Error, Events, Interest, Mode, Poller, Token};

const SLOTS: usize = 4;
/// Tokens a slot may be registered with: `slot * TOKENS_PER_SLOT + t`, so an
/// event always names its slot.
const TOKENS_PER_SLOT: usize = 4;
/// At most this many unread writes queued in each direction: keeps both send
/// buffers far from full (each small write costs about 1 KiB of the 208 KiB
/// default, counted four times over by `unix_writable`).
const MAX_QUEUED_WRITES: usize = 16;
const MAX_IO: usize = 64;

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
const PRI: u32 = libc::EPOLLPRI as u32;
const ERR: u32 = libc::EPOLLERR as u32;
const HUP: u32 = libc::EPOLLHUP as u32;
const RDHUP: u32 = libc::EPOLLRDHUP as u32;

// ---------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Register {
        slot: usize,
        token: usize,
        interest: Interest,
        mode: Mode,
    },
    Modify {
        slot: usize,
        token: usize,
        interest: Interest,
        mode: Mode,
    },
    Unregister {
        slot: usize,
    },
    /// The peer writes `n` bytes to us.
    PeerWrite {
        slot: usize,
        n: usize,
    },
    /// We read up to `n` bytes.
    Read {
        slot: usize,
        n: usize,
    },
    /// We write `n` bytes to the peer.
    Write {
        slot: usize,
        n: usize,
    },
    /// The peer reads up to `n` bytes of what we wrote.
    PeerRead {
        slot: usize,
        n: usize,
    },
    PeerShutWrite {
        slot: usize,
    },
    PeerShutRead {
        slot: usize,
    },
    PeerClose {
        slot: usize,
    },
    /// Unregister if registered, close both ends, open a fresh pair.
    Renew {
        slot: usize,
    },
    /// `wait` with a zero timeout.
    Wait,
    /// The registered descriptor is closed and its number taken by a new
    /// socket at once (`dup2` over it: no moment where the number is free
    /// for another thread to take). Poll and select watch numbers and go on
    /// watching the new socket under the old registration; epoll watched
    /// the closed file, and the number is not registered with it.
    Reuse {
        slot: usize,
    },
    /// We write until our send buffer is full (`WouldBlock`): not writable
    /// until the peer has read everything (its next `PeerRead` drains all).
    Fill {
        slot: usize,
    },
}

/// Any subset of readable, writable and priority.
fn interest_strategy() -> impl Strategy<Value = Interest> + Clone {
    (0..8u8).prop_map(Interest::from_bits_truncate)
}

fn op_strategy(modes: &'static [Mode]) -> impl Strategy<Value = Op> {
    op_strategy_with(modes, SLOTS, false)
}

/// Operations on `slots` slots; `extras` adds [`Op::Reuse`] and
/// [`Op::Fill`].
fn op_strategy_with(modes: &'static [Mode], slots: usize, extras: bool) -> BoxedStrategy<Op> {
    let slot = 0..slots;
    let n = 1..=MAX_IO;
    let reg = (
        slot.clone(),
        0..TOKENS_PER_SLOT,
        interest_strategy(),
        proptest::sample::select(modes),
    );
    let base = prop_oneof![
        12 => reg.clone().prop_map(|(slot, token, interest, mode)| Op::Register { slot, token, interest, mode }),
        8 => reg.prop_map(|(slot, token, interest, mode)| Op::Modify { slot, token, interest, mode }),
        3 => slot.clone().prop_map(|slot| Op::Unregister { slot }),
        10 => (slot.clone(), n.clone()).prop_map(|(slot, n)| Op::PeerWrite { slot, n }),
        8 => (slot.clone(), n.clone()).prop_map(|(slot, n)| Op::Read { slot, n }),
        5 => (slot.clone(), n.clone()).prop_map(|(slot, n)| Op::Write { slot, n }),
        5 => (slot.clone(), n).prop_map(|(slot, n)| Op::PeerRead { slot, n }),
        2 => slot.clone().prop_map(|slot| Op::PeerShutWrite { slot }),
        1 => slot.clone().prop_map(|slot| Op::PeerShutRead { slot }),
        2 => slot.clone().prop_map(|slot| Op::PeerClose { slot }),
        2 => slot.clone().prop_map(|slot| Op::Renew { slot }),
        24 => Just(Op::Wait),
    ]
    .boxed();
    if !extras {
        return base;
    }
    let slot = 0..slots;
    prop_oneof![
        82 => base,
        2 => slot.clone().prop_map(|slot| Op::Reuse { slot }),
        2 => slot.prop_map(|slot| Op::Fill { slot }),
    ]
    .boxed()
}

/// Longer sequences over more slots, with the extra operations.
fn wide_ops_strategy(modes: &'static [Mode], slots: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op_strategy_with(modes, slots, true), 1..=80)
}

fn ops_strategy(modes: &'static [Mode]) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op_strategy(modes), 1..=40)
}

// ---------------------------------------------------------------------------
// The model

/// What a wake-up on `ours` is keyed with, which decides whether it reaches
/// an edge-triggered epoll registration.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// `sock_def_readable`: `IN | PRI | RDNORM | RDBAND`.
    Data,
    /// `unix_write_space`: `OUT | WRNORM | WRBAND`.
    Space,
    /// `sk_state_change`: no key, reaches everyone.
    All,
}

#[derive(Debug, Clone, Copy)]
struct Reg {
    token: Token,
    interest: Interest,
    mode: Mode,
    armed: bool,
    /// Edge modes: a wake-up (or the registration itself) queued an event.
    pending: bool,
}

/// The kernel state of one slot's `ours`, as the model sees it.
#[derive(Debug, Default)]
struct SlotModel {
    /// Sizes of the writes the peer made that we have not fully read.
    inbound: VecDeque<usize>,
    /// Sizes of the writes we made that the peer has not fully read; a write
    /// frees its buffer (and wakes our writers) only when wholly consumed.
    outbound: VecDeque<usize>,
    /// The peer shut down its writing side: our `RCV_SHUTDOWN`.
    rcv_shut: bool,
    /// The peer shut down its reading side: our `SEND_SHUTDOWN`.
    send_shut: bool,
    peer_closed: bool,
    /// `ECONNRESET` pending on `ours`.
    err: bool,
    /// Our send buffer is full ([`Op::Fill`]): not writable.
    full: bool,
    reg: Option<Reg>,
    /// Epoll: the number was registered, then closed and reused, so the
    /// kernel dropped the registration; the poller still remembers the
    /// number, and unregistering it succeeds once (contract point 6).
    remembered: bool,
    /// Byte counters for checking content: next byte the peer writes / we
    /// expect to read, and the same the other way.
    in_written: u64,
    in_read: u64,
    out_written: u64,
    out_read: u64,
}

impl SlotModel {
    /// Readiness of `ours` as `EPOLL*` bits, before masking.
    fn readiness(&self) -> u32 {
        let mut r = if self.full { 0 } else { OUT };
        if !self.inbound.is_empty() || self.rcv_shut {
            r |= IN;
        }
        if self.rcv_shut {
            r |= RDHUP;
        }
        if self.rcv_shut && self.send_shut {
            r |= HUP;
        }
        if self.err {
            r |= ERR;
        }
        r
    }

    fn wake(&mut self, key: Wake) {
        let Some(reg) = self.reg.as_mut() else { return };
        if !reg.armed || !reg.mode.is_edge() {
            return;
        }
        let passes = match key {
            Wake::All => true,
            Wake::Data => reg
                .interest
                .intersects(Interest::READABLE | Interest::PRIORITY),
            Wake::Space => reg.interest.contains(Interest::WRITABLE),
        };
        if passes {
            reg.pending = true;
        }
    }
}

/// The `EPOLL*` bits a registration with `interest` asks for; error and
/// hang-up always come along.
fn epoll_mask(interest: Interest, mode: Mode) -> u32 {
    let mut m = ERR | HUP;
    if interest.contains(Interest::READABLE) {
        m |= IN;
        // EPOLLEXCLUSIVE cannot carry EPOLLRDHUP (a kernel rule).
        if !mode.is_exclusive() {
            m |= RDHUP;
        }
    }
    if interest.contains(Interest::WRITABLE) {
        m |= OUT;
    }
    if interest.contains(Interest::PRIORITY) {
        m |= PRI;
    }
    m
}

/// What select reports for a descriptor with `ready` bits and `interest`.
fn select_bits(ready: u32, interest: Interest) -> u32 {
    let mut out = 0;
    if interest.contains(Interest::READABLE) && ready & (IN | HUP | ERR) != 0 {
        out |= IN;
    }
    if interest.contains(Interest::WRITABLE) && ready & (OUT | ERR) != 0 {
        out |= OUT;
    }
    if interest.contains(Interest::PRIORITY) && ready & PRI != 0 {
        out |= PRI;
    }
    out
}

/// The events of one wait: token → readiness bits.
type Report = BTreeMap<usize, u32>;

// ---------------------------------------------------------------------------
// One backend running one sequence, checked against the model step by step

struct Slot {
    ours: UnixStream,
    peer: Option<UnixStream>,
    model: SlotModel,
}

impl Slot {
    fn open() -> io::Result<Slot> {
        let (ours, peer) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        peer.set_nonblocking(true)?;
        Ok(Slot {
            ours,
            peer: Some(peer),
            model: SlotModel::default(),
        })
    }

    fn fd(&self) -> RawFd {
        self.ours.as_raw_fd()
    }
}

struct World {
    backend: Backend,
    poller: AnyPoller,
    slots: Vec<Slot>,
    events: Events,
    /// Per token: consecutive waits in which it was ready to report but
    /// left out because `events` was full.
    passed_over: BTreeMap<usize, usize>,
    /// Every step so far, for failure messages.
    trace: Vec<String>,
}

type Step<T = ()> = Result<T, TestCaseError>;

macro_rules! check {
    ($world:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!(
                "[{}] {}\n  trace:\n    {}",
                $world.backend,
                format!($($fmt)+),
                $world.trace.join("\n    ")
            )));
        }
    };
}

fn pattern(start: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| ((start + i) % 251) as u8).collect()
}

fn unwrap_io<T>(backend: Backend, what: &str, r: io::Result<T>) -> Step<T> {
    r.map_err(|e| TestCaseError::fail(format!("[{backend}] {what}: {e}")))
}

impl World {
    fn new(backend: Backend) -> Step<World> {
        // Far more events than can ever be ready at once: no fairness
        // effects.
        World::with(backend, SLOTS, 64)
    }

    /// `slots` slots and an `Events` of `capacity`.
    fn with(backend: Backend, slots: usize, capacity: usize) -> Step<World> {
        let poller = AnyPoller::new(backend)
            .map_err(|e| TestCaseError::fail(format!("[{backend}] poller: {e}")))?;
        World::with_poller(backend, poller, slots, capacity)
    }

    /// `slots` slots and an `Events` of `capacity`, on `poller` (made by
    /// the caller, e.g. an io_uring with a small ring).
    fn with_poller(
        backend: Backend,
        poller: AnyPoller,
        slots: usize,
        capacity: usize,
    ) -> Step<World> {
        let mut all = Vec::with_capacity(slots);
        for _ in 0..slots {
            all.push(unwrap_io(backend, "socketpair", Slot::open())?);
        }
        Ok(World {
            backend,
            poller,
            slots: all,
            events: Events::with_capacity(capacity),
            passed_over: BTreeMap::new(),
            trace: Vec::new(),
        })
    }

    /// Forgets the fairness count of `slot`'s tokens: its registration
    /// changed.
    fn reset_passed_over(&mut self, slot: usize) {
        let first = slot * TOKENS_PER_SLOT;
        self.passed_over
            .retain(|t, _| !(first..first + TOKENS_PER_SLOT).contains(t));
    }

    fn supports(&self, mode: Mode, interest: Interest) -> bool {
        // The kernel refuses EPOLLPRI with EPOLLEXCLUSIVE.
        self.poller.capabilities().contains(mode.requires())
            && !(mode.is_exclusive() && interest.contains(Interest::PRIORITY))
    }

    /// The events the model expects a wait to report if `Events` has room
    /// for all of them. Changes nothing.
    fn candidates(&self) -> Report {
        // Without READ_CLOSED (select) readiness comes from the three sets.
        let read_closed = self
            .poller
            .capabilities()
            .contains(Capabilities::READ_CLOSED);
        let mut report = Report::new();
        for slot in &self.slots {
            let ready = slot.model.readiness();
            let Some(reg) = slot.model.reg.as_ref() else {
                continue;
            };
            if !reg.armed || (reg.mode.is_edge() && !reg.pending) {
                continue;
            }
            let bits = if read_closed {
                ready & epoll_mask(reg.interest, reg.mode)
            } else {
                select_bits(ready, reg.interest)
            };
            if bits != 0 {
                report.insert(reg.token.0, bits);
            }
        }
        report
    }

    /// After a wait that reported `got` out of `candidates`: a reported
    /// oneshot registration is disarmed, a reported edge is consumed, and
    /// an edge that was due but left out (a full `Events`) stays due. An
    /// edge that was due but not ready is dropped (the kernel finds it not
    /// ready and takes it off its ready list; any later readiness comes
    /// with a wake-up that queues it again).
    fn consume(&mut self, candidates: &Report, got: &Report) {
        for slot in &mut self.slots {
            let Some(reg) = slot.model.reg.as_mut() else {
                continue;
            };
            let t = reg.token.0;
            let reported = got.contains_key(&t);
            if reg.mode.is_edge() && (reported || !candidates.contains_key(&t)) {
                reg.pending = false;
            }
            if reported && reg.mode.is_oneshot() {
                reg.armed = false;
            }
        }
    }

    fn wait(&mut self) -> Step<Report> {
        let n = self
            .poller
            .wait(&mut self.events, Some(Duration::ZERO))
            .map_err(|e| TestCaseError::fail(format!("[{}] wait: {e}", self.backend)))?;
        check!(
            self,
            n == self.events.len(),
            "wait returned {n} but holds {}",
            self.events.len()
        );
        let mut got = Report::new();
        for ev in self.events.iter() {
            let dup = got.insert(ev.token().0, ev.raw_readiness());
            check!(
                self,
                dup.is_none(),
                "token {:?} reported twice in one wait",
                ev.token()
            );
        }
        let want = self.candidates();
        self.trace.push(format!("wait -> {}", show(&got)));
        let cap = self.events.capacity();
        if want.len() <= cap {
            check!(
                self,
                got == want,
                "wait reported {} but the model expects {}",
                show(&got),
                show(&want)
            );
        } else {
            // More are due than `events` holds: a full buffer of them, each
            // with the readiness the model expects.
            check!(
                self,
                got.len() == cap && got.iter().all(|(t, b)| want.get(t) == Some(b)),
                "wait reported {} with room for {cap}, but the model expects {cap} of {}",
                show(&got),
                show(&want)
            );
        }
        self.check_fairness(&want, &got)?;
        self.consume(&want, &got);
        Ok(got)
    }

    /// Contract 8: a registration that stays due is not left out forever.
    /// Each wait with a full buffer moves on past what it reported (epoll
    /// rotates its ready list, poll and select their scan start), so one
    /// left out is reported within as many waits as there are
    /// registrations.
    fn check_fairness(&mut self, want: &Report, got: &Report) -> Step {
        let limit = self.slots.len();
        self.passed_over
            .retain(|t, _| want.contains_key(t) && !got.contains_key(t));
        for t in want.keys().filter(|t| !got.contains_key(t)) {
            let n = self.passed_over.entry(*t).or_insert(0);
            *n += 1;
            let n = *n;
            check!(
                self,
                n <= limit,
                "token {t} was due and left out of {n} waits in a row ({limit} registrations)"
            );
        }
        Ok(())
    }

    fn register(&mut self, slot: usize, token: usize, interest: Interest, mode: Mode) -> Step {
        self.reset_passed_over(slot);
        let fd = self.slots[slot].fd();
        let token = Token(slot * TOKENS_PER_SLOT + token);
        let res = self.poller.register(fd, token, interest, mode);
        let registered = self.slots[slot].model.reg.is_some();
        let supported = self.supports(mode, interest);
        match &res {
            Ok(()) => check!(
                self,
                supported && !registered,
                "register succeeded (supported {supported}, already registered {registered})"
            ),
            Err(Error::Unsupported { backend, mode: m }) => check!(
                self,
                !supported && *backend == self.backend && *m == mode,
                "unexpected Unsupported {{ {backend}, {m:?} }}"
            ),
            Err(Error::AlreadyRegistered { fd: f }) => {
                check!(
                    self,
                    registered && *f == fd,
                    "unexpected AlreadyRegistered for fd {f}"
                )
            }
            Err(e) => check!(self, false, "register failed: {e}"),
        }
        if res.is_ok() {
            let ready = self.slots[slot].model.readiness() & epoll_mask(interest, mode);
            self.slots[slot].model.remembered = false;
            self.slots[slot].model.reg = Some(Reg {
                token,
                interest,
                mode,
                armed: true,
                pending: ready != 0,
            });
        }
        Ok(())
    }

    fn modify(&mut self, slot: usize, token: usize, interest: Interest, mode: Mode) -> Step {
        self.reset_passed_over(slot);
        let fd = self.slots[slot].fd();
        let token = Token(slot * TOKENS_PER_SLOT + token);
        let res = self.poller.modify(fd, token, interest, mode);
        let old = self.slots[slot].model.reg;
        // Exclusive registrations cannot be modified, and nothing can be
        // modified into one (kernel rules): a typed error on every path.
        let supported = self.supports(mode, interest);
        let refuses_exclusive = mode.is_exclusive() || old.is_some_and(|r| r.mode.is_exclusive());
        match &res {
            Ok(()) => check!(
                self,
                supported && old.is_some() && !refuses_exclusive,
                "modify succeeded (supported {supported}, registered {}, exclusive {refuses_exclusive})",
                old.is_some()
            ),
            Err(Error::Unsupported { backend, mode: m }) => check!(
                self,
                !supported && *backend == self.backend && *m == mode,
                "unexpected Unsupported {{ {backend}, {m:?} }}"
            ),
            Err(Error::ModifyExclusive { fd: f }) => check!(
                self,
                supported && refuses_exclusive && (old.is_some() || mode.is_exclusive()) && *f == fd,
                "unexpected ModifyExclusive for fd {f}"
            ),
            Err(Error::NotRegistered { fd: f }) => {
                check!(
                    self,
                    supported && !mode.is_exclusive() && old.is_none() && *f == fd,
                    "unexpected NotRegistered for fd {f}"
                )
            }
            Err(e) => check!(self, false, "modify failed: {e}"),
        }
        if res.is_ok() {
            let ready = self.slots[slot].model.readiness() & epoll_mask(interest, mode);
            let was_pending = old.is_some_and(|r| r.pending && r.mode.is_edge());
            self.slots[slot].model.reg = Some(Reg {
                token,
                interest,
                mode,
                armed: true,
                pending: was_pending || ready != 0,
            });
        }
        Ok(())
    }

    fn unregister(&mut self, slot: usize) -> Step {
        self.reset_passed_over(slot);
        let fd = self.slots[slot].fd();
        let res = self.poller.unregister(fd);
        let model = &self.slots[slot].model;
        let registered = model.reg.is_some() || model.remembered;
        match res {
            Ok(()) => check!(
                self,
                registered,
                "unregister of an unregistered fd succeeded"
            ),
            Err(Error::NotRegistered { fd: f }) => {
                check!(
                    self,
                    !registered && f == fd,
                    "unexpected NotRegistered for fd {f}"
                )
            }
            Err(e) => check!(self, false, "unregister failed: {e}"),
        }
        self.slots[slot].model.reg = None;
        self.slots[slot].model.remembered = false;
        Ok(())
    }

    fn peer_write(&mut self, slot: usize, n: usize) -> Step {
        let s = &mut self.slots[slot];
        let Some(peer) = s.peer.as_mut() else {
            return Ok(());
        };
        if s.model.inbound.len() >= MAX_QUEUED_WRITES {
            return Ok(());
        }
        let data = pattern(s.model.in_written, n);
        let res = peer.write(&data);
        let m = &mut s.model;
        if m.rcv_shut {
            // The peer shut down its own writing side.
            check!(
                self,
                err_is(&res, libc::EPIPE),
                "peer write after its shutdown: {res:?}"
            );
            return Ok(());
        }
        check!(
            self,
            matches!(res, Ok(k) if k == n),
            "peer write of {n}: {res:?}"
        );
        let m = &mut self.slots[slot].model;
        m.in_written += n as u64;
        m.inbound.push_back(n);
        m.wake(Wake::Data);
        Ok(())
    }

    fn read(&mut self, slot: usize, n: usize) -> Step {
        let s = &mut self.slots[slot];
        let mut buf = vec![0u8; n];
        let res = s.ours.read(&mut buf);
        let m = &mut s.model;
        let queued: usize = m.inbound.iter().sum();
        if queued > 0 {
            let want = n.min(queued);
            let expect = pattern(m.in_read, want);
            check!(
                self,
                matches!(res, Ok(k) if k == want) && buf[..want] == expect[..],
                "read of {n} with {queued} queued: {res:?}"
            );
            let m = &mut self.slots[slot].model;
            m.in_read += want as u64;
            let mut left = want;
            while left > 0 {
                let front = m.inbound.front_mut().expect("queued bytes");
                let take = left.min(*front);
                *front -= take;
                left -= take;
                if *front == 0 {
                    m.inbound.pop_front();
                }
            }
        } else if m.err {
            check!(
                self,
                err_is(&res, libc::ECONNRESET),
                "read with reset pending: {res:?}"
            );
            self.slots[slot].model.err = false;
        } else if m.rcv_shut {
            check!(self, matches!(res, Ok(0)), "read at end of stream: {res:?}");
        } else {
            check!(self, would_block(&res), "read with nothing queued: {res:?}");
        }
        Ok(())
    }

    fn write(&mut self, slot: usize, n: usize) -> Step {
        let s = &mut self.slots[slot];
        if s.model.full {
            let res = s.ours.write(&pattern(s.model.out_written, n));
            if s.model.send_shut {
                check!(
                    self,
                    err_is(&res, libc::EPIPE),
                    "write to a gone reader: {res:?}"
                );
            } else {
                check!(self, would_block(&res), "write with a full buffer: {res:?}");
            }
            return Ok(());
        }
        if s.model.outbound.len() >= MAX_QUEUED_WRITES {
            return Ok(());
        }
        let data = pattern(s.model.out_written, n);
        let res = s.ours.write(&data);
        let m = &mut s.model;
        if m.send_shut {
            check!(
                self,
                err_is(&res, libc::EPIPE),
                "write to a gone reader: {res:?}"
            );
            return Ok(());
        }
        check!(
            self,
            matches!(res, Ok(k) if k == n),
            "write of {n}: {res:?}"
        );
        let m = &mut self.slots[slot].model;
        m.out_written += n as u64;
        m.outbound.push_back(n);
        Ok(())
    }

    fn peer_read(&mut self, slot: usize, n: usize) -> Step {
        if self.slots[slot].model.full {
            return self.peer_drain(slot);
        }
        let s = &mut self.slots[slot];
        let Some(peer) = s.peer.as_mut() else {
            return Ok(());
        };
        let mut buf = vec![0u8; n];
        let res = peer.read(&mut buf);
        let m = &mut s.model;
        let queued: usize = m.outbound.iter().sum();
        if queued == 0 {
            if m.send_shut {
                // The peer shut down its reading side: end of stream for it.
                check!(
                    self,
                    matches!(res, Ok(0)),
                    "peer read after its shutdown: {res:?}"
                );
            } else {
                check!(
                    self,
                    would_block(&res),
                    "peer read with nothing queued: {res:?}"
                );
            }
            return Ok(());
        }
        let want = n.min(queued);
        let expect = pattern(m.out_read, want);
        check!(
            self,
            matches!(res, Ok(k) if k == want) && buf[..want] == expect[..],
            "peer read of {n} with {queued} queued: {res:?}"
        );
        let m = &mut self.slots[slot].model;
        m.out_read += want as u64;
        let mut left = want;
        let mut freed = false;
        while left > 0 {
            let front = m.outbound.front_mut().expect("queued bytes");
            let take = left.min(*front);
            *front -= take;
            left -= take;
            if *front == 0 {
                m.outbound.pop_front();
                freed = true;
            }
        }
        if freed {
            m.wake(Wake::Space);
        }
        Ok(())
    }

    /// The peer reads all we wrote (after [`Op::Fill`]): our buffer is
    /// freed and we are writable again, with a wake-up for writers.
    fn peer_drain(&mut self, slot: usize) -> Step {
        let s = &mut self.slots[slot];
        let Some(peer) = s.peer.as_mut() else {
            return Ok(());
        };
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let end = loop {
            match peer.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let m = &mut s.model;
        let queued: usize = m.outbound.iter().sum();
        let expect = pattern(m.out_read, queued);
        check!(
            self,
            end.is_ok() && got == expect,
            "peer drain: {end:?}, {} bytes of {queued} (content equal: {})",
            got.len(),
            got == expect
        );
        let m = &mut self.slots[slot].model;
        m.out_read += queued as u64;
        m.outbound.clear();
        m.full = false;
        m.wake(Wake::Space);
        Ok(())
    }

    /// We write until the send buffer is full.
    fn fill(&mut self, slot: usize) -> Step {
        let s = &mut self.slots[slot];
        if s.model.full || s.model.send_shut {
            return Ok(());
        }
        for _ in 0..10_000 {
            let data = pattern(s.model.out_written, 16 * 1024);
            match s.ours.write(&data) {
                Ok(k) => {
                    s.model.out_written += k as u64;
                    s.model.outbound.push_back(k);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    s.model.full = true;
                    return Ok(());
                }
                Err(e) => {
                    check!(self, false, "filling the send buffer: {e}");
                }
            }
        }
        check!(self, false, "the send buffer took 160 MiB without filling");
        Ok(())
    }

    /// Closes the registered descriptor and reuses its number at once.
    fn reuse(&mut self, slot: usize) -> Step {
        if self.backend == Backend::IoUring {
            // Not modelled for io_uring: its request in flight keeps the
            // closed file open, while re-arms go to the number, so a close
            // and reuse behaves as neither epoll nor poll (the contract
            // leaves closing a registered descriptor backend-specific; the
            // file being kept is pinned down in tests/uring.rs). A no-op here.
            return Ok(());
        }
        self.reset_passed_over(slot);
        let (fresh, peer) = unwrap_io(self.backend, "socketpair", UnixStream::pair())?;
        unwrap_io(self.backend, "nonblocking", fresh.set_nonblocking(true))?;
        unwrap_io(self.backend, "nonblocking", peer.set_nonblocking(true))?;
        let fd = self.slots[slot].fd();
        // SAFETY: `fd` is open and owned by `ours`; dup2 closes the file it
        // referred to and makes it refer to `fresh`'s socket in one step,
        // so `ours` goes on owning an open descriptor of the same number.
        let rc = unsafe { libc::dup2(fresh.as_raw_fd(), fd) };
        check!(self, rc == fd, "dup2: {}", io::Error::last_os_error());
        drop(fresh);
        let s = &mut self.slots[slot];
        let old = s.model.reg;
        let remembered = s.model.remembered;
        s.peer = Some(peer);
        s.model = SlotModel::default();
        if self.backend == Backend::Epoll {
            // The watched file is gone, and with it the kernel's
            // registration; the poller remembers the number, through any
            // number of reuses, until it is unregistered.
            s.model.remembered = old.is_some() || remembered;
        } else {
            // The number is watched: the new socket under the old
            // registration.
            s.model.reg = old;
        }
        Ok(())
    }

    fn peer_shutdown(&mut self, slot: usize, how: Shutdown) -> Step {
        let s = &mut self.slots[slot];
        let Some(peer) = s.peer.as_ref() else {
            return Ok(());
        };
        let res = peer.shutdown(how);
        check!(self, res.is_ok(), "peer shutdown {how:?}: {res:?}");
        let m = &mut self.slots[slot].model;
        match how {
            Shutdown::Write => m.rcv_shut = true,
            Shutdown::Read => m.send_shut = true,
            Shutdown::Both => {
                m.rcv_shut = true;
                m.send_shut = true;
            }
        }
        m.wake(Wake::All);
        Ok(())
    }

    fn peer_close(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        if s.peer.take().is_none() {
            return;
        }
        let m = &mut s.model;
        m.rcv_shut = true;
        m.send_shut = true;
        m.peer_closed = true;
        if !m.outbound.is_empty() {
            m.err = true;
        }
        // Closing frees what the peer had not read: writable again.
        m.full = false;
        m.outbound.clear();
        m.wake(Wake::All);
    }

    fn renew(&mut self, slot: usize) -> Step {
        // Unregistered first, also a number epoll only remembers (closed and
        // reused since it was registered): the number is about to be freed,
        // and another slot may get it.
        let model = &self.slots[slot].model;
        if model.reg.is_some() || model.remembered {
            self.unregister(slot)?;
        }
        let fresh = unwrap_io(self.backend, "socketpair", Slot::open())?;
        // The old pair closes here, after it was unregistered.
        self.slots[slot] = fresh;
        Ok(())
    }

    /// Applies one operation; returns the events if it was a wait.
    fn apply(&mut self, op: &Op) -> Step<Option<Report>> {
        if *op != Op::Wait {
            self.trace.push(format!("{op:?}"));
        }
        match *op {
            Op::Register {
                slot,
                token,
                interest,
                mode,
            } => self.register(slot, token, interest, mode)?,
            Op::Modify {
                slot,
                token,
                interest,
                mode,
            } => self.modify(slot, token, interest, mode)?,
            Op::Unregister { slot } => self.unregister(slot)?,
            Op::PeerWrite { slot, n } => self.peer_write(slot, n)?,
            Op::Read { slot, n } => self.read(slot, n)?,
            Op::Write { slot, n } => self.write(slot, n)?,
            Op::PeerRead { slot, n } => self.peer_read(slot, n)?,
            Op::PeerShutWrite { slot } => self.peer_shutdown(slot, Shutdown::Write)?,
            Op::PeerShutRead { slot } => self.peer_shutdown(slot, Shutdown::Read)?,
            Op::PeerClose { slot } => self.peer_close(slot),
            Op::Renew { slot } => self.renew(slot)?,
            Op::Reuse { slot } => self.reuse(slot)?,
            Op::Fill { slot } => self.fill(slot)?,
            Op::Wait => return self.wait().map(Some),
        }
        Ok(None)
    }

    /// Unregisters everything the model says is registered, so that a
    /// poller's bookkeeping and the model end in agreement.
    fn finish(&mut self) -> Step {
        for slot in 0..self.slots.len() {
            if self.slots[slot].model.reg.is_some() {
                self.unregister(slot)?;
            }
        }
        // Nothing registered: a final wait reports nothing.
        self.wait()?;
        Ok(())
    }
}

fn err_is<T: std::fmt::Debug>(res: &io::Result<T>, errno: i32) -> bool {
    matches!(res, Err(e) if e.raw_os_error() == Some(errno))
}

fn would_block<T>(res: &io::Result<T>) -> bool {
    matches!(res, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

fn show(r: &Report) -> String {
    if r.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = r
        .iter()
        .map(|(t, b)| {
            let names: Vec<&str> = [
                (IN, "IN"),
                (OUT, "OUT"),
                (PRI, "PRI"),
                (ERR, "ERR"),
                (HUP, "HUP"),
                (RDHUP, "RDHUP"),
            ]
            .iter()
            .filter(|(bit, _)| b & bit != 0)
            .map(|(_, n)| *n)
            .collect();
            let other = b & !(IN | OUT | PRI | ERR | HUP | RDHUP);
            let other = if other != 0 {
                format!("|{other:#x}")
            } else {
                String::new()
            };
            format!("{t}:{}{other}", names.join("|"))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn run_one(backend: Backend, ops: &[Op]) -> Step {
    let mut world = World::new(backend)?;
    for op in ops {
        world.apply(op)?;
    }
    world.finish()
}

/// Runs the same sequence on all three backends (and io_uring, when built
/// in) in lock step: each must match its model, epoll and poll (and uring)
/// must report identical events, and select must report their projection
/// onto its read and write sets.
fn run_agreement(ops: &[Op]) -> Step {
    let mut worlds = Vec::new();
    for b in [Backend::Epoll, Backend::Poll, Backend::Select] {
        worlds.push(World::new(b)?);
    }
    // io_uring, built in, must agree with epoll too.
    if cfg!(feature = "io-uring") {
        worlds.push(World::new(Backend::IoUring)?);
    }
    for op in ops {
        let mut reports = Vec::new();
        for w in &mut worlds {
            reports.push(w.apply(op)?);
        }
        let [Some(epoll), Some(poll), Some(select), more @ ..] = &reports[..] else {
            continue;
        };
        let trace = worlds[0].trace.join("\n    ");
        prop_assert_eq!(
            epoll,
            poll,
            "epoll and poll disagree\n  trace:\n    {}",
            trace
        );
        if let [Some(uring)] = more {
            prop_assert_eq!(
                epoll,
                uring,
                "epoll and uring disagree\n  trace:\n    {}",
                trace
            );
        }
        let interests: BTreeMap<usize, Interest> = worlds[0]
            .slots
            .iter()
            .filter_map(|s| s.model.reg.map(|r| (r.token.0, r.interest)))
            .collect();
        let projected: Report = epoll
            .iter()
            .map(|(t, b)| (*t, select_bits(*b, interests[t])))
            .filter(|(_, b)| *b != 0)
            .collect();
        prop_assert_eq!(
            select,
            &projected,
            "select disagrees with epoll's projection\n  trace:\n    {}",
            trace
        );
    }
    for w in &mut worlds {
        w.finish()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The tests

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default_cases: u32) -> Config {
    Config {
        cases: cases(default_cases),
        // A failing case is printed shrunk; no regression files in the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

const EPOLL_MODES: &[Mode] = &[Mode::Level, Mode::Oneshot, Mode::Edge, Mode::EdgeOneshot];
/// Poll and select get the edge modes too, rarely, to check that they are
/// refused without any change.
const USERSPACE_MODES: &[Mode] = &[
    Mode::Level,
    Mode::Level,
    Mode::Level,
    Mode::Oneshot,
    Mode::Oneshot,
    Mode::Oneshot,
    Mode::Edge,
    Mode::EdgeOneshot,
];
const LEVEL_MODES: &[Mode] = &[Mode::Level, Mode::Oneshot];
const EXCLUSIVE_MODES: &[Mode] = &[
    Mode::Level,
    Mode::Edge,
    Mode::Exclusive,
    Mode::Exclusive,
    Mode::EdgeExclusive,
    Mode::EdgeExclusive,
];

macro_rules! model_test {
    ($name:ident, $backend:expr, $modes:expr) => {
        proptest! {
            #![proptest_config(config(1000))]
            #[test]
            fn $name(ops in ops_strategy($modes)) {
                run_one($backend, &ops)?;
            }
        }
    };
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn backends_agree_on_level_and_oneshot(ops in ops_strategy(LEVEL_MODES)) {
        run_agreement(&ops)?;
    }
}

proptest! {
    #![proptest_config(config(300))]
    /// Exclusive registrations behave as their non-exclusive twins for a
    /// single poller, without the read-closed bit (the kernel allows no
    /// `EPOLLRDHUP` beside `EPOLLEXCLUSIVE`); priority interest is refused
    /// with `Unsupported`; they cannot be modified, and nothing is modified
    /// into one.
    #[test]
    fn epoll_exclusive_matches_the_model(ops in ops_strategy(EXCLUSIVE_MODES)) {
        run_one(Backend::Epoll, &ops)?;
    }
}

/// A fixed sequence through every edge-mode rule of the model, so that a
/// change in the kernel's behaviour shows up as one readable failure rather
/// than only as a shrunk random case.
#[test]
fn epoll_edge_rules_hold_on_this_kernel() {
    use Op::*;
    let r = Interest::READABLE;
    let w = Interest::WRITABLE;
    let ops = [
        Register {
            slot: 0,
            token: 0,
            interest: r,
            mode: Mode::Edge,
        },
        Register {
            slot: 1,
            token: 0,
            interest: w,
            mode: Mode::Edge,
        },
        Register {
            slot: 2,
            token: 0,
            interest: Interest::PRIORITY | w,
            mode: Mode::Edge,
        },
        Wait, // 1 and 2 writable at registration
        Wait, // nothing new
        PeerWrite { slot: 0, n: 3 },
        PeerWrite { slot: 1, n: 3 },
        PeerWrite { slot: 2, n: 3 },
        Wait, // 0 readable; 2 woken by the data key through its priority interest; 1 not
        Read { slot: 0, n: 1 },
        Wait, // our reads wake nothing
        Write { slot: 1, n: 3 },
        Write { slot: 1, n: 3 },
        PeerRead { slot: 1, n: 1 },
        Wait, // partial read frees no buffer
        PeerRead { slot: 1, n: 2 },
        Wait, // the first buffer is freed: writable edge
        PeerWrite { slot: 0, n: 1 },
        Read { slot: 0, n: 64 },
        Wait, // woken, but not ready any more at the wait: nothing
        PeerShutWrite { slot: 0 },
        PeerShutWrite { slot: 1 },
        Wait,
        PeerShutWrite { slot: 0 },
        Wait, // shutting down again is another edge
        PeerClose { slot: 1 },
        Wait, // close with our bytes unread: error and hang-up
        Read { slot: 1, n: 8 },
        Read { slot: 1, n: 8 },
        Read { slot: 1, n: 8 },
        Modify {
            slot: 1,
            token: 1,
            interest: w,
            mode: Mode::EdgeOneshot,
        },
        Wait, // modify queues the ready descriptor
        PeerClose { slot: 0 },
        Wait,
        Modify {
            slot: 0,
            token: 2,
            interest: r,
            mode: Mode::EdgeOneshot,
        },
        Wait,
        PeerWrite { slot: 2, n: 1 },
        Wait,
    ];
    if let Err(e) = run_one(Backend::Epoll, &ops) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Many ready descriptors and a small `Events`; closing and reusing numbers;
// full send buffers

/// Slots in the wide worlds: more than the small `Events` can hold.
const WIDE_SLOTS: usize = 10;

fn run_wide(backend: Backend, capacity: usize, ops: &[Op]) -> Step {
    let mut world = World::with(backend, WIDE_SLOTS, capacity)?;
    for op in ops {
        world.apply(op)?;
    }
    world.finish()
}

/// Sequences over ten slots, with the close-and-reuse and fill operations,
/// waited on with an `Events` of one to three: each wait must report a full
/// buffer of what the model says is due, with the right readiness, and a
/// registration left out must come round within as many waits as there are
/// registrations (contract 8). Edge events left out stay due; a left-out
/// oneshot stays armed.
macro_rules! wide_model_test {
    ($name:ident, $backend:expr, $modes:expr) => {
        proptest! {
            #![proptest_config(config(300))]
            #[test]
            fn $name(ops in wide_ops_strategy($modes, WIDE_SLOTS), capacity in 1..=3usize) {
                run_wide($backend, capacity, &ops)?;
            }
        }
    };
}

/// A fixed sequence through the new operations, so that a change in the
/// kernel's behaviour (or a backend's) shows up as one readable failure.
fn reuse_and_fill_rules(backend: Backend) {
    use Op::*;
    let r = Interest::READABLE;
    let w = Interest::WRITABLE;
    let ops = [
        Register {
            slot: 0,
            token: 0,
            interest: w,
            mode: Mode::Level,
        },
        Wait, // writable
        Fill { slot: 0 },
        Wait, // not any more
        Write { slot: 0, n: 1 },
        PeerRead { slot: 0, n: 1 }, // drains everything
        Wait,                       // writable again
        Register {
            slot: 1,
            token: 0,
            interest: r | w,
            mode: Mode::Oneshot,
        },
        PeerWrite { slot: 1, n: 5 },
        Reuse { slot: 1 }, // the new socket has nothing queued
        Wait,              // poll, select: writable under the old token; epoll: nothing
        PeerWrite { slot: 1, n: 2 },
        Unregister { slot: 1 }, // succeeds everywhere: epoll remembers the number
        Register {
            slot: 1,
            token: 1,
            interest: r,
            mode: Mode::Level,
        },
        Wait,
        Fill { slot: 1 },
        PeerClose { slot: 1 }, // frees the buffer: writable, with a reset pending
        Wait,
        // A number closed and reused twice is still the registered number:
        // unregister succeeds (contract point 6). Found by the proptest,
        // where the model forgot the registration at the second reuse.
        Register {
            slot: 2,
            token: 0,
            interest: Interest::empty(),
            mode: Mode::Level,
        },
        Reuse { slot: 2 },
        Reuse { slot: 2 },
        Unregister { slot: 2 },
        // A slot renewed while its number is only remembered: the number is
        // unregistered before it is freed, so the slot that gets it next
        // (the kernel hands out the lowest free number) starts clean.
        Register {
            slot: 3,
            token: 0,
            interest: Interest::empty(),
            mode: Mode::Level,
        },
        Reuse { slot: 3 },
        Renew { slot: 3 },
        Renew { slot: 2 },
        Unregister { slot: 2 }, // NotRegistered everywhere
    ];
    if let Err(e) = run_wide(backend, 1, &ops) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Threads: a waiting thread, a notifying thread, and timeouts

/// What the other thread does, in order, each after a pause.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Writes the next sequence byte to the peer of slot `0..3`.
    Write(usize),
    Notify,
}

/// One step of the other thread: a pause (microseconds), then an act.
fn act_strategy() -> impl Strategy<Value = (u64, Act)> {
    (
        prop_oneof![Just(0u64), 0..200u64, 0..3000u64],
        prop_oneof![
            3 => (0..3usize).prop_map(Act::Write),
            1 => Just(Act::Notify),
        ],
    )
}

/// Timeouts the waiting thread cycles through (`None` blocks).
fn timeout_strategy() -> impl Strategy<Value = Vec<Option<Duration>>> {
    proptest::collection::vec(
        prop_oneof![
            Just(Some(Duration::ZERO)),
            (1..5_000u64).prop_map(|us| Some(Duration::from_micros(us))),
            Just(Some(Duration::from_millis(20))),
            Just(None),
        ],
        1..6,
    )
}

/// How late a wait may return past its timeout, or a blocking wait past
/// the other thread's last act, before the test calls it hung. Generous:
/// it only catches a broken implementation (a lost wake-up, a timeout
/// ignored), it measures nothing.
const LATE: Duration = Duration::from_secs(5);

/// The waiting thread registers three socket pairs (level, oneshot, and
/// edge where supported) and waits with the given timeouts in turn while
/// the other thread writes sequence bytes and notifies. Checked:
/// - every byte written is read exactly once and in order: no event lost
///   (the waiter would miss data), none that makes it read twice;
/// - every wait returns by its deadline (its timeout, plus [`LATE`]); a
///   blocking wait returns by [`LATE`] after the other thread's last act
///   (each act, a write or a notify, must wake it);
/// - the events name only the registered tokens, each once per wait.
fn run_threads(backend: Backend, acts: &[(u64, Act)], timeouts: &[Option<Duration>]) -> Step {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let fail = |what: String| TestCaseError::fail(format!("[{backend}] {what}"));
    let poller = Arc::new(AnyPoller::new(backend).map_err(|e| fail(format!("poller: {e}")))?);
    let modes = [
        Mode::Level,
        Mode::Oneshot,
        if poller.supports(Mode::Edge) {
            Mode::Edge
        } else {
            Mode::Level
        },
    ];
    let mut ours = Vec::new();
    let mut peers = Vec::new();
    for (i, mode) in modes.iter().enumerate() {
        let (a, b) = UnixStream::pair().map_err(|e| fail(format!("socketpair: {e}")))?;
        a.set_nonblocking(true).map_err(|e| fail(e.to_string()))?;
        poller
            .register(a.as_raw_fd(), Token(i), Interest::READABLE, *mode)
            .map_err(|e| fail(format!("register: {e}")))?;
        ours.push(a);
        peers.push(b);
    }

    // The other thread: its acts, then `done`, then a last notify so that
    // a blocking wait ends.
    let done = Arc::new(AtomicBool::new(false));
    let last_act = Arc::new(Mutex::new(Instant::now()));
    let written: Vec<u8> = acts
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Write(s) => Some(*s as u8),
            Act::Notify => None,
        })
        .collect();
    let other = {
        let poller = Arc::clone(&poller);
        let done = Arc::clone(&done);
        let last_act = Arc::clone(&last_act);
        let acts = acts.to_vec();
        std::thread::spawn(move || -> io::Result<()> {
            let mut seq = [0u8; 3];
            for (pause, act) in acts {
                if pause > 0 {
                    std::thread::sleep(Duration::from_micros(pause));
                }
                match act {
                    Act::Write(s) => {
                        peers[s].write_all(&[seq[s]])?;
                        seq[s] = seq[s].wrapping_add(1);
                    }
                    Act::Notify => poller
                        .notify()
                        .map_err(|e| io::Error::new(ErrorKind::Other, e))?,
                }
                *last_act.lock().unwrap() = Instant::now();
            }
            done.store(true, Ordering::SeqCst);
            *last_act.lock().unwrap() = Instant::now();
            poller
                .notify()
                .map_err(|e| io::Error::new(ErrorKind::Other, e))?;
            Ok(())
        })
    };

    let expected: Vec<Vec<u8>> = (0..3)
        .map(|s| {
            let n = written.iter().filter(|&&w| usize::from(w) == s).count();
            (0..n).map(|k| k as u8).collect()
        })
        .collect();
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 3];
    let mut events = Events::with_capacity(4);
    let started = Instant::now();
    let mut turn = 0;
    let result = loop {
        if done.load(Ordering::SeqCst) && got == expected {
            break Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            break Err(fail(format!(
                "gave up after 30 s: read {got:?}, expected {expected:?}"
            )));
        }
        let timeout = timeouts[turn % timeouts.len()];
        turn += 1;
        let t0 = Instant::now();
        let n = match poller.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(e) => break Err(fail(format!("wait: {e}"))),
        };
        let took = t0.elapsed();
        let late = match timeout {
            Some(t) => took > t + LATE,
            None => {
                // Must have been woken by an act (or the final notify).
                let last = *last_act.lock().unwrap();
                Instant::now() > last.max(t0) + LATE
            }
        };
        if late {
            break Err(fail(format!("wait({timeout:?}) took {took:?}")));
        }
        if n != events.len() {
            break Err(fail(format!("wait returned {n}, holds {}", events.len())));
        }
        let mut seen = [false; 3];
        let mut bad = None;
        for ev in events.iter() {
            let s = ev.token().0;
            if s >= 3 || std::mem::replace(&mut seen[s], true) {
                bad = Some(format!("unexpected or repeated token {:?}", ev.token()));
                break;
            }
            // Read all there is (edge mode needs it; it is fine for all).
            let mut buf = [0u8; 256];
            loop {
                match ours[s].read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => got[s].extend_from_slice(&buf[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        bad = Some(format!("read: {e}"));
                        break;
                    }
                }
            }
            if modes[s].is_oneshot() {
                if let Err(e) =
                    poller.modify(ours[s].as_raw_fd(), Token(s), Interest::READABLE, modes[s])
                {
                    bad = Some(format!("re-arm: {e}"));
                }
            }
        }
        if let Some(b) = bad {
            break Err(fail(b));
        }
        if let Some(s) = (0..3).find(|&s| !expected[s].starts_with(&got[s])) {
            break Err(fail(format!(
                "slot {s} read {:?}, but {:?} was written",
                got[s], expected[s]
            )));
        }
    };
    let joined = other.join();
    result?;
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(fail(format!("the other thread: {e}"))),
        Err(_) => Err(fail("the other thread panicked".into())),
    }
}

macro_rules! threads_test {
    ($name:ident, $backend:expr) => {
        proptest! {
            #![proptest_config(config(64))]
            #[test]
            fn $name(
                acts in proptest::collection::vec(act_strategy(), 0..40),
                timeouts in timeout_strategy(),
            ) {
                run_threads($backend, &acts, &timeouts)?;
            }
        }
    };
}

/// The modes a backend's random sequences draw from: every trigger mode
/// where it has edge-triggering, else level and oneshot with the edge modes
/// now and then (to check that they are refused without any change).
fn modes_for(backend: Backend) -> &'static [Mode] {
    let poller = AnyPoller::new(backend).expect("poller");
    if poller.supports(Mode::Edge) {
        EPOLL_MODES
    } else {
        USERSPACE_MODES
    }
}

/// Every property and fixed sequence, for one backend of the one backend
/// list: `epoll::matches_the_model`, `poll::matches_the_model`, ...
macro_rules! model_suite {
    ($module:ident, $backend:expr, $poller:ty) => {
        mod $module {
            use super::*;

            model_test!(matches_the_model, $backend, modes_for($backend));
            wide_model_test!(
                small_events_reuse_and_full_buffers,
                $backend,
                modes_for($backend)
            );
            threads_test!(waiter_notifier_and_timeouts, $backend);

            #[test]
            fn reuse_and_fill_rules_hold() {
                reuse_and_fill_rules($backend);
            }
        }
    };
}

common::for_each_backend!(model_suite);

/// io_uring with the smallest ring (2 submission and 4 completion entries),
/// smaller than the number of descriptors the sequences use: completions
/// that do not fit are held by the kernel and multishot requests end early,
/// and the backend must still match the model, fairness included.
#[cfg(feature = "io-uring")]
mod uring_small_ring {
    use super::*;

    fn world(slots: usize, capacity: usize) -> Step<World> {
        let ring = tripoll::Uring::with_entries(2)
            .map_err(|e| TestCaseError::fail(format!("small ring: {e}")))?;
        World::with_poller(Backend::IoUring, AnyPoller::IoUring(ring), slots, capacity)
    }

    fn run(world: &mut World, ops: &[Op]) -> Step {
        for op in ops {
            world.apply(op)?;
        }
        world.finish()
    }

    proptest! {
        #![proptest_config(config(500))]
        #[test]
        fn matches_the_model(ops in ops_strategy(EPOLL_MODES)) {
            run(&mut world(SLOTS, 64)?, &ops)?;
        }
    }

    proptest! {
        #![proptest_config(config(300))]
        #[test]
        fn small_events_reuse_and_full_buffers(
            ops in wide_ops_strategy(EPOLL_MODES, WIDE_SLOTS),
            capacity in 1..=3usize,
        ) {
            run(&mut world(WIDE_SLOTS, capacity)?, &ops)?;
        }
    }
}
