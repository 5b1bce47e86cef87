//! The MySQL / MariaDB store.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, MySql, MySqlConnection};
use tessera::{
    Change, ExpiryCutoff, NewSession, Promotion, RotationDecision, SessionRow, SessionSummary,
    SigningKeys, Store, StoreResult, StoredKey, UserId,
};

use crate::changes::{self, Revoke, RevokeTx};
use crate::common::{
    check_hash, check_new_session, corrupt, count, db, decode_key, encode_key, has_device,
    session_row, session_summary, user_id_column, SESSION_COLUMNS, SUMMARY_COLUMNS,
};
use crate::keys::{self, KeySql};
use crate::tx::{call, transaction, Begin, CallResult};
use crate::{StoreOptions, DEFAULT_CALL_TIMEOUT};

/// What every connection to a Galera node runs: `wsrep_sync_wait` bits 1
/// (reads) and 2 (UPDATE and DELETE) added to the server's value.
const GALERA_SESSION_SETUP: &str = "SET SESSION wsrep_sync_wait = @@SESSION.wsrep_sync_wait | 3";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// Inserts a session row with its device columns (migration 0006).
const INSERT_SESSION: &str = "INSERT INTO tessera_sessions (session_handle, user_id, \
     refresh_token_hash_2, session_info, jwt_payload, created_at, expires_at, user_agent, \
     client_address, device_label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Inserts a session row without device information: only the columns the
/// schema had before migration 0006, so that a session without any can still
/// be created on a database not yet migrated (during a rolling upgrade).
const INSERT_SESSION_WITHOUT_DEVICE: &str = "INSERT INTO tessera_sessions (session_handle, \
     user_id, refresh_token_hash_2, session_info, jwt_payload, created_at, expires_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?)";

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
///
/// On a MariaDB Galera node (`wsrep_on = ON`) every connection also sets
/// `wsrep_sync_wait |= 3` (reads, UPDATE and DELETE wait for the cluster),
/// and [`MySqlStore::connect`] logs a warning (target
/// `tessera_sqlx::galera`) for each setting Tessera relies on that is off;
/// see docs/DISTRIBUTED.md.
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
                    // On a Galera node, causal reads *and* causal UPDATE /
                    // DELETE on every connection of ours, whatever the
                    // server's default: without bit 2 a revocation (DELETE)
                    // or a promotion (UPDATE) sent to a node that has not yet
                    // applied the session's INSERT matches no row, writes
                    // nothing that certification could refuse, and reports
                    // "not found" (see docs/DISTRIBUTED.md).
                    let wsrep: Option<(String, String)> =
                        sqlx::query_as("SHOW SESSION VARIABLES LIKE 'wsrep_on'")
                            .fetch_optional(&mut *conn)
                            .await?;
                    if wsrep.is_some_and(|(_, v)| v.eq_ignore_ascii_case("ON")) {
                        conn.execute(GALERA_SESSION_SETUP).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(db)?;
        let store = MySqlStore::new(pool).with_call_timeout(options.call_timeout);
        store.check_galera_settings().await;
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

    /// On a Galera node (`wsrep_on = ON`), logs a warning (target
    /// `tessera_sqlx::galera`) for each server setting Tessera relies on
    /// that is off; see docs/DISTRIBUTED.md. Elsewhere it does nothing. A
    /// check that cannot run is logged too and does not fail the connect.
    async fn check_galera_settings(&self) {
        match self.galera_settings().await {
            Ok(None) => {}
            Ok(Some(settings)) => {
                for problem in galera_problems(&settings) {
                    tracing::warn!(
                        target: "tessera_sqlx::galera",
                        setting = problem.setting,
                        value = %problem.value,
                        expected = problem.expected,
                        "Galera node: {} is {} but Tessera needs {} ({})",
                        problem.setting,
                        problem.value,
                        problem.expected,
                        problem.why
                    );
                }
            }
            Err(e) => tracing::warn!(
                target: "tessera_sqlx::galera",
                error = %e,
                "could not check the server settings Tessera relies on"
            ),
        }
    }

    /// The settings [`galera_problems`] looks at, or `None` when the server
    /// is not a Galera node. Session values where a session can differ
    /// (`wsrep_sync_wait`, `binlog_format`), as this store's connections see
    /// them.
    async fn galera_settings(&self) -> StoreResult<Option<Vec<(String, String)>>> {
        call(self.call_timeout, "check_galera_settings", |_| async move {
            let mut conn = self.pool.acquire().await?;
            let wsrep: Option<(String, String)> =
                sqlx::query_as("SHOW SESSION VARIABLES LIKE 'wsrep_on'")
                    .fetch_optional(&mut *conn)
                    .await?;
            if !wsrep.is_some_and(|(_, v)| v.eq_ignore_ascii_case("ON")) {
                return Ok(None);
            }
            let mut settings: Vec<(String, String)> = sqlx::query_as(
                "SHOW SESSION VARIABLES WHERE Variable_name IN ('wsrep_sync_wait', \
                 'binlog_format', 'innodb_flush_log_at_trx_commit', 'innodb_autoinc_lock_mode', \
                 'default_storage_engine')",
            )
            .fetch_all(&mut *conn)
            .await?;
            let status: Vec<(String, String)> = sqlx::query_as(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_ready')",
            )
            .fetch_all(&mut *conn)
            .await?;
            settings.extend(status);
            Ok(Some(settings))
        })
        .await
    }
}

