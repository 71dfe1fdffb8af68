//! The one list of backends that every per-backend test suite and bench
//! is instantiated over. `for_each_backend!(suite)` expands to
//! `suite!(epoll, tripoll::Backend::Epoll, tripoll::Epoll);` and so on, one
//! line per backend: the module name, the `Backend` value and the poller
//! type. A new backend joins the conformance, model, reactor, fault, scale,
//! HTTP and example suites and the bench rows by one line here. (The
//! benches include this file by path.)

#[allow(unused_macros)]
macro_rules! for_each_backend {
    ($suite:ident) => {
        $suite!(epoll, tripoll::Backend::Epoll, tripoll::Epoll);
        $suite!(poll, tripoll::Backend::Poll, tripoll::Poll);
        $suite!(select, tripoll::Backend::Select, tripoll::Select);
        #[cfg(feature = "io-uring")]
        $suite!(uring, tripoll::Backend::IoUring, tripoll::Uring);
    };
}
