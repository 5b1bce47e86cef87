//! Pieces shared by the three stores: key encoding, input checks and row
//! decoding. How a call runs (deadline, error mapping, transactions) is in
//! `tx.rs`; the key-table calls are in `keys.rs`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tessera::{
    GeneralKind, NewSession, SessionRow, SessionSummary, StoreError, StoreResult, StoredKey,
    UserId, MAX_CLIENT_ADDRESS_LEN, MAX_DEVICE_LABEL_LEN, MAX_USER_AGENT_LEN,
    MAX_USER_ID_STORAGE_LEN,
};

/// Row name of the access-token key that signs new tokens.
pub(crate) const CURRENT_SIGNING_KEY: &str = "access_token_signing_key";
/// Row name of the access-token key that the current one replaced.
pub(crate) const PREVIOUS_SIGNING_KEY: &str = "access_token_signing_key_previous";

/// Width of `session_handle` (VARCHAR(64)).
const MAX_HANDLE_LEN: usize = 64;
/// Width of `refresh_token_hash_2` (CHAR(64)): a SHA-256 in hex.
const HASH_LEN: usize = 64;

/// Wraps a driver error, with the kind that tells the caller what to do
/// ([`classify`]).
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::with_kind(classify(&e), e)
}

/// What a driver error means for the caller.
///
/// - No connection in time: `Timeout`. The network, TLS, a closed pool, a
///   protocol error, a server shutting down or out of resources (SQLSTATE
///   classes 08, 53, 57P0x): `Unavailable`.
/// - A lock wait or statement timeout (PostgreSQL 55P03 and 57014, MySQL
///   1205, SQLite busy/locked): `Timeout`.
/// - A serialization failure or deadlock (40001, 40P01; MySQL's 1213 is
///   40001): `Unavailable`, retryable as a whole transaction.
/// - A bad URL or option: `InvalidArgument`.
/// - Anything else (a constraint, a missing table, a decoding error): a
///   fault or a setup error, `Internal`.
pub(crate) fn classify(e: &sqlx::Error) -> GeneralKind {
    use sqlx::Error as E;
    match e {
        E::PoolTimedOut => GeneralKind::Timeout,
        E::Io(_) | E::Tls(_) | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
            GeneralKind::Unavailable
        }
        E::Configuration(_) => GeneralKind::InvalidArgument,
        E::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            if code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
            {
                GeneralKind::Unavailable
            } else if code == "55P03"
                || code == "57014"
                // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
                || matches!(code, "5" | "6" | "261" | "262" | "517" | "773")
                || d.message().starts_with("Lock wait timeout")
            {
                GeneralKind::Timeout
            } else {
                GeneralKind::Internal
            }
        }
        _ => GeneralKind::Internal,
    }
}

/// The caller's input does not fit the store (a handle, hash or user id
/// of the wrong size): `InvalidArgument`.
pub(crate) fn invalid(message: &'static str) -> StoreError {
    StoreError::with_kind(GeneralKind::InvalidArgument, message)
}

/// What the database returned cannot be right (hand-edited or corrupt
/// rows, a row that vanished under a lock): `Internal`.
pub(crate) fn corrupt(message: &'static str) -> StoreError {
    StoreError::with_kind(GeneralKind::Internal, message)
}

/// How an asymmetric signing key's value begins (`tessera:v1:<alg>:<base64url
/// PKCS#8>`, docs/PROTOCOL.md §5.3). Such a value is text already and is
/// stored as it is; `:` is not in the base64 alphabet, so it never reads as
/// the base64 of a secret.
const TEXT_KEY_PREFIX: &str = "tessera:v1:";

/// Key bytes as stored in `tessera_keys.key_value`: standard base64 with
/// padding (the Django package reads and writes the same form), except an
/// asymmetric key's `tessera:v1:…` text, which is stored unchanged.
pub(crate) fn encode_key(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if text.starts_with(TEXT_KEY_PREFIX) => text.to_owned(),
        _ => STANDARD.encode(value),
    }
}

