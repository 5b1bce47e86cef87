//! The MySQL / MariaDB store.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, MySql, MySqlConnection};
use tessera::{
    NewSession, Promotion, RotationDecision, SessionRow, SessionSummary, SigningKeys, Store,
    StoreResult, StoredKey, UserId,
};

use crate::common::{
    check_hash, check_new_session, corrupt, count, db, decode_key, encode_key, session_row,
    session_summary, user_id_column,
};
use crate::keys::{self, KeySql};
use crate::tx::{call, Begin, CallResult};
use crate::{StoreOptions, DEFAULT_CALL_TIMEOUT};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// A [`Store`] on MySQL or MariaDB (InnoDB).
///
/// Every method is one autocommit statement except [`Store::signing_keys`]:
/// it makes sure the current-key row exists (`INSERT … ON DUPLICATE KEY
/// UPDATE` that changes nothing), then, in one transaction, locks it with
/// `SELECT … FOR UPDATE` (a locking read sees the latest committed row even
/// under `REPEATABLE READ`), reads the previous key the same way, lets the
/// caller decide and writes the decision before committing.
///
/// Text columns use the `utf8mb4_bin` collation, so user ids, handles and key
/// names compare byte for byte (`"Alice"` is not `"alice"`). That collation
/// still ignores trailing spaces when comparing (`'abc' = 'abc '`), so handles
/// and key names that end in a space are refused on insert (by every store)
/// and this store never looks a session up by one; stored user ids end in
/// `"` or a digit and are not affected.
///
/// sqlx connects with `CLIENT_FOUND_ROWS`, so an `UPDATE` reports the rows it
/// matched, not only those it changed: rewriting identical session info
/// still returns `true`. [`MySqlStore::connect`] adds `STRICT_ALL_TABLES` to
/// the session's `sql_mode` so that nothing is silently truncated.
/// Durability is the server's: with the default
/// `innodb_flush_log_at_trx_commit = 1` a call returns after its commit is
/// flushed.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    call_timeout: Option<Duration>,
}

impl MySqlStore {
    /// Wraps an existing pool. Call [`MySqlStore::migrate`] before use if the
    /// tables may not exist yet.
    pub fn new(pool: MySqlPool) -> Self {
        MySqlStore {
            pool,
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
        }
    }

