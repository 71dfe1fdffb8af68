//! What only the io_uring backend has to prove, beyond the conformance
//! suite (which runs on it through the backend list): a completion ring
//! smaller than the number of ready descriptors loses and duplicates
//! nothing, unregister really cancels the kernel's request (which holds the
//! file open), a removed registration's completions never surface, several
//! completions of one registration in a wait make one event, unasked
//! readiness does not make a wait spin, the check of waiting completions
//! survives a failing `poll(2)`, and unavailability is a typed error.

mod common;

use tripoll::{AnyPoller, Backend, Error};

/// Without the feature, asking for io_uring is a typed error naming the
/// backend, never another backend.
#[cfg(not(feature = "io-uring"))]
#[test]
fn without_the_feature_uring_is_unavailable() {
    assert_eq!("uring".parse::<Backend>().unwrap(), Backend::IoUring);
    match AnyPoller::new(Backend::IoUring) {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(matches!(
                &e,
                Error::Unavailable { backend: Backend::IoUring, reason } if reason.contains("io-uring")
            ));
            assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        }
        other => panic!("uring without the feature: {other:?}"),
    }
}

#[test]
fn the_name_is_uring() {
    for s in ["uring", "URING", "Uring"] {
        assert_eq!(s.parse::<Backend>().unwrap(), Backend::IoUring, "{s}");
    }
    assert_eq!(Backend::IoUring.name(), "uring");
    assert_eq!(Backend::IoUring.to_string(), "uring");
    let _ = AnyPoller::new;
    let _ = Error::Unavailable {
        backend: Backend::IoUring,
        reason: String::new(),
    };
}

/// A system that refuses `io_uring_setup` (a seccomp profile, as Docker's
/// default one does; `io_uring_disabled` answers the same way): creating the
/// backend, by type, by name or through `TRIPOLL_BACKEND`, is a typed
/// `Unavailable` that says why, never another backend. Each case runs in a
/// child process under a real filter.
#[cfg(feature = "io-uring")]
mod refused {
    use tripoll::{AnyPoller, Backend, Error, Uring};

    use crate::common::seccomp;

    fn refused(errno: i32, why: &str) {
        seccomp::refuse(libc::SYS_io_uring_setup, errno);
        match Uring::new() {
            Err(Error::Unavailable { backend, reason }) => {
                assert_eq!(backend, Backend::IoUring);
                assert!(reason.contains(why), "{reason}");
            }
            other => panic!("io_uring_setup refused with {errno}: {other:?}"),
        }
        let e = AnyPoller::new(Backend::IoUring).expect_err("refused");
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        // The other backends do not care.
        AnyPoller::new(Backend::Epoll).expect("epoll");
    }

    #[test]
    fn refused_with_eperm() {
        seccomp::in_child("refused::refused_with_eperm", || {
            refused(libc::EPERM, "refused")
        });
    }

    #[test]
    fn refused_with_enosys() {
        seccomp::in_child("refused::refused_with_enosys", || {
            refused(libc::ENOSYS, "not available")
        });
    }
}

#[cfg(feature = "io-uring")]
mod with_uring {
    use std::collections::HashMap;
    use std::io::{self, Read, Write};
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use tripoll::{AnyPoller, Backend, Events, Interest, Mode, Poller, Token, Uring};

    use crate::common::{
        self, assert_quiet, pipe, socket_pair, tcp_pair, wait_one, Watchdog, SAFETY,
    };

    const T1: Token = Token(1);
    const T2: Token = Token(2);

    fn uring() -> Uring {
        Uring::new().expect("io_uring is enabled on this machine")
    }

    #[test]
    fn any_poller_and_capabilities() {
        let _fds = common::fds_shared();
        let p = AnyPoller::new(Backend::IoUring).unwrap();
        assert_eq!(p.backend(), Backend::IoUring);
        assert_eq!(p.name(), "uring");
        for mode in [Mode::Level, Mode::Edge, Mode::Oneshot, Mode::EdgeOneshot] {
            assert!(p.supports(mode), "{mode:?}");
        }
        assert!(!p.supports(Mode::Exclusive) && !p.supports(Mode::EdgeExclusive));
    }