/// Builds a [`StoredKey`] from its columns; undecodable text is an error,
/// never a panic.
pub(crate) fn decode_key(key_value: &str, created_at_ms: i64) -> StoreResult<StoredKey> {
    let key_value = key_value.trim();
    if key_value.starts_with(TEXT_KEY_PREFIX) {
        return Ok(StoredKey {
            value: key_value.as_bytes().to_vec(),
            created_at_ms,
        });
    }
    let value = STANDARD
        .decode(key_value.trim())
        .map_err(|_| corrupt("tessera_keys.key_value is not valid base64"))?;
    Ok(StoredKey {
        value,
        created_at_ms,
    })
}

/// The columns `load_session` selects, in this order: `session_handle`,
/// `user_id`, `refresh_token_hash_2`, `jwt_payload`, `created_at`,
/// `expires_at`, then the promotion history of migration 0005:
/// `committed_hash_1`, `previous_hash_2`, `superseded_at`.
pub(crate) type SessionColumns = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// The `SELECT` list of [`SessionColumns`].
pub(crate) const SESSION_COLUMNS: &str = "session_handle, user_id, refresh_token_hash_2, \
     jwt_payload, created_at, expires_at, committed_hash_1, previous_hash_2, superseded_at";

/// Builds a [`SessionRow`] from its columns; a corrupt `user_id` is an error.
pub(crate) fn session_row(columns: SessionColumns) -> StoreResult<SessionRow> {
    let (
        session_handle,
        user_id,
        refresh_token_hash_2,
        jwt_payload,
        created_at_ms,
        expires_at_ms,
        committed_hash_1,
        previous_hash_2,
        superseded_at_ms,
    ) = columns;
    Ok(SessionRow {
        session_handle,
        user_id: decode_user_id(&user_id)?,
        refresh_token_hash_2,
        jwt_payload,
        created_at_ms,
        expires_at_ms,
        committed_hash_1,
        previous_hash_2,
        superseded_at_ms,
    })
}

/// The columns the session listing selects, in this order:
/// [`SUMMARY_COLUMNS`].
pub(crate) type SummaryColumns = (
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The `SELECT` list of [`SummaryColumns`]: the handle and times, the last
/// promotion (migration 0005) and the device columns (migration 0006).
pub(crate) const SUMMARY_COLUMNS: &str = "session_handle, created_at, expires_at, superseded_at, \
     user_agent, client_address, device_label";

pub(crate) fn session_summary(columns: SummaryColumns) -> SessionSummary {
    let (
        session_handle,
        created_at_ms,
        expires_at_ms,
        last_refreshed_at_ms,
        user_agent,
        client_address,
        device_label,
    ) = columns;
    SessionSummary {
        session_handle,
        created_at_ms,
        expires_at_ms,
        last_refreshed_at_ms,
        user_agent,
        client_address,
        device_label,
    }
}

/// Parses the `user_id` column. A value that is not a storage form of a
/// [`UserId`] (someone edited the table by hand) is reported as an error
/// rather than skipped: silently dropping a session would hide corruption.
pub(crate) fn decode_user_id(stored: &str) -> StoreResult<UserId> {
    UserId::from_storage(stored)
        .ok_or_else(|| corrupt("tessera_sessions.user_id holds a value that is not a user id"))
}

/// The storage form of a user id, checked against the column width so that
/// every database rejects what one of them would truncate or refuse.
pub(crate) fn user_id_column(user_id: &UserId) -> StoreResult<String> {
    let stored = user_id.to_storage();
    if stored.len() > MAX_USER_ID_STORAGE_LEN {
        return Err(invalid("user id is too long for the session store"));
    }
    Ok(stored)
}

/// Checks a new row against the column widths (SQLite would store anything;
/// PostgreSQL and MySQL would refuse, or pad a short `CHAR(64)`).
pub(crate) fn check_new_session(session: &NewSession<'_>) -> StoreResult<()> {
    check_handle(session.session_handle)?;
    check_hash(session.refresh_token_hash_2)?;
    check_device(session)
}

/// Whether a new row has any device column to write. Without one, the stores
/// insert only the columns of the schema before migration 0006.
pub(crate) fn has_device(session: &NewSession<'_>) -> bool {
    session.user_agent.is_some()
        || session.client_address.is_some()
        || session.device_label.is_some()
}

/// The device columns against their widths (`VARCHAR(256)`, `VARCHAR(45)`,
/// `VARCHAR(128)`): the core cuts what it stores to fit, so only a caller
/// that builds a [`NewSession`] itself can get this wrong.
pub(crate) fn check_device(session: &NewSession<'_>) -> StoreResult<()> {
    let fits = |v: Option<&str>, cap: usize| v.is_none_or(|v| v.len() <= cap);
    if !fits(session.user_agent, MAX_USER_AGENT_LEN)
        || !fits(session.client_address, MAX_CLIENT_ADDRESS_LEN)
        || !fits(session.device_label, MAX_DEVICE_LABEL_LEN)
    {
        return Err(invalid(
            "user agent, client address or device label is too long for the session store",
        ));
    }
    Ok(())
}

/// Handles: non-empty, within the column, and not ending in a space
/// (MySQL's `utf8mb4_bin` ignores trailing spaces when comparing, so such
/// handles are refused on every database alike).
pub(crate) fn check_handle(handle: &str) -> StoreResult<()> {
    if handle.is_empty() || handle.len() > MAX_HANDLE_LEN || handle.ends_with(' ') {
        return Err(invalid(
            "session handle must be 1 to 64 bytes and not end with a space",
        ));
    }
    Ok(())
}

pub(crate) fn check_hash(hash: &str) -> StoreResult<()> {
    if hash.len() != HASH_LEN {
        return Err(invalid("refresh_token_hash_2 must be 64 characters"));
    }
    Ok(())
}

/// Converts a row count from the database (never negative) to `u64`.
pub(crate) fn count(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| corrupt("the database returned a negative count"))
}

