//! Cost of one wait as the number of registered descriptors grows.
//!
//! N socket-pair ends are registered for reading; `active` of them, spread
//! over the set, get one byte each per iteration (written at their peers).
//! One iteration writes those bytes, waits until every active descriptor
//! was reported, and reads each reported byte. Rows: the three tripoll backends, the same loop on raw
//! libc (epoll_wait, poll, select), mio and polling. One criterion group per
//! active count, so the ratios of a group come from the same run.

mod common;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};

use common::{Driver, Fds, Visit};

/// Active descriptors per iteration, one group each.
const ACTIVE: [usize; 3] = [1, 10, 100];

struct Scaling<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    name: &'a str,
    fds: &'a Fds,
    active: &'a [usize],
}

impl Visit for Scaling<'_, '_> {
    fn visit<D: Driver>(&mut self) {
        let (fds, active) = (self.fds, self.active);
        if !common::runnable::<D>(self.name, fds) {
            return;
        }
        let n = fds.len();
        let mut driver = D::open(fds.all());
        self.group
            .bench_with_input(BenchmarkId::new(D::NAME, n), &n, |b, _| {
                b.iter(|| {
                    for &i in active {
                        common::write_byte(fds.peer(i));
                    }
                    let mut seen = 0;
                    while seen < active.len() {
                        seen += driver.wait(|k| common::read_byte(fds.fd(k)));
                    }
                    assert_eq!(seen, active.len(), "only the active descriptors are ready");
                })
            });
    }
}

fn wait_scaling(c: &mut Criterion) {
    let limit = common::raise_limit();
    for active in ACTIVE {
        let name = format!("wait_scaling_{active}_active");
        let mut group = c.benchmark_group(&name);
        for n in common::SIZES.into_iter().filter(|&n| n >= active) {
            // Built per group, and dropped before the next, so that small
            // sets get the low descriptor numbers select needs.
            let Some(fds) = common::fixture(&name, n, limit) else {
                continue;
            };
            group.sample_size(common::samples(n));
            let keys: Vec<usize> = (0..active).map(|k| common::spread(k, active, n)).collect();
            common::every_row(&mut Scaling {
                group: &mut group,
                name: &name,
                fds: &fds,
                active: &keys,
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = wait_scaling
}
criterion_main!(benches);
