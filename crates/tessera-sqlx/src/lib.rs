//! SQLite, PostgreSQL and MySQL/MariaDB implementations of [`tessera::Store`],
//! built on sqlx.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tessera::StoreError> {
//! use tessera::Store as _;
//!
//! // Parses the URL, opens a pool and runs the embedded migrations
//! // (`sqlite://sessions.db` for a file, created if missing).
//! let store = tessera_sqlx::connect("sqlite::memory:").await?;
//! assert!(store.load_session("no such handle").await?.is_none());
//! # Ok(()) }
//! ```
//!
//! [`connect`] accepts `sqlite://path` (the file is created if missing),
//! `sqlite::memory:`, `postgres://…` / `postgresql://…` and `mysql://…` /
//! `mariadb://…`, and returns a [`SqlStore`]. Each database also has its own
//! store type ([`SqliteStore`], [`PostgresStore`], [`MySqlStore`]) that wraps
//! a pool you built yourself. Each sits behind the cargo feature of the same
//! name (`sqlite`, `postgres`, `mysql`, all on by default).
//!
//! # Design
//!
//! * **One short transaction per call.** Every [`tessera::Store`] method is a
//!   single autocommit statement, except `signing_keys`, which is one small
//!   transaction. No lock is ever held across a round trip to the
//!   application. Refresh-token promotion is a compare-and-set: one `UPDATE …
//!   WHERE session_handle = ? AND refresh_token_hash_2 = ? AND expires_at > ?`
//!   that the database serialises with the row lock the `UPDATE` takes.
//! * **Locks for key rotation.** `signing_keys` is the only step that reads,
//!   decides and writes. PostgreSQL and MySQL insert the current-key row if it
//!   is absent, then lock it with `SELECT … FOR UPDATE` in a transaction, so
//!   that concurrent rotations from any number of processes queue on that row
//!   and each sees what the one before it committed. SQLite takes the
//!   database's write lock up front with `BEGIN IMMEDIATE` (a deferred
//!   transaction that reads and then writes fails with `SQLITE_BUSY_SNAPSHOT`
//!   rather than waiting). If anything fails, panics or is cancelled midway,
//!   the transaction is rolled back and a connection whose transaction was not
//!   seen to end is closed rather than returned to the pool, so nothing is
//!   left half written.
//! * **Conflicts are retried.** A call that fails with a serialization
//!   failure, a deadlock or (on a MariaDB Galera cluster) a certification
//!   failure at COMMIT (SQLSTATE 40001 / 40P01 / 40003, MySQL error 1213) is
//!   run again as a whole, up to 10 attempts with jittered backoff inside the
//!   call deadline; a retried create or promotion recognises its own
//!   committed result, so none is done twice. The attempts are logged under
//!   the tracing target `tessera_sqlx::retry` and counted by
//!   [`conflict_retries`]; when they run out the call fails with a retryable
//!   `Unavailable` error. See docs/DISTRIBUTED.md, which also lists the
//!   Galera settings that [`MySqlStore::connect`] checks.
//! * **Durability.** A call returns only after its commit. SQLite runs in WAL
//!   mode with `synchronous=FULL` (every commit is fsynced) and a 10 s busy
//!   timeout; PostgreSQL and MySQL rely on the server's defaults
//!   (`synchronous_commit = on`, `innodb_flush_log_at_trx_commit = 1`).
//! * **Bounded waits.** A call fails with a [`tessera::StoreError`] (a
//!   General error) instead of waiting without end: the pool's acquire
//!   timeout bounds how long it waits for a connection, which is also how
//!   long it takes to fail while the database is down (sqlx retries refused
//!   connections until then), and a lock timeout set on every PostgreSQL and
//!   MySQL connection bounds each wait for a row or table lock. Both default
//!   to 5 s. A server that keeps the connection open but stops answering
//!   (frozen, or behind a network that drops packets) is bounded by a
//!   deadline on the whole call, 10 s by default; see [`StoreOptions`]. A
//!   connection that dies (server stopped or killed, backend terminated)
//!   fails the call in progress; the pool pings idle connections before
//!   handing them out and opens new ones, so the store recovers by itself
//!   when the database is back.
//! * **Exact comparison.** User ids are stored as
//!   [`tessera::UserId::to_storage`] (JSON: `"7"` and `7` differ) and compared
//!   byte for byte. SQLite and PostgreSQL compare text exactly by default;
//!   on MySQL every text column is declared `utf8mb4` with the `utf8mb4_bin`
//!   collation, so `"Alice"` and `"alice"` stay different users. See
//!   [`MySqlStore`] for the one quirk of that collation (trailing spaces).
//! * **Cleanup in batches.** `delete_expired_sessions` deletes at most one
//!   batch per statement, walking the `expires_at` index (PostgreSQL skips
//!   rows that another transaction holds).
//! * **Bad data is an error, never a panic.** A `user_id` column that is not a
//!   user id, or a key that is not base64, makes the call fail with a
//!   [`tessera::StoreError`]; such rows are not skipped silently.
//!
//! # Schema
//!
//! Versioned migrations are embedded in the binary, one directory per
//! database (`migrations/sqlite`, `migrations/postgres`, `migrations/mysql`),
//! and run by [`connect`] or by each store's `migrate`. The SQL is plain and
//! idempotent (`CREATE … IF NOT EXISTS`) so that the Django package can create
//! the same tables from the same files.
//!
//! * `tessera_sessions`: `session_handle` (primary key), `user_id`,
//!   `refresh_token_hash_2`, `session_info`, `jwt_payload`, `created_at`,
//!   `expires_at` (both milliseconds since the Unix epoch); the promotion
//!   history `committed_hash_1`, `previous_hash_2`, `superseded_at`
//!   (migration 0005); the device columns `user_agent`, `client_address`,
//!   `device_label` (migration 0006, nullable, written only at creation);
//!   indexes on `(user_id, created_at)` and `(expires_at)`. Migrations 0005
//!   and 0006 only add nullable columns, so a database made by an earlier
//!   release upgrades in place when [`connect`] runs them.
//! * `tessera_keys`: `key_name` (primary key), `key_value` (the key bytes in
//!   standard base64 with padding), `created_at` (ms). The access-token
//!   signing keys are the rows `access_token_signing_key` (current) and
//!   `access_token_signing_key_previous`.
#![warn(missing_docs)]
// Built without any database feature the crate is an empty shell.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused_variables, dead_code)
)]

