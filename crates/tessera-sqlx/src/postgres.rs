//! The PostgreSQL store.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres};
use tessera::{
    Change, ExpiryCutoff, NewSession, Promotion, RotationDecision, SessionRow, SessionSummary,
    SigningKeys, Store, StoreResult, StoredKey, UserId,
};

use crate::changes;
use crate::common::{
    check_hash, check_new_session, count, db, decode_key, encode_key, has_device, session_row,
    session_summary, user_id_column, SessionColumns, SummaryColumns, SESSION_COLUMNS,
    SUMMARY_COLUMNS,
};
use crate::keys::{self, KeySql};
use crate::tx::{call, Begin, CallResult};
use crate::{StoreOptions, DEFAULT_CALL_TIMEOUT};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Inserts a session row with its device columns (migration 0006).
const INSERT_SESSION: &str = "INSERT INTO tessera_sessions (session_handle, user_id, \
     refresh_token_hash_2, session_info, jwt_payload, created_at, expires_at, user_agent, \
     client_address, device_label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Inserts a session row without device information: only the columns the
/// schema had before migration 0006, so that a session without any can still
/// be created on a database not yet migrated (during a rolling upgrade).
const INSERT_SESSION_WITHOUT_DEVICE: &str = "INSERT INTO tessera_sessions (session_handle, \
     user_id, refresh_token_hash_2, session_info, jwt_payload, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// A [`Store`] on PostgreSQL.
///
/// Every method is one autocommit statement except [`Store::signing_keys`]:
/// it makes sure the current-key row exists (`INSERT … ON CONFLICT DO
/// NOTHING`), then, in one `READ COMMITTED` transaction, locks it with
/// `SELECT … FOR UPDATE`, reads the previous key, lets the caller decide and
/// writes the decision before committing. The compare-and-set on the refresh
/// hash is a single `UPDATE`, serialised by the row lock it takes.
///
/// Tables live in the first schema of the connection's `search_path`.
/// Durability is the server's: with the default `synchronous_commit = on` a
/// call returns after its commit is flushed.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    call_timeout: Option<Duration>,
    /// The `LISTEN tessera_changes` wake-up, started on first use.
    hint: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<tokio::sync::Notify>>>,
}

impl PostgresStore {
    /// Wraps an existing pool. Call [`PostgresStore::migrate`] before use if
    /// the tables may not exist yet.
    pub fn new(pool: PgPool) -> Self {
        PostgresStore {
            pool,
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            hint: Default::default(),
        }
    }

