//! The protocol suites of `SessionManager`, run on the in-memory store of
//! `tessera-testkit` (no database): conformance (each operation and outcome),
//! races (64-way refresh races) and properties (the attacker/client model).
//! `tessera-sqlx/tests/protocol.rs` runs these same files on every SQL
//! backend, with the harness of that crate.

mod support;

mod conformance;
mod devices;
mod feed;
mod grace;
mod lifetimes;
mod properties;
mod races;
