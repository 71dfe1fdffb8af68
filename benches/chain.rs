//! libevent's `test/bench.c` scenario: N socket-pair ends are registered
//! for reading; one iteration makes `active` of them readable with one byte
//! each, and every byte read at descriptor k triggers a one-byte write that
//! makes descriptor k + 1 readable, until `writes` such writes have been
//! made and every byte has been read.
//! Registration happens outside the timed region. Rows: every tripoll
//! backend (io_uring with the `io-uring` feature) and the same loop on raw
//! epoll.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use common::{Clock, Driver, Fds, Group, RawEpoll, Visit};

/// Registered descriptors.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// (active descriptors, forwarded writes): libevent's two published runs.
const RUNS: [(usize, usize); 2] = [(1, 100), (100, 1_000)];

struct Chain<'a, 'c> {
    group: &'a mut Group<'c>,
    name: &'a str,
    fds: &'a Fds,
    active: usize,
    writes: usize,
}

impl Visit for Chain<'_, '_> {
    fn visit<D: Driver>(&mut self) {
        let (fds, active, writes) = (self.fds, self.active, self.writes);
        if !common::runnable::<D>(self.name, fds) {
            return;
        }
        let n = fds.len();
        let space = n / active;
        let mut driver = D::open(fds.all());
        self.group
            .bench_with_input(BenchmarkId::new(D::NAME, n), &n, |b, _| {
                b.iter(|| {
                    let mut left = writes;
                    let mut fired = 0;
                    let mut read = 0;
                    for k in 0..active {
                        common::write_byte(fds.peer(k * space));
                        fired += 1;
                    }
                    while read < fired {
                        driver.wait(|k| {
                            common::read_byte(fds.fd(k));
                            read += 1;
                            if left > 0 {
                                let next = if k + 1 == n { 0 } else { k + 1 };
                                common::write_byte(fds.peer(next));
                                left -= 1;
                                fired += 1;
                            }
                        });
                    }
                    assert_eq!(fired, active + writes);
                })
            });
    }
}

fn chain(c: &mut Criterion<Clock>) {
    let limit = common::raise_limit();
    for (active, writes) in RUNS {
        let name = format!("chain_{active}_active_{writes}_writes");
        let mut group = c.benchmark_group(&name);
        for n in SIZES {
            let Some(fds) = common::fixture(&name, n, limit) else {
                continue;
            };
            group.sample_size(common::samples(n));
            let mut chain = Chain {
                group: &mut group,
                name: &name,
                fds: &fds,
                active,
                writes,
            };
            common::every_backend(&mut chain);
            chain.visit::<RawEpoll>();
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config().without_plots();
    targets = chain
}
criterion_main!(benches);