    /// 64 ready descriptors, a ring of 2 submission and 4 completion
    /// entries: the kernel keeps the completions that do not fit
    /// (`IORING_FEAT_NODROP`) and the backend must fetch them. Oneshot
    /// registrations are each reported exactly once, none lost, none
    /// twice; then everything is quiet. Blocking waits and zero-timeout
    /// waits (which must fetch held-back completions themselves: no
    /// blocking enter does it for them) both.
    #[test]
    fn a_tiny_ring_loses_and_duplicates_nothing() {
        let _fds = common::fds_shared();
        for (capacity, timeout) in [(128, SAFETY), (5, SAFETY), (5, Duration::ZERO)] {
            let p = Uring::with_entries(2).unwrap();
            assert_eq!(p.entries(), 2);
            let pipes: Vec<_> = (0..64).map(|_| pipe()).collect();
            for (i, (rd, wr)) in pipes.iter().enumerate() {
                (&*wr).write_all(b"x").unwrap();
                p.register(rd.as_raw_fd(), Token(i), Interest::READABLE, Mode::Oneshot)
                    .unwrap();
            }
            let mut seen: HashMap<usize, usize> = HashMap::new();
            let mut events = Events::with_capacity(capacity);
            while seen.len() < 64 {
                let n = p.wait(&mut events, Some(timeout)).unwrap();
                assert!(n > 0, "lost: only {} of 64 seen", seen.len());
                for e in &events {
                    assert!(e.is_readable(), "{e:?}");
                    *seen.entry(e.token().0).or_default() += 1;
                }
            }
            assert!(seen.values().all(|&k| k == 1), "duplicated: {seen:?}");
            assert_quiet(&p, &mut events, "every oneshot reported, nothing left");
        }
    }

    /// The same tiny ring with level registrations: every wait reports
    /// each descriptor at most once, and the waits serve all of them.
    #[test]
    fn a_tiny_ring_serves_every_level_registration() {
        let _fds = common::fds_shared();
        let p = Uring::with_entries(2).unwrap();
        let pipes: Vec<_> = (0..64).map(|_| pipe()).collect();
        for (i, (rd, wr)) in pipes.iter().enumerate() {
            (&*wr).write_all(b"x").unwrap();
            p.register(rd.as_raw_fd(), Token(i), Interest::READABLE, Mode::Level)
                .unwrap();
        }
        let mut events = Events::with_capacity(16);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..16 {
            p.wait(&mut events, Some(SAFETY)).unwrap();
            let mut once = std::collections::BTreeSet::new();
            for e in &events {
                assert!(once.insert(e.token().0), "twice in one wait: {events:?}");
            }
            seen.extend(once);
        }
        assert_eq!(seen.len(), 64, "16 waits of 16 must cover all 64");
    }

