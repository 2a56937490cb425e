//! Choosing an endpoint for a request.
//!
//! - [`algorithm`]: how a new request or session is placed: [`RoundRobin`] and [`ConsistentHash`],
//!   two concrete types with the same inherent `select(key, allowed)`. Built once per snapshot
//!   from an immutable endpoint set.
//! - [`cookie`]: the session cookie codec (value format, MAC, `Cookie` header parsing and
//!   `Set-Cookie` rendering), isolated so it can be unit-tested and fuzzed on its own. Its
//!   `Expires` date comes from [`model::time`].
//! - [`sticky`]: the stickiness layer, [`BackendBalancer`]: one per backend, holding a round robin
//!   and, when a route uses balanced affinity, a ring. It honours a valid cookie, otherwise picks
//!   anew and says which cookie to set.

pub mod algorithm;
pub mod cookie;
pub mod sticky;

pub use algorithm::{ConsistentHash, RoundRobin};
pub use cookie::{CookieError, CookieKey, Pin, Session};
pub use sticky::{random_u64, BackendBalancer, StickyPick};
