//! A [`Store`] that forwards every call to a real one after asking a test's
//! hook: the one place the protocol suites put a fault switch or a counter
//! around the store under test, instead of each suite spelling out the whole
//! trait to change one method.
//!
//! ```
//! # use std::sync::Arc;
//! # use std::sync::atomic::{AtomicUsize, Ordering};
//! use tessera_testkit::intercept::{Intercepted, StoreCall};
//! use tessera_testkit::MemoryStore;
//!
//! let writes = Arc::new(AtomicUsize::new(0));
//! let w = writes.clone();
//! let store = Intercepted::wrap(Arc::new(MemoryStore::new()), move |call| {
//!     if call.writes_sessions() {
//!         w.fetch_add(1, Ordering::SeqCst);
//!     }
//!     Ok(())
//! });
//! # let _ = store;
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera::{
    Change, ExpiryCutoff, NewSession, Promotion, RotationDecision, SessionRow, SessionSummary,
    SigningKeys, Store, StoreResult, StoredKey, UserId,
};

/// Which [`Store`] method is being called (`keeps_change_log` and
/// `change_hint`, which do no database work, are forwarded unasked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreCall {
    InsertSession,
    LoadSession,
    SessionIsLive,
    CompareAndSetRefreshHash,
    DeleteSession,
    DeleteSessionsForUser,
    SessionHandlesForUser,
    SessionsForUser,
    GetSessionInfo,
    UpdateSessionInfo,
    DeleteExpiredSessions,
    CountExpiredSessions,
    RefreshTokenKey,
    SigningKeys,
    ChangesAfter,
    PruneChanges,
}

impl StoreCall {
    /// Whether the call writes session rows (change-log pruning is the
    /// feed's housekeeping and key rows are not sessions: neither counts).
    pub fn writes_sessions(self) -> bool {
        matches!(
            self,
            StoreCall::InsertSession
                | StoreCall::CompareAndSetRefreshHash
                | StoreCall::DeleteSession
                | StoreCall::DeleteSessionsForUser
                | StoreCall::UpdateSessionInfo
                | StoreCall::DeleteExpiredSessions
        )
    }
}

/// The wrapper: `before(call)` runs first; an `Err` is returned as the
/// store's answer (the real store is not called), `Ok` forwards the call.
pub struct Intercepted<F> {
    inner: Arc<dyn Store>,
    before: F,
}

impl<F> Intercepted<F>
where
    F: Fn(StoreCall) -> StoreResult<()> + Send + Sync + 'static,
{
    /// `inner` behind `before`, as the `Arc<dyn Store>` a manager takes.
    pub fn wrap(inner: Arc<dyn Store>, before: F) -> Arc<dyn Store> {
        Arc::new(Intercepted { inner, before })
    }
}

#[async_trait]
impl<F> Store for Intercepted<F>
where
    F: Fn(StoreCall) -> StoreResult<()> + Send + Sync + 'static,
{
    async fn insert_session(&self, s: &NewSession<'_>) -> StoreResult<()> {
        (self.before)(StoreCall::InsertSession)?;
        self.inner.insert_session(s).await
    }
    async fn load_session(&self, h: &str) -> StoreResult<Option<SessionRow>> {
        (self.before)(StoreCall::LoadSession)?;
        self.inner.load_session(h).await
    }
    async fn session_is_live(&self, h: &str, now: i64) -> StoreResult<bool> {
        (self.before)(StoreCall::SessionIsLive)?;
        self.inner.session_is_live(h, now).await
    }
    async fn compare_and_set_refresh_hash(&self, p: &Promotion<'_>, now: i64) -> StoreResult<bool> {
        (self.before)(StoreCall::CompareAndSetRefreshHash)?;
        self.inner.compare_and_set_refresh_hash(p, now).await
    }
    async fn delete_session(&self, h: &str) -> StoreResult<bool> {
        (self.before)(StoreCall::DeleteSession)?;
        self.inner.delete_session(h).await
    }
    async fn delete_sessions_for_user(&self, u: &UserId) -> StoreResult<u64> {
        (self.before)(StoreCall::DeleteSessionsForUser)?;
        self.inner.delete_sessions_for_user(u).await
    }
    async fn session_handles_for_user(&self, u: &UserId) -> StoreResult<Vec<String>> {
        (self.before)(StoreCall::SessionHandlesForUser)?;
        self.inner.session_handles_for_user(u).await
    }
    async fn sessions_for_user(&self, u: &UserId, now: i64) -> StoreResult<Vec<SessionSummary>> {
        (self.before)(StoreCall::SessionsForUser)?;
        self.inner.sessions_for_user(u, now).await
    }
    async fn get_session_info(&self, h: &str, now: i64) -> StoreResult<Option<String>> {
        (self.before)(StoreCall::GetSessionInfo)?;
        self.inner.get_session_info(h, now).await
    }
    async fn update_session_info(&self, h: &str, info: &str, now: i64) -> StoreResult<bool> {
        (self.before)(StoreCall::UpdateSessionInfo)?;
        self.inner.update_session_info(h, info, now).await
    }
    async fn delete_expired_sessions(&self, c: ExpiryCutoff, batch: u32) -> StoreResult<u64> {
        (self.before)(StoreCall::DeleteExpiredSessions)?;
        self.inner.delete_expired_sessions(c, batch).await
    }
    async fn count_expired_sessions(&self, c: ExpiryCutoff) -> StoreResult<u64> {
        (self.before)(StoreCall::CountExpiredSessions)?;
        self.inner.count_expired_sessions(c).await
    }
    async fn refresh_token_key(&self, c: &StoredKey) -> StoreResult<StoredKey> {
        (self.before)(StoreCall::RefreshTokenKey)?;
        self.inner.refresh_token_key(c).await
    }
    async fn signing_keys(
        &self,
        c: &StoredKey,
        decide: RotationDecision<'_>,
    ) -> StoreResult<SigningKeys> {
        (self.before)(StoreCall::SigningKeys)?;
        self.inner.signing_keys(c, decide).await
    }
    fn keeps_change_log(&self) -> bool {
        self.inner.keeps_change_log()
    }
    async fn changes_after(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
        (self.before)(StoreCall::ChangesAfter)?;
        self.inner.changes_after(after, limit).await
    }
    async fn prune_changes(&self, older_than: Duration) -> StoreResult<u64> {
        (self.before)(StoreCall::PruneChanges)?;
        self.inner.prune_changes(older_than).await
    }
    fn change_hint(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.inner.change_hint()
    }
}