use std::time::Duration;

use async_trait::async_trait;
use tessera::{
    Change, ExpiryCutoff, NewSession, Promotion, RotationDecision, SessionRow, SessionSummary,
    SigningKeys, Store, StoreError, StoreResult, StoredKey, UserId,
};

mod changes;
mod common;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod keys;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod tx;

#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use tx::conflict_retries;

/// How [`connect_with`] builds its pool.
///
/// # Timeouts (what bounds a call when the database misbehaves)
///
/// * **Acquire timeout** bounds how long a call waits for a connection:
///   for a free pooled one, or for a new one to be opened. While the database
///   is down, sqlx keeps retrying a refused connection until this deadline,
///   so it is also how long a call takes to fail with a General error during
///   an outage. Default 5 s on PostgreSQL and MySQL; 30 s on SQLite, where
///   there is no server to lose and waits are only contention.
/// * **Lock timeout** bounds how long one statement waits for a lock held by
///   someone else (a row, a table, a metadata lock): PostgreSQL's
///   `lock_timeout`, MySQL's `innodb_lock_wait_timeout` and
///   `lock_wait_timeout`, set on every pooled connection. Tessera's own
///   statements hold row locks for milliseconds, so a longer wait means a
///   stuck transaction elsewhere. Default 5 s. Ignored by SQLite, whose
///   writers wait up to its 10 s busy timeout. Migrations run without it.
///
/// * **Call timeout** bounds one whole call on PostgreSQL and MySQL, for a
///   server that holds the connection open but no longer answers (frozen,
///   or cut off by a network that drops packets), where neither of the two
///   above can fire. Default 10 s; see [`StoreOptions::call_timeout`].
///
/// A call does at most a few statements, so during an outage or behind a
/// stuck lock it fails within a small multiple of the first two, and never
/// later than the call timeout (see `tests/faults.rs`, which checks this
/// against stopped, killed and frozen servers).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    pub(crate) max_connections: Option<u32>,
    pub(crate) acquire_timeout: Option<Duration>,
    pub(crate) lock_timeout: Option<Duration>,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) run_migrations: bool,
}

