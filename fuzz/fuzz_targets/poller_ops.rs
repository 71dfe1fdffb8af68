//! Random operation sequences on each poller: registrations, I/O on Unix
//! socket pairs, closing a registered descriptor and reusing its number,
//! notifications, and zero-timeout waits into a small `Events`.
//!
//! The oracle is the contract on the `Poller` trait (src/poller.rs), not a
//! readiness model (`tests/model.rs` has that):
//! - bookkeeping: `register` of a registered descriptor is
//!   `AlreadyRegistered`, `modify`/`unregister` of an unknown one
//!   `NotRegistered`, an edge mode on poll or select `Unsupported`; each
//!   fails with nothing changed, and nothing else ever fails;
//! - a descriptor closed while registered and its number reused at once:
//!   poll and select watch the new file under the old token until it is
//!   unregistered, epoll does not (unregistering it is `NotRegistered`);
//! - every wait returns what `Events` holds, at most its capacity, each
//!   token once, only tokens of current registrations, never the reserved
//!   one; a oneshot registration reports once until re-armed.
#![no_main]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tripoll::{AnyPoller, Backend, Error, Events, Interest, Mode, Poller, Token};

const SLOTS: usize = 4;
const MODES: [Mode; 4] = [Mode::Level, Mode::Oneshot, Mode::Edge, Mode::EdgeOneshot];

#[derive(Clone, Copy, Debug)]
struct Reg {
    token: Token,
    mode: Mode,
    armed: bool,
}

struct Slot {
    ours: UnixStream,
    peer: Option<UnixStream>,
    reg: Option<Reg>,
    /// Bytes we wrote that the peer has not read: kept small so writes
    /// never block.
    outbound: usize,
}

fn pair() -> Slot {
    let (ours, peer) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    peer.set_nonblocking(true).expect("nonblocking");
    Slot {
        ours,
        peer: Some(peer),
        reg: None,
        outbound: 0,
    }
}