    /// Sets the deadline of every call (default [`DEFAULT_CALL_TIMEOUT`];
    /// `None` for none). See [`StoreOptions::call_timeout`].
    pub fn with_call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Connects to `url` (`mysql://…`; [`crate::connect`] also accepts
    /// `mariadb://…`) and runs the migrations unless `options` say otherwise.
    /// Every pooled connection gets the lock timeout of `options` as
    /// `innodb_lock_wait_timeout` (row locks) and `lock_wait_timeout`
    /// (metadata locks), in whole seconds, at least 1.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let connect_options = MySqlConnectOptions::from_str(url).map_err(db)?;
        let mut setup =
            String::from("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')");
        if let Some(timeout) = options.lock_timeout {
            let secs = timeout.as_secs().clamp(1, 31_536_000);
            setup.push_str(&format!(
                ", innodb_lock_wait_timeout = {secs}, lock_wait_timeout = {secs}"
            ));
        }
        let setup: std::sync::Arc<str> = setup.into();
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(10))
            .acquire_timeout(options.network_acquire_timeout())
            .after_connect(move |conn, _meta| {
                let setup = setup.clone();
                Box::pin(async move {
                    conn.execute(&*setup).await?;
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(db)?;
        let store = MySqlStore::new(pool).with_call_timeout(options.call_timeout);
        if options.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates or updates the tables (embedded migrations in
    /// `migrations/mysql/`). Safe to run on every start and from several
    /// processes at once (sqlx takes a named lock). Runs on a connection of
    /// its own with the server's lock timeouts, so that DDL waits for
    /// metadata locks as long as the server allows; that connection is
    /// closed afterwards rather than returned to the pool.
    pub async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        conn.close_on_drop();
        conn.execute("SET SESSION innodb_lock_wait_timeout = DEFAULT, lock_wait_timeout = DEFAULT")
            .await
            .map_err(db)?;
        // `run_direct` on the connection itself: `run(&mut conn)` makes the
        // future not `Send` for callers (sqlx's "Acquire is not general
        // enough").
        MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(tessera::StoreError::new)
    }

    /// The underlying pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

/// Whether `s` can be compared exactly under `utf8mb4_bin`, which pads with
/// spaces: `'abc' = 'abc '` is true there.
fn pad_safe(s: &str) -> bool {
    !s.ends_with(' ')
}

/// sqlx reports `utf8mb4_bin` columns as binary and will not decode them as
/// `String`; read the bytes and check they are UTF-8 (they always are, the
/// column's character set is utf8mb4).
fn text(bytes: Vec<u8>) -> CallResult<String> {
    Ok(String::from_utf8(bytes).map_err(|_| corrupt("a text column held invalid UTF-8"))?)
}

type KeyColumns = (Vec<u8>, i64);

fn key_from(row: Option<KeyColumns>) -> CallResult<Option<StoredKey>> {
    let Some((value, created)) = row else {
        return Ok(None);
    };
    Ok(Some(decode_key(&text(value)?, created)?))
}

impl KeySql for MySql {
    /// sqlx's plain `BEGIN`, under the server's isolation level (by default
    /// `REPEATABLE READ`): the rotation reads only with `SELECT … FOR
    /// UPDATE`, and a locking read sees the latest committed row whatever the
    /// isolation level, so each queued rotation sees what the one before it
    /// committed. A failed `BEGIN` closes the connection.
    const ROTATION_BEGIN: Begin = Begin {
        statement: None,
        failure_leaves_no_transaction: false,
    };
    /// Before the transaction, so that the row exists for `FOR UPDATE`.
    const INSERT_CURRENT_IN_TRANSACTION: bool = false;

    /// `ON DUPLICATE KEY UPDATE` with a no-op rather than `INSERT IGNORE`,
    /// which would also turn unrelated errors into warnings.
    async fn insert_key_if_absent(
        conn: &mut MySqlConnection,
        name: &str,
        key: &StoredKey,
    ) -> CallResult<()> {
        sqlx::query(
            "INSERT INTO tessera_keys (key_name, key_value, created_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE key_name = key_name",
        )
        .bind(name)
        .bind(encode_key(&key.value))
        .bind(key.created_at_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn read_key(conn: &mut MySqlConnection, name: &str) -> CallResult<Option<StoredKey>> {
        let row =
            sqlx::query_as("SELECT key_value, created_at FROM tessera_keys WHERE key_name = ?")
                .bind(name)
                .fetch_optional(conn)
                .await?;
        key_from(row)
    }

    async fn lock_key(conn: &mut MySqlConnection, name: &str) -> CallResult<Option<StoredKey>> {
        let row = sqlx::query_as(
            "SELECT key_value, created_at FROM tessera_keys WHERE key_name = ? FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(conn)
        .await?;
        key_from(row)
    }

    async fn write_key(conn: &mut MySqlConnection, name: &str, key: &StoredKey) -> CallResult<()> {
        sqlx::query(
            "INSERT INTO tessera_keys (key_name, key_value, created_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE key_value = VALUES(key_value), created_at = VALUES(created_at)",
        )
        .bind(name)
        .bind(encode_key(&key.value))
        .bind(key.created_at_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn delete_key(conn: &mut MySqlConnection, name: &str) -> CallResult<()> {
        sqlx::query("DELETE FROM tessera_keys WHERE key_name = ?")
            .bind(name)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// `common::SessionColumns` as sqlx reads `utf8mb4_bin` columns: bytes.
type SessionBytes = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64, i64);

#[async_trait]
impl Store for MySqlStore {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        call(self.call_timeout, async {
            check_new_session(session)?;
            sqlx::query(
                "INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, \
             session_info, jwt_payload, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(session.session_handle)
            .bind(user_id_column(session.user_id)?)
            .bind(session.refresh_token_hash_2)
            .bind(session.session_info)
            .bind(session.jwt_payload)
            .bind(session.created_at_ms)
            .bind(session.expires_at_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    async fn load_session(&self, session_handle: &str) -> StoreResult<Option<SessionRow>> {
        call(self.call_timeout, async {
            if !pad_safe(session_handle) {
                return Ok(None);
            }
            let row: Option<SessionBytes> = sqlx::query_as(
                "SELECT session_handle, user_id, refresh_token_hash_2, jwt_payload, created_at, \
             expires_at FROM tessera_sessions WHERE session_handle = ?",
            )
            .bind(session_handle)
            .fetch_optional(&self.pool)
            .await?;
            let Some((handle, user, hash, payload, created, expires)) = row else {
                return Ok(None);
            };
            let columns = (
                text(handle)?,
                text(user)?,
                text(hash)?,
                text(payload)?,
                created,
                expires,
            );
            Ok(Some(session_row(columns)?))
        })
        .await
    }

    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool> {
        call(self.call_timeout, async {
            if !pad_safe(session_handle) {
                return Ok(false);
            }
            let row = sqlx::query(
                "SELECT 1 FROM tessera_sessions WHERE session_handle = ? AND expires_at > ?",
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
        call(self.call_timeout, async {
            check_hash(promotion.new_hash_2)?;
            if !pad_safe(promotion.session_handle) || !pad_safe(promotion.expected_hash_2) {
                return Ok(false);
            }
            // Affected rows are matched rows (CLIENT_FOUND_ROWS), so a CAS that
            // writes the same values still reports success.
            let done = sqlx::query(
                "UPDATE tessera_sessions SET refresh_token_hash_2 = ?, expires_at = ? \
             WHERE session_handle = ? AND refresh_token_hash_2 = ? AND expires_at > ?",
            )
            .bind(promotion.new_hash_2)
            .bind(promotion.new_expires_at_ms)
            .bind(promotion.session_handle)
            .bind(promotion.expected_hash_2)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn delete_session(&self, session_handle: &str) -> StoreResult<bool> {
        call(self.call_timeout, async {
            if !pad_safe(session_handle) {
                return Ok(false);
            }
            let done = sqlx::query("DELETE FROM tessera_sessions WHERE session_handle = ?")
                .bind(session_handle)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64> {
        call(self.call_timeout, async {
            let done = sqlx::query("DELETE FROM tessera_sessions WHERE user_id = ?")
                .bind(user_id.to_storage())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>> {
        call(self.call_timeout, async {
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
                "SELECT session_handle FROM tessera_sessions WHERE user_id = ? \
             ORDER BY created_at, session_handle",
            )
            .bind(user_id.to_storage())
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter().map(|(h,)| text(h)).collect()
        })
        .await
    }

    async fn sessions_for_user(
        &self,
        user_id: &UserId,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionSummary>> {
        call(self.call_timeout, async {
            let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
                "SELECT session_handle, created_at, expires_at FROM tessera_sessions \
             WHERE user_id = ? AND expires_at > ? ORDER BY created_at, session_handle",
            )
            .bind(user_id.to_storage())
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(handle, created, expires)| {
                    Ok(session_summary((text(handle)?, created, expires)))
                })
                .collect()
        })
        .await
    }

    async fn get_session_info(
        &self,
        session_handle: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        call(self.call_timeout, async {
            if !pad_safe(session_handle) {
                return Ok(None);
            }
            let row: Option<(Vec<u8>,)> = sqlx::query_as(
                "SELECT session_info FROM tessera_sessions \
             WHERE session_handle = ? AND expires_at > ?",
            )
            .bind(session_handle)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|(info,)| text(info)).transpose()
        })
        .await
    }

    async fn update_session_info(
        &self,
        session_handle: &str,
        session_info: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        call(self.call_timeout, async {
            if !pad_safe(session_handle) {
                return Ok(false);
            }
            // Matched rows, not changed rows (CLIENT_FOUND_ROWS): identical info
            // on a live row is still `true`.
            let done = sqlx::query(
                "UPDATE tessera_sessions SET session_info = ? \
             WHERE session_handle = ? AND expires_at > ?",
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

    async fn delete_expired_sessions(&self, now_ms: i64, batch_size: u32) -> StoreResult<u64> {
        call(self.call_timeout, async {
            // One autocommit statement walking the expires_at index.
            let done = sqlx::query(
                "DELETE FROM tessera_sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
            )
            .bind(now_ms)
            .bind(batch_size)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn count_expired_sessions(&self, now_ms: i64) -> StoreResult<u64> {
        call(self.call_timeout, async {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= ?")
                    .bind(now_ms)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(count(n)?)
        })
        .await
    }

    async fn refresh_token_key(&self, candidate: &StoredKey) -> StoreResult<StoredKey> {
        keys::refresh_token_key(&self.pool, self.call_timeout, candidate).await
    }

    async fn signing_keys(
        &self,
        candidate: &StoredKey,
        decide: RotationDecision<'_>,
    ) -> StoreResult<SigningKeys> {
        keys::signing_keys(&self.pool, self.call_timeout, candidate, decide).await
    }
}