/// A server setting of a Galera node that is not what Tessera needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GaleraProblem {
    pub(crate) setting: &'static str,
    pub(crate) value: String,
    pub(crate) expected: &'static str,
    pub(crate) why: &'static str,
}

/// What is wrong with a Galera node's settings (name and value pairs as
/// `SHOW VARIABLES` gives them; a missing one counts as wrong).
pub(crate) fn galera_problems(settings: &[(String, String)]) -> Vec<GaleraProblem> {
    let get = |name: &str| {
        settings
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut problems = Vec::new();
    let mut check = |setting: &'static str,
                     ok: &dyn Fn(&str) -> bool,
                     expected: &'static str,
                     why: &'static str| {
        let value = get(setting);
        if !value.is_some_and(ok) {
            problems.push(GaleraProblem {
                setting,
                value: value.unwrap_or("(not set)").to_owned(),
                expected,
                why,
            });
        }
    };
    check(
        "wsrep_sync_wait",
        &|v| v.parse::<u32>().is_ok_and(|n| n & 3 == 3),
        "a value with bits 1 and 2 set (3, 7, …)",
        "without causal reads and writes a node can answer from before a revocation or a \
         refresh committed on another node (a revoked session is accepted, a rotated refresh \
         token is taken for a stolen one) or fail to revoke a session it has not yet \
         received; this store sets it on its own connections, which the check reads, so \
         this means the server refused that",
    );
    check(
        "binlog_format",
        &|v| v.eq_ignore_ascii_case("ROW"),
        "ROW",
        "Galera replicates row events only",
    );
    check(
        "innodb_flush_log_at_trx_commit",
        &|v| v == "1",
        "1",
        "an acknowledged commit can be lost when every node crashes at once",
    );
    check(
        "innodb_autoinc_lock_mode",
        &|v| v == "2",
        "2",
        "Galera's multi-master inserts need interleaved auto-increment locks",
    );
    check(
        "default_storage_engine",
        &|v| v.eq_ignore_ascii_case("InnoDB"),
        "InnoDB",
        "only InnoDB tables are replicated",
    );
    check(
        "wsrep_cluster_status",
        &|v| v.eq_ignore_ascii_case("Primary"),
        "Primary",
        "a node outside the primary component refuses queries",
    );
    check(
        "wsrep_ready",
        &|v| v.eq_ignore_ascii_case("ON"),
        "ON",
        "the node does not accept queries yet",
    );
    problems
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

    async fn record_key_change(conn: &mut MySqlConnection) -> CallResult<()> {
        sqlx::query(crate::changes::INSERT_KEY_CHANGE)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// `common::SessionColumns` as sqlx reads `utf8mb4_bin` columns: bytes.
type SessionBytes = (
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    i64,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<i64>,
);

/// What a retried call checks for (see [`crate::tx::Attempt::is_retry`]).
impl MySqlStore {
    /// Whether the row `session` describes is already there: same handle,
    /// refresh hash and creation time.
    async fn holds_new_session(&self, session: &NewSession<'_>) -> CallResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tessera_sessions \
             WHERE session_handle = ? AND refresh_token_hash_2 = ? AND created_at = ?",
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
             WHERE session_handle = ? AND refresh_token_hash_2 = ? AND expires_at = ?",
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
impl Store for MySqlStore {
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
            if !pad_safe(session_handle) {
                return Ok(None);
            }
            let row: Option<SessionBytes> = sqlx::query_as(&format!(
                "SELECT {SESSION_COLUMNS} FROM tessera_sessions WHERE session_handle = ?"
            ))
            .bind(session_handle)
            .fetch_optional(&self.pool)
            .await?;
            let Some((handle, user, hash, payload, created, expires, hash_1, previous, at)) = row
            else {
                return Ok(None);
            };
            let columns = (
                text(handle)?,
                text(user)?,
                text(hash)?,
                text(payload)?,
                created,
                expires,
                hash_1.map(text).transpose()?,
                previous.map(text).transpose()?,
                at,
            );
            Ok(Some(session_row(columns)?))
        })
        .await
    }

    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool> {
        call(self.call_timeout, "session_is_live", |_| async move {
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
        call(
            self.call_timeout,
            "compare_and_set_refresh_hash",
            |attempt| async move {
                check_hash(promotion.new_hash_2)?;
                if !pad_safe(promotion.session_handle) || !pad_safe(promotion.expected_hash_2) {
                    return Ok(false);
                }
                // Affected rows are matched rows (CLIENT_FOUND_ROWS), so a CAS that
                // writes the same values still reports success.
                if let Some(h1) = promotion.new_hash_1 {
                    check_hash(h1)?;
                }
                // MySQL assigns left to right, each assignment seeing the
                // ones before it: `previous_hash_2` must come first to take
                // the hash being replaced.
                let done = sqlx::query(
                    "UPDATE tessera_sessions SET previous_hash_2 = refresh_token_hash_2, \
                     refresh_token_hash_2 = ?, expires_at = ?, committed_hash_1 = ?, \
                     superseded_at = ? \
             WHERE session_handle = ? AND refresh_token_hash_2 = ? AND expires_at > ? \
                     AND (superseded_at IS NULL OR committed_hash_1 IS NULL \
                     OR superseded_at <= ?)",
                )
                .bind(promotion.new_hash_2)
                .bind(promotion.new_expires_at_ms)
                .bind(promotion.new_hash_1)
                .bind(now_ms)
                .bind(promotion.session_handle)
                .bind(promotion.expected_hash_2)
                .bind(now_ms)
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
            if !pad_safe(session_handle) {
                return Ok(false);
            }
            let mut tx = RevokeTx {
                by: Revoke::Handle(session_handle),
            };
            let deleted = transaction(&self.pool, changes::MYSQL_REVOKE_BEGIN, &mut tx).await?;
            Ok(!deleted.is_empty())
        })
        .await
    }

    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64> {
        call(
            self.call_timeout,
            "delete_sessions_for_user",
            |_| async move {
                let storage = user_id.to_storage();
                let mut tx = RevokeTx {
                    by: Revoke::User(&storage),
                };
                let deleted = transaction(&self.pool, changes::MYSQL_REVOKE_BEGIN, &mut tx).await?;
                Ok(deleted.len() as u64)
            },
        )
        .await
    }

    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>> {
        call(
            self.call_timeout,
            "session_handles_for_user",
            |_| async move {
                let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
                    "SELECT session_handle FROM tessera_sessions WHERE user_id = ? \
             ORDER BY created_at, session_handle",
                )
                .bind(user_id.to_storage())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|(h,)| text(h)).collect()
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
            // Text columns come back as bytes (`utf8mb4_bin`), decoded here.
            #[allow(clippy::type_complexity)]
            let rows: Vec<(
                Vec<u8>,
                i64,
                i64,
                Option<i64>,
                Option<Vec<u8>>,
                Option<Vec<u8>>,
                Option<Vec<u8>>,
            )> = sqlx::query_as(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM tessera_sessions \
                 WHERE user_id = ? AND expires_at > ? ORDER BY created_at, session_handle"
            ))
            .bind(user_id.to_storage())
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(handle, created, expires, refreshed, ua, addr, label)| {
                    Ok(session_summary((
                        text(handle)?,
                        created,
                        expires,
                        refreshed,
                        ua.map(text).transpose()?,
                        addr.map(text).transpose()?,
                        label.map(text).transpose()?,
                    )))
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
        call(self.call_timeout, "get_session_info", |_| async move {
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
        call(self.call_timeout, "update_session_info", |_| async move {
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

    async fn delete_expired_sessions(
        &self,
        cutoff: ExpiryCutoff,
        batch_size: u32,
    ) -> StoreResult<u64> {
        call(
            self.call_timeout,
            "delete_expired_sessions",
            |_| async move {
                // One autocommit statement walking the expires_at index
                // (without lifetimes) or the table (with them).
                let done = if cutoff.has_lifetimes() {
                    sqlx::query(
                        "DELETE FROM tessera_sessions WHERE expires_at <= ? \
                         OR COALESCE(superseded_at, created_at) <= ? OR created_at <= ? \
                         ORDER BY expires_at LIMIT ?",
                    )
                    .bind(cutoff.now_ms)
                    .bind(cutoff.idle_bound())
                    .bind(cutoff.created_bound())
                    .bind(batch_size)
                    .execute(&self.pool)
                    .await?
                } else {
                    sqlx::query(
                        "DELETE FROM tessera_sessions WHERE expires_at <= ? \
                         ORDER BY expires_at LIMIT ?",
                    )
                    .bind(cutoff.now_ms)
                    .bind(batch_size)
                    .execute(&self.pool)
                    .await?
                };
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
                    "SELECT COUNT(*) FROM tessera_sessions WHERE expires_at <= ? \
                     OR COALESCE(superseded_at, created_at) <= ? OR created_at <= ?",
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
            let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                "SELECT seq, kind, subject FROM tessera_changes WHERE seq > ? \
                 ORDER BY seq LIMIT ?",
            )
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter()
                .map(|(seq, kind, subject)| changes::change(seq, &text(kind)?, text(subject)?))
                .collect()
        })
        .await
    }

    async fn prune_changes(&self, older_than: Duration) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM tessera_changes WHERE at_ms < {} - ?",
            changes::MYSQL_NOW_MS
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GOOD: &[(&str, &str)] = &[
        ("wsrep_sync_wait", "3"),
        ("binlog_format", "ROW"),
        ("innodb_flush_log_at_trx_commit", "1"),
        ("innodb_autoinc_lock_mode", "2"),
        ("default_storage_engine", "InnoDB"),
        ("wsrep_cluster_status", "Primary"),
        ("wsrep_ready", "ON"),
    ];

    #[test]
    fn good_galera_settings_raise_nothing() {
        assert_eq!(galera_problems(&settings(GOOD)), vec![]);
        let mut more = settings(GOOD);
        more[0].1 = "7".into();
        assert_eq!(galera_problems(&more), vec![]);
    }

    #[test]
    fn each_bad_galera_setting_is_named() {
        let bad = [
            ("wsrep_sync_wait", "0"),
            ("wsrep_sync_wait", "1"),
            ("wsrep_sync_wait", "2"),
            ("binlog_format", "MIXED"),
            ("innodb_flush_log_at_trx_commit", "2"),
            ("innodb_autoinc_lock_mode", "1"),
            ("default_storage_engine", "MyISAM"),
            ("wsrep_cluster_status", "non-Primary"),
            ("wsrep_ready", "OFF"),
        ];
        for (name, value) in bad {
            let mut s = settings(GOOD);
            s.iter_mut().find(|(n, _)| n == name).unwrap().1 = value.into();
            let problems = galera_problems(&s);
            assert_eq!(problems.len(), 1, "{name}={value}: {problems:?}");
            assert_eq!(problems[0].setting, name);
            assert_eq!(problems[0].value, value);
        }
        let missing: Vec<_> = settings(GOOD).into_iter().skip(1).collect();
        assert_eq!(galera_problems(&missing)[0].value, "(not set)");
    }
}
