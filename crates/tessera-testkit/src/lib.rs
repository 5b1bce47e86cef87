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

mod memory;
pub mod store_suite;

pub use memory::MemoryStore;
