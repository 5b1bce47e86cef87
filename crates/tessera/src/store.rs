//! The storage contract. The core decides the protocol; a store only keeps
//! rows and makes each method atomic.
//!
//! Every method is one short transaction. Nothing in the protocol needs a
//! lock held across a round trip to the application: promotion is a
//! compare-and-set on `refresh_token_hash_2`, which the database serialises
//! with the row lock its `UPDATE` takes. Key rotation is the one
//! read-decide-write step and happens inside [`Store::signing_keys`] under a
//! row lock (`SELECT … FOR UPDATE` on PostgreSQL and MySQL, `BEGIN IMMEDIATE`
//! on SQLite).

use std::fmt;

use async_trait::async_trait;

use crate::error::GeneralKind;
use crate::user_id::UserId;

/// A failure of the storage layer. It becomes [`crate::Error::General`] of
/// the same [`GeneralKind`].
#[derive(Debug)]
pub struct StoreError {
    kind: GeneralKind,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl StoreError {
    /// Wraps an error of the underlying driver as
    /// [`GeneralKind::Unavailable`]: unless a store says otherwise, a
    /// failing database is an outage the caller may retry.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        StoreError::with_kind(GeneralKind::Unavailable, source)
    }

    /// Wraps an error of a known kind (a timeout, an argument the store
    /// cannot hold, corrupt data).
    pub fn with_kind(
        kind: GeneralKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        StoreError {
            kind,
            source: source.into(),
        }
    }

    /// What the caller can do about it.
    pub fn kind(&self) -> GeneralKind {
        self.kind
    }

    /// The underlying error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.source
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store: {}", self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A session row as inserted by `create_new_session`. `Debug` shows the
/// handle, user id, times and device fields, never the session info or the
/// JWT payload.
///
/// The device fields come from [`crate::SessionDevice`], already cleaned and
/// capped by the core (at most [`crate::MAX_USER_AGENT_LEN`],
/// [`crate::MAX_CLIENT_ADDRESS_LEN`] and [`crate::MAX_DEVICE_LABEL_LEN`]
/// bytes); a store keeps them as given, `None` as null. The client address is
/// `None` unless the configuration records addresses.
#[derive(Clone)]
pub struct NewSession<'a> {
    /// Random, unique, stable for the session's life.
    pub session_handle: &'a str,
    /// The owner; stores keep [`UserId::to_storage`] in an indexed column.
    pub user_id: &'a UserId,
    /// `H2` of the committed refresh token (64 lowercase hex characters).
    pub refresh_token_hash_2: &'a str,
    /// Session info as JSON text. Database only; may hold secrets.
    pub session_info: &'a str,
    /// JWT payload as JSON text; never changes for the session.
    pub jwt_payload: &'a str,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Refresh expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    /// The client's `User-Agent` (`tessera_sessions.user_agent`).
    pub user_agent: Option<&'a str>,
    /// The client's IP address as text (`tessera_sessions.client_address`);
    /// personal data, `None` unless `record_client_address` is on.
    pub client_address: Option<&'a str>,
    /// The application's label for the session
    /// (`tessera_sessions.device_label`).
    pub device_label: Option<&'a str>,
}

impl fmt::Debug for NewSession<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("session_handle", &self.session_handle)
            .field("user_id", &self.user_id)
            .field("session_info", &"<redacted>")
            .field("jwt_payload", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("user_agent", &self.user_agent)
            .field("client_address", &self.client_address)
            .field("device_label", &self.device_label)
            .finish_non_exhaustive()
    }
}

/// What the refresh path needs of a row. `Debug` never shows the JWT
/// payload.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The session handle.
    pub session_handle: String,
    /// The owner.
    pub user_id: UserId,
    /// `H2` of the committed refresh token.
    pub refresh_token_hash_2: String,
    /// JWT payload as JSON text.
    pub jwt_payload: String,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Refresh expiry (ms).
    pub expires_at_ms: i64,
    /// `H1` of the committed refresh token, written by a promotion (`None`
    /// before the first one, and in rows made before migration 0005). The
    /// refresh grace window issues children of the committed token with it
    /// (docs/PROTOCOL.md §3.9).
    pub committed_hash_1: Option<String>,
    /// `H2` of the token the last promotion superseded (`None` before the
    /// first promotion).
    pub previous_hash_2: Option<String>,
    /// When the last promotion happened (ms; `None` before the first one).
    pub superseded_at_ms: Option<i64>,
}

