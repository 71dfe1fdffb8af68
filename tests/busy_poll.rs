//! Epoll's busy-poll parameters (`EPIOCSPARAMS`/`EPIOCGPARAMS`, Linux
//! 6.9): set and read back here, refused with a typed error by the other
//! backends and under a real seccomp filter that refuses the ioctl.

mod common;

use std::io;

use common::seccomp;
use tripoll::{AnyPoller, Backend, BusyPoll, Capabilities, Epoll, Error, Op, Poller};

/// This machine's kernel has the ioctl (the brief's kernel is 6.18); where
/// it does not, the capability is off and the error is typed.
fn kernel_has_it() -> bool {
    let p = Epoll::new().unwrap();
    let has = p.capabilities().contains(Capabilities::BUSY_POLL);
    assert_eq!(has, p.busy_poll().is_ok());
    has
}

#[test]
fn set_values_read_back() {
    if !kernel_has_it() {
        let p = Epoll::new().unwrap();
        assert!(matches!(
            p.set_busy_poll(BusyPoll::default()),
            Err(Error::FeatureUnavailable {
                feature: "busy poll",
                ..
            })
        ));
        return;
    }
    let p = Epoll::new().unwrap();
    assert_eq!(p.busy_poll().unwrap(), BusyPoll::default(), "off when new");
    for wanted in [
        BusyPoll {
            usecs: 50,
            budget: 8,
            prefer: true,
        },
        BusyPoll {
            usecs: 1,
            budget: 64,
            prefer: false,
        },
        BusyPoll {
            usecs: i32::MAX as u32,
            budget: 0,
            prefer: true,
        },
        BusyPoll::default(),
    ] {
        p.set_busy_poll(wanted).unwrap();
        assert_eq!(p.busy_poll().unwrap(), wanted);
        println!("set and read back: {wanted:?}");
    }
    // Per instance: another one is untouched.
    p.set_busy_poll(BusyPoll {
        usecs: 7,
        budget: 2,
        prefer: false,
    })
    .unwrap();
    assert_eq!(
        Epoll::new().unwrap().busy_poll().unwrap(),
        BusyPoll::default()
    );
    // Through AnyPoller too.
    let any = AnyPoller::new(Backend::Epoll).unwrap();
    let wanted = BusyPoll {
        usecs: 25,
        budget: 16,
        prefer: true,
    };
    any.set_busy_poll(wanted).unwrap();
    assert_eq!(any.busy_poll().unwrap(), wanted);
}

#[test]
fn values_the_kernel_refuses_change_nothing() {
    if !kernel_has_it() {
        return;
    }
    let p = Epoll::new().unwrap();
    let kept = BusyPoll {
        usecs: 10,
        budget: 4,
        prefer: false,
    };
    p.set_busy_poll(kept).unwrap();
    match p.set_busy_poll(BusyPoll {
        usecs: u32::MAX,
        budget: 0,
        prefer: false,
    }) {
        Err(Error::Io {
            op: Op::BusyPoll,
            source,
        }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.busy_poll().unwrap(), kept);
}

#[test]
fn other_backends_refuse() {
    for backend in common::backends() {
        let p = AnyPoller::new(backend).unwrap();
        if backend == Backend::Epoll {
            continue;
        }
        assert!(!p.capabilities().contains(Capabilities::BUSY_POLL));
        for err in [
            p.busy_poll().unwrap_err(),
            p.set_busy_poll(BusyPoll::default()).unwrap_err(),
        ] {
            assert!(
                matches!(
                    err,
                    Error::FeatureUnavailable {
                        feature: "busy poll",
                        ..
                    }
                ),
                "{backend}: {err:?}"
            );
            assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        }
    }
}

/// Under a filter that refuses the two requests, the capability is off
/// and both calls say the feature is unavailable; the poller still works.
fn refused(errno: i32) {
    seccomp::refuse_ioctl(libc::EPIOCGPARAMS, errno);
    seccomp::refuse_ioctl(libc::EPIOCSPARAMS, errno);
    let p = Epoll::new().unwrap();
    assert!(!p.capabilities().contains(Capabilities::BUSY_POLL));
    for err in [
        p.busy_poll().unwrap_err(),
        p.set_busy_poll(BusyPoll {
            usecs: 50,
            budget: 8,
            prefer: true,
        })
        .unwrap_err(),
    ] {
        match &err {
            Error::FeatureUnavailable { feature, reason } => {
                assert_eq!(*feature, "busy poll");
                assert!(reason.contains("refused"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }
    let mut events = tripoll::Events::with_capacity(4);
    p.notify().unwrap();
    assert_eq!(
        p.wait(&mut events, Some(std::time::Duration::ZERO))
            .unwrap(),
        0
    );
}

#[test]
fn refused_by_seccomp_with_eperm() {
    seccomp::in_child("refused_by_seccomp_with_eperm", || refused(libc::EPERM));
}

#[test]
fn refused_by_seccomp_with_enotty() {
    seccomp::in_child("refused_by_seccomp_with_enotty", || refused(libc::ENOTTY));
}
