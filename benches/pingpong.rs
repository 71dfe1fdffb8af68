//! One round trip over a socket pair, both ends in one thread and both
//! registered with one poller: write a → b, wait, read at b, write b → a,
//! wait, read at a. Two waits per iteration, no thread hand-off, so the
//! time is the backend's plus the kernel's. Rows: every tripoll backend
//! (io_uring with the `io-uring` feature), their raw floors, mio and
//! polling in its three modes (oneshot re-arms after every event; level
//! and edge do not). With `io-uring`, also the uring backend in edge mode
//! and the floor of its bookkeeping in both modes (`floor-uring`,
//! `floor-uring-edge`: the same contract-keeping pattern, bare).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};

use common::{Clock, Driver, Fds, Group, Visit};

/// Keys: the end at index 0 is `a`, at index 1 is `b`.
struct PingPong<'a, 'c> {
    group: &'a mut Group<'c>,
    ends: &'a Fds,
}

impl Visit for PingPong<'_, '_> {
    fn visit<D: Driver>(&mut self) {
        let fds = self.ends.all();
        let mut driver = D::open(fds);
        self.group.bench_function(D::NAME, |b| {
            b.iter(|| {
                for from in [0, 1] {
                    common::write_byte(fds[from]);
                    let mut got = None;
                    while got.is_none() {
                        driver.wait(|k| {
                            common::read_byte(fds[k]);
                            got = Some(k);
                        });
                    }
                    assert_eq!(got, Some(1 - from), "the other end is the one ready");
                }
            })
        });
    }
}

fn pingpong(c: &mut Criterion<Clock>) {
    let ends = Fds::new(2, common::raise_limit()).expect("one socket pair");
    let mut group = c.benchmark_group("pingpong");
    let mut rows = PingPong {
        group: &mut group,
        ends: &ends,
    };
    common::every_row(&mut rows);
    // Edge mode, and the floor of the uring backend's bookkeeping in both
    // modes (see `FloorUring`).
    #[cfg(feature = "io-uring")]
    {
        use common::Visit;
        rows.visit::<common::UringEdge>();
        rows.visit::<common::FloorUring<false>>();
        rows.visit::<common::FloorUring<true>>();
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config().without_plots();
    targets = pingpong
}
criterion_main!(benches);