impl fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRow")
            .field("session_handle", &self.session_handle)
            .field("user_id", &self.user_id)
            .field("refresh_token_hash_2", &self.refresh_token_hash_2)
            .field("jwt_payload", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("superseded_at_ms", &self.superseded_at_ms)
            .finish_non_exhaustive()
    }
}

/// One session of a user, for listings (admin tools, "your sessions" pages;
/// docs/PROTOCOL.md §3.5). Reading it writes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session handle.
    pub session_handle: String,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Refresh expiry (ms).
    pub expires_at_ms: i64,
    /// When the session was last refreshed (ms): the row's `superseded_at`,
    /// the time of its last promotion. A refresh counts when the tokens it
    /// issued are first used (the promotion, docs/PROTOCOL.md §3.2), as for
    /// the idle clock (§3.10); a refresh whose tokens the client never
    /// presents does not move it. `None` before the first promotion, and in
    /// rows made before migration 0005 until their next one. Neither
    /// `get_session` nor the listing writes it.
    pub last_refreshed_at_ms: Option<i64>,
    /// The `User-Agent` of the sign-in request, capped at
    /// [`crate::MAX_USER_AGENT_LEN`] bytes; `None` if there was none, and in
    /// rows made before migration 0006.
    pub user_agent: Option<String>,
    /// The sign-in request's IP address as text, only if the configuration
    /// recorded it ([`crate::ConfigBuilder::with_record_client_address`]).
    /// Personal data.
    pub client_address: Option<String>,
    /// The application's label for the session, capped at
    /// [`crate::MAX_DEVICE_LABEL_LEN`] bytes.
    pub device_label: Option<String>,
}

impl SessionSummary {
    /// The session's last activity the store knows of (ms): its last
    /// refresh, or its creation before the first one. This is the time the
    /// idle timeout counts from (docs/PROTOCOL.md §3.10).
    pub fn last_active_at_ms(&self) -> i64 {
        self.last_refreshed_at_ms.unwrap_or(self.created_at_ms)
    }
}

/// A key kept in the database. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The secret key bytes (32 bytes for keys Tessera makes).
    pub value: Vec<u8>,
    /// When the key was created (ms).
    pub created_at_ms: i64,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("value", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

/// The access-token signing keys as the database holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys {
    /// The key that signs new access tokens.
    pub current: StoredKey,
    /// The key it replaced, if any; `current.created_at_ms` is when it
    /// stopped signing.
    pub previous: Option<StoredKey>,
}

/// Decides, under the signing-key row lock, whether to rotate: given what the
/// database holds, returns `Some(new keys)` to write them, `None` to keep them.
pub type RotationDecision<'a> = &'a (dyn Fn(&SigningKeys) -> Option<SigningKeys> + Send + Sync);

/// What a [`Change`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A session row was deleted by a revocation (one session, all of a
    /// user's, or theft). `Change::subject` is the session handle. Expired
    /// rows removed by cleanup are not recorded: their tokens are refused
    /// by their own expiry.
    Revoked,
    /// The access-token signing keys were rewritten (a due or forced
    /// rotation). `Change::subject` is empty.
    SigningKeys,
}

impl ChangeKind {
    /// The one-letter code stored in `tessera_changes.kind`.
    pub fn code(self) -> &'static str {
        match self {
            ChangeKind::Revoked => "r",
            ChangeKind::SigningKeys => "k",
        }
    }

    /// The kind stored as `code`, if it is one.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "r" => Some(ChangeKind::Revoked),
            "k" => Some(ChangeKind::SigningKeys),
            _ => None,
        }
    }
}

/// One row of the change log (`tessera_changes`), which the change feed
/// reads (docs/DISTRIBUTED.md, "The change feed"). A store writes it in the
/// same transaction as the change it records, so a committed change always
/// has its row and a rolled-back one never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the log, increasing with the order the database handed
    /// out numbers. Not necessarily commit order: a transaction that took a
    /// number can commit after one that took a higher number, which is why
    /// readers re-read a window behind the highest number they have seen.
    pub seq: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// The session handle of a [`ChangeKind::Revoked`] change.
    pub subject: String,
}

/// Row name (`tessera_keys.key_name`) of the refresh-token sealing key that
/// [`Store::refresh_token_key`] keeps. The Django package reads the same row.
pub const REFRESH_TOKEN_KEY_NAME: &str = "refresh_token_key";

