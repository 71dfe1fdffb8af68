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
}
