//! What Tessera's tests share (not published):
//!
//! - [`MemoryStore`], an in-memory [`tessera::Store`]: every method atomic,
//!   every contract of the trait honoured. It passes the same
//!   [`store_suite`] as the SQL stores, so protocol tests and examples can
//!   run without a database.
//! - [`store_suite`], the store conformance suite: the contract of
//!   [`tessera::Store`] as tests, run by every store implementation (this
//!   crate's tests for [`MemoryStore`], `tessera-sqlx`'s for SQLite,
//!   PostgreSQL and MySQL/MariaDB).
//! - [`jar`], the test client's cookie jar: takes in a response's headers
//!   and gives the request's (the protocol tests call `SessionManager` with
//!   them; the HTTP tests of `tessera-axum` and `tessera-demo` wrap it with
//!   their client).
//! - [`flow`], the protocol suites' client steps (sign in, verify, refresh
//!   through a jar) and their error-kind assertions.
//! - [`forge`], tokens taken apart and made by hand: segments, header and
//!   claims decoded and encoded, signed with a known HMAC-SHA256 key, one
//!   header field changed.
//! - [`fuzzing`], the fuzz fixture: the entry points that the cargo-fuzz
//!   targets in `fuzz/` call, the oracles they check, and the seed corpus.

pub mod flow;
pub mod forge;
pub mod fuzzing;
pub mod intercept;
pub mod jar;
mod memory;
pub mod store_suite;

pub use memory::MemoryStore;