/// A refresh-token promotion, the argument of
/// [`Store::compare_and_set_refresh_hash`]. Named fields rather than
/// positional arguments: the expected and the new `H2` are both 64 hex
/// characters and would still compile if swapped. Borrows everything, so
/// building one allocates nothing. `Debug` shows the handle and the expiry,
/// never the hashes.
#[derive(Clone, Copy)]
pub struct Promotion<'a> {
    /// The session whose row changes.
    pub session_handle: &'a str,
    /// `H2` the row must hold for the promotion to happen.
    pub expected_hash_2: &'a str,
    /// `H2` of the refresh token that becomes the committed one.
    pub new_hash_2: &'a str,
    /// The row's new refresh expiry, milliseconds since the Unix epoch.
    pub new_expires_at_ms: i64,
    /// `H1` of the refresh token that becomes the committed one; the row
    /// keeps it as `committed_hash_1` (`None` writes null there).
    pub new_hash_1: Option<&'a str>,
    /// The refresh grace window's freeze (docs/PROTOCOL.md §3.9): the
    /// promotion happens only if the row's last promotion (`superseded_at`)
    /// was at or before this time, or it has none, or it kept no
    /// `committed_hash_1` (a promotion made without a window opens none).
    /// `i64::MAX` when no grace window is configured.
    pub not_superseded_after_ms: i64,
}

impl fmt::Debug for Promotion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promotion")
            .field("session_handle", &self.session_handle)
            .field("new_expires_at_ms", &self.new_expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Which rows cleanup removes: the argument of
/// [`Store::delete_expired_sessions`] and [`Store::count_expired_sessions`].
/// A row is expired when `expires_at_ms <= now_ms`, or, when the idle
/// timeout is configured, its last activity (`superseded_at`, the time of
/// its last promotion, or `created_at` before the first one) is at or before
/// `idle_cutoff_ms`, or, when the absolute lifetime is configured, its
/// `created_at` is at or before `created_cutoff_ms` (docs/PROTOCOL.md §3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryCutoff {
    /// Now (ms); rows with `expires_at_ms <= now_ms` are expired.
    pub now_ms: i64,
    /// `now - idle timeout` (ms), `None` without an idle timeout.
    pub idle_cutoff_ms: Option<i64>,
    /// `now - absolute lifetime` (ms), `None` without an absolute lifetime.
    pub created_cutoff_ms: Option<i64>,
}

impl ExpiryCutoff {
    /// Only the refresh expiry: no idle timeout, no absolute lifetime.
    pub fn at(now_ms: i64) -> Self {
        ExpiryCutoff {
            now_ms,
            idle_cutoff_ms: None,
            created_cutoff_ms: None,
        }
    }

    /// Whether an idle timeout or an absolute lifetime is part of it.
    pub fn has_lifetimes(&self) -> bool {
        self.idle_cutoff_ms.is_some() || self.created_cutoff_ms.is_some()
    }

    /// The idle cutoff for SQL: `i64::MIN` (matches no row) when off.
    pub fn idle_bound(&self) -> i64 {
        self.idle_cutoff_ms.unwrap_or(i64::MIN)
    }

    /// The creation cutoff for SQL: `i64::MIN` (matches no row) when off.
    pub fn created_bound(&self) -> i64 {
        self.created_cutoff_ms.unwrap_or(i64::MIN)
    }

    /// Whether a row with these times is expired.
    pub fn is_expired(
        &self,
        expires_at_ms: i64,
        created_at_ms: i64,
        superseded_at_ms: Option<i64>,
    ) -> bool {
        expires_at_ms <= self.now_ms
            || superseded_at_ms.unwrap_or(created_at_ms) <= self.idle_bound()
            || created_at_ms <= self.created_bound()
    }
}

