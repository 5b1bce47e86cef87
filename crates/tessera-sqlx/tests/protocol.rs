//! The protocol suites of `SessionManager` (written once, in
//! `crates/tessera/tests/protocol`, where they run on the in-memory store) run
//! here on every SQL backend: SQLite always, PostgreSQL and MariaDB/MySQL when
//! `TESSERA_TEST_POSTGRES_URL` / `TESSERA_TEST_MYSQL_URL` are set. With
//! `TESSERA_REQUIRE_ALL_BACKENDS=1` (as CI sets it) a missing URL is a
//! failure, never a silent skip. Each test prints the backend it ran on.
//!
//! What the suites add over the store conformance suite on a real database:
//! the races and the attacker model meet real locks, isolation and pools.

mod support;

#[path = "../../tessera/tests/protocol/conformance.rs"]
mod conformance;
#[path = "../../tessera/tests/protocol/devices.rs"]
mod devices;
#[path = "../../tessera/tests/protocol/feed.rs"]
mod feed;
#[path = "../../tessera/tests/protocol/grace.rs"]
mod grace;
#[path = "../../tessera/tests/protocol/lifetimes.rs"]
mod lifetimes;
#[path = "../../tessera/tests/protocol/properties.rs"]
mod properties;
#[path = "../../tessera/tests/protocol/races.rs"]
mod races;