/// Runs `attempt` up to five times while it fails, pausing in between. Used
/// for one-time SQLite setup steps (switching to WAL, first migration) that
/// can collide with another process doing the same thing at the same moment.
#[cfg(feature = "sqlite")]
pub(crate) async fn retry_sqlite_setup<T, F, Fut>(mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if tries >= 4 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_errors_say_what_the_caller_can_do() {
        use sqlx::Error as E;
        assert_eq!(classify(&E::PoolTimedOut), GeneralKind::Timeout);
        assert_eq!(classify(&E::PoolClosed), GeneralKind::Unavailable);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&E::Io(io)), GeneralKind::Unavailable);
        assert_eq!(
            classify(&E::Configuration("bad url".into())),
            GeneralKind::InvalidArgument
        );
        assert_eq!(classify(&E::RowNotFound), GeneralKind::Internal);
        assert_eq!(invalid("x").kind(), GeneralKind::InvalidArgument);
        assert_eq!(corrupt("x").kind(), GeneralKind::Internal);
        assert!(db(E::PoolTimedOut).kind().is_retryable());
    }

    #[test]
    fn keys_round_trip_and_bad_text_is_an_error() {
        let bytes = [0u8, 1, 2, 250, 255];
        let k = decode_key(&encode_key(&bytes), 7).unwrap();
        assert_eq!(k.value, bytes);
        assert_eq!(k.created_at_ms, 7);
        assert!(decode_key("not base64!", 7).is_err());
        // An asymmetric key's text is stored as it is and read back as it
        // was; its bytes are not base64-encoded.
        let text = "tessera:v1:eddsa:MC4CAQAwBQYDK2VwBCIEIA";
        assert_eq!(encode_key(text.as_bytes()), text);
        let k = decode_key(text, 9).unwrap();
        assert_eq!(k.value, text.as_bytes());
        // Raw bytes that happen to be other text are still base64.
        assert_eq!(
            encode_key(b"tessera:v2:x"),
            STANDARD.encode(b"tessera:v2:x")
        );
    }

    #[test]
    fn corrupt_user_ids_are_errors() {
        assert_eq!(decode_user_id("\"a\"").unwrap(), UserId::from("a"));
        assert_eq!(decode_user_id("42").unwrap(), UserId::from(42));
        assert!(decode_user_id("[1]").is_err());
        assert!(decode_user_id("alice").is_err());
    }

    #[test]
    fn widths_are_checked() {
        assert!(check_handle("").is_err());
        assert!(check_handle(&"h".repeat(65)).is_err());
        assert!(check_handle(&"h".repeat(64)).is_ok());
        assert!(check_handle("h ").is_err());
        assert!(check_hash(&"a".repeat(63)).is_err());
        assert!(user_id_column(&UserId::from("x".repeat(254))).is_err());
        assert!(user_id_column(&UserId::from("x".repeat(253))).is_ok());
    }
}
