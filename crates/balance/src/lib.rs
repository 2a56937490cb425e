//! Choosing an endpoint for a request.
//!
//! - [`algorithm`]: how a new request or session is placed, behind the small [`Selection`] trait
//!   (round robin, consistent hashing). Built once per snapshot from an immutable endpoint set.
//! - [`cookie`]: the session cookie codec (value format, MAC, `Cookie` header parsing and
//!   `Set-Cookie` rendering), isolated so it can be unit-tested and fuzzed on its own.
//! - [`sticky`]: the stickiness layer over any algorithm: honour a valid cookie, otherwise pick anew
//!   and say which cookie to set.

pub mod algorithm;
pub mod cookie;
pub mod sticky;

pub use algorithm::{ConsistentHash, RoundRobin, Selection};
pub use cookie::{CookieError, CookieKey, Pin, Session};
pub use sticky::{random_u64, BackendBalancer, StickyPick};
