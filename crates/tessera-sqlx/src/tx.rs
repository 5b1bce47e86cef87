//! How a store call runs, written once for the three databases: under its
//! deadline, with driver errors mapped to [`StoreError`], and, for the calls
//! that need more than one statement, in a transaction that is committed or
//! rolled back and whose connection is closed unless the transaction was seen
//! to end.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tessera::{GeneralKind, StoreError, StoreResult};

use crate::common::db;

/// The error of a call's body. `?` takes driver errors ([`sqlx::Error`],
/// wrapped by [`db`] as everywhere else) and store errors (bad input, corrupt
/// rows) alike, so bodies need no `map_err`; [`call`] hands the caller the
/// [`StoreError`] inside.
pub(crate) struct CallError {
    error: StoreError,
    /// Whether the driver error was a conflict ([`is_conflict`]).
    conflict: bool,
}

/// What a call's body, a statement helper or a transaction body returns.
pub(crate) type CallResult<T> = Result<T, CallError>;

impl From<sqlx::Error> for CallError {
    fn from(e: sqlx::Error) -> Self {
        CallError {
            conflict: is_conflict(&e),
            error: db(e),
        }
    }
}

impl From<StoreError> for CallError {
    fn from(error: StoreError) -> Self {
        CallError {
            error,
            conflict: false,
        }
    }
}

impl CallError {
    /// A conflict as the driver would report it, for fault injection.
    #[cfg(feature = "testing")]
    pub(crate) fn injected_conflict(what: &'static str) -> Self {
        CallError {
            error: StoreError::with_kind(GeneralKind::Unavailable, what),
            conflict: true,
        }
    }
}

/// How many times a call's body runs at most when it keeps failing with a
/// conflict (see [`is_conflict`]): the first attempt and up to nine retries.
pub(crate) const MAX_ATTEMPTS: u32 = 10;

/// The pause before retry `n` (1 for the first) is drawn uniformly from zero
/// to `min(BACKOFF_BASE × 2ⁿ⁻¹, BACKOFF_CAP)` ("full jitter"), so that the
/// losers of one conflict do not meet again at the same instant. All nine
/// pauses together are at most about 1.3 s, within the default call deadline.
const BACKOFF_BASE: Duration = Duration::from_millis(2);
const BACKOFF_CAP: Duration = Duration::from_millis(250);

/// Which run of a call's body this is; a body that must be idempotent when a
/// retry follows an attempt whose outcome is unknown asks
/// [`Attempt::is_retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt(u32);

impl Attempt {
    /// Whether an earlier attempt of the same call ran. Its effects may have
    /// been committed although it reported an error (see [`call`]), so a
    /// body that is not naturally idempotent checks for its own result first.
    pub(crate) fn is_retry(self) -> bool {
        self.0 > 1
    }
}

/// Whether a driver error is a conflict that a new run of the whole
/// transaction can get past: a serialization failure (SQLSTATE 40001: on
/// PostgreSQL under `SERIALIZABLE`/`REPEATABLE READ`; on MySQL and MariaDB
/// it is the SQLSTATE of error 1213 `ER_LOCK_DEADLOCK`, which is also how a
/// Galera node reports a certification failure at COMMIT or a transaction
/// aborted by a replicated write), a deadlock (40P01), or a commit whose
/// outcome is unknown (40003, which PostgreSQL does not raise but
/// CockroachDB does; the bodies are idempotent, so running them again is
/// safe).
///
/// Not retried: lock wait timeouts (MySQL 1205, PostgreSQL 55P03), because
/// the lock holder has already kept the lock for the whole lock timeout and
/// a retry would wait as long again, past the call deadline; and connection
/// failures, because the node is the same on the next attempt and the caller
/// should learn at once (both are retryable General errors for the caller).
pub(crate) fn is_conflict(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    matches!(d.code().as_deref(), Some("40001" | "40P01" | "40003"))
}

