//! HTTP/1.1 for the lab's servers: the request parser and the responses
//! ([`proto`]), and the `Date` header rendered once a second ([`date`]).
//! The HTTP servers (`http`, `async_http`) and the reference servers
//! (`ref_http_epoll`, `ref_http_mio`) share them, and so do the HTTP tests
//! and the fuzz target.

pub mod date;
pub mod proto;
