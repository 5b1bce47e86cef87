//! The two calls on `tessera_keys`, written once: the refresh-token key
//! (insert if absent, then read) and the signing-key rotation (lock the
//! current row, read the previous one, decide, write or delete). Each
//! database supplies its statements and its way of beginning the rotation's
//! transaction through [`KeySql`].

use std::future::Future;
use std::time::Duration;

use sqlx::{Database, Pool};
use tessera::{RotationDecision, SigningKeys, StoreResult, StoredKey, REFRESH_TOKEN_KEY_NAME};

use crate::common::{corrupt, CURRENT_SIGNING_KEY, PREVIOUS_SIGNING_KEY};
use crate::tx::{call, transaction, Begin, CallResult, TxBody};

/// The key-table statements of one database. Every statement runs on the
/// connection it is given: in autocommit mode, or inside the rotation's
/// transaction.
pub(crate) trait KeySql: Database {
    /// How the rotation's transaction begins: the isolation or locking that
    /// makes concurrent rotations queue and each see what the one before it
    /// committed.
    const ROTATION_BEGIN: Begin;

    /// Whether the rotation inserts the current-key row (if absent) inside
    /// its transaction, or before it in an autocommit statement of its own.
    const INSERT_CURRENT_IN_TRANSACTION: bool;

    /// Inserts a key row unless one with that name exists.
    fn insert_key_if_absent(
        conn: &mut Self::Connection,
        name: &str,
        key: &StoredKey,
    ) -> impl Future<Output = CallResult<()>> + Send;

    /// Reads one key row.
    fn read_key(
        conn: &mut Self::Connection,
        name: &str,
    ) -> impl Future<Output = CallResult<Option<StoredKey>>> + Send;

    /// Reads one key row inside the rotation's transaction, locking it until
    /// the transaction ends (`SELECT … FOR UPDATE` where the database has
    /// row locks).
    fn lock_key(
        conn: &mut Self::Connection,
        name: &str,
    ) -> impl Future<Output = CallResult<Option<StoredKey>>> + Send;

    /// Inserts or replaces a key row.
    fn write_key(
        conn: &mut Self::Connection,
        name: &str,
        key: &StoredKey,
    ) -> impl Future<Output = CallResult<()>> + Send;

    /// Deletes a key row if it exists.
    fn delete_key(
        conn: &mut Self::Connection,
        name: &str,
    ) -> impl Future<Output = CallResult<()>> + Send;

    /// Appends the key-write row to the change log
    /// ([`crate::changes::INSERT_KEY_CHANGE`]), inside the rotation.
    fn record_key_change(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = CallResult<()>> + Send;
}

/// [`tessera::Store::refresh_token_key`] on any database.
pub(crate) async fn refresh_token_key<DB: KeySql>(
    pool: &Pool<DB>,
    limit: Option<Duration>,
    candidate: &StoredKey,
) -> StoreResult<StoredKey> {
    call(limit, "refresh_token_key", |_| async move {
        // Insert-if-absent, then read: the first insert wins (a concurrent
        // insert of the same name waits for it and then does nothing), and
        // every caller reads the winner. Both statements autocommit; a key
        // row is never half written.
        let mut conn = pool.acquire().await?;
        DB::insert_key_if_absent(&mut conn, REFRESH_TOKEN_KEY_NAME, candidate).await?;
        let key = DB::read_key(&mut conn, REFRESH_TOKEN_KEY_NAME).await?;
        Ok(key.ok_or_else(|| corrupt("key row vanished after it was inserted"))?)
    })
    .await
}

/// [`tessera::Store::signing_keys`] on any database.
pub(crate) async fn signing_keys<DB: KeySql>(
    pool: &Pool<DB>,
    limit: Option<Duration>,
    candidate: &StoredKey,
    decide: RotationDecision<'_>,
) -> StoreResult<SigningKeys> {
    call(limit, "signing_keys", |_| async move {
        if !DB::INSERT_CURRENT_IN_TRANSACTION {
            let mut conn = pool.acquire().await?;
            DB::insert_key_if_absent(&mut conn, CURRENT_SIGNING_KEY, candidate).await?;
        }
        transaction(
            pool,
            DB::ROTATION_BEGIN,
            &mut Rotation { candidate, decide },
        )
        .await
    })
    .await
}

/// The body of the rotation's transaction.
struct Rotation<'a> {
    candidate: &'a StoredKey,
    decide: RotationDecision<'a>,
}

impl<DB: KeySql> TxBody<DB> for Rotation<'_> {
    type Output = SigningKeys;

    fn run<'c>(
        &'c mut self,
        conn: &'c mut DB::Connection,
    ) -> impl Future<Output = CallResult<SigningKeys>> + Send + 'c {
        rotate::<DB>(conn, self.candidate, self.decide)
    }
}

async fn rotate<DB: KeySql>(
    conn: &mut DB::Connection,
    candidate: &StoredKey,
    decide: RotationDecision<'_>,
) -> CallResult<SigningKeys> {
    if DB::INSERT_CURRENT_IN_TRANSACTION {
        DB::insert_key_if_absent(conn, CURRENT_SIGNING_KEY, candidate).await?;
    }
    // Lock the current row first, in its own statement: every rotation
    // queues here, so only the lock holder ever touches the previous row.
    // The previous row is read by a later statement, which sees whatever the
    // transaction we waited for committed (why differs per database; see
    // each `ROTATION_BEGIN`).
    let current = DB::lock_key(conn, CURRENT_SIGNING_KEY)
        .await?
        .ok_or_else(|| corrupt("the current signing key row vanished"))?;
    let previous = DB::lock_key(conn, PREVIOUS_SIGNING_KEY).await?;
    let stored = SigningKeys { current, previous };
    let Some(new) = decide(&stored) else {
        return Ok(stored);
    };
    DB::write_key(conn, CURRENT_SIGNING_KEY, &new.current).await?;
    match &new.previous {
        Some(previous) => DB::write_key(conn, PREVIOUS_SIGNING_KEY, previous).await?,
        None => DB::delete_key(conn, PREVIOUS_SIGNING_KEY).await?,
    }
    // Last before the commit (see `crate::changes`): other instances' change
    // feeds reload their keys when they read it.
    DB::record_key_change(conn).await?;
    Ok(new)
}