/// Where sessions and keys live. One implementation per database; see the
/// `tessera-sqlx` crate. Every method must be atomic and must not leave
/// half-written state when it fails.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new session. Returns only after the row is durably committed.
    async fn insert_session(&self, session: &NewSession<'_>) -> StoreResult<()>;

    /// Loads a row whatever its expiry (the caller checks `expires_at_ms`).
    async fn load_session(&self, session_handle: &str) -> StoreResult<Option<SessionRow>>;

    /// Whether a row exists with `expires_at_ms > now_ms` (blacklisting).
    async fn session_is_live(&self, session_handle: &str, now_ms: i64) -> StoreResult<bool>;

    /// Atomically: if the row of `promotion.session_handle` exists, has
    /// `expires_at_ms > now_ms`, its `refresh_token_hash_2` equals
    /// `promotion.expected_hash_2` and its `superseded_at` is null or at most
    /// `promotion.not_superseded_after_ms` or its `committed_hash_1` is null,
    /// set `refresh_token_hash_2` to
    /// `promotion.new_hash_2`, `expires_at_ms` to
    /// `promotion.new_expires_at_ms`, `committed_hash_1` to
    /// `promotion.new_hash_1`, `previous_hash_2` to the hash it replaced and
    /// `superseded_at` to `now_ms`, and return `true`; otherwise change
    /// nothing and return `false`.
    async fn compare_and_set_refresh_hash(
        &self,
        promotion: &Promotion<'_>,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Deletes a row; `true` iff a row was deleted.
    async fn delete_session(&self, session_handle: &str) -> StoreResult<bool>;

    /// Deletes every row of a user; returns how many.
    async fn delete_sessions_for_user(&self, user_id: &UserId) -> StoreResult<u64>;

    /// Every handle of the user's rows (expired ones included until cleanup,
    /// as the reference library does), in creation order.
    async fn session_handles_for_user(&self, user_id: &UserId) -> StoreResult<Vec<String>>;

    /// The user's sessions with `expires_at_ms > now_ms`, in creation order,
    /// with their device columns and `superseded_at` as
    /// [`SessionSummary::last_refreshed_at_ms`]. Reads only.
    async fn sessions_for_user(
        &self,
        user_id: &UserId,
        now_ms: i64,
    ) -> StoreResult<Vec<SessionSummary>>;

    /// Session info (JSON text) of a row with `expires_at_ms > now_ms`.
    async fn get_session_info(
        &self,
        session_handle: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>>;

    /// Replaces session info of a row with `expires_at_ms > now_ms`; `true`
    /// iff such a row existed.
    async fn update_session_info(
        &self,
        session_handle: &str,
        session_info: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Deletes at most `batch_size` rows that are expired by `cutoff`
    /// ([`ExpiryCutoff::is_expired`]), in one short transaction, and returns
    /// how many. The core calls it in a loop so that no lock is held for
    /// long.
    async fn delete_expired_sessions(
        &self,
        cutoff: ExpiryCutoff,
        batch_size: u32,
    ) -> StoreResult<u64>;

    /// Number of rows expired by `cutoff` (progress reporting).
    async fn count_expired_sessions(&self, cutoff: ExpiryCutoff) -> StoreResult<u64>;

    /// The refresh-token sealing key (the row [`REFRESH_TOKEN_KEY_NAME`]),
    /// first storing `candidate` if there is none. Concurrent callers all get
    /// the same key.
    async fn refresh_token_key(&self, candidate: &StoredKey) -> StoreResult<StoredKey>;

    /// The access-token signing keys, read under a row lock. If none are
    /// stored, `candidate` becomes the current key (concurrent callers agree
    /// on one). Then `decide` sees the stored keys, still under the lock; if it
    /// returns new keys they are written before the lock is released.
    /// Returns the keys as stored when the transaction commits.
    ///
    /// `decide` may be called more than once in one call: a store that runs
    /// the transaction again after a conflict (a serialization failure, or a
    /// Galera certification failure at commit) asks again on each attempt,
    /// with what that attempt read. It must therefore be a pure function of
    /// the keys it is shown. A store that keeps the change log appends one
    /// [`ChangeKind::SigningKeys`] row when it writes.
    async fn signing_keys(
        &self,
        candidate: &StoredKey,
        decide: RotationDecision<'_>,
    ) -> StoreResult<SigningKeys>;

    // -- the change log (optional) --------------------------------------

    /// Whether this store keeps the change log: every revocation
    /// ([`Store::delete_session`], [`Store::delete_sessions_for_user`]) and
    /// every signing-key write of [`Store::signing_keys`] appends a
    /// [`Change`] in the same transaction. The default is `false`, and then
    /// the core never calls the other change-log methods; blacklisting asks
    /// the database on every `get_session` and other instances learn of a
    /// forced key rotation within [`crate::KEY_RECHECK_INTERVAL`].
    fn keeps_change_log(&self) -> bool {
        false
    }

    /// Up to `limit` changes with `seq > after_seq`, in `seq` order.
    async fn changes_after(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Change>> {
        let _ = (after_seq, limit);
        Err(StoreError::new("this store keeps no change log"))
    }

    /// Deletes change-log rows written more than `older_than` ago (by the
    /// database's clock) and returns how many. Cleanup calls it.
    async fn prune_changes(&self, older_than: std::time::Duration) -> StoreResult<u64> {
        let _ = older_than;
        Ok(0)
    }

    /// A wake-up the store signals soon after a change is committed anywhere
    /// (PostgreSQL `LISTEN/NOTIFY`), so the feed reads at once instead of at
    /// its next poll. Only a hint: the feed polls anyway and never relies on
    /// it for correctness. `None` (the default) where there is none.
    fn change_hint(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}