/// Default acquire timeout on PostgreSQL and MySQL.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default acquire timeout on SQLite.
pub const DEFAULT_SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default lock timeout on PostgreSQL and MySQL.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default deadline of one whole call on PostgreSQL and MySQL.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: None,
            acquire_timeout: None,
            lock_timeout: Some(DEFAULT_LOCK_TIMEOUT),
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            run_migrations: true,
        }
    }
}

impl StoreOptions {
    /// The defaults: 10 connections, 5 s to get one (30 s on SQLite), a 5 s
    /// lock timeout, a 10 s call timeout (PostgreSQL and MySQL), run
    /// migrations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest number of pooled connections (default 10). Ignored for
    /// `sqlite::memory:`, which always uses exactly one.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// How long a call waits for a connection (a free pooled one, or a new
    /// one while the database is unreachable) before failing. Default 5 s on
    /// PostgreSQL and MySQL, 30 s on SQLite.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = Some(timeout);
        self
    }

    /// How long one statement waits for a lock before failing (PostgreSQL
    /// `lock_timeout`, MySQL `innodb_lock_wait_timeout` and
    /// `lock_wait_timeout`, the latter two in whole seconds, at least 1).
    /// Default 5 s; `None` keeps the server's setting (on MySQL 50 s for rows
    /// and a year for metadata locks; on PostgreSQL no limit). Ignored by
    /// SQLite. A `lock_timeout` given in a PostgreSQL URL's `options` wins.
    pub fn lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Deadline of one whole store call on PostgreSQL and MySQL: getting a
    /// connection and every statement of the call, including the signing-key
    /// transaction. Default 10 s; `None` for no deadline. Ignored by SQLite.
    ///
    /// The acquire and lock timeouts cover a database that is down or a lock
    /// that is held; this covers a server that accepted the connection and
    /// then stopped answering (a frozen host, a network path that drops
    /// packets, a stalled disk), where no server-side timeout can fire and
    /// a TCP read would otherwise wait for the kernel's retransmission limit
    /// (about 15 minutes on Linux). A call past its deadline fails with a
    /// General error; its statement is abandoned and its transaction, if
    /// any, is not committed. Keep it above the acquire timeout plus the
    /// lock timeout, so that those, with their clearer errors, fire first.
    /// Migrations run without it.
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Whether to run the embedded migrations after connecting (default
    /// `true`). Turn off when another tool owns the schema.
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) fn network_acquire_timeout(&self) -> Duration {
        self.acquire_timeout.unwrap_or(DEFAULT_ACQUIRE_TIMEOUT)
    }
}

/// A store on whichever database a URL names; see [`connect`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SqlStore {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(MySqlStore),
}

/// Opens the database that `url` names with default [`StoreOptions`] and runs
/// the migrations. See [`connect_with`].
pub async fn connect(url: &str) -> StoreResult<SqlStore> {
    connect_with(url, StoreOptions::default()).await
}

/// Opens the database that `url` names and, unless `options` say otherwise,
/// runs the migrations.
///
/// * `sqlite://path` or `sqlite:path`: a file, created if missing.
/// * `sqlite::memory:`: a private in-memory database on a single connection
///   (see [`SqliteStore::connect`]); it lives as long as the store.
/// * `postgres://…`, `postgresql://…`: PostgreSQL.
/// * `mysql://…`, `mariadb://…` (the same driver): MySQL or MariaDB.
///
/// Anything else is an error that names the scheme (never the whole URL,
/// which may hold a password).
pub async fn connect_with(url: &str, options: StoreOptions) -> StoreResult<SqlStore> {
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            return Ok(SqlStore::Sqlite(SqliteStore::connect(url, &options).await?));
            #[cfg(not(feature = "sqlite"))]
            return Err(not_compiled("sqlite"));
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            return Ok(SqlStore::Postgres(
                PostgresStore::connect(url, &options).await?,
            ));
            #[cfg(not(feature = "postgres"))]
            return Err(not_compiled("postgres"));
        }
        "mysql" | "mariadb" => {
            #[cfg(feature = "mysql")]
            {
                let url = match url.get(..8) {
                    Some(prefix) if prefix.eq_ignore_ascii_case("mariadb:") => {
                        format!("mysql:{}", &url[8..])
                    }
                    _ => url.to_owned(),
                };
                return Ok(SqlStore::MySql(MySqlStore::connect(&url, &options).await?));
            }
            #[cfg(not(feature = "mysql"))]
            return Err(not_compiled("mysql"));
        }
        _ => Err(StoreError::with_kind(
            tessera::GeneralKind::InvalidArgument,
            format!(
                "unsupported database URL scheme {scheme:?}: expected sqlite:, postgres://, \
                 postgresql://, mysql:// or mariadb://"
            ),
        )),
    }
}

