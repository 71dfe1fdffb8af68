//! The tripoll lab: programs that put the library to work and measure it.
//!
//! | binary | what it is |
//! |---|---|
//! | `echo` | an echo server on the raw `Poller` API, held at its limits (memory budget, idle timeout, descriptor exhaustion) |
//! | `http` | an HTTP/1.1 server on the callback reactor, one loop per thread |
//! | `async_http` | the same server on the task layer |
//! | `client` | a load client for the echo protocol (connections, messages, latency percentiles) |
//! | `models` | the server-models sweep: one echo protocol served by every classic model, measured |
//! | `ref_http_epoll`, `ref_http_mio` | reference HTTP servers on bare epoll and bare mio |
//!
//! What they share lives here: the command-line helpers and socket plumbing
//! ([`cli`]), HTTP ([`http`]), the reference servers' common part
//! ([`ref_http`]) and CPU pinning ([`affinity`]).

pub mod affinity;
pub mod cli;
pub mod http;
pub mod ref_http;
