//! Cost of one wait as the number of registered descriptors grows.
//!
//! N socket-pair ends are registered for reading; `active` of them, spread
//! over the set, get one byte each per iteration (written at their peers).
//! One iteration writes those bytes, waits until every active descriptor
//! was reported, and reads each reported byte. Rows: every tripoll backend
//! (io_uring with the `io-uring` feature), the same loop on raw libc
//! (epoll_wait, poll, select), mio and polling (oneshot, level and edge).
//! One criterion group per active count (1, 10, 100), so the ratios of a
//! group come from the same run.

mod common;

use criterion::{
    criterion_group, criterion_main, AxisScale, BenchmarkId, Criterion, PlotConfiguration,
};

use common::{Clock, Driver, Fds, Group, Visit};

struct Scaling<'a, 'c> {
    group: &'a mut Group<'c>,
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

/// Runs the group for `active` descriptors out of each of [`common::SIZES`].
fn wait_scaling(c: &mut Criterion<Clock>, active: usize) {
    let limit = common::raise_limit();
    let name = format!("wait_scaling_{active}_active");
    let mut group = c.benchmark_group(&name);
    // Log-log: select and poll grow with N, epoll stays flat, across four
    // orders of magnitude.
    group.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    for n in common::SIZES.into_iter().filter(|&n| n >= active) {
        // Built per size, and dropped before the next, so that small sets
        // get the low descriptor numbers select needs.
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

fn one_active(c: &mut Criterion<Clock>) {
    wait_scaling(c, 1);
}

fn ten_active(c: &mut Criterion<Clock>) {
    wait_scaling(c, 10);
}

fn hundred_active(c: &mut Criterion<Clock>) {
    wait_scaling(c, 100);
}

// Only the 1-active group draws criterion's plots (its lines.svg is
// docs/scaling.svg): drawing them costs about as much time as measuring.
criterion_group! {
    name = plotted;
    config = common::config();
    targets = one_active
}
criterion_group! {
    name = unplotted;
    config = common::config().without_plots();
    targets = ten_active, hundred_active
}
criterion_main!(plotted, unplotted);