fn supported(backend: Backend, mode: Mode) -> bool {
    backend == Backend::Epoll || !mode.is_edge()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let backend = Backend::ALL[usize::from(data[0] % 3)];
    let poller = AnyPoller::new(backend).expect("poller");
    let mut events = Events::with_capacity(usize::from(data[1] % 6) + 1);
    let mut slots: Vec<Slot> = (0..SLOTS).map(|_| pair()).collect();
    // Tokens are never reused: each registration gets a fresh one, so a
    // stale token in an event is caught.
    let mut next_token = 0usize;
    let mut buf = [0u8; 256];

    for op in data[2..].chunks(2) {
        let (a, b) = (op[0], *op.get(1).unwrap_or(&0));
        let s = usize::from(b) % SLOTS;
        let interest = Interest::from_bits_truncate(b >> 2 & 7);
        let mode = MODES[usize::from(b >> 5) % MODES.len()];
        match a % 11 {
            0 => {
                let fd = slots[s].ours.as_raw_fd();
                let token = Token(next_token);
                next_token += 1;
                let res = poller.register(fd, token, interest, mode);
                match (&slots[s].reg, supported(backend, mode)) {
                    (_, false) => assert!(
                        matches!(res, Err(Error::Unsupported { .. })),
                        "{backend}: register {mode:?}: {res:?}"
                    ),
                    (Some(_), true) => assert!(
                        matches!(res, Err(Error::AlreadyRegistered { .. })),
                        "{backend}: register twice: {res:?}"
                    ),
                    (None, true) => {
                        assert!(res.is_ok(), "{backend}: register: {res:?}");
                        slots[s].reg = Some(Reg {
                            token,
                            mode,
                            armed: true,
                        });
                    }
                }
            }
            1 => {
                let fd = slots[s].ours.as_raw_fd();
                let token = Token(next_token);
                next_token += 1;
                let res = poller.modify(fd, token, interest, mode);
                match (&slots[s].reg, supported(backend, mode)) {
                    (None, _) => assert!(
                        matches!(
                            res,
                            Err(Error::NotRegistered { .. } | Error::Unsupported { .. })
                        ),
                        "{backend}: modify unregistered: {res:?}"
                    ),
                    (Some(_), false) => assert!(
                        matches!(res, Err(Error::Unsupported { .. })),
                        "{backend}: modify to {mode:?}: {res:?}"
                    ),
                    (Some(_), true) => {
                        assert!(res.is_ok(), "{backend}: modify: {res:?}");
                        slots[s].reg = Some(Reg {
                            token,
                            mode,
                            armed: true,
                        });
                    }
                }
            }
            2 => {
                let res = poller.unregister(slots[s].ours.as_raw_fd());
                if slots[s].reg.take().is_some() {
                    assert!(res.is_ok(), "{backend}: unregister: {res:?}");
                } else {
                    assert!(
                        matches!(res, Err(Error::NotRegistered { .. })),
                        "{backend}: unregister unknown: {res:?}"
                    );
                }
            }
            3 => {
                if let Some(p) = slots[s].peer.as_mut() {
                    let _ = p.write(&buf[..usize::from(b % 64) + 1]);
                }
            }
            4 => {
                let _ = slots[s].ours.read(&mut buf[..usize::from(b % 64) + 1]);
            }
            5 => {
                if slots[s].outbound < 4096 {
                    if let Ok(n) = slots[s].ours.write(&buf[..usize::from(b % 64) + 1]) {
                        slots[s].outbound += n;
                    }
                }
            }
            6 => {
                if let Some(p) = slots[s].peer.as_mut() {
                    if let Ok(n) = p.read(&mut buf) {
                        slots[s].outbound = slots[s].outbound.saturating_sub(n);
                    }
                }
            }
            7 => {
                slots[s].peer = None;
                slots[s].outbound = 0;
            }
            8 => {
                // Close ours while registered (or not), and open a new pair
                // at once: its first end usually takes the number back.
                let old_fd = slots[s].ours.as_raw_fd();
                let old_reg = slots[s].reg;
                drop(slots.remove(s));
                let mut fresh = pair();
                // Either end may have taken the number: call that one ours.
                if fresh.peer.as_ref().map(|p| p.as_raw_fd()) == Some(old_fd) {
                    let peer = fresh.peer.take().expect("just made");
                    fresh.peer = Some(std::mem::replace(&mut fresh.ours, peer));
                }
                slots.insert(s, fresh);
                let reused = slots[s].ours.as_raw_fd() == old_fd;
                match (old_reg, reused) {
                    (None, _) => {}
                    (Some(reg), true) => match backend {
                        // Poll and select watch numbers: the new file is
                        // watched under the old registration.
                        Backend::Poll | Backend::Select => slots[s].reg = Some(reg),
                        Backend::Epoll => {
                            let res = poller.unregister(old_fd);
                            assert!(
                                matches!(res, Err(Error::NotRegistered { .. })),
                                "epoll: unregister of a reused number: {res:?}"
                            );
                        }
                    },
                    (Some(_), false) => {
                        // Not reused: unregistering the closed number succeeds.
                        let res = poller.unregister(old_fd);
                        assert!(res.is_ok(), "{backend}: unregister closed: {res:?}");
                    }
                }
            }
            9 => poller.notify().expect("notify"),
            _ => {
                let n = poller
                    .wait(&mut events, Some(Duration::ZERO))
                    .expect("wait");
                assert_eq!(n, events.len());
                assert!(n <= events.capacity(), "{n} events in {}", events.capacity());
                let mut seen = BTreeMap::new();
                for ev in events.iter() {
                    let t = ev.token();
                    assert_ne!(t, Token::RESERVED, "{backend}: the waker's token");
                    assert!(seen.insert(t, ()).is_none(), "{backend}: {t:?} twice");
                    let slot = slots
                        .iter_mut()
                        .find(|sl| sl.reg.map(|r| r.token) == Some(t));
                    let Some(slot) = slot else {
                        panic!("{backend}: event for {t:?}, which no registration has");
                    };
                    let reg = slot.reg.as_mut().expect("found by its registration");
                    assert!(reg.armed, "{backend}: oneshot {t:?} reported twice");
                    if reg.mode.is_oneshot() {
                        reg.armed = false;
                    }
                }
            }
        }
    }
    for sl in &mut slots {
        if sl.reg.take().is_some() {
            let res = poller.unregister(sl.ours.as_raw_fd());
            assert!(res.is_ok(), "{backend}: final unregister: {res:?}");
        }
    }
    let n = poller.wait(&mut events, Some(Duration::ZERO)).expect("wait");
    assert_eq!(n, 0, "{backend}: events with nothing registered");
});
