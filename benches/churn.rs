//! Cost of changing the interest set: one iteration registers one
//! descriptor for reading, modifies it to reading and writing, and
//! unregisters it, while N − 1 other descriptors stay registered. Rows: the
//! three tripoll backends and the same three `epoll_ctl` calls on libc.

mod common;

use std::os::fd::RawFd;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tripoll::{Interest, Mode, Token};

use common::{Backend, Clock, Fds, Group, RawEpoll, Tri, EPOLL_READ};

/// Registered descriptors, the churned one included.
const SIZES: [usize; 4] = [10, 1_000, 10_000, 65_536];

fn bench_backend<P: Backend>(group: &mut Group<'_>, fds: &Fds, churned: usize) {
    let n = fds.len();
    if !common::runnable::<Tri<P>>("churn", fds) {
        return;
    }
    let tri = Tri::<P>::empty();
    register_others(fds, churned, |fd, key| {
        tri.poller
            .register(fd, Token(key), Interest::READABLE, Mode::Level)
            .expect("register");
    });
    let fd = fds.fd(churned);
    let both = Interest::READABLE | Interest::WRITABLE;
    group.bench_with_input(BenchmarkId::new(P::NAME, n), &n, |b, _| {
        b.iter(|| {
            let p = &tri.poller;
            p.register(fd, Token(churned), Interest::READABLE, Mode::Level)
                .expect("register");
            p.modify(fd, Token(churned), both, Mode::Level)
                .expect("modify");
            p.unregister(fd).expect("unregister");
        })
    });
}

fn bench_raw(group: &mut Group<'_>, fds: &Fds, churned: usize) {
    let n = fds.len();
    let raw = RawEpoll::empty();
    register_others(fds, churned, |fd, key| {
        raw.ctl(libc::EPOLL_CTL_ADD, fd, EPOLL_READ, key);
    });
    let fd = fds.fd(churned);
    let both = EPOLL_READ | libc::EPOLLOUT as u32;
    group.bench_with_input(BenchmarkId::new("raw-epoll", n), &n, |b, _| {
        b.iter(|| {
            raw.ctl(libc::EPOLL_CTL_ADD, fd, EPOLL_READ, churned);
            raw.ctl(libc::EPOLL_CTL_MOD, fd, both, churned);
            raw.ctl(libc::EPOLL_CTL_DEL, fd, 0, churned);
        })
    });
}

/// Registers every descriptor but the churned one.
fn register_others(fds: &Fds, churned: usize, mut add: impl FnMut(RawFd, usize)) {
    for (key, &fd) in fds.all().iter().enumerate() {
        if key != churned {
            add(fd, key);
        }
    }
}

fn churn(c: &mut Criterion<Clock>) {
    let limit = common::raise_limit();
    let mut group = c.benchmark_group("churn");
    for n in SIZES {
        let Some(fds) = common::fixture("churn", n, limit) else {
            continue;
        };
        group.sample_size(common::samples(n));
        let churned = n / 2;
        macro_rules! row {
            ($module:ident, $backend:expr, $poller:ty) => {
                bench_backend::<$poller>(&mut group, &fds, churned);
            };
        }
        common::for_each_backend!(row);
        bench_raw(&mut group, &fds, churned);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config().without_plots();
    targets = churn
}
criterion_main!(benches);
