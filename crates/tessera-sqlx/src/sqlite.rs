//! The SQLite store.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqliteConnection};
use tessera::{
    Change, ExpiryCutoff, NewSession, Promotion, RotationDecision, SessionRow, SessionSummary,
    SigningKeys, Store, StoreResult, StoredKey, UserId,
};

use crate::changes::{self, Revoke, RevokeTx};
use crate::common::{
    check_hash, check_new_session, count, db, decode_key, encode_key, has_device,
    retry_sqlite_setup, session_row, session_summary, user_id_column, SessionColumns,
    SummaryColumns, SESSION_COLUMNS, SUMMARY_COLUMNS,
};
use crate::keys::{self, KeySql};
use crate::tx::{call, transaction, Begin, CallResult};
use crate::StoreOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Inserts a session row with its device columns (migration 0006).
const INSERT_SESSION: &str = "INSERT INTO tessera_sessions (session_handle, user_id, \
     refresh_token_hash_2, session_info, jwt_payload, created_at, expires_at, user_agent, \
     client_address, device_label) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Inserts a session row without device information: only the columns the
/// schema had before migration 0006, so that a session without any can still
/// be created on a database not yet migrated (during a rolling upgrade).
const INSERT_SESSION_WITHOUT_DEVICE: &str = "INSERT INTO tessera_sessions (session_handle, \
     user_id, refresh_token_hash_2, session_info, jwt_payload, created_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite calls have no deadline of their own ([`StoreOptions::call_timeout`]
/// is for servers over a network); the busy timeout bounds their waits.
const NO_DEADLINE: Option<Duration> = None;