    /// Unregister cancels the kernel's poll request and returns once that
    /// is done: the request held the socket's file, so without the
    /// cancellation closing the descriptor would not close the socket and
    /// the peer would never see the end of the stream.
    #[test]
    fn unregister_releases_the_file() {
        let _fds = common::fds_shared();
        let p = uring();
        let (a, mut b) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "nothing sent"); // the request is in the kernel
        p.unregister(a.as_raw_fd()).unwrap();
        drop(a);
        b.set_nonblocking(false).unwrap();
        b.set_read_timeout(Some(SAFETY)).unwrap();
        assert_eq!(b.read(&mut [0; 8]).expect("end of stream"), 0);
    }

    /// The hazard the rustdoc warns about, pinned down: closing a
    /// registered descriptor does not close its file while the request is
    /// in flight; unregister (by number) then does.
    #[test]
    fn closing_a_registered_descriptor_keeps_its_file_until_unregister() {
        let _fds = common::fds_exclusive(); // the closed number must stay free
        let p = uring();
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "nothing sent");
        drop(a);
        let err = b.read(&mut [0; 8]).expect_err("the socket is still open");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        p.unregister(fd).expect("unregister after close");
        b.set_nonblocking(false).unwrap();
        b.set_read_timeout(Some(SAFETY)).unwrap();
        assert_eq!(b.read(&mut [0; 8]).expect("end of stream"), 0);
    }

    /// A completion of a removed registration never surfaces, not even
    /// when the same number is registered again at once with another token.
    #[test]
    fn a_removed_registration_is_never_reported() {
        let _fds = common::fds_shared();
        let p = uring();
        let (a, mut b) = socket_pair();
        let fd = a.as_raw_fd();
        b.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        for round in 0..50 {
            let (old, new) = if round % 2 == 0 { (T1, T2) } else { (T2, T1) };
            p.register(fd, old, Interest::READABLE, Mode::Level)
                .unwrap();
            if round % 3 == 0 {
                wait_one(&p, &mut events, old); // its re-arm is queued
            }
            p.unregister(fd).unwrap();
            p.register(fd, new, Interest::READABLE, Mode::Level)
                .unwrap();
            wait_one(&p, &mut events, new);
            p.unregister(fd).unwrap();
            assert_quiet(&p, &mut events, "unregistered");
        }
    }

    /// Unregister from another thread while a wait blocks: the wait never
    /// reports the removed registration, and the file is released.
    #[test]
    fn unregister_from_another_thread_while_waiting() {
        let _fds = common::fds_shared();
        let p = Arc::new(uring());
        let (a, b) = socket_pair();
        let fd = a.as_raw_fd();
        p.register(fd, T1, Interest::READABLE, Mode::Level).unwrap();
        let q = Arc::clone(&p);
        let other = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            q.unregister(fd).unwrap();
            let mut b = b;
            b.write_all(b"unseen").unwrap();
            drop(a);
            thread::sleep(Duration::from_millis(50));
            q.notify().unwrap();
            b
        });
        let dog = Watchdog::arm(Arc::clone(&p) as Arc<dyn Poller>, Duration::from_secs(10));
        let mut events = Events::with_capacity(8);
        let n = p.wait(&mut events, None).unwrap();
        assert!(!dog.disarm(), "the notify did not end the wait");
        assert_eq!(n, 0, "{events:?}");
        let mut b = other.join().unwrap();
        b.set_nonblocking(false).unwrap();
        b.set_read_timeout(Some(SAFETY)).unwrap();
        // `a` was closed with "unseen" unread: the peer sees a reset.
        match b.read(&mut [0; 8]) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the socket is still open: {other:?}"),
        }
    }

    /// Unregister empties the ring when no wait is running (so that
    /// completions do not pile up): what it finds there is asked again and
    /// reported by the next wait, readiness and notifications alike.
    #[test]
    fn completions_found_by_unregister_reach_the_next_wait() {
        let _fds = common::fds_shared();
        let p = Arc::new(uring());
        let (a, mut a_peer) = socket_pair();
        p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
            .unwrap();
        let mut events = Events::with_capacity(8);
        for round in 0..2 {
            let (b, _b_peer) = socket_pair();
            p.register(b.as_raw_fd(), T2, Interest::READABLE, Mode::Level)
                .unwrap();
            assert_eq!(p.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
            if round == 0 {
                a_peer.write_all(b"x").unwrap(); // a's request completes
            } else {
                p.notify().unwrap(); // the eventfd's request completes
            }
            p.unregister(b.as_raw_fd()).unwrap(); // finds it in the ring
            if round == 0 {
                let e = wait_one(&*p, &mut events, T1);
                assert!(e.is_readable(), "{e:?}");
                common::drain(&mut &a);
            } else {
                let dog = Watchdog::arm(Arc::clone(&p) as Arc<dyn Poller>, Duration::from_secs(10));
                let n = p.wait(&mut events, None).unwrap();
                assert!(!dog.disarm(), "the absorbed notification was lost");
                assert_eq!(n, 0, "{events:?}");
            }
        }
    }

    /// A multishot (edge) request completes once per wake-up; two
    /// arrivals before a wait are one event, as on epoll.
    #[test]
    fn completions_of_one_registration_merge_into_one_event() {
        let _fds = common::fds_shared();
        let p = uring();
        let (_a, mut b) = socket_pair();
        p.register(_a.as_raw_fd(), T1, Interest::READABLE, Mode::Edge)
            .unwrap();
        let mut events = Events::with_capacity(8);
        assert_quiet(&p, &mut events, "nothing sent"); // armed in the kernel
        for chunk in [b"one", b"two", b"six"] {
            b.write_all(chunk).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        let e = wait_one(&p, &mut events, T1);
        assert!(e.is_readable(), "{e:?}");
    }

    /// Readiness nobody asked for (a half-closed peer under an empty
    /// interest: the kernel reports `POLLRDHUP` to every poll request)
    /// must not make the wait complete again and again.
    #[test]
    fn unasked_readiness_does_not_spin() {
        let _fds = common::fds_shared();
        let (server, client) = tcp_pair();
        for mode in [Mode::Level, Mode::Oneshot, Mode::Edge] {
            let p = uring();
            p.register(server.as_raw_fd(), T1, Interest::empty(), mode)
                .unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            let mut events = Events::with_capacity(8);
            common::assert_sleeps(
                &p,
                &mut events,
                Duration::from_millis(150),
                "read-closed only",
            );
        }
    }

    /// When `poll(2)` cannot check the completions a wait found waiting
    /// in the ring (here a seccomp filter makes it fail with `ENOMEM`, as
    /// the kernel does when it cannot allocate its table), the checks go to
    /// the kernel as new poll requests instead: every ready descriptor is
    /// still reported, level and edge, and each once per wait. In a child
    /// process, under a real filter.
    #[test]
    fn checks_survive_a_failing_poll() {
        let _fds = common::fds_shared();
        common::seccomp::in_child("with_uring::checks_survive_a_failing_poll", || {
            const N: usize = 16;
            let p = uring();
            let pairs: Vec<_> = (0..N).map(|_| socket_pair()).collect();
            for (i, (a, _)) in pairs.iter().enumerate() {
                let mode = if i % 2 == 0 { Mode::Level } else { Mode::Edge };
                p.register(a.as_raw_fd(), Token(i), Interest::READABLE, mode)
                    .unwrap();
            }
            let mut events = Events::with_capacity(64);
            assert_quiet(&p, &mut events, "nothing written yet");
            for (_, b) in &pairs {
                (&*b).write_all(b"x").unwrap();
            }
            // The completions wait in the ring; the next wait must check them.
            common::seccomp::refuse(libc::SYS_ppoll, libc::ENOMEM);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..4 {
                p.wait(&mut events, Some(Duration::from_millis(500)))
                    .unwrap();
                let mut this_wait = std::collections::BTreeSet::new();
                for e in &events {
                    assert!(e.is_readable(), "{e:?}");
                    assert!(this_wait.insert(e.token().0), "twice in one wait: {e:?}");
                    seen.insert(e.token().0);
                }
                if seen.len() == N {
                    break;
                }
            }
            assert_eq!(seen, (0..N).collect(), "every ready descriptor reported");
        });
    }

    /// Urgent data under a priority-only interest: io_uring's poll ignores
    /// `POLLPRI` in wake-ups, which the backend works around.
    #[test]
    fn priority_alone_is_seen_and_normal_data_does_not_spin() {
        let _fds = common::fds_shared();
        let p = uring();
        let (server, mut client) = tcp_pair();
        p.register(server.as_raw_fd(), T1, Interest::PRIORITY, Mode::Level)
            .unwrap();
        client.write_all(b"plain").unwrap();
        let mut events = Events::with_capacity(8);
        common::assert_sleeps(&p, &mut events, Duration::from_millis(150), "plain data");
        common::send_oob(&client, b'!');
        let e = common::wait_for(&p, &mut events, T1);
        assert!(e.is_priority() && !e.is_readable(), "{e:?}");
    }

    /// An eventfd whose counter starts at `initial`: readable while it is
    /// above zero, which nobody here ever reads it down from.
    fn eventfd(initial: u32) -> std::os::fd::OwnedFd {
        use std::os::fd::FromRawFd;
        // SAFETY: plain system call; on success a new descriptor we own.
        let fd = unsafe { libc::eventfd(initial, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
    }

    /// Adds one to an eventfd's counter: one wake-up, and readable from now on.
    fn bump(fd: &std::os::fd::OwnedFd) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to a descriptor we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        assert_eq!(n, 8, "eventfd write: {}", io::Error::last_os_error());
    }

    /// ⌈ready / capacity⌉ + 1: the number of waits within which every
    /// ready registration must be reported (contract 8).
    fn fair_bound(ready: usize, capacity: usize) -> usize {
        (ready + capacity - 1) / capacity + 1
    }

    /// Waits `rounds` times on `ready` always-ready registrations (tokens
    /// `0..ready`) with an `Events` of `capacity`: each wait must report a
    /// full buffer (or all of them), each token at most once, and every
    /// token must be reported within the first `fair_bound` waits and
    /// then again within every `fair_bound` waits after its last report.
    fn assert_level_fair(p: &Uring, ready: usize, capacity: usize, rounds: usize, what: &str) {
        let bound = fair_bound(ready, capacity);
        let mut events = Events::with_capacity(capacity);
        let mut last = vec![0usize; ready]; // wait number of the last report
        for wait in 1..=rounds {
            let n = p.wait(&mut events, Some(SAFETY)).unwrap();
            assert_eq!(
                n,
                capacity.min(ready),
                "{what}: wait {wait} left room unused"
            );
            for e in &events {
                let t = e.token().0;
                assert!(e.is_readable(), "{what}: {e:?}");
                assert!(last[t] != wait, "{what}: token {t} twice in wait {wait}");
                last[t] = wait;
            }
            let starved = last.iter().filter(|&&l| wait - l >= bound).count();
            assert_eq!(
                starved, 0,
                "{what}: after wait {wait}, {starved} of {ready} registrations not reported \
                 for {bound} waits or more"
            );
        }
    }

    /// 64 always-ready level registrations and an `Events` of one, on rings
    /// of 2, 16 and 32 submission entries (4, 32 and 64 completions): each
    /// is reported within ⌈64 / 1⌉ + 1 waits and again within as many
    /// after, whatever the ring's size.
    #[test]
    fn level_is_fair_past_the_ring_size() {
        let _fds = common::fds_shared();
        for entries in [2, 16, 32] {
            let p = Uring::with_entries(entries).unwrap();
            let fds: Vec<_> = (0..64).map(|_| eventfd(1)).collect();
            for (i, fd) in fds.iter().enumerate() {
                p.register(fd.as_raw_fd(), Token(i), Interest::READABLE, Mode::Level)
                    .unwrap();
            }
            let what = format!("ring of {entries}");
            assert_level_fair(&p, 64, 1, 3 * fair_bound(64, 1), &what);
        }
    }

    /// The same with oneshot registrations: all 64 are reported, each
    /// once, within ⌈64 / 1⌉ + 1 waits; then nothing is left.
    #[test]
    fn oneshot_is_fair_past_the_ring_size() {
        let _fds = common::fds_shared();
        for entries in [2, 16, 32] {
            let p = Uring::with_entries(entries).unwrap();
            let fds: Vec<_> = (0..64).map(|_| eventfd(1)).collect();
            for (i, fd) in fds.iter().enumerate() {
                p.register(fd.as_raw_fd(), Token(i), Interest::READABLE, Mode::Oneshot)
                    .unwrap();
            }
            let mut events = Events::with_capacity(1);
            let mut seen = vec![0usize; 64];
            for wait in 1..=fair_bound(64, 1) {
                if seen.iter().all(|&k| k == 1) {
                    break;
                }
                assert_eq!(p.wait(&mut events, Some(SAFETY)).unwrap(), 1, "wait {wait}");
                for e in &events {
                    seen[e.token().0] += 1;
                }
            }
            assert!(
                seen.iter().all(|&k| k == 1),
                "ring of {entries}: reports per token {seen:?}"
            );
            assert_quiet(&p, &mut events, "every oneshot reported");
        }
    }

    /// How many registrations the scale tests below make: more than the
    /// default ring's 8 192 completions.
    const MANY: usize = 12_000;

    /// A default ring with `MANY` eventfds registered for reading in `mode`
    /// (token `i` for the `i`th), each holding `initial`; raises the
    /// descriptor limit first.
    fn many_eventfds(initial: u32, mode: Mode) -> (Uring, Vec<std::os::fd::OwnedFd>) {
        let wanted = MANY as u64 + 500;
        let limit = common::raise_fd_limit(wanted);
        assert!(
            limit >= wanted,
            "RLIMIT_NOFILE {limit}, this test needs {wanted}"
        );
        let p = uring();
        let fds: Vec<_> = (0..MANY).map(|_| eventfd(initial)).collect();
        for (i, fd) in fds.iter().enumerate() {
            p.register(fd.as_raw_fd(), Token(i), Interest::READABLE, mode)
                .unwrap();
        }
        (p, fds)
    }

    /// 12 000 always-ready level registrations on the default ring and an
    /// `Events` of 256: each is reported within ⌈12 000 / 256⌉ + 1 waits,
    /// and again within as many after its last report.
    #[test]
    fn level_is_fair_past_the_default_ring() {
        let _fds = common::fds_exclusive(); // 12 000 descriptors: one such test at a time
        let (p, _ready) = many_eventfds(1, Mode::Level);
        assert_level_fair(&p, MANY, 256, 2 * fair_bound(MANY, 256), "default ring");
    }

    /// 12 000 edge registrations, each made ready once (one wake-up, and
    /// nobody reads): 12 000 events, one per registration, within
    /// ⌈12 000 / 256⌉ + 1 waits, then none, although more completions came
    /// than the default ring holds.
    #[test]
    fn edge_reports_each_change_once_past_the_ring() {
        let _fds = common::fds_exclusive(); // 12 000 descriptors: one such test at a time
        let (p, fds) = many_eventfds(0, Mode::Edge);
        let mut events = Events::with_capacity(256);
        assert_quiet(&p, &mut events, "nothing written yet"); // every request armed
        for fd in &fds {
            bump(fd);
        }
        let mut seen = vec![0usize; MANY];
        let mut total = 0;
        for _ in 0..fair_bound(MANY, 256) {
            if total == MANY {
                break;
            }
            p.wait(&mut events, Some(SAFETY)).unwrap();
            for e in &events {
                assert!(e.is_readable(), "{e:?}");
                seen[e.token().0] += 1;
                total += 1;
            }
        }
        let twice = seen.iter().filter(|&&k| k > 1).count();
        let never = seen.iter().filter(|&&k| k == 0).count();
        assert_eq!(
            (twice, never),
            (0, 0),
            "{total} events: {twice} twice, {never} never"
        );
        for _ in 0..3 {
            assert_eq!(
                p.wait(&mut events, Some(Duration::ZERO)).unwrap(),
                0,
                "{events:?}"
            );
        }
        assert_quiet(&p, &mut events, "each change reported once");
    }

    /// A wait returns by its deadline even when every `io_uring_enter` is
    /// interrupted (a seccomp filter answering `EINTR`), with changes
    /// queued for submission and without, timed and zero-timeout. In a
    /// child process under a real filter; a thread started before the
    /// filter ends the child if a wait never returns.
    #[test]
    fn a_wait_returns_by_its_deadline_when_every_enter_is_interrupted() {
        let _fds = common::fds_shared();
        common::seccomp::in_child(
            "with_uring::a_wait_returns_by_its_deadline_when_every_enter_is_interrupted",
            || {
                let p = uring();
                let (a, _b) = socket_pair();
                p.register(a.as_raw_fd(), T1, Interest::READABLE, Mode::Level)
                    .unwrap();
                let mut events = Events::with_capacity(8);
                assert_quiet(&p, &mut events, "nothing sent");
                thread::spawn(|| {
                    thread::sleep(Duration::from_secs(60));
                    eprintln!("a wait under EINTR never returned");
                    std::process::exit(3);
                });
                common::seccomp::refuse(libc::SYS_io_uring_enter, libc::EINTR);
                let mut kept = Vec::new();
                for (i, timeout) in [Duration::from_millis(20), Duration::ZERO]
                    .into_iter()
                    .enumerate()
                {
                    assert_eq!(p.wait(&mut events, Some(timeout)).unwrap(), 0);
                    // A change queued for submission: the wait must try to
                    // submit it, and still return.
                    let (c, d) = socket_pair();
                    p.register(
                        c.as_raw_fd(),
                        Token(10 + i),
                        Interest::READABLE,
                        Mode::Level,
                    )
                    .unwrap();
                    assert_eq!(p.wait(&mut events, Some(timeout)).unwrap(), 0);
                    kept.push((c, d));
                }
            },
        );
    }

    /// The ping-pong of `benches/pingpong.rs` as a whole program, for
    /// instruction counts (`scripts/bench-instructions.py 'roundtrip/{}'`)
    /// and whole-process timing: `TRIPOLL_ROUNDS` round trips (default
    /// 10 000) over a Unix socket pair, both ends registered with one
    /// poller (`TRIPOLL_BACKEND`: `uring` or `epoll`) in `TRIPOLL_MODE`
    /// (`level` or `edge`). Each round trip is two writes, two waits and
    /// two reads. Ignored: it measures, it checks only that every wait
    /// reports the end just written to.
    #[test]
    #[ignore = "a measurement program: run it by name with --ignored"]
    fn round_trips_for_counting() {
        use tripoll::Epoll;
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
        let rounds: usize = var("TRIPOLL_ROUNDS", "10000")
            .parse()
            .expect("TRIPOLL_ROUNDS");
        let mode = match var("TRIPOLL_MODE", "level").as_str() {
            "level" => Mode::Level,
            "edge" => Mode::Edge,
            other => panic!("TRIPOLL_MODE={other}: level or edge"),
        };
        match var("TRIPOLL_BACKEND", "uring").as_str() {
            "uring" => round_trips(&uring(), mode, rounds),
            "epoll" => round_trips(&Epoll::new().expect("epoll"), mode, rounds),
            other => panic!("TRIPOLL_BACKEND={other}: uring or epoll"),
        }
    }

    /// The loop of [`round_trips_for_counting`], which callgrind collects in.
    #[inline(never)]
    fn round_trips<P: Poller>(p: &P, mode: Mode, rounds: usize) {
        let (a, b) = socket_pair();
        let fds = [a.as_raw_fd(), b.as_raw_fd()];
        for (i, &fd) in fds.iter().enumerate() {
            p.register(fd, Token(i), Interest::READABLE, mode).unwrap();
        }
        let mut events = Events::with_capacity(64);
        let mut byte = 0u8;
        for _ in 0..rounds {
            for from in [0, 1] {
                let to = 1 - from;
                // libc's write and read, as the bench (std's sockets `send`).
                // SAFETY: one readable byte at `&byte`.
                let n = unsafe { libc::write(fds[from], (&byte as *const u8).cast(), 1) };
                assert_eq!(n, 1, "write: {}", io::Error::last_os_error());
                p.wait(&mut events, None).unwrap();
                let got = events.iter().next().map(|e| e.token().0);
                assert!(events.len() == 1 && got == Some(to), "{events:?}");
                // SAFETY: one writable byte at `&mut byte`.
                let n = unsafe { libc::read(fds[to], (&mut byte as *mut u8).cast(), 1) };
                assert_eq!(n, 1, "read: {}", io::Error::last_os_error());
            }
        }
    }
}
