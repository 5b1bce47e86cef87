//! The change log (`tessera_changes`, migration 0004) on the three
//! databases: revocations that write their log rows in the same
//! transaction, and the reads and pruning of the change feed (see
//! `tessera`'s `Store::keeps_change_log` and docs/DISTRIBUTED.md, "The
//! change feed").
//!
//! PostgreSQL does a revocation in one statement (a data-modifying `WITH`
//! whose `DELETE … RETURNING` feeds the `INSERT`). MySQL and SQLite have no
//! such statement, so they run a short transaction: read the handles to
//! revoke (`FOR UPDATE` on MySQL; SQLite's `BEGIN IMMEDIATE` already holds
//! the write lock), delete exactly those rows, then insert their log rows as
//! the last statement before `COMMIT` (so a log number is taken as late as
//! possible before it becomes visible; see the feed's re-read window).

#[cfg(feature = "mysql")]
use sqlx::{MySql, MySqlConnection};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqliteConnection};
use tessera::{Change, ChangeKind};

use crate::common::corrupt;
#[cfg(any(feature = "mysql", feature = "sqlite"))]
use crate::tx::TxBody;
use crate::tx::{Begin, CallResult};

/// Rows per multi-row statement (well under every database's limit on
/// bound parameters).
const CHUNK: usize = 200;

/// Which rows a revocation deletes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Revoke<'a> {
    /// One session.
    Handle(&'a str),
    /// Every session of a user (the `user_id` column's storage form).
    User(&'a str),
}

/// The revocation transaction of MySQL and SQLite: returns the handles it
/// deleted.
pub(crate) struct RevokeTx<'a> {
    pub(crate) by: Revoke<'a>,
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

fn values(n: usize) -> String {
    let mut s = String::with_capacity(n * 12);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str("(?, ?)");
    }
    s
}

/// The same statements on MySQL and SQLite (both take `?` placeholders);
/// only the row lock of the first read differs.
macro_rules! revoke_tx {
    ($db:ty, $conn:ty, $lock:literal, $col:ty, $decode:expr) => {
        impl TxBody<$db> for RevokeTx<'_> {
            type Output = Vec<String>;

            fn run<'c>(
                &'c mut self,
                conn: &'c mut $conn,
            ) -> impl std::future::Future<Output = CallResult<Vec<String>>> + Send + 'c {
                let by = self.by;
                async move {
                    let select = match by {
                        Revoke::Handle(_) => concat!(
                            "SELECT session_handle FROM tessera_sessions WHERE session_handle = ?",
                            $lock
                        ),
                        Revoke::User(_) => concat!(
                            "SELECT session_handle FROM tessera_sessions WHERE user_id = ?",
                            $lock
                        ),
                    };
                    let key = match by {
                        Revoke::Handle(h) => h,
                        Revoke::User(u) => u,
                    };
                    let rows: Vec<($col,)> = sqlx::query_as(select)
                        .bind(key)
                        .fetch_all(&mut *conn)
                        .await?;
                    let decode: fn($col) -> CallResult<String> = $decode;
                    let handles = rows
                        .into_iter()
                        .map(|(h,)| decode(h))
                        .collect::<CallResult<Vec<String>>>()?;
                    for chunk in handles.chunks(CHUNK) {
                        let sql = format!(
                            "DELETE FROM tessera_sessions WHERE session_handle IN ({})",
                            placeholders(chunk.len())
                        );
                        let mut q = sqlx::query(&sql);
                        for h in chunk {
                            q = q.bind(h);
                        }
                        q.execute(&mut *conn).await?;
                    }
                    for chunk in handles.chunks(CHUNK) {
                        let sql = format!(
                            "INSERT INTO tessera_changes (kind, subject) VALUES {}",
                            values(chunk.len())
                        );
                        let mut q = sqlx::query(&sql);
                        for h in chunk {
                            q = q.bind(ChangeKind::Revoked.code()).bind(h);
                        }
                        q.execute(&mut *conn).await?;
                    }
                    Ok(handles)
                }
            }
        }
    };
}

fn utf8(bytes: Vec<u8>) -> CallResult<String> {
    Ok(String::from_utf8(bytes).map_err(|_| corrupt("a text column held invalid UTF-8"))?)
}

// MySQL reports `utf8mb4_bin` columns as binary: read bytes, check UTF-8.
#[cfg(feature = "mysql")]
revoke_tx!(MySql, MySqlConnection, " FOR UPDATE", Vec<u8>, utf8);
#[cfg(feature = "sqlite")]
revoke_tx!(Sqlite, SqliteConnection, "", String, Ok);

/// How MySQL begins the revocation: sqlx's plain `BEGIN`; the first read
/// takes the row (and gap) locks.
#[cfg(feature = "mysql")]
pub(crate) const MYSQL_REVOKE_BEGIN: Begin = Begin {
    statement: None,
    failure_leaves_no_transaction: false,
};

/// How SQLite begins it: `BEGIN IMMEDIATE`, the write lock before the read.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_REVOKE_BEGIN: Begin = Begin {
    statement: Some("BEGIN IMMEDIATE"),
    failure_leaves_no_transaction: true,
};

/// The key-write log row, inserted inside the rotation's transaction (all
/// three databases).
pub(crate) const INSERT_KEY_CHANGE: &str =
    "INSERT INTO tessera_changes (kind, subject) VALUES ('k', '')";

/// One row of `SELECT seq, kind, subject`.
pub(crate) fn change(seq: i64, kind: &str, subject: String) -> CallResult<Change> {
    let kind = ChangeKind::from_code(kind.trim_end())
        .ok_or_else(|| corrupt("tessera_changes.kind holds an unknown code"))?;
    Ok(Change { seq, kind, subject })
}

/// Milliseconds since the Unix epoch by each database's clock, for pruning.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_NOW_MS: &str =
    "(floor(extract(epoch from clock_timestamp()) * 1000))::bigint";
#[cfg(feature = "mysql")]
pub(crate) const MYSQL_NOW_MS: &str = "FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000)";
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// Whole milliseconds of a retention, as the SQL parameter.
pub(crate) fn retention_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