#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn not_compiled(feature: &str) -> StoreError {
    StoreError::with_kind(
        tessera::GeneralKind::InvalidArgument,
        format!("tessera-sqlx was built without its `{feature}` feature"),
    )
}

impl SqlStore {
    /// Runs the embedded migrations of the underlying database.
    pub async fn migrate(&self) -> StoreResult<()> {
        match *self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(ref s) => s.migrate().await,
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(ref s) => s.migrate().await,
            #[cfg(feature = "mysql")]
            SqlStore::MySql(ref s) => s.migrate().await,
        }
    }

    /// Closes the pool: waits for checked-out connections to come back and
    /// closes them all.
    pub async fn close(&self) {
        match *self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(ref s) => s.pool().close().await,
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(ref s) => s.pool().close().await,
            #[cfg(feature = "mysql")]
            SqlStore::MySql(ref s) => s.pool().close().await,
        }
    }
}

/// Forwards a call to the store inside the enum.
macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match *$self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(ref $s) => $call.await,
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(ref $s) => $call.await,
            #[cfg(feature = "mysql")]
            SqlStore::MySql(ref $s) => $call.await,
        }
    };
}

#[async_trait]
impl Store for SqlStore {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        delegate!(self, s => s.insert_session(session))
    }

    async fn load_session(&self, session_handle: &str) -> StoreResult<Option<SessionRow>> {
        delegate!(self, s => s.load_session(session_handle))
    }

    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool> {
        delegate!(self, s => s.session_is_live(session_handle, now_ms))
    }

    async fn compare_and_set_refresh_hash(
        &self,
        promotion: &Promotion<'_>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        delegate!(self, s => s.compare_and_set_refresh_hash(promotion, now_ms))
    }

    async fn delete_session(&self, session_handle: &str) -> StoreResult<bool> {
        delegate!(self, s => s.delete_session(session_handle))
    }

    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64> {
        delegate!(self, s => s.delete_sessions_for_user(user_id))
    }

    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>> {
        delegate!(self, s => s.session_handles_for_user(user_id))
    }

    async fn sessions_for_user(
        &self,
        user_id: &UserId,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionSummary>> {
        delegate!(self, s => s.sessions_for_user(user_id, now_ms))
    }

    async fn get_session_info(
        &self,
        session_handle: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        delegate!(self, s => s.get_session_info(session_handle, now_ms))
    }

    async fn update_session_info(
        &self,
        session_handle: &str,
        session_info: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        delegate!(self, s => s.update_session_info(session_handle, session_info, now_ms))
    }

    async fn delete_expired_sessions(
        &self,
        cutoff: ExpiryCutoff,
        batch_size: u32,
    ) -> StoreResult<u64> {
        delegate!(self, s => s.delete_expired_sessions(cutoff, batch_size))
    }

    async fn count_expired_sessions(&self, cutoff: ExpiryCutoff) -> StoreResult<u64> {
        delegate!(self, s => s.count_expired_sessions(cutoff))
    }

    async fn refresh_token_key(&self, candidate: &StoredKey) -> StoreResult<StoredKey> {
        delegate!(self, s => s.refresh_token_key(candidate))
    }

    async fn signing_keys(
        &self,
        candidate: &StoredKey,
        decide: RotationDecision<'_>,
    ) -> StoreResult<SigningKeys> {
        delegate!(self, s => s.signing_keys(candidate, decide))
    }

    fn keeps_change_log(&self) -> bool {
        match *self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(ref s) => s.keeps_change_log(),
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(ref s) => s.keeps_change_log(),
            #[cfg(feature = "mysql")]
            SqlStore::MySql(ref s) => s.keeps_change_log(),
        }
    }

    async fn changes_after(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Change>> {
        delegate!(self, s => s.changes_after(after_seq, limit))
    }

    async fn prune_changes(&self, older_than: std::time::Duration) -> StoreResult<u64> {
        delegate!(self, s => s.prune_changes(older_than))
    }

    fn change_hint(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        match *self {
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(ref s) => s.change_hint(),
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(ref s) => s.change_hint(),
            #[cfg(feature = "mysql")]
            SqlStore::MySql(ref s) => s.change_hint(),
        }
    }
}