/// A [`Store`] on SQLite.
///
/// Every write is one autocommit statement except [`Store::signing_keys`],
/// which runs in a `BEGIN IMMEDIATE` transaction: it takes the database's
/// write lock before reading, so two rotations cannot interleave (a deferred
/// transaction that reads and then writes would fail with `SQLITE_BUSY_SNAPSHOT`
/// instead of waiting). Writers wait for each other up to the busy timeout.
///
/// [`SqliteStore::connect`] opens the database in WAL mode with
/// `synchronous=FULL`, so a call returns only after its commit is on disk, and
/// a 10 s busy timeout. A pool given to [`SqliteStore::new`] is used as it is
/// configured.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Wraps an existing pool. Call [`SqliteStore::migrate`] before use if the
    /// tables may not exist yet.
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore { pool }
    }

    /// Opens `url` (`sqlite://path`, `sqlite:path` or `sqlite::memory:`),
    /// creating the file if it is missing, and runs the migrations unless
    /// `options` say otherwise.
    ///
    /// `sqlite::memory:` gives a private in-memory database held by a pool of
    /// exactly one connection that is never closed while the pool lives: an
    /// in-memory database exists only as long as a connection to it is open,
    /// and one connection sidesteps shared-cache table locks (which fail at
    /// once with `SQLITE_LOCKED` instead of waiting). Calls then take turns;
    /// that is fine for tests and demos, which is what it is for.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let connect_options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);

        let pool_options = SqlitePoolOptions::new().acquire_timeout(
            options
                .acquire_timeout
                .unwrap_or(crate::DEFAULT_SQLITE_ACQUIRE_TIMEOUT),
        );
        let pool = if in_memory {
            pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(connect_options)
                .await
                .map_err(db)?
        } else {
            // WAL is a property of the file: switch once, on one connection,
            // before the pool opens. Changing the journal mode needs an
            // exclusive lock that the busy timeout does not always wait for,
            // hence the retries when several processes start together.
            let wal = connect_options.clone().journal_mode(SqliteJournalMode::Wal);
            retry_sqlite_setup(|| async {
                let conn = SqliteConnection::connect_with(&wal).await.map_err(db)?;
                conn.close().await.map_err(db)
            })
            .await?;
            pool_options
                .max_connections(options.max_connections.unwrap_or(10))
                .connect_with(connect_options)
                .await
                .map_err(db)?
        };
        let store = SqliteStore::new(pool);
        if options.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates or updates the tables (embedded migrations in
    /// `migrations/sqlite/`). Safe to run on every start; retried a few times
    /// because SQLite has no lock that would keep two processes from running
    /// the first migration at the same moment.
    pub async fn migrate(&self) -> StoreResult<()> {
        retry_sqlite_setup(|| async {
            MIGRATOR
                .run(&self.pool)
                .await
                .map_err(tessera::StoreError::new)
        })
        .await
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

type KeyColumns = (String, i64);

impl KeySql for Sqlite {
    /// `BEGIN IMMEDIATE` takes the database's write lock before the first
    /// read, so rotations queue on it and each reads what the one before it
    /// committed (a deferred transaction that reads and then writes would
    /// fail with `SQLITE_BUSY_SNAPSHOT` instead of waiting). A `BEGIN` that
    /// fails (typically the busy timeout) leaves no transaction open and the
    /// connection reusable.
    const ROTATION_BEGIN: Begin = Begin {
        statement: Some("BEGIN IMMEDIATE"),
        failure_leaves_no_transaction: true,
    };
    /// Inside the transaction: the write lock is already held.
    const INSERT_CURRENT_IN_TRANSACTION: bool = true;

    async fn insert_key_if_absent(
        conn: &mut SqliteConnection,
        name: &str,
        key: &StoredKey,
    ) -> CallResult<()> {
        sqlx::query(
            "INSERT INTO tessera_keys (key_name, key_value, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key_name) DO NOTHING",
        )
        .bind(name)
        .bind(encode_key(&key.value))
        .bind(key.created_at_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn read_key(conn: &mut SqliteConnection, name: &str) -> CallResult<Option<StoredKey>> {
        let row: Option<KeyColumns> =
            sqlx::query_as("SELECT key_value, created_at FROM tessera_keys WHERE key_name = ?1")
                .bind(name)
                .fetch_optional(conn)
                .await?;
        Ok(row
            .map(|(value, created)| decode_key(&value, created))
            .transpose()?)
    }

    /// A plain read: under `BEGIN IMMEDIATE` this transaction already holds
    /// the database's write lock, so no other rotation can change the row.
    async fn lock_key(conn: &mut SqliteConnection, name: &str) -> CallResult<Option<StoredKey>> {
        Self::read_key(conn, name).await
    }

    async fn write_key(conn: &mut SqliteConnection, name: &str, key: &StoredKey) -> CallResult<()> {
        sqlx::query(
            "INSERT INTO tessera_keys (key_name, key_value, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key_name) DO UPDATE \
             SET key_value = excluded.key_value, created_at = excluded.created_at",
        )
        .bind(name)
        .bind(encode_key(&key.value))
        .bind(key.created_at_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn delete_key(conn: &mut SqliteConnection, name: &str) -> CallResult<()> {
        sqlx::query("DELETE FROM tessera_keys WHERE key_name = ?1")
            .bind(name)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn record_key_change(conn: &mut SqliteConnection) -> CallResult<()> {
        sqlx::query(crate::changes::INSERT_KEY_CHANGE)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// What a retried call checks for (see [`crate::tx::Attempt::is_retry`]).
impl SqliteStore {
    /// Whether the row `session` describes is already there: same handle,
    /// refresh hash and creation time.
    async fn holds_new_session(&self, session: &NewSession<'_>) -> CallResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tessera_sessions \
             WHERE session_handle = ?1 AND refresh_token_hash_2 = ?2 AND created_at = ?3",
        )
        .bind(session.session_handle)
        .bind(session.refresh_token_hash_2)
        .bind(session.created_at_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Whether the row already holds what `promotion` writes: the new hash
    /// and the new expiry.
    async fn holds_promotion(&self, promotion: &Promotion<'_>) -> CallResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tessera_sessions \
             WHERE session_handle = ?1 AND refresh_token_hash_2 = ?2 AND expires_at = ?3",
        )
        .bind(promotion.session_handle)
        .bind(promotion.new_hash_2)
        .bind(promotion.new_expires_at_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        call(NO_DEADLINE, "insert_session", |attempt| async move {
            check_new_session(session)?;
            // The handle was drawn before the first attempt, so on a retry a
            // row with it, this refresh hash and this creation time is the
            // work of an earlier attempt that committed although its answer
            // was lost: done, not to be inserted twice.
            if attempt.is_retry() && self.holds_new_session(session).await? {
                return Ok(());
            }
            let device = has_device(session);
            let mut insert = sqlx::query(if device {
                INSERT_SESSION
            } else {
                INSERT_SESSION_WITHOUT_DEVICE
            })
            .bind(session.session_handle)
            .bind(user_id_column(session.user_id)?)
            .bind(session.refresh_token_hash_2)
            .bind(session.session_info)
            .bind(session.jwt_payload)
            .bind(session.created_at_ms)
            .bind(session.expires_at_ms);
            if device {
                insert = insert
                    .bind(session.user_agent)
                    .bind(session.client_address)
                    .bind(session.device_label);
            }
            insert.execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    async fn load_session(&self, session_handle: &str) -> StoreResult<Option<SessionRow>> {
        call(NO_DEADLINE, "load_session", |_| async move {
            let row: Option<SessionColumns> = sqlx::query_as(&format!(
                "SELECT {SESSION_COLUMNS} FROM tessera_sessions WHERE session_handle = ?1"
            ))
            .bind(session_handle)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(session_row).transpose()?)
        })
        .await
    }

    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool> {
        call(NO_DEADLINE, "session_is_live", |_| async move {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM tessera_sessions WHERE session_handle = ?1 AND expires_at > ?2",
            )
            .bind(session_handle)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.is_some())
        })
        .await
    }

    async fn compare_and_set_refresh_hash(
        &self,
        promotion: &Promotion<'_>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        call(
            NO_DEADLINE,
            "compare_and_set_refresh_hash",
            |attempt| async move {
                check_hash(promotion.new_hash_2)?;
                if let Some(h1) = promotion.new_hash_1 {
                    check_hash(h1)?;
                }
                // `previous_hash_2` first: it takes the hash being replaced.
                let done = sqlx::query(
                    "UPDATE tessera_sessions SET previous_hash_2 = refresh_token_hash_2, \
                     refresh_token_hash_2 = ?1, expires_at = ?2, committed_hash_1 = ?6, \
                     superseded_at = ?5 \
                 WHERE session_handle = ?3 AND refresh_token_hash_2 = ?4 AND expires_at > ?5 \
                     AND (superseded_at IS NULL OR committed_hash_1 IS NULL \
                     OR superseded_at <= ?7)",
                )
                .bind(promotion.new_hash_2)
                .bind(promotion.new_expires_at_ms)
                .bind(promotion.session_handle)
                .bind(promotion.expected_hash_2)
                .bind(now_ms)
                .bind(promotion.new_hash_1)
                .bind(promotion.not_superseded_after_ms)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(true);
                }
                // On a retry, an earlier attempt may have made this very
                // promotion and lost its answer: the row then holds the new hash
                // with the new expiry, and that is this call's success.
                Ok(attempt.is_retry() && self.holds_promotion(promotion).await?)
            },
        )
        .await
    }

    async fn delete_session(&self, session_handle: &str) -> StoreResult<bool> {
        call(NO_DEADLINE, "delete_session", |_| async move {
            let mut tx = RevokeTx {
                by: Revoke::Handle(session_handle),
            };
            let deleted = transaction(&self.pool, changes::SQLITE_REVOKE_BEGIN, &mut tx).await?;
            Ok(!deleted.is_empty())
        })
        .await
    }

    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64> {
        call(NO_DEADLINE, "delete_sessions_for_user", |_| async move {
            let storage = user_id.to_storage();
            let mut tx = RevokeTx {
                by: Revoke::User(&storage),
            };
            let deleted = transaction(&self.pool, changes::SQLITE_REVOKE_BEGIN, &mut tx).await?;
            Ok(deleted.len() as u64)
        })
        .await
    }

    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>> {
        call(NO_DEADLINE, "session_handles_for_user", |_| async move {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT session_handle FROM tessera_sessions WHERE user_id = ?1 \
                 ORDER BY created_at, session_handle",
            )
            .bind(user_id.to_storage())
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(|(h,)| h).collect())
        })
        .await
    }

    async fn sessions_for_user(
        &self,
        user_id: &UserId,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionSummary>> {
        call(NO_DEADLINE, "sessions_for_user", |_| async move {
            let rows: Vec<SummaryColumns> = sqlx::query_as(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM tessera_sessions \
                 WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, session_handle"
            ))
            .bind(user_id.to_storage())
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(session_summary).collect())
        })
        .await
    }

    async fn get_session_info(
        &self,
        session_handle: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        call(NO_DEADLINE, "get_session_info", |_| async move {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT session_info FROM tessera_sessions \
                 WHERE session_handle = ?1 AND expires_at > ?2",
            )
            .bind(session_handle)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|(info,)| info))
        })
        .await
    }

    async fn update_session_info(
        &self,
        session_handle: &str,
        session_info: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        call(NO_DEADLINE, "update_session_info", |_| async move {
            let done = sqlx::query(
                "UPDATE tessera_sessions SET session_info = ?1 \
                 WHERE session_handle = ?2 AND expires_at > ?3",
            )
            .bind(session_info)
            .bind(session_handle)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn delete_expired_sessions(
        &self,
        cutoff: ExpiryCutoff,
        batch_size: u32,
    ) -> StoreResult<u64> {
        call(NO_DEADLINE, "delete_expired_sessions", |_| async move {
            // One autocommit statement; the subselect walks the expires_at
            // index (without lifetimes) or the table (with them).
            let sql = if cutoff.has_lifetimes() {
                "DELETE FROM tessera_sessions WHERE rowid IN (\
                 SELECT rowid FROM tessera_sessions WHERE expires_at <= ?1 \
                 OR COALESCE(superseded_at, created_at) <= ?3 OR created_at <= ?4 \
                 ORDER BY expires_at LIMIT ?2)"
            } else {
                "DELETE FROM tessera_sessions WHERE rowid IN (\
                 SELECT rowid FROM tessera_sessions WHERE expires_at <= ?1 \
                 ORDER BY expires_at LIMIT ?2)"
            };
            let mut q = sqlx::query(sql)
                .bind(cutoff.now_ms)
                .bind(i64::from(batch_size));
            if cutoff.has_lifetimes() {
                q = q.bind(cutoff.idle_bound()).bind(cutoff.created_bound());
            }
            let done = q.execute(&self.pool).await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn count_expired_sessions(&self, cutoff: ExpiryCutoff) -> StoreResult<u64> {
        call(NO_DEADLINE, "count_expired_sessions", |_| async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= ?1 \
                 OR COALESCE(superseded_at, created_at) <= ?2 OR created_at <= ?3",
            )
            .bind(cutoff.now_ms)
            .bind(cutoff.idle_bound())
            .bind(cutoff.created_bound())
            .fetch_one(&self.pool)
            .await?;
            Ok(count(n)?)
        })
        .await
    }

    async fn refresh_token_key(&self, candidate: &StoredKey) -> StoreResult<StoredKey> {
        keys::refresh_token_key(&self.pool, NO_DEADLINE, candidate).await
    }

    async fn signing_keys(
        &self,
        candidate: &StoredKey,
        decide: RotationDecision<'_>,
    ) -> StoreResult<SigningKeys> {
        keys::signing_keys(&self.pool, NO_DEADLINE, candidate, decide).await
    }

    fn keeps_change_log(&self) -> bool {
        true
    }

    async fn changes_after(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Change>> {
        call(NO_DEADLINE, "changes_after", |_| async move {
            let rows: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT seq, kind, subject FROM tessera_changes WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(seq, kind, subject)| changes::change(seq, &kind, subject))
                .collect()
        })
        .await
    }

    async fn prune_changes(&self, older_than: Duration) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM tessera_changes WHERE at_ms < {} - ?1",
            changes::SQLITE_NOW_MS
        );
        let sql = &sql;
        call(NO_DEADLINE, "prune_changes", |_| async move {
            let done = sqlx::query(sql)
                .bind(changes::retention_ms(older_than))
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}
