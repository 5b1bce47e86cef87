//! How a store call runs, written once for the three databases: under its
//! deadline, with driver errors mapped to [`StoreError`], and, for the calls
//! that need more than one statement, in a transaction that is committed or
//! rolled back and whose connection is closed unless the transaction was seen
//! to end.

use std::future::Future;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tessera::{GeneralKind, StoreError, StoreResult};

use crate::common::db;

/// The error of a call's body. `?` takes driver errors ([`sqlx::Error`],
/// wrapped by [`db`] as everywhere else) and store errors (bad input, corrupt
/// rows) alike, so bodies need no `map_err`; [`call`] hands the caller the
/// [`StoreError`] inside.
pub(crate) struct CallError(StoreError);

/// What a call's body, a statement helper or a transaction body returns.
pub(crate) type CallResult<T> = Result<T, CallError>;

impl From<sqlx::Error> for CallError {
    fn from(e: sqlx::Error) -> Self {
        CallError(db(e))
    }
}

impl From<StoreError> for CallError {
    fn from(e: StoreError) -> Self {
        CallError(e)
    }
}

/// Runs one store call under its deadline (see
/// [`crate::StoreOptions::call_timeout`]; `None` for none, which is what
/// SQLite passes) and turns its error into a [`StoreError`].
///
/// When the deadline passes, the call's future is dropped: a statement in
/// flight is abandoned (sqlx pings a connection before it goes back to the
/// pool and closes it if that fails) and an open transaction is never
/// committed by us. Whether a single autocommit statement that was already
/// sent took effect is unknown to the caller, as with any timeout over a
/// network; every Tessera write is safe to find done or not done
/// (docs/PROTOCOL.md §8.1: the client keeps a token that is valid either way).
pub(crate) async fn call<T>(
    limit: Option<Duration>,
    body: impl Future<Output = CallResult<T>>,
) -> StoreResult<T> {
    let body = async { body.await.map_err(|CallError(e)| e) };
    let Some(limit) = limit else {
        return body.await;
    };
    match tokio::time::timeout(limit, body).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::with_kind(
            GeneralKind::Timeout,
            format!(
                "the database did not answer within the call timeout ({} ms)",
                limit.as_millis()
            ),
        )),
    }
}

/// How a database opens a transaction. Each store states its own; they are
/// not interchangeable (see the `KeySql` implementations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Begin {
    /// The statement that opens the transaction, or `None` for sqlx's plain
    /// `BEGIN`.
    pub(crate) statement: Option<&'static str>,
    /// Whether a `BEGIN` that returned an error is known to have left no
    /// transaction open, so that the connection may go back to the pool.
    /// When `false` the connection is closed instead.
    pub(crate) failure_leaves_no_transaction: bool,
}

/// The statements of one transaction, run by [`transaction`].
///
/// `run` borrows the body mutably and is handed the connection each time it
/// is called, so a body can be run again from its start in a fresh
/// transaction. Retrying after a serialization failure (see [`transaction`])
/// needs exactly that; a body must therefore read everything it decides on
/// inside `run` and keep nothing from one run to the next.
pub(crate) trait TxBody<DB: Database>: Send {
    /// What the transaction returns once committed.
    type Output: Send;

    /// Runs the statements on `conn`, which is inside the transaction.
    fn run<'c>(
        &'c mut self,
        conn: &'c mut DB::Connection,
    ) -> impl Future<Output = CallResult<Self::Output>> + Send + 'c;
}

/// Runs `body` in one transaction on a connection of its own: begins it as
/// `begin` says, commits if the body succeeds, rolls back if it fails. The
/// connection goes back to the pool only if the transaction was seen to end
/// (see [`TxConn`]); after an error, a panic in the body or a cancelled
/// future it is closed.
///
/// Retries on serialization failures (SQLSTATE 40001 and 40P01 on
/// PostgreSQL, error 1213 `ER_LOCK_DEADLOCK` on MySQL) are not done yet.
/// They belong here, as a loop from `begin` to `commit` on the same guard:
/// after a retryable error of the body or of the commit, and only once the
/// rollback succeeded, begin again and call `body.run` again, a bounded
/// number of times and within the call's deadline (which [`call`] around this
/// already enforces). Nothing else has to change: bodies are [`TxBody`]s and
/// can be run more than once.
pub(crate) async fn transaction<DB, B>(
    pool: &Pool<DB>,
    begin: Begin,
    body: &mut B,
) -> CallResult<B::Output>
where
    DB: Database,
    B: TxBody<DB>,
{
    let mut guard = TxConn::acquire(pool).await?;
    // `begin_with` rather than a bare `execute("BEGIN …")` so that sqlx knows
    // the connection is in a transaction and rolls it back if the
    // `Transaction` is dropped.
    let begun = match begin.statement {
        Some(statement) => guard.conn.begin_with(statement).await,
        None => guard.conn.begin().await,
    };
    let mut tx = match begun {
        Ok(tx) => tx,
        Err(e) => {
            if begin.failure_leaves_no_transaction {
                guard.finished = true;
            }
            return Err(e.into());
        }
    };
    match body.run(&mut tx).await {
        Ok(output) => {
            tx.commit().await?;
            guard.finished = true;
            Ok(output)
        }
        Err(e) => {
            if tx.rollback().await.is_ok() {
                guard.finished = true;
            }
            Err(e)
        }
    }
}

/// A pooled connection that carries a multi-statement transaction.
///
/// sqlx rolls an open [`sqlx::Transaction`] back when it is dropped, but that
/// rollback runs lazily on the connection's next use, and a future cancelled
/// in the middle of `BEGIN` can leave the server in a transaction that sqlx
/// does not know about. So the guard closes the connection instead of
/// returning it to the pool unless the transaction was seen to end
/// (`finished` set): after a commit or an explicit rollback that
/// succeeded. An error, a panic in the caller's code or a cancelled future
/// therefore never hands a connection in mid-transaction to the next caller.
struct TxConn<DB: Database> {
    conn: PoolConnection<DB>,
    /// Set once the transaction ended cleanly; the connection may then go
    /// back to the pool. A field, not a method, so that it can be set while
    /// a transaction still borrows `conn`.
    finished: bool,
}

impl<DB: Database> TxConn<DB> {
    async fn acquire(pool: &Pool<DB>) -> CallResult<Self> {
        let conn = pool.acquire().await?;
        Ok(TxConn {
            conn,
            finished: false,
        })
    }
}

impl<DB: Database> Drop for TxConn<DB> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}