/// Runs one store call under its deadline (see
/// [`crate::StoreOptions::call_timeout`]; `None` for none, which is what
/// SQLite passes) and turns its error into a [`StoreError`].
///
/// `body` is called once per attempt and must do all of the call's work
/// each time, from acquiring a connection to its commit: a body that fails
/// with a conflict ([`is_conflict`]) is run again as a whole, up to
/// [`MAX_ATTEMPTS`] times, after a jittered pause. Autocommit statements and
/// [`transaction`]s are retried alike (a Galera node can refuse either at
/// commit). Each retry is logged at `debug` and a call that needed retries
/// at `info` (target `tessera_sqlx::retry`); when the attempts run out the
/// call fails with a [`GeneralKind::Unavailable`] error (retryable by the
/// caller) that says so, logged at `warn`. [`conflict_retries`] counts the
/// retries of the whole process.
///
/// When the deadline passes, the call's future is dropped: a statement in
/// flight is abandoned (sqlx pings a connection before it goes back to the
/// pool and closes it if that fails) and an open transaction is never
/// committed by us. Whether a single autocommit statement that was already
/// sent took effect is unknown to the caller, as with any timeout over a
/// network; every Tessera write is safe to find done or not done
/// (docs/PROTOCOL.md §8.1: the client keeps a token that is valid either way).
pub(crate) async fn call<T, F, Fut>(
    limit: Option<Duration>,
    op: &'static str,
    body: F,
) -> StoreResult<T>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = CallResult<T>>,
{
    let body = retrying(op, body);
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

static CONFLICT_RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many times, since the process started, a store call of this crate
/// was run again after a conflict (a serialization failure, a deadlock or,
/// on Galera, a certification failure). For monitoring and benchmarks.
pub fn conflict_retries() -> u64 {
    CONFLICT_RETRIES.load(Ordering::Relaxed)
}

async fn retrying<T, F, Fut>(op: &'static str, mut body: F) -> StoreResult<T>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = CallResult<T>>,
{
    let mut attempt = 1;
    loop {
        let outcome = body(Attempt(attempt)).await;
        #[cfg(feature = "testing")]
        let outcome = crate::testing::faults::after_attempt(outcome);
        let failure = match outcome {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(
                        target: "tessera_sqlx::retry",
                        op,
                        attempts = attempt,
                        "store call succeeded after retrying conflicts"
                    );
                }
                return Ok(v);
            }
            Err(failure) => failure,
        };
        let e = failure.error;
        if !failure.conflict {
            return Err(e);
        }
        if attempt >= MAX_ATTEMPTS {
            tracing::warn!(
                target: "tessera_sqlx::retry",
                op,
                attempts = attempt,
                error = %e,
                "store call gave up: every attempt met a conflict"
            );
            return Err(StoreError::with_kind(
                GeneralKind::Unavailable,
                format!(
                    "{op}: {attempt} attempts all failed with a serialization, deadlock or certification conflict; the last one: {e}"
                ),
            ));
        }
        let pause = backoff(attempt);
        CONFLICT_RETRIES.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target: "tessera_sqlx::retry",
            op,
            attempt,
            pause_us = pause.as_micros() as u64,
            error = %e,
            "conflict; running the call again"
        );
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

/// The jittered pause before retry `n` (see [`BACKOFF_BASE`]).
fn backoff(retry: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << (retry - 1).min(16))
        .min(BACKOFF_CAP);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(jitter() % nanos.max(1))
}

/// A pseudo-random number: the standard library's per-process random hash
/// keys over a counter. Good enough to spread retries; not for secrets.
fn jitter() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEYS: std::collections::hash_map::RandomState =
            std::collections::hash_map::RandomState::new();
    }
    KEYS.with(|keys| {
        let mut h = keys.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.finish()
    })
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
/// transaction. Retrying after a serialization failure (see [`call`])
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
/// A conflict in the body or at COMMIT fails the transaction (rolled back,
/// or refused by the server); [`call`] around it then runs the whole call
/// again, from a fresh connection and `BEGIN`, which is why a body must read
/// everything it decides on inside [`TxBody::run`].
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
