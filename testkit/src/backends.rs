/// The one list of backends that every per-backend test suite and bench of
/// the workspace is instantiated over, in the library and in the lab.
/// `for_each_backend!(suite)` expands to
/// `suite!(epoll, tripoll::Backend::Epoll, tripoll::Epoll);` and so on, one
/// line per backend: the module name, the `Backend` value and the poller
/// type. A new backend joins the conformance, model, reactor, fault, scale,
/// HTTP and echo suites and the bench rows by one line here.
///
/// The `io-uring` line is compiled where the *calling* crate has its
/// `io-uring` feature on (the library's, or the lab's, which turns on the
/// library's).
#[macro_export]
macro_rules! for_each_backend {
    ($suite:ident) => {
        $suite!(epoll, tripoll::Backend::Epoll, tripoll::Epoll);
        $suite!(poll, tripoll::Backend::Poll, tripoll::Poll);
        $suite!(select, tripoll::Backend::Select, tripoll::Select);
        #[cfg(feature = "io-uring")]
        $suite!(uring, tripoll::Backend::IoUring, tripoll::Uring);
    };
}
