//! What the lab's tests share, from the workspace's test kit: the lab's
//! programs as child processes ([`child`]: `Proc::spawn("echo", ...)` starts
//! the lab's `echo` binary), hostile clients ([`hostile`]) and the one
//! backend list ([`for_each_backend`]).
#![allow(dead_code, unused_imports)]

pub use tripoll_testkit::net::{connect_with_receive_buffer, raise_fd_limit, set_linger_zero};
pub use tripoll_testkit::{child, for_each_backend, hostile};