    /// Sets the deadline of every call (default [`DEFAULT_CALL_TIMEOUT`];
    /// `None` for none). See [`StoreOptions::call_timeout`].
    pub fn with_call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Connects to `url` (`postgres://…` or `postgresql://…`) and runs the
    /// migrations unless `options` say otherwise. Every pooled connection
    /// gets the lock timeout of `options` (PostgreSQL's `lock_timeout`)
    /// unless the URL's `options` parameter sets `lock_timeout` itself.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let mut connect_options = PgConnectOptions::from_str(url).map_err(db)?;
        let url_sets_it = connect_options
            .get_options()
            .is_some_and(|o| o.contains("lock_timeout"));
        if let (Some(timeout), false) = (options.lock_timeout, url_sets_it) {
            // Whole milliseconds, at least 1 (0 would mean "no limit").
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
            connect_options = connect_options.options([("lock_timeout", format!("{ms}ms"))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(10))
            .acquire_timeout(options.network_acquire_timeout())
            .connect_with(connect_options)
            .await
            .map_err(db)?;
        let store = PostgresStore::new(pool).with_call_timeout(options.call_timeout);
        if options.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates or updates the tables (embedded migrations in
    /// `migrations/postgres/`). Safe to run on every start and from several
    /// processes at once (sqlx takes an advisory lock). Runs on a connection
    /// of its own without the lock timeout, so that a start waits for another
    /// process's migration however long it takes; that connection is closed
    /// afterwards rather than returned to the pool.
    pub async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        conn.close_on_drop();
        sqlx::query("SET lock_timeout = 0")
            .execute(&mut *conn)
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
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

type KeyColumns = (String, i64);

fn key_from(row: Option<KeyColumns>) -> CallResult<Option<StoredKey>> {
    Ok(row
        .map(|(value, created)| decode_key(&value, created))
        .transpose()?)
}

impl KeySql for Postgres {
    /// `READ COMMITTED` explicitly: under a stricter server default the
    /// queued rotations would fail with serialization errors instead of
    /// reading the winner's keys. Each statement's snapshot is taken when it
    /// starts, so the read of the previous row, after the lock on the current
    /// one was granted, sees whatever the transaction we waited for
    /// committed. A failed `BEGIN` closes the connection.
    const ROTATION_BEGIN: Begin = Begin {
        statement: Some("BEGIN ISOLATION LEVEL READ COMMITTED"),
        failure_leaves_no_transaction: false,
    };
    /// Before the transaction, so that the row exists for `FOR UPDATE`.
    const INSERT_CURRENT_IN_TRANSACTION: bool = false;

    async fn insert_key_if_absent(
        conn: &mut PgConnection,
        name: &str,
        key: &StoredKey,
    ) -> CallResult<()> {
        sqlx::query(
            "INSERT INTO tessera_keys (key_name, key_value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key_name) DO NOTHING",
        )
        .bind(name)
        .bind(encode_key(&key.value))
        .bind(key.created_at_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn read_key(conn: &mut PgConnection, name: &str) -> CallResult<Option<StoredKey>> {
        let row =
            sqlx::query_as("SELECT key_value, created_at FROM tessera_keys WHERE key_name = $1")
                .bind(name)
                .fetch_optional(conn)
                .await?;
        key_from(row)
    }

    async fn lock_key(conn: &mut PgConnection, name: &str) -> CallResult<Option<StoredKey>> {
        let row = sqlx::query_as(
            "SELECT key_value, created_at FROM tessera_keys WHERE key_name = $1 FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(conn)
        .await?;
        key_from(row)
    }

    async fn write_key(conn: &mut PgConnection, name: &str, key: &StoredKey) -> CallResult<()> {
        sqlx::query(
            "INSERT INTO tessera_keys (key_name, key_value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key_name) DO UPDATE \
             SET key_value = EXCLUDED.key_value, created_at = EXCLUDED.created_at",
        )
        .bind(name)
        .bind(encode_key(&key.value))
        .bind(key.created_at_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn delete_key(conn: &mut PgConnection, name: &str) -> CallResult<()> {
        sqlx::query("DELETE FROM tessera_keys WHERE key_name = $1")
            .bind(name)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn record_key_change(conn: &mut PgConnection) -> CallResult<()> {
        sqlx::query(crate::changes::INSERT_KEY_CHANGE)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// What a retried call checks for (see [`crate::tx::Attempt::is_retry`]).
impl PostgresStore {
    /// Whether the row `session` describes is already there: same handle,
    /// refresh hash and creation time.
    async fn holds_new_session(&self, session: &NewSession<'_>) -> CallResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tessera_sessions \
             WHERE session_handle = $1 AND refresh_token_hash_2 = $2 AND created_at = $3",
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
             WHERE session_handle = $1 AND refresh_token_hash_2 = $2 AND expires_at = $3",
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
impl Store for PostgresStore {
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        call(self.call_timeout, "insert_session", |attempt| async move {
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
        call(self.call_timeout, "load_session", |_| async move {
            let row: Option<SessionColumns> = sqlx::query_as(&format!(
                "SELECT {SESSION_COLUMNS} FROM tessera_sessions WHERE session_handle = $1"
            ))
            .bind(session_handle)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(session_row).transpose()?)
        })
        .await
    }

    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool> {
        call(self.call_timeout, "session_is_live", |_| async move {
            let row: Option<(i32,)> = sqlx::query_as(
                "SELECT 1 FROM tessera_sessions WHERE session_handle = $1 AND expires_at > $2",
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
            self.call_timeout,
            "compare_and_set_refresh_hash",
            |attempt| async move {
                check_hash(promotion.new_hash_2)?;
                if let Some(h1) = promotion.new_hash_1 {
                    check_hash(h1)?;
                }
                // `previous_hash_2` first: it takes the hash being replaced.
                let done = sqlx::query(
                    "UPDATE tessera_sessions SET previous_hash_2 = refresh_token_hash_2, \
                     refresh_token_hash_2 = $1, expires_at = $2, committed_hash_1 = $6, \
                     superseded_at = $5 \
                 WHERE session_handle = $3 AND refresh_token_hash_2 = $4 AND expires_at > $5 \
                     AND (superseded_at IS NULL OR committed_hash_1 IS NULL \
                     OR superseded_at <= $7)",
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
        call(self.call_timeout, "delete_session", |_| async move {
            // One statement: the deleted row and its change-log row commit
            // together.
            let done = sqlx::query(
                "WITH d AS (DELETE FROM tessera_sessions WHERE session_handle = $1 \
                 RETURNING session_handle) \
                 INSERT INTO tessera_changes (kind, subject) SELECT 'r', session_handle FROM d",
            )
            .bind(session_handle)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64> {
        call(
            self.call_timeout,
            "delete_sessions_for_user",
            |_| async move {
                let done = sqlx::query(
                    "WITH d AS (DELETE FROM tessera_sessions WHERE user_id = $1 \
                     RETURNING session_handle) \
                     INSERT INTO tessera_changes (kind, subject) \
                     SELECT 'r', session_handle FROM d",
                )
                .bind(user_id.to_storage())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            },
        )
        .await
    }

    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>> {
        call(
            self.call_timeout,
            "session_handles_for_user",
            |_| async move {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT session_handle FROM tessera_sessions WHERE user_id = $1 \
                 ORDER BY created_at, session_handle",
                )
                .bind(user_id.to_storage())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(h,)| h).collect())
            },
        )
        .await
    }

    async fn sessions_for_user(
        &self,
        user_id: &UserId,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionSummary>> {
        call(self.call_timeout, "sessions_for_user", |_| async move {
            let rows: Vec<SummaryColumns> = sqlx::query_as(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM tessera_sessions \
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, session_handle"
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
        call(self.call_timeout, "get_session_info", |_| async move {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT session_info FROM tessera_sessions \
                 WHERE session_handle = $1 AND expires_at > $2",
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
        call(self.call_timeout, "update_session_info", |_| async move {
            let done = sqlx::query(
                "UPDATE tessera_sessions SET session_info = $1 \
                 WHERE session_handle = $2 AND expires_at > $3",
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
        call(
            self.call_timeout,
            "delete_expired_sessions",
            |_| async move {
                // One autocommit statement. The subselect walks the expires_at index
                // and skips rows another transaction holds (a refresh in flight, a
                // second cleaner); a later batch picks them up. `= ANY(ARRAY(…))`
                // rather than `IN (…)` so that the outer delete probes the primary
                // key instead of hash-joining against a scan of the whole table.
                // With lifetimes the subselect reads the table instead.
                let sql = if cutoff.has_lifetimes() {
                    "DELETE FROM tessera_sessions WHERE session_handle = ANY(ARRAY(\
                 SELECT session_handle FROM tessera_sessions WHERE expires_at <= $1 \
                 OR COALESCE(superseded_at, created_at) <= $3 OR created_at <= $4 \
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))"
                } else {
                    "DELETE FROM tessera_sessions WHERE session_handle = ANY(ARRAY(\
                 SELECT session_handle FROM tessera_sessions WHERE expires_at <= $1 \
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))"
                };
                let mut q = sqlx::query(sql)
                    .bind(cutoff.now_ms)
                    .bind(i64::from(batch_size));
                if cutoff.has_lifetimes() {
                    q = q.bind(cutoff.idle_bound()).bind(cutoff.created_bound());
                }
                let done = q.execute(&self.pool).await?;
                Ok(done.rows_affected())
            },
        )
        .await
    }

    async fn count_expired_sessions(&self, cutoff: ExpiryCutoff) -> StoreResult<u64> {
        call(
            self.call_timeout,
            "count_expired_sessions",
            |_| async move {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= $1 \
                     OR COALESCE(superseded_at, created_at) <= $2 OR created_at <= $3",
                )
                .bind(cutoff.now_ms)
                .bind(cutoff.idle_bound())
                .bind(cutoff.created_bound())
                .fetch_one(&self.pool)
                .await?;
                Ok(count(n)?)
            },
        )
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

    fn keeps_change_log(&self) -> bool {
        true
    }

    async fn changes_after(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Change>> {
        call(self.call_timeout, "changes_after", |_| async move {
            let rows: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT seq, kind, subject FROM tessera_changes WHERE seq > $1 \
                 ORDER BY seq LIMIT $2",
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
            "DELETE FROM tessera_changes WHERE at_ms < {} - $1",
            changes::POSTGRES_NOW_MS
        );
        let sql = &sql;
        call(self.call_timeout, "prune_changes", |_| async move {
            let done = sqlx::query(sql)
                .bind(changes::retention_ms(older_than))
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    fn change_hint(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Some(
            self.hint
                .get_or_init(|| listen(self.pool.connect_options()))
                .clone(),
        )
    }
}

/// Starts the `LISTEN tessera_changes` task on a connection of its own (not
/// one of the pool's, which it would hold for good) and returns the wake-up
/// it signals. The task reconnects after an error and ends once nobody holds
/// the wake-up any more. A hint only: the feed polls whatever happens here.
fn listen(options: std::sync::Arc<PgConnectOptions>) -> std::sync::Arc<tokio::sync::Notify> {
    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
    let weak = std::sync::Arc::downgrade(&notify);
    tokio::spawn(async move {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*options).clone());
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = %e, "LISTEN tessera_changes: cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if weak.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            };
            if let Err(e) = listener.listen("tessera_changes").await {
                tracing::debug!(error = %e, "LISTEN tessera_changes failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            loop {
                // Wake up now and then to notice that nobody listens any more.
                match tokio::time::timeout(Duration::from_secs(5), listener.recv()).await {
                    Ok(Ok(_)) => match weak.upgrade() {
                        Some(n) => n.notify_one(),
                        None => return,
                    },
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "LISTEN tessera_changes lost; reconnecting");
                        break;
                    }
                    Err(_) => {
                        if weak.strong_count() == 0 {
                            return;
                        }
                    }
                }
            }
        }
    });
    notify
}
