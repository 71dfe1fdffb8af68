//! What the tests and benches of the tripoll workspace share: the one
//! backend list ([`for_each_backend!`]), programs run as child processes
//! ([`child`]), hostile clients against echo servers ([`hostile`]), and
//! socket and descriptor-limit helpers ([`net`]).
//!
//! The kit does not depend on `tripoll`: the backend list is a macro that
//! names its types, expanded in the crate that uses it, so the library's
//! own tests can use the kit without a dependency cycle.

mod backends;
pub mod child;
pub mod hostile;
pub mod net;
