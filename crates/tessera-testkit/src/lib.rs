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
//! - [`fuzzing`], the fuzz fixture: the entry points that the cargo-fuzz
//!   targets in `fuzz/` call, the oracles they check, and the seed corpus.

pub mod fuzzing;
mod memory;
pub mod store_suite;

pub use memory::MemoryStore;
